/*
 * train_digest.c: a fingerprint of the core's training numerics, for proving that a
 * restructuring of src/core changes no float. For a fixed list of small configurations (every
 * task, behaviour and gap inputs, recent window, tied output, full and sampled softmax, the
 * three optimizers, clipping, 1 and 2 trainer threads) on deterministic synthetic data it
 * trains a few epochs and prints, with full precision: the loss of every epoch, a 64-bit hash
 * of the trained weights, of us_model_predict's outputs and features (and its loss), of the
 * full gradient of us_model_loss_and_grad with the sparse and the dense conv backward, and of
 * us_trainer_batch_grad. Two builds compute the same floats iff their outputs are identical:
 *
 *   make train-digest > before.txt    # (change the code)
 *   make train-digest > after.txt && diff before.txt after.txt
 *
 * Not a test of correctness (the unit tests are); run with OPENBLAS_NUM_THREADS=1 (the make
 * target does) since the BLAS thread count changes summation order.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "userseq/us_model.h"
#include "userseq/us_rng.h"
#include "bench_config.h"
#include "../../src/core/us_internal.h"

typedef struct variant
{
	const char *name;
	int			task;
	int			behaviors,
				gaps,
				recent,
				tie;
	int			negatives;		/* next_item sampled softmax */
	int			max_ex;			/* max_examples_per_seq */
	int			threads;
	int			optimizer;
	float		clip,
				wd;
} variant;

static const variant variants[] = {
	{"binary", US_TASK_BINARY, 0, 0, 0, 0, 0, 0, 1, US_OPT_ADAM, 0, 0},
	{"binary beh gap recent", US_TASK_BINARY, 1, 1, 3, 0, 0, 0, 1, US_OPT_ADAM, 0, 0},
	{"binary beh gap recent T2", US_TASK_BINARY, 1, 1, 3, 0, 0, 0, 2, US_OPT_ADAM, 0, 0},
	{"binary adamw clip", US_TASK_BINARY, 0, 1, 0, 0, 0, 0, 1, US_OPT_ADAMW, 0.5f, 0.01f},
	{"multiclass recent", US_TASK_MULTICLASS, 1, 0, 2, 0, 0, 0, 1, US_OPT_ADAM, 0, 0},
	{"multiclass T2", US_TASK_MULTICLASS, 0, 1, 0, 0, 0, 0, 2, US_OPT_ADAM, 0, 0},
	{"regression sgd", US_TASK_REGRESSION, 1, 1, 0, 0, 0, 0, 1, US_OPT_SGD, 1.0f, 0.001f},
	{"regression recent T2", US_TASK_REGRESSION, 0, 0, 4, 0, 0, 0, 2, US_OPT_ADAM, 0, 0},
	{"next_item full", US_TASK_NEXT_ITEM, 0, 0, 0, 0, 0, 0, 1, US_OPT_ADAM, 0, 0},
	{"next_item full recent tied", US_TASK_NEXT_ITEM, 1, 1, 2, 1, 0, 0, 1, US_OPT_ADAM, 0, 0},
	{"next_item sampled", US_TASK_NEXT_ITEM, 0, 1, 1, 0, 15, 0, 1, US_OPT_ADAM, 0, 0},
	{"next_item sampled tied T2", US_TASK_NEXT_ITEM, 1, 0, 0, 1, 15, 0, 2, US_OPT_ADAM, 0, 0},
	{"next_item full max_ex T2", US_TASK_NEXT_ITEM, 0, 0, 2, 0, 0, 4, 2, US_OPT_ADAM, 0, 0},
	{"next_behavior recent", US_TASK_NEXT_BEHAVIOR, 1, 1, 2, 0, 0, 0, 1, US_OPT_ADAM, 0, 0},
	{"next_behavior T2", US_TASK_NEXT_BEHAVIOR, 1, 0, 0, 0, 0, 3, 2, US_OPT_ADAM, 0, 0},
};

#define NV		60				/* known items: rows 2..NV+1 */
#define NB		4				/* known behaviours */
#define NG		8				/* gap buckets */
#define NSEQ	240
#define E		12
#define F		10
#define H		14

static uint64_t
fnv(const void *p, size_t n)
{
	const unsigned char *b = p;
	uint64_t	h = UINT64_C(0xcbf29ce484222325);

	for (size_t i = 0; i < n; i++)
		h = (h ^ b[i]) * UINT64_C(0x100000001b3);
	return h;
}

static void
check(us_status st, const char *what)
{
	if (st != US_OK)
	{
		fprintf(stderr, "train_digest: %s failed: %s\n", what, us_status_str(st));
		exit(1);
	}
}

static void
run(const variant *v)
{
	us_model_config c;
	us_train_config tc;
	us_vocab	voc;
	int64_t		ids[NV];
	char	   *beh[NB] = {"view", "search", "cart", "buy"};
	char	   *cls[3] = {"a", "b", "c"};
	us_model   *m = NULL;
	us_trainer *tr = NULL;
	us_rng		rng;
	int64_t    *off = malloc(sizeof(int64_t) * (NSEQ + 1));
	int32_t    *items = malloc(sizeof(int32_t) * NSEQ * 40);
	int32_t    *bh = malloc(sizeof(int32_t) * NSEQ * 40);
	int32_t    *gp = malloc(sizeof(int32_t) * NSEQ * 40);
	float	   *y = malloc(sizeof(float) * NSEQ);
	float	   *w = malloc(sizeof(float) * NSEQ);
	int32_t    *cl = malloc(sizeof(int32_t) * NSEQ);
	int32_t    *seq = malloc(sizeof(int32_t) * NSEQ);
	us_dataset	ds;
	int64_t		t = 0;
	float	   *out,
			   *feat,
			   *grads;
	double		loss;
	int			D;

	memset(&voc, 0, sizeof voc);
	for (int i = 0; i < NV; i++)
		ids[i] = 100 + i;
	voc.n_items = NV;
	voc.item_ids = ids;
	us_model_config_default(&c, (us_task) v->task);
	bench_shape_128(&c);
	c.n_items = NV + 2;
	if (v->behaviors)
	{
		voc.n_behaviors = NB;
		voc.behaviors = beh;
		c.n_behaviors = NB + 2;
	}
	c.n_gap_buckets = v->gaps ? NG : 0;
	c.n_outputs = v->task == US_TASK_MULTICLASS ? 3 : v->task == US_TASK_NEXT_ITEM ? c.n_items
		: v->task == US_TASK_NEXT_BEHAVIOR ? c.n_behaviors : 1;
	if (v->task == US_TASK_MULTICLASS)
	{
		voc.n_classes = 3;
		voc.classes = cls;
	}
	c.max_len = 20;
	c.embed_dim = E;
	c.n_filters = F;
	c.hidden_dim = v->tie ? E : H;
	c.n_widths = 3;
	c.widths[0] = 1;
	c.widths[1] = 3;
	c.widths[2] = 5;
	c.recent_window = v->recent;
	c.tie_output = v->tie;
	c.dropout = 0.3f;
	c.pos_weight = 1.7f;
	check(us_model_create(&c, &voc, 4242, us_malloc_allocator(), &m), "us_model_create");
	D = us_model_feature_dim(&c);

	/* sequences of 0..29 events (some longer than max_len, some shorter than every width) */
	us_rng_seed(&rng, 99);
	for (int s = 0; s < NSEQ; s++)
	{
		int			len = (int) us_rng_below(&rng, 30);
		int			n30 = 0;

		off[s] = t;
		for (int i = 0; i < len; i++, t++)
		{
			double		u = us_rng_uniform(&rng);

			items[t] = 1 + (int32_t) (u * u * (NV + 1));	/* OOV row 1 now and then */
			bh[t] = (int32_t) us_rng_below(&rng, NB + 2);	/* padding 0 and OOV 1 included */
			gp[t] = i == 0 ? 1 : (int32_t) us_rng_below(&rng, NG);
			n30 += items[t] < 6;
		}
		y[s] = v->task == US_TASK_BINARY ? (float) (n30 > 1) : (float) n30 * 0.5f - 1.0f;
		cl[s] = (int32_t) ((n30 + s) % 3);
		if (v->task == US_TASK_NEXT_BEHAVIOR)
			cl[s] = (int32_t) us_rng_below(&rng, NB + 2);
		else if (v->task == US_TASK_NEXT_ITEM)
			cl[s] = 2 + (int32_t) us_rng_below(&rng, NV);
		w[s] = 0.5f + (float) (s % 4) * 0.25f;
		seq[s] = s;
	}
	off[NSEQ] = t;
	memset(&ds, 0, sizeof ds);
	ds.n_seqs = NSEQ;
	ds.offsets = off;
	ds.items = items;
	ds.behaviors = v->behaviors ? bh : NULL;
	ds.gaps = v->gaps ? gp : NULL;
	ds.targets = (v->task == US_TASK_BINARY || v->task == US_TASK_REGRESSION) ? y : NULL;
	ds.classes = (v->task == US_TASK_MULTICLASS || v->task == US_TASK_NEXT_ITEM ||
				  v->task == US_TASK_NEXT_BEHAVIOR) ? cl : NULL;
	ds.weights = w;

	printf("== %s\n", v->name);
	us_train_config_default(&tc, (us_task) v->task);
	bench_train_classic(&tc);
	tc.optimizer = v->optimizer;
	tc.learning_rate = v->optimizer == US_OPT_SGD ? 0.02f : 0.005f;
	tc.clip_norm = v->clip;
	tc.weight_decay = v->wd;
	tc.batch_size = 32;
	tc.n_negatives = v->negatives;
	tc.max_examples_per_seq = v->max_ex;
	tc.n_threads = v->threads;
	tc.seed = 777;
	check(us_trainer_create(m, &tc, us_malloc_allocator(), &tr), "us_trainer_create");
	for (int ep = 0; ep < 3; ep++)
	{
		us_epoch_stats es;

		check(us_trainer_epoch(tr, &ds, seq, NSEQ, ep, NULL, &es), "us_trainer_epoch");
		printf("epoch %d loss %.17g examples %lld steps %lld\n", ep, es.loss,
			   (long long) es.examples, (long long) es.steps);
	}
	printf("weights %016llx\n", (unsigned long long) fnv(m->params_block, m->n_params * sizeof(float)));

	grads = malloc(m->n_params * sizeof(float));
	check(us_trainer_batch_grad(tr, &ds, seq, 64, grads, &loss), "us_trainer_batch_grad");
	printf("batch_grad %016llx loss %.17g\n",
		   (unsigned long long) fnv(grads, m->n_params * sizeof(float)), loss);
	us_trainer_free(tr);
	for (int mode = US_CONV_BWD_SPARSE; mode <= US_CONV_BWD_DENSE; mode++)
	{
		check(us_model_loss_and_grad(m, &ds, seq, 48, v->max_ex, mode, grads, &loss),
			  "us_model_loss_and_grad");
		printf("loss_and_grad %s %016llx loss %.17g\n", mode == US_CONV_BWD_SPARSE ? "sparse" : "dense",
			   (unsigned long long) fnv(grads, m->n_params * sizeof(float)), loss);
	}
	out = malloc(sizeof(float) * NSEQ * c.n_outputs);
	feat = malloc(sizeof(float) * NSEQ * D);
	check(us_model_predict(m, &ds, seq, NSEQ, out, feat, &loss, NULL), "us_model_predict");
	printf("predict %016llx features %016llx loss %.17g\n",
		   (unsigned long long) fnv(out, sizeof(float) * NSEQ * c.n_outputs),
		   (unsigned long long) fnv(feat, sizeof(float) * NSEQ * D), loss);

	us_model_free(m);
	free(out);
	free(feat);
	free(grads);
	free(off);
	free(items);
	free(bh);
	free(gp);
	free(y);
	free(w);
	free(cl);
	free(seq);
}

int
main(void)
{
	for (size_t i = 0; i < sizeof(variants) / sizeof(variants[0]); i++)
		run(&variants[i]);
	return 0;
}
