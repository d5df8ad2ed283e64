"""service_lockdown.main() with stand-in listeners (lockdown.scan) and a stand-in systemctl (AnsibleModule.run_command
answered in the test): what a failure part way reports. The listener decisions: module_utils/test_lockdown.py."""

import json

import pytest

from ansible.module_utils import basic
from ansible.module_utils.common.text.converters import to_bytes

from ansible_collections.vmguard.hardening.plugins.modules import service_lockdown as sl

APP = dict(proto="tcp", address="0.0.0.0", port=8080, process="python3", pids=[42], units=["app.service"], reasons=[])
DB = dict(proto="tcp", address="0.0.0.0", port=5432, process="postgres", pids=[43], units=["db.service"], reasons=[])


def run_module(monkeypatch, capsys, systemctl, check_mode=False):
    """(result, failed, systemctl calls); ``systemctl(args)`` -> (rc, out, err)."""
    calls = []

    def run_command(self, argv, **kwargs):
        calls.append(list(argv[1:]))
        return systemctl(list(argv[1:]))

    monkeypatch.setattr(sl.AnsibleModule, "get_bin_path", lambda self, name, *a, **kw: "/bin/" + name)
    monkeypatch.setattr(sl.AnsibleModule, "run_command", run_command)
    monkeypatch.setattr(sl.lockdown, "scan", lambda root="/", socket_units=None: [dict(APP), dict(DB)])
    args = dict(allowed_ports=[22, 80], _ansible_check_mode=check_mode)
    monkeypatch.setattr(basic, "_ANSIBLE_ARGS", to_bytes(json.dumps({"ANSIBLE_MODULE_ARGS": args})))
    monkeypatch.setattr(basic, "_ANSIBLE_PROFILE", "legacy")
    with pytest.raises(SystemExit) as exit_:
        sl.main()
    return json.loads(capsys.readouterr().out.strip().splitlines()[-1]), exit_.value.code != 0, calls


def test_a_show_that_fails_after_a_unit_was_locked_reports_changed(monkeypatch, capsys):
    """app.service is disabled, masked and stopped; then systemctl show of db.service fails (a D-Bus timeout):
    the module fails with changed=true (it said changed=false)."""
    def systemctl(args):
        if args[0] == "list-sockets":
            return 0, "", ""
        if args[0] == "show":
            if args[-1] == "db.service" and any(c[0] == "stop" for c in seen):
                return 1, "", "Failed to get properties: Connection timed out"
            return 0, "Id=%s\nActiveState=active\nUnitFileState=enabled\nFragmentPath=/lib/systemd/system/%s\n" % (
                args[-1], args[-1]), ""
        seen.append(args)
        return 0, "", ""

    seen = []
    res, failed, calls = run_module(monkeypatch, capsys, systemctl)
    assert ["stop", "--quiet", "--", "app.service"] in calls  # the first unit was locked
    assert failed and res["changed"] is True and "db.service" in res["msg"]


def test_check_mode_runs_no_state_changing_command(monkeypatch, capsys):
    def systemctl(args):
        assert args[0] in ("list-sockets", "show"), args
        return 0, "ActiveState=active\nUnitFileState=enabled\n", ""

    res, failed, calls = run_module(monkeypatch, capsys, systemctl, check_mode=True)
    assert not failed and res["changed"] is True and [u["unit"] for u in res["units"]] == ["app.service", "db.service"]
