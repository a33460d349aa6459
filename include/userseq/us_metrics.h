/*
 * us_metrics.h: evaluation metrics shared by training (validation metric, early stopping) and
 * userseq_evaluate, so that every number with the same name is computed by the same code.
 * Definitions follow the PyTorch peer (test/bench/torch_textcnn.py): ROC AUC by the rank
 * (Mann-Whitney) formula with tie-averaged ranks; ranking ties count against the target.
 */
#ifndef USERSEQ_US_METRICS_H
#define USERSEQ_US_METRICS_H

#include <stddef.h>
#include <stdint.h>

#include "userseq/us_alloc.h"
#include "userseq/us_status.h"

/* Index of the largest of p[0..n-1] (n >= 1), ties by the lower index; NaN never wins over a
 * number before it. The prediction of every classifier output. */
int32_t		us_argmax(const float *p, int32_t n);
int32_t		us_argmax_double(const double *p, int32_t n);

/*
 * ROC AUC of scores against 0/1 labels (weights optional, NULL = 1). *auc = NaN when one
 * class is absent. O(n log n), allocates n indices through alloc.
 */
us_status	us_roc_auc(const double *scores, const uint8_t *labels, const double *weights, size_t n,
					   const us_allocator *alloc, double *auc);

/*
 * ROC curve points of scores against 0/1 labels (weights optional): one point per distinct
 * score, from the highest threshold down, plus the (0, 0) start at threshold +infinity.
 * Point i: predicting positive when score >= thresholds[i] gives tpr[i], fpr[i]. The three
 * arrays (room for n + 1 points) are allocated through alloc; *n_points gets their length.
 * tpr (fpr) is NaN when there are no positives (negatives).
 */
us_status	us_roc_curve(const double *scores, const uint8_t *labels, const double *weights,
						 size_t n, const us_allocator *alloc, double **thresholds, double **tpr,
						 double **fpr, size_t *n_points);

/*
 * Multiclass metrics from probabilities probs (n, n_classes) and labels in 0..n_classes-1
 * (a label < 0 or >= n_classes is an unknown class: always wrong, probability 0 for the log
 * loss). Prediction = argmax (ties by lower class). precision / recall / f1 are macro
 * averages over the classes that occur in labels or predictions; log loss clips p to
 * [1e-15, 1].
 */
typedef struct us_multiclass_metrics
{
	double		accuracy, precision, recall, f1, log_loss;
} us_multiclass_metrics;

us_status	us_multiclass_metrics_compute(const double *probs, const int32_t *labels,
										  const double *weights, size_t n, int32_t n_classes,
										  const us_allocator *alloc, us_multiclass_metrics *m);

/* Binary metrics at a threshold on probabilities; log loss clips p to [1e-15, 1 - 1e-15]. */
typedef struct us_binary_metrics
{
	double		tp, fp, tn, fn;		/* weighted counts */
	double		accuracy, precision, recall, f1, log_loss;
} us_binary_metrics;

void		us_binary_metrics_compute(const double *probs, const uint8_t *labels,
									  const double *weights, size_t n, double threshold,
									  us_binary_metrics *m);

typedef struct us_regression_metrics
{
	double		mse, rmse, mae, r2;
} us_regression_metrics;

void		us_regression_metrics_compute(const double *pred, const double *truth,
										  const double *weights, size_t n,
										  us_regression_metrics *m);

/*
 * Rank of target among candidates: 1 + number of other candidates whose score is >= the
 * target's (ties count against the target, so a constant scorer ranks last, not first).
 * Candidates are scores[0..n-1]; skip (may be NULL) marks candidates excluded from ranking.
 */
int64_t		us_rank_of_target(const float *scores, size_t n, size_t target, const uint8_t *skip);

/* Accumulates HR@K, NDCG@K (K in ks) and MRR over ranks. */
#define US_MAX_CUTOFFS 8
typedef struct us_ranking_metrics
{
	int			n_cutoffs;
	int			cutoffs[US_MAX_CUTOFFS];
	double		hits[US_MAX_CUTOFFS];	/* sums, divide by count */
	double		ndcg[US_MAX_CUTOFFS];
	double		rr;
	double		count;
} us_ranking_metrics;

void		us_ranking_init(us_ranking_metrics *m, const int *cutoffs, int n_cutoffs);
void		us_ranking_add(us_ranking_metrics *m, int64_t rank);
/* Mean values: hr[i], ndcg[i] for cutoffs[i], mrr. NaN when count == 0. */
void		us_ranking_result(const us_ranking_metrics *m, double *hr, double *ndcg, double *mrr);

#endif
