#!/bin/bash
# nextitem_defaults.sh DIR [REGIMES]: the next_item defaults of the SQL layer (README
# "Training"; E = F = H = 64, widths 2,3,4, recent window 3, max_len 50, dropout 0.2, Adam lr
# 0.002, clip 5, embed_init_std 0.05, 256 examples per step, 10 epochs with patience 3, full
# softmax up to 20,000 items and 256 sampled negatives above) run by the core trainer on each
# regime of nextitem_data.sh: validation (best epoch by full NDCG@10), then the test split once
# (held-out regimes: a fresh run on REGIME.test.tsv, the same training users, with the epoch
# count chosen on validation, last epoch reported; video: the same run's test targets, SASRec's
# protocol), with the transition and repeat priors (NEXTITEM_TRANSITIONS, NEXTITEM_REPEAT, default
# auto as userseq_train: their weights chosen on validation and reused for the test run). Prints the README table (model,
# markov, popularity; validation and test).
# Needs DIR/REGIME.{valid,test}.neg (torch_textcnn.py negatives --valid-fraction <the JSON's
# valid_fraction / test_fraction>) and DIR/video.loo.neg{,.test} (--protocol loo --n 100).
set -euo pipefail
dir=${1:?usage: nextitem_defaults.sh DIR [REGIMES]}
regimes=${2:-retail retail5 gen video}
here=$(cd "$(dirname "$0")" && pwd)
CT=$here/build/core_train
[ -x "$CT" ] || make -s -C "$here/../.." core-train
mkdir -p "$dir/runs"
D="--task next_item --max-len 50 --embed 64 --filters 64 --hidden 64 --widths 2,3,4 --recent-window 3
	--dropout 0.2 --lr 0.002 --clip-norm 5 --embed-init-std 0.05 --batch 256 --batch-examples 1
	--epochs 10 --patience 3 --seed 42 --infer-batches 1 --score-seconds 0.1 --warmup-steps 1"
# the transition prior: auto (userseq_train's default) fits its weight on the validation split;
# the test run reuses the weight chosen there (never fitted on test targets)
TP=${NEXTITEM_TRANSITIONS:-auto}
# the repeat prior (userseq_train's repeat_prior, default auto), fitted with the transition weight
RP=${NEXTITEM_REPEAT:-auto}
js() { python3 -c "import json;print(repr(json.load(open('$dir/$1.json'))['$2']))"; }
for r in $regimes; do
	[ -n "${NEXTITEM_SKIP_RUNS:-}" ] && continue
	if [ "$r" = video ]; then
		nice -n 10 "$CT" --data "$dir/video.loo.tsv" --vocab "$(js video vocab)" --protocol loo --n-neg 100 \
			--negatives "$dir/video.loo.neg" --train-negatives 256 --report-test 1 $D --transitions "$TP" --repeat "$RP" > "$dir/runs/final_video.json"
		continue
	fi
	nice -n 10 "$CT" --data "$dir/$r.valid.tsv" --vocab "$(js $r vocab)" --valid-fraction "$(js $r valid_fraction)" \
		--negatives "$dir/$r.valid.neg" $D --transitions "$TP" --repeat "$RP" > "$dir/runs/final_$r.valid.json"
	be=$(tail -1 "$dir/runs/final_$r.valid.json" | python3 -c "import json,sys; print(json.loads(sys.stdin.read())['best_epoch'])")
	tw=$(tail -1 "$dir/runs/final_$r.valid.json" | python3 -c "import json,sys; s=json.loads(sys.stdin.read()); print(s['transition_weight'] if s['transitions'] != 'off' else 'off')")
	rw=$(tail -1 "$dir/runs/final_$r.valid.json" | python3 -c "import json,sys; s=json.loads(sys.stdin.read()); print(s['repeat_weight'] if s['repeat'] != 'off' else 'off')")
	nice -n 10 "$CT" --data "$dir/$r.test.tsv" --vocab "$(js $r vocab)" --valid-fraction "$(js $r test_fraction)" \
		--negatives "$dir/$r.test.neg" $D --epochs "$be" --patience 0 --keep-last 1 --transitions "$tw" --repeat "$rw" > "$dir/runs/final_$r.test.json"
done
python3 - "$dir" $regimes <<'PY'
import json, sys
d = sys.argv[1]
last = lambda p: json.loads(open(p).read().splitlines()[-1])
f3 = lambda m: "%.4f / %.4f" % (m["hr@10"], m["ndcg@10"])
tws = lambda s: ("off" if s.get("transitions", "off") == "off" else "%g" % s["transition_weight"]) + \
    " / " + ("off" if s.get("repeat", "off") == "off" else "%g" % s["repeat_weight"])
print("| regime | split | epochs | prior weights (transition / repeat) | model full HR@10 / NDCG@10 | markov full | popularity full | model sampled HR@10 / NDCG@10 | markov sampled | popularity sampled | beats markov (full HR, sampled NDCG) |")
print("|---|---|---|---|---|---|---|---|---|---|---|")
for r in sys.argv[2:]:
    rows = []
    if r == "video":
        s = last("%s/runs/final_video.json" % d)
        rows.append(("valid", s["best_epoch"], s["final"], s["markov_baseline"], s["popularity_baseline"], tws(s)))
        t = s["test"]
        rows.append(("test", s["best_epoch"], t, t["markov"], t["popularity"], tws(s)))
    else:
        for sp in ("valid", "test"):
            s = last("%s/runs/final_%s.%s.json" % (d, r, sp))
            rows.append((sp, s["best_epoch"], s["final"], s["markov_baseline"], s["popularity_baseline"], tws(s)))
    for sp, be, mo, mk, po, tw in rows:
        ok = mo["full_ranking"]["hr@10"] > mk["full_ranking"]["hr@10"] and \
            mo["sampled_99"]["ndcg@10"] > mk["sampled_99"]["ndcg@10"]
        print("| %s | %s | %d | %s | %s | %s | %s | %s | %s | %s | %s |" % (
            r, sp, be, tw, f3(mo["full_ranking"]), f3(mk["full_ranking"]), f3(po["full_ranking"]),
            f3(mo["sampled_99"]), f3(mk["sampled_99"]), f3(po["sampled_99"]), "yes" if ok else "**no**"))
PY
