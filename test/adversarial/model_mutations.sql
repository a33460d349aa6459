-- Model-byte mutations through every by-value function and userseq_import (run by
-- test/t/adversarial.sh after model_bytes.sql, in a database with trained models adv_bin,
-- adv_mc, adv_ni and a table adv_d(u, seq)). Each mutant is fed to userseq_predict,
-- _predict_proba, _predict_class, _class_labels, userseq_embed, userseq_recommend and
-- userseq_import; each call must either fail with a clean SQLSTATE (not class XX, not 58) or
-- succeed with finite numbers, and an accepted import must round-trip: userseq_export gives the
-- same bytes and scoring by name equals scoring by value. Prints one row per outcome and the
-- number of unclean results (0 expected). Seeded: the same mutants every run.

CREATE TEMP TABLE adv_outcome (kind text, fn text, state text);

-- one mutant of b (model bytes), of the given kind; r is a random source in [0, 1)
CREATE FUNCTION pg_temp.adv_mutate(b bytea, kind text) RETURNS bytea LANGUAGE plpgsql AS $$
DECLARE
	n int := length(b);
	w0 int := pg_temp.us_weights_offset(b);
	np int := (length(b) - pg_temp.us_weights_offset(b)) / 4;
	pos int;
	vals bigint[] := ARRAY[0, 1, 2, 3, 7, 8, 64, 255, 65535, 2147483647, 2147483648, 4294967295,
						   n, n - 1, n + 1, 16777216, 16777217];
	floats float4[] := ARRAY[3.4e38, -3.4e38, 1e7, 1e30, 1.0000001e6, 1e6, -1e6, 1e-30, 0];
BEGIN
	CASE kind
		WHEN 'bitflip' THEN			-- anywhere, CRC left as is
			pos := floor(random() * n)::int;
			RETURN set_byte(b, pos, get_byte(b, pos) # (1 << floor(random() * 8)::int));
		WHEN 'bitflip_crc' THEN		-- in the body, CRC repaired: reaches the parser
			pos := 32 + floor(random() * (n - 32))::int;
			RETURN pg_temp.us_repair_crc(set_byte(b, pos, get_byte(b, pos) # (1 << floor(random() * 8)::int)));
		WHEN 'truncate' THEN
			RETURN substr(b, 1, floor(random() * n)::int);
		WHEN 'truncate_fixed' THEN	-- shorter, with total size and CRC made consistent
			pos := 32 + floor(random() * (n - 32))::int;
			RETURN pg_temp.us_repair_crc(pg_temp.us_put_u32(substr(b, 1, pos), 16, pos));
		WHEN 'append' THEN			-- trailing bytes, total size and CRC consistent
			RETURN pg_temp.us_repair_crc(pg_temp.us_put_u32(b || '\xdeadbeef'::bytea, 16, n + 4));
		WHEN 'huge_weight' THEN		-- a float at a random weight, CRC repaired
			RETURN pg_temp.us_set_weight_bits(b, floor(random() * np)::int,
				pg_temp.us_f32_bits(floats[1 + floor(random() * array_length(floats, 1))::int]));
		WHEN 'nonfinite_weight' THEN
			RETURN pg_temp.us_set_weight_bits(b, floor(random() * np)::int,
				(ARRAY[2139095040, 4286578688, 2143289344, 2139095041])[1 + floor(random() * 4)::int]);
		WHEN 'header' THEN			-- version, header size, flags, total size (2 words), reserved
			pos := (ARRAY[4, 8, 12, 16, 20, 28])[1 + floor(random() * 6)::int];
			RETURN pg_temp.us_put_u32(b, pos, vals[1 + floor(random() * array_length(vals, 1))::int]);
		WHEN 'config' THEN			-- one of the 22 config words, CRC repaired
			pos := 32 + 4 * floor(random() * 22)::int;
			RETURN pg_temp.us_repair_crc(pg_temp.us_put_u32(b, pos, vals[1 + floor(random() * array_length(vals, 1))::int]));
		WHEN 'counts' THEN			-- vocabulary counts and n_params, CRC repaired
			pos := (ARRAY[120, 124, 128, w0 - 8, w0 - 4])[1 + floor(random() * 5)::int];
			RETURN pg_temp.us_repair_crc(pg_temp.us_put_u32(b, pos, vals[1 + floor(random() * array_length(vals, 1))::int]));
		WHEN 'word' THEN			-- a random word of the vocabulary part, CRC repaired
			pos := 132 + floor(random() * greatest(w0 - 136, 1))::int;
			RETURN pg_temp.us_repair_crc(pg_temp.us_put_u32(b, least(pos, n - 4), vals[1 + floor(random() * array_length(vals, 1))::int]));
	END CASE;
END $$;

-- records one outcome: 'ok' or the SQLSTATE
CREATE FUNCTION pg_temp.adv_note(kind text, fn text, state text) RETURNS void LANGUAGE sql AS $$
	INSERT INTO adv_outcome VALUES (kind, fn, state) $$;

CREATE FUNCTION pg_temp.adv_finite(x float8[]) RETURNS boolean LANGUAGE sql IMMUTABLE AS $$
	SELECT coalesce(bool_and(v::text NOT IN ('NaN', 'Infinity', '-Infinity')), true) FROM unnest(x) v $$;

CREATE FUNCTION pg_temp.adv_run(per_model int) RETURNS void LANGUAGE plpgsql AS $$
DECLARE
	kinds text[] := ARRAY['bitflip', 'bitflip_crc', 'truncate', 'truncate_fixed', 'append', 'huge_weight',
						  'nonfinite_weight', 'header', 'config', 'counts', 'word'];
	m record;
	mut bytea;
	kind text;
	s userseq := (SELECT seq FROM adv_d WHERE u = 7);
	f8 float8;
	arr float8[];
	t text;
	v int;
BEGIN
	PERFORM setseed(0.42);
	FOR m IN SELECT name, weights FROM models WHERE name IN ('adv_bin', 'adv_mc', 'adv_ni') AND deployed ORDER BY name LOOP
		FOR i IN 1..per_model LOOP
			kind := kinds[1 + (i % array_length(kinds, 1))];
			mut := pg_temp.adv_mutate(m.weights, kind);
			BEGIN
				f8 := userseq_predict(mut, s);
				PERFORM pg_temp.adv_note(kind, 'predict', CASE WHEN f8 IS NULL OR pg_temp.adv_finite(ARRAY[f8]) THEN 'ok' ELSE 'NONFINITE' END);
			EXCEPTION WHEN OTHERS THEN PERFORM pg_temp.adv_note(kind, 'predict', SQLSTATE);
			END;
			BEGIN
				arr := userseq_predict_proba(mut, s);
				PERFORM pg_temp.adv_note(kind, 'proba', CASE WHEN pg_temp.adv_finite(arr) THEN 'ok' ELSE 'NONFINITE' END);
			EXCEPTION WHEN OTHERS THEN PERFORM pg_temp.adv_note(kind, 'proba', SQLSTATE);
			END;
			BEGIN
				t := userseq_predict_class(mut, s);
				PERFORM pg_temp.adv_note(kind, 'class', 'ok');
			EXCEPTION WHEN OTHERS THEN PERFORM pg_temp.adv_note(kind, 'class', SQLSTATE);
			END;
			BEGIN
				PERFORM userseq_class_labels(mut);
				PERFORM pg_temp.adv_note(kind, 'class_labels', 'ok');
			EXCEPTION WHEN OTHERS THEN PERFORM pg_temp.adv_note(kind, 'class_labels', SQLSTATE);
			END;
			BEGIN
				arr := userseq_embed(mut, s)::float8[];
				PERFORM pg_temp.adv_note(kind, 'embed', CASE WHEN pg_temp.adv_finite(arr) THEN 'ok' ELSE 'NONFINITE' END);
			EXCEPTION WHEN OTHERS THEN PERFORM pg_temp.adv_note(kind, 'embed', SQLSTATE);
			END;
			BEGIN
				arr := ARRAY(SELECT score FROM userseq_recommend(mut, s, 5));
				PERFORM pg_temp.adv_note(kind, 'recommend', CASE WHEN pg_temp.adv_finite(arr) THEN 'ok' ELSE 'NONFINITE' END);
			EXCEPTION WHEN OTHERS THEN PERFORM pg_temp.adv_note(kind, 'recommend', SQLSTATE);
			END;
			BEGIN
				v := userseq_import('adv_imported', mut, true);
				-- accepted: the stored bytes and by-name scoring must be those of the mutant
				IF userseq_export('adv_imported', v) IS DISTINCT FROM mut THEN
					PERFORM pg_temp.adv_note(kind, 'import', 'EXPORT_DIFFERS');
				ELSE
					BEGIN
						IF (SELECT task FROM models WHERE name = 'adv_imported' AND version = v) = 'next_item' THEN
							IF ARRAY(SELECT (item, score)::text FROM userseq_recommend('adv_imported', s, 5)) IS DISTINCT FROM
							   ARRAY(SELECT (item, score)::text FROM userseq_recommend(mut, s, 5)) THEN
								RAISE EXCEPTION USING ERRCODE = 'ZZ001';
							END IF;
						ELSIF userseq_predict('adv_imported', s) IS DISTINCT FROM userseq_predict(mut, s) THEN
							RAISE EXCEPTION USING ERRCODE = 'ZZ001';
						END IF;
						PERFORM pg_temp.adv_note(kind, 'import', 'ok');
					EXCEPTION
						WHEN SQLSTATE 'ZZ001' THEN PERFORM pg_temp.adv_note(kind, 'import', 'SCORE_DIFFERS');
						WHEN OTHERS THEN PERFORM pg_temp.adv_note(kind, 'import', 'ok:' || SQLSTATE);
					END;
				END IF;
				PERFORM userseq_drop_model('adv_imported');
			EXCEPTION WHEN OTHERS THEN PERFORM pg_temp.adv_note(kind, 'import', SQLSTATE);
			END;
		END LOOP;
	END LOOP;
END $$;
