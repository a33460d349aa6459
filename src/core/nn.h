/*
 * nn.h: private interface between the batch side (batch.c: batch assembly, predict, surprise;
 * train.c: optimizer, trainer, threads) and the network (nn.c: forward / backward per layer;
 * heads.c: the heads). Not installed.
 *
 * The workspace us_ws carries one minibatch through the network: batch.c fills the batch part
 * (us_batch_build), nn.c owns the rest. Shapes: T tokens of the batch, U distinct (item,
 * behaviour, gap) inputs among them, n_ex examples, E embedding, F filters per width, W widths,
 * Ftot = sum_k k*F conv taps, D = W*F + R*E features, H hidden, V outputs.
 */
#ifndef USERSEQ_NN_H
#define USERSEQ_NN_H

#include <stddef.h>
#include <stdint.h>

#include "userseq/us_model.h"
#include "userseq/us_rng.h"
#include "us_internal.h"

/* a growable scratch buffer of the workspace */
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
	/* sasrec: the batch's dataset sequence ids (dropout masks), the encoder's arena
	 * (activations + backward scratch) and the gradient of its output rows (T, E) */
	const int32_t *seq_ids;		/* (nseq) */
	buf			enc,
				denc;
} us_ws;

#define F32(b) ((float *) (b).p)
#define I32(b) ((int32_t *) (b).p)
#define I64(b) ((int64_t *) (b).p)

/* Makes b hold n elements of elem bytes (grows geometrically; never allocates when frozen). */
us_status	us_ws_reserve(us_ws *ws, buf *b, size_t n, size_t elem);
/* Frees every buffer of the workspace. */
void		us_ws_free(us_ws *ws);

/* touched embedding rows of the step (lazy updates) */
typedef struct touch
{
	int32_t		n_rows;
	int32_t	   *list;
	int32_t		n;
	int64_t    *stamp;
} touch;

static inline void
touch_mark(touch *tc, int32_t row, int64_t stamp)
{
	if (tc == NULL || row <= US_ROW_PAD)	/* padding rows are not trained */
		return;
	if (tc->stamp[row] != stamp)
	{
		tc->stamp[row] = stamp;
		tc->list[tc->n++] = row;
	}
}

static inline void
axpy(int n, float a, const float *x, float *y)
{
	for (int i = 0; i < n; i++)
		y[i] += a * x[i];
}

/* total width of the concatenated taps and the column of (width i, tap 0) */
static inline int
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

/* What one pass of the network over a built batch does. */
typedef struct batch_opts
{
	us_params  *g;				/* gradient tensors, NULL: forward only */
	int			conv_mode;		/* US_CONV_BWD_* */
	touch	   *tch;			/* item, behaviour, gap rows the gradient reached, or NULL */
	int64_t		stamp;
	us_rng	   *drop_rng;		/* NULL: no dropout */
	int			sampled;		/* sampled softmax with ws->neg */
	const double *cdf;
	int32_t		n_cdf;
	float	   *pred;			/* predictions (n_ex, n_outputs), or NULL */
	const float *drop_mask;		/* precomputed dropout scales (n_ex, H), or NULL */
	int			enc_dropout;	/* sasrec: encoder dropout on, masks from enc_seed */
	uint64_t	enc_seed;
	int			hidden_only;	/* stop after the dense layer (ws->Hh), no head */
	uint64_t	edrop_key;		/* embedding dropout mask of the step (cfg.embed_dropout), 0: none */
} batch_opts;

/* the next_* tasks train one example per prefix */
static inline int
us_is_prefix_task(int task)
{
	return task == US_TASK_NEXT_ITEM || task == US_TASK_NEXT_BEHAVIOR;
}

/*
 * Gathers the kept events of seq_ids into ws and lists the examples: one per sequence, or one
 * per prefix when prefixes (training of the next_* tasks), at most max_examples_per_seq each
 * (0: all). need_target: the loss needs targets (training); otherwise used when present.
 */
us_status	us_batch_build(const us_model *model, const us_dataset *data, const int32_t *ids,
						   int32_t n, int prefixes, int32_t max_examples_per_seq, int need_target,
						   us_ws *ws);

/* one batch built by us_batch_build through the network: us_nn_reserve, then us_nn_run */
us_status	us_batch_run(const us_model *model, us_ws *ws, const batch_opts *o, double *loss_sum);


/*
 * Everything us_nn_run will reserve, reserved here (on the calling thread) so that a worker
 * thread can run the compute part with a frozen workspace; also finds the batch's distinct
 * inputs, which fixes the sizes.
 */
us_status	us_nn_reserve(const us_model *model, us_ws *ws, const batch_opts *o);

/*
 * Forward of a batch prepared by us_nn_reserve, its loss added to *loss_sum (weighted, not
 * yet divided), and when o->g the backward: gradients added into o->g, touched rows marked.
 */
us_status	us_nn_run(const us_model *model, us_ws *ws, const batch_opts *o, double *loss_sum);

/* heads.c: the logits buffer of the head o asks for (us_nn_reserve's part for the head) */
us_status	us_nn_head_reserve(const us_model *model, us_ws *ws, const batch_opts *o);

/*
 * heads.c: the head of o over ws->Hh (full or sampled softmax, sigmoid, linear): its loss added
 * to *loss_sum, predictions to o->pred, and when o->g the output layer's gradients, dH and the
 * output rows touched.
 */
us_status	us_nn_head(const us_model *model, us_ws *ws, const batch_opts *o, double *loss_sum);

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
 * heads.c: next_item, after a hidden_only pass over prefix examples: each example's -log softmax of its
 * target (nll) and 1 + the number of catalogue rows (>= 2) other than the target scoring at
 * least as high (rank; 0 for a target row < 2), without storing the n_ex x V logits.
 */
/* hist (n_ex item rows, may be NULL when no prior is active): example r's history is
 * hist[0..r] (the transition prior reads hist[r], the repeat prior all of it) */
us_status	us_nn_surprise_next_item(const us_model *model, us_ws *ws, const int32_t *hist,
									 double *nll, int32_t *rank);

/*
 * One sequence of n input vectors X (n, E), no bias, for explanations (explain.c):
 * forward: M (W*F) = max over the windows of each width's bias-free window sums, am (W*F) the
 *   first window attaining it; Y, S (max(n, 1), F) scratch. A sequence shorter than a width has
 *   one window holding its events (the rest zero vectors).
 * backward to the input: dX (n, E) += the gradient G (D) of the pooled features (through each
 *   filter's argmax window, taps inside the sequence) and of the recent window (its copies).
 */
void		us_nn_seq_conv_pool(const us_model *model, const float *X, int32_t n, float *Y,
								float *S, float *M, int32_t *am);
void		us_nn_seq_conv_pool_backward_input(const us_model *model, int32_t n, const int32_t *am,
											   const float *G, float *dX);

#endif
