#!/bin/sh
# install-test-deps.sh: install, if missing, the Debian packages that the test
# suite needs to boot and reach VMs (QEMU TCG, libvirt, a kernel with virtio
# modules and a static busybox for the test guest image).
#
# Idempotent: packages already installed are not touched, and apt-get update
# runs only when something has to be installed. Works on a fresh Debian 12 as
# root (no systemd needed).
set -eu

# iptables brings iptables-legacy for the firewall test. docker.io gives
# dockerd for the docker guests (scripts/start-docker.sh starts it; curl
# asks it whether it answers). mtools and
# dosfstools only check, in tests, the FAT cloud-init seeds the
# libvirt driver writes itself. chromium runs the GUI's browser tests
# (headless, through chromedp). systemd brings systemd-analyze and passwd
# groupadd, for the packaging test of setup.sh and the unit. graphviz (dot)
# and ansible-core (ansible-inventory) check the graphs and inventories the
# server writes; python3 runs the Python SDK's tests. vim-tiny and procps
# give the GUI's browser test vi and top to run in a guest's console.
# (nodejs and npm for the GUI's JavaScript libraries are installed by
# scripts/gui-assets.sh when npm is missing.) openvswitch-switch,
# ovn-central and ovn-host run the ovn network backend (the server starts
# their daemons itself; the contract suite runs on it). mmdebstrap,
# extlinux, syslinux-common (mbr.bin), fdisk (sfdisk) and e2fsprogs build
# the Debian 12 cloud image of test/cloudimage from Debian's mirror.
PKGS="mmdebstrap extlinux syslinux-common fdisk e2fsprogs libvirt-daemon-system qemu-system-x86 qemu-utils linux-image-amd64 busybox-static iputils-ping cpio iproute2 xz-utils zstd mtools dosfstools iptables docker.io curl chromium systemd passwd graphviz ansible-core python3 vim-tiny procps openvswitch-switch ovn-central ovn-host"

if [ "$(id -u)" -ne 0 ]; then
	echo "install-test-deps: must run as root" >&2
	exit 1
fi

missing=""
for p in $PKGS; do
	if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
		missing="$missing $p"
	fi
done

if [ -z "$missing" ]; then
	echo "install-test-deps: all present"
	exit 0
fi

echo "install-test-deps: installing:$missing"
export DEBIAN_FRONTEND=noninteractive
# Do not let package scripts try to start services (there is no init system
# to start them with; scripts/start-libvirt.sh does it by hand).
policy=/usr/sbin/policy-rc.d
created_policy=0
if [ ! -e "$policy" ]; then
	printf '#!/bin/sh\nexit 101\n' >"$policy"
	chmod 755 "$policy"
	created_policy=1
fi
cleanup() {
	if [ "$created_policy" = 1 ]; then rm -f "$policy"; fi
}
trap cleanup EXIT

apt-get update -q
# shellcheck disable=SC2086
apt-get install -y -q --no-install-recommends $missing
echo "install-test-deps: done"
