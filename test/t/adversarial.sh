#!/bin/bash
# The standing adversarial tier (issue 10): hostile inputs that must give a clean SQLSTATE
# (never class XX or 58, never a crash) or a result that round-trips, and concurrency that must
# give no error at all.
#   1. model-byte mutations (bit flips with and without a repaired CRC, truncations, trailing
#      bytes, huge and non-finite floats, header, config, count and vocabulary words) of a
#      binary, a multiclass and a next_item model through userseq_predict, _predict_proba,
#      _predict_class, _class_labels, userseq_embed, userseq_recommend and userseq_import
#      (test/adversarial/model_mutations.sql);
#   2. COPY BINARY mutations of userseq values and of whole COPY files
#      (test/adversarial/copy_mutate.pl): a loaded value must satisfy userseq_send(s) = the
#      mutated bytes and s::text::userseq = s;
#   3. 16 pgbench clients scoring by name (predict and recommend) while another session loops
#      retrain / deploy / rollback / drop of old versions: 0 failed transactions.
# Sizes: ADV_MODEL_MUTANTS per model (default 300), ADV_COPY_MUTANTS (400 field + 200 file),
# ADV_SECONDS of pgbench (20). Runs against the cluster in the PG* environment, own database.
set -u
cd "$(dirname "$0")/../.."
db=us_adv_$$
tmp=$(mktemp -d)
loop_pid=
cleanup() {
	[ -n "$loop_pid" ] && kill "$loop_pid" 2>/dev/null
	wait 2>/dev/null
	psql -X -q -d postgres -c "DROP DATABASE IF EXISTS $db" >/dev/null 2>&1
	rm -rf "$tmp"
}
trap cleanup EXIT
fails=0
ok() { echo "ok - $*"; }
notok() { echo "not ok - $*"; fails=$((fails + 1)); }
per_model=${ADV_MODEL_MUTANTS:-300}
n_copy=${ADV_COPY_MUTANTS:-400}
seconds=${ADV_SECONDS:-20}
start=$(date +%s)

psql -X -q -d postgres -c "CREATE DATABASE $db" || exit 1
psql -X -q -o /dev/null -d $db -v ON_ERROR_STOP=1 <<'SQL' || exit 1
SET client_min_messages = warning;
CREATE EXTENSION userseq;
CREATE TABLE adv_d AS
SELECT u, userseq(ARRAY(SELECT ((u * 3 + e * 5) % 40 + 1)::int8 FROM generate_series(1, 3 + u % 9) e),
                  ARRAY(SELECT timestamptz '2024-01-01' + e * interval '1 hour' FROM generate_series(1, 3 + u % 9) e),
                  ARRAY(SELECT (ARRAY['view', 'cart', 'buy'])[1 + (u + e) % 3] FROM generate_series(1, 3 + u % 9) e)) AS seq,
       (u * 3) % 40 < 10 AS label, (ARRAY['lo', 'mid', 'hi'])[1 + u % 3] AS cls
FROM generate_series(1, 300) u;
SELECT count(*) FROM userseq_train('adv_bin', 'SELECT seq, label FROM adv_d', 'binary',
	'{"epochs": 1, "embedding_dim": 4, "num_filters": 4, "hidden_dim": 4, "seed": 1}');
SELECT count(*) FROM userseq_train('adv_mc', 'SELECT seq, cls AS label FROM adv_d', 'multiclass',
	'{"epochs": 1, "embedding_dim": 4, "num_filters": 4, "hidden_dim": 4, "seed": 1}');
SELECT count(*) FROM userseq_train('adv_ni', 'SELECT seq FROM adv_d', 'next_item',
	'{"epochs": 1, "embedding_dim": 4, "num_filters": 4, "hidden_dim": 4, "seed": 1}');
SQL

# ---------------------------------------------------------------- 1. model bytes
out=$(psql -X -At -d $db -v ON_ERROR_STOP=1 2>&1 <<SQL
SET client_min_messages = warning;
\i test/adversarial/model_bytes.sql
\i test/adversarial/model_mutations.sql
SELECT pg_temp.adv_run($per_model);
SELECT fn || ' ' || state || ' ' || count(*) FROM adv_outcome GROUP BY fn, state ORDER BY fn, state;
SELECT 'mutants ' || count(*) / 7 FROM adv_outcome;
SELECT 'unclean ' || count(*) FROM adv_outcome
WHERE state NOT LIKE 'ok%' AND (state !~ '^[0-9A-Z]{5}$' OR state LIKE 'XX%' OR state LIKE '58%');
SELECT 'unclean: ' || kind || ' ' || fn || ' ' || state FROM adv_outcome
WHERE state NOT LIKE 'ok%' AND (state !~ '^[0-9A-Z]{5}$' OR state LIKE 'XX%' OR state LIKE '58%') LIMIT 10;
SQL
)
rc=$?
echo "$out" | grep -E '^(predict|proba|class|class_labels|embed|recommend|import) ' | awk '{a[$1] = a[$1] " " $2 ":" $3} END {for (f in a) print "#   " f a[f]}' | sort
mutants=$(echo "$out" | sed -n 's/^mutants //p')
unclean=$(echo "$out" | sed -n 's/^unclean //p')
if [ $rc = 0 ] && [ "$unclean" = 0 ] && [ "${mutants:-0}" -gt 0 ]; then
	ok "$mutants model-byte mutants x 7 functions: every call a clean SQLSTATE or a finite, round-tripping result"
else
	notok "model-byte mutations (rc $rc, $unclean unclean): $(echo "$out" | grep -E 'unclean:|ERROR|server closed' | head -5)"
fi
# at least some mutants must be accepted (the tier would be vacuous otherwise) and the bound must bite
if echo "$out" | grep -q '^import ok [0-9]' && echo "$out" | grep -q '^predict 22003 [0-9]'; then
	ok "mutants both accepted (import round trips) and rejected by the weight bound (22003)"
else
	notok "no accepted import or no 22003 among the mutants"
fi

# ---------------------------------------------------------------- 2. COPY BINARY
psql -X -q -d $db -v ON_ERROR_STOP=1 <<SQL >/dev/null || exit 1
CREATE TABLE adv_src (id int, s userseq, raw bytea);
INSERT INTO adv_src SELECT u, seq, userseq_send(seq) FROM adv_d WHERE u <= 40;
INSERT INTO adv_src VALUES (1000, '[]', userseq_send('[]'::userseq)),
	(1001, '[1@2024-01-01T00:00:00Z "a b", 2@2024-01-01T00:00:01Z, 3@2024-01-02T00:00:00Z "\\\\"]', NULL);
UPDATE adv_src SET raw = userseq_send(s) WHERE raw IS NULL;
CREATE TABLE adv_field (LIKE adv_src);
CREATE TABLE adv_file (LIKE adv_src);
\copy adv_src TO '$tmp/good.bin' WITH (FORMAT binary)
SQL
n_file=$((n_copy / 2))
perl test/adversarial/copy_mutate.pl "$tmp/good.bin" "$tmp" 4242 "$n_copy" "$n_file" || exit 1
{
	echo '\set VERBOSITY sqlstate'
	for j in $(seq "$n_copy"); do echo "\\copy adv_field FROM '$tmp/field_$j.bin' WITH (FORMAT binary)"; done
	for j in $(seq "$n_file"); do echo "\\copy adv_file FROM '$tmp/file_$j.bin' WITH (FORMAT binary)"; done
	echo "SELECT 'loaded ' || (SELECT count(*) FROM adv_field) || ' ' || (SELECT count(*) FROM adv_file);"
	echo "SELECT 'bad_roundtrip ' || (SELECT count(*) FROM adv_field WHERE userseq_send(s) IS DISTINCT FROM raw OR s::text::userseq IS DISTINCT FROM s) + (SELECT count(*) FROM adv_file WHERE s::text::userseq IS DISTINCT FROM s);"
} | psql -X -At -d $db >"$tmp/copy.out" 2>&1
rc=$?
states=$(grep -o 'ERROR:  [0-9A-Z]\{5\}' "$tmp/copy.out" | cut -c9- | sort | uniq -c | awk '{printf "%s:%s ", $2, $1}')
loaded=$(sed -n 's/^loaded //p' "$tmp/copy.out")
bad=$(sed -n 's/^bad_roundtrip //p' "$tmp/copy.out")
echo "#   COPY errors by SQLSTATE: $states; loaded (field mutants, file mutants): $loaded"
if [ $rc = 0 ] && [ "$bad" = 0 ] && ! grep -qE 'ERROR:  (XX|58)|server closed|connection to server' "$tmp/copy.out"; then
	ok "$n_copy field and $n_file file COPY BINARY mutants: clean SQLSTATEs, every loaded value round-trips"
else
	notok "COPY BINARY mutants (rc $rc, bad round trips '$bad'): $(grep -E 'ERROR:  (XX|58)|server closed' "$tmp/copy.out" | head -3)"
fi

# ---------------------------------------------------------------- 3. scoring during lifecycle churn
cat >"$tmp/score.sql" <<'SQL'
\set u random(1, 300)
SELECT userseq_predict('adv_bin', seq) FROM adv_d WHERE u = :u;
SELECT count(*) FROM adv_d, userseq_recommend('adv_ni', seq, 5) WHERE u = :u;
SQL
# the churn: retrain (always deployed), roll back, deploy the newest again, drop old versions
(
	i=0
	while :; do
		i=$((i + 1))
		psql -X -q -At -d $db -v ON_ERROR_STOP=1 >>"$tmp/loop.out" 2>&1 <<SQL || echo "LOOP ERROR at cycle $i" >>"$tmp/loop.out"
SET client_min_messages = warning;
SELECT new_version FROM userseq_retrain('adv_bin', '{"seed": $i}', true);
SELECT new_version FROM userseq_retrain('adv_ni', '{"seed": $i}', true);
SELECT userseq_rollback('adv_bin');
SELECT userseq_rollback('adv_ni');
SELECT userseq_deploy(name, max(version)) FROM models WHERE name IN ('adv_bin', 'adv_ni') GROUP BY name;
SELECT userseq_drop_model(name, version) FROM models m
WHERE name IN ('adv_bin', 'adv_ni') AND NOT deployed AND version < (SELECT max(version) - 2 FROM models WHERE name = m.name);
SQL
		echo "cycle $i" >>"$tmp/loop.out"
	done
) &
loop_pid=$!
pgbench -n -c 16 -j 2 -T "$seconds" -f "$tmp/score.sql" -d $db >"$tmp/bench.out" 2>&1
brc=$?
kill "$loop_pid" 2>/dev/null
wait "$loop_pid" 2>/dev/null
loop_pid=
cycles=$(grep -c '^cycle' "$tmp/loop.out")
loop_errors=$(grep -c 'LOOP ERROR' "$tmp/loop.out")
tx=$(sed -n 's/^number of transactions actually processed: \([0-9]*\).*/\1/p' "$tmp/bench.out")
failed=$(sed -n 's/^number of failed transactions: \([0-9]*\).*/\1/p' "$tmp/bench.out")
echo "#   16 clients, ${seconds} s: $tx transactions, ${failed:-?} failed; $cycles retrain/rollback/deploy/drop cycles, $loop_errors with errors"
if [ $brc = 0 ] && [ "${failed:-x}" = 0 ] && [ "${tx:-0}" -gt 0 ] && [ "$cycles" -gt 0 ] && [ "$loop_errors" = 0 ] &&
	! grep -q 'aborted' "$tmp/bench.out"; then
	ok "16 concurrent scoring clients during $cycles lifecycle cycles: $tx transactions, 0 errors"
else
	notok "concurrent scoring: pgbench rc $brc, $(grep -E 'ERROR|aborted' "$tmp/bench.out" "$tmp/loop.out" | head -3)"
fi

echo "# adversarial tier took $(($(date +%s) - start)) s"
[ $fails = 0 ] && echo "PASS adversarial" || echo "FAIL adversarial: $fails failed"
exit $((fails > 0))
