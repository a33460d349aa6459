#!/bin/bash
# Runs inside pg_virtualenv (PG* variables point at a throwaway cluster): the demo script.
# The data directory is passed as an absolute path, because psql reads it client-side.
set -euo pipefail
cd "$(dirname "$0")/.."
exec psql -X -v ON_ERROR_STOP=1 -v datadir="$PWD/test/data/online_retail" -f test/demo.sql
