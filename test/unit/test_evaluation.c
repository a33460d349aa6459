/*
 * test_evaluation.c: us_evaluation.h without PostgreSQL: argmax ties, the label prior,
 * popularity ranks against brute-force us_rank_of_target, item markov and behaviour
 * prior / markov on hand-counted histories, and us_model_validate of every task against the
 * same figures computed from us_model_predict outputs by hand (also with shuffled ids and a
 * chunk that does not divide the set).
 */
#include <string.h>

#include "userseq/us_evaluation.h"
#include "userseq/us_rng.h"
#include "model_fixture.h"
#include "unit.h"

#define NSEQ	37

static void
test_small(void)
{
	const us_allocator *a = us_malloc_allocator();
	float		f[] = {0.1f, 0.7f, 0.7f, NAN, 0.2f};
	double		d[] = {3.0, -1.0, 3.0};
	float		t[] = {1, 0, 1, 1};
	float		w[] = {1, 2, 0, 1};

	CHECK(us_argmax(f, 5) == 1, "argmax ties go to the lower index");
	CHECK(us_argmax_double(d, 3) == 0, "argmax_double ties go to the lower index");
	CHECK(us_argmax(f, 1) == 0, "argmax of one");
	CHECK(fabs(us_label_mean(t, NULL, 4) - 0.75) < 1e-12, "label mean");
	CHECK(fabs(us_label_mean(t, w, 4) - 0.5) < 1e-12, "weighted label mean");
	CHECK(isnan(us_label_mean(t, w + 2, 1)), "label mean without weight is NaN");

	/* popularity: counts 5, 9, 5, 1 (rows 2..5) */
	{
		int64_t		ids[] = {10, 20, 30, 40};
		uint32_t	counts[] = {5, 9, 5, 1};
		us_vocab	v = {.n_items = 4, .item_ids = ids, .item_counts = counts};
		int32_t		targets[] = {2, 3, 4, 5, 1, 0, 6};
		int64_t		ranks[7];
		float		pop[6];

		us_popularity_scores(&v, 6, pop);
		CHECK(pop[US_ROW_PAD] == 0 && pop[US_ROW_OOV] == 0 && pop[3] == 9, "popularity scores");
		CHECK_OK(us_popularity_ranks(&v, targets, 7, a, ranks));
		for (int i = 0; i < 4; i++)
			CHECK(ranks[i] == us_rank_of_target(pop + US_ROW_FIRST, 4, (size_t) (targets[i] - US_ROW_FIRST), NULL),
				  "popularity rank of row %d agrees with us_rank_of_target", targets[i]);
		CHECK(ranks[0] == 3 && ranks[1] == 1 && ranks[3] == 4, "ties count against the target");
		CHECK(ranks[4] == -1 && ranks[5] == -1 && ranks[6] == -1, "unknown rows have no rank");

		/* markov: histories 2 3 2 3 and 4 1 3: transitions 2->3 twice, 3->2 once (1 breaks) */
		{
			int32_t		h1[] = {2, 3, 2, 3},
						h2[] = {4, 1, 3};
			uint64_t	pairs[8];
			int64_t		np = 0;
			us_item_markov m;
			float		s[6];

			np += us_item_pairs(h1, 4, pairs + np);
			np += us_item_pairs(h2, 3, pairs + np);
			CHECK(np == 3, "three transitions between known items, got %lld", (long long) np);
			CHECK_OK(us_item_markov_build(pairs, np, 6, &v, a, &m));
			us_item_markov_scores(&m, 2, s);
			CHECK(fabsf(s[3] - (2.0f + 9.0f / 10.0f)) < 1e-6f, "2 -> 3 counted twice plus scaled popularity");
			CHECK(fabsf(s[4] - 5.0f / 10.0f) < 1e-6f && s[US_ROW_OOV] == 0, "other rows keep scaled popularity");
			us_item_markov_scores(&m, US_ROW_OOV, s);
			CHECK(s[3] < 1 && s[2] < 1, "an unknown last item has no transitions");
			us_item_markov_free(&m, a);
		}
	}

	/* behaviours: 2 classes (rows 2, 3); history 2 2 3 1 3 3 */
	{
		us_behavior_counts c;
		int32_t		h[] = {2, 2, 3, 1, 3, 3};
		double		p[2];

		CHECK_OK(us_behavior_counts_init(&c, 2, a));
		CHECK(us_behavior_counts_add(&c, h, 6) == 1, "last known behaviour is class 1");
		CHECK(us_behavior_counts_add(&c, h, 4) == -1, "an unknown last event gives -1");
		/* two histories: freq {4, 4}; transitions 0->0 x2, 0->1 x2, 1->1 x1 */
		us_behavior_prior(&c, p);
		CHECK(fabs(p[0] - 5.0 / 10.0) < 1e-12 && fabs(p[1] - 5.0 / 10.0) < 1e-12, "add-one prior");
		us_behavior_markov(&c, 0, p);
		CHECK(fabs(p[0] - 3.0 / 6.0) < 1e-12 && fabs(p[1] - 3.0 / 6.0) < 1e-12, "markov from class 0");
		us_behavior_markov(&c, 1, p);
		CHECK(fabs(p[0] - 1.0 / 3.0) < 1e-12 && fabs(p[1] - 2.0 / 3.0) < 1e-12, "markov from class 1");
		us_behavior_markov(&c, -1, p);
		CHECK(fabs(p[0] - 5.0 / 10.0) < 1e-12, "markov without a last behaviour is the prior");
		us_behavior_counts_free(&c, a);
	}
}

/* A random dataset for a fixture model: NSEQ sequences with targets of the task. */
typedef struct data
{
	int64_t		off[NSEQ + 1];
	int32_t		items[NSEQ * 12];
	int32_t		beh[NSEQ * 12];
	float		targets[NSEQ];
	int32_t		classes[NSEQ];
	float		weights[NSEQ];
	us_dataset	ds;
} data;

static void
make_data(data *d, const us_model *m, us_rng *rng)
{
	int64_t		pos = 0;

	memset(d, 0, sizeof(*d));
	for (int s = 0; s < NSEQ; s++)
	{
		int			n = 1 + (int) us_rng_below(rng, 11);

		d->off[s] = pos;
		for (int i = 0; i < n; i++, pos++)
		{
			d->items[pos] = (int32_t) us_rng_below(rng, (uint64_t) m->cfg.n_items);
			d->beh[pos] = m->cfg.n_behaviors ? (int32_t) us_rng_below(rng, (uint64_t) m->cfg.n_behaviors) : 0;
		}
		d->targets[s] = m->cfg.task == US_TASK_BINARY ? (float) (s % 3 == 0) : (float) us_rng_normal(rng);
		d->classes[s] = (int32_t) us_rng_below(rng, (uint64_t) m->cfg.n_outputs);
		d->weights[s] = 0.5f + (float) us_rng_below(rng, 3);
	}
	d->off[NSEQ] = pos;
	d->ds.n_seqs = NSEQ;
	d->ds.offsets = d->off;
	d->ds.items = d->items;
	d->ds.behaviors = m->cfg.n_behaviors ? d->beh : NULL;
	d->ds.targets = d->targets;
	d->ds.classes = d->classes;
	d->ds.weights = d->weights;
}

static void
test_validate(int task)
{
	const us_allocator *a = us_malloc_allocator();
	fixture_opts o;
	us_model   *m;
	data		d;
	us_rng		rng;
	int32_t		ids[NSEQ];
	float	   *out,
			   *all;
	us_validation v;
	double		loss,
				want;
	int32_t		k;

	fixture_default(&o, task);
	CHECK_OK(fixture_model(&o, 11 + task, &m));
	k = m->cfg.n_outputs;
	us_rng_seed(&rng, 5 + task);
	make_data(&d, m, &rng);
	for (int i = 0; i < NSEQ; i++)
		ids[i] = (i * 11) % NSEQ;	/* a permutation */
	out = malloc(sizeof(float) * 8 * k);
	all = malloc(sizeof(float) * NSEQ * k);
	CHECK_OK(us_model_validate(m, &d.ds, ids, NSEQ, 8, out, a, NULL, &v));
	CHECK_OK(us_model_predict(m, &d.ds, ids, NSEQ, all, NULL, &loss, NULL));
	CHECK(strcmp(v.names[0], us_task_metric_name(task)) == 0 && v.metric == v.values[0],
		  "%s: values[0] is the main metric", us_task_name(task));
	CHECK(fabs(v.loss - loss) < 1e-5 * (1 + fabs(loss)), "%s: loss over chunks %g = loss of one batch %g",
		  us_task_name(task), v.loss, loss);

	if (task == US_TASK_BINARY)
	{
		double		p[NSEQ],
					w[NSEQ];
		uint8_t		y[NSEQ];

		for (int i = 0; i < NSEQ; i++)
		{
			p[i] = all[i];
			y[i] = d.targets[ids[i]] > 0.5f;
			w[i] = d.weights[ids[i]];
		}
		CHECK_OK(us_roc_auc(p, y, w, NSEQ, a, &want));
		CHECK(v.n_values == 6 && v.values[0] == want, "binary: weighted roc_auc %g = %g", v.values[0], want);
	}
	else if (task == US_TASK_REGRESSION)
	{
		double		se = 0,
					ws = 0;

		for (int i = 0; i < NSEQ; i++)
		{
			double		e = all[i] - d.targets[ids[i]];

			se += d.weights[ids[i]] * e * e;
			ws += d.weights[ids[i]];
		}
		want = sqrt(se / ws);
		CHECK(v.n_values == 4 && fabs(v.values[0] - want) < 1e-6 * want, "regression: weighted rmse %g = %g", v.values[0], want);
	}
	else if (task == US_TASK_NEXT_ITEM)
	{
		double		ndcg = 0;

		for (int i = 0; i < NSEQ; i++)
		{
			int32_t		t = d.classes[ids[i]];
			int64_t		r = k;

			if (t >= US_ROW_FIRST)
			{
				r = 1;
				for (int j = US_ROW_FIRST; j < k; j++)
					if (j != t && all[(size_t) i * k + j] >= all[(size_t) i * k + t])
						r++;
			}
			if (r <= 10)
				ndcg += 1.0 / log2(1.0 + (double) r);
		}
		want = ndcg / NSEQ;
		CHECK(v.n_values == 8 && fabs(v.values[0] - want) < 1e-12, "next_item: ndcg@10 %g = %g", v.values[0], want);
		CHECK(strcmp(v.names[7], "mrr") == 0, "next_item: mrr last");
	}
	else
	{
		double		c = 0,
					ws = 0;

		for (int i = 0; i < NSEQ; i++)
		{
			int32_t		best = 0;

			for (int j = 1; j < k; j++)
				if (all[(size_t) i * k + j] > all[(size_t) i * k + best])
					best = j;
			c += best == d.classes[ids[i]] ? d.weights[ids[i]] : 0;
			ws += d.weights[ids[i]];
		}
		want = c / ws;
		CHECK(v.n_values == 1 && fabs(v.values[0] - want) < 1e-12, "%s: weighted accuracy %g = %g",
			  us_task_name(task), v.values[0], want);
	}
	CHECK(us_model_validate(m, &d.ds, ids, 0, 8, out, a, NULL, &v) == US_EINVAL, "empty set refused");
	free(out);
	free(all);
	us_model_free(m);
}

int
main(void)
{
	test_small();
	for (int t = US_TASK_BINARY; t <= US_TASK_NEXT_BEHAVIOR; t++)
		test_validate(t);
	CHECK(us_task_higher_is_better(US_TASK_REGRESSION) == 0 && us_task_higher_is_better(US_TASK_BINARY),
		  "lower rmse is better");
	CHECK(us_task_from_name("next_item") == US_TASK_NEXT_ITEM && us_task_from_name("churn") == 0 &&
		  strcmp(us_task_name(US_TASK_MULTICLASS), "multiclass") == 0, "task names");
	return unit_finish("test_evaluation");
}
