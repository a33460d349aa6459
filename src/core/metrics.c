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

int32_t
us_argmax(const float *p, int32_t n)
{
	int32_t		best = 0;

	for (int32_t i = 1; i < n; i++)
		if (p[i] > p[best])
			best = i;
	return best;
}

int32_t
us_argmax_double(const double *p, int32_t n)
{
	int32_t		best = 0;

	for (int32_t i = 1; i < n; i++)
		if (p[i] > p[best])
			best = i;
	return best;
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

us_status
us_roc_curve(const double *scores, const uint8_t *labels, const double *weights, size_t n,
			 const us_allocator *alloc, double **thresholds, double **tpr, double **fpr,
			 size_t *n_points)
{
	ScoreRef   *refs;
	double		pos = 0.0,
				neg = 0.0,
				tp = 0.0,
				fp = 0.0;
	size_t		np = 0;
	double	   *th,
			   *tr,
			   *fr;

	*thresholds = *tpr = *fpr = NULL;
	*n_points = 0;
	if (n >= SIZE_MAX / sizeof(ScoreRef) - 1)
		return US_ELIMIT;
	for (size_t i = 0; i < n; i++)
	{
		double		w = weights ? weights[i] : 1.0;

		if (isnan(scores[i]))
			return US_ENONFINITE;
		if (labels[i])
			pos += w;
		else
			neg += w;
	}
	refs = alloc->alloc(alloc->ctx, (n ? n : 1) * sizeof(ScoreRef));
	th = alloc->alloc(alloc->ctx, (n + 1) * sizeof(double));
	tr = alloc->alloc(alloc->ctx, (n + 1) * sizeof(double));
	fr = alloc->alloc(alloc->ctx, (n + 1) * sizeof(double));
	if (!refs || !th || !tr || !fr)
	{
		if (refs)
			alloc->free(alloc->ctx, refs);
		if (th)
			alloc->free(alloc->ctx, th);
		if (tr)
			alloc->free(alloc->ctx, tr);
		if (fr)
			alloc->free(alloc->ctx, fr);
		return US_ENOMEM;
	}
	for (size_t i = 0; i < n; i++)
	{
		refs[i].score = scores[i];
		refs[i].index = i;
	}
	qsort(refs, n, sizeof(ScoreRef), score_ref_cmp);

	th[0] = INFINITY;
	tr[0] = pos > 0 ? 0.0 : NAN;
	fr[0] = neg > 0 ? 0.0 : NAN;
	np = 1;
	/* walk from the highest score down; a tie group moves the point in one step */
	for (size_t j = n; j > 0;)
	{
		size_t		i = j;
		double		s = refs[j - 1].score;

		while (i > 0 && refs[i - 1].score == s)
		{
			size_t		k = refs[i - 1].index;
			double		w = weights ? weights[k] : 1.0;

			if (labels[k])
				tp += w;
			else
				fp += w;
			i--;
		}
		th[np] = s;
		tr[np] = pos > 0 ? tp / pos : NAN;
		fr[np] = neg > 0 ? fp / neg : NAN;
		np++;
		j = i;
	}
	alloc->free(alloc->ctx, refs);
	*thresholds = th;
	*tpr = tr;
	*fpr = fr;
	*n_points = np;
	return US_OK;
}

us_status
us_multiclass_metrics_compute(const double *probs, const int32_t *labels, const double *weights,
							  size_t n, int32_t n_classes, const us_allocator *alloc,
							  us_multiclass_metrics *m)
{
	double	   *tp,
			   *pred_w,
			   *true_w;
	double		total = 0.0,
				correct = 0.0,
				loss = 0.0,
				sp = 0.0,
				sr = 0.0,
				sf = 0.0;
	int32_t		present = 0;

	m->accuracy = m->precision = m->recall = m->f1 = m->log_loss = NAN;
	if (n_classes <= 0)
		return US_EINVAL;
	if ((size_t) n_classes > SIZE_MAX / (3 * sizeof(double)))
		return US_ELIMIT;
	tp = alloc->alloc(alloc->ctx, 3 * (size_t) n_classes * sizeof(double));
	if (!tp)
		return US_ENOMEM;
	pred_w = tp + n_classes;
	true_w = pred_w + n_classes;
	for (int32_t c = 0; c < 3 * n_classes; c++)
		tp[c] = 0.0;

	for (size_t i = 0; i < n; i++)
	{
		const double *p = probs + i * (size_t) n_classes;
		double		w = weights ? weights[i] : 1.0;
		int32_t		best = us_argmax_double(p, n_classes);
		int32_t		y = labels[i];
		double		py;

		pred_w[best] += w;
		total += w;
		if (y >= 0 && y < n_classes)
		{
			true_w[y] += w;
			if (best == y)
			{
				tp[y] += w;
				correct += w;
			}
			py = p[y];
		}
		else
			py = 0.0;
		py = fmin(fmax(py, 1e-15), 1.0);
		loss -= w * log(py);
	}
	for (int32_t c = 0; c < n_classes; c++)
	{
		double		prec,
					rec;

		if (pred_w[c] == 0.0 && true_w[c] == 0.0)
			continue;
		prec = pred_w[c] > 0 ? tp[c] / pred_w[c] : 0.0;
		rec = true_w[c] > 0 ? tp[c] / true_w[c] : 0.0;
		sp += prec;
		sr += rec;
		sf += (prec + rec) > 0 ? 2 * prec * rec / (prec + rec) : 0.0;
		present++;
	}
	alloc->free(alloc->ctx, tp);
	if (total > 0)
	{
		m->accuracy = correct / total;
		m->log_loss = loss / total;
	}
	if (present > 0)
	{
		m->precision = sp / present;
		m->recall = sr / present;
		m->f1 = sf / present;
	}
	return US_OK;
}
