/*
 * evaluate.c: model evaluation in SQL: userseq_evaluate (one row per scorer, protocol and
 * metric), userseq_roc_curve, userseq_confusion_matrix, and the parallel-safe aggregate
 * userseq_auc over any scores.
 *
 * Every number is computed by src/core/metrics.c (us_metrics.h), the code training uses for
 * its validation metrics, so a metric name means the same thing everywhere.
 *
 * Protocols (the protocol column):
 *   holdout         binary / multiclass / regression: the query's rows (seq, label) as given;
 *                   accuracy / precision / recall / f1 at the threshold argument (binary).
 *   leave_last_out  next_behavior: target = behaviour of the last event, input = events before.
 *   full            next_item, leave-last-out: rank of the last item among every item of the
 *                   model's vocabulary (history not removed).
 *   sampled:N       next_item: rank among the target + N distinct items drawn uniformly (seed)
 *                   from the vocabulary items that do not occur anywhere in that sequence.
 * Ranks count ties against the target; a target outside the vocabulary is a miss (rank
 * +infinity: no hit at any cutoff, reciprocal rank 0).
 * Baselines: 'popularity' = the model's training item counts; 'markov' = first-order
 * transitions counted over every evaluated sequence's events before its target (pairs of
 * known items), ties broken by popularity; 'prior' (binary / regression) = the constant
 * train_positive_rate / train_label_mean of the model's metrics, when present.
 * next_behavior baselines, from the evaluated sequences' events before their targets (no
 * target is seen): 'prior' = behaviour frequencies, 'markov' = first-order behaviour-to-
 * behaviour transitions from the last input event (add-one smoothed; no last event: prior).
 *
 * The baselines and argmax are computed by src/core/evaluation.c (us_evaluation.h), the
 * validation figures of training too. This file does not train and does not score single
 * rows for users (score.c does).
 */
#include "postgres.h"

#include <math.h>

#include "catalog/namespace.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "funcapi.h"
#include "lib/stringinfo.h"
#include "libpq/pqformat.h"
#include "miscadmin.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/syscache.h"
#include "utils/tuplestore.h"

#include "models/model_cache.h"
#include "seq/seq_events.h"
#include "userseq_pg.h"
#include "seq/userseq_type.h"
#include "user_query.h"
#include "userseq/us_evaluation.h"
#include "userseq/us_rng.h"

#define US_MAX_NEGATIVES 100000

/* ------------------------------------------------------------------ shared helpers */

/* Output of the SRFs: rows appended to the materialized tuplestore. */
static void
UsEmitMetric(ReturnSetInfo *rsinfo, const char *scorer, const char *protocol,
			 const char *metric, double value)
{
	Datum		values[4];
	bool		nulls[4] = {false, false, false, false};

	values[0] = PointerGetDatum(cstring_to_text(scorer));
	values[1] = PointerGetDatum(cstring_to_text(protocol));
	values[2] = PointerGetDatum(cstring_to_text(metric));
	values[3] = Float8GetDatum(value);
	nulls[3] = isnan(value);
	tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
}

/* Raises PROGRAM_LIMIT_EXCEEDED when evaluation data would exceed userseq.train_memory. */
static void
UsCheckEvalMemory(double bytes)
{
	double		budget = (double) userseq_train_memory_kb * 1024.0;

	if (bytes > budget)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("evaluation data needs %.0f MB, userseq.train_memory is %.0f MB",
						bytes / (1024.0 * 1024.0), budget / (1024.0 * 1024.0)),
				 errhint("Evaluate fewer rows at a time, or raise userseq.train_memory.")));
}

/* Grows *arr (elements of size elem) to hold at least need; capacity doubles. */
static void
UsGrow(void **arr, int64 *cap, int64 need, Size elem, MemoryContext cxt)
{
	int64		c = *cap;

	if (need <= c)
		return;
	c = UsGrowCapacity(c, need, 1024);
	UsCheckEvalMemory((double) c * elem);
	*arr = UsResizeArray(*arr, elem, c, cxt);
	*cap = c;
}

/* ------------------------------------------------------------------ per-row tasks */

/* Predictions and truths of binary / multiclass / regression / next_behavior evaluation. */
typedef struct UsEvalData
{
	int64		n;
	int32		n_out;			/* predictions per row */
	double	   *pred;			/* (n, n_out) */
	int64		pred_cap;
	double	   *truth;			/* binary 0/1, regression value */
	int64		truth_cap;
	int32	   *cls;			/* class index within the labelled range, -1 unknown */
	int64		cls_cap;
	int64		skipped;		/* rows with NULL sequence / label, or nothing to predict */
	char	  **class_names;	/* multiclass: sorted index for label lookup */
	int32	   *class_order;
	/* next_behavior baselines: counts over the input events, and each row's last behaviour */
	us_behavior_counts beh;
	int32	   *last_cls;		/* (n) -1: no known last behaviour */
	int64		last_cap;
} UsEvalData;

static const us_model *sort_model;

static int
UsClassCmp(const void *a, const void *b)
{
	return strcmp(sort_model->vocab.classes[*(const int32 *) a],
				  sort_model->vocab.classes[*(const int32 *) b]);
}

static int32
UsFindClass(const us_model *model, const int32 *order, const char *label)
{
	int32		lo = 0,
				hi = model->vocab.n_classes - 1;

	while (lo <= hi)
	{
		int32		mid = lo + (hi - lo) / 2;
		int			c = strcmp(model->vocab.classes[order[mid]], label);

		if (c == 0)
			return order[mid];
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid - 1;
	}
	return -1;
}

/*
 * Reads the query and scores each row with the model. Labelled range: binary / regression
 * one output; multiclass all classes; next_behavior the known behaviours (us_model_class_range).
 */
static void
UsCollect(FunctionCallInfo fcinfo, UsModelEntry *entry, const char *query, UsEvalData *ed,
		  MemoryContext keep)
{
	const us_model *model = entry->model;
	int32		task = model->cfg.task;
	int32		first = 0;
	UsUserQuery q;
	FmgrInfo	label_out;
	UsEventBuffer buf;
	MemoryContext rowcxt;
	float	   *out = UsEntryOutput(entry);
	us_allocator alloc = UsContextAllocator(keep);

	memset(ed, 0, sizeof(*ed));
	if (task == US_TASK_MULTICLASS)
		ed->n_out = model->cfg.n_outputs;
	else if (task == US_TASK_NEXT_BEHAVIOR)
	{
		us_model_class_range(model, &first, &ed->n_out);
		if (ed->n_out <= 0)
			ereport(ERROR,
					(errcode(ERRCODE_DATA_EXCEPTION),
					 errmsg("next_behavior model has no known behaviours to evaluate")));
		UsCheckStatus(us_behavior_counts_init(&ed->beh, ed->n_out, &alloc), "count behaviours", NULL);
	}
	else
		ed->n_out = 1;
	if (task == US_TASK_MULTICLASS && model->vocab.n_classes == model->cfg.n_outputs)
	{
		ed->class_order = MemoryContextAlloc(keep, sizeof(int32) * Max(model->vocab.n_classes, 1));
		for (int32 i = 0; i < model->vocab.n_classes; i++)
			ed->class_order[i] = i;
		sort_model = model;
		qsort(ed->class_order, model->vocab.n_classes, sizeof(int32), UsClassCmp);
	}

	UsEventBufferInit(&buf, keep);
	rowcxt = AllocSetContextCreate(CurrentMemoryContext, "userseq evaluate rows",
								   ALLOCSET_DEFAULT_SIZES);
	UsUserQueryOpen(&q, "evaluation query", query,
					task != US_TASK_NEXT_BEHAVIOR ? us_task_name(task) : NULL);
	if (q.label_col)
	{
		Oid			outfn;
		bool		varlena;

		getTypeOutputInfo(q.label_type, &outfn, &varlena);
		fmgr_info(outfn, &label_out);
	}
	UsApplyThreads();

	while (UsUserQueryFetch(&q))
	{
		for (uint64 r = 0; r < SPI_processed; r++)
		{
			HeapTuple	tup = SPI_tuptable->vals[r];
			TupleDesc	td = SPI_tuptable->tupdesc;
			bool		isnull;
			Datum		seqd,
						labeld = (Datum) 0;
			UserSeq    *seq;
			us_events	events;
			MemoryContext old;
			us_status	st;
			int32		cls = -1,
						last = -1;
			double		truth = 0.0;

			CHECK_FOR_INTERRUPTS();
			seqd = SPI_getbinval(tup, td, q.seq_col, &isnull);
			if (isnull)
			{
				ed->skipped++;
				continue;
			}
			if (q.label_col)
			{
				labeld = SPI_getbinval(tup, td, q.label_col, &isnull);
				if (isnull)
				{
					ed->skipped++;
					continue;
				}
			}
			old = MemoryContextSwitchTo(rowcxt);
			seq = UsUserQuerySeq(&q, seqd);

			if (task == US_TASK_NEXT_BEHAVIOR)
			{
				/* leave-last-out: encode one more event than the model keeps, drop the last */
				if (UserSeqLength(seq) == 0)
				{
					MemoryContextSwitchTo(old);
					MemoryContextReset(rowcxt);
					ed->skipped++;
					continue;
				}
				UsSeqToEvents(&model->cfg, &model->vocab, seq, model->cfg.max_len + 1, &buf, &events);
				cls = events.behaviors ? events.behaviors[events.n - 1] - US_ROW_FIRST : -1;
				if (cls >= ed->n_out)
					cls = -1;
				events.n--;
				last = us_behavior_counts_add(&ed->beh, events.behaviors, events.n);
			}
			else
			{
				UsSeqToEvents(&model->cfg, &model->vocab, seq, model->cfg.max_len, &buf, &events);
				if (task == US_TASK_MULTICLASS)
				{
					char	   *s = OutputFunctionCall(&label_out, labeld);

					cls = ed->class_order ? UsFindClass(model, ed->class_order, s) : -1;
				}
				else
				{
					truth = UsDatumNumber(labeld, q.label_type);
					if (!isfinite(truth))
						ereport(ERROR,
								(errcode(ERRCODE_DATA_EXCEPTION),
								 errmsg("label must be finite, got %g", truth)));
					if (task == US_TASK_BINARY && truth != 0.0 && truth != 1.0)
						ereport(ERROR,
								(errcode(ERRCODE_DATA_EXCEPTION),
								 errmsg("binary label must be 0, 1, true or false, got %g", truth)));
				}
			}
			st = us_scorer_forward(entry->scorer, &events, out, NULL);
			UsCheckScoreStatus(st, "score sequence");
			MemoryContextSwitchTo(old);
			MemoryContextReset(rowcxt);

			UsGrow((void **) &ed->pred, &ed->pred_cap, (ed->n + 1) * ed->n_out, sizeof(double), keep);
			for (int32 i = 0; i < ed->n_out; i++)
				ed->pred[ed->n * ed->n_out + i] = (double) out[first + i];
			if (task == US_TASK_BINARY || task == US_TASK_REGRESSION)
			{
				UsGrow((void **) &ed->truth, &ed->truth_cap, ed->n + 1, sizeof(double), keep);
				ed->truth[ed->n] = truth;
			}
			else
			{
				UsGrow((void **) &ed->cls, &ed->cls_cap, ed->n + 1, sizeof(int32), keep);
				ed->cls[ed->n] = cls;
			}
			if (task == US_TASK_NEXT_BEHAVIOR)
			{
				UsGrow((void **) &ed->last_cls, &ed->last_cap, ed->n + 1, sizeof(int32), keep);
				ed->last_cls[ed->n] = last;
			}
			ed->n++;
		}
		SPI_freetuptable(SPI_tuptable);
	}
	UsUserQueryClose(&q);
	MemoryContextDelete(rowcxt);
}

/* train_positive_rate / train_label_mean from the catalog row's metrics, NaN if absent. */
static double
UsModelPrior(FunctionCallInfo fcinfo, UsModelEntry *entry, const char *key)
{
	char	   *schema;
	char	   *q;
	Oid			argtypes[2] = {INT8OID, TEXTOID};
	Datum		args[2];
	double		v = NAN;
	int			level;

	if (!entry->by_name)
		return NAN;
	schema = get_namespace_name(get_func_namespace(fcinfo->flinfo->fn_oid));
	q = psprintf("SELECT CASE WHEN pg_catalog.jsonb_typeof(metrics -> $2) = 'number' "
				 "THEN (metrics ->> $2)::pg_catalog.float8 END FROM %s.models WHERE model_id = $1",
				 quote_identifier(schema));
	args[0] = Int64GetDatum(entry->model_id);
	args[1] = CStringGetTextDatum(key);
	level = UsInternalSqlBegin();
	if (SPI_execute_with_args(q, 2, argtypes, args, NULL, true, 1) == SPI_OK_SELECT &&
		SPI_processed == 1)
	{
		bool		isnull;
		Datum		d = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull);

		if (!isnull)
			v = DatumGetFloat8(d);
	}
	UsInternalSqlEnd(level);
	return v;
}

static void
UsEmitBinary(ReturnSetInfo *rsinfo, const char *scorer, const double *p, const UsEvalData *ed,
			 const uint8 *labels, double threshold)
{
	us_binary_metrics m;
	us_allocator alloc = UsContextAllocator(CurrentMemoryContext);
	double		auc;

	us_binary_metrics_compute(p, labels, NULL, ed->n, threshold, &m);
	UsCheckStatus(us_roc_auc(p, labels, NULL, ed->n, &alloc, &auc), "compute ROC AUC", NULL);
	UsEmitMetric(rsinfo, scorer, "holdout", "accuracy", m.accuracy);
	UsEmitMetric(rsinfo, scorer, "holdout", "precision", m.precision);
	UsEmitMetric(rsinfo, scorer, "holdout", "recall", m.recall);
	UsEmitMetric(rsinfo, scorer, "holdout", "f1", m.f1);
	UsEmitMetric(rsinfo, scorer, "holdout", "roc_auc", auc);
	UsEmitMetric(rsinfo, scorer, "holdout", "log_loss", m.log_loss);
	UsEmitMetric(rsinfo, scorer, "holdout", "sequences", (double) ed->n);
}

/* accuracy, precision, recall, f1 (macro), roc_auc (macro one-vs-rest), log_loss of p */
static void
UsEmitMulticlass(ReturnSetInfo *rsinfo, const char *scorer, const char *protocol,
				 const double *p, const UsEvalData *ed)
{
	us_allocator alloc = UsContextAllocator(CurrentMemoryContext);
	us_multiclass_metrics m;
	double		auc_sum = 0.0;
	int32		auc_n = 0;
	double	   *col = palloc(sizeof(double) * Max(ed->n, 1));
	uint8	   *lab = palloc(Max(ed->n, 1));

	UsCheckStatus(us_multiclass_metrics_compute(p, ed->cls, NULL, ed->n, ed->n_out, &alloc, &m),
				  "compute multiclass metrics", NULL);
	/* macro one-vs-rest AUC over the classes that have both positives and negatives */
	for (int32 c = 0; c < ed->n_out; c++)
	{
		double		auc;

		CHECK_FOR_INTERRUPTS();
		for (int64 i = 0; i < ed->n; i++)
		{
			col[i] = p[i * ed->n_out + c];
			lab[i] = ed->cls[i] == c;
		}
		UsCheckStatus(us_roc_auc(col, lab, NULL, ed->n, &alloc, &auc), "compute ROC AUC", NULL);
		if (!isnan(auc))
		{
			auc_sum += auc;
			auc_n++;
		}
	}
	UsEmitMetric(rsinfo, scorer, protocol, "accuracy", m.accuracy);
	UsEmitMetric(rsinfo, scorer, protocol, "precision", m.precision);
	UsEmitMetric(rsinfo, scorer, protocol, "recall", m.recall);
	UsEmitMetric(rsinfo, scorer, protocol, "f1", m.f1);
	UsEmitMetric(rsinfo, scorer, protocol, "roc_auc", auc_n ? auc_sum / auc_n : NAN);
	UsEmitMetric(rsinfo, scorer, protocol, "log_loss", m.log_loss);
	UsEmitMetric(rsinfo, scorer, protocol, "sequences", (double) ed->n);
	pfree(col);
	pfree(lab);
}

/*
 * next_behavior baselines 'prior' and 'markov' (see the file header), add-one smoothed so
 * log_loss stays finite; rows without a known last behaviour get the prior.
 */
static void
UsEmitBehaviorBaselines(ReturnSetInfo *rsinfo, const UsEvalData *ed)
{
	int32		C = ed->n_out;
	double	   *p = palloc(sizeof(double) * Max(ed->n, 1) * C);

	for (int64 i = 0; i < ed->n; i++)
		us_behavior_prior(&ed->beh, p + i * C);
	UsEmitMulticlass(rsinfo, "prior", "leave_last_out", p, ed);
	for (int64 i = 0; i < ed->n; i++)
		us_behavior_markov(&ed->beh, ed->last_cls[i], p + i * C);
	UsEmitMulticlass(rsinfo, "markov", "leave_last_out", p, ed);
	pfree(p);
}

static void
UsEvaluateRows(FunctionCallInfo fcinfo, ReturnSetInfo *rsinfo, UsModelEntry *entry,
			   const char *query, double threshold)
{
	const us_model *model = entry->model;
	int32		task = model->cfg.task;
	MemoryContext keep = CurrentMemoryContext;
	UsEvalData	ed;
	double		prior = NAN;

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	UsCollect(fcinfo, entry, query, &ed, keep);
	if (task == US_TASK_BINARY)
		prior = UsModelPrior(fcinfo, entry, "train_positive_rate");
	else if (task == US_TASK_REGRESSION)
		prior = UsModelPrior(fcinfo, entry, "train_label_mean");
	SPI_finish();

	if (ed.skipped > 0)
		ereport(NOTICE,
				(errmsg("skipped %lld rows with a NULL sequence or label%s",
						(long long) ed.skipped,
						task == US_TASK_NEXT_BEHAVIOR ? ", or an empty sequence" : "")));

	if (task == US_TASK_BINARY)
	{
		uint8	   *labels = palloc(Max(ed.n, 1));

		for (int64 i = 0; i < ed.n; i++)
			labels[i] = ed.truth[i] != 0.0;
		UsEmitBinary(rsinfo, "model", ed.pred, &ed, labels, threshold);
		if (!isnan(prior))
		{
			double	   *c = palloc(sizeof(double) * Max(ed.n, 1));

			for (int64 i = 0; i < ed.n; i++)
				c[i] = prior;
			UsEmitBinary(rsinfo, "prior", c, &ed, labels, threshold);
		}
		else
			ereport(NOTICE,
					(errmsg("no prior baseline: the model's metrics hold no train_positive_rate")));
	}
	else if (task == US_TASK_REGRESSION)
	{
		us_regression_metrics m;

		us_regression_metrics_compute(ed.pred, ed.truth, NULL, ed.n, &m);
		UsEmitMetric(rsinfo, "model", "holdout", "mse", m.mse);
		UsEmitMetric(rsinfo, "model", "holdout", "rmse", m.rmse);
		UsEmitMetric(rsinfo, "model", "holdout", "mae", m.mae);
		UsEmitMetric(rsinfo, "model", "holdout", "r2", m.r2);
		UsEmitMetric(rsinfo, "model", "holdout", "sequences", (double) ed.n);
		if (!isnan(prior))
		{
			double	   *c = palloc(sizeof(double) * Max(ed.n, 1));

			for (int64 i = 0; i < ed.n; i++)
				c[i] = prior;
			us_regression_metrics_compute(c, ed.truth, NULL, ed.n, &m);
			UsEmitMetric(rsinfo, "prior", "holdout", "mse", m.mse);
			UsEmitMetric(rsinfo, "prior", "holdout", "rmse", m.rmse);
			UsEmitMetric(rsinfo, "prior", "holdout", "mae", m.mae);
			UsEmitMetric(rsinfo, "prior", "holdout", "r2", m.r2);
			UsEmitMetric(rsinfo, "prior", "holdout", "sequences", (double) ed.n);
		}
		else
			ereport(NOTICE,
					(errmsg("no prior baseline: the model's metrics hold no train_label_mean")));
	}
	else
	{
		const char *protocol = task == US_TASK_NEXT_BEHAVIOR ? "leave_last_out" : "holdout";

		UsEmitMulticlass(rsinfo, "model", protocol, ed.pred, &ed);
		if (task == US_TASK_NEXT_BEHAVIOR)
			UsEmitBehaviorBaselines(rsinfo, &ed);
	}
}

/* ------------------------------------------------------------------ next_item */

/* Leave-last-out data of next_item evaluation: inputs, targets, negatives, transitions. */
typedef struct UsNextItemData
{
	int64		n;
	int64	   *offsets;		/* (n + 1) into the event arrays */
	int64		offsets_cap;
	int32	   *items;
	int32	   *behaviors;
	int32	   *gaps;
	int64		events_cap,
				beh_cap,
				gap_cap,
				n_events;
	int32	   *targets;
	int64		targets_cap;
	int64	   *neg_off;		/* (n + 1) into negs */
	int64		neg_off_cap;
	int32	   *negs;
	int64		negs_cap,
				n_negs;
	uint64	   *pairs;			/* (from << 32 | to) transitions before targets */
	int64		pairs_cap,
				n_pairs;
	int64		skipped;
	int64		unknown_targets;
} UsNextItemData;

static void
UsReadNextItem(FunctionCallInfo fcinfo, const us_model *model, const char *query,
			   int32 n_neg, uint64 seed, UsNextItemData *d, MemoryContext keep)
{
	int32		n_rows = model->cfg.n_items;
	int32		n_cand = n_rows - US_ROW_FIRST;
	bool		has_beh = model->cfg.n_behaviors > 0;
	bool		has_gap = model->cfg.n_gap_buckets > 0;
	uint8	   *mark = MemoryContextAllocZero(keep, Max(n_rows, 1));
	int32	   *pool = NULL;
	us_rng		rng;
	UsUserQuery q;
	UsEventBuffer buf;
	MemoryContext rowcxt;

	memset(d, 0, sizeof(*d));
	us_rng_seed(&rng, seed);
	UsEventBufferInit(&buf, keep);
	rowcxt = AllocSetContextCreate(CurrentMemoryContext, "userseq evaluate rows",
								   ALLOCSET_DEFAULT_SIZES);
	UsGrow((void **) &d->offsets, &d->offsets_cap, 1, sizeof(int64), keep);
	UsGrow((void **) &d->neg_off, &d->neg_off_cap, 1, sizeof(int64), keep);
	d->offsets[0] = 0;
	d->neg_off[0] = 0;
	UsUserQueryOpen(&q, "evaluation query", query, NULL);

	while (UsUserQueryFetch(&q))
	{
		for (uint64 r = 0; r < SPI_processed; r++)
		{
			bool		isnull;
			Datum		seqd = SPI_getbinval(SPI_tuptable->vals[r], SPI_tuptable->tupdesc,
											 q.seq_col, &isnull);
			UserSeq    *seq;
			us_events	ev;
			MemoryContext old;
			int32		m,
						start,
						target,
						unseen,
						want,
						drawn = 0,
						n_marked = 0;
			int32	   *marked;

			CHECK_FOR_INTERRUPTS();
			if (isnull)
			{
				d->skipped++;
				continue;
			}
			old = MemoryContextSwitchTo(rowcxt);
			seq = UsUserQuerySeq(&q, seqd);
			if (UserSeqLength(seq) == 0)
			{
				MemoryContextSwitchTo(old);
				MemoryContextReset(rowcxt);
				d->skipped++;
				continue;
			}
			UsSeqToEvents(&model->cfg, &model->vocab, seq, 0, &buf, &ev);
			MemoryContextSwitchTo(old);
			m = ev.n;
			target = ev.items[m - 1];
			if (target < US_ROW_FIRST)
				d->unknown_targets++;

			/* transitions among known items strictly before the target */
			UsGrow((void **) &d->pairs, &d->pairs_cap, d->n_pairs + m, sizeof(uint64), keep);
			d->n_pairs += us_item_pairs(ev.items, m - 1, d->pairs + d->n_pairs);

			/* input = the max_len events before the target, with the target after them */
			start = Max(0, m - 1 - model->cfg.max_len);
			UsGrow((void **) &d->items, &d->events_cap, d->n_events + (m - start), sizeof(int32), keep);
			if (has_beh)
				UsGrow((void **) &d->behaviors, &d->beh_cap, d->n_events + (m - start), sizeof(int32), keep);
			if (has_gap)
				UsGrow((void **) &d->gaps, &d->gap_cap, d->n_events + (m - start), sizeof(int32), keep);
			for (int32 i = start; i < m - 1; i++)
			{
				d->items[d->n_events] = ev.items[i];
				if (has_beh)
					d->behaviors[d->n_events] = ev.behaviors[i];
				if (has_gap)
					d->gaps[d->n_events] = ev.gaps[i];
				d->n_events++;
			}
			UsGrow((void **) &d->targets, &d->targets_cap, d->n + 1, sizeof(int32), keep);
			d->targets[d->n] = target;

			/* negatives: distinct known items absent from the whole sequence, uniform */
			marked = palloc(sizeof(int32) * (m + n_neg + 1));
			for (int32 i = 0; i < m; i++)
				if (ev.items[i] >= US_ROW_FIRST && !mark[ev.items[i]])
				{
					mark[ev.items[i]] = 1;
					marked[n_marked++] = ev.items[i];
				}
			unseen = n_cand - n_marked;
			want = Min(n_neg, unseen);
			UsGrow((void **) &d->negs, &d->negs_cap, d->n_negs + want, sizeof(int32), keep);
			if (want > 0 && unseen < 2 * want)
			{
				/* few candidates: enumerate them and shuffle partially */
				int32		n_pool = 0;

				if (pool == NULL)
					pool = MemoryContextAllocHuge(keep, sizeof(int32) * (Size) Max(n_cand, 1));
				for (int32 row = US_ROW_FIRST; row < n_rows; row++)
					if (!mark[row])
						pool[n_pool++] = row;
				for (int32 i = 0; i < want; i++)
				{
					int32		j = i + (int32) us_rng_below(&rng, (uint64) (n_pool - i));
					int32		t = pool[i];

					pool[i] = pool[j];
					pool[j] = t;
					d->negs[d->n_negs++] = pool[i];
				}
				drawn = want;
			}
			else
			{
				/* rejection: at least half the catalogue is eligible, so few retries */
				while (drawn < want)
				{
					int32		row = US_ROW_FIRST + (int32) us_rng_below(&rng, (uint64) n_cand);

					if (mark[row])
						continue;
					mark[row] = 2;
					marked[n_marked++] = row;
					d->negs[d->n_negs++] = row;
					drawn++;
				}
			}
			for (int32 i = 0; i < n_marked; i++)
				mark[marked[i]] = 0;
			pfree(marked);
			MemoryContextReset(rowcxt);

			d->n++;
			UsGrow((void **) &d->offsets, &d->offsets_cap, d->n + 1, sizeof(int64), keep);
			UsGrow((void **) &d->neg_off, &d->neg_off_cap, d->n + 1, sizeof(int64), keep);
			d->offsets[d->n] = d->n_events;
			d->neg_off[d->n] = d->n_negs;
		}
		SPI_freetuptable(SPI_tuptable);
	}
	UsUserQueryClose(&q);
	MemoryContextDelete(rowcxt);
}

/* Ranks under both protocols for one scorer's scores (n_rows) of sequence s. */
static void
UsRankBoth(const float *scores, int32 n_rows, const UsNextItemData *d, int64 s, float *cand,
		   us_ranking_metrics *full, us_ranking_metrics *sampled)
{
	int32		target = d->targets[s];
	int64		n0 = d->neg_off[s],
				n1 = d->neg_off[s + 1];
	int32		nn = (int32) (n1 - n0);

	if (target < US_ROW_FIRST)
	{
		/* an item the model cannot name is a miss at every cutoff, reciprocal rank ~0 */
		us_ranking_add(full, PG_INT64_MAX);
		us_ranking_add(sampled, PG_INT64_MAX);
		return;
	}
	us_ranking_add(full, us_rank_of_target(scores + US_ROW_FIRST,
										   (size_t) (n_rows - US_ROW_FIRST),
										   (size_t) (target - US_ROW_FIRST), NULL));
	cand[0] = scores[target];
	for (int32 j = 0; j < nn; j++)
		cand[j + 1] = scores[d->negs[n0 + j]];
	us_ranking_add(sampled, us_rank_of_target(cand, (size_t) nn + 1, 0, NULL));
}

static void
UsEvaluateNextItem(FunctionCallInfo fcinfo, ReturnSetInfo *rsinfo, UsModelEntry *entry,
				   const char *query, int32 n_neg, const int *cutoffs, int n_cutoffs, uint64 seed)
{
	const us_model *model = entry->model;
	int32		n_rows = model->cfg.n_items;
	MemoryContext keep = CurrentMemoryContext;
	UsNextItemData d;
	us_ranking_metrics rm[3][2];
	const char *scorers[3] = {"model", "popularity", "markov"};
	char	   *sampled_name = psprintf("sampled:%d", n_neg);
	float	   *pop,
			   *markov,
			   *cand;
	float	   *logits = UsEntryOutput(entry);
	us_allocator alloc = UsContextAllocator(keep);
	us_item_markov tr;

	UsCheckEvalMemory((double) n_rows * 3 * sizeof(float));
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	UsReadNextItem(fcinfo, model, query, n_neg, seed, &d, keep);
	SPI_finish();
	if (d.skipped > 0)
		ereport(NOTICE,
				(errmsg("skipped %lld NULL or empty sequences", (long long) d.skipped)));
	if (d.unknown_targets > 0)
		ereport(NOTICE,
				(errmsg("%lld of %lld targets are not in the model's vocabulary and count as misses",
						(long long) d.unknown_targets, (long long) d.n)));

	/* baselines: training counts, and transitions among the histories' known items */
	pop = MemoryContextAllocHuge(keep, sizeof(float) * (Size) n_rows);
	markov = MemoryContextAllocHuge(keep, sizeof(float) * (Size) n_rows);
	cand = palloc(sizeof(float) * ((Size) n_neg + 1));
	us_popularity_scores(&model->vocab, n_rows, pop);
	UsCheckStatus(us_item_markov_build(d.pairs, d.n_pairs, n_rows, &model->vocab, &alloc, &tr),
				  "count item transitions", NULL);

	for (int s = 0; s < 3; s++)
		for (int p = 0; p < 2; p++)
			us_ranking_init(&rm[s][p], cutoffs, n_cutoffs);

	UsApplyThreads();
	for (int64 s = 0; s < d.n; s++)
	{
		us_events	ev;
		us_status	st;

		CHECK_FOR_INTERRUPTS();
		ev.items = d.items + d.offsets[s];
		ev.behaviors = d.behaviors ? d.behaviors + d.offsets[s] : NULL;
		ev.gaps = d.gaps ? d.gaps + d.offsets[s] : NULL;
		ev.n = (int32) (d.offsets[s + 1] - d.offsets[s]);
		st = us_scorer_forward(entry->scorer, &ev, logits, NULL);
		UsCheckScoreStatus(st, "score sequence");
		UsRankBoth(logits, n_rows, &d, s, cand, &rm[0][0], &rm[0][1]);
		UsRankBoth(pop, n_rows, &d, s, cand, &rm[1][0], &rm[1][1]);

		us_item_markov_scores(&tr, ev.n > 0 ? ev.items[ev.n - 1] : US_ROW_PAD, markov);
		UsRankBoth(markov, n_rows, &d, s, cand, &rm[2][0], &rm[2][1]);
	}

	for (int s = 0; s < 3; s++)
		for (int p = 0; p < 2; p++)
		{
			double		hr[US_MAX_CUTOFFS],
						ndcg[US_MAX_CUTOFFS],
						mrr;
			const char *protocol = p == 0 ? "full" : sampled_name;

			us_ranking_result(&rm[s][p], hr, ndcg, &mrr);
			for (int c = 0; c < n_cutoffs; c++)
				UsEmitMetric(rsinfo, scorers[s], protocol, psprintf("hr@%d", cutoffs[c]), hr[c]);
			for (int c = 0; c < n_cutoffs; c++)
				UsEmitMetric(rsinfo, scorers[s], protocol, psprintf("ndcg@%d", cutoffs[c]), ndcg[c]);
			UsEmitMetric(rsinfo, scorers[s], protocol, "mrr", mrr);
			UsEmitMetric(rsinfo, scorers[s], protocol, "sequences", (double) d.n);
		}
}

/* ------------------------------------------------------------------ SQL functions */

static UsModelEntry *
UsEvalModel(FunctionCallInfo fcinfo, char **name, char **query)
{
	if (PG_ARGISNULL(0) || PG_ARGISNULL(1))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("model name and query must not be null")));
	*name = text_to_cstring(PG_GETARG_TEXT_PP(0));
	*query = text_to_cstring(PG_GETARG_TEXT_PP(1));
	return UsModelByName(fcinfo, PG_GETARG_TEXT_PP(0));
}

/* Metrics of a model (and baselines) on the rows of a query */
FUNCTION_PREFIX PG_FUNCTION_INFO_V1(userseq_evaluate);
Datum
userseq_evaluate(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	char	   *name,
			   *query;
	UsModelEntry *entry;
	int32		n_neg;
	int			cutoffs[US_MAX_CUTOFFS];
	int			n_cutoffs = 0;
	int64		seed;
	double		threshold;

	InitMaterializedSRF(fcinfo, MAT_SRF_USE_EXPECTED_DESC);
	for (int i = 2; i <= 5; i++)
		if (PG_ARGISNULL(i))
			ereport(ERROR,
					(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
					 errmsg("negatives, cutoffs, seed and threshold must not be null")));
	n_neg = PG_GETARG_INT32(2);
	seed = PG_GETARG_INT64(4);
	threshold = PG_GETARG_FLOAT8(5);
	if (n_neg < 1 || n_neg > US_MAX_NEGATIVES)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("negatives must be between 1 and %d, got %d", US_MAX_NEGATIVES, n_neg)));
	if (!(threshold > 0.0 && threshold < 1.0))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("threshold must be between 0 and 1 (exclusive), got %g", threshold)));
	{
		ArrayType  *arr = PG_GETARG_ARRAYTYPE_P(3);
		Datum	   *elems;
		bool	   *nulls;
		int			n;

		if (ARR_NDIM(arr) > 1)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("cutoffs must be a one-dimensional array")));
		deconstruct_array(arr, INT4OID, sizeof(int32), true, TYPALIGN_INT, &elems, &nulls, &n);
		if (n < 1 || n > US_MAX_CUTOFFS)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("cutoffs must hold 1 to %d values, got %d", US_MAX_CUTOFFS, n)));
		for (int i = 0; i < n; i++)
		{
			if (nulls[i] || DatumGetInt32(elems[i]) < 1)
				ereport(ERROR,
						(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						 errmsg("cutoffs must be positive integers")));
			cutoffs[n_cutoffs++] = DatumGetInt32(elems[i]);
		}
	}

	entry = UsEvalModel(fcinfo, &name, &query);
	if (entry->model->cfg.task == US_TASK_NEXT_ITEM)
		UsEvaluateNextItem(fcinfo, rsinfo, entry, query, n_neg, cutoffs, n_cutoffs, (uint64) seed);
	else
		UsEvaluateRows(fcinfo, rsinfo, entry, query, threshold);
	return (Datum) 0;
}

/* ROC curve points (threshold, tpr, fpr) of a binary model on the rows of a query */
FUNCTION_PREFIX PG_FUNCTION_INFO_V1(userseq_roc_curve);
Datum
userseq_roc_curve(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	char	   *name,
			   *query;
	UsModelEntry *entry;
	UsEvalData	ed;
	uint8	   *labels;
	double	   *th,
			   *tpr,
			   *fpr;
	size_t		np;
	us_allocator alloc = UsContextAllocator(CurrentMemoryContext);
	MemoryContext keep = CurrentMemoryContext;

	InitMaterializedSRF(fcinfo, MAT_SRF_USE_EXPECTED_DESC);
	entry = UsEvalModel(fcinfo, &name, &query);
	UsRequireTask(entry, US_TASK_BIT(US_TASK_BINARY), "userseq_roc_curve", name);
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	UsCollect(fcinfo, entry, query, &ed, keep);
	SPI_finish();
	labels = palloc(Max(ed.n, 1));
	for (int64 i = 0; i < ed.n; i++)
		labels[i] = ed.truth[i] != 0.0;
	UsCheckStatus(us_roc_curve(ed.pred, labels, NULL, ed.n, &alloc, &th, &tpr, &fpr, &np),
				  "compute ROC curve", NULL);
	for (size_t i = 0; i < np; i++)
	{
		Datum		values[3];
		bool		nulls[3] = {false, isnan(tpr[i]), isnan(fpr[i])};

		values[0] = Float8GetDatum(th[i]);
		values[1] = Float8GetDatum(tpr[i]);
		values[2] = Float8GetDatum(fpr[i]);
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}
	return (Datum) 0;
}

static int
UsInt64Cmp(const void *a, const void *b)
{
	int64		x = *(const int64 *) a;
	int64		y = *(const int64 *) b;

	return (x > y) - (x < y);
}

/* Counts of (actual, predicted) class pairs of a classifier on the rows of a query */
FUNCTION_PREFIX PG_FUNCTION_INFO_V1(userseq_confusion_matrix);
Datum
userseq_confusion_matrix(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	char	   *name,
			   *query;
	UsModelEntry *entry;
	const us_model *model;
	UsEvalData	ed;
	MemoryContext keep = CurrentMemoryContext;
	int64	   *keys;
	int32		n_labels;

	InitMaterializedSRF(fcinfo, MAT_SRF_USE_EXPECTED_DESC);
	entry = UsEvalModel(fcinfo, &name, &query);
	UsRequireTask(entry, US_TASK_BIT(US_TASK_BINARY) | US_TASK_BIT(US_TASK_MULTICLASS) |
				  US_TASK_BIT(US_TASK_NEXT_BEHAVIOR), "userseq_confusion_matrix", name);
	model = entry->model;
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	UsCollect(fcinfo, entry, query, &ed, keep);
	SPI_finish();

	/* (actual, predicted) as one sortable key; actual -1 = unknown class (NULL) */
	n_labels = model->cfg.task == US_TASK_BINARY ? 2 : ed.n_out;
	keys = palloc(sizeof(int64) * Max(ed.n, 1));
	for (int64 i = 0; i < ed.n; i++)
	{
		int32		actual,
					pred = 0;

		if (model->cfg.task == US_TASK_BINARY)
		{
			actual = ed.truth[i] != 0.0;
			pred = ed.pred[i] >= 0.5;
		}
		else
		{
			const double *p = ed.pred + i * ed.n_out;

			actual = ed.cls[i];
			pred = us_argmax_double(p, ed.n_out);
		}
		keys[i] = (int64) (actual + 1) * (int64) (n_labels + 1) + pred;
	}
	qsort(keys, ed.n, sizeof(int64), UsInt64Cmp);
	for (int64 i = 0; i < ed.n;)
	{
		int64		j = i;
		int32		actual = (int32) (keys[i] / (n_labels + 1)) - 1;
		int32		pred = (int32) (keys[i] % (n_labels + 1));
		Datum		values[3];
		bool		nulls[3] = {actual < 0, false, false};

		while (j < ed.n && keys[j] == keys[i])
			j++;
		if (model->cfg.task == US_TASK_BINARY)
		{
			values[0] = PointerGetDatum(cstring_to_text(actual ? "true" : "false"));
			values[1] = PointerGetDatum(cstring_to_text(pred ? "true" : "false"));
		}
		else
		{
			char	  **labels = model->cfg.task == US_TASK_NEXT_BEHAVIOR ?
				model->vocab.behaviors : model->vocab.classes;
			bool		named = labels != NULL &&
				(model->cfg.task == US_TASK_NEXT_BEHAVIOR || model->vocab.n_classes == ed.n_out);

			if (actual >= 0)
				values[0] = PointerGetDatum(cstring_to_text(named ? labels[actual] : psprintf("%d", actual)));
			values[1] = PointerGetDatum(cstring_to_text(named ? labels[pred] : psprintf("%d", pred)));
		}
		values[2] = Int64GetDatum(j - i);
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
		i = j;
	}
	return (Datum) 0;
}

/* ------------------------------------------------------------------ userseq_auc aggregate */

typedef struct UsAucState
{
	int64		n;
	int64		cap;
	double	   *scores;
	uint8	   *labels;
} UsAucState;

static void
UsAucReserve(UsAucState *st, int64 need, MemoryContext cxt)
{
	int64		cap;

	if (need <= st->cap)
		return;
	cap = UsGrowCapacity(st->cap, need, 64);
	if ((Size) cap > MaxAllocHugeSize / sizeof(double))
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("userseq_auc cannot hold more than %zu rows", MaxAllocHugeSize / sizeof(double))));
	st->scores = UsResizeArray(st->scores, sizeof(double), cap, cxt);
	st->labels = UsResizeArray(st->labels, 1, cap, cxt);
	st->cap = cap;
}

/* userseq_auc transition: remember (score, label); NULLs are ignored */
FUNCTION_PREFIX PG_FUNCTION_INFO_V1(userseq_auc_transfn);
Datum
userseq_auc_transfn(PG_FUNCTION_ARGS)
{
	MemoryContext aggcxt;
	UsAucState *st;
	double		score;

	if (!AggCheckCallContext(fcinfo, &aggcxt))
		elog(ERROR, "userseq_auc_transfn called in non-aggregate context");
	st = PG_ARGISNULL(0) ? NULL : (UsAucState *) PG_GETARG_POINTER(0);
	if (st == NULL)
		st = MemoryContextAllocZero(aggcxt, sizeof(UsAucState));
	if (PG_ARGISNULL(1) || PG_ARGISNULL(2))
		PG_RETURN_POINTER(st);
	score = PG_GETARG_FLOAT8(1);
	if (isnan(score))
		ereport(ERROR,
				(errcode(ERRCODE_DATA_EXCEPTION),
				 errmsg("userseq_auc score must not be NaN")));
	UsAucReserve(st, st->n + 1, aggcxt);
	st->scores[st->n] = score;
	st->labels[st->n] = PG_GETARG_BOOL(2) ? 1 : 0;
	st->n++;
	PG_RETURN_POINTER(st);
}

/* userseq_auc combine: append state 2 to state 1 (copying into the aggregate context) */
FUNCTION_PREFIX PG_FUNCTION_INFO_V1(userseq_auc_combine);
Datum
userseq_auc_combine(PG_FUNCTION_ARGS)
{
	MemoryContext aggcxt;
	UsAucState *s1,
			   *s2;

	if (!AggCheckCallContext(fcinfo, &aggcxt))
		elog(ERROR, "userseq_auc_combine called in non-aggregate context");
	s1 = PG_ARGISNULL(0) ? NULL : (UsAucState *) PG_GETARG_POINTER(0);
	s2 = PG_ARGISNULL(1) ? NULL : (UsAucState *) PG_GETARG_POINTER(1);
	if (s2 == NULL)
		PG_RETURN_POINTER(s1);
	if (s1 == NULL)
		s1 = MemoryContextAllocZero(aggcxt, sizeof(UsAucState));
	if (s2->n > 0)
	{
		UsAucReserve(s1, s1->n + s2->n, aggcxt);
		memcpy(s1->scores + s1->n, s2->scores, sizeof(double) * s2->n);
		memcpy(s1->labels + s1->n, s2->labels, s2->n);
		s1->n += s2->n;
	}
	PG_RETURN_POINTER(s1);
}

/* userseq_auc serialize: row count, then scores, then labels */
FUNCTION_PREFIX PG_FUNCTION_INFO_V1(userseq_auc_serialize);
Datum
userseq_auc_serialize(PG_FUNCTION_ARGS)
{
	UsAucState *st;
	StringInfoData buf;

	if (!AggCheckCallContext(fcinfo, NULL))
		elog(ERROR, "userseq_auc_serialize called in non-aggregate context");
	st = (UsAucState *) PG_GETARG_POINTER(0);
	pq_begintypsend(&buf);
	pq_sendint64(&buf, st->n);
	for (int64 i = 0; i < st->n; i++)
		pq_sendfloat8(&buf, st->scores[i]);
	pq_sendbytes(&buf, (const char *) st->labels, (int) st->n);
	PG_RETURN_BYTEA_P(pq_endtypsend(&buf));
}

/* userseq_auc deserialize: the inverse of serialize, every length checked */
FUNCTION_PREFIX PG_FUNCTION_INFO_V1(userseq_auc_deserialize);
Datum
userseq_auc_deserialize(PG_FUNCTION_ARGS)
{
	MemoryContext aggcxt;
	bytea	   *b;
	StringInfoData buf;
	UsAucState *st;
	int64		n;

	if (!AggCheckCallContext(fcinfo, &aggcxt))
		elog(ERROR, "userseq_auc_deserialize called in non-aggregate context");
	b = PG_GETARG_BYTEA_PP(0);
	/* a read-only StringInfo over the bytea (initReadOnlyStringInfo is PG 17+) */
	buf.data = VARDATA_ANY(b);
	buf.len = VARSIZE_ANY_EXHDR(b);
	buf.maxlen = 0;
	buf.cursor = 0;
	n = pq_getmsgint64(&buf);
	if (n < 0 || (buf.len - buf.cursor) / 9 != n || (buf.len - buf.cursor) % 9 != 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_BINARY_REPRESENTATION),
				 errmsg("invalid userseq_auc state")));
	st = MemoryContextAllocZero(aggcxt, sizeof(UsAucState));
	UsAucReserve(st, Max(n, 1), aggcxt);
	for (int64 i = 0; i < n; i++)
		st->scores[i] = pq_getmsgfloat8(&buf);
	memcpy(st->labels, pq_getmsgbytes(&buf, (int) n), n);
	pq_getmsgend(&buf);
	st->n = n;
	PG_RETURN_POINTER(st);
}

/* userseq_auc final: ROC AUC (tie-averaged), NULL without both classes */
FUNCTION_PREFIX PG_FUNCTION_INFO_V1(userseq_auc_finalfn);
Datum
userseq_auc_finalfn(PG_FUNCTION_ARGS)
{
	UsAucState *st;
	us_allocator alloc = UsContextAllocator(CurrentMemoryContext);
	double		auc;

	if (!AggCheckCallContext(fcinfo, NULL))
		elog(ERROR, "userseq_auc_finalfn called in non-aggregate context");
	st = PG_ARGISNULL(0) ? NULL : (UsAucState *) PG_GETARG_POINTER(0);
	if (st == NULL || st->n == 0)
		PG_RETURN_NULL();
	/* the state is left untouched: final functions may run again */
	UsCheckStatus(us_roc_auc(st->scores, st->labels, NULL, (size_t) st->n, &alloc, &auc),
				  "compute ROC AUC", NULL);
	if (isnan(auc))
		PG_RETURN_NULL();
	PG_RETURN_FLOAT8(auc);
}
