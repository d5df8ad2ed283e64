#!/usr/bin/env bash
# Starts libvirt's daemons when they are not running, and the vmguard revert watcher (RB-11) for the
# lab and CI. Works with and without systemd as PID 1.
#   scripts/services.sh start   start virtlogd and libvirtd, then the watcher (records what it started)
#   scripts/services.sh stop    stop only what 'start' started
# The watcher runs from the checkout (the venv's python, PYTHONPATH=.cache/collections) on
# qemu:///system with its lock and heartbeat where the audit looks (/run/vmguard). Overrides:
# VMGUARD_WATCHER_RUN_DIR (lock and heartbeat), VMGUARD_WATCHER_LEDGER_DIR, VMGUARD_WATCHER_MGMT_NETWORKS
# (space separated), VMGUARD_WATCHER_DOMAINS (name patterns, default vmguard-*: the labs of the demo and
# of Molecule, never the throwaway domains of the integration tests, which run their own watcher),
# VMGUARD_WATCHER=0 (no watcher).
set -euo pipefail
. "$(dirname "$0")/common.sh"
state="$VMGUARD_CACHE/services-started"
mkdir -p "$VMGUARD_CACHE"
watcher_module=ansible_collections.vmguard.hardening.plugins.module_utils.remediation.watcher
watcher_conf="$VMGUARD_CACHE/watcher.json"
watcher_log="$VMGUARD_CACHE/watcher.log"

have_systemd() { [ "$(ps -p 1 -o comm= 2>/dev/null)" = systemd ]; }

watcher_python() { PYTHONPATH="$VMGUARD_COLLECTIONS" "$VMGUARD_VENV/bin/python" -m "$watcher_module" "$@"; }

start_watcher() {
  [ "${VMGUARD_WATCHER:-1}" = 1 ] || return 0
  [ -x "$VMGUARD_VENV/bin/python" ] || die "no toolchain in $VMGUARD_VENV: run 'make setup' first"
  # The collection's symlink tree (tests/unit/conftest.py makes the same one).
  link="$VMGUARD_COLLECTIONS/ansible_collections/vmguard/hardening"
  [ -e "$link" ] || { mkdir -p "$(dirname "$link")"; ln -s "$VMGUARD_ROOT" "$link"; }
  run_dir=${VMGUARD_WATCHER_RUN_DIR:-/run/vmguard}
  VMGUARD_W_RUN="$run_dir" VMGUARD_W_LEDGER="${VMGUARD_WATCHER_LEDGER_DIR:-/var/lib/vmguard/ledger}" \
  VMGUARD_W_MGMT="${VMGUARD_WATCHER_MGMT_NETWORKS:-}" VMGUARD_W_DOMAINS="${VMGUARD_WATCHER_DOMAINS:-vmguard-*}" \
    "$VMGUARD_VENV/bin/python" - "$watcher_conf" <<'PY'
import json, os, sys
env = os.environ
conf = {"uri": "qemu:///system", "ledger_dir": env["VMGUARD_W_LEDGER"], "mgmt_networks": env["VMGUARD_W_MGMT"].split(),
        "heartbeat_seconds": 5, "lock": os.path.join(env["VMGUARD_W_RUN"], "watcher.lock"),
        "heartbeat": os.path.join(env["VMGUARD_W_RUN"], "watcher.heartbeat"), "domains": env["VMGUARD_W_DOMAINS"].split()}
with open(sys.argv[1], "w") as f:
    json.dump(conf, f, indent=2)
PY
  out=$(watcher_python --config "$watcher_conf" --detach --log "$watcher_log") || die "revert watcher: $out (log: $watcher_log)"
  case "$out" in
    started*) echo "watcher ${out##* } $run_dir/watcher.lock" >> "$state"; info "started the revert watcher (${out#started }, log $watcher_log)" ;;
    *) info "revert watcher: $out" ;;
  esac
}

stop_watcher() {
  # Only the watcher this script started: its pid, still holding the lock it was started with.
  { grep '^watcher ' "$state" 2>/dev/null || true; } | while read -r _ pid lock; do
    holder=$(head -c 32 "$lock" 2>/dev/null | tr -dc 0-9 || true)
    if [ "$holder" = "$pid" ] && tr '\0' ' ' < "/proc/$pid/cmdline" 2>/dev/null | grep -q "$watcher_module"; then
      kill -TERM "$pid" && info "stopped the revert watcher (pid $pid)"
      for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    fi
  done
}

case "${1:-start}" in
  start)
    command -v libvirtd >/dev/null || die "libvirtd is not installed: run 'make setup'"
    # Without group kvm and mode 0660 on /dev/kvm, libvirt re-probes QEMU on every call
    # (a define took 76 s). Must happen before libvirtd starts.
    if [ -e /dev/kvm ] && getent group kvm >/dev/null; then
      chgrp kvm /dev/kvm && chmod 0660 /dev/kvm
    fi
    if have_systemd; then
      systemctl start virtlogd.service libvirtd.service
    else
      if ! pgrep -x virtlogd >/dev/null; then virtlogd -d; echo virtlogd >> "$state"; info "started virtlogd"; fi
      if ! pgrep -x libvirtd >/dev/null; then libvirtd -d; echo libvirtd >> "$state"; info "started libvirtd"; fi
    fi
    for _ in $(seq 1 120); do
      virsh -c qemu:///system uri >/dev/null 2>&1 && { info "libvirt answers at qemu:///system"; start_watcher; exit 0; }
      sleep 0.5
    done
    die "libvirtd did not answer at qemu:///system within 60 s"
    ;;
  stop)
    [ -f "$state" ] || exit 0
    stop_watcher
    for d in libvirtd virtlogd; do
      if grep -qx "$d" "$state"; then pkill -x "$d" || true; info "stopped $d"; fi
    done
    rm -f "$state"
    ;;
  *) die "usage: $0 start|stop" ;;
esac
