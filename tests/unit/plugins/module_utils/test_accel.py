"""Accelerator detection: the probe payload, the exit-status rules, and real QEMU runs."""

import shutil
import subprocess

import pytest

from ansible_collections.vmguard.hardening.plugins.module_utils.lab import accel

QEMU = accel.find_emulator()
needs_qemu = pytest.mark.skipif(QEMU is None, reason="needs qemu-system-x86_64 (apt-get install qemu-system-x86)")


def run(argv):
    p = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, check=False)
    return p.returncode, p.stdout.decode(), p.stderr.decode()


def test_boot_sector_layout():
    sector = accel.boot_sector()
    assert len(sector) == 512
    assert sector[510:] == b"\x55\xAA"
    # mov al, 0x2a ; out 0xf4, al
    assert sector[:4] == bytes([0xB0, 0x2A, 0xE6, 0xF4])
    assert accel.EXPECTED_STATUS == 85


@pytest.mark.parametrize("rc,stderr,ok,phrase", [
    (85, "", True, "ran under tcg"),
    (124, "", False, "did not finish within 7s"),
    (137, "", False, "did not finish"),
    (-6, "kvm.c:3183: kvm_buf_set_msrs: Assertion failed", False, "exited on signal 6: kvm.c"),
    (134, "boom", False, "exited on signal 6: boom"),
    (1, "", False, "exited 1: no message"),
])
def test_exit_status_rules(rc, stderr, ok, phrase):
    seen = []

    def fake(argv):
        seen.append(argv)
        return rc, "", stderr

    got_ok, secs, detail = accel.run_probe(fake, "/usr/bin/qemu-system-x86_64", "tcg", 7)
    assert got_ok is ok
    assert phrase in detail
    assert seen[0][:4] == ["timeout", "--kill-after=5", "7", "/usr/bin/qemu-system-x86_64"]


def test_kernel_probe_needs_the_panic(tmp_path):
    kernel = tmp_path / "vmlinuz"
    kernel.write_bytes(b"not really")
    # QEMU exits 0 but the console never showed a panic: not a pass.
    ok, secs, detail = accel.run_probe(lambda argv: (0, "", ""), "qemu", "kvm", 5, kernel=str(kernel))
    assert not ok and "before its panic" in detail


def test_missing_kernel_is_an_error(tmp_path):
    with pytest.raises(RuntimeError, match="does not exist"):
        accel.detect(run, emulator="/bin/true", kernel=str(tmp_path / "nope"))


def test_required_kvm_without_device(tmp_path):
    with pytest.raises(RuntimeError, match="KVM was required"):
        accel.detect(run, emulator="/bin/true", kvm_device=str(tmp_path / "kvm"), prefer="kvm")


@needs_qemu
def test_real_boot_sector_under_tcg():
    ok, secs, detail = accel.run_probe(run, QEMU, "tcg", 30)
    assert ok, detail


@needs_qemu
def test_detect_falls_back_to_tcg_without_kvm_device(tmp_path):
    result = accel.detect(run, emulator=QEMU, kvm_device=str(tmp_path / "no-kvm"))
    assert result["accelerator"] == "tcg"
    assert result["domain_type"] == "qemu"
    assert result["kvm_usable"] is False
    assert "does not exist" in result["probes"][0]["detail"]
    assert result["probes"][1]["ok"] is True


def test_find_emulator_candidates(tmp_path):
    assert accel.find_emulator(candidates=(str(tmp_path / "none"), "no-such-qemu-binary")) is None
    assert accel.find_emulator(candidates=("no-such-qemu-binary", "sh")) == shutil.which("sh")


def _key(tmp_path, **over):
    boot = tmp_path / "boot_id"
    if not boot.exists():
        boot.write_text("6b1f0c1e-0000-4000-8000-000000000001\n")
    emu = tmp_path / "qemu"
    if not emu.exists():
        emu.write_bytes(b"x" * 10)
    args = dict(emulator=str(emu), kernel=None, prefer="auto", timeout=20.0, kvm_device=str(tmp_path / "kvm"),
                boot_id_path=str(boot))
    args.update(over)
    return accel.cache_key(**args)


def test_a_kept_decision_is_reused_only_under_the_same_key(tmp_path):
    key = _key(tmp_path)
    result = {"accelerator": "tcg", "domain_type": "qemu", "reason": "kvm: hung"}
    text = accel.to_cache(key, result)
    assert accel.cached(text, key) == result
    assert accel.cached(text, _key(tmp_path, prefer="tcg")) is None
    assert accel.cached(text, _key(tmp_path, timeout=5.0)) is None
    (tmp_path / "kvm").write_text("")  # /dev/kvm appeared
    assert accel.cached(text, _key(tmp_path)) is None


def test_a_new_boot_or_a_new_emulator_runs_the_test_again(tmp_path):
    key = _key(tmp_path)
    text = accel.to_cache(key, {"accelerator": "kvm"})
    (tmp_path / "boot_id").write_text("6b1f0c1e-0000-4000-8000-000000000002\n")
    assert accel.cached(text, _key(tmp_path)) is None
    (tmp_path / "boot_id").write_text("6b1f0c1e-0000-4000-8000-000000000001\n")
    (tmp_path / "qemu").write_bytes(b"y" * 11)  # upgraded
    assert accel.cached(text, _key(tmp_path)) is None


def test_no_boot_id_or_a_damaged_cache_is_never_reused(tmp_path):
    key = _key(tmp_path, boot_id_path=str(tmp_path / "missing"))
    assert key["boot_id"] is None
    assert accel.cached(accel.to_cache(key, {"accelerator": "kvm"}), key) is None
    good = _key(tmp_path)
    for text in ("", "not json", "[]", '{"key": null}', accel.to_cache(good, "tcg")):
        assert accel.cached(text, good) is None
