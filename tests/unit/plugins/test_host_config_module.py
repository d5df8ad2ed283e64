"""The host_config module (plugins/modules/host_config.py): what it registers as no_log values, what its output
holds of a secret and what check mode predicts of a daemon restart (the file edits themselves:
module_utils/test_hostconf.py; against augtool and a real libvirt: tests/integration/test_host_config.py)."""

import json

import pytest

from ansible.module_utils import basic
from ansible.module_utils.common.text.converters import to_bytes

from ansible_collections.vmguard.hardening.plugins.modules import host_config


class Module(object):
    def __init__(self, **params):
        self.params = dict(dict(qemu_conf={}, daemon_conf={}), **params)
        self.no_log_values = set()


def test_secret_values_of_the_conf_options_become_no_log_values():
    """qemu_conf/daemon_conf are dicts (not no_log as a whole): a secret key's value is registered, so Ansible
    scrubs it from the result and from the echoed module arguments; other values and empty secrets are not."""
    m = Module(qemu_conf={"vnc_password": "S3cretVNC", "vnc_listen": "127.0.0.1", "spice_password": ""},
               daemon_conf={"tls_secret": ["a1", "b2"], "listen_tcp": 0})
    host_config.hide_secrets(m)
    assert m.no_log_values == {"S3cretVNC", "a1", "b2"}


def run_main(monkeypatch, capsys, args, check_mode=False):
    """(result, failed, commands run) of host_config.main()."""
    calls = []

    def run_command(self, argv, **kwargs):
        calls.append(list(argv))
        return 0, "", ""

    monkeypatch.setattr(host_config.AnsibleModule, "run_command", run_command)
    monkeypatch.setattr(basic, "_ANSIBLE_ARGS", to_bytes(json.dumps({"ANSIBLE_MODULE_ARGS": dict(
        args, _ansible_check_mode=check_mode)})))
    monkeypatch.setattr(basic, "_ANSIBLE_PROFILE", "legacy")
    with pytest.raises(SystemExit) as exit_:
        host_config.main()
    return json.loads(capsys.readouterr().out.strip().splitlines()[-1]), exit_.value.code != 0, calls


def test_check_mode_predicts_the_restart_of_a_stale_daemon(monkeypatch, capsys, tmp_path):
    """libvirtd runs since before qemu.conf last changed (an earlier run edited it, the restart failed or was
    skipped): a real run restarts it and says changed; check mode must predict changed=true too (it said false)."""
    real_isdir = host_config.os.path.isdir
    monkeypatch.setattr(host_config.os.path, "isdir", lambda p: True if p == "/run/systemd/system" else real_isdir(p))
    monkeypatch.setattr(host_config.hostconf, "running_daemons", lambda proc="/proc": {"libvirtd": 1.0})
    (tmp_path / "qemu.conf").write_text('user = "libvirt-qemu"\n')
    args = dict(conf_dir=str(tmp_path), daemon_confs=[])
    res, failed, calls = run_main(monkeypatch, capsys, args, check_mode=True)
    assert not failed and calls == [] and res["changed"] is True and res["restart_pending"] == ["libvirtd"]
    res, failed, calls = run_main(monkeypatch, capsys, args)
    assert not failed and calls == [["systemctl", "try-restart", "libvirtd.service"]]
    assert res["changed"] is True and res["restarted"] == ["libvirtd"]


def test_check_mode_without_a_restart_to_make_is_no_change(monkeypatch, capsys, tmp_path):
    monkeypatch.setattr(host_config.hostconf, "running_daemons", lambda proc="/proc": {"libvirtd": 1.0})
    (tmp_path / "qemu.conf").write_text('user = "libvirt-qemu"\n')
    res, failed, calls = run_main(monkeypatch, capsys, dict(conf_dir=str(tmp_path), daemon_confs=[], restart=False),
                                  check_mode=True)
    assert not failed and calls == [] and res["changed"] is False and res["restart_pending"] == ["libvirtd"]


def test_a_secret_given_in_qemu_conf_never_appears_in_the_output(monkeypatch, capsys, tmp_path):
    """A vnc_password qemu.conf cannot hold (a double quote): the failure names the key, and the module's whole
    JSON output holds neither the new nor the old password (the message quoted the new one)."""
    (tmp_path / "qemu.conf").write_text('vnc_password = "OldS3cret-pw"\n')
    monkeypatch.setattr(host_config.AnsibleModule, "get_bin_path", lambda self, name, *a, **kw: "/usr/bin/" + name)
    args = dict(conf_dir=str(tmp_path), daemon_confs=[], qemu_conf={"vnc_password": 'New"S3cret-pw'})
    res, failed, calls = run_main(monkeypatch, capsys, args)
    assert failed and "vnc_password" in res["msg"] and calls == []
    assert "S3cret" not in json.dumps(res)
