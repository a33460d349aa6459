#!/bin/bash
# userseq on a local Citus cluster, checked against one plain node on identical data.
#
#   bash test/citus/run.sh            (PG_CONFIG picks the PostgreSQL 15 installation; Citus and
#                                      userseq must be installed into it)
#
# Starts a coordinator and two workers (127.0.0.1, ports CITUS_PORT.. CITUS_PORT+2, data
# directories under a temporary directory, shared_preload_libraries = citus) and one plain node
# (CITUS_PORT+3), creates userseq on every node, loads the same generated event log on both
# sides (events distributed by user_id), runs the checks below, prints "ok N - ..." lines and a
# throughput table, and stops everything it started. Without Citus it prints one line and
# exits 0 (Debian 12 does not package Citus: README "Scale-out with Citus" says how to build it).
#   1. sequence building runs inside the shard tasks (EXPLAIN), co-located INSERT ... SELECT
#      stays on the workers, and the sequences equal the single node's;
#   2. training on the coordinator reads the distributed table: identical weights;
#   3. by-value scoring, recommendation and embedding joined to a reference table filled by
#      userseq_publish run on the workers with results identical to the single node, and the
#      reference table follows a deploy;
#   4. userseq_evaluate over a distributed query gives the single node's metrics;
#   5. by-name scoring of a distributed table fails with an error that names the by-value form;
#   6. the by-value model is decoded once per worker backend (userseq_cache_stats() of each
#      backend that scored, read in the scoring query's transaction), not once per row.
# Then the same by-value scoring query is timed on the cluster and on the single node,
# alternating (CITUS_BENCH_RUNS runs, medians). CITUS_USERS (default 22000, just over 1M events)
# sizes the checks' data; CITUS_BENCH_USERS > 0 times that many generated users instead of
# the checks' sequences (built on the single node from the generator and copied to the cluster).
# Between "--8<-- begin run" and "--8<-- end run" is what README quotes (test/readme-sections.sh).
set -u
PG_CONFIG=${PG_CONFIG:-pg_config}
bindir=$("$PG_CONFIG" --bindir)
libdir=$("$PG_CONFIG" --pkglibdir)
if [ ! -f "$libdir/citus.so" ]; then
	echo "citus: not installed in $libdir (Debian 12 does not package it; README 'Scale-out with Citus' says how to build it): skipped"
	exit 0
fi
if [ ! -f "$libdir/userseq.so" ]; then
	echo "not ok 1 - userseq is not installed in $libdir"
	exit 1
fi
USERS=${CITUS_USERS:-22000}		# about 48 events per user: just over 1M events at the default
BENCH_RUNS=${CITUS_BENCH_RUNS:-3}
port0=${CITUS_PORT:-57630}
base=$(mktemp -d /tmp/userseq-citus.XXXXXX)
run_as=()
if [ "$(id -u)" -eq 0 ]; then
	chown postgres "$base"
	run_as=(runuser -u postgres --)
fi
names=(coordinator worker1 worker2 single)
stop_all() {
	for i in 0 1 2 3; do
		[ -f "$base/${names[$i]}/postmaster.pid" ] &&
			"${run_as[@]}" "$bindir/pg_ctl" -D "$base/${names[$i]}" -m immediate stop >/dev/null 2>&1
	done
	rm -rf "$base"
}
trap stop_all EXIT
echo "--8<-- begin run"	# the lines README quotes (test/readme-sections.sh LOG citus)
for i in 0 1 2 3; do
	d=$base/${names[$i]}
	"${run_as[@]}" "$bindir/initdb" -D "$d" -U postgres --auth=trust -E UTF8 --locale=C.UTF-8 >/dev/null || exit 1
	preload=""
	[ $i -lt 3 ] && preload="-c shared_preload_libraries=citus"
	"${run_as[@]}" "$bindir/pg_ctl" -D "$d" -l "$d.log" -w -o "-p $((port0 + i)) -c listen_addresses=127.0.0.1 \
		-k $base -c max_connections=100 -c max_worker_processes=16 -c fsync=off $preload" start >/dev/null ||
		{ cat "$d.log"; exit 1; }
done
on() { # node, psql args...
	local i=$1
	shift
	PGOPTIONS="-c client_min_messages=warning" "$bindir/psql" -X -q -At -v ON_ERROR_STOP=1 -h 127.0.0.1 \
		-p $((port0 + i)) -U postgres -d postgres "$@"
}
both() { on 0 "$@" && on 3 "$@"; }
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
same() { # name, sql: the query's output is identical on the coordinator and the single node
	local a b
	a=$(on 0 -c "$2" 2>&1)
	b=$(on 3 -c "$2" 2>&1)
	if [ -n "$a" ] && [ "$a" = "$b" ]; then echo "ok $((n += 1)) - $1"; return 0; fi
	echo "not ok $((n += 1)) - $1"
	echo "#   coordinator: ${a:0:300}"
	echo "#   single node: ${b:0:300}"
	fail=1
	return 1
}

# the cluster: citus on every node, workers added, userseq created on the coordinator (Citus
# propagates CREATE EXTENSION to the workers)
for i in 0 1 2; do on $i -c "CREATE EXTENSION citus" || exit 1; done
on 0 -c "SELECT citus_set_coordinator_host('127.0.0.1', $port0)" \
	-c "SELECT citus_add_node('127.0.0.1', $((port0 + 1)))" \
	-c "SELECT citus_add_node('127.0.0.1', $((port0 + 2)))" >/dev/null || exit 1
both -c "CREATE EXTENSION userseq" || exit 1
check "CREATE EXTENSION userseq reached both workers" \
	test "$(on 0 -c "SELECT string_agg(result, ',') FROM run_command_on_workers(\$\$SELECT extversion FROM pg_extension WHERE extname = 'userseq'\$\$)")" = \
	"$(on 0 -c "SELECT extversion || ',' || extversion FROM pg_extension WHERE extname = 'userseq'")"
echo "# citus $(on 0 -c "SELECT extversion FROM pg_extension WHERE extname = 'citus'"), PostgreSQL $(on 0 -c 'SHOW server_version'), $USERS generated users"

# the same event log on both sides; on the coordinator distributed by user_id
both -c "CREATE TABLE events (user_id bigint, ts timestamptz, behavior text, item_id bigint, category int)" || exit 1
on 0 -c "SELECT create_distributed_table('events', 'user_id')" >/dev/null || exit 1
both -c "INSERT INTO events SELECT * FROM userseq_generate_events($USERS, 7, items => 5000)" || exit 1
events=$(on 0 -c 'SELECT count(*) FROM events')
if [ "$USERS" -ge 22000 ]; then
	check "the distributed event log has at least 1M events ($events)" test "$events" -ge 1000000
else
	echo "ok $((n += 1)) - the distributed event log has $events events # SKIP CITUS_USERS=$USERS < 22000"
fi

# 1. sequence building
plan=$(on 0 -c "EXPLAIN (VERBOSE, COSTS OFF) SELECT user_id, userseq_agg(item_id, ts, behavior) FROM events GROUP BY user_id")
check "userseq_agg ... GROUP BY user_id runs inside the shard tasks (EXPLAIN: the aggregate is in the task's plan)" \
	sh -c "printf '%s\n' \"\$1\" | grep -q 'Task Count' && printf '%s\n' \"\$1\" | sed -n '/Task/,\$p' | grep -q 'userseq_agg'" _ "$plan"
echo "$plan" | grep -E 'Custom Scan|Task Count|Aggregate|userseq_agg' | head -n 6 | sed 's/^/#   /'
both -c "CREATE TABLE user_seqs (user_id bigint PRIMARY KEY, seq userseq, label boolean)" || exit 1
on 0 -c "SELECT create_distributed_table('user_seqs', 'user_id', colocate_with => 'events')" >/dev/null
fill="INSERT INTO user_seqs
	SELECT user_id, userseq_agg(item_id, ts, behavior) FILTER (WHERE ts < '2024-03-02'),
	       NOT bool_or(behavior = 'buy' AND ts >= '2024-03-02')
	FROM events GROUP BY user_id HAVING count(*) FILTER (WHERE ts < '2024-03-02') > 0"
plan=$(on 0 -c "EXPLAIN (COSTS OFF) $fill")
check "co-located INSERT ... SELECT of sequences stays on the workers (no pull to the coordinator)" \
	sh -c "printf '%s\n' \"\$1\" | grep -q 'Task Count' && ! printf '%s\n' \"\$1\" | grep -qi 'pull to coordinator\|repartition'" _ "$plan"
echo "$plan" | head -n 3 | sed 's/^/#   /'
both -c "$fill" || exit 1
same "the sequences built on the workers equal the single node's" \
	"SELECT count(*) || ' ' || md5(string_agg(user_id || ':' || seq::text || label, ',' ORDER BY user_id)) FROM user_seqs"

# 2. training on the coordinator through the distributed table
train="SELECT count(*) FROM userseq_train('churn', 'SELECT seq, label FROM user_seqs WHERE user_id % 5 <> 0 ORDER BY user_id',
	'binary', '{\"epochs\": 2, \"threads\": 1, \"seed\": 3}')"
both -c "$train" >/dev/null || exit 1
same "training on the coordinator reads the distributed table: identical model weights" \
	"SELECT md5(weights) FROM models WHERE name = 'churn' AND version = 1"
both -c "SELECT count(*) FROM userseq_train('next', 'SELECT seq FROM user_seqs ORDER BY user_id', 'next_item',
	'{\"epochs\": 1, \"threads\": 1, \"seed\": 3, \"max_len\": 30}')" >/dev/null || exit 1

# 3. scoring by value on the workers, the model in a reference table kept by userseq_publish
both -c "CREATE TABLE model_ref (name text PRIMARY KEY, version int, weights bytea)" || exit 1
on 0 -c "SELECT create_reference_table('model_ref')" >/dev/null
both -c "SELECT userseq_publish('churn', 'model_ref')" -c "SELECT userseq_publish('next', 'model_ref')" >/dev/null || exit 1
both -c "CREATE TABLE scores (user_id bigint PRIMARY KEY, churn float8, embedding real[])" || exit 1
on 0 -c "SELECT create_distributed_table('scores', 'user_id', colocate_with => 'events')" >/dev/null
score="INSERT INTO scores SELECT s.user_id, userseq_predict(m.weights, s.seq), userseq_embed(m.weights, s.seq)
	FROM user_seqs s JOIN model_ref m ON m.name = 'churn'"
plan=$(on 0 -c "EXPLAIN (COSTS OFF) $score")
check "by-value scoring joined to the reference table runs in the shard tasks" \
	sh -c "printf '%s\n' \"\$1\" | grep -q 'Task Count' && ! printf '%s\n' \"\$1\" | grep -qi 'pull to coordinator'" _ "$plan"
both -c "$score" || exit 1
same "scores and embeddings computed on the workers equal the single node's" \
	"SELECT count(*) || ' ' || md5(string_agg(user_id || ':' || churn || ':' || embedding::text, ',' ORDER BY user_id)) FROM scores"
rec="SELECT count(*) || ' ' || md5(string_agg(s.user_id || ':' || r.rank || ':' || r.item || ':' || r.score, ',' ORDER BY s.user_id, r.rank))
	FROM user_seqs s JOIN model_ref m ON m.name = 'next', LATERAL userseq_recommend(m.weights, s.seq, 5) r WHERE s.user_id % 10 = 0"
same "LATERAL userseq_recommend by value on the workers equals the single node's" "$rec"
plan=$(on 0 -c "EXPLAIN (COSTS OFF) SELECT s.user_id, r.* FROM user_seqs s JOIN model_ref m ON m.name = 'next', LATERAL userseq_recommend(m.weights, s.seq, 5) r")
check "... and runs in the shard tasks (EXPLAIN)" sh -c "printf '%s\n' \"\$1\" | grep -q 'Task Count'" _ "$plan"
both -c "$train" >/dev/null || exit 1
both -c "SELECT userseq_deploy('churn', 2)" >/dev/null
check "the reference table follows a new deployed version on every worker" \
	test "$(on 0 -c "SELECT string_agg(result, ',') FROM run_command_on_workers(\$\$SELECT version FROM model_ref WHERE name = 'churn'\$\$)")" = "2,2"
both -c "SELECT userseq_rollback('churn')" >/dev/null
check "... and a rollback" \
	test "$(on 0 -c "SELECT string_agg(result, ',') FROM run_command_on_workers(\$\$SELECT version FROM model_ref WHERE name = 'churn'\$\$)")" = "1,1"

# 4. evaluation over a distributed query
same "userseq_evaluate over the distributed table gives the single node's metrics" \
	"SELECT string_agg(scorer || ' ' || metric || ' ' || round(value::numeric, 10), ', ' ORDER BY scorer, metric)
	 FROM userseq_evaluate('churn', 'SELECT seq, label FROM user_seqs WHERE user_id % 5 = 0')"

# 5. by-name scoring of a distributed table
err=$(on 0 -c "SELECT count(userseq_predict('churn', seq)) FROM user_seqs" 2>&1)
if [ $? -eq 0 ]; then
	check "by-name scoring of a distributed table works" test "$err" = "$(on 3 -c "SELECT count(userseq_predict('churn', seq)) FROM user_seqs")"
else
	check "by-name scoring of a distributed table fails with an error that names the by-value form" \
		sh -c "printf '%s\n' \"\$1\" | grep -qi 'userseq_publish\|by-value\|weights bytea'" _ "$err"
	echo "$err" | head -n 3 | sed 's/^/#   /'
fi

# the by-value cache on the workers: one coordinator session (so fresh worker backends) scores a
# table and, in the same transaction (whose worker connections stay open), each shard task
# reports its backend's userseq_cache_stats(). A model lookup is counted once per query and
# call site (rows after the first reuse the query's entry), so the lookups add up to the
# shard tasks exactly when every backend that scored was seen. Prints:
#   rows tasks backends decodes lookups max-decodes-per-backend
cache_probe() {
	local tbl=$1 tasks
	tasks=$(on 0 -c "EXPLAIN (COSTS OFF) SELECT count(userseq_predict(m.weights, s.seq)) FROM $tbl s JOIN model_ref m ON m.name = 'churn'" |
		sed -n 's/.*Task Count: \([0-9]*\).*/\1/p')
	on 0 -F ' ' <<-EOF | awk -v tasks="$tasks" '
		$1 == "rows" { rows = $2 }
		$1 == "backend" && $3 + $4 > 0 { b++; d += $3; l += $3 + $4; if ($3 > m) m = $3 }
		END { print rows + 0, tasks + 0, b + 0, d + 0, l + 0, m + 0 }'
	BEGIN;
	SELECT 'rows', count(userseq_predict(m.weights, s.seq)) FROM $tbl s JOIN model_ref m ON m.name = 'churn';
	SELECT DISTINCT 'backend', pg_backend_pid(), (userseq_cache_stats()).decodes, (userseq_cache_stats()).hits FROM $tbl;
	COMMIT;
	EOF
}
print_probe() { # table, "rows tasks backends decodes lookups max"
	set -- "$1" $2
	echo "# by-value cache on the workers after scoring $1: $2 rows in $3 shard tasks on $4 worker backends:" \
		"$5 decodes (at most $7 per backend), $6 model lookups (userseq_cache_stats() of each backend)"
}
probe=$(cache_probe user_seqs)
print_probe user_seqs "$probe"
check "the by-value model is decoded once per worker backend, not per row (lookups = shard tasks, one decode per backend)" \
	awk -v p="$probe" 'BEGIN { split(p, a, " "); exit !(a[1] > 0 && a[2] > 0 && a[5] == a[2] && a[4] == a[3] && a[6] == 1 && a[4] < a[1]) }'

# throughput: the same by-value scoring query on 2 workers and on the single node, alternating.
# CITUS_BENCH_USERS > 0 scores that many generated users instead of user_seqs: their sequences
# are built on the single node straight from the generator (no event table) and copied into a
# table distributed like user_seqs.
BENCH_USERS=${CITUS_BENCH_USERS:-0}
bench=user_seqs
if [ "$BENCH_USERS" -gt 0 ]; then
	bench=bench_seqs
	both -c "CREATE TABLE bench_seqs (user_id bigint PRIMARY KEY, seq userseq)" || exit 1
	on 0 -c "SELECT create_distributed_table('bench_seqs', 'user_id', colocate_with => 'events')" >/dev/null || exit 1
	t0=$(date +%s)
	on 3 -c "INSERT INTO bench_seqs SELECT user_id, userseq_agg(item_id, ts, behavior)
		FROM userseq_generate_events($BENCH_USERS, 11, items => 5000) GROUP BY user_id" || exit 1
	on 3 -c "COPY bench_seqs TO STDOUT" | on 0 -c "COPY bench_seqs FROM STDIN" || exit 1
	both -c "VACUUM ANALYZE bench_seqs" || exit 1
	echo "# $BENCH_USERS generated users' sequences built on the single node and copied to the cluster in $(($(date +%s) - t0)) s"
	same "the benchmark's sequences on the cluster equal the single node's" \
		"SELECT count(*) || ' ' || sum(hashtext(seq::text)::bigint) || ' ' || sum(userseq_length(seq)) FROM bench_seqs"
fi
q="SELECT sum(userseq_predict(m.weights, s.seq)) FROM $bench s JOIN model_ref m ON m.name = 'churn'"
users=$(on 3 -c "SELECT count(*) FROM $bench")
wp=$(on 3 -c "EXPLAIN (COSTS OFF) $q" | sed -n 's/^ *Workers Planned: //p')
echo "# the single node's plan: ${wp:-no} parallel workers (PostgreSQL's defaults)"
# CPU seconds a side spent: its postmasters' own and reaped children's time (/proc stat fields
# 14-17), so the exited backends of a run (coordinator and worker sessions) are counted. On a
# shared, loaded machine the wall-clock ratio also reflects that 32 worker backends get a
# larger share of the cores than one backend; CPU seconds do not.
hz=$(getconf CLK_TCK)
cpu_of() { # node indexes: CPU seconds of their postmasters and reaped children
	local i t=0
	for i in "$@"; do
		t=$(awk -v t="$t" -v hz="$hz" '{ printf "%.2f", t + ($14 + $15 + $16 + $17) / hz }' \
			"/proc/$(head -n 1 "$base/${names[$i]}/postmaster.pid")/stat")
	done
	echo "$t"
}
echo "# scoring throughput ($q), $BENCH_RUNS alternating runs, medians; load average $(cut -d' ' -f1-3 /proc/loadavg) on $(nproc) CPUs:"
tc=() ts=() cc=() cs=()
for r in $(seq "$BENCH_RUNS"); do
	c0=$(cpu_of 0 1 2); t0=$(date +%s.%N)
	sc=$(on 0 -c "$q") || exit 1
	t1=$(date +%s.%N); sleep 1; c1=$(cpu_of 0 1 2)	# the second lets the postmasters reap the run's backends
	c2=$(cpu_of 3); t2=$(date +%s.%N)
	ss=$(on 3 -c "$q") || exit 1
	t3=$(date +%s.%N); sleep 1; c3=$(cpu_of 3)
	tc+=("$(echo "$t1 - $t0" | bc)") ts+=("$(echo "$t3 - $t2" | bc)")
	cc+=("$(echo "$c1 - $c0" | bc)") cs+=("$(echo "$c3 - $c2" | bc)")
	printf '#   run %d: Citus %.2f s (%.2f CPU s), single node %.2f s (%.2f CPU s); sums of the scores %.6f, %.6f\n' \
		"$r" "${tc[-1]}" "${cc[-1]}" "${ts[-1]}" "${cs[-1]}" "$sc" "$ss"
done
median() { printf '%s\n' "$@" | sort -g | sed -n "$((($# + 1) / 2))p"; }
mc=$(median "${tc[@]}") ms=$(median "${ts[@]}") mcc=$(median "${cc[@]}") mcs=$(median "${cs[@]}")
printf '# | setup | users | median s | users/s | median CPU s | users per CPU s |\n# |---|---|---|---|---|---|\n'
printf '# | Citus, 2 workers | %s | %.2f | %.0f | %.2f | %.0f |\n' "$users" "$mc" "$(echo "$users / $mc" | bc -l)" \
	"$mcc" "$(echo "$users / $mcc" | bc -l)"
printf '# | single node | %s | %.2f | %.0f | %.2f | %.0f |\n' "$users" "$ms" "$(echo "$users / $ms" | bc -l)" \
	"$mcs" "$(echo "$users / $mcs" | bc -l)"
printf '# ratio single node / Citus: %.2f in wall-clock time, %.2f in CPU time\n' "$(echo "$ms / $mc" | bc -l)" \
	"$(echo "$mcs / $mcc" | bc -l)"
if [ "$bench" != user_seqs ]; then
	probe=$(cache_probe "$bench")
	print_probe "$bench" "$probe"
fi
echo "1..$n"
echo "--8<-- end run"
exit $fail
