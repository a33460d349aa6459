-- online_retail_tasks.sql: labelled tasks on the Online Retail events (run after
-- load_online_retail.sql, in the same schema, with userseq installed). Builds three tables:
--
--   or_params(cutoff, end_ts)           the prediction time and the end of the data
--   or_customers(user_id, split, seq, inv_seq, churned, repeat30, recency_days, invoices, ...)
--       one row per customer with at least one purchase before the cutoff
--   or_next_item(user_id, split, train_seq, eval_seq)
--       one row per customer with purchases on at least two distinct invoice times
--
-- It trains nothing: the demo (test/demo.sql) and the test (test/t/online_retail.sh) do.
--
-- Time. end_ts = the last event; cutoff = the start of the UK day 90 days before the day of the
-- last event (2011-09-10 00:00 Europe/London), so [cutoff, end_ts] is the final ~90 days.
--
-- Labels (only what happened before the cutoff goes into seq and the baselines):
--   churned   no 'buy' event in [cutoff, end_ts]
--   repeat30  at least one 'buy' event in [cutoff, cutoff + 30 days): a repeat purchase in the
--             month after the prediction time. Not the complement of churned: a customer who
--             buys in month two or three is neither churned nor a 30-day repeater.
-- seq: every event before the cutoff (behaviours buy and return), plus one marker event at the
-- cutoff (item 0, behaviour 'cutoff'). The model's time-gap input is the gap between consecutive
-- events, so without the marker it could not see how long ago the last purchase was; with it,
-- the marker's gap bucket is the recency. The marker uses only the cutoff time, which is known
-- at prediction time, so it leaks nothing.
--
-- inv_seq: the same pre-cutoff history as ONE event per invoice (item 0) whose behaviour label
-- carries what a convolution with max pooling cannot count: 'buy:<k>:<s>' with k = which purchase
-- of the customer this is, bucketed 1, 2-3, 4-7, 8-15, 16+ (so the pooled features can see
-- "reached k invoices"), s = invoice lines, bucketed s1, s2-5, s6-20, s21+; returns 'return:<s>';
-- then the same cutoff marker. Chosen on the validation split for repeat30 (README, "Online
-- Retail: results"); churn uses seq, since no such feature helped it on validation.
--
-- Split: by customer, from the first 8 hex digits of md5(user_id) mod 100: 0-69 train,
-- 70-84 valid (hyperparameter choice), 85-99 test (held out; evaluation only). The same
-- customer is in the same split in every task.
--
-- Baselines (recency/frequency, computed from the same pre-cutoff events): recency_days = days
-- from the last purchase to the cutoff, invoices = distinct purchase times (an invoice has one
-- time), plus spend and active days for reference.
--
-- Next item: a customer's purchases (buys only), one event per distinct (invoice time, item).
-- Items of one invoice share a time; userseq_agg would order them by item id, which is a
-- property of stock codes, not of behaviour, so each event gets a deterministic pseudo-random
-- offset of 0-59 seconds (invoice times have minute resolution, so invoices never mix).
--   train_seq  the whole purchase sequence (training, leave-one-out validation inside it)
--   eval_seq   every purchase before the customer's last invoice, then ONE item of the last
--              invoice (the one with the smallest md5(user_id:item_id)): leave-last-out on it
--              asks "which item will be in the next basket, given the earlier baskets", with no
--              item of the target basket in the input.

BEGIN;

CREATE TABLE or_params AS
SELECT ((((max(ts) AT TIME ZONE 'Europe/London')::date - 90)::timestamp)
			AT TIME ZONE 'Europe/London') AS cutoff,
	max(ts) AS end_ts
FROM events;
COMMENT ON TABLE or_params IS 'Online Retail tasks: prediction time (cutoff) and end of the data';

CREATE TABLE or_customers AS
WITH p AS (SELECT cutoff, end_ts FROM or_params),
split AS (
	SELECT user_id,
		CASE
			WHEN ('x' || substr(md5(user_id::text), 1, 8))::bit(32)::bigint % 100 < 70 THEN 'train'
			WHEN ('x' || substr(md5(user_id::text), 1, 8))::bit(32)::bigint % 100 < 85 THEN 'valid'
			ELSE 'test'
		END AS split
	FROM (SELECT DISTINCT user_id FROM events) u
),
before AS (
	SELECT e.user_id,
		userseq_agg(e.item_id, e.ts, e.behavior) AS events_seq,
		max(e.ts) FILTER (WHERE e.behavior = 'buy') AS last_buy,
		count(DISTINCT e.ts) FILTER (WHERE e.behavior = 'buy') AS invoices,
		count(DISTINCT (e.ts AT TIME ZONE 'Europe/London')::date) FILTER (WHERE e.behavior = 'buy') AS active_days,
		sum(e.quantity * e.price) FILTER (WHERE e.behavior = 'buy') AS spend
	FROM events e, p
	WHERE e.ts < p.cutoff
	GROUP BY e.user_id
),
-- one event per invoice (buy or return) for inv_seq; k = the invoice's number among the
-- customer's buys, lines = its invoice lines
invoice AS (
	SELECT e.user_id, e.ts, e.behavior, count(*) AS lines,
		row_number() OVER (PARTITION BY e.user_id, e.behavior ORDER BY e.ts) AS k
	FROM events e, p
	WHERE e.ts < p.cutoff
	GROUP BY e.user_id, e.ts, e.behavior
),
invoice_seq AS (
	SELECT user_id,
		userseq_agg(0::bigint, ts,
			CASE WHEN behavior = 'return' THEN 'return'
			ELSE 'buy:' || CASE WHEN k = 1 THEN '1' WHEN k <= 3 THEN '2-3' WHEN k <= 7 THEN '4-7'
					WHEN k <= 15 THEN '8-15' ELSE '16+' END
			END
			|| CASE WHEN lines = 1 THEN ':s1' WHEN lines <= 5 THEN ':s2-5'
				WHEN lines <= 20 THEN ':s6-20' ELSE ':s21+' END) AS inv_seq
	FROM invoice
	GROUP BY user_id
),
after AS (
	SELECT e.user_id,
		bool_or(e.ts < p.cutoff + interval '30 days') AS bought_30d
	FROM events e, p
	WHERE e.ts >= p.cutoff AND e.behavior = 'buy'
	GROUP BY e.user_id
)
SELECT b.user_id, s.split,
	b.events_seq || userseq(ARRAY[0::bigint], ARRAY[p.cutoff], ARRAY['cutoff']) AS seq,
	i.inv_seq || userseq(ARRAY[0::bigint], ARRAY[p.cutoff], ARRAY['cutoff']) AS inv_seq,
	a.user_id IS NULL AS churned,
	coalesce(a.bought_30d, false) AS repeat30,
	extract(epoch FROM p.cutoff - b.last_buy) / 86400.0 AS recency_days,
	b.invoices, b.active_days, b.spend
FROM before b
JOIN split s USING (user_id)
JOIN invoice_seq i USING (user_id)
CROSS JOIN p
LEFT JOIN after a USING (user_id)
WHERE b.last_buy IS NOT NULL;
ALTER TABLE or_customers ADD PRIMARY KEY (user_id);
COMMENT ON TABLE or_customers IS 'Online Retail churn / 30-day repeat purchase: customers with a purchase before the cutoff, pre-cutoff sequence + cutoff marker (seq: every event; inv_seq: one event per invoice labelled with its purchase-count and size buckets), labels from after the cutoff, recency/frequency baseline features, split';

CREATE TABLE or_next_item AS
WITH buys AS (
	SELECT DISTINCT user_id, ts, item_id
	FROM events
	WHERE behavior = 'buy'
),
j AS (
	SELECT user_id, ts AS invoice_ts, item_id,
		ts + ('x' || substr(md5(user_id || ':' || item_id || ':' || extract(epoch FROM ts)), 1, 8))::bit(32)::bigint % 60
			* interval '1 second' AS ts,
		max(ts) OVER (PARTITION BY user_id) AS last_invoice_ts,
		md5(user_id || ':' || item_id) AS pick
	FROM buys
),
target AS (
	SELECT DISTINCT ON (user_id) user_id, item_id, ts
	FROM j
	WHERE invoice_ts = last_invoice_ts
	ORDER BY user_id, pick
)
SELECT j.user_id, c.split,
	userseq_agg(j.item_id, j.ts, 'buy') AS train_seq,
	userseq_agg(j.item_id, j.ts, 'buy') FILTER (WHERE j.invoice_ts < j.last_invoice_ts)
		|| userseq(ARRAY[t.item_id], ARRAY[t.ts], ARRAY['buy']) AS eval_seq
FROM j
JOIN target t USING (user_id)
JOIN (SELECT DISTINCT user_id,
		CASE
			WHEN ('x' || substr(md5(user_id::text), 1, 8))::bit(32)::bigint % 100 < 70 THEN 'train'
			WHEN ('x' || substr(md5(user_id::text), 1, 8))::bit(32)::bigint % 100 < 85 THEN 'valid'
			ELSE 'test'
		END AS split
	FROM events) c USING (user_id)
GROUP BY j.user_id, c.split, t.item_id, t.ts
HAVING count(DISTINCT j.invoice_ts) >= 2;
ALTER TABLE or_next_item ADD PRIMARY KEY (user_id);
COMMENT ON TABLE or_next_item IS 'Online Retail next item: purchase sequences (train_seq) and next-basket evaluation sequences (eval_seq: earlier baskets, then one item of the last basket), split';

ANALYZE or_customers;
ANALYZE or_next_item;

-- Task report
SELECT 'churn / repeat30' AS task, split, count(*) AS customers,
	round(avg(churned::int), 3) AS churn_rate, round(avg(repeat30::int), 3) AS repeat30_rate,
	round(avg(userseq_length(seq)), 1) AS mean_events
FROM or_customers GROUP BY split
UNION ALL
SELECT 'next item', split, count(*), NULL, NULL, round(avg(userseq_length(train_seq)), 1)
FROM or_next_item GROUP BY split
ORDER BY 1, 2;

COMMIT;
