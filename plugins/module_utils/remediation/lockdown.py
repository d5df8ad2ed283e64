# -*- coding: utf-8 -*-
# Copyright: (c) 2026, vmguard.hardening developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Which systemd units to stop, disable and mask so that the guest listens only on its service's ports
(ISO-01; module service_lockdown). Standard library only, Python 3.6+; every reader takes a root path so
tests run it on /proc trees built in a temporary directory.

Listener -> process -> unit: the listening sockets are read as evidence/guestscan.py reads them
(/proc/net/{tcp,tcp6,udp,udp6}: TCP in LISTEN, UDP bound), each socket inode is tied to the processes
holding it (/proc/<pid>/fd -> socket:[inode]), each process to the unit whose cgroup it runs in
(/proc/<pid>/cgroup: the unified "0::" line, else the v1 name=systemd line). A socket held by PID 1 is a
socket unit's: `systemctl list-sockets --show-types` names it. Only the system manager's own units are
acted on (the first unit below the root's slices, see cgroup_unit): a listener any of whose processes is in
no system service or socket unit (a login session's or a container's scope, a user's own systemd manager
under user.slice, a unit name nested in another unit's delegated cgroup, no systemd at all) cannot be
stopped by unit: it is reported, never passed over.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import fnmatch
import ipaddress

from ansible_collections.vmguard.hardening.plugins.module_utils.evidence import guestscan

# The management SSH server is never stopped, whatever it listens on.
PROTECTED_UNITS = ("ssh.service", "sshd.service", "ssh.socket", "sshd.socket")
# Nor the units that keep the guest on the network: stopping one deconfigures its interfaces (ifdown, a DHCP lease
# released), masking keeps them down after a reboot, and the management connection goes with them. Their DHCP clients
# hold sockets of their own (ISC dhclient, run by ifupdown in networking.service or ifup@<if>.service, binds a
# random UDP port besides 68): a listener of theirs outside the allow-list is reported, never acted on.
NETWORK_UNITS = ("networking.service", "ifup@*.service", "systemd-networkd.service", "systemd-networkd.socket",
                 "NetworkManager.service", "dhcpcd.service", "dhcpcd@*.service", "network.service", "wicked*.service",
                 "connman.service", "ifupdown-pre.service", "ifupdown-wait-online.service")


def network_unit(unit):
    """Whether ``unit`` brings up the guest's network (NETWORK_UNITS, templates by their instances)."""
    return any(fnmatch.fnmatchcase(unit, pattern) for pattern in NETWORK_UNITS)


STOPPABLE = (".service", ".socket")
# The unit types a process can run in (their cgroups hold processes).
UNIT_SUFFIXES = (".service", ".socket", ".scope", ".mount", ".swap")
SOCKET_TYPES = {"Stream": "tcp", "Datagram": "udp"}


def listeners(root="/"):
    """[{proto, address, port, inode}] of TCP sockets in LISTEN, bound UDP sockets and SCTP endpoints
    (guestscan.listening's selection, with the socket inode that ties each to its processes)."""
    out = [dict(proto="sctp", address=a, port=port, inode=inode) for a, port, inode in guestscan.sctp_endpoints(root)]
    for name, v6 in (("tcp", False), ("tcp6", True), ("udp", False), ("udp6", True)):
        text = guestscan._read(root, "/proc/net/" + name)  # pylint: disable=protected-access
        for line in (text or "").splitlines()[1:]:
            f = line.split()
            if len(f) < 10:
                continue
            proto, state = name.rstrip("6"), f[3]
            if state != ("0A" if proto == "tcp" else "07"):
                continue
            addr, port = f[1].rsplit(":", 1)
            out.append(dict(proto=proto, address=guestscan._decode_addr(addr, v6),  # pylint: disable=protected-access
                            port=int(port, 16), inode=f[9]))
    return sorted(out, key=lambda s: (s["proto"], s["port"], s["address"]))


def socket_owners(root="/"):
    """{socket inode: sorted [pid]} over every process's open descriptors (the evidence layer's walk)."""
    return guestscan.socket_pids(root)


def cgroup_path(text):
    """The systemd cgroup path of a /proc/<pid>/cgroup text: the unified "0::" line's, else the v1
    name=systemd line's; None when the text names no systemd hierarchy."""
    path = None
    for line in (text or "").splitlines():
        parts = line.split(":", 2)
        if len(parts) != 3:
            continue
        if parts[0] == "0" and parts[1] == "":
            path = parts[2]
        elif parts[1] == "name=systemd" and path is None:
            path = parts[2]
    return path


def is_unit_name(comp):
    return comp.endswith(UNIT_SUFFIXES) and len(comp) > len(comp.rsplit(".", 1)[-1]) + 1


def cgroup_unit(text):
    """(unit, cgroup path, reason) of a /proc/<pid>/cgroup text. ``unit`` is the system manager's unit the
    process runs in, and only when the module may stop, disable and mask it; else it is None and ``reason``
    says why (None when ``unit`` is set).

    The system manager (PID 1) names the cgroups from the root down to its own unit: a chain of slices, then
    the unit (/system.slice/system-postgresql.slice/postgresql@15-main.service). Below that unit the cgroups
    are whatever its processes create: a delegated subtree (Delegate=, a container runtime, the user manager
    user@UID.service) names them freely, so a unit name found there is not a system unit - a guest user's
    `systemd-run --user --unit=nftables` runs in .../user@1000.service/app.slice/nftables.service. Only the
    first non-slice component is read as a unit, and never under user.slice, nor when a unit name is nested
    below it; a scope (session-3.scope, docker-<id>.scope) has no unit file to mask and is not stopped either."""
    path = cgroup_path(text)
    if path is None:
        return None, None, "runs in no systemd unit (cgroup unknown)"
    comps = [c for c in path.split("/") if c]
    slices = 0
    while slices < len(comps) and comps[slices].endswith(".slice"):
        slices += 1
    if slices == len(comps) or not is_unit_name(comps[slices]):
        return None, path, "runs in no systemd unit (cgroup %s)" % path
    unit, below = comps[slices], comps[slices + 1:]
    nested = [c for c in below if is_unit_name(c) or c.endswith(".slice")]
    if unit.startswith("user@") and unit.endswith(".service"):
        inner = [c for c in nested if not c.endswith(".slice")]
        return None, path, "runs in %s's user manager%s: not a system unit, not stopped" % (
            unit, " (as its %s)" % inner[-1] if inner else "")
    if comps[0] == "user.slice" and unit.endswith(STOPPABLE):
        return None, path, "runs in %s under user.slice (a user's slice, cgroup %s): not stopped" % (unit, path)
    if nested:
        return None, path, "runs in %s, nested in %s's delegated cgroup (%s): not a system unit, not stopped" % (
            nested[-1], unit, path)
    if not unit.endswith(STOPPABLE):
        return None, path, "runs in %s, not in a service unit" % unit
    return unit, path, None


def parse_list_sockets(text):
    """{(proto, port): set(units)} from `systemctl list-sockets --all --show-types --no-legend --no-pager`
    (columns LISTEN TYPE UNIT ACTIVATES): the socket unit and the units it activates."""
    out = {}
    for line in (text or "").splitlines():
        f = line.split()
        if len(f) < 3 or f[1] not in SOCKET_TYPES:
            continue
        port = f[0].rsplit(":", 1)[-1] if ":" in f[0] else ""
        if not port.isdigit():
            continue
        units = set([f[2]] + [u.rstrip(",") for u in f[3:] if u not in ("-", "")])
        out.setdefault((SOCKET_TYPES[f[1]], int(port)), set()).update(units)
    return out


def loopback(address):
    try:
        ip = ipaddress.ip_address(u"%s" % str(address).strip("[]"))
    except ValueError:
        return False
    if ip.version == 6 and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_loopback


def describe(listener):
    return "%s/%d %s%s" % (listener["proto"], listener["port"], listener["address"],
                           " %s" % listener["process"] if listener.get("process") else "")


def owners_of(listener, pids, read_cgroup, read_comm, socket_units):
    """(units, reasons) of one listener: the service/socket units its processes run in (or, for PID 1,
    the socket unit listing its port); ``reasons`` says why a process belongs to no such unit."""
    units, reasons = set(), []
    if not pids:
        reasons.append("no process holds the socket (a kernel socket, or one of another PID namespace)")
    for pid in pids:
        if pid == 1:
            su = socket_units.get((listener["proto"], listener["port"]))
            if su:
                units.update(su)
            else:
                reasons.append("held by PID 1, but no socket unit lists %s/%d" % (listener["proto"], listener["port"]))
            continue
        unit, _path, why = cgroup_unit(read_cgroup(pid))
        if unit:
            units.add(unit)
        else:
            reasons.append("%s (pid %d) %s" % (read_comm(pid) or "?", pid, why))
    return units, reasons


def decide(found, allowed_ports, client_ports, management_ports):
    """What to stop. ``found``: [{proto, address, port, process, units, reasons}] (owners_of per listener).

    Returns {"stop": {unit: [listener descriptions]}, "unmanaged": [{"listener", "reason"}], "protected":
    [unit]}: the units of non-loopback listeners outside ``allowed_ports`` (UDP ``client_ports`` are DHCP
    clients, as for ISO-01). Never stopped: ssh/sshd, every unit listening on a management port and the units
    that bring up the network (NETWORK_UNITS); a listener that needs one of them stopped, or whose processes are in no
    unit, is unmanaged with the reason."""
    allowed, clients, mgmt = set(allowed_ports), set(client_ports), set(management_ports)
    protected = set(PROTECTED_UNITS)
    for s in found:
        if s["proto"] == "tcp" and s["port"] in mgmt:
            protected.update(s["units"])
    stop, unmanaged = {}, []
    for s in found:
        if loopback(s["address"]) or s["port"] in allowed or (s["proto"] == "udp" and s["port"] in clients):
            continue
        if s["reasons"]:
            unmanaged.append(dict(listener=describe(s), reason="; ".join(s["reasons"])))
            continue
        kept = sorted(u for u in s["units"] if u in protected)
        if kept:
            unmanaged.append(dict(listener=describe(s), reason="belongs to the management SSH server (%s), never stopped"
                                  % ", ".join(kept)))
            continue
        network = sorted(u for u in s["units"] if network_unit(u))
        if network:
            unmanaged.append(dict(listener=describe(s), reason="belongs to the guest's network configuration (%s): "
                                  "stopping it takes the guest and its management connection off the network, never "
                                  "stopped" % ", ".join(network)))
            continue
        for unit in s["units"]:
            stop.setdefault(unit, []).append(describe(s))
    return dict(stop=dict((u, sorted(set(v))) for u, v in stop.items()),
                unmanaged=sorted(unmanaged, key=lambda e: e["listener"]), protected=sorted(protected))


def scan(root="/", socket_units=None):
    """[{proto, address, port, process, units, reasons}] of every listener under ``root``."""
    owners = socket_owners(root)

    def read_cgroup(pid):
        return guestscan._read(root, "/proc/%d/cgroup" % pid)  # pylint: disable=protected-access

    def read_comm(pid):
        return (guestscan._read(root, "/proc/%d/comm" % pid) or "").strip()  # pylint: disable=protected-access

    out = []
    for s in listeners(root):
        pids = owners.get(s["inode"], [])
        units, reasons = owners_of(s, pids, read_cgroup, read_comm, socket_units or {})
        process = next((read_comm(p) for p in pids if p != 1 and read_comm(p)), "systemd" if 1 in pids else None)
        out.append(dict(proto=s["proto"], address=s["address"], port=s["port"], process=process,
                        pids=pids, units=sorted(units), reasons=reasons))
    return out
