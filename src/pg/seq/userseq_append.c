/*
 * userseq_append.c: one event added to a sequence without rebuilding it (userseq_append, and
 * the real-time trigger in live/). The result is the canonical value userseq_concat (or the
 * type's input) would build from the same events, with the same checks, but in one copy: the
 * newest event goes at the end without a search, a late event is placed by binary search, no
 * sort runs, and with max_len the oldest events are never copied.
 */
#include "postgres.h"

#include "fmgr.h"
#include "utils/builtins.h"
#include "utils/timestamp.h"

#include "seq/userseq_build.h"
#include "userseq_pg.h"

/* (time, item, code) order of the canonical form; codes compare in label table order. */
static inline int
UsKeyCmp(TimestampTz ta, int64 ia, int ca, TimestampTz tb, int64 ib, int cb)
{
	if (ta != tb)
		return ta < tb ? -1 : 1;
	if (ia != ib)
		return ia < ib ? -1 : 1;
	return (ca > cb) - (ca < cb);
}

UserSeq *
UserSeqAppend(const UserSeq *seq, int64 item, TimestampTz ts, const char *label, int label_len,
			  int32 max_len)
{
	int32		n = seq ? seq->n_events : 0;
	int			nl = seq ? seq->n_labels : 0;
	UsLabel		old_labels[USERSEQ_MAX_LABELS];
	UsLabel		new_label;
	const UsLabel *merged[USERSEQ_MAX_LABELS + 1];
	int			n_merged = 0;
	int			code = 0;		/* the new event's code in the merged label table */
	bool		label_added = false;
	int			rank = 0;		/* where a new label goes among the old ones */
	int			map[USERSEQ_MAX_LABELS + 1];	/* old code -> merged code */
	const int64 *items = seq ? UserSeqItems(seq) : NULL;
	const TimestampTz *times = seq ? UserSeqTimes(seq) : NULL;
	const uint8 *codes = seq ? UserSeqBehaviors(seq) : NULL;
	int32		pos;			/* index of the new event in the merged events */
	int64		total = (int64) n + 1;
	int32		m;
	int32		start;			/* first merged event kept */
	bool		used[USERSEQ_MAX_LABELS + 2];
	const UsLabel *kept[USERSEQ_MAX_LABELS + 1];
	int			final[USERSEQ_MAX_LABELS + 2];	/* merged code -> code of the result */
	int			n_kept = 0;
	UserSeq    *res;
	int64	   *ritems;
	TimestampTz *rtimes;
	uint8	   *rcodes;

	UsCheckTime(ts);
	if (max_len < 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("max_len must be positive"),
				 errhint("Pass NULL to keep every event.")));
	m = (max_len > 0 && total > max_len) ? max_len : (int32) Min(total, (int64) PG_INT32_MAX);
	UsCheckEventCount(m);

	/* the merged label table: the old labels plus the new one in bytewise order */
	if (seq)
		UsSeqLabels(seq, old_labels);
	if (label != NULL)
	{
		int			lo = 0,
					hi = nl;

		UsCheckLabel(label, label_len);
		new_label.data = label;
		new_label.len = label_len;
		while (lo < hi)
		{
			int			mid = (lo + hi) / 2;
			int			c = memcmp(old_labels[mid].data, label, Min(old_labels[mid].len, label_len));

			if (c == 0)
				c = (old_labels[mid].len > label_len) - (old_labels[mid].len < label_len);
			if (c < 0)
				lo = mid + 1;
			else
				hi = mid;
		}
		rank = lo;
		label_added = !(lo < nl && old_labels[lo].len == label_len &&
						memcmp(old_labels[lo].data, label, label_len) == 0);
		code = rank + 1;
	}
	map[0] = 0;
	for (int l = 0; l < nl; l++)
	{
		if (label_added && l == rank)
			merged[n_merged++] = &new_label;
		merged[n_merged++] = &old_labels[l];
		map[l + 1] = n_merged;
	}
	if (label_added && rank == nl)
		merged[n_merged++] = &new_label;

	/* position: at the end unless the event is older than the last one */
	if (n == 0 || UsKeyCmp(times[n - 1], items[n - 1], map[codes[n - 1]],
						   ts, item, code) <= 0)
		pos = n;
	else
	{
		int32		lo = 0,
					hi = n;

		/* after every event that sorts before it or equal to it (upper bound) */
		while (lo < hi)
		{
			int32		mid = lo + (hi - lo) / 2;

			if (UsKeyCmp(times[mid], items[mid], map[codes[mid]], ts, item, code) <= 0)
				lo = mid + 1;
			else
				hi = mid;
		}
		pos = lo;
	}
	start = (int32) (total - m);

	/*
	 * Labels the kept events use, in merged order, renumbered 1..; when nothing is dropped every
	 * label is used (the input is canonical and the new label is the new event's).
	 */
	if (start == 0)
		memset(used, 1, sizeof(bool) * (n_merged + 1));
	else
	{
		memset(used, 0, sizeof(bool) * (n_merged + 1));
		for (int32 k = start; k < total; k++)
			used[k == pos ? code : map[codes[k < pos ? k : k - 1]]] = true;
	}
	final[0] = 0;
	for (int l = 0; l < n_merged; l++)
		if (used[l + 1])
		{
			kept[n_kept] = merged[l];
			final[l + 1] = ++n_kept;
		}
	if (n_kept > USERSEQ_MAX_LABELS)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("userseq cannot hold more than %d distinct behavior labels", USERSEQ_MAX_LABELS)));

	res = UsSeqAlloc(m, kept, n_kept);
	ritems = (int64 *) UserSeqItems(res);
	rtimes = (TimestampTz *) UserSeqTimes(res);
	rcodes = (uint8 *) UserSeqBehaviors(res);
	{
		int32		j = 0;
		int32		a = start <= pos ? start : start - 1;	/* first old event kept */
		int32		before = Max(pos - a, 0);	/* old events kept before the new one */
		bool		identity = !label_added && n_kept == nl;

		if (start <= pos)
		{
			memcpy(ritems, items + a, sizeof(int64) * before);
			memcpy(rtimes, times + a, sizeof(TimestampTz) * before);
			for (int32 k = 0; k < before; k++)
				rcodes[k] = identity ? codes[a + k] : (uint8) final[map[codes[a + k]]];
			j = before;
			ritems[j] = item;
			rtimes[j] = ts;
			rcodes[j] = (uint8) final[code];
			j++;
			a = pos;
		}
		memcpy(ritems + j, items + a, sizeof(int64) * (n - a));
		memcpy(rtimes + j, times + a, sizeof(TimestampTz) * (n - a));
		for (int32 k = 0; k < n - a; k++)
			rcodes[j + k] = identity ? codes[a + k] : (uint8) final[map[codes[a + k]]];
		Assert(j + n - a == m);
	}
	return res;
}

/* userseq_append(seq, item, ts, behavior, max_len): not STRICT, a NULL seq starts a sequence */
FUNCTION_PREFIX PG_FUNCTION_INFO_V1(userseq_append);
Datum
userseq_append(PG_FUNCTION_ARGS)
{
	UserSeq    *seq = PG_ARGISNULL(0) ? NULL : PG_GETARG_USERSEQ_P(0);
	text	   *label = PG_ARGISNULL(3) ? NULL : PG_GETARG_TEXT_PP(3);
	int32		max_len = PG_ARGISNULL(4) ? 0 : PG_GETARG_INT32(4);

	if (PG_ARGISNULL(1) || PG_ARGISNULL(2))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("userseq_append needs an item and a timestamp"),
				 errdetail("The %s is NULL.", PG_ARGISNULL(1) ? "item" : "timestamp")));
	if (!PG_ARGISNULL(4) && max_len <= 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("max_len must be positive"),
				 errdetail("Got %d.", max_len),
				 errhint("Pass NULL to keep every event.")));
	PG_RETURN_USERSEQ_P(UserSeqAppend(seq, PG_GETARG_INT64(1), PG_GETARG_TIMESTAMPTZ(2),
									  label ? VARDATA_ANY(label) : NULL,
									  label ? VARSIZE_ANY_EXHDR(label) : 0, max_len));
}
