# -*- coding: utf-8 -*-
# Copyright: (c) 2026, vmguard.hardening developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""LEAK: data leakage. "Images are easy to move and copy along with your data." """

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import stat

from ansible_collections.vmguard.hardening.plugins.module_utils.rules import rule, check, ok, fail, error, na

rule("LEAK-01", "leakage", "high", "enforce", "HOST", "disk images and image directories not readable by others",
     "chmod 0600 disk images (libvirt gives them to the QEMU user while running) and 0711 or stricter on image, "
     "save, snapshot and dump directories.")
rule("LEAK-02", "leakage", "high", "enforce", "DOM", "VNC/SPICE only on loopback or a local socket",
     "Set the graphics listen address to 127.0.0.1 (or type='socket'/'none'); with require_console_password "
     "also set a password or TLS.")
rule("LEAK-03", "leakage", "high", "enforce", "DOM", "SPICE clipboard and file transfer disabled",
     "Add <clipboard copypaste='no'/> and <filetransfer enable='no'/> to the SPICE graphics.")
rule("LEAK-04", "leakage", "medium", "enforce", "HOST+DOM", "guest RAM kept out of core dumps",
     "Keep dump_guest_core = 0 in qemu.conf and remove dumpCore='on' from <memory>.")
rule("LEAK-05", "leakage", "medium", "audit", "DOM", "confidential VMs use LUKS-encrypted disks",
     "Move the disks of confidential VMs to LUKS-encrypted volumes (<encryption format='luks'>).")
rule("LEAK-06", "leakage", "high", "enforce", "HOST", "libvirt management plane not exposed",
     "Set listen_tcp = 0 and unix_sock_rw_perms = \"0770\" (or stricter) in libvirtd.conf / virtqemud.conf.")
rule("LEAK-07", "leakage", "low", "enforce", "DOM", "no host SMBIOS passthrough",
     "Remove <smbios mode='host'/> (it copies the host's serial numbers and identity into the guest).")
rule("LEAK-08", "leakage", "medium", "enforce", "HOST", "migration TLS forced",
     "Set migrate_tls_force = 1 in qemu.conf (with migration TLS certificates in place).")

LOOPBACK = ("127.", "::1", "localhost")


def _host(hv, key, what):
    v = (hv.get("host") or {}).get(key)
    if v is None:
        raise ValueError("%s not collected" % what)
    return v


@check("LEAK-01", "hypervisor")
def leak01(ctx, hv):
    images = _host(hv, "images", "disk image modes")
    dirs = _host(hv, "image_dirs", "image directory modes")
    qemu_gid = (hv.get("host") or {}).get("qemu_gid")
    bad = []
    for img in images:
        mode = img["mode"]
        if mode & stat.S_IROTH or (mode & stat.S_IRGRP and img.get("gid") not in (qemu_gid, 0)):
            bad.append("%s %04o" % (img["path"], mode & 0o7777))
    for d in dirs:
        if d["mode"] & stat.S_IROTH:
            bad.append("%s/ %04o" % (d["path"], d["mode"] & 0o7777))
    if bad:
        return fail("readable by others: %s" % ", ".join(sorted(bad)), paths=sorted(bad))
    return ok("%d image(s) and %d director(ies) private" % (len(images), len(dirs)))


def _is_local(listen):
    if listen["type"] in ("socket", "none"):
        return True
    if listen["type"] == "network":
        return False  # resolves to the network's address: not loopback
    addr = listen.get("address")
    return addr is not None and addr.startswith(LOOPBACK)


@check("LEAK-02", "domain")
def leak02(ctx, hd):
    gfx = [g for g in hd[1].get("graphics") or [] if g["type"] in ("vnc", "spice")]
    if not gfx:
        return na("no VNC or SPICE console")
    problems = []
    for g in gfx:
        if not g["listens"]:
            # No listen given: QEMU uses vnc_listen/spice_listen of qemu.conf (127.0.0.1 by default).
            host_default = ((ctx.hypervisors.get(hd[0]) or {}).get("host") or {}).get("qemu_conf") or {}
            addr = host_default.get("%s_listen" % g["type"]) or "127.0.0.1"
            listens = [{"type": "address", "address": addr}]
        else:
            listens = g["listens"]
        for lst in listens:
            if not _is_local(lst):
                problems.append("%s listens on %s" % (g["type"], lst.get("address") or lst.get("network") or "?"))
        if ctx.params["leakage"]["require_console_password"] and not (g["passwd_set"] or g["tls"]):
            if not all(lst["type"] in ("socket", "none") for lst in listens):
                problems.append("%s has neither a password nor TLS" % g["type"])
    if problems:
        return fail("; ".join(problems))
    return ok("%d console(s) reachable only locally" % len(gfx))


@check("LEAK-03", "domain")
def leak03(ctx, hd):
    spice = [g for g in hd[1].get("graphics") or [] if g["type"] == "spice"]
    if not spice:
        return na("no SPICE console")
    on = sorted(set(k for g in spice for k in ("clipboard", "filetransfer") if g[k]))
    if on:
        return fail("SPICE %s enabled (on by default)" % " and ".join(on), enabled=on)
    return ok("SPICE clipboard and file transfer disabled")


@check("LEAK-04", "hypervisor")
def leak04_host(ctx, hv):
    qc = _host(hv, "qemu_conf", "qemu.conf")
    if str(qc.get("dump_guest_core", "0")) in ("1", "true"):
        return fail("qemu.conf sets dump_guest_core = 1: QEMU core dumps include guest RAM")
    return ok("dump_guest_core off")


@check("LEAK-04", "domain")
def leak04_dom(ctx, hd):
    if hd[1].get("memory_dump_core") == "on":
        return fail("<memory dumpCore='on'>: core dumps include this guest's RAM")
    return ok("guest RAM not in core dumps (dumpCore %s)" % (hd[1].get("memory_dump_core") or "default off"))


@check("LEAK-05", "domain")
def leak05(ctx, hd):
    hv, d = hd
    cls = ctx.data_class_of_domain(hv, d)
    if cls not in ctx.params["leakage"]["confidential_classes"]:
        return na("data class %s is not confidential" % (cls or "unset"))
    plain = [x.get("target") or x.get("source") for x in d.get("disks") or []
             if x["device"] == "disk" and x.get("encryption") != "luks"]
    if plain:
        return fail("confidential VM with unencrypted disk(s): %s" % ", ".join(str(p) for p in plain), disks=plain)
    return ok("all disks LUKS-encrypted")


@check("LEAK-06", "hypervisor")
def leak06(ctx, hv):
    host = hv.get("host") or {}
    daemons = host.get("daemon_confs")
    if daemons is None:
        return error("libvirtd/virtqemud configuration not collected")
    problems = []
    for name, conf in sorted(daemons.items()):
        if str(conf.get("listen_tcp", "0")) == "1":
            problems.append("%s: listen_tcp = 1 (plain TCP)" % name)
        perms = str(conf.get("unix_sock_rw_perms", "0770"))
        try:
            if int(perms, 8) & 0o007:
                problems.append("%s: unix_sock_rw_perms = %s (world-accessible)" % (name, perms))
        except ValueError:
            problems.append("%s: unparsable unix_sock_rw_perms %r" % (name, perms))
    for s in host.get("sockets") or []:
        if s["mode"] & 0o006 and s.get("rw"):
            problems.append("%s is world-accessible (%04o)" % (s["path"], s["mode"] & 0o7777))
    if host.get("tcp_listeners"):
        problems.append("libvirt listens on TCP %s" % ", ".join(host["tcp_listeners"]))
    if problems:
        return fail("; ".join(problems))
    return ok("no plain TCP listener; read-write socket not world-accessible")


@check("LEAK-07", "domain")
def leak07(ctx, hd):
    if hd[1].get("smbios_mode") == "host":
        return fail("<smbios mode='host'/> copies the host's identity into the guest")
    return ok("no host SMBIOS passthrough")


@check("LEAK-08", "hypervisor")
def leak08(ctx, hv):
    qc = _host(hv, "qemu_conf", "qemu.conf")
    if str(qc.get("migrate_tls_force", "0")) in ("1", "true"):
        return ok("migrate_tls_force = 1")
    return fail("migrate_tls_force is not set: migrations may carry guest RAM in clear text")
