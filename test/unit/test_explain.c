/*
 * test_explain.c: attributions and surprise of the core.
 *  - us_model_attribute's f(x) and f(baseline) equal the scorer's outputs;
 *  - gradient x input equals a central finite difference of a naive double forward on the
 *    continuous input vectors (scaling one event's vector), for every task and input option;
 *  - integrated gradients equals finite-difference gradients averaged over a fine midpoint
 *    grid of the path, and completeness (sum = f(x) - f(baseline)) holds within 1% at 32 steps;
 *  - us_scorer_row_logits equals us_scorer_forward's logits bit for bit;
 *  - us_model_surprise equals the per-prefix log-softmax of us_model_predict's outputs.
 */
#include <float.h>
#include <stdint.h>
#include <string.h>

#include "userseq/us_model.h"
#include "userseq/us_rng.h"
#include "unit.h"
#include "model_fixture.h"

/* explained output f of continuous input vectors X (n, E) in double */
static double
ref_f(const us_model *m, const double *x, int n, int target)
{
	const us_model_config *c = &m->cfg;
	const us_params *p = &m->p;
	int			E = c->embed_dim,
				F = c->n_filters,
				H = c->hidden_dim,
				R = c->recent_window,
				O = c->n_outputs;
	int			D = us_model_feature_dim(c);
	double		feat[4096],
				h[512],
				out[512];

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
						v += x[(size_t) (t + j) * E + e] * p->conv_w[w][((size_t) j * E + e) * F + f];
				best = v > best ? v : best;
			}
			feat[w * F + f] = best > 0 ? best : 0;
		}
	}
	for (int i = 0; i < R; i++)
		for (int e = 0; e < E; e++)
			feat[c->n_widths * F + i * E + e] = n - R + i < 0 ? 0.0 : x[(size_t) (n - R + i) * E + e];
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
		return 1.0 / (1.0 + exp(-out[0]));
	if (c->task == US_TASK_MULTICLASS || c->task == US_TASK_NEXT_BEHAVIOR)
	{
		double		mx = out[0],
					s = 0;

		for (int o = 1; o < O; o++)
			mx = out[o] > mx ? out[o] : mx;
		for (int o = 0; o < O; o++)
			s += exp(out[o] - mx);
		return exp(out[target] - mx) / s;
	}
	return c->task == US_TASK_NEXT_ITEM ? out[target] : out[0];
}

/* x_t . grad_t f(a x) by a central difference on event t's block */
static double
ref_xgrad(const us_model *m, const double *x, int n, int target, double a, int t)
{
	int			E = m->cfg.embed_dim;
	double		y[256 * 16];
	double		hh = 1e-4,
				fp,
				fm;

	for (int i = 0; i < n * E; i++)
		y[i] = a * x[i];
	for (int e = 0; e < E; e++)
		y[t * E + e] = a * x[t * E + e] + hh * x[t * E + e];
	fp = ref_f(m, y, n, target);
	for (int e = 0; e < E; e++)
		y[t * E + e] = a * x[t * E + e] - hh * x[t * E + e];
	fm = ref_f(m, y, n, target);
	return (fp - fm) / (2 * hh);
}

static void
input_x(const us_model *m, const us_events *ev, int start, int n, double *x)
{
	const us_model_config *c = &m->cfg;
	int			E = c->embed_dim;

	for (int t = 0; t < n; t++)
		for (int e = 0; e < E; e++)
		{
			int			i = start + t;
			double		v = m->p.item_emb[(size_t) ev->items[i] * E + e];

			if (c->n_behaviors > 0 && ev->behaviors)
				v += m->p.behavior_emb[(size_t) ev->behaviors[i] * E + e];
			if (c->n_gap_buckets > 0 && ev->gaps)
				v += m->p.gap_emb[(size_t) ev->gaps[i] * E + e];
			x[t * E + e] = v;
		}
}

static double
explained(const us_model *m, const float *out, int target)
{
	int			task = m->cfg.task;

	if (task == US_TASK_BINARY || task == US_TASK_REGRESSION)
		return out[0];
	return out[target];
}

static int	fd_checks,
			fd_fail,
			ig_checks,
			ig_fail,
			comp_checks,
			comp_fail;

static void
test_attribution(const fixture_opts *o, uint64_t seed)
{
	us_model   *m = NULL;
	us_scorer  *sc = NULL;
	us_rng		rng;
	int			lens[] = {0, 1, 3, 7, 12, 15};

	CHECK_OK(fixture_model(o, seed, &m));
	if (!m)
		return;
	CHECK_OK(us_scorer_create(m, SIZE_MAX, us_malloc_allocator(), &sc));
	us_rng_seed(&rng, seed * 31 + 7);
	for (size_t li = 0; li < sizeof(lens) / sizeof(lens[0]); li++)
	{
		int			n = lens[li];
		int			kept = n > m->cfg.max_len ? m->cfg.max_len : n;
		int			start = n - kept;
		int32_t		items[32],
					beh[32],
					gap[32],
					zero[32];
		us_events	ev,
					base;
		float		out[64],
					outb[64];
		double		attr[32],
					attr_ig[32],
					fx,
					fb,
					x[32 * 16];
		int			target = 0;

		memset(zero, 0, sizeof zero);
		for (int i = 0; i < n; i++)
		{
			items[i] = (int32_t) us_rng_below(&rng, m->cfg.n_items);
			beh[i] = m->cfg.n_behaviors ? (int32_t) us_rng_below(&rng, m->cfg.n_behaviors) : 0;
			gap[i] = m->cfg.n_gap_buckets ? (int32_t) us_rng_below(&rng, m->cfg.n_gap_buckets) : 0;
		}
		ev.items = items;
		ev.behaviors = m->cfg.n_behaviors ? beh : NULL;
		ev.gaps = m->cfg.n_gap_buckets ? gap : NULL;
		ev.n = n;
		base.items = zero;
		base.behaviors = m->cfg.n_behaviors ? zero : NULL;
		base.gaps = m->cfg.n_gap_buckets ? zero : NULL;
		base.n = kept;
		CHECK_OK(us_scorer_forward(sc, &ev, out, NULL));
		CHECK_OK(us_scorer_forward(sc, &base, outb, NULL));
		if (m->cfg.task == US_TASK_NEXT_ITEM)
		{
			int32_t		rows[3] = {2, m->cfg.n_outputs - 1, 2 + (int32_t) us_rng_below(&rng, m->cfg.n_outputs - 2)};
			float		lg[3];

			target = 2 + (int) us_rng_below(&rng, m->cfg.n_outputs - 2);
			CHECK_OK(us_scorer_row_logits(sc, &ev, rows, 3, lg));
			for (int i = 0; i < 3; i++)
				CHECK(lg[i] == out[rows[i]], "item logit of row %d: %.9g vs forward %.9g", rows[i], lg[i], out[rows[i]]);
		}
		else if (m->cfg.task == US_TASK_MULTICLASS || m->cfg.task == US_TASK_NEXT_BEHAVIOR)
			target = (int) us_rng_below(&rng, m->cfg.n_outputs);

		CHECK_OK(us_model_attribute(m, &ev, target, US_ATTR_GRADIENT_X_INPUT, 0, attr, &fx, &fb));
		CHECK(fabs(fx - explained(m, out, target)) <= 1e-4 * (1 + fabs(fx)),
			  "task %d n %d: f(x) %.7g vs scorer %.7g", o->task, n, fx, explained(m, out, target));
		CHECK(fabs(fb - explained(m, outb, target)) <= 1e-4 * (1 + fabs(fb)),
			  "task %d n %d: f(baseline) %.7g vs scorer %.7g", o->task, n, fb, explained(m, outb, target));
		input_x(m, &ev, start, kept, x);
		for (int t = 0; t < kept; t++)
		{
			double		r = ref_xgrad(m, x, kept, target, 1.0, t);

			fd_checks++;
			if (fabs(r - attr[t]) > 1e-3 * (1 + fabs(r)))
			{
				fd_fail++;
				printf("  gxi task %d n %d t %d: %.7g vs fd %.7g\n", o->task, n, t, attr[t], r);
			}
		}
		/* integrated gradients (8 steps, kinks located) against a 256-point midpoint rule of
		 * finite-difference gradients */
		CHECK_OK(us_model_attribute(m, &ev, target, US_ATTR_INTEGRATED_GRADIENTS, 8, attr_ig, NULL, NULL));
		if (n == 7)
			for (int t = 0; t < kept; t++)
			{
				double		r = 0;

				for (int s = 0; s < 256; s++)
					r += ref_xgrad(m, x, kept, target, (s + 0.5) / 256, t) / 256;
				ig_checks++;
				if (fabs(r - attr_ig[t]) > 2e-3 + 1e-2 * fabs(r))
				{
					ig_fail++;
					printf("  ig task %d n %d t %d: %.7g vs fd %.7g\n", o->task, n, t, attr_ig[t], r);
				}
			}
		/* completeness at 32 steps (the SQL default) */
		if (kept > 0)
		{
			double		sum = 0,
						diff;

			CHECK_OK(us_model_attribute(m, &ev, target, US_ATTR_INTEGRATED_GRADIENTS, 32, attr_ig, &fx, &fb));
			for (int t = 0; t < kept; t++)
				sum += attr_ig[t];
			diff = fx - fb;
			comp_checks++;
			if (fabs(sum - diff) > 0.01 * fabs(diff) + 1e-6)
			{
				comp_fail++;
				printf("  completeness task %d n %d: sum %.7g vs f(x) - f(b) %.7g\n", o->task, n, sum, diff);
			}
		}
	}
	CHECK(us_model_attribute(m, &(us_events) {0}, 0, 99, 8, NULL, NULL, NULL) == US_EINVAL,
		  "unknown method rejected");
	us_scorer_free(sc);
	us_model_free(m);
}

static void
test_surprise(const fixture_opts *o, uint64_t seed)
{
	us_model   *m = NULL;
	us_rng		rng;
	int			n = 15;			/* beyond max_len 12: the window is the last 12 */
	int32_t		items[15],
				beh[15],
				gap[15];
	us_events	ev;
	double		nll[15];
	int32_t		rank[15];
	int			kept,
				start,
				V;

	CHECK_OK(fixture_model(o, seed, &m));
	if (!m)
		return;
	V = m->cfg.n_outputs;
	kept = n > m->cfg.max_len ? m->cfg.max_len : n;
	start = n - kept;
	us_rng_seed(&rng, seed);
	for (int i = 0; i < n; i++)
	{
		items[i] = (int32_t) us_rng_below(&rng, m->cfg.n_items);
		beh[i] = m->cfg.n_behaviors ? (int32_t) us_rng_below(&rng, m->cfg.n_behaviors) : 0;
		gap[i] = m->cfg.n_gap_buckets ? (int32_t) us_rng_below(&rng, m->cfg.n_gap_buckets) : 0;
	}
	ev.items = items;
	ev.behaviors = m->cfg.n_behaviors ? beh : NULL;
	ev.gaps = m->cfg.n_gap_buckets ? gap : NULL;
	ev.n = n;
	CHECK_OK(us_model_surprise(m, &ev, nll, rank));
	/* reference: each prefix of the window as its own sequence through us_model_predict */
	for (int t = 1; t < kept; t++)
	{
		int64_t		off[2] = {0, t};
		us_dataset	d;
		int32_t		id = 0;
		float		out[64];
		int			tg = m->cfg.task == US_TASK_NEXT_ITEM ? items[start + t] : beh[start + t];
		double		ref,
					mx = -1e300,
					s = 0;
		int			higher = 0;

		memset(&d, 0, sizeof d);
		d.n_seqs = 1;
		d.offsets = off;
		d.items = items + start;
		d.behaviors = ev.behaviors ? beh + start : NULL;
		d.gaps = ev.gaps ? gap + start : NULL;
		CHECK_OK(us_model_predict(m, &d, &id, 1, out, NULL, NULL, NULL));
		if (m->cfg.task == US_TASK_NEXT_ITEM)
		{
			for (int v = 0; v < V; v++)
				mx = out[v] > mx ? out[v] : mx;
			for (int v = 0; v < V; v++)
				s += exp(out[v] - mx);
			ref = log(s) - (out[tg] - mx);
		}
		else
			ref = -log(out[tg]);
		for (int v = 2; v < V; v++)
			higher += out[v] >= out[tg];
		CHECK(fabs(ref - nll[t - 1]) <= 1e-4 * (1 + ref), "surprise task %d t %d: nll %.7g vs %.7g",
			  o->task, t, nll[t - 1], ref);
		CHECK(rank[t - 1] == (tg >= 2 ? higher : 0), "surprise task %d t %d: rank %d vs %d",
			  o->task, t, rank[t - 1], tg >= 2 ? higher : 0);
	}
	ev.n = 1;
	CHECK_OK(us_model_surprise(m, &ev, nll, rank));
	us_model_free(m);
}

int
main(void)
{
	fixture_opts o;

	for (int v = 0; v < FIXTURE_N_VARIANTS; v++)
	{
		fixture_variant(&o, v);
		test_attribution(&o, 100 + v);
		if (o.task == US_TASK_NEXT_ITEM || o.task == US_TASK_NEXT_BEHAVIOR)
			test_surprise(&o, 200 + v);
	}
	fixture_default(&o, US_TASK_BINARY);
	{
		us_model   *m = NULL;
		double		a[1];

		CHECK_OK(fixture_model(&o, 5, &m));
		CHECK(us_model_surprise(m, &(us_events) {0}, a, NULL) == US_EINVAL, "surprise needs a next_* model");
		us_model_free(m);
	}
	printf("finite-difference checks: gxi %d (%d off), ig %d (%d off); completeness at 32 steps %d (%d off by > 1%%)\n",
		   fd_checks, fd_fail, ig_checks, ig_fail, comp_checks, comp_fail);
	/* a max-pool argmax or relu switching within the difference step can spoil a few checks */
	CHECK(fd_fail * 50 <= fd_checks, "gradient x input agrees with finite differences");
	CHECK(ig_fail * 50 <= ig_checks, "integrated gradients agrees with finite differences");
	CHECK(comp_fail * 20 <= comp_checks, "completeness within 1%% at 32 steps");
	return unit_finish("test_explain");
}
