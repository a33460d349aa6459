/*
 * test_gradcheck.c: finite-difference checks of the analytic gradient (the trainer's backward
 * code, through us_model_loss_and_grad) for every head, with behaviour / gap embeddings on and
 * off, recent window, several width sets, padding events, sequences shorter than the widest
 * filter and truncation to max_len; both conv backward paths (sparse and dense). Also checks
 * that the one-pass prefix computation equals scoring each prefix as its own sequence, and that
 * a trainer with n_threads slices gives the same loss and gradient (bit-identical with one
 * thread, within float tolerance with 2, 3 and more threads than sequences).
 */
#include <math.h>
#include <string.h>

#include "userseq/us_model.h"
#include "userseq/us_rng.h"
#include "../../src/core/us_internal.h"
#include "unit.h"

typedef struct gc_case
{
	const char *name;
	us_task		task;
	int			n_widths;
	int			widths[3];
	int			beh;
	int			gap;
	int			R;
	int			tied;
	int			max_ex;
	float		pos_weight;
	int			weights;
	float		embed_dropout;	/* one fixed mask (us_model_loss_and_grad) */
	int			sasrec;			/* self-attention encoder (2 blocks, 2 heads, E = 6) */
} gc_case;

#define NSEQ 7
static const int seq_len[NSEQ] = {0, 1, 2, 4, 7, 11, 3};

typedef struct gc_data
{
	int64_t		off[NSEQ + 1];
	int32_t		items[64],
				beh[64],
				gap[64],
				classes[NSEQ];
	float		targets[NSEQ],
				weights[NSEQ];
	us_dataset	ds;
} gc_data;

static void
make_data(gc_data *d, const us_model_config *c, const gc_case *k, us_rng *rng)
{
	int64_t		t = 0;

	for (int s = 0; s < NSEQ; s++)
	{
		d->off[s] = t;
		for (int i = 0; i < seq_len[s]; i++, t++)
		{
			/* some padding (row 0) and OOV (row 1) events */
			d->items[t] = (int32_t) us_rng_below(rng, (uint64_t) c->n_items);
			d->beh[t] = c->n_behaviors ? (int32_t) us_rng_below(rng, (uint64_t) c->n_behaviors) : 0;
			d->gap[t] = c->n_gap_buckets ? (int32_t) us_rng_below(rng, (uint64_t) c->n_gap_buckets) : 0;
		}
		d->targets[s] = k->task == US_TASK_REGRESSION ? (float) us_rng_normal(rng)
			: (float) (s % 2);
		d->classes[s] = (int32_t) us_rng_below(rng, (uint64_t) c->n_outputs);
		d->weights[s] = 0.5f + (float) us_rng_uniform(rng);
	}
	d->off[NSEQ] = t;
	memset(&d->ds, 0, sizeof d->ds);
	d->ds.n_seqs = NSEQ;
	d->ds.offsets = d->off;
	d->ds.items = d->items;
	d->ds.behaviors = k->beh ? d->beh : NULL;
	d->ds.gaps = k->gap ? d->gap : NULL;
	d->ds.targets = d->targets;
	d->ds.classes = d->classes;
	d->ds.weights = k->weights ? d->weights : NULL;
}

static us_model *
make_model(const gc_case *k, us_model_config *c)
{
	us_vocab	v;
	int64_t		ids[5] = {10, 20, 30, 40, 50};
	char	   *beh[3] = {"a", "b", "c"};
	char	   *cls[4] = {"w", "x", "y", "z"};
	us_model   *m = NULL;

	us_model_config_default(c, k->task);
	/* N(0, 1) embeddings for every task: with tiny models and small embeddings some pooled
	 * units start dead, which would leave tensors without gradient to check */
	c->embed_init_std = 1.0f;
	memset(&v, 0, sizeof v);
	v.n_items = 5;
	v.item_ids = ids;
	c->n_items = 7;
	c->embed_dim = 5;
	c->n_filters = 3;
	if (k->sasrec)
	{
		c->architecture = US_ARCH_SASREC;
		c->embed_dim = 6;
		c->n_blocks = 2;
		c->n_heads = 2;
		c->n_filters = 0;
	}
	c->hidden_dim = k->tied ? c->embed_dim : 4;
	c->max_len = 8;
	c->dropout = 0.0f;
	c->n_widths = k->n_widths;
	memset(c->widths, 0, sizeof c->widths);
	for (int i = 0; i < k->n_widths; i++)
		c->widths[i] = k->widths[i];
	c->recent_window = k->R;
	c->tie_output = k->tied;
	c->pos_weight = k->pos_weight;
	c->embed_dropout = k->embed_dropout;
	if (k->beh || k->task == US_TASK_NEXT_BEHAVIOR)
	{
		v.n_behaviors = 3;
		v.behaviors = beh;
		c->n_behaviors = 5;
	}
	if (k->gap)
		c->n_gap_buckets = 6;
	switch (k->task)
	{
		case US_TASK_MULTICLASS:
			c->n_outputs = 4;
			v.n_classes = 4;
			v.classes = cls;
			break;
		case US_TASK_NEXT_ITEM:
			c->n_outputs = c->n_items;
			break;
		case US_TASK_NEXT_BEHAVIOR:
			c->n_outputs = c->n_behaviors;
			break;
		default:
			c->n_outputs = 1;
	}
	if (us_model_create(c, &v, 99, us_malloc_allocator(), &m) != US_OK)
		return NULL;
	return m;
}

static const char *
tensor_name(const us_model *m, size_t i, size_t *start, size_t *len)
{
	static char name[32];
	const us_params *p = &m->p;
	const us_model_config *c = &m->cfg;
	size_t		E = (size_t) c->embed_dim;
	struct
	{
		const char *n;
		const float *t;
		size_t		len;
	}			ts[32];
	int			nt = 0;

	ts[nt].n = "item_emb"; ts[nt].t = p->item_emb; ts[nt++].len = (size_t) c->n_items * E;
	if (p->behavior_emb)
	{
		ts[nt].n = "behavior_emb"; ts[nt].t = p->behavior_emb; ts[nt++].len = (size_t) c->n_behaviors * E;
	}
	if (p->gap_emb)
	{
		ts[nt].n = "gap_emb"; ts[nt].t = p->gap_emb; ts[nt++].len = (size_t) c->n_gap_buckets * E;
	}
	for (int w = 0; w < c->n_widths; w++)
	{
		ts[nt].n = "conv_w"; ts[nt].t = p->conv_w[w]; ts[nt++].len = (size_t) c->widths[w] * E * c->n_filters;
		ts[nt].n = "conv_b"; ts[nt].t = p->conv_b[w]; ts[nt++].len = (size_t) c->n_filters;
	}
	if (p->encoder)
	{
		/* positions, then the blocks and the final norm */
		size_t		npos = (size_t) c->max_len * E;

		ts[nt].n = "positions"; ts[nt].t = p->encoder; ts[nt++].len = npos;
		ts[nt].n = "attention blocks"; ts[nt].t = p->encoder + npos;
		ts[nt++].len = (size_t) (p->dense_w - p->encoder) - npos;
	}
	ts[nt].n = "dense_w"; ts[nt].t = p->dense_w; ts[nt++].len = (size_t) us_model_feature_dim(c) * c->hidden_dim;
	ts[nt].n = "dense_b"; ts[nt].t = p->dense_b; ts[nt++].len = (size_t) c->hidden_dim;
	if (p->out_w)
	{
		ts[nt].n = "out_w"; ts[nt].t = p->out_w; ts[nt++].len = (size_t) c->hidden_dim * c->n_outputs;
	}
	ts[nt].n = "out_b"; ts[nt].t = p->out_b; ts[nt++].len = (size_t) c->n_outputs;
	if (i >= (size_t) nt)
		return NULL;
	*start = (size_t) (ts[i].t - m->params_block);
	*len = ts[i].len;
	snprintf(name, sizeof name, "%s", ts[i].n);
	return name;
}

/* central difference of the loss in parameter i; left / right one-sided ones if asked */
static double
numeric(us_model *m, gc_data *d, const int32_t *ids, const gc_case *k, int mode, float *tmp,
		size_t i, double eps, double *left, double *right)
{
	float		save = m->params_block[i];
	double		lp = 0,
				lm = 0,
				l0 = 0;
	float		hi = save + (float) eps,
				lo = save - (float) eps;

	m->params_block[i] = hi;
	us_model_loss_and_grad(m, &d->ds, ids, NSEQ, k->max_ex, mode, tmp, &lp);
	m->params_block[i] = lo;
	us_model_loss_and_grad(m, &d->ds, ids, NSEQ, k->max_ex, mode, tmp, &lm);
	m->params_block[i] = save;
	if (left && right)
	{
		us_model_loss_and_grad(m, &d->ds, ids, NSEQ, k->max_ex, mode, tmp, &l0);
		*left = (l0 - lm) / ((double) save - (double) lo);
		*right = (lp - l0) / ((double) hi - (double) save);
	}
	/* divide by the step actually taken in float */
	return (lp - lm) / ((double) hi - (double) lo);
}

/* relative tolerance 2e-2, absolute floor for float noise in the loss */
static int
close_enough(double ana, double num, double extra_abs)
{
	return fabs(num - ana) <= 2e-2 * fmax(fabs(num), fabs(ana)) + 2e-4 + extra_abs;
}

static void
run_case(const gc_case *k, us_rng *rng)
{
	us_model_config c;
	us_model   *m = make_model(k, &c);
	gc_data		d;
	int32_t		ids[NSEQ] = {0, 1, 2, 3, 4, 5, 6};
	float	   *g1,
			   *g2,
			   *tmp;
	double		loss1 = 0,
				loss2 = 0;
	int			modes[2] = {US_CONV_BWD_SPARSE, US_CONV_BWD_DENSE};

	CHECK(m != NULL, "%s: model created", k->name);
	if (m == NULL)
		return;
	make_data(&d, &c, k, rng);
	g1 = calloc(m->n_params, sizeof(float));
	g2 = calloc(m->n_params, sizeof(float));
	tmp = calloc(m->n_params, sizeof(float));
	CHECK_OK(us_model_loss_and_grad(m, &d.ds, ids, NSEQ, k->max_ex, modes[0], g1, &loss1));
	CHECK_OK(us_model_loss_and_grad(m, &d.ds, ids, NSEQ, k->max_ex, modes[1], g2, &loss2));
	CHECK(isfinite(loss1) && loss1 > 0 && loss1 == loss2, "%s: loss %g %g", k->name, loss1, loss2);
	{
		double		dn = 0,
					nn = 0;

		for (size_t i = 0; i < m->n_params; i++)
		{
			dn += (double) (g1[i] - g2[i]) * (g1[i] - g2[i]);
			nn += (double) g1[i] * g1[i];
		}
		CHECK(sqrt(dn) <= 1e-5 * sqrt(nn) + 1e-7, "%s: sparse and dense conv backward agree (%g vs %g)",
			  k->name, sqrt(dn), sqrt(nn));
	}
	for (int mode = 0; mode < 2; mode++)
	{
		const float *g = mode == 0 ? g1 : g2;
		size_t		start,
					len;
		const char *tn;

		for (size_t ti = 0; (tn = tensor_name(m, ti, &start, &len)) != NULL; ti++)
		{
			int			bad = 0,
						tried = 0,
						nonzero = 0;
			double		worst = 0;
			int			is_emb = strstr(tn, "_emb") != NULL;

			for (int trial = 0; trial < (unit_quick() ? 8 : 40); trial++)
			{
				size_t		i = start + (size_t) us_rng_below(rng, len);
				double		num,
							ana = g[i],
							eps = 1e-3;

				if (is_emb && i - start < (size_t) c.embed_dim)
					continue;	/* padding row: not a parameter */
				num = numeric(m, &d, ids, k, modes[mode], tmp, i, eps, NULL, NULL);
				tried++;
				nonzero += ana != 0.0;
				if (!close_enough(ana, num, 0.0))
				{
					/*
					 * A relu / max kink inside the step: with a smaller step the kink is on one
					 * side only, so one one-sided difference is smooth. A wrong gradient
					 * matches none of them.
					 */
					double		left = 0,
								right = 0;
					double		num2 = numeric(m, &d, ids, k, modes[mode], tmp, i, eps / 8, &left, &right);

					if (close_enough(ana, left, 1e-3) || close_enough(ana, right, 1e-3))
						num2 = ana;
					if (!close_enough(ana, num2, 1e-3))
					{
						double		err = fabs(num2 - ana) / (fabs(num2) + fabs(ana) + 1e-6);

						bad++;
						if (err > worst)
							worst = err;
						if (bad <= 2)
							printf("  %s mode %d %s[%zu]: analytic %.6g numeric %.6g / %.6g\n", k->name,
								   mode, tn, i - start, ana, num, num2);
					}
				}
			}
			CHECK(bad == 0 && tried > 0, "%s (conv bwd %s): %s gradient matches finite differences "
				  "(%d of %d bad, worst rel %.3g)", k->name, mode ? "dense" : "sparse", tn, bad, tried,
				  worst);
			if (!is_emb || strcmp(tn, "item_emb") == 0)
				CHECK(nonzero > 0, "%s: %s has some nonzero gradient", k->name, tn);
		}
	}
	free(g1);
	free(g2);
	free(tmp);
	us_model_free(m);
}

/* the one-pass prefix loss equals scoring every prefix as its own sequence */
static void
prefix_equivalence(us_task task, int R, int sasrec, us_rng *rng)
{
	gc_case		k = {"prefix", task, sasrec ? 0 : 3, {1, 3, 4}, 1, 1, sasrec ? 0 : R, 0, 0, 1.0f, 1, 0, sasrec};
	us_model_config c;
	us_model   *m = make_model(&k, &c);
	gc_data		d;
	int32_t		ids[NSEQ] = {0, 1, 2, 3, 4, 5, 6};
	float	   *g = NULL;
	double		loss = 0,
				sum = 0;
	int			n_ex = 0;

	if (m == NULL)
	{
		CHECK(0, "prefix model");
		return;
	}
	make_data(&d, &c, &k, rng);
	g = calloc(m->n_params, sizeof(float));
	CHECK_OK(us_model_loss_and_grad(m, &d.ds, ids, NSEQ, 0, US_CONV_BWD_AUTO, g, &loss));
	for (int s = 0; s < NSEQ; s++)
	{
		int64_t		end = d.off[s + 1],
					start = end - (end - d.off[s] > c.max_len ? c.max_len : end - d.off[s]);

		for (int64_t t = start + 1; t < end; t++)
		{
			/* prefix events start..t-1 as its own dataset, target row of event t */
			int64_t		off2[2] = {0, t - start};
			int32_t		cls = task == US_TASK_NEXT_ITEM ? d.items[t] : d.beh[t];
			float		w = d.weights[s];
			us_dataset	p1 = {1, off2, d.items + start, d.beh + start, d.gap + start, NULL, &cls, &w};
			int32_t		id0 = 0;
			float	   *out = malloc(sizeof(float) * c.n_outputs);
			double		l = 0;

			CHECK_OK(us_model_predict(m, &p1, &id0, 1, out, NULL, &l, NULL));
			sum += l;
			n_ex++;
			free(out);
		}
	}
	CHECK(n_ex > 0 && fabs(sum / n_ex - loss) < 1e-5 * fabs(loss) + 1e-6,
		  "task %d R=%d sasrec=%d: prefix loss %.8g equals per-prefix scoring %.8g (%d prefixes)",
		  task, R, sasrec, loss, sum / n_ex, n_ex);
	free(g);
	us_model_free(m);
}

/* the trainer's threaded step: loss and reduced gradient as one thread computes them */
static void
thread_equivalence(const gc_case *k, us_rng *rng)
{
	us_model_config c;
	us_model   *m = make_model(k, &c);
	gc_data		d;
	int32_t		ids[NSEQ] = {6, 0, 1, 2, 3, 4, 5};
	int			threads[] = {1, 2, 3, 9};
	float	   *ref,
			   *g;
	double		lref = 0;

	if (m == NULL)
	{
		CHECK(0, "%s: model", k->name);
		return;
	}
	make_data(&d, &c, k, rng);
	ref = calloc(m->n_params, sizeof(float));
	g = calloc(m->n_params, sizeof(float));
	CHECK_OK(us_model_loss_and_grad(m, &d.ds, ids, NSEQ, k->max_ex, US_CONV_BWD_AUTO, ref, &lref));
	for (size_t t = 0; t < sizeof(threads) / sizeof(threads[0]); t++)
	{
		us_train_config tc;
		us_trainer *tr = NULL;
		double		loss = -1,
					worst = 0,
					gmax = 0;

		us_train_config_default(&tc, k->task);
		tc.n_threads = threads[t];
		tc.max_examples_per_seq = k->max_ex;
		CHECK_OK(us_trainer_create(m, &tc, us_malloc_allocator(), &tr));
		if (tr == NULL)
			continue;
		/* twice: the second call sees the buffers the first one left (must be zero again) */
		for (int rep = 0; rep < 2; rep++)
		{
			memset(g, 0xff, m->n_params * sizeof(float));
			CHECK_OK(us_trainer_batch_grad(tr, &d.ds, ids, NSEQ, g, &loss));
		}
		for (size_t i = 0; i < m->n_params; i++)
		{
			worst = fmax(worst, fabs((double) g[i] - ref[i]) / (1e-3 + fabs(ref[i])));
			gmax = fmax(gmax, fabs(ref[i]));
		}
		if (threads[t] == 1)
			CHECK(loss == lref && memcmp(g, ref, m->n_params * sizeof(float)) == 0,
				  "%s: 1-thread trainer gradient is bit-identical to us_model_loss_and_grad", k->name);
		else
			CHECK(fabs(loss - lref) <= 1e-6 * fabs(lref) + 1e-9 && worst < 1e-4 && gmax > 0,
				  "%s: %d threads: loss %.9g vs %.9g, gradient worst rel diff %.3g", k->name,
				  threads[t], loss, lref, worst);
		us_trainer_free(tr);
	}
	free(ref);
	free(g);
	us_model_free(m);
}

int
main(void)
{
	us_rng		rng;
	gc_case		cases[] = {
		{"binary pw+weights beh gap R2 w345", US_TASK_BINARY, 3, {3, 4, 5}, 1, 1, 2, 0, 0, 2.5f, 1, 0, 0},
		{"binary plain w1", US_TASK_BINARY, 1, {1}, 0, 0, 0, 0, 0, 1.0f, 0, 0, 0},
		{"binary gap w23", US_TASK_BINARY, 2, {2, 3}, 0, 1, 0, 0, 0, 0.7f, 1, 0, 0},
		{"multiclass beh R1 w23", US_TASK_MULTICLASS, 2, {2, 3}, 1, 0, 1, 0, 0, 1.0f, 1, 0, 0},
		{"multiclass w345", US_TASK_MULTICLASS, 3, {3, 4, 5}, 0, 0, 0, 0, 0, 1.0f, 0, 0, 0},
		{"regression gap R3 w345", US_TASK_REGRESSION, 3, {3, 4, 5}, 0, 1, 3, 0, 0, 1.0f, 1, 0, 0},
		{"regression w1 beh", US_TASK_REGRESSION, 1, {1}, 1, 0, 0, 0, 0, 1.0f, 0, 0, 0},
		{"next_item beh gap R2 w23", US_TASK_NEXT_ITEM, 2, {2, 3}, 1, 1, 2, 0, 0, 1.0f, 1, 0, 0},
		{"next_item w345 max_ex 2", US_TASK_NEXT_ITEM, 3, {3, 4, 5}, 0, 0, 0, 0, 2, 1.0f, 0, 0, 0},
		{"next_item tied w1 R1", US_TASK_NEXT_ITEM, 1, {1}, 0, 1, 1, 1, 0, 1.0f, 1, 0, 0},
		{"next_item tied w345", US_TASK_NEXT_ITEM, 3, {3, 4, 5}, 1, 0, 0, 1, 0, 1.0f, 0, 0, 0},
		{"next_item embed dropout beh R2 w23", US_TASK_NEXT_ITEM, 2, {2, 3}, 1, 0, 2, 0, 0, 1.0f, 0, 0.4f, 0},
		{"next_item tied embed dropout w1 R1", US_TASK_NEXT_ITEM, 1, {1}, 0, 1, 1, 1, 0, 1.0f, 1, 0.4f, 0},
		{"next_behavior gap R1 w345", US_TASK_NEXT_BEHAVIOR, 3, {3, 4, 5}, 1, 1, 1, 0, 0, 1.0f, 1, 0, 0},
		{"next_behavior w1", US_TASK_NEXT_BEHAVIOR, 1, {1}, 1, 0, 0, 0, 3, 1.0f, 0, 0, 0},
	};
	static const gc_case sasrec_cases[] = {
		{"sasrec next_item beh gap", US_TASK_NEXT_ITEM, 0, {0}, 1, 1, 0, 0, 0, 1.0f, 1, 0, 1},
		{"sasrec next_item tied max_ex 2", US_TASK_NEXT_ITEM, 0, {0}, 0, 0, 0, 1, 2, 1.0f, 0, 0, 1},
		{"sasrec binary pw gap", US_TASK_BINARY, 0, {0}, 0, 1, 0, 0, 0, 2.5f, 1, 0, 1},
		{"sasrec multiclass beh", US_TASK_MULTICLASS, 0, {0}, 1, 0, 0, 0, 0, 1.0f, 0, 0, 1},
		{"sasrec regression", US_TASK_REGRESSION, 0, {0}, 0, 0, 0, 0, 0, 1.0f, 1, 0, 1},
		{"sasrec next_behavior gap", US_TASK_NEXT_BEHAVIOR, 0, {0}, 1, 1, 0, 0, 0, 1.0f, 1, 0, 1},
	};

	us_rng_seed(&rng, 2024);
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		run_case(&cases[i], &rng);
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		thread_equivalence(&cases[i], &rng);
	prefix_equivalence(US_TASK_NEXT_ITEM, 0, 0, &rng);
	prefix_equivalence(US_TASK_NEXT_ITEM, 2, 0, &rng);
	prefix_equivalence(US_TASK_NEXT_BEHAVIOR, 1, 0, &rng);
	/* the sasrec encoder through the whole model: every head, inputs, tying, truncation */
	for (size_t i = 0; i < sizeof(sasrec_cases) / sizeof(sasrec_cases[0]); i++)
		run_case(&sasrec_cases[i], &rng);
	for (size_t i = 0; i < sizeof(sasrec_cases) / sizeof(sasrec_cases[0]); i++)
		thread_equivalence(&sasrec_cases[i], &rng);
	prefix_equivalence(US_TASK_NEXT_ITEM, 0, 1, &rng);
	prefix_equivalence(US_TASK_NEXT_BEHAVIOR, 0, 1, &rng);
	return unit_finish("test_gradcheck");
}
