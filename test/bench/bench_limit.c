/*
 * bench_limit.c: the machine's limit for folded scoring next to the core scorer, one thread,
 * same sequences, alternating runs (`make bench-limit`; test/bench/limit_bench.sh adds SQL).
 *
 *   bench_limit RUNS N [TSV]
 *
 * Shape of the spec model: V = 10,000 item rows, E = F = H = 128, widths 3,4,5, max_len 100;
 * N sequences of Zipf-like rows (bench_make_seqs, mean length 62.5, seed 12345).
 *
 *   limit: the pure gather-and-add over a folded table of that shape (10,000 x 1,536 floats,
 *     random values) and max-pooling, with nothing else: no embedding, no dense layer, no
 *     output, no call overhead per sequence beyond a loop. Plain C that the compiler
 *     vectorises, built at -O3 -march=native with F = 128 fixed at compile time, so the 128
 *     accumulators and maxima of a width stay in registers in one pass over the sequence.
 *   core: us_scorer_forward (folded, binary head) of a random model of the same shape, built
 *     with the project's flags for src/core (the Makefile passes them).
 *
 * Each of RUNS rounds times the limit and then the core over all N sequences; it prints one
 * JSON line per round and one summary line (medians of wall and CPU rates, core / limit).
 * With TSV, the sequences are also written as `0<TAB>id id ...` (id = row - 1, the ids of a
 * mkmodel model with V - 2 items) for the SQL side of limit_bench.sh.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "userseq/us_model.h"
#include "userseq/us_rng.h"
#include "bench_common.h"
#include "bench_config.h"

#define LIM_V	10000
#define LIM_L	100
#define LIM_F	128
#define LIM_S	((3 + 4 + 5) * LIM_F)

static const int lim_widths[3] = {3, 4, 5};

static double
cpu_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return ts.tv_sec + ts.tv_nsec * 1e-9;
}

/* pooled features z (3 F) of one sequence of n rows: the whole of the limit kernel */
static void
limit_seq(const float *table, const float *bias, const int32_t *rows, int n, float *z)
{
	size_t		col0 = 0;

	for (int w = 0; w < 3; w++)
	{
		int			k = lim_widths[w],
					nw = n - k + 1 > 1 ? n - k + 1 : 1;
		float		mx[LIM_F];

		for (int t = 0; t < nw; t++)
		{
			float		acc[LIM_F];

			memcpy(acc, bias + w * LIM_F, sizeof(acc));
			for (int j = 0; j < k && t + j < n; j++)
			{
				const float *r = table + (size_t) rows[t + j] * LIM_S + col0 + (size_t) j * LIM_F;

				for (int f = 0; f < LIM_F; f++)
					acc[f] += r[f];
			}
			for (int f = 0; f < LIM_F; f++)
				mx[f] = t == 0 || acc[f] > mx[f] ? acc[f] : mx[f];
		}
		memcpy(z + w * LIM_F, mx, sizeof(mx));
		col0 += (size_t) k * LIM_F;
	}
}

int
main(int argc, char **argv)
{
	int			runs = argc > 1 ? atoi(argv[1]) : 5;
	int			n = argc > 2 ? atoi(argv[2]) : 20000;
	const char *tsv = argc > 3 ? argv[3] : NULL;
	bench_seqs	s;
	float	   *table = malloc(sizeof(float) * (size_t) LIM_V * LIM_S),
				bias[3 * LIM_F],
				z[3 * LIM_F];
	double	   *lw = malloc(sizeof(double) * runs),
			   *lc = malloc(sizeof(double) * runs),
			   *cw = malloc(sizeof(double) * runs),
			   *cc = malloc(sizeof(double) * runs);
	us_model_config cfg;
	us_vocab	voc;
	us_model   *m = NULL;
	us_scorer  *sc = NULL;
	us_rng		rng;

	if (runs < 1 || n < 1 || table == NULL)
		return 2;
	bench_make_seqs(&s, n, LIM_V, LIM_L, 12345);
	if (tsv)
	{
		FILE	   *f = fopen(tsv, "w");

		if (f == NULL)
		{
			perror(tsv);
			return 1;
		}
		for (int q = 0; q < n; q++)
		{
			fputs("0\t", f);
			for (int64_t i = s.off[q]; i < s.off[q + 1]; i++)
				fprintf(f, "%s%d", i > s.off[q] ? " " : "", s.items[i] - 1);
			fputc('\n', f);
		}
		fclose(f);
	}
	us_rng_seed(&rng, 5);
	for (size_t i = 0; i < (size_t) LIM_V * LIM_S; i++)
		table[i] = (float) us_rng_uniform(&rng) - 0.5f;
	for (int i = 0; i < 3 * LIM_F; i++)
		bias[i] = (float) us_rng_uniform(&rng) - 0.5f;

	/* the core's model: binary head, spec shape, random weights (all item rows folded) */
	us_model_config_default(&cfg, US_TASK_BINARY);
	bench_shape_128(&cfg);
	memset(&voc, 0, sizeof(voc));
	voc.n_items = LIM_V - 2;
	voc.item_ids = malloc(sizeof(int64_t) * voc.n_items);
	voc.item_counts = malloc(sizeof(uint32_t) * voc.n_items);
	for (int i = 0; i < voc.n_items; i++)
	{
		voc.item_ids[i] = i + 1;
		voc.item_counts[i] = 1;
	}
	cfg.n_items = LIM_V;
	cfg.n_outputs = 1;
	cfg.max_len = LIM_L;
	cfg.embed_dim = cfg.n_filters = cfg.hidden_dim = LIM_F;
	cfg.n_widths = 3;
	for (int w = 0; w < 3; w++)
		cfg.widths[w] = lim_widths[w];
	if (us_model_create(&cfg, &voc, 1, us_malloc_allocator(), &m) != US_OK ||
		us_scorer_create(m, SIZE_MAX, us_malloc_allocator(), &sc) != US_OK || !us_scorer_is_folded(sc))
	{
		fprintf(stderr, "core scorer: cannot build the folded spec model\n");
		return 1;
	}

	for (int r = 0; r < runs; r++)
	{
		double		t0,
					c0,
					lsum = 0,
					csum = 0;

		t0 = bench_now();
		c0 = cpu_now();
		for (int q = 0; q < n; q++)
		{
			limit_seq(table, bias, s.items + s.off[q], (int) (s.off[q + 1] - s.off[q]), z);
			lsum += z[q % (3 * LIM_F)];
		}
		lw[r] = n / (bench_now() - t0);
		lc[r] = n / (cpu_now() - c0);

		t0 = bench_now();
		c0 = cpu_now();
		for (int q = 0; q < n; q++)
		{
			us_events	ev = {s.items + s.off[q], NULL, NULL, (int32_t) (s.off[q + 1] - s.off[q])};
			float		out;

			if (us_scorer_forward(sc, &ev, &out, NULL) != US_OK)
				return 1;
			csum += out;
		}
		cw[r] = n / (bench_now() - t0);
		cc[r] = n / (cpu_now() - c0);
		printf("{\"round\": %d, \"limit_seq_per_s\": %.0f, \"limit_cpu_seq_per_s\": %.0f, "
			   "\"core_seq_per_s\": %.0f, \"core_cpu_seq_per_s\": %.0f, \"limit_sum\": %.6g, "
			   "\"core_sum\": %.6g}\n", r + 1, lw[r], lc[r], cw[r], cc[r], lsum, csum);
		fflush(stdout);
	}
	{
		double		mlw = bench_median(lw, runs),
					mlc = bench_median(lc, runs),
					mcw = bench_median(cw, runs),
					mcc = bench_median(cc, runs);

		printf("{\"summary\": 1, \"sequences\": %d, \"mean_len\": %.1f, \"runs\": %d, "
			   "\"limit_seq_per_s\": %.0f, \"core_seq_per_s\": %.0f, \"core_over_limit\": %.3f, "
			   "\"limit_cpu_seq_per_s\": %.0f, \"core_cpu_seq_per_s\": %.0f, "
			   "\"core_over_limit_cpu\": %.3f}\n", n, (double) s.off[n] / n, runs, mlw, mcw,
			   mcw / mlw, mlc, mcc, mcc / mlc);
	}
	us_scorer_free(sc);
	us_model_free(m);
	free(voc.item_ids);
	free(voc.item_counts);
	free(table);
	free(s.off);
	free(s.items);
	return 0;
}
