-- Issue 10.4: model bytes with finite but huge weights (CRC repaired, so only the weight bound
-- stops them) are rejected with 22003 by every by-value function and by userseq_import, which
-- stores nothing; a weight at the bound (|w| = 1e6) is accepted and scores finite.
-- Also: scoring by name in a plpgsql loop follows a deploy made between two iterations (found
-- by the adversarial tier: one call site kept the name resolved for the whole transaction).
BEGIN;
CREATE EXTENSION IF NOT EXISTS userseq;
\ir ../adversarial/model_bytes.sql
SELECT plan(21);
SET LOCAL client_min_messages = warning;

CREATE TEMP TABLE tr_d AS
SELECT u, userseq(ARRAY(SELECT ((u * 3 + e * 5) % 40 + 1)::int8 FROM generate_series(1, 3 + u % 9) e)) AS seq,
	   (u * 3) % 40 < 10 AS label FROM generate_series(1, 300) u;
SELECT count(*) FROM userseq_train('tr_bin', 'SELECT seq, label FROM tr_d', 'binary',
	'{"epochs": 1, "embedding_dim": 4, "num_filters": 4, "hidden_dim": 4, "seed": 1}');
SELECT count(*) FROM userseq_train('tr_ni', 'SELECT seq FROM tr_d', 'next_item',
	'{"epochs": 1, "embedding_dim": 4, "num_filters": 4, "hidden_dim": 4, "seed": 1}');
CREATE TEMP TABLE tr_m AS
SELECT name, weights AS good, pg_temp.us_weights_offset(weights) AS w0,
	   (length(weights) - pg_temp.us_weights_offset(weights)) / 4 AS n_params
FROM models WHERE name IN ('tr_bin', 'tr_ni') AND deployed;
-- 3.4e38 at the first weight (a padding row), a middle one and the last one
CREATE TEMP TABLE tr_evil AS
SELECT name, pos, pg_temp.us_set_weight_bits(good, pos, pg_temp.us_f32_bits(3.4e38)) AS bytes
FROM tr_m, LATERAL (VALUES (0), (n_params / 2), (n_params - 1)) p(pos);
CREATE TEMP TABLE tr_seq AS SELECT seq FROM tr_d WHERE u = 7;

SELECT is((SELECT count(*) FROM tr_evil WHERE pg_temp.us_repair_crc(bytes) = bytes), 6::bigint,
		  'six crafted models with a repaired CRC');
SELECT throws_ok($$SELECT userseq_predict(bytes, (SELECT seq FROM tr_seq)) FROM tr_evil WHERE name = 'tr_bin' AND pos = 0$$,
				 '22003', NULL, 'userseq_predict: 3.4e38 in the first weight');
SELECT throws_ok($$SELECT userseq_predict(bytes, (SELECT seq FROM tr_seq)) FROM tr_evil WHERE name = 'tr_bin' AND pos > 0 ORDER BY pos LIMIT 1$$,
				 '22003', NULL, 'userseq_predict: 3.4e38 in a middle weight');
SELECT throws_ok($$SELECT userseq_predict(bytes, (SELECT seq FROM tr_seq)) FROM tr_evil WHERE name = 'tr_bin' ORDER BY pos DESC LIMIT 1$$,
				 '22003', NULL, 'userseq_predict: 3.4e38 in the last weight');
SELECT throws_ok($$SELECT userseq_predict_proba(bytes, (SELECT seq FROM tr_seq)) FROM tr_evil WHERE name = 'tr_bin' AND pos > 0 ORDER BY pos LIMIT 1$$,
				 '22003', NULL, 'userseq_predict_proba');
SELECT throws_ok($$SELECT userseq_predict_class(bytes, (SELECT seq FROM tr_seq)) FROM tr_evil WHERE name = 'tr_bin' AND pos > 0 ORDER BY pos LIMIT 1$$,
				 '22003', NULL, 'userseq_predict_class');
SELECT throws_ok($$SELECT userseq_embed(bytes, (SELECT seq FROM tr_seq)) FROM tr_evil WHERE name = 'tr_bin' AND pos > 0 ORDER BY pos LIMIT 1$$,
				 '22003', NULL, 'userseq_embed');
SELECT throws_ok($$SELECT userseq_class_labels(bytes) FROM tr_evil WHERE name = 'tr_bin' AND pos > 0 ORDER BY pos LIMIT 1$$,
				 '22003', NULL, 'userseq_class_labels');
SELECT throws_ok($$SELECT r.* FROM tr_evil, userseq_recommend(bytes, (SELECT seq FROM tr_seq), 5) r WHERE name = 'tr_ni' AND pos = 0$$,
				 '22003', NULL, 'userseq_recommend: 3.4e38 in the first weight');
SELECT throws_ok($$SELECT r.* FROM tr_evil, userseq_recommend(bytes, (SELECT seq FROM tr_seq), 5) r WHERE name = 'tr_ni' ORDER BY pos DESC LIMIT 1$$,
				 '22003', NULL, 'userseq_recommend: 3.4e38 in the last weight');
SELECT throws_ok($$SELECT userseq_import('tr_evil', bytes) FROM tr_evil WHERE name = 'tr_bin' AND pos > 0 ORDER BY pos LIMIT 1$$,
				 '22003', 'could not decode the imported model: weight beyond the bound that keeps every score finite (|w| <= 1e6)',
				 'userseq_import of a binary model');
SELECT throws_ok($$SELECT userseq_import('tr_evil', bytes) FROM tr_evil WHERE name = 'tr_ni' AND pos = 0$$,
				 '22003', NULL, 'userseq_import of a next_item model');
SELECT is((SELECT count(*) FROM models WHERE name = 'tr_evil'), 0::bigint, 'the rejected imports stored nothing');
SELECT throws_ok($$SELECT userseq_predict(pg_temp.us_set_weight_bits(good, 3, pg_temp.us_f32_bits(-3.4e38)), (SELECT seq FROM tr_seq)) FROM tr_m WHERE name = 'tr_bin'$$,
				 '22003', NULL, '-3.4e38 too');
SELECT throws_ok($$SELECT userseq_predict(pg_temp.us_set_weight_bits(good, 3, pg_temp.us_f32_bits(1.0000001e6)), (SELECT seq FROM tr_seq)) FROM tr_m WHERE name = 'tr_bin'$$,
				 '22003', NULL, 'one ulp above the bound');
SELECT throws_ok($$SELECT userseq_predict(pg_temp.us_set_weight_bits(good, 3, pg_temp.us_f32_bits('NaN')), (SELECT seq FROM tr_seq)) FROM tr_m WHERE name = 'tr_bin'$$,
				 '22000', NULL, 'a NaN weight stays a non-finite value error');
-- at the bound: accepted, and every score is finite
CREATE TEMP TABLE tr_edge AS
SELECT name, pg_temp.us_set_weight_bits(pg_temp.us_set_weight_bits(good, n_params / 2, pg_temp.us_f32_bits(1e6)),
									   n_params - 1, pg_temp.us_f32_bits(-1e6)) AS bytes FROM tr_m;
SELECT ok((SELECT bool_and(p BETWEEN 0 AND 1) FROM (SELECT userseq_predict(bytes, seq) p FROM tr_edge, tr_d WHERE name = 'tr_bin') x),
		  'weights of +-1e6 (the bound) score finite probabilities on 300 sequences');
SELECT ok((SELECT bool_and(score::text NOT IN ('NaN', 'Infinity', '-Infinity')) FROM tr_edge, tr_d, userseq_recommend(bytes, seq, 3) WHERE name = 'tr_ni'),
		  'and finite next-item scores');
SELECT is(userseq_import('tr_edge', bytes), 1, 'userseq_import accepts weights at the bound') FROM tr_edge WHERE name = 'tr_bin';
SELECT is((SELECT weights FROM models WHERE name = 'tr_edge'), (SELECT bytes FROM tr_edge WHERE name = 'tr_bin'),
		  'and stores the bytes unchanged');

-- the same call site, before and after a deploy in the same transaction
SELECT count(*) FROM userseq_train('tr_bin', 'SELECT seq, label FROM tr_d', 'binary',
	'{"epochs": 1, "embedding_dim": 4, "num_filters": 4, "hidden_dim": 4, "seed": 2, "deploy": false}');
CREATE FUNCTION pg_temp.tr_follow() RETURNS float8[] LANGUAGE plpgsql AS $$
DECLARE
	s userseq := (SELECT seq FROM tr_seq);
	r float8[] := '{}';
BEGIN
	FOR i IN 1..2 LOOP
		IF i = 2 THEN PERFORM userseq_deploy('tr_bin', 2); END IF;
		r := r || userseq_predict('tr_bin', s);
	END LOOP;
	RETURN r;
END $$;
SELECT is(pg_temp.tr_follow(),
		  ARRAY[(SELECT userseq_predict(weights, (SELECT seq FROM tr_seq)) FROM models WHERE name = 'tr_bin' AND version = 1),
				(SELECT userseq_predict(weights, (SELECT seq FROM tr_seq)) FROM models WHERE name = 'tr_bin' AND version = 2)],
		  'a plpgsql loop scoring by name sees version 1, then version 2 after a deploy');

SELECT * FROM finish();
ROLLBACK;
