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


def _remove_keeping_layout(el):
    """Remove ``el``; the whitespace that followed it becomes what follows its previous sibling, so
    the layout of the rest stays as it was."""
    parent, prev, tail = el.getparent(), el.getprevious(), el.tail
    if prev is not None:
        prev.tail = tail if (tail or "").strip() == "" else (prev.tail or "") + tail
    else:
        parent.text = tail if (tail or "").strip() == "" else (parent.text or "") + tail
    parent.remove(el)


@fixer("RB-12")
def remove_transient_disks(root, etree):
    """RB-12: drop <transient/> from every disk, so the disk keeps what the guest writes (it no longer
    silently reverts at shutdown). Only the <transient/> element goes; the rest of the disk stays."""
    devices = root.find("devices")
    changed = []
    for n, disk in enumerate(devices.findall("disk") if devices is not None else [], 1):
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
