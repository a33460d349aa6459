-- Automatic tuning (src/pg/train/tune.c): userseq_tune and its trials table.

CREATE TABLE @extschema@.tuning_trials (
	tune_id bigint NOT NULL,
	model text NOT NULL,
	version integer NOT NULL,
	trial integer NOT NULL,
	run_id bigint,
	options jsonb NOT NULL,
	epochs integer NOT NULL,
	valid_metric double precision,
	metric_name text,
	seconds double precision,
	status text NOT NULL,
	best boolean NOT NULL DEFAULT false,
	logged_at timestamptz NOT NULL DEFAULT pg_catalog.now(),
	PRIMARY KEY (tune_id, trial)
);
CREATE INDEX tuning_trials_model ON @extschema@.tuning_trials (model, version);
COMMENT ON TABLE @extschema@.tuning_trials IS 'one row per trial of every userseq_tune run that stored a model (version = the version stored from the best trial; failed or cancelled runs leave no rows)';
SELECT pg_catalog.pg_extension_config_dump('@extschema@.tuning_trials', '');
REVOKE ALL ON @extschema@.tuning_trials FROM PUBLIC;
GRANT SELECT ON @extschema@.tuning_trials TO PUBLIC;
-- pg_restore --no-owner by the extension's owner (as for models and training_log)
DO $$
BEGIN
	EXECUTE pg_catalog.format('GRANT INSERT ON @extschema@.tuning_trials TO %s',
		(SELECT pg_catalog.quote_ident(r.rolname)
		 FROM pg_catalog.pg_extension e JOIN pg_catalog.pg_roles r ON r.oid OPERATOR(pg_catalog.=) e.extowner
		 WHERE e.extname OPERATOR(pg_catalog.=) 'userseq'));
END $$;

CREATE FUNCTION @extschema@.userseq_tune(model text, query text, task text,
		options jsonb DEFAULT '{}', trials integer DEFAULT 16,
		time_budget interval DEFAULT NULL, space jsonb DEFAULT NULL)
	RETURNS TABLE (trial integer, options jsonb, epochs integer,
		valid_metric double precision, metric_name text, seconds double precision, status text)
	AS 'MODULE_PATHNAME', 'userseq_tune'
	LANGUAGE C VOLATILE PARALLEL UNSAFE ROWS 16;
COMMENT ON FUNCTION @extschema@.userseq_tune(text, text, text, jsonb, integer, interval, jsonb) IS
	'reads query once and trains up to trials configurations drawn from space (seeded random search, successive halving at epochs 1, 2, 4, ..., within time_budget); stores and deploys the best as the next version of model; one row per trial, all logged in tuning_trials';
