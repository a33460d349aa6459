#!/bin/bash
# Issue 10.5: the extension's internal SQL never resolves operators or functions through the
# caller's search_path. Another role plants =, <, ->, ->> and count / max / array_agg in
# public, each recording its calls in public.trap; alice and the superuser then call every
# extension function that runs internal SQL with search_path = public, pg_catalog (planted
# objects first). The trap must stay empty (and every call must succeed).
# Runs against the cluster in the PG* environment, in its own database.
set -u
db=us_sp_$$
out=$(mktemp)
cleanup() {
	psql -X -q -d postgres -c "DROP DATABASE IF EXISTS $db" >/dev/null 2>&1
	psql -X -q -d postgres -c "DROP ROLE IF EXISTS us_sp_alice" >/dev/null 2>&1
	rm -f "$out"
}
trap cleanup EXIT

psql -X -q -d postgres -c "CREATE DATABASE $db" || exit 1
psql -X -q -o /dev/null -d $db -v ON_ERROR_STOP=1 <<'SQL' || exit 1
SET client_min_messages = warning;
DROP ROLE IF EXISTS us_sp_alice;
CREATE ROLE us_sp_alice;
CREATE EXTENSION userseq;
CREATE TABLE public.d AS
SELECT u, userseq(ARRAY(SELECT ((u * 3 + e * 5) % 40 + 1)::int8 FROM generate_series(1, 3 + u % 9) e)) AS seq,
       (u * 3) % 40 < 10 AS label FROM generate_series(1, 300) u;
GRANT SELECT ON public.d TO PUBLIC;
CREATE TABLE public.trap (what text, who name);
GRANT INSERT ON public.trap TO PUBLIC;

-- the planted objects: each records the call and then does what the real one does
CREATE FUNCTION public.trap_texteq(text, text) RETURNS boolean LANGUAGE plpgsql AS
$$BEGIN INSERT INTO public.trap VALUES ('=(text,text)', current_user); RETURN $1 OPERATOR(pg_catalog.=) $2; END$$;
CREATE OPERATOR public.= (LEFTARG = text, RIGHTARG = text, FUNCTION = public.trap_texteq);
CREATE FUNCTION public.trap_int4eq(int4, int4) RETURNS boolean LANGUAGE plpgsql AS
$$BEGIN INSERT INTO public.trap VALUES ('=(int4,int4)', current_user); RETURN $1 OPERATOR(pg_catalog.=) $2; END$$;
CREATE OPERATOR public.= (LEFTARG = int4, RIGHTARG = int4, FUNCTION = public.trap_int4eq);
CREATE FUNCTION public.trap_int8eq(int8, int8) RETURNS boolean LANGUAGE plpgsql AS
$$BEGIN INSERT INTO public.trap VALUES ('=(int8,int8)', current_user); RETURN $1 OPERATOR(pg_catalog.=) $2; END$$;
CREATE OPERATOR public.= (LEFTARG = int8, RIGHTARG = int8, FUNCTION = public.trap_int8eq);
CREATE FUNCTION public.trap_int4lt(int4, int4) RETURNS boolean LANGUAGE plpgsql AS
$$BEGIN INSERT INTO public.trap VALUES ('<(int4,int4)', current_user); RETURN $1 OPERATOR(pg_catalog.<) $2; END$$;
CREATE OPERATOR public.< (LEFTARG = int4, RIGHTARG = int4, FUNCTION = public.trap_int4lt);
CREATE FUNCTION public.trap_arrow(jsonb, text) RETURNS jsonb LANGUAGE plpgsql AS
$$BEGIN INSERT INTO public.trap VALUES ('->(jsonb,text)', current_user); RETURN $1 OPERATOR(pg_catalog.->) $2; END$$;
CREATE OPERATOR public.-> (LEFTARG = jsonb, RIGHTARG = text, FUNCTION = public.trap_arrow);
CREATE FUNCTION public.trap_arrow2(jsonb, text) RETURNS text LANGUAGE plpgsql AS
$$BEGIN INSERT INTO public.trap VALUES ('->>(jsonb,text)', current_user); RETURN $1 OPERATOR(pg_catalog.->>) $2; END$$;
CREATE OPERATOR public.->> (LEFTARG = jsonb, RIGHTARG = text, FUNCTION = public.trap_arrow2);
CREATE FUNCTION public.trap_count_sf(int8) RETURNS int8 LANGUAGE plpgsql AS
$$BEGIN INSERT INTO public.trap VALUES ('count(*)', current_user); RETURN $1 + 1; END$$;
CREATE AGGREGATE public.count(*) (SFUNC = public.trap_count_sf, STYPE = int8, INITCOND = '0');
CREATE FUNCTION public.trap_max_sf(int4, int4) RETURNS int4 LANGUAGE plpgsql AS
$$BEGIN INSERT INTO public.trap VALUES ('max(int4)', current_user); RETURN pg_catalog.greatest($1, $2); END$$;
CREATE AGGREGATE public.max(int4) (SFUNC = public.trap_max_sf, STYPE = int4);
CREATE FUNCTION public.trap_agg_sf(tid[], tid) RETURNS tid[] LANGUAGE plpgsql AS
$$BEGIN INSERT INTO public.trap VALUES ('array_agg(tid)', current_user); RETURN $1 || $2; END$$;
CREATE AGGREGATE public.array_agg(tid) (SFUNC = public.trap_agg_sf, STYPE = tid[]);
-- the trap works: a statement that uses them records calls
SET search_path = public, pg_catalog;
SELECT count(*) FROM public.d WHERE 'a' = 'a' AND 1 = 1;
DO $$BEGIN IF (SELECT count(*) FROM public.trap WHERE what IN ('=(text,text)', 'count(*)')) < 2 THEN
	RAISE EXCEPTION 'the planted objects are not reached'; END IF; END$$;
TRUNCATE public.trap;
SQL

# every function that runs internal SQL, by a plain role and by the superuser
calls() {
	local r=$1
	cat <<SQL
SET client_min_messages = warning;
SET max_parallel_workers_per_gather = 0;
$2
SET search_path = public, pg_catalog;
SELECT pg_catalog.count(*) FROM userseq_train('sp_$r', 'SELECT seq, label FROM d', 'binary', '{"epochs": 1, "embedding_dim": 8, "num_filters": 8, "hidden_dim": 8}');
SELECT pg_catalog.count(*) FROM userseq_train('sp_$r', 'SELECT seq, label FROM d', 'binary', '{"epochs": 1, "embedding_dim": 8, "num_filters": 8, "hidden_dim": 8, "seed": 2}');
SELECT new_version FROM userseq_retrain('sp_$r', force => true);
SELECT userseq_deploy('sp_$r', 2);
SELECT userseq_rollback('sp_$r');
SELECT length(userseq_export('sp_$r')) > 0, length(userseq_export('sp_$r', 3)) > 0;
SELECT userseq_import('sp_${r}_copy', userseq_export('sp_$r'));
SELECT pg_catalog.count(*) FROM userseq_evaluate('sp_$r', 'SELECT seq, label FROM d');
SELECT pg_catalog.count(*) FROM userseq_roc_curve('sp_$r', 'SELECT seq, label FROM d');
SELECT pg_catalog.count(*) FROM userseq_confusion_matrix('sp_$r', 'SELECT seq, label FROM d');
SELECT sum(userseq_predict('sp_$r', seq)) IS NOT NULL, sum((userseq_predict_proba('sp_$r', seq))[1]) IS NOT NULL,
       pg_catalog.count(userseq_predict_class('sp_$r', seq)), sum(cardinality(userseq_embed('sp_$r', seq))) FROM d;
SELECT pg_catalog.count(*) FROM userseq_train('spn_$r', 'SELECT seq FROM d', 'next_item', '{"epochs": 1, "embedding_dim": 8, "num_filters": 8, "hidden_dim": 8}');
SELECT pg_catalog.count(*) FROM d, LATERAL userseq_recommend('spn_$r', seq, 3);
SELECT pg_catalog.count(*) FROM userseq_evaluate('spn_$r', 'SELECT seq FROM d');
SELECT userseq_drop_model('sp_$r', 1);
SELECT userseq_drop_model('sp_${r}_copy');
SELECT userseq_drop_model('spn_$r');
SQL
}
fails=0
{ calls alice "SET ROLE us_sp_alice;"; calls su "RESET ROLE;"; } | psql -X -At -d $db -v ON_ERROR_STOP=1 >"$out" 2>&1 || {
	echo "not ok - a call failed:"; tail -5 "$out"; fails=1
}
t=$(psql -X -At -d $db -c "SELECT coalesce(string_agg(what || ' by ' || who || ': ' || n, ', '), '') FROM (SELECT what, who, count(*) n FROM public.trap GROUP BY 1, 2 ORDER BY 1, 2) x")
if [ -z "$t" ]; then
	echo "ok - no planted operator or function ran in 2 x 18 extension calls with search_path = public, pg_catalog"
else
	echo "not ok - planted objects ran: $t"; fails=1
fi
[ $fails = 0 ] && echo "PASS trust_search_path" || echo "FAIL trust_search_path"
exit $fails
