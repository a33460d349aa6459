-- userseq_agg internals: every state path must give the same value as the array constructor
-- (userseq(items, times, behaviors) builds through UserSeqBuild, not the aggregate state):
-- labels beyond the ones kept in the state header, more distinct labels than the per-query
-- label dictionary holds, hash aggregation that spills (the state arena's context is reset
-- between batches), grouping sets (one arena per context), sliding window frames (context
-- resets while aggregating), time-ordered input with and without ties (the sort is skipped
-- only for strictly increasing times), and parallel aggregation (serialize/combine).
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS userseq;
RESET client_min_messages;
SET TimeZone = 'UTC';
SET max_parallel_workers_per_gather = 0;

-- 600 users; each uses up to 12 labels of its own (about 3900 distinct labels over the
-- table) plus 5 shared ones; NULL labels and NULL items/times mixed in
CREATE TABLE ev_paths AS
SELECT (i % 600) AS user_id,
       CASE WHEN i % 97 = 0 THEN NULL ELSE (i * 7919) % 50 END AS item,
       CASE WHEN i % 89 = 0 THEN NULL
            ELSE timestamptz '2024-01-01' + ((i * 104729) % 5000) * interval '1 second' END AS ts,
       CASE WHEN i % 11 = 0 THEN NULL
            WHEN i % 3 = 0 THEN (ARRAY['view', 'cart', 'buy', 'search', 'a longer label with spaces'])[1 + (i / 600) % 5]
            ELSE 'u' || (i % 600) || '_' || ((i / 600) % (1 + (i % 600) % 13)) END AS behavior
FROM generate_series(1::bigint, 60000) i;
-- a second batch of labels no earlier row used, so the label dictionary (4096) overflows
INSERT INTO ev_paths
SELECT (i % 600), i % 7, timestamptz '2024-02-01' + i * interval '1 minute', 'late_' || i
FROM generate_series(1, 1500) i;
ANALYZE ev_paths;
SELECT count(DISTINCT behavior) > 4096 AS dictionary_overflows FROM ev_paths;
SELECT max(n) > 4 AS some_user_has_more_than_4_labels
FROM (SELECT user_id, count(DISTINCT behavior) AS n FROM ev_paths GROUP BY user_id) s;

CREATE TEMP TABLE ref AS
SELECT user_id, userseq(array_agg(item), array_agg(ts), array_agg(behavior)) AS s3,
       userseq(array_agg(item), array_agg(ts)) AS s2
FROM ev_paths WHERE item IS NOT NULL AND ts IS NOT NULL GROUP BY user_id;

CREATE FUNCTION pg_temp.mismatches(q text) RETURNS bigint LANGUAGE plpgsql AS $$
DECLARE r bigint;
BEGIN
	EXECUTE 'SELECT count(*) FROM ref FULL JOIN (' || q || ') x USING (user_id) '
		'WHERE x.s IS DISTINCT FROM ref.s3' INTO r;
	RETURN r;
END $$;
CREATE FUNCTION pg_temp.plan_has(q text, node text) RETURNS boolean LANGUAGE plpgsql AS $$
DECLARE l text;
BEGIN
	FOR l IN EXECUTE 'EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF, SUMMARY OFF) ' || q LOOP
		IF l LIKE '%' || node || '%' THEN RETURN true; END IF;
	END LOOP;
	RETURN false;
END $$;

-- hash aggregation in memory, then with spilling
SET work_mem = '64MB';
SELECT pg_temp.mismatches('SELECT user_id, userseq_agg(item, ts, behavior) AS s FROM ev_paths GROUP BY user_id') AS hash_mismatches;
SELECT count(*) FILTER (WHERE x.s IS DISTINCT FROM ref.s2) AS hash_2arg_mismatches
FROM ref FULL JOIN (SELECT user_id, userseq_agg(item, ts) AS s FROM ev_paths GROUP BY user_id) x USING (user_id);
SET work_mem = '64kB';
SET enable_sort = off;
SELECT pg_temp.plan_has('SELECT user_id, userseq_agg(item, ts, behavior) FROM ev_paths GROUP BY user_id', 'Disk Usage') AS hash_spills;
SELECT pg_temp.mismatches('SELECT user_id, userseq_agg(item, ts, behavior) AS s FROM ev_paths GROUP BY user_id') AS spill_mismatches;
RESET work_mem;
RESET enable_sort;

-- sorted grouping and grouping sets (the total row has too many labels, so ROLLUP runs on
-- a subset and its total is compared separately)
SET enable_hashagg = off;
SELECT pg_temp.mismatches('SELECT user_id, userseq_agg(item, ts, behavior) AS s FROM ev_paths GROUP BY user_id') AS sorted_mismatches;
RESET enable_hashagg;
SELECT count(*) FILTER (WHERE x.s IS DISTINCT FROM ref.s3) AS rollup_mismatches, count(*) AS rollup_groups
FROM (SELECT user_id, userseq_agg(item, ts, behavior) AS s FROM ev_paths WHERE user_id < 20 GROUP BY ROLLUP (user_id)) x
JOIN ref USING (user_id);
SELECT (SELECT s FROM (SELECT user_id, userseq_agg(item, ts, behavior) AS s FROM ev_paths WHERE user_id < 20
                       GROUP BY ROLLUP (user_id)) r WHERE user_id IS NULL) =
       (SELECT userseq(array_agg(item), array_agg(ts), array_agg(behavior)) FROM ev_paths
        WHERE user_id < 20 AND item IS NOT NULL AND ts IS NOT NULL) AS rollup_total_equal;

-- window aggregates: growing and sliding frames (the final function must not change the state)
SELECT bool_and(w IS NOT DISTINCT FROM userseq(ia, ta, ba)) AS window_equal, count(*) AS rows
FROM (SELECT userseq_agg(item, ts, behavior) OVER w AS w, array_agg(item) OVER w AS ia,
             array_agg(ts) OVER w AS ta, array_agg(behavior) OVER w AS ba
      FROM ev_paths WHERE user_id IN (3, 11, 12) AND item IS NOT NULL AND ts IS NOT NULL
      WINDOW w AS (PARTITION BY user_id ORDER BY ts, item, behavior ROWS UNBOUNDED PRECEDING)) z;
SELECT bool_and(w IS NOT DISTINCT FROM userseq(ia, ta, ba)) AS sliding_window_equal, count(*) AS rows
FROM (SELECT userseq_agg(item, ts, behavior) OVER w AS w, array_agg(item) OVER w AS ia,
             array_agg(ts) OVER w AS ta, array_agg(behavior) OVER w AS ba
      FROM ev_paths WHERE user_id IN (3, 11, 12) AND item IS NOT NULL AND ts IS NOT NULL
      WINDOW w AS (PARTITION BY user_id ORDER BY ts, item, behavior ROWS BETWEEN 3 PRECEDING AND CURRENT ROW)) z;

-- time-ordered input: with ties on time (must still sort by item, label), strictly increasing
SELECT userseq_agg(item, ts, behavior) = userseq(array_agg(item), array_agg(ts), array_agg(behavior)) AS ties_equal
FROM (SELECT * FROM ev_paths WHERE user_id < 10 AND item IS NOT NULL AND ts IS NOT NULL
      ORDER BY ts, item DESC, behavior DESC NULLS FIRST) o;
SELECT userseq_agg(item, ts) = userseq(array_agg(item), array_agg(ts)) AS increasing_equal,
       userseq_length(userseq_agg(item, ts)) AS events
FROM (SELECT DISTINCT ON (ts) item, ts FROM ev_paths WHERE item IS NOT NULL AND ts IS NOT NULL ORDER BY ts, item) o;

-- parallel: partial states serialized in workers, deserialized and combined in the leader
SET parallel_setup_cost = 0;
SET parallel_tuple_cost = 0;
SET min_parallel_table_scan_size = 0;
SET max_parallel_workers_per_gather = 2;
SELECT pg_temp.plan_has('SELECT user_id, userseq_agg(item, ts, behavior) FROM ev_paths GROUP BY user_id', 'Partial HashAggregate') AS parallel_plan;
SELECT pg_temp.mismatches('SELECT user_id, userseq_agg(item, ts, behavior) AS s FROM ev_paths GROUP BY user_id') AS parallel_mismatches;
SET enable_hashagg = off;
SELECT pg_temp.mismatches('SELECT user_id, userseq_agg(item, ts, behavior) AS s FROM ev_paths GROUP BY user_id') AS parallel_sorted_mismatches;
RESET enable_hashagg;
RESET max_parallel_workers_per_gather;

-- the per-value label limit still holds for labels past a full dictionary: groups 0..17
-- use 250 labels each (4500 in all, so the dictionary fills), then one group gets 255 or
-- 256 labels no earlier row used
SELECT g, userseq_length(userseq_agg(i, '2024-01-01'::timestamptz, 'l' || i)) AS events, count(*)
FROM (SELECT i, CASE WHEN i < 4500 THEN i / 250 ELSE 1000 END AS g FROM generate_series(0, 4754) i) s
GROUP BY g HAVING g >= 17 ORDER BY g;
SELECT g, userseq_length(userseq_agg(i, '2024-01-01'::timestamptz, 'l' || i))
FROM (SELECT i, CASE WHEN i < 4500 THEN i / 250 ELSE 1000 END AS g FROM generate_series(0, 4755) i) s
GROUP BY g ORDER BY g;

-- toasted labels (compressed inline, and stored out of line) are detoasted and checked
CREATE TEMP TABLE toasted (b text);
INSERT INTO toasted VALUES (repeat('x', 10000));
SELECT userseq_agg(1, '2024-01-01'::timestamptz, b) FROM toasted;
ALTER TABLE toasted ALTER COLUMN b SET STORAGE EXTERNAL;
INSERT INTO toasted VALUES (repeat('y', 10000));
SELECT userseq_agg(1, '2024-01-01'::timestamptz, b) FROM toasted WHERE b LIKE 'y%';
TRUNCATE toasted;
INSERT INTO toasted VALUES (rpad('ok', 60, '!'));
SELECT userseq_behaviors(userseq_agg(1, '2024-01-01'::timestamptz, b)) FROM toasted;

DROP TABLE ev_paths;
