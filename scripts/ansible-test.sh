#!/usr/bin/env bash
# ansible-test needs the collection physically at .../ansible_collections/vmguard/hardening
# (a symlink does not count): copy the tracked files into a scratch tree and run there.
#   scripts/ansible-test.sh sanity [extra ansible-test args]
set -euo pipefail
. "$(dirname "$0")/common.sh"
activate
tree="$VMGUARD_CACHE/ansible-test/ansible_collections/vmguard/hardening"
rm -rf "$tree"
mkdir -p "$tree"
cd "$VMGUARD_ROOT"
# Tracked and new (not ignored) files: what a commit of the work tree would hold.
git ls-files -z --cached --others --exclude-standard | while IFS= read -r -d '' f; do
  [ -e "$f" ] || continue
  mkdir -p "$tree/$(dirname "$f")"
  cp -a "$f" "$tree/$f"
done
cd "$tree"
git init -q . && git add -A >/dev/null 2>&1  # ansible-test lists files through git when it can
py=$(python -c 'import sys; print("%d.%d" % sys.version_info[:2])')
cmd=${1:-sanity}; shift || true
info "ansible-test $cmd --python $py (in $tree)"
ansible-test "$cmd" --python "$py" --venv --color no "$@"
