# -*- coding: utf-8 -*-
# Copyright: (c) 2026, vmguard.hardening developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Domain XML remediations, one small function per catalog rule, applied to an lxml tree.

Each fixer edits only the elements and attributes it owns and leaves everything else (namespaces,
metadata, unknown elements, ordering) as it was; it returns a description of its change, or None
when the domain already complies (so applying it twice changes nothing). New domain-layer
remediations are added here with @fixer("RULE-ID", param=(kind, default), ...) and become available
to the domain_policy module.

Parameters: a fixer declares the parameters it takes (the audit's plan gives them per domain, from
the policy and the inventory); normalize() checks them and fills in the defaults, which are the
shipped policy's (empty allow-lists: strict). What each fixer owns:

- DIV-09  <rng model='virtio'> (added)            - RB-01  <genid/> (added)
- RB-12   <transient/> of disks (removed)
- ISO-02  the type and <source> (plus <virtualport>, <vlan>: the old switch port) of service interfaces on a
          segment shared with another service (moved to the service's own network)
- ISO-03  <filterref> of service interfaces (network/bridge, not on a management network)
- ISO-04  top-level <seclabel type='none'> / <seclabel model='none'> (removed)
- ISO-06  <disk> whose source is shared with another service (removed; never the boot disk)
- ISO-07  <filesystem> not allow-listed as readonly (removed)
- ISO-08  <hostdev>, <redirdev>, <interface type='hostdev'>, evdev <input>, passthrough <tpm>, type='dev'
          <serial>/<parallel>/<console>/<channel>, <smartcard mode='host'> not allow-listed (removed)
- ISO-11  <shmem> not allow-listed, <vsock> unless allowed (removed)
- LEAK-02 the listen address of VNC/SPICE/RDP consoles (the listen attribute and <listen> elements)
- LEAK-03 SPICE <clipboard copypaste>, <filetransfer enable>; copypaste of a qemu-vdagent channel's <clipboard>
- LEAK-04 <memory dumpCore>                      - LEAK-07 <os><smbios mode='host'/> (removed)
- VIS-05  <metadata><vmguard:domain> and its owner/service/expires (data_class) children
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import datetime
import ipaddress
import posixpath
import xml.etree.ElementTree as ET

from ansible_collections.vmguard.hardening.plugins.module_utils.audit.plan import boot_disk_positions
from ansible_collections.vmguard.hardening.plugins.module_utils.common import netutil, timeutil
from ansible_collections.vmguard.hardening.plugins.module_utils.evidence import domxml

FIXERS = {}
PARAMS = {}  # rule id -> {parameter: (kind, default)}
NEEDS_ONE_OF = {"VIS-05": ("owner", "service", "expires", "data_class")}  # fixers with nothing to do without one of them
REQUIRED = {"ISO-02": "network"}  # fixers that cannot act without this parameter
# Fixers whose change libvirt can also make on a running domain (domain_policy applies them live too):
# an interface's network and its traffic filter (updateDeviceFlags: libvirt re-instantiates the nwfilter
# of a running interface) and a disk's removal (detachDeviceFlags). ISO-03 comes after ISO-02 in the
# registry's order, so a moved interface gets its filter on its new network.
LIVE = ("ISO-02", "ISO-03", "ISO-06")
KINDS = ("list", "bool", "str", "ipv4", "date")


class Refused(object):
    """What a fixer returns when it leaves an item it was given alone on purpose (ISO-06: a boot disk):
    ``change`` (what it did to the rest, or None) and ``reasons`` (why each refused item stays). apply()
    and live_operations() hand the reasons to their caller's ``refused`` list: one refused item never
    stops the rest of the domain's fixes."""

    def __init__(self, change, reasons):
        self.change = change
        self.reasons = list(reasons)


def _outcome(rid, what, refused):
    """The change description of a fixer's return value; its refusals ("RULE-ID: why") go to ``refused``, and
    without a list to take them (a caller that would take a partial fix for a whole one) raise ValueError."""
    if not isinstance(what, Refused):
        return what
    reasons = ["%s: %s" % (rid, r) for r in what.reasons]
    if refused is None:
        raise ValueError("; ".join(reasons))
    refused.extend(r for r in reasons if r not in refused)
    return what.change


def fixer(rule_id, **params):
    """Register ``fn(root, etree, params)`` as the remediation of ``rule_id``, taking ``params``
    (name=(kind, default), kind one of KINDS)."""
    for name, (kind, _default) in params.items():
        if kind not in KINDS:
            raise ValueError("%s: parameter %s has unknown kind %s" % (rule_id, name, kind))

    def deco(fn):
        FIXERS[rule_id] = fn
        PARAMS[rule_id] = params
        return fn
    return deco


# --- parameters ----------------------------------------------------------------------------------

def _param(rid, name, kind, value):
    where = "%s: parameter %s" % (rid, name)
    if kind == "list":
        if not isinstance(value, (list, tuple)) or not all(isinstance(v, str) for v in value):
            raise ValueError("%s must be a list of strings, got %r" % (where, value))
        return list(value)
    if kind == "bool":
        if not isinstance(value, bool):
            raise ValueError("%s must be true or false, got %r" % (where, value))
        return value
    if value is None:
        return None
    if kind == "date" and isinstance(value, datetime.date):
        value = value.isoformat()
    if not isinstance(value, str) or not value.strip():
        raise ValueError("%s must be a non-empty string, got %r" % (where, value))
    value = value.strip()
    if kind == "ipv4":
        try:
            return str(ipaddress.IPv4Address(u"%s" % value))
        except ValueError:
            raise ValueError("%s must be an IPv4 address (clean-traffic's IP parameter), got %r" % (where, value))
    if kind == "date":
        try:
            timeutil.parse_date(value)
        except ValueError:
            raise ValueError("%s must be a date YYYY-MM-DD, got %r" % (where, value))
    return value


def normalize(fixes):
    """[(rule id, parameters with defaults)] for ``fixes``: a list of rule ids (default parameters) or
    a dict {rule id: parameters dict or None}, in sorted rule order. ValueError names the rule id and
    the parameter that is wrong."""
    if isinstance(fixes, dict):
        items = sorted(fixes.items())
    elif isinstance(fixes, (list, tuple)):
        items = [(rid, None) for rid in fixes]
    else:
        raise ValueError("expected a list of rule ids or a dict {rule id: parameters}, got %r" % (fixes,))
    unknown = [str(rid) for rid, _params in items if rid not in FIXERS]
    if unknown:
        raise ValueError("no domain remediation for %s (available: %s)" % (", ".join(unknown), ", ".join(sorted(FIXERS))))
    out = []
    for rid, given in items:
        given = {} if given is None else given
        if not isinstance(given, dict):
            raise ValueError("%s: parameters must be a dict, got %r" % (rid, given))
        spec = PARAMS[rid]
        extra = sorted(str(k) for k in given if k not in spec)
        if extra:
            raise ValueError("%s: unknown parameter(s) %s (known: %s)" % (rid, ", ".join(extra), ", ".join(sorted(spec)) or "none"))
        params = {}
        for name, (kind, default) in spec.items():
            params[name] = _param(rid, name, kind, given[name]) if name in given else (
                list(default) if isinstance(default, list) else default)
        if rid in REQUIRED and not params[REQUIRED[rid]]:
            raise ValueError("%s: parameter %s is required" % (rid, REQUIRED[rid]))
        if rid in NEEDS_ONE_OF and not any(params[k] for k in NEEDS_ONE_OF[rid]):
            raise ValueError("%s: no metadata value given (parameters %s)" % (rid, ", ".join(NEEDS_ONE_OF[rid])))
        out.append((rid, params))
    return out


# --- tree helpers --------------------------------------------------------------------------------

def _devices(root, etree):
    devices = root.find("devices")
    if devices is None:
        devices = etree.SubElement(root, "devices")
    return devices


def _children(root, tag):
    devices = root.find("devices")
    return devices.findall(tag) if devices is not None else []


def _blank(text):
    return text is None or text.strip() == ""


def _append(parent, el):
    """Append ``el`` as the last child of ``parent``, indented like its siblings when they are."""
    kids = list(parent)
    if kids:
        last = kids[-1]
        before = last.getprevious()
        indent = before.tail if before is not None else parent.text
        if _blank(last.tail) and indent is not None and _blank(indent):
            el.tail, last.tail = last.tail, indent
    parent.append(el)
    return el


def _remove_keeping_layout(el):
    """Remove ``el``; the whitespace that followed it becomes what follows its previous sibling, so
    the layout of the rest stays as it was."""
    parent, prev, tail = el.getparent(), el.getprevious(), el.tail
    if prev is not None:
        prev.tail = tail if (tail or "").strip() == "" else (prev.tail or "") + tail
    else:
        parent.text = tail if (tail or "").strip() == "" else (parent.text or "") + tail
    parent.remove(el)


def _mac(el):
    mac = el.find("mac")
    return mac.get("address").lower() if mac is not None and mac.get("address") else None


# --- DIV, RB ---------------------------------------------------------------------------------------

@fixer("DIV-09")
def add_virtio_rng(root, etree, params):
    """DIV-09: a virtio-rng device fed from the host's /dev/urandom."""
    devices = _devices(root, etree)
    if any(r.get("model") == "virtio" for r in devices.findall("rng")):
        return None
    rng = _append(devices, etree.Element("rng", model="virtio"))
    backend = etree.SubElement(rng, "backend", model="random")
    backend.text = "/dev/urandom"
    return "added <rng model='virtio'> (/dev/urandom)"


@fixer("RB-01")
def add_genid(root, etree, params):
    """RB-01: <genid/>; libvirt assigns the value and changes it on every revert or restore."""
    if root.find("genid") is not None:
        return None
    genid = etree.Element("genid")
    anchor = root.find("uuid")
    if anchor is None:
        anchor = root.find("name")
    if anchor is not None:
        anchor.addnext(genid)
    else:
        root.insert(0, genid)
    return "added <genid/>"


@fixer("RB-12")
def remove_transient_disks(root, etree, params):
    """RB-12: drop <transient/> from every disk, so the disk keeps what the guest writes (it no longer
    silently reverts at shutdown). Only the <transient/> element goes; the rest of the disk stays."""
    changed = []
    for n, disk in enumerate(_children(root, "disk"), 1):
        marks = disk.findall("transient")
        if not marks:
            continue
        for el in marks:
            _remove_keeping_layout(el)
        target = disk.find("target")
        source = disk.find("source")
        changed.append((target.get("dev") if target is not None else None)
                       or (source.get("file") or source.get("dev") or source.get("name") if source is not None else None)
                       or "#%d" % n)
    if not changed:
        return None
    return "removed <transient/> from disk(s) %s: they now keep the guest's writes" % ", ".join(changed)


# --- ISO -------------------------------------------------------------------------------------------

# Interfaces without a host tap device: nwfilter (ISO-03's filter) does not apply to them (libvirt filters the
# tap of network, bridge and ethernet interfaces only); the fixers name them and leave them.
NO_TAP = ("direct", "mcast", "udp", "server", "client", "vhostuser", "vdpa")


def _segment(iface, mgmt):
    """(kind, name) of the shared L2 segment a service interface joins, or None (as ISO-03 sees it:
    network and bridge interfaces not on a management network, ethernet ones (a tap the host's scripts
    attach), and those without a tap (NO_TAP: macvtap, sockets, vhost-user, vDPA))."""
    kind = iface.get("type")
    src = iface.find("source")
    if kind == "ethernet":
        tgt = iface.find("target")
        return ("ethernet", (tgt.get("dev") if tgt is not None else None) or _mac(iface) or "?")
    if kind in NO_TAP and kind != "direct":
        where = [src.get(k) for k in ("address", "port", "path", "dev") if src is not None and src.get(k)]
        return (kind, ":".join(where) or _mac(iface) or "?")
    if src is None:
        return None
    if kind == "network" and src.get("network"):
        return None if src.get("network") in mgmt else ("network", src.get("network"))
    if kind == "bridge" and src.get("bridge"):
        return None if src.get("bridge") in mgmt else ("bridge", src.get("bridge"))
    if kind == "direct" and src.get("dev"):
        return ("direct", src.get("dev"))
    return None


def _iface_name(iface, segment, n):
    return "%s (%s %s)" % (_mac(iface) or "#%d" % n, segment[0], segment[1])


def _iface_kind(name):
    """The interface type in an _iface_name."""
    return name.split(" (", 1)[1].split(" ", 1)[0]


def _segment_key(segment):
    return "%s:%s" % segment


@fixer("ISO-02", management_networks=("list", []), network=("str", None), move=("list", []))
def move_to_service_network(root, etree, params):
    """ISO-02: every service interface on one of the segments ``move`` ("network:NAME" or "bridge:NAME":
    what the domain shares with another service, as the planner found it in the fleet) joins the libvirt
    network ``network`` (its service's own): type='network', <source network='...'/>. The old source's
    attributes go (portid, bridge, portgroup belong to the old segment), so do <virtualport> and <vlan>
    (the old switch's port settings, which an isolated Linux-bridge network refuses); the MAC, model,
    filterref, target, address and everything else stay. Interfaces on a management network, on
    ``network`` already, or on a segment not in ``move`` stay; macvtap (type='direct') interfaces are
    left and named (their uplink is a host NIC, not a network this can replace)."""
    mgmt, target, move = set(params["management_networks"]), params["network"], set(params["move"])
    done, direct = [], []
    for n, iface in enumerate(_children(root, "interface"), 1):
        seg = _segment(iface, mgmt)
        if not seg or _segment_key(seg) not in move or seg == ("network", target):
            continue
        if seg[0] not in ("network", "bridge"):
            direct.append(_iface_name(iface, seg, n))
            continue
        src = iface.find("source")
        for key in list(src.attrib):
            del src.attrib[key]
        src.set("network", target)
        iface.set("type", "network")
        dropped = [el.tag for el in iface if el.tag in ("virtualport", "vlan")]
        for el in [el for el in iface if el.tag in ("virtualport", "vlan")]:
            _remove_keeping_layout(el)
        done.append("moved %s from %s %s to network %s%s" % (_mac(iface) or "#%d" % n, seg[0], seg[1], target, (
            " (dropped the old port's %s)" % ", ".join("<%s>" % t for t in dropped)) if dropped else ""))
    if not done:
        return None
    if direct:
        done.append("left interface(s) %s: not a network or bridge this can replace (a host NIC's uplink, a socket, "
                    "a tap set up outside libvirt)" % ", ".join(direct))
    return "; ".join(done)


@fixer("ISO-03", management_networks=("list", []), nwfilters=("list", ["clean-traffic", "clean-traffic-gateway"]),
       filter=("str", "clean-traffic"), ip=("ipv4", None))
def add_clean_traffic(root, etree, params):
    """ISO-03: <filterref filter='clean-traffic'> on every service interface whose filter is not one of
    ``nwfilters`` (a filter that is not allowed is replaced; its parameters stay). ``ip``: the guest's
    service address, given as the filter's IP parameter when the domain has exactly one service
    interface; without it clean-traffic learns the address from the guest's first DHCP/ARP traffic.
    Interfaces without a host tap device (NO_TAP: macvtap, socket, vhost-user, vDPA) are named and left alone:
    nwfilter acts on host tap devices only (network, bridge and ethernet interfaces)."""
    mgmt, allowed, name = set(params["management_networks"]), set(params["nwfilters"]), params["filter"]
    service = [(n, i, s) for n, (i, s) in enumerate(((i, _segment(i, mgmt)) for i in _children(root, "interface")), 1) if s]
    ip = params["ip"] if len(service) == 1 else None
    done, direct = [], []
    for n, iface, seg in service:
        ref = iface.find("filterref")
        if ref is not None and ref.get("filter") in allowed:
            continue
        if seg[0] in NO_TAP:
            direct.append(_iface_name(iface, seg, n))
            continue
        what = "added <filterref filter='%s'>" % name
        if ref is None:
            ref = _append(iface, etree.Element("filterref"))
        else:
            what = "replaced filter '%s' by '%s'" % (ref.get("filter"), name)
        ref.set("filter", name)
        has_ip = any(p.get("name") == "IP" for p in ref.findall("parameter"))
        if ip and not has_ip:
            _append(ref, etree.Element("parameter", name="IP", value=ip))
            what += " with IP %s" % ip
        elif not has_ip:
            what += " (no IP given: clean-traffic learns it from the guest's first DHCP/ARP traffic)"
        done.append("%s on %s" % (what, _iface_name(iface, seg, n)))
    if not done:
        return None
    if params["ip"] and len(service) > 1:
        done.append("IP %s not set: the domain has %d service interfaces" % (params["ip"], len(service)))
    if direct:
        done.append("left interface(s) %s: nwfilter applies to host tap devices only (not to %s)" % (
            ", ".join(direct), "/".join(sorted(set(_iface_kind(d) for d in direct)))))
    return "; ".join(done)


@fixer("ISO-04")
def remove_seclabel_none(root, etree, params):
    """ISO-04: remove the domain's <seclabel type='none'> and <seclabel model='none'>, so libvirt's
    security drivers (AppArmor or SELinux, and DAC) label and confine it again. Unconfined or root
    labels are left for a person to fix (they name a choice); device-level seclabels are not touched."""
    gone = [s for s in root.findall("seclabel") if s.get("type") == "none" or s.get("model") == "none"]
    for s in gone:
        _remove_keeping_layout(s)
    if not gone:
        return None
    return "removed %s: libvirt's security drivers confine the domain again" % ", ".join(
        "<seclabel type='%s'%s>" % (s.get("type") or "dynamic", " model='%s'" % s.get("model") if s.get("model") else "")
        for s in gone)


def _fs_source(fs):
    src = fs.find("source")
    return (src.get("dir") or src.get("name") or src.get("file")) if src is not None else None


def disk_source(disk):
    """How ISO-06 (and its plan) spells a <disk>'s storage: its source as the evidence reads it, a host path
    (file, block, dir) normalised; None without a source."""
    d = domxml._disk(disk)  # pylint: disable=protected-access
    if not d["source"]:
        return None
    return posixpath.normpath(d["source"]) if d["type"] in ("file", "block", "dir") else d["source"]


def boot_disks(root):
    """The <disk> elements a domain may boot from, which ISO-06 never removes: every disk with a <boot
    order>, and the first device='disk'. One definition with the planner's: audit/plan.boot_disk_positions."""
    disks = _children(root, "disk")
    return [disks[i] for i in boot_disk_positions([domxml._disk(d) for d in disks])]  # pylint: disable=protected-access


def _disk_name(disk):
    target = disk.find("target")
    return (target.get("dev") if target is not None else None) or disk_source(disk) or "?"


@fixer("ISO-06", detach=("list", []))
def detach_shared_disks(root, etree, params):
    """ISO-06: remove every disk/lun whose source (disk_source's spelling) is in ``detach``: the storage
    the domain shares with domains of other services. A boot disk (boot_disks) is never removed: asked
    to (the planner lists it under not_enforced, but a caller may name it), the fixer refuses that disk,
    naming it ("give the domain its own image"), and detaches the others."""
    wanted = set(posixpath.normpath(p) if p.startswith("/") else p for p in params["detach"])
    boot = boot_disks(root)
    matched = [d for d in _children(root, "disk")
               if (d.get("device") or "disk") in ("disk", "lun") and disk_source(d) in wanted]
    gone = [d for d in matched if d not in boot]
    refused = ["not detaching boot disk %s (%s): boot disk shared: give the domain its own image" % (
        _disk_name(d), disk_source(d)) for d in matched if d in boot]
    for d in gone:
        _remove_keeping_layout(d)
    what = "detached disk(s) shared with other services: %s" % ", ".join(
        "%s (%s)" % (_disk_name(d), disk_source(d)) for d in gone) if gone else None
    return Refused(what, refused) if refused else what


@fixer("ISO-07", allowed_filesystems=("list", []))
def remove_filesystems(root, etree, params):
    """ISO-07: remove every <filesystem> that is not an allow-listed source mounted readonly."""
    allowed = set(posixpath.normpath(a) for a in params["allowed_filesystems"])
    gone = []
    for fs in _children(root, "filesystem"):
        source = _fs_source(fs)
        readonly = fs.find("readonly") is not None
        if source and posixpath.normpath(source) in allowed and readonly:
            continue
        target = fs.find("target")
        gone.append("%s -> %s%s" % (source, target.get("dir") if target is not None else None, "" if readonly else " (writable)"))
        _remove_keeping_layout(fs)
    if not gone:
        return None
    return "removed host filesystem passthrough %s" % ", ".join(gone)


def _hostdev_source(hostdev, etree):
    """The identity of a <hostdev>'s source as the evidence (and so the allow-list) spells it: the
    source element serialized by xml.etree, as evidence/domxml.py does."""
    src = hostdev.find("source")
    if src is None:
        return ""
    return ET.tostring(ET.fromstring(etree.tostring(src, encoding="unicode", with_tail=False)), encoding="unicode").strip()


def _host_device_key(dev):
    """rules/iso.py host_device_key: a host device's host path normalised, or "<device>:<type>"."""
    return posixpath.normpath(dev["path"]) if dev.get("path") else "%s:%s" % (dev["device"], dev["type"])


@fixer("ISO-08", allowed_hostdevs=("list", []), vf_pool_networks=("list", []))
def remove_passthrough(root, etree, params):
    """ISO-08: remove <hostdev>, <interface type='hostdev'> (SR-IOV), <redirdev> devices and the other host
    devices of domxml.host_device (evdev <input>, passthrough <tpm>, type='dev' <serial>/<parallel>/<console>/
    <channel>, <smartcard mode='host'>) the allow-list does not name (hostdev: its source as the evidence shows
    it; redirdev: "redirdev:<bus>"; the others: their host path, smartcard:host). A console on a removed serial
    port's path goes with it (it is that port). ``vf_pool_networks``: the libvirt networks that are SR-IOV VF pools
    (<forward mode='hostdev'>, not allow-listed as network:<name>; the planner reads them from the hypervisor's
    networks): an <interface type='network'> on one is a host PCI function at start, removed as the SR-IOV
    interface is."""
    allowed = set(posixpath.normpath(a) if a.startswith("/") else a for a in params["allowed_hostdevs"])
    gone = []
    for h in _children(root, "hostdev"):
        source = _hostdev_source(h, etree)
        if source not in allowed:
            gone.append("hostdev %s %s" % (h.get("type"), " ".join(source.split())))
            _remove_keeping_layout(h)
    for i in _children(root, "interface"):
        if i.get("type") == "hostdev":
            # One spelling of a hostdev address for the evidence and the fix.
            source = domxml._hostdev_address(i.find("source"))  # pylint: disable=protected-access
            if not source or source not in allowed:
                gone.append("interface hostdev %s" % (source or "(no source address)"))
                _remove_keeping_layout(i)
        elif i.get("type") == "network" and i.find("source") is not None and \
                i.find("source").get("network") in params["vf_pool_networks"]:
            gone.append("interface network %s (SR-IOV VF pool)" % i.find("source").get("network"))
            _remove_keeping_layout(i)
    for r in _children(root, "redirdev"):
        if "redirdev:%s" % r.get("bus") not in allowed:
            gone.append("redirdev %s/%s" % (r.get("bus"), r.get("type")))
            _remove_keeping_layout(r)
    devices = root.find("devices")
    for el in list(devices) if devices is not None else []:
        dev = domxml.host_device(el)
        if dev and _host_device_key(dev) not in allowed:
            gone.append(" ".join(x for x in (dev["device"], dev["type"], dev["path"]) if x))
            _remove_keeping_layout(el)
    if not gone:
        return None
    return "removed passed-through device(s): %s" % "; ".join(gone)


@fixer("ISO-11", allowed_shmem=("list", []), allow_vsock=("bool", False))
def remove_inter_vm_channels(root, etree, params):
    """ISO-11: remove <shmem> devices not allow-listed (by name) and <vsock> unless allow_vsock."""
    gone = []
    for s in _children(root, "shmem"):
        if s.get("name") not in params["allowed_shmem"]:
            gone.append("shmem %s" % s.get("name"))
            _remove_keeping_layout(s)
    if not params["allow_vsock"]:
        for v in _children(root, "vsock"):
            gone.append("vsock")
            _remove_keeping_layout(v)
    if not gone:
        return None
    return "removed inter-VM channel(s): %s" % ", ".join(gone)


# --- LEAK ------------------------------------------------------------------------------------------

NETWORK_CONSOLES = ("vnc", "spice", "rdp")
LOOPBACK = "127.0.0.1"


def _loopback(address):
    """True for a loopback address in any notation or exactly "localhost" (as LEAK-02 decides)."""
    return netutil.is_loopback(address) is True


def _console_listens(g, etree):
    """Rewrite one console's listens to loopback: (changes). The listen attribute and the first address
    listen must agree (libvirt checks it), so both get the same loopback address."""
    attr = g.get("listen")
    listens = g.findall("listen")
    if not listens and attr is None and g.get("socket") is not None:
        return []  # a local socket
    addr = attr.strip() if attr is not None and _loopback(attr) else LOOPBACK
    changes = []
    if attr is not None and not _loopback(attr):
        g.set("listen", addr)
        changes.append("listen attribute %s -> %s" % (attr, addr))
    for lst in listens:
        kind = lst.get("type") or "address"
        if kind in ("socket", "none") or (kind == "address" and lst.get("address") and _loopback(lst.get("address"))):
            continue
        was = "network %s" % lst.get("network") if kind == "network" else (lst.get("address") or "the qemu.conf default")
        if "network" in lst.attrib:
            del lst.attrib["network"]
        lst.set("type", "address")
        lst.set("address", addr)
        changes.append("<listen> %s -> %s" % (was, addr))
    if not listens and attr is None:
        _append(g, etree.Element("listen", type="address", address=addr))
        changes.append("the qemu.conf default -> <listen> %s" % addr)
    return changes


@fixer("LEAK-02")
def loopback_consoles(root, etree, params):
    """LEAK-02: every VNC/SPICE/RDP console listens on 127.0.0.1 (address and network listens, the
    listen attribute, and consoles that relied on qemu.conf's default); sockets and 'none' stay, as
    do listens already on loopback."""
    done = []
    for g in _children(root, "graphics"):
        if g.get("type") in NETWORK_CONSOLES:
            changes = _console_listens(g, etree)
            if changes:
                done.append("%s console %s" % (g.get("type"), ", ".join(changes)))
    return "; ".join(done) if done else None


@fixer("LEAK-03")
def spice_no_clipboard(root, etree, params):
    """LEAK-03: SPICE <clipboard copypaste='no'/> and <filetransfer enable='no'/> (both default on), and
    copypaste='no' on a qemu-vdagent channel's <source><clipboard copypaste='yes'/> (off unless asked: an
    element saying nothing else stays)."""
    done = []
    for n, g in enumerate((g for g in _children(root, "graphics") if g.get("type") == "spice"), 1):
        for tag, attr in (("clipboard", "copypaste"), ("filetransfer", "enable")):
            el = g.find(tag)
            if el is None:
                _append(g, etree.Element(tag, {attr: "no"}))
            elif el.get(attr) != "no":
                el.set(attr, "no")
            else:
                continue
            done.append("<%s %s='no'>" % (tag, attr) + (" (SPICE #%d)" % n if n > 1 else ""))
    vdagent = []
    for c in _children(root, "channel"):
        clip = c.find("source/clipboard") if c.get("type") == "qemu-vdagent" else None
        if clip is not None and clip.get("copypaste") == "yes":
            clip.set("copypaste", "no")
            vdagent.append(c)
    changes = (["SPICE %s" % ", ".join(done)] if done else []) + (
        ["qemu-vdagent <clipboard copypaste='no'>" + (" (%d channels)" % len(vdagent) if len(vdagent) > 1 else "")]
        if vdagent else [])
    return "set %s" % "; ".join(changes) if changes else None


# libvirt's memory units (virScaleInteger), in bytes.
_DECIMAL = ("KB", "MB", "GB", "TB", "PB", "EB")
_BINARY = (("k", "KiB"), ("M", "MiB"), ("G", "GiB"), ("T", "TiB"), ("P", "PiB"), ("E", "EiB"))
UNITS = dict([("b", 1), ("bytes", 1)] + [(u, 1000 ** n) for n, u in enumerate(_DECIMAL, 1)]
             + [(u, 1024 ** n) for n, us in enumerate(_BINARY, 1) for u in us])


def _numa_total_kib(root):
    """The memory of the domain's NUMA cells in KiB (libvirt's total when <memory> is left out), or None."""
    cells = root.findall("cpu/numa/cell")
    total = 0
    for cell in cells:
        unit = UNITS.get(cell.get("unit") or "KiB")
        try:
            total += int(cell.get("memory")) * unit
        except (TypeError, ValueError):
            return None
    return (total + 1023) // 1024 if cells and total else None


@fixer("LEAK-04")
def memory_dump_core_off(root, etree, params):
    """LEAK-04: <memory dumpCore='off'>, so the guest's RAM stays out of QEMU core dumps whatever qemu.conf says.
    A domain sized by its NUMA cells alone gets <memory> with their total (what libvirt writes itself)."""
    mem = root.find("memory")
    if mem is None:
        total = _numa_total_kib(root)
        if total is None:
            return None
        mem = etree.Element("memory", unit="KiB", dumpCore="off")
        mem.text = str(total)
        anchor = None
        for tag in ("name", "uuid", "genid", "title", "description", "metadata", "maxMemory"):
            anchor = root.find(tag) if root.find(tag) is not None else anchor
        if anchor is not None:
            anchor.addnext(mem)
            mem.tail = anchor.tail
        else:
            root.insert(0, mem)
        return "added <memory unit='KiB' dumpCore='off'>%d</memory> (the total of its NUMA cells)" % total
    if mem.get("dumpCore") == "off":
        return None
    was = mem.get("dumpCore")
    mem.set("dumpCore", "off")
    return "set <memory dumpCore='off'> (was %s)" % ("'%s'" % was if was else "unset: qemu.conf's dump_guest_core")


@fixer("LEAK-07")
def remove_host_smbios(root, etree, params):
    """LEAK-07: remove <smbios mode='host'/> from <os> (the guest no longer sees the host's serial numbers)."""
    os_el = root.find("os")
    gone = [s for s in os_el.findall("smbios") if s.get("mode") == "host"] if os_el is not None else []
    for s in gone:
        _remove_keeping_layout(s)
    return "removed <smbios mode='host'/>: the guest gets emulated SMBIOS" if gone else None


# --- VIS -------------------------------------------------------------------------------------------

METADATA_ORDER = NEEDS_ONE_OF["VIS-05"]


def _metadata(root, etree):
    md = root.find("metadata")
    if md is not None:
        return md
    md = etree.Element("metadata")
    anchor = None
    for tag in ("name", "uuid", "genid", "title", "description"):
        found = root.find(tag)
        if found is not None:
            anchor = found
    if anchor is not None:
        anchor.addnext(md)
        md.tail, anchor.tail = anchor.tail, anchor.tail
    else:
        root.insert(0, md)
    return md


@fixer("VIS-05", owner=("str", None), service=("str", None), expires=("date", None), data_class=("str", None))
def set_metadata(root, etree, params):
    """VIS-05: vmguard metadata (namespace urn:x-vmguard:domain:1): each given value is set on the domain
    (the inventory is the source of truth); keys not given and other metadata stay."""
    wanted = [(k, params[k]) for k in METADATA_ORDER if params.get(k)]  # at least one (normalize checks it)
    ns = domxml.VMGUARD_NS
    md = root.find("metadata")
    vm = md.find("{%s}domain" % ns) if md is not None else None
    current = {}
    for k, _v in wanted:
        el = vm.find("{%s}%s" % (ns, k)) if vm is not None else None
        current[k] = (el.text or "").strip() if el is not None else None
    todo = [(k, v) for k, v in wanted if current[k] != v]
    if not todo:
        return None
    if vm is None:
        vm = _append(_metadata(root, etree), etree.Element("{%s}domain" % ns, nsmap={"vmguard": ns}))
    for k, v in todo:
        el = vm.find("{%s}%s" % (ns, k))
        if el is None:
            el = _append(vm, etree.Element("{%s}%s" % (ns, k)))
        el.text = v
    return "set vmguard metadata %s" % ", ".join(
        "%s=%s" % (k, v) + (" (was %s)" % current[k] if current[k] else "") for k, v in todo)


# --- applying ------------------------------------------------------------------------------------

def apply(xml_text, fixes, etree, refused=None):
    """Apply the fixers for ``fixes`` (a list of rule ids, or a dict {rule id: parameters}; see
    normalize()). Returns (new XML or None when unchanged, ["RULE-ID: change", ...]). An item a fixer
    refuses (Refused) is left as it is and named in ``refused`` ("RULE-ID: why"), the rest is applied;
    without a ``refused`` list, a refusal raises ValueError."""
    steps = normalize(fixes)
    parser = etree.XMLParser(remove_blank_text=False)
    root = etree.fromstring(xml_text.encode("utf-8"), parser)
    changes = []
    for rid, params in steps:
        what = _outcome(rid, FIXERS[rid](root, etree, params), refused)
        if what:
            changes.append("%s: %s" % (rid, what))
    if not changes:
        return None, []
    return etree.tostring(root, encoding="unicode"), changes


def live_operations(xml_text, fixes, etree, refused=None):
    """What makes a running domain's live configuration match the LIVE fixers of ``fixes`` (the others
    are left out): ([(op, device XML, rule id)], ["RULE-ID: change", ...]) from its live XML, op "update"
    (updateDeviceFlags with the device's new XML: an interface's network) or "detach" (detachDeviceFlags
    with the device as it is: a disk). Nothing to do: ([], []). Refusals: as in apply()."""
    steps = [(rid, params) for rid, params in normalize(fixes) if rid in LIVE]
    if not steps:
        return [], []
    root = etree.fromstring(xml_text.encode("utf-8"), etree.XMLParser(remove_blank_text=False))
    devices = root.find("devices")
    before = [(el, etree.tostring(el, encoding="unicode", with_tail=False)) for el in
              (devices if devices is not None else []) if el.tag in ("interface", "disk")]
    changes, ops = [], []
    for rid, params in steps:
        mark = [el.getparent() is not None and etree.tostring(el, encoding="unicode", with_tail=False) for el, _old in before]
        what = _outcome(rid, FIXERS[rid](root, etree, params), refused)
        if not what:
            continue
        changes.append("%s: %s" % (rid, what))
        for (el, old), was in zip(before, mark):
            if was is False:
                continue  # removed by an earlier step
            if el.getparent() is None:
                ops.append(("detach", old, rid))
            elif etree.tostring(el, encoding="unicode", with_tail=False) != was:
                ops.append(("update", etree.tostring(el, encoding="unicode", with_tail=False), rid))
    return ops, changes
