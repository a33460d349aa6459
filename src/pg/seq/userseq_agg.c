/*
 * userseq_agg.c: the userseq_agg(item, ts [, behavior]) aggregate: transition, combine,
 * serialize/deserialize (parallel aggregation) and the final function. Events are kept
 * unsorted; the final function sorts (unless they arrived in time order) and builds through
 * UsSeqAssemble, the same code every other userseq constructor uses. Rows with a NULL item
 * or timestamp are skipped (as count(x) skips NULLs); a group without events gives NULL.
 *
 * Built for hash aggregation over many groups whose rows arrive interleaved (an event table
 * in time order): each transition touches as little memory as possible, and no state is
 * ever reallocated or freed while it grows.
 *  - Events are packed 17-byte records (time, item, label code) in segments of doubling
 *    size; the first segment sits right after the state header. A transition writes one
 *    record and bumps a pointer; growing adds a segment, nothing is copied or freed.
 *  - Segments and states come from a bump arena in the aggregate memory context (one per
 *    call site and context, found through fn_extra), so there is no per-chunk header or
 *    power-of-two rounding, and the memory still belongs to (and is accounted to) the
 *    aggregate context. A reset callback forgets the arena's block when the context is reset.
 *  - Behaviour labels are interned once per call site in a small dictionary in fn_mcxt
 *    (query lifetime): a state keeps only pointers to dictionary entries, so the hot path
 *    compares the raw text bytes against a cached entry and then a pointer in the state
 *    header, with no detoasting, copying or per-state label allocation. The dictionary is
 *    capped; past the cap new labels are copied into the state's arena instead.
 * It does not deduplicate events or drop any row other than those with NULL item or ts.
 */
#include "postgres.h"

#include "userseq_pg.h"

#include "common/hashfn.h"
#include "fmgr.h"
#include "utils/builtins.h"
#include "utils/timestamp.h"

#include "seq/userseq_build.h"

/* A packed event: TimestampTz time, int64 item, uint8 code (0 = no label, i = label i-1). */
#define US_REC_BYTES		17

#define US_AGG_FIRST_CAP	8		/* events in the segment allocated with a new state */
#define US_AGG_INLINE_LABELS 4		/* label pointers held in the state header */
#define US_DICT_SLOTS		64		/* direct-mapped cache in front of the dictionary */
#define US_DICT_MAX			4096	/* labels interned per call site; then per state */
#define US_ARENA_MIN_BLOCK	((Size) 8 * 1024)
#define US_ARENA_MAX_BLOCK	((Size) 256 * 1024)

/*
 * A label is referenced by a pointer to its length byte, followed by the bytes (the
 * serialized form, so a deserialized state can point into its bytea).
 */
typedef const uint8 *UsLabelRef;

/* Bump allocator over blocks of one aggregate memory context. */
typedef struct UsAggArena
{
	MemoryContext cxt;
	char	   *free;			/* NULL: no current block (new, or cxt was reset) */
	Size		left;
	Size		next_block;
	MemoryContextCallback cb;
	struct UsAggArena *next;
} UsAggArena;

/* Labels interned per call site: open addressing table of entries, in fn_mcxt. */
typedef struct UsLabelDict
{
	UsLabelRef	slots[US_DICT_SLOTS];	/* by cheap hash of (len, first, last byte) */
	UsLabelRef *table;
	int			n;
	int			size;			/* power of two, 0 before the first label */
} UsLabelDict;

/* Per call site (transfn, combinefn) data, hung off fn_extra. */
typedef struct UsAggCache
{
	MemoryContext cxt;			/* fn_mcxt: lives as long as the query */
	UsLabelDict dict;
	UsAggArena *arenas;			/* one per aggregate context seen (grouping sets) */
} UsAggCache;

typedef struct UsAggSeg
{
	struct UsAggSeg *next;
	int32		cap;			/* events; every segment but the last is full */
	char	   *data;			/* cap packed events */
} UsAggSeg;

/*
 * Aggregate state. The fields every transition touches come first. A state made by the
 * deserialize function borrows its events and labels from the bytea (arena NULL): it is
 * only ever handed to the combine function, which copies.
 */
typedef struct UsAggState
{
	char	   *wp;				/* where the next event goes */
	int32		room;			/* free event slots at wp */
	int32		n;				/* events */
	TimestampTz last_time;		/* time of the last event appended */
	bool		unsorted;		/* some event's time was <= the one before it */
	int16		n_labels;
	UsLabelRef	labels[US_AGG_INLINE_LABELS];	/* codes 1..US_AGG_INLINE_LABELS */
	UsLabelRef *more_labels;	/* codes beyond, more_cap entries */
	int16		more_cap;
	UsAggSeg   *tail;
	UsAggArena *arena;
	UsAggSeg	head;			/* first segment; its data follows the state */
} UsAggState;

static inline void
UsRecPut(char *p, TimestampTz t, int64 item, uint8 code)
{
	memcpy(p, &t, sizeof(TimestampTz));
	memcpy(p + 8, &item, sizeof(int64));
	p[16] = (char) code;
}

static inline UsLabelRef
UsStateLabel(const UsAggState *st, int i)
{
	return i < US_AGG_INLINE_LABELS ? st->labels[i] : st->more_labels[i - US_AGG_INLINE_LABELS];
}

/* Events in segment seg of st (all segments but the tail are full). */
static inline int32
UsSegCount(const UsAggState *st, const UsAggSeg *seg)
{
	return seg == st->tail ? seg->cap - st->room : seg->cap;
}

/* ------------------------------------------------------------------ arena */

static void
UsArenaForget(void *arg)
{
	UsAggArena *a = (UsAggArena *) arg;

	a->free = NULL;
	a->left = 0;
	a->next_block = US_ARENA_MIN_BLOCK;
}

static UsAggCache *
UsAggGetCache(FmgrInfo *flinfo)
{
	UsAggCache *cache = (UsAggCache *) flinfo->fn_extra;

	if (unlikely(cache == NULL))
	{
		cache = MemoryContextAllocZero(flinfo->fn_mcxt, sizeof(UsAggCache));
		cache->cxt = flinfo->fn_mcxt;
		flinfo->fn_extra = cache;
	}
	return cache;
}

static UsAggArena *
UsAggGetArena(UsAggCache *cache, MemoryContext cxt)
{
	UsAggArena *a;

	for (a = cache->arenas; a != NULL; a = a->next)
		if (a->cxt == cxt)
			return a;
	a = MemoryContextAllocZero(cache->cxt, sizeof(UsAggArena));
	a->cxt = cxt;
	a->next_block = US_ARENA_MIN_BLOCK;
	a->cb.func = UsArenaForget;
	a->cb.arg = a;
	a->next = cache->arenas;
	cache->arenas = a;
	return a;
}

static void *
UsArenaAllocSlow(UsAggArena *a, Size size)
{
	Size		block;
	char	   *p;

	/* big pieces get their own chunk, so the arena's blocks stay small */
	if (size > US_ARENA_MAX_BLOCK / 4)
		return MemoryContextAlloc(a->cxt, size);
	/* a piece may take at most a quarter of a block, bounding the tail left unused */
	for (block = a->next_block; block < 4 * size; block *= 2)
		;
	if (a->free == NULL)		/* first block since the context was (re)made */
		MemoryContextRegisterResetCallback(a->cxt, &a->cb);
	p = MemoryContextAlloc(a->cxt, block);
	a->next_block = Min(block * 2, US_ARENA_MAX_BLOCK);
	a->free = p + size;
	a->left = block - size;
	return p;
}

/* size bytes (MAXALIGNed) in the arena's context, freed only when that context is reset. */
static inline void *
UsArenaAlloc(UsAggArena *a, Size size)
{
	void	   *p;

	size = MAXALIGN(size);
	if (unlikely(size > a->left))
		return UsArenaAllocSlow(a, size);
	p = a->free;
	a->free += size;
	a->left -= size;
	return p;
}

/* ------------------------------------------------------------------ labels */

static inline int
UsCheapHash(const char *data, int len)
{
	if (len == 0)
		return 0;
	return (len * 31 + (uint8) data[0] * 7 + (uint8) data[len - 1]) & (US_DICT_SLOTS - 1);
}

static inline uint32
UsLoad32(const void *p)
{
	uint32		v;

	memcpy(&v, p, sizeof(v));
	return v;
}

static inline uint64
UsLoad64(const void *p)
{
	uint64		v;

	memcpy(&v, p, sizeof(v));
	return v;
}

/*
 * Whether (data, len) equals label e. Labels are short: overlapping word loads (never
 * past len on either side) instead of a byte loop or a memcmp call.
 */
static pg_attribute_always_inline bool
UsLabelRefEq(UsLabelRef e, const char *data, int len)
{
	const uint8 *a = e + 1;
	const uint8 *b = (const uint8 *) data;

	if (e[0] != len)
		return false;
	if (len >= 8)
	{
		for (int i = 0; i + 8 < len; i += 8)
			if (UsLoad64(a + i) != UsLoad64(b + i))
				return false;
		return UsLoad64(a + len - 8) == UsLoad64(b + len - 8);
	}
	if (len >= 4)
		return UsLoad32(a) == UsLoad32(b) && UsLoad32(a + len - 4) == UsLoad32(b + len - 4);
	/* 1..3 bytes: first, middle and last byte cover them (len 0 is never an entry) */
	return len == 0 || (a[0] == b[0] && a[len / 2] == b[len / 2] && a[len - 1] == b[len - 1]);
}

/*
 * The dictionary entry for a label, interning (after checking) a new one; NULL when the
 * label is new and the dictionary is full. Out of line: the slot cache answers most calls.
 */
static UsLabelRef
UsDictLookup(UsAggCache *cache, const char *data, int len, int slot)
{
	UsLabelDict *d = &cache->dict;
	uint32		h = hash_bytes((const unsigned char *) data, len);
	uint8	   *e;

	if (d->size > 0)
	{
		for (uint32 i = h & (d->size - 1);; i = (i + 1) & (d->size - 1))
		{
			if (d->table[i] == NULL)
				break;
			if (UsLabelRefEq(d->table[i], data, len))
			{
				d->slots[slot] = d->table[i];
				return d->table[i];
			}
		}
	}
	UsCheckLabel(data, len);
	if (d->n >= US_DICT_MAX)
		return NULL;
	if (2 * (d->n + 1) > d->size)
	{
		int			size = d->size == 0 ? 16 : d->size * 2;
		UsLabelRef *table = MemoryContextAllocZero(cache->cxt, sizeof(UsLabelRef) * size);

		for (int i = 0; i < d->size; i++)
		{
			UsLabelRef o = d->table[i];
			uint32		j;

			if (o == NULL)
				continue;
			for (j = hash_bytes(o + 1, o[0]) & (size - 1); table[j] != NULL; j = (j + 1) & (size - 1))
				;
			table[j] = o;
		}
		if (d->table)
			pfree(d->table);
		d->table = table;
		d->size = size;
	}
	e = MemoryContextAlloc(cache->cxt, len + 1);
	e[0] = (uint8) len;
	memcpy(e + 1, data, len);
	{
		uint32		i;

		for (i = h & (d->size - 1); d->table[i] != NULL; i = (i + 1) & (d->size - 1))
			;
		d->table[i] = e;
	}
	d->n++;
	d->slots[slot] = e;
	return e;
}

/* Appends label e (already checked) to st's labels; returns its code. */
static int
UsAggAddLabel(UsAggState *st, UsLabelRef e)
{
	int			i = st->n_labels;

	if (i >= USERSEQ_MAX_LABELS)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("userseq cannot hold more than %d distinct behavior labels", USERSEQ_MAX_LABELS)));
	if (i < US_AGG_INLINE_LABELS)
		st->labels[i] = e;
	else
	{
		int			k = i - US_AGG_INLINE_LABELS;

		if (k >= st->more_cap)
		{
			int			cap = Min(Max(2 * st->more_cap, 8), USERSEQ_MAX_LABELS);
			UsLabelRef *more = UsArenaAlloc(st->arena, sizeof(UsLabelRef) * cap);

			if (k > 0)
				memcpy(more, st->more_labels, sizeof(UsLabelRef) * k);
			st->more_labels = more;	/* the old array stays in the arena (rare) */
			st->more_cap = cap;
		}
		st->more_labels[k] = e;
	}
	st->n_labels = i + 1;
	return i + 1;
}

/* Slow path: the dictionary is full and the label is not in it; compare bytes per state. */
static int
UsAggLabelCodeUncached(UsAggState *st, const char *data, int len)
{
	uint8	   *e;

	for (int i = 0; i < st->n_labels; i++)
		if (UsLabelRefEq(UsStateLabel(st, i), data, len))
			return i + 1;
	UsCheckLabel(data, len);
	if (st->n_labels >= USERSEQ_MAX_LABELS)
		return UsAggAddLabel(st, NULL); /* raises the limit error */
	e = UsArenaAlloc(st->arena, len + 1);
	e[0] = (uint8) len;
	memcpy(e + 1, data, len);
	return UsAggAddLabel(st, e);
}

/* Code of label (data, len) in st, adding it when new. */
static pg_attribute_always_inline int
UsAggLabelCode(UsAggState *st, UsAggCache *cache, const char *data, int len)
{
	int			slot = UsCheapHash(data, len);
	UsLabelRef	e = cache->dict.slots[slot];

	if (unlikely(e == NULL || !UsLabelRefEq(e, data, len)))
	{
		e = UsDictLookup(cache, data, len, slot);
		if (unlikely(e == NULL))
			return UsAggLabelCodeUncached(st, data, len);
	}
	/* entries are unique per dictionary, so a pointer comparison identifies the label */
	for (int i = 0; i < Min(st->n_labels, US_AGG_INLINE_LABELS); i++)
		if (st->labels[i] == e)
			return i + 1;
	for (int i = US_AGG_INLINE_LABELS; i < st->n_labels; i++)
		if (st->more_labels[i - US_AGG_INLINE_LABELS] == e)
			return i + 1;
	return UsAggAddLabel(st, e);
}

/* ------------------------------------------------------------------ state */

static MemoryContext
UsAggContext(FunctionCallInfo fcinfo, const char *fname)
{
	MemoryContext aggcxt;

	if (!AggCheckCallContext(fcinfo, &aggcxt))
		elog(ERROR, "%s called in non-aggregate context", fname);
	return aggcxt;
}

/* A new empty state whose first segment holds cap events, in the call site's arena. */
static UsAggState *
UsAggStateCreate(FunctionCallInfo fcinfo, const char *fname, int32 cap)
{
	MemoryContext aggcxt = UsAggContext(fcinfo, fname);
	UsAggArena *arena = UsAggGetArena(UsAggGetCache(fcinfo->flinfo), aggcxt);
	Size		header = MAXALIGN(sizeof(UsAggState));
	UsAggState *st = UsArenaAlloc(arena, header + (Size) cap * US_REC_BYTES);

	memset(st, 0, sizeof(UsAggState));
	st->last_time = PG_INT64_MIN;	/* below every finite timestamp */
	st->arena = arena;
	st->head.cap = cap;
	st->head.data = (char *) st + header;
	st->tail = &st->head;
	st->wp = st->head.data;
	st->room = cap;
	return st;
}

/* Adds a segment for more events (the current one is full): the capacity doubles. */
static pg_noinline void
UsAggGrow(UsAggState *st, int64 need)
{
	int64		cap;
	UsAggSeg   *seg;

	Assert(st->room == 0 && st->arena != NULL);
	UsCheckEventCount((int64) st->n + need);
	cap = Max(need, Max(st->n, US_AGG_FIRST_CAP));
	cap = Min(cap, USERSEQ_MAX_EVENTS - st->n);
	seg = UsArenaAlloc(st->arena, MAXALIGN(sizeof(UsAggSeg)) + cap * US_REC_BYTES);
	seg->next = NULL;
	seg->cap = (int32) cap;
	seg->data = (char *) seg + MAXALIGN(sizeof(UsAggSeg));
	st->tail->next = seg;
	st->tail = seg;
	st->wp = seg->data;
	st->room = (int32) cap;
}

static inline void
UsAggPush(UsAggState *st, TimestampTz t, int64 item, uint8 code)
{
	if (unlikely(st->room == 0))
		UsAggGrow(st, 1);
	UsRecPut(st->wp, t, item, code);
	st->wp += US_REC_BYTES;
	st->room--;
	st->n++;
	st->unsorted |= t <= st->last_time;
	st->last_time = t;
}

/* Transition of userseq_agg(item, ts [, behavior]): appends one event, skipping NULL item or ts. */
FUNCTION_PREFIX PG_FUNCTION_INFO_V1(userseq_agg_transfn);
Datum
userseq_agg_transfn(PG_FUNCTION_ARGS)
{
	UsAggState *st;
	TimestampTz t;
	int			code = 0;

	if (unlikely(PG_ARGISNULL(1) || PG_ARGISNULL(2)))
	{
		if (PG_ARGISNULL(0))
			PG_RETURN_NULL();
		PG_RETURN_POINTER(PG_GETARG_POINTER(0));
	}
	t = PG_GETARG_TIMESTAMPTZ(2);
	if (unlikely(TIMESTAMP_NOT_FINITE(t)))
		UsCheckTime(t);
	if (unlikely(PG_ARGISNULL(0)))
		st = UsAggStateCreate(fcinfo, "userseq_agg_transfn", US_AGG_FIRST_CAP);
	else
		st = (UsAggState *) PG_GETARG_POINTER(0);
	if (PG_NARGS() > 3 && !PG_ARGISNULL(3))
	{
		struct varlena *b = (struct varlena *) PG_GETARG_POINTER(3);
		UsAggCache *cache = (UsAggCache *) fcinfo->flinfo->fn_extra;

		/* plain inline text (the usual label) is read in place; toasted text is detoasted */
		if (unlikely(VARATT_IS_EXTERNAL(b) || VARATT_IS_COMPRESSED(b)))
			b = pg_detoast_datum_packed(b);
		if (unlikely(cache == NULL))
			cache = UsAggGetCache(fcinfo->flinfo);
		code = UsAggLabelCode(st, cache, VARDATA_ANY(b), VARSIZE_ANY_EXHDR(b));
	}
	UsAggPush(st, t, PG_GETARG_INT64(1), (uint8) code);
	PG_RETURN_POINTER(st);
}

/* Combines two partial states (parallel aggregation); copies state2 when state1 is NULL. */
FUNCTION_PREFIX PG_FUNCTION_INFO_V1(userseq_agg_combine);
Datum
userseq_agg_combine(PG_FUNCTION_ARGS)
{
	UsAggState *s1 = PG_ARGISNULL(0) ? NULL : (UsAggState *) PG_GETARG_POINTER(0);
	UsAggState *s2 = PG_ARGISNULL(1) ? NULL : (UsAggState *) PG_GETARG_POINTER(1);
	UsAggCache *cache;
	int			map[USERSEQ_MAX_LABELS + 1];

	if (s2 == NULL || s2->n == 0)
	{
		if (s1 == NULL)
			PG_RETURN_NULL();
		PG_RETURN_POINTER(s1);
	}
	/* s2 may live in another context or borrow its bytea: always copy its contents */
	if (s1 == NULL)
		s1 = UsAggStateCreate(fcinfo, "userseq_agg_combine", Max(s2->n, US_AGG_FIRST_CAP));
	else
		UsCheckEventCount((int64) s1->n + s2->n);
	cache = UsAggGetCache(fcinfo->flinfo);

	/* labels are mapped when first used, so an unused label of s2 never reaches s1 */
	map[0] = 0;
	for (int l = 1; l <= s2->n_labels; l++)
		map[l] = -1;
	for (UsAggSeg *seg = &s2->head; seg != NULL; seg = seg->next)
	{
		int32		cnt = UsSegCount(s2, seg);
		const char *p = seg->data;

		for (int32 i = 0; i < cnt; i++, p += US_REC_BYTES)
		{
			TimestampTz t;
			int64		item;
			uint8		c = (uint8) p[16];

			memcpy(&t, p, sizeof(TimestampTz));
			memcpy(&item, p + 8, sizeof(int64));
			if (unlikely(map[c] < 0))
			{
				UsLabelRef	e = UsStateLabel(s2, c - 1);

				map[c] = UsAggLabelCode(s1, cache, (const char *) e + 1, e[0]);
			}
			UsAggPush(s1, t, item, (uint8) map[c]);
		}
	}
	PG_RETURN_POINTER(s1);
}

/*
 * Serialized state (native byte order: it only travels between processes of one server):
 * int32 n, int32 n_labels, labels as (uint8 length, bytes), then n packed events of
 * 17 bytes (int64 time, int64 item, uint8 code).
 */
FUNCTION_PREFIX PG_FUNCTION_INFO_V1(userseq_agg_serialize);
Datum
userseq_agg_serialize(PG_FUNCTION_ARGS)
{
	UsAggState *st;
	Size		size = VARHDRSZ + 2 * sizeof(int32);
	bytea	   *out;
	char	   *p;
	int32		n_labels;

	UsAggContext(fcinfo, "userseq_agg_serialize");
	st = (UsAggState *) PG_GETARG_POINTER(0);
	n_labels = st->n_labels;
	for (int l = 0; l < n_labels; l++)
		size += 1 + UsStateLabel(st, l)[0];
	size += (Size) st->n * US_REC_BYTES;
	out = palloc(size);
	SET_VARSIZE(out, size);
	p = VARDATA(out);
	memcpy(p, &st->n, sizeof(int32));
	p += sizeof(int32);
	memcpy(p, &n_labels, sizeof(int32));
	p += sizeof(int32);
	for (int l = 0; l < n_labels; l++)
	{
		UsLabelRef	e = UsStateLabel(st, l);

		memcpy(p, e, 1 + e[0]);
		p += 1 + e[0];
	}
	for (UsAggSeg *seg = &st->head; seg != NULL; seg = seg->next)
	{
		Size		bytes = (Size) UsSegCount(st, seg) * US_REC_BYTES;

		memcpy(p, seg->data, bytes);
		p += bytes;
	}
	PG_RETURN_BYTEA_P(out);
}

static void
UsAggCorrupt(const char *what)
{
	ereport(ERROR,
			(errcode(ERRCODE_INVALID_BINARY_REPRESENTATION),
			 errmsg("corrupt userseq_agg state: %s", what)));
}

/*
 * Rebuilds a state from userseq_agg_serialize output, checking every count, label, code and
 * time. The state borrows the bytea's events and labels: it is valid for the combine call
 * that follows (in the same per-tuple context), which copies them.
 */
FUNCTION_PREFIX PG_FUNCTION_INFO_V1(userseq_agg_deserialize);
Datum
userseq_agg_deserialize(PG_FUNCTION_ARGS)
{
	bytea	   *in;
	const char *p;
	const char *end;
	int32		n;
	int32		n_labels;
	UsAggState *st;
	TimestampTz last = PG_INT64_MIN;

	UsAggContext(fcinfo, "userseq_agg_deserialize");
	in = PG_GETARG_BYTEA_PP(0);
	p = VARDATA_ANY(in);
	end = p + VARSIZE_ANY_EXHDR(in);
	if (end - p < 2 * (int) sizeof(int32))
		UsAggCorrupt("too short");
	memcpy(&n, p, sizeof(int32));
	p += sizeof(int32);
	memcpy(&n_labels, p, sizeof(int32));
	p += sizeof(int32);
	if (n < 0 || n > USERSEQ_MAX_EVENTS || n_labels < 0 || n_labels > USERSEQ_MAX_LABELS)
		UsAggCorrupt("bad counts");

	st = palloc0(sizeof(UsAggState));
	if (n_labels > US_AGG_INLINE_LABELS)
		st->more_labels = palloc(sizeof(UsLabelRef) * (n_labels - US_AGG_INLINE_LABELS));
	for (int l = 0; l < n_labels; l++)
	{
		int			len;

		if (end - p < 1)
			UsAggCorrupt("truncated label");
		len = (uint8) *p;
		if (end - p - 1 < len)
			UsAggCorrupt("truncated label");
		UsCheckLabel(p + 1, len);
		if (l < US_AGG_INLINE_LABELS)
			st->labels[l] = (UsLabelRef) p;
		else
			st->more_labels[l - US_AGG_INLINE_LABELS] = (UsLabelRef) p;
		p += 1 + len;
	}
	st->n_labels = n_labels;
	if (end - p != (int64) n * US_REC_BYTES)
		UsAggCorrupt("length does not match the event count");
	for (int32 i = 0; i < n; i++)
	{
		const char *r = p + (Size) i * US_REC_BYTES;
		TimestampTz t;

		if ((uint8) r[16] > n_labels)
			UsAggCorrupt("behavior code refers to no label");
		memcpy(&t, r, sizeof(TimestampTz));
		UsCheckTime(t);
		st->unsorted |= t <= last;
		last = t;
	}
	st->n = n;
	st->last_time = last;
	st->head.cap = n;
	st->head.data = (char *) p;
	st->tail = &st->head;
	st->room = 0;
	PG_RETURN_POINTER(st);
}

/* Final function: sorts by (time, item, label) and builds the value; NULL for no events. */
FUNCTION_PREFIX PG_FUNCTION_INFO_V1(userseq_agg_finalfn);
Datum
userseq_agg_finalfn(PG_FUNCTION_ARGS)
{
	UsAggState *st;
	UsEvent    *events;
	UsEvent    *ev;
	UsLabel		labels[USERSEQ_MAX_LABELS];

	UsAggContext(fcinfo, "userseq_agg_finalfn");
	st = PG_ARGISNULL(0) ? NULL : (UsAggState *) PG_GETARG_POINTER(0);
	if (st == NULL || st->n == 0)
		PG_RETURN_NULL();

	for (int l = 0; l < st->n_labels; l++)
	{
		UsLabelRef	e = UsStateLabel(st, l);

		labels[l].data = (const char *) e + 1;
		labels[l].len = e[0];
	}
	/* build from a copy: the state stays intact (FINALFUNC_MODIFY = READ_ONLY, window use) */
	events = palloc(sizeof(UsEvent) * st->n);
	ev = events;
	for (UsAggSeg *seg = &st->head; seg != NULL; seg = seg->next)
	{
		int32		cnt = UsSegCount(st, seg);
		const char *p = seg->data;

		for (int32 i = 0; i < cnt; i++, p += US_REC_BYTES, ev++)
		{
			memcpy(&ev->time, p, sizeof(TimestampTz));
			memcpy(&ev->item, p + 8, sizeof(int64));
			ev->code = (uint8) p[16];
			ev->pad = 0;
		}
	}
	Assert(ev - events == st->n);
	/* strictly increasing times are already in canonical order: no sort */
	PG_RETURN_USERSEQ_P(UsSeqAssemble(events, st->n, labels, st->n_labels, !st->unsorted));
}
