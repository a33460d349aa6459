/*
 * train.c: userseq_train (value-per-call SRF: one row per finished epoch) and userseq_retrain:
 * the epoch loop with validation, early stopping, progress reporting
 * (NOTICE per epoch, pg_stat_activity during the run) and the final encode + store.
 *
 * Options are options.c; reading the query and building datasets is train_data.c; catalog
 * writes are catalog.c.
 * Nothing is written before the last call: an error, a cancel or a client that stops fetching
 * leaves the catalog untouched.
 */
#include "postgres.h"

#include <math.h>

#include "access/htup_details.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "funcapi.h"
#include "libpq/libpq.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "tcop/tcopprot.h"
#include "utils/acl.h"
#include "utils/backend_status.h"
#include "utils/builtins.h"
#include "utils/fmgrprotos.h"
#include "utils/guc.h"
#include "utils/jsonb.h"
#include "utils/lsyscache.h"
#include "utils/numeric.h"
#include "utils/timestamp.h"

#include "userseq/us_format.h"
#include "userseq/us_evaluation.h"
#include "models/catalog.h"
#include "train/train_data.h"
#include "train/train.h"
#include "train/transfer.h"
#include "userseq_pg.h"

static void
UsAppendDouble(StringInfo buf, const char *key, double v)
{
	if (isnan(v) || isinf(v))
		appendStringInfo(buf, ", \"%s\": null", key);
	else
		appendStringInfo(buf, ", \"%s\": %.17g", key, v);
}

/* ------------------------------------------------------------------ the run */

struct UsTrainRun
{
	MemoryContext cxt;
	char	   *name;
	char	   *query;
	Jsonb	   *options;		/* as given, stored with the model */
	UsTrainOptions opts;
	UsTrainData data;
	us_model_config cfg;
	us_train_config tc;
	us_allocator alloc;
	us_model   *model;
	us_model   *best;
	us_trainer *trainer;
	MemoryContextCallback trainer_cb;	/* joins the trainer's threads */
	int64		run_id;
	const char *metric_name;
	bool		higher_better;
	int32		epoch;			/* epochs done */
	bool		stop;
	int32		best_epoch;		/* 1-based, 0 = none */
	double		best_metric;
	int32		since_best;
	UsEpochRow *rows;
	char	   *init_json;		/* init_from / warm_start report for metrics, or "" */
	int32		training_run;	/* training_log.training_run */
	int64		continues_run;	/* warm start: the run continued, 0: none */
	char	   *best_metrics;	/* JSON fragment: ", \"k\": v, ..." of the best epoch */
	TimestampTz start;
	double		seconds_total;
	double		mem_estimate;	/* bytes, checked against userseq.train_memory */
	/* progress */
	const char *phase;
	int64		step_done;
	int64		step_total;
	TimestampTz epoch_start;
	TimestampTz last_report;
	char	   *saved_activity;
	/* validation scratch */
	int32		eval_chunk;
	float	   *eval_out;		/* (eval_chunk, n_outputs) */
	/* tuning (tune.c) */
	bool		stop_on_nonfinite;	/* a diverged epoch ends the run instead of an error */
	bool		diverged;
	char	   *extra_metrics;	/* JSON fragment appended to models.metrics */
	/* transition prior (next_item): UsTrainFinish */
	const us_transitions *shared_trans;	/* userseq_tune: the table built once, or NULL */
	bool		finished;		/* best epoch restored, prior fitted */
	bool		patience_stop;	/* ended by patience */
	double		trans_weight;	/* the weight stored (0 = off), NaN: no prior for the task */
	double		repeat_weight;	/* the repeat prior's weight stored (0 = off), NaN: none */
	char	   *prior_json;		/* models.metrics fragment, or "" */
};

static double
UsSecondsSince(TimestampTz t)
{
	return (double) (GetCurrentTimestamp() - t) / USECS_PER_SEC;
}

/* Share of the whole run done, 0..1, for the ETA. */
static double
UsRunFraction(UsTrainRun *run)
{
	double		f = (double) run->epoch;

	if (run->step_total > 0)
		f += (double) run->step_done / run->step_total;
	return Min(1.0, f / run->opts.epochs);
}

static double
UsEta(UsTrainRun *run)
{
	double		f = UsRunFraction(run);
	double		el = UsSecondsSince(run->start);

	return f > 0 ? el / f * (1 - f) : 0;
}

static void
UsPublishProgress(UsTrainRun *run)
{
	char		last[64] = "";

	if (run->epoch > 0)
		snprintf(last, sizeof(last), " loss %.4f", run->rows[run->epoch - 1].train_loss);
	UsReportActivity("userseq_train %s: epoch %d/%d %s step " INT64_FORMAT "/" INT64_FORMAT "%s eta %.0fs | %s",
					 run->name, run->epoch + 1, run->opts.epochs, run->phase,
					 run->step_done, run->step_total, last, UsEta(run),
					 run->saved_activity ? run->saved_activity : "");
}

/* Core progress callback: cancel check every step, pg_stat_activity a few times a second. */
static int
UsTrainProgress(void *ctx, int64_t done, int64_t total)
{
	UsTrainRun *run = (UsTrainRun *) ctx;
	TimestampTz now;

	CHECK_FOR_INTERRUPTS();
	run->step_done = done;
	run->step_total = total;
	now = GetCurrentTimestamp();
	if (now - run->last_report >= 250 * 1000)
	{
		run->last_report = now;
		UsPublishProgress(run);
	}
	return 0;
}

static double
UsParamCount(const us_model_config *c)
{
	double		e = c->embed_dim;
	double		n = ((double) c->n_items + c->n_behaviors + c->n_gap_buckets) * e;
	double		d = us_model_feature_dim(c);

	/* sasrec: positions, blocks and the final norm (see src/core/us_attn.h) */
	if (c->architecture == US_ARCH_SASREC)
		n += (double) c->max_len * e + c->n_blocks * (6.0 * e * e + 10.0 * e) + 2.0 * e;
	for (int i = 0; i < c->n_widths; i++)
		n += (double) c->widths[i] * e * c->n_filters + c->n_filters;
	n += d * c->hidden_dim + c->hidden_dim;
	if (!c->tie_output)
		n += (double) c->hidden_dim * c->n_outputs;
	n += c->n_outputs;
	return n;
}

/* Budget check with the vocabulary known, before the model and optimizer are allocated. */
static void
UsCheckRunMemory(UsTrainRun *run)
{
	const us_model_config *c = &run->cfg;
	double		params = UsParamCount(c) * sizeof(float);
	double		sumw = 0;
	double		l = Min(run->opts.max_len, US_MAX_LEN);
	/* sequences per step; with batch_unit examples, steps hold about batch_size + max_len
	 * events and at most max(batch_size, max_len) examples: bounded like this many sequences */
	double		b = run->opts.batch_examples ? Max(run->opts.batch_size / l, 1.0) + 1.0
		: run->opts.batch_size;
	double		scratch,
				total,
				budget = (double) userseq_train_memory_kb * 1024.0;
	double		eval;

	for (int i = 0; i < c->n_widths; i++)
		sumw += c->widths[i];
	/* activations + gradients of one step: embeddings, im2col windows, conv outputs */
	scratch = 2.0 * sizeof(float) * b * l * (c->embed_dim * (2 + sumw) + 2.0 * c->n_widths * c->n_filters);
	/* sasrec: the encoder keeps ~14 E activations per token and block plus the attention */
	if (c->architecture == US_ARCH_SASREC)
		scratch += sizeof(float) * b * l *
			(c->n_blocks * (14.0 * c->embed_dim + (double) c->n_heads * l) + 10.0 * c->embed_dim);
	/* output logits of a step (next_item: one row per prefix with full softmax) */
	scratch += 2.0 * sizeof(float) * b * (c->task == US_TASK_NEXT_ITEM && run->tc.n_negatives == 0 ? l : 1) *
		(run->tc.n_negatives > 0 ? run->tc.n_negatives + 1 : c->n_outputs);
	eval = (double) run->eval_chunk * c->n_outputs * sizeof(float);
	/*
	 * transition prior (next_item, after training): 8 bytes a training event for the sorted
	 * pairs while it is built, about 16 bytes a kept transition (at most 64 per item and one
	 * per pair), and the weight fit's own output buffer (us_transition_fit_chunk rows of logits)
	 */
	if (c->task == US_TASK_NEXT_ITEM && run->opts.trans_mode != US_TRANS_PRIOR_OFF)
	{
		double		pairs = (double) run->data.n_train_events;
		double		kept = Min(pairs, 64.0 * c->n_items);

		eval = Max(eval, (double) us_transition_fit_chunk(c->n_outputs) * c->n_outputs * sizeof(float) +
				   c->n_outputs * 5.0);
		eval += 8.0 * pairs + 8.0 * c->n_items + 20.0 * kept + 12.0 * Min((double) c->n_items, kept);
	}
	/* weights, gradients, two Adam moments, the best-epoch copy; a gradient per extra thread */
	total = run->data.data_bytes + (5.0 + Max(run->opts.threads, 1) - 1) * params + scratch + eval;
	run->mem_estimate = total;
	if (total > budget)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("training needs an estimated %.0f MB, more than userseq.train_memory (%.0f MB)",
						ceil(total / (1024.0 * 1024.0)), budget / (1024.0 * 1024.0)),
				 errdetail("Dataset %.0f MB, model with optimizer state and best-epoch copy %.0f MB, step scratch %.0f MB, validation buffer (and transition prior) %.0f MB.",
						   run->data.data_bytes / 1048576.0,
						   (5.0 + Max(run->opts.threads, 1) - 1) * params / 1048576.0,
						   scratch / 1048576.0, eval / 1048576.0),
				 errhint("Raise userseq.train_memory, or lower max_items, embedding_dim, batch_size or max_len.")));
}

static char *
UsProtocol(UsTrainRun *run)
{
	const UsTrainOptions *o = &run->opts;

	switch (o->valid_method)
	{
		case US_VALID_RANDOM:
			return psprintf("random %g%% of sequences (seed " INT64_FORMAT ")",
							o->valid_fraction * 100, o->seed);
		case US_VALID_TIME:
			return psprintf("time cutoff %s", timestamptz_to_str(o->valid_cutoff));
		case US_VALID_LAST_BASKET:
			return psprintf("last basket per user (events within " INT64_FORMAT " s of the last one): the events before it train, its first event validates",
							o->valid_within / USECS_PER_SEC);
		default:
			return pstrdup("leave-one-out per user: last event test, previous one validation");
	}
}

/* Frees the trainer, joining its worker threads (context reset callback). */
static void
UsTrainRunReset(void *arg)
{
	UsTrainRun *run = (UsTrainRun *) arg;

	if (run->trainer)
		us_trainer_free(run->trainer);
	run->trainer = NULL;
}

/*
 * Parses options, reads data (or takes shared, read once by UsTrainReadShared), creates the
 * model. All state lives in a child of parent; shared data stays where it was read.
 */
UsTrainRun *
UsTrainBegin(const char *name, const char *query, const char *task, Jsonb *options,
			 MemoryContext parent, const UsTrainShared *shared)
{
	MemoryContext cxt = AllocSetContextCreate(parent, "userseq training run",
											  ALLOCSET_DEFAULT_SIZES);
	MemoryContext old = MemoryContextSwitchTo(cxt);
	UsTrainRun *run = palloc0(sizeof(UsTrainRun));
	us_task		t = UsParseTask(task);
	char		msg[256];
	us_status	st;
	int			nb;

	run->cxt = cxt;
	run->name = pstrdup(name);
	run->query = pstrdup(query);
	run->options = options ? (Jsonb *) PG_DETOAST_DATUM_COPY(JsonbPGetDatum(options)) : NULL;
	run->alloc = UsContextAllocator(cxt);
	UsParseTrainOptions(run->options, t, &run->opts);
	run->init_json = "";
	run->prior_json = "";
	run->trans_weight = NAN;
	run->repeat_weight = NAN;
	run->training_run = 1;
	if (strlen(name) == 0 || strlen(name) > NAMEDATALEN * 4)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("model name must have 1 to %d bytes", NAMEDATALEN * 4)));
	run->metric_name = us_task_metric_name(t);
	run->higher_better = us_task_higher_is_better(t);
	run->best_metric = NAN;
	/* fail before reading data if the name belongs to a role we are not a member of */
	(void) UsCatalogCheckWrite(name, false);
	run->run_id = UsCatalogNextRunId();
	run->start = GetCurrentTimestamp();
	if (MyBEEntry && MyBEEntry->st_activity_raw)
		run->saved_activity = pstrdup(MyBEEntry->st_activity_raw);
	run->phase = "reading data";

	if (shared)
	{
		/* the data-dependent "auto" options as the shared read resolved them */
		run->opts.time_gaps = shared->opts.time_gaps;
		run->opts.behavior = shared->opts.behavior;
		run->data = shared->data;
		run->shared_trans = &shared->trans;
	}
	else
		UsReadTrainData(name, query, &run->opts, cxt, &run->data);

	/* model configuration */
	memset(&run->cfg, 0, sizeof(run->cfg));
	us_model_config_default(&run->cfg, t);
	run->cfg.task = t;
	run->cfg.n_items = US_ROW_FIRST + run->data.vocab.n_items;
	nb = run->data.vocab.n_behaviors;
	run->cfg.n_behaviors = run->opts.behavior > 0 ? US_ROW_FIRST + nb : 0;
	run->cfg.n_gap_buckets = run->opts.time_gaps;
	switch (t)
	{
		case US_TASK_MULTICLASS:
			run->cfg.n_outputs = run->data.vocab.n_classes;
			break;
		case US_TASK_NEXT_ITEM:
			run->cfg.n_outputs = run->cfg.n_items;
			break;
		case US_TASK_NEXT_BEHAVIOR:
			run->cfg.n_outputs = run->cfg.n_behaviors;
			break;
		default:
			run->cfg.n_outputs = 1;
	}
	run->cfg.max_len = run->opts.max_len;
	run->cfg.embed_dim = run->opts.embedding_dim;
	run->cfg.n_widths = run->opts.n_widths;
	for (int i = 0; i < US_MAX_WIDTHS; i++)
		run->cfg.widths[i] = i < run->opts.n_widths ? run->opts.widths[i] : 0;
	run->cfg.n_filters = run->opts.num_filters;
	run->cfg.hidden_dim = run->opts.hidden_dim;
	run->cfg.recent_window = run->opts.recent_window;
	run->cfg.tie_output = run->opts.tie_output ? 1 : 0;
	run->cfg.architecture = run->opts.architecture;
	if (run->opts.architecture == US_ARCH_SASREC)
	{
		run->cfg.n_blocks = run->opts.num_blocks;
		run->cfg.n_heads = run->opts.num_heads;
	}
	run->cfg.dropout = (float) run->opts.dropout;
	run->cfg.embed_init_std = (float) run->opts.embed_init_std;
	run->cfg.embed_dropout = (float) run->opts.embed_dropout;
	run->cfg.pos_weight = (float) run->opts.pos_weight;
	st = us_model_config_validate(&run->cfg, msg, sizeof(msg));
	if (st != US_OK)
		UsCheckStatus(st, "configure the model", msg);

	/* training configuration */
	us_train_config_default(&run->tc, t);
	run->tc.optimizer = run->opts.optimizer;
	run->tc.learning_rate = (float) run->opts.learning_rate;
	run->tc.momentum = (float) run->opts.momentum;
	run->tc.weight_decay = (float) run->opts.weight_decay;
	run->tc.clip_norm = (float) run->opts.clip_norm;
	run->tc.lr_schedule = run->opts.lr_schedule;
	run->tc.lr_step_epochs = run->opts.lr_step_epochs;
	run->tc.lr_gamma = (float) run->opts.lr_gamma;
	run->tc.epochs = run->opts.epochs;
	run->tc.batch_size = run->opts.batch_size;
	run->tc.batch_examples = run->opts.batch_examples ? 1 : 0;
	if (t == US_TASK_NEXT_ITEM)
	{
		if (run->opts.negatives < 0)
			run->tc.n_negatives = run->cfg.n_items > US_NEGATIVES_AUTO_CROSSOVER ? US_NEGATIVES_AUTO_COUNT : 0;
		else
			run->tc.n_negatives = Min(run->opts.negatives, run->cfg.n_items - US_ROW_FIRST);
	}
	else
		run->tc.n_negatives = 0;
	run->tc.max_examples_per_seq = run->opts.max_examples_per_seq;
	run->tc.seed = (uint64_t) run->opts.seed;
	/* "threads" = the core's own threads per step, with BLAS at 1 thread while they run */
	run->tc.n_threads = run->opts.threads;
	st = us_train_config_validate(&run->tc, msg, sizeof(msg));
	if (st != US_OK)
		UsCheckStatus(st, "configure training", msg);

	/* validation buffer: at most 16M floats of outputs at a time */
	run->eval_chunk = (int32) Max(1, Min((int64) 1024, (int64) (16 * 1024 * 1024) / run->cfg.n_outputs));
	UsCheckRunMemory(run);

	ereport(NOTICE,
			(errmsg("userseq_train \"%s\" run " INT64_FORMAT ": %d training and %d validation sequences, %d items, %d behaviours%s",
					name, run->run_id, run->data.n_train, run->data.n_valid,
					run->data.vocab.n_items, run->cfg.n_behaviors > 0 ? nb : 0,
					t == US_TASK_NEXT_ITEM ? (run->tc.n_negatives > 0 ? ", sampled softmax" : ", full softmax") : ""),
			 (run->data.skipped_null_seq + run->data.skipped_null_label + run->data.skipped_short) > 0 ?
			 errdetail("Skipped %lld rows with a NULL or empty sequence, %lld with a NULL label, %lld sequences too short for validation.",
					   (long long) run->data.skipped_null_seq, (long long) run->data.skipped_null_label,
					   (long long) run->data.skipped_short) : 0));

	UsApplyThreadCount(run->opts.threads);
	UsCheckStatus(us_model_create(&run->cfg, &run->data.vocab, (uint64_t) run->opts.seed,
								  &run->alloc, &run->model), "create the model", NULL);
	if (run->opts.warm_start || run->opts.init_model)
	{
		UsInitSource src;

		/* a warm start continues the deployed version of this model (init_from is overridden) */
		run->init_json = UsInitFromCatalog(run->model,
										   run->opts.warm_start ? name : run->opts.init_model,
										   run->opts.warm_start ? 0 : run->opts.init_version,
										   run->opts.warm_start ? 0 : run->opts.init_copy, run->opts.freeze, run->opts.warm_start, &run->alloc, &src);
		if (run->opts.warm_start)
		{
			run->training_run = src.training_run + 1;
			run->continues_run = src.run_id;
		}
		ereport(NOTICE,
				(errmsg("userseq_train \"%s\" run " INT64_FORMAT ": %s model \"%s\" version %d",
						name, run->run_id, run->opts.warm_start ? "warm start from" : "initialised from",
						run->opts.warm_start ? name : run->opts.init_model, src.version)));
	}
	UsCheckStatus(us_trainer_create(run->model, &run->tc, &run->alloc, &run->trainer),
				  "create the trainer", NULL);
	us_trainer_freeze(run->trainer, run->opts.freeze);
	/* the trainer's worker threads are joined before the run's memory goes, also on error */
	run->trainer_cb.func = UsTrainRunReset;
	run->trainer_cb.arg = run;
	MemoryContextRegisterResetCallback(cxt, &run->trainer_cb);
	run->eval_out = MemoryContextAllocHuge(cxt, sizeof(float) * (Size) run->eval_chunk * run->cfg.n_outputs);
	run->rows = palloc0(sizeof(UsEpochRow) * run->opts.epochs);
	MemoryContextSwitchTo(old);
	return run;
}

/* Validation loss, main metric and the metrics JSON fragment for the current weights. */
static void
UsEvaluate(UsTrainRun *run, double *loss_out, double *metric_out, char **json_out)
{
	us_progress progress = {UsTrainProgress, run};
	us_validation v;
	StringInfoData js;

	run->phase = "validating";
	UsCheckStatus(us_model_validate(run->model, &run->data.valid, run->data.valid_ids,
									run->data.n_valid, run->eval_chunk, run->eval_out,
									&run->alloc, &progress, &v),
				  "evaluate the model", NULL);
	initStringInfo(&js);
	for (int i = 0; i < v.n_values; i++)
		UsAppendDouble(&js, v.names[i], v.values[i]);
	*loss_out = v.loss;
	*metric_out = v.metric;
	*json_out = js.data;
}

static bool
UsBetter(UsTrainRun *run, double m)
{
	if (isnan(m))
		return false;
	if (isnan(run->best_metric))
		return true;
	return run->higher_better ? m > run->best_metric : m < run->best_metric;
}

/* Runs one epoch and its validation. Returns false when the run is over. */
bool
UsTrainEpoch(UsTrainRun *run, UsEpochRow *row)
{
	us_progress progress = {UsTrainProgress, run};
	us_epoch_stats stats;
	MemoryContext old;
	char	   *json;
	double		vloss,
				vmetric;
	us_status	st;

	if (run->stop || run->epoch >= run->opts.epochs)
		return false;
	old = MemoryContextSwitchTo(run->cxt);
	/* the core's workers run one BLAS thread each: threads = 2 keeps 2 cores busy, not 4 */
	UsApplyThreadCount(run->tc.n_threads > 1 ? 1 : run->opts.threads);
	run->epoch_start = GetCurrentTimestamp();
	run->phase = "training";
	run->step_done = 0;
	run->step_total = 0;
	memset(&stats, 0, sizeof(stats));
	st = us_trainer_epoch(run->trainer, &run->data.train, run->data.train_ids,
						  run->data.n_train, run->epoch, &progress, &stats);
	if (st == US_ENONFINITE && run->stop_on_nonfinite)
	{
		/* the weights are unusable: the run ends with the best epoch so far (if any) */
		run->diverged = true;
		run->stop = true;
		MemoryContextSwitchTo(old);
		return false;
	}
	UsCheckStatus(st, "train an epoch", NULL);
	run->step_done = run->step_total = 0;
	/* validation (us_model_predict) has no threads of its own: BLAS gets them */
	UsApplyThreadCount(run->opts.threads);
	UsEvaluate(run, &vloss, &vmetric, &json);
	run->step_done = run->step_total = 0;

	row->epoch = run->epoch + 1;
	row->train_loss = stats.loss;
	row->valid_loss = vloss;
	row->valid_metric = vmetric;
	row->learning_rate = stats.learning_rate;
	row->seconds = UsSecondsSince(run->epoch_start);
	row->ended_at = GetCurrentTimestamp();
	run->rows[run->epoch] = *row;
	run->seconds_total += row->seconds;

	if (UsBetter(run, vmetric) || run->best_epoch == 0)
	{
		run->best_metric = vmetric;
		run->best_epoch = row->epoch;
		run->since_best = 0;
		run->best_metrics = psprintf(", \"valid_loss\": %.17g%s", vloss, json);
		if (run->best == NULL)
			UsCheckStatus(us_model_clone(run->model, &run->alloc, &run->best),
						  "keep the best epoch", NULL);
		else
			UsCheckStatus(us_model_copy_weights(run->best, run->model),
						  "keep the best epoch", NULL);
	}
	else
		run->since_best++;
	run->epoch++;
	if (run->opts.patience > 0 && run->since_best >= run->opts.patience)
		run->stop = run->patience_stop = true;

	ereport(NOTICE,
			(errmsg("userseq_train \"%s\" epoch %d/%d: train loss %.4f, valid loss %.4f, %s %.4f, lr %.3g, %.1f s, eta %.0f s%s",
					run->name, row->epoch, run->opts.epochs, row->train_loss, row->valid_loss,
					run->metric_name, row->valid_metric, row->learning_rate, row->seconds,
					run->stop ? 0.0 : UsEta(run),
					run->stop ? psprintf(" (early stop: no better %s for %d epochs, best epoch %d)",
										 run->metric_name, run->opts.patience, run->best_epoch) : "")));
	UsPublishProgress(run);
	MemoryContextSwitchTo(old);
	return true;
}

/*
 * next_item: the popularity baseline (items ranked by training count) on the same validation
 * targets and with the same convention as the model's validation (a target outside the
 * vocabulary counts as rank n_items), as a JSON fragment.
 */
static char *
UsPopularityBaseline(UsTrainRun *run)
{
	int32		n = run->data.n_valid;
	int64	   *ranks = palloc(sizeof(int64) * Max(n, 1));
	us_ranking_metrics rm;
	int			cutoffs[] = {10};
	double		hr,
				ndcg,
				mrr;

	UsCheckStatus(us_popularity_ranks(&run->data.vocab, run->data.valid.classes, (size_t) n,
									  &run->alloc, ranks),
				  "rank by popularity", NULL);
	us_ranking_init(&rm, cutoffs, 1);
	for (int32 s = 0; s < n; s++)
		us_ranking_add(&rm, ranks[s] >= 0 ? ranks[s] : (int64) run->cfg.n_items);
	us_ranking_result(&rm, &hr, &ndcg, &mrr);
	return psprintf(", \"popularity_ndcg@10\": %.17g, \"popularity_hr@10\": %.17g", ndcg, hr);
}

/*
 * Mean training label (binary: positive rate, regression: label mean) as a JSON fragment:
 * the constant "prior" baseline userseq_evaluate reports beside the model.
 */
static char *
UsLabelPrior(UsTrainRun *run)
{
	const us_dataset *d = &run->data.train;
	double		mean;

	if ((run->cfg.task != US_TASK_BINARY && run->cfg.task != US_TASK_REGRESSION) ||
		d->targets == NULL || run->data.n_train == 0)
		return "";
	mean = us_label_mean(d->targets, d->weights, run->data.n_train);
	if (isnan(mean))
		return "";
	return psprintf(", \"%s\": %.17g",
					run->cfg.task == US_TASK_BINARY ? "train_positive_rate" : "train_label_mean",
					mean);
}

/*
 * Builds the transition table of the training split of data for a model of n_items item rows
 * (us_transitions_build wants a model: only its task, item count and allocator are read).
 */
static void
UsBuildTransitions(const UsTrainData *data, int32 n_items, const us_allocator *alloc,
				   us_transitions *out)
{
	us_model	tmp;

	memset(&tmp, 0, sizeof(tmp));
	tmp.cfg.task = US_TASK_NEXT_ITEM;
	tmp.cfg.n_items = n_items;
	tmp.cfg.n_outputs = n_items;
	tmp.alloc = *alloc;
	UsCheckStatus(us_transitions_build(&tmp, &data->train, data->train_ids, data->n_train),
				  "build the transition prior", NULL);
	*out = tmp.trans;
}

/*
 * The metrics fragment of the priors: modes, weights, table size, and the grid figures: ndcg
 * (n_grid x n_rgrid, transition-major) gives "transition_grid_ndcg@10" at repeat weight 0 (the
 * transition prior alone) and "repeat_grid_ndcg@10" at the chosen transition weight.
 */
static char *
UsPriorJson(UsTrainRun *run, const char *mode, const char *rmode, const us_transitions *t,
			const double *grid, int n_grid, const double *rgrid, int n_rgrid, const double *ndcg,
			double network_metric)
{
	StringInfoData js;
	int			g_best = 0;

	initStringInfo(&js);
	appendStringInfo(&js, ", \"transition_prior\": \"%s\", \"transition_weight\": %.17g",
					 mode, run->trans_weight);
	appendStringInfo(&js, ", \"repeat_prior\": \"%s\", \"repeat_weight\": %.17g",
					 rmode, run->repeat_weight);
	if (t)
		appendStringInfo(&js, ", \"transition_sources\": %d, \"transition_count\": " INT64_FORMAT
						 ", \"transition_bytes\": " INT64_FORMAT,
						 t->n_src, (int64) t->nnz,
						 (int64) (t->n_src > 0 ? 16 + 8 * (int64) t->n_src + 8 * t->nnz : 0));
	if (n_grid > 1 && ndcg)
	{
		int			q0 = 0;

		for (int q = 0; q < n_rgrid; q++)
			if (rgrid[q] == 0.0)
				q0 = q;
		appendStringInfoString(&js, ", \"transition_grid\": [");
		for (int g = 0; g < n_grid; g++)
			appendStringInfo(&js, "%s%.17g", g ? ", " : "", grid[g]);
		appendStringInfoString(&js, "], \"transition_grid_ndcg@10\": [");
		for (int g = 0; g < n_grid; g++)
			appendStringInfo(&js, "%s%.17g", g ? ", " : "", ndcg[g * n_rgrid + q0]);
		appendStringInfoChar(&js, ']');
	}
	for (int g = 0; g < n_grid; g++)
		if (grid[g] == run->trans_weight)
			g_best = g;
	if (n_rgrid > 1 && ndcg)
	{
		appendStringInfoString(&js, ", \"repeat_grid\": [");
		for (int q = 0; q < n_rgrid; q++)
			appendStringInfo(&js, "%s%.17g", q ? ", " : "", rgrid[q]);
		appendStringInfoString(&js, "], \"repeat_grid_ndcg@10\": [");
		for (int q = 0; q < n_rgrid; q++)
			appendStringInfo(&js, "%s%.17g", q ? ", " : "", ndcg[g_best * n_rgrid + q]);
		appendStringInfoChar(&js, ']');
	}
	if (!isnan(network_metric))
		appendStringInfo(&js, ", \"network_%s\": %.17g", run->metric_name, network_metric);
	return js.data;
}

/*
 * The weights a prior's fit tries (*grid, returns their count): "auto" searches the grid, a
 * fixed weight (*fixed, which must outlive *grid) is the only value, off is 0.
 */
static int
UsPriorGrid(int mode, const double *fixed, const double **grid)
{
	static const double zero = 0.0;

	if (mode == US_TRANS_PRIOR_AUTO)
	{
		*grid = us_transition_weight_grid;
		return us_transition_weight_grid_n;
	}
	*grid = mode == US_TRANS_PRIOR_FIXED ? fixed : &zero;
	return 1;
}

double
UsTrainFinish(UsTrainRun *run)
{
	MemoryContext old;
	us_model   *m = run->model;
	us_transitions t;
	double	   *ndcg = NULL;
	int			n_grid = 0,
				n_rgrid = 0,
				tmode,
				rmode;
	double		network_metric = run->best_metric;
	const char *mode,
			   *rmode_name;
	const double *grid,
			   *rgrid;

	if (run->finished)
		return run->trans_weight;
	old = MemoryContextSwitchTo(run->cxt);
	if (run->best)
		UsCheckStatus(us_model_copy_weights(run->model, run->best), "restore the best epoch", NULL);
	run->finished = true;
	run->stop = true;
	if (run->cfg.task != US_TASK_NEXT_ITEM)
	{
		MemoryContextSwitchTo(old);
		return run->trans_weight;
	}
	mode = run->opts.trans_mode == US_TRANS_PRIOR_AUTO ? "auto" :
		run->opts.trans_mode == US_TRANS_PRIOR_FIXED ? "fixed" : "off";
	rmode_name = run->opts.repeat_mode == US_TRANS_PRIOR_AUTO ? "auto" :
		run->opts.repeat_mode == US_TRANS_PRIOR_FIXED ? "fixed" : "off";
	/* a warm-started or init_from model never keeps its source's table: only its own */
	us_transitions_free(&m->trans, &run->alloc);
	run->trans_weight = 0.0;
	run->repeat_weight = 0.0;
	tmode = run->opts.trans_mode;
	rmode = run->opts.repeat_mode;
	if ((tmode == US_TRANS_PRIOR_AUTO || rmode == US_TRANS_PRIOR_AUTO) && run->data.n_valid == 0)
	{
		ereport(NOTICE,
				(errmsg("userseq_train \"%s\": \"auto\" priors off: no validation split to choose their weights on",
						run->name),
				 errhint("Give \"transition_prior\" and \"repeat_prior\" weights to use them without validation.")));
		if (tmode == US_TRANS_PRIOR_AUTO)
			tmode = US_TRANS_PRIOR_OFF;
		if (rmode == US_TRANS_PRIOR_AUTO)
			rmode = US_TRANS_PRIOR_OFF;
		mode = tmode == US_TRANS_PRIOR_OFF && run->opts.trans_mode == US_TRANS_PRIOR_AUTO ?
			"off (no validation split)" : mode;
		rmode_name = rmode == US_TRANS_PRIOR_OFF && run->opts.repeat_mode == US_TRANS_PRIOR_AUTO ?
			"off (no validation split)" : rmode_name;
	}
	if (tmode == US_TRANS_PRIOR_OFF && rmode == US_TRANS_PRIOR_OFF)
	{
		run->prior_json = UsPriorJson(run, mode, rmode_name, NULL, NULL, 0, NULL, 0, NULL, NAN);
		MemoryContextSwitchTo(old);
		return 0.0;
	}
	if (tmode != US_TRANS_PRIOR_OFF)
	{
		run->phase = "building the transition prior";
		CHECK_FOR_INTERRUPTS();
		if (run->shared_trans && run->shared_trans->n_src > 0)
			UsCheckStatus(us_transitions_copy(&m->trans, run->shared_trans, &run->alloc),
						  "copy the transition prior", NULL);
		else if (run->shared_trans == NULL)
		{
			UsBuildTransitions(&run->data, run->cfg.n_items, &run->alloc, &t);
			m->trans = t;
		}
		CHECK_FOR_INTERRUPTS();
		m->trans.weight = 0.0f;
		m->trans.repeat_weight = 0.0f;
		if (m->trans.n_src == 0)
		{
			ereport(NOTICE,
					(errmsg("userseq_train \"%s\": transition prior off: no two consecutive known items in the training split",
							run->name)));
			us_transitions_free(&m->trans, &run->alloc);
			tmode = US_TRANS_PRIOR_OFF;
		}
	}
	n_grid = UsPriorGrid(tmode, &run->opts.trans_weight, &grid);
	n_rgrid = UsPriorGrid(rmode, &run->opts.repeat_weight, &rgrid);
	if (n_grid * n_rgrid > 1)
	{
		us_progress progress = {UsTrainProgress, run};

		run->phase = "fitting the priors";
		run->step_done = run->step_total = 0;
		ndcg = palloc(sizeof(double) * n_grid * n_rgrid);
		UsApplyThreadCount(run->opts.threads);
		/* leave_one_out, time and last_basket validation read the users' own training
		 * sequences: fit without their own transitions, for histories the table has not seen */
		UsCheckStatus(us_model_fit_prior(m, &run->data.valid, run->data.valid_ids,
										 run->data.n_valid,
										 run->opts.valid_method != US_VALID_RANDOM,
										 grid, n_grid, rgrid, n_rgrid, &progress, ndcg),
					  "fit the priors", NULL);
	}
	else
	{
		m->trans.weight = (float) grid[0];
		m->trans.repeat_weight = (float) rgrid[0];
	}
	run->trans_weight = m->trans.weight;
	run->repeat_weight = m->trans.repeat_weight;
	/* the stored validation figures are the model's as stored: with the priors */
	if ((m->trans.weight > 0.0f || m->trans.repeat_weight > 0.0f) && run->data.n_valid > 0)
	{
		double		vloss,
					vmetric;
		char	   *json;

		UsEvaluate(run, &vloss, &vmetric, &json);
		run->best_metric = vmetric;
		run->best_metrics = psprintf(", \"valid_loss\": %.17g%s", vloss, json);
	}
	t = m->trans;
	run->prior_json = UsPriorJson(run, mode, rmode_name, tmode != US_TRANS_PRIOR_OFF ? &t : NULL,
								  grid, n_grid, rgrid, n_rgrid, ndcg, network_metric);
	/* weight 0 changes no score: the model is stored without the table */
	if (m->trans.weight == 0.0f)
	{
		float		keep = m->trans.repeat_weight;

		us_transitions_free(&m->trans, &run->alloc);
		m->trans.repeat_weight = keep;
	}
	run->step_done = run->step_total = 0;
	MemoryContextSwitchTo(old);
	return run->trans_weight;
}

/* Restores the best epoch, encodes and stores the model; res gets version and deploy outcome. */
void
UsTrainStore(UsTrainRun *run, bool deploy, bool if_not_worse, Jsonb *stored_options,
			 UsStoreResult *res)
{
	MemoryContext old = MemoryContextSwitchTo(run->cxt);
	size_t		size;
	bytea	   *weights;
	StringInfoData config,
				metrics;
	UsStoreRequest req;

	UsTrainFinish(run);
	UsCheckStatus(us_model_check_weights(run->model), "store the model", NULL);
	size = us_model_encoded_size(run->model);
	if (size == 0 || size > US_FORMAT_MAX_SIZE || size > MaxAllocHugeSize - VARHDRSZ ||
		size + VARHDRSZ > (Size) 0x3FFFFFFF)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("model of %zu bytes exceeds the 1 GB limit of a bytea value", size),
				 errhint("Lower max_items, embedding_dim or num_filters.")));
	weights = MemoryContextAllocHuge(run->cxt, size + VARHDRSZ);
	SET_VARSIZE(weights, size + VARHDRSZ);
	UsCheckStatus(us_model_encode(run->model, (uint8_t *) VARDATA(weights), size),
				  "encode the model", NULL);

	initStringInfo(&config);
	appendStringInfoChar(&config, '{');
	UsAppendOptionsJson(&config, &run->opts);
	appendStringInfo(&config, ", \"n_items\": %d, \"n_behaviors\": %d, \"n_gap_buckets\": %d, "
					 "\"n_outputs\": %d, \"n_negatives\": %d}",
					 run->cfg.n_items, run->cfg.n_behaviors, run->cfg.n_gap_buckets,
					 run->cfg.n_outputs, run->tc.n_negatives);

	initStringInfo(&metrics);
	appendStringInfo(&metrics, "{\"protocol\": \"%s\"%s%s%s%s, \"metric\": \"%s\", \"best_epoch\": %d, "
					 "\"epochs_run\": %d, \"train_sequences\": %d, \"valid_sequences\": %d, "
					 "\"train_seconds\": %.3f, \"rows_read\": %lld, \"skipped_null_seq\": %lld, "
					 "\"skipped_null_label\": %lld, \"skipped_short\": %lld, "
					 "\"memory_estimate_mb\": %.1f, \"memory_used_mb\": %.1f%s%s}",
					 UsProtocol(run), run->best_metrics ? run->best_metrics : "",
					 run->cfg.task == US_TASK_NEXT_ITEM ? UsPopularityBaseline(run) : "",
					 UsLabelPrior(run), run->init_json, run->metric_name, run->best_epoch, run->epoch, run->data.n_train,
					 run->data.n_valid, run->seconds_total, (long long) run->data.rows_read,
					 (long long) run->data.skipped_null_seq,
					 (long long) run->data.skipped_null_label,
					 (long long) run->data.skipped_short, run->mem_estimate / 1048576.0,
					 MemoryContextMemAllocated(run->cxt, true) / 1048576.0,
					 run->prior_json, run->extra_metrics ? run->extra_metrics : "");

	memset(&req, 0, sizeof(req));
	req.name = run->name;
	req.task = us_task_name(run->cfg.task);
	req.config_json = config.data;
	req.query = run->query;
	req.options = stored_options ? stored_options : run->options;
	req.metrics_json = metrics.data;
	req.weights = weights;
	req.run_id = run->run_id;
	req.epochs = run->rows;
	req.n_epochs = run->epoch;
	req.metric_name = run->metric_name;
	req.training_run = run->training_run;
	req.continues_run = run->continues_run;
	req.deploy = deploy;
	req.deploy_if_not_worse = if_not_worse;
	req.higher_is_better = run->higher_better;
	req.new_metric = run->best_metric;
	run->phase = "storing";
	UsCatalogStore(&req, res);

	if (run->saved_activity)
		pgstat_report_activity(STATE_RUNNING, run->saved_activity);
	UsApplyThreads();
	MemoryContextSwitchTo(old);
}

void
UsTrainEnd(UsTrainRun *run)
{
	MemoryContextDelete(run->cxt);
}

/* Parses options and reads the query once, into cxt, for several runs (userseq_tune). */
UsTrainShared *
UsTrainReadShared(const char *name, const char *query, const char *task, Jsonb *options,
				  MemoryContext cxt)
{
	MemoryContext old = MemoryContextSwitchTo(cxt);
	UsTrainShared *sh = palloc0(sizeof(UsTrainShared));

	UsParseTrainOptions(options, UsParseTask(task), &sh->opts);
	UsReadTrainData(name, query, &sh->opts, cxt, &sh->data);
	/* next_item: the transition table once, for every trial (each fits its own weight) */
	if (sh->opts.task == US_TASK_NEXT_ITEM && sh->opts.trans_mode != US_TRANS_PRIOR_OFF)
	{
		us_allocator alloc = UsContextAllocator(cxt);

		UsBuildTransitions(&sh->data, US_ROW_FIRST + sh->data.vocab.n_items, &alloc, &sh->trans);
	}
	MemoryContextSwitchTo(old);
	return sh;
}

void
UsTrainSetTuning(UsTrainRun *run, bool stop_on_nonfinite, const char *extra_metrics)
{
	run->stop_on_nonfinite = stop_on_nonfinite;
	run->extra_metrics = extra_metrics ? MemoryContextStrdup(run->cxt, extra_metrics) : NULL;
}

void
UsTrainGetState(const UsTrainRun *run, UsTrainState *state)
{
	state->run_id = run->run_id;
	state->epochs_done = run->epoch;
	state->epochs_max = run->opts.epochs;
	state->best_epoch = run->best_epoch;
	state->best_metric = run->best_metric;
	state->metric_name = run->metric_name;
	state->higher_better = run->higher_better;
	state->stopped_early = run->patience_stop;
	state->diverged = run->diverged;
	state->seconds = run->seconds_total;
	state->repeat_weight = run->repeat_weight;
	state->opts = &run->opts;
}

static char *
UsTextArg(FunctionCallInfo fcinfo, int n, const char *what)
{
	if (PG_ARGISNULL(n))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("%s must not be NULL", what)));
	return text_to_cstring(PG_GETARG_TEXT_PP(n));
}

/*
 * Trains a model on the rows of a query, one result row per finished epoch, and stores it
 * as the next version of the name in the final call.
 */
PG_FUNCTION_INFO_V1(userseq_train);
Datum
userseq_train(PG_FUNCTION_ARGS)
{
	FuncCallContext *funcctx;
	UsTrainRun *run;
	UsEpochRow	row;

	if (SRF_IS_FIRSTCALL())
	{
		MemoryContext old;
		TupleDesc	tupdesc;
		char	   *name = UsTextArg(fcinfo, 0, "model name");
		char	   *query = UsTextArg(fcinfo, 1, "training query");
		char	   *task = UsTextArg(fcinfo, 2, "task");
		Jsonb	   *options = PG_ARGISNULL(3) ? NULL : PG_GETARG_JSONB_P(3);

		funcctx = SRF_FIRSTCALL_INIT();
		old = MemoryContextSwitchTo(funcctx->multi_call_memory_ctx);
		if (get_call_result_type(fcinfo, NULL, &tupdesc) != TYPEFUNC_COMPOSITE)
			elog(ERROR, "return type must be a row type");
		funcctx->tuple_desc = BlessTupleDesc(tupdesc);
		MemoryContextSwitchTo(old);
		if (options && DatumGetBool(DirectFunctionCall2(jsonb_exists, JsonbPGetDatum(options),
														 CStringGetTextDatum("warm_start"))))
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("option \"warm_start\" is an option of userseq_retrain"),
					 errhint("To start userseq_train from another model's weights, use \"init_from\".")));
		funcctx->user_fctx = UsTrainBegin(name, query, task, options,
										  funcctx->multi_call_memory_ctx, NULL);
	}
	else if (whereToSendOutput == DestRemote)
	{
		/*
		 * The previous epoch's row sits in the output buffer; push it to the client now so a
		 * watcher sees each epoch as it ends, not when the whole run is over.
		 */
		pq_flush();
	}
	funcctx = SRF_PERCALL_SETUP();
	run = (UsTrainRun *) funcctx->user_fctx;

	if (UsTrainEpoch(run, &row))
	{
		Datum		values[8];
		bool		nulls[8] = {false};

		values[0] = Int64GetDatum(run->run_id);
		values[1] = Int32GetDatum(row.epoch);
		values[2] = Float8GetDatum(row.train_loss);
		values[3] = Float8GetDatum(row.valid_loss);
		values[4] = Float8GetDatum(row.valid_metric);
		values[5] = CStringGetTextDatum(run->metric_name);
		values[6] = Float8GetDatum(row.learning_rate);
		values[7] = Float8GetDatum(row.seconds);
		SRF_RETURN_NEXT(funcctx, HeapTupleGetDatum(heap_form_tuple(funcctx->tuple_desc, values, nulls)));
	}
	else
	{
		UsStoreResult res;

		/* the last call: only reached when the caller fetched every epoch row */
		UsTrainStore(run, run->opts.deploy, false, NULL, &res);
		ereport(NOTICE,
				(errmsg("userseq_train stored model \"%s\" version %d (best epoch %d, %s %.4f)%s",
						run->name, res.version, run->best_epoch, run->metric_name,
						run->best_metric, res.deployed ? ", deployed" : "")));
		UsTrainEnd(run);
		SRF_RETURN_DONE(funcctx);
	}
}

/*
 * Retrains a model from its stored query and options (with overrides) and deploys the new
 * version if its validation metric is not worse than the deployed one's, or if forced.
 */
PG_FUNCTION_INFO_V1(userseq_retrain);
Datum
userseq_retrain(PG_FUNCTION_ARGS)
{
	char	   *name = UsTextArg(fcinfo, 0, "model name");
	Jsonb	   *override = PG_ARGISNULL(1) ? NULL : PG_GETARG_JSONB_P(1);
	bool		force = PG_ARGISNULL(2) ? false : PG_GETARG_BOOL(2);
	char	   *query;
	char	   *task;
	Jsonb	   *options;
	Jsonb	   *stored;
	UsTrainRun *run;
	UsEpochRow	row;
	UsStoreResult res;
	TupleDesc	tupdesc;
	Datum		values[7];
	bool		nulls[7] = {false};
	Datum		d;
	bool		isnull;
	char	   *owner_name;
	Oid			owner;
	Oid			save_user;
	int			save_sec;
	int			guc_level;

	(void) UsCatalogCheckWrite(name, true);
	if (get_call_result_type(fcinfo, NULL, &tupdesc) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "return type must be a row type");
	tupdesc = BlessTupleDesc(tupdesc);

	/* the deployed version's recipe, or the newest version's when none is deployed */
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	guc_level = UsInternalSqlBegin();
	{
		Oid			argtypes[1] = {TEXTOID};
		Datum		args[1] = {CStringGetTextDatum(name)};
		char	   *sql = psprintf("SELECT query, task, options, owner::text FROM %s.models WHERE name = $1 "
								   "ORDER BY deployed DESC, version DESC LIMIT 1",
								   quote_identifier(get_namespace_name(UsCatalogNamespace())));

		if (SPI_execute_with_args(sql, 1, argtypes, args, NULL, true, 1) != SPI_OK_SELECT)
			elog(ERROR, "could not read model \"%s\"", name);
		if (SPI_processed == 0)
			ereport(ERROR,
					(errcode(ERRCODE_UNDEFINED_OBJECT),
					 errmsg("model \"%s\" does not exist", name)));
		d = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull);
		if (isnull)
			ereport(ERROR,
					(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
					 errmsg("model \"%s\" has no stored training query", name),
					 errdetail("Imported models cannot be retrained.")));
		query = MemoryContextStrdup(fcinfo->flinfo->fn_mcxt, TextDatumGetCString(d));
		d = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2, &isnull);
		task = MemoryContextStrdup(fcinfo->flinfo->fn_mcxt, TextDatumGetCString(d));
		d = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 3, &isnull);
		options = (Jsonb *) MemoryContextAllocHuge(fcinfo->flinfo->fn_mcxt, VARSIZE_ANY(DatumGetPointer(d)));
		memcpy(options, DatumGetJsonbP(d), VARSIZE_ANY(DatumGetJsonbP(d)));
		d = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 4, &isnull);
		owner_name = MemoryContextStrdup(fcinfo->flinfo->fn_mcxt, TextDatumGetCString(d));
	}
	UsInternalSqlEnd(guc_level);
	SPI_finish();
	owner = get_role_oid(owner_name, true);
	if (!OidIsValid(owner))
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("owner role \"%s\" of model \"%s\" does not exist", owner_name, name),
				 errdetail("A stored training query runs as the role that owns the model."),
				 errhint("A superuser can give the model to an existing role: UPDATE %s.models SET owner = ... WHERE name = ...",
						 quote_identifier(get_namespace_name(UsCatalogNamespace())))));

	if (override)
		options = DatumGetJsonbP(DirectFunctionCall2(jsonb_concat, JsonbPGetDatum(options),
													 JsonbPGetDatum(override)));
	/* the deploy decision belongs to retrain */
	options = DatumGetJsonbP(DirectFunctionCall2(jsonb_delete, JsonbPGetDatum(options),
												 CStringGetTextDatum("deploy")));
	/* each retrain decides on a warm start: it is never stored with the new version */
	stored = DatumGetJsonbP(DirectFunctionCall2(jsonb_delete, JsonbPGetDatum(options),
												CStringGetTextDatum("warm_start")));

	/*
	 * The stored query (and every function it calls) runs as the model's owner, never as the
	 * caller: a superuser or a pg_cron job retraining bob's model must not run bob's code
	 * with its own rights. Restricted as PostgreSQL restricts maintenance commands that run
	 * a table owner's code (no SET ROLE, no temporary objects); GUCs the query sets are
	 * undone. An error aborts the (sub)transaction, which restores the user id.
	 */
	GetUserIdAndSecContext(&save_user, &save_sec);
	SetUserIdAndSecContext(owner, save_sec | SECURITY_LOCAL_USERID_CHANGE |
						   SECURITY_RESTRICTED_OPERATION);
	guc_level = NewGUCNestLevel();
	run = UsTrainBegin(name, query, task, options, CurrentMemoryContext, NULL);
	AtEOXact_GUC(false, guc_level);
	SetUserIdAndSecContext(save_user, save_sec);

	while (UsTrainEpoch(run, &row))
		;
	UsTrainStore(run, force, !force, stored, &res);

	values[0] = CStringGetTextDatum(name);
	values[1] = Int32GetDatum(res.old_version);
	nulls[1] = res.old_version == 0;
	values[2] = Int32GetDatum(res.version);
	values[3] = Float8GetDatum(res.old_metric);
	nulls[3] = isnan(res.old_metric);
	values[4] = Float8GetDatum(run->best_metric);
	nulls[4] = isnan(run->best_metric);
	values[5] = CStringGetTextDatum(run->metric_name);
	values[6] = BoolGetDatum(res.deployed);
	ereport(NOTICE,
			(errmsg("userseq_retrain \"%s\": version %d %s (%s %.4f, deployed version %s had %s)",
					name, res.version, res.deployed ? "deployed" : "stored but not deployed",
					run->metric_name, run->best_metric,
					res.old_version ? psprintf("%d", res.old_version) : "none",
					isnan(res.old_metric) ? "none" : psprintf("%.4f", res.old_metric))));
	UsTrainEnd(run);
	PG_RETURN_DATUM(HeapTupleGetDatum(heap_form_tuple(tupdesc, values, nulls)));
}
