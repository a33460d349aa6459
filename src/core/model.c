/*
 * model.c: the parameter layout (all tensors are views into one flat float block, llm.c
 * style), model creation with PyTorch-like seeded initialisation, clone, weight copy and the
 * finiteness check. It does no training and no scoring.
 */
#include <math.h>
#include <string.h>

#include "userseq/us_model.h"
#include "userseq/us_rng.h"
#include "us_attn.h"
#include "us_internal.h"

/*
 * Layout, in this order: item_emb (n_items, E), behavior_emb (n_behaviors, E), gap_emb
 * (n_gap_buckets, E), the sasrec encoder region (us_attn.h) or per width conv_w (k, E, F) then
 * conv_b (F), dense_w (D, H), dense_b (H),
 * out_w (H, n_outputs) unless tied, out_b (n_outputs). The model bytes store the block as is.
 */
size_t
us_model_param_count(const us_model_config *cfg)
{
	size_t		E = (size_t) cfg->embed_dim,
				F = (size_t) cfg->n_filters,
				H = (size_t) cfg->hidden_dim,
				D = (size_t) us_model_feature_dim(cfg);
	size_t		total = 0,
				t;

	/* each factor is bounded by the validated limits, so only the sums and products of
	 * the large factors need checking */
	if (!us_mul_size((size_t) cfg->n_items, E, &t) || !us_add_size(total, t, &total))
		return 0;
	if (!us_mul_size((size_t) cfg->n_behaviors + (size_t) cfg->n_gap_buckets, E, &t) ||
		!us_add_size(total, t, &total))
		return 0;
	if (!us_add_size(total, us_attn_param_count(cfg), &total))
		return 0;
	for (int i = 0; i < cfg->n_widths; i++)
	{
		if (!us_mul_size((size_t) cfg->widths[i] * E, F, &t) || !us_add_size(total, t + F, &total))
			return 0;
	}
	if (!us_mul_size(D, H, &t) || !us_add_size(total, t + H, &total))
		return 0;
	if (!cfg->tie_output)
	{
		if (!us_mul_size(H, (size_t) cfg->n_outputs, &t) || !us_add_size(total, t, &total))
			return 0;
	}
	if (!us_add_size(total, (size_t) cfg->n_outputs, &total))
		return 0;
	return total;
}

void
us_params_bind(const us_model_config *cfg, float *block, us_params *p)
{
	size_t		E = (size_t) cfg->embed_dim,
				F = (size_t) cfg->n_filters,
				H = (size_t) cfg->hidden_dim,
				D = (size_t) us_model_feature_dim(cfg);
	float	   *q = block;

	memset(p, 0, sizeof(*p));
	p->item_emb = q;
	q += (size_t) cfg->n_items * E;
	p->behavior_emb = cfg->n_behaviors > 0 ? q : NULL;
	q += (size_t) cfg->n_behaviors * E;
	p->gap_emb = cfg->n_gap_buckets > 0 ? q : NULL;
	q += (size_t) cfg->n_gap_buckets * E;
	if (cfg->architecture == US_ARCH_SASREC)
	{
		p->encoder = q;
		q += us_attn_param_count(cfg);
	}
	for (int i = 0; i < cfg->n_widths; i++)
	{
		p->conv_w[i] = q;
		q += (size_t) cfg->widths[i] * E * F;
		p->conv_b[i] = q;
		q += F;
	}
	p->dense_w = q;
	q += D * H;
	p->dense_b = q;
	q += H;
	if (!cfg->tie_output)
	{
		p->out_w = q;
		q += H * (size_t) cfg->n_outputs;
	}
	p->out_b = q;
}

static void
init_uniform(us_rng *rng, float *x, size_t n, double bound)
{
	for (size_t i = 0; i < n; i++)
		x[i] = (float) ((2.0 * us_rng_uniform(rng) - 1.0) * bound);
}

/* N(0, std) rows, the padding row zero (torch.nn.Embedding with padding_idx=0 has std 1) */
static void
init_embedding(us_rng *rng, float *x, size_t rows, size_t E, double std)
{
	if (x == NULL || rows == 0)
		return;
	for (size_t r = 0; r < rows; r++)
		for (size_t e = 0; e < E; e++)
			x[r * E + e] = r == US_ROW_PAD ? 0.0f : (float) (std * us_rng_normal(rng));
}

static us_status
check_vocab(const us_model_config *cfg, const us_vocab *vocab)
{
	if ((int64_t) vocab->n_items + US_ROW_FIRST != cfg->n_items)
		return US_EINVAL;
	for (int32_t i = 1; i < vocab->n_items; i++)
		if (vocab->item_ids[i] <= vocab->item_ids[i - 1])
			return US_EINVAL;
	if (cfg->n_behaviors > 0 ? vocab->n_behaviors + US_ROW_FIRST != cfg->n_behaviors :
		vocab->n_behaviors != 0)
		return US_EINVAL;
	if (cfg->task == US_TASK_MULTICLASS ? vocab->n_classes != cfg->n_outputs : vocab->n_classes != 0)
		return US_EINVAL;
	if (vocab->n_items > 0 && vocab->item_ids == NULL)
		return US_EINVAL;
	if (vocab->n_behaviors > 0 && vocab->behaviors == NULL)
		return US_EINVAL;
	if (vocab->n_classes > 0 && vocab->classes == NULL)
		return US_EINVAL;
	return US_OK;
}

/* allocates the model struct and its block; vocab and weights left to the caller */
static us_status
model_alloc(const us_model_config *cfg, const us_allocator *alloc, us_model **out)
{
	us_model   *m;
	size_t		n = us_model_param_count(cfg),
				bytes;

	*out = NULL;
	if (n == 0 || n > US_MAX_PARAMS || !us_mul_size(n, sizeof(float), &bytes))
		return US_ELIMIT;
	m = alloc->alloc(alloc->ctx, sizeof(us_model));
	if (m == NULL)
		return US_ENOMEM;
	memset(m, 0, sizeof(*m));
	m->params_block = alloc->alloc(alloc->ctx, bytes);
	if (m->params_block == NULL)
	{
		alloc->free(alloc->ctx, m);
		return US_ENOMEM;
	}
	m->cfg = *cfg;
	m->alloc = *alloc;
	m->n_params = n;
	us_params_bind(cfg, m->params_block, &m->p);
	*out = m;
	return US_OK;
}

us_status
us_model_create(const us_model_config *cfg, const us_vocab *vocab, uint64_t seed,
				const us_allocator *alloc, us_model **out)
{
	us_model   *m;
	us_status	st;
	us_rng		rng;
	const us_model_config *c = cfg;
	size_t		E,
				F,
				H,
				D;
	double		std;

	if (out == NULL)
		return US_EINVAL;
	*out = NULL;
	if (cfg == NULL || vocab == NULL || alloc == NULL)
		return US_EINVAL;
	st = us_model_config_validate(cfg, NULL, 0);
	if (st != US_OK)
		return st;
	st = check_vocab(cfg, vocab);
	if (st != US_OK)
		return st;
	st = model_alloc(cfg, alloc, &m);
	if (st != US_OK)
		return st;
	st = us_vocab_copy(&m->vocab, vocab, alloc);
	if (st != US_OK)
	{
		us_model_free(m);
		return st;
	}

	E = (size_t) c->embed_dim;
	F = (size_t) c->n_filters;
	H = (size_t) c->hidden_dim;
	D = (size_t) us_model_feature_dim(c);
	std = c->embed_init_std > 0.0f ? c->embed_init_std : 1.0;
	us_rng_seed(&rng, seed);
	init_embedding(&rng, m->p.item_emb, (size_t) c->n_items, E, std);
	init_embedding(&rng, m->p.behavior_emb, (size_t) c->n_behaviors, E, std);
	init_embedding(&rng, m->p.gap_emb, (size_t) c->n_gap_buckets, E, std);
	if (c->architecture == US_ARCH_SASREC)
	{
		us_attn_params ap;

		/* positions at the embeddings' scale: the layer norms see item + position */
		us_attn_bind(c, m->p.encoder, &ap);
		us_attn_init(c, &ap, &rng, std);
	}
	for (int i = 0; i < c->n_widths; i++)
	{
		/* torch Conv1d / Linear: kaiming_uniform(a=sqrt(5)) = U(+-1/sqrt(fan_in)), same for bias */
		double		bound = 1.0 / sqrt((double) c->widths[i] * (double) E);

		init_uniform(&rng, m->p.conv_w[i], (size_t) c->widths[i] * E * F, bound);
		init_uniform(&rng, m->p.conv_b[i], F, bound);
	}
	init_uniform(&rng, m->p.dense_w, D * H, 1.0 / sqrt((double) D));
	init_uniform(&rng, m->p.dense_b, H, 1.0 / sqrt((double) D));
	if (m->p.out_w)
		init_uniform(&rng, m->p.out_w, H * (size_t) c->n_outputs, 1.0 / sqrt((double) H));
	init_uniform(&rng, m->p.out_b, (size_t) c->n_outputs, 1.0 / sqrt((double) H));
	*out = m;
	return US_OK;
}

void
us_model_free(us_model *model)
{
	us_allocator alloc;

	if (model == NULL)
		return;
	alloc = model->alloc;
	us_vocab_free(&model->vocab, &alloc);
	us_transitions_free(&model->trans, &alloc);
	if (model->params_block)
		alloc.free(alloc.ctx, model->params_block);
	alloc.free(alloc.ctx, model);
}

us_status
us_model_clone(const us_model *src, const us_allocator *alloc, us_model **out)
{
	us_model   *m;
	us_status	st;

	if (out == NULL)
		return US_EINVAL;
	*out = NULL;
	if (src == NULL || alloc == NULL)
		return US_EINVAL;
	st = model_alloc(&src->cfg, alloc, &m);
	if (st != US_OK)
		return st;
	if (m->n_params != src->n_params)
	{
		us_model_free(m);
		return US_EINTERNAL;
	}
	st = us_vocab_copy(&m->vocab, &src->vocab, alloc);
	if (st != US_OK)
	{
		us_model_free(m);
		return st;
	}
	memcpy(m->params_block, src->params_block, src->n_params * sizeof(float));
	m->quantized = src->quantized;
	st = us_transitions_copy(&m->trans, &src->trans, alloc);
	if (st != US_OK)
	{
		us_model_free(m);
		return st;
	}
	*out = m;
	return US_OK;
}

us_status
us_model_copy_weights(us_model *dst, const us_model *src)
{
	us_model_config a,
				b;

	if (dst == NULL || src == NULL)
		return US_EINVAL;
	/* the shape must agree; creation / training-only fields need not */
	a = dst->cfg;
	b = src->cfg;
	a.embed_init_std = b.embed_init_std = 0.0f;
	a.embed_dropout = b.embed_dropout = 0.0f;
	if (dst->n_params != src->n_params || memcmp(&a, &b, sizeof(us_model_config)) != 0)
		return US_EINVAL;
	if (dst != src)
		memcpy(dst->params_block, src->params_block, src->n_params * sizeof(float));
	return US_OK;
}

us_status
us_model_check_finite(const us_model *model)
{
	const float *x = model->params_block;
	size_t		n = model->n_params;
	float		acc = 0.0f;

	/* x * 0 is 0 for finite x and NaN otherwise: one branch-free pass */
	for (size_t i = 0; i < n; i++)
		acc += x[i] * 0.0f;
	return acc == 0.0f ? US_OK : US_ENONFINITE;
}

us_status
us_model_check_weights(const us_model *model)
{
	us_status	st = us_model_check_finite(model);

	if (st != US_OK)
		return st;
	for (size_t i = 0; i < model->n_params; i++)
		if (fabsf(model->params_block[i]) > US_MAX_ABS_WEIGHT)
			return US_ERANGE;
	return US_OK;
}

void
us_model_class_range(const us_model *model, int32_t *first, int32_t *count)
{
	if (model->cfg.task == US_TASK_NEXT_BEHAVIOR)
	{
		int32_t		rows = model->cfg.n_outputs - US_ROW_FIRST;

		*first = US_ROW_FIRST;
		*count = model->vocab.n_behaviors < rows ? model->vocab.n_behaviors : rows;
	}
	else
	{
		*first = 0;
		*count = model->cfg.n_outputs;
	}
}

/* ------------------------------------------------------------------ int8 */

int
us_model_tensors(const us_model_config *cfg, us_tensor *t)
{
	size_t		E = (size_t) cfg->embed_dim,
				F = (size_t) cfg->n_filters,
				H = (size_t) cfg->hidden_dim,
				D = (size_t) us_model_feature_dim(cfg);
	size_t		off = 0;
	int			n = 0;

#define ADD(r, c, pc, q) do { t[n].off = off; t[n].rows = (r); t[n].cols = (c); \
		t[n].per_col = (pc); t[n].quant = (q); off += (size_t) (r) * (c); n++; } while (0)
	ADD((size_t) cfg->n_items, E, 0, 1);
	if (cfg->n_behaviors > 0)
		ADD((size_t) cfg->n_behaviors, E, 0, 1);
	if (cfg->n_gap_buckets > 0)
		ADD((size_t) cfg->n_gap_buckets, E, 0, 1);
	for (int i = 0; i < cfg->n_widths; i++)
	{
		ADD((size_t) cfg->widths[i] * E, F, 1, 1);	/* (k, E, F): a scale per filter */
		ADD(1, F, 0, 0);
	}
	ADD(D, H, 1, 1);			/* a scale per hidden unit */
	ADD(1, H, 0, 0);
	if (!cfg->tie_output)
		ADD(H, (size_t) cfg->n_outputs, 1, 1);	/* a scale per output */
	ADD(1, (size_t) cfg->n_outputs, 0, 0);
#undef ADD
	return n;
}

/*
 * The group scale: max |w| / 127 rounded up to 17 significant bits, so that q * scale is
 * exact for every |q| <= 127 and quantizing values already on the grid finds the same scale
 * again (encode after decode writes the same bytes).
 */
float
us_quant_scale(float amax)
{
	int			e;
	float		m;

	if (!(amax > 0.0f))
		return 0.0f;
	m = frexpf(amax / 127.0f, &e);
	return ldexpf(ceilf(m * 131072.0f) / 131072.0f, e);
}

us_status
us_model_quantize(us_model *model, double *max_err)
{
	us_tensor	t[US_MAX_TENSORS];
	int			nt;
	double		worst = 0.0;

	if (model == NULL || model->params_block == NULL)
		return US_EINVAL;
	/* the tensor list (and int8 format versions 2 and 4) describe the text-CNN only */
	if (model->cfg.architecture != US_ARCH_TEXTCNN)
		return US_EUNSUPPORTED;
	nt = us_model_tensors(&model->cfg, t);
	for (int k = 0; k < nt; k++)
	{
		const us_tensor *x = &t[k];
		float	   *w = model->params_block + x->off;
		size_t		G = us_tensor_groups(x),
					L = x->per_col ? x->rows : x->cols,
					gs = x->per_col ? 1 : x->cols,	/* step between groups */
					es = x->per_col ? x->cols : 1;	/* step within a group */

		if (!x->quant)
			continue;
		for (size_t g = 0; g < G; g++)
		{
			float		amax = 0.0f,
						scale;

			for (size_t j = 0; j < L; j++)
				amax = fmaxf(amax, fabsf(w[g * gs + j * es]));
			if (!isfinite(amax))
				return US_ENONFINITE;
			scale = us_quant_scale(amax);
			for (size_t j = 0; j < L; j++)
			{
				float	   *e = &w[g * gs + j * es];
				float		q = scale > 0.0f ? fminf(127.0f, fmaxf(-127.0f, rintf(*e / scale))) : 0.0f;
				float		v = q * scale + 0.0f;	/* -0 becomes +0, as decoded from code 0 */

				worst = fmax(worst, fabs((double) v - *e));
				*e = v;
			}
		}
	}
	model->quantized = 1;
	if (max_err)
		*max_err = worst;
	return US_OK;
}
