/*
 * test_metrics_curve.c: ROC curve points and multiclass metrics of src/core/metrics.c,
 * checked against values worked out by hand and against us_roc_auc (trapezoid area).
 */
#include <math.h>

#include "unit.h"
#include "userseq/us_metrics.h"

int
main(void)
{
	const us_allocator *a = us_malloc_allocator();

	/* scores with a tie group: 0.9(+) 0.8(-) 0.5(+) 0.5(-) 0.1(-) */
	{
		double		s[] = {0.5, 0.9, 0.1, 0.8, 0.5};
		uint8_t		y[] = {1, 1, 0, 0, 0};
		double	   *th,
				   *tpr,
				   *fpr,
					area = 0.0,
					auc;
		size_t		np;

		CHECK_OK(us_roc_curve(s, y, NULL, 5, a, &th, &tpr, &fpr, &np));
		CHECK(np == 5, "5 points (start + 4 distinct scores), got %zu", np);
		CHECK(isinf(th[0]) && tpr[0] == 0 && fpr[0] == 0, "start point");
		CHECK(th[1] == 0.9 && tpr[1] == 0.5 && fpr[1] == 0.0, "point 0.9");
		CHECK(th[2] == 0.8 && tpr[2] == 0.5 && fabs(fpr[2] - 1.0 / 3) < 1e-12, "point 0.8");
		CHECK(th[3] == 0.5 && tpr[3] == 1.0 && fabs(fpr[3] - 2.0 / 3) < 1e-12, "tie group in one step");
		CHECK(th[4] == 0.1 && tpr[4] == 1.0 && fpr[4] == 1.0, "end point");
		for (size_t i = 1; i < np; i++)
			area += (fpr[i] - fpr[i - 1]) * (tpr[i] + tpr[i - 1]) / 2;
		CHECK_OK(us_roc_auc(s, y, NULL, 5, a, &auc));
		CHECK(fabs(area - auc) < 1e-12, "trapezoid area %g equals rank AUC %g", area, auc);
		a->free(a->ctx, th);
		a->free(a->ctx, tpr);
		a->free(a->ctx, fpr);
	}
	/* no negatives: fpr NaN, tpr defined */
	{
		double		s[] = {0.2, 0.3};
		uint8_t		y[] = {1, 1};
		double	   *th,
				   *tpr,
				   *fpr;
		size_t		np;

		CHECK_OK(us_roc_curve(s, y, NULL, 2, a, &th, &tpr, &fpr, &np));
		CHECK(np == 3 && isnan(fpr[1]) && tpr[2] == 1.0, "one class only");
		a->free(a->ctx, th);
		a->free(a->ctx, tpr);
		a->free(a->ctx, fpr);
	}
	/* multiclass: 3 classes, 4 examples, one unknown label */
	{
		double		p[] = {0.7, 0.2, 0.1,
						   0.1, 0.8, 0.1,
						   0.3, 0.3, 0.4,
						   0.5, 0.25, 0.25};
		int32_t		y[] = {0, 2, 2, 7};
		us_multiclass_metrics m;

		CHECK_OK(us_multiclass_metrics_compute(p, y, NULL, 4, 3, a, &m));
		CHECK(fabs(m.accuracy - 0.5) < 1e-12, "accuracy %g", m.accuracy);
		/* predictions 0,1,2,0; class 0: P 1/2 R 1; class 1: P 0 R 0; class 2: P 1 R 1/2 */
		CHECK(fabs(m.precision - (0.5 + 0 + 1) / 3) < 1e-12, "macro precision %g", m.precision);
		CHECK(fabs(m.recall - (1 + 0 + 0.5) / 3) < 1e-12, "macro recall %g", m.recall);
		CHECK(fabs(m.f1 - (2.0 / 3 + 0 + 2.0 / 3) / 3) < 1e-12, "macro f1 %g", m.f1);
		CHECK(fabs(m.log_loss - (-log(0.7) - log(0.1) - log(0.4) - log(1e-15)) / 4) < 1e-9,
			  "log loss %g", m.log_loss);
	}
	return unit_finish("test_metrics_curve");
}
