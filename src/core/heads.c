/*
 * heads.c: the output heads of the network (nn.c runs them after the dense layer and dropout):
 * the per-example losses (binary sigmoid, regression, softmax for multiclass, next_behavior and
 * next_item), the full output layer (linear / softmax over all outputs, tied or not), the
 * sampled softmax of next_item training, and the surprise head (next_item NLL and rank, tile by
 * tile). The logits are computed in bounded chunks, so forward and backward alternate per
 * chunk and the full logits matrix never exists. nn.h is the interface.
 */
#include <float.h>
#include <math.h>
#include <string.h>

#include "us_vectorize.h"		/* before any definition: O3, 256-bit vectors */

#include "userseq/us_model.h"
#include "us_internal.h"
#include "nn.h"

/* logits chunk of the heads, in floats */
#define LOGIT_CHUNK_FLOATS	((size_t) 16 << 20)	/* 64 MB */

/* ------------------------------------------------------------------ losses */

static inline double
softplus(double x)
{
	return x > 0 ? x + log1p(exp(-x)) : log1p(exp(x));
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

/* ------------------------------------------------------------------ full softmax / linear head */

/* in: Hc (nr, H)   out: L (nr, V) = Hc @ out_w + out_b (tied: Hc @ item_emb^T + out_b) */
static void
head_full_forward(const us_model *model, const float *Hc, int32_t nr, float *L)
{
	const us_model_config *c = &model->cfg;
	int			V = c->n_outputs,
				H = c->hidden_dim;

	for (int32_t r = 0; r < nr; r++)
		memcpy(L + (size_t) r * V, model->p.out_b, (size_t) V * sizeof(float));
	if (c->tie_output)
		us_gemm(0, 1, nr, V, H, 1.0f, Hc, H, model->p.item_emb, H, 1.0f, L, V);
	else
		us_gemm(0, 0, nr, V, H, 1.0f, Hc, H, model->p.out_w, V, 1.0f, L, V);
}

/*
 * in: dL (nr, V), Hc (nr, H)
 * out: out_b, out_w (tied: item_emb) (+=), dHc (nr, H) (overwritten)
 */
static void
head_full_backward(const us_model *model, const float *Hc, const float *dL, int32_t nr,
				   us_params *g, float *dHc)
{
	const us_model_config *c = &model->cfg;
	int			V = c->n_outputs,
				H = c->hidden_dim;

	for (int32_t r = 0; r < nr; r++)
		axpy(V, 1.0f, dL + (size_t) r * V, g->out_b);
	if (c->tie_output)
	{
		us_gemm(0, 0, nr, H, V, 1.0f, dL, V, model->p.item_emb, H, 0.0f, dHc, H);
		us_gemm(1, 0, V, H, nr, 1.0f, dL, V, Hc, H, 1.0f, g->item_emb, H);
	}
	else
	{
		us_gemm(0, 1, nr, H, V, 1.0f, dL, V, model->p.out_w, V, 0.0f, dHc, H);
		us_gemm(1, 0, H, V, nr, 1.0f, Hc, H, dL, V, 1.0f, g->out_w, V);
	}
}

/*
 * Output layer over all examples, in chunks of bounded logits: per chunk forward, loss (and
 * d loss / d logit in place), and when g the backward into dH (n_ex, H).
 * pred: predictions (n_ex, n_out) or NULL (next_item: the logits are computed in place there).
 */
static us_status
head_full(const us_model *model, us_ws *ws, us_params *g, double *loss_sum, float *pred)
{
	const us_model_config *c = &model->cfg;
	int			V = c->n_outputs,
				H = c->hidden_dim;
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
		(st = us_ws_reserve(ws, &ws->logits, (size_t) rows, (size_t) V * sizeof(float))) != US_OK)
		return st;
	for (int32_t r0 = 0; r0 < n_ex; r0 += rows)
	{
		int32_t		nr = n_ex - r0 < rows ? n_ex - r0 : rows;
		float	   *L = (pred && c->task == US_TASK_NEXT_ITEM) ? pred + (size_t) r0 * V : F32(ws->logits);
		const float *Hc = Hh + (size_t) r0 * H;

		head_full_forward(model, Hc, nr, L);
		head_rows(model, ws, r0, r0 + nr, L, V, g ? L : NULL, inv_n, loss_sum, pred);
		if (g)
			head_full_backward(model, Hc, L, nr, g, dH + (size_t) r0 * H);
	}
	return US_OK;
}

/* ------------------------------------------------------------------ sampled softmax head */

/* output vector (H) of row r: a row of item_emb when tied, else a column of out_w */
static void
out_vector(const us_model *model, int32_t r, float *w)
{
	const us_model_config *c = &model->cfg;
	int			V = c->n_outputs,
				H = c->hidden_dim;

	if (c->tie_output)
		memcpy(w, model->p.item_emb + (size_t) r * H, (size_t) H * sizeof(float));
	else
		for (int h = 0; h < H; h++)
			w[h] = model->p.out_w[(size_t) h * V + r];
}

/*
 * in: Hc (nr, H), negW (m, H)   out: L (nr, m + 1): per example the positive's logit, then the
 * negatives', logQ-corrected, accidental hits masked; the loss, and when grad d loss / d logit
 * in place.
 */
static void
sampled_forward(const us_model *model, us_ws *ws, int32_t r0, int32_t nr, const float *Hc,
				float *L, int grad, double inv_n, double *loss_sum, const double *cdf, int32_t n_cdf)
{
	int			H = model->cfg.hidden_dim;
	int			m = ws->n_neg;
	int			ld = m + 1;
	const int32_t *neg = I32(ws->neg),
			   *et = I32(ws->ex_tgt);
	const float *ew = F32(ws->ex_w),
			   *nlq = F32(ws->neg_logq),
			   *negW = F32(ws->negW);
	float	   *wpos = F32(ws->wpos);

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

		out_vector(model, pos, wpos);
		for (int hh = 0; hh < H; hh++)
			dot += (double) h[hh] * wpos[hh];
		/* the sampling distribution covers the rows after padding: cdf[r - US_ROW_OOV] */
		q = pos >= US_ROW_OOV && pos - US_ROW_OOV < n_cdf ?
			cdf[pos - US_ROW_OOV] - (pos > US_ROW_OOV ? cdf[pos - US_ROW_OOV - 1] : 0.0) : 0.0;
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
		*loss_sum += w * softmax_row(x, ld, 0, (float) (w * inv_n), grad ? x : NULL, NULL);
	}
}

/*
 * in: dL (nr, m + 1), Hc (nr, H)
 * out: out_b, the positives' output vectors (+=), dHc (nr, H) (overwritten), dnegW (m, H) (+=)
 */
static void
sampled_backward(const us_model *model, us_ws *ws, int32_t r0, int32_t nr, const float *Hc,
				 const float *dL, us_params *g, float *dHc)
{
	const us_model_config *c = &model->cfg;
	int			V = c->n_outputs,
				H = c->hidden_dim;
	int			m = ws->n_neg;
	int			ld = m + 1;
	const int32_t *neg = I32(ws->neg),
			   *et = I32(ws->ex_tgt);
	const float *negW = F32(ws->negW);
	float	   *dnegW = F32(ws->dnegW),
			   *wpos = F32(ws->wpos);

	for (int32_t r = 0; r < nr; r++)
	{
		int32_t		pos = et[r0 + r];
		const float *x = dL + (size_t) r * ld;
		const float *h = Hc + (size_t) r * H;
		float		gpos = x[0];

		/* positive: bias, output vector, hidden */
		out_vector(model, pos, wpos);
		g->out_b[pos] += gpos;
		for (int hh = 0; hh < H; hh++)
			dHc[(size_t) r * H + hh] = gpos * wpos[hh];
		if (c->tie_output)
			axpy(H, gpos, h, g->item_emb + (size_t) pos * H);
		else
			for (int hh = 0; hh < H; hh++)
				g->out_w[(size_t) hh * V + pos] += gpos * h[hh];
		for (int j = 0; j < m; j++)
			g->out_b[neg[j]] += x[1 + j];
	}
	/* negatives: dH += dL @ negW, dnegW += dL^T @ H */
	us_gemm(0, 0, nr, H, m, 1.0f, dL + 1, ld, negW, H, 1.0f, dHc, H);
	us_gemm(1, 0, m, H, nr, 1.0f, dL + 1, ld, Hc, H, 1.0f, dnegW, H);
}

/*
 * Sampled softmax (next_item training): candidates [positive, negatives ws->neg] per example,
 * logits corrected by -log(m * q) (logQ), accidental hits of the positive masked out. In
 * chunks of bounded logits like head_full; the negatives' output vectors are gathered once
 * into negW (m, H) and their gradient dnegW scattered back at the end.
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
	const int32_t *neg = I32(ws->neg);
	float	   *negW = F32(ws->negW),
			   *dnegW = F32(ws->dnegW);
	float	   *Hh = F32(ws->Hh),
			   *dH = F32(ws->dH);
	us_status	st;

	if (n_ex == 0)
		return US_OK;
	if (rows > n_ex)
		rows = n_ex;
	if ((st = us_ws_reserve(ws, &ws->logits, (size_t) rows, (size_t) ld * sizeof(float))) != US_OK)
		return st;
	for (int j = 0; j < m; j++)
		out_vector(model, neg[j], negW + (size_t) j * H);
	memset(dnegW, 0, (size_t) m * H * sizeof(float));
	for (int32_t r0 = 0; r0 < n_ex; r0 += rows)
	{
		int32_t		nr = n_ex - r0 < rows ? n_ex - r0 : rows;
		float	   *L = F32(ws->logits);
		const float *Hc = Hh + (size_t) r0 * H;

		sampled_forward(model, ws, r0, nr, Hc, L, g != NULL, inv_n, loss_sum, cdf, n_cdf);
		if (g)
			sampled_backward(model, ws, r0, nr, Hc, L, g, dH + (size_t) r0 * H);
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

/* ------------------------------------------------------------------ driver side (nn.h) */

/* (nn.h) the logits chunk of the head o asks for */
us_status
us_nn_head_reserve(const us_model *model, us_ws *ws, const batch_opts *o)
{
	const us_model_config *c = &model->cfg;
	us_status	st;

	if (o->sampled)
	{
		int			ld = ws->n_neg + 1;
		int32_t		rows = (int32_t) (LOGIT_CHUNK_FLOATS / (size_t) ld);

		if (rows > ws->n_ex)
			rows = ws->n_ex;
		if ((st = us_ws_reserve(ws, &ws->logits, (size_t) rows, (size_t) ld * sizeof(float))))
			return st;
	}
	else if (!o->hidden_only && !(o->pred && c->task == US_TASK_NEXT_ITEM))
	{
		int32_t		rows = (int32_t) (LOGIT_CHUNK_FLOATS / (size_t) c->n_outputs);

		if (rows < 1)
			rows = 1;
		if (rows > ws->n_ex)
			rows = ws->n_ex;
		if ((st = us_ws_reserve(ws, &ws->logits, (size_t) rows, (size_t) c->n_outputs * sizeof(float))))
			return st;
	}
	return US_OK;
}

/* (nn.h) the head of o: loss, and when o->g the output layer's gradient and dH */
us_status
us_nn_head(const us_model *model, us_ws *ws, const batch_opts *o, double *loss_sum)
{
	const us_model_config *c = &model->cfg;
	us_status	st;

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
			for (int32_t r = US_ROW_OOV; r < c->n_items; r++)
				touch_mark(&o->tch[0], r, o->stamp);
	}
	return US_OK;
}

/* ------------------------------------------------------------------ surprise head */

/*
 * next_item NLL and rank of each example from its hidden row, tile by tile over the items so
 * that nothing of size n_ex x V is ever stored: a tile of logits (GEMM against the tile of
 * out_w, or, when most hidden units are zero as in trained models, only the nonzero units'
 * rows) is reduced right away into a running softmax (max and rescaled sum, as FlashAttention
 * does) and the count of items scored at least as high as the target.
 */
us_status
us_nn_surprise_next_item(const us_model *model, us_ws *ws, const int32_t *hist, double *nll,
						 int32_t *rank)
{
	const us_model_config *c = &model->cfg;
	int			V = c->n_outputs,
				H = c->hidden_dim,
				E = c->embed_dim;
	int32_t		n_ex = ws->n_ex;
	const int	tile = 512;
	const float *Hh = F32(ws->Hh);
	const int32_t *tg = I32(ws->ex_tgt);
	int64_t		nz = 0;
	int			sparse;
	float	   *T;
	double	   *st;			/* per example: max, sum, target logit */
	int32_t    *cnt;
	/* repeat prior: the distinct rows of hist ascending (urow), each event's index among them
	 * (ev_u) and a running count per distinct row (ucnt) */
	int			rep = hist != NULL && us_repeat_active(model);
	int32_t    *urow = NULL,
			   *ev_u = NULL,
			   *ucnt = NULL,
				n_u = 0;

	T = model->alloc.alloc(model->alloc.ctx, (size_t) n_ex * tile * sizeof(float) +
						   (size_t) n_ex * (3 * sizeof(double) + sizeof(int32_t)));
	if (T == NULL)
		return US_ENOMEM;
	st = (double *) (T + (size_t) n_ex * tile);
	cnt = (int32_t *) (st + (size_t) 3 * n_ex);
	if (rep)
	{
		urow = model->alloc.alloc(model->alloc.ctx, (size_t) 3 * (n_ex > 0 ? n_ex : 1) * sizeof(int32_t));
		if (urow == NULL)
		{
			model->alloc.free(model->alloc.ctx, T);
			return US_ENOMEM;
		}
		ev_u = urow + n_ex;
		ucnt = ev_u + n_ex;
		/* the distinct rows by insertion (n_ex <= max_len), then each event's index by bisection */
		for (int32_t r = 0; r < n_ex; r++)
		{
			int32_t		v = hist[r],
						k = n_u;

			if (v < US_ROW_FIRST)
				continue;
			for (int32_t q = 0; q < n_u; q++)
				if (urow[q] == v)
				{
					k = -1;
					break;
				}
			if (k < 0)
				continue;
			while (k > 0 && urow[k - 1] > v)
			{
				urow[k] = urow[k - 1];
				k--;
			}
			urow[k] = v;
			n_u++;
		}
		for (int32_t r = 0; r < n_ex; r++)
		{
			int32_t		lo = 0,
						hi = n_u;

			while (lo < hi)
			{
				int32_t		mid = lo + (hi - lo) / 2;

				if (urow[mid] < hist[r])
					lo = mid + 1;
				else
					hi = mid;
			}
			ev_u[r] = lo < n_u && urow[lo] == hist[r] ? lo : -1;
		}
	}
	for (size_t i = 0; i < (size_t) n_ex * H; i++)
		nz += Hh[i] != 0.0f;
	sparse = !c->tie_output && nz * 4 < (int64_t) n_ex * H;
	for (int32_t r = 0; r < n_ex; r++)
	{
		const float *h = Hh + (size_t) r * H;
		double		xt = model->p.out_b[tg[r]];

		for (int j = 0; j < H; j++)
			xt += (double) h[j] * (c->tie_output ? model->p.item_emb[(size_t) tg[r] * E + j]
								   : model->p.out_w[(size_t) j * V + tg[r]]);
		if (hist)
			xt += us_transitions_term(model, hist[r], tg[r]) +
				(double) us_repeat_term(model, hist, r + 1, tg[r]);
		st[3 * r] = -INFINITY;
		st[3 * r + 1] = 0.0;
		st[3 * r + 2] = xt;
		cnt[r] = 0;
	}
	for (int v0 = 0; v0 < V; v0 += tile)
	{
		int			nv = V - v0 < tile ? V - v0 : tile;

		for (int32_t r = 0; r < n_ex; r++)
			memcpy(T + (size_t) r * nv, model->p.out_b + v0, (size_t) nv * sizeof(float));
		if (c->tie_output)
			us_gemm(0, 1, n_ex, nv, H, 1.0f, Hh, H, model->p.item_emb + (size_t) v0 * E, E, 1.0f, T, nv);
		else if (!sparse)
			us_gemm(0, 0, n_ex, nv, H, 1.0f, Hh, H, model->p.out_w + v0, V, 1.0f, T, nv);
		else
			for (int32_t r = 0; r < n_ex; r++)
				for (int j = 0; j < H; j++)
					if (Hh[(size_t) r * H + j] != 0.0f)
						axpy(nv, Hh[(size_t) r * H + j], model->p.out_w + (size_t) j * V + v0, T + (size_t) r * nv);
		/* the transition prior of each example's last item, on this tile's rows */
		for (int32_t r = 0; hist && us_transitions_active(model) && r < n_ex; r++)
		{
			const int32_t *to;
			const float *logc;
			int32_t		ns;

			us_transitions_row(model, hist[r], &to, &logc, &ns);
			for (int32_t q = 0; q < ns; q++)
				if (to[q] >= v0 && to[q] < v0 + nv)
					T[(size_t) r * nv + (to[q] - v0)] += model->trans.weight * logc[q];
		}
		/* then the repeat prior: example r has seen hist[0..r], counted as r grows */
		if (rep)
		{
			int32_t		u0 = 0,
						u1;

			while (u0 < n_u && urow[u0] < v0)
				u0++;
			for (u1 = u0; u1 < n_u && urow[u1] < v0 + nv; u1++)
				;
			memset(ucnt, 0, (size_t) n_u * sizeof(int32_t));
			for (int32_t r = 0; r < n_ex; r++)
			{
				if (ev_u[r] >= 0)
					ucnt[ev_u[r]]++;
				for (int32_t u = u0; u < u1; u++)
					if (ucnt[u] > 0)
						T[(size_t) r * nv + (urow[u] - v0)] +=
							us_repeat_value(model->trans.repeat_weight, ucnt[u]);
			}
		}
		for (int32_t r = 0; r < n_ex; r++)
		{
			const float *x = T + (size_t) r * nv;
			float		mx = -FLT_MAX,
						xt = (float) st[3 * r + 2];
			float		lane[16] = {0};
			double		sum = 0.0;
			int32_t		hi = 0;
			int			j;

			{
				/* 8 independent lanes: a single running max is a scalar dependency chain */
				float		lm[8] = {-FLT_MAX, -FLT_MAX, -FLT_MAX, -FLT_MAX, -FLT_MAX, -FLT_MAX, -FLT_MAX, -FLT_MAX};

				for (j = 0; j + 8 <= nv; j += 8)
					for (int l = 0; l < 8; l++)
						lm[l] = x[j + l] > lm[l] ? x[j + l] : lm[l];
				for (; j < nv; j++)
					lm[0] = x[j] > lm[0] ? x[j] : lm[0];
				for (int l = 0; l < 8; l++)
					mx = lm[l] > mx ? lm[l] : mx;
			}
			if (mx > st[3 * r])
			{
				st[3 * r + 1] *= exp(st[3 * r] - mx);
				st[3 * r] = mx;
			}
			/* 16 lanes: two vector accumulators, so the adds do not wait on each other */
			for (j = 0; j + 16 <= nv; j += 16)
				for (int l = 0; l < 16; l++)
					lane[l] += vexpf(x[j + l] - (float) st[3 * r]);
			for (; j < nv; j++)
				lane[0] += vexpf(x[j] - (float) st[3 * r]);
			for (int l = 0; l < 16; l++)
				sum += lane[l];
			st[3 * r + 1] += sum;
			for (j = v0 < US_ROW_FIRST ? US_ROW_FIRST - v0 : 0; j < nv; j++)
				hi += x[j] >= xt;
			/* the target's own tile value may differ from xt in the last bit: not counted */
			if (tg[r] >= v0 + (v0 < US_ROW_FIRST ? US_ROW_FIRST - v0 : 0) && tg[r] < v0 + nv)
				hi -= x[tg[r] - v0] >= xt;
			cnt[r] += hi;
		}
	}
	for (int32_t r = 0; r < n_ex; r++)
	{
		double		l = log(st[3 * r + 1]) - (st[3 * r + 2] - st[3 * r]);

		if (!isfinite(l))
			nz = -1;
		if (nll)
			nll[r] = l;
		if (rank)
			rank[r] = tg[r] >= US_ROW_FIRST ? 1 + cnt[r] : 0;
	}
	if (urow)
		model->alloc.free(model->alloc.ctx, urow);
	model->alloc.free(model->alloc.ctx, T);
	return nz < 0 ? US_ENONFINITE : US_OK;
}
