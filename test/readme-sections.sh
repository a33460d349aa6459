#!/bin/bash
# Copies the marked sections of a demo run's output into README.md, so the figures README quotes
# are the ones the demo printed (never retyped):
#   bash test/demo.sh && bash test/readme-sections.sh [demo-out/demo.log]
#   bash test/citus/run.sh > citus.log && bash test/readme-sections.sh citus.log citus
# In the log a section is the lines between "--8<-- begin NAME" and "--8<-- end NAME" (printed by
# test/demo.sql); in README.md it is everything between "<!-- demo:NAME -->" and
# "<!-- /demo:NAME -->", replaced by the section as a text block. A README marker without a
# section in the log is an error (the log is from another version of the demo). The second
# argument names another marker prefix ("citus": <!-- citus:NAME -->), so each log fills only
# its own markers.
set -euo pipefail
cd "$(dirname "$0")/.."
log=${1:-demo-out/demo.log}
prefix=${2:-demo}
python3 - "$log" README.md "$prefix" <<'PY'
import re, sys
log, readme, prefix = sys.argv[1], sys.argv[2], re.escape(sys.argv[3])
sections = dict(re.findall(r'^--8<-- begin (\S+)\n(.*?)^--8<-- end \1$', open(log).read(), re.S | re.M))
text = open(readme).read()
missing = []
def fill(m):
    name = m.group(1)
    if name not in sections:
        missing.append(name)
        return m.group(0)
    return f'<!-- {sys.argv[3]}:{name} -->\n```text\n{sections[name].rstrip()}\n```\n<!-- /{sys.argv[3]}:{name} -->'
new = re.sub(rf'<!-- {prefix}:(\S+) -->.*?<!-- /{prefix}:\1 -->', fill, text, flags=re.S)
if missing:
    sys.exit(f'no section {", ".join(missing)} in {log}')
open(readme, 'w').write(new)
print(f'README.md: {len(re.findall(rf"<!-- {prefix}:", new))} sections from {log}')
PY
