#!/bin/bash
# Installs what building and testing userseq needs on Debian 12, if anything is missing.
# Works as root (CI) and as a normal user with sudo. Sourced by test/run-tests.sh and test/demo.sh.
# Never changes OPENBLAS_CORETYPE / OPENBLAS_L2_SIZE: the workplace sets them on purpose.

US_PACKAGES="build-essential postgresql-15 postgresql-server-dev-15 postgresql-common
	libopenblas-dev postgresql-15-pgtap libtap-parser-sourcehandler-pgtap-perl
	postgresql-15-cron libkrb5-dev clang libclang-rt-14-dev valgrind gzip
	chromium python3"

if [ "$(id -u)" -eq 0 ]; then
	SUDO=""
else
	SUDO="sudo"
fi

us_missing=""
for p in $US_PACKAGES; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || us_missing="$us_missing $p"
done
if [ -n "$us_missing" ]; then
	echo "== installing:$us_missing"
	$SUDO env DEBIAN_FRONTEND=noninteractive apt-get update -qq
	# shellcheck disable=SC2086
	$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $us_missing >/dev/null
fi
# pg_virtualenv's cluster takes its encoding from the locale: without this a login without LANG
# (a fresh CI container, su -) gets SQL_ASCII and the UTF-8 test outputs differ
export LC_ALL=C.UTF-8
export PATH="/usr/lib/postgresql/15/bin:$PATH"
export PG_CONFIG=/usr/lib/postgresql/15/bin/pg_config
