-- Real time: userseq_live_attach errors one by one, what the trigger keeps, privileges, rebuild
CREATE EXTENSION IF NOT EXISTS userseq;
SET TimeZone = 'UTC';
-- no CONTEXT lines: PL/pgSQL line numbers would tie this file to the layout of 85_live.sql
\set SHOW_CONTEXT never
SET client_min_messages = warning;
CREATE TABLE lv_d AS
SELECT u, userseq(ARRAY(SELECT ((u * 3 + e * 5) % 40 + 1)::int8 FROM generate_series(1, 3 + u % 9) e)) AS seq,
	   (u * 3) % 40 < 10 AS label, (u % 7)::float8 AS y, (u % 3)::text AS c
FROM generate_series(1, 300) u;
SELECT count(*) FROM userseq_train('lv_bin', 'SELECT seq, label FROM lv_d', 'binary', '{"epochs": 1, "embedding_dim": 8, "num_filters": 8, "hidden_dim": 8, "seed": 1, "max_len": 20}');
SELECT count(*) FROM userseq_train('lv_reg', 'SELECT seq, y AS label FROM lv_d', 'regression', '{"epochs": 1, "embedding_dim": 8, "num_filters": 8, "hidden_dim": 8, "seed": 1, "max_len": 30}');
SELECT count(*) FROM userseq_train('lv_ni', 'SELECT seq FROM lv_d', 'next_item', '{"epochs": 1, "embedding_dim": 8, "num_filters": 8, "hidden_dim": 8, "seed": 1}');
SELECT count(*) FROM userseq_train('lv_mc', 'SELECT seq, c AS label FROM lv_d', 'multiclass', '{"epochs": 1, "embedding_dim": 8, "num_filters": 8, "hidden_dim": 8, "seed": 1}');
RESET client_min_messages;
CREATE TABLE lv_ev (user_id int, item_id bigint, ts timestamptz, behavior text, note text);
CREATE TABLE lv_t (user_id int PRIMARY KEY, seq userseq, risk float8, val float8, label text, updated timestamptz);

-- attach errors, one per line
SELECT userseq_live_attach('lv_ev', 'lv_t', '{"user": "uid"}');                      -- missing events column
SELECT userseq_live_attach('lv_ev', 'lv_t', '{"item": "nope"}');
SELECT userseq_live_attach('lv_ev', 'lv_t', '{"behavior": "nope"}');
SELECT userseq_live_attach('lv_ev', 'lv_t', '{"item": "note"}');                     -- wrong type
SELECT userseq_live_attach('lv_ev', 'lv_t', '{"ts": "item_id"}');
SELECT userseq_live_attach('lv_ev', 'lv_t', '{"user": "note"}');                     -- user type differs from target.user_id
SELECT userseq_live_attach('lv_ev', 'lv_t', '{"scores": {"missing_col": "lv_bin"}}');   -- missing target column
SELECT userseq_live_attach('lv_ev', 'lv_t', '{"scores": {"label": "lv_bin"}}');      -- score column not float8
SELECT userseq_live_attach('lv_ev', 'lv_t', '{"scores": {"risk": "no_such_model"}}');   -- unknown model
SELECT userseq_live_attach('lv_ev', 'lv_t', '{"scores": {"risk": "lv_ni"}}');        -- not one number
SELECT userseq_live_attach('lv_ev', 'lv_t', '{"scores": {"risk": "lv_mc"}}');
SELECT userseq_live_attach('lv_ev', 'lv_t', '{"notify": [{"column": "risk", "above": 0.5, "channel": "x"}]}');
SELECT userseq_live_attach('lv_ev', 'lv_t', '{"scores": {"risk": "lv_bin"}, "notify": [{"column": "risk", "above": 0.5, "below": 0.1, "channel": "x"}]}');
SELECT userseq_live_attach('lv_ev', 'lv_t', '{"max_len": 0}');
SELECT userseq_live_attach('lv_ev', 'lv_t', '{"maxlen": 5}');
SELECT userseq_live_attach('lv_t', 'lv_t');
CREATE TABLE lv_nokey (user_id int, seq userseq);
SELECT userseq_live_attach('lv_ev', 'lv_nokey');                                     -- no unique key
CREATE UNIQUE INDEX ON lv_nokey (user_id) WHERE user_id > 0;
SELECT userseq_live_attach('lv_ev', 'lv_nokey');                                     -- a partial one does not count
CREATE TABLE lv_noseq (user_id int PRIMARY KEY, seq int8[]);
SELECT userseq_live_attach('lv_ev', 'lv_noseq');
UPDATE models SET deployed = false WHERE name = 'lv_reg';
SELECT userseq_live_attach('lv_ev', 'lv_t', '{"scores": {"val": "lv_reg"}}');       -- no deployed version
UPDATE models SET deployed = true WHERE name = 'lv_reg';
SELECT count(*) AS triggers_after_errors FROM pg_trigger WHERE tgrelid = 'lv_ev'::regclass;

-- attach: max_len defaults to the largest of the scored models (30)
SELECT userseq_live_attach('lv_ev', 'lv_t', '{"scores": {"risk": "lv_bin", "val": "lv_reg"}}');
-- newest, late, same-time, NULL user (skipped), NULL behaviour; one statement and several
INSERT INTO lv_ev VALUES (1, 10, '2024-01-01 10:00', 'view'), (1, 11, '2024-01-01 11:00', 'buy'),
						 (2, 20, '2024-01-02 10:00', NULL), (NULL, 99, '2024-01-01', 'view');
INSERT INTO lv_ev VALUES (1, 12, '2024-01-01 10:30', 'cart');
INSERT INTO lv_ev VALUES (1, 13, '2024-01-01 11:00', 'return');
SELECT user_id, seq, risk = userseq_predict('lv_bin', seq) AS risk_ok, val = userseq_predict('lv_reg', seq) AS val_ok,
	   updated <= now() AS updated_set FROM lv_t ORDER BY user_id;
-- COPY fires it too
COPY lv_ev (user_id, item_id, ts) FROM stdin;
3	30	2024-01-03 00:00:00+00
3	31	2024-01-02 00:00:00+00
\.
SELECT seq FROM lv_t WHERE user_id = 3;
-- a bad event aborts the insert (the type's checks), nothing half-written
INSERT INTO lv_ev VALUES (1, 14, 'infinity', 'view');
INSERT INTO lv_ev VALUES (1, 14, '2024-01-05', '');
SELECT userseq_length(seq) FROM lv_t WHERE user_id = 1;

-- re-attach with max_len 3 replaces the options; the next event cuts to 3
SELECT userseq_live_attach('lv_ev', 'lv_t', '{"max_len": 3, "scores": {"risk": "lv_bin"}}');
INSERT INTO lv_ev VALUES (1, 15, '2024-01-06', 'view');
SELECT seq, risk = userseq_predict('lv_bin', seq) AS risk_ok FROM lv_t WHERE user_id = 1;
-- rebuild gives what the trigger keeps
CREATE TEMP TABLE lv_before AS SELECT user_id, seq, risk FROM lv_t;
SELECT userseq_live_rebuild('lv_ev', 'lv_t') AS users;
SELECT count(*) AS differ FROM lv_t t FULL JOIN lv_before b USING (user_id)
WHERE t.seq IS DISTINCT FROM b.seq OR t.risk IS DISTINCT FROM b.risk;

-- privileges: the trigger runs as the inserting role
CREATE ROLE lv_writer;
GRANT INSERT ON lv_ev TO lv_writer;
SET ROLE lv_writer;
INSERT INTO lv_ev VALUES (4, 40, '2024-01-01', 'view');                              -- no rights on lv_t
RESET ROLE;
GRANT SELECT, INSERT, UPDATE ON lv_t TO lv_writer;
REVOKE SELECT ON models FROM PUBLIC;
SET ROLE lv_writer;
INSERT INTO lv_ev VALUES (4, 40, '2024-01-01', 'view');                              -- cannot read the model
RESET ROLE;
GRANT SELECT ON models TO PUBLIC;
SET ROLE lv_writer;
INSERT INTO lv_ev VALUES (4, 40, '2024-01-01', 'view');
RESET ROLE;
SELECT user_id, seq FROM lv_t WHERE user_id = 4;

-- after detach the trigger no longer follows; rebuild needs an attached trigger
SELECT userseq_live_detach('lv_ev', 'lv_t');
INSERT INTO lv_ev VALUES (1, 16, '2024-01-07', 'view');
SELECT userseq_length(seq) AS not_followed_after_detach FROM lv_t WHERE user_id = 1;
SELECT userseq_live_rebuild('lv_ev', 'lv_t');
SELECT userseq_live_detach('lv_ev', 'lv_t');

-- a partitioned events table: the trigger is cloned to the partitions, attaching again replaces them all
CREATE TABLE lv_pe (user_id int, item_id bigint, ts timestamptz, behavior text) PARTITION BY RANGE (ts);
CREATE TABLE lv_pe_2024 PARTITION OF lv_pe FOR VALUES FROM ('2024-01-01') TO ('2025-01-01');
CREATE TABLE lv_pe_2025 PARTITION OF lv_pe FOR VALUES FROM ('2025-01-01') TO ('2026-01-01');
CREATE TABLE lv_pt (user_id int PRIMARY KEY, seq userseq);
SELECT userseq_live_attach('lv_pe', 'lv_pt');
SELECT userseq_live_attach('lv_pe', 'lv_pt', '{"max_len": 2}');
INSERT INTO lv_pe VALUES (1, 1, '2024-05-01', 'view'), (1, 2, '2025-05-01', 'buy'), (1, 3, '2024-06-01', NULL);
SELECT user_id, seq FROM lv_pt;
SELECT userseq_live_rebuild('lv_pe', 'lv_pt') AS users;
SELECT seq AS rebuilt FROM lv_pt;
DROP TABLE lv_pe, lv_pt;

-- anonymous sessions: recommend from the current session's events only, by value (README, Real time)
CREATE TABLE lv_web (session_id text, item_id bigint, ts timestamptz, behavior text);
INSERT INTO lv_web VALUES ('s-1', 4, '2024-03-01 10:00', 'view'), ('s-1', 9, '2024-03-01 10:01', 'view'),
						  ('s-1', 14, '2024-03-01 10:02', 'cart'), ('s-2', 30, '2024-03-01 10:00', 'view');
PREPARE lv_session_recs(text) AS
SELECT r.rank, r.item, r.score
FROM userseq_recommend('lv_ni', (SELECT userseq_agg(item_id, ts, behavior) FROM lv_web WHERE session_id = $1), 10) r;
CREATE TEMP TABLE lv_recs AS EXECUTE lv_session_recs('s-1');
SELECT count(*) AS recommendations, count(*) FILTER (WHERE item IN (4, 9, 14)) AS seen_recommended,
	   count(DISTINCT item) AS distinct_items FROM lv_recs;
-- the same as for the literal sequence of those three events, and not what the other session gets
SELECT count(*) AS differ FROM lv_recs r FULL JOIN userseq_recommend('lv_ni',
	'[4@2024-03-01T10:00:00Z view, 9@2024-03-01T10:01:00Z view, 14@2024-03-01T10:02:00Z cart]', 10) x USING (rank)
WHERE r.item IS DISTINCT FROM x.item OR r.score IS DISTINCT FROM x.score;
SELECT count(*) < 10 AS other_session_differs FROM lv_recs r JOIN userseq_recommend('lv_ni',
	(SELECT userseq_agg(item_id, ts, behavior) FROM lv_web WHERE session_id = 's-2'), 10) x USING (rank, item);
-- a session without events yet: no sequence, no rows (STRICT)
SELECT count(*) AS unknown_session FROM userseq_recommend('lv_ni', (SELECT userseq_agg(item_id, ts, behavior) FROM lv_web WHERE session_id = 'none'), 10);
DROP TABLE lv_web, lv_recs;

DROP TABLE lv_ev, lv_t, lv_nokey, lv_noseq, lv_d, lv_before;
DROP ROLE lv_writer;
SELECT userseq_drop_model('lv_bin') + userseq_drop_model('lv_reg') + userseq_drop_model('lv_ni') + userseq_drop_model('lv_mc') AS dropped;
DROP EXTENSION userseq;
