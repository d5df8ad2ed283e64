#!/usr/bin/env bash
# vmguard.hardening golden image: remove an unfinished build directory safely.
# Unmounts anything still mounted below it first (an interrupted debootstrap leaves /proc,
# /sys and a recursive bind of /dev), then deletes without crossing file systems.
set -euo pipefail
dir=$1
case "$dir" in
  *.partial) ;;
  *) echo "refusing to clean $dir: not a *.partial build directory" >&2; exit 2 ;;
esac
[ -e "$dir" ] || exit 0
# Deepest mount points first.
awk -v d="$dir/" 'index($2, d) == 1 { print $2 }' /proc/self/mounts | sort -r | while read -r m; do
  umount -l "$m" || true
done
if awk -v d="$dir/" 'index($2, d) == 1 { found = 1 } END { exit !found }' /proc/self/mounts; then
  echo "cannot clean $dir: file systems are still mounted below it" >&2
  exit 1
fi
rm -rf --one-file-system "$dir"
