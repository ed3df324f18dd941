#!/bin/sh
# build.sh OUT.qcow2: build a Debian 12 cloud image from Debian's packages,
# like the distribution's own "genericcloud" image: the cloud kernel with an
# initramfs, systemd, cloud-init (NoCloud only), OpenSSH, growpart, locales,
# ifupdown with a DHCP client, and extlinux as the bootloader on an MBR
# disk, with the kernel console on the serial port ttyS0.
#
# Needs root, mmdebstrap, extlinux (syslinux-common for mbr.bin), sfdisk,
# e2fsprogs, qemu-utils, a loop device and Debian's mirror (through apt's
# configured sources). scripts/install-test-deps.sh installs the packages.
# The Go package next to this script (Cached) runs it and caches the result
# under a hash of this file.
set -eu

out=$1
suite=${TBOS_CLOUDIMAGE_SUITE:-bookworm}
mirror=${TBOS_CLOUDIMAGE_MIRROR:-}
disk_mib=${TBOS_CLOUDIMAGE_DISK_MIB:-1536}

work=$(mktemp -d "${TMPDIR:-/tmp}/tbos-cloudimage.XXXXXX")
mnt=$work/mnt
cleanup() {
	if mountpoint -q "$mnt" 2>/dev/null; then umount "$mnt" || true; fi
	rm -rf "$work"
}
trap cleanup EXIT INT TERM

pkgs="linux-image-cloud-amd64,initramfs-tools,systemd,systemd-sysv,udev,dbus,cloud-init,cloud-guest-utils,openssh-server,locales,sudo,ifupdown,isc-dhcp-client,iproute2,iputils-ping,netbase,procps,e2fsprogs,fdisk"

# No documentation, manuals or translations: about a third of the size.
# shellcheck disable=SC2086
mmdebstrap --variant=apt --include="$pkgs" \
	--dpkgopt='path-exclude=/usr/share/man/*' \
	--dpkgopt='path-exclude=/usr/share/doc/*' \
	--dpkgopt='path-include=/usr/share/doc/*/copyright' \
	--dpkgopt='path-exclude=/usr/share/locale/*' \
	--dpkgopt='path-exclude=/usr/share/info/*' \
	--customize-hook='chroot "$1" sh -c "echo en_US.UTF-8 UTF-8 >/etc/locale.gen && locale-gen && echo LANG=en_US.UTF-8 >/etc/default/locale"' \
	"$suite" "$work/root" $mirror

root=$work/root
uuid=$(cat /proc/sys/kernel/random/uuid)
kver=$(cd "$root/boot" && ls vmlinuz-* | sed 's/^vmlinuz-//' | sort -V | tail -n 1)

# cloud-init: only the NoCloud seed (no probing of network data sources);
# the default user's name.
cat >"$root/etc/cloud/cloud.cfg.d/90-testbedos.cfg" <<CFG
datasource_list: [ NoCloud, None ]
CFG
echo "UUID=$uuid / ext4 defaults,errors=remount-ro 0 1" >"$root/etc/fstab"
echo debian >"$root/etc/hostname"
printf '127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n' >"$root/etc/hosts"
printf 'auto lo\niface lo inet loopback\n\nsource-directory /etc/network/interfaces.d\n' >"$root/etc/network/interfaces"
# Under TCG on a loaded host udev may take minutes to announce a device:
# systemd's default 90 s job timeout would fail the serial getty ("Dependency
# failed for Serial Getty on ttyS0") and leave the console without a login
# prompt.
mkdir -p "$root/etc/systemd/system.conf.d"
printf '[Manager]\nDefaultTimeoutStartSec=900s\nDefaultDeviceTimeoutSec=900s\n' >"$root/etc/systemd/system.conf.d/testbedos.conf"
# A fresh identity per VM: systemd makes the machine id at first boot,
# cloud-init the SSH host keys.
: >"$root/etc/machine-id"
rm -f "$root"/etc/ssh/ssh_host_* "$root/var/lib/dbus/machine-id"
rm -rf "$root"/var/lib/apt/lists/* "$root"/var/cache/apt/*.bin "$root"/var/cache/apt/archives/*.deb

# extlinux reads its configuration and the kernel from the root file system.
# no_timer_check: under TCG on a loaded host the kernel's check of the
# IO-APIC timer fails and it panics ("IO-APIC + timer doesn't work"), as
# Ubuntu's cloud images also know.
mkdir -p "$root/boot/extlinux"
cat >"$root/boot/extlinux/extlinux.conf" <<CONF
SERIAL 0 115200
DEFAULT debian
TIMEOUT 0
PROMPT 0
LABEL debian
	LINUX /boot/vmlinuz-$kver
	INITRD /boot/initrd.img-$kver
	APPEND root=UUID=$uuid ro console=tty0 console=ttyS0,115200n8 no_timer_check
CONF

# One MBR partition from 1 MiB to the end, marked bootable.
disk=$work/disk.raw
truncate -s "${disk_mib}M" "$disk"
printf 'label: dos\nstart=2048, type=83, bootable\n' | sfdisk -q "$disk"
fs_mib=$((disk_mib - 1))
mke2fs -q -t ext4 -F -L root -U "$uuid" -d "$root" -E offset=1048576 "$disk" "${fs_mib}M"

mkdir -p "$mnt"
mount -o loop,offset=1048576 "$disk" "$mnt"
extlinux --install "$mnt/boot/extlinux" >/dev/null
umount "$mnt"
dd if=/usr/lib/syslinux/mbr/mbr.bin of="$disk" bs=440 count=1 conv=notrunc status=none

qemu-img convert -c -O qcow2 "$disk" "$out.tmp"
mv "$out.tmp" "$out"
echo "cloudimage: $out kernel $kver $(du -m "$out" | cut -f1) MiB"
