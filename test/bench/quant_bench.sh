#!/bin/bash
# int8 against fp32 (issue 12): model sizes and scoring speed per core, by name, on the same
# sequences. Benchmark, not a test. Against a cluster with userseq installed (PG* env).
#   nice -n 10 env USERS=2000 ITEMS=5000 RUNS=5 bash test/bench/quant_bench.sh
# Generated users (userseq_generate_events); a binary and a next_item model with the default
# shapes trained on three quarters of them (1 epoch: speed does not depend on quality), each
# quantized with userseq_quantize (evaluated on its validation split) and the int8 version
# imported under its own name, so both are scored by name: userseq_predict over every
# sequence PRED_REPS times, userseq_recommend (top 10) over the held-out quarter REC_REPS
# times. Each run
# scores the fp32 and the int8 model in fresh sessions (after one warm-up call that decodes
# and caches the model), alternating which goes first; per wall second and per second of the
# backend's CPU time (from /proc), medians over RUNS runs, and int8 / fp32 of the medians.
set -eu
USERS=${USERS:-2000}
ITEMS=${ITEMS:-5000}
RUNS=${RUNS:-5}
PRED_REPS=${PRED_REPS:-40}
REC_REPS=${REC_REPS:-40}
DB=${DB:-userseq_quant_bench}
psql -X -q -d postgres -c "DROP DATABASE IF EXISTS $DB" -c "CREATE DATABASE $DB"
P="psql -X -q -v ON_ERROR_STOP=1 -d $DB"
$P <<SQL
SET client_min_messages = warning;
CREATE EXTENSION userseq;
CREATE TABLE qb AS SELECT * FROM (SELECT user_id, userseq_agg(item_id, ts, behavior) FILTER (WHERE ts < '2024-03-01') AS seq,
	coalesce(bool_or(behavior = 'buy' AND ts >= '2024-03-01'), false) AS label
	FROM userseq_generate_events($USERS, 5, items => $ITEMS) GROUP BY user_id) t WHERE seq IS NOT NULL;
SELECT count(*) FROM userseq_train('qb_bin', 'SELECT seq, label FROM qb WHERE user_id % 4 <> 0 ORDER BY user_id', 'binary',
	'{"epochs": 1, "seed": 1, "threads": 1}');
SELECT count(*) FROM userseq_train('qb_ni', 'SELECT seq FROM qb WHERE user_id % 4 <> 0 ORDER BY user_id', 'next_item',
	'{"epochs": 1, "seed": 1, "threads": 1, "max_examples_per_seq": 8}');
SELECT userseq_quantize('qb_bin', 1, on_exceed => 'warn'), userseq_quantize('qb_ni', 1, on_exceed => 'warn');
SELECT userseq_import(name || '_i8', weights) FROM models WHERE name IN ('qb_bin', 'qb_ni') AND version = 2;
SQL
echo "# $(date -u '+%Y-%m-%d %H:%M') UTC, load $(cut -d' ' -f1-3 /proc/loadavg), $(nproc) CPUs"
echo "# $USERS users, $ITEMS items, default shapes; int8 metric on the validation split:"
$P -At -F ' ' -c "SELECT '#  ', name, metrics->'quantized'->>'metric', round((metrics->'quantized'->>'metric_fp32')::numeric, 4),
	'->', round((metrics->'quantized'->>'metric_int8')::numeric, 4), 'on', metrics->'quantized'->>'eval_rows', 'sequences'
	FROM models WHERE name IN ('qb_bin', 'qb_ni') AND version = 2 ORDER BY name"

cpu_of() { awk -v hz="$(getconf CLK_TCK)" '{ printf "%.3f", ($14 + $15) / hz }' "/proc/$1/stat"; }
median() { sort -g | awk '{a[NR]=$1} END {print (NR % 2) ? a[(NR+1)/2] : (a[NR/2] + a[NR/2+1]) / 2}'; }
# one measurement in a fresh serial session: "first_call_wall_seconds wall_seconds cpu_seconds"
measure() {
	local warm=$1 sql=$2 pid c0 c1 t0 t1 w0
	coproc PSQL { $P -At 2>&1; }
	echo "SET max_parallel_workers_per_gather = 0; SELECT pg_backend_pid();" >&"${PSQL[1]}"
	read -r pid <&"${PSQL[0]}"
	w0=$(date +%s.%N)
	echo "$warm" >&"${PSQL[1]}"
	read -r _ <&"${PSQL[0]}"
	c0=$(cpu_of "$pid"); t0=$(date +%s.%N)
	echo "$sql" >&"${PSQL[1]}"
	read -r _ <&"${PSQL[0]}"
	t1=$(date +%s.%N); c1=$(cpu_of "$pid")
	exec {PSQL[1]}>&-
	wait "$PSQL_PID" 2>/dev/null || true
	echo "$(echo "$t0 - $w0" | bc) $(echo "$t1 - $t0" | bc) $(echo "$c1 - $c0" | bc)"
}
N_PRED=$(($($P -At -c "SELECT count(*) FROM qb") * PRED_REPS))
N_REC=$(($($P -At -c "SELECT count(*) FROM qb WHERE user_id % 4 = 0") * REC_REPS))
pred_sql() { echo "SELECT count(userseq_predict('$1', seq)) FROM qb, generate_series(1, $PRED_REPS);"; }
# k depends on g so that the planner cannot call userseq_recommend once per user for all reps
rec_sql() { echo "SELECT count(*) FROM qb, generate_series(1, $REC_REPS) g, LATERAL userseq_recommend('$1', seq, 10 + 0 * g) WHERE user_id % 4 = 0;"; }
declare -A wall cpu first ratio
for r in $(seq "$RUNS"); do
	if [ $((r % 2)) -eq 1 ]; then order="fp32 int8"; else order="int8 fp32"; fi
	for kind in predict recommend; do
		for v in $order; do
			if [ $kind = predict ]; then m=qb_bin; n=$N_PRED; else m=qb_ni; n=$N_REC; fi
			[ $v = int8 ] && m=${m}_i8
			if [ $kind = predict ]; then
				sql=$(pred_sql $m); warm="SELECT userseq_predict('$m', seq) IS NOT NULL FROM qb WHERE user_id = 4;"
			else
				sql=$(rec_sql $m); warm="SELECT count(*) FROM qb, LATERAL userseq_recommend('$m', seq, 10) WHERE user_id = 4;"
			fi
			read -r f w c < <(measure "$warm" "$sql")
			first[$kind.$v]+="$f "
			wall[$kind.$v]+="$(echo "$n / $w" | bc -l) "
			cpu[$kind.$v]+="$(echo "$n / $c" | bc -l) "
			# CPU time is counted in clock ticks: a run too short to register one is too short
			[ "$(echo "$c > 0" | bc)" = 1 ] || { echo "a run took less than one clock tick of CPU: raise PRED_REPS / REC_REPS" >&2; exit 1; }
			eval "c_$v=$c"
			printf 'run %d %-9s %s (%s): first call %.3f s, then %d sequences, %.3f s wall, %.3f s backend CPU\n' "$r" "$kind" "$v" "$m" "$f" "$n" "$w" "$c"
		done
		ratio[$kind]+="$(echo "$c_fp32 / $c_int8" | bc -l) "
	done
done
echo "# load $(cut -d' ' -f1-3 /proc/loadavg)"
for kind in predict recommend; do
	echo "# int8 / fp32 speed per backend CPU second in each run ($kind): $(printf '%.3f ' ${ratio[$kind]})"
done
echo
echo "| | fp32 | int8 | int8 / fp32 |"
echo "|---|---|---|---|"
for kind in predict recommend; do
	for what in cpu wall; do
		if [ $what = cpu ]; then a=${cpu[$kind.fp32]}; b=${cpu[$kind.int8]}; u="per backend CPU second"; else a=${wall[$kind.fp32]}; b=${wall[$kind.int8]}; u="per wall second"; fi
		ma=$(printf '%s\n' $a | median); mb=$(printf '%s\n' $b | median)
		printf '| userseq_%s, sequences %s (median of %d) | %.0f | %.0f | %.3f |\n' "$kind" "$u" "$RUNS" "$ma" "$mb" "$(echo "$mb / $ma" | bc -l)"
	done
	printf '| userseq_%s, first call in a session (decode, cache), ms (median) | %.1f | %.1f | %.3f |\n' "$kind" \
		"$(printf '%s\n' ${first[$kind.fp32]} | median | awk '{print $1 * 1000}')" "$(printf '%s\n' ${first[$kind.int8]} | median | awk '{print $1 * 1000}')" \
		"$(echo "$(printf '%s\n' ${first[$kind.int8]} | median) / $(printf '%s\n' ${first[$kind.fp32]} | median)" | bc -l)"
done
$P -At -c "SELECT format('| model bytes, %s (%s) | %s | %s | %s (%sx smaller) |', f.task, f.name, length(f.weights),
	length(i.weights), to_char(length(i.weights)::float8 / length(f.weights), 'FM0.000'),
	to_char(length(f.weights)::float8 / length(i.weights), 'FM0.00'))
	FROM models f JOIN models i ON i.name = f.name || '_i8' WHERE f.version = 1 ORDER BY f.name"
psql -X -q -d postgres -c "DROP DATABASE $DB"
