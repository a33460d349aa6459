-- userseq_train: every task, option validation, skipped rows, the stored catalog rows.
-- Figures are asserted as inequalities (BLAS kernels differ between CPUs); NOTICEs carry
-- timings, so they are hidden.
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS userseq;
SELECT setseed(0.25);

-- 1200 users; item i is usually followed by i + 7 (mod 200); behaviours cycle view, cart, buy
CREATE TABLE tr_events AS
SELECT u AS user_id,
       (((u * 13 + e * 7 + CASE WHEN random() < 0.15 THEN floor(random() * 200)::int ELSE 0 END) % 200) + 1)::bigint AS item_id,
       timestamptz '2024-01-01 00:00:00+00' + u * interval '1 minute' + e * interval '1 hour' AS ts,
       (ARRAY['view', 'cart', 'buy'])[1 + (e % 3)] AS behavior
FROM generate_series(1, 1200) u, generate_series(1, 4 + (u % 13)) e;

CREATE TABLE tr_seqs AS
SELECT user_id,
       userseq_agg(item_id, ts, behavior) AS seq,
       bool_or(item_id <= 20) AS label_bool,
       (CASE WHEN min(item_id) <= 10 THEN 'low' WHEN min(item_id) <= 40 THEN 'mid' ELSE 'high' END) AS segment,
       count(*) FILTER (WHERE item_id <= 50)::numeric AS n_low
FROM tr_events GROUP BY user_id;

-- binary: one row per epoch, metric is roc_auc, learning well above chance
SELECT epoch, metric_name, train_loss > 0 AS pos_loss, valid_metric BETWEEN 0 AND 1 AS in_range
FROM userseq_train('t_bin', 'SELECT seq, label_bool AS label FROM tr_seqs ORDER BY user_id',
                   'binary', '{"epochs": 3, "patience": 0, "seed": 7}');
SELECT name, version, task, deployed, owner = current_user AS owned, created_by = current_user AS by_me,
       (metrics->>'roc_auc')::float8 > 0.75 AS learned, metrics->>'protocol' AS protocol,
       (metrics->>'best_epoch')::int BETWEEN 1 AND 3 AS best_epoch_ok, metrics->>'metric' AS metric,
       config->>'embedding_dim' AS embedding_dim, config->'filter_widths' AS widths,
       config->>'recent_window' AS recent_window, config->'validation' AS validation,
       options, query IS NOT NULL AS has_query, length(weights) > 1000 AS has_weights
FROM models WHERE name = 't_bin';
SELECT epoch, version, metric_name, valid_metric IS NOT NULL AS has_metric, seconds >= 0 AS timed
FROM training_log WHERE model = 't_bin' ORDER BY epoch;

-- integer 0/1 labels, a weight column, early stopping restores the best epoch
SELECT count(*) BETWEEN 2 AND 12 AS stopped_early
FROM userseq_train('t_es', 'SELECT seq, label_bool::int AS label, 1.0 + (user_id % 2) AS weight FROM tr_seqs ORDER BY user_id',
                   'binary', '{"epochs": 12, "patience": 1, "learning_rate": 0.05, "seed": 3}');
SELECT (m.metrics->>'roc_auc')::float8 = (SELECT max(valid_metric) FROM training_log l WHERE l.model = 't_es') AS best_restored,
       (m.metrics->>'best_epoch')::int = (m.metrics->>'epochs_run')::int - 1 AS stopped_one_after_best
FROM models m WHERE name = 't_es';

-- optimizers and schedules: cosine decays the rate, step halves it every lr_step_epochs
SELECT epoch, round(learning_rate::numeric, 6) AS learning_rate
FROM userseq_train('t_sched', 'SELECT seq, label_bool AS label FROM tr_seqs ORDER BY user_id', 'binary',
                   '{"epochs": 3, "patience": 0, "optimizer": "sgd", "momentum": 0.8, "learning_rate": 0.01, "lr_schedule": "cosine", "embedding_dim": 8, "num_filters": 8, "hidden_dim": 8}');
SELECT epoch, round(learning_rate::numeric, 6) AS learning_rate
FROM userseq_train('t_sched', 'SELECT seq, label_bool AS label FROM tr_seqs ORDER BY user_id', 'binary',
                   '{"epochs": 3, "patience": 0, "optimizer": "adamw", "weight_decay": 0.01, "learning_rate": 0.004, "lr_schedule": "step", "lr_step_epochs": 1, "lr_gamma": 0.5, "embedding_dim": 8, "num_filters": 8, "hidden_dim": 8}');

-- multiclass with text labels: classes sorted, accuracy
SELECT count(*) AS epochs, min(metric_name) AS metric
FROM userseq_train('t_multi', 'SELECT seq, segment AS label FROM tr_seqs ORDER BY user_id', 'multiclass',
                   '{"epochs": 2, "validation": {"method": "random", "fraction": 0.2}}');
SELECT config->>'n_outputs' AS classes, (metrics->>'accuracy')::float8 > 0.4 AS learned,
       metrics->>'protocol' AS protocol
FROM models WHERE name = 't_multi';

-- multiclass with integer labels: classes sorted numerically, not as text
SELECT count(*) AS epochs
FROM userseq_train('t_multi_int', 'SELECT seq, (ARRAY[100, 2, 10])[1 + user_id % 3] AS label FROM tr_seqs ORDER BY user_id',
                   'multiclass', '{"epochs": 1}');
SELECT userseq_class_labels('t_multi_int') AS classes;

-- regression: rmse, lower is better
SELECT count(*) AS epochs, min(metric_name) AS metric
FROM userseq_train('t_reg', 'SELECT seq, n_low AS label FROM tr_seqs ORDER BY user_id', 'regression',
                   '{"epochs": 3, "embedding_dim": 16, "num_filters": 16, "hidden_dim": 16, "filter_widths": [3, 1]}');
SELECT (metrics->>'rmse')::float8 < (SELECT stddev_pop(n_low) FROM tr_seqs) AS beats_mean,
       config->'filter_widths' AS widths
FROM models WHERE name = 't_reg';

-- next_item: leave-one-out by default, ndcg@10 over the full catalogue
SELECT count(*) AS epochs, min(metric_name) AS metric
FROM userseq_train('t_next', 'SELECT seq FROM tr_seqs ORDER BY user_id', 'next_item', '{"epochs": 3}');
SELECT (metrics->>'ndcg@10')::float8 > 0.3 AS learned, metrics->>'protocol' AS protocol,
       config->>'n_negatives' AS negatives, config->'validation' AS validation,
       (metrics->>'valid_sequences')::int AS valid_sequences
FROM models WHERE name = 't_next';

-- next_item with sampled softmax and a tied output layer
SELECT count(*) AS epochs
FROM userseq_train('t_next_s', 'SELECT seq FROM tr_seqs ORDER BY user_id', 'next_item',
                   '{"epochs": 2, "negatives": 20, "tie_output": true, "embedding_dim": 32, "max_examples_per_seq": 5}');
SELECT config->>'n_negatives' AS negatives, config->>'hidden_dim' AS hidden_dim, config->>'tie_output' AS tied
FROM models WHERE name = 't_next_s';

-- next_behavior: accuracy over the behaviour labels (view -> cart -> buy is predictable)
SELECT count(*) AS epochs, min(metric_name) AS metric
FROM userseq_train('t_beh', 'SELECT seq FROM tr_seqs ORDER BY user_id', 'next_behavior', '{"epochs": 2}');
SELECT (metrics->>'accuracy')::float8 > 0.8 AS learned, config->>'n_outputs' AS outputs
FROM models WHERE name = 't_beh';

-- bigint[] sequences (no times, no behaviours)
SELECT count(*) AS epochs
FROM userseq_train('t_arr', 'SELECT userseq_items(seq) AS seq, label_bool AS label FROM tr_seqs ORDER BY user_id',
                   'binary', '{"epochs": 1}');
SELECT config->>'behavior' AS behavior, config->>'n_behaviors' AS n_behaviors FROM models WHERE name = 't_arr';

-- time validation: sequences whose last event is at or after the cutoff validate
SELECT count(*) AS epochs
FROM userseq_train('t_time', 'SELECT seq, label_bool AS label FROM tr_seqs ORDER BY user_id', 'binary',
                   '{"epochs": 1, "validation": {"method": "time", "cutoff": "2024-01-01 18:00:00+00"}, "time_gaps": true}');
SELECT (metrics->>'valid_sequences')::int = (SELECT count(*) FROM tr_seqs WHERE (userseq_times(seq))[userseq_length(seq)] >= '2024-01-01 18:00:00+00') AS split_by_last_event,
       config->>'time_gaps' AS gap_buckets
FROM models WHERE name = 't_time';

-- NULL sequences and NULL labels are skipped and counted in metrics
SELECT count(*) AS epochs
FROM userseq_train('t_nulls', $$SELECT CASE WHEN user_id % 10 = 0 THEN NULL ELSE seq END AS seq,
                                      CASE WHEN user_id % 10 = 1 THEN NULL ELSE label_bool END AS label
                               FROM tr_seqs ORDER BY user_id$$, 'binary', '{"epochs": 1}');
SELECT metrics->>'rows_read' AS rows_read, metrics->>'skipped_null_seq' AS null_seq,
       metrics->>'skipped_null_label' AS null_label
FROM models WHERE name = 't_nulls';

-- a second run of a name makes version 2 and deploys it; deploy: false stores only
SELECT count(*) FROM userseq_train('t_bin', 'SELECT seq, label_bool AS label FROM tr_seqs', 'binary', '{"epochs": 1}');
SELECT count(*) FROM userseq_train('t_bin', 'SELECT seq, label_bool AS label FROM tr_seqs', 'binary', '{"epochs": 1, "deploy": false}');
SELECT version, deployed FROM models WHERE name = 't_bin' ORDER BY version;

-- the client stopping early (LIMIT in the select list) stores nothing
SELECT (userseq_train('t_limit', 'SELECT seq, label_bool AS label FROM tr_seqs', 'binary', '{"epochs": 3}')).epoch LIMIT 1;
SELECT count(*) AS stored FROM models WHERE name = 't_limit';

-- statement_timeout cancels a long run within about a second and stores nothing
SELECT clock_timestamp() AS t0 \gset
SET statement_timeout = '1s';
SELECT * FROM userseq_train('t_cancel', 'SELECT seq, label_bool AS label FROM tr_seqs', 'binary', '{"epochs": 10000, "patience": 0}');
RESET statement_timeout;
SELECT clock_timestamp() - :'t0' < interval '3 seconds' AS stopped_quickly,
       (SELECT count(*) FROM models WHERE name = 't_cancel') AS models,
       (SELECT count(*) FROM training_log WHERE model = 't_cancel') AS log_rows;

-- errors
\set VERBOSITY default
SELECT * FROM userseq_train('e', 'SELECT seq, label_bool AS label FROM tr_seqs', 'binary', '{"epochz": 3}');
SELECT * FROM userseq_train('e', 'SELECT seq, label_bool AS label FROM tr_seqs', 'binary', '{"epochs": 0}');
SELECT * FROM userseq_train('e', 'SELECT seq, label_bool AS label FROM tr_seqs', 'binary', '{"epochs": "3"}');
SELECT * FROM userseq_train('e', 'SELECT seq, label_bool AS label FROM tr_seqs', 'binary', '{"dropout": 1}');
SELECT * FROM userseq_train('e', 'SELECT seq, label_bool AS label FROM tr_seqs', 'binary', '{"embed_init_std": 0}');
SELECT * FROM userseq_train('e', 'SELECT seq FROM tr_seqs', 'next_item', '{"embed_dropout": 1}');
SELECT * FROM userseq_train('e', 'SELECT seq FROM tr_seqs', 'next_item', '{"batch_unit": "tokens"}');
SELECT * FROM userseq_train('e', 'SELECT seq, label_bool AS label FROM tr_seqs', 'binary', '{"learning_rate": 0}');
SELECT * FROM userseq_train('e', 'SELECT seq, label_bool AS label FROM tr_seqs', 'binary', '{"optimizer": "lbfgs"}');
SELECT * FROM userseq_train('e', 'SELECT seq, label_bool AS label FROM tr_seqs', 'binary', '{"filter_widths": [3, 3]}');
SELECT * FROM userseq_train('e', 'SELECT seq, label_bool AS label FROM tr_seqs', 'binary', '{"filter_widths": [17]}');
SELECT * FROM userseq_train('e', 'SELECT seq, label_bool AS label FROM tr_seqs', 'binary', '{"negatives": 10}');
SELECT * FROM userseq_train('e', 'SELECT seq, label_bool AS label FROM tr_seqs', 'binary', '{"validation": {"method": "leave_one_out"}}');
SELECT * FROM userseq_train('e', 'SELECT seq, label_bool AS label FROM tr_seqs', 'binary', '{"validation": {"method": "time"}}');
SELECT * FROM userseq_train('e', 'SELECT seq, label_bool AS label FROM tr_seqs', 'binary', '{"validation": {"method": "time", "cutoff": "soon"}}');
SELECT * FROM userseq_train('e', 'SELECT seq, label_bool AS label FROM tr_seqs', 'binary', '{"validation": {"method": "random", "fraction": 0.1, "folds": 5}}');
SELECT * FROM userseq_train('e', 'SELECT seq, label_bool AS label FROM tr_seqs', 'binary', '[1, 2]');
SELECT * FROM userseq_train('e', 'SELECT seq, label_bool AS label FROM tr_seqs', 'churn');
SELECT * FROM userseq_train('e', 'SELECT seq FROM tr_seqs', 'binary');
SELECT * FROM userseq_train('e', 'SELECT user_id AS seq, label_bool AS label FROM tr_seqs', 'binary');
SELECT * FROM userseq_train('e', 'SELECT seq, segment AS label FROM tr_seqs', 'binary');
SELECT * FROM userseq_train('e', 'SELECT seq, (user_id % 3) AS label FROM tr_seqs ORDER BY user_id', 'binary');
SELECT * FROM userseq_train('e', 'SELECT seq, label_bool AS label, -1 AS weight FROM tr_seqs', 'binary');
SELECT * FROM userseq_train('e', 'SELECT seq, label_bool AS label FROM tr_seqs WHERE false', 'binary');
SELECT * FROM userseq_train('e', 'DELETE FROM tr_seqs', 'binary');
SELECT * FROM userseq_train('e', 'SELECT userseq_items(seq) AS seq FROM tr_seqs', 'next_behavior');
SELECT * FROM userseq_train(NULL, 'SELECT 1', 'binary');
SET userseq.train_memory = '1MB';
SELECT * FROM userseq_train('e', 'SELECT seq, label_bool AS label FROM tr_seqs', 'binary', '{"embedding_dim": 512}');
SELECT * FROM userseq_train('e', 'SELECT array_agg(g::bigint) AS seq FROM generate_series(1, 100000) g', 'next_item');
RESET userseq.train_memory;
SELECT count(*) AS nothing_stored FROM models WHERE name = 'e';
