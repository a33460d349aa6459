#!/bin/bash
# What userseq_tune gains over the defaults, and what it costs (benchmark, not a test). Needs the
# PG* environment of a cluster with userseq installed.
#
#   USERS=3000 ITEMS=2000 TRIALS=12 EPOCHS=6 bash test/bench/tune_bench.sh
#   DATA=DIR/retail5.valid.tsv TRIALS=12 EPOCHS=10 RUNS=3 BUDGET='10 minutes' bash test/bench/tune_bench.sh
#
# 1. Next-item data from userseq_generate_events(USERS, seed 1, ITEMS): one userseq per user;
#    or, with DATA, a regime file of test/bench/nextitem_data.sh (label<TAB>space-separated item
#    ids, oldest first; one line per user, the label column ignored): line i is user i, its ids
#    cast bigint[]::userseq (unlabelled, time order = file order). Every line is a user here: the
#    regime's own held-out split is not used, this bench splits each sequence leave-last-out.
# 2. Defaults: userseq_train with only {"epochs": EPOCHS, "threads": 1}, RUNS times (wall time
#    median; the metrics are identical between runs, the seed is fixed).
# 3. userseq_tune with the same options, TRIALS trials, the default search space (or the default
#    space changed by SPACE, userseq_tune's space argument, e.g. '{"architecture": ["textcnn", "sasrec"]}'), once (and once
#    more with BUDGET as time_budget when BUDGET is set).
# 4. For both stored models: the validation NDCG@10 / HR@10 of the stored epoch (models.metrics:
#    the split the tuner optimised) and the test figures of userseq_evaluate on the same rows
#    (leave-last-out: the last event, never used for training or for choosing), full ranking
#    and sampled among 99 negatives. Beside them userseq_evaluate's markov and popularity
#    baselines, on the test event and on the validation event (the query with each sequence's
#    last event cut off, sequences of >= 3 events: the rows training validates); the models'
#    validation columns are userseq_evaluate's on that query too (full ranking: the stored
#    metric the tuner chose on, printed beside it as a check).
# "x default" = wall time / the defaults' median wall time.
set -eu
cd "$(dirname "$0")/../.."
USERS=${USERS:-3000}
ITEMS=${ITEMS:-2000}
TRIALS=${TRIALS:-12}
EPOCHS=${EPOCHS:-6}
RUNS=${RUNS:-3}
BUDGET=${BUDGET:-}
DATA=${DATA:-}
SPACE=${SPACE:-}
space_arg=""
[ -n "$SPACE" ] && space_arg=", space => '$SPACE'"
q() { psql -X -q -At -v ON_ERROR_STOP=1 "$@"; }
median() { sort -g | awk '{a[NR]=$1} END {print (NR % 2) ? a[(NR+1)/2] : (a[NR/2] + a[NR/2+1]) / 2}'; }
timed() {
	local t0 t1
	t0=$(date +%s.%N)
	q -c "SET client_min_messages = warning" -c "$1" >/dev/null
	t1=$(date +%s.%N)
	echo "$t1 - $t0" | bc -l
}

echo "# $(date -u '+%Y-%m-%d %H:%M') UTC, load $(cut -d' ' -f1-3 /proc/loadavg), $(nproc) CPUs, userseq $(git rev-parse --short HEAD 2>/dev/null)$(git diff --quiet HEAD 2>/dev/null || echo ' (modified)')"
q >/dev/null <<SQL
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS userseq;
DROP TABLE IF EXISTS tb_seqs;
SELECT userseq_drop_model(name) FROM (SELECT DISTINCT name FROM models WHERE name LIKE 'tb_%') m;
SQL
if [ -n "$DATA" ]; then
	[ -r "$DATA" ] || { echo "DATA=$DATA: not a readable file" >&2; exit 1; }
	# the identity column numbers the lines in file order (COPY inserts in order)
	q -c "CREATE TEMP TABLE tb_lines (line_no bigint GENERATED ALWAYS AS IDENTITY, label text, ids text)" \
	  -c "\\copy tb_lines (label, ids) FROM '$DATA' WITH (FORMAT text, DELIMITER E'\\t')" \
	  -c "CREATE TABLE tb_seqs AS SELECT line_no AS user_id,
		string_to_array(btrim(ids), ' ')::bigint[]::userseq AS seq FROM tb_lines WHERE btrim(ids) <> ''"
	source="$DATA ($(sha256sum "$DATA" | cut -c1-8))"
else
	q -c "CREATE TABLE tb_seqs AS
SELECT user_id, userseq_agg(item_id, ts, behavior) AS seq
FROM userseq_generate_events($USERS, 1, $ITEMS) GROUP BY user_id"
	source="userseq_generate_events($USERS, 1, $ITEMS)"
fi
opts="{\"epochs\": $EPOCHS, \"threads\": 1}"
query='SELECT seq FROM tb_seqs ORDER BY user_id'
# the validation event as the target: the rows and targets training validates on
vquery='SELECT userseq_first(seq, userseq_length(seq) - 1) AS seq FROM tb_seqs WHERE userseq_length(seq) >= 3 ORDER BY user_id'
t_def=$(for r in $(seq "$RUNS"); do
	timed "SELECT count(*) FROM userseq_train('tb_default', '$query', 'next_item', '$opts')"
done | median)
t_tune=$(timed "SELECT count(*) FROM userseq_tune('tb_tuned', '$query', 'next_item', '$opts', $TRIALS$space_arg)")
names="tb_default tb_tuned"
if [ -n "$BUDGET" ]; then
	t_budget=$(timed "SELECT count(*) FROM userseq_tune('tb_budget', '$query', 'next_item', '$opts', $TRIALS, '$BUDGET'$space_arg)")
	names="$names tb_budget"
fi

echo "data: $source, $(q -c "SELECT count(*) || ' sequences, ' || sum(userseq_length(seq)) || ' events, ' ||
	(SELECT count(DISTINCT i) FROM tb_seqs, unnest(userseq_items(seq)) i) || ' items' FROM tb_seqs"), options $opts${SPACE:+, space $SPACE}"
# every stored model evaluated once per split; the baselines are those of the defaults' model
q -c "SET client_min_messages = warning" -c "DROP TABLE IF EXISTS tb_eval" -c "CREATE TABLE tb_eval (name text, split text, scorer text, protocol text, metric text, value float8)"
for n in $names; do
	q -c "SET client_min_messages = warning" \
	  -c "INSERT INTO tb_eval SELECT '$n', 'valid', * FROM userseq_evaluate('$n', '$vquery')" \
	  -c "INSERT INTO tb_eval SELECT '$n', 'test', * FROM userseq_evaluate('$n', '$query')"
done
echo
echo "| run | trials (pruned) | wall s | x default | valid NDCG@10 full | valid HR@10 full | valid NDCG@10 sampled:99 | test NDCG@10 full | test HR@10 full | test NDCG@10 sampled:99 | test HR@10 sampled:99 |"
echo "|---|---|---|---|---|---|---|---|---|---|---|"
# row MODEL SCORER: validation and test figures of one scorer, after $label $trials $secs $ratio
row() {
	local model=$1 scorer=$2 cols="" c
	for c in "valid full ndcg@10" "valid full hr@10" "valid sampled ndcg@10" "test full ndcg@10" \
			"test full hr@10" "test sampled ndcg@10" "test sampled hr@10"; do
		set -- $c
		cols="$cols (SELECT round(value::numeric, 4) FROM tb_eval WHERE name = '$model' AND scorer = '$scorer'
			AND split = '$1' AND protocol LIKE '$2%' AND metric = '$3'),"
	done
	q -F ' | ' -c "SELECT '| $label', '$trials', '$secs', '$ratio', ${cols%,}" | sed 's/$/ |/'
}
for n in $names; do
	case $n in
		tb_default) t=$t_def; label="defaults (userseq_train, median of $RUNS)";;
		tb_tuned) t=$t_tune; label="userseq_tune, $TRIALS trials";;
		tb_budget) t=$t_budget; label="userseq_tune, $TRIALS trials, time_budget $BUDGET";;
	esac
	trials=$(q -c "SELECT coalesce((SELECT (metrics->'tuning'->>'trials') || ' (' ||
		(SELECT count(*) FROM tuning_trials t WHERE t.tune_id = (metrics->'tuning'->>'tune_id')::bigint
		 AND t.status = 'pruned') || ')' FROM models WHERE name = '$n' AND deployed AND metrics ? 'tuning'), '1')")
	secs=$(printf %.1f "$t")
	ratio=$(printf %.1f "$(echo "$t / $t_def" | bc -l)")
	row "$n" model
done
trials="" secs="" ratio=""
label="markov (userseq_evaluate)"; row tb_default markov
label="popularity (userseq_evaluate)"; row tb_default popularity
echo
echo "stored validation NDCG@10 / HR@10 (models.metrics, what the tuner chose on) and the tuner's first trial:"
q -c "SELECT name, round((metrics->>'ndcg@10')::numeric, 4), round((metrics->>'hr@10')::numeric, 4),
	(metrics->>'best_epoch'), round((metrics->'tuning'->>'first_trial_metric')::numeric, 4)
FROM models WHERE name LIKE 'tb_%' AND deployed ORDER BY 1"
echo "trials of the tuned models (name|trial|epochs|valid metric|s|status|architecture if drawn):"
q -c "SELECT m.name, t.trial, t.epochs, round(t.valid_metric::numeric, 4), round(t.seconds::numeric, 1), t.status,
	coalesce(t.options->>'architecture', '')
FROM models m JOIN tuning_trials t ON t.tune_id = (m.metrics->'tuning'->>'tune_id')::bigint
WHERE m.name LIKE 'tb_%' AND m.deployed ORDER BY 1, 2"
echo "best options of the tuned model:"
q -c "SELECT options FROM models WHERE name = 'tb_tuned' AND deployed"
