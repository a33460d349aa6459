/*
 * unit.h: a tiny test harness for the core's C unit tests. Each test binary prints one line
 * per check ("ok"/"FAIL" + name) and exits nonzero if any check failed; test/unit/run.sh
 * sums them up.
 */
#ifndef USERSEQ_UNIT_H
#define USERSEQ_UNIT_H

#include <math.h>
#include <stdio.h>
#include <stdlib.h>

static int	unit_failed = 0;
static int	unit_passed = 0;

#define CHECK(cond, ...) \
	do { \
		if (cond) { unit_passed++; } \
		else { \
			unit_failed++; \
			printf("FAIL %s:%d: ", __FILE__, __LINE__); \
			printf(__VA_ARGS__); \
			printf("\n"); \
		} \
	} while (0)

#define CHECK_OK(expr) \
	do { \
		us_status st_ = (expr); \
		CHECK(st_ == US_OK, "%s returned %s", #expr, us_status_str(st_)); \
	} while (0)

/* Call at the end of main(). */
static inline int
unit_finish(const char *name)
{
	printf("%s: %d checks passed, %d failed\n", name, unit_passed, unit_failed);
	return unit_failed ? 1 : 0;
}

/* Set US_UNIT_QUICK=1 (valgrind runs) to shrink the expensive tests. */
static inline int
unit_quick(void)
{
	const char *q = getenv("US_UNIT_QUICK");

	return q && *q && *q != '0';
}

#endif
