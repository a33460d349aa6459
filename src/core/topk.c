/*
 * topk.c: exact two-stage next_item top-k (us_scorer_topk). An int8 copy of the output rows
 * (the screen, built with the scorer) gives every item a value with a proven error bound; only
 * the items whose upper bound can still reach the k-th best lower bound are scored in fp32, by
 * the same row kernel us_scorer_forward uses for all of them (us_row_logit), so the answer is
 * the full sort's, bit for bit. The screen's inner loop has an AVX2 body (vpmaddubsw over
 * pairs of hidden units), chosen at run time by us_cpu_features() whatever the build flags,
 * and a portable body. The forward pass itself (h, logits) lives in scorer.c.
 */
#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "userseq/us_model.h"
#include "scorer_internal.h"

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#define US_SCREEN_HAVE_AVX2_PATH 1
#include <immintrin.h>
#endif

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
_Static_assert(QE_N == US_SCREEN_QE_N, "scorer_internal.h states the screen's layout");

/* rows per step of the screen: a unit's 64 int8 weights fill one cache line */
#define SCREEN_CHUNK US_SCREEN_CHUNK
/* bytes ahead in each unit's row to prefetch (8 chunks; past the end of qd is harmless) */
#define SCREEN_PREFETCH 512

/* chunks screened first, those of the highest bound (theta is high from the start) */
#define SCREEN_SEEDS 4

/* h is quantised to 0 .. H_LEVELS: two vpmaddubsw results then still add in int16 */
#define H_LEVELS 63


size_t
us_scorer_screen_bytes(const us_model_config *cfg)
{
	uint64_t	V,
				H,
				Vp,
				NCp,
				NGp;

	if (cfg == NULL || us_model_config_validate(cfg, NULL, 0) != US_OK ||
		cfg->task != US_TASK_NEXT_ITEM)
		return 0;
	V = (uint64_t) cfg->n_items;
	H = (uint64_t) cfg->hidden_dim;
	Vp = (V + SCREEN_CHUNK - 1) / SCREEN_CHUNK * SCREEN_CHUNK;
	NCp = US_SCREEN_NCP(V);
	NGp = (US_SCREEN_NG(V) + 7) / 8 * 8;

	/*
	 * int8 weights, scale, bias, block errors, the order and the chunk bounds (and one
	 * request's), h, candidates and bounds, fp32 rows unless tied
	 */
	return Vp * H + 63 + Vp * 2 * sizeof(float) + Vp / 8 * QE_N * sizeof(float) +
		Vp * sizeof(int32_t) + (H + 1) * NCp * sizeof(float) + NCp * 3 * sizeof(float) +
		(H + 1) * NGp * sizeof(float) + NGp * 3 * sizeof(float) +
		H + (H + 1) * sizeof(int32_t) + (H / 2 + 1) * (2 * sizeof(int8_t *) + sizeof(int16_t)) + V * (sizeof(int32_t) + 2 * sizeof(float)) +
		(cfg->tie_output ? 0 : V * H * sizeof(float));
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
	int32_t		H = s->H,
				c = i / SCREEN_CHUNK;
	float	   *qe = s->qerr + (size_t) (i / 8) * QE_N,
			   *meta = s->bmeta + (size_t) c * 3;
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
	/* the chunk's logit bound: maxima of the exact weights and bias (chunk bounds, screen_pass) */
	for (int32_t j = 0; j < H; j++)
		s->bmax[(size_t) j * s->NCp + c] = fmaxf(s->bmax[(size_t) j * s->NCp + c], w[j]);
	meta[0] = fmaxf(meta[0], b);
	meta[1] = fmaxf(meta[1], (float) mx);
	meta[2] = fmaxf(meta[2], fabsf(b));
	qe[QE_C1] = fmaxf(qe[QE_C1], (float) ((err + kappa * mx) * (1.0 + 0x1p-20)));
	qe[QE_C2] = fmaxf(qe[QE_C2], (float) ((double) sc * qsum * (1.0 + 0x1p-20)));
	qe[QE_C3] = fmaxf(qe[QE_C3], (float) ((kappa + 0x1p-20) * fabs((double) b) * (1.0 + 0x1p-20) +
										  1e-37));
	/* |s t dot| <= s t p_max 127 H */
	qe[QE_C4] = fmaxf(qe[QE_C4], (float) (0x1p-20 * (double) sc * 127.0 * H * (1.0 + 0x1p-20)));
	return 1;
}

/* frees the screen's tables and clears their pointers (the scorer keeps working unscreened) */
void
us_screen_free(us_scorer *s)
{
	us_scorer_release(s, s->out_rows_own);
	us_scorer_release(s, s->qd_raw);
	us_scorer_release(s, s->qscale);
	us_scorer_release(s, s->qbias);
	us_scorer_release(s, s->qerr);
	us_scorer_release(s, s->sperm);
	us_scorer_release(s, s->bmax);
	us_scorer_release(s, s->bmeta);
	us_scorer_release(s, s->cbound);
	us_scorer_release(s, s->gmax);
	us_scorer_release(s, s->gmeta);
	us_scorer_release(s, s->gbound);
	us_scorer_release(s, s->hq);
	us_scorer_release(s, s->hunits);
	us_scorer_release(s, (void *) s->pair_a);
	us_scorer_release(s, (void *) s->pair_b);
	us_scorer_release(s, s->pair_p);
	us_scorer_release(s, s->cand);
	us_scorer_release(s, s->cand_hi);
	us_scorer_release(s, s->lo_heap);
	s->out_rows = s->out_rows_own = NULL;
	s->qd = NULL;
	s->qd_raw = NULL;
	s->qscale = s->qbias = s->qerr = s->cand_hi = s->lo_heap = NULL;
	s->bmax = s->bmeta = s->cbound = NULL;
	s->gmax = s->gmeta = s->gbound = NULL;
	s->sperm = NULL;
	s->hq = NULL;
	s->hunits = s->cand = NULL;
	s->pair_a = s->pair_b = NULL;
	s->pair_p = NULL;
	s->screen = 0;
}

/* a request's scratch of a screened scorer: quantised h, its units and pairs, candidates */
static void
screen_alloc_scratch(us_scorer *s, int *fail)
{
	int32_t		V = s->V,
				H = s->H;

	s->hq = us_scorer_alloc(s, (size_t) H, 1, fail);
	s->hunits = us_scorer_alloc(s, (size_t) H + 1, sizeof(int32_t), fail);
	s->pair_a = us_scorer_alloc(s, (size_t) H / 2 + 1, sizeof(int8_t *), fail);
	s->pair_b = us_scorer_alloc(s, (size_t) H / 2 + 1, sizeof(int8_t *), fail);
	s->pair_p = us_scorer_alloc(s, (size_t) H / 2 + 1, sizeof(int16_t), fail);
	s->cand = us_scorer_alloc(s, (size_t) V, sizeof(int32_t), fail);
	s->cand_hi = us_scorer_alloc(s, (size_t) V, sizeof(float), fail);
	s->lo_heap = us_scorer_alloc(s, (size_t) V, sizeof(float), fail);
	s->cbound = us_scorer_alloc(s, (size_t) s->NCp, sizeof(float), fail);
	s->gbound = us_scorer_alloc(s, (size_t) s->NGRp, sizeof(float), fail);
	s->gmax = us_scorer_alloc(s, (size_t) s->H * s->NGRp, sizeof(float), fail);
	s->gmeta = us_scorer_alloc(s, (size_t) s->NGR * 3, sizeof(float), fail);
}

/* the groups' bounds tables from the chunks' (maxima of maxima; padding groups -FLT_MAX) */
static void
screen_groups(us_scorer *s)
{
	for (int32_t j = 0; j < s->H; j++)
		for (int32_t g = 0; g < s->NGRp; g++)
		{
			float		mx = -FLT_MAX;

			for (int32_t c = g * US_SCREEN_GROUP; c < (g + 1) * US_SCREEN_GROUP && c < s->NC; c++)
				mx = fmaxf(mx, s->bmax[(size_t) j * s->NCp + c]);
			s->gmax[(size_t) j * s->NGRp + g] = mx;
		}
	for (int32_t g = 0; g < s->NGR; g++)
	{
		float	   *gm = s->gmeta + (size_t) g * 3;

		gm[0] = -FLT_MAX;
		gm[1] = gm[2] = 0.0f;
		for (int32_t c = g * US_SCREEN_GROUP; c < (g + 1) * US_SCREEN_GROUP && c < s->NC; c++)
			for (int x = 0; x < 3; x++)
				gm[x] = fmaxf(gm[x], s->bmeta[(size_t) c * 3 + x]);
	}
}

static void
screen_dims(us_scorer *s)
{
	s->Vp = (s->V + SCREEN_CHUNK - 1) / SCREEN_CHUNK * SCREEN_CHUNK;
	s->NC = s->Vp / SCREEN_CHUNK;
	s->NCp = US_SCREEN_NCP(s->V);
	s->NGR = US_SCREEN_NG(s->V);
	s->NGRp = (s->NGR + 7) / 8 * 8;
	s->block_skip = 1;
}

/* sort key of the screen's order: descending bias (NaN last), then ascending row */
typedef struct screen_key
{
	float		b;
	int32_t		row;
} screen_key;

static int
screen_key_cmp(const void *pa, const void *pb)
{
	const screen_key *a = pa,
			   *b = pb;
	float		x = isnan(a->b) ? -INFINITY : a->b,
				y = isnan(b->b) ? -INFINITY : b->b;

	if (x != y)
		return x > y ? -1 : 1;
	return (a->row > b->row) - (a->row < b->row);
}

/*
 * The fp32 output rows (row-major) and their int8 screen, its rows in descending output bias
 * (popular items first in a trained model, so that a chunk's rows are alike and the long tail
 * is skipped whole). Fails softly (returns 0, nothing kept) when memory is short or a row
 * cannot be bounded: top-k then scans in full.
 */
int
us_screen_build(us_scorer *s)
{
	const us_params *p = &s->model->p;
	int32_t		V = s->V,
				H = s->H;
	int			fail = 0;
	screen_key *order;

	screen_dims(s);
	if (p->out_w == NULL)
		s->out_rows = p->item_emb;
	else
		s->out_rows = s->out_rows_own = us_scorer_alloc(s, (size_t) V * H, sizeof(float), &fail);
	/* aligned so that no 32-byte load of a unit's row straddles two cache lines */
	s->qd_raw = us_scorer_alloc(s, (size_t) s->Vp * H + 63, 1, &fail);
	if (s->qd_raw)
		s->qd = (int8_t *) (((uintptr_t) s->qd_raw + 63) & ~(uintptr_t) 63);
	s->qscale = us_scorer_alloc(s, (size_t) s->Vp, sizeof(float), &fail);
	s->qbias = us_scorer_alloc(s, (size_t) s->Vp, sizeof(float), &fail);
	s->qerr = us_scorer_alloc(s, (size_t) s->Vp / 8 * QE_N, sizeof(float), &fail);
	s->sperm = us_scorer_alloc(s, (size_t) s->Vp, sizeof(int32_t), &fail);
	s->bmax = us_scorer_alloc(s, (size_t) H * s->NCp, sizeof(float), &fail);
	s->bmeta = us_scorer_alloc(s, (size_t) s->NC * 3, sizeof(float), &fail);
	screen_alloc_scratch(s, &fail);
	/* temporary (V keys, 8 MB at a million items) */
	order = us_scorer_alloc(s, (size_t) V, sizeof(screen_key), &fail);
	if (!fail)
	{
		memset(s->qd, 0, (size_t) s->Vp * H);
		memset(s->qscale, 0, (size_t) s->Vp * sizeof(float));
		memset(s->qerr, 0, (size_t) s->Vp / 8 * QE_N * sizeof(float));
		for (size_t x = 0; x < (size_t) H * s->NCp; x++)
			s->bmax[x] = -FLT_MAX;
		for (int32_t c = 0; c < s->NC; c++)
		{
			s->bmeta[c * 3] = -FLT_MAX;
			s->bmeta[c * 3 + 1] = s->bmeta[c * 3 + 2] = 0.0f;
		}
		/* padding rows: never above a threshold (and skipped anyway) */
		for (int32_t i = V; i < s->Vp; i++)
		{
			s->qbias[i] = -FLT_MAX / 4;
			s->sperm[i] = -1;
		}
		if (s->out_rows_own)
			for (int32_t j = 0; j < H; j++)
			{
				const float *src = p->out_w + (size_t) j * V;

				for (int32_t i = 0; i < V; i++)
					s->out_rows_own[(size_t) i * H + j] = src[i];
			}
		for (int32_t i = 0; i < V; i++)
		{
			order[i].b = p->out_b[i];
			order[i].row = i;
		}
		qsort(order, (size_t) V, sizeof(screen_key), screen_key_cmp);
		for (int32_t i = 0; i < V && !fail; i++)
		{
			int32_t		r = order[i].row;

			s->sperm[i] = r;
			if (!quantise_row(s, i, s->out_rows + (size_t) r * H, p->out_b[r]))
				fail = 1;
		}
	}
	us_scorer_release(s, order);
	if (fail)
	{
		us_screen_free(s);
		return 0;
	}
	screen_groups(s);
	s->screen = 1;
	return 1;
}

int
us_screen_attach(us_scorer *s, const us_screen_tables *t)
{
	int			fail = 0;

	screen_dims(s);
	s->out_rows = t->out_rows;
	/* qd_raw is freed with the rest: the view allocator of an image ignores it */
	s->qd = t->qd;
	s->qd_raw = t->qd;
	s->qscale = t->qscale;
	s->qbias = t->qbias;
	s->qerr = t->qerr;
	s->sperm = t->sperm;
	s->bmax = t->bmax;
	s->bmeta = t->bmeta;
	screen_alloc_scratch(s, &fail);
	if (fail)
	{
		us_screen_free(s);
		return 0;
	}
	screen_groups(s);
	s->screen = 1;
	return 1;
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

/* the k-th best entry enters only if better (rows arrive in any order: ties go to the lower) */
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
	else if (worse(sc[0], rows[0], v, r))
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
		int32_t		i = s->sperm[b * 8 + r];
		float		hi = a[r] + eb,
					lo = a[r] - eb;

		if (!(hi >= st->theta) || i < US_ROW_FIRST || i >= s->V ||
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

/* the rows of chunk c0 .. c0 + SCREEN_CHUNK, portable: the integer dots one row at a time */
static void
screen_chunk_portable(us_scorer *s, screen_state *st, int32_t c0, int32_t nu, float t,
					  float h1, float eps)
{
	size_t		Vp = (size_t) s->Vp;
	float		tmax = t * H_LEVELS;

	for (int32_t b = c0 / 8; b < (c0 + SCREEN_CHUNK) / 8; b++)
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
			any |= av[r] + eb >= st->theta;
		}
		if (any)
			screen_take(s, st, b, av, eb);
	}
}

#ifdef US_SCREEN_HAVE_AVX2_PATH
/*
 * The rows of chunk c0 .. c0 + 64, AVX2: pairs of units through vpmaddubsw (the pairs as
 * screen_pairs laid them out, np of them)
 */
__attribute__((target("avx2")))
static void
screen_chunk_avx2(us_scorer *s, screen_state *st, int32_t c0, int32_t np, float t, float h1,
				  float eps)
{
	float		tmax = t * H_LEVELS;
	const __m256 tv = _mm256_set1_ps(t);

	/*
	 * acc[h * 4 + v]: rows c0 + 32 h + {0..7, 16..23, 8..15, 24..31}[v] (the lane order of
	 * unpack lo / hi); each unit's 64 rows are one cache line.
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
	for (int v = 0; v < 8; v++)
	{
		int32_t		r0 = c0 + acc_row[v];
		float		eb = block_err(s, r0 / 8, h1, eps, tmax);
		__m256		a = _mm256_add_ps(_mm256_loadu_ps(s->qbias + r0),
									  _mm256_mul_ps(_mm256_mul_ps(_mm256_loadu_ps(s->qscale + r0), tv),
													_mm256_cvtepi32_ps(acc[v])));
		__m256		hv = _mm256_add_ps(a, _mm256_set1_ps(eb));

		if (_mm256_movemask_ps(_mm256_cmp_ps(hv, _mm256_set1_ps(st->theta), _CMP_GE_OQ)))
		{
			float		av[8];

			_mm256_storeu_ps(av, a);
			screen_take(s, st, r0 / 8, av, eb);
		}
	}
}
#endif

/*
 * Upper bounds on the fp32 logits of the rows of chunks (or groups) lo .. hi - 1 for this h,
 * into out: mx (H, stride) holds their per-unit weight maxima, meta (n, 3) their max bias,
 * max |weight| and max |bias|; lo is a multiple of 8 and hi is rounded up to one (within
 * stride; entries past n get no margin and are never read). With M_j >= w_ij for the rows i
 * and h_j >= 0, y_i <= max_i b_i + sum_j h_j M_j. The rounding of y_i (us_row_logit, any order,
 * FMA or not) and of the bound's own float sum are each at most gamma_{H+1} (max|b| + max|w|
 * ||h||_1), and so is the margin's: 2 (H + 2) 2^-24 with 1 % to spare covers them all, plus an
 * absolute term for underflow.
 */
static void
range_bounds(const us_scorer *s, float h1, const float *mx, const float *meta, int32_t stride,
			 int32_t n, int32_t lo, int32_t hi, float *out)
{
	const float cst = (float) (1.01 * 2.0 * (s->H + 2) * 0x1p-24);

	hi = (hi + 7) / 8 * 8;
	if (hi > stride)
		hi = stride;
	for (int32_t c = lo; c < hi; c++)
		out[c] = c < n ? meta[c * 3] : 0.0f;
	/* every unit with h_j > 0, also those whose quantised value is 0 */
	for (int32_t j = 0; j < s->H; j++)
	{
		float		hj = s->h[j];
		const float *m = mx + (size_t) j * stride;

		if (!(hj > 0.0f))
			continue;
#ifdef US_HAVE_V8F
		for (int32_t c = lo; c < hi; c += 8)
		{
			v8f			acc = v8_load(out + c) + hj * v8_load(m + c);

			memcpy(out + c, &acc, sizeof(acc));
		}
#else
		for (int32_t c = lo; c < hi; c++)
			out[c] += hj * m[c];
#endif
	}
	for (int32_t c = lo; c < hi && c < n; c++)
		out[c] += cst * (meta[c * 3 + 1] * h1 + meta[c * 3 + 2]) + 1e-30f;
}

/* the bounds of group g's chunks, into cbound */
static void
group_chunk_bounds(us_scorer *s, int32_t g, float h1)
{
	range_bounds(s, h1, s->bmax, s->bmeta, s->NCp, s->NC, g * US_SCREEN_GROUP,
				 (g + 1) * US_SCREEN_GROUP, s->cbound);
}

/* chunk c by the body this machine runs */
static inline void
screen_chunk(us_scorer *s, screen_state *st, int32_t c, int32_t nu, int32_t np, int avx2,
			 float t, float h1, float eps)
{
#ifdef US_SCREEN_HAVE_AVX2_PATH
	if (avx2)
	{
		screen_chunk_avx2(s, st, c * SCREEN_CHUNK, np, t, h1, eps);
		return;
	}
#endif
	(void) np;
	(void) avx2;
	screen_chunk_portable(s, st, c * SCREEN_CHUNK, nu, t, h1, eps);
}

/*
 * Stage 1 of the exact top-k: every item's screen value a_i = b_i + s_i t dot_i (dot_i the
 * int8 x 6-bit integer dot over the nonzero units of h) with a proven bound |y_i - a_i| <= e
 * on its fp32 logit y_i (e per block of 8 rows). theta is the k-th best lower bound a - e
 * among eligible rows; an item whose upper bound a + e is below it is beaten by k others and
 * cannot be in the top k. Returns the candidates (in screen order, upper bound >= theta when
 * seen) and the final theta (-inf if fewer than k rows are eligible).
 */
static int32_t
screen_pass(us_scorer *s, int32_t k, int exclude_seen, float t, float h1, float eps,
			float *theta_out)
{
	screen_state st = {-INFINITY, k, 0, 0, exclude_seen};
	int32_t		nu = 0,
				np = 0,
				seed[SCREEN_SEEDS],
				n_seed = 0,
				skipped = 0;
	int			avx2 = 0;

	/* ReLU leaves h sparse (3 of 4 units are zero in a trained model's typical request):
	 * only the nonzero units' weights are read */
	for (int32_t j = 0; j < s->H; j++)
		if (s->hq[j] != 0)
			s->hunits[nu++] = j;

#ifdef US_SCREEN_HAVE_AVX2_PATH
	avx2 = (us_cpu_features() & US_CPU_AVX2) != 0;
	/* pairs of units: interleaved bytes (q_a, q_b) times (p_a, p_b) in vpmaddubsw; an odd last
	 * unit pairs with itself at weight 0 */
	np = (nu + 1) / 2;
	for (int32_t z = 0; z < np; z++)
	{
		int32_t		ua = s->hunits[2 * z],
					ub = 2 * z + 1 < nu ? s->hunits[2 * z + 1] : ua;
		int			pb = 2 * z + 1 < nu ? s->hq[ub] : 0;

		s->pair_a[z] = s->qd + ua * (size_t) s->Vp;
		s->pair_b[z] = s->qd + ub * (size_t) s->Vp;
		s->pair_p[z] = (int16_t) (s->hq[ua] | (pb << 8));
	}
#endif

	/* with chunk skipping: SCREEN_SEEDS chunks of high bound first, so that theta is high
	 * from the start */
	if (s->block_skip)
	{
		int32_t		gbest = 0;

		/* the groups' bounds; the seeds are the best chunks of the group of highest bound */
		range_bounds(s, h1, s->gmax, s->gmeta, s->NGRp, s->NGR, 0, s->NGR, s->gbound);
		for (int32_t g = 1; g < s->NGR; g++)
			if (s->gbound[g] > s->gbound[gbest])
				gbest = g;
		group_chunk_bounds(s, gbest, h1);
		for (int32_t c = gbest * US_SCREEN_GROUP; c < (gbest + 1) * US_SCREEN_GROUP && c < s->NC; c++)
		{
			int32_t		x;

			if (n_seed == SCREEN_SEEDS && !(s->cbound[c] > s->cbound[seed[n_seed - 1]]))
				continue;
			/* insertion into the seeds, highest bound first */
			x = n_seed < SCREEN_SEEDS ? n_seed++ : n_seed - 1;
			while (x > 0 && s->cbound[seed[x - 1]] < s->cbound[c])
			{
				seed[x] = seed[x - 1];
				x--;
			}
			seed[x] = c;
		}
		for (int32_t x = 0; x < n_seed; x++)
			screen_chunk(s, &st, seed[x], nu, np, avx2, t, h1, eps);
		/*
		 * then every group whose bound reaches theta, and in it every chunk whose bound does:
		 * a skipped group's or chunk's rows are all beaten by k others (their bound is below
		 * the k-th best lower bound), so they could never be candidates
		 */
		for (int32_t g = 0; g < s->NGR; g++)
		{
			int32_t		c1 = (g + 1) * US_SCREEN_GROUP < s->NC ? (g + 1) * US_SCREEN_GROUP : s->NC;

			if (g != gbest && s->gbound[g] < st.theta)
			{
				skipped += c1 - g * US_SCREEN_GROUP;
				s->n_groups_skipped++;
				continue;
			}
			if (g != gbest)
				group_chunk_bounds(s, g, h1);
			for (int32_t c = g * US_SCREEN_GROUP; c < c1; c++)
			{
				int			was_seed = 0;

				for (int32_t x = 0; x < n_seed; x++)
					was_seed |= seed[x] == c;
				if (was_seed)
					continue;
				if (s->cbound[c] < st.theta)
					skipped++;
				else
					screen_chunk(s, &st, c, nu, np, avx2, t, h1, eps);
			}
		}
	}
	else
		for (int32_t c = 0; c < s->NC; c++)
			screen_chunk(s, &st, c, nu, np, avx2, t, h1, eps);
	s->n_chunks += (uint64_t) s->NC;
	s->n_skipped += (uint64_t) skipped;
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
	st = us_scorer_check_events(s, events);
	if (st != US_OK)
		return st;
	if (k > s->V)
		k = s->V;

	us_scorer_hidden(s, events);
	if (exclude_seen)
		for (int32_t i = 0; i < events->n; i++)
			s->seen[events->items[i] >> 3] |= (uint8_t) (1u << (events->items[i] & 7));

	screened = s->screen && quantise_h(s, &t, &h1, &eps);
	if (screened)
	{
		const int32_t *succ = NULL;
		const float *logc = NULL;
		int32_t		n_succ = 0,
					nc,
					h0 = events->n > s->L ? events->n - s->L : 0;
		uint8_t		succ_seen[US_TRANS_MAX_PER_ROW];
		/* the repeat prior raises the kept history's rows: unless they are excluded anyway */
		int			rep = us_repeat_active(s->model) && !exclude_seen;

		/*
		 * The transition prior raises only the last item's successors (at most
		 * US_TRANS_MAX_PER_ROW), the repeat prior only the rows of the kept history: the
		 * screen ranks every other row by its logit alone, with those rows excluded like
		 * seen rows, and they are scored exactly here. The k best of the union are the k
		 * best overall.
		 */
		if (us_transitions_active(s->model))
			us_transitions_row(s->model, s->last_item, &succ, &logc, &n_succ);
		for (int32_t j = 0; j < n_succ; j++)
		{
			int32_t		r = succ[j];

			succ_seen[j] = (s->seen[r >> 3] >> (r & 7)) & 1;
			s->seen[r >> 3] |= (uint8_t) (1u << (r & 7));
		}
		for (int32_t i = h0; rep && i < events->n; i++)
			if (events->items[i] >= US_ROW_FIRST)
				s->seen[events->items[i] >> 3] |= (uint8_t) (1u << (events->items[i] & 7));
		/* stage 2: the surviving candidates in fp32, by the kernel forward uses */
		nc = screen_pass(s, k, exclude_seen || n_succ > 0 || rep, t, h1, eps, &theta);
		for (int32_t c = 0; c < nc; c++)
			if (s->cand_hi[c] >= theta)
			{
				int32_t		r = s->cand[c];

				offer(rows, scores, &n, k, r,
					  us_row_logit(s->out_rows + (size_t) r * s->H, s->h, s->H,
								s->model->p.out_b[r]));
			}
		/* each raised row once: its bit is cleared when it is offered */
		for (int32_t j = 0; j < n_succ; j++)
		{
			int32_t		r = succ[j];

			s->seen[r >> 3] &= (uint8_t) ~(1u << (r & 7));
			if (!(exclude_seen && succ_seen[j]))
				offer(rows, scores, &n, k, r,
					  us_prior_logit(s->model, s->hist, s->n_hist, r,
									 us_row_logit(s->out_rows + (size_t) r * s->H, s->h, s->H,
												  s->model->p.out_b[r])));
		}
		for (int32_t i = h0; rep && i < events->n; i++)
		{
			int32_t		r = events->items[i];

			if (r < US_ROW_FIRST || !((s->seen[r >> 3] >> (r & 7)) & 1))
				continue;
			s->seen[r >> 3] &= (uint8_t) ~(1u << (r & 7));
			offer(rows, scores, &n, k, r,
				  us_prior_logit(s->model, s->hist, s->n_hist, r,
								 us_row_logit(s->out_rows + (size_t) r * s->H, s->h, s->H,
											  s->model->p.out_b[r])));
		}
	}
	else
	{
		us_scorer_item_logits(s, s->logits);
		for (int32_t r = US_ROW_FIRST; r < s->V; r++)
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
		if (!us_all_finite(s->logits, (size_t) s->model->cfg.n_outputs))
			return US_ENONFINITE;
		for (int32_t i = 0; i < n; i++)
			scores[i] = s->logits[rows[i]];
	}
	else if (!us_all_finite(scores, (size_t) n))
		return US_ENONFINITE;
	*n_found = n;
	return US_OK;
}
