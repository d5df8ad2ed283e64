# -*- coding: utf-8 -*-
# Copyright: (c) 2026, vmguard.hardening developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""RB: rollback guards. "Rolling back can re-expose patched vulnerabilities, reactivate services,
re-enable accounts, reuse retired keys, reopen firewalls."

The ledger (kept on the hypervisor, outside the guest, so a revert cannot roll it back) records
the security state a guest reached. A guest without a ledger record was never hardened by
vmguard: the ledger rules are not applicable to it (VIS-04 reports it as never hardened). A ledger
that records nothing of a kind yet (no disabled account, no package floor, no masked service, no
retired key, no firewall digest) makes the matching rule not applicable, "nothing recorded yet",
never a pass: there is nothing to compare the guest with.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible_collections.vmguard.hardening.plugins.module_utils.audit.rules import Remediation, rule, check, collected, ok, fail, error, na
from ansible_collections.vmguard.hardening.plugins.module_utils.audit.rules import snapshots_from_the_future
from ansible_collections.vmguard.hardening.plugins.module_utils.audit import debversion
from ansible_collections.vmguard.hardening.plugins.module_utils.common.timeutil import CLOCK_SKEW_SECONDS

rule("RB-01", "rollback", "high", "DOM", "<genid/> present",
     "Add <genid/> to the domain (a new VM generation ID on every revert/restore lets the guest kernel reseed); "
     "takes effect at the next restart.",
     remediated_by=Remediation("domain_policy", "add <genid/> (RB-01 fixer); takes effect at the next restart"))
rule("RB-02", "rollback", "medium", "DOM", "snapshots younger than max_snapshot_age_hours",
     "Delete or consolidate old snapshots (vmguard deletes them only with params.rollback.prune_snapshots).",
     remediated_by=Remediation("snapshot_policy", "delete the snapshots older than max_snapshot_age_hours, only with "
                               "params.rollback.prune_snapshots (never the current or a pinned one)", opt_in=True))
rule("RB-03", "rollback", "low", "DOM", "snapshots per domain <= max_snapshots",
     "Delete snapshots beyond the limit (only with params.rollback.prune_snapshots).",
     remediated_by=Remediation("snapshot_policy", "delete the oldest snapshots beyond max_snapshots, only with "
                               "params.rollback.prune_snapshots (never the current or a pinned one)", opt_in=True))
rule("RB-04", "rollback", "high", "DOM+LEDGER", "no snapshot older than the last security epoch",
     "Delete the snapshots that predate the domain's last security change, or re-take them after hardening.",
     remediated_by=Remediation("snapshot_policy", "delete the snapshots older than the ledger's security epoch, only "
                               "with params.rollback.prune_snapshots (never the current or a pinned one)", opt_in=True))
rule("RB-05", "rollback", "critical", "GUEST+LEDGER", "guest epoch equals the ledger epoch",
     "The guest was rolled back: run the harden playbook to reconverge it (RB-05..10), which moves the epoch forward.",
     remediated_by=Remediation("reconverge", "reconverge the guest (with RB-07..09 what they name; alone, nothing to lock, "
                               "upgrade or mask), record it in the ledger (vmguard.hardening.ledger event reconverge; guest "
                               "role, tasks/reconverge.yml); the ledger step then moves the epoch forward"))
rule("RB-06", "rollback", "critical", "GUEST+LEDGER", "no retired SSH host key present",
     "Rotate the SSH host keys again (they were retired before the rollback brought them back).",
     remediated_by=Remediation("identity_reseal", "rotate the retired SSH host keys that are back"))
rule("RB-07", "rollback", "high", "GUEST+LEDGER", "accounts disabled by policy stay locked or absent",
     "Lock the accounts again (usermod --lock --expiredate 1).",
     remediated_by=Remediation("reconverge", "lock the accounts again: ansible.builtin.user password_lock and expires "
                               "(day 1, already expired); the shell is left as it is (guest role, tasks/reconverge.yml)"))
rule("RB-08", "rollback", "high", "GUEST+LEDGER", "package versions at or above the security floor",
     "Upgrade the packages to at least the recorded floor (apt-get install --only-upgrade).",
     remediated_by=Remediation("reconverge", "upgrade the packages below their floor from the guest's own package "
                               "sources: ansible.builtin.apt state latest, only_upgrade (the next audit judges the floor)"))
rule("RB-09", "rollback", "high", "GUEST+LEDGER", "services masked by policy stay masked",
     "Mask the services again (systemctl mask --now).",
     remediated_by=Remediation("reconverge", "mask the units again and stop them: ansible.builtin.systemd_service "
                               "masked (guest role, tasks/reconverge.yml)"))
rule("RB-10", "rollback", "high", "GUEST", "firewall ruleset digest equals the applied policy's",
     "Re-apply the policy's nftables ruleset.",
     remediated_by=Remediation("guest_firewall", "re-apply table inet vmguard of the guest's service (confirm-or-revert); the "
                               "ledger then records the digest of the ruleset it left"))
rule("RB-11", "rollback", "high", "HOST", "revert watcher running",
     "Install and start the vmguard revert watcher (hypervisor role), which quarantines reverted domains.",
     remediated_by=Remediation("revert_watcher", "install, configure and start the revert watcher service "
                               "(hypervisor role, tasks/watcher.yml)"))
rule("RB-12", "rollback", "medium", "DOM", "no <transient/> (self-reverting) disks",
     "Remove <transient/> from the disks; a disk that silently reverts at shutdown is a rollback nobody sees.",
     remediated_by=Remediation("domain_policy", "remove <transient/> from the disks (RB-12 fixer): the disks then keep "
                               "the guest's writes; takes effect at the next restart"))
rule("RB-13", "rollback", "low", "DOM", "no memory-state snapshots unless allowed",
     "Delete memory-state snapshots (they hold RAM contents: keys, session secrets) or allow them in the policy.",
     remediated_by=Remediation("snapshot_policy", "delete the memory-state snapshots, only with "
                               "params.rollback.prune_snapshots (never the current or a pinned one)", opt_in=True))


def _snapshots(d):
    """The domain's snapshots ([] is none); not collected (missing or None) is NotCollected: an error, never "none"."""
    return collected(d, "snapshots")


@check("RB-01", "domain")
def rb01(ctx, hd):
    return ok("<genid/> present") if collected(hd[1], "genid") else fail("no <genid/>: a revert or restore is invisible to the guest")


@check("RB-02", "domain")
def rb02(ctx, hd):
    snaps = _snapshots(hd[1])
    if not snaps:
        return ok("no snapshots")
    limit = ctx.params["rollback"]["max_snapshot_age_hours"]
    unknown = [s["name"] for s in snaps if s.get("creation_time") is None]
    if unknown:
        return error("snapshots without a creation time: %s" % ", ".join(unknown))
    future = snapshots_from_the_future(ctx, snaps)
    if future:
        return future
    old = dict((s["name"], round((ctx.now - s["creation_time"]) / 3600.0, 1)) for s in snaps
               if (ctx.now - s["creation_time"]) / 3600.0 > limit)
    if old:
        return fail("%d snapshot(s) older than %dh: %s" % (len(old), limit, ", ".join(
            "%s (%.0fh)" % (n, h) for n, h in sorted(old.items()))), age_hours=old)
    return ok("%d snapshot(s), all younger than %dh" % (len(snaps), limit))


@check("RB-03", "domain")
def rb03(ctx, hd):
    snaps = _snapshots(hd[1])
    limit = ctx.params["rollback"]["max_snapshots"]
    if len(snaps) > limit:
        return fail("%d snapshots (limit %d)" % (len(snaps), limit), count=len(snaps))
    return ok("%d snapshot(s) (limit %d)" % (len(snaps), limit), count=len(snaps))


@check("RB-04", "domain")
def rb04(ctx, hd):
    d = hd[1]
    snaps = _snapshots(d)
    ledger = d.get("ledger")  # None: no ledger record (never hardened by vmguard), not missing evidence
    if ledger and ledger.get("error"):
        return error(ledger["error"])
    if not ledger:
        return na("no ledger record: never hardened by vmguard, so no security epoch to compare snapshots with")
    if not ledger.get("epoch_time"):
        return na("nothing recorded yet: the ledger holds no security epoch time to compare snapshots with")
    unknown = sorted(s["name"] for s in snaps if s.get("creation_time") is None)
    if unknown:
        return error("snapshots without a creation time cannot be compared with the security epoch: %s"
                     % ", ".join(unknown))
    future = snapshots_from_the_future(ctx, snaps)
    if future:
        return future
    older = sorted(s["name"] for s in snaps if s["creation_time"] < ledger["epoch_time"])
    if older:
        return fail("revert targets that predate security epoch %s: %s" % (ledger.get("epoch"), ", ".join(older)), snapshots=older)
    if not snaps:
        return ok("no snapshots: no revert target predates security epoch %s" % ledger.get("epoch"))
    return ok("none of %d snapshot(s) predates security epoch %s" % (len(snaps), ledger.get("epoch")))


def _ledger_and_fact(ctx, guest, field, what, recorded, nothing):
    """(ledger, guest fact, None) - or (None, None, the not-applicable/error result to return).

    ``recorded`` is the ledger key of what vmguard recorded; when it is empty there is nothing to
    compare the guest with, which is not applicable (``nothing`` says what is missing), never a pass.
    """
    ledger, res = _ledger_or_na(ctx, guest)
    if res:
        return None, None, res
    if not ledger.get(recorded):
        return None, None, na("nothing recorded yet: %s" % nothing)
    facts = ctx.guests[guest]["facts"]
    value = facts.get(field)
    if value is None:
        why = facts.get("%s_error" % field)
        return None, None, error("%s not collected%s" % (what, ": %s" % why if why else ""))
    return ledger, value, None


def _ledger_or_na(ctx, guest):
    ledger = ctx.ledger_of_guest(guest)
    if ledger is None:
        return None, na("no ledger record: never hardened by vmguard")
    if ledger.get("error"):
        return None, error(ledger["error"])
    return ledger, None


@check("RB-05", "guest")
def rb05(ctx, guest):
    ledger, res = _ledger_or_na(ctx, guest)
    if res:
        return res
    facts = ctx.guests[guest]["facts"]
    if facts.get("epoch_error"):
        return error("guest epoch unreadable: %s" % facts["epoch_error"])
    g = facts.get("epoch")
    want = ledger.get("epoch") or 0
    pending = ledger.get("pending_epoch")
    if want == 0 and g in (None, 0):
        return na("nothing recorded yet: the ledger holds no security epoch (and the guest has none)")
    if pending is not None and g == pending:
        return ok("guest holds the pending epoch %s of an unfinished run (ledger at %s)" % (pending, want))
    if pending is not None and isinstance(g, int) and want < g < pending:
        # Every prepare takes a new number: between the committed epoch and the pending one lie only epochs
        # of runs interrupted since the last commit - not behind it. Once a later run commits, g < want: behind.
        return ok("guest holds epoch %s of an interrupted run, abandoned since (ledger at %s, pending %s)"
                  % (g, want, pending))
    if g is None:
        return fail("the guest has no epoch file but the ledger is at epoch %s: rolled back to before its first hardening" % want,
                    ledger_epoch=want)
    if g < want:
        return fail("guest epoch %s is behind the ledger's %s: the guest was rolled back" % (g, want), guest_epoch=g, ledger_epoch=want)
    if g > want:
        return fail("guest epoch %s is ahead of the ledger's %s: the ledger lost an update" % (g, want), guest_epoch=g, ledger_epoch=want)
    reverts = _reverted_during_run(ledger, want)
    if reverts:
        what = " and ".join(sorted(set(_PAST.get(e.get("event"), str(e.get("event"))) for e in reverts)))
        return fail("guest and ledger at epoch %s, but the run that committed it found the domain %s meanwhile (%s): "
                    "the guest may be the reverted one, given the epoch before or after the revert" % (
                        want, what, ", ".join(str(e.get("time")) for e in reverts)),
                    guest_epoch=g, ledger_epoch=want, reverts=reverts)
    return ok("guest and ledger at epoch %s" % want)


_PAST = {"revert": "reverted", "restore": "restored"}


def _reverted_during_run(ledger, epoch):
    """The reverts (``[{time, event}]``) of the ledger module's revert_during_run event for ``epoch``: that run
    committed the epoch but a revert or restore landed during it, so holding the epoch proves nothing."""
    for e in reversed(ledger.get("events") or []):
        detail = e.get("detail") if isinstance(e, dict) else None
        if e.get("event") == "revert_during_run" and isinstance(detail, dict) and detail.get("epoch") == epoch:
            found = [r for r in detail.get("reverts") or [] if isinstance(r, dict)]
            return found or [{"time": e.get("time"), "event": "revert"}]
    return []


@check("RB-06", "guest")
def rb06(ctx, guest):
    ledger, keys, res = _ledger_and_fact(ctx, guest, "ssh_host_keys", "SSH host keys", "retired_fingerprints",
                                         "the ledger records no retired SSH host key")
    if res:
        return res
    retired = set(ledger["retired_fingerprints"])
    if not keys:
        return na("no SSH host key on the guest (no /etc/ssh host key files): nothing to compare with the %d retired "
                  "fingerprint(s)" % len(retired))
    back = sorted(k["fingerprint"] for k in keys if k["fingerprint"] in retired)
    if back:
        return fail("%d retired SSH host key(s) are back" % len(back), fingerprints=back)
    return ok("none of %d retired fingerprint(s) present among %d host key(s)" % (len(retired), len(keys)))


@check("RB-07", "guest")
def rb07(ctx, guest):
    ledger, accounts, res = _ledger_and_fact(ctx, guest, "accounts", "accounts", "disabled_accounts",
                                             "the ledger records no account disabled by policy")
    if res:
        return res
    if not accounts:
        return error("no account read from the guest's /etc/passwd: cannot tell whether disabled accounts are back")
    by_name = {}
    for a in accounts:  # the first entry of a name, as glibc's getpwnam/getspnam (guest_facts keeps only that one)
        by_name.setdefault(a["name"], a)
    wanted = ledger["disabled_accounts"]
    active = sorted(n for n in wanted if n in by_name and not by_name[n].get("locked"))
    dup = dict((n, by_name[n]["duplicate_lines"]) for n in wanted if by_name.get(n, {}).get("duplicate_lines"))
    more = dict(duplicate_lines=dup) if dup else {}
    note = "; more than one line of %s in the account files (the first one, which login uses, judged)" % (
        ", ".join(sorted(dup))) if dup else ""
    if active:
        return fail("disabled account(s) usable again: %s%s" % (", ".join(_how_usable(n, by_name[n]) for n in active), note),
                    accounts=active, **more)
    return ok("%d disabled account(s) still locked or absent%s" % (len(wanted), note), **more)


def _how_usable(name, account):
    """An account RB-07 finds usable, with why when its password is locked: not expired, an SSH key still logs in (sshd
    with UsePAM, Debian's default, does not look at the password lock) and "ssh -N" needs no shell."""
    if account.get("password_locked"):
        return "%s (password locked but not expired: an SSH key still logs in)" % name
    return name


@check("RB-08", "guest")
def rb08(ctx, guest):
    ledger, installed, res = _ledger_and_fact(ctx, guest, "packages", "package versions", "package_floors",
                                              "the ledger records no package security floor")
    if res:
        return res
    if not installed:
        return error("no installed package read from the guest's dpkg status: cannot compare with the floors")
    below = {}
    floors = ledger["package_floors"]
    for pkg, floor in sorted(floors.items()):
        have = installed.get(pkg)  # None: the package is not installed (a floor does not require it)
        if have is not None and debversion.compare(have, floor) < 0:
            below[pkg] = {"installed": have, "floor": floor}
    if below:
        return fail("%d package(s) below their security floor: %s" % (len(below), ", ".join(
            "%s %s < %s" % (p, v["installed"], v["floor"]) for p, v in below.items())), packages=below)
    return ok("%d package floor(s) met" % len(floors))


@check("RB-09", "guest")
def rb09(ctx, guest):
    ledger, services, res = _ledger_and_fact(ctx, guest, "services", "services", "masked_services",
                                             "the ledger records no service masked by policy")
    if res:
        return res
    masked = set(collected(services, "masked", "services.masked"))
    wanted = ledger["masked_services"]
    back = sorted(s for s in wanted if s not in masked)
    if back:
        return fail("masked service(s) unmasked again: %s" % ", ".join(back), services=back)
    return ok("%d service(s) still masked" % len(wanted))


@check("RB-10", "guest")
def rb10(ctx, guest):
    ledger, res = _ledger_or_na(ctx, guest)
    if res:
        return res
    want = ledger.get("firewall_digest")
    if not want:
        return na("nothing recorded yet: the ledger holds no digest of a firewall ruleset applied by vmguard")
    fw = ctx.guests[guest]["facts"].get("firewall")
    if not fw or fw.get("error") or not fw.get("digest"):
        return error("firewall ruleset not collected: %s" % ((fw or {}).get("error") or "missing"))
    if fw["digest"] == want:
        return ok("firewall ruleset matches the applied policy")
    return fail("firewall ruleset differs from the one vmguard applied", digest=fw["digest"], expected=want)


# A heartbeat written at most this far in the future still counts (a small NTP step correction between the
# watcher's write and the read); anything further is no proof that the watcher runs now.
HEARTBEAT_SKEW_SECONDS = CLOCK_SKEW_SECONDS


def _watcher_config_differs(ctx, hv, w):
    """Why the running watcher does not watch what this audit audits, or None: its heartbeat's URI must be the
    audited one and its management networks (the links it leaves up) the policy's. A heartbeat that does not
    say (a watcher from before 0.2.4) proves neither: it must be installed again."""
    uri, nets = w.get("uri"), w.get("mgmt_networks")
    if uri is None or nets is None:
        return ("its heartbeat does not say which %s it uses (a watcher from before 0.2.4): it must be reinstalled"
                % " and ".join(x for x, v in (("libvirt URI", uri), ("management networks", nets)) if v is None))
    wrong = []
    if hv.get("uri") and uri != hv["uri"]:
        wrong.append("it watches %s, not the audited %s" % (uri, hv["uri"]))
    want = sorted(set(ctx.params["isolation"]["management_networks"]))
    if sorted(set(nets)) != want:
        wrong.append("it leaves the links on management networks [%s] up, the policy's are [%s]" % (
            ", ".join(sorted(set(nets))), ", ".join(want)))
    return "; ".join(wrong) or None


@check("RB-11", "hypervisor")
def rb11(ctx, hv):
    """The watcher proves itself by its lock and a fresh heartbeat from the lock holder.

    A process whose command line merely contains the watcher's name proves nothing. A heartbeat from the future
    (negative age: the clock was stepped back, or the file was written ahead) proves nothing about now: beyond
    HEARTBEAT_SKEW_SECONDS of clock skew between the watcher's write and the reader's clock it fails.
    """
    w = (hv.get("host") or {}).get("watcher")
    if w is None:
        return error("watcher state not collected")
    if "lock_held" not in w:
        return error("watcher lock state not collected (%s)" % (w.get("lock_path") or "no lock path"))
    limit = (ctx.params.get("rollback") or {}).get("watcher_heartbeat_seconds", 30)
    age, holder, beat = w.get("heartbeat_age_seconds"), w.get("holder_pid"), w.get("heartbeat_pid")
    evidence = dict(lock_held=w["lock_held"], holder_pid=holder, heartbeat_pid=beat, heartbeat_age_seconds=age)
    missing = []
    if not w["lock_held"]:
        missing.append("no lock holder on %s" % (w.get("lock_path") or "the watcher lock"))
    if age is None:
        missing.append("no heartbeat in %s" % (w.get("heartbeat_path") or "the heartbeat file"))
    elif age > limit:
        missing.append("stale heartbeat %.0fs (limit %ds)" % (age, limit))
    elif age < -HEARTBEAT_SKEW_SECONDS:
        missing.append("heartbeat %.0fs in the future (clock stepped back? at most %ds of skew)" % (-age, HEARTBEAT_SKEW_SECONDS))
    if holder is not None and beat is not None and holder != beat:
        missing.append("heartbeat from another pid (%s) than the lock holder (%s)" % (beat, holder))
    if w.get("connected") is False:  # None: a heartbeat that does not say (an older watcher)
        evidence.update(connected=False, uri=w.get("uri"))
        missing.append("watcher running but not connected to libvirt%s" % (
            " (%s)" % w["uri"] if w.get("uri") else ""))
    if missing:
        if w.get("error"):
            missing.append("reading it: %s" % w["error"])
        return fail("revert watcher not proven running: %s; a snapshot revert or restore would go unnoticed and "
                    "unquarantined" % "; ".join(missing), **evidence)
    if w.get("connected") is True:
        evidence.update(connected=True, uri=w.get("uri"))
    wrong = _watcher_config_differs(ctx, hv, w)
    if wrong:
        evidence.update(uri=w.get("uri"), mgmt_networks=w.get("mgmt_networks"))
        return fail("revert watcher runs, but %s; the plan installs it again with this audit's configuration"
                    % wrong, **evidence)
    return ok("revert watcher holds its lock%s, heartbeat %.0fs old%s" % (
        " (pid %s)" % holder if holder is not None else "", age,
        ", connected to %s" % (w.get("uri") or "libvirt") if w.get("connected") else ""), **evidence)


@check("RB-12", "domain")
def rb12(ctx, hd):
    disks = [x["target"] or x["source"] for x in collected(hd[1], "disks") if x.get("transient")]
    if disks:
        return fail("transient (self-reverting) disk(s): %s" % ", ".join(str(x) for x in disks), disks=disks)
    return ok("no transient disks")


@check("RB-13", "domain")
def rb13(ctx, hd):
    snaps = _snapshots(hd[1])
    mem = sorted(s["name"] for s in snaps if s.get("memory") in ("internal", "external"))
    if not mem:
        return ok("no memory-state snapshots")
    if ctx.params["rollback"]["allow_memory_snapshots"]:
        return ok("%d memory-state snapshot(s), allowed by policy" % len(mem))
    return fail("memory-state snapshot(s): %s" % ", ".join(mem), snapshots=mem)
