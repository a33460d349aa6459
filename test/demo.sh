#!/bin/bash
# The README's main job, end to end: installs missing Debian packages, builds and installs the
# extension, then runs test/demo-run.sh in a throwaway cluster (pg_virtualenv): Online Retail
# loaded, per-customer sequences built, models trained, evaluated, explained and scored, report
# files written to demo-out/. Works as root (CI) and as a normal user with sudo.
#   bash test/demo.sh           throwaway cluster, removed at the end; touches no existing cluster
#   bash test/demo.sh --keep    a cluster named 15/userseq_demo that stays (recreated on each run),
#                               and the psql line that opens it; drop it with
#                               sudo pg_dropcluster --stop 15 userseq_demo
# The whole output is also written to demo-out/demo.log (test/readme-sections.sh copies its
# marked sections into README.md).
set -euo pipefail
cd "$(dirname "$0")/.."
keep=0
[ "${1:-}" = "--keep" ] && keep=1
source test/setup-deps.sh
mkdir -p demo-out
exec > >(tee demo-out/demo.log) 2>&1

echo "== building userseq"
make -s PG_CONFIG="$PG_CONFIG"
echo "== installing userseq into $("$PG_CONFIG" --pkglibdir)"
$SUDO make -s install PG_CONFIG="$PG_CONFIG"
start=$SECONDS
if [ $keep -eq 0 ]; then
	echo "== starting a throwaway PostgreSQL 15 cluster"
	pg_virtualenv -v 15 bash test/demo-run.sh
else
	echo "== (re)creating the PostgreSQL 15 cluster userseq_demo, kept after the demo"
	$SUDO pg_dropcluster --stop 15 userseq_demo >/dev/null 2>&1 || true
	$SUDO pg_createcluster 15 userseq_demo --start -- --auth-local=trust --auth-host=scram-sha-256 >/dev/null
	port=$(pg_lsclusters -h | awk '$1 == 15 && $2 == "userseq_demo" {print $3}')
	# the demo reads the data files client-side and writes demo-out/; run it as the invoking user
	PGHOST=/var/run/postgresql PGPORT=$port PGUSER=postgres PGDATABASE=postgres bash test/demo-run.sh
	echo
	echo "== the demo's cluster is still running. Open it with:"
	echo "   psql -h /var/run/postgresql -p $port -U postgres postgres"
	echo "   (tables: events, items, user_seqs, or_customers, or_next_item; models: SELECT * FROM models;"
	echo "    reports: demo-out/*.html). Remove it with: sudo pg_dropcluster --stop 15 userseq_demo"
fi
echo "== demo finished in $((SECONDS - start)) s (after build and install)"
