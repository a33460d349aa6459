/*
 * us_defaults.h: the one table of option defaults. userseq_train's options (src/pg/train/
 * options.c), us_model_config_default and us_train_config_default (src/core/config.c), and the
 * options table of README (checked against this table by test/unit/test_defaults.c) all read it.
 * Where a default differs by task there are two values: the label tasks (binary, multiclass,
 * regression) and the prefix tasks (next_item, next_behavior).
 */
#ifndef USERSEQ_US_DEFAULTS_H
#define USERSEQ_US_DEFAULTS_H

#include <stddef.h>
#include <stdint.h>

#include "userseq/us_model.h"

/* validation methods of userseq_train (option "validation") */
#define US_VALID_RANDOM			1
#define US_VALID_TIME			2
#define US_VALID_LEAVE_ONE_OUT	3
#define US_VALID_LAST_BASKET	4	/* next_*: the first event of each sequence's last time group */

/* gap buckets of "time_gaps": true (2 + log2(1 + seconds) reaches 27 at about a year) */
#define US_DEFAULT_GAP_BUCKETS		28

/* Rows of the table, in the order of README's options table. */
typedef enum us_default_id
{
	US_DEF_EPOCHS,
	US_DEF_BATCH_SIZE,
	US_DEF_BATCH_UNIT,			/* us_train_config.batch_examples: 0 sequences, 1 examples */
	US_DEF_LEARNING_RATE,
	US_DEF_OPTIMIZER,
	US_DEF_WEIGHT_DECAY,
	US_DEF_MOMENTUM,
	US_DEF_CLIP_NORM,
	US_DEF_LR_SCHEDULE,
	US_DEF_LR_STEP_EPOCHS,
	US_DEF_LR_GAMMA,
	US_DEF_ARCHITECTURE,
	US_DEF_NUM_BLOCKS,			/* sasrec only (a text-CNN config has 0) */
	US_DEF_NUM_HEADS,			/* sasrec only */
	US_DEF_EMBEDDING_DIM,
	US_DEF_NUM_FILTERS,
	US_DEF_HIDDEN_DIM,
	US_DEF_FILTER_WIDTHS,		/* us_default_widths */
	US_DEF_DROPOUT,
	US_DEF_EMBED_DROPOUT,
	US_DEF_EMBED_INIT_STD,
	US_DEF_MAX_LEN,
	US_DEF_MIN_COUNT,
	US_DEF_MAX_ITEMS,
	US_DEF_VALIDATION,			/* the method, US_VALID_* */
	US_DEF_VALID_FRACTION,		/* of method random */
	US_DEF_PATIENCE,
	US_DEF_SEED,
	US_DEF_THREADS,
	US_DEF_BEHAVIOR,
	US_DEF_TIME_GAPS,
	US_DEF_RECENT_WINDOW,
	US_DEF_TIE_OUTPUT,
	US_DEF_NEGATIVES,
	US_DEF_TRANSITION_PRIOR,	/* next_item: "auto"; other tasks off (us_model.h, transition prior) */
	US_DEF_REPEAT_PRIOR,		/* next_item: "auto"; other tasks off (us_model.h, repeat prior) */
	US_DEF_MAX_EXAMPLES_PER_SEQ,
	US_DEF_POS_WEIGHT,
	US_DEF_DEPLOY,
	/* the core's own, not options of userseq_train */
	US_DEF_BETA1,
	US_DEF_BETA2,
	US_DEF_EPSILON,
	US_N_DEFAULTS
} us_default_id;

typedef enum us_default_kind
{
	US_DK_NUMBER,				/* integer or real */
	US_DK_BOOL,					/* 0 or 1 */
	US_DK_NAME,					/* a value of names */
	US_DK_WIDTHS,				/* the list us_default_widths (value: its length) */
	US_DK_AUTO					/* resolved per run (-1 here); rule says how */
} us_default_kind;

/* A named value of an option ("adam" = US_OPT_ADAM), in the order errors list them. */
typedef struct us_name_value
{
	const char *name;
	int32_t		value;
} us_name_value;

typedef struct us_option_default
{
	const char *key;			/* the option of userseq_train, or of the core (beta1 ...) */
	us_default_kind kind;
	double		label;			/* binary, multiclass, regression */
	double		next;			/* next_item, next_behavior */
	const us_name_value *names; /* US_DK_NAME: the allowed values, ended by a NULL name */
	const char *rule;			/* US_DK_AUTO: how a run resolves it, as README says it */
	int			sql;			/* 1: an option of userseq_train (README lists it) */
} us_option_default;

extern const us_option_default us_option_defaults[US_N_DEFAULTS];
extern const int32_t us_default_widths[3];

/* The allowed values of the options with names, NULL-name ended. */
extern const us_name_value us_optimizer_names[];
extern const us_name_value us_lr_schedule_names[];
extern const us_name_value us_batch_unit_names[];
extern const us_name_value us_architecture_names[];
extern const us_name_value us_validation_names[];

/* The default of row id for task. */
double		us_default(us_default_id id, us_task task);
/* The name of value in names, or NULL. */
const char *us_name_of(const us_name_value *names, int32_t value);
/* The value of name in names; 0 when found (*value set), -1 otherwise. */
int			us_value_of(const us_name_value *names, const char *name, int32_t *value);

/*
 * The default as README's options table writes it: "64", "64 (next_*: 256)", "`adam`",
 * "`[2,3,4]`", the rule of an automatic one. Returns snprintf's length.
 */
int			us_default_text(us_default_id id, char *buf, size_t len);

#endif
