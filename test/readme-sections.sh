#!/bin/bash
# Copies the marked sections of a demo run's output into README.md, so the figures README quotes
# are the ones the demo printed (never retyped):
#   bash test/demo.sh && bash test/readme-sections.sh [demo-out/demo.log]
# In the log a section is the lines between "--8<-- begin NAME" and "--8<-- end NAME" (printed by
# test/demo.sql); in README.md it is everything between "<!-- demo:NAME -->" and
# "<!-- /demo:NAME -->", replaced by the section as a text block. A README marker without a
# section in the log is an error (the log is from another version of the demo).
set -euo pipefail
cd "$(dirname "$0")/.."
log=${1:-demo-out/demo.log}
python3 - "$log" README.md <<'PY'
import re, sys
log, readme = sys.argv[1], sys.argv[2]
sections = dict(re.findall(r'^--8<-- begin (\S+)\n(.*?)^--8<-- end \1$', open(log).read(), re.S | re.M))
text = open(readme).read()
missing = []
def fill(m):
    name = m.group(1)
    if name not in sections:
        missing.append(name)
        return m.group(0)
    return f'<!-- demo:{name} -->\n```text\n{sections[name].rstrip()}\n```\n<!-- /demo:{name} -->'
new = re.sub(r'<!-- demo:(\S+) -->.*?<!-- /demo:\1 -->', fill, text, flags=re.S)
if missing:
    sys.exit(f'no section {", ".join(missing)} in {log}')
open(readme, 'w').write(new)
print(f'README.md: {len(re.findall(r"<!-- demo:", new))} sections from {log}')
PY
