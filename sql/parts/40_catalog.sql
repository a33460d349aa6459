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
	logged_at timestamptz NOT NULL DEFAULT pg_catalog.now(),
	training_run integer NOT NULL DEFAULT 1,
	continues_run bigint
);
CREATE INDEX training_log_model ON @extschema@.training_log (model, version, epoch);
COMMENT ON TABLE @extschema@.training_log IS 'one row per epoch of every stored userseq training run (failed or cancelled runs leave no rows)';
COMMENT ON COLUMN @extschema@.training_log.training_run IS '1 for a run from random or init_from weights; a warm-start retrain (userseq_retrain with "warm_start": true) is the run it continued plus 1';
COMMENT ON COLUMN @extschema@.training_log.continues_run IS 'warm start: the run_id whose weights (the deployed version''s) this run continued; NULL otherwise';

SELECT pg_catalog.pg_extension_config_dump('@extschema@.models', '');
SELECT pg_catalog.pg_extension_config_dump('@extschema@.training_log', '');
SELECT pg_catalog.pg_extension_config_dump('@extschema@.run_id_seq', '');
-- the model id sequence too, or a restored catalog would hand out model_id 1 again
SELECT pg_catalog.pg_extension_config_dump('@extschema@.model_id_seq', '');

REVOKE ALL ON @extschema@.models, @extschema@.training_log, @extschema@.run_id_seq FROM PUBLIC;
GRANT SELECT ON @extschema@.models, @extschema@.training_log TO PUBLIC;

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
