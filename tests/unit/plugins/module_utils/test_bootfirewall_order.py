"""bootfirewall.py: what the next boot runs, and in which order (ISO-10). Real unit trees (enablement links where
systemctl puts them); the replays run the real nft in a scratch network namespace (unshare --net), as
test_bootfirewall.py does.

- only what survives a reboot counts: links, unit files and drop-ins under /run (but the generators') are gone;
- ExecStartPre=, ExecStart= and ExecStartPost= all run, in that order;
- loaders run in the order systemd's ordering dependencies give, never by name: where the units leave it open and
  the ruleset depends on it, the boot ruleset is an error, not the favourable order's pass.
"""

import os

import pytest

from ansible_collections.vmguard.hardening.plugins.module_utils.evidence import bootfirewall, guestcollect, unitfiles

from tests.unit.plugins.module_utils.test_bootfirewall import DENY, NFT, REAL

RESET = "flush ruleset\n"
OTHER_TABLE = "table inet site {\n  chain output {\n    type filter hook output priority 0; policy accept;\n  }\n}\n"
# guest_firewall's unit (firewall.BOOT_UNIT), as installed by the module.
VMGUARD = """[Unit]
DefaultDependencies=no
Wants=network-pre.target
Before=network-pre.target shutdown.target
After=nftables.service
ConditionPathExists=/etc/vmguard/firewall.nft
[Service]
Type=oneshot
RemainAfterExit=yes
ExecStart={nft} -f /etc/vmguard/firewall.nft
[Install]
WantedBy=sysinit.target
"""
# An ordinary service of multi-user.target (default dependencies).
SITE = """[Unit]
Description=site tweaks
{unit}
[Service]
Type=oneshot
{service}
[Install]
WantedBy=multi-user.target
"""


def write(root, path, text):
    full = os.path.join(str(root), path.lstrip("/"))
    os.makedirs(os.path.dirname(full), exist_ok=True)
    with open(full, "w") as f:
        f.write(text)


def link(root, wants_dir, unit_path):
    """The link `systemctl enable` (or `enable --runtime`, in /run) makes: <wants_dir>/<name> -> unit_path."""
    d = os.path.join(str(root), wants_dir.lstrip("/"))
    os.makedirs(d, exist_ok=True)
    if not os.path.islink(os.path.join(d, os.path.basename(unit_path))):
        os.symlink(unit_path, os.path.join(d, os.path.basename(unit_path)))


def guest(tmp_path, runtime=False):
    """A guest tree with vmguard-firewall.service loading the default-deny ruleset, enabled for good (or only for
    this boot: `systemctl enable --runtime`)."""
    root = tmp_path / "root"
    os.makedirs(str(root / "lib/systemd/system"))
    write(root, "/etc/vmguard/firewall.nft", DENY)
    write(root, "/etc/systemd/system/vmguard-firewall.service", VMGUARD.format(nft=NFT))
    link(root, "/%s/systemd/system/sysinit.target.wants" % ("run" if runtime else "etc"),
         "/etc/systemd/system/vmguard-firewall.service")
    return root


def site(root, service, unit="", name="site-tweaks.service", wants="multi-user.target.wants", reset=RESET):
    write(root, "/etc/site/reset.nft", reset)
    write(root, "/etc/systemd/system/" + name, SITE.format(unit=unit, service=service.format(nft=NFT)))
    link(root, "/etc/systemd/system/" + wants, "/etc/systemd/system/" + name)


def collect(root):
    """What guest_facts collects: the enabled units as unit_states reads them, then the boot replay."""
    enabled = unitfiles.unit_states(str(root))["enabled"]
    return bootfirewall.collect(enabled, guestcollect.run_argv, guestcollect.bin_path, str(root))


# A: enablement that lives in /run only is gone at the next boot.

def test_runtime_enablement_is_apart_and_the_generators_links_stay(tmp_path):
    root = guest(tmp_path, runtime=True)
    states = unitfiles.unit_states(str(root))
    assert states["enabled"] == [] and states["enabled_runtime"] == ["vmguard-firewall.service"]
    assert "vmguard-firewall.service" not in unitfiles.boot_wants(str(root))
    link(root, "/run/systemd/generator/sysinit.target.wants", "/etc/systemd/system/vmguard-firewall.service")
    assert unitfiles.boot_wants(str(root))["vmguard-firewall.service"] == {"sysinit.target"}
    assert unitfiles.unit_states(str(root))["enabled"] == ["vmguard-firewall.service"]


@REAL
def test_a_loader_enabled_for_this_boot_only_loads_nothing_at_the_next(tmp_path):
    """`systemctl enable --runtime vmguard-firewall`: enabled now (systemctl: enabled-runtime), nothing at the next
    boot: the boot is open, whether the caller lists the unit as enabled or not."""
    root = guest(tmp_path, runtime=True)
    got = collect(root)
    assert got["error"] is None and got["loaders"] == [] and got["open_any"] and got["default_deny"] is False
    got = bootfirewall.collect(["vmguard-firewall.service"], guestcollect.run_argv, guestcollect.bin_path, str(root))
    assert got["error"] is None and got["loaders"] == [] and got["default_deny"] is False


def test_unit_files_drop_ins_and_masks_under_run_are_gone_at_the_next_boot(tmp_path):
    root = guest(tmp_path)
    files = ["/etc/vmguard/firewall.nft"]
    # A runtime drop-in loading another file (systemctl edit --runtime): gone at the next boot.
    write(root, "/run/systemd/system/vmguard-firewall.service.d/override.conf",
          "[Service]\nExecStart=\nExecStart=%s -f /etc/site/reset.nft\n" % NFT)
    write(root, "/etc/site/reset.nft", RESET)
    assert bootfirewall.loaders([], str(root))[0][0]["files"] == files
    # A unit file of /run only, enabled for good: no file at the next boot, nothing loaded.
    write(root, "/run/systemd/system/flush.service", SITE.format(unit="", service="ExecStart=%s -f /etc/site/reset.nft" % NFT))
    link(root, "/etc/systemd/system/multi-user.target.wants", "/run/systemd/system/flush.service")
    assert [x["unit"] for x in bootfirewall.loaders([], str(root))[0]] == ["vmguard-firewall.service"]
    # A unit enabled for good but masked for this boot only (mask --runtime): it runs at the next boot.
    write(root, "/lib/systemd/system/late.service", SITE.format(unit="After=vmguard-firewall.service",
                                                                service="ExecStart=%s -f /etc/site/reset.nft" % NFT))
    link(root, "/etc/systemd/system/multi-user.target.wants", "/lib/systemd/system/late.service")
    os.symlink("/dev/null", str(root / "run/systemd/system/late.service"))
    assert "late.service" in unitfiles.unit_states(str(root))["masked_runtime"]
    assert [x["unit"] for x in bootfirewall.loaders([], str(root))[0]] == ["vmguard-firewall.service", "late.service"]
    # A mask for good: never runs.
    os.symlink("/dev/null", str(root / "etc/systemd/system/late.service"))
    assert [x["unit"] for x in bootfirewall.loaders([], str(root))[0]] == ["vmguard-firewall.service"]


def test_a_vendor_link_starts_a_static_unit_at_boot(tmp_path):
    root = guest(tmp_path)
    write(root, "/lib/systemd/system/vendor-fw.service", "[Service]\nExecStart=%s -f /etc/site/reset.nft\n" % NFT)
    write(root, "/etc/site/reset.nft", RESET)
    link(root, "/lib/systemd/system/sysinit.target.wants", "/lib/systemd/system/vendor-fw.service")
    assert "vendor-fw.service" in [x["unit"] for x in bootfirewall.loaders([], str(root))[0]]


# B: ExecStartPre= and ExecStartPost= run too.

def test_exec_start_pre_start_and_post_load_in_that_order(tmp_path):
    root = guest(tmp_path)
    for name in ("pre.nft", "start.nft", "post.nft", "extra.nft"):
        write(root, "/etc/site/" + name, "")
    site(root, "ExecStartPost=-{nft} -f /etc/site/post.nft\nExecStart=@{nft} nft -f /etc/site/start.nft\n"
               "ExecStartPre=+{nft} --file=/etc/site/pre.nft\nExecStartPre={nft} -c -f /etc/site/extra.nft")
    found = dict((x["unit"], x["files"]) for x in bootfirewall.loaders([], str(root))[0])
    assert found["site-tweaks.service"] == ["/etc/site/pre.nft", "/etc/site/start.nft", "/etc/site/post.nft"]
    # A drop-in resetting ExecStartPost= and adding its own, as for ExecStart=.
    write(root, "/etc/systemd/system/site-tweaks.service.d/post.conf",
          "[Service]\nExecStartPost=\nExecStartPost=%s -f /etc/site/extra.nft\n" % NFT)
    found = dict((x["unit"], x["files"]) for x in bootfirewall.loaders([], str(root))[0])
    assert found["site-tweaks.service"] == ["/etc/site/pre.nft", "/etc/site/start.nft", "/etc/site/extra.nft"]


@pytest.mark.parametrize("argv, files", [
    (["nft", "-c", "-f", "/a"], []),  # checked, not loaded
    (["nft", "--check", "--file", "/a"], []),
    (["nft", "-cf", "/a"], []),
    (["nft", "-ef", "/a"], ["/a"]),
    (["nft", "-I", "/inc", "-f", "/a"], ["/a"]),
])
def test_nft_files_of_option_clusters_and_check_mode(argv, files):
    assert bootfirewall.nft_files(argv) == files


@REAL
def test_a_later_unit_flushing_in_exec_start_post_opens_the_boot(tmp_path):
    """The reviewer's case B, ordered: site-tweaks runs after vmguard-firewall and resets the ruleset in
    ExecStartPost=: the boot ends open."""
    root = guest(tmp_path)
    site(root, "ExecStart=/bin/true\nExecStartPost={nft} -f /etc/site/reset.nft", unit="After=vmguard-firewall.service")
    got = collect(root)
    assert got["error"] is None and got["default_deny"] is False and got["open_any"], got
    assert [x["unit"] for x in got["loaders"]] == ["vmguard-firewall.service", "site-tweaks.service"]


# C: boot order, never the name's.

@REAL
def test_an_order_the_units_leave_open_that_decides_the_ruleset_is_an_error(tmp_path):
    """The reviewer's case C: site-tweaks (multi-user.target, default dependencies) flushes in ExecStart=. Nothing
    orders it with vmguard-firewall (DefaultDependencies=no: sysinit.target does not wait for it): run by name,
    the flush came first and the boot passed. Both orders are replayed; they differ: an error naming both."""
    root = guest(tmp_path)
    site(root, "ExecStart={nft} -f /etc/site/reset.nft")
    got = collect(root)
    assert got["default_deny"] is None and got["error"], got
    assert "site-tweaks.service and vmguard-firewall.service cannot be told" in got["error"]
    assert "not default-deny" in got["error"] and "then" in got["error"]
    # The same with ExecStartPost= (case B as the reviewer wrote it).
    site(root, "ExecStart=/bin/true\nExecStartPost={nft} -f /etc/site/reset.nft", name="site-post.service")
    os.unlink(str(root / "etc/systemd/system/multi-user.target.wants/site-tweaks.service"))
    got = collect(root)
    assert got["error"] and "site-post.service and vmguard-firewall.service cannot be told" in got["error"]


@REAL
def test_order_by_after_before_and_through_the_targets(tmp_path):
    root = guest(tmp_path)
    # The flush explicitly after vmguard-firewall: it runs last, the boot is open.
    site(root, "ExecStart={nft} -f /etc/site/reset.nft", unit="After=vmguard-firewall.service")
    got = collect(root)
    assert got["error"] is None and got["default_deny"] is False
    # Before= on the flushing unit orders it first: default-deny.
    site(root, "ExecStart={nft} -f /etc/site/reset.nft", unit="Before=vmguard-firewall.service")
    got = collect(root)
    assert got["error"] is None and got["default_deny"] is True
    assert [x["unit"] for x in got["loaders"]] == ["site-tweaks.service", "vmguard-firewall.service"]


@REAL
def test_the_targets_order_an_early_flush_before_a_multi_user_loader(tmp_path):
    """A flush that finishes before sysinit.target (DefaultDependencies=no, Before=sysinit.target) and a default-deny
    loader of multi-user.target (default dependencies: after basic.target): the targets order them, whatever their
    names; the boot is default-deny. The same flush keeping its default dependencies runs after basic.target too:
    the order is open, an error."""
    root = tmp_path / "root"
    os.makedirs(str(root / "lib/systemd/system"))
    write(root, "/etc/vmguard/firewall.nft", DENY)
    site(root, "ExecStart={nft} -f /etc/vmguard/firewall.nft", name="a-deny.service")
    site(root, "ExecStart={nft} -f /etc/site/reset.nft", unit="DefaultDependencies=no\nBefore=sysinit.target",
         name="z-early-flush.service", wants="sysinit.target.wants")
    got = collect(root)
    assert got["error"] is None and got["default_deny"] is True, got
    assert [x["unit"] for x in got["loaders"]] == ["z-early-flush.service", "a-deny.service"]
    write(root, "/etc/systemd/system/z-early-flush.service",
          SITE.format(unit="", service="ExecStart=%s -f /etc/site/reset.nft" % NFT))
    assert "cannot be told" in (collect(root)["error"] or "")


@REAL
def test_loaders_whose_order_does_not_matter_are_not_an_error(tmp_path):
    """Another unit adding a table of its own, in no order with vmguard-firewall: every order gives the same."""
    root = guest(tmp_path)
    site(root, "ExecStart={nft} -f /etc/site/reset.nft", reset=OTHER_TABLE)
    got = collect(root)
    assert got["error"] is None and got["default_deny"] is True, got


# Conditions: '|' (triggering: one of them suffices) and '!'.

def test_triggering_conditions_need_one_to_hold(tmp_path):
    root = guest(tmp_path)
    path = root / "etc/systemd/system/vmguard-firewall.service"
    path.write_text(path.read_text().replace("ConditionPathExists=/etc/vmguard/firewall.nft",
                                             "ConditionPathExists=|/etc/absent\nConditionPathExists=|!/etc/vmguard/off"))

    def skipped():
        return bootfirewall.loaders([], str(root))[0][0]["skipped"]
    assert skipped() is None  # the second holds: one is enough (an AND would have skipped the unit)
    write(root, "/etc/vmguard/off", "")
    assert skipped().startswith("none of ConditionPathExists=|/etc/absent, |!/etc/vmguard/off holds")
    write(root, "/etc/absent", "")
    assert skipped() is None
