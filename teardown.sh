#!/bin/sh
# teardown.sh: stop TestbedOS and remove its unit and binaries (as root).
# The data folder stays unless --purge is given.
set -eu
[ "$(id -u)" -eq 0 ] || { echo "teardown.sh: run as root" >&2; exit 1; }
PREFIX=${PREFIX:-/usr/local}
DATA_DIR=${TESTBEDOS_DATA_DIR:-/var/lib/testbedos}
purge=0
[ "${1:-}" = "--purge" ] && purge=1

if command -v systemctl >/dev/null 2>&1 && [ -d /run/systemd/system ]; then
	systemctl stop testbedos-server 2>/dev/null || true
	systemctl disable testbedos-server 2>/dev/null || true
fi
pkill -TERM -x testbedos-server 2>/dev/null || true
rm -f /etc/systemd/system/testbedos-server.service
command -v systemctl >/dev/null 2>&1 && [ -d /run/systemd/system ] && systemctl daemon-reload || true
rm -f "$PREFIX/bin/testbedos-server" "$PREFIX/bin/kvm-compose"
if [ "$purge" = 1 ]; then
	rm -rf "$DATA_DIR"
	echo "removed $DATA_DIR"
else
	echo "kept $DATA_DIR (use --purge to remove it)"
fi
