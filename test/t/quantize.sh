#!/bin/bash
# userseq_quantize (issue 12): an int8 copy of a stored version as the next version (not
# deployed), >= 3.5x smaller at the default shapes, the validation metric of both recorded on a
# query or, without one, on the validation split training held out (reconstructed, and a
# warning with the reason when it cannot be), refused when the loss exceeds the tolerance
# (stored with a warning on request), and every scoring function running on it unchanged.
# Uses the cluster in the PG* environment.
set -u
db=us_quant_$$
cleanup() { psql -X -q -d postgres -c "DROP DATABASE IF EXISTS $db" >/dev/null 2>&1; }
trap cleanup EXIT
[ -n "${KEEP:-}" ] && trap - EXIT
cleanup
q() { PGOPTIONS="-c client_min_messages=warning" command psql -X -q -At -v ON_ERROR_STOP=1 -d $db "$@"; }
n=0
fail=0
check() {
	n=$((n + 1))
	local name=$1
	shift
	if "$@"; then echo "ok $n - $name"; return 0; fi
	echo "not ok $n - $name"
	fail=1
	return 1
}
eq() { [ "$1" = "$2" ] || { echo "#   got '$1', want '$2'"; return 1; }; }
sqlerr() {
	command psql -X -q -At -d $db -v VERBOSITY=verbose -c "SET client_min_messages = warning" -c "$1" 2>&1 |
		sed -n 's/^ERROR:  \([0-9A-Z]\{5\}\): \(.*\)/\1: \2/p' | head -n 1
}

psql -X -q -d postgres -c "CREATE DATABASE $db" || exit 1
q -o /dev/null <<'SQL' || exit 1
CREATE EXTENSION userseq;
CREATE TABLE events AS SELECT * FROM userseq_generate_events(1000, 42, items => 1000);
CREATE TABLE s AS SELECT user_id, userseq_agg(item_id, ts, behavior) AS seq,
	count(*) FILTER (WHERE behavior = 'buy')::float8 AS buys FROM events WHERE ts < '2024-03-02' GROUP BY user_id;
CREATE TABLE churn AS SELECT s.user_id, s.seq, NOT EXISTS (SELECT 1 FROM events e
	WHERE e.user_id = s.user_id AND e.ts >= '2024-03-02' AND e.behavior = 'buy') AS label FROM s;
-- default shapes (the table of option defaults, include/userseq/us_defaults.h)
SELECT count(*) FROM userseq_train('c', 'SELECT seq, label FROM churn WHERE user_id % 5 <> 0 ORDER BY user_id', 'binary', '{"epochs": 3, "deploy": true}');
SELECT count(*) FROM userseq_train('ni', 'SELECT seq FROM s WHERE user_id % 5 <> 0 ORDER BY user_id', 'next_item', '{"epochs": 3, "deploy": true}');
-- a time split: the held-out users are those whose last event is at or after the cutoff
SELECT count(*) FROM userseq_train('ct', 'SELECT seq, label FROM churn WHERE user_id % 5 <> 0 ORDER BY user_id', 'binary', '{"epochs": 2, "embedding_dim": 32, "num_filters": 32, "hidden_dim": 32, "validation": {"method": "time", "cutoff": "2024-02-29 00:00:00+00"}}');
SELECT count(*) FROM userseq_train('r', 'SELECT seq, buys AS label FROM s WHERE user_id % 5 <> 0 ORDER BY user_id', 'regression', '{"epochs": 2, "embedding_dim": 16, "num_filters": 16, "hidden_dim": 16, "deploy": true}');
SQL

check "userseq_quantize stores the next version, not deployed" \
	eq "$(q -c "SELECT userseq_quantize('c', query => 'SELECT seq, label FROM churn WHERE user_id % 5 = 0')" \
		-c "SELECT string_agg(version || ':' || deployed, ' ' ORDER BY version) FROM models WHERE name = 'c'" | tail -n 1)" "1:true 2:false"
check "binary: >= 3.5x smaller at the default shapes, stored and measured sizes agree" \
	eq "$(q -c "SELECT (m.metrics->'quantized'->>'bytes_fp32')::float8 / length(m.weights) >= 3.5
		AND (m.metrics->'quantized'->>'bytes_int8')::int = length(m.weights)
		AND (m.metrics->'quantized'->>'bytes_fp32')::int = (SELECT length(weights) FROM models WHERE name = 'c' AND version = 1)
		FROM models m WHERE name = 'c' AND version = 2")" t
echo "# $(q -c "SELECT name, metrics->'quantized' FROM models WHERE name = 'c' AND version = 2")"
check "binary: ROC AUC of both recorded, within 0.005" \
	eq "$(q -c "SELECT abs((metrics->'quantized'->>'metric_fp32')::float8 - (metrics->'quantized'->>'metric_int8')::float8) <= 0.005
		AND metrics->'quantized'->>'metric' = 'roc_auc' AND (metrics->'quantized'->>'eval_rows')::int = (SELECT count(*) FROM churn WHERE user_id % 5 = 0)
		FROM models WHERE name = 'c' AND version = 2")" t
check "the source's metrics are kept beside it" \
	eq "$(q -c "SELECT (a.metrics - 'quantized') = b.metrics FROM models a, models b WHERE a.name = 'c' AND a.version = 2 AND b.name = 'c' AND b.version = 1")" "t"
q -o /dev/null -c "SELECT userseq_deploy('c', 2)"
check "predict / proba / class / embed / explain by name on the deployed int8 version, close to fp32" \
	eq "$(q -c "SELECT max(abs(userseq_predict('c', seq) - userseq_predict(v1.weights, seq))) < 0.01
		AND bool_and(userseq_predict_class('c', seq) IS NOT NULL) AND bool_and(userseq_predict_proba('c', seq) IS NOT NULL)
		AND bool_and(cardinality(userseq_embed('c', seq)) = cardinality(userseq_embed(v1.weights, seq)))
		AND (SELECT count(*) FROM userseq_explain('c', (SELECT seq FROM churn WHERE user_id = 7))) > 0
		FROM churn, models v1 WHERE v1.name = 'c' AND v1.version = 1")" "t"
check "userseq_evaluate runs on the int8 version" \
	eq "$(q -c "SELECT count(*) > 0 FROM userseq_evaluate('c', 'SELECT seq, label FROM churn WHERE user_id % 5 = 0') WHERE metric = 'roc_auc'")" "t"

q -o /dev/null -c "SELECT userseq_quantize('ni', query => 'SELECT seq FROM s WHERE user_id % 5 = 0')"
# the default transition prior's table (8 bytes a source and a transition, counts) is not
# quantized: the ratio is the rest's; the table is there in both (flags bit 0; bit 1, the repeat
# prior's weight, may be set too)
check "next_item: NDCG@10 recorded within 0.005, >= 3.5x smaller besides the transition table" \
	eq "$(q -c "SELECT abs((metrics->'quantized'->>'metric_fp32')::float8 - (metrics->'quantized'->>'metric_int8')::float8) <= 0.005
		AND ((metrics->'quantized'->>'bytes_fp32')::float8 - (metrics->>'transition_bytes')::float8)
			/ (length(weights) - (metrics->>'transition_bytes')::float8) >= 3.5
		AND (metrics->>'transition_weight')::float8 > 0 AND get_byte(weights, 12) & 1 = 1
		FROM models WHERE name = 'ni' AND version = 2")" t
q -o /dev/null -c "SELECT userseq_deploy('ni', 2)"
check "recommend on the int8 version: the same top 5 as the fp32 version for most users" \
	eq "$(q -c "SELECT count(*) FILTER (WHERE a = b) >= 0.8 * count(*) FROM (SELECT user_id,
		(SELECT array_agg(item ORDER BY rank) FROM userseq_recommend('ni', seq, 5)) a,
		(SELECT array_agg(item ORDER BY rank) FROM userseq_recommend((SELECT weights FROM models WHERE name = 'ni' AND version = 1), seq, 5)) b
		FROM s WHERE user_id % 10 = 0) t")" "t"

# the tolerance: refused iff the recorded loss exceeds it
q -o /dev/null -c "SELECT userseq_quantize('r', 1, 'SELECT seq, buys FROM s WHERE user_id % 5 = 0', 0, 'warn')"
loss=$(q -c "SELECT metrics->'quantized'->>'loss' FROM models WHERE name = 'r' AND version = 2")
err=$(sqlerr "SELECT userseq_quantize('r', 1, 'SELECT seq, buys FROM s WHERE user_id % 5 = 0', 0)")
echo "# regression: rmse loss of the int8 copy $loss; with tolerance 0: ${err:-stored}"
check "tolerance 0: refused (22003, nothing stored) exactly when the recorded loss is > 0" \
	eval 'if awk -v l="$loss" "BEGIN { exit !(l > 0) }"; then
		case "$err" in 22003:*"more than the tolerance 0"*) true ;; *) false ;; esac &&
		eq "$(q -c "SELECT max(version) FROM models WHERE name = '"'"'r'"'"'")" "2"
	else [ -z "$err" ]; fi'
# without a query: the validation split training held out
qv() { q -c "SELECT metrics->'quantized'->>'$2' FROM models WHERE name = '$1' AND version = (SELECT max(version) FROM models WHERE name = '$1')"; }
q -o /dev/null -c "SELECT userseq_quantize('c', 1)"
check "no query, random split: evaluated on the held-out split, fp32 equal to what training recorded on it" \
	eq "$(q -c "SELECT a.metrics->'quantized'->>'evaluated_on', (a.metrics->'quantized'->>'eval_rows')::int = (b.metrics->>'valid_sequences')::int,
		abs((a.metrics->'quantized'->>'metric_fp32')::float8 - (b.metrics->>'roc_auc')::float8) < 1e-9,
		(a.metrics->'quantized'->>'metric_fp32_recorded')::float8 = (b.metrics->>'roc_auc')::float8
		FROM models a, models b WHERE a.name = 'c' AND a.version = 3 AND b.name = 'c' AND b.version = 1")" "validation split|t|t|t"
q -o /dev/null -c "SET TimeZone = 'America/New_York'" -c "SELECT userseq_quantize('ct')"
held="SELECT user_id FROM events WHERE ts < '2024-03-02' GROUP BY user_id HAVING max(ts) >= '2024-02-29 00:00:00+00'"
echo "# time split: $(qv ct eval_rows) held-out rows, roc_auc fp32 $(qv ct metric_fp32), int8 $(qv ct metric_int8)"
check "no query, time split (quantized in another TimeZone): the recorded int8 ROC AUC is the int8 version's on the held-out users" \
	eq "$(q -c "SELECT count(*) = (m.metrics->'quantized'->>'eval_rows')::int AND count(*) > 50,
		abs(userseq_auc(userseq_predict(m.weights, c.seq), c.label) - (m.metrics->'quantized'->>'metric_int8')::float8) < 1e-9,
		abs(userseq_auc(userseq_predict(f.weights, c.seq), c.label) - (m.metrics->'quantized'->>'metric_fp32')::float8) < 1e-9
		FROM churn c, models m, models f WHERE m.name = 'ct' AND m.version = 2 AND f.name = 'ct' AND f.version = 1
		AND c.user_id % 5 <> 0 AND c.user_id IN ($held) GROUP BY m.metrics")" "t|t|t"
q -o /dev/null -c "SELECT userseq_quantize('ni', 1)"
check "no query, next_item (leave-one-out): NDCG@10 of both on the held-out events, fp32 equal to training's" \
	eq "$(q -c "SELECT a.metrics->'quantized'->>'metric', (a.metrics->'quantized'->>'eval_rows')::int = (b.metrics->>'valid_sequences')::int,
		abs((a.metrics->'quantized'->>'metric_fp32')::float8 - (b.metrics->>'ndcg@10')::float8) < 1e-9,
		abs((a.metrics->'quantized'->>'metric_fp32')::float8 - (a.metrics->'quantized'->>'metric_int8')::float8) <= 0.005
		FROM models a, models b WHERE a.name = 'ni' AND a.version = 3 AND b.name = 'ni' AND b.version = 1")" "ndcg@10|t|t|t"

# the split cannot be reconstructed: stored with a warning that says why, nothing compared
warn_of() { command psql -X -q -At -d $db -c "SET client_min_messages = warning" -c "BEGIN" -c "$1" -c "$2" -c "ROLLBACK" 2>&1 | grep -E '^(WARNING|DETAIL|ERROR)' | tr '\n' ' '; }
w=$(warn_of "UPDATE churn SET label = NOT label WHERE user_id % 50 = 1" "SELECT userseq_quantize('c', 1)")
echo "# changed labels: $w"
check "changed labels: a warning naming the mismatch with training's figure, no metric recorded" \
	eval 'case "$w" in "WARNING:  the int8 copy of \"c\" version 1 is stored without a validation metric"*"training recorded"*) true ;; *) false ;; esac'
w=$(warn_of "DELETE FROM churn WHERE user_id = 3" "SELECT userseq_quantize('c', 1)")
check "a deleted row: a warning naming the changed row count" \
	eval 'case "$w" in *"the training query now gives 799 rows, training had 800"*) true ;; *) false ;; esac'
check "a dropped table: a warning with the query's error, the reason recorded" \
	eq "$(command psql -X -q -At -d $db -c "SET client_min_messages = error" -c "BEGIN" -c "DROP TABLE churn" -c "SELECT userseq_quantize('c', 1)" \
		-c "SELECT metrics->'quantized'->>'metric' IS NULL, metrics->'quantized'->>'not_evaluated' FROM models WHERE name = 'c' ORDER BY version DESC LIMIT 1" -c "ROLLBACK" | tail -n 1)" \
	't|reading the stored training query failed (42P01: relation "churn" does not exist)'
check "an imported model has no training query: a warning, nothing compared" \
	eval 'case "$(warn_of "SELECT userseq_import('"'imp'"', weights) FROM models WHERE name = '"'c'"' AND version = 1" "SELECT userseq_quantize('"'imp'"')")" in
		*"DETAIL:  Cause: the model has no stored training query (an imported model)."*) true ;; *) false ;; esac'

# a hostile tiny tolerance on the validation split: refused iff the int8 copy loses anything
q -o /dev/null -c "SET client_min_messages = error" -c "SELECT userseq_quantize('r', 1, tolerance => 0, on_exceed => 'warn')"
loss=$(qv r loss)
err=$(sqlerr "SELECT userseq_quantize('r', 1, tolerance => 1e-12)")
echo "# regression, validation split: rmse loss of the int8 copy $loss; with tolerance 1e-12: ${err:-stored}"
check "no query, tolerance 1e-12: refused (22003) exactly when the loss on the split is > 1e-12, stored at tolerance = loss" \
	eval 'if awk -v l="$loss" "BEGIN { exit !(l > 1e-12) }"; then
		case "$err" in 22003:*"on the validation split), more than the tolerance 1e-12"*) true ;; *) false ;; esac &&
		[ -z "$(sqlerr "SELECT userseq_quantize('"'r'"', 1, tolerance => $loss)")" ]
	else [ -z "$err" ]; fi'
check "an int8 version is not quantized again" \
	eq "$(sqlerr "SELECT userseq_quantize('c', 2)")" '55000: model "c" version 2 is already int8'
check "on_exceed must be error or warn" \
	eq "$(sqlerr "SELECT userseq_quantize('c', 1, on_exceed => 'ignore')")" '22023: on_exceed must be "error" or "warn", not "ignore"'
check "an infinite or NaN tolerance is an error (was a json syntax error once the metric was written)" \
	eq "$(sqlerr "SELECT userseq_quantize('c', 1, 'SELECT seq, label FROM churn', 'Infinity')")|$(sqlerr "SELECT userseq_quantize('c', 1, tolerance => 'NaN')")" \
	'22023: tolerance must be a finite number >= 0|22023: tolerance must be a finite number >= 0'
before=$(q -c "SELECT max(version) FROM models WHERE name = 'c'")
check "a query whose labels are all one class: 22023 naming the undefined metric (was a json syntax error), nothing stored" \
	eq "$(sqlerr "SELECT userseq_quantize('c', 1, 'SELECT seq, true FROM churn', on_exceed => 'warn')" | sed 's/ (fp32.*//')|$(q -c "SELECT max(version) FROM models WHERE name = 'c'")" \
	"22023: the evaluation query gives no roc_auc to compare|$before"
check "an unknown version is an error" \
	eq "$(sqlerr "SELECT userseq_quantize('c', 9)")" '42704: model "c" has no version 9'
# int8 covers the text-CNN's tensors only: a sasrec model is refused, nothing stored
q -o /dev/null -c "SELECT count(*) FROM userseq_train('sas', 'SELECT seq FROM s WHERE user_id % 5 <> 0 ORDER BY user_id', 'next_item', '{\"architecture\": \"sasrec\", \"epochs\": 1, \"embedding_dim\": 16, \"max_len\": 16}')"
check "a sasrec model is not quantized (0A000, nothing stored)" \
	eq "$(sqlerr "SELECT userseq_quantize('sas', 1)") $(q -c "SELECT count(*) FROM models WHERE name = 'sas'")" \
	'0A000: could not quantize model "sas" version 1: not supported for this model 1'
echo "1..$n"
exit $fail
