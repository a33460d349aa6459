/*
 * test_transfer.c: us_model_init_from (rows matched by item id, behaviour label and class
 * name, blocks copied only when shapes and meaning agree) and us_trainer_freeze (frozen
 * blocks stay bit-identical while the others learn).
 */
#include <string.h>

#include "userseq/us_model.h"
#include "unit.h"

typedef struct mopts
{
	int			task;
	int			n_items;
	const int64_t *ids;
	int			n_beh;
	const char *const *beh;
	int			n_cls;
	const char *const *cls;
	int			E, F, H, R, gaps, tie;
	int			n_widths;
	int			widths[3];
} mopts;

static us_model *
make(const mopts *o, uint64_t seed)
{
	us_model_config c;
	us_vocab	v;
	uint32_t	counts[64];
	us_model   *m = NULL;

	for (int i = 0; i < 64; i++)
		counts[i] = 64 - i;
	memset(&v, 0, sizeof v);
	v.n_items = o->n_items;
	v.item_ids = (int64_t *) o->ids;
	v.item_counts = counts;
	v.n_behaviors = o->n_beh;
	v.behaviors = (char **) o->beh;
	v.n_classes = o->n_cls;
	v.classes = (char **) o->cls;
	us_model_config_default(&c, (us_task) o->task);
	c.n_items = o->n_items + US_ROW_FIRST;
	c.n_behaviors = o->n_beh ? o->n_beh + US_ROW_FIRST : 0;
	c.n_gap_buckets = o->gaps;
	c.embed_dim = o->E;
	c.n_filters = o->F;
	c.hidden_dim = o->H;
	c.recent_window = o->R;
	c.tie_output = o->tie;
	c.max_len = 20;
	c.n_widths = o->n_widths;
	for (int i = 0; i < US_MAX_WIDTHS; i++)
		c.widths[i] = i < o->n_widths ? o->widths[i] : 0;
	switch (o->task)
	{
		case US_TASK_MULTICLASS:
			c.n_outputs = o->n_cls;
			break;
		case US_TASK_NEXT_ITEM:
			c.n_outputs = c.n_items;
			break;
		case US_TASK_NEXT_BEHAVIOR:
			c.n_outputs = c.n_behaviors;
			break;
		default:
			c.n_outputs = 1;
	}
	if (us_model_create(&c, &v, seed, us_malloc_allocator(), &m) != US_OK)
		return NULL;
	return m;
}

static int
rows_equal(const float *a, const float *b, size_t n)
{
	return memcmp(a, b, n * sizeof(float)) == 0;
}

static const int64_t src_ids[8] = {10, 20, 30, 40, 50, 60, 70, 80};
static const int64_t dst_ids[7] = {5, 20, 35, 50, 70, 80, 90};	/* 20, 50, 70, 80 shared */
static const char *const src_beh[3] = {"view", "cart", "buy"};
static const char *const dst_beh[4] = {"buy", "search", "view", "return"};	/* buy, view shared */
static const char *const src_cls[3] = {"low", "mid", "high"};
static const char *const dst_cls[3] = {"high", "low", "new"};

static void
base(mopts *o, int task)
{
	memset(o, 0, sizeof *o);
	o->task = task;
	o->E = 6;
	o->F = 5;
	o->H = 7;
	o->R = 2;
	o->gaps = 8;
	o->n_widths = 2;
	o->widths[0] = 2;
	o->widths[1] = 3;
}

/* next_item -> next_item with another vocabulary: every row by id, outputs by id */
static void
test_match_by_id(void)
{
	mopts		so,
				dopt;
	us_model   *src,
			   *dst,
			   *fresh;
	us_init_report rep;
	size_t		E = 6;

	base(&so, US_TASK_NEXT_ITEM);
	so.n_items = 8;
	so.ids = src_ids;
	so.n_beh = 3;
	so.beh = src_beh;
	dopt = so;
	dopt.n_items = 7;
	dopt.ids = dst_ids;
	dopt.n_beh = 4;
	dopt.beh = dst_beh;
	src = make(&so, 1);
	dst = make(&dopt, 2);
	fresh = make(&dopt, 2);
	CHECK(src && dst && fresh, "models created");
	if (!src || !dst || !fresh)
		return;
	CHECK_OK(us_model_init_from(dst, src, US_BLOCK_ALL, &rep));
	CHECK(rep.copied == US_BLOCK_ALL, "every block copied (0x%x)", rep.copied);
	CHECK(rep.incompatible == 0 && rep.absent == 0, "nothing incompatible or absent");
	CHECK(rep.item_rows == 4, "4 shared items matched, got %d", rep.item_rows);
	CHECK(rep.behavior_rows == 2, "2 shared behaviours matched, got %d", rep.behavior_rows);
	CHECK(rep.output_rows == 4 + 1, "4 shared item outputs + OOV, got %d", rep.output_rows);
	for (int i = 0; i < 7; i++)
	{
		int32_t		dr = US_ROW_FIRST + i;
		int32_t		sr = us_vocab_item_row(&src->vocab, dst_ids[i]);
		const float *want = sr >= US_ROW_FIRST ? src->p.item_emb + sr * E : fresh->p.item_emb + dr * E;

		CHECK(rows_equal(dst->p.item_emb + dr * E, want, E), "item %lld: %s row", (long long) dst_ids[i],
			  sr >= US_ROW_FIRST ? "source" : "fresh");
		CHECK(dst->p.out_b[dr] == (sr >= US_ROW_FIRST ? src->p.out_b[sr] : fresh->p.out_b[dr]),
			  "output bias of item %lld", (long long) dst_ids[i]);
		if (sr >= US_ROW_FIRST)
			CHECK(dst->p.out_w[3 * (size_t) dst->cfg.n_outputs + dr] == src->p.out_w[3 * (size_t) src->cfg.n_outputs + sr],
				  "output column of item %lld", (long long) dst_ids[i]);
	}
	CHECK(rows_equal(dst->p.item_emb, fresh->p.item_emb, E), "padding row untouched (zero)");
	CHECK(rows_equal(dst->p.item_emb + E, src->p.item_emb + E, E), "OOV row copied");
	/* behaviours by label: buy is src row 4, dst row 2; view src 2, dst 4 */
	CHECK(rows_equal(dst->p.behavior_emb + 2 * E, src->p.behavior_emb + 4 * E, E), "buy by label");
	CHECK(rows_equal(dst->p.behavior_emb + 4 * E, src->p.behavior_emb + 2 * E, E), "view by label");
	CHECK(rows_equal(dst->p.behavior_emb + 3 * E, fresh->p.behavior_emb + 3 * E, E), "search fresh");
	CHECK(rows_equal(dst->p.gap_emb, src->p.gap_emb, 8 * E), "gap buckets copied");
	CHECK(rows_equal(dst->p.conv_w[1], src->p.conv_w[1], 3 * E * 5), "conv copied");
	CHECK(rows_equal(dst->p.dense_w, src->p.dense_w, (size_t) us_model_feature_dim(&dst->cfg) * 7),
		  "dense copied");

	/* a mask: only the item table */
	us_model_free(dst);
	dst = make(&dopt, 2);
	CHECK_OK(us_model_init_from(dst, src, US_BLOCK_ITEM_EMB, &rep));
	CHECK(rep.copied == US_BLOCK_ITEM_EMB, "mask respected (0x%x)", rep.copied);
	CHECK(rows_equal(dst->p.conv_w[0], fresh->p.conv_w[0], 2 * E * 5), "conv not copied");
	us_model_free(src);
	us_model_free(dst);
	us_model_free(fresh);
}

/* next_item -> binary (transfer), multiclass by class name, incompatible shapes named */
static void
test_tasks_and_shapes(void)
{
	mopts		so,
				dopt;
	us_model   *src,
			   *dst;
	us_init_report rep;

	base(&so, US_TASK_NEXT_ITEM);
	so.n_items = 8;
	so.ids = src_ids;
	dopt = so;
	dopt.task = US_TASK_BINARY;
	src = make(&so, 3);
	dst = make(&dopt, 4);
	CHECK_OK(us_model_init_from(dst, src, US_BLOCK_ALL, &rep));
	CHECK((rep.copied & (US_BLOCK_ITEM_EMB | US_BLOCK_CONV | US_BLOCK_DENSE)) ==
		  (US_BLOCK_ITEM_EMB | US_BLOCK_CONV | US_BLOCK_DENSE), "body copied across tasks");
	CHECK(rep.absent & US_BLOCK_OUTPUT, "another task's head is absent, not incompatible");
	CHECK(rep.incompatible == 0, "nothing incompatible");
	us_model_free(dst);

	/* other widths and embedding size: named, with a reason */
	dopt.E = 4;
	dopt.widths[1] = 4;
	dst = make(&dopt, 4);
	CHECK_OK(us_model_init_from(dst, src, US_BLOCK_ALL, &rep));
	CHECK(rep.incompatible & US_BLOCK_ITEM_EMB, "item_embedding incompatible");
	CHECK(rep.incompatible & US_BLOCK_CONV, "conv incompatible");
	CHECK(rep.incompatible & US_BLOCK_DENSE, "dense incompatible (recent window of another E)");
	CHECK(strstr(rep.reason[0], "embedding_dim 4 here, 6 in the source") != NULL, "reason: %s", rep.reason[0]);
	CHECK(strstr(rep.reason[3], "widths 2,4") != NULL && strstr(rep.reason[3], "widths 2,3") != NULL,
		  "conv reason names both widths: %s", rep.reason[3]);
	CHECK(rep.copied == 0, "nothing of another shape copied (0x%x)", rep.copied);
	us_model_free(dst);
	us_model_free(src);

	/* multiclass: outputs by class name */
	base(&so, US_TASK_MULTICLASS);
	so.n_items = 8;
	so.ids = src_ids;
	so.n_cls = 3;
	so.cls = src_cls;
	dopt = so;
	dopt.cls = dst_cls;
	src = make(&so, 5);
	dst = make(&dopt, 6);
	CHECK_OK(us_model_init_from(dst, src, US_BLOCK_OUTPUT, &rep));
	CHECK(rep.output_rows == 2, "two classes matched by name, got %d", rep.output_rows);
	CHECK(dst->p.out_b[0] == src->p.out_b[2] && dst->p.out_b[1] == src->p.out_b[0],
		  "high and low by name");
	for (int h = 0; h < 7; h++)
		CHECK(dst->p.out_w[h * 3 + 0] == src->p.out_w[h * 3 + 2], "high column h=%d", h);
	us_model_free(dst);
	us_model_free(src);
}

/* freezing: frozen blocks bit-identical after training steps, the others moved */
static void
test_freeze(void)
{
	mopts		o;
	us_model   *m,
			   *before;
	us_train_config tc;
	us_trainer *tr = NULL;
	int64_t		off[33];
	int32_t		items[32 * 4];
	int32_t		beh[32 * 4];
	int32_t		gaps[32 * 4];
	float		y[32];
	int32_t		ids[32];
	us_dataset	ds;
	us_epoch_stats es;
	size_t		E = 6;

	base(&o, US_TASK_BINARY);
	o.n_items = 8;
	o.ids = src_ids;
	o.n_beh = 3;
	o.beh = src_beh;
	m = make(&o, 7);
	CHECK_OK(us_model_clone(m, us_malloc_allocator(), &before));
	for (int s = 0; s < 32; s++)
	{
		off[s] = 4 * s;
		for (int j = 0; j < 4; j++)
		{
			items[4 * s + j] = US_ROW_FIRST + (s * 3 + j * 5) % 8;
			beh[4 * s + j] = US_ROW_FIRST + (s + j) % 3;
			gaps[4 * s + j] = 1 + j;
		}
		y[s] = (float) (s % 2);
		ids[s] = s;
	}
	off[32] = 128;
	memset(&ds, 0, sizeof ds);
	ds.n_seqs = 32;
	ds.offsets = off;
	ds.items = items;
	ds.behaviors = beh;
	ds.gaps = gaps;
	ds.targets = y;
	us_train_config_default(&tc, US_TASK_BINARY);
	tc.batch_size = 8;
	tc.learning_rate = 0.05f;
	tc.weight_decay = 0.01f;
	tc.clip_norm = 1.0f;
	CHECK_OK(us_trainer_create(m, &tc, us_malloc_allocator(), &tr));
	us_trainer_freeze(tr, US_BLOCK_ITEM_EMB | US_BLOCK_CONV | US_BLOCK_OUTPUT);
	CHECK_OK(us_trainer_epoch(tr, &ds, ids, 32, 0, NULL, &es));
	CHECK_OK(us_trainer_epoch(tr, &ds, ids, 32, 1, NULL, &es));
	CHECK(rows_equal(m->p.item_emb, before->p.item_emb, 10 * E), "item_embedding frozen");
	CHECK(rows_equal(m->p.conv_w[0], before->p.conv_w[0], 2 * E * 5) &&
		  rows_equal(m->p.conv_b[1], before->p.conv_b[1], 5), "conv frozen");
	CHECK(rows_equal(m->p.out_w, before->p.out_w, 7) && m->p.out_b[0] == before->p.out_b[0], "output frozen");
	CHECK(!rows_equal(m->p.dense_w, before->p.dense_w, (size_t) us_model_feature_dim(&m->cfg) * 7),
		  "dense learned");
	CHECK(!rows_equal(m->p.behavior_emb + 2 * E, before->p.behavior_emb + 2 * E, 3 * E),
		  "behaviour embedding learned");
	CHECK(!rows_equal(m->p.gap_emb + E, before->p.gap_emb + E, 4 * E), "gap embedding learned");
	us_trainer_free(tr);

	/* no freeze: the same run moves the item table */
	us_model_free(m);
	m = make(&o, 7);
	CHECK_OK(us_trainer_create(m, &tc, us_malloc_allocator(), &tr));
	CHECK_OK(us_trainer_epoch(tr, &ds, ids, 32, 0, NULL, &es));
	CHECK(!rows_equal(m->p.item_emb + 2 * E, before->p.item_emb + 2 * E, 8 * E), "unfrozen item table learns");
	us_trainer_free(tr);
	us_model_free(m);
	us_model_free(before);
}

static void
test_names(void)
{
	for (int i = 0; i < US_N_BLOCKS; i++)
		CHECK(us_block_from_name(us_block_name(i)) == (1u << i), "block %d round trip", i);
	CHECK(us_block_from_name("conv") == US_BLOCK_CONV, "conv");
	CHECK(us_block_from_name("nope") == 0, "unknown name");
	CHECK(us_block_name(US_N_BLOCKS) == NULL, "out of range");
}

int
main(void)
{
	test_names();
	test_match_by_id();
	test_tasks_and_shapes();
	test_freeze();
	return unit_finish("test_transfer");
}
