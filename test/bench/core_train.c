/*
 * core_train.c: the userseq core's side of the benchmark against the PyTorch peer
 * (test/bench/torch_textcnn.py `bench`): reads the same TSV file, uses the same
 * validation split (the last round(f*N) lines), hyperparameters, metric definitions and
 * JSON-line output, so test/bench/core_vs_torch.sh can put the two side by side.
 *
 * Model size matches the peer: the core's vocabulary is exactly the ids 1..V-1, so id x is
 * item row x + 1 (row 0 padding, row 1 out-of-vocabulary, never used here): V + 1 rows against
 * the peer's V. Measured, after training:
 *   train_seq_per_s / train_examples_per_s: optimizer steps only (batch assembly from memory,
 *     forward, backward, Adam), excluding file reading and the first --warmup-steps steps, as
 *     the peer does. Per-step time comes from the trainer's progress callback (called after
 *     every optimizer step). next_item examples in the timed steps are estimated as timed
 *     sequences x the epoch's examples per sequence (the trainer's shuffle is internal).
 *   infer_seq_per_s: us_model_predict, batches of 1024 validation sequences (the peer's
 *     protocol); next_item includes a top-10 selection per sequence, as the peer's does.
 *   infer_folded_seq_per_s / infer_direct_seq_per_s: us_scorer_forward (binary) or
 *     us_scorer_topk (next_item, k=10, history not excluded), one sequence per call as SQL
 *     scoring does, with the folded tables and without them.
 *   valid metrics: binary loss / accuracy / ROC AUC; next_item valid loss and HR@10 / NDCG@10 /
 *     MRR for full ranking and sampled-99 (negatives from --negatives, a file written with the
 *     peer's `negatives` by core_vs_torch.sh, else drawn here with a different generator),
 *     plus the popularity baseline. All through us_metrics.h.
 *   peak_rss_mb: ru_maxrss at the end (includes the folded tables); rss_after_train_mb before
 *     any scorer exists.
 * next_item quality runs (test/bench/nextitem_parity.sh, README "Next-item quality") also use:
 *   --repeat off|auto|W  the repeat prior (default off here; userseq_train's repeat_prior is auto),
 *     fitted together with the transition weight when either is auto (us_model_fit_prior)
 *   --transitions off|auto|W  the transition prior (default off here; userseq_train's default is
 *     auto): built from the training lines after the best epoch is restored, its weight fitted
 *     on the validation split (auto) or W
 *   --protocol heldout|loo  heldout: the last round(f*N) lines are held-out users (input all but
 *     the last id); loo: SASRec's leave-one-out (train on all but the last two ids of every line,
 *     validate on the second-to-last, --report-test 1 also the last), as torch_textcnn.py does
 *   --n-neg N (sampled candidates; --negatives FILE, loo also FILE.test, from torch_textcnn.py
 *     negatives), --tie, --recent-window, --embed-init-std, --clip-norm, --weight-decay,
 *     --embed-dropout, --optimizer adamw, --train-negatives M (sampled softmax), --patience P, --batch-examples 1
 *     (--batch counts training examples; a timed step then counts as the epoch's sequences / steps),
 *     --arch sasrec --blocks B --heads H (userseq_train's "architecture": "sasrec", default 2 and 1),
 *     --keep-last 1 (report the last epoch, not the best: for test runs with the epoch count
 *     chosen on validation), --save FILE (the trained model as us_model_encode writes it, for
 *     bench_scorer's next_item_file)
 *   After every epoch the validation metrics; the model of the best epoch (validation NDCG@10
 *     over the full catalogue, as userseq_train) is restored for the summary, which adds the
 *     popularity and first-order markov baselines (transitions of the training part and the
 *     evaluated inputs, ties by popularity) on the same candidates.
 * Threads: --threads T trains with the core's T worker threads and BLAS on one thread (as the
 * extension does), predicts batches with T BLAS threads, and scores single sequences on one. It does not compute the file's SHA-256 (the script does).
 */
#include <cblas.h>

#include "bench_common.h"
#include "userseq/us_format.h"
#include "userseq/us_metrics.h"
#include "userseq/us_model.h"
#include "userseq/us_rng.h"

#define INFER_BATCH 1024
#define TOP_K 10
#define MAX_NEG 1000
#define US_TRANS_GRID_MAX 81	/* the fit's pairs: 9 x 9 at most */

static int	N_NEG = 99;		/* sampled candidates per evaluated sequence (--n-neg) */

typedef struct opts
{
	const char *data;
	const char *task;
	const char *negatives;
	const char *save;			/* --save FILE: the trained model, us_model_encode */
	int32_t		vocab;
	int32_t		max_len, embed, filters, hidden, batch, epochs, max_steps, warmup, threads;
	int32_t		n_widths;
	int32_t		widths[US_MAX_WIDTHS];
	int32_t		max_ex, infer_batches;
	int32_t		tie, recent, loo, patience, report_test, train_neg, adamw, batch_examples, keep_last;
	int32_t		sasrec, blocks, heads;	/* --arch sasrec --blocks B --heads H */
	float		dropout, lr, init_std, clip, wd, embed_dropout;
	double		valid_fraction, score_seconds;
	double		transitions;	/* transition prior: -1 off (default), -2 auto (fitted), >= 0 fixed */
	double		repeat;			/* repeat prior (--repeat): the same codes */
	uint64_t	seed, negatives_seed;
} opts;

typedef struct step_clock
{
	double		last;
	int64_t		step;			/* global optimizer steps so far */
	int64_t		warmup;
	int64_t		max_steps;		/* 0: no limit */
	int32_t		batch;
	int32_t		batch_examples;	/* --batch counts examples */
	int32_t		n_train;
	int64_t		in_epoch;		/* steps of the current epoch */
	double		timed_s;		/* run totals over steps after warm-up */
	int64_t		timed_seqs;
	double		ep_timed_s;		/* current epoch */
	int64_t		ep_timed_seqs;
} step_clock;

static void
die(const char *what)
{
	fprintf(stderr, "core_train: %s\n", what);
	exit(1);
}

static void
check(us_status st, const char *what)
{
	char		msg[256];

	if (st != US_OK)
	{
		snprintf(msg, sizeof msg, "%s: %s", what, us_status_str(st));
		die(msg);
	}
}

static void *
xmalloc(size_t n)
{
	void	   *p = malloc(n ? n : 1);

	if (p == NULL)
		die("out of memory");
	return p;
}

/* progress callback: time every optimizer step; stop after --max-steps */
static int
on_step(void *ctx, int64_t done, int64_t total)
{
	step_clock *c = ctx;
	double		t = bench_now();
	int64_t		b0 = (done - 1) * c->batch;
	int64_t		nb = c->n_train - b0 < c->batch ? c->n_train - b0 : c->batch;

	/* --batch-examples: the trainer packs whole sequences into steps of up to --batch
	 * examples, so a step counts as an even share of the epoch's sequences (exact per epoch) */
	if (c->batch_examples && total > 0)
		nb = done * c->n_train / total - (done - 1) * c->n_train / total;
	c->step++;
	c->in_epoch = done;
	if (c->step > c->warmup)
	{
		c->timed_s += t - c->last;
		c->ep_timed_s += t - c->last;
		c->timed_seqs += nb;
		c->ep_timed_seqs += nb;
	}
	c->last = bench_now();
	return c->max_steps > 0 && c->step >= c->max_steps;
}

static void
parse_widths(const char *s, opts *o)
{
	char	   *end;

	o->n_widths = 0;
	while (*s)
	{
		long		k = strtol(s, &end, 10);

		if (end == s || k < 1 || k > US_MAX_FILTER_WIDTH || o->n_widths == US_MAX_WIDTHS)
			die("--widths: comma-separated widths 1..16");
		o->widths[o->n_widths++] = (int32_t) k;
		s = *end == ',' ? end + 1 : end;
		if (*end != ',' && *end != '\0')
			die("--widths: comma-separated widths");
	}
}

static void
parse_args(int argc, char **argv, opts *o)
{
	memset(o, 0, sizeof(*o));
	o->task = "binary";
	o->max_len = 100;
	o->embed = 128;
	o->filters = 128;
	o->hidden = 128;
	o->batch = 256;
	o->epochs = 2;
	o->warmup = 5;
	o->threads = 1;
	o->transitions = -1.0;
	o->repeat = -1.0;
	o->infer_batches = 8;
	o->dropout = 0.5f;
	o->lr = 1e-3f;
	o->valid_fraction = 0.1;
	o->score_seconds = 2.0;
	o->seed = 12345;
	o->blocks = 2;
	o->heads = 1;
	o->negatives_seed = 1;
	parse_widths("3,4,5", o);
	for (int i = 1; i < argc; i++)
	{
		const char *a = argv[i];
		const char *v = i + 1 < argc ? argv[i + 1] : NULL;

		if (v == NULL)
			die("every option takes a value; see the comment at the top of core_train.c");
		i++;
		if (!strcmp(a, "--data"))
			o->data = v;
		else if (!strcmp(a, "--task"))
			o->task = v;
		else if (!strcmp(a, "--save"))
			o->save = v;
		else if (!strcmp(a, "--negatives"))
			o->negatives = v;
		else if (!strcmp(a, "--vocab"))
			o->vocab = atoi(v);
		else if (!strcmp(a, "--max-len"))
			o->max_len = atoi(v);
		else if (!strcmp(a, "--embed"))
			o->embed = atoi(v);
		else if (!strcmp(a, "--filters"))
			o->filters = atoi(v);
		else if (!strcmp(a, "--widths"))
			parse_widths(v, o);
		else if (!strcmp(a, "--hidden"))
			o->hidden = atoi(v);
		else if (!strcmp(a, "--dropout"))
			o->dropout = strtof(v, NULL);
		else if (!strcmp(a, "--lr"))
			o->lr = strtof(v, NULL);
		else if (!strcmp(a, "--batch"))
			o->batch = atoi(v);
		else if (!strcmp(a, "--epochs"))
			o->epochs = atoi(v);
		else if (!strcmp(a, "--max-steps"))
			o->max_steps = atoi(v);
		else if (!strcmp(a, "--warmup-steps"))
			o->warmup = atoi(v);
		else if (!strcmp(a, "--threads"))
			o->threads = atoi(v);
		else if (!strcmp(a, "--seed"))
			o->seed = strtoull(v, NULL, 10);
		else if (!strcmp(a, "--valid-fraction"))
			o->valid_fraction = strtod(v, NULL);
		else if (!strcmp(a, "--max-examples-per-seq"))
			o->max_ex = atoi(v);
		else if (!strcmp(a, "--negatives-seed"))
			o->negatives_seed = strtoull(v, NULL, 10);
		else if (!strcmp(a, "--infer-batches"))
			o->infer_batches = atoi(v);
		else if (!strcmp(a, "--score-seconds"))
			o->score_seconds = strtod(v, NULL);
		else if (!strcmp(a, "--keep-last"))
			o->keep_last = atoi(v);
		else if (!strcmp(a, "--batch-examples"))
			o->batch_examples = atoi(v);
		else if (!strcmp(a, "--tie"))
			o->tie = atoi(v);
		else if (!strcmp(a, "--recent-window"))
			o->recent = atoi(v);
		else if (!strcmp(a, "--protocol"))
		{
			if (strcmp(v, "heldout") && strcmp(v, "loo"))
				die("--protocol is heldout or loo");
			o->loo = !strcmp(v, "loo");
		}
		else if (!strcmp(a, "--n-neg"))
			N_NEG = atoi(v);
		else if (!strcmp(a, "--patience"))
			o->patience = atoi(v);
		else if (!strcmp(a, "--report-test"))
			o->report_test = atoi(v);
		else if (!strcmp(a, "--train-negatives"))
			o->train_neg = atoi(v);
		else if (!strcmp(a, "--optimizer"))
			o->adamw = !strcmp(v, "adamw");
		else if (!strcmp(a, "--embed-init-std"))
			o->init_std = strtof(v, NULL);
		else if (!strcmp(a, "--clip-norm"))
			o->clip = strtof(v, NULL);
		else if (!strcmp(a, "--weight-decay"))
			o->wd = strtof(v, NULL);
		else if (!strcmp(a, "--embed-dropout"))
			o->embed_dropout = strtof(v, NULL);
		else if (!strcmp(a, "--arch"))
		{
			if (strcmp(v, "textcnn") && strcmp(v, "sasrec"))
				die("--arch is textcnn or sasrec");
			o->sasrec = !strcmp(v, "sasrec");
		}
		else if (!strcmp(a, "--blocks"))
			o->blocks = atoi(v);
		else if (!strcmp(a, "--heads"))
			o->heads = atoi(v);
		else if (!strcmp(a, "--transitions"))
			o->transitions = !strcmp(v, "off") ? -1.0 : !strcmp(v, "auto") ? -2.0 : strtod(v, NULL);
		else if (!strcmp(a, "--repeat"))
			o->repeat = !strcmp(v, "off") ? -1.0 : !strcmp(v, "auto") ? -2.0 : strtod(v, NULL);
		else
		{
			fprintf(stderr, "core_train: unknown option %s\n", a);
			exit(2);
		}
	}
	if (o->data == NULL || o->vocab < 2)
		die("need --data FILE and --vocab V (the generator's value)");
	if (strcmp(o->task, "binary") && strcmp(o->task, "next_item"))
		die("--task is binary or next_item");
	if (!(o->valid_fraction > 0.0 && o->valid_fraction < 1.0))
		die("--valid-fraction must lie strictly between 0 and 1");
	if (N_NEG < 1 || N_NEG > MAX_NEG)
		die("--n-neg must be 1..1000");
	if (o->loo && strcmp(o->task, "next_item"))
		die("--protocol loo is for next_item");
	if (o->epochs < 1 || o->batch < 1 || o->threads < 1 || o->warmup < 0 || o->infer_batches < 1)
		die("--epochs, --batch, --threads, --infer-batches must be >= 1, --warmup-steps >= 0");
}

/* Reads N_NEG ids per validation sequence (one line each) and maps them to rows. */
static int32_t *
read_negatives(const char *path, int32_t n_valid, int32_t vocab)
{
	bench_tsv	t;
	char		err[512];
	int32_t    *rows;

	/* the TSV format with an empty label column */
	if (bench_tsv_read(path, vocab, &t, err, sizeof err))
		die(err);
	if (t.n != n_valid)
		die("--negatives: need one line per validation sequence");
	rows = xmalloc(sizeof(int32_t) * (size_t) n_valid * N_NEG);
	for (int32_t s = 0; s < n_valid; s++)
	{
		if (t.off[s + 1] - t.off[s] != N_NEG)
			die("--negatives: need --n-neg ids per line");
		for (int j = 0; j < N_NEG; j++)
			rows[(size_t) s * N_NEG + j] = t.ids[t.off[s] + j] + 1;
	}
	bench_tsv_free(&t);
	return rows;
}

/* Fallback sampler: 99 distinct ids absent from the sequence, uniform (not numpy's draws). */
static int32_t *
draw_negatives(const int32_t *items, const int64_t *off, int32_t n_valid, const int32_t *targets,
			   int32_t n_rows, uint64_t seed)
{
	int32_t    *rows = xmalloc(sizeof(int32_t) * (size_t) n_valid * N_NEG);
	uint8_t    *seen = calloc((size_t) n_rows, 1);
	us_rng		rng;

	if (seen == NULL)
		die("out of memory");
	us_rng_seed(&rng, seed);
	for (int32_t s = 0; s < n_valid; s++)
	{
		int			got = 0;

		for (int64_t i = off[s]; i < off[s + 1]; i++)
			seen[items[i]] = 1;
		seen[targets[s]] = 1;
		while (got < N_NEG)
		{
			int32_t		r = 2 + (int32_t) us_rng_below(&rng, (uint64_t) n_rows - 2);

			if (!seen[r])
			{
				seen[r] = 1;
				rows[(size_t) s * N_NEG + got++] = r;
			}
		}
		for (int64_t i = off[s]; i < off[s + 1]; i++)
			seen[items[i]] = 0;
		seen[targets[s]] = 0;
		for (int j = 0; j < N_NEG; j++)
			seen[rows[(size_t) s * N_NEG + j]] = 0;
	}
	free(seen);
	return rows;
}

/* HR@10 / NDCG@10 / MRR of a target against all item rows and against its sampled set */
typedef struct rank_acc
{
	us_ranking_metrics full,
				sampled;
} rank_acc;

static void
rank_init(rank_acc *r)
{
	int			k = TOP_K;

	us_ranking_init(&r->full, &k, 1);
	us_ranking_init(&r->sampled, &k, 1);
}

static void
rank_add(rank_acc *r, const float *scores, int32_t n_rows, int32_t target, const int32_t *neg,
		 const uint8_t *skip)
{
	float		cand[MAX_NEG + 1];

	us_ranking_add(&r->full, us_rank_of_target(scores, (size_t) n_rows, (size_t) target, skip));
	cand[0] = scores[target];
	for (int j = 0; j < N_NEG; j++)
		cand[j + 1] = scores[neg[j]];
	us_ranking_add(&r->sampled, us_rank_of_target(cand, N_NEG + 1, 0, NULL));
}

static void
print_ranking(const char *name, const us_ranking_metrics *m)
{
	double		hr,
				ndcg,
				mrr;

	us_ranking_result(m, &hr, &ndcg, &mrr);
	printf("\"%s\": {\"hr@10\": %.6f, \"ndcg@10\": %.6f, \"mrr\": %.6f}", name, hr, ndcg, mrr);
}

/* top-10 rows >= 2 of a logit row, best first (insertion into a sorted list of 10) */
static float
top10(const float *x, int32_t n, int32_t *best)
{
	float		bs[TOP_K];
	int			k = 0;

	for (int32_t r = 2; r < n; r++)
	{
		float		v = x[r];
		int			j;

		if (k == TOP_K && v <= bs[TOP_K - 1])
			continue;
		j = k < TOP_K ? k++ : TOP_K - 1;
		while (j > 0 && bs[j - 1] < v)
		{
			bs[j] = bs[j - 1];
			best[j] = best[j - 1];
			j--;
		}
		bs[j] = v;
		best[j] = r;
	}
	return bs[0];
}

typedef struct eval_out
{
	double		loss;
	double		accuracy, auc;	/* binary */
	rank_acc	rank;			/* next_item */
} eval_out;

/* Validation metrics of the current model over the validation dataset vd. */
static void
evaluate(const us_model *m, const us_dataset *vd, int next_item, const int32_t *neg,
		 const uint8_t *skip, eval_out *e)
{
	int32_t		nv = vd->n_seqs;
	int32_t		O = m->cfg.n_outputs;
	int32_t		chunk = next_item ? 256 : INFER_BATCH;
	float	   *out = xmalloc(sizeof(float) * (size_t) chunk * O);
	double	   *prob = xmalloc(sizeof(double) * nv);
	uint8_t    *lab = xmalloc(nv);
	int32_t    *ids = xmalloc(sizeof(int32_t) * nv);
	double		loss_sum = 0.0;
	int64_t		correct = 0;

	memset(e, 0, sizeof(*e));
	rank_init(&e->rank);
	for (int32_t s = 0; s < nv; s++)
		ids[s] = s;
	for (int32_t s0 = 0; s0 < nv; s0 += chunk)
	{
		int32_t		n = nv - s0 < chunk ? nv - s0 : chunk;
		double		l = 0.0;

		check(us_model_predict(m, vd, ids + s0, n, out, NULL, &l, NULL), "us_model_predict");
		loss_sum += l * n;
		for (int32_t i = 0; i < n; i++)
		{
			int32_t		s = s0 + i;

			if (next_item)
				rank_add(&e->rank, out + (size_t) i * O, O, vd->classes[s], neg + (size_t) s * N_NEG,
						 skip);
			else
			{
				prob[s] = out[i];
				lab[s] = vd->targets[s] > 0.5f;
				correct += (out[i] > 0.5f) == lab[s];
			}
		}
	}
	e->loss = loss_sum / nv;
	if (!next_item)
	{
		e->accuracy = (double) correct / nv;
		check(us_roc_auc(prob, lab, NULL, (size_t) nv, us_malloc_allocator(), &e->auc), "us_roc_auc");
	}
	free(out);
	free(prob);
	free(lab);
	free(ids);
}

static void
print_eval(const eval_out *e, int next_item)
{
	if (next_item)
	{
		printf("\"valid_loss\": %.6f, ", e->loss);
		print_ranking("full_ranking", &e->rank.full);
		printf(", ");
		print_ranking("sampled_99", &e->rank.sampled);
	}
	else
		printf("\"valid_loss\": %.6f, \"valid_accuracy\": %.6f, \"valid_auc\": %.6f",
			   e->loss, e->accuracy, e->auc);
}

/* sequences/s of us_model_predict, batches of 1024 validation sequences, 1 warm-up batch */
static double
measure_predict(const us_model *m, const us_dataset *vd, int next_item, int n_batches)
{
	int32_t		O = m->cfg.n_outputs;
	float	   *out = xmalloc(sizeof(float) * (size_t) INFER_BATCH * O);
	int32_t    *ids = xmalloc(sizeof(int32_t) * INFER_BATCH);
	int32_t		best[TOP_K];
	volatile float sink = 0;
	double		t0 = 0;

	for (int b = 0; b <= n_batches; b++)
	{
		if (b == 1)
			t0 = bench_now();
		for (int i = 0; i < INFER_BATCH; i++)
			ids[i] = (int32_t) (((int64_t) b * INFER_BATCH + i) % vd->n_seqs);
		check(us_model_predict(m, vd, ids, INFER_BATCH, out, NULL, NULL, NULL), "us_model_predict");
		if (next_item)
			for (int i = 0; i < INFER_BATCH; i++)
				sink += top10(out + (size_t) i * O, O, best);
		else
			sink += out[0];
	}
	t0 = bench_now() - t0;
	free(out);
	free(ids);
	return n_batches * (double) INFER_BATCH / t0;
}

/* sequences/s of the scorer, one sequence per call, cycling the validation set for >= secs */
static double
measure_scorer(us_scorer *sc, const us_dataset *vd, int next_item, int32_t O, double secs)
{
	float	   *out = xmalloc(sizeof(float) * O);
	int32_t		rows[TOP_K];
	float		scores[TOP_K];
	int32_t		nf;
	volatile float sink = 0;
	int64_t		done = 0;
	double		t0 = 0,
				el = 0;

	for (int pass = 0;; pass++)
	{
		for (int i = 0; i < 256; i++, done++)
		{
			int32_t		s = (int32_t) (done % vd->n_seqs);
			us_events	ev = {vd->items + vd->offsets[s], NULL, NULL,
			(int32_t) (vd->offsets[s + 1] - vd->offsets[s])};

			if (next_item)
			{
				check(us_scorer_topk(sc, &ev, TOP_K, 0, rows, scores, &nf), "us_scorer_topk");
				sink += scores[0];
			}
			else
			{
				check(us_scorer_forward(sc, &ev, out, NULL), "us_scorer_forward");
				sink += out[0];
			}
		}
		if (pass == 0)			/* first 256 calls are warm-up */
		{
			done = 0;
			t0 = bench_now();
			continue;
		}
		el = bench_now() - t0;
		if (el >= secs)
			break;
	}
	free(out);
	return done / el;
}

/* max |scorer - us_model_predict| over the first sequences (they must agree) */
static double
scorer_agreement(const us_model *m, us_scorer *sc, const us_dataset *vd, int32_t n)
{
	int32_t		O = m->cfg.n_outputs;
	float	   *a = xmalloc(sizeof(float) * O);
	float	   *b = xmalloc(sizeof(float) * O);
	double		worst = 0;

	for (int32_t s = 0; s < n && s < vd->n_seqs; s++)
	{
		us_events	ev = {vd->items + vd->offsets[s], NULL, NULL,
		(int32_t) (vd->offsets[s + 1] - vd->offsets[s])};

		check(us_scorer_forward(sc, &ev, a, NULL), "us_scorer_forward");
		check(us_model_predict(m, vd, &s, 1, b, NULL, NULL, NULL), "us_model_predict");
		for (int32_t o = (O > 1 ? 2 : 0); o < O; o++)
			if (fabs((double) a[o] - b[o]) > worst)
				worst = fabs((double) a[o] - b[o]);
	}
	free(a);
	free(b);
	return worst;
}

/*
 * --protocol loo (SASRec's leave-one-out): t becomes [each line's ids but its last two, for
 * lines with >= 4 ids] then [each line with >= 3 ids without its last id] (the validation
 * part: its last id is the target); test gets every line with >= 3 ids as is (its last id is
 * the test target). Returns the number of validation lines.
 */
static int32_t
loo_transform(bench_tsv *t, bench_tsv *test)
{
	bench_tsv	o;
	int64_t		n_ids = 0;
	int32_t		n = 0,
				nv = 0;

	memset(&o, 0, sizeof o);
	memset(test, 0, sizeof *test);
	o.off = xmalloc(sizeof(int64_t) * (2 * (size_t) t->n + 1));
	o.ids = xmalloc(sizeof(int32_t) * (2 * (size_t) t->off[t->n] + 1));
	o.label = xmalloc(sizeof(float) * (2 * (size_t) t->n + 1));
	test->off = xmalloc(sizeof(int64_t) * ((size_t) t->n + 1));
	test->ids = xmalloc(sizeof(int32_t) * ((size_t) t->off[t->n] + 1));
	test->label = xmalloc(sizeof(float) * ((size_t) t->n + 1));
	o.off[0] = 0;
	test->off[0] = 0;
	for (int pass = 0; pass < 2; pass++)
		for (int32_t s = 0; s < t->n; s++)
		{
			int64_t		a = t->off[s],
						len = t->off[s + 1] - a;
			int64_t		keep = pass == 0 ? len - 2 : len - 1;

			if ((pass == 0 && len < 4) || (pass == 1 && len < 3))
				continue;
			memcpy(o.ids + n_ids, t->ids + a, sizeof(int32_t) * keep);
			n_ids += keep;
			o.label[n] = NAN;
			o.off[++n] = n_ids;
			if (pass == 1)
			{
				nv++;
				memcpy(test->ids + test->off[test->n], t->ids + a, sizeof(int32_t) * len);
				test->label[test->n] = NAN;
				test->off[test->n + 1] = test->off[test->n] + len;
				test->n++;
			}
		}
	o.n = n;
	o.max_id = t->max_id;
	test->max_id = t->max_id;
	bench_tsv_free(t);
	*t = o;
	return nv;
}

/* next_item evaluation set from lines s0..s1-1 of t: input = all but the last id (the
 * target); lines with < 2 ids are left out. */
static void
build_eval(const bench_tsv *t, int32_t s0, int32_t s1, us_dataset *d)
{
	int64_t    *off = xmalloc(sizeof(int64_t) * ((size_t) (s1 - s0) + 1));
	int32_t    *items = xmalloc(sizeof(int32_t) * (size_t) (t->off[s1] - t->off[s0] + 1));
	int32_t    *cls = xmalloc(sizeof(int32_t) * ((size_t) (s1 - s0) + 1));
	int32_t		k = 0;
	int64_t		n = 0;

	off[0] = 0;
	for (int32_t s = s0; s < s1; s++)
	{
		int64_t		a = t->off[s],
					b = t->off[s + 1];

		if (b - a < 2)
			continue;
		cls[k] = t->ids[b - 1] + 1;
		for (int64_t i = a; i < b - 1; i++)
			items[n++] = t->ids[i] + 1;
		off[++k] = n;
	}
	memset(d, 0, sizeof *d);
	d->n_seqs = k;
	d->offsets = off;
	d->items = items;
	d->classes = cls;
}

/*
 * Baselines on an evaluation set, ranked like the model (double scores): popularity = training
 * counts; first-order markov = count(last input item -> candidate) over the transitions of the
 * training sequences and the evaluated inputs (each cut to its last L events), ties by
 * popularity. Rows are item rows (id + 1).
 */
static int
cmp_i64(const void *a, const void *b)
{
	int64_t		x = *(const int64_t *) a,
				y = *(const int64_t *) b;

	return (x > y) - (x < y);
}

static int64_t
rank_double(const double *sc, int32_t n_rows, int32_t target)
{
	int64_t		r = 0;

	for (int32_t i = 2; i < n_rows; i++)
		r += sc[i] >= sc[target];
	return r;
}

static void
baselines(const us_dataset *td, const int32_t *train_ids, int32_t n_train, const us_dataset *ed,
		  const int32_t *neg, const uint32_t *counts, int32_t n_rows, int32_t L,
		  us_ranking_metrics out[4])	/* pop full, pop sampled, markov full, markov sampled */
{
	int64_t		cap = 0,
				np = 0;
	int64_t    *pairs;
	int64_t    *first = xmalloc(sizeof(int64_t) * ((size_t) n_rows + 1));
	int32_t    *nxt;
	int32_t    *cnt;
	int64_t		nu = 0;
	double	   *pop = xmalloc(sizeof(double) * n_rows),
			   *sc = xmalloc(sizeof(double) * n_rows);
	double		maxpop = 0;
	int			k = TOP_K;

	for (int32_t s = 0; s < n_train; s++)
		cap += td->offsets[train_ids[s] + 1] - td->offsets[train_ids[s]];
	cap += ed->offsets[ed->n_seqs];
	pairs = xmalloc(sizeof(int64_t) * ((size_t) cap + 1));
	for (int pass = 0; pass < 2; pass++)
	{
		const us_dataset *d = pass == 0 ? td : ed;
		int32_t		n = pass == 0 ? n_train : ed->n_seqs;

		for (int32_t i = 0; i < n; i++)
		{
			int32_t		s = pass == 0 ? train_ids[i] : i;
			int64_t		b = d->offsets[s + 1],
						a = b - d->offsets[s] > L ? b - L : d->offsets[s];

			for (int64_t j = a + 1; j < b; j++)
				pairs[np++] = (int64_t) d->items[j - 1] * n_rows + d->items[j];
		}
	}
	qsort(pairs, (size_t) np, sizeof(int64_t), cmp_i64);
	nxt = xmalloc(sizeof(int32_t) * ((size_t) np + 1));
	cnt = xmalloc(sizeof(int32_t) * ((size_t) np + 1));
	for (int32_t r = 0; r <= n_rows; r++)
		first[r] = -1;
	for (int64_t i = 0; i < np; i++)
	{
		if (i > 0 && pairs[i] == pairs[i - 1])
		{
			cnt[nu - 1]++;
			continue;
		}
		if (first[pairs[i] / n_rows] < 0)
			first[pairs[i] / n_rows] = nu;
		nxt[nu] = (int32_t) (pairs[i] % n_rows);
		cnt[nu] = 1;
		pairs[nu] = pairs[i] / n_rows;	/* now: the source row of unique pair nu */
		nu++;
	}
	pop[0] = pop[1] = 0;
	for (int32_t r = 2; r < n_rows; r++)
	{
		pop[r] = counts[r - 2];
		if (pop[r] > maxpop)
			maxpop = pop[r];
	}
	for (int q = 0; q < 4; q++)
		us_ranking_init(&out[q], &k, 1);
	for (int32_t s = 0; s < ed->n_seqs; s++)
	{
		int32_t		tg = ed->classes[s];
		const int32_t *ng = neg + (size_t) s * N_NEG;
		int64_t		b = ed->offsets[s + 1];

		for (int m = 0; m < 2; m++)
		{
			int64_t		rs = 1;

			if (m == 0)
				memcpy(sc, pop, sizeof(double) * n_rows);
			else
			{
				for (int32_t r = 0; r < n_rows; r++)
					sc[r] = pop[r] / (maxpop + 1.0);
				if (b > ed->offsets[s])
				{
					int32_t		last = ed->items[b - 1];

					if (first[last] >= 0)
						for (int64_t u = first[last]; u < nu && pairs[u] == last; u++)
							sc[nxt[u]] += cnt[u];
				}
			}
			us_ranking_add(&out[2 * m], rank_double(sc, n_rows, tg));
			for (int j = 0; j < N_NEG; j++)
				rs += sc[ng[j]] >= sc[tg];
			us_ranking_add(&out[2 * m + 1], rs);
		}
	}
	free(pairs);
	free(first);
	free(nxt);
	free(cnt);
	free(pop);
	free(sc);
}

int
main(int argc, char **argv)
{
	opts		o;
	bench_tsv	tsv;
	char		err[512];
	double		wall0 = bench_now(),
				load0,
				load_s;
	int			next_item;
	int32_t		V,
				n_rows,
				n_valid,
				n_train;
	int32_t    *rows;			/* all ids mapped to item rows */
	us_dataset	td,
				vd;
	int64_t    *voff;
	int32_t    *vitems,
			   *vclass = NULL,
			   *train_ids,
			   *neg = NULL;
	float	   *vtarget = NULL;
	uint8_t    *skip;
	us_vocab	voc;
	us_model_config cfg;
	us_train_config tc;
	us_model   *m = NULL;
	us_trainer *tr = NULL;
	step_clock	clk;
	us_progress prog = {on_step, &clk};
	char		msg[256];
	eval_out	ev;
	double		rss_train;
	int64_t		total_examples = 0,
				total_seqs = 0;
	int			epochs_done = 0;
	int64_t		ex_per_epoch = 0;	/* training examples of one epoch (binary: sequences) */
	const char *coretype = getenv("OPENBLAS_CORETYPE");
	const char *blas_env = getenv("OPENBLAS_NUM_THREADS");
	us_ranking_metrics pop_full,
				pop_sampled;
	us_ranking_metrics base[2][4];	/* valid, test: popularity full / sampled, markov full / sampled */
	bench_tsv	test_tsv;
	us_dataset	xd;				/* loo: test set */
	int32_t    *xneg = NULL;
	us_model   *best = NULL;
	int			best_epoch = 0,
				bad = 0;
	double		best_metric = -1.0;
	eval_out	xev;
	char		grid_txt[4096] = "";
	double		trans_s = 0.0;

	parse_args(argc, argv, &o);
	/* training threads are the core's own (tc.n_threads) with BLAS on one thread, as the
	 * extension runs it; batched prediction uses BLAS threads (see measure_predict) */
	openblas_set_num_threads(1);
	next_item = !strcmp(o.task, "next_item");
	V = o.vocab;
	n_rows = V + 1;

	/* ---- load (timed separately, as the peer's data_load_s) */
	load0 = bench_now();
	if (bench_tsv_read(o.data, V, &tsv, err, sizeof err))
		die(err);
	if (tsv.n < 2)
		die("need at least 2 sequences");
	memset(&xd, 0, sizeof xd);
	memset(&test_tsv, 0, sizeof test_tsv);
	if (o.loo)
	{
		n_valid = loo_transform(&tsv, &test_tsv);
		build_eval(&test_tsv, 0, test_tsv.n, &xd);
	}
	else
		n_valid = (int32_t) nearbyint(o.valid_fraction * tsv.n);	/* ties to even, as Python's round */
	n_train = tsv.n - n_valid;
	if (n_train < 1 || n_valid < 1)
		die("--valid-fraction leaves no training or no validation sequences");
	rows = xmalloc(sizeof(int32_t) * (size_t) (tsv.off[tsv.n] ? tsv.off[tsv.n] : 1));
	for (int64_t i = 0; i < tsv.off[tsv.n]; i++)
		rows[i] = tsv.ids[i] + 1;

	/* training set: the first n_train lines (next_item: lines with >= 2 ids, as the peer) */
	train_ids = xmalloc(sizeof(int32_t) * n_train);
	{
		int32_t		k = 0;

		for (int32_t s = 0; s < n_train; s++)
		{
			if (!next_item && isnan(tsv.label[s]))
				die("--task binary needs a 0/1 label on every line");
			if (!next_item || tsv.off[s + 1] - tsv.off[s] >= 2)
				train_ids[k++] = s;
		}
		n_train = k;
	}
	memset(&td, 0, sizeof td);
	td.n_seqs = tsv.n;
	td.offsets = tsv.off;
	td.items = rows;
	td.targets = next_item ? NULL : tsv.label;

	/* validation set: binary as is; next_item: input = all but the last id, target = last id */
	voff = xmalloc(sizeof(int64_t) * (n_valid + 1));
	vitems = xmalloc(sizeof(int32_t) * (size_t) (tsv.off[tsv.n] - tsv.off[tsv.n - n_valid] + 1));
	if (next_item)
		vclass = xmalloc(sizeof(int32_t) * n_valid);
	else
		vtarget = xmalloc(sizeof(float) * n_valid);
	{
		int32_t		k = 0;
		int64_t		t = 0;

		voff[0] = 0;
		for (int32_t s = tsv.n - n_valid; s < tsv.n; s++)
		{
			int64_t		a = tsv.off[s],
						b = tsv.off[s + 1];

			if (next_item)
			{
				if (b - a < 2)
					continue;
				vclass[k] = rows[b - 1];
				b--;
			}
			else
			{
				if (isnan(tsv.label[s]))
					die("--task binary needs a 0/1 label on every line");
				vtarget[k] = tsv.label[s];
			}
			for (int64_t i = a; i < b; i++)
				vitems[t++] = rows[i];
			voff[++k] = t;
		}
		n_valid = k;
	}
	memset(&vd, 0, sizeof vd);
	vd.n_seqs = n_valid;
	vd.offsets = voff;
	vd.items = vitems;
	vd.targets = vtarget;
	vd.classes = vclass;
	skip = calloc((size_t) n_rows, 1);
	if (skip == NULL)
		die("out of memory");
	skip[0] = skip[1] = 1;		/* padding and OOV rows are never candidates */

	/* vocabulary = ids 1..V-1; counts = occurrences in the (truncated) training sequences */
	memset(&voc, 0, sizeof voc);
	voc.n_items = V - 1;
	voc.item_ids = xmalloc(sizeof(int64_t) * (V - 1));
	voc.item_counts = calloc((size_t) (V - 1), sizeof(uint32_t));
	if (voc.item_counts == NULL)
		die("out of memory");
	for (int32_t i = 0; i < V - 1; i++)
		voc.item_ids[i] = i + 1;
	for (int32_t k = 0; k < n_train; k++)
	{
		int32_t		s = train_ids[k];
		int64_t		a = tsv.off[s + 1] - o.max_len > tsv.off[s] ? tsv.off[s + 1] - o.max_len : tsv.off[s];

		int64_t		k_ex = tsv.off[s + 1] - a - 1;

		for (int64_t i = a; i < tsv.off[s + 1]; i++)
			voc.item_counts[rows[i] - 2]++;
		if (o.max_ex > 0 && k_ex > o.max_ex)
			k_ex = o.max_ex;
		ex_per_epoch += next_item ? (k_ex > 0 ? k_ex : 0) : 1;
	}
	if (next_item)
	{
		neg = o.negatives ? read_negatives(o.negatives, n_valid, V)
			: draw_negatives(vitems, voff, n_valid, vclass, n_rows, o.negatives_seed);
		baselines(&td, train_ids, n_train, &vd, neg, voc.item_counts, n_rows, o.max_len, base[0]);
		pop_full = base[0][0];
		pop_sampled = base[0][1];
		if (o.loo)
		{
			char		path[4096];

			snprintf(path, sizeof path, "%s.test", o.negatives ? o.negatives : "");
			xneg = o.negatives ? read_negatives(path, xd.n_seqs, V)
				: draw_negatives(xd.items, xd.offsets, xd.n_seqs, xd.classes, n_rows,
								 o.negatives_seed + 1);
			baselines(&td, train_ids, n_train, &xd, xneg, voc.item_counts, n_rows, o.max_len, base[1]);
		}
	}
	load_s = bench_now() - load0;

	/* ---- model and trainer */
	us_model_config_default(&cfg, next_item ? US_TASK_NEXT_ITEM : US_TASK_BINARY);
	cfg.n_items = n_rows;
	cfg.n_outputs = next_item ? n_rows : 1;
	cfg.max_len = o.max_len;
	cfg.embed_dim = o.embed;
	cfg.n_filters = o.filters;
	cfg.n_widths = o.n_widths;
	memcpy(cfg.widths, o.widths, sizeof(o.widths));
	cfg.hidden_dim = o.hidden;
	cfg.dropout = o.dropout;
	cfg.recent_window = o.recent;
	cfg.embed_dropout = o.embed_dropout;
	if (o.init_std > 0)			/* else the core's default for the task */
		cfg.embed_init_std = o.init_std;
	cfg.tie_output = o.tie;
	if (o.sasrec)				/* as userseq_train's "architecture": "sasrec" */
	{
		cfg.architecture = US_ARCH_SASREC;
		cfg.n_blocks = o.blocks;
		cfg.n_heads = o.heads;
		cfg.n_widths = 0;
		memset(cfg.widths, 0, sizeof(cfg.widths));
		cfg.n_filters = 0;
		cfg.recent_window = 0;
	}
	if (us_model_config_validate(&cfg, msg, sizeof msg) != US_OK)
		die(msg);
	us_train_config_default(&tc, cfg.task);
	tc.learning_rate = o.lr;
	tc.batch_size = o.batch;
	tc.epochs = o.epochs;
	tc.seed = o.seed;
	tc.n_threads = o.threads;
	tc.max_examples_per_seq = o.max_ex;
	tc.clip_norm = o.clip;
	tc.batch_examples = o.batch_examples;
	tc.weight_decay = o.wd;
	tc.optimizer = o.adamw ? US_OPT_ADAMW : US_OPT_ADAM;
	tc.n_negatives = o.train_neg;
	if (us_train_config_validate(&tc, msg, sizeof msg) != US_OK)
		die(msg);
	check(us_model_create(&cfg, &voc, o.seed, us_malloc_allocator(), &m), "us_model_create");
	check(us_trainer_create(m, &tc, us_malloc_allocator(), &tr), "us_trainer_create");

	/* ---- train, evaluate after every epoch */
	memset(&clk, 0, sizeof clk);
	clk.warmup = o.warmup;
	clk.max_steps = o.max_steps;
	clk.batch = o.batch;
	clk.batch_examples = o.batch_examples;
	clk.n_train = n_train;
	for (int32_t ep = 0; ep < o.epochs; ep++)
	{
		us_epoch_stats es;
		us_status	st;
		double		t_ep = bench_now(),
					train_s,
					ep_ex_rate;

		if (o.max_steps > 0 && clk.step >= o.max_steps)
			break;
		clk.ep_timed_s = 0;
		clk.ep_timed_seqs = 0;
		clk.last = bench_now();
		st = us_trainer_epoch(tr, &td, train_ids, n_train, ep, &prog, &es);
		if (st == US_ECANCELED)	/* --max-steps reached mid-epoch: stats are not filled */
		{
			es.loss = NAN;
			es.examples = 0;
		}
		else
			check(st, "us_trainer_epoch");
		train_s = bench_now() - t_ep;
		epochs_done++;
		ep_ex_rate = (double) ex_per_epoch / n_train;
		total_examples += (int64_t) llround(clk.ep_timed_seqs * ep_ex_rate);
		total_seqs += clk.ep_timed_seqs;
		evaluate(m, &vd, next_item, neg, skip, &ev);
		printf("{\"type\": \"epoch\", \"system\": \"userseq\", \"epoch\": %d, \"steps\": %lld, "
			   "\"train_loss\": %.6f, ", ep + 1, (long long) clk.step, es.loss);
		print_eval(&ev, next_item);
		if (o.loo && o.report_test)
		{
			evaluate(m, &xd, 1, xneg, skip, &xev);
			printf(", \"test\": {");
			print_eval(&xev, 1);
			printf("}");
		}
		printf(", \"train_examples\": %lld, \"train_examples_per_s\": %.1f, \"train_seq_per_s\": %.1f, "
			   "\"train_s\": %.3f, \"eval_s\": %.3f}\n",
			   (long long) es.examples,
			   clk.ep_timed_s > 0 ? clk.ep_timed_seqs * ep_ex_rate / clk.ep_timed_s : NAN,
			   clk.ep_timed_s > 0 ? clk.ep_timed_seqs / clk.ep_timed_s : NAN,
			   train_s, bench_now() - t_ep - train_s);
		fflush(stdout);
		if (next_item)
		{
			double		hr,
						ndcg,
						mrr;

			/* best epoch by validation NDCG@10 over the full catalogue (as userseq_train) */
			us_ranking_result(&ev.rank.full, &hr, &ndcg, &mrr);
			if (ndcg > best_metric)
			{
				best_metric = ndcg;
				best_epoch = ep + 1;
				bad = 0;
				if (best == NULL)
					check(us_model_clone(m, us_malloc_allocator(), &best), "us_model_clone");
				else
					check(us_model_copy_weights(best, m), "us_model_copy_weights");
			}
			else if (o.patience > 0 && ++bad >= o.patience)
				break;
		}
	}
	if (best && !o.keep_last)
	{
		check(us_model_copy_weights(m, best), "us_model_copy_weights");
		evaluate(m, &vd, next_item, neg, skip, &ev);
		if (o.loo && o.report_test)
			evaluate(m, &xd, 1, xneg, skip, &xev);
		us_model_free(best);
	}
	if (best && o.keep_last)
	{
		/* --keep-last: the last epoch's model (test runs: the epoch count chosen on validation) */
		evaluate(m, &vd, next_item, neg, skip, &ev);
		best_epoch = epochs_done;
		us_model_free(best);
	}
	/* the transition prior (userseq_train's transition_prior): built from the training lines
	 * after the epoch is chosen, its weight fitted on validation ("auto") or given */
	if (next_item && (o.transitions != -1.0 || o.repeat != -1.0))
	{
		double		t0 = bench_now(),
					tw = o.transitions >= 0 ? o.transitions : 0.0,
					rw = o.repeat >= 0 ? o.repeat : 0.0;
		const double *grid = o.transitions == -2.0 ? us_transition_weight_grid : &tw,
				   *rgrid = o.repeat == -2.0 ? us_transition_weight_grid : &rw;
		int			n_grid = o.transitions == -2.0 ? us_transition_weight_grid_n : 1,
					n_rgrid = o.repeat == -2.0 ? us_transition_weight_grid_n : 1;

		if (o.transitions != -1.0)
			check(us_transitions_build(m, &td, train_ids, n_train), "us_transitions_build");
		if (m->trans.n_src == 0)
		{
			grid = &tw;
			tw = 0.0;
			n_grid = 1;
		}
		if (n_grid * n_rgrid > 1)
		{
			int32_t    *vids = xmalloc(sizeof(int32_t) * (size_t) vd.n_seqs);
			double		gm[US_TRANS_GRID_MAX];
			size_t		len = 0;

			for (int32_t s = 0; s < vd.n_seqs; s++)
				vids[s] = s;
			/* loo validates the training lines' own next events: their transitions are in
			 * the table (as userseq_train's leave_one_out) */
			check(us_model_fit_prior(m, &vd, vids, vd.n_seqs, o.loo, grid, n_grid, rgrid, n_rgrid,
									 NULL, gm),
				  "us_model_fit_prior");
			/* [transition weight, repeat weight, validation NDCG@10] per pair */
			for (int g = 0; g < n_grid; g++)
				for (int q = 0; q < n_rgrid; q++)
					len += (size_t) snprintf(grid_txt + len, sizeof grid_txt - len, "%s[%g, %g, %.4f]",
											 g + q ? ", " : "", grid[g], rgrid[q], gm[g * n_rgrid + q]);
			free(vids);
		}
		else
		{
			m->trans.weight = (float) grid[0];
			m->trans.repeat_weight = (float) rgrid[0];
		}
		trans_s = bench_now() - t0;
		evaluate(m, &vd, next_item, neg, skip, &ev);
		if (o.loo && o.report_test)
			evaluate(m, &xd, 1, xneg, skip, &xev);
	}
	if (clk.step <= o.warmup)
		die("need more training steps than --warmup-steps");
	rss_train = bench_peak_rss_mb();
	if (o.save)
	{
		size_t		len = us_model_encoded_size(m);
		uint8_t    *buf = xmalloc(len);
		FILE	   *f = fopen(o.save, "wb");

		check(us_model_encode(m, buf, len), "us_model_encode");
		if (f == NULL || fwrite(buf, 1, len, f) != len || fclose(f) != 0)
			die("--save: cannot write the model file");
		free(buf);
	}

	/* ---- inference */
	{
		double		predict_rate;

		openblas_set_num_threads(o.threads);
		predict_rate = measure_predict(m, &vd, next_item, o.infer_batches);
		openblas_set_num_threads(1);	/* the scorer: one sequence per call, one thread */
		double		rate[2],
					build_s[2],
					agree[2];
		int			is_folded[2];
		size_t		fold_bytes = us_scorer_fold_bytes(&m->cfg);

		for (int f = 0; f < 2; f++)	/* f = 0: folded, 1: direct */
		{
			us_scorer  *sc = NULL;
			double		t0 = bench_now();

			check(us_scorer_create(m, f == 0 ? SIZE_MAX : 0, us_malloc_allocator(), &sc),
				  "us_scorer_create");
			build_s[f] = bench_now() - t0;
			is_folded[f] = us_scorer_is_folded(sc);
			agree[f] = scorer_agreement(m, sc, &vd, next_item ? 16 : 256);
			rate[f] = measure_scorer(sc, &vd, next_item, m->cfg.n_outputs, o.score_seconds);
			us_scorer_free(sc);
		}
		printf("{\"type\": \"summary\", \"system\": \"userseq\", \"task\": \"%s\", \"data\": \"%s\", "
			   "\"train_sequences\": %d, \"valid_sequences\": %d, \"vocab\": %d, \"item_rows\": %d, "
			   "\"max_len\": %d, \"embed\": %d, \"filters\": %d, \"widths\": [",
			   o.task, o.data, n_train, n_valid, V, n_rows, o.max_len, o.embed, o.filters);
		for (int w = 0; w < o.n_widths; w++)
			printf("%s%d", w ? ", " : "", o.widths[w]);
		printf("], \"hidden\": %d, \"dropout\": %g, \"lr\": %g, \"batch\": %d, \"padding\": \"none\", "
			   "\"epochs\": %d, \"steps\": %lld, \"warmup_steps\": %d, \"threads\": %d, "
			   "\"seed\": %llu, \"params\": %zu, ",
			   o.hidden, o.dropout, o.lr, o.batch, epochs_done, (long long) clk.step, o.warmup,
			   o.threads, (unsigned long long) o.seed, m->n_params);
		printf("\"train_examples_per_s\": %.1f, \"train_seq_per_s\": %.1f, "
			   "\"infer_seq_per_s\": %.1f, \"infer_batch\": %d, "
			   "\"infer_folded_seq_per_s\": %.1f, \"infer_direct_seq_per_s\": %.1f, "
			   "\"folded\": %s, \"fold_mb\": %.1f, \"fold_build_s\": %.3f, "
			   "\"scorer_vs_predict_max_abs_diff\": {\"folded\": %.3g, \"direct\": %.3g}, \"final\": {",
			   total_examples / clk.timed_s, total_seqs / clk.timed_s, predict_rate, INFER_BATCH,
			   rate[0], rate[1], is_folded[0] ? "true" : "false", fold_bytes / 1048576.0, build_s[0],
			   agree[0], agree[1]);
		print_eval(&ev, next_item);
		printf("}, ");
		if (next_item)
		{
			if (o.sasrec)
				printf("\"architecture\": \"sasrec\", \"num_blocks\": %d, \"num_heads\": %d, ",
					   o.blocks, o.heads);
			printf("\"negatives\": \"%s\", \"n_neg\": %d, \"protocol\": \"%s\", "
				   "\"best_epoch\": %d, \"tie\": %d, \"recent_window\": %d, \"embed_init_std\": %g, "
				   "\"clip_norm\": %g, \"weight_decay\": %g, \"embed_dropout\": %g, \"batch_examples\": %d, "
				   "\"transitions\": \"%s\", \"transition_weight\": %g, \"transition_pairs\": %lld, "
				   "\"repeat\": \"%s\", \"repeat_weight\": %g, "
				   "\"transition_grid_ndcg10\": [%s], \"transition_s\": %.3f, "
				   "\"popularity_baseline\": {",
				   o.negatives ? "file (peer sampler)" : "own draws (us_rng)", N_NEG,
				   o.loo ? "loo" : "heldout", best_epoch, o.tie, o.recent, (double) cfg.embed_init_std, o.clip,
				   o.wd, o.embed_dropout, o.batch_examples,
				   o.transitions == -1.0 ? "off" : o.transitions == -2.0 ? "auto" : "fixed",
				   (double) m->trans.weight, (long long) m->trans.nnz,
				   o.repeat == -1.0 ? "off" : o.repeat == -2.0 ? "auto" : "fixed",
				   (double) m->trans.repeat_weight, grid_txt, trans_s);
			print_ranking("full_ranking", &pop_full);
			printf(", ");
			print_ranking("sampled_99", &pop_sampled);
			printf("}, \"markov_baseline\": {");
			print_ranking("full_ranking", &base[0][2]);
			printf(", ");
			print_ranking("sampled_99", &base[0][3]);
			printf("}, ");
			if (o.loo && o.report_test)
			{
				printf("\"test\": {");
				print_eval(&xev, 1);
				printf(", \"popularity\": {");
				print_ranking("full_ranking", &base[1][0]);
				printf(", ");
				print_ranking("sampled_99", &base[1][1]);
				printf("}, \"markov\": {");
				print_ranking("full_ranking", &base[1][2]);
				printf(", ");
				print_ranking("sampled_99", &base[1][3]);
				printf("}}, ");
			}
		}
		printf("\"peak_rss_mb\": %.1f, \"rss_after_train_mb\": %.1f, \"data_load_s\": %.3f, "
			   "\"wall_s\": %.3f, \"openblas_threads\": %d, \"openblas_num_threads_env\": \"%s\", "
			   "\"openblas_coretype\": \"%s\"}\n",
			   bench_peak_rss_mb(), rss_train, load_s, bench_now() - wall0,
			   openblas_get_num_threads(), blas_env ? blas_env : "(unset)",
			   coretype ? coretype : "(autodetect)");
	}
	us_trainer_free(tr);
	us_model_free(m);
	bench_tsv_free(&tsv);
	free(rows);
	free(train_ids);
	free(voff);
	free(vitems);
	free(vclass);
	free(vtarget);
	free(neg);
	free(skip);
	free(voc.item_ids);
	free(voc.item_counts);
	return 0;
}
