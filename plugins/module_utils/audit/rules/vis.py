# -*- coding: utf-8 -*-
# Copyright: (c) 2026, vmguard.hardening developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""VIS: visibility. "Some virtual images may not be patched or controlled if they are not visible
to the management tools." """

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import posixpath

from ansible_collections.vmguard.hardening.plugins.module_utils.audit.rules import Remediation, rule, check, collected, named, ok, fail, error, na
from ansible_collections.vmguard.hardening.plugins.module_utils.audit.rules.leak import present
from ansible_collections.vmguard.hardening.plugins.module_utils.common.timeutil import parse_date, too_far_ahead, utc

rule("VIS-01", "visibility", "high", "FLEET+HOST", "every domain is in the inventory",
     "Add the domain to vmguard_guests (with vmguard_hypervisor and vmguard_domain), or remove it.")
rule("VIS-02", "visibility", "medium", "FLEET", "every inventory guest exists on its hypervisor",
     "Fix vmguard_hypervisor / vmguard_domain for the guest, or remove it from the inventory.")
rule("VIS-03", "visibility", "high", "HOST", "no QEMU process that libvirt does not know",
     "Find out who started the process (ps -o user,lstart,args) and stop it or bring it under libvirt.")
rule("VIS-04", "visibility", "high", "LEDGER", "no dormant VM: hardened within max_dormant_days",
     "Run the harden playbook on the VM (or retire it); the start gate can refuse to start stale VMs.")
rule("VIS-05", "visibility", "low", "DOM", "owner, service and expiry metadata present",
     "Set vmguard metadata (namespace urn:x-vmguard:domain:1) with owner, service and expires on the domain.",
     remediated_by=Remediation("domain_policy", "set vmguard metadata owner/service/expires from the inventory (vmguard_owner, "
                               "vmguard_service, vmguard_expires of the domain's guest) (VIS-05 fixer)"))
rule("VIS-06", "visibility", "medium", "DOM", "expiry not passed",
     "Retire the VM, or extend its expiry with its owner's approval.")
rule("VIS-07", "visibility", "medium", "HOST", "no unreferenced disk image",
     "Delete the orphaned image (after checking with its owner) or attach it to its domain.")


@check("VIS-01", "domain")
def vis01(ctx, hd):
    hv, d = hd
    g = ctx.guest_of_domain(hv, d)
    if g:
        return ok("in the inventory as %s" % g, guest=g)
    return fail("%s domain '%s' is not in the inventory (state %s)" % (
        "transient" if d.get("persistent") is False else "persistent", d["name"], d.get("state")), state=d.get("state"))


@check("VIS-01", "hypervisor")
def vis01_sessions(ctx, hv):
    """The domains defined in the users' own libvirt sessions (qemu:///session) of the hypervisor host: an audit of
    the hypervisor's URI never lists them, so no rule judges them, started or not (a running one is also a QEMU
    process libvirt does not know: VIS-03). A home that could not be read is an error: a domain may be there."""
    seen = _host_field(hv, "session_domains", "the users' libvirt session domains")
    domains, errors = seen.get("domains") or [], seen.get("errors") or []
    if domains:
        return fail("%d domain(s) defined in a user's own libvirt session, outside the audited URI %s, invisible to "
                    "every rule: %s" % (len(domains), hv.get("uri"), named(
                        ["%s of %s (%s)" % (d["name"], d["user"], d["path"]) for d in domains])),
                    domains=[dict(uri=d["uri"], user=d["user"], name=d["name"], uuid=d.get("uuid"), path=d["path"]) for d in domains],
                    errors=errors)
    if errors:
        return error("the libvirt session definitions of %s could not be read: %s" % (
            ", ".join(sorted(set(e["user"] for e in errors))), "; ".join("%s: %s" % (e["path"], e["error"]) for e in errors)),
            errors=errors)
    return ok("no domain defined in a user's own libvirt session (%d home(s) with a ~/.config looked into)" % seen.get("users", 0))


vis01_sessions.remediation = ("Move the session domain under the audited URI (virsh -c qemu:///session dumpxml, then define it "
                              "with qemu:///system) and add it to vmguard_guests, or remove it (virsh -c qemu:///session undefine "
                              "as its user).")


@check("VIS-02", "guest")
def vis02(ctx, guest):
    v = ctx.guests[guest].get("vars") or {}
    hv = v.get("hypervisor")
    if not hv or not v.get("domain"):
        return na("no vmguard_hypervisor/vmguard_domain declared")
    if hv not in ctx.hypervisors:
        return error("hypervisor %s is not in vmguard_hypervisors" % hv)
    if ctx.hypervisors[hv].get("error"):
        return error("hypervisor %s unreachable: %s" % (hv, ctx.hypervisors[hv]["error"]))
    if ctx.domain_of_guest(guest) is None:
        return fail("domain %s does not exist on %s" % (v["domain"], hv))
    others = [g for g in _claimants(ctx).get((hv, v["domain"]), []) if g != guest]
    if others:
        return fail("%s/%s is declared by %s too: one domain is one inventory guest (either one VM is in the "
                    "inventory twice, or one of them reaches a machine that is not this domain and its evidence is "
                    "taken for it)" % (hv, v["domain"], named(others)), guests=sorted([guest] + others))
    return ok("exists as %s/%s" % (hv, v["domain"]))


def _claimants(ctx):
    """(hypervisor, domain name) -> the sorted inventory guests declaring it (ctx.inventory_domains keeps one)."""
    def build():
        out = {}
        for g in ctx.guest_names:
            v = ctx.guests[g].get("vars") or {}
            if v.get("hypervisor") and v.get("domain"):
                out.setdefault((v["hypervisor"], v["domain"]), []).append(g)
        return out
    return ctx.index("vis:domain_claimants", build)


# VIS-02 must also see guests whose evidence could not be collected: the check only needs vars.
vis02.needs_facts = False


RUNNING = ("running", "paused", "blocked", "pmsuspended", "crashed")


def _host_field(hv, key, what):
    """``hv["host"][key]``: NotCollected (an error naming ``what``) when the collector did not send it."""
    return collected(hv.get("host") or {}, key, what)


@check("VIS-03", "hypervisor")
def vis03(ctx, hv):
    """QEMU processes are tied to domains through the pid libvirt recorded for each running domain.

    A process's argv (its -name/-uuid) is whatever its starter wrote: claiming a domain's name or
    UUID proves nothing when libvirt recorded another pid for that domain. Only for running domains
    whose pid libvirt could not give (remote or test driver) is the name/UUID used, and said so; one
    domain runs in one QEMU, so a second process claiming it is unknown (both are named: which one is
    the domain's cannot be told), and so is one whose name and UUID claim different domains.

    The process list must show every running domain's QEMU process: one it does not show (by libvirt's pid,
    or by name/UUID where the pid is unknown) means the list is incomplete (/proc mounted hidepid, another
    PID namespace), and an incomplete list cannot prove that no unknown process runs: error, never a pass.
    """
    procs = _host_field(hv, "qemu_processes", "QEMU processes")
    domains = collected(hv, "domains")
    running = [d for d in domains if d.get("state") in RUNNING]
    unread = set(d["name"] for d in domains if d.get("error"))  # listed by libvirt, state and pid unknown
    by_pid = dict((d["pid"], d["name"]) for d in running if d.get("pid") is not None)
    no_pid = [d for d in running if d.get("pid") is None]
    names = set(d["name"] for d in no_pid)
    uuids = set(d.get("uuid") for d in no_pid if d.get("uuid"))
    seen = set(p["pid"] for p in procs)
    unseen = sorted("%s (pid %s)" % (name, pid) for pid, name in by_pid.items() if pid not in seen)
    if unseen:
        return error("process list incomplete: libvirt's recorded QEMU pid of %s is not among the %d QEMU "
                     "process(es) seen" % (named(unseen), len(procs)), missing=unseen)
    others = [p for p in procs if p["pid"] not in by_pid]
    seen_names = set(p.get("name") for p in others if p.get("name"))
    seen_uuids = set(str(p["uuid"]).lower() for p in others if p.get("uuid"))
    invisible = sorted(d["name"] for d in no_pid
                       if d["name"] not in seen_names and str(d.get("uuid") or "").lower() not in seen_uuids)
    if invisible:
        return error("process list incomplete: no QEMU process seen for running domain(s) %s (libvirt's pid not "
                     "available; none of the %d QEMU process(es) seen has its name or UUID)" % (named(invisible), len(procs)),
                     missing=invisible)
    unknown, by_name, unverified, claims = [], [], [], {}
    for p in procs:
        who = "pid %s (%s)" % (p["pid"], p.get("name") or p.get("uuid") or "unnamed")
        if p["pid"] in by_pid:
            continue
        claimed = _claimed_domain(p, no_pid)
        if claimed is not None:
            claims.setdefault(claimed, []).append((who, p))
        elif p.get("name") in unread:
            unverified.append(who)
        else:
            unknown.append(who + _identified_by(p))
    for name, claimants in sorted(claims.items()):
        if len(claimants) == 1:
            by_name.append(claimants[0][0])
            continue
        # One domain runs in one QEMU: all but one of these are unknown, and which one is the domain's cannot be told.
        unknown.extend("%s%s, one of %d claiming running domain %s" % (who, _identified_by(p), len(claimants), name)
                       for who, p in claimants)
    if unknown:
        return fail("%d QEMU process(es) unknown to libvirt: %s" % (len(unknown), named(unknown)), processes=unknown)
    if unverified:
        return error("cannot tell whether %s belong(s) to libvirt: the domain(s) of that name could not be read (%s)" % (
            ", ".join(unverified), ", ".join(sorted(unread))), processes=unverified)
    note = "; %d matched by name: libvirt's pid not available" % len(by_name) if by_name else ""
    return ok("%d QEMU process(es), all known to libvirt%s" % (len(procs), note), matched_by_name=by_name)


def _claimed_domain(p, no_pid):
    """The name of the running domain without a pid from libvirt that process ``p`` claims to be by its -name or
    -uuid, or None: a claim whose name and UUID name different domains (or a name whose domain has another
    UUID) is no claim."""
    uuid = str(p.get("uuid") or "").lower()
    claimed = set(d["name"] for d in no_pid
                  if (p.get("name") == d["name"] or (uuid and uuid == str(d.get("uuid") or "").lower()))
                  and not (p.get("name") and p["name"] != d["name"])
                  and not (uuid and d.get("uuid") and uuid != str(d["uuid"]).lower()))
    return claimed.pop() if len(claimed) == 1 else None


def _identified_by(p):
    """What told a process is a QEMU (hostscan.qemu_processes): its executable, or argv[0] when that is unreadable."""
    if p.get("matched_by") == "exe" and p.get("exe"):
        return " [%s]" % p["exe"]
    if p.get("matched_by") == "argv0":
        return " [by argv[0]: its executable is unreadable]"
    return ""


@check("VIS-04", "domain")
def vis04(ctx, hd):
    ledger = present(hd[1], "ledger", "ledger record")  # None: no record (never hardened)
    limit = ctx.params["visibility"]["max_dormant_days"]
    if ledger and ledger.get("error"):
        return error(ledger["error"])
    if not ledger or not ledger.get("last_hardened"):
        return fail("never hardened by vmguard (no ledger record)")
    age = ctx.age_days(ledger["last_hardened"])
    if too_far_ahead(age):  # a clock gone wrong when it was written, or a forged record: never "not dormant yet"
        return error("last_hardened %s lies %.0f days in the future: the clock was wrong when it was written, or the "
                     "record was forged; its dormancy cannot be judged (the next harden run refreshes it)" % (
                         ledger["last_hardened"], -age), age_days=round(age, 1))
    if age > limit:
        return fail("last hardened %.0f days ago (limit %d)" % (age, limit), age_days=round(age, 1))
    return ok("last hardened %.1f days ago" % age, age_days=round(age, 1))


@check("VIS-05", "domain")
def vis05(ctx, hd):
    md = collected(hd[1], "metadata", "domain metadata")
    missing = [k for k in ctx.params["visibility"]["required_metadata"] if not md.get(k)]
    if missing:
        return fail("missing metadata: %s" % ", ".join(missing), missing=missing)
    return ok("metadata %s present" % ", ".join(ctx.params["visibility"]["required_metadata"]))


@check("VIS-06", "domain")
def vis06(ctx, hd):
    """The earliest of the domain's metadata expiry and its inventory guest's vmguard_expires: the VIS-05 fixer writes
    the inventory's only into a domain without one, so an expiry shortened in the inventory (the VM's retirement
    decided) never reached a domain that already had a later one, and the domain passed as not expired."""
    hv, d = hd
    guest = ctx.guest_of_domain(hv, d)
    inventory = (ctx.guests[guest].get("vars") or {}).get("expires") if guest else None
    declared = [("the domain's metadata", collected(d, "metadata", "domain metadata").get("expires")),
                ("vmguard_expires of %s" % guest, inventory)]
    days = []
    for source, exp in declared:
        if not exp:
            continue
        try:
            days.append((parse_date(exp), source))
        except ValueError:
            return error("unparsable expiry %r in %s (expected YYYY-MM-DD)" % (exp, source))
    if not days:
        return na("no expiry set (VIS-05 reports it)")
    day, source = min(days)
    today = utc(ctx.now).date()
    if day < today:
        return fail("expired on %s (%s)" % (day.isoformat(), source), expires=day.isoformat())
    return ok("expires %s" % day.isoformat(), expires=day.isoformat())


@check("VIS-07", "hypervisor")
def vis07(ctx, hv):
    """An image is referenced when it is a disk source or anywhere in a backing chain (a base image
    shared through overlays is not an orphan) of a domain's live or persistent definition. Paths are compared
    normalised. An image no readable domain references while some domain could not be read is an error."""
    images = _host_field(hv, "images", "disk images")
    if not images:
        return na("no disk image found in the image directories and storage pools")
    referenced, unread = set(), []
    for d in collected(hv, "domains"):
        if d.get("error"):
            unread.append(d["name"])  # its XML could not be read: the images it references are unknown
            continue
        for defn in [d] + ([d["inactive"]] if d.get("inactive") else []):  # live and persistent definitions
            for disk in collected(defn, "disks", "disks of domain %s" % d["name"]):
                for path in [disk.get("source")] + list(collected(disk, "backing", "backing chain of %s" % disk.get("target"))):
                    if path:
                        referenced.add(posixpath.normpath(path))
    orphans = sorted(i["path"] for i in images
                     if not i.get("referenced") and posixpath.normpath(i["path"]) not in referenced)
    if orphans and unread:
        return error("%d image(s) referenced by no readable domain (%s), but domain(s) %s could not be read: they may "
                     "reference them" % (len(orphans), named(orphans), named(sorted(unread))), images=orphans, unread=unread)
    if orphans:
        return fail("%d unreferenced image(s): %s" % (len(orphans), named(orphans)), images=orphans)
    return ok("all %d image(s) referenced by a domain or a backing chain" % len(images))
