#!/bin/bash
# Runs inside pg_virtualenv (PG* variables point at a throwaway cluster): pg_regress suites,
# then pgTAP suites. Exits nonzero if either fails.
set -u
cd "$(dirname "$0")/.."
rc=0
make -s installcheck PG_CONFIG="${PG_CONFIG:-pg_config}" || rc=1
psql -X -q -c 'CREATE EXTENSION IF NOT EXISTS pgtap' || rc=1
pg_prove --ext .sql test/pgtap/ || rc=1
bash test/t/score_version.sh || rc=1
exit $rc
