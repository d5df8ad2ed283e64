#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, vmguard.hardening developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: guest_firewall
short_description: Apply the guest's inbound nftables default-deny policy, with confirm-or-revert
version_added: "0.1.0"
description:
  - Renders an nftables inbound policy from the ports of the guest's one declared service, the management
    ports and the UDP ports of DHCP client replies - the input base chain drops by default and accepts
    loopback, established and related traffic, the ICMP and ICMPv6 messages IPv4 and IPv6 need (errors,
    echo request, neighbour and router discovery, MLD), TCP O(management_ports), TCP and UDP
    O(service_ports) and UDP O(client_ports); invalid packets are dropped (ISO-10).
  - The module owns C(table inet vmguard) and nothing else. Other tables are neither read for the decision
    nor changed; since a drop in any input base chain is final, they cannot open what this table closes,
    and the audit (ISO-10) judges all input base chains together.
  - The rendered ruleset is checked with C(nft -c -f) before anything is applied or written; it replaces the
    table in one nft transaction.
  - Confirm-or-revert. O(state=applied) saves what restores the table as it was (in O(state_dir), 0700),
    applies the new table and starts a detached process (double fork, no systemd needed) that restores the
    saved table after O(confirm_timeout) seconds unless a second call with O(state=confirmed) comes first -
    run it after the controller has reconnected through the new ruleset. If the controller is cut off, the
    guest reverts by itself. The ruleset is persisted to O(path) only on confirmation (atomically, mode
    0600), so a reboot before the confirmation boots the old ruleset too. O(confirm_timeout=0) applies and
    persists at once, without a revert.
  - Idempotent - nothing is done when the last confirmed apply was of the same rendering, the live table is
    still the one applied and O(path) holds it.
  - Returns C(digest), the digest of the whole C(nft -j list ruleset) after the apply, computed as
    M(vmguard.hardening.guest_facts) does, so the ledger records what the next audit compares (RB-10).
  - Needs root and the C(nft) command (package nftables).
author:
  - vmguard.hardening developers (@vmguard)
requirements:
  - nft (nftables) on the guest
options:
  state:
    description:
      - V(applied) renders and applies the ruleset (with a pending revert unless O(confirm_timeout=0)).
      - V(confirmed) cancels the pending revert and persists the applied ruleset to O(path); it fails when
        the guest already reverted it. With nothing pending it changes nothing.
    type: str
    choices: [applied, confirmed]
    default: applied
  service_ports:
    description: Ports of the guest's declared service, accepted over TCP and UDP.
    type: list
    elements: int
    default: []
  management_ports:
    description:
      - TCP ports of management access (SSH), accepted from any source. Required with O(state=applied) and
        must not be empty - the ruleset would cut off Ansible itself.
    type: list
    elements: int
  client_ports:
    description: UDP ports on which the guest's DHCP clients receive replies (68, 546).
    type: list
    elements: int
    default: []
  confirm_timeout:
    description:
      - Seconds after O(state=applied) until the guest restores the previous table unless confirmed.
      - V(0) applies and persists at once, with no revert.
    type: int
    default: 60
  path:
    description: The persisted ruleset, loaded at boot with C(nft -f) (the guest role installs the unit that loads it).
    type: path
    default: /etc/vmguard/firewall.nft
  boot_unit:
    description:
      - The systemd unit that loads O(path) at every boot, before the network comes up (after C(nftables.service),
        whose ruleset flushes everything, and restarted and reloaded with it). The module writes it (0644,
        atomically) when its text differs, enables the unit (the link C(systemctl enable) makes in
        C(sysinit.target.wants) next to it) and reloads systemd when it runs and the file changed; with either
        O(state), so one call installs, applies and keeps the firewall across reboots.
      - Its file name is the unit's name and must end in C(.service).
      - An empty string leaves boot loading to you (nothing is written or enabled).
    type: str
    default: /etc/systemd/system/vmguard-firewall.service
  state_dir:
    description: Private state of the module (saved table, pending apply, last confirmed apply), created 0700.
    type: path
    default: /var/lib/vmguard/firewall
extends_documentation_fragment:
  - vmguard.hardening.attributes.changes
notes:
  - In check mode the rendered ruleset is validated with C(nft -c -f) against the running kernel and
    nothing is applied, written or started; C(digest) is the current one when nothing would change, else null.
seealso:
  - module: vmguard.hardening.guest_facts
  - module: vmguard.hardening.service_lockdown
"""

EXAMPLES = r"""
- name: ISO-10 | Apply the inbound policy of a web guest (reverted after 90 s unless confirmed)
  vmguard.hardening.guest_firewall:
    service_ports: [80, 443]
    management_ports: [22]
    client_ports: [68, 546]
    confirm_timeout: 90
  become: true
  register: fw

- name: Reconnect through the new ruleset (a new connection, not the one kept open)
  ansible.builtin.meta: reset_connection

- name: Wait until the guest answers again
  ansible.builtin.wait_for_connection:
    timeout: 30
  when: fw.pending

- name: ISO-10 | Confirm the ruleset (cancels the revert, persists it)
  vmguard.hardening.guest_firewall:
    state: confirmed
  become: true
  when: fw.pending
"""

RETURN = r"""
digest:
  description:
    - SHA-256 of the whole C(nft -j list ruleset) after the module ran (handles, metainfo and counters left out),
      the value M(vmguard.hardening.guest_facts) reports as C(firewall.digest).
    - Null in check mode when the ruleset would change.
  returned: always
  type: str
  sample: 3a4b8c1d2e3f405162738495a6b7c8d9e0f1a2b3c4d5e6f708192a3b4c5d6e7f
pending:
  description: A revert is armed and waits for O(state=confirmed).
  returned: always
  type: bool
  sample: true
revert_at:
  description: When the guest restores the previous table unless confirmed (seconds since the epoch), or null.
  returned: always
  type: float
  sample: 1795000000.5
confirmed:
  description: With O(state=confirmed), whether this call confirmed (and persisted) a pending apply.
  returned: always
  type: bool
  sample: true
reason:
  description: Why the ruleset is (or would be) applied, or why nothing is done.
  returned: always
  type: str
  sample: the live table inet vmguard differs from the one applied
ruleset:
  description: The rendered ruleset (nft text) with O(state=applied).
  returned: always
  type: str
  sample: "table inet vmguard {...}"
boot_unit:
  description:
    - The boot unit O(boot_unit) (empty with O(boot_unit="")), whether its file was (or in check mode would be)
      written and whether it was (would be) enabled by this call.
  returned: always
  type: dict
  sample: {path: /etc/systemd/system/vmguard-firewall.service, written: true, enabled: true}
path:
  description: The persisted ruleset file.
  returned: always
  type: str
  sample: /etc/vmguard/firewall.nft
"""

import json
import os
import stat
import tempfile
import time

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.vmguard.hardening.plugins.module_utils.common import fsutil, timeutil
from ansible_collections.vmguard.hardening.plugins.module_utils.evidence import nftables
from ansible_collections.vmguard.hardening.plugins.module_utils.remediation import firewall, fwconfirm

TABLE = "%s %s" % (firewall.FAMILY, firewall.TABLE)


class Nft(object):
    """nft for the module. ``changed`` is set once the module has changed the live ruleset or its state (a ruleset
    loaded, a confirmation begun): every failure from then on reports changed=true (fail)."""

    def __init__(self, module):
        self.module = module
        self.changed = False
        self.bin = module.get_bin_path("nft")
        if not self.bin:
            module.fail_json(msg="nft is not installed (package nftables): the guest firewall needs it")

    def run(self, args, what):
        rc, out, err = self.module.run_command([self.bin] + args)
        if rc != 0:
            self.fail("%s failed (rc %d): %s" % (what, rc, err.strip()), rc=rc)
        return out

    def check(self, path, what):
        rc, out, err = self.module.run_command([self.bin, "-c", "-f", path])
        if rc != 0:
            self.fail("nft -c refuses %s, nothing was applied or written: %s" % (what, err.strip()), rc=rc)

    def table(self):
        """(listing text, digest) of table inet vmguard, (None, None) when it is not loaded."""
        rc, out, err = self.module.run_command([self.bin, "list", "table", firewall.FAMILY, firewall.TABLE])
        if rc != 0:
            if "No such file or directory" in err:
                return None, None
            self.fail("nft list table %s failed (rc %d): %s" % (TABLE, rc, err.strip()))
        doc = self._json(self.run(["-j", "list", "table", firewall.FAMILY, firewall.TABLE], "nft -j list table " + TABLE))
        return out, firewall.table_digest(doc, nftables.normalise)

    def digest(self):
        """The RB-10 digest of the whole ruleset, as guest_facts computes it."""
        out = self.run(["-j", "list", "ruleset"], "nft -j list ruleset")
        if not out.strip():
            return nftables.digest({"nftables": []})
        return nftables.digest(self._json(out))

    def _json(self, text):
        try:
            return json.loads(text)
        except ValueError as e:
            self.fail("nft printed no JSON: %s" % e)

    def fail(self, msg, **kw):
        """module.fail_json, changed=true once anything was changed (a partial apply is a change)."""
        self.module.fail_json(msg=msg, changed=self.changed, **kw)


def _fail_state(module, e):
    module.fail_json(msg=str(e))


def _persisted(module, path):
    try:
        return fwconfirm.read_text(path)
    except fwconfirm.StateError as e:
        _fail_state(module, e)


def _persist(path, text):
    parent = os.path.dirname(path)
    if parent and not os.path.isdir(parent):
        os.makedirs(parent, 0o755)
    fsutil.atomic_write(path, text, mode=0o600)


def _validate_text(nft, text, what, directory):
    """nft -c -f on a private copy of ``text`` (mkstemp in ``directory``, removed afterwards)."""
    fd, tmp = tempfile.mkstemp(prefix=".check.", suffix=".nft", dir=directory)
    try:
        with os.fdopen(fd, "w") as f:
            f.write(text)
        nft.check(tmp, what)
    finally:
        os.unlink(tmp)


def _result(**kw):
    out = dict(changed=False, digest=None, pending=False, revert_at=None, confirmed=False, reason=None,
               ruleset=None, path=None)
    out.update(kw)
    return out


def _stale_pending(module, nft, sd, pending):
    """A pending apply whose reverter is gone (the guest rebooted, or it was killed): revert it now."""
    if module.check_mode:
        return
    record = fwconfirm.revert_now(nft.bin, sd, pending["token"], "its revert process was gone; reverted at the next run")
    if record:  # the saved table is loaded again and the pending apply forgotten: a change, whatever follows
        nft.changed = True
    if record and not record["ok"]:
        nft.fail("an unconfirmed apply could not be reverted: %s" % record["error"])
    module.warn("an earlier unconfirmed apply (at %s) had lost its revert process and was reverted now"
                % _iso(pending.get("applied_at")))


def apply(module, nft):
    p = module.params
    try:
        rendered = firewall.render(p["service_ports"], p["management_ports"], p["client_ports"])
    except firewall.FirewallError as e:
        module.fail_json(msg=str(e))
    source_sha = firewall.sha256_text(rendered)
    sd = p["state_dir"]
    try:
        have_dir = fwconfirm.ensure_dir(sd, create=not module.check_mode, repair=not module.check_mode)
    except (fwconfirm.StateError, OSError) as e:
        module.fail_json(msg="state_dir %s: %s" % (sd, e))
    if not have_dir:  # check mode on a guest never hardened: nothing recorded
        return _apply_locked(module, nft, None, rendered, source_sha)
    try:
        with fwconfirm.Lock(sd):
            return _apply_locked(module, nft, sd, rendered, source_sha)
    except fwconfirm.StateError as e:
        nft.fail(str(e))


def _apply_locked(module, nft, sd, rendered, source_sha):
    p = module.params
    pending = fwconfirm.read_json(sd, fwconfirm.PENDING) if sd else None
    if pending:
        if fwconfirm.alive(pending.get("pid"), pending.get("pid_start")):
            if pending.get("source_sha256") == source_sha and nft.table()[1] == pending.get("table_digest"):
                return _result(digest=nft.digest(), pending=True, revert_at=pending.get("deadline"), ruleset=rendered,
                               path=p["path"], reason="applied, awaiting confirmation (state=confirmed)")
            module.fail_json(msg="an earlier apply of another ruleset awaits confirmation until %s (revert process %s): "
                                 "confirm it with state=confirmed or wait for the revert"
                                 % (_iso(pending.get("deadline")), pending.get("pid")))
        _stale_pending(module, nft, sd, pending)
    _validate_text(nft, rendered, "the rendered ruleset", sd or tempfile.gettempdir())
    listing, live = nft.table()
    persisted = _persisted(module, p["path"])
    record = fwconfirm.read_json(sd, fwconfirm.APPLIED) if sd else None
    done, why = firewall.in_place(record, source_sha, live, persisted, rendered)
    if done:  # changed only when a stale pending apply was reverted just before
        return _result(changed=nft.changed, digest=nft.digest(), ruleset=rendered, path=p["path"], reason="in place")
    diff = [dict(before_header="%s (live)" % TABLE, before=listing or "", after_header="%s (applied)" % TABLE, after=rendered),
            dict(before_header=p["path"], before=persisted or "", after_header=p["path"], after=rendered)]
    if module.check_mode:
        return _result(changed=True, ruleset=rendered, path=p["path"], reason=why, diff=diff)
    revert = firewall.revert_text(listing)
    _validate_text(nft, revert, "the saved table inet vmguard (the revert would not load; fix or delete the table)", sd)
    fwconfirm.write(sd, fwconfirm.REVERT, revert)
    fwconfirm.write(sd, fwconfirm.STAGED, rendered)
    nft.run(["-f", os.path.join(sd, fwconfirm.STAGED)], "nft -f (apply)")
    nft.changed = True  # applied: whatever fails from here on, the live ruleset changed
    after_listing, after_digest = nft.table()
    diff[0]["after"] = after_listing or ""
    now = time.time()
    if p["confirm_timeout"] == 0:
        _persist(p["path"], rendered)
        fwconfirm.write(sd, fwconfirm.APPLIED, dict(source_sha256=source_sha, table_digest=after_digest, time=now))
        fwconfirm.remove(sd, fwconfirm.STAGED)
        return _result(changed=True, digest=nft.digest(), ruleset=rendered, path=p["path"], reason=why, diff=diff)
    token = fwconfirm.new_token()
    deadline = now + p["confirm_timeout"]
    fwconfirm.remove(sd, fwconfirm.REVERTED)
    pending = dict(token=token, source_sha256=source_sha, table_digest=after_digest, applied_at=now, deadline=deadline)
    fwconfirm.write(sd, fwconfirm.PENDING, pending)
    try:
        pending["pid"], pending["pid_start"] = fwconfirm.spawn_reverter(nft.bin, sd, token, p["confirm_timeout"])
    except (fwconfirm.StateError, OSError) as e:
        undone = fwconfirm.revert_now(nft.bin, sd, token, "the revert process could not be started")
        nft.changed = not (undone and undone["ok"])  # reverted at once: as it was
        nft.fail("applied, but no revert process could be started (%s): %s" % (
            e, "reverted at once" if undone and undone["ok"] else "and reverting failed: %s" % (undone or {}).get("error")))
    fwconfirm.write(sd, fwconfirm.PENDING, pending)  # under the lock: the reverter reads it only after its deadline
    diff[1]["after"] = persisted or ""  # persisted only on confirmation
    return _result(changed=True, digest=nft.digest(), pending=True, revert_at=deadline, ruleset=rendered, path=p["path"],
                   reason=why, diff=diff)


def confirm(module, nft):
    p = module.params
    sd = p["state_dir"]
    try:
        if not fwconfirm.ensure_dir(sd, create=False, repair=not module.check_mode):
            return _result(digest=nft.digest(), path=p["path"], reason="nothing applied, nothing to confirm")
        with fwconfirm.Lock(sd):
            pending = fwconfirm.read_json(sd, fwconfirm.PENDING)
            if not pending:
                reverted = fwconfirm.read_json(sd, fwconfirm.REVERTED)
                if reverted:
                    module.fail_json(msg="the ruleset applied at %s was already reverted at %s (%s)%s" % (
                        _iso(reverted.get("applied_at")), _iso(reverted.get("time")), reverted.get("why"),
                        "" if reverted.get("ok") else "; the revert itself failed: %s" % reverted.get("error")))
                return _result(digest=nft.digest(), path=p["path"], reason="nothing pending")
            live = nft.table()[1]
            if live != pending.get("table_digest"):
                module.fail_json(msg="table %s changed since it was applied; not confirmed, the revert stays armed until %s"
                                 % (TABLE, _iso(pending.get("deadline"))))
            staged = fwconfirm.read_text(os.path.join(sd, fwconfirm.STAGED))
            if staged is None or firewall.sha256_text(staged) != pending.get("source_sha256"):
                module.fail_json(msg="%s: the applied ruleset is missing or altered; not confirmed" % os.path.join(sd, fwconfirm.STAGED))
            persisted = _persisted(module, p["path"])
            diff = dict(before_header=p["path"], before=persisted or "", after_header=p["path"], after=staged)
            if module.check_mode:
                return _result(changed=True, confirmed=True, path=p["path"], reason="would confirm", diff=diff)
            _validate_text(nft, staged, "the applied ruleset", sd)
            fwconfirm.remove(sd, fwconfirm.PENDING)  # from here on the reverter finds nothing to do
            nft.changed = True
            _persist(p["path"], staged)
            fwconfirm.write(sd, fwconfirm.APPLIED, dict(source_sha256=pending["source_sha256"], table_digest=live,
                                                        time=time.time()))
            fwconfirm.remove(sd, fwconfirm.STAGED)
        fwconfirm.end(pending.get("pid"), pending.get("pid_start"))
    except (fwconfirm.StateError, fsutil.UnsafePathError, OSError) as e:
        nft.fail(str(e))
    return _result(changed=True, digest=nft.digest(), confirmed=True, path=p["path"], reason="confirmed", diff=diff)


def _wanted_by_link(path):
    """(directory, name, target) of the link that enables the boot unit ``path`` (WantedBy=sysinit.target), as
    ``systemctl enable`` makes it: <unit directory>/sysinit.target.wants/<name> -> ``path``."""
    return os.path.join(os.path.dirname(path), "sysinit.target.wants"), os.path.basename(path), path


def _is_linked(wants, name, target):
    """Whether ``wants``/``name`` is the enabling link to ``target`` (a directory that is a link is refused)."""
    try:
        st = os.lstat(wants)
    except OSError:
        return False
    if not stat.S_ISDIR(st.st_mode):
        raise fwconfirm.StateError("%s is not a directory (a link or a file): the boot unit cannot be enabled" % wants)
    try:
        return os.readlink(os.path.join(wants, name)) == target
    except OSError:
        return False


def _link(wants, name, target):
    """Makes ``wants``/``name`` the link to ``target``, replacing whatever is there atomically (fsutil.link_at: a new
    link renamed over it, relative to the directory's descriptor, so no link on the way is followed)."""
    if not os.path.isdir(wants):
        os.mkdir(wants, 0o755)
    dfd = os.open(wants, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW)
    try:
        fsutil.link_at(dfd, name, target)
    finally:
        os.close(dfd)


def _boot_unit(module, nft, result):
    """Installs and enables the unit loading the persisted ruleset at boot (firewall.boot_unit), or predicts it in
    check mode; adds ``boot_unit`` (and its diff) to ``result``. Enabling makes the link ``systemctl enable`` makes
    for WantedBy=sysinit.target (no systemctl needed, so it works on an offline root too); systemd, when it runs,
    reloads its units after the file changed. Whatever fails here fails the call, changed=true when the firewall
    step itself changed something."""
    path = module.params["boot_unit"]
    info = dict(path=path, written=False, enabled=False)
    result["boot_unit"] = info
    if not path:
        return result
    nft.changed = nft.changed or result["changed"]
    try:
        if not os.path.isabs(path) or not os.path.basename(path).endswith(".service"):
            raise firewall.FirewallError("boot_unit: %r is not an absolute path to a .service file" % path)
        text = firewall.boot_unit(nft.bin, module.params["path"])
        before = fwconfirm.read_text(path)
        wants, name, target = _wanted_by_link(path)
        info["written"], info["enabled"] = before != text, not _is_linked(wants, name, target)
    except (firewall.FirewallError, fwconfirm.StateError) as e:
        nft.fail(str(e))
    if not (info["written"] or info["enabled"]):
        return result
    result["changed"] = True
    if info["written"]:
        diff = result.get("diff") or []
        result["diff"] = (diff if isinstance(diff, list) else [diff]) + [
            dict(before_header=path, before=before or "", after_header=path, after=text)]
    if module.check_mode:
        return result
    if info["written"]:
        parent = os.path.dirname(path)
        if not os.path.isdir(parent):
            os.makedirs(parent, 0o755)
        fsutil.atomic_write(path, text, mode=0o644)
        nft.changed = True
    if info["enabled"]:
        _link(wants, name, target)
        nft.changed = True
    systemctl = module.get_bin_path("systemctl")
    if info["written"] and systemctl and os.path.isdir("/run/systemd/system"):  # a running systemd reads it then
        rc, out, err = module.run_command([systemctl, "daemon-reload"])
        if rc != 0:
            nft.fail("systemctl daemon-reload failed (rc %d): %s" % (rc, err.strip()), rc=rc)
    return result


def _iso(t):
    return timeutil.iso(t) if isinstance(t, (int, float)) else "?"


def main():
    module = AnsibleModule(
        argument_spec=dict(
            state=dict(type="str", choices=["applied", "confirmed"], default="applied"),
            service_ports=dict(type="list", elements="int", default=[]),
            management_ports=dict(type="list", elements="int"),
            client_ports=dict(type="list", elements="int", default=[]),
            confirm_timeout=dict(type="int", default=60),
            path=dict(type="path", default="/etc/vmguard/firewall.nft"),
            state_dir=dict(type="path", default="/var/lib/vmguard/firewall"),
            boot_unit=dict(type="str", default="/etc/systemd/system/vmguard-firewall.service"),
        ),
        required_if=[("state", "applied", ["management_ports"])],
        supports_check_mode=True,
    )
    if module.params["confirm_timeout"] < 0:
        module.fail_json(msg="confirm_timeout: %d is negative (seconds; 0 applies without a revert)" % module.params["confirm_timeout"])
    nft = Nft(module)
    try:
        result = apply(module, nft) if module.params["state"] == "applied" else confirm(module, nft)
        result = _boot_unit(module, nft, result)
    except (fwconfirm.StateError, fsutil.UnsafePathError, OSError) as e:
        nft.fail(str(e))
    module.exit_json(**result)


if __name__ == "__main__":
    main()
