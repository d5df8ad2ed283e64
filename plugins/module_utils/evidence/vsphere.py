# -*- coding: utf-8 -*-
# Copyright: (c) 2026, vmguard.hardening developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""vSphere evidence: every VM of a vCenter read with ONE PropertyCollector retrieval (pyVmomi).

``collect(si)`` returns the evidence the audit evaluates (audit/rules/vsphere.py)::

    {"error": None, "about": {name, full_name, version, api_type, instance_uuid},
     "collected_at": epoch, "retrievals": number of RetrievePropertiesEx/Continue calls,
     "vms": [{"name", "moid", "datacenter", "uuid", "instance_uuid", "template", "power_state", "boot_time",
              "extra_config": {audited key: value},
              "devices": [{"key", "kind", "label", "connected", "start_connected", "backing"}],
              "disks": [{"key", "label", "mode", "file", "key_id": None | {"key_id", "provider"}}],
              "nics": [{"key", "label", "mac", "address_type"}],
              "snapshots": [{"name", "id", "moid", "creation_time", "parent", "current", "memory"}],
              "key_id": None | {"key_id", "provider"},
              "custom_values": {field name: value}, "missing": {property path: fault},
              "error": None | str}]}

A property the PropertyCollector could not read (its ``missingSet``) is never "nothing there": the evidence
fields it feeds (MISSING_FIELDS) are left out, so the rules say "cannot evaluate: ... not collected"; any
other audited property unread makes the VM's ``error``.

Devices of ``kind`` serial, parallel, floppy, cdrom, usb, pci_passthrough are listed (what ISO-08
judges; an SR-IOV NIC, a host PCI function handed to the guest, is pci_passthrough there and a NIC in
``nics``); ``backing`` says what a device is attached to (a host device, a file, a pipe, a network URI).
extraConfig is NOT copied: its guestinfo.* keys (cloud-init userdata, OVF environment, VMware Tools
properties) and others (RemoteDisplay.vnc.password) carry passwords and keys. ``extra_config`` holds only
the advanced settings the vSphere rules read (AUDITED_SETTINGS, keys as vCenter spells them), never another
value; the connection's password stays in the caller. No call per VM: properties of all VMs come from one
RetrievePropertiesEx over a ContainerView (continued while the server pages).
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import calendar
import time

try:
    from pyVmomi import vim, vmodl
    HAS_PYVMOMI = True
except ImportError:  # reported by the module
    vim = vmodl = None
    HAS_PYVMOMI = False

# The VM properties read, all in one retrieval.
VM_PROPERTIES = (
    "name", "config.uuid", "config.instanceUuid", "config.template", "config.extraConfig",
    "config.hardware.device", "config.keyId", "snapshot", "customValue", "runtime.powerState",
    "summary.runtime.bootTime", "parent",
)
# The evidence fields each property feeds: left out when the property is in the object's missingSet.
MISSING_FIELDS = {
    "config.extraConfig": ("extra_config",), "config.hardware.device": ("devices", "disks", "nics"),
    "snapshot": ("snapshots",), "config.keyId": ("key_id",), "customValue": ("custom_values",),
}
# Read in the same retrieval, to name each VM's datacenter (the vmware.vmware modules want it).
CONTAINER_PROPERTIES = ("name", "parent")

DEVICE_KINDS = (
    ("VirtualSerialPort", "serial"),
    ("VirtualParallelPort", "parallel"),
    ("VirtualFloppy", "floppy"),
    ("VirtualCdrom", "cdrom"),
    ("VirtualUSB", "usb"),
    ("VirtualPCIPassthrough", "pci_passthrough"),
)

# The advanced settings (config.extraConfig keys) the vSphere rules read: audit/rules/vsphere.py SETTINGS
# and PENDING_KEY (tests/unit/plugins/module_utils/test_vsphere_evidence.py keeps the two lists equal).
# VMX keys are case-insensitive. No other extraConfig value leaves the module.
AUDITED_SETTINGS = (
    "isolation.tools.copy.disable", "isolation.tools.paste.disable", "isolation.tools.dnd.disable",
    "isolation.tools.diskShrink.disable", "isolation.tools.diskWiper.disable", "isolation.device.connectable.disable",
    "tools.setInfo.sizeLimit", "log.rotateSize", "log.keepOld",
    "RemoteDisplay.maxConnections", "RemoteDisplay.vnc.enabled",
    "vmguard.powerCyclePending",
)
_AUDITED = frozenset(k.lower() for k in AUDITED_SETTINGS)


def epoch(dt):
    """A datetime from pyVmomi (timezone-aware UTC) as seconds since the epoch, or None."""
    if dt is None:
        return None
    if dt.utcoffset() is not None:
        dt = dt.replace(tzinfo=None) - dt.utcoffset()
    return float(calendar.timegm(dt.timetuple())) + dt.microsecond / 1e6


def _device_kind(dev):
    names = [c.__name__.split(".")[-1] for c in type(dev).__mro__]
    for cls, kind in DEVICE_KINDS:
        if cls in names:
            return kind
    return None


def _backing(dev):
    """What a device is attached to, as short text: "<backing type>: <file/device/URI>"."""
    b = getattr(dev, "backing", None)
    if b is None:
        return None
    kind = type(b).__name__.split(".")[-1]
    target = (getattr(b, "deviceName", None) or getattr(b, "fileName", None) or getattr(b, "pipeName", None)
              or getattr(b, "serviceURI", None) or getattr(b, "id", None) or "")
    return "%s: %s" % (kind, target) if target else kind


def _label(dev):
    info = getattr(dev, "deviceInfo", None)
    return (info.label if info is not None and info.label else "device %s" % dev.key)


def devices(device_list):
    """(devices ISO-08 judges, disks, nics) from config.hardware.device."""
    devs, disks, nics = [], [], []
    for dev in device_list or []:
        if isinstance(dev, vim.vm.device.VirtualDisk):
            b = dev.backing
            # The disk's own encryption key: an encrypted VM Home (config.keyId, a vTPM) leaves VMDKs plaintext.
            disks.append({"key": dev.key, "label": _label(dev), "mode": getattr(b, "diskMode", None),
                          "file": getattr(b, "fileName", None), "key_id": _key_id(getattr(b, "keyId", None))})
            continue
        if isinstance(dev, vim.vm.device.VirtualEthernetCard):
            nics.append({"key": dev.key, "label": _label(dev), "mac": (dev.macAddress or "").lower() or None,
                         "address_type": dev.addressType})
            if isinstance(dev, vim.vm.device.VirtualSriovEthernetCard):
                # An SR-IOV NIC hands the guest a host PCI function (a VF): passthrough for ISO-08, and a NIC (MAC).
                devs.append(_device(dev, "pci_passthrough", _sriov_backing(dev)))
            continue
        kind = _device_kind(dev)
        if kind is not None:
            devs.append(_device(dev, kind, _backing(dev)))
    return devs, disks, nics


def _device(dev, kind, backing):
    conn = dev.connectable
    return {
        "key": dev.key, "kind": kind, "label": _label(dev),
        # A PCI passthrough device has no connect switch: it is attached while the VM runs.
        "connected": bool(conn.connected) if conn is not None else True,
        "start_connected": bool(conn.startConnected) if conn is not None else True,
        "backing": backing,
    }


def _sriov_backing(dev):
    """"SriovBackingInfo: <physical function id> <device name>" of an SR-IOV NIC (the host PCI function of its VF)."""
    pf = getattr(getattr(dev, "sriovBacking", None), "physicalFunctionBacking", None)
    target = " ".join(str(x) for x in (getattr(pf, "id", None), getattr(pf, "deviceName", None)) if x)
    return "SriovBackingInfo: %s" % target if target else "SriovBackingInfo"


def snapshots(info):
    """The snapshot tree (config ``snapshot``) flattened, parents before children."""
    out = []
    if info is None:
        return out
    current = info.currentSnapshot._moId if info.currentSnapshot is not None else None

    def walk(nodes, parent):
        for n in nodes or []:
            moid = n.snapshot._moId if n.snapshot is not None else None
            out.append({"name": n.name, "id": n.id, "moid": moid, "creation_time": epoch(n.createTime),
                        "parent": parent, "current": moid is not None and moid == current,
                        "memory": n.state == "poweredOn"})
            walk(n.childSnapshotList, n.name)
    walk(info.rootSnapshotList, None)
    return out


def _extra_config(options):
    """{key: value} of the extraConfig options the rules read (AUDITED_SETTINGS, case-insensitive keys as
    vCenter spells them); every other option, guestinfo.* first of all, is left out with its value."""
    out = {}
    for o in options or []:
        key = getattr(o, "key", None)
        if key is not None and str(key).lower() in _AUDITED:
            out[str(key)] = "" if o.value is None else str(o.value)
    return out


def _key_id(key):
    if key is None:
        return None
    provider = getattr(key, "providerId", None)
    return {"key_id": key.keyId, "provider": provider.id if provider is not None else None}


def datacenter_of(parent, containers):
    """The name of the datacenter above folder ``parent`` (a moid), from {moid: (type, name, parent moid)}."""
    seen = set()
    while parent and parent not in seen:
        seen.add(parent)
        kind, name, up = containers.get(parent, (None, None, None))
        if kind == "Datacenter":
            return name
        parent = up
    return None


def _unread(prop, missing):
    """The fault text when property ``prop`` (or a property containing it, or one inside it) is in ``missing``."""
    for path, fault in sorted(missing.items()):
        if path == prop or prop.startswith(path + ".") or path.startswith(prop + "."):
            return "%s: %s" % (path, fault)
    return None


def vm_evidence(moid, props, fields, containers=None, missing=None):
    """One VM's evidence from its property dict (property path -> value), the custom field names and the
    properties the collector could not read ({path: fault}, its missingSet)."""
    missing = dict(missing or {})
    devs, disks, nics = devices(props.get("config.hardware.device"))
    custom = {}
    for cv in props.get("customValue") or []:
        custom[fields.get(cv.key, "field %s" % cv.key)] = getattr(cv, "value", None)
    out = {
        "name": props.get("name"), "moid": moid,
        "datacenter": datacenter_of(props["parent"]._moId if props.get("parent") is not None else None, containers or {}),
        "uuid": props.get("config.uuid"), "instance_uuid": props.get("config.instanceUuid"),
        "template": bool(props.get("config.template")),
        "power_state": str(props.get("runtime.powerState")) if props.get("runtime.powerState") is not None else None,
        "boot_time": epoch(props.get("summary.runtime.bootTime")),
        "extra_config": _extra_config(props.get("config.extraConfig")),
        "devices": devs, "disks": disks, "nics": nics,
        "snapshots": snapshots(props.get("snapshot")),
        "key_id": _key_id(props.get("config.keyId")),
        "custom_values": custom,
        # An orphaned or inaccessible VM has no configuration: its checks are errors, never passes.
        "error": None if props.get("config.uuid") is not None else "no configuration readable (orphaned or inaccessible VM)",
        "missing": missing,
    }
    for prop, keys in MISSING_FIELDS.items():
        if _unread(prop, missing):
            for key in keys:
                out.pop(key, None)  # unread is not "none": the rules report it not collected
    unread = [_unread(p, missing) for p in VM_PROPERTIES if p not in MISSING_FIELDS and p != "parent"]
    unread = sorted(set(u for u in unread if u))
    if unread and out["error"] is None:
        out["error"] = "cannot read %s" % "; ".join(unread)
    return out


def retrieve(content, specs):
    """{moid: (type name, {path: value})} of every object of the types in ``specs`` ({type: paths})
    under the root folder: one retrieval (RetrievePropertiesEx, then ContinueRetrievePropertiesEx
    while the server pages). Returns (objects, number of calls, {moid: {path: fault}} of the missingSets)."""
    pc = content.propertyCollector
    view = content.viewManager.CreateContainerView(content.rootFolder, list(specs), True)
    try:
        traversal = vmodl.query.PropertyCollector.TraversalSpec(name="view", path="view", skip=False, type=vim.view.ContainerView)
        spec = vmodl.query.PropertyCollector.FilterSpec(
            objectSet=[vmodl.query.PropertyCollector.ObjectSpec(obj=view, skip=True, selectSet=[traversal])],
            propSet=[vmodl.query.PropertyCollector.PropertySpec(type=t, pathSet=list(paths)) for t, paths in specs.items()])
        result = pc.RetrievePropertiesEx([spec], vmodl.query.PropertyCollector.RetrieveOptions())
        calls, out, missing = 1, {}, {}
        while result is not None:
            for oc in result.objects or []:
                props = out.setdefault(oc.obj._moId, (type(oc.obj).__name__.split(".")[-1], {}))[1]
                for p in oc.propSet or []:
                    props[p.name] = p.val
                for m in oc.missingSet or []:
                    missing.setdefault(oc.obj._moId, {})[m.path or "object"] = _fault_text(m.fault)
            if not result.token:
                break
            result = pc.ContinueRetrievePropertiesEx(result.token)
            calls += 1
        return out, calls, missing
    finally:
        view.Destroy()


def _fault_text(fault):
    return str(getattr(fault, "msg", None) or type(fault).__name__.split(".")[-1])


def collect(si):
    """The evidence of every VM of the vCenter (or ESXi host) ``si`` is connected to."""
    content = si.RetrieveContent()
    about = content.about
    fields = dict((f.key, f.name) for f in (content.customFieldsManager.field if content.customFieldsManager else []) or [])
    wanted = {vim.VirtualMachine: VM_PROPERTIES, vim.Folder: CONTAINER_PROPERTIES, vim.Datacenter: CONTAINER_PROPERTIES}
    objects, calls, missing = retrieve(content, wanted)
    containers = dict((moid, (kind, props.get("name"), props["parent"]._moId if props.get("parent") is not None else None))
                      for moid, (kind, props) in objects.items() if kind in ("Folder", "Datacenter"))
    vms = [vm_evidence(moid, props, fields, containers, missing.get(moid))
           for moid, (kind, props) in objects.items() if kind == "VirtualMachine"]
    vms.sort(key=lambda v: (v["name"] or "", v["moid"]))
    return {
        "error": None,
        "about": {"name": about.name, "full_name": about.fullName, "version": about.version,
                  "api_type": about.apiType, "instance_uuid": about.instanceUuid},
        "collected_at": time.time(),
        "retrievals": calls,
        "vms": vms,
    }
