/*
 * quantize.c: userseq_quantize: a stored version re-encoded with int8 weights
 * (us_model_quantize, format version 2) as the next version of the same name, with the
 * validation metric of both on a query the caller passes; refused (or a warning, by option)
 * when the int8 model loses more than the tolerance. The decoder dequantizes, so every
 * scoring function runs the int8 version unchanged (folded tables and the top-k screen are
 * built from the dequantized weights).
 */
#include "postgres.h"

#include <math.h>

#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "utils/builtins.h"
#include "utils/jsonb.h"
#include "utils/lsyscache.h"
#include "utils/syscache.h"

#include "userseq/us_format.h"
#include "userseq/us_metrics.h"
#include "models/catalog.h"
#include "seq/seq_events.h"
#include "seq/userseq_type.h"
#include "userseq_pg.h"

static Oid
UsSeqTypeOid(void)
{
	return GetSysCacheOid2(TYPENAMENSP, Anum_pg_type_oid, CStringGetDatum("userseq"),
						   ObjectIdGetDatum(UsCatalogNamespace()));
}

typedef struct UsQuantEval
{
	double		metric[2];		/* fp32, int8 */
	const char *metric_name;
	bool		higher_better;
	int64		rows;
} UsQuantEval;

/*
 * Both models on the rows of query (seq, label): binary ROC AUC, regression RMSE, multiclass
 * and next_behavior accuracy, next_item NDCG@10 of the last event given the ones before it.
 */
static void
UsQuantEvaluate(us_model *const *models, const char *query, const us_allocator *alloc,
				UsQuantEval *ev)
{
	const us_model_config *cfg = &models[0]->cfg;
	us_task		task = cfg->task;
	us_scorer  *sc[2];
	UsEventBuffer buf;
	int64		n;
	double	   *pred[2];
	double	   *truth;
	uint8	   *lab;
	double		correct[2] = {0, 0};
	us_ranking_metrics rm[2];
	int			cutoffs[] = {10};
	uint8	   *skip = NULL;
	float	   *out;
	MemoryContext cxt = CurrentMemoryContext;	/* SPI_finish frees what SPI's context holds */

	for (int k = 0; k < 2; k++)
		UsCheckStatus(us_scorer_create(models[k], 0, alloc, &sc[k]), "create a scorer", NULL);
	UsEventBufferInit(&buf, CurrentMemoryContext);
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	if (SPI_execute(query, true, 0) != SPI_OK_SELECT)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("the evaluation query must be a SELECT")));
	n = (int64) SPI_processed;
	if (SPI_tuptable->tupdesc->natts < (task == US_TASK_NEXT_ITEM ? 1 : 2) ||
		SPI_gettypeid(SPI_tuptable->tupdesc, 1) != UsSeqTypeOid())
		ereport(ERROR,
				(errcode(ERRCODE_DATATYPE_MISMATCH),
				 errmsg("the evaluation query must return (seq userseq%s)",
						task == US_TASK_NEXT_ITEM ? "" : ", label")));
	if (n == 0)
		ereport(ERROR,
				(errcode(ERRCODE_NO_DATA_FOUND),
				 errmsg("the evaluation query returned no rows")));
	out = MemoryContextAlloc(cxt, sizeof(float) * cfg->n_outputs);
	pred[0] = MemoryContextAllocHuge(cxt, sizeof(double) * n);
	pred[1] = MemoryContextAllocHuge(cxt, sizeof(double) * n);
	truth = MemoryContextAllocHuge(cxt, sizeof(double) * n);
	lab = MemoryContextAllocHuge(cxt, n);
	if (task == US_TASK_NEXT_ITEM)
	{
		skip = MemoryContextAllocZero(cxt, cfg->n_outputs);
		skip[US_ROW_PAD] = skip[US_ROW_OOV] = 1;
		us_ranking_init(&rm[0], cutoffs, 1);
		us_ranking_init(&rm[1], cutoffs, 1);
	}
	for (int64 r = 0; r < n; r++)
	{
		bool		isnull;
		Datum		d = SPI_getbinval(SPI_tuptable->vals[r], SPI_tuptable->tupdesc, 1, &isnull);
		UserSeq    *seq;
		us_events	e;
		char	   *label = NULL;
		int32		target = -1;

		CHECK_FOR_INTERRUPTS();
		if (isnull)
			ereport(ERROR,
					(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
					 errmsg("the evaluation query returned a NULL sequence")));
		seq = DatumGetUserSeqP(d);
		UsSeqToEvents(cfg, &models[0]->vocab, seq, 0, &buf, &e);
		if (task == US_TASK_NEXT_ITEM)
		{
			if (e.n < 2)
				continue;
			target = e.items[e.n - 1];
			e.n--;
		}
		else
		{
			label = SPI_getvalue(SPI_tuptable->vals[r], SPI_tuptable->tupdesc, 2);
			if (label == NULL)
				ereport(ERROR,
						(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
						 errmsg("the evaluation query returned a NULL label")));
		}
		for (int k = 0; k < 2; k++)
		{
			UsCheckScoreStatus(us_scorer_forward(sc[k], &e, out, NULL), "score");
			switch (task)
			{
				case US_TASK_BINARY:
				case US_TASK_REGRESSION:
					pred[k][ev->rows] = out[0];
					break;
				case US_TASK_NEXT_ITEM:
					us_ranking_add(&rm[k], target >= US_ROW_FIRST ?
								   us_rank_of_target(out, cfg->n_outputs, target, skip) : cfg->n_outputs);
					break;
				default:
					{
						int32		best = 0,
									first,
									count;

						us_model_class_range(models[k], &first, &count);
						for (int32 c = first; c < first + count; c++)
							if (out[c] > out[best] || best < first)
								best = c;
						if (task == US_TASK_MULTICLASS)
							correct[k] += strcmp(models[k]->vocab.classes[best], label) == 0;
						else
							correct[k] += best >= US_ROW_FIRST &&
								strcmp(models[k]->vocab.behaviors[best - US_ROW_FIRST], label) == 0;
					}
			}
		}
		if (task == US_TASK_BINARY)
			lab[ev->rows] = strcmp(label, "t") == 0 || strcmp(label, "true") == 0 || atof(label) > 0.5;
		else if (task == US_TASK_REGRESSION)
			truth[ev->rows] = atof(label);
		ev->rows++;
	}
	SPI_finish();
	if (ev->rows == 0)
		ereport(ERROR,
				(errcode(ERRCODE_NO_DATA_FOUND),
				 errmsg("the evaluation query returned no usable rows")));
	for (int k = 0; k < 2; k++)
	{
		switch (task)
		{
			case US_TASK_BINARY:
				UsCheckStatus(us_roc_auc(pred[k], lab, NULL, ev->rows, alloc, &ev->metric[k]),
							  "compute roc_auc", NULL);
				break;
			case US_TASK_REGRESSION:
				{
					double		ss = 0;

					for (int64 i = 0; i < ev->rows; i++)
						ss += (pred[k][i] - truth[i]) * (pred[k][i] - truth[i]);
					ev->metric[k] = sqrt(ss / ev->rows);
					break;
				}
			case US_TASK_NEXT_ITEM:
				{
					double		hr,
								ndcg,
								mrr;

					us_ranking_result(&rm[k], &hr, &ndcg, &mrr);
					ev->metric[k] = ndcg;
					break;
				}
			default:
				ev->metric[k] = correct[k] / ev->rows;
		}
		us_scorer_free(sc[k]);
	}
	ev->metric_name = task == US_TASK_BINARY ? "roc_auc" : task == US_TASK_REGRESSION ? "rmse" :
		task == US_TASK_NEXT_ITEM ? "ndcg@10" : "accuracy";
	ev->higher_better = task != US_TASK_REGRESSION;
}

/*
 * userseq_quantize(model, version, query, tolerance, on_exceed): stores the int8 copy of a
 * version (default: the deployed one, else the newest) as the next version, not deployed.
 */
PG_FUNCTION_INFO_V1(userseq_quantize);
Datum
userseq_quantize(PG_FUNCTION_ARGS)
{
	char	   *name;
	int32		version = PG_ARGISNULL(1) ? 0 : PG_GETARG_INT32(1);
	char	   *query = PG_ARGISNULL(2) ? NULL : text_to_cstring(PG_GETARG_TEXT_PP(2));
	double		tolerance = PG_ARGISNULL(3) ? 0.005 : PG_GETARG_FLOAT8(3);
	char	   *on_exceed = PG_ARGISNULL(4) ? "error" : text_to_cstring(PG_GETARG_TEXT_PP(4));
	MemoryContext cxt,
				old;
	us_allocator alloc;
	us_model   *models[2];
	char	   *task,
			   *config,
			   *metrics,
			   *src_query = NULL;
	Jsonb	   *options = NULL;
	bytea	   *src_weights,
			   *weights;
	int32		src_version;
	size_t		size;
	double		max_err;
	UsQuantEval ev;
	StringInfoData q;
	UsStoreRequest req;
	UsStoreResult res;
	int			guc_level;

	if (PG_ARGISNULL(0))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("model name must not be NULL")));
	name = text_to_cstring(PG_GETARG_TEXT_PP(0));
	if (strcmp(on_exceed, "error") != 0 && strcmp(on_exceed, "warn") != 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("on_exceed must be \"error\" or \"warn\", not \"%s\"", on_exceed)));
	if (!(tolerance >= 0))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("tolerance must be a number >= 0")));
	(void) UsCatalogCheckWrite(name, true);
	cxt = AllocSetContextCreate(CurrentMemoryContext, "userseq quantize", ALLOCSET_DEFAULT_SIZES);
	old = MemoryContextSwitchTo(cxt);
	alloc = UsContextAllocator(cxt);

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	guc_level = UsInternalSqlBegin();
	{
		Oid			types[2] = {TEXTOID, INT4OID};
		Datum		args[2] = {CStringGetTextDatum(name), Int32GetDatum(version)};
		char		nulls[2] = {' ', version > 0 ? ' ' : 'n'};
		char	   *sql = psprintf("SELECT weights, version, task, config::text, metrics::text, query, options "
								   "FROM %s.models WHERE name OPERATOR(pg_catalog.=) $1 AND "
								   "($2 IS NULL OR version OPERATOR(pg_catalog.=) $2) "
								   "ORDER BY deployed DESC, version DESC LIMIT 1",
								   quote_identifier(get_namespace_name(UsCatalogNamespace())));
		bool		isnull;
		Datum		d;

		if (SPI_execute_with_args(sql, 2, types, args, nulls, true, 1) != SPI_OK_SELECT)
			elog(ERROR, "could not read model \"%s\"", name);
		if (SPI_processed == 0)
			ereport(ERROR,
					(errcode(ERRCODE_UNDEFINED_OBJECT),
					 version > 0 ? errmsg("model \"%s\" has no version %d", name, version)
					 : errmsg("model \"%s\" does not exist", name)));
		d = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull);
		{
			/* detoasted copies in cxt: SPI_finish frees SPI's memory */
			MemoryContext o = MemoryContextSwitchTo(cxt);

			src_weights = DatumGetByteaPCopy(d);
			MemoryContextSwitchTo(o);
		}
		src_version = DatumGetInt32(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2, &isnull));
		task = MemoryContextStrdup(cxt, SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 3));
		config = MemoryContextStrdup(cxt, SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 4));
		metrics = MemoryContextStrdup(cxt, SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 5));
		d = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 6, &isnull);
		if (!isnull)
			src_query = MemoryContextStrdup(cxt, TextDatumGetCString(d));
		d = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 7, &isnull);
		if (!isnull)
		{
			MemoryContext o = MemoryContextSwitchTo(cxt);

			options = DatumGetJsonbPCopy(d);
			MemoryContextSwitchTo(o);
		}
	}
	UsInternalSqlEnd(guc_level);
	SPI_finish();
	MemoryContextSwitchTo(cxt);

	UsCheckStatus(us_model_decode((const uint8_t *) VARDATA_ANY(src_weights),
								  VARSIZE_ANY_EXHDR(src_weights), &alloc, &models[0]),
				  psprintf("decode model \"%s\" version %d", name, src_version), NULL);
	if (models[0]->quantized)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("model \"%s\" version %d is already int8", name, src_version)));
	UsCheckStatus(us_model_clone(models[0], &alloc, &models[1]), "copy the model", NULL);
	UsCheckStatus(us_model_quantize(models[1], &max_err), "quantize the model", NULL);
	size = us_model_encoded_size(models[1]);
	weights = MemoryContextAllocHuge(cxt, size + VARHDRSZ);
	SET_VARSIZE(weights, size + VARHDRSZ);
	UsCheckStatus(us_model_encode(models[1], (uint8_t *) VARDATA(weights), size), "encode the model", NULL);

	initStringInfo(&q);
	appendStringInfo(&q, "{\"quantized\": {\"from_version\": %d, \"bytes_fp32\": %zu, \"bytes_int8\": %zu, "
					 "\"max_weight_error\": %.9g",
					 src_version, (size_t) VARSIZE_ANY_EXHDR(src_weights), size, max_err);
	if (query)
	{
		double		loss;

		memset(&ev, 0, sizeof(ev));
		UsQuantEvaluate(models, query, &alloc, &ev);
		loss = ev.higher_better ? ev.metric[0] - ev.metric[1] : ev.metric[1] - ev.metric[0];
		appendStringInfo(&q, ", \"metric\": \"%s\", \"eval_rows\": " INT64_FORMAT ", \"metric_fp32\": %.17g, "
						 "\"metric_int8\": %.17g, \"loss\": %.17g, \"tolerance\": %.17g",
						 ev.metric_name, ev.rows, ev.metric[0], ev.metric[1], loss, tolerance);
		if (loss > tolerance)
			ereport(strcmp(on_exceed, "warn") == 0 ? WARNING : ERROR,
					(errcode(ERRCODE_NUMERIC_VALUE_OUT_OF_RANGE),
					 errmsg("the int8 model of \"%s\" version %d loses %.4f %s (fp32 %.4f, int8 %.4f), more than the tolerance %g",
							name, src_version, loss, ev.metric_name, ev.metric[0], ev.metric[1], tolerance),
					 strcmp(on_exceed, "warn") == 0 ? errdetail("Stored anyway (on_exceed => 'warn').")
					 : errhint("Raise tolerance, or pass on_exceed => 'warn' to store it anyway.")));
	}
	else
		appendStringInfoString(&q, ", \"metric\": null");
	appendStringInfoChar(&q, '}');
	appendStringInfoChar(&q, '}');
	/* the source's metrics, with the quantization beside them */
	metrics = JsonbToCString(NULL, &DatumGetJsonbP(DirectFunctionCall2(jsonb_concat,
		DirectFunctionCall1(jsonb_in, CStringGetDatum(metrics)),
		DirectFunctionCall1(jsonb_in, CStringGetDatum(q.data))))->root, -1);

	memset(&req, 0, sizeof(req));
	req.name = name;
	req.task = task;
	req.config_json = config;
	req.query = src_query;
	req.options = options;
	req.metrics_json = metrics;
	req.weights = weights;
	req.deploy = false;
	MemoryContextSwitchTo(old);
	UsCatalogStore(&req, &res);
	ereport(NOTICE,
			(errmsg("userseq_quantize stored model \"%s\" version %d: int8 copy of version %d, %zu bytes instead of %zu (%.2fx)%s",
					name, res.version, src_version, size, (size_t) VARSIZE_ANY_EXHDR(src_weights),
					(double) VARSIZE_ANY_EXHDR(src_weights) / size,
					query ? psprintf(", %s %.4f -> %.4f", ev.metric_name, ev.metric[0], ev.metric[1]) : "")));
	MemoryContextDelete(cxt);
	PG_RETURN_INT32(res.version);
}
