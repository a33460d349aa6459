-- userseq_recommend: ranks and order, exclude_seen (also for items older than max_len), k
-- larger than the catalogue, k = 0 and negative k, empty / single-event / unknown-item
-- sequences, by value, next_behavior classification and its evaluation against the prior and
-- markov baselines.
BEGIN;
CREATE EXTENSION IF NOT EXISTS userseq;
SELECT plan(21);
SET LOCAL client_min_messages = warning;

CREATE TEMP TABLE rc_d AS
SELECT u, userseq(ARRAY(SELECT ((u + e) % 30 + 1)::int8 FROM generate_series(1, 4 + u % 8) e)) AS seq
FROM generate_series(1, 300) u;
SELECT count(*) FROM userseq_train('rc_ni', 'SELECT seq FROM rc_d', 'next_item',
	'{"epochs": 2, "embedding_dim": 8, "num_filters": 8, "hidden_dim": 8, "max_len": 5, "seed": 1}');
-- catalogue: items 1..30
SELECT is((SELECT count(*) FROM userseq_recommend('rc_ni', userseq('{1,2,3}'::int8[]), 5))::int, 5, 'k rows');
SELECT is((SELECT array_agg(rank ORDER BY rank) FROM userseq_recommend('rc_ni', userseq('{1,2,3}'::int8[]), 5)), '{1,2,3,4,5}'::int[], 'ranks 1..k');
SELECT ok((SELECT bool_and(score >= next) FROM (SELECT score, lead(score) OVER (ORDER BY rank) AS next
		   FROM userseq_recommend('rc_ni', userseq('{1,2,3}'::int8[]), 30, false)) x WHERE next IS NOT NULL), 'scores never increase with rank');
SELECT is((SELECT count(*) FROM userseq_recommend('rc_ni', userseq('{1,2,3}'::int8[]), 1000, false))::int, 30, 'k larger than the catalogue: the whole catalogue');
SELECT is((SELECT count(*) FROM userseq_recommend('rc_ni', userseq('{1,2,3}'::int8[]), 1000))::int, 27, 'exclude_seen removes the 3 seen items');
SELECT is((SELECT count(*) FROM userseq_recommend('rc_ni', userseq('{1,2,3}'::int8[]), 1000) WHERE item IN (1, 2, 3))::int, 0, '... and none of them is returned');
-- max_len is 5: items 1 and 2 are older than the model's window but still excluded
SELECT is((SELECT count(*) FROM userseq_recommend('rc_ni', userseq('{1,2,10,11,12,13,14}'::int8[]), 1000) WHERE item IN (1, 2, 10, 11, 12, 13, 14))::int, 0,
		  'exclude_seen also removes items older than the model''s window');
SELECT is((SELECT count(*) FROM userseq_recommend('rc_ni', userseq('{1,2,10,11,12,13,14}'::int8[]), 1000))::int, 23, '... and returns every other item');
SELECT is((SELECT count(*) FROM userseq_recommend('rc_ni', userseq('{1,2,3}'::int8[]), 0))::int, 0, 'k = 0: no rows');
SELECT throws_ok($$SELECT * FROM userseq_recommend('rc_ni', userseq('{1}'::int8[]), -1)$$, '22023', NULL, 'negative k');
SELECT is((SELECT count(*) FROM userseq_recommend('rc_ni', userseq('{}'::int8[]), 10))::int, 10, 'empty sequence: recommendations for no history');
SELECT is((SELECT count(*) FROM userseq_recommend('rc_ni', userseq('{7}'::int8[]), 10) WHERE item = 7)::int, 0, 'single-event sequence: the item is excluded');
SELECT is((SELECT count(*) FROM userseq_recommend('rc_ni', userseq('{123456,654321}'::int8[]), 10))::int, 10, 'unknown items: recommendations from the out-of-vocabulary row');
SELECT is((SELECT array_agg(item ORDER BY rank) FROM models m, LATERAL userseq_recommend(m.weights, userseq('{4,5,6}'::int8[]), 10) WHERE m.name = 'rc_ni' AND m.deployed),
		  (SELECT array_agg(item ORDER BY rank) FROM userseq_recommend('rc_ni', userseq('{4,5,6}'::int8[]), 10)), 'by value gives the same items');
SELECT is((SELECT count(*) FROM rc_d, LATERAL userseq_recommend('rc_ni', seq, 3))::int, 900, 'LATERAL over a table');

-- next_behavior: classification functions
CREATE TEMP TABLE rc_b AS
SELECT u, userseq(ARRAY(SELECT ((u + e) % 30 + 1)::int8 FROM generate_series(1, 6) e),
				  ARRAY(SELECT timestamptz '2024-01-01' + e * interval '1 hour' FROM generate_series(1, 6) e),
				  ARRAY(SELECT (ARRAY['view', 'cart', 'buy'])[1 + e % 3] FROM generate_series(1, 6) e)) AS seq
FROM generate_series(1, 200) u;
SELECT count(*) FROM userseq_train('rc_nb', 'SELECT seq FROM rc_b', 'next_behavior',
	'{"epochs": 1, "embedding_dim": 8, "num_filters": 8, "hidden_dim": 8, "seed": 1}');
SELECT is(userseq_class_labels('rc_nb'), '{buy,cart,view}'::text[], 'next_behavior labels');
SELECT ok(userseq_predict_class('rc_nb', seq) = ANY (userseq_class_labels('rc_nb'))
		  AND array_length(userseq_predict_proba('rc_nb', seq), 1) = 3, 'next_behavior predict_class / predict_proba')
FROM rc_b WHERE u = 1;

-- next_behavior evaluation: behaviours repeat view, view, cart from a random phase, so the next
-- one depends on the last two. First-order transitions cannot tell the first view from the
-- second (markov and prior about 2/3); the model's widths see both.
CREATE TEMP TABLE rc_p AS
SELECT u, userseq(ARRAY(SELECT (1 + (u * 7 + e) % 40)::int8 FROM generate_series(1, n) e),
				  ARRAY(SELECT timestamptz '2024-01-01' + e * interval '1 hour' FROM generate_series(1, n) e),
				  ARRAY(SELECT (ARRAY['view', 'view', 'cart'])[1 + (e + u) % 3] FROM generate_series(1, n) e)) AS seq
FROM generate_series(1, 400) u, LATERAL (SELECT 8 + u % 7 AS n) l;
SELECT count(*) FROM userseq_train('rc_np', 'SELECT seq FROM rc_p WHERE u <= 300', 'next_behavior',
	'{"epochs": 15, "learning_rate": 0.01, "embedding_dim": 8, "num_filters": 8, "hidden_dim": 8, "seed": 1}');
CREATE TEMP TABLE rc_e AS SELECT * FROM userseq_evaluate('rc_np', 'SELECT seq FROM rc_p WHERE u > 300');
SELECT is((SELECT array_agg(DISTINCT scorer ORDER BY scorer) FROM rc_e WHERE protocol = 'leave_last_out'),
		  '{markov,model,prior}'::text[], 'next_behavior evaluation reports the model, markov and prior');
SELECT is((SELECT count(*) FROM rc_e WHERE scorer IN ('markov', 'prior'))::int, 14, '... with every metric for both baselines');
SELECT ok((SELECT value FROM rc_e WHERE scorer = 'markov' AND metric = 'accuracy') BETWEEN 0.55 AND 0.8
		  AND (SELECT value FROM rc_e WHERE scorer = 'prior' AND metric = 'accuracy') BETWEEN 0.55 AND 0.8,
		  'baselines near 2/3 on the second-order pattern');
SELECT ok((SELECT value FROM rc_e WHERE scorer = 'model' AND metric = 'accuracy') >=
		  (SELECT value FROM rc_e WHERE scorer = 'markov' AND metric = 'accuracy') + 0.2,
		  'the model beats first-order transitions by 0.2 accuracy');

SELECT * FROM finish();
ROLLBACK;
