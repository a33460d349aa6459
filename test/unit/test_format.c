/*
 * test_format.c: CRC32C vectors, model bytes round trips for every task and input option, and
 * one test per class of corrupt input, each expecting its specific status. Corruptions that
 * must get past the checksum to reach the check under test recompute a valid CRC.
 */
#include <stdint.h>
#include <string.h>

#include "userseq/us_format.h"
#include "userseq/us_rng.h"
#include "unit.h"
#include "model_fixture.h"

uint32_t	us_crc32c_portable(uint32_t crc, const void *data, size_t len);

static void
put32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t) v;
	p[1] = (uint8_t) (v >> 8);
	p[2] = (uint8_t) (v >> 16);
	p[3] = (uint8_t) (v >> 24);
}

static void
put64(uint8_t *p, uint64_t v)
{
	put32(p, (uint32_t) v);
	put32(p + 4, (uint32_t) (v >> 32));
}

/* Recompute the header's total size and CRC after editing the body. */
static void
refresh(uint8_t *buf, size_t len)
{
	put64(buf + 16, len);
	put32(buf + 24, us_crc32c(0, buf + 32, len - 32));
}

static uint8_t *
encode(const us_model *m, size_t *len)
{
	size_t		n = us_model_encoded_size(m);
	uint8_t    *b = malloc(n);

	*len = n;
	if (us_model_encode(m, b, n) != US_OK)
	{
		free(b);
		return NULL;
	}
	return b;
}

/* Decodes a copy of buf (so tools see reads past len), frees any model, returns the status. */
static us_status
decode_status(const uint8_t *buf, size_t len)
{
	uint8_t    *copy = malloc(len ? len : 1);
	us_model   *m = NULL;
	us_status	st;

	memcpy(copy, buf, len);
	st = us_model_decode(copy, len, us_malloc_allocator(), &m);
	if (st == US_OK)
		us_model_free(m);
	else
		CHECK(m == NULL, "failed decode left a model");
	free(copy);
	return st;
}

static void
test_crc(void)
{
	const char *v = "123456789";
	uint8_t		buf[1000];
	us_rng		rng;

	CHECK(us_crc32c(0, v, 9) == 0xE3069283u, "crc32c(123456789) = %08x", us_crc32c(0, v, 9));
	CHECK(us_crc32c_portable(0, v, 9) == 0xE3069283u, "portable crc32c(123456789)");
	CHECK(us_crc32c(0, v, 0) == 0, "crc of nothing");
	/* 32 zero bytes: RFC 3720 B.4 test vector */
	memset(buf, 0, 32);
	CHECK(us_crc32c(0, buf, 32) == 0x8A9136AAu, "crc32c(32 zeros)");
	memset(buf, 0xFF, 32);
	CHECK(us_crc32c(0, buf, 32) == 0x62A8AB43u, "crc32c(32 x 0xff)");
	us_rng_seed(&rng, 5);
	for (size_t i = 0; i < sizeof(buf); i++)
		buf[i] = (uint8_t) us_rng_next(&rng);
	for (int t = 0; t < 200; t++)
	{
		size_t		off = us_rng_below(&rng, 64),
					len = us_rng_below(&rng, sizeof(buf) - 64),
					cut = len ? us_rng_below(&rng, len) : 0;
		uint32_t	a = us_crc32c(0, buf + off, len),
					b = us_crc32c_portable(0, buf + off, len),
					c = us_crc32c(us_crc32c(0, buf + off, cut), buf + off + cut, len - cut);

		CHECK(a == b && a == c, "crc paths agree (off %zu len %zu cut %zu)", off, len, cut);
	}
}

static int
vocab_equal(const us_vocab *a, const us_vocab *b)
{
	if (a->n_items != b->n_items || a->n_behaviors != b->n_behaviors ||
		a->n_classes != b->n_classes)
		return 0;
	if (a->n_items && (memcmp(a->item_ids, b->item_ids, a->n_items * sizeof(int64_t)) ||
					   memcmp(a->item_counts, b->item_counts, a->n_items * sizeof(uint32_t))))
		return 0;
	for (int i = 0; i < a->n_behaviors; i++)
		if (strcmp(a->behaviors[i], b->behaviors[i]))
			return 0;
	for (int i = 0; i < a->n_classes; i++)
		if (strcmp(a->classes[i], b->classes[i]))
			return 0;
	return 1;
}

static void
test_round_trip(void)
{
	for (int v = 0; v < 2 * FIXTURE_N_VARIANTS; v++)
	{
		int			sasrec = v >= FIXTURE_N_VARIANTS;
		fixture_opts o;
		us_model   *m = NULL,
				   *d = NULL;
		uint8_t    *b1,
				   *b2;
		size_t		n1,
					n2;
		us_format_header h;

		if (sasrec)
			fixture_variant_sasrec(&o, v - FIXTURE_N_VARIANTS);
		else
			fixture_variant(&o, v);
		CHECK_OK(fixture_model(&o, 100 + v, &m));
		if (!m)
			continue;
		/* a nonzero padding row must survive too (it is not required to be zero) */
		m->p.item_emb[0] = 0.5f;
		b1 = encode(m, &n1);
		CHECK(b1 != NULL, "variant %d encodes", v);
		if (!b1)
		{
			us_model_free(m);
			continue;
		}
		CHECK_OK(us_format_peek(b1, 32, &h));
		/* an fp32 text-CNN keeps format version 1, a sasrec model needs 3 */
		CHECK(h.version == (sasrec ? 3u : 1u) && h.total_size == n1 &&
			  h.crc32c == us_crc32c(0, b1 + 32, n1 - 32), "variant %d peek", v);
		CHECK_OK(us_model_decode(b1, n1, us_malloc_allocator(), &d));
		if (d)
		{
			us_model_config stored = m->cfg;

			/* creation / training-only fields are not stored */
			stored.embed_init_std = stored.embed_dropout = 0.0f;
			CHECK(memcmp(&d->cfg, &stored, sizeof(m->cfg)) == 0, "variant %d config", v);
			CHECK(vocab_equal(&d->vocab, &m->vocab), "variant %d vocab", v);
			CHECK(d->n_params == m->n_params &&
				  memcmp(d->params_block, m->params_block, m->n_params * 4) == 0,
				  "variant %d weights bit-identical", v);
			CHECK(d->p.out_b - d->params_block == m->p.out_b - m->params_block &&
				  (d->p.out_w == NULL) == (m->p.out_w == NULL), "variant %d layout", v);
			b2 = encode(d, &n2);
			CHECK(b2 && n2 == n1 && memcmp(b1, b2, n1) == 0, "variant %d re-encodes identically", v);
			free(b2);
			us_model_free(d);
		}
		free(b1);
		us_model_free(m);
	}
}

/* Offsets in the small binary fixture (9 items, 4 behaviour labels, no classes). */
#define OFF_CFG		32
#define OFF_VOCAB	(32 + 88)
#define OFF_IDS		(OFF_VOCAB + 12)

static void
test_corrupt(void)
{
	fixture_opts o;
	us_model   *m = NULL;
	uint8_t    *good,
			   *b;
	size_t		n;
	int			nv;
	size_t		off_labels,
				off_np;
	us_format_header h;
	int			all_ok;

	fixture_default(&o, US_TASK_BINARY);
	o.behaviors = 1;
	nv = o.n_vocab;
	CHECK_OK(fixture_model(&o, 7, &m));
	if (!m)
		return;
	good = encode(m, &n);
	b = malloc(n + 16);
	off_labels = OFF_IDS + 12 * (size_t) nv;
	off_np = n - 4 * m->n_params - 8;
	CHECK(decode_status(good, n) == US_OK, "the fixture decodes");

	/* every truncation */
	all_ok = 1;
	for (size_t len = 0; len < n; len++)
	{
		us_status	st = decode_status(good, len);

		if (st != US_ETRUNCATED)
		{
			all_ok = 0;
			CHECK(0, "truncation to %zu bytes gave %s", len, us_status_str(st));
		}
	}
	CHECK(all_ok, "all %zu truncations give US_ETRUNCATED", n);
	CHECK(us_format_peek(good, 31, &h) == US_ETRUNCATED, "peek of 31 bytes");

	/* trailing byte */
	memcpy(b, good, n);
	b[n] = 0;
	CHECK(decode_status(b, n + 1) == US_EFORMAT, "trailing byte");

	/* every single-bit flip of the body: checksum */
	all_ok = 1;
	for (size_t i = 32; i < n; i += unit_quick() ? 7 : 1)
	{
		memcpy(b, good, n);
		b[i] ^= (uint8_t) (1u << (i % 8));
		if (decode_status(b, n) != US_ECHECKSUM)
		{
			all_ok = 0;
			CHECK(0, "bit flip at %zu not caught by the checksum", i);
		}
	}
	CHECK(all_ok, "body bit flips give US_ECHECKSUM");
	/* every bit flip of the header: rejected with a header status */
	all_ok = 1;
	for (size_t i = 0; i < 32 * 8; i++)
	{
		us_status	st;

		memcpy(b, good, n);
		b[i / 8] ^= (uint8_t) (1u << (i % 8));
		st = decode_status(b, n);
		if (st == US_OK)
		{
			all_ok = 0;
			CHECK(0, "header bit %zu flip accepted", i);
		}
		else if (i / 8 < 4)
			CHECK(st == US_EFORMAT, "magic flip: %s", us_status_str(st));
		else if (i / 8 < 8)
		{
			uint32_t	fv = (uint32_t) b[4] | (uint32_t) b[5] << 8 | (uint32_t) b[6] << 16 |
				(uint32_t) b[7] << 24;

			/* a flip to another known version (1 -> 3) is refused by the body's layout */
			CHECK(st == US_EVERSION || (fv >= US_FORMAT_VERSION_MIN && fv <= US_FORMAT_VERSION),
				  "version flip: %s", us_status_str(st));
		}
		else if (i / 8 >= 24 && i / 8 < 28)
			CHECK(st == US_ECHECKSUM, "crc flip: %s", us_status_str(st));
		else if (i / 8 >= 16 && i / 8 < 24)
			CHECK(st == US_ETRUNCATED || st == US_EFORMAT || st == US_ELIMIT,
				  "total size flip: %s", us_status_str(st));
		else
			CHECK(st == US_EFORMAT, "header size / flags / reserved flip: %s",
				  us_status_str(st));
	}
	CHECK(all_ok, "header bit flips rejected");

	memcpy(b, good, n);
	put32(b, 0x4D515356);
	CHECK(decode_status(b, n) == US_EFORMAT, "wrong magic");
	CHECK(us_format_peek(b, 32, &h) == US_EFORMAT, "peek: wrong magic");
	memcpy(b, good, n);
	put32(b + 4, US_FORMAT_VERSION + 1);
	CHECK(decode_status(b, n) == US_EVERSION, "unknown version");
	memcpy(b, good, n);
	put32(b + 4, 2);
	CHECK(decode_status(b, n) != US_OK, "fp32 body labelled version 2 rejected");
	memcpy(b, good, n);
	put32(b + 4, 4);
	CHECK(decode_status(b, n) != US_OK, "fp32 body labelled version 4 rejected");
	memcpy(b, good, n);
	put32(b + 4, 0);
	CHECK(decode_status(b, n) == US_EVERSION, "version 0");
	memcpy(b, good, n);
	put32(b + 12, 1);
	CHECK(decode_status(b, n) == US_EFORMAT, "nonzero flags");
	memcpy(b, good, n);
	put32(b + 28, 0x100);
	CHECK(decode_status(b, n) == US_EFORMAT, "nonzero reserved");
	memcpy(b, good, n);
	put64(b + 16, (uint64_t) 1 << 40);
	CHECK(decode_status(b, n) == US_ELIMIT, "total size over 1 GiB");
	memcpy(b, good, n);
	put32(b + 8, 64);
	CHECK(decode_status(b, n) == US_EFORMAT, "header size");

	/* From here on the CRC is recomputed, so the check under test is reached. */
#define EDIT_EXPECT(edit, expect, what) \
	do { \
		memcpy(b, good, n); \
		edit; \
		refresh(b, n); \
		{ \
			us_status st_e = decode_status(b, n); \
			CHECK(st_e == (expect), "%s: got %s", what, us_status_str(st_e)); \
		} \
	} while (0)

	EDIT_EXPECT((void) 0, US_OK, "refresh alone keeps it valid");
	EDIT_EXPECT(put32(b + OFF_VOCAB, 0xFFFFFFFFu), US_ELIMIT, "huge item count");
	EDIT_EXPECT(put32(b + OFF_VOCAB, US_MAX_ITEMS + 1), US_ELIMIT, "item count over limit");
	EDIT_EXPECT(put32(b + OFF_VOCAB + 4, 0x7FFFFFFFu), US_ELIMIT, "huge behaviour label count");
	EDIT_EXPECT(put32(b + OFF_VOCAB + 8, 0x10000000u), US_ELIMIT, "huge class label count");
	EDIT_EXPECT(put32(b + OFF_VOCAB, nv + 1), US_EFORMAT, "item count disagrees with config");
	EDIT_EXPECT(put32(b + OFF_VOCAB + 8, 2), US_EFORMAT, "class labels on a binary model");
	EDIT_EXPECT(put32(b + OFF_CFG + 4, US_MAX_ITEMS + 1), US_ELIMIT, "config n_items over limit");
	EDIT_EXPECT(put32(b + OFF_CFG + 4, 0x80000000u), US_EFORMAT, "config n_items negative");
	EDIT_EXPECT(put32(b + OFF_CFG + 24, 100000), US_ELIMIT, "config embed_dim over limit");
	EDIT_EXPECT(put32(b + OFF_CFG + 0, 9), US_EFORMAT, "unknown task");
	EDIT_EXPECT(put32(b + OFF_CFG + 4 * 8 + 4 * 7, 3), US_EFORMAT, "unused width slot nonzero");
	EDIT_EXPECT(put32(b + OFF_CFG + 80, 0x7FC00000u), US_ENONFINITE, "NaN dropout");
	/* ids: swap the first two, make two equal */
	{
		uint8_t		t[8];

		EDIT_EXPECT((memcpy(t, b + OFF_IDS, 8), memcpy(b + OFF_IDS, b + OFF_IDS + 8, 8),
					 memcpy(b + OFF_IDS + 8, t, 8)), US_EFORMAT, "unsorted ids");
	}
	EDIT_EXPECT(memcpy(b + OFF_IDS + 16, b + OFF_IDS + 8, 8), US_EFORMAT, "equal ids");
	/* first behaviour label "view": length 4 at off_labels */
	EDIT_EXPECT(put32(b + off_labels, 256), US_ELIMIT, "label longer than 255 bytes");
	EDIT_EXPECT(put32(b + off_labels, 0xFFFFFFFFu), US_ELIMIT, "huge label length");
	EDIT_EXPECT(put32(b + off_labels, 200), US_EFORMAT, "label length past the labels");
	EDIT_EXPECT(b[off_labels + 5] = 0, US_EFORMAT, "NUL inside a label");
	/* third label "cart" becomes a second "view" */
	EDIT_EXPECT(memcpy(b + off_labels + 8 + 4 + 6 + 4, "view", 4), US_EFORMAT,
				"duplicate labels");
	EDIT_EXPECT(put64(b + off_np, m->n_params + 1), US_EFORMAT, "n_params too large by one");
	EDIT_EXPECT(put64(b + off_np, m->n_params - 1), US_EFORMAT, "n_params too small by one");
	EDIT_EXPECT(put64(b + off_np, (uint64_t) 1 << 60), US_ELIMIT, "huge n_params");
	EDIT_EXPECT(put32(b + off_np + 8 + 4 * 5, 0x7FC00000u), US_ENONFINITE, "NaN weight");
	EDIT_EXPECT(put32(b + n - 4, 0xFF800000u), US_ENONFINITE, "-Inf last weight");
	EDIT_EXPECT(put32(b + off_np + 8, 0x7F800001u), US_ENONFINITE, "signalling NaN weight");
	/* finite but huge weights (the forward would overflow): US_ERANGE; the bound itself is fine */
	EDIT_EXPECT(put32(b + off_np + 8 + 4 * 3, 0x7F7FFFFFu), US_ERANGE, "weight 3.4e38 (FLT_MAX)");
	EDIT_EXPECT(put32(b + n - 4, 0xFF7FFFFFu), US_ERANGE, "last weight -3.4e38");
	{
		float		lim = US_MAX_ABS_WEIGHT;
		float		over = nextafterf(US_MAX_ABS_WEIGHT, INFINITY);
		uint32_t	u;

		memcpy(&u, &lim, 4);
		EDIT_EXPECT(put32(b + off_np + 8, u), US_OK, "weight exactly +1e6");
		EDIT_EXPECT(put32(b + off_np + 8, u | 0x80000000u), US_OK, "weight exactly -1e6");
		memcpy(&u, &over, 4);
		EDIT_EXPECT(put32(b + off_np + 8, u), US_ERANGE, "weight one ulp above 1e6");
		/* a NaN is reported as such even after an out-of-range weight */
		EDIT_EXPECT((put32(b + off_np + 8, u), put32(b + n - 4, 0x7FC00000u)), US_ENONFINITE,
					"huge weight then NaN");
	}
	/* a larger embed_dim without the weights: n_params then disagrees */
	EDIT_EXPECT(put32(b + OFF_CFG + 24, 9), US_EFORMAT, "config implies other n_params");

	/* a consistent n_params with weights missing: body shorter than the count says */
	memcpy(b, good, n);
	refresh(b, n - 4);
	CHECK(decode_status(b, n - 4) == US_EFORMAT, "weights shorter than n_params");

	/* arguments */
	{
		us_model   *d = (us_model *) 1;

		CHECK(us_model_decode(NULL, 0, us_malloc_allocator(), &d) == US_EINVAL && d == NULL,
			  "NULL buffer");
		CHECK(us_model_encode(m, b, n - 1) == US_EINVAL, "encode into a short buffer");
	}
	free(b);
	free(good);
	us_model_free(m);
}

/* An allocator that fails its fail_at-th call, counting live blocks. */
typedef struct failing
{
	int			calls,
				fail_at,
				live;
} failing;

static void *
failing_alloc(void *ctx, size_t size)
{
	failing    *f = ctx;

	if (++f->calls == f->fail_at)
		return NULL;
	f->live++;
	return malloc(size);
}

static void
failing_free(void *ctx, void *p)
{
	failing    *f = ctx;

	f->live--;
	free(p);
}

static void
test_alloc_failure(void)
{
	fixture_opts o;
	us_model   *m = NULL;
	uint8_t    *buf;
	size_t		n;
	int			needed = 0;

	fixture_default(&o, US_TASK_MULTICLASS);
	o.behaviors = 1;
	CHECK_OK(fixture_model(&o, 9, &m));
	if (!m)
		return;
	buf = encode(m, &n);
	for (int at = 1; at < 100; at++)
	{
		failing		f = {0, at, 0};
		us_allocator a = {failing_alloc, failing_free, &f};
		us_model   *d = NULL;
		us_status	st = us_model_decode(buf, n, &a, &d);

		if (st == US_OK)
		{
			needed = at;
			CHECK(f.calls < at, "decode succeeded though allocation %d failed", at);
			us_model_free(d);
			CHECK(f.live == 0, "no leak after free");
			break;
		}
		CHECK(st == US_ENOMEM && d == NULL && f.live == 0,
			  "allocation %d failing: %s, %d blocks live", at, us_status_str(st), f.live);
	}
	CHECK(needed > 5, "every allocation of decode was made to fail (%d)", needed);
	/* a label longer than the format allows is refused at encode time */
	{
		char		longlab[300];
		char	   *saved = m->vocab.behaviors[0];

		memset(longlab, 'x', 299);
		longlab[299] = 0;
		uint8_t    *big = malloc(n + 400);

		m->vocab.behaviors[0] = longlab;
		CHECK(us_model_encode(m, big, n + 400) == US_ELIMIT, "encode refuses a 299-byte label");
		free(big);
		m->vocab.behaviors[0] = saved;
	}
	free(buf);
	us_model_free(m);
}

/*
 * Version 3 exists for the sasrec config words: the bytes of a text-CNN (version 1) relabelled
 * as version 3 are refused (one config, one encoding), and so are a sasrec model's bytes
 * relabelled as version 2 (int8). A sasrec model is not quantized: us_model_quantize refuses it
 * and leaves it as it was. Stored bytes of every version are checked by test_format_fixtures.
 */
static void
test_version3_text_cnn_refused(void)
{
	fixture_opts o;
	us_model   *m = NULL;
	uint8_t    *b;
	size_t		n;
	double		err = -1.0;

	fixture_default(&o, US_TASK_NEXT_ITEM);
	CHECK_OK(fixture_model(&o, 5, &m));
	if (m == NULL)
		return;
	b = encode(m, &n);
	CHECK(b != NULL && b[4] == 1, "a text-CNN is written as version 1");
	if (b)
	{
		b[4] = 3;
		CHECK(decode_status(b, n) != US_OK, "version 3 bytes of a version 1 body refused");
	}
	free(b);
	us_model_free(m);

	m = NULL;
	fixture_variant_sasrec(&o, 0);
	CHECK_OK(fixture_model(&o, 6, &m));
	if (m == NULL)
		return;
	b = encode(m, &n);
	CHECK(b != NULL && b[4] == 3, "a sasrec model is written as version 3");
	if (b)
	{
		uint8_t    *b2;

		CHECK(us_model_quantize(m, &err) == US_EUNSUPPORTED && !m->quantized && err == -1.0,
			  "us_model_quantize refuses a sasrec model");
		b2 = encode(m, &n);
		CHECK(b2 != NULL && memcmp(b, b2, n) == 0, "a refused sasrec model is unchanged");
		free(b2);
		m->quantized = 1;
		CHECK(us_model_encode(m, b, n) == US_EUNSUPPORTED, "no format holds an int8 sasrec model");
		m->quantized = 0;
		CHECK_OK(us_model_encode(m, b, n));
		b[4] = 2;
		CHECK(decode_status(b, n) != US_OK, "version 2 bytes of a sasrec body refused");
	}
	free(b);
	us_model_free(m);
}

/*
 * Version 4 (int8 text-CNNs) stores item ids and counts as varints. The test writes the
 * vocabulary section itself, field by field from the documented rules (zigzag first id,
 * ascending deltas minus 1, counts; shortest LEB128), checks that the encoder wrote the same
 * bytes, then swaps single fields for hostile ones: non-minimal, overlong, past 64 bits,
 * counts past UINT32_MAX, ids past INT64_MAX, varints running out of bytes.
 */
#define V4_N	9
typedef struct v4field
{
	uint8_t		b[12];
	size_t		n;
} v4field;

static v4field
leb(uint64_t v)
{
	v4field		f = {{0}, 0};

	do
	{
		f.b[f.n++] = (uint8_t) ((v & 0x7F) | (v >= 0x80 ? 0x80 : 0));
		v >>= 7;
	} while (v);
	return f;
}

static v4field
raw(const char *bytes, size_t n)
{
	v4field		f = {{0}, n};

	memcpy(f.b, bytes, n);
	return f;
}

/* the model's bytes with the vocabulary section [132, vend) replaced by fields, CRC repaired */
static uint8_t *
v4_splice(const uint8_t *good, size_t n, size_t vend, const v4field *fields, int nf, size_t *out_n)
{
	size_t		len = 132;
	uint8_t    *b;

	for (int i = 0; i < nf; i++)
		len += fields[i].n;
	len += n - vend;
	b = malloc(len);
	memcpy(b, good, 132);
	len = 132;
	for (int i = 0; i < nf; i++)
	{
		memcpy(b + len, fields[i].b, fields[i].n);
		len += fields[i].n;
	}
	memcpy(b + len, good + vend, n - vend);
	len += n - vend;
	refresh(b, len);
	*out_n = len;
	return b;
}

static void
v4_fields(const int64_t *ids, const uint32_t *counts, v4field *f)
{
	for (int i = 0; i < V4_N; i++)
	{
		f[i] = leb(i == 0 ? (ids[0] < 0 ? ~((uint64_t) ids[0] << 1) : (uint64_t) ids[0] << 1)
				   : (uint64_t) ids[i] - (uint64_t) ids[i - 1] - 1);
		f[V4_N + i] = leb(counts[i]);
	}
}

/* encodes m with the given vocabulary; returns the bytes and the end of its vocabulary */
static uint8_t *
v4_encode(us_model *m, const int64_t *ids, const uint32_t *counts, size_t *n, size_t *vend)
{
	v4field		f[2 * V4_N];
	uint8_t    *b;

	memcpy(m->vocab.item_ids, ids, sizeof(int64_t) * V4_N);
	memcpy(m->vocab.item_counts, counts, sizeof(uint32_t) * V4_N);
	b = encode(m, n);
	v4_fields(ids, counts, f);
	*vend = 132;
	for (int i = 0; i < 2 * V4_N; i++)
		*vend += f[i].n;
	return b;
}

static void
test_version4_varints(void)
{
	static const int64_t edge_ids[V4_N] = {INT64_MIN, INT64_MIN + 1, -65, -64, -1, 0, 63, INT64_MAX - 1, INT64_MAX};
	static const uint32_t edge_counts[V4_N] = {0, 1, 127, 128, 16383, 16384, 1u << 21, UINT32_MAX - 1, UINT32_MAX};
	static const int64_t top_ids[V4_N] = {INT64_MAX - 8, INT64_MAX - 7, INT64_MAX - 6, INT64_MAX - 5,
	INT64_MAX - 4, INT64_MAX - 3, INT64_MAX - 2, INT64_MAX - 1, INT64_MAX};
	static const int64_t plain_ids[V4_N] = {-5, 3, 10, 11, 200, 201, 100000, 100001, 1LL << 40};
	static const uint32_t plain_counts[V4_N] = {5, 9, 300, 1, 0, 70000, 2, 2, 1};
	fixture_opts o;
	us_model   *m = NULL,
			   *d = NULL;
	uint8_t    *good,
			   *b;
	size_t		n,
				vend,
				bn;
	v4field		f[2 * V4_N],
				g[2 * V4_N];

	fixture_default(&o, US_TASK_BINARY);
	CHECK_OK(fixture_model(&o, 11, &m));
	if (m == NULL || o.n_vocab != V4_N)
		return;
	CHECK_OK(us_model_quantize(m, NULL));

	/* extreme ids and counts round-trip, as the test's own encoding of the rules */
	good = v4_encode(m, edge_ids, edge_counts, &n, &vend);
	CHECK(good != NULL && good[4] == 4, "an int8 text-CNN is written as version 4");
	if (good == NULL)
		return;
	v4_fields(edge_ids, edge_counts, f);
	b = v4_splice(good, n, vend, f, 2 * V4_N, &bn);
	CHECK(bn == n && memcmp(b, good, n) == 0, "the encoder writes the documented varints");
	free(b);
	CHECK_OK(us_model_decode(good, n, us_malloc_allocator(), &d));
	if (d)
	{
		uint8_t    *b2 = encode(d, &bn);

		CHECK(vocab_equal(&d->vocab, &m->vocab), "extreme ids and counts decode as written");
		CHECK(b2 && bn == n && memcmp(b2, good, n) == 0, "and re-encode identically");
		free(b2);
		us_model_free(d);
	}
	/* relabelled as version 2 (fixed-width vocabulary) it is refused */
	b = malloc(n);
	memcpy(b, good, n);
	put32(b + 4, 2);
	CHECK(decode_status(b, n) != US_OK, "version 4 bytes labelled version 2 refused");
	free(b);
	free(good);

	/* ids ending exactly at INT64_MAX are fine; one more step is not */
	good = v4_encode(m, top_ids, plain_counts, &n, &vend);
	CHECK(good != NULL && decode_status(good, n) == US_OK, "ids up to INT64_MAX decode");
	v4_fields(top_ids, plain_counts, f);
	memcpy(g, f, sizeof(f));
	g[V4_N - 1] = leb(1);
	b = v4_splice(good, n, vend, g, 2 * V4_N, &bn);
	CHECK(decode_status(b, bn) == US_EFORMAT, "an id past INT64_MAX");
	free(b);
	memcpy(g, f, sizeof(f));
	g[1] = raw("\xff\xff\xff\xff\xff\xff\xff\xff\xff\x01", 10);
	b = v4_splice(good, n, vend, g, 2 * V4_N, &bn);
	CHECK(decode_status(b, bn) == US_EFORMAT, "a delta of 2^64 - 1 wraps past INT64_MAX");
	free(b);
	free(good);

	good = v4_encode(m, plain_ids, plain_counts, &n, &vend);
	v4_fields(plain_ids, plain_counts, f);
	b = v4_splice(good, n, vend, f, 2 * V4_N, &bn);
	CHECK(good && bn == n && memcmp(b, good, n) == 0 && decode_status(good, n) == US_OK,
		  "plain vocabulary as documented");
	free(b);
	{
		struct
		{
			int			field;
			v4field		v;
			const char *what;
		}			bad[] = {
			{V4_N, {{0x85, 0x00}, 2}, "count 5 in two bytes"},
			{V4_N + 2, {{0xAC, 0x82, 0x00}, 3}, "count 300 in three bytes"},
			{V4_N + 4, {{0x80, 0x00}, 2}, "count 0 in two bytes"},
			{2, {{0x86, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x00}, 10}, "delta in ten bytes, last zero"},
			{0, {{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x81, 0x00}, 11}, "eleven-byte varint"},
			{0, {{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02}, 10}, "first id past 64 bits"},
			{0, {{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f}, 10}, "tenth byte 0x7f"},
			{V4_N + 1, {{0x80, 0x80, 0x80, 0x80, 0x10}, 5}, "count 2^32"},
			{V4_N + 1, {{0xff, 0xff, 0xff, 0xff, 0xff, 0x01}, 6}, "count 2^35 - 1"},
		};

		for (size_t k = 0; k < sizeof(bad) / sizeof(bad[0]); k++)
		{
			memcpy(g, f, sizeof(f));
			g[bad[k].field] = bad[k].v;
			b = v4_splice(good, n, vend, g, 2 * V4_N, &bn);
			CHECK(decode_status(b, bn) == US_EFORMAT, "%s: refused", bad[k].what);
			free(b);
		}
		/* the largest values that fit are fine: first id INT64_MIN (zigzag 2^64 - 1), count 2^32 - 1 */
		memcpy(g, f, sizeof(f));
		g[V4_N + 1] = leb(UINT32_MAX);
		b = v4_splice(good, n, vend, g, 2 * V4_N, &bn);
		CHECK(decode_status(b, bn) == US_OK, "count 2^32 - 1 in five bytes decodes");
		free(b);
	}
	/* the last count's varint never ends: it runs into n_params, which then is short */
	memcpy(g, f, sizeof(f));
	g[2 * V4_N - 1] = raw("\x81", 1);
	b = v4_splice(good, n, vend, g, 2 * V4_N, &bn);
	CHECK(decode_status(b, bn) == US_EFORMAT, "a count running into n_params");
	free(b);
	/* the body ends inside the vocabulary: continuation bytes to the end */
	memcpy(g, f, sizeof(f));
	g[2 * V4_N - 1] = raw("\x81\x81", 2);
	b = v4_splice(good, n, n, g, 2 * V4_N, &bn);
	CHECK(decode_status(b, bn) == US_EFORMAT, "a varint cut by the end of the body");
	free(b);
	/* fewer bytes than two per item after the counts */
	b = v4_splice(good, n, n, g, 4, &bn);
	CHECK(decode_status(b, bn) == US_EFORMAT, "a body too short for its item count");
	free(b);
	/* the encoder refuses ids out of order rather than write what the decoder rejects */
	{
		int64_t		t = m->vocab.item_ids[3];

		m->vocab.item_ids[3] = m->vocab.item_ids[4];
		b = malloc(n + 64);
		CHECK(us_model_encode(m, b, n + 64) == US_EINVAL, "equal ids refused by the encoder");
		m->vocab.item_ids[3] = t;
		free(b);
	}
	free(good);
	us_model_free(m);
}

/* ------------------------------------------------------------------ transition table */

static int
trans_equal(const us_transitions *a, const us_transitions *b)
{
	uint32_t	wa,
				wb;

	memcpy(&wa, &a->weight, 4);
	memcpy(&wb, &b->weight, 4);
	if (wa != wb || a->n_src != b->n_src || a->nnz != b->nnz)
		return 0;
	return memcmp(a->src, b->src, (size_t) a->n_src * 4) == 0 &&
		memcmp(a->start, b->start, ((size_t) a->n_src + 1) * 8) == 0 &&
		memcmp(a->to, b->to, (size_t) a->nnz * 4) == 0 &&
		memcmp(a->count, b->count, (size_t) a->nnz * 4) == 0 &&
		memcmp(a->logc, b->logc, (size_t) a->nnz * 4) == 0;
}

/* bytes of the table of m at the end of its encoding */
static size_t
trans_size(const us_model *m)
{
	return 16 + (size_t) m->trans.n_src * 8 + (size_t) m->trans.nnz * 8;
}

/* a copy of good with u32 value v at offset off (n bytes), CRC refreshed */
static us_status
status_with_u32(const uint8_t *good, size_t n, size_t off, uint32_t v)
{
	uint8_t    *b = malloc(n);
	us_status	st;

	memcpy(b, good, n);
	put32(b + off, v);
	refresh(b, n);
	st = decode_status(b, n);
	free(b);
	return st;
}

/*
 * Round trips of a next_item model with a transition prior (fp32 text-CNN as version 1,
 * sasrec as version 3, int8 text-CNN as version 4): flags bit 0, the table back bit for bit
 * (logc derived again), the same bytes on re-encoding, and the bytes without the table those
 * of the model without one (flags 0).
 */
static void
test_trans_round_trip(void)
{
	for (int k = 0; k < 4; k++)
	{
		fixture_opts o;
		us_model   *m = NULL,
				   *d = NULL,
				   *bare = NULL;
		uint8_t    *b1,
				   *b2,
				   *b0;
		size_t		n1,
					n2,
					n0;
		us_format_header h;
		uint32_t	want = k == 1 ? 3u : k >= 2 ? 4u : 1u;

		fixture_default(&o, US_TASK_NEXT_ITEM);
		o.n_vocab = 120;		/* more than 64 successors for the frequent rows */
		o.tie = k == 3;
		if (k == 1)
		{
			o.sasrec = 1;
			o.blocks = 1;
			o.heads = 2;
		}
		CHECK_OK(fixture_model(&o, 40 + k, &m));
		if (!m)
			continue;
		CHECK_OK(us_model_clone(m, us_malloc_allocator(), &bare));
		CHECK_OK(fixture_transitions(m, 7 + k, 256, k == 3 ? 0.0f : 1.5f));
		CHECK(m->trans.n_src > 0 && m->trans.nnz > m->trans.n_src, "case %d: a table (%d sources, %lld)",
			  k, m->trans.n_src, (long long) m->trans.nnz);
		if (k >= 2)
		{
			double		err;

			CHECK_OK(us_model_quantize(m, &err));
			CHECK_OK(us_model_quantize(bare, &err));
			CHECK(m->trans.n_src > 0, "case %d: quantize keeps the table", k);
		}
		b1 = encode(m, &n1);
		b0 = encode(bare, &n0);
		CHECK(b1 && b0, "case %d encodes", k);
		if (!b1 || !b0)
		{
			free(b1);
			free(b0);
			us_model_free(m);
			us_model_free(bare);
			continue;
		}
		CHECK_OK(us_format_peek(b1, 32, &h));
		CHECK(h.version == want && h.flags == 1u && h.total_size == n1, "case %d: version %u flags %u",
			  k, h.version, h.flags);
		CHECK(n1 == n0 + trans_size(m), "case %d: the table adds %zu bytes", k, trans_size(m));
		/* before the table, the bytes of the model without one (header aside) */
		CHECK(memcmp(b1 + 32, b0 + 32, n0 - 32) == 0 && b0[12] == 0, "case %d: body prefix", k);
		CHECK_OK(us_model_decode(b1, n1, us_malloc_allocator(), &d));
		if (d)
		{
			CHECK(trans_equal(&d->trans, &m->trans), "case %d: the table round trips", k);
			CHECK(d->quantized == (k >= 2) &&
				  memcmp(d->params_block, m->params_block, m->n_params * 4) == 0,
				  "case %d: weights", k);
			b2 = encode(d, &n2);
			CHECK(b2 && n2 == n1 && memcmp(b1, b2, n1) == 0, "case %d re-encodes identically", k);
			free(b2);
			us_model_free(d);
		}
		/* an empty table (no consecutive known items) is written as none */
		{
			us_model   *e = NULL;

			CHECK_OK(us_model_clone(bare, us_malloc_allocator(), &e));
			if (e)
			{
				CHECK_OK(fixture_transitions(e, 1, 0, 2.0f));
				CHECK(e->trans.n_src == 0 && us_model_encoded_size(e) == n0, "case %d: empty table", k);
				b2 = encode(e, &n2);
				CHECK(b2 && n2 == n0 && memcmp(b2, b0, n0) == 0, "case %d: empty table, same bytes", k);
				free(b2);
				us_model_free(e);
			}
		}
		free(b1);
		free(b0);
		us_model_free(m);
		us_model_free(bare);
	}
}

/* Every field of the table corrupted (valid CRC), each refused with US_EFORMAT. */
static void
test_trans_corrupt(void)
{
	fixture_opts o;
	us_model   *m = NULL,
			   *bin = NULL;
	uint8_t    *good,
			   *b;
	size_t		n,
				t0,
				srcs,
				tos;
	int32_t		ns;
	int64_t		nnz;
	int32_t		big;	/* a source with more than one successor */

	fixture_default(&o, US_TASK_NEXT_ITEM);
	o.n_vocab = 30;
	CHECK_OK(fixture_model(&o, 77, &m));
	if (!m)
		return;
	CHECK_OK(fixture_transitions(m, 3, 200, 0.5f));
	good = encode(m, &n);
	CHECK(good && decode_status(good, n) == US_OK, "the table fixture decodes");
	if (!good)
	{
		us_model_free(m);
		return;
	}
	ns = m->trans.n_src;
	nnz = m->trans.nnz;
	t0 = n - trans_size(m);
	srcs = t0 + 16;
	tos = srcs + 8 * (size_t) ns;
	big = 0;
	while (big < ns && m->trans.start[big + 1] - m->trans.start[big] < 2)
		big++;
	CHECK(ns >= 3 && big < ns, "fixture: %d sources, one with 2+ successors", ns);
	if (ns < 3 || big >= ns)
	{
		free(good);
		us_model_free(m);
		return;
	}

	/* header */
	CHECK(status_with_u32(good, n, 12, 0) == US_EFORMAT, "flag cleared: the table is trailing bytes");
	CHECK(status_with_u32(good, n, 12, 3) == US_EFORMAT, "flags bit 1");
	CHECK(status_with_u32(good, n, 12, 0x80000001u) == US_EFORMAT, "flags bit 31");
	{
		uint8_t		hb[32];
		us_format_header h;

		memcpy(hb, good, 32);
		put32(hb + 4, 2);
		CHECK(us_format_peek(hb, 32, &h) == US_EFORMAT, "a table flag on version 2");
	}
	/* weight */
	CHECK(status_with_u32(good, n, t0, 0x7FC00000u) == US_EFORMAT, "weight NaN");
	CHECK(status_with_u32(good, n, t0, 0x7F800000u) == US_EFORMAT, "weight +inf");
	CHECK(status_with_u32(good, n, t0, 0xBF800000u) == US_EFORMAT, "weight -1");
	CHECK(status_with_u32(good, n, t0, 0x447A2000u) == US_EFORMAT, "weight 1000.5");
	CHECK(status_with_u32(good, n, t0, 0x447A0000u) == US_OK, "weight 1000 is allowed");
	CHECK(status_with_u32(good, n, t0, 0) == US_OK, "weight 0 is allowed");
	/* counts */
	CHECK(status_with_u32(good, n, t0 + 4, 0) == US_EFORMAT, "n_src 0");
	CHECK(status_with_u32(good, n, t0 + 4, (uint32_t) ns - 1) == US_EFORMAT, "n_src - 1");
	CHECK(status_with_u32(good, n, t0 + 4, (uint32_t) ns + 1) == US_EFORMAT, "n_src + 1");
	CHECK(status_with_u32(good, n, t0 + 4, (uint32_t) m->cfg.n_items) == US_EFORMAT, "n_src = item rows");
	CHECK(status_with_u32(good, n, t0 + 4, 0xFFFFFFFFu) == US_EFORMAT, "n_src 2^32 - 1");
	CHECK(status_with_u32(good, n, t0 + 8, (uint32_t) nnz + 1) == US_EFORMAT, "nnz + 1");
	CHECK(status_with_u32(good, n, t0 + 8, (uint32_t) nnz - 1) == US_EFORMAT, "nnz - 1");
	CHECK(status_with_u32(good, n, t0 + 12, 1) == US_EFORMAT, "nnz + 2^32");
	CHECK(status_with_u32(good, n, t0 + 12, 0x80000000u) == US_EFORMAT, "nnz 2^63 + nnz");
	/* sources */
	CHECK(status_with_u32(good, n, srcs, 0) == US_EFORMAT, "source row 0 (padding)");
	CHECK(status_with_u32(good, n, srcs, 1) == US_EFORMAT, "source row 1 (out of vocabulary)");
	CHECK(status_with_u32(good, n, srcs + 8 * (ns - 1), (uint32_t) m->cfg.n_items) == US_EFORMAT,
		  "source row = item rows");
	CHECK(status_with_u32(good, n, srcs + 8 * (ns - 1), 0x80000000u) == US_EFORMAT,
		  "source row 2^31");
	CHECK(status_with_u32(good, n, srcs + 8, (uint32_t) m->trans.src[0]) == US_EFORMAT,
		  "two equal source rows");
	CHECK(status_with_u32(good, n, srcs, (uint32_t) m->trans.src[1] + 0) == US_EFORMAT,
		  "source rows out of order");
	CHECK(status_with_u32(good, n, srcs + 4 + 8 * big, 0) == US_EFORMAT, "a source with no successors");
	CHECK(status_with_u32(good, n, srcs + 4 + 8 * big, 65) == US_EFORMAT, "65 successors");
	CHECK(status_with_u32(good, n, srcs + 4 + 8 * big,
						  (uint32_t) (m->trans.start[big + 1] - m->trans.start[big] + 1)) == US_EFORMAT,
		  "successor counts add up to nnz + 1");
	CHECK(status_with_u32(good, n, srcs + 4 + 8 * big,
						  (uint32_t) (m->trans.start[big + 1] - m->trans.start[big] - 1)) == US_EFORMAT,
		  "successor counts add up to nnz - 1");
	/* successors of a source with two or more */
	{
		int64_t		j = m->trans.start[big];

		CHECK(status_with_u32(good, n, tos + 8 * j, 0) == US_EFORMAT, "successor row 0");
		CHECK(status_with_u32(good, n, tos + 8 * j, 1) == US_EFORMAT, "successor row 1");
		CHECK(status_with_u32(good, n, tos + 8 * j, (uint32_t) m->cfg.n_items) == US_EFORMAT,
			  "successor row = item rows");
		CHECK(status_with_u32(good, n, tos + 8 * j, 0xFFFFFFFFu) == US_EFORMAT,
			  "successor row 2^32 - 1");
		CHECK(status_with_u32(good, n, tos + 8 * (j + 1), (uint32_t) m->trans.to[j]) == US_EFORMAT,
			  "two equal successor rows");
		CHECK(status_with_u32(good, n, tos + 8 * j, (uint32_t) m->trans.to[j + 1]) == US_EFORMAT,
			  "successor rows out of order");
		CHECK(status_with_u32(good, n, tos + 8 * j + 4, 0) == US_EFORMAT, "count 0");
		CHECK(status_with_u32(good, n, tos + 8 * j + 4, 0xFFFFFFFFu) == US_OK, "count 2^32 - 1 is allowed");
	}
	/* every allocation of a decode with a table failing: US_ENOMEM, nothing leaked */
	for (int at = 1; at < 100; at++)
	{
		failing		f = {0, at, 0};
		us_allocator a = {failing_alloc, failing_free, &f};
		us_model   *d = NULL;
		us_status	st = us_model_decode(good, n, &a, &d);

		if (st == US_OK)
		{
			CHECK(at > 8 && trans_equal(&d->trans, &m->trans), "decode with a table after %d allocations", at);
			us_model_free(d);
			CHECK(f.live == 0, "no leak after free");
			break;
		}
		CHECK(st == US_ENOMEM && d == NULL && f.live == 0,
			  "allocation %d failing (table): %s, %d blocks live", at, us_status_str(st), f.live);
	}
	/* lengths: cut or extended tables (total and CRC refreshed) */
	b = malloc(n + 8);
	memcpy(b, good, n);
	refresh(b, n - 8);
	CHECK(decode_status(b, n - 8) == US_EFORMAT, "the last transition cut");
	memcpy(b, good, n);
	refresh(b, t0 + 8);
	CHECK(decode_status(b, t0 + 8) == US_EFORMAT, "the table head cut");
	memcpy(b, good, n);
	refresh(b, t0);
	CHECK(decode_status(b, t0) == US_EFORMAT, "flag set, no table");
	memcpy(b, good, n);
	memset(b + n, 0, 8);
	refresh(b, n + 8);
	CHECK(decode_status(b, n + 8) == US_EFORMAT, "8 bytes after the table");
	free(b);

	/* a table on a model of another task: refused by the decoder and by the encoder */
	fixture_default(&o, US_TASK_BINARY);
	o.n_vocab = 30;
	CHECK_OK(fixture_model(&o, 78, &bin));
	if (bin)
	{
		size_t		nb = us_model_encoded_size(bin),
					tb = trans_size(m);

		b = malloc(nb + tb);
		CHECK_OK(us_model_encode(bin, b, nb));
		memcpy(b + nb, good + t0, tb);
		put32(b + 12, 1);
		refresh(b, nb + tb);
		CHECK(decode_status(b, nb + tb) == US_EFORMAT, "a table on a binary model");
		CHECK_OK(us_transitions_copy(&bin->trans, &m->trans, &bin->alloc));
		CHECK(us_model_encode(bin, b, nb + tb) == US_EINVAL, "the encoder refuses a table on a binary model");
		free(b);
		us_model_free(bin);
	}
	/* the encoder refuses a table the decoder would reject */
	{
		int32_t		t = m->trans.to[0];

		b = malloc(n);
		m->trans.to[0] = m->cfg.n_items;
		CHECK(us_model_encode(m, b, n) == US_EINVAL, "the encoder refuses a successor past the items");
		m->trans.to[0] = t;
		m->trans.weight = -1.0f;
		CHECK(us_model_encode(m, b, n) == US_EINVAL, "the encoder refuses a negative weight");
		m->trans.weight = 0.5f;
		CHECK(us_model_encode(m, b, n) == US_OK && memcmp(b, good, n) == 0, "restored: same bytes");
		free(b);
	}
	free(good);
	us_model_free(m);
}

int
main(void)
{
	test_crc();
	test_round_trip();
	test_version3_text_cnn_refused();
	test_version4_varints();
	test_corrupt();
	test_alloc_failure();
	test_trans_round_trip();
	test_trans_corrupt();
	return unit_finish("test_format");
}
