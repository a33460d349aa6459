/*
 * scorer_internal.h: what the two halves of the scorer share. scorer.c is the folded
 * single-sequence forward (tables, convolutions, hidden layer, every logit); topk.c is the
 * exact next_item top-k (the int8 screen of the output rows, its kernels and the heaps). The
 * seam is small: top-k asks scorer.c for h (us_scorer_hidden) and for fp32 logits
 * (us_row_logit, us_scorer_item_logits), and scorer.c asks topk.c to build and free the screen.
 * Private to src/core.
 */
#ifndef USERSEQ_SCORER_INTERNAL_H
#define USERSEQ_SCORER_INTERNAL_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "userseq/us_model.h"
#include "us_attn.h"
#include "us_internal.h"

struct us_scorer
{
	const us_model *model;
	us_allocator alloc;

	int32_t		V,				/* item rows */
				NB,				/* behaviour rows, 0 = none */
				NG,				/* gap buckets, 0 = none */
				L, E, F, H, W, R, D, O;
	int32_t		widths[US_MAX_WIDTHS];
	size_t		S;				/* folded row width: sum_k k * F */
	size_t		woff[US_MAX_WIDTHS];	/* column of (width w, tap 0) in a folded row */

	int			folded;			/* 1: every item row folded or computable (see fold_slot) */
	int32_t		n_fold;			/* item rows in t_item */
	int32_t    *fold_slot;		/* (V) t_item row of each item row, -1 = cold; NULL = identity */
	float	   *cold;			/* (L, S) per-request products of cold item rows */
	float	   *xcold;			/* (L, E) their embeddings */
	float	   *t_item;			/* (n_fold, S) */
	float	   *t_beh;			/* (NB, S) or NULL */
	float	   *t_gap;			/* (NG, S) or NULL */
	int			beh0_zero;		/* folded padding row of t_beh / t_gap is all zero: skip it */
	int			gap0_zero;

	/* scratch */
	float	   *x;				/* direct: (L, E) inputs; folded: (R, E) recent rows */
	float	   *c;				/* direct: (DIRECT_CHUNK + kmax - 1, S) tap products */
	float	   *w_cat;			/* direct: (E, S) every width's taps side by side */
	float	   *z;				/* (D) features */
	float	   *h;				/* (H) */
	float	   *logits;			/* next_item: (O) */
	uint8_t    *seen;			/* next_item: (V + 7) / 8 bits */
	int32_t		last_item;		/* item row of the last event of the request (transition prior) */
	const int32_t *hist;		/* the request's item rows (repeat prior), valid during a call */
	int32_t		n_hist;
	int32_t    *prior_scratch;	/* next_item: (L) for us_prior_add */
	const float **rp;			/* row pointers: folded (3 L), direct (DIRECT_CHUNK + kmax - 1) */

	/* sasrec: the encoder over the kept events in x (never folded) */
	int			sasrec;
	us_attn_params ap;
	float	   *enc;			/* the encoder's arena for max_len tokens */
	int32_t    *tok_id;			/* (L) 0 .. L-1: event t reads row t of x */

	/* next_item output rows, row-major (V, H): item_emb when tied, else a transposed copy */
	const float *out_rows;
	float	   *out_rows_own;

	/* int8 screen of the output rows (us_scorer_topk); screen = 0: one full fp32 pass */
	int			screen;
	int32_t		Vp;				/* rows padded to a multiple of SCREEN_CHUNK */
	int8_t	   *qd;				/* (H, Vp) quantised weights, unit-major: a request reads only
								 * the units its h leaves nonzero; 64-byte aligned in qd_raw */
	void	   *qd_raw;
	float	   *qscale;			/* (Vp) w ~ scale q */
	float	   *qbias;			/* (Vp) b; padding rows -FLT_MAX / 4 */
	float	   *qerr;			/* (Vp / 8, 4) per block of 8 rows: error coefficients */
	/*
	 * The screen's rows are the item rows in descending output bias (sperm), so that its
	 * chunks of SCREEN_CHUNK rows are alike and a chunk whose logit bound (bmax, bmeta) cannot
	 * reach the k-th best lower bound is skipped whole (us_scorer_topk)
	 */
	int32_t    *sperm;			/* (Vp) screen row -> item row; -1 for padding */
	int32_t		NC,				/* chunks: Vp / SCREEN_CHUNK */
				NCp;			/* NC rounded up to 8 */
	float	   *bmax;			/* (H, NCp) max weight of each chunk's rows, unit-major */
	float	   *bmeta;			/* (NC, 3) max bias, max |weight| and max |bias| of a chunk */
	float	   *cbound;			/* (NCp) scratch: each chunk's bound for this request */
	int32_t		NGR,			/* groups of US_SCREEN_GROUP chunks, and NGR rounded up to 8 */
				NGRp;
	float	   *gmax;			/* (H, NGRp) max of the group's bmax; private, from bmax */
	float	   *gmeta;			/* (NGR, 3) max of the group's bmeta */
	float	   *gbound;			/* (NGRp) scratch: each group's bound for this request */
	int			block_skip;		/* 1: skip chunks by their bound (0: the benchmark's peer) */
	uint64_t	n_chunks,		/* chunks screened and skipped, summed over requests */
				n_skipped,
				n_groups_skipped;	/* groups skipped whole (their chunks are in n_skipped) */
	uint8_t    *hq;				/* (H) quantised h */
	int32_t    *hunits;			/* (H + 1) units with a nonzero hq, then a spare */
	const int8_t **pair_a;		/* ((H + 1) / 2) pairs of those units: rows in qd ... */
	const int8_t **pair_b;
	int16_t    *pair_p;			/* ... and their quantised values (p_a | p_b << 8) */
	int32_t    *cand;			/* (V) candidate rows */
	float	   *cand_hi;		/* (V) their upper bounds */
	float	   *lo_heap;		/* (V) the k best lower bounds so far */
};

/*
 * 8-float blocks through the GCC/clang vector extension: AVX with -march=native, SSE pairs
 * otherwise; the compiler does not vectorise these loops by itself at -O2. memcpy does the
 * unaligned loads and stores.
 */
#if defined(__GNUC__) || defined(__clang__)
typedef float v8f __attribute__((vector_size(32)));
typedef int32_t v8i __attribute__((vector_size(32)));
#define US_HAVE_V8F 1
#endif

#ifdef US_HAVE_V8F
/*
 * Macros, not functions: a function returning a 32-byte vector changes the ABI (and warns)
 * in builds without AVX, where the vector extension falls back to SSE pairs.
 */
#define v8_load(p) \
	({ v8f v8_x_; memcpy(&v8_x_, (p), sizeof(v8_x_)); v8_x_; })
#define v8_max(a, b) \
	({ v8f v8_a_ = (a), v8_b_ = (b); v8i v8_gt_ = v8_b_ > v8_a_; \
	   (v8f) ((v8_gt_ & (v8i) v8_b_) | (~v8_gt_ & (v8i) v8_a_)); })
#endif

/*
 * Windows [t0, t1) of one width, m kept events: the positions t0 .. t1 + k - 2 (those < m)
 * have nsrc row pointers each at rows[(p - base) * nsrc ..] (folded rows of the item and the
 * behaviour / gap when they matter, or the direct path's per-chunk products).
 */
typedef struct us_conv_span
{
	const float *const *rows;
	int			nsrc;
	int32_t		base,
				m,
				t0,
				t1;
} us_conv_span;

/*
 * conv.c: pool[0 .. F) = max over the span's windows of (bias + the sum of the window's taps'
 * columns col0 + j F + f of its rows), merged with the pool already there unless the span
 * starts at window 0. Each folded value is one load and one add; the kernel body (AVX-512,
 * AVX2, portable) is chosen at run time and every body gives bit-identical results.
 */
void		us_conv_pool(const us_conv_span *sp, int32_t k, size_t col0, int32_t F,
						 const float *bias, float *pool);

/* The last step of both scorer constructors (us_scorer_create, the shared image's): the head's
 * scratch and w_cat's contents; *out = s, or s is freed and US_ENOMEM returned when any of
 * the scorer's allocations failed (fail). */
us_status	us_scorer_finish(us_scorer *s, int task, int fail, us_scorer **out);

/* count * elem bytes from the scorer's allocator; sets *fail (and returns NULL) on failure */
static inline void *
us_scorer_alloc(us_scorer *s, size_t count, size_t elem, int *fail)
{
	size_t		bytes;
	void	   *p;

	if (count == 0 || *fail)
		return NULL;
	if (!us_mul_size(count, elem, &bytes))
	{
		*fail = 1;
		return NULL;
	}
	p = s->alloc.alloc(s->alloc.ctx, bytes);
	if (p == NULL)
		*fail = 1;
	return p;
}

/* the head's scratch, as every scorer has it: z (D), h (H) and, for next_item, the logits and
 * the seen-row bitmap (cleared) */
static inline void
us_scorer_alloc_head(us_scorer *s, int task, int *fail)
{
	s->z = us_scorer_alloc(s, (size_t) s->D, sizeof(float), fail);
	s->h = us_scorer_alloc(s, (size_t) s->H, sizeof(float), fail);
	if (task == US_TASK_NEXT_ITEM)
	{
		s->logits = us_scorer_alloc(s, (size_t) s->O, sizeof(float), fail);
		s->seen = us_scorer_alloc(s, ((size_t) s->V + 7) / 8, 1, fail);
		s->prior_scratch = us_scorer_alloc(s, (size_t) s->L, sizeof(int32_t), fail);
		if (s->seen)
			memset(s->seen, 0, ((size_t) s->V + 7) / 8);
	}
}

/* the dimensions of a (zeroed) scorer from its model's config, and the folded row width S */
static inline void
us_scorer_set_dims(us_scorer *s, const us_model_config *cfg)
{
	s->V = cfg->n_items;
	s->NB = cfg->n_behaviors;
	s->NG = cfg->n_gap_buckets;
	s->L = cfg->max_len;
	s->E = cfg->embed_dim;
	s->F = cfg->n_filters;
	s->H = cfg->hidden_dim;
	s->W = cfg->n_widths;
	s->R = cfg->recent_window;
	s->D = us_model_feature_dim(cfg);
	s->O = cfg->n_outputs;
	for (int w = 0; w < s->W; w++)
	{
		s->widths[w] = cfg->widths[w];
		s->woff[w] = s->S;
		s->S += (size_t) cfg->widths[w] * (size_t) s->F;
	}
}

/* w_cat[e][woff[w] + j F + f] = conv_w[w][j][e][f]: every width's taps side by side */
static inline void
us_scorer_fill_w_cat(us_scorer *s)
{
	for (int w = 0; w < s->W; w++)
		for (int32_t j = 0; j < s->widths[w]; j++)
			for (int32_t e = 0; e < s->E; e++)
				memcpy(s->w_cat + (size_t) e * s->S + s->woff[w] + (size_t) j * s->F,
					   s->model->p.conv_w[w] + ((size_t) j * s->E + e) * s->F,
					   (size_t) s->F * sizeof(float));
}

static inline void
us_scorer_release(us_scorer *s, void *p)
{
	if (p)
		s->alloc.free(s->alloc.ctx, p);
}

/*
 * 1 if every x[i] is finite. Decoded models cannot fail it (US_MAX_ABS_WEIGHT bounds every
 * activation); a model built or trained in memory can, and a NaN must never become a score.
 */
static inline int
us_all_finite(const float *x, size_t n)
{
	float		acc = 0.0f;

	/* x * 0 is 0 for finite x and NaN otherwise */
	for (size_t i = 0; i < n; i++)
		acc += x[i] * 0.0f;
	return acc == 0.0f;
}

/* scorer.c: every row index of every event must be in range */
us_status	us_scorer_check_events(const us_scorer *s, const us_events *ev);
/* scorer.c: z (features) and h (hidden) of a validated sequence */
void		us_scorer_hidden(us_scorer *s, const us_events *ev);
/*
 * scorer.c: b + w . h in one fixed order. Every next_item logit of a screened scorer, in
 * forward and in top-k, goes through this one out-of-line function (bit-identical values).
 */
float		us_row_logit(const float *w, const float *h, int32_t n, float b);
/* scorer.c: next_item logits over all item rows (row kernel when screened, else one GEMV) */
void		us_scorer_item_logits(const us_scorer *s, float *y);

/* topk.c: the fp32 output rows and their int8 screen; 0 (nothing kept) if it cannot be built */
int			us_screen_build(us_scorer *s);

/*
 * The screen's tables, as us_screen_build lays them out (and a shared image stores them):
 * qd (H, Vp) int8 unit-major at a 64-byte boundary, qscale and qbias (Vp) floats, qerr
 * (Vp / 8, US_SCREEN_QE_N) floats, sperm (Vp) int32, bmax (H, NCp) and bmeta (NC, 3) floats,
 * Vp = V rounded up to US_SCREEN_CHUNK, NC = Vp / US_SCREEN_CHUNK, NCp = NC rounded up to 8.
 */
#define US_SCREEN_CHUNK 64
#define US_SCREEN_QE_N 4
#define US_SCREEN_NCP(V) (((((V) + US_SCREEN_CHUNK - 1) / US_SCREEN_CHUNK) + 7) / 8 * 8)
/* chunks per group: a request bounds the groups first and a chunk only in a group not skipped */
#define US_SCREEN_GROUP 64
#define US_SCREEN_NG(V) ((((V) + US_SCREEN_CHUNK - 1) / US_SCREEN_CHUNK + US_SCREEN_GROUP - 1) / US_SCREEN_GROUP)

/* the screen's tables, for us_screen_attach */
typedef struct us_screen_tables
{
	const float *out_rows;
	int8_t	   *qd;
	float	   *qscale,
			   *qbias,
			   *qerr;
	int32_t    *sperm;
	float	   *bmax,
			   *bmeta;
} us_screen_tables;

/*
 * topk.c: a screen whose tables another scorer built (an opened image): binds them in place
 * (never freed through s) and allocates only the per-request scratch; 0 if that fails.
 */
int			us_screen_attach(us_scorer *s, const us_screen_tables *t);
/* topk.c: frees the screen's tables (the scorer keeps working unscreened) */
void		us_screen_free(us_scorer *s);

#endif
