#!/bin/bash
# Issue 10.2: a stored training query runs as the role that owns the model, never as whoever
# calls userseq_retrain. bob stores a query calling bob_label(), a function that makes bob a
# superuser when it runs as a superuser; a superuser retrains bob's model (what a pg_cron job
# of a superuser does): bob must stay a plain role and the function must see current_user =
# bob. A model whose owner role is gone cannot be retrained (42704).
# Runs against the cluster in the PG* environment, in its own database.
set -u
db=us_retrain_$$
out=$(mktemp)
cleanup() {
	psql -X -q -d postgres -c "DROP DATABASE IF EXISTS $db" >/dev/null 2>&1
	psql -X -q -d postgres -c "DROP ROLE IF EXISTS us_trojan_bob" -c "DROP ROLE IF EXISTS us_trojan_gone" >/dev/null 2>&1
	rm -f "$out"
}
trap cleanup EXIT
fails=0
ok() { echo "ok - $*"; }
notok() { echo "not ok - $*"; fails=$((fails + 1)); }
q() { psql -X -At -d $db -c "$1"; }

psql -X -q -d postgres -c "CREATE DATABASE $db" || exit 1
psql -X -q -o /dev/null -d $db -v ON_ERROR_STOP=1 <<'SQL' || exit 1
SET client_min_messages = warning;
DROP ROLE IF EXISTS us_trojan_bob;
DROP ROLE IF EXISTS us_trojan_gone;
CREATE ROLE us_trojan_bob;
CREATE ROLE us_trojan_gone;
GRANT CREATE ON SCHEMA public TO us_trojan_bob, us_trojan_gone;
CREATE EXTENSION userseq;
SET ROLE us_trojan_bob;
CREATE TABLE public.d AS
SELECT u, userseq(ARRAY(SELECT ((u * 3 + e * 5) % 40 + 1)::int8 FROM generate_series(1, 3 + u % 9) e)) AS seq,
       (u * 3) % 40 < 10 AS label FROM generate_series(1, 300) u;
GRANT SELECT ON public.d TO PUBLIC;
-- the trojan: harmless as bob, an escalation when run by a superuser
CREATE FUNCTION public.bob_label(s userseq) RETURNS boolean LANGUAGE plpgsql AS $$
BEGIN
	IF userseq_length(s) = 3 THEN
		RAISE NOTICE 'bob_label ran as % (superuser %)', current_user,
			(SELECT rolsuper FROM pg_catalog.pg_roles WHERE rolname = current_user);
	END IF;
	IF (SELECT rolsuper FROM pg_catalog.pg_roles WHERE rolname = current_user) THEN
		EXECUTE 'ALTER ROLE us_trojan_bob SUPERUSER';
	END IF;
	RETURN userseq_length(s) % 2 = 0;
END $$;
SELECT count(*) FROM userseq_train('trojan', 'SELECT seq, public.bob_label(seq) AS label FROM public.d', 'binary',
	'{"epochs": 1, "embedding_dim": 8, "num_filters": 8, "hidden_dim": 8}');
RESET ROLE;
SET ROLE us_trojan_gone;
SELECT count(*) FROM userseq_train('orphan', 'SELECT seq, label FROM public.d', 'binary',
	'{"epochs": 1, "embedding_dim": 8, "num_filters": 8, "hidden_dim": 8}');
SQL

# the superuser retrains bob's model
psql -X -At -d $db -c "SELECT new_version FROM userseq_retrain('trojan', force => true)" >"$out" 2>&1
if [ "$(q "SELECT rolsuper FROM pg_roles WHERE rolname = 'us_trojan_bob'")" = f ]; then
	ok "bob is still not a superuser after a superuser's retrain"
else
	notok "bob became a superuser through the retrain"
fi
seen=$(grep -o 'bob_label ran as [a-z_]* (superuser [a-z]*)' "$out" | sort -u | tr '\n' ' ')
if [ "$seen" = "bob_label ran as us_trojan_bob (superuser f) " ]; then
	ok "the stored query ran as the owner: $seen"
else
	notok "the stored query ran as: '$seen'"
fi
if [ "$(q "SELECT version || ' ' || owner FROM models WHERE name = 'trojan' AND deployed")" = "2 us_trojan_bob" ]; then
	ok "the retrain stored and deployed version 2"
else
	notok "the retrain did not store version 2: $(cat "$out")"
fi

# an owner role that no longer exists: clear error, nothing stored
q "REASSIGN OWNED BY us_trojan_gone TO postgres; DROP OWNED BY us_trojan_gone; DROP ROLE us_trojan_gone" >/dev/null
msg=$(psql -X -At -d $db -v VERBOSITY=verbose -c "SELECT userseq_retrain('orphan')" 2>&1)
if echo "$msg" | grep -q "ERROR:  42704: owner role \"us_trojan_gone\" of model \"orphan\" does not exist" &&
	[ "$(q "SELECT count(*) FROM models WHERE name = 'orphan'")" = 1 ]; then
	ok "orphaned model: 42704, nothing stored"
else
	notok "orphaned model retrain gave: $msg"
fi

[ $fails = 0 ] && echo "PASS trust_retrain" || echo "FAIL trust_retrain: $fails failed"
exit $((fails > 0))
