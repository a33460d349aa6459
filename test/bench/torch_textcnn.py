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
  check      self-test: the one-pass prefix forward equals running every prefix alone

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


def cmd_negatives(a):
    """n_neg distinct ids per evaluated sequence, uniform over 1..V-1 minus the sequence's ids"""
    seqs = read_tsv(a.data)
    _, evals = split_data(seqs, a.protocol, a.valid_fraction)
    rng = np.random.RandomState(a.seed)
    V = a.vocab
    for name, inputs, targets in evals:
        path = a.out if name == "valid" else a.out + ".test"
        with open(path, "w") as f:
            for inp, tg in zip(inputs, targets):
                seen = set(inp)
                seen.add(tg)
                got = []
                gs = set()
                while len(got) < a.n:
                    for t in rng.randint(1, V, size=2 * a.n):
                        t = int(t)
                        if t not in seen and t not in gs:
                            got.append(t)
                            gs.add(t)
                            if len(got) == a.n:
                                break
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
            opt.step()
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
    print("check: %s" % ("ok" if ok else "FAILED"))
    sys.exit(0 if ok else 1)


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
    a = ap.parse_args()
    a.func(a)


if __name__ == "__main__":
    main()
