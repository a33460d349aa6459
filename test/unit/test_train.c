/*
 * test_train.c: training end to end on planted-pattern data: binary (contiguous motif vs the
 * same items scattered) reaches a validation AUC, multiclass and regression beat their
 * baselines, next_item (full and sampled softmax, tied) beats popularity on a planted
 * transition, SGD and AdamW reduce the loss, two runs are bit-identical, cancel and
 * non-finite training are reported, and batched predict agrees with one-at-a-time predict.
 * The convergence cases run again with the trainer's own threads (n_threads = 2), whose loss
 * trajectory must follow the one-thread run and repeat bit for bit.
 */
#include <math.h>
#include <string.h>

#include "userseq/us_model.h"
#include "userseq/us_rng.h"
#include "../../src/core/us_internal.h"
#include "unit.h"

#define NV 120					/* vocabulary items (rows 2..NV+1) */

typedef struct set
{
	int32_t		n;
	int64_t    *off;
	int32_t    *items;
	int32_t    *beh;
	float	   *targets;
	int32_t    *classes;
	us_dataset	ds;
} set;

static void
set_free(set *s)
{
	free(s->off);
	free(s->items);
	free(s->beh);
	free(s->targets);
	free(s->classes);
}

static int32_t
rand_item(us_rng *rng)
{
	/* skewed popularity: square of a uniform */
	double		u = us_rng_uniform(rng);

	return 2 + (int32_t) (u * u * NV);
}

/*
 * kind 0 binary: label 1 has the contiguous motif 10,11,12; label 0 has them scattered.
 * kind 1 multiclass: class c has the contiguous pair (20 + 2c, 21 + 2c).
 * kind 2 regression: target = number of occurrences of item 30 (0..3).
 * kind 3 next_item: each event follows the planted transition i -> (7 i + 3) mod NV with
 *   probability 0.8, otherwise a random item.
 */
static void
make_set(set *s, int kind, int n, us_rng *rng)
{
	int64_t		cap = (int64_t) n * 40;
	int64_t		t = 0;

	memset(s, 0, sizeof *s);
	s->n = n;
	s->off = malloc(sizeof(int64_t) * (n + 1));
	s->items = malloc(sizeof(int32_t) * cap);
	s->beh = malloc(sizeof(int32_t) * cap);
	s->targets = malloc(sizeof(float) * n);
	s->classes = malloc(sizeof(int32_t) * n);
	for (int i = 0; i < n; i++)
	{
		int			len = 12 + (int) us_rng_below(rng, 20);
		int32_t    *x = s->items + t;

		s->off[i] = t;
		for (int j = 0; j < len; j++)
			x[j] = rand_item(rng);
		for (int j = 0; j < len; j++)
			while (x[j] >= 10 && x[j] <= 12 + 20 && kind != 3)
				x[j] = rand_item(rng);	/* keep planted items out of the noise */
		if (kind == 0)
		{
			int			y = (int) us_rng_below(rng, 2);

			if (y)
			{
				int			p = (int) us_rng_below(rng, (uint64_t) len - 2);

				x[p] = 10, x[p + 1] = 11, x[p + 2] = 12;
			}
			else
			{
				/* scattered: same items, separated, in shuffled order */
				x[1] = 12, x[5] = 10, x[9] = 11;
			}
			s->targets[i] = (float) y;
		}
		else if (kind == 1)
		{
			int			c = (int) us_rng_below(rng, 3);
			int			p = (int) us_rng_below(rng, (uint64_t) len - 1);

			x[p] = 20 + 2 * c, x[p + 1] = 21 + 2 * c;
			s->classes[i] = c;
		}
		else if (kind == 2)
		{
			int			c = (int) us_rng_below(rng, 4);

			for (int j = 0; j < c; j++)
				x[(int) us_rng_below(rng, (uint64_t) len)] = 30;
			c = 0;
			for (int j = 0; j < len; j++)
				c += x[j] == 30;
			s->targets[i] = (float) c;
		}
		else
		{
			for (int j = 1; j < len; j++)
				if (us_rng_uniform(rng) < 0.8)
					x[j] = 2 + ((x[j - 1] - 2) * 7 + 3) % NV;
			s->classes[i] = 0;
		}
		for (int j = 0; j < len; j++)
			s->beh[t + j] = 2 + (int32_t) us_rng_below(rng, 2);
		t += len;
	}
	s->off[n] = t;
	s->ds.n_seqs = n;
	s->ds.offsets = s->off;
	s->ds.items = s->items;
	s->ds.behaviors = s->beh;
	s->ds.targets = s->targets;
	s->ds.classes = s->classes;
}

static us_model *
new_model(us_task task, int n_out, int tied, uint64_t seed)
{
	us_model_config c;
	us_vocab	v;
	int64_t		ids[NV];
	char	   *beh[2] = {"view", "buy"};
	char	   *cls[3] = {"a", "b", "c"};
	us_model   *m = NULL;

	for (int i = 0; i < NV; i++)
		ids[i] = 1000 + i;
	memset(&v, 0, sizeof v);
	v.n_items = NV;
	v.item_ids = ids;
	v.n_behaviors = 2;
	v.behaviors = beh;
	us_model_config_default(&c, task);
	c.n_items = NV + 2;
	c.n_behaviors = 4;
	c.embed_dim = 16;
	c.n_filters = 16;
	c.hidden_dim = 16;
	c.max_len = 40;
	c.dropout = 0.1f;
	c.tie_output = tied;
	c.n_outputs = n_out;
	/* the planted transition depends on the last event: the recent window sees it */
	c.recent_window = task == US_TASK_NEXT_ITEM ? 1 : 0;
	if (task == US_TASK_MULTICLASS)
	{
		v.n_classes = 3;
		v.classes = cls;
	}
	if (us_model_create(&c, &v, seed, us_malloc_allocator(), &m) != US_OK)
		return NULL;
	return m;
}

static int32_t *
iota(int n)
{
	int32_t    *ids = malloc(sizeof(int32_t) * (n > 0 ? n : 1));

	for (int i = 0; i < n; i++)
		ids[i] = i;
	return ids;
}

static int	g_threads = 1;		/* n_threads of the convergence cases */

/*
 * OpenBLAS (these tests link it): with the trainer's own threads the caller sets BLAS to one
 * thread, as the PostgreSQL glue does; otherwise every worker's GEMM starts BLAS threads too.
 */
extern void openblas_set_num_threads(int num_threads);

/* trains epochs over all of s; returns losses per epoch in loss[] */
static us_status
train(us_model *m, us_train_config *tc, set *s, int epochs, double *loss)
{
	us_trainer *tr = NULL;
	int32_t    *ids = iota(s->n);
	us_status	st = us_trainer_create(m, tc, us_malloc_allocator(), &tr);

	for (int e = 0; st == US_OK && e < epochs; e++)
	{
		us_epoch_stats es;

		st = us_trainer_epoch(tr, &s->ds, ids, s->n, e, NULL, &es);
		if (loss)
			loss[e] = es.loss;
	}
	us_trainer_free(tr);
	free(ids);
	return st;
}

static double
auc(const float *p, const float *y, int n)
{
	double		pos = 0,
				neg = 0,
				rank_sum = 0;

	for (int i = 0; i < n; i++)
	{
		double		r = 1;		/* tie-averaged rank */

		if (y[i] <= 0.5f)
			continue;
		for (int j = 0; j < n; j++)
			r += (p[j] < p[i]) + 0.5 * (p[j] == p[i] && j != i);
		rank_sum += r;
	}
	for (int i = 0; i < n; i++)
		*(y[i] > 0.5f ? &pos : &neg) += 1;
	return (rank_sum - pos * (pos + 1) / 2) / (pos * neg);
}

static int	quick;

static void
test_binary(void)
{
	us_rng		rng;
	set			tr,
				va;
	us_model   *m = new_model(US_TASK_BINARY, 1, 0, 7);
	us_train_config tc;
	double		loss[4];
	int			epochs = quick ? 2 : 4;

	us_rng_seed(&rng, 1);
	make_set(&tr, 0, quick ? 600 : 3000, &rng);
	make_set(&va, 0, quick ? 200 : 600, &rng);
	us_train_config_default(&tc, US_TASK_BINARY);
	tc.learning_rate = 5e-3f;
	tc.batch_size = 32;
	tc.n_threads = g_threads;
	CHECK_OK(train(m, &tc, &tr, epochs, loss));
	CHECK(loss[1] < loss[0] && loss[epochs - 1] < 0.8 * loss[0], "binary loss falls: %g -> %g -> %g",
		  loss[0], loss[1], loss[epochs - 1]);
	{
		float	   *p = malloc(sizeof(float) * va.n);
		int32_t    *ids = iota(va.n);
		double		vl = 0,
					a;

		CHECK_OK(us_model_predict(m, &va.ds, ids, va.n, p, NULL, &vl, NULL));
		a = auc(p, va.targets, va.n);
		CHECK(a >= (quick ? 0.7 : 0.9), "binary validation AUC %.4f (loss %.4f)", a, vl);
		printf("  binary: epoch losses %.4f %.4f, validation AUC %.4f\n", loss[0], loss[epochs - 1], a);
		free(p);
		free(ids);
	}
	us_model_free(m);
	set_free(&tr);
	set_free(&va);
}

static void
test_multiclass_regression(void)
{
	us_rng		rng;
	set			tr,
				va;
	us_train_config tc;
	int			epochs = quick ? 2 : 4;
	double		loss[4];

	us_rng_seed(&rng, 2);
	us_train_config_default(&tc, US_TASK_MULTICLASS);
	tc.learning_rate = 5e-3f;
	tc.batch_size = 32;
	tc.n_threads = g_threads;
	{
		us_model   *m = new_model(US_TASK_MULTICLASS, 3, 0, 8);
		float	   *p;
		int32_t    *ids;
		int			right = 0;

		make_set(&tr, 1, quick ? 600 : 2400, &rng);
		make_set(&va, 1, 300, &rng);
		CHECK_OK(train(m, &tc, &tr, epochs, loss));
		p = malloc(sizeof(float) * 3 * va.n);
		ids = iota(va.n);
		CHECK_OK(us_model_predict(m, &va.ds, ids, va.n, p, NULL, NULL, NULL));
		for (int i = 0; i < va.n; i++)
		{
			int			best = 0;

			for (int c = 1; c < 3; c++)
				if (p[i * 3 + c] > p[i * 3 + best])
					best = c;
			right += best == va.classes[i];
			CHECK(fabsf(p[i * 3] + p[i * 3 + 1] + p[i * 3 + 2] - 1.0f) < 1e-4f, "probabilities sum to 1");
		}
		CHECK((double) right / va.n >= (quick ? 0.45 : 0.8), "multiclass accuracy %.3f > 1/3",
			  (double) right / va.n);
		printf("  multiclass: validation accuracy %.3f\n", (double) right / va.n);
		free(p);
		free(ids);
		us_model_free(m);
		set_free(&tr);
		set_free(&va);
	}
	{
		us_model   *m = new_model(US_TASK_REGRESSION, 1, 0, 9);
		float	   *p;
		int32_t    *ids;
		double		mse = 0,
					mean = 0,
					var = 0;

		make_set(&tr, 2, quick ? 600 : 2400, &rng);
		make_set(&va, 2, 300, &rng);
		tc.learning_rate = 3e-3f;
		CHECK_OK(train(m, &tc, &tr, epochs, loss));
		p = malloc(sizeof(float) * va.n);
		ids = iota(va.n);
		CHECK_OK(us_model_predict(m, &va.ds, ids, va.n, p, NULL, NULL, NULL));
		for (int i = 0; i < va.n; i++)
			mean += va.targets[i] / va.n;
		for (int i = 0; i < va.n; i++)
		{
			mse += (p[i] - va.targets[i]) * (p[i] - va.targets[i]) / va.n;
			var += (mean - va.targets[i]) * (mean - va.targets[i]) / va.n;
		}
		CHECK(mse < (quick ? 0.9 : 0.5) * var, "regression MSE %.4f below variance %.4f", mse, var);
		printf("  regression: validation MSE %.4f, variance %.4f\n", mse, var);
		free(p);
		free(ids);
		us_model_free(m);
		set_free(&tr);
		set_free(&va);
	}
}

/* next_item: HR@1 of the last event given the rest, model vs most popular item */
static void
next_item_case(const char *name, int tied, int n_neg, double min_hr)
{
	us_rng		rng;
	set			tr,
				va,
				vin;
	us_model   *m = new_model(US_TASK_NEXT_ITEM, NV + 2, tied, 11);
	us_train_config tc;
	double		loss[3];
	int			epochs = quick ? 1 : 3;
	int			V = NV + 2;

	us_rng_seed(&rng, 3);
	make_set(&tr, 3, quick ? 200 : 1500, &rng);
	make_set(&va, 3, 300, &rng);
	us_train_config_default(&tc, US_TASK_NEXT_ITEM);
	tc.batch_examples = 0;		/* 32 sequences per step */
	tc.learning_rate = 1e-2f;
	tc.batch_size = 32;
	tc.n_negatives = n_neg;
	tc.n_threads = g_threads;
	CHECK_OK(train(m, &tc, &tr, epochs, loss));
	if (!quick)
		CHECK(loss[2] < loss[0], "%s: loss falls %g -> %g", name, loss[0], loss[2]);
	/* validation: input = all but the last event, class = last event */
	vin = va;
	vin.off = malloc(sizeof(int64_t) * (va.n + 1));
	vin.classes = malloc(sizeof(int32_t) * va.n);
	{
		int64_t    *starts = malloc(sizeof(int64_t) * va.n);
		int32_t    *items2 = malloc(sizeof(int32_t) * va.off[va.n]);
		int64_t		t = 0;
		long		count[NV + 2] = {0};
		int			pop = 2,
					hit = 0,
					hit_pop = 0;
		float	   *out = malloc(sizeof(float) * V * va.n);
		int32_t    *ids = iota(va.n);
		double		vl = 0;

		for (int64_t i = 0; i < tr.off[tr.n]; i++)
			count[tr.items[i]]++;
		for (int r = 2; r < V; r++)
			if (count[r] > count[pop])
				pop = r;
		for (int i = 0; i < va.n; i++)
		{
			int64_t		len = va.off[i + 1] - va.off[i] - 1;

			vin.off[i] = t;
			starts[i] = t;
			memcpy(items2 + t, va.items + va.off[i], sizeof(int32_t) * len);
			vin.classes[i] = va.items[va.off[i + 1] - 1];
			t += len;
		}
		vin.off[va.n] = t;
		vin.ds.offsets = vin.off;
		vin.ds.items = items2;
		vin.ds.behaviors = NULL;
		vin.ds.classes = vin.classes;
		CHECK_OK(us_model_predict(m, &vin.ds, ids, va.n, out, NULL, &vl, NULL));
		for (int i = 0; i < va.n; i++)
		{
			int			best = 2;

			for (int r = 3; r < V; r++)
				if (out[(size_t) i * V + r] > out[(size_t) i * V + best])
					best = r;
			hit += best == vin.classes[i];
			hit_pop += pop == vin.classes[i];
		}
		CHECK(quick || (hit > 3 * hit_pop && hit >= min_hr * va.n),
			  "%s: HR@1 %.3f beats popularity %.3f", name, (double) hit / va.n, (double) hit_pop / va.n);
		CHECK(isfinite(vl) && vl > 0, "%s: validation loss %g", name, vl);
		printf("  %s: HR@1 %.3f (popularity %.3f), valid loss %.3f\n", name, (double) hit / va.n,
			   (double) hit_pop / va.n, vl);
		free(starts);
		free(items2);
		free(out);
		free(ids);
		free(vin.off);
		free(vin.classes);
	}
	us_model_free(m);
	set_free(&tr);
	set_free(&va);
}

static int
cancel_at_2(void *ctx, int64_t done, int64_t total)
{
	int		   *calls = ctx;

	(void) total;

	(*calls)++;
	return done >= 2;
}

static void
test_misc(void)
{
	us_rng		rng;
	set			tr;
	us_train_config tc;
	double		loss[3];

	us_rng_seed(&rng, 4);
	make_set(&tr, 0, quick ? 200 : 800, &rng);
	us_train_config_default(&tc, US_TASK_BINARY);
	tc.batch_size = 32;
	tc.learning_rate = 5e-3f;

	/* determinism: two runs bit-identical; a different seed differs */
	{
		us_model   *a = new_model(US_TASK_BINARY, 1, 0, 5),
				   *b = new_model(US_TASK_BINARY, 1, 0, 5);

		CHECK_OK(train(a, &tc, &tr, 2, NULL));
		CHECK_OK(train(b, &tc, &tr, 2, NULL));
		CHECK(memcmp(a->params_block, b->params_block, a->n_params * sizeof(float)) == 0,
			  "two runs with the same seed are bit-identical");
		tc.seed++;
		CHECK_OK(train(b, &tc, &tr, 1, NULL));
		tc.seed--;
		us_model_free(a);
		us_model_free(b);
	}
	/* SGD and AdamW reduce the loss; weight decay, clipping, schedules run */
	{
		us_model   *a = new_model(US_TASK_BINARY, 1, 0, 5);
		us_train_config t2 = tc;

		t2.optimizer = US_OPT_SGD;
		t2.learning_rate = 0.05f;
		t2.weight_decay = 1e-4f;
		t2.clip_norm = 5.0f;
		t2.lr_schedule = US_LR_COSINE;
		t2.epochs = 3;
		CHECK_OK(train(a, &t2, &tr, 3, loss));
		CHECK(loss[2] < loss[0], "SGD reduces the loss: %g -> %g", loss[0], loss[2]);
		us_model_free(a);
		a = new_model(US_TASK_BINARY, 1, 0, 5);
		t2 = tc;
		t2.optimizer = US_OPT_ADAMW;
		t2.weight_decay = 0.01f;
		t2.lr_schedule = US_LR_STEP;
		t2.lr_step_epochs = 1;
		t2.lr_gamma = 0.7f;
		CHECK_OK(train(a, &t2, &tr, 3, loss));
		CHECK(loss[2] < loss[0], "AdamW reduces the loss: %g -> %g", loss[0], loss[2]);
		us_model_free(a);
	}
	/* cancel from the progress callback */
	{
		us_model   *a = new_model(US_TASK_BINARY, 1, 0, 5);
		us_trainer *t = NULL;
		int32_t    *ids = iota(tr.n);
		int			calls = 0;
		us_progress pr = {cancel_at_2, &calls};

		CHECK_OK(us_trainer_create(a, &tc, us_malloc_allocator(), &t));
		CHECK(us_trainer_epoch(t, &tr.ds, ids, tr.n, 0, &pr, NULL) == US_ECANCELED && calls == 2,
			  "progress callback cancels after its second call (%d calls)", calls);
		us_trainer_free(t);
		free(ids);
		us_model_free(a);
	}
	/* huge learning rate: reported, not a crash */
	{
		us_model   *a = new_model(US_TASK_BINARY, 1, 0, 5);
		us_train_config t2 = tc;
		us_status	st;

		t2.optimizer = US_OPT_SGD;
		t2.learning_rate = 1e30f;
		st = train(a, &t2, &tr, 2, NULL);
		CHECK(st == US_ENONFINITE, "huge lr gives US_ENONFINITE, got %s", us_status_str(st));
		us_model_free(a);
		a = new_model(US_TASK_BINARY, 1, 0, 5);
		t2 = tc;
		t2.learning_rate = NAN;
		{
			us_trainer *t = NULL;

			CHECK(us_trainer_create(a, &t2, us_malloc_allocator(), &t) == US_ENONFINITE && t == NULL,
				  "NaN lr rejected with US_ENONFINITE");
		}
		us_model_free(a);
	}
	/* bad inputs */
	{
		us_model   *a = new_model(US_TASK_BINARY, 1, 0, 5);
		us_trainer *t = NULL;
		int32_t		bad_id = tr.n;
		float		out;

		CHECK_OK(us_trainer_create(a, &tc, us_malloc_allocator(), &t));
		CHECK(us_trainer_epoch(t, &tr.ds, &bad_id, 1, 0, NULL, NULL) == US_EINVAL, "bad sequence id");
		tr.items[3] = NV + 2;
		CHECK(us_trainer_epoch(t, &tr.ds, &bad_id, 0, 0, NULL, NULL) == US_OK, "empty epoch");
		bad_id = 0;
		CHECK(us_trainer_epoch(t, &tr.ds, &bad_id, 1, 0, NULL, NULL) == US_EINVAL, "item row out of range");
		CHECK(us_model_predict(a, &tr.ds, &bad_id, 1, &out, NULL, NULL, NULL) == US_EINVAL,
			  "predict: item row out of range");
		tr.items[3] = 2;
		tr.targets[0] = NAN;
		CHECK(us_trainer_epoch(t, &tr.ds, &bad_id, 1, 0, NULL, NULL) == US_ENONFINITE, "NaN target");
		tr.targets[0] = 1;
		us_trainer_free(t);
		us_model_free(a);
	}
	/* batched predict equals one sequence at a time; features too; empty sequence is valid */
	{
		us_model   *a = new_model(US_TASK_BINARY, 1, 0, 5);
		int			n = 50;
		int			D = us_model_feature_dim(&a->cfg);
		float	   *p = malloc(sizeof(float) * n),
				   *f = malloc(sizeof(float) * n * D),
					p1,
				   *f1 = malloc(sizeof(float) * D);
		int32_t    *ids = iota(n);
		double		maxd = 0;
		int64_t		save = tr.off[1];

		tr.off[1] = tr.off[0];	/* sequence 0 empty */
		CHECK_OK(us_model_predict(a, &tr.ds, ids, n, p, f, NULL, NULL));
		for (int i = 0; i < n; i++)
		{
			CHECK_OK(us_model_predict(a, &tr.ds, &ids[i], 1, &p1, f1, NULL, NULL));
			maxd = fmax(maxd, fabs(p1 - p[i]));
			for (int d = 0; d < D; d++)
				maxd = fmax(maxd, fabs(f1[d] - f[i * D + d]));
		}
		CHECK(maxd < 1e-5, "batched predict agrees with single-sequence predict (max diff %g)", maxd);
		tr.off[1] = save;
		free(p);
		free(f);
		free(f1);
		free(ids);
		us_model_free(a);
	}
	set_free(&tr);
}

/*
 * n_threads = 2 against 1: same loss trajectory within float tolerance (the slices only change
 * the summation order), two 2-thread runs bit-identical, 3 threads close as well; errors and
 * cancel are reported from a threaded trainer too.
 */
static void
test_threads(void)
{
	us_rng		rng;
	set			tr;
	us_train_config tc;
	struct
	{
		us_task		task;
		int			kind,
					n_out,
					tied,
					n_neg;
	}			cases[] = {
		{US_TASK_BINARY, 0, 1, 0, 0},
		{US_TASK_NEXT_ITEM, 3, NV + 2, 0, 20},
		{US_TASK_NEXT_ITEM, 3, NV + 2, 1, 0},
	};
	int			epochs = 3;

	/*
	 * valgrind runs the trainer's threads one at a time (US_UNIT_QUICK): there the repeat and
	 * 3-thread runs, which check arithmetic the other builds check, are left out
	 */
	for (size_t k = 0; k < sizeof(cases) / sizeof(cases[0]); k++)
	{
		double		l1[3],
					l2[3],
					l2b[3],
					l3[3],
					worst = 0,
					wdiff = 0;
		us_model   *a = new_model(cases[k].task, cases[k].n_out, cases[k].tied, 5),
				   *b = new_model(cases[k].task, cases[k].n_out, cases[k].tied, 5),
				   *b2 = new_model(cases[k].task, cases[k].n_out, cases[k].tied, 5),
				   *c3 = new_model(cases[k].task, cases[k].n_out, cases[k].tied, 5);

		us_rng_seed(&rng, 40 + k);
		make_set(&tr, cases[k].kind, quick ? 100 : 500, &rng);
		us_train_config_default(&tc, cases[k].task);
		tc.batch_examples = 0;	/* 32 sequences per step */
		tc.batch_size = 32;
		tc.learning_rate = 5e-3f;
		tc.n_negatives = cases[k].n_neg;
		tc.clip_norm = 5.0f;
		tc.n_threads = 1;
		CHECK_OK(train(a, &tc, &tr, epochs, l1));
		tc.n_threads = 2;
		CHECK_OK(train(b, &tc, &tr, epochs, l2));
		if (!quick)
		{
			CHECK_OK(train(b2, &tc, &tr, epochs, l2b));
			tc.n_threads = 3;
			CHECK_OK(train(c3, &tc, &tr, epochs, l3));
		}
		for (int e = 0; e < epochs; e++)
		{
			worst = fmax(worst, fabs(l2[e] - l1[e]) / fabs(l1[e]));
			if (!quick)
				worst = fmax(worst, fabs(l3[e] - l1[e]) / fabs(l1[e]));
		}
		/*
		 * Mean, not max: Adam moves a weight by about the learning rate whatever its gradient's
		 * size, so a tied row whose gradient sums to nearly zero follows the rounding of the
		 * shard reduction (seen with OpenBLAS's portable Prescott kernels: max 0.018, mean 3e-4,
		 * losses equal to 3e-6). A lost or doubled shard moves the mean by far more.
		 */
		for (size_t i = 0; i < a->n_params; i++)
			wdiff += fabs(a->params_block[i] - b->params_block[i]) / (double) a->n_params;
		CHECK(worst < 1e-5, "case %zu: 2 and 3 threads follow the 1-thread loss trajectory "
			  "(%.6f %.6f %.6f vs %.6f %.6f %.6f; worst rel %.2g)", k, l2[0], l2[1], l2[2],
			  l1[0], l1[1], l1[2], worst);
		CHECK(wdiff < 1e-3 && l1[epochs - 1] < l1[0], "case %zu: 2-thread weights near 1-thread ones "
			  "(mean abs diff %.3g), loss falls", k, wdiff);
		if (!quick)
			CHECK(memcmp(b->params_block, b2->params_block, b->n_params * sizeof(float)) == 0 &&
				  memcmp(l2, l2b, sizeof l2) == 0, "case %zu: two 2-thread runs are bit-identical", k);
		printf("  threads case %zu: losses T=1 %.5f..%.5f, T=2 %.5f..%.5f, worst rel %.2g, mean weight diff %.2g\n",
			   k, l1[0], l1[epochs - 1], l2[0], l2[epochs - 1], worst, wdiff);
		us_model_free(a);
		us_model_free(b);
		us_model_free(b2);
		us_model_free(c3);
		set_free(&tr);
	}
	/* errors and cancel with workers running; the trainer stays usable after an error */
	{
		us_model   *a = new_model(US_TASK_BINARY, 1, 0, 5);
		us_trainer *t = NULL;
		int32_t    *ids;
		int			calls = 0;
		us_progress pr = {cancel_at_2, &calls};
		us_status	st;

		us_rng_seed(&rng, 50);
		make_set(&tr, 0, 200, &rng);
		ids = iota(tr.n);
		us_train_config_default(&tc, US_TASK_BINARY);
		tc.batch_size = 32;
		tc.n_threads = 2;
		CHECK_OK(us_trainer_create(a, &tc, us_malloc_allocator(), &t));
		CHECK(us_trainer_epoch(t, &tr.ds, ids, tr.n, 0, &pr, NULL) == US_ECANCELED && calls == 2,
			  "2 threads: progress callback cancels after its second call (%d calls)", calls);
		tr.items[tr.off[150]] = NV + 2;	/* in the second slice of some batch */
		st = us_trainer_epoch(t, &tr.ds, ids, tr.n, 0, NULL, NULL);
		CHECK(st == US_EINVAL, "2 threads: bad item row gives US_EINVAL, got %s", us_status_str(st));
		tr.items[tr.off[150]] = 2;
		CHECK_OK(us_trainer_epoch(t, &tr.ds, ids, tr.n, 1, NULL, NULL));
		CHECK(us_model_check_finite(a) == US_OK, "2 threads: weights finite after recovery");
		us_trainer_free(t);
		t = NULL;
		/* fewer sequences than threads: empty slices */
		tc.n_threads = 7;
		CHECK_OK(us_trainer_create(a, &tc, us_malloc_allocator(), &t));
		CHECK_OK(us_trainer_epoch(t, &tr.ds, ids, 3, 0, NULL, NULL));
		us_trainer_free(t);
		free(ids);
		set_free(&tr);
		us_model_free(a);
	}
}

/* a progress callback that records the steps it is told about */
static int
count_steps(void *ctx, int64_t done, int64_t total)
{
	int64_t    *c = ctx;

	c[0] = done;
	c[1] = total;
	return 0;
}

/*
 * batch_examples: whole sequences fill a step while their prefix examples fit in batch_size
 * (at least one sequence per step). Sequence lengths 12..31 capped at max_len 40: 11..30
 * examples each. batch_size 1: one sequence per step; batch_size >= all examples: one step;
 * batch_size 60: every step but the last holds > 60 - 30 examples, so steps <= total / 31 + 1,
 * and the epoch's examples are all of them. batch_examples 0 keeps ceil(n / batch_size).
 */
static void
test_batch_examples(void)
{
	us_rng		rng;
	set			tr;
	us_train_config tc;
	int64_t		total = 0;
	int			B[4] = {1, 60, 1 << 16, 7};

	us_rng_seed(&rng, 11);
	make_set(&tr, 3, 40, &rng);
	for (int i = 0; i < tr.n; i++)
		total += tr.off[i + 1] - tr.off[i] - 1;
	for (int k = 0; k < 4; k++)
	{
		us_model   *m = new_model(US_TASK_NEXT_ITEM, NV + 2, 0, 3);
		us_trainer *t = NULL;
		int32_t    *ids = iota(tr.n);
		int64_t		seen[2] = {0, 0};
		us_progress pr = {count_steps, seen};
		us_epoch_stats es;

		us_train_config_default(&tc, US_TASK_NEXT_ITEM);
		tc.batch_size = B[k];
		tc.batch_examples = k < 3;
		CHECK_OK(us_trainer_create(m, &tc, us_malloc_allocator(), &t));
		CHECK_OK(us_trainer_epoch(t, &tr.ds, ids, tr.n, 0, &pr, &es));
		CHECK(es.examples == total, "batch %d: every example once (%lld of %lld)", B[k],
			  (long long) es.examples, (long long) total);
		CHECK(seen[0] == es.steps && seen[1] == es.steps, "batch %d: progress sees every step", B[k]);
		if (k == 0)
			CHECK(es.steps == tr.n, "1 example per step: one sequence per step (%lld)", (long long) es.steps);
		else if (k == 1)
			CHECK(es.steps > total / 60 && es.steps <= total / 31 + 1,
				  "60 examples per step: %lld steps for %lld examples", (long long) es.steps, (long long) total);
		else if (k == 2)
			CHECK(es.steps == 1, "a batch larger than the data: one step");
		else
			CHECK(es.steps == (tr.n + 6) / 7, "sequence batches: ceil(n / 7) steps");
		us_trainer_free(t);
		free(ids);
		us_model_free(m);
	}
	set_free(&tr);
}

/*
 * AdamW weight decay under lazy embedding updates: item rows no step touches (the data uses
 * the lower half of the vocabulary only) decay exactly as a dense update would decay them,
 * by the product of every step's 1 - lr * wd (two epochs, the second at half the rate), and
 * also through a step whose factor is not positive (lr * wd > 1).
 */
static int
cancel_after_first(void *ctx, int64_t done, int64_t total)
{
	(void) ctx;
	(void) total;
	return done >= 1;
}

static void
test_lazy_decay(void)
{
	us_rng		rng;
	set			tr;
	const double lrs[2][2] = {{0.01, 0.1}, {2.0, 0.75}};	/* lr, weight decay */

	us_rng_seed(&rng, 12);
	make_set(&tr, 3, 40, &rng);
	for (int64_t i = 0; i < tr.off[tr.n]; i++)
		tr.items[i] = 2 + (tr.items[i] - 2) % (NV / 2);
	for (int k = 0; k < 2; k++)
	{
		us_model   *m = new_model(US_TASK_NEXT_ITEM, NV + 2, 0, 3);
		us_trainer *t = NULL;
		int32_t    *ids = iota(tr.n);
		us_train_config tc;
		int			E = m->cfg.embed_dim;
		int			epochs = k == 0 ? 2 : 1;
		float	   *before = malloc(sizeof(float) * (size_t) NV / 2 * E);
		double		f = 1.0,
					err = 0.0,
					moved = 0.0;

		us_train_config_default(&tc, US_TASK_NEXT_ITEM);
		tc.batch_examples = 0;	/* 20 sequences per step, unclipped */
		tc.clip_norm = 0.0f;
		tc.optimizer = US_OPT_ADAMW;
		tc.learning_rate = (float) lrs[k][0];
		tc.weight_decay = (float) lrs[k][1];
		tc.batch_size = 20;
		tc.lr_schedule = US_LR_STEP;
		tc.lr_step_epochs = 1;
		tc.lr_gamma = 0.5f;
		memcpy(before, m->p.item_emb + (size_t) (2 + NV / 2) * E, sizeof(float) * (size_t) NV / 2 * E);
		CHECK_OK(us_trainer_create(m, &tc, us_malloc_allocator(), &t));
		for (int e = 0; e < epochs; e++)
		{
			us_epoch_stats es;

			CHECK_OK(us_trainer_epoch(t, &tr.ds, ids, tr.n, e, NULL, &es));
			for (int64_t s = 0; s < es.steps; s++)
				f *= 1.0 - (double) us_train_learning_rate(&tc, e) * tc.weight_decay;
		}
		if (k == 0)
		{
			/* an epoch cancelled after its first step leaves no decay pending either */
			us_progress cancel = {cancel_after_first, NULL};

			CHECK(us_trainer_epoch(t, &tr.ds, ids, tr.n, epochs, &cancel, NULL) == US_ECANCELED,
				  "a cancelled epoch returns US_ECANCELED");
			f *= 1.0 - (double) us_train_learning_rate(&tc, epochs) * tc.weight_decay;
		}
		for (size_t i = 0; i < (size_t) NV / 2 * E; i++)
		{
			double		w = m->p.item_emb[(size_t) (2 + NV / 2) * E + i];

			err = fmax(err, fabs(w - before[i] * f) / (fabs(before[i] * f) + 1e-30));
			moved = fmax(moved, fabs(w - before[i]));
		}
		CHECK(err < 1e-5 && moved > 0.0,
			  "lr %g wd %g: untouched rows decayed exactly (factor %.6g, max relative error %.2g)",
			  lrs[k][0], lrs[k][1], f, err);
		us_trainer_free(t);
		free(ids);
		free(before);
		us_model_free(m);
	}
	set_free(&tr);
}

int
main(void)
{
	quick = unit_quick();
	test_binary();
	test_multiclass_regression();
	next_item_case("next_item full", 0, 0, 0.7);
	next_item_case("next_item sampled", 0, 20, 0.4);
	next_item_case("next_item tied sampled", 1, 20, 0.1);
	if (!quick)
		next_item_case("next_item tied full", 1, 0, 0.15);
	test_misc();
	test_batch_examples();
	test_lazy_decay();
	openblas_set_num_threads(1);
	test_threads();
	/* the convergence cases again on the trainer's own threads */
	g_threads = 2;
	printf("  with n_threads = 2:\n");
	test_binary();
	test_multiclass_regression();
	next_item_case("next_item full", 0, 0, 0.7);
	next_item_case("next_item tied sampled", 1, 20, 0.1);
	return unit_finish("test_train");
}
