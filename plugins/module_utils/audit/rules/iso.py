# -*- coding: utf-8 -*-
# Copyright: (c) 2026, vmguard.hardening developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""ISO: service isolation per VM. "Mail and web in separate VMs: a compromise in one does not
affect the other." One declared service per VM; nothing shared between VMs of different services."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import ipaddress
import posixpath

from ansible_collections.vmguard.hardening.plugins.module_utils.audit.rules import (
    NotCollected, Remediation, check, collected, error, fail, na, named, ok, rule)

rule("ISO-01", "isolation", "high", "GUEST", "listening sockets within the service's allow-list",
     "Stop, disable and mask what listens outside the service's ports (plus management).",
     remediated_by=Remediation("service_lockdown", "disable, mask and stop the systemd units (and their triggering sockets) "
                               "whose processes listen outside the service's ports, management and DHCP client ports; never "
                               "the management SSH server nor the units that bring up the guest's network; a listener in no "
                               "unit, or in one of those, is reported as not enforced"))
rule("ISO-02", "isolation", "high", "DOM+FLEET", "VMs of different services share no network",
     "Give each service its own network or bridge; only the declared management network may be shared.",
     remediated_by=Remediation("domain_policy", "move service interfaces on a segment shared with another service to the "
                               "service's own isolated network (params.isolation.service_network, created when missing), "
                               "live on running domains (ISO-02 fixer); a domain already on its own service's network stays, "
                               "management networks and macvtap interfaces are never moved"))
rule("ISO-03", "isolation", "high", "DOM", "clean-traffic nwfilter on every service interface",
     "Add <filterref filter='clean-traffic'/> to the interface (no MAC/IP/ARP spoofing).",
     remediated_by=Remediation("domain_policy", "add <filterref filter='clean-traffic'> to service interfaces, with the guest's "
                               "vmguard_service_address as IP when it has one service interface (ISO-03 fixer); not on macvtap "
                               "(type='direct') interfaces, which nwfilter cannot filter"))
rule("ISO-04", "isolation", "critical", "HOST+DOM", "sVirt confinement",
     "Set security_driver to apparmor or selinux in qemu.conf on a host with that LSM active, and remove "
     "<seclabel type='none'/>, unconfined static labels and root DAC labels (+0:+0) from domains.",
     remediated_by=Remediation("domain_policy", "remove <seclabel type='none'> / model='none' from domains (ISO-04 fixer), only "
                               "on a host with AppArmor or SELinux; unconfined and root labels are left to a person"),
     host_remediated_by=Remediation("host_config", "qemu.conf security_driver \"none\" and security_default_confined "
                                    "= 0 removed (libvirt then uses the active AppArmor or SELinux and confines "
                                    "domains without a <seclabel>); not enforceable on a host without either"))
rule("ISO-05", "isolation", "high", "HOST", "QEMU not run as root; seccomp sandbox on",
     "Set user/group in qemu.conf to an unprivileged account (Debian: libvirt-qemu) and keep seccomp_sandbox = 1.",
     remediated_by=Remediation("host_config", "qemu.conf user/group root replaced by the distribution's QEMU account, "
                               "seccomp_sandbox = 1; QEMU processes already running as root keep running until their domain restarts"))
rule("ISO-06", "isolation", "high", "DOM+FLEET", "no disk shared across services",
     "Give each domain its own disk; within one service mark shared disks readonly or shareable.",
     remediated_by=Remediation("domain_policy", "detach disks shared with domains of another service from every domain "
                               "sharing them, live where the guest releases them (ISO-06 fixer); never the boot disk; "
                               "sharing within one service is left to a person; opt-in: the guest may depend on the disk",
                               opt_in=True))
rule("ISO-07", "isolation", "high", "DOM", "no host filesystem passthrough unless allow-listed and readonly",
     "Remove the <filesystem> device, or allow-list its source and make it readonly.",
     remediated_by=Remediation("domain_policy", "remove <filesystem> devices not allow-listed as readonly (ISO-07 fixer); opt-in: "
                               "removing a device can break the guest's workload", opt_in=True))
rule("ISO-08", "isolation", "high", "DOM", "no host device passthrough unless allow-listed",
     "Remove the <hostdev>/<redirdev> device, <interface type='hostdev'> (SR-IOV), evdev <input>, passthrough <tpm>, "
     "<serial>/<parallel>/<console>/<channel> of type='dev' or <smartcard mode='host'>, or allow-list it.",
     remediated_by=Remediation("domain_policy", "remove <hostdev>, <redirdev>, <interface type='hostdev'>, evdev <input>, "
                               "passthrough <tpm>, type='dev' character devices and <smartcard mode='host'> not "
                               "allow-listed (ISO-08 fixer); opt-in: removing a device can break the guest's workload", opt_in=True))
rule("ISO-09", "isolation", "medium", "DOM", "no raw QEMU passthrough (command line, device overrides, capabilities)",
     "Express the configuration in libvirt XML; raw QEMU arguments, <qemu:override> device properties and "
     "<qemu:capabilities> changes bypass libvirt's security labelling and checks.")
rule("ISO-10", "isolation", "high", "GUEST", "inbound firewall default-deny except service and management",
     "Apply the service's nftables ruleset (input policy drop; accept only the service and management ports).",
     remediated_by=Remediation("guest_firewall", "apply table inet vmguard (input policy drop; the service's ports, TCP "
                               "management, UDP DHCP client ports, ICMP) with confirm-or-revert, persisted on confirmation"))
rule("ISO-11", "isolation", "medium", "DOM", "no shmem/vsock inter-VM channels unless allow-listed, no memory "
     "backing file (nvdimm, virtio-pmem) another domain maps shared",
     "Remove <shmem>/<vsock> devices or allow-list them; give each domain its own memory backing file or private access.",
     remediated_by=Remediation("domain_policy", "remove <shmem> devices not allow-listed and <vsock> unless allowed (ISO-11 fixer); "
                               "opt-in: removing a device can break the guest's workload", opt_in=True))


def _loopback(address):
    """True when ``address`` (an IP literal as the guest's /proc/net shows it) is loopback in any
    notation; a string prefix would take ::1a2b for ::1."""
    try:
        ip = ipaddress.ip_address(u"%s" % str(address).strip("[]"))
    except ValueError:
        return False
    if ip.version == 6 and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_loopback


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
    if not sockets:
        # Not even the SSH server the audit came through: /proc/net was not readable.
        return error("no listening socket read from the guest's /proc/net (not even sshd): evidence incomplete")
    clients = set(ctx.params["isolation"]["client_ports"])
    exposed = [s for s in sockets if not _loopback(s.get("address"))]
    extra = sorted(set("%s/%s %s" % (s["proto"], s["port"], s.get("process") or "?") for s in exposed
                       if s["port"] not in allowed and not (s["proto"] == "udp" and s["port"] in clients)))
    if extra:
        return fail("listening outside the allow-list %s: %s" % (sorted(allowed), ", ".join(extra)), extra=extra)
    return ok("all %d non-loopback listener(s) within %s" % (len(exposed), sorted(allowed)))


# Interface types that join no segment another domain can reach: user-mode (slirp) networking is private to its
# QEMU; an SR-IOV VF (type='hostdev') is a passed-through device, judged by ISO-08 (allowed only by a person's
# allow-list entry): the wire behind a host NIC is not in libvirt's evidence.
PRIVATE_INTERFACES = ("user", "hostdev")
# QEMU's own sockets (hypervisor_facts adds source_address/source_port, local_address/local_port): a segment
# named by address and port, which may reach other hypervisors.
SOCKET_INTERFACES = ("mcast", "udp", "server", "client")
# Interfaces without a host tap device: nwfilter does not apply to them (ISO-03 cannot be enforced there; the
# planner says so). remediation/domfix.py keeps the same tuple (tests/unit/rules/test_plan_isolation.py).
NO_TAP = ("direct",) + SOCKET_INTERFACES + ("vhostuser", "vdpa")
# Interfaces libvirt gives a host tap device (the only ones nwfilter filters), when they do not join a libvirt
# network that hands out something else (_network_kind).
TAP_INTERFACES = ("network", "bridge", "ethernet")
# Forward modes of a libvirt network whose interfaces are macvtap devices on the network's host NICs (when the
# network names no bridge: <forward mode='bridge'><bridge name/> is a host bridge, tap devices on it).
MACVTAP_FORWARDS = ("bridge", "private", "vepa", "passthrough")


def _network_kind(i, nets):
    """What an interface of type='network' becomes when its domain starts: "hostdev" (an SR-IOV VF of a
    <forward mode='hostdev'> pool), "direct" (macvtap on a host NIC), "bridge" (a tap on the network's bridge), or
    None when it cannot be told: the hypervisor's networks were not collected, or the network is not among them.
    An interface whose evidence names its bridge (the live definition) has a tap on that bridge."""
    if i.get("bridge"):
        return "bridge"
    net = (nets or {}).get(i.get("network"))
    if net is None:
        return None
    if net.get("forward") == "hostdev":
        return "hostdev"
    if net.get("forward") in MACVTAP_FORWARDS and not net.get("bridge"):
        return "direct"
    return "bridge"


def _networks(ctx, hv):
    """(the hypervisor's networks {name: {bridge, devs, ...}} or None when not collected, {bridge: [network names]})."""
    def build():
        nets = (ctx.hypervisors.get(hv) or {}).get("networks")
        by_bridge = {}
        for name, net in sorted((nets or {}).items()):
            if (net or {}).get("bridge"):
                by_bridge.setdefault(net["bridge"], []).append(name)
        return nets, by_bridge
    return ctx.index("iso02-networks:%s" % hv, build)


def _local_endpoint(address):
    """True when a socket address reaches the hypervisor only: loopback, the wildcard, or none."""
    if not address or address == "localhost":
        return True
    try:
        ip = ipaddress.ip_address(u"%s" % address.strip("[]"))
    except ValueError:
        return False  # a host name: it may be any host's
    return ip.is_loopback or ip.is_unspecified


def _sent(i, key):
    """A source field hypervisor_facts adds to every socket interface (None when the XML has none); NotCollected
    when the evidence lacks the key (domxml alone does not read it)."""
    if key not in i:
        raise NotCollected("%s of %s interface %s not collected" % (key, i["type"], i.get("mac") or "(no MAC)"))
    return i[key]


def _socket_segment(hv, i):
    """(label, keys) of a socket interface. mcast: the group and port (a multicast group reaches every host on the
    LAN). udp/server/client: each endpoint by protocol and port on this hypervisor and, unless loopback, by port
    fleet-wide: a server listening on the wildcard is reached through any of the host's addresses, which the
    evidence does not list, so an address alone would miss it (two unrelated tunnels on one port number then
    count as one segment: a false fail, never a false pass)."""
    kind = i["type"]
    address, port = _sent(i, "source_address"), _sent(i, "source_port")
    if kind == "mcast":
        return "mcast:%s:%s" % (address, port), ["mcast:%s:%s" % (address, port)]
    proto = "udp" if kind == "udp" else "tcp"
    ends = [(address, port)]
    if kind == "udp":
        ends.append((_sent(i, "local_address"), _sent(i, "local_port")))
    keys = []
    for addr, p in ends:
        keys.append("%s/%s:%s" % (hv, proto, p))
        if addr != "localhost" and not (addr and _loopback(addr)):  # the wildcard (or none) listens on every address
            keys.append("%s:%s" % (proto, p))
    return "%s:%s" % (kind, ",".join("%s:%s" % (a or "*", p) for a, p in ends)), keys


def _segment(hv, i, mgmt, networks):
    """The segment a service interface joins, or None (private, or on a management network):
    {"label": the interface's own spelling ("hv/network:NAME", "hv/bridge:NAME", "hv/direct:DEV": the ISO-02
    fixer's terms, planner contract), "keys": every name of its segment (a network by its bridge and host NICs
    too, a bridge by the networks that use it), "unresolved": "net" (a network whose bridge is unknown because
    the networks were not collected) or "br" (a bridge that cannot be tied to networks), "unknown": why its segment
    cannot be told (an interface set up outside libvirt), or None}.
    ``networks``: _networks() of the hypervisor. Management networks are matched by the network's name and by its
    bridge's."""
    kind, (nets, by_bridge) = i["type"], networks
    seg = dict(label=None, keys=[], unresolved=None, unknown=None)
    if kind in PRIVATE_INTERFACES:
        return None
    if kind == "network" and i.get("network"):
        net = (nets or {}).get(i["network"]) or {}
        bridge = i.get("bridge") or net.get("bridge")  # the live definition names the bridge it got
        devs = [i["dev"]] if i.get("dev") else list(net.get("devs") or [])
        if i["network"] in mgmt or (bridge and (bridge in mgmt or set(by_bridge.get(bridge, ())) & mgmt)):
            return None
        seg["label"] = "%s/network:%s" % (hv, i["network"])
        seg["keys"] = [seg["label"]] + (["%s/bridge:%s" % (hv, bridge)] if bridge else []) + ["%s/direct:%s" % (hv, x) for x in devs]
        if nets is None:
            seg["unresolved"] = "br" if bridge else "net"
    elif kind == "bridge" and i.get("bridge"):
        names = by_bridge.get(i["bridge"], [])
        if i["bridge"] in mgmt or set(names) & mgmt:
            return None
        seg["label"] = "%s/bridge:%s" % (hv, i["bridge"])
        seg["keys"] = [seg["label"]] + ["%s/network:%s" % (hv, n) for n in names]
        seg["unresolved"] = "br" if nets is None else None
    elif kind == "direct" and i.get("dev"):
        seg["label"] = "%s/direct:%s" % (hv, i["dev"])
        seg["keys"] = [seg["label"]]
    elif kind in SOCKET_INTERFACES:
        seg["label"], seg["keys"] = _socket_segment(hv, i)
    else:
        # ethernet (a tap the host's own scripts attach), vhostuser/vdpa (an external switch or device), a network
        # or bridge interface naming none, or a type this rule does not know: not private, not comparable.
        seg["label"] = "%s interface %s" % (kind, i.get("mac") or "")
        seg["unknown"] = "the segment of %s interface %s is set up outside libvirt's evidence" % (kind, i.get("mac") or "(no MAC)")
    return seg


PERSISTENT_LABEL = " (persistent definition)"


def _definitions(dom):
    """(definition, label suffix) of every definition of a domain the fleet indexes hold: the live (or only) one, and
    a running domain's persistent one (hypervisor_facts' ``inactive``), which the next start brings: a disk or network
    it shares is shared then. Its entries say "(persistent definition)" where the live one does not hold the same."""
    yield dom, ""
    if dom.get("inactive"):
        yield dom["inactive"], PERSISTENT_LABEL


def _iso02_index(ctx, mgmt):
    """{"keys": {segment key: {service: {"hv/domain": label}}}, "unresolved": {(hv, "net" or "br"): {service: {...}}}}
    over every domain's definitions (_definitions; the label is "hv/domain", with "(persistent definition)" where
    only that one joins the segment under that service). A definition whose interfaces (or a socket interface's
    addresses) were not collected is left out: its own finding is the error."""
    keys, unresolved = {}, {}
    for h, dom in ctx.domains():
        me, networks = "%s/%s" % (h, dom["name"]), _networks(ctx, h)
        for defn, suffix in _definitions(dom):
            ifaces = defn.get("interfaces")
            if ifaces is None:
                continue
            svc = _service_key(ctx, h, defn)
            for i in ifaces:
                try:
                    seg = _segment(h, i, mgmt, networks)
                except NotCollected:
                    continue
                if not seg or seg["unknown"]:
                    continue
                for k in seg["keys"]:
                    keys.setdefault(k, {}).setdefault(svc, {}).setdefault(me, me + suffix)
                if seg["unresolved"]:
                    unresolved.setdefault((h, seg["unresolved"]), {}).setdefault(svc, {}).setdefault(me, me + suffix)
    return {"keys": keys, "unresolved": unresolved}


def _others(ctx, where, entry, mine, me):
    """The labels of the domains other than ``me`` ("hv/domain") of services other than ``mine`` in the index entry
    ``entry`` (at ``where`` in the index; a domain whose persistent definition declares another service is not its own
    neighbour). The labels of the other services are gathered once per (entry, service) and kept (_service_labels):
    hundreds of domains on one network each take their own labels out of one set, not walk every other one."""
    if not entry:
        return set()
    labels, shared = ctx.index(("iso02:others", where, mine), lambda: _service_labels(entry, mine))
    own = set(doms[me] for svc, doms in entry.items() if svc != mine and me in doms)
    return labels - (own - shared) if own else set(labels)


def _service_labels(entry, mine):
    """(the labels of every domain in ``entry`` of a service other than ``mine``, those of them two domains carry: a
    domain named like another's persistent label must not take that one out with its own)."""
    labels, shared = set(), set()
    for svc, doms in entry.items():
        if svc != mine:
            for label in doms.values():
                if label in labels:
                    shared.add(label)
                labels.add(label)
    return frozenset(labels), frozenset(shared)


@check("ISO-02", "domain")
def iso02(ctx, hd):
    """Fail when a segment of this domain is joined by a domain of another service (by any of its names: a network
    and its bridge are one segment); error when a segment cannot be told (an interface set up outside libvirt) or
    when, the hypervisor's networks not collected, a network of this domain could be a bridge another service
    uses (or the reverse); not applicable with only private or management links."""
    hv, d = hd
    mgmt = set(ctx.params["isolation"]["management_networks"])
    idx = ctx.index("iso02", lambda: _iso02_index(ctx, mgmt))
    mine, me = _service_key(ctx, hv, d), "%s/%s" % (hv, d["name"])
    networks = _networks(ctx, hv)
    segs = [x for x in (_segment(hv, i, mgmt, networks) for i in collected(d, "interfaces")) if x]
    if not segs:
        return na("no interface on a shared network (only private or management links)")
    shared, unknown, ambiguous = {}, [], {}
    for seg in segs:
        if seg["unknown"]:
            unknown.append(seg["unknown"])
            continue
        others = set()
        for k in seg["keys"]:
            others |= _others(ctx, k, idx["keys"].get(k), mine, me)
        if others:
            shared[seg["label"]] = sorted(set(shared.get(seg["label"], [])) | others)
        elif seg["unresolved"]:
            where = (hv, "br" if seg["unresolved"] == "net" else "net")
            maybe = _others(ctx, where, idx["unresolved"].get(where), mine, me)
            if maybe:
                ambiguous[seg["label"]] = sorted(maybe)
    cannot = unknown + ["cannot tell whether %s and the %s of %s are one segment: the hypervisor's networks were not "
                        "collected" % (k, "bridges" if k.split("/", 1)[1].startswith("network:") else "networks", named(v))
                        for k, v in sorted(ambiguous.items())]
    if shared:
        return fail("shares %s with VMs of other services: %s%s" % (", ".join(sorted(shared)), named(
            sorted(set(o for v in shared.values() for o in v))), "; also %s" % "; ".join(cannot) if cannot else ""),
            shared=shared, service=mine)
    if cannot:
        return error("; ".join(cannot), service=mine)
    unknown = _unknown_users(ctx, "interfaces", hv, (hv, d["name"]), any(i["type"] in SOCKET_INTERFACES for i in d["interfaces"]))
    if unknown:  # one of them may join this domain's segment
        return error("%d network(s) shared with no other service's domain read, but the interfaces of %d domain(s) are "
                     "unknown (%s): not proven unshared" % (len(segs), len(unknown), named(unknown)), service=mine,
                     not_collected=len(unknown))
    return ok("%d network(s), none shared with another service" % len(segs), networks=sorted(k for s in segs for k in s["keys"]))


@check("ISO-03", "domain")
def iso03(ctx, hd):
    """Every service interface (any not private and not on a management network: socket, macvtap and ethernet
    interfaces too) must carry an allowed anti-spoofing filter, on a host tap device nwfilter can act on: a filterref
    on an interface without one filters nothing (fail), one on an interface whose kind cannot be told is an error."""
    mgmt = set(ctx.params["isolation"]["management_networks"])
    allowed = set(ctx.params["isolation"]["nwfilters"])
    networks = _networks(ctx, hd[0])
    ifaces = [i for i in collected(hd[1], "interfaces") if _service_iface(hd[0], i, mgmt, networks)]
    if not ifaces:
        return na("no service interfaces")
    missing = [_iface_name(i) for i in ifaces if i.get("filterref") not in allowed]
    untapped, unknown = _unfilterable([i for i in ifaces if i.get("filterref") in allowed], networks[0])
    problems = (["interface(s) without an anti-spoofing filter (%s): %s" % ("/".join(sorted(allowed)), ", ".join(
        str(m) for m in missing))] if missing else []) + [why for name, why in untapped]
    if problems:
        return fail("; ".join(problems + unknown), interfaces=missing + [name for name, why in untapped])
    if unknown:
        return error("; ".join(unknown))
    return ok("%d service interface(s) filtered" % len(ifaces))


def _iface_name(i):
    """An interface as ISO-03 names it: its MAC, else what it joins, else its type."""
    return i.get("mac") or i.get("network") or i.get("bridge") or "%s interface" % i["type"]


def _tap_kind(i, nets):
    """"tap" when nwfilter applies to interface ``i`` (it gets a host tap device), else the kind it has instead
    (direct, hostdev, a socket type, vhostuser, vdpa; a network interface's per _network_kind), or None when that
    cannot be told (a network interface without the hypervisor's networks, a type this rule does not know)."""
    kind = _network_kind(i, nets) if i["type"] == "network" else i["type"]
    if kind in TAP_INTERFACES:
        return "tap"
    if kind in NO_TAP or kind == "hostdev":
        return kind
    return None


def _unfilterable(filtered, nets):
    """([(interface, why)] of the ``filtered`` interfaces (those carrying an allowed filter) nwfilter cannot act on,
    [why] of those it cannot be told for). nwfilter acts on host tap devices only, so a filterref on a macvtap, socket,
    vhost-user, vDPA or SR-IOV interface filters nothing (remediation/domfix.py add_clean_traffic says so too)."""
    fails, unknown = [], []
    for i in filtered:
        kind = _tap_kind(i, nets)
        if kind == "tap":
            continue
        if kind is None and i["type"] == "network":
            unknown.append("cannot tell whether interface %s on network %s gets a host tap device, which anti-spoofing "
                           "filters need: the hypervisor's networks were not collected or do not define it"
                           % (_iface_name(i), i.get("network")))
        elif kind is None:
            unknown.append("cannot tell whether anti-spoofing filter '%s' can be applied to interface %s of type '%s'"
                           % (i["filterref"], _iface_name(i), i["type"]))
        else:
            what = "type='%s'" % kind if i["type"] != "network" else "network %s gives it %s" % (i["network"], kind)
            fails.append((_iface_name(i), "anti-spoofing filter '%s' cannot be applied to interface %s (%s): nwfilter "
                          "acts on host tap devices only" % (i["filterref"], _iface_name(i), what)))
    return fails, unknown


def _service_iface(hv, i, mgmt, networks):
    """Whether ISO-03 judges interface ``i``: ISO-02's segment without the addresses (a socket interface whose
    addresses were not collected is still a service interface)."""
    if i["type"] in SOCKET_INTERFACES:
        return True
    return _segment(hv, i, mgmt, networks) is not None


def _net_key(hv, i, mgmt):
    """The planner's test of a service interface (plan._iso03_params): ISO-03's, without the hypervisor's networks
    (management is then matched by the names the interface spells). Its segment's label, or None."""
    if i["type"] in SOCKET_INTERFACES:
        return "%s interface" % i["type"]
    seg = _segment(hv, i, mgmt, (None, {}))
    return seg["label"] if seg else None


@check("ISO-04", "hypervisor")
def iso04_host(ctx, hv):
    """qemu.conf must not take confinement away: security_driver "none" (no sVirt at all) or
    security_default_confined = 0 (a domain without a <seclabel> runs unconfined: libvirt's default is 1)."""
    host = hv.get("host") or {}
    qc = host.get("qemu_conf")
    if qc is None:
        why = host.get("qemu_conf_error")
        return error("qemu.conf not collected%s" % (": %s" % why if why else ""))
    models = host.get("security_models")
    if models is None:
        return error("libvirt security models not collected")
    lsm = host.get("lsm") or {}
    drivers = qc.get("security_driver")
    drivers = drivers if isinstance(drivers, list) else [drivers] if drivers is not None else []
    problems = []
    if any(str(x).strip().lower() == "none" for x in drivers):
        problems.append("qemu.conf sets security_driver = \"none\"")
    confined = qc.get("security_default_confined")
    if confined is not None and str(confined).strip() != "1":
        problems.append("qemu.conf sets security_default_confined = %s: domains without a <seclabel> run unconfined"
                        % (confined if not isinstance(confined, list) else "a list"))
    if problems:
        return fail("; ".join(problems), security_driver=qc.get("security_driver"),
                    security_default_confined=confined)
    confining = [m for m in models if m in ("apparmor", "selinux")]
    if not confining:
        return fail("no sVirt confinement: libvirt offers only %s and the kernel has no active AppArmor or SELinux "
                    "(it cannot be enforced on this host)" % (", ".join(models) or "no security model"),
                    security_models=models, lsm=lsm)
    return ok("guests confined by %s" % ", ".join(confining), security_models=models)


def _root_dac(label):
    """True when a DAC label "user:group" names root as the user or the group (+0, 0 or root)."""
    parts = [p.strip() for p in (label or "").split(":")]
    return any(p in ("root", "0", "+0") for p in parts)


def _seclabel_problem(s):
    """Why one <seclabel> takes confinement away, or None. A dynamic label's <baselabel> is judged as its label:
    libvirt generates the process label from it (its SELinux type), so an unconfined or root baselabel runs QEMU
    that way though the definition names no <label> (a shut-off domain's never does)."""
    model = s.get("model")
    if s.get("type") == "none" or model == "none":
        return "<seclabel type='none'> disables confinement"
    problems = [p for p in (_label_problem(s, model, key, s.get(key)) for key in ("label", "baselabel")) if p]
    return "; ".join(problems) or None


def _label_problem(s, model, what, label):
    """Why one label of a <seclabel> (``what``: label or baselabel) takes confinement away, or None."""
    if model in ("selinux", "apparmor") and label and "unconfined" in label:
        return "%s %s %s is unconfined" % (model, what, label)
    if model == "dac" and _root_dac(label):
        return "DAC %s %s runs QEMU as root%s" % (what, label, " (relabel='no')" if s.get("relabel") == "no" else "")
    return None


@check("ISO-04", "domain")
def iso04_dom(ctx, hd):
    labels = hd[1].get("seclabels")
    if labels is None:
        return error("seclabels not collected")
    problems = sorted(set(p for p in (_seclabel_problem(s) for s in labels) if p))
    if problems:
        return fail("; ".join(problems) + " for this domain", problems=problems)
    return ok("no seclabel disables confinement" + (" (%s)" % ", ".join(
        "%s %s" % (s.get("model") or "default", s.get("type")) for s in labels) if labels else ""))


ROOT = ("root", "0", "+0")


def _qemu_user(host, qc):
    """(users QEMU runs as, source) - from the running processes' real uid, else the configuration."""
    procs = host.get("qemu_processes")
    if procs:
        users = sorted(set("root" if p.get("uid") == 0 else str(p.get("user") or "uid %s" % p.get("uid")) for p in procs))
        return users, "running QEMU processes"
    if qc.get("user"):
        return [str(qc["user"])], "qemu.conf user"
    default = (qc.get("qemu_user_default") or {}).get("user")
    if default:
        return [default], "distribution default (no QEMU running)"
    return None, None


@check("ISO-05", "hypervisor")
def iso05(ctx, hv):
    """Decided from the real uid of running QEMU processes; with none running, from qemu.conf's user or
    the distribution's built-in default. Group root and a disabled seccomp sandbox fail too."""
    host = hv.get("host") or {}
    qc = host.get("qemu_conf")
    if qc is None:
        return error("qemu.conf not collected")
    if host.get("qemu_processes") is None:
        return error("QEMU processes not collected")
    users, source = _qemu_user(host, qc)
    unknown = None if users is not None else (
        "cannot tell which user QEMU runs as: no QEMU running, qemu.conf sets no user and the distribution's "
        "default is unknown")
    users = users or []
    problems = []
    if any(u in ROOT for u in users):
        problems.append("QEMU runs as root (%s)" % source)
    elif len(users) > 1:
        problems.append("QEMU runs as several users (%s): %s" % (source, ", ".join(users)))
    if source == "running QEMU processes" and str(qc.get("user")).strip() in ROOT:
        problems.append("qemu.conf sets user = %s: domains started from now on run as root" % qc["user"])
    group = qc.get("group")
    if group is None and not qc.get("user"):
        group = (qc.get("qemu_user_default") or {}).get("group")
    if str(group).strip() in ROOT:
        problems.append("QEMU runs with group root")
    if str(qc.get("seccomp_sandbox")).strip() == "0":
        problems.append("seccomp_sandbox = 0")
    evidence = dict(users=users, source=source, group=group, seccomp_sandbox=qc.get("seccomp_sandbox"))
    if problems:
        return fail("; ".join(problems + ([unknown] if unknown else [])), **evidence)
    if unknown:
        return error(unknown, **evidence)
    return ok("QEMU runs as %s (%s), seccomp sandbox %s" % (", ".join(users), source, "default (on)" if qc.get(
        "seccomp_sandbox") is None else qc["seccomp_sandbox"]), **evidence)


# Network disk protocols whose source name is the same image whichever host serves it: a Ceph pool/image
# (monitors listed in any order or subset), an iSCSI target's IQN and LUN, a Gluster or Sheepdog volume. They are
# compared by protocol and name, fleet-wide (two clusters with one pool/image name then count as one disk: a false
# fail, never a false pass). Other protocols (nbd, http(s), ftp(s), tftp, ssh, nfs) name a path or export on a
# server: compared by protocol, hosts and name.
CLUSTER_PROTOCOLS = ("rbd", "iscsi", "gluster", "sheepdog", "vxhs")


# Protocols libvirt hands to QEMU as a URL (qemuBlockStorageSourceGetURI): a path with or without its leading slash
# is one URL path.
URL_PROTOCOLS = ("http", "https", "ftp", "ftps", "tftp")


def _source_name(protocol, name):
    """A network disk's source name in the one spelling libvirt gives QEMU for it, where two spellings are certainly
    the same storage: a URL path with its leading slash; an iSCSI target with its LUN (libvirt splits "IQN/LUN" at
    the first slash, LUN 0 when none is given, the number read in decimal). Every other name is compared as written
    (an NBD export name, an ssh or nfs path are sent verbatim: "/export" and "export" may be two exports)."""
    name = name or ""
    if protocol in URL_PROTOCOLS and name and not name.startswith("/"):
        return "/" + name
    if protocol == "iscsi" and name:
        target, sep, lun = name.partition("/")
        if not sep:
            return "%s/0" % target
        if lun.isdigit():
            return "%s/%d" % (target, int(lun))
    return name


def _network_disk_key(hv, protocol, name, hosts):
    """The hosts are domxml.network_host's: one spelling per server (its port, IP literal and name case)."""
    name = _source_name(protocol, name)
    if protocol in CLUSTER_PROTOCOLS or hosts is None:
        # hosts None: evidence without them (domxml alone): every server of the protocol and name is one disk.
        return "%s:%s" % (protocol, name)
    ids = sorted(("%s/%s" % (hv, h)) if h.startswith("unix:") or _local_endpoint(h.rsplit(":", 1)[0]) else h
                 for h in hosts)
    return "%s://%s/%s" % (protocol, ",".join(ids), name)


def _disk_key(hv, disk):
    """Identity of a disk's storage (ISO-06 and the planner): a host-local path by what it is on its hypervisor when
    the evidence says (hypervisor_facts' source_id: the device number of a block device, the inode of anything
    else, so /dev/disk/by-id/X and /dev/sdb, /dev/vg/lv and /dev/mapper/vg-lv, a file and a link to it are one),
    else by the path normalised per hypervisor (a volume by the path its pool resolved it to: the same file as a
    file disk naming it); network sources by protocol (hosts) and name. A volume not resolved keeps its
    pool/volume name on its hypervisor (its finding is an error)."""
    kind = disk["type"]
    if disk.get("source_id"):
        return "%s:%s" % (hv, disk["source_id"])
    if kind in ("file", "block", "dir"):
        return "%s:%s" % (hv, posixpath.normpath(disk["source"]))
    if kind == "volume":
        path = disk.get("volume_path")
        if not path:
            return "%s:volume:%s" % (hv, disk["source"])
        if disk.get("volume_type") in ("network", "netdir"):  # an rbd pool's volume path is pool/image
            return _network_disk_key(hv, disk.get("volume_pool_type") or "network", path, None)
        return "%s:%s" % (hv, posixpath.normpath(path))
    if kind == "network" and "protocol" in disk:
        return _network_disk_key(hv, disk["protocol"], disk.get("name"), disk.get("hosts"))
    return disk["source"]


def _unresolved(disk):
    """Why ISO-06 cannot tell which storage a volume disk is, or None; NotCollected when the evidence lacks its path."""
    if disk["type"] != "volume":
        return None
    if disk.get("volume_error"):
        return disk["volume_error"]
    if "volume_path" not in disk:
        raise NotCollected("path of volume disk %s (%s) not collected" % (disk.get("target") or "?", disk["source"]))
    return None if disk["volume_path"] else "volume %s resolved to no path" % disk["source"]


def _attached(disks):
    """The disks ISO-06 compares: disks and LUNs with a source."""
    return [x for x in disks if x.get("source") and x["device"] in ("disk", "lun")]


def _service_key(ctx, hv, dom):
    return ctx.service_of_domain(hv, dom) or "undeclared:%s/%s" % (hv, dom["name"])


def _iso06_index(ctx):
    """Disk key -> {"labels": {service: [((hv, domain), "hv/domain"), ...]}, "users": {(hv, domain): attachments},
    "unsafe": {(hv, domain): attachments neither readonly nor shareable}}, built once per run over every domain's
    definitions (_definitions): each domain is then judged from its own disks' entries, never by walking every other
    user of a disk (the corpus has one disk path in hundreds of domains: that walk was quadratic). A persistent
    definition adds its labels ("hv/domain (persistent definition)") only for disks the live one does not attach
    under the same service. A definition whose disks were not collected is left out: its own finding is the error."""
    idx = {}
    for h, dom in ctx.domains():
        me, live = (h, dom["name"]), set()
        for defn, suffix in _definitions(dom):
            svc = _service_key(ctx, h, defn)
            for disk in _attached(defn.get("disks") or []):
                key = _disk_key(h, disk)
                e = idx.get(key)
                if e is None:
                    e = idx[key] = {"labels": {}, "users": {}, "unsafe": {}}
                if not suffix:
                    live.add((key, svc))
                if not suffix or (key, svc) not in live:
                    e["labels"].setdefault(svc, []).append((me, "%s/%s%s" % (h, dom["name"], suffix)))
                e["users"][me] = e["users"].get(me, 0) + 1
                if not (disk["readonly"] or disk["shareable"]):
                    e["unsafe"][me] = e["unsafe"].get(me, 0) + 1
    return idx


@check("ISO-06", "domain")
def iso06(ctx, hd):
    """Fail when a disk's storage is attached by a domain of another service, or shared within the service without
    readonly/shareable; error (never pass) when a volume disk could not be resolved to its storage."""
    hv, d = hd
    idx = ctx.index("iso06", lambda: _iso06_index(ctx))
    disks = _attached(collected(d, "disks"))
    if not disks:
        return na("no disks with a source")
    mine, me = _service_key(ctx, hv, d), (hv, d["name"])
    problems, unresolved = [], [why for why in (_unresolved(x) for x in disks) if why]
    shared, unsafe = {}, []  # disk -> the domains of other services attaching it; disks shared unsafely within
    for disk in disks:
        e = idx.get(_disk_key(hv, disk))
        if e is None or len(e["users"]) == (me in e["users"]):  # nobody else attaches it
            continue
        other_svc = sorted(label for svc, labels in e["labels"].items() if svc != mine for who, label in labels if who != me)
        if other_svc:
            problems.append("%s shared with other services: %s" % (_disk_name(disk), named(other_svc)))
            shared[_disk_name(disk)] = other_svc
            continue
        # Within the service: every other domain's attachments of it, and this one, must be readonly or shareable.
        if len(e["unsafe"]) > (me in e["unsafe"]) or not (disk["readonly"] or disk["shareable"]):
            problems.append("%s shared within service %s without readonly/shareable" % (_disk_name(disk), mine))
            unsafe.append(_disk_name(disk))
    if problems:
        return fail("; ".join(problems + (["also cannot compare: %s" % "; ".join(unresolved)] if unresolved else [])),
                    shared=shared, unsafe_within_service=unsafe, service=mine)
    if unresolved:
        return error("cannot tell which storage %d disk(s) use: %s" % (len(unresolved), "; ".join(unresolved)))
    unknown = _unknown_users(ctx, "disks", hv, me, any(x["type"] == "network" for x in disks))
    if unknown:  # one of them may attach this domain's disk
        return error("%d disk(s) attached by no other service's domain read, but the disks of %d domain(s) are unknown "
                     "(%s): not proven unshared" % (len(disks), len(unknown), named(unknown)), not_collected=len(unknown))
    return ok("%d disk(s), none shared unsafely" % len(disks))


def _unknown_users(ctx, field, hv, me, cross_host):
    """The domains ("hv/name"; "hv/*" for all of a hypervisor's) that may share what domain ``me`` on ``hv`` holds in
    ``field`` (disks, interfaces, memory_files) unseen: the domains of ``hv`` whose ``field`` was not read and, when
    ``cross_host`` (a network disk, a QEMU socket: reachable from every hypervisor), those of the other hypervisors
    and every unreachable hypervisor's. Their own findings are the errors; this domain's pass is not proven."""
    local, unreachable = ctx.index("iso:unread:" + field, lambda: _unread(ctx, field))
    out = [x for x in local.get(hv, ()) if x != "%s/%s" % me]
    if cross_host:
        out.extend(x for h, xs in sorted(local.items()) if h != hv for x in xs)
        out.extend("%s/*" % h for h in unreachable)
    return out


def _unread(ctx, field):
    """({hypervisor: [its domains whose ``field`` was not read]}, [the hypervisors whose domains are unknown])."""
    local, unreachable = {}, []
    for h, ev in sorted(ctx.hypervisors.items()):
        if ev.get("error") or ev.get("domains") is None:
            unreachable.append(h)
            continue
        for dom in ev["domains"]:
            if dom.get("error") or any(defn.get(field) is None for defn, _suffix in _definitions(dom)):
                local.setdefault(h, []).append("%s/%s" % (h, dom.get("name")))
    return local, unreachable


def _disk_name(disk):
    """The disk as the finding names it: its source, and for a volume the path it resolved to."""
    if disk["type"] == "volume" and disk.get("volume_path"):
        return "%s (%s)" % (disk["source"], disk["volume_path"])
    return disk["source"]


@check("ISO-07", "domain")
def iso07(ctx, hd):
    fss = collected(hd[1], "filesystems")
    if not fss:
        return ok("no host filesystem passthrough")
    allowed = set(posixpath.normpath(a) for a in ctx.params["isolation"]["allowed_filesystems"])
    bad = ["%s -> %s%s" % (f["source"], f["target"], "" if f["readonly"] else " (writable)") for f in fss
           if not f.get("source") or posixpath.normpath(f["source"]) not in allowed or not f["readonly"]]
    if bad:
        return fail("host filesystem passthrough: %s" % ", ".join(bad), filesystems=bad)
    return ok("%d allow-listed readonly filesystem(s)" % len(fss))


def host_device_key(dev):
    """How params.isolation.allowed_hostdevs names one of a domain's host_devices (evdev input, passthrough TPM,
    type='dev' character devices, host smartcard): its host path, normalised, or "<device>:<type>" for one without
    (smartcard:host). remediation/domfix.py spells it the same (tests/unit/plugins/module_utils/test_domfix.py)."""
    return posixpath.normpath(dev["path"]) if dev.get("path") else "%s:%s" % (dev.get("device"), dev.get("type"))


def allowed_hostdev_keys(allowed):
    """params.isolation.allowed_hostdevs as ISO-08 compares them: paths normalised, every other entry (a hostdev
    source, an SR-IOV address, redirdev:<bus>, smartcard:host) as written."""
    return set(posixpath.normpath(a) if a.startswith("/") else a for a in allowed)


def _host_device_name(h):
    if h.get("device") == "smartcard":
        return "smartcard host (the host's card reader)"
    return "%s %s %s" % (h.get("device"), h.get("type"), h.get("path") or "(no path)")


@check("ISO-08", "domain")
def iso08(ctx, hd):
    """Every device that hands the host's hardware to the guest fails unless allow-listed: <hostdev>, SR-IOV
    interfaces, <redirdev> and host_devices (evdev input, passthrough TPM, host character devices, host smartcard)."""
    hv, d = hd
    allowed = allowed_hostdev_keys(ctx.params["isolation"]["allowed_hostdevs"])
    pools, unknown = _vf_pool_interfaces(collected(d, "interfaces"), _networks(ctx, hv)[0], allowed)
    devs = ["hostdev %s %s" % (h.get("type"), h.get("source") or "") for h in collected(d, "hostdevs")
            if (h.get("source") or "") not in allowed] + \
        ["interface hostdev %s" % (i.get("hostdev_source") or "(no source address)") for i in collected(d, "interfaces")
         if i.get("type") == "hostdev" and (not i.get("hostdev_source") or i["hostdev_source"] not in allowed)] + \
        pools + \
        ["redirdev %s/%s" % (r.get("bus"), r.get("type")) for r in collected(d, "redirdevs")
         if "redirdev:%s" % r.get("bus") not in allowed] + \
        [_host_device_name(h) for h in collected(d, "host_devices") if host_device_key(h) not in allowed]
    if devs:
        return fail("%d passed-through device(s): %s" % (len(devs), "; ".join(x.replace("\n", " ") for x in devs + unknown)),
                    devices=[x.replace("\n", " ") for x in devs])
    if unknown:
        return error("; ".join(unknown))
    return ok("no host, SR-IOV, redirected, evdev, TPM, character or smartcard device passed through outside the allow-list")


def _vf_pool_interfaces(ifaces, nets, allowed):
    """(devices, unknowns) of the interfaces of type='network' on an SR-IOV VF pool (<forward mode='hostdev'>): at
    start libvirt hands the guest one of the pool's host PCI functions, as <interface type='hostdev'>. A pool is
    allow-listed as "network:<name>". Without the hypervisor's networks (or with a network they do not define) such
    an interface cannot be told from one on a bridge: an unknown, never a pass."""
    devs, unknown = [], []
    for i in ifaces:
        if i.get("type") != "network" or "network:%s" % i.get("network") in allowed:
            continue
        kind = _network_kind(i, nets)
        if kind == "hostdev":
            devs.append("interface network %s (SR-IOV VF pool: <forward mode='hostdev'>)" % i.get("network"))
        elif kind is None:
            unknown.append("cannot tell whether network %s of interface %s hands the guest a host PCI device (an "
                           "SR-IOV VF pool): the hypervisor's networks were not collected or do not define it"
                           % (i.get("network"), _iface_name(i)))
    return devs, unknown


def _override_name(o):
    """One <qemu:override> property as ISO-09 names it: "net0 vhost=false (bool)", "net0 (no property)"."""
    if o.get("property") is None:
        return "%s (no property)" % o.get("alias")
    value = "" if o.get("type") == "remove" else "=%s" % o.get("value")
    return "%s %s%s (%s)" % (o.get("alias"), o["property"], value, o.get("type"))


@check("ISO-09", "domain")
def iso09(ctx, hd):
    """Fail on any raw QEMU passthrough: <qemu:commandline> arguments and environment, <qemu:override> device
    properties and <qemu:capabilities> changes (all bypass libvirt's checks)."""
    args = collected(hd[1], "qemu_commandline")
    env = ["%s=%s" % (e.get("name"), e.get("value")) for e in collected(hd[1], "qemu_env")]
    overrides = [_override_name(o) for o in collected(hd[1], "qemu_override")]
    caps = ["%s %s" % (c.get("action"), c.get("capability")) for c in collected(hd[1], "qemu_capabilities")]
    if args or env or overrides or caps:
        return fail("raw QEMU %s" % "; ".join(
            (["arguments: %s" % " ".join(str(a) for a in args)] if args else []) +
            (["environment: %s" % " ".join(env)] if env else []) +
            (["device property overrides: %s" % ", ".join(overrides)] if overrides else []) +
            (["capability changes: %s" % ", ".join(caps)] if caps else [])),
            args=args, env=env, overrides=overrides, capabilities=caps)
    return ok("no QEMU command-line, device property or capability passthrough")


@check("ISO-10", "guest")
def iso10(ctx, guest):
    dummy, err = _service_ports(ctx, guest)
    if err:
        return error(err)
    facts = ctx.guests[guest]["facts"]
    fw, boot = facts.get("firewall"), facts.get("firewall_boot")
    why = _unjudgeable("firewall", fw)
    if why:
        return error(why)
    live, live_extra = _fw_problems(ctx, guest, fw)
    problems = ["inbound firewall " + "; ".join(live)] if live else []
    detail = dict(open_any=fw["open_any"], extra=live_extra, default_deny=fw["default_deny"])
    why = _unjudgeable("boot firewall (firewall_boot)", boot)
    if why:  # a live failure stays a failure (and is remediated); a live pass cannot vouch for the boot
        if problems:
            return fail("; ".join(problems + ["the ruleset loaded at boot cannot be judged: " + why]), **detail)
        return error(why)
    at_boot, boot_extra = _fw_problems(ctx, guest, boot)
    if at_boot:  # a reboot, or a revert to a snapshot taken before it was persisted, brings this back
        problems.append("the ruleset loaded at boot by %s %s" % (_boot_loaders(boot), "; ".join(at_boot)))
    if problems:
        return fail("; ".join(problems), boot_open_any=boot["open_any"], boot_extra=boot_extra,
                    boot_default_deny=boot["default_deny"], boot_loaders=boot.get("loaders") or [], **detail)
    units = ", ".join(x["unit"] for x in boot.get("loaders") or [] if not x.get("skipped"))
    return ok("inbound default-deny, live and at boot (loaded by %s); open: %s" % (
        units, ", ".join(_fw_port(o) for o in fw["open"]) or "nothing"), boot_loaders=boot.get("loaders") or [])


def _boot_loaders(boot):
    """The units (and files) the boot loads, those it skips with the reason, or that nothing loads a ruleset."""
    loaded = ["%s (%s)" % (x["unit"], ", ".join(x["files"])) if not x.get("skipped")
              else "%s (skipped: %s)" % (x["unit"], x["skipped"]) for x in boot.get("loaders") or []]
    return ", ".join(loaded) if loaded else "nothing: no enabled unit loads an nft file"


def _unjudgeable(what, fw):
    """Why the firewall evidence ``fw`` (live or at boot) cannot be judged, or None."""
    if not fw:
        return "%s not collected (by an older guest_facts?)" % what
    if fw.get("error"):
        return "%s not readable: %s" % (what, fw["error"])
    missing = [k for k in ("default_deny", "open", "open_any") if fw.get(k) is None]
    if missing:
        return "%s evidence lacks %s (collected by an older guest_facts?)" % (what, ", ".join(missing))
    return None


def _fw_problems(ctx, guest, fw):
    """(problems, extra ports) of one ruleset's posture against the guest's service, management and DHCP."""
    problems = []
    if fw["open_any"]:
        problems.append("accepts inbound traffic not bounded to a port: %s" % "; ".join(fw["open_any"]))
    elif not fw["default_deny"]:
        problems.append("is not default-deny (a port no rule mentions is accepted)")
    # Management is TCP (SSH; guest_firewall opens it over TCP only); DHCP client replies (UDP client_ports, as for
    # ISO-01) reach a client, not a service. The service's ports count over both.
    iso = ctx.params["isolation"]
    service = set(_declared_ports(ctx, guest))
    by_proto = {"tcp": service | set(iso["management_ports"]), "udp": service | set(iso["client_ports"])}
    extra = [_fw_port(o) for o in fw["open"] if o.get("port") not in by_proto.get(o.get("proto"), ())]
    if extra:
        problems.append("opens ports outside TCP %s, UDP %s: %s" % (
            sorted(by_proto["tcp"]), sorted(by_proto["udp"]), ", ".join(extra)))
    return problems, extra


def _declared_ports(ctx, guest):
    """The ports of the guest's declared service (_service_ports checked that it is declared)."""
    svc = ctx.guests[guest]["vars"]["service"]
    return ctx.params["isolation"]["services"][svc].get("ports") or []


def _fw_port(o):
    return "%s/%s from %s" % (o.get("proto"), o.get("port"), o.get("from"))


@check("ISO-11", "domain")
def iso11(ctx, hd):
    hv, d = hd
    allowed = set(ctx.params["isolation"]["allowed_shmem"])
    bad = ["shmem %s" % s for s in collected(d, "shmem") if s not in allowed]
    if collected(d, "vsock") and not ctx.params["isolation"]["allow_vsock"]:
        bad.append("vsock")
    shared, shared_with = _shared_memory_files(ctx, hv, d)
    if bad or shared:
        return fail("inter-VM channel(s): %s" % ", ".join(bad + shared), channels=bad, shared_memory=shared,
                    shared_memory_with=shared_with)
    return ok("no shmem or vsock channels, no memory backing file shared with another domain")


def _iso11_index(ctx):
    """(hv, normalised path) -> [((hv, domain), "hv/domain", with "(persistent definition)" where only that one maps
    it)] of every nvdimm/virtio-pmem backing file mapped with shared access, over every domain's definitions."""
    idx = {}
    for h, dom in ctx.domains():
        seen = set()
        for defn, suffix in _definitions(dom):
            for m in defn.get("memory_files") or []:
                key = (h, posixpath.normpath(m["path"]))
                if m.get("access") == "shared" and key not in seen:
                    seen.add(key)
                    idx.setdefault(key, []).append(((h, dom["name"]), "%s/%s%s" % (h, dom["name"], suffix)))
    return idx


def _shared_memory_files(ctx, hv, d):
    """(what the finding says of each, {path: every other domain mapping it}) of the shared-access memory backing files of
    domain ``d`` (a definition) that another domain maps shared too: writes of one guest are read by the other, an
    inter-VM channel as <shmem> is."""
    mine = [m for m in collected(d, "memory_files") if m.get("access") == "shared"]
    if not mine:
        return [], {}
    idx, me = ctx.index("iso11", lambda: _iso11_index(ctx)), (hv, d["name"])
    out, by_path = [], {}
    for m in mine:
        others = [label for who, label in idx.get((hv, posixpath.normpath(m["path"])), ()) if who != me]
        if others:
            out.append("%s %s shared with %s" % (m["model"], m["path"], named(others)))
            by_path[m["path"]] = others
    return out, by_path
