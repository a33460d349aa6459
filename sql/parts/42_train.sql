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

-- int8 models (issue 12)
CREATE FUNCTION @extschema@.userseq_quantize(model pg_catalog.text, version pg_catalog.int4 DEFAULT NULL,
	query pg_catalog.text DEFAULT NULL, tolerance pg_catalog.float8 DEFAULT 0.005,
	on_exceed pg_catalog.text DEFAULT 'error')
	RETURNS pg_catalog.int4
	AS 'MODULE_PATHNAME', 'userseq_quantize'
	LANGUAGE C VOLATILE PARALLEL UNSAFE;
COMMENT ON FUNCTION @extschema@.userseq_quantize(pg_catalog.text, pg_catalog.int4, pg_catalog.text, pg_catalog.float8, pg_catalog.text) IS
	'stores an int8 copy (per-row / per-filter scales, fp32 biases, model format 2, about 4x smaller) of a version (default: the deployed, else the newest) as the next version, not deployed; both are evaluated on query (seq, label) or, without it, on the validation split training held out (a warning with the reason when that split cannot be rebuilt), and the copy is refused (on_exceed => ''warn'': stored with a warning) when ROC AUC, NDCG@10 or accuracy drop (RMSE rises) by more than tolerance; returns the new version';
