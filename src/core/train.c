/*
 * train.c: batched forward and backward of the text-CNN over a minibatch, the losses of the
 * five tasks, the optimizers (Adam, AdamW, SGD with momentum; lazy on embedding rows), the
 * trainer and us_model_predict. One code path serves training, the gradient checks
 * (us_model_loss_and_grad) and evaluation. Single-sequence scoring lives in scorer.c.
 *
 * Speed notes. The events of a minibatch are concatenated without padding; the convolution of
 * all widths and taps is one GEMM of the tokens (T, E) against the taps concatenated
 * (E, sum_k k*F), followed by a shift-add per window. Max-pool backward is sparse: only the
 * argmax window of each (example, width, filter) gets gradient, so for one example per
 * sequence the conv backward costs O(B * F * k * E) instead of O(T * ...); for the prefix
 * tasks (one example per event) the gradient is scattered to (token, tap, filter) and pushed
 * through two GEMMs. Embedding gradients and optimizer updates touch only the rows the batch
 * used ("lazy" Adam as TF LazyAdam / torch SparseAdam: moments of an unused row are not decayed
 * in that step, so it differs from dense Adam; weight decay likewise applies to used rows only).
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

/*
 * The row loops here (adds, maxima and axpys over F or E floats) must vectorise: PostgreSQL
 * builds with -O2, where gcc 12 only vectorises loops whose trip count it knows, and gcc 12
 * maps -march=native on recent AMD cores to znver1 tuning, which uses 128-bit vectors. Both
 * cost about 2x in training speed, so this file asks for O3 and 256-bit vectors; no FP traps
 * are used, and without -fno-trapping-math gcc will not if-convert float compares.
 */
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC optimize("O3", "no-trapping-math")
#ifdef __AVX2__
#pragma GCC target("prefer-vector-width=256")
#endif
#endif

#include "userseq/us_model.h"
#include "userseq/us_rng.h"
#include "us_internal.h"

/* scratch bounds: conv output chunk and logits chunk, in floats */
#define CONV_CHUNK_FLOATS	((size_t) 2 << 20)
#define LOGIT_CHUNK_FLOATS	((size_t) 16 << 20)	/* 64 MB */
#define PREDICT_MAX_SEQS	256
#define PREDICT_TAP_FLOATS	((size_t) 16 << 20)	/* predict: distinct inputs x conv taps */

typedef struct buf
{
	void	   *p;
	size_t		cap;			/* bytes */
} buf;

typedef struct us_ws
{
	us_allocator alloc;
	int			frozen;			/* set while a worker thread uses it: reserve must not allocate */
	int64_t		n_norm;			/* examples the step's mean loss divides by; 0: n_ex */
	/* batch: tokens of the sequences, concatenated, and the examples */
	int32_t		nseq;
	buf			seq_tok;		/* int64 (nseq + 1) */
	buf			tok_item,
				tok_beh,
				tok_gap;		/* int32 (T) */
	int64_t		T;
	int32_t		n_ex;
	buf			ex_seq,			/* int32: batch sequence of the example */
				ex_len,			/* int32: events visible to the example */
				ex_tgt;			/* int32: class / row target */
	buf			ex_y,			/* float: binary / regression target */
				ex_w;			/* float: weight */
	int			has_target;
	/* distinct (item, behaviour, gap) inputs of the batch: the conv is linear, so it runs on
	 * these U rows (U << T under a skewed popularity) and windows gather rows by index */
	int32_t		U;
	buf			tok_u,			/* int32 (T): distinct input of each token */
	 			hash,			/* int32 open-addressing table */
				u_item,
				u_beh,
				u_gap;			/* int32 (U) */
	/* forward */
	buf			X,				/* (U, E) input vectors */
				Wcat,			/* (E, Ftot) */
				WT,				/* (Ftot, E) */
				Y,				/* (U, Ftot) per-input conv taps, reused as dY */
				Z,				/* (n_ex, D) */
				A,				/* (n_ex, H) pre-activation */
				Hh,				/* (n_ex, H) after relu and dropout */
				drop,			/* (n_ex, H) dropout scale */
				amax,			/* int32 (n_ex, W*F) */
				run,			/* (2 * W * F) running max / partial sums */
				logits;			/* chunk */
	/* backward */
	buf			dH,
				dZ,
				dX,				/* (U, E) */
				dWT,			/* (Ftot, E) sparse path accumulator */
				dWcat;			/* (E, Ftot) dense path accumulator */
	/* sampled softmax */
	buf			neg,			/* int32 (m) */
				neg_logq,		/* float (m) */
				negW,			/* (m, H) */
				dnegW,			/* (m, H) */
				wpos;			/* (H) */
	int32_t		n_neg;
	buf			mask;			/* threaded steps: dropout scales of the whole batch */
} us_ws;

/* touched embedding rows of the step (lazy updates) */
typedef struct touch
{
	int32_t		n_rows;
	int32_t	   *list;
	int32_t		n;
	int64_t    *stamp;
} touch;

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
	int64_t		stamp;
	touch		tch[3];			/* item, behaviour, gap rows */
	int32_t    *perm;
	int32_t		perm_cap;
	double	   *neg_cdf;		/* sampled softmax: cumulative distribution over rows 1.. */
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

/* ------------------------------------------------------------------ helpers */

static us_status
reserve(us_ws *ws, buf *b, size_t n, size_t elem)
{
	size_t		bytes;

	if (!us_mul_size(n, elem, &bytes) || bytes > (SIZE_MAX >> 2))
		return US_ELIMIT;
	if (bytes <= b->cap && b->p != NULL)
		return US_OK;
	/* a worker thread must never call the caller's allocator (PostgreSQL's is not
	 * thread-safe); everything it needs was reserved on the calling thread */
	if (ws->frozen)
		return US_EINTERNAL;
	if (b->p)
		ws->alloc.free(ws->alloc.ctx, b->p);
	b->cap = 0;
	/* grow geometrically so a varying batch shape does not reallocate every step */
	if (bytes < (SIZE_MAX >> 3))
		bytes += bytes / 4;
	b->p = ws->alloc.alloc(ws->alloc.ctx, bytes ? bytes : 16);
	if (b->p == NULL)
		return US_ENOMEM;
	b->cap = bytes;
	return US_OK;
}

static void
ws_free(us_ws *ws)
{
	buf		   *all[] = {&ws->seq_tok, &ws->tok_item, &ws->tok_beh, &ws->tok_gap, &ws->ex_seq,
		&ws->ex_len, &ws->ex_tgt, &ws->ex_y, &ws->ex_w, &ws->X, &ws->Wcat, &ws->WT, &ws->Y, &ws->Z,
		&ws->A, &ws->Hh, &ws->drop, &ws->amax, &ws->run, &ws->logits, &ws->dH, &ws->dZ, &ws->dX,
	&ws->dWT, &ws->dWcat, &ws->neg, &ws->neg_logq, &ws->negW, &ws->dnegW, &ws->wpos, &ws->tok_u,
	&ws->hash, &ws->u_item, &ws->u_beh, &ws->u_gap, &ws->mask};

	for (size_t i = 0; i < sizeof(all) / sizeof(all[0]); i++)
		if (all[i]->p)
		{
			ws->alloc.free(ws->alloc.ctx, all[i]->p);
			all[i]->p = NULL;
			all[i]->cap = 0;
		}
}

#define F32(b) ((float *) (b).p)
#define I32(b) ((int32_t *) (b).p)
#define I64(b) ((int64_t *) (b).p)

static inline void
axpy(int n, float a, const float *x, float *y)
{
	for (int i = 0; i < n; i++)
		y[i] += a * x[i];
}

static inline int
is_prefix_task(int task)
{
	return task == US_TASK_NEXT_ITEM || task == US_TASK_NEXT_BEHAVIOR;
}

/* total width of the concatenated taps and the column of (width i, tap 0) */
static int
conv_cols(const us_model_config *c, int *col0)
{
	int			tot = 0;

	for (int i = 0; i < c->n_widths; i++)
	{
		col0[i] = tot;
		tot += c->widths[i] * c->n_filters;
	}
	return tot;
}

/* ------------------------------------------------------------------ batch assembly */

/*
 * Gathers the kept events of the sequences and lists the examples: one per sequence (mode
 * full) or one per prefix (training of the next_* tasks). need_target: the loss needs
 * targets (training); otherwise targets are used when present.
 */
static us_status
build_batch(const us_model *model, const us_dataset *data, const int32_t *ids, int32_t n,
			int prefix, int32_t max_ex, int need_target, us_ws *ws)
{
	const us_model_config *c = &model->cfg;
	int64_t		T = 0;
	int64_t		n_ex = 0;
	us_status	st;
	int			use_beh = c->n_behaviors > 0 && data->behaviors != NULL;
	int			use_gap = c->n_gap_buckets > 0 && data->gaps != NULL;
	int			task = c->task;

	if (data->offsets == NULL || (data->n_seqs > 0 && data->items == NULL) || n < 0)
		return US_EINVAL;
	if (prefix && task == US_TASK_NEXT_BEHAVIOR && data->behaviors == NULL)
		return US_EINVAL;
	/* sizes first */
	for (int32_t b = 0; b < n; b++)
	{
		int32_t		s = ids[b];
		int64_t		len;

		if (s < 0 || s >= data->n_seqs)
			return US_EINVAL;
		len = data->offsets[s + 1] - data->offsets[s];
		if (len < 0 || data->offsets[s] < 0)
			return US_EINVAL;
		if (len > c->max_len)
			len = c->max_len;
		T += len;
		if (prefix)
		{
			int64_t		k = len - 1;

			if (k > 0 && max_ex > 0 && k > max_ex)
				k = max_ex;
			n_ex += k > 0 ? k : 0;
		}
		else
			n_ex++;
	}
	if ((st = reserve(ws, &ws->seq_tok, (size_t) n + 1, sizeof(int64_t))) ||
		(st = reserve(ws, &ws->tok_item, (size_t) T, sizeof(int32_t))) ||
		(st = reserve(ws, &ws->tok_beh, (size_t) T, sizeof(int32_t))) ||
		(st = reserve(ws, &ws->tok_gap, (size_t) T, sizeof(int32_t))) ||
		(st = reserve(ws, &ws->ex_seq, (size_t) n_ex, sizeof(int32_t))) ||
		(st = reserve(ws, &ws->ex_len, (size_t) n_ex, sizeof(int32_t))) ||
		(st = reserve(ws, &ws->ex_tgt, (size_t) n_ex, sizeof(int32_t))) ||
		(st = reserve(ws, &ws->ex_y, (size_t) n_ex, sizeof(float))) ||
		(st = reserve(ws, &ws->ex_w, (size_t) n_ex, sizeof(float))))
		return st;
	if (n_ex > INT32_MAX / 2 || T > INT32_MAX / 2)
		return US_ELIMIT;

	ws->has_target = prefix ||
		((task == US_TASK_BINARY || task == US_TASK_REGRESSION) ? data->targets != NULL
		 : data->classes != NULL);
	if (need_target && !ws->has_target)
		return US_EINVAL;

	{
		int64_t    *seq_tok = I64(ws->seq_tok);
		int32_t    *ti = I32(ws->tok_item),
				   *tb = I32(ws->tok_beh),
				   *tg = I32(ws->tok_gap);
		int32_t    *es = I32(ws->ex_seq),
				   *el = I32(ws->ex_len),
				   *et = I32(ws->ex_tgt);
		float	   *ey = F32(ws->ex_y),
				   *ew = F32(ws->ex_w);
		int64_t		t = 0,
					e = 0;

		for (int32_t b = 0; b < n; b++)
		{
			int32_t		s = ids[b];
			int64_t		end = data->offsets[s + 1];
			int64_t		len = end - data->offsets[s];
			int64_t		start;
			float		w = data->weights ? data->weights[s] : 1.0f;

			if (len > c->max_len)
				len = c->max_len;
			start = end - len;
			if (!isfinite(w))
				return US_ENONFINITE;
			if (w < 0.0f)
				return US_EINVAL;
			seq_tok[b] = t;
			for (int64_t i = start; i < end; i++, t++)
			{
				int32_t		it = data->items[i];
				int32_t		bh = use_beh ? data->behaviors[i] : 0;
				int32_t		gp = use_gap ? data->gaps[i] : 0;

				if (it < 0 || it >= c->n_items || bh < 0 || (use_beh && bh >= c->n_behaviors) ||
					gp < 0 || (use_gap && gp >= c->n_gap_buckets))
					return US_EINVAL;
				ti[t] = it;
				tb[t] = bh;
				tg[t] = gp;
			}
			if (prefix)
			{
				int64_t		t0 = 1;

				if (max_ex > 0 && len - max_ex > t0)
					t0 = len - max_ex;
				for (int64_t p = t0; p < len; p++, e++)
				{
					int32_t		row;

					if (task == US_TASK_NEXT_ITEM)
						row = data->items[start + p];
					else
						row = data->behaviors[start + p];
					if (row < 0 || row >= c->n_outputs)
						return US_EINVAL;
					es[e] = b;
					el[e] = (int32_t) p;
					et[e] = row;
					ey[e] = 0.0f;
					ew[e] = w;
				}
			}
			else
			{
				es[e] = b;
				el[e] = (int32_t) len;
				et[e] = 0;
				ey[e] = 0.0f;
				ew[e] = w;
				if (ws->has_target)
				{
					if (task == US_TASK_BINARY || task == US_TASK_REGRESSION)
					{
						float		y = data->targets[s];

						if (!isfinite(y))
							return US_ENONFINITE;
						if (task == US_TASK_BINARY && (y < 0.0f || y > 1.0f))
							return US_EINVAL;
						ey[e] = y;
					}
					else
					{
						int32_t		k = data->classes[s];

						if (k < 0 || k >= c->n_outputs)
							return US_EINVAL;
						et[e] = k;
					}
				}
				e++;
			}
		}
		seq_tok[n] = t;
	}
	ws->nseq = n;
	ws->T = T;
	ws->n_ex = (int32_t) n_ex;
	return US_OK;
}

/* ------------------------------------------------------------------ forward */

/* finds the distinct inputs of the batch (first-occurrence order); reserves their vectors */
static us_status
gather_dedup(const us_model *model, us_ws *ws)
{
	const us_model_config *c = &model->cfg;
	int			E = c->embed_dim;
	const int32_t *ti = I32(ws->tok_item),
			   *tb = I32(ws->tok_beh),
			   *tg = I32(ws->tok_gap);
	int64_t		nb = c->n_behaviors > 0 ? c->n_behaviors : 1,
				ng = c->n_gap_buckets > 0 ? c->n_gap_buckets : 1;
	size_t		T = (size_t) ws->T,
				hsize = 64;
	int			hbits = 6;
	int32_t    *tu,
			   *ht,
			   *ui,
			   *ub,
			   *ug;
	int32_t		U = 0;
	us_status	st;

	while (hsize < 2 * T)
	{
		hsize <<= 1;
		hbits++;
	}
	if ((st = reserve(ws, &ws->tok_u, T ? T : 1, sizeof(int32_t))) ||
		(st = reserve(ws, &ws->hash, hsize, sizeof(int32_t))) ||
		(st = reserve(ws, &ws->u_item, T ? T : 1, sizeof(int32_t))) ||
		(st = reserve(ws, &ws->u_beh, T ? T : 1, sizeof(int32_t))) ||
		(st = reserve(ws, &ws->u_gap, T ? T : 1, sizeof(int32_t))))
		return st;
	tu = I32(ws->tok_u);
	ht = I32(ws->hash);
	ui = I32(ws->u_item);
	ub = I32(ws->u_beh);
	ug = I32(ws->u_gap);
	memset(ht, 0, hsize * sizeof(int32_t));
	for (size_t t = 0; t < T; t++)
	{
		uint64_t	key = ((uint64_t) ti[t] * (uint64_t) nb + (uint64_t) tb[t]) * (uint64_t) ng + (uint64_t) tg[t];
		size_t		h = (size_t) ((key * UINT64_C(0x9E3779B97F4A7C15)) >> (64 - hbits));

		for (;;)
		{
			int32_t		u = ht[h] - 1;

			if (u < 0)
			{
				ht[h] = U + 1;
				ui[U] = ti[t];
				ub[U] = tb[t];
				ug[U] = tg[t];
				tu[t] = U++;
				break;
			}
			if (ui[u] == ti[t] && ub[u] == tb[t] && ug[u] == tg[t])
			{
				tu[t] = u;
				break;
			}
			h = (h + 1) & (hsize - 1);
		}
	}
	ws->U = U;
	return reserve(ws, &ws->X, (size_t) (U > 0 ? U : 1), (size_t) E * sizeof(float));
}

/* the input vectors of the distinct inputs: item + behaviour + gap embeddings */
static void
gather_fill(const us_model *model, us_ws *ws)
{
	const us_model_config *c = &model->cfg;
	int			E = c->embed_dim;
	const int32_t *ui = I32(ws->u_item),
			   *ub = I32(ws->u_beh),
			   *ug = I32(ws->u_gap);
	float	   *X = F32(ws->X);

	for (int32_t u = 0; u < ws->U; u++)
	{
		float	   *x = X + (size_t) u * E;

		memcpy(x, model->p.item_emb + (size_t) ui[u] * E, (size_t) E * sizeof(float));
		if (c->n_behaviors > 0 && ub[u] > 0)
			axpy(E, 1.0f, model->p.behavior_emb + (size_t) ub[u] * E, x);
		if (c->n_gap_buckets > 0 && ug[u] > 0)
			axpy(E, 1.0f, model->p.gap_emb + (size_t) ug[u] * E, x);
	}
}

/* Wcat (E, Ftot): column block (width i, tap j) holds conv_w[i][j] (E, F) */
static void
pack_conv(const us_model *model, float *Wcat, int Ftot, const int *col0)
{
	const us_model_config *c = &model->cfg;
	int			E = c->embed_dim,
				F = c->n_filters;

	for (int i = 0; i < c->n_widths; i++)
		for (int j = 0; j < c->widths[i]; j++)
			for (int e = 0; e < E; e++)
				memcpy(Wcat + (size_t) e * Ftot + col0[i] + j * F,
					   model->p.conv_w[i] + ((size_t) j * E + e) * F, (size_t) F * sizeof(float));
}

/*
 * Convolution + max-pool for every example: Z[:, 0:W*F] = relu(max over windows) and amax =
 * the first window attaining the max. Examples of a sequence are consecutive, prefixes in
 * ascending length.
 */
static us_status
conv_forward(const us_model *model, us_ws *ws, const int *col0, int Ftot)
{
	const us_model_config *c = &model->cfg;
	int			E = c->embed_dim,
				F = c->n_filters,
				W = c->n_widths,
				D = us_model_feature_dim(c);
	const int64_t *seq_tok = I64(ws->seq_tok);
	const int32_t *es = I32(ws->ex_seq),
			   *el = I32(ws->ex_len);
	const int32_t *tok_u = I32(ws->tok_u);
	float	   *Z = F32(ws->Z);
	int32_t    *amax = I32(ws->amax);
	float	   *Y;
	us_status	st;
	float	   *best = F32(ws->run),
			   *part = best + (size_t) W * F;
	int32_t		e = 0;
	int			WF = W * F;

	if ((st = reserve(ws, &ws->Y, (size_t) (ws->U > 0 ? ws->U : 1), (size_t) Ftot * sizeof(float))))
		return st;
	Y = F32(ws->Y);
	if (ws->U > 0)
		us_gemm(0, 0, ws->U, Ftot, E, 1.0f, F32(ws->X), E, F32(ws->Wcat), Ftot, 0.0f, Y, Ftot);
	{
		int32_t		b0 = 0,
					b1 = ws->nseq;

		for (int32_t b = b0; b < b1; b++)
		{
			int64_t		n = seq_tok[b + 1] - seq_tok[b];
			const int32_t *tu = tok_u + seq_tok[b];

			if (e >= ws->n_ex || es[e] != b)
				continue;		/* a prefix-task sequence with no examples */
			if (el[e] == n && (e + 1 >= ws->n_ex || es[e + 1] != b))
			{
				/* one example seeing the whole sequence: plain max over windows */
				float	   *z = Z + (size_t) e * D;
				int32_t    *am = amax + (size_t) e * WF;

				for (int i = 0; i < W; i++)
				{
					int			k = c->widths[i];
					int64_t		nwin = n >= k ? n - k + 1 : 1;
					const float *bias = model->p.conv_b[i];
					float	   *bst = best + i * F;
					int32_t    *ami = am + i * F;

					for (int64_t p = 0; p < nwin; p++)
					{
						int			taps = (int) (n - p < k ? n - p : k);
						float	   *acc = part + i * F;

						memcpy(acc, bias, (size_t) F * sizeof(float));
						for (int j = 0; j < taps; j++)
						{
							const float *y = Y + (size_t) tu[p + j] * Ftot + col0[i] + j * F;

							for (int f = 0; f < F; f++)
								acc[f] += y[f];
						}
						if (p == 0)
						{
							memcpy(bst, acc, (size_t) F * sizeof(float));
							for (int f = 0; f < F; f++)
								ami[f] = 0;
						}
						else
							for (int f = 0; f < F; f++)
								if (acc[f] > bst[f])
								{
									bst[f] = acc[f];
									ami[f] = (int32_t) p;
								}
					}
					for (int f = 0; f < F; f++)
						z[i * F + f] = bst[f] > 0.0f ? bst[f] : 0.0f;
				}
				e++;
				continue;
			}
			/* prefixes: lengths el[e..] ascending; running max over full windows */
			{
				int32_t		lmax = 0;
				int32_t		e_first = e;

				while (e < ws->n_ex && es[e] == b)
					lmax = el[e++];
				for (int i = 0; i < W; i++)
				{
					int			k = c->widths[i];
					const float *bias = model->p.conv_b[i];
					float	   *bst = best + i * F;
					float	   *acc = part + i * F;
					int32_t	   *barg = (int32_t *) (part + (size_t) WF) + i * F;
					int32_t		ee = e_first;

					memcpy(acc, bias, (size_t) F * sizeof(float));
					for (int32_t t = 1; t <= lmax; t++)
					{
						if (t <= k)
						{
							/* partial first window grows by tap t-1 (complete at t == k) */
							const float *y = Y + (size_t) tu[t - 1] * Ftot + col0[i] + (t - 1) * F;

							for (int f = 0; f < F; f++)
								acc[f] += y[f];
							memcpy(bst, acc, (size_t) F * sizeof(float));
							for (int f = 0; f < F; f++)
								barg[f] = 0;
						}
						else
						{
							/* window p = t - k is fully inside the prefix of length t */
							int64_t		p = t - k;

							memcpy(acc, bias, (size_t) F * sizeof(float));
							for (int j = 0; j < k; j++)
							{
								const float *y = Y + (size_t) tu[p + j] * Ftot + col0[i] + j * F;

								for (int f = 0; f < F; f++)
									acc[f] += y[f];
							}
							for (int f = 0; f < F; f++)
								if (acc[f] > bst[f])
								{
									bst[f] = acc[f];
									barg[f] = (int32_t) p;
								}
						}
						if (ee < e && el[ee] == t)
						{
							float	   *z = Z + (size_t) ee * D + i * F;
							int32_t    *am = amax + (size_t) ee * WF + i * F;

							for (int f = 0; f < F; f++)
							{
								z[f] = bst[f] > 0.0f ? bst[f] : 0.0f;
								am[f] = barg[f];
							}
							ee++;
						}
					}
				}
			}
		}
		(void) b0;
	}
	return US_OK;
}

/* recent window: the embeddings of the last R visible events, zeros before the start */
static void
recent_forward(const us_model *model, us_ws *ws)
{
	const us_model_config *c = &model->cfg;
	int			R = c->recent_window,
				E = c->embed_dim,
				D = us_model_feature_dim(c),
				off = c->n_widths * c->n_filters;
	const int64_t *seq_tok = I64(ws->seq_tok);
	const int32_t *es = I32(ws->ex_seq),
			   *el = I32(ws->ex_len);
	const float *X = F32(ws->X);
	const int32_t *tok_u = I32(ws->tok_u);
	float	   *Z = F32(ws->Z);

	if (R == 0)
		return;
	for (int32_t e = 0; e < ws->n_ex; e++)
	{
		float	   *z = Z + (size_t) e * D + off;
		int64_t		base = seq_tok[es[e]];

		for (int r = 0; r < R; r++)
		{
			int64_t		idx = (int64_t) el[e] - R + r;

			if (idx >= 0)
				memcpy(z + (size_t) r * E, X + (size_t) tok_u[base + idx] * E, (size_t) E * sizeof(float));
			else
				memset(z + (size_t) r * E, 0, (size_t) E * sizeof(float));
		}
	}
}

/*
 * dense layer + relu (+ inverted dropout when rng is given, or with the precomputed scales
 * mask: a threaded step draws the batch's mask once, in the order one thread would)
 */
static void
dense_forward(const us_model *model, us_ws *ws, us_rng *rng, const float *mask)
{
	const us_model_config *c = &model->cfg;
	int			D = us_model_feature_dim(c),
				H = c->hidden_dim;
	size_t		nh = (size_t) ws->n_ex * H;
	float	   *A = F32(ws->A),
			   *Hh = F32(ws->Hh),
			   *dr = F32(ws->drop);

	for (int32_t e = 0; e < ws->n_ex; e++)
		memcpy(A + (size_t) e * H, model->p.dense_b, (size_t) H * sizeof(float));
	us_gemm(0, 0, ws->n_ex, H, D, 1.0f, F32(ws->Z), D, model->p.dense_w, H, 1.0f, A, H);
	if (rng != NULL && c->dropout > 0.0f)
	{
		/* keep with probability 1 - p, compared on 24 random bits */
		uint32_t	thr = (uint32_t) ((double) c->dropout * 16777216.0);
		float		scale = 1.0f / (1.0f - c->dropout);

		for (size_t i = 0; i < nh; i++)
		{
			uint32_t	r = (uint32_t) (us_rng_next(rng) >> 40);

			dr[i] = r >= thr ? scale : 0.0f;
			Hh[i] = A[i] > 0.0f ? A[i] * dr[i] : 0.0f;
		}
	}
	else if (mask != NULL)
	{
		memcpy(dr, mask, nh * sizeof(float));
		for (size_t i = 0; i < nh; i++)
			Hh[i] = A[i] > 0.0f ? A[i] * dr[i] : 0.0f;
	}
	else
	{
		for (size_t i = 0; i < nh; i++)
			dr[i] = 1.0f;
		for (size_t i = 0; i < nh; i++)
			Hh[i] = A[i] > 0.0f ? A[i] : 0.0f;
	}
}

/* ------------------------------------------------------------------ heads */

static inline double
softplus(double x)
{
	return x > 0 ? x + log1p(exp(-x)) : log1p(exp(x));
}

/*
 * exp for softmax rows, vectorisable (Cephes expf: range reduction by ln 2 and a degree-6
 * polynomial, relative error ~2e-7); 0 below -87.3, where expf underflows anyway.
 */
static inline float
vexpf(float x)
{
	float		xc = x > 88.7f ? 88.7f : (x < -87.3f ? -87.3f : x);
	/* round to nearest by the 1.5 * 2^23 trick: no libm call, vectorises */
	float		n = (xc * 1.44269504088896341f + 12582912.0f) - 12582912.0f;
	float		r = xc - n * 0.693359375f + n * 2.12194440e-4f;
	float		p = 1.9875691500e-4f;
	union
	{
		int32_t		i;
		float		f;
	}			two_n;

	p = p * r + 1.3981999507e-3f;
	p = p * r + 8.3334519073e-3f;
	p = p * r + 4.1665795894e-2f;
	p = p * r + 1.6666665459e-1f;
	p = p * r + 5.0000001201e-1f;
	two_n.i = ((int32_t) n + 127) << 23;
	return x < -87.3f ? 0.0f : (p * r * r + r + 1.0f) * two_n.f;
}

/*
 * Softmax cross-entropy of one row x (n logits, target tg): returns -log p[tg]. grad (may
 * alias x) gets scale * (p - onehot); prob gets p. Sums in 8 fixed lanes: vectorised and
 * deterministic.
 */
static double
softmax_row(float *x, int n, int tg, float scale, float *grad, float *prob)
{
	float		mx = -FLT_MAX;
	float		lane[8] = {0, 0, 0, 0, 0, 0, 0, 0};
	float	   *dst = grad ? grad : prob;
	double		sum = 0.0;
	float		xt = tg >= 0 ? x[tg] : 0.0f;
	int			j;

	for (j = 0; j < n; j++)
		mx = x[j] > mx ? x[j] : mx;
	if (dst)
	{
		for (j = 0; j + 8 <= n; j += 8)
			for (int l = 0; l < 8; l++)
			{
				float		e = vexpf(x[j + l] - mx);

				dst[j + l] = e;
				lane[l] += e;
			}
		for (; j < n; j++)
		{
			dst[j] = vexpf(x[j] - mx);
			lane[0] += dst[j];
		}
	}
	else
	{
		for (j = 0; j + 8 <= n; j += 8)
			for (int l = 0; l < 8; l++)
				lane[l] += vexpf(x[j + l] - mx);
		for (; j < n; j++)
			lane[0] += vexpf(x[j] - mx);
	}
	for (int l = 0; l < 8; l++)
		sum += lane[l];
	if (dst)
	{
		float		inv = (float) (1.0 / sum);

		if (grad && prob)
			for (j = 0; j < n; j++)
				prob[j] = grad[j] * inv;
		if (grad)
		{
			float		gs = inv * scale;

			for (j = 0; j < n; j++)
				grad[j] *= gs;
			if (tg >= 0)
				grad[tg] -= scale;
		}
		else
			for (j = 0; j < n; j++)
				prob[j] *= inv;
	}
	return log(sum) - ((double) xt - mx);
}

/*
 * Loss rows r0..r1-1 of logits L (row stride ld): adds w * loss to *loss_sum; when dL is
 * given, writes d(mean loss)/dlogit there (may alias L); pred (stride n_out) gets the
 * prediction (probability / value; next_item logits are already in place).
 */
static void
head_rows(const us_model *model, us_ws *ws, int32_t r0, int32_t r1, float *L, int ld,
		  float *dL, double inv_n, double *loss_sum, float *pred)
{
	const us_model_config *c = &model->cfg;
	int			task = c->task;
	int			V = c->n_outputs;
	const int32_t *et = I32(ws->ex_tgt);
	const float *ey = F32(ws->ex_y),
			   *ew = F32(ws->ex_w);
	int			has_t = ws->has_target;

	for (int32_t r = r0; r < r1; r++)
	{
		float	   *x = L + (size_t) (r - r0) * ld;
		float	   *g = dL ? dL + (size_t) (r - r0) * ld : NULL;
		double		w = ew[r];

		if (task == US_TASK_BINARY)
		{
			double		z = x[0],
						y = ey[r],
						pw = c->pos_weight;
			double		sig = 1.0 / (1.0 + exp(-z));

			if (has_t)
				*loss_sum += w * (pw * y * softplus(-z) + (1.0 - y) * softplus(z));
			if (g)
				g[0] = (float) (w * (-pw * y * (1.0 - sig) + (1.0 - y) * sig) * inv_n);
			if (pred)
				pred[(size_t) r * V] = (float) sig;
		}
		else if (task == US_TASK_REGRESSION)
		{
			double		d = (double) x[0] - ey[r];

			if (has_t)
				*loss_sum += w * d * d;
			if (g)
				g[0] = (float) (2.0 * w * d * inv_n);
			if (pred)
				pred[(size_t) r * V] = x[0];
		}
		else
		{
			float	   *pr = (pred && task != US_TASK_NEXT_ITEM) ? pred + (size_t) r * V : NULL;
			double		l = softmax_row(x, V, et[r], (float) (w * inv_n), g, pr);

			if (has_t)
				*loss_sum += w * l;
		}
	}
}

/*
 * Full output layer over all examples, in chunks of bounded logits. grads == NULL: no
 * backward. pred: predictions (n_ex, n_out) or NULL.
 */
static us_status
head_full(const us_model *model, us_ws *ws, us_params *g, double *loss_sum, float *pred)
{
	const us_model_config *c = &model->cfg;
	int			V = c->n_outputs,
				H = c->hidden_dim;
	int			tied = c->tie_output;
	const float *Wo = tied ? model->p.item_emb : model->p.out_w;
	int32_t		n_ex = ws->n_ex;
	int32_t		rows = (int32_t) (LOGIT_CHUNK_FLOATS / (size_t) V);
	double		inv_n = ws->n_norm > 0 ? 1.0 / ws->n_norm : (n_ex > 0 ? 1.0 / n_ex : 0.0);
	float	   *Hh = F32(ws->Hh),
			   *dH = g ? F32(ws->dH) : NULL;
	us_status	st;

	if (rows < 1)
		rows = 1;
	if (rows > n_ex)
		rows = n_ex;
	if (n_ex == 0)
		return US_OK;
	if (!(pred && c->task == US_TASK_NEXT_ITEM) &&
		(st = reserve(ws, &ws->logits, (size_t) rows, (size_t) V * sizeof(float))) != US_OK)
		return st;
	for (int32_t r0 = 0; r0 < n_ex; r0 += rows)
	{
		int32_t		nr = n_ex - r0 < rows ? n_ex - r0 : rows;
		float	   *L = (pred && c->task == US_TASK_NEXT_ITEM) ? pred + (size_t) r0 * V : F32(ws->logits);
		const float *Hc = Hh + (size_t) r0 * H;

		for (int32_t r = 0; r < nr; r++)
			memcpy(L + (size_t) r * V, model->p.out_b, (size_t) V * sizeof(float));
		if (tied)
			us_gemm(0, 1, nr, V, H, 1.0f, Hc, H, Wo, H, 1.0f, L, V);
		else
			us_gemm(0, 0, nr, V, H, 1.0f, Hc, H, Wo, V, 1.0f, L, V);
		head_rows(model, ws, r0, r0 + nr, L, V, g ? L : NULL, inv_n, loss_sum, pred);
		if (g)
		{
			float	   *dHc = dH + (size_t) r0 * H;

			for (int32_t r = 0; r < nr; r++)
				axpy(V, 1.0f, L + (size_t) r * V, g->out_b);
			if (tied)
			{
				us_gemm(0, 0, nr, H, V, 1.0f, L, V, Wo, H, 0.0f, dHc, H);
				us_gemm(1, 0, V, H, nr, 1.0f, L, V, Hc, H, 1.0f, g->item_emb, H);
			}
			else
			{
				us_gemm(0, 1, nr, H, V, 1.0f, L, V, Wo, V, 0.0f, dHc, H);
				us_gemm(1, 0, H, V, nr, 1.0f, Hc, H, L, V, 1.0f, g->out_w, V);
			}
		}
	}
	return US_OK;
}

/*
 * Sampled softmax (next_item training): candidates [positive, negatives ws->neg] per example,
 * logits corrected by -log(m * q) (logQ), accidental hits of the positive masked out.
 */
static us_status
head_sampled(const us_model *model, us_ws *ws, us_params *g, double *loss_sum,
			 const double *cdf, int32_t n_cdf)
{
	const us_model_config *c = &model->cfg;
	int			V = c->n_outputs,
				H = c->hidden_dim;
	int			tied = c->tie_output;
	int			m = ws->n_neg;
	int			ld = m + 1;
	int32_t		n_ex = ws->n_ex;
	int32_t		rows = (int32_t) (LOGIT_CHUNK_FLOATS / (size_t) ld);
	double		inv_n = ws->n_norm > 0 ? 1.0 / ws->n_norm : (n_ex > 0 ? 1.0 / n_ex : 0.0);
	const int32_t *neg = I32(ws->neg),
			   *et = I32(ws->ex_tgt);
	const float *ew = F32(ws->ex_w),
			   *nlq = F32(ws->neg_logq);
	float	   *negW = F32(ws->negW),
			   *dnegW = F32(ws->dnegW),
			   *wpos = F32(ws->wpos);
	float	   *Hh = F32(ws->Hh),
			   *dH = F32(ws->dH);
	us_status	st;

	if (n_ex == 0)
		return US_OK;
	if (rows > n_ex)
		rows = n_ex;
	if ((st = reserve(ws, &ws->logits, (size_t) rows, (size_t) ld * sizeof(float))) != US_OK)
		return st;
	/* gather the negatives' output vectors */
	for (int j = 0; j < m; j++)
	{
		if (tied)
			memcpy(negW + (size_t) j * H, model->p.item_emb + (size_t) neg[j] * H, (size_t) H * sizeof(float));
		else
			for (int h = 0; h < H; h++)
				negW[(size_t) j * H + h] = model->p.out_w[(size_t) h * V + neg[j]];
	}
	memset(dnegW, 0, (size_t) m * H * sizeof(float));
	for (int32_t r0 = 0; r0 < n_ex; r0 += rows)
	{
		int32_t		nr = n_ex - r0 < rows ? n_ex - r0 : rows;
		float	   *L = F32(ws->logits);
		const float *Hc = Hh + (size_t) r0 * H;
		float	   *dHc = dH + (size_t) r0 * H;

		us_gemm(0, 1, nr, m, H, 1.0f, Hc, H, negW, H, 0.0f, L + 1, ld);
		for (int32_t r = 0; r < nr; r++)
		{
			int32_t		e = r0 + r;
			int32_t		pos = et[e];
			float	   *x = L + (size_t) r * ld;
			const float *h = Hc + (size_t) r * H;
			double		dot = 0.0,
						q,
						w = ew[e];

			if (tied)
				memcpy(wpos, model->p.item_emb + (size_t) pos * H, (size_t) H * sizeof(float));
			else
				for (int hh = 0; hh < H; hh++)
					wpos[hh] = model->p.out_w[(size_t) hh * V + pos];
			for (int hh = 0; hh < H; hh++)
				dot += (double) h[hh] * wpos[hh];
			q = pos >= 1 && pos <= n_cdf ? cdf[pos - 1] - (pos >= 2 ? cdf[pos - 2] : 0.0) : 0.0;
			if (q <= 0.0)
				q = 1e-12;
			x[0] = (float) (dot + model->p.out_b[pos] - log((double) m * q));
			for (int j = 0; j < m; j++)
			{
				if (neg[j] == pos)
					x[1 + j] = -INFINITY;
				else
					x[1 + j] += model->p.out_b[neg[j]] - nlq[j];
			}
			*loss_sum += w * softmax_row(x, ld, 0, (float) (w * inv_n), g ? x : NULL, NULL);
			if (g)
			{
				float		gpos;

				gpos = x[0];
				/* positive: bias, output vector, hidden */
				g->out_b[pos] += gpos;
				for (int hh = 0; hh < H; hh++)
					dHc[(size_t) r * H + hh] = gpos * wpos[hh];
				if (tied)
					axpy(H, gpos, h, g->item_emb + (size_t) pos * H);
				else
					for (int hh = 0; hh < H; hh++)
						g->out_w[(size_t) hh * V + pos] += gpos * h[hh];
				for (int j = 0; j < m; j++)
					g->out_b[neg[j]] += x[1 + j];
			}
		}
		if (g)
		{
			/* negatives: dH += dL @ negW, dnegW += dL^T @ H */
			us_gemm(0, 0, nr, H, m, 1.0f, L + 1, ld, negW, H, 1.0f, dHc, H);
			us_gemm(1, 0, m, H, nr, 1.0f, L + 1, ld, Hc, H, 1.0f, dnegW, H);
		}
	}
	if (g)
		for (int j = 0; j < m; j++)
		{
			if (tied)
				axpy(H, 1.0f, dnegW + (size_t) j * H, g->item_emb + (size_t) neg[j] * H);
			else
				for (int h = 0; h < H; h++)
					g->out_w[(size_t) h * V + neg[j]] += dnegW[(size_t) j * H + h];
		}
	return US_OK;
}

/* ------------------------------------------------------------------ backward */

static inline void
touch_mark(touch *tc, int32_t row, int64_t stamp)
{
	if (tc == NULL || row <= 0)
		return;
	if (tc->stamp[row] != stamp)
	{
		tc->stamp[row] = stamp;
		tc->list[tc->n++] = row;
	}
}

static us_status
conv_backward_sparse(const us_model *model, us_ws *ws, us_params *g, const int *col0, int Ftot)
{
	const us_model_config *c = &model->cfg;
	int			E = c->embed_dim,
				F = c->n_filters,
				W = c->n_widths,
				D = us_model_feature_dim(c),
				WF = W * F;
	const int64_t *seq_tok = I64(ws->seq_tok);
	const int32_t *es = I32(ws->ex_seq),
			   *el = I32(ws->ex_len),
			   *amax = I32(ws->amax);
	const float *X = F32(ws->X),
			   *Z = F32(ws->Z),
			   *dZ = F32(ws->dZ),
			   *Wcat = F32(ws->Wcat);
	float	   *dX = F32(ws->dX);
	const int32_t *tok_u = I32(ws->tok_u);
	float	   *WT,
			   *dWT;
	us_status	st;

	if ((st = reserve(ws, &ws->WT, (size_t) Ftot, (size_t) E * sizeof(float))) ||
		(st = reserve(ws, &ws->dWT, (size_t) Ftot, (size_t) E * sizeof(float))))
		return st;
	WT = F32(ws->WT);
	dWT = F32(ws->dWT);
	for (int e = 0; e < E; e++)
		for (int q = 0; q < Ftot; q++)
			WT[(size_t) q * E + e] = Wcat[(size_t) e * Ftot + q];
	memset(dWT, 0, (size_t) Ftot * E * sizeof(float));
	for (int32_t x = 0; x < ws->n_ex; x++)
	{
		int64_t		base = seq_tok[es[x]];
		int32_t		len = el[x];
		const float *z = Z + (size_t) x * D;
		const float *dz = dZ + (size_t) x * D;
		const int32_t *am = amax + (size_t) x * WF;

		for (int i = 0; i < W; i++)
		{
			int			k = c->widths[i];

			for (int f = 0; f < F; f++)
				if (z[i * F + f] > 0.0f)
					g->conv_b[i][f] += dz[i * F + f];
			/* tap-major: the rows of dWT / WT touched for one tap are consecutive */
			for (int j = 0; j < k; j++)
			{
				size_t		q0 = (size_t) col0[i] + (size_t) j * F;
				const int32_t *tu = tok_u + base + j;

				for (int f = 0; f < F; f++)
				{
					float		gv = dz[i * F + f];
					int32_t		p = am[i * F + f];
					size_t		row;

					if (z[i * F + f] <= 0.0f || gv == 0.0f || j >= len - p)
						continue;
					row = (size_t) tu[p];
					axpy(E, gv, X + row * E, dWT + (q0 + f) * E);
					axpy(E, gv, WT + (q0 + f) * E, dX + row * E);
				}
			}
		}
	}
	for (int i = 0; i < W; i++)
		for (int j = 0; j < c->widths[i]; j++)
			for (int e = 0; e < E; e++)
			{
				float	   *gw = g->conv_w[i] + ((size_t) j * E + e) * F;
				const float *s = dWT + ((size_t) col0[i] + (size_t) j * F) * E + e;

				for (int f = 0; f < F; f++)
					gw[f] += s[(size_t) f * E];
			}
	return US_OK;
}

static us_status
conv_backward_dense(const us_model *model, us_ws *ws, us_params *g, const int *col0, int Ftot)
{
	const us_model_config *c = &model->cfg;
	int			E = c->embed_dim,
				F = c->n_filters,
				W = c->n_widths,
				D = us_model_feature_dim(c),
				WF = W * F;
	const int64_t *seq_tok = I64(ws->seq_tok);
	const int32_t *es = I32(ws->ex_seq),
			   *el = I32(ws->ex_len),
			   *amax = I32(ws->amax),
			   *tok_u = I32(ws->tok_u);
	const float *Z = F32(ws->Z),
			   *dZ = F32(ws->dZ),
			   *Wcat = F32(ws->Wcat);
	float	   *dX = F32(ws->dX);
	float	   *dWcat,
			   *dY;
	int32_t		U = ws->U;
	us_status	st;

	if ((st = reserve(ws, &ws->dWcat, (size_t) E, (size_t) Ftot * sizeof(float))) ||
		(st = reserve(ws, &ws->Y, (size_t) (U > 0 ? U : 1), (size_t) Ftot * sizeof(float))))
		return st;
	dWcat = F32(ws->dWcat);
	dY = F32(ws->Y);
	/* gradient of the per-input taps: summed over the tokens sharing an input */
	memset(dY, 0, (size_t) U * Ftot * sizeof(float));
	for (int32_t x = 0; x < ws->n_ex; x++)
	{
		const int32_t *tu = tok_u + seq_tok[es[x]];
		int32_t		len = el[x];
		const float *z = Z + (size_t) x * D;
		const float *dz = dZ + (size_t) x * D;
		const int32_t *am = amax + (size_t) x * WF;

		for (int i = 0; i < W; i++)
		{
			int			k = c->widths[i];

			for (int f = 0; f < F; f++)
			{
				float		gv = dz[i * F + f];
				int32_t		p = am[i * F + f];
				int			taps = len - p < k ? len - p : k;

				if (z[i * F + f] <= 0.0f || gv == 0.0f)
					continue;
				g->conv_b[i][f] += gv;
				for (int j = 0; j < taps; j++)
					dY[(size_t) tu[p + j] * Ftot + col0[i] + j * F + f] += gv;
			}
		}
	}
	if (U > 0)
	{
		us_gemm(1, 0, E, Ftot, U, 1.0f, F32(ws->X), E, dY, Ftot, 0.0f, dWcat, Ftot);
		us_gemm(0, 1, U, E, Ftot, 1.0f, dY, Ftot, Wcat, Ftot, 1.0f, dX, E);
	}
	else
		memset(dWcat, 0, (size_t) E * Ftot * sizeof(float));
	for (int i = 0; i < W; i++)
		for (int j = 0; j < c->widths[i]; j++)
			for (int e = 0; e < E; e++)
				axpy(F, 1.0f, dWcat + (size_t) e * Ftot + col0[i] + j * F,
					 g->conv_w[i] + ((size_t) j * E + e) * F);
	return US_OK;
}

static us_status
backward(const us_model *model, us_ws *ws, us_params *g, int conv_mode, const int *col0,
		 int Ftot, touch *tch, int64_t stamp)
{
	const us_model_config *c = &model->cfg;
	int			E = c->embed_dim,
				H = c->hidden_dim,
				D = us_model_feature_dim(c),
				R = c->recent_window,
				off = c->n_widths * c->n_filters;
	int32_t		n_ex = ws->n_ex;
	size_t		nh = (size_t) n_ex * H;
	float	   *dH = F32(ws->dH),
			   *A = F32(ws->A),
			   *dr = F32(ws->drop),
			   *dZ,
			   *dX;
	const int64_t *seq_tok = I64(ws->seq_tok);
	const int32_t *es = I32(ws->ex_seq),
			   *el = I32(ws->ex_len);
	us_status	st;

	if ((st = reserve(ws, &ws->dZ, (size_t) n_ex, (size_t) D * sizeof(float))) ||
		(st = reserve(ws, &ws->dX, (size_t) (ws->U > 0 ? ws->U : 1), (size_t) E * sizeof(float))))
		return st;
	dZ = F32(ws->dZ);
	dX = F32(ws->dX);
	for (size_t i = 0; i < nh; i++)
		dH[i] = A[i] > 0.0f ? dH[i] * dr[i] : 0.0f;
	for (int32_t x = 0; x < n_ex; x++)
		axpy(H, 1.0f, dH + (size_t) x * H, g->dense_b);
	us_gemm(1, 0, D, H, n_ex, 1.0f, F32(ws->Z), D, dH, H, 1.0f, g->dense_w, H);
	us_gemm(0, 1, n_ex, D, H, 1.0f, dH, H, model->p.dense_w, H, 0.0f, dZ, D);
	memset(dX, 0, (size_t) ws->U * E * sizeof(float));

	if (conv_mode == US_CONV_BWD_AUTO)
		conv_mode = (int64_t) n_ex * 4 <= ws->T ? US_CONV_BWD_SPARSE : US_CONV_BWD_DENSE;
	st = conv_mode == US_CONV_BWD_SPARSE ? conv_backward_sparse(model, ws, g, col0, Ftot)
		: conv_backward_dense(model, ws, g, col0, Ftot);
	if (st != US_OK)
		return st;
	if (R > 0)
		for (int32_t x = 0; x < n_ex; x++)
		{
			int64_t		base = seq_tok[es[x]];

			for (int r = 0; r < R; r++)
			{
				int64_t		idx = (int64_t) el[x] - R + r;

				if (idx >= 0)
					axpy(E, 1.0f, dZ + (size_t) x * D + off + (size_t) r * E,
						 dX + (size_t) I32(ws->tok_u)[base + idx] * E);
			}
		}
	{
		const int32_t *ti = I32(ws->u_item),
				   *tb = I32(ws->u_beh),
				   *tg = I32(ws->u_gap);

		for (int32_t t = 0; t < ws->U; t++)
		{
			const float *dx = dX + (size_t) t * E;

			if (ti[t] > 0)
			{
				axpy(E, 1.0f, dx, g->item_emb + (size_t) ti[t] * E);
				touch_mark(tch ? &tch[0] : NULL, ti[t], stamp);
			}
			if (c->n_behaviors > 0 && tb[t] > 0)
			{
				axpy(E, 1.0f, dx, g->behavior_emb + (size_t) tb[t] * E);
				touch_mark(tch ? &tch[1] : NULL, tb[t], stamp);
			}
			if (c->n_gap_buckets > 0 && tg[t] > 0)
			{
				axpy(E, 1.0f, dx, g->gap_emb + (size_t) tg[t] * E);
				touch_mark(tch ? &tch[2] : NULL, tg[t], stamp);
			}
		}
	}
	return US_OK;
}

/* ------------------------------------------------------------------ one batch */

typedef struct batch_opts
{
	us_params  *g;				/* gradient tensors, NULL: forward only */
	int			conv_mode;
	touch	   *tch;
	int64_t		stamp;
	us_rng	   *drop_rng;		/* NULL: no dropout */
	int			sampled;		/* sampled softmax with ws->neg */
	const double *cdf;
	int32_t		n_cdf;
	float	   *pred;
	const float *drop_mask;		/* precomputed dropout scales (n_ex, H), or NULL */
} batch_opts;

/*
 * Everything run_batch_compute will reserve, reserved here (on the calling thread) so that a
 * worker thread can run the compute part with a frozen workspace; also finds the batch's
 * distinct inputs, which fixes the sizes.
 */
static us_status
run_batch_reserve(const us_model *model, us_ws *ws, const batch_opts *o)
{
	const us_model_config *c = &model->cfg;
	int			E = c->embed_dim,
				H = c->hidden_dim,
				D = us_model_feature_dim(c),
				WF = c->n_widths * c->n_filters;
	int			col0[US_MAX_WIDTHS];
	int			Ftot = conv_cols(c, col0);
	size_t		n_ex = (size_t) (ws->n_ex > 0 ? ws->n_ex : 1);
	size_t		U;
	us_status	st;

	if ((st = reserve(ws, &ws->Wcat, (size_t) E, (size_t) Ftot * sizeof(float))) ||
		(st = reserve(ws, &ws->Z, n_ex, (size_t) D * sizeof(float))) ||
		(st = reserve(ws, &ws->A, n_ex, (size_t) H * sizeof(float))) ||
		(st = reserve(ws, &ws->Hh, n_ex, (size_t) H * sizeof(float))) ||
		(st = reserve(ws, &ws->drop, n_ex, (size_t) H * sizeof(float))) ||
		(st = reserve(ws, &ws->dH, n_ex, (size_t) H * sizeof(float))) ||
		(st = reserve(ws, &ws->amax, n_ex, (size_t) WF * sizeof(int32_t))) ||
		(st = reserve(ws, &ws->run, 3, (size_t) WF * sizeof(float))))
		return st;
	if (ws->n_ex == 0)
		return US_OK;
	if ((st = gather_dedup(model, ws)) != US_OK)
		return st;
	U = (size_t) (ws->U > 0 ? ws->U : 1);
	if ((st = reserve(ws, &ws->Y, U, (size_t) Ftot * sizeof(float))))
		return st;
	if (o->sampled)
	{
		int			ld = ws->n_neg + 1;
		int32_t		rows = (int32_t) (LOGIT_CHUNK_FLOATS / (size_t) ld);

		if (rows > ws->n_ex)
			rows = ws->n_ex;
		if ((st = reserve(ws, &ws->logits, (size_t) rows, (size_t) ld * sizeof(float))))
			return st;
	}
	else if (!(o->pred && c->task == US_TASK_NEXT_ITEM))
	{
		int32_t		rows = (int32_t) (LOGIT_CHUNK_FLOATS / (size_t) c->n_outputs);

		if (rows < 1)
			rows = 1;
		if (rows > ws->n_ex)
			rows = ws->n_ex;
		if ((st = reserve(ws, &ws->logits, (size_t) rows, (size_t) c->n_outputs * sizeof(float))))
			return st;
	}
	if (o->g == NULL)
		return US_OK;
	if ((st = reserve(ws, &ws->dZ, (size_t) ws->n_ex, (size_t) D * sizeof(float))) ||
		(st = reserve(ws, &ws->dX, U, (size_t) E * sizeof(float))) ||
		(st = reserve(ws, &ws->WT, (size_t) Ftot, (size_t) E * sizeof(float))) ||
		(st = reserve(ws, &ws->dWT, (size_t) Ftot, (size_t) E * sizeof(float))) ||
		(st = reserve(ws, &ws->dWcat, (size_t) E, (size_t) Ftot * sizeof(float))))
		return st;
	return US_OK;
}

/* forward (+ loss, + backward when o->g) of a batch prepared by run_batch_reserve */
static us_status
run_batch_compute(const us_model *model, us_ws *ws, const batch_opts *o, double *loss_sum)
{
	const us_model_config *c = &model->cfg;
	int			col0[US_MAX_WIDTHS];
	int			Ftot = conv_cols(c, col0);
	us_status	st;

	if (ws->n_ex == 0)
		return US_OK;
	gather_fill(model, ws);
	pack_conv(model, F32(ws->Wcat), Ftot, col0);
	if ((st = conv_forward(model, ws, col0, Ftot)) != US_OK)
		return st;
	recent_forward(model, ws);
	dense_forward(model, ws, o->drop_rng, o->drop_mask);
	if (o->sampled)
		st = head_sampled(model, ws, o->g, loss_sum, o->cdf, o->n_cdf);
	else
		st = head_full(model, ws, o->g, loss_sum, o->pred);
	if (st != US_OK || o->g == NULL)
		return st;
	if (c->tie_output && o->tch)
	{
		/* the output layer reached item rows: every row (full softmax) or the candidates */
		if (o->sampled)
		{
			for (int j = 0; j < ws->n_neg; j++)
				touch_mark(&o->tch[0], I32(ws->neg)[j], o->stamp);
			for (int32_t x = 0; x < ws->n_ex; x++)
				touch_mark(&o->tch[0], I32(ws->ex_tgt)[x], o->stamp);
		}
		else
			for (int32_t r = 1; r < c->n_items; r++)
				touch_mark(&o->tch[0], r, o->stamp);
	}
	return backward(model, ws, o->g, o->conv_mode, col0, Ftot, o->tch, o->stamp);
}

static us_status
run_batch(const us_model *model, us_ws *ws, const batch_opts *o, double *loss_sum)
{
	us_status	st = run_batch_reserve(model, ws, o);

	if (st != US_OK || ws->n_ex == 0)
		return st;
	return run_batch_compute(model, ws, o, loss_sum);
}

us_status
us_model_loss_and_grad(const us_model *model, const us_dataset *data, const int32_t *seq_ids,
					   int32_t n, int32_t max_examples_per_seq, int conv_bwd, float *grads,
					   double *loss)
{
	us_ws		ws;
	us_params	g;
	batch_opts	o;
	double		sum = 0.0;
	us_status	st;
	const us_model_config *c;

	if (model == NULL || data == NULL || (seq_ids == NULL && n > 0) || grads == NULL || n < 0)
		return US_EINVAL;
	c = &model->cfg;
	memset(&ws, 0, sizeof ws);
	ws.alloc = model->alloc;
	memset(grads, 0, model->n_params * sizeof(float));
	us_params_bind(c, grads, &g);
	memset(&o, 0, sizeof o);
	o.g = &g;
	o.conv_mode = conv_bwd;
	st = build_batch(model, data, seq_ids, n, is_prefix_task(c->task), max_examples_per_seq, 1, &ws);
	if (st == US_OK)
		st = run_batch(model, &ws, &o, &sum);
	if (st == US_OK)
	{
		/* padding rows are not parameters */
		memset(g.item_emb, 0, (size_t) c->embed_dim * sizeof(float));
		if (g.behavior_emb)
			memset(g.behavior_emb, 0, (size_t) c->embed_dim * sizeof(float));
		if (g.gap_emb)
			memset(g.gap_emb, 0, (size_t) c->embed_dim * sizeof(float));
		if (loss)
			*loss = ws.n_ex > 0 ? sum / ws.n_ex : 0.0;
	}
	ws_free(&ws);
	return st;
}

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

static void
optimizer_step(us_trainer *tr, float lr)
{
	us_model   *model = tr->model;
	const us_train_config *tc = &tr->tc;
	size_t		E = (size_t) model->cfg.embed_dim;
	size_t		off[3];
	int32_t		rows[3];
	size_t		dense0;
	opt_step	s;

	emb_tables(model, off, rows);
	dense0 = off[2] + (size_t) rows[2] * E;
	/* padding rows never learn; drop what a tied output layer put there */
	for (int t = 0; t < 3; t++)
		if (rows[t] > 0)
			memset(tr->grads + off[t], 0, E * sizeof(float));

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
	if (tc->clip_norm > 0.0f)
	{
		double		ss = sumsq(tr->grads + dense0, model->n_params - dense0);
		double		norm;

		for (int t = 0; t < 3; t++)
			for (int32_t i = 0; i < tr->tch[t].n; i++)
				ss += sumsq(tr->grads + off[t] + (size_t) tr->tch[t].list[i] * E, E);
		norm = sqrt(ss);
		if (norm > tc->clip_norm)
			s.scale = (float) (tc->clip_norm / (norm + 1e-6));
	}
	for (int t = 0; t < 3; t++)
	{
		for (int32_t i = 0; i < tr->tch[t].n; i++)
		{
			size_t		o = off[t] + (size_t) tr->tch[t].list[i] * E;

			update_range(&s, model->params_block + o, tr->grads + o, tr->m1 + o,
						 tr->m2 ? tr->m2 + o : tr->m1 + o, E);
		}
		tr->tch[t].n = 0;
	}
	update_range(&s, model->params_block + dense0, tr->grads + dense0, tr->m1 + dense0,
				 tr->m2 ? tr->m2 + dense0 : tr->m1 + dense0, model->n_params - dense0);
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
	if (model->cfg.task == US_TASK_NEXT_ITEM && tc->n_negatives > 0)
	{
		/* unigram^0.75 over rows 1..V-1 (OOV and unknown counts weigh as one occurrence) */
		int32_t		V = model->cfg.n_items;
		double		acc = 0.0;

		tr->neg_rows = V - 1;
		tr->neg_cdf = zalloc(alloc, (size_t) tr->neg_rows, sizeof(double));
		if (tr->neg_cdf == NULL)
			goto fail;
		for (int32_t r = 1; r < V; r++)
		{
			double		cnt = 1.0;

			if (r >= 2 && model->vocab.item_counts && r - 2 < model->vocab.n_items &&
				model->vocab.item_counts[r - 2] > 1)
				cnt = model->vocab.item_counts[r - 2];
			acc += pow(cnt, 0.75);
			tr->neg_cdf[r - 1] = acc;
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
	ws_free(&tr->ws);
	if (tr->grads)
		a.free(a.ctx, tr->grads);
	if (tr->m1)
		a.free(a.ctx, tr->m1);
	if (tr->m2)
		a.free(a.ctx, tr->m2);
	for (int t = 0; t < 3; t++)
	{
		if (tr->tch[t].list)
			a.free(a.ctx, tr->tch[t].list);
		if (tr->tch[t].stamp)
			a.free(a.ctx, tr->tch[t].stamp);
	}
	if (tr->perm)
		a.free(a.ctx, tr->perm);
	if (tr->neg_cdf)
		a.free(a.ctx, tr->neg_cdf);
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

	if ((st = reserve(ws, &ws->neg, (size_t) m, sizeof(int32_t))) ||
		(st = reserve(ws, &ws->neg_logq, (size_t) m, sizeof(float))) ||
		(st = reserve(ws, &ws->negW, (size_t) m, (size_t) H * sizeof(float))) ||
		(st = reserve(ws, &ws->dnegW, (size_t) m, (size_t) H * sizeof(float))) ||
		(st = reserve(ws, &ws->wpos, 1, (size_t) H * sizeof(float))))
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
		I32(ws->neg)[j] = lo + 1;
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
		w->st = run_batch_compute(tr->model, w->ws, &w->o, &w->loss);
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
			/* padding rows are not trained (a tied output layer writes row 0) */
			if (rows[t] > 0)
				memset(w->grads + off[t], 0, E * sizeof(float));
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

/*
 * Loss and gradient of the minibatch ids[0..nb-1] into tr->grads and tr->tch. rng: the step's
 * generator (negatives first, then dropout), or NULL for no dropout and the full softmax.
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
	int			prefix = is_prefix_task(c->task);
	int			sampled = rng != NULL && c->task == US_TASK_NEXT_ITEM && tr->tc.n_negatives > 0;
	int			H = c->hidden_dim;
	int64_t		total = 0;
	int64_t		stamp;
	const float *mask = NULL;
	us_status	st;

	*loss_sum = 0.0;
	*n_ex = 0;
	if (tr->nt <= 1)
	{
		batch_opts	o;
		us_params	g;

		st = build_batch(model, data, ids, nb, prefix, tr->tc.max_examples_per_seq, 1, &tr->ws);
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
		st = run_batch(model, &tr->ws, &o, loss_sum);
		if (st != US_OK)
			clear_grads(tr);
		return st;
	}

	for (int s = 0; s < tr->nt; s++)
	{
		int32_t		i0 = (int32_t) ((int64_t) nb * s / tr->nt),
					i1 = (int32_t) ((int64_t) nb * (s + 1) / tr->nt);
		us_ws	   *ws = tr->wk[s].ws;

		st = build_batch(model, data, ids + i0, i1 - i0, prefix, tr->tc.max_examples_per_seq, 1, ws);
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
	if (rng != NULL && c->dropout > 0.0f)
	{
		/* the draws dense_forward makes for the whole batch on one thread, in its order */
		uint32_t	thr = (uint32_t) ((double) c->dropout * 16777216.0);
		float		scale = 1.0f / (1.0f - c->dropout);
		size_t		nh = (size_t) total * H;
		float	   *m;

		if ((st = reserve(&tr->ws, &tr->ws.mask, (size_t) total, (size_t) H * sizeof(float))))
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
					if ((st = reserve(ws, &ws->neg, (size_t) m, sizeof(int32_t))) ||
						(st = reserve(ws, &ws->neg_logq, (size_t) m, sizeof(float))) ||
						(st = reserve(ws, &ws->negW, (size_t) m, (size_t) H * sizeof(float))) ||
						(st = reserve(ws, &ws->dnegW, (size_t) m, (size_t) H * sizeof(float))) ||
						(st = reserve(ws, &ws->wpos, 1, (size_t) H * sizeof(float))))
						return st;
					memcpy(ws->neg.p, tr->ws.neg.p, (size_t) m * sizeof(int32_t));
					memcpy(ws->neg_logq.p, tr->ws.neg_logq.p, (size_t) m * sizeof(float));
					ws->n_neg = m;
				}
			}
			if ((st = run_batch_reserve(model, ws, &w->o)) != US_OK)
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

		ws_free(&w->own_ws);
		if (w->grads)
			a.free(a.ctx, w->grads);
		for (int t = 0; t < 3; t++)
		{
			if (w->own_tch[t].list)
				a.free(a.ctx, w->own_tch[t].list);
			if (w->own_tch[t].stamp)
				a.free(a.ctx, w->own_tch[t].stamp);
		}
	}
	a.free(a.ctx, tr->wk);
	tr->wk = NULL;
	tr->nt = 0;
}

us_status
us_trainer_epoch(us_trainer *tr, const us_dataset *data, const int32_t *seq_ids, int32_t n,
				 int32_t epoch, const us_progress *progress, us_epoch_stats *stats)
{
	us_model   *model;
	int32_t		B;
	int64_t		n_steps;
	us_rng		rng;
	double		loss_sum = 0.0;
	int64_t		examples = 0;
	float		lr;
	us_status	st;

	if (tr == NULL || data == NULL || (seq_ids == NULL && n > 0) || n < 0 || epoch < 0)
		return US_EINVAL;
	model = tr->model;
	B = tr->tc.batch_size;
	lr = us_train_learning_rate(&tr->tc, epoch);
	if (!isfinite(lr))
		return US_ENONFINITE;
	if (stats)
		memset(stats, 0, sizeof(*stats));
	if (n > tr->perm_cap)
	{
		if (tr->perm)
			tr->alloc.free(tr->alloc.ctx, tr->perm);
		tr->perm_cap = 0;
		tr->perm = zalloc(&tr->alloc, (size_t) n, sizeof(int32_t));
		if (tr->perm == NULL)
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
	n_steps = ((int64_t) n + B - 1) / B;
	for (int64_t step = 0; step < n_steps; step++)
	{
		int32_t		b0 = (int32_t) (step * B);
		int32_t		nb = n - b0 < B ? n - b0 : B;
		double		bl = 0.0;
		int64_t		n_ex = 0;

		us_rng_seed(&rng, mix_seed(tr->tc.seed, (uint64_t) epoch, (uint64_t) step));
		st = step_grads(tr, data, tr->perm + b0, nb, &rng, &bl, &n_ex);
		if (st != US_OK)
			return st;
		if (n_ex > 0)
		{
			if (!isfinite(bl))
				return US_ENONFINITE;
			optimizer_step(tr, lr);
			loss_sum += bl;
			examples += n_ex;
		}
		if (progress && progress->fn && progress->fn(progress->ctx, step + 1, n_steps))
			return US_ECANCELED;
	}
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

/* ------------------------------------------------------------------ predict */

us_status
us_model_predict(const us_model *model, const us_dataset *data, const int32_t *seq_ids,
				 int32_t n, float *out, float *features, double *loss,
				 const us_progress *progress)
{
	us_ws		ws;
	double		sum = 0.0;
	int64_t		counted = 0;
	us_status	st = US_OK;
	int			V,
				D;
	int64_t		max_tok;

	if (model == NULL || data == NULL || (seq_ids == NULL && n > 0) || n < 0 ||
		(out == NULL && n > 0) || data->offsets == NULL)
		return US_EINVAL;
	V = model->cfg.n_outputs;
	D = us_model_feature_dim(&model->cfg);
	{
		int			col0[US_MAX_WIDTHS];

		/* chunk tokens so the per-input conv taps stay within PREDICT_TAP_FLOATS */
		max_tok = (int64_t) (PREDICT_TAP_FLOATS / (size_t) conv_cols(&model->cfg, col0));
		if (max_tok < model->cfg.max_len)
			max_tok = model->cfg.max_len;
	}
	memset(&ws, 0, sizeof ws);
	ws.alloc = model->alloc;
	for (int32_t i0 = 0; i0 < n;)
	{
		int32_t		i1 = i0;
		int64_t		tok = 0;
		batch_opts	o;
		double		bl = 0.0;

		/* a chunk of whole sequences with bounded tokens */
		while (i1 < n && i1 - i0 < PREDICT_MAX_SEQS)
		{
			int32_t		s = seq_ids[i1];
			int64_t		len;

			if (s < 0 || s >= data->n_seqs)
			{
				st = US_EINVAL;
				goto done;
			}
			len = data->offsets[s + 1] - data->offsets[s];
			if (len > model->cfg.max_len)
				len = model->cfg.max_len;
			if (i1 > i0 && tok + len > max_tok)
				break;
			tok += len > 0 ? len : 0;
			i1++;
		}
		st = build_batch(model, data, seq_ids + i0, i1 - i0, 0, 0, 0, &ws);
		if (st != US_OK)
			goto done;
		memset(&o, 0, sizeof o);
		o.pred = out + (size_t) i0 * V;
		st = run_batch(model, &ws, &o, &bl);
		if (st != US_OK)
			goto done;
		if (features)
			memcpy(features + (size_t) i0 * D, ws.Z.p, (size_t) (i1 - i0) * D * sizeof(float));
		if (ws.has_target)
		{
			sum += bl;
			counted += i1 - i0;
		}
		i0 = i1;
		if (progress && progress->fn && progress->fn(progress->ctx, i0, n))
		{
			st = US_ECANCELED;
			goto done;
		}
	}
	if (loss)
		*loss = counted > 0 ? sum / counted : NAN;
	if (counted > 0 && !isfinite(sum))
		st = US_ENONFINITE;
done:
	ws_free(&ws);
	return st;
}

/* ------------------------------------------------------------------ surprise */

us_status
us_model_surprise(const us_model *model, const us_events *events, double *nll, int32_t *rank)
{
	const us_model_config *c;
	us_ws		ws;
	us_dataset	data;
	int64_t		offsets[2];
	int32_t		id = 0;
	int32_t		n,
				start,
				V;
	float	   *out = NULL;
	batch_opts	o;
	double		unused = 0.0;
	us_status	st;

	if (model == NULL || events == NULL || events->n < 0 || (events->n > 0 && events->items == NULL))
		return US_EINVAL;
	c = &model->cfg;
	if (!is_prefix_task(c->task) || (c->task == US_TASK_NEXT_BEHAVIOR && events->n > 0 && events->behaviors == NULL))
		return US_EINVAL;
	n = events->n > c->max_len ? c->max_len : events->n;
	if (n < 2)
		return US_OK;
	start = events->n - n;
	V = c->n_outputs;
	memset(&data, 0, sizeof data);
	offsets[0] = 0;
	offsets[1] = n;
	data.n_seqs = 1;
	data.offsets = offsets;
	data.items = events->items + start;
	data.behaviors = events->behaviors ? events->behaviors + start : NULL;
	data.gaps = events->gaps ? events->gaps + start : NULL;
	memset(&ws, 0, sizeof ws);
	ws.alloc = model->alloc;
	/* every prefix of the window at once, as training's prefix loss */
	if ((st = build_batch(model, &data, &id, 1, 1, 0, 0, &ws)) != US_OK)
		goto done;
	out = model->alloc.alloc(model->alloc.ctx, (size_t) ws.n_ex * V * sizeof(float));
	if (out == NULL)
	{
		st = US_ENOMEM;
		goto done;
	}
	memset(&o, 0, sizeof o);
	o.pred = out;				/* next_item: logits; next_behavior: probabilities */
	if ((st = run_batch(model, &ws, &o, &unused)) != US_OK)
		goto done;
	for (int32_t e = 0; e < ws.n_ex; e++)
	{
		const float *x = out + (size_t) e * V;
		int32_t		tg = I32(ws.ex_tgt)[e];
		float		xt = x[tg];
		int32_t		higher = 0;
		double		l;

		if (c->task == US_TASK_NEXT_ITEM)
		{
			float		mx = -FLT_MAX;
			float		lane[8] = {0, 0, 0, 0, 0, 0, 0, 0};
			double		sum = 0.0;
			int			j;

			for (j = 0; j < V; j++)
				mx = x[j] > mx ? x[j] : mx;
			for (j = 0; j + 8 <= V; j += 8)
				for (int q = 0; q < 8; q++)
					lane[q] += vexpf(x[j + q] - mx);
			for (; j < V; j++)
				lane[0] += vexpf(x[j] - mx);
			for (int q = 0; q < 8; q++)
				sum += lane[q];
			l = log(sum) - ((double) xt - mx);
		}
		else
			l = -log(xt > FLT_MIN ? (double) xt : (double) FLT_MIN);
		for (int32_t j = 2; j < V; j++)
			higher += x[j] >= xt;
		if (nll)
			nll[e] = l;
		if (rank)
			rank[e] = tg >= 2 ? higher : 0;	/* the target itself counts once: 1 + others */
	}
	if (!isfinite(unused))
		st = US_ENONFINITE;
done:
	if (out)
		model->alloc.free(model->alloc.ctx, out);
	ws_free(&ws);
	return st;
}
