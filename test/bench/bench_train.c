/*
 * bench_train.c: training throughput of the core on the benchmark's fixed configurations
 * (spec: L=100 V=10000 E=F=128; lean: L=50 V=50000 E=F=64; widths 3,4,5, H=128, batch 256,
 * binary, Adam, dropout 0.5) with variable lengths uniform in [max(3, L/4), L] and Zipf-like
 * popularity, as the PyTorch peer generates. Prints one line per config: sequences/s over the
 * timed steps after warm-up. Not part of `make unit`; run `make bench-train`.
 * Usage: bench_train [spec|lean|all] [timed_steps] [n_threads]   (n_threads: the trainer's own
 * threads, us_train_config.n_threads; run those with OPENBLAS_NUM_THREADS=1)
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "userseq/us_model.h"
#include "userseq/us_rng.h"
#include "bench_config.h"

typedef struct timing
{
	int64_t		warm;
	double		t_warm;
	double		t_end;
	double		c_warm;
	double		c_end;
	int64_t		steps;
} timing;

static double
now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec * 1e-9;
}

static double
cpu_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
	return ts.tv_sec + ts.tv_nsec * 1e-9;
}

static int
on_step(void *ctx, int64_t done, int64_t total)
{
	timing	   *t = ctx;

	(void) total;
	if (done == t->warm)
	{
		t->t_warm = now();
		t->c_warm = cpu_now();
	}
	t->t_end = now();
	t->c_end = cpu_now();
	t->steps = done;
	return 0;
}

static int	core_threads = 1;

static void
run(const char *name, int L, int V, int E, int F, int warm, int timed, int task)
{
	int			B = 256;
	int			n = B * (warm + timed);
	us_rng		rng;
	int64_t    *off = malloc(sizeof(int64_t) * (n + 1));
	int32_t    *items = malloc(sizeof(int32_t) * (size_t) n * L);
	float	   *y = malloc(sizeof(float) * n);
	int32_t    *ids = malloc(sizeof(int32_t) * n);
	double	   *cdf = malloc(sizeof(double) * V);
	int64_t		t = 0;
	double		acc = 0;
	us_model_config c;
	us_train_config tc;
	us_vocab	v;
	int64_t    *vid = malloc(sizeof(int64_t) * (V - 2));
	us_model   *m = NULL;
	us_trainer *tr = NULL;
	us_dataset	ds;
	timing		tm = {warm, 0, 0, 0, 0, 0};
	us_progress pr = {on_step, &tm};
	us_epoch_stats es;
	us_status	st;
	int			minlen = L / 4 > 3 ? L / 4 : 3;

	us_rng_seed(&rng, 12345);
	for (int r = 0; r < V - 2; r++)
	{
		acc += 1.0 / pow(r + 1, 1.07);
		cdf[r] = acc;
	}
	for (int i = 0; i < n; i++)
	{
		int			len = minlen + (int) us_rng_below(&rng, (uint64_t) (L - minlen + 1));

		off[i] = t;
		for (int j = 0; j < len; j++, t++)
		{
			double		u = us_rng_uniform(&rng) * acc;
			int			lo = 0,
						hi = V - 3;

			while (lo < hi)
			{
				int			mid = (lo + hi) / 2;

				if (cdf[mid] > u)
					hi = mid;
				else
					lo = mid + 1;
			}
			items[t] = 2 + lo;
		}
		y[i] = (float) (us_rng_below(&rng, 2));
		if (y[i] > 0 && len >= 3)
		{
			int			p = (int) us_rng_below(&rng, (uint64_t) len - 2);

			items[off[i] + p] = 2, items[off[i] + p + 1] = 3, items[off[i] + p + 2] = 4;
		}
		ids[i] = i;
	}
	off[n] = t;
	for (int i = 0; i < V - 2; i++)
		vid[i] = i + 1;
	memset(&v, 0, sizeof v);
	v.n_items = V - 2;
	v.item_ids = vid;
	us_model_config_default(&c, task);
	bench_shape_128(&c);
	c.n_items = V;
	c.n_outputs = task == US_TASK_NEXT_ITEM ? V : 1;
	c.max_len = L;
	c.embed_dim = E;
	c.n_filters = F;
	c.hidden_dim = 128;
	us_train_config_default(&tc, task);
	bench_train_classic(&tc);
	tc.batch_size = B;
	tc.n_threads = core_threads;
	memset(&ds, 0, sizeof ds);
	ds.n_seqs = n;
	ds.offsets = off;
	ds.items = items;
	ds.targets = y;
	if ((st = us_model_create(&c, &v, 1, us_malloc_allocator(), &m)) != US_OK ||
		(st = us_trainer_create(m, &tc, us_malloc_allocator(), &tr)) != US_OK ||
		(st = us_trainer_epoch(tr, &ds, ids, n, 0, &pr, &es)) != US_OK)
	{
		printf("%s: failed: %s\n", name, us_status_str(st));
		exit(1);
	}
	{
		double		secs = tm.t_end - tm.t_warm;
		double		seqs = (double) (tm.steps - warm) * B;

		printf("{\"config\": \"%s\", \"task\": %d, \"L\": %d, \"V\": %d, \"E\": %d, \"F\": %d, "
			   "\"mean_len\": %.1f, \"timed_steps\": %ld, \"train_seq_per_s\": %.0f, \"train_seq_per_cpu_s\": %.0f, \"epoch_loss\": %.4f, "
			   "\"core_threads\": %d, \"openblas_threads\": \"%s\"}\n",
			   name, task, L, V, E, F, (double) t / n, (long) (tm.steps - warm), seqs / secs, seqs / (tm.c_end - tm.c_warm), es.loss, core_threads,
			   getenv("OPENBLAS_NUM_THREADS") ? getenv("OPENBLAS_NUM_THREADS") : "default");
	}
	us_trainer_free(tr);
	us_model_free(m);
	free(off);
	free(items);
	free(y);
	free(ids);
	free(cdf);
	free(vid);
}

int
main(int argc, char **argv)
{
	const char *which = argc > 1 ? argv[1] : "all";
	int			timed = argc > 2 ? atoi(argv[2]) : 0;

	core_threads = argc > 3 ? atoi(argv[3]) : 1;

	if (!strcmp(which, "spec") || !strcmp(which, "all"))
		run("spec", 100, 10000, 128, 128, 3, timed > 0 ? timed : 20, US_TASK_BINARY);
	if (!strcmp(which, "lean") || !strcmp(which, "all"))
		run("lean", 50, 50000, 64, 64, 5, timed > 0 ? timed : 60, US_TASK_BINARY);
	if (!strcmp(which, "next_item"))
		run("next_item_spec", 100, 10000, 128, 128, 2, timed > 0 ? timed : 5, US_TASK_NEXT_ITEM);
	return 0;
}
