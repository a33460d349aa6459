#!/usr/bin/env python3
"""nextitem_curves.py RUN.json...: one README table row per core_train next_item run (its JSON
lines: epochs, then the summary): the epoch the run kept (best validation NDCG@10 over the full
catalogue), its full-ranking HR@10 / NDCG@10 and sampled HR@10 / NDCG@10, the markov baseline on
the same candidates, the full HR@10 of every epoch, and the training seconds. A run cut short
(no summary line) is reported from its epochs, marked "stopped"."""
import json
import sys


def row(path):
    lines = [json.loads(l) for l in open(path) if l.strip()]
    ep = [l for l in lines if l.get("type") == "epoch"]
    summ = [l for l in lines if l.get("type") == "summary"]
    if summ:
        s = summ[-1]
        best, f = s["best_epoch"], s["final"]
        mk = s["markov_baseline"]
        markov = "%.4f / %.4f" % (mk["full_ranking"]["hr@10"], mk["sampled_99"]["ndcg@10"])
        note = ""
    else:
        b = max(ep, key=lambda e: e["full_ranking"]["ndcg@10"])
        best, f, markov, note = b["epoch"], b, "", " (stopped)"
    return "| %s | %d of %d%s | %.4f / %.4f | %.4f / %.4f | %s | %s | %.0f |" % (
        path.rsplit("/", 1)[-1].replace(".json", ""), best, len(ep), note,
        f["full_ranking"]["hr@10"], f["full_ranking"]["ndcg@10"],
        f["sampled_99"]["hr@10"], f["sampled_99"]["ndcg@10"], markov,
        " ".join("%.4f" % e["full_ranking"]["hr@10"] for e in ep),
        sum(e["train_s"] for e in ep))


print("| run | kept epoch | full HR@10 / NDCG@10 | sampled HR@10 / NDCG@10 | markov full HR@10 / sampled NDCG@10 | full HR@10 per epoch | train s |")
print("|---|---|---|---|---|---|---|")
for p in sys.argv[1:]:
    print(row(p))
