"""bootfirewall.py: the ruleset a guest gets at its next boot (ISO-10). The loaders are read from real unit trees;
the replay runs the real nft in a real scratch network namespace (unshare --net) and never touches this host's own
ruleset (checked: its digest before and after)."""

import os
import shutil
import subprocess

import pytest

from ansible_collections.vmguard.hardening.plugins.module_utils.evidence import bootfirewall, guestcollect, unitfiles

NFT, UNSHARE = shutil.which("nft") or "/usr/sbin/nft", shutil.which("unshare")
REAL = pytest.mark.skipif(os.geteuid() != 0 or not os.path.exists(NFT) or not UNSHARE,
                          reason="needs root, nft and unshare (a network namespace of its own)")

DENY = """table inet vmguard {
  chain input {
    type filter hook input priority 0; policy drop;
    iif "lo" accept
    ct state established,related accept
    tcp dport { 22, 443 } accept
  }
}
"""
OPEN = "flush ruleset\ntable inet filter {\n  chain input {\n    type filter hook input priority 0; policy accept;\n  }\n}\n"
ON_IFACE = DENY.replace('iif "lo" accept', 'iif "lo" accept\n    iif "vmgtest0" tcp dport 8443 accept')


def unit(root, d, name, execstart, enabled=True):
    path = os.path.join(str(root), d.lstrip("/"), name)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        f.write("[Unit]\nDescription=x\n[Service]\nType=oneshot\n%s\n[Install]\nWantedBy=sysinit.target\n" % execstart)
    return name


def nftfile(tmp_path, name, text):
    """The file ``name`` of the guest tree under tmp_path/root (its guest path returned: units name those)."""
    path = tmp_path / "root" / "etc" / "vmguard" / name
    os.makedirs(str(path.parent), exist_ok=True)
    path.write_text(text)
    return "/etc/vmguard/" + name


@pytest.mark.parametrize("argv, files", [
    (["/usr/sbin/nft", "-f", "/etc/nftables.conf"], ["/etc/nftables.conf"]),
    (["nft", "--file", "/a", "-f/b", "--file=/c"], ["/a", "/b", "/c"]),
    (["/usr/sbin/nft", "list", "ruleset"], []),
    (["/usr/sbin/iptables-restore", "-f", "/x"], []),
    (["nft", "-f"], []),
    ([], []),
])
def test_nft_files(argv, files):
    assert bootfirewall.nft_files(argv) == files


def test_loaders_are_the_enabled_units_loading_nft_files_nftables_service_first(tmp_path):
    enabled = [
        unit(tmp_path, "/etc/systemd/system", "vmguard-firewall.service", "ExecStart=/usr/sbin/nft -f /etc/vmguard/fw.nft"),
        unit(tmp_path, "/lib/systemd/system", "nftables.service", "ExecStart=/usr/sbin/nft -f /etc/nftables.conf"),
        unit(tmp_path, "/lib/systemd/system", "ssh.service", "ExecStart=/usr/sbin/sshd -D"),
        unit(tmp_path, "/etc/systemd/system", "a-extra.service", "ExecStart=-/usr/sbin/nft -f '/etc/my fw.nft'"),
        unit(tmp_path, "/lib/systemd/system", "ufw.service", "ExecStart=/lib/ufw/ufw-init start"),
    ]
    unit(tmp_path, "/lib/systemd/system", "not-enabled.service", "ExecStart=/usr/sbin/nft -f /etc/other.nft")
    os.makedirs(str(tmp_path / "etc" / "vmguard"))
    for f in ("etc/nftables.conf", "etc/my fw.nft", "etc/vmguard/fw.nft"):
        (tmp_path / f).write_text("")
    found, others = bootfirewall.loaders(enabled + ["missing.service", "x.timer"], str(tmp_path))
    assert found == [{"unit": "nftables.service", "files": ["/etc/nftables.conf"], "skipped": None},
                     {"unit": "a-extra.service", "files": ["/etc/my fw.nft"], "skipped": None},
                     {"unit": "vmguard-firewall.service", "files": ["/etc/vmguard/fw.nft"], "skipped": None}]
    assert others == ["ufw.service"]


def test_a_unit_systemd_skips_or_whose_file_is_missing_loads_nothing(tmp_path):
    """guest_firewall's unit has ConditionPathExists=<its ruleset>: without the file systemd skips it (the rollback
    scenario's guest: the ruleset removed, the unit still enabled); a unit without the condition fails instead."""
    unit(tmp_path, "/etc/systemd/system", "vmguard-firewall.service",
         "ExecStart=/usr/sbin/nft -f /etc/vmguard/firewall.nft")
    path = tmp_path / "etc/systemd/system/vmguard-firewall.service"
    path.write_text(path.read_text().replace("[Unit]\n", "[Unit]\nConditionPathExists=/etc/vmguard/firewall.nft\n"))
    unit(tmp_path, "/etc/systemd/system", "plain.service", "ExecStart=/usr/sbin/nft -f /etc/plain.nft")
    unit(tmp_path, "/etc/systemd/system", "negated.service",
         "ExecStart=/usr/sbin/nft -f /etc/negated.nft\n[Unit]\nConditionPathExists=!/etc/vmguard/disable")
    (tmp_path / "etc/negated.nft").write_text("")
    found = dict((x["unit"], x["skipped"]) for x in bootfirewall.loaders(
        ["vmguard-firewall.service", "plain.service", "negated.service"], str(tmp_path))[0])
    assert found["vmguard-firewall.service"] == (
        "ConditionPathExists=/etc/vmguard/firewall.nft does not hold: systemd skips the unit")
    assert found["plain.service"] == "/etc/plain.nft missing: the unit fails and loads nothing"
    assert found["negated.service"] is None
    os.makedirs(str(tmp_path / "etc/vmguard"))
    (tmp_path / "etc/vmguard/disable").write_text("")
    skipped = bootfirewall.loaders(["negated.service"], str(tmp_path))[0][0]["skipped"]
    assert skipped == "ConditionPathExists=!/etc/vmguard/disable does not hold: systemd skips the unit"


def dropin(root, d, unit_name, conf, text):
    path = os.path.join(str(root), d.lstrip("/"), unit_name + ".d", conf)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        f.write(text)


def test_a_drop_in_that_replaces_execstart_decides_what_the_boot_loads(tmp_path):
    """nftables.service loads /etc/nftables.conf; an override resets ExecStart= and loads another file: the boot
    loads that one only. Drop-ins apply by file name after the unit; /etc's hides /lib's of the same name."""
    unit(tmp_path, "/lib/systemd/system", "nftables.service", "ExecStart=/usr/sbin/nft -f /etc/nftables.conf")
    for f in ("etc/nftables.conf", "etc/open.nft", "etc/extra.nft"):
        os.makedirs(str((tmp_path / f).parent), exist_ok=True)
        (tmp_path / f).write_text("")
    dropin(tmp_path, "/etc/systemd/system", "nftables.service", "override.conf",
           "[Service]\nExecStart=\nExecStart=/usr/sbin/nft -f /etc/open.nft\n")
    found = bootfirewall.loaders(["nftables.service"], str(tmp_path))[0]
    assert found == [{"unit": "nftables.service", "files": ["/etc/open.nft"], "skipped": None}]
    # One more drop-in, later by name, adds a file (no reset): both load, in order.
    dropin(tmp_path, "/lib/systemd/system", "nftables.service", "zz-extra.conf",
           "[Service]\nExecStart=/usr/sbin/nft -f /etc/extra.nft\n")
    assert bootfirewall.loaders(["nftables.service"], str(tmp_path))[0][0]["files"] == ["/etc/open.nft", "/etc/extra.nft"]
    # /lib's override.conf is hidden by /etc's of the same name.
    dropin(tmp_path, "/lib/systemd/system", "nftables.service", "override.conf",
           "[Service]\nExecStart=\nExecStart=/usr/sbin/nft -f /etc/lib-only.nft\n")
    assert bootfirewall.loaders(["nftables.service"], str(tmp_path))[0][0]["files"] == ["/etc/open.nft", "/etc/extra.nft"]
    # A drop-in's condition counts as the unit file's would.
    dropin(tmp_path, "/etc/systemd/system", "nftables.service", "cond.conf", "[Unit]\nConditionPathExists=/etc/absent\n")
    assert "ConditionPathExists=/etc/absent does not hold" in bootfirewall.loaders(["nftables.service"], str(tmp_path))[0][0]["skipped"]
    assert [os.path.basename(p) for p in unitfiles.dropins("nftables.service", str(tmp_path))] == [
        "cond.conf", "override.conf", "zz-extra.conf"]


@REAL
def test_an_override_loading_an_open_ruleset_is_what_the_boot_gets(tmp_path):
    """The base unit's file is default-deny, an override loads an open one instead: the boot is open (a replay of
    the unit file alone would have passed ISO-10)."""
    root = tmp_path / "root"
    deny, open_ = nftfile(tmp_path, "deny.nft", DENY), nftfile(tmp_path, "open.nft", OPEN)
    unit(root, "/lib/systemd/system", "nftables.service", "ExecStart=%s -f %s" % (NFT, deny))
    os.makedirs(str(root / "etc/systemd/system"), exist_ok=True)
    got = bootfirewall.collect(["nftables.service"], guestcollect.run_argv, guestcollect.bin_path, str(root))
    assert got["error"] is None and got["default_deny"] is True
    dropin(root, "/etc/systemd/system", "nftables.service", "override.conf",
           "[Service]\nExecStart=\nExecStart=%s -f %s\n" % (NFT, open_))
    got = bootfirewall.collect(["nftables.service"], guestcollect.run_argv, guestcollect.bin_path, str(root))
    assert got["error"] is None and got["default_deny"] is False and got["open_any"]
    assert got["loaders"][0]["files"] == [open_]


def test_section_values_keep_each_assignment_in_its_section(tmp_path):
    path = tmp_path / "x.service"
    path.write_text("[Unit]\nExecStart=/not/this\n[Service]\nExecStart=/a b\n# ExecStart=/comment\nExecStart=\n"
                    "ExecStart= /c\n[Install]\nAlias=y.service z.service\n")
    assert unitfiles.section_values(str(path), "Service", "ExecStart") == ["/a b", "", "/c"]
    assert unitfiles.install_values(str(path), "Alias") == ["y.service", "z.service"]
    os.mkfifo(str(tmp_path / "fifo.service"))
    assert unitfiles.section_values(str(tmp_path / "fifo.service"), "Service", "ExecStart") == []


def live_digest():
    return subprocess.run([NFT, "-j", "list", "ruleset"], stdout=subprocess.PIPE, check=True).stdout


def collect(tmp_path, files, root=None):
    """collect() over a tree whose one enabled unit loads ``files`` (none: no loader)."""
    root = root or tmp_path / "root"
    enabled = []
    if files:
        enabled.append(unit(root, "/etc/systemd/system", "vmguard-firewall.service",
                            "ExecStart=%s %s" % (NFT, " ".join("-f %s" % f for f in files))))
    os.makedirs(str(root / "etc/systemd/system"), exist_ok=True)
    return bootfirewall.collect(enabled, guestcollect.run_argv, guestcollect.bin_path, str(root))


@REAL
def test_a_persisted_default_deny_is_judged_in_a_scratch_namespace(tmp_path):
    before = live_digest()
    got = collect(tmp_path, [nftfile(tmp_path, "fw.nft", DENY)])
    assert got["error"] is None and got["default_deny"] is True and got["open_any"] == []
    assert sorted(o["port"] for o in got["open"]) == [22, 443]
    assert got["loaders"] == [{"unit": "vmguard-firewall.service", "files": ["/etc/vmguard/fw.nft"], "skipped": None}]
    assert live_digest() == before  # this host's own ruleset untouched


@REAL
def test_nftables_conf_flushing_first_and_the_vmguard_table_after_stay_default_deny(tmp_path):
    got = collect(tmp_path, [nftfile(tmp_path, "nftables.conf", OPEN), nftfile(tmp_path, "fw.nft", DENY)])
    assert got["error"] is None and got["default_deny"] is True  # a drop in any base chain of the hook is final


@REAL
def test_a_permissive_boot_ruleset_and_no_loader_at_all_are_open(tmp_path):
    got = collect(tmp_path, [nftfile(tmp_path, "nftables.conf", OPEN)])
    assert got["error"] is None and got["default_deny"] is False and got["open_any"]
    got = collect(tmp_path, [])
    assert got["error"] is None and got["loaders"] == [] and got["open_any"]


@REAL
def test_a_file_that_does_not_load_is_an_error_naming_its_unit(tmp_path):
    got = collect(tmp_path, [nftfile(tmp_path, "bad.nft", "table inet vmguard { chain input { bogus } }\n")])
    assert got["default_deny"] is None and "a file of vmguard-firewall.service does not load" in got["error"]
    got = collect(tmp_path, ["/etc/vmguard/absent.nft"])  # missing: the unit loads nothing (open), no error
    assert got["error"] is None and got["open_any"] and "absent.nft missing" in got["loaders"][0]["skipped"]


@REAL
def test_the_guest_interfaces_exist_in_the_scratch_namespace(tmp_path):
    """A rule may name one of the guest's interfaces (iif needs it to exist): each gets a dummy of its name."""
    root = tmp_path / "root"
    os.makedirs(str(root / "sys/class/net/vmgtest0"))
    got = collect(tmp_path, [nftfile(tmp_path, "fw.nft", ON_IFACE)], root=root)
    assert got["error"] is None and 8443 in [o["port"] for o in got["open"]]
    os.rmdir(str(root / "sys/class/net/vmgtest0"))
    assert "does not load" in collect(tmp_path, ["/etc/vmguard/fw.nft"], root=root)["error"]


def test_missing_tools_and_unreadable_units_are_errors():
    got = bootfirewall.collect([], guestcollect.run_argv, lambda name: None)
    assert got["default_deny"] is None and "nft is not installed" in got["error"]
    got = bootfirewall.collect(None, guestcollect.run_argv, guestcollect.bin_path)
    assert "enabled units could not be read" in got["error"] and got["loaders"] == []


@REAL
def test_a_file_that_is_no_ruleset_never_sends_its_content(tmp_path):
    """A unit loading a secret file (nft quotes the line it cannot parse) gives an error without that line."""
    secret = nftfile(tmp_path, "shadow", "root:$6$Secret.Salt$HashValueThatMustNotLeave:19000:0:99999:7:::\n")
    got = collect(tmp_path, [secret])
    assert "does not load" in got["error"] and "Error" in got["error"]
    assert "HashValueThatMustNotLeave" not in str(got) and "Secret.Salt" not in str(got)


def test_error_lines_keep_the_messages_only():
    err = "/etc/x.nft:5:9-18: Error: Interface does not exist\n    iif 'secret0' accept\n        ^^^^^^^^^^\n"
    assert bootfirewall.error_lines(err) == "/etc/x.nft:5:9-18: Error: Interface does not exist"
    assert bootfirewall.error_lines("") == "no error message"
    assert bootfirewall.error_lines("root:$6$x:1\n") == "no error message"
