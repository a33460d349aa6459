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
	"recent_window", "seed", "threads",
	"tie_output", "time_gaps", "validation", "warm_start", "weight_decay", NULL
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

static void
UsParseValidation(JsonbValue *v, UsTrainOptions *opts)
{
	JsonbIterator *it;
	JsonbValue	k,
				val;
	JsonbIteratorToken r;
	char	   *method = NULL;
	bool		has_fraction = false,
				has_cutoff = false;
	static const char *const valid_keys[] = {"cutoff", "fraction", "method", NULL};

	if (v->type != jbvBinary || !JsonContainerIsObject(v->val.binary.data))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("option \"validation\" must be an object"),
				 errhint("For example {\"method\": \"random\", \"fraction\": 0.1}, {\"method\": \"time\", \"cutoff\": \"2011-10-01\"} or {\"method\": \"leave_one_out\"}.")));
	it = JsonbIteratorInit(v->val.binary.data);
	r = JsonbIteratorNext(&it, &k, false);	/* WJB_BEGIN_OBJECT */
	while ((r = JsonbIteratorNext(&it, &k, true)) != WJB_DONE)
	{
		char	   *key;

		if (r != WJB_KEY)
			continue;
		key = pnstrdup(k.val.string.val, k.val.string.len);
		r = JsonbIteratorNext(&it, &val, true);
		if (strcmp(key, "method") == 0)
		{
			method = UsOptString("validation.method", &val, "random, time, leave_one_out");
			if (strcmp(method, "random") == 0)
				opts->valid_method = US_VALID_RANDOM;
			else if (strcmp(method, "time") == 0)
				opts->valid_method = US_VALID_TIME;
			else if (strcmp(method, "leave_one_out") == 0)
				opts->valid_method = US_VALID_LEAVE_ONE_OUT;
			else
				ereport(ERROR,
						(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						 errmsg("unrecognized validation method \"%s\"", method),
						 errdetail("Valid methods are random, time and leave_one_out.")));
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
		else
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("unrecognized key \"%s\" in option \"validation\"", key),
					 errdetail("Valid keys are %s.", UsJoinNames(valid_keys))));
	}
	if (method == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("option \"validation\" needs a \"method\""),
				 errdetail("Valid methods are random, time and leave_one_out.")));
	if (has_fraction && opts->valid_method != US_VALID_RANDOM)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("\"fraction\" applies only to validation method \"random\"")));
	if (opts->valid_method == US_VALID_TIME && !has_cutoff)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("validation method \"time\" needs a \"cutoff\" timestamp")));
	if (has_cutoff && opts->valid_method != US_VALID_TIME)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("\"cutoff\" applies only to validation method \"time\"")));
	if (opts->valid_method == US_VALID_LEAVE_ONE_OUT &&
		opts->task != US_TASK_NEXT_ITEM && opts->task != US_TASK_NEXT_BEHAVIOR)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("validation method \"leave_one_out\" applies only to tasks next_item and next_behavior")));
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
	JsonbValue	k,
				val;
	JsonbIteratorToken r;
	static const char *const valid_keys[] = {"copy", "freeze", "model", "version", NULL};
	const char *blocks[US_N_BLOCKS + 1];

	for (int i = 0; i < US_N_BLOCKS; i++)
		blocks[i] = us_block_name(i);
	blocks[US_N_BLOCKS] = NULL;
	if (v->type != jbvBinary || !JsonContainerIsObject(v->val.binary.data))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("option \"init_from\" must be an object"),
				 errhint("For example {\"model\": \"pretrained\", \"version\": 2, \"freeze\": [\"item_embedding\"]}.")));
	it = JsonbIteratorInit(v->val.binary.data);
	r = JsonbIteratorNext(&it, &k, false);
	while ((r = JsonbIteratorNext(&it, &k, true)) != WJB_DONE)
	{
		char	   *key;

		if (r != WJB_KEY)
			continue;
		key = pnstrdup(k.val.string.val, k.val.string.len);
		r = JsonbIteratorNext(&it, &val, true);
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

static void
UsDefaultOptions(UsTrainOptions *o, us_task task)
{
	bool		next_task = (task == US_TASK_NEXT_ITEM || task == US_TASK_NEXT_BEHAVIOR);

	memset(o, 0, sizeof(*o));
	o->task = task;
	o->epochs = 10;
	/* next_*: a step of 64 whole sequences held ~6 examples each on short histories and ~50 on
	 * long ones, so long histories got 8x fewer updates; examples make steps comparable */
	o->batch_examples = next_task;
	o->batch_size = next_task ? US_BATCH_EXAMPLES_NEXT : 64;
	o->learning_rate = 0.002;
	o->optimizer = US_OPT_ADAM;
	o->weight_decay = 0;
	o->momentum = 0.9;
	o->clip_norm = 5.0;
	o->lr_schedule = US_LR_CONSTANT;
	o->lr_step_epochs = 5;
	o->lr_gamma = 0.5;
	o->embedding_dim = 64;
	o->n_widths = 3;
	o->widths[0] = 2;
	o->widths[1] = 3;
	o->widths[2] = 4;
	o->num_filters = 64;
	o->hidden_dim = 64;
	o->dropout = 0.2;
	o->embed_init_std = next_task ? US_EMBED_INIT_STD_NEXT : 1.0;
	o->embed_dropout = 0.0;
	o->max_len = next_task ? 50 : 100;
	o->min_count = 1;
	o->max_items = 0;
	o->valid_method = next_task ? US_VALID_LEAVE_ONE_OUT : US_VALID_RANDOM;
	o->valid_fraction = 0.1;
	o->patience = 3;
	o->seed = 42;
	o->threads = userseq_threads;
	o->behavior = -1;
	o->time_gaps = -1;			/* auto: on for label tasks on userseq input */
	o->recent_window = next_task ? 3 : 0;
	o->tie_output = false;
	o->negatives = -1;
	o->max_examples_per_seq = 0;
	o->pos_weight = 1.0;
	o->deploy = true;
	o->architecture = US_ARCH_TEXTCNN;
	o->num_blocks = 2;
	o->num_heads = 1;
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
	JsonbIteratorToken r;
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
	r = JsonbIteratorNext(&it, &k, false);
	while ((r = JsonbIteratorNext(&it, &k, true)) != WJB_DONE)
	{
		char	   *key;

		if (r != WJB_KEY)
			continue;
		key = pnstrdup(k.val.string.val, k.val.string.len);
		us_current_option = key;
		r = JsonbIteratorNext(&it, &v, true);

		if (strcmp(key, "epochs") == 0)
			opts->epochs = (int32) UsOptInt(key, &v, 1, 10000);
		else if (strcmp(key, "batch_size") == 0)
			opts->batch_size = (int32) UsOptInt(key, &v, 1, 65536);
		else if (strcmp(key, "learning_rate") == 0)
			opts->learning_rate = UsOptFloat(key, &v, 0, true, 10, false);
		else if (strcmp(key, "batch_unit") == 0)
		{
			char	   *s = UsOptString(key, &v, "examples, sequences");

			if (strcmp(s, "examples") == 0)
				opts->batch_examples = true;
			else if (strcmp(s, "sequences") == 0)
				opts->batch_examples = false;
			else
				ereport(ERROR,
						(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						 errmsg("option \"batch_unit\" must be \"examples\" or \"sequences\", not \"%s\"", s)));
		}
		else if (strcmp(key, "optimizer") == 0)
		{
			char	   *s = UsOptString(key, &v, "adam, adamw, sgd");

			if (strcmp(s, "adam") == 0)
				opts->optimizer = US_OPT_ADAM;
			else if (strcmp(s, "adamw") == 0)
				opts->optimizer = US_OPT_ADAMW;
			else if (strcmp(s, "sgd") == 0)
				opts->optimizer = US_OPT_SGD;
			else
				ereport(ERROR,
						(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						 errmsg("unrecognized optimizer \"%s\"", s),
						 errdetail("Valid optimizers are adam, adamw and sgd.")));
		}
		else if (strcmp(key, "weight_decay") == 0)
			opts->weight_decay = UsOptFloat(key, &v, 0, false, 1, false);
		else if (strcmp(key, "momentum") == 0)
			opts->momentum = UsOptFloat(key, &v, 0, false, 1, true);
		else if (strcmp(key, "clip_norm") == 0)
			opts->clip_norm = UsOptFloat(key, &v, 0, false, 1e6, false);
		else if (strcmp(key, "lr_schedule") == 0)
		{
			char	   *s = UsOptString(key, &v, "constant, step, cosine");

			if (strcmp(s, "constant") == 0)
				opts->lr_schedule = US_LR_CONSTANT;
			else if (strcmp(s, "step") == 0)
				opts->lr_schedule = US_LR_STEP;
			else if (strcmp(s, "cosine") == 0)
				opts->lr_schedule = US_LR_COSINE;
			else
				ereport(ERROR,
						(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						 errmsg("unrecognized learning-rate schedule \"%s\"", s),
						 errdetail("Valid schedules are constant, step and cosine.")));
		}
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
		{
			char	   *s = UsOptString(key, &v, "textcnn, sasrec");

			if (strcmp(s, "textcnn") == 0)
				opts->architecture = US_ARCH_TEXTCNN;
			else if (strcmp(s, "sasrec") == 0)
				opts->architecture = US_ARCH_SASREC;
			else
				ereport(ERROR,
						(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						 errmsg("unrecognized architecture \"%s\"", s),
						 errdetail("Valid architectures are textcnn and sasrec.")));
		}
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
	static const char *const optim[] = {"", "adam", "adamw", "sgd"};
	static const char *const sched[] = {"", "constant", "step", "cosine"};
	static const char *const vmeth[] = {"", "random", "time", "leave_one_out"};

	appendStringInfo(buf, "\"task\": \"%s\", \"epochs\": %d, \"batch_size\": %d, "
					 "\"batch_unit\": \"%s\", "
					 "\"learning_rate\": %.17g, \"optimizer\": \"%s\", \"weight_decay\": %.17g, "
					 "\"momentum\": %.17g, \"clip_norm\": %.17g, \"lr_schedule\": \"%s\", "
					 "\"lr_step_epochs\": %d, \"lr_gamma\": %.17g, \"embedding_dim\": %d, "
					 "\"filter_widths\": [",
					 us_task_name(o->task), o->epochs, o->batch_size,
					 o->batch_examples ? "examples" : "sequences", o->learning_rate,
					 optim[o->optimizer], o->weight_decay, o->momentum, o->clip_norm,
					 sched[o->lr_schedule], o->lr_step_epochs, o->lr_gamma, o->embedding_dim);
	for (int i = 0; i < o->n_widths; i++)
		appendStringInfo(buf, "%s%d", i ? ", " : "", o->widths[i]);
	appendStringInfo(buf, "], \"num_filters\": %d, \"hidden_dim\": %d, \"dropout\": %.17g, "
					 "\"embed_dropout\": %.17g, \"embed_init_std\": %.17g, "
					 "\"max_len\": %d, \"min_count\": %d, \"max_items\": %d, "
					 "\"validation\": {\"method\": \"%s\"",
					 o->num_filters, o->hidden_dim, o->dropout, o->embed_dropout,
					 o->embed_init_std, o->max_len, o->min_count,
					 o->max_items, vmeth[o->valid_method]);
	if (o->valid_method == US_VALID_RANDOM)
		appendStringInfo(buf, ", \"fraction\": %.17g", o->valid_fraction);
	if (o->valid_method == US_VALID_TIME)
		appendStringInfo(buf, ", \"cutoff\": \"%s\"", timestamptz_to_str(o->valid_cutoff));
	appendStringInfo(buf, "}, \"patience\": %d, \"seed\": " INT64_FORMAT ", \"threads\": %d, "
					 "\"behavior\": %s, \"time_gaps\": %d, \"recent_window\": %d, "
					 "\"tie_output\": %s, \"negatives\": %d, \"max_examples_per_seq\": %d, "
					 "\"pos_weight\": %.17g, \"deploy\": %s",
					 o->patience, o->seed, o->threads, o->behavior > 0 ? "true" : "false",
					 o->time_gaps, o->recent_window, o->tie_output ? "true" : "false",
					 o->negatives, o->max_examples_per_seq, o->pos_weight,
					 o->deploy ? "true" : "false");
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
