/*
 * recommend.c: userseq_recommend, the k most likely next items of a sequence under a
 * next_item model, by name and by value.
 *
 * The model's top-k (us_scorer_topk: folded path, partial selection, no full sort) sees the
 * most recent max_len events, as in training; exclude_seen also removes items the user
 * touched before that window (we ask the core for a few more and filter). score is the
 * model's logit (unnormalised; higher is better). This file does not evaluate rankings
 * (evaluate.c does).
 */
#include "postgres.h"

#include "funcapi.h"
#include "utils/builtins.h"
#include "utils/tuplestore.h"

#include "models/model_cache.h"
#include "seq/seq_events.h"
#include "userseq_pg.h"
#include "seq/userseq_type.h"

static int
UsInt32Cmp(const void *a, const void *b)
{
	int32		x = *(const int32 *) a;
	int32		y = *(const int32 *) b;

	return (x > y) - (x < y);
}

static Datum
UsRecommend(FunctionCallInfo fcinfo, bool by_value)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	UsModelEntry *entry;
	const us_model *model;
	const char *name = NULL;
	int32		k = PG_GETARG_INT32(2);
	bool		exclude_seen = PG_GETARG_BOOL(3);
	UserSeq    *seq;
	UsEventBuffer *buf;
	us_events	all,
				input;
	int32		n_catalogue,
				k_eff,
				k_req,
				n_old = 0,
				found,
				emitted = 0;
	int32	   *old_rows = NULL;
	int32	   *rows;
	float	   *scores;
	us_status	st;

	InitMaterializedSRF(fcinfo, MAT_SRF_USE_EXPECTED_DESC);

	if (by_value)
		entry = UsModelByValue(fcinfo, PG_GETARG_DATUM(0));
	else
	{
		name = text_to_cstring(PG_GETARG_TEXT_PP(0));
		entry = UsModelByName(fcinfo, PG_GETARG_TEXT_PP(0));
	}
	UsRequireTask(entry, US_TASK_BIT(US_TASK_NEXT_ITEM), "userseq_recommend", name);
	model = entry->model;

	if (k < 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("k must not be negative"),
				 errdetail("k was %d.", k)));
	n_catalogue = model->vocab.n_items;
	k_eff = Min(k, n_catalogue);
	if (k_eff == 0)
		return (Datum) 0;

	/* encode the whole history; the model input is its most recent max_len events */
	seq = PG_GETARG_USERSEQ_P(1);
	buf = UsQueryEventBuffer(fcinfo);
	UsSeqToEvents(&model->cfg, &model->vocab, seq, 0, buf, &all);
	input = all;
	if (all.n > model->cfg.max_len)
	{
		int32		skip = all.n - model->cfg.max_len;

		input.items = all.items + skip;
		input.behaviors = all.behaviors ? all.behaviors + skip : NULL;
		input.gaps = all.gaps ? all.gaps + skip : NULL;
		input.n = model->cfg.max_len;

		if (exclude_seen)
		{
			/* known items seen only before the window: the core cannot know about them */
			old_rows = palloc(sizeof(int32) * skip);
			for (int32 i = 0; i < skip; i++)
				if (all.items[i] >= US_ROW_FIRST)
					old_rows[n_old++] = all.items[i];
			qsort(old_rows, n_old, sizeof(int32), UsInt32Cmp);
			{
				int32		u = 0;

				for (int32 i = 0; i < n_old; i++)
					if (u == 0 || old_rows[i] != old_rows[u - 1])
						old_rows[u++] = old_rows[i];
				n_old = u;
			}
		}
	}

	k_req = (int32) Min((int64) k_eff + n_old, (int64) n_catalogue);
	rows = palloc(sizeof(int32) * k_req);
	scores = palloc(sizeof(float) * k_req);
	/* per-request work: BLAS threads would only add hand-offs (use parallel query instead) */
	UsApplyThreadCount(1);
	st = us_scorer_topk(entry->scorer, &input, k_req, exclude_seen ? 1 : 0, rows, scores, &found);
	UsCheckScoreStatus(st, "recommend items");

	for (int32 i = 0; i < found && emitted < k_eff; i++)
	{
		Datum		values[3];
		bool		nulls[3] = {false, false, false};

		if (n_old > 0 && bsearch(&rows[i], old_rows, n_old, sizeof(int32), UsInt32Cmp))
			continue;
		if (rows[i] < US_ROW_FIRST || rows[i] - US_ROW_FIRST >= n_catalogue)
			elog(ERROR, "top-k returned row %d outside the catalogue. Please report a bug.", rows[i]);
		emitted++;
		values[0] = Int32GetDatum(emitted);
		values[1] = Int64GetDatum(model->vocab.item_ids[rows[i] - US_ROW_FIRST]);
		values[2] = Float8GetDatum((double) scores[i]);
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}
	return (Datum) 0;
}

/* The k most likely next items of a sequence under a next_item model */
FUNCTION_PREFIX PG_FUNCTION_INFO_V1(userseq_recommend);
Datum
userseq_recommend(PG_FUNCTION_ARGS)
{
	return UsRecommend(fcinfo, false);
}

/* userseq_recommend with the model passed as a bytea */
FUNCTION_PREFIX PG_FUNCTION_INFO_V1(userseq_recommend_bytea);
Datum
userseq_recommend_bytea(PG_FUNCTION_ARGS)
{
	return UsRecommend(fcinfo, true);
}
