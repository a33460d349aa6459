/*
 * bench_scorer.c: single-sequence scoring throughput of the core scorer, one thread
 * (`make bench-core`, which sets OPENBLAS_NUM_THREADS=1).
 *
 *   forward, binary head: "spec" (L=100, V=10000, E=F=H=128, widths 3,4,5) and "lean"
 *     (L=50, V=50000, E=F=64, H=128), folded and direct; lengths uniform in [max(3, L/4), L]
 *     as torch_textcnn.py gen draws them, items Zipf-like (p ~ 1/rank^1.07, ranks mapped to
 *     ids by a seeded permutation);
 *   top-k (k=10, exclude seen): random next_item models with 5,000 and 50,000 item rows,
 *     E=F=H=128 (next_item_5k, next_item_50k) and 64 (next_item_h64_50k), L=50, training counts
 *     from another draw of the same Zipf distribution; the default 256 MB budget (screened
 *     top-k, folded or hottest-rows-folded convolutions), chunk skipping against the same
 *     scorer with skipping off as the peer (see time_topk).
 * argv[2], if given, picks the configurations whose name contains it (spec, lean, next_item_5k,
 * next_item_50k, next_item_h64_50k); next_item_h64_1m (1,000,000 item rows, E = F = H = 64, 1,000
 * requests, a 1 GB budget; about 1.5 GB) and next_item_h64_1m_sparse (the same model with its
 * hidden biases lowered so that each hidden unit is active in a fifth of the requests, about 13
 * of 64 per request, as in the trained models measured in README; a random model has about
 * half of them active, the screen's worst case) run only when named exactly. Top-k lines also
 * give the model's and the screen's size, the mean active hidden units and the process's peak
 * RSS. next_item_file MODEL TSV (argv[3], argv[4]): a trained model (core_train --save) and the
 * last 1,000 lines of its TSV as requests (README "A million items in the core").
 * Each measurement runs `runs` times (argv[1], default 5) over a fresh pass of pre-generated
 * sequences and prints every run and the median, one JSON line per configuration: "median"
 * and "runs" are wall-clock rates; "cpu_median" is the rate per second of this thread's CPU
 * time (less sensitive to other jobs on a shared machine, though they still share the caches)
 * and "us_per_seq_cpu" its reciprocal in microseconds.
 * Weights are random (us_model_create); speed does not depend on their values.
 * "checksum" (forward: the sum of the outputs of the first run; top-k: an FNV-1a hash of the
 * rows and score bits of every request of the first run) shows a change of code kept the results.
 */
#define _DEFAULT_SOURCE			/* MADV_HUGEPAGE */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/mman.h>

#include "userseq/us_format.h"
#include "userseq/us_model.h"
#include "userseq/us_rng.h"
#include "bench_common.h"
#include "bench_config.h"
#include "../../src/core/scorer_internal.h"

/*
 * US_BENCH_HUGEPAGES=1: blocks of 4 MB and more are 2 MB aligned and advised as transparent
 * huge pages (the folded tables then need few TLB entries). Only to measure that effect.
 */
static void *
thp_alloc(void *ctx, size_t size)
{
	void	   *p = NULL;
	size_t		big = (size_t) 4 << 20;

	(void) ctx;
	if (size < big)
		return malloc(size);
	if (posix_memalign(&p, (size_t) 2 << 20, size) != 0)
		return NULL;
	madvise(p, size, MADV_HUGEPAGE);
	return p;
}

static void
thp_free(void *ctx, void *p)
{
	(void) ctx;
	free(p);
}

static const us_allocator thp_allocator = {thp_alloc, thp_free, NULL};

static const us_allocator *
bench_allocator(void)
{
	const char *e = getenv("US_BENCH_HUGEPAGES");

	return e && strcmp(e, "1") == 0 ? &thp_allocator : us_malloc_allocator();
}

/* CPU time of the calling thread */
static double
cpu_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return ts.tv_sec + ts.tv_nsec * 1e-9;
}

/* counts (NULL: all 1) are the vocabulary's training counts of rows 2 .. V-1 */
static us_model *
make_model(int task, int V, int L, int E, int F, int H, const uint32_t *counts)
{
	us_model_config cfg;
	us_vocab	voc;
	us_model   *m = NULL;
	int			nv = V - 2;
	us_status	st;

	us_model_config_default(&cfg, (us_task) task);
	bench_shape_128(&cfg);
	memset(&voc, 0, sizeof(voc));
	voc.n_items = nv;
	voc.item_ids = malloc(sizeof(int64_t) * nv);
	voc.item_counts = malloc(sizeof(uint32_t) * nv);
	for (int i = 0; i < nv; i++)
	{
		voc.item_ids[i] = i + 1;
		voc.item_counts[i] = counts ? counts[i] : 1;
	}
	cfg.n_items = V;
	cfg.n_outputs = task == US_TASK_NEXT_ITEM ? V : 1;
	cfg.max_len = L;
	cfg.embed_dim = E;
	cfg.n_filters = F;
	cfg.hidden_dim = H;
	st = us_model_create(&cfg, &voc, 1, us_malloc_allocator(), &m);
	free(voc.item_ids);
	free(voc.item_counts);
	if (st != US_OK)
	{
		fprintf(stderr, "model: %s\n", us_status_str(st));
		exit(1);
	}
	return m;
}

/* rates: wall-clock rates, crates: CPU-time rates, both sorted here */
static void
report(const char *name, const char *what, double *rates, double *crates, int runs,
	   const char *extra)
{
	qsort(rates, runs, sizeof(double), bench_cmp_double);
	qsort(crates, runs, sizeof(double), bench_cmp_double);
	printf("{\"bench\": \"%s\", \"measure\": \"%s\", \"median\": %.0f, \"cpu_median\": %.0f, "
		   "\"us_per_seq_cpu\": %.2f, \"runs\": [", name, what, rates[runs / 2], crates[runs / 2],
		   1e6 / crates[runs / 2]);
	for (int i = 0; i < runs; i++)
		printf("%s%.0f", i ? ", " : "", rates[i]);
	printf("], \"cpu_runs\": [");
	for (int i = 0; i < runs; i++)
		printf("%s%.0f", i ? ", " : "", crates[i]);
	printf("]%s}\n", extra);
	fflush(stdout);
}

static void
bench_forward(const char *name, int V, int L, int E, int F, int H, int n_seqs, int runs)
{
	us_model   *m = make_model(US_TASK_BINARY, V, L, E, F, H, NULL);
	bench_seqs	s;
	double	   *rates = malloc(sizeof(double) * runs);
	double	   *crates = malloc(sizeof(double) * runs);
	char		extra[128];
	double		mean_len;

	bench_make_seqs(&s, n_seqs, V, L, 12345);
	mean_len = (double) s.off[s.n] / s.n;
	for (int folded = 1; folded >= 0; folded--)
	{
		us_scorer  *sc = NULL;
		double		t0 = bench_now(),
					build;
		volatile float sink = 0;
		double		checksum = 0;
		int			n = folded ? n_seqs : n_seqs / 8;

		if (us_scorer_create(m, folded ? SIZE_MAX : 0, bench_allocator(), &sc) != US_OK)
			exit(1);
		build = bench_now() - t0;
		for (int r = 0; r < runs; r++)
		{
			double		t1 = bench_now(),
						c1 = cpu_now();

			for (int q = 0; q < n; q++)
			{
				us_events	ev = {s.items + s.off[q], NULL, NULL, (int32_t) (s.off[q + 1] - s.off[q])};
				float		out;

				if (us_scorer_forward(sc, &ev, &out, NULL) != US_OK)
					exit(1);
				sink += out;
				if (r == 0)
					checksum += out;
			}
			rates[r] = n / (bench_now() - t1);
			crates[r] = n / (cpu_now() - c1);
		}
		snprintf(extra, sizeof(extra),
				 ", \"sequences\": %d, \"mean_len\": %.1f, \"fold_mb\": %.1f, \"build_s\": %.3f, "
				 "\"checksum\": %.9g", n, mean_len,
				 folded ? us_scorer_fold_bytes(&m->cfg) / 1048576.0 : 0.0, build, checksum);
		report(name, folded ? "folded_seq_per_s" : "direct_seq_per_s", rates, crates, runs, extra);
		us_scorer_free(sc);
	}
	free(rates);
	free(crates);
	free(s.off);
	free(s.items);
	us_model_free(m);
}

/*
 * Top-10 recommendations (exclude seen) of a next_item model with E = F = H = dim, under the
 * default userseq.fold_memory budget (256 MB: screen, then as many folded rows as fit) and,
 * as the peer in the same run, with budget 0 (direct convolutions, every item scored in fp32).
 * The two alternate run by run; both must return identical top-10 lists.
 */
static int
bench_cmp_float(const void *a, const void *b)
{
	float		x = *(const float *) a,
				y = *(const float *) b;

	return (x > y) - (x < y);
}

/*
 * Mean active (nonzero) hidden units per request over the first n requests; with sparsify,
 * first lowers each unit's bias by its 80th percentile pre-activation over those requests,
 * so that each unit is active in about a fifth of them (the sparsity of a trained model).
 */
static double
hidden_activity(us_model *m, const bench_seqs *s, int n, int sparsify)
{
	int32_t		D = us_model_feature_dim(&m->cfg),
				H = m->cfg.hidden_dim;
	float	   *z = malloc(sizeof(float) * (size_t) n * D),
			   *out = malloc(sizeof(float) * (size_t) m->cfg.n_outputs),
			   *a = malloc(sizeof(float) * (size_t) n);
	us_scorer  *sc = NULL;
	int64_t		active = 0;

	/* budget 0: no tables, the features are the same on every path */
	if (us_scorer_create(m, 0, bench_allocator(), &sc) != US_OK)
		exit(1);
	for (int q = 0; q < n; q++)
	{
		us_events	ev = {s->items + s->off[q], NULL, NULL, (int32_t) (s->off[q + 1] - s->off[q])};

		if (us_scorer_forward(sc, &ev, out, z + (size_t) q * D) != US_OK)
			exit(1);
	}
	for (int32_t j = 0; j < H; j++)
	{
		for (int q = 0; q < n; q++)
		{
			double		v = m->p.dense_b[j];

			for (int32_t d = 0; d < D; d++)
				v += (double) z[(size_t) q * D + d] * m->p.dense_w[(size_t) d * H + j];
			a[q] = (float) v;
		}
		if (sparsify)
		{
			float		p80;

			qsort(a, (size_t) n, sizeof(float), bench_cmp_float);
			p80 = a[(int) (0.8 * n)];
			for (int q = 0; q < n; q++)
				a[q] -= p80;
			m->p.dense_b[j] -= p80;
		}
		for (int q = 0; q < n; q++)
			active += a[q] > 0.0f;
	}
	us_scorer_free(sc);
	free(z);
	free(out);
	free(a);
	return (double) active / n;
}

/*
 * Times top-10 (exclude seen) of m over the requests s: the scorer under budget_mb with chunk
 * skipping against the same scorer with skipping off (the peer: the same tables, every chunk
 * screened), alternating run by run; before timing, the first 200 requests must give the same
 * top-10 rows and scores on both, and the same scores (within 1e-5) on a budget-0 scorer
 * (every item in fp32 by another kernel, no screen).
 */
static void
time_topk(const char *name, us_model *m, const bench_seqs *s, int n_req, int runs,
		  size_t budget_mb, double active)
{
	us_scorer  *sc = NULL,
			   *full = NULL;
	double	   *rates[2],
			   *crates[2];
	int32_t		rows[3][10];
	float		scores[3][10];
	int32_t		nf;
	uint64_t	checksum[2] = {14695981039346656037ull, 14695981039346656037ull};
	char		extra[600];
	double		skipped;
	int32_t		V = m->cfg.n_items;

	if (us_scorer_create(m, budget_mb << 20, bench_allocator(), &sc) != US_OK ||
		us_scorer_create(m, 0, bench_allocator(), &full) != US_OK)
		exit(1);
	/* same answers from all three before timing anything */
	for (int q = 0; q < n_req && q < 200; q++)
	{
		us_events	ev = {s->items + s->off[q], NULL, NULL, (int32_t) (s->off[q + 1] - s->off[q])};

		for (int v = 0; v < 3; v++)
		{
			sc->block_skip = v == 0;
			if (us_scorer_topk(v < 2 ? sc : full, &ev, 10, 1, rows[v], scores[v], &nf) != US_OK ||
				nf != 10)
				exit(1);
		}
		/* the unscreened fp32 path's kernel rounds differently: its scores agree within 1e-5
		 * at every rank (a near-tie may swap two rows), the two screened ones bit for bit */
		int			near = 1;

		for (int x = 0; x < 10; x++)
			near &= fabsf(scores[0][x] - scores[2][x]) <= 1e-5f * (1.0f + fabsf(scores[2][x]));
		if (memcmp(rows[0], rows[1], sizeof(rows[0])) != 0 ||
			memcmp(scores[0], scores[1], sizeof(scores[0])) != 0 || !near)
		{
			fprintf(stderr, "%s: top-10 lists differ at request %d\n", name, q);
			for (int v = 0; v < 3; v++)
			{
				fprintf(stderr, "  %s:", v == 0 ? "skip" : v == 1 ? "no skip" : "fp32");
				for (int x = 0; x < 10; x++)
					fprintf(stderr, " %d (%.9g)", rows[v][x], scores[v][x]);
				fprintf(stderr, "\n");
			}
			exit(1);
		}
	}
	us_scorer_free(full);
	sc->n_chunks = sc->n_skipped = 0;
	for (int v = 0; v < 2; v++)
	{
		rates[v] = malloc(sizeof(double) * runs);
		crates[v] = malloc(sizeof(double) * runs);
	}
	for (int r = 0; r < runs; r++)
		for (int v = 0; v < 2; v++)
		{
			double		t1 = bench_now(),
						c1 = cpu_now();

			sc->block_skip = v == 0;
			for (int q = 0; q < n_req; q++)
			{
				us_events	ev = {s->items + s->off[q], NULL, NULL, (int32_t) (s->off[q + 1] - s->off[q])};

				if (us_scorer_topk(sc, &ev, 10, 1, rows[v], scores[v], &nf) != US_OK || nf != 10)
					exit(1);
				if (r == 0)
					checksum[v] = bench_fnv1a(checksum[v], rows[v], scores[v], nf);
			}
			rates[v][r] = n_req / (bench_now() - t1);
			crates[v][r] = n_req / (cpu_now() - c1);
		}
	/* n_chunks counts both peers' requests, n_skipped only the skipping one's */
	skipped = sc->n_chunks ? 2.0 * (double) sc->n_skipped / (double) sc->n_chunks : 0.0;
	snprintf(extra, sizeof(extra), ", \"V\": %d, \"E\": %d, \"H\": %d, \"L\": %d, \"screened\": %d, "
			 "\"folded_rows\": %d, \"checksum\": \"%016llx\", \"model_mb\": %.0f, "
			 "\"screen_mb\": %.0f, \"chunk_tables_mb\": %.1f, \"chunks_skipped\": %.4f, "
			 "\"active_hidden\": %.1f, \"prior\": %d, \"peak_rss_mb\": %.0f", V,
			 m->cfg.embed_dim, m->cfg.hidden_dim, m->cfg.max_len,
			 us_scorer_is_screened(sc), (int) us_scorer_folded_rows(sc),
			 (unsigned long long) checksum[0], m->n_params * 4.0 / 1048576.0,
			 us_scorer_screen_bytes(&m->cfg) / 1048576.0,
			 ((double) sc->Vp * 4 + (double) (m->cfg.hidden_dim + 4) * sc->NCp * 4) / 1048576.0,
			 skipped, active, us_transitions_active(m), bench_peak_rss_mb());
	report(name, "topk10_per_s", rates[0], crates[0], runs, extra);
	snprintf(extra, sizeof(extra), ", \"checksum\": \"%016llx\"", (unsigned long long) checksum[1]);
	report(name, "topk10_per_s_peer_no_skip", rates[1], crates[1], runs, extra);
	us_scorer_free(sc);
	for (int v = 0; v < 2; v++)
	{
		free(rates[v]);
		free(crates[v]);
	}
}

static void
bench_topk(const char *name, int V, int dim, int L, int n_req, int runs, size_t budget_mb,
		   int sparse)
{
	us_model   *m;
	bench_seqs	s;
	double		active;

	/* training counts from another draw of the same distribution (hot-row folding uses them) */
	{
		bench_seqs	train;
		uint32_t   *counts = calloc((size_t) V, sizeof(uint32_t));

		bench_make_seqs(&train, 20000, V, L, 778);
		for (int64_t i = 0; i < train.off[train.n]; i++)
			counts[train.items[i] - 2]++;
		m = make_model(US_TASK_NEXT_ITEM, V, L, dim, dim, dim, counts);
		free(counts);
		free(train.off);
		free(train.items);
	}
	bench_make_seqs(&s, n_req, V, L, 777);
	/* the scorers' tables do not depend on the hidden biases: sparsify before building them */
	if (sparse)
		hidden_activity(m, &s, n_req < 200 ? n_req : 200, 1);
	active = hidden_activity(m, &s, n_req < 200 ? n_req : 200, 0);
	time_topk(name, m, &s, n_req, runs, budget_mb, active);
	free(s.off);
	free(s.items);
	us_model_free(m);
}

/*
 * A trained next_item model from a file (core_train --save) and its requests: the last n_req
 * lines of a core_train TSV file (label, then ids; id x is row x + 1), every id but the last
 * (core_train's held-out validation users, when --valid-fraction kept them out of training).
 */
static void
bench_topk_file(const char *model_path, const char *tsv_path, int n_req, int runs,
				size_t budget_mb)
{
	FILE	   *f = fopen(model_path, "rb");
	uint8_t    *buf;
	long		len;
	us_model   *m = NULL;
	bench_seqs	s;
	char	   *line = NULL;
	size_t		cap = 0;
	int64_t		n_lines = 0,
				first,
				at = 0,
				n_items = 0;

	if (f == NULL || fseek(f, 0, SEEK_END) != 0 || (len = ftell(f)) <= 0 || fseek(f, 0, SEEK_SET) != 0)
		exit(1);
	buf = malloc((size_t) len);
	if (buf == NULL || fread(buf, 1, (size_t) len, f) != (size_t) len)
		exit(1);
	fclose(f);
	if (us_model_decode(buf, (size_t) len, bench_allocator(), &m) != US_OK)
	{
		fprintf(stderr, "%s: not a model\n", model_path);
		exit(1);
	}
	free(buf);
	f = fopen(tsv_path, "r");
	if (f == NULL)
		exit(1);
	while (getline(&line, &cap, f) > 0)
		n_lines++;
	first = n_lines - n_req;
	s.n = n_req;
	s.off = malloc(sizeof(int64_t) * (n_req + 1));
	s.items = malloc(sizeof(int32_t) * (size_t) n_req * 1024);
	s.off[0] = 0;
	rewind(f);
	while (getline(&line, &cap, f) > 0)
	{
		char	   *p = strchr(line, '\t'),
				   *e;
		int64_t		start = n_items;

		if (at++ < first || p == NULL)
			continue;
		for (p++; n_items - start < 1023; p = e)
		{
			long		id = strtol(p, &e, 10);

			if (e == p)
				break;
			if (id + 1 >= m->cfg.n_items)
				exit(1);
			s.items[n_items++] = (int32_t) id + 1;
		}
		if (n_items - start < 2)
			exit(1);
		n_items--;				/* the held-out next item */
		s.off[at - first] = n_items;
	}
	free(line);
	fclose(f);
	time_topk("next_item_file", m, &s, n_req, runs, budget_mb,
			  hidden_activity(m, &s, n_req < 200 ? n_req : 200, 0));
	free(s.off);
	free(s.items);
	us_model_free(m);
}

int
main(int argc, char **argv)
{
	int			runs = argc > 1 ? atoi(argv[1]) : 5;
	if (runs < 1 || runs > 100)
		runs = 5;
	const char *only = argc > 2 ? argv[2] : "";

	if (strstr("spec", only))
		bench_forward("spec", 10000, 100, 128, 128, 128, 20000, runs);
	if (strstr("lean", only))
		bench_forward("lean", 50000, 50, 64, 64, 128, 40000, runs);
	if (strstr("next_item_5k", only))
		bench_topk("next_item_5k", 5000, 128, 50, 20000, runs, 256, 0);
	if (strstr("next_item_50k", only))
		bench_topk("next_item_50k", 50000, 128, 50, 5000, runs, 256, 0);
	if (strstr("next_item_h64_50k", only))
		bench_topk("next_item_h64_50k", 50000, 64, 50, 5000, runs, 256, 0);
	/*
	 * only when asked for by name (about 1.5 GB and a slow fp32 peer); the budget is 1 GB
	 * (userseq.fold_memory = '1GB'), as the untied output rows' screen alone is 326 MB
	 */
	if (strcmp(only, "next_item_h64_1m") == 0)
		bench_topk("next_item_h64_1m", 1000000, 64, 50, 1000, runs, 1024, 0);
	if (strcmp(only, "next_item_h64_1m_sparse") == 0)
		bench_topk("next_item_h64_1m_sparse", 1000000, 64, 50, 1000, runs, 1024, 1);
	if (strcmp(only, "next_item_file") == 0 && argc > 4)
		bench_topk_file(argv[3], argv[4], 1000, runs, 1024);
	return 0;
}
