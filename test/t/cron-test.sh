#!/bin/bash
# Unattended retraining with pg_cron: train a model, schedule SELECT userseq_retrain(...)
# every minute, wait (up to 100 s) for a new version with its training_log rows, unschedule.
# Needs a cluster with shared_preload_libraries = 'pg_cron', cron.database_name = 'postgres'
# and cron.use_background_workers = on (test/run-tests.sh starts one with pg_virtualenv);
# pg_cron 1.4 (Debian bookworm) has no seconds schedule, so the job fires at the next minute.
set -u
db=postgres
fail() {
	echo "FAIL cron: $*"
	psql -X -q -d $db -c "SELECT cron.unschedule(jobid) FROM cron.job WHERE jobname = 'userseq_cron_test'" >/dev/null 2>&1
	exit 1
}
bgw=$(psql -X -At -d $db -c "SHOW cron.use_background_workers" 2>/dev/null)
[ "$bgw" = on ] || echo "note: cron.use_background_workers is '$bgw'; jobs then need a libpq connection to cron.host"

psql -X -q -o /dev/null -d $db -v ON_ERROR_STOP=1 <<'SQL' || fail "setup"
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS pg_cron;
CREATE EXTENSION IF NOT EXISTS userseq;
SELECT userseq_drop_model('cron_m') FROM models WHERE name = 'cron_m' LIMIT 1;
DROP TABLE IF EXISTS cron_s;
SELECT setseed(0.7);
CREATE TABLE cron_s AS
SELECT u AS user_id,
       userseq(array_agg(((u * 7 + e * 3) % 100 + 1)::bigint ORDER BY e),
               array_agg(timestamptz '2024-01-01' + e * interval '1 hour' ORDER BY e)) AS seq,
       bool_or((u * 7 + e * 3) % 100 < 10) AS label
FROM generate_series(1, 400) u, generate_series(1, 4 + u % 8) e GROUP BY u;
SELECT count(*) FROM userseq_train('cron_m', 'SELECT seq, label FROM cron_s ORDER BY user_id', 'binary',
                                   '{"epochs": 1, "embedding_dim": 16, "num_filters": 16, "hidden_dim": 16}');
SQL
echo "pg_cron $(psql -X -At -d $db -c "SELECT extversion FROM pg_extension WHERE extname = 'pg_cron'"), model cron_m version 1 trained"

jobid=$(psql -X -At -d $db -c "SELECT cron.schedule('userseq_cron_test', '* * * * *', \$\$SELECT userseq_retrain('cron_m')\$\$)") || fail "schedule"
echo "scheduled job $jobid: SELECT userseq_retrain('cron_m') every minute"
found=""
for i in $(seq 1 50); do
	found=$(psql -X -At -d $db -c "SELECT m.version || ' ' || count(l.*) FROM models m JOIN training_log l ON l.model = m.name AND l.version = m.version WHERE m.name = 'cron_m' AND m.version >= 2 GROUP BY m.version")
	[ -n "$found" ] && break
	failed=$(psql -X -At -d $db -c "SELECT return_message FROM cron.job_run_details WHERE jobid = $jobid AND status = 'failed' LIMIT 1")
	[ -n "$failed" ] && fail "job failed: $failed"
	sleep 2
done
psql -X -q -o /dev/null -d $db -c "SELECT cron.unschedule($jobid)" || fail "unschedule"
[ -n "$found" ] || fail "no new version of cron_m within 100 s"
set -- $found
echo "cron_m version $1 stored by pg_cron with $2 training_log rows"
psql -X -q -o /dev/null -d $db -c "SELECT userseq_drop_model('cron_m')" -c "DROP TABLE cron_s"
echo "PASS cron: unattended userseq_retrain stored version $1"
