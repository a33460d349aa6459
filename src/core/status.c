/*
 * status.c: status messages and the malloc allocator for standalone use.
 */
#include <stdlib.h>

#include "userseq/us_alloc.h"
#include "userseq/us_status.h"

const char *
us_status_str(us_status status)
{
	switch (status)
	{
		case US_OK:
			return "success";
		case US_EINVAL:
			return "invalid argument";
		case US_ENOMEM:
			return "out of memory";
		case US_ELIMIT:
			return "size exceeds a limit";
		case US_EFORMAT:
			return "malformed model bytes";
		case US_EVERSION:
			return "unsupported model format version";
		case US_ETRUNCATED:
			return "truncated model bytes";
		case US_ECHECKSUM:
			return "model bytes fail their checksum";
		case US_ENONFINITE:
			return "non-finite value";
		case US_ERANGE:
			return "weight beyond the bound that keeps every score finite (|w| <= 1e6)";
		case US_ECANCELED:
			return "canceled";
		case US_EINTERNAL:
			return "internal error";
	}
	return "unknown status";
}

static void *
malloc_alloc(void *ctx, size_t size)
{
	(void) ctx;
	return malloc(size ? size : 1);
}

static void
malloc_free(void *ctx, void *ptr)
{
	(void) ctx;
	free(ptr);
}

static const us_allocator malloc_allocator = {malloc_alloc, malloc_free, NULL};

const us_allocator *
us_malloc_allocator(void)
{
	return &malloc_allocator;
}
