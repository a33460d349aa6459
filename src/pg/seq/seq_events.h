/*
 * seq_events.h: conversion of userseq values into the core's row-index events, shared by
 * training, scoring, evaluation and recommendation so that every path encodes alike.
 */
#ifndef USERSEQ_SEQ_EVENTS_H
#define USERSEQ_SEQ_EVENTS_H

#include "seq/userseq_type.h"
#include "userseq/us_model.h"

/* Reusable row buffers; grown on demand in cxt. */
typedef struct UsEventBuffer
{
	MemoryContext cxt;
	int32		capacity;
	int32	   *items;
	int32	   *behaviors;
	int32	   *gaps;
} UsEventBuffer;

extern void UsEventBufferInit(UsEventBuffer *buf, MemoryContext cxt);

/*
 * Time-gap bucket (us_gap_bucket) of the event at times[j] whose predecessor is the event at
 * times[prev], or a first event when prev < 0: the one rule training, scoring and explanation
 * use, so a gap is always measured to the event's true predecessor.
 */
extern int32 UsEventGapBucket(const TimestampTz *times, int32 prev, int32 j, int32 n_buckets);

/*
 * Encodes the most recent keep events of seq (keep <= 0: all) with vocab into buf and points
 * events at it. Unknown items and labels map to row 1 (out of vocabulary); unlabelled events
 * to behaviour row 0. behaviors / gaps are NULL when cfg has no behaviour / gap input. A gap is
 * measured to the event's true predecessor even when that one was cut off.
 */
extern void UsSeqToEvents(const us_model_config *cfg, const us_vocab *vocab, const UserSeq *seq,
						  int32 keep, UsEventBuffer *buf, us_events *events);

#endif
