/*
 * gemm.c: the single wrapper over cblas_sgemm (row-major) and a naive reference with the same
 * contract. Build with -DUSERSEQ_NO_BLAS to use the reference everywhere. No threading of our
 * own: BLAS decides (the caller sets its thread count).
 */
#include <stddef.h>

#ifndef USERSEQ_NO_BLAS
#include <cblas.h>
#endif

#include "us_internal.h"

void
us_gemm_naive(int trans_a, int trans_b, int m, int n, int k, float alpha,
			  const float *a, int lda, const float *b, int ldb, float beta,
			  float *c, int ldc)
{
	for (int i = 0; i < m; i++)
		for (int j = 0; j < n; j++)
		{
			double		s = 0.0;

			for (int p = 0; p < k; p++)
			{
				float		av = trans_a ? a[(size_t) p * lda + i] : a[(size_t) i * lda + p];
				float		bv = trans_b ? b[(size_t) j * ldb + p] : b[(size_t) p * ldb + j];

				s += (double) av * (double) bv;
			}
			if (beta == 0.0f)
				c[(size_t) i * ldc + j] = (float) (alpha * s);
			else
				c[(size_t) i * ldc + j] = (float) (alpha * s + beta * c[(size_t) i * ldc + j]);
		}
}

void
us_gemm(int trans_a, int trans_b, int m, int n, int k, float alpha,
		const float *a, int lda, const float *b, int ldb, float beta,
		float *c, int ldc)
{
	if (m <= 0 || n <= 0)
		return;
	if (k <= 0)
	{
		/* BLAS would leave C untouched for beta = 1 but scale otherwise; do it explicitly */
		for (int i = 0; i < m; i++)
			for (int j = 0; j < n; j++)
				c[(size_t) i * ldc + j] = beta == 0.0f ? 0.0f : beta * c[(size_t) i * ldc + j];
		return;
	}
#ifdef USERSEQ_NO_BLAS
	us_gemm_naive(trans_a, trans_b, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
#else
	cblas_sgemm(CblasRowMajor, trans_a ? CblasTrans : CblasNoTrans,
				trans_b ? CblasTrans : CblasNoTrans, m, n, k, alpha, a, lda, b, ldb, beta,
				c, ldc);
#endif
}
