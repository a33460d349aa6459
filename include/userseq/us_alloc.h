/*
 * us_alloc.h: the allocator and progress callback a caller hands to the core.
 *
 * The core allocates only through us_allocator, so inside PostgreSQL all memory belongs to a
 * memory context and is reclaimed even when an error or a cancel longjmps out of core code.
 * alloc returns NULL on failure (the core then returns US_ENOMEM); it need not zero memory.
 */
#ifndef USERSEQ_US_ALLOC_H
#define USERSEQ_US_ALLOC_H

#include <stddef.h>
#include <stdint.h>

typedef struct us_allocator
{
	void	   *(*alloc) (void *ctx, size_t size);
	void		(*free) (void *ctx, void *ptr);
	void	   *ctx;
} us_allocator;

/* malloc/free, for standalone use (tests, benchmarks, fuzzing). */
const us_allocator *us_malloc_allocator(void);

/*
 * Called by long-running core functions at least once per minibatch, from the calling thread
 * only (never from a BLAS worker). done/total count work units of the current call.
 * Return nonzero to cancel: the core unwinds and returns US_ECANCELED. In PostgreSQL the
 * callback may instead longjmp (CHECK_FOR_INTERRUPTS); the core holds no locks or non-allocator
 * resources across a call, so that is safe.
 */
typedef int (*us_progress_fn) (void *ctx, int64_t done, int64_t total);

typedef struct us_progress
{
	us_progress_fn fn;			/* may be NULL */
	void	   *ctx;
} us_progress;

#endif
