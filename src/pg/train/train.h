/*
 * train.h: the training engine shared by userseq_train (an SRF, one epoch per call) and
 * userseq_retrain (all epochs in one call): resolved options, the in-memory dataset, the run
 * state, and the catalog calls that store a finished run.
 * The core (src/core) does the arithmetic; nothing here touches its internals.
 */
#ifndef USERSEQ_TRAIN_H
#define USERSEQ_TRAIN_H

#include "postgres.h"

#include "datatype/timestamp.h"
#include "lib/stringinfo.h"
#include "utils/jsonb.h"

#include "userseq/us_model.h"

/* validation methods */
#define US_VALID_RANDOM			1
#define US_VALID_TIME			2
#define US_VALID_LEAVE_ONE_OUT	3

/* sampled-softmax crossover: full softmax up to this many item rows (see README) */
#define US_NEGATIVES_AUTO_CROSSOVER	20000
#define US_NEGATIVES_AUTO_COUNT		256

/* gap buckets of "time_gaps": true (2 + log2(1 + seconds) reaches 27 at about a year) */
#define US_DEFAULT_GAP_BUCKETS		28

/* Every option of userseq_train, resolved (defaults filled in). */
typedef struct UsTrainOptions
{
	us_task		task;
	int32		epochs;
	int32		batch_size;
	double		learning_rate;
	int32		optimizer;		/* us_optimizer */
	double		weight_decay;
	double		momentum;
	double		clip_norm;
	int32		lr_schedule;	/* us_lr_schedule */
	int32		lr_step_epochs;
	double		lr_gamma;
	int32		embedding_dim;
	int32		n_widths;
	int32		widths[US_MAX_WIDTHS];
	int32		num_filters;
	int32		hidden_dim;
	double		dropout;
	double		embed_init_std; /* embedding rows start N(0, this) */
	int32		max_len;
	int32		min_count;
	int32		max_items;		/* 0 = no cap */
	int32		valid_method;
	double		valid_fraction;
	TimestampTz valid_cutoff;
	int32		patience;		/* 0 = no early stopping */
	int64		seed;
	int32		threads;
	int32		behavior;		/* -1 = auto (on when the data has labels) */
	int32		time_gaps;		/* gap buckets, 0 = off, -1 = auto (resolved on reading) */
	int32		recent_window;
	bool		tie_output;
	int32		negatives;		/* -1 = auto */
	int32		max_examples_per_seq;
	double		pos_weight;
	bool		deploy;
} UsTrainOptions;

extern void UsParseTrainOptions(Jsonb *options, us_task task, UsTrainOptions *opts);
extern us_task UsParseTask(const char *task);
extern const char *UsTaskName(us_task task);
/* Appends the resolved options as a JSON object (the models.config column). */
extern void UsAppendOptionsJson(StringInfo buf, const UsTrainOptions *opts);

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

/* Progress shown in pg_stat_activity (set by train.c, used while reading data too). */
extern void UsReportActivity(const char *fmt,...) pg_attribute_printf(1, 2);

/* ---------------------------------------------------------------- catalog (catalog.c) */

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

#endif
