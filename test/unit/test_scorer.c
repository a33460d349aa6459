/*
 * test_scorer.c: the one-sequence scorer. Folded and direct paths against each other and
 * against a naive double-precision reference written from the architecture in us_model.h
 * (and against us_model_predict when train.c is linked), for every head and input option and
 * sequence lengths 0, 1, shorter than the widest filter, max_len and beyond; row validation;
 * top-k against a brute-force full sort, with every screen body this machine can run
 * (us_cpu_restrict narrows the run-time selection).
 */
#include <stdint.h>
#include <string.h>

#include "userseq/us_model.h"
#include "userseq/us_rng.h"
#include "../../src/core/us_internal.h"
#include "../../src/core/scorer_internal.h"
#include "unit.h"
#include "model_fixture.h"

/* Naive reference: out (n_outputs) and features (D) in double. */
static void
reference_forward(const us_model *m, const us_events *ev, double *out, double *feat)
{
	const us_model_config *c = &m->cfg;
	const us_params *p = &m->p;
	int			E = c->embed_dim,
				F = c->n_filters,
				H = c->hidden_dim,
				R = c->recent_window,
				O = c->n_outputs;
	int			D = us_model_feature_dim(c);
	int			start = ev->n > c->max_len ? ev->n - c->max_len : 0;
	int			n = ev->n - start;
	double	   *x = calloc((size_t) (n + 1) * E, sizeof(double));
	double	   *h = calloc(H, sizeof(double));

	for (int t = 0; t < n; t++)
	{
		int			i = start + t;

		for (int e = 0; e < E; e++)
		{
			double		v = p->item_emb[(size_t) ev->items[i] * E + e];

			if (c->n_behaviors > 0)
				v += p->behavior_emb[(size_t) (ev->behaviors ? ev->behaviors[i] : 0) * E + e];
			if (c->n_gap_buckets > 0)
				v += p->gap_emb[(size_t) (ev->gaps ? ev->gaps[i] : 0) * E + e];
			x[(size_t) t * E + e] = v;
		}
	}
	for (int w = 0; w < c->n_widths; w++)
	{
		int			k = c->widths[w];
		int			nw = n - k + 1 > 1 ? n - k + 1 : 1;

		for (int f = 0; f < F; f++)
		{
			double		best = -1e300;

			for (int t = 0; t < nw; t++)
			{
				double		v = p->conv_b[w][f];

				for (int j = 0; j < k && t + j < n; j++)
					for (int e = 0; e < E; e++)
						v += x[(size_t) (t + j) * E + e] *
							p->conv_w[w][((size_t) j * E + e) * F + f];
				if (v > best)
					best = v;
			}
			feat[w * F + f] = best > 0 ? best : 0;
		}
	}
	for (int i = 0; i < R; i++)
	{
		int			t = n - R + i;

		for (int e = 0; e < E; e++)
			feat[c->n_widths * F + i * E + e] = t < 0 ? 0.0 : x[(size_t) t * E + e];
	}
	for (int j = 0; j < H; j++)
	{
		double		v = p->dense_b[j];

		for (int d = 0; d < D; d++)
			v += feat[d] * p->dense_w[(size_t) d * H + j];
		h[j] = v > 0 ? v : 0;
	}
	for (int o = 0; o < O; o++)
	{
		double		v = p->out_b[o];

		for (int j = 0; j < H; j++)
			v += h[j] * (p->out_w ? p->out_w[(size_t) j * O + o] : p->item_emb[(size_t) o * E + j]);
		out[o] = v;
	}
	if (c->task == US_TASK_BINARY)
		out[0] = 1.0 / (1.0 + exp(-out[0]));
	else if (c->task == US_TASK_MULTICLASS || c->task == US_TASK_NEXT_BEHAVIOR)
	{
		double		mx = out[0],
					s = 0;

		for (int o = 1; o < O; o++)
			mx = out[o] > mx ? out[o] : mx;
		for (int o = 0; o < O; o++)
			s += (out[o] = exp(out[o] - mx));
		for (int o = 0; o < O; o++)
			out[o] /= s;
	}
	free(x);
	free(h);
}

/* max |a - b| / max(max |ref|, 1e-3) */
static double
rel_err_f(const float *a, const double *ref, int n)
{
	double		scale = 1e-3,
				err = 0;

	for (int i = 0; i < n; i++)
		scale = fabs(ref[i]) > scale ? fabs(ref[i]) : scale;
	for (int i = 0; i < n; i++)
		err = fabs(a[i] - ref[i]) > err ? fabs(a[i] - ref[i]) : err;
	return err / scale;
}

static double
rel_err_ff(const float *a, const float *b, int n)
{
	double		scale = 1e-3,
				err = 0;

	for (int i = 0; i < n; i++)
		scale = fabs(b[i]) > scale ? fabs(b[i]) : scale;
	for (int i = 0; i < n; i++)
		err = fabs((double) a[i] - b[i]) > err ? fabs((double) a[i] - b[i]) : err;
	return err / scale;
}

typedef struct seqbuf
{
	int32_t		items[256],
				beh[256],
				gap[256];
	us_events	ev;
} seqbuf;

static void
random_seq(seqbuf *s, const us_model_config *c, int n, us_rng *rng)
{
	s->ev.n = n;
	s->ev.items = s->items;
	s->ev.behaviors = us_rng_below(rng, 3) ? s->beh : NULL;
	s->ev.gaps = us_rng_below(rng, 3) ? s->gap : NULL;
	for (int i = 0; i < n; i++)
	{
		s->items[i] = (int32_t) us_rng_below(rng, c->n_items);
		s->beh[i] = c->n_behaviors ? (int32_t) us_rng_below(rng, c->n_behaviors) : 0;
		s->gap[i] = c->n_gap_buckets ? (int32_t) us_rng_below(rng, c->n_gap_buckets) : 0;
	}
}

static int	n_partial_tested;

static void
test_forward(const fixture_opts *o, uint64_t seed, int use_predict)
{
	us_model   *m = NULL;
	us_scorer  *sf = NULL,
			   *sd = NULL,
			   *sp = NULL;
	us_rng		rng;
	int			O,
				D,
				maxw;
	float	   *of,
			   *od,
			   *ff,
			   *fd,
			   *op,
			   *fp;
	double	   *oref,
			   *fref;
	int			lens[8];

	CHECK_OK(fixture_model(o, seed, &m));
	if (!m)
		return;
	O = m->cfg.n_outputs;
	D = us_model_feature_dim(&m->cfg);
	maxw = m->cfg.widths[m->cfg.n_widths - 1];
	CHECK_OK(us_scorer_create(m, SIZE_MAX, us_malloc_allocator(), &sf));
	CHECK_OK(us_scorer_create(m, 0, us_malloc_allocator(), &sd));
	/* half the item rows' budget: the hottest rows folded, the rest per request (if it pays) */
	CHECK_OK(us_scorer_create(m, us_scorer_screen_bytes(&m->cfg) +
							  us_scorer_fold_bytes(&m->cfg) / 2, us_malloc_allocator(), &sp));
	if (!sf || !sd || !sp)
		goto out;
	if (us_scorer_is_folded(sp) && us_scorer_folded_rows(sp) < m->cfg.n_items)
		n_partial_tested++;
	CHECK(us_scorer_is_folded(sf) && !us_scorer_is_folded(sd), "fold choice by budget");
	CHECK(us_scorer_fold_bytes(&m->cfg) > 0, "fold bytes");
	of = malloc(O * 4);
	od = malloc(O * 4);
	op = malloc(O * 4);
	ff = malloc(D * 4);
	fd = malloc(D * 4);
	fp = malloc(D * 4);
	oref = malloc(O * 8);
	fref = malloc(D * 8);
	lens[0] = 0;
	lens[1] = 1;
	lens[2] = maxw - 1;
	lens[3] = m->cfg.max_len;
	lens[4] = m->cfg.max_len + 7;
	lens[5] = maxw;
	us_rng_seed(&rng, seed * 31 + 1);
	lens[6] = 2 + (int) us_rng_below(&rng, m->cfg.max_len);
	lens[7] = 1 + (int) us_rng_below(&rng, 60);
	for (int li = 0; li < 8; li++)
	{
		seqbuf		s;
		us_status	st1,
					st2;

		random_seq(&s, &m->cfg, lens[li], &rng);
		st1 = us_scorer_forward(sf, &s.ev, of, ff);
		st2 = us_scorer_forward(sd, &s.ev, od, fd);
		CHECK(st1 == US_OK && st2 == US_OK, "forward ok (task %d, n %d)", o->task, s.ev.n);
		reference_forward(m, &s.ev, oref, fref);
		CHECK(rel_err_ff(of, od, O) <= 1e-5 && rel_err_ff(ff, fd, D) <= 1e-5,
			  "folded = direct (task %d beh %d gap %d R %d tie %d n %d): out %.2g feat %.2g",
			  o->task, o->behaviors, o->gaps, o->recent, o->tie, s.ev.n,
			  rel_err_ff(of, od, O), rel_err_ff(ff, fd, D));
		CHECK(us_scorer_forward(sp, &s.ev, op, fp) == US_OK &&
			  rel_err_ff(op, od, O) <= 1e-5 && rel_err_ff(fp, fd, D) <= 1e-5,
			  "partly folded (%d of %d rows) = direct (task %d n %d): out %.2g feat %.2g",
			  (int) us_scorer_folded_rows(sp), m->cfg.n_items, o->task, s.ev.n,
			  rel_err_ff(op, od, O), rel_err_ff(fp, fd, D));
		CHECK(rel_err_f(of, oref, O) <= 1e-5 && rel_err_f(ff, fref, D) <= 1e-5 &&
			  rel_err_f(od, oref, O) <= 1e-5 && rel_err_f(fd, fref, D) <= 1e-5,
			  "scorer = reference (task %d n %d): folded %.2g direct %.2g",
			  o->task, s.ev.n, rel_err_f(of, oref, O), rel_err_f(od, oref, O));
		/* out NULL: features only */
		CHECK(us_scorer_forward(sf, &s.ev, NULL, ff) == US_OK, "features only");
#if 1							/* us_model_predict from train.c */
		if (use_predict)
		{
			int64_t		offs[2] = {0, s.ev.n};
			int32_t		sid = 0;
			us_dataset	ds;
			float	   *fpred = malloc(D * 4);

			memset(&ds, 0, sizeof(ds));
			ds.n_seqs = 1;
			ds.offsets = offs;
			ds.items = s.items;
			ds.behaviors = s.ev.behaviors;
			ds.gaps = s.ev.gaps;
			CHECK_OK(us_model_predict(m, &ds, &sid, 1, op, fpred, NULL, NULL));
			CHECK(rel_err_ff(of, op, O) <= 1e-5 && rel_err_ff(ff, fpred, D) <= 1e-5,
				  "scorer = us_model_predict (task %d n %d): out %.2g feat %.2g",
				  o->task, s.ev.n, rel_err_ff(of, op, O), rel_err_ff(ff, fpred, D));
			free(fpred);
		}
#else
		(void) use_predict;
#endif
	}

	/* row validation */
	{
		seqbuf		s;

		random_seq(&s, &m->cfg, 5, &rng);
		s.items[3] = m->cfg.n_items;
		CHECK(us_scorer_forward(sf, &s.ev, of, NULL) == US_EINVAL, "item row past the end");
		CHECK(us_scorer_forward(sd, &s.ev, of, NULL) == US_EINVAL, "item row past the end (direct)");
		s.items[3] = -1;
		CHECK(us_scorer_forward(sf, &s.ev, of, NULL) == US_EINVAL, "negative item row");
		s.items[3] = 2;
		if (m->cfg.n_behaviors)
		{
			s.ev.behaviors = s.beh;
			s.beh[0] = m->cfg.n_behaviors;
			CHECK(us_scorer_forward(sf, &s.ev, of, NULL) == US_EINVAL, "behaviour row");
			s.beh[0] = 0;
		}
		if (m->cfg.n_gap_buckets)
		{
			s.ev.gaps = s.gap;
			s.gap[4] = -3;
			CHECK(us_scorer_forward(sf, &s.ev, of, NULL) == US_EINVAL, "gap row");
			s.gap[4] = 0;
		}
		s.ev.n = -1;
		CHECK(us_scorer_forward(sf, &s.ev, of, NULL) == US_EINVAL, "negative length");
		s.ev.n = 3;
		s.ev.items = NULL;
		CHECK(us_scorer_forward(sf, &s.ev, of, NULL) == US_EINVAL, "NULL items");
	}
	free(of);
	free(od);
	free(op);
	free(ff);
	free(fd);
	free(fp);
	free(oref);
	free(fref);
out:
	us_scorer_free(sf);
	us_scorer_free(sd);
	us_scorer_free(sp);
	us_model_free(m);
}

/* brute force: all candidate rows sorted by (logit desc, row asc) */
static int	cmp_logits_base;
static const float *cmp_logits;

static int
cmp_rows(const void *a, const void *b)
{
	int32_t		ra = *(const int32_t *) a,
				rb = *(const int32_t *) b;
	float		sa = isnan(cmp_logits[ra]) ? -INFINITY : cmp_logits[ra],
				sb = isnan(cmp_logits[rb]) ? -INFINITY : cmp_logits[rb];

	(void) cmp_logits_base;
	if (sa != sb)
		return sa > sb ? -1 : 1;
	return ra < rb ? -1 : ra > rb;
}

static void
check_topk(us_scorer *sc, const us_model *m, const us_events *ev, int k, int excl)
{
	int			V = m->cfg.n_items;
	float	   *logits = malloc(V * 4);
	int32_t    *all = malloc(V * 4),
			   *rows = malloc((size_t) k * 4);
	float	   *scores = malloc((size_t) k * 4);
	int			na = 0,
				nf = -1,
				ok = 1;

	CHECK_OK(us_scorer_forward(sc, ev, logits, NULL));
	for (int r = 2; r < V; r++)
	{
		int			seen = 0;

		for (int i = 0; excl && i < ev->n; i++)
			seen |= ev->items[i] == r;
		if (!seen)
			all[na++] = r;
	}
	cmp_logits = logits;
	qsort(all, na, 4, cmp_rows);
	CHECK_OK(us_scorer_topk(sc, ev, k, excl, rows, scores, &nf));
	CHECK(nf == (k < na ? k : na), "topk found %d of k %d (candidates %d)", nf, k, na);
	for (int i = 0; i < nf && i < na; i++)
		if (rows[i] != all[i] || memcmp(&scores[i], &logits[all[i]], sizeof(float)) != 0)
			ok = 0;
	CHECK(ok, "topk (k %d, exclude %d, n %d) equals the full sort", k, excl, ev->n);
	free(logits);
	free(all);
	free(rows);
	free(scores);
}

static void
test_topk(void)
{
	for (int tie = 0; tie < 2; tie++)
		for (int folded = 0; folded < 3; folded++)
		{
			size_t		budget;

			fixture_opts o;
			us_model   *m = NULL;
			us_scorer  *sc = NULL;
			us_rng		rng;
			int32_t		rows[4];
			float		scores[4];
			int32_t		nf = 7;

			fixture_default(&o, US_TASK_NEXT_ITEM);
			o.n_vocab = 300;
			o.tie = tie;
			o.recent = 2;
			CHECK_OK(fixture_model(&o, 50 + tie, &m));
			if (!m)
				continue;
			/* 0: direct, unscreened; 1: all tables; 2: screen and the hottest rows folded */
			budget = folded == 0 ? 0 : folded == 1 ? SIZE_MAX :
				us_scorer_screen_bytes(&m->cfg) + us_scorer_fold_bytes(&m->cfg) / 2;
			CHECK_OK(us_scorer_create(m, budget, us_malloc_allocator(), &sc));
			if (sc)
				CHECK(us_scorer_is_screened(sc) == (folded != 0) &&
					  us_scorer_is_folded(sc) == (folded != 0) &&
					  (folded != 2 || (us_scorer_folded_rows(sc) > 20 &&
									   us_scorer_folded_rows(sc) < m->cfg.n_items)),
					  "topk scorer mode %d: screened %d, folded rows %d", folded,
					  us_scorer_is_screened(sc), (int) us_scorer_folded_rows(sc));
			us_rng_seed(&rng, 99);
			for (int t = 0; t < 12 && sc; t++)
			{
				seqbuf		s;
				int			k = t % 4 == 0 ? 1 : t % 4 == 1 ? 10 : t % 4 == 2 ? 299 : 1000;

				random_seq(&s, &m->cfg, (int) us_rng_below(&rng, 30), &rng);
				check_topk(sc, m, &s.ev, k, t & 1);
			}
			if (sc)
			{
				seqbuf		s;

				random_seq(&s, &m->cfg, 4, &rng);
				CHECK(us_scorer_topk(sc, &s.ev, 0, 0, rows, scores, &nf) == US_EINVAL && nf == 0,
					  "k = 0");
				CHECK(us_scorer_topk(sc, &s.ev, -3, 0, rows, scores, &nf) == US_EINVAL, "k < 0");
				s.items[1] = 100000;
				CHECK(us_scorer_topk(sc, &s.ev, 3, 1, rows, scores, &nf) == US_EINVAL,
					  "topk: bad row");
				/* ties: equal logits everywhere, so the lowest rows win in order */
				if (!tie)
				{
					memset(m->p.out_w, 0, sizeof(float) * m->cfg.hidden_dim * m->cfg.n_outputs);
					for (int r = 0; r < m->cfg.n_outputs; r++)
						m->p.out_b[r] = (float) (r % 3 == 0);
					/* the scorer's tables derive from the weights: rebuild it */
					us_scorer_free(sc);
					sc = NULL;
					CHECK_OK(us_scorer_create(m, budget, us_malloc_allocator(), &sc));
					if (!sc)
						break;
					for (int i = 0; i < 4; i++)
						s.items[i] = 3;
					check_topk(sc, m, &s.ev, 4, 1);
					CHECK_OK(us_scorer_topk(sc, &s.ev, 4, 1, rows, scores, &nf));
					CHECK(nf == 4 && rows[0] == 6 && rows[1] == 9 && rows[2] == 12 && rows[3] == 15,
						  "ties by lower row, seen row 3 excluded: %d %d %d %d",
						  rows[0], rows[1], rows[2], rows[3]);
				}
			}
			us_scorer_free(sc);
			us_model_free(m);
		}
	/* not a next_item model */
	{
		fixture_opts o;
		us_model   *m = NULL;
		us_scorer  *sc = NULL;
		int32_t		rows[2];
		float		scores[2];
		int32_t		nf;
		int32_t		items[1] = {2};
		us_events	ev = {items, NULL, NULL, 1};

		fixture_default(&o, US_TASK_BINARY);
		CHECK_OK(fixture_model(&o, 1, &m));
		CHECK_OK(us_scorer_create(m, SIZE_MAX, us_malloc_allocator(), &sc));
		CHECK(us_scorer_topk(sc, &ev, 2, 0, rows, scores, &nf) == US_EINVAL, "topk on binary");
		us_scorer_free(sc);
		us_model_free(m);
	}
}

/*
 * Chunk skipping (topk.c): a model shaped like a trained one (output bias falling with
 * popularity, tail rows small, so that most chunks' bounds stay below the k-th best) must
 * skip chunks (counted, so that this test fails if none are skipped) and still give the full
 * sort's answer bit for bit: with and without exclude_seen, with exact ties (duplicated rows)
 * at the head and in the tail, and with a transition prior that lifts tail rows (successors
 * of the last item) into the top k. The same scorer with skipping off is the peer of the
 * counters.
 */
static void
test_topk_skip(void)
{
	fixture_opts o;
	us_model   *m = NULL;
	us_scorer  *sc = NULL;
	us_rng		rng;
	int32_t		V,
				H,
				O;

	fixture_default(&o, US_TASK_NEXT_ITEM);
	/* 626 chunks in 10 groups; 188 chunks in 3 groups under the sanitizers (US_UNIT_QUICK) */
	o.n_vocab = unit_quick() ? 12000 : 40000;
	o.H = 16;
	o.recent = 1;
	CHECK_OK(fixture_model(&o, 4242, &m));
	if (!m)
		return;
	V = m->cfg.n_items;
	H = m->cfg.hidden_dim;
	O = m->cfg.n_outputs;
	us_rng_seed(&rng, 4243);
	{
		float	   *w = m->p.out_w;	/* (H, O): column r is row r's weights */

		for (int32_t r = US_ROW_FIRST; r < O; r++)
		{
			/* popularity rank: a scrambled order of the rows, Zipf-like bias and row size */
			int32_t		rank = (int32_t) (((int64_t) r * 7919) % O);
			/* and a few tail rows of large weights, which some requests rank high */
			float		size = rank < 200 ? 1.0f : rank % 1000 == 500 ? 8.0f : 0.05f;

			m->p.out_b[r] = 4.0f - logf(1.0f + (float) rank);
			for (int32_t j = 0; j < H; j++)
				w[(size_t) j * O + r] = size * (float) us_rng_normal(&rng);
			/* exact ties: a head pair and tail pairs */
			if (r == 777 || (r > 2000 && r % 97 == 0))
			{
				for (int32_t j = 0; j < H; j++)
					w[(size_t) j * O + r] = w[(size_t) j * O + r - 1];
				m->p.out_b[r] = m->p.out_b[r - 1];
			}
		}
	}
	for (int prior = 0; prior < 2; prior++)
	{
		int32_t		nseq = 400;
		int64_t    *off = malloc(sizeof(int64_t) * (nseq + 1));
		int32_t    *items = malloc(sizeof(int32_t) * nseq * 6),
				   *ids = malloc(sizeof(int32_t) * nseq);
		uint64_t	skipped[2] = {0, 0};
		int32_t		n_tail = 0;	/* tail rows in a top k */

		if (prior)
		{
			/* transitions to tail rows: i -> i * 31 mod V (far from the head), counted often */
			us_dataset	d;

			memset(&d, 0, sizeof d);
			off[0] = 0;
			for (int32_t q = 0; q < nseq; q++)
			{
				int32_t		a = US_ROW_FIRST + (int32_t) us_rng_below(&rng, 50);

				for (int x = 0; x < 6; x++)
					items[q * 6 + x] = x % 2 ? US_ROW_FIRST + (int32_t) (((int64_t) a * 31 + x) % (V - US_ROW_FIRST)) : a;
				off[q + 1] = (q + 1) * 6;
				ids[q] = q;
			}
			d.n_seqs = nseq;
			d.offsets = off;
			d.items = items;
			CHECK_OK(us_transitions_build(m, &d, ids, nseq));
			m->trans.weight = 3.0f;
			CHECK(us_transitions_active(m), "skip test: the prior is active");
		}
		CHECK_OK(us_scorer_create(m, SIZE_MAX, us_malloc_allocator(), &sc));
		if (sc)
		{
			CHECK(us_scorer_is_screened(sc), "skip test: screened");
			for (int on = 1; on >= 0; on--)
			{
				us_rng		r2;

				sc->block_skip = on;
				sc->n_skipped = sc->n_groups_skipped = 0;
				us_rng_seed(&r2, 99);
				for (int t = 0; t < 60; t++)
				{
					seqbuf		sq;
					int			k = t % 3 == 0 ? 1 : t % 3 == 1 ? 10 : 50;

					random_seq(&sq, &m->cfg, 1 + (int) us_rng_below(&r2, 30), &r2);
					/* half the requests end with an item whose successors are planted */
					if (prior && t % 2)
						sq.items[sq.ev.n - 1] = US_ROW_FIRST + (int32_t) us_rng_below(&r2, 50);
					check_topk(sc, m, &sq.ev, k, t & 1);
					if (prior && on)
					{
						int32_t		rows[50],
									nf = 0;
						float		scores[50];

						CHECK_OK(us_scorer_topk(sc, &sq.ev, k, t & 1, rows, scores, &nf));
						for (int32_t x = 0; x < nf; x++)
							n_tail += ((int64_t) rows[x] * 7919) % O >= 200;
					}
				}
				skipped[on] = sc->n_skipped;
				if (on)
					CHECK(sc->n_groups_skipped > 0, "groups of chunks skipped whole (prior %d): %llu",
						  prior, (unsigned long long) sc->n_groups_skipped);
			}
			CHECK(skipped[1] > 0 && skipped[0] == 0,
				  "chunks skipped (prior %d): %llu with skipping, %llu without, of %llu", prior,
				  (unsigned long long) skipped[1], (unsigned long long) skipped[0],
				  (unsigned long long) sc->n_chunks / 2);
			CHECK(!prior || n_tail > 0, "the prior lifts tail rows into the top k (%d)", n_tail);
			CHECK(skipped[1] * 2 > sc->n_chunks / 2,
				  "most chunks skipped (prior %d): %llu of %llu", prior,
				  (unsigned long long) skipped[1], (unsigned long long) sc->n_chunks / 2);
		}
		us_scorer_free(sc);
		sc = NULL;
		free(off);
		free(items);
		free(ids);
	}
	us_model_free(m);
}

/*
 * The screen must never change the answer: near-ties (equal rows, biases one ulp apart),
 * one dominant row, zero rows, all-equal rows, and a model it must refuse (a NaN weight).
 */
static void
test_topk_screen(void)
{
	for (int variant = 0; variant < 6; variant++)
	{
		fixture_opts o;
		us_model   *m = NULL;
		us_scorer  *sc = NULL;
		us_rng		rng;
		int32_t		V,
					H,
					O;

		fixture_default(&o, US_TASK_NEXT_ITEM);
		o.n_vocab = 3000;
		o.H = variant == 5 ? 13 : 24;	/* 13: a partial group of 4 hidden units */
		o.tie = variant == 4;
		if (o.tie)
			o.H = o.E;
		o.recent = 1;
		CHECK_OK(fixture_model(&o, 700 + variant, &m));
		if (!m)
			continue;
		V = m->cfg.n_items;
		H = m->cfg.hidden_dim;
		O = m->cfg.n_outputs;
		us_rng_seed(&rng, 800 + variant);
		if (!o.tie)
		{
			float	   *w = m->p.out_w;	/* (H, O): column r is row r's weights */

			for (int32_t r = 3; r < O; r++)
				switch (variant)
				{
					case 0:		/* pairs of equal rows: exact ties everywhere */
						if (r % 2)
						{
							for (int32_t j = 0; j < H; j++)
								w[(size_t) j * O + r] = w[(size_t) j * O + r - 1];
							m->p.out_b[r] = m->p.out_b[r - 1];
						}
						break;
					case 1:		/* same rows, biases one ulp apart */
						for (int32_t j = 0; j < H; j++)
							w[(size_t) j * O + r] = w[(size_t) j * O + 2];
						m->p.out_b[r] = nextafterf(m->p.out_b[2], (r % 3) ? INFINITY : -INFINITY);
						break;
					case 2:		/* one dominant row, a third of the rows zero */
						if (r == 1234)
							for (int32_t j = 0; j < H; j++)
								w[(size_t) j * O + r] *= 1e6f;
						else if (r % 3 == 0)
						{
							for (int32_t j = 0; j < H; j++)
								w[(size_t) j * O + r] = 0.0f;
							m->p.out_b[r] = 0.0f;
						}
						break;
					case 3:		/* wide magnitude range across rows */
						for (int32_t j = 0; j < H; j++)
							w[(size_t) j * O + r] *= powf(10.0f, (float) (r % 9) - 4.0f);
						break;
					default:
						break;
				}
		}
		CHECK_OK(us_scorer_create(m, SIZE_MAX, us_malloc_allocator(), &sc));
		if (sc)
		{
			CHECK(us_scorer_is_screened(sc), "screen built (variant %d)", variant);
			for (int t = 0; t < 16; t++)
			{
				seqbuf		s;
				int			k = t % 4 == 0 ? 1 : t % 4 == 1 ? 10 : t % 4 == 2 ? 100 : 2999;

				random_seq(&s, &m->cfg, (int) us_rng_below(&rng, 40), &rng);
				check_topk(sc, m, &s.ev, k, t & 1);
			}
		}
		us_scorer_free(sc);
		sc = NULL;
		/*
		 * a non-finite weight (only a model built in memory can hold one: the decoder refuses
		 * it): no screen, and forward and top-k report US_ENONFINITE, never a NaN score
		 */
		if (!o.tie)
		{
			seqbuf		s;
			float	   *logits = malloc((size_t) V * 4);
			int32_t		rows[10];
			float		scores[10];
			int32_t		nf = -1;

			m->p.out_w[(size_t) 2 * O + 77] = NAN;
			CHECK_OK(us_scorer_create(m, SIZE_MAX, us_malloc_allocator(), &sc));
			if (sc)
			{
				CHECK(!us_scorer_is_screened(sc), "no screen over a NaN weight");
				random_seq(&s, &m->cfg, 9, &rng);
				CHECK(us_scorer_forward(sc, &s.ev, logits, NULL) == US_ENONFINITE,
					  "forward over a NaN weight: US_ENONFINITE");
				CHECK(us_scorer_topk(sc, &s.ev, 10, 0, rows, scores, &nf) == US_ENONFINITE && nf == 0,
					  "top-k over a NaN weight: US_ENONFINITE, no rows");
			}
			us_scorer_free(sc);
			free(logits);
		}
		us_model_free(m);
	}
}

/*
 * sasrec models: the scorer's single-sequence encoder equals us_model_predict (the batched
 * training code) for every task, with and without a budget, over empty, short, full and
 * truncated sequences; next_item top-k equals the full sort of the forward logits.
 */
static void
test_sasrec(void)
{
	for (int v = 0; v < 10; v++)
	{
		fixture_opts o;
		us_model   *m = NULL;
		us_scorer  *sc[2] = {NULL, NULL};
		us_rng		rng;
		int			lens[5],
					O,
					D;

		fixture_variant_sasrec(&o, v);
		o.heads = v % 2 ? 4 : 2;
		if (v % 3 == 0)
			o.n_vocab = 300;
		CHECK_OK(fixture_model(&o, 4000 + v, &m));
		if (!m)
			continue;
		O = m->cfg.n_outputs;
		D = us_model_feature_dim(&m->cfg);
		CHECK(D == m->cfg.embed_dim && us_scorer_fold_bytes(&m->cfg) == 0, "sasrec: D = E, no folding");
		CHECK_OK(us_scorer_create(m, SIZE_MAX, us_malloc_allocator(), &sc[0]));
		CHECK_OK(us_scorer_create(m, 0, us_malloc_allocator(), &sc[1]));
		if (sc[0] && m->cfg.task == US_TASK_NEXT_ITEM)
			CHECK(us_scorer_is_screened(sc[0]) && !us_scorer_is_folded(sc[0]),
				  "sasrec next_item: screened, not folded");
		us_rng_seed(&rng, 77 + (uint64_t) v);
		lens[0] = 0;
		lens[1] = 1;
		lens[2] = 3;
		lens[3] = m->cfg.max_len;
		lens[4] = m->cfg.max_len + 5;
		for (int li = 0; li < 5; li++)
			for (int k = 0; k < 2 && sc[k]; k++)
			{
				seqbuf		s;
				float	   *out = malloc(O * 4),
						   *feat = malloc(D * 4),
						   *op = malloc(O * 4),
						   *fp = malloc(D * 4);
				int64_t		offs[2];
				int32_t		sid = 0;
				us_dataset	ds;

				random_seq(&s, &m->cfg, lens[li], &rng);
				offs[0] = 0;
				offs[1] = s.ev.n;
				memset(&ds, 0, sizeof(ds));
				ds.n_seqs = 1;
				ds.offsets = offs;
				ds.items = s.items;
				ds.behaviors = s.ev.behaviors;
				ds.gaps = s.ev.gaps;
				CHECK_OK(us_scorer_forward(sc[k], &s.ev, out, feat));
				CHECK_OK(us_model_predict(m, &ds, &sid, 1, op, fp, NULL, NULL));
				CHECK(rel_err_ff(out, op, O) <= 1e-5 && rel_err_ff(feat, fp, D) <= 1e-5,
					  "sasrec scorer = us_model_predict (task %d, n %d, budget %d): out %.2g feat %.2g",
					  o.task, s.ev.n, k, rel_err_ff(out, op, O), rel_err_ff(feat, fp, D));
				if (m->cfg.task == US_TASK_NEXT_ITEM)
				{
					int32_t		rows[5],
								nf = 0,
								all[4096];
					float		scores[5];
					int			same = 1,
								n = 0;

					CHECK_OK(us_scorer_topk(sc[k], &s.ev, 5, 0, rows, scores, &nf));
					for (int32_t r = 2; r < O; r++)
						all[n++] = r;
					cmp_logits = out;
					qsort(all, n, sizeof(int32_t), cmp_rows);
					for (int j = 0; j < nf; j++)
						same &= rows[j] == all[j] && scores[j] == out[all[j]];
					CHECK(nf == 5 && same, "sasrec top-5 = sort of the logits (n %d, budget %d)",
						  s.ev.n, k);
				}
				free(out);
				free(feat);
				free(op);
				free(fp);
			}
		us_scorer_free(sc[0]);
		us_scorer_free(sc[1]);
		us_model_free(m);
	}
}

/*
 * The run-time check behind "a non-finite score is an error": a model built in memory with
 * weights beyond US_MAX_ABS_WEIGHT (the decoder refuses such bytes) overflows; forward must
 * say so for the output and for the features, for every task.
 */
static void
test_nonfinite_scores(void)
{
	static const int tasks[] = {US_TASK_BINARY, US_TASK_MULTICLASS, US_TASK_REGRESSION,
	US_TASK_NEXT_ITEM, US_TASK_NEXT_BEHAVIOR};

	for (size_t t = 0; t < sizeof(tasks) / sizeof(tasks[0]); t++)
	{
		fixture_opts o;
		us_model   *m = NULL;
		us_scorer  *sc = NULL;
		us_rng		rng;
		seqbuf		s;
		float	   *out,
				   *feat;

		fixture_default(&o, tasks[t]);
		CHECK_OK(fixture_model(&o, 900 + t, &m));
		if (!m)
			continue;
		CHECK(us_model_check_weights(m) == US_OK, "task %d: fixture weights within the bound", tasks[t]);
		/* every activation overflows to +inf; output rows of both signs then give inf - inf */
		for (size_t i = 0; i < m->n_params; i++)
			m->params_block[i] = 3.4e38f;
		for (int32_t i = 0; i < m->cfg.hidden_dim * m->cfg.n_outputs; i++)
			m->p.out_w[i] = i % 2 ? -3.4e38f : 3.4e38f;
		CHECK(us_model_check_weights(m) == US_ERANGE, "task %d: 3.4e38 weights are US_ERANGE", tasks[t]);
		out = malloc((size_t) m->cfg.n_outputs * 4);
		feat = malloc((size_t) us_model_feature_dim(&m->cfg) * 4);
		us_rng_seed(&rng, 77 + t);
		random_seq(&s, &m->cfg, 7, &rng);
		CHECK_OK(us_scorer_create(m, SIZE_MAX, us_malloc_allocator(), &sc));
		if (sc)
		{
			CHECK(us_scorer_forward(sc, &s.ev, out, feat) == US_ENONFINITE,
				  "task %d: forward with overflowing weights is US_ENONFINITE", tasks[t]);
			CHECK(us_scorer_forward(sc, &s.ev, NULL, feat) == US_ENONFINITE,
				  "task %d: features alone are US_ENONFINITE too", tasks[t]);
		}
		us_scorer_free(sc);
		free(out);
		free(feat);
		us_model_free(m);
	}
}

/*
 * Every convolution kernel body gives the portable body's results bit for bit: filter counts
 * that fill the AVX-512 (128, 64, 16), AVX2 (64, 32, 8) and portable (32, 8, 1) blocks and
 * their remainders, one to three row sources (behaviours, gaps), folded, partly folded and
 * direct scorers, sequences longer than max_len and than the direct path's chunk.
 */
static void
test_kernel_paths(unsigned have)
{
	static const int filters[] = {1, 8, 13, 40, 64, 100, 128, 200};
	unsigned	sets[2] = {have & ~US_CPU_AVX512, have};	/* then portable */

	for (int v = 0; v < 8; v++)
	{
		fixture_opts o;
		us_model   *m = NULL;
		us_rng		rng;
		int			D,
					O;
		int			n_cmp = 0,
					same = 1;

		fixture_variant(&o, 5 * (v % 4) + (v < 4 ? 0 : 1));
		o.F = filters[v];
		o.E = 8;
		o.H = 8;
		if (o.tie)
			o.H = o.E;
		o.n_vocab = 300;
		o.max_len = v % 2 ? 140 : 30;
		o.n_widths = 3;
		o.widths[0] = 1;
		o.widths[1] = 3;
		o.widths[2] = 5;
		o.recent = v % 3;
		CHECK_OK(fixture_model(&o, 4000 + v, &m));
		if (!m)
			continue;
		D = us_model_feature_dim(&m->cfg);
		O = m->cfg.n_outputs;
		for (int b = 0; b < 3; b++)
		{
			size_t		budget = b == 0 ? SIZE_MAX : b == 1 ? 0 :
				us_scorer_screen_bytes(&m->cfg) + us_scorer_fold_bytes(&m->cfg) / 2;
			us_scorer  *sc = NULL;

			CHECK_OK(us_scorer_create(m, budget, us_malloc_allocator(), &sc));
			us_rng_seed(&rng, 77 + v);
			for (int t = 0; t < 6 && sc; t++)
			{
				seqbuf		sq;
				float		out[3][400],
							feat[3][3 * 200 + 8 * 2];

				random_seq(&sq, &m->cfg, t == 0 ? 0 : t == 1 ? 1 : (int) us_rng_below(&rng, o.max_len + 20), &rng);
				/* widest first, so no body can lean on what another left in the scratch */
				for (int i = 2; i >= 0; i--)
				{
					us_cpu_restrict(i ? sets[i - 1] : 0);
					CHECK_OK(us_scorer_forward(sc, &sq.ev, out[i], feat[i]));
				}
				us_cpu_restrict(~0u);
				for (int i = 1; i < 3; i++)
					same &= memcmp(out[0], out[i], sizeof(float) * O) == 0 &&
						memcmp(feat[0], feat[i], sizeof(float) * D) == 0;
				n_cmp++;
			}
			us_scorer_free(sc);
		}
		CHECK(same && n_cmp == 18, "conv kernels (cpu %#x) = portable, bit for bit: F %d, task %d, "
			  "behaviours %d, gaps %d (%d sequences)", have, o.F, o.task, o.behaviors, o.gaps, n_cmp);
		us_model_free(m);
	}
}

/* the forward and top-k tests on one instruction set */
static void
test_all(void)
{
	int			use_predict = 1;

	for (int v = 0; v < FIXTURE_N_VARIANTS; v++)
	{
		fixture_opts o;

		fixture_variant(&o, v);
		if (v % 2)
			o.n_vocab = 300;	/* enough rows that folding only the hottest pays */
		test_forward(&o, 1000 + v, use_predict);
	}
	/* filter counts that are not multiples of 8, wider filters, longer max_len */
	for (int v = 0; v < (unit_quick() ? 3 : 10); v++)
	{
		fixture_opts o;

		fixture_variant(&o, v * 4 + 1);
		o.F = 13 + v;
		o.E = 5 + 3 * v;
		o.H = 11;
		if (o.tie)
			o.H = o.E;
		o.n_widths = 3;
		o.widths[0] = 1;
		o.widths[1] = 3;
		o.widths[2] = 7;
		o.max_len = 20;
		o.recent = v % 3;
		test_forward(&o, 2000 + v, use_predict);
	}
	/* long sequences: the direct path's GEMM chunks of 64 windows, partial last chunk */
	for (int v = 0; v < 2; v++)
	{
		fixture_opts o;

		fixture_variant(&o, v * 5 + 2);
		o.max_len = v ? 200 : 130;
		o.n_widths = 2;
		o.widths[0] = 2;
		o.widths[1] = 5;
		test_forward(&o, 3000 + v, use_predict);
	}
	CHECK(n_partial_tested >= 10, "partly folded scorers compared: %d", n_partial_tested);
	test_topk();
	test_topk_screen();
}

int
main(void)
{
	/* every test on every instruction set this CPU has, widest first, then portable */
	unsigned	have = us_cpu_features(),
				sets[3] = {have, have & ~US_CPU_AVX512, 0};
	int			n_sets = 0;

	for (int i = 0; i < 3; i++)
	{
		if (i > 0 && sets[i] == sets[i - 1])
			continue;
		us_cpu_restrict(sets[i]);
		CHECK(us_cpu_features() == sets[i], "cpu features restricted to %#x", sets[i]);
		test_all();
		n_sets++;
	}
	us_cpu_restrict(~0u);
	CHECK(n_sets >= 1 + ((have & US_CPU_AVX2) != 0), "tests on %d instruction sets (cpu %#x)",
		  n_sets, have);
	test_kernel_paths(have);
	/* the chunk bounds are plain C: once, on the widest instruction set (the screen's kernels
	 * run on every set in test_topk_screen) */
	test_topk_skip();
	test_sasrec();
	test_nonfinite_scores();
	return unit_finish("test_scorer");
}
