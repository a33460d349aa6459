#!/bin/bash
# Extension upgrades: a live 0.1.0 database with stored models of every task moves to the
# current version with ALTER EXTENSION userseq UPDATE, and afterwards
#   - every model scores exactly as before (predict, proba, class, embed, recommend),
#   - the catalog (models, training_log) is byte-identical and training continues,
#   - the extension's objects are exactly those of a fresh install of the current version
#     (signatures, volatility, parallel labels, strictness, defaults, comments, columns,
#     indexes, constraints, privileges), so the upgrade script cannot drift from sql/parts.
# Uses the cluster in the PG* environment; creates and drops its own databases.
set -u
old=us_upg_old_$$
new=us_upg_new_$$
tmp=$(mktemp -d)
cleanup() {
	psql -X -q -d postgres -c "DROP DATABASE IF EXISTS $old" -c "DROP DATABASE IF EXISTS $new" >/dev/null 2>&1
	rm -rf "$tmp"
}
trap cleanup EXIT
q() { local db=$1; shift; command psql -X -q -At -v ON_ERROR_STOP=1 -d "$db" "$@"; }
n=0
fail=0
check() { # name, command...
	n=$((n + 1))
	local name=$1
	shift
	if "$@"; then echo "ok $n - $name"; return 0; fi
	echo "not ok $n - $name"
	fail=1
	return 1
}

current=$(sed -n "s/^default_version = '\(.*\)'/\1/p" "$(pg_config --sharedir)/extension/userseq.control")
psql -X -q -d postgres -c "CREATE DATABASE $old" -c "CREATE DATABASE $new" || exit 1

q $old -o /dev/null <<'SQL' || { echo "not ok - 0.1.0 setup"; exit 1; }
SET client_min_messages = warning;
CREATE EXTENSION userseq VERSION '0.1.0';
CREATE TABLE d AS
SELECT u AS user_id,
       userseq(array_agg(((u * 7 + e * 3) % 60 + 1)::bigint ORDER BY e),
               array_agg(timestamptz '2024-01-01' + (e * 37 % 11 + e * 5) * interval '1 hour' ORDER BY e),
               array_agg((ARRAY['view', 'cart', 'buy'])[1 + (u + e) % 3] ORDER BY e)) AS seq,
       bool_or((u * 7 + e * 3) % 60 < 8) AS label,
       (ARRAY['a', 'b', 'c'])[1 + u % 3] AS klass,
       (u % 17)::float8 / 4 AS value
FROM generate_series(1, 400) u, generate_series(1, 4 + u % 12) e GROUP BY u;
SELECT count(*) FROM userseq_train('u_bin', 'SELECT seq, label FROM d ORDER BY user_id', 'binary', '{"epochs": 2, "embedding_dim": 8, "num_filters": 8, "hidden_dim": 8}');
SELECT count(*) FROM userseq_train('u_bin', 'SELECT seq, label FROM d ORDER BY user_id', 'binary', '{"epochs": 1, "seed": 7, "deploy": false, "embedding_dim": 8, "num_filters": 8, "hidden_dim": 8}');
SELECT count(*) FROM userseq_train('u_mc', 'SELECT seq, klass AS label FROM d ORDER BY user_id', 'multiclass', '{"epochs": 2, "embedding_dim": 8, "num_filters": 8, "hidden_dim": 8}');
SELECT count(*) FROM userseq_train('u_reg', 'SELECT seq, value AS label FROM d ORDER BY user_id', 'regression', '{"epochs": 2, "embedding_dim": 8, "num_filters": 8, "hidden_dim": 8}');
SELECT count(*) FROM userseq_train('u_ni', 'SELECT seq FROM d ORDER BY user_id', 'next_item', '{"epochs": 2, "embedding_dim": 8, "num_filters": 8, "hidden_dim": 8}');
SELECT count(*) FROM userseq_train('u_nb', 'SELECT seq FROM d ORDER BY user_id', 'next_behavior', '{"epochs": 2, "embedding_dim": 8, "num_filters": 8, "hidden_dim": 8}');
SQL

# Everything a stored model answers, as text at full precision, in a fixed order.
scores() {
	q $1 -c "SET extra_float_digits = 3" -c "
	SELECT m.name, d.user_id, CASE WHEN m.task <> 'next_item' THEN userseq_predict(m.name, d.seq) END,
	       CASE WHEN m.task NOT IN ('regression', 'next_item') THEN userseq_predict_proba(m.name, d.seq)::text END,
	       CASE WHEN m.task NOT IN ('regression', 'next_item') THEN userseq_predict_class(m.name, d.seq) END,
	       userseq_embed(m.name, d.seq)::text, userseq_embed(m.weights, d.seq)::text
	FROM models m, d WHERE m.deployed AND d.user_id % 7 = 0 ORDER BY 1, 2;
	SELECT d.user_id, r.* FROM d, LATERAL userseq_recommend('u_ni', d.seq, 5) r
	WHERE d.user_id % 11 = 0 ORDER BY 1, 2;"
}
catalog() {
	q $1 -c "SELECT model_id, name, version, task, md5(weights), config, metrics, deployed, run_id, owner, created_at FROM models ORDER BY model_id" \
		-c "SELECT run_id, model, version, epoch, train_loss, valid_loss, valid_metric, metric_name, learning_rate, seconds, logged_at FROM training_log l ORDER BY 1, 2, 3"
}
scores $old >"$tmp/scores.before" || { echo "not ok - scoring 0.1.0"; exit 1; }
catalog $old >"$tmp/catalog.before"
check "0.1.0 models of every task were stored (5 names, 6 versions)" \
	test "$(q $old -c "SELECT count(DISTINCT name) || '/' || count(*) FROM models")" = "5/6"

check "ALTER EXTENSION userseq UPDATE to $current" \
	q $old -c "ALTER EXTENSION userseq UPDATE TO '$current'"
check "the installed version is $current" \
	test "$(q $old -c "SELECT extversion FROM pg_extension WHERE extname = 'userseq'")" = "$current"

scores $old >"$tmp/scores.after"
catalog $old >"$tmp/catalog.after"
check "every model scores identically after the update ($(wc -l <"$tmp/scores.before") rows)" \
	cmp -s "$tmp/scores.before" "$tmp/scores.after"
check "models and training_log are identical after the update" \
	cmp -s "$tmp/catalog.before" "$tmp/catalog.after"
check "runs logged by 0.1.0 read as first runs (training_run 1, continues nothing)" \
	test "$(q $old -c "SELECT count(*) FILTER (WHERE training_run <> 1 OR continues_run IS NOT NULL) || '/' || (count(*) > 0) FROM training_log")" = "0/true"
check "training continues after the update (new version 2 of u_ni, fresh run id)" \
	test "$(q $old -c "SET client_min_messages = warning" \
		-c "SELECT count(*) FROM userseq_train('u_ni', 'SELECT seq FROM d ORDER BY user_id', 'next_item', '{\"epochs\": 1, \"embedding_dim\": 8, \"num_filters\": 8, \"hidden_dim\": 8}')" \
		-c "SELECT max(version) || ' ' || (count(DISTINCT run_id) = count(*)) FROM models WHERE name = 'u_ni'" | tail -1)" = "2 true"

# The extension's objects, described with everything a user or the planner can see.
objects() {
	q $1 <<'SQL'
WITH ext AS (SELECT oid FROM pg_extension WHERE extname = 'userseq'),
members AS (SELECT d.classid, d.objid FROM pg_depend d, ext
            WHERE d.refclassid = 'pg_extension'::regclass AND d.refobjid = ext.oid AND d.deptype = 'e')
SELECT pg_describe_object(m.classid, m.objid, 0) || ' | ' ||
       coalesce(obj_description(m.objid, (SELECT relname FROM pg_class WHERE oid = m.classid)), '-')
FROM members m
UNION ALL
SELECT format('function %s(%s) returns %s%s | %s %s strict=%s secdef=%s leak=%s cost=%s rows=%s config=%s acl=%s symbol=%s',
              p.proname, pg_get_function_arguments(p.oid), CASE WHEN p.proretset THEN 'setof ' ELSE '' END,
              pg_get_function_result(p.oid), p.provolatile, p.proparallel, p.proisstrict, p.prosecdef,
              p.proleakproof, p.procost, p.prorows, p.proconfig, p.proacl, p.prosrc)
FROM members m JOIN pg_proc p ON m.classid = 'pg_proc'::regclass AND p.oid = m.objid
UNION ALL
SELECT format('column %s.%s %s notnull=%s default=%s identity=%s', c.relname, a.attname,
              format_type(a.atttypid, a.atttypmod), a.attnotnull,
              pg_get_expr(ad.adbin, ad.adrelid), a.attidentity)
FROM members m JOIN pg_class c ON m.classid = 'pg_class'::regclass AND c.oid = m.objid
JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
LEFT JOIN pg_attrdef ad ON ad.adrelid = c.oid AND ad.adnum = a.attnum
UNION ALL
SELECT format('relation %s kind=%s acl=%s', c.relname, c.relkind, c.relacl)
FROM members m JOIN pg_class c ON m.classid = 'pg_class'::regclass AND c.oid = m.objid
UNION ALL
SELECT 'index ' || regexp_replace(pg_get_indexdef(i.indexrelid), '^CREATE (UNIQUE )?INDEX \S+', 'CREATE \1INDEX')
FROM members m JOIN pg_index i ON m.classid = 'pg_class'::regclass AND i.indrelid = m.objid
UNION ALL
SELECT format('constraint %s on %s: %s', co.conname, co.conrelid::regclass, pg_get_constraintdef(co.oid))
FROM members m JOIN pg_constraint co ON m.classid = 'pg_class'::regclass AND co.conrelid = m.objid
UNION ALL
SELECT format('config dump %s %s', unnest(e.extconfig)::regclass, unnest(e.extcondition))
FROM pg_extension e WHERE e.extname = 'userseq'
ORDER BY 1;
SQL
}
q $new -c "CREATE EXTENSION userseq" || exit 1
objects $old >"$tmp/objects.upgraded"
objects $new >"$tmp/objects.fresh"
if ! check "an updated database has exactly the objects of a fresh $current install ($(wc -l <"$tmp/objects.fresh") lines compared)" \
	cmp -s "$tmp/objects.upgraded" "$tmp/objects.fresh"; then
	diff "$tmp/objects.upgraded" "$tmp/objects.fresh" | head -n 40 | sed 's/^/#   /'
fi
echo "1..$n"
exit $fail
