
-- ---------------------------------------------------------------- publications (src/pg/models/publish.c)
-- A model's deployed version copied into a table of the user's (e.g. a Citus reference table,
-- for by-value scoring on the workers) and kept current on every deploy, rollback, drop,
-- retrain and deploying train, each copy written as the role that registered it.

CREATE TABLE @extschema@.publications (
	model text NOT NULL,
	target pg_catalog.regclass NOT NULL,
	registered_by name NOT NULL,
	registered_at timestamptz NOT NULL DEFAULT pg_catalog.now(),
	PRIMARY KEY (model, target)
);
COMMENT ON TABLE @extschema@.publications IS 'tables that receive a copy (name, version, weights) of a model''s deployed version, and the role whose rights write it (userseq_publish)';
SELECT pg_catalog.pg_extension_config_dump('@extschema@.publications', '');
REVOKE ALL ON @extschema@.publications FROM PUBLIC;
GRANT SELECT ON @extschema@.publications TO PUBLIC;
-- restore by the extension's owner (see the catalog part)
DO $$
BEGIN
	EXECUTE pg_catalog.format('GRANT INSERT ON @extschema@.publications TO %s',
		(SELECT pg_catalog.quote_ident(r.rolname) FROM pg_catalog.pg_extension e
		 JOIN pg_catalog.pg_roles r ON r.oid OPERATOR(pg_catalog.=) e.extowner
		 WHERE e.extname OPERATOR(pg_catalog.=) 'userseq'));
END $$;

CREATE FUNCTION @extschema@.userseq_publish(model pg_catalog.text, target pg_catalog.regclass)
	RETURNS pg_catalog.int4
	AS 'MODULE_PATHNAME', 'userseq_publish' LANGUAGE C VOLATILE STRICT PARALLEL UNSAFE;
COMMENT ON FUNCTION @extschema@.userseq_publish(pg_catalog.text, pg_catalog.regclass) IS 'copies the deployed version of a model into target (name text, version int, weights bytea; one row per model) and keeps it current on every change of the deployed version; returns the version copied (NULL: none deployed). Needs the model owner''s privileges and INSERT, DELETE on target';

CREATE FUNCTION @extschema@.userseq_unpublish(model pg_catalog.text, target pg_catalog.regclass)
	RETURNS pg_catalog.bool
	AS 'MODULE_PATHNAME', 'userseq_unpublish' LANGUAGE C VOLATILE STRICT PARALLEL UNSAFE;
COMMENT ON FUNCTION @extschema@.userseq_unpublish(pg_catalog.text, pg_catalog.regclass) IS 'stops keeping target current for a model (its row stays); returns whether it was published';
