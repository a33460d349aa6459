/*
 * userseq.c: module magic and _PG_init: the userseq.* GUCs, the BLAS thread setting and the
 * fixed search_path of internal SQL.
 * Each subsystem's SQL functions live in their own file; this one holds no SQL functions.
 */
#include "userseq_pg.h"

#include <limits.h>

#include <cblas.h>

#include "access/xact.h"
#include "fmgr.h"
#include "utils/guc.h"

PG_MODULE_MAGIC;

int			userseq_threads = 1;
int			userseq_fold_memory_kb = 256 * 1024;
int			userseq_train_memory_kb = 2 * 1024 * 1024;
int			userseq_model_cache_size = 8;
int			userseq_shared_cache_kb = 1024 * 1024;

static int	applied_threads = -1;

int
UsInternalSqlBegin(void)
{
	int			level = NewGUCNestLevel();

	(void) set_config_option("search_path", "pg_catalog, pg_temp", PGC_USERSET, PGC_S_SESSION,
							 GUC_ACTION_SAVE, true, 0, false);
	return level;
}

void
UsInternalSqlEnd(int level)
{
	AtEOXact_GUC(true, level);
}

/* OpenBLAS reads its thread count once; keep it in step with the GUC. */
void
UsApplyThreads(void)
{
	UsApplyThreadCount(userseq_threads);
}

void
UsApplyThreadCount(int n)
{
	if (applied_threads != n)
	{
		openblas_set_num_threads(n);
		applied_threads = n;
	}
}

/*
 * A run's own count (training's "threads" option) is restored by the run when it ends; an
 * error in between would leave it set for the rest of the session, so an aborting
 * (sub)transaction restores userseq.threads too.
 */
static void
UsThreadsXactCallback(XactEvent event, void *arg)
{
	if (event == XACT_EVENT_ABORT || event == XACT_EVENT_PARALLEL_ABORT)
		UsApplyThreads();
}

static void
UsThreadsSubXactCallback(SubXactEvent event, SubTransactionId mySubid,
						 SubTransactionId parentSubid, void *arg)
{
	if (event == SUBXACT_EVENT_ABORT_SUB)
		UsApplyThreads();
}

void		_PG_init(void);

void
_PG_init(void)
{
	/* 1 by default: a backend should not take every core of a shared server */
	DefineCustomIntVariable("userseq.threads",
							"Number of threads userseq uses for training, evaluation and building folded tables.",
							"Valid range is 1..64. Training is deterministic for a given seed and thread count. Per-row scoring always runs on one thread (use parallel query to spread it).",
							&userseq_threads,
							1, 1, 64,
							PGC_USERSET, 0, NULL, NULL, NULL);

	/* folded tables are V x sum(widths) x F floats per model; 256 MB fits V=100k, F=128, 3 widths at most */
	DefineCustomIntVariable("userseq.fold_memory",
							"Largest folded-inference table set built per cached model.",
							"Models whose folded tables would be larger are scored by the direct (slower) path. 0 disables folding.",
							&userseq_fold_memory_kb,
							256 * 1024, 0, INT_MAX,
							PGC_USERSET, GUC_UNIT_KB, NULL, NULL, NULL);

	DefineCustomIntVariable("userseq.train_memory",
							"Memory budget of one training run (dataset, model, optimizer state, scratch).",
							"userseq_train refuses, before reading all data, a run whose estimate exceeds it.",
							&userseq_train_memory_kb,
							2 * 1024 * 1024, 1024, INT_MAX,
							PGC_USERSET, GUC_UNIT_KB, NULL, NULL, NULL);

	DefineCustomIntVariable("userseq.model_cache_size",
							"Number of decoded models each backend keeps cached for scoring.",
							"Valid range is 1..64.",
							&userseq_model_cache_size,
							8, 1, 64,
							PGC_USERSET, 0, NULL, NULL, NULL);

	/* superuser: it bounds a server-wide directory, and a small value evicts everyone's images */
	DefineCustomIntVariable("userseq.shared_cache_size",
							"Disk (and page cache) for model images shared by all backends, under $PGDATA/pg_userseq.",
							"The first backend that decodes a deployed model writes its image; later backends and parallel workers map it instead of decoding. Least recently mapped images are removed beyond this size. 0 disables sharing.",
							&userseq_shared_cache_kb,
							1024 * 1024, 0, INT_MAX,
							PGC_SUSET, GUC_UNIT_KB, NULL, NULL, NULL);

	MarkGUCPrefixReserved("userseq");
	UsApplyThreads();
	RegisterXactCallback(UsThreadsXactCallback, NULL);
	RegisterSubXactCallback(UsThreadsSubXactCallback, NULL);
}
