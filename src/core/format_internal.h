/*
 * format_internal.h: what the files of the model format share (format.c: the model bytes,
 * their header, configuration, vocabulary and parameters; format_prior.c: the sections of the
 * next_item priors that follow the parameters). Private to src/core; the byte layout is
 * documented in format.c.
 */
#ifndef USERSEQ_FORMAT_INTERNAL_H
#define USERSEQ_FORMAT_INTERNAL_H

#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "userseq/us_format.h"
#include "us_internal.h"

#define FLAG_TRANS		1u		/* header flags bit 0: a transition table follows */
#define FLAG_REPEAT		2u		/* header flags bit 1: a repeat weight follows */

/* ------------------------------------------------------------------ byte helpers */

static inline void
put_u32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t) v;
	p[1] = (uint8_t) (v >> 8);
	p[2] = (uint8_t) (v >> 16);
	p[3] = (uint8_t) (v >> 24);
}

static inline void
put_u64(uint8_t *p, uint64_t v)
{
	put_u32(p, (uint32_t) v);
	put_u32(p + 4, (uint32_t) (v >> 32));
}

static inline uint32_t
get_u32(const uint8_t *p)
{
	return (uint32_t) p[0] | ((uint32_t) p[1] << 8) | ((uint32_t) p[2] << 16) |
		((uint32_t) p[3] << 24);
}

static inline uint64_t
get_u64(const uint8_t *p)
{
	return (uint64_t) get_u32(p) | ((uint64_t) get_u32(p + 4) << 32);
}

static inline uint32_t
f32_bits(float f)
{
	uint32_t	u;

	memcpy(&u, &f, 4);
	return u;
}

static inline float
bits_f32(uint32_t u)
{
	float		f;

	memcpy(&f, &u, 4);
	return f;
}

/* A bounds-checked cursor over the body. */
typedef struct reader
{
	const uint8_t *p;
	size_t		pos;
	size_t		end;
} reader;

static inline size_t
remaining(const reader *r)
{
	return r->end - r->pos;
}

/* Out of bytes inside a body whose total size was already checked: a layout error. */
static inline us_status
rd_u32(reader *r, uint32_t *v)
{
	if (remaining(r) < 4)
		return US_EFORMAT;
	*v = get_u32(r->p + r->pos);
	r->pos += 4;
	return US_OK;
}

static inline us_status
rd_u64(reader *r, uint64_t *v)
{
	if (remaining(r) < 8)
		return US_EFORMAT;
	*v = get_u64(r->p + r->pos);
	r->pos += 8;
	return US_OK;
}

#define TRY(expr) \
	do { \
		us_status st__ = (expr); \
		if (st__ != US_OK) \
			return st__; \
	} while (0)

static inline void *
xalloc(const us_allocator *a, size_t n)
{
	return a->alloc(a->ctx, n ? n : 1);
}

static inline void
xfree(const us_allocator *a, void *p)
{
	if (p)
		a->free(a->ctx, p);
}

/* ------------------------------------------------------------------ the priors' sections */

/* The header flags of the model's priors (FLAG_TRANS, FLAG_REPEAT). */
uint32_t	us_format_prior_flags(const us_model *m);

/* Bytes of the priors' sections after the parameters (0 without a prior). */
size_t		us_format_prior_bytes(const us_model *m);

/* US_EINVAL when the encoder must refuse the model's priors (bytes the decoder would reject). */
us_status	us_format_prior_encodable(const us_model *m);

/* Writes the priors' sections at p; returns the byte after them. */
uint8_t    *us_format_put_prior(uint8_t *p, const us_model *m);

/* The priors' sections as the decoder found them, sizes checked, loaded once the model exists. */
typedef struct us_prior_scan
{
	bool		table;			/* flags bit 0: a transition table */
	size_t		tr_pos;			/* offset of its source entries */
	uint32_t	tr_n_src;
	uint64_t	tr_nnz;
	float		tr_weight;
	float		rep_weight;		/* flags bit 1: the repeat weight, else 0 */
} us_prior_scan;

/*
 * Reads the priors' heads at the cursor (after the parameters) by the header's flags and checks
 * their sizes against the bytes that remain, which they must use up exactly; nothing allocated.
 */
us_status	us_format_scan_prior(reader *r, uint32_t flags, int32_t n_items, us_prior_scan *s);

/*
 * Loads what us_format_scan_prior found into the model's t: the table (US_ENOMEM, or US_EFORMAT
 * when us_transitions_check refuses it; what was allocated is freed with the model) and the
 * repeat weight.
 */
us_status	us_format_load_prior(const uint8_t *buf, const us_prior_scan *s, int32_t n_items,
								 const us_allocator *a, us_transitions *t);

#endif
