/*
 * test_config_vocab.c: hyperparameter defaults and validation (every field limit), the
 * learning-rate schedules, vocabulary building and lookup, time-gap buckets, model creation,
 * clone and weight copy.
 */
#include <math.h>
#include <string.h>

#include "userseq/us_model.h"
#include "../../src/core/us_internal.h"
#include "unit.h"

static us_model_config
base_cfg(us_task task)
{
	us_model_config c;

	us_model_config_default(&c, task);
	c.n_items = 12;
	if (task == US_TASK_NEXT_ITEM)
		c.n_outputs = 12;
	if (task == US_TASK_MULTICLASS)
		c.n_outputs = 3;
	if (task == US_TASK_NEXT_BEHAVIOR)
	{
		c.n_behaviors = 4;
		c.n_outputs = 4;
	}
	return c;
}

#define EXPECT_INVALID(mod, want) \
	do { \
		us_model_config c_ = base_cfg(US_TASK_BINARY); \
		char msg_[256]; \
		us_status st_; \
		mod; \
		st_ = us_model_config_validate(&c_, msg_, sizeof msg_); \
		CHECK(st_ == (want), "model cfg %s: got %s (%s)", #mod, us_status_str(st_), msg_); \
		CHECK(st_ == US_OK || (strlen(msg_) > 10 && msg_[strlen(msg_) - 1] == '.'), \
			  "message for %s is a sentence: '%s'", #mod, msg_); \
	} while (0)

#define EXPECT_TC(mod, want) \
	do { \
		us_train_config t_; \
		char msg_[256]; \
		us_status st_; \
		us_train_config_default(&t_, US_TASK_BINARY); \
		mod; \
		st_ = us_train_config_validate(&t_, msg_, sizeof msg_); \
		CHECK(st_ == (want), "train cfg %s: got %s (%s)", #mod, us_status_str(st_), msg_); \
		CHECK(st_ == US_OK || (strlen(msg_) > 10 && msg_[strlen(msg_) - 1] == '.'), \
			  "message for %s is a sentence: '%s'", #mod, msg_); \
	} while (0)

static void
test_model_config(void)
{
	us_model_config c;
	char		msg[256];

	us_model_config_default(&c, US_TASK_BINARY);
	CHECK(c.embed_dim == 64 && c.n_filters == 64 && c.hidden_dim == 64, "default dims");
	CHECK(c.n_widths == 3 && c.widths[0] == 2 && c.widths[1] == 3 && c.widths[2] == 4, "widths");
	CHECK(c.dropout == 0.2f && c.max_len == 100 && c.recent_window == 0 && c.pos_weight == 1.0f &&
		  c.embed_init_std == 1.0f && c.architecture == US_ARCH_TEXTCNN, "defaults");
	CHECK(us_model_feature_dim(&c) == 192, "feature dim");
	c.recent_window = 2;
	CHECK(us_model_feature_dim(&c) == 192 + 128, "feature dim with recent window");
	us_model_config_default(&c, US_TASK_NEXT_ITEM);
	CHECK(c.max_len == 50 && c.recent_window == 3 && c.embed_init_std == 0.05f,
		  "next_item defaults differ from the label tasks'");
	for (int t = 1; t <= 5; t++)
	{
		c = base_cfg((us_task) t);
		CHECK(us_model_config_validate(&c, msg, sizeof msg) == US_OK, "task %d valid: %s", t, msg);
	}
	EXPECT_INVALID(c_.task = 0, US_EINVAL);
	EXPECT_INVALID(c_.task = 6, US_EINVAL);
	EXPECT_INVALID(c_.n_items = 1, US_EINVAL);
	EXPECT_INVALID(c_.n_items = US_MAX_ITEMS + 1, US_EINVAL);
	EXPECT_INVALID(c_.n_behaviors = 1, US_EINVAL);
	EXPECT_INVALID(c_.n_behaviors = US_MAX_BEHAVIORS + 1, US_EINVAL);
	EXPECT_INVALID(c_.n_behaviors = US_MAX_BEHAVIORS, US_OK);
	EXPECT_INVALID(c_.n_gap_buckets = 2, US_EINVAL);
	EXPECT_INVALID(c_.n_gap_buckets = US_MAX_GAP_BUCKETS + 1, US_EINVAL);
	EXPECT_INVALID(c_.n_gap_buckets = US_MAX_GAP_BUCKETS, US_OK);
	EXPECT_INVALID(c_.n_outputs = 2, US_EINVAL);
	EXPECT_INVALID((c_.task = US_TASK_MULTICLASS, c_.n_outputs = 1), US_EINVAL);
	EXPECT_INVALID((c_.task = US_TASK_MULTICLASS, c_.n_outputs = US_MAX_CLASSES + 1), US_EINVAL);
	EXPECT_INVALID((c_.task = US_TASK_NEXT_ITEM, c_.n_outputs = 11), US_EINVAL);
	EXPECT_INVALID((c_.task = US_TASK_NEXT_BEHAVIOR, c_.n_outputs = 4), US_EINVAL);
	EXPECT_INVALID((c_.task = US_TASK_NEXT_BEHAVIOR, c_.n_behaviors = 5, c_.n_outputs = 4), US_EINVAL);
	EXPECT_INVALID(c_.max_len = 0, US_EINVAL);
	EXPECT_INVALID(c_.max_len = US_MAX_LEN + 1, US_EINVAL);
	EXPECT_INVALID(c_.max_len = US_MAX_LEN, US_OK);
	EXPECT_INVALID(c_.embed_dim = 0, US_EINVAL);
	EXPECT_INVALID(c_.embed_dim = US_MAX_EMBED_DIM + 1, US_EINVAL);
	EXPECT_INVALID(c_.n_widths = 0, US_EINVAL);
	EXPECT_INVALID(c_.n_widths = US_MAX_WIDTHS + 1, US_EINVAL);
	EXPECT_INVALID(c_.widths[0] = 0, US_EINVAL);
	EXPECT_INVALID(c_.widths[1] = c_.widths[0], US_EINVAL);
	EXPECT_INVALID(c_.widths[2] = US_MAX_FILTER_WIDTH + 1, US_EINVAL);
	EXPECT_INVALID(c_.widths[2] = US_MAX_FILTER_WIDTH, US_OK);
	EXPECT_INVALID(c_.widths[5] = 7, US_EINVAL);
	EXPECT_INVALID(c_.n_filters = 0, US_EINVAL);
	EXPECT_INVALID(c_.n_filters = US_MAX_FILTERS + 1, US_EINVAL);
	EXPECT_INVALID(c_.hidden_dim = 0, US_EINVAL);
	EXPECT_INVALID(c_.hidden_dim = US_MAX_HIDDEN + 1, US_EINVAL);
	EXPECT_INVALID(c_.recent_window = -1, US_EINVAL);
	EXPECT_INVALID(c_.recent_window = US_MAX_RECENT + 1, US_EINVAL);
	EXPECT_INVALID(c_.recent_window = US_MAX_RECENT, US_OK);
	EXPECT_INVALID(c_.tie_output = 1, US_EINVAL);
	EXPECT_INVALID((c_.task = US_TASK_NEXT_ITEM, c_.n_outputs = 12, c_.tie_output = 1, c_.hidden_dim = c_.embed_dim + 1), US_EINVAL);
	EXPECT_INVALID((c_.task = US_TASK_NEXT_ITEM, c_.n_outputs = 12, c_.tie_output = 1), US_OK);
	EXPECT_INVALID(c_.tie_output = 2, US_EINVAL);
	EXPECT_INVALID(c_.dropout = -0.1f, US_EINVAL);
	EXPECT_INVALID(c_.dropout = 1.0f, US_EINVAL);
	EXPECT_INVALID(c_.dropout = NAN, US_ENONFINITE);
	EXPECT_INVALID(c_.pos_weight = 0.0f, US_EINVAL);
	EXPECT_INVALID(c_.pos_weight = INFINITY, US_ENONFINITE);
	EXPECT_INVALID((c_.n_items = US_MAX_ITEMS, c_.embed_dim = 1024), US_ELIMIT);
}

static void
test_train_config(void)
{
	us_train_config t;

	us_train_config_default(&t, US_TASK_NEXT_ITEM);
	CHECK(t.batch_size == 256 && t.batch_examples == 1, "next_item: batches of 256 examples");
	us_train_config_default(&t, US_TASK_BINARY);
	CHECK(t.optimizer == US_OPT_ADAM && t.learning_rate == 0.002f && t.beta1 == 0.9f &&
		  t.beta2 == 0.999f && t.epsilon == 1e-8f && t.batch_size == 64 && t.batch_examples == 0 &&
		  t.clip_norm == 5.0f && t.seed == 42 && t.lr_schedule == US_LR_CONSTANT, "train defaults");
	EXPECT_TC((void) 0, US_OK);
	CHECK(t.n_threads == 1, "train default n_threads 1");
	EXPECT_TC(t_.n_threads = 0, US_EINVAL);
	EXPECT_TC(t_.n_threads = 65, US_EINVAL);
	EXPECT_TC(t_.n_threads = 64, US_OK);
	EXPECT_TC(t_.n_threads = 2, US_OK);
	EXPECT_TC(t_.optimizer = 0, US_EINVAL);
	EXPECT_TC(t_.optimizer = 4, US_EINVAL);
	EXPECT_TC(t_.learning_rate = 0, US_EINVAL);
	EXPECT_TC(t_.learning_rate = NAN, US_ENONFINITE);
	EXPECT_TC(t_.learning_rate = INFINITY, US_ENONFINITE);
	EXPECT_TC(t_.beta1 = 1.0f, US_EINVAL);
	EXPECT_TC(t_.beta2 = -0.1f, US_EINVAL);
	EXPECT_TC(t_.epsilon = 0, US_EINVAL);
	EXPECT_TC(t_.momentum = 1.0f, US_EINVAL);
	EXPECT_TC(t_.weight_decay = -1, US_EINVAL);
	EXPECT_TC(t_.weight_decay = NAN, US_ENONFINITE);
	EXPECT_TC(t_.clip_norm = -1, US_EINVAL);
	EXPECT_TC(t_.lr_schedule = 4, US_EINVAL);
	EXPECT_TC(t_.lr_step_epochs = 0, US_EINVAL);
	EXPECT_TC(t_.lr_gamma = 0, US_EINVAL);
	EXPECT_TC(t_.lr_gamma = 1.5f, US_EINVAL);
	EXPECT_TC(t_.epochs = 0, US_EINVAL);
	EXPECT_TC(t_.batch_size = 0, US_EINVAL);
	EXPECT_TC(t_.batch_size = 65537, US_EINVAL);
	EXPECT_TC(t_.n_negatives = 1, US_EINVAL);
	EXPECT_TC(t_.n_negatives = 2, US_OK);
	EXPECT_TC(t_.max_examples_per_seq = -1, US_EINVAL);

	t.learning_rate = 0.1f;
	CHECK(us_train_learning_rate(&t, 5) == 0.1f, "constant lr");
	t.lr_schedule = US_LR_STEP;
	t.lr_step_epochs = 2;
	t.lr_gamma = 0.5f;
	CHECK(fabsf(us_train_learning_rate(&t, 1) - 0.1f) < 1e-7f &&
		  fabsf(us_train_learning_rate(&t, 2) - 0.05f) < 1e-7f &&
		  fabsf(us_train_learning_rate(&t, 5) - 0.025f) < 1e-7f, "step lr");
	t.lr_schedule = US_LR_COSINE;
	t.epochs = 4;
	CHECK(fabsf(us_train_learning_rate(&t, 0) - 0.1f) < 1e-7f &&
		  fabsf(us_train_learning_rate(&t, 2) - 0.05f) < 1e-6f &&
		  us_train_learning_rate(&t, 4) < 1e-7f, "cosine lr");
}

static void
test_vocab(void)
{
	const us_allocator *a = us_malloc_allocator();
	int64_t		ids[] = {7, 3, 9, 3, 7, 5, 7, 9, 11, -2, -2, 3};
	us_vocab	v;

	memset(&v, 0, sizeof v);
	/* counts: 3:3, 7:3, 9:2, -2:2, 5:1, 11:1 */
	CHECK_OK(us_vocab_build_items(&v, ids, 12, 1, 0, a));
	CHECK(v.n_items == 6, "all items kept: %d", v.n_items);
	CHECK(v.item_ids[0] == -2 && v.item_ids[1] == 3 && v.item_ids[5] == 11, "ascending ids");
	CHECK(v.item_counts[1] == 3 && v.item_counts[0] == 2, "counts");
	CHECK(us_vocab_item_row(&v, -2) == 2 && us_vocab_item_row(&v, 11) == 7 &&
		  us_vocab_item_row(&v, 7) == 5, "rows of known items");
	CHECK(us_vocab_item_row(&v, 4) == 1 && us_vocab_item_row(&v, 100) == 1 &&
		  us_vocab_item_row(&v, -100) == 1, "OOV rows");
	us_vocab_free(&v, a);

	CHECK_OK(us_vocab_build_items(&v, ids, 12, 2, 0, a));
	CHECK(v.n_items == 4 && v.item_ids[0] == -2 && v.item_ids[3] == 9, "min_count 2");
	us_vocab_free(&v, a);

	/* max 3: 3 and 7 (count 3), then the tie 9 / -2 at count 2 goes to the smaller id -2 */
	CHECK_OK(us_vocab_build_items(&v, ids, 12, 1, 3, a));
	CHECK(v.n_items == 3 && v.item_ids[0] == -2 && v.item_ids[1] == 3 && v.item_ids[2] == 7,
		  "max_items with tie by smaller id");
	us_vocab_free(&v, a);

	CHECK_OK(us_vocab_build_items(&v, ids, 12, 4, 0, a));
	CHECK(v.n_items == 0 && us_vocab_item_row(&v, 3) == 1, "empty vocabulary");
	us_vocab_free(&v, a);
	CHECK(us_vocab_build_items(&v, ids, 12, -1, 0, a) == US_EINVAL, "negative min_count");

	{
		char	   *beh[] = {"view", "cart", "buy"};
		us_vocab	b;

		memset(&b, 0, sizeof b);
		b.n_behaviors = 3;
		b.behaviors = beh;
		CHECK(us_vocab_behavior_row(&b, "cart", 4) == 3, "behaviour row");
		CHECK(us_vocab_behavior_row(&b, "carts", 4) == 3, "length-delimited label");
		CHECK(us_vocab_behavior_row(&b, "car", 3) == 1 && us_vocab_behavior_row(&b, "", 0) == 1,
			  "unknown behaviour is OOV");
	}

	CHECK(us_gap_bucket(1, 1000, 10) == 1, "first event bucket");
	CHECK(us_gap_bucket(0, 0, 10) == 2 && us_gap_bucket(0, -5, 10) == 2, "zero/negative gap");
	CHECK(us_gap_bucket(0, 1, 10) == 3 && us_gap_bucket(0, 2, 10) == 3 && us_gap_bucket(0, 3, 10) == 4,
		  "log buckets");
	CHECK(us_gap_bucket(0, 1e9, 10) == 9 && us_gap_bucket(0, INFINITY, 10) == 9, "capped");
	CHECK(us_gap_bucket(0, NAN, 10) == 2, "NaN gap counts as 0");
	CHECK(us_gap_bucket(0, 5, 0) == 0, "no gap input");
}

static void
test_model(void)
{
	const us_allocator *a = us_malloc_allocator();
	us_model_config c = base_cfg(US_TASK_BINARY);
	int64_t		ids[] = {10, 20, 30, 40, 50, 60, 70, 80, 90, 100};
	uint32_t	counts[10] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10};
	us_vocab	v;
	us_model   *m = NULL,
			   *m2 = NULL,
			   *cl = NULL;

	memset(&v, 0, sizeof v);
	v.n_items = 10;
	v.item_ids = ids;
	v.item_counts = counts;
	c.embed_dim = 8;
	c.n_filters = 4;
	c.hidden_dim = 5;
	c.widths[0] = 3;			/* the layout arithmetic below */
	c.widths[1] = 4;
	c.widths[2] = 5;
	c.recent_window = 2;
	c.n_gap_buckets = 6;
	CHECK_OK(us_model_create(&c, &v, 1, a, &m));
	if (m == NULL)
		return;
	CHECK(m->n_params == us_model_param_count(&c), "n_params");
	CHECK(m->n_params == 12 * 8 + 6 * 8 + (3 + 4 + 5) * 8 * 4 + 12 + (12 + 16) * 5 + 5 + 5 + 1,
		  "layout size %zu", m->n_params);
	CHECK(m->p.out_b + 1 == m->params_block + m->n_params, "last tensor ends the block");
	{
		int			zero = 1;
		double		s2 = 0;

		for (int e = 0; e < 8; e++)
			zero &= m->p.item_emb[e] == 0.0f && m->p.gap_emb[e] == 0.0f;
		CHECK(zero, "padding rows are zero");
		for (int i = 8; i < 12 * 8; i++)
			s2 += m->p.item_emb[i] * m->p.item_emb[i];
		CHECK(s2 / 88 > 0.5 && s2 / 88 < 1.6, "embedding variance ~1: %g", s2 / 88);
		zero = 1;
		for (int i = 0; i < 3 * 8 * 4; i++)
			zero &= fabsf(m->p.conv_w[0][i]) <= 1.0f / sqrtf(24.0f);
		CHECK(zero, "conv init bound");
	}
	CHECK(m->vocab.item_ids != ids && m->vocab.item_ids[9] == 100 && m->vocab.item_counts[9] == 10,
		  "vocab deep copy");
	CHECK_OK(us_model_check_finite(m));
	CHECK_OK(us_model_create(&c, &v, 1, a, &m2));
	CHECK(m2 && memcmp(m->params_block, m2->params_block, m->n_params * 4) == 0, "same seed, same init");
	us_model_free(m2);
	CHECK_OK(us_model_create(&c, &v, 2, a, &m2));
	CHECK(m2 && memcmp(m->params_block, m2->params_block, m->n_params * 4) != 0, "other seed differs");
	CHECK_OK(us_model_copy_weights(m2, m));
	CHECK(memcmp(m->params_block, m2->params_block, m->n_params * 4) == 0, "copy_weights");
	CHECK_OK(us_model_clone(m, a, &cl));
	CHECK(cl && memcmp(m->params_block, cl->params_block, m->n_params * 4) == 0 &&
		  cl->vocab.n_items == 10 && cl->vocab.item_ids != m->vocab.item_ids, "clone");
	m->p.dense_b[2] = NAN;
	CHECK(us_model_check_finite(m) == US_ENONFINITE, "NaN detected");
	m->p.dense_b[2] = INFINITY;
	CHECK(us_model_check_finite(m) == US_ENONFINITE, "inf detected");
	us_model_free(m);
	us_model_free(m2);
	us_model_free(cl);

	/* vocabulary must agree with the config */
	c.n_items = 11;
	CHECK(us_model_create(&c, &v, 1, a, &m) == US_EINVAL && m == NULL, "n_items mismatch");
	c.n_items = 12;
	ids[3] = 25;
	CHECK(us_model_create(&c, &v, 1, a, &m) == US_EINVAL, "unsorted ids rejected");
	ids[3] = 40;
	c.n_filters = 0;
	CHECK(us_model_create(&c, &v, 1, a, &m) == US_EINVAL, "invalid config rejected");
	c.n_filters = 4;
	{
		char	   *beh[] = {"view", "buy"};

		v.n_behaviors = 2;
		v.behaviors = beh;
		c.n_behaviors = 4;
		CHECK_OK(us_model_create(&c, &v, 1, a, &m));
		CHECK(m && strcmp(m->vocab.behaviors[1], "buy") == 0 && m->vocab.behaviors[1] != beh[1],
			  "behaviours deep-copied");
		us_model_free(m);
	}
}

int
main(void)
{
	test_model_config();
	test_train_config();
	test_vocab();
	test_model();
	return unit_finish("test_config_vocab");
}
