/*
 * transfer.c: copying parameters between models of possibly different vocabularies, tasks
 * and shapes (userseq_train's init_from, userseq_retrain's warm start). Rows are matched by
 * what they mean (item id, behaviour label, class name), never by row number, because two
 * trainings on different data number their vocabularies differently.
 */
#include <stdio.h>
#include <string.h>

#include "userseq/us_model.h"
#include "us_internal.h"

static const char *const block_names[US_N_BLOCKS] = {
	"item_embedding", "behavior_embedding", "gap_embedding", "conv", "dense", "output"
};

const char *
us_block_name(int i)
{
	return i >= 0 && i < US_N_BLOCKS ? block_names[i] : NULL;
}

uint32_t
us_block_from_name(const char *name)
{
	if (name == NULL)
		return 0;
	for (int i = 0; i < US_N_BLOCKS; i++)
		if (strcmp(name, block_names[i]) == 0)
			return 1u << i;
	return 0;
}

static int
block_index(uint32_t bit)
{
	for (int i = 0; i < US_N_BLOCKS; i++)
		if (bit == (1u << i))
			return i;
	return 0;
}

static void
incompatible(us_init_report *rep, uint32_t bit, const char *fmt, int a, int b)
{
	rep->incompatible |= bit;
	snprintf(rep->reason[block_index(bit)], sizeof(rep->reason[0]), fmt, a, b);
}

/* src row of dst item row r (US_ROW_OOV maps to itself, padding to none) */
static int32_t
item_src_row(const us_model *dst, const us_model *src, int32_t r)
{
	if (r == US_ROW_OOV)
		return US_ROW_OOV;
	if (r < US_ROW_FIRST || r - US_ROW_FIRST >= dst->vocab.n_items)
		return -1;
	r = us_vocab_item_row(&src->vocab, dst->vocab.item_ids[r - US_ROW_FIRST]);
	return r >= US_ROW_FIRST ? r : -1;
}

static int32_t
behavior_src_row(const us_model *dst, const us_model *src, int32_t r)
{
	const char *label;

	if (r == US_ROW_OOV)
		return US_ROW_OOV;
	if (r < US_ROW_FIRST || r - US_ROW_FIRST >= dst->vocab.n_behaviors)
		return -1;
	label = dst->vocab.behaviors[r - US_ROW_FIRST];
	r = us_vocab_behavior_row(&src->vocab, label, strlen(label));
	return r >= US_ROW_FIRST ? r : -1;
}

static int32_t
class_src_row(const us_model *dst, const us_model *src, int32_t r)
{
	if (r >= dst->vocab.n_classes)
		return -1;
	for (int32_t c = 0; c < src->vocab.n_classes; c++)
		if (strcmp(src->vocab.classes[c], dst->vocab.classes[r]) == 0)
			return c;
	return -1;
}

typedef int32_t (*row_map_fn) (const us_model *dst, const us_model *src, int32_t r);

/* copies matched rows of a (rows, E) table; returns the vocabulary rows matched */
static int32_t
copy_rows(float *d, const float *s, int32_t rows, size_t E, const us_model *dst,
		  const us_model *src, row_map_fn map)
{
	int32_t		matched = 0;

	for (int32_t r = 0; r < rows; r++)
	{
		int32_t		sr = map(dst, src, r);

		if (sr < 0)
			continue;
		memcpy(d + (size_t) r * E, s + (size_t) sr * E, E * sizeof(float));
		matched += r >= US_ROW_FIRST;
	}
	return matched;
}

static int
same_conv(const us_model_config *a, const us_model_config *b)
{
	if (a->embed_dim != b->embed_dim || a->n_filters != b->n_filters || a->n_widths != b->n_widths)
		return 0;
	for (int i = 0; i < a->n_widths; i++)
		if (a->widths[i] != b->widths[i])
			return 0;
	return 1;
}

static void
copy_output(us_model *dst, const us_model *src, us_init_report *rep)
{
	const us_model_config *dc = &dst->cfg,
			   *sc = &src->cfg;
	size_t		H = (size_t) dc->hidden_dim;
	row_map_fn	map = NULL;

	if (dc->task != sc->task)
	{
		rep->absent |= US_BLOCK_OUTPUT;	/* a head of another task: nothing to carry over */
		return;
	}
	if (dc->hidden_dim != sc->hidden_dim)
	{
		incompatible(rep, US_BLOCK_OUTPUT, "hidden_dim %d here, %d in the source", dc->hidden_dim,
					 sc->hidden_dim);
		return;
	}
	if (dc->tie_output != sc->tie_output)
	{
		incompatible(rep, US_BLOCK_OUTPUT, "tie_output %d here, %d in the source", dc->tie_output,
					 sc->tie_output);
		return;
	}
	switch (dc->task)
	{
		case US_TASK_MULTICLASS:
			map = class_src_row;
			break;
		case US_TASK_NEXT_ITEM:
			map = item_src_row;
			break;
		case US_TASK_NEXT_BEHAVIOR:
			if (dc->n_behaviors == 0 || sc->n_behaviors == 0)
			{
				rep->absent |= US_BLOCK_OUTPUT;
				return;
			}
			map = behavior_src_row;
			break;
		default:
			break;
	}
	rep->output_rows = 0;
	for (int32_t o = 0; o < dc->n_outputs; o++)
	{
		int32_t		so = map ? map(dst, src, o) : o;

		if (so < 0 || so >= sc->n_outputs)
			continue;
		dst->p.out_b[o] = src->p.out_b[so];
		if (dst->p.out_w)
			for (size_t h = 0; h < H; h++)
				dst->p.out_w[h * (size_t) dc->n_outputs + o] = src->p.out_w[h * (size_t) sc->n_outputs + so];
		rep->output_rows++;
	}
	rep->copied |= US_BLOCK_OUTPUT;
}

us_status
us_model_init_from(us_model *dst, const us_model *src, uint32_t mask, us_init_report *rep)
{
	const us_model_config *dc,
			   *sc;
	size_t		E;

	if (dst == NULL || src == NULL || rep == NULL)
		return US_EINVAL;
	memset(rep, 0, sizeof(*rep));
	dc = &dst->cfg;
	sc = &src->cfg;
	E = (size_t) dc->embed_dim;

	if (mask & US_BLOCK_ITEM_EMB)
	{
		if (dc->embed_dim != sc->embed_dim)
			incompatible(rep, US_BLOCK_ITEM_EMB, "embedding_dim %d here, %d in the source",
						 dc->embed_dim, sc->embed_dim);
		else
		{
			rep->item_rows = copy_rows(dst->p.item_emb, src->p.item_emb, dc->n_items, E, dst, src,
									   item_src_row);
			rep->copied |= US_BLOCK_ITEM_EMB;
		}
	}
	if (mask & US_BLOCK_BEHAVIOR_EMB)
	{
		if (dc->n_behaviors == 0 || sc->n_behaviors == 0)
			rep->absent |= US_BLOCK_BEHAVIOR_EMB;
		else if (dc->embed_dim != sc->embed_dim)
			incompatible(rep, US_BLOCK_BEHAVIOR_EMB, "embedding_dim %d here, %d in the source",
						 dc->embed_dim, sc->embed_dim);
		else
		{
			rep->behavior_rows = copy_rows(dst->p.behavior_emb, src->p.behavior_emb,
										   dc->n_behaviors, E, dst, src, behavior_src_row);
			rep->copied |= US_BLOCK_BEHAVIOR_EMB;
		}
	}
	if (mask & US_BLOCK_GAP_EMB)
	{
		if (dc->n_gap_buckets == 0 || sc->n_gap_buckets == 0)
			rep->absent |= US_BLOCK_GAP_EMB;
		else if (dc->n_gap_buckets != sc->n_gap_buckets)
			incompatible(rep, US_BLOCK_GAP_EMB, "%d time-gap buckets here, %d in the source",
						 dc->n_gap_buckets, sc->n_gap_buckets);
		else if (dc->embed_dim != sc->embed_dim)
			incompatible(rep, US_BLOCK_GAP_EMB, "embedding_dim %d here, %d in the source",
						 dc->embed_dim, sc->embed_dim);
		else
		{
			memcpy(dst->p.gap_emb, src->p.gap_emb, (size_t) dc->n_gap_buckets * E * sizeof(float));
			rep->copied |= US_BLOCK_GAP_EMB;
		}
	}
	if (mask & US_BLOCK_CONV)
	{
		if (!same_conv(dc, sc))
		{
			char		w[2][32];

			for (int m = 0; m < 2; m++)
			{
				const us_model_config *c = m ? sc : dc;
				size_t		o = 0;

				w[m][0] = '\0';
				for (int i = 0; i < c->n_widths && o < sizeof(w[m]) - 8; i++)
					o += (size_t) snprintf(w[m] + o, sizeof(w[m]) - o, "%s%d", i ? "," : "", c->widths[i]);
			}
			rep->incompatible |= US_BLOCK_CONV;
			snprintf(rep->reason[block_index(US_BLOCK_CONV)], sizeof(rep->reason[0]),
					 "widths %s x %d filters on embedding_dim %d here, widths %s x %d filters on %d in the source",
					 w[0], dc->n_filters, dc->embed_dim, w[1], sc->n_filters, sc->embed_dim);
		}
		else
		{
			for (int i = 0; i < dc->n_widths; i++)
			{
				memcpy(dst->p.conv_w[i], src->p.conv_w[i],
					   (size_t) dc->widths[i] * E * (size_t) dc->n_filters * sizeof(float));
				memcpy(dst->p.conv_b[i], src->p.conv_b[i], (size_t) dc->n_filters * sizeof(float));
			}
			rep->copied |= US_BLOCK_CONV;
		}
	}
	if (mask & US_BLOCK_DENSE)
	{
		/* the dense input is [pooled filters, recent window]: same layout, not just same width */
		if (dc->n_widths * dc->n_filters != sc->n_widths * sc->n_filters ||
			dc->recent_window != sc->recent_window ||
			(dc->recent_window > 0 && dc->embed_dim != sc->embed_dim))
			incompatible(rep, US_BLOCK_DENSE, "dense input of %d features here, %d in the source "
						 "(widths x num_filters + recent_window x embedding_dim)",
						 us_model_feature_dim(dc), us_model_feature_dim(sc));
		else if (dc->hidden_dim != sc->hidden_dim)
			incompatible(rep, US_BLOCK_DENSE, "hidden_dim %d here, %d in the source",
						 dc->hidden_dim, sc->hidden_dim);
		else
		{
			size_t		D = (size_t) us_model_feature_dim(dc),
						H = (size_t) dc->hidden_dim;

			memcpy(dst->p.dense_w, src->p.dense_w, D * H * sizeof(float));
			memcpy(dst->p.dense_b, src->p.dense_b, H * sizeof(float));
			rep->copied |= US_BLOCK_DENSE;
		}
	}
	if (mask & US_BLOCK_OUTPUT)
		copy_output(dst, src, rep);
	return US_OK;
}
