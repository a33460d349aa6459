/*
 * config.c: defaults and validation of the model and training hyperparameters, and the
 * learning-rate schedules. It does not know about vocabularies or data; us_model_create checks
 * that a config agrees with its vocabulary.
 */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "userseq/us_defaults.h"
#include "userseq/us_model.h"
#include "us_internal.h"

/* Every field from the table of option defaults (us_defaults.h) */
void
us_model_config_default(us_model_config *cfg, us_task task)
{
	memset(cfg, 0, sizeof(*cfg));
	cfg->task = task;
	cfg->n_items = US_ROW_FIRST;
	cfg->n_behaviors = 0;
	cfg->n_gap_buckets = 0;
	cfg->n_outputs = (task == US_TASK_NEXT_ITEM) ? cfg->n_items : 1;
	cfg->max_len = (int32_t) us_default(US_DEF_MAX_LEN, task);
	cfg->embed_dim = (int32_t) us_default(US_DEF_EMBEDDING_DIM, task);
	cfg->architecture = (int32_t) us_default(US_DEF_ARCHITECTURE, task);
	cfg->n_widths = (int32_t) us_default(US_DEF_FILTER_WIDTHS, task);
	for (int i = 0; i < cfg->n_widths; i++)
		cfg->widths[i] = us_default_widths[i];
	cfg->n_filters = (int32_t) us_default(US_DEF_NUM_FILTERS, task);
	cfg->hidden_dim = (int32_t) us_default(US_DEF_HIDDEN_DIM, task);
	cfg->recent_window = (int32_t) us_default(US_DEF_RECENT_WINDOW, task);
	cfg->tie_output = (int32_t) us_default(US_DEF_TIE_OUTPUT, task);
	cfg->dropout = (float) us_default(US_DEF_DROPOUT, task);
	cfg->pos_weight = (float) us_default(US_DEF_POS_WEIGHT, task);
	cfg->embed_init_std = (float) us_default(US_DEF_EMBED_INIT_STD, task);
	cfg->embed_dropout = (float) us_default(US_DEF_EMBED_DROPOUT, task);
	/* n_blocks, n_heads stay 0: the default architecture is the text-CNN */
}

static const char *const task_names[US_N_TASKS + 1] = {
	NULL, "binary", "multiclass", "regression", "next_item", "next_behavior"
};

const char *
us_task_name(int32_t task)
{
	return task >= 1 && task <= US_N_TASKS ? task_names[task] : "unknown";
}

us_task
us_task_from_name(const char *name)
{
	for (int t = 1; t <= US_N_TASKS; t++)
		if (name && strcmp(name, task_names[t]) == 0)
			return (us_task) t;
	return (us_task) 0;
}

int
us_task_is_next(int32_t task)
{
	return task == US_TASK_NEXT_ITEM || task == US_TASK_NEXT_BEHAVIOR;
}

#if defined(__GNUC__)
static us_status fail(us_status st, char *msg, size_t msglen, const char *fmt,...)
			__attribute__((format(printf, 4, 5)));
#endif

static us_status
fail(us_status st, char *msg, size_t msglen, const char *fmt,...)
{
	if (msg && msglen > 0)
	{
		va_list		ap;

		va_start(ap, fmt);
		vsnprintf(msg, msglen, fmt, ap);
		va_end(ap);
	}
	return st;
}

#define RANGE(field, name, lo, hi) \
	do { \
		if ((field) < (lo) || (field) > (hi)) \
			return fail(US_EINVAL, msg, msglen, \
						"%s must be between %ld and %ld, got %ld.", name, \
						(long) (lo), (long) (hi), (long) (field)); \
	} while (0)

int32_t
us_model_feature_dim(const us_model_config *cfg)
{
	if (cfg->architecture == US_ARCH_SASREC)
		return cfg->embed_dim;
	return cfg->n_widths * cfg->n_filters + cfg->recent_window * cfg->embed_dim;
}

us_status
us_model_config_validate(const us_model_config *cfg, char *msg, size_t msglen)
{
	if (msg && msglen > 0)
		msg[0] = '\0';
	if (cfg->task < US_TASK_BINARY || cfg->task > US_TASK_NEXT_BEHAVIOR)
		return fail(US_EINVAL, msg, msglen,
					"task must be one of binary (1), multiclass (2), regression (3), next_item (4) or next_behavior (5), got %d.",
					(int) cfg->task);
	RANGE(cfg->n_items, "n_items (item rows)", 2, US_MAX_ITEMS);
	if (cfg->n_behaviors != 0)
		RANGE(cfg->n_behaviors, "n_behaviors (behaviour rows, or 0 for no behaviour input)",
			  2, US_MAX_BEHAVIORS);
	if (cfg->n_gap_buckets != 0)
		RANGE(cfg->n_gap_buckets, "n_gap_buckets (or 0 for no time-gap input)",
			  3, US_MAX_GAP_BUCKETS);
	switch (cfg->task)
	{
		case US_TASK_BINARY:
		case US_TASK_REGRESSION:
			RANGE(cfg->n_outputs, "n_outputs of a binary or regression model", 1, 1);
			break;
		case US_TASK_MULTICLASS:
			RANGE(cfg->n_outputs, "n_outputs (number of classes)", 2, US_MAX_CLASSES);
			break;
		case US_TASK_NEXT_ITEM:
			if (cfg->n_outputs != cfg->n_items)
				return fail(US_EINVAL, msg, msglen,
							"n_outputs of a next_item model must equal n_items (%d), got %d.",
							(int) cfg->n_items, (int) cfg->n_outputs);
			break;
		case US_TASK_NEXT_BEHAVIOR:
			if (cfg->n_behaviors == 0)
				return fail(US_EINVAL, msg, msglen,
							"A next_behavior model needs behaviour input: n_behaviors must be between 2 and %d, got 0.",
							US_MAX_BEHAVIORS);
			if (cfg->n_outputs != cfg->n_behaviors)
				return fail(US_EINVAL, msg, msglen,
							"n_outputs of a next_behavior model must equal n_behaviors (%d), got %d.",
							(int) cfg->n_behaviors, (int) cfg->n_outputs);
			break;
	}
	RANGE(cfg->max_len, "max_len", 1, US_MAX_LEN);
	RANGE(cfg->embed_dim, "embed_dim", 1, US_MAX_EMBED_DIM);
	RANGE(cfg->architecture, "architecture", US_ARCH_TEXTCNN, US_ARCH_SASREC);
	if (cfg->architecture == US_ARCH_SASREC)
	{
		/* the encoder replaces the convolutions and the recent window */
		if (cfg->n_widths != 0 || cfg->n_filters != 0 || cfg->recent_window != 0)
			return fail(US_EINVAL, msg, msglen,
						"A sasrec model has no convolutions nor recent window: n_widths, n_filters and recent_window must be 0.");
		for (int i = 0; i < US_MAX_WIDTHS; i++)
			if (cfg->widths[i] != 0)
				return fail(US_EINVAL, msg, msglen,
							"Unused convolution width slots must be 0, slot %d holds %d.",
							i, (int) cfg->widths[i]);
		RANGE(cfg->n_blocks, "n_blocks", 1, US_MAX_BLOCKS);
		RANGE(cfg->n_heads, "n_heads", 1, US_MAX_HEADS);
		if (cfg->embed_dim % cfg->n_heads != 0)
			return fail(US_EINVAL, msg, msglen,
						"n_heads must divide embed_dim, got %d heads for %d dimensions.",
						(int) cfg->n_heads, (int) cfg->embed_dim);
	}
	else
	{
		RANGE(cfg->n_widths, "the number of convolution widths", 1, US_MAX_WIDTHS);
		for (int i = 0; i < cfg->n_widths; i++)
		{
			RANGE(cfg->widths[i], "every convolution width", 1, US_MAX_FILTER_WIDTH);
			if (i > 0 && cfg->widths[i] <= cfg->widths[i - 1])
				return fail(US_EINVAL, msg, msglen,
							"Convolution widths must be strictly ascending, got %d after %d.",
							(int) cfg->widths[i], (int) cfg->widths[i - 1]);
		}
		for (int i = cfg->n_widths; i < US_MAX_WIDTHS; i++)
			if (cfg->widths[i] != 0)
				return fail(US_EINVAL, msg, msglen,
							"Unused convolution width slots must be 0, slot %d holds %d.",
							i, (int) cfg->widths[i]);
		RANGE(cfg->n_filters, "n_filters", 1, US_MAX_FILTERS);
		RANGE(cfg->recent_window, "recent_window", 0, US_MAX_RECENT);
		if (cfg->n_blocks != 0 || cfg->n_heads != 0)
			return fail(US_EINVAL, msg, msglen,
						"n_blocks and n_heads are for the sasrec architecture only, got %d and %d.",
						(int) cfg->n_blocks, (int) cfg->n_heads);
	}
	RANGE(cfg->hidden_dim, "hidden_dim", 1, US_MAX_HIDDEN);
	RANGE(cfg->tie_output, "tie_output", 0, 1);
	if (cfg->tie_output)
	{
		if (cfg->task != US_TASK_NEXT_ITEM)
			return fail(US_EINVAL, msg, msglen,
						"tie_output is only allowed for next_item models.");
		if (cfg->hidden_dim != cfg->embed_dim)
			return fail(US_EINVAL, msg, msglen,
						"tie_output needs hidden_dim equal to embed_dim, got %d and %d.",
						(int) cfg->hidden_dim, (int) cfg->embed_dim);
	}
	if (!isfinite(cfg->dropout))
		return fail(US_ENONFINITE, msg, msglen, "dropout must be a finite number in [0, 1).");
	if (cfg->dropout < 0.0f || cfg->dropout >= 1.0f)
		return fail(US_EINVAL, msg, msglen, "dropout must be in [0, 1), got %g.",
					(double) cfg->dropout);
	if (!isfinite(cfg->pos_weight))
		return fail(US_ENONFINITE, msg, msglen, "pos_weight must be a finite number > 0.");
	if (cfg->pos_weight <= 0.0f)
		return fail(US_EINVAL, msg, msglen, "pos_weight must be > 0, got %g.",
					(double) cfg->pos_weight);
	if (!isfinite(cfg->embed_init_std))
		return fail(US_ENONFINITE, msg, msglen, "embed_init_std must be a finite number in [0, 10].");
	if (cfg->embed_init_std < 0.0f || cfg->embed_init_std > 10.0f)
		return fail(US_EINVAL, msg, msglen, "embed_init_std must be in [0, 10] (0 means 1), got %g.",
					(double) cfg->embed_init_std);
	if (!isfinite(cfg->embed_dropout))
		return fail(US_ENONFINITE, msg, msglen, "embed_dropout must be a finite number in [0, 1).");
	if (cfg->embed_dropout < 0.0f || cfg->embed_dropout >= 1.0f)
		return fail(US_EINVAL, msg, msglen, "embed_dropout must be in [0, 1), got %g.",
					(double) cfg->embed_dropout);
	if (us_model_param_count(cfg) == 0 || us_model_param_count(cfg) > US_MAX_PARAMS)
		return fail(US_ELIMIT, msg, msglen,
					"The model would have more than %zu parameters; reduce the vocabulary, embed_dim, n_filters or hidden_dim.",
					US_MAX_PARAMS);
	return US_OK;
}

/* Every field from the table of option defaults (us_defaults.h) */
void
us_train_config_default(us_train_config *tc, us_task task)
{
	memset(tc, 0, sizeof(*tc));
	tc->optimizer = (int32_t) us_default(US_DEF_OPTIMIZER, task);
	tc->learning_rate = (float) us_default(US_DEF_LEARNING_RATE, task);
	tc->beta1 = (float) us_default(US_DEF_BETA1, task);
	tc->beta2 = (float) us_default(US_DEF_BETA2, task);
	tc->epsilon = (float) us_default(US_DEF_EPSILON, task);
	tc->momentum = (float) us_default(US_DEF_MOMENTUM, task);
	tc->weight_decay = (float) us_default(US_DEF_WEIGHT_DECAY, task);
	tc->clip_norm = (float) us_default(US_DEF_CLIP_NORM, task);
	tc->lr_schedule = (int32_t) us_default(US_DEF_LR_SCHEDULE, task);
	tc->lr_step_epochs = (int32_t) us_default(US_DEF_LR_STEP_EPOCHS, task);
	tc->lr_gamma = (float) us_default(US_DEF_LR_GAMMA, task);
	tc->epochs = (int32_t) us_default(US_DEF_EPOCHS, task);
	tc->batch_size = (int32_t) us_default(US_DEF_BATCH_SIZE, task);
	tc->batch_examples = (int32_t) us_default(US_DEF_BATCH_UNIT, task);
	tc->n_negatives = 0;		/* "auto" is the glue's: it depends on the catalogue size */
	tc->max_examples_per_seq = (int32_t) us_default(US_DEF_MAX_EXAMPLES_PER_SEQ, task);
	tc->seed = (uint64_t) us_default(US_DEF_SEED, task);
	tc->n_threads = 1;			/* "threads" is the glue's GUC */
}

#define FINITE(field, name) \
	do { \
		if (!isfinite(field)) \
			return fail(US_ENONFINITE, msg, msglen, "%s must be a finite number.", name); \
	} while (0)

us_status
us_train_config_validate(const us_train_config *tc, char *msg, size_t msglen)
{
	if (msg && msglen > 0)
		msg[0] = '\0';
	if (tc->optimizer < US_OPT_ADAM || tc->optimizer > US_OPT_SGD)
		return fail(US_EINVAL, msg, msglen,
					"optimizer must be adam (1), adamw (2) or sgd (3), got %d.", (int) tc->optimizer);
	FINITE(tc->learning_rate, "learning_rate");
	if (tc->learning_rate <= 0.0f)
		return fail(US_EINVAL, msg, msglen, "learning_rate must be > 0, got %g.",
					(double) tc->learning_rate);
	FINITE(tc->beta1, "beta1");
	FINITE(tc->beta2, "beta2");
	if (tc->beta1 < 0.0f || tc->beta1 >= 1.0f)
		return fail(US_EINVAL, msg, msglen, "beta1 must be in [0, 1), got %g.", (double) tc->beta1);
	if (tc->beta2 < 0.0f || tc->beta2 >= 1.0f)
		return fail(US_EINVAL, msg, msglen, "beta2 must be in [0, 1), got %g.", (double) tc->beta2);
	FINITE(tc->epsilon, "epsilon");
	if (tc->epsilon <= 0.0f)
		return fail(US_EINVAL, msg, msglen, "epsilon must be > 0, got %g.", (double) tc->epsilon);
	FINITE(tc->momentum, "momentum");
	if (tc->momentum < 0.0f || tc->momentum >= 1.0f)
		return fail(US_EINVAL, msg, msglen, "momentum must be in [0, 1), got %g.",
					(double) tc->momentum);
	FINITE(tc->weight_decay, "weight_decay");
	if (tc->weight_decay < 0.0f)
		return fail(US_EINVAL, msg, msglen, "weight_decay must be >= 0, got %g.",
					(double) tc->weight_decay);
	FINITE(tc->clip_norm, "clip_norm");
	if (tc->clip_norm < 0.0f)
		return fail(US_EINVAL, msg, msglen, "clip_norm must be >= 0 (0 turns clipping off), got %g.",
					(double) tc->clip_norm);
	if (tc->lr_schedule < US_LR_CONSTANT || tc->lr_schedule > US_LR_COSINE)
		return fail(US_EINVAL, msg, msglen,
					"lr_schedule must be constant (1), step (2) or cosine (3), got %d.",
					(int) tc->lr_schedule);
	RANGE(tc->lr_step_epochs, "lr_step_epochs", 1, 1000000);
	FINITE(tc->lr_gamma, "lr_gamma");
	if (tc->lr_gamma <= 0.0f || tc->lr_gamma > 1.0f)
		return fail(US_EINVAL, msg, msglen, "lr_gamma must be in (0, 1], got %g.",
					(double) tc->lr_gamma);
	RANGE(tc->epochs, "epochs", 1, 1000000);
	RANGE(tc->batch_size, "batch_size", 1, 65536);
	RANGE(tc->batch_examples, "batch_examples", 0, 1);
	if (tc->n_negatives != 0)
		RANGE(tc->n_negatives, "n_negatives (or 0 for the full softmax)", 2, 1 << 20);
	RANGE(tc->max_examples_per_seq, "max_examples_per_seq (or 0 for all prefixes)", 0, US_MAX_LEN);
	RANGE(tc->n_threads, "n_threads", 1, 64);
	return US_OK;
}

float
us_train_learning_rate(const us_train_config *tc, int32_t epoch)
{
	double		lr = tc->learning_rate;

	if (epoch < 0)
		epoch = 0;
	switch (tc->lr_schedule)
	{
		case US_LR_STEP:
			if (tc->lr_step_epochs > 0)
				lr *= pow((double) tc->lr_gamma, (double) (epoch / tc->lr_step_epochs));
			break;
		case US_LR_COSINE:
			if (tc->epochs > 0)
			{
				double		e = epoch < tc->epochs ? epoch : tc->epochs;

				lr *= (1.0 + cos(3.14159265358979323846 * e / tc->epochs)) / 2.0;
			}
			break;
		default:
			break;
	}
	return (float) lr;
}
