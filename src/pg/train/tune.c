/*
 * tune.c: userseq_tune: random search over training options with successive halving, on data
 * read once.
 *
 * The query is read once (UsTrainReadShared: the same reader and validation split as
 * userseq_train) and every trial trains on that shared dataset. Trial 1 uses the options as
 * given (the defaults when '{}'); trials 2.. draw the keys of the search space from a
 * generator seeded by the "seed" option, so the same seed gives the same trials. Trials run
 * one after another; after epochs 1, 2, 4, 8, ... (the rungs) a trial continues only if its
 * best metric so far is in the better half of the metrics every earlier trial had at that rung
 * (sequential asynchronous successive halving, factor 2: only one trial and the best so far
 * are in memory at a time). A trial whose loss goes non-finite stops ("diverged"). The time
 * budget is checked between epochs; the trial count bounds the trials started.
 *
 * The best trial is stored through the normal catalog path (UsTrainStore) with its options,
 * so userseq_retrain reuses them, and metrics.tuning records the search; every trial is
 * logged in tuning_trials (UsCatalogLogTrials). Nothing is written before the end: an error,
 * a cancel or statement_timeout leaves the catalog untouched.
 *
 * This file does not train (train.c) or parse single options (options.c).
 */
#include "postgres.h"

#include <math.h>

#include "fmgr.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "utils/backend_status.h"
#include "utils/builtins.h"
#include "utils/datetime.h"
#include "utils/fmgrprotos.h"
#include "utils/jsonb.h"
#include "utils/numeric.h"
#include "utils/timestamp.h"

#include "userseq/us_rng.h"
#include "models/catalog.h"
#include "train/options.h"
#include "train/train.h"
#include "userseq_pg.h"

#define US_TUNE_MAX_TRIALS	1000
#define US_TUNE_MAX_CHOICES	64
#define US_TUNE_MAX_RUNGS	16

/*
 * The options a search space may name, and the default space. A key that this build's
 * userseq_train does not know (options added by other work) is skipped in the default space.
 * tie_output: next_item only.
 */
typedef struct UsTunable
{
	const char *key;
	bool		numeric;		/* may be given as a range */
	bool		integer;		/* ranges are rounded */
	const char *default_space;	/* JSON; NULL = searched only when space names it */
	const char *arch;			/* the one architecture the key applies to; NULL = every one */
} UsTunable;

/*
 * Keys of one architecture (the text-CNN's convolutions and recent window, the encoder's
 * blocks and heads) are left out of a trial of the other one, so "architecture" can be
 * searched together with them.
 */
static const UsTunable us_tunables[] = {
	{"learning_rate", true, false, "{\"min\": 0.0003, \"max\": 0.01, \"log\": true}", NULL},
	{"batch_size", true, true, "[32, 64, 128, 256]", NULL},	/* sequences; examples: below */
	{"dropout", true, false, "{\"min\": 0, \"max\": 0.5}", NULL},
	{"embed_dropout", true, false, "{\"min\": 0, \"max\": 0.5}", NULL},
	{"weight_decay", true, false, "[0, 0.000001, 0.00001, 0.0001]", NULL},
	{"embedding_dim", true, true, "[32, 64, 128]", NULL},
	{"num_filters", true, true, "[32, 64, 128]", "textcnn"},
	{"hidden_dim", true, true, "[32, 64, 128]", NULL},
	{"filter_widths", false, false, "[[2, 3, 4], [1, 2, 3], [2, 3], [3, 4, 5]]", "textcnn"},
	{"recent_window", true, true, "[0, 1, 3, 5]", "textcnn"},
	{"tie_output", false, false, "[false, true]", NULL},
	{"architecture", false, false, NULL, NULL},
	{"num_blocks", true, true, NULL, "sasrec"},
	{"num_heads", true, true, NULL, "sasrec"},
	{"optimizer", false, false, NULL, NULL},
	{"lr_schedule", false, false, NULL, NULL},
	{"clip_norm", true, false, NULL, NULL},
	{"embed_init_std", true, false, NULL, NULL},
	{NULL, false, false, NULL, NULL}
};

typedef struct UsTuneParam
{
	const UsTunable *def;
	bool		range;
	bool		log;
	double		lo,
				hi;
	int32		n_choices;
	char	   *choices[US_TUNE_MAX_CHOICES];	/* JSON text of each choice */
} UsTuneParam;

typedef struct UsTuneSpace
{
	int32		n;
	UsTuneParam params[lengthof(us_tunables)];
} UsTuneSpace;

static const char *us_tune_key = NULL;

static void
UsTuneErrorContext(void *arg)
{
	if (us_tune_key)
		errcontext("search space key \"%s\"", us_tune_key);
}

static char *
UsTunableNames(us_task task)
{
	StringInfoData buf;

	initStringInfo(&buf);
	for (const UsTunable *t = us_tunables; t->key; t++)
		if (UsIsTrainOption(t->key))
			appendStringInfo(&buf, "%s%s", buf.len ? ", " : "", t->key);
	return buf.data;
}

static const UsTunable *
UsFindTunable(const char *key)
{
	for (const UsTunable *t = us_tunables; t->key; t++)
		if (strcmp(t->key, key) == 0)
			return t;
	return NULL;
}

static char *
UsJsonText(JsonbValue *v)
{
	Jsonb	   *jb = JsonbValueToJsonb(v);

	return JsonbToCString(NULL, &jb->root, VARSIZE(jb));
}

static Jsonb *
UsJsonbFromText(const char *s)
{
	return DatumGetJsonbP(DirectFunctionCall1(jsonb_in, CStringGetDatum(s)));
}

static Jsonb *
UsJsonbConcat(Jsonb *a, Jsonb *b)
{
	return DatumGetJsonbP(DirectFunctionCall2(jsonb_concat, JsonbPGetDatum(a), JsonbPGetDatum(b)));
}

static bool
UsJsonbHasKey(Jsonb *jb, const char *key)
{
	return DatumGetBool(DirectFunctionCall2(jsonb_exists, JsonbPGetDatum(jb),
											CStringGetTextDatum(key)));
}

/*
 * A value of the space must be a valid option on top of the base options (22023 otherwise);
 * a key of one architecture is checked with that architecture.
 */
static void
UsCheckCandidate(Jsonb *base, us_task task, const UsTunable *def, const char *value_json)
{
	UsTrainOptions tmp;
	char	   *one = def->arch ?
		psprintf("{\"architecture\": \"%s\", \"%s\": %s}", def->arch, def->key, value_json) :
		psprintf("{\"%s\": %s}", def->key, value_json);

	UsParseTrainOptions(UsJsonbConcat(base, UsJsonbFromText(one)), task, &tmp);
}

/* Parses one entry (an array of choices or {"min", "max"[, "log"]}) into p. */
static void
UsParseParam(UsTuneParam *p, const UsTunable *def, JsonbValue *v)
{
	memset(p, 0, sizeof(*p));
	p->def = def;
	if (v->type == jbvBinary && JsonContainerIsArray(v->val.binary.data))
	{
		JsonbIterator *it = JsonbIteratorInit(v->val.binary.data);
		JsonbValue	e;
		JsonbIteratorToken r;

		while ((r = JsonbIteratorNext(&it, &e, true)) != WJB_DONE)
		{
			if (r != WJB_ELEM)
				continue;
			if (p->n_choices >= US_TUNE_MAX_CHOICES)
				ereport(ERROR,
						(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						 errmsg("a search space entry has more than %d choices", US_TUNE_MAX_CHOICES)));
			p->choices[p->n_choices++] = UsJsonText(&e);
		}
		if (p->n_choices == 0)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("a search space entry must not be an empty array")));
		return;
	}
	if (v->type == jbvBinary && JsonContainerIsObject(v->val.binary.data))
	{
		JsonbIterator *it = JsonbIteratorInit(v->val.binary.data);
		JsonbValue	k,
					val;
		JsonbIteratorToken r;
		bool		has_lo = false,
					has_hi = false;

		if (!def->numeric)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("option \"%s\" takes a list of choices, not a range", def->key)));
		p->range = true;
		while ((r = JsonbIteratorNext(&it, &k, true)) != WJB_DONE)
		{
			char	   *key;

			if (r != WJB_KEY)
				continue;
			key = pnstrdup(k.val.string.val, k.val.string.len);
			(void) JsonbIteratorNext(&it, &val, true);
			if (strcmp(key, "log") == 0)
			{
				if (val.type != jbvBool)
					ereport(ERROR,
							(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
							 errmsg("\"log\" of a range must be true or false")));
				p->log = val.val.boolean;
			}
			else if (strcmp(key, "min") == 0 || strcmp(key, "max") == 0)
			{
				double		d;

				if (val.type != jbvNumeric)
					ereport(ERROR,
							(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
							 errmsg("\"%s\" of a range must be a number", key)));
				d = DatumGetFloat8(DirectFunctionCall1(numeric_float8,
													   NumericGetDatum(val.val.numeric)));
				if (key[1] == 'i')
				{
					p->lo = d;
					has_lo = true;
				}
				else
				{
					p->hi = d;
					has_hi = true;
				}
			}
			else
				ereport(ERROR,
						(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						 errmsg("unrecognized key \"%s\" in a range", key),
						 errdetail("A range is {\"min\": number, \"max\": number, \"log\": boolean}; a list of choices is an array.")));
		}
		if (!has_lo || !has_hi || !(p->lo <= p->hi))
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("a range needs \"min\" and \"max\" with min <= max")));
		if (p->log && p->lo <= 0)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("a log range needs min > 0")));
		return;
	}
	ereport(ERROR,
			(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
			 errmsg("a search space entry must be an array of choices, a range {\"min\", \"max\", \"log\"} or null")));
}

static void
UsCheckParam(const UsTuneParam *p, Jsonb *base, us_task task)
{
	if (p->range)
	{
		UsCheckCandidate(base, task, p->def, psprintf("%.17g", p->def->integer ? round(p->lo) : p->lo));
		UsCheckCandidate(base, task, p->def, psprintf("%.17g", p->def->integer ? round(p->hi) : p->hi));
	}
	else
		for (int32 i = 0; i < p->n_choices; i++)
			UsCheckCandidate(base, task, p->def, p->choices[i]);
}

/*
 * The effective space: the default entries (for keys this build knows, minus keys fixed in
 * options), then every key of space replacing or adding an entry (null removes it).
 */
static void
UsBuildSpace(Jsonb *space, Jsonb *base, us_task task, bool batch_examples,
			 const char *base_arch, UsTuneSpace *out)
{
	ErrorContextCallback errcb;
	bool		removed[lengthof(us_tunables)] = {false};
	bool		given[lengthof(us_tunables)] = {false};
	UsTuneParam given_param[lengthof(us_tunables)];
	bool		arch_searched;

	errcb.callback = UsTuneErrorContext;
	errcb.arg = NULL;
	errcb.previous = error_context_stack;
	error_context_stack = &errcb;

	if (space)
	{
		JsonbIterator *it;
		JsonbValue	k,
					v;
		JsonbIteratorToken r;

		if (!JB_ROOT_IS_OBJECT(space) || JB_ROOT_IS_SCALAR(space))
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("search space must be a JSON object"),
					 errdetail("Tunable options are %s.", UsTunableNames(task))));
		it = JsonbIteratorInit(&space->root);
		while ((r = JsonbIteratorNext(&it, &k, true)) != WJB_DONE)
		{
			char	   *key;
			const UsTunable *def;
			int			idx;

			if (r != WJB_KEY)
				continue;
			key = pnstrdup(k.val.string.val, k.val.string.len);
			us_tune_key = key;
			(void) JsonbIteratorNext(&it, &v, true);
			def = UsFindTunable(key);
			if (def == NULL || !UsIsTrainOption(key))
				ereport(ERROR,
						(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						 errmsg("\"%s\" is not a tunable option", key),
						 errdetail("Tunable options are %s.", UsTunableNames(task))));
			idx = def - us_tunables;
			if (v.type == jbvNull)
				removed[idx] = true;
			else
			{
				UsParseParam(&given_param[idx], def, &v);
				UsCheckParam(&given_param[idx], base, task);
				given[idx] = true;
			}
		}
	}

	arch_searched = given[UsFindTunable("architecture") - us_tunables];
	out->n = 0;
	for (const UsTunable *t = us_tunables; t->key; t++)
	{
		int			idx = t - us_tunables;
		/* a key of another architecture than the one every trial has */
		bool		other_arch = t->arch && !arch_searched && strcmp(t->arch, base_arch) != 0;

		if (given[idx] && other_arch)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("search space key \"%s\" applies only to architecture \"%s\", not to \"%s\"",
							t->key, t->arch, base_arch),
					 errhint("Set \"architecture\" in the options, or search it in the space.")));
		if (given[idx])
			out->params[out->n++] = given_param[idx];
		else if (!removed[idx] && t->default_space && UsIsTrainOption(t->key) &&
				 !UsJsonbHasKey(base, t->key) && !other_arch &&
				 (strcmp(t->key, "tie_output") != 0 || task == US_TASK_NEXT_ITEM))
		{
			/* batch_unit "examples" (next_* default): steps of 256 examples, not 256 sequences */
			Jsonb	   *jb = UsJsonbFromText(strcmp(t->key, "batch_size") == 0 && batch_examples ?
											 "[128, 256, 512, 1024]" : t->default_space);
			JsonbValue	v;

			us_tune_key = t->key;
			v.type = jbvBinary;
			v.val.binary.data = &jb->root;
			v.val.binary.len = VARSIZE(jb) - VARHDRSZ;
			UsParseParam(&out->params[out->n], t, &v);
			out->n++;
		}
	}
	us_tune_key = NULL;
	error_context_stack = errcb.previous;
}

/* One draw of the space as a JSON object of options; tie_output true pins hidden_dim. */
static char *
UsSample(const UsTuneSpace *sp, us_rng *rng, const UsTrainOptions *base_opts)
{
	StringInfoData buf;
	bool		tie = base_opts->tie_output;	/* a tie_output entry of the space overrides */
	char	   *embed = NULL;
	char	   *vals[lengthof(us_tunables)];
	const char *arch = us_name_of(us_architecture_names, base_opts->architecture);

	initStringInfo(&buf);
	appendStringInfoChar(&buf, '{');
	/* every key is drawn (in the space's order, so the draws do not depend on the values) */
	for (int32 i = 0; i < sp->n; i++)
	{
		const UsTuneParam *p = &sp->params[i];
		char	   *val;

		if (p->range)
		{
			double		u = us_rng_uniform(rng);
			double		x = p->log ? exp(log(p->lo) + u * (log(p->hi) - log(p->lo)))
				: p->lo + u * (p->hi - p->lo);

			val = p->def->integer ? psprintf("%.0f", round(x)) : psprintf("%.3g", x);
		}
		else
			val = p->choices[us_rng_below(rng, (uint64) p->n_choices)];
		vals[i] = val;
		if (strcmp(p->def->key, "tie_output") == 0)
			tie = strcmp(val, "true") == 0;
		if (strcmp(p->def->key, "embedding_dim") == 0)
			embed = val;
		if (strcmp(p->def->key, "architecture") == 0)
			arch = pnstrdup(val + 1, strlen(val) - 2);	/* a JSON string, checked as an option */
	}
	/* then the keys of the trial's architecture; hidden_dim below, after tie_output is known */
	for (int32 i = 0; i < sp->n; i++)
	{
		const UsTuneParam *p = &sp->params[i];

		if (strcmp(p->def->key, "hidden_dim") == 0 || (p->def->arch && strcmp(p->def->arch, arch) != 0))
			continue;
		appendStringInfo(&buf, "%s\"%s\": %s", buf.len > 1 ? ", " : "", p->def->key, vals[i]);
	}
	for (int32 i = 0; i < sp->n; i++)
	{
		const UsTuneParam *p = &sp->params[i];

		if (strcmp(p->def->key, "hidden_dim") != 0)
			continue;
		/* the draw is consumed either way, so later keys do not depend on tie_output */
		if (p->range)
		{
			double		u = us_rng_uniform(rng);
			double		x = p->log ? exp(log(p->lo) + u * (log(p->hi) - log(p->lo)))
				: p->lo + u * (p->hi - p->lo);

			if (!tie)
				appendStringInfo(&buf, "%s\"hidden_dim\": %.0f", buf.len > 1 ? ", " : "", round(x));
		}
		else
		{
			char	   *val = p->choices[us_rng_below(rng, (uint64) p->n_choices)];

			if (!tie)
				appendStringInfo(&buf, "%s\"hidden_dim\": %s", buf.len > 1 ? ", " : "", val);
		}
	}
	if (tie)
		appendStringInfo(&buf, "%s\"hidden_dim\": %s", buf.len > 1 ? ", " : "",
						 embed ? embed : psprintf("%d", base_opts->embedding_dim));
	appendStringInfoChar(&buf, '}');
	return buf.data;
}

static double
UsIntervalSeconds(Interval *iv)
{
	return iv->time / (double) USECS_PER_SEC + iv->day * (double) SECS_PER_DAY +
		iv->month * (double) DAYS_PER_MONTH * SECS_PER_DAY;
}

static double
UsSecondsSince(TimestampTz t)
{
	return (double) (GetCurrentTimestamp() - t) / USECS_PER_SEC;
}

static bool
UsMetricBetter(double a, double b, bool higher)
{
	if (isnan(a))
		return false;
	if (isnan(b))
		return true;
	return higher ? a > b : a < b;
}

/* Successive halving at a rung: records m, true if it is in the better half so far. */
static bool
UsPromote(double *vals, int32 *n, double m, bool higher)
{
	int32		better = 0;

	vals[(*n)++] = m;
	if (isnan(m))
		return false;
	for (int32 i = 0; i < *n - 1; i++)
		if (UsMetricBetter(vals[i], m, higher))
			better++;
	return better < (*n + 1) / 2;
}

typedef struct UsTrial
{
	UsTrialRow row;
	Jsonb	   *options;		/* trained with (the stored model's, for the best) */
	Jsonb	   *shown;			/* returned and logged: options + the prior's fitted weight */
} UsTrial;

PG_FUNCTION_INFO_V1(userseq_tune);
Datum
userseq_tune(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	char	   *name,
			   *query,
			   *task_name;
	Jsonb	   *base;
	Jsonb	   *space;
	int32		n_trials;
	double		budget = -1;
	us_task		task;
	UsTuneSpace sp;
	UsTrainShared *shared;
	MemoryContext cxt;
	UsTrainOptions base_opts;
	us_rng		rng;
	TimestampTz start;
	UsTrial    *trials;
	int32		n_done = 0;
	double	   *rung_vals[US_TUNE_MAX_RUNGS];
	int32		rung_n[US_TUNE_MAX_RUNGS] = {0};
	UsTrainRun *best = NULL;
	int32		best_trial = -1;
	double		best_metric = NAN;
	const char *metric_name = NULL;
	bool		higher = true;
	bool		out_of_time = false;
	int64		tune_id;
	UsStoreResult res;
	StringInfoData extra;
	char	   *saved_activity = NULL;

	for (int i = 0; i < 3; i++)
		if (PG_ARGISNULL(i))
			ereport(ERROR,
					(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
					 errmsg("%s must not be NULL", i == 0 ? "model name" : i == 1 ? "training query" : "task")));
	name = text_to_cstring(PG_GETARG_TEXT_PP(0));
	query = text_to_cstring(PG_GETARG_TEXT_PP(1));
	task_name = text_to_cstring(PG_GETARG_TEXT_PP(2));
	base = PG_ARGISNULL(3) ? UsJsonbFromText("{}") : PG_GETARG_JSONB_P_COPY(3);
	n_trials = PG_ARGISNULL(4) ? 16 : PG_GETARG_INT32(4);
	if (!PG_ARGISNULL(5))
	{
		budget = UsIntervalSeconds(PG_GETARG_INTERVAL_P(5));
		if (!(budget > 0))
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("time_budget must be positive")));
	}
	space = PG_ARGISNULL(6) ? NULL : PG_GETARG_JSONB_P_COPY(6);
	if (n_trials < 1 || n_trials > US_TUNE_MAX_TRIALS)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("trials must be between 1 and %d", US_TUNE_MAX_TRIALS)));

	/* everything that can be checked before reading data */
	if (UsJsonbHasKey(base, "warm_start"))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("option \"warm_start\" is an option of userseq_retrain"),
				 errhint("To start every trial from another model's weights, use \"init_from\" and fix the shape options it needs.")));
	task = UsParseTask(task_name);
	UsParseTrainOptions(base, task, &base_opts);
	UsBuildSpace(space, base, task, base_opts.batch_examples,
				 us_name_of(us_architecture_names, base_opts.architecture), &sp);
	(void) UsCatalogCheckWrite(name, false);

	InitMaterializedSRF(fcinfo, MAT_SRF_USE_EXPECTED_DESC);
	start = GetCurrentTimestamp();
	/* each run shows its progress in front of the activity it found: give it the original */
	if (MyBEEntry && MyBEEntry->st_activity_raw)
		saved_activity = pstrdup(MyBEEntry->st_activity_raw);
	cxt = AllocSetContextCreate(CurrentMemoryContext, "userseq tuning", ALLOCSET_DEFAULT_SIZES);
	shared = UsTrainReadShared(name, query, task_name, base, cxt);
	trials = palloc0(sizeof(UsTrial) * n_trials);
	for (int i = 0; i < US_TUNE_MAX_RUNGS; i++)
		rung_vals[i] = palloc(sizeof(double) * n_trials);
	us_rng_seed(&rng, (uint64) base_opts.seed ^ UINT64CONST(0x7e57ab1e5eed));

	for (int32 t = 0; t < n_trials && !out_of_time; t++)
	{
		UsTrial    *tr = &trials[t];
		char	   *sample = "{}";
		UsTrainRun *run;
		UsTrainState st;
		UsEpochRow	row;
		double		trans_weight;
		TimestampTz tstart = GetCurrentTimestamp();
		const char *status = NULL;

		if (budget > 0 && t > 0 && UsSecondsSince(start) >= budget)
		{
			out_of_time = true;
			break;
		}
		/* trial 1: the options as given; then draws, redrawn (a few times) if already tried */
		if (t > 0 && sp.n > 0)
		{
			for (int attempt = 0; attempt < 20; attempt++)
			{
				bool		seen = false;

				sample = UsSample(&sp, &rng, &base_opts);
				tr->options = UsJsonbConcat(base, UsJsonbFromText(sample));
				for (int32 j = 0; j < t && !seen; j++)
					seen = DatumGetBool(DirectFunctionCall2(jsonb_eq, JsonbPGetDatum(trials[j].options),
															JsonbPGetDatum(tr->options)));
				if (!seen)
					break;
			}
		}
		else
			tr->options = base;
		if (t > 0 && sp.n == 0)
			break;				/* nothing to search: the given options are the only trial */

		if (saved_activity)
			pgstat_report_activity(STATE_RUNNING,
								   psprintf("userseq_tune %s: trial %d/%d | %s", name, t + 1,
											n_trials, saved_activity));
		run = UsTrainBegin(name, query, task_name, tr->options, cxt, shared);
		UsTrainSetTuning(run, true, NULL);
		while (UsTrainEpoch(run, &row))
		{
			int32		e = row.epoch;

			UsTrainGetState(run, &st);
			if (budget > 0 && UsSecondsSince(start) >= budget)
			{
				status = "time budget";
				out_of_time = true;
				break;
			}
			/* rungs at epochs 1, 2, 4, ... before the last */
			if (t > 0 && e < st.epochs_max && (e & (e - 1)) == 0)
			{
				int			k = 0;

				while ((1 << k) < e)
					k++;
				if (k < US_TUNE_MAX_RUNGS &&
					!UsPromote(rung_vals[k], &rung_n[k], st.best_metric, st.higher_better))
				{
					status = "pruned";
					break;
				}
			}
			else if (t == 0 && e < st.epochs_max && (e & (e - 1)) == 0)
			{
				int			k = 0;

				while ((1 << k) < e)
					k++;
				if (k < US_TUNE_MAX_RUNGS)
					(void) UsPromote(rung_vals[k], &rung_n[k], st.best_metric, st.higher_better);
			}
		}
		/*
		 * next_item: the trial's transition prior (the table built once, its own weight fitted
		 * on validation) before trials are compared, so the comparison is of the models that
		 * would be stored
		 */
		UsTrainGetState(run, &st);
		if (st.best_epoch > 0)
			trans_weight = UsTrainFinish(run);
		else
			trans_weight = NAN;
		UsTrainGetState(run, &st);
		metric_name = st.metric_name;
		higher = st.higher_better;
		if (status == NULL)
			status = st.diverged ? "diverged" : st.stopped_early ? "early stop" : "completed";
		tr->row.trial = t + 1;
		tr->row.run_id = st.run_id;
		/*
		 * the weight the trial's prior got, shown as the option that reproduces it (in the
		 * result and tuning_trials; the stored model keeps "auto" and refits on retraining)
		 */
		tr->shown = tr->options;
		if (!isnan(trans_weight) && st.opts->trans_mode == US_TRANS_PRIOR_AUTO)
			tr->shown = UsJsonbConcat(tr->shown,
									  UsJsonbFromText(psprintf("{\"transition_prior\": %.17g}",
															   trans_weight)));
		if (!isnan(trans_weight) && !isnan(st.repeat_weight) &&
			st.opts->repeat_mode == US_TRANS_PRIOR_AUTO)
			tr->shown = UsJsonbConcat(tr->shown,
									  UsJsonbFromText(psprintf("{\"repeat_prior\": %.17g}",
															   st.repeat_weight)));
		tr->row.options_json = JsonbToCString(NULL, &tr->shown->root, VARSIZE(tr->shown));
		tr->row.epochs = st.epochs_done;
		tr->row.valid_metric = st.best_metric;
		tr->row.seconds = UsSecondsSince(tstart);
		tr->row.status = status;
		n_done = t + 1;
		ereport(NOTICE,
				(errmsg("userseq_tune \"%s\" trial %d/%d: %s %.4f after %d epochs, %.1f s, %s: %s",
						name, t + 1, n_trials, st.metric_name, st.best_metric, st.epochs_done,
						tr->row.seconds, status, sample)));
		if (st.best_epoch > 0 && (best == NULL || UsMetricBetter(st.best_metric, best_metric, higher)))
		{
			if (best)
				UsTrainEnd(best);
			best = run;
			best_trial = t;
			best_metric = st.best_metric;
		}
		else
			UsTrainEnd(run);
		if (saved_activity)
			pgstat_report_activity(STATE_RUNNING, saved_activity);
		CHECK_FOR_INTERRUPTS();
	}
	if (best == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_DATA_EXCEPTION),
				 errmsg("no trial of userseq_tune produced a usable model"),
				 errdetail("Every trial diverged before its first validation."),
				 errhint("Lower the learning_rate range of the search space.")));
	if (out_of_time)
		ereport(NOTICE,
				(errmsg("userseq_tune \"%s\": time budget reached after %d of %d trials",
						name, n_done, n_trials)));

	tune_id = UsCatalogNextRunId();
	trials[best_trial].row.best = true;
	initStringInfo(&extra);
	appendStringInfo(&extra, ", \"tuning\": {\"tune_id\": " INT64_FORMAT ", \"trials\": %d, "
					 "\"trials_requested\": %d, \"best_trial\": %d, \"first_trial_metric\": ",
					 tune_id, n_done, n_trials, best_trial + 1);
	if (isnan(trials[0].row.valid_metric))
		appendStringInfoString(&extra, "null");
	else
		appendStringInfo(&extra, "%.17g", trials[0].row.valid_metric);
	appendStringInfo(&extra, ", \"seconds\": %.3f, \"time_budget_reached\": %s, \"sampler\": "
					 "\"random, seed " INT64_FORMAT ", successive halving factor 2 at epochs 1, 2, 4, ...\"}",
					 UsSecondsSince(start), out_of_time ? "true" : "false", base_opts.seed);
	UsTrainSetTuning(best, true, extra.data);
	UsTrainStore(best, base_opts.deploy, false, trials[best_trial].options, &res);
	{
		UsTrialRow *rows = palloc(sizeof(UsTrialRow) * Max(n_done, 1));

		for (int32 i = 0; i < n_done; i++)
			rows[i] = trials[i].row;
		UsCatalogLogTrials(name, res.version, tune_id, metric_name, rows, n_done);
	}
	ereport(NOTICE,
			(errmsg("userseq_tune stored model \"%s\" version %d from trial %d of %d (%s %.4f; trial 1 had %.4f)%s",
					name, res.version, best_trial + 1, n_done, metric_name, best_metric,
					trials[0].row.valid_metric, res.deployed ? ", deployed" : "")));

	for (int32 i = 0; i < n_done; i++)
	{
		Datum		values[7];
		bool		nulls[7] = {false};
		const UsTrialRow *r = &trials[i].row;

		values[0] = Int32GetDatum(r->trial);
		values[1] = JsonbPGetDatum(trials[i].shown);
		values[2] = Int32GetDatum(r->epochs);
		values[3] = Float8GetDatum(r->valid_metric);
		nulls[3] = isnan(r->valid_metric);
		values[4] = CStringGetTextDatum(metric_name);
		values[5] = Float8GetDatum(r->seconds);
		values[6] = CStringGetTextDatum(r->best ? psprintf("best (%s), version %d", r->status, res.version)
										: r->status);
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}
	UsTrainEnd(best);
	MemoryContextDelete(cxt);
	return (Datum) 0;
}
