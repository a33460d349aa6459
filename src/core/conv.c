/*
 * conv.c: the folded convolution's inner kernel (us_conv_pool), the hot loop of scoring.
 *
 * For one width k and a span of windows, pool[f] = max_t (bias[f] + sum_j sum_src
 * row(t + j, src)[col0 + j F + f]), merged with the pool already there unless the span starts
 * at window 0. Window-stationary: a block of filters keeps its accumulators and running maxima
 * in registers for the whole pass over the sequence, so each folded value costs one load and
 * one add and nothing is stored per window. The wider the block, the fewer passes over the
 * sequence's rows: 128 filters in one pass with AVX-512 (8 accumulators, 8 maxima and 8 bias
 * vectors of the 32 registers), 64 with AVX2 (8 + 8 of 16 registers), 32 in the portable body.
 *
 * Bodies for AVX-512 and AVX2 are compiled with __attribute__((target)) whatever the build
 * flags and chosen at run time (us_cpu_features); all bodies add in the same order (bias, then
 * taps in order, sources in order) and take the maximum with the same rule (a NaN or an equal
 * value keeps the running maximum), so they give bit-identical results. The kernels are
 * spelled out with one named variable per vector (the REP macros), not arrays: at -O2 GCC
 * keeps arrays of vectors in memory.
 */
#include <string.h>

#include "scorer_internal.h"

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#define US_CONV_HAVE_X86_PATHS 1
#include <immintrin.h>
#endif

/*
 * Portable bodies: blocks of 32, 8 and 1 filters through the vector extension (AVX-512 or
 * AVX registers with -march=native, SSE pairs otherwise).
 */
#ifdef US_HAVE_V8F
static void
pool_32_portable(const us_conv_span *sp, int32_t k, size_t col0, int32_t F, const float *bias,
			 float *pool)
{
	const float *const *rows = sp->rows;
	int			nsrc = sp->nsrc;
	int32_t		m = sp->m;
	v8f			p0 = v8_load(pool),
				p1 = v8_load(pool + 8),
				p2 = v8_load(pool + 16),
				p3 = v8_load(pool + 24);

	for (int32_t t = sp->t0; t < sp->t1; t++)
	{
		v8f			a0 = v8_load(bias),
					a1 = v8_load(bias + 8),
					a2 = v8_load(bias + 16),
					a3 = v8_load(bias + 24);
		int32_t		kk = m - t < k ? m - t : k;

		for (int32_t j = 0; j < kk; j++)
		{
			const float *const *rp = rows + (size_t) (t + j - sp->base) * nsrc;
			size_t		col = col0 + (size_t) j * F;

			for (int src = 0; src < nsrc; src++)
			{
				const float *r = rp[src] + col;

				a0 += v8_load(r);
				a1 += v8_load(r + 8);
				a2 += v8_load(r + 16);
				a3 += v8_load(r + 24);
			}
		}
		if (t == 0)
		{
			p0 = a0;
			p1 = a1;
			p2 = a2;
			p3 = a3;
		}
		else
		{
			p0 = v8_max(p0, a0);
			p1 = v8_max(p1, a1);
			p2 = v8_max(p2, a2);
			p3 = v8_max(p3, a3);
		}
	}
	memcpy(pool, &p0, sizeof(p0));
	memcpy(pool + 8, &p1, sizeof(p1));
	memcpy(pool + 16, &p2, sizeof(p2));
	memcpy(pool + 24, &p3, sizeof(p3));
}

static void
pool_8_portable(const us_conv_span *sp, int32_t k, size_t col0, int32_t F, const float *bias,
			float *pool)
{
	const float *const *rows = sp->rows;
	int			nsrc = sp->nsrc;
	int32_t		m = sp->m;
	v8f			p0 = v8_load(pool);

	for (int32_t t = sp->t0; t < sp->t1; t++)
	{
		v8f			a0 = v8_load(bias);
		int32_t		kk = m - t < k ? m - t : k;

		for (int32_t j = 0; j < kk; j++)
		{
			const float *const *rp = rows + (size_t) (t + j - sp->base) * nsrc;
			size_t		col = col0 + (size_t) j * F;

			for (int src = 0; src < nsrc; src++)
				a0 += v8_load(rp[src] + col);
		}
		p0 = t == 0 ? a0 : v8_max(p0, a0);
	}
	memcpy(pool, &p0, sizeof(p0));
}
#endif

static void
pool_1_portable(const us_conv_span *sp, int32_t k, size_t col0, int32_t F, const float *bias,
			float *pool)
{
	const float *const *rows = sp->rows;
	int			nsrc = sp->nsrc;
	int32_t		m = sp->m;
	float		p0 = pool[0];

	for (int32_t t = sp->t0; t < sp->t1; t++)
	{
		float		a0 = bias[0];
		int32_t		kk = m - t < k ? m - t : k;

		for (int32_t j = 0; j < kk; j++)
		{
			const float *const *rp = rows + (size_t) (t + j - sp->base) * nsrc;
			size_t		col = col0 + (size_t) j * F;

			for (int src = 0; src < nsrc; src++)
				a0 += rp[src][col];
		}
		p0 = t == 0 || a0 > p0 ? a0 : p0;
	}
	pool[0] = p0;
}


#ifdef US_CONV_HAVE_X86_PATHS
#define REP1(X) X(0)
#define REP4(X) X(0) X(1) X(2) X(3)
#define REP8(X) X(0) X(1) X(2) X(3) X(4) X(5) X(6) X(7)

/*
 * One body per (instruction set, vectors per block); VEC, LANES, LOAD, ADD, MAX and STORE are
 * defined per instruction set below. BIAS(i) is the accumulator's start: a register kept for
 * the pass (AVX-512) or a load (AVX2, which has no registers to spare).
 */
#define CP_DECL(i)	VEC p##i = LOAD(pool + (i) * LANES); BIAS_DECL(i)
#define CP_INIT(i)	VEC a##i = BIAS(i);
#define CP_ADD(i)	a##i = ADD(a##i, LOAD(r + (i) * LANES));
#define CP_FIRST(i)	p##i = a##i;
/* max(a, p) is a > p ? a : p: a NaN or an equal a keeps p, as the portable v8_max */
#define CP_MAX(i)	p##i = MAX(a##i, p##i);
#define CP_STORE(i)	STORE(pool + (i) * LANES, p##i);

#define CONV_POOL_BODY(REP) \
	const float *const *rows = sp->rows; \
	int			nsrc = sp->nsrc; \
	int32_t		m = sp->m; \
	REP(CP_DECL) \
	for (int32_t t = sp->t0; t < sp->t1; t++) \
	{ \
		int32_t		kk = m - t < k ? m - t : k; \
		REP(CP_INIT) \
		for (int32_t j = 0; j < kk; j++) \
		{ \
			const float *const *rp = rows + (size_t) (t + j - sp->base) * nsrc; \
			size_t		col = col0 + (size_t) j * F; \
			for (int src = 0; src < nsrc; src++) \
			{ \
				const float *r = rp[src] + col; \
				REP(CP_ADD) \
			} \
		} \
		if (t == 0) \
		{ \
			REP(CP_FIRST) \
		} \
		else \
		{ \
			REP(CP_MAX) \
		} \
	} \
	REP(CP_STORE)

#define CONV_POOL_FN(name, isa, REP) \
__attribute__((target(isa))) \
static void \
name(const us_conv_span *sp, int32_t k, size_t col0, int32_t F, const float *bias, float *pool) \
{ \
	CONV_POOL_BODY(REP) \
}

#define VEC			__m512
#define LANES		16
#define LOAD(p)		_mm512_loadu_ps(p)
#define ADD(a, b)	_mm512_add_ps(a, b)
#define MAX(a, b)	_mm512_max_ps(a, b)
#define STORE(p, v)	_mm512_storeu_ps(p, v)
#define BIAS_DECL(i) VEC b##i = LOAD(bias + (i) * LANES);
#define BIAS(i)		b##i
CONV_POOL_FN(pool_128_avx512, "avx512f", REP8)
CONV_POOL_FN(pool_64_avx512, "avx512f", REP4)
CONV_POOL_FN(pool_16_avx512, "avx512f", REP1)
#undef VEC
#undef LANES
#undef LOAD
#undef ADD
#undef MAX
#undef STORE
#undef BIAS_DECL
#undef BIAS

#define VEC			__m256
#define LANES		8
#define LOAD(p)		_mm256_loadu_ps(p)
#define ADD(a, b)	_mm256_add_ps(a, b)
#define MAX(a, b)	_mm256_max_ps(a, b)
#define STORE(p, v)	_mm256_storeu_ps(p, v)
#define BIAS_DECL(i)
#define BIAS(i)		LOAD(bias + (i) * LANES)
CONV_POOL_FN(pool_64_avx2, "avx2", REP8)
CONV_POOL_FN(pool_32_avx2, "avx2", REP4)
CONV_POOL_FN(pool_8_avx2, "avx2", REP1)
#undef VEC
#undef LANES
#undef LOAD
#undef ADD
#undef MAX
#undef STORE
#undef BIAS_DECL
#undef BIAS
#endif

/* the widest blocks this CPU runs, then narrower ones, then single filters */
void
us_conv_pool(const us_conv_span *sp, int32_t k, size_t col0, int32_t F, const float *bias,
			 float *pool)
{
	int32_t		c = 0;

#ifdef US_CONV_HAVE_X86_PATHS
	unsigned	cpu = us_cpu_features();

	if (cpu & US_CPU_AVX512)
	{
		for (; c + 128 <= F; c += 128)
			pool_128_avx512(sp, k, col0 + c, F, bias + c, pool + c);
		for (; c + 64 <= F; c += 64)
			pool_64_avx512(sp, k, col0 + c, F, bias + c, pool + c);
		for (; c + 16 <= F; c += 16)
			pool_16_avx512(sp, k, col0 + c, F, bias + c, pool + c);
	}
	if (cpu & US_CPU_AVX2)
	{
		for (; c + 64 <= F; c += 64)
			pool_64_avx2(sp, k, col0 + c, F, bias + c, pool + c);
		for (; c + 32 <= F; c += 32)
			pool_32_avx2(sp, k, col0 + c, F, bias + c, pool + c);
		for (; c + 8 <= F; c += 8)
			pool_8_avx2(sp, k, col0 + c, F, bias + c, pool + c);
	}
#endif
#ifdef US_HAVE_V8F
	for (; c + 32 <= F; c += 32)
		pool_32_portable(sp, k, col0 + c, F, bias + c, pool + c);
	for (; c + 8 <= F; c += 8)
		pool_8_portable(sp, k, col0 + c, F, bias + c, pool + c);
#endif
	for (; c < F; c++)
		pool_1_portable(sp, k, col0 + c, F, bias + c, pool + c);
}
