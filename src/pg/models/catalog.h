/*
 * catalog.h: the model catalog (models, training_log) as the rest of the glue writes it:
 * ownership checks, run ids and storing a finished run with its deploy policy (catalog.c).
 * Reading a deployed model for scoring is model_cache.h.
 */
#ifndef USERSEQ_CATALOG_H
#define USERSEQ_CATALOG_H

#include "postgres.h"

#include "datatype/timestamp.h"
#include "utils/jsonb.h"

/* Namespace of the extension (where models and training_log live). */
extern Oid	UsCatalogNamespace(void);

/* Next run id (no privilege needed: ids are not secret and gaps are harmless). */
extern int64 UsCatalogNextRunId(void);

/*
 * Errors unless the current user may write a model of this name: the name is new, or the
 * user has the privileges of its owner role. Returns the owner to record (existing owner, or
 * the current user for a new name).
 */
extern Oid	UsCatalogCheckWrite(const char *name, bool must_exist);

/* publications (models/publish.c): the registry row of model -> target, written as the catalog owner */
extern bool UsCatalogSetPublication(const char *name, Oid target, bool add);

/* One epoch row of training_log. */
typedef struct UsEpochRow
{
	int32		epoch;			/* 1-based */
	double		train_loss;
	double		valid_loss;
	double		valid_metric;
	double		learning_rate;
	double		seconds;
	TimestampTz ended_at;
} UsEpochRow;

/* What a stored run needs to write. */
typedef struct UsStoreRequest
{
	const char *name;
	const char *task;
	const char *config_json;
	const char *query;			/* may be NULL (import) */
	Jsonb	   *options;		/* as given by the user */
	const char *metrics_json;
	bytea	   *weights;
	int64		run_id;			/* 0: none */
	const UsEpochRow *epochs;
	int32		n_epochs;
	const char *metric_name;
	int32		training_run;	/* 1, or the continued run's + 1 (warm start) */
	int64		continues_run;	/* warm start: the run continued, 0: none */
	/* deploy policy */
	bool		deploy;			/* deploy unconditionally */
	bool		deploy_if_not_worse;	/* retrain: compare with the deployed version */
	bool		higher_is_better;
	double		new_metric;
} UsStoreRequest;

typedef struct UsStoreResult
{
	int32		version;
	bool		deployed;
	int32		old_version;	/* deployed before, 0 if none */
	double		old_metric;		/* NaN if none */
} UsStoreResult;

extern void UsCatalogStore(const UsStoreRequest *req, UsStoreResult *res);

/* One trial of userseq_tune, a row of tuning_trials. */
typedef struct UsTrialRow
{
	int32		trial;			/* 1-based */
	int64		run_id;
	const char *options_json;	/* the options the trial trained with */
	int32		epochs;
	double		valid_metric;	/* best epoch's, NaN if none */
	double		seconds;
	const char *status;
	bool		best;
} UsTrialRow;

/* Logs the trials of tuning run tune_id of name in tuning_trials; call right after UsCatalogStore stored version. */
extern void UsCatalogLogTrials(const char *name, int32 version, int64 tune_id,
							   const char *metric_name, const UsTrialRow *rows, int32 n);

#endif
