/*
 * us_format.h: the self-contained model bytes (what models.weights holds).
 *
 * Layout (all integers and floats little-endian):
 *   header (US_FORMAT_HEADER_SIZE bytes): magic "USQM", format version, header size,
 *   flags (bit 0: a transition table follows the parameters; others 0), total size (u64), CRC32C of bytes [header size, total size), reserved zero.
 *   body: model config, vocabulary (item ids + counts, behaviour labels, class labels),
 *   parameter count, float32 parameters (int8 codes + scales in versions 2 and 4; version 4
 *   stores the item ids and counts as varints), then, with flags bit 0, the transition prior of
 *   a next_item model (weight, sources, successors and counts). src/core/format.c documents
 *   every byte.
 * The header alone identifies a model (size + checksum), so a cache can key on a 32-byte
 * slice without reading the rest.
 */
#ifndef USERSEQ_US_FORMAT_H
#define USERSEQ_US_FORMAT_H

#include <stddef.h>
#include <stdint.h>

#include "userseq/us_model.h"

#define US_FORMAT_MAGIC			0x4D515355u	/* "USQM" read as little-endian u32 */
/*
 * newest written: 1 fp32 text-CNN, 3 sasrec (fp32), 4 int8 text-CNN with the compact
 * vocabulary; 2 (int8 text-CNN, fixed-width vocabulary) is read but no longer written
 */
#define US_FORMAT_VERSION		4u
#define US_FORMAT_VERSION_INT8_V2	2u	/* read only: re-encoding gives version 4 */
#define US_FORMAT_VERSION_MIN	1u	/* oldest read */
#define US_FORMAT_HEADER_SIZE	32u
#define US_FORMAT_MAX_SIZE		((uint64_t) 1 << 30)	/* PostgreSQL bytea limit */

typedef struct us_format_header
{
	uint32_t	version;
	uint64_t	total_size;
	uint32_t	crc32c;
	uint32_t	flags;			/* bit 0: a transition table follows the parameters */
} us_format_header;

/* Reads and checks the header only (len may be just US_FORMAT_HEADER_SIZE). */
us_status	us_format_peek(const uint8_t *buf, size_t len, us_format_header *header);

size_t		us_model_encoded_size(const us_model *model);
/* Writes exactly us_model_encoded_size(model) bytes into buf (len must be >= that). */
us_status	us_model_encode(const us_model *model, uint8_t *buf, size_t len);
/*
 * Validates everything (header, CRC, every count against the limits before allocating,
 * config, vocabulary order, finite weights within +-US_MAX_ABS_WEIGHT) and builds a model.
 * Specific status per failure: US_EFORMAT, US_EVERSION, US_ETRUNCATED, US_ECHECKSUM,
 * US_ELIMIT, US_ENONFINITE, US_ERANGE, US_ENOMEM.
 */
us_status	us_model_decode(const uint8_t *buf, size_t len, const us_allocator *alloc,
							us_model **out);

/* CRC32C (Castagnoli), as used by the format; crc = 0 to start. */
uint32_t	us_crc32c(uint32_t crc, const void *data, size_t len);

#endif
