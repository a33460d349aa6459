#!/bin/bash
# Explanations per second per core: userseq's core (bench_explain.c) against the PyTorch peer
# (torch_explain.py: integrated gradients with autograd) on the same model shapes and the same
# sequences, and userseq_surprise's core per second at 10,000 items. One thread each.
#   N=500 RUNS=3 bash test/bench/explain_bench.sh
# Sequences: test/bench/torch_textcnn.py gen, lengths uniform in [25, 75] (mean 50),
# V = 10,000, seed 12345. Prints the JSON lines of both systems, then the ratios.
# Installs python3-torch (and the C build's packages) when missing.
set -eu
cd "$(dirname "$0")/../.."
N=${N:-500}
RUNS=${RUNS:-3}
PY=/usr/bin/python3
PEER=${PEER:-$PWD/test/bench/torch_textcnn.py}
# shellcheck source=test/bench/bench_deps.sh
. test/bench/bench_deps.sh
bench_need_torch
bench_need build-essential libopenblas-dev
OUT=test/bench/out
mkdir -p "$OUT" test/bench/build
$PY "$PEER" gen --out "$OUT/explain.tsv" --n "$N" --max-len 75 --min-len 25 \
	--vocab 10000 --seed 12345 >/dev/null
cc -std=c11 -D_POSIX_C_SOURCE=200809L -O2 -march=native -Iinclude -Wall -Wextra -Werror \
	-o test/bench/build/bench_explain test/bench/bench_explain.c src/core/*.c -lopenblas -lm -pthread
echo "# $(date -u '+%Y-%m-%d %H:%M') UTC, load $(cut -d' ' -f1-3 /proc/loadavg), $N sequences, $RUNS runs"
OPENBLAS_NUM_THREADS=1 test/bench/build/bench_explain "$OUT/explain.tsv" "$RUNS" | tee "$OUT/explain_userseq.jsonl"
OMP_NUM_THREADS=1 $PY test/bench/torch_explain.py --data "$OUT/explain.tsv" --runs "$RUNS" | tee "$OUT/explain_torch.jsonl"
echo "# load $(cut -d' ' -f1-3 /proc/loadavg)"
$PY - "$OUT/explain_userseq.jsonl" "$OUT/explain_torch.jsonl" <<'PYEOF'
import json, sys
us = [json.loads(l) for l in open(sys.argv[1])]
th = {r["task"]: r for r in map(json.loads, open(sys.argv[2]))}
print("task       measure                   per wall s  per CPU s | torch IG-32 per wall s  per CPU s | ratio wall  CPU")
for r in us:
    peer = th.get(r["task"])
    line = f'{r["task"]:10s} {r["measure"]:24s} {r["per_s_median"]:10.1f} {r["per_cpu_s_median"]:10.1f}'
    if r["measure"] != "surprise" and peer is not None:
        line += (f' | {peer["per_s_median"]:22.1f} {peer["per_cpu_s_median"]:10.1f} | '
                 f'{r["per_s_median"] / peer["per_s_median"]:9.1f}x {r["per_cpu_s_median"] / peer["per_cpu_s_median"]:5.1f}x')
    print(line)
PYEOF
