#!/bin/bash
# OpenBLAS's thread count after a training run fails: a run sets its own "threads" and
# restores userseq.threads when it ends; an error in between (here init_from a model that does
# not exist, raised after the run set 3 or 4 threads) must not leave the count set, neither
# when the transaction aborts nor when a plpgsql EXCEPTION block catches the error and the
# transaction goes on. The backend's count is read with gdb (openblas_get_num_threads);
# without gdb, or where it cannot attach to the backend, the test is skipped.
# Runs against the cluster in the PG* environment (pg_virtualenv or a private one).
set -u
command -v gdb >/dev/null || { echo "SKIP blas_threads: no gdb"; exit 0; }
db=us_blas_threads_$$
psql -X -q -d postgres -c "CREATE DATABASE $db" || exit 1
trap 'psql -X -q -d postgres -c "DROP DATABASE IF EXISTS $db" >/dev/null 2>&1' EXIT
fail() { echo "FAIL blas_threads: $*"; exit 1; }
out=$(psql -X -q -d $db 2>&1 <<'SQL'
SET client_min_messages = warning;
CREATE EXTENSION userseq;
CREATE TABLE s AS
SELECT u AS user_id,
       userseq(array_agg(((u * 7 + e * 3) % 300 + 1)::bigint ORDER BY e),
               array_agg(timestamptz '2024-01-01' + e * interval '1 hour' ORDER BY e)) AS seq,
       (u % 3 = 0) AS label
FROM generate_series(1, 300) u, generate_series(1, 5 + u % 10) e GROUP BY u;
SELECT pg_backend_pid() AS pid \gset
\setenv US_PID :pid
\! echo "blas fresh $(gdb -q -p $US_PID -batch -ex 'print ((int(*)(void))openblas_get_num_threads)()' 2>/dev/null | sed -n 's/^\$1 = //p')"
SELECT count(*) FROM userseq_train('t', 'SELECT seq, label FROM s', 'binary',
       '{"epochs": 2, "threads": 3, "init_from": {"model": "no_such_model"}}');
\! echo "blas aborted $(gdb -q -p $US_PID -batch -ex 'print ((int(*)(void))openblas_get_num_threads)()' 2>/dev/null | sed -n 's/^\$1 = //p')"
DO $$
BEGIN
  BEGIN
    PERFORM count(*) FROM userseq_train('t', 'SELECT seq, label FROM s', 'binary',
                                        '{"epochs": 2, "threads": 4, "init_from": {"model": "no_such_model"}}');
  EXCEPTION WHEN OTHERS THEN
    RAISE WARNING 'caught: %', SQLERRM;
  END;
END $$;
\! echo "blas caught $(gdb -q -p $US_PID -batch -ex 'print ((int(*)(void))openblas_get_num_threads)()' 2>/dev/null | sed -n 's/^\$1 = //p')"
SHOW userseq.threads;
SQL
)
fresh=$(echo "$out" | sed -n 's/^blas fresh //p')
aborted=$(echo "$out" | sed -n 's/^blas aborted //p')
caught=$(echo "$out" | sed -n 's/^blas caught //p')
[ -n "$fresh" ] || { echo "SKIP blas_threads: gdb cannot read the backend's thread count"; exit 0; }
echo "$out" | grep -q 'no_such_model' || { echo "$out"; fail "the runs did not fail as planned"; }
echo "$out" | grep -q 'caught: ' || { echo "$out"; fail "the error was not caught in plpgsql"; }
[ "$fresh" = 1 ] || fail "a fresh session has $fresh BLAS threads, userseq.threads is 1"
[ "$aborted" = 1 ] || fail "$aborted BLAS threads after a failed run (\"threads\": 3), userseq.threads is 1"
[ "$caught" = 1 ] || fail "$caught BLAS threads after a caught error (\"threads\": 4), userseq.threads is 1"
echo "PASS blas_threads: 1 BLAS thread (userseq.threads) after a failed run and after a caught error"
