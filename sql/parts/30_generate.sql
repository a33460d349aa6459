
-- ---------------------------------------------------------------- synthetic event logs

-- Planner support: row estimate from users and days.
CREATE FUNCTION @extschema@.userseq_generate_events_support(pg_catalog.internal)
RETURNS pg_catalog.internal
AS 'MODULE_PATHNAME', 'userseq_generate_events_support'
LANGUAGE C STRICT PARALLEL SAFE;

COMMENT ON FUNCTION @extschema@.userseq_generate_events_support(pg_catalog.internal) IS
'planner support for userseq_generate_events: row estimate';

-- IMMUTABLE: the rows are a pure function of the arguments (no table, no GUC; timestamps are
-- absolute). Set-returning functions are never pre-evaluated by the planner, so the label
-- cannot fold a 10-million-row call into a constant. 0.2.0 added fraud_rate (DEFAULT 0: the
-- 0.1.0 rows, column for column).
CREATE FUNCTION @extschema@.userseq_generate_events(
	users pg_catalog.int4,
	seed pg_catalog.int8 DEFAULT 1,
	items pg_catalog.int4 DEFAULT 10000,
	categories pg_catalog.int4 DEFAULT 50,
	days pg_catalog.int4 DEFAULT 90,
	start_at pg_catalog.timestamptz DEFAULT '2024-01-01 00:00:00+00',
	churn_rate pg_catalog.float8 DEFAULT 0.3,
	zipf pg_catalog.float8 DEFAULT 1.0,
	fraud_rate pg_catalog.float8 DEFAULT 0.0)
RETURNS TABLE (user_id pg_catalog.int8, ts pg_catalog.timestamptz, behavior pg_catalog.text,
	item_id pg_catalog.int8, category pg_catalog.int4)
AS 'MODULE_PATHNAME', 'userseq_generate_events'
LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE
SUPPORT @extschema@.userseq_generate_events_support;
COMMENT ON FUNCTION @extschema@.userseq_generate_events(pg_catalog.int4, pg_catalog.int8, pg_catalog.int4,
	pg_catalog.int4, pg_catalog.int4, pg_catalog.timestamptz, pg_catalog.float8, pg_catalog.float8, pg_catalog.float8) IS
'seeded synthetic e-commerce event log (view, search, cart, buy, return) for users 1..users (at most 10000000), items 1..items (10..10000000) in categories 1..categories over days days from start_at; Zipf popularity, sessions, funnels, returns, churn, planted next-item and churn patterns; about 50 events per user at the defaults; a fraction fraud_rate of users gets a planted anomalous episode (userseq_generate_anomalies lists them)';

CREATE FUNCTION @extschema@.userseq_generate_anomalies(
	users pg_catalog.int4,
	seed pg_catalog.int8 DEFAULT 1,
	items pg_catalog.int4 DEFAULT 10000,
	categories pg_catalog.int4 DEFAULT 50,
	days pg_catalog.int4 DEFAULT 90,
	start_at pg_catalog.timestamptz DEFAULT '2024-01-01 00:00:00+00',
	churn_rate pg_catalog.float8 DEFAULT 0.3,
	zipf pg_catalog.float8 DEFAULT 1.0,
	fraud_rate pg_catalog.float8 DEFAULT 0.0)
RETURNS TABLE (user_id pg_catalog.int8, pattern pg_catalog.text, since pg_catalog.timestamptz,
	events pg_catalog.int4)
AS 'MODULE_PATHNAME', 'userseq_generate_anomalies'
LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION @extschema@.userseq_generate_anomalies(pg_catalog.int4, pg_catalog.int8, pg_catalog.int4,
	pg_catalog.int4, pg_catalog.int4, pg_catalog.timestamptz, pg_catalog.float8, pg_catalog.float8, pg_catalog.float8) IS
'the anomalous users of userseq_generate_events with the same arguments: pattern (bot_burst: unrelated views seconds apart; carding: one rarely bought item carted and bought over and over within minutes; account_takeover: straight cart + buy pairs in a category the user never browsed), since (the first planted event; every event of the user from then on is planted) and the number of planted events';
