#!/bin/sh
# /init of the VM suite's initramfs (static busybox). The guest's root is the host's / over 9p,
# read-only, under a tmpfs overlay: the guest runs the host's systemd, node and the repository as
# they are, and whatever it writes stays in guest memory. Then into systemd (chroot, see the end).
# Kernel command line (set by test/vm/qemu.ts):
#   charger.vm=<dir>     the provisioned directory (modules/, udev/), a path on the host's /
#   charger.repo=<dir>   the repository under test, a path on the host's /
# 9p mount tags: hostroot (the host's /, read-only), run (the run directory, read-write: the guest's
# instructions in, its results out).
/bin/busybox --install -s /bin
export PATH=/bin

fail() {
  echo "vm-init: ERROR: $*" >/dev/console
  poweroff -f
}

mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev

for arg in $(cat /proc/cmdline); do
  case "$arg" in
    charger.vm=*) VM_DIR=${arg#charger.vm=} ;;
    charger.repo=*) REPO=${arg#charger.repo=} ;;
  esac
done
[ -n "$VM_DIR" ] && [ -n "$REPO" ] || fail "charger.vm= and charger.repo= must be on the kernel command line"

while read -r module; do
  insmod "/modules/$module" || fail "insmod $module"
done </modules/order

# msize: 9p moves at most this much per request (the default 8 KiB makes reading node_modules slow).
P9='trans=virtio,version=9p2000.L,msize=512000'
echo "vm-init: mounting the host's /" >/dev/kmsg
mount -t 9p -o "$P9,ro,cache=loose" hostroot /lower || fail "mount the host's / over 9p"
echo "vm-init: mounted" >/dev/kmsg
mount -t tmpfs -o mode=0755 tmpfs /upper
mkdir -p /upper/data /upper/work
mount -t overlay overlay -o lowerdir=/lower,upperdir=/upper/data,workdir=/upper/work /newroot || fail "overlay"

R=/newroot
# systemd treats /.dockerenv as "in a container" and then ignores the kernel command line.
rm -f $R/.dockerenv
# The host's /tmp over 9p is slow to walk (systemd-tmpfiles) and none of the guest's business.
mount -t tmpfs -o mode=1777 tmpfs $R/tmp
mount -t tmpfs -o mode=1777 tmpfs $R/var/tmp
# ...but a repository checked out under them (a CI clone in /tmp) is the guest's business: bind it back.
case "$REPO" in
  /tmp/*|/var/tmp/*)
    mkdir -p "$R$REPO"
    mount --bind "/lower$REPO" "$R$REPO" || fail "bind the repository $REPO over the guest's /tmp"
    ;;
esac
mkdir -p $R/vm-run
mount -t 9p -o "$P9,cache=none" run $R/vm-run || fail "mount the run directory over 9p"
KVER=$(uname -r)
mkdir -p $R/usr/lib/modules/$KVER
mount --bind "/lower$VM_DIR/modules" $R/usr/lib/modules/$KVER || fail "bind the kernel's modules"
echo "vm-init: copying" >/dev/kmsg
cp -a "/lower$VM_DIR/udev/." $R/ || fail "copy udev into the overlay"
cp -a "/lower$REPO/scripts/vm/guest/rootfs/." $R/ || fail "copy the guest's units into the overlay"
printf 'CHARGER_REPO=%s\n' "$REPO" >$R/etc/charger-vm.env
# No generators: each is a program read over 9p, and the guest needs none of them (no fstab, no
# SysV scripts, no gettys, no encrypted volumes).
mkdir -p $R/etc/systemd/system-generators
for generator in $R/usr/lib/systemd/system-generators/*; do
  ln -sf /dev/null "$R/etc/systemd/system-generators/${generator##*/}"
done
# The payload the host appended to this initramfs (scripts/vm/boot.sh --payload): node, npm and the
# tree to install, already in guest memory (reading 150 MB over 9p under TCG takes minutes). Bound
# into the new root from here, not copied: the initramfs is not emptied (no switch_root, see below).
if [ -d /payload ]; then
  mkdir -p $R/vm-payload
  mount --bind /payload $R/vm-payload
  [ -f /payload/node ] && mount --bind /payload/node $R/usr/bin/node
  [ -d /payload/npm ] && mount --bind /payload/npm $R/usr/lib/node_modules/npm
fi
echo "vm-init: switching to systemd" >/dev/kmsg

umount /proc /sys
mount --move /dev $R/dev
# switch_root would delete the initramfs' files, the payload with them: move the new root over /
# and chroot into it instead (what switch_root does, without the clean-up).
cd $R
mount --move . /
exec chroot . /lib/systemd/systemd
