/*
 * format.c: the self-contained model bytes (encode, decode, header peek).
 *
 * Every integer and float is written byte by byte in little-endian order (no struct dumps),
 * so the bytes are identical on every host. The decoder treats its input as hostile: it checks
 * the header, the CRC32C, and then every count against the documented limits and against the
 * bytes that remain, with overflow-safe arithmetic, before it allocates anything; it never reads
 * outside [buf, buf + len). It does not interpret the weights beyond requiring them finite
 * and within +-US_MAX_ABS_WEIGHT, the bound that keeps every score finite (padding rows need
 * not be zero), and it does not know the parameter layout: that belongs to
 * model.c (us_model_param_count, us_params_bind), whose flat block is copied in order.
 *
 * Byte layout, format versions 1 and 3 (offsets in bytes; u32/i32/u64/i64/f32 little-endian).
 * Version 3 adds three config words for the encoder architecture; an fp32 text-CNN is still
 * written as version 1 (the same bytes as before versions 2 and 3 existed), a sasrec model as
 * version 3 (fp32 weights; int8 versions 2 and 4 below are for text-CNNs only):
 *
 *   header, 32 bytes
 *     0   u32  magic 0x4D515355 ("USQM" as bytes)
 *     4   u32  format version (1 to 4)
 *     8   u32  header size (32)
 *     12  u32  flags: bit 0 = a transition table follows the parameters, bit 1 = a repeat
 *          weight follows them (after the table if both; versions 1, 3 and 4, next_item
 *          models only); every other bit must be 0
 *     16  u64  total size in bytes, header included (<= 1 GiB)
 *     24  u32  CRC32C (Castagnoli) of bytes [header size, total size)
 *     28  u32  reserved, must be 0
 *
 *   body
 *     config, 88 bytes, the fields of us_model_config in declaration order:
 *       i32 task, n_items, n_behaviors, n_gap_buckets, n_outputs, max_len, embed_dim,
 *       n_widths, widths[8] (entries past n_widths must be 0), n_filters, hidden_dim,
 *       recent_window, tie_output; f32 dropout, pos_weight
 *     version 3 only, 12 bytes: i32 architecture (1 = sasrec), n_blocks, n_heads
 *       (a version 1 or 2 model is a text-CNN: architecture 0, n_blocks = n_heads = 0)
 *     vocabulary counts: u32 n_vocab_items, u32 n_behavior_labels, u32 n_class_labels
 *       (n_items = n_vocab_items + 2; n_behaviors = n_behavior_labels + 2, or 0 and 0 labels;
 *        multiclass: n_class_labels = n_outputs, other tasks 0)
 *     i64 item_ids[n_vocab_items], strictly ascending
 *     u32 item_counts[n_vocab_items]
 *     n_behavior_labels times: u32 length (<= 255), then that many bytes (no NUL; labels distinct)
 *     n_class_labels times: the same
 *     u64 n_params (must equal the count the config implies)
 *     f32 params[n_params], finite, |w| <= 1e6, in the order of us_model.params_block
 *     only with flags bit 0, the transition prior (us_model.h, us_transitions):
 *       f32 weight (finite, 0 .. 1000), u32 n_src (>= 1, < n_items), u64 nnz,
 *       n_src times: u32 source row, u32 successor count (1 .. 64); rows strictly ascending,
 *         >= 2, and the counts add up to nnz
 *       nnz times: u32 successor row, u32 count (>= 1); per source, rows strictly ascending,
 *         >= 2 and < n_items
 *       (log(1 + count) is derived on load, never stored; a model whose table is empty is
 *        written without it and flags 0, so a model without a prior has the same bytes as
 *        before the prior existed)
 *     only with flags bit 1, the repeat prior: f32 repeat_weight (finite, > 0 .. 1000; a model
 *       whose repeat weight is 0 is written without it)
 *     (these two sections are written and read by format_prior.c)
 *   The body ends exactly at the total size; trailing bytes are an error.
 *
 * Format version 2 (int8 models of us_model_quantize until version 4 replaced it; read, no
 * longer written; fp32 models are written as version 1): the same header and body up to
 * n_params, then the parameters tensor by tensor in block order (us_model_tensors: item,
 * behaviour, gap embeddings, per width conv_w then conv_b, dense_w, dense_b, out_w unless
 * tied, out_b):
 *     a bias: f32 values[n], as in version 1
 *     a weight matrix of rows x cols with G groups (rows of an embedding table, columns =
 *       filters / hidden units / outputs of the others): f32 scales[G] (finite, >= 0,
 *       127 * scale <= 1e6), then i8 q[rows * cols] row-major, each in -127..127;
 *       the weight is q * scale of its group (exact in fp32).
 *
 * Format version 4 (every int8 text-CNN written now; version 2 is still read, never written):
 * version 2 with a compact vocabulary. The item ids and counts (12 bytes per item in
 * versions 1-3, more than the item's int8 embedding row costs at E = 64) become
 *     item ids: varint zigzag(item_ids[0]), then for i >= 1
 *       varint(item_ids[i] - item_ids[i-1] - 1) (ids strictly ascending: each delta is >= 1)
 *     item counts: varint item_counts[i] for every item
 * in place of the two fixed-width arrays; everything else is version 2 byte for byte (and the
 * transition table of flags bit 0 follows the parameters as in version 1). A varint
 * is unsigned LEB128 (7 bits a byte, low first, high bit set on all but the last byte) in its
 * shortest form: a multi-byte varint whose last byte is 0, more than 64 bits (a tenth byte
 * above 1), an id past INT64_MAX or a count above UINT32_MAX is US_EFORMAT, so every model
 * still has exactly one encoding that is written. The one exception is version 2, read but no
 * longer written: a model decoded from it re-encodes as version 4.
 *
 * Statuses: US_ETRUNCATED when len is shorter than the header or the total size it states;
 * US_EFORMAT for bad magic, header size, flags, reserved bits, trailing bytes or any field that
 * is inconsistent with the rest; US_EVERSION for another format version; US_ECHECKSUM for a
 * CRC mismatch; US_ELIMIT for a count or size beyond a documented limit; US_ENONFINITE for a
 * NaN or infinite weight (reported before) US_ERANGE for a finite weight beyond
 * +-US_MAX_ABS_WEIGHT; US_ENOMEM when the allocator fails.
 */
#include <math.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "userseq/us_format.h"
#include "format_internal.h"

#define CONFIG_BYTES	(22 * 4)
#define CONFIG_V3_BYTES	(3 * 4)		/* architecture, n_blocks, n_heads */
#define VOCAB_HEAD_BYTES	(3 * 4)
/* The smallest possible model: header, config, vocabulary counts, n_params. */
#define MIN_TOTAL_SIZE	(US_FORMAT_HEADER_SIZE + CONFIG_BYTES + VOCAB_HEAD_BYTES + 8)

/* ------------------------------------------------------------------ varints (version 4) */

static size_t
varint_len(uint64_t v)
{
	size_t		n = 1;

	for (; v >= 0x80; v >>= 7)
		n++;
	return n;
}

static uint8_t *
put_varint(uint8_t *p, uint64_t v)
{
	for (; v >= 0x80; v >>= 7)
		*p++ = (uint8_t) (v | 0x80);
	*p++ = (uint8_t) v;
	return p;
}

/* A shortest-form varint of at most max; anything the encoder would not write is US_EFORMAT. */
static us_status
rd_varint(reader *r, uint64_t max, uint64_t *v)
{
	uint64_t	x = 0;

	for (int shift = 0;; shift += 7)
	{
		uint8_t		b;

		if (remaining(r) == 0)
			return US_EFORMAT;
		b = r->p[r->pos++];
		/* the tenth byte holds bit 63 only, and ends the varint */
		if (shift == 63 && b > 1)
			return US_EFORMAT;
		x |= (uint64_t) (b & 0x7F) << shift;
		if ((b & 0x80) == 0)
		{
			/* a zero last byte could have been left off */
			if (b == 0 && shift > 0)
				return US_EFORMAT;
			break;
		}
	}
	if (x > max)
		return US_EFORMAT;
	*v = x;
	return US_OK;
}

static inline uint64_t
zigzag(int64_t v)
{
	return v < 0 ? ~((uint64_t) v << 1) : (uint64_t) v << 1;
}

static inline int64_t
unzigzag(uint64_t u)
{
	return (int64_t) ((u >> 1) ^ (0 - (u & 1)));
}

/* bytes of the version 4 item ids and counts (ids strictly ascending) */
static size_t
items_v4_bytes(const us_vocab *v)
{
	size_t		s = 0;

	for (int32_t i = 0; i < v->n_items; i++)
	{
		s += varint_len(i == 0 ? zigzag(v->item_ids[0])
						: (uint64_t) v->item_ids[i] - (uint64_t) v->item_ids[i - 1] - 1);
		s += varint_len(v->item_counts[i]);
	}
	return s;
}

static uint8_t *
put_items_v4(uint8_t *p, const us_vocab *v)
{
	for (int32_t i = 0; i < v->n_items; i++)
		p = put_varint(p, i == 0 ? zigzag(v->item_ids[0])
					   : (uint64_t) v->item_ids[i] - (uint64_t) v->item_ids[i - 1] - 1);
	for (int32_t i = 0; i < v->n_items; i++)
		p = put_varint(p, v->item_counts[i]);
	return p;
}

/*
 * Reads n version 4 item ids and counts at the cursor, checking every varint and that no id
 * passes INT64_MAX; stores them when ids and counts are not NULL (the check pass runs before
 * anything is allocated, the load pass reads the same bytes again).
 */
static us_status
rd_items_v4(reader *r, uint32_t n, int64_t *ids, uint32_t *counts)
{
	uint64_t	u,
				prev = 0;

	for (uint32_t i = 0; i < n; i++)
	{
		if (i == 0)
		{
			us_status	st = rd_varint(r, UINT64_MAX, &u);

			if (st != US_OK)
				return st;
			prev = (uint64_t) unzigzag(u);
		}
		else
		{
			/* distance from prev to INT64_MAX, in two's complement */
			uint64_t	room = (uint64_t) INT64_MAX - prev;
			us_status	st;

			if (room == 0)
				return US_EFORMAT;
			st = rd_varint(r, room - 1, &u);
			if (st != US_OK)
				return st;
			prev += u + 1;
		}
		if (ids)
			ids[i] = (int64_t) prev;
	}
	for (uint32_t i = 0; i < n; i++)
	{
		us_status	st = rd_varint(r, UINT32_MAX, &u);

		if (st != US_OK)
			return st;
		if (counts)
			counts[i] = (uint32_t) u;
	}
	return US_OK;
}

/* ------------------------------------------------------------------ shared checks */

/* The vocabulary sizes the config requires. */
static us_status
check_vocab_counts(const us_model_config *cfg, uint64_t n_vocab_items,
				   uint64_t n_beh_labels, uint64_t n_class_labels)
{
	if (n_vocab_items + US_ROW_FIRST != (uint64_t) cfg->n_items)
		return US_EFORMAT;
	if (cfg->n_behaviors == 0 ? n_beh_labels != 0
		: n_beh_labels + US_ROW_FIRST != (uint64_t) cfg->n_behaviors)
		return US_EFORMAT;
	if (cfg->task == US_TASK_MULTICLASS ? n_class_labels != (uint64_t) cfg->n_outputs
		: n_class_labels != 0)
		return US_EFORMAT;
	return US_OK;
}

/*
 * Sizes past a documented limit are US_ELIMIT (config validation calls every bad field
 * US_EINVAL, which for stored bytes means US_EFORMAT).
 */
static us_status
check_config_limits(const us_model_config *c)
{
	if (c->n_items > US_MAX_ITEMS || c->n_behaviors > US_MAX_BEHAVIORS ||
		c->n_gap_buckets > US_MAX_GAP_BUCKETS || c->max_len > US_MAX_LEN ||
		c->embed_dim > US_MAX_EMBED_DIM || c->n_widths > US_MAX_WIDTHS ||
		c->n_filters > US_MAX_FILTERS || c->hidden_dim > US_MAX_HIDDEN ||
		c->recent_window > US_MAX_RECENT)
		return US_ELIMIT;
	if (c->task == US_TASK_MULTICLASS ? c->n_outputs > US_MAX_CLASSES
		: c->n_outputs > US_MAX_ITEMS)
		return US_ELIMIT;
	for (int i = 0; i < US_MAX_WIDTHS; i++)
		if (c->widths[i] > US_MAX_FILTER_WIDTH)
			return US_ELIMIT;
	return US_OK;
}

static us_status
map_config_status(us_status st)
{
	if (st == US_OK || st == US_ENONFINITE)
		return st;
	return US_EFORMAT;
}

/* ------------------------------------------------------------------ header */

us_status
us_format_peek(const uint8_t *buf, size_t len, us_format_header *header)
{
	uint32_t	version;
	uint64_t	total;

	if (buf == NULL || header == NULL)
		return US_EINVAL;
	/* With at least the magic present, a wrong magic says "not a model" before "too short". */
	if (len >= 4 && get_u32(buf) != US_FORMAT_MAGIC)
		return US_EFORMAT;
	if (len < 8)
		return US_ETRUNCATED;
	version = get_u32(buf + 4);
	if (version < US_FORMAT_VERSION_MIN || version > US_FORMAT_VERSION)
		return US_EVERSION;
	if (len < US_FORMAT_HEADER_SIZE)
		return US_ETRUNCATED;
	if (get_u32(buf + 8) != US_FORMAT_HEADER_SIZE)
		return US_EFORMAT;
	if ((get_u32(buf + 12) & ~(FLAG_TRANS | FLAG_REPEAT)) != 0 || get_u32(buf + 28) != 0)
		return US_EFORMAT;
	/* version 2 is read only and was never written with a prior */
	if ((get_u32(buf + 12) & (FLAG_TRANS | FLAG_REPEAT)) && version == US_FORMAT_VERSION_INT8_V2)
		return US_EFORMAT;
	total = get_u64(buf + 16);
	if (total > US_FORMAT_MAX_SIZE)
		return US_ELIMIT;
	if (total < MIN_TOTAL_SIZE)
		return US_EFORMAT;
	header->version = version;
	header->total_size = total;
	header->crc32c = get_u32(buf + 24);
	header->flags = get_u32(buf + 12);
	return US_OK;
}

/* ------------------------------------------------------------------ encode */

static size_t
label_bytes(char *const *labels, int32_t n)
{
	size_t		s = 0;

	for (int32_t i = 0; i < n; i++)
		s += 4 + (labels && labels[i] ? strlen(labels[i]) : 0);
	return s;
}

/*
 * The version the model is written as: 1 for an fp32 text-CNN (the same bytes as before
 * versions 2 to 4 existed), 4 for an int8 text-CNN (version 2 with the compact vocabulary;
 * version 2 is read, never written: a model has one encoding), 3 for a sasrec model (fp32
 * only: us_model_quantize refuses it).
 */
static uint32_t
format_version(const us_model *m)
{
	if (m->cfg.architecture != US_ARCH_TEXTCNN)
		return 3u;
	return m->quantized ? 4u : 1u;
}

/* bytes of the parameter section: fp32 (version 1) or int8 + scales (version 2) */
static size_t
params_bytes(const us_model *model)
{
	us_tensor	t[US_MAX_TENSORS];
	int			nt;
	size_t		s = 0;

	if (!model->quantized)
		return model->n_params * 4;
	nt = us_model_tensors(&model->cfg, t);
	for (int k = 0; k < nt; k++)
		s += t[k].quant ? 4 * us_tensor_groups(&t[k]) + t[k].rows * t[k].cols : 4 * t[k].rows * t[k].cols;
	return s;
}

/* group g of tensor x: element j is at base[g * gs + j * es], L elements */
static void
group_layout(const us_tensor *x, size_t *L, size_t *gs, size_t *es)
{
	*L = x->per_col ? x->rows : x->cols;
	*gs = x->per_col ? 1 : x->cols;
	*es = x->per_col ? x->cols : 1;
}

/* version 2 parameters: per tensor fp32 biases, or scales then int8 codes */
static uint8_t *
put_params_int8(const us_model *model, uint8_t *p)
{
	us_tensor	t[US_MAX_TENSORS];
	int			nt = us_model_tensors(&model->cfg, t);

	for (int k = 0; k < nt; k++)
	{
		const us_tensor *x = &t[k];
		const float *w = model->params_block + x->off;
		size_t		G = us_tensor_groups(x),
					n = x->rows * x->cols,
					L,
					gs,
					es;
		uint8_t    *codes = p + 4 * G;

		if (!x->quant)
		{
			for (size_t i = 0; i < n; i++, p += 4)
				put_u32(p, f32_bits(w[i]));
			continue;
		}
		group_layout(x, &L, &gs, &es);
		for (size_t g = 0; g < G; g++)
		{
			float		amax = 0.0f,
						scale;

			for (size_t j = 0; j < L; j++)
				amax = fmaxf(amax, fabsf(w[g * gs + j * es]));
			scale = us_quant_scale(amax);
			put_u32(p + 4 * g, f32_bits(scale));
			for (size_t j = 0; j < L; j++)
			{
				size_t		i = g * gs + j * es;
				float		q = scale > 0.0f ? fminf(127.0f, fmaxf(-127.0f, rintf(w[i] / scale))) : 0.0f;

				codes[i] = (uint8_t) (int8_t) q;
			}
		}
		p = codes + n;
	}
	return p;
}

size_t
us_model_encoded_size(const us_model *model)
{
	const us_vocab *v;
	size_t		s;

	if (model == NULL)
		return 0;
	v = &model->vocab;
	s = US_FORMAT_HEADER_SIZE + CONFIG_BYTES + VOCAB_HEAD_BYTES;
	if (format_version(model) == 3)
		s += CONFIG_V3_BYTES;
	if (format_version(model) == 4)
		s += v->n_items > 0 && v->item_ids && v->item_counts ? items_v4_bytes(v) : 0;
	else
		s += (size_t) (v->n_items > 0 ? v->n_items : 0) * 12;
	s += label_bytes(v->behaviors, v->n_behaviors);
	s += label_bytes(v->classes, v->n_classes);
	s += 8 + params_bytes(model);
	s += us_format_prior_bytes(model);
	return s;
}

static uint8_t *
put_labels(uint8_t *p, char *const *labels, int32_t n)
{
	for (int32_t i = 0; i < n; i++)
	{
		size_t		l = strlen(labels[i]);

		put_u32(p, (uint32_t) l);
		memcpy(p + 4, labels[i], l);
		p += 4 + l;
	}
	return p;
}

static us_status
check_labels_encodable(char *const *labels, int32_t n)
{
	if (n > 0 && labels == NULL)
		return US_EINVAL;
	for (int32_t i = 0; i < n; i++)
	{
		if (labels[i] == NULL)
			return US_EINVAL;
		if (strlen(labels[i]) > US_MAX_LABEL_BYTES)
			return US_ELIMIT;
	}
	return US_OK;
}

us_status
us_model_encode(const us_model *model, uint8_t *buf, size_t len)
{
	const us_model_config *c;
	const us_vocab *v;
	size_t		total;
	uint8_t    *p;
	int32_t		cfg_words[20];

	if (model == NULL || buf == NULL)
		return US_EINVAL;
	c = &model->cfg;
	v = &model->vocab;
	/* Refuse to write bytes the decoder would reject for their shape. */
	if (v->n_items < 0 || v->n_behaviors < 0 || v->n_classes < 0)
		return US_EINVAL;
	if (check_vocab_counts(c, (uint64_t) v->n_items, (uint64_t) v->n_behaviors,
						   (uint64_t) v->n_classes) != US_OK)
		return US_EINVAL;
	if (v->n_items > 0 && (v->item_ids == NULL || v->item_counts == NULL))
		return US_EINVAL;
	for (int32_t i = 1; i < v->n_items; i++)
		if (v->item_ids[i] <= v->item_ids[i - 1])
			return US_EINVAL;
	/* no format holds an int8 sasrec model (us_model_quantize refuses one) */
	if (model->quantized && c->architecture != US_ARCH_TEXTCNN)
		return US_EUNSUPPORTED;
	TRY(check_labels_encodable(v->behaviors, v->n_behaviors));
	TRY(check_labels_encodable(v->classes, v->n_classes));
	if (model->n_params > 0 && model->params_block == NULL)
		return US_EINVAL;
	TRY(us_format_prior_encodable(model));

	total = us_model_encoded_size(model);
	if (total > US_FORMAT_MAX_SIZE)
		return US_ELIMIT;
	if (len < total)
		return US_EINVAL;

	p = buf + US_FORMAT_HEADER_SIZE;
	cfg_words[0] = c->task;
	cfg_words[1] = c->n_items;
	cfg_words[2] = c->n_behaviors;
	cfg_words[3] = c->n_gap_buckets;
	cfg_words[4] = c->n_outputs;
	cfg_words[5] = c->max_len;
	cfg_words[6] = c->embed_dim;
	cfg_words[7] = c->n_widths;
	for (int i = 0; i < US_MAX_WIDTHS; i++)
		cfg_words[8 + i] = i < c->n_widths ? c->widths[i] : 0;
	cfg_words[16] = c->n_filters;
	cfg_words[17] = c->hidden_dim;
	cfg_words[18] = c->recent_window;
	cfg_words[19] = c->tie_output;
	for (int i = 0; i < 20; i++, p += 4)
		put_u32(p, (uint32_t) cfg_words[i]);
	put_u32(p, f32_bits(c->dropout));
	put_u32(p + 4, f32_bits(c->pos_weight));
	p += 8;
	if (format_version(model) == 3)
	{
		put_u32(p, (uint32_t) c->architecture);
		put_u32(p + 4, (uint32_t) c->n_blocks);
		put_u32(p + 8, (uint32_t) c->n_heads);
		p += CONFIG_V3_BYTES;
	}

	put_u32(p, (uint32_t) v->n_items);
	put_u32(p + 4, (uint32_t) v->n_behaviors);
	put_u32(p + 8, (uint32_t) v->n_classes);
	p += 12;
	if (format_version(model) == 4)
		p = put_items_v4(p, v);
	else
	{
		for (int32_t i = 0; i < v->n_items; i++, p += 8)
			put_u64(p, (uint64_t) v->item_ids[i]);
		for (int32_t i = 0; i < v->n_items; i++, p += 4)
			put_u32(p, v->item_counts[i]);
	}
	p = put_labels(p, v->behaviors, v->n_behaviors);
	p = put_labels(p, v->classes, v->n_classes);

	put_u64(p, (uint64_t) model->n_params);
	p += 8;
	if (model->quantized)
		p = put_params_int8(model, p);
	else
	{
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
		if (model->n_params > 0)
			memcpy(p, model->params_block, model->n_params * 4);
		p += model->n_params * 4;
#else
		for (size_t i = 0; i < model->n_params; i++, p += 4)
			put_u32(p, f32_bits(model->params_block[i]));
#endif
	}
	p = us_format_put_prior(p, model);
	if ((size_t) (p - buf) != total)
		return US_EINTERNAL;

	put_u32(buf, US_FORMAT_MAGIC);
	put_u32(buf + 4, format_version(model));
	put_u32(buf + 8, US_FORMAT_HEADER_SIZE);
	put_u32(buf + 12, us_format_prior_flags(model));
	put_u64(buf + 16, (uint64_t) total);
	put_u32(buf + 24, us_crc32c(0, buf + US_FORMAT_HEADER_SIZE, total - US_FORMAT_HEADER_SIZE));
	put_u32(buf + 28, 0);
	return US_OK;
}

/* ------------------------------------------------------------------ decode */

/*
 * Checks n labels starting at the cursor (lengths, no NUL) and advances past them; their
 * distinctness is checked later, once the count is known to be backed by real bytes.
 */
static us_status
scan_labels(reader *r, uint32_t n)
{
	for (uint32_t i = 0; i < n; i++)
	{
		uint32_t	l;

		TRY(rd_u32(r, &l));
		if (l > US_MAX_LABEL_BYTES)
			return US_ELIMIT;
		if (remaining(r) < l)
			return US_EFORMAT;
		if (l > 0 && memchr(r->p + r->pos, '\0', l) != NULL)
			return US_EFORMAT;
		r->pos += l;
	}
	return US_OK;
}

static int
cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *) a, *(char *const *) b);
}

/* Copies n labels (already scanned) into NUL-terminated strings; checks they are distinct. */
static us_status
load_labels(reader *r, uint32_t n, const us_allocator *a, char ***out)
{
	char	  **labels;
	char	  **sorted;
	us_status	st = US_OK;

	*out = NULL;
	if (n == 0)
		return US_OK;
	labels = xalloc(a, (size_t) n * sizeof(char *));
	if (labels == NULL)
		return US_ENOMEM;
	memset(labels, 0, (size_t) n * sizeof(char *));
	*out = labels;
	for (uint32_t i = 0; i < n; i++)
	{
		uint32_t	l = get_u32(r->p + r->pos);

		labels[i] = xalloc(a, (size_t) l + 1);
		if (labels[i] == NULL)
			return US_ENOMEM;
		memcpy(labels[i], r->p + r->pos + 4, l);
		labels[i][l] = '\0';
		r->pos += 4 + (size_t) l;
	}
	if (n < 2)
		return US_OK;
	sorted = xalloc(a, (size_t) n * sizeof(char *));
	if (sorted == NULL)
		return US_ENOMEM;
	memcpy(sorted, labels, (size_t) n * sizeof(char *));
	qsort(sorted, n, sizeof(char *), cmp_str);
	for (uint32_t i = 1; i < n; i++)
		if (strcmp(sorted[i - 1], sorted[i]) == 0)
		{
			st = US_EFORMAT;
			break;
		}
	xfree(a, sorted);
	return st;
}

static void
free_labels(const us_allocator *a, char **labels, uint32_t n)
{
	if (labels == NULL)
		return;
	for (uint32_t i = 0; i < n; i++)
		xfree(a, labels[i]);
	xfree(a, labels);
}

/*
 * The encoder derives each group's scale and codes from the dequantized weights, so a group
 * read back must be exactly what the encoder would write for the weights it decodes to:
 * scale = us_quant_scale(max |q| * scale) (0 for an all-zero group, never -0) and every code
 * rint(w / scale). Anything else decodes to a model with a different encoding.
 */
static bool
int8_groups_canonical(const us_tensor *x, const uint8_t *p)
{
	size_t		G = us_tensor_groups(x),
				L,
				gs,
				es;
	const int8_t *q = (const int8_t *) (p + 4 * G);

	group_layout(x, &L, &gs, &es);
	for (size_t g = 0; g < G; g++)
	{
		uint32_t	bits = get_u32(p + 4 * g);
		float		scale = bits_f32(bits),
					amax = 0.0f,
					canon;

		for (size_t j = 0; j < L; j++)
			amax = fmaxf(amax, fabsf((float) q[g * gs + j * es] * scale));
		canon = us_quant_scale(amax);
		if (f32_bits(canon) != bits)
			return false;
		for (size_t j = 0; j < L; j++)
		{
			size_t		i = g * gs + j * es;
			float		w = (float) q[i] * scale;

			if (canon > 0.0f ? rintf(w / canon) != (float) q[i] : q[i] != 0)
				return false;
		}
	}
	return true;
}

/*
 * Version 2 parameters from the cursor to the end (or, when !last, to where the transition
 * table starts): sizes, scales (finite, >= 0, 127 * scale
 * within US_MAX_ABS_WEIGHT), codes (not -128), groups in canonical form, biases (finite, in
 * range). Reads only.
 */
static us_status
check_params_int8(const us_model_config *cfg, const uint8_t *buf, reader *r, bool last)
{
	us_tensor	t[US_MAX_TENSORS];
	int			nt = us_model_tensors(cfg, t);
	us_status	range = US_OK;

	for (int k = 0; k < nt; k++)
	{
		const us_tensor *x = &t[k];
		size_t		n = x->rows * x->cols,
					G = x->quant ? us_tensor_groups(x) : n;	/* fp32 words */

		/* n <= US_MAX_PARAMS: no overflow */
		if (remaining(r) < 4 * G + (x->quant ? n : 0))
			return US_EFORMAT;
		for (size_t g = 0; g < G; g++)
		{
			float		v = bits_f32(get_u32(buf + r->pos + 4 * g));

			if (!isfinite(v))
				return US_ENONFINITE;
			if (x->quant ? (v < 0.0f || 127.0f * v > US_MAX_ABS_WEIGHT) : fabsf(v) > US_MAX_ABS_WEIGHT)
				range = US_ERANGE;
		}
		if (x->quant)
		{
			for (size_t i = 0; i < n; i++)
				if (buf[r->pos + 4 * G + i] == 0x80)
					return US_EFORMAT;
			if (range == US_OK && !int8_groups_canonical(x, buf + r->pos))
				return US_EFORMAT;
			r->pos += n;
		}
		r->pos += 4 * G;
	}
	if (last && remaining(r) != 0)
		return US_EFORMAT;
	return range;
}

/* dequantizes checked version 2 parameters into the fp32 block */
static void
load_params_int8(const us_model_config *cfg, const uint8_t *p, float *block)
{
	us_tensor	t[US_MAX_TENSORS];
	int			nt = us_model_tensors(cfg, t);

	for (int k = 0; k < nt; k++)
	{
		const us_tensor *x = &t[k];
		float	   *w = block + x->off;
		size_t		n = x->rows * x->cols,
					G,
					L,
					gs,
					es;

		if (!x->quant)
		{
			for (size_t i = 0; i < n; i++, p += 4)
				w[i] = bits_f32(get_u32(p));
			continue;
		}
		G = us_tensor_groups(x);
		group_layout(x, &L, &gs, &es);
		for (size_t g = 0; g < G; g++)
		{
			float		scale = bits_f32(get_u32(p + 4 * g));
			const int8_t *q = (const int8_t *) (p + 4 * G);

			for (size_t j = 0; j < L; j++)
				w[g * gs + j * es] = (float) q[g * gs + j * es] * scale;
		}
		p += 4 * G + n;
	}
}

us_status
us_model_decode(const uint8_t *buf, size_t len, const us_allocator *alloc, us_model **out)
{
	us_format_header hdr;
	us_model_config cfg;
	reader		r;
	uint32_t	words[22];
	uint32_t	n_vitems, n_blabels, n_clabels;
	size_t		ids_pos, beh_pos, cls_pos, w_pos;
	bool		has_table,
				has_rep;
	us_prior_scan prior;
	uint64_t	n_params;
	us_vocab	voc;
	us_model   *model = NULL;
	char		msg[256];
	us_status	st;
	us_status	range = US_OK;

	if (out == NULL)
		return US_EINVAL;
	*out = NULL;
	if (buf == NULL || alloc == NULL || alloc->alloc == NULL || alloc->free == NULL)
		return US_EINVAL;

	/* Header, length, checksum. */
	TRY(us_format_peek(buf, len, &hdr));
	if (len < hdr.total_size)
		return US_ETRUNCATED;
	if (len > hdr.total_size)
		return US_EFORMAT;
	if (us_crc32c(0, buf + US_FORMAT_HEADER_SIZE, (size_t) hdr.total_size - US_FORMAT_HEADER_SIZE)
		!= hdr.crc32c)
		return US_ECHECKSUM;

	r.p = buf;
	r.pos = US_FORMAT_HEADER_SIZE;
	r.end = (size_t) hdr.total_size;

	/* Config. */
	for (int i = 0; i < 22; i++)
		TRY(rd_u32(&r, &words[i]));
	memset(&cfg, 0, sizeof(cfg));
	cfg.task = (int32_t) words[0];
	cfg.n_items = (int32_t) words[1];
	cfg.n_behaviors = (int32_t) words[2];
	cfg.n_gap_buckets = (int32_t) words[3];
	cfg.n_outputs = (int32_t) words[4];
	cfg.max_len = (int32_t) words[5];
	cfg.embed_dim = (int32_t) words[6];
	cfg.n_widths = (int32_t) words[7];
	for (int i = 0; i < US_MAX_WIDTHS; i++)
		cfg.widths[i] = (int32_t) words[8 + i];
	cfg.n_filters = (int32_t) words[16];
	cfg.hidden_dim = (int32_t) words[17];
	cfg.recent_window = (int32_t) words[18];
	cfg.tie_output = (int32_t) words[19];
	cfg.dropout = bits_f32(words[20]);
	cfg.pos_weight = bits_f32(words[21]);
	if (hdr.version == 3)
	{
		uint32_t	arch, nb, nh;

		TRY(rd_u32(&r, &arch));
		TRY(rd_u32(&r, &nb));
		TRY(rd_u32(&r, &nh));
		/* version 3 exists for another architecture: a text-CNN in it has two encodings */
		if (arch == US_ARCH_TEXTCNN)
			return US_EFORMAT;
		if (nb > US_MAX_BLOCKS || nh > US_MAX_HEADS)
			return US_ELIMIT;
		cfg.architecture = (int32_t) arch;
		cfg.n_blocks = (int32_t) nb;
		cfg.n_heads = (int32_t) nh;
	}
	TRY(check_config_limits(&cfg));
	/* This also requires unused width slots to be zero: one config, one encoding. */
	TRY(map_config_status(us_model_config_validate(&cfg, msg, sizeof(msg))));

	/* Vocabulary: limits, then consistency with the config, then bytes. */
	TRY(rd_u32(&r, &n_vitems));
	TRY(rd_u32(&r, &n_blabels));
	TRY(rd_u32(&r, &n_clabels));
	if (n_vitems > US_MAX_ITEMS || n_blabels > US_MAX_BEHAVIORS || n_clabels > US_MAX_CLASSES)
		return US_ELIMIT;
	TRY(check_vocab_counts(&cfg, n_vitems, n_blabels, n_clabels));
	/* n_vitems <= 2^24, so 12 * n_vitems cannot overflow; version 4: >= 2 bytes an item. */
	if (remaining(&r) < (size_t) n_vitems * (hdr.version == 4 ? 2 : 12))
		return US_EFORMAT;
	ids_pos = r.pos;
	if (hdr.version == 4)
		TRY(rd_items_v4(&r, n_vitems, NULL, NULL));
	else
	{
		for (uint32_t i = 1; i < n_vitems; i++)
		{
			int64_t		prev = (int64_t) get_u64(buf + ids_pos + 8 * (size_t) (i - 1));
			int64_t		cur = (int64_t) get_u64(buf + ids_pos + 8 * (size_t) i);

			if (cur <= prev)
				return US_EFORMAT;
		}
		r.pos += (size_t) n_vitems * 12;
	}
	beh_pos = r.pos;
	TRY(scan_labels(&r, n_blabels));
	cls_pos = r.pos;
	TRY(scan_labels(&r, n_clabels));

	/* Parameters. */
	TRY(rd_u64(&r, &n_params));
	if (n_params > US_MAX_PARAMS)
		return US_ELIMIT;
	/* Also 0 when the config's block would overflow; n_params is never 0 (n_items >= 2). */
	if (n_params != (uint64_t) us_model_param_count(&cfg))
		return US_EFORMAT;
	w_pos = r.pos;
	has_table = (hdr.flags & FLAG_TRANS) != 0;
	has_rep = (hdr.flags & FLAG_REPEAT) != 0;
	if ((has_table || has_rep) && cfg.task != US_TASK_NEXT_ITEM)
		return US_EFORMAT;
	if (hdr.version == 2 || hdr.version == 4)
		TRY(check_params_int8(&cfg, buf, &r, !has_table && !has_rep));
	else if (has_table || has_rep ? remaining(&r) < n_params * 4 : remaining(&r) != n_params * 4)
		return US_EFORMAT;
	else
	{
		float		bound = US_MAX_ABS_WEIGHT;
		uint32_t	bound_bits;

		/* magnitudes of finite floats order as their bit patterns without the sign */
		memcpy(&bound_bits, &bound, 4);
		for (uint64_t i = 0; i < n_params; i++)
		{
			uint32_t	u = get_u32(buf + w_pos + 4 * i);

			if ((u & 0x7F800000u) == 0x7F800000u)
				return US_ENONFINITE;
			if ((u & 0x7FFFFFFFu) > bound_bits)
				range = US_ERANGE;
		}
		if (range != US_OK)
			return range;
		r.pos += (size_t) n_params * 4;
	}
	TRY(us_format_scan_prior(&r, hdr.flags, cfg.n_items, &prior));

	/* Everything checked: now allocate. */
	memset(&voc, 0, sizeof(voc));
	voc.n_items = (int32_t) n_vitems;
	voc.n_behaviors = (int32_t) n_blabels;
	voc.n_classes = (int32_t) n_clabels;
	st = US_ENOMEM;
	voc.item_ids = xalloc(alloc, (size_t) n_vitems * sizeof(int64_t));
	voc.item_counts = xalloc(alloc, (size_t) n_vitems * sizeof(uint32_t));
	if (voc.item_ids == NULL || voc.item_counts == NULL)
		goto done;
	if (hdr.version == 4)
	{
		r.pos = ids_pos;
		st = rd_items_v4(&r, n_vitems, voc.item_ids, voc.item_counts);
		if (st != US_OK)
			goto done;
	}
	else
		for (uint32_t i = 0; i < n_vitems; i++)
		{
			voc.item_ids[i] = (int64_t) get_u64(buf + ids_pos + 8 * (size_t) i);
			voc.item_counts[i] = get_u32(buf + ids_pos + 8 * (size_t) n_vitems + 4 * (size_t) i);
		}
	r.pos = beh_pos;
	st = load_labels(&r, n_blabels, alloc, &voc.behaviors);
	if (st != US_OK)
		goto done;
	r.pos = cls_pos;
	st = load_labels(&r, n_clabels, alloc, &voc.classes);
	if (st != US_OK)
		goto done;

	/*
	 * The model, built as us_model_create builds it (struct, one parameter block bound by
	 * us_params_bind) but without its random initialisation, which would only be overwritten;
	 * the vocabulary loaded above moves in, so us_model_free releases all of it.
	 */
	st = US_ENOMEM;
	model = xalloc(alloc, sizeof(us_model));
	if (model == NULL)
		goto done;
	memset(model, 0, sizeof(*model));
	model->alloc = *alloc;
	model->params_block = xalloc(alloc, (size_t) n_params * sizeof(float));
	if (model->params_block == NULL)
		goto done;
	model->cfg = cfg;
	model->n_params = (size_t) n_params;
	us_params_bind(&cfg, model->params_block, &model->p);
	model->vocab = voc;
	memset(&voc, 0, sizeof(voc));
	n_blabels = n_clabels = 0;
	if (hdr.version == 2 || hdr.version == 4)
	{
		load_params_int8(&cfg, buf + w_pos, model->params_block);
		model->quantized = 1;
	}
	else
	{
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
		memcpy(model->params_block, buf + w_pos, (size_t) n_params * 4);
#else
		for (uint64_t i = 0; i < n_params; i++)
			model->params_block[i] = bits_f32(get_u32(buf + w_pos + 4 * i));
#endif
	}
	st = us_format_load_prior(buf, &prior, cfg.n_items, alloc, &model->trans);
	if (st != US_OK)
		goto done;
	*out = model;
	model = NULL;
	st = US_OK;

done:
	if (model)
		us_model_free(model);
	xfree(alloc, voc.item_ids);
	xfree(alloc, voc.item_counts);
	free_labels(alloc, voc.behaviors, n_blabels);
	free_labels(alloc, voc.classes, n_clabels);
	return st;
}
