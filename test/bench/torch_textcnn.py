#!/usr/bin/python3
"""torch_textcnn.py: the project's PyTorch reference for userseq's next-item text-CNN.

It trains the same model as src/core (us_model.h) on the same TSV file as test/bench/core_train,
with the same split, candidate sets and metric definitions, so the two can be compared on
identical data (test/bench/nextitem_parity.sh). Needs Debian's python3-torch and numpy; run
with /usr/bin/python3.

Subcommands:
  regimes    raw exports of nextitem_data.sh -> TSV files per data regime
  negatives  the sampled candidates of every evaluated sequence (one line each), shared by
             both systems
  train      train and evaluate; one JSON line per epoch and a summary
  check      self-test: the one-pass prefix forward equals running every prefix alone (both
             models), padding-independent pooling, rank AUC = pairwise AUC
  gen        the synthetic binary set of the speed benchmarks (core_vs_torch.sh, score_bench.sh,
             explain_bench.sh): Zipf-like items, a planted order-dependent motif, 5% label noise
  bench      the speed benchmark's side: train a plain PyTorch text-CNN (nn.Conv1d per width,
             widths 3,4,5, no recent window, Adam; binary or next item over all V outputs) on a
             TSV file, evaluate every epoch, time the optimizer steps and batch-1024 inference;
             JSON lines as test/bench/core_train prints them

Data: one sequence per line, `label<TAB>id id ...`, ids 1..V-1, oldest first (label ignored).
Protocols (the same in core_train):
  heldout  the last round(f * N) lines are held-out users: input = all but the last id, target
           = the last id; the other lines train (every prefix predicts its next id).
  loo      SASRec's leave-one-out: every line trains on all but its last two ids; validation
           target = the second-to-last id (input: the ids before it), test target = the last id
           (input: all before it). Lines with fewer than 3 ids only train.
Metrics: rank = number of candidates scoring >= the target (ties count against it); full =
every id 1..V-1, sampled = the target + the negatives file's ids for that sequence.
HR@10, NDCG@10 = 1/log2(1 + rank) if rank <= 10, MRR. Baselines on the same candidates:
popularity (training counts) and first-order markov (transitions a -> b counted in the training
part of every line and in the evaluated inputs; score = count(last input id -> b), ties by
popularity).

Model (us_model.h): item embedding (row 0 = padding, zero), one Conv1d per width with the
masked max over the valid windows (a prefix shorter than k has one window: its ids then zero
vectors), ReLU, the embeddings of the last R ids (zeros before the start), dense + ReLU +
dropout, output layer (or tied to the item embeddings) + item bias, softmax cross-entropy over
every id, mean over the batch's examples. Embedding dropout (optional): each step zeroes every
coordinate of the input item table with probability p (scaled 1/(1-p)), one mask per item row
and step, as the core does; the tied output layer sees the table undropped. Init: embeddings N(0, embed_init_std) (0 = N(0, 1),
the PyTorch default), convolutions / linear layers / the item bias U(+-1/sqrt(fan_in)) as
PyTorch's defaults. Adam (dense), optional weight decay (L2, or decoupled with adamw) and
global gradient-norm clipping. `--batch` counts sequences, or with `--batch-examples` training
examples (whole sequences fill a step while their examples fit), as userseq's batch_unit.
"""
import argparse
import hashlib
import json
import math
import os
import sys
import time

import numpy as np


def die(msg):
    sys.stderr.write("torch_textcnn: %s\n" % msg)
    sys.exit(2)


# ----------------------------------------------------------------------------- data

def read_tsv(path):
    seqs = []
    with open(path) as f:
        for n, line in enumerate(f, 1):
            parts = line.rstrip("\n").split("\t")
            if len(parts) != 2:
                die("%s:%d: want label<TAB>ids" % (path, n))
            ids = [int(x) for x in parts[1].split()] if parts[1] else []
            if any(i < 1 for i in ids):
                die("%s:%d: ids must be >= 1" % (path, n))
            seqs.append(ids)
    return seqs


def sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for b in iter(lambda: f.read(1 << 20), b""):
            h.update(b)
    return h.hexdigest()


def split_data(seqs, protocol, valid_fraction):
    """-> (train sequences, [(name, inputs, targets)])"""
    if protocol == "heldout":
        n_valid = int(round(valid_fraction * len(seqs)))
        train = [s for s in seqs[:len(seqs) - n_valid] if len(s) >= 2]
        held = [s for s in seqs[len(seqs) - n_valid:] if len(s) >= 2]
        return train, [("valid", [s[:-1] for s in held], [s[-1] for s in held])]
    train = [s[:-2] for s in seqs if len(s) >= 4]
    ev = [s for s in seqs if len(s) >= 3]
    return train, [("valid", [s[:-2] for s in ev], [s[-2] for s in ev]),
                   ("test", [s[:-1] for s in ev], [s[-1] for s in ev])]


def draw_negatives(inputs, targets, V, n, rng):
    """n distinct ids per evaluated sequence, uniform over 1..V-1 minus the sequence's ids
    (input and target); rng is consumed in order, so one rng serves valid then test"""
    out = []
    for inp, tg in zip(inputs, targets):
        seen = set(inp)
        seen.add(tg)
        if V - 1 - len(seen) < n:
            die("vocabulary too small for %d unseen candidates" % n)
        got = []
        gs = set()
        while len(got) < n:
            for t in rng.randint(1, V, size=2 * n):
                t = int(t)
                if t not in seen and t not in gs:
                    got.append(t)
                    gs.add(t)
                    if len(got) == n:
                        break
        out.append(got)
    return out


def cmd_negatives(a):
    """n_neg distinct ids per evaluated sequence, uniform over 1..V-1 minus the sequence's ids"""
    seqs = read_tsv(a.data)
    _, evals = split_data(seqs, a.protocol, a.valid_fraction)
    rng = np.random.RandomState(a.seed)
    for name, inputs, targets in evals:
        path = a.out if name == "valid" else a.out + ".test"
        with open(path, "w") as f:
            for got in draw_negatives(inputs, targets, a.vocab, a.n, rng):
                f.write("\t" + " ".join(map(str, got)) + "\n")


def cmd_regimes(a):
    """raw_<regime>.tsv (user_id, split, db ids) -> dense ids, held-out files and a JSON note"""
    out = a.raw_dir
    for regime in ("retail", "retail5", "gen"):
        path = os.path.join(out, "raw_%s.tsv" % regime)
        rows = []
        with open(path) as f:
            for line in f:
                u, split, ids = line.rstrip("\n").split("\t")
                rows.append((split, [int(x) for x in ids.split()]))
        items = sorted({i for _, s in rows for i in s})
        idmap = {x: k + 1 for k, x in enumerate(items)}
        V = len(items) + 1
        by = {k: [[idmap[i] for i in s] for sp, s in rows if sp == k] for k in ("train", "valid", "test")}
        note = {"regime": regime, "vocab": V, "users": {k: len(v) for k, v in by.items()}}
        for held in ("valid", "test"):
            lines = by["train"] + by[held]
            p = os.path.join(out, "%s.%s.tsv" % (regime, held))
            with open(p, "w") as f:
                for s in lines:
                    f.write("\t" + " ".join(map(str, s)) + "\n")
            note[held + "_fraction"] = len(by[held]) / len(lines)
            note[held + "_sha256"] = sha256(p)
        lens = [len(s) for v in by.values() for s in v]
        note["mean_len"] = sum(lens) / len(lens)
        with open(os.path.join(out, regime + ".json"), "w") as f:
            json.dump(note, f)
        print(json.dumps(note))
    if a.video:
        user = {}
        with open(a.video) as f:
            for line in f:
                u, i = line.split()
                user.setdefault(int(u), []).append(int(i))
        V = max(i for s in user.values() for i in s) + 1
        p = os.path.join(out, "video.loo.tsv")
        with open(p, "w") as f:
            for u in sorted(user):
                f.write("\t" + " ".join(map(str, user[u])) + "\n")
        note = {"regime": "video", "vocab": V, "users": len(user),
                "mean_len": sum(map(len, user.values())) / len(user), "sha256": sha256(p)}
        with open(os.path.join(out, "video.json"), "w") as f:
            json.dump(note, f)
        print(json.dumps(note))


# ----------------------------------------------------------------------------- baselines

class Ranker:
    def __init__(self):
        self.n = 0
        self.hr = {"full": 0.0, "sampled": 0.0}
        self.ndcg = {"full": 0.0, "sampled": 0.0}
        self.mrr = {"full": 0.0, "sampled": 0.0}

    def add(self, kind, rank):
        if rank <= 10:
            self.hr[kind] += 1
            self.ndcg[kind] += 1.0 / math.log2(rank + 1)
        self.mrr[kind] += 1.0 / rank

    def add_scores(self, scores, target, neg):
        """scores: numpy row over ids 0..V-1 (0 never a candidate)"""
        s = scores[target]
        self.add("full", int((scores[1:] >= s).sum()))
        self.add("sampled", 1 + int((scores[neg] >= s).sum()))
        self.n += 1

    def result(self):
        n = max(self.n, 1)
        return {k: {"hr@10": self.hr[k] / n, "ndcg@10": self.ndcg[k] / n, "mrr": self.mrr[k] / n}
                for k in ("full", "sampled")}


def baselines(train, inputs, targets, negs, V):
    pop = np.zeros(V, dtype=np.float64)
    for s in train:
        for i in s:
            pop[i] += 1
    trans = {}
    for s in list(train) + list(inputs):
        for a, b in zip(s[:-1], s[1:]):
            d = trans.setdefault(a, {})
            d[b] = d.get(b, 0) + 1
    popn = pop / (pop.max() + 1.0)
    rp, rm = Ranker(), Ranker()
    for inp, tg, ng in zip(inputs, targets, negs):
        rp.add_scores(pop, tg, ng)
        sc = popn.copy()
        for b, c in trans.get(inp[-1], {}).items() if inp else ():
            sc[b] += c
        rm.add_scores(sc, tg, ng)
    return rp.result(), rm.result()


# ----------------------------------------------------------------------------- model

def build_model(torch, V, a):
    nn = torch.nn
    widths = [int(w) for w in a.widths.split(",")]
    E, F, H, R = a.embed, a.filters, a.hidden, a.recent_window

    class TextCNN(nn.Module):
        def __init__(self):
            super().__init__()
            self.emb = nn.Embedding(V, E, padding_idx=0)
            if a.embed_init_std > 0:
                with torch.no_grad():
                    self.emb.weight.normal_(0.0, a.embed_init_std)
                    self.emb.weight[0].zero_()
            self.convs = nn.ModuleList([nn.Conv1d(E, F, k) for k in widths])
            D = len(widths) * F + R * E
            self.dense = nn.Linear(D, H)
            self.drop = nn.Dropout(a.dropout)
            self.out = None if a.tie else nn.Linear(H, V, bias=False)
            self.bias = nn.Parameter(torch.empty(V).uniform_(-1 / math.sqrt(H), 1 / math.sqrt(H)))

        def features(self, ids, lens):
            """ids (B, L) right-padded, lens (B). -> z (B, L, D): row t = features of the prefix of
            the first t + 1 ids (positions past the sequence are garbage, never used)"""
            W = self.emb.weight
            if self.training and a.embed_dropout > 0:
                # one mask per step over the item table: every occurrence of an item in the
                # batch sees the same dropped coordinates (as the core, which keys it by row)
                W = W * ((torch.rand(W.shape) >= a.embed_dropout).float() / (1.0 - a.embed_dropout))
            x = torch.nn.functional.embedding(ids, W)             # (B, L, E)
            B, L, _ = x.shape
            parts = []
            for k, conv in zip(widths, self.convs):
                w = conv.weight                                  # (F, E, k)
                taps = torch.einsum("ble,fek->bklf", x, w)       # tap j applied at every position
                # window starting at i: b + sum_j taps[j][i + j]; positions past L read zeros
                pad = torch.nn.functional.pad(taps, (0, 0, 0, k - 1))
                win = sum(pad[:, j, j:j + L] for j in range(k)) + conv.bias  # (B, L, F) window i
                run = torch.cummax(win, dim=1).values                # max over windows 0..i
                # prefix of t + 1 ids: windows 0..t+1-k if t + 1 >= k, else the partial first window
                idx = torch.arange(L)
                full = torch.zeros_like(run)
                if L >= k:
                    full[:, k - 1:] = run[:, :L - k + 1]
                part = torch.cumsum(torch.stack([taps[:, j, j] for j in range(min(k, L))], 1), 1) \
                    + conv.bias                                      # (B, min(k,L), F) first j+1 taps
                pf = torch.zeros_like(run)
                m = min(k - 1, L)
                if m > 0:
                    pf[:, :m] = part[:, :m]
                pooled = torch.where((idx >= k - 1).view(1, L, 1), full, pf)
                parts.append(torch.relu(pooled))
            for r in range(R):
                # event t + 1 - R + r of the prefix ending at t
                sh = R - 1 - r
                parts.append(torch.nn.functional.pad(x, (0, 0, sh, 0))[:, :L])
            return torch.cat(parts, dim=2)

        def head(self, z):
            h = self.drop(torch.relu(self.dense(z)))
            W = self.emb.weight if a.tie else self.out.weight
            return h @ W.t() + self.bias

    return TextCNN()


def pad_batch(torch, seqs, L):
    lens = [min(len(s), L) for s in seqs]
    Lb = max(lens)
    ids = np.zeros((len(seqs), Lb), dtype=np.int64)
    for b, s in enumerate(seqs):
        t = s[-L:]
        ids[b, :len(t)] = t
    return torch.from_numpy(ids), lens


def cmd_train(a):
    if a.threads:
        os.environ.setdefault("OMP_NUM_THREADS", str(a.threads))
    import torch
    torch.set_num_threads(a.threads)
    torch.set_num_interop_threads(1)
    torch.manual_seed(a.seed)
    rs = np.random.RandomState(a.seed)
    t0 = time.time()
    seqs = read_tsv(a.data)
    V = a.vocab
    if any(i >= V for s in seqs for i in s):
        die("an id is >= --vocab")
    train, evals = split_data(seqs, a.protocol, a.valid_fraction)
    negs = {}
    for name, inputs, _ in evals:
        path = a.negatives if name == "valid" else a.negatives + ".test"
        ng = [np.array([int(x) for x in l.split()], dtype=np.int64) for l in open(path)]
        if len(ng) != len(inputs):
            die("%s: want one line per evaluated sequence (%d)" % (path, len(inputs)))
        negs[name] = ng
    L = a.max_len
    train = [s[-L:] for s in train]
    evals = [(n, [s[-L:] for s in inp], tg) for n, inp, tg in evals]
    summary = {"type": "summary", "system": "torch", "data": a.data, "sha256": sha256(a.data),
               "protocol": a.protocol, "vocab": V, "train_sequences": len(train),
               "config": {k: v for k, v in vars(a).items() if k not in ("func",)}}
    base = {}
    for name, inputs, targets in evals:
        pop, mk = baselines(train, inputs, targets, negs[name], V)
        base[name] = {"popularity": pop, "markov": mk}
    model = build_model(torch, V, a)
    params = list(model.parameters())
    if a.optimizer == "adamw":
        opt = torch.optim.AdamW(params, lr=a.lr, weight_decay=a.weight_decay)
    else:
        opt = torch.optim.Adam(params, lr=a.lr, weight_decay=a.weight_decay)

    def evaluate(inputs, targets, ng):
        model.eval()
        rk = Ranker()
        loss = 0.0
        with torch.no_grad():
            for b0 in range(0, len(inputs), 256):
                ids, lens = pad_batch(torch, inputs[b0:b0 + 256], L)
                z = model.features(ids, lens)
                zl = z[torch.arange(len(lens)), torch.tensor(lens) - 1]
                lg = model.head(zl)
                lg[:, 0] = -float("inf")
                tg = torch.tensor(targets[b0:b0 + 256])
                loss += torch.nn.functional.cross_entropy(lg, tg, reduction="sum").item()
                sc = lg.numpy()
                for r in range(len(lens)):
                    rk.add_scores(sc[r], targets[b0 + r], ng[b0 + r])
        model.train()
        out = rk.result()
        out["loss"] = loss / max(len(inputs), 1)
        return out

    def n_examples(s):
        k = len(s) - 1
        return max(0, min(k, a.max_examples_per_seq) if a.max_examples_per_seq else k)

    def steps(order):
        """[b0, b1) of every step: --batch sequences, or with --batch-examples whole sequences
        while their examples fit in --batch (at least one), as userseq's batch_unit examples"""
        if not a.batch_examples:
            return [(b0, min(b0 + a.batch, len(order))) for b0 in range(0, len(order), a.batch)]
        out, b0, acc = [], 0, 0
        for i, j in enumerate(order):
            k = n_examples(train[j])
            if i > 0 and acc > 0 and acc + k > a.batch:
                out.append((b0, i))
                b0, acc = i, 0
            acc += k
        out.append((b0, len(order)))
        return out

    best, best_ep, best_state, bad = -1.0, 0, None, 0
    history = []
    for ep in range(a.epochs):
        te = time.time()
        order = rs.permutation(len(train))
        tot, nex = 0.0, 0
        for b0, b1 in steps(order):
            bs = [train[i] for i in order[b0:b1]]
            ids, lens = pad_batch(torch, bs, L)
            z = model.features(ids, lens)
            # examples: prefix of t + 1 ids (row t) predicts id t + 1, t = 0 .. len - 2
            rows_b, rows_t = [], []
            for b, n in enumerate(lens):
                t0_ = max(0, n - 1 - a.max_examples_per_seq) if a.max_examples_per_seq else 0
                rows_b += [b] * (n - 1 - t0_)
                rows_t += list(range(t0_, n - 1))
            if not rows_b:
                continue
            rb, rt = torch.tensor(rows_b), torch.tensor(rows_t)
            lg = model.head(z[rb, rt])
            tg = ids[rb, rt + 1]
            loss = torch.nn.functional.cross_entropy(lg, tg)
            opt.zero_grad()
            loss.backward()
            if model.emb.weight.grad is not None:
                model.emb.weight.grad[0].zero_()
            if a.clip_norm > 0:
                torch.nn.utils.clip_grad_norm_(params, a.clip_norm)
            lazy = a.lazy_embed and not a.tie   # tied + full softmax: every row is used
            if lazy:
                # the core's lazy Adam: rows the batch did not use keep weight and moments
                keep = torch.ones(V, dtype=torch.bool)
                keep[ids.unique()] = False
                st = opt.state.get(model.emb.weight, {})
                saved = [(t, t[keep].clone()) for t in
                         [model.emb.weight.data] + [st[k] for k in ("exp_avg", "exp_avg_sq") if k in st]]
            opt.step()
            if lazy:
                st = opt.state[model.emb.weight]
                if len(saved) == 1:     # first step: Adam created the moments (zero there)
                    saved += [(st[k], torch.zeros_like(st[k][keep])) for k in ("exp_avg", "exp_avg_sq")]
                for t, v in saved:
                    t[keep] = v
            with torch.no_grad():
                model.emb.weight[0].zero_()
            tot += loss.item() * len(rows_b)
            nex += len(rows_b)
        train_s = time.time() - te
        res = {n: evaluate(inp, tg, negs[n]) for n, inp, tg in evals if n == "valid" or a.report_test}
        line = {"type": "epoch", "system": "torch", "epoch": ep + 1, "train_loss": tot / max(nex, 1),
                "examples": nex, "train_s": round(train_s, 2), "eval_s": round(time.time() - te - train_s, 2)}
        line.update(res)
        print(json.dumps(line), flush=True)
        history.append(line)
        metric = res["valid"]["full"]["ndcg@10"]
        if metric > best:
            best, best_ep, bad = metric, ep + 1, 0
            best_state = {k: v.clone() for k, v in model.state_dict().items()}
        else:
            bad += 1
            if a.patience and bad >= a.patience:
                break
    model.load_state_dict(best_state)
    summary["best_epoch"] = best_ep
    summary["final"] = {n: evaluate(inp, tg, negs[n]) for n, inp, tg in evals
                        if n == "valid" or a.report_test}
    summary["baselines"] = {n: b for n, b in base.items() if n == "valid" or a.report_test}
    summary["wall_s"] = round(time.time() - t0, 1)
    summary["torch"] = torch.__version__
    print(json.dumps(summary), flush=True)


# ----------------------------------------------------------------------------- gen

def generate(n, max_len, vocab, seed, min_len):
    """-> (labels, sequences): the synthetic binary set of the benchmarks.

    Items: Zipf-like popularity p(rank r) ~ 1/r^1.07 over ids 1..V-1, ranks mapped to ids by a
    seeded permutation. Lengths uniform in [min_len, max_len]. Signal: the items of popularity
    ranks 200-202 (a, b, c) are removed from the random body; positives then get the contiguous
    motif a b c 1-3 times, negatives the same three items as often but scattered and never
    contiguous in that order (so the label needs order, not a bag of items). 5% of the labels
    are flipped. The draws happen in a fixed order from one RandomState(seed), the order of the
    peer reference this replaces, so a seed gives the same file (and SHA-256) as it did there.
    """
    if vocab < 204:
        die("--vocab must be >= 204 (the motif uses popularity ranks 200-202)")
    if not 3 <= min_len <= max_len:
        die("need 3 <= --min-len <= --max-len (the motif takes 3 positions)")
    rng = np.random.RandomState(seed)
    p = 1.0 / np.arange(1, vocab, dtype=np.float64) ** 1.07
    item_of_rank = rng.permutation(np.arange(1, vocab))
    a, b, c = (int(x) for x in item_of_rank[200:203])
    filler = int(item_of_rank[0])
    lens = rng.randint(min_len, max_len + 1, size=n)
    body = item_of_rank[rng.choice(vocab - 1, size=(n, max_len), p=p / p.sum())]
    labels = (rng.rand(n) < 0.5).astype(np.int64)
    times = rng.randint(1, 4, size=n)
    seqs = []
    for i in range(n):
        n_i = int(lens[i])
        s = body[i, :n_i].copy()
        s[np.isin(s, (a, b, c))] = filler
        for _ in range(times[i]):
            if labels[i]:
                at = rng.randint(0, n_i - 2)
                s[at:at + 3] = (a, b, c)
            else:
                where = rng.choice(n_i, size=3, replace=False)
                s[where] = (c, a, b) if rng.rand() < 0.5 else (b, c, a)
        if not labels[i]:
            # scattered placements can still line up as a b c by chance: break those
            hit = np.flatnonzero((s[:-2] == a) & (s[1:-1] == b) & (s[2:] == c))
            s[hit + 1] = filler
        seqs.append(s)
    noise = rng.rand(n) < 0.05
    labels[noise] = 1 - labels[noise]
    return labels, seqs


def cmd_gen(a):
    min_len = a.min_len or max(3, a.max_len // 4)
    labels, seqs = generate(a.n, a.max_len, a.vocab, a.seed, min_len)
    with open(a.out, "w") as f:
        for y, s in zip(labels, seqs):
            f.write("%d\t%s\n" % (y, " ".join(map(str, s.tolist()))))
    # core_vs_torch.sh reuses a file when this line shows the same "n", "max_len", ..., "vocab",
    # "seed" in this order
    print(json.dumps({"type": "gen", "out": os.path.abspath(a.out), "n": a.n, "max_len": a.max_len,
                      "min_len": min_len, "vocab": a.vocab, "seed": a.seed,
                      "positives": int(labels.sum()), "ids": int(sum(len(s) for s in seqs)),
                      "sha256": sha256(a.out)}), flush=True)


# ----------------------------------------------------------------------------- bench

INFER_BATCH = 1024


def read_labeled(path, vocab):
    """-> (labels with None where empty or \\N, id lists); ids must lie in 1..vocab-1"""
    labels, seqs = [], []
    with open(path) as f:
        for n, line in enumerate(f, 1):
            parts = line.rstrip("\n").split("\t")
            if len(parts) != 2:
                die("%s:%d: want label<TAB>ids" % (path, n))
            y = parts[0].strip().lower()
            if y in ("", "\\n"):
                labels.append(None)
            elif y in ("0", "f", "false", "1", "t", "true"):
                labels.append(1 if y in ("1", "t", "true") else 0)
            else:
                die("%s:%d: label %r is not 0/1/t/f" % (path, n, parts[0]))
            try:
                ids = [int(x) for x in parts[1].split()]
            except ValueError:
                die("%s:%d: ids must be integers separated by spaces" % (path, n))
            if any(i < 1 or i >= vocab for i in ids):
                die("%s:%d: ids must lie in 1..%d (--vocab %d)" % (path, n, vocab - 1, vocab))
            seqs.append(ids)
    return labels, seqs


def build_bench_model(torch, V, E, F, widths, H, dropout, n_out):
    """The text-CNN as a PyTorch user writes it: nn.Conv1d per width over right-padded ids, a
    masked max over the valid windows, ReLU, dense + ReLU + dropout, linear head (1 logit or V
    scores). A sequence shorter than a width has one window, its ids then zero vectors
    (embedding row 0), so the output depends neither on the padding nor on the batch.
    Modules are created in the order embedding, convolutions, dense, head, which fixes the
    initial weights for a given torch seed."""
    nn = torch.nn

    class BenchCNN(nn.Module):
        def __init__(self):
            super().__init__()
            self.widths = tuple(widths)
            self.emb = nn.Embedding(V, E, padding_idx=0)
            self.convs = nn.ModuleList([nn.Conv1d(E, F, k) for k in self.widths])
            self.dense = nn.Linear(len(self.widths) * F, H)
            self.drop = nn.Dropout(dropout)
            self.out = nn.Linear(H, n_out)

        def pooled(self, ids, lens):
            """ids (B, P >= max width) right-padded, lens (B) -> features (B, len(widths) * F)"""
            x = self.emb(ids).transpose(1, 2)
            parts = []
            for k, conv in zip(self.widths, self.convs):
                c = conv(x)                                       # (B, F, P - k + 1) windows
                last = (lens - k).clamp(min=0)                    # last valid window
                pad = torch.arange(c.shape[2])[None, :] > last[:, None]
                parts.append(c.masked_fill(pad[:, None, :], -math.inf).max(dim=2).values)
            return torch.relu(torch.cat(parts, dim=1))

        def prefixes(self, ids):
            """ids (B, P >= max width) -> (B, P, D): row t = pooled features of the first t + 1
            ids. From t + 1 = k on, the max over windows 0..t+1-k is a running max of the
            windows; below k the one partial window is the first t + 1 taps plus the bias."""
            x = self.emb(ids).transpose(1, 2)
            parts = []
            for k, conv in zip(self.widths, self.convs):
                run = conv(x).cummax(dim=2).values
                w = conv.weight[:, :, :k - 1]
                first = torch.einsum("fej,bej->bfj", w, x[:, :, :k - 1]).cumsum(dim=2)
                parts.append(torch.cat([first + conv.bias[None, :, None], run], dim=2))
            return torch.relu(torch.cat(parts, dim=1)).transpose(1, 2)

        def head(self, z):
            return self.out(self.drop(torch.relu(self.dense(z))))

        def forward(self, ids, lens):
            return self.head(self.pooled(ids, lens))

    return BenchCNN()


def right_pad(seqs, width):
    """id lists (each <= width long) -> int64 array (N, width), oldest id first, and lengths"""
    ids = np.zeros((len(seqs), width), dtype=np.int64)
    for r, s in enumerate(seqs):
        ids[r, :len(s)] = s
    return ids, np.array([len(s) for s in seqs], dtype=np.int64)


def roc_auc(scores, labels):
    """Mann-Whitney AUC with tied scores sharing their mean rank; NaN with one class only"""
    scores = np.asarray(scores, dtype=np.float64)
    pos = np.asarray(labels, dtype=bool)
    n1, n0 = int(pos.sum()), int((~pos).sum())
    if not n1 or not n0:
        return float("nan")
    order = np.argsort(scores, kind="stable")
    s = scores[order]
    ranks = np.empty(len(s))
    lo = 0
    while lo < len(s):
        hi = lo
        while hi + 1 < len(s) and s[hi + 1] == s[lo]:
            hi += 1
        ranks[order[lo:hi + 1]] = (lo + hi) / 2.0 + 1.0        # mean of 1-based ranks lo+1..hi+1
        lo = hi + 1
    return float((ranks[pos].sum() - n1 * (n1 + 1) / 2.0) / (n1 * n0))


def ranks_metrics(result):
    """Ranker.result() -> the peer's key names (full_ranking, sampled_99)"""
    return {"full_ranking": result["full"], "sampled_99": result["sampled"]}


def cmd_bench(a):
    """Train and time the text-CNN on a TSV file: binary (column 1) or next item.

    The validation set is the last round(f * N) lines. Timing covers optimizer steps only
    (batch gather, forward, backward, Adam) after the first --warmup-steps; inference is
    eval mode + inference_mode, batch 1024, one untimed batch, then --infer-batches batches of
    validation sequences (cycled): sigmoid (binary) or all V scores + top 10 (next item).
    """
    t = str(a.threads)
    if os.environ.get("OMP_NUM_THREADS") != t or os.environ.get("OPENBLAS_NUM_THREADS") != t:
        # OpenMP and OpenBLAS read these when loaded (numpy already loaded OpenBLAS): restart
        os.execve(sys.executable, [sys.executable, os.path.abspath(__file__)] + sys.argv[1:],
                  dict(os.environ, OMP_NUM_THREADS=t, OPENBLAS_NUM_THREADS=t))
    import resource
    import torch
    import torch.nn.functional as tf
    t_wall = time.perf_counter()
    torch.set_num_threads(a.threads)
    torch.set_num_interop_threads(1)
    torch.manual_seed(a.seed)
    widths = [int(w) for w in a.widths.split(",")]
    kmax = max(widths)
    L = a.max_len
    if L < kmax:
        die("--max-len must be at least the widest filter")
    if not 0.0 < a.valid_fraction < 1.0:
        die("--valid-fraction must lie strictly between 0 and 1")
    V = a.vocab

    t_load = time.perf_counter()
    labels, seqs = read_labeled(a.data, V)
    n_valid = int(round(a.valid_fraction * len(seqs)))
    n_train = len(seqs) - n_valid
    if n_train < 1 or n_valid < 1:
        die("%s: %d lines leave no training or no validation sequences" % (a.data, len(seqs)))
    nexti = a.task == "next_item"
    if nexti:
        train = [s[-L:] for s in seqs[:n_train] if len(s) >= 2]
        held = [s for s in seqs[n_train:] if len(s) >= 2]
        skipped = len(seqs) - len(train) - len(held)
        v_in, v_tg = [s[:-1][-L:] for s in held], [s[-1] for s in held]
        if a.negatives:
            negs = [[int(x) for x in line.split()] for line in open(a.negatives)]
            if len(negs) != len(held):
                die("%s: want one line per held-out sequence (%d)" % (a.negatives, len(held)))
        else:
            negs = draw_negatives([s[:-1] for s in held], v_tg, V, 99,
                                  np.random.RandomState(a.negatives_seed))
        y_train = y_valid = None
    else:
        if any(y is None for y in labels):
            die("--task binary needs a 0/1 label on every line")
        train = [s[-L:] for s in seqs[:n_train]]
        v_in = [s[-L:] for s in seqs[n_train:]]
        y_train = torch.tensor(labels[:n_train], dtype=torch.float32)
        y_valid = torch.tensor(labels[n_train:], dtype=torch.float32)
    tr_ids, tr_lens = (torch.from_numpy(x) for x in right_pad(train, L))
    va_ids, va_lens = (torch.from_numpy(x) for x in right_pad(v_in, L))
    del labels, seqs
    load_s = time.perf_counter() - t_load

    def cut(ids, lens, rows):
        """the rows of a batch, cut to their longest sequence (--padding batch) but never
        below the widest filter, or kept at L (--padding global)"""
        bi, bl = ids[rows], lens[rows]
        if a.padding == "batch":
            bi = bi[:, :max(int(bl.max()), kmax)]
        return bi, bl

    model = build_bench_model(torch, V, a.embed, a.filters, widths, a.hidden, a.dropout,
                              V if nexti else 1)
    opt = torch.optim.Adam(model.parameters(), lr=a.lr)
    rs = np.random.RandomState(a.seed)

    def step_loss(rows):
        ids, lens = cut(tr_ids, tr_lens, rows)
        if not nexti:
            return tf.binary_cross_entropy_with_logits(model(ids, lens)[:, 0], y_train[rows]), len(rows)
        z = model.prefixes(ids)[:, :-1]                   # prefix of t + 1 ids predicts id t + 1
        pos = torch.arange(1, ids.shape[1])[None, :]
        first = (lens - a.max_examples_per_seq).clamp(min=1) if a.max_examples_per_seq \
            else torch.ones_like(lens)
        use = (pos < lens[:, None]) & (pos >= first[:, None])
        return tf.cross_entropy(model.head(z[use]), ids[:, 1:][use]), int(use.sum())

    def evaluate():
        model.eval()
        out = []
        with torch.inference_mode():
            for b0 in range(0, len(va_ids), INFER_BATCH):
                out.append(model(*cut(va_ids, va_lens, torch.arange(b0, min(b0 + INFER_BATCH, len(va_ids))))))
        y = torch.cat(out)
        if not nexti:
            logit = y[:, 0]
            return {"valid_loss": float(tf.binary_cross_entropy_with_logits(logit, y_valid)),
                    "valid_accuracy": float(((logit > 0).float() == y_valid).float().mean()),
                    "valid_auc": roc_auc(logit.numpy(), y_valid.numpy() > 0.5)}
        tg = torch.tensor(v_tg)
        rk = Ranker()
        sc = y.numpy()
        for r in range(len(v_tg)):
            rk.add_scores(sc[r], v_tg[r], negs[r])
        return {"valid_loss": float(tf.cross_entropy(y, tg)), **ranks_metrics(rk.result())}

    steps_per_epoch = -(-len(train) // a.batch)
    total = steps_per_epoch * a.epochs
    if a.max_steps:
        total = min(total, a.max_steps)
    if total <= a.warmup_steps:
        die("need more training steps (%d) than --warmup-steps (%d)" % (total, a.warmup_steps))
    step = 0
    timed = {"s": 0.0, "examples": 0, "seqs": 0}
    history = []
    for ep in range(1, a.epochs + 1):
        if step >= total:
            break
        t_ep = time.perf_counter()
        model.train()
        order = torch.from_numpy(rs.permutation(len(train)))
        ep_timed = {"s": 0.0, "examples": 0, "seqs": 0}
        loss_sum, n_ex = 0.0, 0
        for b0 in range(0, len(train), a.batch):
            if step >= total:
                break
            rows = order[b0:b0 + a.batch]
            t0 = time.perf_counter()
            opt.zero_grad(set_to_none=True)
            loss, k = step_loss(rows)
            loss.backward()
            opt.step()
            dt = time.perf_counter() - t0
            step += 1
            loss_sum += float(loss) * k
            n_ex += k
            if step > a.warmup_steps:
                for acc in (timed, ep_timed):
                    acc["s"] += dt
                    acc["examples"] += k
                    acc["seqs"] += len(rows)
        train_s = time.perf_counter() - t_ep
        line = {"type": "epoch", "system": "torch", "epoch": ep, "steps": step,
                "train_loss": loss_sum / n_ex, **evaluate(), "train_examples": n_ex,
                "train_examples_per_s": per_s(ep_timed, "examples"),
                "train_seq_per_s": per_s(ep_timed, "seqs"), "train_s": round(train_s, 3),
                "eval_s": round(time.perf_counter() - t_ep - train_s, 3)}
        history.append(line)
        print(json.dumps(finite(line)), flush=True)

    # inference: batches of validation sequences, cycled, prepared before the clock starts
    rows = torch.arange((a.infer_batches + 1) * INFER_BATCH) % len(va_ids)
    batches = [cut(va_ids, va_lens, rows[i * INFER_BATCH:(i + 1) * INFER_BATCH])
               for i in range(a.infer_batches + 1)]
    infer = (lambda ids, lens: model(ids, lens).topk(10, dim=1).indices) if nexti \
        else (lambda ids, lens: torch.sigmoid(model(ids, lens)))
    model.eval()
    with torch.inference_mode():
        infer(*batches[0])
        t0 = time.perf_counter()
        for ids, lens in batches[1:]:
            infer(ids, lens)
        infer_s = time.perf_counter() - t0

    summary = {"type": "summary", "system": "torch", "task": a.task,
               "data": os.path.abspath(a.data), "data_sha256": sha256(a.data),
               "train_sequences": len(train), "valid_sequences": len(va_ids), "vocab": V,
               "max_len": L, "embed": a.embed, "filters": a.filters, "widths": widths,
               "hidden": a.hidden, "dropout": a.dropout, "lr": a.lr, "batch": a.batch,
               "padding": a.padding, "epochs": len(history), "steps": step,
               "warmup_steps": a.warmup_steps, "threads": a.threads, "seed": a.seed,
               "params": sum(p.numel() for p in model.parameters()),
               "train_examples_per_s": per_s(timed, "examples"),
               "train_seq_per_s": per_s(timed, "seqs"),
               "infer_seq_per_s": round(a.infer_batches * INFER_BATCH / infer_s, 1),
               "infer_batch": INFER_BATCH,
               "final": {k: v for k, v in history[-1].items()
                         if k.startswith("valid_") or k in ("full_ranking", "sampled_99", "train_loss")},
               "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0, 1),
               "data_load_s": round(load_s, 3), "wall_s": round(time.perf_counter() - t_wall, 3),
               "torch": torch.__version__,
               "openblas_coretype": os.environ.get("OPENBLAS_CORETYPE", "(autodetect)")}
    if nexti:
        summary["protocol"] = (
            "held-out sequences, leave-last-out: target = last id, input = the most recent "
            "max_len ids before it; full_ranking = rank among all ids 1..V-1; sampled_99 = rank "
            "among the target + 99 distinct ids absent from the sequence (%s); ties count "
            "against the target" % ("file " + a.negatives if a.negatives
                                    else "drawn with seed %d" % a.negatives_seed))
        summary["max_examples_per_seq"] = a.max_examples_per_seq
        summary["skipped_short_sequences"] = skipped
        pop, _ = baselines(train, v_in, v_tg, negs, V)
        summary["popularity_baseline"] = ranks_metrics(pop)
    print(json.dumps(finite(summary)), flush=True)


def per_s(acc, key):
    return round(acc[key] / acc["s"], 1) if acc["s"] else None


def finite(d):
    """JSON has no NaN: None instead (one-class AUC)"""
    return {k: finite(v) if isinstance(v, dict) else
            (None if isinstance(v, float) and not math.isfinite(v) else v) for k, v in d.items()}


def cmd_check(a):
    """the one-pass prefix features equal each prefix run alone (with and without R)"""
    import torch
    torch.manual_seed(1)
    ok = True
    for R in (0, 2):
        ns = argparse.Namespace(widths="1,3,4", embed=6, filters=5, hidden=7, recent_window=R,
                                dropout=0.0, embed_dropout=0.0, tie=False, embed_init_std=0.1)
        m = build_model(torch, 20, ns)
        m.eval()
        seqs = [[3, 5, 7, 2, 9, 11], [4, 1], [8, 8, 2, 19, 3]]
        ids, lens = pad_batch(torch, seqs, 100)
        with torch.no_grad():
            z = m.features(ids, lens)
            for b, s in enumerate(seqs):
                for t in range(1, len(s) + 1):
                    i1, l1 = pad_batch(torch, [s[:t]], 100)
                    z1 = m.features(i1, l1)[0, t - 1]
                    # reference: explicit windows
                    x = m.emb(torch.tensor(s[:t]))
                    ref = []
                    for k, conv in zip((1, 3, 4), m.convs):
                        xs = torch.cat([x, torch.zeros(max(0, k - t), 6)]) if t < k else x
                        c = torch.stack([(conv.weight * xs[i:i + k].t()).sum((1, 2)) + conv.bias
                                         for i in range(max(1, t - k + 1))])
                        ref.append(torch.relu(c.max(0).values))
                    for r in range(R):
                        j = t - R + r
                        ref.append(x[j] if j >= 0 else torch.zeros(6))
                    ref = torch.cat(ref)
                    for got, name in ((z[b, t - 1], "batched"), (z1, "alone")):
                        if (got - ref).abs().max().item() > 1e-5:
                            ok = False
                            print("mismatch R=%d seq %d prefix %d (%s)" % (R, b, t, name))
    ok = check_bench(torch) and ok
    print("check: %s" % ("ok" if ok else "FAILED"))
    sys.exit(0 if ok else 1)


def check_bench(torch):
    """bench's model: output independent of padding width and batch mates (incl. sequences
    shorter than the widest filter), one-pass prefixes equal pooling each prefix alone, and
    the rank AUC equals the pairwise definition with ties"""
    torch.manual_seed(2)
    m = build_bench_model(torch, 30, 6, 5, (2, 3, 4), 7, 0.0, 30).double().eval()
    seqs = [[3, 5, 7, 2, 9, 11, 4], [4], [8, 8, 2], [19, 3, 3, 1, 2]]
    ok = True
    with torch.no_grad():
        ids, lens = (torch.from_numpy(x) for x in right_pad(seqs, 7))
        wide, wl = (torch.from_numpy(x) for x in right_pad(seqs, 12))
        y = m(ids, lens)
        alone = torch.cat([m(*(torch.from_numpy(x) for x in right_pad([s], max(len(s), 4))))
                           for s in seqs])
        if not (torch.allclose(y, m(wide, wl)) and torch.allclose(y, alone)):
            ok = False
            print("mismatch: bench model output depends on padding or batch mates")
        z = m.prefixes(ids)
        for b, s in enumerate(seqs):
            for t in range(1, len(s) + 1):
                i1, l1 = (torch.from_numpy(x) for x in right_pad([s[:t]], max(t, 4)))
                if not torch.allclose(z[b, t - 1], m.pooled(i1, l1)[0]):
                    ok = False
                    print("mismatch: bench prefix features, seq %d prefix %d" % (b, t))
    rng = np.random.RandomState(3)
    sc, pos = rng.randint(0, 6, 300).astype(float), rng.rand(300) < 0.3
    pair = np.mean([1.0 if p > q else 0.5 if p == q else 0.0 for p in sc[pos] for q in sc[~pos]])
    if abs(roc_auc(sc, pos) - pair) > 1e-12:
        ok = False
        print("mismatch: rank AUC %r vs pairwise %r" % (roc_auc(sc, pos), pair))
    return ok


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("regimes")
    r.add_argument("--raw-dir", required=True)
    r.add_argument("--video", default="")
    r.set_defaults(func=cmd_regimes)
    n = sub.add_parser("negatives")
    for p in (n,):
        p.add_argument("--data", required=True)
        p.add_argument("--vocab", type=int, required=True)
        p.add_argument("--protocol", choices=("heldout", "loo"), default="heldout")
        p.add_argument("--valid-fraction", type=float, default=0.1)
    n.add_argument("--n", type=int, default=99)
    n.add_argument("--seed", type=int, default=1)
    n.add_argument("--out", required=True, help="valid candidates; loo also writes OUT.test")
    n.set_defaults(func=cmd_negatives)
    t = sub.add_parser("train")
    t.add_argument("--data", required=True)
    t.add_argument("--vocab", type=int, required=True, help="ids are 1..V-1")
    t.add_argument("--protocol", choices=("heldout", "loo"), default="heldout")
    t.add_argument("--valid-fraction", type=float, default=0.1)
    t.add_argument("--negatives", required=True, help="file from `negatives`")
    t.add_argument("--max-len", type=int, default=50)
    t.add_argument("--embed", type=int, default=64)
    t.add_argument("--filters", type=int, default=64)
    t.add_argument("--widths", default="2,3,4")
    t.add_argument("--hidden", type=int, default=64)
    t.add_argument("--recent-window", type=int, default=0)
    t.add_argument("--dropout", type=float, default=0.2)
    t.add_argument("--embed-dropout", type=float, default=0.0)
    t.add_argument("--tie", action="store_true")
    t.add_argument("--lazy-embed", action="store_true",
                   help="Adam leaves embedding rows the step did not use alone (as the core)")
    t.add_argument("--embed-init-std", type=float, default=0.0, help="0: N(0, 1), PyTorch's default")
    t.add_argument("--optimizer", choices=("adam", "adamw"), default="adam")
    t.add_argument("--lr", type=float, default=0.002)
    t.add_argument("--weight-decay", type=float, default=0.0)
    t.add_argument("--clip-norm", type=float, default=0.0)
    t.add_argument("--batch", type=int, default=64, help="sequences (or examples) per step")
    t.add_argument("--batch-examples", action="store_true",
                   help="--batch counts training examples (prefixes), whole sequences per step")
    t.add_argument("--max-examples-per-seq", type=int, default=0)
    t.add_argument("--epochs", type=int, default=10)
    t.add_argument("--patience", type=int, default=0)
    t.add_argument("--seed", type=int, default=42)
    t.add_argument("--threads", type=int, default=1)
    t.add_argument("--report-test", action="store_true", help="loo: also the test targets")
    t.set_defaults(func=cmd_train)
    c = sub.add_parser("check")
    c.set_defaults(func=cmd_check)
    g = sub.add_parser("gen", help="write the synthetic binary set of the benchmarks")
    g.add_argument("--out", required=True, help="TSV file to write")
    g.add_argument("--n", type=int, default=50000, help="sequences (default 50000)")
    g.add_argument("--max-len", type=int, default=100, help="longest sequence (default 100)")
    g.add_argument("--min-len", type=int, default=0, help="shortest, >= 3 (default max(3, max-len // 4))")
    g.add_argument("--vocab", type=int, default=10000, help="ids 1..V-1, V >= 204 (default 10000)")
    g.add_argument("--seed", type=int, default=12345)
    g.set_defaults(func=cmd_gen)
    b = sub.add_parser("bench", help="train, evaluate and time (binary or next item)")
    b.add_argument("--data", required=True, help="TSV file: label<TAB>id id ... (oldest first)")
    b.add_argument("--task", choices=("binary", "next_item"), default="binary")
    b.add_argument("--vocab", type=int, required=True, help="ids are 1..V-1 (the generator's --vocab)")
    b.add_argument("--max-len", type=int, default=100, help="keep the most recent L ids (default 100)")
    b.add_argument("--padding", choices=("batch", "global"), default="batch",
                   help="pad each batch to its longest sequence (default) or to L")
    b.add_argument("--embed", type=int, default=128)
    b.add_argument("--filters", type=int, default=128)
    b.add_argument("--widths", default="3,4,5")
    b.add_argument("--hidden", type=int, default=128)
    b.add_argument("--dropout", type=float, default=0.5)
    b.add_argument("--lr", type=float, default=1e-3)
    b.add_argument("--batch", type=int, default=256, help="sequences per step (default 256)")
    b.add_argument("--epochs", type=int, default=2)
    b.add_argument("--max-steps", type=int, default=0, help="stop after this many steps (0: no limit)")
    b.add_argument("--warmup-steps", type=int, default=5, help="first steps not timed (default 5)")
    b.add_argument("--threads", type=int, default=1)
    b.add_argument("--seed", type=int, default=12345)
    b.add_argument("--valid-fraction", type=float, default=0.1,
                   help="the last round(f * N) lines validate (default 0.1)")
    b.add_argument("--max-examples-per-seq", type=int, default=0,
                   help="next_item: only the last C positions of a sequence train (0: all)")
    b.add_argument("--negatives", default="",
                   help="next_item: sampled candidates, one line per held-out sequence (`negatives`)")
    b.add_argument("--negatives-seed", type=int, default=1,
                   help="next_item without --negatives: draw 99 as `negatives --seed` does (default 1)")
    b.add_argument("--infer-batches", type=int, default=8, help="timed inference batches of 1024")
    b.set_defaults(func=cmd_bench)
    a = ap.parse_args()
    a.func(a)


if __name__ == "__main__":
    main()
