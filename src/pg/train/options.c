/*
 * options.c: the options of userseq_train and userseq_retrain: task names, parsing and
 * checking the options jsonb (every bad value names its key and range, SQLSTATE 22023),
 * the defaults, and the resolved options as JSON (models.config).
 *
 * It does not read data or train; train.c turns the resolved options into the core's configs.
 */
#include "postgres.h"

#include <math.h>

#include "utils/builtins.h"
#include "utils/fmgrprotos.h"
#include "utils/json.h"
#include "utils/jsonb.h"
#include "utils/numeric.h"
#include "utils/timestamp.h"

#include "train/options.h"
#include "userseq_pg.h"

/* ------------------------------------------------------------------ tasks */

us_task
UsParseTask(const char *task)
{
	us_task		t = us_task_from_name(task);

	if (t == 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("unrecognized task \"%s\"", task),
				 errdetail("Valid tasks are binary, multiclass, regression, next_item and next_behavior.")));
	return t;
}

/* ------------------------------------------------------------------ options */

static const char *const us_option_names[] = {
	"architecture", "batch_size", "batch_unit", "behavior", "clip_norm", "deploy", "dropout",
	"embed_dropout", "embed_init_std", "embedding_dim", "epochs", "filter_widths", "hidden_dim",
	"init_from", "learning_rate", "lr_gamma", "lr_schedule", "lr_step_epochs",
	"max_examples_per_seq", "max_items", "max_len", "min_count", "momentum", "negatives",
	"num_blocks", "num_filters", "num_heads", "optimizer", "patience", "pos_weight",
	"recent_window", "repeat_prior", "seed", "threads",
	"tie_output", "time_gaps", "transition_prior", "validation", "warm_start", "weight_decay", NULL
};

bool
UsIsTrainOption(const char *key)
{
	for (int i = 0; us_option_names[i]; i++)
		if (strcmp(us_option_names[i], key) == 0)
			return true;
	return false;
}

static char *
UsJoinNames(const char *const *names)
{
	StringInfoData buf;

	initStringInfo(&buf);
	for (int i = 0; names[i]; i++)
		appendStringInfo(&buf, "%s%s", i ? ", " : "", names[i]);
	return buf.data;
}

static const char *us_current_option = NULL;

static void
UsOptionErrorContext(void *arg)
{
	if (us_current_option)
		errcontext("option \"%s\"", us_current_option);
}

static double
UsOptNumber(const char *key, JsonbValue *v)
{
	double		d;

	if (v->type != jbvNumeric)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("option \"%s\" must be a number", key)));
	d = DatumGetFloat8(DirectFunctionCall1(numeric_float8, NumericGetDatum(v->val.numeric)));
	if (isnan(d) || isinf(d))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("option \"%s\" must be a finite number", key)));
	return d;
}

static int64
UsOptInt(const char *key, JsonbValue *v, int64 min, int64 max)
{
	double		d = UsOptNumber(key, v);

	if (d != floor(d) || d < (double) min || d > (double) max)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("option \"%s\" must be an integer between " INT64_FORMAT " and " INT64_FORMAT,
						key, min, max)));
	return (int64) d;
}

/* min_open / max_open: the bound itself is excluded */
static double
UsOptFloat(const char *key, JsonbValue *v, double min, bool min_open, double max, bool max_open)
{
	double		d = UsOptNumber(key, v);

	if ((min_open ? d <= min : d < min) || (max_open ? d >= max : d > max))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("option \"%s\" must be in the range %s%g, %g%s", key,
						min_open ? "(" : "[", min, max, max_open ? ")" : "]")));
	return d;
}

static bool
UsOptBool(const char *key, JsonbValue *v)
{
	if (v->type != jbvBool)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("option \"%s\" must be true or false", key)));
	return v->val.boolean;
}

static char *
UsOptString(const char *key, JsonbValue *v, const char *allowed)
{
	if (v->type != jbvString)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("option \"%s\" must be a string: one of %s", key, allowed)));
	return pnstrdup(v->val.string.val, v->val.string.len);
}

/* "a, b and c" (conj "and"), or with quotes "\"a\" or \"b\"" */
static char *
UsNamesProse(const us_name_value *names, const char *conj, bool quote)
{
	StringInfoData buf;
	int			n = 0;

	while (names[n].name)
		n++;
	initStringInfo(&buf);
	for (int i = 0; i < n; i++)
		appendStringInfo(&buf, "%s%s%s%s", i == 0 ? "" : i == n - 1 ? conj : ", ",
						 quote ? "\"" : "", names[i].name, quote ? "\"" : "");
	return buf.data;
}

/*
 * An option whose value is one of names (the core's lists in us_defaults.h). A bad name is
 * "unrecognized <what> \"x\"" with "Valid <plural> are a, b and c."; without what,
 * "option \"key\" must be \"a\" or \"b\", not \"x\"".
 */
static int32
UsOptChoice(const char *key, JsonbValue *v, const us_name_value *names,
			const char *what, const char *plural)
{
	StringInfoData allowed;
	char	   *s;
	int32		value;

	initStringInfo(&allowed);
	for (int i = 0; names[i].name; i++)
		appendStringInfo(&allowed, "%s%s", i ? ", " : "", names[i].name);
	s = UsOptString(key, v, allowed.data);
	if (us_value_of(names, s, &value) == 0)
		return value;
	if (what == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("option \"%s\" must be %s, not \"%s\"", key,
						UsNamesProse(names, " or ", true), s)));
	ereport(ERROR,
			(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
			 errmsg("unrecognized %s \"%s\"", what, s),
			 errdetail("Valid %s are %s.", plural, UsNamesProse(names, " and ", false))));
	return 0;					/* not reached */
}

/* An iterator over an object option's keys (UsOptNextKey); "must be an object" otherwise. */
static JsonbIterator *
UsOptObject(const char *key, JsonbValue *v, const char *hint)
{
	JsonbIterator *it;
	JsonbValue	k;

	if (v->type != jbvBinary || !JsonContainerIsObject(v->val.binary.data))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("option \"%s\" must be an object", key),
				 errhint("%s", hint)));
	it = JsonbIteratorInit(v->val.binary.data);
	(void) JsonbIteratorNext(&it, &k, false);	/* WJB_BEGIN_OBJECT */
	return it;
}

/* The next key of an object (palloc'd) with its value in *val; NULL after the last. */
static char *
UsOptNextKey(JsonbIterator **it, JsonbValue *val)
{
	JsonbValue	k;
	JsonbIteratorToken r;

	while ((r = JsonbIteratorNext(it, &k, true)) != WJB_DONE)
		if (r == WJB_KEY)
		{
			char	   *key = pnstrdup(k.val.string.val, k.val.string.len);

			(void) JsonbIteratorNext(it, val, true);
			return key;
		}
	return NULL;
}

static void
UsParseValidation(JsonbValue *v, UsTrainOptions *opts)
{
	JsonbIterator *it;
	JsonbValue	val;
	char	   *key;
	bool		has_method = false;
	bool		has_fraction = false,
				has_cutoff = false,
				has_within = false;
	static const char *const valid_keys[] = {"cutoff", "fraction", "method", "within", NULL};

	it = UsOptObject("validation", v,
					 "For example {\"method\": \"random\", \"fraction\": 0.1}, {\"method\": \"time\", \"cutoff\": \"2011-10-01\"} or {\"method\": \"leave_one_out\"}.");
	while ((key = UsOptNextKey(&it, &val)) != NULL)
	{
		if (strcmp(key, "method") == 0)
		{
			opts->valid_method = UsOptChoice("validation.method", &val, us_validation_names,
											 "validation method", "methods");
			has_method = true;
		}
		else if (strcmp(key, "fraction") == 0)
		{
			opts->valid_fraction = UsOptFloat("validation.fraction", &val, 0, true, 0.9, false);
			has_fraction = true;
		}
		else if (strcmp(key, "cutoff") == 0)
		{
			char	   *s = UsOptString("validation.cutoff", &val, "a timestamp such as \"2011-10-01 00:00:00+00\"");

			us_current_option = "validation.cutoff";
			opts->valid_cutoff = DatumGetTimestampTz(DirectFunctionCall3(timestamptz_in,
																		 CStringGetDatum(s),
																		 ObjectIdGetDatum(InvalidOid),
																		 Int32GetDatum(-1)));
			if (TIMESTAMP_NOT_FINITE(opts->valid_cutoff))
				ereport(ERROR,
						(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						 errmsg("option \"validation.cutoff\" must be a finite timestamp")));
			us_current_option = "validation";
			has_cutoff = true;
		}
		else if (strcmp(key, "within") == 0)
		{
			char	   *s = UsOptString("validation.within", &val, "an interval such as \"1 minute\"");
			Interval   *iv;

			us_current_option = "validation.within";
			iv = DatumGetIntervalP(DirectFunctionCall3(interval_in, CStringGetDatum(s),
													   ObjectIdGetDatum(InvalidOid),
													   Int32GetDatum(-1)));
			/* months have no fixed length; a basket window is seconds to days */
			if (iv->month != 0 || iv->day < 0 || iv->day > 366 || iv->time < 0 ||
				iv->time > INT64CONST(366) * USECS_PER_DAY)
				ereport(ERROR,
						(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						 errmsg("option \"validation.within\" must be an interval from 0 to 366 days without months, not \"%s\"", s)));
			opts->valid_within = iv->day * USECS_PER_DAY + iv->time;
			us_current_option = "validation";
			has_within = true;
		}
		else
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("unrecognized key \"%s\" in option \"validation\"", key),
					 errdetail("Valid keys are %s.", UsJoinNames(valid_keys))));
	}
	if (!has_method)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("option \"validation\" needs a \"method\""),
				 errdetail("Valid methods are %s.", UsNamesProse(us_validation_names, " and ", false))));
	if (has_fraction && opts->valid_method != US_VALID_RANDOM)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("\"fraction\" applies only to validation method \"random\"")));
	if (opts->valid_method == US_VALID_TIME && !has_cutoff)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("validation method \"time\" needs a \"cutoff\" timestamp")));
	if (has_within && opts->valid_method != US_VALID_LAST_BASKET)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("\"within\" applies only to validation method \"last_basket\"")));
	if (has_cutoff && opts->valid_method != US_VALID_TIME)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("\"cutoff\" applies only to validation method \"time\"")));
	if ((opts->valid_method == US_VALID_LEAVE_ONE_OUT || opts->valid_method == US_VALID_LAST_BASKET) &&
		opts->task != US_TASK_NEXT_ITEM && opts->task != US_TASK_NEXT_BEHAVIOR)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("validation method \"%s\" applies only to tasks next_item and next_behavior",
						us_name_of(us_validation_names, opts->valid_method))));
}

/* an "init_from" key holding an array of block names, as a US_BLOCK_* mask */
static uint32
UsParseBlockList(JsonbValue *val, const char *what, const char *const *blocks)
{
	JsonbIterator *ai;
	JsonbValue	e;
	JsonbIteratorToken r;
	uint32		mask = 0;

	if (val->type != jbvBinary || !JsonContainerIsArray(val->val.binary.data))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("option \"%s\" must be an array of block names", what),
				 errdetail("Blocks are %s.", UsJoinNames(blocks))));
	ai = JsonbIteratorInit(val->val.binary.data);
	while ((r = JsonbIteratorNext(&ai, &e, true)) != WJB_DONE)
	{
		uint32		bit;
		char	   *name;

		if (r != WJB_ELEM)
			continue;
		if (e.type != jbvString)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("option \"%s\" must be an array of block names", what),
					 errdetail("Blocks are %s.", UsJoinNames(blocks))));
		name = pnstrdup(e.val.string.val, e.val.string.len);
		bit = us_block_from_name(name);
		if (bit == 0)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("unrecognized block \"%s\" in option \"%s\"", name, what),
					 errdetail("Blocks are %s.", UsJoinNames(blocks))));
		mask |= bit;
	}
	return mask;
}

/*
 * "init_from": {"model": "name", "version": n, "copy": ["item_embedding", ...],
 * "freeze": ["item_embedding", ...]}; without "copy" every compatible block is copied
 */
static void
UsParseInitFrom(JsonbValue *v, UsTrainOptions *opts)
{
	JsonbIterator *it;
	JsonbValue	val;
	char	   *key;
	static const char *const valid_keys[] = {"copy", "freeze", "model", "version", NULL};
	const char *blocks[US_N_BLOCKS + 1];

	for (int i = 0; i < US_N_BLOCKS; i++)
		blocks[i] = us_block_name(i);
	blocks[US_N_BLOCKS] = NULL;
	it = UsOptObject("init_from", v,
					 "For example {\"model\": \"pretrained\", \"version\": 2, \"freeze\": [\"item_embedding\"]}.");
	while ((key = UsOptNextKey(&it, &val)) != NULL)
	{
		if (strcmp(key, "model") == 0)
		{
			if (val.type != jbvString || val.val.string.len == 0)
				ereport(ERROR,
						(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						 errmsg("option \"init_from.model\" must be a model name")));
			opts->init_model = pnstrdup(val.val.string.val, val.val.string.len);
		}
		else if (strcmp(key, "version") == 0)
		{
			if (val.type != jbvNull)
				opts->init_version = (int32) UsOptInt("init_from.version", &val, 1, INT32_MAX);
		}
		else if (strcmp(key, "freeze") == 0)
			opts->freeze = UsParseBlockList(&val, "init_from.freeze", blocks);
		else if (strcmp(key, "copy") == 0)
		{
			opts->init_copy = UsParseBlockList(&val, "init_from.copy", blocks);
			if (opts->init_copy == 0)
				ereport(ERROR,
						(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						 errmsg("option \"init_from.copy\" must name at least one block"),
						 errhint("Leave \"copy\" out to copy every compatible block.")));
		}
		else
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("unrecognized key \"%s\" in option \"init_from\"", key),
					 errdetail("Valid keys are %s.", UsJoinNames(valid_keys))));
	}
	if (opts->init_model == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("option \"init_from\" needs a \"model\"")));
}

static void
UsParseWidths(JsonbValue *v, UsTrainOptions *opts)
{
	JsonbIterator *it;
	JsonbValue	e;
	JsonbIteratorToken r;
	int32		n = 0;

	if (v->type != jbvBinary || !JsonContainerIsArray(v->val.binary.data))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("option \"filter_widths\" must be an array of integers between 1 and %d",
						US_MAX_FILTER_WIDTH)));
	it = JsonbIteratorInit(v->val.binary.data);
	while ((r = JsonbIteratorNext(&it, &e, true)) != WJB_DONE)
	{
		int32		w;

		if (r != WJB_ELEM)
			continue;
		if (n >= US_MAX_WIDTHS)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("option \"filter_widths\" has more than %d widths", US_MAX_WIDTHS)));
		w = (int32) UsOptInt("filter_widths", &e, 1, US_MAX_FILTER_WIDTH);
		for (int32 i = 0; i < n; i++)
			if (opts->widths[i] == w)
				ereport(ERROR,
						(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						 errmsg("option \"filter_widths\" lists width %d twice", w)));
		opts->widths[n++] = w;
	}
	if (n == 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("option \"filter_widths\" must not be empty")));
	/* ascending, as the core expects */
	for (int32 i = 1; i < n; i++)
		for (int32 j = i; j > 0 && opts->widths[j - 1] > opts->widths[j]; j--)
		{
			int32		t = opts->widths[j];

			opts->widths[j] = opts->widths[j - 1];
			opts->widths[j - 1] = t;
		}
	opts->n_widths = n;
}

/* every default from the core's table of option defaults (userseq/us_defaults.h) */
static void
UsDefaultOptions(UsTrainOptions *o, us_task task)
{
	memset(o, 0, sizeof(*o));
	o->task = task;
	o->epochs = (int32) us_default(US_DEF_EPOCHS, task);
	o->batch_examples = us_default(US_DEF_BATCH_UNIT, task) != 0;
	o->batch_size = (int32) us_default(US_DEF_BATCH_SIZE, task);
	o->learning_rate = us_default(US_DEF_LEARNING_RATE, task);
	o->optimizer = (int32) us_default(US_DEF_OPTIMIZER, task);
	o->weight_decay = us_default(US_DEF_WEIGHT_DECAY, task);
	o->momentum = us_default(US_DEF_MOMENTUM, task);
	o->clip_norm = us_default(US_DEF_CLIP_NORM, task);
	o->lr_schedule = (int32) us_default(US_DEF_LR_SCHEDULE, task);
	o->lr_step_epochs = (int32) us_default(US_DEF_LR_STEP_EPOCHS, task);
	o->lr_gamma = us_default(US_DEF_LR_GAMMA, task);
	o->embedding_dim = (int32) us_default(US_DEF_EMBEDDING_DIM, task);
	o->n_widths = (int32) us_default(US_DEF_FILTER_WIDTHS, task);
	for (int i = 0; i < o->n_widths; i++)
		o->widths[i] = us_default_widths[i];
	o->num_filters = (int32) us_default(US_DEF_NUM_FILTERS, task);
	o->hidden_dim = (int32) us_default(US_DEF_HIDDEN_DIM, task);
	o->dropout = us_default(US_DEF_DROPOUT, task);
	o->embed_init_std = us_default(US_DEF_EMBED_INIT_STD, task);
	o->embed_dropout = us_default(US_DEF_EMBED_DROPOUT, task);
	o->max_len = (int32) us_default(US_DEF_MAX_LEN, task);
	o->min_count = (int32) us_default(US_DEF_MIN_COUNT, task);
	o->max_items = (int32) us_default(US_DEF_MAX_ITEMS, task);
	o->valid_method = (int32) us_default(US_DEF_VALIDATION, task);
	o->valid_fraction = us_default(US_DEF_VALID_FRACTION, task);
	o->patience = (int32) us_default(US_DEF_PATIENCE, task);
	o->seed = (int64) us_default(US_DEF_SEED, task);
	o->threads = userseq_threads;	/* US_DEF_THREADS: the GUC */
	o->behavior = -1;			/* US_DEF_BEHAVIOR: auto, on when the data has labels */
	o->time_gaps = -1;			/* US_DEF_TIME_GAPS: auto, on for label tasks on userseq input */
	o->recent_window = (int32) us_default(US_DEF_RECENT_WINDOW, task);
	o->tie_output = us_default(US_DEF_TIE_OUTPUT, task) != 0;
	o->negatives = -1;			/* US_DEF_NEGATIVES: auto, by catalogue size */
	/* US_DEF_TRANSITION_PRIOR: auto for next_item, else off */
	o->trans_mode = task == US_TASK_NEXT_ITEM ? US_TRANS_PRIOR_AUTO : US_TRANS_PRIOR_OFF;
	/* US_DEF_REPEAT_PRIOR: the same */
	o->repeat_mode = o->trans_mode;
	o->max_examples_per_seq = (int32) us_default(US_DEF_MAX_EXAMPLES_PER_SEQ, task);
	o->pos_weight = us_default(US_DEF_POS_WEIGHT, task);
	o->deploy = us_default(US_DEF_DEPLOY, task) != 0;
	o->architecture = (int32) us_default(US_DEF_ARCHITECTURE, task);
	o->num_blocks = (int32) us_default(US_DEF_NUM_BLOCKS, task);
	o->num_heads = (int32) us_default(US_DEF_NUM_HEADS, task);
}

static void
UsOnlyFor(const char *key, us_task task, bool ok, const char *tasks)
{
	if (!ok)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("option \"%s\" applies only to task%s %s, not to \"%s\"", key,
						strchr(tasks, ' ') ? "s" : "", tasks, us_task_name(task))));
}

void
UsParseTrainOptions(Jsonb *options, us_task task, UsTrainOptions *opts)
{
	JsonbIterator *it;
	JsonbValue	k,
				v;
	char	   *key;
	ErrorContextCallback errcb;
	bool		next_task = (task == US_TASK_NEXT_ITEM || task == US_TASK_NEXT_BEHAVIOR);
	bool		set_hidden = false,
				set_embed = false;
	/* options of one architecture only, checked once the architecture is known */
	const char *cnn_only = NULL,
			   *sasrec_only = NULL;

	UsDefaultOptions(opts, task);
	if (options == NULL)
		return;
	if (!JB_ROOT_IS_OBJECT(options) || JB_ROOT_IS_SCALAR(options))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("training options must be a JSON object"),
				 errdetail("Valid keys are %s.", UsJoinNames(us_option_names))));

	errcb.callback = UsOptionErrorContext;
	errcb.arg = NULL;
	errcb.previous = error_context_stack;
	error_context_stack = &errcb;

	it = JsonbIteratorInit(&options->root);
	(void) JsonbIteratorNext(&it, &k, false);	/* WJB_BEGIN_OBJECT */
	while ((key = UsOptNextKey(&it, &v)) != NULL)
	{
		us_current_option = key;

		if (strcmp(key, "epochs") == 0)
			opts->epochs = (int32) UsOptInt(key, &v, 1, 10000);
		else if (strcmp(key, "batch_size") == 0)
			opts->batch_size = (int32) UsOptInt(key, &v, 1, 65536);
		else if (strcmp(key, "learning_rate") == 0)
			opts->learning_rate = UsOptFloat(key, &v, 0, true, 10, false);
		else if (strcmp(key, "batch_unit") == 0)
			opts->batch_examples = UsOptChoice(key, &v, us_batch_unit_names, NULL, NULL) != 0;
		else if (strcmp(key, "optimizer") == 0)
			opts->optimizer = UsOptChoice(key, &v, us_optimizer_names, "optimizer", "optimizers");
		else if (strcmp(key, "weight_decay") == 0)
			opts->weight_decay = UsOptFloat(key, &v, 0, false, 1, false);
		else if (strcmp(key, "momentum") == 0)
			opts->momentum = UsOptFloat(key, &v, 0, false, 1, true);
		else if (strcmp(key, "clip_norm") == 0)
			opts->clip_norm = UsOptFloat(key, &v, 0, false, 1e6, false);
		else if (strcmp(key, "lr_schedule") == 0)
			opts->lr_schedule = UsOptChoice(key, &v, us_lr_schedule_names,
											"learning-rate schedule", "schedules");
		else if (strcmp(key, "lr_step_epochs") == 0)
			opts->lr_step_epochs = (int32) UsOptInt(key, &v, 1, 10000);
		else if (strcmp(key, "lr_gamma") == 0)
			opts->lr_gamma = UsOptFloat(key, &v, 0, true, 1, false);
		else if (strcmp(key, "embedding_dim") == 0)
		{
			opts->embedding_dim = (int32) UsOptInt(key, &v, 1, US_MAX_EMBED_DIM);
			set_embed = true;
		}
		else if (strcmp(key, "filter_widths") == 0)
		{
			UsParseWidths(&v, opts);
			cnn_only = "filter_widths";
		}
		else if (strcmp(key, "num_filters") == 0)
		{
			opts->num_filters = (int32) UsOptInt(key, &v, 1, US_MAX_FILTERS);
			cnn_only = "num_filters";
		}
		else if (strcmp(key, "architecture") == 0)
			opts->architecture = UsOptChoice(key, &v, us_architecture_names,
											 "architecture", "architectures");
		else if (strcmp(key, "num_blocks") == 0)
		{
			opts->num_blocks = (int32) UsOptInt(key, &v, 1, US_MAX_BLOCKS);
			sasrec_only = "num_blocks";
		}
		else if (strcmp(key, "num_heads") == 0)
		{
			opts->num_heads = (int32) UsOptInt(key, &v, 1, US_MAX_HEADS);
			sasrec_only = "num_heads";
		}
		else if (strcmp(key, "hidden_dim") == 0)
		{
			opts->hidden_dim = (int32) UsOptInt(key, &v, 1, US_MAX_HIDDEN);
			set_hidden = true;
		}
		else if (strcmp(key, "dropout") == 0)
			opts->dropout = UsOptFloat(key, &v, 0, false, 1, true);
		else if (strcmp(key, "embed_dropout") == 0)
			opts->embed_dropout = UsOptFloat(key, &v, 0, false, 1, true);
		else if (strcmp(key, "embed_init_std") == 0)
			opts->embed_init_std = UsOptFloat(key, &v, 0, true, 10, false);
		else if (strcmp(key, "max_len") == 0)
			opts->max_len = (int32) UsOptInt(key, &v, 1, US_MAX_LEN);
		else if (strcmp(key, "min_count") == 0)
			opts->min_count = (int32) UsOptInt(key, &v, 1, INT32_MAX);
		else if (strcmp(key, "max_items") == 0)
			opts->max_items = (int32) UsOptInt(key, &v, 0, US_MAX_ITEMS - US_ROW_FIRST);
		else if (strcmp(key, "validation") == 0)
			UsParseValidation(&v, opts);
		else if (strcmp(key, "patience") == 0)
			opts->patience = (int32) UsOptInt(key, &v, 0, 10000);
		else if (strcmp(key, "seed") == 0)
			opts->seed = UsOptInt(key, &v, 0, (INT64CONST(1) << 53) - 1);
		else if (strcmp(key, "threads") == 0)
			opts->threads = (int32) UsOptInt(key, &v, 1, 64);
		else if (strcmp(key, "behavior") == 0)
			opts->behavior = UsOptBool(key, &v) ? 1 : 0;
		else if (strcmp(key, "time_gaps") == 0)
		{
			if (v.type == jbvBool)
				opts->time_gaps = v.val.boolean ? US_DEFAULT_GAP_BUCKETS : 0;
			else if (v.type == jbvNumeric)
				opts->time_gaps = (int32) UsOptInt(key, &v, 3, US_MAX_GAP_BUCKETS);
			else
				ereport(ERROR,
						(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						 errmsg("option \"time_gaps\" must be true, false or a bucket count between 3 and %d",
								US_MAX_GAP_BUCKETS)));
		}
		else if (strcmp(key, "recent_window") == 0)
		{
			opts->recent_window = (int32) UsOptInt(key, &v, 0, US_MAX_RECENT);
			cnn_only = "recent_window";
		}
		else if (strcmp(key, "tie_output") == 0)
		{
			UsOnlyFor(key, task, task == US_TASK_NEXT_ITEM, "next_item");
			opts->tie_output = UsOptBool(key, &v);
		}
		else if (strcmp(key, "negatives") == 0)
		{
			UsOnlyFor(key, task, task == US_TASK_NEXT_ITEM, "next_item");
			if (v.type == jbvString && v.val.string.len == 4 &&
				memcmp(v.val.string.val, "auto", 4) == 0)
				opts->negatives = -1;
			else if (v.type == jbvNumeric)
				opts->negatives = (int32) UsOptInt(key, &v, 0, US_MAX_ITEMS);
			else
				ereport(ERROR,
						(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						 errmsg("option \"negatives\" must be \"auto\" or an integer between 0 (full softmax) and %d",
								US_MAX_ITEMS)));
		}
		else if (strcmp(key, "transition_prior") == 0 || strcmp(key, "repeat_prior") == 0)
		{
			bool		repeat = key[0] == 'r';
			bool		is_auto = v.type == jbvString && v.val.string.len == 4 &&
				memcmp(v.val.string.val, "auto", 4) == 0;
			bool		is_off = (v.type == jbvString && v.val.string.len == 3 &&
								  memcmp(v.val.string.val, "off", 3) == 0) ||
				(v.type == jbvBool && !v.val.boolean);
			int32	   *mode = repeat ? &opts->repeat_mode : &opts->trans_mode;

			/* other tasks have no prior: only their default ("off") is accepted */
			if (task != US_TASK_NEXT_ITEM && !is_off)
				UsOnlyFor(key, task, false, "next_item");
			if (is_auto)
				*mode = US_TRANS_PRIOR_AUTO;
			else if (is_off)
				*mode = US_TRANS_PRIOR_OFF;
			else if (v.type == jbvNumeric)
			{
				double		w = UsOptFloat(key, &v, 0, false, US_TRANS_PRIOR_MAX_WEIGHT, false);

				if (repeat)
					opts->repeat_weight = w;
				else
					opts->trans_weight = w;
				*mode = US_TRANS_PRIOR_FIXED;
			}
			else
				ereport(ERROR,
						(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						 errmsg("option \"%s\" must be \"auto\", \"off\", false or a weight between 0 and %g",
								key, US_TRANS_PRIOR_MAX_WEIGHT)));
		}
		else if (strcmp(key, "max_examples_per_seq") == 0)
		{
			UsOnlyFor(key, task, next_task, "next_item next_behavior");
			opts->max_examples_per_seq = (int32) UsOptInt(key, &v, 0, US_MAX_LEN);
		}
		else if (strcmp(key, "pos_weight") == 0)
		{
			UsOnlyFor(key, task, task == US_TASK_BINARY, "binary");
			opts->pos_weight = UsOptFloat(key, &v, 0, true, 1e6, false);
		}
		else if (strcmp(key, "deploy") == 0)
			opts->deploy = UsOptBool(key, &v);
		else if (strcmp(key, "init_from") == 0)
			UsParseInitFrom(&v, opts);
		else if (strcmp(key, "warm_start") == 0)
			opts->warm_start = UsOptBool(key, &v);
		else
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("unrecognized option \"%s\"", key),
					 errdetail("Valid options are %s.", UsJoinNames(us_option_names))));
	}
	us_current_option = NULL;
	error_context_stack = errcb.previous;

	if (opts->tie_output)
	{
		/* a tied output layer needs hidden_dim == embedding_dim: follow whichever was given */
		if (set_hidden && set_embed && opts->hidden_dim != opts->embedding_dim)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("option \"tie_output\" needs hidden_dim equal to embedding_dim (%d and %d given)",
							opts->hidden_dim, opts->embedding_dim)));
		if (set_hidden)
			opts->embedding_dim = opts->hidden_dim;
		else
			opts->hidden_dim = opts->embedding_dim;
	}
	if (opts->architecture == US_ARCH_SASREC)
	{
		if (cnn_only)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("option \"%s\" applies only to architecture \"textcnn\", not to \"sasrec\"",
							cnn_only)));
		if (opts->embedding_dim % opts->num_heads != 0)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("option \"num_heads\" must divide embedding_dim (%d heads, embedding_dim %d)",
							opts->num_heads, opts->embedding_dim)));
		/* the encoder replaces the convolutions and the recent window */
		opts->n_widths = 0;
		memset(opts->widths, 0, sizeof(opts->widths));
		opts->num_filters = 0;
		opts->recent_window = 0;
	}
	else if (sasrec_only)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("option \"%s\" applies only to architecture \"sasrec\", not to \"textcnn\"",
						sasrec_only)));
	if (task == US_TASK_NEXT_BEHAVIOR && opts->behavior == 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("task \"next_behavior\" needs \"behavior\": true")));
}

void
UsAppendOptionsJson(StringInfo buf, const UsTrainOptions *o)
{
	appendStringInfo(buf, "\"task\": \"%s\", \"epochs\": %d, \"batch_size\": %d, "
					 "\"batch_unit\": \"%s\", "
					 "\"learning_rate\": %.17g, \"optimizer\": \"%s\", \"weight_decay\": %.17g, "
					 "\"momentum\": %.17g, \"clip_norm\": %.17g, \"lr_schedule\": \"%s\", "
					 "\"lr_step_epochs\": %d, \"lr_gamma\": %.17g, \"embedding_dim\": %d, "
					 "\"filter_widths\": [",
					 us_task_name(o->task), o->epochs, o->batch_size,
					 us_name_of(us_batch_unit_names, o->batch_examples), o->learning_rate,
					 us_name_of(us_optimizer_names, o->optimizer), o->weight_decay, o->momentum,
					 o->clip_norm, us_name_of(us_lr_schedule_names, o->lr_schedule),
					 o->lr_step_epochs, o->lr_gamma, o->embedding_dim);
	for (int i = 0; i < o->n_widths; i++)
		appendStringInfo(buf, "%s%d", i ? ", " : "", o->widths[i]);
	appendStringInfo(buf, "], \"num_filters\": %d, \"hidden_dim\": %d, \"dropout\": %.17g, "
					 "\"embed_dropout\": %.17g, \"embed_init_std\": %.17g, "
					 "\"max_len\": %d, \"min_count\": %d, \"max_items\": %d, "
					 "\"validation\": {\"method\": \"%s\"",
					 o->num_filters, o->hidden_dim, o->dropout, o->embed_dropout,
					 o->embed_init_std, o->max_len, o->min_count,
					 o->max_items, us_name_of(us_validation_names, o->valid_method));
	if (o->valid_method == US_VALID_RANDOM)
		appendStringInfo(buf, ", \"fraction\": %.17g", o->valid_fraction);
	if (o->valid_method == US_VALID_TIME)
		appendStringInfo(buf, ", \"cutoff\": \"%s\"", timestamptz_to_str(o->valid_cutoff));
	if (o->valid_method == US_VALID_LAST_BASKET)
		appendStringInfo(buf, ", \"within\": \"" INT64_FORMAT " microseconds\"", o->valid_within);
	appendStringInfo(buf, "}, \"patience\": %d, \"seed\": " INT64_FORMAT ", \"threads\": %d, "
					 "\"behavior\": %s, \"time_gaps\": %d, \"recent_window\": %d, "
					 "\"tie_output\": %s, \"negatives\": %d, \"max_examples_per_seq\": %d, "
					 "\"pos_weight\": %.17g, \"deploy\": %s",
					 o->patience, o->seed, o->threads, o->behavior > 0 ? "true" : "false",
					 o->time_gaps, o->recent_window, o->tie_output ? "true" : "false",
					 o->negatives, o->max_examples_per_seq, o->pos_weight,
					 o->deploy ? "true" : "false");
	/* next_item only (other tasks have none, and their config reads as before) */
	if (o->task == US_TASK_NEXT_ITEM)
	{
		if (o->trans_mode == US_TRANS_PRIOR_FIXED)
			appendStringInfo(buf, ", \"transition_prior\": %.17g", o->trans_weight);
		else
			appendStringInfo(buf, ", \"transition_prior\": \"%s\"",
							 o->trans_mode == US_TRANS_PRIOR_AUTO ? "auto" : "off");
		if (o->repeat_mode == US_TRANS_PRIOR_FIXED)
			appendStringInfo(buf, ", \"repeat_prior\": %.17g", o->repeat_weight);
		else
			appendStringInfo(buf, ", \"repeat_prior\": \"%s\"",
							 o->repeat_mode == US_TRANS_PRIOR_AUTO ? "auto" : "off");
	}
	/* the default architecture is left implicit, so text-CNN options read as before */
	if (o->architecture == US_ARCH_SASREC)
		appendStringInfo(buf, ", \"architecture\": \"sasrec\", \"num_blocks\": %d, \"num_heads\": %d",
						 o->num_blocks, o->num_heads);
	if (o->init_model)
	{
		appendStringInfoString(buf, ", \"init_from\": {\"model\": ");
		escape_json(buf, o->init_model);
		if (o->init_version > 0)
			appendStringInfo(buf, ", \"version\": %d", o->init_version);
		if (o->init_copy)
		{
			appendStringInfoString(buf, ", \"copy\": [");
			for (int i = 0, n = 0; i < US_N_BLOCKS; i++)
				if (o->init_copy & (1u << i))
					appendStringInfo(buf, "%s\"%s\"", n++ ? ", " : "", us_block_name(i));
			appendStringInfoChar(buf, ']');
		}
		appendStringInfoString(buf, ", \"freeze\": [");
		for (int i = 0, n = 0; i < US_N_BLOCKS; i++)
			if (o->freeze & (1u << i))
				appendStringInfo(buf, "%s\"%s\"", n++ ? ", " : "", us_block_name(i));
		appendStringInfoString(buf, "]}");
	}
}
