#!/bin/bash
# Real time under load: two pgbench clients insert thousands of random events (many of them late,
# some for the same user at the same moment) into a table with a userseq_live trigger; then every
# user's target.seq must equal userseq_last(userseq_agg(...), max_len) over the events, and every
# score userseq_predict on that sequence. Then one session's notifications are checked against a
# replay of its events: one NOTIFY per upward crossing of the threshold, with the new score.
# Runs against the cluster in the PG* environment (creates and drops its own objects).
set -eu
cd "$(dirname "$0")/../.."
psql() { command psql -X -q -v ON_ERROR_STOP=1 -At "$@"; }
N_TX=${LIVE_TX:-2000}	# per client
psql -c "CREATE EXTENSION IF NOT EXISTS userseq"
psql -c "SELECT userseq_drop_model('lc_bin'), userseq_drop_model('lc_reg')" >/dev/null 2>&1 || true
psql >/dev/null <<'SQL'
SET client_min_messages = warning;
DROP TABLE IF EXISTS lc_d, lc_ev, lc_t, lc_replay;
CREATE TABLE lc_d AS
SELECT u, userseq(ARRAY(SELECT ((u * 3 + e * 5) % 40 + 1)::int8 FROM generate_series(1, 3 + u % 9) e),
                  ARRAY(SELECT '2024-01-01'::timestamptz + e * interval '1 h' FROM generate_series(1, 3 + u % 9) e),
                  ARRAY(SELECT (ARRAY['view', 'cart', 'buy'])[1 + (u + e) % 3] FROM generate_series(1, 3 + u % 9) e)) AS seq,
       (u * 3) % 40 < 10 AS label, (u % 7)::float8 AS y
FROM generate_series(1, 400) u;
SELECT count(*) FROM userseq_train('lc_bin', 'SELECT seq, label FROM lc_d', 'binary', '{"epochs": 2, "embedding_dim": 8, "num_filters": 8, "hidden_dim": 8, "seed": 3, "time_gaps": true}');
SELECT count(*) FROM userseq_train('lc_reg', 'SELECT seq, y AS label FROM lc_d', 'regression', '{"epochs": 2, "embedding_dim": 8, "num_filters": 8, "hidden_dim": 8, "seed": 3}');
CREATE TABLE lc_ev (id bigserial, user_id bigint, item_id bigint, ts timestamptz, behavior text);
CREATE TABLE lc_t (user_id bigint PRIMARY KEY, seq userseq, risk float8, val float8, updated timestamptz);
SELECT userseq_live_attach('lc_ev', 'lc_t', '{"max_len": 20, "scores": {"risk": "lc_bin", "val": "lc_reg"}}');
SQL
script=$(mktemp)
cat >"$script" <<'PGB'
\set u random(1, 150)
\set i random(1, 60)
\set t random(0, 100000)
INSERT INTO lc_ev (user_id, item_id, ts, behavior) VALUES (:u, :i, '2024-01-01'::timestamptz + :t * interval '1 s', (ARRAY['view', 'cart', 'buy', NULL])[1 + :i % 4]);
PGB
start=$(date +%s%N)
# commits without waiting for the WAL flush: the test is about correctness, not durability
PGOPTIONS="${PGOPTIONS:-} -c synchronous_commit=off" pgbench -n -c 2 -j 2 -t "$N_TX" -f "$script" >/dev/null
rm -f "$script"
echo "# $((2 * N_TX)) events from 2 clients in $(( ($(date +%s%N) - start) / 1000000 )) ms"
fail=0
check() {	# name, query that returns 0 when the property holds
	local got
	got=$(psql -c "$2")
	if [ "$got" = 0 ]; then echo "ok - $1"; else echo "not ok - $1 ($got violations)"; fail=1; fi
}
check "every event is in the events table" "SELECT $((2 * N_TX)) - count(*) FROM lc_ev"
check "one target row per user, with every user present" \
	"SELECT count(*) FROM (SELECT DISTINCT user_id FROM lc_ev) e FULL JOIN lc_t t USING (user_id) WHERE e.user_id IS NULL OR t.user_id IS NULL"
check "target.seq = userseq_last(userseq_agg(events), max_len) for every user" \
	"SELECT count(*) FROM lc_t t JOIN (SELECT user_id, userseq_last(userseq_agg(item_id, ts, behavior), 20) AS seq FROM lc_ev GROUP BY user_id) e USING (user_id) WHERE t.seq IS DISTINCT FROM e.seq"
check "every score = userseq_predict on that sequence" \
	"SELECT count(*) FROM lc_t WHERE risk IS DISTINCT FROM userseq_predict('lc_bin', seq) OR val IS DISTINCT FROM userseq_predict('lc_reg', seq)"
check "late events were part of the run" \
	"SELECT CASE WHEN count(*) FILTER (WHERE late) > 500 THEN 0 ELSE 1 END FROM (SELECT ts < max(ts) OVER (PARTITION BY user_id ORDER BY id ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING) AS late FROM lc_ev) x"
check "sequences were cut at max_len" "SELECT CASE WHEN count(*) FILTER (WHERE userseq_length(seq) = 20) > 50 THEN 0 ELSE 1 END FROM lc_t"

# notifications: one session, user 100000, 40 events; threshold = median of the replayed scores
psql >/dev/null <<'SQL'
CREATE TEMP TABLE lc_plan AS
SELECT k, (k * 7 % 45 + 1)::bigint AS item, '2024-02-01'::timestamptz + k * interval '1 min' AS ts,
       (ARRAY['view', 'cart', 'buy'])[1 + k % 3] AS behavior
FROM generate_series(1, 40) k;
CREATE TABLE lc_replay AS
SELECT k, userseq_predict('lc_bin', (SELECT userseq_last(userseq_agg(item, ts, behavior), 20) FROM lc_plan p2 WHERE p2.k <= p.k)) AS score
FROM lc_plan p;
SQL
thr=$(psql -c "SELECT percentile_disc(0.5) WITHIN GROUP (ORDER BY score) FROM lc_replay")
psql -c "SELECT userseq_live_attach('lc_ev', 'lc_t', '{\"max_len\": 20, \"scores\": {\"risk\": \"lc_bin\", \"val\": \"lc_reg\"}, \"notify\": [{\"column\": \"risk\", \"above\": $thr, \"channel\": \"lc_alert\"}]}')" >/dev/null
expected=$(psql -c "SELECT string_agg(score::text, ' ' ORDER BY k) FROM (SELECT k, score, lag(score) OVER (ORDER BY k) AS prev FROM lc_replay) r WHERE score > $thr AND (prev IS NULL OR prev <= $thr)")
got=$( (echo "LISTEN lc_alert;"
	for k in $(seq 1 40); do
		echo "INSERT INTO lc_ev (user_id, item_id, ts, behavior) SELECT 100000, item, ts, behavior FROM pg_temp.lc_plan WHERE k = $k;"
	done) | { command psql -X -q -v ON_ERROR_STOP=1 -c "CREATE TEMP TABLE lc_plan AS SELECT k, (k * 7 % 45 + 1)::bigint AS item, '2024-02-01'::timestamptz + k * interval '1 min' AS ts, (ARRAY['view', 'cart', 'buy'])[1 + k % 3] AS behavior FROM generate_series(1, 40) k" -f - 2>&1; } |
	sed -n 's/.*payload "{"user": 100000, "column": "risk", "old": [^,]*, "new": \([^}]*\)}".*/\1/p' | tr '\n' ' ' | sed 's/ $//')
n_expected=$(echo "$expected" | wc -w)
if [ -n "$expected" ] && [ "$got" = "$expected" ] && [ "$n_expected" -lt 40 ]; then
	echo "ok - $n_expected notifications, one per upward crossing of $thr, with the new score"
else
	echo "not ok - notifications: got [$got], expected [$expected]"; fail=1
fi
psql -c "SELECT userseq_live_detach('lc_ev', 'lc_t')" >/dev/null
psql -c "DROP TABLE lc_d, lc_ev, lc_t, lc_replay"
psql -c "SELECT userseq_drop_model('lc_bin') + userseq_drop_model('lc_reg')" >/dev/null
exit $fail
