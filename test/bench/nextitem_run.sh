#!/bin/bash
# nextitem_run.sh DIR REGIME [core_train options]: one next-item run of the core trainer on a
# regime of nextitem_data.sh (DIR holds its files), validation split, and one summary line:
# best epoch, full and sampled HR@10 / NDCG@10, the markov and popularity baselines, seconds and
# the per-epoch full NDCG@10 curve. Raw JSON in DIR/runs/. Base configuration (options given
# after REGIME override it): the SQL next_item defaults before issue 15 (E = F = H = 64, widths
# 2,3,4, recent window 3, max_len 50, dropout 0.2, Adam lr 0.002, 64 sequences per step, clip 5,
# 10 epochs, full softmax; core_train's own embed_init_std default is the core's). video uses
# SASRec's leave-one-out with 100 negatives. Negatives: DIR/REGIME.valid.neg (video.loo.neg),
# written by `torch_textcnn.py negatives` (nextitem_parity.sh does it too).
#   e.g. nextitem_run.sh /work/data/nextitem retail5 --embed-init-std 0.05 --batch-examples 1 --batch 256
set -euo pipefail
dir=${1:?usage: nextitem_run.sh DIR REGIME [options]}; regime=${2:?regime}; shift 2
here=$(cd "$(dirname "$0")" && pwd)
CT=$here/build/core_train
[ -x "$CT" ] || make -s -C "$here/../.." core-train
mkdir -p "$dir/runs"
name=${RUN_NAME:-$regime-$(echo "$*" | tr -c 'A-Za-z0-9.\n' '_')}
if [ "$regime" = video ]; then
	data="--data $dir/video.loo.tsv --vocab $(python3 -c "import json;print(json.load(open('$dir/video.json'))['vocab'])") --protocol loo --n-neg 100 --negatives $dir/video.loo.neg"
else
	V=$(python3 -c "import json;print(json.load(open('$dir/$regime.json'))['vocab'])")
	f=$(python3 -c "import json;print(repr(json.load(open('$dir/$regime.json'))['valid_fraction']))")
	data="--data $dir/$regime.valid.tsv --vocab $V --valid-fraction $f --negatives $dir/$regime.valid.neg"
fi
t0=$(date +%s)
nice -n 10 "$CT" --task next_item $data --max-len 50 --embed 64 --filters 64 --hidden 64 \
	--widths 2,3,4 --dropout 0.2 --lr 0.002 --batch 64 --recent-window 3 --clip-norm 5 --epochs 10 \
	--seed 42 --infer-batches 1 --score-seconds 0.1 --warmup-steps 1 "$@" > "$dir/runs/$name.json"
python3 - "$dir/runs/$name.json" "$name" $(( $(date +%s) - t0 )) <<'PY'
import json, sys
L = [json.loads(l) for l in open(sys.argv[1])]
d = L[-1]; ep = [l for l in L if l['type'] == 'epoch']
f, m, p = d['final'], d['markov_baseline'], d['popularity_baseline']
print("%-28s best_ep %2d/%2d  full HR %.4f NDCG %.4f | samp HR %.4f NDCG %.4f | markov full HR %.4f "
      "samp NDCG %.4f | pop full HR %.4f | %ss | curve %s" % (
    sys.argv[2], d['best_epoch'], len(ep), f['full_ranking']['hr@10'], f['full_ranking']['ndcg@10'],
    f['sampled_99']['hr@10'], f['sampled_99']['ndcg@10'], m['full_ranking']['hr@10'],
    m['sampled_99']['ndcg@10'], p['full_ranking']['hr@10'], sys.argv[3],
    " ".join("%.4f" % e['full_ranking']['ndcg@10'] for e in ep)))
PY
