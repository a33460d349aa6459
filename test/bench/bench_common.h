/*
 * bench_common.h: helpers shared by the benchmark drivers in test/bench/ (header-only, one
 * translation unit per driver): a monotonic clock, the median of a sample, Zipf-like sequences,
 * a checksum of top-k answers, peak RSS, and the reader of the PyTorch peer's TSV data format
 * (test/bench/torch_textcnn.py):
 *
 *     label<TAB>id id id ...      one sequence per line, oldest id first, ids 1..V-1
 *
 * Labels 0/1, f/t, false/true; an empty label or \N reads as missing (NaN). The reader keeps
 * the ids as written; mapping them to model rows is the caller's business. It does not do the
 * validation split, truncation or anything model-specific. Benchmarks may print; the core may not.
 */
#ifndef USERSEQ_BENCH_COMMON_H
#define USERSEQ_BENCH_COMMON_H

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <sys/resource.h>

#include "userseq/us_rng.h"

static inline double
bench_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec * 1e-9;
}

static inline int
bench_cmp_double(const void *a, const void *b)
{
	double		x = *(const double *) a,
				y = *(const double *) b;

	return x < y ? -1 : x > y;
}

/* Median of x[0..n-1] (sorts x in place); NaN for n == 0. */
static inline double
bench_median(double *x, size_t n)
{
	if (n == 0)
		return NAN;
	qsort(x, n, sizeof(double), bench_cmp_double);
	return n % 2 ? x[n / 2] : 0.5 * (x[n / 2 - 1] + x[n / 2]);
}

typedef struct bench_seqs
{
	int			n;
	int64_t    *off;
	int32_t    *items;
} bench_seqs;

/*
 * n sequences of model rows: Zipf-like item rows 2..V-1 (p ~ 1/rank^1.07, ranks mapped to rows
 * by a permutation fixed for every seed, so draws can stand for training data) and lengths
 * uniform in [max(3, L/4), L], as torch_textcnn.py gen draws them.
 */
static inline void
bench_make_seqs(bench_seqs *s, int n, int V, int L, uint64_t seed)
{
	us_rng		rng;
	int			nv = V - 2;
	double	   *cdf = malloc(sizeof(double) * nv);
	int32_t    *perm = malloc(sizeof(int32_t) * nv);
	double		sum = 0;
	int			lo = L / 4 > 3 ? L / 4 : 3;

	/* the same rank-to-id permutation for every draw, so draws can stand for training data */
	us_rng_seed(&rng, 12345);
	for (int i = 0; i < nv; i++)
	{
		sum += 1.0 / pow(i + 1, 1.07);
		cdf[i] = sum;
		perm[i] = i + 2;
	}
	for (int i = nv - 1; i > 0; i--)
	{
		int			j = (int) us_rng_below(&rng, i + 1);
		int32_t		t = perm[i];

		perm[i] = perm[j];
		perm[j] = t;
	}
	us_rng_seed(&rng, seed);
	s->n = n;
	s->off = malloc(sizeof(int64_t) * (n + 1));
	s->items = malloc(sizeof(int32_t) * (size_t) n * L);
	s->off[0] = 0;
	for (int q = 0; q < n; q++)
	{
		int			len = lo + (int) us_rng_below(&rng, L - lo + 1);

		for (int t = 0; t < len; t++)
		{
			double		u = us_rng_uniform(&rng) * sum;
			int			a = 0,
						b = nv - 1;

			while (a < b)
			{
				int			m = (a + b) / 2;

				if (cdf[m] < u)
					a = m + 1;
				else
					b = m;
			}
			s->items[s->off[q] + t] = perm[a];
		}
		s->off[q + 1] = s->off[q] + len;
	}
	free(cdf);
	free(perm);
}

/* FNV-1a over n rows and the bits of their scores: a checksum of top-k answers. */
static inline uint64_t
bench_fnv1a(uint64_t h, const int32_t *rows, const float *scores, int32_t n)
{
	for (int32_t i = 0; i < n; i++)
	{
		uint32_t	w[2];

		memcpy(&w[0], &rows[i], 4);
		memcpy(&w[1], &scores[i], 4);
		for (int b = 0; b < 8; b++)
			h = (h ^ (uint8_t) (w[b / 4] >> (8 * (b % 4)))) * 1099511628211ull;
	}
	return h;
}

/* Peak resident set size of this process in MiB (Linux ru_maxrss is in KiB). */
static inline double
bench_peak_rss_mb(void)
{
	struct rusage ru;

	if (getrusage(RUSAGE_SELF, &ru) != 0)
		return NAN;
	return ru.ru_maxrss / 1024.0;
}

/* One TSV file in memory: sequence s holds ids[off[s] .. off[s+1]-1]. */
typedef struct bench_tsv
{
	int32_t		n;				/* sequences (lines) */
	int64_t    *off;			/* (n + 1) */
	int32_t    *ids;			/* (off[n]) ids as written, oldest first */
	float	   *label;			/* (n) 0 / 1, NaN when missing */
	int32_t		max_id;
} bench_tsv;

static inline void
bench_tsv_free(bench_tsv *t)
{
	free(t->off);
	free(t->ids);
	free(t->label);
	memset(t, 0, sizeof(*t));
}

static inline int
bench_tsv_grow(void **p, size_t *cap, size_t need, size_t elem)
{
	size_t		ncap = *cap ? *cap : 1024;
	void	   *q;

	if (need <= *cap)
		return 0;
	while (ncap < need)
		ncap *= 2;
	q = realloc(*p, ncap * elem);
	if (q == NULL)
		return -1;
	*p = q;
	*cap = ncap;
	return 0;
}

/*
 * Reads path into t. vocab > 0: every id must lie in 1..vocab-1 (as the peer's --vocab
 * checks). Returns 0, or -1 with a message (file:line: what) in err.
 */
static inline int
bench_tsv_read(const char *path, int32_t vocab, bench_tsv *t, char *err, size_t errlen)
{
	FILE	   *f = fopen(path, "r");
	char	   *line = NULL;
	size_t		linecap = 0;
	ssize_t		len;
	size_t		cap_seq = 0,
				cap_ids = 0,
				cap_lab = 0;
	int64_t		n_ids = 0;
	int64_t		line_no = 0;

	memset(t, 0, sizeof(*t));
	if (f == NULL)
	{
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		return -1;
	}
	if (bench_tsv_grow((void **) &t->off, &cap_seq, 1, sizeof(int64_t)))
		goto nomem;
	t->off[0] = 0;
	while ((len = getline(&line, &linecap, f)) >= 0)
	{
		char	   *tab,
				   *p;
		float		label;

		line_no++;
		while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r'))
			line[--len] = '\0';
		tab = strchr(line, '\t');
		if (tab == NULL)
		{
			snprintf(err, errlen, "%s:%lld: no tab; expected label<TAB>id id ...", path,
					 (long long) line_no);
			goto fail;
		}
		*tab = '\0';
		if (line[0] == '\0' || strcmp(line, "\\N") == 0)
			label = NAN;
		else if (!strcmp(line, "0") || !strcasecmp(line, "f") || !strcasecmp(line, "false"))
			label = 0.0f;
		else if (!strcmp(line, "1") || !strcasecmp(line, "t") || !strcasecmp(line, "true"))
			label = 1.0f;
		else
		{
			snprintf(err, errlen, "%s:%lld: label is not 0/1/t/f", path, (long long) line_no);
			goto fail;
		}
		p = tab + 1;
		for (;;)
		{
			char	   *end;
			long		v;

			while (*p == ' ')
				p++;
			if (*p == '\0')
				break;
			errno = 0;
			v = strtol(p, &end, 10);
			if (end == p || errno || (*end != ' ' && *end != '\0') || v < 1 ||
				v > INT32_MAX - 2 || (vocab > 0 && v >= vocab))
			{
				snprintf(err, errlen, "%s:%lld: ids must be integers in 1..vocab-1", path,
						 (long long) line_no);
				goto fail;
			}
			if (bench_tsv_grow((void **) &t->ids, &cap_ids, (size_t) n_ids + 1, sizeof(int32_t)))
				goto nomem;
			t->ids[n_ids++] = (int32_t) v;
			if (v > t->max_id)
				t->max_id = (int32_t) v;
			p = end;
		}
		if (t->n == INT32_MAX - 1 ||
			bench_tsv_grow((void **) &t->off, &cap_seq, (size_t) t->n + 2, sizeof(int64_t)) ||
			bench_tsv_grow((void **) &t->label, &cap_lab, (size_t) t->n + 1, sizeof(float)))
			goto nomem;
		t->label[t->n] = label;
		t->off[++t->n] = n_ids;
	}
	free(line);
	fclose(f);
	return 0;
nomem:
	snprintf(err, errlen, "%s: out of memory", path);
fail:
	free(line);
	fclose(f);
	bench_tsv_free(t);
	return -1;
}

#endif
