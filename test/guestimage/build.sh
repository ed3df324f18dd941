#!/bin/sh
# build.sh OUTDIR: build the TestbedOS test guest image into OUTDIR:
# OUTDIR/vmlinuz and OUTDIR/initramfs.cpio.gz (see README.md).
# Needs the packages of scripts/install-test-deps.sh and the go command.
set -eu
if [ $# -ne 1 ]; then
	echo "usage: $0 OUTDIR" >&2
	exit 2
fi
mkdir -p "$1"
out=$(cd "$1" && pwd)
root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root"
if ! command -v go >/dev/null 2>&1 && [ -x /usr/local/go/bin/go ]; then
	PATH=$PATH:/usr/local/go/bin
fi
exec go run ./test/guestimage/cmd/tb-guestimage build -out "$out"
