#!/usr/bin/env bash
# vmguard.hardening golden image: stage 2, write the lineage record and pack a sealed root
# file system into disk.qcow2 + vmlinuz + initrd.img (direct kernel boot) in OUTDIR.
#
# Usage: vmguard-pack-image.sh ROOTFS OUTDIR SIZE BUILD_ID INPUT_DIGEST SUITE MIRROR BUILDER
set -euo pipefail
rootfs=$1 outdir=$2 size=$3 build_id=$4 input_digest=$5 suite=$6 mirror=$7 builder=$8

log() { printf '[vmguard-image] %s %s\n' "$(date +%H:%M:%S)" "$*"; }

install -d -m 0755 "$outdir"
# Package manifest: name, version, architecture of every installed package, sorted.
# shellcheck disable=SC2016 # dpkg-query's format, not shell expansions
chroot "$rootfs" dpkg-query -W -f '${Package} ${Version} ${Architecture}\n' | LC_ALL=C sort > "$outdir/manifest.txt"
manifest_digest=$(sha256sum "$outdir/manifest.txt" | cut -d' ' -f1)
kernel_version=$(find "$rootfs/boot" -maxdepth 1 -name 'vmlinuz-*' -printf '%f\n' | sed 's/^vmlinuz-//' | sort -V | tail -n 1)
[ -n "$kernel_version" ] || { echo "no kernel in $rootfs/boot" >&2; exit 1; }

# The values reach Python as arguments, never spliced into its source (a quote in a mirror URL
# cannot change the program).
python3 - "$outdir/lineage.json" "$build_id" "$(date -u +%Y-%m-%dT%H:%M:%SZ)" "$input_digest" "$suite" \
  "$mirror" "$builder" "$kernel_version" "$(wc -l < "$outdir/manifest.txt")" "$manifest_digest" <<'EOF'
import json, sys
out, build_id, build_time, input_digest, suite, mirror, builder, kernel, count, digest = sys.argv[1:]
record = {
    "schema": "vmguard.lineage/v1",
    "build_id": build_id,
    "build_time": build_time,
    "input_digest": input_digest,
    "base_suite": suite,
    "mirror": mirror,
    "builder": builder,
    "kernel": kernel,
    "package_count": int(count),
    "package_manifest_sha256": digest,
    "seal": "verified",
}
with open(out, "w") as f:
    json.dump(record, f, indent=2, sort_keys=True)
    f.write("\n")
EOF
chmod 0644 "$outdir/lineage.json"
# Into the image from inside the chroot: a symbolic link left at /etc/vmguard resolves inside the
# image, never on this host; a private temporary file is renamed over the target.
chroot "$rootfs" install -d -m 0755 /etc/vmguard
# shellcheck disable=SC2016 # expanded by the shell inside the chroot
chroot "$rootfs" sh -c 'set -e; t=$(mktemp /etc/vmguard/.lineage.XXXXXX); cat > "$t"; chmod 0644 "$t"; mv -f "$t" /etc/vmguard/lineage.json' \
  < "$outdir/lineage.json"

# The kernel and initrd are read from inside the image: a symbolic link there must not pull a
# host file into the output, so only regular files are copied.
for f in "vmlinuz-$kernel_version:vmlinuz" "initrd.img-$kernel_version:initrd.img"; do
  src="$rootfs/boot/${f%%:*}"
  if [ -L "$src" ] || [ ! -f "$src" ]; then
    echo "$src is not a regular file in the image (a link or missing): refusing to copy it" >&2
    exit 2
  fi
  cp --no-dereference "$src" "$outdir/${f##*:}"
done

log "mkfs.ext4 ($size) from the root file system"
raw="$outdir/disk.raw"
truncate -s "$size" "$raw"
mkfs.ext4 -q -F -L vmguard-root -E root_owner=0:0 -d "$rootfs" "$raw"
log "convert to qcow2"
qemu-img convert -O qcow2 "$raw" "$outdir/disk.qcow2"
rm -f "$raw"
# The golden image is a read-only backing file for every lab overlay.
chmod 0444 "$outdir/disk.qcow2" "$outdir/vmlinuz" "$outdir/initrd.img" "$outdir/lineage.json" "$outdir/manifest.txt"
log "image ready: $(du -m --apparent-size "$outdir/disk.qcow2" | cut -f1) MiB qcow2, initrd $(du -k "$outdir/initrd.img" | cut -f1) KiB"
