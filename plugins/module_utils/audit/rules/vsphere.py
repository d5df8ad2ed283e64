# -*- coding: utf-8 -*-
# Copyright: (c) 2026, vmguard.hardening developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""vSphere VMs (subject kind ``vcenter_vm``, id ``<vcenter>/<vm>``): the catalogue's VMX mapping.

vCenter allows one VM name in several folders and datacenters. A name the vCenter's VMs carry once is the
subject id's VM part; a repeated name is ``<name>#<moid>`` (vm_id), so two VMs are never merged: DIV-05 compares
them as two, VIS-01 and LEAK-05 look the inventory up under ``<name>#<moid>`` first (an inventory entry naming
only the repeated name is ambiguous for VIS-01: an error, never a pass for both), and the plan keys its entries
by that id and never mixes the findings of two moids.

Each rule keeps the meaning of its libvirt twin, with the semantics of the vSphere 8 hardening
guide (Security Configuration Guide / DISA vSphere 8 VM STIG):

- An advanced setting whose default is safe may be absent: ``isolation.tools.copy/paste/dnd.disable``,
  ``isolation.tools.diskShrink/diskWiper.disable`` and ``isolation.device.connectable.disable``
  default to TRUE; ``tools.setInfo.sizeLimit`` (1048576), ``log.rotateSize`` (2048000) and
  ``log.keepOld`` (10) must be absent or at their default. ``RemoteDisplay.maxConnections`` must be
  set to 1 (its default allows more). VMX keys and boolean values are case-insensitive: the evidence may
  hold one key in several spellings (isolation.tools.copy.disable and Isolation.Tools.Copy.Disable), and
  every spelling is judged - one non-compliant spelling fails, whatever the order of the keys.
- Advanced settings take effect at the next power cycle. The vsphere role records what it changed
  on a running VM in the advanced setting ``vmguard.powerCyclePending`` ("<epoch> <rule ids>");
  while the VM has not been booted since (``summary.runtime.bootTime``), a rule it names stays
  ``fail`` with ``pending_power_cycle`` (the engine sets the finding's ``pending_restart``).

Evidence: plugins/module_utils/evidence/vsphere.py (vsphere_facts), plus ``inventory`` - the VMs the
inventory declares for that vCenter (``vmguard_vcenter_vms``: {name: {data_class, service}}). The fields
vsphere_facts always sends (extra_config, devices, disks, nics, snapshots, custom_values, key_id, each disk's key_id)
are read with rules.collected (or _sent for key_id, whose None means "not encrypted"): a VM record without one is an
error "cannot evaluate: ... not collected", never "nothing there". The extraConfig keys read are the keys
of SETTINGS and PENDING_KEY, nothing else (evidence/vsphere.py AUDITED_SETTINGS).
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import fnmatch

from ansible_collections.vmguard.hardening.plugins.module_utils.audit.rules import NotCollected, check, collected, named, ok, fail, error, na
from ansible_collections.vmguard.hardening.plugins.module_utils.audit.rules import snapshots_from_the_future
from ansible_collections.vmguard.hardening.plugins.module_utils.audit.rules.leak import data_class, is_confidential

KIND = "vcenter_vm"
PENDING_KEY = "vmguard.powerCyclePending"

# rule -> ((VMX key, compliant values (lower case), None = may be absent), ...): what the role sets.
SETTINGS = {
    "LEAK-03": (("isolation.tools.copy.disable", ("true",), True),
                ("isolation.tools.paste.disable", ("true",), True),
                ("isolation.tools.dnd.disable", ("true",), True)),
    "ISO-11": (("isolation.tools.diskShrink.disable", ("true",), True),
               ("isolation.tools.diskWiper.disable", ("true",), True),
               ("isolation.device.connectable.disable", ("true",), True),
               ("tools.setInfo.sizeLimit", ("1048576",), True),
               ("log.rotateSize", ("2048000",), True),
               ("log.keepOld", ("10",), True)),
    "LEAK-02": (("RemoteDisplay.maxConnections", ("1",), False),
                ("RemoteDisplay.vnc.enabled", ("false",), True)),
}
# The value the role writes for a non-compliant key (the guide's recommended value).
TARGET = {"isolation.tools.copy.disable": "TRUE", "isolation.tools.paste.disable": "TRUE",
          "isolation.tools.dnd.disable": "TRUE", "isolation.tools.diskShrink.disable": "TRUE",
          "isolation.tools.diskWiper.disable": "TRUE", "isolation.device.connectable.disable": "TRUE",
          "tools.setInfo.sizeLimit": "1048576", "log.rotateSize": "2048000", "log.keepOld": "10",
          "RemoteDisplay.maxConnections": "1", "RemoteDisplay.vnc.enabled": "FALSE"}
_TARGET_BY_LOWER = dict((k.lower(), v) for k, v in TARGET.items())

# Devices ISO-08 judges; a CD/DVD drive only when it passes a host drive through.
DEVICE_KINDS = ("serial", "parallel", "floppy", "usb", "pci_passthrough", "cdrom")
# The remote ones pass the console client's physical drive through: a physical drive reaches the guest all the same.
HOST_CDROM_BACKINGS = ("AtapiBackingInfo", "PassthroughBackingInfo", "RemoteAtapiBackingInfo", "RemotePassthroughBackingInfo")
# Disk modes that discard the guest's writes (self-reverting), RB-12.
REVERTING_MODES = ("independent_nonpersistent", "nonpersistent", "undoable")
DATA_CLASS_ATTRIBUTE = "vmguard.data_class"


def vm_id(vm, names):
    """The VM's part of its subject id: its name when the vCenter's VMs carry it once (``names``: {name: count}),
    else ``<name>#<moid>`` - a name repeated in other folders or datacenters must never merge two VMs."""
    name = vm.get("name")
    return str(name) if names.get(name, 0) <= 1 else "%s#%s" % (name, vm.get("moid"))


def name_counts(vms):
    """{VM name: how many VMs of the list carry it} (vm_id's ``names``)."""
    out = {}
    for vm in vms or []:
        out[vm.get("name")] = out.get(vm.get("name"), 0) + 1
    return out


def _names(ctx):
    """{vcenter: {VM name: [moids]}} of every vCenter's VMs, built once per run."""
    def build():
        out = {}
        for name, ev in ctx.vcenters.items():
            by_name = out.setdefault(name, {})
            for vm in ev.get("vms") or []:
                by_name.setdefault(vm.get("name"), []).append(vm.get("moid"))
        return out
    return ctx.index("vsphere:names", build)


def _vm_id(ctx, vc, vm):
    return vm_id(vm, {vm.get("name"): len(_names(ctx).get(vc, {}).get(vm.get("name")) or ())})


def _where(vm):
    """What the role needs to address the VM: its moid and datacenter, and whether it is a template (never
    reconfigured: vCenter refuses ReconfigVM_Task on a template)."""
    return {"moid": vm.get("moid"), "datacenter": vm.get("datacenter"), "template": bool(vm.get("template"))}


def _sent(vm, key, what):
    """``vm[key]`` of a field vsphere_facts always sends, where None is a value (key_id None: not encrypted):
    NotCollected when the key itself is missing."""
    if key not in vm:
        raise NotCollected("%s not collected" % what)
    return vm[key]


def _vmx(vm):
    """{lower-case key: [(spelling, value), ...]} of extraConfig. VMX keys are case-insensitive and the evidence
    may hold one key in several spellings: each is kept (sorted, so no verdict depends on the keys' order)."""
    out = {}
    for k, v in collected(vm, "extra_config", "extraConfig (advanced settings)").items():
        out.setdefault(str(k).lower(), []).append((str(k), "" if v is None else str(v)))
    for spellings in out.values():
        spellings.sort()
    return out


def settings_problems(rid, vm):
    """{key: current value, or None when absent} of the rule's settings that are not compliant. A key present in
    several spellings is judged in each: every non-compliant spelling is listed as the VM spells it (so the role
    sets exactly that spelling); an absent key that must be set is listed under the catalogue's spelling."""
    vmx = _vmx(vm)
    bad = {}
    for key, good, may_be_absent in SETTINGS[rid]:
        spellings = vmx.get(key.lower())
        if not spellings:
            if not may_be_absent:
                bad[key] = None
            continue
        for spelling, value in spellings:
            if value.strip().lower() not in good:
                bad[spelling] = value
    return bad


def _markers(vm):
    """The values of PENDING_KEY in every spelling, the role's own spelling first."""
    spellings = _vmx(vm).get(PENDING_KEY.lower()) or []
    return [v for k, v in spellings if k == PENDING_KEY] + [v for k, v in spellings if k != PENDING_KEY]


def _marker(vm):
    """PENDING_KEY's value the role accumulates rule ids into (pending_marker), or None."""
    markers = _markers(vm)
    return markers[0] if markers else None


def pending_power_cycle(rid, vm):
    """True when the role changed this rule's settings on the running VM after its last boot (by any spelling
    of the marker). Raises ValueError on a marker it cannot read (a power cycle may be pending: not a pass)."""
    pending = False
    for marker in _markers(vm):
        if not marker:
            continue
        parts = marker.split(None, 1)
        try:
            when = float(parts[0])
        except (ValueError, IndexError):
            raise ValueError("cannot read %s = %r (expected '<epoch seconds> <rule ids>')" % (PENDING_KEY, marker))
        rules = set(r.strip() for r in (parts[1] if len(parts) > 1 else "").split(","))
        if rid not in rules or vm.get("power_state") != "poweredOn":
            continue
        boot = vm.get("boot_time")
        pending = pending or boot is None or boot < when
    return pending


def _settings_check(rid, vm, what):
    bad = settings_problems(rid, vm)
    if bad:
        found = ", ".join("%s %s" % (k, "absent" if v is None else "= %s" % v) for k, v in sorted(bad.items()))
        return fail("%s: %s" % (what, found),
                    settings=bad, expected=dict((k, _TARGET_BY_LOWER[k.lower()]) for k in bad), **_where(vm),
                    power_state=vm.get("power_state"), marker=_marker(vm))
    if pending_power_cycle(rid, vm):
        return fail("settings corrected in the VM configuration; they take effect at the next power cycle "
                    "(power cycle pending, the running VM still has the old ones)", pending_power_cycle=True,
                    **_where(vm))
    return ok("compliant (%s)" % ", ".join(k for k, _good, _absent in SETTINGS[rid]))


@check("LEAK-03", KIND)
def leak03(ctx, vv):
    return _settings_check("LEAK-03", vv[1], "copy, paste or drag and drop between console and guest allowed")


leak03.remediation = "Set isolation.tools.copy/paste/dnd.disable = TRUE (or remove them: TRUE is the default); power cycle the VM."


@check("ISO-11", KIND)
def iso11(ctx, vv):
    return _settings_check("ISO-11", vv[1], "guest can shrink/wipe disks, connect devices or fill the datastore")


iso11.remediation = ("Set isolation.tools.diskShrink/diskWiper.disable and isolation.device.connectable.disable = TRUE "
                     "(or remove them), tools.setInfo.sizeLimit, log.rotateSize and log.keepOld to their defaults; power cycle.")


@check("LEAK-02", KIND)
def leak02(ctx, vv):
    return _settings_check("LEAK-02", vv[1], "remote console not limited to one connection")


leak02.remediation = "Set RemoteDisplay.maxConnections = 1 and leave RemoteDisplay.vnc.enabled unset or FALSE; power cycle."


def _allowed(ctx, vm_name, label):
    return any(fnmatch.fnmatchcase("%s/%s" % (vm_name, label), p) for p in ctx.params["isolation"]["allowed_hostdevs"])


def attached_devices(ctx, vm):
    """The devices ISO-08 fails on: connected now or at power on, not allow-listed."""
    out = []
    for d in collected(vm, "devices"):
        if d.get("kind") not in DEVICE_KINDS or not (d.get("connected") or d.get("start_connected")):
            continue
        if d["kind"] == "cdrom" and (d.get("backing") or "").split(":")[0] not in HOST_CDROM_BACKINGS:
            continue  # an ISO image or nothing: no host device reaches the guest
        if not _allowed(ctx, vm["name"], d.get("label")):
            out.append(d)
    return out


@check("ISO-08", KIND)
def iso08(ctx, vv):
    devs = attached_devices(ctx, vv[1])
    if devs:
        return fail("%d host or removable device(s) connected: %s" % (len(devs), "; ".join(
            "%s %s (%s)" % (d["kind"], d.get("label"), d.get("backing") or "no backing") for d in devs)),
            devices=[{"key": d["key"], "kind": d["kind"], "label": d.get("label")} for d in devs], **_where(vv[1]))
    return ok("no passthrough, USB, serial, parallel, floppy or host CD/DVD device connected outside the allow-list")


iso08.remediation = ("Disconnect (connected and start connected off) or remove the device in the VM's settings, "
                     "or allow-list '<vm>/<device label>' in params.isolation.allowed_hostdevs.")


def _snapshots(vm):
    return collected(vm, "snapshots")


def _pinned(ctx, vm_name, snap_name):
    return any(fnmatch.fnmatchcase("%s/%s" % (vm_name, snap_name), p) for p in ctx.params["rollback"]["pinned_snapshots"])


def _prunable(ctx, vm, names):
    """``names`` without the pinned ones (params.rollback.pinned_snapshots, globs over "<vm>/<snapshot>").
    Deleting a vSphere snapshot, current or parent, consolidates it into its child: no data is lost."""
    return [n for n in names if not _pinned(ctx, vm["name"], n)]


def _prunable_ids(vm, names):
    """{name: snapshot moid} of the prunable ``names`` the VM carries once: what the audit judged, so enforcement
    deletes that snapshot and not one re-created under its name since (vsphere_config.snapshot_removals)."""
    moids = {}
    for s in _snapshots(vm):
        moids.setdefault(s["name"], []).append(s.get("moid"))
    return dict((n, moids[n][0]) for n in names if len(moids.get(n, ())) == 1 and moids[n][0])


@check("RB-02", KIND)
def rb02(ctx, vv):
    snaps = _snapshots(vv[1])
    if not snaps:
        return ok("no snapshots")
    unknown = [s["name"] for s in snaps if s.get("creation_time") is None]
    if unknown:
        return error("snapshots without a creation time: %s" % ", ".join(unknown))
    future = snapshots_from_the_future(ctx, snaps)
    if future:
        return future
    limit = ctx.params["rollback"]["max_snapshot_age_hours"]
    old = dict((s["name"], round((ctx.now - s["creation_time"]) / 3600.0, 1)) for s in snaps
               if (ctx.now - s["creation_time"]) / 3600.0 > limit)
    if old:
        return fail("%d snapshot(s) older than %dh: %s" % (len(old), limit, ", ".join(
            "%s (%.1fh)" % (n, h) for n, h in sorted(old.items()))), age_hours=old,
            prunable=_prunable(ctx, vv[1], sorted(old)), prunable_ids=_prunable_ids(vv[1], sorted(old)), **_where(vv[1]))
    return ok("%d snapshot(s), all younger than %dh" % (len(snaps), limit))


rb02.remediation = "Delete snapshots older than max_snapshot_age_hours (the vsphere role does with prune_snapshots)."


@check("RB-03", KIND)
def rb03(ctx, vv):
    snaps = _snapshots(vv[1])
    limit = ctx.params["rollback"]["max_snapshots"]
    if len(snaps) > limit:
        if any(s.get("creation_time") is None for s in snaps):
            return error("%d snapshots (limit %d), some without a creation time: cannot tell the oldest" % (len(snaps), limit))
        oldest = [s["name"] for s in sorted(snaps, key=lambda s: s["creation_time"])]
        prunable = _prunable(ctx, vv[1], oldest)[:len(snaps) - limit]
        return fail("%d snapshots (limit %d)" % (len(snaps), limit), count=len(snaps),
                    prunable=prunable, prunable_ids=_prunable_ids(vv[1], prunable), **_where(vv[1]))
    return ok("%d snapshot(s) (limit %d)" % (len(snaps), limit), count=len(snaps))


rb03.remediation = "Delete the oldest snapshots down to max_snapshots (the vsphere role does with prune_snapshots)."


@check("RB-12", KIND)
def rb12(ctx, vv):
    disks = collected(vv[1], "disks", "virtual disks")
    if not disks:
        return na("no virtual disks")
    unknown = [d.get("label") for d in disks if not d.get("mode")]
    if unknown:
        return error("disk mode not collected for %s" % ", ".join(str(u) for u in unknown))
    bad = [d for d in disks if d["mode"] in REVERTING_MODES]
    if bad:
        return fail("self-reverting disk(s): %s" % ", ".join("%s (%s)" % (d.get("label"), d["mode"]) for d in bad),
                    disks=[{"label": d.get("label"), "mode": d["mode"]} for d in bad])
    return ok("%d disk(s), none discards the guest's writes" % len(disks))


rb12.remediation = "Change the disk mode to persistent or independent_persistent (VM powered off); audit only."


def declared_vms(ctx, vc):
    """{vm name: {data_class, service, guest}} the inventory declares for vCenter ``vc``: its
    vmguard_vcenter_vms, plus guests whose vmguard_hypervisor is the vCenter and vmguard_domain the VM."""
    def build():
        out = {}
        for name, ev in ctx.vcenters.items():
            inv = ev.get("inventory") or {}  # the inventory's vmguard_vcenter_vms: absent when it declares none
            if isinstance(inv, list):
                inv = dict((n, {}) for n in inv)
            out[name] = dict((str(n), dict(v or {})) for n, v in inv.items())
        for (hv, dom), g in ctx.inventory_domains().items():
            if hv in out:
                attrs = out[hv].setdefault(dom, {})
                attrs.setdefault("guest", g)
                gv = ctx.guests[g].get("vars") or {}
                if gv.get("data_class") and not attrs.get("data_class"):
                    attrs["data_class"] = gv["data_class"]
        return out
    return ctx.index("vsphere:declared", build).get(vc, {})


@check("LEAK-05", KIND)
def leak05(ctx, vv):
    """The data class: vmguard_vcenter_vms (or the guest's vmguard_data_class), else the custom attribute
    vmguard.data_class; compared case-insensitively (leak.is_confidential, as for libvirt domains)."""
    vc, vm = vv
    # A repeated name's entry applies to each VM of that name (the stricter reading), unless <name>#<moid> has one.
    declared = declared_vms(ctx, vc)
    cls = (declared.get(_vm_id(ctx, vc, vm)) or declared.get(vm["name"]) or {}).get("data_class")
    if data_class(cls) is None:
        cls = collected(vm, "custom_values", "custom attributes").get(DATA_CLASS_ATTRIBUTE)
    if not is_confidential(ctx, cls):
        return na("data class %s is not confidential" % (str(cls).strip() if data_class(cls) else "unset"))
    key = _sent(vm, "key_id", "config.keyId")
    # An encryption policy on VM Home or a vTPM sets config.keyId and encrypts the home files only: every disk must
    # carry its own backing.keyId.
    plain = [str(d.get("label")) for d in collected(vm, "disks", "virtual disks")
             if not (_sent(d, "key_id", "disk encryption (backing.keyId) of %s" % d.get("label")) or {}).get("key_id")]
    if not (key and key.get("key_id")):
        return fail("confidential VM (data class %s) is not encrypted (no config.keyId)" % str(cls).strip(),
                    data_class=cls, plaintext_disks=plain)
    if plain:
        return fail("confidential VM (data class %s): VM home encrypted, disk(s) not encrypted (no backing.keyId): %s"
                    % (str(cls).strip(), ", ".join(plain)), data_class=cls, plaintext_disks=plain)
    return ok("confidential VM and its %d disk(s) encrypted (key provider %s)" % (
        len(vm["disks"]), key.get("provider") or "unknown"))


leak05.remediation = ("Encrypt the VM and every disk with a key provider (VM encryption storage policy on VM Home and "
                      "on each disk); audit only.")


@check("DIV-05", KIND)
def div05(ctx, vv):
    vc, vm = vv

    def build():
        uuids, macs, unknown = {}, {}, []  # unknown: the VMs (all of a vCenter's: "vc/*") whose identity is not known
        for name, ev in sorted(ctx.vcenters.items()):
            if ev.get("error"):
                unknown.append("%s/*" % name)
                continue
            others = collected(ev, "vms", "VMs of vCenter %s" % name)
            counts = name_counts(others)
            for other in others:
                who = "%s/%s" % (name, vm_id(other, counts))
                if other.get("error") or not other.get("instance_uuid"):
                    unknown.append(who)
                if other.get("instance_uuid"):
                    uuids.setdefault(other["instance_uuid"].lower(), set()).add(who)
                # A VM whose configuration could not be read (its own findings are errors) has no NICs to compare;
                # any other VM without its NIC list makes uniqueness unprovable: an error, not a pass.
                nics = (other.get("nics") or []) if other.get("error") else collected(other, "nics", "NICs of %s" % who)
                for n in nics:
                    if n.get("mac"):
                        macs.setdefault(n["mac"].lower(), set()).add(who)
        return uuids, macs, sorted(unknown)
    uuids, macs, unknown = ctx.index("vsphere:div05", build)
    me = "%s/%s" % (vc, _vm_id(ctx, vc, vm))
    problems = {}
    iu = (vm.get("instance_uuid") or "").lower()
    if not iu:
        return error("instance UUID not collected")
    if len(uuids.get(iu, ())) > 1:
        problems["instance_uuid"] = sorted(uuids[iu] - {me})
    dup = dict((n["mac"].lower(), sorted(macs[n["mac"].lower()] - {me})) for n in collected(vm, "nics", "NICs")
               if n.get("mac") and len(macs.get(n["mac"].lower(), ())) > 1)
    if dup:
        problems["macs"] = dup
    if problems:
        parts = (["instance UUID with %s" % named(problems["instance_uuid"])] if "instance_uuid" in problems else []) + \
            ["MAC %s with %s" % (m, named(o)) for m, o in sorted(dup.items())]
        return fail("identity shared: %s" % "; ".join(parts), **problems)
    count = len([n for n in vm["nics"] if n.get("mac")])
    if unknown:  # one of them may be this VM's clone
        return error("instance UUID and %d MAC address(es) shared with no VM read, but the identity of %d VM(s) is unknown "
                     "(%s): not proven unique" % (count, len(unknown), named(unknown)), not_collected=len(unknown))
    return ok("instance UUID and %d MAC address(es) unique" % count)


div05.remediation = "Give the VM new MAC addresses (address type generated) and a new instance UUID; audit only."


@check("VIS-01", KIND)
def vis01(ctx, vv):
    vc, vm = vv
    if vm.get("template"):
        return na("a template never runs")
    declared, key = declared_vms(ctx, vc), _vm_id(ctx, vc, vm)
    attrs = declared.get(key)
    if attrs is None and key != vm["name"] and vm["name"] in declared:
        moids = sorted(str(m) for m in _names(ctx)[vc][vm["name"]])
        return error("the inventory declares '%s', a name %d VMs of %s carry (%s): ambiguous, declare each as "
                     "'<name>#<moid>' (this one: '%s')" % (vm["name"], len(moids), vc, ", ".join(moids), key),
                     ambiguous=moids)
    if attrs is not None:
        return ok("in the inventory%s" % (" as %s" % attrs["guest"] if attrs.get("guest") else " (vmguard_vcenter_vms)"))
    return fail("VM '%s' (%s) of %s is not in the inventory" % (vm["name"], vm.get("power_state"), vc),
                power_state=vm.get("power_state"))


vis01.remediation = "Add the VM to vmguard_vcenter_vms of its vCenter (or as a guest), or remove it from vCenter."


# What the vsphere role carries out, per rule: advanced settings, devices, snapshots (opt-in prune).
SETTING_RULES = ("LEAK-03", "ISO-11", "LEAK-02")
DEVICE_RULES = ("ISO-08",)
SNAPSHOT_RULES = ("RB-02", "RB-03")
TEMPLATE_REASON = "template: convert it to a VM to change it"
AUDIT_ONLY = {"RB-12": "the disk mode changes only with the VM powered off: audit only",
              "LEAK-05": "encrypting a VM needs a key provider and a storage policy: audit only",
              "DIV-05": "a new MAC or instance UUID changes the VM's identity on the network: audit only",
              "VIS-01": "adding a VM to the inventory is a person's decision: audit only"}


def _vm_of(finding, vcenter):
    sid = finding["subject"]["id"]
    prefix = vcenter + "/"
    return sid[len(prefix):] if sid.startswith(prefix) and sid != prefix + "*" else None


def _entry(ev):
    return {"moid": ev.get("moid"), "datacenter": ev.get("datacenter"), "power_state": None, "marker": None,
            "settings": {}, "setting_rules": set(), "devices": {}, "snapshots": set(), "snapshot_ids": {}, "rules": set()}


def _excluded(vm, exclude):
    """A glob of ``exclude`` matches the VM's name (or its <name>#<moid> id)."""
    return any(fnmatch.fnmatchcase(vm, p) or fnmatch.fnmatchcase(vm.split("#", 1)[0], p) for p in exclude)


def plan_vcenter(policy, findings, vcenter, exclude=()):
    """The vsphere role's steps for ``vcenter`` from the audit's findings (pure, deterministic).

    Returns {"vms": {vm: {"moid", "datacenter", "power_state", "marker" (PENDING_KEY's value),
    "settings": {key: value}, "setting_rules": [ids], "devices": [{key, kind,
    label}], "snapshots": [names], "rules": [ids]}}, "pending_power_cycle": [vm], "moids": {vm: {moid, datacenter}},
    "not_enforced": [{rule, subject, reason}]}, ``vm`` being the subject id's VM part (the name, or
    <name>#<moid> for a repeated name). Planned: failing (not waived) findings of enabled rules in mode
    enforce while the policy's mode is enforce; snapshots only with params.rollback.prune_snapshots.
    A finding that only waits for a power cycle is listed under pending_power_cycle. VMs matching a
    glob of ``exclude`` are never planned (not_enforced, "excluded"), nor templates (TEMPLATE_REASON). Each entry is one moid: findings of
    several moids under one subject (an audit from before repeated names had their own ids) are never
    merged - that VM is not planned (not_enforced, "ambiguous"), nor power cycled.
    """
    vms, pending, skipped, moids, seen = {}, set(), [], {}, {}
    enforce = policy.get("mode", "enforce") == "enforce"
    prune = policy["params"]["rollback"].get("prune_snapshots")
    for f in findings:
        if f["subject"]["kind"] != KIND or f["status"] not in ("fail", "error"):
            continue
        vm, rid = _vm_of(f, vcenter), f["rule"]
        if vm is None:
            if f["subject"]["id"] == vcenter + "/*":
                skipped.append({"rule": rid, "subject": f["subject"]["id"], "reason": "error: not evaluated"})
            continue
        ev = f.get("evidence") or {}
        if ev.get("moid"):
            seen.setdefault(vm, {})[ev["moid"]] = ev.get("datacenter")
        reason = None
        if f["status"] == "error":
            reason = "error: not evaluated"
        elif _excluded(vm, exclude):
            reason = "excluded (vmguard_vsphere_exclude_vms)"
        elif rid in AUDIT_ONLY:
            reason = AUDIT_ONLY[rid]
        elif ev.get("template"):
            reason = TEMPLATE_REASON
        elif not enforce:
            reason = "policy mode audit"
        elif policy["rules"][rid].get("mode") != "enforce":
            reason = "mode audit"
        elif f.get("pending_restart"):
            pending.add(vm)
            continue
        elif rid in SNAPSHOT_RULES and not prune:
            reason = "params.rollback.prune_snapshots is off: snapshots are reported, never deleted"
        elif not ev.get("moid"):
            reason = "the finding names no moid: the VM cannot be addressed"
        if reason:
            skipped.append({"rule": rid, "subject": f["subject"]["id"], "reason": reason})
            continue
        step = vms.setdefault(vm, (f["subject"]["id"], {}))[1].setdefault(ev["moid"], _entry(ev))
        step["rules"].add(rid)
        if rid in SETTING_RULES:
            step["settings"].update(ev.get("expected") or {})
            step["power_state"], step["marker"] = ev.get("power_state"), ev.get("marker")
            step["setting_rules"].add(rid)
        elif rid in DEVICE_RULES:
            for d in ev.get("devices") or []:
                step["devices"][d["key"]] = {"key": d["key"], "kind": d["kind"], "label": d.get("label")}
        elif rid in SNAPSHOT_RULES:
            if not ev.get("prunable"):
                skipped.append({"rule": rid, "subject": f["subject"]["id"], "reason": "only pinned snapshots are flagged"})
            step["snapshots"].update(ev.get("prunable") or [])
            step["snapshot_ids"].update(ev.get("prunable_ids") or {})
    for vm, found in seen.items():
        if len(found) == 1:
            moid, dc = next(iter(found.items()))
            moids[vm] = {"moid": moid, "datacenter": dc}
    out = {}
    for vm, (subject, by_moid) in sorted(vms.items()):
        if len(seen.get(vm, ())) > 1:
            why = "ambiguous: findings of several VMs (%s) under one subject: not enforced" % ", ".join(sorted(seen[vm]))
            skipped.extend({"rule": rid, "subject": subject, "reason": why}
                           for rid in sorted(set(r for st in by_moid.values() for r in st["rules"])))
            continue
        (step,) = by_moid.values()
        out[vm] = {"moid": step["moid"], "datacenter": step["datacenter"], "power_state": step["power_state"],
                   "marker": step["marker"], "settings": dict(sorted(step["settings"].items())),
                   "setting_rules": sorted(step["setting_rules"]),
                   "devices": [step["devices"][k] for k in sorted(step["devices"])],
                   "snapshots": sorted(step["snapshots"]), "snapshot_ids": dict(sorted(step["snapshot_ids"].items())),
                   "rules": sorted(step["rules"])}
    return {"vms": out, "pending_power_cycle": sorted(v for v in pending if v in moids),
            "moids": moids, "not_enforced": sorted(skipped, key=lambda e: (e["rule"], e["subject"]))}


def pending_marker(current, rules, now, boot_time=None):
    """The new value of PENDING_KEY after ``rules`` changed settings at ``now``: the rule ids it
    already names plus ``rules``, with the time of this change. The old ids are dropped when the VM booted
    (``boot_time``, epoch) at or after the old marker's time: their settings are in effect, and carrying them
    under the new time would make them "power cycle pending" again. An unknown boot time or an unreadable
    old time keeps them (pending is the safe side)."""
    old = set()
    if current:
        parts = current.split(None, 1)
        if len(parts) > 1:
            old = set(r.strip() for r in parts[1].split(",") if r.strip())
        try:
            if boot_time is not None and float(parts[0]) <= boot_time:
                old = set()
        except (ValueError, IndexError):
            pass
    return "%d %s" % (int(now), ",".join(sorted(old | set(rules))))
