#!/bin/bash
# What userseq_tune gains over the defaults, and what it costs (benchmark, not a test). Needs the
# PG* environment of a cluster with userseq installed.
#
#   USERS=3000 ITEMS=2000 TRIALS=12 EPOCHS=6 bash test/bench/tune_bench.sh
#
# 1. Next-item data from userseq_generate_events(USERS, seed 1, ITEMS): one userseq per user.
# 2. Defaults: userseq_train with only {"epochs": EPOCHS, "threads": 1}, RUNS times (wall time
#    median; the metrics are identical between runs, the seed is fixed).
# 3. userseq_tune with the same options, TRIALS trials, the default search space, once (and once
#    more with BUDGET as time_budget when BUDGET is set).
# 4. For both stored models: the validation NDCG@10 / HR@10 of the stored epoch (models.metrics:
#    the split the tuner optimised) and the test figures of userseq_evaluate on the same rows
#    (leave-last-out: the last event, never used for training or for choosing), full ranking
#    and sampled among 99 negatives, beside the markov baseline.
set -eu
cd "$(dirname "$0")/../.."
USERS=${USERS:-3000}
ITEMS=${ITEMS:-2000}
TRIALS=${TRIALS:-12}
EPOCHS=${EPOCHS:-6}
RUNS=${RUNS:-3}
BUDGET=${BUDGET:-}
q() { psql -X -q -At -v ON_ERROR_STOP=1 "$@"; }
median() { sort -g | awk '{a[NR]=$1} END {print (NR % 2) ? a[(NR+1)/2] : (a[NR/2] + a[NR/2+1]) / 2}'; }
timed() {
	local t0 t1
	t0=$(date +%s.%N)
	q -c "SET client_min_messages = warning" -c "$1" >/dev/null
	t1=$(date +%s.%N)
	echo "$t1 - $t0" | bc -l
}

q <<SQL
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS userseq;
DROP TABLE IF EXISTS tb_seqs;
CREATE TABLE tb_seqs AS
SELECT user_id, userseq_agg(item_id, ts, behavior) AS seq
FROM userseq_generate_events($USERS, 1, $ITEMS) GROUP BY user_id;
SELECT userseq_drop_model(name) FROM (SELECT DISTINCT name FROM models WHERE name LIKE 'tb_%') m;
SQL
opts="{\"epochs\": $EPOCHS, \"threads\": 1}"
query='SELECT seq FROM tb_seqs ORDER BY user_id'
t_def=$(for r in $(seq "$RUNS"); do
	timed "SELECT count(*) FROM userseq_train('tb_default', '$query', 'next_item', '$opts')"
done | median)
t_tune=$(timed "SELECT count(*) FROM userseq_tune('tb_tuned', '$query', 'next_item', '$opts', $TRIALS)")
names="tb_default tb_tuned"
if [ -n "$BUDGET" ]; then
	t_budget=$(timed "SELECT count(*) FROM userseq_tune('tb_budget', '$query', 'next_item', '$opts', $TRIALS, '$BUDGET')")
	names="$names tb_budget"
fi

echo "data: userseq_generate_events($USERS, 1, $ITEMS), $(q -c "SELECT count(*) FROM tb_seqs") sequences, options $opts"
echo
echo "| run | trials (pruned) | wall s | valid NDCG@10 | valid HR@10 | test NDCG@10 full | test HR@10 full | test NDCG@10 sampled:99 | markov test NDCG@10 full |"
echo "|---|---|---|---|---|---|---|---|---|"
for n in $names; do
	case $n in
		tb_default) t=$t_def; label="defaults (userseq_train, median of $RUNS)";;
		tb_tuned) t=$t_tune; label="userseq_tune, $TRIALS trials";;
		tb_budget) t=$t_budget; label="userseq_tune, $TRIALS trials, time_budget $BUDGET";;
	esac
	q -F ' | ' <<SQL
SET client_min_messages = warning;
WITH m AS (SELECT * FROM models WHERE name = '$n' AND deployed),
	 e AS (SELECT * FROM userseq_evaluate('$n', '$query'))
SELECT '| $label', coalesce((SELECT (metrics->'tuning'->>'trials') || ' (' ||
						(SELECT count(*) FROM tuning_trials t WHERE t.tune_id = (metrics->'tuning'->>'tune_id')::bigint
						 AND t.status = 'pruned') || ')' FROM m
						WHERE metrics ? 'tuning'), '1'),
	   round($t, 1),
	   (SELECT round((metrics->>'ndcg@10')::numeric, 4) FROM m),
	   (SELECT round((metrics->>'hr@10')::numeric, 4) FROM m),
	   (SELECT round(value::numeric, 4) FROM e WHERE scorer = 'model' AND protocol = 'full' AND metric = 'ndcg@10'),
	   (SELECT round(value::numeric, 4) FROM e WHERE scorer = 'model' AND protocol = 'full' AND metric = 'hr@10'),
	   (SELECT round(value::numeric, 4) FROM e WHERE scorer = 'model' AND protocol LIKE 'sampled%' AND metric = 'ndcg@10'),
	   (SELECT round(value::numeric, 4) FROM e WHERE scorer = 'markov' AND protocol = 'full' AND metric = 'ndcg@10') || ' |';
SQL
done
echo
echo "trials of the tuned models:"
q -c "SELECT m.name, t.trial, t.epochs, round(t.valid_metric::numeric, 4), round(t.seconds::numeric, 1), t.status
FROM models m JOIN tuning_trials t ON t.tune_id = (m.metrics->'tuning'->>'tune_id')::bigint
WHERE m.name LIKE 'tb_%' AND m.deployed ORDER BY 1, 2"
echo "best options of the tuned model:"
q -c "SELECT options FROM models WHERE name = 'tb_tuned' AND deployed"
