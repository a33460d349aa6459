/*
 * score.h: the scoring entry point other glue shares with userseq_predict (the real-time
 * trigger in live/ scores through it, so a live score is exactly what userseq_predict gives).
 */
#ifndef USERSEQ_SCORE_H
#define USERSEQ_SCORE_H

#include "postgres.h"

#include "fmgr.h"

#include "models/model_cache.h"

/*
 * userseq_predict's value for the userseq Datum seq under entry, with its task checks and
 * errors; *isnull for a classifier without labelled classes. name is the model's name for
 * messages (NULL for a model passed by value); fcinfo provides the per-query event buffer.
 */
extern double UsPredictValue(FunctionCallInfo fcinfo, UsModelEntry *entry, const char *name,
							 Datum seq, bool *isnull);

#endif
