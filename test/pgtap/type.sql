-- pgTAP: named hostile-input cases for userseq and a seeded mutation fuzz test of its text input
BEGIN;
CREATE EXTENSION IF NOT EXISTS userseq;
SELECT plan(14);

SELECT lives_ok($$SELECT '[]'::userseq$$, 'empty sequence parses');
SELECT lives_ok($$SELECT '[1@2024-01-01T00:00:00Z "a \"b\""]'::userseq$$, 'quoted label with escapes parses');
SELECT throws_ok($$SELECT '[1@2024-01-01T00:00:00Z] x'::userseq$$, '22P02', NULL, 'junk after closing bracket');
SELECT throws_ok($$SELECT '[1@2024-01-01T00:00:00Z'::userseq$$, '22P02', NULL, 'missing closing bracket');
SELECT throws_ok($$SELECT '[99999999999999999999@2024-01-01]'::userseq$$, '22003', NULL, 'item out of bigint range');
SELECT throws_ok($$SELECT '[1@2024-02-30]'::userseq$$, '22008', NULL, 'impossible date');
SELECT throws_ok($$SELECT '[1@infinity]'::userseq$$, '22008', NULL, 'infinite timestamp');
SELECT throws_ok($$SELECT userseq(ARRAY[1, 2], ARRAY['2024-01-01']::timestamptz[])$$, '2202E', NULL, 'array length mismatch');
SELECT throws_ok($$SELECT userseq(ARRAY[1, NULL], ARRAY['2024-01-01', '2024-01-02']::timestamptz[])$$, '22004', NULL, 'NULL item');
SELECT throws_ok($$SELECT userseq(array_agg(i)) FROM generate_series(1, 1000001) i$$, '54000', NULL, 'too many events');
SELECT is(userseq(NULL::bigint[], NULL::timestamptz[]), NULL, 'NULL arrays give NULL');

-- Mutation fuzz: seeded byte flips, deletions, duplications, insertions of syntax characters
-- and truncations of valid literals. Each mutant must parse and round-trip (text -> value ->
-- text -> value is stable) or fail with a data exception (class 22) or a limit (class 54).
CREATE TEMP TABLE fuzz_result (input text, sqlstate text, message text);
DO $$
DECLARE
	seeds text[] := ARRAY[
		'[]',
		'[42@2024-01-01T10:00:00Z view, 43@2024-01-01T10:05:00.5Z, 7@2024-01-02T00:00:00Z "add to cart"]',
		'[1@"2024-01-01 10:00:00+02" buy, -5@2023-12-31T23:59:59.999999Z "a\"b\\c"]',
		'[9223372036854775807@"0044-03-15T12:00:00Z BC" x, 0@294276-12-31T23:59:59Z y]'];
	specials text[] := ARRAY['[', ']', ',', '@', '"', '\', ' ', 'Z', '-', ':', '9', 'T', '.', '+'];
	s text; m text; v userseq; v2 userseq; pos int; len int; k int; op int;
	n_ok int := 0; n_err int := 0;
BEGIN
	PERFORM setseed(0.20240101);
	FOR i IN 1..3000 LOOP
		m := seeds[1 + floor(random() * array_length(seeds, 1))::int];
		FOR k IN 1..1 + floor(random() * 3)::int LOOP
			len := length(m);
			pos := 1 + floor(random() * greatest(len, 1))::int;
			op := floor(random() * 5)::int;
			IF op = 0 AND len > 0 THEN			-- replace a character by a random printable one
				m := overlay(m PLACING chr(32 + floor(random() * 95)::int) FROM pos FOR 1);
			ELSIF op = 1 AND len > 0 THEN		-- delete a run
				m := overlay(m PLACING '' FROM pos FOR 1 + floor(random() * 4)::int);
			ELSIF op = 2 THEN					-- duplicate a run
				m := overlay(m PLACING substr(m, pos, 1 + floor(random() * 8)::int) || substr(m, pos, 1) FROM pos FOR 1);
			ELSIF op = 3 THEN					-- insert a syntax character
				m := overlay(m PLACING specials[1 + floor(random() * array_length(specials, 1))::int] FROM pos FOR 0);
			ELSE								-- truncate
				m := substr(m, 1, pos - 1);
			END IF;
		END LOOP;
		BEGIN
			v := m::userseq;
			v2 := v::text::userseq;
			IF v2 <> v OR v2::text <> v::text THEN
				INSERT INTO fuzz_result VALUES (m, 'roundtrip', v::text);
			END IF;
			n_ok := n_ok + 1;
		EXCEPTION WHEN OTHERS THEN
			n_err := n_err + 1;
			IF left(SQLSTATE, 2) NOT IN ('22', '54') THEN
				INSERT INTO fuzz_result VALUES (m, SQLSTATE, SQLERRM);
			END IF;
		END;
	END LOOP;
	INSERT INTO fuzz_result VALUES ('#counts', n_ok::text, n_err::text);
END $$;
SELECT is((SELECT count(*)::int FROM fuzz_result WHERE input <> '#counts'), 0,
	'fuzz: every mutant parses and round-trips or fails with a class 22/54 SQLSTATE');
SELECT ok((SELECT sqlstate::int > 100 AND message::int > 1000 FROM fuzz_result WHERE input = '#counts'),
	'fuzz: both accepted and rejected mutants occur');
SELECT is((SELECT 1), 1, 'backend survived the fuzz run');

SELECT * FROM finish();
ROLLBACK;
