/*
 * explain.c: per-event attributions of one sequence (integrated gradients, gradient x input)
 * by backpropagation to each event's summed input vector.
 *
 * Along the integrated-gradients path the input is a * x (a in [0, 1]). Every convolution
 * window sum is linear in the input, so window p of width i and filter f is
 * b_if + a * S_if(p) with S the bias-free window sum of x: the max over windows is
 * b_if + a * M_if with M = max_p S and the argmax does not depend on a (a > 0). So the
 * convolution runs once (one GEMM per tap) and a path point costs only the pooled relu, the
 * dense layer and the head, batched over the points as GEMMs.
 *
 * Up to the head the network is then piecewise linear in a: the pooled relus switch at
 * a = -b/M, the dense relus where their (piecewise linear) pre-activation crosses zero. The
 * path is cut at the steps' grid and at every such kink, and each piece contributes its
 * length times the gradient at its middle: exact for the linear heads (regression, next_item
 * logit), exact for binary through the sigmoid's mean slope on the piece, and the midpoint
 * rule on each piece for the softmax heads. Completeness (sum = f(x) - f(baseline)) is then a
 * matter of float rounding, not of the step count, except for softmax curvature.
 *
 * The input gradient is linear in the pooled gradient (dx_t = sum over filters whose argmax
 * window covers t of dz W_i[t - argmax, :, f], plus the recent window's copies), so the
 * pieces' gradients are summed first and pushed back to the events once (input_grad).
 * The forward agrees with us_scorer_forward to float rounding and the gradient with finite
 * differences (test/unit/test_explain.c).
 */
#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "userseq/us_model.h"
#include "us_internal.h"

typedef struct attr_ws
{
	const us_allocator *alloc;
	void	   *blocks[32];
	int			n_blocks;
} attr_ws;

static void *
ws_alloc(attr_ws *w, size_t n, size_t elem)
{
	size_t		bytes;
	void	   *p;

	if (!us_mul_size(n ? n : 1, elem, &bytes) || w->n_blocks >= 32)
		return NULL;
	p = w->alloc->alloc(w->alloc->ctx, bytes);
	if (p)
	{
		memset(p, 0, bytes);
		w->blocks[w->n_blocks++] = p;
	}
	return p;
}

static void
ws_release(attr_ws *w)
{
	for (int i = 0; i < w->n_blocks; i++)
		w->alloc->free(w->alloc->ctx, w->blocks[i]);
	w->n_blocks = 0;
}

/* the summed input vector of each kept event (as the trainer's gather: item, + beh, + gap) */
static us_status
input_vectors(const us_model *model, const us_events *ev, int32_t start, int32_t n, float *X)
{
	const us_model_config *c = &model->cfg;
	int			E = c->embed_dim;

	for (int32_t t = 0; t < n; t++)
	{
		int32_t		it = ev->items[start + t];
		int32_t		bh = ev->behaviors ? ev->behaviors[start + t] : 0;
		int32_t		gp = ev->gaps ? ev->gaps[start + t] : 0;
		float	   *x = X + (size_t) t * E;

		if (it < 0 || it >= c->n_items || bh < 0 || gp < 0 ||
			(c->n_behaviors > 0 && bh >= c->n_behaviors) ||
			(c->n_gap_buckets > 0 && gp >= c->n_gap_buckets))
			return US_EINVAL;
		memcpy(x, model->p.item_emb + (size_t) it * E, (size_t) E * sizeof(float));
		if (c->n_behaviors > 0 && bh > 0)
			for (int e = 0; e < E; e++)
				x[e] += model->p.behavior_emb[(size_t) bh * E + e];
		if (c->n_gap_buckets > 0 && gp > 0)
			for (int e = 0; e < E; e++)
				x[e] += model->p.gap_emb[(size_t) gp * E + e];
	}
	return US_OK;
}

/*
 * Forward of the convolutions without bias: M (W*F) the max window sum, am (W*F) its first
 * window. Y (n, F) scratch per tap. A sequence shorter than a width has one window holding
 * its events (the rest are zero vectors).
 */
static void
conv_max(const us_model *model, const float *X, int32_t n, float *Y, float *S, float *M,
		 int32_t *am)
{
	const us_model_config *c = &model->cfg;
	int			E = c->embed_dim,
				F = c->n_filters;

	for (int i = 0; i < c->n_widths; i++)
	{
		int			k = c->widths[i];
		int32_t		nwin = n >= k ? n - k + 1 : 1;

		memset(S, 0, (size_t) nwin * F * sizeof(float));
		for (int j = 0; j < k && j < n; j++)
		{
			/* tap j of window p reads event p + j */
			int32_t		rows = n - j < nwin ? n - j : nwin;

			us_gemm(0, 0, rows, F, E, 1.0f, X + (size_t) j * E, E,
					model->p.conv_w[i] + (size_t) j * E * F, F, 0.0f, Y, F);
			for (int32_t p = 0; p < rows; p++)
				for (int f = 0; f < F; f++)
					S[(size_t) p * F + f] += Y[(size_t) p * F + f];
		}
		for (int f = 0; f < F; f++)
		{
			M[i * F + f] = S[f];
			am[i * F + f] = 0;
		}
		for (int32_t p = 1; p < nwin; p++)
			for (int f = 0; f < F; f++)
				if (S[(size_t) p * F + f] > M[i * F + f])
				{
					M[i * F + f] = S[(size_t) p * F + f];
					am[i * F + f] = p;
				}
	}
}

/*
 * Head of row h (H): returns f, and dh (H) = df/dh. L (n_outputs) scratch. For binary,
 * dsig >= 0 replaces the sigmoid's derivative (the exact mean of it over a path piece).
 */
static double
head_value(const us_model *model, const float *h, int32_t target, float *L, float *dh,
		   double dsig)
{
	const us_model_config *c = &model->cfg;
	int			H = c->hidden_dim,
				V = c->n_outputs,
				E = c->embed_dim;
	const float *ow = model->p.out_w;

	if (c->task == US_TASK_BINARY || c->task == US_TASK_REGRESSION)
	{
		double		z = model->p.out_b[0],
					d;

		for (int j = 0; j < H; j++)
			z += (double) h[j] * ow[j];
		if (c->task == US_TASK_REGRESSION)
		{
			for (int j = 0; j < H; j++)
				dh[j] = ow[j];
			return z;
		}
		z = 1.0 / (1.0 + exp(-z));
		d = dsig >= 0.0 ? dsig : z * (1.0 - z);
		for (int j = 0; j < H; j++)
			dh[j] = (float) (d * ow[j]);
		return z;
	}
	if (c->task == US_TASK_NEXT_ITEM)
	{
		double		z = model->p.out_b[target];

		for (int j = 0; j < H; j++)
		{
			float		w = c->tie_output ? model->p.item_emb[(size_t) target * E + j]
				: ow[(size_t) j * V + target];

			z += (double) h[j] * w;
			dh[j] = w;
		}
		return z;
	}
	/* softmax over the classes: f = p_target, df/dlogit_v = p_t (delta_tv - p_v) */
	{
		double		mx = -DBL_MAX,
					sum = 0.0,
					pt;

		memcpy(L, model->p.out_b, (size_t) V * sizeof(float));
		for (int j = 0; j < H; j++)
			if (h[j] != 0.0f)
				for (int v = 0; v < V; v++)
					L[v] += h[j] * ow[(size_t) j * V + v];
		for (int v = 0; v < V; v++)
			mx = L[v] > mx ? L[v] : mx;
		for (int v = 0; v < V; v++)
			sum += exp((double) L[v] - mx);
		pt = exp((double) L[target] - mx) / sum;
		for (int v = 0; v < V; v++)
		{
			double		pv = exp((double) L[v] - mx) / sum;

			L[v] = (float) (pt * ((v == target ? 1.0 : 0.0) - pv));
		}
		for (int j = 0; j < H; j++)
		{
			double		s = 0.0;

			for (int v = 0; v < V; v++)
				s += (double) L[v] * ow[(size_t) j * V + v];
			dh[j] = (float) s;
		}
		return pt;
	}
}

/*
 * Input-gradient backward: dX (n, E) += the gradient reaching each event from G, the gradient
 * of the pooled features and recent window (D): through each filter's argmax window (taps
 * j < k inside the sequence) and the recent window's copies.
 */
static void
input_grad(const us_model *model, int32_t n, const int32_t *am, const float *G, float *dX)
{
	const us_model_config *c = &model->cfg;
	int			E = c->embed_dim,
				F = c->n_filters,
				R = c->recent_window,
				WF = c->n_widths * F;

	for (int i = 0; i < c->n_widths; i++)
	{
		int			k = c->widths[i];
		const float *Wi = model->p.conv_w[i];

		for (int j = 0; j < k; j++)
			for (int f = 0; f < F; f++)
			{
				float		g = G[i * F + f];
				int32_t		t = am[i * F + f] + j;
				float	   *dx = dX + (size_t) t * E;
				const float *wj = Wi + (size_t) j * E * F + f;

				if (g == 0.0f || t >= n)
					continue;
				for (int e = 0; e < E; e++)
					dx[e] += g * wj[(size_t) e * F];
			}
	}
	for (int q = 0; q < R; q++)
	{
		int32_t		t = n - R + q;

		if (t >= 0)
			for (int e = 0; e < E; e++)
				dX[(size_t) t * E + e] += G[WF + q * E + e];
	}
}

/* logit of a binary model's hidden row (the sigmoid's input) */
static double
binary_logit(const us_model *model, const float *h)
{
	double		z = model->p.out_b[0];

	for (int j = 0; j < model->cfg.hidden_dim; j++)
		z += (double) h[j] * model->p.out_w[j];
	return z;
}

/* dense pre-activations A (nr, H) of the path points a[0..nr-1]; Z (nr, D) their features */
static void
path_rows(const us_model *model, const float *M, const float *X, int32_t n, const double *a,
		  int32_t nr, float *Z, float *A)
{
	const us_model_config *c = &model->cfg;
	int			E = c->embed_dim,
				F = c->n_filters,
				H = c->hidden_dim,
				R = c->recent_window,
				WF = c->n_widths * F,
				D = us_model_feature_dim(c);

	for (int32_t r = 0; r < nr; r++)
	{
		float		al = (float) a[r];
		float	   *z = Z + (size_t) r * D;

		for (int i = 0; i < c->n_widths; i++)
			for (int f = 0; f < F; f++)
			{
				float		v = model->p.conv_b[i][f] + al * M[i * F + f];

				z[i * F + f] = v > 0.0f ? v : 0.0f;
			}
		for (int q = 0; q < R; q++)
		{
			int32_t		t = n - R + q;

			for (int e = 0; e < E; e++)
				z[WF + q * E + e] = t >= 0 ? al * X[(size_t) t * E + e] : 0.0f;
		}
		memcpy(A + (size_t) r * H, model->p.dense_b, (size_t) H * sizeof(float));
	}
	us_gemm(0, 0, nr, H, D, 1.0f, Z, D, model->p.dense_w, H, 1.0f, A, H);
}

static int
cmp_double(const void *x, const void *y)
{
	double		a = *(const double *) x,
				b = *(const double *) y;

	return (a > b) - (a < b);
}

/* sorts a[0..n-1] and drops duplicates; returns the new count */
static int32_t
sort_unique(double *a, int32_t n)
{
	int32_t		u = 0;

	qsort(a, (size_t) n, sizeof(double), cmp_double);
	for (int32_t i = 0; i < n; i++)
		if (u == 0 || a[i] > a[u - 1])
			a[u++] = a[i];
	return u;
}

us_status
us_model_attribute(const us_model *model, const us_events *events, int32_t target, int method,
				   int32_t steps, double *attr, double *fx, double *fbase)
{
	const us_model_config *c;
	attr_ws		w;
	int			E,
				F,
				H,
				D,
				WF,
				maxk = 0;
	int32_t		n,
				start,
				nwin_max,
				n_pts,
				cap,
				n_pieces;
	float	   *X,
			   *Y,
			   *S,
			   *M,
			   *Z,
			   *A,
			   *dA,
			   *dZ,
			   *G,
			   *dX,
			   *dH,
			   *L;
	double	   *pts,
			   *mid,
			   *len,
			   *dsig;
	int32_t    *am;
	us_status	st = US_OK;

	if (model == NULL || events == NULL || events->n < 0 || (events->n > 0 && events->items == NULL) ||
		(attr == NULL && events->n > 0))
		return US_EINVAL;
	c = &model->cfg;
	if (method == US_ATTR_GRADIENT_X_INPUT)
		steps = 1;
	else if (method != US_ATTR_INTEGRATED_GRADIENTS || steps < 1 || steps > 100000)
		return US_EINVAL;
	switch (c->task)
	{
		case US_TASK_BINARY:
		case US_TASK_REGRESSION:
			target = 0;
			break;
		case US_TASK_NEXT_ITEM:
			if (target < US_ROW_FIRST || target >= c->n_outputs)
				return US_EINVAL;
			break;
		default:
			if (target < 0 || target >= c->n_outputs)
				return US_EINVAL;
	}
	E = c->embed_dim;
	F = c->n_filters;
	H = c->hidden_dim;
	WF = c->n_widths * F;
	D = us_model_feature_dim(c);
	for (int i = 0; i < c->n_widths; i++)
		maxk = c->widths[i] > maxk ? c->widths[i] : maxk;
	n = events->n > c->max_len ? c->max_len : events->n;
	start = events->n - n;
	nwin_max = n > 1 ? n : 1;

	memset(&w, 0, sizeof w);
	w.alloc = &model->alloc;
	X = ws_alloc(&w, (size_t) nwin_max + maxk, (size_t) E * sizeof(float));
	Y = ws_alloc(&w, (size_t) nwin_max, (size_t) F * sizeof(float));
	S = ws_alloc(&w, (size_t) nwin_max, (size_t) F * sizeof(float));
	M = ws_alloc(&w, (size_t) WF, sizeof(float));
	am = ws_alloc(&w, (size_t) WF, sizeof(int32_t));
	G = ws_alloc(&w, (size_t) D, sizeof(float));
	dX = ws_alloc(&w, (size_t) nwin_max, (size_t) E * sizeof(float));
	L = ws_alloc(&w, (size_t) c->n_outputs, sizeof(float));
	/* path points: 0, 1, the steps' grid and the pooled relus' kinks; dense kinks added below */
	cap = steps + 2 + WF;
	pts = ws_alloc(&w, (size_t) cap, sizeof(double));
	if (!X || !Y || !S || !M || !am || !G || !dX || !L || !pts)
	{
		st = US_ENOMEM;
		goto done;
	}
	if ((st = input_vectors(model, events, start, n, X)) != US_OK)
		goto done;
	conv_max(model, X, n, Y, S, M, am);

	n_pts = 0;
	pts[n_pts++] = 0.0;
	pts[n_pts++] = 1.0;
	if (method == US_ATTR_INTEGRATED_GRADIENTS)
	{
		for (int32_t s = 1; s < steps; s++)
			pts[n_pts++] = (double) s / steps;
		for (int i = 0; i < c->n_widths; i++)
			for (int f = 0; f < F; f++)
			{
				double		m = M[i * F + f],
							a = m != 0.0 ? -(double) model->p.conv_b[i][f] / m : -1.0;

				if (a > 0.0 && a < 1.0)
					pts[n_pts++] = a;
			}
	}
	n_pts = sort_unique(pts, n_pts);
	{
		/* between these points the dense pre-activations are linear in a: find their zeros */
		int32_t		extra = 0,
					n0 = n_pts;
		double	   *more;

		Z = ws_alloc(&w, (size_t) n0, (size_t) D * sizeof(float));
		A = ws_alloc(&w, (size_t) n0, (size_t) H * sizeof(float));
		if (!Z || !A)
		{
			st = US_ENOMEM;
			goto done;
		}
		path_rows(model, M, X, n, pts, n0, Z, A);
		if (method == US_ATTR_INTEGRATED_GRADIENTS)
			for (int32_t p = 0; p + 1 < n0; p++)
				for (int j = 0; j < H; j++)
					extra += (A[(size_t) p * H + j] > 0.0f) != (A[(size_t) (p + 1) * H + j] > 0.0f);
		more = ws_alloc(&w, (size_t) n0 + extra, sizeof(double));
		if (!more)
		{
			st = US_ENOMEM;
			goto done;
		}
		memcpy(more, pts, (size_t) n0 * sizeof(double));
		if (method == US_ATTR_INTEGRATED_GRADIENTS)
			for (int32_t p = 0; p + 1 < n0; p++)
				for (int j = 0; j < H; j++)
				{
					double		a0 = A[(size_t) p * H + j],
								a1 = A[(size_t) (p + 1) * H + j];

					if ((a0 > 0.0) != (a1 > 0.0))
					{
						double		a = pts[p] + (pts[p + 1] - pts[p]) * a0 / (a0 - a1);

						if (a > pts[p] && a < pts[p + 1])
							more[n_pts++] = a;
					}
				}
		pts = more;
		n_pts = sort_unique(pts, n_pts);
	}
	/* pieces: the gradient pattern at each piece's middle (x itself for gradient x input) */
	n_pieces = method == US_ATTR_GRADIENT_X_INPUT ? 1 : n_pts - 1;
	mid = ws_alloc(&w, (size_t) n_pieces + 2, sizeof(double));
	len = ws_alloc(&w, (size_t) n_pieces, sizeof(double));
	dsig = ws_alloc(&w, (size_t) n_pieces, sizeof(double));
	Z = ws_alloc(&w, (size_t) n_pts + n_pieces, (size_t) D * sizeof(float));
	A = ws_alloc(&w, (size_t) n_pts + n_pieces, (size_t) H * sizeof(float));
	dA = ws_alloc(&w, (size_t) n_pieces, (size_t) H * sizeof(float));
	dZ = ws_alloc(&w, (size_t) n_pieces, (size_t) D * sizeof(float));
	dH = ws_alloc(&w, (size_t) H, sizeof(float));
	if (!dH || !mid || !len || !dsig || !Z || !A || !dA || !dZ)
	{
		st = US_ENOMEM;
		goto done;
	}
	if (method == US_ATTR_GRADIENT_X_INPUT)
	{
		mid[0] = 1.0;
		len[0] = 1.0;
	}
	else
		for (int32_t p = 0; p < n_pieces; p++)
		{
			mid[p] = 0.5 * (pts[p] + pts[p + 1]);
			len[p] = pts[p + 1] - pts[p];
		}
	/* rows: the piece middles, then every path point (0 first, 1 last) */
	{
		double	   *all = ws_alloc(&w, (size_t) n_pieces + n_pts, sizeof(double));

		if (!all)
		{
			st = US_ENOMEM;
			goto done;
		}
		memcpy(all, mid, (size_t) n_pieces * sizeof(double));
		memcpy(all + n_pieces, pts, (size_t) n_pts * sizeof(double));
		path_rows(model, M, X, n, all, n_pieces + n_pts, Z, A);
	}
	for (int32_t r = 0; r < n_pieces + n_pts; r++)
	{
		float	   *a = A + (size_t) r * H;

		for (int j = 0; j < H; j++)
			a[j] = a[j] > 0.0f ? a[j] : 0.0f;
	}
	for (int32_t p = 0; p < n_pieces; p++)
	{
		dsig[p] = -1.0;
		if (c->task == US_TASK_BINARY && method == US_ATTR_INTEGRATED_GRADIENTS)
		{
			/* the logit is linear on the piece: the sigmoid's mean slope there, exactly */
			double		l0 = binary_logit(model, A + (size_t) (n_pieces + p) * H),
						l1 = binary_logit(model, A + (size_t) (n_pieces + p + 1) * H);

			if (fabs(l1 - l0) > 1e-6)
				dsig[p] = (1.0 / (1.0 + exp(-l1)) - 1.0 / (1.0 + exp(-l0))) / (l1 - l0);
		}
	}
	for (int32_t p = 0; p < n_pieces; p++)
	{
		float	   *a = A + (size_t) p * H;
		float	   *da = dA + (size_t) p * H;

		head_value(model, a, target, L, da, dsig[p]);
		for (int j = 0; j < H; j++)
			da[j] = a[j] > 0.0f ? (float) (da[j] * len[p]) : 0.0f;
	}
	/* f(x) and f(baseline) */
	if (fx)
		*fx = head_value(model, A + (size_t) (n_pieces + n_pts - 1) * H, target, L, dH, -1.0);
	if (fbase)
		*fbase = head_value(model, A + (size_t) n_pieces * H, target, L, dH, -1.0);
	/* dZ of the pieces, summed through the pooled relu (each already weighted by its length) */
	us_gemm(0, 1, n_pieces, D, H, 1.0f, dA, H, model->p.dense_w, H, 0.0f, dZ, D);
	for (int32_t p = 0; p < n_pieces; p++)
	{
		const float *z = Z + (size_t) p * D;
		const float *dz = dZ + (size_t) p * D;

		for (int d = 0; d < WF; d++)
			if (z[d] > 0.0f)
				G[d] += dz[d];
		for (int d = WF; d < D; d++)
			G[d] += dz[d];
	}
	input_grad(model, n, am, G, dX);
	for (int32_t t = 0; t < n; t++)
	{
		double		s = 0.0;

		for (int e = 0; e < E; e++)
			s += (double) X[(size_t) t * E + e] * dX[(size_t) t * E + e];
		attr[t] = s;
	}
done:
	ws_release(&w);
	return st;
}
