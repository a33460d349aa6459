#!/bin/bash
# Warm start and init_from (issue 12): userseq_retrain {"warm_start": true} continues the
# deployed version's weights on the current data (new items get fresh rows, known items keep
# theirs, matched by id) and training_log numbers the continuation; userseq_train's
# "init_from" copies the compatible blocks of another model (next_item -> binary transfer), or
# only the blocks named in "copy", freezes named blocks, and names incompatible blocks in a
# clear error.
# Uses the cluster in the PG* environment; about 15 s.
set -u
db=us_warm_$$
cleanup() { psql -X -q -d postgres -c "DROP DATABASE IF EXISTS $db" >/dev/null 2>&1; }
trap cleanup EXIT
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
sqlerr() { # sql -> "SQLSTATE: message"
	command psql -X -q -At -d $db -v VERBOSITY=verbose -c "SET client_min_messages = warning" -c "$1" 2>&1 |
		sed -n 's/^ERROR:  \([0-9A-Z]\{5\}\): \(.*\)/\1: \2/p' | head -n 1
}

psql -X -q -d postgres -c "CREATE DATABASE $db" || exit 1
q -o /dev/null <<'SQL' || exit 1
CREATE EXTENSION userseq;
CREATE TABLE events AS SELECT * FROM userseq_generate_events(1500, 42, items => 500);
CREATE TABLE user_seqs AS SELECT user_id, userseq_agg(item_id, ts, behavior) AS seq
	FROM events WHERE ts < '2024-03-02' GROUP BY user_id;
-- the data of the first training lacks items 451..500: they arrive before the warm start
CREATE TABLE cur AS SELECT user_id, userseq_agg(item_id, ts, behavior) AS seq
	FROM events WHERE ts < '2024-03-02' AND item_id <= 450 GROUP BY user_id;
CREATE TABLE churn AS SELECT s.user_id, s.seq, NOT EXISTS (SELECT 1 FROM events e
	WHERE e.user_id = s.user_id AND e.ts >= '2024-03-02' AND e.behavior = 'buy') AS label FROM user_seqs s;
SELECT count(*) FROM userseq_train('ni', 'SELECT seq FROM cur ORDER BY user_id', 'next_item',
	'{"epochs": 8, "embedding_dim": 32, "num_filters": 32, "hidden_dim": 32, "deploy": true}');
TRUNCATE cur;
INSERT INTO cur SELECT * FROM user_seqs;
SQL

converged=$(q -c "SELECT valid_metric FROM training_log WHERE model = 'ni' AND version = 1 ORDER BY epoch DESC LIMIT 1")
# the network's figures (training_log's, and network_ndcg@10 beside the stored metric, which
# includes the default transition prior fitted after training)
q -o /dev/null -c "SELECT new_metric FROM userseq_retrain('ni', '{\"epochs\": 1, \"warm_start\": true}', true)"
q -o /dev/null -c "SELECT new_metric FROM userseq_retrain('ni', '{\"epochs\": 1}', true)"
warm=$(q -c "SELECT metrics->>'network_ndcg@10' FROM models WHERE name = 'ni' AND version = 2")
cold=$(q -c "SELECT metrics->>'network_ndcg@10' FROM models WHERE name = 'ni' AND version = 3")
echo "# ndcg@10 of the network: converged (8 epochs) $converged, warm start +1 epoch $warm, cold 1 epoch $cold"
check "the warm-started version's transition prior is its own (built from its data, as the cold run's), not the source's" \
	eq "$(q -c "SELECT a.metrics->>'transition_count' = b.metrics->>'transition_count' AND a.metrics->>'transition_count' <> c.metrics->>'transition_count'
		AND (a.metrics->>'transition_weight')::float8 > 0
		FROM models a, models b, models c WHERE a.name = 'ni' AND a.version = 2 AND b.name = 'ni' AND b.version = 3 AND c.name = 'ni' AND c.version = 1")" t
check "a 1-epoch warm start keeps the converged metric within 0.01" \
	awk -v w="$warm" -v c="$converged" 'BEGIN { exit !(w >= c - 0.01) }'
check "a cold 1-epoch run is far below (by more than 0.1)" \
	awk -v k="$cold" -v c="$converged" 'BEGIN { exit !(k < c - 0.1) }'
check "training_log numbers the continuation (run 2 continues run 1, the cold run starts over)" \
	eq "$(q -c "SELECT string_agg(DISTINCT version || ':' || training_run || ':' || coalesce(continues_run::text, '-'), ' ') FROM training_log WHERE model = 'ni'")" \
	"1:1:- 2:2:1 3:1:-"
check "the new items got fresh rows, the 450 known kept theirs (matched by id)" \
	eq "$(q -c "SELECT metrics->'warm_start'->>'item_rows_matched', metrics->'warm_start'->>'item_rows_new' FROM models WHERE name = 'ni' AND version = 2")" \
	"450|50"
check "warm_start is not stored with the new version's options" \
	eq "$(q -c "SELECT count(*) FROM models WHERE name = 'ni' AND options ? 'warm_start'")" "0"
check "a second warm start continues the deployed version (run 3, a cold one): training_run 2" \
	eq "$(q -c "SELECT count(*) FROM userseq_retrain('ni', '{\"epochs\": 1, \"warm_start\": true}', true)" \
		-c "SELECT training_run || ':' || continues_run FROM training_log WHERE model = 'ni' AND version = 4" | tail -n 1)" "2:3"

# init_from: next_item -> binary
q -o /dev/null -c "SELECT count(*) FROM userseq_train('churn_t', 'SELECT seq, label FROM churn ORDER BY user_id', 'binary',
	'{\"epochs\": 2, \"embedding_dim\": 32, \"num_filters\": 32, \"hidden_dim\": 32, \"recent_window\": 3,
	  \"init_from\": {\"model\": \"ni\", \"version\": 1, \"freeze\": [\"item_embedding\", \"conv\"]}}')" || fail=1
check "init_from copies the body by id, not another task's head, and records it" \
	eq "$(q -c "SELECT metrics->'init_from'->>'copied', metrics->'init_from'->>'frozen', metrics->'init_from'->>'version', metrics->'init_from'->>'item_rows_matched' FROM models WHERE name = 'churn_t'")" \
	'["item_embedding", "behavior_embedding", "conv", "dense"]|["item_embedding", "conv"]|1|450'
check "init_from is kept in the config" \
	eq "$(q -c "SELECT config->'init_from'->>'model' FROM models WHERE name = 'churn_t'")" "ni"
check "the transferred model scores" \
	eq "$(q -c "SELECT count(*) FROM churn WHERE userseq_predict((SELECT weights FROM models WHERE name = 'churn_t'), seq) BETWEEN 0 AND 1")" \
	"$(q -c "SELECT count(*) FROM churn")"

# init_from with "copy": only the named blocks, so the target may have another shape elsewhere
q -o /dev/null -c "SELECT count(*) FROM userseq_train('churn_items', 'SELECT seq, label FROM churn ORDER BY user_id', 'binary',
	'{\"epochs\": 1, \"embedding_dim\": 32, \"num_filters\": 16, \"hidden_dim\": 16,
	  \"init_from\": {\"model\": \"ni\", \"version\": 1, \"copy\": [\"item_embedding\"], \"freeze\": [\"item_embedding\"]}}')" || fail=1
check "init_from copy: only the item table is copied (other shapes allowed), matched by id, kept in the config" \
	eq "$(q -c "SELECT metrics->'init_from'->>'copied', metrics->'init_from'->>'frozen', metrics->'init_from'->>'item_rows_matched', config->'init_from'->>'copy' FROM models WHERE name = 'churn_items'")" \
	'["item_embedding"]|["item_embedding"]|450|["item_embedding"]'
check "init_from copy: freezing a block left out of copy is an error" \
	eq "$(sqlerr "SELECT count(*) FROM userseq_train('bad', 'SELECT seq, label FROM churn', 'binary', '{\"epochs\": 1, \"embedding_dim\": 32, \"init_from\": {\"model\": \"ni\", \"copy\": [\"item_embedding\"], \"freeze\": [\"conv\"]}}')")" \
	'22023: init_from model "ni": cannot freeze conv: not copied from the source'
check "init_from copy: an incompatible named block is still an error" \
	eq "$(sqlerr "SELECT count(*) FROM userseq_train('bad', 'SELECT seq, label FROM churn', 'binary', '{\"epochs\": 1, \"embedding_dim\": 32, \"num_filters\": 16, \"init_from\": {\"model\": \"ni\", \"copy\": [\"item_embedding\", \"conv\"]}}')")" \
	'42804: init_from model "ni" version 4: incompatible blocks conv'
check "init_from copy: an empty list and an unknown block are errors" \
	eq "$(sqlerr "SELECT count(*) FROM userseq_train('bad', 'SELECT seq, label FROM churn', 'binary', '{\"init_from\": {\"model\": \"ni\", \"copy\": []}}')")
$(sqlerr "SELECT count(*) FROM userseq_train('bad', 'SELECT seq, label FROM churn', 'binary', '{\"init_from\": {\"model\": \"ni\", \"copy\": [\"dense\", \"head\"]}}')")" \
	'22023: option "init_from.copy" must name at least one block
22023: unrecognized block "head" in option "init_from.copy"'
check "init_from copy: a named block one model lacks (next_item's head into binary) is an error, not skipped" \
	eq "$(sqlerr "SELECT count(*) FROM userseq_train('bad', 'SELECT seq, label FROM churn', 'binary', '{\"epochs\": 1, \"embedding_dim\": 32, \"init_from\": {\"model\": \"ni\", \"copy\": [\"item_embedding\", \"output\"]}}')")" \
	'22023: init_from model "ni" version 4: cannot copy output: not in both models'
check "incompatible shapes: an error naming the blocks and why" \
	eq "$(sqlerr "SELECT count(*) FROM userseq_train('bad', 'SELECT seq, label FROM churn', 'binary', '{\"epochs\": 1, \"embedding_dim\": 16, \"num_filters\": 32, \"hidden_dim\": 32, \"init_from\": {\"model\": \"ni\"}}')")" \
	'42804: init_from model "ni" version 4: incompatible blocks item_embedding, behavior_embedding, conv, dense'
check "freezing a block that was not copied is an error" \
	eq "$(sqlerr "SELECT count(*) FROM userseq_train('bad', 'SELECT seq, label FROM churn', 'binary', '{\"epochs\": 1, \"embedding_dim\": 32, \"num_filters\": 32, \"hidden_dim\": 32, \"recent_window\": 3, \"init_from\": {\"model\": \"ni\", \"freeze\": [\"output\"]}}')")" \
	'22023: init_from model "ni": cannot freeze output: not copied from the source'
check "an unknown block name is an error" \
	eq "$(sqlerr "SELECT count(*) FROM userseq_train('bad', 'SELECT seq, label FROM churn', 'binary', '{\"init_from\": {\"model\": \"ni\", \"freeze\": [\"convs\"]}}')")" \
	'22023: unrecognized block "convs" in option "init_from.freeze"'
check "a missing source version is an error" \
	eq "$(sqlerr "SELECT count(*) FROM userseq_train('bad', 'SELECT seq, label FROM churn', 'binary', '{\"init_from\": {\"model\": \"ni\", \"version\": 99}}')")" \
	'42704: init_from model "ni": version 99 does not exist'
check "warm_start belongs to userseq_retrain" \
	eq "$(sqlerr "SELECT count(*) FROM userseq_train('bad', 'SELECT seq, label FROM churn', 'binary', '{\"warm_start\": true}')")" \
	'22023: option "warm_start" is an option of userseq_retrain'
check "warm start after changed shapes names the blocks" \
	eq "$(sqlerr "SELECT * FROM userseq_retrain('ni', '{\"epochs\": 1, \"warm_start\": true, \"num_filters\": 16}')")" \
	'42804: warm start from model "ni" version 4: incompatible blocks conv, dense'
check "failed runs stored nothing" eq "$(q -c "SELECT count(*) FROM models WHERE name = 'bad'")" "0"
echo "1..$n"
exit $fail
