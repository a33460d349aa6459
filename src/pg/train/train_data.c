/*
 * train_data.c: reads a training query through an SPI cursor into compact arrays, splits
 * them into training and validation sets, builds the vocabulary from the training split only
 * and lays out the core's us_dataset structures.
 *
 * It does not train, evaluate or write anything; the query runs with the caller's privileges
 * (no user switch happens here). Memory: every array lives in the run's context; a running
 * estimate is checked against userseq.train_memory after each fetched batch, before the
 * arrays grow further.
 */
#include "postgres.h"

#include <math.h>

#include "catalog/pg_type.h"
#include "commands/extension.h"
#include "catalog/namespace.h"
#include "executor/spi.h"
#include "miscadmin.h"
#include "utils/builtins.h"
#include "utils/hsearch.h"
#include "utils/lsyscache.h"
#include "utils/syscache.h"
#include "utils/array.h"

#include "userseq/us_rng.h"
#include "models/catalog.h"
#include "train/train_data.h"
#include "userseq_pg.h"
#include "seq/userseq_type.h"
#include "seq/seq_events.h"
#include "user_query.h"

/* what one event costs while reading (items, gaps, times, behaviour) and in the dataset */
#define US_RAW_EVENT_BYTES	(8 + 4 + 8 + 2)
#define US_SET_EVENT_BYTES	(4 + 4 + 4)
#define US_SEQ_BYTES		(8 + 8 + 4 + 4 + 4 + 4 + 8)

typedef struct UsLabelEntry
{
	char		key[US_MAX_LABEL_BYTES + 1];
	int32		id;				/* 0-based in order of first appearance */
} UsLabelEntry;

/* Everything read from the query, before the split. */
typedef struct UsRaw
{
	MemoryContext cxt;
	int64		n_seqs;
	int64		n_events;
	int64		seq_cap;
	int64		ev_cap;
	int64	   *offsets;		/* (n_seqs + 1) */
	int64	   *items;			/* (n_events) item ids */
	int32	   *gaps;			/* (n_events) gap buckets, or NULL */
	TimestampTz *times;			/* (n_events), or NULL when not needed */
	int16	   *behs;			/* (n_events) 0 = none, g + 1 = global label g; or NULL */
	TimestampTz *last_time;		/* (n_seqs) time of the last event, or NULL */
	float	   *targets;		/* (n_seqs) binary / regression, or NULL */
	int32	   *classes;		/* (n_seqs) multiclass global class ids, or NULL */
	float	   *weights;		/* (n_seqs) or NULL */
	HTAB	   *beh_hash;
	int32		n_beh;
	char	  **beh_names;		/* (n_beh) by global id */
	int32		beh_cap;
	HTAB	   *class_hash;
	int32		n_class;
	char	  **class_names;	/* (n_class) by global id */
	int64	   *class_ints;		/* (n_class) when labels are integers */
	int32		class_cap;
	bool		class_is_int;
} UsRaw;

static void
UsRawReserveEvents(UsRaw *raw, int64 need)
{
	int64		cap;

	if (need <= raw->ev_cap)
		return;
	cap = UsGrowCapacity(raw->ev_cap, need, 4096);
	raw->items = UsResizeArray(raw->items, sizeof(int64), cap, raw->cxt);
	if (raw->gaps || raw->ev_cap == 0)
		raw->gaps = UsResizeArray(raw->gaps, sizeof(int32), cap, raw->cxt);
	if (raw->times || raw->ev_cap == 0)
		raw->times = UsResizeArray(raw->times, sizeof(TimestampTz), cap, raw->cxt);
	if (raw->behs || raw->ev_cap == 0)
		raw->behs = UsResizeArray(raw->behs, sizeof(int16), cap, raw->cxt);
	raw->ev_cap = cap;
}

static void
UsRawReserveSeqs(UsRaw *raw, int64 need)
{
	int64		cap;

	if (need <= raw->seq_cap)
		return;
	cap = UsGrowCapacity(raw->seq_cap, need, 1024);
	raw->offsets = UsResizeArray(raw->offsets, sizeof(int64), cap + 1, raw->cxt);
	raw->last_time = UsResizeArray(raw->last_time, sizeof(TimestampTz), cap, raw->cxt);
	raw->targets = UsResizeArray(raw->targets, sizeof(float), cap, raw->cxt);
	raw->classes = UsResizeArray(raw->classes, sizeof(int32), cap, raw->cxt);
	raw->weights = UsResizeArray(raw->weights, sizeof(float), cap, raw->cxt);
	raw->seq_cap = cap;
}

/* Bytes the read arrays hold now plus what the datasets built from them will need. */
static double
UsRawEstimate(const UsRaw *raw)
{
	return (double) raw->ev_cap * (US_RAW_EVENT_BYTES + US_SET_EVENT_BYTES) +
		(double) raw->seq_cap * US_SEQ_BYTES * 2;
}

static void
UsCheckBudget(double bytes, const char *what)
{
	double		budget = (double) userseq_train_memory_kb * 1024.0;

	if (bytes > budget)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("training needs at least %.0f MB, more than userseq.train_memory (%.0f MB)",
						ceil(bytes / (1024.0 * 1024.0)), budget / (1024.0 * 1024.0)),
				 errdetail("The estimate counts %s.", what),
				 errhint("Raise userseq.train_memory, or train on fewer or shorter sequences (label tasks keep the last max_len events of each).")));
}

/* Global id of a label string, adding it when new. */
static int32
UsLabelId(HTAB *hash, const char *label, int len, int32 *n, char ***names, int32 *cap,
		  int32 limit, const char *what, MemoryContext cxt)
{
	char		key[US_MAX_LABEL_BYTES + 1];
	UsLabelEntry *e;
	bool		found;

	if (len > US_MAX_LABEL_BYTES)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("%s is longer than %d bytes", what, US_MAX_LABEL_BYTES)));
	if (len == 0)
		ereport(ERROR,
				(errcode(ERRCODE_DATA_EXCEPTION),
				 errmsg("%s is empty", what)));
	memset(key, 0, sizeof(key));
	memcpy(key, label, len);
	if (memchr(key, '\0', len) != NULL)
		ereport(ERROR,
				(errcode(ERRCODE_DATA_EXCEPTION),
				 errmsg("%s contains a NUL byte", what)));
	e = hash_search(hash, key, HASH_ENTER, &found);
	if (!found)
	{
		if (*n >= limit)
			ereport(ERROR,
					(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
					 errmsg("more than %d distinct values of %s", limit, what)));
		if (*n >= *cap)
		{
			int32		nc = (int32) UsGrowCapacity(*cap, *n + 1, 16);

			*names = UsResizeArray(*names, sizeof(char *), nc, cxt);
			*cap = nc;
		}
		e->id = *n;
		(*names)[*n] = MemoryContextStrdup(cxt, key);
		(*n)++;
	}
	return e->id;
}

static HTAB *
UsLabelHash(const char *name, MemoryContext cxt)
{
	HASHCTL		ctl;

	memset(&ctl, 0, sizeof(ctl));
	ctl.keysize = US_MAX_LABEL_BYTES + 1;
	ctl.entrysize = sizeof(UsLabelEntry);
	ctl.hcxt = cxt;
	return hash_create(name, 64, &ctl, HASH_ELEM | HASH_STRINGS | HASH_CONTEXT);
}

/* Appends one userseq value's events. */
static void
UsRawAddUserSeq(UsRaw *raw, const UserSeq *seq, const UsTrainOptions *opts, bool keep_all)
{
	int32		n = UserSeqLength(seq);
	int32		start = (!keep_all && n > opts->max_len) ? n - opts->max_len : 0;
	int32		m = n - start;
	const int64 *items = UserSeqItems(seq);
	const TimestampTz *times = UserSeqTimes(seq);
	const uint8 *codes = UserSeqBehaviors(seq);
	int16		map[USERSEQ_MAX_LABELS + 1];
	int			n_labels = UserSeqNumLabels(seq);
	int64		base = raw->n_events;

	UsRawReserveEvents(raw, raw->n_events + m);
	map[0] = 0;
	for (int l = 0; l < n_labels && l < USERSEQ_MAX_LABELS; l++)
	{
		int			len;
		const char *label = UserSeqLabel(seq, l, &len);

		map[l + 1] = (int16) (1 + UsLabelId(raw->beh_hash, label, len, &raw->n_beh,
											&raw->beh_names, &raw->beh_cap,
											US_MAX_BEHAVIORS - US_ROW_FIRST, "behaviour label", raw->cxt));
	}
	for (int32 i = 0; i < m; i++)
	{
		int32		j = start + i;
		uint8		c = codes[j];

		raw->items[base + i] = items[j];
		raw->times[base + i] = times[j];
		raw->behs[base + i] = (c <= n_labels) ? map[c] : 0;
		/* measured to the true predecessor even when it was cut off (as in scoring) */
		raw->gaps[base + i] = opts->time_gaps > 0 ?
			UsEventGapBucket(times, j - 1, j, opts->time_gaps) : 0;
	}
	raw->last_time[raw->n_seqs] = times[n - 1];
	raw->n_events += m;
}

/* Appends one bigint[] value's events (no times, no labels). Returns false if empty. */
static bool
UsRawAddArray(UsRaw *raw, ArrayType *arr, const UsTrainOptions *opts, bool keep_all,
			  int64 rowno)
{
	Datum	   *elems;
	bool	   *nulls;
	int			n;
	int32		start;
	int64		base = raw->n_events;

	if (ARR_NDIM(arr) > 1)
		ereport(ERROR,
				(errcode(ERRCODE_ARRAY_SUBSCRIPT_ERROR),
				 errmsg("sequence of row %lld must be a one-dimensional array", (long long) rowno)));
	deconstruct_array(arr, INT8OID, 8, FLOAT8PASSBYVAL, TYPALIGN_DOUBLE, &elems, &nulls, &n);
	if (n == 0)
		return false;
	if (n > USERSEQ_MAX_EVENTS)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("sequence of row %lld has %d events, more than the limit of %d",
						(long long) rowno, n, USERSEQ_MAX_EVENTS)));
	start = (!keep_all && n > opts->max_len) ? n - opts->max_len : 0;
	UsRawReserveEvents(raw, raw->n_events + (n - start));
	for (int i = start; i < n; i++)
	{
		if (nulls[i])
			ereport(ERROR,
					(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
					 errmsg("sequence of row %lld has a NULL item", (long long) rowno)));
		raw->items[base + i - start] = DatumGetInt64(elems[i]);
		raw->times[base + i - start] = 0;
		raw->behs[base + i - start] = 0;
		raw->gaps[base + i - start] = 0;
	}
	raw->last_time[raw->n_seqs] = 0;
	raw->n_events += n - start;
	pfree(elems);
	pfree(nulls);
	return true;
}

/* Reads every row of the query into raw. */
static void
UsReadQuery(const char *name, const char *query, UsTrainOptions *opts, UsRaw *raw,
			UsTrainData *data)
{
	UsUserQuery q;
	TupleDesc	tupdesc;
	int			seq_col,
				label_col,
				weight_col;
	Oid			label_type,
				weight_type;
	bool		next_task = us_task_is_next(opts->task);
	bool		needs_label = !next_task;
	int64		rowno = 0;

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	UsUserQueryOpen(&q, "training query", query, needs_label ? us_task_name(opts->task) : NULL);
	tupdesc = q.tupdesc;
	seq_col = q.seq_col;
	label_col = q.label_col;
	label_type = q.label_type;
	weight_col = q.weight_col;
	weight_type = q.weight_type;
	data->has_times = !q.seq_is_array;
	/* default: gaps help label tasks on real data but not next-item ranking (README) */
	if (opts->time_gaps < 0)
		opts->time_gaps = (data->has_times && !next_task) ? US_DEFAULT_GAP_BUCKETS : 0;
	if (!data->has_times)
	{
		if (opts->time_gaps > 0)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("option \"time_gaps\" needs timestamps, but column \"seq\" is bigint[]"),
					 errhint("Use userseq sequences (userseq_agg) or set \"time_gaps\": false.")));
		if (opts->valid_method == US_VALID_TIME || opts->valid_method == US_VALID_LAST_BASKET)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("validation method \"%s\" needs timestamps, but column \"seq\" is bigint[]",
							us_name_of(us_validation_names, opts->valid_method)),
					 errhint("Build the sequences with userseq_agg(item, ts, ...).")));
		if (opts->behavior == 1 || opts->task == US_TASK_NEXT_BEHAVIOR)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("behaviour labels need userseq sequences, but column \"seq\" is bigint[]")));
	}

	if (needs_label)
	{
		switch (opts->task)
		{
			case US_TASK_BINARY:
				if (label_type != BOOLOID && !UsIsIntType(label_type))
					ereport(ERROR,
							(errcode(ERRCODE_DATATYPE_MISMATCH),
							 errmsg("column \"label\" must be boolean or integer for task \"binary\", not %s",
									format_type_be(label_type))));
				break;
			case US_TASK_MULTICLASS:
				if (label_type != TEXTOID && label_type != VARCHAROID && label_type != BPCHAROID &&
					!UsIsIntType(label_type))
					ereport(ERROR,
							(errcode(ERRCODE_DATATYPE_MISMATCH),
							 errmsg("column \"label\" must be text or integer for task \"multiclass\", not %s",
									format_type_be(label_type))));
				raw->class_is_int = UsIsIntType(label_type);
				break;
			default:
				if (!UsIsNumberType(label_type))
					ereport(ERROR,
							(errcode(ERRCODE_DATATYPE_MISMATCH),
							 errmsg("column \"label\" must be numeric for task \"regression\", not %s",
									format_type_be(label_type))));
				break;
		}
	}
	if (weight_col > 0 && !UsIsNumberType(weight_type))
		ereport(ERROR,
				(errcode(ERRCODE_DATATYPE_MISMATCH),
				 errmsg("column \"weight\" must be numeric, not %s", format_type_be(weight_type))));

	while (UsUserQueryFetch(&q))
	{
		for (uint64 r = 0; r < SPI_processed; r++)
		{
			HeapTuple	tup = SPI_tuptable->vals[r];
			bool		isnull;
			Datum		d;
			bool		ok;
			int64		s = raw->n_seqs;

			rowno++;
			d = SPI_getbinval(tup, tupdesc, seq_col, &isnull);
			if (isnull)
			{
				data->skipped_null_seq++;
				continue;
			}
			UsRawReserveSeqs(raw, s + 1);
			raw->offsets[s] = raw->n_events;
			/* labels first, so a skipped row adds no events */
			if (needs_label)
			{
				bool		lnull;
				Datum		ld = SPI_getbinval(tup, tupdesc, label_col, &lnull);

				if (lnull)
				{
					data->skipped_null_label++;
					continue;
				}
				if (opts->task == US_TASK_BINARY)
				{
					int64		v = (label_type == BOOLOID) ? DatumGetBool(ld) : UsDatumInt(ld, label_type);

					if (v != 0 && v != 1)
						ereport(ERROR,
								(errcode(ERRCODE_DATA_EXCEPTION),
								 errmsg("label of row %lld is %lld, but task \"binary\" needs 0 or 1 (or boolean)",
										(long long) rowno, (long long) v)));
					raw->targets[s] = (float) v;
				}
				else if (opts->task == US_TASK_MULTICLASS)
				{
					char	   *str;
					int32		id,
								before = raw->n_class;

					if (raw->class_is_int)
						str = psprintf(INT64_FORMAT, UsDatumInt(ld, label_type));
					else
						str = TextDatumGetCString(ld);
					id = UsLabelId(raw->class_hash, str, strlen(str), &raw->n_class,
								   &raw->class_names, &raw->class_cap, US_MAX_CLASSES,
								   "class label", raw->cxt);
					if (raw->class_is_int && raw->n_class > before)
					{
						raw->class_ints = UsResizeArray(raw->class_ints, sizeof(int64),
														raw->class_cap, raw->cxt);
						raw->class_ints[id] = UsDatumInt(ld, label_type);
					}
					raw->classes[s] = id;
					pfree(str);
				}
				else
				{
					double		v = UsDatumNumber(ld, label_type);

					if (isnan(v) || isinf(v) || fabs(v) > 1e30)
						ereport(ERROR,
								(errcode(ERRCODE_DATA_EXCEPTION),
								 errmsg("label of row %lld is not a finite number in range", (long long) rowno)));
					raw->targets[s] = (float) v;
				}
			}
			if (weight_col > 0)
			{
				bool		wnull;
				Datum		wd = SPI_getbinval(tup, tupdesc, weight_col, &wnull);
				double		w;

				if (wnull)
					ereport(ERROR,
							(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
							 errmsg("weight of row %lld is NULL", (long long) rowno)));
				w = UsDatumNumber(wd, weight_type);
				if (isnan(w) || isinf(w) || w < 0 || w > 1e30)
					ereport(ERROR,
							(errcode(ERRCODE_DATA_EXCEPTION),
							 errmsg("weight of row %lld must be a finite number >= 0", (long long) rowno)));
				raw->weights[s] = (float) w;
			}
			else
				raw->weights[s] = 1.0f;

			if (data->has_times)
			{
				UserSeq    *seq = DatumGetUserSeqP(d);

				ok = UserSeqLength(seq) > 0;
				if (ok)
					UsRawAddUserSeq(raw, seq, opts, next_task);
				if ((Pointer) seq != DatumGetPointer(d))
					pfree(seq);
			}
			else
			{
				ArrayType  *arr = DatumGetArrayTypeP(d);

				ok = UsRawAddArray(raw, arr, opts, next_task, rowno);
				if ((Pointer) arr != DatumGetPointer(d))
					pfree(arr);
			}
			if (!ok)
			{
				data->skipped_null_seq++;
				continue;
			}
			raw->n_seqs++;
			raw->offsets[raw->n_seqs] = raw->n_events;
			if (raw->n_seqs >= INT32_MAX / 2)
				ereport(ERROR,
						(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
						 errmsg("training query returned more than %d sequences", INT32_MAX / 2)));
		}
		SPI_freetuptable(SPI_tuptable);
		UsCheckBudget(UsRawEstimate(raw), "the sequences read so far and the datasets built from them");
		UsReportActivity("userseq_train %s: reading data, %lld rows", name, (long long) rowno);
	}
	UsUserQueryClose(&q);
	SPI_finish();
	data->rows_read = rowno;
}

/* A slice of raw events used as one training or validation sequence. */
typedef struct UsSpan
{
	int64		start;
	int32		len;
	int64		target;			/* next_*: raw event index of the target, -1 if none */
	int64		seq;			/* raw sequence */
} UsSpan;

static int
UsCmpStr(const void *a, const void *b)
{
	return strcmp(*(char *const *) a, *(char *const *) b);
}

typedef struct UsClassSort
{
	int32		id;
	int64		ival;
	const char *name;
} UsClassSort;

static int
UsCmpClass(const void *a, const void *b)
{
	const UsClassSort *x = a;
	const UsClassSort *y = b;

	if (x->ival != y->ival)
		return x->ival < y->ival ? -1 : 1;
	return strcmp(x->name, y->name);
}

static void
UsBuildSet(const UsRaw *raw, const UsSpan *spans, int32 n, bool next_task, bool valid,
		   const int32 *beh_row, const int32 *class_row, const us_vocab *vocab,
		   const UsTrainOptions *opts, MemoryContext cxt, us_dataset *set, int64 *n_events_out)
{
	int64		n_events = 0;
	int64	   *offsets;
	int32	   *items,
			   *behs = NULL,
			   *gaps = NULL;
	float	   *targets = NULL,
			   *weights;
	int32	   *classes = NULL;
	int64		pos = 0;

	for (int32 i = 0; i < n; i++)
		n_events += spans[i].len;
	offsets = MemoryContextAllocHuge(cxt, sizeof(int64) * (n + 1));
	items = MemoryContextAllocHuge(cxt, sizeof(int32) * Max(n_events, 1));
	if (vocab->n_behaviors > 0 || opts->task == US_TASK_NEXT_BEHAVIOR)
		behs = MemoryContextAllocHuge(cxt, sizeof(int32) * Max(n_events, 1));
	if (opts->time_gaps > 0)
		gaps = MemoryContextAllocHuge(cxt, sizeof(int32) * Max(n_events, 1));
	weights = MemoryContextAllocHuge(cxt, sizeof(float) * Max(n, 1));
	if (opts->task == US_TASK_BINARY || opts->task == US_TASK_REGRESSION)
		targets = MemoryContextAllocHuge(cxt, sizeof(float) * Max(n, 1));
	if (opts->task == US_TASK_MULTICLASS || (next_task && valid))
		classes = MemoryContextAllocHuge(cxt, sizeof(int32) * Max(n, 1));

	for (int32 i = 0; i < n; i++)
	{
		const UsSpan *sp = &spans[i];

		offsets[i] = pos;
		for (int32 j = 0; j < sp->len; j++)
		{
			int64		e = sp->start + j;

			items[pos] = us_vocab_item_row(vocab, raw->items[e]);
			if (behs)
				behs[pos] = beh_row[raw->behs[e]];
			if (gaps)
				gaps[pos] = raw->gaps[e];
			pos++;
		}
		weights[i] = raw->weights[sp->seq];
		if (targets)
			targets[i] = raw->targets[sp->seq];
		if (opts->task == US_TASK_MULTICLASS)
			classes[i] = class_row[raw->classes[sp->seq]];
		else if (classes)
		{
			if (opts->task == US_TASK_NEXT_ITEM)
				classes[i] = us_vocab_item_row(vocab, raw->items[sp->target]);
			else
				classes[i] = beh_row[raw->behs[sp->target]];
		}
	}
	offsets[n] = pos;

	memset(set, 0, sizeof(*set));
	set->n_seqs = n;
	set->offsets = offsets;
	set->items = items;
	set->behaviors = behs;
	set->gaps = gaps;
	set->targets = targets;
	set->classes = classes;
	set->weights = weights;
	*n_events_out = n_events;
}

void
UsReadTrainData(const char *name, const char *query, UsTrainOptions *opts, MemoryContext cxt,
				UsTrainData *data)
{
	MemoryContext rawcxt = AllocSetContextCreate(cxt, "userseq training query rows",
												 ALLOCSET_DEFAULT_SIZES);
	UsRaw		raw;
	bool		next_task = (opts->task == US_TASK_NEXT_ITEM || opts->task == US_TASK_NEXT_BEHAVIOR);
	UsSpan	   *tspans,
			   *vspans;
	int32		nt = 0,
				nv = 0;
	int64	   *train_item_ids;
	int64		n_train_ids = 0;
	bool	   *beh_used;
	int32	   *beh_row;
	int32	   *class_row = NULL;
	us_allocator alloc = UsContextAllocator(cxt);
	us_rng		rng;
	int64		nev_t,
				nev_v;

	memset(data, 0, sizeof(*data));
	memset(&raw, 0, sizeof(raw));
	raw.cxt = rawcxt;
	raw.beh_hash = UsLabelHash("userseq behaviour labels", rawcxt);
	raw.class_hash = UsLabelHash("userseq class labels", rawcxt);

	UsReadQuery(name, query, opts, &raw, data);

	if (raw.n_seqs == 0)
		ereport(ERROR,
				(errcode(ERRCODE_NO_DATA_FOUND),
				 errmsg("training query returned no usable rows"),
				 errdetail("%lld rows read, %lld with a NULL or empty sequence, %lld with a NULL label.",
						   (long long) data->rows_read, (long long) data->skipped_null_seq,
						   (long long) data->skipped_null_label)));
	for (int64 e = 0; e < raw.n_events && !data->has_labels; e++)
		data->has_labels = raw.behs[e] != 0;

	/* ---- split into spans */
	tspans = MemoryContextAllocHuge(rawcxt, sizeof(UsSpan) * raw.n_seqs);
	vspans = MemoryContextAllocHuge(rawcxt, sizeof(UsSpan) * raw.n_seqs);
	us_rng_seed(&rng, (uint64_t) opts->seed ^ UINT64CONST(0x5eed5eed5eed5eed));
	for (int64 s = 0; s < raw.n_seqs; s++)
	{
		int64		off = raw.offsets[s];
		int32		n = (int32) (raw.offsets[s + 1] - off);
		bool		to_valid = false;

		if (opts->valid_method == US_VALID_RANDOM)
			to_valid = us_rng_uniform(&rng) < opts->valid_fraction;

		if (!next_task)
		{
			if (opts->valid_method == US_VALID_TIME)
				to_valid = raw.last_time[s] >= opts->valid_cutoff;
			if (to_valid)
				vspans[nv++] = (UsSpan) {off, n, -1, s};
			else
				tspans[nt++] = (UsSpan) {off, n, -1, s};
			continue;
		}

		if (opts->valid_method == US_VALID_LEAVE_ONE_OUT)
		{
			/* last event: test (userseq_evaluate); the one before: validation */
			if (n - 2 >= 2)
				tspans[nt++] = (UsSpan) {off, n - 2, -1, s};
			if (n >= 3)
				vspans[nv++] = (UsSpan) {off, n - 2, off + n - 2, s};
			if (n < 3)
				data->skipped_short++;
		}
		else if (opts->valid_method == US_VALID_RANDOM)
		{
			if (n < 2)
				data->skipped_short++;
			else if (to_valid)
				vspans[nv++] = (UsSpan) {off, n - 1, off + n - 1, s};
			else
				tspans[nt++] = (UsSpan) {off, n, -1, s};
		}
		else
		{
			/*
			 * time: events before the cutoff train; the first one at or after it validates.
			 * last_basket: the same with each sequence's own cutoff, its last timestamp minus
			 * "within" (baskets whose events are seconds apart), so
			 * validation asks what the next basket starts with, as a next-basket test does
			 * (leave_one_out would validate an item of the last basket given its other items).
			 */
			TimestampTz cutoff = opts->valid_method == US_VALID_LAST_BASKET ?
				raw.times[off + n - 1] - opts->valid_within : opts->valid_cutoff;
			int32		j = 0;

			while (j < n && raw.times[off + j] < cutoff)
				j++;
			if (j >= 2)
				tspans[nt++] = (UsSpan) {off, j, -1, s};
			if (j >= 1 && j < n)
				vspans[nv++] = (UsSpan) {off, j, off + j, s};
			if (j < 2 && !(j >= 1 && j < n))
				data->skipped_short++;
		}
	}
	if (nt == 0)
		ereport(ERROR,
				(errcode(ERRCODE_NO_DATA_FOUND),
				 errmsg("no training sequences left after the validation split"),
				 errhint("Check the validation options%s.",
						 next_task ? "; next-item tasks need sequences of at least 4 events for leave_one_out" : "")));
	if (nv == 0)
		ereport(ERROR,
				(errcode(ERRCODE_NO_DATA_FOUND),
				 errmsg("no validation sequences after the split"),
				 errhint("Use more data, a larger validation fraction or another cutoff.")));
	/* for label tasks cap every span at max_len events (the core would drop older ones) */
	if (!next_task)
	{
		for (int32 i = 0; i < nt; i++)
			if (tspans[i].len > opts->max_len)
				tspans[i].start += tspans[i].len - opts->max_len, tspans[i].len = opts->max_len;
		for (int32 i = 0; i < nv; i++)
			if (vspans[i].len > opts->max_len)
				vspans[i].start += vspans[i].len - opts->max_len, vspans[i].len = opts->max_len;
	}

	/* ---- vocabulary from the training spans only */
	for (int32 i = 0; i < nt; i++)
		n_train_ids += tspans[i].len;
	train_item_ids = MemoryContextAllocHuge(rawcxt, sizeof(int64) * Max(n_train_ids, 1));
	n_train_ids = 0;
	beh_used = MemoryContextAllocZero(rawcxt, sizeof(bool) * (raw.n_beh + 1));
	for (int32 i = 0; i < nt; i++)
		for (int32 j = 0; j < tspans[i].len; j++)
		{
			train_item_ids[n_train_ids++] = raw.items[tspans[i].start + j];
			beh_used[raw.behs[tspans[i].start + j]] = true;
		}
	/* next_* training spans predict their own events, all in the vocabulary already */
	UsCheckStatus(us_vocab_build_items(&data->vocab, train_item_ids, (size_t) n_train_ids,
									   opts->min_count, opts->max_items, &alloc),
				  "build the item vocabulary", NULL);
	if (data->vocab.n_items == 0)
		ereport(ERROR,
				(errcode(ERRCODE_NO_DATA_FOUND),
				 errmsg("no item occurs at least %d times in the training split", opts->min_count),
				 errhint("Lower \"min_count\".")));

	if (opts->behavior < 0)
		opts->behavior = data->has_labels ? 1 : 0;
	if (opts->task == US_TASK_NEXT_BEHAVIOR && !data->has_labels)
		ereport(ERROR,
				(errcode(ERRCODE_NO_DATA_FOUND),
				 errmsg("task \"next_behavior\" needs behaviour labels, but no event has one")));
	beh_row = MemoryContextAllocZero(rawcxt, sizeof(int32) * (raw.n_beh + 1));
	if (opts->behavior)
	{
		char	  **names = MemoryContextAlloc(cxt, sizeof(char *) * Max(raw.n_beh, 1));
		int32		k = 0;

		for (int32 g = 0; g < raw.n_beh; g++)
			if (beh_used[g + 1])
				names[k++] = MemoryContextStrdup(cxt, raw.beh_names[g]);
		qsort(names, k, sizeof(char *), UsCmpStr);
		data->vocab.n_behaviors = k;
		data->vocab.behaviors = names;
		for (int32 g = 0; g < raw.n_beh; g++)
			beh_row[g + 1] = us_vocab_behavior_row(&data->vocab, raw.beh_names[g],
												   strlen(raw.beh_names[g]));
		if (k == 0 && opts->task == US_TASK_NEXT_BEHAVIOR)
			ereport(ERROR,
					(errcode(ERRCODE_NO_DATA_FOUND),
					 errmsg("no behaviour label occurs in the training split")));
	}

	if (opts->task == US_TASK_MULTICLASS)
	{
		UsClassSort *cs = palloc(sizeof(UsClassSort) * raw.n_class);
		char	  **names = MemoryContextAlloc(cxt, sizeof(char *) * Max(raw.n_class, 1));

		if (raw.n_class < 2)
			ereport(ERROR,
					(errcode(ERRCODE_DATA_EXCEPTION),
					 errmsg("task \"multiclass\" needs at least 2 distinct labels, the query has %d",
							raw.n_class)));
		/* classes come from every labelled row: they define outputs, not features */
		for (int32 c = 0; c < raw.n_class; c++)
		{
			cs[c].id = c;
			cs[c].ival = raw.class_is_int ? raw.class_ints[c] : 0;
			cs[c].name = raw.class_names[c];
		}
		qsort(cs, raw.n_class, sizeof(UsClassSort), UsCmpClass);
		class_row = palloc(sizeof(int32) * raw.n_class);
		for (int32 c = 0; c < raw.n_class; c++)
		{
			names[c] = MemoryContextStrdup(cxt, cs[c].name);
			class_row[cs[c].id] = c;
		}
		data->vocab.n_classes = raw.n_class;
		data->vocab.classes = names;
	}

	/* ---- datasets */
	UsBuildSet(&raw, tspans, nt, next_task, false, beh_row, class_row, &data->vocab, opts, cxt,
			   &data->train, &nev_t);
	UsBuildSet(&raw, vspans, nv, next_task, true, beh_row, class_row, &data->vocab, opts, cxt,
			   &data->valid, &nev_v);
	data->n_train = nt;
	data->n_valid = nv;
	data->n_train_events = nev_t;
	data->train_ids = MemoryContextAllocHuge(cxt, sizeof(int32) * nt);
	for (int32 i = 0; i < nt; i++)
		data->train_ids[i] = i;
	data->valid_ids = MemoryContextAllocHuge(cxt, sizeof(int32) * nv);
	for (int32 i = 0; i < nv; i++)
		data->valid_ids[i] = i;
	data->data_bytes = (size_t) (nev_t + nev_v) * US_SET_EVENT_BYTES + (size_t) (nt + nv) * US_SEQ_BYTES;
	MemoryContextDelete(rawcxt);
}
