
-- ---------------------------------------------------------------- explanations and surprise (src/pg/score/explain.c)
-- Explained output: binary P(true) (target 'false': P(false)), regression the value, multiclass
-- and next_behavior the probability of the predicted class (or target), next_item the logit of
-- the top recommendation (or of the item target). One row per event of the most recent max_len
-- events (the model's input); older events get no row. position is the event's 1-based index
-- in seq. By name STABLE, by value IMMUTABLE; both only read, so PARALLEL SAFE.

CREATE FUNCTION @extschema@.userseq_explain(model pg_catalog.text, seq @extschema@.userseq,
											target pg_catalog.text DEFAULT NULL,
											method pg_catalog.text DEFAULT 'integrated_gradients',
											steps pg_catalog.int4 DEFAULT 32)
	RETURNS TABLE ("position" pg_catalog.int4, item pg_catalog.int8, ts pg_catalog.timestamptz,
				   behavior pg_catalog.text, attribution pg_catalog.float8)
	AS 'MODULE_PATHNAME', 'userseq_explain' LANGUAGE C STABLE PARALLEL SAFE ROWS 50;
COMMENT ON FUNCTION @extschema@.userseq_explain(pg_catalog.text, @extschema@.userseq, pg_catalog.text, pg_catalog.text, pg_catalog.int4) IS 'per-event attributions of the most recent max_len events toward the deployed model''s output (binary P(true), regression value, class probability, next_item logit of the top recommendation or target): integrated_gradients from the all-padding baseline (sum = f(x) - f(baseline)), gradient_x_input, or occlusion (f(seq) - f(seq without the event))';

CREATE FUNCTION @extschema@.userseq_explain(weights pg_catalog.bytea, seq @extschema@.userseq,
											target pg_catalog.text DEFAULT NULL,
											method pg_catalog.text DEFAULT 'integrated_gradients',
											steps pg_catalog.int4 DEFAULT 32)
	RETURNS TABLE ("position" pg_catalog.int4, item pg_catalog.int8, ts pg_catalog.timestamptz,
				   behavior pg_catalog.text, attribution pg_catalog.float8)
	AS 'MODULE_PATHNAME', 'userseq_explain_bytea' LANGUAGE C IMMUTABLE PARALLEL SAFE ROWS 50;
COMMENT ON FUNCTION @extschema@.userseq_explain(pg_catalog.bytea, @extschema@.userseq, pg_catalog.text, pg_catalog.text, pg_catalog.int4) IS 'userseq_explain with the model passed by value';

-- The query runs with the caller's rights (VOLATILE, PARALLEL UNSAFE, like userseq_evaluate);
-- its sequence column must be named seq.
CREATE FUNCTION @extschema@.userseq_global_explain(model pg_catalog.text, query pg_catalog.text)
	RETURNS TABLE (kind pg_catalog.text, value pg_catalog.text, events pg_catalog.int8,
				   mean_attribution pg_catalog.float8, mean_abs_attribution pg_catalog.float8)
	LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE
AS $fn$
BEGIN
	RETURN QUERY EXECUTE @extschema@.userseq_global_explain_sql(query) USING model;
END
$fn$;
COMMENT ON FUNCTION @extschema@.userseq_global_explain(pg_catalog.text, pg_catalog.text) IS 'items, behaviours and positions from the end (0 = last event) ranked by the mean absolute userseq_explain attribution (integrated gradients, 32 steps) over the sequences (column seq) of a query, with the mean signed attribution and the number of events';

CREATE FUNCTION @extschema@.userseq_global_explain(weights pg_catalog.bytea, query pg_catalog.text)
	RETURNS TABLE (kind pg_catalog.text, value pg_catalog.text, events pg_catalog.int8,
				   mean_attribution pg_catalog.float8, mean_abs_attribution pg_catalog.float8)
	LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE
AS $fn$
BEGIN
	RETURN QUERY EXECUTE @extschema@.userseq_global_explain_sql(query) USING weights;
END
$fn$;
COMMENT ON FUNCTION @extschema@.userseq_global_explain(pg_catalog.bytea, pg_catalog.text) IS 'userseq_global_explain with the model passed by value';

-- The statement both forms run ($1 the model; integrated gradients, 32 steps); the query's trailing semicolons
-- and white space are dropped so it can sit in a WITH clause.
CREATE FUNCTION @extschema@.userseq_global_explain_sql(query pg_catalog.text) RETURNS pg_catalog.text
	LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
	RETURN pg_catalog.format($q$
WITH src AS (%s),
ex AS (SELECT x.item, x.behavior,
              @extschema@.userseq_length(src.seq) OPERATOR(pg_catalog.-) x.position AS from_end,
              x.attribution
       FROM src, LATERAL @extschema@.userseq_explain($1, src.seq) x)
SELECT k, v, n, m, a FROM (
  SELECT 'item'::pg_catalog.text AS k, item::pg_catalog.text AS v, pg_catalog.count(*) AS n,
         pg_catalog.avg(attribution) AS m, pg_catalog.avg(pg_catalog.abs(attribution)) AS a, 1 AS o
  FROM ex GROUP BY item
  UNION ALL
  SELECT 'behavior', behavior, pg_catalog.count(*), pg_catalog.avg(attribution),
         pg_catalog.avg(pg_catalog.abs(attribution)), 2
  FROM ex GROUP BY behavior
  UNION ALL
  SELECT 'position from end', from_end::pg_catalog.text, pg_catalog.count(*), pg_catalog.avg(attribution),
         pg_catalog.avg(pg_catalog.abs(attribution)), 3
  FROM ex GROUP BY from_end) r
ORDER BY o, a DESC, v$q$, pg_catalog.regexp_replace(query, '[;[:space:]]+$', ''));
COMMENT ON FUNCTION @extschema@.userseq_global_explain_sql(pg_catalog.text) IS 'internal: the statement userseq_global_explain runs for a query';

-- Surprise: how unlikely a sequence is under a next_item / next_behavior model. Each event of
-- the most recent max_len after the first is predicted from the ones before it in that window.
CREATE FUNCTION @extschema@.userseq_surprise(model pg_catalog.text, seq @extschema@.userseq)
	RETURNS pg_catalog.float8
	AS 'MODULE_PATHNAME', 'userseq_surprise' LANGUAGE C STABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION @extschema@.userseq_surprise(pg_catalog.text, @extschema@.userseq) IS 'mean negative log-likelihood (nats) per predicted event of the most recent max_len events under the deployed next_item or next_behavior model (each event given the ones before it); NULL for fewer than 2 events';

CREATE FUNCTION @extschema@.userseq_surprise(weights pg_catalog.bytea, seq @extschema@.userseq)
	RETURNS pg_catalog.float8
	AS 'MODULE_PATHNAME', 'userseq_surprise_bytea' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION @extschema@.userseq_surprise(pg_catalog.bytea, @extschema@.userseq) IS 'userseq_surprise with the model passed by value';

CREATE FUNCTION @extschema@.userseq_surprise_events(model pg_catalog.text, seq @extschema@.userseq)
	RETURNS TABLE ("position" pg_catalog.int4, item pg_catalog.int8, ts pg_catalog.timestamptz,
				   behavior pg_catalog.text, nll pg_catalog.float8, "rank" pg_catalog.int4)
	AS 'MODULE_PATHNAME', 'userseq_surprise_events' LANGUAGE C STABLE STRICT PARALLEL SAFE ROWS 50;
COMMENT ON FUNCTION @extschema@.userseq_surprise_events(pg_catalog.text, @extschema@.userseq) IS 'per predicted event of the most recent max_len events: negative log-likelihood under the deployed next_item / next_behavior model and the rank of the actual item (behaviour) among all known ones (ties count against it; NULL when it is unknown to the model)';

CREATE FUNCTION @extschema@.userseq_surprise_events(weights pg_catalog.bytea, seq @extschema@.userseq)
	RETURNS TABLE ("position" pg_catalog.int4, item pg_catalog.int8, ts pg_catalog.timestamptz,
				   behavior pg_catalog.text, nll pg_catalog.float8, "rank" pg_catalog.int4)
	AS 'MODULE_PATHNAME', 'userseq_surprise_events_bytea' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE ROWS 50;
COMMENT ON FUNCTION @extschema@.userseq_surprise_events(pg_catalog.bytea, @extschema@.userseq) IS 'userseq_surprise_events with the model passed by value';
