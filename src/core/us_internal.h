/*
 * us_internal.h: private interface shared by the files of src/core (parameter layout, the
 * single GEMM wrapper, allocation helpers, the full-gradient entry point used by the gradient
 * checks). Not installed and not part of the public API; PostgreSQL glue must not include it.
 */
#ifndef USERSEQ_US_INTERNAL_H
#define USERSEQ_US_INTERNAL_H

#include <math.h>
#include <stddef.h>
#include <stdint.h>

#include "userseq/us_model.h"

/* Largest float count of a parameter block (the model bytes must fit a bytea). */
#define US_MAX_PARAMS	((size_t) 250 * 1000 * 1000)

/* a * b into *out; 0 on overflow. */
static inline int
us_mul_size(size_t a, size_t b, size_t *out)
{
	if (a != 0 && b > SIZE_MAX / a)
		return 0;
	*out = a * b;
	return 1;
}

static inline int
us_add_size(size_t a, size_t b, size_t *out)
{
	if (b > SIZE_MAX - a)
		return 0;
	*out = a + b;
	return 1;
}

/* Floats of the parameter block of a (validated) config; 0 on overflow. */
size_t		us_model_param_count(const us_model_config *cfg);
/* Points the tensors of p into block (laid out in the documented order). */
void		us_params_bind(const us_model_config *cfg, float *block, us_params *p);

/*
 * The parameter tensors in block order, for int8 quantization (model.c): a weight matrix of
 * rows x cols stored row-major, quantized per row or per column, or a bias (fp32, quant 0).
 */
typedef struct us_tensor
{
	size_t		off;			/* floats from the start of the block */
	size_t		rows,
				cols;
	int			per_col;		/* 1: a scale per column, 0: per row */
	int			quant;			/* 0: bias, kept fp32 */
} us_tensor;

#define US_MAX_TENSORS		(3 + 2 * US_MAX_WIDTHS + 4)
/* Fills t (room for US_MAX_TENSORS) and returns the count; they cover the block exactly. */
int			us_model_tensors(const us_model_config *cfg, us_tensor *t);
/* max |w| of a group -> its int8 scale (0 for an all-zero group) */
float		us_quant_scale(float amax);
/* Scale groups of a quantized tensor. */
static inline size_t
us_tensor_groups(const us_tensor *t)
{
	return t->per_col ? t->cols : t->rows;
}

/* the repeat prior's term of a row seen c >= 1 times (us_model.h): one expression everywhere */
static inline float
us_repeat_value(float repeat_weight, int32_t c)
{
	return repeat_weight * logf(1.0f + (float) c);
}

/* qsort comparator of uint64_t, ascending (evaluation.c; item pairs, the scorer's fold order) */
int			us_cmp_u64(const void *a, const void *b);

/* Frees the arrays of a vocabulary allocated by us_vocab_copy / us_vocab_build_items. */
void		us_vocab_free(us_vocab *vocab, const us_allocator *alloc);
/* format_prior.c: the shape us_transitions_check requires, without writing logc; 1 = fine */
int			us_trans_shape_ok(const us_transitions *t, int32_t n_rows);
/* Deep copy of src into dst (dst fields overwritten). */
us_status	us_vocab_copy(us_vocab *dst, const us_vocab *src, const us_allocator *alloc);

/*
 * Row-major single-precision GEMM: C = alpha * op(A) @ op(B) + beta * C, op(A) (m, k),
 * op(B) (k, n). The only call site of cblas_sgemm; -DUSERSEQ_NO_BLAS routes everything to the
 * naive reference.
 */
void		us_gemm(int trans_a, int trans_b, int m, int n, int k, float alpha,
					const float *a, int lda, const float *b, int ldb, float beta,
					float *c, int ldc);
/* Naive reference with the same contract (double accumulation), for tests. */
void		us_gemm_naive(int trans_a, int trans_b, int m, int n, int k, float alpha,
						  const float *a, int lda, const float *b, int ldb, float beta,
						  float *c, int ldc);

/*
 * Instruction sets of the run-time selected kernels (cpu.c): what this CPU (and OS) supports,
 * within the set allowed by us_cpu_restrict (default: everything). us_cpu_restrict is for
 * tests and benchmarks that compare kernel bodies; it returns the previous set and is not
 * thread-safe.
 */
#define US_CPU_SSE42	1u
#define US_CPU_AVX2		2u		/* with FMA */
#define US_CPU_AVX512	4u		/* F, BW, DQ, VL */
unsigned	us_cpu_features(void);
unsigned	us_cpu_restrict(unsigned allowed);

#define US_EDROP_TEST_KEY	0x5eed5eedULL

/* Conv backward path: chosen by cost, or forced (gradient checks exercise both). */
#define US_CONV_BWD_AUTO	0
#define US_CONV_BWD_SPARSE	1
#define US_CONV_BWD_DENSE	2

/*
 * Mean loss over a fixed batch (dropout off, full softmax; embedding dropout with one fixed
 * mask, key US_EDROP_TEST_KEY, when the model has it) and its full gradient: grads gets
 * n_params floats in the parameter layout (padding rows 0 of the embeddings get zero, as
 * they are not trained). Uses the trainer's forward/backward code. For next_item /
 * next_behavior the examples are the prefixes (max_examples_per_seq as in training).
 */
us_status	us_model_loss_and_grad(const us_model *model, const us_dataset *data,
								   const int32_t *seq_ids, int32_t n,
								   int32_t max_examples_per_seq, int conv_bwd,
								   float *grads, double *loss);

/*
 * The same for a trainer's configuration (n_threads slices, reduced in slice order; dropout
 * off, full softmax, the same fixed embedding dropout mask): grads gets the reduced gradient of the batch, no optimizer step is
 * taken. For the tests comparing thread counts.
 */
us_status	us_trainer_batch_grad(us_trainer *trainer, const us_dataset *data,
								  const int32_t *seq_ids, int32_t n, float *grads, double *loss);

#endif
