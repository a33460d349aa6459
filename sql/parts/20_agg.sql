
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
