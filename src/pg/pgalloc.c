/*
 * pgalloc.c: adapts the core's allocator and progress callback to PostgreSQL: memory comes
 * from a memory context (so an ERROR or cancel that longjmps out of core code leaks nothing),
 * and progress reaches CHECK_FOR_INTERRUPTS() from the backend's own thread.
 */
#include "userseq_pg.h"

#include "miscadmin.h"

static void *
UsContextAlloc(void *ctx, size_t size)
{
	return MemoryContextAllocExtended((MemoryContext) ctx, size ? size : 1,
									  MCXT_ALLOC_HUGE | MCXT_ALLOC_NO_OOM);
}

static void
UsContextFree(void *ctx, void *ptr)
{
	if (ptr)
		pfree(ptr);
}

us_allocator
UsContextAllocator(MemoryContext cxt)
{
	us_allocator a;

	a.alloc = UsContextAlloc;
	a.free = UsContextFree;
	a.ctx = cxt;
	return a;
}

static int
UsCheckInterrupts(void *ctx, int64_t done, int64_t total)
{
	CHECK_FOR_INTERRUPTS();
	return 0;
}

us_progress
UsInterruptProgress(void)
{
	us_progress p;

	p.fn = UsCheckInterrupts;
	p.ctx = NULL;
	return p;
}
