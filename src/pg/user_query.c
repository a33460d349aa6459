/*
 * user_query.c: the one reader of users' queries (see user_query.h for the rule): the
 * read-only check on the planned statement, the column lookup, batched fetching, and the
 * conversion of a row's sequence and numbers. It does not interpret labels per task (the
 * callers do) and never writes.
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "nodes/plannodes.h"
#include "tcop/utility.h"
#include "utils/builtins.h"
#include "utils/fmgrprotos.h"
#include "utils/lsyscache.h"
#include "utils/plancache.h"
#include "utils/syscache.h"

#include "models/catalog.h"
#include "user_query.h"

extern Datum userseq_from_items(PG_FUNCTION_ARGS);

Oid
UsUserSeqTypeOid(void)
{
	return GetSysCacheOid2(TYPENAMENSP, Anum_pg_type_oid, CStringGetDatum("userseq"),
						   ObjectIdGetDatum(UsCatalogNamespace()));
}

bool
UsIsIntType(Oid t)
{
	return t == INT2OID || t == INT4OID || t == INT8OID;
}

bool
UsIsNumberType(Oid t)
{
	return UsIsIntType(t) || t == FLOAT4OID || t == FLOAT8OID || t == NUMERICOID;
}

int64
UsDatumInt(Datum d, Oid t)
{
	if (t == INT2OID)
		return DatumGetInt16(d);
	if (t == INT4OID)
		return DatumGetInt32(d);
	return DatumGetInt64(d);
}

double
UsDatumNumber(Datum d, Oid t)
{
	if (t == BOOLOID)
		return DatumGetBool(d) ? 1.0 : 0.0;
	if (UsIsIntType(t))
		return (double) UsDatumInt(d, t);
	if (t == FLOAT4OID)
		return (double) DatumGetFloat4(d);
	if (t == FLOAT8OID)
		return DatumGetFloat8(d);
	if (t == NUMERICOID)
		return DatumGetFloat8(DirectFunctionCall1(numeric_float8, d));
	ereport(ERROR,
			(errcode(ERRCODE_DATATYPE_MISMATCH),
			 errmsg("a column of type %s is not numeric or boolean", format_type_be(t))));
	return 0.0;
}

/*
 * Refuses anything but one read-only SELECT, looking at the planned statement (as SPI's own
 * read-only check does, so a FOR UPDATE inside a subquery or a data-modifying WITH is seen).
 */
static void
UsCheckReadOnly(SPIPlanPtr plan, const char *what)
{
	CachedPlan *cplan;
	ListCell   *lc;

	if (list_length(SPI_plan_get_plan_sources(plan)) != 1)
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("%s must be a single read-only SELECT", what),
				 errdetail("It holds %d statements.", list_length(SPI_plan_get_plan_sources(plan)))));
	cplan = SPI_plan_get_cached_plan(plan);
	if (cplan == NULL)
		elog(ERROR, "could not plan the %s", what);
	foreach(lc, cplan->stmt_list)
	{
		PlannedStmt *pstmt = lfirst_node(PlannedStmt, lc);

		if (!CommandIsReadOnly(pstmt))
		{
			bool		modifying_with = pstmt->commandType == CMD_SELECT && pstmt->hasModifyingCTE;
			const char *command = CreateCommandName((Node *) pstmt);

			ReleaseCachedPlan(cplan, NULL);
			ereport(ERROR,
					(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
					 errmsg("%s must be a single read-only SELECT", what),
					 modifying_with ?
					 errdetail("A WITH clause that modifies data is not allowed.") :
					 errdetail("%s is not allowed.", command)));
		}
	}
	ReleaseCachedPlan(cplan, NULL);
}

/* 1-based number of the column named name, 0 if none. */
static int
UsNamedColumn(TupleDesc td, const char *name)
{
	int			col = SPI_fnumber(td, name);

	return col > 0 ? col : 0;
}

void
UsUserQueryOpen(UsUserQuery *q, const char *what, const char *query, const char *label_task)
{
	Oid			userseq_oid = UsUserSeqTypeOid();
	SPIPlanPtr	plan;
	TupleDesc	td;
	Oid			seq_type;

	memset(q, 0, sizeof(*q));
	q->what = what;
	plan = SPI_prepare_cursor(query, 0, NULL, 0);
	if (plan == NULL)
		elog(ERROR, "could not prepare the %s: %s", what, SPI_result_code_string(SPI_result));
	UsCheckReadOnly(plan, what);
	if (!SPI_is_cursor_plan(plan))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("%s must return rows", what)));
	/* read only again: SPI checks the plan it runs too, and the query sees our snapshot */
	q->portal = SPI_cursor_open(NULL, plan, NULL, NULL, true);
	td = q->tupdesc = q->portal->tupDesc;

	/* the sequence: "seq", else the only userseq / bigint[] column */
	q->seq_col = UsNamedColumn(td, "seq");
	if (q->seq_col == 0)
	{
		int			found = 0;

		for (int i = 1; i <= td->natts; i++)
		{
			Oid			t = SPI_gettypeid(td, i);

			if (TupleDescAttr(td, i - 1)->attisdropped ||
				!(t == INT8ARRAYOID || (OidIsValid(userseq_oid) && t == userseq_oid)))
				continue;
			if (found++ == 0)
				q->seq_col = i;
		}
		if (found != 1)
			ereport(ERROR,
					(errcode(found == 0 ? ERRCODE_DATATYPE_MISMATCH : ERRCODE_AMBIGUOUS_COLUMN),
					 errmsg("%s has no column \"seq\" and %s column of type userseq or bigint[]",
							what, found == 0 ? "no" : "more than one"),
					 errhint("Name the sequence column seq, for example SELECT userseq_agg(...) AS seq.")));
	}
	seq_type = SPI_gettypeid(td, q->seq_col);
	if (seq_type != INT8ARRAYOID && (!OidIsValid(userseq_oid) || seq_type != userseq_oid))
		ereport(ERROR,
				(errcode(ERRCODE_DATATYPE_MISMATCH),
				 errmsg("column \"seq\" of the %s must be of type userseq or bigint[], not %s",
						what, format_type_be(seq_type))));
	q->seq_is_array = (seq_type == INT8ARRAYOID);

	/* the weight: "weight" */
	q->weight_col = UsNamedColumn(td, "weight");
	if (q->weight_col == q->seq_col)
		q->weight_col = 0;
	if (q->weight_col)
		q->weight_type = SPI_gettypeid(td, q->weight_col);

	/* the label: "label", else the only column besides the sequence and the weight */
	if (label_task == NULL)
		return;
	q->label_col = UsNamedColumn(td, "label");
	if (q->label_col == 0)
	{
		int			found = 0;

		for (int i = 1; i <= td->natts; i++)
		{
			if (TupleDescAttr(td, i - 1)->attisdropped || i == q->seq_col || i == q->weight_col)
				continue;
			if (found++ == 0)
				q->label_col = i;
		}
		if (found != 1)
			q->label_col = 0;
	}
	if (q->label_col == 0)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_COLUMN),
				 errmsg("%s has no column \"label\"", what),
				 errdetail("Task \"%s\" needs a label per sequence.", label_task)));
	q->label_type = SPI_gettypeid(td, q->label_col);
}

bool
UsUserQueryFetch(UsUserQuery *q)
{
	SPI_cursor_fetch(q->portal, true, US_FETCH_ROWS);
	return SPI_processed > 0;
}

void
UsUserQueryClose(UsUserQuery *q)
{
	SPI_cursor_close(q->portal);
	q->portal = NULL;
}

UserSeq *
UsUserQuerySeq(const UsUserQuery *q, Datum d)
{
	if (q->seq_is_array)
		return DatumGetUserSeqP(DirectFunctionCall1(userseq_from_items, d));
	return DatumGetUserSeqP(d);
}
