
-- ---------------------------------------------------------------- synthetic event logs

-- Planner support: row estimate from users and days.
CREATE FUNCTION @extschema@.userseq_generate_events_support(pg_catalog.internal)
RETURNS pg_catalog.internal
AS 'MODULE_PATHNAME', 'userseq_generate_events_support'
LANGUAGE C STRICT PARALLEL SAFE;

-- IMMUTABLE: the rows are a pure function of the arguments (no table, no GUC; timestamps are
-- absolute). Set-returning functions are never pre-evaluated by the planner, so the label
-- cannot fold a 10-million-row call into a constant.
CREATE FUNCTION @extschema@.userseq_generate_events(
	users pg_catalog.int4,
	seed pg_catalog.int8 DEFAULT 1,
	items pg_catalog.int4 DEFAULT 10000,
	categories pg_catalog.int4 DEFAULT 50,
	days pg_catalog.int4 DEFAULT 90,
	start_at pg_catalog.timestamptz DEFAULT '2024-01-01 00:00:00+00',
	churn_rate pg_catalog.float8 DEFAULT 0.3,
	zipf pg_catalog.float8 DEFAULT 1.0)
RETURNS TABLE (user_id pg_catalog.int8, ts pg_catalog.timestamptz, behavior pg_catalog.text,
	item_id pg_catalog.int8, category pg_catalog.int4)
AS 'MODULE_PATHNAME', 'userseq_generate_events'
LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE
SUPPORT @extschema@.userseq_generate_events_support;

COMMENT ON FUNCTION @extschema@.userseq_generate_events_support(pg_catalog.internal) IS
'planner support for userseq_generate_events: row estimate';
COMMENT ON FUNCTION @extschema@.userseq_generate_events(pg_catalog.int4, pg_catalog.int8, pg_catalog.int4,
	pg_catalog.int4, pg_catalog.int4, pg_catalog.timestamptz, pg_catalog.float8, pg_catalog.float8) IS
'seeded synthetic e-commerce event log (view, search, cart, buy, return) for users 1..users (at most 10000000), items 1..items (10..10000000) in categories 1..categories over days days from start_at; Zipf popularity, sessions, funnels, returns, churn, planted next-item and churn patterns; about 50 events per user at the defaults';
