
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
