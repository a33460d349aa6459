/*
 * model_cache.h: the per-backend cache of decoded models and their scorers, and the per-query
 * handle (kept in fn_extra) through which scoring, evaluation and recommendation reach it.
 */
#ifndef USERSEQ_MODEL_CACHE_H
#define USERSEQ_MODEL_CACHE_H

#include "postgres.h"

#include "fmgr.h"
#include "storage/itemptr.h"

#include "seq/seq_events.h"
#include "userseq/us_model.h"

/* One decoded model; lives in its own context (child of TopMemoryContext once cached). */
typedef struct UsModelEntry
{
	MemoryContext cxt;
	bool		by_name;		/* model_id / version are meaningful */
	int64		model_id;
	int32		version;
	TransactionId row_xmin;		/* xmin and ctid of the catalog row version it was read */
	ItemPointerData row_tid;	/* from (by name) */
	uint32		crc;			/* from the format header */
	uint64		total_size;
	us_model   *model;
	us_scorer  *scorer;
	float	   *out;			/* (n_outputs) scratch, allocated on first use */
	float	   *features;		/* (D) scratch, allocated on first use */
	int			pins;			/* queries holding it */
	bool		cached;			/* still findable; else freed when pins reach 0 */
	uint64		last_used;
} UsModelEntry;

/*
 * The deployed version of model name, decoded and pinned for the rest of the query
 * (resolved once per FmgrInfo, so every row of a query sees the same version).
 * ERRCODE_UNDEFINED_OBJECT when no version is deployed.
 */
extern UsModelEntry *UsModelByName(FunctionCallInfo fcinfo, text *name);

/* The model held in a bytea (weights), cached by its header (CRC + size). */
extern UsModelEntry *UsModelByValue(FunctionCallInfo fcinfo, Datum weights);

/* An event buffer that lives as long as fcinfo's FmgrInfo (for UsSeqToEvents). */
extern UsEventBuffer *UsQueryEventBuffer(FunctionCallInfo fcinfo);

/* Scratch of the entry: out (n_outputs) and features (D). */
extern float *UsEntryOutput(UsModelEntry *entry);
extern float *UsEntryFeatures(UsModelEntry *entry);

/*
 * ERRCODE_WRONG_OBJECT_TYPE unless the model's task is one of the mask bits (1 << task).
 * function names the caller, name the model (NULL for a model passed by value).
 */
extern void UsRequireTask(UsModelEntry *entry, uint32 task_mask, const char *function,
						  const char *name);

#define US_TASK_BIT(t)	(1u << (t))

#endif
