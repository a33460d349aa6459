-- Scoring: results by name and by value agree, the decoded-model cache (100,000 rows decode
-- once, a new deployed version is picked up by the next query), NULL / empty / unknown-item
-- inputs, wrong tasks, unknown models and corrupt model bytes.
BEGIN;
CREATE EXTENSION IF NOT EXISTS userseq;
SELECT plan(29);
SET LOCAL client_min_messages = warning;
SET LOCAL max_parallel_workers_per_gather = 0;	-- cache counters are per backend

CREATE TEMP TABLE sc_d AS
SELECT u, userseq(ARRAY(SELECT ((u * 3 + e * 5) % 40 + 1)::int8 FROM generate_series(1, 3 + u % 9) e)) AS seq,
	   (u * 3) % 40 < 10 AS label, (u % 7)::float8 AS y, (ARRAY['lo', 'mid', 'hi'])[1 + u % 3] AS cls
FROM generate_series(1, 400) u;
SELECT count(*) FROM userseq_train('sc_bin', 'SELECT seq, label FROM sc_d', 'binary',
	'{"epochs": 1, "embedding_dim": 8, "num_filters": 8, "hidden_dim": 8, "seed": 1}');
SELECT count(*) FROM userseq_train('sc_reg', 'SELECT seq, y AS label FROM sc_d', 'regression',
	'{"epochs": 1, "embedding_dim": 8, "num_filters": 8, "hidden_dim": 8, "seed": 1}');
SELECT count(*) FROM userseq_train('sc_mc', 'SELECT seq, cls AS label FROM sc_d', 'multiclass',
	'{"epochs": 1, "embedding_dim": 8, "num_filters": 8, "hidden_dim": 8, "seed": 1}');
CREATE TEMP TABLE sc_big AS SELECT g, (SELECT seq FROM sc_d WHERE u = 1 + g % 400) AS seq FROM generate_series(1, 100000) g;

-- ---------------------------------------------------------------- the cache
SELECT userseq_cache_reset();
CREATE TEMP TABLE sc_s0 AS SELECT * FROM userseq_cache_stats();
SELECT is((SELECT count(userseq_predict('sc_bin', seq)) FROM sc_big), 100000::bigint, '100,000 rows scored by name');
SELECT is((SELECT decodes FROM userseq_cache_stats()) - (SELECT decodes FROM sc_s0), 1::bigint, '... with one decode');
SELECT is((SELECT count(userseq_predict('sc_bin', seq)) FROM sc_big), 100000::bigint, 'the same query again');
SELECT is((SELECT decodes FROM userseq_cache_stats()) - (SELECT decodes FROM sc_s0), 1::bigint, '... decodes nothing more');
SELECT is((SELECT sum(userseq_predict(m.weights, s.seq)) FROM sc_big s, models m WHERE m.name = 'sc_bin' AND m.deployed),
		  (SELECT sum(userseq_predict('sc_bin', seq)) FROM sc_big), '100,000 rows by value give the same scores as by name');
SELECT is((SELECT decodes FROM userseq_cache_stats()) - (SELECT decodes FROM sc_s0), 1::bigint, '... and share the cached model (no decode)');

-- a new deployed version is seen by the next query (and decoded once)
CREATE TEMP TABLE sc_v1 AS SELECT userseq_predict('sc_bin', seq) AS p FROM sc_d WHERE u = 5;
SELECT count(*) FROM userseq_train('sc_bin', 'SELECT seq, label FROM sc_d', 'binary',
	'{"epochs": 2, "embedding_dim": 8, "num_filters": 8, "hidden_dim": 8, "seed": 99}');
SELECT is((SELECT version FROM models WHERE name = 'sc_bin' AND deployed), 2, 'retrain deployed version 2');
SELECT isnt((SELECT userseq_predict('sc_bin', seq) FROM sc_d WHERE u = 5), (SELECT p FROM sc_v1), 'the next query scores with version 2');
SELECT is((SELECT userseq_predict('sc_bin', seq) FROM sc_d WHERE u = 5),
		  (SELECT userseq_predict(weights, seq) FROM models, sc_d WHERE name = 'sc_bin' AND version = 2 AND u = 5),
		  '... which is the bytes of version 2');
SELECT is((SELECT decodes FROM userseq_cache_stats()) - (SELECT decodes FROM sc_s0), 2::bigint, '... decoded once more');
-- within one query the version stays fixed even if deployment changes mid-query
SELECT is((SELECT count(DISTINCT p) FROM (
			SELECT userseq_predict('sc_bin', d.seq) AS p
			FROM generate_series(1, 3) i CROSS JOIN LATERAL (
				SELECT seq FROM sc_d WHERE u = 5 AND (i <> 2 OR userseq_deploy('sc_bin', 1) IS NOT NULL)) d) x)::int,
		  1, 'a running query keeps the version it started with');
SELECT is((SELECT userseq_predict('sc_bin', seq) FROM sc_d WHERE u = 5), (SELECT p FROM sc_v1), 'the next query sees the rollback to version 1');

-- ---------------------------------------------------------------- values and shapes
SELECT ok((SELECT bool_and(userseq_predict('sc_bin', seq) BETWEEN 0 AND 1) FROM sc_d), 'binary: probabilities');
SELECT is(userseq_predict('sc_bin', NULL::userseq), NULL, 'NULL sequence: NULL');
SELECT ok(userseq_predict('sc_bin', userseq('{}'::int8[])) BETWEEN 0 AND 1, 'empty sequence: the all-padding output');
SELECT ok(userseq_predict('sc_bin', userseq('{999999,888888}'::int8[])) BETWEEN 0 AND 1, 'unknown items: the out-of-vocabulary row');
SELECT is(userseq_predict_proba('sc_bin', seq), ARRAY[1 - userseq_predict('sc_bin', seq), userseq_predict('sc_bin', seq)], 'binary proba is {1-p, p}')
FROM sc_d WHERE u = 7;
SELECT is(userseq_class_labels('sc_mc'), '{hi,lo,mid}'::text[], 'multiclass labels (sorted)');
SELECT ok((SELECT bool_and(abs((SELECT sum(x) FROM unnest(userseq_predict_proba('sc_mc', seq)) x) - 1) < 1e-5) FROM sc_d), 'multiclass probabilities sum to 1');
SELECT ok((SELECT bool_and(userseq_predict_class('sc_mc', seq) = (userseq_class_labels('sc_mc'))[
			(SELECT i FROM unnest(userseq_predict_proba('sc_mc', seq)) WITH ORDINALITY p(x, i) ORDER BY x DESC, i LIMIT 1)]) FROM sc_d),
		  'predict_class is the label of the largest probability');
SELECT is(array_length(userseq_embed('sc_bin', seq), 1), 3 * 8, 'embedding: widths x filters') FROM sc_d WHERE u = 3;

-- ---------------------------------------------------------------- errors
SELECT throws_ok($$SELECT userseq_predict('no_such_model', userseq('{1}'::int8[]))$$, '42704', NULL, 'unknown model');
SELECT throws_ok($$SELECT userseq_predict_class('sc_reg', userseq('{1}'::int8[]))$$, '42809', NULL, 'predict_class on a regression model');
SELECT throws_ok($$SELECT * FROM userseq_recommend('sc_bin', userseq('{1}'::int8[]))$$, '42809', NULL, 'recommend on a binary model');
SELECT throws_ok($$SELECT userseq_predict('\x'::bytea, userseq('{1}'::int8[]))$$, '22P03', NULL, 'empty bytea');
SELECT throws_ok($$SELECT userseq_predict('\x0102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f2021'::bytea, userseq('{1}'::int8[]))$$,
				 '22P03', NULL, 'random bytes');
SELECT throws_ok($$SELECT userseq_predict(substring(weights from 1 for length(weights) - 9), userseq('{1}'::int8[])) FROM models WHERE name = 'sc_reg'$$,
				 '22P03', NULL, 'truncated bytes');
SELECT throws_ok($$SELECT userseq_predict(overlay(weights placing '\xff'::bytea from length(weights) - 20 for 1), userseq('{1}'::int8[])) FROM models WHERE name = 'sc_reg'$$,
				 '22P03', NULL, 'a flipped byte, although the intact model is cached');
SELECT throws_ok($$SELECT userseq_predict(overlay(weights placing '\x00'::bytea from 1 for 1), userseq('{1}'::int8[])) FROM models WHERE name = 'sc_reg'$$,
				 '22P03', NULL, 'a flipped magic byte');

SELECT * FROM finish();
ROLLBACK;
