# -*- coding: utf-8 -*-
# Copyright: (c) 2026, vmguard.hardening developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""ISO: service isolation per VM. "Mail and web in separate VMs: a compromise in one does not
affect the other." One declared service per VM; nothing shared between VMs of different services."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible_collections.vmguard.hardening.plugins.module_utils.rules import rule, check, ok, fail, error, na

rule("ISO-01", "isolation", "high", "enforce", "GUEST", "listening sockets within the service's allow-list",
     "Stop, disable and mask what listens outside the service's ports (plus management).")
rule("ISO-02", "isolation", "high", "audit", "DOM+FLEET", "VMs of different services share no network",
     "Give each service its own network or bridge; only the declared management network may be shared.")
rule("ISO-03", "isolation", "high", "enforce", "DOM", "clean-traffic nwfilter on every service interface",
     "Add <filterref filter='clean-traffic'/> to the interface (no MAC/IP/ARP spoofing).")
rule("ISO-04", "isolation", "critical", "enforce", "HOST+DOM", "sVirt confinement",
     "Set security_driver to apparmor or selinux in qemu.conf on a host with that LSM active, and remove "
     "<seclabel type='none'/> from domains.")
rule("ISO-05", "isolation", "high", "enforce", "HOST", "QEMU not run as root; seccomp sandbox on",
     "Set user/group in qemu.conf to an unprivileged account (Debian: libvirt-qemu) and keep seccomp_sandbox = 1.")
rule("ISO-06", "isolation", "high", "audit", "DOM+FLEET", "no disk shared across services",
     "Give each domain its own disk; within one service mark shared disks readonly or shareable.")
rule("ISO-07", "isolation", "high", "enforce", "DOM", "no host filesystem passthrough unless allow-listed and readonly",
     "Remove the <filesystem> device, or allow-list its source and make it readonly.")
rule("ISO-08", "isolation", "high", "enforce", "DOM", "no hostdev/redirdev unless allow-listed",
     "Remove the <hostdev>/<redirdev> device or allow-list it.")
rule("ISO-09", "isolation", "medium", "audit", "DOM", "no raw QEMU command-line passthrough",
     "Express the configuration in libvirt XML; raw QEMU arguments bypass libvirt's security labelling and checks.")
rule("ISO-10", "isolation", "high", "enforce", "GUEST", "inbound firewall default-deny except service and management",
     "Apply the service's nftables ruleset (input policy drop; accept only the service and management ports).")
rule("ISO-11", "isolation", "medium", "enforce", "DOM", "no shmem/vsock inter-VM channels unless allow-listed",
     "Remove <shmem>/<vsock> devices or allow-list them.")

LOOPBACK_PREFIXES = ("127.", "::1", "::ffff:127.")


def _service_ports(ctx, guest):
    svc = (ctx.guests[guest].get("vars") or {}).get("service")
    services = ctx.params["isolation"]["services"]
    if not svc:
        return None, "the guest declares no vmguard_service"
    if svc not in services:
        return None, "service '%s' is not declared in params.isolation.services" % svc
    return set(services[svc].get("ports") or []) | set(ctx.params["isolation"]["management_ports"]), None


@check("ISO-01", "guest")
def iso01(ctx, guest):
    allowed, err = _service_ports(ctx, guest)
    if err:
        return error(err)
    sockets = ctx.guests[guest]["facts"].get("listening")
    if sockets is None:
        return error("listening sockets not collected")
    clients = set(ctx.params["isolation"]["client_ports"])
    extra = sorted(set("%s/%s %s" % (s["proto"], s["port"], s.get("process") or "?") for s in sockets
                       if not str(s.get("address", "")).startswith(LOOPBACK_PREFIXES) and s["port"] not in allowed
                       and not (s["proto"] == "udp" and s["port"] in clients)))
    if extra:
        return fail("listening outside the allow-list %s: %s" % (sorted(allowed), ", ".join(extra)), extra=extra)
    return ok("all %d non-loopback listener(s) within %s" % (
        len([s for s in sockets if not str(s.get("address", "")).startswith(LOOPBACK_PREFIXES)]), sorted(allowed)))


def _net_key(hv, i, mgmt):
    """Identity of the L2 segment an interface joins, or None when it is not shared by design."""
    if i["type"] == "network" and i.get("network"):
        return None if i["network"] in mgmt else "%s/network:%s" % (hv, i["network"])
    if i["type"] == "bridge" and i.get("bridge"):
        return None if i["bridge"] in mgmt else "%s/bridge:%s" % (hv, i["bridge"])
    if i["type"] == "direct" and i.get("dev"):
        return "%s/direct:%s" % (hv, i["dev"])
    return None  # user (slirp) networking and the like: private to the domain


@check("ISO-02", "domain")
def iso02(ctx, hd):
    hv, d = hd
    mgmt = set(ctx.params["isolation"]["management_networks"])

    def build():
        idx = {}
        for h, dom in ctx.domains():
            svc = ctx.service_of_domain(h, dom) or "undeclared:%s/%s" % (h, dom["name"])
            for i in dom.get("interfaces") or []:
                k = _net_key(h, i, mgmt)
                if k:
                    idx.setdefault(k, {}).setdefault(svc, set()).add("%s/%s" % (h, dom["name"]))
        return idx
    idx = ctx.index("iso02", build)
    mine = ctx.service_of_domain(hv, d) or "undeclared:%s/%s" % (hv, d["name"])
    keys = sorted(set(k for k in (_net_key(hv, i, mgmt) for i in d.get("interfaces") or []) if k))
    if not keys:
        return na("no interface on a shared network (only private or management links)")
    shared = {}
    for k in keys:
        others = sorted(x for svc, doms in idx.get(k, {}).items() if svc != mine for x in doms)
        if others:
            shared[k] = others
    if shared:
        return fail("shares %s with VMs of other services: %s" % (", ".join(sorted(shared)), ", ".join(
            sorted(set(o for v in shared.values() for o in v)))), shared=shared, service=mine)
    return ok("%d network(s), none shared with another service" % len(keys), networks=keys)


@check("ISO-03", "domain")
def iso03(ctx, hd):
    mgmt = set(ctx.params["isolation"]["management_networks"])
    allowed = set(ctx.params["isolation"]["nwfilters"])
    ifaces = [i for i in hd[1].get("interfaces") or [] if _net_key(hd[0], i, mgmt)]
    if not ifaces:
        return na("no service interfaces")
    missing = [i.get("mac") or i.get("network") or i.get("bridge") for i in ifaces if i.get("filterref") not in allowed]
    if missing:
        return fail("interface(s) without an anti-spoofing filter (%s): %s" % ("/".join(sorted(allowed)), ", ".join(
            str(m) for m in missing)), interfaces=missing)
    return ok("%d service interface(s) filtered" % len(ifaces))


@check("ISO-04", "hypervisor")
def iso04_host(ctx, hv):
    host = hv.get("host") or {}
    qc = host.get("qemu_conf")
    if qc is None:
        return error("qemu.conf not collected")
    models = host.get("security_models")
    if models is None:
        return error("libvirt security models not collected")
    lsm = host.get("lsm") or {}
    if qc.get("security_driver") == "none":
        return fail("qemu.conf sets security_driver = \"none\"", security_driver="none")
    confining = [m for m in models if m in ("apparmor", "selinux")]
    if not confining:
        return fail("no sVirt confinement: libvirt offers only %s and the kernel has no active AppArmor or SELinux "
                    "(it cannot be enforced on this host)" % (", ".join(models) or "no security model"),
                    security_models=models, lsm=lsm)
    return ok("guests confined by %s" % ", ".join(confining), security_models=models)


@check("ISO-04", "domain")
def iso04_dom(ctx, hd):
    off = [s for s in hd[1].get("seclabels") or [] if s.get("type") == "none"]
    if off:
        return fail("<seclabel type='none'> disables confinement for this domain")
    return ok("no seclabel disables confinement")


@check("ISO-05", "hypervisor")
def iso05(ctx, hv):
    qc = (hv.get("host") or {}).get("qemu_conf")
    if qc is None:
        return error("qemu.conf not collected")
    problems = []
    user = qc.get("effective_user")
    if user in ("root", "+0", "0"):
        problems.append("QEMU runs as root (user = %s)" % qc.get("user"))
    if str(qc.get("group")) in ("root", "+0", "0"):
        problems.append("QEMU runs with group root")
    if str(qc.get("seccomp_sandbox")) == "0":
        problems.append("seccomp_sandbox = 0")
    if problems:
        return fail("; ".join(problems), user=user, seccomp_sandbox=qc.get("seccomp_sandbox"))
    return ok("QEMU runs as %s, seccomp sandbox %s" % (user, "default (on)" if qc.get("seccomp_sandbox") is None else qc["seccomp_sandbox"]))


@check("ISO-06", "domain")
def iso06(ctx, hd):
    hv, d = hd

    def build():
        idx = {}
        for h, dom in ctx.domains():
            for disk in dom.get("disks") or []:
                if disk.get("source") and disk["device"] in ("disk", "lun"):
                    key = "%s:%s" % (h, disk["source"]) if disk["type"] in ("file", "block", "dir") else disk["source"]
                    idx.setdefault(key, []).append((h, dom, disk))
        return idx
    idx = ctx.index("iso06", build)
    mine = ctx.service_of_domain(hv, d) or "undeclared:%s/%s" % (hv, d["name"])
    problems = []
    disks = [x for x in d.get("disks") or [] if x.get("source") and x["device"] in ("disk", "lun")]
    if not disks:
        return na("no disks with a source")
    for disk in disks:
        key = "%s:%s" % (hv, disk["source"]) if disk["type"] in ("file", "block", "dir") else disk["source"]
        users = [(h, dom, x) for h, dom, x in idx.get(key, []) if not (h == hv and dom["name"] == d["name"])]
        if not users:
            continue
        other_svc = sorted("%s/%s" % (h, dom["name"]) for h, dom, x in users
                           if (ctx.service_of_domain(h, dom) or "undeclared:%s/%s" % (h, dom["name"])) != mine)
        if other_svc:
            problems.append("%s shared with other services: %s" % (disk["source"], ", ".join(other_svc)))
            continue
        unsafe = [u for u in users + [(hv, d, disk)] if not (u[2]["readonly"] or u[2]["shareable"])]
        if unsafe:
            problems.append("%s shared within service %s without readonly/shareable" % (disk["source"], mine))
    if problems:
        return fail("; ".join(problems))
    return ok("%d disk(s), none shared unsafely" % len(disks))


@check("ISO-07", "domain")
def iso07(ctx, hd):
    fss = hd[1].get("filesystems") or []
    if not fss:
        return ok("no host filesystem passthrough")
    allowed = set(ctx.params["isolation"]["allowed_filesystems"])
    bad = ["%s -> %s%s" % (f["source"], f["target"], "" if f["readonly"] else " (writable)") for f in fss
           if f.get("source") not in allowed or not f["readonly"]]
    if bad:
        return fail("host filesystem passthrough: %s" % ", ".join(bad), filesystems=bad)
    return ok("%d allow-listed readonly filesystem(s)" % len(fss))


@check("ISO-08", "domain")
def iso08(ctx, hd):
    d = hd[1]
    allowed = set(ctx.params["isolation"]["allowed_hostdevs"])
    devs = ["hostdev %s %s" % (h.get("type"), h.get("source") or "") for h in d.get("hostdevs") or []
            if (h.get("source") or "") not in allowed] + \
        ["redirdev %s/%s" % (r.get("bus"), r.get("type")) for r in d.get("redirdevs") or []
         if "redirdev:%s" % r.get("bus") not in allowed]
    if devs:
        return fail("%d passed-through device(s): %s" % (len(devs), "; ".join(x.replace("\n", " ") for x in devs)))
    return ok("no host or redirected devices")


@check("ISO-09", "domain")
def iso09(ctx, hd):
    args = hd[1].get("qemu_commandline") or []
    if args:
        return fail("raw QEMU arguments: %s" % " ".join(args), args=args)
    return ok("no QEMU command-line passthrough")


@check("ISO-10", "guest")
def iso10(ctx, guest):
    allowed, err = _service_ports(ctx, guest)
    if err:
        return error(err)
    fw = ctx.guests[guest]["facts"].get("firewall")
    if not fw:
        return error("firewall not collected")
    if fw.get("error"):
        return error("firewall not readable: %s" % fw["error"])
    if fw.get("input_policy") != "drop":
        return fail("inbound policy is %s, not default-deny" % (fw.get("input_policy") or "accept (no input chain)"),
                    input_policy=fw.get("input_policy"))
    extra = sorted(set(fw.get("accepted_ports") or []) - allowed)
    if extra or fw.get("accepts_all"):
        return fail("inbound firewall accepts more than %s: %s" % (sorted(allowed), "all traffic" if fw.get("accepts_all") else extra))
    return ok("inbound default-deny; open: %s" % sorted(fw.get("accepted_ports") or []))


@check("ISO-11", "domain")
def iso11(ctx, hd):
    d = hd[1]
    allowed = set(ctx.params["isolation"]["allowed_shmem"])
    bad = ["shmem %s" % s for s in d.get("shmem") or [] if s not in allowed]
    if d.get("vsock") and not ctx.params["isolation"]["allow_vsock"]:
        bad.append("vsock")
    if bad:
        return fail("inter-VM channel(s): %s" % ", ".join(bad))
    return ok("no shmem or vsock channels")
