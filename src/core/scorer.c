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
 * next_item top-k is exact and two-stage and lives in topk.c (with the int8 screen of the
 * output rows); it reaches this file through scorer_internal.h (h, and every fp32 logit by
 * us_row_logit, the same row kernel us_scorer_forward uses).
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

#include "userseq/us_model.h"
#include "scorer_internal.h"

/* windows per direct-path GEMM: P stays a few hundred KB for the default shapes */
#define DIRECT_CHUNK 64

/* ------------------------------------------------------------------ small kernels */

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

/* ------------------------------------------------------------------ fold construction */

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

	order = us_scorer_alloc(s, (size_t) s->V, sizeof(uint64_t), &fail);
	emb = us_scorer_alloc(s, (size_t) chunk * s->E, sizeof(float), &fail);
	if (fail)
	{
		us_scorer_release(s, order);
		us_scorer_release(s, emb);
		return 0;
	}
	/* key: (UINT32_MAX - count) << 32 | row, so ascending order is hottest first */
	for (int32_t r = 0; r < s->V; r++)
	{
		uint32_t	cnt = UINT32_MAX;

		if (r >= US_ROW_FIRST && m->vocab.item_counts && r - US_ROW_FIRST < m->vocab.n_items)
			cnt = m->vocab.item_counts[r - US_ROW_FIRST];
		order[r] = ((uint64_t) (UINT32_MAX - cnt) << 32) | (uint32_t) r;
	}
	qsort(order, (size_t) s->V, sizeof(uint64_t), us_cmp_u64);
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
	us_scorer_release(s, order);
	us_scorer_release(s, emb);
	return 1;
}

/* frees the folded tables and their cold-row scratch (a scorer without them runs direct) */
static void
release_folded(us_scorer *s)
{
	us_scorer_release(s, s->t_item);
	us_scorer_release(s, s->t_beh);
	us_scorer_release(s, s->t_gap);
	us_scorer_release(s, s->fold_slot);
	us_scorer_release(s, s->cold);
	us_scorer_release(s, s->xcold);
	s->t_item = s->t_beh = s->t_gap = s->cold = s->xcold = NULL;
	s->fold_slot = NULL;
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
	s->t_item = us_scorer_alloc(s, (size_t) n * s->S, sizeof(float), &fail);
	s->t_beh = us_scorer_alloc(s, (size_t) s->NB * s->S, sizeof(float), &fail);
	s->t_gap = us_scorer_alloc(s, (size_t) s->NG * s->S, sizeof(float), &fail);
	if (n < s->V)
	{
		s->fold_slot = us_scorer_alloc(s, (size_t) s->V, sizeof(int32_t), &fail);
		s->cold = us_scorer_alloc(s, (size_t) s->L * s->S, sizeof(float), &fail);
		s->xcold = us_scorer_alloc(s, (size_t) s->L * s->E, sizeof(float), &fail);
	}
	if (fail || (n < s->V && !fold_hot_rows(s, n)))
	{
		release_folded(s);
		return 0;
	}
	if (n == s->V)
		fold_table(s, s->model->p.item_emb, s->V, s->t_item);
	if (s->NB > 0)
	{
		fold_table(s, s->model->p.behavior_emb, s->NB, s->t_beh);
		s->beh0_zero = row_is_zero(s->t_beh + (size_t) US_ROW_PAD * s->S, s->S);
	}
	if (s->NG > 0)
	{
		fold_table(s, s->model->p.gap_emb, s->NG, s->t_gap);
		s->gap0_zero = row_is_zero(s->t_gap + (size_t) US_ROW_PAD * s->S, s->S);
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
	us_scorer_set_dims(s, cfg);

	if (cfg->task == US_TASK_NEXT_ITEM && s->O == s->V &&
		us_scorer_screen_bytes(cfg) <= budget && us_screen_build(s))
		budget -= us_scorer_screen_bytes(cfg);
	s->sasrec = cfg->architecture == US_ARCH_SASREC;
	if (s->sasrec)
	{
		/* the encoder mixes positions: nothing to fold, the screen still applies */
		int64_t		span[2] = {0, s->L};
		size_t		na = us_attn_arena_floats(cfg, span, 1, 0);

		us_attn_bind(cfg, model->p.encoder, &s->ap);
		s->x = us_scorer_alloc(s, (size_t) s->L * s->E, sizeof(float), &fail);
		s->enc = na ? us_scorer_alloc(s, na, sizeof(float), &fail) : NULL;
		s->tok_id = us_scorer_alloc(s, (size_t) s->L, sizeof(int32_t), &fail);
		if (s->enc == NULL)
			fail = 1;
		for (int32_t t = 0; !fail && t < s->L; t++)
			s->tok_id[t] = t;
	}
	else
	{
		build_folded(s, budget);
		if (s->folded)
			s->x = us_scorer_alloc(s, (size_t) s->R * s->E, sizeof(float), &fail);
		else
		{
			s->x = us_scorer_alloc(s, (size_t) s->L * s->E, sizeof(float), &fail);
			s->c = us_scorer_alloc(s, (size_t) (DIRECT_CHUNK + s->widths[s->W - 1] - 1) * s->S,
								   sizeof(float), &fail);
		}
		if (!s->folded || s->fold_slot)
			s->w_cat = us_scorer_alloc(s, (size_t) s->E * s->S, sizeof(float), &fail);
		s->rp = us_scorer_alloc(s, s->folded ? (size_t) 3 * s->L :
								(size_t) (DIRECT_CHUNK + s->widths[s->W - 1] - 1),
								sizeof(float *), &fail);
	}
	return us_scorer_finish(s, cfg->task, fail, out);
}

us_status
us_scorer_finish(us_scorer *s, int task, int fail, us_scorer **out)
{
	us_scorer_alloc_head(s, task, &fail);
	if (fail)
	{
		us_scorer_free(s);
		return US_ENOMEM;
	}
	if (s->w_cat)
		us_scorer_fill_w_cat(s);
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
	release_folded(s);
	us_scorer_release(s, s->x);
	us_scorer_release(s, s->c);
	us_scorer_release(s, s->w_cat);
	us_scorer_release(s, s->enc);
	us_scorer_release(s, s->tok_id);
	us_scorer_release(s, s->z);
	us_scorer_release(s, s->h);
	us_scorer_release(s, s->logits);
	us_scorer_release(s, s->seen);
	us_scorer_release(s, s->prior_scratch);
	us_scorer_release(s, (void *) s->rp);
	us_screen_free(s);
	s->alloc.free(s->alloc.ctx, s);
}

/* ------------------------------------------------------------------ forward */

/* Every row index of every event (not only the kept ones) must be in range. */
us_status
us_scorer_check_events(const us_scorer *s, const us_events *ev)
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

/* x = embedding sum of event i (behaviour / gap padding rows when their arrays are absent) */
static void
embed_event(const us_scorer *s, const us_events *ev, int32_t i, float *x)
{
	const us_params *p = &s->model->p;
	size_t		E = (size_t) s->E;

	memcpy(x, p->item_emb + (size_t) ev->items[i] * E, E * sizeof(float));
	if (s->NB > 0)
		vadd(x, p->behavior_emb + (size_t) (ev->behaviors ? ev->behaviors[i] : US_ROW_PAD) * E, s->E);
	if (s->NG > 0)
		vadd(x, p->gap_emb + (size_t) (ev->gaps ? ev->gaps[i] : US_ROW_PAD) * E, s->E);
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

	/* row pointers once per position; absent behaviour / gap arrays mean the padding rows */
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
			*rp++ = s->t_beh + (size_t) (ev->behaviors ? ev->behaviors[i] : US_ROW_PAD) * S;
		if (s->NG > 0 && (ev->gaps || !s->gap0_zero))
			*rp++ = s->t_gap + (size_t) (ev->gaps ? ev->gaps[i] : US_ROW_PAD) * S;
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
		us_conv_span	sp = {rows, nsrc, 0, m, 0, m - s->widths[w] + 1 > 1 ? m - s->widths[w] + 1 : 1};

		us_conv_pool(&sp, s->widths[w], s->woff[w], F, p->conv_b[w], s->z + (size_t) w * F);
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
			us_conv_span	sp = {s->rp, 1, t0, m, t0, t1 < nw ? t1 : nw};

			if (sp.t0 < sp.t1)
				us_conv_pool(&sp, s->widths[w], s->woff[w], F, p->conv_b[w], s->z + (size_t) w * F);
		}
	}
	for (int w = 0; w < s->W; w++)
		vrelu(s->z + (size_t) w * F, F);
}

/* sasrec: z = the encoder's output at the last of the m kept events (zeros for none) */
static void
encode_last(us_scorer *s, const us_events *ev, int32_t start, int32_t m)
{
	int64_t		span[2] = {0, m};
	us_attn_batch b;
	const float *out;

	if (m == 0)
	{
		memset(s->z, 0, (size_t) s->E * sizeof(float));
		return;
	}
	for (int32_t t = 0; t < m; t++)
		embed_event(s, ev, start + t, s->x + (size_t) t * s->E);
	memset(&b, 0, sizeof b);
	b.nseq = 1;
	b.seq_tok = span;
	b.T = m;
	b.tok_u = s->tok_id;
	b.X = s->x;
	out = us_attn_forward(&s->model->cfg, &s->ap, &b, s->enc);
	memcpy(s->z, out + (size_t) (m - 1) * s->E, (size_t) s->E * sizeof(float));
}

/* z (features) and h (hidden) for a validated sequence */
void
us_scorer_hidden(us_scorer *s, const us_events *ev)
{
	const us_params *p = &s->model->p;
	int32_t		start = ev->n > s->L ? ev->n - s->L : 0;
	int32_t		m = ev->n - start;
	int32_t		E = s->E;
	float	   *r = s->z + (size_t) s->W * s->F;

	s->last_item = ev->n > 0 ? ev->items[ev->n - 1] : US_ROW_PAD;
	s->hist = ev->items;
	s->n_hist = ev->n;

	if (s->sasrec)
		encode_last(s, ev, start, m);
	else if (s->folded)
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
float
us_row_logit(const float *w, const float *h, int32_t n, float b)
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
void
us_scorer_item_logits(const us_scorer *s, float *y)
{
	const us_params *p = &s->model->p;

	if (s->screen)
		for (int32_t i = 0; i < s->V; i++)
			y[i] = us_row_logit(s->out_rows + (size_t) i * s->H, s->h, s->H, p->out_b[i]);
	else
	{
		memcpy(y, p->out_b, (size_t) s->O * sizeof(float));
		if (p->out_w)
			cblas_sgemv(CblasRowMajor, CblasTrans, s->H, s->O, 1.0f, p->out_w, s->O, s->h, 1,
						1.0f, y, 1);
		else
			cblas_sgemv(CblasRowMajor, CblasNoTrans, s->V, s->E, 1.0f, p->item_emb, s->E, s->h,
						1, 1.0f, y, 1);
	}
	us_prior_add(s->model, s->hist, s->n_hist, y, s->prior_scratch);
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

us_status
us_scorer_forward(us_scorer *s, const us_events *events, float *out, float *features)
{
	const us_params *p;
	us_status	st;

	if (s == NULL)
		return US_EINVAL;
	st = us_scorer_check_events(s, events);
	if (st != US_OK)
		return st;
	p = &s->model->p;
	us_scorer_hidden(s, events);
	if (features)
	{
		memcpy(features, s->z, (size_t) s->D * sizeof(float));
		if (!us_all_finite(features, (size_t) s->D))
			return US_ENONFINITE;
	}
	/* out may be NULL when only the features are wanted (userseq_embed) */
	if (out == NULL)
		return US_OK;

	switch (s->model->cfg.task)
	{
		case US_TASK_NEXT_ITEM:
			us_scorer_item_logits(s, out);
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
	return us_all_finite(out, (size_t) s->model->cfg.n_outputs) ? US_OK : US_ENONFINITE;
}

us_status
us_scorer_row_logits(us_scorer *s, const us_events *events, const int32_t *rows, int32_t n_rows,
					  float *out)
{
	us_status	st;

	if (s == NULL || (rows == NULL && n_rows > 0) || (out == NULL && n_rows > 0) ||
		s->model->cfg.task != US_TASK_NEXT_ITEM || !s->screen)
		return US_EINVAL;
	for (int32_t i = 0; i < n_rows; i++)
		if (rows[i] < 0 || rows[i] >= s->V)
			return US_EINVAL;
	st = us_scorer_check_events(s, events);
	if (st != US_OK)
		return st;
	us_scorer_hidden(s, events);
	/* the same row kernel us_scorer_item_logits uses: bit-identical to us_scorer_forward's logits */
	for (int32_t i = 0; i < n_rows; i++)
		out[i] = us_prior_logit(s->model, s->hist, s->n_hist, rows[i],
								us_row_logit(s->out_rows + (size_t) rows[i] * s->H, s->h, s->H,
											 s->model->p.out_b[rows[i]]));
	return us_all_finite(out, (size_t) n_rows) ? US_OK : US_ENONFINITE;
}
