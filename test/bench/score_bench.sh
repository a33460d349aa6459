#!/bin/bash
# Scoring throughput of userseq against the PyTorch peer (benchmark, not a
# test). Needs the PG* environment of a cluster with userseq installed; the peer is
# test/bench/torch_textcnn.py on /usr/bin/python3 (python3-torch, installed here if missing).
#
#   N=1000000 RUNS=5 bash test/bench/score_bench.sh
#
# 1. N sequences from torch_textcnn.py gen (spec shape: L <= 100, V = 10000), loaded into a
#    table; a binary model of the peer's spec shape (E = F = H = 128, widths 3,4,5) trained in
#    the database for one epoch on 20,000 of them (speed does not depend on quality).
# 2. SELECT sum(userseq_predict('bench_spec', seq)) over all N rows: serial, then with 2 parallel
#    workers (plus the leader); RUNS runs each, median.
# 3. PyTorch: torch_textcnn.py bench on 20,480 sequences of the same generator, 1 thread, which
#    reports infer_seq_per_s at batch 1024 (eval mode, inference_mode).
# Recommendations per second are measured by test/bench/rec_bench.sh.
set -eu
cd "$(dirname "$0")/../.."
N=${N:-1000000}
RUNS=${RUNS:-5}
DIR=${BENCH_DIR:-/tmp/userseq_score_bench}
PEER=${PEER:-$PWD/test/bench/torch_textcnn.py}
# shellcheck source=test/bench/bench_deps.sh
. test/bench/bench_deps.sh
bench_need_torch
bench_need bc
mkdir -p "$DIR"
q() { psql -X -q -At -v ON_ERROR_STOP=1 "$@"; }
median() { sort -g | awk '{a[NR]=$1} END {print (NR % 2) ? a[(NR+1)/2] : (a[NR/2] + a[NR/2+1]) / 2}'; }
# wall seconds of one SQL statement run in a fresh session (so parallel workers start cold too)
timed() {
	local t0 t1
	t0=$(date +%s.%N)
	q -c "$1" >/dev/null
	t1=$(date +%s.%N)
	echo "$t1 - $t0" | bc -l
}

echo "== data: $N sequences (torch_textcnn.py gen, L<=100, V=10000, seed 12345)"
[ -f "$DIR/seq_$N.tsv" ] || /usr/bin/python3 "$PEER" gen --out "$DIR/seq_$N.tsv" --n "$N" --max-len 100 --vocab 10000 --seed 12345 >/dev/null
q -c "CREATE EXTENSION IF NOT EXISTS userseq"
q <<SQL
SET client_min_messages = warning;
DROP TABLE IF EXISTS bench_in, bench_seqs;
CREATE UNLOGGED TABLE bench_in (label int, ids text);
COPY bench_in FROM '$DIR/seq_$N.tsv';
CREATE UNLOGGED TABLE bench_seqs AS
	SELECT row_number() OVER () AS id, label = 1 AS label, userseq(string_to_array(ids, ' ')::int8[]) AS seq FROM bench_in;
DROP TABLE bench_in;
VACUUM ANALYZE bench_seqs;
SQL
echo "rows: $(q -c 'SELECT count(*) FROM bench_seqs'), mean length $(q -c 'SELECT round(avg(userseq_length(seq)), 1) FROM bench_seqs')"

echo "== training the spec-shaped model in the database (1 epoch, 20,000 sequences)"
q -c "SELECT userseq_drop_model('bench_spec')" >/dev/null 2>&1 || true
q -c "SET client_min_messages = warning; SELECT count(*) FROM userseq_train('bench_spec', 'SELECT seq, label FROM bench_seqs WHERE id <= 20000', 'binary', '{\"epochs\": 1, \"embedding_dim\": 128, \"num_filters\": 128, \"hidden_dim\": 128, \"filter_widths\": [3, 4, 5], \"max_len\": 100, \"seed\": 1}')" >/dev/null
echo "model: $(q -c "SELECT config->>'n_items' || ' item rows, ' || length(weights) || ' bytes' FROM models WHERE name = 'bench_spec' AND deployed")"

SQL_SUM="SELECT sum(userseq_predict('bench_spec', seq)) FROM bench_seqs"
SERIAL="SET max_parallel_workers_per_gather = 0; $SQL_SUM"
PAR="SET parallel_setup_cost = 0; SET parallel_tuple_cost = 0; SET min_parallel_table_scan_size = 0; SET max_parallel_workers_per_gather = 2; $SQL_SUM"
q -c "EXPLAIN (COSTS OFF) $SQL_SUM" -c "SET parallel_setup_cost = 0" -c "SET min_parallel_table_scan_size = 0" -c "SET max_parallel_workers_per_gather = 2" -c "EXPLAIN (COSTS OFF) $SQL_SUM" | grep -E "Workers|Aggregate" | tr '\n' ';'; echo
timed "$SERIAL" >/dev/null	# warm-up: table in shared buffers / OS cache
ser=(); par=()
for r in $(seq 1 "$RUNS"); do
	ser+=("$(timed "$SERIAL")")
	par+=("$(timed "$PAR")")
done
ser_med=$(printf '%s\n' "${ser[@]}" | median)
par_med=$(printf '%s\n' "${par[@]}" | median)
ser_rate=$(echo "$N / $ser_med" | bc -l)
par_rate=$(echo "$N / $par_med" | bc -l)
printf 'serial   runs (s): %s\n' "${ser[*]}"
printf '2 workers runs (s): %s\n' "${par[*]}"
printf 'userseq serial: median %.2f s = %.0f seq/s; 2 workers: median %.2f s = %.0f seq/s (x%.2f)\n' \
	"$ser_med" "$ser_rate" "$par_med" "$par_rate" "$(echo "$par_rate / $ser_rate" | bc -l)"

echo "== PyTorch peer: batch-1024 inference, 1 thread, spec shape"
[ -f "$DIR/seq_torch.tsv" ] || /usr/bin/python3 "$PEER" gen --out "$DIR/seq_torch.tsv" --n 20480 --max-len 100 --vocab 10000 --seed 12345 >/dev/null
torch=$(/usr/bin/python3 "$PEER" bench --data "$DIR/seq_torch.tsv" --task binary --vocab 10000 --max-len 100 \
	--epochs 1 --threads 1 --infer-batches 8 | grep '"summary"' | /usr/bin/python3 -c 'import json,sys; print(json.loads(sys.stdin.read())["infer_seq_per_s"])')
printf 'torch infer_seq_per_s (B=1024, 1 thread): %.0f\n' "$torch"
printf 'ratio userseq serial / torch 1 thread: x%.1f; userseq 2 workers / torch 1 thread: x%.1f\n' \
	"$(echo "$ser_rate / $torch" | bc -l)" "$(echo "$par_rate / $torch" | bc -l)"

echo "load average at the end: $(cut -d' ' -f1-3 /proc/loadavg) (2 vCPUs, shared)"
