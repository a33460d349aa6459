-- load_online_retail.sql: loads UCI Online Retail (test/data/online_retail/, CC BY 4.0,
-- Chen, D. (2015), https://doi.org/10.24432/C5BW33) into two tables of the current schema:
--
--   events(user_id bigint, ts timestamptz, behavior text, item_id bigint, quantity int,
--          price numeric, stock_code text)     one row per kept invoice line
--   items(item_id bigint primary key, stock_code text, description text)   product catalogue
--
-- Usage:  psql -X -v ON_ERROR_STOP=1 -v datadir=test/data/online_retail -f load_online_retail.sql
-- The file is read client-side (\copy ... FROM PROGRAM), so no superuser or server file access
-- is needed. The script refuses to run over existing events/items tables rather than drop them.
-- It builds no labels or model-specific views: those belong to the ML work.
--
-- Rules (each raw row is counted under the first rule it meets, in this order):
--   1. no CustomerID                      dropped: an event needs a user
--   2. non-product StockCode              dropped: a product code is 5 digits plus an optional
--      letter suffix (85123A); everything else is a fee, postage, adjustment, sample or voucher
--      (POST, DOT, C2, M, D, S, B, BANK CHARGES, AMAZONFEE, CRUK, PADS, DCGS..., gift_...)
--   3. UnitPrice <= 0                     dropped: free or adjustment lines are not purchases
--   4. Quantity = 0                       dropped (none in this file; kept as a rule)
--   5. exact duplicate of an earlier line dropped: all eight CSV fields identical
-- Kept rows: InvoiceNo starting with C (these have Quantity < 0) become 'return', all others
-- 'buy'. quantity is the number of units (always > 0; the direction is in behavior), price the
-- unit price in GBP. StockCodes are upper-cased (15056bl and 15056BL are the same parasol).
-- item_id is the rank of the upper-cased code in byte order among all product codes of the
-- file, so it is stable across loads and independent of the row filters.
-- InvoiceDate is UK local time: it is read as Europe/London (GMT in winter, BST in summer).

\if :{?datadir}
\else
\set datadir test/data/online_retail
\endif
\set csvfile :datadir '/online_retail.csv.gz'
-- \copy does not expand psql variables; the shell that runs the program expands this one
\setenv US_ONLINE_RETAIL_CSV :csvfile

SELECT pg_catalog.to_regclass('events') IS NOT NULL OR pg_catalog.to_regclass('items') IS NOT NULL
	AS us_tables_exist \gset
\if :us_tables_exist
DO $$BEGIN
	RAISE EXCEPTION 'table "events" or "items" already exists'
		USING HINT = 'load_online_retail.sql does not overwrite tables; drop them or use another schema.';
END$$;
\endif

BEGIN;
-- the dedup and ordering sorts stay in memory; only for this transaction
SET LOCAL work_mem = '256MB';

CREATE TEMP TABLE online_retail_raw (
	invoice_no text,
	stock_code text,
	description text,
	quantity text,
	invoice_date text,
	unit_price text,
	customer_id text,
	country text
) ON COMMIT DROP;

\copy online_retail_raw FROM PROGRAM 'gzip -dc "$US_ONLINE_RETAIL_CSV"' WITH (FORMAT csv, HEADER true)

-- Typed lines with the reason each one is dropped (NULL = kept), in rule order.
CREATE TEMP TABLE online_retail_lines ON COMMIT DROP AS
SELECT r.*,
	CASE
		WHEN r.customer_id IS NULL THEN '1 no customer id'
		WHEN r.stock_code !~ '^[0-9]{5}[A-Za-z]{0,2}$' THEN '2 non-product stock code'
		WHEN r.price <= 0 THEN '3 zero or negative price'
		WHEN r.quantity = 0 THEN '4 zero quantity'
		WHEN r.dup_no > 1 THEN '5 exact duplicate line'
	END AS drop_reason
FROM (
	SELECT invoice_no, stock_code, upper(stock_code) COLLATE "C" AS code, description,
		quantity::int AS quantity,
		(invoice_date::timestamp AT TIME ZONE 'Europe/London') AS ts,
		unit_price::numeric AS price,
		customer_id::bigint AS customer_id,
		country,
		-- the whole raw line as one byte-ordered key
		pg_catalog.row_number() OVER (
			PARTITION BY (online_retail_raw::text) COLLATE "C") AS dup_no
	FROM online_retail_raw
) r;

CREATE TABLE items (
	item_id bigint PRIMARY KEY,
	stock_code text NOT NULL UNIQUE,
	description text
);
COMMENT ON TABLE items IS 'Online Retail product catalogue (UCI, CC BY 4.0, Chen 2015, doi:10.24432/C5BW33): item_id = rank of the upper-cased StockCode';

-- Description: the most frequent non-empty one of the code (ties: smallest), since a few
-- codes carry warehouse notes ("wrongly marked carton ...") on stock-adjustment lines.
INSERT INTO items (item_id, stock_code, description)
SELECT pg_catalog.dense_rank() OVER (ORDER BY c.code), c.code, d.description
FROM (
	SELECT DISTINCT code
	FROM online_retail_lines
	WHERE stock_code ~ '^[0-9]{5}[A-Za-z]{0,2}$'
) c
LEFT JOIN (
	SELECT DISTINCT ON (code) code, description
	FROM (
		SELECT code, description, count(*) AS n
		FROM online_retail_lines
		WHERE description IS NOT NULL
		GROUP BY 1, 2
	) dn
	ORDER BY code, n DESC, description COLLATE "C"
) d ON d.code = c.code;

CREATE TABLE events (
	user_id bigint NOT NULL,
	ts timestamptz NOT NULL,
	behavior text NOT NULL CHECK (behavior IN ('buy', 'return')),
	item_id bigint NOT NULL,
	quantity int NOT NULL CHECK (quantity > 0),
	price numeric NOT NULL CHECK (price > 0),
	stock_code text NOT NULL
);
COMMENT ON TABLE events IS 'Online Retail invoice lines as events (UCI, CC BY 4.0, Chen 2015, doi:10.24432/C5BW33): buy / return per customer, item and time';

INSERT INTO events (user_id, ts, behavior, item_id, quantity, price, stock_code)
SELECT l.customer_id, l.ts,
	CASE WHEN l.invoice_no LIKE 'C%' OR l.quantity < 0 THEN 'return' ELSE 'buy' END,
	i.item_id, abs(l.quantity), l.price, i.stock_code
FROM online_retail_lines l
JOIN items i ON i.stock_code = l.code
WHERE l.drop_reason IS NULL
ORDER BY l.customer_id, l.ts, i.item_id;

-- added after the load: one validating join instead of a trigger call per row
ALTER TABLE events ADD FOREIGN KEY (item_id) REFERENCES items;
CREATE INDEX events_user_ts ON events (user_id, ts);
ANALYZE items;
ANALYZE events;

-- Load report: raw rows, drops per rule, result.
SELECT step, rows FROM (
	SELECT 0 AS ord, 'rows read' AS step, count(*) AS rows FROM online_retail_lines
	UNION ALL
	SELECT substr(r.reason, 1, 1)::int, 'dropped: ' || substr(r.reason, 3), count(l.drop_reason)
	FROM (VALUES ('1 no customer id'), ('2 non-product stock code'), ('3 zero or negative price'),
			('4 zero quantity'), ('5 exact duplicate line')) r(reason)
	LEFT JOIN online_retail_lines l ON l.drop_reason = r.reason
	GROUP BY r.reason
	UNION ALL
	SELECT 10, 'events', count(*) FROM events
	UNION ALL
	SELECT 11, 'events: buy', count(*) FROM events WHERE behavior = 'buy'
	UNION ALL
	SELECT 12, 'events: return', count(*) FROM events WHERE behavior = 'return'
	UNION ALL
	SELECT 13, 'customers', count(DISTINCT user_id) FROM events
	UNION ALL
	SELECT 14, 'items with events', count(DISTINCT item_id) FROM events
	UNION ALL
	SELECT 15, 'items in catalogue', count(*) FROM items
) s
ORDER BY ord, step;

SELECT (min(ts) AT TIME ZONE 'Europe/London')::text AS first_event_uk,
	(max(ts) AT TIME ZONE 'Europe/London')::text AS last_event_uk
FROM events;

COMMIT;
