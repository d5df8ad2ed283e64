# -*- coding: utf-8 -*-
# Copyright: (c) 2026, vmguard.hardening developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The inbound firewall a guest gets at its next boot (ISO-10), standard library only.

The live ruleset says what the guest filters now; a reboot (or a revert to a snapshot taken while the ruleset
was loaded but not persisted) brings up what the boot loads instead. The units the next boot starts whose
``ExecStartPre=``, ``ExecStart=`` or ``ExecStartPost=`` (in that order) run ``nft -f FILE`` (nftables.service,
vmguard-firewall.service that guest_firewall installs, any other) are the loaders; a unit systemd would skip
(ConditionPathExists=) or whose file is missing loads nothing. Their files are loaded, in boot order, into a scratch
network namespace of their own (``unshare --net``), with an interface of each of the guest's interface names (a rule
may name one: a dummy, or a bridge where the kernel has no dummy driver), and that namespace's
``nft -j list ruleset`` is judged as the live one is (nftables.py). Nothing touches the live ruleset. A file that
does not load is an error, never a pass; no loader means an empty boot ruleset.

The next boot is the tree without what lives in /run only (unitfiles.VOLATILE_DIRS: ``systemctl enable --runtime``
links, runtime masks, drop-ins and unit files there are gone; the generators' directories stay): the units started
are those a .wants/.requires/.upholds link of /etc, the generators or the vendor directories pulls in
(unitfiles.boot_wants), their files and drop-ins read along unitfiles.BOOT_SEARCH_PATH. A unit the caller names as
enabled that no link of the tree names at all (a tree assembled without them) is taken on the caller's word.

Boot order is what systemd's ordering dependencies make it, nothing else: ``After=``/``Before=`` between loaders, and
the standard targets (sysinit.target, then basic.target, then multi-user.target, then graphical.target): a unit that
keeps DefaultDependencies= starts after basic.target, and multi-user.target or graphical.target waits for such a unit
it wants; a unit with ``Before=`` a target finishes before it. Being wanted by sysinit.target orders nothing by itself
(sysinit.target does not wait for a unit with DefaultDependencies=no, nftables.service's and vmguard-firewall's case;
one with default dependencies starts after it). Where the order of loaders cannot be told, every order is replayed:
the same posture in all is the answer; a posture that depends on the order is an error (a race the boot may lose
is not a pass), as is more than MAX_ORDERS orders to replay.

Enabled firewall managers that do not load an nft file (firewalld, ufw, netfilter-persistent, ...) cannot be
replayed: they are listed (``others``). They add tables of their own, which can only drop more (a packet must
pass every base chain of a hook).

A unit's drop-ins (``<unit>.d/*.conf`` along the search path) are read after its file, as systemd reads them: one
that resets ``ExecStart=`` and names another file makes the boot load that file (a base unit loading a default-deny
ruleset while an override loads an open one is the override's open ruleset). Type-wide and prefix drop-ins are not.
Not read either: Wants=/Requires= in unit files (only the links pull units in), units started later by timers,
sockets or paths, and conditions other than ConditionPathExists=.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os
import shlex

from ansible_collections.vmguard.hardening.plugins.module_utils.evidence import nftables, unitfiles

FIRST = ("nftables.service",)  # listed first among loaders whose order cannot be told
OTHERS = ("firewalld.service", "ufw.service", "netfilter-persistent.service", "iptables.service",
          "ip6tables.service", "shorewall.service", "shorewall6.service", "ferm.service")
# The commands a service runs when it starts, in the order it runs them.
EXEC_KEYS = ("ExecStartPre", "ExecStart", "ExecStartPost")
EXEC_PREFIXES = "-@:+!"
BOOT = unitfiles.BOOT_SEARCH_PATH
# The standard targets and those reached after each (systemd.special(7); their unit files' After= on this chain).
_AFTER_BASIC = ("basic.target", "multi-user.target", "graphical.target")
LATER = {"local-fs.target": ("sysinit.target",) + _AFTER_BASIC, "swap.target": ("sysinit.target",) + _AFTER_BASIC,
         "sysinit.target": _AFTER_BASIC, "sockets.target": _AFTER_BASIC, "timers.target": _AFTER_BASIC,
         "paths.target": _AFTER_BASIC, "slices.target": _AFTER_BASIC,
         "basic.target": ("multi-user.target", "graphical.target"), "multi-user.target": ("graphical.target",)}
# A service keeping DefaultDependencies= is After= these; the targets after basic.target wait (After=) for such a
# service they want (the earlier ones would loop with it: systemd adds nothing).
DEFAULT_AFTER = ("sysinit.target", "basic.target")
WAITING_TARGETS = ("multi-user.target", "graphical.target")
MAX_ORDERS = 24
# Run as: unshare --net -- /bin/sh -c REPLAY sh NFT IFNAME... -- FILE... : the data are positional arguments,
# never part of the script.
REPLAY = ('nft=$1; shift; '
          'while [ "$#" -gt 0 ] && [ "$1" != "--" ]; do '
          'ip link add "$1" type dummy >/dev/null 2>&1 || ip link add "$1" type bridge >/dev/null 2>&1; shift; done; '
          'shift; ip link set lo up >/dev/null 2>&1; '
          'for f in "$@"; do "$nft" -f "$f" || exit 3; done; '
          'exec "$nft" -j list ruleset')


def nft_files(argv):
    """The files an ``nft`` command line loads (-f FILE, --file FILE, --file=FILE, -fFILE, in a cluster such as
    -ef FILE), else []; none when it only checks them (-c, --check: nothing is loaded)."""
    if not argv or os.path.basename(argv[0]) != "nft":
        return []
    files, args, check = [], iter(argv[1:]), False
    for a in args:
        if a in ("--file", "--check"):
            files, check = (files + [next(args, None)], check) if a == "--file" else (files, True)
        elif a.startswith("--file="):
            files.append(a[len("--file="):])
        elif a.startswith("-") and not a.startswith("--"):
            found, check = _short_options(a[1:], args, check)
            files.extend(found)
    return [] if check else [f for f in files if f]


def _short_options(cluster, args, check):
    """(files, check) of one cluster of short options (``cfFILE``): -c checks only; -f, -I and -D take an argument,
    the rest of the cluster or the next word."""
    for i, ch in enumerate(cluster):
        check = check or ch == "c"
        if ch in "fID":
            value = cluster[i + 1:] or next(args, None)
            return ([value] if ch == "f" else []), check
    return [], check


def _exec_argv(value):
    """The command line an Exec*= value runs, executable first, its prefixes (-@:+!) removed ('@': the second word is
    only the argv[0] the program sees, dropped); None when it cannot be split."""
    value = value.strip()
    prefix = value[:len(value) - len(value.lstrip(EXEC_PREFIXES))]
    try:
        argv = shlex.split(value[len(prefix):])
    except ValueError:
        return None
    return argv[:1] + argv[2:] if "@" in prefix else argv


def loaders(enabled, root="/"):
    """([{unit, files, skipped}], others): the units the next boot starts whose ExecStartPre=, ExecStart= or
    ExecStartPost= load nft files, in boot order (boot_units, boot_order), and the firewall managers of OTHERS it
    starts. ``skipped``: why the boot loads none of the unit's files (None when it does): a ConditionPathExists= that
    does not hold (systemd skips the unit: guest_firewall's unit names its ruleset so), or a file that does not exist
    (the unit fails: ``nft -f`` loads nothing)."""
    found, others, _before = _boot_loaders(enabled, root)
    return found, others


def boot_units(enabled, root="/"):
    """{unit: the units that pull it in at the next boot} (unitfiles.boot_wants), with the units of ``enabled`` that no
    link of the tree names (taken on the caller's word, pulled in by nothing known)."""
    wants = unitfiles.boot_wants(root)
    linked = unitfiles.linked_units(root)
    for unit in enabled:
        if unit not in linked:
            wants.setdefault(unit, set())
    return wants


def _boot_loaders(enabled, root):
    """(loaders, others, before): see loaders; ``before``: the pairs (a, b) of loaders where a runs before b."""
    first = unitfiles.first_files(root, BOOT)
    found, facts = [], {}
    units = boot_units(enabled, root)
    for unit in sorted(units):
        path = unitfiles.boot_file(unit, first) if unit.endswith(".service") else None
        if path is None:
            continue
        files = [f for key in EXEC_KEYS for value in unitfiles.unit_values(path, unit, "Service", key, root, BOOT)
                 for f in nft_files(_exec_argv(value) or [])]
        if files:
            found.append({"unit": unit, "files": files, "skipped": _skipped(path, unit, files, root)})
            facts[unit] = _ordering(path, unit, units[unit], root)
    before = _before_pairs(facts)
    order = _orders([x["unit"] for x in sorted(found, key=_listed)], before, None)
    found.sort(key=lambda x: order.index(x["unit"]))
    return found, sorted(u for u in units if u in OTHERS and unitfiles.boot_file(u, first)), before


def _listed(loader):
    """The order loaders whose boot order cannot be told are listed (and replayed first) in."""
    return (loader["unit"] not in FIRST, loader["unit"])


def _ordering(path, unit, wanted_by, root):
    """{"after", "before"}: the units and targets ``unit`` (its file at ``path``) starts after and finishes before,
    its own After=/Before= and what systemd adds: a unit keeping DefaultDependencies= is After=sysinit.target and
    basic.target, and multi-user.target or graphical.target wanting it waits for it."""
    def names(key):
        return set(n for v in unitfiles.unit_values(path, unit, "Unit", key, root, BOOT) for n in v.split())
    defaults = unitfiles.unit_values(path, unit, "Unit", "DefaultDependencies", root, BOOT)
    default = not defaults or defaults[-1].strip().lower() not in ("no", "false", "0", "off", "n", "f")
    after, before = names("After"), names("Before")
    if default:
        after |= set(DEFAULT_AFTER)
        before |= set(t for t in wanted_by if t in WAITING_TARGETS and t not in after)
    return {"after": after, "before": before}


def _runs_before(a, b, facts):
    """Whether loader ``a`` finishes before loader ``b`` starts, by their own ordering or through the targets."""
    fa, fb = facts[a], facts[b]
    if b in fa["before"] or a in fb["after"]:
        return True
    return any(t == u or u in LATER.get(t, ()) for t in fa["before"] for u in fb["after"])


def _before_pairs(facts):
    """The pairs (a, b) of loaders where a runs before b, transitively; a pair ordered both ways (a cycle systemd
    breaks as it can) is not ordered."""
    units = sorted(facts)
    before = set((a, b) for a in units for b in units if a != b and _runs_before(a, b, facts))
    for k in units:
        for a in units:
            for b in units:
                if (a, k) in before and (k, b) in before and a != b:
                    before.add((a, b))
    return set((a, b) for a, b in before if (b, a) not in before)


def _orders(units, before, limit):
    """The orders of ``units`` (listed in the preferred order) that keep ``before``, the preferred one first; None
    when there are more than ``limit``. With ``limit`` None: the preferred order only."""
    out = []

    def walk(done, rest):
        if out and (limit is None or len(out) > limit):
            return
        if not rest:
            out.append(done)
            return
        for u in rest:
            if not any((v, u) in before for v in rest if v != u):
                walk(done + [u], [v for v in rest if v != u])
    walk([], list(units))
    if limit is None:
        return out[0]
    return out if len(out) <= limit else None


def _exists(root, path):
    return os.path.exists(os.path.join(root, path.lstrip("/")))


def _skipped(unit_path, unit, files, root):
    """Why the boot loads none of ``files`` of ``unit`` (its file at ``unit_path``, and its drop-ins), or None.
    ConditionPathExists= as systemd reads it: each plain one must hold ('!' negates); of those prefixed '|' (triggering)
    one at least must hold."""
    triggering, any_holds = [], False
    for value in unitfiles.unit_values(unit_path, unit, "Unit", "ConditionPathExists", root, BOOT):
        trigger = value.startswith("|")
        want = value[1:].lstrip() if trigger else value
        negate = want.startswith("!")
        want = want[1:] if negate else want
        holds = _exists(root, want) != negate
        if trigger:
            triggering.append(value)
            any_holds = any_holds or holds
        elif not holds:
            return "ConditionPathExists=%s does not hold: systemd skips the unit" % value
    if triggering and not any_holds:
        return "none of ConditionPathExists=%s holds: systemd skips the unit" % ", ".join(triggering)
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
    enabled units (None when they could not be read); the tree says which units the next boot starts (boot_units)."""
    def result(posture, found=(), others=()):
        posture = dict(posture)
        posture.update(loaders=list(found), others=list(others))
        return posture
    if enabled is None:
        return result(nftables.error_result("the enabled units could not be read"))
    try:
        found, others, before = _boot_loaders(enabled, root)
    except unitfiles.UnitScanError as e:
        return result(nftables.error_result(str(e)))
    nft, unshare = bin_path("nft"), bin_path("unshare")
    if not nft or not unshare:
        return result(nftables.error_result("%s is not installed: the boot ruleset cannot be replayed"
                                            % ("nft" if not nft else "unshare")), found, others)
    active = dict((x["unit"], x) for x in found if not x["skipped"])
    orders = _orders([x["unit"] for x in sorted(active.values(), key=_listed)], before, MAX_ORDERS)
    if orders is None:
        return result(nftables.error_result(
            "the boot order of %s cannot be told from their units and gives more than %d orders to replay: the boot "
            "ruleset cannot be known" % (", ".join(sorted(active)), MAX_ORDERS)), found, others)
    postures = []
    for order in orders:
        posture = _replay([active[u] for u in order], run, [unshare, nft], root)
        if posture.get("error"):
            return result(posture, found, others)
        postures.append((order, posture))
    why = _order_dependence(postures, before)
    return result(nftables.error_result(why) if why else postures[0][1], found, others)


def _replay(loaders_in_order, run, tools, root):
    """The posture of the ruleset the files of ``loaders_in_order`` leave, loaded in that order into a scratch
    network namespace (tools: unshare and nft), or an error_result saying why it could not be replayed."""
    unshare, nft = tools
    argv = [unshare, "--net", "--", "/bin/sh", "-c", REPLAY, "sh", nft] + interfaces(root) + ["--"]
    argv += [os.path.join(root, f.lstrip("/")) for loader in loaders_in_order for f in loader["files"]]
    rc, out, err = run(argv)
    if rc != 0:
        why = "a file of %s does not load" % ", ".join(x["unit"] for x in loaders_in_order) if rc == 3 \
            else "rc %d" % rc
        return nftables.error_result("the boot ruleset could not be replayed in a scratch network namespace "
                                     "(%s): %s" % (why, error_lines(err)))
    return nftables.evaluate_text(out)


POSTURE_KEYS = ("default_deny", "open", "open_any", "input_policy", "input_chains")


def _order_dependence(postures, before):
    """Why the boot ruleset cannot be known when its posture depends on the order of loaders the units leave open
    (``postures``: [(order, posture)], the preferred order first), else None."""
    def key(posture):
        return tuple(repr(posture.get(k)) for k in POSTURE_KEYS)
    distinct = []
    for order, posture in postures:
        if key(posture) not in [key(p) for _o, p in distinct]:
            distinct.append((order, posture))
    if len(distinct) < 2:
        return None
    units = postures[0][0]
    open_pairs = ["%s and %s" % (a, b) for i, a in enumerate(units) for b in units[i + 1:]
                  if (a, b) not in before and (b, a) not in before]
    return ("the boot order of %s cannot be told from their units (no After=/Before= between them, directly or "
            "through sysinit.target, basic.target, multi-user.target) and the boot ruleset depends on it: %s" % (
                "; ".join(open_pairs), "; ".join("%s: %s" % (" then ".join(order), _describe(p)) for order, p in distinct)))


def _describe(posture):
    """A posture in a few words."""
    words = "default-deny" if posture.get("default_deny") else "not default-deny"
    if posture.get("open_any"):
        words += ", %d unbounded accept path(s)" % len(posture["open_any"])
    ports = ", ".join("%s/%s" % (o.get("proto"), o.get("port")) for o in posture.get("open") or [])
    return words + (", open %s" % ports if ports else "")


def error_lines(err):
    """nft's error messages without the lines it quotes from the file (the evidence leaves the guest: a unit
    loading a file that is no ruleset must not send its content), at most 3, else the last line of the output."""
    lines = [line.strip() for line in (err or "").splitlines() if ": Error: " in line or line.startswith("Error: ")]
    if lines:
        return "; ".join(lines[:3])[:500]
    last = (err or "").strip().splitlines()
    return last[-1][:200] if last and ": " in last[-1] and "Error" in last[-1] else "no error message"
