/*
 * test_quantize.c: int8 models (us_model_quantize, format version 4): the error bound per
 * weight (half a group scale), biases untouched, idempotence, encode -> decode -> encode
 * byte-identical and decoded weights bit-identical to the quantized model, scores close to
 * fp32, size >= 3.5x smaller than fp32 at the default shapes, hostile int8 bytes rejected.
 */
#include <string.h>

#include "userseq/us_format.h"
#include "userseq/us_model.h"
#include "unit.h"
#include "model_fixture.h"

static uint8_t *
encode(const us_model *m, size_t *n)
{
	uint8_t    *b;

	*n = us_model_encoded_size(m);
	b = malloc(*n);
	if (b && us_model_encode(m, b, *n) != US_OK)
	{
		free(b);
		return NULL;
	}
	return b;
}

/* the error bound: every weight within scale/2 of the original, scale = group max / 127 */
static void
test_error_bound(void)
{
	for (int v = 0; v < FIXTURE_N_VARIANTS; v++)
	{
		fixture_opts o;
		us_model   *m = NULL,
				   *q = NULL;
		double		err = -1;
		size_t		E;
		int			ok = 1;

		fixture_variant(&o, v);
		CHECK_OK(fixture_model(&o, 500 + v, &m));
		CHECK_OK(us_model_clone(m, us_malloc_allocator(), &q));
		if (!m || !q)
			continue;
		CHECK_OK(us_model_quantize(q, &err));
		CHECK(q->quantized == 1, "flag set");
		E = (size_t) m->cfg.embed_dim;
		/* item rows: per row */
		for (int32_t r = 0; r < m->cfg.n_items; r++)
		{
			float		amax = 0;

			for (size_t j = 0; j < E; j++)
				amax = fmaxf(amax, fabsf(m->p.item_emb[r * E + j]));
			for (size_t j = 0; j < E; j++)
				ok &= fabsf(q->p.item_emb[r * E + j] - m->p.item_emb[r * E + j]) <= amax / 127.0f * 0.5f * 1.0001f;
		}
		CHECK(ok, "variant %d: item rows within half a step of their row's scale", v);
		/* conv: per filter */
		ok = 1;
		for (int w = 0; w < m->cfg.n_widths; w++)
		{
			size_t		F = (size_t) m->cfg.n_filters,
						KE = (size_t) m->cfg.widths[w] * E;

			for (size_t f = 0; f < F; f++)
			{
				float		amax = 0;

				for (size_t i = 0; i < KE; i++)
					amax = fmaxf(amax, fabsf(m->p.conv_w[w][i * F + f]));
				for (size_t i = 0; i < KE; i++)
					ok &= fabsf(q->p.conv_w[w][i * F + f] - m->p.conv_w[w][i * F + f]) <= amax / 127.0f * 0.5f * 1.0001f;
			}
			ok &= memcmp(q->p.conv_b[w], m->p.conv_b[w], F * 4) == 0;
		}
		CHECK(ok, "variant %d: filters within half a step, conv biases fp32", v);
		CHECK(memcmp(q->p.dense_b, m->p.dense_b, (size_t) m->cfg.hidden_dim * 4) == 0 &&
			  memcmp(q->p.out_b, m->p.out_b, (size_t) m->cfg.n_outputs * 4) == 0, "variant %d: biases fp32", v);
		CHECK(err > 0 && err < 0.05, "variant %d: max error %g", v, err);
		/* idempotent */
		{
			us_model   *q2 = NULL;
			double		e2 = -1;

			CHECK_OK(us_model_clone(q, us_malloc_allocator(), &q2));
			CHECK_OK(us_model_quantize(q2, &e2));
			CHECK(e2 == 0 && memcmp(q2->params_block, q->params_block, q->n_params * 4) == 0,
				  "variant %d: quantizing twice changes nothing (%g)", v, e2);
			us_model_free(q2);
		}
		/* round trip */
		{
			size_t		n1,
						n2;
			uint8_t    *b1 = encode(q, &n1),
					   *b2 = NULL;
			us_model   *d = NULL;
			us_format_header h;

			CHECK(b1 != NULL, "variant %d encodes", v);
			if (b1)
			{
				CHECK_OK(us_format_peek(b1, n1, &h));
				CHECK(h.version == 4, "variant %d: int8 model is format version 4", v);
				CHECK_OK(us_model_decode(b1, n1, us_malloc_allocator(), &d));
			}
			if (d)
			{
				CHECK(d->quantized == 1, "decoded as int8");
				CHECK(memcmp(d->params_block, q->params_block, q->n_params * 4) == 0,
					  "variant %d: decoded weights bit-identical to the quantized model", v);
				b2 = encode(d, &n2);
				CHECK(b2 && n2 == n1 && memcmp(b1, b2, n1) == 0, "variant %d: re-encode byte-identical", v);
			}
			free(b1);
			free(b2);
			us_model_free(d);
		}
		us_model_free(m);
		us_model_free(q);
	}
}

/* default shapes (E = F = H = 128, widths 3,4,5): >= 3.5x smaller; scores close */
static void
test_size_and_scores(void)
{
	static const int tasks[3] = {US_TASK_BINARY, US_TASK_NEXT_ITEM, US_TASK_MULTICLASS};

	for (int k = 0; k < 3; k++)
	{
		fixture_opts o;
		us_model   *m = NULL,
				   *q = NULL;
		us_scorer  *s1 = NULL,
				   *s2 = NULL;
		size_t		n32,
					n8;
		double		worst = 0;
		float	   *o1,
				   *o2;
		int32_t		items[40],
					behs[40];

		fixture_default(&o, tasks[k]);
		o.n_vocab = 2000;
		o.E = o.F = o.H = 128;
		o.n_widths = 3;
		o.widths[0] = 3;
		o.widths[1] = 4;
		o.widths[2] = 5;
		o.max_len = 50;
		o.behaviors = 1;
		CHECK_OK(fixture_model(&o, 77, &m));
		CHECK_OK(us_model_clone(m, us_malloc_allocator(), &q));
		if (!m || !q)
			return;
		CHECK_OK(us_model_quantize(q, NULL));
		n32 = us_model_encoded_size(m);
		n8 = us_model_encoded_size(q);
		printf("  %s, 2000 items, E=F=H=128: fp32 %zu bytes, int8 %zu bytes, %.2fx\n",
			   us_task_name(tasks[k]), n32, n8, (double) n32 / n8);
		CHECK((double) n32 / n8 >= 3.5, "%s: %.2fx smaller, want >= 3.5", us_task_name(tasks[k]),
			  (double) n32 / n8);
		CHECK_OK(us_scorer_create(m, 0, us_malloc_allocator(), &s1));
		CHECK_OK(us_scorer_create(q, 0, us_malloc_allocator(), &s2));
		o1 = malloc(sizeof(float) * (size_t) m->cfg.n_outputs);
		o2 = malloc(sizeof(float) * (size_t) m->cfg.n_outputs);
		for (int s = 0; s < 20 && s1 && s2; s++)
		{
			us_events	ev = {items, behs, NULL, 10 + s};

			for (int i = 0; i < ev.n; i++)
			{
				items[i] = 2 + (s * 37 + i * 11) % 2000;
				behs[i] = 2 + (s + i) % 4;
			}
			CHECK_OK(us_scorer_forward(s1, &ev, o1, NULL));
			CHECK_OK(us_scorer_forward(s2, &ev, o2, NULL));
			for (int j = 0; j < m->cfg.n_outputs; j++)
				worst = fmax(worst, fabs(o1[j] - o2[j]) / fmax(1.0, fabs(o1[j])));
		}
		printf("  %s: max relative output difference int8 vs fp32 %.3g\n", us_task_name(tasks[k]), worst);
		CHECK(worst < 0.05, "%s: int8 outputs within 5%% of fp32 (%g)", us_task_name(tasks[k]), worst);
		free(o1);
		free(o2);
		us_scorer_free(s1);
		us_scorer_free(s2);
		us_model_free(m);
		us_model_free(q);
	}
}

/*
 * The SQL default shapes (E = F = H = 64, widths 2, 3, 4), where the vocabulary matters: an
 * item row costs 256 bytes in fp32, 68 in int8, and its id and count 12 bytes in versions 1-3.
 * Zipf-like counts in shuffled order, ids 7 apart. >= 3.5x smaller at 4,096 items, and also
 * per item added (the bytes 2,048 more items cost), which is the ratio a large vocabulary
 * tends to.
 */
static void
test_size_sql_defaults(void)
{
	static const int tasks[2] = {US_TASK_BINARY, US_TASK_NEXT_ITEM};

	for (int k = 0; k < 2; k++)
	{
		size_t		n32[2],
					n8[2];
		double		total,
					marginal;

		for (int half = 0; half < 2; half++)
		{
			fixture_opts o;
			us_model   *m = NULL;

			fixture_default(&o, tasks[k]);
			o.n_vocab = half ? 4096 : 2048;
			o.E = o.F = o.H = 64;
			o.n_widths = 3;
			o.widths[0] = 2;
			o.widths[1] = 3;
			o.widths[2] = 4;
			o.max_len = 50;
			CHECK_OK(fixture_model(&o, 78, &m));
			if (!m)
				return;
			for (int32_t i = 0; i < m->vocab.n_items; i++)
				m->vocab.item_counts[i] = 1 + 50000u / (1 + (uint32_t) i * 2654435761u % (uint32_t) m->vocab.n_items);
			n32[half] = us_model_encoded_size(m);
			CHECK_OK(us_model_quantize(m, NULL));
			n8[half] = us_model_encoded_size(m);
			us_model_free(m);
		}
		total = (double) n32[1] / n8[1];
		marginal = (double) (n32[1] - n32[0]) / (n8[1] - n8[0]);
		printf("  %s, E=F=H=64: 4096 items fp32 %zu bytes, int8 %zu bytes, %.2fx; per item added"
			   " %.1f / %.1f bytes, %.2fx\n", us_task_name(tasks[k]), n32[1], n8[1], total,
			   (double) (n32[1] - n32[0]) / 2048, (double) (n8[1] - n8[0]) / 2048, marginal);
		CHECK(total >= 3.5, "%s at E = 64: %.2fx smaller, want >= 3.5", us_task_name(tasks[k]), total);
		CHECK(marginal >= 3.5, "%s at E = 64: %.2fx per item added, want >= 3.5",
			  us_task_name(tasks[k]), marginal);
	}
}

/* hostile int8 parameters: -128 codes, negative / huge / NaN scales, truncation */
static void
test_hostile(void)
{
	fixture_opts o;
	us_model   *m = NULL,
			   *d = NULL;
	size_t		n;
	uint8_t    *b;
	size_t		params_at;
	uint32_t	crc;

	fixture_default(&o, US_TASK_BINARY);
	CHECK_OK(fixture_model(&o, 3, &m));
	CHECK_OK(us_model_quantize(m, NULL));
	b = encode(m, &n);
	if (!b)
		return;
	/*
	 * The parameters start after n_params; the first tensor is the item table: its scales.
	 * Before n_params: the config, the vocabulary counts, 2 varints an item (each ends at a
	 * byte below 0x80), no labels (binary, no behaviours).
	 */
	params_at = 32 + 88 + 12;
	for (int32_t k = 0; k < 2 * m->vocab.n_items; k++)
		while (b[params_at++] & 0x80)
			;
	params_at += 8;
#define REPAIR() do { crc = us_crc32c(0, b + 32, n - 32); b[24] = (uint8_t) crc; b[25] = (uint8_t) (crc >> 8); \
		b[26] = (uint8_t) (crc >> 16); b[27] = (uint8_t) (crc >> 24); } while (0)
#define REPAIR_C() do { crc = us_crc32c(0, c + 32, n - 32); c[24] = (uint8_t) crc; c[25] = (uint8_t) (crc >> 8); \
		c[26] = (uint8_t) (crc >> 16); c[27] = (uint8_t) (crc >> 24); } while (0)
	{
		uint8_t    *c = malloc(n);
		float		bad[3] = {-1.0f, 1e5f, NAN};
		us_status	want[3] = {US_ERANGE, US_ERANGE, US_ENONFINITE};

		for (int k = 0; k < 3; k++)
		{
			uint32_t	u;

			memcpy(c, b, n);
			memcpy(&u, &bad[k], 4);
			c[params_at + 4 * 3] = (uint8_t) u;
			c[params_at + 4 * 3 + 1] = (uint8_t) (u >> 8);
			c[params_at + 4 * 3 + 2] = (uint8_t) (u >> 16);
			c[params_at + 4 * 3 + 3] = (uint8_t) (u >> 24);
			crc = us_crc32c(0, c + 32, n - 32);
			c[24] = (uint8_t) crc;
			c[25] = (uint8_t) (crc >> 8);
			c[26] = (uint8_t) (crc >> 16);
			c[27] = (uint8_t) (crc >> 24);
			CHECK(us_model_decode(c, n, us_malloc_allocator(), &d) == want[k], "bad scale %d rejected", k);
		}
		/* a -128 code in the item table */
		memcpy(c, b, n);
		c[params_at + 4 * (size_t) m->cfg.n_items + 5] = 0x80;
		crc = us_crc32c(0, c + 32, n - 32);
		c[24] = (uint8_t) crc;
		c[25] = (uint8_t) (crc >> 8);
		c[26] = (uint8_t) (crc >> 16);
		c[27] = (uint8_t) (crc >> 24);
		CHECK(us_model_decode(c, n, us_malloc_allocator(), &d) == US_EFORMAT, "-128 code rejected");

		/*
		 * Groups the encoder never writes (found by fuzz_decode): they would decode to a model
		 * whose encoding differs. Item row 3: codes zeroed under a non-zero scale, then its
		 * largest code lowered so that max |q| < 127; padding row 0 (all zero): scale -0.
		 */
		{
			size_t		E = (size_t) m->cfg.embed_dim,
						row3 = params_at + 4 * (size_t) m->cfg.n_items + 3 * E,
						big = row3;

			memcpy(c, b, n);
			memset(c + row3, 0, E);
			REPAIR_C();
			CHECK(us_model_decode(c, n, us_malloc_allocator(), &d) == US_EFORMAT,
				  "zero codes under a non-zero scale rejected");
			memcpy(c, b, n);
			for (size_t j = 0; j < E; j++)
				if (abs((int8_t) c[row3 + j]) > abs((int8_t) c[big]))
					big = row3 + j;
			CHECK(abs((int8_t) c[big]) == 127, "the encoder writes max |q| = 127 (%d)", (int8_t) c[big]);
			c[big] = (uint8_t) ((int8_t) c[big] > 0 ? 126 : -126);
			REPAIR_C();
			CHECK(us_model_decode(c, n, us_malloc_allocator(), &d) == US_EFORMAT,
				  "a group whose largest code is 126 rejected");
			memcpy(c, b, n);
			c[params_at + 3] = 0x80;	/* scale of row 0: +0 -> -0 */
			REPAIR_C();
			CHECK(us_model_decode(c, n, us_malloc_allocator(), &d) == US_EFORMAT, "scale -0 rejected");
			memcpy(c, b, n);
			REPAIR_C();
			CHECK(us_model_decode(c, n, us_malloc_allocator(), &d) == US_OK, "the unchanged bytes decode");
			us_model_free(d);
			d = NULL;
		}
		/* one byte short (header size adjusted) */
		memcpy(c, b, n);
		c[16] = (uint8_t) (n - 1);
		c[17] = (uint8_t) ((n - 1) >> 8);
		c[18] = (uint8_t) ((n - 1) >> 16);
		crc = us_crc32c(0, c + 32, n - 33);
		c[24] = (uint8_t) crc;
		c[25] = (uint8_t) (crc >> 8);
		c[26] = (uint8_t) (crc >> 16);
		c[27] = (uint8_t) (crc >> 24);
		CHECK(us_model_decode(c, n - 1, us_malloc_allocator(), &d) == US_EFORMAT, "short parameter section rejected");
		free(c);
	}
#undef REPAIR
#undef REPAIR_C
	free(b);
	us_model_free(m);
}

int
main(void)
{
	test_error_bound();
	test_size_and_scores();
	test_size_sql_defaults();
	test_hostile();
	return unit_finish("test_quantize");
}
