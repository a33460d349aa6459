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
