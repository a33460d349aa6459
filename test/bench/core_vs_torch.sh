#!/bin/bash
# core_vs_torch.sh: userseq's core (test/bench/build/core_train) against the PyTorch peer
# (test/bench/torch_textcnn.py bench) on identical TSV files, same hyperparameters and threads.
# Installs python3-torch when /usr/bin/python3 has no torch, and builds core_train if missing.
#
# Generates the data with `torch_textcnn.py gen` (variable lengths, its default), then for every
# repetition runs each (config, threads) on both systems, alternating which goes first, each
# run in a fresh process with OPENBLAS_NUM_THREADS / OMP_NUM_THREADS set before start, and
# records the load average before every run. Then one next_item run per system.
# Prints a markdown table of medians and ratios (test/bench/bench_table.py); raw JSON lines
# stay in $BENCH_OUT. It does not change OPENBLAS_CORETYPE and needs no PostgreSQL.
#
# Knobs (environment): BENCH_RUNS (3), BENCH_THREADS ("1 2"), BENCH_CONFIGS ("spec lean"),
# BENCH_N_SPEC / BENCH_N_LEAN (sequences, 20000), BENCH_EPOCHS (1), BENCH_NEXT (1: run next_item),
# BENCH_NEXT_N (20000), BENCH_NEXT_THREADS (1), BENCH_NEXT_RUNS (1), BENCH_INFER_BATCHES (8),
# BENCH_OUT (test/bench/out), PEER (path of torch_textcnn.py).
set -eu

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
PY=/usr/bin/python3
PEER=${PEER:-$ROOT/test/bench/torch_textcnn.py}
CORE=$ROOT/test/bench/build/core_train
OUT=${BENCH_OUT:-$ROOT/test/bench/out}
RUNS=${BENCH_RUNS:-3}
THREADS=${BENCH_THREADS-1 2}
CONFIGS=${BENCH_CONFIGS-spec lean}
EPOCHS=${BENCH_EPOCHS:-1}
INFER_BATCHES=${BENCH_INFER_BATCHES:-8}
NEXT=${BENCH_NEXT:-1}
NEXT_N=${BENCH_NEXT_N:-20000}
NEXT_THREADS=${BENCH_NEXT_THREADS:-1}
NEXT_RUNS=${BENCH_NEXT_RUNS:-1}

# shellcheck source=test/bench/bench_deps.sh
. "$ROOT/test/bench/bench_deps.sh"
bench_need_torch
if [ ! -x "$CORE" ]; then
	bench_need build-essential libopenblas-dev
	make -s -C "$ROOT" core-train
fi
mkdir -p "$OUT"
RUNLOG=$OUT/runs.jsonl
: > "$RUNLOG"

# config -> "max_len vocab embed filters n"
config_args() {
	case $1 in
		spec) echo "100 10000 128 128 ${BENCH_N_SPEC:-20000}" ;;
		lean) echo "50 50000 64 64 ${BENCH_N_LEAN:-20000}" ;;
		*) echo "unknown config $1" >&2; exit 1 ;;
	esac
}

gen() {	# name max_len vocab n seed
	local f=$OUT/$1.tsv
	if [ ! -f "$f" ] || [ ! -f "$f.gen.json" ] || ! grep -q "\"n\": $4, \"max_len\": $2, .*\"vocab\": $3, \"seed\": $5" "$f.gen.json"; then
		(cd "$(dirname "$PEER")" && $PY "$PEER" gen --out "$f" --n "$4" --max-len "$2" --vocab "$3" --seed "$5") > "$f.gen.json"
	fi
	echo "$f"
}

# one run: system config task threads rep data common-args...; appends
# {"meta": {...}, "summary": {...}} to runs.jsonl
run_one() {
	local sys=$1 cfg=$2 task=$3 t=$4 rep=$5 data=$6
	shift 6
	local log=$OUT/$cfg.$sys.t$t.r$rep.jsonl load sha
	load=$(cut -d' ' -f1-3 /proc/loadavg)
	if [ "$sys" = userseq ]; then
		OPENBLAS_NUM_THREADS=$t OMP_NUM_THREADS=$t "$CORE" --data "$data" --task "$task" --threads "$t" "$@" > "$log"
	else
		(cd "$(dirname "$PEER")" && OPENBLAS_NUM_THREADS=$t OMP_NUM_THREADS=$t \
			$PY "$PEER" bench --data "$data" --task "$task" --threads "$t" "$@") > "$log"
	fi
	sha=$(sha256sum "$data" | cut -d' ' -f1)
	$PY - "$log" "$sys" "$cfg" "$task" "$t" "$rep" "$load" "$sha" >> "$RUNLOG" <<'EOF'
import json, sys
log, system, cfg, task, t, rep, load, sha = sys.argv[1:]
summary = [json.loads(l) for l in open(log) if '"summary"' in l][-1]
if "data_sha256" in summary and summary["data_sha256"] != sha:
    sys.exit(f"{log}: peer read different data")
print(json.dumps({"meta": {"system": system, "config": cfg, "task": task, "threads": int(t),
                           "rep": int(rep), "loadavg_before": load, "data_sha256": sha},
                  "summary": summary}))
EOF
	echo "  $(date +%T) $cfg $task T=$t rep=$rep $sys done (load before: $load)" >&2
}

echo "# core_vs_torch: $(date -Is), $(nproc) CPUs, uptime: $(uptime)" >&2
echo "# OPENBLAS_CORETYPE=${OPENBLAS_CORETYPE-(unset)} runs=$RUNS threads=[$THREADS] configs=[$CONFIGS] epochs=$EPOCHS" >&2

declare -A DATA
for cfg in $CONFIGS; do
	read -r L V E F N <<< "$(config_args "$cfg")"
	DATA[$cfg]=$(gen "$cfg.n$N" "$L" "$V" "$N" 12345)
done

for rep in $(seq 1 "$RUNS"); do
	for cfg in $CONFIGS; do
		read -r L V E F N <<< "$(config_args "$cfg")"
		common=(--vocab "$V" --max-len "$L" --embed "$E" --filters "$F" --epochs "$EPOCHS"
				--infer-batches "$INFER_BATCHES" --seed 12345)
		for t in $THREADS; do
			# alternate which system runs first, so slow drift in load hits both alike
			if [ $((rep % 2)) -eq 1 ]; then order="userseq torch"; else order="torch userseq"; fi
			for sys in $order; do
				run_one "$sys" "$cfg" binary "$t" "$rep" "${DATA[$cfg]}" "${common[@]}"
			done
		done
	done
done

if [ "$NEXT" = 1 ]; then
	data=$(gen "next_item.n$NEXT_N" 100 10000 "$NEXT_N" 777)
	# the 99 sampled negatives of every held-out sequence (the last 10% of the lines), one
	# file that both systems read
	neg=$data.negatives
	[ -f "$neg" ] || $PY "$PEER" negatives --data "$data" --vocab 10000 --valid-fraction 0.1 \
		--n 99 --seed 1 --out "$neg"
	for rep in $(seq 1 "$NEXT_RUNS"); do
		for t in $NEXT_THREADS; do
			if [ $((rep % 2)) -eq 1 ]; then order="userseq torch"; else order="torch userseq"; fi
			for sys in $order; do
				run_one "$sys" next_item next_item "$t" "$rep" "$data" --vocab 10000 --max-len 100 \
					--epochs 1 --infer-batches 2 --seed 12345 --negatives "$neg"
			done
		done
	done
fi

echo "# finished $(date -Is), uptime: $(uptime)" >&2
$PY "$ROOT/test/bench/bench_table.py" "$RUNLOG"
