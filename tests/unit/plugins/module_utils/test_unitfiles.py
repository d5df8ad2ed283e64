"""unitfiles.py: the enabled and masked units read from the unit directories give the states systemd's
own install logic gives. Each tree is real (symlinks, /dev/null, empty files, a FIFO) and is compared
with the expected states and with ``systemctl --root`` (systemd 252, the guests' version), which
computes list-unit-files offline from the same tree."""

import os
import shutil
import subprocess

import pytest

from ansible_collections.vmguard.hardening.plugins.module_utils.evidence import unitfiles

SYSTEMCTL = shutil.which("systemctl")
UNIT = "[Unit]\nDescription=%s\n[Service]\nExecStart=/bin/true\n[Install]\nWantedBy=multi-user.target\n%s"


def _systemctl_version():
    if not SYSTEMCTL:
        return ""
    return subprocess.run([SYSTEMCTL, "--version"], stdout=subprocess.PIPE, universal_newlines=True, check=False).stdout


# The reference: systemd 252, the version of the lab's Debian 12 guests (CI installs it; another version
# may draw the states differently, so it is not compared).
SYSTEMCTL_252 = _systemctl_version().startswith("systemd 252 ")


def test_the_reference_is_here():
    """CI runs on Debian 12 (systemd 252): the comparisons with systemctl --root must not silently vanish."""
    if not os.path.exists("/etc/debian_version") or not open("/etc/debian_version").read().startswith("12"):
        pytest.skip("not Debian 12: systemd 252's systemctl (the reference) is not expected on this machine")
    assert SYSTEMCTL_252


def _unit(root, d, name, text=None, default_instance=None):
    path = os.path.join(str(root), d.lstrip("/"), name)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        f.write(UNIT % (name, "DefaultInstance=%s\n" % default_instance if default_instance else "") if text is None else text)
    return path


def _link(root, d, name, target):
    path = os.path.join(str(root), d.lstrip("/"), name)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    os.symlink(target, path)


def _systemctl(root):
    """What systemctl --root reports for the tree (enabled with enabled-runtime; masked, and masked-runtime apart)."""
    out = subprocess.run([SYSTEMCTL, "--root=%s" % root, "list-unit-files", "--no-legend", "--no-pager",
                          "--type=service,socket,timer"], stdout=subprocess.PIPE, universal_newlines=True, check=True).stdout
    states = {"enabled": [], "masked": [], "masked_runtime": []}
    for line in out.splitlines():
        f = line.split()
        if len(f) >= 2 and f[1] in ("enabled", "enabled-runtime", "masked", "masked-runtime"):
            states["masked_runtime" if f[1] == "masked-runtime" else f[1].split("-")[0]].append(f[0])
    return dict((k, sorted(v)) for k, v in states.items())


def _merged(states):
    """The states as systemctl draws them: enabled-runtime (the generators' links and the volatile ones alike) counted
    as enabled."""
    states = dict(states)
    states["enabled"] = sorted(states["enabled"] + states.pop("enabled_runtime"))
    return states


def _check(root, want):
    want = dict({"masked_runtime": [], "enabled_runtime": []}, **want)
    got = unitfiles.unit_states(str(root))
    assert got == want
    if SYSTEMCTL_252:
        assert _systemctl(str(root)) == _merged(want)  # the reference agrees with the expectation


def test_masks_persistent_runtime_vendor_and_empty(tmp_path):
    for name in ("a.service", "b.service", "c.socket", "d.timer", "keep.service"):
        _unit(tmp_path, "/lib/systemd/system", name)
    _link(tmp_path, "/etc/systemd/system", "a.service", "/dev/null")  # systemctl mask
    _link(tmp_path, "/run/systemd/system", "b.service", "/dev/null")  # systemctl mask --runtime
    _link(tmp_path, "/lib/systemd/system", "x11.service", "/dev/null")  # shipped masked by the vendor
    _unit(tmp_path, "/etc/systemd/system", "c.socket", text="")  # an empty unit file masks too
    _link(tmp_path, "/etc/systemd/system", "gone.service", "/dev/null")  # masked, no unit file anywhere
    _link(tmp_path, "/etc/systemd/system", "d.timer", "/lib/systemd/system/d.timer")  # a link, not a mask
    # A runtime mask (b) is gone at the next boot: listed apart, never as masked (RB-09 judged it "still masked").
    _check(tmp_path, {"enabled": [], "masked": ["a.service", "c.socket", "gone.service", "x11.service"],
                      "masked_runtime": ["b.service"]})


def test_a_mask_shadowed_by_a_unit_file_earlier_in_the_search_path_does_not_mask(tmp_path):
    _unit(tmp_path, "/lib/systemd/system", "a.service")
    _link(tmp_path, "/etc/systemd/system", "a.service", "/dev/null")
    _unit(tmp_path, "/etc/systemd/system.control", "a.service")  # found first
    _check(tmp_path, {"enabled": [], "masked": []})


def test_enabled_by_etc_run_and_generator_symlinks_not_by_vendor_ones(tmp_path):
    for name in ("etc.service", "run.service", "gen.service", "vendor.service", "req.socket", "both.service"):
        _unit(tmp_path, "/lib/systemd/system", name)
    _link(tmp_path, "/etc/systemd/system/multi-user.target.wants", "etc.service", "/lib/systemd/system/etc.service")
    _link(tmp_path, "/run/systemd/system/multi-user.target.wants", "run.service", "/lib/systemd/system/run.service")
    _link(tmp_path, "/run/systemd/generator/local-fs.target.wants", "gen.service", "/lib/systemd/system/gen.service")
    _link(tmp_path, "/lib/systemd/system/sysinit.target.wants", "vendor.service", "../vendor.service")  # static
    _link(tmp_path, "/etc/systemd/system/sockets.target.requires", "req.socket", "/lib/systemd/system/req.socket")
    _link(tmp_path, "/etc/systemd/system/multi-user.target.wants", "both.service", "/lib/systemd/system/both.service")
    _link(tmp_path, "/etc/systemd/system", "both.service", "/dev/null")  # masked wins over enabled
    _link(tmp_path, "/etc/systemd/system/multi-user.target.wants", "nofile.service", "/lib/systemd/system/nofile.service")
    _link(tmp_path, "/etc/systemd/system/multi-user.target.wants", "t.target", "/lib/systemd/system/t.target")
    # run.service: `systemctl enable --runtime`, gone at the next boot (apart); gen.service: made again by its generator.
    _check(tmp_path, {"enabled": ["etc.service", "gen.service", "req.socket"], "enabled_runtime": ["run.service"],
                      "masked": ["both.service"]})


def test_templates_are_enabled_by_their_default_instance_or_themselves(tmp_path):
    _unit(tmp_path, "/lib/systemd/system", "getty@.service", default_instance="tty1")
    _unit(tmp_path, "/lib/systemd/system", "serial@.service")
    _unit(tmp_path, "/lib/systemd/system", "other@.service", default_instance="tty1")
    _unit(tmp_path, "/lib/systemd/system", "self@.service")
    wants = "/etc/systemd/system/getty.target.wants"
    _link(tmp_path, wants, "getty@tty1.service", "/lib/systemd/system/getty@.service")  # the default instance
    _link(tmp_path, wants, "serial@ttyS0.service", "/lib/systemd/system/serial@.service")  # no default: indirect
    _link(tmp_path, wants, "other@tty2.service", "/lib/systemd/system/other@.service")  # not the default: indirect
    _link(tmp_path, "/run/systemd/generator/getty.target.wants", "self@.service", "/lib/systemd/system/self@.service")
    _check(tmp_path, {"enabled": ["getty@.service", "self@.service"], "masked": []})


def test_generated_units_are_never_enabled(tmp_path):
    _unit(tmp_path, "/lib/systemd/system", "vendor.service")
    _unit(tmp_path, "/run/systemd/generator", "made.service")
    _link(tmp_path, "/run/systemd/generator/multi-user.target.wants", "made.service", "/run/systemd/generator/made.service")
    _check(tmp_path, {"enabled": [], "masked": []})


def test_only_etc_and_run_enable_not_control_attached_or_vendor_dirs(tmp_path):
    dirs = ["/etc/systemd/system.control", "/run/systemd/system.control", "/run/systemd/transient", "/run/systemd/generator.early",
            "/etc/systemd/system", "/etc/systemd/system.attached", "/run/systemd/system", "/run/systemd/system.attached",
            "/run/systemd/generator", "/usr/local/lib/systemd/system", "/run/systemd/generator.late"]
    for i, d in enumerate(dirs):
        name = "u%d.service" % i
        _unit(tmp_path, "/lib/systemd/system", name)
        _link(tmp_path, d + "/multi-user.target.wants", name, "/lib/systemd/system/" + name)
    counted = [i for i, d in enumerate(dirs) if d == "/etc/systemd/system" or d.startswith("/run/systemd/generator")]
    runtime = [i for i, d in enumerate(dirs) if d in unitfiles.VOLATILE_DIRS]
    _check(tmp_path, {"enabled": sorted("u%d.service" % i for i in counted),
                      "enabled_runtime": sorted("u%d.service" % i for i in runtime), "masked": []})


def test_aliases_enable_only_when_the_unit_declares_them(tmp_path):
    _unit(tmp_path, "/lib/systemd/system", "declared.service", text="[Service]\nExecStart=/bin/true\n[Install]\nAlias=dm.service\n")
    _unit(tmp_path, "/lib/systemd/system", "runtime.service", text="[Service]\nExecStart=/bin/true\n[Install]\nAlias=rt.service other.service\n")
    _unit(tmp_path, "/lib/systemd/system", "plain.service")
    _link(tmp_path, "/etc/systemd/system", "dm.service", "/lib/systemd/system/declared.service")
    _link(tmp_path, "/run/systemd/system", "rt.service", "/lib/systemd/system/runtime.service")
    _link(tmp_path, "/etc/systemd/system", "manual.service", "/lib/systemd/system/plain.service")  # not declared
    _check(tmp_path, {"enabled": ["declared.service"], "enabled_runtime": ["runtime.service"], "masked": []})


def test_instances_with_a_file_of_their_own_and_masked_instances(tmp_path):
    _unit(tmp_path, "/lib/systemd/system", "own@one.service")
    _unit(tmp_path, "/lib/systemd/system", "getty@.service", default_instance="tty1")
    _link(tmp_path, "/etc/systemd/system/multi-user.target.wants", "own@one.service", "/lib/systemd/system/own@one.service")
    _link(tmp_path, "/etc/systemd/system/getty.target.wants", "getty@tty1.service", "/lib/systemd/system/getty@.service")
    _link(tmp_path, "/etc/systemd/system", "getty@tty1.service", "/dev/null")  # the instance masked, the template not
    _check(tmp_path, {"enabled": ["getty@.service", "own@one.service"], "masked": ["getty@tty1.service"]})


def test_any_character_device_masks(tmp_path):
    """systemd's null_or_empty(): any character device masks. Not compared with systemctl --root, which
    resolves /dev/zero inside the test tree (where it does not exist); on a guest the root is /."""
    _unit(tmp_path, "/lib/systemd/system", "z.service")
    _link(tmp_path, "/etc/systemd/system", "z.service", "/dev/zero")
    assert unitfiles.unit_states(str(tmp_path)) == {"enabled": [], "enabled_runtime": [], "masked": ["z.service"],
                                                    "masked_runtime": []}


def test_a_tree_without_systemd_is_an_error_not_nothing_masked(tmp_path):
    os.makedirs(os.path.join(str(tmp_path), "etc/init.d"))
    with pytest.raises(unitfiles.UnitScanError) as e:
        unitfiles.unit_states(str(tmp_path))
    assert "not a systemd system" in str(e.value)


def test_host_tree_agrees_with_systemctl():
    if not SYSTEMCTL_252:
        pytest.skip("systemctl of systemd 252 (the guests' version) is not installed here: no reference to compare with")
    assert _merged(unitfiles.unit_states("/")) == _systemctl("/")


def test_a_fifo_as_template_file_is_not_waited_on(tmp_path):
    path = os.path.join(str(tmp_path), "lib/systemd/system/fifo@.service")
    os.makedirs(os.path.dirname(path))
    os.mkfifo(path)  # and a device node is not opened either (install_values stats first)
    _link(tmp_path, "/etc/systemd/system/getty.target.wants", "fifo@tty1.service", path)
    assert unitfiles.default_instance(path) is None
    assert unitfiles.unit_states(str(tmp_path))["enabled"] == []


def test_unreadable_unit_directory_is_an_error_naming_it(tmp_path):
    os.makedirs(os.path.join(str(tmp_path), "lib/systemd/system"))
    os.makedirs(os.path.join(str(tmp_path), "etc/systemd"))
    os.symlink("system", os.path.join(str(tmp_path), "etc/systemd/system"))  # a symlink loop: ELOOP
    with pytest.raises(unitfiles.UnitScanError) as e:
        unitfiles.unit_states(str(tmp_path))
    assert "etc/systemd/system cannot be read" in str(e.value)


def test_template_of():
    assert unitfiles.template_of("getty@tty1.service") == "getty@.service"
    assert unitfiles.template_of("getty@.service") == "getty@.service"
    assert unitfiles.template_of("ssh.service") == "ssh.service"
