#!/bin/bash
# nextitem_parity.sh DATADIR: userseq's core trainer (test/bench/core_train) against the
# project's PyTorch reference (test/bench/torch_textcnn.py) on identical TSV files, split,
# candidates and configuration, for every next-item regime that nextitem_data.sh wrote to
# DATADIR. Prints one JSON line per run and a markdown table (README "Next-item quality").
#   PARITY_REGIMES (default "retail retail5 gen"; add "video" for SASRec's Video, loo protocol)
#   PARITY_ARGS    extra options given to both trainers (default: none = the next_item
#                  defaults of the SQL layer, see below)
#   PARITY_EPOCHS  (default 10); both keep the epoch with the best validation NDCG@10 (full)
#   PARITY_TORCH_ARGS extra options for the reference only (--lazy-embed: the core's lazy Adam
#                  on embedding rows, a diagnosis)
#   PARITY_SEED    (default 42) the seed of both trainers (weights, dropout, order)
#   PARITY_OUT     (default DATADIR/parity) where the runs go: REGIME.SYSTEM.json is the
#                  summary, REGIME.SYSTEM.log every line (the per-epoch validation curve)
# Both trainers run one after the other, niced, on one thread each (OMP/OpenBLAS too).
# The configuration is the SQL defaults for next_item (README "Training"): E = F = H = 64,
# widths 2,3,4, recent window 3, max_len 50, dropout 0.2, Adam lr 0.002, 256 training examples
# per step (batch_unit examples), clip 5, full softmax, embed_init_std 0.05, embed_dropout
# PARITY_EMBED_DROPOUT (default 0), untied (PARITY_TIE=1: tied).
set -euo pipefail
dir=${1:?usage: nextitem_parity.sh DATADIR}
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
PY=/usr/bin/python3
if ! $PY -c 'import torch, numpy' 2>/dev/null; then
	echo "installing python3-torch (Debian)" >&2
	apt-get install -y python3-torch python3-numpy >/dev/null
fi
make -s -C "$root" core-train
CT=$root/test/bench/build/core_train
regimes=${PARITY_REGIMES:-retail retail5 gen}
epochs=${PARITY_EPOCHS:-10}
common="--max-len 50 --embed 64 --filters 64 --hidden 64 --widths 2,3,4 --recent-window 3
	--dropout 0.2 --lr 0.002 --batch 256 --clip-norm 5 --epochs $epochs --seed ${PARITY_SEED:-42}
	--embed-init-std ${PARITY_INIT_STD:-0.05} --embed-dropout ${PARITY_EMBED_DROPOUT:-0} ${PARITY_ARGS:-}"
out=${PARITY_OUT:-$dir/parity}
export OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1
mkdir -p "$out"
for r in $regimes; do
	if [ "$r" = video ]; then
		V=$($PY -c "import json;print(json.load(open('$dir/video.json'))['vocab'])")
		data="--data $dir/video.loo.tsv --vocab $V --protocol loo"
		neg=100
	else
		V=$($PY -c "import json;print(json.load(open('$dir/$r.json'))['vocab'])")
		f=$($PY -c "import json;print(repr(json.load(open('$dir/$r.json'))['valid_fraction']))")
		data="--data $dir/$r.valid.tsv --vocab $V --valid-fraction $f"
		neg=99
	fi
	$PY "$here/torch_textcnn.py" negatives $data --n $neg --out "$out/$r.neg"
	tie_flag=""
	[ "${PARITY_TIE:-0}" = 1 ] && tie_flag="--tie"
	nice -n 10 $CT --task next_item $data --n-neg $neg --negatives "$out/$r.neg" $common \
		--tie ${PARITY_TIE:-0} --batch-examples 1 --train-negatives 0 --infer-batches 1 --score-seconds 0.1 \
		--warmup-steps 1 > "$out/$r.userseq.log"
	tail -1 "$out/$r.userseq.log" > "$out/$r.userseq.json"
	nice -n 10 $PY "$here/torch_textcnn.py" train $data --negatives "$out/$r.neg" $common \
		$tie_flag --batch-examples --threads 1 ${PARITY_TORCH_ARGS:-} > "$out/$r.torch.log"
	tail -1 "$out/$r.torch.log" > "$out/$r.torch.json"
done
$PY - "$out" $regimes <<'PY'
import json, sys
out = sys.argv[1]
print("| regime | system | HR@10 full | NDCG@10 full | HR@10 sampled | NDCG@10 sampled | best epoch | markov full HR@10 / sampled NDCG@10 |")
print("|---|---|---|---|---|---|---|---|")
for r in sys.argv[2:]:
    u = json.load(open("%s/%s.userseq.json" % (out, r)))
    t = json.load(open("%s/%s.torch.json" % (out, r)))
    uf, tf = u["final"], t["final"]["valid"]
    m = u["markov_baseline"]
    rows = [("userseq", uf["full_ranking"], uf["sampled_99"], u["best_epoch"]),
            ("torch", tf["full"], tf["sampled"], t["best_epoch"])]
    for name, f, s, be in rows:
        print("| %s | %s | %.4f | %.4f | %.4f | %.4f | %d | %.4f / %.4f |" % (
            r, name, f["hr@10"], f["ndcg@10"], s["hr@10"], s["ndcg@10"], be,
            m["full_ranking"]["hr@10"], m["sampled_99"]["ndcg@10"]))
    d = [rows[0][1]["hr@10"] - rows[1][1]["hr@10"], rows[0][1]["ndcg@10"] - rows[1][1]["ndcg@10"],
         rows[0][2]["hr@10"] - rows[1][2]["hr@10"], rows[0][2]["ndcg@10"] - rows[1][2]["ndcg@10"]]
    print("| %s | userseq - torch | %+.4f | %+.4f | %+.4f | %+.4f | | %s |" % (
        r, d[0], d[1], d[2], d[3], "parity" if min(d) >= -0.01 else "BELOW by > 0.01"))
PY
