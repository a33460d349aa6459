
-- ---------------------------------------------------------------- model report (HTML + inline SVG)
-- userseq_report renders what the catalog and the evaluation functions already compute; the
-- charts are drawn by two small SVG helpers. Everything runs with a fixed search_path, so a
-- caller's search_path cannot substitute functions or operators.

CREATE FUNCTION @extschema@.userseq_report_html(s pg_catalog.text) RETURNS pg_catalog.text
	LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
	SET search_path = pg_catalog, pg_temp
	AS $$ SELECT replace(replace(replace(replace(s, '&', '&amp;'), '<', '&lt;'), '>', '&gt;'), '"', '&quot;') $$;
COMMENT ON FUNCTION @extschema@.userseq_report_html(pg_catalog.text) IS 'internal (userseq_report): text escaped for HTML and SVG';

-- A line chart: series = [{"name": text, "color": "#rrggbb", "points": [[x, y], ...]}, ...];
-- optional diagonal from (0,0) to (1,1) for ROC curves. NaN and infinite points are skipped.
CREATE FUNCTION @extschema@.userseq_report_svg_lines(title pg_catalog.text, xlabel pg_catalog.text,
		ylabel pg_catalog.text, series pg_catalog.jsonb, diagonal pg_catalog.bool DEFAULT false)
	RETURNS pg_catalog.text
	LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE
	SET search_path = pg_catalog, pg_temp
	AS $fn$
DECLARE
	w CONSTANT float8 := 540; h CONSTANT float8 := 300;
	l CONSTANT float8 := 62; r CONSTANT float8 := 16; t CONSTANT float8 := 30; b CONSTANT float8 := 46;
	x0 float8; x1 float8; y0 float8; y1 float8;
	svg text; s jsonb; pts text; i int; v float8; n_series int := 0;
BEGIN
	SELECT min((p->>0)::float8), max((p->>0)::float8), min((p->>1)::float8), max((p->>1)::float8)
	INTO x0, x1, y0, y1
	FROM jsonb_array_elements(coalesce(series, '[]')) se, jsonb_array_elements(se->'points') p
	WHERE (p->>0)::float8 NOT IN ('NaN', 'Infinity', '-Infinity')
	  AND (p->>1)::float8 NOT IN ('NaN', 'Infinity', '-Infinity');
	IF diagonal THEN x0 := 0; x1 := 1; y0 := 0; y1 := 1; END IF;
	IF x0 IS NULL THEN
		RETURN format('<p class="empty">%s: no points</p>', @extschema@.userseq_report_html(title));
	END IF;
	IF x1 = x0 THEN x1 := x0 + 1; END IF;
	IF y1 = y0 THEN y0 := y0 - 0.5; y1 := y1 + 0.5; END IF;
	IF NOT diagonal THEN  -- a little air above and below the data
		v := (y1 - y0) * 0.05; y0 := y0 - v; y1 := y1 + v;
	END IF;
	svg := format('<svg xmlns="http://www.w3.org/2000/svg" class="chart" width="%s" height="%s" viewBox="0 0 %s %s" role="img" aria-label="%s">',
				  w, h, w, h, @extschema@.userseq_report_html(title))
		|| format('<text x="%s" y="18" class="title">%s</text>', l, @extschema@.userseq_report_html(title))
		|| format('<rect x="%s" y="%s" width="%s" height="%s" class="plot"/>', l, t, w - l - r, h - t - b);
	FOR i IN 0..4 LOOP  -- grid and tick labels
		v := y0 + (y1 - y0) * i / 4;
		svg := svg || format('<line x1="%s" y1="%s" x2="%s" y2="%s" class="grid"/><text x="%s" y="%s" class="tick" text-anchor="end">%s</text>',
			l, round((h - b - (h - t - b) * i / 4)::numeric, 1), w - r, round((h - b - (h - t - b) * i / 4)::numeric, 1),
			l - 4, round((h - b - (h - t - b) * i / 4 + 4)::numeric, 1), to_char(v, 'FM9999990.0999'));
		v := x0 + (x1 - x0) * i / 4;
		svg := svg || format('<text x="%s" y="%s" class="tick" text-anchor="middle">%s</text>',
			round((l + (w - l - r) * i / 4)::numeric, 1), h - b + 15, to_char(v, 'FM9999990.0999'));
	END LOOP;
	svg := svg || format('<text x="%s" y="%s" class="axis" text-anchor="middle">%s</text>', l + (w - l - r) / 2, h - 8, @extschema@.userseq_report_html(xlabel))
		|| format('<text x="14" y="%s" class="axis" text-anchor="middle" transform="rotate(-90 14 %s)">%s</text>', t + (h - t - b) / 2, t + (h - t - b) / 2, @extschema@.userseq_report_html(ylabel));
	IF diagonal THEN
		svg := svg || format('<line x1="%s" y1="%s" x2="%s" y2="%s" class="diagonal"/>', l, h - b, w - r, t);
	END IF;
	FOR s IN SELECT * FROM jsonb_array_elements(coalesce(series, '[]')) LOOP
		SELECT string_agg(round((l + (w - l - r) * ((p->>0)::float8 - x0) / (x1 - x0))::numeric, 1) || ',' ||
						  round((h - b - (h - t - b) * ((p->>1)::float8 - y0) / (y1 - y0))::numeric, 1), ' ' ORDER BY o)
		INTO pts
		FROM jsonb_array_elements(s->'points') WITH ORDINALITY AS q(p, o)
		WHERE (p->>0)::float8 NOT IN ('NaN', 'Infinity', '-Infinity')
		  AND (p->>1)::float8 NOT IN ('NaN', 'Infinity', '-Infinity');
		CONTINUE WHEN pts IS NULL;
		svg := svg || format('<polyline points="%s" fill="none" stroke="%s" stroke-width="2"/>', pts, s->>'color')
			|| format('<rect x="%s" y="%s" width="12" height="3" fill="%s"/><text x="%s" y="%s" class="legend">%s</text>',
					  w - r - 150, t + 10 + 16 * n_series, s->>'color', w - r - 134, t + 14 + 16 * n_series,
					  @extschema@.userseq_report_html(s->>'name'));
		n_series := n_series + 1;
	END LOOP;
	RETURN svg || '</svg>';
END
$fn$;
COMMENT ON FUNCTION @extschema@.userseq_report_svg_lines(pg_catalog.text, pg_catalog.text, pg_catalog.text, pg_catalog.jsonb, pg_catalog.bool) IS 'internal (userseq_report): an SVG line chart of series [{name, color, points: [[x, y], ...]}]';

-- A horizontal bar chart: bars = [{"label": text, "value": float8, "color": "#rrggbb"}, ...]
CREATE FUNCTION @extschema@.userseq_report_svg_bars(title pg_catalog.text, bars pg_catalog.jsonb)
	RETURNS pg_catalog.text
	LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE
	SET search_path = pg_catalog, pg_temp
	AS $fn$
DECLARE
	w CONSTANT float8 := 540; l CONSTANT float8 := 170; r CONSTANT float8 := 70; row_h CONSTANT float8 := 18;
	n int; lo float8; hi float8; zero float8; svg text; bar record; x float8; bw float8;
BEGIN
	SELECT count(*), least(0, min((e->>'value')::float8)), greatest(0, max((e->>'value')::float8))
	INTO n, lo, hi FROM jsonb_array_elements(coalesce(bars, '[]')) e
	WHERE (e->>'value')::float8 NOT IN ('NaN', 'Infinity', '-Infinity');
	IF n = 0 THEN
		RETURN format('<p class="empty">%s: nothing to show</p>', @extschema@.userseq_report_html(title));
	END IF;
	IF hi = lo THEN hi := lo + 1; END IF;
	zero := l + (w - l - r) * (0 - lo) / (hi - lo);
	svg := format('<svg xmlns="http://www.w3.org/2000/svg" class="chart" width="%s" height="%s" viewBox="0 0 %s %s" role="img" aria-label="%s">',
				  w, 34 + n * row_h, w, 34 + n * row_h, @extschema@.userseq_report_html(title))
		|| format('<text x="8" y="18" class="title">%s</text>', @extschema@.userseq_report_html(title));
	FOR bar IN SELECT e->>'label' AS label, (e->>'value')::float8 AS value, coalesce(e->>'color', '#3b6ea5') AS color, o
			   FROM jsonb_array_elements(bars) WITH ORDINALITY AS q(e, o)
			   WHERE (e->>'value')::float8 NOT IN ('NaN', 'Infinity', '-Infinity') ORDER BY o LOOP
		x := l + (w - l - r) * (least(bar.value, 0) - lo) / (hi - lo);
		bw := (w - l - r) * abs(bar.value) / (hi - lo);
		svg := svg || format('<text x="%s" y="%s" class="tick" text-anchor="end">%s</text><rect x="%s" y="%s" width="%s" height="%s" fill="%s"/><text x="%s" y="%s" class="tick">%s</text>',
			l - 6, 26 + (bar.o - 1) * row_h + 12, @extschema@.userseq_report_html(left(bar.label, 32)),
			round(x::numeric, 1), 26 + (bar.o - 1) * row_h + 2, round(greatest(bw, 0.5)::numeric, 1), row_h - 5, bar.color,
			round((x + greatest(bw, 0.5) + 4)::numeric, 1), 26 + (bar.o - 1) * row_h + 12, to_char(bar.value, 'FM9999990.0999'));
	END LOOP;
	RETURN svg || format('<line x1="%s" y1="24" x2="%s" y2="%s" class="zero"/>', round(zero::numeric, 1), round(zero::numeric, 1), 30 + n * row_h) || '</svg>';
END
$fn$;
COMMENT ON FUNCTION @extschema@.userseq_report_svg_bars(pg_catalog.text, pg_catalog.jsonb) IS 'internal (userseq_report): an SVG bar chart of bars [{label, value, color}]';

CREATE FUNCTION @extschema@.userseq_report(model pg_catalog.text, version pg_catalog.int4 DEFAULT NULL,
										   query pg_catalog.text DEFAULT NULL)
	RETURNS pg_catalog.text
	LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE
	AS $fn$
#variable_conflict use_variable
DECLARE
	caller_path text := pg_catalog.current_setting('search_path');
	ev jsonb; roc jsonb; cm jsonb; gx jsonb;
	m record;
	html text;
	rows_html text;
	series jsonb;
	chart text;
	auc float8;
	colors CONSTANT text[] := ARRAY['#3b6ea5', '#d1495b', '#66a182', '#edae49', '#8d6a9f', '#00798c'];
	explain_fn regprocedure;
BEGIN
	-- The report's own statements run with a fixed search_path; only the evaluation calls, which
	-- run the caller's query, see the caller's (restored before returning, undone on error).
	PERFORM pg_catalog.set_config('search_path', 'pg_catalog, pg_temp', true);
	SELECT mo.* INTO m FROM @extschema@.models mo
	WHERE mo.name OPERATOR(pg_catalog.=) model
	  AND (CASE WHEN version IS NULL THEN mo.deployed ELSE mo.version OPERATOR(pg_catalog.=) version END)
	ORDER BY mo.version DESC LIMIT 1;
	IF NOT FOUND AND version IS NULL THEN  -- nothing deployed: the newest version
		SELECT mo.* INTO m FROM @extschema@.models mo WHERE mo.name OPERATOR(pg_catalog.=) model
		ORDER BY mo.version DESC LIMIT 1;
	END IF;
	IF NOT FOUND THEN
		RAISE EXCEPTION 'model "%"%does not exist', model,
			CASE WHEN version IS NULL THEN ' ' ELSE format(' version %s ', version) END
			USING ERRCODE = 'undefined_object';
	END IF;

	html := '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
		|| format('<title>userseq model %s v%s</title>', @extschema@.userseq_report_html(m.name), m.version)
		|| '<style>body{font-family:DejaVu Sans,Helvetica,Arial,sans-serif;margin:24px 32px;color:#222;max-width:1180px}'
		|| 'h1{font-size:22px;margin:0 0 4px}h2{font-size:17px;border-bottom:1px solid #ccc;padding-bottom:3px;margin-top:26px}'
		|| '.sub{color:#666;font-size:13px}table{border-collapse:collapse;font-size:12.5px;margin:6px 0}'
		|| 'td,th{border:1px solid #ddd;padding:3px 8px;text-align:left;vertical-align:top}th{background:#f3f3f3}'
		|| 'td.num{text-align:right;font-variant-numeric:tabular-nums}.charts{display:flex;flex-wrap:wrap;gap:18px}'
		|| 'svg.chart{background:#fff;font-size:11px}svg .title{font-size:13px;font-weight:bold;fill:#222}'
		|| 'svg .plot{fill:#fafafa;stroke:#999}svg .grid{stroke:#e4e4e4}svg .tick{fill:#555}svg .axis{fill:#333}'
		|| 'svg .legend{fill:#333}svg .diagonal{stroke:#aaa;stroke-dasharray:4 3}svg .zero{stroke:#777}'
		|| '.empty,.note{color:#777;font-size:13px}</style></head><body>'
		|| format('<h1>%s <span class="sub">version %s &middot; %s</span></h1>', @extschema@.userseq_report_html(m.name), m.version, m.task)
		|| format('<p class="sub">%s &middot; owner %s &middot; created %s by %s &middot; run %s</p>',
				  CASE WHEN m.deployed THEN 'deployed' ELSE 'not deployed' END,
				  @extschema@.userseq_report_html(m.owner::text), to_char(m.created_at, 'YYYY-MM-DD HH24:MI:SS TZ'),
				  @extschema@.userseq_report_html(m.created_by::text), coalesce(m.run_id::text, '-'));

	-- learning curves from the training log of this version
	SELECT jsonb_build_array(
			jsonb_build_object('name', 'training loss', 'color', colors[1],
				'points', jsonb_agg(jsonb_build_array(l.epoch, l.train_loss) ORDER BY l.epoch)),
			jsonb_build_object('name', 'validation loss', 'color', colors[2],
				'points', coalesce(jsonb_agg(jsonb_build_array(l.epoch, l.valid_loss) ORDER BY l.epoch)
								   FILTER (WHERE l.valid_loss IS NOT NULL), '[]'))),
		   @extschema@.userseq_report_svg_lines('validation ' || coalesce(max(l.metric_name), 'metric') || ' per epoch'
					|| coalesce(' (best epoch ' || (m.metrics->>'best_epoch') || ', restored)', ''),
				'epoch', coalesce(max(l.metric_name), 'metric'),
				jsonb_build_array(jsonb_build_object('name', coalesce(max(l.metric_name), 'metric'), 'color', colors[3],
					'points', coalesce(jsonb_agg(jsonb_build_array(l.epoch, l.valid_metric) ORDER BY l.epoch)
									   FILTER (WHERE l.valid_metric IS NOT NULL), '[]'))))
	INTO series, chart
	FROM @extschema@.training_log l
	WHERE l.model OPERATOR(pg_catalog.=) m.name AND l.version OPERATOR(pg_catalog.=) m.version;
	html := html || '<h2>Training</h2>';
	IF series->0->'points' IS NULL OR series->0->'points' = 'null' THEN
		html := html || '<p class="note">No training log for this version (imported, or trained before the log existed).</p>';
	ELSE
		html := html || '<div class="charts">'
			|| @extschema@.userseq_report_svg_lines('loss per epoch', 'epoch', 'loss', series) || chart || '</div>';
		SELECT string_agg(format('<tr><td class="num">%s</td><td class="num">%s</td><td class="num">%s</td><td class="num">%s</td><td class="num">%s</td><td class="num">%s</td></tr>',
				l.epoch, round(l.train_loss::numeric, 5), coalesce(round(l.valid_loss::numeric, 5)::text, '-'),
				coalesce(round(l.valid_metric::numeric, 5)::text, '-'), l.learning_rate::real, round(l.seconds::numeric, 2)), '' ORDER BY l.epoch)
		INTO rows_html FROM @extschema@.training_log l
		WHERE l.model OPERATOR(pg_catalog.=) m.name AND l.version OPERATOR(pg_catalog.=) m.version;
		html := html || '<table><tr><th>epoch</th><th>training loss</th><th>validation loss</th><th>validation '
			|| @extschema@.userseq_report_html(coalesce(m.metrics->>'metric', 'metric'))
			|| '</th><th>learning rate</th><th>seconds</th></tr>' || rows_html || '</table>';
	END IF;

	-- next_item: the transition prior fitted after training (its figures are in the metrics)
	IF m.metrics ? 'transition_prior' THEN
		html := html || '<h2>Transition prior</h2><p class="note">'
			|| CASE WHEN coalesce((m.metrics->>'transition_weight')::float8, 0) > 0 THEN
					format('On: every item''s logit after last item a gets %s &times; log(1 + count(a &rarr; item)), '
						   || 'counts of consecutive items in the training split (%s source items, %s transitions, %s bytes in the model). ',
						   m.metrics->>'transition_weight', m.metrics->>'transition_sources',
						   m.metrics->>'transition_count', m.metrics->>'transition_bytes')
					|| format('Validation %s with it %s, the network alone %s.',
							  @extschema@.userseq_report_html(coalesce(m.metrics->>'metric', 'metric')),
							  coalesce(round((m.metrics->>(m.metrics->>'metric'))::numeric, 5)::text, '-'),
							  coalesce(round((m.metrics->>('network_' || (m.metrics->>'metric')))::numeric, 5)::text, '-'))
				ELSE format('Off (%s): the scores are the network''s alone.',
							@extschema@.userseq_report_html(CASE WHEN m.metrics->>'transition_prior' = 'off' THEN 'transition_prior off'
																 ELSE 'weight 0 chosen on validation' END))
			END
			|| CASE WHEN m.metrics ? 'transition_grid' THEN
					' Weights tried (' || @extschema@.userseq_report_html(m.metrics->>'metric') || ' on validation): '
					|| (SELECT string_agg(format('%s: %s', g.w, round(n.v::numeric, 5)), ', ' ORDER BY g.i)
						FROM jsonb_array_elements_text(m.metrics->'transition_grid') WITH ORDINALITY AS g(w, i)
						JOIN jsonb_array_elements_text(m.metrics->'transition_grid_ndcg@10') WITH ORDINALITY AS n(v, i)
						  ON n.i OPERATOR(pg_catalog.=) g.i) || '.'
				ELSE '' END
			|| ' Explanations attribute the network''s logit only, not the prior.</p>';
	END IF;

	-- the stored validation metrics and the configuration
	SELECT string_agg(format('<tr><th>%s</th><td class="num">%s</td></tr>', @extschema@.userseq_report_html(k),
						   @extschema@.userseq_report_html(CASE WHEN jsonb_typeof(v) <> 'number' THEN v #>> '{}'
								WHEN (v #>> '{}')::numeric = trunc((v #>> '{}')::numeric) THEN trunc((v #>> '{}')::numeric)::text
								ELSE round((v #>> '{}')::numeric, 5)::text END)), '' ORDER BY k)
	INTO rows_html FROM jsonb_each(m.metrics) AS e(k, v);
	html := html || '<div class="charts"><div><h2>Validation metrics (stored with the model)</h2><table>' || coalesce(rows_html, '') || '</table></div>';
	SELECT string_agg(format('<tr><th>%s</th><td>%s</td></tr>', @extschema@.userseq_report_html(k),
						   @extschema@.userseq_report_html(CASE jsonb_typeof(v) WHEN 'string' THEN v #>> '{}'
								WHEN 'number' THEN ((v #>> '{}')::float8::real)::text ELSE v::text END)), '' ORDER BY k)
	INTO rows_html FROM jsonb_each(m.config) AS e(k, v);
	html := html || '<div><h2>Configuration</h2><table>' || coalesce(rows_html, '') || '</table></div></div>';
	IF m.query IS NOT NULL THEN
		html := html || '<p class="sub">Training query: <code>' || @extschema@.userseq_report_html(m.query) || '</code></p>';
	END IF;

	IF query IS NOT NULL THEN
		html := html || '<h2>Evaluation on the query</h2>'
			|| '<p class="sub">Query: <code>' || @extschema@.userseq_report_html(query) || '</code></p>';
		IF NOT m.deployed THEN
			-- the evaluation functions score the deployed version of a name
			html := html || '<p class="note">This version is not deployed; the evaluation functions score the deployed version, so this section is left out.</p>';
		ELSE
			PERFORM pg_catalog.set_config('search_path', caller_path, true);
			ev := (SELECT pg_catalog.jsonb_agg(e) FROM @extschema@.userseq_evaluate(m.name, query) e);
			IF m.task = 'binary' THEN
				roc := (SELECT pg_catalog.jsonb_agg(c) FROM @extschema@.userseq_roc_curve(m.name, query) c);
			END IF;
			IF m.task IN ('binary', 'multiclass', 'next_behavior') THEN
				cm := (SELECT pg_catalog.jsonb_agg(c) FROM @extschema@.userseq_confusion_matrix(m.name, query) c);
			END IF;
			-- the global explanation, where this version of the extension has it
			explain_fn := pg_catalog.to_regprocedure('@extschema@.userseq_global_explain(text, text)');
			IF explain_fn IS NOT NULL THEN
				EXECUTE pg_catalog.format('SELECT pg_catalog.jsonb_agg(e) FROM %s($1, $2) e', explain_fn::oid::regproc)
				INTO gx USING m.name, query;
			END IF;
			PERFORM pg_catalog.set_config('search_path', 'pg_catalog, pg_temp', true);

			-- one row per (protocol, metric), one column per scorer, the model first
			WITH e AS (SELECT * FROM jsonb_to_recordset(ev) AS x(scorer text, protocol text, metric text, value float8)),
			sc AS (SELECT scorer, row_number() OVER (ORDER BY scorer <> 'model', scorer) AS o FROM (SELECT DISTINCT scorer FROM e) z),
			pm AS (SELECT DISTINCT protocol, metric,
						  coalesce(nullif(regexp_replace(metric, '^[a-z_]+@?', ''), ''), '0')::int AS k,
						  regexp_replace(metric, '@.*$', '') AS family FROM e)
			SELECT '<table><tr><th>protocol</th><th>metric</th>'
				|| (SELECT string_agg('<th>' || @extschema@.userseq_report_html(scorer) || '</th>', '' ORDER BY o) FROM sc) || '</tr>'
				|| string_agg(format('<tr><td>%s</td><td>%s</td>%s</tr>', @extschema@.userseq_report_html(pm.protocol),
						@extschema@.userseq_report_html(pm.metric),
						(SELECT string_agg('<td class="num">' || coalesce(CASE WHEN e.value = trunc(e.value) THEN e.value::int8::text
																	   ELSE round(e.value::numeric, 4)::text END, '-') || '</td>', '' ORDER BY sc.o)
						 FROM sc LEFT JOIN e ON e.scorer = sc.scorer AND e.protocol = pm.protocol AND e.metric = pm.metric)),
					'' ORDER BY pm.protocol, pm.family = 'sequences', pm.family, pm.k)
				|| '</table>'
			INTO rows_html FROM pm;
			html := html || coalesce(rows_html, '<p class="note">no rows</p>');

			IF m.task = 'binary' THEN
				SELECT e.value INTO auc FROM jsonb_to_recordset(ev) AS e(scorer text, metric text, value float8)
				WHERE e.scorer = 'model' AND e.metric = 'roc_auc';
				SELECT jsonb_build_array(jsonb_build_object('name', 'model', 'color', colors[1],
						'points', jsonb_agg(jsonb_build_array(c.fpr, c.tpr) ORDER BY c.fpr, c.tpr)))
				INTO series FROM jsonb_to_recordset(roc) AS c(fpr float8, tpr float8);
				html := html || '<div class="charts">' || @extschema@.userseq_report_svg_lines(
					format('ROC curve (AUC %s)', coalesce(round(auc::numeric, 4)::text, 'n/a')),
					'false positive rate', 'true positive rate', series, true) || '</div>';
			ELSIF m.task = 'next_item' THEN
				SELECT string_agg(@extschema@.userseq_report_svg_bars(format('%s, protocol %s', x.metric, x.protocol), x.bars), '' ORDER BY x.protocol, x.metric)
				INTO chart FROM (
					SELECT e.protocol, e.metric,
						   jsonb_agg(jsonb_build_object('label', e.scorer, 'value', e.value,
									 'color', CASE e.scorer WHEN 'model' THEN colors[1] WHEN 'popularity' THEN colors[4] ELSE colors[5] END)
									 ORDER BY e.scorer <> 'model', e.scorer) AS bars
					FROM jsonb_to_recordset(ev) AS e(scorer text, protocol text, metric text, value float8)
					WHERE e.metric IN ('hr@10', 'ndcg@10') GROUP BY e.protocol, e.metric) x;
				html := html || '<div class="charts">' || coalesce(chart, '') || '</div>';
			END IF;

			IF m.task IN ('binary', 'multiclass', 'next_behavior') THEN
				-- confusion matrix with per-class precision, recall and F1 computed from it
				WITH c AS (SELECT * FROM jsonb_to_recordset(cm) AS x(actual text, predicted text, n int8)),
				classes AS (SELECT DISTINCT coalesce(actual, '(unknown)') AS k FROM c
							UNION SELECT DISTINCT predicted FROM c),
				per AS (SELECT k.k,
							   coalesce(sum(c.n) FILTER (WHERE coalesce(c.actual, '(unknown)') = k.k AND c.predicted = k.k), 0) AS tp,
							   coalesce(sum(c.n) FILTER (WHERE c.predicted = k.k), 0) AS pred,
							   coalesce(sum(c.n) FILTER (WHERE coalesce(c.actual, '(unknown)') = k.k), 0) AS act
						FROM classes k CROSS JOIN c GROUP BY k.k)
				SELECT '<div class="charts"><table><tr><th>actual \ predicted</th>'
					|| (SELECT string_agg('<th>' || @extschema@.userseq_report_html(k) || '</th>', '' ORDER BY k) FROM classes)
					|| '</tr>'
					|| (SELECT string_agg(r, '' ORDER BY a) FROM (
							SELECT a.k AS a, '<tr><th>' || @extschema@.userseq_report_html(a.k) || '</th>'
								|| string_agg(format('<td class="num" style="background:rgba(59,110,165,%s)">%s</td>',
									   round(coalesce(c.n, 0)::numeric / greatest((SELECT max(n) FROM c), 1) * 0.85, 3), coalesce(c.n, 0)), '' ORDER BY p.k)
								|| '</tr>' AS r
							FROM classes a CROSS JOIN classes p
							LEFT JOIN c ON coalesce(c.actual, '(unknown)') = a.k AND c.predicted = p.k
							GROUP BY a.k) rr)
					|| '</table><table><tr><th>class</th><th>precision</th><th>recall</th><th>F1</th><th>support</th></tr>'
					|| (SELECT string_agg(format('<tr><th>%s</th><td class="num">%s</td><td class="num">%s</td><td class="num">%s</td><td class="num">%s</td></tr>',
							@extschema@.userseq_report_html(k),
							CASE WHEN pred > 0 THEN round(tp::numeric / pred, 4)::text ELSE '-' END,
							CASE WHEN act > 0 THEN round(tp::numeric / act, 4)::text ELSE '-' END,
							CASE WHEN pred > 0 AND act > 0 AND tp > 0 THEN round(2 * tp::numeric / (pred + act), 4)::text ELSE '-' END,
							act), '' ORDER BY k)
						FROM per)
					|| '</table></div>'
				INTO chart;
				html := html || '<h2>Confusion matrix</h2>' || coalesce(chart, '<p class="note">no rows</p>');
			END IF;

			IF gx IS NOT NULL THEN
				SELECT string_agg(@extschema@.userseq_report_svg_bars(x.title, x.bars), '' ORDER BY x.kind)
				INTO chart
				FROM (SELECT g.kind, 'mean |attribution| by ' || g.kind AS title,
							 jsonb_agg(jsonb_build_object('label', g.value, 'value', g.mean_abs_attribution)
									   ORDER BY g.mean_abs_attribution DESC) FILTER (WHERE g.rk <= 15) AS bars
					  FROM (SELECT e.*, row_number() OVER (PARTITION BY e.kind ORDER BY e.mean_abs_attribution DESC) AS rk
							FROM jsonb_to_recordset(gx) AS e(kind text, value text, mean_abs_attribution float8)) g
					  GROUP BY g.kind) x;
				html := html || '<h2>Global explanation</h2>'
					|| CASE WHEN coalesce((m.metrics->>'transition_weight')::float8, 0) > 0 THEN
						'<p class="note">The attributions explain the network''s logit only; the transition prior added to it is not attributed.</p>'
						ELSE '' END
					|| '<div class="charts">' || coalesce(chart, '') || '</div>';
			END IF;
		END IF;
	END IF;

	html := html || '<p class="sub">Generated by userseq_report() on '
		|| to_char(pg_catalog.now(), 'YYYY-MM-DD HH24:MI:SS TZ') || '.</p></body></html>';
	PERFORM pg_catalog.set_config('search_path', caller_path, true);
	RETURN html;
END
$fn$;
COMMENT ON FUNCTION @extschema@.userseq_report(pg_catalog.text, pg_catalog.int4, pg_catalog.text) IS 'a self-contained HTML report (inline SVG, no scripts) of a model version: configuration, learning curves, stored metrics and, given a query, evaluation against the baselines, ROC curve, confusion matrix and per-class metrics, and the global explanation where available';
