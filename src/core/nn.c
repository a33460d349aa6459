/*
 * nn.c: the text-CNN over a minibatch, one forward / backward pair per layer (llm.c style),
 * and the driver that runs them: forward in layer order, the head's loss and output-layer
 * gradient (heads.c), then the backward functions in reverse order. The
 * batch itself (us_ws, built by train.c) and everything around a step (optimizer, threads,
 * predict) live in train.c; nn.h is the interface.
 *
 *   embedding lookup   tokens (T) -> distinct inputs X (U, E)        embed_forward / _backward
 *   conv + max-pool    X (U, E) -> Z[:, 0:W*F] (n_ex, W*F), per width conv_forward / _backward
 *   recent window      X (U, E) -> Z[:, W*F:D] (n_ex, R*E)            recent_forward / _backward
 *   dense + ReLU       Z (n_ex, D) -> A, Hh (n_ex, H)                 dense_forward / _backward
 *   dropout            Hh (n_ex, H) -> Hh (n_ex, H)                   dropout_forward / _backward
 *   head (heads.c)     Hh (n_ex, H) -> logits (chunk, V) -> loss, dH  head_full / head_sampled
 *
 * Speed notes. The events of a minibatch are concatenated without padding; the convolution of
 * all widths and taps is one GEMM of the distinct inputs (U, E) against the taps concatenated
 * (E, sum_k k*F), followed by a shift-add per window. Max-pool backward is sparse: only the
 * argmax window of each (example, width, filter) gets gradient, so for one example per
 * sequence the conv backward costs O(B * F * k * E) instead of O(T * ...); for the prefix
 * tasks (one example per event) the gradient is scattered to (input, tap, filter) and pushed
 * through two GEMMs. Embedding gradients touch only the rows the batch used (train.c's lazy
 * optimizer updates those rows only). The heads compute logits in bounded chunks, so their
 * forward and backward alternate per chunk: the full logits matrix never exists.
 * Determinism: every reduction of ours runs in a fixed order; the backward functions keep the
 * order in which gradients are summed into shared rows (dX, the embedding and output rows).
 */
#include <float.h>
#include <math.h>
#include <string.h>

#include "us_vectorize.h"		/* before any definition: O3, 256-bit vectors */

#include "userseq/us_model.h"
#include "userseq/us_rng.h"
#include "us_attn.h"
#include "us_internal.h"
#include "nn.h"

/* ------------------------------------------------------------------ workspace */

us_status
us_ws_reserve(us_ws *ws, buf *b, size_t n, size_t elem)
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

void
us_ws_free(us_ws *ws)
{
	buf		   *all[] = {&ws->seq_tok, &ws->tok_item, &ws->tok_beh, &ws->tok_gap, &ws->ex_seq,
		&ws->ex_len, &ws->ex_tgt, &ws->ex_y, &ws->ex_w, &ws->X, &ws->Wcat, &ws->WT, &ws->Y, &ws->Z,
		&ws->A, &ws->Hh, &ws->drop, &ws->amax, &ws->run, &ws->logits, &ws->dH, &ws->dZ, &ws->dX,
	&ws->dWT, &ws->dWcat, &ws->neg, &ws->neg_logq, &ws->negW, &ws->dnegW, &ws->wpos, &ws->tok_u,
	&ws->hash, &ws->u_item, &ws->u_beh, &ws->u_gap, &ws->mask, &ws->enc, &ws->denc};

	for (size_t i = 0; i < sizeof(all) / sizeof(all[0]); i++)
		if (all[i]->p)
		{
			ws->alloc.free(ws->alloc.ctx, all[i]->p);
			all[i]->p = NULL;
			all[i]->cap = 0;
		}
}

/* ------------------------------------------------------------------ embedding lookup */

/*
 * in: tokens tok_item, tok_beh, tok_gap (T)   out: tok_u (T), u_item, u_beh, u_gap (U)
 * Finds the distinct inputs of the batch (first-occurrence order); reserves their vectors.
 */
static us_status
embed_dedup(const us_model *model, us_ws *ws)
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
	if ((st = us_ws_reserve(ws, &ws->tok_u, T ? T : 1, sizeof(int32_t))) ||
		(st = us_ws_reserve(ws, &ws->hash, hsize, sizeof(int32_t))) ||
		(st = us_ws_reserve(ws, &ws->u_item, T ? T : 1, sizeof(int32_t))) ||
		(st = us_ws_reserve(ws, &ws->u_beh, T ? T : 1, sizeof(int32_t))) ||
		(st = us_ws_reserve(ws, &ws->u_gap, T ? T : 1, sizeof(int32_t))))
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
	return us_ws_reserve(ws, &ws->X, (size_t) (U > 0 ? U : 1), (size_t) E * sizeof(float));
}

/*
 * Embedding dropout: coordinate e of item row r is kept (scaled 1 / (1 - p)) when a hash of
 * (key, r, e) clears p. A pure function of the step's key, so every occurrence of an item in
 * the step, every thread's slice and the backward see the same mask.
 */
static inline float
edrop_scale(uint64_t key, int32_t row, int e, uint32_t thr, float keep_scale)
{
	uint64_t	z = key ^ ((uint64_t) row * 0x9E3779B97F4A7C15ULL) ^ ((uint64_t) e * 0xD1B54A32D192ED03ULL);

	z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
	z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
	z ^= z >> 31;
	return (uint32_t) (z >> 40) >= thr ? keep_scale : 0.0f;
}

/*
 * in: u_item, u_beh, u_gap (U)   out: X (U, E)
 * The input vectors of the distinct inputs: item (embedding dropout applied when key != 0)
 * + behaviour + gap embeddings.
 */
static void
embed_forward(const us_model *model, us_ws *ws, uint64_t key)
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
		if (key && c->embed_dropout > 0.0f)
		{
			uint32_t	thr = (uint32_t) ((double) c->embed_dropout * 16777216.0);
			float		ks = 1.0f / (1.0f - c->embed_dropout);

			for (int e = 0; e < E; e++)
				x[e] *= edrop_scale(key, ui[u], e, thr, ks);
		}
		if (c->n_behaviors > 0 && ub[u] != US_ROW_PAD)
			axpy(E, 1.0f, model->p.behavior_emb + (size_t) ub[u] * E, x);
		if (c->n_gap_buckets > 0 && ug[u] > 0)
			axpy(E, 1.0f, model->p.gap_emb + (size_t) ug[u] * E, x);
	}
}

/*
 * in: dX (U, E)   out: gradient rows of item_emb, behavior_emb, gap_emb (+=), touched rows
 * Padding rows (0) get nothing.
 */
static void
embed_backward(const us_model *model, us_ws *ws, us_params *g, touch *tch, int64_t stamp,
			   uint64_t key)
{
	const us_model_config *c = &model->cfg;
	int			E = c->embed_dim;
	const float *dX = F32(ws->dX);
	const int32_t *ti = I32(ws->u_item),
			   *tb = I32(ws->u_beh),
			   *tg = I32(ws->u_gap);

	for (int32_t t = 0; t < ws->U; t++)
	{
		const float *dx = dX + (size_t) t * E;

		if (ti[t] != US_ROW_PAD && key && c->embed_dropout > 0.0f)
		{
			uint32_t	thr = (uint32_t) ((double) c->embed_dropout * 16777216.0);
			float		ks = 1.0f / (1.0f - c->embed_dropout);
			float	   *gi = g->item_emb + (size_t) ti[t] * E;

			for (int e = 0; e < E; e++)
				gi[e] += dx[e] * edrop_scale(key, ti[t], e, thr, ks);
			touch_mark(tch ? &tch[0] : NULL, ti[t], stamp);
		}
		else if (ti[t] != US_ROW_PAD)
		{
			axpy(E, 1.0f, dx, g->item_emb + (size_t) ti[t] * E);
			touch_mark(tch ? &tch[0] : NULL, ti[t], stamp);
		}
		if (c->n_behaviors > 0 && tb[t] != US_ROW_PAD)
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

/* ------------------------------------------------------------------ conv + max-pool */

/* in: conv_w[i] (k, E, F) per width   out: Wcat (E, Ftot): column block (width i, tap j) */
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
 * Width i over one example that sees its whole sequence of n events (taps of its inputs in
 * Y at rows tu): plain max over the windows.
 * in: Y (U, Ftot)   out: z (F) = relu(max), am (F) = first window attaining the max
 */
static void
pool_whole(const us_model *model, int i, const float *Y, int Ftot, int c0, const int32_t *tu,
		   int64_t n, float *bst, float *acc, float *z, int32_t *ami)
{
	int			F = model->cfg.n_filters;
	int			k = model->cfg.widths[i];
	int64_t		nwin = n >= k ? n - k + 1 : 1;
	const float *bias = model->p.conv_b[i];

	for (int64_t p = 0; p < nwin; p++)
	{
		int			taps = (int) (n - p < k ? n - p : k);

		memcpy(acc, bias, (size_t) F * sizeof(float));
		for (int j = 0; j < taps; j++)
		{
			const float *y = Y + (size_t) tu[p + j] * Ftot + c0 + j * F;

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
		z[f] = bst[f] > 0.0f ? bst[f] : 0.0f;
}

/*
 * Width i over the prefix examples e_first..e_end-1 of one sequence (lengths ascending, the
 * longest lmax): a running max over the full windows as the prefix grows.
 * in: Y (U, Ftot)   out: rows of Z (n_ex, D) and amax (n_ex, W*F), columns i*F..i*F+F-1
 */
static void
pool_prefixes(const us_model *model, us_ws *ws, int i, const float *Y, int Ftot, int c0,
			  const int32_t *tu, int32_t e_first, int32_t e_end, int32_t lmax,
			  float *bst, float *acc, int32_t *barg)
{
	const us_model_config *c = &model->cfg;
	int			F = c->n_filters,
				WF = c->n_widths * F,
				D = us_model_feature_dim(c);
	int			k = c->widths[i];
	const int32_t *el = I32(ws->ex_len);
	const float *bias = model->p.conv_b[i];
	float	   *Z = F32(ws->Z);
	int32_t    *amax = I32(ws->amax);
	int32_t		ee = e_first;

	memcpy(acc, bias, (size_t) F * sizeof(float));
	for (int32_t t = 1; t <= lmax; t++)
	{
		if (t <= k)
		{
			/* partial first window grows by tap t-1 (complete at t == k) */
			const float *y = Y + (size_t) tu[t - 1] * Ftot + c0 + (t - 1) * F;

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
				const float *y = Y + (size_t) tu[p + j] * Ftot + c0 + j * F;

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
		if (ee < e_end && el[ee] == t)
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

/*
 * Convolution + max-pool for every example and width.
 * in: X (U, E), Wcat (E, Ftot)   out: Y (U, Ftot) taps, Z[:, 0:W*F] (n_ex, W*F) = relu(max over
 * windows), amax (n_ex, W*F) = the first window attaining the max.
 * Examples of a sequence are consecutive, prefixes in ascending length.
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

	if ((st = us_ws_reserve(ws, &ws->Y, (size_t) (ws->U > 0 ? ws->U : 1), (size_t) Ftot * sizeof(float))))
		return st;
	Y = F32(ws->Y);
	if (ws->U > 0)
		us_gemm(0, 0, ws->U, Ftot, E, 1.0f, F32(ws->X), E, F32(ws->Wcat), Ftot, 0.0f, Y, Ftot);
	for (int32_t b = 0; b < ws->nseq; b++)
	{
		int64_t		n = seq_tok[b + 1] - seq_tok[b];
		const int32_t *tu = tok_u + seq_tok[b];

		if (e >= ws->n_ex || es[e] != b)
			continue;			/* a prefix-task sequence with no examples */
		if (el[e] == n && (e + 1 >= ws->n_ex || es[e + 1] != b))
		{
			/* one example seeing the whole sequence */
			for (int i = 0; i < W; i++)
				pool_whole(model, i, Y, Ftot, col0[i], tu, n, best + i * F, part + i * F,
						   Z + (size_t) e * D + i * F, amax + (size_t) e * WF + i * F);
			e++;
			continue;
		}
		/* prefixes: lengths el[e..] ascending */
		{
			int32_t		lmax = 0;
			int32_t		e_first = e;

			while (e < ws->n_ex && es[e] == b)
				lmax = el[e++];
			for (int i = 0; i < W; i++)
				pool_prefixes(model, ws, i, Y, Ftot, col0[i], tu, e_first, e, lmax,
							  best + i * F, part + i * F,
							  (int32_t *) (part + (size_t) WF) + i * F);
		}
	}
	return US_OK;
}

/*
 * The conv backward, two ways; only the argmax window of a pooled output above 0 (the ReLU)
 * gets gradient. Both visit the examples in order and within an example the widths in order,
 * and the widths share the input rows of dX: so that the floats are summed in one fixed order,
 * this backward covers all widths at once (the forward goes width by width).
 * in: dZ[:, 0:W*F] (n_ex, W*F), Z, amax, X (U, E), Wcat   out: dX (U, E), conv_w, conv_b (+=)
 * Sparse: per pooled (example, width, tap, filter) with gradient, axpys over E into dWT / dX.
 */
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

	if ((st = us_ws_reserve(ws, &ws->WT, (size_t) Ftot, (size_t) E * sizeof(float))) ||
		(st = us_ws_reserve(ws, &ws->dWT, (size_t) Ftot, (size_t) E * sizeof(float))))
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

/* Dense: the gradient of the per-input taps dY (U, Ftot), then two GEMMs. */
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

	if ((st = us_ws_reserve(ws, &ws->dWcat, (size_t) E, (size_t) Ftot * sizeof(float))) ||
		(st = us_ws_reserve(ws, &ws->Y, (size_t) (U > 0 ? U : 1), (size_t) Ftot * sizeof(float))))
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

/* the cheaper of the two unless forced (conv_mode: US_CONV_BWD_*) */
static us_status
conv_backward(const us_model *model, us_ws *ws, us_params *g, int conv_mode, const int *col0,
			  int Ftot)
{
	if (conv_mode == US_CONV_BWD_AUTO)
		conv_mode = (int64_t) ws->n_ex * 4 <= ws->T ? US_CONV_BWD_SPARSE : US_CONV_BWD_DENSE;
	return conv_mode == US_CONV_BWD_SPARSE ? conv_backward_sparse(model, ws, g, col0, Ftot)
		: conv_backward_dense(model, ws, g, col0, Ftot);
}

/* ------------------------------------------------------------------ recent window */

/*
 * in: X (U, E)   out: Z[:, W*F:D] (n_ex, R*E)
 * The embeddings of the last R visible events, zeros before the start.
 */
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

/* in: dZ[:, W*F:D] (n_ex, R*E)   out: dX (U, E) (+=) */
static void
recent_backward(const us_model *model, us_ws *ws)
{
	const us_model_config *c = &model->cfg;
	int			R = c->recent_window,
				E = c->embed_dim,
				D = us_model_feature_dim(c),
				off = c->n_widths * c->n_filters;
	const int64_t *seq_tok = I64(ws->seq_tok);
	const int32_t *es = I32(ws->ex_seq),
			   *el = I32(ws->ex_len);
	const int32_t *tok_u = I32(ws->tok_u);
	const float *dZ = F32(ws->dZ);
	float	   *dX = F32(ws->dX);

	if (R == 0)
		return;
	for (int32_t x = 0; x < ws->n_ex; x++)
	{
		int64_t		base = seq_tok[es[x]];

		for (int r = 0; r < R; r++)
		{
			int64_t		idx = (int64_t) el[x] - R + r;

			if (idx >= 0)
				axpy(E, 1.0f, dZ + (size_t) x * D + off + (size_t) r * E,
					 dX + (size_t) tok_u[base + idx] * E);
		}
	}
}

/* ------------------------------------------------------------------ sasrec encoder */

static void
enc_batch(const us_ws *ws, const batch_opts *o, us_attn_batch *b)
{
	memset(b, 0, sizeof(*b));
	b->nseq = ws->nseq;
	b->seq_tok = I64(ws->seq_tok);
	b->T = ws->T;
	b->tok_u = I32(ws->tok_u);
	b->X = F32(ws->X);
	b->seq_key = ws->seq_ids;
	b->dropout = o->enc_dropout;
	b->drop_seed = o->enc_seed;
}

/*
 * in: X (U, E) by token   out: Z (n_ex, E) = the encoder's output at each example's last
 * visible event (all positions of a sequence in one causal pass; no event: zeros)
 */
static void
enc_forward(const us_model *model, us_ws *ws, const batch_opts *o)
{
	const us_model_config *c = &model->cfg;
	int			E = c->embed_dim;
	const int64_t *seq_tok = I64(ws->seq_tok);
	const int32_t *es = I32(ws->ex_seq),
			   *el = I32(ws->ex_len);
	us_attn_params ap;
	us_attn_batch b;
	const float *out;
	float	   *Z = F32(ws->Z);

	us_attn_bind(c, model->p.encoder, &ap);
	enc_batch(ws, o, &b);
	out = us_attn_forward(c, &ap, &b, F32(ws->enc));
	for (int32_t e = 0; e < ws->n_ex; e++)
	{
		if (el[e] > 0)
			memcpy(Z + (size_t) e * E, out + (size_t) (seq_tok[es[e]] + el[e] - 1) * E,
				   (size_t) E * sizeof(float));
		else
			memset(Z + (size_t) e * E, 0, (size_t) E * sizeof(float));
	}
}

/* in: dZ (n_ex, E)   out: encoder gradients (+=), dX (U, E) (+=) */
static void
enc_backward(const us_model *model, us_ws *ws, const batch_opts *o, us_params *g)
{
	const us_model_config *c = &model->cfg;
	int			E = c->embed_dim;
	const int64_t *seq_tok = I64(ws->seq_tok);
	const int32_t *es = I32(ws->ex_seq),
			   *el = I32(ws->ex_len);
	const float *dZ = F32(ws->dZ);
	float	   *dout = F32(ws->denc);
	us_attn_params ap,
				ga;
	us_attn_batch b;

	us_attn_bind(c, model->p.encoder, &ap);
	us_attn_bind(c, g->encoder, &ga);
	enc_batch(ws, o, &b);
	memset(dout, 0, (size_t) ws->T * E * sizeof(float));
	for (int32_t e = 0; e < ws->n_ex; e++)
		if (el[e] > 0)
			axpy(E, 1.0f, dZ + (size_t) e * E, dout + (size_t) (seq_tok[es[e]] + el[e] - 1) * E);
	us_attn_backward(c, &ap, &b, F32(ws->enc), dout, &ga, F32(ws->dX));
}

/* ------------------------------------------------------------------ dense + ReLU */

/* in: Z (n_ex, D)   out: A (n_ex, H) = Z @ dense_w + dense_b, Hh (n_ex, H) = relu(A) */
static void
dense_forward(const us_model *model, us_ws *ws)
{
	const us_model_config *c = &model->cfg;
	int			D = us_model_feature_dim(c),
				H = c->hidden_dim;
	size_t		nh = (size_t) ws->n_ex * H;
	float	   *A = F32(ws->A),
			   *Hh = F32(ws->Hh);

	for (int32_t e = 0; e < ws->n_ex; e++)
		memcpy(A + (size_t) e * H, model->p.dense_b, (size_t) H * sizeof(float));
	us_gemm(0, 0, ws->n_ex, H, D, 1.0f, F32(ws->Z), D, model->p.dense_w, H, 1.0f, A, H);
	for (size_t i = 0; i < nh; i++)
		Hh[i] = A[i] > 0.0f ? A[i] : 0.0f;
}

/*
 * in: dH (n_ex, H) (gradient at the ReLU output), A, Z (n_ex, D)
 * out: dH through the ReLU (in place), dense_b, dense_w (+=), dZ (n_ex, D)
 */
static us_status
dense_backward(const us_model *model, us_ws *ws, us_params *g)
{
	const us_model_config *c = &model->cfg;
	int			H = c->hidden_dim,
				D = us_model_feature_dim(c);
	int32_t		n_ex = ws->n_ex;
	size_t		nh = (size_t) n_ex * H;
	float	   *dH = F32(ws->dH),
			   *A = F32(ws->A);
	us_status	st;

	if ((st = us_ws_reserve(ws, &ws->dZ, (size_t) n_ex, (size_t) D * sizeof(float))))
		return st;
	for (size_t i = 0; i < nh; i++)
		dH[i] = A[i] > 0.0f ? dH[i] : 0.0f;
	for (int32_t x = 0; x < n_ex; x++)
		axpy(H, 1.0f, dH + (size_t) x * H, g->dense_b);
	us_gemm(1, 0, D, H, n_ex, 1.0f, F32(ws->Z), D, dH, H, 1.0f, g->dense_w, H);
	us_gemm(0, 1, n_ex, D, H, 1.0f, dH, H, model->p.dense_w, H, 0.0f, F32(ws->dZ), D);
	return US_OK;
}

/* ------------------------------------------------------------------ dropout */

/*
 * in: Hh (n_ex, H)   out: drop (n_ex, H) scales, Hh *= drop (in place)
 * Inverted dropout drawn from rng when given, or the precomputed scales mask (a threaded step
 * draws the batch's mask once, in the order one thread would); otherwise scales of 1.
 */
static void
dropout_forward(const us_model *model, us_ws *ws, us_rng *rng, const float *mask)
{
	const us_model_config *c = &model->cfg;
	size_t		nh = (size_t) ws->n_ex * c->hidden_dim;
	float	   *Hh = F32(ws->Hh),
			   *dr = F32(ws->drop);

	if (rng != NULL && c->dropout > 0.0f)
	{
		/* keep with probability 1 - p, compared on 24 random bits */
		uint32_t	thr = (uint32_t) ((double) c->dropout * 16777216.0);
		float		scale = 1.0f / (1.0f - c->dropout);

		for (size_t i = 0; i < nh; i++)
		{
			uint32_t	r = (uint32_t) (us_rng_next(rng) >> 40);

			dr[i] = r >= thr ? scale : 0.0f;
		}
	}
	else if (mask != NULL)
		memcpy(dr, mask, nh * sizeof(float));
	else
	{
		for (size_t i = 0; i < nh; i++)
			dr[i] = 1.0f;
		return;
	}
	for (size_t i = 0; i < nh; i++)
		Hh[i] *= dr[i];
}

/* in: dH (n_ex, H)   out: dH *= drop (in place) */
static void
dropout_backward(const us_model *model, us_ws *ws)
{
	size_t		nh = (size_t) ws->n_ex * model->cfg.hidden_dim;
	float	   *dH = F32(ws->dH);
	const float *dr = F32(ws->drop);

	for (size_t i = 0; i < nh; i++)
		dH[i] *= dr[i];
}

/* ------------------------------------------------------------------ driver */

/* (nn.h) */
us_status
us_nn_reserve(const us_model *model, us_ws *ws, const batch_opts *o)
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

	if ((st = us_ws_reserve(ws, &ws->Wcat, (size_t) E, (size_t) Ftot * sizeof(float))) ||
		(st = us_ws_reserve(ws, &ws->Z, n_ex, (size_t) D * sizeof(float))) ||
		(st = us_ws_reserve(ws, &ws->A, n_ex, (size_t) H * sizeof(float))) ||
		(st = us_ws_reserve(ws, &ws->Hh, n_ex, (size_t) H * sizeof(float))) ||
		(st = us_ws_reserve(ws, &ws->drop, n_ex, (size_t) H * sizeof(float))) ||
		(st = us_ws_reserve(ws, &ws->dH, n_ex, (size_t) H * sizeof(float))) ||
		(st = us_ws_reserve(ws, &ws->amax, n_ex, (size_t) WF * sizeof(int32_t))) ||
		(st = us_ws_reserve(ws, &ws->run, 3, (size_t) WF * sizeof(float))))
		return st;
	if (ws->n_ex == 0)
		return US_OK;
	if ((st = embed_dedup(model, ws)) != US_OK)
		return st;
	U = (size_t) (ws->U > 0 ? ws->U : 1);
	if ((st = us_ws_reserve(ws, &ws->Y, U, (size_t) Ftot * sizeof(float))))
		return st;
	if (c->architecture == US_ARCH_SASREC)
	{
		size_t		na = us_attn_arena_floats(c, I64(ws->seq_tok), ws->nseq, o->g != NULL);

		if (na == 0)
			return US_ELIMIT;
		if ((st = us_ws_reserve(ws, &ws->enc, na, sizeof(float))) ||
			(o->g && (st = us_ws_reserve(ws, &ws->denc, (size_t) (ws->T > 0 ? ws->T : 1),
										 (size_t) E * sizeof(float)))))
			return st;
	}
	if ((st = us_nn_head_reserve(model, ws, o)))
		return st;
	if (o->g == NULL)
		return US_OK;
	if ((st = us_ws_reserve(ws, &ws->dZ, (size_t) ws->n_ex, (size_t) D * sizeof(float))) ||
		(st = us_ws_reserve(ws, &ws->dX, U, (size_t) E * sizeof(float))) ||
		(st = us_ws_reserve(ws, &ws->WT, (size_t) Ftot, (size_t) E * sizeof(float))) ||
		(st = us_ws_reserve(ws, &ws->dWT, (size_t) Ftot, (size_t) E * sizeof(float))) ||
		(st = us_ws_reserve(ws, &ws->dWcat, (size_t) E, (size_t) Ftot * sizeof(float))))
		return st;
	return US_OK;
}

/* the backward of every layer below the head, in reverse order: dH (n_ex, H) -> parameters */
static us_status
backward(const us_model *model, us_ws *ws, const batch_opts *o, const int *col0, int Ftot)
{
	us_status	st;

	dropout_backward(model, ws);
	if ((st = dense_backward(model, ws, o->g)) != US_OK)
		return st;
	if ((st = us_ws_reserve(ws, &ws->dX, (size_t) (ws->U > 0 ? ws->U : 1),
							(size_t) model->cfg.embed_dim * sizeof(float))))
		return st;
	memset(F32(ws->dX), 0, (size_t) ws->U * model->cfg.embed_dim * sizeof(float));
	if (model->cfg.architecture == US_ARCH_SASREC)
		enc_backward(model, ws, o, o->g);
	else
	{
		if ((st = conv_backward(model, ws, o->g, o->conv_mode, col0, Ftot)) != US_OK)
			return st;
		recent_backward(model, ws);
	}
	embed_backward(model, ws, o->g, o->tch, o->stamp, o->edrop_key);
	return US_OK;
}

/* (nn.h) the forward of every layer, the head, then backward() */
us_status
us_nn_run(const us_model *model, us_ws *ws, const batch_opts *o, double *loss_sum)
{
	const us_model_config *c = &model->cfg;
	int			col0[US_MAX_WIDTHS];
	int			Ftot = conv_cols(c, col0);
	us_status	st;

	if (ws->n_ex == 0)
		return US_OK;
	embed_forward(model, ws, o->edrop_key);
	if (c->architecture == US_ARCH_SASREC)
		enc_forward(model, ws, o);
	else
	{
		pack_conv(model, F32(ws->Wcat), Ftot, col0);
		if ((st = conv_forward(model, ws, col0, Ftot)) != US_OK)
			return st;
		recent_forward(model, ws);
	}
	dense_forward(model, ws);
	dropout_forward(model, ws, o->drop_rng, o->drop_mask);
	if (o->hidden_only)
		return US_OK;
	if ((st = us_nn_head(model, ws, o, loss_sum)) != US_OK || o->g == NULL)
		return st;
	return backward(model, ws, o, col0, Ftot);
}

/* ------------------------------------------------------------------ one sequence, continuous input (explanations) */

/*
 * Forward of the convolutions without bias: M (W*F) the max window sum, am (W*F) its first
 * window. Y (n, F) scratch per tap. A sequence shorter than a width has one window holding
 * its events (the rest are zero vectors).
 */
void
us_nn_seq_conv_pool(const us_model *model, const float *X, int32_t n, float *Y, float *S, float *M,
		 int32_t *am)
{
	const us_model_config *c = &model->cfg;
	int			E = c->embed_dim,
				F = c->n_filters;

	for (int i = 0; i < c->n_widths; i++)
	{
		int			k = c->widths[i];
		int32_t		nwin = n >= k ? n - k + 1 : 1;

		memset(S, 0, (size_t) nwin * F * sizeof(float));
		for (int j = 0; j < k && j < n; j++)
		{
			/* tap j of window p reads event p + j */
			int32_t		rows = n - j < nwin ? n - j : nwin;

			us_gemm(0, 0, rows, F, E, 1.0f, X + (size_t) j * E, E,
					model->p.conv_w[i] + (size_t) j * E * F, F, 0.0f, Y, F);
			for (int32_t p = 0; p < rows; p++)
				for (int f = 0; f < F; f++)
					S[(size_t) p * F + f] += Y[(size_t) p * F + f];
		}
		for (int f = 0; f < F; f++)
		{
			M[i * F + f] = S[f];
			am[i * F + f] = 0;
		}
		for (int32_t p = 1; p < nwin; p++)
			for (int f = 0; f < F; f++)
				if (S[(size_t) p * F + f] > M[i * F + f])
				{
					M[i * F + f] = S[(size_t) p * F + f];
					am[i * F + f] = p;
				}
	}
}

/*
 * Input-gradient backward: dX (n, E) += the gradient reaching each event from G, the gradient
 * of the pooled features and recent window (D): through each filter's argmax window (taps
 * j < k inside the sequence) and the recent window's copies.
 */
void
us_nn_seq_conv_pool_backward_input(const us_model *model, int32_t n, const int32_t *am, const float *G, float *dX)
{
	const us_model_config *c = &model->cfg;
	int			E = c->embed_dim,
				F = c->n_filters,
				R = c->recent_window,
				WF = c->n_widths * F;

	for (int i = 0; i < c->n_widths; i++)
	{
		int			k = c->widths[i];
		const float *Wi = model->p.conv_w[i];

		for (int j = 0; j < k; j++)
			for (int f = 0; f < F; f++)
			{
				float		g = G[i * F + f];
				int32_t		t = am[i * F + f] + j;
				float	   *dx = dX + (size_t) t * E;
				const float *wj = Wi + (size_t) j * E * F + f;

				if (g == 0.0f || t >= n)
					continue;
				for (int e = 0; e < E; e++)
					dx[e] += g * wj[(size_t) e * F];
			}
	}
	for (int q = 0; q < R; q++)
	{
		int32_t		t = n - R + q;

		if (t >= 0)
			for (int e = 0; e < E; e++)
				dX[(size_t) t * E + e] += G[WF + q * E + e];
	}
}
