-- userseq_append: one event added in place; checked against userseq_last(seq || event, max_len)
CREATE EXTENSION IF NOT EXISTS userseq;
SET TimeZone = 'UTC';
-- documented cases
SELECT userseq_append(NULL, 7, '2024-01-01 10:00Z') AS null_seq_one_event;
SELECT userseq_append('[1@2024-01-01T10:00:00Z view]', 2, '2024-01-01 11:00Z', 'buy') AS newest_at_end;
SELECT userseq_append('[1@2024-01-01T10:00:00Z view, 3@2024-01-01T12:00:00Z]', 2, '2024-01-01 11:00Z', 'cart') AS late_in_order;
SELECT userseq_append('[1@2024-01-01T10:00:00Z view, 3@2024-01-01T12:00:00Z buy]', 4, '2024-01-01 13:00Z', max_len => 2) AS oldest_dropped;
SELECT userseq_append('[1@2024-01-01T10:00:00Z view, 3@2024-01-01T12:00:00Z buy]', 0, '2024-01-01 09:00Z', 'a', 2) AS late_and_dropped;
SELECT userseq_append('[5@2024-01-01T10:00:00Z b]', 5, '2024-01-01 10:00Z', 'a') AS same_time_label_order;
SELECT userseq_append('[5@2024-01-01T10:00:00Z b]', 5, '2024-01-01 10:00Z', 'b') AS duplicate_kept;
-- errors: as the type's input
SELECT userseq_append(NULL, NULL, '2024-01-01 10:00Z');
SELECT userseq_append(NULL, 1, NULL);
SELECT userseq_append(NULL, 1, 'infinity');
SELECT userseq_append(NULL, 1, '2024-01-01 10:00Z', '');
SELECT userseq_append(NULL, 1, '2024-01-01 10:00Z', repeat('x', 65));
SELECT userseq_append(NULL, 1, '2024-01-01 10:00Z', NULL, 0);
SELECT userseq_append(userseq(ARRAY(SELECT g FROM generate_series(1, 255) g)::int8[],
                              ARRAY(SELECT '2024-01-01'::timestamptz + g * interval '1 s' FROM generate_series(1, 255) g),
                              ARRAY(SELECT 'l' || g FROM generate_series(1, 255) g)),
                      1, '2024-02-01', 'one too many');
-- ... but a label that drops out with max_len leaves room
SELECT userseq_length(userseq_append(userseq(ARRAY(SELECT g FROM generate_series(1, 255) g)::int8[],
                              ARRAY(SELECT '2024-01-01'::timestamptz + g * interval '1 s' FROM generate_series(1, 255) g),
                              ARRAY(SELECT 'l' || g FROM generate_series(1, 255) g)),
                      1, '2024-02-01', 'one more', 255)) AS labels_255;
-- 20,000 random appends (fixed seed) against the reference built by || and userseq_last
SELECT setseed(0.17);
CREATE TEMP TABLE ap AS
SELECT i,
       userseq(ARRAY(SELECT (random() * 5)::int8 FROM generate_series(1, n) g),
               ARRAY(SELECT '2024-01-01'::timestamptz + (random() * 20)::int * interval '1 min' FROM generate_series(1, n) g),
               ARRAY(SELECT (ARRAY['a', 'b', 'c', NULL])[1 + (random() * 3)::int] FROM generate_series(1, n) g)) AS seq,
       (random() * 6)::int8 AS item,
       '2024-01-01'::timestamptz + (random() * 22)::int * interval '1 min' AS ts,
       (ARRAY['a', 'd', 'c', NULL, 'aa'])[1 + (random() * 4)::int] AS beh,
       CASE WHEN random() < 0.3 THEN NULL ELSE 1 + (random() * 8)::int END AS max_len
FROM (SELECT i, (random() * 8)::int AS n FROM generate_series(1, 20000) i) s;
SELECT count(*) AS cases,
       count(*) FILTER (WHERE userseq_append(seq, item, ts, beh, max_len)
                        IS DISTINCT FROM userseq_last(seq || userseq(ARRAY[item], ARRAY[ts], ARRAY[beh]), coalesce(max_len, 1000000))) AS mismatches,
       count(*) FILTER (WHERE userseq_length(seq) > 0 AND ts < (userseq_times(seq))[userseq_length(seq)]) > 1000 AS many_late
FROM ap;
-- byte-identical to the type's input of the same events (canonical form)
SELECT count(*) FILTER (WHERE userseq_append(seq, item, ts, beh)::text::userseq IS DISTINCT FROM userseq_append(seq, item, ts, beh)) AS not_canonical FROM ap;
DROP TABLE ap;
DROP EXTENSION userseq;
