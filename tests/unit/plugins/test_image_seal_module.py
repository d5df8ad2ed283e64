"""image_seal.main() on a real tree under tmp_path: what it reports when a seal stops part way (the tree checks
and changes themselves: module_utils/test_image_seal.py)."""

import json
import os
import shutil

import pytest

from ansible.module_utils import basic
from ansible.module_utils.common.text.converters import to_bytes

from ansible_collections.vmguard.hardening.plugins.module_utils.remediation import image_seal as seal
from ansible_collections.vmguard.hardening.plugins.modules import image_seal


def run_module(monkeypatch, capsys, args, check_mode=False):
    """(result, failed) of image_seal.main() with ``args``."""
    args = dict(args, _ansible_check_mode=check_mode)
    monkeypatch.setattr(basic, "_ANSIBLE_ARGS", to_bytes(json.dumps({"ANSIBLE_MODULE_ARGS": args})))
    monkeypatch.setattr(basic, "_ANSIBLE_PROFILE", "legacy")
    with pytest.raises(SystemExit) as exit_:
        image_seal.main()
    return json.loads(capsys.readouterr().out.strip().splitlines()[-1]), exit_.value.code != 0


def write(root, rel, content="x"):
    path = os.path.join(str(root), rel)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        f.write(content)


def test_a_seal_that_stops_part_way_fails_changed(monkeypatch, capsys, tmp_path):
    """machine-id emptied, then root/.ssh replaced by a link before its key is removed (the removal refuses the
    link): the module fails - it reported changed=false although /etc/machine-id had been emptied."""
    write(tmp_path, "etc/machine-id", "1" * 32 + "\n")
    write(tmp_path, "root/.ssh/authorized_keys", "ssh-ed25519 AAAA builder\n")
    real_remove = seal._remove

    def swapped(root, rel):
        if rel.startswith("root/.ssh/"):
            shutil.rmtree(os.path.join(root, "root/.ssh"))
            os.symlink(str(tmp_path / "elsewhere"), os.path.join(root, "root/.ssh"))
        return real_remove(root, rel)

    monkeypatch.setattr(seal, "_remove", swapped)
    res, failed = run_module(monkeypatch, capsys, {"path": str(tmp_path), "state": "sealed"})
    assert failed and res["changed"] is True and res["sealed"] is False
    assert [f["path"] for f in res["findings"]] == ["/etc/machine-id"] and "/etc/machine-id" in res["msg"]
    assert (tmp_path / "etc/machine-id").read_text() == ""


def test_a_seal_that_fails_before_any_change_is_not_changed(monkeypatch, capsys, tmp_path):
    write(tmp_path, "root/.ssh/authorized_keys", "ssh-ed25519 AAAA builder\n")
    write(tmp_path, "etc/machine-id", "")

    def refuse(root, rel):
        raise OSError(13, "Permission denied", os.path.join(root, rel))

    monkeypatch.setattr(seal, "_remove", refuse)
    res, failed = run_module(monkeypatch, capsys, {"path": str(tmp_path), "state": "sealed"})
    assert failed and res["changed"] is False and res["findings"] == []
