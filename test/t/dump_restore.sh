#!/bin/bash
# pg_dump / pg_restore keeps the model catalog (pg_extension_config_dump): models,
# training_log and the run-id sequence come back identical, scoring gives identical
# predictions (when userseq_predict is installed), and new versions can be trained after
# the restore (identity and run-id sequences continue). Uses the cluster in the PG* env.
set -u
src=us_dump_src_$$
dst=us_dump_dst_$$
dump=$(mktemp)
cleanup() {
	psql -X -q -d postgres -c "DROP DATABASE IF EXISTS $src" -c "DROP DATABASE IF EXISTS $dst" >/dev/null 2>&1
	rm -f "$dump"
}
trap cleanup EXIT
fail() { echo "FAIL dump_restore: $*"; exit 1; }

psql -X -q -d postgres -c "CREATE DATABASE $src" || fail "createdb"
psql -X -q -o /dev/null -d $src -v ON_ERROR_STOP=1 <<'SQL' || fail "setup"
SET client_min_messages = warning;
CREATE EXTENSION userseq;
SELECT setseed(0.3);
CREATE TABLE s AS
SELECT u AS user_id,
       userseq(array_agg(((u * 7 + e * 3) % 120 + 1)::bigint ORDER BY e),
               array_agg(timestamptz '2024-01-01' + e * interval '1 hour' ORDER BY e),
               array_agg((ARRAY['view', 'buy'])[1 + e % 2] ORDER BY e)) AS seq,
       bool_or((u * 7 + e * 3) % 120 < 10) AS label
FROM generate_series(1, 500) u, generate_series(1, 4 + u % 10) e GROUP BY u;
SELECT count(*) FROM userseq_train('dr', 'SELECT seq, label FROM s ORDER BY user_id', 'binary', '{"epochs": 2, "embedding_dim": 16, "num_filters": 16, "hidden_dim": 16}');
SELECT count(*) FROM userseq_train('dr', 'SELECT seq, label FROM s ORDER BY user_id', 'binary', '{"epochs": 1, "seed": 5, "deploy": false}');
SELECT count(*) FROM userseq_train('dn', 'SELECT seq FROM s ORDER BY user_id', 'next_item', '{"epochs": 1, "embedding_dim": 16}');
SQL

pg_dump -Fc -d $src -f "$dump" || fail "pg_dump"
psql -X -q -d postgres -c "CREATE DATABASE $dst" || fail "createdb"
pg_restore -d $dst "$dump" || fail "pg_restore"

catalog="SELECT name, version, task, md5(weights), deployed, config, options, metrics, query, owner, created_by, run_id, created_at FROM models ORDER BY name, version"
log="SELECT run_id, model, version, epoch, train_loss, valid_loss, valid_metric, metric_name, learning_rate, seconds, logged_at FROM training_log ORDER BY run_id, epoch"
a=$(psql -X -At -d $src -c "$catalog") && b=$(psql -X -At -d $dst -c "$catalog") || fail "read models"
[ -n "$a" ] && [ "$a" = "$b" ] || fail "models differ after restore"
a=$(psql -X -At -d $src -c "$log") && b=$(psql -X -At -d $dst -c "$log") || fail "read training_log"
[ -n "$a" ] && [ "$a" = "$b" ] || fail "training_log differs after restore"
echo "models and training_log identical after restore ($(psql -X -At -d $dst -c 'SELECT count(*) FROM models') models)"

has_predict=$(psql -X -At -d $dst -c "SELECT to_regprocedure('userseq_predict(text,userseq)') IS NOT NULL")
if [ "$has_predict" = t ]; then
	pred="SELECT user_id, userseq_predict('dr', seq) FROM s ORDER BY user_id"
	a=$(psql -X -At -d $src -c "$pred") && b=$(psql -X -At -d $dst -c "$pred") || fail "predict"
	[ -n "$a" ] && [ "$a" = "$b" ] || fail "predictions differ after restore"
	echo "userseq_predict identical on $(echo "$a" | wc -l) sequences"
else
	echo "userseq_predict not installed: predictions compared through the weights md5 only"
fi

# new versions after the restore: model_id identity and run ids must continue, not collide
n=$(psql -X -At -d $dst -c "SET client_min_messages = warning; SELECT count(*) FROM userseq_train('dr', 'SELECT seq, label FROM s', 'binary', '{\"epochs\": 1, \"embedding_dim\": 8, \"num_filters\": 8, \"hidden_dim\": 8}')") || fail "training after restore"
v=$(psql -X -At -d $dst -c "SELECT version || ' ' || (run_id > (SELECT max(run_id) FROM training_log WHERE version < 3))::int FROM models WHERE name = 'dr' AND deployed")
[ "$v" = "3 1" ] || fail "after restore the new version/run id check is '$v', want '3 1'"
echo "PASS dump_restore"
