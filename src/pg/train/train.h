/*
 * train.h: one training run (train.c) as a handle, for callers that run several on data read
 * once (userseq_tune, tune.c): begin on shared data, step epochs, read the state, store, end.
 */
#ifndef USERSEQ_TRAIN_H
#define USERSEQ_TRAIN_H

#include "postgres.h"

#include "utils/jsonb.h"

#include "models/catalog.h"
#include "train/options.h"
#include "train/train_data.h"

typedef struct UsTrainRun UsTrainRun;

/* The query read once, with the options whose "auto" values the data resolved. */
typedef struct UsTrainShared
{
	UsTrainOptions opts;
	UsTrainData data;
	/* next_item with a transition prior: its table, built once from the training split
	 * (every run copies it and fits its own weight); n_src 0 when none */
	us_transitions trans;
} UsTrainShared;

/* What a caller may read of a run between epochs. */
typedef struct UsTrainState
{
	int64		run_id;
	int32		epochs_done;
	int32		epochs_max;
	int32		best_epoch;		/* 0 = none */
	double		best_metric;	/* NaN when none */
	const char *metric_name;
	bool		higher_better;
	bool		stopped_early;	/* patience ran out */
	bool		diverged;		/* non-finite loss (only with stop_on_nonfinite) */
	double		seconds;		/* training + validation seconds so far */
	double		repeat_weight;	/* next_item, after UsTrainFinish: the repeat prior's; else NaN */
	const UsTrainOptions *opts;
} UsTrainState;

extern UsTrainShared *UsTrainReadShared(const char *name, const char *query, const char *task,
										Jsonb *options, MemoryContext cxt);
/* shared: NULL reads the query; otherwise its data is used (never copied or freed). */
extern UsTrainRun *UsTrainBegin(const char *name, const char *query, const char *task,
								Jsonb *options, MemoryContext parent, const UsTrainShared *shared);
/* One epoch and its validation; false when the run is over. */
extern bool UsTrainEpoch(UsTrainRun *run, UsEpochRow *row);
extern void UsTrainSetTuning(UsTrainRun *run, bool stop_on_nonfinite, const char *extra_metrics);
extern void UsTrainGetState(const UsTrainRun *run, UsTrainState *state);
/*
 * Ends training: restores the best epoch and, for next_item, builds (or copies the shared)
 * transition prior and fits or sets its weight; best_metric and the stored validation metrics
 * are then those with the prior. UsTrainStore calls it when the caller has not. No more epochs
 * after it. Returns the weight (0 = off; NaN when the task has no prior).
 */
extern double UsTrainFinish(UsTrainRun *run);
/* Restores the best epoch and stores it as the next version (stored_options: NULL = as given). */
extern void UsTrainStore(UsTrainRun *run, bool deploy, bool if_not_worse, Jsonb *stored_options,
						 UsStoreResult *res);
extern void UsTrainEnd(UsTrainRun *run);

#endif
