#!/bin/bash
# The first SQL example of README.md ("What you get") runs as pasted on a fresh database, so the
# example a new user tries first cannot rot. Uses the cluster in the PG* environment.
set -u
cd "$(dirname "$0")/../.."
db=us_readme_$$
trap 'psql -X -q -d postgres -c "DROP DATABASE IF EXISTS $db" >/dev/null 2>&1' EXIT
sql=$(awk '/^## What you get/ {f = 1} f && /^```sql$/ {g = 1; next} g && /^```$/ {exit} g {print}' README.md)
[ -n "$sql" ] || { echo "not ok 1 - no SQL block under 'What you get' in README.md"; exit 1; }
psql -X -q -d postgres -c "CREATE DATABASE $db" || exit 1
if out=$(printf '%s\n' "$sql" | psql -X -q -d $db -v ON_ERROR_STOP=1 -c "SET client_min_messages = warning" -f - 2>&1); then
	echo "ok 1 - README's first example ran as pasted ($(printf '%s\n' "$sql" | grep -c ';$') statements)"
else
	echo "not ok 1 - README's first example failed:"
	printf '%s\n' "$out" | tail -n 15 | sed 's/^/#   /'
	exit 1
fi
# it recommended 5 items and scored 5 users
if [ "$(printf '%s\n' "$out" | grep -c '^ *[1-5] | *[0-9]* | ')" -ge 5 ]; then
	echo "ok 2 - it printed a top-5 recommendation"
else
	echo "not ok 2 - no top-5 recommendation in the output"; exit 1
fi
echo "1..2"
