#!/bin/sh
# setup.sh: build and install TestbedOS on this host (as root).
#   - builds testbedos-server and kvm-compose into /usr/local/bin
#   - creates /var/lib/testbedos and the group `testbedos` (its members may use
#     the unix socket without a token)
#   - installs the systemd unit, NOT enabled: systemctl start testbedos-server
set -eu
cd "$(dirname "$0")"
[ "$(id -u)" -eq 0 ] || { echo "setup.sh: run as root" >&2; exit 1; }

PREFIX=${PREFIX:-/usr/local}
DATA_DIR=${TESTBEDOS_DATA_DIR:-/var/lib/testbedos}

echo "building"
go build -o "$PREFIX/bin/testbedos-server" ./cmd/testbedos-server
go build -o "$PREFIX/bin/kvm-compose" ./cmd/kvm-compose

getent group testbedos >/dev/null || groupadd --system testbedos
install -d -m 0755 "$DATA_DIR" "$DATA_DIR/config" "$DATA_DIR/deployments" "$DATA_DIR/logs" "$DATA_DIR/logs/orchestration"
install -d -m 0755 /run/testbedos

if [ -d /etc/systemd/system ]; then
	install -m 0644 deploy/testbedos-server.service /etc/systemd/system/testbedos-server.service
	if command -v systemctl >/dev/null 2>&1 && [ -d /run/systemd/system ]; then
		systemctl daemon-reload
	fi
	echo "installed the unit; start it with: systemctl start testbedos-server (enable it to start at boot)"
fi
echo "done: $PREFIX/bin/testbedos-server, $PREFIX/bin/kvm-compose, data in $DATA_DIR"
