/*
 * userseq_type.h: the on-disk layout of the userseq type and its accessors.
 *
 * A userseq is a varlena (alignment double) holding n events sorted by (time, item, behaviour
 * label) ascending:
 *   UserSeq header (16 bytes)
 *   int64       items[n]
 *   TimestampTz times[n]
 *   uint8       behaviors[n]       0 = no label, i > 0 = label i-1 of the label table
 *   label table: n_labels entries of (uint8 length, bytes), labels distinct, sorted bytewise,
 *                each 1..USERSEQ_MAX_LABEL_LEN bytes, no NUL, every label used by some event
 * The form is canonical (same events => same bytes), so equality is a byte comparison.
 * Code outside userseq_type.c uses only the accessors below.
 */
#ifndef USERSEQ_TYPE_H
#define USERSEQ_TYPE_H

#include "postgres.h"

#include "fmgr.h"
#include "datatype/timestamp.h"

#define USERSEQ_MAX_EVENTS		1000000		/* events per value (documented limit) */
#define USERSEQ_MAX_LABELS		255			/* distinct behaviour labels per value */
#define USERSEQ_MAX_LABEL_LEN	64			/* bytes per behaviour label */

typedef struct UserSeq
{
	int32		vl_len_;		/* varlena header (do not touch directly!) */
	int32		n_events;
	uint16		n_labels;
	uint16		flags;			/* reserved for future use, always zero */
	int32		unused;			/* reserved for future use, always zero */
	/* items, times, behaviors, label table follow */
} UserSeq;

#define USERSEQ_HEADER_SIZE		MAXALIGN(sizeof(UserSeq))

#define DatumGetUserSeqP(d)		((UserSeq *) PG_DETOAST_DATUM(d))
#define PG_GETARG_USERSEQ_P(n)	DatumGetUserSeqP(PG_GETARG_DATUM(n))
#define PG_RETURN_USERSEQ_P(p)	PG_RETURN_POINTER(p)

static inline int32
UserSeqLength(const UserSeq *seq)
{
	return seq->n_events;
}

static inline const int64 *
UserSeqItems(const UserSeq *seq)
{
	return (const int64 *) ((const char *) seq + USERSEQ_HEADER_SIZE);
}

static inline const TimestampTz *
UserSeqTimes(const UserSeq *seq)
{
	return (const TimestampTz *) (UserSeqItems(seq) + seq->n_events);
}

/* Per event: 0 = no behaviour label, i > 0 = label number i-1 (see UserSeqLabel). */
static inline const uint8 *
UserSeqBehaviors(const UserSeq *seq)
{
	return (const uint8 *) (UserSeqTimes(seq) + seq->n_events);
}

static inline int
UserSeqNumLabels(const UserSeq *seq)
{
	return seq->n_labels;
}

/*
 * Label number i (0-based) of the value's label table; *len gets its byte length. The result
 * is not NUL-terminated. O(i): callers that need all labels walk them once and keep pointers.
 */
extern const char *UserSeqLabel(const UserSeq *seq, int i, int *len);

/*
 * Builds a canonical userseq from parallel arrays (sorts by time, item, label; dedups labels).
 * behaviors may be NULL (no labels) and individual entries may be NULL. Raises
 * PROGRAM_LIMIT_EXCEEDED beyond USERSEQ_MAX_EVENTS / USERSEQ_MAX_LABELS, DATA_EXCEPTION /
 * INVALID_PARAMETER_VALUE for bad labels. Result palloc'd in CurrentMemoryContext.
 */
extern UserSeq *UserSeqBuild(int32 n, const int64 *items, const TimestampTz *times,
							 const char *const *behaviors);

/*
 * seq (NULL: empty) plus one event, in canonical order; label NULL for none (label_len bytes,
 * checked as the type's input checks labels). With max_len > 0 only the max_len most recent
 * events of the result are kept. The newest event (the common case) is placed without a search
 * or sort; a late one by binary search. Result palloc'd in CurrentMemoryContext.
 */
extern UserSeq *UserSeqAppend(const UserSeq *seq, int64 item, TimestampTz ts,
							  const char *label, int label_len, int32 max_len);

#endif
