# -*- coding: utf-8 -*-
# Copyright: (c) 2026, vmguard.hardening developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The guest's inbound nftables policy (ISO-10, RB-10): pure rendering and comparison.

The module guest_firewall owns one table, ``table inet vmguard``, and nothing else: its base chain
hooks input with policy drop, so whatever other tables accept (an accept verdict ends only its own
base chain; a drop anywhere is final) a NEW connection reaches only the ports this table accepts.
That is how module_utils/evidence/nftables.py judges ISO-10 over all input base chains.

The rendered text replaces the table in one nft transaction (``table``; ``delete table``; ``table
{...}``): loading it never touches another table and never leaves a half-loaded table behind.
Standard library only, Python 3.6+ (used by a module that runs in the guest).
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import hashlib
import json

FAMILY, TABLE = "inet", "vmguard"
PORT_MIN, PORT_MAX = 1, 65535

# ICMP that IPv4 and IPv6 need: errors (path MTU discovery, unreachables), echo (ping, a choice: a
# guest that answers ping exposes nothing a port scan would not), and for IPv6 neighbour and
# router discovery and MLD, without which IPv6 stops working on the link.
ICMP_TYPES = ("destination-unreachable", "time-exceeded", "parameter-problem", "echo-request")
ICMPV6_TYPES = ("destination-unreachable", "packet-too-big", "time-exceeded", "parameter-problem", "echo-request",
                "mld-listener-query", "nd-router-solicit", "nd-router-advert", "nd-neighbor-solicit",
                "nd-neighbor-advert")

HEADER = ("# Managed by vmguard.hardening (module guest_firewall): inbound default-deny of this guest (ISO-10).\n"
          "# Loaded with `nft -f`; replaces table inet vmguard only. Local edits are overwritten.\n")


UNIT_NAME = "vmguard-firewall.service"

# The unit that loads the persisted ruleset at every boot, before the network comes up. Ordered after
# nftables.service, whose ruleset flushes everything, and restarted (PartOf) and reloaded
# (ReloadPropagatedFrom) with it: its reload runs nft -f /etc/nftables.conf, whose "flush ruleset" removes
# table inet vmguard too. Until a ruleset was confirmed (persisted) the condition keeps it from running.
BOOT_UNIT = """# Managed by vmguard.hardening (module guest_firewall): loads table inet vmguard (ISO-10) from the ruleset
# guest_firewall persisted. Ordered after nftables.service, whose ruleset flushes everything, and restarted
# (PartOf) and reloaded (ReloadPropagatedFrom) with it: its reload runs nft -f /etc/nftables.conf, whose
# "flush ruleset" removes table inet vmguard too. Local edits are overwritten.
[Unit]
Description=vmguard inbound firewall (table inet vmguard)
DefaultDependencies=no
Wants=network-pre.target
Before=network-pre.target shutdown.target
After=nftables.service
PartOf=nftables.service
ReloadPropagatedFrom=nftables.service
Conflicts=shutdown.target
ConditionPathExists={path}

[Service]
Type=oneshot
RemainAfterExit=yes
ExecStart={nft} -f {path}
ExecReload={nft} -f {path}

[Install]
WantedBy=sysinit.target
"""


def boot_unit(nft, path):
    """The text of the boot unit loading the persisted ruleset ``path`` with the ``nft`` binary. Both are absolute
    paths without whitespace or control characters (a unit file line cannot quote them safely otherwise)."""
    for what, value in (("nft", nft), ("path", path)):
        if not value.startswith("/") or any(c.isspace() or ord(c) < 32 or c in "%\\" for c in value):
            raise FirewallError("%s: %r cannot be named in a unit file (an absolute path without whitespace, "
                                "'%%' or backslashes)" % (what, value))
    return BOOT_UNIT.format(nft=nft, path=path)


class FirewallError(ValueError):
    """Parameters that cannot make a ruleset (the message names the option and the element)."""


def ports(name, value):
    """The sorted, de-duplicated ports of option ``name``; raises FirewallError naming a bad element."""
    if value is None:
        return []
    if not isinstance(value, (list, tuple)):
        raise FirewallError("%s: expected a list of ports, got %s" % (name, type(value).__name__))
    out = set()
    for i, p in enumerate(value):
        if isinstance(p, bool) or not isinstance(p, int):
            raise FirewallError("%s[%d]: expected a port number %d-%d, got %s %r" % (
                name, i, PORT_MIN, PORT_MAX, type(p).__name__, p))
        if not PORT_MIN <= p <= PORT_MAX:
            raise FirewallError("%s[%d]: %d is not a port number (%d-%d)" % (name, i, p, PORT_MIN, PORT_MAX))
        out.add(p)
    return sorted(out)


def _dport(proto, port_list, why):
    return '\t\t%s dport { %s } accept comment "%s"\n' % (proto, ", ".join(str(p) for p in port_list), why)


def render(service_ports, management_ports, client_ports):
    """The nft text of the policy: input policy drop; accept loopback, established/related, the ICMP
    IPv4/IPv6 need, TCP ``management_ports``, TCP and UDP ``service_ports``, UDP ``client_ports``
    (DHCP client replies); drop invalid. Raises FirewallError on bad ports or no management port."""
    service = ports("service_ports", service_ports)
    management = ports("management_ports", management_ports)
    clients = ports("client_ports", client_ports)
    if not management:
        raise FirewallError("management_ports: empty; the ruleset would cut off every management connection "
                            "(this module and Ansible included)")
    body = ["\t\tiif \"lo\" accept\n",
            "\t\tct state established,related accept\n",
            "\t\tct state invalid drop\n",
            "\t\ticmp type { %s } accept\n" % ", ".join(ICMP_TYPES),
            "\t\ticmpv6 type { %s } accept\n" % ", ".join(ICMPV6_TYPES),
            _dport("tcp", management, "management")]
    if service:
        body += [_dport("tcp", service, "service"), _dport("udp", service, "service")]
    if clients:
        body.append(_dport("udp", clients, "client replies"))
    return "".join([HEADER, "table %s %s\n" % (FAMILY, TABLE), "delete table %s %s\n" % (FAMILY, TABLE),
                    "table %s %s {\n" % (FAMILY, TABLE),
                    "\tchain input {\n", "\t\ttype filter hook input priority filter; policy drop;\n"]
                   + body + ["\t}\n", "}\n"])


def revert_text(current_listing):
    """What restores the table as it is now: ``current_listing`` is `nft list table inet vmguard` (None or
    empty when there is no such table: the revert then removes the table)."""
    lines = ["# vmguard.hardening guest_firewall: restores table inet vmguard as it was before the last apply.\n",
             "table %s %s\n" % (FAMILY, TABLE), "delete table %s %s\n" % (FAMILY, TABLE)]
    if current_listing and current_listing.strip():
        lines.append(current_listing if current_listing.endswith("\n") else current_listing + "\n")
    return "".join(lines)


def sha256_text(text):
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def table_digest(doc, normalise):
    """Digest of table inet vmguard in a parsed `nft -j list ...` document (``normalise`` =
    evidence/nftables.normalise: no handles, metainfo or counters), or None when the table is absent."""
    items = [i for i in normalise((doc or {}).get("nftables") or []) if _in_table(i)]
    if not any("table" in i for i in items):
        return None
    return hashlib.sha256(json.dumps(items, sort_keys=True, separators=(",", ":")).encode("utf-8")).hexdigest()


def _in_table(item):
    if not isinstance(item, dict) or len(item) != 1:
        return False
    kind, body = list(item.items())[0]
    if not isinstance(body, dict) or body.get("family") != FAMILY:
        return False
    return body.get("name" if kind == "table" else "table") == TABLE


def in_place(record, source_sha, live_table_digest, persisted_text, rendered):
    """Whether nothing is left to do: the last confirmed apply (``record``, the module's applied record)
    was of this rendering, the live table is still the one it applied, and the persisted file holds it.
    Returns (True, None) or (False, the first reason it is not)."""
    if not record:
        return False, "never applied by vmguard on this guest"
    if record.get("source_sha256") != source_sha:
        return False, "the policy's ruleset changed since the last apply"
    if live_table_digest is None:
        return False, "table inet vmguard is not loaded"
    if record.get("table_digest") != live_table_digest:
        return False, "the live table inet vmguard differs from the one applied"
    if persisted_text != rendered:
        return False, "the persisted ruleset file differs from the policy's" if persisted_text else "the ruleset is not persisted"
    return True, None
