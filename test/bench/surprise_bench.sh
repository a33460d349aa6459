#!/bin/bash
# userseq_surprise sequences per second per core in SQL, at 10,000 items, on a trained model
# (trained weights leave most hidden units at zero, which the surprise head exploits; random
# weights do not: see explain_bench.sh). Against a cluster with userseq installed (PG* env).
#   USERS=4000 RUNS=3 bash test/bench/surprise_bench.sh
# Generated users (userseq_generate_events, 10,000 items, about 48 events each), a next_item
# model with the default options trained on three quarters of them (2 epochs), then
# SELECT count(userseq_surprise(...)) over the other quarter, serial, RUNS times: per wall second
# and per second of the backend's CPU time; and the load average.
set -eu
USERS=${USERS:-4000}
RUNS=${RUNS:-3}
DB=${DB:-userseq_surprise_bench}
psql -X -q -d postgres -c "DROP DATABASE IF EXISTS $DB" -c "CREATE DATABASE $DB"
P="psql -X -q -v ON_ERROR_STOP=1 -d $DB"
$P <<SQL
SET client_min_messages = warning;
CREATE EXTENSION userseq;
CREATE TABLE sb AS SELECT user_id, userseq_agg(item_id, ts, behavior) AS seq
FROM userseq_generate_events($USERS, 5, items => 10000) GROUP BY user_id;
SELECT count(*) FROM userseq_train('sb', 'SELECT seq FROM sb WHERE user_id % 4 <> 0 ORDER BY user_id', 'next_item',
	'{"epochs": 2, "seed": 1, "threads": 1}');
SQL
echo "# $(date -u '+%Y-%m-%d %H:%M') UTC, load $(cut -d' ' -f1-3 /proc/loadavg)"
$P -At -c "SELECT count(*), avg(userseq_length(seq)) FROM sb WHERE user_id % 4 = 0" | sed 's/^/# scored sequences, mean length: /'
# backend CPU seconds from /proc (utime + stime, clock ticks): less sensitive to other jobs
cpu_of() { awk -v hz="$(getconf CLK_TCK)" '{ printf "%.3f", ($14 + $15) / hz }' "/proc/$1/stat"; }
N=$($P -At -c "SELECT count(*) FROM sb WHERE user_id % 4 = 0")
for r in $(seq "$RUNS"); do
	coproc PSQL { $P -At 2>&1; }
	echo "SET max_parallel_workers_per_gather = 0; SELECT pg_backend_pid();" >&"${PSQL[1]}"
	read -r pid <&"${PSQL[0]}"
	echo "SELECT userseq_surprise('sb', seq) IS NOT NULL FROM sb WHERE user_id = 4;" >&"${PSQL[1]}"   # decode and cache first
	read -r _ <&"${PSQL[0]}"
	c0=$(cpu_of "$pid"); t0=$(date +%s.%N)
	echo "SELECT count(userseq_surprise('sb', seq)) FROM sb WHERE user_id % 4 = 0;" >&"${PSQL[1]}"
	read -r _ <&"${PSQL[0]}"
	t1=$(date +%s.%N); c1=$(cpu_of "$pid")
	exec {PSQL[1]}>&-
	wait "$PSQL_PID" 2>/dev/null || true
	awk -v n="$N" -v t="$(echo "$t1 - $t0" | bc)" -v c="$(echo "$c1 - $c0" | bc)" -v r="$r" \
		'BEGIN { printf "run %d: %d sequences, %.1f per wall second, %.1f per backend CPU second\n", r, n, n / t, n / c }'
done
echo "# load $(cut -d' ' -f1-3 /proc/loadavg)"
psql -X -q -d postgres -c "DROP DATABASE $DB"
