#!/bin/bash
# sasrec_reference.sh OUTDIR: the reference SASRec (pmixer/SASRec.pytorch, the PyTorch port of
# Kang and McAuley's TensorFlow code, pinned below) trained on SASRec's Video data with the
# paper's Amazon settings, then scored by its own evaluation and by ours (benchmark, not a
# test; the project never depends on it). Needs Debian's python3-torch (CPU) and network for
# the clone, or SASREC_REPO=<a local clone>.
#   VIDEO=.../Video.txt NEG=.../video.loo.neg EPOCHS=200 bash test/bench/sasrec_reference.sh OUT
# VIDEO: kang205/SASRec data/Video.txt; NEG: video.loo.neg (and NEG.test) of nextitem_data.sh /
# `torch_textcnn.py negatives --protocol loo --n 100`, the files core_train --protocol loo reads.
# Their code runs unmodified; a driver sets one thread and seeds (random, numpy, torch: the
# run is still not bit-reproducible, the sampler runs in 3 worker processes) and reduces their
# per-iteration loss lines to one per epoch with the wall-clock time. Their main.py evaluates
# valid and test every 20 epochs (10,000 random users, 100 fresh negatives outside the user's
# training items) and saves a checkpoint whenever one of the four figures improves, and at the
# last epoch; test/bench/sasrec_reference_eval.py then scores a checkpoint on every user with
# our fixed negatives, the full catalogue and SASRec's sampler (seed 1).
set -euo pipefail
out=${1:?usage: sasrec_reference.sh OUTDIR}
VIDEO=${VIDEO:?set VIDEO to SASRec data/Video.txt}
NEG=${NEG:?set NEG to video.loo.neg}
EPOCHS=${EPOCHS:-200}
REPO=${SASREC_REPO:-https://github.com/pmixer/SASRec.pytorch}
# 2024-10-14, the last commit before the 2025 rewrite to post-LN blocks: the TF model's
# layout (attention query = layernorm(x), residual from it; FFN with its own residual; final
# layernorm), BCE with one sampled negative per position, Adam betas (0.9, 0.98)
COMMIT=25bd287d5f089263618de8762d01e57322d57a22
PY=${PYTHON:-/usr/bin/python3}
here=$(cd "$(dirname "$0")" && pwd)
mkdir -p "$out"
out=$(cd "$out" && pwd)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
git clone -q --no-checkout "$REPO" "$tmp/repo"
cd "$out"
for f in main.py model.py utils.py; do git -C "$tmp/repo" show "$COMMIT:$f" > "$f"; done
mkdir -p data
cp "$VIDEO" data/Video.txt
cat > drive.py <<'PY'
import os, sys, time, random, runpy
import numpy as np, torch
torch.set_num_threads(1)
seed = int(os.environ.get('SASREF_SEED', '1'))
random.seed(seed); np.random.seed(seed); torch.manual_seed(seed)

class Filter:
    def __init__(self, out):
        self.out, self.last, self.t0, self.ep = out, None, time.time(), 0
    def write(self, s):
        if s.startswith('loss in epoch '):
            ep = int(s.split()[3])
            if ep != self.ep and self.last is not None:
                self.out.write('%s [%.1f s since start]\n' % (self.last.rstrip(), time.time() - self.t0))
            self.ep, self.last = ep, s
        else:
            self.out.write(s)
        self.out.flush()
    def flush(self):
        self.out.flush()
sys.stdout = Filter(sys.stdout)
sys.argv = ['main.py'] + sys.argv[1:]
runpy.run_path('main.py', run_name='__main__')
PY
# the paper's settings for the Amazon sets (kang205/SASRec main.py defaults)
OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 nice -n 10 "$PY" -u drive.py --dataset=Video --train_dir=games \
	--device=cpu --maxlen=50 --hidden_units=50 --num_blocks=2 --num_heads=1 --dropout_rate=0.5 \
	--lr=0.001 --batch_size=128 --l2_emb=0.0 --num_epochs="$EPOCHS" > run.log 2> run.err
grep -a 'epoch:' run.log || true
for ck in $(ls Video_games/*.pth | sort -t= -k2 -n); do
	echo "== $ck"
	nice -n 10 "$PY" "$here/sasrec_reference_eval.py" --ref "$out" --ckpt "$ck" --video "$VIDEO" --neg "$NEG"
done
