/*
 * model_cache.c: per-backend cache of decoded models (with their scorers and folded tables),
 * and the per-query handle that pins what a query uses.
 *
 * Keys: a model read by name is identified by its catalog row (model_id, version) and the
 * CRC32C of its bytes; a model passed by value by (CRC32C, total size) from its 32-byte
 * header, read with a slice detoast, so scoring a million rows neither detoasts nor decodes a
 * million times. A value that matches a cached model by header has its CRC32C checked once
 * per query (not per row), so a corrupt copy with an intact header is still rejected. Each entry has its own memory context, a child of TopMemoryContext; at most
 * userseq.model_cache_size entries stay findable, least recently used first out.
 *
 * Consistency: a query resolves a name once (per FmgrInfo, in fn_extra) and pins the entry
 * until fn_mcxt goes away (a reset callback), so a retrain committed meanwhile is not half
 * seen and eviction never frees a model in use; the next query resolves the name again.
 *
 * This file does not score anything (score.c, recommend.c, evaluate.c do) and does not write
 * the catalog (training does).
 */
#include "postgres.h"

#include "access/detoast.h"
#include "catalog/pg_type.h"
#include "commands/extension.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "funcapi.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/snapmgr.h"

#include "models/model_cache.h"
#include "models/shared_cache.h"
#include "userseq_pg.h"
#include "userseq/us_format.h"

#define US_CACHE_MAX		64		/* upper bound of userseq.model_cache_size */
#define US_QUERY_NAMES		8		/* distinct model names one call site keeps resolved */

static UsModelEntry *cache[US_CACHE_MAX];
static int	n_cache = 0;
static uint64 use_clock = 0;
static int64 stat_decodes = 0;
static int64 stat_hits = 0;
static int64 stat_evictions = 0;

/* What one call site (FmgrInfo) holds for the duration of its query. */
typedef struct UsQueryRef
{
	MemoryContextCallback cb;
	int			n_names;
	char	   *names[US_QUERY_NAMES];
	UsModelEntry *name_entries[US_QUERY_NAMES];
	/*
	 * The snapshot the names were resolved under. A plpgsql loop evaluates the same call
	 * site statement after statement with one fn_extra; when the active snapshot has moved
	 * (a new statement that sees other commits, or our own catalog change), names resolve
	 * again, as a new query would. Within one query the snapshot stays and so do the versions.
	 */
	bool		snap_valid;
	TransactionId snap_xmin;
	TransactionId snap_xmax;
	CommandId	snap_cid;
	uint64		snap_completions;
	/* by value: the last model seen and how it was recognised */
	UsModelEntry *value_entry;
	uint32		value_crc;
	uint64		value_size;
	bool		value_toast_valid;
	Oid			value_toastrelid;
	Oid			value_valueid;
	bool		buf_ready;
	UsEventBuffer buf;
} UsQueryRef;

static void
UsEntryFree(UsModelEntry *entry)
{
	/* the scorer, model and entry all live in entry->cxt */
	MemoryContextDelete(entry->cxt);
}

static void
UsEntryUnpin(UsModelEntry *entry)
{
	Assert(entry->pins > 0);
	entry->pins--;
	if (entry->pins == 0 && !entry->cached)
		UsEntryFree(entry);
}

static void
UsEntryPin(UsModelEntry *entry)
{
	entry->pins++;
	entry->last_used = ++use_clock;
}

/* Runs when the query's FmgrInfo memory goes away (end of query, or error cleanup). */
static void
UsQueryRefRelease(void *arg)
{
	UsQueryRef *ref = (UsQueryRef *) arg;

	for (int i = 0; i < ref->n_names; i++)
		UsEntryUnpin(ref->name_entries[i]);
	ref->n_names = 0;
	if (ref->value_entry)
		UsEntryUnpin(ref->value_entry);
	ref->value_entry = NULL;
}

static UsQueryRef *
UsGetQueryRef(FunctionCallInfo fcinfo)
{
	FmgrInfo   *flinfo = fcinfo->flinfo;
	UsQueryRef *ref = (UsQueryRef *) flinfo->fn_extra;

	if (ref == NULL)
	{
		ref = MemoryContextAllocZero(flinfo->fn_mcxt, sizeof(UsQueryRef));
		ref->cb.func = UsQueryRefRelease;
		ref->cb.arg = ref;
		MemoryContextRegisterResetCallback(flinfo->fn_mcxt, &ref->cb);
		flinfo->fn_extra = ref;
	}
	return ref;
}

UsEventBuffer *
UsQueryEventBuffer(FunctionCallInfo fcinfo)
{
	UsQueryRef *ref = UsGetQueryRef(fcinfo);

	if (!ref->buf_ready)
	{
		UsEventBufferInit(&ref->buf, fcinfo->flinfo->fn_mcxt);
		ref->buf_ready = true;
	}
	return &ref->buf;
}

/* Removes entry i from the table; frees it unless a query still holds it. */
static void
UsCacheRemove(int i)
{
	UsModelEntry *entry = cache[i];

	cache[i] = cache[--n_cache];
	cache[n_cache] = NULL;
	entry->cached = false;
	if (entry->pins == 0)
		UsEntryFree(entry);
}

/* Makes room for one more entry: least recently used first, unpinned ones before pinned. */
static void
UsCacheMakeRoom(void)
{
	while (n_cache > 0 && n_cache >= userseq_model_cache_size)
	{
		int			victim = -1;

		for (int pass = 0; pass < 2 && victim < 0; pass++)
			for (int i = 0; i < n_cache; i++)
				if ((pass == 1 || cache[i]->pins == 0) &&
					(victim < 0 || cache[i]->last_used < cache[victim]->last_used))
					victim = i;
		UsCacheRemove(victim);
		stat_evictions++;
	}
}

static UsModelEntry *
UsCacheFind(bool by_name, int64 model_id, int32 version, uint32 crc, uint64 total_size)
{
	for (int i = 0; i < n_cache; i++)
	{
		UsModelEntry *e = cache[i];

		if (e->crc != crc || e->total_size != total_size)
			continue;
		/* a by-name lookup needs the same catalog row; by value, the same bytes suffice */
		if (by_name && (!e->by_name || e->model_id != model_id || e->version != version))
			continue;
		stat_hits++;
		return e;
	}
	return NULL;
}

/*
 * Reads the format header of a model bytea without detoasting the rest, and checks that the
 * stored length agrees with it (so a truncated copy of a cached model is not mistaken for it).
 */
static void
UsReadHeader(Datum weights, us_format_header *h, const char *what)
{
	struct varlena *p = (struct varlena *) DatumGetPointer(weights);
	const uint8 *bytes;
	size_t		len;
	Size		raw;
	us_status	st;

	if (VARATT_IS_EXTERNAL(p) || VARATT_IS_COMPRESSED(p))
	{
		bytea	   *slice = DatumGetByteaPSlice(weights, 0, US_FORMAT_HEADER_SIZE);

		bytes = (const uint8 *) VARDATA_ANY(slice);
		len = VARSIZE_ANY_EXHDR(slice);
	}
	else
	{
		bytes = (const uint8 *) VARDATA_ANY(p);
		len = VARSIZE_ANY_EXHDR(p);
	}
	st = us_format_peek(bytes, len, h);
	UsCheckStatus(st, what, NULL);

	raw = toast_raw_datum_size(weights) - VARHDRSZ;
	if ((uint64) raw != h->total_size)
		UsCheckStatus(raw < h->total_size ? US_ETRUNCATED : US_EFORMAT, what,
					  psprintf("The header announces %llu bytes but the value holds %llu.",
							   (unsigned long long) h->total_size,
							   (unsigned long long) raw));
}

/*
 * Checks the CRC32C of a value whose header matched a cached model: done once per query and
 * model (not per row), so a corrupt copy with an intact header is not mistaken for the model.
 */
static void
UsVerifyBody(Datum weights, const us_format_header *h, const char *what)
{
	bytea	   *full = DatumGetByteaPP(weights);
	const uint8 *bytes = (const uint8 *) VARDATA_ANY(full);
	size_t		len = VARSIZE_ANY_EXHDR(full);

	if (len < US_FORMAT_HEADER_SIZE || len != h->total_size)
		UsCheckStatus(US_ETRUNCATED, what, NULL);
	if (us_crc32c(0, bytes + US_FORMAT_HEADER_SIZE, len - US_FORMAT_HEADER_SIZE) != h->crc32c)
		UsCheckStatus(US_ECHECKSUM, what, NULL);
	if ((Pointer) full != DatumGetPointer(weights))
		pfree(full);
}

/*
 * A next_item model whose top-k screen did not fit userseq.fold_memory: top-k then scores
 * every item in fp32, an order of magnitude slower on a large catalogue, and nothing else
 * would tell. Said once per load, with the size that fits; 0 turns the tables off on purpose.
 */
static void
UsNoticeUnscreened(const UsModelEntry *entry, const char *name, size_t budget)
{
	size_t		need = us_scorer_screen_bytes(&entry->model->cfg);
	size_t		need_mb = (need + ((size_t) 1 << 20) - 1) >> 20;

	if (budget == 0 || need <= budget || us_scorer_is_screened(entry->scorer))
		return;
	ereport(NOTICE,
			(errmsg("%s%s%s is scored without its top-k screen: the screen needs %zu MB, over userseq.fold_memory (%s)",
					name ? "model \"" : "the model given by value", name ? name : "", name ? "\"" : "",
					need_mb, GetConfigOptionByName("userseq.fold_memory", NULL, false)),
			 errdetail("userseq_recommend then scores every item of the catalogue in fp32 for each request."),
			 errhint("Set userseq.fold_memory to at least %zu MB (for example with ALTER DATABASE ... SET); it applies to models loaded after the change, such as in new sessions.",
					 need_mb)));
}

/*
 * Decodes the full bytes into a new entry and adds it to the cache. The entry's context starts
 * as a child of the current (query-lived) context, so an error while decoding or folding frees
 * it with the query; only a complete entry is moved under TopMemoryContext.
 */
static UsModelEntry *
UsCacheLoad(Datum weights, const us_format_header *h, const char *name, int64 model_id,
			int32 version, const char *what)
{
	MemoryContext cxt;
	us_allocator alloc;
	UsModelEntry *entry;
	bytea	   *full;
	us_status	st;
	size_t		budget;

	cxt = AllocSetContextCreate(CurrentMemoryContext, "userseq model", ALLOCSET_DEFAULT_SIZES);
	alloc = UsContextAllocator(cxt);
	entry = MemoryContextAllocZero(cxt, sizeof(UsModelEntry));
	entry->cxt = cxt;
	entry->by_name = name != NULL;
	entry->model_id = model_id;
	entry->version = version;
	entry->crc = h->crc32c;
	entry->total_size = h->total_size;

	/* fold_memory is in kB; folding applies when the tables fit, else the direct path */
	budget = (size_t) userseq_fold_memory_kb * 1024;

	/* a deployed model another backend already built: map its image, no detoast, no decode */
	if (!UsSharedOpen(entry, name, budget))
	{
		full = DatumGetByteaPP(weights);
		st = us_model_decode((const uint8 *) VARDATA_ANY(full), VARSIZE_ANY_EXHDR(full), &alloc,
							 &entry->model);
		UsCheckStatus(st, what, NULL);
		if ((Pointer) full != DatumGetPointer(weights))
			pfree(full);
		stat_decodes++;

		UsApplyThreads();
		st = us_scorer_create(entry->model, budget, &alloc, &entry->scorer);
		UsCheckStatus(st, what, NULL);
		UsSharedPublish(entry, name, budget);
	}
	UsNoticeUnscreened(entry, name, budget);

	MemoryContextSetParent(cxt, TopMemoryContext);
	UsCacheMakeRoom();
	entry->cached = true;
	cache[n_cache++] = entry;
	return entry;
}

/*
 * Kept plans of the by-name lookup (per backend, for the schema they were made for). The key
 * query reads no weights: a cached entry read from the same catalog row version (model_id,
 * version, the row's xmin and ctid, which any rewrite of the row changes) is used as it is, so a
 * statement that scores one row (a trigger, an OLTP read) pays one index lookup, not a parse,
 * a plan and a TOAST fetch of the weights' header. (xmin alone is not enough: a frozen row
 * reports xmin 2; the extension never rewrites weights in place, but a hand-made UPDATE would
 * also move the row to a new ctid.)
 */
static Oid	lookup_schema = InvalidOid;
static SPIPlanPtr lookup_key_plan = NULL;
static SPIPlanPtr lookup_row_plan = NULL;

static void
UsPrepareLookups(Oid nsp, const char *schema)
{
	Oid			argtypes[1] = {TEXTOID};
	SPIPlanPtr	key,
				row;

	if (lookup_schema == nsp && lookup_key_plan && lookup_row_plan)
		return;
	/*
	 * Every operator qualified: these run in the caller's search_path (no GUC switch on this
	 * hot path), and a plan is re-analysed when that path changes, so nothing may resolve
	 * through it (test/t/trust_search_path.sh).
	 */
	key = SPI_prepare(psprintf("SELECT model_id, version, xmin, ctid FROM %s.models "
							   "WHERE name OPERATOR(pg_catalog.=) $1 AND deployed",
							   quote_identifier(schema)), 1, argtypes);
	row = SPI_prepare(psprintf("SELECT model_id, version, weights, xmin, ctid FROM %s.models "
							   "WHERE name OPERATOR(pg_catalog.=) $1 AND deployed",
							   quote_identifier(schema)), 1, argtypes);
	if (key == NULL || row == NULL)
		elog(ERROR, "could not prepare the model lookup in schema %s: %s", schema,
			 SPI_result_code_string(SPI_result));
	if (SPI_keepplan(key) != 0 || SPI_keepplan(row) != 0)
		elog(ERROR, "SPI_keepplan failed");
	if (lookup_key_plan)
		SPI_freeplan(lookup_key_plan);
	if (lookup_row_plan)
		SPI_freeplan(lookup_row_plan);
	lookup_key_plan = key;
	lookup_row_plan = row;
	lookup_schema = nsp;
}

/* Raises the error for a name without a deployed row (inside the SPI connection). */
static void
UsNoDeployedModel(const char *name, const char *schema, Datum *args)
{
	Oid			argtypes[1] = {TEXTOID};
	char	   *q2 = psprintf("SELECT pg_catalog.count(*) FROM %s.models WHERE name OPERATOR(pg_catalog.=) $1",
							  quote_identifier(schema));
	int64		versions = 0;
	bool		isnull;

	if (SPI_execute_with_args(q2, 1, argtypes, args, NULL, true, 1) == SPI_OK_SELECT &&
		SPI_processed == 1)
		versions = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0],
											   SPI_tuptable->tupdesc, 1, &isnull));
	if (versions > 0)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("model \"%s\" has no deployed version", name),
				 errdetail_plural("It has %lld stored version, not deployed.",
								  "It has %lld stored versions, none of them deployed.",
								  (unsigned long) versions, (long long) versions),
				 errhint("Deploy a version by setting deployed = true on its row in %s.models.",
						 schema)));
	/* a Citus shard task runs on a worker, whose own catalog has none of the models */
	if (OidIsValid(get_extension_oid("citus", true)))
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("model \"%s\" does not exist on this node", name),
				 errdetail("Under Citus, by-name scoring of a distributed table runs on the workers, which have no models."),
				 errhint("Publish the model to a reference table with userseq_publish('%s', 'model_ref') and score by value: "
						 "userseq_predict(m.weights, seq) ... JOIN model_ref m ON m.name = '%s'.", name, name)));
	ereport(ERROR,
			(errcode(ERRCODE_UNDEFINED_OBJECT),
			 errmsg("model \"%s\" does not exist", name),
			 errhint("Train it with userseq_train, or list the models in %s.models.", schema)));
}

/* Runs a lookup plan of name's deployed row (inside the SPI connection): exactly one row, or
 * the error for none or several. */
static void
UsLookupDeployed(SPIPlanPtr plan, Datum *args, const char *name, const char *schema)
{
	int			ret = SPI_execute_plan(plan, args, NULL, true, 2);

	if (ret != SPI_OK_SELECT)
		elog(ERROR, "could not read %s.models: SPI_execute_plan returned %d", schema, ret);
	if (SPI_processed == 0)
		UsNoDeployedModel(name, schema, args);
	if (SPI_processed > 1)
		elog(ERROR, "model \"%s\" has more than one deployed version. Please report a bug.", name);
}

/* Looks up the deployed row of name and returns its (pinned) entry. */
static UsModelEntry *
UsResolveName(FunctionCallInfo fcinfo, const char *name)
{
	MemoryContext caller = CurrentMemoryContext;
	Oid			nsp;
	char	   *schema;
	Datum		args[1];
	bool		isnull;
	int64		model_id;
	int32		version;
	TransactionId xmin;
	ItemPointerData tid;
	Datum		weights;
	us_format_header h;
	UsModelEntry *entry = NULL;
	char	   *what;

	/* the catalog lives in the schema of this very function, i.e. the extension's */
	nsp = get_func_namespace(fcinfo->flinfo->fn_oid);
	schema = get_namespace_name(nsp);
	if (schema == NULL)
		elog(ERROR, "could not find the schema of function %u", fcinfo->flinfo->fn_oid);
	args[0] = CStringGetTextDatum(name);

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	UsPrepareLookups(nsp, schema);
	UsLookupDeployed(lookup_key_plan, args, name, schema);
	model_id = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
	version = DatumGetInt32(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2, &isnull));
	xmin = DatumGetTransactionId(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 3, &isnull));
	tid = *(ItemPointer) DatumGetPointer(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 4, &isnull));
	for (int i = 0; i < n_cache; i++)
		if (cache[i]->by_name && cache[i]->model_id == model_id && cache[i]->version == version &&
			cache[i]->row_xmin == xmin && ItemPointerEquals(&cache[i]->row_tid, &tid))
		{
			entry = cache[i];
			stat_hits++;
			break;
		}

	if (entry == NULL)
	{
		UsLookupDeployed(lookup_row_plan, args, name, schema);
		model_id = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
		version = DatumGetInt32(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2, &isnull));
		weights = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 3, &isnull);
		if (isnull)
			ereport(ERROR,
					(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
					 errmsg("model \"%s\" version %d has no weights", name, version)));
		xmin = DatumGetTransactionId(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 4, &isnull));
		tid = *(ItemPointer) DatumGetPointer(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 5, &isnull));
		what = psprintf("load model \"%s\"", name);

		UsReadHeader(weights, &h, what);
		entry = UsCacheFind(true, model_id, version, h.crc32c, h.total_size);
		if (entry == NULL)
		{
			/* decode into a context that outlives SPI_finish */
			MemoryContext spi = MemoryContextSwitchTo(caller);

			entry = UsCacheLoad(weights, &h, name, model_id, version, what);
			MemoryContextSwitchTo(spi);
		}
		entry->row_xmin = xmin;
		entry->row_tid = tid;
	}
	UsEntryPin(entry);
	SPI_finish();
	return entry;
}

UsModelEntry *
UsModelByName(FunctionCallInfo fcinfo, text *name)
{
	UsQueryRef *ref = UsGetQueryRef(fcinfo);
	char	   *cname = text_to_cstring(name);
	UsModelEntry *entry;
	MemoryContext old;

	if (ActiveSnapshotSet())
	{
		Snapshot	snap = GetActiveSnapshot();

		if (!ref->snap_valid || snap->xmin != ref->snap_xmin || snap->xmax != ref->snap_xmax ||
			snap->curcid != ref->snap_cid || snap->snapXactCompletionCount != ref->snap_completions)
		{
			for (int i = 0; i < ref->n_names; i++)
			{
				pfree(ref->names[i]);
				UsEntryUnpin(ref->name_entries[i]);
			}
			ref->n_names = 0;
			ref->snap_valid = true;
			ref->snap_xmin = snap->xmin;
			ref->snap_xmax = snap->xmax;
			ref->snap_cid = snap->curcid;
			ref->snap_completions = snap->snapXactCompletionCount;
		}
	}

	for (int i = 0; i < ref->n_names; i++)
		if (strcmp(ref->names[i], cname) == 0)
		{
			pfree(cname);
			return ref->name_entries[i];
		}

	entry = UsResolveName(fcinfo, cname);

	/* keep the newest US_QUERY_NAMES names resolved; the oldest gives up its pin */
	if (ref->n_names == US_QUERY_NAMES)
	{
		pfree(ref->names[0]);
		UsEntryUnpin(ref->name_entries[0]);
		memmove(ref->names, ref->names + 1, sizeof(char *) * (US_QUERY_NAMES - 1));
		memmove(ref->name_entries, ref->name_entries + 1,
				sizeof(UsModelEntry *) * (US_QUERY_NAMES - 1));
		ref->n_names--;
	}
	old = MemoryContextSwitchTo(fcinfo->flinfo->fn_mcxt);
	ref->names[ref->n_names] = pstrdup(cname);
	MemoryContextSwitchTo(old);
	ref->name_entries[ref->n_names] = entry;
	ref->n_names++;
	pfree(cname);
	return entry;
}

UsModelEntry *
UsModelByValue(FunctionCallInfo fcinfo, Datum weights)
{
	UsQueryRef *ref = UsGetQueryRef(fcinfo);
	struct varlena *p = (struct varlena *) DatumGetPointer(weights);
	us_format_header h;
	UsModelEntry *entry;
	bool		ondisk = VARATT_IS_EXTERNAL_ONDISK(p);
	struct varatt_external toast;

	/* rows of a join with a models table carry the same toast pointer: no fetch at all */
	if (ondisk)
	{
		VARATT_EXTERNAL_GET_POINTER(toast, p);
		if (ref->value_entry && ref->value_toast_valid &&
			toast.va_valueid == ref->value_valueid &&
			toast.va_toastrelid == ref->value_toastrelid)
			return ref->value_entry;
	}

	UsReadHeader(weights, &h, "load model from bytea");
	if (ref->value_entry && ref->value_crc == h.crc32c && ref->value_size == h.total_size)
		entry = ref->value_entry;
	else
	{
		entry = UsCacheFind(false, 0, 0, h.crc32c, h.total_size);
		if (entry == NULL)
			entry = UsCacheLoad(weights, &h, NULL, 0, 0, "load model from bytea");
		else
			UsVerifyBody(weights, &h, "load model from bytea");
		UsEntryPin(entry);
		if (ref->value_entry)
			UsEntryUnpin(ref->value_entry);
		ref->value_entry = entry;
		ref->value_crc = h.crc32c;
		ref->value_size = h.total_size;
	}
	ref->value_toast_valid = ondisk;
	if (ondisk)
	{
		ref->value_toastrelid = toast.va_toastrelid;
		ref->value_valueid = toast.va_valueid;
	}
	return entry;
}

float *
UsEntryOutput(UsModelEntry *entry)
{
	if (entry->out == NULL)
		entry->out = MemoryContextAllocHuge(entry->cxt,
											sizeof(float) * (size_t) entry->model->cfg.n_outputs);
	return entry->out;
}

float *
UsEntryFeatures(UsModelEntry *entry)
{
	if (entry->features == NULL)
		entry->features = MemoryContextAlloc(entry->cxt,
											 sizeof(float) * (size_t) us_model_feature_dim(&entry->model->cfg));
	return entry->features;
}

void
UsRequireTask(UsModelEntry *entry, uint32 task_mask, const char *function, const char *name)
{
	int32		task = entry->model->cfg.task;
	StringInfoData allowed;

	if (task >= 0 && task < 32 && (task_mask & US_TASK_BIT(task)))
		return;
	initStringInfo(&allowed);
	for (int t = US_TASK_BINARY; t <= US_TASK_NEXT_BEHAVIOR; t++)
		if (task_mask & US_TASK_BIT(t))
			appendStringInfo(&allowed, "%s%s", allowed.len ? ", " : "", us_task_name((us_task) t));
	if (name)
		ereport(ERROR,
				(errcode(ERRCODE_WRONG_OBJECT_TYPE),
				 errmsg("%s does not apply to model \"%s\" of task %s", function, name,
						us_task_name((us_task) task)),
				 errdetail("%s needs a model of task %s.", function, allowed.data)));
	ereport(ERROR,
			(errcode(ERRCODE_WRONG_OBJECT_TYPE),
			 errmsg("%s does not apply to a model of task %s", function, us_task_name((us_task) task)),
			 errdetail("%s needs a model of task %s.", function, allowed.data)));
}

/* Decoded-model cache counters of this backend */
FUNCTION_PREFIX PG_FUNCTION_INFO_V1(userseq_cache_stats);
Datum
userseq_cache_stats(PG_FUNCTION_ARGS)
{
	TupleDesc	tupdesc;
	Datum		values[5];
	bool		nulls[5] = {false, false, false, false, false};
	int32		folded = 0;

	if (get_call_result_type(fcinfo, NULL, &tupdesc) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "return type must be a row type");
	for (int i = 0; i < n_cache; i++)
		if (cache[i]->scorer && us_scorer_is_folded(cache[i]->scorer))
			folded++;
	values[0] = Int64GetDatum(stat_decodes);
	values[1] = Int64GetDatum(stat_hits);
	values[2] = Int64GetDatum(stat_evictions);
	values[3] = Int32GetDatum(n_cache);
	values[4] = Int32GetDatum(folded);
	PG_RETURN_DATUM(HeapTupleGetDatum(heap_form_tuple(BlessTupleDesc(tupdesc), values, nulls)));
}

/* Drops every cached model not in use by a running query (counters are kept) */
FUNCTION_PREFIX PG_FUNCTION_INFO_V1(userseq_cache_reset);
Datum
userseq_cache_reset(PG_FUNCTION_ARGS)
{
	for (int i = n_cache - 1; i >= 0; i--)
		UsCacheRemove(i);
	PG_RETURN_VOID();
}
