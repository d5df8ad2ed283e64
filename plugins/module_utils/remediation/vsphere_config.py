# -*- coding: utf-8 -*-
# Copyright: (c) 2026, vmguard.hardening developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The vsphere role's plan carried out in ONE vCenter session (vsphere_enforce; vsphere_vm_devices for one VM).

Per VM of the plan (audit/rules/vsphere.plan_vcenter: {name: {"moid", "settings", "setting_rules",
"devices", "snapshots", ...}}):

- the VMs' current state comes from ONE PropertyCollector retrieval over the planned moids (name,
  config.extraConfig, config.hardware.device, snapshot, runtime.powerState), never one call per VM;
- the advanced settings not yet at their value, the power-cycle marker (PENDING_KEY, computed with
  audit/rules/vsphere.pending_marker, only on a running VM whose settings change) and the flagged
  devices go into ONE ReconfigVM_Task (only when that fails, the settings and the devices are retried
  apart, so what can be applied is applied);
- then the flagged snapshots are deleted (RemoveSnapshot_Task, consolidated into their child), never
  a pinned one, never one whose name the VM carries twice.

Pure functions (check_plan, setting_changes, marker_rules, current_marker, device_changes,
snapshot_removals) decide; the others talk to vCenter. Only the planned keys' values (the keys of the
vSphere rules, nothing like guestinfo.* or a VNC password) and the marker are ever returned.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import fnmatch

from ansible_collections.vmguard.hardening.plugins.module_utils.audit.rules.vsphere import PENDING_KEY, SETTINGS, TEMPLATE_REASON
from ansible_collections.vmguard.hardening.plugins.module_utils.audit.rules.vsphere import pending_marker
from ansible_collections.vmguard.hardening.plugins.module_utils.evidence.vsphere import epoch

try:
    from pyVim.task import WaitForTask
    from pyVmomi import vim, vmodl
    HAS_PYVMOMI = True
except ImportError:  # reported by the modules
    WaitForTask = vim = vmodl = None
    HAS_PYVMOMI = False

# The advanced settings a plan may set: the keys of the vSphere rules (case-insensitive, as VMX keys are).
SETTABLE = dict((key.lower(), rid) for rid, keys in SETTINGS.items() for key, _good, _absent in keys)
DEVICE_STATES = ("disconnected", "absent")
VM_PROPERTIES = ("name", "config.extraConfig", "config.hardware.device", "snapshot", "runtime.powerState", "config.template",
                 "summary.runtime.bootTime")


# ---------------------------------------------------------------- pure decisions


def _str_list(value, where):
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        raise ValueError("%s must be a list of non-empty strings" % where)
    return list(value)


def _str_map(value, where):
    """{string: non-empty string} (the plan's snapshot_ids: snapshot name -> moid), {} for none."""
    if value is None:
        return {}
    if not isinstance(value, dict) or not all(isinstance(k, str) and isinstance(v, str) and v for k, v in value.items()):
        raise ValueError("%s must be a mapping of snapshot name to snapshot moid (snapshot-42)" % where)
    return dict(value)


def _device_keys(value, where):
    """Device keys from the plan's [{key, kind, label}] (or plain integers)."""
    keys, labels = [], {}
    for i, dev in enumerate(value or []):
        key = dev.get("key") if isinstance(dev, dict) else dev
        if isinstance(key, bool) or not isinstance(key, int):
            try:
                key = int(str(key))
            except ValueError:
                raise ValueError("%s[%d].key must be an integer device key, got %r" % (where, i, key))
        keys.append(key)
        if isinstance(dev, dict) and dev.get("label"):
            labels[key] = str(dev["label"])
    return keys, labels


def _settings(value, where):
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ValueError("%s must be a mapping of advanced setting to value" % where)
    out = {}
    for key, val in value.items():
        if str(key).lower() not in SETTABLE:
            raise ValueError("%s: %s is not an advanced setting of the vSphere rules (%s)" % (
                where, key, ", ".join(sorted(SETTABLE))))
        if val is None or isinstance(val, (dict, list)):
            raise ValueError("%s.%s must be a string value, got %r" % (where, key, val))
        out[str(key)] = str(val)
    return out


def check_step(name, step):
    """The plan's entry for VM ``name`` as {"moid", "settings", "devices", "labels", "snapshots"}; ValueError
    naming the key path when it cannot be carried out."""
    where = "vms.%s" % name
    if not isinstance(step, dict):
        raise ValueError("%s must be a mapping (the role's plan entry), got %s" % (where, type(step).__name__))
    moid = step.get("moid")
    if not isinstance(moid, str) or not moid.strip():
        raise ValueError("%s.moid is missing (the managed object id of the VM, vm-42)" % where)
    devices, labels = _device_keys(step.get("devices"), where + ".devices")
    return {"moid": moid.strip(), "settings": _settings(step.get("settings"), where + ".settings"),
            "devices": devices, "labels": labels, "snapshots": _str_list(step.get("snapshots"), where + ".snapshots"),
            "snapshot_ids": _str_map(step.get("snapshot_ids"), where + ".snapshot_ids")}


def check_plan(vms):
    """(steps {name: checked step}, errors {name: message}) of the plan's ``vms``; two VMs with one moid are
    both errors (one VM would be changed twice)."""
    steps, errors = {}, {}
    if not isinstance(vms, dict):
        raise ValueError("vms must be the plan's mapping {VM name: step}, got %s" % type(vms).__name__)
    for name in sorted(vms, key=str):
        try:
            steps[str(name)] = check_step(str(name), vms[name])
        except ValueError as e:
            errors[str(name)] = str(e)
    by_moid = {}
    for name, step in steps.items():
        by_moid.setdefault(step["moid"], []).append(name)
    for moid, names in by_moid.items():
        if len(names) > 1:
            for name in names:
                errors[name] = "moid %s is planned for several VMs (%s)" % (moid, ", ".join(sorted(names)))
                del steps[name]
    return steps, errors


def setting_changes(planned, current):
    """{key: (current value or None, target)} of the planned settings not at their value yet. ``current`` is
    the VM's extraConfig {key: value}; values compare case-insensitively (VMX booleans are), keys as planned."""
    out = {}
    for key, target in sorted(planned.items()):
        value = current.get(key)
        if value is None or str(value).strip().lower() != str(target).strip().lower():
            out[key] = (None if value is None else str(value), str(target))
    return out


def marker_rules(changed_keys):
    """The rule ids whose settings are among ``changed_keys``."""
    return sorted(set(SETTABLE[k.lower()] for k in changed_keys if k.lower() in SETTABLE))


def current_marker(extra):
    """PENDING_KEY's value on the VM (its own spelling first, then any other spelling), or ""."""
    if PENDING_KEY in extra:
        return str(extra[PENDING_KEY] or "")
    others = sorted(k for k in extra if k.lower() == PENDING_KEY.lower())
    return str(extra[others[0]] or "") if others else ""


def new_marker(power_state, changes, extra, now, boot_time=None):
    """The marker to write with ``changes`` on this VM, or None: only a running VM whose settings change
    waits for a power cycle (as the vsphere_pending_marker filter computes it). The old marker's rule ids
    are dropped when the VM booted (``boot_time``, epoch) after it was written (pending_marker)."""
    if power_state != "poweredOn" or not changes:
        return None
    return pending_marker(current_marker(extra), marker_rules(changes), now, boot_time)


def device_changes(devices, keys, state):
    """(changes [{key, label}], missing [key], refused [{key, label}]) of the planned device ``keys`` on a VM whose
    ``devices`` are {key: {"label", "connectable" (bool), "connected", "start_connected"}}: disconnected - those
    connected now or at power on; absent - those still there. A key the VM lacks is missing with state disconnected
    only. With state disconnected, a device without a connect switch (PCI passthrough: attached while the VM runs)
    is refused - it cannot be disconnected, only removed - never skipped as if it were done."""
    if state not in DEVICE_STATES:
        raise ValueError("device state must be one of %s, got %r" % (", ".join(DEVICE_STATES), state))
    changes, missing, refused = [], [], []
    for key in keys:
        dev = devices.get(key)
        if dev is None:
            if state == "disconnected":
                missing.append(key)
            continue
        if state == "disconnected" and not dev["connectable"]:
            refused.append({"key": key, "label": dev["label"]})
            continue
        if state == "disconnected" and not (dev["connected"] or dev["start_connected"]):
            continue
        changes.append({"key": key, "label": dev["label"]})
    return changes, missing, refused


def refused_text(refused, how):
    """The error for devices that have no connect switch; ``how`` says how to remove them."""
    return "%s cannot be disconnected: remove it (%s)" % (
        ", ".join("%s (key %s)" % (d["label"], d["key"]) for d in refused), how)


def is_pinned(vm_name, snapshot, pinned):
    return any(fnmatch.fnmatchcase("%s/%s" % (vm_name, snapshot), p) for p in pinned or [])


def snapshot_removals(flat, names, vm_names, pinned, ids=None):
    """(to remove [(name, ref)], errors [message]) of the planned snapshot ``names`` on a VM whose snapshot
    tree is ``flat`` [(name, ref)]. Never a pinned one (params.rollback.pinned_snapshots, globs over
    "<vm>/<snapshot>" for any of ``vm_names``), never a name the VM carries twice (which one is flagged is
    unknown), never one whose moid is not the one the audit judged (``ids`` {name: snapshot moid}, the plan's
    snapshot_ids: a snapshot re-created under that name since is not the flagged one); a name no longer there is
    already done. A plan entry without ids (an older plan) is carried out by name."""
    remove, errors, ids = [], [], ids or {}
    for name in names:
        if any(is_pinned(vm, name, pinned) for vm in vm_names):
            errors.append("snapshot %s is pinned (params.rollback.pinned_snapshots): not deleted" % name)
            continue
        refs = [ref for n, ref in flat if n == name]
        if len(refs) > 1:
            errors.append("%d snapshots are named %s: not deleted (which one is flagged is unknown)" % (len(refs), name))
        elif refs and name in ids and getattr(refs[0], "_moId", None) != ids[name]:
            errors.append("snapshot %s is %s, not %s the audit judged (re-created since?): not deleted; audit again"
                          % (name, getattr(refs[0], "_moId", None), ids[name]))
        elif refs:
            remove.append((name, refs[0]))
    return remove, errors


# ---------------------------------------------------------------- vCenter


def fault_text(e):
    """A vSphere fault's message (never the connection's parameters)."""
    return str(getattr(e, "msg", None) or type(e).__name__)


def retrieve(si, moids):
    """({moid: {property: value}}, {moid: reason}, calls) of the VMs ``moids``: one RetrievePropertiesEx
    (continued while the server pages). A moid vCenter does not know is in the second mapping."""
    content = si.RetrieveContent()
    pc = content.propertyCollector
    spec = vmodl.query.PropertyCollector.FilterSpec(
        objectSet=[vmodl.query.PropertyCollector.ObjectSpec(obj=vim.VirtualMachine(m, si._stub), skip=False) for m in moids],
        propSet=[vmodl.query.PropertyCollector.PropertySpec(type=vim.VirtualMachine, pathSet=list(VM_PROPERTIES))],
        reportMissingObjectsInResults=True)
    result = pc.RetrievePropertiesEx([spec], vmodl.query.PropertyCollector.RetrieveOptions())
    calls, found, problems = 1, {}, {}
    while result is not None:
        for oc in result.objects or []:
            props = found.setdefault(oc.obj._moId, {})
            for prop in oc.propSet or []:
                props[prop.name] = prop.val
            for miss in oc.missingSet or []:
                problems.setdefault(oc.obj._moId, "%s: %s" % (miss.path or "object", fault_text(miss.fault)))
        if not result.token:
            break
        result = pc.ContinueRetrievePropertiesEx(result.token)
        calls += 1
    missing = {}
    for moid in moids:
        props = found.get(moid)
        if not props or "name" not in props:
            missing[moid] = "no VM with moid %s" % moid
        elif "config.extraConfig" not in props or "config.hardware.device" not in props:
            missing[moid] = "cannot read the configuration of VM %s (%s)" % (moid, problems.get(moid, "no configuration"))
    return found, missing, calls


def extra_config(options):
    return dict((o.key, "" if o.value is None else str(o.value)) for o in options or [])


def label(dev):
    return dev.deviceInfo.label if dev.deviceInfo is not None else "device %s" % dev.key


def device_states(device_list):
    """{key: {"label", "connectable", "connected", "start_connected", "device"}} of a VM's devices."""
    out = {}
    for dev in device_list or []:
        conn = dev.connectable
        out[dev.key] = {"label": label(dev), "connectable": conn is not None, "device": dev,
                        "connected": bool(conn is not None and conn.connected),
                        "start_connected": bool(conn is not None and conn.startConnected)}
    return out


def device_specs(device_list, keys, state):
    """(device change specs, changed [{key, label}], missing keys, refused [{key, label}]) for ``keys`` of
    ``device_list`` (config.hardware.device), as vsphere_vm_devices has always done: disconnected - connected and
    start connected off; absent - removed (device_changes)."""
    devices = device_states(device_list)
    changes, missing, refused = device_changes(devices, keys, state)
    specs = []
    for change in changes:
        dev = devices[change["key"]]["device"]
        if state == "absent":
            specs.append(vim.vm.device.VirtualDeviceSpec(operation="remove", device=dev))
        else:
            dev.connectable.connected = False
            dev.connectable.startConnected = False
            specs.append(vim.vm.device.VirtualDeviceSpec(operation="edit", device=dev))
    return specs, changes, missing, refused


def flat_snapshots(info):
    """[(name, snapshot ref)] of a VM's snapshot tree (property ``snapshot``), parents first."""
    out = []

    def walk(nodes):
        for node in nodes or []:
            out.append((node.name, node.snapshot))
            walk(node.childSnapshotList)

    if info is not None:
        walk(info.rootSnapshotList)
    return out


def reconfigure(vm, extra=None, device_specs_=None):
    spec = vim.vm.ConfigSpec()
    if extra:
        spec.extraConfig = [vim.option.OptionValue(key=k, value=v) for k, v in sorted(extra.items())]
    if device_specs_:
        spec.deviceChange = device_specs_
    WaitForTask(vm.ReconfigVM_Task(spec=spec))


class Session(object):
    """The plan carried out on the VMs of one session ``si``, counting its calls."""

    def __init__(self, si, device_state="disconnected", prune_snapshots=False, pinned=None, check_mode=False):
        self.si, self.device_state, self.prune, self.pinned = si, device_state, prune_snapshots, list(pinned or [])
        self.check_mode = check_mode
        self.calls = {"logins": 1, "retrievals": 0, "reconfigurations": 0, "snapshot_removals": 0}

    def _reconfigure(self, vm, extra, specs):
        self.calls["reconfigurations"] += 1
        reconfigure(vm, extra, specs)

    def apply_config(self, vm, extra, specs, verb):
        """One reconfiguration with the settings and the devices; when it fails with both, each part alone, so
        what vCenter accepts is applied. Returns (settings applied, devices applied, [errors])."""
        if self.check_mode or not (extra or specs):
            return bool(extra), bool(specs), []
        try:
            self._reconfigure(vm, extra, specs)
            return bool(extra), bool(specs), []
        except Exception as e:
            if not (extra and specs):
                what = "set the advanced settings" if extra else verb
                return False, False, ["cannot %s: %s" % (what, fault_text(e))]
        errors, done = [], []
        for part, args, what in (("settings", (extra, None), "set the advanced settings"), ("devices", (None, specs), verb)):
            try:
                self._reconfigure(vm, *args)
                done.append(part)
            except Exception as e:
                errors.append("cannot %s: %s" % (what, fault_text(e)))
        return "settings" in done, "devices" in done, errors

    def prune_snapshots(self, name, vm_name, info, names, ids=None):
        """(deleted names, errors)."""
        if not self.prune or not names:
            return [], []
        remove, errors = snapshot_removals(flat_snapshots(info), names, [name, vm_name], self.pinned, ids)
        done = []
        for snap_name, ref in remove:
            if not self.check_mode:
                try:
                    self.calls["snapshot_removals"] += 1
                    WaitForTask(ref.RemoveSnapshot_Task(removeChildren=False, consolidate=True))
                except Exception as e:
                    errors.append("cannot delete snapshot %s: %s" % (snap_name, fault_text(e)))
                    continue
            done.append(snap_name)
        return done, errors

    def enforce_vm(self, name, step, props, now):
        """What changed on the VM (or would, in check mode): {"moid", "vm", "changed", "settings": {key:
        {before, after}}, "marker" (written), "marker_before", "pending_power_cycle", "devices", "snapshots",
        "errors"}; a template is left alone with "skipped" (its reason), no error."""
        vm = vim.VirtualMachine(step["moid"], self.si._stub)
        extra = extra_config(props.get("config.extraConfig"))
        out = {"moid": step["moid"], "vm": props.get("name"), "changed": False, "settings": {}, "marker": None,
               "marker_before": current_marker(extra) or None, "pending_power_cycle": False, "devices": [], "snapshots": [], "errors": []}
        if props.get("config.template"):  # vCenter refuses ReconfigVM_Task on a template: skipped, not a failure
            out["skipped"] = TEMPLATE_REASON
            return out
        changes = setting_changes(step["settings"], extra)
        marker = new_marker(props.get("runtime.powerState"), changes, extra, now, epoch(props.get("summary.runtime.bootTime")))
        values = dict((k, after) for k, (_before, after) in changes.items())
        if marker:
            values[PENDING_KEY] = marker
        specs, devs, missing, refused = device_specs(props.get("config.hardware.device"), step["devices"], self.device_state)
        if missing:
            out["errors"].append("no device with key(s) %s" % ", ".join(str(k) for k in missing))
        if refused:
            out["errors"].append(refused_text(refused, "device_action remove"))
        verb = "remove" if self.device_state == "absent" else "disconnect"
        if specs:
            verb = "%s %s" % (verb, ", ".join(d["label"] for d in devs))
        set_ok, dev_ok, errors = self.apply_config(vm, values, specs, verb)
        out["errors"].extend(errors)
        if set_ok:
            out["settings"] = dict((k, {"before": b, "after": a}) for k, (b, a) in changes.items())
            out["marker"], out["pending_power_cycle"] = marker, bool(marker)
        if dev_ok:
            out["devices"] = devs
        out["snapshots"], errors = self.prune_snapshots(name, props.get("name"), props.get("snapshot"), step["snapshots"],
                                                        step.get("snapshot_ids"))
        out["errors"].extend(errors)
        out["changed"] = bool(out["settings"] or out["devices"] or out["snapshots"])
        return out

    def enforce(self, steps, now):
        """{name: enforce_vm result} of every checked plan step; a VM that cannot be read has only "errors"."""
        moids = sorted(set(s["moid"] for s in steps.values()))
        found, missing = {}, {}
        if moids:
            found, missing, calls = retrieve(self.si, moids)
            self.calls["retrievals"] += calls
        out = {}
        for name in sorted(steps):
            step = steps[name]
            if step["moid"] in missing:
                out[name] = {"moid": step["moid"], "changed": False, "errors": [missing[step["moid"]]]}
                continue
            try:
                out[name] = self.enforce_vm(name, step, found[step["moid"]], now)
            except Exception as e:  # one VM's surprise never hides the others
                out[name] = {"moid": step["moid"], "changed": False, "errors": ["%s: %s" % (type(e).__name__, fault_text(e))]}
        return out


def diff_of(name, res, device_state):
    """The VM's before/after (Ansible's diff list entry), or None when nothing changed."""
    if not res.get("changed"):
        return None
    before, after = {}, {}
    for key, change in sorted(res.get("settings", {}).items()):
        before.setdefault("settings", {})[key] = "(absent)" if change["before"] is None else change["before"]
        after.setdefault("settings", {})[key] = change["after"]
    if res.get("marker"):
        before.setdefault("settings", {})[PENDING_KEY] = res.get("marker_before") or "(absent)"
        after.setdefault("settings", {})[PENDING_KEY] = res["marker"]
    if res.get("devices"):
        before["devices"] = dict((d["label"], "present" if device_state == "absent" else "connected") for d in res["devices"])
        after["devices"] = dict((d["label"], "removed" if device_state == "absent" else "disconnected") for d in res["devices"])
    if res.get("snapshots"):
        before["snapshots"], after["snapshots"] = sorted(res["snapshots"]), []
    header = "%s (%s)" % (name, res["moid"])
    return {"before_header": header, "after_header": header, "before": before, "after": after}
