-- Validation method "last_basket" (README "Training", option "validation"): next_* models
-- validate on the first event of each sequence's last basket (the events within "within" of its
-- last event), given the baskets before it, so validation asks the question a next-basket test
-- asks. leave_one_out validates an item of the last basket given the others, a different
-- question on basket data. Planted: every basket is a chain (a, f(a), f(f(a))) bought a second apart,
-- and the next basket's first item is drawn at random, so the within-basket question is easy
-- (counting a -> f(a)) and the next-basket question is not. Data from md5: the same everywhere.
BEGIN;
CREATE EXTENSION IF NOT EXISTS userseq;
SELECT plan(15);
SET LOCAL client_min_messages = warning;

\set seq_table lb
\set train_options '{}'
\ir tiny_next_item.psql

-- 1,200 users, 3-6 baskets each, one day apart; 400 items; a basket is a, f(a), f(f(a)), 1 s apart
CREATE TEMP TABLE lb_events AS
WITH b AS (
	SELECT u, k, 1 + pg_temp.h(u, k, 1) % 400 AS a
	FROM generate_series(1, 1200) u,
		LATERAL generate_series(1, 3 + (pg_temp.h(u, 0, 2) % 4)::int) k)
SELECT u, a AS item, timestamptz '2024-01-01' + k * interval '1 day' AS ts FROM b
UNION ALL
SELECT u, ((a - 1) * 37 + 5) % 400 + 1, timestamptz '2024-01-01' + k * interval '1 day' + interval '1 second' FROM b
UNION ALL
SELECT u, ((((a - 1) * 37 + 5) % 400) * 37 + 5) % 400 + 1,
	timestamptz '2024-01-01' + k * interval '1 day' + interval '2 seconds' FROM b;
CREATE TEMP TABLE lb AS SELECT u, userseq_agg(item, ts) AS seq FROM lb_events GROUP BY u;

SELECT pg_temp.train('lb_loo', '{"validation": {"method": "leave_one_out"}}');
SELECT pg_temp.train('lb_last', '{"validation": {"method": "last_basket", "within": "1 minute"}}');
SELECT diag('leave_one_out: ' || pg_temp.metrics('lb_loo')::text);
SELECT diag('last_basket: ' || pg_temp.metrics('lb_last')::text);

-- every user has >= 3 baskets: one validation sequence each, trained on the baskets before
SELECT is((pg_temp.metrics('lb_last')->>'valid_sequences')::int, 1200,
	'last_basket: one validation sequence per user');
SELECT is((pg_temp.metrics('lb_last')->>'train_sequences')::int, 1200,
	'last_basket: every user trains on the baskets before the last');
SELECT alike(pg_temp.metrics('lb_last')->>'protocol', 'last basket per user (events within 60 s%',
	'the protocol names the method and its window');
SELECT is((SELECT config->'validation' FROM models WHERE name = 'lb_last'),
	'{"method": "last_basket", "within": "60000000 microseconds"}'::jsonb,
	'config records the method and the window');
-- the within-basket question is easy for counting, the next-basket one is not
SELECT ok((pg_temp.metrics('lb_loo')->>'ndcg@10')::float8 > 0.5,
	'leave_one_out validates inside the last basket: ndcg@10 > 0.5 (the chain rule)');
SELECT ok((pg_temp.metrics('lb_last')->>'ndcg@10')::float8 < 0.1,
	'last_basket validates the next basket''s first item: ndcg@10 < 0.1 (random by construction)');
SELECT ok((pg_temp.metrics('lb_loo')->>'transition_weight')::float8 > 0,
	'leave_one_out: the chain rule gives the prior a positive weight');

-- without the window the last basket is only the last event (a basket's events are 1 s apart):
-- validation then asks for the chain's third item, an easy one again
SELECT pg_temp.train('lb_same_ts', '{"validation": {"method": "last_basket"}}');
SELECT ok((pg_temp.metrics('lb_same_ts')->>'ndcg@10')::float8 > 0.5,
	'last_basket without "within": the last timestamp alone is the last basket');

-- userseq_quantize rebuilds the split from models.config and checks it against training's
SELECT lives_ok($$SELECT userseq_quantize('lb_last')$$, 'quantize re-evaluates a last_basket model');
SELECT is((SELECT metrics->'quantized'->>'evaluated_on' FROM models WHERE name = 'lb_last' ORDER BY version DESC LIMIT 1),
	'validation split',
	'the rebuilt last_basket split matched training''s (evaluated, not skipped)');

-- bad uses, each with its SQLSTATE
SELECT throws_ok($$SELECT * FROM userseq_train('lb_bad', 'SELECT seq, true AS label FROM lb', 'binary',
	'{"validation": {"method": "last_basket"}}')$$, '22023',
	'validation method "last_basket" applies only to tasks next_item and next_behavior',
	'label tasks: 22023');
SELECT throws_ok($$SELECT * FROM userseq_train('lb_bad', 'SELECT userseq_items(seq) AS seq FROM lb', 'next_item',
	'{"validation": {"method": "last_basket"}}')$$, '22023',
	'validation method "last_basket" needs timestamps, but column "seq" is bigint[]',
	'bigint[] sequences have no times: 22023');
SELECT throws_ok($$SELECT * FROM userseq_train('lb_bad', 'SELECT seq FROM lb', 'next_item',
	'{"validation": {"method": "leave_one_out", "within": "1 minute"}}')$$, '22023',
	'"within" applies only to validation method "last_basket"', '"within" with another method: 22023');
SELECT throws_ok($$SELECT * FROM userseq_train('lb_bad', 'SELECT seq FROM lb', 'next_item',
	'{"validation": {"method": "last_basket", "within": "1 month"}}')$$, '22023', NULL,
	'a window in months: 22023');
SELECT throws_ok($$SELECT * FROM userseq_train('lb_bad', 'SELECT seq FROM lb', 'next_item',
	'{"validation": {"method": "last_basket", "within": "-5 seconds"}}')$$, '22023', NULL,
	'a negative window: 22023');

SELECT * FROM finish();
ROLLBACK;
