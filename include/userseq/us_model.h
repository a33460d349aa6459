/*
 * us_model.h: the userseq text-CNN: configuration, vocabulary, parameters, training, scoring.
 *
 * Architecture (one sequence of n events, most recent max_len kept):
 *   x_t = item_emb[item_t] (+ behavior_emb[beh_t]) (+ gap_emb[gap_t])        (n, E)
 *   for each width k: c_k = conv1d(x, W_k) + b_k over the valid windows      (n-k+1, F)
 *       (a sequence shorter than k has one window: its events then zero vectors)
 *   p_k = relu(max over windows of c_k)                                      (F)
 *   r   = x_{n-R} .. x_{n-1} concatenated, zeros before the start            (R*E)  recent window
 *   z   = [p_1 .. p_W, r]                                                    (D = W*F + R*E)
 *   h   = dropout(relu(z @ dense_w + dense_b))                               (H)
 *   y   = h @ out_w + out_b   (tied next_item head: h @ item_emb^T + out_b)  (n_outputs)
 * Heads: binary sigmoid + weighted BCE, multiclass / next_behavior softmax + CE, regression
 * linear + MSE, next_item softmax + CE over item rows (full, or sampled negatives in training).
 * next_item / next_behavior train on every prefix: events 0..t-1 predict event t.
 *
 * Rows: item row US_ROW_PAD (0) is padding, US_ROW_OOV (1) is out-of-vocabulary, vocabulary
 * item i is row US_ROW_FIRST + i; the same holds for behaviour rows and for the outputs of
 * next_item / next_behavior models. Gap bucket 0 is padding (see us_gap_bucket).
 *
 * Memory: everything through the us_allocator given at creation, always on the caller's thread.
 * Threads: scoring and us_model_predict run none of ours (BLAS may use its own, set by the
 * caller). A trainer with us_train_config.n_threads = T > 1 runs T - 1 worker threads of its
 * own (created by us_trainer_create with all signals blocked, joined by us_trainer_free) that
 * never allocate nor call the progress callback; the caller must then set BLAS to 1 thread, or
 * T threads each start BLAS threads. Determinism: same seed, data, n_threads and BLAS thread
 * count give bit-identical weights.
 */
#ifndef USERSEQ_US_MODEL_H
#define USERSEQ_US_MODEL_H

#include <stddef.h>
#include <stdint.h>

#include "userseq/us_alloc.h"
#include "userseq/us_status.h"

/* Documented limits; the decoder and config validation enforce them. */
#define US_MAX_WIDTHS		8			/* number of parallel convolution widths */
#define US_MAX_FILTER_WIDTH	16			/* widest convolution */
#define US_MAX_EMBED_DIM	1024
#define US_MAX_FILTERS		1024		/* filters per width */
#define US_MAX_HIDDEN		4096
#define US_MAX_LEN			10000		/* events kept per sequence */
#define US_MAX_ITEMS		(1 << 24)	/* item rows */
#define US_MAX_BEHAVIORS	1024		/* behaviour rows */
#define US_MAX_CLASSES		65536		/* multiclass outputs */
#define US_MAX_RECENT		32			/* recent-window events */
#define US_MAX_GAP_BUCKETS	64
#define US_MAX_LABEL_BYTES	255			/* behaviour / class label length */
/*
 * Largest weight magnitude a model may hold (the decoder rejects larger ones with US_ERANGE),
 * chosen so that no model within the limits above can compute a non-finite activation or
 * score. With every |w| <= B = 1e6: |x| <= 3B (three embeddings), a convolution <= B +
 * 16 * 1024 * B * 3B ~ 4.9e16, a dense unit <= B + (8 * 1024 + 32 * 1024) * B * 4.9e16
 * ~ 2.0e27, an output logit <= B + 4096 * B * 2.0e27 ~ 8.2e36 < FLT_MAX = 3.4e38 (41x
 * margin, which also covers float rounding of the sums); sigmoid and softmax of finite
 * logits are finite. The sasrec encoder stays inside these bounds: its final layer norm gives
 * |z| <= sqrt(E) B + B (a variance that overflows makes 1/std 0, never NaN), below the
 * convolution bound. Trained weights are orders of magnitude smaller.
 */
#define US_MAX_ABS_WEIGHT	1.0e6f

/* Rows of the item and behaviour tables, and outputs of next_item / next_behavior models. */
#define US_ROW_PAD			0			/* padding: no event (kept zero) */
#define US_ROW_OOV			1			/* out of vocabulary: an item or label the model never saw */
#define US_ROW_FIRST		2			/* vocabulary entry i has row US_ROW_FIRST + i */

#define US_MAX_BLOCKS		8			/* self-attention blocks (architecture sasrec) */
#define US_MAX_HEADS		16			/* attention heads per block */

/* Sequence encoder producing the feature vector z. */
typedef enum us_architecture
{
	US_ARCH_TEXTCNN = 0,		/* convolutions + max-pool (+ recent window), as drawn above */
	US_ARCH_SASREC = 1			/* causal self-attention blocks read at the last position:
								 * z = encoder(x)_{n-1}, D = E; see src/core/us_attn.h */
} us_architecture;

typedef enum us_task
{
	US_TASK_BINARY = 1,
	US_TASK_MULTICLASS = 2,
	US_TASK_REGRESSION = 3,
	US_TASK_NEXT_ITEM = 4,
	US_TASK_NEXT_BEHAVIOR = 5
} us_task;

#define US_N_TASKS			5

/* "binary", "multiclass", ... ("unknown" for anything else), and the inverse (0 if unknown). */
const char *us_task_name(int32_t task);
us_task		us_task_from_name(const char *name);
/* 1 for next_item and next_behavior: every prefix of a sequence predicts its next event. */
int			us_task_is_next(int32_t task);

/* Hyperparameters that define the model function; stored in the model bytes. */
typedef struct us_model_config
{
	int32_t		task;			/* us_task */
	int32_t		n_items;		/* item rows = US_ROW_FIRST + vocab.n_items */
	int32_t		n_behaviors;	/* behaviour rows = US_ROW_FIRST + vocab.n_behaviors, or 0: no
								 * behaviour input */
	int32_t		n_gap_buckets;	/* 0: no time-gap input */
	int32_t		n_outputs;		/* binary, regression 1; multiclass n_classes; next_item n_items;
								 * next_behavior n_behaviors */
	int32_t		max_len;		/* most recent events kept */
	int32_t		embed_dim;		/* E */
	int32_t		n_widths;
	int32_t		widths[US_MAX_WIDTHS];	/* ascending, 1..US_MAX_FILTER_WIDTH */
	int32_t		n_filters;		/* F per width */
	int32_t		hidden_dim;		/* H */
	int32_t		recent_window;	/* R, 0..US_MAX_RECENT */
	int32_t		tie_output;		/* next_item only, needs H == E */
	float		dropout;		/* after the dense layer, training only, [0, 1) */
	float		pos_weight;		/* binary: weight of positive examples in the loss, > 0 */
	int32_t		architecture;	/* us_architecture; sasrec has n_widths = n_filters =
								 * recent_window = 0 */
	int32_t		n_blocks;		/* sasrec: 1..US_MAX_BLOCKS; text-CNN 0 */
	int32_t		n_heads;		/* sasrec: 1..US_MAX_HEADS, divides embed_dim; text-CNN 0 */
	/* Creation and training only, not stored in the model bytes (a decoded model has 0): */
	float		embed_init_std;	/* embedding rows start N(0, embed_init_std), (0, 10]; 0 = 1 */
	float		embed_dropout;	/* training: each step zeroes every coordinate of the input item
								 * rows with this probability, [0, 1) (one mask per row and step,
								 * the same for every occurrence; the tied output is not dropped) */
} us_model_config;

/* Fills the defaults of task from the table of option defaults (us_defaults.h): the shape and
 * regularisation userseq_train uses when no option is given. */
void		us_model_config_default(us_model_config *cfg, us_task task);

/* Checks every field against the limits; msg gets a human sentence on failure. */
us_status	us_model_config_validate(const us_model_config *cfg, char *msg, size_t msglen);

/* Vocabulary carried inside the model. */
typedef struct us_vocab
{
	int32_t		n_items;		/* known items; item_ids[i] has row US_ROW_FIRST + i */
	int64_t    *item_ids;		/* (n_items) strictly ascending */
	uint32_t   *item_counts;	/* (n_items) occurrences in the training data (popularity) */
	int32_t		n_behaviors;	/* known behaviour labels; behaviors[i] has row US_ROW_FIRST + i */
	char	  **behaviors;		/* (n_behaviors) NUL-terminated, distinct */
	int32_t		n_classes;		/* multiclass: classes[i] names output i; otherwise 0 */
	char	  **classes;
} us_vocab;

/* Row of an item id: US_ROW_FIRST + index when known, US_ROW_OOV otherwise. O(log n). */
int32_t		us_vocab_item_row(const us_vocab *vocab, int64_t item_id);
/* Row of a behaviour label of len bytes: US_ROW_FIRST + index when known, else US_ROW_OOV. */
int32_t		us_vocab_behavior_row(const us_vocab *vocab, const char *label, size_t len);

/*
 * Builds the item part of a vocabulary from all training occurrences: items seen at least
 * min_count times, at most max_items of them (most frequent first, ties by smaller id; 0 = no
 * cap). ids is not modified. Fills vocab->n_items, item_ids, item_counts.
 */
us_status	us_vocab_build_items(us_vocab *vocab, const int64_t *ids, size_t n_ids,
								 int32_t min_count, int32_t max_items,
								 const us_allocator *alloc);

/* Time-gap bucket of an event: 1 for a first event, else 2 + floor(log2(1 + gap seconds)),
 * capped at n_buckets - 1; negative gaps count as 0. */
int32_t		us_gap_bucket(int first, double gap_seconds, int32_t n_buckets);

/* Parameter tensors: views into one flat block (llm.c style). */
typedef struct us_params
{
	float	   *item_emb;		/* (n_items, E) row 0 kept zero */
	float	   *behavior_emb;	/* (n_behaviors, E) row 0 kept zero, or NULL */
	float	   *gap_emb;		/* (n_gap_buckets, E) row 0 kept zero, or NULL */
	float	   *conv_w[US_MAX_WIDTHS];	/* (k, E, F): tap j, input channel e, filter f */
	float	   *conv_b[US_MAX_WIDTHS];	/* (F) */
	float	   *dense_w;		/* (D, H) */
	float	   *dense_b;		/* (H) */
	float	   *out_w;			/* (H, n_outputs), NULL when tied */
	float	   *out_b;			/* (n_outputs) */
	float	   *encoder;		/* sasrec: the encoder region (us_attn.h), else NULL */
} us_params;

/*
 * First-order transition prior of a next_item model (FPMC-like, fitted by counting): the
 * transitions (a -> b) between consecutive known items of the training sequences, kept per
 * source row a as its at most US_TRANS_MAX_PER_ROW most frequent successors. At inference
 * every next_item logit of a history whose last event is item row a becomes
 *     logit_b + weight * log(1 + count(a -> b))
 * (a log-linear blend: p(b) proportional to p_net(b) * (1 + count)^weight). weight is chosen
 * on the validation split after training (us_model_fit_transition_weight); 0, or no table,
 * means the network alone. Training itself never sees the prior.
 *
 * Repeat prior (personal frequency; no table): every item row b that occurs c > 0 times among
 * the history's kept events (the last max_len, what the network reads) gets
 *     + repeat_weight * log(1 + c)
 * on top, after the transition term. On basket data most next items are repeat purchases
 * (42 % of Online Retail's test targets), which a per-item embedding cannot tell from other
 * items of the same taste; repeat_weight is fitted with weight (us_model_fit_prior).
 */
#define US_TRANS_MAX_PER_ROW 64

typedef struct us_transitions
{
	float		weight;			/* >= 0; 0 = off */
	float		repeat_weight;	/* repeat prior, >= 0; 0 = off; needs no table */
	int32_t		n_src;			/* source rows with at least one successor */
	int64_t		nnz;			/* transitions kept */
	int32_t    *src;			/* (n_src) ascending source rows */
	int64_t    *start;			/* (n_src + 1) successors of src[i]: start[i] .. start[i+1]-1 */
	int32_t    *to;				/* (nnz) ascending rows within a source */
	uint32_t   *count;			/* (nnz) >= 1 */
	float	   *logc;			/* (nnz) log(1 + count), derived */
} us_transitions;

typedef struct us_model
{
	us_model_config cfg;
	us_vocab	vocab;
	size_t		n_params;		/* floats in params_block */
	float	   *params_block;
	us_params	p;
	us_allocator alloc;
	int32_t		quantized;		/* 1: weights lie on the int8 grid (us_model_quantize); encoded
								 * as format version 4 (version 2 before it), decoded back to
								 * these floats */
	us_transitions trans;		/* next_item only; all zero when absent */
} us_model;

/* ------------------------------------------------------------------ transition prior */

typedef struct us_dataset us_dataset;

/*
 * Builds model->trans from the consecutive known items of seq_ids[0..n-1] of data (the
 * training sequences), replacing any table; weight is set to 0 (off). next_item only
 * (US_EINVAL otherwise). Memory: about 16 bytes a kept transition.
 */
us_status	us_transitions_build(us_model *model, const us_dataset *data, const int32_t *seq_ids,
								 int32_t n);
/* Validates and adopts a table (decoder, image): sources ascending and < n_rows, successors
 * ascending per source, >= US_ROW_FIRST and < n_rows, counts >= 1, at most
 * US_TRANS_MAX_PER_ROW per source, weight finite in [0, 1000]; fills logc. Returns US_EFORMAT
 * when any of it fails. Takes no ownership; logc must have room for nnz. */
us_status	us_transitions_check(us_transitions *t, int32_t n_rows);
void		us_transitions_free(us_transitions *t, const us_allocator *alloc);
us_status	us_transitions_copy(us_transitions *dst, const us_transitions *src,
								const us_allocator *alloc);
/* 1 when the model's transition prior changes scores (a table and weight > 0). */
int			us_transitions_active(const us_model *model);
/* 1 when the repeat prior changes scores (next_item, repeat_weight > 0). */
int			us_repeat_active(const us_model *model);
/* 1 when either prior changes scores. */
int			us_prior_active(const us_model *model);
/* The successors of source row a: *n of them at (*to, *logc); *n = 0 when none. */
void		us_transitions_row(const us_model *model, int32_t a, const int32_t **to,
							   const float **logc, int32_t *n);
/* logits (n_outputs) += the prior of a history whose last item row is last (any row). */
void		us_transitions_add(const us_model *model, int32_t last, float *logits);
/* The prior's term for item row b after last (0 when none). */
float		us_transitions_term(const us_model *model, int32_t last, int32_t b);

/*
 * Both priors of a history hist[0..n-1] of item rows (the caller's whole sequence; the repeat
 * prior counts its last max_len events): logits (n_outputs) += the transition term of the last
 * event, then += the repeat term of every distinct row. scratch: room for min(n, max_len)
 * int32 (unused, may be NULL, when !us_repeat_active).
 */
void		us_prior_add(const us_model *model, const int32_t *hist, int32_t n, float *logits,
						 int32_t *scratch);
/* (net + transition term) + repeat term of row b: bit-identical to us_prior_add's logit. */
float		us_prior_logit(const us_model *model, const int32_t *hist, int32_t n, int32_t b,
						   float net);
/* The repeat term of row b for hist (0 when b does not occur or the prior is off). */
float		us_repeat_term(const us_model *model, const int32_t *hist, int32_t n, int32_t b);

/*
 * Chooses model->trans.weight on the validation sequences seq_ids[0..n-1] of data (next
 * events in data->classes): the network's logits are computed once, then every weight of
 * grid[0..n_grid-1] is scored by the full-catalogue NDCG@10 (the next_item validation
 * metric); the best wins, ties to the smaller weight. grid must contain 0 to allow "off".
 * own_in_table: the validation histories are part of the sequences the table was built from
 * (leave-one-out and time validation: the input is the user's training sequence); each
 * history's own transitions are then taken out of the counts while fitting, so that the
 * weight is the one that serves a history the table has not seen (a held-out customer),
 * not one that rewards finding the user's own past in the counts. 0 for held-out histories.
 * metrics (may be NULL) gets n_grid values. Needs a table (us_transitions_build).
 */
us_status	us_model_fit_transition_weight(us_model *model, const us_dataset *data,
										   const int32_t *seq_ids, int32_t n, int own_in_table,
										   const double *grid, int n_grid,
										   const us_progress *progress, double *metrics);
/*
 * Both weights at once: every pair (grid[g], rgrid[q]) is scored by full-catalogue NDCG@10 on
 * the validation sequences and the best wins (ties to the smaller repeat weight, then the
 * smaller transition weight); own_in_table as above. Ranks past 10 are not resolved (NDCG@10
 * needs none), so the cost is one pass over the logits per sequence whatever the grid.
 * metrics (may be NULL) gets n_grid x n_rgrid values, metrics[g * n_rgrid + q]. Without a
 * table grid must be {0} (only the repeat weight is fitted). Sets weight and repeat_weight.
 */
us_status	us_model_fit_prior(us_model *model, const us_dataset *data, const int32_t *seq_ids,
							   int32_t n, int own_in_table, const double *grid, int n_grid,
							   const double *rgrid, int n_rgrid, const us_progress *progress,
							   double *metrics);
/* Sequences whose logits the weight fit holds at once (up to 256, within about 32 MB). */
int32_t		us_transition_fit_chunk(int32_t n_outputs);
/* The default grid of userseq_train: 0, 0.25, 0.5, 1, 2, 4, 8, 16, 32 (32: the counts decide,
 * the network ranks within equal counts and below them). */
extern const double us_transition_weight_grid[];
extern const int us_transition_weight_grid_n;

/*
 * The outputs that name a class, [*first, *first + *count): multiclass every output (class i
 * is vocab.classes[i]), next_behavior the rows of known behaviours (behaviour i is output
 * US_ROW_FIRST + i; padding and out-of-vocabulary rows name none); binary and regression the
 * single output.
 */
void		us_model_class_range(const us_model *model, int32_t *first, int32_t *count);

/* Width of z, the pooled + recent feature vector ("embedding" of a sequence). */
int32_t		us_model_feature_dim(const us_model_config *cfg);

/*
 * Creates a model with seeded random weights (PyTorch-like uniform init from an explicit
 * RNG). cfg is validated; vocab is deep-copied and must agree with cfg (n_items etc.).
 */
us_status	us_model_create(const us_model_config *cfg, const us_vocab *vocab, uint64_t seed,
							const us_allocator *alloc, us_model **out);
void		us_model_free(us_model *model);
/* Deep copy (for keeping the best epoch during early stopping). */
us_status	us_model_clone(const us_model *src, const us_allocator *alloc, us_model **out);
/* Copies weights of a model with the same shape (restoring the best epoch). */
us_status	us_model_copy_weights(us_model *dst, const us_model *src);
/* US_ENONFINITE if any weight is NaN or infinite. */
us_status	us_model_check_finite(const us_model *model);
/* us_model_check_finite, then US_ERANGE if any |weight| > US_MAX_ABS_WEIGHT (what decode requires). */
us_status	us_model_check_weights(const us_model *model);

/* One sequence as row indices, oldest first. behaviors / gaps may be NULL (treated as row 0). */
typedef struct us_events
{
	const int32_t *items;
	const int32_t *behaviors;
	const int32_t *gaps;
	int32_t		n;
} us_events;

/*
 * A training or evaluation set in compact form. Sequence s covers events
 * offsets[s] .. offsets[s+1]-1 (oldest first; the core keeps the most recent max_len).
 *   binary:      targets[s] in {0, 1}
 *   regression:  targets[s]
 *   multiclass:  classes[s] in 0..n_outputs-1
 *   next_item / next_behavior, training: targets/classes unused, every prefix predicts its
 *     next event; evaluation (us_model_predict): classes[s] is the row of the event that
 *     follows the sequence, or classes == NULL for no loss.
 * weights[s] (optional) multiplies the example's loss.
 */
typedef struct us_dataset
{
	int32_t		n_seqs;
	const int64_t *offsets;		/* (n_seqs + 1) */
	const int32_t *items;		/* (n_events) rows */
	const int32_t *behaviors;	/* (n_events) rows, or NULL */
	const int32_t *gaps;		/* (n_events) buckets, or NULL */
	const float *targets;		/* (n_seqs) or NULL */
	const int32_t *classes;		/* (n_seqs) or NULL */
	const float *weights;		/* (n_seqs) or NULL */
} us_dataset;

/*
 * Batched evaluation-mode forward over the sequences seq_ids[0..n-1] of a dataset.
 * out (n, n_outputs): binary probability, regression value, multiclass / next_behavior
 * probabilities, next_item logits per item row (rows 0 and 1 included). features (n, D) may be
 * NULL. loss (may be NULL) gets the mean weighted loss when targets/classes are present.
 * next_item logits include the transition prior when it is active; the loss is the
 * network's alone (the prior is fitted after training).
 */
us_status	us_model_predict(const us_model *model, const us_dataset *data,
							 const int32_t *seq_ids, int32_t n, float *out, float *features,
							 double *loss, const us_progress *progress);

/* ------------------------------------------------------------------ training */

typedef enum us_optimizer
{
	US_OPT_ADAM = 1,
	US_OPT_ADAMW = 2,
	US_OPT_SGD = 3				/* with momentum */
} us_optimizer;

typedef enum us_lr_schedule
{
	US_LR_CONSTANT = 1,
	US_LR_STEP = 2,				/* lr * gamma^(epoch / step_epochs) */
	US_LR_COSINE = 3			/* lr * (1 + cos(pi * epoch / epochs)) / 2 */
} us_lr_schedule;

typedef struct us_train_config
{
	int32_t		optimizer;		/* us_optimizer */
	float		learning_rate;
	float		beta1, beta2, epsilon;	/* Adam(W) */
	float		momentum;		/* SGD */
	float		weight_decay;	/* L2 for Adam/SGD (touched embedding rows only), decoupled for
								 * AdamW (exact on every embedding row: a lazily skipped row gets
								 * its pending decay when next touched and at each epoch end) */
	float		clip_norm;		/* global gradient-norm clip, 0 = off */
	int32_t		lr_schedule;	/* us_lr_schedule */
	int32_t		lr_step_epochs;
	float		lr_gamma;
	int32_t		epochs;			/* for the cosine schedule */
	int32_t		batch_size;		/* sequences per step, or examples (batch_examples) */
	int32_t		batch_examples;	/* 1: batch_size counts training examples (prefix tasks: the
								 * prefixes, one per event after the first): whole sequences in
								 * shuffled order fill a step while they fit, at least one per
								 * step; 0: batch_size sequences per step */
	int32_t		n_negatives;	/* next_item: sampled softmax negatives per step, 0 = full */
	int32_t		max_examples_per_seq;	/* next_*: last C prefixes per sequence, 0 = all */
	uint64_t	seed;			/* shuffling, dropout, negatives */
	int32_t		n_threads;		/* 1..64: threads per step (the caller's + n_threads - 1 workers);
								 * each runs forward + backward for a contiguous slice of the
								 * batch, gradients are reduced in slice order. The result
								 * depends on seed and n_threads (float summation order) only. */
} us_train_config;

/* The training defaults of task from the table of option defaults (us_defaults.h), as
 * userseq_train uses them; n_negatives 0 (full softmax) and n_threads 1. */
void		us_train_config_default(us_train_config *tc, us_task task);
us_status	us_train_config_validate(const us_train_config *tc, char *msg, size_t msglen);
/* Learning rate in effect during epoch (0-based). */
float		us_train_learning_rate(const us_train_config *tc, int32_t epoch);

typedef struct us_trainer us_trainer;

typedef struct us_epoch_stats
{
	double		loss;			/* mean weighted training loss over examples */
	int64_t		examples;		/* sequences, or prefixes for next_* tasks */
	int64_t		steps;
	double		learning_rate;
} us_epoch_stats;

/* Optimizer state, gradients and scratch for training model in place. */
us_status	us_trainer_create(us_model *model, const us_train_config *tc,
							  const us_allocator *alloc, us_trainer **out);
/*
 * One epoch over seq_ids[0..n-1] (shuffled deterministically from seed and epoch; the array
 * is not modified). Calls progress once per step. US_ENONFINITE if the loss or weights go
 * non-finite (the model is then unusable).
 */
us_status	us_trainer_epoch(us_trainer *trainer, const us_dataset *data,
							 const int32_t *seq_ids, int32_t n, int32_t epoch,
							 const us_progress *progress, us_epoch_stats *stats);
void		us_trainer_free(us_trainer *trainer);

/* ------------------------------------------------------------------ scoring */

/*
 * Per-model scoring state for one sequence at a time: scratch buffers and derived tables
 * built within fold_budget bytes: for next_item models first the top-k screen (an int8 copy
 * of the output rows, plus an fp32 row-major copy unless tied: about V x H x 5 bytes), then
 * the folded tables (item_emb @ conv_w per width and tap: V x k x F floats per width) that
 * turn each convolution position into gathers and adds; if not every item row fits, the most
 * frequent rows (by training counts) are folded and the rest multiplied per request.
 * Not thread-safe; one per thread.
 */
typedef struct us_scorer us_scorer;

us_status	us_scorer_create(const us_model *model, size_t fold_budget, const us_allocator *alloc,
							 us_scorer **out);
/* Bytes the folded tables of this model need (0 if not applicable). */
size_t		us_scorer_fold_bytes(const us_model_config *cfg);
/* Bytes the next_item top-k screen needs (0 for other tasks). */
size_t		us_scorer_screen_bytes(const us_model_config *cfg);
/* 1 if the folded path is used (fully or for the hottest rows), and how many rows are folded */
int			us_scorer_is_folded(const us_scorer *scorer);
int32_t		us_scorer_folded_rows(const us_scorer *scorer);
/* 1 if next_item top-k screens with the int8 copy (exact either way) */
int			us_scorer_is_screened(const us_scorer *scorer);
/* out (n_outputs) as in us_model_predict; features (D) may be NULL. An empty sequence is valid
 * (all-padding input). US_ENONFINITE if an output or feature is not finite (never for a
 * decoded model: see US_MAX_ABS_WEIGHT). */
us_status	us_scorer_forward(us_scorer *scorer, const us_events *events, float *out,
							  float *features);
/*
 * next_item, screened scorers only (us_scorer_is_screened; else US_EINVAL): the logits of the
 * item rows rows[0..n_rows-1], bit-identical to those us_scorer_forward gives, without scoring
 * every item (occlusion re-scores one target per dropped event).
 */
us_status	us_scorer_row_logits(us_scorer *scorer, const us_events *events, const int32_t *rows,
								  int32_t n_rows, float *out);
/*
 * next_item: the k best item rows (>= US_ROW_FIRST) by logit, best first, ties by lower row; exclude_seen
 * drops rows present in events. rows / scores have room for k; *n_found may be < k.
 * Exactly the rows and logits us_scorer_forward gives, without scoring every item in fp32
 * when screened, and with partial selection, not a full sort. US_ENONFINITE if a logit is not
 * finite.
 */
us_status	us_scorer_topk(us_scorer *scorer, const us_events *events, int32_t k, int exclude_seen,
						   int32_t *rows, float *scores, int32_t *n_found);
void		us_scorer_free(us_scorer *scorer);


/* ------------------------------------------------------------------ explanations, surprise */

typedef enum us_attr_method
{
	US_ATTR_INTEGRATED_GRADIENTS = 1,
	US_ATTR_GRADIENT_X_INPUT = 2
} us_attr_method;

/*
 * Per-event attributions of the most recent min(n, max_len) events toward one output f:
 * binary P(true) (target ignored), regression the value (target ignored), multiclass the
 * probability of class target, next_behavior the probability of behaviour row target,
 * next_item the logit of item row target. The gradient is taken with respect to each event's
 * summed input vector x_t (item + behaviour + gap embedding) by backpropagation:
 *   integrated gradients: attr_t = x_t . integral over a in [0, 1] of grad f(a x), from the
 *     all-padding baseline (every x_t = 0, same length; the padding rows are zero), the path
 *     cut at every relu kink (and, for the softmax heads only, into steps equal parts), each
 *     piece by its midpoint gradient (binary: the sigmoid's exact mean slope on the piece), so
 *     sum_t attr_t = f(x) - f(baseline) up to rounding for binary, regression and next_item
 *     whatever steps, and up to the midpoint rule's error on the pieces for the softmax heads;
 *   gradient x input: attr_t = x_t . grad f(x) (steps ignored).
 * See src/core/explain.c for why the convolution runs once per call.
 * attr gets min(n, max_len) values, oldest first; fx / fbase (may be NULL) get f(x) and
 * f(baseline). Allocates scratch through the model's allocator for the call. Text-CNN models
 * only (US_EINVAL for architecture sasrec: its layers are not differentiated here).
 */
us_status	us_model_attribute(const us_model *model, const us_events *events, int32_t target,
							   int method, int32_t steps, double *attr, double *fx,
							   double *fbase);

/*
 * next_item / next_behavior: how surprising each event of the most recent min(n, max_len)
 * events is, given the events before it in that window (one pass, as training's prefix loss):
 * for t = 1 .. m-1, nll[t-1] = -log p(event t | events 0..t-1) under the full softmax and
 * rank[t-1] = 1 + the number of catalogue rows (>= 2) whose score is higher than or equal to the
 * actual one's (ties count against it), or 0 when the actual item / behaviour is unknown
 * (row < 2). nll and rank (may be NULL) have room for m - 1 values.
 */
us_status	us_model_surprise(const us_model *model, const us_events *events, double *nll,
							  int32_t *rank);

/* ------------------------------------------------------------------ int8 models */

/*
 * Rounds every weight matrix to symmetric int8 with one fp32 scale per group, in place, and
 * sets model->quantized (the encoder then writes format version 4: about 4x smaller). Groups:
 * a row of each embedding table (item, behaviour, gap), a filter of each convolution, a hidden
 * unit (column) of the dense layer, an output (column) of the output layer; biases stay fp32.
 * scale = max |w| of the group / 127, w := round(w / scale) * scale, so every weight moves by at
 * most scale / 2. max_err (may be NULL) gets the largest |change|. Quantizing twice changes
 * nothing. Text-CNN only: a sasrec model gives US_EUNSUPPORTED and is left unchanged.
 */
us_status	us_model_quantize(us_model *model, double *max_err);

/* ------------------------------------------------------------------ transfer between models */

/*
 * Named parameter blocks, for copying weights from another model (init_from, warm start) and
 * for freezing them in training.
 */
#define US_BLOCK_ITEM_EMB		(1u << 0)	/* "item_embedding" */
#define US_BLOCK_BEHAVIOR_EMB	(1u << 1)	/* "behavior_embedding" */
#define US_BLOCK_GAP_EMB		(1u << 2)	/* "gap_embedding" */
#define US_BLOCK_CONV			(1u << 3)	/* "conv": every width's filters and biases (sasrec: the encoder) */
#define US_BLOCK_DENSE			(1u << 4)	/* "dense" */
#define US_BLOCK_OUTPUT			(1u << 5)	/* "output": out_w and out_b */
#define US_N_BLOCKS				6
#define US_BLOCK_ALL			((1u << US_N_BLOCKS) - 1)

/* "item_embedding", ... for block index i (0..US_N_BLOCKS-1), NULL otherwise */
const char *us_block_name(int i);
/* the bit of a block name, 0 if unknown */
uint32_t	us_block_from_name(const char *name);

typedef struct us_init_report
{
	uint32_t	copied;			/* blocks copied (embeddings: the rows both models know) */
	uint32_t	absent;			/* blocks one of the two models does not have */
	uint32_t	incompatible;	/* blocks both have whose shapes or meaning differ */
	int32_t		item_rows;		/* item rows matched by id (of dst's vocabulary) */
	int32_t		behavior_rows;	/* behaviour rows matched by label */
	int32_t		output_rows;	/* outputs matched by item id / label (1 for binary, regression) */
	char		reason[US_N_BLOCKS][192];	/* why a block is incompatible */
} us_init_report;

/*
 * Copies into dst every parameter of src that has the same meaning, for the blocks in mask:
 * item rows matched by item id, behaviour rows by label (out-of-vocabulary rows copied too),
 * gap buckets when both have the same buckets, the convolutions when E, the widths and F
 * agree, the dense layer when its input (W*F + R*E) and H agree in layout, the output layer
 * when the tasks agree (binary / regression: same H; multiclass: outputs matched by class
 * name; next_item: by item id; next_behavior: by label; a tied layer is the item table).
 * Rows src does not know keep dst's (fresh) values. Never fails for incompatible blocks: rep
 * says which were copied, absent or incompatible (with a reason). US_EINVAL for NULL args.
 */
us_status	us_model_init_from(us_model *dst, const us_model *src, uint32_t mask,
							   us_init_report *rep);

/*
 * Blocks whose weights the trainer leaves unchanged (no update, no weight decay, no moments);
 * their gradients still flow to the blocks below. A tied next_item output is the item table.
 */
void		us_trainer_freeze(us_trainer *trainer, uint32_t blocks);

#endif
