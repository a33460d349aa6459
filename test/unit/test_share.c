/*
 * test_share.c: the shareable scorer image (us_share.h). An opened image scores
 * bit-identically to us_scorer_create (every fixture variant, full and partial folding,
 * next_item top-k), opening a next_item image binds its screen instead of rebuilding it (and
 * an unscreened scorer's image opens unscreened), an image that is corrupt, truncated or made
 * for another key is refused, and a direct-path scorer has no image.
 */
#include <stdint.h>
#include <string.h>

#include "userseq/us_model.h"
#include "userseq/us_rng.h"
#include "userseq/us_share.h"
#include "../../src/core/scorer_internal.h"
#include "unit.h"
#include "model_fixture.h"

static void *
aligned_image(size_t n)
{
	void	   *p = NULL;

	return posix_memalign(&p, 64, n) == 0 ? p : NULL;
}

static void
random_events(const us_model *m, us_rng *rng, int n, int32_t *items, int32_t *beh,
			  int32_t *gap, us_events *ev)
{
	for (int i = 0; i < n; i++)
	{
		items[i] = (int32_t) us_rng_below(rng, (uint64_t) m->cfg.n_items);
		beh[i] = m->cfg.n_behaviors ? (int32_t) us_rng_below(rng, (uint64_t) m->cfg.n_behaviors) : 0;
		gap[i] = m->cfg.n_gap_buckets ? (int32_t) us_rng_below(rng, (uint64_t) m->cfg.n_gap_buckets) : 0;
	}
	ev->items = items;
	ev->behaviors = m->cfg.n_behaviors ? beh : NULL;
	ev->gaps = m->cfg.n_gap_buckets ? gap : NULL;
	ev->n = n;
}

/* scores of a scorer made by create and of its opened image agree bit for bit */
static void
test_same_scores(const fixture_opts *o, uint64_t seed, size_t budget, float trans_weight,
				 const char *what)
{
	us_model   *m = NULL,
			   *mv = NULL;
	us_scorer  *s = NULL,
			   *sv = NULL;
	us_share_key key = {{1, 2, 3, seed, 5, 6}};
	size_t		len;
	uint8_t    *img = NULL;
	us_rng		rng;
	int32_t		items[40],
				beh[40],
				gap[40];
	float	   *a,
			   *b;

	CHECK_OK(fixture_model(o, seed, &m));
	/* next_item with trans_weight >= 0: a transition prior, which the image must carry */
	if (m && trans_weight >= 0.0f)
		CHECK_OK(fixture_transitions(m, seed, 200, trans_weight));
	CHECK_OK(us_scorer_create(m, budget, us_malloc_allocator(), &s));
	if (!m || !s)
		return;
	len = us_share_image_size(s);
	CHECK(len > 0, "%s: folded scorer has an image", what);
	img = aligned_image(len);
	CHECK_OK(us_share_image_write(s, &key, img, len));
	/* the model can go: the image is self-contained */
	CHECK_OK(us_share_image_open(img, len, &key, 1, us_malloc_allocator(), &mv, &sv));
	if (!sv)
		goto out;
	CHECK(us_scorer_folded_rows(sv) == us_scorer_folded_rows(s) &&
		  us_scorer_is_screened(sv) == us_scorer_is_screened(s),
		  "%s: same folding (%d rows) and screen", what, us_scorer_folded_rows(s));
	CHECK(mv->vocab.n_items == m->vocab.n_items &&
		  memcmp(mv->vocab.item_ids, m->vocab.item_ids, sizeof(int64_t) * (size_t) m->vocab.n_items) == 0 &&
		  mv->vocab.n_behaviors == m->vocab.n_behaviors && mv->vocab.n_classes == m->vocab.n_classes,
		  "%s: same vocabulary", what);
	CHECK(mv->trans.n_src == m->trans.n_src && mv->trans.nnz == m->trans.nnz &&
		  memcmp(&mv->trans.weight, &m->trans.weight, 4) == 0 &&
		  (m->trans.n_src == 0 ||
		   (memcmp(mv->trans.to, m->trans.to, 4 * (size_t) m->trans.nnz) == 0 &&
			memcmp(mv->trans.logc, m->trans.logc, 4 * (size_t) m->trans.nnz) == 0)),
		  "%s: same transition prior (%d sources)", what, m->trans.n_src);
	for (int i = 0; i < mv->vocab.n_behaviors; i++)
		CHECK(strcmp(mv->vocab.behaviors[i], m->vocab.behaviors[i]) == 0, "%s: behaviour %d", what, i);
	for (int i = 0; i < mv->vocab.n_classes; i++)
		CHECK(strcmp(mv->vocab.classes[i], m->vocab.classes[i]) == 0, "%s: class %d", what, i);
	a = malloc(sizeof(float) * (size_t) m->cfg.n_outputs);
	b = malloc(sizeof(float) * (size_t) m->cfg.n_outputs);
	us_rng_seed(&rng, seed);
	for (int n = 0; n <= 30; n += 3)
	{
		us_events	ev;

		random_events(m, &rng, n, items, beh, gap, &ev);
		CHECK_OK(us_scorer_forward(s, &ev, a, NULL));
		CHECK_OK(us_scorer_forward(sv, &ev, b, NULL));
		CHECK(memcmp(a, b, sizeof(float) * (size_t) m->cfg.n_outputs) == 0,
			  "%s: len %d: identical outputs", what, n);
		if (m->cfg.task == US_TASK_NEXT_ITEM)
		{
			int32_t		ra[5],
						rb[5],
						na,
						nb;
			float		sa[5],
						sb[5];

			CHECK_OK(us_scorer_topk(s, &ev, 5, 1, ra, sa, &na));
			CHECK_OK(us_scorer_topk(sv, &ev, 5, 1, rb, sb, &nb));
			CHECK(na == nb && memcmp(ra, rb, sizeof(int32_t) * (size_t) na) == 0 &&
				  memcmp(sa, sb, sizeof(float) * (size_t) na) == 0, "%s: len %d: identical top-k", what, n);
		}
	}
	free(a);
	free(b);
out:
	us_scorer_free(sv);
	us_model_free(mv);
	us_scorer_free(s);
	us_model_free(m);
	free(img);
}

static void
test_refused(void)
{
	fixture_opts o;
	us_model   *m = NULL,
			   *mv = NULL;
	us_scorer  *s = NULL,
			   *sv = NULL,
			   *sd = NULL;
	us_share_key key = {{7, 7, 7, 7, 7, 7}},
				other = {{7, 7, 7, 7, 7, 8}};
	size_t		len;
	uint8_t    *img;

	fixture_default(&o, US_TASK_MULTICLASS);
	o.behaviors = 1;
	CHECK_OK(fixture_model(&o, 11, &m));
	CHECK_OK(us_scorer_create(m, SIZE_MAX, us_malloc_allocator(), &s));
	CHECK_OK(us_scorer_create(m, 0, us_malloc_allocator(), &sd));
	if (!s || !sd)
		return;
	CHECK(us_share_image_size(sd) == 0, "a direct-path scorer has no image");
	len = us_share_image_size(s);
	img = aligned_image(len);
	CHECK(us_share_image_write(s, &key, img, len - 1) == US_EINVAL, "write: too small a buffer");
	CHECK_OK(us_share_image_write(s, &key, img, len));
	CHECK(us_share_image_open(img, len, &other, 1, us_malloc_allocator(), &mv, &sv) == US_EFORMAT,
		  "another key is refused");
	CHECK(us_share_image_open(img, len - 64, &key, 1, us_malloc_allocator(), &mv, &sv) == US_ETRUNCATED,
		  "a truncated image is refused");
	CHECK(us_share_image_open(img, 32, &key, 1, us_malloc_allocator(), &mv, &sv) == US_ETRUNCATED,
		  "a stub is refused");
	/* one flipped bit anywhere (header, weights, tables) */
	for (size_t at = 8; at < len; at += len / 7 + 1)
	{
		img[at] ^= 0x10;
		CHECK(us_share_image_open(img, len, &key, 1, us_malloc_allocator(), &mv, &sv) == US_ECHECKSUM,
			  "a flipped bit at %zu is refused", at);
		CHECK(mv == NULL && sv == NULL, "nothing is returned for a refused image");
		img[at] ^= 0x10;
	}
	/* without the CRC pass a flipped weight goes unnoticed (the caller's choice), a bad header not */
	img[len - 1] ^= 1;
	CHECK_OK(us_share_image_open(img, len, &key, 0, us_malloc_allocator(), &mv, &sv));
	us_scorer_free(sv);
	us_model_free(mv);
	img[len - 1] ^= 1;
	img[0] = 'X';
	CHECK(us_share_image_open(img, len, &key, 1, us_malloc_allocator(), &mv, &sv) == US_EFORMAT,
		  "a wrong magic is refused");
	img[0] = 'U';
	CHECK_OK(us_share_image_open(img, len, &key, 1, us_malloc_allocator(), &mv, &sv));
	us_scorer_free(sv);
	us_model_free(mv);
	us_scorer_free(sd);
	us_scorer_free(s);
	us_model_free(m);
	free(img);
}

/* an allocator that remembers its largest single request */
static size_t largest_alloc;

static void *
counting_alloc(void *ctx, size_t n)
{
	(void) ctx;
	if (n > largest_alloc)
		largest_alloc = n;
	return malloc(n);
}

static void
counting_free(void *ctx, void *p)
{
	(void) ctx;
	free(p);
}

/*
 * next_item: the opened scorer is screened because the image carries the screen, not because
 * it rebuilt one (no allocation as large as the int8 table, V H bytes); a scorer whose screen
 * did not fit its budget gives an image that opens unscreened, as the writer was.
 */
static void
test_screen_shared(int tie)
{
	fixture_opts o;
	us_model   *m = NULL,
			   *mv = NULL;
	us_scorer  *s = NULL,
			   *sv = NULL;
	us_share_key key = {{3, 1, 4, 1, 5, 9}};
	us_allocator counting = {counting_alloc, counting_free, NULL};
	size_t		len,
				qbytes;
	uint8_t    *img;
	int32_t		items[20],
				beh[20],
				gap[20],
				ra[10],
				rb[10],
				na,
				nb;
	float		sa[10],
				sb[10];
	us_rng		rng;

	fixture_default(&o, US_TASK_NEXT_ITEM);
	o.n_vocab = 3000;
	o.E = o.H = 16;
	o.tie = tie;
	CHECK_OK(fixture_model(&o, 21 + (uint64_t) tie, &m));
	if (!m)
		return;
	qbytes = (size_t) m->cfg.n_items * (size_t) m->cfg.hidden_dim;
	CHECK_OK(us_scorer_create(m, SIZE_MAX, us_malloc_allocator(), &s));
	CHECK(s && us_scorer_is_screened(s), "tie %d: the writer is screened", tie);
	len = us_share_image_size(s);
	img = aligned_image(len);
	CHECK_OK(us_share_image_write(s, &key, img, len));
	largest_alloc = 0;
	CHECK_OK(us_share_image_open(img, len, &key, 1, &counting, &mv, &sv));
	CHECK(sv && us_scorer_is_screened(sv), "tie %d: the opened scorer is screened", tie);
	CHECK(largest_alloc < qbytes, "tie %d: open allocates at most %zu bytes at once (the screen alone is %zu)",
		  tie, largest_alloc, qbytes);
	us_rng_seed(&rng, 5);
	for (int r = 0; r < 20 && sv; r++)
	{
		us_events	ev;

		random_events(m, &rng, 1 + r, items, beh, gap, &ev);
		CHECK_OK(us_scorer_topk(s, &ev, 10, 1, ra, sa, &na));
		CHECK_OK(us_scorer_topk(sv, &ev, 10, 1, rb, sb, &nb));
		CHECK(na == nb && memcmp(ra, rb, sizeof(int32_t) * (size_t) na) == 0 &&
			  memcmp(sa, sb, sizeof(float) * (size_t) na) == 0, "tie %d: request %d: identical top-k", tie, r);
	}
	us_scorer_free(sv);
	us_model_free(mv);
	sv = NULL;
	mv = NULL;
	/* a screen row pointing past the items (the screen's order indexes the rows): refused */
	{
		int32_t		r = s->sperm[5];

		s->sperm[5] = m->cfg.n_items;
		CHECK_OK(us_share_image_write(s, &key, img, len));
		CHECK(us_share_image_open(img, len, &key, 0, us_malloc_allocator(), &mv, &sv) == US_EFORMAT &&
			  mv == NULL && sv == NULL, "tie %d: a screen row past the items is refused", tie);
		s->sperm[5] = r;
	}
	us_scorer_free(s);
	free(img);

	/* a budget just short of the screen (part of the rows still fold): unscreened on both sides */
	CHECK_OK(us_scorer_create(m, us_scorer_screen_bytes(&m->cfg) - 1, us_malloc_allocator(), &s));
	if (s && us_scorer_is_folded(s))
	{
		CHECK(!us_scorer_is_screened(s), "tie %d: the small budget leaves no screen", tie);
		len = us_share_image_size(s);
		img = aligned_image(len);
		CHECK_OK(us_share_image_write(s, &key, img, len));
		CHECK_OK(us_share_image_open(img, len, &key, 1, us_malloc_allocator(), &mv, &sv));
		CHECK(sv && !us_scorer_is_screened(sv), "tie %d: its image opens unscreened", tie);
		us_scorer_free(sv);
		us_model_free(mv);
		free(img);
	}
	else
		CHECK(0, "tie %d: the budget folds part of the rows", tie);
	us_scorer_free(s);
	us_model_free(m);
}

/*
 * The transition prior in an image with a screen: the prior changes the top-k (so the checks
 * below can fail), the opened image's top-k is the private model's bit for bit, and an image
 * whose table is malformed is refused on open even without the CRC pass.
 */
static void
test_trans_shared(void)
{
	fixture_opts o;
	us_model   *m = NULL,
			   *mv = NULL;
	us_scorer  *s = NULL,
			   *sv = NULL;
	us_share_key key = {{2, 7, 1, 8, 2, 8}};
	size_t		len;
	uint8_t    *img;
	int32_t		items[20],
				beh[20],
				gap[20],
				ra[10],
				rb[10],
				rc[10],
				na,
				nb,
				nc;
	float		sa[10],
				sb[10],
				sc[10];
	int			changed = 0;
	us_rng		rng;

	fixture_default(&o, US_TASK_NEXT_ITEM);
	o.n_vocab = 3000;
	o.E = o.H = 16;
	CHECK_OK(fixture_model(&o, 31, &m));
	if (!m)
		return;
	CHECK_OK(fixture_transitions(m, 5, 256, 4.0f));
	CHECK_OK(us_scorer_create(m, SIZE_MAX, us_malloc_allocator(), &s));
	CHECK(s && us_scorer_is_screened(s), "prior: the writer is screened");
	if (!s)
		return;
	len = us_share_image_size(s);
	img = aligned_image(len);
	CHECK_OK(us_share_image_write(s, &key, img, len));
	CHECK_OK(us_share_image_open(img, len, &key, 1, us_malloc_allocator(), &mv, &sv));
	us_rng_seed(&rng, 6);
	for (int r = 0; r < 40 && sv; r++)
	{
		us_events	ev;

		random_events(m, &rng, 1 + r % 12, items, beh, gap, &ev);
		/* end on a source of the table half of the time */
		if (r % 2 == 0)
			items[ev.n - 1] = m->trans.src[r % m->trans.n_src];
		CHECK_OK(us_scorer_topk(s, &ev, 10, 1, ra, sa, &na));
		CHECK_OK(us_scorer_topk(sv, &ev, 10, 1, rb, sb, &nb));
		CHECK(na == nb && memcmp(ra, rb, sizeof(int32_t) * (size_t) na) == 0 &&
			  memcmp(sa, sb, sizeof(float) * (size_t) na) == 0, "prior: request %d: identical top-k", r);
		m->trans.weight = 0.0f;
		CHECK_OK(us_scorer_topk(s, &ev, 10, 1, rc, sc, &nc));
		m->trans.weight = 4.0f;
		changed += nc != na || memcmp(ra, rc, sizeof(int32_t) * (size_t) na) != 0;
	}
	CHECK(changed >= 5, "prior: the prior changes the top-k of %d of 40 requests", changed);
	us_scorer_free(sv);
	us_model_free(mv);
	sv = NULL;
	mv = NULL;
	/* a successor row past the items, written by a careless writer: refused on open */
	{
		int32_t		t = m->trans.to[m->trans.nnz - 1];

		m->trans.to[m->trans.nnz - 1] = m->cfg.n_items;
		CHECK_OK(us_share_image_write(s, &key, img, len));
		CHECK(us_share_image_open(img, len, &key, 0, us_malloc_allocator(), &mv, &sv) == US_EFORMAT &&
			  mv == NULL && sv == NULL, "prior: a successor row past the items is refused");
		m->trans.to[m->trans.nnz - 1] = t;
	}
	free(img);
	us_scorer_free(s);
	us_model_free(m);
}

int
main(void)
{
	fixture_opts o;

	for (int v = 0; v < FIXTURE_N_VARIANTS; v++)
	{
		char		what[64];

		fixture_variant(&o, v);
		snprintf(what, sizeof(what), "variant %d", v);
		test_same_scores(&o, 100 + (uint64_t) v, SIZE_MAX, -1.0f, what);
		if (o.task == US_TASK_NEXT_ITEM)
		{
			snprintf(what, sizeof(what), "variant %d, prior 2", v);
			test_same_scores(&o, 100 + (uint64_t) v, SIZE_MAX, 2.0f, what);
			snprintf(what, sizeof(what), "variant %d, prior off", v);
			test_same_scores(&o, 100 + (uint64_t) v, SIZE_MAX, 0.0f, what);
		}
	}
	/* partial folding: the hottest rows folded, the rest per request */
	for (int task = US_TASK_BINARY; task <= US_TASK_NEXT_ITEM; task += 3)
	{
		us_model   *m = NULL;

		fixture_default(&o, task);
		o.n_vocab = 300;
		o.gaps = 1;
		CHECK_OK(fixture_model(&o, 9, &m));
		if (m)
		{
			test_same_scores(&o, 9, us_scorer_screen_bytes(&m->cfg) +
							 us_scorer_fold_bytes(&m->cfg) / 2, -1.0f, "partial fold");
			if (task == US_TASK_NEXT_ITEM)
				test_same_scores(&o, 9, us_scorer_screen_bytes(&m->cfg) +
								 us_scorer_fold_bytes(&m->cfg) / 2, 1.0f, "partial fold, prior");
			us_model_free(m);
		}
	}
	test_screen_shared(0);
	test_screen_shared(1);
	test_trans_shared();
	test_refused();
	return unit_finish("test_share");
}
