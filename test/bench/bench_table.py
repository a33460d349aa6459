#!/usr/bin/python3
"""bench_table.py: markdown table of medians and userseq/torch ratios from the runs.jsonl that
test/bench/core_vs_torch.sh writes (one {"meta", "summary"} object per run). Prints only;
does not run anything. Usage: bench_table.py runs.jsonl
"""
import json
import statistics
import sys
from collections import defaultdict


def med(values):
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


def fmt(value, digits=0):
    if value is None:
        return "-"
    return f"{value:,.{digits}f}"


def ratio(a, b):
    return f"{a / b:.2f}x" if a and b else "-"


def main():
    groups = defaultdict(list)
    for line in open(sys.argv[1]):
        run = json.loads(line)
        meta = run["meta"]
        groups[(meta["config"], meta["task"], meta["threads"], meta["system"])].append(run)
    loads = sorted(float(r["meta"]["loadavg_before"].split()[0]) for runs in groups.values() for r in runs)

    keys = sorted({k[:3] for k in groups if k[1] == "binary"}, key=lambda k: (k[0] != "spec", k[2]))
    if keys:
        print("| config | T | runs (u/t) | train seq/s userseq | torch | ratio | infer folded seq/s | "
              "direct | predict B=1024 | torch B=1024 | folded/torch | direct/torch | "
              "peak RSS MB userseq | torch | val AUC userseq | torch |")
        print("|" + "---|" * 16)
    for cfg, task, t in keys:
        u, p = groups.get((cfg, task, t, "userseq"), []), groups.get((cfg, task, t, "torch"), [])
        us = lambda key: med([r["summary"].get(key) for r in u])
        ts = lambda key: med([r["summary"].get(key) for r in p])
        u_auc = med([r["summary"]["final"]["valid_auc"] for r in u])
        t_auc = med([r["summary"]["final"]["valid_auc"] for r in p])
        print(f"| {cfg} | {t} | {len(u)}/{len(p)} | {fmt(us('train_seq_per_s'))} | "
              f"{fmt(ts('train_seq_per_s'))} | **{ratio(us('train_seq_per_s'), ts('train_seq_per_s'))}** | "
              f"{fmt(us('infer_folded_seq_per_s'))} | {fmt(us('infer_direct_seq_per_s'))} | "
              f"{fmt(us('infer_seq_per_s'))} | {fmt(ts('infer_seq_per_s'))} | "
              f"**{ratio(us('infer_folded_seq_per_s'), ts('infer_seq_per_s'))}** | "
              f"{ratio(us('infer_direct_seq_per_s'), ts('infer_seq_per_s'))} | "
              f"{fmt(us('peak_rss_mb'))} | {fmt(ts('peak_rss_mb'))} | "
              f"{fmt(u_auc, 4)} | {fmt(t_auc, 4)} |")

    nkeys = sorted({k[:3] for k in groups if k[1] == "next_item"}, key=lambda k: k[2])
    if nkeys:
        print()
        print("| next_item | T | runs (u/t) | train examples/s userseq | torch | ratio | "
              "HR@10 full userseq | torch | popularity | HR@10 sampled-99 userseq | torch | popularity | "
              "top-10 folded seq/s | direct | torch B=1024 | peak RSS MB userseq | torch |")
        print("|" + "---|" * 17)
    for cfg, task, t in nkeys:
        u, p = groups.get((cfg, task, t, "userseq"), []), groups.get((cfg, task, t, "torch"), [])
        us = lambda key: med([r["summary"].get(key) for r in u])
        ts = lambda key: med([r["summary"].get(key) for r in p])
        hr = lambda runs, proto: med([r["summary"]["final"][proto]["hr@10"] for r in runs])
        pop = lambda runs, proto: med([r["summary"]["popularity_baseline"][proto]["hr@10"] for r in runs])
        print(f"| {cfg} | {t} | {len(u)}/{len(p)} | {fmt(us('train_examples_per_s'))} | "
              f"{fmt(ts('train_examples_per_s'))} | **{ratio(us('train_examples_per_s'), ts('train_examples_per_s'))}** | "
              f"{fmt(hr(u, 'full_ranking'), 4)} | {fmt(hr(p, 'full_ranking'), 4)} | {fmt(pop(p, 'full_ranking'), 4)} | "
              f"{fmt(hr(u, 'sampled_99'), 4)} | {fmt(hr(p, 'sampled_99'), 4)} | {fmt(pop(p, 'sampled_99'), 4)} | "
              f"{fmt(us('infer_folded_seq_per_s'))} | {fmt(us('infer_direct_seq_per_s'))} | "
              f"{fmt(ts('infer_seq_per_s'))} | {fmt(us('peak_rss_mb'))} | {fmt(ts('peak_rss_mb'))} |")
        upop = [r["summary"].get("popularity_baseline") for r in u]
        tpop = [r["summary"].get("popularity_baseline") for r in p]
        if upop and tpop and upop[0] and tpop[0]:
            same = all(abs(upop[0][proto][m] - tpop[0][proto][m]) < 1e-6
                       for proto in ("full_ranking", "sampled_99") for m in ("hr@10", "ndcg@10", "mrr"))
            print(f"\nProtocol check: popularity baseline identical on both sides (to the 6 printed digits): {'yes' if same else 'NO'}")

    if loads:
        print(f"\nLoad average (1 min) before the runs: min {loads[0]:.2f}, median "
              f"{statistics.median(loads):.2f}, max {loads[-1]:.2f} "
              f"(2 CPUs shared with other jobs). Medians over the runs shown; ratios are of medians.")


if __name__ == "__main__":
    main()
