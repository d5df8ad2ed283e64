# -*- coding: utf-8 -*-
# Copyright: (c) 2026, vmguard.hardening developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The inbound firewall a guest gets at its next boot (ISO-10), standard library only.

The live ruleset says what the guest filters now; a reboot (or a revert to a snapshot taken while the ruleset
was loaded but not persisted) brings up what the boot loads instead. The units enabled to start at boot whose
``ExecStart=`` runs ``nft -f FILE`` (nftables.service, vmguard-firewall.service that guest_firewall installs, any
other) are the loaders; their files are loaded, in boot order (nftables.service first: its ``flush ruleset``
would remove what others loaded before it; then by unit name; a unit systemd would skip (ConditionPathExists=) or
whose file is missing loads nothing), into a scratch network namespace of their own
(``unshare --net``), with an interface of each of the guest's interface names (a rule may name one: a dummy, or
a bridge where the kernel has no dummy driver), and
that namespace's ``nft -j list ruleset`` is judged as the live one is (nftables.py). Nothing touches the live
ruleset. A file that does not load is an error, never a pass; no loader means an empty boot ruleset.

Enabled firewall managers that do not load an nft file (firewalld, ufw, netfilter-persistent, ...) cannot be
replayed: they are listed (``others``). They add tables of their own, which can only drop more (a packet must
pass every base chain of a hook).

A unit's drop-ins (``<unit>.d/*.conf`` along the search path) are read after its file, as systemd reads them: one
that resets ``ExecStart=`` and names another file makes the boot load that file (a base unit loading a default-deny
ruleset while an override loads an open one is the override's open ruleset). Type-wide and prefix drop-ins are not.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os
import shlex

from ansible_collections.vmguard.hardening.plugins.module_utils.evidence import nftables, unitfiles

FIRST = ("nftables.service",)
OTHERS = ("firewalld.service", "ufw.service", "netfilter-persistent.service", "iptables.service",
          "ip6tables.service", "shorewall.service", "shorewall6.service", "ferm.service")
# Run as: unshare --net -- /bin/sh -c REPLAY sh NFT IFNAME... -- FILE... : the data are positional arguments,
# never part of the script.
REPLAY = ('nft=$1; shift; '
          'while [ "$#" -gt 0 ] && [ "$1" != "--" ]; do '
          'ip link add "$1" type dummy >/dev/null 2>&1 || ip link add "$1" type bridge >/dev/null 2>&1; shift; done; '
          'shift; ip link set lo up >/dev/null 2>&1; '
          'for f in "$@"; do "$nft" -f "$f" || exit 3; done; '
          'exec "$nft" -j list ruleset')


def nft_files(argv):
    """The files an ``nft`` command line loads (-f FILE, --file FILE, --file=FILE), else []."""
    if not argv or os.path.basename(argv[0]) != "nft":
        return []
    files, args = [], iter(argv[1:])
    for a in args:
        if a in ("-f", "--file"):
            files.append(next(args, None))
        elif a.startswith("--file="):
            files.append(a[len("--file="):])
        elif a.startswith("-f") and len(a) > 2 and not a.startswith("--"):
            files.append(a[2:])
    return [f for f in files if f]


def _exec_argv(value):
    """The command line of an ExecStart= value, its prefixes (-@:+!) removed; None when it cannot be split."""
    value = value.strip().lstrip("-@:+!|")
    try:
        return shlex.split(value)
    except ValueError:
        return None


def loaders(enabled, root="/"):
    """([{unit, files, skipped}], others): the enabled units whose ExecStart= loads nft files, in boot order, and the
    enabled firewall managers of OTHERS. ``skipped``: why the boot loads none of the unit's files (None when it
    does): a ConditionPathExists= that does not hold (systemd skips the unit: guest_firewall's unit names its
    ruleset so), or a file that does not exist (the unit fails: ``nft -f`` loads nothing)."""
    first = unitfiles.first_files(root)
    found = []
    for unit in enabled:
        if not unit.endswith(".service") or unit not in first:
            continue
        path = first[unit][1]
        files = []
        for value in unitfiles.unit_values(path, unit, "Service", "ExecStart", root):
            files.extend(nft_files(_exec_argv(value) or []))
        if files:
            found.append({"unit": unit, "files": files, "skipped": _skipped(path, unit, files, root)})
    found.sort(key=lambda x: (x["unit"] not in FIRST, x["unit"]))
    return found, sorted(u for u in enabled if u in OTHERS)


def _exists(root, path):
    return os.path.exists(os.path.join(root, path.lstrip("/")))


def _skipped(unit_path, unit, files, root):
    """Why the boot loads none of ``files`` of ``unit`` (its file at ``unit_path``, and its drop-ins), or None."""
    for value in unitfiles.unit_values(unit_path, unit, "Unit", "ConditionPathExists", root):
        want = value.lstrip("|")
        negate = want.startswith("!")
        want = want.lstrip("!")
        if want and _exists(root, want) == negate:
            return "ConditionPathExists=%s does not hold: systemd skips the unit" % value
    missing = [f for f in files if not _exists(root, f)]
    if missing:
        return "%s missing: the unit fails and loads nothing" % ", ".join(missing)
    return None


def interfaces(root="/"):
    """The guest's network interface names (rules may name them), loopback apart."""
    try:
        names = os.listdir(os.path.join(root, "sys/class/net"))
    except OSError:
        return []
    return sorted(n for n in names if n != "lo" and not n.startswith("-"))


def collect(enabled, run, bin_path, root="/"):
    """The `firewall_boot` evidence: the posture (as nftables.evaluate) of the ruleset the boot loads, with
    ``loaders`` and ``others`` (see loaders); ``error`` says why it could not be known. ``enabled``: the
    enabled units (None when they could not be read)."""
    def result(posture, found=(), others=()):
        posture = dict(posture)
        posture.update(loaders=list(found), others=list(others))
        return posture
    if enabled is None:
        return result(nftables.error_result("the enabled units could not be read"))
    try:
        found, others = loaders(enabled, root)
    except unitfiles.UnitScanError as e:
        return result(nftables.error_result(str(e)))
    nft, unshare = bin_path("nft"), bin_path("unshare")
    if not nft or not unshare:
        return result(nftables.error_result("%s is not installed: the boot ruleset cannot be replayed"
                                            % ("nft" if not nft else "unshare")), found, others)
    argv = [unshare, "--net", "--", "/bin/sh", "-c", REPLAY, "sh", nft] + interfaces(root) + ["--"]
    argv += [os.path.join(root, f.lstrip("/")) for loader in found if not loader["skipped"] for f in loader["files"]]
    rc, out, err = run(argv)
    if rc != 0:
        why = "a file of %s does not load" % ", ".join(x["unit"] for x in found if not x["skipped"]) if rc == 3 \
            else "rc %d" % rc
        return result(nftables.error_result("the boot ruleset could not be replayed in a scratch network namespace "
                                            "(%s): %s" % (why, error_lines(err))), found, others)
    return result(nftables.evaluate_text(out), found, others)


def error_lines(err):
    """nft's error messages without the lines it quotes from the file (the evidence leaves the guest: a unit
    loading a file that is no ruleset must not send its content), at most 3, else the last line of the output."""
    lines = [line.strip() for line in (err or "").splitlines() if ": Error: " in line or line.startswith("Error: ")]
    if lines:
        return "; ".join(lines[:3])[:500]
    last = (err or "").strip().splitlines()
    return last[-1][:200] if last and ": " in last[-1] and "Error" in last[-1] else "no error message"
