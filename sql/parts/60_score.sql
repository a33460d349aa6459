
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
