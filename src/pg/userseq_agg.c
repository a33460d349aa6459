/*
 * userseq_agg.c: the userseq_agg(item, ts [, behavior]) aggregate: transition, combine,
 * serialize/deserialize (parallel aggregation) and the final function. Events are kept
 * unsorted in compact growing arrays; the final function sorts and builds through
 * UsSeqAssemble, the same code every other userseq constructor uses. Rows with a NULL item
 * or timestamp are skipped (as count(x) skips NULLs); a group without events gives NULL.
 */
#include "postgres.h"

#include "userseq_pg.h"

#include "fmgr.h"
#include "utils/builtins.h"
#include "utils/timestamp.h"

#include "userseq_build.h"

/*
 * Aggregate state, in the aggregate memory context. items/times/codes are carved from one
 * chunk of cap events so the common transition is three stores and no allocation.
 */
typedef struct UsAggState
{
	int32		n;
	int32		cap;
	int64	   *items;
	TimestampTz *times;
	uint8	   *codes;			/* 0 = no label, i = labels.labels[i-1] */
	UsLabelSet	labels;			/* interned per state, bytes copied into the agg context */
} UsAggState;

#define US_AGG_INITIAL_CAP	16

static UsAggState *
UsAggStateCreate(MemoryContext cxt)
{
	return MemoryContextAllocZero(cxt, sizeof(UsAggState));
}

/* Ensures room for need events; raises PROGRAM_LIMIT_EXCEEDED as soon as need is too many. */
static void
UsAggReserve(UsAggState *st, int64 need, MemoryContext cxt)
{
	int64		cap;
	char	   *chunk;

	if (need <= st->cap)
		return;
	UsCheckEventCount(need);
	cap = Max(need, st->cap == 0 ? US_AGG_INITIAL_CAP : (int64) st->cap * 2);
	cap = Min(cap, USERSEQ_MAX_EVENTS);
	chunk = MemoryContextAlloc(cxt, cap * (sizeof(int64) + sizeof(TimestampTz) + 1));
	if (st->n > 0)
	{
		memcpy(chunk, st->items, sizeof(int64) * st->n);
		memcpy(chunk + sizeof(int64) * cap, st->times, sizeof(TimestampTz) * st->n);
		memcpy(chunk + 2 * sizeof(int64) * cap, st->codes, st->n);
	}
	if (st->items)
		pfree(st->items);
	st->items = (int64 *) chunk;
	st->times = (TimestampTz *) (chunk + sizeof(int64) * cap);
	st->codes = (uint8 *) (chunk + 2 * sizeof(int64) * cap);
	st->cap = (int32) cap;
}

/* Appends src's events to dst, re-interning src's labels into dst. */
static void
UsAggAppend(UsAggState *dst, const UsAggState *src, MemoryContext cxt)
{
	uint8		map[USERSEQ_MAX_LABELS + 1];

	map[0] = 0;
	for (int l = 0; l < src->labels.n; l++)
		map[l + 1] = (uint8) UsLabelIntern(&dst->labels, src->labels.labels[l].data,
										   src->labels.labels[l].len, cxt, true);
	UsAggReserve(dst, (int64) dst->n + src->n, cxt);
	memcpy(dst->items + dst->n, src->items, sizeof(int64) * src->n);
	memcpy(dst->times + dst->n, src->times, sizeof(TimestampTz) * src->n);
	for (int32 i = 0; i < src->n; i++)
		dst->codes[dst->n + i] = map[src->codes[i]];
	dst->n += src->n;
}

static MemoryContext
UsAggContext(FunctionCallInfo fcinfo, const char *fname)
{
	MemoryContext aggcxt;

	if (!AggCheckCallContext(fcinfo, &aggcxt))
		elog(ERROR, "%s called in non-aggregate context", fname);
	return aggcxt;
}

/* Transition of userseq_agg(item, ts [, behavior]): appends one event, skipping NULL item or ts. */
FUNCTION_PREFIX PG_FUNCTION_INFO_V1(userseq_agg_transfn);
Datum
userseq_agg_transfn(PG_FUNCTION_ARGS)
{
	MemoryContext aggcxt = UsAggContext(fcinfo, "userseq_agg_transfn");
	UsAggState *st = PG_ARGISNULL(0) ? NULL : (UsAggState *) PG_GETARG_POINTER(0);
	TimestampTz t;
	int			code = 0;

	if (PG_ARGISNULL(1) || PG_ARGISNULL(2))
	{
		if (st == NULL)
			PG_RETURN_NULL();
		PG_RETURN_POINTER(st);
	}
	t = PG_GETARG_TIMESTAMPTZ(2);
	if (unlikely(TIMESTAMP_NOT_FINITE(t)))
		UsCheckTime(t);
	if (st == NULL)
		st = UsAggStateCreate(aggcxt);
	if (PG_NARGS() > 3 && !PG_ARGISNULL(3))
	{
		text	   *b = PG_GETARG_TEXT_PP(3);

		code = UsLabelIntern(&st->labels, VARDATA_ANY(b), VARSIZE_ANY_EXHDR(b), aggcxt, true);
	}
	if (unlikely(st->n == st->cap))
		UsAggReserve(st, (int64) st->n + 1, aggcxt);
	st->items[st->n] = PG_GETARG_INT64(1);
	st->times[st->n] = t;
	st->codes[st->n] = (uint8) code;
	st->n++;
	PG_RETURN_POINTER(st);
}

/* Combines two partial states (parallel aggregation); copies state2 when state1 is NULL. */
FUNCTION_PREFIX PG_FUNCTION_INFO_V1(userseq_agg_combine);
Datum
userseq_agg_combine(PG_FUNCTION_ARGS)
{
	MemoryContext aggcxt = UsAggContext(fcinfo, "userseq_agg_combine");
	UsAggState *s1 = PG_ARGISNULL(0) ? NULL : (UsAggState *) PG_GETARG_POINTER(0);
	UsAggState *s2 = PG_ARGISNULL(1) ? NULL : (UsAggState *) PG_GETARG_POINTER(1);

	if (s2 == NULL || s2->n == 0)
	{
		if (s1 == NULL)
			PG_RETURN_NULL();
		PG_RETURN_POINTER(s1);
	}
	/* s2 may live in another context (as in array_agg_combine): always copy its contents */
	if (s1 == NULL)
		s1 = UsAggStateCreate(aggcxt);
	UsAggAppend(s1, s2, aggcxt);
	PG_RETURN_POINTER(s1);
}

/*
 * Serialized state (native byte order: it only travels between processes of one server):
 * int32 n, int32 n_labels, labels as (uint8 length, bytes), int64 items[n],
 * int64 times[n], uint8 codes[n].
 */
FUNCTION_PREFIX PG_FUNCTION_INFO_V1(userseq_agg_serialize);
Datum
userseq_agg_serialize(PG_FUNCTION_ARGS)
{
	UsAggState *st;
	Size		size = VARHDRSZ + 2 * sizeof(int32);
	bytea	   *out;
	char	   *p;

	UsAggContext(fcinfo, "userseq_agg_serialize");
	st = (UsAggState *) PG_GETARG_POINTER(0);
	for (int l = 0; l < st->labels.n; l++)
		size += 1 + st->labels.labels[l].len;
	size += (Size) st->n * (sizeof(int64) + sizeof(TimestampTz) + 1);
	out = palloc(size);
	SET_VARSIZE(out, size);
	p = VARDATA(out);
	memcpy(p, &st->n, sizeof(int32));
	p += sizeof(int32);
	memcpy(p, &st->labels.n, sizeof(int32));
	p += sizeof(int32);
	for (int l = 0; l < st->labels.n; l++)
	{
		*p++ = (char) st->labels.labels[l].len;
		memcpy(p, st->labels.labels[l].data, st->labels.labels[l].len);
		p += st->labels.labels[l].len;
	}
	memcpy(p, st->items, sizeof(int64) * st->n);
	p += sizeof(int64) * st->n;
	memcpy(p, st->times, sizeof(TimestampTz) * st->n);
	p += sizeof(TimestampTz) * st->n;
	memcpy(p, st->codes, st->n);
	PG_RETURN_BYTEA_P(out);
}

static void
UsAggCorrupt(const char *what)
{
	ereport(ERROR,
			(errcode(ERRCODE_INVALID_BINARY_REPRESENTATION),
			 errmsg("corrupt userseq_agg state: %s", what)));
}

/* Rebuilds a state from userseq_agg_serialize output, checking every count and code. */
FUNCTION_PREFIX PG_FUNCTION_INFO_V1(userseq_agg_deserialize);
Datum
userseq_agg_deserialize(PG_FUNCTION_ARGS)
{
	MemoryContext aggcxt = UsAggContext(fcinfo, "userseq_agg_deserialize");
	bytea	   *in = PG_GETARG_BYTEA_PP(0);
	const char *p = VARDATA_ANY(in);
	const char *end = p + VARSIZE_ANY_EXHDR(in);
	int32		n;
	int32		n_labels;
	uint8		map[USERSEQ_MAX_LABELS + 1];
	UsAggState *st;

	if (end - p < 2 * (int) sizeof(int32))
		UsAggCorrupt("too short");
	memcpy(&n, p, sizeof(int32));
	p += sizeof(int32);
	memcpy(&n_labels, p, sizeof(int32));
	p += sizeof(int32);
	if (n < 0 || n > USERSEQ_MAX_EVENTS || n_labels < 0 || n_labels > USERSEQ_MAX_LABELS)
		UsAggCorrupt("bad counts");

	st = UsAggStateCreate(aggcxt);
	map[0] = 0;
	for (int l = 0; l < n_labels; l++)
	{
		int			len;

		if (end - p < 1)
			UsAggCorrupt("truncated label");
		len = (uint8) *p++;
		if (end - p < len)
			UsAggCorrupt("truncated label");
		map[l + 1] = (uint8) UsLabelIntern(&st->labels, p, len, aggcxt, true);
		p += len;
	}
	if (end - p != (int64) n * (sizeof(int64) + sizeof(TimestampTz) + 1))
		UsAggCorrupt("length does not match the event count");
	UsAggReserve(st, Max(n, 1), aggcxt);
	memcpy(st->items, p, sizeof(int64) * n);
	p += sizeof(int64) * n;
	memcpy(st->times, p, sizeof(TimestampTz) * n);
	p += sizeof(TimestampTz) * n;
	for (int32 i = 0; i < n; i++)
	{
		uint8		c = (uint8) p[i];

		if (c > n_labels)
			UsAggCorrupt("behavior code refers to no label");
		st->codes[i] = map[c];
		UsCheckTime(st->times[i]);
	}
	st->n = n;
	PG_RETURN_POINTER(st);
}

/* Final function: sorts by (time, item, label) and builds the value; NULL for no events. */
FUNCTION_PREFIX PG_FUNCTION_INFO_V1(userseq_agg_finalfn);
Datum
userseq_agg_finalfn(PG_FUNCTION_ARGS)
{
	UsAggState *st;
	UsEvent    *events;

	UsAggContext(fcinfo, "userseq_agg_finalfn");
	st = PG_ARGISNULL(0) ? NULL : (UsAggState *) PG_GETARG_POINTER(0);
	if (st == NULL || st->n == 0)
		PG_RETURN_NULL();

	/* sort a copy: the state stays intact (FINALFUNC_MODIFY = READ_ONLY, window use) */
	events = palloc(sizeof(UsEvent) * st->n);
	for (int32 i = 0; i < st->n; i++)
	{
		events[i].time = st->times[i];
		events[i].item = st->items[i];
		events[i].code = st->codes[i];
		events[i].pad = 0;
	}
	PG_RETURN_USERSEQ_P(UsSeqAssemble(events, st->n, st->labels.labels, st->labels.n));
}
