#!/bin/bash
# Benchmark (not a test): userseq_agg(item, ts, behavior) and userseq_agg(item, ts) vs
# array_agg(item ORDER BY ts), all grouped by user over the same generated table (default 10M
# events, 200k users) in the same cluster.
#
#   source /work/pgenv/NAME/env.sh; bash test/bench/agg_bench.sh [users] [events_per_user] [runs]
#   BENCH_REUSE=1 keeps an existing table of the right size; BENCH_WORK_MEM (default 1GB),
#   BENCH_WORKERS (default "0 2": serial, then max_parallel_workers_per_gather = 2).
#
# All three queries have the same shape and the same outer aggregate,
#   SELECT count(s) FROM (SELECT user_id, <agg> AS s FROM events GROUP BY user_id) x
# so result transfer is not measured but every per-user value is really built (count(s) needs
# each s; a count(*) would let the planner drop the aggregate). The comparison is not quite
# like for like in what is built: userseq_agg(item, ts, behavior) keeps 17 bytes per event
# (item, time, label) and sorts by (time, item, label); userseq_agg(item, ts) keeps 17 bytes
# (label byte 0) and sorts by (time, item); array_agg keeps the 8-byte items only, sorted by ts.
#
# Table layout: users are interleaved (row k belongs to user k mod users, as in an event log
# appended in time order across users) but times within a user are random, so every value
# needs a real sort. Each configuration first runs EXPLAIN (ANALYZE, TIMING OFF) once per
# query (plan, memory, sort method; also warms the cache), then RUNS rounds that each run the
# three queries in rotating order. Printed per run: wall time (ms, psql \timing) and, for
# serial runs, the backend's CPU time (utime+stime from /proc, 10 ms ticks), which waiting
# for a CPU on a loaded machine does not inflate. Then medians and ratios. uptime is printed
# before and after each configuration: on a shared machine, read the numbers with the load.
set -euo pipefail
USERS=${1:-200000}
PER_USER=${2:-50}
RUNS=${3:-5}
DB=${BENCH_DB:-userseq_bench}
WORK_MEM=${BENCH_WORK_MEM:-1GB}
WORKERS=${BENCH_WORKERS:-0 2}
TOTAL=$((USERS * PER_USER))

have=$(psql -X -Atq -d "$DB" -c "SELECT count(*) FROM events" 2>/dev/null || echo 0)
if [ "${BENCH_REUSE:-0}" != 1 ] || [ "$have" != "$TOTAL" ]; then
	psql -X -q -d postgres -c "DROP DATABASE IF EXISTS $DB" -c "CREATE DATABASE $DB"
	psql -X -q -d "$DB" <<SQL
CREATE EXTENSION userseq;
SELECT setseed(0.42) \g /dev/null
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
fi
echo "events: $(psql -X -Atq -d "$DB" -c 'SELECT count(*) FROM events'), users: $USERS," \
	"work_mem=$WORK_MEM, jit=off, $(nproc) cores, userseq $(psql -X -Atq -d "$DB" -c "SELECT extversion FROM pg_extension WHERE extname = 'userseq'")"
echo "events built (must equal the event count): userseq_agg3 $(psql -X -Atq -d "$DB" -c \
	"SELECT sum(userseq_length(s)) FROM (SELECT userseq_agg(item_id, ts, behavior) s FROM events GROUP BY user_id) x"),"\
	"array_agg $(psql -X -Atq -d "$DB" -c \
	"SELECT sum(cardinality(s)) FROM (SELECT array_agg(item_id ORDER BY ts) s FROM events GROUP BY user_id) x")"

NAMES=(userseq_agg3 userseq_agg2 array_agg)
AGGS=("userseq_agg(item_id, ts, behavior)" "userseq_agg(item_id, ts)" "array_agg(item_id ORDER BY ts)")
query() { echo "SELECT count(s) FROM (SELECT user_id, ${AGGS[$1]} AS s FROM events GROUP BY user_id) x"; }

run() {	# workers query-index -> "wall_ms cpu_ms" (cpu only meaningful for the backend itself)
	PGOPTIONS="-c max_parallel_workers_per_gather=$1 -c work_mem=$WORK_MEM -c jit=off" \
		psql -X -q -d "$DB" 2>&1 <<SQL | awk '/^Time:/ {w = $2} /^CPU / {c = $2 - c} END {printf "%.1f %d\n", w, c * 10}'
SELECT pg_backend_pid() AS pid \gset
\setenv BPID :pid
\! awk '{print "CPU", \$14 + \$15}' /proc/\$BPID/stat
\timing on
$(query "$2");
\timing off
\! awk '{print "CPU", \$14 + \$15}' /proc/\$BPID/stat
SQL
}
median() { sort -n | awk '{a[NR]=$1} END {print (NR % 2) ? a[(NR+1)/2] : (a[NR/2] + a[NR/2+1]) / 2}'; }

for workers in $WORKERS; do
	echo "== max_parallel_workers_per_gather=$workers   [$(uptime | sed 's/.*load/load/')]"
	for q in 0 1 2; do
		echo "-- EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF), run once: ${NAMES[$q]}"
		PGOPTIONS="-c max_parallel_workers_per_gather=$workers -c work_mem=$WORK_MEM -c jit=off" \
			psql -X -q -At -d "$DB" -c "EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF) $(query $q)" | sed 's/^/   /'
	done
	declare -A wall=() cpu=()
	for r in $(seq 1 "$RUNS"); do
		line="run $r:"
		for k in 0 1 2; do
			q=$(((r + k) % 3))
			read -r w c < <(run "$workers" "$q")
			wall[$q]+="$w "; cpu[$q]+="$c "
			line+="  ${NAMES[$q]} ${w} ms"
			[ "$workers" = 0 ] && line+=" (cpu ${c})"
		done
		echo "$line"
	done
	declare -A mw=() mc=()
	for q in 0 1 2; do
		mw[$q]=$(printf '%s\n' ${wall[$q]} | median)
		mc[$q]=$(printf '%s\n' ${cpu[$q]} | median)
	done
	echo "median wall ms: userseq_agg3 ${mw[0]}, userseq_agg2 ${mw[1]}, array_agg ${mw[2]};" \
		"array_agg/userseq_agg3 $(echo "scale=2; ${mw[2]} / ${mw[0]}" | bc)," \
		"array_agg/userseq_agg2 $(echo "scale=2; ${mw[2]} / ${mw[1]}" | bc)"
	if [ "$workers" = 0 ]; then
		echo "median backend cpu ms: userseq_agg3 ${mc[0]}, userseq_agg2 ${mc[1]}, array_agg ${mc[2]};" \
			"array_agg/userseq_agg3 $(echo "scale=2; ${mc[2]} / ${mc[0]}" | bc)," \
			"array_agg/userseq_agg2 $(echo "scale=2; ${mc[2]} / ${mc[1]}" | bc)"
	fi
	echo "   [$(uptime | sed 's/.*load/load/')]"
	unset wall cpu mw mc
done
