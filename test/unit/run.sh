#!/bin/sh
# Runs each unit test binary given as an argument (optionally under $UNIT_WRAPPER) and prints
# "N passed, N failed" over the binaries; exits nonzero if any failed.
passed=0
failed=0
for t in "$@"; do
	if $UNIT_WRAPPER "$t"; then
		passed=$((passed + 1))
		echo "PASS $(basename "$t")"
	else
		failed=$((failed + 1))
		echo "FAIL $(basename "$t")"
	fi
done
echo "unit tests: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
