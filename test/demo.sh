#!/bin/bash
# The README's main job, end to end: installs missing Debian packages, builds and installs the
# extension, then runs test/demo-run.sh in a throwaway cluster (pg_virtualenv): Online Retail
# loaded, per-customer sequences built, and (from the ML work) training, evaluation, scoring.
# Works as root (CI) and as a normal user with sudo. Touches no existing cluster.
set -euo pipefail
cd "$(dirname "$0")/.."
source test/setup-deps.sh

echo "== building userseq"
make -s PG_CONFIG="$PG_CONFIG"
echo "== installing userseq into $("$PG_CONFIG" --pkglibdir)"
$SUDO make -s install PG_CONFIG="$PG_CONFIG"
echo "== starting a throwaway PostgreSQL 15 cluster"
exec pg_virtualenv -v 15 bash test/demo-run.sh
