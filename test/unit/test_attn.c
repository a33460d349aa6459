/*
 * test_attn.c: the self-attention encoder (src/core/attn.c) alone: finite-difference checks of
 * every parameter's and every input's analytic gradient for the loss sum(out * R), with 1, 2
 * and 4 heads, 1 and 2 blocks, with dropout on (the masks are a function of the seed, so the
 * loss stays deterministic) and off, over sequences of 0, 1, 3, 6 and max_len tokens sharing
 * inputs; causality (a position does not see later events) and that the masks do not depend
 * on how the batch is cut into slices.
 */
#include <math.h>
#include <string.h>

#include "userseq/us_model.h"
#include "userseq/us_rng.h"
#include "../../src/core/us_attn.h"
#include "../../src/core/us_internal.h"
#include "unit.h"

#define NS 5
#define MAXLEN 8
#define U_IN 9
static const int lens[NS] = {3, 0, 1, MAXLEN, 6};

typedef struct fix
{
	us_model_config c;
	float	   *params;			/* encoder region */
	size_t		np;
	us_attn_params ap;
	float		X[U_IN * 16];
	int64_t		seq_tok[NS + 1];
	int32_t		tok_u[64];
	int32_t		keys[NS];
	float		R[64 * 16];
	us_attn_batch b;
	float	   *arena;
} fix;

static void
fix_init(fix *f, int E, int nh, int L, float dropout, uint64_t seed)
{
	us_rng		rng;
	int64_t		t = 0;
	size_t		na;

	memset(f, 0, sizeof(*f));
	f->c.architecture = US_ARCH_SASREC;
	f->c.embed_dim = E;
	f->c.n_heads = nh;
	f->c.n_blocks = L;
	f->c.max_len = MAXLEN;
	f->c.dropout = dropout;
	f->np = us_attn_param_count(&f->c);
	f->params = calloc(f->np, sizeof(float));
	us_attn_bind(&f->c, f->params, &f->ap);
	us_rng_seed(&rng, seed);
	us_attn_init(&f->c, &f->ap, &rng, 0.5);
	/* non-trivial norms and biases, so their gradients are checked away from 1 / 0 */
	for (size_t i = 0; i < f->np; i++)
		f->params[i] += (float) (0.1 * us_rng_normal(&rng));
	for (int i = 0; i < U_IN * E; i++)
		f->X[i] = (float) us_rng_normal(&rng);
	for (int s = 0; s < NS; s++)
	{
		f->seq_tok[s] = t;
		f->keys[s] = 100 + s;
		for (int i = 0; i < lens[s]; i++, t++)
			f->tok_u[t] = (int32_t) us_rng_below(&rng, U_IN);
	}
	f->seq_tok[NS] = t;
	for (int64_t i = 0; i < t * E; i++)
		f->R[i] = (float) us_rng_normal(&rng);
	f->b.nseq = NS;
	f->b.seq_tok = f->seq_tok;
	f->b.T = t;
	f->b.tok_u = f->tok_u;
	f->b.X = f->X;
	f->b.seq_key = f->keys;
	f->b.dropout = dropout > 0.0f;
	f->b.drop_seed = 12345;
	na = us_attn_arena_floats(&f->c, f->seq_tok, NS, 1);
	f->arena = calloc(na, sizeof(float));
}

static double
loss(fix *f)
{
	const float *out = us_attn_forward(&f->c, &f->ap, &f->b, f->arena);
	double		l = 0.0;

	for (int64_t i = 0; i < f->b.T * f->c.embed_dim; i++)
		l += (double) out[i] * f->R[i];
	return l;
}

/* central difference of the loss at *x */
static double
numeric(fix *f, float *x, double eps)
{
	float		save = *x;
	double		lp,
				lm;

	*x = save + (float) eps;
	lp = loss(f);
	*x = save - (float) eps;
	lm = loss(f);
	*x = save;
	return (lp - lm) / (2.0 * eps);
}

/*
 * The floor is the numeric derivative's own noise: the loss sums ~1,000 fp32 outputs, whose
 * rounding (it depends on the BLAS kernel) moves a central difference by up to ~3e-4.
 */
static double
rel_err(double n, double a)
{
	return fabs(n - a) / fmax(2e-2, fabs(n) + fabs(a));
}

/*
 * Error of the analytic derivative a at *x: the central difference; else Richardson's
 * extrapolation of two central differences (layer norms over few dimensions are strongly
 * curved); else, when a relu kink lies inside the step, the better of the one-sided
 * differences with a step 8 times smaller (the kink is then on one side of it).
 */
static double
grad_err(fix *f, float *x, double a)
{
	double		eps = 1e-2,
				e = rel_err(numeric(f, x, eps), a);

	if (e > 1e-2)
		e = fmin(e, rel_err((4.0 * numeric(f, x, eps / 2) - numeric(f, x, eps)) / 3.0, a));
	if (e > 1e-2)
	{
		float		save = *x;
		double		l0 = loss(f),
					lp,
					lm;

		*x = save + (float) (eps / 8);
		lp = loss(f);
		*x = save - (float) (eps / 8);
		lm = loss(f);
		*x = save;
		e = fmin(e, fmin(rel_err((lp - l0) / (eps / 8), a), rel_err((l0 - lm) / (eps / 8), a)));
	}
	return e;
}

static void
check_case(int E, int nh, int L, float dropout)
{
	fix			f;
	float	   *g;
	float		dX[U_IN * 16];
	us_attn_params ga;
	double		worst = 0.0;
	size_t		worst_i = 0;
	int			n_checked = 0;
	char		name[64];

	fix_init(&f, E, nh, L, dropout, 7 + (uint64_t) E * 31 + (uint64_t) nh * 7 + (uint64_t) L);
	g = calloc(f.np, sizeof(float));
	us_attn_bind(&f.c, g, &ga);
	memset(dX, 0, sizeof dX);
	loss(&f);
	us_attn_backward(&f.c, &f.ap, &f.b, f.arena, f.R, &ga, dX);

	for (size_t i = 0; i < f.np; i++)
	{
		double		err = grad_err(&f, &f.params[i], g[i]);

		n_checked++;
		if (err > worst)
		{
			worst = err;
			worst_i = i;
		}
	}
	snprintf(name, sizeof name, "E=%d heads=%d blocks=%d dropout=%.1f", E, nh, L, dropout);
	CHECK(worst < 2e-2, "%s: parameter %zu of %zu relative error %.3g (analytic %g numeric %g)",
		  name, worst_i, f.np, worst, g[worst_i], numeric(&f, &f.params[worst_i], 1e-2));
	printf("ok   gradcheck %s: %d parameters, worst relative error %.2e\n", name, n_checked, worst);

	worst = 0.0;
	for (int i = 0; i < U_IN * E; i++)
	{
		double		err = grad_err(&f, &f.X[i], dX[i]);

		worst = err > worst ? err : worst;
	}
	CHECK(worst < 2e-2, "%s: input gradient relative error %.3g", name, worst);
	printf("ok   gradcheck %s: %d inputs, worst relative error %.2e\n", name, U_IN * E, worst);
	free(g);
	free(f.params);
	free(f.arena);
}

/* changing the last event of a sequence changes no earlier position's output */
static void
check_causal(void)
{
	fix			f;
	int			E = 8;
	float	   *before;
	const float *out;
	int64_t		s3 = 3;			/* the max_len sequence */
	int64_t		last;
	int			same = 1,
				moved = 0;

	fix_init(&f, E, 2, 2, 0.0f, 3);
	before = malloc((size_t) f.b.T * E * sizeof(float));
	out = us_attn_forward(&f.c, &f.ap, &f.b, f.arena);
	memcpy(before, out, (size_t) f.b.T * E * sizeof(float));
	last = f.seq_tok[s3 + 1] - 1;
	f.tok_u[last] = (f.tok_u[last] + 1) % U_IN;
	out = us_attn_forward(&f.c, &f.ap, &f.b, f.arena);
	for (int64_t t = 0; t < f.b.T; t++)
		for (int e = 0; e < E; e++)
		{
			float		d = out[t * E + e] - before[t * E + e];

			if (t == last)
				moved |= d != 0.0f;
			else
				same &= d == 0.0f;
		}
	CHECK(same && moved, "causal: earlier positions unchanged (%d), last moved (%d)", same, moved);
	free(before);
	free(f.params);
	free(f.arena);
}

/* the outputs of a sequence are the same alone and inside a batch, with dropout on */
static void
check_slices(void)
{
	fix			f;
	int			E = 8;
	float	   *whole;
	const float *out;
	us_attn_batch one;
	int			s = 4;
	int64_t		n = lens[s];
	int			same = 1;

	fix_init(&f, E, 2, 1, 0.3f, 5);
	whole = malloc((size_t) f.b.T * E * sizeof(float));
	out = us_attn_forward(&f.c, &f.ap, &f.b, f.arena);
	memcpy(whole, out, (size_t) f.b.T * E * sizeof(float));
	{
		int64_t		st[2] = {0, n};

		one = f.b;
		one.nseq = 1;
		one.seq_tok = st;
		one.T = n;
		one.tok_u = f.tok_u + f.seq_tok[s];
		one.seq_key = f.keys + s;
		out = us_attn_forward(&f.c, &f.ap, &one, f.arena);
		for (int64_t i = 0; i < n * E; i++)
			same &= fabsf(out[i] - whole[f.seq_tok[s] * E + i]) <= 1e-5f;
	}
	CHECK(same, "dropout masks and outputs independent of the batch slice");
	free(whole);
	free(f.params);
	free(f.arena);
}

int
main(void)
{
	check_case(8, 1, 1, 0.0f);
	check_case(8, 2, 2, 0.0f);
	check_case(8, 4, 1, 0.3f);
	check_case(4, 2, 2, 0.3f);
	check_causal();
	check_slices();
	return unit_finish("test_attn");
}
