/*
 * train.c: the optimizers (Adam, AdamW, SGD with momentum; lazy on embedding rows) and the
 * trainer with its threads. Batches are assembled and run through the network by batch.c,
 * which also holds the gradient checks' entry, us_model_predict and us_model_surprise, so one
 * code path serves training, the gradient checks and evaluation. Single-sequence scoring
 * lives in scorer.c.
 *
 * Embedding gradients and optimizer updates touch only the rows the batch used ("lazy" Adam as
 * TF LazyAdam / torch SparseAdam: moments of an unused row are not decayed in that step, so it
 * differs from dense Adam; weight decay likewise applies to used rows only).
 * Determinism: every reduction of ours runs in a fixed order on the calling thread.
 *
 * Threads (us_train_config.n_threads = T > 1): a step cuts the batch into T contiguous slices
 * of sequences; slice 0 runs on the caller's thread, slices 1.. on workers created with the
 * trainer, each into its own workspace, gradient block and touched-row lists (forward +
 * backward, normalised by the whole batch's example count). Negatives and the dropout mask are
 * drawn on the caller's thread in one thread's order, so T only changes the float summation
 * order: slices are summed into slice 0 in slice order, then the optimizer runs on the caller's
 * thread. Workers never allocate (workspaces are reserved beforehand and frozen), never call
 * the progress callback and run with every signal blocked; BLAS must be at 1 thread (caller).
 * Not done here: threaded reduction / optimizer and a threaded us_model_predict.
 */
#include <float.h>
#include <math.h>
#include <pthread.h>
#include <signal.h>
#include <string.h>

#include "us_vectorize.h"		/* before any definition: O3, 256-bit vectors */

#include "userseq/us_model.h"
#include "userseq/us_rng.h"
#include "us_internal.h"
#include "nn.h"

struct us_trainer
{
	us_model   *model;
	us_train_config tc;
	us_allocator alloc;
	us_ws		ws;
	float	   *grads;
	float	   *m1;
	float	   *m2;
	int64_t		t;				/* optimizer steps so far */
	uint32_t	frozen;			/* US_BLOCK_* left unchanged by the optimizer */
	int64_t		stamp;
	touch		tch[3];			/* item, behaviour, gap rows */
	/* AdamW weight decay under lazy embedding updates: log of the product of every step's
	 * decay factor so far, and per row that log when the row was last brought up to date; a
	 * row's pending decay exp(log_decay - mark) is applied when it is next touched and at the
	 * end of every epoch, so each row decays exactly as a dense update would decay it */
	double		log_decay;
	double	   *decay_mark[3];	/* NULL: no lazy decay (not AdamW, or weight_decay 0) */
	int32_t    *perm;
	int32_t    *bounds;			/* (perm_cap + 1) first shuffled sequence of every step */
	int32_t		perm_cap;
	double	   *neg_cdf;		/* sampled softmax: cumulative distribution over the rows
								 * after padding (US_ROW_OOV ..) */
	int32_t		neg_rows;
	/* threaded steps (tc.n_threads > 1): slice s of a batch runs on worker s, slice 0 on the
	 * caller's thread; workers wait on go for a new generation and signal done */
	int			nt;
	struct us_worker *wk;		/* (nt) */
	int			sync_ok;		/* mu, go, done initialised */
	pthread_mutex_t mu;
	pthread_cond_t go,
				done;
	int64_t		gen;
	int			pending;		/* workers still running the current job */
	int			quit;
	int			job;
};

/* ------------------------------------------------------------------ optimizer */

typedef struct opt_step
{
	int			kind;
	float		lr,
				b1,
				b2,
				eps,
				mom,
				wd,
				scale;			/* gradient clipping factor */
	float		bc1,
				bc2;			/* Adam bias corrections */
} opt_step;

static void
update_range(const opt_step *s, float *w, float *gr, float *m1, float *m2, size_t n)
{
	switch (s->kind)
	{
		case US_OPT_ADAM:
		case US_OPT_ADAMW:
			{
				float		a = s->lr / s->bc1;
				float		ib2 = 1.0f / s->bc2;
				float		l2 = s->kind == US_OPT_ADAM ? s->wd : 0.0f;
				float		decay = s->kind == US_OPT_ADAMW ? 1.0f - s->lr * s->wd : 1.0f;

				for (size_t i = 0; i < n; i++)
				{
					float		g = gr[i] * s->scale + l2 * w[i];

					m1[i] = s->b1 * m1[i] + (1.0f - s->b1) * g;
					m2[i] = s->b2 * m2[i] + (1.0f - s->b2) * g * g;
					w[i] = w[i] * decay - a * m1[i] / (sqrtf(m2[i] * ib2) + s->eps);
					gr[i] = 0.0f;
				}
			}
			break;
		case US_OPT_SGD:
			for (size_t i = 0; i < n; i++)
			{
				float		g = gr[i] * s->scale + s->wd * w[i];

				m1[i] = s->mom * m1[i] + g;
				w[i] -= s->lr * m1[i];
				gr[i] = 0.0f;
			}
			break;
	}
}

static double
sumsq(const float *x, size_t n)
{
	double		s = 0.0;

	for (size_t i = 0; i < n; i++)
		s += (double) x[i] * x[i];
	return s;
}

/* the embedding tables of the block: offset (floats) and rows */
static void
emb_tables(const us_model *model, size_t *off, int32_t *rows)
{
	const us_model_config *c = &model->cfg;
	size_t		E = (size_t) c->embed_dim;

	off[0] = 0;
	rows[0] = c->n_items;
	off[1] = (size_t) c->n_items * E;
	rows[1] = c->n_behaviors;
	off[2] = off[1] + (size_t) c->n_behaviors * E;
	rows[2] = c->n_gap_buckets;
}

/* multiplies a row by exp(log_factor) (its pending lazy decay); nothing when none is pending */
static void
decay_row(float *w, size_t n, double log_factor)
{
	float		f;

	if (log_factor == 0.0)
		return;
	f = (float) exp(log_factor);
	for (size_t i = 0; i < n; i++)
		w[i] *= f;
}

/*
 * Brings every row of the embedding tables up to date with its pending lazy decay (rows of
 * frozen tables do not decay: they are only marked), then, when extra is not 1, multiplies the
 * rows by extra as well (a step whose factor 1 - lr * wd is not positive, kept exact).
 */
static void
decay_flush(us_trainer *tr, double extra)
{
	us_model   *model = tr->model;
	size_t		E = (size_t) model->cfg.embed_dim;
	size_t		off[3];
	int32_t		rows[3];

	emb_tables(model, off, rows);
	for (int t = 0; t < 3; t++)
	{
		int			frozen = (tr->frozen & (US_BLOCK_ITEM_EMB << t)) != 0;

		if (tr->decay_mark[t] == NULL)
			continue;
		for (int32_t r = 0; r < rows[t]; r++)
		{
			float	   *w = model->params_block + off[t] + (size_t) r * E;

			if (!frozen)
			{
				decay_row(w, E, tr->log_decay - tr->decay_mark[t][r]);
				if (extra != 1.0)
					for (size_t i = 0; i < E; i++)
						w[i] *= (float) extra;
			}
			tr->decay_mark[t][r] = tr->log_decay;
		}
	}
}

static void
optimizer_step(us_trainer *tr, float lr)
{
	us_model   *model = tr->model;
	const us_train_config *tc = &tr->tc;
	size_t		E = (size_t) model->cfg.embed_dim;
	size_t		off[3];
	int32_t		rows[3];
	size_t		dense0;
	size_t		bounds[4];
	const uint32_t bits[3] = {US_BLOCK_CONV, US_BLOCK_DENSE, US_BLOCK_OUTPUT};
	opt_step	s,
				se;				/* the embedding rows' step */
	double		step_log = 0.0;

	emb_tables(model, off, rows);
	dense0 = off[2] + (size_t) rows[2] * E;
	/* padding rows never learn; drop what a tied output layer put there */
	for (int t = 0; t < 3; t++)
		if (rows[t] > 0)
			memset(tr->grads + off[t] + (size_t) US_ROW_PAD * E, 0, E * sizeof(float));

	tr->t++;
	s.kind = tc->optimizer;
	s.lr = lr;
	s.b1 = tc->beta1;
	s.b2 = tc->beta2;
	s.eps = tc->epsilon;
	s.mom = tc->momentum;
	s.wd = tc->weight_decay;
	s.scale = 1.0f;
	s.bc1 = (float) (1.0 - pow((double) tc->beta1, (double) tr->t));
	s.bc2 = (float) (1.0 - pow((double) tc->beta2, (double) tr->t));
	if (s.bc1 <= 0.0f)
		s.bc1 = 1.0f;
	if (s.bc2 <= 0.0f)
		s.bc2 = 1.0f;
	/* conv, dense and output lie in this order after the embeddings */
	bounds[0] = dense0;
	bounds[1] = (size_t) (model->p.dense_w - model->params_block);
	bounds[2] = (size_t) ((model->p.out_w ? model->p.out_w : model->p.out_b) - model->params_block);
	bounds[3] = model->n_params;
	/* frozen blocks: zero gradients (out of the clip norm, no update, no weight decay) */
	for (int b = 0; b < 3; b++)
		if (tr->frozen & bits[b])
			memset(tr->grads + bounds[b], 0, (bounds[b + 1] - bounds[b]) * sizeof(float));
	if (tc->clip_norm > 0.0f)
	{
		double		ss = sumsq(tr->grads + dense0, model->n_params - dense0);
		double		norm;

		for (int t = 0; t < 3; t++)
			for (int32_t i = 0; i < tr->tch[t].n && !(tr->frozen & (US_BLOCK_ITEM_EMB << t)); i++)
				ss += sumsq(tr->grads + off[t] + (size_t) tr->tch[t].list[i] * E, E);
		norm = sqrt(ss);
		if (norm > tc->clip_norm)
			s.scale = (float) (tc->clip_norm / (norm + 1e-6));
	}
	se = s;
	/* AdamW: this step's decay factor, which update_range applies to the rows it touches */
	if (tr->decay_mark[0])
	{
		double		d = 1.0 - (double) s.lr * s.wd;

		if (d > 0.0)
			step_log = log(d);
		else
		{
			/* not representable as a log: every row up to date and decayed here */
			decay_flush(tr, d);
			se.wd = 0.0f;
		}
	}
	for (int t = 0; t < 3; t++)
	{
		double	   *mark = tr->decay_mark[t];

		for (int32_t i = 0; i < tr->tch[t].n; i++)
		{
			int32_t		row = tr->tch[t].list[i];
			size_t		o = off[t] + (size_t) row * E;

			if (tr->frozen & (US_BLOCK_ITEM_EMB << t))
				memset(tr->grads + o, 0, E * sizeof(float));
			else
			{
				if (mark)
				{
					decay_row(model->params_block + o, E, tr->log_decay - mark[row]);
					mark[row] = tr->log_decay + step_log;
				}
				update_range(&se, model->params_block + o, tr->grads + o, tr->m1 + o,
							 tr->m2 ? tr->m2 + o : tr->m1 + o, E);
			}
		}
		tr->tch[t].n = 0;
	}
	tr->log_decay += step_log;
	if (tr->frozen == 0)
	{
		update_range(&s, model->params_block + dense0, tr->grads + dense0, tr->m1 + dense0,
					 tr->m2 ? tr->m2 + dense0 : tr->m1 + dense0, model->n_params - dense0);
		return;
	}
	for (int b = 0; b < 3; b++)
		if (!(tr->frozen & bits[b]))
			update_range(&s, model->params_block + bounds[b], tr->grads + bounds[b],
						 tr->m1 + bounds[b], tr->m2 ? tr->m2 + bounds[b] : tr->m1 + bounds[b],
						 bounds[b + 1] - bounds[b]);
}

void
us_trainer_freeze(us_trainer *tr, uint32_t blocks)
{
	if (tr)
		tr->frozen = blocks & US_BLOCK_ALL;
}

/* ------------------------------------------------------------------ trainer */

static void *
zalloc(const us_allocator *a, size_t n, size_t elem)
{
	size_t		bytes;
	void	   *p;

	if (!us_mul_size(n, elem, &bytes))
		return NULL;
	p = a->alloc(a->ctx, bytes ? bytes : 1);
	if (p)
		memset(p, 0, bytes);
	return p;
}

/*
 * Touched-row lists of the item, behaviour and gap tables (rows[t] rows each, none for an
 * empty table). Returns 0 if memory is short; the caller frees what was allocated.
 */
static int
touch_alloc(const us_allocator *alloc, touch *tch, const int32_t *rows)
{
	for (int t = 0; t < 3; t++)
	{
		tch[t].n_rows = rows[t];
		if (rows[t] == 0)
			continue;
		tch[t].list = zalloc(alloc, (size_t) rows[t], sizeof(int32_t));
		tch[t].stamp = zalloc(alloc, (size_t) rows[t], sizeof(int64_t));
		if (tch[t].list == NULL || tch[t].stamp == NULL)
			return 0;
	}
	return 1;
}

/* frees what touch_alloc allocated */
static void
touch_free(const us_allocator *a, touch *tch)
{
	for (int t = 0; t < 3; t++)
	{
		if (tch[t].list)
			a->free(a->ctx, tch[t].list);
		if (tch[t].stamp)
			a->free(a->ctx, tch[t].stamp);
	}
}

static us_status threads_start(us_trainer *tr);
static void threads_stop(us_trainer *tr);

us_status
us_trainer_create(us_model *model, const us_train_config *tc, const us_allocator *alloc,
				  us_trainer **out)
{
	us_trainer *tr;
	us_status	st;
	size_t		off[3];
	int32_t		rows[3];

	if (out == NULL)
		return US_EINVAL;
	*out = NULL;
	if (model == NULL || tc == NULL || alloc == NULL)
		return US_EINVAL;
	if ((st = us_train_config_validate(tc, NULL, 0)) != US_OK)
		return st;
	if ((st = us_model_config_validate(&model->cfg, NULL, 0)) != US_OK)
		return st;
	tr = zalloc(alloc, 1, sizeof(us_trainer));
	if (tr == NULL)
		return US_ENOMEM;
	tr->model = model;
	tr->tc = *tc;
	tr->alloc = *alloc;
	tr->ws.alloc = *alloc;
	st = US_ENOMEM;
	tr->grads = zalloc(alloc, model->n_params, sizeof(float));
	tr->m1 = zalloc(alloc, model->n_params, sizeof(float));
	if (tc->optimizer != US_OPT_SGD)
		tr->m2 = zalloc(alloc, model->n_params, sizeof(float));
	if (tr->grads == NULL || tr->m1 == NULL || (tc->optimizer != US_OPT_SGD && tr->m2 == NULL))
		goto fail;
	emb_tables(model, off, rows);
	if (!touch_alloc(alloc, tr->tch, rows))
		goto fail;
	if (tc->optimizer == US_OPT_ADAMW && tc->weight_decay > 0.0f)
		for (int t = 0; t < 3; t++)
			if (rows[t] > 0 && (tr->decay_mark[t] = zalloc(alloc, (size_t) rows[t], sizeof(double))) == NULL)
				goto fail;
	if (model->cfg.task == US_TASK_NEXT_ITEM && tc->n_negatives > 0)
	{
		/* unigram^0.75 over rows US_ROW_OOV..V-1 (OOV and unknown counts weigh as one occurrence) */
		int32_t		V = model->cfg.n_items;
		double		acc = 0.0;

		tr->neg_rows = V - US_ROW_OOV;
		tr->neg_cdf = zalloc(alloc, (size_t) tr->neg_rows, sizeof(double));
		if (tr->neg_cdf == NULL)
			goto fail;
		for (int32_t r = US_ROW_OOV; r < V; r++)
		{
			double		cnt = 1.0;

			if (r >= US_ROW_FIRST && model->vocab.item_counts &&
				r - US_ROW_FIRST < model->vocab.n_items &&
				model->vocab.item_counts[r - US_ROW_FIRST] > 1)
				cnt = model->vocab.item_counts[r - US_ROW_FIRST];
			acc += pow(cnt, 0.75);
			tr->neg_cdf[r - US_ROW_OOV] = acc;
		}
		for (int32_t r = 0; r < tr->neg_rows; r++)
			tr->neg_cdf[r] /= acc;
	}
	if (tc->n_threads > 1 && (st = threads_start(tr)) != US_OK)
		goto fail;
	*out = tr;
	return US_OK;

fail:
	us_trainer_free(tr);
	return st;
}

void
us_trainer_free(us_trainer *tr)
{
	us_allocator a;

	if (tr == NULL)
		return;
	a = tr->alloc;
	threads_stop(tr);
	us_ws_free(&tr->ws);
	if (tr->grads)
		a.free(a.ctx, tr->grads);
	if (tr->m1)
		a.free(a.ctx, tr->m1);
	if (tr->m2)
		a.free(a.ctx, tr->m2);
	touch_free(&a, tr->tch);
	if (tr->perm)
		a.free(a.ctx, tr->perm);
	if (tr->bounds)
		a.free(a.ctx, tr->bounds);
	if (tr->neg_cdf)
		a.free(a.ctx, tr->neg_cdf);
	for (int t = 0; t < 3; t++)
		if (tr->decay_mark[t])
			a.free(a.ctx, tr->decay_mark[t]);
	a.free(a.ctx, tr);
}

static uint64_t
mix_seed(uint64_t seed, uint64_t a, uint64_t b)
{
	return seed ^ (UINT64_C(0x9E3779B97F4A7C15) * (a + 1)) ^ (UINT64_C(0xD1B54A32D192ED03) * (b + 1));
}

static us_status
draw_negatives(us_trainer *tr, us_rng *rng)
{
	us_ws	   *ws = &tr->ws;
	int			m = tr->tc.n_negatives;
	us_status	st;
	int			H = tr->model->cfg.hidden_dim;

	if ((st = us_ws_reserve(ws, &ws->neg, (size_t) m, sizeof(int32_t))) ||
		(st = us_ws_reserve(ws, &ws->neg_logq, (size_t) m, sizeof(float))) ||
		(st = us_ws_reserve(ws, &ws->negW, (size_t) m, (size_t) H * sizeof(float))) ||
		(st = us_ws_reserve(ws, &ws->dnegW, (size_t) m, (size_t) H * sizeof(float))) ||
		(st = us_ws_reserve(ws, &ws->wpos, 1, (size_t) H * sizeof(float))))
		return st;
	for (int j = 0; j < m; j++)
	{
		double		u = us_rng_uniform(rng);
		int32_t		lo = 0,
					hi = tr->neg_rows - 1;
		double		q;

		while (lo < hi)
		{
			int32_t		mid = lo + (hi - lo) / 2;

			if (tr->neg_cdf[mid] > u)
				hi = mid;
			else
				lo = mid + 1;
		}
		q = tr->neg_cdf[lo] - (lo > 0 ? tr->neg_cdf[lo - 1] : 0.0);
		I32(ws->neg)[j] = US_ROW_OOV + lo;
		F32(ws->neg_logq)[j] = (float) log((double) m * (q > 0 ? q : 1e-12));
	}
	ws->n_neg = m;
	return US_OK;
}

/* ------------------------------------------------------------------ threaded steps */

/*
 * One slice of a threaded step. Slice 0 uses the trainer's workspace, gradients and touched
 * lists (so one thread runs exactly the unthreaded code); the others own theirs, allocated by
 * us_trainer_create, and are summed into slice 0's in slice order.
 */
typedef struct us_worker
{
	us_trainer *tr;
	int			id;
	us_ws	   *ws;
	float	   *grads;
	touch	   *tch;
	us_params	g;
	batch_opts	o;
	double		loss;
	us_status	st;
	us_ws		own_ws;
	touch		own_tch[3];
	pthread_t	th;
	int			started;
} us_worker;

#define JOB_STEP	1

static void
worker_job(us_worker *w)
{
	us_trainer *tr = w->tr;

	if (tr->job == JOB_STEP && w->ws->n_ex > 0)
		w->st = us_nn_run(tr->model, w->ws, &w->o, &w->loss);
}

static void *
worker_main(void *arg)
{
	us_worker  *w = arg;
	us_trainer *tr = w->tr;
	int64_t		seen = 0;

	pthread_mutex_lock(&tr->mu);
	for (;;)
	{
		while (tr->gen == seen && !tr->quit)
			pthread_cond_wait(&tr->go, &tr->mu);
		if (tr->quit)
			break;
		seen = tr->gen;
		pthread_mutex_unlock(&tr->mu);
		worker_job(w);
		pthread_mutex_lock(&tr->mu);
		if (--tr->pending == 0)
			pthread_cond_signal(&tr->done);
	}
	pthread_mutex_unlock(&tr->mu);
	return NULL;
}

/* runs job on every slice: workers 1.. on their threads, slice 0 here; returns when all did */
static void
run_job(us_trainer *tr, int job)
{
	pthread_mutex_lock(&tr->mu);
	tr->job = job;
	tr->pending = tr->nt - 1;
	tr->gen++;
	pthread_cond_broadcast(&tr->go);
	pthread_mutex_unlock(&tr->mu);
	worker_job(&tr->wk[0]);
	pthread_mutex_lock(&tr->mu);
	while (tr->pending > 0)
		pthread_cond_wait(&tr->done, &tr->mu);
	pthread_mutex_unlock(&tr->mu);
}

/* zeroes the gradients and touched lists of every slice (after an error or a test's read) */
static void
clear_grads(us_trainer *tr)
{
	us_model   *model = tr->model;
	size_t		E = (size_t) model->cfg.embed_dim;
	size_t		off[3];
	int32_t		rows[3];
	size_t		dense0;
	int			nt = tr->nt > 1 ? tr->nt : 1;

	emb_tables(model, off, rows);
	dense0 = off[2] + (size_t) rows[2] * E;
	for (int s = 0; s < nt; s++)
	{
		float	   *gr = s == 0 ? tr->grads : tr->wk[s].grads;
		touch	   *tc = s == 0 ? tr->tch : tr->wk[s].tch;

		for (int t = 0; t < 3; t++)
		{
			for (int32_t i = 0; i < tc[t].n; i++)
				memset(gr + off[t] + (size_t) tc[t].list[i] * E, 0, E * sizeof(float));
			if (rows[t] > 0)
				memset(gr + off[t], 0, E * sizeof(float));
			tc[t].n = 0;
		}
		memset(gr + dense0, 0, (model->n_params - dense0) * sizeof(float));
	}
}

/*
 * Sums slices 1.. into slice 0 in slice order (deterministic for a thread count) and zeroes
 * them: the embedding rows each slice touched, then the dense parameters.
 */
static void
reduce_slices(us_trainer *tr, int64_t stamp)
{
	us_model   *model = tr->model;
	size_t		E = (size_t) model->cfg.embed_dim;
	size_t		off[3];
	int32_t		rows[3];
	size_t		dense0,
				n_dense;

	emb_tables(model, off, rows);
	dense0 = off[2] + (size_t) rows[2] * E;
	n_dense = model->n_params - dense0;
	for (int s = 1; s < tr->nt; s++)
	{
		us_worker  *w = &tr->wk[s];

		for (int t = 0; t < 3; t++)
		{
			for (int32_t i = 0; i < w->tch[t].n; i++)
			{
				int32_t		row = w->tch[t].list[i];
				size_t		o = off[t] + (size_t) row * E;

				axpy((int) E, 1.0f, w->grads + o, tr->grads + o);
				memset(w->grads + o, 0, E * sizeof(float));
				touch_mark(&tr->tch[t], row, stamp);
			}
			w->tch[t].n = 0;
			/* padding rows are not trained (a tied output layer writes that row) */
			if (rows[t] > 0)
				memset(w->grads + off[t] + (size_t) US_ROW_PAD * E, 0, E * sizeof(float));
		}
		{
			float	   *dst = tr->grads + dense0;
			float	   *src = w->grads + dense0;

			for (size_t i = 0; i < n_dense; i++)
				dst[i] += src[i];
			memset(src, 0, n_dense * sizeof(float));
		}
	}
}

/* the step's embedding dropout key (drawn only when the model has embedding dropout, so the
 * other draws of a step stay as they were; without rng the fixed key the gradient checks
 * use, see us_model_loss_and_grad); 0: none */
static uint64_t
edrop_key(const us_model_config *c, us_rng *rng)
{
	if (c->embed_dropout <= 0.0f)
		return 0;
	return rng != NULL ? us_rng_next(rng) | 1 : US_EDROP_TEST_KEY;
}

/*
 * Loss and gradient of the minibatch ids[0..nb-1] into tr->grads and tr->tch. rng: the step's
 * generator (negatives first, then the embedding dropout key, then dropout), or NULL for no
 * dropout and the full softmax.
 * *n_ex gets the examples (0: nothing to do). With n_threads = T > 1 the batch is cut into T
 * contiguous slices of sequences, fixed by the batch order; everything the workers need is
 * reserved here first, and the dropout mask is drawn here in the order one thread draws it.
 */
static us_status
step_grads(us_trainer *tr, const us_dataset *data, const int32_t *ids, int32_t nb, us_rng *rng,
		   double *loss_sum, int64_t *n_ex)
{
	us_model   *model = tr->model;
	const us_model_config *c = &model->cfg;
	int			prefix = us_is_prefix_task(c->task);
	int			sampled = rng != NULL && c->task == US_TASK_NEXT_ITEM && tr->tc.n_negatives > 0;
	int			H = c->hidden_dim;
	int64_t		total = 0;
	int64_t		stamp;
	uint64_t	enc_seed = 0;
	uint64_t	key;
	const float *mask = NULL;
	us_status	st;

	*loss_sum = 0.0;
	*n_ex = 0;
	if (tr->nt <= 1)
	{
		batch_opts	o;
		us_params	g;

		st = us_batch_build(model, data, ids, nb, prefix, tr->tc.max_examples_per_seq, 1, &tr->ws);
		if (st != US_OK || tr->ws.n_ex == 0)
			return st;
		*n_ex = tr->ws.n_ex;
		us_params_bind(c, tr->grads, &g);
		memset(&o, 0, sizeof o);
		o.g = &g;
		o.conv_mode = US_CONV_BWD_AUTO;
		o.tch = tr->tch;
		o.stamp = ++tr->stamp;
		o.drop_rng = rng;
		if (sampled)
		{
			if ((st = draw_negatives(tr, rng)) != US_OK)
				return st;
			o.sampled = 1;
			o.cdf = tr->neg_cdf;
			o.n_cdf = tr->neg_rows;
		}
		o.edrop_key = edrop_key(c, rng);
		if (rng != NULL && c->architecture == US_ARCH_SASREC)
		{
			o.enc_dropout = 1;
			o.enc_seed = us_rng_next(rng);
		}
		st = us_batch_run(model, &tr->ws, &o, loss_sum);
		if (st != US_OK)
			clear_grads(tr);
		return st;
	}

	for (int s = 0; s < tr->nt; s++)
	{
		int32_t		i0 = (int32_t) ((int64_t) nb * s / tr->nt),
					i1 = (int32_t) ((int64_t) nb * (s + 1) / tr->nt);
		us_ws	   *ws = tr->wk[s].ws;

		st = us_batch_build(model, data, ids + i0, i1 - i0, prefix, tr->tc.max_examples_per_seq, 1, ws);
		if (st != US_OK)
			return st;
		total += ws->n_ex;
	}
	if (total == 0)
		return US_OK;
	*n_ex = total;
	stamp = ++tr->stamp;
	if (sampled && (st = draw_negatives(tr, rng)) != US_OK)
		return st;
	key = edrop_key(c, rng);
	/* in the order of the one-thread path: negatives, embedding key, encoder seed, dropout */
	if (rng != NULL && c->architecture == US_ARCH_SASREC)
		enc_seed = us_rng_next(rng);
	if (rng != NULL && c->dropout > 0.0f)
	{
		/* the draws dense_forward makes for the whole batch on one thread, in its order */
		uint32_t	thr = (uint32_t) ((double) c->dropout * 16777216.0);
		float		scale = 1.0f / (1.0f - c->dropout);
		size_t		nh = (size_t) total * H;
		float	   *m;

		if ((st = us_ws_reserve(&tr->ws, &tr->ws.mask, (size_t) total, (size_t) H * sizeof(float))))
			return st;
		m = F32(tr->ws.mask);
		for (size_t i = 0; i < nh; i++)
			m[i] = (uint32_t) (us_rng_next(rng) >> 40) >= thr ? scale : 0.0f;
		mask = m;
	}
	{
		int64_t		ex0 = 0;

		for (int s = 0; s < tr->nt; s++)
		{
			us_worker  *w = &tr->wk[s];
			us_ws	   *ws = w->ws;

			memset(&w->o, 0, sizeof w->o);
			w->o.g = &w->g;
			w->o.conv_mode = US_CONV_BWD_AUTO;
			w->o.tch = w->tch;
			w->o.stamp = stamp;
			w->o.drop_mask = mask ? mask + (size_t) ex0 * H : NULL;
			w->o.edrop_key = key;
			w->o.enc_dropout = rng != NULL && c->architecture == US_ARCH_SASREC;
			w->o.enc_seed = enc_seed;
			w->loss = 0.0;
			w->st = US_OK;
			ws->n_norm = total;
			ex0 += ws->n_ex;
			if (sampled)
			{
				int			m = tr->tc.n_negatives;

				w->o.sampled = 1;
				w->o.cdf = tr->neg_cdf;
				w->o.n_cdf = tr->neg_rows;
				if (s > 0)
				{
					if ((st = us_ws_reserve(ws, &ws->neg, (size_t) m, sizeof(int32_t))) ||
						(st = us_ws_reserve(ws, &ws->neg_logq, (size_t) m, sizeof(float))) ||
						(st = us_ws_reserve(ws, &ws->negW, (size_t) m, (size_t) H * sizeof(float))) ||
						(st = us_ws_reserve(ws, &ws->dnegW, (size_t) m, (size_t) H * sizeof(float))) ||
						(st = us_ws_reserve(ws, &ws->wpos, 1, (size_t) H * sizeof(float))))
						return st;
					memcpy(ws->neg.p, tr->ws.neg.p, (size_t) m * sizeof(int32_t));
					memcpy(ws->neg_logq.p, tr->ws.neg_logq.p, (size_t) m * sizeof(float));
					ws->n_neg = m;
				}
			}
			if ((st = us_nn_reserve(model, ws, &w->o)) != US_OK)
				return st;
		}
	}
	for (int s = 0; s < tr->nt; s++)
		tr->wk[s].ws->frozen = 1;
	run_job(tr, JOB_STEP);
	st = US_OK;
	for (int s = 0; s < tr->nt; s++)
	{
		tr->wk[s].ws->frozen = 0;
		tr->wk[s].ws->n_norm = 0;
		if (st == US_OK)
			st = tr->wk[s].st;
		*loss_sum += tr->wk[s].loss;
	}
	if (st != US_OK)
	{
		clear_grads(tr);
		return st;
	}
	reduce_slices(tr, stamp);
	return US_OK;
}

/* starts the workers of a trainer with n_threads > 1 (their buffers first) */
static us_status
threads_start(us_trainer *tr)
{
	us_model   *model = tr->model;
	const us_allocator *alloc = &tr->alloc;
	int			nt = tr->tc.n_threads;
	size_t		off[3];
	int32_t		rows[3];
	sigset_t	all,
				old;
	us_status	st = US_OK;

	tr->wk = zalloc(alloc, (size_t) nt, sizeof(us_worker));
	if (tr->wk == NULL)
		return US_ENOMEM;
	tr->nt = nt;
	emb_tables(model, off, rows);
	for (int s = 0; s < nt; s++)
	{
		us_worker  *w = &tr->wk[s];

		w->tr = tr;
		w->id = s;
		if (s == 0)
		{
			w->ws = &tr->ws;
			w->grads = tr->grads;
			w->tch = tr->tch;
		}
		else
		{
			w->own_ws.alloc = *alloc;
			w->ws = &w->own_ws;
			w->tch = w->own_tch;
			w->grads = zalloc(alloc, model->n_params, sizeof(float));
			if (w->grads == NULL)
				return US_ENOMEM;
			if (!touch_alloc(alloc, w->tch, rows))
				return US_ENOMEM;
		}
		us_params_bind(&model->cfg, w->grads, &w->g);
	}
	if (pthread_mutex_init(&tr->mu, NULL) != 0)
		return US_ENOMEM;
	if (pthread_cond_init(&tr->go, NULL) != 0)
	{
		pthread_mutex_destroy(&tr->mu);
		return US_ENOMEM;
	}
	if (pthread_cond_init(&tr->done, NULL) != 0)
	{
		pthread_cond_destroy(&tr->go);
		pthread_mutex_destroy(&tr->mu);
		return US_ENOMEM;
	}
	tr->sync_ok = 1;
	/* workers inherit a mask blocking every signal: handlers (PostgreSQL's) run on the
	 * caller's thread only */
	sigfillset(&all);
	if (pthread_sigmask(SIG_BLOCK, &all, &old) != 0)
		return US_EINTERNAL;
	for (int s = 1; s < nt; s++)
	{
		/* thread creation fails only for lack of resources */
		if (pthread_create(&tr->wk[s].th, NULL, worker_main, &tr->wk[s]) != 0)
		{
			st = US_ENOMEM;
			break;
		}
		tr->wk[s].started = 1;
	}
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	return st;
}

/* stops and joins the workers, then frees their buffers */
static void
threads_stop(us_trainer *tr)
{
	us_allocator a = tr->alloc;

	if (tr->wk == NULL)
		return;
	if (tr->sync_ok)
	{
		pthread_mutex_lock(&tr->mu);
		tr->quit = 1;
		pthread_cond_broadcast(&tr->go);
		pthread_mutex_unlock(&tr->mu);
		for (int s = 1; s < tr->nt; s++)
			if (tr->wk[s].started)
				pthread_join(tr->wk[s].th, NULL);
		pthread_cond_destroy(&tr->done);
		pthread_cond_destroy(&tr->go);
		pthread_mutex_destroy(&tr->mu);
		tr->sync_ok = 0;
	}
	for (int s = 1; s < tr->nt; s++)
	{
		us_worker  *w = &tr->wk[s];

		us_ws_free(&w->own_ws);
		if (w->grads)
			a.free(a.ctx, w->grads);
		touch_free(&a, w->own_tch);
	}
	a.free(a.ctx, tr->wk);
	tr->wk = NULL;
	tr->nt = 0;
}

/*
 * The steps of an epoch over the shuffled tr->perm[0..n-1]: tr->bounds[s] is the first
 * sequence of step s, tr->bounds[steps] = n; returns steps (-1: a bad sequence id). batch_size
 * sequences per step, or with batch_examples whole sequences while their training examples
 * (us_batch_build's count) fit in batch_size, at least one sequence per step.
 */
static int64_t
batch_bounds(us_trainer *tr, const us_dataset *data, int32_t n)
{
	const us_model_config *c = &tr->model->cfg;
	int32_t		B = tr->tc.batch_size;
	int32_t		max_ex = tr->tc.max_examples_per_seq;
	int			prefix = us_is_prefix_task(c->task);
	int64_t		steps = 0,
				in_step = 0;

	for (int32_t i = 0; i < n; i++)
	{
		int32_t		s = tr->perm[i];
		int64_t		k = 1;		/* examples of sequence s (sequence mode: counts 1) */

		if (s < 0 || s >= data->n_seqs)
			return -1;
		if (tr->tc.batch_examples && prefix)
		{
			int64_t		len = data->offsets[s + 1] - data->offsets[s];

			k = (len > c->max_len ? c->max_len : len) - 1;
			if (max_ex > 0 && k > max_ex)
				k = max_ex;
			if (k < 0)
				k = 0;
		}
		/* a new step at the start, or when s would overflow a non-empty step */
		if (i == 0 || (in_step > 0 && in_step + k > B))
		{
			tr->bounds[steps++] = i;
			in_step = 0;
		}
		in_step += k;
	}
	tr->bounds[steps] = n;
	return steps;
}

us_status
us_trainer_epoch(us_trainer *tr, const us_dataset *data, const int32_t *seq_ids, int32_t n,
				 int32_t epoch, const us_progress *progress, us_epoch_stats *stats)
{
	us_model   *model;
	int64_t		n_steps;
	us_rng		rng;
	double		loss_sum = 0.0;
	int64_t		examples = 0;
	float		lr;
	us_status	st;

	if (tr == NULL || data == NULL || (seq_ids == NULL && n > 0) || n < 0 || epoch < 0)
		return US_EINVAL;
	model = tr->model;
	lr = us_train_learning_rate(&tr->tc, epoch);
	if (!isfinite(lr))
		return US_ENONFINITE;
	if (stats)
		memset(stats, 0, sizeof(*stats));
	if (n > tr->perm_cap)
	{
		if (tr->perm)
			tr->alloc.free(tr->alloc.ctx, tr->perm);
		if (tr->bounds)
			tr->alloc.free(tr->alloc.ctx, tr->bounds);
		tr->perm_cap = 0;
		tr->perm = zalloc(&tr->alloc, (size_t) n, sizeof(int32_t));
		tr->bounds = zalloc(&tr->alloc, (size_t) n + 1, sizeof(int32_t));
		if (tr->perm == NULL || tr->bounds == NULL)
			return US_ENOMEM;
		tr->perm_cap = n;
	}
	if (n > 0)
		memcpy(tr->perm, seq_ids, (size_t) n * sizeof(int32_t));
	us_rng_seed(&rng, mix_seed(tr->tc.seed, (uint64_t) epoch, UINT64_MAX - 1));
	for (int32_t i = n - 1; i > 0; i--)
	{
		int32_t		j = (int32_t) us_rng_below(&rng, (uint64_t) i + 1);
		int32_t		t = tr->perm[i];

		tr->perm[i] = tr->perm[j];
		tr->perm[j] = t;
	}
	n_steps = n > 0 ? batch_bounds(tr, data, n) : 0;
	if (n_steps < 0)
		return US_EINVAL;
	st = US_OK;
	for (int64_t step = 0; step < n_steps; step++)
	{
		int32_t		b0 = tr->bounds[step];
		int32_t		nb = tr->bounds[step + 1] - b0;
		double		bl = 0.0;
		int64_t		n_ex = 0;

		us_rng_seed(&rng, mix_seed(tr->tc.seed, (uint64_t) epoch, (uint64_t) step));
		st = step_grads(tr, data, tr->perm + b0, nb, &rng, &bl, &n_ex);
		if (st != US_OK)
			break;
		if (n_ex > 0)
		{
			if (!isfinite(bl))
			{
				st = US_ENONFINITE;
				break;
			}
			optimizer_step(tr, lr);
			loss_sum += bl;
			examples += n_ex;
		}
		if (progress && progress->fn && progress->fn(progress->ctx, step + 1, n_steps))
		{
			st = US_ECANCELED;
			break;
		}
	}
	/* the model may be read after any return, a cancelled epoch's too: no decay left pending */
	if (tr->decay_mark[0])
		decay_flush(tr, 1.0);
	if (st != US_OK)
		return st;
	if ((st = us_model_check_finite(model)) != US_OK)
		return st;
	if (stats)
	{
		stats->loss = examples > 0 ? loss_sum / examples : 0.0;
		stats->examples = examples;
		stats->steps = n_steps;
		stats->learning_rate = lr;
	}
	return US_OK;
}

us_status
us_trainer_batch_grad(us_trainer *tr, const us_dataset *data, const int32_t *seq_ids, int32_t n,
					  float *grads, double *loss)
{
	double		sum = 0.0;
	int64_t		n_ex = 0;
	us_status	st;

	if (tr == NULL || data == NULL || (seq_ids == NULL && n > 0) || n < 0 || grads == NULL)
		return US_EINVAL;
	st = step_grads(tr, data, seq_ids, n, NULL, &sum, &n_ex);
	if (st == US_OK)
	{
		size_t		E = (size_t) tr->model->cfg.embed_dim;
		size_t		off[3];
		int32_t		rows[3];

		memcpy(grads, tr->grads, tr->model->n_params * sizeof(float));
		emb_tables(tr->model, off, rows);
		for (int t = 0; t < 3; t++)
			if (rows[t] > 0)
				memset(grads + off[t], 0, E * sizeof(float));
		if (loss)
			*loss = n_ex > 0 ? sum / n_ex : 0.0;
	}
	clear_grads(tr);
	return st;
}
