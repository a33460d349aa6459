/*
 * transfer.h: starting a training run from another model's weights: userseq_train's
 * "init_from" and userseq_retrain's "warm_start" (transfer.c). The copying itself is the
 * core's us_model_init_from (rows matched by item id and label).
 */
#ifndef USERSEQ_TRANSFER_H
#define USERSEQ_TRANSFER_H

#include "postgres.h"

#include "userseq/us_model.h"

/* The catalog row a run started from. */
typedef struct UsInitSource
{
	int32		version;
	int64		run_id;			/* its training run, 0 if it has none (imported) */
	int32		training_run;	/* its training_log.training_run (1 when not logged) */
} UsInitSource;

/*
 * Reads model name, version (0: the deployed one) from the catalog and copies every
 * compatible block of copy (0: of all blocks) into model. warm: every block both have must copy (the retrained model
 * continues its own weights). Otherwise a block both have that cannot copy is an error naming
 * it and why, as is naming in copy a block one of the models lacks, or freezing a block
 * that was not copied. Returns a JSON fragment (", \"key\":
 * ...") for the metrics column; src gets the source's catalog row.
 */
extern char *UsInitFromCatalog(us_model *model, const char *name, int32 version, uint32 copy,
							   uint32 freeze, bool warm, const us_allocator *alloc, UsInitSource *src);

#endif
