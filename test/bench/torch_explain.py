"""PyTorch peer of test/bench/bench_explain.c: integrated gradients (32 steps, midpoint rule,
all-zero baseline) with autograd on the same model shapes, one sequence per explanation.

    /usr/bin/python3 test/bench/torch_explain.py --data FILE.tsv [--runs 3] [--threads 1]

Model: torch_textcnn.py's bench model (build_bench_model: Embedding, Conv1d per width, max over
the windows, ReLU, Linear + ReLU, head) at the SQL defaults E = F = H = 64, widths 2,3,4, V = 10,000;
binary (max_len 100, f = sigmoid(logit)) and next_item (max_len 50, f = logit of the top item,
found by one forward pass first, as userseq_explain does). The 32 scaled copies of the
sequence's embeddings go through the network as one batch and one backward pass gives their
gradients (what Captum's IntegratedGradients does with internal_batch_size >= steps).
Prints one JSON line per task: median explanations per second over the runs, and the
completeness error max |sum(attr) - (f(x) - f(0))| of the midpoint rule.
"""
import argparse
import json
import os
import sys
import time

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from torch_textcnn import build_bench_model, read_labeled  # noqa: E402


def features(model, x):
    """Pooled features of embedded inputs x [B, n, E] (every window valid: n is the same)."""
    emb = x.transpose(1, 2)
    out = []
    for conv, k in zip(model.convs, model.widths):
        if emb.shape[2] < k:  # one window: the events, then zero vectors
            emb_k = torch.nn.functional.pad(emb, (0, k - emb.shape[2]))
        else:
            emb_k = emb
        out.append(conv(emb_k).max(dim=2).values)
    return torch.relu(torch.cat(out, dim=1))


def f_of(model, x, task, target):
    y = model.out(torch.relu(model.dense(features(model, x))))
    return torch.sigmoid(y[:, 0]) if task == "binary" else y[:, target]


def explain(model, ids, task, steps):
    x = model.emb(ids)[None].detach()                      # [1, n, E]
    target = 0
    if task == "next_item":
        with torch.no_grad():
            scores = model.out(torch.relu(model.dense(features(model, x))))[0]
            scores[:2] = -float("inf")                          # padding and unknown rows
            scores[ids] = -float("inf")                         # exclude seen
            target = int(scores.argmax())
    alphas = (torch.arange(steps, dtype=torch.float32) + 0.5) / steps
    xs = (alphas[:, None, None] * x).requires_grad_(True)      # [S, n, E]
    f = f_of(model, xs, task, target)
    (g,) = torch.autograd.grad(f.sum(), xs)
    attr = (x[0] * g.mean(dim=0)).sum(dim=1)
    with torch.no_grad():
        fx = f_of(model, x, task, target)[0]
        fb = f_of(model, torch.zeros_like(x), task, target)[0]
    return attr, float(fx - fb)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", required=True)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--steps", type=int, default=32)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(7)
    _, seqs = read_labeled(args.data, 10000)
    for task, max_len in (("binary", 100), ("next_item", 50)):
        model = build_bench_model(torch, 10000, 64, 64, (2, 3, 4), 64, 0.2,
                                  1 if task == "binary" else 10000)
        model.eval()
        data = [torch.as_tensor(s[-max_len:], dtype=torch.long) for s in seqs]
        rates, cpu_rates, worst = [], [], 0.0
        for _ in range(args.runs):
            t0, c0 = time.perf_counter(), time.process_time()
            for ids in data:
                attr, diff = explain(model, ids, task, args.steps)
                worst = max(worst, abs(float(attr.sum()) - diff))
            rates.append(len(data) / (time.perf_counter() - t0))
            cpu_rates.append(len(data) / (time.process_time() - c0))
        rates.sort()
        cpu_rates.sort()
        print(json.dumps({"system": "torch " + torch.__version__, "task": task,
                          "measure": "integrated_gradients_%d" % args.steps, "sequences": len(data),
                          "threads": args.threads, "per_s_median": round(rates[len(rates) // 2], 1),
                          "per_cpu_s_median": round(cpu_rates[len(cpu_rates) // 2], 1),
                          "completeness_max_abs_err": worst}), flush=True)


if __name__ == "__main__":
    main()
