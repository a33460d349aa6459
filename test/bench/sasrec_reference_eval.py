# sasrec_reference_eval.py: scores a pmixer/SASRec.pytorch checkpoint (test/bench/sasrec_reference.sh)
# on userseq's leave-one-out evaluation, as core_train --protocol loo does:
#   validation = each user with >= 3 events, input all but the last two, target the second-to-last;
#   test = the same users, input all but the last (the validation event included), target the last.
# Sampled: the target against the 100 fixed negatives of NEG / NEG.test (line n = the n-th such
# user in user order); full: against every item 1..V-1, seen ones included. rank = 1 + candidates
# scored >= the target (ties count against it, as us_rank_of_target). Then SASRec's own
# evaluation (utils.py evaluate / evaluate_valid: 100 fresh negatives outside the user's training
# items, strict > as its argsort) over every such user instead of 10,000 random ones, seed 1;
# last, the popularity baseline on the same negatives (how the split alone moves valid -> test).
import sys, argparse, random, types
import numpy as np, torch
torch.set_num_threads(1)
p = argparse.ArgumentParser()
p.add_argument('--ref', required=True)          # directory with the reference's model.py
p.add_argument('--ckpt', required=True)
p.add_argument('--video', required=True)
p.add_argument('--neg', required=True)          # video.loo.neg (and .neg.test next to it)
p.add_argument('--maxlen', type=int, default=50)
p.add_argument('--hidden', type=int, default=50)
p.add_argument('--blocks', type=int, default=2)
p.add_argument('--heads', type=int, default=1)
a = p.parse_args()
sys.path.insert(0, a.ref)
from model import SASRec

users = {}
for line in open(a.video):
    u, i = map(int, line.split())
    users.setdefault(u, []).append(i)
n_users, n_items = max(users), max(max(s) for s in users.values())
args = types.SimpleNamespace(device='cpu', hidden_units=a.hidden, maxlen=a.maxlen, dropout_rate=0.0,
                             num_blocks=a.blocks, num_heads=a.heads)
model = SASRec(n_users, n_items, args)
model.load_state_dict(torch.load(a.ckpt, map_location='cpu'))
model.eval()

def left_pad(ids):
    s = np.zeros(a.maxlen, dtype=np.int64)
    ids = ids[-a.maxlen:]
    s[a.maxlen - len(ids):] = ids
    return s

def read_neg(path):
    return np.array([[int(x) for x in l.split()] for l in open(path)], dtype=np.int64)

def metrics(ranks):
    r = np.asarray(ranks, dtype=np.float64)
    hit = r <= 10
    return hit.mean(), (hit / np.log2(r + 1)).mean()

@torch.no_grad()
def final_feats(seqs):
    out = []
    for b in range(0, len(seqs), 512):
        out.append(model.log2feats(np.stack(seqs[b:b + 512]))[:, -1, :])
    return torch.cat(out)

order = [u for u in sorted(users) if len(users[u]) >= 3]
W = model.item_emb.weight.detach()[1:n_items + 1]      # items 1..V-1
for split, cut, negpath in (('valid', 2, a.neg), ('test', 1, a.neg + '.test')):
    neg = read_neg(negpath)
    assert neg.shape == (len(order), 100), neg.shape
    seqs = [left_pad(users[u][:-cut]) for u in order]
    tgt = np.array([users[u][-cut] for u in order])
    feats = final_feats(seqs)
    full, samp = [], []
    for b in range(0, len(order), 1024):
        sc = feats[b:b + 1024] @ W.T                     # column j = item j+1
        t = torch.from_numpy(tgt[b:b + 1024] - 1)
        ts = sc.gather(1, t[:, None])
        full += ((sc >= ts).sum(1)).tolist()             # includes the target itself: 1 + others
        ns = sc.gather(1, torch.from_numpy(neg[b:b + 1024] - 1))
        samp += (1 + (ns >= ts).sum(1)).tolist()
    hf, nf = metrics(full)
    hs, ns_ = metrics(samp)
    print('ours %s (%d users): sampled HR@10 %.4f NDCG@10 %.4f | full HR@10 %.4f NDCG@10 %.4f'
          % (split, len(order), hs, ns_, hf, nf))

rng = np.random.RandomState(1)
for split, cut in (('valid', 2), ('test', 1)):
    ranks = []
    seqs, cands = [], []
    for u in order:
        train = users[u][:-2]
        rated = set(train); rated.add(0)
        c = [users[u][-cut]]
        for _ in range(100):
            t = rng.randint(1, n_items + 1)
            while t in rated:
                t = rng.randint(1, n_items + 1)
            c.append(t)
        seqs.append(left_pad(users[u][:-cut]))
        cands.append(c)
    feats = final_feats(seqs)
    C = torch.from_numpy(np.array(cands))
    sc = (model.item_emb(C) * feats[:, None, :]).sum(-1)
    ranks = (1 + (sc[:, 1:] > sc[:, :1]).sum(1)).tolist()  # argsort rank: strict >
    h, n = metrics(ranks)
    print('SASRec protocol, all users, seed 1, %s: HR@10 %.4f NDCG@10 %.4f' % (split, h, n))

# How the split itself moves from validation to test: popularity (counts over every user's
# training part) on the same fixed negatives, and how often the target was never trained on.
cnt = np.zeros(n_items + 1)
for s in users.values():
    for i in (s[:-2] if len(s) >= 3 else s):
        cnt[i] += 1
for split, cut, negpath in (('valid', 2, a.neg), ('test', 1, a.neg + '.test')):
    neg = read_neg(negpath)
    tgt = np.array([users[u][-cut] for u in order])
    h, n = metrics(1 + (cnt[neg] >= cnt[tgt][:, None]).sum(1))
    print('popularity %s: sampled HR@10 %.4f NDCG@10 %.4f; target training count median %.0f; '
          'target never in training %.4f' % (split, h, n, np.median(cnt[tgt]), (cnt[tgt] == 0).mean()))
