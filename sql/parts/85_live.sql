-- ---------------------------------------------------------------- real time (src/pg/live/live.c)
-- userseq_live_attach checks an events table, a target table and the models, then creates an
-- AFTER INSERT FOR EACH ROW trigger (C) that keeps target's row of the event's user up to date
-- in the inserting transaction, with the inserting role's privileges. The trigger's arguments
-- are the resolved configuration (see live.c); detach and rebuild read them back.

CREATE FUNCTION @extschema@.userseq_live_trigger() RETURNS trigger
	AS 'MODULE_PATHNAME', 'userseq_live_trigger' LANGUAGE C VOLATILE PARALLEL UNSAFE;
COMMENT ON FUNCTION @extschema@.userseq_live_trigger() IS 'internal: the AFTER INSERT trigger userseq_live_attach creates (appends the event to target.seq, re-scores, notifies on threshold crossings)';

-- the arguments of a trigger as text[] (pg_trigger.tgargs is NUL-separated bytes)
CREATE FUNCTION @extschema@.userseq_live_args(trigger_oid pg_catalog.oid) RETURNS pg_catalog.text[]
	LANGUAGE plpgsql STABLE PARALLEL SAFE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
	b bytea;
	args text[] := '{}';
	pos int := 1;
	len int;
BEGIN
	SELECT tgargs INTO b FROM pg_trigger WHERE oid = trigger_oid;
	IF b IS NULL THEN RETURN NULL; END IF;
	WHILE pos <= length(b) LOOP
		len := position('\x00'::bytea IN substring(b FROM pos)) - 1;
		args := args || convert_from(substring(b FROM pos FOR len), current_setting('server_encoding'));
		pos := pos + len + 1;
	END LOOP;
	RETURN args;
END $$;
COMMENT ON FUNCTION @extschema@.userseq_live_args(pg_catalog.oid) IS 'internal: the arguments of a trigger as text[] (the configuration of a userseq_live trigger)';

CREATE FUNCTION @extschema@.userseq_live_attach(events pg_catalog.regclass, target pg_catalog.regclass,
												options pg_catalog.jsonb DEFAULT '{}')
	RETURNS pg_catalog.text
	LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
	k text;
	v jsonb;
	ucol text := coalesce(options->>'user', 'user_id');
	icol text := coalesce(options->>'item', 'item_id');
	tcol text := coalesce(options->>'ts', 'ts');
	bcol text := options->>'behavior';
	utype oid;
	uatt int2;
	t oid;
	max_len int;
	model_max int;
	m record;
	args text[];
	n_scores int := 0;
	n_notify int := 0;
	dir text;
	thr float8;
	chan text;
	has_updated bool;
	trigger_name text;
	target_name text;
	existing oid;
BEGIN
	IF events IS NULL OR target IS NULL THEN
		RAISE EXCEPTION 'userseq_live_attach needs an events table and a target table' USING ERRCODE = 'null_value_not_allowed';
	END IF;
	options := coalesce(options, '{}');
	IF jsonb_typeof(options) <> 'object' THEN
		RAISE EXCEPTION 'userseq_live_attach options must be a JSON object' USING ERRCODE = 'invalid_parameter_value';
	END IF;
	FOR k IN SELECT jsonb_object_keys(options) LOOP
		IF k NOT IN ('user', 'item', 'ts', 'behavior', 'max_len', 'scores', 'notify') THEN
			RAISE EXCEPTION 'unknown userseq_live_attach option "%"', k USING ERRCODE = 'invalid_parameter_value',
				HINT = 'Options are user, item, ts, behavior, max_len, scores and notify.';
		END IF;
	END LOOP;
	IF events = target THEN
		RAISE EXCEPTION 'the events table and the target table must differ' USING ERRCODE = 'invalid_parameter_value';
	END IF;
	IF (SELECT relkind FROM pg_class WHERE oid = events) NOT IN ('r', 'p') THEN
		RAISE EXCEPTION '% is not a table', events USING ERRCODE = 'wrong_object_type';
	END IF;
	IF (SELECT relkind FROM pg_class WHERE oid = target) NOT IN ('r', 'p') THEN
		RAISE EXCEPTION '% is not a table', target USING ERRCODE = 'wrong_object_type';
	END IF;

	-- the events' columns
	SELECT atttypid INTO utype FROM pg_attribute WHERE attrelid = events AND attname = ucol AND attnum > 0 AND NOT attisdropped;
	IF utype IS NULL THEN
		RAISE EXCEPTION 'events table % has no column "%"', events, ucol USING ERRCODE = 'undefined_column',
			HINT = 'Name the user column with the "user" option (default user_id).';
	END IF;
	SELECT atttypid INTO t FROM pg_attribute WHERE attrelid = events AND attname = icol AND attnum > 0 AND NOT attisdropped;
	IF t IS NULL THEN
		RAISE EXCEPTION 'events table % has no column "%"', events, icol USING ERRCODE = 'undefined_column',
			HINT = 'Name the item column with the "item" option (default item_id).';
	ELSIF t NOT IN ('int8'::regtype, 'int4'::regtype, 'int2'::regtype) THEN
		RAISE EXCEPTION 'item column "%" of % is %, not bigint', icol, events, t::regtype USING ERRCODE = 'datatype_mismatch',
			HINT = 'Items are bigint (integer and smallint are accepted).';
	END IF;
	SELECT atttypid INTO t FROM pg_attribute WHERE attrelid = events AND attname = tcol AND attnum > 0 AND NOT attisdropped;
	IF t IS NULL THEN
		RAISE EXCEPTION 'events table % has no column "%"', events, tcol USING ERRCODE = 'undefined_column',
			HINT = 'Name the time column with the "ts" option (default ts).';
	ELSIF t <> 'timestamptz'::regtype THEN
		RAISE EXCEPTION 'time column "%" of % is %, not timestamp with time zone', tcol, events, t::regtype USING ERRCODE = 'datatype_mismatch';
	END IF;
	-- behaviour: named, explicitly none (JSON null), or "behavior" when the table has one
	IF options ? 'behavior' AND bcol IS NULL THEN
		bcol := '';
	ELSIF bcol IS NULL THEN
		bcol := CASE WHEN EXISTS (SELECT 1 FROM pg_attribute WHERE attrelid = events AND attname = 'behavior'
								  AND attnum > 0 AND NOT attisdropped) THEN 'behavior' ELSE '' END;
	END IF;
	IF bcol <> '' THEN
		SELECT atttypid INTO t FROM pg_attribute WHERE attrelid = events AND attname = bcol AND attnum > 0 AND NOT attisdropped;
		IF t IS NULL THEN
			RAISE EXCEPTION 'events table % has no column "%"', events, bcol USING ERRCODE = 'undefined_column',
				HINT = 'Name the behaviour column with the "behavior" option, or pass "behavior": null for none.';
		ELSIF t NOT IN ('text'::regtype, 'varchar'::regtype) THEN
			RAISE EXCEPTION 'behavior column "%" of % is %, not text', bcol, events, t::regtype USING ERRCODE = 'datatype_mismatch';
		END IF;
	END IF;

	-- the target: user_id (same type, unique), seq userseq, optional updated timestamptz
	SELECT atttypid, attnum INTO t, uatt FROM pg_attribute WHERE attrelid = target AND attname = 'user_id' AND attnum > 0 AND NOT attisdropped;
	IF t IS NULL THEN
		RAISE EXCEPTION 'target table % has no column "user_id"', target USING ERRCODE = 'undefined_column';
	ELSIF t <> utype THEN
		RAISE EXCEPTION 'user_id of % is %, but the events'' user column "%" is %', target, t::regtype, ucol, utype::regtype
			USING ERRCODE = 'datatype_mismatch';
	END IF;
	IF NOT EXISTS (SELECT 1 FROM pg_index i WHERE i.indrelid = target AND i.indisunique AND i.indimmediate AND i.indisvalid
				   AND i.indnatts = 1 AND i.indkey[0] = uatt AND i.indpred IS NULL AND i.indexprs IS NULL) THEN
		RAISE EXCEPTION 'target table % has no unique key on user_id', target USING ERRCODE = 'invalid_column_reference',
			HINT = format('ALTER TABLE %s ADD PRIMARY KEY (user_id) (the key must not be deferrable or partial).', target);
	END IF;
	SELECT atttypid INTO t FROM pg_attribute WHERE attrelid = target AND attname = 'seq' AND attnum > 0 AND NOT attisdropped;
	IF t IS NULL THEN
		RAISE EXCEPTION 'target table % has no column "seq"', target USING ERRCODE = 'undefined_column';
	ELSIF t <> '@extschema@.userseq'::regtype THEN
		RAISE EXCEPTION 'column "seq" of % is %, not userseq', target, t::regtype USING ERRCODE = 'datatype_mismatch';
	END IF;
	SELECT atttypid INTO t FROM pg_attribute WHERE attrelid = target AND attname = 'updated' AND attnum > 0 AND NOT attisdropped;
	has_updated := t IS NOT NULL;
	IF has_updated AND t <> 'timestamptz'::regtype THEN
		RAISE EXCEPTION 'column "updated" of % is %, not timestamp with time zone', target, t::regtype USING ERRCODE = 'datatype_mismatch';
	END IF;

	-- scores: {column: model}; each a deployed binary or regression model
	args := ARRAY[]::text[];
	IF options ? 'scores' THEN
		IF jsonb_typeof(options->'scores') <> 'object' THEN
			RAISE EXCEPTION '"scores" must be an object mapping target columns to model names' USING ERRCODE = 'invalid_parameter_value';
		END IF;
		FOR k, v IN SELECT * FROM jsonb_each(options->'scores') LOOP
			IF jsonb_typeof(v) <> 'string' THEN
				RAISE EXCEPTION 'score column "%": the model must be a name (a JSON string)', k USING ERRCODE = 'invalid_parameter_value';
			END IF;
			IF k IN ('user_id', 'seq', 'updated') THEN
				RAISE EXCEPTION 'score column "%" is one the trigger writes itself', k USING ERRCODE = 'invalid_parameter_value';
			END IF;
			SELECT atttypid INTO t FROM pg_attribute WHERE attrelid = target AND attname = k AND attnum > 0 AND NOT attisdropped;
			IF t IS NULL THEN
				RAISE EXCEPTION 'target table % has no column "%"', target, k USING ERRCODE = 'undefined_column',
					HINT = format('ALTER TABLE %s ADD COLUMN %I double precision', target, k);
			ELSIF t <> 'float8'::regtype THEN
				RAISE EXCEPTION 'score column "%" of % is %, not double precision', k, target, t::regtype USING ERRCODE = 'datatype_mismatch';
			END IF;
			SELECT task, (config->>'max_len')::int AS max_len INTO m FROM @extschema@.models WHERE name = v #>> '{}' AND deployed;
			IF NOT FOUND THEN
				IF EXISTS (SELECT 1 FROM @extschema@.models WHERE name = v #>> '{}') THEN
					RAISE EXCEPTION 'model "%" has no deployed version', v #>> '{}' USING ERRCODE = 'undefined_object',
						HINT = 'Deploy one with userseq_deploy.';
				END IF;
				RAISE EXCEPTION 'model "%" does not exist', v #>> '{}' USING ERRCODE = 'undefined_object',
					HINT = 'Train it with userseq_train, or list the models in @extschema@.models.';
			END IF;
			IF m.task = 'next_item' THEN
				RAISE EXCEPTION 'model "%" is of task next_item: its score is a ranking of items, not one number', v #>> '{}'
					USING ERRCODE = 'wrong_object_type',
					HINT = 'Keep only the sequence live and read recommendations when needed: userseq_recommend(model, target.seq, k).';
			ELSIF m.task IN ('multiclass', 'next_behavior') THEN
				RAISE EXCEPTION 'model "%" is of task %: its score is a class distribution, not one number', v #>> '{}', m.task
					USING ERRCODE = 'wrong_object_type',
					HINT = 'Read userseq_predict_class(model, target.seq) or userseq_predict_proba(model, target.seq) when needed, or train a binary model for the class that matters.';
			END IF;
			model_max := greatest(model_max, m.max_len);
			args := args || ARRAY['score', k, v #>> '{}'];
			n_scores := n_scores + 1;
		END LOOP;
	END IF;
	IF n_scores > 8 THEN
		RAISE EXCEPTION 'at most 8 scores per target (got %)', n_scores USING ERRCODE = 'program_limit_exceeded';
	END IF;

	-- notify: [{column, above | below, channel}]
	IF options ? 'notify' THEN
		IF jsonb_typeof(options->'notify') <> 'array' THEN
			RAISE EXCEPTION '"notify" must be an array of {"column", "above" or "below", "channel"}' USING ERRCODE = 'invalid_parameter_value';
		END IF;
		FOR v IN SELECT * FROM jsonb_array_elements(options->'notify') LOOP
			IF jsonb_typeof(v) <> 'object' OR NOT (v ? 'column') OR NOT (v ? 'channel') OR ((v ? 'above') = (v ? 'below'))
			   OR EXISTS (SELECT 1 FROM jsonb_object_keys(v) x WHERE x NOT IN ('column', 'above', 'below', 'channel')) THEN
				RAISE EXCEPTION 'notify entry % must be {"column": .., "above" or "below": number, "channel": ..}', v
					USING ERRCODE = 'invalid_parameter_value';
			END IF;
			IF NOT coalesce((options->'scores') ? (v->>'column'), false) THEN
				RAISE EXCEPTION 'notify column "%" is not one of the scores', v->>'column' USING ERRCODE = 'invalid_parameter_value',
					HINT = 'Notifications follow score columns listed in "scores".';
			END IF;
			dir := CASE WHEN v ? 'above' THEN 'above' ELSE 'below' END;
			IF jsonb_typeof(v->dir) <> 'number' THEN
				RAISE EXCEPTION 'notify "%" must be a number', dir USING ERRCODE = 'invalid_parameter_value';
			END IF;
			thr := (v->>dir)::float8;
			chan := v->>'channel';
			IF chan IS NULL OR chan = '' OR octet_length(chan) >= 64 THEN
				RAISE EXCEPTION 'notify channel must be a non-empty name of at most 63 bytes' USING ERRCODE = 'invalid_parameter_value';
			END IF;
			args := args || ARRAY['notify', v->>'column', dir, thr::text, chan];
			n_notify := n_notify + 1;
		END LOOP;
	END IF;

	-- max_len: given, else the largest of the scored models, else 200
	IF options ? 'max_len' THEN
		IF jsonb_typeof(options->'max_len') <> 'number' OR (options->>'max_len')::numeric <> floor((options->>'max_len')::numeric)
		   OR (options->>'max_len')::numeric NOT BETWEEN 1 AND 1000000 THEN
			RAISE EXCEPTION '"max_len" must be an integer between 1 and 1000000' USING ERRCODE = 'invalid_parameter_value';
		END IF;
		max_len := (options->>'max_len')::int;
	ELSE
		max_len := coalesce(model_max, 200);
	END IF;

	target_name := format('%I.%I', (SELECT nspname FROM pg_namespace n JOIN pg_class c ON c.relnamespace = n.oid WHERE c.oid = target),
						  (SELECT relname FROM pg_class WHERE oid = target));
	args := ARRAY[target_name, ucol, icol, tcol, bcol, max_len::text, CASE WHEN has_updated THEN 'updated' ELSE '' END] || args;
	trigger_name := left('userseq_live ' || target_name, 63);
	SELECT tg.oid INTO existing FROM pg_trigger tg WHERE tg.tgrelid = events AND tg.tgname = trigger_name;
	IF existing IS NOT NULL AND (@extschema@.userseq_live_args(existing))[1] IS DISTINCT FROM target_name THEN
		RAISE EXCEPTION 'trigger "%" on % already exists and keeps another table', trigger_name, events USING ERRCODE = 'duplicate_object';
	END IF;
	EXECUTE format('CREATE OR REPLACE TRIGGER %I AFTER INSERT ON %s FOR EACH ROW EXECUTE FUNCTION @extschema@.userseq_live_trigger(%s)',
				   trigger_name, events, (SELECT string_agg(quote_literal(a), ', ') FROM unnest(args) a));
	RETURN format('trigger "%s" on %s keeps %s: max_len %s, %s score%s, %s notification%s%s', trigger_name, events, target, max_len,
				  n_scores, CASE WHEN n_scores = 1 THEN '' ELSE 's' END, n_notify, CASE WHEN n_notify = 1 THEN '' ELSE 's' END,
				  CASE WHEN bcol = '' THEN ', no behaviours' ELSE '' END);
END $$;
COMMENT ON FUNCTION @extschema@.userseq_live_attach(pg_catalog.regclass, pg_catalog.regclass, pg_catalog.jsonb) IS 'keeps one row per user of target (user_id, seq, score columns, updated) up to date on every INSERT into events, in the inserting transaction; options: user, item, ts, behavior (column names), max_len, scores {column: model}, notify [{column, above|below, channel}]; attaching again replaces the options';

-- the live trigger on events that keeps target (NULL when none)
CREATE FUNCTION @extschema@.userseq_live_trigger_of(events pg_catalog.regclass, target pg_catalog.regclass)
	RETURNS pg_catalog.oid
	LANGUAGE sql STABLE PARALLEL SAFE SET search_path = pg_catalog, pg_temp AS $$
	SELECT tg.oid FROM pg_trigger tg
	WHERE tg.tgrelid = events AND tg.tgfoid = '@extschema@.userseq_live_trigger()'::regprocedure AND NOT tg.tgisinternal
	  AND (@extschema@.userseq_live_args(tg.oid))[1] = format('%I.%I', (SELECT nspname FROM pg_namespace n JOIN pg_class c ON c.relnamespace = n.oid WHERE c.oid = target),
															 (SELECT relname FROM pg_class WHERE oid = target))
$$;
COMMENT ON FUNCTION @extschema@.userseq_live_trigger_of(pg_catalog.regclass, pg_catalog.regclass) IS 'internal: the OID of the userseq_live trigger on events that keeps target, NULL when none';

CREATE FUNCTION @extschema@.userseq_live_detach(events pg_catalog.regclass, target pg_catalog.regclass)
	RETURNS boolean
	LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
	tg oid := @extschema@.userseq_live_trigger_of(events, target);
BEGIN
	IF tg IS NULL THEN
		RAISE NOTICE 'no userseq_live trigger on % keeps %', events, target;
		RETURN false;
	END IF;
	EXECUTE format('DROP TRIGGER %I ON %s', (SELECT tgname FROM pg_trigger WHERE oid = tg), events);
	RETURN true;
END $$;
COMMENT ON FUNCTION @extschema@.userseq_live_detach(pg_catalog.regclass, pg_catalog.regclass) IS 'drops the userseq_live trigger on events that keeps target (false and a NOTICE when there is none); target keeps its rows';

CREATE FUNCTION @extschema@.userseq_live_rebuild(events pg_catalog.regclass, target pg_catalog.regclass)
	RETURNS pg_catalog.int8
	LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
	tg oid := @extschema@.userseq_live_trigger_of(events, target);
	a text[];
	i int := 8;
	cols text := '';
	exprs text := '';
	n bigint;
BEGIN
	IF tg IS NULL THEN
		RAISE EXCEPTION 'no userseq_live trigger on % keeps %', events, target USING ERRCODE = 'undefined_object',
			HINT = 'Attach one first with userseq_live_attach (its options say how to rebuild).';
	END IF;
	a := @extschema@.userseq_live_args(tg);
	WHILE i <= array_length(a, 1) LOOP
		IF a[i] = 'score' THEN
			cols := cols || format(', %I', a[i + 1]);
			exprs := exprs || format(', @extschema@.userseq_predict(%L, s.seq)', a[i + 2]);
			i := i + 3;
		ELSE
			i := i + 5;
		END IF;
	END LOOP;
	IF a[7] <> '' THEN
		cols := cols || ', updated';
		exprs := exprs || ', pg_catalog.now()';
	END IF;
	-- no insert into events may run meanwhile: its trigger would update a row about to be replaced
	EXECUTE format('LOCK TABLE %s IN SHARE MODE', events);
	EXECUTE format('LOCK TABLE %s IN EXCLUSIVE MODE', a[1]);
	EXECUTE format('DELETE FROM %s', a[1]);
	EXECUTE format('INSERT INTO %s (user_id, seq%s) SELECT s.u, s.seq%s FROM ('
				   'SELECT %I AS u, @extschema@.userseq_last(@extschema@.userseq_agg(%I::pg_catalog.int8, %I, %s), %s) AS seq '
				   'FROM %s WHERE %I IS NOT NULL GROUP BY 1) s WHERE s.seq IS NOT NULL',
				   a[1], cols, exprs, a[2], a[3], a[4],
				   CASE WHEN a[5] = '' THEN 'NULL::pg_catalog.text' ELSE format('%I::pg_catalog.text', a[5]) END,
				   a[6]::int, events, a[2]);
	GET DIAGNOSTICS n = ROW_COUNT;
	RETURN n;
END $$;
COMMENT ON FUNCTION @extschema@.userseq_live_rebuild(pg_catalog.regclass, pg_catalog.regclass) IS 'replaces every row of target with what the attached trigger would hold after inserting all of events (after a bulk load, or after events were updated or deleted, which the trigger does not follow); returns the number of users';
