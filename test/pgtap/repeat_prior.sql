-- The repeat prior of next_item models (option "repeat_prior", README "Training"): every item
-- seen c times in the history gets + weight * log(1 + c), the weight fitted with the transition
-- prior's on validation. Planted: each user buys from 4 personal items 60 % of the time (and
-- its last two events are personal: the validation and the test target), else from 800 items
-- at random; a tiny network trained one epoch cannot learn whom each item belongs to, the
-- user's own counts can. Data from md5: the same on every machine and run.
BEGIN;
CREATE EXTENSION IF NOT EXISTS userseq;
SELECT plan(16);
SET LOCAL client_min_messages = warning;

\set seq_table rp
\set train_options '{}'
\ir tiny_next_item.psql

CREATE TEMP TABLE rp AS
WITH ev AS (
	SELECT u, t, n,
		CASE WHEN t > n - 2 OR pg_temp.h(u, t, 1) % 100 < 60
			 THEN 1 + (u * 4 + pg_temp.h(u, t, 2) % 4) % 800
			 ELSE 1 + pg_temp.h(u, t, 3) % 800 END AS item
	FROM generate_series(1, 1500) u,
		LATERAL (SELECT 8 + (pg_temp.h(u, 0, 4) % 7)::int AS n) l,
		LATERAL generate_series(1, l.n) t)
SELECT u, userseq(array_agg(item ORDER BY t)) AS seq FROM ev GROUP BY u;

CREATE FUNCTION pg_temp.test_hr(name text) RETURNS float8 LANGUAGE sql AS
	$$SELECT value FROM userseq_evaluate($1, 'SELECT seq FROM rp', 99, '{10}')
	  WHERE scorer = 'model' AND protocol = 'full' AND metric = 'hr@10'$$;

SELECT pg_temp.train('rp_auto', '{}');
SELECT pg_temp.train('rp_off', '{"repeat_prior": "off"}');
SELECT diag('auto: ' || (SELECT jsonb_object_agg(k, v) FROM jsonb_each(pg_temp.metrics('rp_auto')) e(k, v)
						 WHERE k LIKE 'repeat%' OR k LIKE 'transition_weight' OR k IN ('ndcg@10', 'network_ndcg@10'))::text);

SELECT is(pg_temp.metrics('rp_auto')->>'repeat_prior', 'auto', 'default: the repeat prior is "auto"');
SELECT is((SELECT config->>'repeat_prior' FROM models WHERE name = 'rp_auto'), 'auto',
	'config records repeat_prior "auto"');
SELECT ok((pg_temp.metrics('rp_auto')->>'repeat_weight')::float8 > 0,
	'planted personal repeats: the fitted repeat weight is positive');
SELECT ok((pg_temp.metrics('rp_auto')->>'ndcg@10')::float8 >
		  (pg_temp.metrics('rp_off')->>'ndcg@10')::float8 + 0.2,
	'validation ndcg@10 with the repeat prior beats the model without it by > 0.2');
SELECT is(jsonb_array_length(pg_temp.metrics('rp_auto')->'repeat_grid_ndcg@10'), 9,
	'one validation ndcg@10 per repeat weight of the grid');
SELECT is(get_byte(pg_temp.bytes('rp_auto'), 12) & 2, 2, 'model bytes: flags bit 1 (a repeat weight follows)');
SELECT is(get_byte(pg_temp.bytes('rp_off'), 12) & 2, 0, '"off": no repeat weight in the bytes');
-- the test targets (each user's last event, a personal item) through userseq_evaluate
SELECT cmp_ok(pg_temp.test_hr('rp_auto'), '>', pg_temp.test_hr('rp_off') + 0.2,
	'test HR@10 (full catalogue) with the repeat prior beats the model without it by > 0.2');
-- recommendations: with exclude_seen (the default) the prior changes nothing; without, the
-- user's own items come first
SELECT is((SELECT md5(string_agg(r.item::text, ',' ORDER BY q.u, r.rank)) FROM (SELECT * FROM rp WHERE u <= 30) q,
		   LATERAL userseq_recommend('rp_auto', q.seq, 5) r),
		  (SELECT md5(string_agg(r.item::text, ',' ORDER BY q.u, r.rank)) FROM (SELECT * FROM rp WHERE u <= 30) q,
		   LATERAL userseq_recommend('rp_auto', q.seq, 5) r
		   WHERE NOT r.item = ANY (userseq_items(q.seq))),
	'exclude_seen: no item of the history is recommended');
SELECT cmp_ok((SELECT avg((r.item = ANY (userseq_items(q.seq)))::int) FROM (SELECT * FROM rp WHERE u <= 100) q,
			   LATERAL userseq_recommend('rp_auto', q.seq, 4, false) r), '>=', 0.9::numeric,
	'exclude_seen false: the top 4 are the user''s own items');
SELECT userseq_import('rp_imp', userseq_export('rp_auto'));
SELECT is((SELECT md5(string_agg(r.item || ':' || r.score, ',' ORDER BY q.u, r.rank)) FROM (SELECT * FROM rp WHERE u <= 30) q,
		   LATERAL userseq_recommend(pg_temp.bytes('rp_imp'), q.seq, 5, false) r),
		  (SELECT md5(string_agg(r.item || ':' || r.score, ',' ORDER BY q.u, r.rank)) FROM (SELECT * FROM rp WHERE u <= 30) q,
		   LATERAL userseq_recommend('rp_auto', q.seq, 5, false) r),
	'export / import and by-value scoring recommend what the original does, scores included');
-- a fixed weight is stored, not fitted
SELECT pg_temp.train('rp_w2', '{"repeat_prior": 2}');
SELECT ok((pg_temp.metrics('rp_w2')->>'repeat_weight')::float8 = 2 AND pg_temp.metrics('rp_w2')->>'repeat_prior' = 'fixed'
		  AND NOT pg_temp.metrics('rp_w2') ? 'repeat_grid',
	'a number: that weight, not fitted');
-- bad values
SELECT throws_ok($$SELECT pg_temp.train('rp_bad', '{"repeat_prior": "sometimes"}')$$, '22023',
	'option "repeat_prior" must be "auto", "off", false or a weight between 0 and 1000', 'an unknown word: 22023');
SELECT throws_ok($$SELECT pg_temp.train('rp_bad', '{"repeat_prior": -1}')$$, '22023', NULL, 'a negative weight: 22023');
SELECT throws_ok($$SELECT pg_temp.train('rp_bad', '{"repeat_prior": 1e9}')$$, '22023', NULL, 'a huge weight: 22023');
SELECT throws_ok($$SELECT * FROM userseq_train('rp_bad', 'SELECT seq, true AS label FROM rp', 'binary', '{"repeat_prior": "auto"}')$$,
	'22023', NULL, 'a binary model has no repeat prior: 22023');

SELECT * FROM finish();
ROLLBACK;
