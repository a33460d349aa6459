-- The transition prior of next_item models (option "transition_prior", README "Training"):
-- every value of the option and the bad ones with their SQLSTATE, the metrics it records, a
-- planted first-order case where the fitted weight must be positive and raise validation
-- NDCG@10 over the network alone, the model bytes (flags bit 0) through export / import and
-- userseq_quantize, by-value scoring, init_from (the new model's own table, never the source's)
-- and the report. The shared cache's image is checked by test/t/shared_cache.sh.
-- Data come from md5 of (sequence, position, salt): the same on every machine and run.
BEGIN;
CREATE EXTENSION IF NOT EXISTS userseq;
SELECT plan(33);
SET LOCAL client_min_messages = warning;

\set seq_table tp
\set train_options '{"repeat_prior": "off"}'
\ir tiny_next_item.psql

-- planted first order over 800 items: the next item is a fixed function of the previous one
-- 80 % of the time. One epoch of a tiny network cannot hold 800 transitions; counting can.
CREATE TEMP TABLE tp AS
WITH RECURSIVE c(u, t, n, item) AS (
	SELECT u, 1, 6 + (pg_temp.h(u, 0, 1) % 6)::int, 1 + pg_temp.h(u, 0, 2) % 800
	FROM generate_series(1, 1500) u
	UNION ALL
	SELECT u, t + 1, n,
		CASE WHEN pg_temp.h(u, t, 3) % 100 < 80 THEN ((item - 1) * 337 + 11) % 800 + 1
			 ELSE 1 + pg_temp.h(u, t, 4) % 800 END
	FROM c WHERE t < n)
SELECT u, userseq(array_agg(item ORDER BY t)) AS seq FROM c GROUP BY u;

-- ---------------------------------------------------------------- "auto" (the default)
SELECT pg_temp.train('tp_auto', '{}');
SELECT diag('auto: ' || (SELECT jsonb_object_agg(k, v) FROM jsonb_each(pg_temp.metrics('tp_auto')) e(k, v)
						 WHERE k LIKE 'transition%' OR k IN ('ndcg@10', 'network_ndcg@10'))::text);
SELECT is(pg_temp.metrics('tp_auto')->>'transition_prior', 'auto', 'default: the prior is "auto"');
SELECT is((SELECT config->>'transition_prior' FROM models WHERE name = 'tp_auto'), 'auto',
	'config records transition_prior "auto"');
SELECT ok((pg_temp.metrics('tp_auto')->>'transition_weight')::float8 > 0,
	'planted first order: the fitted weight is positive');
SELECT ok((pg_temp.metrics('tp_auto')->>'ndcg@10')::float8 >
		  (pg_temp.metrics('tp_auto')->>'network_ndcg@10')::float8 + 0.05,
	'planted first order: validation ndcg@10 with the prior beats the network alone by > 0.05');
SELECT is((pg_temp.metrics('tp_auto')->'transition_grid_ndcg@10'->>0)::float8,
		  (pg_temp.metrics('tp_auto')->>'network_ndcg@10')::float8,
	'weight 0 of the grid is the network alone');
SELECT is(jsonb_array_length(pg_temp.metrics('tp_auto')->'transition_grid_ndcg@10'),
		  jsonb_array_length(pg_temp.metrics('tp_auto')->'transition_grid'),
	'one validation ndcg@10 per weight of the grid');
-- the stored metric is the model's as stored, and the best of the grid
SELECT ok(abs((pg_temp.metrics('tp_auto')->>'ndcg@10')::float8 -
			  (SELECT max(v::float8) FROM jsonb_array_elements_text(pg_temp.metrics('tp_auto')->'transition_grid_ndcg@10') v)) < 1e-6,
	'stored validation ndcg@10 = the best weight''s');
SELECT ok((pg_temp.metrics('tp_auto')->>'transition_sources')::int BETWEEN 700 AND 800
		  AND (pg_temp.metrics('tp_auto')->>'transition_count')::int > (pg_temp.metrics('tp_auto')->>'transition_sources')::int
		  AND (pg_temp.metrics('tp_auto')->>'transition_bytes')::int =
			  16 + 8 * ((pg_temp.metrics('tp_auto')->>'transition_sources')::int + (pg_temp.metrics('tp_auto')->>'transition_count')::int),
	'table size: sources, transitions and bytes recorded');
SELECT is(get_byte(pg_temp.bytes('tp_auto'), 12), 1, 'model bytes: flags bit 0 (a transition table follows)');

-- ---------------------------------------------------------------- off, fixed
SELECT pg_temp.train('tp_off', '{"transition_prior": false}');
SELECT pg_temp.train('tp_off2', '{"transition_prior": "off"}');
SELECT pg_temp.train('tp_w0', '{"transition_prior": 0}');
SELECT pg_temp.train('tp_w3', '{"transition_prior": 3}');
SELECT ok(pg_temp.metrics('tp_off')->>'transition_prior' = 'off' AND pg_temp.metrics('tp_off2')->>'transition_prior' = 'off'
		  AND get_byte(pg_temp.bytes('tp_off'), 12) = 0 AND pg_temp.bytes('tp_off') = pg_temp.bytes('tp_off2'),
	'false and "off": no table, flags 0, the same bytes');
SELECT ok(pg_temp.metrics('tp_off')->>'ndcg@10' = pg_temp.metrics('tp_auto')->>'network_ndcg@10',
	'off: the stored metric is the network''s, as auto measured it');
SELECT ok(pg_temp.bytes('tp_w0') = pg_temp.bytes('tp_off') AND pg_temp.metrics('tp_w0')->>'transition_prior' = 'fixed',
	'weight 0: stored without the table (the same bytes as off)');
SELECT ok((pg_temp.metrics('tp_w3')->>'transition_weight')::float8 = 3 AND pg_temp.metrics('tp_w3')->>'transition_prior' = 'fixed'
		  AND NOT pg_temp.metrics('tp_w3') ? 'transition_grid' AND get_byte(pg_temp.bytes('tp_w3'), 12) = 1,
	'a number: that weight, not fitted, stored with the table');
SELECT ok((pg_temp.metrics('tp_w3')->>'ndcg@10')::float8 <> (pg_temp.metrics('tp_w3')->>'network_ndcg@10')::float8,
	'a fixed weight: the stored metric is with the prior');
SELECT ok((pg_temp.metrics('tp_auto')->>'memory_estimate_mb')::float8 > (pg_temp.metrics('tp_off')->>'memory_estimate_mb')::float8,
	'the memory estimate counts the prior (auto above off)');

-- ---------------------------------------------------------------- bad values
SELECT throws_ok($$SELECT pg_temp.train('tp_bad', '{"transition_prior": "on"}')$$, '22023', NULL, '"on" is refused (22023)');
SELECT throws_ok($$SELECT pg_temp.train('tp_bad', '{"transition_prior": true}')$$, '22023', NULL, 'true is refused (22023)');
SELECT throws_ok($$SELECT pg_temp.train('tp_bad', '{"transition_prior": -0.5}')$$, '22023', NULL, 'a negative weight is refused (22023)');
SELECT throws_ok($$SELECT pg_temp.train('tp_bad', '{"transition_prior": 1000.5}')$$, '22023', NULL, 'a weight above 1000 is refused (22023)');
SELECT throws_ok($$SELECT pg_temp.train('tp_bad', '{"transition_prior": [1]}')$$, '22023', NULL, 'an array is refused (22023)');
SELECT throws_ok($$SELECT count(*) FROM userseq_train('tp_bad', 'SELECT seq, (u % 2 = 0) AS label FROM tp', 'binary', '{"epochs": 1, "transition_prior": "auto"}')$$,
	'22023', 'option "transition_prior" applies only to task next_item, not to "binary"', 'binary: "auto" is refused (22023)');
SELECT throws_ok($$SELECT count(*) FROM userseq_train('tp_bad', 'SELECT seq, (u % 2 = 0) AS label FROM tp', 'binary', '{"epochs": 1, "transition_prior": 1}')$$,
	'22023', NULL, 'binary: a weight is refused (22023)');
SELECT lives_ok($$SELECT count(*) FROM userseq_train('tp_bin', 'SELECT seq, (u % 2 = 0) AS label FROM tp', 'binary', '{"epochs": 1, "embedding_dim": 8, "num_filters": 8, "hidden_dim": 8, "transition_prior": false}')$$,
	'binary: the default (false) is accepted');
SELECT ok(NOT pg_temp.metrics('tp_bin') ? 'transition_prior' AND NOT (SELECT config FROM models WHERE name = 'tp_bin') ? 'transition_prior',
	'binary: no prior in metrics or config');
SELECT ok(NOT EXISTS (SELECT FROM models WHERE name = 'tp_bad'), 'nothing stored by the refused calls');

-- ---------------------------------------------------------------- scoring paths
CREATE TEMP TABLE tp_q AS SELECT u, seq FROM tp WHERE u % 50 = 0;
-- the prior changes recommendations (so the comparisons below can fail)
SELECT ok((SELECT count(*) FROM tp_q q WHERE (SELECT array_agg(item ORDER BY rank) FROM userseq_recommend('tp_auto', q.seq, 5))
			  IS DISTINCT FROM (SELECT array_agg(item ORDER BY rank) FROM userseq_recommend('tp_off', q.seq, 5))) > 10,
	'the prior changes the top 5 of most users');
SELECT userseq_import('tp_imp', userseq_export('tp_auto'));
SELECT is(pg_temp.bytes('tp_imp'), pg_temp.bytes('tp_auto'), 'export / import: the same bytes');
SELECT is((SELECT md5(string_agg(r.item || ':' || r.score, ',' ORDER BY q.u, r.rank)) FROM tp_q q, LATERAL userseq_recommend('tp_imp', q.seq, 5) r),
		  (SELECT md5(string_agg(r.item || ':' || r.score, ',' ORDER BY q.u, r.rank)) FROM tp_q q, LATERAL userseq_recommend('tp_auto', q.seq, 5) r),
	'the imported model recommends what the original does, scores included');
SELECT is((SELECT md5(string_agg(r.item || ':' || r.score, ',' ORDER BY q.u, r.rank)) FROM tp_q q, LATERAL userseq_recommend(pg_temp.bytes('tp_auto'), q.seq, 5) r),
		  (SELECT md5(string_agg(r.item || ':' || r.score, ',' ORDER BY q.u, r.rank)) FROM tp_q q, LATERAL userseq_recommend('tp_auto', q.seq, 5) r),
	'by-value scoring of the bytes recommends what scoring by name does');
-- int8: the table survives quantization (version 4, flags bit 0) and evaluation compares both with it
SELECT userseq_quantize('tp_auto', NULL, 'SELECT seq FROM tp WHERE u % 10 = 0 ORDER BY u', 1.0);
SELECT ok(get_byte(pg_temp.bytes('tp_auto'), 4) = 4 AND get_byte(pg_temp.bytes('tp_auto'), 12) = 1,
	'userseq_quantize: version 4 with the table');
SELECT ok((SELECT count(*) FROM tp_q q WHERE (SELECT array_agg(item ORDER BY rank) FROM userseq_recommend(pg_temp.bytes('tp_auto'), q.seq, 5))
			  IS NOT DISTINCT FROM (SELECT array_agg(item ORDER BY rank) FROM userseq_recommend((SELECT weights FROM models WHERE name = 'tp_auto' AND version = 1), q.seq, 5))) >= 25,
	'the int8 model recommends as the fp32 one for most users (prior included in both)');
-- init_from: the new model builds its own table from its own training data
SELECT count(*) FROM userseq_train('tp_init', 'SELECT seq FROM tp WHERE u % 2 = 0 ORDER BY u', 'next_item',
	'{"epochs": 1, "embedding_dim": 8, "num_filters": 8, "hidden_dim": 8, "threads": 1, "transition_prior": 1, "init_from": {"model": "tp_w3"}}');
SELECT count(*) FROM userseq_train('tp_fresh', 'SELECT seq FROM tp WHERE u % 2 = 0 ORDER BY u', 'next_item',
	'{"epochs": 1, "embedding_dim": 8, "num_filters": 8, "hidden_dim": 8, "threads": 1, "transition_prior": 1}');
SELECT ok(pg_temp.metrics('tp_init')->>'transition_count' = pg_temp.metrics('tp_fresh')->>'transition_count'
		  AND pg_temp.metrics('tp_init')->>'transition_count' <> pg_temp.metrics('tp_w3')->>'transition_count'
		  AND (pg_temp.metrics('tp_init')->>'transition_weight')::float8 = 1,
	'init_from: the table is built from the new model''s data, not copied from the source');
SELECT ok(userseq_report('tp_w3') LIKE '%<h2>Transition prior</h2>%On: every item%Explanations attribute the network''s logit only%',
	'the report shows the prior and says explanations leave it out');
SELECT * FROM finish();
ROLLBACK;
