-- Scoring error messages and documented results, one case per line (values that depend on
-- BLAS rounding are shown as booleans).
CREATE EXTENSION IF NOT EXISTS userseq;
SET client_min_messages = warning;
CREATE TABLE sr_d AS
SELECT u, userseq(ARRAY(SELECT ((u * 3 + e * 5) % 40 + 1)::int8 FROM generate_series(1, 3 + u % 9) e)) AS seq,
	   (u * 3) % 40 < 10 AS label, (u % 7)::float8 AS y
FROM generate_series(1, 300) u;
SELECT count(*) FROM userseq_train('sr_bin', 'SELECT seq, label FROM sr_d', 'binary', '{"epochs": 1, "embedding_dim": 8, "num_filters": 8, "hidden_dim": 8, "seed": 1}');
SELECT count(*) FROM userseq_train('sr_reg', 'SELECT seq, y AS label FROM sr_d', 'regression', '{"epochs": 1, "embedding_dim": 8, "num_filters": 8, "hidden_dim": 8, "seed": 1}');
SELECT count(*) FROM userseq_train('sr_ni', 'SELECT seq FROM sr_d', 'next_item', '{"epochs": 1, "embedding_dim": 8, "num_filters": 8, "hidden_dim": 8, "seed": 1}');
RESET client_min_messages;

-- documented results
SELECT userseq_predict('sr_bin', NULL::userseq) IS NULL AS null_seq_gives_null;
SELECT userseq_predict(NULL::text, userseq('{1}'::int8[])) IS NULL AS null_model_gives_null;
SELECT userseq_predict('sr_bin', userseq('{}'::int8[])) BETWEEN 0 AND 1 AS empty_seq_scored;
SELECT userseq_predict('sr_bin', userseq('{424242}'::int8[])) BETWEEN 0 AND 1 AS unknown_item_scored;
SELECT userseq_predict_class('sr_bin', seq) IN ('true', 'false') AS binary_class FROM sr_d WHERE u = 1;
SELECT userseq_class_labels('sr_bin');
SELECT pg_typeof(userseq_embed('sr_reg', seq)), array_length(userseq_embed('sr_reg', seq), 1) FROM sr_d WHERE u = 1;

-- wrong tasks
SELECT userseq_predict('sr_ni', userseq('{1}'::int8[]));
SELECT userseq_predict_class('sr_reg', userseq('{1}'::int8[]));
SELECT userseq_predict_proba('sr_reg', userseq('{1}'::int8[]));
SELECT * FROM userseq_recommend('sr_bin', userseq('{1}'::int8[]));
SELECT * FROM userseq_roc_curve('sr_reg', 'SELECT seq, y FROM sr_d');

-- unknown and undeployed models
SELECT userseq_predict('sr_missing', userseq('{1}'::int8[]));
UPDATE models SET deployed = false WHERE name = 'sr_reg';
SELECT userseq_predict('sr_reg', userseq('{1}'::int8[]));
UPDATE models SET deployed = true WHERE name = 'sr_reg';

-- corrupt model bytes
SELECT userseq_predict(''::bytea, userseq('{1}'::int8[]));
SELECT userseq_predict('\xdeadbeef'::bytea, userseq('{1}'::int8[]));
SELECT userseq_predict(substring(weights from 1 for 100), userseq('{1}'::int8[])) FROM models WHERE name = 'sr_bin';
SELECT userseq_predict(weights || '\x00'::bytea, userseq('{1}'::int8[])) FROM models WHERE name = 'sr_bin';
SELECT userseq_predict(overlay(weights placing '\x7f'::bytea from 300 for 1), userseq('{1}'::int8[])) FROM models WHERE name = 'sr_bin';
SELECT userseq_predict(overlay(weights placing '\x09'::bytea from 5 for 1), userseq('{1}'::int8[])) FROM models WHERE name = 'sr_bin';

-- recommendation and evaluation arguments
SELECT * FROM userseq_recommend('sr_ni', userseq('{1}'::int8[]), -3);
SELECT * FROM userseq_evaluate('sr_ni', 'SELECT seq FROM sr_d', negatives => 0);
SELECT * FROM userseq_evaluate('sr_ni', 'SELECT seq FROM sr_d', cutoffs => '{1,0}');
SELECT * FROM userseq_evaluate('sr_bin', 'SELECT seq, label FROM sr_d', threshold => 1.5);
SELECT * FROM userseq_evaluate('sr_bin', 'SELECT 42');
SELECT * FROM userseq_evaluate('sr_bin', 'SELECT seq FROM sr_d');
SELECT * FROM userseq_evaluate('sr_bin', 'SELECT seq, y AS label FROM sr_d');
SELECT * FROM userseq_evaluate('sr_bin', 'UPDATE sr_d SET y = 0');
SELECT userseq_auc(x, x > 0.5) FROM (VALUES ('NaN'::float8)) v(x);
SELECT userseq_auc(x, b) FROM (VALUES (1.0::float8, NULL::boolean), (NULL, true)) v(x, b);

-- a next_item model whose top-k screen is over userseq.fold_memory: one NOTICE per load, naming
-- the setting and the size that fits (fresh sessions: a loaded model keeps the tables it was
-- built with); none with 0, which turns the tables off on purpose
\c
SET userseq.fold_memory = '1kB';
SELECT count(*) FROM userseq_recommend('sr_ni', userseq('{1}'::int8[]), 3);
SELECT count(*) FROM userseq_recommend('sr_ni', userseq('{1}'::int8[]), 3);
\c
SET userseq.fold_memory = 0;
SELECT count(*) FROM userseq_recommend('sr_ni', userseq('{1}'::int8[]), 3);
\c

DROP TABLE sr_d;
SELECT userseq_drop_model('sr_bin') + userseq_drop_model('sr_reg') + userseq_drop_model('sr_ni') AS dropped;
-- leave the database as pg_regress created it (later suites create the extension themselves)
DROP EXTENSION userseq;
