#!/bin/bash
# Benchmark (not a test): userseq_agg(item, ts, behavior) vs array_agg(item ORDER BY ts), both
# grouped by user over the same generated 10M-event table in the same cluster.
#
#   source /work/pgenv/NAME/env.sh; bash test/bench/agg_bench.sh [users] [events_per_user] [runs]
#
# Each query is wrapped as SELECT sum(<length of the result>) FROM (... GROUP BY user_id) s, so
# result transfer is not measured but every aggregate value is really built (a plain count(*)
# would let the planner drop the unused aggregate). Runs alternate between the two queries;
# the script prints every time (ms, psql \timing) and the medians, serial
# (max_parallel_workers_per_gather = 0) and parallel (= 2). Needs the extension installed.
set -euo pipefail
USERS=${1:-200000}
PER_USER=${2:-50}
RUNS=${3:-5}
DB=${BENCH_DB:-userseq_bench}
WORK_MEM=${BENCH_WORK_MEM:-1GB}

psql -X -q -d postgres -c "DROP DATABASE IF EXISTS $DB" -c "CREATE DATABASE $DB"
psql -X -q -d "$DB" <<SQL
CREATE EXTENSION userseq;
SELECT setseed(0.42);
-- item ids log-uniform over 1..100000 (Zipf-like: p(i) ~ 1/i), timestamps uniform over 90
-- days, 4 behaviours with view most frequent
CREATE TABLE events AS
SELECT u AS user_id,
       floor(exp(random() * ln(100000)))::bigint AS item_id,
       timestamptz '2024-01-01 00:00:00+00' + random() * interval '90 days' AS ts,
       (ARRAY['view', 'search', 'cart', 'buy'])[1 + floor(random() ^ 2 * 4)::int] AS behavior
FROM generate_series(1, $USERS) u, generate_series(1, $PER_USER) e;
VACUUM ANALYZE events;
SQL
echo "events: $(psql -X -Atq -d "$DB" -c 'SELECT count(*) FROM events'), work_mem=$WORK_MEM, $(nproc) cores"

Q_US="SELECT sum(userseq_length(s)) FROM (SELECT user_id, userseq_agg(item_id, ts, behavior) AS s FROM events GROUP BY user_id) x"
Q_AR="SELECT sum(cardinality(s)) FROM (SELECT user_id, array_agg(item_id ORDER BY ts) AS s FROM events GROUP BY user_id) x"

timeit() {	# workers query -> ms
	PGOPTIONS="-c max_parallel_workers_per_gather=$1 -c work_mem=$WORK_MEM -c jit=off" \
		psql -X -q -d "$DB" -c '\timing on' -c "$2" | sed -n 's/^Time: \([0-9.]*\) ms.*/\1/p'
}
median() { sort -n | awk '{a[NR]=$1} END {print (NR % 2) ? a[(NR+1)/2] : (a[NR/2] + a[NR/2+1]) / 2}'; }

for workers in 0 2; do
	echo "== max_parallel_workers_per_gather=$workers"
	PGOPTIONS="-c max_parallel_workers_per_gather=$workers -c work_mem=$WORK_MEM" \
		psql -X -q -d "$DB" -c "EXPLAIN (COSTS OFF) $Q_US" -c "EXPLAIN (COSTS OFF) $Q_AR" | grep -v '^$'
	timeit "$workers" "$Q_US" >/dev/null	# warm the cache
	us=(); ar=()
	for r in $(seq 1 "$RUNS"); do
		us+=("$(timeit "$workers" "$Q_US")")
		ar+=("$(timeit "$workers" "$Q_AR")")
		echo "run $r: userseq_agg ${us[-1]} ms, array_agg ${ar[-1]} ms"
	done
	mu=$(printf '%s\n' "${us[@]}" | median)
	ma=$(printf '%s\n' "${ar[@]}" | median)
	echo "median: userseq_agg $mu ms, array_agg(ORDER BY ts) $ma ms, ratio array_agg/userseq_agg $(echo "scale=2; $ma / $mu" | bc)"
done
