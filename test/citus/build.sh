#!/bin/bash
# Builds Citus and userseq into a private copy of the system PostgreSQL 15, so that
# test/citus/run.sh can run without writing Citus into the PostgreSQL everyone else uses:
#
#   bash test/citus/build.sh CITUS_SOURCE [PREFIX]      (PREFIX defaults to /opt/pgcitus)
#   PG_CONFIG=PREFIX/usr/lib/postgresql/15/bin/pg_config bash test/citus/run.sh
#
# CITUS_SOURCE is an unpacked Citus release-13.2 / v13.2.x tree (for example
# `git archive v13.2.2 | tar -x -C DIR` from a clone of github.com/citusdata/citus); its build
# dependencies on Debian 12: postgresql-server-dev-15 libcurl4-openssl-dev liblz4-dev
# libzstd-dev libssl-dev libkrb5-dev libxslt1-dev autoconf.
# The copy keeps the Debian layout under PREFIX: PostgreSQL finds its library and share
# directories relative to its binaries, so PREFIX's pg_config, postgres and initdb all use the
# copy. Citus 13.1-13.2 define their own have_createdb_privilege() for PostgreSQL 15, which
# PostgreSQL 15.14 and later export too: the copy in the Citus tree is renamed (once; the
# change is idempotent).
set -euo pipefail
src=${1:?usage: build.sh CITUS_SOURCE [PREFIX]}
prefix=${2:-/opt/pgcitus}
repo=$(cd "$(dirname "$0")/../.." && pwd)
src=$(cd "$src" && pwd)
pgc=$prefix/usr/lib/postgresql/15/bin/pg_config
if [ ! -x "$pgc" ]; then
	mkdir -p "$prefix/usr/lib/postgresql" "$prefix/usr/share/postgresql" "$prefix/usr/include"
	cp -a /usr/lib/postgresql/15 "$prefix/usr/lib/postgresql/"
	cp -a /usr/share/postgresql/15 "$prefix/usr/share/postgresql/"
	cp -a /usr/include/postgresql "$prefix/usr/include/"
fi
[ "$("$pgc" --pkglibdir)" = "$prefix/usr/lib/postgresql/15/lib" ] ||
	{ echo "build.sh: $pgc does not point into $prefix" >&2; exit 1; }
perl -0pi -e 's/static inline bool\nhave_createdb_privilege\(void\)/#define have_createdb_privilege() citus_have_createdb_privilege()\nstatic inline bool\ncitus_have_createdb_privilege(void)/' \
	"$src/src/include/pg_version_compat.h"
jobs=$(nproc)
(cd "$src" && ./configure PG_CONFIG="$pgc" >/dev/null && nice -n 10 make -s -j"$jobs" && make -s install)
(cd "$repo" && nice -n 10 make -s -j"$jobs" PG_CONFIG="$pgc" && make -s install PG_CONFIG="$pgc")
echo "citus $(sed -n 's/^default_version = .\(.*\)./\1/p' "$src/src/backend/distributed/citus.control") and userseq installed under $prefix: PG_CONFIG=$pgc"
