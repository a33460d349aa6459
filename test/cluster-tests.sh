#!/bin/bash
# Runs inside pg_virtualenv (PG* variables point at a throwaway cluster): pg_regress suites and
# isolation specs (make installcheck runs both: REGRESS and ISOLATION in the Makefile), then pgTAP suites, then the shell tests in test/t (except cron-test.sh). Exits nonzero if either fails.
set -u
cd "$(dirname "$0")/.."
rc=0
make -s installcheck PG_CONFIG="${PG_CONFIG:-pg_config}" || rc=1
psql -X -q -c 'CREATE EXTENSION IF NOT EXISTS pgtap' || rc=1
pg_prove --ext .sql test/pgtap/ || rc=1
# shell tests of the cluster (cancellation, dump/restore, score versions); cron-test.sh needs
# its own cluster (run-tests.sh starts it with pg_cron)
for t in test/t/*.sh; do
	[ "$(basename "$t")" = cron-test.sh ] && continue
	bash "$t" || rc=1
done
exit $rc
