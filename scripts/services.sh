#!/usr/bin/env bash
# Starts libvirt's daemons when they are not running. Works with and without systemd as PID 1.
#   scripts/services.sh start   start virtlogd and libvirtd (records what it started)
#   scripts/services.sh stop    stop only what 'start' started
set -euo pipefail
. "$(dirname "$0")/common.sh"
state="$VMGUARD_CACHE/services-started"
mkdir -p "$VMGUARD_CACHE"

have_systemd() { [ "$(ps -p 1 -o comm= 2>/dev/null)" = systemd ]; }

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
      virsh -c qemu:///system uri >/dev/null 2>&1 && { info "libvirt answers at qemu:///system"; exit 0; }
      sleep 0.5
    done
    die "libvirtd did not answer at qemu:///system within 60 s"
    ;;
  stop)
    [ -f "$state" ] || exit 0
    for d in libvirtd virtlogd; do
      if grep -qx "$d" "$state"; then pkill -x "$d" || true; info "stopped $d"; fi
    done
    rm -f "$state"
    ;;
  *) die "usage: $0 start|stop" ;;
esac
