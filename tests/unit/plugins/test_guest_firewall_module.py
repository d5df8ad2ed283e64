"""guest_firewall.main() with a stand-in nft (AnsibleModule.run_command answered in the test) and a real state
directory under tmp_path: what a failure after the ruleset was applied reports. The whole flow with the real nft
is in tests/integration/test_guest_firewall.py."""

import json
import os
import stat

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
    if "boot_unit" not in args:  # never the host's own /etc/systemd/system
        unit = os.path.join(os.path.dirname(args.get("path") or args["state_dir"]), "system", "vmguard-firewall.service")
        args = dict(args, boot_unit=unit)
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


def _unit_args(tmp_path, **kw):
    args = dict(management_ports=[22], service_ports=[80], confirm_timeout=0, path=str(tmp_path / "firewall.nft"),
                state_dir=str(tmp_path / "state"), boot_unit=str(tmp_path / "system" / "vmguard-firewall.service"))
    args.update(kw)
    return args


def test_one_call_installs_and_enables_the_boot_unit_then_changes_nothing(monkeypatch, capsys, tmp_path):
    """The unit that loads the persisted ruleset at boot is written (0644) and enabled (the link systemctl enable
    makes for WantedBy=sysinit.target) by the module itself: the role needs no copy and no systemd task (two guest
    Python runs less per apply under TCG). A second run finds both in place."""
    nft = FakeNft()
    args = _unit_args(tmp_path)
    res, failed = run_module(monkeypatch, capsys, nft, args)
    unit = tmp_path / "system" / "vmguard-firewall.service"
    link = tmp_path / "system" / "sysinit.target.wants" / "vmguard-firewall.service"
    expected = dict(path=str(unit), written=True, enabled=True)
    assert not failed and res["changed"] is True and res["boot_unit"] == expected, res
    text = unit.read_text()
    assert "ExecStart=/usr/sbin/nft -f %s\n" % args["path"] in text and "ConditionPathExists=%s\n" % args["path"] in text
    assert "ReloadPropagatedFrom=nftables.service" in text and "WantedBy=sysinit.target" in text
    assert stat.S_IMODE(unit.stat().st_mode) == 0o644 and os.readlink(str(link)) == str(unit)
    res, failed = run_module(monkeypatch, capsys, nft, args)
    assert not failed and res["changed"] is False and res["boot_unit"]["written"] is False, res
    assert res["boot_unit"]["enabled"] is False


def test_a_boot_unit_edited_or_disabled_is_put_back_even_with_the_ruleset_in_place(monkeypatch, capsys, tmp_path):
    nft = FakeNft()
    args = _unit_args(tmp_path)
    run_module(monkeypatch, capsys, nft, args)
    unit = tmp_path / "system" / "vmguard-firewall.service"
    unit.write_text(unit.read_text().replace("ReloadPropagatedFrom=nftables.service\n", ""))
    os.unlink(str(tmp_path / "system" / "sysinit.target.wants" / "vmguard-firewall.service"))
    res, failed = run_module(monkeypatch, capsys, nft, args)
    assert not failed and res["reason"] == "in place" and res["changed"] is True, res
    assert res["boot_unit"]["written"] and res["boot_unit"]["enabled"]
    assert "ReloadPropagatedFrom=nftables.service" in unit.read_text()
    assert [d["before_header"] for d in res["diff"]] == [str(unit)]


def test_check_mode_predicts_the_boot_unit_and_writes_nothing(monkeypatch, capsys, tmp_path):
    nft = FakeNft()
    res, failed = run_module(monkeypatch, capsys, nft, _unit_args(tmp_path), check_mode=True)
    assert not failed and res["changed"] is True and res["boot_unit"]["written"] and res["boot_unit"]["enabled"], res
    assert not (tmp_path / "system").exists()


def test_a_boot_unit_that_is_a_link_is_refused_never_followed(monkeypatch, capsys, tmp_path):
    nft = FakeNft()
    (tmp_path / "system").mkdir()
    target = tmp_path / "elsewhere"
    target.write_text("keep\n")
    os.symlink(str(target), str(tmp_path / "system" / "vmguard-firewall.service"))
    res, failed = run_module(monkeypatch, capsys, nft, _unit_args(tmp_path))
    assert failed and res["changed"] is True and "vmguard-firewall.service" in res["msg"], res  # the ruleset was applied
    assert target.read_text() == "keep\n"


def test_an_empty_boot_unit_leaves_boot_loading_alone(monkeypatch, capsys, tmp_path):
    nft = FakeNft()
    res, failed = run_module(monkeypatch, capsys, nft, _unit_args(tmp_path, boot_unit=""))
    assert not failed and res["boot_unit"] == dict(path="", written=False, enabled=False)
    assert not (tmp_path / "system").exists()


@pytest.mark.parametrize("bad", ["relative/vmguard-firewall.service", "/etc/systemd/system/vmguard-firewall.timer"])
def test_a_boot_unit_that_is_no_service_file_path_fails_clearly(monkeypatch, capsys, tmp_path, bad):
    nft = FakeNft()
    res, failed = run_module(monkeypatch, capsys, nft, _unit_args(tmp_path, boot_unit=bad))
    assert failed and "boot_unit" in res["msg"] and ".service" in res["msg"], res


def test_a_stale_pending_apply_reverted_before_an_in_place_finding_is_a_change(monkeypatch, capsys, tmp_path):
    """A pending apply whose reverter is gone is reverted (the saved table loaded again, the pending apply forgotten)
    before the run looks at the ruleset; when the ruleset is then found in place the run still changed the guest:
    it said changed=false."""
    nft = FakeNft()
    args = dict(management_ports=[22], confirm_timeout=0, path=str(tmp_path / "firewall.nft"),
                state_dir=str(tmp_path / "s"))
    res, failed = run_module(monkeypatch, capsys, nft, args)
    assert not failed and res["changed"] is True
    state = tmp_path / "s"
    (state / "revert.nft").write_text("table inet vmguard {\n}\n")
    (state / "pending.json").write_text(json.dumps({"token": "t1", "pid": 2 ** 22 + 7, "pid_start": 1,
                                                    "applied_at": 1, "deadline": 2, "source_sha256": "x"}))
    os.chmod(str(state / "pending.json"), 0o600)
    os.chmod(str(state / "revert.nft"), 0o600)
    reverted = []  # fwconfirm runs nft itself (no AnsibleModule in the reverter): answered here, never this host's nft
    monkeypatch.setattr(guest_firewall.fwconfirm, "run", lambda argv: (reverted.append(argv[1:]), (0, ""))[1])
    warned = []  # as the module warns (Ansible's warning list is process-wide: read at the source)
    monkeypatch.setattr(guest_firewall.AnsibleModule, "warn", lambda self, text: warned.append(text))
    res, failed = run_module(monkeypatch, capsys, nft, args)
    assert not failed and res["reason"] == "in place" and res["changed"] is True, res
    assert reverted == [["-f", str(state / "revert.nft")]] and not (state / "pending.json").exists()
    assert any("had lost its revert process and was reverted now" in w for w in warned), warned
