/*
 * score.c: per-row scoring SQL functions: userseq_predict, userseq_predict_proba,
 * userseq_predict_class, userseq_embed, userseq_class_labels, each by model name (the
 * deployed catalog row) and by value (a model bytea).
 *
 * Models come from model_cache.c (decoded once per backend, pinned per query); sequences are
 * encoded by seq_events.c exactly as training encodes them. An empty sequence is scored as an
 * all-padding input (the model's output for "no history"); NULL inputs give NULL (STRICT).
 * This file does not rank items (recommend.c) or aggregate metrics (evaluate.c).
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "fmgr.h"
#include "utils/array.h"
#include "utils/builtins.h"

#include "models/model_cache.h"
#include "score/score.h"
#include "seq/seq_events.h"
#include "userseq_pg.h"
#include "seq/userseq_type.h"
#include "userseq/us_metrics.h"

#define US_CLASSIFIER_TASKS (US_TASK_BIT(US_TASK_BINARY) | US_TASK_BIT(US_TASK_MULTICLASS) | \
							 US_TASK_BIT(US_TASK_NEXT_BEHAVIOR))
#define US_PREDICT_TASKS	(US_CLASSIFIER_TASKS | US_TASK_BIT(US_TASK_REGRESSION))

/* The model an argument names: by name (text) or by value (bytea), and its display name. */
static UsModelEntry *
UsModelArg(FunctionCallInfo fcinfo, bool by_value, const char **name)
{
	if (by_value)
	{
		*name = NULL;
		return UsModelByValue(fcinfo, PG_GETARG_DATUM(0));
	}
	*name = text_to_cstring(PG_GETARG_TEXT_PP(0));
	return UsModelByName(fcinfo, PG_GETARG_TEXT_PP(0));
}

/* Runs the model on seq; returns the output vector (n_outputs), features if wanted. */
static float *
UsScoreSeq(FunctionCallInfo fcinfo, UsModelEntry *entry, Datum seqd, float **features)
{
	UserSeq    *seq = DatumGetUserSeqP(seqd);
	const us_model *model = entry->model;
	UsEventBuffer *buf = UsQueryEventBuffer(fcinfo);
	us_events	events;
	float	   *out = UsEntryOutput(entry);
	float	   *feat = features ? UsEntryFeatures(entry) : NULL;
	us_status	st;

	UsSeqToEvents(&model->cfg, &model->vocab, seq, model->cfg.max_len, buf, &events);
	/* one sequence is far too little work to split: threaded BLAS only adds hand-offs */
	UsApplyThreadCount(1);
	st = us_scorer_forward(entry->scorer, &events, out, feat);
	UsCheckScoreStatus(st, "score sequence");
	if (features)
		*features = feat;
	return out;
}

/* Label of output first + i. */
static text *
UsClassLabel(const us_model *model, int32 i)
{
	if (model->cfg.task == US_TASK_NEXT_BEHAVIOR)
		return cstring_to_text(model->vocab.behaviors[i]);
	if (model->vocab.n_classes == model->cfg.n_outputs && model->vocab.classes)
		return cstring_to_text(model->vocab.classes[i]);
	return cstring_to_text(psprintf("%d", i));
}

/*
 * The value userseq_predict returns for seq under entry (isnull for a classifier without
 * labelled classes); name is the model's name for messages (NULL: by value).
 */
double
UsPredictValue(FunctionCallInfo fcinfo, UsModelEntry *entry, const char *name, Datum seq,
			   bool *isnull)
{
	const us_model *model = entry->model;
	float	   *out;
	int32		first,
				count;

	*isnull = false;
	if (model->cfg.task == US_TASK_NEXT_ITEM)
		ereport(ERROR,
				(errcode(ERRCODE_WRONG_OBJECT_TYPE),
				 errmsg("userseq_predict does not apply to %s%s%s of task next_item",
						name ? "model \"" : "a model", name ? name : "", name ? "\"" : ""),
				 errhint("Use userseq_recommend for the most likely next items.")));
	UsRequireTask(entry, US_PREDICT_TASKS, "userseq_predict", name);
	out = UsScoreSeq(fcinfo, entry, seq, NULL);
	if (model->cfg.task == US_TASK_BINARY || model->cfg.task == US_TASK_REGRESSION)
		return (double) out[0];
	us_model_class_range(model, &first, &count);
	if (count <= 0)
	{
		*isnull = true;
		return 0.0;
	}
	return (double) out[first + us_argmax(out + first, count)];
}

static Datum
UsPredict(FunctionCallInfo fcinfo, bool by_value)
{
	const char *name;
	UsModelEntry *entry = UsModelArg(fcinfo, by_value, &name);
	bool		isnull;
	double		v = UsPredictValue(fcinfo, entry, name, PG_GETARG_DATUM(1), &isnull);

	if (isnull)
		PG_RETURN_NULL();
	PG_RETURN_FLOAT8(v);
}

/* Probability (binary), value (regression) or top-class probability of a sequence */
FUNCTION_PREFIX PG_FUNCTION_INFO_V1(userseq_predict);
Datum
userseq_predict(PG_FUNCTION_ARGS)
{
	return UsPredict(fcinfo, false);
}

/* userseq_predict with the model passed as a bytea */
FUNCTION_PREFIX PG_FUNCTION_INFO_V1(userseq_predict_bytea);
Datum
userseq_predict_bytea(PG_FUNCTION_ARGS)
{
	return UsPredict(fcinfo, true);
}

static Datum
UsPredictProba(FunctionCallInfo fcinfo, bool by_value)
{
	const char *name;
	UsModelEntry *entry = UsModelArg(fcinfo, by_value, &name);
	const us_model *model = entry->model;
	float	   *out;
	Datum	   *elems;
	int32		first,
				count;

	UsRequireTask(entry, US_CLASSIFIER_TASKS, "userseq_predict_proba", name);
	out = UsScoreSeq(fcinfo, entry, PG_GETARG_DATUM(1), NULL);
	if (model->cfg.task == US_TASK_BINARY)
	{
		first = 0;
		count = 2;
		elems = palloc(sizeof(Datum) * 2);
		elems[0] = Float8GetDatum(1.0 - (double) out[0]);
		elems[1] = Float8GetDatum((double) out[0]);
	}
	else
	{
		us_model_class_range(model, &first, &count);
		elems = palloc(sizeof(Datum) * Max(count, 1));
		for (int32 i = 0; i < count; i++)
			elems[i] = Float8GetDatum((double) out[first + i]);
	}
	PG_RETURN_ARRAYTYPE_P(construct_array(elems, count, FLOAT8OID, sizeof(float8),
										  FLOAT8PASSBYVAL, TYPALIGN_DOUBLE));
}

/* Class probabilities of a sequence, in the order of userseq_class_labels */
FUNCTION_PREFIX PG_FUNCTION_INFO_V1(userseq_predict_proba);
Datum
userseq_predict_proba(PG_FUNCTION_ARGS)
{
	return UsPredictProba(fcinfo, false);
}

/* userseq_predict_proba with the model passed as a bytea */
FUNCTION_PREFIX PG_FUNCTION_INFO_V1(userseq_predict_proba_bytea);
Datum
userseq_predict_proba_bytea(PG_FUNCTION_ARGS)
{
	return UsPredictProba(fcinfo, true);
}

static Datum
UsPredictClass(FunctionCallInfo fcinfo, bool by_value)
{
	const char *name;
	UsModelEntry *entry = UsModelArg(fcinfo, by_value, &name);
	const us_model *model = entry->model;
	float	   *out;
	int32		first,
				count;

	UsRequireTask(entry, US_CLASSIFIER_TASKS, "userseq_predict_class", name);
	out = UsScoreSeq(fcinfo, entry, PG_GETARG_DATUM(1), NULL);
	if (model->cfg.task == US_TASK_BINARY)
		PG_RETURN_TEXT_P(cstring_to_text(out[0] >= 0.5f ? "true" : "false"));
	us_model_class_range(model, &first, &count);
	if (count <= 0)
		PG_RETURN_NULL();
	PG_RETURN_TEXT_P(UsClassLabel(model, us_argmax(out + first, count)));
}

/* Most probable class label of a sequence ('true'/'false' for binary models) */
FUNCTION_PREFIX PG_FUNCTION_INFO_V1(userseq_predict_class);
Datum
userseq_predict_class(PG_FUNCTION_ARGS)
{
	return UsPredictClass(fcinfo, false);
}

/* userseq_predict_class with the model passed as a bytea */
FUNCTION_PREFIX PG_FUNCTION_INFO_V1(userseq_predict_class_bytea);
Datum
userseq_predict_class_bytea(PG_FUNCTION_ARGS)
{
	return UsPredictClass(fcinfo, true);
}

static Datum
UsEmbed(FunctionCallInfo fcinfo, bool by_value)
{
	const char *name;
	UsModelEntry *entry = UsModelArg(fcinfo, by_value, &name);
	int32		d = us_model_feature_dim(&entry->model->cfg);
	float	   *features;
	Datum	   *elems;

	UsScoreSeq(fcinfo, entry, PG_GETARG_DATUM(1), &features);
	elems = palloc(sizeof(Datum) * d);
	for (int32 i = 0; i < d; i++)
		elems[i] = Float4GetDatum(features[i]);
	PG_RETURN_ARRAYTYPE_P(construct_array(elems, d, FLOAT4OID, sizeof(float4), true,
										  TYPALIGN_INT));
}

/* Pooled representation of a sequence (the input of the dense layer): a profile vector */
FUNCTION_PREFIX PG_FUNCTION_INFO_V1(userseq_embed);
Datum
userseq_embed(PG_FUNCTION_ARGS)
{
	return UsEmbed(fcinfo, false);
}

/* userseq_embed with the model passed as a bytea */
FUNCTION_PREFIX PG_FUNCTION_INFO_V1(userseq_embed_bytea);
Datum
userseq_embed_bytea(PG_FUNCTION_ARGS)
{
	return UsEmbed(fcinfo, true);
}

static Datum
UsClassLabels(FunctionCallInfo fcinfo, bool by_value)
{
	const char *name;
	UsModelEntry *entry = UsModelArg(fcinfo, by_value, &name);
	const us_model *model = entry->model;
	Datum	   *elems;
	int32		first,
				count;

	UsRequireTask(entry, US_CLASSIFIER_TASKS, "userseq_class_labels", name);
	if (model->cfg.task == US_TASK_BINARY)
	{
		count = 2;
		elems = palloc(sizeof(Datum) * 2);
		elems[0] = PointerGetDatum(cstring_to_text("false"));
		elems[1] = PointerGetDatum(cstring_to_text("true"));
	}
	else
	{
		us_model_class_range(model, &first, &count);
		elems = palloc(sizeof(Datum) * Max(count, 1));
		for (int32 i = 0; i < count; i++)
			elems[i] = PointerGetDatum(UsClassLabel(model, i));
	}
	PG_RETURN_ARRAYTYPE_P(construct_array(elems, count, TEXTOID, -1, false, TYPALIGN_INT));
}

/* Class labels of a classifier, in the order of userseq_predict_proba */
FUNCTION_PREFIX PG_FUNCTION_INFO_V1(userseq_class_labels);
Datum
userseq_class_labels(PG_FUNCTION_ARGS)
{
	return UsClassLabels(fcinfo, false);
}

/* userseq_class_labels with the model passed as a bytea */
FUNCTION_PREFIX PG_FUNCTION_INFO_V1(userseq_class_labels_bytea);
Datum
userseq_class_labels_bytea(PG_FUNCTION_ARGS)
{
	return UsClassLabels(fcinfo, true);
}
