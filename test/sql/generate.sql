-- userseq_generate_events: determinism, independence of users, shape, distribution sanity,
-- planted patterns, churn_rate, argument validation. Small sizes only.
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS userseq;
RESET client_min_messages;
SET TimeZone = 'UTC';

CREATE FUNCTION gen_md5(u int, s bigint) RETURNS text LANGUAGE sql AS $$
	SELECT md5(string_agg(concat_ws(' ', user_id, ts, behavior, item_id, category), ','
		ORDER BY user_id, ts, behavior, item_id))
	FROM userseq_generate_events(u, s) $$;

-- same seed, same rows; another seed, other rows
SELECT gen_md5(200, 42) = gen_md5(200, 42) AS same_seed_same_rows,
	gen_md5(200, 42) <> gen_md5(200, 43) AS other_seed_other_rows,
	gen_md5(200, -7) = gen_md5(200, -7) AS negative_seed_ok;
-- a user's events do not depend on how many users are generated
SELECT (SELECT md5(string_agg(concat_ws(' ', user_id, ts, behavior, item_id), ',' ORDER BY user_id, ts, behavior, item_id))
		FROM userseq_generate_events(1000, 5) WHERE user_id <= 10) =
	(SELECT md5(string_agg(concat_ws(' ', user_id, ts, behavior, item_id), ',' ORDER BY user_id, ts, behavior, item_id))
		FROM userseq_generate_events(10, 5)) AS users_independent;

-- shape: every user has events, ids and times in range, rows ordered by user then time
CREATE TEMP TABLE g AS
SELECT o.* FROM userseq_generate_events(2000, 42, items => 2000, categories => 20, days => 60,
	start_at => '2023-06-01 00:00:00+00') WITH ORDINALITY o;
ANALYZE g;
SELECT count(DISTINCT user_id) AS users, min(user_id) AS min_user, max(user_id) AS max_user,
	min(item_id) >= 1 AND max(item_id) <= 2000 AS items_in_range,
	count(DISTINCT category) AS categories, min(category) AS min_cat, max(category) AS max_cat,
	min(ts) >= '2023-06-01' AND max(ts) < '2023-06-01'::timestamptz + interval '60 days' AS ts_in_range,
	count(*) BETWEEN 2000 * 15 AND 2000 * 80 AS plausible_row_count
FROM g;
SELECT bool_and(user_id > pu OR (user_id = pu AND ts >= pts)) AS ordered_by_user_then_time
FROM (SELECT user_id, ts, lag(user_id) OVER w AS pu, lag(ts) OVER w AS pts
	FROM g WINDOW w AS (ORDER BY ordinality)) x WHERE pu IS NOT NULL;
-- an item always has the same category
SELECT count(*) AS items_with_two_categories
FROM (SELECT item_id FROM g GROUP BY item_id HAVING count(DISTINCT category) > 1) x;

-- behaviour distribution: all present, funnel narrows
SELECT behavior, count(*) > 0 AS present FROM g GROUP BY behavior ORDER BY behavior;
SELECT count(*) FILTER (WHERE behavior = 'return') < count(*) FILTER (WHERE behavior = 'buy')
	AND count(*) FILTER (WHERE behavior = 'buy') < count(*) FILTER (WHERE behavior = 'cart')
	AND count(*) FILTER (WHERE behavior = 'cart') < count(*) FILTER (WHERE behavior = 'view') AS funnel_narrows,
	count(*) FILTER (WHERE behavior = 'cart')::float8 / count(*) FILTER (WHERE behavior = 'view')
		BETWEEN 0.03 AND 0.4 AS view_to_cart_plausible
FROM g;
-- every buy follows a cart of the same item, every return follows a buy of it
SELECT count(*) AS buys_without_cart FROM g b WHERE behavior = 'buy' AND NOT EXISTS
	(SELECT 1 FROM g c WHERE c.user_id = b.user_id AND c.item_id = b.item_id AND c.behavior = 'cart' AND c.ts < b.ts);
SELECT count(*) AS returns_without_buy FROM g r WHERE behavior = 'return' AND NOT EXISTS
	(SELECT 1 FROM g c WHERE c.user_id = r.user_id AND c.item_id = r.item_id AND c.behavior = 'buy' AND c.ts < r.ts);
-- Zipf popularity: the top 5% of items take far more than 5% of the views
SELECT sum(n) FILTER (WHERE rk <= 100)::float8 / sum(n) > 0.25 AS popularity_skewed
FROM (SELECT count(*) AS n, row_number() OVER (ORDER BY count(*) DESC) AS rk
	FROM g WHERE behavior = 'view' GROUP BY item_id) x;
-- planted pattern (a): predicting the next viewed item as the most frequent successor seen
-- in the odd users beats, on the even users, the category's most viewed other item (measured
-- here 0.42 against 0.26; with the pattern switched off, on 500 items, 0.34 against 0.33)
CREATE TEMP TABLE tr AS
SELECT user_id % 2 AS half, a, b, category
FROM (SELECT user_id, item_id AS a, category, behavior, lead(item_id) OVER w AS b,
		lead(behavior) OVER w AS nb
	FROM g WINDOW w AS (PARTITION BY user_id ORDER BY ordinality)) x
WHERE behavior = 'view' AND nb = 'view' AND a <> b;
CREATE TEMP TABLE succ AS
SELECT DISTINCT ON (a) a, b FROM tr WHERE half = 1 GROUP BY a, b ORDER BY a, count(*) DESC, b;
CREATE TEMP TABLE pop AS
SELECT category, array_agg(item_id ORDER BY rk) AS top2
FROM (SELECT category, item_id,
		row_number() OVER (PARTITION BY category ORDER BY count(*) DESC, item_id) AS rk
	FROM g WHERE user_id % 2 = 1 AND behavior = 'view' GROUP BY category, item_id) p
WHERE rk <= 2 GROUP BY category;
ANALYZE tr;
ANALYZE succ;
ANALYZE pop;
SELECT avg((tr.b = s.b)::int) > 1.3 * avg((tr.b = CASE WHEN p.top2[1] = tr.a THEN p.top2[2] ELSE p.top2[1] END)::int)
	AS next_item_pattern
FROM tr LEFT JOIN succ s USING (a) JOIN pop p USING (category) WHERE tr.half = 0;

-- churn_rate: with everyone churning, far fewer users are active in the last 10 days
SELECT count(DISTINCT user_id) FILTER (WHERE r = 1) * 2 < count(DISTINCT user_id) FILTER (WHERE r = 0)
	AS churners_leave
FROM (VALUES (0), (1)) v(r), LATERAL userseq_generate_events(500, 3, churn_rate => r)
WHERE ts >= '2024-03-21';
-- planted pattern (b): churners end on sessions with a cart and no buy
SELECT avg(cwb) FILTER (WHERE rate = 1) > 2 * avg(cwb) FILTER (WHERE rate = 0) AS churn_signal
FROM (SELECT rate, user_id,
		count(*) FILTER (WHERE behavior = 'cart') - count(*) FILTER (WHERE behavior = 'buy') AS cwb
	FROM (SELECT rate, e.*, max(e.ts) OVER (PARTITION BY rate, e.user_id) AS last_ts
		FROM (VALUES (0), (1)) r(rate),
			LATERAL userseq_generate_events(300, 9, churn_rate => rate) e) x
	WHERE ts >= last_ts - interval '21 days'
	GROUP BY rate, user_id) y;

-- edge sizes
SELECT count(DISTINCT item_id) <= 10 AS tiny_catalogue FROM userseq_generate_events(50, 1, items => 10, categories => 1);
SELECT count(DISTINCT category) <= 10 AS one_item_per_category FROM userseq_generate_events(50, 1, items => 10, categories => 10);
SELECT count(*) > 0 AS one_day FROM userseq_generate_events(50, 1, days => 1);
SELECT count(*) > 0 AS uniform_popularity FROM userseq_generate_events(50, 1, zipf => 0);
-- STRICT: a NULL argument gives no rows
SELECT count(*) AS null_seed_rows FROM userseq_generate_events(10, NULL);

-- argument validation
SELECT count(*) FROM userseq_generate_events(0);
SELECT count(*) FROM userseq_generate_events(10000001);
SELECT count(*) FROM userseq_generate_events(-5);
SELECT count(*) FROM userseq_generate_events(10, items => 9);
SELECT count(*) FROM userseq_generate_events(10, items => 10000001);
SELECT count(*) FROM userseq_generate_events(10, categories => 0);
SELECT count(*) FROM userseq_generate_events(10, items => 20, categories => 21);
SELECT count(*) FROM userseq_generate_events(10, days => 0);
SELECT count(*) FROM userseq_generate_events(10, days => 3651);
SELECT count(*) FROM userseq_generate_events(10, churn_rate => -0.1);
SELECT count(*) FROM userseq_generate_events(10, churn_rate => 'NaN');
SELECT count(*) FROM userseq_generate_events(10, zipf => 3.5);
SELECT count(*) FROM userseq_generate_events(10, zipf => '-Infinity');
SELECT count(*) FROM userseq_generate_events(10, start_at => 'infinity');
SELECT count(*) FROM userseq_generate_events(10, start_at => '294276-12-30 00:00:00+00');

-- labels and the planner's row estimate (users x days x 0.53)
SELECT provolatile, proparallel, proisstrict, prosupport <> 0 AS has_support
FROM pg_proc WHERE proname = 'userseq_generate_events';
EXPLAIN (COSTS ON) SELECT * FROM userseq_generate_events(1000, 1, days => 30);

-- leave nothing behind for the next suite
DROP FUNCTION gen_md5(int, bigint);
DROP EXTENSION userseq;
