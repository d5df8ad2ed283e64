#!/usr/bin/env bash
# Installs what the project needs on a Debian 12 machine (root): apt packages, a Python >= 3.12
# virtualenv with the pinned toolchain, and the collection's symlink tree. Safe to run again:
# every step checks first and only does what is missing.
set -euo pipefail
. "$(dirname "$0")/common.sh"

APT_PACKAGES=(
  libvirt-daemon-system libvirt-daemon-driver-qemu libvirt-clients qemu-system-x86 qemu-utils
  mmdebstrap debootstrap e2fsprogs openssh-client iproute2 procps nftables iptables ebtables
  dnsmasq-base libvirt-dev pkg-config gcc make git rsync ca-certificates dpkg-dev augeas-tools
  chromium golang-go golang-github-vmware-govmomi-dev
  systemd  # not PID 1 here: its systemctl --root is the reference of the unit-file tests (test_unitfiles.py)
)

step "1/4 Debian packages"
[ "$(id -u)" = 0 ] || die "run as root: the lab needs libvirt's system instance and debootstrap"
command -v apt-get >/dev/null || die "this set-up needs Debian (apt-get); see README for the packages"
missing=()
for p in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  info "installing ${#missing[@]} packages: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q
  apt-get install -y -q --no-install-recommends "${missing[@]}"
else
  info "all ${#APT_PACKAGES[@]} packages present"
fi

step "2/4 Python >= 3.12 for the controller"
works() { "$1" -c 'import sys, venv, ensurepip; sys.exit(0 if sys.version_info >= (3, 12) else 1)' >/dev/null 2>&1; }
find_python() {
  local c d
  if [ -n "${VMGUARD_PYTHON:-}" ]; then works "$VMGUARD_PYTHON" && { echo "$VMGUARD_PYTHON"; return; }; fi
  for c in python3.13 python3.12; do
    c=$(command -v "$c" 2>/dev/null) || continue
    works "$c" && { echo "$c"; return; }
  done
  # pyenv shims for versions that are not selected do not work: use the interpreters directly.
  for d in $(find "${PYENV_ROOT:-$HOME/.pyenv}/versions" -mindepth 1 -maxdepth 1 -name '3.1[2-9]*' 2>/dev/null | sort -rV); do
    for c in "$d"/bin/python3.1[2-9]; do
      [ -x "$c" ] && works "$c" && { echo "$c"; return; }
    done
  done
  for c in python3 /usr/bin/python3; do
    c=$(command -v "$c" 2>/dev/null) || continue
    works "$c" && { echo "$c"; return; }
  done
  return 1
}
PY=$(find_python) || die "no Python >= 3.12 with venv found (ansible-core 2.21 needs it). Install one,
  e.g. 'pyenv install 3.13' or Debian's python3.12 from backports, or set VMGUARD_PYTHON=/path/to/python3.12"
info "using $PY ($("$PY" -V 2>&1))"

step "3/4 Toolchain virtualenv ($VMGUARD_VENV)"
stamp="$VMGUARD_VENV/.vmguard-requirements.sha256"
want=$( (cat "$VMGUARD_ROOT/requirements-dev.txt"; "$PY" -V 2>&1) | sha256sum | cut -d' ' -f1)
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ] && [ -x "$VMGUARD_VENV/bin/ansible-playbook" ]; then
  info "up to date"
else
  rm -rf "$VMGUARD_VENV"
  "$PY" -m venv "$VMGUARD_VENV"
  "$VMGUARD_VENV/bin/python" -m pip install -q --upgrade pip
  info "pip install -r requirements-dev.txt (about a minute; ansible bundle, molecule, libvirt-python build)"
  "$VMGUARD_VENV/bin/python" -m pip install --progress-bar off -q -r "$VMGUARD_ROOT/requirements-dev.txt"
  echo "$want" > "$stamp"
  info "installed: $("$VMGUARD_VENV/bin/ansible" --version | head -n 1)"
fi
# The report tests' tools, on top of the toolchain: Playwright drives Debian's chromium (no browser
# download), compliance-trestle validates OSCAL, ansible-builder and ansible-runner check the AWX path.
REPORT_PIP=(playwright==1.65.2 compliance-trestle==5.2.0 ansible-builder==3.2.0 ansible-runner==2.4.3)
rstamp="$VMGUARD_VENV/.vmguard-report-tools"
if [ "$(cat "$rstamp" 2>/dev/null)" != "${REPORT_PIP[*]}" ]; then
  info "pip install ${REPORT_PIP[*]}"
  "$VMGUARD_VENV/bin/python" -m pip install --progress-bar off -q "${REPORT_PIP[@]}"
  echo "${REPORT_PIP[*]}" > "$rstamp"
fi

step "4/4 Collection path"
mkdir -p "$VMGUARD_COLLECTIONS/ansible_collections/vmguard"
ln -sfn "$VMGUARD_ROOT" "$VMGUARD_COLLECTIONS/ansible_collections/vmguard/hardening"
info "vmguard.hardening -> $VMGUARD_ROOT"
