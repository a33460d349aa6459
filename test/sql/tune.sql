-- userseq_tune: seeded random search with successive halving on data read once (issue 15.5)
-- Figures are asserted as inequalities or as equalities between two runs on this machine.
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS userseq;
-- planted next-item data: the next item is a fixed function of the position (60 items)
CREATE TABLE tu_seqs AS
SELECT s AS user_id,
	   array_agg(((s * 7 + i * 3 + (CASE WHEN (s * i) % 10 = 0 THEN s ELSE 0 END)) % 60 + 1)::bigint ORDER BY i) AS seq
FROM generate_series(1, 400) s, generate_series(1, 12) i GROUP BY s;

-- the given options (trial 1) use a learning rate that cannot learn in 2 epochs
CREATE TABLE tu_a AS
SELECT * FROM userseq_tune('tu_a', 'SELECT seq FROM tu_seqs ORDER BY user_id', 'next_item',
	'{"epochs": 2, "learning_rate": 0.00001, "embedding_dim": 16, "num_filters": 16, "hidden_dim": 16, "threads": 1}', 6,
	space => '{"learning_rate": {"min": 0.00001, "max": 0.05, "log": true}, "dropout": [0, 0.2]}');
SELECT count(*) AS trials, count(*) FILTER (WHERE status LIKE 'best%') AS best,
	   bool_and(epochs BETWEEN 1 AND 2) AS epochs_ok, bool_and(options ? 'learning_rate') AS has_lr
FROM tu_a;
-- the best beats trial 1 clearly and comes from the good region (learning rate >= 0.001)
SELECT (SELECT valid_metric FROM tu_a WHERE status LIKE 'best%')
		 > (SELECT valid_metric FROM tu_a WHERE trial = 1) + 0.05 AS best_beats_given,
	   (SELECT (options->>'learning_rate')::float8 FROM tu_a WHERE status LIKE 'best%') >= 0.001 AS good_region,
	   (SELECT count(*) FROM tu_a WHERE status = 'pruned') > 0 AS some_pruned;
-- stored as a deployed version with the best trial's options (retrain reuses them) and the tuning recorded
SELECT m.version, m.deployed,
	   m.options = (SELECT options - 'transition_prior' - 'repeat_prior' FROM tu_a WHERE status LIKE 'best%') AS best_options,
	   (m.metrics->'tuning'->>'trials')::int AS trials,
	   (m.metrics->'tuning'->>'best_trial')::int = (SELECT trial FROM tu_a WHERE status LIKE 'best%') AS best_trial,
	   abs((m.metrics->>'ndcg@10')::float8 - (SELECT valid_metric FROM tu_a WHERE status LIKE 'best%')) < 1e-12 AS metric
FROM models m WHERE name = 'tu_a';
-- next_item: every trial that validated fitted its priors' weights (shown as the options
-- that reproduces it; the stored model keeps "auto"), the stored one is the best trial's
SELECT bool_and(jsonb_typeof(options->'transition_prior') = 'number' AND jsonb_typeof(options->'repeat_prior') = 'number') AS every_trial_weighted,
	   (SELECT (m.metrics->>'transition_weight')::float8 = (a.options->>'transition_prior')::float8
			   AND m.metrics->>'transition_prior' = 'auto' AND NOT m.options ? 'transition_prior'
		FROM models m, tu_a a WHERE m.name = 'tu_a' AND a.status LIKE 'best%') AS stored_weight
FROM tu_a WHERE epochs > 0;
-- every trial logged, the best marked, linked to the stored version and its training_log run
SELECT count(*) AS logged, bool_and(t.version = 1) AS version,
	   bool_and(t.options = a.options AND t.valid_metric = a.valid_metric AND t.epochs = a.epochs) AS same_rows,
	   bool_and(t.best = (a.status LIKE 'best%')) AS best_marked
FROM tuning_trials t JOIN tu_a a USING (trial) WHERE t.model = 'tu_a';
SELECT count(*) = (SELECT epochs FROM tu_a WHERE status LIKE 'best%') AS best_run_logged
FROM training_log l JOIN tuning_trials t ON t.run_id = l.run_id AND t.best
WHERE t.model = 'tu_a';
SELECT abs(new_metric - (SELECT valid_metric FROM tu_a WHERE status LIKE 'best%')) < 1e-9 AS retrain_reproduces
FROM userseq_retrain('tu_a');

-- determinism: the same seed gives the same trials and the same best options
CREATE TABLE tu_b AS
SELECT * FROM userseq_tune('tu_b', 'SELECT seq FROM tu_seqs ORDER BY user_id', 'next_item',
	'{"epochs": 2, "learning_rate": 0.00001, "embedding_dim": 16, "num_filters": 16, "hidden_dim": 16, "threads": 1}', 6,
	space => '{"learning_rate": {"min": 0.00001, "max": 0.05, "log": true}, "dropout": [0, 0.2]}');
SELECT count(*) AS same_trials FROM tu_a a JOIN tu_b b USING (trial)
WHERE a.options = b.options AND a.valid_metric = b.valid_metric AND a.status = b.status AND a.epochs = b.epochs;
-- another seed draws other trials
SELECT count(*) < 5 AS other_seed_differs
FROM userseq_tune('tu_c', 'SELECT seq FROM tu_seqs ORDER BY user_id', 'next_item',
	'{"epochs": 2, "learning_rate": 0.00001, "embedding_dim": 16, "num_filters": 16, "hidden_dim": 16, "threads": 1, "seed": 7}', 6,
	space => '{"learning_rate": {"min": 0.00001, "max": 0.05, "log": true}, "dropout": [0, 0.2]}') c
JOIN tu_a a USING (trial) WHERE a.options - 'seed' = c.options - 'seed';

-- budget: a tiny time budget stops after the first epoch of trial 1, with a status
SELECT trial, epochs, status
FROM userseq_tune('tu_d', 'SELECT seq FROM tu_seqs ORDER BY user_id', 'next_item',
	'{"epochs": 5, "embedding_dim": 16, "num_filters": 16, "hidden_dim": 16, "threads": 1}', 50,
	time_budget => '1 millisecond');
SELECT (metrics->'tuning'->>'time_budget_reached')::boolean AS budget_reached,
	   (metrics->'tuning'->>'trials_requested')::int AS requested
FROM models WHERE name = 'tu_d';
-- nothing to search: only the given options are tried
SELECT trial, status FROM userseq_tune('tu_e', 'SELECT seq FROM tu_seqs ORDER BY user_id', 'next_item',
	'{"epochs": 1, "embedding_dim": 8, "num_filters": 8, "hidden_dim": 8, "threads": 1}', 4,
	space => '{"learning_rate": null, "batch_size": null, "dropout": null, "embed_dropout": null, "weight_decay": null, "filter_widths": null, "recent_window": null, "tie_output": null}');
-- embed_dropout is in the default space (uniform 0-0.5): with only it left, trials draw it
SELECT count(*) AS trials, count(DISTINCT options->'embed_dropout') AS draws,
	   bool_and((options->>'embed_dropout')::float8 BETWEEN 0 AND 0.5) FILTER (WHERE trial > 1) AS in_range
FROM userseq_tune('tu_h', 'SELECT seq FROM tu_seqs ORDER BY user_id', 'next_item',
	'{"epochs": 1, "embedding_dim": 8, "num_filters": 8, "hidden_dim": 8, "threads": 1}', 3,
	space => '{"learning_rate": null, "batch_size": null, "dropout": null, "weight_decay": null, "filter_widths": null, "recent_window": null, "tie_output": null}');

-- tie_output fixed in options: every draw keeps hidden_dim = embedding_dim
SELECT count(*) AS trials, bool_and(options->'hidden_dim' = options->'embedding_dim') AS tied_dims
FROM userseq_tune('tu_g', 'SELECT seq FROM tu_seqs ORDER BY user_id', 'next_item',
	'{"epochs": 1, "tie_output": true, "threads": 1}', 3,
	space => '{"embedding_dim": [8, 16], "hidden_dim": [8, 16], "learning_rate": null, "batch_size": null, "dropout": null, "weight_decay": null, "filter_widths": null, "recent_window": null, "num_filters": [8]}');

-- architecture searched with keys of each: a sasrec trial gets none of the text-CNN's keys
-- (num_filters, filter_widths, recent_window), a text-CNN trial none of the encoder's
SELECT count(*) AS trials,
	   count(*) FILTER (WHERE options->>'architecture' = 'sasrec') > 0 AS some_sasrec,
	   count(*) FILTER (WHERE options->>'architecture' = 'textcnn') > 0 AS some_textcnn,
	   bool_and(NOT options ?| array['num_filters', 'filter_widths', 'recent_window'])
		 FILTER (WHERE options->>'architecture' = 'sasrec') AS sasrec_without_cnn_keys,
	   bool_and(options ? 'num_heads') FILTER (WHERE options->>'architecture' = 'sasrec') AS sasrec_heads_drawn,
	   bool_and(NOT options ? 'num_heads' AND options ? 'filter_widths')
		 FILTER (WHERE options->>'architecture' = 'textcnn') AS textcnn_without_encoder_keys
FROM userseq_tune('tu_i', 'SELECT seq FROM tu_seqs ORDER BY user_id', 'next_item',
	'{"epochs": 1, "embedding_dim": 8, "hidden_dim": 8, "threads": 1}', 6,
	space => '{"architecture": ["textcnn", "sasrec"], "num_heads": [1, 2], "num_filters": [8], "learning_rate": null, "batch_size": null, "dropout": null, "embed_dropout": null, "weight_decay": null, "tie_output": null}');
-- architecture fixed to sasrec in options: the default space leaves the text-CNN's keys out
SELECT count(*) AS trials, bool_and(NOT options ?| array['num_filters', 'filter_widths', 'recent_window']) AS no_cnn_keys
FROM userseq_tune('tu_j', 'SELECT seq FROM tu_seqs ORDER BY user_id', 'next_item',
	'{"epochs": 1, "architecture": "sasrec", "embedding_dim": 8, "hidden_dim": 8, "threads": 1}', 3,
	space => '{"learning_rate": null, "batch_size": null, "weight_decay": null, "tie_output": null}');

-- statement_timeout cancels the search and nothing is written
SET statement_timeout = '400ms';
SELECT count(*) FROM userseq_tune('tu_f', 'SELECT seq FROM tu_seqs ORDER BY user_id', 'next_item',
	'{"epochs": 1000, "patience": 0, "embedding_dim": 16, "num_filters": 16, "hidden_dim": 16, "threads": 1}', 100);
RESET statement_timeout;
SELECT count(*) AS nothing_written FROM models WHERE name = 'tu_f';

-- invalid space, options and arguments: 22023 naming what is allowed
CREATE FUNCTION tu_err(space jsonb, options jsonb DEFAULT '{}', task text DEFAULT 'next_item', trials int DEFAULT 2)
RETURNS text LANGUAGE plpgsql AS $$
DECLARE
	detail text;
BEGIN
	PERFORM * FROM userseq_tune('tu_x', 'SELECT seq FROM tu_seqs', task, options, trials, NULL, space);
	RETURN 'no error';
EXCEPTION WHEN others THEN
	GET STACKED DIAGNOSTICS detail = PG_EXCEPTION_DETAIL;
	-- a list of allowed options grows with the options of this build: only checked to be there
	IF detail LIKE '%options are%' THEN
		detail := CASE WHEN detail LIKE '%learning_rate%' THEN 'lists the allowed options' ELSE detail END;
	END IF;
	RETURN SQLSTATE || ': ' || SQLERRM || coalesce(' (' || nullif(detail, '') || ')', '');
END $$;
SELECT tu_err('{"momentum": [0.5]}');
SELECT tu_err('{"learning_rate": {"min": -1, "max": 0.1}}');
SELECT tu_err('{"learning_rate": {"min": 0, "max": 0.1, "log": true}}');
SELECT tu_err('{"dropout": [0.1, 2]}');
SELECT tu_err('{"filter_widths": {"min": 1, "max": 3}}');
SELECT tu_err('{"batch_size": []}');
SELECT tu_err('{"batch_size": {"low": 1, "max": 3}}');
SELECT tu_err('[1, 2]');
SELECT tu_err('{"tie_output": [true]}', task => 'binary');
SELECT tu_err('{"num_heads": [1, 2]}');
SELECT tu_err('{"architecture": ["textcnn", "sasrec"]}', '{"recent_window": 2}');
SELECT tu_err(NULL, '{"learnin_rate": 0.1}');
SELECT tu_err(NULL, trials => 0);
SELECT tu_err(NULL, '{"warm_start": true}');
SELECT tu_err(NULL, task => 'next_thing');
SELECT count(*) AS nothing_written FROM models WHERE name = 'tu_x';
