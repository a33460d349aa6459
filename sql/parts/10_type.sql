
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

-- not STRICT: a NULL seq starts a new sequence (the real-time trigger's first event of a user)
CREATE FUNCTION @extschema@.userseq_append(seq @extschema@.userseq, item pg_catalog.int8, ts pg_catalog.timestamptz,
										   behavior pg_catalog.text DEFAULT NULL, max_len pg_catalog.int4 DEFAULT NULL)
	RETURNS @extschema@.userseq
	AS 'MODULE_PATHNAME' LANGUAGE C IMMUTABLE PARALLEL SAFE;
COMMENT ON FUNCTION @extschema@.userseq_append(@extschema@.userseq, pg_catalog.int8, pg_catalog.timestamptz, pg_catalog.text, pg_catalog.int4) IS 'seq plus one event in time order (the newest event is appended without a sort, a late one lands in place); a NULL seq gives a one-event sequence; with max_len only the max_len most recent events are kept; NULL item or ts is an error';

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
