/*
 * quantize.c: userseq_quantize: a stored version re-encoded with int8 weights
 * (us_model_quantize, format version 4) as the next version of the same name, with the
 * validation metric of both on a query the caller passes or, without one, on the validation
 * split training held out (reconstructed from the stored query and options, and checked
 * against what training recorded); refused (or a warning, by option) when the int8 model
 * loses more than the tolerance. The decoder dequantizes, so every
 * scoring function runs the int8 version unchanged (folded tables and the top-k screen are
 * built from the dequantized weights).
 */
#include "postgres.h"

#include <math.h>

#include "access/xact.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "utils/acl.h"
#include "utils/backend_status.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/json.h"
#include "utils/jsonb.h"
#include "utils/lsyscache.h"
#include "utils/resowner.h"
#include "utils/syscache.h"

#include "userseq/us_evaluation.h"
#include "userseq/us_format.h"
#include "userseq/us_metrics.h"
#include "models/catalog.h"
#include "train/options.h"
#include "train/train_data.h"
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

/* What training recorded about its split (text, NULL when absent), read with the model. */
typedef struct UsQuantRecorded
{
	char	   *owner;
	Jsonb	   *split_options;	/* stored options with config's resolved validation and seed */
	char	   *metric;			/* the best epoch's main validation metric */
	char	   *valid_sequences;
	char	   *train_sequences;
	char	   *rows_read;
} UsQuantRecorded;

/* Column col of the first row of SPI_tuptable as text in cxt, NULL when NULL. */
static char *
UsQuantText(int col, MemoryContext cxt)
{
	char	   *v = SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, col);

	return v ? MemoryContextStrdup(cxt, v) : NULL;
}

static int
UsQuantProgress(void *ctx, int64_t done, int64_t total)
{
	CHECK_FOR_INTERRUPTS();
	return 0;
}

static bool
UsVocabEqual(const us_vocab *a, const us_vocab *b)
{
	if (a->n_items != b->n_items || a->n_behaviors != b->n_behaviors || a->n_classes != b->n_classes)
		return false;
	for (int32 i = 0; i < a->n_items; i++)
		if (a->item_ids[i] != b->item_ids[i] || a->item_counts[i] != b->item_counts[i])
			return false;
	for (int32 i = 0; i < a->n_behaviors; i++)
		if (strcmp(a->behaviors[i], b->behaviors[i]) != 0)
			return false;
	for (int32 i = 0; i < a->n_classes; i++)
		if (strcmp(a->classes[i], b->classes[i]) != 0)
			return false;
	return true;
}

/* A recorded count that differs from the reconstructed one, as a reason, or NULL. */
static char *
UsCountDiffers(const char *recorded, int64 now, const char *what)
{
	if (recorded == NULL || strtoll(recorded, NULL, 10) == now)
		return NULL;
	return psprintf("the training query now gives " INT64_FORMAT " %s, training had %s", now, what, recorded);
}

/*
 * Reads the stored training query into data (in datacxt) as training did, as the model's
 * owner; a failing query (a dropped table, no rights, over the memory budget) is returned as
 * a reason, not raised. NULL: read.
 */
static char *
UsQuantReadData(const char *name, const char *task, const char *query, Oid owner,
				Jsonb *split_options, MemoryContext cxt, MemoryContext datacxt,
				UsTrainOptions *opts, UsTrainData *data)
{
	ResourceOwner owner_res = CurrentResourceOwner;
	Oid			save_user;
	int			save_sec;
	/* the reader reports "reading data" progress in pg_stat_activity: put the statement back */
	char	   *activity = MyBEEntry && MyBEEntry->st_activity_raw ?
		MemoryContextStrdup(cxt, MyBEEntry->st_activity_raw) : NULL;

	/* a failing query (a dropped table, no rights, over the memory budget) is a reason, not an error */
	GetUserIdAndSecContext(&save_user, &save_sec);
	BeginInternalSubTransaction(NULL);
	MemoryContextSwitchTo(cxt);
	PG_TRY();
	{
		int			guc_level;

		UsParseTrainOptions(split_options, UsParseTask(task), opts);
		SetUserIdAndSecContext(owner, save_sec | SECURITY_LOCAL_USERID_CHANGE |
							   SECURITY_RESTRICTED_OPERATION);
		guc_level = NewGUCNestLevel();
		UsReadTrainData(name, query, opts, datacxt, data);
		AtEOXact_GUC(false, guc_level);
		SetUserIdAndSecContext(save_user, save_sec);
		ReleaseCurrentSubTransaction();
		MemoryContextSwitchTo(cxt);
		CurrentResourceOwner = owner_res;
		if (activity)
			pgstat_report_activity(STATE_RUNNING, activity);
	}
	PG_CATCH();
	{
		ErrorData  *edata;

		MemoryContextSwitchTo(cxt);
		edata = CopyErrorData();
		if (edata->sqlerrcode == ERRCODE_QUERY_CANCELED || edata->sqlerrcode == ERRCODE_ADMIN_SHUTDOWN)
			PG_RE_THROW();
		FlushErrorState();
		/* the abort restores the user id, the security context and the GUCs */
		RollbackAndReleaseCurrentSubTransaction();
		MemoryContextSwitchTo(cxt);
		CurrentResourceOwner = owner_res;
		if (activity)
			pgstat_report_activity(STATE_RUNNING, activity);
		return psprintf("reading the stored training query failed (%s: %s)",
						unpack_sql_state(edata->sqlerrcode), edata->message);
	}
	PG_END_TRY();
	return NULL;
}

/*
 * Both models on the validation split training held out: the stored query is read again as
 * the model's owner (as userseq_retrain does) with the stored options, whose split (method,
 * fraction or cutoff, seed) comes from models.config as training resolved it, and both are
 * evaluated with the trainer's own validation (us_model_validate). The split counts as
 * reconstructed only if the rebuilt vocabulary (ids and training counts), the row and
 * sequence counts and the fp32 version's metric all equal what training recorded; otherwise
 * (or when the query fails) the reason is returned and ev is untouched. NULL: evaluated.
 */
static char *
UsQuantEvaluateSplit(const char *name, const char *task, const char *query,
					 const UsQuantRecorded *rec, us_model *const *models,
					 const us_allocator *alloc, UsQuantEval *ev)
{
	MemoryContext cxt = CurrentMemoryContext;
	MemoryContext datacxt;
	UsTrainOptions opts;
	UsTrainData data;
	Oid			owner;
	char	   *reason = NULL;
	double		recorded;
	us_validation v[2];

	if (query == NULL)
		return "the model has no stored training query (an imported model)";
	if (rec->metric == NULL || rec->split_options == NULL)
		return "training recorded no validation metric for it";
	owner = get_role_oid(rec->owner, true);
	if (!OidIsValid(owner))
		return psprintf("its owner role \"%s\" does not exist", rec->owner);
	recorded = strtod(rec->metric, NULL);

	datacxt = AllocSetContextCreate(cxt, "userseq quantize validation data", ALLOCSET_DEFAULT_SIZES);
	reason = UsQuantReadData(name, task, query, owner, rec->split_options, cxt, datacxt, &opts, &data);
	if (reason != NULL)
	{
		MemoryContextDelete(datacxt);
		return reason;
	}

	reason = UsCountDiffers(rec->rows_read, data.rows_read, "rows");
	if (reason == NULL)
		reason = UsCountDiffers(rec->train_sequences, data.n_train, "training sequences");
	if (reason == NULL)
		reason = UsCountDiffers(rec->valid_sequences, data.n_valid, "validation sequences");
	if (reason == NULL && !UsVocabEqual(&data.vocab, &models[0]->vocab))
		reason = psprintf("the training query's data changed: the vocabulary built from its training split "
						  "(%d items, %d behaviours, %d classes) differs from the model's (%d, %d, %d)",
						  data.vocab.n_items, data.vocab.n_behaviors, data.vocab.n_classes,
						  models[0]->vocab.n_items, models[0]->vocab.n_behaviors,
						  models[0]->vocab.n_classes);
	if (reason == NULL)
	{
		int32		chunk = (int32) Max(1, Min((int64) 1024, (int64) (16 * 1024 * 1024) / models[0]->cfg.n_outputs));
		float	   *out = MemoryContextAllocHuge(datacxt, sizeof(float) * (Size) chunk * models[0]->cfg.n_outputs);
		us_progress progress = {UsQuantProgress, NULL};

		/* BLAS threads as in training's validation */
		UsApplyThreadCount(opts.threads);
		for (int k = 0; k < 2; k++)
			UsCheckStatus(us_model_validate(models[k], &data.valid, data.valid_ids, data.n_valid,
											chunk, out, alloc, &progress, &v[k]),
						  "evaluate the model", NULL);
		UsApplyThreads();
		/* the same rows give the same figure; allow only float noise of another BLAS kernel */
		if (!(fabs(v[0].metric - recorded) <= 1e-6 * Max(1.0, fabs(recorded))))
			reason = psprintf("the fp32 version's %s on the rebuilt split is %.6f, training recorded %.6f: "
							  "the rows differ (changed data, or a query without a stable row order)",
							  us_task_metric_name(models[0]->cfg.task), v[0].metric, recorded);
	}
	if (reason == NULL)
	{
		ev->metric[0] = v[0].metric;
		ev->metric[1] = v[1].metric;
		ev->metric_name = us_task_metric_name(models[0]->cfg.task);
		ev->higher_better = us_task_higher_is_better(models[0]->cfg.task);
		ev->rows = data.n_valid;
	}
	MemoryContextDelete(datacxt);
	return reason;
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
	UsQuantRecorded rec;
	const char *not_evaluated = NULL;

	memset(&rec, 0, sizeof(rec));
	memset(&ev, 0, sizeof(ev));
	if (PG_ARGISNULL(0))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("model name must not be NULL")));
	name = text_to_cstring(PG_GETARG_TEXT_PP(0));
	if (strcmp(on_exceed, "error") != 0 && strcmp(on_exceed, "warn") != 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("on_exceed must be \"error\" or \"warn\", not \"%s\"", on_exceed)));
	/* finite: it is written into the metrics JSON */
	if (!(tolerance >= 0) || isinf(tolerance))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("tolerance must be a finite number >= 0")));
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
		char	   *sql = psprintf("SELECT weights, version, task, config::text, metrics::text, query, options, "
								   "owner::text, options OPERATOR(pg_catalog.||) pg_catalog.jsonb_strip_nulls("
								   "pg_catalog.jsonb_build_object('validation', config OPERATOR(pg_catalog.->) 'validation', "
								   "'seed', config OPERATOR(pg_catalog.->) 'seed')), "
								   "metrics OPERATOR(pg_catalog.->>) (metrics OPERATOR(pg_catalog.->>) 'metric'), "
								   "metrics OPERATOR(pg_catalog.->>) 'valid_sequences', "
								   "metrics OPERATOR(pg_catalog.->>) 'train_sequences', "
								   "metrics OPERATOR(pg_catalog.->>) 'rows_read' "
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
		rec.owner = UsQuantText(8, cxt);
		d = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 9, &isnull);
		if (!isnull)
		{
			MemoryContext o = MemoryContextSwitchTo(cxt);

			rec.split_options = DatumGetJsonbPCopy(d);
			MemoryContextSwitchTo(o);
		}
		rec.metric = UsQuantText(10, cxt);
		rec.valid_sequences = UsQuantText(11, cxt);
		rec.train_sequences = UsQuantText(12, cxt);
		rec.rows_read = UsQuantText(13, cxt);
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
	UsCheckStatus(us_model_quantize(models[1], &max_err),
				  psprintf("quantize model \"%s\" version %d", name, src_version),
				  models[1]->cfg.architecture != US_ARCH_TEXTCNN
				  ? "int8 quantization covers the text-CNN only; a sasrec model stays fp32." : NULL);
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
		UsQuantEvaluate(models, query, &alloc, &ev);
		/* a NaN would reach the metrics JSON (and fail there as a json syntax error) */
		if (!isfinite(ev.metric[0]) || !isfinite(ev.metric[1]))
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("the evaluation query gives no %s to compare (fp32 %g, int8 %g)",
							ev.metric_name, ev.metric[0], ev.metric[1]),
					 errdetail("%s", models[0]->cfg.task == US_TASK_BINARY ?
							   "ROC AUC needs both classes among the query's labels." :
							   "A label is NaN or infinite."),
					 errhint("Pass a held-out query whose labels give a defined metric, or none to use the validation split.")));
	}
	else
		not_evaluated = UsQuantEvaluateSplit(name, task, src_query, &rec, models, &alloc, &ev);
	if (not_evaluated == NULL)
	{
		double		loss = ev.higher_better ? ev.metric[0] - ev.metric[1] : ev.metric[1] - ev.metric[0];

		appendStringInfo(&q, ", \"evaluated_on\": \"%s\", \"metric\": \"%s\", \"eval_rows\": " INT64_FORMAT
						 ", \"metric_fp32\": %.17g, \"metric_int8\": %.17g, \"loss\": %.17g, \"tolerance\": %.17g",
						 query ? "query" : "validation split", ev.metric_name, ev.rows, ev.metric[0],
						 ev.metric[1], loss, tolerance);
		if (!query)
			appendStringInfo(&q, ", \"metric_fp32_recorded\": %s", rec.metric);
		if (loss > tolerance)
			ereport(strcmp(on_exceed, "warn") == 0 ? WARNING : ERROR,
					(errcode(ERRCODE_NUMERIC_VALUE_OUT_OF_RANGE),
					 errmsg("the int8 model of \"%s\" version %d loses %.4f %s (fp32 %.4f, int8 %.4f on the %s), more than the tolerance %g",
							name, src_version, loss, ev.metric_name, ev.metric[0], ev.metric[1],
							query ? "query" : "validation split", tolerance),
					 strcmp(on_exceed, "warn") == 0 ? errdetail("Stored anyway (on_exceed => 'warn').")
					 : errhint("Raise tolerance, or pass on_exceed => 'warn' to store it anyway.")));
	}
	else
	{
		/* stored, but said plainly: nothing was compared */
		appendStringInfoString(&q, ", \"evaluated_on\": null, \"metric\": null, \"not_evaluated\": ");
		escape_json(&q, not_evaluated);
		ereport(WARNING,
				(errcode(ERRCODE_WARNING),
				 errmsg("the int8 copy of \"%s\" version %d is stored without a validation metric: the validation split cannot be reconstructed",
						name, src_version),
				 errdetail("Cause: %s.", not_evaluated),
				 errhint("Pass query => a held-out query (seq, label) to evaluate both versions on it.")));
	}
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
					not_evaluated ? ", not evaluated" :
					psprintf(", %s %.4f -> %.4f on the %s", ev.metric_name, ev.metric[0], ev.metric[1],
							 query ? "query" : "validation split"))));
	MemoryContextDelete(cxt);
	PG_RETURN_INT32(res.version);
}
