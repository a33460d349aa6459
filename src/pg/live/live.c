/*
 * live.c: the real-time trigger. userseq_live_attach (sql/parts/85_live.sql) checks the events
 * and target tables and the models, then creates an AFTER INSERT FOR EACH ROW trigger calling
 * userseq_live_trigger with the resolved configuration as trigger arguments:
 *
 *   target (qualified, quoted), user, item, ts, behavior ('' = none) columns of events,
 *   max_len, updated ('updated' or ''), then groups
 *     score  column model
 *     notify column above|below threshold channel
 *
 * For each inserted event the trigger keeps the user's row of target in the inserting
 * transaction, with the inserting role's privileges (plain SPI, no SECURITY DEFINER):
 *
 *   without notifications (no old score needed):
 *          UPDATE target SET seq = userseq_append(seq, event, max_len),
 *                 <score> = userseq_predict(model, <the same>) WHERE user_id = $1
 *   with notifications:
 *          SELECT ctid, seq, <notified scores> FROM target WHERE user_id = $1 FOR NO KEY UPDATE
 *          found: seq' = userseq_append(seq, event, max_len) and its scores in C;
 *                 UPDATE target SET ... WHERE ctid = $1            (the row stays locked)
 *   a new user (no row): seq' = the one event, scores in C;
 *          INSERT ... ON CONFLICT (user_id) DO NOTHING
 *          inserted: done; else another transaction inserted the user first and committed
 *          (ON CONFLICT waited for it): start over, the row is there now
 *
 * Under READ COMMITTED each SPI statement takes a new snapshot and FOR NO KEY UPDATE follows
 * a concurrent update to the newest row version, so concurrent inserters for one user
 * serialise on the row lock and lose no event (the UPDATE re-evaluates its expressions on the
 * newest row version); under REPEATABLE READ / SERIALIZABLE a
 * concurrent change gives the usual serialization failure (40001) and the client retries.
 *
 * Scores are userseq_predict's values (score/score.h) from the model cache, resolved by name
 * once per statement, so the next statement after a redeploy uses the new version. The SPI
 * plans are prepared once per backend and trigger (keyed by the trigger's OID, and made again
 * when its arguments differ: attaching again replaces the trigger in place) and kept; PostgreSQL re-plans them when the target changes and checks the
 * current role's privileges at every execution.
 */
#include "postgres.h"

#include "catalog/namespace.h"
#include "catalog/pg_type.h"
#include "commands/async.h"
#include "commands/trigger.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "access/htup_details.h"
#include "storage/itemptr.h"
#include "lib/stringinfo.h"
#include "utils/builtins.h"
#include "utils/float.h"
#include "utils/hsearch.h"
#include "utils/json.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/rel.h"
#include "utils/regproc.h"
#include "utils/syscache.h"
#include "utils/timestamp.h"

#include "models/model_cache.h"
#include "score/score.h"
#include "seq/userseq_type.h"
#include "userseq_pg.h"

#define LIVE_FIXED_ARGS		7	/* target, user, item, ts, behavior, max_len, updated */
#define LIVE_MAX_TRIES		16	/* insert races lost in a row before giving up */

typedef struct LiveScore
{
	char	   *column;
	char	   *model;
	int			old_index;		/* column of the lock query holding the old value, or 0 */
} LiveScore;

typedef struct LiveNotify
{
	int			score;			/* index into scores */
	bool		above;
	double		threshold;
	char	   *channel;
} LiveNotify;

/* One trigger's configuration and kept plans, per backend. */
typedef struct LiveConfig
{
	Oid			tgoid;			/* hash key */
	bool		parsed;			/* arguments read */
	bool		ready;			/* plans prepared */
	int			nargs;			/* the arguments parsed (CREATE OR REPLACE TRIGGER keeps the OID) */
	char	  **args;
	char	   *target;
	char	   *user_col;
	char	   *item_col;
	char	   *ts_col;
	char	   *behavior_col;	/* NULL: events carry no behaviour */
	int32		max_len;
	bool		has_updated;
	int			n_scores;
	LiveScore  *scores;
	int			n_notify;
	LiveNotify *notify;
	Oid			user_type;		/* of the plans' $1 */
	SPIPlanPtr	fast_plan;		/* without notifications: one UPDATE does it all */
	SPIPlanPtr	lock_plan;
	SPIPlanPtr	update_plan;
	SPIPlanPtr	insert_plan;
} LiveConfig;

/* Per statement (fn_extra of the trigger call): columns of events and the models' handle. */
typedef struct LiveQuery
{
	LiveConfig *cfg;
	Oid			relid;
	AttrNumber	user_att;
	AttrNumber	item_att;
	Oid			item_type;
	AttrNumber	ts_att;
	AttrNumber	behavior_att;	/* 0: none */
	FmgrInfo	model_flinfo;	/* model lookups and event buffer live as long as the statement */
	FunctionCallInfo model_fcinfo;
	UsModelEntry **entries;		/* resolved on first use, per score */
	Oid			user_out;		/* output function of the user type (notify payload) */
	bool		user_numeric;
} LiveQuery;

static HTAB *live_configs = NULL;
static MemoryContext live_cxt = NULL;

static char *
LiveArg(Trigger *tg, int i)
{
	if (i >= tg->tgnargs)
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("trigger \"%s\" has malformed userseq_live arguments", tg->tgname),
				 errhint("Create it with userseq_live_attach, not by hand.")));
	return tg->tgargs[i];
}

/* Parses the trigger arguments into cfg (strings copied into live_cxt). */
static void
LiveParseArgs(LiveConfig *cfg, Trigger *tg)
{
	int			i = LIVE_FIXED_ARGS;

	cfg->nargs = tg->tgnargs;
	cfg->args = MemoryContextAlloc(live_cxt, sizeof(char *) * Max(tg->tgnargs, 1));
	for (int a = 0; a < tg->tgnargs; a++)
		cfg->args[a] = MemoryContextStrdup(live_cxt, tg->tgargs[a]);
	/* the target by its catalog name, quoted here: the argument is never pasted into SQL as is */
	{
		List	   *names = stringToQualifiedNameList(LiveArg(tg, 0));
		Oid			relid = RangeVarGetRelid(makeRangeVarFromNameList(names), NoLock, false);

		cfg->target = MemoryContextStrdup(live_cxt,
										  quote_qualified_identifier(get_namespace_name(get_rel_namespace(relid)),
																	 get_rel_name(relid)));
	}
	cfg->user_col = MemoryContextStrdup(live_cxt, LiveArg(tg, 1));
	cfg->item_col = MemoryContextStrdup(live_cxt, LiveArg(tg, 2));
	cfg->ts_col = MemoryContextStrdup(live_cxt, LiveArg(tg, 3));
	cfg->behavior_col = LiveArg(tg, 4)[0] ? MemoryContextStrdup(live_cxt, LiveArg(tg, 4)) : NULL;
	cfg->max_len = pg_strtoint32(LiveArg(tg, 5));
	cfg->has_updated = LiveArg(tg, 6)[0] != '\0';
	cfg->scores = MemoryContextAllocZero(live_cxt, sizeof(LiveScore) * Max(tg->tgnargs, 1));
	cfg->notify = MemoryContextAllocZero(live_cxt, sizeof(LiveNotify) * Max(tg->tgnargs, 1));
	while (i < tg->tgnargs)
	{
		const char *kind = LiveArg(tg, i);

		if (strcmp(kind, "score") == 0)
		{
			LiveScore  *s = &cfg->scores[cfg->n_scores++];

			s->column = MemoryContextStrdup(live_cxt, LiveArg(tg, i + 1));
			s->model = MemoryContextStrdup(live_cxt, LiveArg(tg, i + 2));
			i += 3;
		}
		else if (strcmp(kind, "notify") == 0)
		{
			LiveNotify *nt = &cfg->notify[cfg->n_notify++];
			const char *col = LiveArg(tg, i + 1);

			nt->score = -1;
			for (int k = 0; k < cfg->n_scores; k++)
				if (strcmp(cfg->scores[k].column, col) == 0)
					nt->score = k;
			if (nt->score < 0)
				LiveArg(tg, tg->tgnargs);	/* raises: malformed */
			nt->above = strcmp(LiveArg(tg, i + 2), "above") == 0;
			nt->threshold = float8in_internal(LiveArg(tg, i + 3), NULL, "double precision",
											  LiveArg(tg, i + 3));
			nt->channel = MemoryContextStrdup(live_cxt, LiveArg(tg, i + 4));
			i += 5;
		}
		else
			LiveArg(tg, tg->tgnargs);	/* raises: malformed */
	}
	if (cfg->max_len <= 0)
		LiveArg(tg, tg->tgnargs);
}

static SPIPlanPtr
LivePrepare(const char *sql, int nargs, Oid *types)
{
	SPIPlanPtr	plan = SPI_prepare(sql, nargs, types);

	if (plan == NULL)
		elog(ERROR, "userseq_live: could not prepare \"%s\": %s", sql,
			 SPI_result_code_string(SPI_result));
	if (SPI_keepplan(plan) != 0)
		elog(ERROR, "userseq_live: SPI_keepplan failed");
	return plan;
}

/* Prepares the three statements (inside an SPI connection). */
static void
LivePreparePlans(LiveConfig *cfg, Oid seq_type, const char *ext)
{
	StringInfoData lock,
				upd,
				ins;
	Oid		   *types = palloc(sizeof(Oid) * Max(cfg->n_scores + 2, 5));
	int			col = 3;		/* ctid, seq, then the notified scores' old values */

	initStringInfo(&lock);
	appendStringInfoString(&lock, "SELECT ctid, seq");
	for (int k = 0; k < cfg->n_scores; k++)
	{
		bool		notified = false;

		for (int j = 0; j < cfg->n_notify; j++)
			notified |= cfg->notify[j].score == k;
		if (notified)
		{
			appendStringInfo(&lock, ", %s", quote_identifier(cfg->scores[k].column));
			cfg->scores[k].old_index = col++;
		}
	}
	appendStringInfo(&lock, " FROM %s WHERE user_id OPERATOR(pg_catalog.=) $1 FOR NO KEY UPDATE",
					 cfg->target);

	/* UPDATE: $1 ctid, $2 seq, $3.. scores */
	initStringInfo(&upd);
	appendStringInfo(&upd, "UPDATE %s SET seq = $2", cfg->target);
	for (int k = 0; k < cfg->n_scores; k++)
		appendStringInfo(&upd, ", %s = $%d", quote_identifier(cfg->scores[k].column), k + 3);
	if (cfg->has_updated)
		appendStringInfoString(&upd, ", updated = pg_catalog.now()");
	appendStringInfoString(&upd, " WHERE ctid OPERATOR(pg_catalog.=) $1");

	/* INSERT: $1 user, $2 seq, $3.. scores */
	initStringInfo(&ins);
	appendStringInfo(&ins, "INSERT INTO %s (user_id, seq", cfg->target);
	for (int k = 0; k < cfg->n_scores; k++)
		appendStringInfo(&ins, ", %s", quote_identifier(cfg->scores[k].column));
	if (cfg->has_updated)
		appendStringInfoString(&ins, ", updated");
	appendStringInfoString(&ins, ") VALUES ($1, $2");
	for (int k = 0; k < cfg->n_scores; k++)
		appendStringInfo(&ins, ", $%d", k + 3);
	if (cfg->has_updated)
		appendStringInfoString(&ins, ", pg_catalog.now()");
	appendStringInfoString(&ins, ") ON CONFLICT (user_id) DO NOTHING");

	/*
	 * Without notifications no old score is needed: an existing user's row is updated by one
	 * statement that appends and re-scores in SQL (the same functions, so the same values; in
	 * READ COMMITTED the UPDATE re-evaluates them on the newest row version if another
	 * transaction updated the user meanwhile). $1 user, $2 item, $3 ts, $4 behavior, $5 max_len.
	 */
	if (cfg->n_notify == 0)
	{
		StringInfoData fast;
		char	   *append = psprintf("%s.userseq_append(t.seq, $2, $3, $4, $5)", ext);

		initStringInfo(&fast);
		appendStringInfo(&fast, "UPDATE %s AS t SET seq = %s", cfg->target, append);
		for (int k = 0; k < cfg->n_scores; k++)
			appendStringInfo(&fast, ", %s = %s.userseq_predict(%s::pg_catalog.text, %s)",
							 quote_identifier(cfg->scores[k].column), ext,
							 quote_literal_cstr(cfg->scores[k].model), append);
		if (cfg->has_updated)
			appendStringInfoString(&fast, ", updated = pg_catalog.now()");
		appendStringInfoString(&fast, " WHERE t.user_id OPERATOR(pg_catalog.=) $1");
		types[0] = cfg->user_type;
		types[1] = INT8OID;
		types[2] = TIMESTAMPTZOID;
		types[3] = TEXTOID;
		types[4] = INT4OID;
		cfg->fast_plan = LivePrepare(fast.data, 5, types);
	}

	types[0] = cfg->user_type;
	cfg->lock_plan = LivePrepare(lock.data, 1, types);
	types[1] = seq_type;
	for (int k = 0; k < cfg->n_scores; k++)
		types[k + 2] = FLOAT8OID;
	cfg->insert_plan = LivePrepare(ins.data, cfg->n_scores + 2, types);
	types[0] = TIDOID;
	cfg->update_plan = LivePrepare(upd.data, cfg->n_scores + 2, types);
}

static LiveConfig *
LiveGetConfig(Trigger *tg)
{
	LiveConfig *cfg;
	bool		found;

	if (live_configs == NULL)
	{
		HASHCTL		ctl;

		live_cxt = AllocSetContextCreate(TopMemoryContext, "userseq live triggers",
										 ALLOCSET_SMALL_SIZES);
		ctl.keysize = sizeof(Oid);
		ctl.entrysize = sizeof(LiveConfig);
		ctl.hcxt = live_cxt;
		live_configs = hash_create("userseq live triggers", 16, &ctl,
								   HASH_ELEM | HASH_BLOBS | HASH_CONTEXT);
	}
	cfg = hash_search(live_configs, &tg->tgoid, HASH_ENTER, &found);
	if (found && cfg->parsed)
	{
		bool		same = cfg->nargs == tg->tgnargs;

		for (int i = 0; same && i < tg->tgnargs; i++)
			same = strcmp(cfg->args[i], tg->tgargs[i]) == 0;
		if (same)
			return cfg;
		/* attached again with other options: start over (the old strings stay in live_cxt) */
		if (cfg->fast_plan)
			SPI_freeplan(cfg->fast_plan);
		if (cfg->lock_plan)
			SPI_freeplan(cfg->lock_plan);
		if (cfg->update_plan)
			SPI_freeplan(cfg->update_plan);
		if (cfg->insert_plan)
			SPI_freeplan(cfg->insert_plan);
		found = false;
	}
	if (!found)
	{
		Oid			tgoid = tg->tgoid;

		memset(cfg, 0, sizeof(LiveConfig));
		cfg->tgoid = tgoid;
	}
	return cfg;
}

/* Column number of name in events, with a clear error when it is gone. */
static AttrNumber
LiveColumn(Relation rel, const char *name)
{
	int			att = SPI_fnumber(RelationGetDescr(rel), name);

	if (att <= 0)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_COLUMN),
				 errmsg("column \"%s\" of the events table \"%s\" no longer exists",
						name, RelationGetRelationName(rel)),
				 errhint("Attach again with userseq_live_attach, or detach with userseq_live_detach.")));
	return (AttrNumber) att;
}

/* Reads the trigger's arguments once; a malformed set leaves no half-filled entry behind. */
static void
LiveEnsureParsed(LiveConfig *cfg, Trigger *tg)
{
	if (cfg->parsed)
		return;
	PG_TRY();
	{
		LiveParseArgs(cfg, tg);
		cfg->parsed = true;
	}
	PG_CATCH();
	{
		hash_search(live_configs, &tg->tgoid, HASH_REMOVE, NULL);
		PG_RE_THROW();
	}
	PG_END_TRY();
}

static LiveQuery *
LiveGetQuery(FunctionCallInfo fcinfo, TriggerData *td)
{
	LiveQuery  *q = (LiveQuery *) fcinfo->flinfo->fn_extra;
	Relation	rel = td->tg_relation;
	MemoryContext old;

	if (q != NULL && q->relid == RelationGetRelid(rel) &&
		q->cfg->tgoid == td->tg_trigger->tgoid)
		return q;

	old = MemoryContextSwitchTo(fcinfo->flinfo->fn_mcxt);
	q = palloc0(sizeof(LiveQuery));
	q->cfg = LiveGetConfig(td->tg_trigger);
	LiveEnsureParsed(q->cfg, td->tg_trigger);
	q->relid = RelationGetRelid(rel);
	q->user_att = LiveColumn(rel, q->cfg->user_col);
	q->item_att = LiveColumn(rel, q->cfg->item_col);
	q->item_type = TupleDescAttr(RelationGetDescr(rel), q->item_att - 1)->atttypid;
	if (q->item_type != INT8OID && q->item_type != INT4OID && q->item_type != INT2OID)
		ereport(ERROR,
				(errcode(ERRCODE_DATATYPE_MISMATCH),
				 errmsg("column \"%s\" of \"%s\" must be bigint, integer or smallint",
						q->cfg->item_col, RelationGetRelationName(rel))));
	q->ts_att = LiveColumn(rel, q->cfg->ts_col);
	q->behavior_att = q->cfg->behavior_col ? LiveColumn(rel, q->cfg->behavior_col) : 0;
	{
		Oid			utype = TupleDescAttr(RelationGetDescr(rel), q->user_att - 1)->atttypid;
		bool		varlena;

		getTypeOutputInfo(utype, &q->user_out, &varlena);
		q->user_numeric = utype == INT2OID || utype == INT4OID || utype == INT8OID;
		if (q->cfg->ready && q->cfg->user_type != utype)
			ereport(ERROR,
					(errcode(ERRCODE_DATATYPE_MISMATCH),
					 errmsg("the user column \"%s\" of \"%s\" changed its type since userseq_live_attach",
							q->cfg->user_col, RelationGetRelationName(rel)),
					 errhint("Attach again with userseq_live_attach.")));
		q->cfg->user_type = utype;
	}
	/* model lookups get their own call site (fn_extra here is ours); same schema, same life */
	q->model_flinfo = *fcinfo->flinfo;
	q->model_flinfo.fn_extra = NULL;
	q->model_fcinfo = palloc0(SizeForFunctionCallInfo(2));
	q->model_fcinfo->flinfo = &q->model_flinfo;
	q->entries = palloc0(sizeof(UsModelEntry *) * Max(q->cfg->n_scores, 1));
	MemoryContextSwitchTo(old);
	fcinfo->flinfo->fn_extra = q;
	return q;
}

/* The scored models, resolved once per statement (the C path scores with them). */
static void
LiveResolveModels(LiveQuery *q)
{
	for (int k = 0; k < q->cfg->n_scores; k++)
		if (q->entries[k] == NULL)
		{
			UsModelEntry *e = UsModelByName(q->model_fcinfo, cstring_to_text(q->cfg->scores[k].model));

			UsRequireTask(e, US_TASK_BIT(US_TASK_BINARY) | US_TASK_BIT(US_TASK_REGRESSION),
						  "userseq_live", q->cfg->scores[k].model);
			q->entries[k] = e;
		}
}

/* JSON for a notification: {"user": .., "column": .., "old": .., "new": ..} */
static char *
LivePayload(LiveQuery *q, Datum user, const char *column, bool old_null, double old_v, double new_v)
{
	StringInfoData s;
	char	   *u = OidOutputFunctionCall(q->user_out, user);

	initStringInfo(&s);
	appendStringInfoString(&s, "{\"user\": ");
	if (q->user_numeric)
		appendStringInfoString(&s, u);
	else
		escape_json(&s, u);
	appendStringInfoString(&s, ", \"column\": ");
	escape_json(&s, column);
	appendStringInfoString(&s, ", \"old\": ");
	appendStringInfoString(&s, old_null || isnan(old_v) || isinf(old_v) ? "null" : float8out_internal(old_v));
	appendStringInfoString(&s, ", \"new\": ");
	appendStringInfoString(&s, isnan(new_v) || isinf(new_v) ? "null" : float8out_internal(new_v));
	appendStringInfoChar(&s, '}');
	return s.data;
}

/* The AFTER INSERT FOR EACH ROW trigger userseq_live_attach creates */
FUNCTION_PREFIX PG_FUNCTION_INFO_V1(userseq_live_trigger);
Datum
userseq_live_trigger(PG_FUNCTION_ARGS)
{
	TriggerData *td = (TriggerData *) fcinfo->context;
	LiveQuery  *q;
	LiveConfig *cfg;
	HeapTuple	row;
	TupleDesc	desc;
	bool		isnull;
	Datum		user,
				d;
	int64		item;
	TimestampTz ts;
	text	   *behavior = NULL;
	Datum	   *values;
	char	   *nulls;
	double	   *scores;
	double	   *old_scores;
	bool	   *old_nulls;
	bool		found = false;
	int			tries = 0;

	if (!CALLED_AS_TRIGGER(fcinfo) || !TRIGGER_FIRED_AFTER(td->tg_event) ||
		!TRIGGER_FIRED_FOR_ROW(td->tg_event) || !TRIGGER_FIRED_BY_INSERT(td->tg_event))
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("userseq_live_trigger must be an AFTER INSERT FOR EACH ROW trigger"),
				 errhint("Use userseq_live_attach.")));
	q = LiveGetQuery(fcinfo, td);
	cfg = q->cfg;
	row = td->tg_trigtuple;
	desc = RelationGetDescr(td->tg_relation);

	/* events without a user, item or time are not part of any sequence (as userseq_agg skips them) */
	user = heap_getattr(row, q->user_att, desc, &isnull);
	if (isnull)
		return PointerGetDatum(NULL);
	d = heap_getattr(row, q->item_att, desc, &isnull);
	if (isnull)
		return PointerGetDatum(NULL);
	item = q->item_type == INT8OID ? DatumGetInt64(d) :
		q->item_type == INT4OID ? DatumGetInt32(d) : DatumGetInt16(d);
	d = heap_getattr(row, q->ts_att, desc, &isnull);
	if (isnull)
		return PointerGetDatum(NULL);
	ts = DatumGetTimestampTz(d);
	if (q->behavior_att)
	{
		d = heap_getattr(row, q->behavior_att, desc, &isnull);
		if (!isnull)
			behavior = DatumGetTextPP(d);
	}

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "userseq_live: SPI_connect failed");
	if (!cfg->ready)
	{
		Oid			seq_type = GetSysCacheOid2(TYPENAMENSP, Anum_pg_type_oid, CStringGetDatum("userseq"),
											   ObjectIdGetDatum(get_func_namespace(fcinfo->flinfo->fn_oid)));

		if (!OidIsValid(seq_type))
			elog(ERROR, "userseq_live: type userseq not found in the extension's schema");
		LivePreparePlans(cfg, seq_type,
						 quote_identifier(get_namespace_name(get_func_namespace(fcinfo->flinfo->fn_oid))));
		cfg->ready = true;
	}

	values = palloc(sizeof(Datum) * (cfg->n_scores + 2));
	nulls = palloc(cfg->n_scores + 3);
	memset(nulls, ' ', cfg->n_scores + 2);
	nulls[cfg->n_scores + 2] = '\0';
	scores = palloc(sizeof(double) * Max(cfg->n_scores, 1));
	old_scores = palloc0(sizeof(double) * Max(cfg->n_scores, 1));
	old_nulls = palloc(sizeof(bool) * Max(cfg->n_scores, 1));

	for (;;)
	{
		UserSeq    *old_seq = NULL;
		UserSeq    *seq;
		ItemPointer ctid = NULL;
		int			ret;

		if (cfg->fast_plan)
		{
			Datum		fargs[5];
			char		fnulls[6] = "     ";

			fargs[0] = user;
			fargs[1] = Int64GetDatum(item);
			fargs[2] = TimestampTzGetDatum(ts);
			fargs[3] = PointerGetDatum(behavior);
			if (behavior == NULL)
				fnulls[3] = 'n';
			fargs[4] = Int32GetDatum(cfg->max_len);
			ret = SPI_execute_plan(cfg->fast_plan, fargs, fnulls, false, 0);
			if (ret != SPI_OK_UPDATE)
				elog(ERROR, "userseq_live: update of %s returned %d", cfg->target, ret);
			if (SPI_processed == 1)
				break;
			found = false;		/* a new user: insert below */
		}
		else
		{
			ret = SPI_execute_plan(cfg->lock_plan, &user, NULL, false, 1);
			if (ret != SPI_OK_SELECT)
				elog(ERROR, "userseq_live: lock query returned %d", ret);
			found = SPI_processed == 1;
		}
		for (int k = 0; k < cfg->n_scores; k++)
			old_nulls[k] = true;
		if (found)
		{
			HeapTuple	t = SPI_tuptable->vals[0];
			TupleDesc	td2 = SPI_tuptable->tupdesc;

			ctid = (ItemPointer) DatumGetPointer(SPI_getbinval(t, td2, 1, &isnull));
			d = SPI_getbinval(t, td2, 2, &isnull);
			if (!isnull)
				old_seq = DatumGetUserSeqP(d);
			for (int k = 0; k < cfg->n_scores; k++)
				if (cfg->scores[k].old_index > 0)
				{
					d = SPI_getbinval(t, td2, cfg->scores[k].old_index, &old_nulls[k]);
					if (!old_nulls[k])
						old_scores[k] = DatumGetFloat8(d);
				}
		}
		seq = UserSeqAppend(old_seq, item, ts, behavior ? VARDATA_ANY(behavior) : NULL,
							behavior ? VARSIZE_ANY_EXHDR(behavior) : 0, cfg->max_len);
		values[1] = PointerGetDatum(seq);
		LiveResolveModels(q);
		for (int k = 0; k < cfg->n_scores; k++)
		{
			bool		snull;

			scores[k] = UsPredictValue(q->model_fcinfo, q->entries[k], cfg->scores[k].model,
									   PointerGetDatum(seq), &snull);
			values[k + 2] = Float8GetDatum(scores[k]);
			nulls[k + 2] = snull ? 'n' : ' ';
		}
		if (found)
		{
			values[0] = PointerGetDatum(ctid);
			ret = SPI_execute_plan(cfg->update_plan, values, nulls, false, 0);
			if (ret != SPI_OK_UPDATE || SPI_processed != 1)
				elog(ERROR, "userseq_live: update of the locked row of %s touched " UINT64_FORMAT " rows",
					 cfg->target, SPI_processed);
			break;
		}
		values[0] = user;
		ret = SPI_execute_plan(cfg->insert_plan, values, nulls, false, 0);
		if (ret != SPI_OK_INSERT)
			elog(ERROR, "userseq_live: insert into %s returned %d", cfg->target, ret);
		if (SPI_processed == 1)
			break;
		/* another transaction inserted this user first and committed: lock its row */
		if (++tries >= LIVE_MAX_TRIES)
			ereport(ERROR,
					(errcode(ERRCODE_T_R_SERIALIZATION_FAILURE),
					 errmsg("userseq_live: could not insert or lock the row of a user in %s after %d tries",
							cfg->target, tries)));
	}

	/* a notification only when a score crosses its threshold */
	for (int j = 0; j < cfg->n_notify; j++)
	{
		LiveNotify *nt = &cfg->notify[j];
		int			k = nt->score;
		bool		new_null = nulls[k + 2] == 'n';
		bool		was,
					is;

		if (new_null)
			continue;
		is = nt->above ? scores[k] > nt->threshold : scores[k] < nt->threshold;
		was = !old_nulls[k] && (nt->above ? old_scores[k] > nt->threshold : old_scores[k] < nt->threshold);
		if (is && !was)
			Async_Notify(nt->channel,
						 LivePayload(q, user, cfg->scores[k].column, old_nulls[k], old_scores[k],
									 scores[k]));
	}
	SPI_finish();
	return PointerGetDatum(NULL);
}
