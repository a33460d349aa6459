#!/bin/bash
# Cross-session model versions: a query that is running while another session deploys a new
# version keeps scoring with the version it started with, and the next query uses the new one.
# Runs against the cluster in the PG* environment (creates and drops its own objects).
set -eu
psql() { command psql -X -q -v ON_ERROR_STOP=1 -At "$@"; }
psql -c "CREATE EXTENSION IF NOT EXISTS userseq"
psql -c "SELECT userseq_drop_model('t_ver')" >/dev/null 2>&1 || true
psql <<'SQL'
SET client_min_messages = warning;
DROP TABLE IF EXISTS t_ver_d;
CREATE TABLE t_ver_d AS
SELECT u, userseq(ARRAY(SELECT ((u * 3 + e * 5) % 40 + 1)::int8 FROM generate_series(1, 3 + u % 9) e)) AS seq,
       (u * 3) % 40 < 10 AS label FROM generate_series(1, 300) u;
SELECT count(*) FROM userseq_train('t_ver', 'SELECT seq, label FROM t_ver_d', 'binary', '{"epochs": 1, "embedding_dim": 8, "num_filters": 8, "hidden_dim": 8, "seed": 1}');
SELECT count(*) FROM userseq_train('t_ver', 'SELECT seq, label FROM t_ver_d', 'binary', '{"epochs": 1, "embedding_dim": 8, "num_filters": 8, "hidden_dim": 8, "seed": 2, "deploy": false}');
SELECT userseq_deploy('t_ver', 1) IS NULL AS deployed_v1;
SQL
v1=$(psql -c "SELECT userseq_predict('t_ver', seq) FROM t_ver_d WHERE u = 5")
v2=$(psql -c "SELECT userseq_predict(weights, seq) FROM models, t_ver_d WHERE name = 't_ver' AND version = 2 AND u = 5")
[ "$v1" != "$v2" ] || { echo "FAIL: versions 1 and 2 score alike"; exit 1; }

# session A: ~3 s query scoring the same sequence 30 times, 0.1 s apart
out=$(mktemp)
psql -c "SELECT count(DISTINCT p) || ' ' || min(p) FROM (SELECT userseq_predict('t_ver', d.seq) AS p FROM generate_series(1, 30) i, LATERAL (SELECT seq FROM t_ver_d, pg_sleep(0.1) WHERE u = 5 AND i > 0) d) x" >"$out" &
a=$!
sleep 1
# session B: deploy version 2 while A runs
psql -c "SELECT userseq_deploy('t_ver', 2)" >/dev/null
wait $a
read -r distinct first <"$out"
rm -f "$out"
fail=0
if [ "$distinct" = 1 ] && [ "$first" = "$v1" ]; then echo "ok 1 - the running query kept version 1 throughout"; else echo "not ok 1 - running query saw $distinct values (first $first, v1 $v1)"; fail=1; fi
now=$(psql -c "SELECT userseq_predict('t_ver', seq) FROM t_ver_d WHERE u = 5")
if [ "$now" = "$v2" ]; then echo "ok 2 - the next query uses version 2"; else echo "not ok 2 - next query gave $now, expected $v2"; fail=1; fi
psql -c "SELECT userseq_drop_model('t_ver')" >/dev/null
psql -c "DROP TABLE t_ver_d"
exit $fail
