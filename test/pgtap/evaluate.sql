-- userseq_evaluate / userseq_roc_curve / userseq_confusion_matrix / userseq_auc:
-- hand-computed ranking metrics for the baselines, the model's ranks cross-checked against
-- userseq_recommend, a planted second-order pattern the CNN must learn better than popularity
-- and markov, classification metrics against userseq_auc, and the aggregate in a parallel plan.
BEGIN;
CREATE EXTENSION IF NOT EXISTS userseq;
SELECT plan(31);
SET LOCAL client_min_messages = warning;

-- ---------------------------------------------------------------- hand-built next_item case
-- Training counts (the first n-2 events of each sequence train under leave_one_out):
-- item 5: 5, item 4: 4, item 3: 3, items 2, 6, 1: 2 each; item 9 appears only in held-out
-- positions, so it is outside the vocabulary.
CREATE TEMP TABLE ev_train (seq userseq);
INSERT INTO ev_train VALUES ('{5,5,9,9}'::int8[]::userseq), ('{5,5,9,9}'::int8[]::userseq), ('{5,4,9,9}'::int8[]::userseq),
	('{4,4,9,9}'::int8[]::userseq), ('{4,3,9,9}'::int8[]::userseq), ('{3,3,9,9}'::int8[]::userseq), ('{2,2,9,9}'::int8[]::userseq),
	('{6,6,9,9}'::int8[]::userseq), ('{1,1,9,9}'::int8[]::userseq);
SELECT count(*) FROM userseq_train('ev_tiny', 'SELECT seq FROM ev_train', 'next_item',
	'{"epochs": 1, "embedding_dim": 8, "num_filters": 8, "hidden_dim": 8, "filter_widths": [2], "seed": 1}');

-- evaluation sequences (target = last event):
--   {1,5}: target 5; {5,3}: target 3; {3,2}: target 2 (ties with 6 and 1 count against it);
--   {4,9}: unknown target (a miss); {4,3,4,3}: target 3, transitions before it 4->3, 3->4.
CREATE TEMP TABLE ev_q (id int, seq userseq);
INSERT INTO ev_q VALUES (1, '{1,5}'::int8[]::userseq), (2, '{5,3}'::int8[]::userseq), (3, '{3,2}'::int8[]::userseq),
	(4, '{4,9}'::int8[]::userseq), (5, '{4,3,4,3}'::int8[]::userseq);
CREATE TEMP TABLE ev_r AS SELECT * FROM userseq_evaluate('ev_tiny', 'SELECT seq FROM ev_q ORDER BY id');
CREATE FUNCTION pg_temp.m(s text, p text, k text) RETURNS float8 LANGUAGE sql AS
	$$SELECT value FROM ev_r WHERE scorer = s AND protocol = p AND metric = k$$;

-- popularity, full catalogue (6 items): ranks 1, 3, 6, miss, 3
SELECT is(pg_temp.m('popularity', 'full', 'hr@1'), 0.2::float8, 'popularity full hr@1 = 1/5');
SELECT is(pg_temp.m('popularity', 'full', 'hr@5'), 0.6::float8, 'popularity full hr@5 = 3/5');
SELECT is(pg_temp.m('popularity', 'full', 'hr@10'), 0.8::float8, 'popularity full hr@10 = 4/5 (the unknown target never hits)');
SELECT ok(abs(pg_temp.m('popularity', 'full', 'mrr') - 11.0 / 30) < 1e-12, 'popularity full mrr = (1 + 1/3 + 1/6 + 0 + 1/3) / 5');
SELECT ok(abs(pg_temp.m('popularity', 'full', 'ndcg@10') - (1 + 0.5 + 1 / log(2, 7) + 0.5) / 5) < 1e-12, 'popularity full ndcg@10 by hand');
SELECT ok(abs(pg_temp.m('popularity', 'full', 'ndcg@5') - (1 + 0.5 + 0.5) / 5) < 1e-12, 'popularity full ndcg@5 by hand');
-- markov, full: the 4->3 transition lifts target 3 of sequence 5 to rank 1: ranks 1, 3, 6, miss, 1
SELECT is(pg_temp.m('markov', 'full', 'hr@1'), 0.4::float8, 'markov full hr@1 = 2/5');
SELECT ok(abs(pg_temp.m('markov', 'full', 'mrr') - 0.5) < 1e-12, 'markov full mrr = (1 + 1/3 + 1/6 + 0 + 1) / 5');
-- sampled: fewer than 99 unseen items, so every unseen item is a negative (no randomness):
-- popularity ranks 1, 2, 5, miss, 2; markov 1, 2, 5, miss, 1
SELECT ok(abs(pg_temp.m('popularity', 'sampled:99', 'mrr') - 0.44) < 1e-12, 'popularity sampled mrr = (1 + 1/2 + 1/5 + 0 + 1/2) / 5');
SELECT is(pg_temp.m('popularity', 'sampled:99', 'hr@5'), 0.8::float8, 'popularity sampled hr@5 = 4/5');
SELECT ok(abs(pg_temp.m('markov', 'sampled:99', 'mrr') - 0.54) < 1e-12, 'markov sampled mrr = (1 + 1/2 + 1/5 + 0 + 1) / 5');
SELECT is(pg_temp.m('model', 'full', 'sequences'), 5::float8, 'five sequences evaluated');
SELECT is((SELECT count(*) FROM ev_r)::int, 3 * 2 * 10, 'three scorers x two protocols x (4 hr + 4 ndcg + mrr + sequences)');

-- the model's full-catalogue MRR equals the ranks of the targets in userseq_recommend
SELECT ok(abs(pg_temp.m('model', 'full', 'mrr') - (
	SELECT avg(coalesce(1.0 / r.rank, 0))
	FROM (SELECT userseq_items(seq) AS items FROM ev_q) q
	LEFT JOIN LATERAL (SELECT rank FROM userseq_recommend('ev_tiny', userseq(q.items[1:cardinality(q.items) - 1]), 100, false)
					   WHERE item = q.items[cardinality(q.items)]) r ON true)) < 1e-9,
	'model full mrr agrees with the ranks userseq_recommend gives');
SELECT throws_ok($$SELECT * FROM userseq_evaluate('ev_tiny', 'SELECT 1')$$, '42804', NULL, 'a query without a userseq column is refused');
SELECT throws_ok($$SELECT * FROM userseq_evaluate('ev_tiny', 'SELECT seq FROM ev_q', negatives => 0)$$, '22023', NULL, 'negatives must be positive');
SELECT throws_ok($$SELECT * FROM userseq_evaluate('ev_tiny', 'SELECT seq FROM ev_q', cutoffs => '{}')$$, '22023', NULL, 'cutoffs must not be empty');
SELECT throws_ok($$SELECT * FROM userseq_evaluate('no_such_model', 'SELECT seq FROM ev_q')$$, '42704', NULL, 'unknown model');

-- ---------------------------------------------------------------- planted second-order pattern
-- Even positions carry a signal chain a, a+1, a+2, ... (ids 1..50); odd positions random noise
-- (ids 101..300). The item after a noise event is determined by the event two steps back, which
-- a first-order transition table cannot see and popularity ignores; width-3 filters can.
SELECT setseed(0.5);
CREATE TEMP TABLE ev_pl AS
SELECT u, userseq(ARRAY(
	SELECT (CASE WHEN e % 2 = 0 THEN ((u * 7 + e / 2) % 50) + 1 ELSE 101 + floor(random() * 200) END)::int8
	FROM generate_series(0, 2 * (4 + u % 6)) e ORDER BY e)) AS seq
FROM generate_series(1, 1500) u;
SELECT count(*) FROM userseq_train('ev_plant', 'SELECT seq FROM ev_pl WHERE u <= 1200', 'next_item',
	'{"epochs": 4, "embedding_dim": 32, "num_filters": 32, "hidden_dim": 32, "filter_widths": [3], "learning_rate": 0.01, "seed": 2}');
CREATE TEMP TABLE ev_pr AS SELECT * FROM userseq_evaluate('ev_plant', 'SELECT seq FROM ev_pl WHERE u > 1200 ORDER BY u');
SELECT diag(string_agg(scorer || ' ' || protocol || ' ' || metric || ' = ' || round(value::numeric, 4), ', ' ORDER BY protocol, scorer)) FROM ev_pr WHERE metric IN ('hr@10', 'ndcg@10');
SELECT ok((SELECT value FROM ev_pr WHERE scorer = 'model' AND protocol = 'full' AND metric = 'hr@10') >
		  (SELECT max(value) FROM ev_pr WHERE scorer <> 'model' AND protocol = 'full' AND metric = 'hr@10') + 0.2,
		  'planted pattern: model hr@10 (full) beats popularity and markov by more than 0.2');
SELECT ok((SELECT value FROM ev_pr WHERE scorer = 'model' AND protocol = 'sampled:99' AND metric = 'ndcg@10') >
		  (SELECT max(value) FROM ev_pr WHERE scorer <> 'model' AND protocol = 'sampled:99' AND metric = 'ndcg@10') + 0.2,
		  'planted pattern: model ndcg@10 (sampled:99) beats both baselines by more than 0.2');

-- ---------------------------------------------------------------- classification
CREATE TEMP TABLE ev_b AS
SELECT u, userseq(ARRAY(SELECT ((u * 3 + e * 5) % 40 + 1)::int8 FROM generate_series(1, 5 + u % 7) e)) AS seq,
	   (u * 3) % 40 < 10 AS label
FROM generate_series(1, 600) u;
SELECT count(*) FROM userseq_train('ev_bin', 'SELECT seq, label FROM ev_b WHERE u <= 500', 'binary',
	'{"epochs": 3, "embedding_dim": 16, "num_filters": 16, "hidden_dim": 16, "seed": 4}');
CREATE TEMP TABLE ev_br AS SELECT * FROM userseq_evaluate('ev_bin', 'SELECT seq, label FROM ev_b WHERE u > 500');
SELECT ok(abs((SELECT value FROM ev_br WHERE scorer = 'model' AND metric = 'roc_auc') -
			  (SELECT userseq_auc(userseq_predict('ev_bin', seq), label) FROM ev_b WHERE u > 500)) < 1e-12,
		  'evaluate roc_auc equals userseq_auc over userseq_predict');
SELECT is((SELECT value FROM ev_br WHERE scorer = 'prior' AND metric = 'roc_auc'), 0.5::float8,
		  'prior baseline (training positive rate, a constant) has ROC AUC 0.5');
SELECT ok((SELECT value FROM ev_br WHERE scorer = 'model' AND metric = 'log_loss') <
		  (SELECT value FROM ev_br WHERE scorer = 'prior' AND metric = 'log_loss'),
		  'model log loss beats the prior baseline');
SELECT is((SELECT sum(n) FROM userseq_confusion_matrix('ev_bin', 'SELECT seq, label FROM ev_b WHERE u > 500'))::int, 100,
		  'confusion matrix counts every row');
SELECT ok(abs((SELECT value FROM ev_br WHERE scorer = 'model' AND metric = 'accuracy') -
			  (SELECT sum(n) FILTER (WHERE actual = predicted)::float8 / sum(n) FROM userseq_confusion_matrix('ev_bin', 'SELECT seq, label FROM ev_b WHERE u > 500'))) < 1e-12,
		  'accuracy agrees with the confusion matrix diagonal');
SELECT ok(abs((SELECT sum((fpr - lf) * (tpr + lt) / 2) FROM (
				SELECT fpr, tpr, lag(fpr) OVER w AS lf, lag(tpr) OVER w AS lt
				FROM userseq_roc_curve('ev_bin', 'SELECT seq, label FROM ev_b WHERE u > 500')
				WINDOW w AS (ORDER BY threshold DESC)) x WHERE lf IS NOT NULL) -
			  (SELECT value FROM ev_br WHERE scorer = 'model' AND metric = 'roc_auc')) < 1e-9,
		  'trapezoid area under userseq_roc_curve equals roc_auc');

-- ---------------------------------------------------------------- userseq_auc aggregate
-- pairwise definition with ties counted one half, on data with many ties
CREATE TABLE ev_s AS SELECT g, (g % 5)::float8 AS score, (g % 3 = 0) AS label FROM generate_series(1, 3000) g;
ANALYZE ev_s;
SELECT ok(abs((SELECT userseq_auc(score, label) FROM ev_s) -
			  (SELECT avg(CASE WHEN p.score > n.score THEN 1.0 WHEN p.score = n.score THEN 0.5 ELSE 0 END)
			   FROM ev_s p, ev_s n WHERE p.label AND NOT n.label)) < 1e-12,
		  'userseq_auc equals the pairwise definition with ties');
CREATE FUNCTION pg_temp.plan_of(q text) RETURNS text LANGUAGE plpgsql AS
$$DECLARE r text; acc text := ''; BEGIN
	FOR r IN EXECUTE 'EXPLAIN (COSTS OFF) ' || q LOOP acc := acc || r || E'\n'; END LOOP;
	RETURN acc; END$$;
SET LOCAL parallel_setup_cost = 0;
SET LOCAL parallel_tuple_cost = 0;
SET LOCAL min_parallel_table_scan_size = 0;
SET LOCAL max_parallel_workers_per_gather = 2;
SELECT matches(pg_temp.plan_of('SELECT userseq_auc(score, label) FROM ev_s'), 'Partial Aggregate', 'userseq_auc runs as a partial aggregate');
SELECT ok(abs((SELECT userseq_auc(score, label) FROM ev_s) -
			  (SELECT avg(CASE WHEN p.score > n.score THEN 1.0 WHEN p.score = n.score THEN 0.5 ELSE 0 END)
			   FROM ev_s p, ev_s n WHERE p.label AND NOT n.label)) < 1e-12,
		  'userseq_auc in a parallel plan gives the same value');
SELECT is((SELECT userseq_auc(score, label) FROM ev_s WHERE label), NULL, 'one class only: NULL');
SELECT throws_ok($$SELECT userseq_auc('NaN'::float8, true)$$, '22000', NULL, 'NaN scores are refused');

SELECT * FROM finish();
ROLLBACK;
