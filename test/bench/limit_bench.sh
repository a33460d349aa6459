#!/bin/bash
# Folded scoring at the machine's limit (benchmark, not a test): the bare gather-and-add kernel,
# the core scorer, and SQL scoring, on the same N sequences, alternating, medians of RUNS rounds.
# Needs the PG* environment of a cluster with userseq installed and a C compiler.
#
#   N=50000 RUNS=5 bash test/bench/limit_bench.sh
#
# Shape: V = 10,000 item rows, E = F = H = 128, widths 3,4,5, max_len 100; sequences of
# Zipf-like items, mean length 62.5 (test/bench/bench_limit.c writes them, the same ones it
# times). Each round runs, one after the other:
#   limit       bench_limit's bare kernel (one thread, -O3 -march=native, nothing but the folded
#               gathers, adds and max-pooling)
#   core        us_scorer_forward on a random binary model of the same shape (one thread)
#   SQL serial  SELECT sum(userseq_predict('bench_limit_spec', seq)) over the N rows, a random
#               binary model of the same shape (mkmodel), in a session that has already decoded it
#   SQL 2 workers  the same with 2 parallel workers plus the leader (each worker decodes the
#               model itself: part of what it costs today)
# and prints per-round rates, the medians and the ratios to the limit.
set -eu
cd "$(dirname "$0")/../.."
N=${N:-50000}
RUNS=${RUNS:-5}
DIR=${BENCH_DIR:-/tmp/userseq_limit_bench}
mkdir -p "$DIR"
chmod 755 "$DIR"
q() { psql -X -q -At -v ON_ERROR_STOP=1 "$@"; }
median() { sort -g | awk '{a[NR]=$1} END {print (NR % 2) ? a[(NR+1)/2] : (a[NR/2] + a[NR/2+1]) / 2}'; }
SQL_SUM="SELECT sum(userseq_predict('bench_limit_spec', seq)) FROM limit_seqs"
CPU="SELECT 'cpu: ' || (split_part(s, ' ', 14)::bigint + split_part(s, ' ', 15)::bigint) FROM pg_read_file('/proc/self/stat') s;"
# "wall CPU" seconds of the scoring statement in a fresh session after settings $1 and a one-row
# warm-up; CPU is the session's backend (utime + stime from /proc, 10 ms ticks), not its workers
timed() {
	psql -X -q -At -v ON_ERROR_STOP=1 <<SQL | awk '/^Time:/ {t = $2} /^cpu:/ {c[++n] = $2} END {printf "%.3f %.2f\n", t / 1000, (c[2] - c[1]) / 100}'
$1
SELECT userseq_predict('bench_limit_spec', seq) FROM limit_seqs LIMIT 1;
$CPU
\\timing on
$SQL_SUM;
\\timing off
$CPU
SQL
}

echo "== building bench_limit and writing $N sequences; load at start: $(cut -d' ' -f1-3 /proc/loadavg)"
make -s bench-limit BENCH_ARGS="1 $N $DIR/seqs_$N.tsv" >/dev/null
chmod 644 "$DIR/seqs_$N.tsv"
cc -O2 -std=c11 -D_POSIX_C_SOURCE=200809L -Iinclude -o "$DIR/mkmodel" test/bench/mkmodel.c src/core/*.c -lopenblas -lm
"$DIR/mkmodel" binary 9998 128 128 128 100 7 "$DIR/spec.m"
chmod 644 "$DIR/spec.m"
q -c "SET client_min_messages = warning; CREATE EXTENSION IF NOT EXISTS userseq"
q -c "SELECT userseq_drop_model('bench_limit_spec')" >/dev/null 2>&1 || true
q -c "SELECT userseq_import('bench_limit_spec', pg_read_binary_file('$DIR/spec.m'))" >/dev/null
q <<SQL
SET client_min_messages = warning;
DROP TABLE IF EXISTS limit_in, limit_seqs;
CREATE UNLOGGED TABLE limit_in (label int, ids text);
COPY limit_in FROM '$DIR/seqs_$N.tsv';
CREATE UNLOGGED TABLE limit_seqs AS SELECT userseq(string_to_array(ids, ' ')::int8[]) AS seq FROM limit_in;
DROP TABLE limit_in;
VACUUM ANALYZE limit_seqs;
SQL
echo "rows: $(q -c 'SELECT count(*) FROM limit_seqs'), mean length $(q -c 'SELECT round(avg(userseq_length(seq)), 1) FROM limit_seqs')"
PAR="SET parallel_setup_cost = 0; SET parallel_tuple_cost = 0; SET min_parallel_table_scan_size = 0; SET max_parallel_workers_per_gather = 2;"
q -c "$PAR EXPLAIN (COSTS OFF) $SQL_SUM" | grep -E "Workers Planned" | sed 's/^ */plan: /'

lim=(); core=(); ser=(); par=(); limc=(); corec=(); serc=()
field() { echo "$1" | sed "s/.*\"$2\": \([0-9]*\).*/\1/"; }
for r in $(seq 1 "$RUNS"); do
	line=$(OPENBLAS_NUM_THREADS=1 test/bench/build/bench_limit 1 "$N" | tail -1)
	lim+=("$(field "$line" limit_seq_per_s)")
	limc+=("$(field "$line" limit_cpu_seq_per_s)")
	core+=("$(field "$line" core_seq_per_s)")
	corec+=("$(field "$line" core_cpu_seq_per_s)")
	read -r sw sc <<<"$(timed "SET max_parallel_workers_per_gather = 0;")"
	read -r pw pc <<<"$(timed "$PAR")"
	ser+=("$(echo "$N / $sw" | bc)")
	serc+=("$(echo "$N / $sc" | bc)")
	par+=("$(echo "$N / $pw" | bc)")
	echo "round $r (seq/s, wall | CPU): limit ${lim[-1]} | ${limc[-1]}, core ${core[-1]} | ${corec[-1]}, SQL serial ${ser[-1]} | ${serc[-1]}, SQL 2 workers ${par[-1]}; load $(cut -d' ' -f1 /proc/loadavg)"
done
med() { printf '%s\n' "$@" | median; }
ml=$(med "${lim[@]}"); mc=$(med "${core[@]}"); ms=$(med "${ser[@]}"); mp=$(med "${par[@]}")
mlc=$(med "${limc[@]}"); mcc=$(med "${corec[@]}"); msc=$(med "${serc[@]}")
pct() { printf '%.0f %%' "$(echo "100 * $1 / $2" | bc -l)"; }
echo "| seq/s, medians of $RUNS rounds, $N sequences | wall | of the limit (wall) | per CPU second | of the limit (CPU) |"
echo "|---|---|---|---|---|"
printf '| limit: bare gather-and-add, 1 thread | %.0f | 100 %% | %.0f | 100 %% |\n' "$ml" "$mlc"
printf '| core scorer (us_scorer_forward), 1 thread | %.0f | %s | %.0f | %s |\n' "$mc" "$(pct "$mc" "$ml")" "$mcc" "$(pct "$mcc" "$mlc")"
printf '| SQL serial | %.0f | %s | %.0f | %s |\n' "$ms" "$(pct "$ms" "$ml")" "$msc" "$(pct "$msc" "$mlc")"
printf '| SQL 2 workers + leader | %.0f | %s | | |\n' "$mp" "$(pct "$mp" "$ml")"
echo "load average at the end: $(cut -d' ' -f1-3 /proc/loadavg) (2 vCPUs, shared)"
