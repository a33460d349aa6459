/*
 * pgalloc.c: adapts the core's allocator to PostgreSQL: memory comes from a memory context
 * (so an ERROR or cancel that longjmps out of core code leaks nothing); and progress of long
 * runs shown in pg_stat_activity.
 */
#include "userseq_pg.h"

#include "pgstat.h"
#include "utils/backend_status.h"

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

int64
UsGrowCapacity(int64 cap, int64 need, int64 min)
{
	return Max(need, Max(cap * 2, min));
}

void *
UsResizeArray(void *ptr, Size elem, int64 n, MemoryContext cxt)
{
	Size		bytes = mul_size(elem, (Size) n);

	if (ptr == NULL)
		return MemoryContextAllocHuge(cxt, bytes);
	return repalloc_huge(ptr, bytes);
}

void
UsReportActivity(const char *fmt,...)
{
	char		msg[512];
	va_list		ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	pgstat_report_activity(STATE_RUNNING, msg);
}
