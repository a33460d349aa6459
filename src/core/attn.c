/*
 * attn.c: the causal self-attention encoder of the "sasrec" architecture (see us_attn.h for
 * the function and the parameter layout): forward and backward per layer as pairs, llm.c
 * style, over the concatenated tokens of a batch. The linear layers are GEMMs over all tokens;
 * attention runs per sequence and head over the causal triangle (sequences are short, so the
 * O(n^2) part is small next to the GEMMs). Every activation the backward pass needs is kept in
 * the caller's arena; nothing here allocates, prints or keeps state.
 */
#include <math.h>
#include <string.h>

#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC optimize("O3", "no-trapping-math")
#endif

#include "us_attn.h"
#include "us_internal.h"

#define LN_EPS 1e-5f

/* ------------------------------------------------------------------ parameters */

static size_t
block_floats(size_t E)
{
	return 6 * E * E + 10 * E;
}

size_t
us_attn_param_count(const us_model_config *cfg)
{
	size_t		E = (size_t) cfg->embed_dim;

	if (cfg->architecture != US_ARCH_SASREC)
		return 0;
	return (size_t) cfg->max_len * E + (size_t) cfg->n_blocks * block_floats(E) + 2 * E;
}

void
us_attn_bind(const us_model_config *cfg, float *base, us_attn_params *ap)
{
	size_t		E = (size_t) cfg->embed_dim;
	float	   *q = base;

	memset(ap, 0, sizeof(*ap));
	ap->pos_emb = q;
	q += (size_t) cfg->max_len * E;
	for (int l = 0; l < cfg->n_blocks; l++)
	{
		us_attn_block *b = &ap->blk[l];

		b->ln1_g = q;
		q += E;
		b->ln1_b = q;
		q += E;
		b->w_qkv = q;
		q += 3 * E * E;
		b->b_qkv = q;
		q += 3 * E;
		b->w_o = q;
		q += E * E;
		b->b_o = q;
		q += E;
		b->ln2_g = q;
		q += E;
		b->ln2_b = q;
		q += E;
		b->w_1 = q;
		q += E * E;
		b->b_1 = q;
		q += E;
		b->w_2 = q;
		q += E * E;
		b->b_2 = q;
		q += E;
	}
	ap->lnf_g = q;
	q += E;
	ap->lnf_b = q;
}

static void
fill(float *x, size_t n, float v)
{
	for (size_t i = 0; i < n; i++)
		x[i] = v;
}

static void
uniform(us_rng *rng, float *x, size_t n, double bound)
{
	for (size_t i = 0; i < n; i++)
		x[i] = (float) ((2.0 * us_rng_uniform(rng) - 1.0) * bound);
}

void
us_attn_init(const us_model_config *cfg, const us_attn_params *ap, us_rng *rng, double emb_std)
{
	size_t		E = (size_t) cfg->embed_dim;
	double		bound = 1.0 / sqrt((double) E);

	for (size_t i = 0; i < (size_t) cfg->max_len * E; i++)
		ap->pos_emb[i] = (float) (us_rng_normal(rng) * emb_std);
	for (int l = 0; l < cfg->n_blocks; l++)
	{
		const us_attn_block *b = &ap->blk[l];

		fill(b->ln1_g, E, 1.0f);
		fill(b->ln1_b, E, 0.0f);
		uniform(rng, b->w_qkv, 3 * E * E, bound);
		fill(b->b_qkv, 3 * E, 0.0f);
		uniform(rng, b->w_o, E * E, bound);
		fill(b->b_o, E, 0.0f);
		fill(b->ln2_g, E, 1.0f);
		fill(b->ln2_b, E, 0.0f);
		uniform(rng, b->w_1, E * E, bound);
		fill(b->b_1, E, 0.0f);
		uniform(rng, b->w_2, E * E, bound);
		fill(b->b_2, E, 0.0f);
	}
	fill(ap->lnf_g, E, 1.0f);
	fill(ap->lnf_b, E, 0.0f);
}

/* ------------------------------------------------------------------ arena */

/* activations of one block, (T, .) rows */
typedef struct act_block
{
	float	   *a,				/* (T, E) layernorm1 output */
			   *mu1,
			   *rs1,			/* (T) */
			   *qkv,			/* (T, 3E) */
			   *P,				/* attention probabilities, per sequence nh * n * n */
			   *o,				/* (T, E) attention output (heads concatenated) */
			   *xm,				/* (T, E) residual stream after attention */
			   *b,				/* (T, E) layernorm2 output */
			   *mu2,
			   *rs2,
			   *f,				/* (T, E) pre-relu */
			   *r,				/* (T, E) relu(f) */
			   *m_att,
			   *m_ffn;			/* (T, E) dropout scales */
} act_block;

typedef struct arena_map
{
	float	   *xs[US_MAX_BLOCKS + 1];	/* residual stream entering block l, xs[L] leaving */
	float	   *m_in;			/* (T, E) input dropout scales */
	act_block	blk[US_MAX_BLOCKS];
	float	   *out,
			   *muf,
			   *rsf;
	/* backward scratch */
	float	   *dx,
			   *d1,
			   *d2,
			   *dqkv,
			   *drow;
} arena_map;

/* attention floats of the batch: nh * sum n^2 */
static int
att_floats(const us_model_config *cfg, const int64_t *seq_tok, int32_t nseq, size_t *out)
{
	size_t		acc = 0;

	for (int32_t s = 0; s < nseq; s++)
	{
		size_t		n = (size_t) (seq_tok[s + 1] - seq_tok[s]);

		if (n > (size_t) cfg->max_len)
			return 0;
		acc += n * n;
	}
	return us_mul_size(acc, (size_t) cfg->n_heads, out);
}

/* lays the arena out (arena NULL: only counts); returns the float count, 0 on overflow */
static size_t
arena_layout(const us_model_config *cfg, int64_t T64, size_t natt, int train, float *arena,
			 arena_map *m)
{
	size_t		E = (size_t) cfg->embed_dim,
				T = (size_t) T64,
				TE,
				off = 0;
	int			L = cfg->n_blocks;

#define TAKE(ptr, count) do { (ptr) = arena ? arena + off : NULL; off += (count); } while (0)
	if (!us_mul_size(T, E, &TE) || TE > ((size_t) 1 << 40) || natt > ((size_t) 1 << 40))
		return 0;
	memset(m, 0, sizeof(*m));
	for (int l = 0; l <= L; l++)
		TAKE(m->xs[l], TE);
	TAKE(m->m_in, TE);
	for (int l = 0; l < L; l++)
	{
		act_block  *b = &m->blk[l];

		TAKE(b->a, TE);
		TAKE(b->mu1, T);
		TAKE(b->rs1, T);
		TAKE(b->qkv, 3 * TE);
		TAKE(b->P, natt);
		TAKE(b->o, TE);
		TAKE(b->xm, TE);
		TAKE(b->b, TE);
		TAKE(b->mu2, T);
		TAKE(b->rs2, T);
		TAKE(b->f, TE);
		TAKE(b->r, TE);
		TAKE(b->m_att, TE);
		TAKE(b->m_ffn, TE);
	}
	TAKE(m->out, TE);
	TAKE(m->muf, T);
	TAKE(m->rsf, T);
	if (train)
	{
		TAKE(m->dx, TE);
		TAKE(m->d1, TE);
		TAKE(m->d2, TE);
		TAKE(m->dqkv, 3 * TE);
		TAKE(m->drow, (size_t) cfg->max_len);
	}
#undef TAKE
	return off > 0 ? off : 1;
}

size_t
us_attn_arena_floats(const us_model_config *cfg, const int64_t *seq_tok, int32_t nseq, int train)
{
	arena_map	m;
	size_t		natt;

	if (!att_floats(cfg, seq_tok, nseq, &natt))
		return 0;
	return arena_layout(cfg, seq_tok[nseq], natt, train, NULL, &m);
}

/* ------------------------------------------------------------------ layers */

/* y (T, E) = layernorm(x) * g + b; keeps mean and 1/std per row */
static void
layernorm_forward(float *y, float *mu, float *rs, const float *x, const float *g,
				  const float *b, size_t T, int E)
{
	for (size_t t = 0; t < T; t++)
	{
		const float *xr = x + t * E;
		float	   *yr = y + t * E;
		float		m = 0.0f,
					v = 0.0f,
					r;

		for (int e = 0; e < E; e++)
			m += xr[e];
		m /= (float) E;
		for (int e = 0; e < E; e++)
			v += (xr[e] - m) * (xr[e] - m);
		v /= (float) E;
		r = 1.0f / sqrtf(v + LN_EPS);
		for (int e = 0; e < E; e++)
			yr[e] = (xr[e] - m) * r * g[e] + b[e];
		mu[t] = m;
		rs[t] = r;
	}
}

/* dx (T, E) += d layernorm / dx . dy; dg, db += their gradients */
static void
layernorm_backward(float *dx, float *dg, float *db, const float *dy, const float *x,
				   const float *mu, const float *rs, const float *g, size_t T, int E)
{
	for (size_t t = 0; t < T; t++)
	{
		const float *xr = x + t * E,
				   *dyr = dy + t * E;
		float	   *dxr = dx + t * E;
		float		mean_dn = 0.0f,
					mean_dnn = 0.0f;

		for (int e = 0; e < E; e++)
		{
			float		n = (xr[e] - mu[t]) * rs[t];
			float		dn = dyr[e] * g[e];

			mean_dn += dn;
			mean_dnn += dn * n;
			dg[e] += dyr[e] * n;
			db[e] += dyr[e];
		}
		mean_dn /= (float) E;
		mean_dnn /= (float) E;
		for (int e = 0; e < E; e++)
		{
			float		n = (xr[e] - mu[t]) * rs[t];

			dxr[e] += rs[t] * (dyr[e] * g[e] - mean_dn - n * mean_dnn);
		}
	}
}

/* y (T, out) = x (T, in) @ w (in, out) + bias */
static void
linear_forward(float *y, const float *x, const float *w, const float *bias, size_t T, int in,
			   int out)
{
	for (size_t t = 0; t < T; t++)
		memcpy(y + t * out, bias, (size_t) out * sizeof(float));
	if (T > 0)
		us_gemm(0, 0, (int) T, out, in, 1.0f, x, in, w, out, 1.0f, y, out);
}

/* dx (T, in) = (or +=, by beta) dy @ w^T; dw += x^T @ dy; dbias += column sums of dy */
static void
linear_backward(float *dx, float beta, float *dw, float *dbias, const float *dy, const float *x,
				const float *w, size_t T, int in, int out)
{
	if (T == 0)
		return;
	for (size_t t = 0; t < T; t++)
	{
		const float *r = dy + t * out;

		for (int j = 0; j < out; j++)
			dbias[j] += r[j];
	}
	us_gemm(1, 0, in, out, (int) T, 1.0f, x, in, dy, out, 1.0f, dw, out);
	us_gemm(0, 1, (int) T, in, out, 1.0f, dy, out, w, out, beta, dx, in);
}

/*
 * Causal multi-head attention of each sequence: o (T, E) from qkv (T, 3E) (q | k | v, head h
 * in columns h*dh .. h*dh+dh-1 of each), P the probabilities (per sequence and head n x n,
 * rows i, columns j <= i).
 */
static void
attention_forward(float *o, float *P, const float *qkv, const int64_t *seq_tok, int32_t nseq,
				  int E, int nh)
{
	int			dh = E / nh;
	float		scale = 1.0f / sqrtf((float) dh);
	size_t		poff = 0;

	for (int32_t s = 0; s < nseq; s++)
	{
		int64_t		t0 = seq_tok[s];
		int			n = (int) (seq_tok[s + 1] - t0);

		for (int h = 0; h < nh; h++, poff += (size_t) n * n)
		{
			float	   *Ph = P + poff;

			for (int i = 0; i < n; i++)
			{
				const float *q = qkv + (size_t) (t0 + i) * 3 * E + h * dh;
				float	   *pr = Ph + (size_t) i * n;
				float	   *orow = o + (size_t) (t0 + i) * E + h * dh;
				float		mx = -INFINITY,
							sum = 0.0f;

				for (int j = 0; j <= i; j++)
				{
					const float *k = qkv + (size_t) (t0 + j) * 3 * E + E + h * dh;
					float		d = 0.0f;

					for (int c = 0; c < dh; c++)
						d += q[c] * k[c];
					pr[j] = d * scale;
					mx = pr[j] > mx ? pr[j] : mx;
				}
				for (int j = 0; j <= i; j++)
				{
					pr[j] = expf(pr[j] - mx);
					sum += pr[j];
				}
				for (int j = 0; j <= i; j++)
					pr[j] /= sum;
				for (int j = i + 1; j < n; j++)
					pr[j] = 0.0f;
				memset(orow, 0, (size_t) dh * sizeof(float));
				for (int j = 0; j <= i; j++)
				{
					const float *v = qkv + (size_t) (t0 + j) * 3 * E + 2 * E + h * dh;

					for (int c = 0; c < dh; c++)
						orow[c] += pr[j] * v[c];
				}
			}
		}
	}
}

/* dqkv (T, 3E), zeroed here, from do (T, E); drow scratch of max_len floats */
static void
attention_backward(float *dqkv, const float *dout, const float *P, const float *qkv,
				   const int64_t *seq_tok, int32_t nseq, int E, int nh, float *drow)
{
	int			dh = E / nh;
	float		scale = 1.0f / sqrtf((float) dh);
	size_t		poff = 0;

	memset(dqkv, 0, (size_t) seq_tok[nseq] * 3 * E * sizeof(float));
	for (int32_t s = 0; s < nseq; s++)
	{
		int64_t		t0 = seq_tok[s];
		int			n = (int) (seq_tok[s + 1] - t0);

		for (int h = 0; h < nh; h++, poff += (size_t) n * n)
		{
			const float *Ph = P + poff;

			for (int i = 0; i < n; i++)
			{
				const float *pr = Ph + (size_t) i * n;
				const float *dor = dout + (size_t) (t0 + i) * E + h * dh;
				const float *q = qkv + (size_t) (t0 + i) * 3 * E + h * dh;
				float	   *dq = dqkv + (size_t) (t0 + i) * 3 * E + h * dh;
				float		dot = 0.0f;

				/* dp_j = do_i . v_j; dv_j += p_ij do_i */
				for (int j = 0; j <= i; j++)
				{
					const float *v = qkv + (size_t) (t0 + j) * 3 * E + 2 * E + h * dh;
					float	   *dv = dqkv + (size_t) (t0 + j) * 3 * E + 2 * E + h * dh;
					float		d = 0.0f;

					for (int c = 0; c < dh; c++)
					{
						d += dor[c] * v[c];
						dv[c] += pr[j] * dor[c];
					}
					drow[j] = d;
					dot += pr[j] * d;
				}
				/* softmax backward, then the scores' q . k */
				for (int j = 0; j <= i; j++)
				{
					const float *k = qkv + (size_t) (t0 + j) * 3 * E + E + h * dh;
					float	   *dk = dqkv + (size_t) (t0 + j) * 3 * E + E + h * dh;
					float		ds = pr[j] * (drow[j] - dot) * scale;

					for (int c = 0; c < dh; c++)
					{
						dq[c] += ds * k[c];
						dk[c] += ds * q[c];
					}
				}
			}
		}
	}
}

/*
 * Dropout scales of site for every token: 0 or 1 / (1 - p), from an RNG seeded by (seed,
 * sequence key, position, site), so the mask of a token does not depend on its batch slice.
 */
static void
dropout_mask(float *m, const us_attn_batch *b, int site, float p, int E)
{
	uint32_t	thr = (uint32_t) ((double) p * 16777216.0);
	float		scale = 1.0f / (1.0f - p);

	for (int32_t s = 0; s < b->nseq; s++)
		for (int64_t t = b->seq_tok[s]; t < b->seq_tok[s + 1]; t++)
		{
			us_rng		rng;
			uint64_t	pos = (uint64_t) (t - b->seq_tok[s]);
			float	   *mr = m + (size_t) t * E;

			us_rng_seed(&rng, b->drop_seed ^ (UINT64_C(0x9E3779B97F4A7C15) * ((uint64_t) b->seq_key[s] + 1)) ^
						(UINT64_C(0xD1B54A32D192ED03) * (pos + 1)) ^
						(UINT64_C(0x8CB92BA72F3D8DD7) * ((uint64_t) site + 1)));
			for (int e = 0; e < E; e++)
				mr[e] = (uint32_t) (us_rng_next(&rng) >> 40) >= thr ? scale : 0.0f;
		}
}

/* ------------------------------------------------------------------ forward / backward */

static int
use_dropout(const us_model_config *cfg, const us_attn_batch *b)
{
	return b->dropout && cfg->dropout > 0.0f && b->seq_key != NULL;
}

const float *
us_attn_forward(const us_model_config *cfg, const us_attn_params *ap, const us_attn_batch *b,
				float *arena)
{
	int			E = cfg->embed_dim,
				L = cfg->n_blocks,
				nh = cfg->n_heads;
	size_t		T = (size_t) b->T;
	size_t		natt;
	int			drop = use_dropout(cfg, b);
	arena_map	m;

	if (!att_floats(cfg, b->seq_tok, b->nseq, &natt))
		return NULL;
	arena_layout(cfg, b->T, natt, 0, arena, &m);

	/* x (T, E) = dropout(emb + pos) */
	for (int32_t s = 0; s < b->nseq; s++)
		for (int64_t t = b->seq_tok[s]; t < b->seq_tok[s + 1]; t++)
		{
			const float *xe = b->X + (size_t) b->tok_u[t] * E;
			const float *pe = ap->pos_emb + (size_t) (t - b->seq_tok[s]) * E;
			float	   *x = m.xs[0] + (size_t) t * E;

			for (int e = 0; e < E; e++)
				x[e] = xe[e] + pe[e];
		}
	if (drop)
	{
		dropout_mask(m.m_in, b, 0, cfg->dropout, E);
		for (size_t i = 0; i < T * E; i++)
			m.xs[0][i] *= m.m_in[i];
	}

	for (int l = 0; l < L; l++)
	{
		const us_attn_block *p = &ap->blk[l];
		act_block  *a = &m.blk[l];
		const float *x = m.xs[l];
		float	   *y = m.xs[l + 1];

		/* attention sub-block: xm = x + dropout(attn(ln1(x)) @ w_o + b_o) */
		layernorm_forward(a->a, a->mu1, a->rs1, x, p->ln1_g, p->ln1_b, T, E);
		linear_forward(a->qkv, a->a, p->w_qkv, p->b_qkv, T, E, 3 * E);
		attention_forward(a->o, a->P, a->qkv, b->seq_tok, b->nseq, E, nh);
		linear_forward(a->xm, a->o, p->w_o, p->b_o, T, E, E);
		if (drop)
		{
			dropout_mask(a->m_att, b, 1 + 2 * l, cfg->dropout, E);
			for (size_t i = 0; i < T * E; i++)
				a->xm[i] *= a->m_att[i];
		}
		for (size_t i = 0; i < T * E; i++)
			a->xm[i] += x[i];

		/* feed-forward sub-block: y = xm + dropout(relu(ln2(xm) @ w_1 + b_1) @ w_2 + b_2) */
		layernorm_forward(a->b, a->mu2, a->rs2, a->xm, p->ln2_g, p->ln2_b, T, E);
		linear_forward(a->f, a->b, p->w_1, p->b_1, T, E, E);
		for (size_t i = 0; i < T * E; i++)
			a->r[i] = a->f[i] > 0.0f ? a->f[i] : 0.0f;
		linear_forward(y, a->r, p->w_2, p->b_2, T, E, E);
		if (drop)
		{
			dropout_mask(a->m_ffn, b, 2 + 2 * l, cfg->dropout, E);
			for (size_t i = 0; i < T * E; i++)
				y[i] *= a->m_ffn[i];
		}
		for (size_t i = 0; i < T * E; i++)
			y[i] += a->xm[i];
	}
	layernorm_forward(m.out, m.muf, m.rsf, m.xs[L], ap->lnf_g, ap->lnf_b, T, E);
	return m.out;
}

void
us_attn_backward(const us_model_config *cfg, const us_attn_params *ap, const us_attn_batch *b,
				 float *arena, const float *dout, const us_attn_params *g, float *dX)
{
	int			E = cfg->embed_dim,
				L = cfg->n_blocks,
				nh = cfg->n_heads;
	size_t		T = (size_t) b->T;
	size_t		natt;
	int			drop = use_dropout(cfg, b);
	arena_map	m;
	float	   *dx;

	if (!att_floats(cfg, b->seq_tok, b->nseq, &natt))
		return;
	arena_layout(cfg, b->T, natt, 1, arena, &m);
	dx = m.dx;

	/* dx = d xs[L] */
	memset(dx, 0, T * E * sizeof(float));
	layernorm_backward(dx, g->lnf_g, g->lnf_b, dout, m.xs[L], m.muf, m.rsf, ap->lnf_g, T, E);

	for (int l = L - 1; l >= 0; l--)
	{
		const us_attn_block *p = &ap->blk[l];
		const us_attn_block *gb = &g->blk[l];
		act_block  *a = &m.blk[l];

		/* feed-forward: d2 = dropout'(dx); dr = d2 @ w_2^T; df = relu'(dr); db = df @ w_1^T */
		for (size_t i = 0; i < T * E; i++)
			m.d2[i] = drop ? dx[i] * a->m_ffn[i] : dx[i];
		linear_backward(m.d1, 0.0f, gb->w_2, gb->b_2, m.d2, a->r, p->w_2, T, E, E);
		for (size_t i = 0; i < T * E; i++)
			m.d1[i] = a->f[i] > 0.0f ? m.d1[i] : 0.0f;
		linear_backward(m.d2, 0.0f, gb->w_1, gb->b_1, m.d1, a->b, p->w_1, T, E, E);
		layernorm_backward(dx, gb->ln2_g, gb->ln2_b, m.d2, a->xm, a->mu2, a->rs2, p->ln2_g, T, E);
		/* dx = d xm now; attention: d2 = dropout'(dx); do = d2 @ w_o^T */
		for (size_t i = 0; i < T * E; i++)
			m.d2[i] = drop ? dx[i] * a->m_att[i] : dx[i];
		linear_backward(m.d1, 0.0f, gb->w_o, gb->b_o, m.d2, a->o, p->w_o, T, E, E);
		attention_backward(m.dqkv, m.d1, a->P, a->qkv, b->seq_tok, b->nseq, E, nh, m.drow);
		linear_backward(m.d2, 0.0f, gb->w_qkv, gb->b_qkv, m.dqkv, a->a, p->w_qkv, T, E, 3 * E);
		layernorm_backward(dx, gb->ln1_g, gb->ln1_b, m.d2, m.xs[l], a->mu1, a->rs1, p->ln1_g, T, E);
		/* dx = d xs[l] */
	}

	/* input: x = dropout(emb + pos) */
	for (int32_t s = 0; s < b->nseq; s++)
		for (int64_t t = b->seq_tok[s]; t < b->seq_tok[s + 1]; t++)
		{
			const float *d = dx + (size_t) t * E;
			const float *mk = m.m_in + (size_t) t * E;
			float	   *gx = dX + (size_t) b->tok_u[t] * E;
			float	   *gp = g->pos_emb + (size_t) (t - b->seq_tok[s]) * E;

			for (int e = 0; e < E; e++)
			{
				float		v = drop ? d[e] * mk[e] : d[e];

				gx[e] += v;
				gp[e] += v;
			}
		}
}
