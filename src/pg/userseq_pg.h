/*
 * userseq_pg.h: declarations shared by the PostgreSQL glue (src/pg): GUCs, the core-status
 * to SQLSTATE mapping, the memory-context allocator adapter and progress in pg_stat_activity.
 * Only glue code includes this; the core (src/core) never sees PostgreSQL headers.
 */
#ifndef USERSEQ_PG_H
#define USERSEQ_PG_H

#include "postgres.h"

#include "utils/memutils.h"

#include "userseq/us_alloc.h"
#include "userseq/us_status.h"

#if PG_VERSION_NUM < 160000
#define FUNCTION_PREFIX PGDLLEXPORT
#else
#define FUNCTION_PREFIX
#endif

/* GUCs (userseq.*), defined in userseq.c */
extern int	userseq_threads;		/* BLAS threads for training and scoring */
extern int	userseq_fold_memory_kb;	/* per-model budget for folded inference tables */
extern int	userseq_train_memory_kb;	/* budget for a training run's dataset + model */
extern int	userseq_shared_cache_kb;	/* disk for shared model images, 0 = no sharing */
extern int	userseq_model_cache_size;	/* decoded models kept per backend */

/*
 * Raises ERROR for a failed core call with the SQLSTATE that fits the status. what names the
 * operation ("decode model \"churn\""); detail may be NULL. Returns only for US_OK.
 */
extern void UsCheckStatus(us_status status, const char *what, const char *detail);
/* UsCheckStatus for a scoring call: a non-finite score (US_ENONFINITE) is 22003, never a row. */
extern void UsCheckScoreStatus(us_status status, const char *what);
/* The SQLSTATE a core status maps to (for callers that build their own ereport). */
extern int	UsStatusSqlState(us_status status);

/* Growable arrays: the capacity that holds need elements when cap are held (at least
 * doubling, at least min), and an array (NULL or from this helper) resized to n elements of
 * elem bytes in cxt (huge allocations allowed). */
extern int64 UsGrowCapacity(int64 cap, int64 need, int64 min);
extern void *UsResizeArray(void *ptr, Size elem, int64 n, MemoryContext cxt);

/* An allocator that pallocs (huge allocations allowed, NULL on failure) in cxt. */
extern us_allocator UsContextAllocator(MemoryContext cxt);
/* Shows msg (printf format) as this backend's query in pg_stat_activity (long runs). */
extern void UsReportActivity(const char *fmt,...) pg_attribute_printf(1, 2);

/*
 * Internal SQL (the extension's own statements on its catalog, never a user's query) runs
 * between these two: search_path = pg_catalog, pg_temp, so no operator, function or type of
 * the caller's search_path is ever resolved in it. Begin returns the GUC nest level for End.
 * On error the (sub)transaction abort restores search_path.
 */
extern int	UsInternalSqlBegin(void);
extern void UsInternalSqlEnd(int level);

/* Applies userseq.threads to OpenBLAS (cheap when unchanged). Call before BLAS-heavy work. */
extern void UsApplyThreads(void);
/* Sets n BLAS threads for one run (training's "threads" option); UsApplyThreads restores. */
extern void UsApplyThreadCount(int n);

#endif
