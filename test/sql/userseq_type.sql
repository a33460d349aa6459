-- userseq type: one edge case per line (pgvector vector_type.sql style)
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS userseq;
RESET client_min_messages;
SET TimeZone = 'America/New_York';
SET DateStyle = 'SQL, DMY';

-- text input and output
SELECT '[]'::userseq;
SELECT ' [ ] '::userseq;
SELECT '[42@2024-01-01T10:00:00Z view]'::userseq;
SELECT '[42@2024-01-01T10:00:00Z view, 43@2024-01-01T10:05:00.5Z]'::userseq;
SELECT '[43@2024-01-01T10:05:00Z, 42@2024-01-01T10:00:00Z]'::userseq;
SELECT '[2@2024-01-01T10:00:00Z, 1@2024-01-01T10:00:00Z b, 1@2024-01-01T10:00:00Z a, 1@2024-01-01T10:00:00Z]'::userseq;
SELECT '[1@2024-01-01T10:00:00Z, 1@2024-01-01T10:00:00Z]'::userseq;
SELECT '[1@"2024-01-01 10:00:00+02"]'::userseq;
SELECT '[1@2024-01-01]'::userseq;
SELECT '[ -9223372036854775808 @ 2024-01-01T00:00:00Z , +9223372036854775807@2024-01-01T00:00:00Z x ]'::userseq;
SELECT '[1@2024-01-01T00:00:00Z "add to cart"]'::userseq;
SELECT '[1@2024-01-01T00:00:00Z "a\"b\\c,[]@"]'::userseq;
SELECT '[1@2024-01-01T00:00:00Z "plain"]'::userseq;
SELECT '[1@2024-01-01T00:00:00Z ansicht]'::userseq;
SELECT '[1@2024-01-01T00:00:00Z käufe]'::userseq;
SELECT '[1@"0044-03-15T12:00:00Z BC"]'::userseq;
SELECT '[1@294276-12-31T23:59:59.999999Z]'::userseq;
SELECT '[1@4713-01-01T00:00:00Z BC]'::userseq;

-- round trips, independent of TimeZone and DateStyle
SELECT s::text::userseq = s FROM (SELECT '[1@2024-03-10T06:59:59.000001Z view, 2@"2024-03-10 03:00:00 America/New_York" "a b", 3@"0044-03-15T12:00:00Z BC"]'::userseq AS s) x;
SET TimeZone = 'Asia/Kolkata';
SELECT '[1@2024-03-10T06:59:59.000001Z view, 2@2024-03-10T07:00:00Z "a b", 3@"0044-03-15T12:00:00Z BC"]'::userseq;
SELECT '[1@2024-06-01 x]'::userseq;
RESET TimeZone;
SET TimeZone = 'America/New_York';

-- malformed text
SELECT ''::userseq;
SELECT '['::userseq;
SELECT ']'::userseq;
SELECT '[1'::userseq;
SELECT '[1@'::userseq;
SELECT '[1@2024-01-01T00:00:00Z'::userseq;
SELECT '[1@2024-01-01T00:00:00Z view'::userseq;
SELECT '[1@2024-01-01T00:00:00Z "view'::userseq;
SELECT '[1@"2024-01-01'::userseq;
SELECT '[1@2024-01-01T00:00:00Z "view\'::userseq;
SELECT '[1@2024-01-01T00:00:00Z] junk'::userseq;
SELECT '[][]'::userseq;
SELECT '[1@2024-01-01T00:00:00Z;2@2024-01-01T00:00:00Z]'::userseq;
SELECT '[1;2024-01-01T00:00:00Z]'::userseq;
SELECT '[1@2024-01-01T00:00:00Z,]'::userseq;
SELECT '[,1@2024-01-01T00:00:00Z]'::userseq;
SELECT '(1@2024-01-01T00:00:00Z)'::userseq;
SELECT '{1@2024-01-01T00:00:00Z}'::userseq;
SELECT '[1@2024-01-01 10:00:00]'::userseq;
SELECT '[1@2024-01-01T00:00:00Z a b]'::userseq;
SELECT '[x@2024-01-01T00:00:00Z]'::userseq;
SELECT '[1.5@2024-01-01T00:00:00Z]'::userseq;
SELECT '[9223372036854775808@2024-01-01T00:00:00Z]'::userseq;
SELECT '[-9223372036854775809@2024-01-01T00:00:00Z]'::userseq;
SELECT '[99999999999999999999999999999@2024-01-01T00:00:00Z]'::userseq;
SELECT '[1@2024-13-01T00:00:00Z]'::userseq;
SELECT '[1@2024-02-30]'::userseq;
SELECT '[1@yesterdayish]'::userseq;
SELECT '[1@infinity]'::userseq;
SELECT '[1@-infinity]'::userseq;
SELECT '[1@300000-01-01]'::userseq;
SELECT '[1@""]'::userseq;
SELECT '[1@2024-01-01T00:00:00Z ""]'::userseq;
SELECT '[1@2024-01-01T00:00:00Z aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa]'::userseq;
SELECT '[1@2024-01-01T00:00:00Z aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa]'::userseq;
SELECT '[1@2024-01-01T00:00:00Z a\b]'::userseq;
SELECT E'[1@2024-01-01T00:00:00Z\tview]'::userseq;

-- limits: 1000000 events fit, one more does not; 255 labels fit, 256 do not
SELECT userseq_length(userseq(array_agg(i))) FROM generate_series(1, 1000000) i;
SELECT userseq(array_agg(i)) FROM generate_series(1, 1000001) i;
SELECT userseq_length(('[' || string_agg(i || '@2024-01-01T00:00:00Z', ',') || ']')::userseq) FROM generate_series(1, 1000001) i;
SELECT userseq_length(userseq(array_agg(i), array_agg(timestamptz '2024-01-01' + i * interval '1 s'), array_agg('l' || i))) FROM generate_series(1, 255) i;
SELECT userseq(array_agg(i), array_agg(timestamptz '2024-01-01' + i * interval '1 s'), array_agg('l' || i)) FROM generate_series(1, 256) i;

-- constructors and accessors
SELECT userseq(ARRAY[3, 1, 2]::bigint[]);
SELECT ARRAY[3, 1, 2]::bigint[]::userseq;
SELECT userseq('{}'::bigint[]);
SELECT userseq(NULL::bigint[]);
SELECT userseq(ARRAY[1, NULL]::bigint[]);
SELECT userseq(ARRAY[[1, 2], [3, 4]]::bigint[]);
SELECT userseq(ARRAY[3, 1, 2], ARRAY['2024-01-02', '2024-01-01', '2024-01-01']::timestamptz[]);
SELECT userseq(ARRAY[3, 1, 2], ARRAY['2024-01-02', '2024-01-01', '2024-01-01']::timestamptz[], ARRAY['buy', NULL, 'view']);
SELECT userseq(ARRAY[3, 1, 2], ARRAY['2024-01-02', '2024-01-01', '2024-01-01']::timestamptz[], NULL);
SELECT userseq(NULL, ARRAY['2024-01-01']::timestamptz[]);
SELECT userseq(ARRAY[1], NULL);
SELECT userseq('{}', '{}');
SELECT userseq('{}', '{}', '{}');
SELECT userseq(ARRAY[1, 2], ARRAY['2024-01-01']::timestamptz[]);
SELECT userseq(ARRAY[1], ARRAY['2024-01-01', '2024-01-02']::timestamptz[]);
SELECT userseq(ARRAY[1], ARRAY['2024-01-01']::timestamptz[], ARRAY['a', 'b']);
SELECT userseq(ARRAY[1], ARRAY[NULL]::timestamptz[]);
SELECT userseq(ARRAY[1], ARRAY['infinity']::timestamptz[]);
SELECT userseq(ARRAY[1], ARRAY['2024-01-01']::timestamptz[], ARRAY['']);
SELECT userseq(ARRAY[1], ARRAY['2024-01-01']::timestamptz[], ARRAY[repeat('x', 65)]);
SELECT userseq(ARRAY[1], ARRAY['2024-01-01']::timestamptz[], ARRAY[repeat('é', 33)]);
SELECT userseq_items('[2@2024-01-02T00:00:00Z, 1@2024-01-01T00:00:00Z]');
SELECT '[2@2024-01-02T00:00:00Z, 1@2024-01-01T00:00:00Z]'::userseq::bigint[];
SELECT userseq_times('[2@2024-01-02T00:00:00Z, 1@2024-01-01T00:00:00Z]');
SELECT userseq_behaviors('[2@2024-01-02T00:00:00Z buy, 1@2024-01-01T00:00:00Z]');
SELECT userseq_items('[]'), userseq_times('[]'), userseq_behaviors('[]');
SELECT userseq(userseq_items(s), userseq_times(s), userseq_behaviors(s)) = s FROM (SELECT '[1@2024-01-01T00:00:00Z a, 2@2024-01-01T00:00:00Z, 2@2024-01-02T00:00:00Z "b c"]'::userseq AS s) x;

-- analyst functions
SELECT userseq_length('[1@2024-01-01T00:00:00Z, 2@2024-01-02T00:00:00Z]');
SELECT userseq_length('[]');
SELECT userseq_first('[1@2024-01-01T00:00:00Z a, 2@2024-01-02T00:00:00Z b, 3@2024-01-03T00:00:00Z c]', 2);
SELECT userseq_first('[1@2024-01-01T00:00:00Z a]', 5);
SELECT userseq_first('[1@2024-01-01T00:00:00Z a]', 0);
SELECT userseq_first('[1@2024-01-01T00:00:00Z a]', -1);
SELECT userseq_last('[1@2024-01-01T00:00:00Z a, 2@2024-01-02T00:00:00Z b, 3@2024-01-03T00:00:00Z c]', 2);
SELECT userseq_last('[]', 2);
SELECT userseq_last('[1@2024-01-01T00:00:00Z a]', -1);
SELECT userseq_before('[1@2024-01-01T00:00:00Z, 2@2024-01-02T00:00:00Z, 3@2024-01-03T00:00:00Z]', '2024-01-02T00:00:00Z');
SELECT userseq_since('[1@2024-01-01T00:00:00Z, 2@2024-01-02T00:00:00Z, 3@2024-01-03T00:00:00Z]', '2024-01-02T00:00:00Z');
SELECT userseq_between('[1@2024-01-01T00:00:00Z, 2@2024-01-02T00:00:00Z, 3@2024-01-03T00:00:00Z]', '2024-01-01T00:00:00Z', '2024-01-03T00:00:00Z');
SELECT userseq_between('[1@2024-01-01T00:00:00Z, 2@2024-01-02T00:00:00Z]', '2024-01-03T00:00:00Z', '2024-01-01T00:00:00Z');
SELECT userseq_between('[1@2024-01-01T00:00:00Z, 2@2024-01-02T00:00:00Z]', '-infinity', 'infinity');
SELECT userseq_before('[1@2024-01-01T00:00:00Z]', NULL);
SELECT userseq_keep('[1@2024-01-01T00:00:00Z view, 2@2024-01-02T00:00:00Z buy, 3@2024-01-03T00:00:00Z]', ARRAY['buy', 'cart']);
SELECT userseq_keep('[1@2024-01-01T00:00:00Z view, 2@2024-01-02T00:00:00Z buy, 3@2024-01-03T00:00:00Z]', ARRAY['buy', NULL]);
SELECT userseq_keep('[1@2024-01-01T00:00:00Z view]', '{}');
SELECT userseq_drop('[1@2024-01-01T00:00:00Z view, 2@2024-01-02T00:00:00Z buy, 3@2024-01-03T00:00:00Z]', ARRAY['view']);
SELECT userseq_drop('[1@2024-01-01T00:00:00Z view, 2@2024-01-02T00:00:00Z buy, 3@2024-01-03T00:00:00Z]', ARRAY[NULL]::text[]);
SELECT userseq_drop('[1@2024-01-01T00:00:00Z view]', NULL);
SELECT userseq_count('[1@2024-01-01T00:00:00Z view, 2@2024-01-02T00:00:00Z buy, 3@2024-01-03T00:00:00Z view]', 'view');
SELECT userseq_count('[1@2024-01-01T00:00:00Z view]', 'cart');
SELECT userseq_count('[]', 'view');
SELECT userseq_dedup('[1@2024-01-01T00:00:00Z v, 1@2024-01-01T00:10:00Z v, 1@2024-01-01T00:20:00Z v, 1@2024-01-01T00:25:00Z b, 2@2024-01-01T00:26:00Z v]', '15 minutes');
SELECT userseq_dedup('[1@2024-01-01T00:00:00Z, 1@2024-01-01T00:00:00Z]', '0');
SELECT userseq_dedup('[1@2024-01-01T00:00:00Z, 2@2024-01-01T00:00:00Z, 1@2024-01-01T00:01:00Z]', '1 day');
SELECT userseq_dedup('[1@2024-01-01T00:00:00Z]', '1 month');
SELECT userseq_dedup('[1@2024-01-01T00:00:00Z]', '-1 second');
SELECT userseq_dedup('[1@4713-01-01T00:00:00Z BC, 1@294276-01-01T00:00:00Z]', '1000000 days');
SELECT * FROM userseq_sessions('[1@2024-01-01T00:00:00Z, 2@2024-01-01T00:30:00Z a, 3@2024-01-01T01:00:01Z, 4@2024-01-02T00:00:00Z b]', '30 minutes') WITH ORDINALITY;
SELECT count(*) FROM userseq_sessions('[]', '30 minutes');
SELECT * FROM userseq_sessions('[1@2024-01-01T00:00:00Z, 2@2024-01-05T00:00:00Z]', '0');
SELECT * FROM userseq_sessions('[1@2024-01-01T00:00:00Z]', '1 year');
SELECT '[1@2024-01-02T00:00:00Z a]'::userseq || '[2@2024-01-01T00:00:00Z b, 3@2024-01-03T00:00:00Z a]';
SELECT userseq_concat('[]', '[1@2024-01-01T00:00:00Z]');
SELECT '[1@2024-01-01T00:00:00Z x]'::userseq || '[1@2024-01-01T00:00:00Z x]';
SELECT userseq_length(userseq(array_agg(i)) || userseq(array_agg(i))) FROM generate_series(1, 500000) i;
SELECT userseq_length(userseq(array_agg(i)) || '[1@2024-01-01T00:00:00Z]') FROM generate_series(1, 1000000) i;
SELECT userseq_length(userseq_concat(userseq(array_agg(i), array_agg(timestamptz '2024-01-01' + i * interval '1 s'), array_agg('a' || i)), userseq(array_agg(i), array_agg(timestamptz '2024-01-01' + i * interval '1 s'), array_agg('b' || i)))) FROM generate_series(1, 128) i;

-- equality and hashing
SELECT '[1@2024-01-01T00:00:00Z a]'::userseq = '[1@"2024-01-01 01:00:00+01" a]';
SELECT '[1@2024-01-01T00:00:00Z a]'::userseq = '[1@2024-01-01T00:00:00Z b]';
SELECT '[1@2024-01-01T00:00:00Z a]'::userseq <> '[1@2024-01-01T00:00:00Z]';
SELECT '[]'::userseq = '[]';
SELECT userseq_first('[1@2024-01-01T00:00:00Z a, 2@2024-01-02T00:00:00Z b]', 1) = '[1@2024-01-01T00:00:00Z a]';
SELECT userseq_hash('[1@2024-01-01T00:00:00Z a]') = userseq_hash(userseq_keep('[1@2024-01-01T00:00:00Z a, 2@2024-01-01T00:00:00Z b]', '{a}'));
SELECT count(DISTINCT s), count(*) FROM (VALUES ('[1@2024-01-01T00:00:00Z]'::userseq), ('[1@2024-01-01T00:00:00Z]'), ('[]'), ('[2@2024-01-01T00:00:00Z]')) v(s);
SELECT s, count(*) FROM (VALUES ('[1@2024-01-01T00:00:00Z]'::userseq), ('[1@2024-01-01T00:00:00Z]'), ('[]')) v(s) GROUP BY s ORDER BY 2;

-- storage and binary round trip through COPY BINARY (server-side files, so run as superuser)
CREATE TEMP TABLE seqs (id int, s userseq);
INSERT INTO seqs VALUES (1, '[]'), (2, '[42@2024-01-01T10:00:00Z view, 43@2024-01-01T10:05:00.5Z "add to cart", 1@"0044-03-15T12:00:00Z BC" "a\"b"]'), (3, NULL), (4, userseq(ARRAY(SELECT generate_series(1, 5000)::bigint)));
SELECT '/tmp/userseq_regress_' || current_setting('port') || '_' || pg_backend_pid() AS f \gset
COPY seqs TO :'f' (FORMAT binary);
CREATE TEMP TABLE seqs2 (id int, s userseq);
COPY seqs2 FROM :'f' (FORMAT binary);
SELECT id, a.s = b.s AS same, userseq_length(b.s) FROM seqs a FULL JOIN seqs2 b USING (id) ORDER BY id;
SELECT id, s::text FROM seqs2 WHERE id < 4 ORDER BY id;

-- hostile binary input: a hand-made COPY BINARY file with one userseq field
CREATE FUNCTION pg_temp.copy_bin(payload bytea, path text) RETURNS void LANGUAGE plpgsql AS $$
DECLARE o oid;
BEGIN
	o := lo_from_bytea(0, '\x5047434f50590aff0d0a00'::bytea || '\x0000000000000000'::bytea
		|| '\x0001'::bytea || int4send(length(payload)) || payload || '\xffff'::bytea);
	PERFORM lo_export(o, path);
	PERFORM lo_unlink(o);
END $$;
CREATE TEMP TABLE bin (s userseq);
-- valid: one event 7 @ 2000-01-01 00:00:00Z labelled "v"
SELECT pg_temp.copy_bin('\x00000001000100000000000000000001760000000000000007000000000000000001', :'f');
COPY bin FROM :'f' (FORMAT binary);
SELECT s FROM bin;
-- reserved flags nonzero
SELECT pg_temp.copy_bin('\x00000001000100010000000000000001760000000000000007000000000000000001', :'f');
COPY bin FROM :'f' (FORMAT binary);
-- reserved int nonzero
SELECT pg_temp.copy_bin('\x00000001000100000000000100000001760000000000000007000000000000000001', :'f');
COPY bin FROM :'f' (FORMAT binary);
-- negative and huge event counts
SELECT pg_temp.copy_bin('\xffffffff000000000000000000', :'f');
COPY bin FROM :'f' (FORMAT binary);
SELECT pg_temp.copy_bin('\x7fffffff000000000000000000', :'f');
COPY bin FROM :'f' (FORMAT binary);
SELECT pg_temp.copy_bin('\x000f4240000000000000000000', :'f');
COPY bin FROM :'f' (FORMAT binary);
-- truncated header
SELECT pg_temp.copy_bin('\x000000', :'f');
COPY bin FROM :'f' (FORMAT binary);
-- label code beyond the label table
SELECT pg_temp.copy_bin('\x00000001000100000000000000000001760000000000000007000000000000000002', :'f');
COPY bin FROM :'f' (FORMAT binary);
-- unused label
SELECT pg_temp.copy_bin('\x00000001000100000000000000000001760000000000000007000000000000000000', :'f');
COPY bin FROM :'f' (FORMAT binary);
-- more labels than events, zero-length label, over-long label length
SELECT pg_temp.copy_bin('\x00000000000100000000000000000001', :'f');
COPY bin FROM :'f' (FORMAT binary);
SELECT pg_temp.copy_bin('\x000000010001000000000000000000000000000000000007000000000000000001', :'f');
COPY bin FROM :'f' (FORMAT binary);
SELECT pg_temp.copy_bin('\x0000000100010000000000007fffffff760000000000000007000000000000000001', :'f');
COPY bin FROM :'f' (FORMAT binary);
-- NUL byte in a label
SELECT pg_temp.copy_bin('\x00000001000100000000000000000001000000000000000007000000000000000001', :'f');
COPY bin FROM :'f' (FORMAT binary);
-- labels not sorted
SELECT pg_temp.copy_bin('\x0000000200020000000000000000000177000000017600000000000000070000000000000007000000000000000000000000000000000102', :'f');
COPY bin FROM :'f' (FORMAT binary);
-- events not sorted by time
SELECT pg_temp.copy_bin('\x00000002000000000000000000000000000000070000000000000007000000000000000100000000000000000000', :'f');
COPY bin FROM :'f' (FORMAT binary);
-- infinite timestamp
SELECT pg_temp.copy_bin(('\x0000000100000000000000000000000000000007' || '7fffffffffffffff' || '00')::bytea, :'f');
COPY bin FROM :'f' (FORMAT binary);
-- event arrays cut short
SELECT pg_temp.copy_bin('\x000000020000000000000000000000000000000700000000000000070000000000000000', :'f');
COPY bin FROM :'f' (FORMAT binary);
-- trailing garbage after a valid value
SELECT pg_temp.copy_bin('\x0000000000000000000000000000', :'f');
COPY bin FROM :'f' (FORMAT binary);
SELECT count(*) FROM bin;
SELECT 1 AS backend_alive;
