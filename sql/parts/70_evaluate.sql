
-- ---------------------------------------------------------------- evaluation (src/pg/evaluate.c)
-- The query runs with the caller's rights and may do anything, so these are VOLATILE and
-- PARALLEL UNSAFE. It returns a userseq column and, except for next_item / next_behavior
-- models, a label column (named label, or else the first other column).

CREATE FUNCTION @extschema@.userseq_evaluate(model pg_catalog.text, query pg_catalog.text,
											 negatives pg_catalog.int4 DEFAULT 99,
											 cutoffs pg_catalog.int4[] DEFAULT '{1,5,10,20}',
											 seed pg_catalog.int8 DEFAULT 1,
											 threshold pg_catalog.float8 DEFAULT 0.5)
	RETURNS TABLE (scorer pg_catalog.text, protocol pg_catalog.text, metric pg_catalog.text,
				   value pg_catalog.float8)
	AS 'MODULE_PATHNAME', 'userseq_evaluate' LANGUAGE C VOLATILE PARALLEL UNSAFE;
COMMENT ON FUNCTION @extschema@.userseq_evaluate(pg_catalog.text, pg_catalog.text, pg_catalog.int4, pg_catalog.int4[], pg_catalog.int8, pg_catalog.float8) IS 'metrics of the deployed model and of baselines on the rows of a query: binary/multiclass (accuracy, precision, recall, f1, roc_auc, log_loss), regression (mse, rmse, mae, r2), next_item leave-last-out (hr@K, ndcg@K, mrr under protocols full and sampled:N, beside popularity and markov baselines)';

CREATE FUNCTION @extschema@.userseq_roc_curve(model pg_catalog.text, query pg_catalog.text)
	RETURNS TABLE (threshold pg_catalog.float8, tpr pg_catalog.float8, fpr pg_catalog.float8)
	AS 'MODULE_PATHNAME', 'userseq_roc_curve' LANGUAGE C VOLATILE PARALLEL UNSAFE;
COMMENT ON FUNCTION @extschema@.userseq_roc_curve(pg_catalog.text, pg_catalog.text) IS 'ROC curve of a binary model on the rows (seq, label) of a query: one point per distinct score, highest threshold first, starting at (Infinity, 0, 0)';

CREATE FUNCTION @extschema@.userseq_confusion_matrix(model pg_catalog.text, query pg_catalog.text)
	RETURNS TABLE (actual pg_catalog.text, predicted pg_catalog.text, n pg_catalog.int8)
	AS 'MODULE_PATHNAME', 'userseq_confusion_matrix' LANGUAGE C VOLATILE PARALLEL UNSAFE;
COMMENT ON FUNCTION @extschema@.userseq_confusion_matrix(pg_catalog.text, pg_catalog.text) IS 'counts of (actual, predicted) classes of a binary (threshold 0.5), multiclass or next_behavior (last event) model on a query; actual is NULL for a class the model does not know; empty cells are omitted';

CREATE FUNCTION @extschema@.userseq_auc_transfn(pg_catalog.internal, pg_catalog.float8, pg_catalog.bool)
	RETURNS pg_catalog.internal
	AS 'MODULE_PATHNAME' LANGUAGE C IMMUTABLE PARALLEL SAFE;
CREATE FUNCTION @extschema@.userseq_auc_combine(pg_catalog.internal, pg_catalog.internal)
	RETURNS pg_catalog.internal
	AS 'MODULE_PATHNAME' LANGUAGE C IMMUTABLE PARALLEL SAFE;
CREATE FUNCTION @extschema@.userseq_auc_serialize(pg_catalog.internal) RETURNS pg_catalog.bytea
	AS 'MODULE_PATHNAME' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION @extschema@.userseq_auc_deserialize(pg_catalog.bytea, pg_catalog.internal)
	RETURNS pg_catalog.internal
	AS 'MODULE_PATHNAME' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION @extschema@.userseq_auc_finalfn(pg_catalog.internal) RETURNS pg_catalog.float8
	AS 'MODULE_PATHNAME' LANGUAGE C IMMUTABLE PARALLEL SAFE;
COMMENT ON FUNCTION @extschema@.userseq_auc_transfn(pg_catalog.internal, pg_catalog.float8, pg_catalog.bool) IS 'userseq_auc transition function';
COMMENT ON FUNCTION @extschema@.userseq_auc_combine(pg_catalog.internal, pg_catalog.internal) IS 'userseq_auc combine function';
COMMENT ON FUNCTION @extschema@.userseq_auc_serialize(pg_catalog.internal) IS 'userseq_auc serialize function';
COMMENT ON FUNCTION @extschema@.userseq_auc_deserialize(pg_catalog.bytea, pg_catalog.internal) IS 'userseq_auc deserialize function';
COMMENT ON FUNCTION @extschema@.userseq_auc_finalfn(pg_catalog.internal) IS 'userseq_auc final function';

CREATE AGGREGATE @extschema@.userseq_auc(score pg_catalog.float8, label pg_catalog.bool) (
	SFUNC = @extschema@.userseq_auc_transfn,
	STYPE = pg_catalog.internal,
	FINALFUNC = @extschema@.userseq_auc_finalfn,
	COMBINEFUNC = @extschema@.userseq_auc_combine,
	SERIALFUNC = @extschema@.userseq_auc_serialize,
	DESERIALFUNC = @extschema@.userseq_auc_deserialize,
	PARALLEL = SAFE
);
COMMENT ON AGGREGATE @extschema@.userseq_auc(pg_catalog.float8, pg_catalog.bool) IS 'ROC AUC of any scores against boolean labels (Mann-Whitney, ties count one half); rows with a NULL score or label are ignored; NULL unless both classes occur';
