# -*- coding: utf-8 -*-
# Copyright: (c) 2026, vmguard.hardening developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""LEAK: data leakage. "Images are easy to move and copy along with your data." """

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import stat

from ansible_collections.vmguard.hardening.plugins.module_utils.audit.rules import (
    NotCollected, Remediation, rule, check, collected, ok, fail, error, na)
from ansible_collections.vmguard.hardening.plugins.module_utils.common import netutil

rule("LEAK-01", "leakage", "high", "HOST", "disk images and image directories not readable by others",
     "chmod 0600 disk images (libvirt gives them to the QEMU user while running) and 0711 or stricter on image, "
     "save, snapshot and dump directories.",
     remediated_by=Remediation("host_config", "chmod what the rule flags, re-derived at run time: others lose access to images "
                               "and read/write on libvirt's image directories; no symbolic link followed; a shared "
                               "(sticky or world-writable) directory is never chmodded: not enforced"))
rule("LEAK-02", "leakage", "high", "DOM", "VNC/SPICE only on loopback or a local socket",
     "Set the graphics listen address to 127.0.0.1 (or type='socket'/'none'); with require_console_password "
     "also set a password or TLS.",
     remediated_by=Remediation("domain_policy", "VNC/SPICE/RDP listens (address, network, the listen attribute) to 127.0.0.1; "
                               "sockets stay (LEAK-02 fixer); a console password is left to a person"))
rule("LEAK-03", "leakage", "high", "DOM", "SPICE clipboard and file transfer, qemu-vdagent clipboard disabled",
     "Add <clipboard copypaste='no'/> and <filetransfer enable='no'/> to the SPICE graphics; set "
     "<clipboard copypaste='no'/> in the source of qemu-vdagent channels.",
     remediated_by=Remediation("domain_policy", "SPICE <clipboard copypaste='no'/> and <filetransfer enable='no'/>, "
                               "qemu-vdagent <clipboard copypaste='no'/> (LEAK-03 fixer)"))
rule("LEAK-04", "leakage", "medium", "HOST+DOM", "guest RAM kept out of core dumps",
     "Keep dump_guest_core = 0 in qemu.conf and remove dumpCore='on' from <memory>.",
     remediated_by=Remediation("domain_policy", "<memory dumpCore='off'> on the domain (LEAK-04 fixer)"),
     host_remediated_by=Remediation("host_config", "qemu.conf dump_guest_core = 0"))
rule("LEAK-05", "leakage", "medium", "DOM", "confidential VMs use LUKS-encrypted disks",
     "Move the disks of confidential VMs to LUKS-encrypted volumes (<encryption format='luks'>).")
rule("LEAK-06", "leakage", "high", "HOST", "libvirt management plane not exposed",
     "Set listen_tcp = 0 (for remote management use listen_tls with client certificates verified) and "
     "unix_sock_rw_perms = \"0770\" (or stricter) in libvirtd.conf / virtqemud.conf.",
     remediated_by=Remediation("host_config", "listen_tcp = 0, unix_sock_rw_perms = \"0770\" where world-accessible (group "
                               "libvirt where unset), TLS client certificates verified, in every libvirt daemon's "
                               "configuration; the daemon restarts where systemd runs, else the restart is reported pending"))
rule("LEAK-07", "leakage", "low", "DOM", "no host SMBIOS passthrough",
     "Remove <smbios mode='host'/> (it copies the host's serial numbers and identity into the guest).",
     remediated_by=Remediation("domain_policy", "remove <smbios mode='host'/> from <os> (LEAK-07 fixer)"))
rule("LEAK-08", "leakage", "medium", "HOST", "migration TLS forced",
     "Set migrate_tls_force = 1 in qemu.conf (with migration TLS certificates in place).",
     remediated_by=Remediation("host_config", "qemu.conf migrate_tls_force = 1; opt-in: migrations without TLS "
                               "certificates in place fail from then on", opt_in=True))


def _host(hv, key, what):
    """``hv["host"][key]``; NotCollected (the finding is an error naming ``what``) when it was not sent."""
    v = (hv.get("host") or {}).get(key)
    if v is None:
        raise NotCollected("%s not collected" % what)
    return v


def present(evidence, key, what=None):
    """``evidence[key]`` for a field whose None means "absent in the XML" (domxml always sends the key):
    NotCollected when the key itself is missing, so a missing field never reads as the safe default."""
    if key not in evidence:
        raise NotCollected("%s not collected" % (what or key))
    return evidence[key]


def data_class(cls):
    """A declared data class as compared: stripped and lower-cased text, None when unset or blank."""
    if cls is None:
        return None
    return str(cls).strip().lower() or None


def is_confidential(ctx, cls):
    """Whether data class ``cls`` is one of params.leakage.confidential_classes, case-insensitively
    (Confidential, SECRET, " secret "); used by LEAK-05 on libvirt domains and on vCenter VMs."""
    c = data_class(cls)
    return c is not None and c in set(data_class(x) for x in ctx.params["leakage"]["confidential_classes"])


def shared_dir(d):
    """Whether image directory ``d`` (evidence: path, mode) is shared with everyone - sticky or world-writable, as
    /tmp: host_config never chmods it (its other users would break), LEAK-01 names it as not enforced."""
    return bool(d.get("shared") or d["mode"] & (stat.S_ISVTX | stat.S_IWOTH))


@check("LEAK-01", "hypervisor")
def leak01(ctx, hv):
    """Images: every regular file in libvirt's image, save, snapshot and dump directories and directory pools
    (not shared ones), and each domain's disk image and backing file wherever it is (hostscan.scan_images);
    directories: those directories themselves, not one that merely holds a disk."""
    images = _host(hv, "images", "disk image modes")
    dirs = _host(hv, "image_dirs", "image directory modes")
    if not images and not dirs:
        return na("no disk image or image directory found")
    qemu_gid = (hv.get("host") or {}).get("qemu_gid")
    bad, shared = [], []
    for img in images:
        mode = img["mode"]
        if mode & (stat.S_IROTH | stat.S_IWOTH) or (mode & stat.S_IRGRP and img.get("gid") not in (qemu_gid, 0)):
            bad.append("%s %04o" % (img["path"], mode & 0o7777))
    for d in dirs:
        if d["mode"] & (stat.S_IROTH | stat.S_IWOTH):
            bad.append("%s/ %04o" % (d["path"], d["mode"] & 0o7777))
            if shared_dir(d):
                shared.append(d["path"])
    if bad:
        note = "; shared director(ies) %s (sticky or world-writable): never chmodded, not enforced" % (
            ", ".join(sorted(shared))) if shared else ""
        return fail("readable or writable by others: %s%s" % (", ".join(sorted(bad)), note), paths=sorted(bad),
                    shared_dirs=sorted(shared))
    return ok("%d image(s) and %d director(ies) private" % (len(images), len(dirs)))


NETWORK_CONSOLES = ("vnc", "spice", "rdp")
# libvirt's <encryption format=...> of a LUKS disk: luks (qemu), luks2 and luks-any (the librbd engine).
LUKS_FORMATS = ("luks", "luks2", "luks-any")


_is_loopback = netutil.is_loopback


def _listen_problems(gtype, listens, qemu_conf):
    """(problems, notes) of one console's listen elements; raises ValueError when it cannot be resolved."""
    problems, notes = [], []
    for lst in listens:
        ltype = lst.get("type") or "address"
        if ltype in ("socket", "none"):
            continue
        if ltype == "network":
            # Resolves to an address of the libvirt network: not loopback.
            problems.append("%s listens on network %s" % (gtype, lst.get("network") or "?"))
            continue
        if ltype != "address":
            problems.append("%s has a listen of unknown type %s" % (gtype, ltype))
            continue
        addr = lst.get("address")
        if addr is None:
            if qemu_conf is None:
                raise ValueError("%s listen address comes from qemu.conf %s_listen, which was not collected"
                                 % (gtype, gtype))
            addr = qemu_conf.get("%s_listen" % gtype) or "127.0.0.1"
            notes.append("%s listen address %s from qemu.conf %s_listen%s" % (
                gtype, addr, gtype, "" if qemu_conf.get("%s_listen" % gtype) else " (unset: default)"))
        local = _is_loopback(addr)
        if local is None:
            problems.append("%s listens on host name %s, which cannot be proven local" % (gtype, addr))
        elif not local:
            problems.append("%s listens on %s" % (gtype, addr))
    return problems, notes


def _no_password(g):
    """What LEAK-02 says of a console without a password that is not TLS-only (domxml's ``tls``): a SPICE TLS port
    does not protect a console that serves its channels in plain text too (on ``port``, with defaultMode 'any' or
    <channel mode='insecure'>)."""
    if not g.get("tls_port"):
        return "%s has neither a password nor TLS" % g["type"]
    plain = g.get("plain_channels") or []
    return "%s has no password and serves %s in plain text besides TLS port %s (defaultMode %s)" % (
        g["type"], "channel(s) %s" % ", ".join(plain) if plain and g.get("default_mode") == "secure" else "its channels",
        g["tls_port"], g.get("default_mode") or "any")


@check("LEAK-02", "domain")
def leak02(ctx, hd):
    gfx = [g for g in collected(hd[1], "graphics") if g["type"] in NETWORK_CONSOLES]
    if not gfx:
        return na("no VNC, SPICE or RDP console")
    hv = ctx.hypervisors.get(hd[0]) or {}
    qemu_conf = (hv.get("host") or {}).get("qemu_conf")
    if qemu_conf is None and str(hv.get("uri") or "").startswith("test:"):
        qemu_conf = {}  # libvirt's test driver describes no host: libvirt's built-in default applies
    problems, notes, unknown = [], [], []
    for g in gfx:
        # domxml always sends listens; an empty list is legitimately "no listen element": QEMU then uses
        # vnc_listen/spice_listen of qemu.conf (127.0.0.1 by default).
        listens = collected(g, "listens", "listens of the %s console" % g["type"]) or [{"type": "address", "address": None}]
        try:
            p, n = _listen_problems(g["type"], listens, qemu_conf)
        except ValueError as e:
            unknown.append(str(e))
            continue
        problems.extend(p)
        notes.extend(n)
        if not ctx.params["leakage"]["require_console_password"] or g.get("tls"):
            continue
        if all((lst.get("type") or "address") in ("socket", "none") for lst in listens):
            continue
        if g.get("passwd_set") is None:
            unknown.append("cannot tell whether a console password is set on %s" % g["type"])
        elif not g["passwd_set"]:
            problems.append(_no_password(g))
    if problems:
        return fail("; ".join(problems + unknown), problems=problems)
    if unknown:
        return error("; ".join(unknown))
    return ok("%d console(s) reachable only locally%s" % (len(gfx), " (%s)" % "; ".join(notes) if notes else ""))


@check("LEAK-03", "domain")
def leak03(ctx, hd):
    """SPICE clipboard and file transfer (both on by default) and the clipboard a qemu-vdagent channel shares
    with QEMU's own display (VNC): any on fails."""
    spice = [g for g in collected(hd[1], "graphics") if g["type"] == "spice"]
    vdagent = [c for c in collected(hd[1], "channels") if c.get("type") == "qemu-vdagent"]
    if not spice and not vdagent:
        return na("no SPICE console or qemu-vdagent channel")
    on = sorted(set(k for g in spice for k in ("clipboard", "filetransfer") if collected(g, k, "SPICE %s" % k)))
    shared = [c for c in vdagent if present(c, "clipboard", "clipboard of the qemu-vdagent channel")]
    problems = (["SPICE %s enabled (on by default)" % " and ".join(on)] if on else []) + (
        ["qemu-vdagent channel shares the clipboard (<clipboard copypaste='yes'/>)"] if shared else [])
    if problems:
        return fail("; ".join(problems), enabled=on + (["qemu-vdagent clipboard"] if shared else []))
    return ok("; ".join((["SPICE clipboard and file transfer disabled"] if spice else []) +
                        (["qemu-vdagent clipboard off"] if vdagent else [])))


def qemu_conf(hv):
    """``hv["host"]["qemu_conf"]``; NotCollected naming why when it is missing (qemu_conf_error: unreadable, or a
    text libvirt's parser refuses - never read as the defaults)."""
    host = hv.get("host") or {}
    if host.get("qemu_conf") is None:
        why = host.get("qemu_conf_error")
        raise NotCollected("qemu.conf not collected%s" % (": %s" % why if why else ""))
    return host["qemu_conf"]


@check("LEAK-04", "hypervisor")
def leak04_host(ctx, hv):
    qc = qemu_conf(hv)
    if str(qc.get("dump_guest_core", "0")) in ("1", "true"):
        return fail("qemu.conf sets dump_guest_core = 1: QEMU core dumps include guest RAM")
    return ok("dump_guest_core off")


@check("LEAK-04", "domain")
def leak04_dom(ctx, hd):
    dump = present(hd[1], "memory_dump_core", "<memory dumpCore>")  # None: no attribute, libvirt's default (off)
    if dump == "on":
        return fail("<memory dumpCore='on'>: core dumps include this guest's RAM")
    return ok("guest RAM not in core dumps (dumpCore %s)" % (dump or "default off"))


@check("LEAK-05", "domain")
def leak05(ctx, hd):
    """The data class comes from the inventory (vmguard_data_class) or the domain's vmguard metadata,
    compared case-insensitively; only disks and LUNs hold the guest's data (a CD-ROM or floppy image is read-only
    media the guest was given)."""
    hv, d = hd
    cls = ctx.data_class_of_domain(hv, d)
    if data_class(cls) is None:
        collected(d, "metadata", "domain metadata (data class)")  # unset, not unread
    if not is_confidential(ctx, cls):
        return na("data class %s is not confidential" % (str(cls).strip() if data_class(cls) else "unset"))
    drives = collected(d, "disks")
    disks = [x for x in drives if x["device"] in ("disk", "lun")]
    if not disks:
        return na("no disk: confidential VM with no disk or LUN%s" % (
            " (only %s)" % ", ".join(sorted(set(str(x["device"]) for x in drives))) if drives else ""))
    plain = [x.get("target") or x.get("source") for x in disks if x.get("encryption") not in LUKS_FORMATS]
    if plain:
        return fail("confidential VM with unencrypted disk(s): %s" % ", ".join(str(p) for p in plain), disks=plain)
    return ok("all %d disk(s) LUKS-encrypted" % len(disks))


REMOTE_CONFS = ("libvirtd.conf", "virtproxyd.conf")  # the daemons that accept TCP connections read these


def _owner_conf(x):
    """The configuration file (basename) of the daemon holding listener ``x``, or None when unknown."""
    if not isinstance(x, dict):
        return None
    if x.get("config"):
        return str(x["config"]).rstrip("/").rsplit("/", 1)[-1]
    return "%s.conf" % x["daemon"] if x.get("daemon") else None


def _tls_confs(tls, daemons, unread):
    """(configuration names judging the TLS listeners, what is unknown): each listener's daemon's own file; where
    no running daemon holds it (socket activation), every collected libvirtd.conf/virtproxyd.conf."""
    names, unknown = set(), []
    for x in tls:
        own = _owner_conf(x)
        if own is not None:
            if own in daemons:
                names.add(own)
            elif own not in unread:
                unknown.append("%s is %s's, whose configuration %s was not collected"
                               % (_listener(x), x.get("daemon"), own))
            continue
        remote = [n for n in REMOTE_CONFS if n in daemons]
        if remote:
            names.update(remote)
        elif not any(n in unread for n in REMOTE_CONFS):
            unknown.append("no running daemon holds %s and neither %s was collected"
                           % (_listener(x), " nor ".join(REMOTE_CONFS)))
    return sorted(names), unknown


# The unix socket permission settings of a daemon's configuration: (key, libvirt's default, the bits that must be clear,
# who they let in). The read-write socket manages the host (group libvirt by design); the admin socket manages the daemon.
SOCKET_PERMS = (("unix_sock_rw_perms", "0770", 0o007, "world-accessible"),
                ("unix_sock_admin_perms", "0700", 0o077, "not root-only"))


def _perms_problem(name, conf, key, default, bits, what):
    perms = str(conf.get(key, default))
    try:
        return "%s: %s = %s (%s)" % (name, key, perms, what) if int(perms, 8) & bits else None
    except ValueError:
        return "%s: unparsable %s %r" % (name, key, perms)


def _socket_problem(s):
    """Why socket ``s`` (hostscan.sockets) lets others in, or None: a read-write socket world-accessible, an admin
    socket not root-only, a link in a socket's place (not followed: whatever it points to answers there)."""
    if "link" in s:
        return "%s is a symbolic link%s (not followed)" % (s["path"], " to %s" % s["link"] if s["link"] is not None else "")
    if s.get("kind") == "admin" and s["mode"] & 0o077:
        return "%s (admin socket) is not root-only (%04o)" % (s["path"], s["mode"] & 0o7777)
    if s["mode"] & 0o006 and s.get("rw"):
        return "%s is world-accessible (%04o)" % (s["path"], s["mode"] & 0o7777)
    return None


@check("LEAK-06", "hypervisor")
def leak06(ctx, hv):
    """Plain TCP (16509, listen_tcp = 1) exposes the management plane; TLS (16514, listen_tls) with
    client certificates verified is libvirt's safe remote setting and passes. A TLS listener is judged by the
    configuration of the daemon holding it (libvirtd, or virtproxyd with the modular daemons); a configuration
    that cannot be read or parsed is an error, never its defaults."""
    daemons = _host(hv, "daemon_confs", "libvirt daemon configurations")
    sockets = _host(hv, "sockets", "libvirt socket modes")
    listeners = _host(hv, "tcp_listeners", "libvirt TCP listeners")
    unread = dict((hv.get("host") or {}).get("daemon_conf_errors") or {})
    problems, unknown = [], ["%s: %s" % (name, why) for name, why in sorted(unread.items())]
    plain = [x for x in listeners if not (isinstance(x, dict) and x.get("tls") is True)]
    tls = [x for x in listeners if isinstance(x, dict) and x.get("tls") is True]
    judged, missing = _tls_confs(tls, daemons, unread)
    unknown.extend(missing)
    for name, conf in sorted(daemons.items()):
        if str(conf.get("listen_tcp", "0")) == "1":
            problems.append("%s: listen_tcp = 1 (plain TCP)" % name)
            if str(conf.get("auth_tcp", "sasl")) == "none":
                problems.append("%s: auth_tcp = \"none\" (anyone who reaches the port manages the host)" % name)
        if name in judged and str(conf.get("tls_no_verify_certificate", "0")) == "1" and \
                str(conf.get("auth_tls", "none")) == "none":
            problems.append("%s: TLS without client certificate verification or auth_tls" % name)
        problems.extend(p for p in (_perms_problem(name, conf, *spec) for spec in SOCKET_PERMS) if p)
    problems.extend(p for p in (_socket_problem(s) for s in sockets) if p)
    if plain:
        problems.append("libvirt listens on plain TCP: %s" % ", ".join(_listener(x) for x in plain))
    if problems:
        return fail("; ".join(problems + unknown), problems=problems)
    if unknown:
        return error("; ".join(unknown))
    return ok("no plain TCP listener%s; read-write socket not world-accessible" % (
        " (TLS: %s)" % ", ".join(_listener(x) for x in tls) if tls else ""), tls_listeners=[_listener(x) for x in tls])


def _listener(x):
    if not isinstance(x, dict):
        return str(x)
    return x.get("what") or "port %s" % x.get("port")


@check("LEAK-07", "domain")
def leak07(ctx, hd):
    if present(hd[1], "smbios_mode", "<smbios mode>") == "host":  # None: no <smbios> element
        return fail("<smbios mode='host'/> copies the host's identity into the guest")
    return ok("no host SMBIOS passthrough")


@check("LEAK-08", "hypervisor")
def leak08(ctx, hv):
    qc = qemu_conf(hv)
    if str(qc.get("migrate_tls_force", "0")) in ("1", "true"):
        return ok("migrate_tls_force = 1")
    return fail("migrate_tls_force is not set: migrations may carry guest RAM in clear text")
