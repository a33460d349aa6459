#!/bin/bash
# Runs every test tier of userseq and ends with "N passed, N failed" over the tiers:
#   core unit tests (plain, ASan+UBSan, valgrind), decoder fuzzing (clang), build + install,
#   pg_regress + pgTAP suites in a throwaway cluster (pg_virtualenv), the pg_cron retrain test.
# Installs missing Debian packages first. Works as root and as a user with sudo.
set -u
cd "$(dirname "$0")/.."
source test/setup-deps.sh
# a diffs file from an earlier run would be shown under whichever tier fails first
rm -f regression.diffs

# logs too long to read in the console (libFuzzer) go here; the console gets a summary
US_LOG_DIR=${US_LOG_DIR:-$PWD/test/logs}
mkdir -p "$US_LOG_DIR"
passed=0
failed=0
summary=""
run_tier() {
	local name=$1
	shift
	echo
	echo "================ $name"
	local t0=$SECONDS
	if "$@"; then
		passed=$((passed + 1))
		summary="$summary\nPASS  $name ($((SECONDS - t0)) s)"
	else
		failed=$((failed + 1))
		summary="$summary\nFAIL  $name ($((SECONDS - t0)) s)"
		if [ -s regression.diffs ]; then head -n 200 regression.diffs; fi
	fi
}

run_tier "core unit tests" make -s unit
run_tier "core unit tests under ASan+UBSan" make -s unit-asan
run_tier "core unit tests under valgrind" make -s unit-valgrind
# libFuzzer prints a line per new input; its log goes to a file and the tier prints a summary
fuzz_tier() {
	local log=$US_LOG_DIR/fuzz.log
	make -s fuzz FUZZ_SECONDS="${FUZZ_SECONDS:-60}" >"$log" 2>&1
	local rc=$?
	local done_line runs crashes
	done_line=$(grep -a 'DONE ' "$log" | tail -n 1)
	runs=$(grep -ao 'Done [0-9]* runs in [0-9]* second' "$log" | tail -n 1)
	crashes=$(grep -ac -E '^==[0-9]+==ERROR|deadly signal|SUMMARY: (Address|Undefined)' "$log")
	echo "libFuzzer: ${runs:-no completed run}; final ${done_line#*DONE }; crash reports: $crashes (full log: $log)"
	[ "$rc" -ne 0 ] && tail -n 40 "$log"
	return $rc
}
run_tier "model decoder fuzzing (${FUZZ_SECONDS:-60} s)" fuzz_tier
run_tier "extension build" make -s PG_CONFIG="$PG_CONFIG"
run_tier "extension install" $SUDO make -s install PG_CONFIG="$PG_CONFIG"
run_tier "pg_regress + pgTAP suites (throwaway cluster)" \
	pg_virtualenv -v 15 bash test/cluster-tests.sh
if [ -f test/t/cron-test.sh ]; then
	run_tier "pg_cron unattended retraining (throwaway cluster)" \
		pg_virtualenv -v 15 -o shared_preload_libraries=pg_cron -o cron.database_name=postgres \
		-o cron.use_background_workers=on \
		bash test/t/cron-test.sh
fi

# a local Citus cluster (coordinator + 2 workers) against one node; one line and a pass when
# Citus is not installed (Debian 12 does not package it)
run_tier "Citus cluster vs one node (skipped without Citus)" bash test/citus/run.sh

echo
echo "================ summary"
printf "%b\n" "$summary"
echo "test tiers: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
