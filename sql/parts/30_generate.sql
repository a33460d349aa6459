
-- ---------------------------------------------------------------- synthetic event logs

-- Planner support: row estimate from users and days.
CREATE FUNCTION @extschema@.userseq_generate_events_support(internal)
RETURNS internal
AS 'MODULE_PATHNAME', 'userseq_generate_events_support'
LANGUAGE C STRICT PARALLEL SAFE;

-- IMMUTABLE: the rows are a pure function of the arguments (no table, no GUC; timestamps are
-- absolute). Set-returning functions are never pre-evaluated by the planner, so the label
-- cannot fold a 10-million-row call into a constant.
CREATE FUNCTION @extschema@.userseq_generate_events(
	users integer,
	seed bigint DEFAULT 1,
	items integer DEFAULT 10000,
	categories integer DEFAULT 50,
	days integer DEFAULT 90,
	start_at timestamptz DEFAULT '2024-01-01 00:00:00+00',
	churn_rate double precision DEFAULT 0.3,
	zipf double precision DEFAULT 1.0)
RETURNS TABLE (user_id bigint, ts timestamptz, behavior text, item_id bigint, category integer)
AS 'MODULE_PATHNAME', 'userseq_generate_events'
LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE
SUPPORT @extschema@.userseq_generate_events_support;

COMMENT ON FUNCTION @extschema@.userseq_generate_events_support(internal) IS
'planner support for userseq_generate_events: row estimate';
COMMENT ON FUNCTION @extschema@.userseq_generate_events(integer, bigint, integer, integer, integer, timestamptz, double precision, double precision) IS
'seeded synthetic e-commerce event log (view, search, cart, buy, return) for users 1..users (at most 10000000), items 1..items (10..10000000) in categories 1..categories over days days from start_at; Zipf popularity, sessions, funnels, returns, churn, planted next-item and churn patterns; about 50 events per user at the defaults';
