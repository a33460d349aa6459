/*
 * seq_events.c: userseq -> core row indices (items, behaviour labels, time-gap buckets).
 * Does not build vocabularies (training does) and does not touch the model weights.
 */
#include "postgres.h"

#include "seq/seq_events.h"
#include "userseq_pg.h"

void
UsEventBufferInit(UsEventBuffer *buf, MemoryContext cxt)
{
	memset(buf, 0, sizeof(*buf));
	buf->cxt = cxt;
}

int32
UsEventGapBucket(const TimestampTz *times, int32 prev, int32 j, int32 n_buckets)
{
	if (prev < 0)
		return us_gap_bucket(1, 0.0, n_buckets);
	return us_gap_bucket(0, (double) (times[j] - times[prev]) / USECS_PER_SEC, n_buckets);
}

static void
UsEventBufferReserve(UsEventBuffer *buf, int32 n)
{
	int32		cap;

	if (n <= buf->capacity)
		return;
	cap = (int32) UsGrowCapacity(buf->capacity, n, 64);
	if (buf->items)
	{
		pfree(buf->items);
		pfree(buf->behaviors);
		pfree(buf->gaps);
	}
	buf->items = MemoryContextAlloc(buf->cxt, sizeof(int32) * cap);
	buf->behaviors = MemoryContextAlloc(buf->cxt, sizeof(int32) * cap);
	buf->gaps = MemoryContextAlloc(buf->cxt, sizeof(int32) * cap);
	buf->capacity = cap;
}

void
UsSeqToEvents(const us_model_config *cfg, const us_vocab *vocab, const UserSeq *seq,
			  int32 keep, UsEventBuffer *buf, us_events *events)
{
	int32		n = UserSeqLength(seq);
	int32		start = (keep > 0 && n > keep) ? n - keep : 0;
	int32		m = n - start;
	const int64 *items = UserSeqItems(seq);
	const TimestampTz *times = UserSeqTimes(seq);
	const uint8 *codes = UserSeqBehaviors(seq);

	UsEventBufferReserve(buf, Max(m, 1));

	for (int32 i = 0; i < m; i++)
		buf->items[i] = us_vocab_item_row(vocab, items[start + i]);

	if (cfg->n_behaviors > 0)
	{
		/* map the value's label table once, then each event by its code */
		int32		label_rows[USERSEQ_MAX_LABELS + 1];
		int			n_labels = UserSeqNumLabels(seq);

		label_rows[0] = 0;
		for (int l = 0; l < n_labels; l++)
		{
			int			len;
			const char *label = UserSeqLabel(seq, l, &len);

			label_rows[l + 1] = us_vocab_behavior_row(vocab, label, (size_t) len);
		}
		for (int32 i = 0; i < m; i++)
			buf->behaviors[i] = label_rows[codes[start + i]];
	}

	if (cfg->n_gap_buckets > 0)
	{
		for (int32 i = 0; i < m; i++)
			buf->gaps[i] = UsEventGapBucket(times, start + i - 1, start + i, cfg->n_gap_buckets);
	}

	events->items = buf->items;
	events->behaviors = cfg->n_behaviors > 0 ? buf->behaviors : NULL;
	events->gaps = cfg->n_gap_buckets > 0 ? buf->gaps : NULL;
	events->n = m;
}
