"""guest_epoch.main() on real files under tmp_path: the guest's epoch file written in one call (directory included),
atomically, idempotent, predicted in check mode, never through a symbolic link; and read back as guest_facts reads it."""

import json
import os
import stat

import pytest

from ansible.module_utils import basic
from ansible.module_utils.common.text.converters import to_bytes

from ansible_collections.vmguard.hardening.plugins.module_utils.evidence import guestscan
from ansible_collections.vmguard.hardening.plugins.modules import guest_epoch


def run_module(monkeypatch, capsys, args, check_mode=False):
    args = dict(args, _ansible_check_mode=check_mode, _ansible_diff=True)
    monkeypatch.setattr(basic, "_ANSIBLE_ARGS", to_bytes(json.dumps({"ANSIBLE_MODULE_ARGS": args})))
    monkeypatch.setattr(basic, "_ANSIBLE_PROFILE", "legacy")
    with pytest.raises(SystemExit) as exit_:
        guest_epoch.main()
    return json.loads(capsys.readouterr().out.strip().splitlines()[-1]), exit_.value.code != 0


def test_one_call_creates_the_directory_and_the_file_then_changes_nothing(monkeypatch, capsys, tmp_path):
    path = tmp_path / "var" / "lib" / "vmguard" / "epoch.json"
    res, failed = run_module(monkeypatch, capsys, dict(epoch=3, path=str(path)))
    assert not failed and res["changed"] is True and res["epoch"] == 3 and res["previous"] is None, res
    assert path.read_text() == '{"epoch": 3}\n' and stat.S_IMODE(path.stat().st_mode) == 0o644
    assert stat.S_IMODE(path.parent.stat().st_mode) & 0o022 == 0
    assert guestscan.epoch(str(path)) == (3, None)  # what the audit reads back
    assert res["diff"]["before"] == "" and res["diff"]["after"] == '{"epoch": 3}\n'
    res, failed = run_module(monkeypatch, capsys, dict(epoch=3, path=str(path)))
    assert not failed and res["changed"] is False and res["previous"] == 3 and "diff" not in res, res


def test_a_new_epoch_replaces_the_old_one_and_names_it(monkeypatch, capsys, tmp_path):
    path = tmp_path / "epoch.json"
    path.write_text('{"epoch": 2}\n')
    res, failed = run_module(monkeypatch, capsys, dict(epoch=5, path=str(path)))
    assert not failed and res["changed"] and res["previous"] == 2 and path.read_text() == '{"epoch": 5}\n'
    assert sorted(os.listdir(str(tmp_path))) == ["epoch.json"]  # no temporary file left


def test_check_mode_predicts_and_writes_nothing(monkeypatch, capsys, tmp_path):
    path = tmp_path / "vmguard" / "epoch.json"
    res, failed = run_module(monkeypatch, capsys, dict(epoch=1, path=str(path)), check_mode=True)
    assert not failed and res["changed"] is True and not (tmp_path / "vmguard").exists(), res


@pytest.mark.parametrize("where", ["file", "directory"])
def test_a_symbolic_link_is_refused_never_followed(monkeypatch, capsys, tmp_path, where):
    target = tmp_path / "elsewhere"
    target.mkdir()
    (target / "epoch.json").write_text("keep\n")
    if where == "file":
        (tmp_path / "vmguard").mkdir()
        os.symlink(str(target / "epoch.json"), str(tmp_path / "vmguard" / "epoch.json"))
    else:
        os.symlink(str(target), str(tmp_path / "vmguard"))
    res, failed = run_module(monkeypatch, capsys, dict(epoch=4, path=str(tmp_path / "vmguard" / "epoch.json")))
    assert failed and not res.get("changed") and "link" in res["msg"], res
    assert (target / "epoch.json").read_text() == "keep\n"


@pytest.mark.parametrize("args, words", [(dict(epoch=-1, path="/x/epoch.json"), "negative"),
                                         (dict(epoch=1, path="relative/epoch.json"), "not absolute")])
def test_bad_input_fails_clearly(monkeypatch, capsys, args, words):
    res, failed = run_module(monkeypatch, capsys, args)
    assert failed and words in res["msg"], res


@pytest.mark.parametrize("text, expected", [(None, None), ('{"epoch": 7}\n', 7), ("not json", None),
                                            ('{"epoch": true}', None), ('[1]', None), ('{"epoch": "3"}', None)])
def test_previous_epoch(text, expected):
    assert guest_epoch.previous_epoch(text) == expected
