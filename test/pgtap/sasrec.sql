-- architecture "sasrec" (causal self-attention encoder): option validation, training,
-- recommendation, evaluation, prediction, embedding, export / import, on a planted pattern that
-- needs order beyond the text-CNN's reach: the next item is the item four positions back plus
-- one (four interleaved chains with independent starts), so the previous event says nothing
-- (first-order markov fails), popularity is flat, and a max-pooled CNN with a recent window
-- of 3 cannot tell where its best window was.
BEGIN;
CREATE EXTENSION IF NOT EXISTS userseq;
SELECT plan(22);
SET LOCAL client_min_messages = warning;

-- ---------------------------------------------------------------- option validation
SELECT throws_ok($$SELECT * FROM userseq_train('sr_x', 'SELECT userseq(''{1,2,3}''::int8[]) AS seq', 'next_item', '{"architecture": "transformer"}')$$,
	'22023', 'unrecognized architecture "transformer"', 'unknown architecture: 22023');
SELECT throws_ok($$SELECT * FROM userseq_train('sr_x', 'SELECT userseq(''{1,2,3}''::int8[]) AS seq', 'next_item', '{"num_blocks": 2}')$$,
	'22023', 'option "num_blocks" applies only to architecture "sasrec", not to "textcnn"', 'num_blocks needs sasrec');
SELECT throws_ok($$SELECT * FROM userseq_train('sr_x', 'SELECT userseq(''{1,2,3}''::int8[]) AS seq', 'next_item', '{"architecture": "sasrec", "filter_widths": [2]}')$$,
	'22023', 'option "filter_widths" applies only to architecture "textcnn", not to "sasrec"', 'filter_widths is for the text-CNN');
SELECT throws_ok($$SELECT * FROM userseq_train('sr_x', 'SELECT userseq(''{1,2,3}''::int8[]) AS seq', 'next_item', '{"architecture": "sasrec", "embedding_dim": 10, "num_heads": 4}')$$,
	'22023', 'option "num_heads" must divide embedding_dim (4 heads, embedding_dim 10)', 'heads must divide the embedding');
SELECT throws_ok($$SELECT * FROM userseq_train('sr_x', 'SELECT userseq(''{1,2,3}''::int8[]) AS seq', 'next_item', '{"architecture": "sasrec", "num_blocks": 9}')$$,
	'22023', NULL, 'num_blocks beyond the limit');
SELECT throws_ok($$SELECT * FROM userseq_train('sr_x', 'SELECT userseq(''{1,2,3}''::int8[]) AS seq', 'next_item', '{"architecture": 1}')$$,
	'22023', NULL, 'architecture must be a string');

-- ---------------------------------------------------------------- planted lag-4 pattern
SELECT setseed(0.5);
CREATE TEMP TABLE sr_d AS
SELECT u, userseq(ARRAY(
	SELECT (CASE WHEN random() < 0.1 + 0 * u THEN 1 + floor(random() * 300)
				 ELSE (('x' || substr(md5(u || ':' || e % 4), 1, 6))::bit(24)::int + e / 4) % 300 + 1 END)::int8
	FROM generate_series(0, 7 + u % 8) e ORDER BY e)) AS seq
FROM generate_series(1, 2000) u;
SELECT ok((SELECT count(*) FROM userseq_train('sr_sas', 'SELECT seq FROM sr_d WHERE u <= 1600 ORDER BY u', 'next_item',
	'{"architecture": "sasrec", "epochs": 5, "learning_rate": 0.001, "seed": 2}')) = 5, 'sasrec trains 5 epochs');
SELECT ok((SELECT count(*) FROM userseq_train('sr_cnn', 'SELECT seq FROM sr_d WHERE u <= 1600 ORDER BY u', 'next_item',
	'{"epochs": 5, "learning_rate": 0.001, "seed": 2}')) = 5, 'the text-CNN peer trains 5 epochs');
CREATE TEMP TABLE sr_e AS
SELECT 'sasrec' AS arch, * FROM userseq_evaluate('sr_sas', 'SELECT seq FROM sr_d WHERE u > 1600 ORDER BY u')
UNION ALL
SELECT 'textcnn', * FROM userseq_evaluate('sr_cnn', 'SELECT seq FROM sr_d WHERE u > 1600 ORDER BY u');
CREATE FUNCTION pg_temp.m(a text, s text, p text, k text) RETURNS float8 LANGUAGE sql AS
	$$SELECT value FROM sr_e WHERE arch = a AND scorer = s AND protocol = p AND metric = k$$;
SELECT diag(string_agg(arch || ' ' || scorer || ' ' || protocol || ' ' || metric || ' = ' || round(value::numeric, 4), ', '
				ORDER BY arch, protocol, scorer))
FROM sr_e WHERE metric IN ('hr@10', 'ndcg@10') AND (arch = 'sasrec' OR scorer = 'model');
SELECT ok(pg_temp.m('sasrec', 'model', 'full', 'hr@10') >
		  greatest(pg_temp.m('sasrec', 'markov', 'full', 'hr@10'), pg_temp.m('sasrec', 'popularity', 'full', 'hr@10')) + 0.3,
		  'sasrec full hr@10 beats markov and popularity by more than 0.3');
SELECT ok(pg_temp.m('sasrec', 'model', 'sampled:99', 'ndcg@10') >
		  greatest(pg_temp.m('sasrec', 'markov', 'sampled:99', 'ndcg@10'), pg_temp.m('sasrec', 'popularity', 'sampled:99', 'ndcg@10')) + 0.3,
		  'sasrec sampled:99 ndcg@10 beats markov and popularity by more than 0.3');
SELECT ok(pg_temp.m('sasrec', 'model', 'full', 'hr@10') > pg_temp.m('textcnn', 'model', 'full', 'hr@10') + 0.15,
		  'sasrec full hr@10 beats the text-CNN by more than 0.15 on the lag-4 pattern');

-- ---------------------------------------------------------------- the scoring surface
SELECT is((SELECT count(*) FROM sr_d, LATERAL userseq_recommend('sr_sas', seq, 10) WHERE u = 1700)::int, 10, 'recommend: k rows');
-- the chains of user 1701 continue: the item after 12 events is event 8 + 1 (mod 300), if not noise
SELECT ok((SELECT count(*) FROM sr_d d, LATERAL userseq_recommend('sr_sas', userseq((userseq_items(d.seq))[1:12]), 10, false) r
		   WHERE d.u > 1600 AND u % 8 >= 5
			 AND r.item = (userseq_items(d.seq))[9] % 300 + 1)::float8 /
		  (SELECT count(*) FROM sr_d WHERE u > 1600 AND u % 8 >= 5) > 0.5,
		  'recommend ranks item (4 back) + 1 in the top 10 for most users');
SELECT is((SELECT array_agg(item ORDER BY rank) FROM models m, sr_d d, LATERAL userseq_recommend(m.weights, d.seq, 10)
		   WHERE m.name = 'sr_sas' AND m.deployed AND d.u = 1650),
		  (SELECT array_agg(item ORDER BY rank) FROM sr_d d, LATERAL userseq_recommend('sr_sas', d.seq, 10) WHERE d.u = 1650),
		  'recommend by value gives the same items');
SELECT is((SELECT array_length(userseq_embed('sr_sas', seq), 1) FROM sr_d WHERE u = 1650), 64, 'embed: the encoder''s last position (E = 64)');
SELECT is((SELECT config->>'architecture' FROM models WHERE name = 'sr_sas'), 'sasrec', 'the catalog keeps the architecture');
SELECT is(userseq_import('sr_imp', userseq_export('sr_sas')), 1, 'import of the exported bytes (format version 3)');
SELECT is((SELECT array_agg(item ORDER BY rank) FROM sr_d d, LATERAL userseq_recommend('sr_imp', d.seq, 10) WHERE d.u = 1650),
		  (SELECT array_agg(item ORDER BY rank) FROM sr_d d, LATERAL userseq_recommend('sr_sas', d.seq, 10) WHERE d.u = 1650),
		  'export / import round trip recommends the same items');

SELECT is((SELECT count(*) FROM sr_d, LATERAL userseq_explain('sr_sas', seq, method => 'occlusion') WHERE u = 1650)::int,
		  (SELECT userseq_length(seq) FROM sr_d WHERE u = 1650), 'explain by occlusion: one row per event');
SELECT throws_ok($$SELECT * FROM sr_d, LATERAL userseq_explain('sr_sas', seq) WHERE u = 1650$$, '0A000', NULL,
		  'gradient explanations are refused for sasrec (0A000)');

-- ---------------------------------------------------------------- a label task
CREATE TEMP TABLE sr_b AS
SELECT u, seq, (userseq_items(seq))[1] % 2 = 0 AS label FROM sr_d WHERE u <= 600;
SELECT is((SELECT count(*) FROM userseq_train('sr_bin', 'SELECT seq, label FROM sr_b ORDER BY u', 'binary',
	'{"architecture": "sasrec", "epochs": 2, "embedding_dim": 16, "hidden_dim": 16, "num_heads": 2, "seed": 3}'))::int, 2,
		  'binary sasrec trains');
SELECT ok((SELECT bool_and(p BETWEEN 0 AND 1) AND count(DISTINCT p) > 1 FROM (SELECT userseq_predict('sr_bin', seq) AS p FROM sr_b) x),
		  '... and predicts probabilities');

SELECT * FROM finish();
ROLLBACK;
