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
		return US_OK;
	}
	st = trans_alloc(dst, src->n_src, src->nnz, alloc);
	if (st != US_OK)
		return st;
	dst->weight = src->weight;
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
	if (!isfinite(t->weight) || t->weight < 0.0f || t->weight > US_TRANS_MAX_WEIGHT)
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

/*
 * Adds weight * log(1 + count) of last's successors to row, the counts less own[] (the
 * history's own transitions from last, when the table was built from that history).
 */
static void
add_prior_less_own(const us_model *model, int32_t last, float w, const uint32_t *own, float *row)
{
	const us_transitions *t = &model->trans;
	const int32_t *to;
	const float *logc;
	int32_t		n;

	us_transitions_row(model, last, &to, &logc, &n);
	for (int32_t j = 0; j < n; j++)
	{
		int64_t		k = (to - t->to) + j;
		uint32_t	c = t->count[k] > own[j] ? t->count[k] - own[j] : 0;

		row[to[j]] += w * (own[j] == 0 ? logc[j] : (float) log1p((double) c));
	}
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

us_status
us_model_fit_transition_weight(us_model *model, const us_dataset *data, const int32_t *seq_ids,
							   int32_t n, int own_in_table, const double *grid, int n_grid,
							   const us_progress *progress, double *metrics)
{
	uint32_t	own[US_TRANS_MAX_PER_ROW];
	const us_allocator *alloc;
	us_model	net;
	us_ranking_metrics *rm = NULL;
	float	   *out = NULL,
			   *row = NULL;
	uint8_t    *skip = NULL;
	int32_t		V,
				chunk;
	int			cutoff = 10,
				best = 0;
	us_status	st = US_OK;

	if (model == NULL || data == NULL || (seq_ids == NULL && n > 0) || n < 0 || grid == NULL ||
		n_grid <= 0 || data->classes == NULL || model->cfg.task != US_TASK_NEXT_ITEM ||
		model->trans.n_src == 0)
		return US_EINVAL;
	for (int g = 0; g < n_grid; g++)
		if (!isfinite(grid[g]) || grid[g] < 0.0 || grid[g] > US_TRANS_MAX_WEIGHT)
			return US_EINVAL;
	alloc = &model->alloc;
	V = model->cfg.n_outputs;
	chunk = us_transition_fit_chunk(V);
	out = alloc->alloc(alloc->ctx, (size_t) chunk * V * sizeof(float));
	row = alloc->alloc(alloc->ctx, (size_t) V * sizeof(float));
	skip = alloc->alloc(alloc->ctx, (size_t) V);
	rm = alloc->alloc(alloc->ctx, (size_t) n_grid * sizeof(us_ranking_metrics));
	if (!out || !row || !skip || !rm)
	{
		st = US_ENOMEM;
		goto done;
	}
	memset(skip, 0, (size_t) V);
	skip[US_ROW_PAD] = skip[US_ROW_OOV] = 1;
	for (int g = 0; g < n_grid; g++)
		us_ranking_init(&rm[g], &cutoff, 1);
	/* the network alone, once: a shallow copy whose prior is off */
	net = *model;
	net.trans.weight = 0.0f;
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

			if (own_in_table)
				own_transitions(model, data, s, lr, own);
			else
				memset(own, 0, sizeof own);

			for (int g = 0; g < n_grid; g++)
			{
				int64_t		rank = V;

				if (target >= US_ROW_FIRST && target < V)
				{
					memcpy(row, y, (size_t) V * sizeof(float));
					if (grid[g] > 0.0)
						add_prior_less_own(model, lr, (float) grid[g], own, row);
					rank = us_rank_of_target(row, (size_t) V, (size_t) target, skip);
				}
				us_ranking_add(&rm[g], rank);
			}
		}
		if (progress && progress->fn && progress->fn(progress->ctx, i0 + m, n))
		{
			st = US_ECANCELED;
			goto done;
		}
	}
	for (int g = 0; g < n_grid; g++)
	{
		double		hr,
					ndcg,
					mrr;

		us_ranking_result(&rm[g], &hr, &ndcg, &mrr);
		if (metrics)
			metrics[g] = ndcg;
		if (g > 0)
		{
			double		b_hr,
						b_ndcg,
						b_mrr;

			us_ranking_result(&rm[best], &b_hr, &b_ndcg, &b_mrr);
			if (ndcg > b_ndcg || (ndcg == b_ndcg && grid[g] < grid[best]))
				best = g;
		}
	}
	model->trans.weight = (float) grid[best];
done:
	if (out)
		alloc->free(alloc->ctx, out);
	if (row)
		alloc->free(alloc->ctx, row);
	if (skip)
		alloc->free(alloc->ctx, skip);
	if (rm)
		alloc->free(alloc->ctx, rm);
	return st;
}
