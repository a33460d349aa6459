-- Helpers for crafting userseq model bytes in SQL tests (pg_temp, so they vanish with the
-- session): CRC32C, the offset of the first weight, a float32 written at an offset, and the
-- header CRC recomputed so a mutation reaches the body parser. Layout: src/core/format.c.

-- CRC32C (Castagnoli, reflected 0x82F63B78), byte-table driven
CREATE FUNCTION pg_temp.us_crc32c(b bytea) RETURNS bigint LANGUAGE plpgsql IMMUTABLE STRICT AS $$
DECLARE
	t bigint[];
	c bigint;
BEGIN
	t := array_fill(0::bigint, ARRAY[256]);
	FOR i IN 0..255 LOOP
		c := i;
		FOR k IN 1..8 LOOP
			IF c & 1 = 1 THEN c := (c >> 1) # 2197175160; ELSE c := c >> 1; END IF;
		END LOOP;
		t[i + 1] := c;
	END LOOP;
	c := 4294967295;
	FOR i IN 0..length(b) - 1 LOOP
		c := t[((c # get_byte(b, i)) & 255) + 1] # (c >> 8);
	END LOOP;
	RETURN c # 4294967295;
END $$;

CREATE FUNCTION pg_temp.us_u32(b bytea, pos int) RETURNS bigint LANGUAGE sql IMMUTABLE STRICT AS $$
	SELECT get_byte(b, pos)::bigint | (get_byte(b, pos + 1)::bigint << 8) |
		   (get_byte(b, pos + 2)::bigint << 16) | (get_byte(b, pos + 3)::bigint << 24) $$;

CREATE FUNCTION pg_temp.us_put_u32(b bytea, pos int, v bigint) RETURNS bytea LANGUAGE sql IMMUTABLE STRICT AS $$
	SELECT set_byte(set_byte(set_byte(set_byte(b, pos, (v & 255)::int), pos + 1, ((v >> 8) & 255)::int),
		   pos + 2, ((v >> 16) & 255)::int), pos + 3, ((v >> 24) & 255)::int) $$;

-- the bits of a float4 (finite values; enough for 3.4e38, 1e6, NaN as 2143289344)
CREATE FUNCTION pg_temp.us_f32_bits(f float4) RETURNS bigint LANGUAGE sql IMMUTABLE STRICT AS $$
	SELECT ('x' || encode(float4send(f), 'hex'))::bit(32)::bigint $$;

-- the header CRC (offset 24) of bytes [32, end)
CREATE FUNCTION pg_temp.us_repair_crc(b bytea) RETURNS bytea LANGUAGE sql IMMUTABLE STRICT AS $$
	SELECT pg_temp.us_put_u32(b, 24, pg_temp.us_crc32c(substr(b, 33))) $$;

-- offset of params[0]: header 32, config 88, 3 vocabulary counts, ids + counts, labels, n_params
CREATE FUNCTION pg_temp.us_weights_offset(b bytea) RETURNS int LANGUAGE plpgsql IMMUTABLE STRICT AS $$
DECLARE
	pos int := 132 + 12 * pg_temp.us_u32(b, 120)::int;
	n int := pg_temp.us_u32(b, 124) + pg_temp.us_u32(b, 128);
BEGIN
	FOR i IN 1..n LOOP
		pos := pos + 4 + pg_temp.us_u32(b, pos)::int;
	END LOOP;
	RETURN pos + 8;
END $$;

-- weight i (0-based) set to the float with bits v, CRC repaired
CREATE FUNCTION pg_temp.us_set_weight_bits(b bytea, i int, v bigint) RETURNS bytea LANGUAGE sql IMMUTABLE STRICT AS $$
	SELECT pg_temp.us_repair_crc(pg_temp.us_put_u32(b, pg_temp.us_weights_offset(b) + 4 * i, v)) $$;
