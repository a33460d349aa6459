/*
 * test_metrics.c: metric definitions against brute force and hand-computed cases.
 */
#include "unit.h"

#include "userseq/us_status.h"

#include "userseq/us_metrics.h"
#include "userseq/us_rng.h"

static double
pairwise_auc(const double *s, const uint8_t *y, size_t n)
{
	double		num = 0,
				den = 0;

	for (size_t i = 0; i < n; i++)
		for (size_t j = 0; j < n; j++)
			if (y[i] && !y[j])
			{
				num += s[i] > s[j] ? 1.0 : s[i] == s[j] ? 0.5 : 0.0;
				den += 1;
			}
	return num / den;
}

int
main(void)
{
	const us_allocator *a = us_malloc_allocator();
	us_rng		rng;
	double		s[300];
	uint8_t		y[300];
	double		auc;

	/* AUC with many ties equals the pairwise definition */
	us_rng_seed(&rng, 7);
	for (int i = 0; i < 300; i++)
	{
		s[i] = (double) us_rng_below(&rng, 6);
		y[i] = us_rng_uniform(&rng) < 0.4;
	}
	CHECK_OK(us_roc_auc(s, y, NULL, 300, a, &auc));
	CHECK(fabs(auc - pairwise_auc(s, y, 300)) < 1e-12, "auc %f vs pairwise %f", auc, pairwise_auc(s, y, 300));

	/* perfect, inverted, constant, one class */
	{
		double		s4[] = {0.1, 0.2, 0.8, 0.9};
		uint8_t		y4[] = {0, 0, 1, 1};
		uint8_t		yi[] = {1, 1, 0, 0};
		double		c4[] = {0.5, 0.5, 0.5, 0.5};
		uint8_t		y1[] = {1, 1, 1, 1};

		CHECK_OK(us_roc_auc(s4, y4, NULL, 4, a, &auc));
		CHECK(auc == 1.0, "perfect auc %f", auc);
		CHECK_OK(us_roc_auc(s4, yi, NULL, 4, a, &auc));
		CHECK(auc == 0.0, "inverted auc %f", auc);
		CHECK_OK(us_roc_auc(c4, y4, NULL, 4, a, &auc));
		CHECK(auc == 0.5, "constant auc %f", auc);
		CHECK_OK(us_roc_auc(s4, y1, NULL, 4, a, &auc));
		CHECK(isnan(auc), "one-class auc is NaN");
	}

	/* weights: weight 2 equals duplicating the example */
	{
		double		sw[] = {0.3, 0.6, 0.4};
		uint8_t		yw[] = {1, 0, 0};
		double		ww[] = {2.0, 1.0, 1.0};
		double		sd[] = {0.3, 0.3, 0.6, 0.4};
		uint8_t		yd[] = {1, 1, 0, 0};
		double		auc2;

		CHECK_OK(us_roc_auc(sw, yw, ww, 3, a, &auc));
		CHECK_OK(us_roc_auc(sd, yd, NULL, 4, a, &auc2));
		CHECK(fabs(auc - auc2) < 1e-12, "weighted auc %f vs duplicated %f", auc, auc2);
	}

	/* binary metrics by hand: tp=2 fp=1 fn=1 tn=1 */
	{
		double		p[] = {0.9, 0.8, 0.7, 0.2, 0.1};
		uint8_t		l[] = {1, 1, 0, 1, 0};
		us_binary_metrics m;

		us_binary_metrics_compute(p, l, NULL, 5, 0.5, &m);
		CHECK(m.tp == 2 && m.fp == 1 && m.fn == 1 && m.tn == 1, "confusion counts");
		CHECK(fabs(m.accuracy - 0.6) < 1e-12, "accuracy %f", m.accuracy);
		CHECK(fabs(m.precision - 2.0 / 3) < 1e-12, "precision %f", m.precision);
		CHECK(fabs(m.recall - 2.0 / 3) < 1e-12, "recall %f", m.recall);
		CHECK(fabs(m.f1 - 2.0 / 3) < 1e-12, "f1 %f", m.f1);
		CHECK(fabs(m.log_loss - (-(log(0.9) + log(0.8) + log(0.3) + log(0.2) + log(0.9)) / 5)) < 1e-12,
			  "log loss %f", m.log_loss);
	}

	/* regression by hand */
	{
		double		pr[] = {1, 2, 3};
		double		tr[] = {1, 3, 5};
		us_regression_metrics r;

		us_regression_metrics_compute(pr, tr, NULL, 3, &r);
		CHECK(fabs(r.mse - 5.0 / 3) < 1e-12, "mse %f", r.mse);
		CHECK(fabs(r.mae - 1.0) < 1e-12, "mae %f", r.mae);
		CHECK(fabs(r.r2 - (1 - 5.0 / 8)) < 1e-12, "r2 %f", r.r2);
	}

	/* ranking: ties count against the target; skip excludes candidates */
	{
		float		sc[] = {0.5f, 0.5f, 0.1f, 0.9f};
		uint8_t		skip[] = {0, 0, 0, 1};
		int			ks[] = {1, 2, 3};
		double		hr[3],
					nd[3],
					mrr;
		us_ranking_metrics m;

		CHECK(us_rank_of_target(sc, 4, 0, NULL) == 3, "tie + better -> rank 3");
		CHECK(us_rank_of_target(sc, 4, 0, skip) == 2, "skip removes the better one");
		CHECK(us_rank_of_target(sc, 4, 3, NULL) == 1, "best is rank 1");
		us_ranking_init(&m, ks, 3);
		us_ranking_add(&m, 1);
		us_ranking_add(&m, 3);
		us_ranking_result(&m, hr, nd, &mrr);
		CHECK(hr[0] == 0.5 && hr[1] == 0.5 && hr[2] == 1.0, "hit rates");
		CHECK(fabs(nd[2] - (1.0 + 1.0 / 2.0) / 2) < 1e-12, "ndcg@3 %f", nd[2]);
		CHECK(fabs(mrr - (1.0 + 1.0 / 3) / 2) < 1e-12, "mrr %f", mrr);
	}
	return unit_finish("test_metrics");
}
