/*
 * userseq_type.c: the userseq type: text and binary I/O, the canonical builder, array
 * constructors and accessors, the analyst functions that cut and label sequences, equality,
 * hashing and concatenation. The aggregate lives in userseq_agg.c; this file does no ML.
 *
 * Text format (documented in README):
 *
 *   [ event, event, ... ]          '[]' is the empty sequence
 *   event := item '@' timestamp [ label ]
 *
 * item is a bigint; timestamp is anything timestamptz accepts, double-quoted when it holds
 * a space, comma or bracket ("2024-01-01 10:00:00+02"); label follows the timestamp after
 * whitespace, unquoted when it holds no whitespace or any of  " \ , [ ] @  and otherwise
 * double-quoted with backslash escapes. Input may list events in any order; the value is
 * stored sorted by (time, item, label). Output always prints timestamps in UTC ISO 8601
 * ("2024-01-01T10:00:00Z", fractional seconds only when present), so it round-trips
 * whatever the session TimeZone or DateStyle:
 *
 *   [42@2024-01-01T10:00:00Z view, 43@2024-01-01T10:05:00.5Z, 7@2024-01-02T00:00:00Z "add to cart"]
 */
#include "postgres.h"

#include <limits.h>

#include "userseq_pg.h"

#include "catalog/pg_type.h"
#include "common/hashfn.h"
#include "common/int.h"
#include "funcapi.h"
#include "libpq/pqformat.h"
#include "miscadmin.h"
#include "parser/scansup.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/datetime.h"
#include "utils/lsyscache.h"
#include "utils/timestamp.h"

#include "seq/userseq_build.h"

/* Unix epoch as TimestampTz: synthetic times of userseq(bigint[]) count seconds from here */
#define US_UNIX_EPOCH_TS	(-((int64) (POSTGRES_EPOCH_JDATE - UNIX_EPOCH_JDATE) * USECS_PER_DAY))

#define US_EVENT_BYTES		(sizeof(int64) + sizeof(TimestampTz) + sizeof(uint8))

/* ------------------------------------------------------------------ checks */

void
UsCheckLabel(const char *data, int len)
{
	if (len <= 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("behavior label must not be empty"),
				 errhint("Use NULL for an event without a behavior label.")));
	if (len > USERSEQ_MAX_LABEL_LEN)
		ereport(ERROR,
				(errcode(ERRCODE_STRING_DATA_RIGHT_TRUNCATION),
				 errmsg("behavior label is too long"),
				 errdetail("Labels are at most %d bytes; got %d bytes.", USERSEQ_MAX_LABEL_LEN, len)));
	if (memchr(data, '\0', len) != NULL)
		ereport(ERROR,
				(errcode(ERRCODE_CHARACTER_NOT_IN_REPERTOIRE),
				 errmsg("behavior label must not contain a NUL byte")));
}

void
UsCheckEventCount(int64 n)
{
	if (n > USERSEQ_MAX_EVENTS)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("userseq cannot hold more than %d events", USERSEQ_MAX_EVENTS),
				 errdetail("The value would have " INT64_FORMAT " events.", n)));
}

void
UsCheckTime(TimestampTz t)
{
	if (TIMESTAMP_NOT_FINITE(t) || !IS_VALID_TIMESTAMP(t))
		ereport(ERROR,
				(errcode(ERRCODE_DATETIME_VALUE_OUT_OF_RANGE),
				 errmsg("userseq event timestamps must be finite")));
}

static inline bool
UsLabelEq(const UsLabel *l, const char *data, int len)
{
	/* labels are short: an inline loop beats a memcmp call */
	if (l->len != len)
		return false;
	for (int i = 0; i < len; i++)
		if (l->data[i] != data[i])
			return false;
	return true;
}

int
UsLabelIntern(UsLabelSet *set, const char *data, int len, MemoryContext cxt, bool copy)
{
	int			h = len > 0 ? (len * 7 + (uint8) data[0] + (uint8) data[len - 1] * 3) % US_LABEL_SLOTS : 0;
	int			c = set->slots[h];

	if (c != 0 && UsLabelEq(&set->labels[c - 1], data, len))
		return c;
	for (int i = 0; i < set->n; i++)
	{
		if (UsLabelEq(&set->labels[i], data, len))
		{
			set->slots[h] = i + 1;
			return i + 1;
		}
	}

	UsCheckLabel(data, len);
	if (set->n >= USERSEQ_MAX_LABELS)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("userseq cannot hold more than %d distinct behavior labels", USERSEQ_MAX_LABELS)));
	if (set->n == set->cap)
	{
		int			cap = set->cap == 0 ? 4 : Min(set->cap * 2, USERSEQ_MAX_LABELS);

		if (set->labels == NULL)
			set->labels = MemoryContextAlloc(cxt, sizeof(UsLabel) * cap);
		else
			set->labels = repalloc(set->labels, sizeof(UsLabel) * cap);
		set->cap = cap;
	}
	if (copy)
	{
		char	   *c = MemoryContextAlloc(cxt, len);

		memcpy(c, data, len);
		data = c;
	}
	set->labels[set->n].data = data;
	set->labels[set->n].len = len;
	set->slots[h] = set->n + 1;
	return ++set->n;
}

/* Whether later - earlier <= d for later >= earlier, without overflow (the timestamp range spans more than int64). */
static inline bool
UsWithin(TimestampTz earlier, TimestampTz later, int64 d)
{
	int64		diff;

	if (pg_sub_s64_overflow(later, earlier, &diff))
		return false;
	return diff <= d;
}

/* ------------------------------------------------------------------ building */

static inline int
UsEventCmp(const UsEvent *a, const UsEvent *b)
{
	if (a->time != b->time)
		return a->time < b->time ? -1 : 1;
	if (a->item != b->item)
		return a->item < b->item ? -1 : 1;
	return (a->code > b->code) - (a->code < b->code);
}

/* an inlined introsort specialised for UsEvent (PostgreSQL's sort_template) */
#define ST_SORT us_event_sort
#define ST_ELEMENT_TYPE UsEvent
#define ST_COMPARE(a, b) UsEventCmp(a, b)
#define ST_CHECK_FOR_INTERRUPTS
#define ST_SCOPE static
#define ST_DEFINE
#include "lib/sort_template.h"

static int
UsLabelCmp(const UsLabel *a, const UsLabel *b)
{
	int			c = memcmp(a->data, b->data, Min(a->len, b->len));

	if (c != 0)
		return c;
	return (a->len > b->len) - (a->len < b->len);
}

static int
UsLabelPtrCmp(const void *a, const void *b)
{
	return UsLabelCmp(*(const UsLabel *const *) a, *(const UsLabel *const *) b);
}

static Size
UsSeqSize(int32 n, const UsLabel *const *labels, int n_labels)
{
	Size		size = USERSEQ_HEADER_SIZE + (Size) n * US_EVENT_BYTES;

	for (int i = 0; i < n_labels; i++)
		size += 1 + labels[i]->len;
	return size;
}

UserSeq *
UsSeqAlloc(int32 n, const UsLabel *const *labels, int n_labels)
{
	Size		size = UsSeqSize(n, labels, n_labels);
	UserSeq    *seq = palloc(size);
	uint8	   *p;

	/* every byte after the header is written by the caller, so only the header is zeroed */
	memset(seq, 0, USERSEQ_HEADER_SIZE);
	SET_VARSIZE(seq, size);
	seq->n_events = n;
	seq->n_labels = n_labels;
	p = (uint8 *) UserSeqBehaviors(seq) + n;
	for (int i = 0; i < n_labels; i++)
	{
		*p++ = (uint8) labels[i]->len;
		memcpy(p, labels[i]->data, labels[i]->len);
		p += labels[i]->len;
	}
	return seq;
}

UserSeq *
UsSeqAssemble(UsEvent *events, int32 n, const UsLabel *labels, int n_labels, bool sorted)
{
	const UsLabel *order[USERSEQ_MAX_LABELS];
	int			rank[USERSEQ_MAX_LABELS + 1];
	bool		used[USERSEQ_MAX_LABELS + 1];
	int			n_used = 0;
	UserSeq    *seq;
	int64	   *items;
	TimestampTz *times;
	uint8	   *codes;

	UsCheckEventCount(n);
	Assert(n_labels <= USERSEQ_MAX_LABELS);

	/* keep only labels some event uses, in bytewise order: the canonical label table */
	if (n_labels > 0)
	{
		memset(used, 0, sizeof(bool) * (n_labels + 1));
		for (int32 i = 0; i < n; i++)
			used[events[i].code] = true;
		for (int l = 0; l < n_labels; l++)
			if (used[l + 1])
				order[n_used++] = &labels[l];
		/* a handful of labels is the common case: insertion sort, no qsort call */
		if (n_used <= 16)
		{
			for (int i = 1; i < n_used; i++)
			{
				const UsLabel *x = order[i];
				int			j = i;

				for (; j > 0 && UsLabelCmp(order[j - 1], x) > 0; j--)
					order[j] = order[j - 1];
				order[j] = x;
			}
		}
		else
			qsort(order, n_used, sizeof(UsLabel *), UsLabelPtrCmp);
		rank[0] = 0;
		for (int r = 0; r < n_used; r++)
			rank[(order[r] - labels) + 1] = r + 1;
		for (int32 i = 0; i < n; i++)
			events[i].code = rank[events[i].code];
	}
	if (!sorted)
		us_event_sort(events, n);

	seq = UsSeqAlloc(n, order, n_used);
	items = (int64 *) UserSeqItems(seq);
	times = (TimestampTz *) UserSeqTimes(seq);
	codes = (uint8 *) UserSeqBehaviors(seq);
	for (int32 i = 0; i < n; i++)
	{
		items[i] = events[i].item;
		times[i] = events[i].time;
		codes[i] = (uint8) events[i].code;
	}
	return seq;
}

const char *
UserSeqLabel(const UserSeq *seq, int i, int *len)
{
	const uint8 *p = UserSeqBehaviors(seq) + seq->n_events;

	Assert(i >= 0 && i < seq->n_labels);
	for (int j = 0; j < i; j++)
		p += 1 + p[0];
	*len = p[0];
	return (const char *) p + 1;
}

void
UsSeqLabels(const UserSeq *seq, UsLabel *labels)
{
	const uint8 *p = UserSeqBehaviors(seq) + seq->n_events;

	for (int i = 0; i < seq->n_labels; i++)
	{
		labels[i].len = p[0];
		labels[i].data = (const char *) p + 1;
		p += 1 + p[0];
	}
}

UserSeq *
UserSeqBuild(int32 n, const int64 *items, const TimestampTz *times,
			 const char *const *behaviors)
{
	UsLabelSet	set = {0};
	UsEvent    *events;

	if (n < 0)
		elog(ERROR, "negative userseq event count %d. Please report a bug.", n);
	UsCheckEventCount(n);
	events = palloc(sizeof(UsEvent) * Max(n, 1));
	for (int32 i = 0; i < n; i++)
	{
		UsCheckTime(times[i]);
		events[i].time = times[i];
		events[i].item = items[i];
		events[i].pad = 0;
		if (behaviors != NULL && behaviors[i] != NULL)
			events[i].code = UsLabelIntern(&set, behaviors[i], strlen(behaviors[i]),
										   CurrentMemoryContext, false);
		else
			events[i].code = 0;
	}
	return UsSeqAssemble(events, n, set.labels, set.n, false);
}

/*
 * Copies events [lo, hi) of seq that mask allows (mask NULL: all) into a new value, keeping
 * only the labels still used. Order is kept, so no sort is needed.
 */
static UserSeq *
UsSeqSelect(const UserSeq *seq, const bool *mask, int32 lo, int32 hi)
{
	UsLabel		labels[USERSEQ_MAX_LABELS];
	const UsLabel *kept[USERSEQ_MAX_LABELS] = {0};
	uint8		remap[USERSEQ_MAX_LABELS + 1];
	bool		used[USERSEQ_MAX_LABELS + 1];
	const int64 *items = UserSeqItems(seq);
	const TimestampTz *times = UserSeqTimes(seq);
	const uint8 *codes = UserSeqBehaviors(seq);
	int32		m = 0;
	int			n_kept = 0;
	UserSeq    *res;
	int64	   *ritems;
	TimestampTz *rtimes;
	uint8	   *rcodes;
	int32		j = 0;

	memset(used, 0, sizeof(used));
	for (int32 i = lo; i < hi; i++)
		if (mask == NULL || mask[i])
		{
			m++;
			used[codes[i]] = true;
		}
	UsSeqLabels(seq, labels);
	remap[0] = 0;
	for (int l = 0; l < seq->n_labels; l++)
		if (used[l + 1])
		{
			kept[n_kept] = &labels[l];
			remap[l + 1] = ++n_kept;
		}

	res = UsSeqAlloc(m, kept, n_kept);
	ritems = (int64 *) UserSeqItems(res);
	rtimes = (TimestampTz *) UserSeqTimes(res);
	rcodes = (uint8 *) UserSeqBehaviors(res);
	for (int32 i = lo; i < hi; i++)
		if (mask == NULL || mask[i])
		{
			ritems[j] = items[i];
			rtimes[j] = times[i];
			rcodes[j] = remap[codes[i]];
			j++;
		}
	return res;
}

/* ------------------------------------------------------------------ text I/O */

typedef struct UsParser
{
	const char *input;			/* whole literal, for messages */
	const char *p;
} UsParser;

static void
UsSyntaxError(UsParser *ps, const char *detail)
{
	ereport(ERROR,
			(errcode(ERRCODE_INVALID_TEXT_REPRESENTATION),
			 errmsg("invalid input syntax for type userseq: \"%s\"", ps->input),
			 errdetail("%s", detail)));
}

static void
UsSkipSpace(UsParser *ps)
{
	while (scanner_isspace(*ps->p))
		ps->p++;
}

static bool
UsIsDelimiter(char c)
{
	return c == '\0' || c == ',' || c == '[' || c == ']' || c == '"' || c == '\\' ||
		c == '@' || scanner_isspace(c);
}

/* A quoted string ("..." with backslash escapes) or an unquoted token, into out. */
static void
UsParseToken(UsParser *ps, StringInfo out, bool allow_at, const char *what)
{
	resetStringInfo(out);
	if (*ps->p == '"')
	{
		ps->p++;
		for (;;)
		{
			char		c = *ps->p;

			if (c == '\0')
				UsSyntaxError(ps, psprintf("Unterminated quoted %s.", what));
			ps->p++;
			if (c == '"')
				break;
			if (c == '\\')
			{
				if (*ps->p == '\0')
					UsSyntaxError(ps, psprintf("Unterminated quoted %s.", what));
				c = *ps->p++;
			}
			appendStringInfoChar(out, c);
		}
		return;
	}
	while (!UsIsDelimiter(*ps->p) || (allow_at && *ps->p == '@'))
		appendStringInfoChar(out, *ps->p++);
	if (out->len == 0)
		UsSyntaxError(ps, psprintf("Expected a %s at offset %d.", what, (int) (ps->p - ps->input)));
}

static int64
UsParseItem(UsParser *ps)
{
	const char *start = ps->p;
	bool		neg = false;
	uint64		v = 0;

	if (*ps->p == '+' || *ps->p == '-')
		neg = (*ps->p++ == '-');
	if (!isdigit((unsigned char) *ps->p))
		UsSyntaxError(ps, psprintf("Expected an item id (bigint) at offset %d.", (int) (start - ps->input)));
	while (isdigit((unsigned char) *ps->p))
	{
		int			d = *ps->p++ - '0';

		if (v > (PG_UINT64_MAX - d) / 10)
			goto overflow;
		v = v * 10 + d;
	}
	if (neg)
	{
		if (v > (uint64) PG_INT64_MAX + 1)
			goto overflow;
		return (int64) (0 - v);
	}
	if (v > (uint64) PG_INT64_MAX)
		goto overflow;
	return (int64) v;

overflow:
	while (isdigit((unsigned char) *ps->p))
		ps->p++;
	ereport(ERROR,
			(errcode(ERRCODE_NUMERIC_VALUE_OUT_OF_RANGE),
			 errmsg("value \"%.*s\" is out of range for type bigint", (int) (ps->p - start), start)));
	return 0;					/* keep compiler quiet */
}

/* Parses text in the format described at the top of the file. */
FUNCTION_PREFIX PG_FUNCTION_INFO_V1(userseq_in);
Datum
userseq_in(PG_FUNCTION_ARGS)
{
	char	   *str = PG_GETARG_CSTRING(0);
	UsParser	ps = {str, str};
	StringInfoData tok;
	int32		n = 0;
	int32		cap = 16;
	int64	   *items = palloc(sizeof(int64) * cap);
	TimestampTz *times = palloc(sizeof(TimestampTz) * cap);
	char	  **labels = palloc(sizeof(char *) * cap);

	initStringInfo(&tok);
	UsSkipSpace(&ps);
	if (*ps.p != '[')
		UsSyntaxError(&ps, "A userseq literal must start with \"[\".");
	ps.p++;
	UsSkipSpace(&ps);
	if (*ps.p == ']')
		ps.p++;
	else
	{
		for (;;)
		{
			if (n == cap)
			{
				UsCheckEventCount((int64) n + 1);
				cap = Min(cap * 2, USERSEQ_MAX_EVENTS);
				items = repalloc(items, sizeof(int64) * cap);
				times = repalloc(times, sizeof(TimestampTz) * cap);
				labels = repalloc(labels, sizeof(char *) * cap);
			}
			UsSkipSpace(&ps);
			items[n] = UsParseItem(&ps);
			UsSkipSpace(&ps);
			if (*ps.p != '@')
				UsSyntaxError(&ps, psprintf("Expected \"@\" after the item at offset %d.", (int) (ps.p - str)));
			ps.p++;
			UsSkipSpace(&ps);
			UsParseToken(&ps, &tok, false, "timestamp");
			times[n] = DatumGetTimestampTz(DirectFunctionCall3(timestamptz_in,
															   CStringGetDatum(tok.data),
															   ObjectIdGetDatum(InvalidOid),
															   Int32GetDatum(-1)));
			UsCheckTime(times[n]);
			labels[n] = NULL;
			if (scanner_isspace(*ps.p))
			{
				UsSkipSpace(&ps);
				if (*ps.p != ',' && *ps.p != ']')
				{
					UsParseToken(&ps, &tok, false, "behavior label");
					UsCheckLabel(tok.data, tok.len);
					labels[n] = pnstrdup(tok.data, tok.len);
				}
			}
			n++;
			UsSkipSpace(&ps);
			if (*ps.p == ',')
			{
				ps.p++;
				continue;
			}
			if (*ps.p == ']')
			{
				ps.p++;
				break;
			}
			if (*ps.p == '\0')
				UsSyntaxError(&ps, "Missing \"]\" at the end.");
			UsSyntaxError(&ps, psprintf("Expected \",\" or \"]\" at offset %d (quote timestamps that contain spaces).",
										(int) (ps.p - str)));
		}
	}
	UsSkipSpace(&ps);
	if (*ps.p != '\0')
		UsSyntaxError(&ps, "Junk after closing right bracket.");

	PG_RETURN_USERSEQ_P(UserSeqBuild(n, items, times, (const char *const *) labels));
}

/* UTC ISO 8601 with "Z", independent of TimeZone and DateStyle; quoted when BC. */
static void
UsAppendTime(StringInfo out, TimestampTz t)
{
	struct pg_tm tm;
	fsec_t		fsec;
	char		buf[MAXDATELEN + 1];
	int			len;

	if (timestamp2tm(t, NULL, &tm, &fsec, NULL, NULL) != 0)
		ereport(ERROR,
				(errcode(ERRCODE_DATETIME_VALUE_OUT_OF_RANGE),
				 errmsg("timestamp out of range")));
	EncodeDateTime(&tm, fsec, false, 0, NULL, USE_XSD_DATES, buf);
	len = strlen(buf);
	if (len > 3 && strcmp(buf + len - 3, " BC") == 0)
		appendStringInfo(out, "\"%.*sZ BC\"", len - 3, buf);
	else
		appendStringInfo(out, "%sZ", buf);
}

static void
UsAppendLabel(StringInfo out, const char *data, int len)
{
	bool		quote = false;

	for (int i = 0; i < len; i++)
		if (UsIsDelimiter(data[i]))
			quote = true;
	if (!quote)
	{
		appendBinaryStringInfo(out, data, len);
		return;
	}
	appendStringInfoChar(out, '"');
	for (int i = 0; i < len; i++)
	{
		if (data[i] == '"' || data[i] == '\\')
			appendStringInfoChar(out, '\\');
		appendStringInfoChar(out, data[i]);
	}
	appendStringInfoChar(out, '"');
}

/* Prints the text format; timestamps in UTC so the output does not depend on the session. */
FUNCTION_PREFIX PG_FUNCTION_INFO_V1(userseq_out);
Datum
userseq_out(PG_FUNCTION_ARGS)
{
	UserSeq    *seq = PG_GETARG_USERSEQ_P(0);
	UsLabel		labels[USERSEQ_MAX_LABELS];
	const int64 *items = UserSeqItems(seq);
	const TimestampTz *times = UserSeqTimes(seq);
	const uint8 *codes = UserSeqBehaviors(seq);
	StringInfoData out;

	UsSeqLabels(seq, labels);
	initStringInfo(&out);
	appendStringInfoChar(&out, '[');
	for (int32 i = 0; i < seq->n_events; i++)
	{
		if (i > 0)
			appendStringInfoString(&out, ", ");
		appendStringInfo(&out, INT64_FORMAT "@", items[i]);
		UsAppendTime(&out, times[i]);
		if (codes[i] != 0)
		{
			appendStringInfoChar(&out, ' ');
			UsAppendLabel(&out, labels[codes[i] - 1].data, labels[codes[i] - 1].len);
		}
	}
	appendStringInfoChar(&out, ']');
	PG_FREE_IF_COPY(seq, 0);
	PG_RETURN_CSTRING(out.data);
}

/* ------------------------------------------------------------------ binary I/O */

/*
 * Binary format (network byte order): int32 n_events, uint16 n_labels, uint16 flags (0),
 * int32 reserved (0); n_labels labels as int32 length + text in the client encoding, in
 * bytewise order; int64 items[n]; int64 times[n] (microseconds since 2000-01-01 UTC);
 * uint8 behaviors[n] (0 = none, i = label i). Mirrors the stored canonical form.
 */
static void
UsBinaryError(const char *msg)
{
	ereport(ERROR,
			(errcode(ERRCODE_INVALID_BINARY_REPRESENTATION),
			 errmsg("invalid binary userseq: %s", msg)));
}

/* Reads the binary format; validates every count before allocating and requires canonical form. */
FUNCTION_PREFIX PG_FUNCTION_INFO_V1(userseq_recv);
Datum
userseq_recv(PG_FUNCTION_ARGS)
{
	StringInfo	buf = (StringInfo) PG_GETARG_POINTER(0);
	int32		n;
	int			n_labels;
	UsLabel		labels[USERSEQ_MAX_LABELS];
	const UsLabel *order[USERSEQ_MAX_LABELS];
	bool		used[USERSEQ_MAX_LABELS + 1];
	UserSeq    *seq;
	int64	   *items;
	TimestampTz *times;
	uint8	   *codes;

	n = (int32) pq_getmsgint(buf, 4);
	n_labels = (int) pq_getmsgint(buf, 2);
	if (pq_getmsgint(buf, 2) != 0 || pq_getmsgint(buf, 4) != 0)
		UsBinaryError("reserved fields must be zero");
	if (n < 0)
		UsBinaryError("negative event count");
	UsCheckEventCount(n);
	if (n_labels > USERSEQ_MAX_LABELS || n_labels > n)
		UsBinaryError("too many behavior labels");

	for (int l = 0; l < n_labels; l++)
	{
		int32		rawlen = (int32) pq_getmsgint(buf, 4);
		int			len;

		if (rawlen <= 0 || rawlen > buf->len - buf->cursor ||
			rawlen > USERSEQ_MAX_LABEL_LEN * MAX_CONVERSION_GROWTH)
			UsBinaryError("bad behavior label length");
		labels[l].data = pq_getmsgtext(buf, rawlen, &len);
		labels[l].len = len;
		if (len <= 0 || len > USERSEQ_MAX_LABEL_LEN || memchr(labels[l].data, '\0', len) != NULL)
			UsBinaryError("bad behavior label");
		if (l > 0 && UsLabelCmp(&labels[l - 1], &labels[l]) >= 0)
			UsBinaryError("behavior labels not distinct and sorted");
		order[l] = &labels[l];
	}

	if ((int64) buf->len - buf->cursor < (int64) n * US_EVENT_BYTES)
		UsBinaryError("message shorter than its event count");

	seq = UsSeqAlloc(n, order, n_labels);
	items = (int64 *) UserSeqItems(seq);
	times = (TimestampTz *) UserSeqTimes(seq);
	codes = (uint8 *) UserSeqBehaviors(seq);
	for (int32 i = 0; i < n; i++)
		items[i] = (int64) pq_getmsgint64(buf);
	for (int32 i = 0; i < n; i++)
	{
		times[i] = (TimestampTz) pq_getmsgint64(buf);
		if (TIMESTAMP_NOT_FINITE(times[i]) || !IS_VALID_TIMESTAMP(times[i]))
			UsBinaryError("timestamp not finite or out of range");
	}
	memset(used, 0, sizeof(used));
	for (int32 i = 0; i < n; i++)
	{
		codes[i] = (uint8) pq_getmsgbyte(buf);
		if (codes[i] > n_labels)
			UsBinaryError("behavior code refers to no label");
		used[codes[i]] = true;
		if (i > 0)
		{
			UsEvent		a = {times[i - 1], items[i - 1], codes[i - 1], 0};
			UsEvent		b = {times[i], items[i], codes[i], 0};

			if (UsEventCmp(&a, &b) > 0)
				UsBinaryError("events not sorted by time, item, label");
		}
	}
	for (int l = 0; l < n_labels; l++)
		if (!used[l + 1])
			UsBinaryError("unused behavior label");

	PG_RETURN_USERSEQ_P(seq);
}

/* Writes the binary format described above userseq_recv. */
FUNCTION_PREFIX PG_FUNCTION_INFO_V1(userseq_send);
Datum
userseq_send(PG_FUNCTION_ARGS)
{
	UserSeq    *seq = PG_GETARG_USERSEQ_P(0);
	UsLabel		labels[USERSEQ_MAX_LABELS];
	const int64 *items = UserSeqItems(seq);
	const TimestampTz *times = UserSeqTimes(seq);
	const uint8 *codes = UserSeqBehaviors(seq);
	StringInfoData buf;

	UsSeqLabels(seq, labels);
	pq_begintypsend(&buf);
	pq_sendint32(&buf, seq->n_events);
	pq_sendint16(&buf, seq->n_labels);
	pq_sendint16(&buf, 0);
	pq_sendint32(&buf, 0);
	for (int l = 0; l < seq->n_labels; l++)
		pq_sendcountedtext(&buf, labels[l].data, labels[l].len, false);
	for (int32 i = 0; i < seq->n_events; i++)
		pq_sendint64(&buf, items[i]);
	for (int32 i = 0; i < seq->n_events; i++)
		pq_sendint64(&buf, times[i]);
	for (int32 i = 0; i < seq->n_events; i++)
		pq_sendbyte(&buf, codes[i]);
	PG_FREE_IF_COPY(seq, 0);
	PG_RETURN_BYTEA_P(pq_endtypsend(&buf));
}

/* ------------------------------------------------------------------ arrays */

/* Number of elements of a one-dimensional (or empty) array; what names it in errors. */
static int32
UsArrayLength(ArrayType *a, const char *what)
{
	int			nitems;

	if (ARR_NDIM(a) > 1)
		ereport(ERROR,
				(errcode(ERRCODE_ARRAY_SUBSCRIPT_ERROR),
				 errmsg("%s array must be one-dimensional", what)));
	nitems = ArrayGetNItems(ARR_NDIM(a), ARR_DIMS(a));
	UsCheckEventCount(nitems);
	return nitems;
}

static void
UsNoNulls(ArrayType *a, const char *what)
{
	if (array_contains_nulls(a))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("%s array must not contain nulls", what)));
}

/* userseq(bigint[]): items only; event i gets the synthetic time 1970-01-01 00:00:00Z + i seconds. */
FUNCTION_PREFIX PG_FUNCTION_INFO_V1(userseq_from_items);
Datum
userseq_from_items(PG_FUNCTION_ARGS)
{
	ArrayType  *a = PG_GETARG_ARRAYTYPE_P(0);
	int32		n = UsArrayLength(a, "items");
	TimestampTz *times = palloc(sizeof(TimestampTz) * Max(n, 1));

	UsNoNulls(a, "items");
	for (int32 i = 0; i < n; i++)
		times[i] = US_UNIX_EPOCH_TS + (int64) i * USECS_PER_SEC;
	PG_RETURN_USERSEQ_P(UserSeqBuild(n, (const int64 *) ARR_DATA_PTR(a), times, NULL));
}

/* userseq(items, times, behaviors): parallel arrays; NULL behaviors (array or element) = unlabelled. */
FUNCTION_PREFIX PG_FUNCTION_INFO_V1(userseq_from_arrays);
Datum
userseq_from_arrays(PG_FUNCTION_ARGS)
{
	ArrayType  *ia;
	ArrayType  *ta;
	int32		n;
	char	  **labels = NULL;

	/* NULL items or times: NULL result, as a STRICT function would give */
	if (PG_ARGISNULL(0) || PG_ARGISNULL(1))
		PG_RETURN_NULL();
	ia = PG_GETARG_ARRAYTYPE_P(0);
	ta = PG_GETARG_ARRAYTYPE_P(1);
	n = UsArrayLength(ia, "items");
	if (UsArrayLength(ta, "times") != n)
		ereport(ERROR,
				(errcode(ERRCODE_ARRAY_SUBSCRIPT_ERROR),
				 errmsg("items and times arrays must have the same length"),
				 errdetail("items has %d elements, times has %d.", n, UsArrayLength(ta, "times"))));
	UsNoNulls(ia, "items");
	UsNoNulls(ta, "times");

	if (PG_NARGS() > 2 && !PG_ARGISNULL(2))
	{
		ArrayType  *ba = PG_GETARG_ARRAYTYPE_P(2);
		Datum	   *elems;
		bool	   *nulls;
		int			nb;

		if (UsArrayLength(ba, "behaviors") != n)
			ereport(ERROR,
					(errcode(ERRCODE_ARRAY_SUBSCRIPT_ERROR),
					 errmsg("items and behaviors arrays must have the same length"),
					 errdetail("items has %d elements, behaviors has %d.", n, UsArrayLength(ba, "behaviors"))));
		deconstruct_array(ba, TEXTOID, -1, false, TYPALIGN_INT, &elems, &nulls, &nb);
		labels = palloc(sizeof(char *) * Max(n, 1));
		for (int i = 0; i < nb; i++)
			labels[i] = nulls[i] ? NULL : text_to_cstring(DatumGetTextPP(elems[i]));
	}
	PG_RETURN_USERSEQ_P(UserSeqBuild(n, (const int64 *) ARR_DATA_PTR(ia),
									 (const TimestampTz *) ARR_DATA_PTR(ta),
									 (const char *const *) labels));
}

/* Item ids in time order. */
FUNCTION_PREFIX PG_FUNCTION_INFO_V1(userseq_items);
Datum
userseq_items(PG_FUNCTION_ARGS)
{
	UserSeq    *seq = PG_GETARG_USERSEQ_P(0);

	PG_RETURN_ARRAYTYPE_P(construct_array((Datum *) UserSeqItems(seq), seq->n_events,
										  INT8OID, sizeof(int64), FLOAT8PASSBYVAL, TYPALIGN_DOUBLE));
}

/* Event timestamps in time order. */
FUNCTION_PREFIX PG_FUNCTION_INFO_V1(userseq_times);
Datum
userseq_times(PG_FUNCTION_ARGS)
{
	UserSeq    *seq = PG_GETARG_USERSEQ_P(0);

	PG_RETURN_ARRAYTYPE_P(construct_array((Datum *) UserSeqTimes(seq), seq->n_events,
										  TIMESTAMPTZOID, sizeof(TimestampTz), FLOAT8PASSBYVAL,
										  TYPALIGN_DOUBLE));
}

/* Behaviour labels in time order; NULL for unlabelled events. */
FUNCTION_PREFIX PG_FUNCTION_INFO_V1(userseq_behaviors);
Datum
userseq_behaviors(PG_FUNCTION_ARGS)
{
	UserSeq    *seq = PG_GETARG_USERSEQ_P(0);
	int32		n = seq->n_events;
	UsLabel		labels[USERSEQ_MAX_LABELS];
	Datum		texts[USERSEQ_MAX_LABELS + 1];
	const uint8 *codes = UserSeqBehaviors(seq);
	Datum	   *elems = palloc(sizeof(Datum) * Max(n, 1));
	bool	   *nulls = palloc(sizeof(bool) * Max(n, 1));
	int			dims[1] = {n};
	int			lbs[1] = {1};

	if (n == 0)
		PG_RETURN_ARRAYTYPE_P(construct_empty_array(TEXTOID));
	UsSeqLabels(seq, labels);
	texts[0] = (Datum) 0;
	for (int l = 0; l < seq->n_labels; l++)
		texts[l + 1] = PointerGetDatum(cstring_to_text_with_len(labels[l].data, labels[l].len));
	for (int32 i = 0; i < n; i++)
	{
		elems[i] = texts[codes[i]];
		nulls[i] = codes[i] == 0;
	}
	PG_RETURN_ARRAYTYPE_P(construct_md_array(elems, nulls, 1, dims, lbs, TEXTOID, -1, false,
											 TYPALIGN_INT));
}

/* ------------------------------------------------------------------ analyst functions */

/* Number of events. */
FUNCTION_PREFIX PG_FUNCTION_INFO_V1(userseq_length);
Datum
userseq_length(PG_FUNCTION_ARGS)
{
	UserSeq    *seq = PG_GETARG_USERSEQ_P(0);

	PG_RETURN_INT32(seq->n_events);
}

static int32
UsCountArg(FunctionCallInfo fcinfo, int argno)
{
	int32		k = PG_GETARG_INT32(argno);

	if (k < 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("number of events must not be negative")));
	return k;
}

/* The first n events (all when the sequence is shorter). */
FUNCTION_PREFIX PG_FUNCTION_INFO_V1(userseq_first);
Datum
userseq_first(PG_FUNCTION_ARGS)
{
	UserSeq    *seq = PG_GETARG_USERSEQ_P(0);
	int32		k = UsCountArg(fcinfo, 1);

	PG_RETURN_USERSEQ_P(UsSeqSelect(seq, NULL, 0, Min(k, seq->n_events)));
}

/* The last n events (all when the sequence is shorter). */
FUNCTION_PREFIX PG_FUNCTION_INFO_V1(userseq_last);
Datum
userseq_last(PG_FUNCTION_ARGS)
{
	UserSeq    *seq = PG_GETARG_USERSEQ_P(0);
	int32		k = UsCountArg(fcinfo, 1);

	PG_RETURN_USERSEQ_P(UsSeqSelect(seq, NULL, seq->n_events - Min(k, seq->n_events), seq->n_events));
}

/* Index of the first event with time >= t (n when none). */
static int32
UsLowerBound(const UserSeq *seq, TimestampTz t)
{
	const TimestampTz *times = UserSeqTimes(seq);
	int32		lo = 0;
	int32		hi = seq->n_events;

	while (lo < hi)
	{
		int32		mid = lo + (hi - lo) / 2;

		if (times[mid] < t)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

/* Events strictly before ts. */
FUNCTION_PREFIX PG_FUNCTION_INFO_V1(userseq_before);
Datum
userseq_before(PG_FUNCTION_ARGS)
{
	UserSeq    *seq = PG_GETARG_USERSEQ_P(0);

	PG_RETURN_USERSEQ_P(UsSeqSelect(seq, NULL, 0, UsLowerBound(seq, PG_GETARG_TIMESTAMPTZ(1))));
}

/* Events at or after ts. */
FUNCTION_PREFIX PG_FUNCTION_INFO_V1(userseq_since);
Datum
userseq_since(PG_FUNCTION_ARGS)
{
	UserSeq    *seq = PG_GETARG_USERSEQ_P(0);

	PG_RETURN_USERSEQ_P(UsSeqSelect(seq, NULL, UsLowerBound(seq, PG_GETARG_TIMESTAMPTZ(1)), seq->n_events));
}

/* Events in the half-open range [from, to); empty when to <= from. */
FUNCTION_PREFIX PG_FUNCTION_INFO_V1(userseq_between);
Datum
userseq_between(PG_FUNCTION_ARGS)
{
	UserSeq    *seq = PG_GETARG_USERSEQ_P(0);
	int32		lo = UsLowerBound(seq, PG_GETARG_TIMESTAMPTZ(1));
	int32		hi = UsLowerBound(seq, PG_GETARG_TIMESTAMPTZ(2));

	PG_RETURN_USERSEQ_P(UsSeqSelect(seq, NULL, lo, Max(lo, hi)));
}

/*
 * Per label code (0 = unlabelled), whether it is listed in the text[] argument; a NULL
 * element lists unlabelled events.
 */
static void
UsMatchLabels(const UserSeq *seq, ArrayType *list, bool *match)
{
	UsLabel		labels[USERSEQ_MAX_LABELS];
	Datum	   *elems;
	bool	   *nulls;
	int			ne;

	deconstruct_array(list, TEXTOID, -1, false, TYPALIGN_INT, &elems, &nulls, &ne);
	UsSeqLabels(seq, labels);
	memset(match, 0, sizeof(bool) * (USERSEQ_MAX_LABELS + 1));
	for (int e = 0; e < ne; e++)
	{
		text	   *t;

		if (nulls[e])
		{
			match[0] = true;
			continue;
		}
		t = DatumGetTextPP(elems[e]);
		for (int l = 0; l < seq->n_labels; l++)
			if (labels[l].len == VARSIZE_ANY_EXHDR(t) &&
				memcmp(labels[l].data, VARDATA_ANY(t), labels[l].len) == 0)
				match[l + 1] = true;
	}
}

static Datum
UsKeepOrDrop(FunctionCallInfo fcinfo, bool keep)
{
	UserSeq    *seq = PG_GETARG_USERSEQ_P(0);
	ArrayType  *list = PG_GETARG_ARRAYTYPE_P(1);
	bool		match[USERSEQ_MAX_LABELS + 1];
	const uint8 *codes = UserSeqBehaviors(seq);
	bool	   *mask = palloc(sizeof(bool) * Max(seq->n_events, 1));

	UsMatchLabels(seq, list, match);
	for (int32 i = 0; i < seq->n_events; i++)
		mask[i] = match[codes[i]] == keep;
	PG_RETURN_USERSEQ_P(UsSeqSelect(seq, mask, 0, seq->n_events));
}

/* Only events whose behaviour is listed (a NULL element keeps unlabelled events). */
FUNCTION_PREFIX PG_FUNCTION_INFO_V1(userseq_keep);
Datum
userseq_keep(PG_FUNCTION_ARGS)
{
	return UsKeepOrDrop(fcinfo, true);
}

/* All events except those whose behaviour is listed (a NULL element drops unlabelled events). */
FUNCTION_PREFIX PG_FUNCTION_INFO_V1(userseq_drop);
Datum
userseq_drop(PG_FUNCTION_ARGS)
{
	return UsKeepOrDrop(fcinfo, false);
}

/* Number of events labelled with the given behaviour. */
FUNCTION_PREFIX PG_FUNCTION_INFO_V1(userseq_count);
Datum
userseq_count(PG_FUNCTION_ARGS)
{
	UserSeq    *seq = PG_GETARG_USERSEQ_P(0);
	text	   *b = PG_GETARG_TEXT_PP(1);
	UsLabel		labels[USERSEQ_MAX_LABELS];
	const uint8 *codes = UserSeqBehaviors(seq);
	int			code = -1;
	int32		count = 0;

	UsSeqLabels(seq, labels);
	for (int l = 0; l < seq->n_labels; l++)
		if (labels[l].len == VARSIZE_ANY_EXHDR(b) &&
			memcmp(labels[l].data, VARDATA_ANY(b), labels[l].len) == 0)
			code = l + 1;
	if (code > 0)
		for (int32 i = 0; i < seq->n_events; i++)
			count += codes[i] == code;
	PG_RETURN_INT32(count);
}

/* An interval as microseconds: days count as 24 hours; months are refused (not a fixed length). */
static int64
UsIntervalUsecs(Interval *iv, const char *what)
{
	int64		usecs;

	if (iv->month != 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("%s interval must not contain months or years", what),
				 errhint("Use days or hours; a month has no fixed length.")));
	if (pg_mul_s64_overflow((int64) iv->day, USECS_PER_DAY, &usecs) ||
		pg_add_s64_overflow(usecs, iv->time, &usecs))
		ereport(ERROR,
				(errcode(ERRCODE_DATETIME_VALUE_OUT_OF_RANGE),
				 errmsg("%s interval out of range", what)));
	if (usecs < 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("%s interval must not be negative", what)));
	return usecs;
}

/*
 * Collapses repeats: drops an event when the event just before it has the same item and
 * behaviour and it lies within `within` of the first event of that run (which is kept).
 */
FUNCTION_PREFIX PG_FUNCTION_INFO_V1(userseq_dedup);
Datum
userseq_dedup(PG_FUNCTION_ARGS)
{
	UserSeq    *seq = PG_GETARG_USERSEQ_P(0);
	int64		within = UsIntervalUsecs(PG_GETARG_INTERVAL_P(1), "dedup");
	const int64 *items = UserSeqItems(seq);
	const TimestampTz *times = UserSeqTimes(seq);
	const uint8 *codes = UserSeqBehaviors(seq);
	bool	   *mask = palloc(sizeof(bool) * Max(seq->n_events, 1));
	TimestampTz kept_time = 0;

	for (int32 i = 0; i < seq->n_events; i++)
	{
		bool		repeat = i > 0 && items[i] == items[i - 1] && codes[i] == codes[i - 1] &&
			UsWithin(kept_time, times[i], within);

		mask[i] = !repeat;
		if (!repeat)
			kept_time = times[i];
	}
	PG_RETURN_USERSEQ_P(UsSeqSelect(seq, mask, 0, seq->n_events));
}

typedef struct UsSessionsState
{
	UserSeq    *seq;
	int64		gap;
	int32		pos;
} UsSessionsState;

/*
 * Splits into sessions: a new session starts where the time since the previous event exceeds
 * gap. Returns the sessions in time order (none for an empty sequence).
 */
FUNCTION_PREFIX PG_FUNCTION_INFO_V1(userseq_sessions);
Datum
userseq_sessions(PG_FUNCTION_ARGS)
{
	FuncCallContext *funcctx;
	UsSessionsState *st;
	const TimestampTz *times;
	int32		end;

	if (SRF_IS_FIRSTCALL())
	{
		MemoryContext oldcxt;

		funcctx = SRF_FIRSTCALL_INIT();
		oldcxt = MemoryContextSwitchTo(funcctx->multi_call_memory_ctx);
		st = palloc(sizeof(UsSessionsState));
		st->gap = UsIntervalUsecs(PG_GETARG_INTERVAL_P(1), "session gap");
		/* a private copy: the value must outlive this call */
		st->seq = (UserSeq *) PG_DETOAST_DATUM_COPY(PG_GETARG_DATUM(0));
		st->pos = 0;
		funcctx->user_fctx = st;
		MemoryContextSwitchTo(oldcxt);
	}
	funcctx = SRF_PERCALL_SETUP();
	st = funcctx->user_fctx;
	if (st->pos >= st->seq->n_events)
		SRF_RETURN_DONE(funcctx);

	times = UserSeqTimes(st->seq);
	end = st->pos + 1;
	while (end < st->seq->n_events && UsWithin(times[end - 1], times[end], st->gap))
		end++;
	{
		UserSeq    *session = UsSeqSelect(st->seq, NULL, st->pos, end);

		st->pos = end;
		SRF_RETURN_NEXT(funcctx, PointerGetDatum(session));
	}
}

/* Merges two sequences into one in time order (the || operator). */
FUNCTION_PREFIX PG_FUNCTION_INFO_V1(userseq_concat);
Datum
userseq_concat(PG_FUNCTION_ARGS)
{
	UserSeq    *a = PG_GETARG_USERSEQ_P(0);
	UserSeq    *b = PG_GETARG_USERSEQ_P(1);
	int64		n = (int64) a->n_events + b->n_events;
	UsLabelSet	set = {0};
	UsEvent    *events;
	int32		k = 0;

	UsCheckEventCount(n);
	events = palloc(sizeof(UsEvent) * Max(n, 1));
	for (int s = 0; s < 2; s++)
	{
		UserSeq    *seq = s == 0 ? a : b;
		UsLabel		labels[USERSEQ_MAX_LABELS];
		int			codes_map[USERSEQ_MAX_LABELS + 1];
		const int64 *items = UserSeqItems(seq);
		const TimestampTz *times = UserSeqTimes(seq);
		const uint8 *codes = UserSeqBehaviors(seq);

		UsSeqLabels(seq, labels);
		codes_map[0] = 0;
		for (int l = 0; l < seq->n_labels; l++)
			codes_map[l + 1] = UsLabelIntern(&set, labels[l].data, labels[l].len,
											 CurrentMemoryContext, false);
		for (int32 i = 0; i < seq->n_events; i++)
		{
			events[k].time = times[i];
			events[k].item = items[i];
			events[k].code = codes_map[codes[i]];
			events[k].pad = 0;
			k++;
		}
	}
	PG_RETURN_USERSEQ_P(UsSeqAssemble(events, k, set.labels, set.n, false));
}

/* ------------------------------------------------------------------ equality and hashing */

/* The stored form is canonical, so equal sequences have equal bytes. */
static bool
UsSeqEqual(FunctionCallInfo fcinfo)
{
	UserSeq    *a = PG_GETARG_USERSEQ_P(0);
	UserSeq    *b = PG_GETARG_USERSEQ_P(1);
	bool		eq = VARSIZE(a) == VARSIZE(b) && memcmp(a, b, VARSIZE(a)) == 0;

	PG_FREE_IF_COPY(a, 0);
	PG_FREE_IF_COPY(b, 1);
	return eq;
}

/* Same events (items, times and labels). */
FUNCTION_PREFIX PG_FUNCTION_INFO_V1(userseq_eq);
Datum
userseq_eq(PG_FUNCTION_ARGS)
{
	PG_RETURN_BOOL(UsSeqEqual(fcinfo));
}

/* Not the same events. */
FUNCTION_PREFIX PG_FUNCTION_INFO_V1(userseq_ne);
Datum
userseq_ne(PG_FUNCTION_ARGS)
{
	PG_RETURN_BOOL(!UsSeqEqual(fcinfo));
}

/* Hash of the canonical bytes, for hash joins, hash aggregation and hash indexes. */
FUNCTION_PREFIX PG_FUNCTION_INFO_V1(userseq_hash);
Datum
userseq_hash(PG_FUNCTION_ARGS)
{
	UserSeq    *seq = PG_GETARG_USERSEQ_P(0);
	Datum		h = hash_any((unsigned char *) VARDATA(seq), VARSIZE(seq) - VARHDRSZ);

	PG_FREE_IF_COPY(seq, 0);
	return h;
}

/* Seeded 64-bit hash of the canonical bytes (hash partitioning). */
FUNCTION_PREFIX PG_FUNCTION_INFO_V1(userseq_hash_extended);
Datum
userseq_hash_extended(PG_FUNCTION_ARGS)
{
	UserSeq    *seq = PG_GETARG_USERSEQ_P(0);
	Datum		h = hash_any_extended((unsigned char *) VARDATA(seq), VARSIZE(seq) - VARHDRSZ,
									  PG_GETARG_INT64(1));

	PG_FREE_IF_COPY(seq, 0);
	return h;
}
