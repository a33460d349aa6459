-- The model catalog: lifecycle (versions, deploy, rollback, drop, retrain, export/import),
-- privileges with two roles, option errors with their SQLSTATEs, determinism, early stopping.
BEGIN;
CREATE EXTENSION IF NOT EXISTS userseq;
CREATE EXTENSION IF NOT EXISTS pgtap;
SET client_min_messages = warning;
SELECT plan(46);

SELECT setseed(0.5);
CREATE TABLE cat_seqs AS
SELECT u AS user_id,
       userseq(array_agg((((u * 13 + e * 7) % 150) + 1)::bigint ORDER BY e),
               array_agg(timestamptz '2024-01-01 00:00:00+00' + u * interval '1 minute' + e * interval '1 hour' ORDER BY e),
               array_agg((ARRAY['view', 'cart', 'buy'])[1 + (e % 3)] ORDER BY e)) AS seq,
       bool_or((((u * 13 + e * 7) % 150) + 1) <= 15) AS label
FROM generate_series(1, 600) u, generate_series(1, 4 + (u % 9)) e
GROUP BY u;

-- ---------------------------------------------------------------- lifecycle
SELECT is((SELECT count(*)::int FROM userseq_train('cat_m', 'SELECT seq, label FROM cat_seqs ORDER BY user_id', 'binary',
                                              '{"epochs": 2, "patience": 0, "embedding_dim": 16, "num_filters": 16, "hidden_dim": 16}')),
          2, 'userseq_train returns one row per epoch');
SELECT is((SELECT version FROM models WHERE name = 'cat_m' AND deployed), 1, 'first version is 1 and deployed');
SELECT is((SELECT count(*)::int FROM training_log WHERE model = 'cat_m' AND version = 1), 2, 'two log rows carry the stored version');
SELECT is((SELECT count(DISTINCT run_id)::int FROM training_log WHERE model = 'cat_m'), 1, 'one run id per run');
SELECT is((SELECT m.run_id FROM models m WHERE name = 'cat_m'), (SELECT max(run_id) FROM training_log WHERE model = 'cat_m'),
          'models.run_id matches training_log');

-- determinism: same seed and threads give the same bytes
SELECT is((SELECT count(*)::int FROM userseq_train('cat_m', 'SELECT seq, label FROM cat_seqs ORDER BY user_id', 'binary',
                                              '{"epochs": 2, "patience": 0, "embedding_dim": 16, "num_filters": 16, "hidden_dim": 16}')),
          2, 'second run of the same name');
SELECT is((SELECT md5(weights) FROM models WHERE name = 'cat_m' AND version = 2),
          (SELECT md5(weights) FROM models WHERE name = 'cat_m' AND version = 1),
          'same seed, data and threads give identical weights');
SELECT is((SELECT version FROM models WHERE name = 'cat_m' AND deployed), 2, 'the new version is deployed');
SELECT is((SELECT count(*)::int FROM models WHERE name = 'cat_m' AND deployed), 1, 'one deployed version per name');
SELECT isnt((SELECT count(*)::int FROM userseq_train('cat_m', 'SELECT seq, label FROM cat_seqs ORDER BY user_id', 'binary',
                                              '{"epochs": 1, "seed": 99, "embedding_dim": 16, "num_filters": 16, "hidden_dim": 16}')),
          0, 'a run with another seed');
SELECT isnt((SELECT md5(weights) FROM models WHERE name = 'cat_m' AND version = 3),
            (SELECT md5(weights) FROM models WHERE name = 'cat_m' AND version = 1),
            'another seed gives other weights');

SELECT is(userseq_rollback('cat_m'), 2, 'rollback deploys the previous version');
SELECT is((SELECT version FROM models WHERE name = 'cat_m' AND deployed), 2, 'version 2 is deployed after rollback');
SELECT lives_ok($$SELECT userseq_deploy('cat_m', 3)$$, 'deploy a given version');
SELECT is((SELECT version FROM models WHERE name = 'cat_m' AND deployed), 3, 'version 3 is deployed');
SELECT throws_ok($$SELECT userseq_deploy('cat_m', 42)$$, '42704', 'model "cat_m" has no version 42', 'deploying a missing version fails');
SELECT throws_ok($$SELECT userseq_deploy('nope', 1)$$, '42704', 'model "nope" does not exist', 'deploying a missing model fails');
SELECT is(userseq_drop_model('cat_m', 1), 1, 'drop one version');
SELECT is(userseq_rollback('cat_m'), 2, 'rollback skips nothing but dropped versions');
SELECT throws_ok($$SELECT userseq_rollback('cat_m')$$, '55000', 'model "cat_m" has no version older than the deployed version 2',
                 'rollback below the oldest version fails');
SELECT is((SELECT version FROM models WHERE name = 'cat_m' AND deployed), 2, 'a failed rollback changes nothing');

-- retrain: re-runs the stored query and options; deploys only when not worse unless forced
SELECT is((SELECT new_version FROM userseq_retrain('cat_m', '{"epochs": 1, "learning_rate": 0.000001}')), 4,
          'retrain stores a new version');
SELECT is((SELECT deployed FROM models WHERE name = 'cat_m' AND version = 4), false,
          'a worse retrained version is stored but not deployed');
SELECT is((SELECT options->>'learning_rate' FROM models WHERE name = 'cat_m' AND version = 4), '0.000001',
          'the override is stored with the new version');
SELECT is((SELECT deployed FROM userseq_retrain('cat_m', '{"epochs": 1, "learning_rate": 0.000001}', force => true)), true,
          'force deploys regardless of the metric');
SELECT is((SELECT version FROM models WHERE name = 'cat_m' AND deployed), 5, 'forced version is deployed');
SELECT ok((SELECT d.deployed AND d.new_metric >= d.old_metric FROM userseq_retrain('cat_m', '{"epochs": 3, "seed": 1}') d),
          'a better retrained version is deployed');

-- export / import
SELECT is(userseq_import('cat_copy', userseq_export('cat_m')), 1, 'import stores version 1 of a new name');
SELECT is((SELECT weights FROM models WHERE name = 'cat_copy'), (SELECT weights FROM models WHERE name = 'cat_m' AND deployed),
          'imported bytes equal exported bytes');
SELECT is((SELECT task || ' ' || (metrics->>'protocol') FROM models WHERE name = 'cat_copy'), 'binary imported',
          'import records task and origin');
SELECT throws_ok($$SELECT userseq_import('cat_bad', '\x0102030405'::bytea)$$, '22P03', NULL, 'corrupt bytes are refused');
SELECT throws_ok($$SELECT userseq_import('cat_bad', overlay(userseq_export('cat_m') placing '\xff'::bytea from 200))$$,
                 '22P03', NULL, 'bytes with a flipped byte are refused');
SELECT throws_ok($$SELECT userseq_retrain('cat_copy')$$, '55000', NULL, 'an imported model cannot be retrained');

-- early stopping: patience 1 stops one epoch after the best, which is restored
SELECT cmp_ok((SELECT count(*)::int FROM userseq_train('cat_es', 'SELECT seq, label FROM cat_seqs ORDER BY user_id', 'binary',
                                                  '{"epochs": 15, "patience": 1, "learning_rate": 0.05, "embedding_dim": 16, "num_filters": 16, "hidden_dim": 16}')),
              '<', 15, 'early stopping ends the run before the last epoch');
SELECT is((SELECT (metrics->>'roc_auc')::float8 FROM models WHERE name = 'cat_es'),
          (SELECT max(valid_metric) FROM training_log WHERE model = 'cat_es'), 'the best epoch is restored');

-- ---------------------------------------------------------------- privileges
CREATE ROLE cat_alice;
CREATE ROLE cat_bob;
GRANT SELECT ON cat_seqs TO cat_alice;
CREATE TABLE cat_private AS SELECT * FROM cat_seqs;
SET ROLE cat_alice;
SELECT is((SELECT count(*)::int FROM userseq_train('cat_alice_m', 'SELECT seq, label FROM cat_seqs', 'binary',
                                              '{"epochs": 1, "embedding_dim": 8, "num_filters": 8, "hidden_dim": 8}')),
          1, 'a plain role trains a model');
SELECT throws_ok($$INSERT INTO models (name, version, task, config, options, metrics, weights, owner, created_by) VALUES ('x', 1, 'binary', '{}', '{}', '{}', '\x00', 'x', 'x')$$,
                 '42501', NULL, 'users cannot write the catalog directly');
SELECT throws_ok($$SELECT * FROM userseq_train('cat_x', 'SELECT seq, label FROM cat_private', 'binary', '{"epochs": 1}')$$,
                 '42501', NULL, 'the training query runs with the caller''s privileges');
SELECT throws_ok($$SELECT userseq_deploy('cat_m', 2)$$, '42501', 'permission denied for model "cat_m"', 'cannot deploy another role''s model');
RESET ROLE;
SET ROLE cat_bob;
SELECT throws_ok($$SELECT userseq_drop_model('cat_alice_m')$$, '42501', NULL, 'bob cannot drop alice''s model');
SELECT throws_ok($$SELECT * FROM userseq_train('cat_alice_m', 'SELECT 1', 'binary')$$, '42501', NULL, 'bob cannot add a version to alice''s model');
SELECT throws_ok($$SELECT userseq_import('cat_alice_m', userseq_export('cat_alice_m'))$$, '42501', NULL, 'bob cannot import over alice''s model');
SELECT is((SELECT owner::text FROM models WHERE name = 'cat_alice_m'), 'cat_alice', 'bob can read the catalog');
RESET ROLE;
GRANT cat_alice TO cat_bob;
SET ROLE cat_bob;
SELECT is(userseq_import('cat_alice_m', userseq_export('cat_alice_m')), 2, 'a member of the owner role may add versions');
SELECT is((SELECT owner::text FROM models WHERE name = 'cat_alice_m' AND version = 2), 'cat_alice', 'the owner role stays the owner');
SELECT is(userseq_drop_model('cat_alice_m'), 2, 'a member of the owner role may drop the model');
RESET ROLE;

SELECT * FROM finish();
ROLLBACK;
