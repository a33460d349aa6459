/*
 * explain.c: why a model scored a sequence as it did, and how surprising a sequence is.
 *   userseq_explain: per-event attributions (integrated gradients and gradient x input from
 *     the core's backward pass, us_model_attribute; occlusion by re-scoring the sequence
 *     without each event with the cached scorer, which is exactly what userseq_predict of the
 *     shorter sequence returns);
 *   userseq_surprise, userseq_surprise_events: per-event negative log-likelihood and rank under
 *     a next_item / next_behavior model (us_model_surprise, one prefix pass).
 * userseq_global_explain is SQL over userseq_explain (sql/parts/85_explain.sql).
 *
 * Explained output: binary P(true) (target 'false': P(false)), regression the value,
 * multiclass / next_behavior the probability of the predicted class or of target, next_item
 * the logit (userseq_recommend's score) of the top recommendation or of the item target.
 * Only the most recent max_len events reach the model; the others get no row.
 */
#include "postgres.h"

#include "funcapi.h"
#include "miscadmin.h"
#include "utils/builtins.h"
#include "utils/timestamp.h"
#include "utils/tuplestore.h"

#include "models/model_cache.h"
#include "seq/seq_events.h"
#include "seq/userseq_type.h"
#include "userseq_pg.h"
#include "userseq/us_metrics.h"

#define US_METHOD_OCCLUSION 100

/* The model of argument 0, by value or by name (name NULL by value). */
static UsModelEntry *
UsExplainModel(FunctionCallInfo fcinfo, bool by_value, const char **name)
{
	if (by_value)
	{
		*name = NULL;
		return UsModelByValue(fcinfo, PG_GETARG_DATUM(0));
	}
	*name = text_to_cstring(PG_GETARG_TEXT_PP(0));
	return UsModelByName(fcinfo, PG_GETARG_TEXT_PP(0));
}

/* input = the most recent max_len events of all */
static void
UsWindow(const us_model *model, const us_events *all, us_events *input)
{
	int32		skip = all->n > model->cfg.max_len ? all->n - model->cfg.max_len : 0;

	input->items = all->items + skip;
	input->behaviors = all->behaviors ? all->behaviors + skip : NULL;
	input->gaps = all->gaps ? all->gaps + skip : NULL;
	input->n = all->n - skip;
}

static void
UsScore(UsModelEntry *entry, const us_events *ev, float *out)
{
	UsCheckStatus(us_scorer_forward(entry->scorer, ev, out, NULL), "score sequence", NULL);
}

/* Row of the explained output; *negate for binary 'false' (P(false) = 1 - P(true)). */
static int32
UsExplainTarget(UsModelEntry *entry, FunctionCallInfo fcinfo, const UserSeq *seq,
				const us_events *all, const us_events *input, bool *negate)
{
	const us_model *model = entry->model;
	int			task = model->cfg.task;
	char	   *t = PG_ARGISNULL(2) ? NULL : text_to_cstring(PG_GETARG_TEXT_PP(2));

	*negate = false;
	if (task == US_TASK_BINARY)
	{
		if (t && strcmp(t, "true") != 0 && strcmp(t, "false") != 0)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("target of a binary model must be 'true', 'false' or NULL"),
					 errdetail("target was \"%s\".", t)));
		*negate = t && strcmp(t, "false") == 0;
		return 0;
	}
	if (task == US_TASK_REGRESSION)
	{
		if (t)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("a regression model has no target to choose"),
					 errhint("Pass target => NULL: the predicted value is explained.")));
		return 0;
	}
	if (task == US_TASK_NEXT_ITEM)
	{
		int32		row;

		if (t)
		{
			int64		id;
			char	   *end;

			errno = 0;
			id = strtoll(t, &end, 10);
			if (errno != 0 || end == t || *end != '\0')
				ereport(ERROR,
						(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						 errmsg("target of a next_item model must be an item id"),
						 errdetail("target was \"%s\".", t)));
			row = us_vocab_item_row(&model->vocab, id);
			if (row < US_ROW_FIRST)
				ereport(ERROR,
						(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						 errmsg("item %lld is not in the model's catalogue", (long long) id)));
			return row;
		}
		/* the top recommendation, as userseq_recommend (exclude_seen) gives it */
		{
			int32		k = Min(model->vocab.n_items, all->n - input->n + 1);
			int32	   *rows = palloc(sizeof(int32) * Max(k, 1));
			float	   *scores = palloc(sizeof(float) * Max(k, 1));
			int32		found = 0;

			UsCheckStatus(us_scorer_topk(entry->scorer, input, k, 1, rows, scores, &found),
						  "recommend items", NULL);
			for (int32 i = 0; i < found; i++)
			{
				bool		old = false;

				for (int32 j = 0; j < all->n - input->n && !old; j++)
					old = all->items[j] == rows[i];
				if (!old)
					return rows[i];
			}
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("the sequence has seen every item of the catalogue"),
					 errhint("Pass the item to explain as target.")));
		}
	}
	/* multiclass, next_behavior */
	if (t)
	{
		if (task == US_TASK_NEXT_BEHAVIOR)
		{
			int32		row = us_vocab_behavior_row(&model->vocab, t, strlen(t));

			if (row < US_ROW_FIRST)
				ereport(ERROR,
						(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						 errmsg("behaviour \"%s\" is not known to the model", t)));
			return row;
		}
		for (int32 i = 0; i < model->cfg.n_outputs; i++)
		{
			bool		named = model->vocab.n_classes == model->cfg.n_outputs && model->vocab.classes;

			if (named ? strcmp(model->vocab.classes[i], t) == 0 : atoi(t) == i)
				return i;
		}
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("class \"%s\" is not one of the model's classes", t),
				 errhint("userseq_class_labels lists them.")));
	}
	{
		float	   *out = palloc(sizeof(float) * model->cfg.n_outputs);
		int32		first,
					count;

		UsScore(entry, input, out);
		us_model_class_range(model, &first, &count);
		return first + us_argmax(out + first, Max(count, 1));
	}
}

/*
 * The explained output of ev: with a screened next_item scorer only the target's logit is
 * computed (bit-identical to the full forward's), else the full forward into out.
 */
static double
UsExplainedOf(UsModelEntry *entry, const us_events *ev, int32 target, bool negate, float *out);

static double
UsExplained(const us_model *model, const float *out, int32 target, bool negate)
{
	int			task = model->cfg.task;
	double		v = (task == US_TASK_BINARY || task == US_TASK_REGRESSION) ? out[0] : out[target];

	return negate ? 1.0 - v : v;
}

/*
 * The explained value of ev. next_item: the network's logit, as the gradient methods explain
 * it: the scorer's logit less the priors' terms (the transition term depends on the last event
 * only, the repeat term on counts of the target in the history; neither is attributed).
 */
static double
UsExplainedOf(UsModelEntry *entry, const us_events *ev, int32 target, bool negate, float *out)
{
	if (entry->model->cfg.task == US_TASK_NEXT_ITEM)
	{
		float		logit;
		int32		last = ev->n > 0 ? ev->items[ev->n - 1] : US_ROW_PAD;

		if (us_scorer_is_screened(entry->scorer))
			UsCheckStatus(us_scorer_row_logits(entry->scorer, ev, &target, 1, &logit),
						  "score sequence", NULL);
		else
		{
			UsScore(entry, ev, out);
			logit = out[target];
		}
		return (double) logit - us_transitions_term(entry->model, last, target) -
			us_repeat_term(entry->model, ev->items, ev->n, target);
	}
	UsScore(entry, ev, out);
	return UsExplained(entry->model, out, target, negate);
}

/*
 * Occlusion: f(seq) - f(seq without event j) for every event j of the window, each re-scored
 * with the cached scorer on exactly the encoding UsSeqToEvents gives the shorter sequence
 * (the next event's gap measured to the new predecessor; an older event moves into the window).
 */
static void
UsOcclusion(UsModelEntry *entry, const UserSeq *seq, const us_events *all, int32 target,
			bool negate, double *attr)
{
	const us_model *model = entry->model;
	int32		L = model->cfg.max_len;
	int32		n = all->n;
	int32		m = Min(n, L);
	int32		lo = Max(0, n - L - 1);	/* the shorter sequence's window starts at or after lo */
	const TimestampTz *times = UserSeqTimes(seq);
	float	   *out = palloc(sizeof(float) * model->cfg.n_outputs);
	int32	   *it = palloc(sizeof(int32) * (L + 1)),
			   *bh = palloc(sizeof(int32) * (L + 1)),
			   *gp = palloc(sizeof(int32) * (L + 1));
	us_events	input,
				ev;
	double		fx;

	UsWindow(model, all, &input);
	fx = UsExplainedOf(entry, &input, target, negate, out);
	for (int32 t = 0; t < m; t++)
	{
		int32		j = n - m + t;	/* the dropped event */
		int32		k = 0;

		CHECK_FOR_INTERRUPTS();
		for (int32 i = lo; i < n; i++)
		{
			if (i == j)
				continue;
			it[k] = all->items[i];
			bh[k] = all->behaviors ? all->behaviors[i] : 0;
			gp[k] = all->gaps ? all->gaps[i] : 0;
			if (all->gaps && i == j + 1)
				gp[k] = UsEventGapBucket(times, j - 1, i, model->cfg.n_gap_buckets);
			k++;
		}
		ev.n = Min(k, L);
		ev.items = it + (k - ev.n);
		ev.behaviors = all->behaviors ? bh + (k - ev.n) : NULL;
		ev.gaps = all->gaps ? gp + (k - ev.n) : NULL;
		attr[t] = fx - UsExplainedOf(entry, &ev, target, negate, out);
	}
}

/* position, item, ts, behavior of event j of seq (0-based), then the value columns */
static void
UsEventColumns(const UserSeq *seq, int32 j, Datum *values, bool *nulls)
{
	uint8		code = UserSeqBehaviors(seq)[j];

	values[0] = Int32GetDatum(j + 1);
	values[1] = Int64GetDatum(UserSeqItems(seq)[j]);
	values[2] = TimestampTzGetDatum(UserSeqTimes(seq)[j]);
	nulls[0] = nulls[1] = nulls[2] = false;
	if (code == 0)
		nulls[3] = true;
	else
	{
		int			len;
		const char *label = UserSeqLabel(seq, code - 1, &len);

		values[3] = PointerGetDatum(cstring_to_text_with_len(label, len));
		nulls[3] = false;
	}
}

static Datum
UsExplain(FunctionCallInfo fcinfo, bool by_value)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	const char *name;
	UsModelEntry *entry;
	const us_model *model;
	UserSeq    *seq;
	us_events	all,
				input;
	char	   *method;
	int			m;
	int32		steps,
				target;
	bool		negate;
	double	   *attr;

	InitMaterializedSRF(fcinfo, MAT_SRF_USE_EXPECTED_DESC);
	if (PG_ARGISNULL(0) || PG_ARGISNULL(1))
		return (Datum) 0;
	method = PG_ARGISNULL(3) ? "integrated_gradients" : text_to_cstring(PG_GETARG_TEXT_PP(3));
	steps = PG_ARGISNULL(4) ? 32 : PG_GETARG_INT32(4);
	if (strcmp(method, "integrated_gradients") == 0)
		m = US_ATTR_INTEGRATED_GRADIENTS;
	else if (strcmp(method, "gradient_x_input") == 0)
		m = US_ATTR_GRADIENT_X_INPUT;
	else if (strcmp(method, "occlusion") == 0)
		m = US_METHOD_OCCLUSION;
	else
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("unknown explanation method \"%s\"", method),
				 errhint("Use integrated_gradients, gradient_x_input or occlusion.")));
	if (steps < 1 || steps > 10000)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("steps must be between 1 and 10000"),
				 errdetail("steps was %d.", steps)));

	entry = UsExplainModel(fcinfo, by_value, &name);
	model = entry->model;
	/* the gradient methods differentiate the text-CNN's layers; occlusion only re-scores */
	if (m != US_METHOD_OCCLUSION && model->cfg.architecture != US_ARCH_TEXTCNN)
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("explanation method \"%s\" is not available for architecture \"sasrec\"", method),
				 errhint("Use method => 'occlusion', which re-scores the sequence without each event.")));
	seq = PG_GETARG_USERSEQ_P(1);
	UsSeqToEvents(&model->cfg, &model->vocab, seq, 0, UsQueryEventBuffer(fcinfo), &all);
	UsWindow(model, &all, &input);
	/* one sequence is too little work to split: threaded BLAS would only add hand-offs */
	UsApplyThreadCount(1);
	target = UsExplainTarget(entry, fcinfo, seq, &all, &input, &negate);
	attr = palloc(sizeof(double) * Max(input.n, 1));
	if (m == US_METHOD_OCCLUSION)
		UsOcclusion(entry, seq, &all, target, negate, attr);
	else
	{
		UsCheckStatus(us_model_attribute(model, &input, target, m, steps, attr, NULL, NULL),
					  "explain sequence", NULL);
		if (negate)
			for (int32 t = 0; t < input.n; t++)
				attr[t] = -attr[t];
	}
	for (int32 t = 0; t < input.n; t++)
	{
		Datum		values[5];
		bool		nulls[5];

		UsEventColumns(seq, all.n - input.n + t, values, nulls);
		values[4] = Float8GetDatum(attr[t]);
		nulls[4] = false;
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}
	return (Datum) 0;
}

/* Per-event attributions of a sequence toward the model's output */
FUNCTION_PREFIX PG_FUNCTION_INFO_V1(userseq_explain);
Datum
userseq_explain(PG_FUNCTION_ARGS)
{
	return UsExplain(fcinfo, false);
}

/* userseq_explain with the model passed as a bytea */
FUNCTION_PREFIX PG_FUNCTION_INFO_V1(userseq_explain_bytea);
Datum
userseq_explain_bytea(PG_FUNCTION_ARGS)
{
	return UsExplain(fcinfo, true);
}

/* ------------------------------------------------------------------ surprise */

/* nll / rank of the window's events after its first; returns their count */
static int32
UsSurprise(FunctionCallInfo fcinfo, bool by_value, const char *function, UserSeq **seq_out,
		   us_events *all, double **nll, int32 **rank)
{
	const char *name;
	UsModelEntry *entry = UsExplainModel(fcinfo, by_value, &name);
	const us_model *model = entry->model;
	UserSeq    *seq = PG_GETARG_USERSEQ_P(1);
	us_events	input;
	int32		k;

	UsRequireTask(entry, US_TASK_BIT(US_TASK_NEXT_ITEM) | US_TASK_BIT(US_TASK_NEXT_BEHAVIOR),
				  function, name);
	UsSeqToEvents(&model->cfg, &model->vocab, seq, 0, UsQueryEventBuffer(fcinfo), all);
	UsWindow(model, all, &input);
	if (model->cfg.task == US_TASK_NEXT_BEHAVIOR && input.behaviors == NULL)
	{
		/* a next_behavior model always has behaviour input; keep the core's contract */
		elog(ERROR, "next_behavior model without behaviour input");
	}
	k = Max(input.n - 1, 0);
	*nll = palloc(sizeof(double) * Max(k, 1));
	*rank = palloc(sizeof(int32) * Max(k, 1));
	UsApplyThreadCount(1);
	UsCheckStatus(us_model_surprise(model, &input, *nll, *rank), "score surprise", NULL);
	*seq_out = seq;
	return k;
}

static Datum
UsSurpriseMean(FunctionCallInfo fcinfo, bool by_value)
{
	UserSeq    *seq;
	us_events	all;
	double	   *nll;
	int32	   *rank;
	int32		k = UsSurprise(fcinfo, by_value, "userseq_surprise", &seq, &all, &nll, &rank);
	double		s = 0.0;

	if (k == 0)
		PG_RETURN_NULL();
	for (int32 i = 0; i < k; i++)
		s += nll[i];
	PG_RETURN_FLOAT8(s / k);
}

/* Mean negative log-likelihood per predicted event of a sequence (next_item / next_behavior) */
FUNCTION_PREFIX PG_FUNCTION_INFO_V1(userseq_surprise);
Datum
userseq_surprise(PG_FUNCTION_ARGS)
{
	return UsSurpriseMean(fcinfo, false);
}

/* userseq_surprise with the model passed as a bytea */
FUNCTION_PREFIX PG_FUNCTION_INFO_V1(userseq_surprise_bytea);
Datum
userseq_surprise_bytea(PG_FUNCTION_ARGS)
{
	return UsSurpriseMean(fcinfo, true);
}

static Datum
UsSurpriseEvents(FunctionCallInfo fcinfo, bool by_value)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	UserSeq    *seq;
	us_events	all;
	double	   *nll;
	int32	   *rank;
	int32		k;

	InitMaterializedSRF(fcinfo, MAT_SRF_USE_EXPECTED_DESC);
	k = UsSurprise(fcinfo, by_value, "userseq_surprise_events", &seq, &all, &nll, &rank);
	for (int32 i = 0; i < k; i++)
	{
		Datum		values[6];
		bool		nulls[6];

		/* the window's event i + 1 (its first event is not predicted) */
		UsEventColumns(seq, all.n - k + i, values, nulls);
		values[4] = Float8GetDatum(nll[i]);
		nulls[4] = false;
		values[5] = Int32GetDatum(rank[i]);
		nulls[5] = rank[i] == 0;
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}
	return (Datum) 0;
}

/* Per-event negative log-likelihood and rank of the actual event under the model */
FUNCTION_PREFIX PG_FUNCTION_INFO_V1(userseq_surprise_events);
Datum
userseq_surprise_events(PG_FUNCTION_ARGS)
{
	return UsSurpriseEvents(fcinfo, false);
}

/* userseq_surprise_events with the model passed as a bytea */
FUNCTION_PREFIX PG_FUNCTION_INFO_V1(userseq_surprise_events_bytea);
Datum
userseq_surprise_events_bytea(PG_FUNCTION_ARGS)
{
	return UsSurpriseEvents(fcinfo, true);
}
