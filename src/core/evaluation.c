/*
 * evaluation.c: per-task validation figures of a model (what training reports each epoch)
 * and the baselines evaluation reads a model against (see us_evaluation.h). It scores through
 * us_model_predict and measures through metrics.c; it reads no data and keeps no state.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "userseq/us_evaluation.h"
#include "us_internal.h"

/* ------------------------------------------------------------------ validation */

const char *
us_task_metric_name(int32_t task)
{
	switch (task)
	{
		case US_TASK_BINARY:
			return "roc_auc";
		case US_TASK_REGRESSION:
			return "rmse";
		case US_TASK_NEXT_ITEM:
			return "ndcg@10";
		default:
			return "accuracy";
	}
}

int
us_task_higher_is_better(int32_t task)
{
	return task != US_TASK_REGRESSION;
}

static void
put_value(us_validation *v, const char *name, double value)
{
	if (v->n_values < US_MAX_VALIDATION_VALUES)
	{
		v->names[v->n_values] = name;
		v->values[v->n_values] = value;
		v->n_values++;
	}
}

/* The arrays one validation pass collects (NULL where the task needs none). */
typedef struct valid_arrays
{
	double	   *pred;			/* binary / regression prediction */
	uint8_t    *lab;			/* binary label */
	double	   *truth;			/* regression target */
	double	   *w;				/* weight */
	uint8_t    *skip;			/* next_item: rows never ranked */
} valid_arrays;

static void
free_arrays(valid_arrays *a, const us_allocator *alloc)
{
	alloc->free(alloc->ctx, a->pred);
	alloc->free(alloc->ctx, a->lab);
	alloc->free(alloc->ctx, a->truth);
	alloc->free(alloc->ctx, a->w);
	alloc->free(alloc->ctx, a->skip);
}

us_status
us_model_validate(const us_model *model, const us_dataset *data, const int32_t *seq_ids,
				  int32_t n, int32_t chunk, float *out, const us_allocator *alloc,
				  const us_progress *progress, us_validation *v)
{
	int32_t		task = model->cfg.task;
	int32_t		k = model->cfg.n_outputs;
	size_t		nn = n > 0 ? (size_t) n : 1;
	valid_arrays a;
	us_ranking_metrics rm;
	int			cutoffs[] = {1, 5, 10, 20};
	double		loss_sum = 0,
				correct = 0,
				wsum = 0;
	us_status	st = US_OK;

	memset(v, 0, sizeof(*v));
	memset(&a, 0, sizeof(a));
	if (n <= 0 || chunk <= 0)
		return US_EINVAL;
	a.w = alloc->alloc(alloc->ctx, sizeof(double) * nn);
	if (task == US_TASK_BINARY || task == US_TASK_REGRESSION)
		a.pred = alloc->alloc(alloc->ctx, sizeof(double) * nn);
	if (task == US_TASK_BINARY)
		a.lab = alloc->alloc(alloc->ctx, nn);
	if (task == US_TASK_REGRESSION)
		a.truth = alloc->alloc(alloc->ctx, sizeof(double) * nn);
	if (task == US_TASK_NEXT_ITEM)
	{
		us_ranking_init(&rm, cutoffs, 4);
		a.skip = alloc->alloc(alloc->ctx, (size_t) k);
		if (a.skip)
		{
			memset(a.skip, 0, (size_t) k);
			/* padding and out-of-vocabulary rows are never recommended */
			a.skip[US_ROW_PAD] = a.skip[US_ROW_OOV] = 1;
		}
	}
	if (!a.w || ((task == US_TASK_BINARY || task == US_TASK_REGRESSION) && !a.pred) ||
		(task == US_TASK_BINARY && !a.lab) || (task == US_TASK_REGRESSION && !a.truth) ||
		(task == US_TASK_NEXT_ITEM && !a.skip))
	{
		free_arrays(&a, alloc);
		return US_ENOMEM;
	}

	for (int32_t off = 0; off < n; off += chunk)
	{
		int32_t		m = n - off < chunk ? n - off : chunk;
		double		l = 0;

		st = us_model_predict(model, data, seq_ids + off, m, out, NULL, &l, progress);
		if (st != US_OK)
		{
			free_arrays(&a, alloc);
			return st;
		}
		loss_sum += l * m;
		for (int32_t i = 0; i < m; i++)
		{
			int32_t		s = off + i;
			int32_t		seq = seq_ids[s];
			const float *o = out + (size_t) i * k;

			a.w[s] = data->weights ? data->weights[seq] : 1.0;
			switch (task)
			{
				case US_TASK_BINARY:
					a.pred[s] = o[0];
					a.lab[s] = data->targets[seq] > 0.5f;
					break;
				case US_TASK_REGRESSION:
					a.pred[s] = o[0];
					a.truth[s] = data->targets[seq];
					break;
				case US_TASK_NEXT_ITEM:
					{
						int32_t		target = data->classes[seq];

						us_ranking_add(&rm, target >= US_ROW_FIRST ?
									   us_rank_of_target(o, (size_t) k, (size_t) target, a.skip) : k);
						break;
					}
				default:
					correct += (us_argmax(o, k) == data->classes[seq]) ? a.w[s] : 0;
					wsum += a.w[s];
					break;
			}
		}
	}
	v->loss = loss_sum / n;

	switch (task)
	{
		case US_TASK_BINARY:
			{
				double		auc;
				us_binary_metrics bm;

				st = us_roc_auc(a.pred, a.lab, a.w, (size_t) n, alloc, &auc);
				if (st != US_OK)
					break;
				us_binary_metrics_compute(a.pred, a.lab, a.w, (size_t) n, 0.5, &bm);
				put_value(v, "roc_auc", auc);
				put_value(v, "accuracy", bm.accuracy);
				put_value(v, "precision", bm.precision);
				put_value(v, "recall", bm.recall);
				put_value(v, "f1", bm.f1);
				put_value(v, "log_loss", bm.log_loss);
				break;
			}
		case US_TASK_REGRESSION:
			{
				us_regression_metrics r;

				us_regression_metrics_compute(a.pred, a.truth, a.w, (size_t) n, &r);
				put_value(v, "rmse", r.rmse);
				put_value(v, "mse", r.mse);
				put_value(v, "mae", r.mae);
				put_value(v, "r2", r.r2);
				break;
			}
		case US_TASK_NEXT_ITEM:
			{
				double		hr[4],
							ndcg[4],
							mrr;

				us_ranking_result(&rm, hr, ndcg, &mrr);
				put_value(v, "ndcg@10", ndcg[2]);
				put_value(v, "hr@1", hr[0]);
				put_value(v, "hr@5", hr[1]);
				put_value(v, "hr@10", hr[2]);
				put_value(v, "hr@20", hr[3]);
				put_value(v, "ndcg@5", ndcg[1]);
				put_value(v, "ndcg@20", ndcg[3]);
				put_value(v, "mrr", mrr);
				break;
			}
		default:
			put_value(v, "accuracy", wsum > 0 ? correct / wsum : NAN);
			break;
	}
	v->metric = v->n_values > 0 ? v->values[0] : NAN;
	free_arrays(&a, alloc);
	return st;
}

/* ------------------------------------------------------------------ baselines */

double
us_label_mean(const float *targets, const float *weights, int32_t n)
{
	double		sum = 0.0,
				total = 0.0;

	for (int32_t i = 0; i < n; i++)
	{
		double		w = weights ? weights[i] : 1.0;

		sum += w * targets[i];
		total += w;
	}
	return total > 0 ? sum / total : NAN;
}

void
us_popularity_scores(const us_vocab *vocab, int32_t n_rows, float *scores)
{
	for (int32_t r = 0; r < n_rows; r++)
	{
		int32_t		i = r - US_ROW_FIRST;

		scores[r] = (i >= 0 && i < vocab->n_items && vocab->item_counts) ?
			(float) (double) vocab->item_counts[i] : 0.0f;
	}
}

static int
cmp_u32(const void *a, const void *b)
{
	uint32_t	x = *(const uint32_t *) a;
	uint32_t	y = *(const uint32_t *) b;

	return x < y ? -1 : (x > y ? 1 : 0);
}

us_status
us_popularity_ranks(const us_vocab *vocab, const int32_t *targets, size_t n,
					const us_allocator *alloc, int64_t *ranks)
{
	int32_t		nv = vocab->n_items;
	uint32_t   *sorted = alloc->alloc(alloc->ctx, sizeof(uint32_t) * (size_t) (nv > 0 ? nv : 1));

	if (!sorted)
		return US_ENOMEM;
	if (nv > 0)
		memcpy(sorted, vocab->item_counts, sizeof(uint32_t) * (size_t) nv);
	qsort(sorted, (size_t) nv, sizeof(uint32_t), cmp_u32);
	for (size_t s = 0; s < n; s++)
	{
		int32_t		t = targets[s];

		ranks[s] = -1;
		if (t >= US_ROW_FIRST && t < US_ROW_FIRST + nv)
		{
			uint32_t	c = vocab->item_counts[t - US_ROW_FIRST];
			int32_t		lo = 0,
						hi = nv;

			/* first index with count >= c; ties count against the target */
			while (lo < hi)
			{
				int32_t		mid = lo + (hi - lo) / 2;

				if (sorted[mid] < c)
					lo = mid + 1;
				else
					hi = mid;
			}
			ranks[s] = nv - lo;
		}
	}
	alloc->free(alloc->ctx, sorted);
	return US_OK;
}

int64_t
us_item_pairs(const int32_t *items, int32_t n, uint64_t *pairs)
{
	int64_t		k = 0;

	for (int32_t i = 0; i + 1 < n; i++)
		if (items[i] >= US_ROW_FIRST && items[i + 1] >= US_ROW_FIRST)
			pairs[k++] = ((uint64_t) items[i] << 32) | (uint32_t) items[i + 1];
	return k;
}

int
us_cmp_u64(const void *a, const void *b)
{
	uint64_t	x = *(const uint64_t *) a;
	uint64_t	y = *(const uint64_t *) b;

	return (x > y) - (x < y);
}

void
us_item_markov_free(us_item_markov *m, const us_allocator *alloc)
{
	alloc->free(alloc->ctx, m->start);
	alloc->free(alloc->ctx, m->to);
	alloc->free(alloc->ctx, m->count);
	alloc->free(alloc->ctx, m->base);
	memset(m, 0, sizeof(*m));
}

us_status
us_item_markov_build(uint64_t *pairs, int64_t n_pairs, int32_t n_rows, const us_vocab *vocab,
					 const us_allocator *alloc, us_item_markov *m)
{
	size_t		np = n_pairs > 0 ? (size_t) n_pairs : 1;
	int64_t		n_tr = 0;
	double		max_pop = 0.0;

	memset(m, 0, sizeof(*m));
	m->n_rows = n_rows;
	m->start = alloc->alloc(alloc->ctx, sizeof(int64_t) * ((size_t) n_rows + 1));
	m->to = alloc->alloc(alloc->ctx, sizeof(int32_t) * np);
	m->count = alloc->alloc(alloc->ctx, sizeof(float) * np);
	m->base = alloc->alloc(alloc->ctx, sizeof(float) * (size_t) (n_rows > 0 ? n_rows : 1));
	if (!m->start || !m->to || !m->count || !m->base)
	{
		us_item_markov_free(m, alloc);
		return US_ENOMEM;
	}
	memset(m->start, 0, sizeof(int64_t) * ((size_t) n_rows + 1));

	/* sort the pairs and run-length count them into a table by source row */
	qsort(pairs, (size_t) n_pairs, sizeof(uint64_t), us_cmp_u64);
	for (int64_t i = 0; i < n_pairs;)
	{
		int64_t		j = i;

		while (j < n_pairs && pairs[j] == pairs[i])
			j++;
		m->to[n_tr] = (int32_t) (pairs[i] & 0xffffffffu);
		m->count[n_tr] = (float) (j - i);
		m->start[(pairs[i] >> 32) + 1]++;
		n_tr++;
		i = j;
	}
	for (int32_t r = 0; r < n_rows; r++)
		m->start[r + 1] += m->start[r];

	/* popularity scaled below 1: only breaks ties between equal transition counts */
	us_popularity_scores(vocab, n_rows, m->base);
	for (int32_t i = 0; vocab->item_counts && i < vocab->n_items; i++)
		if ((double) vocab->item_counts[i] > max_pop)
			max_pop = (double) vocab->item_counts[i];
	for (int32_t r = 0; r < n_rows; r++)
		m->base[r] = (float) (m->base[r] / (max_pop + 1.0));
	return US_OK;
}

void
us_item_markov_scores(const us_item_markov *m, int32_t last, float *scores)
{
	memcpy(scores, m->base, sizeof(float) * (size_t) m->n_rows);
	if (last >= US_ROW_FIRST && last < m->n_rows)
		for (int64_t t = m->start[last]; t < m->start[last + 1]; t++)
			scores[m->to[t]] += m->count[t];
}

us_status
us_behavior_counts_init(us_behavior_counts *c, int32_t n_classes, const us_allocator *alloc)
{
	size_t		nc = n_classes > 0 ? (size_t) n_classes : 1;

	memset(c, 0, sizeof(*c));
	c->n_classes = n_classes;
	c->freq = alloc->alloc(alloc->ctx, sizeof(double) * nc);
	c->trans = alloc->alloc(alloc->ctx, sizeof(double) * nc * nc);
	if (!c->freq || !c->trans)
	{
		us_behavior_counts_free(c, alloc);
		return US_ENOMEM;
	}
	memset(c->freq, 0, sizeof(double) * nc);
	memset(c->trans, 0, sizeof(double) * nc * nc);
	return US_OK;
}

int32_t
us_behavior_counts_add(us_behavior_counts *c, const int32_t *rows, int32_t n)
{
	int32_t		last = -1;

	for (int32_t t = 0; rows && t < n; t++)
	{
		int32_t		b = rows[t] - US_ROW_FIRST;

		if (b < 0 || b >= c->n_classes)
		{
			last = -1;
			continue;
		}
		c->freq[b] += 1.0;
		if (last >= 0)
			c->trans[(size_t) last * c->n_classes + b] += 1.0;
		last = b;
	}
	return last;
}

void
us_behavior_prior(const us_behavior_counts *c, double *p)
{
	int32_t		C = c->n_classes;
	double		total = 0.0;

	for (int32_t k = 0; k < C; k++)
		total += c->freq[k];
	for (int32_t k = 0; k < C; k++)
		p[k] = (c->freq[k] + 1.0) / (total + C);
}

void
us_behavior_markov(const us_behavior_counts *c, int32_t last, double *p)
{
	int32_t		C = c->n_classes;
	const double *tr;
	double		row = 0.0;

	if (last < 0 || last >= C)
	{
		us_behavior_prior(c, p);
		return;
	}
	tr = c->trans + (size_t) last * C;
	for (int32_t k = 0; k < C; k++)
		row += tr[k];
	for (int32_t k = 0; k < C; k++)
		p[k] = (tr[k] + 1.0) / (row + C);
}

void
us_behavior_counts_free(us_behavior_counts *c, const us_allocator *alloc)
{
	alloc->free(alloc->ctx, c->freq);
	alloc->free(alloc->ctx, c->trans);
	memset(c, 0, sizeof(*c));
}
