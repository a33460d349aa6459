-- One reader for every function that takes a query (user_query.c): read-only (0A000 for any
-- statement that writes or locks, and nothing changes), the sequence column "seq" or the only
-- userseq / bigint[] column (bigint[] evaluates like training), the label "label" or the only
-- other column. Figures that depend on BLAS rounding are compared, not printed.
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS userseq;
CREATE TABLE uq_d AS
SELECT u, ARRAY(SELECT ((u * 3 + e * 5) % 40 + 1)::int8 FROM generate_series(1, 3 + u % 9) e) AS items,
	   (u * 3) % 40 < 10 AS label
FROM generate_series(1, 300) u;
CREATE TABLE uq_log (n int);
CREATE VIEW uq_state AS
SELECT (SELECT count(*) FROM uq_d) AS rows, (SELECT sum(u) FROM uq_d WHERE label) AS pos_sum,
	   (SELECT count(*) FROM uq_log) AS log_rows;
-- bigint[] column named seq: training and evaluation read it alike
SELECT count(*) FROM userseq_train('uq_bin', 'SELECT items AS seq, label FROM uq_d', 'binary',
	'{"epochs": 1, "embedding_dim": 8, "num_filters": 8, "hidden_dim": 8, "seed": 1}');
SELECT count(*) FROM userseq_train('uq_ni', 'SELECT items AS seq FROM uq_d', 'next_item',
	'{"epochs": 1, "embedding_dim": 8, "num_filters": 8, "hidden_dim": 8, "seed": 1}');
RESET client_min_messages;
SELECT * FROM uq_state;

-- evaluation of a bigint[] sequence = evaluation of its userseq cast, for every function
SELECT count(*) AS metrics,
	   bool_and(a.value IS NOT DISTINCT FROM b.value) AS same_as_cast
FROM userseq_evaluate('uq_bin', 'SELECT items AS seq, label FROM uq_d') a
FULL JOIN userseq_evaluate('uq_bin', 'SELECT items::userseq AS seq, label FROM uq_d') b USING (scorer, protocol, metric);
SELECT count(*) AS metrics,
	   bool_and(a.value IS NOT DISTINCT FROM b.value) AS same_as_cast
FROM userseq_evaluate('uq_ni', 'SELECT items AS seq FROM uq_d ORDER BY u') a
FULL JOIN userseq_evaluate('uq_ni', 'SELECT items::userseq AS seq FROM uq_d ORDER BY u') b USING (scorer, protocol, metric);
SELECT (SELECT array_agg(t ORDER BY t) FROM userseq_roc_curve('uq_bin', 'SELECT items AS seq, label FROM uq_d') t)
	 = (SELECT array_agg(t ORDER BY t) FROM userseq_roc_curve('uq_bin', 'SELECT items::userseq AS seq, label FROM uq_d') t) AS roc_same,
	   (SELECT sum(n) FROM userseq_confusion_matrix('uq_bin', 'SELECT items AS seq, label FROM uq_d')) AS confusion_rows;
-- the column rule: unnamed sequence and label columns when there is only one candidate
SELECT count(*) > 0 AS unnamed_columns_read
FROM userseq_evaluate('uq_bin', 'SELECT label AS y, items FROM uq_d');
SET client_min_messages = warning;
SELECT count(*) FROM userseq_train('uq_bin2', 'SELECT label AS truth, items AS history FROM uq_d', 'binary',
	'{"epochs": 1, "embedding_dim": 8, "num_filters": 8, "hidden_dim": 8, "seed": 1}');
RESET client_min_messages;
SELECT * FROM userseq_evaluate('uq_bin', 'SELECT items, items AS again, label FROM uq_d');
SELECT count(*) AS metrics FROM userseq_evaluate('uq_bin', 'SELECT items AS seq, label, u FROM uq_d');
SELECT * FROM userseq_evaluate('uq_bin', 'SELECT u AS seq, label FROM uq_d');

-- read only, the same check for every function that takes a query (0A000, nothing runs)
SELECT * FROM userseq_evaluate('uq_bin', 'DELETE FROM uq_d WHERE u > 150 RETURNING items AS seq, label');
SELECT * FROM userseq_evaluate('uq_bin', 'UPDATE uq_d SET label = NOT label RETURNING items AS seq, label');
SELECT * FROM userseq_evaluate('uq_bin', 'INSERT INTO uq_d SELECT u + 1000, items, label FROM uq_d RETURNING items AS seq, label');
SELECT * FROM userseq_evaluate('uq_bin', 'SELECT items AS seq, label FROM uq_d FOR UPDATE');
SELECT * FROM userseq_evaluate('uq_bin', 'SELECT items AS seq, label FROM (SELECT * FROM uq_d FOR SHARE) s');
SELECT * FROM userseq_evaluate('uq_bin', 'WITH x AS (INSERT INTO uq_log VALUES (1) RETURNING n) SELECT items AS seq, label FROM uq_d, x');
SELECT * FROM userseq_evaluate('uq_bin', 'UPDATE uq_d SET label = false');
SELECT * FROM userseq_evaluate('uq_bin', 'SELECT items AS seq, label FROM uq_d; DELETE FROM uq_d');
SELECT * FROM userseq_evaluate('uq_bin', 'CREATE TABLE uq_new AS SELECT items AS seq, label FROM uq_d');
SELECT * FROM userseq_roc_curve('uq_bin', 'DELETE FROM uq_d WHERE u > 150 RETURNING items AS seq, label');
SELECT * FROM userseq_roc_curve('uq_bin', 'SELECT items AS seq, label FROM uq_d FOR UPDATE');
SELECT * FROM userseq_confusion_matrix('uq_bin', 'UPDATE uq_d SET label = NOT label RETURNING items AS seq, label');
SELECT * FROM userseq_confusion_matrix('uq_bin', 'WITH x AS (DELETE FROM uq_d RETURNING *) SELECT items AS seq, label FROM x');
SELECT * FROM userseq_evaluate('uq_ni', 'DELETE FROM uq_d WHERE u > 150 RETURNING items AS seq');
SELECT * FROM userseq_train('uq_bad', 'DELETE FROM uq_d WHERE u > 150 RETURNING items AS seq, label', 'binary');
SELECT * FROM userseq_train('uq_bad', 'SELECT items AS seq, label FROM uq_d FOR NO KEY UPDATE', 'binary');
SELECT * FROM userseq_train('uq_bad', 'WITH x AS (INSERT INTO uq_log VALUES (1) RETURNING n) SELECT items AS seq FROM uq_d, x', 'next_item');
-- a stored query edited into a write (only a superuser can) is refused by retrain as well
UPDATE models SET query = 'UPDATE uq_d SET label = NOT label RETURNING items AS seq, label' WHERE name = 'uq_bin';
SELECT * FROM userseq_retrain('uq_bin');
SELECT * FROM uq_state;

DROP VIEW uq_state;
DROP TABLE uq_d, uq_log;
SELECT userseq_drop_model('uq_bin') + userseq_drop_model('uq_bin2') + userseq_drop_model('uq_ni') AS dropped;
DROP EXTENSION userseq;
