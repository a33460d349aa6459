/*
 * rng.c: xoshiro256** with splitmix64 seeding (public-domain algorithms by Blackman and Vigna),
 * written from their published description. Explicit state; no globals.
 */
#include <math.h>

#include "userseq/us_rng.h"

static uint64_t
splitmix64(uint64_t *x)
{
	uint64_t	z = (*x += UINT64_C(0x9E3779B97F4A7C15));

	z = (z ^ (z >> 30)) * UINT64_C(0xBF58476D1CE4E5B9);
	z = (z ^ (z >> 27)) * UINT64_C(0x94D049BB133111EB);
	return z ^ (z >> 31);
}

static inline uint64_t
rotl(uint64_t x, int k)
{
	return (x << k) | (x >> (64 - k));
}

void
us_rng_seed(us_rng *rng, uint64_t seed)
{
	uint64_t	x = seed;

	for (int i = 0; i < 4; i++)
		rng->s[i] = splitmix64(&x);
}

uint64_t
us_rng_next(us_rng *rng)
{
	uint64_t   *s = rng->s;
	uint64_t	result = rotl(s[1] * 5, 7) * 9;
	uint64_t	t = s[1] << 17;

	s[2] ^= s[0];
	s[3] ^= s[1];
	s[1] ^= s[2];
	s[0] ^= s[3];
	s[2] ^= t;
	s[3] = rotl(s[3], 45);
	return result;
}

double
us_rng_uniform(us_rng *rng)
{
	/* 53 random bits -> [0, 1) */
	return (double) (us_rng_next(rng) >> 11) * (1.0 / 9007199254740992.0);
}

uint64_t
us_rng_below(us_rng *rng, uint64_t n)
{
	/* rejection sampling: drop the top partial range so every residue is equally likely */
	uint64_t	limit = UINT64_MAX - UINT64_MAX % n;
	uint64_t	x;

	do
		x = us_rng_next(rng);
	while (x >= limit);
	return x % n;
}

double
us_rng_normal(us_rng *rng)
{
	double		u1 = us_rng_uniform(rng);
	double		u2 = us_rng_uniform(rng);

	if (u1 < 1e-300)
		u1 = 1e-300;
	return sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2);
}
