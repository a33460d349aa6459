#!/bin/bash
# architecture "sasrec" against the text-CNN and the counting baselines on SASRec's Video data
# (benchmark, not a test). Needs the PG* environment of a cluster with userseq installed, and
# SASRec's data/Video.txt (github.com/kang205/SASRec; "user item" lines, each user's items in
# time order), fetched at development time and never committed:
#
#   VIDEO=/path/to/Video.txt RUNS=3 bash test/bench/sasrec_bench.sh
#
# Protocol (SASRec's): leave-one-out per user; training sees each sequence up to its last two
# events (userseq_train's leave_one_out validation: the second-to-last event validates and early
# stopping keeps the best epoch), the test ranks the last event after all the others, among
# 100 items the user never touched (userseq_evaluate(negatives => 100), SASRec's 100 negatives)
# and over the full catalogue. Every model: the options in MODELS below, seed 1.
# Speed: training seconds (the training call), and recommendations per second
# (SELECT count(*) over SCORE_USERS users, LATERAL userseq_recommend(model, seq, 10), serial,
# fresh session, one warm-up request), median of RUNS runs, the text-CNN and sasrec alternating.
set -eu
cd "$(dirname "$0")/../.."
VIDEO=${VIDEO:?set VIDEO to SASRec data/Video.txt}
RUNS=${RUNS:-3}
SCORE_USERS=${SCORE_USERS:-5000}
EPOCHS=${EPOCHS:-20}
q() { psql -X -q -At -v ON_ERROR_STOP=1 "$@"; }
median() { sort -g | awk '{a[NR]=$1} END {print (NR % 2) ? a[(NR+1)/2] : (a[NR/2] + a[NR/2+1]) / 2}'; }

# name | options (JSON)
MODELS=${MODELS:-"vid_cnn|{\"epochs\": $EPOCHS, \"patience\": 3, \"seed\": 1}
vid_sasrec|{\"architecture\": \"sasrec\", \"epochs\": $EPOCHS, \"patience\": 3, \"seed\": 1}"}

q <<SQL
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS userseq;
DROP TABLE IF EXISTS vid_events, vid;
CREATE TABLE vid_events (id bigserial, user_id int, item_id int8);
\\copy vid_events (user_id, item_id) FROM '$VIDEO' WITH (DELIMITER ' ')
CREATE TABLE vid AS
SELECT user_id, array_agg(item_id ORDER BY id) AS items FROM vid_events GROUP BY user_id;
SQL
echo "data: $(q -c "SELECT count(*) || ' users, ' || (SELECT count(DISTINCT item_id) FROM vid_events) || ' items, ' || round(avg(cardinality(items)), 2) || ' events per user' FROM vid")"

echo "$MODELS" | while IFS='|' read -r name opts; do
	[ -n "$name" ] || continue
	secs=$(q <<SQL | awk '/^Time:/ {t = $2} END {printf "%.1f\n", t / 1000}'
SET client_min_messages = warning;
SELECT userseq_drop_model('$name') FROM models WHERE name = '$name' LIMIT 1;
\\timing on
SELECT count(*) FROM userseq_train('$name', 'SELECT items::userseq AS seq FROM vid ORDER BY user_id', 'next_item', '$opts');
SQL
)
	echo "train $name: $secs s, $(q -c "SELECT 'best epoch ' || (metrics->>'best_epoch') || ' of ' || (metrics->>'epochs_run') || ', validation ' || (metrics->>'metric') || ' ' || round((metrics->>(metrics->>'metric'))::numeric, 4) FROM models WHERE name = '$name' AND deployed")"
	q <<SQL
SET client_min_messages = warning;
CREATE TEMP TABLE r AS SELECT * FROM userseq_evaluate('$name', 'SELECT items::userseq AS seq FROM vid ORDER BY user_id', negatives => 100);
SELECT '$name ' || scorer || ' ' || protocol || ': HR@10 ' || round(max(value) FILTER (WHERE metric = 'hr@10')::numeric, 4) ||
	   ', NDCG@10 ' || round(max(value) FILTER (WHERE metric = 'ndcg@10')::numeric, 4)
FROM r WHERE metric IN ('hr@10', 'ndcg@10') GROUP BY scorer, protocol ORDER BY protocol DESC, scorer;
SQL
done

# recommendations per second, serial, fresh sessions, alternating
rps() {
	q <<SQL | awk -v n="$SCORE_USERS" '/^Time:/ {t = $2} END {printf "%.0f\n", n / (t / 1000)}'
SET max_parallel_workers_per_gather = 0;
SELECT count(*) FROM (SELECT items FROM vid LIMIT 1) s, LATERAL userseq_recommend('$1', s.items::userseq, 10);
\\timing on
SELECT count(*) FROM (SELECT items FROM vid ORDER BY user_id LIMIT $SCORE_USERS) s, LATERAL userseq_recommend('$1', s.items::userseq, 10);
SQL
}
for r in $(seq "$RUNS"); do
	echo "vid_cnn $(rps vid_cnn)" >>/tmp/sasrec_bench_rps.$$
	echo "vid_sasrec $(rps vid_sasrec)" >>/tmp/sasrec_bench_rps.$$
done
c=$(awk '$1 == "vid_cnn" {print $2}' /tmp/sasrec_bench_rps.$$ | median)
s=$(awk '$1 == "vid_sasrec" {print $2}' /tmp/sasrec_bench_rps.$$ | median)
rm -f /tmp/sasrec_bench_rps.$$
echo "recommend top-10 per second (median of $RUNS, $SCORE_USERS users, serial): text-CNN $c, sasrec $s, ratio sasrec / text-CNN $(awk -v a="$s" -v b="$c" 'BEGIN {printf "%.2f", a / b}')"
