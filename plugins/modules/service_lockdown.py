#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, vmguard.hardening developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: service_lockdown
short_description: Stop, disable and mask the systemd units that listen outside the guest's one service
version_added: "0.1.0"
description:
  - Reads the guest's listening sockets as M(vmguard.hardening.guest_facts) does (TCP in LISTEN, bound UDP,
    SCTP endpoints, from C(/proc/net)), keeps the loopback ones, those on O(allowed_ports) and UDP sockets on O(client_ports)
    (DHCP clients), and for every other listener finds the systemd unit of each process holding it
    (C(/proc/<pid>/fd) to the socket, C(/proc/<pid>/cgroup) to the unit; a socket held by PID 1 belongs to
    the socket unit C(systemctl list-sockets) names, which is stopped with the units it activates). Those
    units, and the socket units that trigger them, are disabled, masked and stopped (ISO-01).
  - The management SSH server is never touched - C(ssh.service), C(sshd.service), their socket units and
    every unit listening on a TCP O(management_ports) port.
  - Nor are the units that bring up the guest's network - C(networking.service), C(ifup@*.service),
    C(systemd-networkd), C(NetworkManager), C(dhcpcd) and the like. Stopping one deconfigures the interfaces (and
    masking keeps them down after a reboot), cutting off the management connection; their DHCP clients hold
    sockets of their own (ISC dhclient binds a random UDP port besides 68).
  - A listener that cannot be closed by stopping a unit (its process runs in a login session's scope or
    in no unit, it is the SSH server's or the network configuration's, no process holds it) is listed in
    C(unmanaged) with the reason,
    and the module fails naming it unless O(fail_on_unmanaged=false) - never a silent pass.
  - Only the system manager's own service and socket units are acted on, the first unit below the cgroup root's
    slices (C(/system.slice/nginx.service)). A process under C(user.slice) (a user's own systemd manager
    C(user@UID.service), whose units a guest user names freely, e.g. C(systemd-run --user --unit=nftables)), in a
    unit nested below another unit's delegated cgroup, or in a scope, is unmanaged; its name is never stopped,
    disabled or masked as a system unit.
  - After stopping, the listeners are read again; one still open fails the module.
  - A unit whose file an administrator placed in C(/etc/systemd/system) cannot be masked in place (the mask is a
    link to C(/dev/null) at that path); its file is first moved to C(/var/lib/vmguard/lockdown/<unit>) (0600, in a
    0700 directory, returned as RV(set_aside)), from where it can be restored by hand.
  - Idempotent - a guest listening only where allowed changes nothing.
  - Needs root (socket owners of every process) and systemctl.
author:
  - vmguard.hardening developers (@vmguard)
options:
  allowed_ports:
    description: Ports the guest may listen on (its service's ports and the management ports), any protocol.
    type: list
    elements: int
    required: true
  client_ports:
    description: UDP ports of DHCP clients (68, 546); bound UDP sockets there are clients, not services.
    type: list
    elements: int
    default: []
  management_ports:
    description: TCP ports of management access; the units listening there are never stopped.
    type: list
    elements: int
    default: [22]
  fail_on_unmanaged:
    description: Fail when a listener outside the allow-list cannot be closed by stopping a unit (C(unmanaged)).
    type: bool
    default: true
extends_documentation_fragment:
  - vmguard.hardening.attributes.changes
notes:
  - In check mode the units are found as in a real run and nothing is stopped; C(diff) lists them with their
    listeners.
seealso:
  - module: vmguard.hardening.guest_facts
  - module: vmguard.hardening.guest_firewall
"""

EXAMPLES = r"""
- name: ISO-01 | Stop what listens outside a web guest's ports
  vmguard.hardening.service_lockdown:
    allowed_ports: [80, 443, 22]
    client_ports: [68, 546]
    management_ports: [22]
  become: true
"""

RETURN = r"""
units:
  description: The units stopped, disabled and masked (or that would be, in check mode), with the listeners they held.
  returned: always
  type: list
  elements: dict
  sample:
    - unit: app.service
      listeners: ["tcp/8080 0.0.0.0 python3"]
      before: {active: active, unit_file: enabled}
set_aside:
  description: Local unit files moved out of C(/etc/systemd/system) so that their units could be masked, unit -> new path.
  returned: when a local unit file was set aside
  type: dict
  sample: {app.service: /var/lib/vmguard/lockdown/app.service}
unmanaged:
  description: Listeners outside the allow-list that no unit stop can close, with the reason.
  returned: always
  type: list
  elements: dict
  sample:
    - listener: tcp/9000 0.0.0.0 nc
      reason: nc (pid 4242) runs in session-3.scope, not in a service unit
listening:
  description: The non-loopback listeners read before any change, each with its units.
  returned: always
  type: list
  elements: dict
  sample:
    - {proto: tcp, address: 0.0.0.0, port: 22, process: sshd, units: [ssh.service]}
"""

import os
import stat

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.vmguard.hardening.plugins.module_utils.common import fsutil
from ansible_collections.vmguard.hardening.plugins.module_utils.remediation import lockdown

SHOW = ("Id", "LoadState", "ActiveState", "UnitFileState", "TriggeredBy", "FragmentPath")
# A unit whose file an administrator put in /etc/systemd/system cannot be masked in place (the mask is a
# link to /dev/null at that very path): its file is set aside here first, private, to be restored by hand.
LOCAL_UNITS = "/etc/systemd/system"
SET_ASIDE = "/var/lib/vmguard/lockdown"


class Systemd(object):
    """systemctl for the module. ``changed`` is set by the first state-changing command (disable, mask, stop...):
    any failure from then on - a systemctl show as well - reports changed=true."""

    def __init__(self, module):
        self.module = module
        self.changed = False
        self.bin = module.get_bin_path("systemctl")

    def socket_units(self):
        if not self.bin:
            return {}
        rc, out, err = self.module.run_command([self.bin, "list-sockets", "--all", "--show-types", "--no-legend", "--no-pager"])
        if rc != 0:
            self.module.warn("systemctl list-sockets failed (rc %d): %s; sockets held by PID 1 stay unmanaged" % (rc, err.strip()))
            return {}
        return lockdown.parse_list_sockets(out)

    def show(self, unit):
        rc, out, err = self.module.run_command([self.bin, "show", "--no-pager"] + ["--property=%s" % p for p in SHOW] + ["--", unit])
        if rc != 0:
            self.module.fail_json(msg="systemctl show %s failed (rc %d): %s" % (unit, rc, err.strip()),
                                  changed=self.changed)
        props = {}
        for line in out.splitlines():
            key, _sep, value = line.partition("=")
            props[key] = value
        return props

    def run(self, *args):
        rc, out, err = self.module.run_command([self.bin] + list(args))
        self.changed = True  # a failed disable, mask or stop may have done part of its work too
        if rc != 0:
            self.module.fail_json(msg="systemctl %s failed (rc %d): %s" % (" ".join(args), rc, err.strip()), changed=True)

    def lock(self, unit):
        """disable, mask, stop: the unit cannot be started again, by hand or by a dependency, and is not running.
        Returns the path a local unit file was set aside to (None when the unit's file is the distribution's)."""
        self.run("disable", "--quiet", "--", unit)
        aside = set_aside(self.module, unit, self.show(unit).get("FragmentPath") or "")
        if aside:
            self.run("daemon-reload")
        self.run("mask", "--quiet", "--", unit)
        self.run("stop", "--quiet", "--", unit)
        return aside


def set_aside(module, unit, fragment):
    """Move a regular unit file /etc/systemd/system/<unit> (not a link) to SET_ASIDE/<unit> (0600, in a 0700
    directory), so that the unit can be masked; the path it went to, or None when there is nothing to move."""
    path = os.path.join(LOCAL_UNITS, unit)
    if fragment != path:
        return None
    try:
        st = os.lstat(path)
    except OSError:
        return None
    if not stat.S_ISREG(st.st_mode):
        return None
    if os.path.islink(SET_ASIDE) or (os.path.exists(SET_ASIDE) and not os.path.isdir(SET_ASIDE)):
        module.fail_json(msg="%s is not a directory: %s not set aside, not masked" % (SET_ASIDE, path), changed=True)
    if not os.path.isdir(SET_ASIDE):
        os.makedirs(SET_ASIDE, 0o700)
    dest = os.path.join(SET_ASIDE, unit)
    try:
        with open(path, "rb") as f:
            data = f.read()
        fsutil.atomic_write(dest, data, mode=0o600)
        os.unlink(path)
    except (OSError, IOError, ValueError) as e:
        module.fail_json(msg="cannot set %s aside to %s (needed to mask it): %s" % (path, dest, e), changed=True)
    return dest


def _plan(module, systemd, decision):
    """{unit: {"listeners", "before"}}: the decided units plus the socket units that trigger them (not protected)."""
    units = {}
    for unit, held in decision["stop"].items():
        units.setdefault(unit, {"listeners": []})["listeners"].extend(held)
    for unit in list(units):
        props = systemd.show(unit)
        units[unit]["before"] = dict(active=props.get("ActiveState"), unit_file=props.get("UnitFileState"))
        for trigger in (props.get("TriggeredBy") or "").split():
            if trigger in decision["protected"]:
                module.fail_json(msg="%s is triggered by %s, which belongs to the management SSH server: not stopped" % (unit, trigger))
            if trigger not in units:
                tprops = systemd.show(trigger)
                units[trigger] = {"listeners": [], "triggers": unit,
                                  "before": dict(active=tprops.get("ActiveState"), unit_file=tprops.get("UnitFileState"))}
    return units


def _order(units):
    """Socket units first: a stopped service whose socket still listens would be started again by it."""
    return sorted(units, key=lambda u: (not u.endswith(".socket"), u))


def main():
    module = AnsibleModule(
        argument_spec=dict(
            allowed_ports=dict(type="list", elements="int", required=True),
            client_ports=dict(type="list", elements="int", default=[]),
            management_ports=dict(type="list", elements="int", default=[22]),
            fail_on_unmanaged=dict(type="bool", default=True),
        ),
        supports_check_mode=True,
    )
    p = module.params
    for key in ("allowed_ports", "client_ports", "management_ports"):
        for i, port in enumerate(p[key]):
            if not 1 <= port <= 65535:
                module.fail_json(msg="%s[%d]: %d is not a port number (1-65535)" % (key, i, port))
    systemd = Systemd(module)
    found = lockdown.scan("/", systemd.socket_units())
    decision = lockdown.decide(found, p["allowed_ports"], p["client_ports"], p["management_ports"])
    listening = [dict(proto=s["proto"], address=s["address"], port=s["port"], process=s["process"], units=s["units"])
                 for s in found if not lockdown.loopback(s["address"])]
    if decision["stop"] and not systemd.bin:
        module.fail_json(msg="systemctl not found: cannot stop %s" % ", ".join(sorted(decision["stop"])))
    units = _plan(module, systemd, decision) if decision["stop"] else {}
    report = [dict(unit=u, listeners=units[u]["listeners"], before=units[u]["before"]) for u in _order(units)]
    diff = dict(before_header="units holding listeners outside the allow-list", after_header="after lockdown",
                before="".join("%s: %s, %s (%s)\n" % (r["unit"], r["before"]["unit_file"], r["before"]["active"],
                                                      ", ".join(r["listeners"]) or "triggers " + units[r["unit"]].get("triggers", ""))
                               for r in report),
                after="".join("%s: masked, inactive\n" % r["unit"] for r in report))
    result = dict(changed=bool(units), units=report, unmanaged=decision["unmanaged"], listening=listening, diff=diff)
    if units and not module.check_mode:
        for unit in _order(units):
            aside = systemd.lock(unit)
            if aside:
                result["set_aside"] = dict(result.get("set_aside") or {}, **{unit: aside})
        still = [lockdown.describe(s) for s in lockdown.scan("/", systemd.socket_units())
                 if set(s["units"]) & set(units) and not lockdown.loopback(s["address"])]
        if still:
            module.fail_json(msg="still listening after stopping %s: %s" % (", ".join(_order(units)), ", ".join(still)), **result)
    if decision["unmanaged"] and p["fail_on_unmanaged"]:
        module.fail_json(msg="not enforced (ISO-01): %s" % "; ".join(
            "%s: %s" % (e["listener"], e["reason"]) for e in decision["unmanaged"]), **result)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
