
-- ---------------------------------------------------------------- shared model cache (src/pg/models/shared_cache.c)
-- Image files under $PGDATA/pg_userseq, one per deployed model version and fold budget, mapped
-- read-only by every backend and parallel worker instead of decoding the model again.

CREATE FUNCTION @extschema@.userseq_shared_cache_stats(OUT file pg_catalog.text, OUT model_id pg_catalog.int8,
													   OUT version pg_catalog.int4, OUT bytes pg_catalog.int8,
													   OUT last_used pg_catalog.timestamptz)
	RETURNS SETOF record
	AS 'MODULE_PATHNAME', 'userseq_shared_cache_stats' LANGUAGE C VOLATILE PARALLEL SAFE;
COMMENT ON FUNCTION @extschema@.userseq_shared_cache_stats() IS 'models of this database shared by every backend: one image file each (decoded weights and folded tables under $PGDATA/pg_userseq), its size and when a backend last mapped it';

-- backend-local, like userseq_cache_stats
CREATE FUNCTION @extschema@.userseq_shared_cache_counters(OUT mapped pg_catalog.int8, OUT written pg_catalog.int8,
														  OUT refused pg_catalog.int8)
	RETURNS record
	AS 'MODULE_PATHNAME', 'userseq_shared_cache_counters' LANGUAGE C VOLATILE PARALLEL RESTRICTED;
COMMENT ON FUNCTION @extschema@.userseq_shared_cache_counters() IS 'this backend''s use of the shared model cache: images mapped instead of decoding, images written, corrupt images refused (removed and rebuilt)';

CREATE FUNCTION @extschema@.userseq_shared_cache_clear() RETURNS pg_catalog.int4
	AS 'MODULE_PATHNAME', 'userseq_shared_cache_clear' LANGUAGE C VOLATILE PARALLEL UNSAFE;
COMMENT ON FUNCTION @extschema@.userseq_shared_cache_clear() IS 'removes the shared image files of this database and returns how many; backends that map one keep using it until they drop it, the next decode writes a new one';
-- a server-wide directory: only roles the owner grants it to may clear it
REVOKE ALL ON FUNCTION @extschema@.userseq_shared_cache_clear() FROM PUBLIC;
