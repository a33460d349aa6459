/*
 * format_prior.c: the sections of the model bytes that hold the next_item priors, after the
 * parameters (layout in format.c): the transition table (header flags bit 0) and the repeat
 * weight (flags bit 1). format.c calls these from us_model_encoded_size, us_model_encode and
 * us_model_decode.
 */
#include <math.h>

#include "format_internal.h"

#define TRANS_HEAD_BYTES	(4 + 4 + 8)	/* weight, n_src, nnz */

/* ------------------------------------------------------------------ encode */

/*
 * The shape us_transitions_check requires, read only (it fills logc; an encoder's model and a
 * shared image must not be written): weight finite in [0, 1000], sources strictly ascending
 * in [US_ROW_FIRST, n_rows), 1 .. US_TRANS_MAX_PER_ROW successors each, strictly ascending in
 * the same range, counts >= 1, start[] consistent with nnz.
 */
int
us_trans_shape_ok(const us_transitions *t, int32_t n_rows)
{
	if (!isfinite(t->weight) || t->weight < 0.0f || t->weight > 1000.0f ||
		t->n_src < 0 || t->nnz < 0)
		return 0;
	if (t->n_src == 0)
		return t->nnz == 0;
	if (!t->src || !t->start || !t->to || !t->count || t->start[0] != 0 ||
		t->start[t->n_src] != t->nnz)
		return 0;
	for (int32_t i = 0; i < t->n_src; i++)
	{
		int64_t		a = t->start[i],
					b = t->start[i + 1];

		if (t->src[i] < US_ROW_FIRST || t->src[i] >= n_rows ||
			(i > 0 && t->src[i] <= t->src[i - 1]) ||
			b <= a || b - a > US_TRANS_MAX_PER_ROW || b > t->nnz)
			return 0;
		for (int64_t j = a; j < b; j++)
			if (t->to[j] < US_ROW_FIRST || t->to[j] >= n_rows ||
				(j > a && t->to[j] <= t->to[j - 1]) || t->count[j] == 0)
				return 0;
	}
	return 1;
}

static uint8_t *
put_trans(uint8_t *p, const us_transitions *t)
{
	put_u32(p, f32_bits(t->weight));
	put_u32(p + 4, (uint32_t) t->n_src);
	put_u64(p + 8, (uint64_t) t->nnz);
	p += TRANS_HEAD_BYTES;
	for (int32_t i = 0; i < t->n_src; i++, p += 8)
	{
		put_u32(p, (uint32_t) t->src[i]);
		put_u32(p + 4, (uint32_t) (t->start[i + 1] - t->start[i]));
	}
	for (int64_t j = 0; j < t->nnz; j++, p += 8)
	{
		put_u32(p, (uint32_t) t->to[j]);
		put_u32(p + 4, t->count[j]);
	}
	return p;
}

/* 1 when the model's transition table is written (flags bit 0): next_item, non-empty */
static int
has_trans(const us_model *m)
{
	return m->cfg.task == US_TASK_NEXT_ITEM && m->trans.n_src > 0;
}

/* 1 when the repeat weight is written (flags bit 1): next_item, weight > 0 */
static int
has_repeat(const us_model *m)
{
	return m->cfg.task == US_TASK_NEXT_ITEM && m->trans.repeat_weight > 0.0f;
}

static size_t
trans_bytes(const us_model *m)
{
	if (!has_trans(m))
		return 0;
	return TRANS_HEAD_BYTES + (size_t) m->trans.n_src * 8 + (size_t) m->trans.nnz * 8;
}

uint32_t
us_format_prior_flags(const us_model *m)
{
	return (has_trans(m) ? FLAG_TRANS : 0) | (has_repeat(m) ? FLAG_REPEAT : 0);
}

size_t
us_format_prior_bytes(const us_model *m)
{
	return trans_bytes(m) + (has_repeat(m) ? 4 : 0);
}

us_status
us_format_prior_encodable(const us_model *m)
{
	/* a table only on next_item, and only one the decoder accepts */
	if (m->trans.n_src > 0 && m->cfg.task != US_TASK_NEXT_ITEM)
		return US_EINVAL;
	if (has_trans(m) && !us_trans_shape_ok(&m->trans, m->cfg.n_items))
		return US_EINVAL;
	if (!isfinite(m->trans.repeat_weight) || m->trans.repeat_weight < 0.0f ||
		m->trans.repeat_weight > 1000.0f ||
		(m->trans.repeat_weight > 0.0f && m->cfg.task != US_TASK_NEXT_ITEM))
		return US_EINVAL;
	return US_OK;
}

uint8_t *
us_format_put_prior(uint8_t *p, const us_model *m)
{
	if (has_trans(m))
		p = put_trans(p, &m->trans);
	if (has_repeat(m))
	{
		put_u32(p, f32_bits(m->trans.repeat_weight));
		p += 4;
	}
	return p;
}

/* ------------------------------------------------------------------ decode */

us_status
us_format_scan_prior(reader *r, uint32_t flags, int32_t n_items, us_prior_scan *s)
{
	bool		has_rep = (flags & FLAG_REPEAT) != 0;

	memset(s, 0, sizeof(*s));
	s->table = (flags & FLAG_TRANS) != 0;
	if (s->table)
	{
		uint32_t	wbits;
		float		weight;

		/* sizes only; the contents are checked by us_transitions_check once loaded */
		TRY(rd_u32(r, &wbits));
		TRY(rd_u32(r, &s->tr_n_src));
		TRY(rd_u64(r, &s->tr_nnz));
		weight = bits_f32(wbits);
		/* an empty table is written as none: one model, one encoding */
		if (!isfinite(weight) || weight < 0.0f || weight > 1000.0f ||
			s->tr_n_src == 0 || s->tr_n_src >= (uint32_t) n_items ||
			s->tr_nnz < s->tr_n_src || s->tr_nnz > (uint64_t) s->tr_n_src * US_TRANS_MAX_PER_ROW)
			return US_EFORMAT;
		/* n_src < 2^24 and nnz < 2^30: no overflow */
		if (remaining(r) != (size_t) s->tr_n_src * 8 + (size_t) s->tr_nnz * 8 + (has_rep ? 4 : 0))
			return US_EFORMAT;
		s->tr_pos = r->pos;
		s->tr_weight = weight;
		r->pos += (size_t) s->tr_n_src * 8 + (size_t) s->tr_nnz * 8;
	}
	if (has_rep)
	{
		uint32_t	wbits;

		/* a zero weight is written as none: one model, one encoding */
		TRY(rd_u32(r, &wbits));
		s->rep_weight = bits_f32(wbits);
		if (!isfinite(s->rep_weight) || s->rep_weight <= 0.0f || s->rep_weight > 1000.0f ||
			remaining(r) != 0)
			return US_EFORMAT;
	}
	return US_OK;
}

us_status
us_format_load_prior(const uint8_t *buf, const us_prior_scan *s, int32_t n_items,
					 const us_allocator *a, us_transitions *t)
{
	if (s->table)
	{
		const uint8_t *q = buf + s->tr_pos;

		/* freed with the model (us_transitions_free) on any failure below */
		t->src = xalloc(a, (size_t) s->tr_n_src * sizeof(int32_t));
		t->start = xalloc(a, ((size_t) s->tr_n_src + 1) * sizeof(int64_t));
		t->to = xalloc(a, (size_t) s->tr_nnz * sizeof(int32_t));
		t->count = xalloc(a, (size_t) s->tr_nnz * sizeof(uint32_t));
		t->logc = xalloc(a, (size_t) s->tr_nnz * sizeof(float));
		if (!t->src || !t->start || !t->to || !t->count || !t->logc)
			return US_ENOMEM;
		t->weight = s->tr_weight;
		t->n_src = (int32_t) s->tr_n_src;
		t->nnz = (int64_t) s->tr_nnz;
		t->start[0] = 0;
		for (uint32_t i = 0; i < s->tr_n_src; i++, q += 8)
		{
			uint32_t	row = get_u32(q),
						m = get_u32(q + 4);

			/* rows past INT32_MAX and counts past the per-row cap fail here, not as ints */
			if (row > (uint32_t) INT32_MAX || m == 0 || m > US_TRANS_MAX_PER_ROW)
				return US_EFORMAT;
			t->src[i] = (int32_t) row;
			t->start[i + 1] = t->start[i] + m;
		}
		if (t->start[s->tr_n_src] != (int64_t) s->tr_nnz)
			return US_EFORMAT;
		for (uint64_t j = 0; j < s->tr_nnz; j++, q += 8)
		{
			uint32_t	row = get_u32(q);

			if (row > (uint32_t) INT32_MAX)
				return US_EFORMAT;
			t->to[j] = (int32_t) row;
			t->count[j] = get_u32(q + 4);
		}
		if (us_transitions_check(t, n_items) != US_OK)
			return US_EFORMAT;
	}
	t->repeat_weight = s->rep_weight;
	return US_OK;
}
