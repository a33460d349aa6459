#!/bin/bash
# Runs each unit test binary given as an argument (optionally under $UNIT_WRAPPER), $UNIT_JOBS
# at a time (default: the number of CPUs), and prints "N passed, N failed" over the binaries;
# exits nonzero if any failed. Each binary's output is printed whole, in argument order.
set -u
jobs=${UNIT_JOBS:-$(nproc)}
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT

run_one() {
	local t=$1 name start
	name=$(basename "$t")
	start=$SECONDS
	if $UNIT_WRAPPER "$t" >"$out/$name.log" 2>&1; then
		echo "PASS $name ($((SECONDS - start)) s)" >"$out/$name.status"
	else
		echo "FAIL $name ($((SECONDS - start)) s)" >"$out/$name.status"
	fi
}
export -f run_one
export out UNIT_WRAPPER="${UNIT_WRAPPER:-}"
# the slowest binaries ($UNIT_FIRST) start first, so that no slot waits on one of them alone at the end
first=" ${UNIT_FIRST:-test_scorer test_train test_gradcheck test_quantize} "
{
	for t in "$@"; do case $first in *" $(basename "$t") "*) echo "$t" ;; esac; done
	for t in "$@"; do case $first in *" $(basename "$t") "*) ;; *) echo "$t" ;; esac; done
} | xargs -P "$jobs" -I{} bash -c 'run_one "$1"' _ {}

passed=0
failed=0
for t in "$@"; do
	name=$(basename "$t")
	cat "$out/$name.log" 2>/dev/null
	if [ -f "$out/$name.status" ]; then
		status=$(cat "$out/$name.status")
	else
		status="FAIL $name (not run)"
	fi
	echo "$status"
	case $status in
	PASS*) passed=$((passed + 1)) ;;
	*) failed=$((failed + 1)) ;;
	esac
done
echo "unit tests: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
