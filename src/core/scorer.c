/*
 * scorer.c: evaluation-mode forward pass for one sequence at a time (the hot path of
 * userseq_predict / _recommend / _embed), with all scratch allocated at creation.
 *
 * Folded path: for a frozen model, conv output of width k at window t is
 *     b_k + sum_j x_{t+j} @ W_kj,   x_p = item_emb[i_p] + behavior_emb[b_p] + gap_emb[g_p],
 * and since the product is linear, x_p @ W_kj = item_emb[i_p] @ W_kj + ... . So we precompute
 * T_item = item_emb @ [W_k0 | W_k1 | ... for every width] (one row of S = sum_k k*F floats
 * per item row), and the same small tables for behaviours and gaps. A window is then k row
 * gathers and adds, vectorisable over F. Direct path (tables over budget): gather x, then one
 * GEMM against every width's taps side by side (E x S) per chunk of windows, and the same
 * window-stationary max over the products.
 *
 * Partial folding: when the whole item table does not fit the budget, the most frequent item
 * rows (by training counts) are folded and the others ("cold" rows) are multiplied per request
 * with one GEMM over the sequence's cold events, so Zipf-shaped traffic still gathers.
 *
 * next_item top-k is exact and two-stage (see us_scorer_topk): an int8 copy of the output
 * rows screens every item with a proven error bound, and only the items that can still reach
 * the top k are scored in fp32, by the same row kernel us_scorer_forward uses for all of them.
 *
 * Positions past the end of a short sequence are zero vectors: they contribute nothing, even
 * if a decoded model's padding rows are not zero. The scorer does not train, does no dropout,
 * is not thread-safe, and reads the model it was created from (which must outlive it); its
 * tables are derived at creation, so changed weights need a new scorer.
 */
#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <cblas.h>
#ifdef __AVX2__
#include <immintrin.h>
#endif

#include "userseq/us_model.h"
#include "us_internal.h"

/* windows per direct-path GEMM: P stays a few hundred KB for the default shapes */
#define DIRECT_CHUNK 64

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
	int			beh0_zero;		/* folded row 0 of t_beh / t_gap is all zero: skip it */
	int			gap0_zero;

	/* scratch */
	float	   *x;				/* direct: (L, E) inputs; folded: (R, E) recent rows */
	float	   *c;				/* direct: (DIRECT_CHUNK + kmax - 1, S) tap products */
	float	   *w_cat;			/* direct: (E, S) every width's taps side by side */
	float	   *z;				/* (D) features */
	float	   *h;				/* (H) */
	float	   *logits;			/* next_item: (O) */
	uint8_t    *seen;			/* next_item: (V + 7) / 8 bits */
	const float **rp;			/* row pointers: folded (3 L), direct (DIRECT_CHUNK + kmax - 1) */

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
 * Error coefficients of a block of 8 rows (the max over its rows): of ||h||_1, of the worst
 * h quantisation error, a constant (bias rounding), and of t p_max (the screen's own float
 * rounding at the largest possible dot).
 */
enum
{
	QE_C1,
	QE_C2,
	QE_C3,
	QE_C4,
	QE_N
};

/* rows per step of the screen: a unit's 64 int8 weights fill one cache line */
#define SCREEN_CHUNK 64
/* bytes ahead in each unit's row to prefetch (8 chunks; past the end of qd is harmless) */
#define SCREEN_PREFETCH 512

/* h is quantised to 0 .. H_LEVELS: two vpmaddubsw results then still add in int16 */
#define H_LEVELS 63

/* ------------------------------------------------------------------ small kernels */

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

static inline void
vadd(float *restrict a, const float *restrict b, int32_t n)
{
	int32_t		i = 0;

#ifdef US_HAVE_V8F
	for (; i + 8 <= n; i += 8)
	{
		v8f			x,
					y;

		memcpy(&x, a + i, sizeof(x));
		memcpy(&y, b + i, sizeof(y));
		x += y;
		memcpy(a + i, &x, sizeof(x));
	}
#endif
	for (; i < n; i++)
		a[i] += b[i];
}

static inline void
vrelu(float *a, int32_t n)
{
	for (int32_t i = 0; i < n; i++)
		a[i] = a[i] > 0.0f ? a[i] : 0.0f;
}

/* ------------------------------------------------------------------ create / free */

static void *
salloc(us_scorer *s, size_t count, size_t elem, int *fail)
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

static void
sfree(us_scorer *s, void *p)
{
	if (p)
		s->alloc.free(s->alloc.ctx, p);
}

size_t
us_scorer_fold_bytes(const us_model_config *cfg)
{
	uint64_t	S = 0,
				rows,
				bytes;

	if (cfg == NULL || us_model_config_validate(cfg, NULL, 0) != US_OK)
		return 0;
	for (int w = 0; w < cfg->n_widths; w++)
		S += (uint64_t) cfg->widths[w] * (uint64_t) cfg->n_filters;
	rows = (uint64_t) cfg->n_items + (uint64_t) cfg->n_behaviors + (uint64_t) cfg->n_gap_buckets;
	/* rows < 2^25, S <= 2^17: the product fits in 64 bits */
	bytes = rows * S * sizeof(float);
	return bytes > (uint64_t) SIZE_MAX ? SIZE_MAX : (size_t) bytes;
}

size_t
us_scorer_screen_bytes(const us_model_config *cfg)
{
	uint64_t	V,
				H,
				Vp;

	if (cfg == NULL || us_model_config_validate(cfg, NULL, 0) != US_OK ||
		cfg->task != US_TASK_NEXT_ITEM)
		return 0;
	V = (uint64_t) cfg->n_items;
	H = (uint64_t) cfg->hidden_dim;
	Vp = (V + SCREEN_CHUNK - 1) / SCREEN_CHUNK * SCREEN_CHUNK;

	/* int8 weights, scale, bias, block errors, h, candidates and bounds, fp32 rows unless tied */
	return Vp * H + 63 + Vp * 2 * sizeof(float) + Vp / 8 * QE_N * sizeof(float) +
		H + (H + 1) * sizeof(int32_t) + (H / 2 + 1) * (2 * sizeof(int8_t *) + sizeof(int16_t)) + V * (sizeof(int32_t) + 2 * sizeof(float)) +
		(cfg->tie_output ? 0 : V * H * sizeof(float));
}

/* table (rows, S) = emb (rows, E) @ conv_w of every width and tap, one GEMM per tap */
static void
fold_table(const us_scorer *s, const float *emb, int32_t rows, float *table)
{
	const us_params *p = &s->model->p;

	for (int w = 0; w < s->W; w++)
		for (int j = 0; j < s->widths[w]; j++)
			us_gemm(0, 0, rows, s->F, s->E, 1.0f, emb, s->E,
					p->conv_w[w] + (size_t) j * s->E * s->F, s->F, 0.0f,
					table + s->woff[w] + (size_t) j * s->F, (int) s->S);
}

static int
row_is_zero(const float *r, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (r[i] != 0.0f)
			return 0;
	return 1;
}

/* ------------------------------------------------------------------ screen construction */

/*
 * Quantises output row i: w ~ s q with q in [-127, 127], and raises its block's coefficients
 * of the error bound used by screen_pass (rounded up):
 *   |sum_j w_j h_j - s t sum_j q_j p_j| <= err_q ||h||_1 + s sum|q| eps_h
 * (err_q = max_j |w_j - s q_j|, eps_h = max_j |h_j - t p_j|), plus the fp32 rounding of the
 * exact logit (at most (H+2) 2^-24 (max|w| ||h||_1 + |b|)) and of the screen's own float math
 * (covered by 2^-20 (|s t dot| + |b|), with |dot| at its largest, 127 p_max H).
 * Returns 0 when the row cannot be screened safely (non-finite or huge values).
 */
static int
quantise_row(us_scorer *s, int32_t i, const float *w, float b)
{
	int32_t		H = s->H;
	float	   *qe = s->qerr + (size_t) (i / 8) * QE_N;
	double		mx = 0.0,
				err = 0.0,
				kappa = 1.01 * (H + 2) * 0x1p-24,
				qsum = 0.0;
	float		sc;

	for (int32_t j = 0; j < H; j++)
	{
		if (!isfinite(w[j]))
			return 0;
		mx = fmax(mx, fabs((double) w[j]));
	}
	if (!isfinite(b) || mx > 1e15 || fabs((double) b) > 1e30)
		return 0;
	sc = (float) (mx / 127.0);
	for (int32_t j = 0; j < H; j++)
	{
		long		q = sc > 0.0f ? lrintf(w[j] / sc) : 0;

		q = q > 127 ? 127 : q < -127 ? -127 : q;
		s->qd[(size_t) j * s->Vp + i] = (int8_t) q;
		err = fmax(err, fabs((double) w[j] - (double) sc * (double) q));
		qsum += (double) (q < 0 ? -q : q);
	}
	s->qscale[i] = sc;
	s->qbias[i] = b;
	qe[QE_C1] = fmaxf(qe[QE_C1], (float) ((err + kappa * mx) * (1.0 + 0x1p-20)));
	qe[QE_C2] = fmaxf(qe[QE_C2], (float) ((double) sc * qsum * (1.0 + 0x1p-20)));
	qe[QE_C3] = fmaxf(qe[QE_C3], (float) ((kappa + 0x1p-20) * fabs((double) b) * (1.0 + 0x1p-20) +
										  1e-37));
	/* |s t dot| <= s t p_max 127 H */
	qe[QE_C4] = fmaxf(qe[QE_C4], (float) (0x1p-20 * (double) sc * 127.0 * H * (1.0 + 0x1p-20)));
	return 1;
}

/* frees the screen's tables and clears their pointers (the scorer keeps working unscreened) */
static void
free_screen(us_scorer *s)
{
	sfree(s, s->out_rows_own);
	sfree(s, s->qd_raw);
	sfree(s, s->qscale);
	sfree(s, s->qbias);
	sfree(s, s->qerr);
	sfree(s, s->hq);
	sfree(s, s->hunits);
	sfree(s, (void *) s->pair_a);
	sfree(s, (void *) s->pair_b);
	sfree(s, s->pair_p);
	sfree(s, s->cand);
	sfree(s, s->cand_hi);
	sfree(s, s->lo_heap);
	s->out_rows = s->out_rows_own = NULL;
	s->qd = NULL;
	s->qd_raw = NULL;
	s->qscale = s->qbias = s->qerr = s->cand_hi = s->lo_heap = NULL;
	s->hq = NULL;
	s->hunits = s->cand = NULL;
	s->pair_a = s->pair_b = NULL;
	s->pair_p = NULL;
	s->screen = 0;
}

/*
 * The fp32 output rows (row-major) and their int8 screen. Fails softly (returns 0, nothing
 * kept) when memory is short or a row cannot be bounded: top-k then scans in full.
 */
static int
build_screen(us_scorer *s)
{
	const us_params *p = &s->model->p;
	int32_t		V = s->V,
				H = s->H;
	int			fail = 0;

	s->Vp = (V + SCREEN_CHUNK - 1) / SCREEN_CHUNK * SCREEN_CHUNK;
	if (p->out_w == NULL)
		s->out_rows = p->item_emb;
	else
		s->out_rows = s->out_rows_own = salloc(s, (size_t) V * H, sizeof(float), &fail);
	/* aligned so that no 32-byte load of a unit's row straddles two cache lines */
	s->qd_raw = salloc(s, (size_t) s->Vp * H + 63, 1, &fail);
	if (s->qd_raw)
		s->qd = (int8_t *) (((uintptr_t) s->qd_raw + 63) & ~(uintptr_t) 63);
	s->qscale = salloc(s, (size_t) s->Vp, sizeof(float), &fail);
	s->qbias = salloc(s, (size_t) s->Vp, sizeof(float), &fail);
	s->qerr = salloc(s, (size_t) s->Vp / 8 * QE_N, sizeof(float), &fail);
	s->hq = salloc(s, (size_t) H, 1, &fail);
	s->hunits = salloc(s, (size_t) H + 1, sizeof(int32_t), &fail);
	s->pair_a = salloc(s, (size_t) H / 2 + 1, sizeof(int8_t *), &fail);
	s->pair_b = salloc(s, (size_t) H / 2 + 1, sizeof(int8_t *), &fail);
	s->pair_p = salloc(s, (size_t) H / 2 + 1, sizeof(int16_t), &fail);
	s->cand = salloc(s, (size_t) V, sizeof(int32_t), &fail);
	s->cand_hi = salloc(s, (size_t) V, sizeof(float), &fail);
	s->lo_heap = salloc(s, (size_t) V, sizeof(float), &fail);
	if (!fail)
	{
		memset(s->qd, 0, (size_t) s->Vp * H);
		memset(s->qscale, 0, (size_t) s->Vp * sizeof(float));
		memset(s->qerr, 0, (size_t) s->Vp / 8 * QE_N * sizeof(float));
		/* padding rows: never above a threshold (and skipped anyway) */
		for (int32_t i = V; i < s->Vp; i++)
			s->qbias[i] = -FLT_MAX / 4;
		if (s->out_rows_own)
			for (int32_t j = 0; j < H; j++)
			{
				const float *src = p->out_w + (size_t) j * V;

				for (int32_t i = 0; i < V; i++)
					s->out_rows_own[(size_t) i * H + j] = src[i];
			}
		for (int32_t i = 0; i < V && !fail; i++)
			if (!quantise_row(s, i, s->out_rows + (size_t) i * H, p->out_b[i]))
				fail = 1;
	}
	if (fail)
	{
		free_screen(s);
		return 0;
	}
	s->screen = 1;
	return 1;
}

/* ------------------------------------------------------------------ fold construction */

static int
cmp_u64(const void *a, const void *b)
{
	uint64_t	x = *(const uint64_t *) a,
				y = *(const uint64_t *) b;

	return (x > y) - (x < y);
}

/*
 * Folds the n hottest item rows (by training count; padding and OOV first) into t_item
 * (fold_slot maps rows to them), building the
 * table in chunks so the gathered embeddings stay small. Returns 0 if memory is short.
 */
static int
fold_hot_rows(us_scorer *s, int32_t n)
{
	const us_model *m = s->model;
	const int32_t chunk = 4096;
	uint64_t   *order;
	float	   *emb;
	int			fail = 0;

	order = salloc(s, (size_t) s->V, sizeof(uint64_t), &fail);
	emb = salloc(s, (size_t) chunk * s->E, sizeof(float), &fail);
	if (fail)
	{
		sfree(s, order);
		sfree(s, emb);
		return 0;
	}
	/* key: (UINT32_MAX - count) << 32 | row, so ascending order is hottest first */
	for (int32_t r = 0; r < s->V; r++)
	{
		uint32_t	cnt = UINT32_MAX;

		if (r >= 2 && m->vocab.item_counts && r - 2 < m->vocab.n_items)
			cnt = m->vocab.item_counts[r - 2];
		order[r] = ((uint64_t) (UINT32_MAX - cnt) << 32) | (uint32_t) r;
	}
	qsort(order, (size_t) s->V, sizeof(uint64_t), cmp_u64);
	for (int32_t r = 0; r < s->V; r++)
		s->fold_slot[r] = -1;
	for (int32_t c0 = 0; c0 < n; c0 += chunk)
	{
		int32_t		cn = n - c0 < chunk ? n - c0 : chunk;

		for (int32_t i = 0; i < cn; i++)
		{
			int32_t		row = (int32_t) (order[c0 + i] & 0xffffffffu);

			s->fold_slot[row] = c0 + i;
			memcpy(emb + (size_t) i * s->E, m->p.item_emb + (size_t) row * s->E,
				   (size_t) s->E * sizeof(float));
		}
		fold_table(s, emb, cn, s->t_item + (size_t) c0 * s->S);
	}
	sfree(s, order);
	sfree(s, emb);
	return 1;
}

/*
 * Chooses and builds the folded tables within budget bytes: every item row if they fit,
 * else the hottest rows with per-request products for the rest (worth it from 1/16 of the
 * rows on; below that the direct path). Returns 0 (nothing kept) for the direct path.
 */
static int
build_folded(us_scorer *s, size_t budget)
{
	size_t		full = us_scorer_fold_bytes(&s->model->cfg),
				rowb = s->S * sizeof(float),
				small = ((size_t) s->NB + (size_t) s->NG) * rowb,
				fixed;
	int32_t		n;
	int			fail = 0;

	if (full == 0)
		return 0;
	if (full <= budget)
		n = s->V;
	else
	{
		/* small tables, fold_slot, w_cat, cold products and inputs per kept event */
		fixed = small + (size_t) s->V * sizeof(int32_t) + (size_t) s->E * rowb +
			(size_t) s->L * (rowb + (size_t) s->E * sizeof(float));
		if (fixed >= budget || (budget - fixed) / rowb < (size_t) s->V / 16 + 2)
			return 0;
		n = (int32_t) ((budget - fixed) / rowb);
	}
	s->t_item = salloc(s, (size_t) n * s->S, sizeof(float), &fail);
	s->t_beh = salloc(s, (size_t) s->NB * s->S, sizeof(float), &fail);
	s->t_gap = salloc(s, (size_t) s->NG * s->S, sizeof(float), &fail);
	if (n < s->V)
	{
		s->fold_slot = salloc(s, (size_t) s->V, sizeof(int32_t), &fail);
		s->cold = salloc(s, (size_t) s->L * s->S, sizeof(float), &fail);
		s->xcold = salloc(s, (size_t) s->L * s->E, sizeof(float), &fail);
	}
	if (fail || (n < s->V && !fold_hot_rows(s, n)))
	{
		sfree(s, s->t_item);
		sfree(s, s->t_beh);
		sfree(s, s->t_gap);
		sfree(s, s->fold_slot);
		sfree(s, s->cold);
		sfree(s, s->xcold);
		s->t_item = s->t_beh = s->t_gap = s->cold = s->xcold = NULL;
		s->fold_slot = NULL;
		return 0;
	}
	if (n == s->V)
		fold_table(s, s->model->p.item_emb, s->V, s->t_item);
	if (s->NB > 0)
	{
		fold_table(s, s->model->p.behavior_emb, s->NB, s->t_beh);
		s->beh0_zero = row_is_zero(s->t_beh, s->S);
	}
	if (s->NG > 0)
	{
		fold_table(s, s->model->p.gap_emb, s->NG, s->t_gap);
		s->gap0_zero = row_is_zero(s->t_gap, s->S);
	}
	s->n_fold = n;
	s->folded = 1;
	return 1;
}

/*
 * The budget covers every derived table: the next_item screen first (small, and it decides
 * top-k speed), then the folded tables. Allocation failures fall back to the plain paths.
 */
us_status
us_scorer_create(const us_model *model, size_t fold_budget, const us_allocator *alloc,
				 us_scorer **out)
{
	us_scorer  *s;
	const us_model_config *cfg;
	size_t		budget = fold_budget;
	int			fail = 0;

	if (out == NULL)
		return US_EINVAL;
	*out = NULL;
	if (model == NULL || alloc == NULL || alloc->alloc == NULL || alloc->free == NULL)
		return US_EINVAL;
	cfg = &model->cfg;
	if (us_model_config_validate(cfg, NULL, 0) != US_OK || model->params_block == NULL)
		return US_EINVAL;

	s = alloc->alloc(alloc->ctx, sizeof(us_scorer));
	if (s == NULL)
		return US_ENOMEM;
	memset(s, 0, sizeof(*s));
	s->model = model;
	s->alloc = *alloc;
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

	if (cfg->task == US_TASK_NEXT_ITEM && s->O == s->V &&
		us_scorer_screen_bytes(cfg) <= budget && build_screen(s))
		budget -= us_scorer_screen_bytes(cfg);
	build_folded(s, budget);

	if (s->folded)
		s->x = salloc(s, (size_t) s->R * s->E, sizeof(float), &fail);
	else
	{
		s->x = salloc(s, (size_t) s->L * s->E, sizeof(float), &fail);
		s->c = salloc(s, (size_t) (DIRECT_CHUNK + s->widths[s->W - 1] - 1) * s->S,
					  sizeof(float), &fail);
	}
	if (!s->folded || s->fold_slot)
		s->w_cat = salloc(s, (size_t) s->E * s->S, sizeof(float), &fail);
	s->rp = salloc(s, s->folded ? (size_t) 3 * s->L :
				   (size_t) (DIRECT_CHUNK + s->widths[s->W - 1] - 1),
				   sizeof(float *), &fail);
	s->z = salloc(s, (size_t) s->D, sizeof(float), &fail);
	s->h = salloc(s, (size_t) s->H, sizeof(float), &fail);
	if (cfg->task == US_TASK_NEXT_ITEM)
	{
		s->logits = salloc(s, (size_t) s->O, sizeof(float), &fail);
		s->seen = salloc(s, ((size_t) s->V + 7) / 8, 1, &fail);
		if (s->seen)
			memset(s->seen, 0, ((size_t) s->V + 7) / 8);
	}
	if (fail)
	{
		us_scorer_free(s);
		return US_ENOMEM;
	}

	if (s->w_cat)
	{
		/* w_cat[e][woff[w] + j F + f] = conv_w[w][j][e][f] */
		for (int w = 0; w < s->W; w++)
			for (int32_t j = 0; j < s->widths[w]; j++)
				for (int32_t e = 0; e < s->E; e++)
					memcpy(s->w_cat + (size_t) e * s->S + s->woff[w] + (size_t) j * s->F,
						   model->p.conv_w[w] + ((size_t) j * s->E + e) * s->F,
						   (size_t) s->F * sizeof(float));
	}
	*out = s;
	return US_OK;
}

int
us_scorer_is_folded(const us_scorer *scorer)
{
	return scorer != NULL && scorer->folded;
}

int32_t
us_scorer_folded_rows(const us_scorer *scorer)
{
	return scorer != NULL ? scorer->n_fold : 0;
}

int
us_scorer_is_screened(const us_scorer *scorer)
{
	return scorer != NULL && scorer->screen;
}

void
us_scorer_free(us_scorer *s)
{
	if (s == NULL)
		return;
	sfree(s, s->t_item);
	sfree(s, s->t_beh);
	sfree(s, s->t_gap);
	sfree(s, s->fold_slot);
	sfree(s, s->cold);
	sfree(s, s->xcold);
	sfree(s, s->x);
	sfree(s, s->c);
	sfree(s, s->w_cat);
	sfree(s, s->z);
	sfree(s, s->h);
	sfree(s, s->logits);
	sfree(s, s->seen);
	sfree(s, (void *) s->rp);
	free_screen(s);
	s->alloc.free(s->alloc.ctx, s);
}

/* ------------------------------------------------------------------ forward */

/* Every row index of every event (not only the kept ones) must be in range. */
static us_status
check_events(const us_scorer *s, const us_events *ev)
{
	if (ev == NULL || ev->n < 0)
		return US_EINVAL;
	if (ev->n == 0)
		return US_OK;
	if (ev->items == NULL)
		return US_EINVAL;
	for (int32_t i = 0; i < ev->n; i++)
		if ((uint32_t) ev->items[i] >= (uint32_t) s->V)
			return US_EINVAL;
	if (s->NB > 0 && ev->behaviors)
		for (int32_t i = 0; i < ev->n; i++)
			if ((uint32_t) ev->behaviors[i] >= (uint32_t) s->NB)
				return US_EINVAL;
	if (s->NG > 0 && ev->gaps)
		for (int32_t i = 0; i < ev->n; i++)
			if ((uint32_t) ev->gaps[i] >= (uint32_t) s->NG)
				return US_EINVAL;
	return US_OK;
}

/* x = embedding sum of event i (behaviour / gap row 0 when their arrays are absent) */
static void
embed_event(const us_scorer *s, const us_events *ev, int32_t i, float *x)
{
	const us_params *p = &s->model->p;
	size_t		E = (size_t) s->E;

	memcpy(x, p->item_emb + (size_t) ev->items[i] * E, E * sizeof(float));
	if (s->NB > 0)
		vadd(x, p->behavior_emb + (ev->behaviors ? (size_t) ev->behaviors[i] * E : 0), s->E);
	if (s->NG > 0)
		vadd(x, p->gap_emb + (ev->gaps ? (size_t) ev->gaps[i] * E : 0), s->E);
}

/*
 * Windows [t0, t1) of one width, m kept events: the positions t0 .. t1 + k - 2 (those < m)
 * have nsrc row pointers each at rows[(p - base) * nsrc ..] (folded rows of the item and the
 * behaviour / gap when they matter, or the direct path's per-chunk products).
 */
typedef struct conv_span
{
	const float *const *rows;
	int			nsrc;
	int32_t		base,
				m,
				t0,
				t1;
} conv_span;

/*
 * Max over the windows of a span of a block of filters [c, c + nb) (nb = 32, 8 or 1):
 * pool[c..] = max_t (bias + sum_j sum_src row(t + j, src)[col0 + j F + c..]), merged with
 * the pool already there unless the span starts at window 0.
 * Window-stationary: the accumulators and the running max stay in registers, so each folded
 * value costs one load and one add and nothing is stored per window. rows holds nsrc row
 * pointers per kept position (item, then behaviour / gap rows when they matter).
 */
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

static void
conv_pool_32(const conv_span *sp, int32_t k, size_t col0, int32_t F, const float *bias,
			 float *pool)
{
	const float *const *rows = sp->rows;
	int			nsrc = sp->nsrc;
	int32_t		m = sp->m;
	v8f			p0 = v8_load(pool),
				p1 = v8_load(pool + 8),
				p2 = v8_load(pool + 16),
				p3 = v8_load(pool + 24);

	for (int32_t t = sp->t0; t < sp->t1; t++)
	{
		v8f			a0 = v8_load(bias),
					a1 = v8_load(bias + 8),
					a2 = v8_load(bias + 16),
					a3 = v8_load(bias + 24);
		int32_t		kk = m - t < k ? m - t : k;

		for (int32_t j = 0; j < kk; j++)
		{
			const float *const *rp = rows + (size_t) (t + j - sp->base) * nsrc;
			size_t		col = col0 + (size_t) j * F;

			for (int src = 0; src < nsrc; src++)
			{
				const float *r = rp[src] + col;

				a0 += v8_load(r);
				a1 += v8_load(r + 8);
				a2 += v8_load(r + 16);
				a3 += v8_load(r + 24);
			}
		}
		if (t == 0)
		{
			p0 = a0;
			p1 = a1;
			p2 = a2;
			p3 = a3;
		}
		else
		{
			p0 = v8_max(p0, a0);
			p1 = v8_max(p1, a1);
			p2 = v8_max(p2, a2);
			p3 = v8_max(p3, a3);
		}
	}
	memcpy(pool, &p0, sizeof(p0));
	memcpy(pool + 8, &p1, sizeof(p1));
	memcpy(pool + 16, &p2, sizeof(p2));
	memcpy(pool + 24, &p3, sizeof(p3));
}

static void
conv_pool_8(const conv_span *sp, int32_t k, size_t col0, int32_t F, const float *bias,
			float *pool)
{
	const float *const *rows = sp->rows;
	int			nsrc = sp->nsrc;
	int32_t		m = sp->m;
	v8f			p0 = v8_load(pool);

	for (int32_t t = sp->t0; t < sp->t1; t++)
	{
		v8f			a0 = v8_load(bias);
		int32_t		kk = m - t < k ? m - t : k;

		for (int32_t j = 0; j < kk; j++)
		{
			const float *const *rp = rows + (size_t) (t + j - sp->base) * nsrc;
			size_t		col = col0 + (size_t) j * F;

			for (int src = 0; src < nsrc; src++)
				a0 += v8_load(rp[src] + col);
		}
		p0 = t == 0 ? a0 : v8_max(p0, a0);
	}
	memcpy(pool, &p0, sizeof(p0));
}
#endif

static void
conv_pool_1(const conv_span *sp, int32_t k, size_t col0, int32_t F, const float *bias,
			float *pool)
{
	const float *const *rows = sp->rows;
	int			nsrc = sp->nsrc;
	int32_t		m = sp->m;
	float		p0 = pool[0];

	for (int32_t t = sp->t0; t < sp->t1; t++)
	{
		float		a0 = bias[0];
		int32_t		kk = m - t < k ? m - t : k;

		for (int32_t j = 0; j < kk; j++)
		{
			const float *const *rp = rows + (size_t) (t + j - sp->base) * nsrc;
			size_t		col = col0 + (size_t) j * F;

			for (int src = 0; src < nsrc; src++)
				a0 += rp[src][col];
		}
		p0 = t == 0 || a0 > p0 ? a0 : p0;
	}
	pool[0] = p0;
}

/* every filter of one width over a span: 32-wide blocks, then 8-wide, then single filters */
static void
conv_pool(const conv_span *sp, int32_t k, size_t col0, int32_t F, const float *bias, float *pool)
{
	int32_t		c = 0;

#ifdef US_HAVE_V8F
	for (; c + 32 <= F; c += 32)
		conv_pool_32(sp, k, col0 + c, F, bias + c, pool + c);
	for (; c + 8 <= F; c += 8)
		conv_pool_8(sp, k, col0 + c, F, bias + c, pool + c);
#endif
	for (; c < F; c++)
		conv_pool_1(sp, k, col0 + c, F, bias + c, pool + c);
}

/*
 * Pooled conv features into z[0 .. W*F) from the m events starting at start. Each folded
 * value is used exactly once, so this is a gather stream (about S floats per event); the
 * window-stationary loops keep all other traffic in registers. A window past the end of a
 * short sequence sees zero vectors (its taps are skipped); m = 0 leaves the bias alone.
 */
static void
pool_folded(us_scorer *s, const us_events *ev, int32_t start, int32_t m)
{
	const us_params *p = &s->model->p;
	const float **rows = s->rp;
	int			nsrc = 1;
	size_t		S = s->S;
	int32_t		F = s->F,
				n_cold = 0;

	/* row pointers once per position; absent behaviour / gap arrays mean row 0 */
	if (s->NB > 0 && (ev->behaviors || !s->beh0_zero))
		nsrc++;
	if (s->NG > 0 && (ev->gaps || !s->gap0_zero))
		nsrc++;
	for (int32_t t = 0; t < m; t++)
	{
		int32_t		i = start + t;
		const float **rp = rows + (size_t) t * nsrc;
		int32_t		slot = s->fold_slot ? s->fold_slot[ev->items[i]] : ev->items[i];

		if (slot >= 0)
			*rp++ = s->t_item + (size_t) slot * S;
		else
		{
			/* cold row: its product comes from one GEMM below */
			memcpy(s->xcold + (size_t) n_cold++ * s->E,
				   s->model->p.item_emb + (size_t) ev->items[i] * s->E,
				   (size_t) s->E * sizeof(float));
			*rp++ = NULL;
		}
		if (s->NB > 0 && (ev->behaviors || !s->beh0_zero))
			*rp++ = s->t_beh + (ev->behaviors ? (size_t) ev->behaviors[i] * S : 0);
		if (s->NG > 0 && (ev->gaps || !s->gap0_zero))
			*rp++ = s->t_gap + (ev->gaps ? (size_t) ev->gaps[i] * S : 0);
	}

	if (n_cold > 0)
	{
		us_gemm(0, 0, n_cold, (int) S, s->E, 1.0f, s->xcold, s->E, s->w_cat, (int) S, 0.0f,
				s->cold, (int) S);
		n_cold = 0;
		for (int32_t t = 0; t < m; t++)
			if (rows[(size_t) t * nsrc] == NULL)
				rows[(size_t) t * nsrc] = s->cold + (size_t) n_cold++ * S;
	}

	for (int w = 0; w < s->W; w++)
	{
		conv_span	sp = {rows, nsrc, 0, m, 0, m - s->widths[w] + 1 > 1 ? m - s->widths[w] + 1 : 1};

		conv_pool(&sp, s->widths[w], s->woff[w], F, p->conv_b[w], s->z + (size_t) w * F);
		vrelu(s->z + (size_t) w * F, F);
	}
}

/*
 * Direct path: the products of the kept events' inputs with every width's taps, one GEMM per
 * chunk of DIRECT_CHUNK windows, P (rows, S) = x (rows, E) @ w_cat (E, S), then the same
 * window-stationary max as the folded path with P's rows standing in for the folded rows.
 * A chunk needs its windows' positions, so the last kmax - 1 rows are computed twice.
 */
static void
pool_direct(us_scorer *s, const us_events *ev, int32_t start, int32_t m)
{
	const us_params *p = &s->model->p;
	int32_t		E = s->E,
				F = s->F;
	int32_t		kmin = s->widths[0],
				kmax = s->widths[s->W - 1];
	int32_t		nw_all = m - kmin + 1 > 1 ? m - kmin + 1 : 1;

	for (int32_t t = 0; t < m; t++)
		embed_event(s, ev, start + t, s->x + (size_t) t * E);
	for (int32_t t0 = 0; t0 < nw_all; t0 += DIRECT_CHUNK)
	{
		int32_t		t1 = t0 + DIRECT_CHUNK < nw_all ? t0 + DIRECT_CHUNK : nw_all;
		int32_t		rend = t1 + kmax - 1 < m ? t1 + kmax - 1 : m;
		int32_t		cnt = rend - t0;

		if (cnt > 0)
			us_gemm(0, 0, cnt, (int) s->S, E, 1.0f, s->x + (size_t) t0 * E, E, s->w_cat,
					(int) s->S, 0.0f, s->c, (int) s->S);
		for (int32_t r = 0; r < cnt; r++)
			s->rp[r] = s->c + (size_t) r * s->S;
		for (int w = 0; w < s->W; w++)
		{
			int32_t		nw = m - s->widths[w] + 1 > 1 ? m - s->widths[w] + 1 : 1;
			conv_span	sp = {s->rp, 1, t0, m, t0, t1 < nw ? t1 : nw};

			if (sp.t0 < sp.t1)
				conv_pool(&sp, s->widths[w], s->woff[w], F, p->conv_b[w], s->z + (size_t) w * F);
		}
	}
	for (int w = 0; w < s->W; w++)
		vrelu(s->z + (size_t) w * F, F);
}

/* z (features) and h (hidden) for a validated sequence */
static void
hidden(us_scorer *s, const us_events *ev)
{
	const us_params *p = &s->model->p;
	int32_t		start = ev->n > s->L ? ev->n - s->L : 0;
	int32_t		m = ev->n - start;
	int32_t		E = s->E;
	float	   *r = s->z + (size_t) s->W * s->F;

	if (s->folded)
		pool_folded(s, ev, start, m);
	else
		pool_direct(s, ev, start, m);

	/* recent window: x_{m-R} .. x_{m-1} of the kept events, zeros before the start */
	for (int32_t i = 0; i < s->R; i++)
	{
		int32_t		t = m - s->R + i;
		float	   *dst = r + (size_t) i * E;

		if (t < 0)
			memset(dst, 0, (size_t) E * sizeof(float));
		else if (s->folded)
			embed_event(s, ev, start + t, dst);
		else
			memcpy(dst, s->x + (size_t) t * E, (size_t) E * sizeof(float));
	}

	memcpy(s->h, p->dense_b, (size_t) s->H * sizeof(float));
	cblas_sgemv(CblasRowMajor, CblasTrans, s->D, s->H, 1.0f, p->dense_w, s->H, s->z, 1,
				1.0f, s->h, 1);
	vrelu(s->h, s->H);
}

/*
 * b + w . h in one fixed order (two 8-lane accumulators, then the lanes in order). Every
 * next_item logit of a screened scorer, in forward and in top-k, goes through this one
 * out-of-line function, so both give bit-identical values whatever the compiler contracts.
 */
#if defined(__GNUC__) && !defined(__clang__)
__attribute__((noipa))
#elif defined(__clang__)
__attribute__((noinline))
#endif
static float
row_logit(const float *w, const float *h, int32_t n, float b)
{
	int32_t		j = 0;
	float		sum = 0.0f;

#ifdef US_HAVE_V8F
	v8f			a0 = {0},
				a1 = {0};
	float		lanes[8];

	for (; j + 16 <= n; j += 16)
	{
		a0 += v8_load(w + j) * v8_load(h + j);
		a1 += v8_load(w + j + 8) * v8_load(h + j + 8);
	}
	for (; j + 8 <= n; j += 8)
		a0 += v8_load(w + j) * v8_load(h + j);
	a0 += a1;
	memcpy(lanes, &a0, sizeof(lanes));
	for (int l = 0; l < 8; l++)
		sum += lanes[l];
#endif
	for (; j < n; j++)
		sum += w[j] * h[j];
	return b + sum;
}

/* next_item logits over all item rows (row kernel when screened, else one GEMV) */
static void
item_logits(const us_scorer *s, float *y)
{
	const us_params *p = &s->model->p;

	if (s->screen)
	{
		for (int32_t i = 0; i < s->V; i++)
			y[i] = row_logit(s->out_rows + (size_t) i * s->H, s->h, s->H, p->out_b[i]);
		return;
	}
	memcpy(y, p->out_b, (size_t) s->O * sizeof(float));
	if (p->out_w)
		cblas_sgemv(CblasRowMajor, CblasTrans, s->H, s->O, 1.0f, p->out_w, s->O, s->h, 1,
					1.0f, y, 1);
	else
		cblas_sgemv(CblasRowMajor, CblasNoTrans, s->V, s->E, 1.0f, p->item_emb, s->E, s->h, 1,
					1.0f, y, 1);
}

static void
softmax(float *y, int32_t n)
{
	float		mx = y[0];
	double		sum = 0.0;

	for (int32_t i = 1; i < n; i++)
		if (y[i] > mx)
			mx = y[i];
	for (int32_t i = 0; i < n; i++)
	{
		y[i] = expf(y[i] - mx);
		sum += y[i];
	}
	for (int32_t i = 0; i < n; i++)
		y[i] = (float) (y[i] / sum);
}

/*
 * 1 if every x[i] is finite. Decoded models cannot fail it (US_MAX_ABS_WEIGHT bounds every
 * activation); a model built or trained in memory can, and a NaN must never become a score.
 */
static int
all_finite(const float *x, size_t n)
{
	float		acc = 0.0f;

	/* x * 0 is 0 for finite x and NaN otherwise */
	for (size_t i = 0; i < n; i++)
		acc += x[i] * 0.0f;
	return acc == 0.0f;
}

us_status
us_scorer_forward(us_scorer *s, const us_events *events, float *out, float *features)
{
	const us_params *p;
	us_status	st;

	if (s == NULL)
		return US_EINVAL;
	st = check_events(s, events);
	if (st != US_OK)
		return st;
	p = &s->model->p;
	hidden(s, events);
	if (features)
	{
		memcpy(features, s->z, (size_t) s->D * sizeof(float));
		if (!all_finite(features, (size_t) s->D))
			return US_ENONFINITE;
	}
	/* out may be NULL when only the features are wanted (userseq_embed) */
	if (out == NULL)
		return US_OK;

	switch (s->model->cfg.task)
	{
		case US_TASK_NEXT_ITEM:
			item_logits(s, out);
			break;
		case US_TASK_BINARY:
		case US_TASK_REGRESSION:
			{
				double		y = p->out_b[0];

				for (int32_t i = 0; i < s->H; i++)
					y += (double) s->h[i] * p->out_w[i];
				if (s->model->cfg.task == US_TASK_BINARY)
					y = y >= 0 ? 1.0 / (1.0 + exp(-y)) : exp(y) / (1.0 + exp(y));
				out[0] = (float) y;
				break;
			}
		default:
			memcpy(out, p->out_b, (size_t) s->O * sizeof(float));
			cblas_sgemv(CblasRowMajor, CblasTrans, s->H, s->O, 1.0f, p->out_w, s->O, s->h, 1,
						1.0f, out, 1);
			softmax(out, s->O);
			break;
	}
	return all_finite(out, (size_t) s->model->cfg.n_outputs) ? US_OK : US_ENONFINITE;
}

/* ------------------------------------------------------------------ top-k */

/* NaN ranks below everything, so a broken logit never displaces a real one. */
static inline float
rank_key(float v)
{
	return isnan(v) ? -INFINITY : v;
}

/* a worse than b: lower key, or equal key and higher row */
static inline int
worse(float sa, int32_t ra, float sb, int32_t rb)
{
	return sa < sb || (sa == sb && ra > rb);
}

/* min-heap on "worse" (the worst kept entry at the root), stored in the caller's arrays */
static void
sift_down(int32_t *rows, float *sc, int32_t n, int32_t i)
{
	for (;;)
	{
		int32_t		l = 2 * i + 1,
					r = l + 1,
					m = i;

		if (l < n && worse(sc[l], rows[l], sc[m], rows[m]))
			m = l;
		if (r < n && worse(sc[r], rows[r], sc[m], rows[m]))
			m = r;
		if (m == i)
			return;
		{
			float		ts = sc[i];
			int32_t		tr = rows[i];

			sc[i] = sc[m];
			rows[i] = rows[m];
			sc[m] = ts;
			rows[m] = tr;
		}
		i = m;
	}
}

static void
sift_up(int32_t *rows, float *sc, int32_t i)
{
	while (i > 0)
	{
		int32_t		parent = (i - 1) / 2;

		if (!worse(sc[i], rows[i], sc[parent], rows[parent]))
			return;
		{
			float		ts = sc[i];
			int32_t		tr = rows[i];

			sc[i] = sc[parent];
			rows[i] = rows[parent];
			sc[parent] = ts;
			rows[parent] = tr;
		}
		i = parent;
	}
}

/* the k-th best entry enters only if strictly better (rows arrive in ascending order) */
static inline void
offer(int32_t *rows, float *sc, int32_t *n, int32_t k, int32_t r, float v)
{
	if (*n < k)
	{
		rows[*n] = r;
		sc[*n] = v;
		sift_up(rows, sc, *n);
		(*n)++;
	}
	else if (v > sc[0])
	{
		rows[0] = r;
		sc[0] = v;
		sift_down(rows, sc, *n, 0);
	}
}

/* min-heap of floats: the k best lower bounds seen so far, the k-th best at the root */
static void
fheap_push(float *a, int32_t n, float v)
{
	int32_t		i = n;

	a[i] = v;
	while (i > 0 && a[(i - 1) / 2] > a[i])
	{
		float		t = a[i];

		a[i] = a[(i - 1) / 2];
		a[(i - 1) / 2] = t;
		i = (i - 1) / 2;
	}
}

static void
fheap_replace_root(float *a, int32_t n, float v)
{
	int32_t		i = 0;

	a[0] = v;
	for (;;)
	{
		int32_t		l = 2 * i + 1,
					r = l + 1,
					m = i;

		if (l < n && a[l] < a[m])
			m = l;
		if (r < n && a[r] < a[m])
			m = r;
		if (m == i)
			return;
		{
			float		t = a[i];

			a[i] = a[m];
			a[m] = t;
		}
		i = m;
	}
}

/*
 * h (>= 0 after the ReLU) as integers p in 0 .. H_LEVELS with h ~ t p. *h1_out = ||h||_1 and
 * *eps = max_j |h_j - t p_j|, both rounded up. Returns 0 if h is not finite or too large for
 * the bound's float arithmetic (top-k then scans in full).
 */
static int
quantise_h(us_scorer *s, float *t_out, float *h1_out, float *eps_out)
{
	const float *h = s->h;
	double		mx = 0.0,
				h1 = 0.0,
				eps = 0.0;
	float		t;

	for (int32_t j = 0; j < s->H; j++)
	{
		if (!(h[j] >= 0.0f && h[j] <= 1e15f))
			return 0;
		mx = fmax(mx, (double) h[j]);
		h1 += (double) h[j];
	}
	t = (float) (mx / H_LEVELS);
	for (int32_t j = 0; j < s->H; j++)
	{
		long		q = t > 0.0f ? lrintf(h[j] / t) : 0;

		q = q > H_LEVELS ? H_LEVELS : q < 0 ? 0 : q;
		s->hq[j] = (uint8_t) q;
		eps = fmax(eps, fabs((double) h[j] - (double) t * (double) q));
	}
	*t_out = t;
	*h1_out = (float) (h1 * (1.0 + 0x1p-20));
	*eps_out = (float) (eps * (1.0 + 0x1p-20));
	return 1;
}

typedef struct screen_state
{
	float		theta;			/* k-th best lower bound so far (-inf until k rows seen) */
	int32_t		k,
				nh,				/* lower bounds in lo_heap */
				nc;				/* candidates */
	int			exclude_seen;
} screen_state;

/*
 * The rare path: the lanes of block b whose upper bound a + eb reaches theta become
 * candidates, and their lower bounds a - eb may raise theta.
 */
static void
screen_take(us_scorer *s, screen_state *st, int32_t b, const float *a, float eb)
{
	for (int r = 0; r < 8; r++)
	{
		int32_t		i = b * 8 + r;
		float		hi = a[r] + eb,
					lo = a[r] - eb;

		if (!(hi >= st->theta) || i < 2 || i >= s->V ||
			(st->exclude_seen && (s->seen[i >> 3] >> (i & 7)) & 1))
			continue;
		s->cand[st->nc] = i;
		s->cand_hi[st->nc] = hi;
		st->nc++;
		if (st->nh < st->k)
		{
			fheap_push(s->lo_heap, st->nh++, lo);
			if (st->nh == st->k)
				st->theta = s->lo_heap[0];
		}
		else if (lo > s->lo_heap[0])
		{
			fheap_replace_root(s->lo_heap, st->nh, lo);
			st->theta = s->lo_heap[0];
		}
	}
}

/* the error bound of block b's rows for this h (one float for its 8 rows, rounded up) */
static inline float
block_err(const us_scorer *s, int32_t b, float h1, float eps, float tmax)
{
	const float *qe = s->qerr + (size_t) b * QE_N;

	return (qe[QE_C1] * h1 + qe[QE_C2] * eps + qe[QE_C3] + qe[QE_C4] * tmax) * (1.0f + 0x1p-8f);
}

/*
 * Stage 1 of the exact top-k: every item's screen value a_i = b_i + s_i t dot_i (dot_i the
 * int8 x 6-bit integer dot over the nonzero units of h) with a proven bound |y_i - a_i| <= e
 * on its fp32 logit y_i (e per block of 8 rows). theta is the k-th best lower bound a - e
 * among eligible rows; an item whose upper bound a + e is below it is beaten by k others and
 * cannot be in the top k. Returns the candidates (ascending rows, upper bound >= theta when
 * seen) and the final theta (-inf if fewer than k rows are eligible).
 */
static int32_t
screen_pass(us_scorer *s, int32_t k, int exclude_seen, float t, float h1, float eps,
			float *theta_out)
{
	screen_state st = {-INFINITY, k, 0, 0, exclude_seen};
	size_t		Vp = (size_t) s->Vp;
	float		tmax = t * H_LEVELS;
	int32_t		nu = 0;

	/* ReLU leaves h sparse (3 of 4 units are zero in a trained model's typical request):
	 * only the nonzero units' weights are read */
	for (int32_t j = 0; j < s->H; j++)
		if (s->hq[j] != 0)
			s->hunits[nu++] = j;

#ifdef __AVX2__
	{
		const __m256 tv = _mm256_set1_ps(t);
		/* pairs of units: interleaved bytes (q_a, q_b) times (p_a, p_b) in vpmaddubsw; an odd
		 * last unit pairs with itself at weight 0 */
		int32_t		np = (nu + 1) / 2;

		for (int32_t z = 0; z < np; z++)
		{
			int32_t		ua = s->hunits[2 * z],
						ub = 2 * z + 1 < nu ? s->hunits[2 * z + 1] : ua;
			int			pb = 2 * z + 1 < nu ? s->hq[ub] : 0;

			s->pair_a[z] = s->qd + ua * Vp;
			s->pair_b[z] = s->qd + ub * Vp;
			s->pair_p[z] = (int16_t) (s->hq[ua] | (pb << 8));
		}
		for (int32_t c0 = 0; c0 < s->Vp; c0 += SCREEN_CHUNK)
		{
			/*
			 * acc[h * 4 + v]: rows c0 + 32 h + {0..7, 16..23, 8..15, 24..31}[v] (the lane order
			 * of unpack lo / hi); each unit's 64 rows are one cache line.
			 */
			__m256i		acc[8];
			static const int32_t acc_row[8] = {0, 16, 8, 24, 32, 48, 40, 56};

			for (int v = 0; v < 8; v++)
				acc[v] = _mm256_setzero_si256();
			for (int32_t y = 0; y < np; y += 2)
			{
				__m256i		lo0 = _mm256_setzero_si256(),
							hi0 = _mm256_setzero_si256(),
							lo1 = _mm256_setzero_si256(),
							hi1 = _mm256_setzero_si256();

				/* two pairs add in int16: 2 x 2 x 63 x 127 < 32768 */
				for (int32_t z = y; z < y + 2 && z < np; z++)
				{
					__m256i		pv = _mm256_set1_epi16(s->pair_p[z]);
					const int8_t *a = s->pair_a[z] + c0,
							   *b = s->pair_b[z] + c0;
					__m256i		A0 = _mm256_load_si256((const __m256i *) a),
								B0 = _mm256_load_si256((const __m256i *) b),
								A1 = _mm256_load_si256((const __m256i *) (a + 32)),
								B1 = _mm256_load_si256((const __m256i *) (b + 32));

					/* one stream per unit, often more than the hardware prefetcher follows */
					_mm_prefetch((const char *) (a + SCREEN_PREFETCH), _MM_HINT_T0);
					_mm_prefetch((const char *) (b + SCREEN_PREFETCH), _MM_HINT_T0);
					lo0 = _mm256_add_epi16(lo0, _mm256_maddubs_epi16(pv, _mm256_unpacklo_epi8(A0, B0)));
					hi0 = _mm256_add_epi16(hi0, _mm256_maddubs_epi16(pv, _mm256_unpackhi_epi8(A0, B0)));
					lo1 = _mm256_add_epi16(lo1, _mm256_maddubs_epi16(pv, _mm256_unpacklo_epi8(A1, B1)));
					hi1 = _mm256_add_epi16(hi1, _mm256_maddubs_epi16(pv, _mm256_unpackhi_epi8(A1, B1)));
				}
				acc[0] = _mm256_add_epi32(acc[0], _mm256_cvtepi16_epi32(_mm256_castsi256_si128(lo0)));
				acc[1] = _mm256_add_epi32(acc[1], _mm256_cvtepi16_epi32(_mm256_extracti128_si256(lo0, 1)));
				acc[2] = _mm256_add_epi32(acc[2], _mm256_cvtepi16_epi32(_mm256_castsi256_si128(hi0)));
				acc[3] = _mm256_add_epi32(acc[3], _mm256_cvtepi16_epi32(_mm256_extracti128_si256(hi0, 1)));
				acc[4] = _mm256_add_epi32(acc[4], _mm256_cvtepi16_epi32(_mm256_castsi256_si128(lo1)));
				acc[5] = _mm256_add_epi32(acc[5], _mm256_cvtepi16_epi32(_mm256_extracti128_si256(lo1, 1)));
				acc[6] = _mm256_add_epi32(acc[6], _mm256_cvtepi16_epi32(_mm256_castsi256_si128(hi1)));
				acc[7] = _mm256_add_epi32(acc[7], _mm256_cvtepi16_epi32(_mm256_extracti128_si256(hi1, 1)));
			}
			/* in ascending rows: candidates must arrive in row order (ties go to the lower) */
			for (int vi = 0; vi < 8; vi++)
			{
				int			v = (vi & 4) | ((vi & 3) == 1 ? 2 : (vi & 3) == 2 ? 1 : (vi & 3));
				int32_t		r0 = c0 + acc_row[v];
				float		eb = block_err(s, r0 / 8, h1, eps, tmax);
				__m256		a = _mm256_add_ps(_mm256_loadu_ps(s->qbias + r0),
											  _mm256_mul_ps(_mm256_mul_ps(_mm256_loadu_ps(s->qscale + r0), tv),
															_mm256_cvtepi32_ps(acc[v])));
				__m256		hv = _mm256_add_ps(a, _mm256_set1_ps(eb));

				if (_mm256_movemask_ps(_mm256_cmp_ps(hv, _mm256_set1_ps(st.theta), _CMP_GE_OQ)))
				{
					float		av[8];

					_mm256_storeu_ps(av, a);
					screen_take(s, &st, r0 / 8, av, eb);
				}
			}
		}
	}
#else
	for (int32_t b = 0; b < s->Vp / 8; b++)
	{
		float		eb = block_err(s, b, h1, eps, tmax),
					av[8];
		int			any = 0;

		for (int r = 0; r < 8; r++)
		{
			int32_t		i = b * 8 + r,
						dot = 0;

			for (int32_t u = 0; u < nu; u++)
				dot += (int32_t) s->hq[s->hunits[u]] * (int32_t) s->qd[s->hunits[u] * Vp + i];
			av[r] = s->qbias[i] + s->qscale[i] * t * (float) dot;
			any |= av[r] + eb >= st.theta;
		}
		if (any)
			screen_take(s, &st, b, av, eb);
	}
#endif
	*theta_out = st.theta;
	return st.nc;
}

us_status
us_scorer_topk(us_scorer *s, const us_events *events, int32_t k, int exclude_seen,
			   int32_t *rows, float *scores, int32_t *n_found)
{
	us_status	st;
	int32_t		n = 0;
	float		t,
				h1,
				eps,
				theta;
	int			screened;

	if (n_found)
		*n_found = 0;
	if (s == NULL || rows == NULL || scores == NULL || n_found == NULL || k <= 0)
		return US_EINVAL;
	if (s->model->cfg.task != US_TASK_NEXT_ITEM)
		return US_EINVAL;
	st = check_events(s, events);
	if (st != US_OK)
		return st;
	if (k > s->V)
		k = s->V;

	hidden(s, events);
	if (exclude_seen)
		for (int32_t i = 0; i < events->n; i++)
			s->seen[events->items[i] >> 3] |= (uint8_t) (1u << (events->items[i] & 7));

	screened = s->screen && quantise_h(s, &t, &h1, &eps);
	if (screened)
	{
		/* stage 2: the surviving candidates in fp32, by the kernel forward uses */
		int32_t		nc = screen_pass(s, k, exclude_seen, t, h1, eps, &theta);

		for (int32_t c = 0; c < nc; c++)
			if (s->cand_hi[c] >= theta)
			{
				int32_t		r = s->cand[c];

				offer(rows, scores, &n, k, r,
					  row_logit(s->out_rows + (size_t) r * s->H, s->h, s->H,
								s->model->p.out_b[r]));
			}
	}
	else
	{
		item_logits(s, s->logits);
		for (int32_t r = 2; r < s->V; r++)
			if (!(exclude_seen && (s->seen[r >> 3] >> (r & 7)) & 1))
				offer(rows, scores, &n, k, r, rank_key(s->logits[r]));
	}

	if (exclude_seen)
		for (int32_t i = 0; i < events->n; i++)
			s->seen[events->items[i] >> 3] = 0;

	/* Heap sort in place: repeatedly move the worst to the end, giving best first. */
	for (int32_t m = n - 1; m > 0; m--)
	{
		float		ts = scores[0];
		int32_t		tr = rows[0];

		scores[0] = scores[m];
		rows[0] = rows[m];
		scores[m] = ts;
		rows[m] = tr;
		sift_down(rows, scores, m, 0);
	}
	/* Report the real logits, not the ranking keys; screened ones are finite. */
	if (!screened)
	{
		/* a non-finite logit anywhere is an error, not a row quietly ranked last */
		if (!all_finite(s->logits, (size_t) s->model->cfg.n_outputs))
			return US_ENONFINITE;
		for (int32_t i = 0; i < n; i++)
			scores[i] = s->logits[rows[i]];
	}
	else if (!all_finite(scores, (size_t) n))
		return US_ENONFINITE;
	*n_found = n;
	return US_OK;
}
