/*
 * us_status.h: status codes returned by every fallible function of the userseq core.
 *
 * The core never prints, never exits and never longjmps by itself; it returns one of these.
 * The PostgreSQL glue maps them to SQLSTATEs in exactly one place (src/pg/errors.c).
 */
#ifndef USERSEQ_US_STATUS_H
#define USERSEQ_US_STATUS_H

typedef enum us_status
{
	US_OK = 0,
	US_EINVAL,					/* bad argument or hyperparameter */
	US_ENOMEM,					/* the allocator returned NULL */
	US_ELIMIT,					/* a size exceeds a documented limit */
	US_EFORMAT,					/* malformed model bytes (bad magic, bad field, bad layout) */
	US_EVERSION,				/* model bytes of an unknown format version */
	US_ETRUNCATED,				/* model bytes shorter than their header says */
	US_ECHECKSUM,				/* model bytes fail their CRC32C */
	US_ENONFINITE,				/* NaN or infinity in weights, inputs, the loss or a score */
	US_ERANGE,					/* a weight beyond US_MAX_ABS_WEIGHT */
	US_ECANCELED,				/* the progress callback asked to stop */
	US_EINTERNAL				/* broken invariant: a bug */
} us_status;

/* Short, lowercase, constant description of a status ("model bytes fail their checksum"). */
const char *us_status_str(us_status status);

#endif
