/*
 * cpu.c: the one place that decides which instruction sets the run-time selected kernels of
 * the core may use (crc32c's SSE4.2, the top-k screen's AVX2). Those kernels are compiled with
 * __attribute__((target(...))) whatever the build flags, so a portable build (OPTFLAGS="")
 * still runs them where the CPU has them, and the portable bodies run elsewhere. Tests narrow
 * the set (us_cpu_restrict) to run every body this machine can run.
 */
#include "us_internal.h"

/* the features the kernels may use: all by default; tests narrow it */
static unsigned us_cpu_allowed = ~0u;

unsigned
us_cpu_features(void)
{
	unsigned	f = 0;

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
	/* __builtin_cpu_supports also checks that the OS saves the wider registers (XCR0) */
	__builtin_cpu_init();
	if (__builtin_cpu_supports("sse4.2"))
		f |= US_CPU_SSE42;
	if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"))
		f |= US_CPU_AVX2;
	if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
		__builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512vl"))
		f |= US_CPU_AVX512;
#endif
	return f & us_cpu_allowed;
}

unsigned
us_cpu_restrict(unsigned allowed)
{
	unsigned	old = us_cpu_allowed;

	us_cpu_allowed = allowed;
	return old;
}
