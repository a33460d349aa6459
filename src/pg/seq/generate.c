/*
 * generate.c: userseq_generate_events, a fast seeded generator of synthetic e-commerce event
 * logs (view, search, cart, buy, return) for tests and benchmarks at scale.
 *
 * It does not try to mimic any real shop's statistics closely and reads no tables; the output
 * is a pure function of the arguments (bit-identical for the same arguments on the same
 * platform: it uses libm's exp/log/pow). Each user is generated from its own random stream
 * seeded by (seed, user), so user u's events do not depend on how many users are generated.
 *
 * Model
 *   Catalogue: items have Zipf popularity (weight 1/rank^zipf); the rank -> item_id map is a
 *   seeded permutation, so popular items are not the small ids. Each item belongs to one
 *   category (every category gets one of the top items, the rest are spread with a skew, so
 *   categories differ in size); category numbers are permuted too.
 *   Users: arrive in the first 30% of the time range; have an activity level (mean gap between
 *   sessions 6 hours .. 30 days, log-normal around 9 days), 1-3 favourite categories (80% of
 *   sessions; the rest follow overall category popularity), a cart rate and a buy rate.
 *   Sessions: 1 + geometric(0.7) browsing steps (mean 3.3); a step views an item of the
 *   session's category, sometimes reached by a search (a 'search' row carries the item the user
 *   clicked in the results, and the view of it follows); a viewed item is carted with the
 *   user's cart rate; at the end of a session carted items are bought with the user's buy rate
 *   (abandoned carts go to a small wish list); 5% of bought items are returned 2-30 days later.
 *   Gaps: seconds to minutes inside a session (log-normal, median 35 s), hours to days between
 *   sessions (exponential around the user's mean gap, at least 30 minutes).
 *   Churn: with probability churn_rate a user starts to decline at a point between 10% and 70%
 *   of its remaining range, has 3-5 more sessions and then never comes back; everyone else
 *   stays active to the end.
 *
 * Planted patterns (what a sequence model can learn; the tests of the ML work rely on them)
 *   (a) next item: every item a of a category with at least two items has one accessory
 *       acc(a) in the same category. Right after buying a, the user views acc(a) with
 *       probability 0.4 (cart/buy as usual); the first step of the next session is acc(a) of
 *       the last bought item with probability 0.3; and after viewing a, the next step views
 *       acc(a) with probability 0.5. Measured (2000 users, 2000 items, 20 categories):
 *       predicting the next view as the item's most frequent successor in half of the users
 *       hits 42% in the other half, against 26% for the category's most viewed item.
 *   (b) churn: a declining churner's sessions are short (1-2 steps), carted with probability
 *       0.7 per step but bought with 0.03, no wish-list item is revisited, and the gaps grow
 *       (half the usual gap, at most 3 days, times 1.7 per session). So several
 *       cart-without-buy sessions with growing gaps announce churn. Measured (20000 users,
 *       label "no event in the last 30 days"): 1.5 cart-without-buy sessions in the 30 days
 *       before the cutoff for churned users against 0.7 for the others.
 *   (c) buy: active users come back to an abandoned cart (wish list) at 25% of steps, then
 *       cart it with probability 0.6 and buy it with 0.75, so an earlier cart of an item
 *       announces a later buy of it.
 *   (d) anomalies (fraud_rate > 0): see GenPlantAnomaly. userseq_generate_anomalies, with the
 *       same arguments, lists the anomalous users, their episode's kind and first event (every
 *       event of the user from then on is planted). The output columns of the events stay
 *       those of 0.1.0, so callers of the 8-argument form see exactly the rows they saw.
 */
#include "userseq_pg.h"

#include <math.h>

#include "fmgr.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "nodes/supportnodes.h"
#include "nodes/nodeFuncs.h"
#include "optimizer/optimizer.h"
#include "utils/builtins.h"
#include "utils/timestamp.h"
#include "utils/tuplestore.h"

#include "userseq/us_rng.h"

#define GEN_MAX_USERS			10000000	/* documented in the SQL comment and README */
#define GEN_MIN_ITEMS			10
#define GEN_MAX_ITEMS			10000000
#define GEN_MAX_CATEGORIES		100000
#define GEN_MAX_DAYS			3650
#define GEN_MAX_ZIPF			3.0
#define GEN_MAX_USER_EVENTS		100000	/* a user stops once it has this many events */
#define GEN_WISH_SIZE			4
#define GEN_EVENTS_PER_USER_DAY	0.53	/* measured mean at the defaults; row estimate only */

#define SECS_PER_DAY			86400

typedef enum GenBehavior
{
	GEN_VIEW,
	GEN_SEARCH,
	GEN_CART,
	GEN_BUY,
	GEN_RETURN,
	GEN_N_BEHAVIORS
} GenBehavior;

static const char *const gen_behavior_names[GEN_N_BEHAVIORS] = {
	"view", "search", "cart", "buy", "return"
};

/* The catalogue; items are addressed by popularity rank 0..n_items-1 internally. */
typedef struct GenCatalog
{
	int32		n_items;
	int32		n_cats;
	int32	   *item_id;		/* rank -> item_id - 1 (seeded permutation) */
	int32	   *cat_of;			/* rank -> category index (0 = largest) */
	int32	   *acc;			/* rank -> accessory rank, or -1 */
	int32	   *cat_start;		/* n_cats + 1 offsets into members */
	int32	   *members;		/* ranks grouped by category, ascending rank */
	double	   *member_cdf;		/* cumulative weight inside each category's group */
	double	   *cat_cdf;		/* cumulative category weight (sum of item weights) */
	int32	   *cat_label;		/* category index -> category number - 1 (permutation) */
} GenCatalog;

typedef struct GenEvent
{
	int64		t;				/* seconds since start */
	int32		seq;			/* generation order: tie-break of the sort */
	int32		rank;
	uint8		behavior;
} GenEvent;

typedef struct GenUserBuf
{
	GenEvent   *ev;
	int32		n;
	int32		cap;
	int32		seq;
	int64		end;			/* events at or after end are dropped */
	bool		unsorted;
} GenUserBuf;

/* Ensure an integer generator argument lies in [lo, hi]. */
static void
CheckGenIntArg(const char *name, int64 value, int64 lo, int64 hi)
{
	if (value < lo || value > hi)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("%s must be between " INT64_FORMAT " and " INT64_FORMAT, name, lo, hi),
				 errdetail("The value given was " INT64_FORMAT ".", value)));
}

/* Ensure a float generator argument lies in [lo, hi] (NaN never does). */
static void
CheckGenFloatArg(const char *name, double value, double lo, double hi)
{
	if (isnan(value) || value < lo || value > hi)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("%s must be between %g and %g", name, lo, hi),
				 errdetail("The value given was %g.", value)));
}

/* Index of the first cdf entry > u (cdf ascending, last entry > u). */
static inline int32
CdfSearch(const double *cdf, int32 n, double u)
{
	int32		lo = 0,
				hi = n - 1;

	while (lo < hi)
	{
		int32		mid = lo + (hi - lo) / 2;

		if (cdf[mid] > u)
			hi = mid;
		else
			lo = mid + 1;
	}
	return lo;
}

/* Fisher-Yates permutation of 0..n-1. */
static int32 *
GenPermutation(us_rng *rng, int32 n)
{
	int32	   *p = palloc_extended(sizeof(int32) * (Size) n, MCXT_ALLOC_HUGE);

	for (int32 i = 0; i < n; i++)
		p[i] = i;
	for (int32 i = n - 1; i > 0; i--)
	{
		int32		j = (int32) us_rng_below(rng, (uint64) i + 1);
		int32		tmp = p[i];

		p[i] = p[j];
		p[j] = tmp;
	}
	return p;
}

/* Builds the catalogue (popularity, categories, accessories) from the seed alone. */
static void
GenBuildCatalog(GenCatalog *cat, uint64 seed, int32 n_items, int32 n_cats, double zipf)
{
	us_rng		rng;
	double	   *size_cdf;
	double	   *weight;
	int32	   *fill;
	double		acc_w = 0.0;

	us_rng_seed(&rng, seed ^ UINT64CONST(0x5DEECE66DA3B1F27));
	cat->n_items = n_items;
	cat->n_cats = n_cats;
	cat->item_id = GenPermutation(&rng, n_items);
	cat->cat_label = GenPermutation(&rng, n_cats);
	cat->cat_of = palloc_extended(sizeof(int32) * (Size) n_items, MCXT_ALLOC_HUGE);
	cat->acc = palloc_extended(sizeof(int32) * (Size) n_items, MCXT_ALLOC_HUGE);
	cat->members = palloc_extended(sizeof(int32) * (Size) n_items, MCXT_ALLOC_HUGE);
	cat->member_cdf = palloc_extended(sizeof(double) * (Size) n_items, MCXT_ALLOC_HUGE);
	cat->cat_start = palloc0(sizeof(int32) * ((Size) n_cats + 1));
	cat->cat_cdf = palloc(sizeof(double) * (Size) n_cats);
	weight = palloc_extended(sizeof(double) * (Size) n_items, MCXT_ALLOC_HUGE);

	/* category sizes are skewed (weight 1/(c+1)^0.7); each category gets one top item */
	size_cdf = palloc(sizeof(double) * (Size) n_cats);
	for (int32 c = 0; c < n_cats; c++)
	{
		acc_w += pow((double) c + 1.0, -0.7);
		size_cdf[c] = acc_w;
	}
	for (int32 r = 0; r < n_items; r++)
	{
		if (r < n_cats)
			cat->cat_of[r] = r;
		else
			cat->cat_of[r] = CdfSearch(size_cdf, n_cats, us_rng_uniform(&rng) * acc_w);
		weight[r] = pow((double) r + 1.0, -zipf);
		cat->cat_start[cat->cat_of[r] + 1]++;
	}
	for (int32 c = 0; c < n_cats; c++)
		cat->cat_start[c + 1] += cat->cat_start[c];

	/* group members by category in rank order, with cumulative weights per group */
	fill = palloc(sizeof(int32) * (Size) n_cats);
	memcpy(fill, cat->cat_start, sizeof(int32) * (Size) n_cats);
	for (int32 r = 0; r < n_items; r++)
		cat->members[fill[cat->cat_of[r]]++] = r;
	acc_w = 0.0;
	for (int32 c = 0; c < n_cats; c++)
	{
		double		w = 0.0;

		for (int32 k = cat->cat_start[c]; k < cat->cat_start[c + 1]; k++)
		{
			w += weight[cat->members[k]];
			cat->member_cdf[k] = w;
		}
		acc_w += w;
		cat->cat_cdf[c] = acc_w;
	}

	/* planted pattern (a): one accessory per item, another item of its category */
	for (int32 r = 0; r < n_items; r++)
	{
		int32		c = cat->cat_of[r];
		int32		size = cat->cat_start[c + 1] - cat->cat_start[c];
		int32		j;

		if (size < 2)
		{
			cat->acc[r] = -1;
			continue;
		}
		j = cat->cat_start[c] + (int32) us_rng_below(&rng, (uint64) size - 1);
		if (cat->members[j] == r)
			j = cat->cat_start[c + 1] - 1;
		cat->acc[r] = cat->members[j];
	}
	pfree(size_cdf);
	pfree(fill);
	pfree(weight);
}

/* An item of category c drawn by popularity. */
static inline int32
GenItemInCategory(const GenCatalog *cat, us_rng *rng, int32 c)
{
	int32		lo = cat->cat_start[c];
	int32		n = cat->cat_start[c + 1] - lo;
	double		total = cat->member_cdf[lo + n - 1];

	return cat->members[lo + CdfSearch(cat->member_cdf + lo, n, us_rng_uniform(rng) * total)];
}

static inline int32
GenCategory(const GenCatalog *cat, us_rng *rng)
{
	return CdfSearch(cat->cat_cdf, cat->n_cats,
					 us_rng_uniform(rng) * cat->cat_cdf[cat->n_cats - 1]);
}

static void
GenEmit(GenUserBuf *buf, int64 t, GenBehavior behavior, int32 rank)
{
	if (t >= buf->end || buf->n >= GEN_MAX_USER_EVENTS)
		return;
	if (buf->n == buf->cap)
	{
		buf->cap *= 2;
		buf->ev = repalloc(buf->ev, sizeof(GenEvent) * (Size) buf->cap);
	}
	buf->ev[buf->n].t = t;
	buf->ev[buf->n].seq = buf->seq++;
	buf->ev[buf->n].rank = rank;
	buf->ev[buf->n].behavior = (uint8) behavior;
	buf->n++;
}

static int
GenEventCmp(const void *a, const void *b)
{
	const GenEvent *x = a;
	const GenEvent *y = b;

	if (x->t != y->t)
		return x->t < y->t ? -1 : 1;
	return x->seq < y->seq ? -1 : (x->seq > y->seq ? 1 : 0);
}

/* Seconds inside a session: log-normal, median 35 s (log 35 = 3.555...), 1 s .. 30 min. */
static inline int64
GenIntraGap(us_rng *rng)
{
	double		g = exp(3.5553480614894135 + 0.9 * us_rng_normal(rng));

	return (int64) Max(1.0, Min(g, 1800.0));
}

static inline double
Clamp(double x, double lo, double hi)
{
	return Max(lo, Min(x, hi));
}

/* Generates one user's events into buf (reset first), sorted by time. */
static void
GenUser(const GenCatalog *cat, GenUserBuf *buf, uint64 seed, int64 user,
		int64 end, double churn_rate)
{
	us_rng		rng;
	int32		fav[3];
	int32		n_fav;
	double		mean_gap,
				p_cart,
				p_buy,
				gap_mult = 1.0;
	int64		t,
				decline_start;
	int32		decline_left = 0;	/* sessions a churner has left once declining */
	double		decline_gap = 0.0;
	int32		wish[GEN_WISH_SIZE];
	int32		n_wish = 0;
	int32		last_buy = -1;
	int32		cart[64];
	bool		cart_wish[64];

	buf->n = 0;
	buf->seq = 0;
	buf->end = end;
	buf->unsorted = false;
	us_rng_seed(&rng, seed * UINT64CONST(0xD1B54A32D192ED03) + (uint64) user);

	t = (int64) (us_rng_uniform(&rng) * 0.3 * (double) end);
	mean_gap = Clamp(9.0 * SECS_PER_DAY * exp(0.7 * us_rng_normal(&rng)),
					 0.25 * SECS_PER_DAY, 30.0 * SECS_PER_DAY);
	p_cart = Clamp(0.08 * exp(0.4 * us_rng_normal(&rng)), 0.02, 0.4);
	p_buy = Clamp(0.45 * exp(0.3 * us_rng_normal(&rng)), 0.1, 0.9);
	n_fav = 1 + (int32) us_rng_below(&rng, 3);
	for (int32 i = 0; i < n_fav; i++)
		fav[i] = GenCategory(cat, &rng);

	/* churners decline from a point in 10%..70% of their range, then stop for good */
	decline_start = end;
	if (us_rng_uniform(&rng) < churn_rate)
	{
		decline_start = t + (int64) ((0.1 + 0.6 * us_rng_uniform(&rng)) * (double) (end - t));
		decline_left = 3 + (int32) us_rng_below(&rng, 3);
		decline_gap = Clamp(0.5 * mean_gap, 0.5 * SECS_PER_DAY, 3.0 * SECS_PER_DAY);
	}

	while (t < end && buf->n < GEN_MAX_USER_EVENTS)
	{
		bool		declining = t >= decline_start;
		int32		c = us_rng_uniform(&rng) < 0.8 ? fav[us_rng_below(&rng, n_fav)]
			: GenCategory(cat, &rng);
		int32		steps = 1;
		int32		n_cart = 0;
		int32		prev = -1;
		int64		s = t;
		double		gap;

		while (steps < 30 && us_rng_uniform(&rng) < 0.7)
			steps++;
		if (declining)
			steps = 1 + (int32) us_rng_below(&rng, 2);

		for (int32 i = 0; i < steps; i++)
		{
			int32		x;
			bool		from_wish = false;
			double		pc;

			if (i == 0 && last_buy >= 0 && cat->acc[last_buy] >= 0 &&
				us_rng_uniform(&rng) < 0.3)
				x = cat->acc[last_buy];
			else if (prev >= 0 && cat->acc[prev] >= 0 && us_rng_uniform(&rng) < 0.5)
				x = cat->acc[prev];
			else if (!declining && n_wish > 0 && us_rng_uniform(&rng) < 0.25)
			{
				int32		k = (int32) us_rng_below(&rng, n_wish);

				x = wish[k];
				wish[k] = wish[--n_wish];
				from_wish = true;
			}
			else
			{
				x = GenItemInCategory(cat, &rng, c);
				if (us_rng_uniform(&rng) < 0.25)
				{
					GenEmit(buf, s, GEN_SEARCH, x);
					s += GenIntraGap(&rng);
				}
			}
			GenEmit(buf, s, GEN_VIEW, x);
			s += GenIntraGap(&rng);
			pc = from_wish ? 0.6 : (declining ? 0.7 : p_cart);
			if (n_cart < lengthof(cart) && us_rng_uniform(&rng) < pc)
			{
				GenEmit(buf, s, GEN_CART, x);
				s += GenIntraGap(&rng);
				cart_wish[n_cart] = from_wish;
				cart[n_cart++] = x;
			}
			prev = x;
		}

		/* checkout: buy some carted items, remember the rest */
		last_buy = -1;
		if (n_cart > 0)
			s += 30 + (int64) us_rng_below(&rng, 120);
		for (int32 k = 0; k < n_cart; k++)
		{
			double		pb = declining ? 0.03 : (cart_wish[k] ? 0.75 : p_buy);

			if (us_rng_uniform(&rng) < pb)
			{
				int32		a = cart[k];

				GenEmit(buf, s, GEN_BUY, a);
				s += 1 + (int64) us_rng_below(&rng, 10);
				last_buy = a;
				if (us_rng_uniform(&rng) < 0.05)
				{
					int64		rt = s + (2 + (int64) us_rng_below(&rng, 29)) * SECS_PER_DAY +
						(int64) us_rng_below(&rng, SECS_PER_DAY);

					/* a churner's returns stay before its decline: it is gone after */
					if (rt < decline_start)
					{
						GenEmit(buf, rt, GEN_RETURN, a);
						buf->unsorted = true;
					}
				}
				/* planted pattern (a): the accessory right after the main product */
				if (cat->acc[a] >= 0 && us_rng_uniform(&rng) < 0.4)
				{
					int32		b = cat->acc[a];

					s += GenIntraGap(&rng);
					GenEmit(buf, s, GEN_VIEW, b);
					if (us_rng_uniform(&rng) < p_cart)
					{
						s += GenIntraGap(&rng);
						GenEmit(buf, s, GEN_CART, b);
						if (us_rng_uniform(&rng) < p_buy)
						{
							s += GenIntraGap(&rng);
							GenEmit(buf, s, GEN_BUY, b);
						}
					}
				}
			}
			else if (!declining)
			{
				if (n_wish < GEN_WISH_SIZE)
					wish[n_wish++] = cart[k];
				else
					wish[us_rng_below(&rng, GEN_WISH_SIZE)] = cart[k];
			}
		}

		/* planted pattern (b): growing gaps before churn */
		if (declining)
		{
			if (--decline_left == 0)
				break;
			gap = decline_gap * gap_mult * (0.7 + 0.6 * us_rng_uniform(&rng));
			gap_mult *= 1.7;
		}
		else
			gap = -log(1.0 - us_rng_uniform(&rng)) * mean_gap;
		t = s + (int64) Clamp(gap, 1800.0, (double) end);
	}

	if (buf->unsorted)
		qsort(buf->ev, buf->n, sizeof(GenEvent), GenEventCmp);
}

/*
 * Planted anomalies (fraud_rate): the user's own history is cut at a random event in its second
 * half and one anomalous episode follows a few hours to two days later, drawn from a stream of
 * its own so that the history before the cut is the same as without fraud_rate:
 *   0 bot burst: 15-30 views of unrelated items (uniform over the catalogue, any category)
 *     1-3 seconds apart;
 *   1 carding: one rarely bought item (popularity rank in the catalogue's bottom half) carted and
 *     bought 5-10 times over, 5-40 seconds apart;
 *   2 account takeover: a category the user never browsed, 4-7 straight cart + buy pairs (no
 *     views) of its items, 10-90 seconds apart.
 */
static const char *const gen_anomaly_names[3] = {"bot_burst", "carding", "account_takeover"};

/* Plants the episode; returns its kind and sets *first to the index of its first event. */
static int32
GenPlantAnomaly(const GenCatalog *cat, GenUserBuf *buf, uint64 seed, int64 user, int64 end,
				int32 *first_out)
{
	us_rng		rng;
	int32		kind,
				cut;
	int64		s;

	us_rng_seed(&rng, (seed ^ UINT64CONST(0xA5A5F00DF00DA5A5)) * UINT64CONST(0x9E3779B97F4A7C15) +
				(uint64) user * 3 + 1);
	kind = (int32) us_rng_below(&rng, 3);
	cut = buf->n < 4 ? buf->n : buf->n / 2 + (int32) us_rng_below(&rng, (uint64) (buf->n - buf->n / 2));
	buf->n = cut;
	s = cut > 0 ? buf->ev[cut - 1].t : (int64) (us_rng_uniform(&rng) * 0.5 * (double) end);
	s += 3 * 3600 + (int64) us_rng_below(&rng, 2 * SECS_PER_DAY);
	/* the episode (at most ~15 minutes) must fit before the end */
	if (s > end - 3600)
		s = Max(cut > 0 ? buf->ev[cut - 1].t + 60 : 0, end - 3600);
	{
		int32		first = buf->n;

		if (kind == 0)
		{
			int32		k = 15 + (int32) us_rng_below(&rng, 16);

			for (int32 i = 0; i < k; i++)
			{
				GenEmit(buf, s, GEN_VIEW, (int32) us_rng_below(&rng, (uint64) cat->n_items));
				s += 1 + (int64) us_rng_below(&rng, 3);
			}
		}
		else if (kind == 1)
		{
			int32		k = 5 + (int32) us_rng_below(&rng, 6);
			int32		x = cat->n_items / 2 + (int32) us_rng_below(&rng, (uint64) (cat->n_items - cat->n_items / 2));

			for (int32 i = 0; i < k; i++)
			{
				GenEmit(buf, s, GEN_CART, x);
				s += 5 + (int64) us_rng_below(&rng, 36);
				GenEmit(buf, s, GEN_BUY, x);
				s += 5 + (int64) us_rng_below(&rng, 36);
			}
		}
		else
		{
			int32		k = 4 + (int32) us_rng_below(&rng, 4);
			int32		c = (int32) us_rng_below(&rng, (uint64) cat->n_cats);

			/* a category this user never browsed, if there is one */
			for (int32 tries = 0; tries < 20; tries++)
			{
				bool		seen = false;

				for (int32 i = 0; i < buf->n && !seen; i++)
					seen = cat->cat_of[buf->ev[i].rank] == c;
				if (!seen)
					break;
				c = (int32) us_rng_below(&rng, (uint64) cat->n_cats);
			}
			for (int32 i = 0; i < k; i++)
			{
				int32		x = cat->members[cat->cat_start[c] +
											 (int32) us_rng_below(&rng, (uint64) (cat->cat_start[c + 1] - cat->cat_start[c]))];

				GenEmit(buf, s, GEN_CART, x);
				s += 10 + (int64) us_rng_below(&rng, 81);
				GenEmit(buf, s, GEN_BUY, x);
				s += 10 + (int64) us_rng_below(&rng, 81);
			}
		}
		*first_out = first;
	}
	return kind;
}

/*
 * Both SQL functions: the events (anomalies = false) or one row per anomalous user with its
 * episode's kind and first event (anomalies = true).
 */
static Datum
GenRun(FunctionCallInfo fcinfo, bool anomalies)
{
	int32		users = PG_GETARG_INT32(0);
	int64		seed = PG_GETARG_INT64(1);
	int32		n_items = PG_GETARG_INT32(2);
	int32		n_cats = PG_GETARG_INT32(3);
	int32		days = PG_GETARG_INT32(4);
	TimestampTz start = PG_GETARG_TIMESTAMPTZ(5);
	double		churn_rate = PG_GETARG_FLOAT8(6);
	double		zipf = PG_GETARG_FLOAT8(7);
	/* 0.2.0 adds fraud_rate (0 = none: the 0.1.0 output) */
	double		fraud_rate = PG_NARGS() > 8 ? PG_GETARG_FLOAT8(8) : 0.0;
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	MemoryContext gen_cxt;
	MemoryContext old_cxt;
	GenCatalog	cat;
	GenUserBuf	buf;
	Datum		behavior[GEN_N_BEHAVIORS];
	int64		end;

	CheckGenIntArg("users", users, 1, GEN_MAX_USERS);
	CheckGenIntArg("items", n_items, GEN_MIN_ITEMS, GEN_MAX_ITEMS);
	CheckGenIntArg("categories", n_cats, 1, Min(GEN_MAX_CATEGORIES, n_items));
	CheckGenIntArg("days", days, 1, GEN_MAX_DAYS);
	CheckGenFloatArg("churn_rate", churn_rate, 0.0, 1.0);
	CheckGenFloatArg("zipf", zipf, 0.0, GEN_MAX_ZIPF);
	CheckGenFloatArg("fraud_rate", fraud_rate, 0.0, 1.0);
	if (TIMESTAMP_NOT_FINITE(start) ||
		!IS_VALID_TIMESTAMP(start + (int64) days * USECS_PER_DAY))
		ereport(ERROR,
				(errcode(ERRCODE_DATETIME_VALUE_OUT_OF_RANGE),
				 errmsg("start_at must be a finite timestamp that leaves room for the days requested")));

	InitMaterializedSRF(fcinfo, MAT_SRF_USE_EXPECTED_DESC);

	/* catalogue and per-user scratch live only for this call */
	gen_cxt = AllocSetContextCreate(CurrentMemoryContext, "userseq_generate_events",
									ALLOCSET_DEFAULT_SIZES);
	old_cxt = MemoryContextSwitchTo(gen_cxt);
	GenBuildCatalog(&cat, (uint64) seed, n_items, n_cats, zipf);
	for (int i = 0; i < GEN_N_BEHAVIORS; i++)
		behavior[i] = PointerGetDatum(cstring_to_text(gen_behavior_names[i]));
	buf.cap = 256;
	buf.ev = palloc(sizeof(GenEvent) * (Size) buf.cap);
	end = (int64) days * SECS_PER_DAY;
	MemoryContextSwitchTo(old_cxt);

	for (int64 u = 1; u <= users; u++)
	{
		Datum		values[5];
		bool		nulls[5] = {false, false, false, false, false};
		int32		kind = -1,
					first = 0;

		/* can take a while, so ensure we can interrupt */
		CHECK_FOR_INTERRUPTS();

		old_cxt = MemoryContextSwitchTo(gen_cxt);
		GenUser(&cat, &buf, (uint64) seed, u, end, churn_rate);
		if (fraud_rate > 0.0)
		{
			/* who is anomalous comes from a stream of its own: the others are unchanged */
			us_rng		frng;

			us_rng_seed(&frng, ((uint64) seed ^ UINT64CONST(0x0F0F1234ABCD5678)) *
						UINT64CONST(0xD1B54A32D192ED03) + (uint64) u);
			if (us_rng_uniform(&frng) < fraud_rate)
				kind = GenPlantAnomaly(&cat, &buf, (uint64) seed, u, end, &first);
		}
		MemoryContextSwitchTo(old_cxt);

		values[0] = Int64GetDatum(u);
		if (anomalies)
		{
			if (kind >= 0 && first < buf.n)
			{
				values[1] = CStringGetTextDatum(gen_anomaly_names[kind]);
				values[2] = TimestampTzGetDatum(start + buf.ev[first].t * USECS_PER_SEC);
				values[3] = Int32GetDatum(buf.n - first);
				tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
			}
			continue;
		}

		for (int32 k = 0; k < buf.n; k++)
		{
			const GenEvent *e = &buf.ev[k];

			values[1] = TimestampTzGetDatum(start + e->t * USECS_PER_SEC);
			values[2] = behavior[e->behavior];
			values[3] = Int64GetDatum((int64) cat.item_id[e->rank] + 1);
			values[4] = Int32GetDatum(cat.cat_label[cat.cat_of[e->rank]] + 1);
			tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
		}
	}

	MemoryContextDelete(gen_cxt);
	return (Datum) 0;
}

/* Generate a synthetic e-commerce event log */
FUNCTION_PREFIX PG_FUNCTION_INFO_V1(userseq_generate_events);
Datum
userseq_generate_events(PG_FUNCTION_ARGS)
{
	return GenRun(fcinfo, false);
}

/* The anomalous users of a userseq_generate_events call with fraud_rate > 0 */
FUNCTION_PREFIX PG_FUNCTION_INFO_V1(userseq_generate_anomalies);
Datum
userseq_generate_anomalies(PG_FUNCTION_ARGS)
{
	return GenRun(fcinfo, true);
}

/* Planner support: row estimate of userseq_generate_events from its users and days */
FUNCTION_PREFIX PG_FUNCTION_INFO_V1(userseq_generate_events_support);
Datum
userseq_generate_events_support(PG_FUNCTION_ARGS)
{
	Node	   *rawreq = (Node *) PG_GETARG_POINTER(0);
	SupportRequestRows *req;
	FuncExpr   *fexpr;
	Node	   *users_arg;
	Node	   *days_arg;

	if (!IsA(rawreq, SupportRequestRows))
		PG_RETURN_POINTER(NULL);
	req = (SupportRequestRows *) rawreq;
	if (!is_funcclause(req->node))
		PG_RETURN_POINTER(NULL);
	fexpr = (FuncExpr *) req->node;
	if (list_length(fexpr->args) != 8 && list_length(fexpr->args) != 9)
		PG_RETURN_POINTER(NULL);
	users_arg = estimate_expression_value(req->root, linitial(fexpr->args));
	days_arg = estimate_expression_value(req->root, list_nth(fexpr->args, 4));
	if (!IsA(users_arg, Const) || ((Const *) users_arg)->constisnull ||
		!IsA(days_arg, Const) || ((Const *) days_arg)->constisnull)
		PG_RETURN_POINTER(NULL);

	req->rows = Max(1.0, (double) DatumGetInt32(((Const *) users_arg)->constvalue)) *
		Clamp((double) DatumGetInt32(((Const *) days_arg)->constvalue), 1, GEN_MAX_DAYS) *
		GEN_EVENTS_PER_USER_DAY;
	PG_RETURN_POINTER(req);
}
