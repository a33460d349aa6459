#!/bin/bash
# Real time: events/s and per-event latency (p50 / p99) of inserts into an events table kept
# live by userseq_live_attach (benchmark, not a test). Needs the PG* environment of a cluster
# with userseq installed and pgbench.
#
#   RUNS=3 SECONDS_PER_RUN=8 bash test/bench/live_bench.sh
#
# Setup: USERS generated users (userseq_generate_events(USERS, 11, items => 3500), about 50
# events each) in lb_ev; a binary model (churn: no event in the last 30 days) and a regression
# model (number of later buys) trained on the first 60 days; next_item models on 3,500 items
# (the same users) and 50,000 items (userseq_generate_events(20000, 7, items => 50000)). The
# target lb_t is filled by userseq_live_rebuild, so each event appends to a sequence of typical
# length (max_len 100, the models' default).
# Each run: pgbench, 2 clients, SECONDS_PER_RUN s, one transaction per event (INSERT of one
# random event for a random user at now()), synchronous_commit = off (the commit's WAL flush
# would otherwise be most of what is measured). Configurations, alternating, RUNS rounds,
# medians; latency percentiles from pgbench's per-transaction log:
#   plain        no trigger
#   seq          trigger keeping the sequence only
#   seq+1        + the binary score
#   seq+2        + the binary and the regression score
#   seq+1+top10  seq+1, then SELECT userseq_recommend(next_item model, seq, 10) for that user
#                (3,500 and 50,000 items), as a second statement of the same transaction
#   plpgsql-seq, plpgsql-seq+1   the peer: issue 17's hand-written PL/pgSQL AFTER INSERT trigger
#                (INSERT ... ON CONFLICT DO UPDATE SET seq = userseq_last(l.seq || EXCLUDED.seq,
#                100) [, churn = userseq_predict('lb_churn', <the same>)])
# Then the backend CPU time per event (utime + stime of one backend from /proc over CPU_EVENTS
# single-row INSERTs in a DO loop, each committed, synchronous_commit off, medians of RUNS): on
# a shared machine this is the figure that depends least on the load.
set -eu
cd "$(dirname "$0")/../.."
RUNS=${RUNS:-3}
T=${SECONDS_PER_RUN:-8}
USERS=${USERS:-4000}
DIR=${BENCH_DIR:-/tmp/userseq_live_bench}
CONFIGS=${CONFIGS:-"plain seq seq+1 seq+2 seq+1+top10-3.5k seq+1+top10-50k plpgsql-seq plpgsql-seq+1"}
mkdir -p "$DIR"
chmod 777 "$DIR"
q() { psql -X -q -At -v ON_ERROR_STOP=1 "$@"; }
median() { sort -g | awk '{a[NR]=$1} END {print (NR % 2) ? a[(NR+1)/2] : (a[NR/2] + a[NR/2+1]) / 2}'; }

q -c "SET client_min_messages = warning; CREATE EXTENSION IF NOT EXISTS userseq"
echo "== userseq_live: events/s and latency per event, 2 clients; load at start: $(cut -d' ' -f1-3 /proc/loadavg)"
t0=$(date +%s)
if [ "$(q -c "SELECT count(*) FROM models WHERE name IN ('lb_churn', 'lb_buys', 'lb_ni', 'lb_ni50k') AND deployed")" != 4 ] ||
   [ "$(q -c "SELECT to_regclass('lb_ev') IS NOT NULL")" != t ]; then
	q >/dev/null <<SQL
SET client_min_messages = warning;
DROP TABLE IF EXISTS lb_ev, lb_t, lb_seqs, lb_seqs50k;
SELECT userseq_drop_model(name) FROM models WHERE name IN ('lb_churn', 'lb_buys', 'lb_ni', 'lb_ni50k') GROUP BY name;
CREATE TABLE lb_ev AS SELECT user_id, item_id, ts, behavior FROM userseq_generate_events($USERS, 11, items => 3500);
CREATE TABLE lb_seqs AS
SELECT user_id, userseq_agg(item_id, ts, behavior) FILTER (WHERE ts < '2024-03-01') AS seq,
       count(*) FILTER (WHERE ts >= '2024-03-01') = 0 AS churned,
       ln(1 + count(*) FILTER (WHERE ts >= '2024-03-01' AND behavior = 'buy')) AS buys
FROM lb_ev GROUP BY user_id;
SELECT count(*) FROM userseq_train('lb_churn', 'SELECT seq, churned AS label FROM lb_seqs', 'binary', '{"epochs": 2, "seed": 1, "time_gaps": true}');
SELECT count(*) FROM userseq_train('lb_buys', 'SELECT seq, buys AS label FROM lb_seqs', 'regression', '{"epochs": 2, "seed": 1}');
SELECT count(*) FROM userseq_train('lb_ni', 'SELECT userseq_agg(item_id, ts, behavior) AS seq FROM lb_ev GROUP BY user_id', 'next_item', '{"epochs": 1, "max_examples_per_seq": 10, "seed": 1}');
CREATE UNLOGGED TABLE lb_seqs50k AS SELECT user_id, userseq_agg(item_id, ts, behavior) AS seq FROM userseq_generate_events(20000, 7, items => 50000) GROUP BY user_id;
SELECT count(*) FROM userseq_train('lb_ni50k', 'SELECT seq FROM lb_seqs50k', 'next_item', '{"epochs": 1, "max_examples_per_seq": 10, "seed": 1}');
SQL
fi
q >/dev/null <<'SQL'
SET client_min_messages = warning;
DELETE FROM lb_ev WHERE ts > '2025-01-01';	-- events of earlier runs (the generated ones are in 2024)
DROP TABLE IF EXISTS lb_t;
CREATE TABLE lb_t (user_id bigint PRIMARY KEY, seq userseq, churn float8, buys float8, updated timestamptz);
SELECT userseq_live_attach('lb_ev', 'lb_t', '{"scores": {"churn": "lb_churn", "buys": "lb_buys"}}');
SELECT userseq_live_rebuild('lb_ev', 'lb_t');
VACUUM ANALYZE lb_ev, lb_t;
CREATE OR REPLACE FUNCTION lb_plpgsql_seq() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
	INSERT INTO lb_t AS l (user_id, seq, updated)
	VALUES (NEW.user_id, userseq(ARRAY[NEW.item_id], ARRAY[NEW.ts], ARRAY[NEW.behavior]), now())
	ON CONFLICT (user_id) DO UPDATE SET seq = userseq_last(l.seq || EXCLUDED.seq, 100), updated = now();
	RETURN NULL;
END $$;
CREATE OR REPLACE FUNCTION lb_plpgsql_seq1() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
	INSERT INTO lb_t AS l (user_id, seq, churn, updated)
	VALUES (NEW.user_id, userseq(ARRAY[NEW.item_id], ARRAY[NEW.ts], ARRAY[NEW.behavior]),
			userseq_predict('lb_churn', userseq(ARRAY[NEW.item_id], ARRAY[NEW.ts], ARRAY[NEW.behavior])), now())
	ON CONFLICT (user_id) DO UPDATE SET seq = userseq_last(l.seq || EXCLUDED.seq, 100),
		churn = userseq_predict('lb_churn', userseq_last(l.seq || EXCLUDED.seq, 100)), updated = now();
	RETURN NULL;
END $$;
SQL
echo "# setup $(( $(date +%s) - t0 )) s: $(q -c "SELECT count(*) || ' events, ' || (SELECT count(*) FROM lb_t) || ' users, mean length ' || (SELECT round(avg(userseq_length(seq)), 1) FROM lb_t) FROM lb_ev")"

insert="\\set u random(1, $USERS)
\\set i random(1, 3500)
\\set b random(1, 4)
INSERT INTO lb_ev (user_id, item_id, ts, behavior) VALUES (:u, :i, now(), (ARRAY['view', 'view', 'cart', 'buy'])[:b]);"
attach() {	# config
	q -c "SET client_min_messages = warning" -c "DROP TRIGGER IF EXISTS lb_plpgsql ON lb_ev" >/dev/null
	case $1 in
		plpgsql-*) q -c "SELECT userseq_live_detach('lb_ev', 'lb_t')" >/dev/null 2>&1
			q -c "CREATE TRIGGER lb_plpgsql AFTER INSERT ON lb_ev FOR EACH ROW EXECUTE FUNCTION lb_plpgsql_$([ "$1" = plpgsql-seq ] && echo seq || echo seq1)()" >/dev/null ;;
		plain) q -c "SELECT userseq_live_detach('lb_ev', 'lb_t')" >/dev/null 2>&1 ;;
		seq) q -c "SELECT userseq_live_attach('lb_ev', 'lb_t', '{\"max_len\": 100}')" >/dev/null ;;
		seq+2) q -c "SELECT userseq_live_attach('lb_ev', 'lb_t', '{\"max_len\": 100, \"scores\": {\"churn\": \"lb_churn\", \"buys\": \"lb_buys\"}}')" >/dev/null ;;
		*) q -c "SELECT userseq_live_attach('lb_ev', 'lb_t', '{\"max_len\": 100, \"scores\": {\"churn\": \"lb_churn\"}}')" >/dev/null ;;
	esac
}
script() {	# config -> pgbench script
	echo "$insert"
	case $1 in
		*top10-3.5k) echo "SELECT count(*) FROM lb_t t, LATERAL userseq_recommend('lb_ni', t.seq, 10) WHERE t.user_id = :u;" ;;
		*top10-50k) echo "SELECT count(*) FROM lb_t t, LATERAL userseq_recommend('lb_ni50k', t.seq, 10) WHERE t.user_id = :u;" ;;
	esac
}
for r in $(seq 1 "$RUNS"); do
	for c in $CONFIGS; do
		attach "$c"
		f="$DIR/bench_$(echo "$c" | tr -c "a-z0-9\n" _).sql"
		script "$c" >"$f"
		rm -f "$DIR"/pgbench_log.*
		out=$(cd "$DIR" && PGOPTIONS="-c synchronous_commit=off" pgbench -n -c 2 -j 2 -T "$T" -l -f "$f" 2>&1)
		tps=$(echo "$out" | awk '/^tps/ {print $3}')
		read -r p50 p99 < <(cat "$DIR"/pgbench_log.* | awk '{print $3}' | sort -n |
			awk '{a[NR]=$1} END {print a[int(NR*0.50)+1], a[int(NR*0.99)+1]}')
		echo "$c $tps $p50 $p99" >>"$DIR/results.$$"
		echo "# round $r $c: $tps events/s, p50 $p50 us, p99 $p99 us (load $(cut -d' ' -f1 /proc/loadavg))"
	done
done
CPU_EVENTS=${CPU_EVENTS:-10000}
CPU_CONFIGS=${CPU_CONFIGS:-"plain seq seq+1 seq+2 plpgsql-seq plpgsql-seq+1"}
cpu_per_event() {	# config -> backend CPU microseconds per event (needs the server on this machine)
	attach "$1"
	q <<SQL
SELECT pg_backend_pid() AS pid \\gset
\\o /dev/null
INSERT INTO lb_ev VALUES (1, 1, now(), 'view');
\\o
\\setenv PID :pid
\\! awk '{print \$14 + \$15}' /proc/\$PID/stat > $DIR/cpu0
SET synchronous_commit = off;
DO \$\$ BEGIN FOR i IN 1..$CPU_EVENTS LOOP
INSERT INTO lb_ev VALUES (1 + (random() * ($USERS - 1))::int, 1 + (random() * 3499)::int, now(), (ARRAY['view', 'view', 'cart', 'buy'])[1 + (random() * 3)::int]);
COMMIT;
END LOOP; END \$\$;
\\! awk '{print \$14 + \$15}' /proc/\$PID/stat > $DIR/cpu1
SQL
	echo $(( ($(cat "$DIR/cpu1") - $(cat "$DIR/cpu0")) * 1000000 / $(getconf CLK_TCK) / CPU_EVENTS ))
}
for r in $(seq 1 "$RUNS"); do
	for c in $CPU_CONFIGS; do
		us=$(cpu_per_event "$c")
		echo "cpu $c $us" >>"$DIR/results.$$"
		echo "# round $r $c: backend CPU $us us per event"
	done
done
attach seq+2
echo
echo "| per event (2 clients, synchronous_commit off) | events/s | vs plain | p50 | p99 |"
echo "|---|---|---|---|---|"
plain=$(awk '$1 == "plain" {print $2}' "$DIR/results.$$" | median)
for c in $CONFIGS; do
	tps=$(awk -v c="$c" '$1 == c {print $2}' "$DIR/results.$$" | median)
	p50=$(awk -v c="$c" '$1 == c {print $3}' "$DIR/results.$$" | median)
	p99=$(awk -v c="$c" '$1 == c {print $4}' "$DIR/results.$$" | median)
	printf "| %s | %'.0f | %.0f %% | %'.0f µs | %'.0f µs |\n" "$c" "$tps" "$(echo "$tps $plain" | awk '{print 100 * $1 / $2}')" "$p50" "$p99"
done
echo "# medians of $RUNS rounds of $T s; load at end: $(cut -d' ' -f1-3 /proc/loadavg)"
echo
echo "| backend CPU per event (one session, one INSERT per event) | µs |"
echo "|---|---|"
for c in $CPU_CONFIGS; do
	echo "| $c | $(awk -v c="$c" '$1 == "cpu" && $2 == c {print $3}' "$DIR/results.$$" | median) |"
done
rm -f "$DIR/results.$$"
