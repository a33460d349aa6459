/*
 * transitions.c: the first-order transition prior of next_item models (us_model.h).
 *
 * Why: on short histories over large catalogues a factorised model of rank E cannot hold the
 * many rare item-to-item transitions that a count keeps exactly, and it lost to the markov
 * baseline on full-catalogue ranking (README, "Next-item quality"). The prior adds
 * weight * log(1 + count(last -> b)) to the network's logit of b, with weight chosen on the
 * validation split, so the model keeps what counting knows and the network ranks the rest
 * (and breaks the count's ties far better than popularity does).
 *
 * The table is small by construction: per source row the US_TRANS_MAX_PER_ROW most frequent
 * successors, which also bounds the extra candidates an exact top-k has to consider.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "userseq/us_evaluation.h"
#include "userseq/us_metrics.h"
#include "us_internal.h"

const double us_transition_weight_grid[] = {0.0, 0.25, 0.5, 1.0, 2.0, 4.0, 8.0, 16.0, 32.0};
const int	us_transition_weight_grid_n = 9;

#define US_TRANS_MAX_WEIGHT 1000.0

void
us_transitions_free(us_transitions *t, const us_allocator *alloc)
{
	if (t == NULL)
		return;
	if (alloc)
	{
		if (t->src)
			alloc->free(alloc->ctx, t->src);
		if (t->start)
			alloc->free(alloc->ctx, t->start);
		if (t->to)
			alloc->free(alloc->ctx, t->to);
		if (t->count)
			alloc->free(alloc->ctx, t->count);
		if (t->logc)
			alloc->free(alloc->ctx, t->logc);
	}
	memset(t, 0, sizeof(*t));
}

/* allocates the arrays of a table with n_src sources and nnz transitions */
static us_status
trans_alloc(us_transitions *t, int32_t n_src, int64_t nnz, const us_allocator *alloc)
{
	size_t		ns = (size_t) (n_src > 0 ? n_src : 1),
				nz = (size_t) (nnz > 0 ? nnz : 1);

	memset(t, 0, sizeof(*t));
	t->src = alloc->alloc(alloc->ctx, ns * sizeof(int32_t));
	t->start = alloc->alloc(alloc->ctx, (ns + 1) * sizeof(int64_t));
	t->to = alloc->alloc(alloc->ctx, nz * sizeof(int32_t));
	t->count = alloc->alloc(alloc->ctx, nz * sizeof(uint32_t));
	t->logc = alloc->alloc(alloc->ctx, nz * sizeof(float));
	if (!t->src || !t->start || !t->to || !t->count || !t->logc)
	{
		us_transitions_free(t, alloc);
		return US_ENOMEM;
	}
	t->n_src = n_src;
	t->nnz = nnz;
	t->start[0] = 0;
	return US_OK;
}

us_status
us_transitions_copy(us_transitions *dst, const us_transitions *src, const us_allocator *alloc)
{
	us_status	st;

	if (dst == NULL || src == NULL || alloc == NULL)
		return US_EINVAL;
	if (src->src == NULL)
	{
		memset(dst, 0, sizeof(*dst));
		dst->weight = src->weight;
		dst->repeat_weight = src->repeat_weight;
		return US_OK;
	}
	st = trans_alloc(dst, src->n_src, src->nnz, alloc);
	if (st != US_OK)
		return st;
	dst->weight = src->weight;
	dst->repeat_weight = src->repeat_weight;
	memcpy(dst->src, src->src, (size_t) src->n_src * sizeof(int32_t));
	memcpy(dst->start, src->start, ((size_t) src->n_src + 1) * sizeof(int64_t));
	memcpy(dst->to, src->to, (size_t) src->nnz * sizeof(int32_t));
	memcpy(dst->count, src->count, (size_t) src->nnz * sizeof(uint32_t));
	memcpy(dst->logc, src->logc, (size_t) src->nnz * sizeof(float));
	return US_OK;
}

us_status
us_transitions_check(us_transitions *t, int32_t n_rows)
{
	if (t == NULL)
		return US_EINVAL;
	if (!isfinite(t->weight) || t->weight < 0.0f || t->weight > US_TRANS_MAX_WEIGHT ||
		!isfinite(t->repeat_weight) || t->repeat_weight < 0.0f ||
		t->repeat_weight > US_TRANS_MAX_WEIGHT)
		return US_EFORMAT;
	if (t->n_src < 0 || t->nnz < 0 || (t->n_src > 0 && (!t->src || !t->start || !t->to ||
														 !t->count || !t->logc)))
		return US_EFORMAT;
	if (t->n_src == 0)
		return t->nnz == 0 ? US_OK : US_EFORMAT;
	if (t->start[0] != 0 || t->start[t->n_src] != t->nnz)
		return US_EFORMAT;
	for (int32_t i = 0; i < t->n_src; i++)
	{
		int64_t		a = t->start[i],
					b = t->start[i + 1];

		if (t->src[i] < US_ROW_FIRST || t->src[i] >= n_rows ||
			(i > 0 && t->src[i] <= t->src[i - 1]))
			return US_EFORMAT;
		if (b <= a || b - a > US_TRANS_MAX_PER_ROW || b > t->nnz)
			return US_EFORMAT;
		for (int64_t j = a; j < b; j++)
		{
			if (t->to[j] < US_ROW_FIRST || t->to[j] >= n_rows ||
				(j > a && t->to[j] <= t->to[j - 1]) || t->count[j] == 0)
				return US_EFORMAT;
			t->logc[j] = (float) log1p((double) t->count[j]);
		}
	}
	return US_OK;
}

/* successors of one source, best first: count descending, then row ascending */
typedef struct succ
{
	int32_t		to;
	uint32_t	count;
} succ;

static int
cmp_succ_best(const void *a, const void *b)
{
	const succ *x = a,
			   *y = b;

	if (x->count != y->count)
		return x->count > y->count ? -1 : 1;
	return (x->to > y->to) - (x->to < y->to);
}

static int
cmp_succ_row(const void *a, const void *b)
{
	const succ *x = a,
			   *y = b;

	return (x->to > y->to) - (x->to < y->to);
}

us_status
us_transitions_build(us_model *model, const us_dataset *data, const int32_t *seq_ids, int32_t n)
{
	const us_allocator *alloc;
	uint64_t   *pairs = NULL;
	succ	   *buf = NULL;
	int32_t    *src = NULL;
	int64_t    *end = NULL;
	int64_t		n_pairs = 0,
				total = 0,
				nnz = 0,
				max_src;
	int32_t		n_src = 0;
	us_transitions t;
	us_status	st = US_OK;

	if (model == NULL || data == NULL || (seq_ids == NULL && n > 0) || n < 0 ||
		model->cfg.task != US_TASK_NEXT_ITEM)
		return US_EINVAL;
	alloc = &model->alloc;
	for (int32_t i = 0; i < n; i++)
	{
		int32_t		s = seq_ids[i];

		if (s < 0 || s >= data->n_seqs)
			return US_EINVAL;
		if (data->offsets[s + 1] - data->offsets[s] > 1)
			total += data->offsets[s + 1] - data->offsets[s] - 1;
	}
	/* sources: distinct item rows that start a pair */
	max_src = total < model->cfg.n_items ? total : model->cfg.n_items;
	if (max_src < 1)
		max_src = 1;
	pairs = alloc->alloc(alloc->ctx, (size_t) (total > 0 ? total : 1) * sizeof(uint64_t));
	buf = alloc->alloc(alloc->ctx, (size_t) model->cfg.n_items * sizeof(succ));
	src = alloc->alloc(alloc->ctx, (size_t) max_src * sizeof(int32_t));
	end = alloc->alloc(alloc->ctx, (size_t) max_src * sizeof(int64_t));
	if (!pairs || !buf || !src || !end)
	{
		st = US_ENOMEM;
		goto done;
	}
	for (int32_t i = 0; i < n; i++)
	{
		int32_t		s = seq_ids[i];
		int64_t		len = data->offsets[s + 1] - data->offsets[s];

		if (len > 1)
			n_pairs += us_item_pairs(data->items + data->offsets[s], (int32_t) len,
									 pairs + n_pairs);
	}
	qsort(pairs, (size_t) n_pairs, sizeof(uint64_t), us_cmp_u64);

	/*
	 * One pass: per source, its distinct successors into buf and the most frequent ones,
	 * stored by row, packed back into the front of pairs as (to << 32 | count). Each kept
	 * successor stands for at least one pair already read, so the packing only overwrites
	 * pairs that have been read.
	 */
	for (int64_t i = 0; i < n_pairs;)
	{
		uint64_t	a = pairs[i] >> 32;
		int32_t		m = 0;
		int64_t		j = i;

		while (j < n_pairs && (pairs[j] >> 32) == a)
		{
			int64_t		k = j;

			while (k < n_pairs && pairs[k] == pairs[j])
				k++;
			buf[m].to = (int32_t) (pairs[j] & 0xffffffffu);
			buf[m].count = (uint32_t) ((k - j) < (int64_t) UINT32_MAX ? (k - j) : UINT32_MAX);
			m++;
			j = k;
		}
		if (m > US_TRANS_MAX_PER_ROW)
		{
			qsort(buf, (size_t) m, sizeof(succ), cmp_succ_best);
			m = US_TRANS_MAX_PER_ROW;
			qsort(buf, (size_t) m, sizeof(succ), cmp_succ_row);
		}
		for (int32_t q = 0; q < m; q++)
			pairs[nnz + q] = ((uint64_t) (uint32_t) buf[q].to << 32) | buf[q].count;
		nnz += m;
		src[n_src] = (int32_t) a;
		end[n_src++] = nnz;
		i = j;
	}

	/* the table at its size */
	st = trans_alloc(&t, n_src, nnz, alloc);
	if (st != US_OK)
		goto done;
	for (int32_t q = 0; q < n_src; q++)
	{
		t.src[q] = src[q];
		t.start[q + 1] = end[q];
	}
	for (int64_t q = 0; q < nnz; q++)
	{
		t.to[q] = (int32_t) (pairs[q] >> 32);
		t.count[q] = (uint32_t) (pairs[q] & 0xffffffffu);
	}
	t.weight = 0.0f;
	st = us_transitions_check(&t, model->cfg.n_items);
	if (st != US_OK)
	{
		us_transitions_free(&t, alloc);
		st = US_EINTERNAL;
		goto done;
	}
	us_transitions_free(&model->trans, alloc);
	model->trans = t;
done:
	if (pairs)
		alloc->free(alloc->ctx, pairs);
	if (buf)
		alloc->free(alloc->ctx, buf);
	if (src)
		alloc->free(alloc->ctx, src);
	if (end)
		alloc->free(alloc->ctx, end);
	return st;
}

int
us_transitions_active(const us_model *model)
{
	return model->cfg.task == US_TASK_NEXT_ITEM && model->trans.n_src > 0 &&
		model->trans.weight > 0.0f;
}

void
us_transitions_row(const us_model *model, int32_t a, const int32_t **to, const float **logc,
				   int32_t *n)
{
	const us_transitions *t = &model->trans;
	int32_t		lo = 0,
				hi = t->n_src;

	*n = 0;
	*to = NULL;
	*logc = NULL;
	if (t->n_src == 0 || a < US_ROW_FIRST)
		return;
	while (lo < hi)
	{
		int32_t		mid = lo + (hi - lo) / 2;

		if (t->src[mid] < a)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (lo < t->n_src && t->src[lo] == a)
	{
		*to = t->to + t->start[lo];
		*logc = t->logc + t->start[lo];
		*n = (int32_t) (t->start[lo + 1] - t->start[lo]);
	}
}

void
us_transitions_add(const us_model *model, int32_t last, float *logits)
{
	const int32_t *to;
	const float *logc;
	int32_t		n;
	float		w = model->trans.weight;

	if (!us_transitions_active(model))
		return;
	us_transitions_row(model, last, &to, &logc, &n);
	for (int32_t i = 0; i < n; i++)
		logits[to[i]] += w * logc[i];
}

float
us_transitions_term(const us_model *model, int32_t last, int32_t b)
{
	const int32_t *to;
	const float *logc;
	int32_t		n,
				lo = 0,
				hi;

	if (!us_transitions_active(model))
		return 0.0f;
	us_transitions_row(model, last, &to, &logc, &n);
	hi = n;
	while (lo < hi)
	{
		int32_t		mid = lo + (hi - lo) / 2;

		if (to[mid] < b)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo < n && to[lo] == b ? model->trans.weight * logc[lo] : 0.0f;
}

int
us_repeat_active(const us_model *model)
{
	return model->cfg.task == US_TASK_NEXT_ITEM && model->trans.repeat_weight > 0.0f;
}

int
us_prior_active(const us_model *model)
{
	return us_transitions_active(model) || us_repeat_active(model);
}

float
us_repeat_term(const us_model *model, const int32_t *hist, int32_t n, int32_t b)
{
	int32_t		c = 0;

	if (!us_repeat_active(model) || b < US_ROW_FIRST || n <= 0)
		return 0.0f;
	if (n > model->cfg.max_len)
	{
		hist += n - model->cfg.max_len;
		n = model->cfg.max_len;
	}
	for (int32_t i = 0; i < n; i++)
		c += hist[i] == b;
	return c > 0 ? us_repeat_value(model->trans.repeat_weight, c) : 0.0f;
}

static int
cmp_i32(const void *a, const void *b)
{
	int32_t		x = *(const int32_t *) a,
				y = *(const int32_t *) b;

	return (x > y) - (x < y);
}

void
us_prior_add(const us_model *model, const int32_t *hist, int32_t n, float *logits,
			 int32_t *scratch)
{
	float		rw = model->trans.repeat_weight;

	if (n <= 0)
		return;
	us_transitions_add(model, hist[n - 1], logits);
	if (!us_repeat_active(model) || scratch == NULL)
		return;
	if (n > model->cfg.max_len)
	{
		hist += n - model->cfg.max_len;
		n = model->cfg.max_len;
	}
	/* sorted copy: each run of one row is its count */
	memcpy(scratch, hist, (size_t) n * sizeof(int32_t));
	qsort(scratch, (size_t) n, sizeof(int32_t), cmp_i32);
	for (int32_t i = 0; i < n;)
	{
		int32_t		j = i;

		while (j < n && scratch[j] == scratch[i])
			j++;
		if (scratch[i] >= US_ROW_FIRST)
			logits[scratch[i]] += us_repeat_value(rw, j - i);
		i = j;
	}
}

float
us_prior_logit(const us_model *model, const int32_t *hist, int32_t n, int32_t b, float net)
{
	float		x = net;

	if (n <= 0)
		return x;
	x += us_transitions_term(model, hist[n - 1], b);
	if (us_repeat_active(model))
		x += us_repeat_term(model, hist, n, b);
	return x;
}

/* item row of the last event the model reads of sequence s (0 when empty) */
static int32_t
last_row(const us_dataset *data, int32_t s)
{
	int64_t		a = data->offsets[s],
				b = data->offsets[s + 1];

	return b > a ? data->items[b - 1] : US_ROW_PAD;
}

/* rows of logits the weight fit holds at once: up to 256, within about 32 MB */
int32_t
us_transition_fit_chunk(int32_t n_outputs)
{
	int64_t		rows = n_outputs > 0 ? ((int64_t) 32 << 20) / ((int64_t) n_outputs * (int64_t) sizeof(float)) : 256;

	return (int32_t) (rows < 1 ? 1 : rows > 256 ? 256 : rows);
}

/* own[j]: how often successor j of last follows last inside sequence s of data */
static void
own_transitions(const us_model *model, const us_dataset *data, int32_t s, int32_t last,
				uint32_t *own)
{
	const int32_t *to;
	const float *logc;
	int32_t		n;

	us_transitions_row(model, last, &to, &logc, &n);
	memset(own, 0, sizeof(uint32_t) * US_TRANS_MAX_PER_ROW);
	for (int64_t i = data->offsets[s]; i + 1 < data->offsets[s + 1]; i++)
		if (data->items[i] == last)
			for (int32_t j = 0; j < n; j++)
				if (to[j] == data->items[i + 1])
				{
					own[j]++;
					break;
				}
}

/* per sequence of the fit: the rows either prior may raise (successors of the last item and the
 * distinct rows of the kept history), with their network logit and their terms' inputs */
typedef struct fit_row
{
	int32_t		row;
	float		y;				/* network logit */
	float		logc;			/* log(1 + count less own) of a successor; -1: not a successor */
	int32_t		c;				/* occurrences in the kept history (repeat prior), 0: none */
} fit_row;

/* the logit of r under weights (w, rw), as us_prior_add computes it */
static inline float
fit_logit(const fit_row *r, float w, float rw)
{
	float		x = r->y;

	if (r->logc >= 0.0f && w > 0.0f)
		x += w * r->logc;
	if (r->c > 0 && rw > 0.0f)
		x += us_repeat_value(rw, r->c);
	return x;
}

us_status
us_model_fit_prior(us_model *model, const us_dataset *data, const int32_t *seq_ids, int32_t n,
				   int own_in_table, const double *grid, int n_grid, const double *rgrid,
				   int n_rgrid, const us_progress *progress, double *metrics)
{
	enum
	{
		TOP = 11				/* ranks up to 10 matter for NDCG@10; the 11th decides "past 10" */
	};
	uint32_t	own[US_TRANS_MAX_PER_ROW];
	const us_allocator *alloc;
	us_model	net;
	us_ranking_metrics *rm = NULL;
	float	   *out = NULL;
	int32_t    *mark = NULL;		/* per row: 1 + its index in fr, 0: not in fr */
	fit_row    *fr = NULL;
	int32_t		V,
				L,
				chunk,
				max_rows;
	int			cutoff = 10,
				best = 0,
				n_pairs;
	us_status	st = US_OK;

	if (model == NULL || data == NULL || (seq_ids == NULL && n > 0) || n < 0 || grid == NULL ||
		n_grid <= 0 || rgrid == NULL || n_rgrid <= 0 || data->classes == NULL ||
		model->cfg.task != US_TASK_NEXT_ITEM)
		return US_EINVAL;
	for (int g = 0; g < n_grid; g++)
		if (!isfinite(grid[g]) || grid[g] < 0.0 || grid[g] > US_TRANS_MAX_WEIGHT ||
			(model->trans.n_src == 0 && grid[g] != 0.0))
			return US_EINVAL;
	for (int q = 0; q < n_rgrid; q++)
		if (!isfinite(rgrid[q]) || rgrid[q] < 0.0 || rgrid[q] > US_TRANS_MAX_WEIGHT)
			return US_EINVAL;
	if ((int64_t) n_grid * n_rgrid > 4096)
		return US_EINVAL;
	n_pairs = n_grid * n_rgrid;
	alloc = &model->alloc;
	V = model->cfg.n_outputs;
	L = model->cfg.max_len;
	chunk = us_transition_fit_chunk(V);
	max_rows = US_TRANS_MAX_PER_ROW + L + 1;
	out = alloc->alloc(alloc->ctx, (size_t) chunk * V * sizeof(float));
	mark = alloc->alloc(alloc->ctx, (size_t) V * sizeof(int32_t));
	fr = alloc->alloc(alloc->ctx, (size_t) max_rows * sizeof(fit_row));
	rm = alloc->alloc(alloc->ctx, (size_t) n_pairs * sizeof(us_ranking_metrics));
	if (!out || !mark || !fr || !rm)
	{
		st = US_ENOMEM;
		goto done;
	}
	memset(mark, 0, (size_t) V * sizeof(int32_t));
	for (int p = 0; p < n_pairs; p++)
		us_ranking_init(&rm[p], &cutoff, 1);
	/* the network alone, once: a shallow copy whose priors are off */
	net = *model;
	net.trans.weight = 0.0f;
	net.trans.repeat_weight = 0.0f;
	for (int32_t i0 = 0; i0 < n; i0 += chunk)
	{
		int32_t		m = n - i0 < chunk ? n - i0 : chunk;

		st = us_model_predict(&net, data, seq_ids + i0, m, out, NULL, NULL, NULL);
		if (st != US_OK)
			goto done;
		for (int32_t i = 0; i < m; i++)
		{
			int32_t		s = seq_ids[i0 + i];
			int32_t		target = data->classes[s];
			int32_t		lr = last_row(data, s);
			const float *y = out + (size_t) i * V;
			const int32_t *to;
			const float *logc;
			int32_t		n_succ,
						nr = 0,
						t_idx,
						n_top = 0;
			int64_t		h0 = data->offsets[s],
						h1 = data->offsets[s + 1];
			float		top[TOP];

			if (target < US_ROW_FIRST || target >= V)
			{
				for (int p = 0; p < n_pairs; p++)
					us_ranking_add(&rm[p], V);
				continue;
			}
			if (h1 - h0 > L)
				h0 = h1 - L;
			if (own_in_table)
				own_transitions(model, data, s, lr, own);
			else
				memset(own, 0, sizeof own);
			/* the rows a prior may raise, each once (mark[r] = 1 + its index), and the target */
			us_transitions_row(model, lr, &to, &logc, &n_succ);
			for (int32_t j = 0; j < n_succ; j++)
			{
				int64_t		k = (to - model->trans.to) + j;
				uint32_t	c = model->trans.count[k] > own[j] ? model->trans.count[k] - own[j] : 0;

				fr[nr] = (fit_row) {to[j], y[to[j]], own[j] == 0 ? logc[j] : (float) log1p((double) c), 0};
				mark[to[j]] = ++nr;
			}
			for (int64_t e = h0; e < h1; e++)
			{
				int32_t		r = data->items[e];

				if (r < US_ROW_FIRST || r >= V)
					continue;
				if (!mark[r])
				{
					fr[nr] = (fit_row) {r, y[r], -1.0f, 0};
					mark[r] = ++nr;
				}
				fr[mark[r] - 1].c++;
			}
			if (!mark[target])
			{
				fr[nr] = (fit_row) {target, y[target], -1.0f, 0};
				mark[target] = ++nr;
			}
			t_idx = mark[target] - 1;
			/* the TOP largest network logits of the rows no prior touches (NaN never counts) */
			for (int32_t r = US_ROW_FIRST; r < V; r++)
			{
				float		v = y[r];
				int32_t		k;

				if (mark[r] || !(n_top < TOP || v > top[TOP - 1]))
					continue;
				k = n_top < TOP ? n_top++ : TOP - 1;
				while (k > 0 && top[k - 1] < v)
				{
					top[k] = top[k - 1];
					k--;
				}
				top[k] = v;
			}
			for (int g = 0; g < n_grid; g++)
				for (int q = 0; q < n_rgrid; q++)
				{
					float		w = (float) grid[g],
								rw = (float) rgrid[q],
								ta = fit_logit(&fr[t_idx], w, rw);
					int64_t		rank = 1;

					if (isnan(ta))
						rank = V;
					else
					{
						/* rank = 1 + others scored at least as high, as us_rank_of_target */
						for (int32_t u = 0; u < n_top && top[u] >= ta; u++)
							rank++;
						for (int32_t j = 0; j < nr; j++)
							if (j != t_idx && fit_logit(&fr[j], w, rw) >= ta)
								rank++;
					}
					us_ranking_add(&rm[g * n_rgrid + q], rank);
				}
			for (int32_t j = 0; j < nr; j++)
				mark[fr[j].row] = 0;
		}
		if (progress && progress->fn && progress->fn(progress->ctx, i0 + m, n))
		{
			st = US_ECANCELED;
			goto done;
		}
	}
	{
		double		b_ndcg = -1.0;

		for (int g = 0; g < n_grid; g++)
			for (int q = 0; q < n_rgrid; q++)
			{
				double		hr,
							ndcg,
							mrr;
				int			p = g * n_rgrid + q,
							bq = best % n_rgrid,
							bg = best / n_rgrid;

				us_ranking_result(&rm[p], &hr, &ndcg, &mrr);
				if (metrics)
					metrics[p] = ndcg;
				if (p == 0 || ndcg > b_ndcg ||
					(ndcg == b_ndcg && (rgrid[q] < rgrid[bq] ||
										(rgrid[q] == rgrid[bq] && grid[g] < grid[bg]))))
				{
					best = p;
					b_ndcg = ndcg;
				}
			}
	}
	model->trans.weight = (float) grid[best / n_rgrid];
	model->trans.repeat_weight = (float) rgrid[best % n_rgrid];
done:
	if (out)
		alloc->free(alloc->ctx, out);
	if (mark)
		alloc->free(alloc->ctx, mark);
	if (fr)
		alloc->free(alloc->ctx, fr);
	if (rm)
		alloc->free(alloc->ctx, rm);
	return st;
}

us_status
us_model_fit_transition_weight(us_model *model, const us_dataset *data, const int32_t *seq_ids,
							   int32_t n, int own_in_table, const double *grid, int n_grid,
							   const us_progress *progress, double *metrics)
{
	static const double no_repeat = 0.0;

	if (model == NULL || model->trans.n_src == 0)
		return US_EINVAL;
	return us_model_fit_prior(model, data, seq_ids, n, own_in_table, grid, n_grid, &no_repeat, 1,
							  progress, metrics);
}
