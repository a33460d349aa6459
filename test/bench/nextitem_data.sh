#!/bin/bash
# nextitem_data.sh OUTDIR [VIDEO_TXT]: the next-item data regimes of README "Next-item quality",
# as TSV files for test/bench/core_train and test/bench/torch_textcnn.py (format: label<TAB>ids,
# oldest first). Needs a cluster with userseq installed (PG* environment) for Online Retail
# and the generated data; VIDEO_TXT is SASRec's data/Video.txt (github.com/kang205/SASRec,
# fetched at development time, never committed).
#   OUTDIR/raw_*.tsv   user_id<TAB>split<TAB>ids (what SQL built; ids are the database's)
#   OUTDIR/REGIME.valid.tsv / REGIME.test.tsv   (held-out users: train users' lines, then the
#       validation or test users' lines; pass --valid-fraction from OUTDIR/REGIME.json)
#   OUTDIR/video.loo.tsv   one line per user, SASRec order (leave-one-out protocol)
set -euo pipefail
out=${1:?usage: nextitem_data.sh OUTDIR [VIDEO_TXT]}
video=${2:-}
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
mkdir -p "$out"
db=${NEXTITEM_DB:-nextitem_data}
psql -X -qc "DROP DATABASE IF EXISTS $db" >/dev/null
psql -X -qc "CREATE DATABASE $db"
P="psql -X -q -v ON_ERROR_STOP=1 -d $db"
$P -c "CREATE EXTENSION userseq"
$P -v datadir="$root/test/data/online_retail" -f "$root/test/data/load_online_retail.sql" >/dev/null
$P -f "$root/test/data/online_retail_tasks.sql" >/dev/null
# Online Retail next basket: training rows use train_seq, held-out rows eval_seq (the last
# event is one item of the last basket, the input the earlier baskets), as README's test does.
$P -c "\copy (SELECT user_id, split, array_to_string(CASE WHEN split = 'train' THEN userseq_items(train_seq) ELSE userseq_items(eval_seq) END, ' ') FROM or_next_item ORDER BY md5(user_id::text)) TO '$out/raw_retail.tsv'"
# 5-core short histories: each customer's distinct bought items in first-purchase order,
# items bought by >= 5 customers, customers with >= 5 such items, repeated until stable.
$P <<'SQL'
CREATE TEMP TABLE fp AS
SELECT user_id, item_id, min(ts) AS ts FROM events WHERE behavior = 'buy' GROUP BY 1, 2;
DO $$
DECLARE n bigint; m bigint := -1;
BEGIN
  LOOP
    DELETE FROM fp WHERE item_id IN (SELECT item_id FROM fp GROUP BY 1 HAVING count(*) < 5);
    DELETE FROM fp WHERE user_id IN (SELECT user_id FROM fp GROUP BY 1 HAVING count(*) < 5);
    SELECT count(*) INTO n FROM fp;
    EXIT WHEN n = m;
    m := n;
  END LOOP;
END $$;
CREATE TABLE retail5 AS
SELECT user_id,
  CASE WHEN ('x' || substr(md5(user_id::text), 1, 8))::bit(32)::bigint % 100 < 70 THEN 'train'
       WHEN ('x' || substr(md5(user_id::text), 1, 8))::bit(32)::bigint % 100 < 85 THEN 'valid'
       ELSE 'test' END AS split,
  array_agg(item_id ORDER BY ts, md5(user_id || ':' || item_id)) AS items
FROM fp GROUP BY user_id;
SQL
$P -c "\copy (SELECT user_id, split, array_to_string(items, ' ') FROM retail5 ORDER BY md5(user_id::text)) TO '$out/raw_retail5.tsv'"
# Generated: 12,000 users of userseq_generate_events (seed 7), every event's item in time order.
$P <<'SQL'
CREATE TABLE gen AS
SELECT user_id,
  CASE WHEN ('x' || substr(md5(user_id::text), 1, 8))::bit(32)::bigint % 100 < 70 THEN 'train'
       WHEN ('x' || substr(md5(user_id::text), 1, 8))::bit(32)::bigint % 100 < 85 THEN 'valid'
       ELSE 'test' END AS split,
  userseq_items(userseq_agg(item_id, ts, behavior)) AS items
FROM userseq_generate_events(12000, 7) GROUP BY user_id;
SQL
$P -c "\copy (SELECT user_id, split, array_to_string(items, ' ') FROM gen WHERE cardinality(items) >= 2 ORDER BY md5(user_id::text)) TO '$out/raw_gen.tsv'"
psql -X -qc "DROP DATABASE $db"
/usr/bin/python3 "$here/torch_textcnn.py" regimes --raw-dir "$out" ${video:+--video "$video"}
