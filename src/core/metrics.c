/*
 * metrics.c: classification, regression and ranking metrics (see us_metrics.h for the
 * definitions). Pure functions; the only allocation is the sort index of us_roc_auc.
 */
#include <math.h>
#include <stdlib.h>

#include "userseq/us_metrics.h"

typedef struct ScoreRef
{
	double		score;
	size_t		index;
} ScoreRef;

static int
score_ref_cmp(const void *a, const void *b)
{
	const ScoreRef *x = a;
	const ScoreRef *y = b;

	if (x->score < y->score)
		return -1;
	if (x->score > y->score)
		return 1;
	return (x->index > y->index) - (x->index < y->index);
}

us_status
us_roc_auc(const double *scores, const uint8_t *labels, const double *weights, size_t n,
		   const us_allocator *alloc, double *auc)
{
	ScoreRef   *refs;
	double		pos = 0.0,
				neg = 0.0,
				rank_sum = 0.0,
				cum_weight = 0.0;

	*auc = NAN;
	if (n == 0)
		return US_OK;
	if (n > SIZE_MAX / sizeof(ScoreRef))
		return US_ELIMIT;
	for (size_t i = 0; i < n; i++)
		if (isnan(scores[i]))
			return US_ENONFINITE;
	refs = alloc->alloc(alloc->ctx, n * sizeof(ScoreRef));
	if (!refs)
		return US_ENOMEM;
	for (size_t i = 0; i < n; i++)
	{
		refs[i].score = scores[i];
		refs[i].index = i;
	}
	qsort(refs, n, sizeof(ScoreRef), score_ref_cmp);

	/*
	 * Weighted Mann-Whitney: each tie group gets the average of the cumulative weight ranks it
	 * spans; AUC = (sum over positives of w * rank - W+ (W+ + 1)/2 adjusted) / (W+ W-), written
	 * in the weighted form: sum_pos w_i * (negatives below + half of negatives tied).
	 */
	for (size_t i = 0; i < n;)
	{
		size_t		j = i;
		double		tie_pos = 0.0,
					tie_neg = 0.0;

		while (j < n && refs[j].score == refs[i].score)
		{
			size_t		k = refs[j].index;
			double		w = weights ? weights[k] : 1.0;

			if (labels[k])
				tie_pos += w;
			else
				tie_neg += w;
			j++;
		}
		/* positives in this group beat all negatives below and tie with half of those here */
		rank_sum += tie_pos * (cum_weight + 0.5 * tie_neg);
		cum_weight += tie_neg;
		pos += tie_pos;
		neg += tie_neg;
		i = j;
	}
	alloc->free(alloc->ctx, refs);
	if (pos > 0.0 && neg > 0.0)
		*auc = rank_sum / (pos * neg);
	return US_OK;
}

void
us_binary_metrics_compute(const double *probs, const uint8_t *labels, const double *weights,
						  size_t n, double threshold, us_binary_metrics *m)
{
	double		loss = 0.0,
				total = 0.0;

	m->tp = m->fp = m->tn = m->fn = 0.0;
	for (size_t i = 0; i < n; i++)
	{
		double		w = weights ? weights[i] : 1.0;
		double		p = probs[i];
		int			predicted = p >= threshold;

		if (labels[i])
		{
			if (predicted)
				m->tp += w;
			else
				m->fn += w;
		}
		else
		{
			if (predicted)
				m->fp += w;
			else
				m->tn += w;
		}
		p = fmin(fmax(p, 1e-15), 1.0 - 1e-15);
		loss -= w * (labels[i] ? log(p) : log1p(-p));
		total += w;
	}
	m->accuracy = total > 0 ? (m->tp + m->tn) / total : NAN;
	m->precision = (m->tp + m->fp) > 0 ? m->tp / (m->tp + m->fp) : NAN;
	m->recall = (m->tp + m->fn) > 0 ? m->tp / (m->tp + m->fn) : NAN;
	m->f1 = (2 * m->tp + m->fp + m->fn) > 0 ? 2 * m->tp / (2 * m->tp + m->fp + m->fn) : NAN;
	m->log_loss = total > 0 ? loss / total : NAN;
}

void
us_regression_metrics_compute(const double *pred, const double *truth, const double *weights,
							  size_t n, us_regression_metrics *m)
{
	double		total = 0.0,
				mean = 0.0,
				sse = 0.0,
				sae = 0.0,
				sst = 0.0;

	for (size_t i = 0; i < n; i++)
	{
		double		w = weights ? weights[i] : 1.0;

		total += w;
		mean += w * truth[i];
	}
	if (total <= 0)
	{
		m->mse = m->rmse = m->mae = m->r2 = NAN;
		return;
	}
	mean /= total;
	for (size_t i = 0; i < n; i++)
	{
		double		w = weights ? weights[i] : 1.0;
		double		e = pred[i] - truth[i];

		sse += w * e * e;
		sae += w * fabs(e);
		sst += w * (truth[i] - mean) * (truth[i] - mean);
	}
	m->mse = sse / total;
	m->rmse = sqrt(m->mse);
	m->mae = sae / total;
	m->r2 = sst > 0 ? 1.0 - sse / sst : NAN;
}

int64_t
us_rank_of_target(const float *scores, size_t n, size_t target, const uint8_t *skip)
{
	float		t = scores[target];
	int64_t		rank = 1;

	/* a NaN target score ranks last; NaN candidates are ignored */
	if (isnan(t))
	{
		for (size_t i = 0; i < n; i++)
			if (i != target && !(skip && skip[i]))
				rank++;
		return rank;
	}
	for (size_t i = 0; i < n; i++)
		if (i != target && !(skip && skip[i]) && scores[i] >= t)
			rank++;
	return rank;
}

void
us_ranking_init(us_ranking_metrics *m, const int *cutoffs, int n_cutoffs)
{
	if (n_cutoffs > US_MAX_CUTOFFS)
		n_cutoffs = US_MAX_CUTOFFS;
	m->n_cutoffs = n_cutoffs;
	for (int i = 0; i < n_cutoffs; i++)
	{
		m->cutoffs[i] = cutoffs[i];
		m->hits[i] = 0.0;
		m->ndcg[i] = 0.0;
	}
	m->rr = 0.0;
	m->count = 0.0;
}

void
us_ranking_add(us_ranking_metrics *m, int64_t rank)
{
	for (int i = 0; i < m->n_cutoffs; i++)
	{
		if (rank <= m->cutoffs[i])
		{
			m->hits[i] += 1.0;
			m->ndcg[i] += 1.0 / log2((double) rank + 1.0);
		}
	}
	m->rr += 1.0 / (double) rank;
	m->count += 1.0;
}

void
us_ranking_result(const us_ranking_metrics *m, double *hr, double *ndcg, double *mrr)
{
	for (int i = 0; i < m->n_cutoffs; i++)
	{
		hr[i] = m->count > 0 ? m->hits[i] / m->count : NAN;
		ndcg[i] = m->count > 0 ? m->ndcg[i] / m->count : NAN;
	}
	*mrr = m->count > 0 ? m->rr / m->count : NAN;
}
