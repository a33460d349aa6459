-- userseq_agg: NULL handling, ordering, labels, limits, parallel plan and parallel = serial
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS userseq;
RESET client_min_messages;
SET TimeZone = 'UTC';

CREATE TEMP TABLE ev (user_id int, item bigint, ts timestamptz, behavior text);
INSERT INTO ev VALUES
	(1, 10, '2024-01-02', 'view'), (1, 11, '2024-01-01', 'buy'), (1, 12, '2024-01-03', NULL),
	(1, 13, NULL, 'view'), (1, NULL, '2024-01-04', 'view'),
	(2, 20, '2024-01-01', 'view'), (2, 20, '2024-01-01', 'cart'), (2, 19, '2024-01-01', 'view'),
	(2, 19, '2024-01-01', NULL), (2, 19, '2024-01-01', 'view'),
	(3, NULL, '2024-01-01', 'view'), (3, 30, NULL, NULL),
	(4, 40, '2024-01-01', 'x');
SELECT user_id, userseq_agg(item, ts, behavior) FROM ev GROUP BY user_id ORDER BY user_id;
SELECT user_id, userseq_agg(item, ts) FROM ev GROUP BY user_id ORDER BY user_id;
-- scan order does not matter (ties on time broken by item, then label)
SELECT (SELECT userseq_agg(item, ts, behavior) FROM (SELECT * FROM ev WHERE user_id = 2 ORDER BY item DESC, behavior DESC NULLS FIRST) a) =
       (SELECT userseq_agg(item, ts, behavior) FROM (SELECT * FROM ev WHERE user_id = 2 ORDER BY item, behavior NULLS LAST) b);
-- no rows, all-NULL rows
SELECT userseq_agg(item, ts) IS NULL FROM ev WHERE false;
SELECT userseq_agg(item, ts, behavior) IS NULL FROM ev WHERE user_id = 3;
-- bad rows are errors, not skipped
SELECT userseq_agg(1, 'infinity'::timestamptz);
SELECT userseq_agg(1, '2024-01-01'::timestamptz, '');
SELECT userseq_agg(1, '2024-01-01'::timestamptz, repeat('x', 65));
SELECT userseq_agg(i, '2024-01-01'::timestamptz, 'l' || i) FROM generate_series(1, 256) i;
SELECT userseq_length(userseq_agg(i, '2024-01-01'::timestamptz, 'l' || i)) FROM generate_series(1, 255) i;
-- the event limit is enforced while aggregating
SELECT userseq_length(userseq_agg(i, '2024-01-01'::timestamptz)) FROM generate_series(1, 1000000) i;
SELECT userseq_agg(i, '2024-01-01'::timestamptz) FROM generate_series(1, 1000001) i;
-- same result as the array constructor
SELECT userseq_agg(item, ts, behavior) = userseq(array_agg(item), array_agg(ts), array_agg(behavior))
FROM ev WHERE item IS NOT NULL AND ts IS NOT NULL GROUP BY user_id ORDER BY user_id;
-- as a window aggregate (final function must leave the state usable)
SELECT item, userseq_agg(item, ts) OVER (ORDER BY ts, item ROWS UNBOUNDED PRECEDING) FROM ev WHERE user_id = 1 AND ts IS NOT NULL AND item IS NOT NULL ORDER BY ts, item;

-- parallel aggregation: a table big enough for a parallel plan
CREATE TABLE ev_big AS
SELECT (i % 500) AS user_id, (i * 7919) % 1000 AS item,
       timestamptz '2024-01-01' + ((i * 104729) % 100000) * interval '1 minute' AS ts,
       (ARRAY['view', 'search', 'cart', 'buy', NULL])[1 + i % 5] AS behavior
FROM generate_series(1::bigint, 200000) i;
INSERT INTO ev_big VALUES (1, NULL, '2024-01-01', 'view'), (1, 5, NULL, 'view');
ANALYZE ev_big;
CREATE FUNCTION pg_temp.plan_lines(q text) RETURNS SETOF text LANGUAGE plpgsql AS $$
BEGIN RETURN QUERY EXECUTE 'EXPLAIN (COSTS OFF) ' || q; END $$;
SET parallel_setup_cost = 0;
SET parallel_tuple_cost = 0;
SET min_parallel_table_scan_size = 0;
SET max_parallel_workers_per_gather = 2;
SELECT bool_or(l ~ 'Partial .*Aggregate') AS partial_agg, bool_or(l ~ 'Gather') AS gather
FROM pg_temp.plan_lines('SELECT user_id, userseq_agg(item, ts, behavior) FROM ev_big GROUP BY user_id') l;
SELECT bool_or(l ~ 'Partial .*Aggregate') AS partial_agg, bool_or(l ~ 'Gather') AS gather
FROM pg_temp.plan_lines('SELECT userseq_agg(item, ts) FROM ev_big') l;
CREATE TEMP TABLE par AS SELECT user_id, userseq_agg(item, ts, behavior) AS s FROM ev_big GROUP BY user_id;
CREATE TEMP TABLE par1 AS SELECT userseq_agg(item, ts, behavior) AS s FROM ev_big;
SET max_parallel_workers_per_gather = 0;
SELECT bool_or(l ~ 'Partial') AS partial_agg
FROM pg_temp.plan_lines('SELECT user_id, userseq_agg(item, ts, behavior) FROM ev_big GROUP BY user_id') l;
CREATE TEMP TABLE ser AS SELECT user_id, userseq_agg(item, ts, behavior) AS s FROM ev_big GROUP BY user_id;
CREATE TEMP TABLE ser1 AS SELECT userseq_agg(item, ts, behavior) AS s FROM ev_big;
SELECT count(*) AS groups, sum(userseq_length(s)) AS events FROM par;
SELECT count(*) AS differing FROM (SELECT * FROM par EXCEPT SELECT * FROM ser) d;
SELECT count(*) AS differing FROM (SELECT * FROM ser EXCEPT SELECT * FROM par) d;
SELECT md5(string_agg(s::text, ';' ORDER BY user_id)) = (SELECT md5(string_agg(s::text, ';' ORDER BY user_id)) FROM ser) AS same_text FROM par;
SELECT p.s = s.s AS same, userseq_length(p.s) FROM par1 p, ser1 s;
RESET ALL;
DROP TABLE ev_big;
