#!/usr/bin/env python3
"""million_data.py: next-item sequences over a catalogue of a million items (README "A million
items in the core"), one line per user, "0<TAB>ids" as core_train reads them.

Items have Zipf-like popularity (p(rank r) ~ 1/r^1.07, ranks mapped to ids 1..V-1 by a seeded
permutation) and belong to T topics (rank r is in topic r mod T). A user has 1-3 topics; each
event is drawn from the global popularity with probability 0.3, otherwise from one of the
user's topics by its own Zipf-like popularity, so the next item depends on the history (a model
can learn more than popularity). Lengths uniform in [10, 50].

usage: million_data.py N_USERS VOCAB TOPICS SEED OUT
"""
import itertools
import random
import sys


def main():
    n, vocab, topics, seed, out = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), sys.argv[5]
    rng = random.Random(seed)
    V = vocab - 1
    id_of_rank = list(range(1, vocab))
    rng.shuffle(id_of_rank)
    cum = list(itertools.accumulate(1.0 / r ** 1.07 for r in range(1, V + 1)))
    per_topic = V // topics
    cum_t = list(itertools.accumulate(1.0 / r ** 1.07 for r in range(1, per_topic + 1)))
    ranks = range(V)
    local = range(per_topic)
    with open(out, "w") as f:
        for _ in range(n):
            L = rng.randint(10, 50)
            mine = [rng.randrange(topics) for _ in range(rng.randint(1, 3))]
            n_glob = sum(rng.random() < 0.3 for _ in range(L))
            glob = rng.choices(ranks, cum_weights=cum, k=n_glob)
            top = [x * topics + rng.choice(mine) for x in rng.choices(local, cum_weights=cum_t, k=L - n_glob)]
            seq = glob + top
            rng.shuffle(seq)
            f.write("0\t%s\n" % " ".join(str(id_of_rank[r]) for r in seq))


if __name__ == "__main__":
    main()
