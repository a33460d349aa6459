/*
 * bench_explain.c: explanations and surprise per second of the core, one thread
 * (test/bench/explain_bench.sh builds and runs it beside the PyTorch peer torch_explain.py).
 *
 *   bench_explain TSV RUNS    (TSV: the peer's format, label<TAB>ids; ids 1..V-1)
 *
 * Shapes (the SQL defaults): E = F = H = 64, widths 2,3,4, V = 10,000 items;
 *   binary:    max_len 100, no recent window; explained output P(true);
 *   next_item: max_len 50, recent window 3; explained output the logit of the top
 *              recommendation (found by us_scorer_topk, as userseq_explain does).
 * Measured per sequence of the file: integrated gradients (32 steps, us_model_attribute),
 * occlusion (one us_scorer_forward per event of the window on the sequence without it, as
 * src/pg/score/explain.c does), and for next_item us_model_surprise. Random weights
 * (us_model_create; trained weights change the number of relu kinks on the path a little).
 * Prints one JSON line per measurement: medians over RUNS of sequences per second of wall time
 * and of this thread's CPU time, and the completeness error of integrated gradients (max |sum - (f(x) - f(0))|).
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "userseq/us_model.h"
#include "bench_common.h"

static us_model *
make_model(int task, int32_t V)
{
	us_model_config cfg;
	us_vocab	voc;
	us_model   *m = NULL;
	int64_t    *ids = malloc(sizeof(int64_t) * V);
	uint32_t   *counts = malloc(sizeof(uint32_t) * V);

	for (int32_t i = 0; i < V; i++)
	{
		ids[i] = i + 1;
		counts[i] = (uint32_t) (1000000 / (i + 1) + 1);
	}
	us_model_config_default(&cfg, (us_task) task);
	memset(&voc, 0, sizeof voc);
	voc.n_items = V;
	voc.item_ids = ids;
	voc.item_counts = counts;
	cfg.n_items = V + 2;
	cfg.n_outputs = task == US_TASK_NEXT_ITEM ? V + 2 : 1;
	cfg.embed_dim = cfg.n_filters = cfg.hidden_dim = 64;
	cfg.n_widths = 3;
	cfg.widths[0] = 2;
	cfg.widths[1] = 3;
	cfg.widths[2] = 4;
	cfg.max_len = task == US_TASK_NEXT_ITEM ? 50 : 100;
	cfg.recent_window = task == US_TASK_NEXT_ITEM ? 3 : 0;
	cfg.dropout = 0.2f;
	if (us_model_create(&cfg, &voc, 7, us_malloc_allocator(), &m) != US_OK)
		m = NULL;
	free(ids);
	free(counts);
	return m;
}

/* this thread's CPU seconds (less sensitive than wall time to other jobs on a shared machine) */
static double
cpu_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return ts.tv_sec + ts.tv_nsec * 1e-9;
}

typedef enum
{
	M_IG,
	M_OCCLUSION,
	M_SURPRISE
} measure;

/* one pass over the file; returns sequences per second; *comp gets the worst completeness */
static double
run_pass(const us_model *m, us_scorer *sc, const bench_tsv *t, measure what, double *comp,
		 double *checksum, double *cpu_rate)
{
	int			L = m->cfg.max_len;
	int32_t    *buf = malloc(sizeof(int32_t) * (L + 1));
	double	   *attr = malloc(sizeof(double) * (L + 1));
	int32_t    *rank = malloc(sizeof(int32_t) * (L + 1));
	float	   *out = malloc(sizeof(float) * m->cfg.n_outputs);
	double		t0 = bench_now(),
				c0 = cpu_now();

	*comp = 0.0;
	for (int32_t s = 0; s < t->n; s++)
	{
		int64_t		len = t->off[s + 1] - t->off[s];
		int32_t		n = (int32_t) (len > L ? L : len);
		const int32_t *ids = t->ids + t->off[s + 1] - n;
		us_events	ev = {ids, NULL, NULL, n};
		int32_t		target = 0;

		if (what == M_SURPRISE)
		{
			us_model_surprise(m, &ev, attr, rank);
			*checksum += n > 1 ? attr[0] : 0;
			continue;
		}
		if (m->cfg.task == US_TASK_NEXT_ITEM)
		{
			float		score;
			int32_t		found;

			us_scorer_topk(sc, &ev, 1, 1, &target, &score, &found);
		}
		if (what == M_IG)
		{
			double		fx,
						fb,
						sum = 0;

			us_model_attribute(m, &ev, target, US_ATTR_INTEGRATED_GRADIENTS, 32, attr, &fx, &fb);
			for (int32_t i = 0; i < n; i++)
				sum += attr[i];
			if (fabs(sum - (fx - fb)) > *comp)
				*comp = fabs(sum - (fx - fb));
			*checksum += sum;
		}
		else
		{
			double		fx;

			int			ni = m->cfg.task == US_TASK_NEXT_ITEM;

			/* next_item: only the target's logit, as src/pg/score/explain.c does */
			if (ni)
				us_scorer_row_logits(sc, &ev, &target, 1, out);
			else
				us_scorer_forward(sc, &ev, out, NULL);
			fx = out[0];
			for (int32_t j = 0; j < n; j++)
			{
				us_events	e2 = {buf, NULL, NULL, n - 1};

				memcpy(buf, ids, sizeof(int32_t) * j);
				memcpy(buf + j, ids + j + 1, sizeof(int32_t) * (n - 1 - j));
				if (ni)
					us_scorer_row_logits(sc, &e2, &target, 1, out);
				else
					us_scorer_forward(sc, &e2, out, NULL);
				attr[j] = fx - out[0];
				*checksum += attr[j];
			}
		}
	}
	t0 = bench_now() - t0;
	*cpu_rate = t->n / (cpu_now() - c0);
	free(buf);
	free(attr);
	free(rank);
	free(out);
	return t->n / t0;
}

int
main(int argc, char **argv)
{
	bench_tsv	t;
	int			runs = argc > 2 ? atoi(argv[2]) : 5;
	const char *names[] = {"binary", "next_item"};
	int			tasks[] = {US_TASK_BINARY, US_TASK_NEXT_ITEM};

	char		err[256];

	if (argc < 2 || bench_tsv_read(argv[1], 10000, &t, err, sizeof err) != 0)
	{
		fprintf(stderr, "usage: bench_explain TSV [RUNS] (%s)\n", argc < 2 ? "no file" : err);
		return 2;
	}
	for (int c = 0; c < 2; c++)
	{
		us_model   *m = make_model(tasks[c], 10000);
		us_scorer  *sc = NULL;
		measure		ms[] = {M_IG, M_OCCLUSION, M_SURPRISE};
		const char *mn[] = {"integrated_gradients_32", "occlusion", "surprise"};

		if (!m || us_scorer_create(m, (size_t) 256 << 20, us_malloc_allocator(), &sc) != US_OK)
			return 1;
		for (int k = 0; k < 3; k++)
		{
			double		r[64],
						cr[64],
						comp = 0,
						worst = 0,
						chk = 0;

			if (ms[k] == M_SURPRISE && tasks[c] != US_TASK_NEXT_ITEM)
				continue;
			for (int i = 0; i < runs && i < 64; i++)
			{
				r[i] = run_pass(m, sc, &t, ms[k], &comp, &chk, &cr[i]);
				worst = comp > worst ? comp : worst;
			}
			printf("{\"system\": \"userseq\", \"task\": \"%s\", \"measure\": \"%s\", \"sequences\": %d, "
				   "\"per_s_median\": %.1f, \"per_cpu_s_median\": %.1f, \"completeness_max_abs_err\": %.3g, \"checksum\": %.6g}\n",
				   names[c], mn[k], t.n, bench_median(r, (size_t) (runs < 64 ? runs : 64)),
				   bench_median(cr, (size_t) (runs < 64 ? runs : 64)), worst, chk);
			fflush(stdout);
		}
		us_scorer_free(sc);
		us_model_free(m);
	}
	bench_tsv_free(&t);
	return 0;
}
