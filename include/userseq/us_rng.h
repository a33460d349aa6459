/*
 * us_rng.h: explicit-state pseudo-random numbers (xoshiro256**, seeded by splitmix64), so
 * that initialisation, shuffling, dropout and sampling are reproducible per model and never
 * touch a global generator.
 */
#ifndef USERSEQ_US_RNG_H
#define USERSEQ_US_RNG_H

#include <stdint.h>

typedef struct us_rng
{
	uint64_t	s[4];
} us_rng;

void		us_rng_seed(us_rng *rng, uint64_t seed);
uint64_t	us_rng_next(us_rng *rng);
/* Uniform in [0, 1). */
double		us_rng_uniform(us_rng *rng);
/* Uniform integer in [0, n), n > 0, unbiased. */
uint64_t	us_rng_below(us_rng *rng, uint64_t n);
/* Standard normal (Box-Muller). */
double		us_rng_normal(us_rng *rng);

#endif
