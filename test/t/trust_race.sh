#!/bin/bash
# Issue 10.1: two roles training the same new model name at the same time must end with one
# owner. Real concurrent sessions (psql reading from a fifo each) with explicit interleavings:
#   1. bob trains "x" inside an open transaction (READ COMMITTED); alice trains "x" and blocks
#      on the catalog lock; bob commits: alice must get 42501, not version 2 of bob's model;
#   2. the same with alice in REPEATABLE READ, her snapshot taken before bob's commit: she
#      must get an error (no row of hers is stored);
#   3. plain overlapping runs (no explicit transaction), 3 rounds: exactly one role wins.
# Runs against the cluster in the PG* environment, in its own database.
set -u
db=us_race_$$
tmp=$(mktemp -d)
declare -A FD
cleanup() {
	for n in "${!FD[@]}"; do eval "exec ${FD[$n]}>&-"; done
	wait 2>/dev/null
	psql -X -q -d postgres -c "DROP DATABASE IF EXISTS $db" >/dev/null 2>&1
	psql -X -q -d postgres -c "DROP ROLE IF EXISTS us_race_alice" -c "DROP ROLE IF EXISTS us_race_bob" >/dev/null 2>&1
	rm -rf "$tmp"
}
trap cleanup EXIT
fails=0
ok() { echo "ok - $*"; }
notok() { echo "not ok - $*"; fails=$((fails + 1)); }
q() { psql -X -At -d $db -c "$1"; }

# a session: psql reading SQL from a fifo, as role $2, output in $tmp/$1.out
open_session() {
	local f
	mkfifo "$tmp/$1.in"
	PGAPPNAME=us_race_$1 psql -X -At -d $db -f "$tmp/$1.in" >"$tmp/$1.out" 2>&1 &
	exec {f}>"$tmp/$1.in"
	FD[$1]=$f
	send "$1" "SET client_min_messages = warning; SET ROLE $2;"
}
send() { printf '%s\n' "$2" >&"${FD[$1]}"; }
# waits (up to 60 s) until session $1 has run everything sent so far
sync_session() {
	local mark="@@sync$RANDOM$RANDOM"
	send "$1" "\\echo $mark"
	for _ in $(seq 600); do grep -qx "$mark" "$tmp/$1.out" && return 0; sleep 0.1; done
	echo "timeout waiting for session $1"; cat "$tmp/$1.out"; return 1
}
close_session() { eval "exec ${FD[$1]}>&-"; unset "FD[$1]"; rm -f "$tmp/$1.in"; }
# waits (up to 60 s) until session $1 waits for a heavyweight lock
wait_lock() {
	for _ in $(seq 600); do
		[ "$(q "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'us_race_$1' AND wait_event_type = 'Lock'")" != 0 ] && return 0
		sleep 0.1
	done
	return 1
}
owners() { q "SELECT string_agg(version || '|' || owner || '|' || deployed, ' ' ORDER BY version) FROM models WHERE name = '$1'"; }

psql -X -q -d postgres -c "CREATE DATABASE $db" || exit 1
psql -X -q -o /dev/null -d $db -v ON_ERROR_STOP=1 <<'SQL' || exit 1
SET client_min_messages = warning;
DROP ROLE IF EXISTS us_race_alice;
DROP ROLE IF EXISTS us_race_bob;
CREATE ROLE us_race_alice;
CREATE ROLE us_race_bob;
CREATE EXTENSION userseq;
CREATE TABLE d AS
SELECT u, userseq(ARRAY(SELECT ((u * 3 + e * 5) % 40 + 1)::int8 FROM generate_series(1, 3 + u % 9) e)) AS seq,
       (u * 3) % 40 < 10 AS label FROM generate_series(1, 300) u;
GRANT SELECT ON d TO PUBLIC;
SQL
train="SELECT count(*) FROM userseq_train('NAME', 'SELECT seq, label FROM d', 'binary', '{\"epochs\": 1, \"embedding_dim\": 8, \"num_filters\": 8, \"hidden_dim\": 8}');"

# 1. bob's open transaction, alice blocked behind it
open_session bob us_race_bob
open_session alice us_race_alice
send bob "BEGIN; ${train//NAME/x1}"
sync_session bob || exit 1
send alice "${train//NAME/x1}"
if wait_lock alice; then
	send bob "COMMIT;"
	sync_session bob && sync_session alice || exit 1
	o=$(owners x1)
	if [ "$o" = "1|us_race_bob|true" ] && grep -q 'permission denied for model "x1"' "$tmp/alice.out"; then
		ok "open transaction: bob owns x1 alone ($o), alice was denied"
	else
		notok "open transaction: x1 is '$o'; alice saw: $(grep -v '^@@' "$tmp/alice.out" | tr '\n' ' ')"
	fi
else
	notok "alice never waited for bob's catalog lock"
	send bob "ROLLBACK;"
fi
close_session bob
close_session alice

# 2. alice in REPEATABLE READ, snapshot before bob's commit
open_session bob us_race_bob
open_session alice us_race_alice
send alice "BEGIN ISOLATION LEVEL REPEATABLE READ; SELECT count(*) FROM models;"
sync_session alice || exit 1
send bob "BEGIN; ${train//NAME/x2}"
sync_session bob || exit 1
send alice "${train//NAME/x2}"
if wait_lock alice; then
	send bob "COMMIT;"
	sync_session bob && sync_session alice || exit 1
	send alice "COMMIT;"
	sync_session alice || exit 1
	o=$(owners x2)
	if [ "$o" = "1|us_race_bob|true" ] && grep -q 'ERROR' "$tmp/alice.out"; then
		ok "repeatable read: bob owns x2 alone ($o), alice got $(grep -m1 ERROR "$tmp/alice.out" | cut -c1-80)"
	else
		notok "repeatable read: x2 is '$o'; alice saw: $(grep -v '^@@' "$tmp/alice.out" | tr '\n' ' ')"
	fi
else
	notok "alice (repeatable read) never waited for bob's catalog lock"
	send bob "ROLLBACK;"
fi
close_session bob
close_session alice

# 3. plain overlapping runs
for round in 1 2 3; do
	name=x3_$round
	psql -X -At -d $db -c "SET client_min_messages = warning; SET ROLE us_race_bob; ${train//NAME/$name}" >"$tmp/b$round" 2>&1 &
	b=$!
	psql -X -At -d $db -c "SET client_min_messages = warning; SET ROLE us_race_alice; ${train//NAME/$name}" >"$tmp/a$round" 2>&1 &
	a=$!
	wait $b $a
	o=$(owners $name)
	n_owners=$(q "SELECT count(DISTINCT owner) FROM models WHERE name = '$name'")
	denied=$(cat "$tmp/a$round" "$tmp/b$round" | grep -c 'permission denied for model')
	if [ "$n_owners" = 1 ] && [ "$denied" = 1 ] && [ "$(q "SELECT count(*) FROM models WHERE name = '$name'")" = 1 ]; then
		ok "overlapping round $round: one owner ($o), the other role denied"
	else
		notok "overlapping round $round: $name is '$o', $denied denied"
	fi
done

[ $fails = 0 ] && echo "PASS trust_race" || echo "FAIL trust_race: $fails failed"
exit $((fails > 0))
