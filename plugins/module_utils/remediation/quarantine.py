# -*- coding: utf-8 -*-
# Copyright: (c) 2026, vmguard.hardening developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Quarantine of a domain's network links (RB-11): link state down on every <interface> that is
not on a management network, in the live and in the persistent definition.

The XML helpers are pure (standard library ElementTree, no libvirt): ``interfaces`` reads a
domain's interfaces, ``is_management`` and ``select`` choose the ones to quarantine, ``link_xml``
gives the <interface> element with its <link state=...> set and every other element (mac,
source, model, filterref, target, alias, address...) kept, as libvirt's updateDeviceFlags wants
it (this is what ``virsh domif-setlink`` does). ``set_links`` applies them to a libvirt domain,
the live definition first (that is what ends the exposure), then the persistent one; it never
tries an interface libvirt cannot update (NOT_UPDATABLE: hostdev) and names it, and with
``keep_going`` one refused update does not stop the others.

Standard library only (Python 3.6+), so the revert watcher runs with Debian's python3-libvirt alone.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import copy
import xml.etree.ElementTree as ET

UP, DOWN = "up", "down"
# Interface types whose link state libvirt cannot change: qemuDomainChangeNet refuses any change to a
# type='hostdev' (SR-IOV VF passthrough) interface ("cannot change config of 'hostdev' network type"). They are
# skipped and named (set_links' "skipped"), never tried: like NO_TAP for ISO-03, known in advance.
NOT_UPDATABLE = {"hostdev": "a hostdev (SR-IOV) interface: libvirt cannot change its link state; detach the device "
                            "or take the host's VF down to isolate it"}
# virDomainXMLFlags / virDomainModificationImpact values (libvirt's ABI; given here so that the pure
# part needs no libvirt import)
XML_INACTIVE = 2
AFFECT_LIVE = 1
AFFECT_CONFIG = 2


def _source(el):
    src = el.find("source")
    return {} if src is None else dict(src.attrib)


def interfaces(domain_xml):
    """The <interface> elements of a domain's XML as dicts: mac, type, network, bridge, link
    (C(up) when there is no <link>), element (the ElementTree element)."""
    root = ET.fromstring(domain_xml)
    out = []
    for el in root.findall("./devices/interface"):
        mac = el.find("mac")
        link = el.find("link")
        src = _source(el)
        out.append(dict(mac=(mac.get("address") or "").lower() if mac is not None else None,
                        type=el.get("type"), network=src.get("network"), bridge=src.get("bridge"),
                        link=(link.get("state") or UP) if link is not None else UP, element=el))
    return out


def is_management(iface, mgmt_networks):
    """True for an interface on a management network: a libvirt network named in ``mgmt_networks``,
    or a host bridge named there (a bridge interface, or a network's bridge in the live XML)."""
    mgmt = set(mgmt_networks or [])
    if iface.get("type") == "network" and iface.get("network") in mgmt:
        return True
    return iface.get("type") in ("network", "bridge") and iface.get("bridge") in mgmt


def select(domain_xml, mgmt_networks, macs=None):
    """(interfaces to act on, interfaces that cannot be acted on: no MAC address).

    ``macs`` None: every interface not on a management network; else exactly those MAC addresses
    (a lift acts on the interfaces the ledger recorded, wherever they are)."""
    wanted = None if macs is None else set(m.lower() for m in macs)
    chosen, unusable = [], []
    for i in interfaces(domain_xml):
        if wanted is None and is_management(i, mgmt_networks):
            continue
        if not i["mac"]:
            unusable.append(i)
        elif wanted is None or i["mac"] in wanted:
            chosen.append(i)
    return chosen, unusable


def link_xml(element, state):
    """The interface element as XML text with <link state='``state``'/>, everything else kept."""
    if state not in (UP, DOWN):
        raise ValueError("link state must be up or down, not %r" % (state,))
    el = copy.deepcopy(element)
    el.tail = None
    link = el.find("link")
    if link is None:
        link = ET.SubElement(el, "link")
    link.set("state", state)
    return ET.tostring(el, encoding="unicode")


def plan(domain_xml, mgmt_networks, state, macs=None):
    """(list of (mac, interface XML) whose link is not yet ``state``, list of every chosen mac,
    list of interfaces without a MAC address that cannot be updated)."""
    chosen, unusable = select(domain_xml, mgmt_networks, macs)
    todo = [(i["mac"], link_xml(i["element"], state)) for i in chosen if i["link"] != state]
    return todo, [i["mac"] for i in chosen], unusable


def set_links(dom, mgmt_networks, state, live, config, macs=None, check=False, keep_going=None):
    """Set the link state of a libvirt domain's chosen interfaces (see ``select``), live first, then
    in the persistent definition. Returns {"live": [macs changed], "config": [...], "chosen":
    {"live": [...], "config": [...]}, "scopes": [definitions acted on], "skipped": [...], "failed": [...]};
    ``check`` changes nothing and reports what would change.

    An interface libvirt cannot update (NOT_UPDATABLE: hostdev) is never tried nor chosen, and one without a MAC
    address cannot be named in an update (when ``macs`` is None): both are listed in "skipped"
    ({"mac", "type", "scope", "reason"}). Errors: without ``keep_going`` the first libvirt error is raised (the
    caller decides what it means); with ``keep_going`` (the exception class to tolerate, libvirt.libvirtError)
    a failed update is listed in "failed" ({"mac", "type", "scope", "reason"}) and the other interfaces are still
    done - one interface libvirt refuses must not leave the others up. A failed interface stays chosen."""
    out = {"live": [], "config": [], "chosen": {"live": [], "config": []}, "scopes": [], "skipped": [],
           "failed": []}
    scopes = (("live", live, 0, AFFECT_LIVE), ("config", config, XML_INACTIVE, AFFECT_CONFIG))
    caught = keep_going or ()  # nothing is caught without keep_going
    for scope, wanted, xml_flags, affect in scopes:
        if not wanted:
            continue
        out["scopes"].append(scope)
        chosen, unusable = select(dom.XMLDesc(xml_flags), mgmt_networks, macs)
        if macs is None:
            out["skipped"] += [_named(i, scope, "no MAC address: an update cannot name it") for i in unusable]
        out["skipped"] += [_named(i, scope, NOT_UPDATABLE[i["type"]]) for i in chosen if i["type"] in NOT_UPDATABLE]
        chosen = [i for i in chosen if i["type"] not in NOT_UPDATABLE]
        out["chosen"][scope] = [i["mac"] for i in chosen]
        for i in chosen:
            if i["link"] == state:
                continue
            if not check:
                try:
                    dom.updateDeviceFlags(link_xml(i["element"], state), affect)
                except caught as e:
                    out["failed"].append(_named(i, scope, "libvirt refused: %s" % (_message(e))))
                    continue
            out[scope].append(i["mac"])
    return out


def _named(iface, scope, reason):
    return {"mac": iface["mac"], "type": iface["type"], "scope": scope, "reason": reason}


def _message(e):
    get = getattr(e, "get_error_message", None)
    return (get() if get else None) or str(e)


SCOPES = ("live", "config")
# What a revert or a restore puts back from the snapshot or the save file: the link states of those
# definitions are the reverted-to ones afterwards, whatever a quarantine did to them before.
REPLACED_BY = {"revert": SCOPES, "restore": ("live",)}


def held_links(quarantine):
    """{mac: set of scopes} the quarantine (a ledger quarantine value, or None) took down. A quarantine recorded
    before links were (vmguard.hardening < 0.2.4) names only its interfaces: each counts in both definitions."""
    if not quarantine:
        return {}
    if quarantine.get("links") is None:
        return dict((m, set(SCOPES)) for m in quarantine.get("interfaces") or [])
    return dict((m, set(s)) for m, s in quarantine["links"].items())


def taken_down(quarantine, changed, replaced=(), started=False):
    """{mac: sorted scopes} a quarantine holds down after an action: those it held (``quarantine``), less the
    ``replaced`` scopes (a new revert or restore put back their link states: REPLACED_BY), plus what the action
    ``changed`` from up to down ({"live": [mac], "config": [mac]}, set_links' result). ``started``: the domain
    started with the quarantine's persistent definition, so its live links are the quarantine's doing too.
    A link that was already down (an operator's, or the reverted-to definition's) is never counted: a lift
    must not bring it up."""
    out = dict((m, set(s) - set(replaced)) for m, s in held_links(quarantine).items())
    if started:
        for scopes in out.values():
            if "config" in scopes:
                scopes.add("live")
    for scope in SCOPES:
        for mac in changed.get(scope) or ():
            out.setdefault(mac, set()).add(scope)
    return dict((m, [s for s in SCOPES if s in scopes]) for m, scopes in sorted(out.items()) if scopes)


def link_states(dom, macs, live, config):
    """{mac: {"live": state or None, "config": state or None}} of the given MAC addresses (None:
    not in that definition, or that definition not asked for)."""
    out = dict((m.lower(), {"live": None, "config": None}) for m in macs)
    for scope, wanted, xml_flags in (("live", live, 0), ("config", config, XML_INACTIVE)):
        if not wanted:
            continue
        for i in interfaces(dom.XMLDesc(xml_flags)):
            if i["mac"] in out:
                out[i["mac"]][scope] = i["link"]
    return out
