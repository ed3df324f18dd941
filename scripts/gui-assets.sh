#!/bin/sh
# gui-assets.sh: install the GUI's JavaScript libraries (xterm.js and its
# fit addon; axe-core for the browser test) from the npm registry, pinned by
# internal/gui/js/package-lock.json, and copy the files the GUI serves into
# internal/gui/static/vendor/, which go:embed puts into the binary. Neither
# node_modules/ nor vendor/ is committed: `make build`, `make run` and
# `make test` run this first. Installs Debian's nodejs and npm when npm is
# missing (as root). Does nothing when the installed tree matches the lock.
set -eu
cd "$(dirname "$0")/../internal/gui/js"

if ! command -v npm >/dev/null 2>&1; then
	if [ "$(id -u)" -ne 0 ]; then
		echo "gui-assets: npm is missing: apt-get install nodejs npm (as root), then run make again" >&2
		exit 1
	fi
	echo "gui-assets: installing Debian's nodejs and npm"
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -qq || true
	apt-get install -y -qq nodejs npm >/dev/null
fi

# npm ci writes node_modules/.package-lock.json; when it equals the lock
# (same packages, same versions) the tree is current.
if [ ! -f node_modules/.package-lock.json ] || ! node -e '
	const a = require("./package-lock.json").packages, b = require("./node_modules/.package-lock.json").packages;
	for (const k of Object.keys(a)) if (k && (!b[k] || b[k].version !== a[k].version)) process.exit(1);
' 2>/dev/null; then
	npm ci --ignore-scripts --no-audit --no-fund --loglevel=error
fi

out=../static/vendor
mkdir -p "$out"
for f in @xterm/xterm/lib/xterm.js @xterm/xterm/css/xterm.css @xterm/addon-fit/lib/addon-fit.js; do
	cp node_modules/$f "$out/"
done
cp node_modules/@xterm/xterm/LICENSE "$out/xterm.LICENSE"
