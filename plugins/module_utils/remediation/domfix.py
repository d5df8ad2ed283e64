# -*- coding: utf-8 -*-
# Copyright: (c) 2026, vmguard.hardening developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Domain XML remediations, one small function per catalog rule, applied to an lxml tree.

Each fixer edits only the element it owns and leaves everything else (namespaces, metadata,
unknown elements, ordering) as it was; it returns a description of its change, or None when the
domain already complies (so applying it twice changes nothing). New domain-layer remediations
are added here with @fixer("RULE-ID") and become available to the domain_policy module.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

FIXERS = {}


def fixer(rule_id):
    def deco(fn):
        FIXERS[rule_id] = fn
        return fn
    return deco


def _devices(root, etree):
    devices = root.find("devices")
    if devices is None:
        devices = etree.SubElement(root, "devices")
    return devices


@fixer("DIV-09")
def add_virtio_rng(root, etree):
    """DIV-09: a virtio-rng device fed from the host's /dev/urandom."""
    devices = _devices(root, etree)
    if any(r.get("model") == "virtio" for r in devices.findall("rng")):
        return None
    rng = etree.SubElement(devices, "rng", model="virtio")
    backend = etree.SubElement(rng, "backend", model="random")
    backend.text = "/dev/urandom"
    return "added <rng model='virtio'> (/dev/urandom)"


@fixer("RB-01")
def add_genid(root, etree):
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


def apply(xml_text, rule_ids, etree):
    """Apply the fixers for ``rule_ids``. Returns (new XML or None when unchanged, [changes])."""
    parser = etree.XMLParser(remove_blank_text=False)
    root = etree.fromstring(xml_text.encode("utf-8"), parser)
    changes = []
    for rid in rule_ids:
        if rid not in FIXERS:
            raise ValueError("no domain remediation for %s (available: %s)" % (rid, ", ".join(sorted(FIXERS))))
        what = FIXERS[rid](root, etree)
        if what:
            changes.append("%s: %s" % (rid, what))
    if not changes:
        return None, []
    return etree.tostring(root, encoding="unicode"), changes
