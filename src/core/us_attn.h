/*
 * us_attn.h: private interface of the causal self-attention encoder (attn.c), the
 * "sasrec" architecture. Not installed; the PostgreSQL glue must not include it.
 *
 * The encoder maps the kept events of each sequence to one hidden vector per position
 * (position t sees events 0..t only); the model reads position n-1 as its feature vector z
 * (D = E) and continues with the same dense layer and heads as the text-CNN. The prefix tasks
 * read every position in one pass: prefix 0..t-1 is position t-1.
 *
 *   x_t  = dropout(emb_t + pos_emb[t])                             (T, E)
 *   per block l:
 *     a    = layernorm1(x)                                         (T, E)
 *     qkv  = a @ w_qkv + b_qkv                                     (T, 3E)
 *     o    = per head h, per sequence: softmax_causal(q_h k_h^T / sqrt(E/nh)) v_h  (T, E)
 *     x    = x + dropout(o @ w_o + b_o)                            (T, E)
 *     b    = layernorm2(x)                                         (T, E)
 *     x    = x + dropout(relu(b @ w_1 + b_1) @ w_2 + b_2)          (T, E)
 *   out  = layernorm_f(x)                                          (T, E)
 *
 * Parameter region (floats, inside the model's block after the gap embeddings, in this order):
 *   pos_emb (max_len, E); per block ln1_g, ln1_b (E), w_qkv (E, 3E), b_qkv (3E), w_o (E, E),
 *   b_o (E), ln2_g, ln2_b (E), w_1 (E, E), b_1 (E), w_2 (E, E), b_2 (E); lnf_g, lnf_b (E).
 *
 * No allocation here: the caller passes an arena of us_attn_arena_floats floats.
 */
#ifndef USERSEQ_US_ATTN_H
#define USERSEQ_US_ATTN_H

#include <stddef.h>
#include <stdint.h>

#include "userseq/us_model.h"
#include "userseq/us_rng.h"

typedef struct us_attn_block
{
	float	   *ln1_g,
			   *ln1_b,
			   *w_qkv,
			   *b_qkv,
			   *w_o,
			   *b_o,
			   *ln2_g,
			   *ln2_b,
			   *w_1,
			   *b_1,
			   *w_2,
			   *b_2;
} us_attn_block;

typedef struct us_attn_params
{
	float	   *pos_emb;		/* (max_len, E) */
	us_attn_block blk[US_MAX_BLOCKS];
	float	   *lnf_g,
			   *lnf_b;			/* (E) */
} us_attn_params;

/* Floats of the encoder region (0 for the text-CNN). */
size_t		us_attn_param_count(const us_model_config *cfg);
/* Views into the region starting at base. */
void		us_attn_bind(const us_model_config *cfg, float *base, us_attn_params *ap);
/* Seeded initialisation: positions N(0, emb_std), linear layers U(+-1/sqrt(E)), biases 0,
 * norms gain 1 bias 0. */
void		us_attn_init(const us_model_config *cfg, const us_attn_params *ap, us_rng *rng,
						 double emb_std);

/*
 * One batch of nseq sequences whose tokens are concatenated: sequence s holds tokens
 * seq_tok[s] .. seq_tok[s+1]-1 (at most max_len each), token t has input vector
 * X[tok_u[t]] (distinct inputs (U, E)). The dropout masks are drawn per (seq_key[s], position)
 * from drop_seed, so they do not depend on how a batch is cut into slices.
 */
typedef struct us_attn_batch
{
	int32_t		nseq;
	const int64_t *seq_tok;		/* (nseq + 1) */
	int64_t		T;
	const int32_t *tok_u;		/* (T) */
	const float *X;				/* (U, E) */
	const int32_t *seq_key;		/* (nseq) dataset sequence ids, for the dropout masks */
	int			dropout;		/* 1: training-mode dropout with drop_seed */
	uint64_t	drop_seed;
} us_attn_batch;

/* Arena floats a batch of T tokens needs (train: also the backward scratch). 0 on overflow. */
size_t		us_attn_arena_floats(const us_model_config *cfg, const int64_t *seq_tok, int32_t nseq,
								 int train);

/* Forward; returns the output rows (T, E) inside the arena. */
const float *us_attn_forward(const us_model_config *cfg, const us_attn_params *ap,
							 const us_attn_batch *b, float *arena);

/*
 * Backward of the forward just run on the same arena: dout (T, E) is the gradient of the
 * output rows; adds the parameter gradients into g and the input gradients into dX (U, E).
 */
void		us_attn_backward(const us_model_config *cfg, const us_attn_params *ap,
							 const us_attn_batch *b, float *arena, const float *dout,
							 const us_attn_params *g, float *dX);

#endif
