/*
 * train_data.h: the in-memory training and validation sets of a run, read from the training
 * query (train_data.c) and used by the epoch loop (train.c).
 */
#ifndef USERSEQ_TRAIN_DATA_H
#define USERSEQ_TRAIN_DATA_H

#include "postgres.h"

#include "train/options.h"
#include "userseq/us_model.h"

/*
 * Training and validation sets in the core's compact form, plus the vocabulary built from
 * the training split. Everything lives in the run's memory context.
 */
typedef struct UsTrainData
{
	us_vocab	vocab;
	us_dataset	train;
	us_dataset	valid;
	int32		n_train;
	int32		n_valid;
	int32	   *train_ids;		/* 0..n_train-1 */
	int32	   *valid_ids;		/* 0..n_valid-1 */
	int64		n_train_events;
	bool		has_labels;		/* some event carries a behaviour label */
	bool		has_times;		/* seq column is userseq (not bigint[]) */
	int64		rows_read;
	int64		skipped_null_seq;	/* NULL or empty sequences */
	int64		skipped_null_label;
	int64		skipped_short;	/* too short for the next_* protocol */
	size_t		data_bytes;		/* dataset bytes after construction */
} UsTrainData;

/*
 * Runs query through an SPI cursor (caller's privileges), checks the running memory estimate
 * against userseq.train_memory, splits, builds the vocabulary and datasets in cxt.
 * name is used in progress reports only.
 */
extern void UsReadTrainData(const char *name, const char *query, UsTrainOptions *opts,
							MemoryContext cxt, UsTrainData *data);

#endif
