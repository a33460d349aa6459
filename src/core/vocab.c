/*
 * vocab.c: item and behaviour row lookup, building the item vocabulary from training
 * occurrences, time-gap buckets, and vocabulary copies. It does not read labels of classes
 * (the glue fills those) and keeps no global state.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "userseq/us_model.h"
#include "us_internal.h"

int32_t
us_vocab_item_row(const us_vocab *vocab, int64_t item_id)
{
	int64_t		lo = 0,
				hi;

	if (vocab == NULL || vocab->item_ids == NULL || vocab->n_items <= 0)
		return US_ROW_OOV;
	hi = vocab->n_items - 1;
	while (lo <= hi)
	{
		int64_t		mid = lo + (hi - lo) / 2;
		int64_t		v = vocab->item_ids[mid];

		if (v == item_id)
			return (int32_t) (US_ROW_FIRST + mid);
		if (v < item_id)
			lo = mid + 1;
		else
			hi = mid - 1;
	}
	return US_ROW_OOV;
}

int32_t
us_vocab_behavior_row(const us_vocab *vocab, const char *label, size_t len)
{
	/* at most US_MAX_BEHAVIORS short labels: a linear scan is fine and keeps insertion order */
	if (vocab == NULL || vocab->behaviors == NULL || label == NULL)
		return US_ROW_OOV;
	for (int32_t i = 0; i < vocab->n_behaviors; i++)
	{
		const char *b = vocab->behaviors[i];

		if (strlen(b) == len && memcmp(b, label, len) == 0)
			return US_ROW_FIRST + i;
	}
	return US_ROW_OOV;
}

int32_t
us_gap_bucket(int first, double gap_seconds, int32_t n_buckets)
{
	double		b;

	if (n_buckets <= 1)
		return 0;
	if (first)
		return 1;
	if (!(gap_seconds > 0.0))	/* negative and NaN count as 0 */
		gap_seconds = 0.0;
	b = 2.0 + floor(log2(1.0 + gap_seconds));
	if (!(b < (double) (n_buckets - 1)))	/* also catches +inf */
		return n_buckets - 1;
	return (int32_t) b;
}

static int
cmp_i64(const void *a, const void *b)
{
	int64_t		x = *(const int64_t *) a,
				y = *(const int64_t *) b;

	return (x > y) - (x < y);
}

typedef struct id_count
{
	int64_t		id;
	uint32_t	count;
} id_count;

/* most frequent first, ties by smaller id: a total order, so qsort is deterministic */
static int
cmp_freq(const void *a, const void *b)
{
	const id_count *x = a,
			   *y = b;

	if (x->count != y->count)
		return x->count > y->count ? -1 : 1;
	return (x->id > y->id) - (x->id < y->id);
}

static int
cmp_id(const void *a, const void *b)
{
	const id_count *x = a,
			   *y = b;

	return (x->id > y->id) - (x->id < y->id);
}

us_status
us_vocab_build_items(us_vocab *vocab, const int64_t *ids, size_t n_ids,
					 int32_t min_count, int32_t max_items, const us_allocator *alloc)
{
	int64_t    *sorted = NULL;
	id_count   *uniq = NULL;
	size_t		n_uniq = 0,
				bytes;
	size_t		keep;

	if (vocab == NULL || alloc == NULL || (ids == NULL && n_ids > 0) || min_count < 0 ||
		max_items < 0)
		return US_EINVAL;
	vocab->n_items = 0;
	vocab->item_ids = NULL;
	vocab->item_counts = NULL;
	if (n_ids == 0)
		return US_OK;
	if (!us_mul_size(n_ids, sizeof(int64_t), &bytes))
		return US_ELIMIT;
	sorted = alloc->alloc(alloc->ctx, bytes);
	if (sorted == NULL)
		return US_ENOMEM;
	memcpy(sorted, ids, bytes);
	qsort(sorted, n_ids, sizeof(int64_t), cmp_i64);
	for (size_t i = 0; i < n_ids; i++)
		if (i == 0 || sorted[i] != sorted[i - 1])
			n_uniq++;
	uniq = alloc->alloc(alloc->ctx, n_uniq * sizeof(id_count));
	if (uniq == NULL)
	{
		alloc->free(alloc->ctx, sorted);
		return US_ENOMEM;
	}
	n_uniq = 0;
	for (size_t i = 0; i < n_ids;)
	{
		size_t		j = i;

		while (j < n_ids && sorted[j] == sorted[i])
			j++;
		if ((int64_t) (j - i) >= (int64_t) min_count)
		{
			uniq[n_uniq].id = sorted[i];
			uniq[n_uniq].count = (j - i) > UINT32_MAX ? UINT32_MAX : (uint32_t) (j - i);
			n_uniq++;
		}
		i = j;
	}
	alloc->free(alloc->ctx, sorted);

	keep = n_uniq;
	if (max_items > 0 && keep > (size_t) max_items)
	{
		qsort(uniq, n_uniq, sizeof(id_count), cmp_freq);
		keep = (size_t) max_items;
		qsort(uniq, keep, sizeof(id_count), cmp_id);
	}
	if (keep > (size_t) US_MAX_ITEMS - US_ROW_FIRST)
	{
		alloc->free(alloc->ctx, uniq);
		return US_ELIMIT;
	}
	if (keep > 0)
	{
		vocab->item_ids = alloc->alloc(alloc->ctx, keep * sizeof(int64_t));
		vocab->item_counts = alloc->alloc(alloc->ctx, keep * sizeof(uint32_t));
		if (vocab->item_ids == NULL || vocab->item_counts == NULL)
		{
			if (vocab->item_ids)
				alloc->free(alloc->ctx, vocab->item_ids);
			if (vocab->item_counts)
				alloc->free(alloc->ctx, vocab->item_counts);
			vocab->item_ids = NULL;
			vocab->item_counts = NULL;
			alloc->free(alloc->ctx, uniq);
			return US_ENOMEM;
		}
		for (size_t i = 0; i < keep; i++)
		{
			vocab->item_ids[i] = uniq[i].id;
			vocab->item_counts[i] = uniq[i].count;
		}
	}
	vocab->n_items = (int32_t) keep;
	alloc->free(alloc->ctx, uniq);
	return US_OK;
}

static void
free_strings(char **s, int32_t n, const us_allocator *alloc)
{
	if (s == NULL)
		return;
	for (int32_t i = 0; i < n; i++)
		if (s[i])
			alloc->free(alloc->ctx, s[i]);
	alloc->free(alloc->ctx, s);
}

void
us_vocab_free(us_vocab *vocab, const us_allocator *alloc)
{
	if (vocab == NULL)
		return;
	if (vocab->item_ids)
		alloc->free(alloc->ctx, vocab->item_ids);
	if (vocab->item_counts)
		alloc->free(alloc->ctx, vocab->item_counts);
	free_strings(vocab->behaviors, vocab->n_behaviors, alloc);
	free_strings(vocab->classes, vocab->n_classes, alloc);
	memset(vocab, 0, sizeof(*vocab));
}

static us_status
copy_strings(char ***dst, char *const *src, int32_t n, const us_allocator *alloc)
{
	char	  **out;

	*dst = NULL;
	if (n <= 0)
		return US_OK;
	if (src == NULL)
		return US_EINVAL;
	out = alloc->alloc(alloc->ctx, (size_t) n * sizeof(char *));
	if (out == NULL)
		return US_ENOMEM;
	memset(out, 0, (size_t) n * sizeof(char *));
	*dst = out;
	for (int32_t i = 0; i < n; i++)
	{
		size_t		len;

		if (src[i] == NULL)
			return US_EINVAL;
		len = strlen(src[i]);
		out[i] = alloc->alloc(alloc->ctx, len + 1);
		if (out[i] == NULL)
			return US_ENOMEM;
		memcpy(out[i], src[i], len + 1);
	}
	return US_OK;
}

us_status
us_vocab_copy(us_vocab *dst, const us_vocab *src, const us_allocator *alloc)
{
	us_status	st;
	size_t		n;

	memset(dst, 0, sizeof(*dst));
	if (src->n_items < 0 || src->n_behaviors < 0 || src->n_classes < 0)
		return US_EINVAL;
	n = (size_t) src->n_items;
	if (n > 0)
	{
		if (src->item_ids == NULL)
			return US_EINVAL;
		dst->item_ids = alloc->alloc(alloc->ctx, n * sizeof(int64_t));
		if (dst->item_ids == NULL)
			return US_ENOMEM;
		memcpy(dst->item_ids, src->item_ids, n * sizeof(int64_t));
		dst->n_items = src->n_items;
		if (src->item_counts)
		{
			dst->item_counts = alloc->alloc(alloc->ctx, n * sizeof(uint32_t));
			if (dst->item_counts == NULL)
			{
				us_vocab_free(dst, alloc);
				return US_ENOMEM;
			}
			memcpy(dst->item_counts, src->item_counts, n * sizeof(uint32_t));
		}
	}
	st = copy_strings(&dst->behaviors, src->behaviors, src->n_behaviors, alloc);
	dst->n_behaviors = dst->behaviors ? src->n_behaviors : 0;
	if (st == US_OK)
	{
		st = copy_strings(&dst->classes, src->classes, src->n_classes, alloc);
		dst->n_classes = dst->classes ? src->n_classes : 0;
	}
	if (st != US_OK)
		us_vocab_free(dst, alloc);
	return st;
}
