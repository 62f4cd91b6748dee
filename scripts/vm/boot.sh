#!/usr/bin/env bash
# Boots the virtual charge point once (QEMU TCG, no display, serial console to RUN_DIR/console.log)
# and returns when the guest powers off. The caller sets the hard timeout (test/vm/qemu.ts kills it,
# or: timeout -s KILL 300 scripts/vm/boot.sh …). exec: this process becomes qemu, so a SIGKILL to
# its pid is a power cut.
#   scripts/vm/boot.sh RUN_DIR [--payload DIR] [--disk IMAGE]
# RUN_DIR is shared with the guest read-write as /vm-run (instructions.json in, results out).
# --payload DIR: DIR's files are appended to the initramfs and appear as /vm-payload/ in the guest
# (a file named node is bound over /usr/bin/node): reading them over 9p under TCG is far slower.
# Needs the assignments of scripts/vm/provision.sh in the environment (VM_DIR, VM_INITRD).
set -euo pipefail
[ $# -ge 1 ] || { echo "usage: $0 RUN_DIR [--disk IMAGE]" >&2; exit 2; }
RUN_DIR=$(cd "$1" && pwd)
shift
: "${VM_DIR:?run scripts/vm/provision.sh first and export its output}" "${VM_INITRD:?}"
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
disk=()
initrd=$VM_INITRD
while [ $# -gt 0 ]; do
  case "$1" in
    # cache=directsync: a write the guest saw complete is in the host's file, so a SIGKILL of qemu
    # loses exactly what a power cut loses on a device whose storage honours flushes.
    --disk) disk=(-drive "file=$2,if=virtio,format=raw,cache=directsync,aio=threads"); shift ;;
    --payload)
      [ "$(basename "$2")" = payload ] || { echo "--payload: the directory must be named payload" >&2; exit 2; }
      initrd=$RUN_DIR/initrd.img
      # one more cpio archive after the provisioned one (the kernel unpacks them in turn), uncompressed
      cp "$VM_INITRD" "$initrd"
      truncate -s %512 "$initrd"
      (cd "$(dirname "$2")" && find payload | "$VM_DIR/busybox" cpio -o -H newc 2>/dev/null) >>"$initrd"
      shift ;;
    *) echo "unknown option $1" >&2; exit 2 ;;
  esac
  shift
done
# Debian's kernel under TCG: no KVM (its CPU model is refused here). quiet: every console character
# costs an emulated serial write (CHARGER_VM_DEBUG=1: kernel and systemd messages on the console).
verbosity=quiet
[ -z "${CHARGER_VM_DEBUG:-}" ] || verbosity="loglevel=6 systemd.show_status=1"
exec qemu-system-x86_64 -accel tcg,thread=multi -smp 2 -cpu max -m 1536 \
  -nodefaults -display none -monitor none -no-reboot -nic none \
  -serial "file:$RUN_DIR/console.log" \
  -kernel "$VM_DIR/vmlinuz" -initrd "$initrd" \
  -append "console=ttyS0 $verbosity panic=-1 mitigations=off systemd.unit=charger-vm.target charger.vm=$VM_DIR charger.repo=$REPO" \
  -virtfs "local,path=/,mount_tag=hostroot,security_model=none,readonly=on,multidevs=remap" \
  -virtfs "local,path=$RUN_DIR,mount_tag=run,security_model=none" \
  "${disk[@]}"
