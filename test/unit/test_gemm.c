/*
 * test_gemm.c: the BLAS-backed us_gemm agrees with the naive reference for every
 * transposition, odd sizes, leading dimensions larger than the width, alpha and beta.
 */
#include <math.h>
#include <string.h>

#include "userseq/us_model.h"
#include "userseq/us_rng.h"
#include "../../src/core/us_internal.h"
#include "unit.h"

int
main(void)
{
	us_rng		rng;
	int			sizes[][3] = {{1, 1, 1}, {7, 5, 3}, {33, 17, 65}, {64, 128, 96}, {3, 200, 1}};

	us_rng_seed(&rng, 5);
	for (int s = 0; s < 5; s++)
		for (int ta = 0; ta < 2; ta++)
			for (int tb = 0; tb < 2; tb++)
			{
				int			m = sizes[s][0],
							n = sizes[s][1],
							k = sizes[s][2];
				int			lda = (ta ? m : k) + 3,
							ldb = (tb ? k : n) + 2,
							ldc = n + 1;
				int			ra = ta ? k : m,
							rb = tb ? n : k;
				float	   *a = malloc(sizeof(float) * ra * lda);
				float	   *b = malloc(sizeof(float) * rb * ldb);
				float	   *c1 = malloc(sizeof(float) * m * ldc);
				float	   *c2 = malloc(sizeof(float) * m * ldc);
				double		maxerr = 0;

				for (int i = 0; i < ra * lda; i++)
					a[i] = (float) us_rng_normal(&rng);
				for (int i = 0; i < rb * ldb; i++)
					b[i] = (float) us_rng_normal(&rng);
				for (int i = 0; i < m * ldc; i++)
					c1[i] = c2[i] = (float) us_rng_normal(&rng);
				us_gemm(ta, tb, m, n, k, 0.5f, a, lda, b, ldb, 0.75f, c1, ldc);
				us_gemm_naive(ta, tb, m, n, k, 0.5f, a, lda, b, ldb, 0.75f, c2, ldc);
				for (int i = 0; i < m; i++)
					for (int j = 0; j < ldc; j++)
					{
						double		e = fabs((double) c1[i * ldc + j] - c2[i * ldc + j]);

						if (e > maxerr)
							maxerr = e;
					}
				CHECK(maxerr < 1e-4 * sqrt((double) k) + 1e-5,
					  "gemm m=%d n=%d k=%d ta=%d tb=%d max err %g", m, n, k, ta, tb, maxerr);
				/* beta = 0 must ignore NaN garbage in C */
				for (int i = 0; i < m * ldc; i++)
					c1[i] = NAN;
				us_gemm(ta, tb, m, n, k, 1.0f, a, lda, b, ldb, 0.0f, c1, ldc);
				us_gemm_naive(ta, tb, m, n, k, 1.0f, a, lda, b, ldb, 0.0f, c2, ldc);
				maxerr = 0;
				for (int i = 0; i < m; i++)
					for (int j = 0; j < n; j++)
					{
						double		e = fabs((double) c1[i * ldc + j] - c2[i * ldc + j]);

						if (!(e <= maxerr))
							maxerr = e;
					}
				CHECK(maxerr < 1e-4 * sqrt((double) k) + 1e-5, "gemm beta=0 ignores C: %g", maxerr);
				free(a);
				free(b);
				free(c1);
				free(c2);
			}
	return unit_finish("test_gemm");
}
