/*
 * scorer_share.c: the shareable image of a scorer (us_share.h). Kept apart from scorer.c:
 * it only lays out and binds what us_scorer_create builds, and its unit test
 * (test/unit/test_share.c) checks that an opened image scores bit-identically.
 *
 * Freeing: the model and the scorer of an opened image carry a wrapping allocator whose free
 * ignores pointers inside the image, so us_model_free / us_scorer_free release only what
 * was allocated privately.
 */
#include <stddef.h>
#include <string.h>

#include "userseq/us_format.h"
#include "userseq/us_share.h"
#include "scorer_internal.h"

#define IMG_MAGIC "USIMAGE1"
/* 2: the next_item screen is part of the image; 3: and the transition prior; 4: the screen's
 * order and chunk bounds; 5: the repeat prior's weight */
#define IMG_LAYOUT 5
#define IMG_ALIGN 64

enum
{
	SEC_PARAMS,
	SEC_ITEM_IDS,
	SEC_ITEM_COUNTS,
	SEC_BEH_STR,
	SEC_CLS_STR,
	SEC_T_ITEM,
	SEC_T_BEH,
	SEC_T_GAP,
	SEC_FOLD_SLOT,
	SEC_OUT_ROWS,				/* next_item screen: untied output rows, row-major (V, H) */
	SEC_QD,						/* (H, Vp) int8 */
	SEC_QSCALE,					/* (Vp) */
	SEC_QBIAS,					/* (Vp) */
	SEC_QERR,					/* (Vp / 8, US_SCREEN_QE_N) */
	SEC_SPERM,					/* (Vp) int32 screen row -> item row, -1 padding */
	SEC_BMAX,					/* (H, NCp) */
	SEC_BMETA,					/* (NC, 3) */
	SEC_TR_SRC,					/* transition prior (us_transitions): (n_src) int32 */
	SEC_TR_START,				/* (n_src + 1) int64 */
	SEC_TR_TO,					/* (nnz) int32 */
	SEC_TR_COUNT,				/* (nnz) uint32 */
	SEC_TR_LOGC,				/* (nnz) float, as the writer derived it */
	SEC_N
};

typedef struct img_header
{
	char		magic[8];
	uint32_t	crc;			/* CRC32C of bytes [offsetof(len), total) */
	uint32_t	layout;
	uint64_t	len;
	us_share_key key;
	us_model_config cfg;
	int32_t		n_vocab_items,
				n_vocab_beh,
				n_vocab_cls;
	int32_t		folded,
				n_fold,
				beh0_zero,
				gap0_zero;
	int32_t		screen;			/* the screen's tables are in the image */
	float		rep_weight;		/* repeat prior (no sections); 0 when absent */
	float		tr_weight;		/* transition prior; 0 and no sections when absent */
	int32_t		tr_n_src;
	int64_t		tr_nnz;
	uint64_t	n_params;
	uint64_t	off[SEC_N];
	uint64_t	size[SEC_N];
} img_header;

#define CRC_START offsetof(img_header, len)

static size_t
align_up(size_t n)
{
	return (n + IMG_ALIGN - 1) & ~(size_t) (IMG_ALIGN - 1);
}

static size_t
strings_bytes(char *const *s, int32_t n)
{
	size_t		b = 0;

	for (int32_t i = 0; i < n; i++)
		b += strlen(s[i]) + 1;
	return b;
}

/* Section sizes of scorer s; 0 if s cannot be laid out. */
static int
img_sizes(const us_scorer *s, uint64_t *size)
{
	const us_model *m = s->model;
	size_t		rowb = s->S * sizeof(float);

	memset(size, 0, sizeof(uint64_t) * SEC_N);
	/* only folded scorers: the direct path has nothing worth sharing but the decode */
	if (m == NULL || m->params_block == NULL || !s->folded)
		return 0;
	size[SEC_PARAMS] = m->n_params * sizeof(float);
	size[SEC_ITEM_IDS] = m->vocab.item_ids ? (uint64_t) m->vocab.n_items * sizeof(int64_t) : 0;
	size[SEC_ITEM_COUNTS] = m->vocab.item_counts ? (uint64_t) m->vocab.n_items * sizeof(uint32_t) : 0;
	size[SEC_BEH_STR] = strings_bytes(m->vocab.behaviors, m->vocab.n_behaviors);
	size[SEC_CLS_STR] = strings_bytes(m->vocab.classes, m->vocab.n_classes);
	if (s->folded)
	{
		size[SEC_T_ITEM] = (uint64_t) s->n_fold * rowb;
		size[SEC_T_BEH] = s->t_beh ? (uint64_t) s->NB * rowb : 0;
		size[SEC_T_GAP] = s->t_gap ? (uint64_t) s->NG * rowb : 0;
		size[SEC_FOLD_SLOT] = s->fold_slot ? (uint64_t) s->V * sizeof(int32_t) : 0;
	}
	if (s->screen)
	{
		size[SEC_OUT_ROWS] = s->out_rows_own ? (uint64_t) s->V * s->H * sizeof(float) : 0;
		size[SEC_QD] = (uint64_t) s->Vp * s->H;
		size[SEC_QSCALE] = size[SEC_QBIAS] = (uint64_t) s->Vp * sizeof(float);
		size[SEC_QERR] = (uint64_t) s->Vp / 8 * US_SCREEN_QE_N * sizeof(float);
		size[SEC_SPERM] = (uint64_t) s->Vp * sizeof(int32_t);
		size[SEC_BMAX] = (uint64_t) s->H * s->NCp * sizeof(float);
		size[SEC_BMETA] = (uint64_t) s->NC * 3 * sizeof(float);
	}
	if (m->cfg.task == US_TASK_NEXT_ITEM && m->trans.n_src > 0)
	{
		size[SEC_TR_SRC] = (uint64_t) m->trans.n_src * sizeof(int32_t);
		size[SEC_TR_START] = ((uint64_t) m->trans.n_src + 1) * sizeof(int64_t);
		size[SEC_TR_TO] = (uint64_t) m->trans.nnz * sizeof(int32_t);
		size[SEC_TR_COUNT] = (uint64_t) m->trans.nnz * sizeof(uint32_t);
		size[SEC_TR_LOGC] = (uint64_t) m->trans.nnz * sizeof(float);
	}
	return 1;
}

static size_t
img_layout(const uint64_t *size, uint64_t *off)
{
	size_t		at = align_up(sizeof(img_header));

	for (int i = 0; i < SEC_N; i++)
	{
		off[i] = at;
		at = align_up(at + size[i]);
	}
	return at;
}

size_t
us_share_image_size(const us_scorer *scorer)
{
	uint64_t	size[SEC_N],
				off[SEC_N];

	if (scorer == NULL || !img_sizes(scorer, size))
		return 0;
	return img_layout(size, off);
}

static void
put_strings(char *dst, char *const *s, int32_t n)
{
	for (int32_t i = 0; i < n; i++)
	{
		size_t		l = strlen(s[i]) + 1;

		memcpy(dst, s[i], l);
		dst += l;
	}
}

us_status
us_share_image_write(const us_scorer *s, const us_share_key *key, void *dst, size_t cap)
{
	const us_model *m;
	img_header *h = dst;
	uint8_t    *b = dst;
	size_t		total;

	if (s == NULL || key == NULL || dst == NULL || ((uintptr_t) dst & (IMG_ALIGN - 1)))
		return US_EINVAL;
	m = s->model;
	total = us_share_image_size(s);
	if (total == 0 || cap < total)
		return US_EINVAL;
	memset(dst, 0, total);
	memcpy(h->magic, IMG_MAGIC, 8);
	h->layout = IMG_LAYOUT;
	h->len = total;
	h->key = *key;
	h->cfg = m->cfg;
	h->n_vocab_items = m->vocab.n_items;
	h->n_vocab_beh = m->vocab.n_behaviors;
	h->n_vocab_cls = m->vocab.n_classes;
	h->folded = s->folded;
	h->n_fold = s->folded ? s->n_fold : 0;
	h->beh0_zero = s->beh0_zero;
	h->gap0_zero = s->gap0_zero;
	h->screen = s->screen;
	h->n_params = m->n_params;
	if (m->cfg.task == US_TASK_NEXT_ITEM)
		h->rep_weight = m->trans.repeat_weight;
	if (m->cfg.task == US_TASK_NEXT_ITEM && m->trans.n_src > 0)
	{
		h->tr_weight = m->trans.weight;
		h->tr_n_src = m->trans.n_src;
		h->tr_nnz = m->trans.nnz;
	}
	img_sizes(s, h->size);
	img_layout(h->size, h->off);

	memcpy(b + h->off[SEC_PARAMS], m->params_block, h->size[SEC_PARAMS]);
	if (h->size[SEC_ITEM_IDS])
		memcpy(b + h->off[SEC_ITEM_IDS], m->vocab.item_ids, h->size[SEC_ITEM_IDS]);
	if (h->size[SEC_ITEM_COUNTS])
		memcpy(b + h->off[SEC_ITEM_COUNTS], m->vocab.item_counts, h->size[SEC_ITEM_COUNTS]);
	put_strings((char *) b + h->off[SEC_BEH_STR], m->vocab.behaviors, m->vocab.n_behaviors);
	put_strings((char *) b + h->off[SEC_CLS_STR], m->vocab.classes, m->vocab.n_classes);
	if (h->size[SEC_T_ITEM])
		memcpy(b + h->off[SEC_T_ITEM], s->t_item, h->size[SEC_T_ITEM]);
	if (h->size[SEC_T_BEH])
		memcpy(b + h->off[SEC_T_BEH], s->t_beh, h->size[SEC_T_BEH]);
	if (h->size[SEC_T_GAP])
		memcpy(b + h->off[SEC_T_GAP], s->t_gap, h->size[SEC_T_GAP]);
	if (h->size[SEC_FOLD_SLOT])
		memcpy(b + h->off[SEC_FOLD_SLOT], s->fold_slot, h->size[SEC_FOLD_SLOT]);
	if (h->size[SEC_OUT_ROWS])
		memcpy(b + h->off[SEC_OUT_ROWS], s->out_rows_own, h->size[SEC_OUT_ROWS]);
	if (h->screen)
	{
		memcpy(b + h->off[SEC_QD], s->qd, h->size[SEC_QD]);
		memcpy(b + h->off[SEC_QSCALE], s->qscale, h->size[SEC_QSCALE]);
		memcpy(b + h->off[SEC_QBIAS], s->qbias, h->size[SEC_QBIAS]);
		memcpy(b + h->off[SEC_QERR], s->qerr, h->size[SEC_QERR]);
		memcpy(b + h->off[SEC_SPERM], s->sperm, h->size[SEC_SPERM]);
		memcpy(b + h->off[SEC_BMAX], s->bmax, h->size[SEC_BMAX]);
		memcpy(b + h->off[SEC_BMETA], s->bmeta, h->size[SEC_BMETA]);
	}
	if (h->tr_n_src > 0)
	{
		memcpy(b + h->off[SEC_TR_SRC], m->trans.src, h->size[SEC_TR_SRC]);
		memcpy(b + h->off[SEC_TR_START], m->trans.start, h->size[SEC_TR_START]);
		memcpy(b + h->off[SEC_TR_TO], m->trans.to, h->size[SEC_TR_TO]);
		memcpy(b + h->off[SEC_TR_COUNT], m->trans.count, h->size[SEC_TR_COUNT]);
		memcpy(b + h->off[SEC_TR_LOGC], m->trans.logc, h->size[SEC_TR_LOGC]);
	}
	h->crc = us_crc32c(0, b + CRC_START, total - CRC_START);
	return US_OK;
}

/* ------------------------------------------------------------------ open */

/* An allocator that never frees inside [lo, hi): lives in the same chunk as its owner. */
typedef struct view_alloc
{
	us_allocator real;
	const uint8_t *lo,
			   *hi;
} view_alloc;

static void *
view_alloc_fn(void *ctx, size_t n)
{
	view_alloc *v = ctx;

	return v->real.alloc(v->real.ctx, n);
}

static void
view_free_fn(void *ctx, void *p)
{
	view_alloc *v = ctx;
	us_allocator real = v->real;	/* p may be the chunk holding v */

	if ((const uint8_t *) p >= v->lo && (const uint8_t *) p < v->hi)
		return;
	real.free(real.ctx, p);
}

/*
 * One allocation holding a zeroed object of size bytes (a model or a scorer) followed by the
 * view allocator its arrays go through: those inside the image b .. b + len are never freed,
 * the others (and, through the object's own free, the chunk) go to alloc. NULL if out of memory.
 */
static void *
view_object(const uint8_t *b, size_t len, const us_allocator *alloc, size_t size,
			us_allocator *view)
{
	size_t		off = (size + _Alignof(max_align_t) - 1) / _Alignof(max_align_t) * _Alignof(max_align_t);
	uint8_t    *chunk = alloc->alloc(alloc->ctx, off + sizeof(view_alloc));
	view_alloc *v;

	if (chunk == NULL)
		return NULL;
	memset(chunk, 0, off + sizeof(view_alloc));
	v = (view_alloc *) (chunk + off);
	v->real = *alloc;
	v->lo = b;
	v->hi = b + len;
	view->alloc = view_alloc_fn;
	view->free = view_free_fn;
	view->ctx = v;
	return chunk;
}

/* Points out[0..n) at the NUL-terminated strings packed in [p, p + size); 0 if malformed. */
static int
bind_strings(const char *p, uint64_t size, int32_t n, char **out)
{
	const char *end = p + size;

	for (int32_t i = 0; i < n; i++)
	{
		const char *z = memchr(p, 0, (size_t) (end - p));

		if (p >= end || z == NULL)
			return 0;
		out[i] = (char *) p;
		p = z + 1;
	}
	return p == end;
}

/* Checks everything in h against len, key and the sizes its configuration implies. */
static us_status
img_check(const uint8_t *b, size_t len, const us_share_key *key, int verify_crc)
{
	const img_header *h = (const img_header *) b;
	uint64_t	rowb = 0,
				off[SEC_N];
	const us_model_config *c;

	if (len < sizeof(img_header))
		return US_ETRUNCATED;
	if (memcmp(h->magic, IMG_MAGIC, 8) != 0 || h->layout != IMG_LAYOUT)
		return US_EFORMAT;
	if (h->len != len)
		return h->len > len ? US_ETRUNCATED : US_EFORMAT;
	if (verify_crc && us_crc32c(0, b + CRC_START, len - CRC_START) != h->crc)
		return US_ECHECKSUM;
	if (memcmp(&h->key, key, sizeof(*key)) != 0)
		return US_EFORMAT;
	c = &h->cfg;
	if (us_model_config_validate(c, NULL, 0) != US_OK ||
		h->n_params != us_model_param_count(c) ||
		h->n_vocab_items < 0 || h->n_vocab_items > c->n_items ||
		h->n_vocab_beh < 0 || h->n_vocab_beh > (c->n_behaviors > 0 ? c->n_behaviors : 0) ||
		h->n_vocab_cls < 0 || h->n_vocab_cls > c->n_outputs)
		return US_EFORMAT;
	for (int w = 0; w < c->n_widths; w++)
		rowb += (uint64_t) c->widths[w] * c->n_filters * sizeof(float);
	if (h->size[SEC_PARAMS] != h->n_params * sizeof(float) ||
		(h->size[SEC_ITEM_IDS] != 0 && h->size[SEC_ITEM_IDS] != (uint64_t) h->n_vocab_items * 8) ||
		(h->size[SEC_ITEM_COUNTS] != 0 && h->size[SEC_ITEM_COUNTS] != (uint64_t) h->n_vocab_items * 4))
		return US_EFORMAT;
	{
		if (!h->folded || h->n_fold <= 0 || h->n_fold > c->n_items ||
			h->size[SEC_T_ITEM] != (uint64_t) h->n_fold * rowb ||
			h->size[SEC_T_BEH] != (uint64_t) c->n_behaviors * rowb ||
			h->size[SEC_T_GAP] != (uint64_t) c->n_gap_buckets * rowb ||
			h->size[SEC_FOLD_SLOT] != (h->n_fold < c->n_items ? (uint64_t) c->n_items * 4 : 0))
			return US_EFORMAT;
	}
	/* the screen: next_item over every item row, as us_screen_build lays it out */
	{
		uint64_t	Vp = ((uint64_t) c->n_items + US_SCREEN_CHUNK - 1) / US_SCREEN_CHUNK * US_SCREEN_CHUNK,
					NCp = US_SCREEN_NCP((uint64_t) c->n_items),
					H = (uint64_t) c->hidden_dim;
		int			untied = c->task == US_TASK_NEXT_ITEM && !c->tie_output;

		if (h->screen != 0 && h->screen != 1)
			return US_EFORMAT;
		if (h->screen ?
			(c->task != US_TASK_NEXT_ITEM || c->n_outputs != c->n_items ||
			 h->size[SEC_OUT_ROWS] != (untied ? (uint64_t) c->n_items * H * 4 : 0) ||
			 h->size[SEC_QD] != Vp * H || h->size[SEC_QSCALE] != Vp * 4 ||
			 h->size[SEC_QBIAS] != Vp * 4 || h->size[SEC_QERR] != Vp / 8 * US_SCREEN_QE_N * 4 ||
			 h->size[SEC_SPERM] != Vp * 4 || h->size[SEC_BMAX] != H * NCp * 4 ||
			 h->size[SEC_BMETA] != Vp / US_SCREEN_CHUNK * 3 * 4) :
			(h->size[SEC_OUT_ROWS] | h->size[SEC_QD] | h->size[SEC_QSCALE] |
			 h->size[SEC_QBIAS] | h->size[SEC_QERR] | h->size[SEC_SPERM] |
			 h->size[SEC_BMAX] | h->size[SEC_BMETA]) != 0)
			return US_EFORMAT;
	}
	if (!isfinite(h->rep_weight) || h->rep_weight < 0.0f || h->rep_weight > 1000.0f ||
		(h->rep_weight > 0.0f && c->task != US_TASK_NEXT_ITEM))
		return US_EFORMAT;
	/* the transition prior: sizes here, its rows once bound (open_model) */
	if (h->tr_n_src > 0 ?
		(c->task != US_TASK_NEXT_ITEM || h->tr_n_src >= c->n_items || h->tr_nnz < h->tr_n_src ||
		 h->tr_nnz > (int64_t) h->tr_n_src * US_TRANS_MAX_PER_ROW ||
		 h->size[SEC_TR_SRC] != (uint64_t) h->tr_n_src * 4 ||
		 h->size[SEC_TR_START] != ((uint64_t) h->tr_n_src + 1) * 8 ||
		 h->size[SEC_TR_TO] != (uint64_t) h->tr_nnz * 4 ||
		 h->size[SEC_TR_COUNT] != (uint64_t) h->tr_nnz * 4 ||
		 h->size[SEC_TR_LOGC] != (uint64_t) h->tr_nnz * 4) :
		(h->tr_n_src != 0 || h->tr_nnz != 0 || h->tr_weight != 0.0f ||
		 (h->size[SEC_TR_SRC] | h->size[SEC_TR_START] | h->size[SEC_TR_TO] |
		  h->size[SEC_TR_COUNT] | h->size[SEC_TR_LOGC]) != 0))
		return US_EFORMAT;
	if (img_layout(h->size, off) != len || memcmp(off, h->off, sizeof(off)) != 0)
		return US_EFORMAT;
	/* the screen's order in range (its rows index the output rows) */
	if (h->size[SEC_SPERM])
	{
		const int32_t *perm = (const int32_t *) (b + h->off[SEC_SPERM]);

		for (uint64_t i = 0; i < h->size[SEC_SPERM] / 4; i++)
			if (perm[i] < -1 || perm[i] >= c->n_items)
				return US_EFORMAT;
	}
	/* fold slots in range (the gather trusts them) */
	if (h->size[SEC_FOLD_SLOT])
	{
		const int32_t *slot = (const int32_t *) (b + h->off[SEC_FOLD_SLOT]);

		for (int32_t r = 0; r < c->n_items; r++)
			if (slot[r] < -1 || slot[r] >= h->n_fold)
				return US_EFORMAT;
	}
	return US_OK;
}

static us_status
open_model(const uint8_t *b, size_t len, const us_allocator *alloc, us_model **out)
{
	const img_header *h = (const img_header *) b;
	us_allocator view;
	us_model   *m = view_object(b, len, alloc, sizeof(us_model), &view);
	int			fail = 0;

	if (m == NULL)
		return US_ENOMEM;
	m->alloc = view;
	m->cfg = h->cfg;
	m->n_params = h->n_params;
	m->params_block = (float *) (b + h->off[SEC_PARAMS]);
	us_params_bind(&m->cfg, m->params_block, &m->p);
	m->vocab.n_items = h->n_vocab_items;
	if (h->size[SEC_ITEM_IDS])
		m->vocab.item_ids = (int64_t *) (b + h->off[SEC_ITEM_IDS]);
	if (h->size[SEC_ITEM_COUNTS])
		m->vocab.item_counts = (uint32_t *) (b + h->off[SEC_ITEM_COUNTS]);
	m->vocab.n_behaviors = h->n_vocab_beh;
	m->vocab.n_classes = h->n_vocab_cls;
	if (h->n_vocab_beh > 0)
	{
		m->vocab.behaviors = alloc->alloc(alloc->ctx, sizeof(char *) * (size_t) h->n_vocab_beh);
		fail |= m->vocab.behaviors == NULL;
	}
	if (h->n_vocab_cls > 0)
	{
		m->vocab.classes = alloc->alloc(alloc->ctx, sizeof(char *) * (size_t) h->n_vocab_cls);
		fail |= m->vocab.classes == NULL;
	}
	if (!fail &&
		(!bind_strings((const char *) b + h->off[SEC_BEH_STR], h->size[SEC_BEH_STR],
					   h->n_vocab_beh, m->vocab.behaviors) ||
		 !bind_strings((const char *) b + h->off[SEC_CLS_STR], h->size[SEC_CLS_STR],
					   h->n_vocab_cls, m->vocab.classes)))
	{
		us_model_free(m);
		return US_EFORMAT;
	}
	if (fail)
	{
		us_model_free(m);
		return US_ENOMEM;
	}
	m->trans.repeat_weight = h->rep_weight;
	/*
	 * The transition prior in place. Its rows index the logits, so their shape is checked on
	 * every open (O(nnz) <= 64 V); logc is the writer's, covered by the CRC.
	 */
	if (h->tr_n_src > 0)
	{
		us_transitions *t = &m->trans;

		t->weight = h->tr_weight;
		t->n_src = h->tr_n_src;
		t->nnz = h->tr_nnz;
		t->src = (int32_t *) (b + h->off[SEC_TR_SRC]);
		t->start = (int64_t *) (b + h->off[SEC_TR_START]);
		t->to = (int32_t *) (b + h->off[SEC_TR_TO]);
		t->count = (uint32_t *) (b + h->off[SEC_TR_COUNT]);
		t->logc = (float *) (b + h->off[SEC_TR_LOGC]);
		if (!us_trans_shape_ok(t, m->cfg.n_items))
		{
			us_model_free(m);
			return US_EFORMAT;
		}
	}
	*out = m;
	return US_OK;
}

/*
 * The scorer of an opened image: the same dimensions, folded state, screen and scratch as
 * us_scorer_create gave its writer, with the tables read in place. Images are made of folded
 * scorers only (us_share_image_size).
 */
static us_status
open_scorer(const uint8_t *b, size_t len, const us_model *model, const us_allocator *alloc,
			us_scorer **out)
{
	const img_header *h = (const img_header *) b;
	const us_model_config *cfg = &model->cfg;
	us_allocator view;
	us_scorer  *s = view_object(b, len, alloc, sizeof(us_scorer), &view);
	int			fail = 0;

	if (s == NULL)
		return US_ENOMEM;
	s->model = model;
	s->alloc = view;
	us_scorer_set_dims(s, cfg);

	/* the screen as its builder left it (in place; only its scratch is private) */
	if (h->screen)
	{
		us_screen_tables t = {
			h->size[SEC_OUT_ROWS] ? (const float *) (b + h->off[SEC_OUT_ROWS]) : model->p.item_emb,
			(int8_t *) (b + h->off[SEC_QD]), (float *) (b + h->off[SEC_QSCALE]),
			(float *) (b + h->off[SEC_QBIAS]), (float *) (b + h->off[SEC_QERR]),
			(int32_t *) (b + h->off[SEC_SPERM]), (float *) (b + h->off[SEC_BMAX]),
			(float *) (b + h->off[SEC_BMETA])
		};

		us_screen_attach(s, &t);
	}

	{
		s->folded = 1;
		s->n_fold = h->n_fold;
		s->t_item = (float *) (b + h->off[SEC_T_ITEM]);
		s->t_beh = h->size[SEC_T_BEH] ? (float *) (b + h->off[SEC_T_BEH]) : NULL;
		s->t_gap = h->size[SEC_T_GAP] ? (float *) (b + h->off[SEC_T_GAP]) : NULL;
		s->fold_slot = h->size[SEC_FOLD_SLOT] ? (int32_t *) (b + h->off[SEC_FOLD_SLOT]) : NULL;
		s->beh0_zero = h->beh0_zero;
		s->gap0_zero = h->gap0_zero;
		if (s->fold_slot)
		{
			s->cold = us_scorer_alloc(s, (size_t) s->L * s->S, sizeof(float), &fail);
			s->xcold = us_scorer_alloc(s, (size_t) s->L * s->E, sizeof(float), &fail);
		}
	}

	/* scratch: as us_scorer_create gives a folded scorer */
	s->x = us_scorer_alloc(s, (size_t) s->R * s->E, sizeof(float), &fail);
	if (s->fold_slot)
		s->w_cat = us_scorer_alloc(s, (size_t) s->E * s->S, sizeof(float), &fail);
	s->rp = us_scorer_alloc(s, (size_t) 3 * s->L, sizeof(float *), &fail);
	return us_scorer_finish(s, cfg->task, fail, out);
}

us_status
us_share_image_open(const void *image, size_t len, const us_share_key *key, int verify_crc,
					const us_allocator *alloc, us_model **model, us_scorer **scorer)
{
	const uint8_t *b = image;
	us_status	st;

	if (model == NULL || scorer == NULL)
		return US_EINVAL;
	*model = NULL;
	*scorer = NULL;
	if (image == NULL || key == NULL || alloc == NULL || alloc->alloc == NULL ||
		alloc->free == NULL || ((uintptr_t) image & (IMG_ALIGN - 1)))
		return US_EINVAL;
	st = img_check(b, len, key, verify_crc);
	if (st != US_OK)
		return st;
	st = open_model(b, len, alloc, model);
	if (st != US_OK)
		return st;
	st = open_scorer(b, len, *model, alloc, scorer);
	if (st != US_OK)
	{
		us_model_free(*model);
		*model = NULL;
	}
	return st;
}
