"""identity_reseal.main() on real trees under tmp_path: what it reports (changed, resealed, failures) and which
commands it runs (AnsibleModule.run_command recorded; ssh-keygen is the real one unless a test replaces it)."""

import json
import os
import subprocess

import pytest

from ansible.module_utils import basic
from ansible.module_utils.common.text.converters import to_bytes

from ansible_collections.vmguard.hardening.plugins.modules import identity_reseal


def run_module(monkeypatch, capsys, args, check_mode=False, keygen=None):
    """(result, failed, the argv of every command run). ``keygen(argv)`` -> (rc, out, err) replaces ssh-keygen."""
    calls = []

    def run_command(self, argv, **kwargs):
        calls.append(list(argv))
        if keygen is not None and os.path.basename(argv[0]) == "ssh-keygen":
            return keygen(argv)
        p = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, universal_newlines=True, check=False)
        return p.returncode, p.stdout, p.stderr

    monkeypatch.setattr(identity_reseal.AnsibleModule, "run_command", run_command)
    args = dict(args, _ansible_check_mode=check_mode)
    monkeypatch.setattr(basic, "_ANSIBLE_ARGS", to_bytes(json.dumps({"ANSIBLE_MODULE_ARGS": args})))
    monkeypatch.setattr(basic, "_ANSIBLE_PROFILE", "legacy")
    with pytest.raises(SystemExit) as exit_:
        identity_reseal.main()
    return json.loads(capsys.readouterr().out.strip().splitlines()[-1]), exit_.value.code != 0, calls


def write(root, rel, text, mode=0o644):
    path = os.path.join(str(root), rel)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        f.write(text)
    os.chmod(path, mode)


@pytest.mark.parametrize("check_mode", [False, True])
def test_forced_host_keys_on_a_guest_without_keys_change_nothing(monkeypatch, capsys, tmp_path, check_mode):
    """force: [ssh_host_keys] with no host key (no SSH server) reported changed every run and, on '/', ran sshd -t."""
    write(tmp_path, "etc/machine-id", "1" * 32 + "\n", 0o444)
    for _run in range(2):
        res, failed, calls = run_module(monkeypatch, capsys, {"root": str(tmp_path), "force": ["ssh_host_keys"]},
                                        check_mode=check_mode)
        assert not failed and res["changed"] is False and res["resealed"] == {} and res["retired_fingerprints"] == []
        assert calls == []


def keypair(root, name, ktype):
    path = os.path.join(str(root), "etc/ssh", name)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    subprocess.run(["ssh-keygen", "-q", "-t", ktype, "-N", "", "-C", "", "-f", path], check=True)
    with open(path + ".pub") as f:
        return f.read().split()[1]


def test_a_rotation_that_stops_part_way_keeps_the_rotated_keys_and_no_old_copy(monkeypatch, capsys, tmp_path):
    """ssh-keygen fails for the 2nd key: before, changed was false and the rotated key's old (shared) pair stayed
    in *.vmguard-old. Now: failed, changed, the rotated key reported and retired, no old copy, the other key whole."""
    from ansible_collections.vmguard.hardening.plugins.module_utils.evidence import guestscan
    write(tmp_path, "etc/machine-id", "1" * 32 + "\n", 0o444)
    keypair(tmp_path, "ssh_host_ecdsa_key", "ecdsa")
    ed_blob = keypair(tmp_path, "ssh_host_ed25519_key", "ed25519")
    before = dict((k["file"], k["fingerprint"]) for k in guestscan.ssh_host_keys(str(tmp_path)))

    def keygen(argv):
        if "ed25519" in argv:
            return 1, "", "simulated failure"
        p = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, universal_newlines=True, check=False)
        return p.returncode, p.stdout, p.stderr

    res, failed, _calls = run_module(monkeypatch, capsys, {"root": str(tmp_path), "ssh_fingerprints": sorted(before.values()),
                                                           "force": ["machine_id"]}, keygen=keygen)
    assert failed and res["changed"] is True
    assert "simulated failure" in res["msg"] and "not rotated, still the old key: /etc/ssh/ssh_host_ed25519_key.pub" in res["msg"]
    ecdsa = "/etc/ssh/ssh_host_ecdsa_key.pub"
    assert [r["file"] for r in res["resealed"]["ssh_host_keys"]] == [ecdsa]
    assert res["retired_fingerprints"] == [before[ecdsa]]
    after = dict((k["file"], k["fingerprint"]) for k in guestscan.ssh_host_keys(str(tmp_path)))
    assert after[ecdsa] != before[ecdsa] and after[ecdsa] == res["resealed"]["ssh_host_keys"][0]["new_fingerprint"]
    assert sorted(os.listdir(str(tmp_path / "etc/ssh"))) == [
        "ssh_host_ecdsa_key", "ssh_host_ecdsa_key.pub", "ssh_host_ed25519_key", "ssh_host_ed25519_key.pub"]
    with open(str(tmp_path / "etc/ssh/ssh_host_ed25519_key.pub")) as f:
        assert f.read().split()[1] == ed_blob


def test_a_rotation_failing_on_its_first_key_changes_and_retires_nothing(monkeypatch, capsys, tmp_path):
    keypair(tmp_path, "ssh_host_ed25519_key", "ed25519")
    res, failed, _calls = run_module(monkeypatch, capsys, {"root": str(tmp_path), "force": ["ssh_host_keys"]},
                                     keygen=lambda argv: (1, "", "simulated failure"))
    assert failed and res["changed"] is False and res["retired_fingerprints"] == [] and res["resealed"] == {}
    assert sorted(os.listdir(str(tmp_path / "etc/ssh"))) == ["ssh_host_ed25519_key", "ssh_host_ed25519_key.pub"]


def test_a_machine_id_resealed_on_the_running_system_needs_a_reboot_and_says_so(monkeypatch, capsys, tmp_path):
    """PID 1, journald and D-Bus read the machine-id at boot: on '/' a reseal takes effect at the next start, so the
    result says reboot_required (and the module warns); an image tree, or a reseal without the machine-id, does not."""
    assert identity_reseal.reboot_required("/", {"machine_id": "x"}) is True
    assert identity_reseal.reboot_required("/", {"random_seed": "x"}) is False
    assert identity_reseal.reboot_required(str(tmp_path), {"machine_id": "x"}) is False
    link = tmp_path / "slash"
    link.symlink_to("/")
    assert identity_reseal.reboot_required(str(link), {"machine_id": "x"}) is True
    write(tmp_path, "etc/machine-id", "1" * 32 + "\n", 0o444)
    res, failed, _calls = run_module(monkeypatch, capsys, {"root": str(tmp_path), "force": ["machine_id"]})
    assert not failed and res["changed"] is True and "machine_id" in res["resealed"] and res["reboot_required"] is False
