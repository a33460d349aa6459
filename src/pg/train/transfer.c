/*
 * transfer.c: userseq_train's "init_from" and userseq_retrain's "warm_start": the source
 * model is read from the catalog, decoded, and its compatible blocks copied into the freshly
 * created model (us_model_init_from: item rows by id, behaviours and classes by label).
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "lib/stringinfo.h"
#include "utils/builtins.h"
#include "utils/json.h"
#include "utils/lsyscache.h"

#include "userseq/us_format.h"
#include "models/catalog.h"
#include "train/transfer.h"
#include "userseq_pg.h"

static char *
UsBlockList(uint32 mask, bool json)
{
	StringInfoData buf;
	int			n = 0;

	initStringInfo(&buf);
	for (int i = 0; i < US_N_BLOCKS; i++)
		if (mask & (1u << i))
			appendStringInfo(&buf, json ? "%s\"%s\"" : "%s%s", n++ ? ", " : "", us_block_name(i));
	return buf.data;
}

char *
UsInitFromCatalog(us_model *model, const char *name, int32 version, uint32 copy, uint32 freeze,
				  bool warm, const us_allocator *alloc, UsInitSource *src)
{
	const char *ns = quote_identifier(get_namespace_name(UsCatalogNamespace()));
	Oid			types[2] = {TEXTOID, INT4OID};
	Datum		args[2];
	char		nulls[2] = {' ', ' '};
	char	   *sql;
	Datum		d;
	bool		isnull;
	bytea	   *weights;
	us_model   *source = NULL;
	us_init_report rep;
	int			guc_level;
	StringInfoData js;
	char	   *what = psprintf("%s model \"%s\"", warm ? "warm start from" : "init_from", name);

	memset(src, 0, sizeof(*src));
	args[0] = CStringGetTextDatum(name);
	args[1] = Int32GetDatum(version);
	nulls[1] = version > 0 ? ' ' : 'n';
	/* training_run through to_jsonb: a catalog still at 0.1.0 has no such column (reads 1) */
	sql = psprintf("SELECT m.weights, m.version, l.run_id, l.training_run, m.task FROM %s.models m "
				   "LEFT JOIN LATERAL (SELECT run_id, (pg_catalog.to_jsonb(t) OPERATOR(pg_catalog.->>) 'training_run')::pg_catalog.int4 AS training_run "
				   "FROM %s.training_log t "
				   "WHERE t.model OPERATOR(pg_catalog.=) m.name AND t.version OPERATOR(pg_catalog.=) m.version "
				   "ORDER BY run_id DESC LIMIT 1) l ON true "
				   "WHERE m.name OPERATOR(pg_catalog.=) $1 AND "
				   "CASE WHEN $2 IS NULL THEN m.deployed ELSE m.version OPERATOR(pg_catalog.=) $2 END",
				   ns, ns);
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	guc_level = UsInternalSqlBegin();
	if (SPI_execute_with_args(sql, 2, types, args, nulls, true, 1) != SPI_OK_SELECT)
		elog(ERROR, "could not read model \"%s\"", name);
	if (SPI_processed == 0)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 version > 0 ? errmsg("%s: version %d does not exist", what, version)
				 : errmsg("%s: no version is deployed", what),
				 warm ? errhint("Retrain without \"warm_start\", or deploy a version first.")
				 : errhint("Name an existing model and version in \"init_from\".")));
	d = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull);
	if (isnull)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("%s: the version has no weights", what)));
	weights = DatumGetByteaPP(d);
	src->version = DatumGetInt32(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2, &isnull));
	d = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 3, &isnull);
	src->run_id = isnull ? 0 : DatumGetInt64(d);
	d = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 4, &isnull);
	src->training_run = isnull ? 1 : DatumGetInt32(d);
	UsCheckStatus(us_model_decode((const uint8_t *) VARDATA_ANY(weights), VARSIZE_ANY_EXHDR(weights),
								  alloc, &source), psprintf("decode model \"%s\" version %d", name, src->version), NULL);
	UsInternalSqlEnd(guc_level);
	SPI_finish();

	UsCheckStatus(us_model_init_from(model, source, copy ? copy : US_BLOCK_ALL, &rep), what, NULL);
	if (rep.incompatible)
	{
		StringInfoData det;

		initStringInfo(&det);
		for (int i = 0; i < US_N_BLOCKS; i++)
			if (rep.incompatible & (1u << i))
				appendStringInfo(&det, "%s%s: %s.", det.len ? " " : "", us_block_name(i), rep.reason[i]);
		ereport(ERROR,
				(errcode(ERRCODE_DATATYPE_MISMATCH),
				 errmsg("%s version %d: incompatible blocks %s", what, src->version,
						UsBlockList(rep.incompatible, false)),
				 errdetail("%s", det.data),
				 warm ? errhint("The options differ from the deployed version's; retrain without \"warm_start\".")
				 : errhint("Train with the source model's embedding_dim, filter_widths, num_filters, hidden_dim, recent_window and time_gaps.")));
	}
	if (warm && ((model->cfg.n_behaviors > 0) != (source->cfg.n_behaviors > 0) ||
				 (model->cfg.n_gap_buckets > 0) != (source->cfg.n_gap_buckets > 0)))
		ereport(ERROR,
				(errcode(ERRCODE_DATATYPE_MISMATCH),
				 errmsg("%s version %d: behaviour or time-gap input is in only one of the two models",
						what, src->version),
				 errhint("The options differ from the deployed version's; retrain without \"warm_start\".")));
	/* a block named in "copy" that one model lacks would otherwise be skipped without a word */
	if (copy & rep.absent)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("%s version %d: cannot copy %s: not in both models", what, src->version,
						UsBlockList(copy & rep.absent, false)),
				 errdetail("behavior_embedding and gap_embedding need behaviour or time-gap input in both models, output the same task (and behaviours for next_behavior)."),
				 errhint("Leave it out of \"copy\".")));
	if (freeze & ~rep.copied)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("%s: cannot freeze %s: not copied from the source", what,
						UsBlockList(freeze & ~rep.copied, false)),
				 errdetail("Copied blocks: %s.", rep.copied ? UsBlockList(rep.copied, false) : "none")));
	if ((rep.copied & US_BLOCK_ITEM_EMB) && rep.item_rows == 0 && model->vocab.n_items > 0)
		ereport(WARNING,
				(errmsg("%s: no item of this training data is known to the source model", what),
				 errdetail("Items are matched by id; the item rows keep their random start.")));

	initStringInfo(&js);
	appendStringInfo(&js, ", \"%s\": {\"model\": ", warm ? "warm_start" : "init_from");
	escape_json(&js, name);
	appendStringInfo(&js, ", \"version\": %d, \"run_id\": " INT64_FORMAT ", \"copied\": [%s], "
					 "\"frozen\": [%s], \"item_rows_matched\": %d, \"item_rows_new\": %d, "
					 "\"behavior_rows_matched\": %d, \"output_rows_matched\": %d}",
					 src->version, src->run_id, UsBlockList(rep.copied, true),
					 UsBlockList(freeze, true), rep.item_rows,
					 model->vocab.n_items - rep.item_rows, rep.behavior_rows, rep.output_rows);
	us_model_free(source);
	return js.data;
}
