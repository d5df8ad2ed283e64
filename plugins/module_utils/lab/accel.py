# -*- coding: utf-8 -*-
# Copyright: (c) 2026, vmguard.hardening developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Accelerator detection by running a guest, not by looking at /dev/kvm.

On nested set-ups /dev/kvm exists and opens, yet guests hang right after the firmware. The only
honest test is to boot something:

* with a kernel (the lab passes the golden image's): boot it with no root file system and
  ``panic=-1``; it must reach its "Kernel panic" and QEMU must exit on the reboot (-no-reboot).
  This is the test that matters: on the machines this was built on, a 16-bit boot sector runs
  fine under KVM while a real kernel aborts (``failed to set MSR``) or hangs.
* without one: a 512-byte boot sector that writes a byte to QEMU's isa-debug-exit port; QEMU
  then exits with status (byte << 1) | 1. Proves QEMU and the firmware run, nothing more.

If the test passes in time under KVM, KVM is used; otherwise the lab falls back to TCG (libvirt
domain type 'qemu'). Standard library only.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json
import os
import shutil
import tempfile
import time

EXIT_BYTE = 0x2A
EXPECTED_STATUS = (EXIT_BYTE << 1) | 1  # 85
DEBUG_EXIT_PORT = 0xF4


def boot_sector():
    """mov al, 0x2a; out 0xf4, al; hlt; jmp $-1 -- padded, with the 0x55AA signature."""
    code = bytes([0xB0, EXIT_BYTE, 0xE6, DEBUG_EXIT_PORT, 0xF4, 0xEB, 0xFD])
    return code + b"\x00" * (510 - len(code)) + b"\x55\xAA"


def find_emulator(candidates=("qemu-system-x86_64", "/usr/libexec/qemu-kvm", "/usr/bin/qemu-kvm")):
    for c in candidates:
        if os.path.isabs(c):
            if os.access(c, os.X_OK):
                return c
            continue
        p = shutil.which(c)
        if p:
            return p
    return None


TIMEOUT_STATUS = 124  # coreutils timeout(1)


def run_probe(run, emulator, accel, timeout, kernel=None):
    """Boot the probe (a kernel, or the boot sector) under ``accel``. Returns (ok, seconds, detail).

    ``run(argv) -> (rc, stdout, stderr)`` executes a command (the module passes run_command);
    the time limit is enforced by coreutils timeout(1), which exits 124 when it fires.
    """
    fd, path = tempfile.mkstemp(prefix="vmguard-accel-", suffix=".img")
    try:
        with os.fdopen(fd, "wb") as f:
            if not kernel:
                f.write(boot_sector())
        base = ["timeout", "--kill-after=5", "%d" % max(1, int(timeout)), emulator, "-machine", "pc,accel=%s" % accel, "-nodefaults", "-no-user-config",
                "-display", "none"]
        if kernel:
            cmd = base + ["-cpu", "host" if accel == "kvm" else "max", "-m", "256",
                          "-kernel", kernel, "-append", "console=ttyS0 panic=-1 quiet",
                          "-serial", "file:%s" % path, "-no-reboot"]
            expected = 0
        else:
            cmd = base + ["-m", "16", "-drive", "file=%s,format=raw,if=ide" % path,
                          "-device", "isa-debug-exit,iobase=0x%x,iosize=0x04" % DEBUG_EXIT_PORT]
            expected = EXPECTED_STATUS
        what = "kernel" if kernel else "boot sector"
        start = time.monotonic()
        rc, dummy, stderr = run(cmd)
        elapsed = time.monotonic() - start
        if rc in (TIMEOUT_STATUS, 128 + 9):
            return False, elapsed, (
                "a test %s under %s did not finish within %ss (guests hang here, as in nested "
                "virtualization without working KVM)" % (what, accel, int(timeout)))
        if kernel and rc == expected:
            with open(path, "rb") as f:
                if b"Kernel panic" not in f.read():
                    return False, elapsed, "the test kernel under %s stopped before its panic" % accel
        if rc == expected:
            return True, elapsed, "a test %s ran under %s" % (what, accel)
        if rc < 0 or rc > 128:
            rc = "on signal %d" % (-rc if rc < 0 else rc - 128)
        err = (stderr or "").strip().splitlines()
        return False, elapsed, "QEMU with accel=%s exited %s: %s" % (
            accel, rc, err[-1] if err else "no message")
    finally:
        os.unlink(path)


def detect(run, emulator=None, timeout=20.0, kvm_device="/dev/kvm", prefer="auto", kernel=None):
    """Decide between KVM and TCG. Returns a dict (see the accel_probe module's RETURN).

    ``run`` executes a command list and returns (rc, stdout, stderr).
    """
    emulator = emulator or find_emulator()
    if not emulator:
        raise RuntimeError("no QEMU system emulator found (install qemu-system-x86)")
    result = dict(emulator=emulator, kvm_device_present=os.path.exists(kvm_device),
                  kvm_usable=False, probes=[])
    result["probe"] = "kernel" if kernel else "boot-sector"
    if kernel and not os.path.isfile(kernel):
        raise RuntimeError("test kernel %s does not exist" % kernel)
    if prefer in ("auto", "kvm"):
        if not result["kvm_device_present"]:
            result["probes"].append(dict(accel="kvm", ok=False, seconds=0.0,
                                         detail="%s does not exist" % kvm_device))
        elif not os.access(kvm_device, os.R_OK | os.W_OK):
            result["probes"].append(dict(accel="kvm", ok=False, seconds=0.0,
                                         detail="%s is not readable and writable" % kvm_device))
        else:
            ok, secs, detail = run_probe(run, emulator, "kvm", timeout, kernel)
            result["probes"].append(dict(accel="kvm", ok=ok, seconds=round(secs, 3), detail=detail))
            result["kvm_usable"] = ok
    if result["kvm_usable"]:
        result.update(accelerator="kvm", domain_type="kvm")
    else:
        if prefer == "kvm":
            raise RuntimeError("KVM was required but does not run guests here: %s"
                               % result["probes"][-1]["detail"])
        ok, secs, detail = run_probe(run, emulator, "tcg", timeout * 4, kernel)
        result["probes"].append(dict(accel="tcg", ok=ok, seconds=round(secs, 3), detail=detail))
        if not ok:
            raise RuntimeError("QEMU cannot run a test guest at all: %s" % detail)
        result.update(accelerator="tcg", domain_type="qemu")
    result["reason"] = "; ".join(p["detail"] for p in result["probes"])
    return result


# --- the decision kept for this boot --------------------------------------------------------------

def _stat_key(path):
    if not path:
        return None
    try:
        st = os.stat(path)
    except OSError:
        return None
    return [path, st.st_size, int(st.st_mtime)]


def cache_key(emulator, kernel, prefer, timeout, kvm_device="/dev/kvm", boot_id_path="/proc/sys/kernel/random/boot_id"):
    """What a kept decision is valid for: this boot of the host (a reboot, a kernel module change of
    KVM, nested virtualisation toggled by the outer host all come with a new boot), the same emulator
    and test kernel (path, size, mtime), the same preference and timeout, and /dev/kvm as present or
    absent as then."""
    try:
        with open(boot_id_path) as f:
            boot_id = f.read().strip()
    except (OSError, IOError):
        boot_id = None
    return {"boot_id": boot_id, "emulator": _stat_key(emulator), "kernel": _stat_key(kernel), "prefer": prefer,
            "timeout": timeout, "kvm_device_present": os.path.exists(kvm_device)}


def cached(text, key):
    """The decision kept in ``text`` (the cache file's JSON) when it was made under ``key``, else None.
    No boot id, no reuse."""
    try:
        kept = json.loads(text)
    except ValueError:
        return None
    if not isinstance(kept, dict) or not key.get("boot_id") or kept.get("key") != key or not isinstance(kept.get("result"), dict):
        return None
    return kept["result"]


def to_cache(key, result):
    return json.dumps({"key": key, "result": result}, sort_keys=True)
