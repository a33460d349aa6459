#!/bin/bash
# Recommendations per second per core: userseq_recommend(model, seq, k = 10), exclude_seen, on
# catalogues of 5,000 and 50,000 items (benchmark, not a test). Needs the PG* environment of a
# cluster with userseq installed, and a C compiler for test/bench/mkmodel.c.
#
#   RUNS=5 bash test/bench/rec_bench.sh
#
# For each catalogue size V:
# 1. USERS generated users (userseq_generate_events(USERS, 7, items => V)), one sequence each
#    (userseq_agg); a next_item model with the default options trained in the database
#    (1 epoch, max_examples_per_seq 10, seed 1) on the first 2/3 of the users.
# 2. SELECT count(*) over the other third, LATERAL userseq_recommend(model, seq, 10), serial,
#    each run in a fresh session: with the default userseq.fold_memory (screened top-k, folded
#    convolutions) and, as the peer in the same run, with userseq.fold_memory = 0 (direct
#    convolutions, every item scored in fp32). They alternate; medians of RUNS runs.
#    Both must give the same recommendations (checked on every request: the same score at
#    every rank within 1e-5; the plain path sums in another order, so items a few ulps apart
#    may swap, and the script counts those swaps).
# 3. The same for a randomly initialised model of the same shape (mkmodel): its hidden layer is
#    dense (about half the units nonzero, against about a fifth in trained models), which is
#    the screen's worst case.
#
# A million items: CATALOGUES=1000000 EVAL=1000 FOLD=1GB SHARED=3GB RUNS=3 bash test/bench/rec_bench.sh
#   EVAL caps the requests per run (the fp32 peer scores every item of every request), FOLD
#   sets userseq.fold_memory for the timed side (the default 256MB is too small for the screen
#   of a million untied output rows, which then scans in full), SHARED userseq.shared_cache_size
#   (ALTER SYSTEM: the image of such a model is over the default 1GB). Each timed session also
#   reports its backend's memory (/proc/self/status) and the image it mapped: the image is in
#   the page cache once per server, the rest is per backend.
#
# A model file: MODEL_FILE=/tmp/million/m1m.usqm MODEL_TSV=/tmp/million/m50k.tsv adds, after the
#   catalogues (CATALOGUES="" for the file alone), a model written by us_model_encode (e.g.
#   test/bench/core_train --save), imported with userseq_import and measured the same way on
#   the last EVAL lines (default 1,000) of its TSV (label, tab, space-separated item ids; the
#   held-out users of core_train), each without its last id, as bench_scorer's next_item_file
#   requests them. Both files must be readable by the server.
set -eu
cd "$(dirname "$0")/../.."
RUNS=${RUNS:-5}
USERS=${USERS:-60000}
CATALOGUES=${CATALOGUES-"5000 50000"}
EVAL=${EVAL:-0}
FOLD=${FOLD:-}
SHARED=${SHARED:-}
MODEL_FILE=${MODEL_FILE:-}
MODEL_TSV=${MODEL_TSV:-}
DIR=${BENCH_DIR:-/tmp/userseq_rec_bench}
mkdir -p "$DIR"
chmod 755 "$DIR"
q() { psql -X -q -At -v ON_ERROR_STOP=1 "$@"; }
median() { sort -g | awk '{a[NR]=$1} END {print (NR % 2) ? a[(NR+1)/2] : (a[NR/2] + a[NR/2+1]) / 2}'; }
# seconds of the statement $2 in a fresh session, after settings $1 and one warm-up request
# (so the model decode and the scorer build are not timed), then the backend's on-CPU seconds
# of the statement and its resident memory afterwards (MB: anonymous, file-backed, i.e. mapped
# image pages)
CPU="SELECT (regexp_split_to_array(pg_read_file('/proc/self/schedstat'), ' '))[1]"
MEM="SELECT string_agg((regexp_match(l, '[0-9]+'))[1], ' ') FROM regexp_split_to_table(pg_read_file('/proc/self/status'), E'\n') l WHERE l ~ '^Rss(Anon|File):'"
timed() {
	psql -X -q -At -v ON_ERROR_STOP=1 <<SQL | awk '/^Time:/ {t = $2; next} {v[++n] = $0} END {split(v[5], m, " "); printf "%.3f %.3f %.0f %.0f\n", t / 1000, (v[4] - v[2]) / 1e9, m[1] / 1024, m[2] / 1024}'
SET max_parallel_workers_per_gather = 0;
$1
SELECT count(*) FROM (SELECT seq FROM $SEQS LIMIT 1) s, LATERAL userseq_recommend('$model', s.seq, 10);
$CPU;
\\timing on
$2;
\\timing off
$CPU;
$MEM;
SQL
}

# top-k of $model over $EVAL_SET ($n_eval requests; $SEQS gives the warm-up sequence): the same
# answers screened and in fp32, then the timed runs, alternating
bench_model() {
	model=$1
	SQL_REC="SELECT count(*) FROM ($EVAL_SET) s, LATERAL userseq_recommend('$model', s.seq, 10)"
	# the same answers with and without the screen on every request, up to float near-ties:
	# the plain path sums in another order, so two items a few ulps apart may swap
	q -c "SET client_min_messages = warning; DROP TABLE IF EXISTS rec_a, rec_b"
	q -c "SET max_parallel_workers_per_gather = 0; $TUNED CREATE UNLOGGED TABLE rec_a AS SELECT s.user_id, r.rank, r.item, r.score FROM ($EVAL_SET) s, LATERAL userseq_recommend('$model', s.seq, 10) r"
	q -c "SET max_parallel_workers_per_gather = 0; SET userseq.fold_memory = 0; CREATE UNLOGGED TABLE rec_b AS SELECT s.user_id, r.rank, r.item, r.score FROM ($EVAL_SET) s, LATERAL userseq_recommend('$model', s.seq, 10) r"
	bad=$(q -c "SELECT count(*) FROM rec_a a FULL JOIN rec_b b USING (user_id, rank) WHERE a.score IS NULL OR b.score IS NULL OR abs(a.score - b.score) > 1e-5 * greatest(1, abs(a.score))")
	swapped=$(q -c "SELECT count(*) FROM rec_a a JOIN rec_b b USING (user_id, rank) WHERE a.item <> b.item")
	rows=$(q -c "SELECT count(*) FROM rec_a")
	if [ "$bad" != 0 ]; then
		echo "$model: screened and plain recommendations differ beyond float near-ties in $bad rows" >&2
		exit 1
	fi
	tuned=(); tcpu=(); plain=(); pcpu=(); tmem=""
	for r in $(seq 1 "$RUNS"); do
		read -r a b c d <<<"$(timed "$TUNED" "$SQL_REC")"
		tuned+=("$a"); tcpu+=("$b"); tmem="$c MB anonymous + $d MB file-backed"
		read -r a b c d <<<"$(timed "SET userseq.fold_memory = 0;" "$SQL_REC")"
		plain+=("$a"); pcpu+=("$b")
	done
	tm=$(printf '%s\n' "${tuned[@]}" | median)
	pm=$(printf '%s\n' "${plain[@]}" | median)
	tc=$(printf '%s\n' "${tcpu[@]}" | median)
	pc=$(printf '%s\n' "${pcpu[@]}" | median)
	printf '  %-16s %s: runs (s) %s; median %.2f s = %.0f/s (%.0f per CPU s) | fold_memory 0: median %.2f s = %.0f/s (%.0f per CPU s) | ratio x%.2f (CPU x%.2f) | %s rows: same score at every rank, %s near-tie swaps\n' \
		"$model" "${FOLD:-default fold_memory}" "${tuned[*]}" "$tm" "$(echo "$n_eval / $tm" | bc -l)" "$(echo "$n_eval / $tc" | bc -l)" \
		"$pm" "$(echo "$n_eval / $pm" | bc -l)" "$(echo "$n_eval / $pc" | bc -l)" \
		"$(echo "$pm / $tm" | bc -l)" "$(echo "$pc / $tc" | bc -l)" "$rows" "$swapped"
	echo "    last timed backend: $tmem; shared image: $(q -c "SELECT coalesce(pg_size_pretty(sum(bytes)), 'none') FROM userseq_shared_cache_stats() s JOIN models m USING (model_id) WHERE m.name = '$model'")"
}

cc -O2 -std=c11 -D_POSIX_C_SOURCE=200809L -Iinclude -o "$DIR/mkmodel" test/bench/mkmodel.c src/core/*.c -lopenblas -lm
q -c "SET client_min_messages = warning; CREATE EXTENSION IF NOT EXISTS userseq"
if [ -n "$SHARED" ]; then
	# the module must be loaded for ALTER SYSTEM to know the parameter
	q -c "SELECT userseq('{1}'::int8[]) IS NOT NULL" -c "ALTER SYSTEM SET userseq.shared_cache_size = '$SHARED'" -c "SELECT pg_reload_conf()" >/dev/null
fi
TUNED=""
[ -n "$FOLD" ] && TUNED="SET userseq.fold_memory = '$FOLD';"
echo "== recommendations per second per core (k = 10, exclude_seen, serial); load at start: $(cut -d' ' -f1-3 /proc/loadavg)"
for V in $CATALOGUES; do
	train_n=$((USERS * 2 / 3))
	q <<SQL
SET client_min_messages = warning;
DROP TABLE IF EXISTS rec_seqs_$V;
CREATE UNLOGGED TABLE rec_seqs_$V AS
SELECT user_id, userseq_agg(item_id, ts, behavior) AS seq
FROM userseq_generate_events($USERS, 7, items => $V) GROUP BY user_id;
VACUUM ANALYZE rec_seqs_$V;
SQL
	EVAL_SET="SELECT user_id, seq FROM rec_seqs_$V WHERE user_id > $train_n ORDER BY user_id"
	[ "$EVAL" -gt 0 ] && EVAL_SET="$EVAL_SET LIMIT $EVAL"
	n_eval=$(q -c "SELECT count(*) FROM ($EVAL_SET) e")
	t0=$(date +%s.%N)
	q -c "SELECT userseq_drop_model('rec_$V')" >/dev/null 2>&1 || true
	q -c "SET client_min_messages = warning; SELECT count(*) FROM userseq_train('rec_$V', 'SELECT seq FROM rec_seqs_$V WHERE user_id <= $train_n', 'next_item', '{\"epochs\": 1, \"max_examples_per_seq\": 10, \"seed\": 1}')" >/dev/null
	t1=$(date +%s.%N)
	cfg=$(q -c "SELECT config->>'n_items', config->>'embedding_dim', config->>'num_filters', config->>'hidden_dim', config->>'max_len', config->'filter_widths' FROM models WHERE name = 'rec_$V' AND deployed")
	IFS='|' read -r n_items E F H L widths <<<"$cfg"
	printf 'catalogue %d: %d item rows, E=%s F=%s H=%s widths %s max_len %s; trained in %.0f s on %d users; %d requests per run\n' \
		"$V" "$n_items" "$E" "$F" "$H" "$widths" "$L" "$(echo "$t1 - $t0" | bc -l)" "$train_n" "$n_eval"
	"$DIR/mkmodel" next_item "$V" "$E" "$F" "$H" "$L" 7 "$DIR/random_$V.m"
	chmod 644 "$DIR/random_$V.m"
	q -c "SELECT userseq_drop_model('rec_random_$V')" >/dev/null 2>&1 || true
	q -c "SELECT userseq_import('rec_random_$V', pg_read_binary_file('$DIR/random_$V.m'))" >/dev/null

	SEQS=rec_seqs_$V
	for m in "rec_$V" "rec_random_$V"; do
		bench_model "$m"
	done
	q -c "SET client_min_messages = warning; DROP TABLE IF EXISTS rec_a, rec_b"
done
if [ -n "$MODEL_FILE" ]; then
	n_tail=$((EVAL > 0 ? EVAL : 1000))
	SEQS=rec_seqs_file
	q <<SQL
SET client_min_messages = warning;
DROP TABLE IF EXISTS rec_seqs_file;
CREATE UNLOGGED TABLE rec_seqs_file AS
SELECT n AS user_id, (string_to_array(split_part(line, E'\t', 2), ' ')::bigint[])[:cardinality(string_to_array(split_part(line, E'\t', 2), ' ')) - 1]::userseq AS seq
FROM regexp_split_to_table(rtrim(pg_read_file('$MODEL_TSV'), E'\n'), E'\n') WITH ORDINALITY AS t(line, n);
VACUUM ANALYZE rec_seqs_file;
SQL
	n_lines=$(q -c "SELECT count(*) FROM rec_seqs_file")
	EVAL_SET="SELECT user_id, seq FROM rec_seqs_file WHERE user_id > $((n_lines - n_tail)) ORDER BY user_id"
	n_eval=$(q -c "SELECT count(*) FROM ($EVAL_SET) e")
	q -c "SELECT userseq_drop_model('rec_file')" >/dev/null 2>&1 || true
	q -c "SELECT userseq_import('rec_file', pg_read_binary_file('$MODEL_FILE'))" >/dev/null
	cfg=$(q -c "SELECT config->>'n_items', config->>'embedding_dim', config->>'num_filters', config->>'hidden_dim', config->>'max_len', config->'filter_widths', config->>'tie_output' FROM models WHERE name = 'rec_file' AND deployed")
	IFS='|' read -r n_items E F H L widths tie <<<"$cfg"
	printf 'model file %s: %d item rows, E=%s F=%s H=%s widths %s max_len %s tie_output %s; the last %d of %d lines of %s, each without its last item\n' \
		"$MODEL_FILE" "$n_items" "$E" "$F" "$H" "$widths" "$L" "$tie" "$n_eval" "$n_lines" "$MODEL_TSV"
	bench_model rec_file
	q -c "SET client_min_messages = warning; DROP TABLE IF EXISTS rec_a, rec_b"
fi
echo "load average at the end: $(cut -d' ' -f1-3 /proc/loadavg) (2 vCPUs, shared)"
