# -*- coding: utf-8 -*-
# Copyright: (c) 2026, vmguard.hardening developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The remediation plan: one pure function, (policy, evidence, findings) -> what enforcement carries out.

The hypervisor and guest roles do what the plan says and nothing else, so what is changed is
decided once, on the controller, from the same findings the report shows. The plan is keyed by
inventory host; each remediation entry names the rules it remediates and the subjects it acts on.

What is planned: a finding with status fail (not waived, not error) of an enabled rule whose
remediation exists (rules/ ``remediated_by``) and whose effective mode is enforce, while the
policy's global mode is enforce. A finding that fails only in the live definition of a running
domain (its persistent definition is fixed) needs nothing but a restart: it is listed under
``pending_restart``. Every other failing or error finding is listed under ``not_enforced`` with
its reason. Pure (no Ansible imports), deterministic (sorted lists), O(n) over the findings.

Snapshots (RB-02/03/04/13, opt-in): choose_snapshots picks per domain what the failing findings
want gone, never the current snapshot (nor one whose ``current`` flag the evidence does not give),
a pinned one (params.rollback.pinned_snapshots) or a parent whose children stay; the
snapshot_policy module runs the same function again on what libvirt says at run time. A finding
none of whose snapshots can go is listed under not_enforced with the reason they stay.

Domain fixes (domain_policy) carry their parameters: ``domains`` maps each domain to {rule id:
parameters of its fixer} (remediation/domfix.py): allow-lists from the policy, ISO-03's IP from the
inventory's vmguard_service_address of the domain's guest, VIS-05's owner/service/expires from its
vmguard_owner / vmguard_service / vmguard_expires (guest vars owner, service, expires). A fix that
cannot be carried out there is listed under not_enforced with the reason: ISO-04 on a host without
AppArmor or SELinux, ISO-03 where only macvtap interfaces lack the filter, VIS-05 for a domain with
no inventory guest, an inventory value of the wrong shape, a fix other than the live ones (ISO-02,
ISO-03, ISO-06) on a transient domain (TRANSIENT_DOMAIN), a shared boot disk (ISO-06).

Reconverge (RB-05, RB-07, RB-08, RB-09): a guest a revert rolled back gets one "reconverge" step
{lock_accounts: [name], packages: {pkg: floor}, mask_services: [unit]} from the evidence of its
failing findings; the guest role locks, upgrades (from the guest's own package sources) and masks,
and the ledger step then moves the epoch (another step ran). RB-05 failing alone (a revert that
changed nothing else RB-06..10 see) gets a reconverge step with nothing to lock, upgrade or mask:
the epoch move is its whole fix.

Ledger (policy mode enforce only): every guest with evidence whose domain UUID is known gets a
"ledger" step {hypervisor, uuid, retire_fingerprints, record, epoch, lift_quarantine,
quarantine_since, seen_reverts}.
``seen_reverts``: the times of the revert/restore events in the ledger record the audit read; the
epoch commit fails (revert_during_run) on any other one: the run acted on a guest the audit never saw.
``lift_quarantine``: the held ledger record has a quarantine (the revert watcher's) and this run settles
every rollback guard of the guest: RB-05..10 each pass, are not applicable, or fail and are remediated by
one of its steps (a rule left out by --tags was not evaluated and keeps the quarantine; one the policy
disables guards nothing); the guest role lifts it after the epoch commit, so such a guest's epoch always
moves. Otherwise the quarantine is kept and not_enforced says why (rule RB-05, the guards in the way).
The epoch never moves while RB-05 is unsettled (failing and not reconverged here, an error, waived, or
not evaluated): the guest would get the new epoch and pass RB-05 with its rollback undone by nobody.
``record`` is the security state it holds now (params.rollback floor_packages installed,
disabled_accounts locked or absent, masked_services masked, the firewall digest when ISO-10 passes,
else None) for the ledger module; ``epoch`` is true when the guest has another plan step or
recording would change what the ledger holds (so a second harden with nothing to do changes
nothing). Names the ledger records and the policy still names stay recorded when the guest lost
them: a harden never erases a rollback's trace.

Evidence layout: see audit/engine.py. A guest's domain UUID (the ledger's key) is found through
the hypervisor evidence: guest vars hypervisor + domain -> that hypervisor's domain of that name.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import fnmatch
import gc
import ipaddress
import posixpath

from ansible_collections.vmguard.hardening.plugins.module_utils.audit import debversion
from ansible_collections.vmguard.hardening.plugins.module_utils.audit.rules import RULES, remediation_for
from ansible_collections.vmguard.hardening.plugins.module_utils.audit.rules.iso import (
    ROOT as ROOT_NAMES, _disk_key, _net_key, _network_kind, _tap_kind)
from ansible_collections.vmguard.hardening.plugins.module_utils.audit.rules.leak import shared_dir
from ansible_collections.vmguard.hardening.plugins.module_utils.common.timeutil import parse_date
from ansible_collections.vmguard.hardening.plugins.module_utils.audit.status import BAD, ERROR, FAIL, NA, PASS, WAIVED

# The ledger's revert and restore events (remediation/ledger.REVERT_EVENTS; test_plan_rollback keeps the two equal).
REVERT_EVENTS = ("revert", "restore")

# Reasons a failing finding is not remediated (the plan's not_enforced entries).
POLICY_AUDIT = "policy mode audit"
RULE_AUDIT = "mode audit"
NO_REMEDIATION = "no remediation"
NOT_EVALUATED = "error: not evaluated"
# vCenter VMs are remediated by the vsphere role, which plans from the same findings (plugins/filter/vsphere.py).
VSPHERE_ROLE = "remediated by the vmguard.hardening.vsphere role"
# Reasons that are the policy's or the design's choice (by_choice: true in the plan); every other reason is
# an enforceable finding left as it is here (a value of the wrong shape, a host that cannot): the operator's to act on.
BY_CHOICE = frozenset((POLICY_AUDIT, RULE_AUDIT, NO_REMEDIATION, VSPHERE_ROLE))

# The subject kind each remediation acts on (a finding of another kind, e.g. an expired waiver
# or an unreachable hypervisor, is not something it can fix).
SUBJECT_KIND = {"guest_firewall": "guest", "service_lockdown": "guest", "domain_policy": "domain", "identity_reseal": "guest", "sysctl": "guest",
                "expire_passwords": "guest", "snapshot_policy": "domain", "revert_watcher": "hypervisor",
                "reconverge": "guest", "host_config": "hypervisor"}
SYSCTL_SETTINGS = {"DIV-10": {"kernel.randomize_va_space": "2"}}
# Identity items resealed per set of guests sharing one value: rule -> the guest fact holding it.
IDENTITY_DIGESTS = {"DIV-01": "machine_id_digest", "DIV-04": "random_seed_digest"}
DBUS_MACHINE_ID = "/var/lib/dbus/machine-id"


def _reason(policy, finding, remediation):
    """Why ``finding`` (status fail or error) is not remediated, or None when it is."""
    if policy.get("mode", "enforce") != "enforce":
        return POLICY_AUDIT
    if remediation is None:
        return NO_REMEDIATION
    if policy["rules"][finding["rule"]].get("mode") != "enforce":
        return RULE_AUDIT
    if finding["status"] == ERROR:
        return NOT_EVALUATED
    if finding["subject"]["kind"] == "vcenter_vm":
        return VSPHERE_ROLE
    if finding["subject"]["kind"] != SUBJECT_KIND[remediation["remediation"]]:
        return NO_REMEDIATION  # e.g. an expired waiver: renewing it or not is a person's decision
    return None


# Domain fixes libvirt can also make on a running domain (remediation/domfix.LIVE; a unit test keeps the two
# equal): a finding that fails only in the live definition of one of these is planned, not left for a restart.
LIVE_DOMAIN_FIXES = ("ISO-02", "ISO-03", "ISO-06")


# A transient domain has no persistent definition (defining one would make it persistent: not a hardening's call), so
# only the LIVE_DOMAIN_FIXES reach it; domain_policy reports each other fix it would need with this same reason.
TRANSIENT_DOMAIN = ("cannot be enforced on a transient domain: it has no persistent definition to change and "
                    "libvirt cannot make this change on the running domain (define it persistently, or fix it where "
                    "it is created)")


def _live_fixable(rid, finding):
    return rid in LIVE_DOMAIN_FIXES and finding["subject"]["kind"] == "domain"


def _triage(policy, findings):
    """(planned findings, pending_restart entries, not_enforced entries)."""
    planned, pending, skipped = [], [], []
    for f in findings:
        rid, status = f["rule"], f["status"]
        if status not in BAD or not policy["rules"].get(rid, {}).get("enabled", True):
            continue
        sid = f["subject"]["id"]
        reason = _reason(policy, f, remediation_for(rid, f["subject"]["kind"]))
        if reason:
            skipped.append({"rule": rid, "subject": sid, "reason": reason})
        elif f.get("pending_restart") and not _live_fixable(rid, f):
            pending.append({"rule": rid, "subject": sid, "message": f["message"]})
        elif status == FAIL:
            planned.append(f)
    return planned, pending, skipped


class _Resealed(object):
    """Which member of each duplicate set keeps its value under reseal "all_but_one".

    A set is every guest holding one value: the guest of a finding plus the others its evidence
    names. Its keeper is the planned member whose name sorts first, unless a member of the set is
    not planned at all (waived, say): that one already keeps the value, so every planned member
    reseals. Counting planned members per value keeps this O(n)."""

    def __init__(self, all_but_one):
        self.all_but_one = all_but_one
        self.planned = {}  # (rule, value) -> set of planned guests holding it
        self.holders = {}  # (rule, value) -> number of guests holding it
        self.keeper = {}  # (rule, value) -> the planned guest keeping it, or None, computed once

    def add(self, rid, value, guest, others):
        if value and others:
            self.planned.setdefault((rid, value), set()).add(guest)
            self.holders[(rid, value)] = 1 + len(others)

    def reseals(self, rid, value, guest):
        """Whether ``guest`` gets a new value for ``value`` (False only for the keeper of a set)."""
        key = (rid, value)
        if not self.all_but_one or key not in self.planned:
            return True  # reseal "all", or nothing shared (an empty machine-id, a retired key back)
        if key not in self.keeper:
            members = self.planned[key]
            self.keeper[key] = min(members) if self.holders[key] == len(members) else None
        return guest != self.keeper[key]


def _identity_values(rid, finding, facts):
    """(value, the other holders) pairs a failing identity finding is about."""
    ev = finding.get("evidence") or {}
    if rid == "DIV-01" and ev.get("copies") == [DBUS_MACHINE_ID]:
        # Only the D-Bus copy (a file of its own) is shared: that is the duplicated value; identity_reseal
        # matches it against the copy and reseals (the copy becomes the link to the new /etc/machine-id).
        return [(facts.get("dbus_machine_id_digest"), ev.get("shared_with") or [])]
    if rid in IDENTITY_DIGESTS:
        return [(facts.get(IDENTITY_DIGESTS[rid]), ev.get("shared_with") or [])]
    if rid == "DIV-02":
        return sorted((fp, others) for fp, others in (ev.get("shared") or {}).items())
    return [(fp, ()) for fp in ev.get("fingerprints") or []]  # RB-06: a retired key is nobody's to keep


def _facts(evidence, guest):
    return ((evidence.get("guests") or {}).get(guest) or {}).get("facts") or {}


def _entry(plan_hosts, host, name, subject):
    entry = plan_hosts.setdefault(host, {}).setdefault(name, {"rules": set(), "subjects": set()})
    entry["subjects"].add(subject)
    return entry


def _plan_identity(hosts, evidence, findings, all_but_one):
    resealed = _Resealed(all_but_one)
    items = []
    for f in findings:
        guest = f["subject"]["id"]
        values = _identity_values(f["rule"], f, _facts(evidence, guest))
        for value, others in values:
            resealed.add(f["rule"], value, guest, others)
        items.append((f, guest, values))
    for f, guest, values in items:
        rid = f["rule"]
        if rid in IDENTITY_DIGESTS:
            digest = values[0][0]
            if not resealed.reseals(rid, digest, guest):
                continue
            entry = _entry(hosts, guest, "identity_reseal", guest)
            entry[IDENTITY_DIGESTS[rid]] = digest
            if rid == "DIV-01" and digest is None:
                # An empty or uninitialized machine-id has no digest to match: identity_reseal is told to
                # regenerate it (force), or it would report nothing to do and the finding would stay.
                entry.setdefault("force", set()).add("machine_id")
        else:
            fps = [fp for fp, _owners in values if resealed.reseals(rid, fp, guest)]
            if not fps:
                continue
            entry = _entry(hosts, guest, "identity_reseal", guest)
            entry.setdefault("ssh_fingerprints", set()).update(fps)
        entry["rules"].add(rid)


def _plan_guest(hosts, f):
    guest, rid, name = f["subject"]["id"], f["rule"], RULES[f["rule"]].remediated_by["remediation"]
    entry = _entry(hosts, guest, name, guest)
    entry["rules"].add(rid)
    if name == "sysctl":
        entry.setdefault("settings", {}).update(SYSCTL_SETTINGS[rid])
    elif name == "expire_passwords":
        entry.setdefault("accounts", set()).update((f.get("evidence") or {}).get("accounts") or [])
    elif name == "reconverge":
        _plan_reconverge(entry, rid, f.get("evidence") or {})


def _plan_reconverge(entry, rid, ev):
    """What a rolled-back guest gets back, from the failing finding's evidence (rules/rb.py): RB-07 the
    accounts usable again ("accounts": [name]), RB-08 the packages below their floor ("packages": {pkg:
    {installed, floor}}) with the floor each must reach, RB-09 the units unmasked again ("services")."""
    entry.setdefault("lock_accounts", set())
    entry.setdefault("packages", {})
    entry.setdefault("mask_services", set())
    if rid == "RB-07":
        entry["lock_accounts"].update(ev.get("accounts") or ())
    elif rid == "RB-08":
        entry["packages"].update((p, v["floor"]) for p, v in (ev.get("packages") or {}).items())
    elif rid == "RB-09":
        entry["mask_services"].update(ev.get("services") or ())


# --- guest isolation (ISO-01, ISO-10, RB-10) -------------------------------------------------------

def _plan_isolation(hosts, skipped, policy, look, f):
    """guest_firewall (ISO-10, RB-10) {service_ports, management_ports, client_ports} and service_lockdown
    (ISO-01) {allowed_ports, client_ports, management_ports, extra} from params.isolation and the guest's
    vmguard_service. ISO-01/ISO-10 fail only for a declared service (else they are errors); an RB-10 failure
    on a guest without one cannot be re-applied: not_enforced with the reason."""
    guest, rid = f["subject"]["id"], f["rule"]
    name = RULES[rid].remediated_by["remediation"]
    iso = policy["params"]["isolation"]
    svc = ((look.guests.get(guest) or {}).get("vars") or {}).get("service")
    if not svc or svc not in iso["services"]:
        why = "the guest declares no vmguard_service" if not svc else \
            "service '%s' is not declared in params.isolation.services" % svc
        skipped.append({"rule": rid, "subject": guest, "reason": "cannot be enforced: %s (no ruleset to apply)" % why})
        return
    service = set(iso["services"][svc].get("ports") or [])
    entry = _entry(hosts, guest, name, guest)
    entry["rules"].add(rid)
    entry.update(client_ports=set(iso["client_ports"]), management_ports=set(iso["management_ports"]))
    if name == "guest_firewall":
        entry["service_ports"] = service
    else:
        entry["allowed_ports"] = service | set(iso["management_ports"])
        entry.setdefault("extra", set()).update((f.get("evidence") or {}).get("extra") or ())


# --- domain_policy parameters ---------------------------------------------------------------------

CONFINING = ("apparmor", "selinux")
# VIS-05: fixer parameter -> the guest var (evidence guests[g].vars) it comes from (inventory vmguard_<var>).
METADATA_VARS = (("owner", "owner"), ("service", "service"), ("expires", "expires"))


class _Lookup(object):
    """What domain_policy's parameters are read from, indexed once per plan (O(n)): a domain's
    evidence, its hypervisor's host evidence, and its inventory guest (vars hypervisor + domain)."""

    def __init__(self, evidence):
        self.hypervisors = evidence.get("hypervisors") or {}
        self.guests = evidence.get("guests") or {}
        self._domains = None
        self._owners = None
        self.disks = None  # _Disks, built on the first ISO-06 finding

    def domain(self, hv, name):
        if self._domains is None:
            self._domains = dict(((h, d.get("name")), d) for h, ev in self.hypervisors.items() if ev
                                 for d in ev.get("domains") or [])
        return self._domains.get((hv, name)) or {}

    def host(self, hv):
        return (self.hypervisors.get(hv) or {}).get("host")

    def networks(self, hv):
        """The hypervisor's libvirt networks {name: {...}}, None when not collected."""
        return (self.hypervisors.get(hv) or {}).get("networks")

    def guest(self, hv, name):
        """(inventory guest name, its vars) of the domain, or (None, {})."""
        if self._owners is None:
            self._owners = {}
            for g in sorted(self.guests):
                v = self.guests[g].get("vars") or {}
                if v.get("hypervisor") and v.get("domain"):
                    self._owners.setdefault((v["hypervisor"], v["domain"]), g)
        g = self._owners.get((hv, name))
        return (g, self.guests[g].get("vars") or {}) if g else (None, {})


def _iso03_params(iso, look, hv, name):
    if "clean-traffic" not in iso["nwfilters"]:
        return None, "params.isolation.nwfilters does not allow clean-traffic, the filter the fix adds"
    mgmt = set(iso["management_networks"])
    nets = look.networks(hv)
    service = [i for i in look.domain(hv, name).get("interfaces") or [] if _net_key(hv, i, mgmt)]
    # The fix adds clean-traffic where it is missing; nwfilter acts on host tap devices only. Nothing to add on a tap
    # device: the failure is a filter on (or a lack on) interfaces without one, which no filter fixes.
    if not [i for i in service if i.get("filterref") not in iso["nwfilters"] and _tap_kind(i, nets) == "tap"]:
        untapped = sorted(set(_untapped(i, nets) for i in service if _tap_kind(i, nets) != "tap"))
        return None, "cannot be enforced: nwfilter does not apply to interfaces without a host tap device (%s)" % (
            ", ".join(untapped) or "none")
    params = {"management_networks": list(iso["management_networks"]), "nwfilters": list(iso["nwfilters"]),
              "filter": "clean-traffic"}
    guest, v = look.guest(hv, name)
    address = v.get("service_address")
    if address not in (None, ""):
        try:
            # "192.0.2.10" or, as inventories often write an interface's address, "192.0.2.10/24"
            params["ip"] = str(ipaddress.IPv4Interface(u"%s" % address).ip)
        except ValueError:
            return None, "vmguard_service_address of %s is %r, not an IPv4 address (clean-traffic's IP parameter)" % (guest, address)
    return params, None


def _untapped(i, nets):
    """How the ISO-03 fix's refusal names an interface without a host tap device (or one it cannot tell)."""
    if i.get("type") == "network":
        return "network %s: %s" % (i.get("network"), _network_kind(i, nets) or "its networks not collected")
    return "type='%s'" % i.get("type")


def _vf_pools(iso, look, hv, name):
    """The SR-IOV VF pool networks (<forward mode='hostdev'>) the domain's interfaces join, not allow-listed as
    network:<name> (ISO-08's fixer removes those interfaces)."""
    nets = look.networks(hv)
    return sorted(set(i["network"] for i in look.domain(hv, name).get("interfaces") or []
                      if i.get("type") == "network" and _network_kind(i, nets) == "hostdev"
                      and "network:%s" % i["network"] not in iso["allowed_hostdevs"]))


def _iso04_params(look, hv):
    models = (look.host(hv) or {}).get("security_models")
    if models is None:
        return None, "cannot be enforced on this host: its security models were not collected"
    if not any(m in CONFINING for m in models):
        return None, "cannot be enforced on this host: no AppArmor or SELinux"
    return {}, None


def _vis05_params(look, hv, name):
    guest, v = look.guest(hv, name)
    if guest is None:
        return None, "no inventory data for its metadata"
    params = dict((key, v[var]) for key, var in METADATA_VARS if v.get(var) not in (None, ""))
    if "expires" in params:
        try:
            params["expires"] = parse_date(params["expires"]).isoformat()
        except ValueError:
            return None, "vmguard_expires of %s is %r, not a date YYYY-MM-DD" % (guest, v["expires"])
    if not params:
        return None, "no inventory data for its metadata: %s sets none of vmguard_owner, vmguard_service, vmguard_expires" % guest
    return dict((k, p if k == "expires" else str(p)) for k, p in params.items()), None


def _service(look, hv, name):
    """The domain's service as the rules see it (engine.service_of_domain): its inventory guest's
    vmguard_service, else its vmguard metadata service; None when neither says."""
    svc = look.guest(hv, name)[1].get("service")
    return svc if svc else (look.domain(hv, name).get("metadata") or {}).get("service")


def _iso02_params(iso, look, hv, name, finding):
    """ISO-02: the domain's service interfaces on segments shared with another service (the finding's
    evidence) move to its service's own network (params.isolation.service_network). Who moves: every
    domain whose shared segment is not its own service's network; a domain on its own service's network
    never moves (the others leave it), so the result does not depend on the order domains are fixed in."""
    svc = _service(look, hv, name)
    if not svc:
        return None, ("cannot be enforced: the domain's service is unknown (no vmguard_service in the inventory, "
                      "no vmguard metadata service): no network to move it to")
    target = iso["service_network"].replace("{service}", str(svc))
    if "/" in target or len(target.split()) != 1:
        return None, "cannot be enforced: service %r gives %r, not a libvirt network name" % (svc, target)
    shared = ((finding or {}).get("evidence") or {}).get("shared") or {}
    segments = sorted(set(k[len(hv) + 1:] for k in shared if k.startswith(hv + "/")))
    own = "network:%s" % target
    move = [s for s in segments if s != own and not s.startswith("direct:")]
    if move:
        return {"management_networks": list(iso["management_networks"]), "network": target, "move": move}, None
    if own in segments:
        return None, "on its own service's network %s: the domains of the other services move off it" % target
    return None, "cannot be enforced: macvtap (type='direct') interfaces share a host NIC, not a network it can replace"


class _Disks(object):
    """ISO-06's view of the fleet's disks, indexed once: rules/iso.py _disk_key -> [(hv, domain, service,
    readonly or shareable)], over the live and, for a running domain, the persistent definition (``inactive``) of
    every domain, as ISO-06's own index: a disk another domain attaches from its next start is shared."""

    def __init__(self, look):
        self.users = {}
        for hv, ev in sorted(look.hypervisors.items()):
            for d in (ev or {}).get("domains") or []:
                svc = _service(look, hv, d.get("name")) or "undeclared:%s/%s" % (hv, d.get("name"))
                for defn in [d] + ([d["inactive"]] if d.get("inactive") else []):
                    for disk in defn.get("disks") or []:
                        if disk.get("source") and disk.get("device") in ("disk", "lun"):
                            self.users.setdefault(_disk_key(hv, disk), []).append(
                                (hv, d.get("name"), svc, bool(disk.get("readonly") or disk.get("shareable"))))


def _disk_spelling(disk):
    """A disk's source as domfix.disk_source spells it (the ISO-06 fixer's ``detach`` items)."""
    return posixpath.normpath(disk["source"]) if disk["type"] in ("file", "block", "dir") else disk["source"]


def boot_disk_positions(disks):
    """The positions in ``disks`` (a domain's disk records in XML order, as evidence/domxml reads them: device,
    boot) of the disks it may boot from, which ISO-06 never detaches: every disk with a <boot order>, and the
    first device='disk' (what <os><boot dev='hd'/> and direct kernel boot's root use). The one definition: the
    planner lists such a disk under not_enforced, the fixer (remediation/domfix.boot_disks) refuses it."""
    out = set(i for i, d in enumerate(disks) if d.get("boot"))
    first = next((i for i, d in enumerate(disks) if (d.get("device") or "disk") == "disk"), None)
    if first is not None:
        out.add(first)
    return sorted(out)


def _own_disks(dom):
    """(the disk/lun records of a domain with a source, each spelling once, live definition first, then what only
    the persistent definition of a running domain attaches; the spellings of those it may boot from in either
    definition). The fixer edits the persistent definition and detaches live what the live one holds, so a disk
    the next start attaches is planned too."""
    disks, seen, boot = [], set(), set()
    for defn in [dom] + ([dom["inactive"]] if dom.get("inactive") else []):
        every = defn.get("disks") or []
        boot.update(_disk_spelling(every[i]) for i in boot_disk_positions(every) if every[i].get("source"))
        for disk in every:
            if disk.get("source") and disk.get("device") in ("disk", "lun") and _disk_spelling(disk) not in seen:
                seen.add(_disk_spelling(disk))
                disks.append(disk)
    return disks, boot


def _iso06_params(look, hv, name):
    """ISO-06: detach from this domain every disk it shares with a domain of another service. Who owns
    the data cannot be told from the evidence (a path is a name; libvirt relabels images to the QEMU
    user), so every domain of a cross-service set lets go of it. Never a boot disk (boot_disk_positions):
    not_enforced. Sharing within one service is not fixed: <readonly/> takes writes away from a guest
    that may need them, and <shareable/> only lifts QEMU's image lock (two writers of a non-cluster file
    system then corrupt it; libvirt refuses it on qcow2): a person decides. Returns (parameters or None,
    why the rest cannot be enforced or None): both when some disks go and others stay."""
    if look.disks is None:
        look.disks = _Disks(look)
    mine = _service(look, hv, name) or "undeclared:%s/%s" % (hv, name)
    disks, boot = _own_disks(look.domain(hv, name))
    detach, why = [], []
    for disk in disks:
        others = [u for u in look.disks.users.get(_disk_key(hv, disk), []) if (u[0], u[1]) != (hv, name)]
        if not others:
            continue
        if any(u[2] != mine for u in others):
            if _disk_spelling(disk) in boot:
                why.append("boot disk shared: give the domain its own image (%s)" % disk["source"])
            else:
                detach.append(_disk_spelling(disk))
        elif not (disk.get("readonly") or disk.get("shareable")) or not all(u[3] for u in others):
            why.append("%s shared within service %s: mark it readonly where the guests only read it, or shareable with a "
                       "cluster file system (a person's choice)" % (disk["source"], mine))
    if not detach and not why:
        why.append("nothing shared found in the evidence")
    params = {"detach": sorted(set(detach))} if detach else None
    return params, ("cannot be enforced: %s" % "; ".join(why) if why else None)


def _iso11_params(iso, finding):
    """ISO-11: the fixer removes <shmem> and <vsock>; a memory backing file shared with another domain (nvdimm,
    virtio-pmem) stays: removing guest memory is a person's choice (not enforced), the channels go all the same."""
    params = {"allowed_shmem": list(iso["allowed_shmem"]), "allow_vsock": bool(iso["allow_vsock"])}
    ev = (finding or {}).get("evidence") or {}
    if not ev.get("shared_memory"):
        return params, None
    why = ("cannot be enforced: a memory device backed by a file another domain maps (%s); give each domain its own "
           "file or private access" % "; ".join(ev["shared_memory"]))
    return (params if ev.get("channels") else None), why


def _fix_params(policy, look, rid, hv, name, finding=None):
    """(the parameters of ``rid``'s domain fixer for domain ``name`` on ``hv``, None), or (None, why it
    cannot be enforced there), or both (ISO-06, a part of it: a shared boot disk stays). From the policy
    (allow-lists, ISO-02's service network), the host evidence (ISO-04: a confining LSM), the fleet (ISO-02:
    the ``finding``'s shared segments, ISO-06: the disks shared with other services) and the domain's
    inventory guest (ISO-03 service address, VIS-05 metadata)."""
    iso = policy["params"]["isolation"]
    if rid == "ISO-02":
        return _iso02_params(iso, look, hv, name, finding)
    if rid == "ISO-06":
        return _iso06_params(look, hv, name)
    if rid == "ISO-03":
        return _iso03_params(iso, look, hv, name)
    if rid == "ISO-04":
        return _iso04_params(look, hv)
    if rid == "ISO-07":
        return {"allowed_filesystems": list(iso["allowed_filesystems"])}, None
    if rid == "ISO-08":
        return {"allowed_hostdevs": list(iso["allowed_hostdevs"]), "vf_pool_networks": _vf_pools(iso, look, hv, name)}, None
    if rid == "ISO-11":
        return _iso11_params(iso, finding)
    if rid == "VIS-05":
        return _vis05_params(look, hv, name)
    return {}, None


def _plan_domain(hosts, skipped, policy, look, f):
    sid, rid = f["subject"]["id"], f["rule"]
    hv, _sep, dom = sid.partition("/")
    if look.domain(hv, dom).get("persistent") is False and rid not in LIVE_DOMAIN_FIXES:
        skipped.append({"rule": rid, "subject": sid, "reason": TRANSIENT_DOMAIN})
        return
    params, reason = _fix_params(policy, look, rid, hv, dom, f)
    if reason:  # all of it, or (ISO-06: a shared boot disk) a part of it
        skipped.append({"rule": rid, "subject": sid, "reason": reason})
    if params is None:
        return
    entry = _entry(hosts, hv, "domain_policy", sid)
    entry["rules"].add(rid)
    entry.setdefault("domains", {}).setdefault(dom, {})[rid] = params


# --- snapshots (RB-02, RB-03, RB-04, RB-13) ----------------------------------------------------------

def pinned_by(domain, snapshot, patterns):
    """The first glob of ``patterns`` matching "<domain>/<snapshot>" (case-sensitive), or None."""
    subject = "%s/%s" % (domain, snapshot)
    for pattern in patterns or ():
        if fnmatch.fnmatchcase(subject, pattern):
            return pattern
    return None


def _keep_reason(domain, snap, pinned, refuse):
    """Why ``snap`` must stay whatever a rule says, or None: current (or not known not to be), pinned,
    or what ``refuse`` (run-time checks of the module, e.g. an external snapshot) says."""
    pattern = pinned_by(domain, snap["name"], pinned)
    if pattern is not None:
        return "pinned (%s)" % pattern
    if snap.get("current") is None:
        return "current flag unknown: never deleted unless known not to be the current snapshot"
    if snap["current"]:
        return "the current snapshot"
    return refuse(snap) if refuse else None


def _without_kept_children(wanted, children):
    """The part of ``wanted`` (names) that can go: repeatedly drop a snapshot with a child that stays.
    Deleting a parent whose children stay would merge it into them: children go first, or it stays."""
    can = set(wanted)
    changed = True
    while changed:
        changed = False
        for name in sorted(can):
            if any(c not in can for c in children.get(name, ())):
                can.discard(name)
                changed = True
    return can


def choose_snapshots(domain, snapshots, flagged, max_count=None, pinned=(), refuse=None):
    """Which snapshots of ``domain`` to delete: (delete {name: why}, refused {name: reason}).

    ``snapshots``: [{"name", "creation_time", "current", "parent"}] (the evidence's snapshots or the
    module's run-time view); ``flagged``: {name: [why, ...]}, the snapshots a rule wants gone;
    ``max_count``: None, or RB-03's limit: besides the flagged ones, the oldest snapshots that can go
    are deleted until at most ``max_count`` stay. Never deleted: the current snapshot, one whose
    current flag is unknown, one matching a glob of ``pinned`` (over "<domain>/<snapshot>"), one
    ``refuse(snapshot)`` gives a reason for, and a parent whose children stay. ``refused`` says why
    for every flagged snapshot that stays. Pure and deterministic; shared by the planner and the
    snapshot_policy module, so the module checks again at run time what was planned.
    """
    by_name = dict((s["name"], s) for s in snapshots)
    children = {}
    for s in snapshots:
        if s.get("parent") in by_name:
            children.setdefault(s["parent"], []).append(s["name"])
    keep = dict((s["name"], _keep_reason(domain, s, pinned, refuse)) for s in snapshots)
    why = dict((n, list(w)) for n, w in flagged.items() if n in by_name and not keep[n])
    can = _without_kept_children(why, children)
    if max_count is not None:
        extra = "RB-03 beyond max_snapshots %d (oldest first)" % max_count
        order = sorted(snapshots, key=lambda s: (s.get("creation_time") is None, s.get("creation_time") or 0, s["name"]))
        while len(snapshots) - len(can) > max_count:
            pick = next((s["name"] for s in order if s["name"] not in can and not keep[s["name"]]
                         and all(c in can for c in children.get(s["name"], ()))), None)
            if pick is None:
                break
            why.setdefault(pick, []).append(extra)
            can = _without_kept_children(why, children)
    refused = {}
    for name in sorted(flagged):
        if name not in by_name:
            refused[name] = "no such snapshot"
        elif keep[name]:
            refused[name] = keep[name]
        elif name not in can:
            refused[name] = "has child snapshot(s) that stay: %s" % ", ".join(
                sorted(c for c in children.get(name, ()) if c not in can))
    return dict((n, "; ".join(why[n])) for n in can), refused


def _domain_evidence(evidence, hv, name):
    for d in ((evidence.get("hypervisors") or {}).get(hv) or {}).get("domains") or []:
        if d.get("name") == name:
            return d
    return None


def _flagged(rid, finding, domain, rollback):
    """{snapshot: why} a failing finding of RB-02, RB-04 or RB-13 wants gone (from its evidence)."""
    ev = finding.get("evidence") or {}
    if rid == "RB-02":
        limit = rollback["max_snapshot_age_hours"]
        return dict((n, "RB-02 older than %dh (%.0fh)" % (limit, h)) for n, h in (ev.get("age_hours") or {}).items())
    if rid == "RB-04":
        epoch = (domain.get("ledger") or {}).get("epoch")
        return dict((n, "RB-04 older than security epoch %s" % epoch) for n in ev.get("snapshots") or [])
    return dict((n, "RB-13 memory-state snapshot") for n in ev.get("snapshots") or [])  # RB-13


def _plan_snapshots(hosts, skipped, policy, evidence, findings):
    """snapshot_policy entries: per domain, the snapshots its failing RB-02/03/04/13 findings want gone,
    minus the current and pinned ones (choose_snapshots). A finding none of whose snapshots can go is
    listed under not_enforced with the reason they stay."""
    rollback = policy["params"]["rollback"]
    per_domain = {}
    for f in findings:
        per_domain.setdefault(f["subject"]["id"], []).append(f)
    for sid in sorted(per_domain):
        hv, _sep, name = sid.partition("/")
        domain = _domain_evidence(evidence, hv, name) or {}
        snaps = domain.get("snapshots") or []
        flagged, by_rule, max_count = {}, {}, None
        per_domain[sid].sort(key=lambda f: f["rule"])  # the reasons of a snapshot in rule order, whatever the input order
        for f in per_domain[sid]:
            if f["rule"] == "RB-03":
                max_count = rollback["max_snapshots"]
                continue
            wants = _flagged(f["rule"], f, domain, rollback)
            by_rule[f["rule"]] = set(wants)
            for n, why in wants.items():
                flagged.setdefault(n, []).append(why)
        delete, refused = choose_snapshots(name, snaps, flagged, max_count, rollback["pinned_snapshots"])
        rules = set()
        for f in per_domain[sid]:
            rid = f["rule"]
            # RB-03 is served by any deletion (fewer snapshots stay); the others by one of their own.
            if delete and (rid == "RB-03" or any(w.find(rid + " ") >= 0 for w in delete.values())):
                rules.add(rid)
                continue
            stays = sorted(by_rule.get(rid, ()))
            why = "; ".join("%s (%s)" % (n, refused[n]) for n in stays if n in refused)
            skipped.append({"rule": rid, "subject": sid, "reason": "snapshots kept: %s" % (
                why or "none of them can go (current, pinned, or a parent of one that stays)")})
        if delete:
            entry = _entry(hosts, hv, "snapshot_policy", sid)
            entry["rules"].update(rules)
            entry["prune"] = bool(rollback["prune_snapshots"])
            # uuid and creation times: the module deletes only the snapshots the audit judged (not_as_planned)
            created = dict((s["name"], s.get("creation_time")) for s in snaps if s["name"] in delete)
            entry.setdefault("domains", {})[name] = {"delete": set(delete), "why": delete, "uuid": domain.get("uuid"),
                                                     "created": created}


# --- host_config (ISO-04 and LEAK-04 host parts, ISO-05, LEAK-01, LEAK-06, LEAK-08) -------------------

DAEMON_SETTINGS = {"listen_tcp": 0, "unix_sock_rw_perms": "0770", "unix_sock_group": "libvirt", "unix_sock_admin_perms": "0700"}
QEMU_SETTINGS = {"LEAK-04": {"dump_guest_core": 0}, "LEAK-08": {"migrate_tls_force": 1}}


def _is_root(value):
    return str(value).strip() in ROOT_NAMES


def _iso05_settings(qc):
    """(qemu.conf keys that make ISO-05 pass, None) or (None, why nothing in qemu.conf can): a root user or
    group becomes the distribution's QEMU account, seccomp_sandbox 0 becomes 1."""
    default = qc.get("qemu_user_default") or {}
    out = {}
    group = qc.get("group") if qc.get("group") is not None or qc.get("user") else default.get("group")
    if _is_root(qc.get("user")) or _is_root(group):
        if not default.get("user") or not default.get("group"):
            return None, "cannot be enforced: the distribution's unprivileged QEMU account is unknown"
        if _is_root(qc.get("user")):
            out["user"] = default["user"]
        if _is_root(group) or (out.get("user") and qc.get("group") is None):
            out["group"] = default["group"]
    if str(qc.get("seccomp_sandbox")).strip() == "0":
        out["seccomp_sandbox"] = 1
    if not out:
        return None, ("qemu.conf already sets an unprivileged user and the seccomp sandbox: QEMU processes started "
                      "before that still run as root until their domains restart")
    return out, None


def _iso04_host_settings(host, qc):
    """security_driver "none" and security_default_confined (other than 1) removed - libvirt then picks the active
    LSM and confines domains without a <seclabel> - where AppArmor or SELinux is active."""
    lsm = host.get("lsm") or {}
    if not (lsm.get("apparmor") or lsm.get("selinux")):
        return None, "cannot be enforced on this host: no AppArmor or SELinux"
    drivers = qc.get("security_driver")
    drivers = drivers if isinstance(drivers, list) else [drivers] if drivers is not None else []
    out = {}
    if any(str(x).strip().lower() == "none" for x in drivers):
        out["security_driver"] = None
    confined = qc.get("security_default_confined")
    if confined is not None and str(confined).strip() != "1":
        out["security_default_confined"] = None
    if out:
        return out, None
    return None, "libvirt does not use the active LSM although qemu.conf does not disable it: install its security driver support"


def _leak06_settings(host):
    out = dict(DAEMON_SETTINGS)
    if any(str(c.get("tls_no_verify_certificate", "0")) == "1" for c in (host.get("daemon_confs") or {}).values()):
        out["tls_no_verify_certificate"] = 0
    return out


def _plan_host_config(hosts, skipped, look, f):
    """host_config entry {"rules", "subjects", "qemu_conf": {key: value, None = remove}, "daemon_conf": {key: value},
    "image_dirs": [path], "image_files": [path], "qemu_gid", "nwfilters": [name]} from the hypervisor's evidence; a
    rule nothing in the configuration can fix is listed under not_enforced with the reason."""
    hv, rid = f["subject"]["id"], f["rule"]
    host = look.host(hv) or {}
    qc = host.get("qemu_conf") or {}
    qemu, daemon, reason = {}, {}, None
    if rid == "ISO-05":
        qemu, reason = _iso05_settings(qc)
    elif rid == "ISO-04":
        qemu, reason = _iso04_host_settings(host, qc)
    elif rid == "LEAK-06":
        daemon = _leak06_settings(host)
    elif rid in QEMU_SETTINGS:
        qemu = QEMU_SETTINGS[rid]
    if reason:
        skipped.append({"rule": rid, "subject": hv, "reason": reason})
        return
    entry = _host_config_entry(hosts, hv)
    entry["rules"].add(rid)
    entry["qemu_conf"].update(qemu or {})
    entry["daemon_conf"].update(daemon)
    if rid == "LEAK-01":
        _plan_images(entry, skipped, hv, host)


def _plan_images(entry, skipped, hv, host):
    """LEAK-01: libvirt's image directories that are not shared (each directory and every file in it), and each
    image outside them (a disk or backing file in a directory that merely holds it) by itself. A shared
    directory (sticky or world-writable) is never chmodded: when the rule flags it, it is not_enforced."""
    dirs = set()
    for d in host.get("image_dirs") or []:
        if not d.get("path"):
            continue
        if not shared_dir(d):
            dirs.add(d["path"])
        elif d["mode"] & 0o006:
            why = "shared directory %s (sticky or world-writable, mode %04o): never chmodded, its other users would " \
                  "break"
            skipped.append({"rule": "LEAK-01", "subject": hv, "reason": why % (d["path"], d["mode"] & 0o7777)})
    entry["image_dirs"].update(dirs)
    entry["image_files"].update(i["path"] for i in host.get("images") or []
                                if i.get("path") and posixpath.dirname(i["path"]) not in dirs)
    entry["qemu_gid"] = host.get("qemu_gid")


def _host_config_entry(hosts, hv):
    entry = _entry(hosts, hv, "host_config", hv)
    for key, empty in (("qemu_conf", {}), ("daemon_conf", {}), ("image_dirs", set()), ("image_files", set()),
                       ("nwfilters", set())):
        entry.setdefault(key, empty)
    entry.setdefault("qemu_gid", None)
    return entry


def _plan_nwfilters(hosts):
    """A hypervisor whose domains get a filterref (ISO-03) gets the filter ensured first (host_config
    nwfilters): a domain referencing a filter libvirt does not have would no longer start."""
    for hv, steps in hosts.items():
        fixes = (steps.get("domain_policy") or {}).get("domains") or {}
        filters = set(p["filter"] for rules in fixes.values() for r, p in rules.items() if r == "ISO-03" and p)
        if filters:
            entry = _host_config_entry(hosts, hv)
            entry["rules"].add("ISO-03")
            entry["nwfilters"].update(filters)


def _plan_watcher(hosts, policy, f):
    hv = f["subject"]["id"]
    entry = _entry(hosts, hv, "revert_watcher", hv)
    entry["rules"].add(f["rule"])
    entry["mgmt_networks"] = list(policy["params"]["isolation"]["management_networks"])


def _domain_uuids(evidence):
    """(hypervisor, domain name) -> uuid, for every domain of every reachable hypervisor."""
    out = {}
    for hv, ev in (evidence.get("hypervisors") or {}).items():
        if ev and not ev.get("error"):
            for d in ev.get("domains") or []:
                if d.get("name") and d.get("uuid"):
                    out[(hv, d["name"])] = d["uuid"]
    return out


def _version_ok(version):
    try:
        debversion.split(version)
    except (ValueError, AttributeError):
        return False
    return True


def _ledger_record(rollback, facts, held, firewall_ok):
    """The security state the guest holds now, as the ledger module records it (see module ledger,
    option record): the installed version of each floor package (a floor), the policy's accounts that
    are locked or absent, the policy's units that are masked, the firewall digest when ISO-10 passes
    (else None: nothing worth keeping, the module keeps the recorded digest). A name the ledger already
    records and the policy still names stays recorded even when the guest lost it (RB-07/RB-09 keep
    reporting the rollback; a harden must not erase their reference). Evidence not collected (accounts
    or services None): the key is left out, so the recorded list stays."""
    packages = facts.get("packages") or {}
    out = {"package_floors": dict((p, packages[p]) for p in rollback["floor_packages"]
                                  if isinstance(packages.get(p), str) and _version_ok(packages[p])),
           "firewall_digest": (facts.get("firewall") or {}).get("digest") if firewall_ok else None}
    accounts = facts.get("accounts")
    if accounts is not None:
        by_name = dict((a.get("name"), a) for a in accounts)
        kept = set(held.get("disabled_accounts") or ())
        out["disabled_accounts"] = sorted(n for n in set(rollback["disabled_accounts"])
                                          if n not in by_name or by_name[n].get("locked") or n in kept)
    services = facts.get("services")
    if services is not None:
        masked = set(services.get("masked") or ()) | set(held.get("masked_services") or ())
        out["masked_services"] = sorted(u for u in set(rollback["masked_services"]) if u in masked)
    return out


def _floor_rises(version, floor):
    try:
        return debversion.compare(version, floor) > 0
    except ValueError:
        return True  # a recorded floor that is no version: the module names it


def _record_changes(record, held):
    """Whether recording ``record`` would change the held ledger record (the module's merge: floors
    only move up, lists replace, a None digest keeps the recorded one)."""
    floors = held.get("package_floors") or {}
    if any(p not in floors or _floor_rises(v, floors[p]) for p, v in record["package_floors"].items()):
        return True
    if any(k in record and record[k] != list(held.get(k) or []) for k in ("disabled_accounts", "masked_services")):
        return True
    return record["firewall_digest"] is not None and record["firewall_digest"] != held.get("firewall_digest")


# The rollback guards a revert quarantine waits for, and the one whose trace an epoch move would erase.
ROLLBACK_GUARDS = ("RB-05", "RB-06", "RB-07", "RB-08", "RB-09", "RB-10")
EPOCH_GUARD = "RB-05"


GUARD_STATUS = {FAIL: "fails", ERROR: "could not be evaluated", WAIVED: "is waived"}


def _guard_findings(findings, guards):
    """{guest: {rule: finding}} of the rollback guards (RB-05..10): those of ``findings``, and ``guards`` (the
    ones the rule selection left out, evaluated for the planner alone)."""
    out = {}
    for f in list(findings) + list(guards or ()):
        if f["rule"] in ROLLBACK_GUARDS and f["subject"]["kind"] == "guest":
            out.setdefault(f["subject"]["id"], {}).setdefault(f["rule"], f)
    return out


def _unsettled(policy, rid, finding, planned, skipped_why):
    """(why guard ``rid`` of a guest is not settled by this run, whether that is the policy's choice), or None:
    settled is passed, not applicable, or failing and remediated by one of the guest's steps (``planned``: the
    rules they carry out). A rule the policy disables guards nothing; one not evaluated at all cannot be
    vouched for. ``skipped_why``: why the triage left the finding as it is, when it did (mode audit, ...)."""
    if not policy["rules"][rid].get("enabled", True):
        return None
    if finding is None:
        return "%s not evaluated in this run" % rid, False
    status = finding["status"]
    if status in (PASS, NA) or (status == FAIL and rid in planned):
        return None
    why = "%s %s" % (rid, GUARD_STATUS.get(status, status))
    if status == FAIL:
        why += " and is not remediated in this run (%s)" % (skipped_why or "not selected")
    return why, status == WAIVED or (status == FAIL and skipped_why in BY_CHOICE)


def _held_back(guest, what, unsettled):
    """The not_enforced entry of a quarantine kept or an epoch not moved: by choice when every guard in the way is."""
    return {"rule": EPOCH_GUARD, "subject": guest, "reason": what + "; ".join(why for why, _c in unsettled),
            "by_choice": all(choice for _w, choice in unsettled)}


def _plan_ledger(hosts, skipped, policy, evidence, look, findings, guards):
    """A ledger entry for every guest with evidence whose domain UUID is known: records the hardening
    and the security state reached (``record``); ``lift_quarantine`` when the held record has a
    quarantine and this run settles every rollback guard (RB-05..10 pass, are not applicable or are
    remediated here); ``epoch`` (move the epoch forward, two-phase) when the guest has another plan step,
    the record changes the ledger, the ledger cannot be read, it holds the pending epoch of an
    unfinished run, or the quarantine is to be lifted - but never while RB-05 is unsettled (a guest
    behind the ledger given the new epoch would pass RB-05: the rollback's trace erased). A quarantine
    kept or an epoch move held back is listed under not_enforced (rule RB-05) with the guards in the way."""
    uuids = _domain_uuids(evidence)
    rollback = policy["params"]["rollback"]
    firewall_ok = set(f["subject"]["id"] for f in findings if f["rule"] == "ISO-10" and f["status"] == PASS)
    guard_findings = _guard_findings(findings, guards)
    skipped_why = dict(((e["rule"], e["subject"]), e["reason"]) for e in skipped if e["rule"] in ROLLBACK_GUARDS)
    for guest, rec in (evidence.get("guests") or {}).items():
        v = rec.get("vars") or {}
        uuid = uuids.get((v.get("hypervisor"), v.get("domain")))
        if rec.get("error") or not rec.get("facts") or not uuid:
            continue
        others = bool(hosts.get(guest))
        planned = set(r for step in (hosts.get(guest) or {}).values() for r in step["rules"])
        found = guard_findings.get(guest) or {}
        unsettled = dict((rid, _unsettled(policy, rid, found.get(rid), planned, skipped_why.get((rid, guest))))
                         for rid in ROLLBACK_GUARDS)
        entry = _entry(hosts, guest, "ledger", guest)
        entry.update(hypervisor=v["hypervisor"], uuid=uuid)
        reseal = hosts[guest].get("identity_reseal") or {}
        entry["retire_fingerprints"] = set(reseal.get("ssh_fingerprints") or ())
        held = look.domain(v["hypervisor"], v["domain"]).get("ledger") or {}
        entry["record"] = _ledger_record(rollback, rec["facts"], held, guest in firewall_ok)
        # A quarantine (the revert watcher's) is lifted once this run's epoch commit succeeded and only when
        # this run reconverges the guest to what the ledger records (the role's quarantine.yml, after ledger.yml).
        quarantined = bool(not held.get("error") and held.get("quarantine"))
        blocking = [unsettled[rid] for rid in ROLLBACK_GUARDS if unsettled[rid]]
        entry["lift_quarantine"] = quarantined and not blocking
        if quarantined and blocking:
            skipped.append(_held_back(guest, "revert quarantine kept (links stay down): ", blocking))
        # Only the quarantine this audit saw is lifted: one a later revert put stays (module option since).
        entry["quarantine_since"] = (held.get("quarantine") or {}).get("since") if entry["lift_quarantine"] else None
        entry["epoch"] = bool(others or held.get("error") or held.get("pending_epoch") is not None
                              or entry["lift_quarantine"] or _record_changes(entry["record"], held))
        if entry["epoch"] and unsettled[EPOCH_GUARD] and not held.get("error"):
            entry["epoch"] = False
            skipped.append(_held_back(guest, "epoch not moved (the guest would pass RB-05 as reconverged): ",
                                      [unsettled[EPOCH_GUARD]]))
        # The revert/restore events the audit saw: the epoch commit fails on any other (one after this audit).
        entry["seen_reverts"] = [e.get("time") for e in held.get("events") or [] if e.get("event") in REVERT_EVENTS]


def _complete(hosts):
    """Every entry carries all its keys: domain_policy its fixes, identity_reseal each item (None or [])."""
    for h in hosts.values():
        if "domain_policy" in h:
            h["domain_policy"]["fixes"] = set(h["domain_policy"]["rules"])
        if "identity_reseal" in h:
            for key, default in (("machine_id_digest", None), ("random_seed_digest", None), ("ssh_fingerprints", set()),
                                 ("force", set())):
                h["identity_reseal"].setdefault(key, default)


def _finish(value):
    """Sets become sorted lists, dicts get sorted keys, recursively: the plan is deterministic."""
    if isinstance(value, dict):
        return dict((k, _finish(value[k])) for k in sorted(value))
    if isinstance(value, (set, frozenset, list, tuple)):
        items = [_finish(v) for v in value]
        return sorted(items) if isinstance(value, (set, frozenset)) else items
    return value


def build_plan(policy, evidence, findings, guards=None):
    """The remediation plan for ``findings`` (engine.evaluate on ``evidence`` under ``policy``).

    ``guards``: when the rule selection (--tags) left out some of the rollback guards RB-05..10, their
    findings evaluated for the planner alone (audit_evaluate does): they decide whether a revert quarantine
    is lifted and the epoch moves, and plan nothing. A guard with no finding at all keeps both as they are.

    Returns {"hosts": {inventory name: {remediation: entry}}, "pending_restart": [...],
    "not_enforced": [{rule, subject, reason, by_choice}], "steps": number of remediation entries (ledger
    entries excluded)}. by_choice: the policy or the design leaves it (audit mode, no remediation, the vsphere
    role's); false: enforceable, but not here, for the reason given.
    The cyclic garbage collector is paused meanwhile, as in engine.evaluate: the plan is acyclic,
    and full scans over a large fleet's findings would make planning superlinear.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        return _build(policy, evidence, findings, guards)
    finally:
        if was_enabled:
            gc.enable()


def _build(policy, evidence, findings, guards):
    planned, pending, skipped = _triage(policy, findings)
    hosts = {}
    look = _Lookup(evidence)
    identity, snapshots = [], []
    for f in planned:
        name = remediation_for(f["rule"], f["subject"]["kind"])["remediation"]
        if name == "identity_reseal":
            identity.append(f)
        elif name == "snapshot_policy":
            snapshots.append(f)
        elif name == "domain_policy":
            _plan_domain(hosts, skipped, policy, look, f)
        elif name == "revert_watcher":
            _plan_watcher(hosts, policy, f)
        elif name == "host_config":
            _plan_host_config(hosts, skipped, look, f)
        elif name in ("guest_firewall", "service_lockdown"):
            _plan_isolation(hosts, skipped, policy, look, f)
        else:
            _plan_guest(hosts, f)
    _plan_snapshots(hosts, skipped, policy, evidence, snapshots)
    _plan_nwfilters(hosts)
    all_but_one = ((policy.get("params") or {}).get("diversity") or {}).get("reseal") == "all_but_one"
    _plan_identity(hosts, evidence, identity, all_but_one)
    _complete(hosts)
    if policy.get("mode", "enforce") == "enforce":
        _plan_ledger(hosts, skipped, policy, evidence, look, findings, guards)
    steps = sum(1 for h in hosts.values() for name in h if name != "ledger")
    return {
        "hosts": _finish(hosts),
        "pending_restart": sorted(pending, key=lambda e: (e["rule"], e["subject"])),
        "not_enforced": sorted((dict(e, by_choice=e.get("by_choice", e["reason"] in BY_CHOICE)) for e in skipped),
                               key=lambda e: (e["rule"], e["subject"], e["reason"])),
        "steps": steps,
    }
