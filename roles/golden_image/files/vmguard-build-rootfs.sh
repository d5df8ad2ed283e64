#!/usr/bin/env bash
# vmguard.hardening golden image: stage 1, build and customize a Debian root file system.
#
# Usage: vmguard-build-rootfs.sh BUILDER SUITE MIRROR SECURITY_MIRROR PACKAGES ROOTFS
#   BUILDER   mmdebstrap | debootstrap
#   PACKAGES  comma-separated list installed on top of the minbase variant
#   ROOTFS    empty directory to build into (the role owns its life cycle)
#
# Stage 2 (vmguard-pack-image.sh) turns the sealed tree into qcow2 + kernel + initrd.
# Sealing and seal verification are done by the vmguard.hardening.image_seal module
# between the two stages, so the same code can audit any image (DIV-06).
set -euo pipefail

builder=$1 suite=$2 mirror=$3 security_mirror=$4 packages=$5 rootfs=$6
here=$(cd "$(dirname "$0")" && pwd)

log() { printf '[vmguard-image] %s %s\n' "$(date +%H:%M:%S)" "$*"; }

[ -d "$rootfs" ] || { echo "rootfs directory $rootfs does not exist" >&2; exit 2; }
[ -z "$(ls -A "$rootfs")" ] || { echo "rootfs directory $rootfs is not empty" >&2; exit 2; }

sources="deb $mirror $suite main
deb $mirror $suite-updates main
deb $security_mirror $suite-security main"

# The initramfs configuration must exist before the kernel package is configured, so the
# initrd is generated once, small (virtio + ext4 only) instead of MODULES=most (~40 MB).
# put ROOT PATH MODE < content: write a file of the bootstrapped image from inside its chroot, so
# a symbolic link the packages left at PATH resolves inside the image, never on this host.
put() {
  # shellcheck disable=SC2016 # expanded by the shell inside the chroot
  chroot "$1" sh -c 'set -e; mkdir -p "$(dirname "$1")"; t=$(mktemp "$(dirname "$1")/.vmguard.XXXXXX"); cat > "$t"; chmod "$2" "$t"; mv -f "$t" "$1"' \
    put "$2" "$3"
}

write_initramfs_conf() {
  local root=$1
  printf 'MODULES=list\nCOMPRESS=zstd\n' | put "$root" /etc/initramfs-tools/conf.d/vmguard.conf 0644
  put "$root" /etc/initramfs-tools/hooks/vmguard 0755 < "$here/initramfs-hook-vmguard"
}

# mmdebstrap hooks (sh -c HOOK exec ROOTFS). Single-quoted on purpose: expanded by that sh.
# shellcheck disable=SC2016
setup_hook='mkdir -p "$1/etc/initramfs-tools/conf.d" "$1/etc/initramfs-tools/hooks" && printf "MODULES=list\nCOMPRESS=zstd\n" > "$1/etc/initramfs-tools/conf.d/vmguard.conf" && install -m 0755 "$VMGUARD_HOOK_DIR/initramfs-hook-vmguard" "$1/etc/initramfs-tools/hooks/vmguard"'
# shellcheck disable=SC2016
customize_hook='"$VMGUARD_HOOK_DIR/vmguard-customize.sh" "$1"'

case "$builder" in
  mmdebstrap)
    command -v mmdebstrap >/dev/null || { echo "mmdebstrap is not installed (apt-get install mmdebstrap)" >&2; exit 2; }
    log "mmdebstrap $suite from $mirror (+updates, +security)"
    # The hooks are constant strings run by sh with the root directory as $1; they find this
    # directory in the environment, never spliced into their text (any path is safe, quotes too).
    export VMGUARD_HOOK_DIR="$here"
    # setup-hook runs before any package is unpacked.
    mmdebstrap --mode=root --variant=minbase --components=main \
      --include="$packages" \
      --aptopt='Acquire::Languages "none"' \
      --dpkgopt='path-exclude=/usr/share/man/*' --dpkgopt='path-exclude=/usr/share/doc/*' \
      --dpkgopt='path-include=/usr/share/doc/*/copyright' \
      --dpkgopt='path-exclude=/usr/share/locale/*' \
      --setup-hook="$setup_hook" \
      --customize-hook="$customize_hook" \
      "$suite" "$rootfs" "$sources"
    ;;
  debootstrap)
    command -v debootstrap >/dev/null || { echo "debootstrap is not installed (apt-get install debootstrap)" >&2; exit 2; }
    # debootstrap cannot add the -updates/-security suites itself: bootstrap without the
    # kernel, then configure apt and install the rest inside the chroot.
    base_pkgs=$(printf '%s' "$packages" | tr ',' '\n' | grep -vxE 'linux-image-[a-z0-9-]+|initramfs-tools' | paste -sd, -)
    kernel_pkgs=$(printf '%s' "$packages" | tr ',' '\n' | grep -xE 'linux-image-[a-z0-9-]+|initramfs-tools' | paste -sd' ' - || true)
    log "debootstrap $suite from $mirror"
    debootstrap --variant=minbase --include="$base_pkgs" "$suite" "$rootfs" "$mirror"
    printf '%s\n' "$sources" | put "$rootfs" /etc/apt/sources.list 0644
    write_initramfs_conf "$rootfs"
    mount -t proc proc "$rootfs/proc"
    mount --rbind /dev "$rootfs/dev"
    mount -t sysfs sys "$rootfs/sys"
    trap 'umount -R "$rootfs/dev" "$rootfs/proc" "$rootfs/sys" 2>/dev/null || true' EXIT
    log "apt-get upgrade from $suite-updates and $suite-security; install $kernel_pkgs"
    chroot "$rootfs" env DEBIAN_FRONTEND=noninteractive apt-get -q update
    chroot "$rootfs" env DEBIAN_FRONTEND=noninteractive apt-get -q -y dist-upgrade
    # shellcheck disable=SC2086
    chroot "$rootfs" env DEBIAN_FRONTEND=noninteractive apt-get -q -y --no-install-recommends install $kernel_pkgs
    "$here/vmguard-customize.sh" "$rootfs"
    umount -R "$rootfs/dev" "$rootfs/proc" "$rootfs/sys"
    trap - EXIT
    ;;
  *)
    echo "unknown builder '$builder' (expected mmdebstrap or debootstrap)" >&2; exit 2 ;;
esac

log "rootfs ready: $(du -sm "$rootfs" | cut -f1) MiB"
