/*
 * explain.c: per-event attributions of one sequence (integrated gradients, gradient x input)
 * by backpropagation to each event's summed input vector.
 *
 * Along the integrated-gradients path the input is a * x (a in [0, 1]). Every convolution
 * window sum is linear in the input, so window p of width i and filter f is
 * b_if + a * S_if(p) with S the bias-free window sum of x: the max over windows is
 * b_if + a * M_if with M = max_p S and the argmax does not depend on a (a > 0). So the
 * convolution runs once (one GEMM per tap).
 *
 * Up to the head the network is then piecewise linear in a: pooled feature d is
 * relu(b_d + a M_d), so it switches once, at a = -b_d / M_d, and the recent window is a x. So
 * the dense pre-activation is A(a) = C0 + a C1 with C0, C1 fixed between those kinks and
 * updated rank-1 at each; inside each such interval the dense relus switch where C0 + a C1
 * crosses zero. The path is cut at every kink (and, for the softmax heads only, at the steps'
 * grid), and each piece contributes its length times the gradient at its middle: exact for
 * the linear heads (regression, next_item logit), exact for binary through the sigmoid's mean
 * slope on the piece, the midpoint rule on each piece for the softmax heads. Completeness
 * (sum = f(x) - f(baseline)) is then a matter of float rounding, not of the step count, except
 * for softmax curvature. Cost: O((kinks + pieces) * H) after the convolution, about one
 * forward pass in all.
 *
 * The input gradient is linear in the pooled gradient (dx_t = sum over filters whose argmax
 * window covers t of dz W_i[t - argmax, :, f], plus the recent window's copies): each filter's
 * gradient summed over the path is W_d . (the sum of the pieces' dA while it is active), read
 * from the running sum at its kink, and pushed back to the events once
 * (us_nn_seq_conv_pool_backward_input in nn.c).
 * The forward agrees with us_scorer_forward to float rounding and the gradient with finite
 * differences (test/unit/test_explain.c).
 */
#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "userseq/us_model.h"
#include "nn.h"
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

static int
cmp_double(const void *x, const void *y)
{
	double		a = *(const double *) x,
				b = *(const double *) y;

	return (a > b) - (a < b);
}

/* a pooled relu's kink on the path: filter d switches at a */
typedef struct kink
{
	double		a;
	int32_t		d;
} kink;

static int
cmp_kink(const void *x, const void *y)
{
	const kink *p = x,
			   *q = y;

	if (p->a != q->a)
		return p->a > q->a ? 1 : -1;
	return (p->d > q->d) - (p->d < q->d);
}

static double
dot_fd(const float *w, const double *v, int n)
{
	double		s = 0.0;

	for (int j = 0; j < n; j++)
		s += (double) w[j] * v[j];
	return s;
}

/* h = relu(C0 + a C1) */
static void
hidden_at(const double *C0, const double *C1, double a, int H, float *h)
{
	for (int j = 0; j < H; j++)
	{
		double		v = C0[j] + a * C1[j];

		h[j] = v > 0.0 ? (float) v : 0.0f;
	}
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
				R,
				maxk = 0,
				softmax_head;
	int32_t		n,
				start,
				nwin_max,
				n_kinks = 0;
	float	   *X,
			   *Y,
			   *S,
			   *M,
			   *G,
			   *dX,
			   *L,
			   *h,
			   *dh;
	double	   *C0,
			   *C1,
			   *Ssum,
			   *gk,
			   *dk;
	kink	   *kinks;
	int32_t    *am;
	char	   *act;
	const float *Wd;
	us_status	st = US_OK;

	if (model == NULL || events == NULL || events->n < 0 || (events->n > 0 && events->items == NULL) ||
		(attr == NULL && events->n > 0))
		return US_EINVAL;
	c = &model->cfg;
	/* the path gradients below are the text-CNN's layers */
	if (c->architecture != US_ARCH_TEXTCNN)
		return US_EINVAL;
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
	softmax_head = c->task == US_TASK_MULTICLASS || c->task == US_TASK_NEXT_BEHAVIOR;
	E = c->embed_dim;
	F = c->n_filters;
	H = c->hidden_dim;
	R = c->recent_window;
	WF = c->n_widths * F;
	D = us_model_feature_dim(c);
	Wd = model->p.dense_w;
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
	h = ws_alloc(&w, (size_t) H, sizeof(float));
	dh = ws_alloc(&w, (size_t) H, sizeof(float));
	C0 = ws_alloc(&w, (size_t) H, sizeof(double));
	C1 = ws_alloc(&w, (size_t) H, sizeof(double));
	Ssum = ws_alloc(&w, (size_t) H, sizeof(double));
	dk = ws_alloc(&w, (size_t) H + 2, sizeof(double));
	gk = ws_alloc(&w, (size_t) WF, sizeof(double));
	kinks = ws_alloc(&w, (size_t) WF + (size_t) steps + 1, sizeof(kink));
	act = ws_alloc(&w, (size_t) WF, 1);
	if (!X || !Y || !S || !M || !am || !G || !dX || !L || !h || !dh || !C0 || !C1 || !Ssum ||
		!dk || !gk || !kinks || !act)
	{
		st = US_ENOMEM;
		goto done;
	}
	if ((st = input_vectors(model, events, start, n, X)) != US_OK)
		goto done;
	us_nn_seq_conv_pool(model, X, n, Y, S, M, am);

	/*
	 * Along the path, pooled feature d is relu(b_d + a M_d) and recent feature r is a x_r, so the
	 * dense pre-activation is A(a) = C0 + a C1 with C0, C1 fixed between the pooled relus'
	 * kinks (a filter switches at most once, at a = -b_d / M_d). act: the filters active just
	 * after a = 0 (gradient x input: at a = 1).
	 */
	for (int j = 0; j < H; j++)
		C0[j] = model->p.dense_b[j];
	for (int i = 0; i < c->n_widths; i++)
		for (int f = 0; f < F; f++)
		{
			int32_t		d = i * F + f;
			double		b = model->p.conv_b[i][f],
						m = M[d];

			if (method == US_ATTR_GRADIENT_X_INPUT)
				act[d] = b + m > 0.0;
			else
			{
				act[d] = b > 0.0 || (b == 0.0 && m > 0.0);
				if (m != 0.0 && -b / m > 0.0 && -b / m < 1.0)
				{
					kinks[n_kinks].a = -b / m;
					kinks[n_kinks++].d = d;
				}
			}
			if (act[d])
				for (int j = 0; j < H; j++)
				{
					C0[j] += b * Wd[(size_t) d * H + j];
					C1[j] += m * Wd[(size_t) d * H + j];
				}
		}
	for (int q = 0; q < R; q++)
	{
		int32_t		t = n - R + q;

		if (t >= 0)
			for (int e = 0; e < E; e++)
			{
				double		x = X[(size_t) t * E + e];
				const float *wr = Wd + (size_t) (WF + q * E + e) * H;

				for (int j = 0; j < H; j++)
					C1[j] += x * wr[j];
			}
	}

	if (method == US_ATTR_GRADIENT_X_INPUT)
	{
		/* one point, a = 1: the gradient there (and f at both ends) */
		hidden_at(C0, C1, 1.0, H, h);
		if (fx)
			*fx = head_value(model, h, target, L, dh, -1.0);
		else
			head_value(model, h, target, L, dh, -1.0);
		for (int j = 0; j < H; j++)
			Ssum[j] = h[j] > 0.0f ? dh[j] : 0.0;
		if (fbase)
		{
			float	   *z0 = G;		/* scratch: the features at a = 0 */

			for (int d = 0; d < D; d++)
				z0[d] = d < WF ? (float) fmax(0.0, (double) model->p.conv_b[d / F][d % F]) : 0.0f;
			memcpy(h, model->p.dense_b, (size_t) H * sizeof(float));
			us_gemm(0, 0, 1, H, D, 1.0f, z0, D, Wd, H, 1.0f, h, H);
			for (int j = 0; j < H; j++)
				h[j] = h[j] > 0.0f ? h[j] : 0.0f;
			*fbase = head_value(model, h, target, L, dh, -1.0);
			memset(G, 0, (size_t) D * sizeof(float));
		}
	}
	else
	{
		double		cur = 0.0;
		int32_t		n_pts = n_kinks;

		/* the softmax heads are curved in a: add the steps' grid (no filter switches there) */
		if (softmax_head)
			for (int32_t s = 1; s < steps; s++)
			{
				kinks[n_pts].a = (double) s / steps;
				kinks[n_pts++].d = -1;
			}
		qsort(kinks, (size_t) n_pts, sizeof(kink), cmp_kink);
		if (fbase)
		{
			hidden_at(C0, C1, 0.0, H, h);
			*fbase = head_value(model, h, target, L, dh, -1.0);
		}
		for (int32_t k = 0; k <= n_pts; k++)
		{
			double		end = k < n_pts ? kinks[k].a : 1.0;
			int32_t		nd = 0;

			/* A is linear on [cur, end]: cut it where a dense relu switches */
			dk[nd++] = cur;
			for (int j = 0; j < H; j++)
				if (C1[j] != 0.0)
				{
					double		t = -C0[j] / C1[j];

					if (t > cur && t < end)
						dk[nd++] = t;
				}
			dk[nd++] = end;
			qsort(dk + 1, (size_t) nd - 2, sizeof(double), cmp_double);
			for (int32_t p = 0; p + 1 < nd; p++)
			{
				double		q0 = dk[p],
							q1 = dk[p + 1],
							len = q1 - q0,
							dsig = -1.0;

				if (!(len > 0.0))
					continue;
				hidden_at(C0, C1, 0.5 * (q0 + q1), H, h);
				if (c->task == US_TASK_BINARY)
				{
					/* the logit is linear on the piece: the sigmoid's exact mean slope there */
					double		l0 = model->p.out_b[0],
								l1 = l0;

					for (int j = 0; j < H; j++)
						if (h[j] > 0.0f)
						{
							l0 += (C0[j] + q0 * C1[j]) * model->p.out_w[j];
							l1 += (C0[j] + q1 * C1[j]) * model->p.out_w[j];
						}
					if (fabs(l1 - l0) > 1e-6)
						dsig = (1.0 / (1.0 + exp(-l1)) - 1.0 / (1.0 + exp(-l0))) / (l1 - l0);
				}
				head_value(model, h, target, L, dh, dsig);
				for (int j = 0; j < H; j++)
					if (h[j] > 0.0f)
						Ssum[j] += len * dh[j];
			}
			if (k == n_pts)
				break;
			/* at the kink: filter d switches; its gradient so far is W_d . Ssum */
			if (kinks[k].d >= 0)
			{
				int32_t		d = kinks[k].d;
				double		b = model->p.conv_b[d / F][d % F],
							m = M[d],
							sign;
				const float *wd = Wd + (size_t) d * H;
				/* active before the kink iff active at a = 0+: then it switches off */
				gk[d] = dot_fd(wd, Ssum, H);
				sign = act[d] ? -1.0 : 1.0;
				for (int j = 0; j < H; j++)
				{
					C0[j] += sign * b * wd[j];
					C1[j] += sign * m * wd[j];
				}
			}
			cur = end;
		}
		if (fx)
		{
			hidden_at(C0, C1, 1.0, H, h);
			*fx = head_value(model, h, target, L, dh, -1.0);
		}
	}

	/* the pooled features' gradient summed over the path (Ssum = sum of len * dA) */
	{
		int			has_kink_mark = method == US_ATTR_INTEGRATED_GRADIENTS;

		memset(G, 0, (size_t) D * sizeof(float));
		for (int32_t k = 0; has_kink_mark && k < n_kinks + (softmax_head ? steps - 1 : 0); k++)
			if (kinks[k].d >= 0)
				act[kinks[k].d] |= 2;	/* mark: has a kink (bit 1) */
		for (int d = 0; d < WF; d++)
		{
			const float *wd = Wd + (size_t) d * H;
			double		total = dot_fd(wd, Ssum, H);

			if (act[d] & 2)
				G[d] = (float) ((act[d] & 1) ? gk[d] : total - gk[d]);
			else
				G[d] = (act[d] & 1) ? (float) total : 0.0f;
		}
		for (int d = WF; d < D; d++)
			G[d] = (float) dot_fd(Wd + (size_t) d * H, Ssum, H);
	}
	us_nn_seq_conv_pool_backward_input(model, n, am, G, dX);
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
