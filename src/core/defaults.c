/*
 * defaults.c: the one table of option defaults (us_defaults.h) and its README form.
 */
#include <stdio.h>
#include <string.h>

#include "userseq/us_defaults.h"

const us_name_value us_optimizer_names[] = {
	{"adam", US_OPT_ADAM}, {"adamw", US_OPT_ADAMW}, {"sgd", US_OPT_SGD}, {NULL, 0}
};
const us_name_value us_lr_schedule_names[] = {
	{"constant", US_LR_CONSTANT}, {"step", US_LR_STEP}, {"cosine", US_LR_COSINE}, {NULL, 0}
};
const us_name_value us_batch_unit_names[] = {
	{"examples", 1}, {"sequences", 0}, {NULL, 0}
};
const us_name_value us_architecture_names[] = {
	{"textcnn", US_ARCH_TEXTCNN}, {"sasrec", US_ARCH_SASREC}, {NULL, 0}
};
const us_name_value us_validation_names[] = {
	{"random", US_VALID_RANDOM}, {"time", US_VALID_TIME},
	{"leave_one_out", US_VALID_LEAVE_ONE_OUT}, {"last_basket", US_VALID_LAST_BASKET}, {NULL, 0}
};

const int32_t us_default_widths[3] = {2, 3, 4};

#define STR_(x) #x
#define STR(x) STR_(x)

#define NUM(key, l, n)	{key, US_DK_NUMBER, l, n, NULL, NULL, 1}
#define BOOL(key, v)	{key, US_DK_BOOL, v, v, NULL, NULL, 1}
#define NAME(key, names, l, n)	{key, US_DK_NAME, l, n, names, NULL, 1}
#define AUTO(key, rule)	{key, US_DK_AUTO, -1, -1, NULL, rule, 1}
#define CORE(key, v)	{key, US_DK_NUMBER, v, v, NULL, NULL, 0}

const us_option_default us_option_defaults[US_N_DEFAULTS] = {
	[US_DEF_EPOCHS] = NUM("epochs", 10, 10),
	/* next_*: a step of 64 whole sequences held ~6 examples each on short histories and ~50 on
	 * long ones, so long histories got 8x fewer updates; examples make steps comparable */
	[US_DEF_BATCH_SIZE] = NUM("batch_size", 64, 256),
	[US_DEF_BATCH_UNIT] = NAME("batch_unit", us_batch_unit_names, 0, 1),
	[US_DEF_LEARNING_RATE] = NUM("learning_rate", 0.002, 0.002),
	[US_DEF_OPTIMIZER] = NAME("optimizer", us_optimizer_names, US_OPT_ADAM, US_OPT_ADAM),
	[US_DEF_WEIGHT_DECAY] = NUM("weight_decay", 0, 0),
	[US_DEF_MOMENTUM] = NUM("momentum", 0.9, 0.9),
	[US_DEF_CLIP_NORM] = NUM("clip_norm", 5.0, 5.0),
	[US_DEF_LR_SCHEDULE] = NAME("lr_schedule", us_lr_schedule_names, US_LR_CONSTANT, US_LR_CONSTANT),
	[US_DEF_LR_STEP_EPOCHS] = NUM("lr_step_epochs", 5, 5),
	[US_DEF_LR_GAMMA] = NUM("lr_gamma", 0.5, 0.5),
	[US_DEF_ARCHITECTURE] = NAME("architecture", us_architecture_names, US_ARCH_TEXTCNN, US_ARCH_TEXTCNN),
	[US_DEF_NUM_BLOCKS] = NUM("num_blocks", 2, 2),
	[US_DEF_NUM_HEADS] = NUM("num_heads", 1, 1),
	[US_DEF_EMBEDDING_DIM] = NUM("embedding_dim", 64, 64),
	[US_DEF_NUM_FILTERS] = NUM("num_filters", 64, 64),
	[US_DEF_HIDDEN_DIM] = NUM("hidden_dim", 64, 64),
	[US_DEF_FILTER_WIDTHS] = {"filter_widths", US_DK_WIDTHS, 3, 3, NULL, NULL, 1},
	[US_DEF_DROPOUT] = NUM("dropout", 0.2, 0.2),
	[US_DEF_EMBED_DROPOUT] = NUM("embed_dropout", 0, 0),
	/* next_*: N(0, 1) rows have norm ~sqrt(E), so Adam's ~lr steps barely move them and a tied
	 * output layer cannot learn (README, "Next-item quality"); a float, as models store it */
	[US_DEF_EMBED_INIT_STD] = NUM("embed_init_std", 1.0, 0.05f),
	[US_DEF_MAX_LEN] = NUM("max_len", 100, 50),
	[US_DEF_MIN_COUNT] = NUM("min_count", 1, 1),
	[US_DEF_MAX_ITEMS] = NUM("max_items", 0, 0),
	[US_DEF_VALIDATION] = NAME("validation", us_validation_names, US_VALID_RANDOM, US_VALID_LEAVE_ONE_OUT),
	[US_DEF_VALID_FRACTION] = NUM("validation.fraction", 0.1, 0.1),
	[US_DEF_PATIENCE] = NUM("patience", 3, 3),
	[US_DEF_SEED] = NUM("seed", 42, 42),
	[US_DEF_THREADS] = AUTO("threads", "`userseq.threads`"),
	[US_DEF_BEHAVIOR] = AUTO("behavior", "on if the data has labels"),
	[US_DEF_TIME_GAPS] = AUTO("time_gaps", "on (" STR(US_DEFAULT_GAP_BUCKETS)
							  " buckets) for label tasks on `userseq` input, else off"),
	[US_DEF_RECENT_WINDOW] = NUM("recent_window", 0, 3),
	[US_DEF_TIE_OUTPUT] = BOOL("tie_output", 0),
	[US_DEF_NEGATIVES] = AUTO("negatives", "`\"auto\"`"),
	[US_DEF_TRANSITION_PRIOR] = AUTO("transition_prior", "`\"auto\"` for next_item, else off"),
	[US_DEF_REPEAT_PRIOR] = AUTO("repeat_prior", "`\"auto\"` for next_item, else off"),
	[US_DEF_MAX_EXAMPLES_PER_SEQ] = NUM("max_examples_per_seq", 0, 0),
	[US_DEF_POS_WEIGHT] = NUM("pos_weight", 1.0, 1.0),
	[US_DEF_DEPLOY] = BOOL("deploy", 1),
	[US_DEF_BETA1] = CORE("beta1", 0.9f),
	[US_DEF_BETA2] = CORE("beta2", 0.999f),
	[US_DEF_EPSILON] = CORE("epsilon", 1e-8f),
};

double
us_default(us_default_id id, us_task task)
{
	const us_option_default *d = &us_option_defaults[id];

	return us_task_is_next(task) ? d->next : d->label;
}

const char *
us_name_of(const us_name_value *names, int32_t value)
{
	for (int i = 0; names[i].name; i++)
		if (names[i].value == value)
			return names[i].name;
	return NULL;
}

int
us_value_of(const us_name_value *names, const char *name, int32_t *value)
{
	for (int i = 0; names[i].name; i++)
		if (strcmp(names[i].name, name) == 0)
		{
			*value = names[i].value;
			return 0;
		}
	return -1;
}

/* one task's value: 10, `adam`, `[2,3,4]`, true */
static int
value_text(const us_option_default *d, double v, char *buf, size_t len)
{
	switch (d->kind)
	{
		case US_DK_BOOL:
			return snprintf(buf, len, "%s", v != 0 ? "true" : "false");
		case US_DK_NAME:
			/* the validation method is shown as the object that sets it */
			if (d == &us_option_defaults[US_DEF_VALIDATION] && (int32_t) v == US_VALID_RANDOM)
				return snprintf(buf, len, "`{\"method\": \"%s\", \"fraction\": %g}`",
								us_name_of(d->names, (int32_t) v),
								us_option_defaults[US_DEF_VALID_FRACTION].label);
			if (d == &us_option_defaults[US_DEF_VALIDATION])
				return snprintf(buf, len, "`{\"method\": \"%s\"}`", us_name_of(d->names, (int32_t) v));
			return snprintf(buf, len, "`%s`", us_name_of(d->names, (int32_t) v));
		case US_DK_WIDTHS:
			{
				char		w[64] = "";
				int			n = 0;

				for (int i = 0; i < (int) v && i < 3; i++)
					n += snprintf(w + n, sizeof w - n, "%s%d", i ? "," : "", (int) us_default_widths[i]);
				return snprintf(buf, len, "`[%s]`", w);
			}
		case US_DK_AUTO:
			return snprintf(buf, len, "%s", d->rule);
		default:
			return snprintf(buf, len, "%g", v);
	}
}

int
us_default_text(us_default_id id, char *buf, size_t len)
{
	const us_option_default *d = &us_option_defaults[id];
	char		label[128],
				next[128];

	value_text(d, d->label, label, sizeof label);
	if (d->kind == US_DK_AUTO || d->next == d->label)
		return snprintf(buf, len, "%s", label);
	value_text(d, d->next, next, sizeof next);
	return snprintf(buf, len, "%s (next_*: %s)", label, next);
}
