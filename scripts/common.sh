# shellcheck shell=bash
# Shared helpers for the project's scripts. Sourced, not run.
VMGUARD_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
VMGUARD_VENV=${VMGUARD_VENV:-$VMGUARD_ROOT/.venv}
VMGUARD_CACHE=${VMGUARD_CACHE:-$VMGUARD_ROOT/.cache}
# The collection is found as vmguard.hardening through a symlink tree; the dependency
# collections come from the ansible bundle inside the venv.
VMGUARD_COLLECTIONS=$VMGUARD_CACHE/collections

step() { printf '\n\033[1m==> %s\033[0m\n' "$*"; }
info() { printf '    %s\n' "$*"; }
die() { printf '\033[31mERROR: %s\033[0m\n' "$*" >&2; exit 1; }

activate() {
  [ -x "$VMGUARD_VENV/bin/ansible-playbook" ] || die "no toolchain in $VMGUARD_VENV: run 'make setup' first"
  export PATH="$VMGUARD_VENV/bin:$PATH"
  export ANSIBLE_COLLECTIONS_PATH="$VMGUARD_COLLECTIONS"
  export ANSIBLE_CONFIG="$VMGUARD_ROOT/ansible.cfg"
}
