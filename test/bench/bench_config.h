/*
 * bench_config.h: the configuration the core benchmarks and the training digest were measured
 * at, spelled out. Until the table of option defaults (userseq/us_defaults.h) gave the core
 * userseq_train's defaults, us_model_config_default / us_train_config_default gave these; the
 * drivers set them explicitly so that their figures (and train_digest's hashes) stay comparable
 * with earlier runs.
 */
#ifndef USERSEQ_BENCH_CONFIG_H
#define USERSEQ_BENCH_CONFIG_H

#include "userseq/us_model.h"

/* E = F = H = 128, widths 3,4,5, dropout 0.5, max_len 100, no recent window */
static inline void
bench_shape_128(us_model_config *c)
{
	c->embed_dim = 128;
	c->n_filters = 128;
	c->hidden_dim = 128;
	c->n_widths = 3;
	c->widths[0] = 3;
	c->widths[1] = 4;
	c->widths[2] = 5;
	c->dropout = 0.5f;
	c->max_len = 100;
	c->recent_window = 0;
}

/* Adam at 0.001 without clipping, 256 sequences per step, seed 12345 (step schedule 10 / 0.1) */
static inline void
bench_train_classic(us_train_config *tc)
{
	tc->learning_rate = 1e-3f;
	tc->clip_norm = 0.0f;
	tc->lr_step_epochs = 10;
	tc->lr_gamma = 0.1f;
	tc->batch_size = 256;
	tc->batch_examples = 0;
	tc->seed = 12345;
}

#endif
