#!/bin/bash
# Progress visibility and pg_cancel_backend: a training run shows "userseq_train NAME: epoch
# i/n ... step ... eta" in pg_stat_activity.query while it runs; pg_cancel_backend stops it
# within about a second and the catalog gets no model and no log rows.
# Runs against the cluster in the PG* environment (pg_virtualenv or a private one).
set -u
db=us_cancel_$$
psql -X -q -d postgres -c "CREATE DATABASE $db" || exit 1
trap 'psql -X -q -d postgres -c "DROP DATABASE IF EXISTS $db" >/dev/null 2>&1' EXIT
fail() { echo "FAIL cancel: $*"; exit 1; }
psql -X -q -o /dev/null -d $db -v ON_ERROR_STOP=1 <<'SQL' || fail "setup"
CREATE EXTENSION userseq;
SELECT setseed(0.1);
CREATE TABLE s AS
SELECT u AS user_id,
       userseq(array_agg(((u * 7 + e * 3) % 300 + 1)::bigint ORDER BY e),
               array_agg(timestamptz '2024-01-01' + e * interval '1 hour' ORDER BY e)) AS seq,
       (u % 3 = 0) AS label
FROM generate_series(1, 2000) u, generate_series(1, 10 + u % 20) e GROUP BY u;
SQL
psql -X -q -d $db -c "SELECT * FROM userseq_train('long', 'SELECT seq, label FROM s', 'binary', '{\"epochs\": 10000, \"patience\": 0}')" \
	>/tmp/us_cancel_$$.out 2>&1 &
psql_pid=$!
progress=""
for i in $(seq 1 100); do
	progress=$(psql -X -At -d $db -c "SELECT query FROM pg_stat_activity WHERE query LIKE 'userseq_train long: epoch % step %'")
	[ -n "$progress" ] && break
	sleep 0.2
done
[ -n "$progress" ] || fail "no progress in pg_stat_activity"
echo "pg_stat_activity shows: ${progress:0:100}"
sleep 1
t0=$(date +%s.%N)
psql -X -At -d $db -c "SELECT pg_cancel_backend(pid) FROM pg_stat_activity WHERE query LIKE 'userseq_train long:%'" | grep -q t || fail "no backend to cancel"
wait $psql_pid
t1=$(date +%s.%N)
elapsed=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f", b - a }')
grep -q "canceling statement due to user request" /tmp/us_cancel_$$.out || { cat /tmp/us_cancel_$$.out; fail "no cancel error"; }
rm -f /tmp/us_cancel_$$.out
awk -v e="$elapsed" 'BEGIN { exit !(e < 2.0) }' || fail "cancel took ${elapsed}s"
n=$(psql -X -At -d $db -c "SELECT (SELECT count(*) FROM models) + (SELECT count(*) FROM training_log)")
[ "$n" = 0 ] || fail "catalog has $n rows after a cancelled run"
echo "PASS cancel: stopped ${elapsed}s after pg_cancel_backend, nothing stored"
