/*
 * userseq_build.h: internals shared by userseq_type.c and userseq_agg.c: the one code path
 * that turns unsorted events plus a label set into a canonical userseq, and label checks.
 * Scoring and training code uses only the accessors in userseq_type.h, never this file.
 */
#ifndef USERSEQ_BUILD_H
#define USERSEQ_BUILD_H

#include "seq/userseq_type.h"

/* One event while building; code is 0 (no label) or 1 + index into a label array. */
typedef struct UsEvent
{
	TimestampTz time;
	int64		item;
	int32		code;
	int32		pad;			/* keeps the struct 24 bytes; unused */
} UsEvent;

/* A behaviour label: bytes (not NUL-terminated) and length 1..USERSEQ_MAX_LABEL_LEN. */
typedef struct UsLabel
{
	const char *data;
	int			len;
} UsLabel;

/*
 * A set of distinct labels, grown on demand. Lookup is a 16-slot direct-mapped cache keyed
 * by length and end bytes (a handful of labels per sequence is the common case), then a
 * linear scan (at most USERSEQ_MAX_LABELS).
 */
#define US_LABEL_SLOTS	16

typedef struct UsLabelSet
{
	int			n;
	int			cap;
	UsLabel    *labels;
	uint8		slots[US_LABEL_SLOTS];	/* code (1 + index) last seen for the hash, 0 = none */
} UsLabelSet;

/*
 * Returns the code (1 + index) of the label, adding it when new. With copy the bytes are
 * copied into cxt (as is the array); otherwise data must outlive the set. Checks the label
 * and raises PROGRAM_LIMIT_EXCEEDED beyond USERSEQ_MAX_LABELS labels.
 */
extern int	UsLabelIntern(UsLabelSet *set, const char *data, int len, MemoryContext cxt, bool copy);

/*
 * Raises the error for a label that is empty, too long or holds a NUL byte; what names the
 * source in the message ("behavior label").
 */
extern void UsCheckLabel(const char *data, int len);

/* Raises PROGRAM_LIMIT_EXCEEDED when n events would exceed USERSEQ_MAX_EVENTS. */
extern void UsCheckEventCount(int64 n);

/* Raises DATETIME_VALUE_OUT_OF_RANGE for infinite or out-of-range timestamps. */
extern void UsCheckTime(TimestampTz t);

/*
 * Builds a canonical userseq from n events whose codes refer to labels[0..n_labels-1]
 * (distinct, any order; labels no event uses are dropped). Sorts events (in place, after
 * renumbering codes into label order) by time, item, label; sorted = true promises the times
 * are strictly increasing (already canonical), so the sort is skipped. Result in
 * CurrentMemoryContext.
 */
extern UserSeq *UsSeqAssemble(UsEvent *events, int32 n, const UsLabel *labels, int n_labels,
							  bool sorted);

/*
 * Allocates a value of n events whose label table is labels[0..n_labels-1] (already distinct,
 * used and in bytewise order) and writes its header and label table; the caller fills items,
 * times and behaviour codes.
 */
extern UserSeq *UsSeqAlloc(int32 n, const UsLabel *const *labels, int n_labels);

/* All labels of seq at once (labels needs room for UserSeqNumLabels entries). */
extern void UsSeqLabels(const UserSeq *seq, UsLabel *labels);

#endif
