#!/bin/bash
# Transfer from next_item pretraining to label tasks (issue 12; benchmark, not a test): does
# init_from a next_item model pretrained on every user's (unlabelled) sequence beat training the
# label model from scratch? Builds userseq and runs this build in a throwaway cluster of its own
# (a private overlay of the PostgreSQL installation and initdb in a temporary directory, Unix
# socket there, no TCP, all removed at the end; as root the server runs as postgres). Touches
# neither the system's installed userseq nor any other cluster.
#
#   SEEDS="1 2 3" bash test/bench/transfer_bench.sh          (about 30 minutes on 2 loaded cores)
#   PARTS="retail" / PARTS="gen"   one half only; PRE_EPOCHS (3), GEN_USERS (6000), GEN_ITEMS (2000)
#
# Protocol, per part (Online Retail, generated data), per task, per seed s:
#   1. pretrain next_item (seed s) on every user's input sequence: no labels; it sees exactly
#      the sequences the label models read, i.e. events before the cutoff plus the cutoff marker,
#      never an event of the label window [cutoff, end] (that is where the labels come from);
#      sequences of validation and test users are included (unlabelled, as the issue allows).
#   2. train every variant (seed s) on the labelled training users: scratch, and init_from the
#      pretrained model: every block or only the item table ("copy"), with and without frozen
#      blocks, lower learning rate, linear probe (variants() below lists them);
#   3. ROC AUC of every variant on the validation users (userseq_auc of userseq_predict).
# Then per task the variant with the best mean validation AUC over the seeds is chosen among the
# transfer variants, and the test users are scored once: for that variant and for the scratch
# model the task uses (the transfer question), nothing else. Printed: a markdown table with
# validation and test ROC AUC (mean ± sd over seeds) and the choice.
#
# Online Retail: test/data/load_online_retail.sql and test/data/online_retail_tasks.sql (the demo's
# and test/t/online_retail.sh's tables, labels, split: 2335 / 559 / 474 customers), options from
# test/t/online_retail.sh (E = F = H = 32, widths 2,3,4, recent window 3, max_len 300, min_count
# 10) with the seed varied; churn on seq, repeat30 on inv_seq (the choices of README "Online
# Retail: results"); the transfer variants of repeat30 read seq (inv_seq has only item 0 and
# labels the next_item model never saw) and one reads inv_seq (only conv, dense, gaps carry over).
# The pretrained model uses the same shape options and time_gaps on, so every block can copy.
#
# Generated: userseq_generate_events(GEN_USERS, 7, items => GEN_ITEMS), 90 days from 2024-01-01,
# cutoff at day 60; input = events before the cutoff + a cutoff marker (as Online Retail); split
# by md5(user_id) mod 100: 0-4 labelled training users (5 %), 5-9 validation (5 %), 80-99 test,
# the rest unlabelled (pretraining only). Labels from [cutoff, end]: churned (no event; planted
# pattern (b) of the generator) and cat (any event in the category with the most events before
# the cutoff: depends on which items a user touched, so it needs item embeddings).
set -euo pipefail
cd "$(dirname "$0")/../.."
SEEDS=${SEEDS:-1 2 3}
PARTS=${PARTS:-retail gen}
PRE_EPOCHS=${PRE_EPOCHS:-3}
GEN_USERS=${GEN_USERS:-6000}
GEN_ITEMS=${GEN_ITEMS:-2000}
PG_CONFIG=${PG_CONFIG:-/usr/lib/postgresql/15/bin/pg_config}
bindir=$("$PG_CONFIG" --bindir)
start=$SECONDS

# build, then install into a private overlay of the PostgreSQL installation: other sessions on
# this machine may `make install` other builds into the shared system directories while this
# runs (it happened: a mid-run install swapped the library). PostgreSQL finds its share and lib
# directories relative to its executable, so copies of postgres / initdb / pg_ctl under
# $tmp/inst/<bindir> read $tmp/inst/<sharedir> and <pkglibdir>: the system's files, symlinked,
# with this build's userseq files in place of the installed ones.
nice -n 10 make -s PG_CONFIG="$PG_CONFIG" >/dev/null
tmp=$(mktemp -d /tmp/transfer_bench.XXXXXX)
chmod 755 "$tmp"
as_pg() { if [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }
cleanup() { as_pg "$bindir/pg_ctl" -D "$tmp/data" -m fast stop >/dev/null 2>&1 || true; rm -rf "$tmp"; }
trap cleanup EXIT
inst=$tmp/inst
for d in "$("$PG_CONFIG" --sharedir)" "$("$PG_CONFIG" --pkglibdir)"; do
	mkdir -p "$inst$d"
	for f in "$d"/*; do ln -s "$f" "$inst$f"; done
done
rm -f "$inst$("$PG_CONFIG" --sharedir)/extension"
mkdir -p "$inst$("$PG_CONFIG" --sharedir)/extension" "$inst$bindir"
for f in "$("$PG_CONFIG" --sharedir)"/extension/*; do ln -s "$f" "$inst$f"; done
rm -f "$inst$("$PG_CONFIG" --sharedir)"/extension/userseq* "$inst$("$PG_CONFIG" --pkglibdir)"/userseq.so
rm -rf "$inst$("$PG_CONFIG" --pkglibdir)/bitcode"
make -s install DESTDIR="$inst" PG_CONFIG="$PG_CONFIG" with_llvm=no >/dev/null
cp "$bindir/postgres" "$bindir/initdb" "$bindir/pg_ctl" "$inst$bindir/"
bindir=$inst$bindir

# a throwaway cluster of our own (never pg_virtualenv's shared 15/regress name)
[ "$(id -u)" -eq 0 ] && chown postgres "$tmp"
port=5532	# no TCP (listen_addresses ''), the socket is in $tmp: no clash with other clusters
as_pg "$bindir/initdb" -D "$tmp/data" -A trust -U postgres --no-sync -E UTF8 --locale C.UTF-8 >/dev/null
as_pg "$bindir/pg_ctl" -D "$tmp/data" -w -l "$tmp/log" \
	-o "-p $port -k $tmp -c listen_addresses='' -c fsync=off -c jit=off -c timezone=UTC" start >/dev/null
export PGHOST=$tmp PGPORT=$port PGUSER=postgres PGDATABASE=postgres
export PGOPTIONS="-c client_min_messages=warning"
q() { psql -X -q -At -v ON_ERROR_STOP=1 "$@"; }
echo "# $(date -u '+%Y-%m-%d %H:%M') UTC, load $(cut -d' ' -f1-3 /proc/loadavg), seeds $SEEDS, pretraining $PRE_EPOCHS epochs"

q -c "SELECT '# userseq from ' || setting FROM pg_config WHERE name = 'PKGLIBDIR'"
q <<'SQL'
CREATE EXTENSION userseq;
CREATE TABLE tb_runs (part text, task text, variant text, seed int, valid_auc float8,
	test_auc float8, best_epoch int, seconds float8, PRIMARY KEY (part, task, variant, seed));
-- ds: one row per user of either part: input sequences, labels (NULL where a task does not
-- apply), split; filled below
CREATE TABLE ds (part text, user_id bigint, split text, seq userseq, inv_seq userseq,
	label1 boolean, label2 boolean, PRIMARY KEY (part, user_id));
SQL

# the label options of the Online Retail test, with the seed varied
or_opts=$(sed -n "/^opts='/,/}'/p" test/t/online_retail.sh | sed "s/^opts='//; s/'\$//" | tr -d '\n\t')
q -c "SELECT '$or_opts'::jsonb" >/dev/null

if [[ " $PARTS " == *" retail "* ]]; then
	q -v datadir="$PWD/test/data/online_retail" -f test/data/load_online_retail.sql >/dev/null
	q -f test/data/online_retail_tasks.sql >/dev/null
	q -c "INSERT INTO ds SELECT 'retail', user_id, split, seq, inv_seq, churned, repeat30 FROM or_customers"
fi
if [[ " $PARTS " == *" gen "* ]]; then
	q <<SQL
CREATE TABLE g_ev AS SELECT * FROM userseq_generate_events($GEN_USERS, 7, items => $GEN_ITEMS);
INSERT INTO ds
WITH c AS (SELECT timestamptz '2024-03-01 00:00+00' AS cutoff),
top AS (SELECT category FROM g_ev, c WHERE ts < cutoff GROUP BY 1 ORDER BY count(*) DESC, 1 LIMIT 1),
b AS (SELECT user_id, userseq_agg(item_id, ts, behavior) AS s FROM g_ev, c WHERE ts < cutoff GROUP BY 1),
a AS (SELECT user_id, bool_or(category = (SELECT category FROM top)) AS cat FROM g_ev, c WHERE ts >= cutoff GROUP BY 1)
SELECT 'gen', b.user_id,
	CASE WHEN h < 5 THEN 'train' WHEN h < 10 THEN 'valid' WHEN h >= 80 THEN 'test' ELSE 'unlabelled' END,
	b.s || userseq(ARRAY[0::bigint], ARRAY[c.cutoff], ARRAY['cutoff']), NULL,
	a.user_id IS NULL, coalesce(a.cat, false)
FROM b CROSS JOIN c LEFT JOIN a USING (user_id),
	LATERAL (SELECT ('x' || substr(md5(b.user_id::text), 1, 8))::bit(32)::bigint % 100 AS h) s;
SQL
fi
q -c "ANALYZE ds"
q -F ' ' -c "SELECT '# ' || part, split, count(*) AS users, round(avg(label1::int), 3) AS label1_rate,
	round(avg(label2::int), 3) AS label2_rate, round(avg(userseq_length(seq)), 1) AS mean_events
FROM ds GROUP BY 1, 2 ORDER BY 1, 2"

# train PART TASK VARIANT SEED SEQCOL LABELCOL OPTS: one model, its validation AUC and timing
train() {
	local part=$1 task=$2 variant=$3 seed=$4 col=$5 label=$6 opts=$7 name="tb_$1_$2_$3_$4" t0 t1
	t0=$(date +%s.%N)
	nice -n 10 psql -X -q -At -v ON_ERROR_STOP=1 -c "SELECT count(*) FROM userseq_train('$name',
		\$\$SELECT $col AS seq, $label AS label FROM ds WHERE part = '$part' AND split = 'train' ORDER BY user_id\$\$,
		'binary', '$opts')" >/dev/null
	t1=$(date +%s.%N)
	q -c "INSERT INTO tb_runs SELECT '$part', '$task', '$variant', $seed,
		(SELECT userseq_auc(userseq_predict('$name', $col), $label) FROM ds WHERE part = '$part' AND split = 'valid'),
		NULL, (SELECT (metrics->>'best_epoch')::int FROM models WHERE name = '$name' AND deployed), $t1 - $t0"
}

# variants NAME|SEQCOL|OPTS (OPTS are merged into the part's options; PRE is the pretrained model
# with next_item's default embed_init_std 0.05, PRE1 the one pretrained with embed_init_std 1,
# the label tasks' default, so copied rows have the scale the label model's fresh rows have)
variants() { # part task -> lines
	local body='"item_embedding", "behavior_embedding", "gap_embedding", "conv", "dense"'
	local base=seq
	[ "$1:$2" = retail:repeat30 ] && base=inv_seq
	echo "scratch|$base|{}"
	[ "$1:$2" = retail:repeat30 ] && echo "scratch_seq|seq|{}" && echo "init1_inv_seq|inv_seq|{\"init_from\": {\"model\": \"PRE1\"}}"
	echo "init05|seq|{\"init_from\": {\"model\": \"PRE\"}}"
	echo "init05_freeze_item|seq|{\"init_from\": {\"model\": \"PRE\", \"freeze\": [\"item_embedding\"]}}"
	echo "init1|seq|{\"init_from\": {\"model\": \"PRE1\"}}"
	echo "init1_freeze_item|seq|{\"init_from\": {\"model\": \"PRE1\", \"freeze\": [\"item_embedding\"]}}"
	echo "init1_freeze_emb|seq|{\"init_from\": {\"model\": \"PRE1\", \"freeze\": [\"item_embedding\", \"behavior_embedding\", \"gap_embedding\"]}}"
	echo "init1_lowlr|seq|{\"init_from\": {\"model\": \"PRE1\"}, \"learning_rate\": 0.0005}"
	echo "init1_probe|seq|{\"init_from\": {\"model\": \"PRE1\", \"freeze\": [$body]}, \"learning_rate\": 0.01, \"epochs\": 30, \"patience\": 5}"
	echo "items05|seq|{\"init_from\": {\"model\": \"PRE\", \"copy\": [\"item_embedding\"]}}"
	echo "items1|seq|{\"init_from\": {\"model\": \"PRE1\", \"copy\": [\"item_embedding\"]}}"
	echo "items1_freeze|seq|{\"init_from\": {\"model\": \"PRE1\", \"copy\": [\"item_embedding\"], \"freeze\": [\"item_embedding\"]}}"
}

for part in $PARTS; do
	case $part in
		retail) popts=$or_opts; tasks="churn:label1 repeat30:label2";;
		gen) popts='{"recent_window": 3, "embedding_dim": 32, "num_filters": 32, "hidden_dim": 32}'; tasks="churned:label1 cat:label2";;
	esac
	for seed in $SEEDS; do
		pre="tb_pre_${part}_$seed"
		for std in 0.05 1; do
			name=$pre
			[ $std = 1 ] && name=${pre/pre/pre1}
			t0=$(date +%s.%N)
			nice -n 10 psql -X -q -At -v ON_ERROR_STOP=1 -c "SELECT count(*) FROM userseq_train('$name',
				\$\$SELECT seq FROM ds WHERE part = '$part' ORDER BY user_id\$\$, 'next_item',
				'$popts'::jsonb || '{\"seed\": $seed, \"time_gaps\": true, \"epochs\": $PRE_EPOCHS, \"embed_init_std\": $std}')" >/dev/null
			t1=$(date +%s.%N)
			q -F ' ' -c "SELECT '# pretrained $name: ' || (config->>'n_items') || ' item rows, best epoch ' || (metrics->>'best_epoch')
				|| ', valid ndcg@10 ' || round((metrics->>'ndcg@10')::numeric, 4) || ', ' || round($t1 - $t0) || ' s'
				FROM models WHERE name = '$name' AND deployed"
		done
		for tl in $tasks; do
			task=${tl%%:*} label=${tl#*:}
			while IFS='|' read -r v col o; do
				o=${o//PRE1/${pre/pre/pre1}}
				o=${o//PRE/$pre}
				train "$part" "$task" "$v" "$seed" "$col" "$label" \
					"$(q -c "SELECT '$popts'::jsonb || '{\"seed\": $seed}' || '$o'::jsonb")"
			done < <(variants "$part" "$task")
		done
	done
	# the choice (validation only), then the test users once: the chosen transfer variant and scratch
	for tl in $tasks; do
		task=${tl%%:*} label=${tl#*:}
		chosen=$(q -c "SELECT variant FROM tb_runs WHERE part = '$part' AND task = '$task' AND variant NOT LIKE 'scratch%'
			GROUP BY 1 ORDER BY avg(valid_auc) DESC LIMIT 1")
		for v in scratch "$chosen"; do
			col=$(variants "$part" "$task" | awk -F'|' -v v="$v" '$1 == v {print $2}')
			q -c "UPDATE tb_runs r SET test_auc = (SELECT userseq_auc(userseq_predict('tb_${part}_${task}_${v}_' || r.seed, $col), $label)
				FROM ds WHERE part = '$part' AND split = 'test')
				WHERE part = '$part' AND task = '$task' AND variant = '$v'"
		done
	done
done

echo
echo "| data | task | variant | valid ROC AUC | test ROC AUC | best epoch | s per run |"
echo "|---|---|---|---|---|---|---|"
q -F ' | ' <<'SQL'
WITH s AS (
	SELECT part, task, variant, count(*) AS n,
		avg(valid_auc) AS v, stddev_samp(valid_auc) AS vsd, avg(test_auc) AS t, stddev_samp(test_auc) AS tsd,
		count(test_auc) AS nt, round(avg(best_epoch), 1) AS be, round(avg(seconds)::numeric, 1) AS sec
	FROM tb_runs GROUP BY 1, 2, 3),
best AS (SELECT DISTINCT ON (part, task) part, task, variant FROM s ORDER BY part, task, v DESC)
SELECT '| ' || CASE s.part WHEN 'retail' THEN 'Online Retail' ELSE 'generated, 5 % labelled' END, s.task,
	s.variant || CASE WHEN s.nt > 0 AND s.variant <> 'scratch' THEN ' (chosen transfer variant)' ELSE '' END
		|| CASE WHEN b.variant IS NOT NULL THEN ' **best on validation**' ELSE '' END,
	round(s.v::numeric, 4) || ' ± ' || round(coalesce(s.vsd, 0)::numeric, 4),
	CASE WHEN s.nt > 0 THEN round(s.t::numeric, 4) || ' ± ' || round(coalesce(s.tsd, 0)::numeric, 4) ELSE '' END,
	s.be, s.sec || ' |'
FROM s LEFT JOIN best b USING (part, task, variant)
ORDER BY s.part DESC, s.task, s.variant <> 'scratch', s.variant;
SQL
echo
echo "per seed (validation / test ROC AUC):"
q -F ' ' -c "SELECT part, task, variant, string_agg(seed || ': ' || round(valid_auc::numeric, 4)
	|| coalesce(' / ' || round(test_auc::numeric, 4), ''), ', ' ORDER BY seed) FROM tb_runs GROUP BY 1, 2, 3 ORDER BY 1 DESC, 2, 3"
echo "# transfer_bench.sh: $((SECONDS - start)) s, load $(cut -d' ' -f1-3 /proc/loadavg)"
