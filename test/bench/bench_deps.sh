# Sourced by the benchmark scripts (test/bench/*.sh): installs the Debian 12 packages they need
# when missing, as test/setup-deps.sh does for the build and the tests (root or sudo).
# The PyTorch reference (test/bench/torch_textcnn.py) runs on /usr/bin/python3 with Debian's
# python3-torch; a python3 earlier on PATH (pyenv, venv) may have no torch.

bench_need() {	# bench_need PACKAGE...: apt-get install the ones not installed
	local missing="" p sudo=""
	for p in "$@"; do
		dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
	done
	[ -n "$missing" ] || return 0
	[ "$(id -u)" -eq 0 ] || sudo=sudo
	echo "== installing:$missing" >&2
	$sudo env DEBIAN_FRONTEND=noninteractive apt-get update -qq
	# shellcheck disable=SC2086
	$sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $missing >/dev/null
}

bench_need_torch() {	# /usr/bin/python3 must import torch and numpy
	/usr/bin/python3 -c 'import torch, numpy' 2>/dev/null && return 0
	bench_need python3-torch python3-numpy
	/usr/bin/python3 -c 'import torch, numpy' || { echo "/usr/bin/python3 cannot import torch" >&2; exit 1; }
}
