#!/bin/bash
# userseq_publish / userseq_unpublish: a model's deployed version copied into a user table and
# kept current on deploy, rollback, retrain, a deploying train and drop; every copy written as
# the role that registered it (never as whoever deployed, and never elevated); clear errors for
# bad targets and missing rights. Uses the cluster in the PG* environment (two roles).
set -u
db=us_publish_$$
cleanup() {
	psql -X -q -d postgres -c "DROP DATABASE IF EXISTS $db" -c "DROP ROLE IF EXISTS us_pub_alice" \
		-c "DROP ROLE IF EXISTS us_pub_bob" >/dev/null 2>&1
}
trap cleanup EXIT
cleanup
q() { command psql -X -q -At -v ON_ERROR_STOP=1 -d $db "$@"; }
as() { local r=$1; shift; PGOPTIONS="-c role=$r -c client_min_messages=warning" q "$@"; }
n=0
fail=0
check() {
	n=$((n + 1))
	local name=$1
	shift
	if "$@"; then echo "ok $n - $name"; return 0; fi
	echo "not ok $n - $name"
	fail=1
	return 1
}
eq() { [ "$1" = "$2" ] || { echo "#   got '$1', want '$2'"; return 1; }; }
sqlstate() { # role, sql -> the error's SQLSTATE
	PGOPTIONS="-c role=$1" command psql -X -q -At -d $db -v VERBOSITY=verbose -c "$2" 2>&1 |
		sed -n 's/^ERROR:  \([0-9A-Z]\{5\}\):.*/\1/p' | head -n 1
}

psql -X -q -d postgres -c "CREATE DATABASE $db" -c "CREATE ROLE us_pub_alice" -c "CREATE ROLE us_pub_bob" || exit 1
q -o /dev/null <<'SQL' || exit 1
SET client_min_messages = warning;
CREATE EXTENSION userseq;
GRANT ALL ON SCHEMA public TO us_pub_alice, us_pub_bob;
CREATE TABLE d AS
SELECT u, userseq(ARRAY(SELECT ((u * 3 + e * 5) % 40 + 1)::int8 FROM generate_series(1, 3 + u % 9) e)) AS seq,
       (u * 3) % 40 < 10 AS label FROM generate_series(1, 300) u;
GRANT SELECT ON d TO PUBLIC;
SQL
opts='{"epochs": 1, "embedding_dim": 8, "num_filters": 8, "hidden_dim": 8}'
as us_pub_alice -o /dev/null <<SQL || exit 1
SELECT count(*) FROM userseq_train('pm', 'SELECT seq, label FROM d ORDER BY u', 'binary', '$opts');
CREATE TABLE model_ref (name text PRIMARY KEY, version int, weights bytea,
                        written_by name DEFAULT current_user);
CREATE TABLE bad_cols (name text, version int);
CREATE TABLE bad_type (name text, version bigint, weights bytea);
SQL
same_as_catalog() { # the copy equals the deployed row (or both are absent)
	eq "$(q -c "SELECT coalesce(string_agg(version || ':' || md5(weights), ','), 'none') FROM model_ref WHERE name = 'pm'")" \
		"$(q -c "SELECT coalesce(string_agg(version || ':' || md5(weights), ','), 'none') FROM models WHERE name = 'pm' AND deployed")"
}
check "userseq_publish copies the deployed version and returns it" \
	eq "$(as us_pub_alice -c "SELECT userseq_publish('pm', 'model_ref')")" 1
check "the copy is the catalog's row" same_as_catalog
as us_pub_alice -c "SELECT count(*) FROM userseq_train('pm', 'SELECT seq, label FROM d ORDER BY u', 'binary', '$opts')" >/dev/null
check "a deploying train moves the copy to version 2" same_as_catalog
as us_pub_alice -c "SELECT userseq_rollback('pm')" >/dev/null
check "a rollback moves it back to version 1" eq "$(q -c "SELECT version FROM model_ref WHERE name = 'pm'")" 1
# a superuser deploys: the copy is still written with alice's rights
q -c "SELECT userseq_deploy('pm', 2)" >/dev/null
check "a deploy by a superuser is copied, written as the registering role (alice)" \
	eq "$(q -c "SELECT version || ' ' || written_by FROM model_ref WHERE name = 'pm'")" "2 us_pub_alice"
as us_pub_alice -c "SELECT count(*) FROM userseq_retrain('pm', '{}', true)" >/dev/null
check "a forced retrain is copied (version 3)" same_as_catalog
as us_pub_alice -c "SELECT userseq_drop_model('pm', 3)" >/dev/null
check "dropping the deployed version removes the copy" \
	eq "$(q -c "SELECT count(*) FROM model_ref WHERE name = 'pm'")" 0
as us_pub_alice -c "SELECT userseq_deploy('pm', 1)" >/dev/null
check "deploying again brings it back" same_as_catalog
check "another role (no rights on the model) may not publish it: 42501" \
	eq "$(q -c "GRANT INSERT, DELETE ON model_ref TO us_pub_bob" && sqlstate us_pub_bob "SELECT userseq_publish('pm', 'model_ref')")" 42501
check "publishing into a table without INSERT/DELETE rights: 42501" \
	eq "$(q -c "CREATE TABLE q_ref (name text, version int, weights bytea)" && sqlstate us_pub_alice "SELECT userseq_publish('pm', 'q_ref')")" 42501
check "a target without the weights column: 42703" eq "$(sqlstate us_pub_alice "SELECT userseq_publish('pm', 'bad_cols')")" 42703
check "a target with version bigint: 42804" eq "$(sqlstate us_pub_alice "SELECT userseq_publish('pm', 'bad_type')")" 42804
check "an unknown model: 42704" eq "$(q -c "CREATE TABLE x_ref (name text, version int, weights bytea)" && sqlstate postgres "SELECT userseq_publish('nope', 'x_ref')")" 42704
check "userseq_unpublish says it was published" eq "$(as us_pub_alice -c "SELECT userseq_unpublish('pm', 'model_ref')")" t
as us_pub_alice -c "SELECT userseq_deploy('pm', 2)" >/dev/null
check "after unpublish a deploy leaves the table alone" eq "$(q -c "SELECT version FROM model_ref WHERE name = 'pm'")" 1
check "the registry is empty again" eq "$(q -c "SELECT count(*) FROM publications")" 0
echo "1..$n"
exit $fail
