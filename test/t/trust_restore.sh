#!/bin/bash
# Issue 10.6: a database owner who is not a superuser can dump and restore the models of the
# (trusted) extension it created: pg_dump, then pg_restore --no-owner into a new database of
# the same owner, connected as (SET ROLE to) that owner. The catalog comes back identical
# (models of the owner and of another role, training_log, sequence positions), scoring by name
# gives identical results, and training continues with fresh ids.
# Runs against the cluster in the PG* environment, in its own databases.
set -u
src=us_rs_src_$$
dst=us_rs_dst_$$
dump=$(mktemp)
log=$(mktemp)
cleanup() {
	psql -X -q -d postgres -c "DROP DATABASE IF EXISTS $src" -c "DROP DATABASE IF EXISTS $dst" >/dev/null 2>&1
	psql -X -q -d postgres -c "DROP ROLE IF EXISTS us_rs_owner" -c "DROP ROLE IF EXISTS us_rs_bob" >/dev/null 2>&1
	rm -f "$dump" "$log"
}
trap cleanup EXIT
fails=0
ok() { echo "ok - $*"; }
notok() { echo "not ok - $*"; fails=$((fails + 1)); }

psql -X -q -d postgres -v ON_ERROR_STOP=1 <<SQL || exit 1
SET client_min_messages = warning;
DROP ROLE IF EXISTS us_rs_owner;
DROP ROLE IF EXISTS us_rs_bob;
CREATE ROLE us_rs_owner;
CREATE ROLE us_rs_bob;
CREATE DATABASE $src OWNER us_rs_owner;
CREATE DATABASE $dst OWNER us_rs_owner;
SQL
psql -X -q -o /dev/null -d $src -v ON_ERROR_STOP=1 <<'SQL' || exit 1
SET client_min_messages = warning;
SET ROLE us_rs_owner;
CREATE EXTENSION userseq;   -- trusted: the database owner may
CREATE TABLE d AS
SELECT u, userseq(ARRAY(SELECT ((u * 3 + e * 5) % 40 + 1)::int8 FROM generate_series(1, 3 + u % 9) e)) AS seq,
       (u * 3) % 40 < 10 AS label FROM generate_series(1, 300) u;
GRANT SELECT ON d TO PUBLIC;
SELECT count(*) FROM userseq_train('rs_owner', 'SELECT seq, label FROM d', 'binary', '{"epochs": 2, "embedding_dim": 8, "num_filters": 8, "hidden_dim": 8}');
SELECT count(*) FROM userseq_train('rs_owner', 'SELECT seq, label FROM d', 'binary', '{"epochs": 1, "embedding_dim": 8, "num_filters": 8, "hidden_dim": 8, "seed": 3, "deploy": false}');
SET ROLE us_rs_bob;
SELECT count(*) FROM userseq_train('rs_bob', 'SELECT seq FROM d', 'next_item', '{"epochs": 1, "embedding_dim": 8, "num_filters": 8, "hidden_dim": 8}');
RESET ROLE;
SELECT count(*) FROM userseq_train('rs_super', 'SELECT seq, label FROM d', 'binary', '{"epochs": 1, "embedding_dim": 8, "num_filters": 8, "hidden_dim": 8}');
SQL

# dump and restore as the database owner
pg_dump -Fc --role=us_rs_owner -d $src -f "$dump" || { echo "FAIL trust_restore: pg_dump as the owner"; exit 1; }
if pg_restore --no-owner --role=us_rs_owner -d $dst "$dump" >"$log" 2>&1; then
	ok "pg_restore --no-owner as the non-superuser database owner: no error"
else
	notok "pg_restore as the owner failed: $(grep -m3 ERROR "$log" | tr '\n' ' ')"
fi

# the superuser's model is the one row whose owner changes (checked below)
catalog="SELECT name, version, task, md5(weights), deployed, config, options, metrics, query, CASE WHEN name <> 'rs_super' THEN owner END, created_by, run_id, created_at FROM models ORDER BY name, version"
trlog="SELECT run_id, model, version, epoch, train_loss, valid_loss, valid_metric, learning_rate, logged_at FROM training_log ORDER BY run_id, epoch"
a=$(psql -X -At -d $src -c "$catalog") && b=$(psql -X -At -d $dst -c "$catalog")
if [ -n "$a" ] && [ "$a" = "$b" ]; then ok "models identical ($(echo "$b" | wc -l) versions, three owners)"; else notok "models differ: $(echo "$b" | wc -l) rows restored"; fi
o=$(psql -X -At -d $dst -c "SELECT owner FROM models WHERE name = 'rs_super'")
if [ "$o" = us_rs_owner ]; then
	ok "the superuser's model now belongs to the restoring owner"
else
	notok "the superuser's model is owned by '$o' after the restore"
fi
# the owner may insert (restore), never rewrite or delete, and never name a superuser
w=$(psql -X -At -d $dst 2>&1 <<'SQL'
SET ROLE us_rs_owner;
UPDATE models SET query = 'SELECT 1' WHERE name = 'rs_bob';
DELETE FROM models WHERE name = 'rs_bob';
SET client_min_messages = error;
INSERT INTO models (name, version, task, config, options, metrics, weights, owner, created_by)
SELECT 'forged', 1, task, config, options, metrics, weights, 'postgres', 'postgres' FROM models WHERE name = 'rs_owner' AND version = 1;
SELECT owner FROM models WHERE name = 'forged';
SQL
)
if [ "$(echo "$w" | grep -c 'permission denied for table models')" = 2 ] && [ "$(echo "$w" | tail -1)" = us_rs_owner ]; then
	ok "the owner cannot UPDATE or DELETE models, and a row it inserts naming a superuser becomes its own"
else
	notok "direct writes by the owner: $w"
fi
a=$(psql -X -At -d $src -c "$trlog") && b=$(psql -X -At -d $dst -c "$trlog")
if [ -n "$a" ] && [ "$a" = "$b" ]; then ok "training_log identical"; else notok "training_log differs"; fi
pred="SELECT u, userseq_predict('rs_owner', seq), (SELECT array_agg(item) FROM userseq_recommend('rs_bob', seq, 3)) FROM d ORDER BY u"
a=$(psql -X -At -d $src -c "$pred" 2>&1) && b=$(psql -X -At -d $dst -c "$pred" 2>&1)
if [ -n "$a" ] && [ "$a" = "$b" ]; then ok "scoring by name identical on 300 sequences"; else notok "scoring differs: $(echo "$b" | head -2)"; fi

# the owners keep their rights, and ids continue
v=$(psql -X -At -d $dst -c "SET client_min_messages = warning; SET ROLE us_rs_bob; SELECT count(*) FROM userseq_train('rs_bob', 'SELECT seq FROM d', 'next_item', '{\"epochs\": 1, \"embedding_dim\": 8, \"num_filters\": 8, \"hidden_dim\": 8}')" 2>&1 |
	tail -1)
w=$(psql -X -At -d $dst -c "SELECT version, run_id > (SELECT max(run_id) FROM training_log WHERE model <> 'rs_bob' OR version = 1), model_id > (SELECT max(model_id) FROM models WHERE version = 1) FROM models WHERE name = 'rs_bob' AND deployed")
if [ "$w" = "2|t|t" ]; then ok "bob trains version 2 after the restore, with fresh run and model ids"; else notok "after the restore: '$v' / '$w'"; fi
d=$(psql -X -At -d $dst -c "SET ROLE us_rs_bob; SELECT userseq_deploy('rs_owner', 1)" 2>&1)
if echo "$d" | grep -q 'permission denied for model "rs_owner"'; then ok "bob still cannot deploy the owner's model"; else notok "bob deploying the owner's model gave: $d"; fi

[ $fails = 0 ] && echo "PASS trust_restore" || echo "FAIL trust_restore: $fails failed"
exit $((fails > 0))
