/*
 * test_transitions.c: the first-order transition prior of next_item models (us_model.h):
 * the table against a brute-force count (top successors kept, ties by row), the prior in every
 * scoring path (us_model_predict, the scorer's forward, row logits and exact top-k with and
 * without the screen, surprise) against the network's logits plus the brute-force term, the
 * weight fitted on validation, the table's validation and deep copy; the repeat prior (its
 * brute-force term in the same paths, with and without the transition prior, and its weight
 * fitted on planted repeats).
 */
#include <stdint.h>
#include <string.h>

#include "userseq/us_format.h"
#include "userseq/us_metrics.h"
#include "userseq/us_model.h"
#include "userseq/us_rng.h"
#include "../../src/core/us_internal.h"
#include "unit.h"
#include "model_fixture.h"

#define NV 300					/* known items: rows 2 .. NV + 1 */
#define NSEQ 400

/* planted sequences: the next item is f(previous) = 2 + (prev * 7) % NV 70 % of the time;
 * row 2 is followed by 100 distinct items, row 3 (the k-th of them) k times, so that the
 * successor cap bites with ties at the cut */
typedef struct planted
{
	int64_t		off[NSEQ + 2];
	int32_t    *items;
	int32_t		targets[NSEQ + 1];
	us_dataset	d;
} planted;

static int32_t
next_of(int32_t prev)
{
	return 2 + (prev * 7) % NV;
}

static void
make_planted(planted *p, uint64_t seed, int with_fanout)
{
	us_rng		rng;
	int64_t		n = 0;
	int32_t		ns = 0;

	us_rng_seed(&rng, seed);
	p->items = malloc(sizeof(int32_t) * (NSEQ * 20 + 20000));
	p->off[0] = 0;
	for (int32_t s = 0; s < NSEQ; s++)
	{
		int32_t		len = 4 + (int32_t) (us_rng_next(&rng) % 12);
		int32_t		prev = 2 + (int32_t) (us_rng_next(&rng) % NV);

		for (int32_t t = 0; t < len; t++)
		{
			p->items[n++] = prev;
			prev = us_rng_uniform(&rng) < 0.7 ? next_of(prev) : 2 + (int32_t) (us_rng_next(&rng) % NV);
		}
		p->targets[ns] = prev;	/* the event that follows (validation) */
		p->off[++ns] = n;
	}
	if (with_fanout)
	{
		/* one more sequence: 2 -> (10 + j) repeated 1 + j % 7 times, for j = 0 .. 99 */
		for (int32_t j = 0; j < 100; j++)
			for (int32_t r = 0; r <= j % 7; r++)
			{
				p->items[n++] = 2;
				p->items[n++] = 10 + j;
				p->items[n++] = 1;	/* OOV breaks the chain */
			}
		p->targets[ns] = 2;
		p->off[++ns] = n;
	}
	memset(&p->d, 0, sizeof(p->d));
	p->d.n_seqs = ns;
	p->d.offsets = p->off;
	p->d.items = p->items;
	p->d.classes = p->targets;
}

/* brute force: count(a -> b) over consecutive known items of every sequence */
static int32_t
brute_count(const planted *p, int32_t a, int32_t b)
{
	int32_t		c = 0;

	for (int32_t s = 0; s < p->d.n_seqs; s++)
		for (int64_t i = p->off[s] + 1; i < p->off[s + 1]; i++)
			c += p->items[i - 1] == a && p->items[i] == b;
	return c;
}

static void
test_build(us_model *m, const planted *p, const int32_t *ids)
{
	const us_transitions *t = &m->trans;
	int			ok = 1,
				n_kept_2 = 0;

	CHECK_OK(us_transitions_build(m, &p->d, ids, p->d.n_seqs));
	CHECK(t->n_src > 0 && t->nnz > 0 && t->weight == 0.0f, "table built, weight 0 (%d sources, %lld)",
		  t->n_src, (long long) t->nnz);
	for (int32_t i = 0; i < t->n_src && ok; i++)
		for (int64_t j = t->start[i]; j < t->start[i + 1] && ok; j++)
		{
			int32_t		bc = brute_count(p, t->src[i], t->to[j]);

			if (t->src[i] != 2)
				ok &= (int32_t) t->count[j] == bc;
			else
				n_kept_2++;
			ok &= fabsf(t->logc[j] - (float) log1p((double) t->count[j])) < 1e-6f;
		}
	CHECK(ok, "every kept count equals the brute-force count");
	/* row 2: 100 + (planted successors) distinct, the 64 most frequent kept */
	CHECK(n_kept_2 == US_TRANS_MAX_PER_ROW, "row 2 keeps %d successors", n_kept_2);
	{
		const int32_t *to;
		const float *lc;
		int32_t		n,
					min_kept = INT32_MAX,
					max_dropped = 0;
		uint8_t		kept[NV + 2] = {0};

		us_transitions_row(m, 2, &to, &lc, &n);
		for (int32_t j = 0; j < n; j++)
		{
			int32_t		c = brute_count(p, 2, to[j]);

			kept[to[j]] = 1;
			min_kept = c < min_kept ? c : min_kept;
		}
		for (int32_t b = 2; b < NV + 2; b++)
			if (!kept[b] && brute_count(p, 2, b) > max_dropped)
				max_dropped = brute_count(p, 2, b);
		CHECK(n == US_TRANS_MAX_PER_ROW && min_kept >= max_dropped,
			  "row 2 keeps the most frequent (least kept %d, most dropped %d)", min_kept, max_dropped);
		/* ties at the cut go to the lower rows */
		ok = 1;
		for (int32_t b = 2; b < NV + 2; b++)
			for (int32_t b2 = b + 1; b2 < NV + 2; b2++)
				if (kept[b2] && !kept[b] && brute_count(p, 2, b) == brute_count(p, 2, b2) &&
					brute_count(p, 2, b) > 0)
					ok = 0;
		CHECK(ok, "ties at the cut are kept by lower row");
	}
	CHECK(us_transitions_check(&m->trans, m->cfg.n_items) == US_OK, "the built table checks");
}

static void
test_check_rejects(const us_model *m)
{
	us_transitions c;
	int			n_rej = 0,
				n_cases = 0;

	for (int k = 0; k < 8; k++)
	{
		CHECK_OK(us_transitions_copy(&c, &m->trans, us_malloc_allocator()));
		switch (k)
		{
			case 0:
				c.weight = NAN;
				break;
			case 1:
				c.weight = -1.0f;
				break;
			case 2:
				c.src[1] = c.src[0];
				break;
			case 3:
				c.to[0] = m->cfg.n_items;
				break;
			case 4:
				c.to[0] = 1;	/* the OOV row is never a successor */
				break;
			case 5:
				c.count[3] = 0;
				break;
			case 6:
				c.start[1] = c.start[2];	/* an empty source */
				break;
			case 7:
				c.start[c.n_src] = c.nnz + 1;
				break;
		}
		n_cases++;
		n_rej += us_transitions_check(&c, m->cfg.n_items) == US_EFORMAT;
		us_transitions_free(&c, us_malloc_allocator());
	}
	CHECK(n_rej == n_cases, "us_transitions_check rejects %d of %d corruptions", n_rej, n_cases);
}

/* the prior's term by brute force from the table */
static float
term_of(const us_model *m, int32_t last, int32_t b)
{
	const us_transitions *t = &m->trans;

	for (int32_t i = 0; i < t->n_src; i++)
		if (t->src[i] == last)
			for (int64_t j = t->start[i]; j < t->start[i + 1]; j++)
				if (t->to[j] == b)
					return t->weight * t->logc[j];
	return 0.0f;
}

/* the repeat prior's term by brute force: rw * log(1 + occurrences in the last max_len) */
static float
rep_of(const us_model *m, const int32_t *h, int32_t n, int32_t b)
{
	int32_t		c = 0;

	for (int32_t i = n > m->cfg.max_len ? n - m->cfg.max_len : 0; i < n; i++)
		c += h[i] == b;
	return b >= 2 && c > 0 ? m->trans.repeat_weight * logf(1.0f + (float) c) : 0.0f;
}

static const float *sort_logits;

static int
cmp_rows(const void *a, const void *b)
{
	int32_t		ra = *(const int32_t *) a,
				rb = *(const int32_t *) b;

	if (sort_logits[ra] != sort_logits[rb])
		return sort_logits[ra] > sort_logits[rb] ? -1 : 1;
	return ra < rb ? -1 : ra > rb;
}

/* rw: the repeat weight beside the transition weight 1.5 (0: the transition prior alone) */
static void
test_paths(us_model *m, const planted *p, float rw)
{
	int32_t		V = m->cfg.n_outputs;
	float	   *net = malloc(sizeof(float) * V),
			   *pri = malloc(sizeof(float) * V),
			   *fw = malloc(sizeof(float) * V);
	int32_t    *all = malloc(sizeof(int32_t) * V);
	us_scorer  *sc[2] = {NULL, NULL};
	int			ok_pred = 1,
				ok_fw = 1,
				ok_rows = 1,
				ok_topk = 1,
				n_boosted = 0,
				n_repeat = 0;

	m->trans.weight = 1.5f;
	m->trans.repeat_weight = rw;
	CHECK(us_transitions_active(m) && us_repeat_active(m) == (rw > 0.0f), "weight 1.5, repeat %.2f: active", rw);
	CHECK_OK(us_scorer_create(m, SIZE_MAX, us_malloc_allocator(), &sc[0]));
	CHECK_OK(us_scorer_create(m, 0, us_malloc_allocator(), &sc[1]));
	CHECK(sc[0] && us_scorer_is_screened(sc[0]), "the scorer screens");
	for (int32_t s = 0; s < 60 && sc[0] && sc[1]; s++)
	{
		us_events	ev;
		int32_t		last;

		memset(&ev, 0, sizeof ev);
		ev.items = p->items + p->off[s];
		ev.n = (int32_t) (p->off[s + 1] - p->off[s]);
		last = ev.items[ev.n - 1];
		/* the network alone, then with the priors */
		m->trans.weight = 0.0f;
		m->trans.repeat_weight = 0.0f;
		CHECK_OK(us_model_predict(m, &p->d, &s, 1, net, NULL, NULL, NULL));
		m->trans.weight = 1.5f;
		m->trans.repeat_weight = rw;
		CHECK_OK(us_model_predict(m, &p->d, &s, 1, pri, NULL, NULL, NULL));
		for (int32_t b = 0; b < V; b++)
		{
			float		tb = term_of(m, last, b),
						rb = rep_of(m, ev.items, ev.n, b);

			n_boosted += tb > 0;
			n_repeat += rb > 0;
			ok_pred &= fabsf(pri[b] - (net[b] + tb + rb)) <= 1e-5f * (1.0f + fabsf(pri[b]));
			ok_pred &= us_transitions_term(m, last, b) == tb;
			ok_pred &= fabsf(us_repeat_term(m, ev.items, ev.n, b) - rb) <= 1e-6f * (1.0f + rb);
		}
		for (int k = 0; k < 2; k++)
		{
			int32_t		rows[40],
						nf = 0,
						probe[3] = {next_of(last), 2, V - 1};
			float		scores[40],
						rl[3];

			CHECK_OK(us_scorer_forward(sc[k], &ev, fw, NULL));
			for (int32_t b = 0; b < V; b++)
				ok_fw &= fabsf(fw[b] - pri[b]) <= 1e-4f * (1.0f + fabsf(pri[b]));
			if (k == 0)
			{
				CHECK_OK(us_scorer_row_logits(sc[0], &ev, probe, 3, rl));
				for (int j = 0; j < 3; j++)
					ok_rows &= memcmp(&rl[j], &fw[probe[j]], sizeof(float)) == 0;
			}
			for (int excl = 0; excl < 2; excl++)
				for (int kk = 1; kk <= 40; kk += 13)
				{
					int32_t		na = 0;

					for (int32_t r = 2; r < V; r++)
					{
						int			seen = 0;

						for (int32_t i = 0; excl && i < ev.n; i++)
							seen |= ev.items[i] == r;
						if (!seen)
							all[na++] = r;
					}
					sort_logits = fw;
					qsort(all, (size_t) na, sizeof(int32_t), cmp_rows);
					CHECK_OK(us_scorer_topk(sc[k], &ev, kk, excl, rows, scores, &nf));
					ok_topk &= nf == (kk < na ? kk : na);
					for (int32_t j = 0; j < nf; j++)
						ok_topk &= rows[j] == all[j] && memcmp(&scores[j], &fw[all[j]], sizeof(float)) == 0;
				}
		}
	}
	CHECK(n_boosted > 100, "the prior raised %d logits", n_boosted);
	CHECK(rw == 0.0f ? n_repeat == 0 : n_repeat > 100, "the repeat prior raised %d logits", n_repeat);
	CHECK(ok_pred, "us_model_predict = network + weight * log(1 + count) + repeat term, per row (repeat %.2f)", rw);
	CHECK(ok_fw, "scorer forward (screened and not) = us_model_predict with the prior");
	CHECK(ok_rows, "row logits = the forward's logits, bit for bit");
	CHECK(ok_topk, "top-k (screened and not, exclude seen or not) = sort of the forward's logits");

	/* surprise: rank and NLL of every event = those of the forward over its prefix */
	{
		int32_t		s = 7,
					n = (int32_t) (p->off[s + 1] - p->off[s]);
		double		nll[64];
		int32_t		rank[64];
		int			ok_r = 1,
					ok_n = 1;
		us_events	ev;

		memset(&ev, 0, sizeof ev);
		ev.items = p->items + p->off[s];
		ev.n = n;
		CHECK_OK(us_model_surprise(m, &ev, nll, rank));
		for (int32_t t = 1; t < n && sc[1]; t++)
		{
			us_events	pe = ev;
			int32_t		tg = ev.items[t],
						higher = 0;
			double		mx = -1e300,
						sum = 0.0;

			pe.n = t;
			CHECK_OK(us_scorer_forward(sc[1], &pe, fw, NULL));
			for (int32_t b = 2; b < V; b++)
			{
				higher += fw[b] >= fw[tg];
				mx = fw[b] > mx ? fw[b] : mx;
			}
			for (int32_t b = 0; b < V; b++)
				sum += exp((double) fw[b] - mx);
			ok_r &= abs(rank[t - 1] - higher) <= 1;
			ok_n &= fabs(nll[t - 1] - (mx + log(sum) - fw[tg])) < 1e-3;
		}
		CHECK(ok_r && ok_n, "surprise ranks and NLL include the prior (ranks %d, nll %d)", ok_r, ok_n);
	}
	us_scorer_free(sc[0]);
	us_scorer_free(sc[1]);
	free(net);
	free(pri);
	free(fw);
	free(all);
}

static void
test_fit(us_model *m, const planted *valid)
{
	double		metrics[16],
				zero_only = 0.0;
	int32_t		ids[NSEQ];
	us_model   *c = NULL;

	for (int32_t i = 0; i < NSEQ; i++)
		ids[i] = i;
	/* an untrained network knows nothing; the planted transitions are worth a lot */
	CHECK_OK(us_model_fit_transition_weight(m, &valid->d, ids, NSEQ, 0, us_transition_weight_grid,
											us_transition_weight_grid_n, NULL, metrics));
	CHECK(m->trans.weight > 0.0f && metrics[0] < metrics[us_transition_weight_grid_n - 1] - 0.2,
		  "fitted weight %.2f, NDCG@10 %.3f at 0 and %.3f at %.0f", m->trans.weight, metrics[0],
		  metrics[us_transition_weight_grid_n - 1],
		  us_transition_weight_grid[us_transition_weight_grid_n - 1]);
	CHECK_OK(us_model_fit_transition_weight(m, &valid->d, ids, NSEQ, 0, &zero_only, 1, NULL, metrics));
	CHECK(m->trans.weight == 0.0f && !us_transitions_active(m), "a grid of {0} turns the prior off");
	{
		double		bad = -1.0;

		CHECK(us_model_fit_transition_weight(m, &valid->d, ids, NSEQ, 0, &bad, 1, NULL, NULL) == US_EINVAL,
			  "a negative weight in the grid is refused");
	}
	m->trans.weight = 2.0f;
	CHECK_OK(us_model_clone(m, us_malloc_allocator(), &c));
	CHECK(c && c->trans.nnz == m->trans.nnz && c->trans.weight == 2.0f &&
		  memcmp(c->trans.to, m->trans.to, sizeof(int32_t) * (size_t) m->trans.nnz) == 0,
		  "us_model_clone copies the table");
	us_model_free(c);
}

/*
 * own_in_table: every user repeats a private pair (a_u -> b_u, no one else has it) and the
 * validation target follows the private pattern again. Counted with the user's own
 * transitions the prior looks perfect; for a history the table has not seen it is worth
 * nothing. Fitting with the own transitions taken out must say so (weight 0).
 */
static void
test_fit_own(us_model *m)
{
	enum
	{
		NU = 120
	};
	int64_t		off[NU + 1];
	int32_t		items[NU * 8],
				tg[NU],
				ids[NU];
	us_dataset	d;
	double		met_in[16],
				met_out[16];
	float		w_in,
				w_out;

	off[0] = 0;
	for (int32_t u = 0; u < NU; u++)
	{
		int32_t		a = 2 + 2 * u,
					b = 3 + 2 * u;	/* rows 2 .. 241, private to user u */

		for (int r = 0; r < 4; r++)
		{
			items[u * 8 + 2 * r] = a;
			items[u * 8 + 2 * r + 1] = b;
		}
		items[u * 8 + 7] = a;	/* ends on a: the next event is b again */
		tg[u] = b;
		off[u + 1] = (u + 1) * 8;
		ids[u] = u;
	}
	memset(&d, 0, sizeof d);
	d.n_seqs = NU;
	d.offsets = off;
	d.items = items;
	d.classes = tg;
	CHECK_OK(us_transitions_build(m, &d, ids, NU));
	CHECK_OK(us_model_fit_transition_weight(m, &d, ids, NU, 0, us_transition_weight_grid,
											us_transition_weight_grid_n, NULL, met_in));
	w_in = m->trans.weight;
	CHECK_OK(us_model_fit_transition_weight(m, &d, ids, NU, 1, us_transition_weight_grid,
											us_transition_weight_grid_n, NULL, met_out));
	w_out = m->trans.weight;
	CHECK(w_in > 0.0f && met_in[us_transition_weight_grid_n - 1] > 0.99,
		  "own transitions counted: weight %.2f, NDCG@10 %.3f", w_in,
		  met_in[us_transition_weight_grid_n - 1]);
	CHECK(w_out == 0.0f && fabs(met_out[us_transition_weight_grid_n - 1] - met_out[0]) < 1e-12,
		  "own transitions taken out: weight %.2f, NDCG@10 %.3f at 0 and %.3f at 32", w_out,
		  met_out[0], met_out[us_transition_weight_grid_n - 1]);
}

/*
 * The repeat prior alone (no table): every user has 3 personal items, 60 % of its events and
 * its next event are among them; the network (untrained) knows nothing of it. The fit must
 * choose a repeat weight > 0 worth far more NDCG@10 than none, with grid {0} for the
 * transitions; the weight survives the format.
 */
static void
test_fit_repeat(us_model *m)
{
	enum
	{
		NU = 300,
		LEN = 10
	};
	int64_t		off[NU + 1];
	int32_t		items[NU * LEN],
				tg[NU],
				ids[NU];
	us_dataset	d;
	us_rng		rng;
	double		met[16],
				zero = 0.0;
	us_model   *back = NULL;
	uint8_t    *buf;
	size_t		len;

	us_rng_seed(&rng, 17);
	off[0] = 0;
	for (int32_t u = 0; u < NU; u++)
	{
		int32_t		own[3];

		for (int k = 0; k < 3; k++)
			own[k] = 2 + (int32_t) (us_rng_next(&rng) % NV);
		for (int t = 0; t < LEN; t++)
			items[u * LEN + t] = us_rng_uniform(&rng) < 0.6 ? own[us_rng_next(&rng) % 3]
				: 2 + (int32_t) (us_rng_next(&rng) % NV);
		tg[u] = own[us_rng_next(&rng) % 3];
		off[u + 1] = (u + 1) * LEN;
		ids[u] = u;
	}
	memset(&d, 0, sizeof d);
	d.n_seqs = NU;
	d.offsets = off;
	d.items = items;
	d.classes = tg;
	us_transitions_free(&m->trans, &m->alloc);
	CHECK(us_model_fit_prior(m, &d, ids, NU, 0, us_transition_weight_grid, us_transition_weight_grid_n,
							 us_transition_weight_grid, us_transition_weight_grid_n, NULL, met) == US_EINVAL,
		  "without a table the transition grid must be {0}");
	CHECK_OK(us_model_fit_prior(m, &d, ids, NU, 0, &zero, 1, us_transition_weight_grid,
								us_transition_weight_grid_n, NULL, met));
	CHECK(m->trans.repeat_weight > 0.0f && m->trans.weight == 0.0f && us_repeat_active(m) &&
		  met[0] + 0.3 < met[us_transition_weight_grid_n - 1],
		  "planted repeats: repeat weight %.2f, NDCG@10 %.3f at 0 and %.3f at 32",
		  m->trans.repeat_weight, met[0], met[us_transition_weight_grid_n - 1]);
	/* the fit's ranks = us_rank_of_target's on the logits us_model_predict gives */
	{
		us_ranking_metrics rm;
		int			cut = 10;
		float	   *y = malloc(sizeof(float) * m->cfg.n_outputs);
		uint8_t    *skip = calloc((size_t) m->cfg.n_outputs, 1);
		double		hr,
					ndcg,
					mrr;
		int			q = 0;

		while (us_transition_weight_grid[q] != m->trans.repeat_weight)
			q++;
		skip[0] = skip[1] = 1;
		us_ranking_init(&rm, &cut, 1);
		for (int32_t u = 0; u < NU; u++)
		{
			CHECK_OK(us_model_predict(m, &d, &u, 1, y, NULL, NULL, NULL));
			us_ranking_add(&rm, us_rank_of_target(y, (size_t) m->cfg.n_outputs, (size_t) tg[u], skip));
		}
		us_ranking_result(&rm, &hr, &ndcg, &mrr);
		CHECK(fabs(ndcg - met[q]) < 1e-9, "fitted NDCG@10 %.6f = the model's own %.6f", met[q], ndcg);
		free(y);
		free(skip);
	}
	len = us_model_encoded_size(m);
	buf = malloc(len);
	CHECK_OK(us_model_encode(m, buf, len));
	CHECK_OK(us_model_decode(buf, len, us_malloc_allocator(), &back));
	CHECK(back && back->trans.repeat_weight == m->trans.repeat_weight && back->trans.n_src == 0,
		  "the repeat weight survives encode / decode (flags bit 1)");
	/* a repeat weight written as 0 or NaN is refused (one model, one encoding) */
	if (back)
	{
		for (int k = 0; k < 2; k++)
		{
			float		bad = k ? NAN : 0.0f;
			uint32_t	u,
						crc;
			us_model   *x = NULL;

			memcpy(&u, &bad, 4);
			memcpy(buf + len - 4, &u, 4);
			crc = us_crc32c(0, buf + US_FORMAT_HEADER_SIZE, len - US_FORMAT_HEADER_SIZE);
			memcpy(buf + 24, &crc, 4);
			CHECK(us_model_decode(buf, len, us_malloc_allocator(), &x) == US_EFORMAT,
				  "a stored repeat weight of %g is US_EFORMAT", (double) bad);
			us_model_free(x);
		}
	}
	us_model_free(back);
	free(buf);
	m->trans.repeat_weight = 0.0f;
}

int
main(void)
{
	for (int tie = 0; tie < 2; tie++)
	{
		fixture_opts o;
		us_model   *m = NULL;
		planted		train,
					valid;
		int32_t		ids[NSEQ + 1];

		fixture_default(&o, US_TASK_NEXT_ITEM);
		o.n_vocab = NV;
		o.tie = tie;
		o.recent = 2;
		CHECK_OK(fixture_model(&o, 91 + tie, &m));
		if (m == NULL)
			continue;
		make_planted(&train, 5, 1);
		make_planted(&valid, 6, 0);
		for (int32_t i = 0; i <= NSEQ; i++)
			ids[i] = i;
		test_build(m, &train, ids);
		test_check_rejects(m);
		test_paths(m, &train, 0.0f);
		test_paths(m, &train, 0.7f);
		m->trans.repeat_weight = 0.0f;
		test_fit(m, &valid);
		test_fit_own(m);
		test_fit_repeat(m);
		{
			us_model   *b = NULL;
			fixture_opts ob;

			fixture_default(&ob, US_TASK_BINARY);
			CHECK_OK(fixture_model(&ob, 3, &b));
			CHECK(b && us_transitions_build(b, &train.d, ids, 1) == US_EINVAL,
				  "a binary model has no transition prior");
			us_model_free(b);
		}
		us_model_free(m);
		free(train.items);
		free(valid.items);
	}
	/* the fit's logit buffer stays within about 32 MB at a million items */
	CHECK(us_transition_fit_chunk(NV + 2) == 256 && us_transition_fit_chunk(1000000) == 8 &&
		  us_transition_fit_chunk(INT32_MAX) == 1,
		  "fit chunk: %d rows at %d items, %d at 1M, %d at INT32_MAX", us_transition_fit_chunk(NV + 2),
		  NV + 2, us_transition_fit_chunk(1000000), us_transition_fit_chunk(INT32_MAX));
	return unit_finish("test_transitions");
}
