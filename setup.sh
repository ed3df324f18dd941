#!/bin/sh
# setup.sh: build and install TestbedOS on this host (as root).
#   - builds testbedos-server and kvm-compose into $PREFIX/bin
#   - creates the data folder and the group `testbedos` (its members may use
#     the unix socket without a token)
#   - installs the systemd unit, NOT enabled: systemctl start testbedos-server
#
# Where things go (environment variables, defaults in brackets), so a test or
# a packager can install into a prefix of its own:
#   PREFIX              binaries in $PREFIX/bin             [/usr/local]
#   TESTBEDOS_DATA_DIR  the data folder                     [/var/lib/testbedos]
#   UNIT_DIR            the systemd unit                    [/etc/systemd/system]
#   RUN_DIR             the folder of the unix socket       [/run/testbedos]
#   SKIP_GROUP=1        do not create the testbedos group
# Options:
#   --with-ovn          also install Debian's Open vSwitch and OVN
#                       (openvswitch-switch ovn-central ovn-host) for the ovn
#                       network backend (TESTBEDOS_NETWORK=ovn)
# The unit is written with these paths in it. Everything setup.sh creates is
# listed in $TESTBEDOS_DATA_DIR/.setup-manifest, which teardown.sh reads to
# remove exactly that.
set -eu
cd "$(dirname "$0")"
[ "$(id -u)" -eq 0 ] || { echo "setup.sh: run as root" >&2; exit 1; }

WITH_OVN=0
for arg in "$@"; do
	case "$arg" in
	--with-ovn) WITH_OVN=1 ;;
	*) echo "setup.sh: unknown option $arg (known: --with-ovn)" >&2; exit 2 ;;
	esac
done
if [ "$WITH_OVN" = 1 ]; then
	echo "installing Open vSwitch and OVN for the ovn network backend"
	# Package scripts must not start the daemons: the server starts its
	# own under the data folder unless the host's already run.
	policy=/usr/sbin/policy-rc.d
	own_policy=0
	if [ ! -e "$policy" ]; then
		printf '#!/bin/sh\nexit 101\n' >"$policy"
		chmod 755 "$policy"
		own_policy=1
	fi
	DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends openvswitch-switch ovn-central ovn-host ||
		{ [ "$own_policy" = 1 ] && rm -f "$policy"; exit 1; }
	[ "$own_policy" = 1 ] && rm -f "$policy"
	echo "ovn backend: start the server with TESTBEDOS_NETWORK=ovn"
fi

PREFIX=${PREFIX:-/usr/local}
DATA_DIR=${TESTBEDOS_DATA_DIR:-/var/lib/testbedos}
UNIT_DIR=${UNIT_DIR:-/etc/systemd/system}
RUN_DIR=${RUN_DIR:-/run/testbedos}
GROUP=testbedos
BIN=$PREFIX/bin
UNIT=$UNIT_DIR/testbedos-server.service

# made lists what this run creates, one "kind path" a line, in order.
made=$(mktemp)
trap 'rm -f "$made"' EXIT
# mkdirs creates a folder and its missing parents, noting each it made.
mkdirs() {
	missing=""
	d=$1
	while [ ! -d "$d" ]; do
		missing="$d $missing"
		d=$(dirname "$d")
	done
	for d in $missing; do
		install -d -m 0755 "$d"
		echo "dir $d" >>"$made"
	done
}
# put installs a file, noting it unless it was there before.
put() { # mode source target
	[ -e "$3" ] || echo "file $3" >>"$made"
	install -m "$1" "$2" "$3"
}

echo "building"
mkdirs "$BIN"
tmp=$(mktemp -d)
go build -o "$tmp/testbedos-server" ./cmd/testbedos-server
go build -o "$tmp/kvm-compose" ./cmd/kvm-compose
put 0755 "$tmp/testbedos-server" "$BIN/testbedos-server"
put 0755 "$tmp/kvm-compose" "$BIN/kvm-compose"
rm -rf "$tmp"

if [ "${SKIP_GROUP:-0}" != 1 ] && ! getent group "$GROUP" >/dev/null; then
	groupadd --system "$GROUP"
	echo "group $GROUP" >>"$made"
fi
for d in "$DATA_DIR" "$DATA_DIR/config" "$DATA_DIR/deployments" "$DATA_DIR/logs" "$DATA_DIR/logs/orchestration"; do
	mkdirs "$d"
done
mkdirs "$RUN_DIR"

mkdirs "$UNIT_DIR"
unit=$(mktemp)
sed -e "s|/usr/local/bin/testbedos-server|$BIN/testbedos-server|" \
	-e "s|/var/lib/testbedos|$DATA_DIR|g" deploy/testbedos-server.service >"$unit"
put 0644 "$unit" "$UNIT"
rm -f "$unit"
if command -v systemctl >/dev/null 2>&1 && [ -d /run/systemd/system ]; then
	systemctl daemon-reload
fi

# An earlier setup's list is kept: teardown removes what either made.
manifest=$DATA_DIR/.setup-manifest
[ -e "$manifest" ] && cat "$manifest" >>"$made"
sort -u -o "$made" "$made"
install -m 0644 "$made" "$manifest"

echo "installed the unit $UNIT; start it with: systemctl start testbedos-server (enable it to start at boot)"
echo "done: $BIN/testbedos-server, $BIN/kvm-compose, data in $DATA_DIR"
