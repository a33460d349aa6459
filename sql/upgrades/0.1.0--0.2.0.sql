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
