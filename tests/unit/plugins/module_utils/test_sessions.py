"""evidence/sessions.py: the users' own libvirt session definitions (VIS-01), each home read by a child that became
its user. The privilege drop is real (root becomes nobody); the homes are temporary directories given to nobody."""

import os
import pwd
import shutil
import tempfile

import pytest

from ansible_collections.vmguard.hardening.plugins.module_utils.evidence import domxml, sessions

ROOT = pytest.mark.skipif(os.geteuid() != 0, reason="needs root: the collector becomes another user (setuid) to read a home")

DOMAIN = b"<domain type='qemu'><name>%s</name><uuid>%s</uuid><memory unit='MiB'>64</memory>" \
         b"<devices><graphics type='vnc' passwd='s3cret-vnc'/></devices></domain>"


@pytest.fixture
def base():
    """A directory every user may enter (pytest's tmp_path lies under root's 0700 directory), removed afterwards."""
    path = tempfile.mkdtemp(prefix="vmguard-sessions-", dir="/tmp")
    os.chmod(path, 0o755)
    try:
        yield __import__("pathlib").Path(path)
    finally:
        shutil.rmtree(path)


def nobody_home(base, name="home"):
    """A home directory owned by nobody, and nobody's pwd entry pointing at it."""
    home = base / name
    home.mkdir()
    nobody = pwd.getpwnam("nobody")
    os.chown(str(home), nobody.pw_uid, nobody.pw_gid)
    return home, Entry(nobody, str(home))


class Entry(object):
    """A pwd entry with another home."""

    def __init__(self, pw, home):
        self.pw_name, self.pw_uid, self.pw_gid, self.pw_dir = pw.pw_name, pw.pw_uid, pw.pw_gid, home


def define(home, owner, name, uuid):
    qemu = home / ".config" / "libvirt" / "qemu"
    qemu.mkdir(parents=True, exist_ok=True)
    path = qemu / ("%s.xml" % name)
    path.write_bytes(DOMAIN % (name.encode(), uuid.encode()))
    for p in (home / ".config", home / ".config" / "libvirt", qemu, path):
        os.chown(str(p), owner.pw_uid, owner.pw_gid)
    return str(path)


def test_identity_is_name_and_uuid_only():
    assert domxml.identity(DOMAIN % (b"lab", b"u-1")) == ("lab", "u-1")
    for bad in (b"<domain><uuid>x</uuid></domain>", b"<network><name>n</name></network>", b"<domain"):
        with pytest.raises(domxml.DomainXMLError):
            domxml.identity(bad)


@ROOT
def test_a_users_session_domain_is_found_as_that_user_and_only_its_identity_leaves(base):
    home, nobody = nobody_home(base)
    path = define(home, nobody, "lab", "11111111-2222-3333-4444-555555555555")
    (home / ".config" / "libvirt" / "qemu" / "notes.txt").write_text("not a definition")
    got = sessions.scan(entries=[nobody])
    assert got["users"] == 1 and got["errors"] == []
    assert got["domains"] == [{"uri": "qemu:///session", "user": "nobody", "name": "lab",
                               "uuid": "11111111-2222-3333-4444-555555555555", "path": path}]
    assert "s3cret" not in repr(got)  # the definition's password never leaves the child
    # The audited session directory itself is not "outside" the audit.
    assert sessions.scan(skip=os.path.dirname(path), entries=[nobody])["domains"] == []


@ROOT
def test_a_link_planted_in_a_home_reads_only_what_its_user_could(base):
    """nobody links ~/.config/libvirt/qemu/x.xml to a root-only domain definition: read as root the link would
    hand root's file to the audit; read as nobody it is permission denied, an error naming the path."""
    secret_dir = base / "root-only"
    secret_dir.mkdir(mode=0o700)
    secret = secret_dir / "secret.xml"
    secret.write_bytes(DOMAIN % (b"root-only-vm", b"u-root"))
    os.chmod(str(secret), 0o600)
    home, nobody = nobody_home(base)
    define(home, nobody, "lab", "u-1")
    link = home / ".config" / "libvirt" / "qemu" / "x.xml"
    os.symlink(str(secret), str(link))
    got = sessions.scan(entries=[nobody])
    assert [d["name"] for d in got["domains"]] == ["lab"]
    assert "root-only-vm" not in repr(got)
    assert got["errors"] == [{"uri": "qemu:///session", "user": "nobody", "path": str(link), "error": "Permission denied"}]
    # A directory link out of the home: the same, as nobody.
    shutil.rmtree(str(home / ".config" / "libvirt" / "qemu"))
    os.symlink(str(secret_dir), str(home / ".config" / "libvirt" / "qemu"))
    got = sessions.scan(entries=[nobody])
    assert got["domains"] == [] and "Permission denied" in got["errors"][0]["error"]


@ROOT
def test_homes_without_a_config_are_skipped_and_one_home_is_read_once(base):
    home, nobody = nobody_home(base)
    assert sessions.scan(entries=[nobody])["users"] == 0  # no ~/.config: no child at all
    define(home, nobody, "lab", "u-1")
    got = sessions.scan(entries=[nobody, nobody])
    assert got["users"] == 1 and len(got["domains"]) == 1


@ROOT
def test_a_child_that_hangs_or_lies_is_an_error(base, monkeypatch):
    home, nobody = nobody_home(base)
    qemu = os.path.dirname(define(home, nobody, "lab", "u-1"))
    fifo = os.path.join(qemu, "slow.xml")
    os.mkfifo(fifo)
    os.chown(fifo, nobody.pw_uid, nobody.pw_gid)
    got = sessions.scan(entries=[nobody])  # a FIFO is opened without blocking and refused: not a regular file
    assert {"path": fifo, "error": "not a regular file"} in [dict(path=e["path"], error=e["error"]) for e in got["errors"]]
    monkeypatch.setattr(sessions, "read_definitions", lambda directory: __import__("time").sleep(30))
    slow = sessions.as_user(nobody, qemu, timeout=1)
    assert slow["domains"] == [] and "took longer than 1 s" in slow["error"]
    monkeypatch.setattr(sessions, "read_definitions", lambda directory: {"domains": [{"name": 1}], "unreadable": [], "error": None})
    lie = sessions.as_user(nobody, qemu)
    assert lie["domains"] == [] and "no usable answer" in lie["error"]


def test_read_definitions_lists_and_reports_unreadable_files(tmp_path):
    qemu = tmp_path / "qemu"
    assert sessions.read_definitions(str(qemu)) == {"domains": [], "unreadable": [], "error": None}  # missing: none
    qemu.mkdir()
    (qemu / "a.xml").write_bytes(DOMAIN % (b"a", b"u-a"))
    (qemu / "b.xml").write_text("<domain")
    got = sessions.read_definitions(str(qemu))
    assert [d["name"] for d in got["domains"]] == ["a"]
    assert got["unreadable"][0]["path"].endswith("b.xml") and "malformed" in got["unreadable"][0]["error"]
