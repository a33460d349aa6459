#!/bin/bash
# The shared model cache ($PGDATA/pg_userseq image files, src/pg/models/shared_cache.c): a new
# session maps the image another session wrote instead of decoding, with the same scores as a
# private decode; a deploy is seen by the next call in another session and superseded images
# are removed; a dropped model is unreachable although its image exists; a role without access
# gets the permission error although the model is cached; a corrupt or truncated image is
# refused (checksum), removed and rebuilt; a next_item model's image carries its top-k screen
# and its transition prior, and a session that maps it recommends exactly what a private decode
# does. Runs against the cluster in the PG* environment as
# a superuser (creates and drops its own objects).
set -eu
psql() { command psql -X -q -v ON_ERROR_STOP=1 -At "$@"; }
fail=0
n=0
ok() { n=$((n + 1)); if [ "$1" = "$2" ]; then echo "ok $n - $3"; else echo "not ok $n - $3: got '$1', expected '$2'"; fail=1; fi; }

psql -c "CREATE EXTENSION IF NOT EXISTS userseq"
psql -c "SELECT userseq_drop_model('t_shc')" >/dev/null 2>&1 || true
psql <<'SQL'
SET client_min_messages = warning;
DROP TABLE IF EXISTS t_shc_d;
DROP ROLE IF EXISTS t_shc_nobody;
CREATE ROLE t_shc_nobody;
CREATE TABLE t_shc_d AS
SELECT u, userseq(ARRAY(SELECT ((u * 3 + e * 5) % 40 + 1)::int8 FROM generate_series(1, 3 + u % 9) e)) AS seq,
       (u * 3) % 40 < 10 AS label FROM generate_series(1, 300) u;
GRANT SELECT ON t_shc_d TO t_shc_nobody;
SELECT count(*) FROM userseq_train('t_shc', 'SELECT seq, label FROM t_shc_d', 'binary', '{"epochs": 1, "embedding_dim": 8, "num_filters": 8, "hidden_dim": 8, "seed": 1}');
SELECT count(*) FROM userseq_train('t_shc', 'SELECT seq, label FROM t_shc_d', 'binary', '{"epochs": 1, "embedding_dim": 8, "num_filters": 8, "hidden_dim": 8, "seed": 2, "deploy": false}');
SELECT userseq_deploy('t_shc', 1) IS NULL;
SQL
datadir=$(psql -c "SHOW data_directory")
SCORES="SELECT md5(string_agg(userseq_predict('t_shc', seq)::text, ',' ORDER BY u)) FROM t_shc_d"
# decodes (private), images mapped, written, refused in the session that ran the query
COUNTS="SELECT c.decodes || ' ' || s.mapped || ' ' || s.written || ' ' || s.refused FROM userseq_cache_stats() c, userseq_shared_cache_counters() s"
run() { psql -c "$SCORES" -c "$COUNTS" | tr '\n' ' ' | sed 's/ $//'; }
image() { psql -c "SELECT file FROM userseq_shared_cache_stats() s JOIN models m USING (model_id) WHERE m.name = 't_shc' ORDER BY file"; }

psql -c "SELECT userseq_shared_cache_clear()" >/dev/null
private=$(psql -c "SET userseq.shared_cache_size = 0" -c "$SCORES")
read -r s1 c1 <<<"$(run)"
ok "$c1" "1 0 1 0" "first session decodes and writes the image"
ok "$s1" "$private" "its scores equal a private decode"
ok "$(image | wc -l)" 1 "one image of the model"
read -r s2 c2 <<<"$(run)"
ok "$c2" "0 1 0 0" "a new session maps the image, no decode"
ok "$s2" "$private" "shared scores equal private scores"

# deploy in one session, the next call in another session uses the new version
v2=$(psql -c "SELECT md5(string_agg(userseq_predict(m.weights, d.seq)::text, ',' ORDER BY u)) FROM t_shc_d d, models m WHERE m.name = 't_shc' AND m.version = 2")
psql -c "SELECT userseq_deploy('t_shc', 2)" >/dev/null
read -r s3 c3 <<<"$(run)"
ok "$s3" "$v2" "after a deploy, a new session scores with version 2"
ok "$c3" "1 0 1 0" "version 2 was decoded (the version 1 image is not reachable)"
ok "$(image | wc -l)" 1 "the superseded version's image was removed"
read -r s4 c4 <<<"$(run)"
ok "$s4 $c4" "$v2 0 1 0 0" "the next session maps version 2"

# a role without access (models hidden from PUBLIC, README "Security"): the permission error,
# although the model is cached in the file system and in this very session
trap 'psql -c "GRANT SELECT ON models TO PUBLIC" >/dev/null 2>&1 || true' EXIT
err=$(psql -c "$SCORES" -c "REVOKE SELECT ON models FROM PUBLIC" -c "SET ROLE t_shc_nobody" -c "SELECT userseq_predict('t_shc', seq) FROM t_shc_d LIMIT 1" 2>&1 || true)
psql -c "GRANT SELECT ON models TO PUBLIC"
ok "$(grep -c 'permission denied' <<<"$err")" 1 "a role without access gets the permission error with the model cached"

# corrupt image: one flipped byte in the middle; truncated image
f="$datadir/pg_userseq/$(image)"
size=$(stat -c %s "$f")
printf '\x5a' | dd of="$f" bs=1 seek=$((size / 2)) conv=notrunc status=none
read -r s5 c5 <<<"$(run)"
ok "$s5 $c5" "$v2 1 0 1 1" "a corrupt image is refused, the model decoded and the image rewritten"
read -r s6 c6 <<<"$(run)"
ok "$s6 $c6" "$v2 0 1 0 0" "the rewritten image is mapped"
truncate -s $((size - 100)) "$f"
read -r s7 c7 <<<"$(run)"
ok "$s7 $c7" "$v2 1 0 1 1" "a truncated image is refused and rewritten"

# a dropped model is unreachable everywhere, its image notwithstanding
psql -c "SELECT userseq_drop_model('t_shc')" >/dev/null
ok "$([ -f "$f" ] && echo yes || echo no)" yes "the image file is still there"
err=$(psql -c "$SCORES" 2>&1 || true)
ok "$(grep -c 'does not exist' <<<"$err")" 1 "a dropped model is unreachable"
ok "$([ -f "$f.ok" ] && echo yes || echo no)" yes "the verified image has its marker"
psql -c "SELECT userseq_shared_cache_clear()" >/dev/null
ok "$([ -e "$f" ] || [ -e "$f.ok" ] && echo there || echo gone)" gone "userseq_shared_cache_clear removes the image and its marker"

# next_item: the image carries the int8 top-k screen (test_share checks that opening binds it
# instead of rebuilding it); recommendations from the mapped image equal a private decode's
psql -c "SELECT userseq_drop_model('t_shc_ni')" >/dev/null 2>&1 || true
psql -c "SET client_min_messages = warning" -c "SELECT count(*) FROM userseq_train('t_shc_ni', 'SELECT seq FROM t_shc_d', 'next_item', '{\"epochs\": 1, \"embedding_dim\": 8, \"num_filters\": 8, \"hidden_dim\": 8, \"seed\": 3}')" >/dev/null
# the default transition prior is on here (the planted data are first order): the image carries it
ok "$(psql -c "SELECT (metrics->>'transition_weight')::float8 > 0 AND get_byte(weights, 12) = 1 FROM models WHERE name = 't_shc_ni'")" t "next_item: the model has a transition prior (weight > 0, table in the bytes)"
RECS="SELECT md5(string_agg(r.item || ':' || r.score, ',' ORDER BY d.u, r.rank)) FROM t_shc_d d, LATERAL userseq_recommend('t_shc_ni', d.seq, 5) r"
rrun() { psql -c "$RECS" -c "$COUNTS" | tr '\n' ' ' | sed 's/ $//'; }
private=$(psql -c "SET userseq.shared_cache_size = 0" -c "$RECS")
read -r r1 c1 <<<"$(rrun)"
ok "$r1 $c1" "$private 1 0 1 0" "next_item: the first session decodes, writes the image and recommends as a private decode"
read -r r2 c2 <<<"$(rrun)"
ok "$r2 $c2" "$private 0 1 0 0" "next_item: a new session maps the image and recommends the same items with the same scores"
psql -c "SELECT userseq_drop_model('t_shc_ni')" -c "SELECT userseq_shared_cache_clear()" >/dev/null

psql -c "DROP TABLE t_shc_d" -c "DROP ROLE t_shc_nobody"
exit $fail
