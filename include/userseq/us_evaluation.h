/*
 * us_evaluation.h: how a model's figures are measured and what they are read against, in the
 * core so that training (validation per epoch), userseq_evaluate and the unit tests compute
 * them with the same code:
 *   - the task's main metric and the per-task validation metrics training reports;
 *   - the baselines: popularity and first-order markov transitions (next_item), behaviour
 *     prior and behaviour markov (next_behavior), and the label prior (binary / regression).
 * Metric definitions themselves (AUC, ranks, ...) are us_metrics.h.
 */
#ifndef USERSEQ_US_EVALUATION_H
#define USERSEQ_US_EVALUATION_H

#include <stddef.h>
#include <stdint.h>

#include "userseq/us_alloc.h"
#include "userseq/us_metrics.h"
#include "userseq/us_model.h"
#include "userseq/us_status.h"

/* ------------------------------------------------------------------ validation */

/* The metric training validates, early-stops and deploys on: binary "roc_auc", regression
 * "rmse", next_item "ndcg@10", multiclass / next_behavior "accuracy". */
const char *us_task_metric_name(int32_t task);
/* 1 unless lower is better (regression's rmse). */
int			us_task_higher_is_better(int32_t task);

#define US_MAX_VALIDATION_VALUES 8

/*
 * Validation figures of a model on a dataset. values[0] is always the main metric (named by
 * us_task_metric_name); the others follow in a fixed order per task:
 *   binary       roc_auc, accuracy, precision, recall, f1, log_loss (threshold 0.5, weighted)
 *   regression   rmse, mse, mae, r2 (weighted)
 *   next_item    ndcg@10, hr@1, hr@5, hr@10, hr@20, ndcg@5, ndcg@20, mrr over the full
 *                catalogue (padding and out-of-vocabulary rows never ranked); a target
 *                outside the vocabulary counts as rank n_outputs
 *   multiclass / next_behavior   accuracy (argmax over every output, weighted)
 */
typedef struct us_validation
{
	double		loss;			/* mean over sequences of us_model_predict's batch losses */
	double		metric;			/* = values[0] */
	int			n_values;
	const char *names[US_MAX_VALIDATION_VALUES];
	double		values[US_MAX_VALIDATION_VALUES];
} us_validation;

/*
 * Runs us_model_predict over seq_ids[0..n-1] of data, chunk sequences at a time into out
 * (room for chunk * n_outputs floats), and computes the validation figures. The dataset needs
 * the targets of its task (targets for binary / regression, classes otherwise).
 */
us_status	us_model_validate(const us_model *model, const us_dataset *data,
							  const int32_t *seq_ids, int32_t n, int32_t chunk, float *out,
							  const us_allocator *alloc, const us_progress *progress,
							  us_validation *v);

/* ------------------------------------------------------------------ baselines */

/* Weighted mean of targets[0..n-1] (weights may be NULL): the constant "prior" of binary
 * (positive rate) and regression (label mean) models. NaN when the total weight is not > 0. */
double		us_label_mean(const float *targets, const float *weights, int32_t n);

/* Popularity scores of every item row: the training count of the item, 0 for the padding and
 * out-of-vocabulary rows. scores has room for n_rows (= cfg.n_items). */
void		us_popularity_scores(const us_vocab *vocab, int32_t n_rows, float *scores);

/*
 * Rank of each target row under popularity, ties against the target (as us_rank_of_target on
 * us_popularity_scores, counted exactly on the integer counts): ranks[i] = number of known
 * items whose count is >= the target's, or -1 when targets[i] is not a known item row.
 * O((V + n) log V); allocates V counts.
 */
us_status	us_popularity_ranks(const us_vocab *vocab, const int32_t *targets, size_t n,
								const us_allocator *alloc, int64_t *ranks);

/*
 * First-order item-to-item transitions ("markov" baseline of next_item): the pairs
 * (a, b) of consecutive known items counted over some histories, as a table by source row.
 * Scores of a history = popularity scaled below 1 (so it only breaks ties) plus the count of
 * each transition from the history's last item.
 */
typedef struct us_item_markov
{
	int32_t		n_rows;
	int64_t    *start;			/* (n_rows + 1) transitions of row a: start[a] .. start[a+1]-1 */
	int32_t    *to;
	float	   *count;
	float	   *base;			/* (n_rows) popularity / (max popularity + 1) */
} us_item_markov;

/* Appends to pairs the transitions between consecutive known items of items[0..n-1] as
 * (a << 32 | b); pairs needs room for n - 1. Returns how many were appended. */
int64_t		us_item_pairs(const int32_t *items, int32_t n, uint64_t *pairs);
/* Builds the table of n_rows item rows from pairs (sorted in place) and the training counts
 * of vocab (us_popularity_scores). */
us_status	us_item_markov_build(uint64_t *pairs, int64_t n_pairs, int32_t n_rows,
								 const us_vocab *vocab, const us_allocator *alloc,
								 us_item_markov *m);
/* scores (n_rows) of a history whose last event is item row last (any row; padding and
 * out-of-vocabulary rows have no transitions). */
void		us_item_markov_scores(const us_item_markov *m, int32_t last, float *scores);
void		us_item_markov_free(us_item_markov *m, const us_allocator *alloc);

/*
 * Behaviour counts behind the next_behavior baselines: frequencies of the known behaviours
 * (class c = behaviour row US_ROW_FIRST + c, c < n_classes) and first-order transitions
 * between consecutive known behaviours, over the input events of the evaluated sequences.
 */
typedef struct us_behavior_counts
{
	int32_t		n_classes;
	double	   *freq;			/* (n_classes) */
	double	   *trans;			/* (n_classes, n_classes) from, to */
} us_behavior_counts;

us_status	us_behavior_counts_init(us_behavior_counts *c, int32_t n_classes,
									const us_allocator *alloc);
/* Counts the behaviour rows rows[0..n-1] of one history (unknown rows break the chain).
 * Returns the class of the last event when it is a known behaviour, else -1. */
int32_t		us_behavior_counts_add(us_behavior_counts *c, const int32_t *rows, int32_t n);
/* 'prior': add-one smoothed frequencies, p (n_classes). */
void		us_behavior_prior(const us_behavior_counts *c, double *p);
/* 'markov': add-one smoothed transitions from class last; the prior when last < 0. */
void		us_behavior_markov(const us_behavior_counts *c, int32_t last, double *p);
void		us_behavior_counts_free(us_behavior_counts *c, const us_allocator *alloc);

#endif
