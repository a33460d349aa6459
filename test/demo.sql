-- demo.sql: the main job of userseq on real data, run by test/demo-run.sh inside a throwaway
-- cluster (psql -X -v ON_ERROR_STOP=1 -v datadir=<abs path to test/data/online_retail>).
-- Loads UCI Online Retail (CC BY 4.0: Chen, D. (2015). Online Retail [Dataset]. UCI Machine
-- Learning Repository. https://doi.org/10.24432/C5BW33), builds one behaviour sequence per
-- customer, and (from the ML work) trains, evaluates and scores models on them.
\set QUIET on
\pset footer off
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS userseq;
RESET client_min_messages;
-- the shop is in the UK: show its local times
SET TimeZone = 'Europe/London';
\timing off

\echo
\echo '== 1. Online Retail: loading 541,909 invoice lines into events and items'
\ir data/load_online_retail.sql

\echo
\echo '== 2. one behaviour sequence per customer: userseq_agg(item_id, ts, behavior)'
SELECT pg_catalog.to_regprocedure('userseq_agg(bigint, timestamptz, text)') IS NOT NULL AS us_has_agg \gset
\if :us_has_agg
\timing on
CREATE TABLE user_seqs AS
SELECT user_id, userseq_agg(item_id, ts, behavior) AS seq
FROM events
GROUP BY user_id;
\timing off
ALTER TABLE user_seqs ADD PRIMARY KEY (user_id);
ANALYZE user_seqs;

SELECT count(*) AS customers,
	sum(userseq_length(seq)) AS events,
	min(userseq_length(seq)) AS min_len,
	percentile_disc(0.5) WITHIN GROUP (ORDER BY userseq_length(seq)) AS median_len,
	max(userseq_length(seq)) AS max_len,
	count(*) FILTER (WHERE userseq_count(seq, 'return') > 0) AS with_returns
FROM user_seqs;

\echo 'three customers, their first three events (item:time:behaviour):'
SELECT s.user_id, userseq_length(s.seq) AS events, userseq_first(s.seq, 3) AS first_events
FROM user_seqs s
ORDER BY s.user_id
LIMIT 3;

\echo 'the most bought items:'
SELECT i.item_id, i.stock_code, i.description, count(*) AS buys, count(DISTINCT e.user_id) AS customers
FROM events e JOIN items i USING (item_id)
WHERE e.behavior = 'buy'
GROUP BY i.item_id, i.stock_code, i.description
ORDER BY buys DESC, i.item_id
LIMIT 5;
\else
\echo 'userseq_agg is not available in this build: sequences skipped'
\endif

-- == training, evaluation and scoring (added by the ML work)
-- Labels, splits and options are explained in test/data/online_retail_tasks.sql and README.md
-- ("Online Retail: results"). Options were chosen on the validation customers only; the test
-- customers are used for the tables below and nothing else.
SELECT pg_catalog.to_regprocedure('userseq_train(text, text, text, jsonb)') IS NOT NULL AS us_has_train \gset
\if :us_has_train

\echo
\echo '== 3. tasks: cutoff = 90 days before the last day; churn = no purchase after it; repeat30 = a purchase in the 30 days after it'
\ir data/online_retail_tasks.sql
SELECT cutoff, end_ts FROM or_params;

\echo
\echo '== 4. churn model: userseq_train(...) returns one row per epoch (best epoch restored)'
SELECT epoch, round(train_loss::numeric, 4) AS train_loss, round(valid_loss::numeric, 4) AS valid_loss,
	round(valid_metric::numeric, 4) AS valid_roc_auc, round(seconds::numeric, 1) AS seconds
FROM userseq_train('churn',
	$$SELECT seq, churned AS label FROM or_customers WHERE split = 'train' ORDER BY user_id$$, 'binary',
	'{"seed": 1, "threads": 1, "max_len": 300, "min_count": 10, "recent_window": 3,
	  "embedding_dim": 32, "num_filters": 32, "hidden_dim": 32}');

\echo
\echo 'churn on the held-out test customers: the model (userseq_evaluate) and the recency/frequency baselines (userseq_auc)'
\echo '--8<-- begin churn_test'
SELECT scorer, metric, round(value::numeric, 4) AS value
FROM userseq_evaluate('churn', $$SELECT seq, churned AS label FROM or_customers WHERE split = 'test'$$)
WHERE scorer = 'model' AND metric IN ('roc_auc', 'accuracy', 'f1', 'log_loss', 'sequences')
UNION ALL
SELECT v.scorer, 'roc_auc', round(v.auc::numeric, 4)
FROM (SELECT userseq_auc(recency_days, churned) AS rec,
		userseq_auc(-invoices, churned) AS freq,
		userseq_auc(pr_rec + pr_freq, churned) AS rank_avg
	FROM (SELECT *, percent_rank() OVER (ORDER BY recency_days) AS pr_rec,
			percent_rank() OVER (ORDER BY -invoices) AS pr_freq
		FROM or_customers WHERE split = 'test') t) a,
	LATERAL (VALUES ('baseline: recency (days since last purchase)', a.rec),
		('baseline: frequency (fewer invoices)', a.freq),
		('baseline: rank average of both', a.rank_avg)) v(scorer, auc);
\echo '--8<-- end churn_test'

\echo 'the five test customers most likely to churn (userseq_predict) and what happened:'
SELECT user_id, round(userseq_predict('churn', seq)::numeric, 3) AS p_churn,
	round(recency_days::numeric, 0) AS days_since_purchase, invoices, churned AS actually_churned
FROM or_customers WHERE split = 'test'
ORDER BY userseq_predict('churn', seq) DESC, user_id
LIMIT 5;

\echo
\echo 'repeat30 (a purchase in the 30 days after the cutoff), same options, on inv_seq (one event per invoice,'
\echo 'labelled with which purchase it is and its size, so max pooling can see "reached k invoices"):'
\echo 'test ROC AUC of the model and the baselines'
SELECT count(*) AS epochs FROM userseq_train('repeat30',
	$$SELECT inv_seq AS seq, repeat30 AS label FROM or_customers WHERE split = 'train' ORDER BY user_id$$, 'binary',
	'{"seed": 1, "threads": 1, "max_len": 300, "min_count": 10, "recent_window": 3,
	  "embedding_dim": 32, "num_filters": 32, "hidden_dim": 32}');
SELECT round(userseq_auc(userseq_predict('repeat30', inv_seq), repeat30)::numeric, 4) AS model,
	round(userseq_auc(-recency_days, repeat30)::numeric, 4) AS baseline_recency,
	round(userseq_auc(invoices, repeat30)::numeric, 4) AS baseline_frequency
FROM or_customers WHERE split = 'test';

\echo
\echo '== 5. next item: which product will be in a customer''s next basket?'
\echo 'trained on the training customers'' purchase sequences, validated on the first item of each one''s last'
\echo 'basket (validation "last_basket": the question the test asks; an invoice''s items lie within 59 s),'
\echo 'with the default priors (transitions, and repeat purchases: README "Next-item quality"), their weights'
\echo 'chosen on that validation'
SELECT epoch, round(train_loss::numeric, 4) AS train_loss, round(valid_loss::numeric, 4) AS valid_loss,
	round(valid_metric::numeric, 4) AS valid_ndcg10, round(seconds::numeric, 1) AS seconds
FROM userseq_train('next_item',
	$$SELECT train_seq AS seq FROM or_next_item WHERE split = 'train' ORDER BY user_id$$, 'next_item',
	'{"seed": 1, "threads": 1, "max_len": 30, "max_examples_per_seq": 20, "epochs": 10,
	  "validation": {"method": "last_basket", "within": "59 seconds"}}');

\echo 'held-out test customers: earlier baskets in, one item of the last basket to find'
\echo '--8<-- begin next_item_test'
SELECT metric, protocol,
	round(max(value) FILTER (WHERE scorer = 'model')::numeric, 4) AS model,
	round(max(value) FILTER (WHERE scorer = 'popularity')::numeric, 4) AS popularity,
	round(max(value) FILTER (WHERE scorer = 'markov')::numeric, 4) AS markov
FROM userseq_evaluate('next_item', $$SELECT eval_seq AS seq FROM or_next_item WHERE split = 'test'$$, 99, '{10}')
WHERE metric IN ('hr@10', 'ndcg@10', 'mrr')
GROUP BY metric, protocol
ORDER BY protocol, metric;
\echo '--8<-- end next_item_test'

\echo 'recommendations for one test customer (userseq_recommend joined to the catalogue):'
SELECT r.rank, i.stock_code, i.description, round(r.score::numeric, 2) AS score
FROM (SELECT user_id, train_seq FROM or_next_item WHERE split = 'test' ORDER BY user_id LIMIT 1) c,
	LATERAL userseq_recommend('next_item', c.train_seq, 5) r
JOIN items i ON i.item_id = r.item
ORDER BY r.rank;

\echo
\echo '== 6. why and what''s odd: explanations (userseq_explain) and surprise (userseq_surprise)'
\echo 'the churn model''s explanation for the three test customers most likely to churn: the five events'
\echo 'with the largest integrated-gradients attribution toward P(churn) (the cutoff marker event carries'
\echo 'the time since the last purchase); the attributions of all events add up to P(churn) minus P(churn)'
\echo 'of an empty history'
SELECT c.user_id, round(c.p::numeric, 3) AS p_churn, x.position, userseq_length(c.seq) AS events,
	to_char(x.ts, 'YYYY-MM-DD') AS day, x.behavior, coalesce(i.description, '(cutoff marker)') AS item,
	round(x.attribution::numeric, 4) AS attribution
FROM (SELECT user_id, seq, userseq_predict('churn', seq) AS p FROM or_customers WHERE split = 'test'
	  ORDER BY 3 DESC, user_id LIMIT 3) c,
	LATERAL (SELECT * FROM userseq_explain('churn', c.seq) ORDER BY abs(attribution) DESC, position LIMIT 5) x
	LEFT JOIN items i ON i.item_id = x.item AND x.item <> 0
ORDER BY c.p DESC, c.user_id, abs(x.attribution) DESC, x.position;
SELECT c.user_id, round(sum(x.attribution)::numeric, 4) AS sum_of_attributions,
	round((userseq_predict('churn', c.seq) - userseq_predict('churn', '[]'::userseq))::numeric, 4) AS p_minus_p_empty
FROM (SELECT user_id, seq FROM or_customers WHERE split = 'test'
	  ORDER BY userseq_predict('churn', seq) DESC, user_id LIMIT 3) c,
	LATERAL userseq_explain('churn', c.seq) x
GROUP BY c.user_id, c.seq ORDER BY c.user_id;
\echo 'what the churn model looks at over all test customers (userseq_global_explain): by position from the end'
SELECT value AS position_from_end, events, round(mean_attribution::numeric, 4) AS mean_attribution,
	round(mean_abs_attribution::numeric, 4) AS mean_abs_attribution
FROM userseq_global_explain('churn', $$SELECT seq FROM or_customers WHERE split = 'test'$$)
WHERE kind = 'position from end' ORDER BY mean_abs_attribution DESC LIMIT 5;

\echo 'the five most surprising test customers under the next_item model (userseq_surprise: mean negative'
\echo 'log-likelihood in nats per purchase, each given the ones before it; at least 10 purchases) and the'
\echo 'three purchases that surprised it most (userseq_surprise_events; rank among 3,676 items)'
SELECT s.user_id, round(s.surprise::numeric, 2) AS surprise, e.position, to_char(e.ts, 'YYYY-MM-DD') AS day,
	i.description, round(e.nll::numeric, 2) AS nll, e.rank
FROM (SELECT user_id, train_seq, userseq_surprise('next_item', train_seq) AS surprise FROM or_next_item
	  WHERE split = 'test' AND userseq_length(train_seq) >= 10 ORDER BY 3 DESC, user_id LIMIT 5) s,
	LATERAL (SELECT * FROM userseq_surprise_events('next_item', s.train_seq) ORDER BY nll DESC, position LIMIT 3) e
	JOIN items i ON i.item_id = e.item
ORDER BY s.surprise DESC, s.user_id, e.nll DESC, e.position;
SELECT count(*) AS test_customers, round(avg(userseq_surprise('next_item', train_seq))::numeric, 2) AS mean_surprise,
	round(percentile_disc(0.5) WITHIN GROUP (ORDER BY userseq_surprise('next_item', train_seq))::numeric, 2) AS median_surprise
FROM or_next_item WHERE split = 'test' AND userseq_length(train_seq) >= 10;

\echo
\echo '== 7. the model catalog and the training log'
SELECT name, version, task, deployed, metrics->>'protocol' AS protocol,
	round((metrics->>'roc_auc')::numeric, 4) AS roc_auc, round((metrics->>'ndcg@10')::numeric, 4) AS ndcg10,
	pg_size_pretty(length(weights)::bigint) AS size
FROM models ORDER BY name, version;
SELECT model, version, epoch, round(train_loss::numeric, 4) AS train_loss,
	round(valid_loss::numeric, 4) AS valid_loss, metric_name, round(valid_metric::numeric, 4) AS valid_metric
FROM training_log ORDER BY run_id, epoch;

\echo
\echo '== 8. model reports: self-contained HTML with inline SVG (userseq_report), written to demo-out/'
\pset format unaligned
\pset tuples_only on
\o demo-out/churn_report.html
SELECT userseq_report('churn', NULL, $$SELECT seq, churned AS label FROM or_customers WHERE split = 'test'$$);
\o demo-out/next_item_report.html
SELECT userseq_report('next_item', NULL, $$SELECT eval_seq AS seq FROM or_next_item WHERE split = 'test'$$);
\o
\pset tuples_only off
\pset format aligned
\echo 'wrote demo-out/churn_report.html and demo-out/next_item_report.html (open them in a browser)'

\echo
\echo '== 9. real time: a trigger (userseq_live_attach) keeps each customer''s sequence and churn score as events arrive'
CREATE TABLE live_customers (user_id bigint PRIMARY KEY, seq userseq, churn float8, updated timestamptz);
SELECT userseq_live_attach('events', 'live_customers', '{"scores": {"churn": "churn"}}') AS attached;
SELECT userseq_live_rebuild('events', 'live_customers') AS customers_kept;
-- the customer whose churn score one return the day after the data ends would raise most
-- (computed by value with userseq_append, nothing written); the alert line is set between
-- that customer's score before and after, so the demo shows one crossing
SELECT c.user_id AS live_user, c.item AS live_item, round(c.before::numeric, 4) AS churn_before,
	round(((c.before + c.after) / 2)::numeric, 4) AS alert_line
FROM (SELECT l.user_id, b.item_id AS item, l.churn AS before,
		userseq_predict('churn', userseq_append(l.seq, b.item_id, p.end_ts + interval '1 day', 'return', 300)) AS after
	FROM live_customers l, or_params p,
		LATERAL (SELECT item_id FROM events e WHERE e.user_id = l.user_id AND e.behavior = 'buy' ORDER BY ts DESC, item_id LIMIT 1) b) c
ORDER BY c.after - c.before DESC, c.user_id LIMIT 1 \gset
\echo 'the customer, the item returned, the churn score now and the alert line:'
SELECT :live_user AS user_id, :live_item AS item_id, :churn_before AS churn_before, :alert_line AS alert_above;
SELECT userseq_live_attach('events', 'live_customers', format('{"scores": {"churn": "churn"},
	"notify": [{"column": "churn", "above": %s, "channel": "churn_alert"}]}', :alert_line)::jsonb) AS attached;
LISTEN churn_alert;
\echo 'INSERT the return; the trigger appends it, re-scores and sends the NOTIFY that psql prints below:'
INSERT INTO events (user_id, ts, behavior, item_id, quantity, price, stock_code)
SELECT e.user_id, p.end_ts + interval '1 day', 'return', e.item_id, 1, e.price, e.stock_code
FROM events e, or_params p WHERE e.user_id = :live_user AND e.item_id = :live_item AND e.behavior = 'buy'
ORDER BY e.ts DESC LIMIT 1;
SELECT user_id, :churn_before AS churn_before, round(churn::numeric, 4) AS churn_now, userseq_length(seq) AS events_kept,
	userseq_last(seq, 2) AS last_two_events
FROM live_customers WHERE user_id = :live_user;
UNLISTEN churn_alert;
SELECT userseq_live_detach('events', 'live_customers') AS detached;
\else
\echo 'userseq_train is not available in this build: training skipped'
\endif
