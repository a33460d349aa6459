/*
 * batch.c: the events of a minibatch concatenated without padding (one example per sequence or
 * per prefix), one batch through the network (nn.c), and the batched computations built on
 * them besides training: us_model_loss_and_grad (the gradient checks), us_model_predict and
 * us_model_surprise. The trainer (train.c) assembles and runs its batches with the same two
 * functions, so training, gradient checks and evaluation share one code path.
 */
#include <float.h>
#include <math.h>
#include <string.h>

#include "us_vectorize.h"		/* before any definition: O3, 256-bit vectors */

#include "userseq/us_model.h"
#include "userseq/us_rng.h"
#include "us_internal.h"
#include "nn.h"

#define PREDICT_MAX_SEQS	256
#define PREDICT_TAP_FLOATS	((size_t) 16 << 20)	/* predict: distinct inputs x conv taps */

/* ------------------------------------------------------------------ batch assembly */

/*
 * Gathers the kept events of the sequences and lists the examples: one per sequence (mode
 * full) or one per prefix (training of the next_* tasks). need_target: the loss needs
 * targets (training); otherwise targets are used when present.
 */
us_status
us_batch_build(const us_model *model, const us_dataset *data, const int32_t *ids, int32_t n,
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
	if ((st = us_ws_reserve(ws, &ws->seq_tok, (size_t) n + 1, sizeof(int64_t))) ||
		(st = us_ws_reserve(ws, &ws->tok_item, (size_t) T, sizeof(int32_t))) ||
		(st = us_ws_reserve(ws, &ws->tok_beh, (size_t) T, sizeof(int32_t))) ||
		(st = us_ws_reserve(ws, &ws->tok_gap, (size_t) T, sizeof(int32_t))) ||
		(st = us_ws_reserve(ws, &ws->ex_seq, (size_t) n_ex, sizeof(int32_t))) ||
		(st = us_ws_reserve(ws, &ws->ex_len, (size_t) n_ex, sizeof(int32_t))) ||
		(st = us_ws_reserve(ws, &ws->ex_tgt, (size_t) n_ex, sizeof(int32_t))) ||
		(st = us_ws_reserve(ws, &ws->ex_y, (size_t) n_ex, sizeof(float))) ||
		(st = us_ws_reserve(ws, &ws->ex_w, (size_t) n_ex, sizeof(float))))
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
				int32_t		bh = use_beh ? data->behaviors[i] : US_ROW_PAD;
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
	ws->seq_ids = ids;
	ws->T = T;
	ws->n_ex = (int32_t) n_ex;
	return US_OK;
}

/* ------------------------------------------------------------------ one batch */

/* one batch through the network: reserve, then compute (nn.h) */
us_status
us_batch_run(const us_model *model, us_ws *ws, const batch_opts *o, double *loss_sum)
{
	us_status	st = us_nn_reserve(model, ws, o);

	if (st != US_OK || ws->n_ex == 0)
		return st;
	return us_nn_run(model, ws, o, loss_sum);
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
	/* a fixed embedding dropout mask, so the gradient checks cover its backward */
	o.edrop_key = c->embed_dropout > 0.0f ? US_EDROP_TEST_KEY : 0;
	st = us_batch_build(model, data, seq_ids, n, us_is_prefix_task(c->task), max_examples_per_seq, 1, &ws);
	if (st == US_OK)
		st = us_batch_run(model, &ws, &o, &sum);
	if (st == US_OK)
	{
		/* padding rows are not parameters */
		size_t		pad = (size_t) US_ROW_PAD * c->embed_dim;

		memset(g.item_emb + pad, 0, (size_t) c->embed_dim * sizeof(float));
		if (g.behavior_emb)
			memset(g.behavior_emb + pad, 0, (size_t) c->embed_dim * sizeof(float));
		if (g.gap_emb)
			memset(g.gap_emb + pad, 0, (size_t) c->embed_dim * sizeof(float));
		if (loss)
			*loss = ws.n_ex > 0 ? sum / ws.n_ex : 0.0;
	}
	us_ws_free(&ws);
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
	int32_t    *scratch = NULL;	/* us_prior_add's, with the repeat prior */

	if (model == NULL || data == NULL || (seq_ids == NULL && n > 0) || n < 0 ||
		(out == NULL && n > 0) || data->offsets == NULL)
		return US_EINVAL;
	V = model->cfg.n_outputs;
	D = us_model_feature_dim(&model->cfg);
	{
		const us_model_config *c = &model->cfg;
		int			col0[US_MAX_WIDTHS];
		/* per-token floats: the conv taps, or about the encoder's activations */
		size_t		per_tok = c->architecture == US_ARCH_SASREC
			? (size_t) c->n_blocks * (14 * (size_t) c->embed_dim + (size_t) c->n_heads * c->max_len) +
			6 * (size_t) c->embed_dim
			: (size_t) conv_cols(c, col0);

		/* chunk tokens so the per-token scratch stays within PREDICT_TAP_FLOATS */
		max_tok = (int64_t) (PREDICT_TAP_FLOATS / per_tok);
		if (max_tok < model->cfg.max_len)
			max_tok = model->cfg.max_len;
	}
	memset(&ws, 0, sizeof ws);
	ws.alloc = model->alloc;
	if (us_repeat_active(model))
	{
		scratch = model->alloc.alloc(model->alloc.ctx, (size_t) model->cfg.max_len * sizeof(int32_t));
		if (scratch == NULL)
			return US_ENOMEM;
	}
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
		st = us_batch_build(model, data, seq_ids + i0, i1 - i0, 0, 0, 0, &ws);
		if (st != US_OK)
			goto done;
		memset(&o, 0, sizeof o);
		o.pred = out + (size_t) i0 * V;
		st = us_batch_run(model, &ws, &o, &bl);
		if (st != US_OK)
			goto done;
		if (us_prior_active(model))
			for (int32_t i = i0; i < i1; i++)
			{
				int32_t		s = seq_ids[i];
				int64_t		beg = data->offsets[s],
							end = data->offsets[s + 1];

				/* the whole sequence: us_prior_add keeps its last max_len events, as the
				 * network does */
				us_prior_add(model, data->items + beg, (int32_t) (end - beg), out + (size_t) i * V,
							 scratch);
			}
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
	if (scratch)
		model->alloc.free(model->alloc.ctx, scratch);
	us_ws_free(&ws);
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
	if (!us_is_prefix_task(c->task) || (c->task == US_TASK_NEXT_BEHAVIOR && events->n > 0 && events->behaviors == NULL))
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
	if ((st = us_batch_build(model, &data, &id, 1, 1, 0, 0, &ws)) != US_OK)
		goto done;
	memset(&o, 0, sizeof o);
	if (c->task == US_TASK_NEXT_ITEM)
	{
		/* the training forward up to the hidden rows, then the logits tile by tile; example
		 * t - 1 predicts event t from events 0 .. t - 1 of the window (its prior's history) */
		o.hidden_only = 1;
		if ((st = us_batch_run(model, &ws, &o, &unused)) == US_OK)
			st = ws.n_ex == n - 1 ?
				us_nn_surprise_next_item(model, &ws, us_prior_active(model) ? data.items : NULL,
										 nll, rank)
				: US_EINTERNAL;
		goto done;
	}
	out = model->alloc.alloc(model->alloc.ctx, (size_t) ws.n_ex * V * sizeof(float));
	if (out == NULL)
	{
		st = US_ENOMEM;
		goto done;
	}
	o.pred = out;				/* next_behavior: probabilities */
	if ((st = us_batch_run(model, &ws, &o, &unused)) != US_OK)
		goto done;
	for (int32_t e = 0; e < ws.n_ex; e++)
	{
		const float *x = out + (size_t) e * V;
		int32_t		tg = I32(ws.ex_tgt)[e];
		float		xt = x[tg];
		int32_t		higher = 0;
		double		l;

		l = -log(xt > FLT_MIN ? (double) xt : (double) FLT_MIN);
		for (int32_t j = US_ROW_FIRST; j < V; j++)
			higher += x[j] >= xt;
		if (nll)
			nll[e] = l;
		if (rank)
			rank[e] = tg >= US_ROW_FIRST ? higher : 0;	/* the target itself counts once: 1 + others */
	}
	if (!isfinite(unused))
		st = US_ENONFINITE;
done:
	if (out)
		model->alloc.free(model->alloc.ctx, out);
	us_ws_free(&ws);
	return st;
}
