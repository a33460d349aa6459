/*
 * model_fixture.h: small random models of every task and input option, shared by the format
 * and scorer unit tests (and the fuzz seed generator). Test code only.
 */
#ifndef USERSEQ_MODEL_FIXTURE_H
#define USERSEQ_MODEL_FIXTURE_H

#include <stdlib.h>
#include <string.h>

#include "userseq/us_model.h"

/* Options of a fixture model. */
typedef struct fixture_opts
{
	int			task;
	int			behaviors;		/* behaviour input (required by next_behavior) */
	int			gaps;			/* time-gap input */
	int			recent;			/* recent window R */
	int			tie;			/* next_item tied output */
	int			n_vocab;		/* known items */
	int			E, F, H, max_len;
	int			n_widths;
	int			widths[US_MAX_WIDTHS];
	int			sasrec;			/* self-attention encoder instead of the convolutions */
	int			blocks, heads;	/* sasrec */
} fixture_opts;

static inline void
fixture_default(fixture_opts *o, int task)
{
	memset(o, 0, sizeof(*o));
	o->task = task;
	o->behaviors = task == US_TASK_NEXT_BEHAVIOR;
	o->n_vocab = 9;
	o->E = 8;
	o->F = 6;
	o->H = 8;
	o->max_len = 12;
	o->n_widths = 2;
	o->widths[0] = 2;
	o->widths[1] = 4;
}

static const char *fixture_beh_labels[] = {"view", "search", "cart", "buy"};
static const char *fixture_class_labels[] = {"low", "mid", "high"};

/* Creates a model with random weights; every nonzero padding row is left as created. */
static inline us_status
fixture_model(const fixture_opts *o, uint64_t seed, us_model **out)
{
	us_model_config cfg;
	us_vocab	voc;
	int64_t    *ids;
	uint32_t   *counts;
	us_status	st;

	if (o->n_vocab > 1 << 20)
		return US_EINVAL;
	ids = malloc(sizeof(int64_t) * (size_t) (o->n_vocab + 1));
	counts = malloc(sizeof(uint32_t) * (size_t) (o->n_vocab + 1));
	if (ids == NULL || counts == NULL)
	{
		free(ids);
		free(counts);
		return US_ENOMEM;
	}
	us_model_config_default(&cfg, (us_task) o->task);
	memset(&voc, 0, sizeof(voc));
	for (int i = 0; i < o->n_vocab; i++)
	{
		ids[i] = 1000 + 7 * (int64_t) i - (i == 0 ? 5000000000LL : 0);
		counts[i] = (uint32_t) (100 - i);
	}
	voc.n_items = o->n_vocab;
	voc.item_ids = ids;
	voc.item_counts = counts;
	cfg.n_items = o->n_vocab + 2;
	if (o->behaviors)
	{
		voc.n_behaviors = 4;
		voc.behaviors = (char **) fixture_beh_labels;
		cfg.n_behaviors = 6;
	}
	cfg.n_gap_buckets = o->gaps ? 10 : 0;
	switch (o->task)
	{
		case US_TASK_MULTICLASS:
			cfg.n_outputs = 3;
			voc.n_classes = 3;
			voc.classes = (char **) fixture_class_labels;
			break;
		case US_TASK_NEXT_ITEM:
			cfg.n_outputs = cfg.n_items;
			break;
		case US_TASK_NEXT_BEHAVIOR:
			cfg.n_outputs = cfg.n_behaviors;
			break;
		default:
			cfg.n_outputs = 1;
	}
	cfg.max_len = o->max_len;
	cfg.embed_dim = o->E;
	cfg.n_filters = o->F;
	cfg.hidden_dim = o->tie ? o->E : o->H;
	cfg.n_widths = o->n_widths;
	for (int i = 0; i < US_MAX_WIDTHS; i++)
		cfg.widths[i] = i < o->n_widths ? o->widths[i] : 0;
	cfg.recent_window = o->recent;
	if (o->sasrec)
	{
		cfg.architecture = US_ARCH_SASREC;
		cfg.n_blocks = o->blocks;
		cfg.n_heads = o->heads;
		cfg.n_widths = 0;
		cfg.n_filters = 0;
		cfg.recent_window = 0;
		memset(cfg.widths, 0, sizeof(cfg.widths));
	}
	cfg.tie_output = o->tie;
	cfg.dropout = 0.25f;
	cfg.pos_weight = 1.5f;
	st = us_model_create(&cfg, &voc, seed, us_malloc_allocator(), out);
	free(ids);
	free(counts);
	return st;
}

/*
 * Gives a next_item model a transition prior built by us_transitions_build from n_seqs random
 * sequences of length 2 .. 9 over its item rows (some out-of-vocabulary rows mixed in), with
 * the given weight.
 */
static inline us_status
fixture_transitions(us_model *m, uint64_t seed, int n_seqs, float weight)
{
	int64_t		offsets[257];
	int32_t		items[256 * 9],
				ids[256];
	us_dataset	d;
	uint64_t	x = seed * 2654435761u + 1;
	us_status	st;

	if (n_seqs > 256)
		return US_EINVAL;
	offsets[0] = 0;
	for (int s = 0; s < n_seqs; s++)
	{
		int			len;

		x = x * 6364136223846793005ULL + 1442695040888963407ULL;
		len = 2 + (int) ((x >> 33) % 8);
		for (int i = 0; i < len; i++)
		{
			uint64_t	a, b;

			x = x * 6364136223846793005ULL + 1442695040888963407ULL;
			a = (x >> 33) % (uint64_t) (m->cfg.n_items - US_ROW_FIRST);
			b = (x >> 13) % (uint64_t) (m->cfg.n_items - US_ROW_FIRST);
			/* the smaller of two draws: low rows repeat; row 1 (OOV) now and then */
			items[offsets[s] + i] = (x >> 58) % 11 == 0 ? US_ROW_OOV :
				US_ROW_FIRST + (int32_t) (a < b ? a : b);
		}
		offsets[s + 1] = offsets[s] + len;
		ids[s] = s;
	}
	memset(&d, 0, sizeof(d));
	d.n_seqs = n_seqs;
	d.offsets = offsets;
	d.items = items;
	st = us_transitions_build(m, &d, ids, n_seqs);
	if (st == US_OK)
		m->trans.weight = weight;
	return st;
}

/* Number of fixture variants enumerated by fixture_variant(). */
#define FIXTURE_N_VARIANTS 40

/*
 * Variant v of the options: 5 tasks x behaviour on/off x gaps on/off x recent on/off
 * (next_behavior always has behaviours; next_item alternates tied output).
 */
static inline void
fixture_variant(fixture_opts *o, int v)
{
	int			task = 1 + v % 5;
	int			bits = v / 5;

	fixture_default(o, task);
	o->behaviors = (bits & 1) || task == US_TASK_NEXT_BEHAVIOR;
	o->gaps = (bits >> 1) & 1;
	o->recent = (bits >> 2) & 1 ? 3 : 0;
	o->tie = task == US_TASK_NEXT_ITEM && (bits & 1);
}

/* Variant v of the options with the sasrec encoder (2 blocks, 2 heads). */
static inline void
fixture_variant_sasrec(fixture_opts *o, int v)
{
	fixture_variant(o, v);
	o->sasrec = 1;
	o->blocks = 2;
	o->heads = 2;
}

#endif
