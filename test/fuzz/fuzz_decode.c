/*
 * fuzz_decode.c: libFuzzer harness of the model decoder (built by `make fuzz`).
 *
 * Any input must either be rejected with a status or decode to a model whose re-encoding is
 * byte-for-byte the input (the format has exactly one encoding per model). Version 2 is read
 * but no longer written: such a model must re-encode as version 4 bytes that decode to the
 * same weights and vocabulary and re-encode identically. A decoded model is
 * also scored once, folded when its tables are small, so hostile but finite weights go through
 * the scorer too. Each input is tried twice: as is, and with its header's total size and CRC
 * repaired, since random mutations almost never keep the checksum valid and the body parser
 * would otherwise stay unexplored. It does not check statuses against expectations; the unit
 * tests do that.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "userseq/us_format.h"

int			LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
score_once(const us_model *m, const uint8_t *data, size_t size)
{
	us_scorer  *sc = NULL;
	int32_t		items[40];
	int32_t		n = (int32_t) (size % 40);
	us_events	ev = {items, NULL, NULL, n};
	float	   *out,
			   *feat;
	int32_t		rows[5];
	float		scores[5];
	int32_t		nf;

	if (us_scorer_create(m, (size_t) 1 << 20, us_malloc_allocator(), &sc) != US_OK)
		return;
	for (int32_t i = 0; i < n; i++)
		items[i] = (int32_t) (data[i % size] % (uint32_t) m->cfg.n_items);
	out = malloc((size_t) m->cfg.n_outputs * sizeof(float));
	feat = malloc((size_t) us_model_feature_dim(&m->cfg) * sizeof(float));
	if (out && feat && us_scorer_forward(sc, &ev, out, feat) != US_OK)
		abort();
	if (m->cfg.task == US_TASK_NEXT_ITEM &&
		us_scorer_topk(sc, &ev, 5, 1, rows, scores, &nf) != US_OK)
		abort();
	free(out);
	free(feat);
	us_scorer_free(sc);
}

static void
check_v2_upgrade(const us_model *m)
{
	size_t		n = us_model_encoded_size(m);
	uint8_t    *buf = malloc(n),
			   *again;
	us_model   *d = NULL;
	const us_vocab *a = &m->vocab,
			   *b;

	if (buf == NULL || us_model_encode(m, buf, n) != US_OK || buf[4] != 4 ||
		us_model_decode(buf, n, us_malloc_allocator(), &d) != US_OK)
		abort();
	b = &d->vocab;
	if (!d->quantized || d->n_params != m->n_params ||
		memcmp(d->params_block, m->params_block, m->n_params * 4) != 0 ||
		b->n_items != a->n_items || b->n_behaviors != a->n_behaviors || b->n_classes != a->n_classes ||
		memcmp(b->item_ids, a->item_ids, (size_t) a->n_items * sizeof(int64_t)) != 0 ||
		memcmp(b->item_counts, a->item_counts, (size_t) a->n_items * sizeof(uint32_t)) != 0)
		abort();
	for (int32_t i = 0; i < a->n_behaviors; i++)
		if (strcmp(a->behaviors[i], b->behaviors[i]) != 0)
			abort();
	for (int32_t i = 0; i < a->n_classes; i++)
		if (strcmp(a->classes[i], b->classes[i]) != 0)
			abort();
	again = malloc(n);
	if (again == NULL || us_model_encoded_size(d) != n || us_model_encode(d, again, n) != US_OK ||
		memcmp(again, buf, n) != 0)
		abort();
	free(again);
	free(buf);
	us_model_free(d);
}

static void
try_decode(const uint8_t *data, size_t size)
{
	us_model   *m = NULL;
	us_format_header h;
	us_status	st = us_model_decode(data, size, us_malloc_allocator(), &m);

	(void) us_format_peek(data, size, &h);
	if (st != US_OK)
	{
		if (m != NULL)
			abort();
		return;
	}
	if (h.version == US_FORMAT_VERSION_INT8_V2)
		check_v2_upgrade(m);
	else
	{
		size_t		n = us_model_encoded_size(m);
		uint8_t    *buf = malloc(n);

		if (n != size || buf == NULL || us_model_encode(m, buf, n) != US_OK ||
			memcmp(buf, data, n) != 0)
			abort();
		free(buf);
	}
	if (size > 0)
		score_once(m, data, size);
	us_model_free(m);
}

static void
put_le(uint8_t *p, uint64_t v, int bytes)
{
	for (int i = 0; i < bytes; i++)
		p[i] = (uint8_t) (v >> (8 * i));
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	uint8_t    *copy;

	try_decode(data, size);
	if (size < US_FORMAT_HEADER_SIZE)
		return 0;
	copy = malloc(size);
	if (copy == NULL)
		return 0;
	memcpy(copy, data, size);
	put_le(copy + 16, size, 8);
	put_le(copy + 24, us_crc32c(0, copy + US_FORMAT_HEADER_SIZE, size - US_FORMAT_HEADER_SIZE), 4);
	try_decode(copy, size);
	free(copy);
	return 0;
}
