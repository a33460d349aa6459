/*
 * us_share.h: a scorer's model and folded tables as one position-independent image, so one
 * process can build them and others (PostgreSQL backends mapping the same file read-only)
 * score with them in place, without decoding or folding again.
 *
 * The image holds the configuration, the fp32 parameter block, the vocabulary, the folded
 * tables (t_item, t_beh, t_gap, fold_slot; folded scorers only) and, for next_item, the int8
 * screen of the output rows with its scales and error bounds (and the row-major copy of an
 * untied output layer), the transition prior of a next_item model when it has one, every section at a 64-byte aligned offset, and a CRC32C over
 * everything after the checksum field. The CRC pass reads every byte (tens of ms for a large
 * image), so a caller that has verified this very file before may skip it; the structural
 * checks run on every open. An opener does no work proportional to the model's size but
 * those checks (O(V) fold slots); scratch is always private.
 */
#ifndef USERSEQ_US_SHARE_H
#define USERSEQ_US_SHARE_H

#include <stddef.h>
#include <stdint.h>

#include "userseq/us_model.h"

#define US_SHARE_KEY_WORDS 6

/* The caller's identity of an image (stored in it and compared on open); opaque to the core. */
typedef struct us_share_key
{
	uint64_t	w[US_SHARE_KEY_WORDS];
} us_share_key;

/* Bytes of the image of scorer (0 if it cannot be laid out). */
size_t		us_share_image_size(const us_scorer *scorer);

/* Writes the image of scorer into dst (cap bytes, 64-byte aligned, at least the image size). */
us_status	us_share_image_write(const us_scorer *scorer, const us_share_key *key, void *dst,
								 size_t cap);

/*
 * Checks image (len bytes, 64-byte aligned): sizes, offsets, key and, when verify_crc, the
 * CRC32C over every byte (else US_ECHECKSUM / US_ETRUNCATED / US_EFORMAT), and creates a model
 * and a scorer that read its tensors and tables in place; only small arrays (string pointers)
 * and scratch come from alloc. The image must outlive both; us_scorer_free and us_model_free
 * work as usual (they never free inside the image). The scorer is screened and folded as the
 * writer's was; scores and top-k are bit-identical to it.
 */
us_status	us_share_image_open(const void *image, size_t len, const us_share_key *key,
								int verify_crc, const us_allocator *alloc,
								us_model **model, us_scorer **scorer);

#endif
