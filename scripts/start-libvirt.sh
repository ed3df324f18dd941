#!/bin/sh
# start-libvirt.sh: start virtlogd and libvirtd by hand (no systemd) if they
# are not running, then wait until libvirtd answers on its socket.
#
# Idempotent. Exits non-zero if libvirtd does not answer within
# ${LIBVIRT_WAIT_SECONDS:-30} seconds.
set -eu

if [ "$(id -u)" -ne 0 ]; then
	echo "start-libvirt: must run as root" >&2
	exit 1
fi
for b in virtlogd libvirtd virsh; do
	if ! command -v "$b" >/dev/null 2>&1; then
		echo "start-libvirt: $b not found; run scripts/install-test-deps.sh" >&2
		exit 1
	fi
done

running() {
	# pidof matches the exact program name, not command lines.
	pidof "$1" >/dev/null 2>&1
}

mkdir -p /run/libvirt /var/log/libvirt

if ! running virtlogd; then
	echo "start-libvirt: starting virtlogd"
	virtlogd -d
fi
if ! running libvirtd; then
	echo "start-libvirt: starting libvirtd"
	libvirtd -d
fi

wait_s=${LIBVIRT_WAIT_SECONDS:-30}
i=0
while [ "$i" -lt $((wait_s * 5)) ]; do
	if virsh -c qemu:///system version >/dev/null 2>&1; then
		echo "start-libvirt: libvirtd is answering"
		exit 0
	fi
	sleep 0.2
	i=$((i + 1))
done
echo "start-libvirt: libvirtd did not answer within ${wait_s}s" >&2
virsh -c qemu:///system version >&2 || true
exit 1
