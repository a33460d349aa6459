/*
 * options.h: the options of userseq_train / userseq_retrain, parsed from jsonb and resolved
 * against the defaults (options.c), and their JSON form stored in models.config.
 */
#ifndef USERSEQ_OPTIONS_H
#define USERSEQ_OPTIONS_H

#include "postgres.h"

#include "datatype/timestamp.h"
#include "lib/stringinfo.h"
#include "utils/jsonb.h"

#include "userseq/us_defaults.h"
#include "userseq/us_model.h"

/* sampled-softmax crossover: full softmax up to this many item rows (see README) */
#define US_NEGATIVES_AUTO_CROSSOVER	20000
#define US_NEGATIVES_AUTO_COUNT		256

/* "transition_prior": off (no table), auto (weight chosen on validation), a fixed weight */
#define US_TRANS_PRIOR_OFF		0
#define US_TRANS_PRIOR_AUTO		1
#define US_TRANS_PRIOR_FIXED	2
#define US_TRANS_PRIOR_MAX_WEIGHT	1000.0

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
	bool		batch_examples;	/* batch_unit: true = examples, false = sequences */
	double		dropout;
	double		embed_init_std; /* embedding rows start N(0, this) */
	double		embed_dropout;	/* input item-embedding dropout */
	int32		max_len;
	int32		min_count;
	int32		max_items;		/* 0 = no cap */
	int32		valid_method;
	double		valid_fraction;
	TimestampTz valid_cutoff;
	int64		valid_within;	/* last_basket: microseconds before the last event that still
								 * belong to the last basket (0: the same timestamp) */
	int32		patience;		/* 0 = no early stopping */
	int64		seed;
	int32		threads;
	int32		behavior;		/* -1 = auto (on when the data has labels) */
	int32		time_gaps;		/* gap buckets, 0 = off, -1 = auto (resolved on reading) */
	int32		recent_window;
	bool		tie_output;
	int32		negatives;		/* -1 = auto */
	int32		trans_mode;		/* transition prior: US_TRANS_PRIOR_* */
	double		trans_weight;	/* US_TRANS_PRIOR_FIXED: the weight */
	int32		repeat_mode;	/* repeat prior ("repeat_prior"): US_TRANS_PRIOR_* */
	double		repeat_weight;	/* its US_TRANS_PRIOR_FIXED weight */
	int32		max_examples_per_seq;
	double		pos_weight;
	bool		deploy;
	int32		architecture;	/* us_architecture */
	int32		num_blocks;		/* sasrec */
	int32		num_heads;		/* sasrec */
	/* "init_from": copy compatible weights from another model (NULL: random init) */
	char	   *init_model;
	int32		init_version;	/* 0: the deployed version */
	uint32		freeze;			/* US_BLOCK_* kept fixed in training */
	uint32		init_copy;		/* US_BLOCK_* to copy; 0: every compatible block */
	/* userseq_retrain's "warm_start" (never stored: each retrain decides) */
	bool		warm_start;
} UsTrainOptions;

extern void UsParseTrainOptions(Jsonb *options, us_task task, UsTrainOptions *opts);
/* The task of a task name; an error naming the valid tasks otherwise. */
extern us_task UsParseTask(const char *task);
/* Whether key is an option of userseq_train (this build's list). */
extern bool UsIsTrainOption(const char *key);
/* Appends the resolved options as a JSON object (the models.config column). */
extern void UsAppendOptionsJson(StringInfo buf, const UsTrainOptions *opts);

#endif
