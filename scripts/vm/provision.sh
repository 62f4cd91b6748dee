#!/usr/bin/env bash
# Provisions the virtual charge point of the VM suite, from Debian only, into a cache outside git:
#   ${XDG_CACHE_HOME:-~/.cache}/charger-agent/vm/<key>/
#     vmlinuz        Debian's linux-image-<abi>-amd64 (apt-get download + dpkg-deb -x, nothing installed)
#     modules/       its /lib/modules/<kver> plus extra/gpio-sim.ko (built here, see below), depmod'ed
#     initrd-<hash>.img  static busybox (busybox-static), the 9p/virtio/overlay modules and scripts/vm/initramfs-init.sh
#     udev/          the udev package matching the host's systemd, copied into the guest's overlay
# The key holds the package versions and a hash of the files that go into it, so a new kernel or a
# changed init script builds a new directory; an old one is left for `rm -rf` (nothing else removes it).
# Host tools it needs and installs with apt-get when it runs as root: qemu-system-x86 (the emulator),
# kmod (depmod; also modprobe inside the guest, whose root is this host's /), gcc-12 and make.
#
# Debian's 6.1 kernel has CONFIG_GPIO_SYSFS and CONFIG_GPIO_CDEV but no gpio-sim: the module is built
# out of tree from linux-source-6.1 (gpio-sim.c, irq_sim.c, gpiolib.h) against linux-headers, with one
# change: irq_sim.c calls irq_to_desc(), which is not exported to modules; generic_handle_domain_irq()
# does the same (the descriptor's handler is handle_simple_irq, set when the line is mapped).
#
# Prints the result as shell assignments (VM_DIR=…, VM_KVER=…) on stdout; progress goes to stderr.
#   scripts/vm/provision.sh [--print-key]
set -euo pipefail

readonly HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
readonly CACHE_ROOT="${CHARGER_VM_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/charger-agent/vm}"
readonly HOST_TOOLS=(qemu-system-x86_64:qemu-system-x86 depmod:kmod gcc-12:gcc-12 make:make)
# Modules the initramfs loads before it can mount the host's / over 9p, in dependency order.
readonly INITRD_MODULES=(virtio_pci 9pnet_virtio 9p overlay)

log() { printf 'vm-provision: %s\n' "$*" >&2; }
die() { printf 'vm-provision: ERROR: %s\n' "$*" >&2; exit 1; }

host_tools() {
  local missing=() entry
  for entry in "${HOST_TOOLS[@]}"; do
    command -v "${entry%%:*}" >/dev/null || missing+=("${entry#*:}")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  if [ "$(id -u)" -ne 0 ]; then
    die "missing host packages: ${missing[*]} (sudo apt-get install --no-install-recommends ${missing[*]})"
  fi
  log "installing ${missing[*]} from Debian"
  apt_update
  DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=300 install -y -q --no-install-recommends "${missing[@]}" >&2 \
    || die "apt-get install ${missing[*]} failed"
}

# A fresh machine may have no package lists yet: read them once (root only).
APT_UPDATED=
apt_update() {
  [ -z "$APT_UPDATED" ] && [ "$(id -u)" -eq 0 ] || return 0
  log "apt-get update"
  apt-get -o DPkg::Lock::Timeout=300 update -qq >&2 || die "apt-get update failed"
  APT_UPDATED=1
}

# The newest 6.1 kernel ABI Debian offers: linux-image-amd64 depends on linux-image-<abi>-amd64.
kernel_package() {
  apt-cache depends linux-image-amd64 2>/dev/null | sed -n 's/^ *Depends: \(linux-image-6\.1\.[0-9]*-[0-9]*-amd64\)$/\1/p' | head -1
}

candidate_version() {
  apt-cache policy "$1" | sed -n 's/^ *Candidate: //p'
}

# apt-get download into debs/ once per version (it keeps the file name apt chose).
fetch() {
  local pkg=$1 version=$2 debs=$CACHE_ROOT/debs
  mkdir -p "$debs"
  local file
  file=$(find "$debs" -name "${pkg}_$(printf '%s' "$version" | sed 's/:/%3a/')_*.deb" -print -quit)
  if [ -z "$file" ]; then
    log "apt-get download $pkg=$version"
    (cd "$debs" && apt-get download -q "$pkg=$version" >&2) || die "apt-get download $pkg=$version failed"
    file=$(find "$debs" -name "${pkg}_$(printf '%s' "$version" | sed 's/:/%3a/')_*.deb" -print -quit)
  fi
  [ -n "$file" ] || die "apt-get download $pkg=$version left no .deb in $debs"
  printf '%s\n' "$file"
}

build_module() {
  local work=$1 kver=$2 headers_dir
  local src="$work/src" mod="$work/mod"
  mkdir -p "$src" "$mod"
  log "extracting gpio-sim.c, irq_sim.c, gpiolib.h from linux-source-6.1"
  tar -xJf "$work/x/usr/src/linux-source-6.1.tar.xz" -C "$src" --strip-components=1 \
    linux-source-6.1/drivers/gpio/gpio-sim.c linux-source-6.1/drivers/gpio/gpiolib.h linux-source-6.1/kernel/irq/irq_sim.c
  cp "$src/drivers/gpio/gpio-sim.c" "$mod/gpio-sim-main.c"
  cp "$src/drivers/gpio/gpiolib.h" "$src/kernel/irq/irq_sim.c" "$mod/"
  grep -q 'handle_simple_irq(irq_to_desc(irqnum));' "$mod/irq_sim.c" || die "irq_sim.c changed upstream: the irq_to_desc patch no longer applies"
  sed -i 's/handle_simple_irq(irq_to_desc(irqnum));/generic_handle_domain_irq(work_ctx->domain, offset);/' "$mod/irq_sim.c"
  printf 'obj-m := gpio-sim.o\ngpio-sim-y := gpio-sim-main.o irq_sim.o\n' >"$mod/Kbuild"
  # The headers package names its common half by absolute path (/usr/src/...): point it at the extract.
  headers_dir="$work/x/usr/src/linux-headers-$kver"
  sed -i "s|/usr/src/|$work/x/usr/src/|" "$headers_dir/Makefile"
  log "building gpio-sim.ko against linux-headers-$kver"
  make -s -C "$headers_dir" M="$mod" modules >"$work/module-build.log" 2>&1 || { cat "$work/module-build.log" >&2; die "gpio-sim.ko did not build"; }
  [ -f "$mod/gpio-sim.ko" ] || die "gpio-sim.ko missing after the build"
}

build_initrd() {
  local dir=$1 out=$2 kver=$3
  local ird="$dir/initrd.work" name path paths
  rm -rf "$ird"
  mkdir -p "$ird"/{bin,dev,proc,sys,lower,upper,newroot,modules}
  cp "$dir/busybox" "$ird/bin/busybox"
  ln -s busybox "$ird/bin/sh"
  install -m 0755 "$HERE/initramfs-init.sh" "$ird/init"
  : >"$ird/modules/order"
  # modprobe -d wants <root>/lib/modules/<kver>: a link to the provisioned modules
  mkdir -p "$ird.root/lib/modules"
  ln -sfn "$dir/modules" "$ird.root/lib/modules/$kver"
  for name in "${INITRD_MODULES[@]}"; do
    if grep -q "/$name.ko$" "$dir/modules/modules.builtin"; then continue; fi
    paths=$(modprobe -d "$ird.root" -S "$kver" --show-depends "$name" | sed -n 's/^insmod \([^ ]*\).*/\1/p')
    [ -n "$paths" ] || die "module $name not found for $kver"
    for path in $paths; do
      grep -qx "$(basename "$path")" "$ird/modules/order" && continue
      cp "$path" "$ird/modules/"
      basename "$path" >>"$ird/modules/order"
    done
  done
  (cd "$ird" && find . | "$dir/busybox" cpio -o -H newc 2>/dev/null | gzip -1) >"$out.tmp"
  mv "$out.tmp" "$out"
  rm -rf "$ird" "$ird.root"
  log "built $out"
}

main() {
  host_tools
  local image_pkg kver image_version source_version busybox_version udev_version key dir
  image_pkg=$(kernel_package)
  if [ -z "$image_pkg" ]; then
    apt_update
    image_pkg=$(kernel_package)
  fi
  [ -n "$image_pkg" ] || die "apt-cache knows no linux-image-6.1.*-amd64 (is bookworm in the apt sources? apt-get update)"
  kver=${image_pkg#linux-image-}
  image_version=$(candidate_version "$image_pkg")
  source_version=$(candidate_version linux-source-6.1)
  busybox_version=$(candidate_version busybox-static)
  # udev must match the systemd the guest runs (the host's own).
  udev_version=$(dpkg-query -W -f '${Version}' systemd 2>/dev/null) || die "systemd is not installed on this host: the guest boots the host's systemd"
  [ "$image_version" = "$source_version" ] || log "note: kernel $image_version, source $source_version"
  local hash
  hash=$(sha256sum <"$HERE/provision.sh" | cut -c1-10)
  key="${kver}_${image_version}_bb${busybox_version#*:}_udev${udev_version}_${hash}"
  if [ "${1:-}" = --print-key ]; then printf '%s\n' "$key"; return 0; fi
  dir="$CACHE_ROOT/$key"
  if [ ! -f "$dir/ready" ]; then
    local work="$dir.work"
    rm -rf "$work" "$dir"
    mkdir -p "$work/x"
    local pkg
    for pkg in "$image_pkg=$image_version" "linux-headers-$kver=$image_version" "linux-headers-${kver%-amd64}-common=$image_version" \
      "linux-kbuild-6.1=$image_version" "linux-source-6.1=$source_version" "busybox-static=$busybox_version"; do
      dpkg-deb -x "$(fetch "${pkg%%=*}" "${pkg#*=}")" "$work/x"
    done
    mkdir -p "$work/udev"
    # The host's own version, else (a mirror that moved on to the next point release) the candidate
    local udev_deb
    udev_deb=$( (fetch udev "$udev_version") 2>/dev/null) || {
      log "note: udev $udev_version is not downloadable; using $(candidate_version udev) for the guest"
      udev_deb=$(fetch udev "$(candidate_version udev)")
    }
    dpkg-deb -x "$udev_deb" "$work/udev"
    # the hardware database is large and unused here
    rm -rf "$work/udev/usr/lib/udev/hwdb.d" "$work/udev/lib/udev/hwdb.d" "$work/udev/usr/share" "$work/udev/etc/init.d"
    # merged /usr, as on the host: /lib, /bin and /sbin are symbolic links into /usr there
    local top
    for top in lib bin sbin; do
      [ -d "$work/udev/$top" ] || continue
      mkdir -p "$work/udev/usr/$top"
      cp -a "$work/udev/$top/." "$work/udev/usr/$top/"
      rm -rf "$work/udev/${top:?}"
    done
    build_module "$work" "$kver"
    mkdir -p "$work/modules/lib/modules"
    mv "$work/x/lib/modules/$kver" "$work/modules/lib/modules/$kver"
    mkdir -p "$work/modules/lib/modules/$kver/extra"
    cp "$work/mod/gpio-sim.ko" "$work/modules/lib/modules/$kver/extra/"
    depmod -b "$work/modules" "$kver"
    mkdir -p "$dir"
    mv "$work/x/boot/vmlinuz-$kver" "$dir/vmlinuz"
    mv "$work/x/bin/busybox" "$dir/busybox"
    mv "$work/modules/lib/modules/$kver" "$dir/modules"
    mv "$work/udev" "$dir/udev"
    rm -rf "$work"
    printf '%s\n' "$key" >"$dir/ready"
    log "provisioned $dir"
  fi
  # The initramfs changes with its init script only: its own key, in the same directory.
  local initrd
  initrd="$dir/initrd-$(sha256sum <"$HERE/initramfs-init.sh" | cut -c1-10).img"
  [ -f "$initrd" ] || build_initrd "$dir" "$initrd" "$kver"
  printf 'VM_DIR=%q\nVM_KVER=%q\nVM_KEY=%q\nVM_INITRD=%q\n' "$dir" "$kver" "$key" "$initrd"
}

main "$@"
