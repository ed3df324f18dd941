#!/bin/sh
# teardown.sh: stop TestbedOS and remove what setup.sh installed (as root):
# the unit, the binaries and the folders setup.sh made for them. The data
# folder (and the testbedos group) stay unless --purge is given.
#
# It reads the same environment variables as setup.sh (PREFIX,
# TESTBEDOS_DATA_DIR, UNIT_DIR, RUN_DIR) and the list of what setup.sh made,
# $TESTBEDOS_DATA_DIR/.setup-manifest.
set -eu
[ "$(id -u)" -eq 0 ] || { echo "teardown.sh: run as root" >&2; exit 1; }
PREFIX=${PREFIX:-/usr/local}
DATA_DIR=${TESTBEDOS_DATA_DIR:-/var/lib/testbedos}
UNIT_DIR=${UNIT_DIR:-/etc/systemd/system}
RUN_DIR=${RUN_DIR:-/run/testbedos}
BIN=$PREFIX/bin
UNIT=$UNIT_DIR/testbedos-server.service
manifest=$DATA_DIR/.setup-manifest

purge=0
for arg in "$@"; do
	case $arg in
	--purge) purge=1 ;;
	*) echo "usage: teardown.sh [--purge]" >&2; exit 2 ;;
	esac
done

# Stop the service: through systemd where it runs, otherwise the processes
# running this installation's binary (and no other testbedos-server).
if command -v systemctl >/dev/null 2>&1 && [ -d /run/systemd/system ]; then
	systemctl stop testbedos-server 2>/dev/null || true
	systemctl disable testbedos-server 2>/dev/null || true
fi
pids=""
for p in /proc/[0-9]*; do
	if [ "$(readlink "$p/exe" 2>/dev/null)" = "$BIN/testbedos-server" ]; then
		pids="$pids ${p#/proc/}"
	fi
done
if [ -n "$pids" ]; then
	echo "stopping testbedos-server:$pids"
	kill -TERM $pids 2>/dev/null || true
	# SIGTERM is a graceful stop; give it the unit's TimeoutStopSec.
	i=0
	while [ $i -lt 60 ]; do
		alive=""
		for pid in $pids; do kill -0 "$pid" 2>/dev/null && alive="$alive $pid"; done
		[ -z "$alive" ] && break
		sleep 1
		i=$((i + 1))
	done
fi

rm -f "$UNIT" "$BIN/testbedos-server" "$BIN/kvm-compose"
if command -v systemctl >/dev/null 2>&1 && [ -d /run/systemd/system ]; then
	systemctl daemon-reload || true
fi

# What setup.sh made, read before the data folder (which holds the list)
# may go.
made=$(mktemp)
trap 'rm -f "$made"' EXIT
[ -f "$manifest" ] && cat "$manifest" >"$made"

if [ "$purge" = 1 ]; then
	if [ ! -s "$made" ] || grep -qx "dir $DATA_DIR" "$made"; then
		rm -rf "$DATA_DIR"
	else
		# The folder was there before setup.sh: empty it, keep it.
		find "$DATA_DIR" -mindepth 1 -delete
	fi
	group=$(grep '^group ' "$made" | cut -d' ' -f2- || true)
	if [ -n "$group" ] && getent group "$group" >/dev/null; then
		groupdel "$group"
	fi
	echo "removed $DATA_DIR"
else
	echo "kept $DATA_DIR (use --purge to remove it)"
fi

# The folders setup.sh made, deepest first, when they are empty now (the
# data folder and its parents stay until --purge empties them).
if [ -s "$made" ]; then
	grep '^dir ' "$made" | cut -d' ' -f2- | sort -r | while read -r d; do
		case $d in "$DATA_DIR" | "$DATA_DIR"/*) [ "$purge" = 1 ] || continue ;; esac
		rmdir "$d" 2>/dev/null || true
	done
else
	rmdir "$RUN_DIR" 2>/dev/null || true
fi
