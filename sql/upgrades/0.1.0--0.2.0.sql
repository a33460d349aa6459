-- userseq 0.1.0 -> 0.2.0: ALTER EXTENSION userseq UPDATE TO '0.2.0'.
-- The Makefile builds sql/userseq--0.1.0--0.2.0.sql from this file followed by the parts that
-- are wholly new in 0.2.0 (NEW_PARTS_0_2_0). Objects added to or changed in existing parts go
-- here, written as in sql/parts/. The models, training_log and their sequences are kept as they
-- are. test/t/upgrade.sh checks the result against a fresh install.
\echo Use "ALTER EXTENSION userseq UPDATE TO '0.2.0'" to load this file. \quit

-- ---------------------------------------------------------------- userseq_append (issue 17)
-- not STRICT: a NULL seq starts a new sequence (the real-time trigger's first event of a user)
CREATE FUNCTION @extschema@.userseq_append(seq @extschema@.userseq, item pg_catalog.int8, ts pg_catalog.timestamptz,
										   behavior pg_catalog.text DEFAULT NULL, max_len pg_catalog.int4 DEFAULT NULL)
	RETURNS @extschema@.userseq
	AS 'MODULE_PATHNAME' LANGUAGE C IMMUTABLE PARALLEL SAFE;
COMMENT ON FUNCTION @extschema@.userseq_append(@extschema@.userseq, pg_catalog.int8, pg_catalog.timestamptz, pg_catalog.text, pg_catalog.int4) IS 'seq plus one event in time order (the newest event is appended without a sort, a late one lands in place); a NULL seq gives a one-event sequence; with max_len only the max_len most recent events are kept; NULL item or ts is an error';

-- ---------------------------------------------------------------- generator: fraud_rate (issue 11)
-- The 0.1.0 function gets a ninth argument with a default, so calls and rows stay the same.
DROP FUNCTION @extschema@.userseq_generate_events(pg_catalog.int4, pg_catalog.int8, pg_catalog.int4,
	pg_catalog.int4, pg_catalog.int4, pg_catalog.timestamptz, pg_catalog.float8, pg_catalog.float8);

-- 0.2.0: fraud_rate added (DEFAULT 0: the 0.1.0 rows, column for column)
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

-- ---------------------------------------------------------------- catalog: dump/restore by the extension owner (issue 10.6), as sql/parts/40_catalog.sql
-- Dump and restore by the extension's owner (issue 10.6): the database owner who created the
-- trusted extension is not a superuser, yet pg_dump reads both sequences and pg_restore
-- --no-owner, run as that role, COPYs both tables and calls setval on both sequences. The
-- owner gets exactly those rights (no UPDATE or DELETE of models). Rows it inserts directly
-- keep their owner names, except that a row naming a superuser becomes the inserting role's:
-- userseq_retrain runs a stored query as the model's owner, so a directly inserted row must
-- never make a superuser run it.
DO $$
DECLARE
	extowner text := (SELECT pg_catalog.quote_ident(r.rolname)
					  FROM pg_catalog.pg_extension e JOIN pg_catalog.pg_roles r ON r.oid OPERATOR(pg_catalog.=) e.extowner
					  WHERE e.extname OPERATOR(pg_catalog.=) 'userseq');
BEGIN
	EXECUTE pg_catalog.format('GRANT INSERT ON @extschema@.models, @extschema@.training_log TO %s', extowner);
	EXECUTE pg_catalog.format('GRANT SELECT, UPDATE ON SEQUENCE @extschema@.model_id_seq, @extschema@.run_id_seq TO %s', extowner);
END $$;

CREATE FUNCTION @extschema@.userseq_models_insert_guard() RETURNS trigger
	LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE SET search_path = pg_catalog, pg_temp AS $$
BEGIN
	IF NOT (SELECT rolsuper FROM pg_roles WHERE rolname = current_user)
	   AND (SELECT rolsuper FROM pg_roles WHERE rolname = NEW.owner) THEN
		RAISE WARNING 'userseq: model "%" version % names the superuser "%" as its owner; it now belongs to "%"',
			NEW.name, NEW.version, NEW.owner, current_user;
		NEW.owner := current_user;
	END IF;
	RETURN NEW;
END $$;
COMMENT ON FUNCTION @extschema@.userseq_models_insert_guard() IS 'internal: a models row inserted directly by a non-superuser (pg_restore by the extension owner) may not name a superuser as its owner';
CREATE TRIGGER models_insert_guard BEFORE INSERT ON @extschema@.models
	FOR EACH ROW EXECUTE FUNCTION @extschema@.userseq_models_insert_guard();

-- ---------------------------------------------------------------- warm start (issue 12)
-- appended columns, so the order matches a fresh install; rows of 0.1.0 runs are first runs
ALTER TABLE @extschema@.training_log ADD COLUMN training_run integer NOT NULL DEFAULT 1,
	ADD COLUMN continues_run bigint;
COMMENT ON COLUMN @extschema@.training_log.training_run IS '1 for a run from random or init_from weights; a warm-start retrain (userseq_retrain with "warm_start": true) is the run it continued plus 1';
COMMENT ON COLUMN @extschema@.training_log.continues_run IS 'warm start: the run_id whose weights (the deployed version''s) this run continued; NULL otherwise';

-- ---------------------------------------------------------------- int8 models (issue 12)
CREATE FUNCTION @extschema@.userseq_quantize(model pg_catalog.text, version pg_catalog.int4 DEFAULT NULL,
	query pg_catalog.text DEFAULT NULL, tolerance pg_catalog.float8 DEFAULT 0.005,
	on_exceed pg_catalog.text DEFAULT 'error')
	RETURNS pg_catalog.int4
	AS 'MODULE_PATHNAME', 'userseq_quantize'
	LANGUAGE C VOLATILE PARALLEL UNSAFE;
COMMENT ON FUNCTION @extschema@.userseq_quantize(pg_catalog.text, pg_catalog.int4, pg_catalog.text, pg_catalog.float8, pg_catalog.text) IS
	'stores an int8 copy (per-row / per-filter scales, fp32 biases, model format 2, about 4x smaller) of a version (default: the deployed, else the newest) as the next version, not deployed; both are evaluated on query (seq, label) or, without it, on the validation split training held out (a warning with the reason when that split cannot be rebuilt), and the copy is refused (on_exceed => ''warn'': stored with a warning) when ROC AUC, NDCG@10 or accuracy drop (RMSE rises) by more than tolerance; returns the new version';
