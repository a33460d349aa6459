#!/bin/bash
# userseq_report as a person sees it: the HTML of a binary and a next-item model is rendered by
# headless Chromium (Debian's chromium), which must show every chart (SVG elements in the rendered
# DOM), log no console errors, and paint a screenshot that is not blank. Also: the report holds
# no scripts and no external references, each SVG is well-formed XML, the confusion matrix adds
# up to the rows of the query, and functions planted earlier on the caller's search_path are
# never called by the report's own statements. Uses the cluster in the PG* environment.
set -u
db=us_report_$$
out=${US_REPORT_DIR:-$(mktemp -d)}
mkdir -p "$out"
cleanup() { psql -X -q -d postgres -c "DROP DATABASE IF EXISTS $db" >/dev/null 2>&1; }
trap cleanup EXIT
q() { command psql -X -q -At -v ON_ERROR_STOP=1 -d $db "$@"; }
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
chromium=$(command -v chromium || command -v chromium-browser || true)
if [ -z "$chromium" ] || ! command -v python3 >/dev/null; then
	echo "not ok 1 - chromium and python3 are needed (test/setup-deps.sh installs them)"
	exit 1
fi

psql -X -q -d postgres -c "CREATE DATABASE $db" || exit 1
q -o /dev/null <<'SQL' || { echo "not ok - setup"; exit 1; }
SET client_min_messages = warning;
CREATE EXTENSION userseq;
CREATE TABLE d AS
SELECT u AS user_id,
       userseq(array_agg(((u * 7 + e * 3) % 60 + 1)::bigint ORDER BY e),
               array_agg(timestamptz '2024-01-01' + (e * 37 % 11 + e * 5) * interval '1 hour' ORDER BY e),
               array_agg((ARRAY['view', 'cart', 'buy'])[1 + (u + e) % 3] ORDER BY e)) AS seq,
       bool_or((u * 7 + e * 3) % 60 < 8) <> (u % 5 = 0) AS label
FROM generate_series(1, 400) u, generate_series(1, 4 + u % 12) e GROUP BY u;
SELECT count(*) FROM userseq_train('rep_bin', 'SELECT seq, label FROM d ORDER BY user_id', 'binary', '{"epochs": 4, "embedding_dim": 16, "num_filters": 16, "hidden_dim": 16}');
SELECT count(*) FROM userseq_train('rep_ni', 'SELECT seq FROM d ORDER BY user_id', 'next_item', '{"epochs": 2, "embedding_dim": 16, "num_filters": 16, "hidden_dim": 16}');
-- planted on the caller's search_path: called only if the report resolves names through it
CREATE SCHEMA planted;
CREATE TABLE planted.calls(fn text);
CREATE FUNCTION planted.replace(text, text, text) RETURNS text LANGUAGE plpgsql AS
  $$BEGIN INSERT INTO planted.calls VALUES ('replace'); RETURN pg_catalog.replace($1, $2, $3); END$$;
CREATE FUNCTION planted.round(numeric, integer) RETURNS numeric LANGUAGE plpgsql AS
  $$BEGIN INSERT INTO planted.calls VALUES ('round'); RETURN pg_catalog.round($1, $2); END$$;
CREATE FUNCTION planted.textcat(text, text) RETURNS text LANGUAGE plpgsql AS
  $$BEGIN INSERT INTO planted.calls VALUES ('||'); RETURN pg_catalog.textcat($1, $2); END$$;
CREATE OPERATOR planted.|| (LEFTARG = text, RIGHTARG = text, FUNCTION = planted.textcat);
SQL

report() { # model, query -> file
	q -c "SET search_path = planted, public, pg_catalog" -c "SELECT userseq_report('$1', NULL, \$\$$2\$\$)" >"$out/$1.html"
}
check "userseq_report renders a binary model with a query" report rep_bin "SELECT seq, label FROM d"
check "userseq_report renders a next_item model with a query" report rep_ni "SELECT seq FROM d"
check "the report without a query names the version and task" \
	sh -c "command psql -X -At -d $db -c \"SELECT userseq_report('rep_bin')\" | grep -q 'version 1 &middot; binary'"
check "the caller's search_path is restored after the report" \
	test "$(q -c "SET search_path = planted, public" -c "SELECT userseq_report('rep_bin') IS NOT NULL" -c "SHOW search_path" | tail -1)" = "planted, public"
check "no planted function or operator was called by the report's statements" \
	test "$(q -c "SELECT count(*) FROM planted.calls")" = 0
check "an unknown model is an error with SQLSTATE 42704" \
	sh -c "command psql -X -At -d $db -v VERBOSITY=verbose -c \"SELECT userseq_report('nope')\" 2>&1 | grep -q 42704"

# static checks of the documents
static_check() {
	python3 - "$1" "$2" <<'PY'
import re, sys, xml.etree.ElementTree as ET
path, min_svgs = sys.argv[1], int(sys.argv[2])
s = open(path, encoding='utf-8').read()
assert s.startswith('<!DOCTYPE html>'), 'no doctype'
assert '<script' not in s.lower(), 'script element'
assert not re.search(r'(src|href)\s*=\s*"(https?:|//|file:)', s), 'external reference'
svgs = re.findall(r'<svg\b.*?</svg>', s, re.S)
assert len(svgs) >= min_svgs, f'{len(svgs)} svg elements, expected >= {min_svgs}'
for v in svgs:
    ET.fromstring(v)  # well-formed XML
assert s.count('<polyline') >= 2 or '<rect' in s, 'no chart marks'
print(len(svgs))
PY
}
check "binary report: self-contained, >= 3 well-formed SVG charts (loss, metric, ROC)" static_check "$out/rep_bin.html" 3
check "next_item report: self-contained, >= 6 well-formed SVG charts (loss, metric, 4 baseline bars)" static_check "$out/rep_ni.html" 6
check "the confusion matrix adds up to the 400 rows of the query" \
	python3 - "$out/rep_bin.html" <<'PY'
import re, sys
s = open(sys.argv[1], encoding='utf-8').read()
cm = s[s.index('actual \\ predicted'):]
cm = cm[:cm.index('</table>')]
cells = [int(x) for x in re.findall(r'<td class="num" style="[^"]*">(\d+)</td>', cm)]
sys.exit(0 if len(cells) == 4 and sum(cells) == 400 else 1)
PY

# what a browser shows
render() { # html -> png + dom + console log
	local f=$1
	timeout 120 "$chromium" --headless --no-sandbox --disable-gpu --hide-scrollbars --no-first-run \
		--enable-logging=stderr --v=0 --window-size=1200,1600 --screenshot="${f%.html}.png" "file://$f" \
		>/dev/null 2>"${f%.html}.console" &&
	timeout 120 "$chromium" --headless --no-sandbox --disable-gpu --no-first-run --dump-dom "file://$f" \
		>"${f%.html}.dom" 2>/dev/null
}
painted() { # png: decodes it (8-bit RGB/RGBA, no PIL needed) and counts non-white pixels
	python3 - "$1" <<'PY'
import struct, sys, zlib
data = open(sys.argv[1], 'rb').read()
assert data[:8] == b'\x89PNG\r\n\x1a\n'
pos, idat, w = 8, b'', 0
while pos < len(data):
    ln, typ = struct.unpack('>I4s', data[pos:pos + 8])
    body = data[pos + 8:pos + 8 + ln]
    if typ == b'IHDR':
        w, h, depth, ctype = struct.unpack('>IIBB', body[:10])
        assert depth == 8 and ctype in (2, 6), (depth, ctype)
        bpp = 3 if ctype == 2 else 4
    elif typ == b'IDAT':
        idat += body
    pos += 12 + ln
raw = zlib.decompress(idat)
stride = w * bpp
prev = bytearray(stride)
inked = 0
for y in range(h):
    f = raw[y * (stride + 1)]
    line = bytearray(raw[y * (stride + 1) + 1:(y + 1) * (stride + 1)])
    for i in range(stride):
        a = line[i - bpp] if i >= bpp else 0
        b = prev[i]
        c = prev[i - bpp] if i >= bpp else 0
        if f == 1: line[i] = (line[i] + a) & 255
        elif f == 2: line[i] = (line[i] + b) & 255
        elif f == 3: line[i] = (line[i] + (a + b) // 2) & 255
        elif f == 4:
            p = a + b - c; pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
            line[i] = (line[i] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 255
    inked += sum(1 for x in range(0, stride, bpp) if min(line[x:x + 3]) < 200)
    prev = line
print(inked, w, h)
sys.exit(0 if inked > 0.02 * w * h else 1)
PY
}
for m in rep_bin rep_ni; do
	f="$out/$m.html"
	check "$m: headless Chromium renders the report" render "$f"
	want=$(grep -o '<svg' "$f" | wc -l)
	check "$m: all $want SVG charts are in the rendered DOM" test "$(grep -o '<svg' "${f%.html}.dom" | wc -l)" -eq "$want"
	check "$m: no console errors while rendering" sh -c "! grep -Ei 'CONSOLE.*(error|uncaught)' '${f%.html}.console'"
	check "$m: the screenshot is painted (over 2% of pixels inked)" painted "${f%.html}.png"
done
echo "# screenshots and pages in $out"
echo "1..$n"
exit $fail
