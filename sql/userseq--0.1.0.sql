-- userseq 0.1.0 install script, frozen as released (0.1.0 was assembled from sql/parts/*.sql).
-- Every object is created in @extschema@ and every reference is schema-qualified, so the
-- script does not depend on the caller's search_path.

\echo Use "CREATE EXTENSION userseq" to load this file. \quit

-- ---------------------------------------------------------------- the userseq type
-- Text form: '[42@2024-01-01T10:00:00Z view, 43@2024-01-01T10:05:00Z]' ('[]' is empty);
-- see src/pg/userseq_type.c and README for the full grammar.

CREATE TYPE @extschema@.userseq;

CREATE FUNCTION @extschema@.userseq_in(pg_catalog.cstring, pg_catalog.oid, pg_catalog.int4)
	RETURNS @extschema@.userseq
	AS 'MODULE_PATHNAME' LANGUAGE C STABLE STRICT PARALLEL SAFE;
CREATE FUNCTION @extschema@.userseq_out(@extschema@.userseq) RETURNS pg_catalog.cstring
	AS 'MODULE_PATHNAME' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION @extschema@.userseq_recv(pg_catalog.internal, pg_catalog.oid, pg_catalog.int4)
	RETURNS @extschema@.userseq
	AS 'MODULE_PATHNAME' LANGUAGE C STABLE STRICT PARALLEL SAFE;
CREATE FUNCTION @extschema@.userseq_send(@extschema@.userseq) RETURNS pg_catalog.bytea
	AS 'MODULE_PATHNAME' LANGUAGE C STABLE STRICT PARALLEL SAFE;

CREATE TYPE @extschema@.userseq (
	INPUT = @extschema@.userseq_in,
	OUTPUT = @extschema@.userseq_out,
	RECEIVE = @extschema@.userseq_recv,
	SEND = @extschema@.userseq_send,
	INTERNALLENGTH = VARIABLE,
	ALIGNMENT = double,
	STORAGE = extended
);

COMMENT ON TYPE @extschema@.userseq IS 'one user''s behaviour sequence: events (item bigint, timestamptz, optional label) sorted by time; at most 1000000 events';
COMMENT ON FUNCTION @extschema@.userseq_in(pg_catalog.cstring, pg_catalog.oid, pg_catalog.int4) IS 'userseq text input; zone-less timestamps are read in the session TimeZone';
COMMENT ON FUNCTION @extschema@.userseq_out(@extschema@.userseq) IS 'userseq text output; timestamps in UTC ISO 8601, so it round-trips under any TimeZone';
COMMENT ON FUNCTION @extschema@.userseq_recv(pg_catalog.internal, pg_catalog.oid, pg_catalog.int4) IS 'userseq binary input (COPY BINARY, drivers); rejects non-canonical data';
COMMENT ON FUNCTION @extschema@.userseq_send(@extschema@.userseq) IS 'userseq binary output';

-- ---------------------------------------------------------------- constructors and accessors

CREATE FUNCTION @extschema@.userseq(pg_catalog.int8[]) RETURNS @extschema@.userseq
	AS 'MODULE_PATHNAME', 'userseq_from_items' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION @extschema@.userseq(pg_catalog.int8[]) IS 'sequence of the items in array order, unlabelled, with synthetic times 1970-01-01 00:00:00Z + i seconds';

-- not STRICT: a NULL behaviors array means "no labels"; NULL items or times give NULL
CREATE FUNCTION @extschema@.userseq(items pg_catalog.int8[], times pg_catalog.timestamptz[],
									behaviors pg_catalog.text[] DEFAULT NULL)
	RETURNS @extschema@.userseq
	AS 'MODULE_PATHNAME', 'userseq_from_arrays' LANGUAGE C IMMUTABLE PARALLEL SAFE;
COMMENT ON FUNCTION @extschema@.userseq(pg_catalog.int8[], pg_catalog.timestamptz[], pg_catalog.text[]) IS 'sequence from parallel arrays (any order; sorted by time, item, label); NULL behaviors or elements mean unlabelled';

CREATE FUNCTION @extschema@.userseq_items(@extschema@.userseq) RETURNS pg_catalog.int8[]
	AS 'MODULE_PATHNAME' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION @extschema@.userseq_items(@extschema@.userseq) IS 'item ids in time order';

CREATE FUNCTION @extschema@.userseq_times(@extschema@.userseq) RETURNS pg_catalog.timestamptz[]
	AS 'MODULE_PATHNAME' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION @extschema@.userseq_times(@extschema@.userseq) IS 'event timestamps in time order';

CREATE FUNCTION @extschema@.userseq_behaviors(@extschema@.userseq) RETURNS pg_catalog.text[]
	AS 'MODULE_PATHNAME' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION @extschema@.userseq_behaviors(@extschema@.userseq) IS 'behaviour labels in time order, NULL for unlabelled events';

CREATE CAST (pg_catalog.int8[] AS @extschema@.userseq)
	WITH FUNCTION @extschema@.userseq(pg_catalog.int8[]);
COMMENT ON CAST (pg_catalog.int8[] AS @extschema@.userseq) IS 'explicit cast: same as userseq(bigint[])';
CREATE CAST (@extschema@.userseq AS pg_catalog.int8[])
	WITH FUNCTION @extschema@.userseq_items(@extschema@.userseq);
COMMENT ON CAST (@extschema@.userseq AS pg_catalog.int8[]) IS 'explicit cast: same as userseq_items(userseq)';

-- ---------------------------------------------------------------- analyst functions

CREATE FUNCTION @extschema@.userseq_length(@extschema@.userseq) RETURNS pg_catalog.int4
	AS 'MODULE_PATHNAME' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION @extschema@.userseq_length(@extschema@.userseq) IS 'number of events';

CREATE FUNCTION @extschema@.userseq_first(seq @extschema@.userseq, n pg_catalog.int4) RETURNS @extschema@.userseq
	AS 'MODULE_PATHNAME' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION @extschema@.userseq_first(@extschema@.userseq, pg_catalog.int4) IS 'the first n events (all if fewer); n must not be negative';

CREATE FUNCTION @extschema@.userseq_last(seq @extschema@.userseq, n pg_catalog.int4) RETURNS @extschema@.userseq
	AS 'MODULE_PATHNAME' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION @extschema@.userseq_last(@extschema@.userseq, pg_catalog.int4) IS 'the last n events (all if fewer); n must not be negative';

CREATE FUNCTION @extschema@.userseq_before(seq @extschema@.userseq, ts pg_catalog.timestamptz) RETURNS @extschema@.userseq
	AS 'MODULE_PATHNAME' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION @extschema@.userseq_before(@extschema@.userseq, pg_catalog.timestamptz) IS 'events strictly before ts';

CREATE FUNCTION @extschema@.userseq_since(seq @extschema@.userseq, ts pg_catalog.timestamptz) RETURNS @extschema@.userseq
	AS 'MODULE_PATHNAME' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION @extschema@.userseq_since(@extschema@.userseq, pg_catalog.timestamptz) IS 'events at or after ts';

CREATE FUNCTION @extschema@.userseq_between(seq @extschema@.userseq, from_ts pg_catalog.timestamptz, to_ts pg_catalog.timestamptz)
	RETURNS @extschema@.userseq
	AS 'MODULE_PATHNAME' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION @extschema@.userseq_between(@extschema@.userseq, pg_catalog.timestamptz, pg_catalog.timestamptz) IS 'events in the half-open range [from_ts, to_ts); empty when to_ts <= from_ts';

CREATE FUNCTION @extschema@.userseq_keep(seq @extschema@.userseq, behaviors pg_catalog.text[]) RETURNS @extschema@.userseq
	AS 'MODULE_PATHNAME' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION @extschema@.userseq_keep(@extschema@.userseq, pg_catalog.text[]) IS 'only events whose behaviour is listed; a NULL element keeps unlabelled events';

CREATE FUNCTION @extschema@.userseq_drop(seq @extschema@.userseq, behaviors pg_catalog.text[]) RETURNS @extschema@.userseq
	AS 'MODULE_PATHNAME' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION @extschema@.userseq_drop(@extschema@.userseq, pg_catalog.text[]) IS 'all events except those whose behaviour is listed; a NULL element drops unlabelled events';

CREATE FUNCTION @extschema@.userseq_count(seq @extschema@.userseq, behavior pg_catalog.text) RETURNS pg_catalog.int4
	AS 'MODULE_PATHNAME' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION @extschema@.userseq_count(@extschema@.userseq, pg_catalog.text) IS 'number of events labelled with behavior';

CREATE FUNCTION @extschema@.userseq_dedup(seq @extschema@.userseq, within pg_catalog.interval) RETURNS @extschema@.userseq
	AS 'MODULE_PATHNAME' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION @extschema@.userseq_dedup(@extschema@.userseq, pg_catalog.interval) IS 'drops an event repeating the previous event''s item and behaviour within `within` of the run''s first (kept) event; days = 24 h, months refused';

CREATE FUNCTION @extschema@.userseq_sessions(seq @extschema@.userseq, gap pg_catalog.interval) RETURNS SETOF @extschema@.userseq
	AS 'MODULE_PATHNAME' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE ROWS 10;
COMMENT ON FUNCTION @extschema@.userseq_sessions(@extschema@.userseq, pg_catalog.interval) IS 'splits into sessions in time order where the time since the previous event exceeds gap (use WITH ORDINALITY to number them)';

CREATE FUNCTION @extschema@.userseq_concat(@extschema@.userseq, @extschema@.userseq) RETURNS @extschema@.userseq
	AS 'MODULE_PATHNAME' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION @extschema@.userseq_concat(@extschema@.userseq, @extschema@.userseq) IS 'all events of both sequences, merged in time order';

-- ---------------------------------------------------------------- operators, hashing

CREATE FUNCTION @extschema@.userseq_eq(@extschema@.userseq, @extschema@.userseq) RETURNS pg_catalog.bool
	AS 'MODULE_PATHNAME' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE LEAKPROOF;
COMMENT ON FUNCTION @extschema@.userseq_eq(@extschema@.userseq, @extschema@.userseq) IS 'same events (items, times, labels)';
CREATE FUNCTION @extschema@.userseq_ne(@extschema@.userseq, @extschema@.userseq) RETURNS pg_catalog.bool
	AS 'MODULE_PATHNAME' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE LEAKPROOF;
COMMENT ON FUNCTION @extschema@.userseq_ne(@extschema@.userseq, @extschema@.userseq) IS 'not the same events';
CREATE FUNCTION @extschema@.userseq_hash(@extschema@.userseq) RETURNS pg_catalog.int4
	AS 'MODULE_PATHNAME' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION @extschema@.userseq_hash(@extschema@.userseq) IS 'hash support for userseq_hash_ops';
CREATE FUNCTION @extschema@.userseq_hash_extended(@extschema@.userseq, pg_catalog.int8) RETURNS pg_catalog.int8
	AS 'MODULE_PATHNAME' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION @extschema@.userseq_hash_extended(@extschema@.userseq, pg_catalog.int8) IS 'seeded 64-bit hash support for userseq_hash_ops';

CREATE OPERATOR @extschema@.= (
	LEFTARG = @extschema@.userseq, RIGHTARG = @extschema@.userseq,
	FUNCTION = @extschema@.userseq_eq,
	COMMUTATOR = OPERATOR(@extschema@.=), NEGATOR = OPERATOR(@extschema@.<>),
	RESTRICT = pg_catalog.eqsel, JOIN = pg_catalog.eqjoinsel, HASHES
);
COMMENT ON OPERATOR @extschema@.= (@extschema@.userseq, @extschema@.userseq) IS 'same events';
CREATE OPERATOR @extschema@.<> (
	LEFTARG = @extschema@.userseq, RIGHTARG = @extschema@.userseq,
	FUNCTION = @extschema@.userseq_ne,
	COMMUTATOR = OPERATOR(@extschema@.<>), NEGATOR = OPERATOR(@extschema@.=),
	RESTRICT = pg_catalog.neqsel, JOIN = pg_catalog.neqjoinsel
);
COMMENT ON OPERATOR @extschema@.<> (@extschema@.userseq, @extschema@.userseq) IS 'not the same events';
CREATE OPERATOR @extschema@.|| (
	LEFTARG = @extschema@.userseq, RIGHTARG = @extschema@.userseq,
	FUNCTION = @extschema@.userseq_concat
);
COMMENT ON OPERATOR @extschema@.|| (@extschema@.userseq, @extschema@.userseq) IS 'merge two sequences in time order';

CREATE OPERATOR CLASS @extschema@.userseq_hash_ops
	DEFAULT FOR TYPE @extschema@.userseq USING hash AS
	OPERATOR 1 @extschema@.= (@extschema@.userseq, @extschema@.userseq),
	FUNCTION 1 @extschema@.userseq_hash(@extschema@.userseq),
	FUNCTION 2 @extschema@.userseq_hash_extended(@extschema@.userseq, pg_catalog.int8);
COMMENT ON OPERATOR CLASS @extschema@.userseq_hash_ops USING hash IS 'equality by hashing: GROUP BY, DISTINCT, hash joins and hash indexes on userseq';

-- ---------------------------------------------------------------- userseq_agg
-- Sorts by (time, item, label) itself, so it needs no ORDER BY and can run in parallel.
-- Rows with NULL item or ts are skipped; a group with no events gives NULL.

CREATE FUNCTION @extschema@.userseq_agg_transfn(pg_catalog.internal, pg_catalog.int8, pg_catalog.timestamptz)
	RETURNS pg_catalog.internal
	AS 'MODULE_PATHNAME' LANGUAGE C IMMUTABLE PARALLEL SAFE;
COMMENT ON FUNCTION @extschema@.userseq_agg_transfn(pg_catalog.internal, pg_catalog.int8, pg_catalog.timestamptz) IS 'userseq_agg transition (internal)';
CREATE FUNCTION @extschema@.userseq_agg_transfn(pg_catalog.internal, pg_catalog.int8, pg_catalog.timestamptz, pg_catalog.text)
	RETURNS pg_catalog.internal
	AS 'MODULE_PATHNAME' LANGUAGE C IMMUTABLE PARALLEL SAFE;
COMMENT ON FUNCTION @extschema@.userseq_agg_transfn(pg_catalog.internal, pg_catalog.int8, pg_catalog.timestamptz, pg_catalog.text) IS 'userseq_agg transition with behaviour label (internal)';
CREATE FUNCTION @extschema@.userseq_agg_combine(pg_catalog.internal, pg_catalog.internal)
	RETURNS pg_catalog.internal
	AS 'MODULE_PATHNAME' LANGUAGE C IMMUTABLE PARALLEL SAFE;
COMMENT ON FUNCTION @extschema@.userseq_agg_combine(pg_catalog.internal, pg_catalog.internal) IS 'userseq_agg combine of partial states (internal)';
CREATE FUNCTION @extschema@.userseq_agg_serialize(pg_catalog.internal) RETURNS pg_catalog.bytea
	AS 'MODULE_PATHNAME' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION @extschema@.userseq_agg_serialize(pg_catalog.internal) IS 'userseq_agg state serialization for parallel workers (internal)';
CREATE FUNCTION @extschema@.userseq_agg_deserialize(pg_catalog.bytea, pg_catalog.internal) RETURNS pg_catalog.internal
	AS 'MODULE_PATHNAME' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION @extschema@.userseq_agg_deserialize(pg_catalog.bytea, pg_catalog.internal) IS 'userseq_agg state deserialization, validated (internal)';
CREATE FUNCTION @extschema@.userseq_agg_finalfn(pg_catalog.internal) RETURNS @extschema@.userseq
	AS 'MODULE_PATHNAME' LANGUAGE C IMMUTABLE PARALLEL SAFE;
COMMENT ON FUNCTION @extschema@.userseq_agg_finalfn(pg_catalog.internal) IS 'userseq_agg final: sort and build (internal)';

CREATE AGGREGATE @extschema@.userseq_agg(item pg_catalog.int8, ts pg_catalog.timestamptz) (
	SFUNC = @extschema@.userseq_agg_transfn,
	STYPE = pg_catalog.internal,
	SSPACE = 1024,
	FINALFUNC = @extschema@.userseq_agg_finalfn,
	FINALFUNC_MODIFY = READ_ONLY,
	COMBINEFUNC = @extschema@.userseq_agg_combine,
	SERIALFUNC = @extschema@.userseq_agg_serialize,
	DESERIALFUNC = @extschema@.userseq_agg_deserialize,
	PARALLEL = SAFE
);
COMMENT ON AGGREGATE @extschema@.userseq_agg(pg_catalog.int8, pg_catalog.timestamptz) IS 'builds a userseq of unlabelled events, sorted by time then item; skips rows with NULL item or ts; NULL when no events';

CREATE AGGREGATE @extschema@.userseq_agg(item pg_catalog.int8, ts pg_catalog.timestamptz, behavior pg_catalog.text) (
	SFUNC = @extschema@.userseq_agg_transfn,
	STYPE = pg_catalog.internal,
	SSPACE = 1024,
	FINALFUNC = @extschema@.userseq_agg_finalfn,
	FINALFUNC_MODIFY = READ_ONLY,
	COMBINEFUNC = @extschema@.userseq_agg_combine,
	SERIALFUNC = @extschema@.userseq_agg_serialize,
	DESERIALFUNC = @extschema@.userseq_agg_deserialize,
	PARALLEL = SAFE
);
COMMENT ON AGGREGATE @extschema@.userseq_agg(pg_catalog.int8, pg_catalog.timestamptz, pg_catalog.text) IS 'builds a userseq sorted by time, item, label; NULL behavior = unlabelled; skips rows with NULL item or ts; NULL when no events';

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
-- The model catalog: one row per trained (or imported) model version, one row per training
-- epoch. Owned by the extension owner; users read them, and write only through the userseq_*
-- functions, which check model ownership (see catalog.c). Both tables and the run-id sequence
-- are registered with pg_extension_config_dump so pg_dump keeps their contents.

CREATE SEQUENCE @extschema@.run_id_seq AS bigint;
-- a plain sequence, not an identity column: pg_dump restores the position of an extension's
-- config sequence (setval), which it does not do for an identity sequence of a config table
CREATE SEQUENCE @extschema@.model_id_seq AS bigint;
COMMENT ON SEQUENCE @extschema@.model_id_seq IS 'ids of userseq.models rows';
COMMENT ON SEQUENCE @extschema@.run_id_seq IS 'run ids of userseq_train / userseq_retrain runs';

CREATE TABLE @extschema@.models (
	model_id bigint PRIMARY KEY DEFAULT pg_catalog.nextval('@extschema@.model_id_seq'),
	name text NOT NULL,
	version integer NOT NULL,
	task text NOT NULL,
	config jsonb NOT NULL,
	query text,
	options jsonb NOT NULL,
	metrics jsonb NOT NULL,
	weights bytea NOT NULL,
	owner name NOT NULL,
	created_at timestamptz NOT NULL DEFAULT pg_catalog.now(),
	created_by name NOT NULL,
	deployed boolean NOT NULL DEFAULT false,
	run_id bigint,
	UNIQUE (name, version),
	CHECK (version > 0),
	CHECK (task IN ('binary', 'multiclass', 'regression', 'next_item', 'next_behavior'))
);
-- model weights are already dense floats: do not spend CPU compressing them
ALTER TABLE @extschema@.models ALTER COLUMN weights SET STORAGE EXTERNAL;
CREATE UNIQUE INDEX models_one_deployed ON @extschema@.models (name) WHERE deployed;
COMMENT ON TABLE @extschema@.models IS 'userseq model versions: weights (self-contained model bytes), config, training query and options, validation metrics, owner, deployment';
COMMENT ON COLUMN @extschema@.models.weights IS 'self-contained model bytes (format version, config, vocabulary, float32 weights, CRC32C)';
COMMENT ON COLUMN @extschema@.models.config IS 'resolved hyperparameters: every option with its effective value, plus vocabulary and output sizes';
COMMENT ON COLUMN @extschema@.models.options IS 'options as given to userseq_train (userseq_retrain re-runs query with them)';
COMMENT ON COLUMN @extschema@.models.metrics IS 'validation figures of the restored best epoch: protocol, valid_loss, the task metrics';
COMMENT ON COLUMN @extschema@.models.owner IS 'role whose members may add versions to, deploy, roll back or drop this model';
COMMENT ON COLUMN @extschema@.models.deployed IS 'the version scoring by name uses; at most one per name';

CREATE TABLE @extschema@.training_log (
	run_id bigint NOT NULL,
	model text NOT NULL,
	version integer,
	epoch integer NOT NULL,
	train_loss double precision,
	valid_loss double precision,
	valid_metric double precision,
	metric_name text,
	learning_rate double precision,
	seconds double precision,
	logged_at timestamptz NOT NULL DEFAULT pg_catalog.now()
);
CREATE INDEX training_log_model ON @extschema@.training_log (model, version, epoch);
COMMENT ON TABLE @extschema@.training_log IS 'one row per epoch of every stored userseq training run (failed or cancelled runs leave no rows)';

SELECT pg_catalog.pg_extension_config_dump('@extschema@.models', '');
SELECT pg_catalog.pg_extension_config_dump('@extschema@.training_log', '');
SELECT pg_catalog.pg_extension_config_dump('@extschema@.run_id_seq', '');
-- the model id sequence too, or a restored catalog would hand out model_id 1 again
SELECT pg_catalog.pg_extension_config_dump('@extschema@.model_id_seq', '');

REVOKE ALL ON @extschema@.models, @extschema@.training_log, @extschema@.run_id_seq FROM PUBLIC;
GRANT SELECT ON @extschema@.models, @extschema@.training_log TO PUBLIC;
-- Training and the model lifecycle (src/pg/train.c, src/pg/catalog.c).

CREATE FUNCTION @extschema@.userseq_train(model text, query text, task text,
		options jsonb DEFAULT '{}')
	RETURNS TABLE (run_id bigint, epoch integer, train_loss double precision,
		valid_loss double precision, valid_metric double precision, metric_name text,
		learning_rate double precision, seconds double precision)
	AS 'MODULE_PATHNAME', 'userseq_train'
	LANGUAGE C VOLATILE PARALLEL UNSAFE ROWS 10;
COMMENT ON FUNCTION @extschema@.userseq_train(text, text, text, jsonb) IS
	'trains a model on the rows (seq, label[, weight]) of query; one row per finished epoch; stores the model as the next version of its name after the last epoch row has been fetched';

CREATE FUNCTION @extschema@.userseq_retrain(model text, options jsonb DEFAULT '{}',
		force boolean DEFAULT false,
		OUT model_name text, OUT old_version integer, OUT new_version integer,
		OUT old_metric double precision, OUT new_metric double precision,
		OUT metric_name text, OUT deployed boolean)
	AS 'MODULE_PATHNAME', 'userseq_retrain'
	LANGUAGE C VOLATILE PARALLEL UNSAFE;
COMMENT ON FUNCTION @extschema@.userseq_retrain(text, jsonb, boolean) IS
	're-runs the stored query and options of a model (options override them); deploys the new version if its validation metric is not worse than the deployed one, or if force';

CREATE FUNCTION @extschema@.userseq_deploy(model text, version integer)
	RETURNS void
	AS 'MODULE_PATHNAME', 'userseq_deploy'
	LANGUAGE C VOLATILE PARALLEL UNSAFE;
COMMENT ON FUNCTION @extschema@.userseq_deploy(text, integer) IS
	'makes a version the deployed one (the one scoring by name uses)';

CREATE FUNCTION @extschema@.userseq_rollback(model text)
	RETURNS integer
	AS 'MODULE_PATHNAME', 'userseq_rollback'
	LANGUAGE C VOLATILE PARALLEL UNSAFE;
COMMENT ON FUNCTION @extschema@.userseq_rollback(text) IS
	'deploys the highest version below the deployed one and returns it';

CREATE FUNCTION @extschema@.userseq_drop_model(model text, version integer DEFAULT NULL)
	RETURNS integer
	AS 'MODULE_PATHNAME', 'userseq_drop_model'
	LANGUAGE C VOLATILE PARALLEL UNSAFE;
COMMENT ON FUNCTION @extschema@.userseq_drop_model(text, integer) IS
	'drops one version of a model (or all when version is NULL); returns the number dropped';

CREATE FUNCTION @extschema@.userseq_export(model text, version integer DEFAULT NULL)
	RETURNS bytea
	AS 'MODULE_PATHNAME', 'userseq_export'
	LANGUAGE C STABLE PARALLEL RESTRICTED;
COMMENT ON FUNCTION @extschema@.userseq_export(text, integer) IS
	'self-contained model bytes of the deployed version (or the newest, or the given version), for userseq_import in another database';

CREATE FUNCTION @extschema@.userseq_import(model text, weights bytea, deploy boolean DEFAULT true)
	RETURNS integer
	AS 'MODULE_PATHNAME', 'userseq_import'
	LANGUAGE C VOLATILE PARALLEL UNSAFE;
COMMENT ON FUNCTION @extschema@.userseq_import(text, bytea, boolean) IS
	'validates model bytes from userseq_export and stores them as the next version of model, owned by the caller (or the existing owner role); returns the version';

-- ---------------------------------------------------------------- scoring (src/pg/score.c)
-- By name: the deployed version in @extschema@.models, resolved once per query and decoded once
-- per backend (STABLE: reads the catalog). By value: the model bytea itself (IMMUTABLE, for
-- joins with a models table on a distributed cluster). NULL inputs give NULL; an empty sequence
-- is scored as an all-padding input ("no history").

CREATE FUNCTION @extschema@.userseq_predict(model pg_catalog.text, seq @extschema@.userseq)
	RETURNS pg_catalog.float8
	AS 'MODULE_PATHNAME', 'userseq_predict' LANGUAGE C STABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION @extschema@.userseq_predict(pg_catalog.text, @extschema@.userseq) IS 'probability of the positive class (binary), predicted value (regression) or probability of the top class (multiclass, next_behavior) under the deployed version of a model';

CREATE FUNCTION @extschema@.userseq_predict(weights pg_catalog.bytea, seq @extschema@.userseq)
	RETURNS pg_catalog.float8
	AS 'MODULE_PATHNAME', 'userseq_predict_bytea' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION @extschema@.userseq_predict(pg_catalog.bytea, @extschema@.userseq) IS 'userseq_predict with the model passed by value (models.weights); cached per backend by its header';

CREATE FUNCTION @extschema@.userseq_predict_proba(model pg_catalog.text, seq @extschema@.userseq)
	RETURNS pg_catalog.float8[]
	AS 'MODULE_PATHNAME', 'userseq_predict_proba' LANGUAGE C STABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION @extschema@.userseq_predict_proba(pg_catalog.text, @extschema@.userseq) IS 'class probabilities in the order of userseq_class_labels (binary: {false, true}; next_behavior: known behaviours, the rest of the mass is on unknown behaviours)';

CREATE FUNCTION @extschema@.userseq_predict_proba(weights pg_catalog.bytea, seq @extschema@.userseq)
	RETURNS pg_catalog.float8[]
	AS 'MODULE_PATHNAME', 'userseq_predict_proba_bytea' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION @extschema@.userseq_predict_proba(pg_catalog.bytea, @extschema@.userseq) IS 'userseq_predict_proba with the model passed by value';

CREATE FUNCTION @extschema@.userseq_predict_class(model pg_catalog.text, seq @extschema@.userseq)
	RETURNS pg_catalog.text
	AS 'MODULE_PATHNAME', 'userseq_predict_class' LANGUAGE C STABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION @extschema@.userseq_predict_class(pg_catalog.text, @extschema@.userseq) IS 'most probable class label (binary: ''true'' when the probability is >= 0.5, else ''false''; next_behavior: the most probable known behaviour)';

CREATE FUNCTION @extschema@.userseq_predict_class(weights pg_catalog.bytea, seq @extschema@.userseq)
	RETURNS pg_catalog.text
	AS 'MODULE_PATHNAME', 'userseq_predict_class_bytea' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION @extschema@.userseq_predict_class(pg_catalog.bytea, @extschema@.userseq) IS 'userseq_predict_class with the model passed by value';

CREATE FUNCTION @extschema@.userseq_class_labels(model pg_catalog.text)
	RETURNS pg_catalog.text[]
	AS 'MODULE_PATHNAME', 'userseq_class_labels' LANGUAGE C STABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION @extschema@.userseq_class_labels(pg_catalog.text) IS 'class labels of a classifier, in the order of userseq_predict_proba';

CREATE FUNCTION @extschema@.userseq_class_labels(weights pg_catalog.bytea)
	RETURNS pg_catalog.text[]
	AS 'MODULE_PATHNAME', 'userseq_class_labels_bytea' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION @extschema@.userseq_class_labels(pg_catalog.bytea) IS 'userseq_class_labels with the model passed by value';

CREATE FUNCTION @extschema@.userseq_embed(model pg_catalog.text, seq @extschema@.userseq)
	RETURNS pg_catalog.float4[]
	AS 'MODULE_PATHNAME', 'userseq_embed' LANGUAGE C STABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION @extschema@.userseq_embed(pg_catalog.text, @extschema@.userseq) IS 'pooled representation of a sequence (max-pooled convolutions and recent window, the dense layer''s input): a user profile vector';

CREATE FUNCTION @extschema@.userseq_embed(weights pg_catalog.bytea, seq @extschema@.userseq)
	RETURNS pg_catalog.float4[]
	AS 'MODULE_PATHNAME', 'userseq_embed_bytea' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION @extschema@.userseq_embed(pg_catalog.bytea, @extschema@.userseq) IS 'userseq_embed with the model passed by value';

-- backend-local: a parallel worker would report (or clear) its own cache, not the leader's
CREATE FUNCTION @extschema@.userseq_cache_stats(OUT decodes pg_catalog.int8, OUT hits pg_catalog.int8,
												OUT evictions pg_catalog.int8, OUT entries pg_catalog.int4,
												OUT folded pg_catalog.int4)
	RETURNS record
	AS 'MODULE_PATHNAME', 'userseq_cache_stats' LANGUAGE C VOLATILE PARALLEL RESTRICTED;
COMMENT ON FUNCTION @extschema@.userseq_cache_stats() IS 'this backend''s decoded-model cache: models decoded, lookups served from the cache, evictions since start; models cached now and how many of them use folded tables';

CREATE FUNCTION @extschema@.userseq_cache_reset() RETURNS pg_catalog.void
	AS 'MODULE_PATHNAME', 'userseq_cache_reset' LANGUAGE C VOLATILE PARALLEL RESTRICTED;
COMMENT ON FUNCTION @extschema@.userseq_cache_reset() IS 'drops this backend''s cached models (a model in use by a running query is freed when that query ends); counters are kept';

-- ---------------------------------------------------------------- evaluation (src/pg/evaluate.c)
-- The query runs with the caller's rights and may do anything, so these are VOLATILE and
-- PARALLEL UNSAFE. It returns a userseq column and, except for next_item / next_behavior
-- models, a label column (named label, or else the first other column).

CREATE FUNCTION @extschema@.userseq_evaluate(model pg_catalog.text, query pg_catalog.text,
											 negatives pg_catalog.int4 DEFAULT 99,
											 cutoffs pg_catalog.int4[] DEFAULT '{1,5,10,20}',
											 seed pg_catalog.int8 DEFAULT 1,
											 threshold pg_catalog.float8 DEFAULT 0.5)
	RETURNS TABLE (scorer pg_catalog.text, protocol pg_catalog.text, metric pg_catalog.text,
				   value pg_catalog.float8)
	AS 'MODULE_PATHNAME', 'userseq_evaluate' LANGUAGE C VOLATILE PARALLEL UNSAFE;
COMMENT ON FUNCTION @extschema@.userseq_evaluate(pg_catalog.text, pg_catalog.text, pg_catalog.int4, pg_catalog.int4[], pg_catalog.int8, pg_catalog.float8) IS 'metrics of the deployed model and of baselines on the rows of a query: binary/multiclass (accuracy, precision, recall, f1, roc_auc, log_loss), regression (mse, rmse, mae, r2), next_item leave-last-out (hr@K, ndcg@K, mrr under protocols full and sampled:N, beside popularity and markov baselines)';

CREATE FUNCTION @extschema@.userseq_roc_curve(model pg_catalog.text, query pg_catalog.text)
	RETURNS TABLE (threshold pg_catalog.float8, tpr pg_catalog.float8, fpr pg_catalog.float8)
	AS 'MODULE_PATHNAME', 'userseq_roc_curve' LANGUAGE C VOLATILE PARALLEL UNSAFE;
COMMENT ON FUNCTION @extschema@.userseq_roc_curve(pg_catalog.text, pg_catalog.text) IS 'ROC curve of a binary model on the rows (seq, label) of a query: one point per distinct score, highest threshold first, starting at (Infinity, 0, 0)';

CREATE FUNCTION @extschema@.userseq_confusion_matrix(model pg_catalog.text, query pg_catalog.text)
	RETURNS TABLE (actual pg_catalog.text, predicted pg_catalog.text, n pg_catalog.int8)
	AS 'MODULE_PATHNAME', 'userseq_confusion_matrix' LANGUAGE C VOLATILE PARALLEL UNSAFE;
COMMENT ON FUNCTION @extschema@.userseq_confusion_matrix(pg_catalog.text, pg_catalog.text) IS 'counts of (actual, predicted) classes of a binary (threshold 0.5), multiclass or next_behavior (last event) model on a query; actual is NULL for a class the model does not know; empty cells are omitted';

CREATE FUNCTION @extschema@.userseq_auc_transfn(pg_catalog.internal, pg_catalog.float8, pg_catalog.bool)
	RETURNS pg_catalog.internal
	AS 'MODULE_PATHNAME' LANGUAGE C IMMUTABLE PARALLEL SAFE;
CREATE FUNCTION @extschema@.userseq_auc_combine(pg_catalog.internal, pg_catalog.internal)
	RETURNS pg_catalog.internal
	AS 'MODULE_PATHNAME' LANGUAGE C IMMUTABLE PARALLEL SAFE;
CREATE FUNCTION @extschema@.userseq_auc_serialize(pg_catalog.internal) RETURNS pg_catalog.bytea
	AS 'MODULE_PATHNAME' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION @extschema@.userseq_auc_deserialize(pg_catalog.bytea, pg_catalog.internal)
	RETURNS pg_catalog.internal
	AS 'MODULE_PATHNAME' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION @extschema@.userseq_auc_finalfn(pg_catalog.internal) RETURNS pg_catalog.float8
	AS 'MODULE_PATHNAME' LANGUAGE C IMMUTABLE PARALLEL SAFE;
COMMENT ON FUNCTION @extschema@.userseq_auc_transfn(pg_catalog.internal, pg_catalog.float8, pg_catalog.bool) IS 'userseq_auc transition function';
COMMENT ON FUNCTION @extschema@.userseq_auc_combine(pg_catalog.internal, pg_catalog.internal) IS 'userseq_auc combine function';
COMMENT ON FUNCTION @extschema@.userseq_auc_serialize(pg_catalog.internal) IS 'userseq_auc serialize function';
COMMENT ON FUNCTION @extschema@.userseq_auc_deserialize(pg_catalog.bytea, pg_catalog.internal) IS 'userseq_auc deserialize function';
COMMENT ON FUNCTION @extschema@.userseq_auc_finalfn(pg_catalog.internal) IS 'userseq_auc final function';

CREATE AGGREGATE @extschema@.userseq_auc(score pg_catalog.float8, label pg_catalog.bool) (
	SFUNC = @extschema@.userseq_auc_transfn,
	STYPE = pg_catalog.internal,
	FINALFUNC = @extschema@.userseq_auc_finalfn,
	COMBINEFUNC = @extschema@.userseq_auc_combine,
	SERIALFUNC = @extschema@.userseq_auc_serialize,
	DESERIALFUNC = @extschema@.userseq_auc_deserialize,
	PARALLEL = SAFE
);
COMMENT ON AGGREGATE @extschema@.userseq_auc(pg_catalog.float8, pg_catalog.bool) IS 'ROC AUC of any scores against boolean labels (Mann-Whitney, ties count one half); rows with a NULL score or label are ignored; NULL unless both classes occur';

-- ---------------------------------------------------------------- recommendation (src/pg/recommend.c)

CREATE FUNCTION @extschema@.userseq_recommend(model pg_catalog.text, seq @extschema@.userseq,
											  k pg_catalog.int4 DEFAULT 10,
											  exclude_seen pg_catalog.bool DEFAULT true)
	RETURNS TABLE ("rank" pg_catalog.int4, item pg_catalog.int8, score pg_catalog.float8)
	AS 'MODULE_PATHNAME', 'userseq_recommend' LANGUAGE C STABLE STRICT PARALLEL SAFE ROWS 10;
COMMENT ON FUNCTION @extschema@.userseq_recommend(pg_catalog.text, @extschema@.userseq, pg_catalog.int4, pg_catalog.bool) IS 'the k most likely next items under the deployed next_item model, best first (score = logit, ties by catalogue order); exclude_seen drops items anywhere in the sequence; fewer rows when the catalogue is smaller';

CREATE FUNCTION @extschema@.userseq_recommend(weights pg_catalog.bytea, seq @extschema@.userseq,
											  k pg_catalog.int4 DEFAULT 10,
											  exclude_seen pg_catalog.bool DEFAULT true)
	RETURNS TABLE ("rank" pg_catalog.int4, item pg_catalog.int8, score pg_catalog.float8)
	AS 'MODULE_PATHNAME', 'userseq_recommend_bytea' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE ROWS 10;
COMMENT ON FUNCTION @extschema@.userseq_recommend(pg_catalog.bytea, @extschema@.userseq, pg_catalog.int4, pg_catalog.bool) IS 'userseq_recommend with the model passed by value';
