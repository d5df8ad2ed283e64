"""guest_firewall.main() with a stand-in nft (AnsibleModule.run_command answered in the test) and a real state
directory under tmp_path: what a failure after the ruleset was applied reports. The whole flow with the real nft
is in tests/integration/test_guest_firewall.py."""

import json

import pytest

from ansible.module_utils import basic
from ansible.module_utils.common.text.converters import to_bytes

from ansible_collections.vmguard.hardening.plugins.modules import guest_firewall

TABLE_JSON = json.dumps({"nftables": [{"table": {"family": "inet", "name": "vmguard", "handle": 1}}]})


class FakeNft(object):
    """nft as the module calls it: -c always accepts, -f loads table inet vmguard (listed from then on)."""

    def __init__(self, list_fails_after_load=False):
        self.loaded = False
        self.list_fails_after_load = list_fails_after_load
        self.calls = []

    def __call__(self, argv, **kwargs):
        args = list(argv[1:])
        self.calls.append(args)
        if args[:1] == ["-c"]:
            return 0, "", ""
        if args[:1] == ["-f"]:
            self.loaded = True
            return 0, "", ""
        if args == ["list", "table", "inet", "vmguard"] and self.loaded and self.list_fails_after_load:
            return 1, "", "Error: Could not process rule: Cannot allocate memory"
        if args == ["list", "table", "inet", "vmguard"]:
            return (0, "table inet vmguard {\n}\n", "") if self.loaded else (1, "", "Error: No such file or directory")
        if args == ["-j", "list", "table", "inet", "vmguard"]:
            return 0, TABLE_JSON, ""
        if args == ["-j", "list", "ruleset"]:
            return 0, TABLE_JSON if self.loaded else "", ""
        raise AssertionError("unexpected nft call %r" % args)


def run_module(monkeypatch, capsys, nft, args, check_mode=False):
    monkeypatch.setattr(guest_firewall.AnsibleModule, "get_bin_path", lambda self, name, *a, **kw: "/usr/sbin/" + name)
    monkeypatch.setattr(guest_firewall.AnsibleModule, "run_command", lambda self, argv, **kw: nft(argv, **kw))
    args = dict(args, _ansible_check_mode=check_mode)
    monkeypatch.setattr(basic, "_ANSIBLE_ARGS", to_bytes(json.dumps({"ANSIBLE_MODULE_ARGS": args})))
    monkeypatch.setattr(basic, "_ANSIBLE_PROFILE", "legacy")
    with pytest.raises(SystemExit) as exit_:
        guest_firewall.main()
    return json.loads(capsys.readouterr().out.strip().splitlines()[-1]), exit_.value.code != 0


def test_a_failure_after_the_ruleset_was_applied_reports_changed(monkeypatch, capsys, tmp_path):
    """nft -f loads the table, then nft cannot list it. The live ruleset did change: the failure says
    changed=true (it said changed=false, so a handler or a report took the guest for untouched)."""
    nft = FakeNft(list_fails_after_load=True)
    res, failed = run_module(monkeypatch, capsys, nft, dict(
        management_ports=[22], service_ports=[80], confirm_timeout=0, path=str(tmp_path / "firewall.nft"),
        state_dir=str(tmp_path / "state")))
    assert nft.loaded and failed and res["changed"] is True, res
    assert "Cannot allocate memory" in res["msg"]


def test_a_failure_before_anything_was_applied_is_not_changed(monkeypatch, capsys, tmp_path):
    nft = FakeNft()
    (tmp_path / "state").mkdir(mode=0o700)
    (tmp_path / "state" / "pending.json").write_text("[not an object]")
    res, failed = run_module(monkeypatch, capsys, nft, dict(
        management_ports=[22], confirm_timeout=0, path=str(tmp_path / "firewall.nft"),
        state_dir=str(tmp_path / "state")))
    assert failed and not nft.loaded and res["changed"] is False and "pending.json" in res["msg"]


def test_apply_then_rerun_is_in_place(monkeypatch, capsys, tmp_path):
    nft = FakeNft()
    args = dict(management_ports=[22], confirm_timeout=0, path=str(tmp_path / "firewall.nft"),
                state_dir=str(tmp_path / "s"))
    res, failed = run_module(monkeypatch, capsys, nft, args)
    assert not failed and res["changed"] is True and (tmp_path / "firewall.nft").exists()
    res, failed = run_module(monkeypatch, capsys, nft, args)
    assert not failed and res["changed"] is False and res["reason"] == "in place"
