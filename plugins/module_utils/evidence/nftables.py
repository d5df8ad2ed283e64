# -*- coding: utf-8 -*-
# Copyright: (c) 2026, vmguard.hardening developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Semantic evaluation of an `nft -j list ruleset` document (standard library only, Python 3.6+).

Question answered: which NEW inbound connections, to which TCP/UDP ports, does the ruleset accept
from a source outside the management networks arriving on a non-loopback interface? And does it
accept any other protocol (ICMP aside)?

Method: probe packets. For IPv4 and IPv6 and for TCP and UDP, one probe per elementary port
interval (every port value the ruleset mentions, and one port of each gap between them, so a
port mentioned nowhere stands for all the others) is pushed through every base chain hooked at
`input` (families ip, ip6, inet; a dormant table's chains hook nothing; priority order; drop/reject
anywhere is final, accept ends only that base chain). Each match is tri-state (true / false /
maybe). A "maybe" forks the path: the rule may match and may not. Protocols other than TCP and UDP
get one probe each, ports unknown (l4_probes); what accepts them is listed in open_any. Anything
this evaluator does not understand is a "maybe", which is the sound side for security: an accept
rule with an unknown match may expose, a drop rule with one may not protect.

The probe: ct state new (or untracked where a notrack rule before connection tracking may take it out of
tracking: _untracked_paths), no ct status bits (a probe a dnat or redirect rule before input may
translate counts as accepted: _translated_paths), iif is some non-loopback interface,
destination is a local unicast address (`fib daddr type local`, `meta pkttype host`; a literal
`ip daddr` is "maybe" because the guest's addresses are not known), source is some address
outside the management CIDRs and outside loopback (the kernel drops loopback sources arriving on
other interfaces), source port unknown.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import hashlib
import ipaddress
import json

TRUE, FALSE, MAYBE = "true", "false", "maybe"
FAMILIES = {"ipv4": ("ip", "inet"), "ipv6": ("ip6", "inet")}
PROTOS = ("tcp", "udp")
PORT_MAX = 65535
# An accepted run of ports longer than this is reported in open_any rather than port by port.
MAX_LISTED_RUN = 1024
MAX_STEPS = 200000
MAX_ALTERNATIVES = 16

L4_NUMBERS = {"icmp": 1, "igmp": 2, "tcp": 6, "udp": 17, "dccp": 33, "gre": 47, "esp": 50, "ah": 51,
              "ipv6-icmp": 58, "icmpv6": 58, "comp": 108, "sctp": 132, "udplite": 136}
SERVICES = {"ssh": 22, "smtp": 25, "domain": 53, "http": 80, "https": 443, "submission": 587,
            "imaps": 993, "bootps": 67, "bootpc": 68, "dhcpv6-client": 546, "dhcpv6-server": 547,
            "postgresql": 5432, "mysql": 3306}
# Payload protocols that imply the probe's L3/L4 header (an L4 one: a probe of that protocol; `th`, the transport
# header, reads the ports of whatever protocol follows, see _payload).
L3_DEPS = {"ip": "ipv4", "ip6": "ipv6"}
L4_DEPS = ("tcp", "udp", "th", "sctp", "dccp", "udplite", "icmp", "icmpv6", "igmp", "esp", "ah", "comp", "arp")
# Transport protocols with ports where `th dport` reads them.
PORTED = ("tcp", "udp", "sctp", "dccp", "udplite")
# Inbound protocols other than TCP and UDP: one probe each (ports unknown) for SCTP, DCCP, UDP-Lite, every protocol
# the ruleset names in an L4 protocol match, and OTHER_L4 (RFC 3692's experimental number, which no ruleset names:
# it stands for every protocol named nowhere). ICMP and ICMPv6 are not probed: every policy answers them.
EXTRA_L4 = (132, 33, 136)
OTHER_L4 = 253
NOT_PROBED_L4 = (1, 6, 17, 58)
UNQUALIFIED_META = ("iif", "iifname", "oif", "oifname", "iiftype", "oiftype", "iifgroup", "oifgroup")
NAT_STATEMENTS = ("snat", "dnat", "masquerade", "redirect")
# iptables-nft targets (xt expressions) that untrack or translate a packet before input.
XT_NOTRACK = ("NOTRACK", "CT")
XT_TRANSLATE = ("DNAT", "REDIRECT", "NETMAP")
LOOPBACK = (ipaddress.ip_network(u"127.0.0.0/8"), ipaddress.ip_network(u"::1/128"))


class NftError(ValueError):
    """The document is not an nft JSON ruleset this evaluator can follow (message names the path)."""


# ---------------------------------------------------------------------------------------------
# Document model

class Ruleset(object):
    def __init__(self, doc):
        if not isinstance(doc, dict) or not isinstance(doc.get("nftables"), list):
            raise NftError("not an nft JSON document: expected an object with an 'nftables' list")
        self.tables, self.chains, self.rules, self.sets = set(), {}, {}, {}
        self.dynamic_sets, self.dormant = set(), set()
        self.notrack = []  # (chain key, the rule's expressions before its notrack statement)
        self.translated = []  # (chain key, the rule's expressions before its dnat/redirect, that statement)
        for i, item in enumerate(doc["nftables"]):
            self._add(i, item)
        for key, rules in self.rules.items():
            if key not in self.chains:
                raise NftError("nftables: rule for missing chain %s" % _chain_name(key))
        self._check_targets()

    def _add(self, i, item):
        where = "nftables[%d]" % i
        if not isinstance(item, dict) or len(item) != 1:
            raise NftError("%s: expected an object with one key" % where)
        kind, body = list(item.items())[0]
        if kind in ("metainfo",):
            return
        if not isinstance(body, dict):
            raise NftError("%s.%s: expected an object" % (where, kind))
        try:
            if kind == "table":
                self.tables.add((body["family"], body["name"]))
                if _has_flag(body, "dormant"):
                    self.dormant.add((body["family"], body["name"]))
            elif kind == "chain":
                self.chains[(body["family"], body["table"], body["name"])] = body
            elif kind == "rule":
                expr = body["expr"]
                if not isinstance(expr, list):
                    raise NftError("%s.rule.expr: expected a list" % where)
                key = (body["family"], body["table"], body["chain"])
                self.rules.setdefault(key, []).append(expr)
                self._note_dynamic(key, expr)
                self._note_notrack(key, expr)
            elif kind in ("set", "map"):
                self.sets[(body["family"], body["table"], body["name"])] = body
                flags = body.get("flags") or []
                if "dynamic" in flags or "timeout" in flags:
                    self.dynamic_sets.add((body["family"], body["table"], body["name"]))
        except KeyError as e:
            raise NftError("%s.%s: missing key %s" % (where, kind, e))
        except TypeError:
            raise NftError("%s.%s: wrong shape" % (where, kind))

    def _note_dynamic(self, key, exprs):
        for e in exprs:
            if isinstance(e, dict):
                for k in ("set", "map"):
                    ref = e.get(k)
                    if isinstance(ref, dict) and isinstance(ref.get("set", ref.get("map")), str):
                        name = ref.get("set", ref.get("map"))
                        self.dynamic_sets.add((key[0], key[1], name.lstrip("@")))

    def _note_notrack(self, key, exprs):
        """Record a rule that takes packets out of connection tracking or translates their destination before input:
        nft's own statements, and the same targets of iptables-nft's rules (xt targets: NOTRACK, CT, whose
        options nft -j does not show, counted as a notrack; DNAT, REDIRECT, NETMAP)."""
        for i, e in enumerate(exprs):
            xt = e.get("xt") if isinstance(e, dict) and isinstance(e.get("xt"), dict) else {}
            target = xt.get("name") if xt.get("type") == "target" else None
            if isinstance(e, dict) and "notrack" in e or target in XT_NOTRACK:
                self.notrack.append((key, exprs[:i]))
                return
            if isinstance(e, dict) and ("dnat" in e or "redirect" in e) or target in XT_TRANSLATE:
                self.translated.append((key, exprs[:i], e))
                return

    def hooked(self, chain, hook="input"):
        """Whether ``chain`` is a base chain the kernel runs at ``hook``: a dormant table's chains are registered
        with no hook (`nft add table inet t { flags dormant; }` turns its whole filter off while its rules stay
        listed), so they filter nothing."""
        return chain.get("hook") == hook and (chain.get("family"), chain.get("table")) not in self.dormant

    def base_chains(self, nfproto):
        found = [c for c in self.chains.values() if self.hooked(c) and c.get("family") in FAMILIES[nfproto]]
        return sorted(found, key=lambda c: (_prio(c), c["family"], c["table"], c["name"]))

    def input_chains(self):
        return [c for c in self.chains.values() if self.hooked(c) and c.get("family") in ("ip", "ip6", "inet")]

    def set_elems(self, family, table, ref):
        name = ref[1:]
        s = self.sets.get((family, table, name))
        if s is None:
            raise NftError("table %s %s: reference to missing set @%s" % (family, table, name))
        elems = s.get("elem") or []
        if not isinstance(elems, list):
            elems = [elems]
        return elems, (family, table, name) in self.dynamic_sets

    def _targets(self, exprs):
        out = []
        for e in exprs:
            if not isinstance(e, dict):
                continue
            for verb in ("jump", "goto"):
                if isinstance(e.get(verb), dict):
                    out.append(e[verb].get("target"))
            vm = e.get("vmap")
            if isinstance(vm, dict) and isinstance(vm.get("data"), dict):
                for pair in vm["data"].get("set") or []:
                    if isinstance(pair, list) and len(pair) == 2:
                        out.extend(self._targets([pair[1]]))
        return out

    def _map_targets(self, family, table):
        out = []
        for (f, t, _n), s in self.sets.items():
            if f == family and t == table and s.get("map") == "verdict":
                for pair in s.get("elem") or []:
                    if isinstance(pair, list) and len(pair) == 2:
                        out.extend(self._targets([pair[1]]))
        return out

    def _check_targets(self):
        """Every jump/goto target exists and the jump graph has no cycle (the kernel refuses both)."""
        edges = {}
        for key in self.chains:
            fam, table, _name = key
            targets = []
            for exprs in self.rules.get(key, []):
                targets.extend(self._targets(exprs))
                if any(isinstance(e, dict) and isinstance(e.get("vmap"), dict)
                       and isinstance(e["vmap"].get("data"), str) for e in exprs):
                    targets.extend(self._map_targets(fam, table))
            for t in targets:
                if not isinstance(t, str) or (fam, table, t) not in self.chains:
                    raise NftError("chain %s: jump/goto to missing chain %r" % (_chain_name(key), t))
            edges[key] = sorted(set((fam, table, t) for t in targets))
        state = {}
        for start in sorted(edges):
            self._dfs(start, edges, state, [])

    def _dfs(self, node, edges, state, trail):
        if state.get(node) == "done":
            return
        if state.get(node) == "open":
            loop = trail[trail.index(node):] + [node]
            raise NftError("jump loop: %s" % " -> ".join(_chain_name(k) for k in loop))
        state[node] = "open"
        for nxt in edges.get(node, []):
            self._dfs(nxt, edges, state, trail + [node])
        state[node] = "done"


def _has_flag(body, flag):
    """Whether a table's ``flags`` (nft -j prints one flag as a string, several as a list) hold ``flag``."""
    flags = body.get("flags")
    return flag == flags if isinstance(flags, str) else isinstance(flags, list) and flag in flags


def _prio(chain):
    p = chain.get("prio", 0)
    try:
        return int(p)
    except (TypeError, ValueError):
        return 0


def _chain_name(key):
    return "%s %s %s" % key


# ---------------------------------------------------------------------------------------------
# Abstract values of the probe

class Probe(object):
    """``proto``: a name of L4_NUMBERS or a protocol number; ``port`` None where the protocol's ports are not probed
    one by one. ``ct_state``: "new", or "untracked" for a packet a notrack statement took out of connection
    tracking."""
    def __init__(self, nfproto, proto, port, mgmt, ct_state="new"):
        self.nfproto, self.proto, self.port, self.mgmt, self.ct_state = nfproto, proto, port, mgmt, ct_state
        self.l4 = L4_NUMBERS.get(proto, proto)


class Const(object):
    def __init__(self, value, kind="plain"):
        self.value, self.kind = value, kind


class Flags(object):
    """A bitmask selector (ct state/status): the probe has exactly these flags."""
    def __init__(self, flags):
        self.flags = frozenset(flags)


class Iface(object):
    """Some non-loopback interface: equal to none of `loopback` (lo's name and index, or its type)."""
    def __init__(self, loopback):
        self.loopback = loopback


class Saddr(object):
    """Some source address outside loopback and the management CIDRs."""


class Unknown(object):
    pass


class DepFail(object):
    """The expression reads a header the probe does not have: the whole match is false."""


def _leftvalue(left, probe):
    if not isinstance(left, dict):
        return Unknown()
    if "payload" in left:
        return _payload(left["payload"], probe)
    if "meta" in left:
        return _meta(left["meta"].get("key"), probe)
    if "ct" in left:
        key = left["ct"].get("key")
        if key == "state":
            return Flags([probe.ct_state])
        if key == "status":
            return Flags([])
        return Unknown()
    if "fib" in left:
        fib = left["fib"]
        if fib.get("result") == "type" and fib.get("flags") == ["daddr"]:
            return Const("local")
        return Unknown()
    for op in ("&", "|", "^", "<<", ">>"):
        if op in left and isinstance(left[op], list):
            for part in left[op]:
                if isinstance(_leftvalue(part, probe), DepFail):
                    return DepFail()
            return Unknown()
    return Unknown()


def _payload(p, probe):
    proto, field = p.get("protocol"), p.get("field")
    if proto is None:
        return Unknown()  # raw payload (@th,16,16 ...)
    if proto in L3_DEPS:
        if L3_DEPS[proto] != probe.nfproto:
            return DepFail()
        if field == "saddr":
            return Saddr()
        if field in ("protocol", "nexthdr"):
            return Const(probe.l4, "l4proto")
        return Unknown()
    if proto in L4_DEPS:
        if proto == "th":
            if probe.proto not in PORTED:
                return Unknown()  # th has no protocol dependency: it reads whatever header follows
        elif proto != probe.proto:
            return DepFail()
        if field == "dport":
            return Unknown() if probe.port is None else Const(probe.port, "port")
        return Unknown()
    return Unknown()


def _meta(key, probe):
    if key == "l4proto":
        return Const(probe.l4, "l4proto")
    if key == "nfproto":
        return Const(probe.nfproto, "nfproto")
    if key == "protocol":
        return Const("ip" if probe.nfproto == "ipv4" else "ip6")
    if key in ("iif", "iifname"):
        return Iface(("lo", 1))  # lo is ifindex 1 in every network namespace
    if key == "iiftype":
        return Iface(("loopback", 772))
    if key == "pkttype":
        return Const("host")
    return Unknown()


# ---------------------------------------------------------------------------------------------
# Matching: each evaluation yields (alternatives, may_fail); an alternative is a frozenset of tags
# that hold on that branch: ("from", text) for a source restriction, ("port",) when the branch
# passed a positive destination-port match.

ALT_TRUE = ([frozenset()], False)
ALT_FALSE = ([], True)


def _maybe(tags=()):
    return [frozenset(tags)], True


def _elements(right, family, table, rs):
    """(elements, is_set, dynamic) of a right-hand side."""
    if isinstance(right, str) and right.startswith("@"):
        elems, dynamic = rs.set_elems(family, table, right)
        return elems, True, dynamic
    if isinstance(right, dict) and "set" in right:
        elems = right["set"]
        return (elems if isinstance(elems, list) else [elems]), True, False
    if isinstance(right, list):
        return right, True, False
    return [right], False, False


def _unwrap(e):
    while isinstance(e, dict) and "elem" in e and isinstance(e["elem"], dict):
        e = e["elem"].get("val")
    return e


def _norm_const(value, kind):
    if kind == "l4proto" and isinstance(value, str):
        return L4_NUMBERS.get(value, value)
    if kind == "port" and isinstance(value, str):
        return SERVICES.get(value, value)
    return value


def _const_cmp(v, e, kind):
    """Does constant v match element e? TRUE/FALSE/MAYBE."""
    e = _unwrap(e)
    if isinstance(e, dict) and "range" in e:
        lo, hi = [_norm_const(x, kind) for x in e["range"]]
        if isinstance(lo, int) and isinstance(hi, int) and isinstance(v, int):
            return TRUE if lo <= v <= hi else FALSE
        return MAYBE
    if isinstance(e, dict):
        return MAYBE
    e = _norm_const(e, kind)
    if isinstance(v, int) != isinstance(e, int):
        return MAYBE
    return TRUE if v == e else FALSE


def _iface_cmp(iface, e):
    e = _unwrap(e)
    if not isinstance(e, bool) and e in iface.loopback:
        return FALSE
    return MAYBE


def _net(e):
    e = _unwrap(e)
    try:
        if isinstance(e, dict) and "prefix" in e:
            return [ipaddress.ip_network(u"%s/%s" % (e["prefix"]["addr"], e["prefix"]["len"]), strict=False)]
        if isinstance(e, dict) and "range" in e:
            lo, hi = [ipaddress.ip_address(u"%s" % x) for x in e["range"]]
            return list(ipaddress.summarize_address_range(lo, hi))
        if isinstance(e, str):
            return [ipaddress.ip_network(u"%s" % e)]
    except (ValueError, TypeError, KeyError):
        return None
    return None


def _impossible_source(e, mgmt):
    """True when every address of element e is inside `mgmt` (loopback + management, see _mgmt_networks)."""
    nets = _net(e)
    if not nets:
        return False
    return all(any(_inside(n, m) for m in mgmt) for n in nets)


def _inside(net, outer):
    """net is a subnet of outer (ipaddress.subnet_of needs Python 3.7)."""
    return (net.version == outer.version and outer.network_address <= net.network_address
            and net.broadcast_address <= outer.broadcast_address)


def _render_value(v):
    v = _unwrap(v)
    if isinstance(v, dict):
        if "prefix" in v:
            return "%s/%s" % (v["prefix"].get("addr"), v["prefix"].get("len"))
        if "range" in v:
            return "%s-%s" % tuple(_render_value(x) for x in v["range"])
        if "set" in v:
            return "{ %s }" % ", ".join(_render_value(x) for x in v["set"])
        if "concat" in v:
            return " . ".join(_render_value(x) for x in v["concat"])
        return json.dumps(v, sort_keys=True)
    if isinstance(v, list):
        return ",".join(_render_value(x) for x in v)
    return "%s" % v


def _member(value, elems, is_set, positive, probe):
    """Evaluate `value in elems` (positive) or `value not in elems` -> (alts, may_fail)."""
    if isinstance(value, DepFail):
        return ALT_FALSE
    if isinstance(value, Unknown):
        return _maybe()
    if isinstance(value, Flags):
        names = set()
        for e in elems:
            e = _unwrap(e)
            names.update(e if isinstance(e, list) else [e])
        hit = bool(value.flags & names)
        return ALT_TRUE if hit == positive else ALT_FALSE
    if isinstance(value, Saddr):
        if all(_impossible_source(e, probe.mgmt) for e in elems):
            return ALT_FALSE if positive else ALT_TRUE
        text = _render_value({"set": elems}) if is_set and len(elems) != 1 else _render_value(elems[0])
        return _maybe([("from", text if positive else "not " + text)])
    if isinstance(value, Iface):
        results = [_iface_cmp(value, e) for e in elems]
    else:
        results = [_const_cmp(value.value, e, value.kind) for e in elems]
    if TRUE in results:
        tri = TRUE
    elif MAYBE in results:
        tri = MAYBE
    else:
        tri = FALSE
    if not positive:
        tri = {TRUE: FALSE, FALSE: TRUE, MAYBE: MAYBE}[tri]
    bounded = positive and isinstance(value, Const) and value.kind == "port"
    tags = [("port",)] if bounded else []
    return {TRUE: ([frozenset(tags)], False), FALSE: ALT_FALSE, MAYBE: _maybe(tags)}[tri]


def _compare(value, op, right):
    if isinstance(value, DepFail):
        return ALT_FALSE
    if not isinstance(value, Const) or not isinstance(value.value, int):
        return _maybe()
    r = _norm_const(_unwrap(right), value.kind)
    if not isinstance(r, int):
        return _maybe()
    v = value.value
    hit = {"<": v < r, ">": v > r, "<=": v <= r, ">=": v >= r}[op]
    return ALT_TRUE if hit else ALT_FALSE


def _concat_member(left, elems, positive, probe):
    parts = [_leftvalue(p, probe) for p in left["concat"]]
    if any(isinstance(p, DepFail) for p in parts):
        return ALT_FALSE
    alts, may_fail = [], False
    for e in elems:
        e = _unwrap(e)
        if not (isinstance(e, dict) and isinstance(e.get("concat"), list) and len(e["concat"]) == len(parts)):
            alts.append(frozenset())
            may_fail = True
            continue
        branch, branch_fail, dead = frozenset(), False, False
        for value, comp in zip(parts, e["concat"]):
            calts, cfail = _member(value, [comp], False, True, probe)
            if not calts:
                dead = True
                break
            branch = branch | calts[0]
            branch_fail = branch_fail or cfail
        if dead:
            continue
        alts.append(branch)
        may_fail = may_fail or branch_fail
    if not alts:
        return ALT_TRUE if not positive else ALT_FALSE
    if not positive:
        return _maybe() if may_fail else ALT_FALSE
    return _cap(alts), may_fail


def _cap(alts):
    alts = list(dict.fromkeys(alts))
    if len(alts) <= MAX_ALTERNATIVES:
        return alts
    froms = sorted(set(t[1] for a in alts for t in a if t[0] == "from"))
    merged = set(t for a in alts for t in a if t[0] != "from")
    if froms:
        merged.add(("from", "one of: " + "; ".join(froms)))
    return [frozenset(merged)]


def evaluate_match(m, probe, family, table, rs):
    op, left, right = m.get("op", "=="), m.get("left"), m.get("right")
    if op in ("<", ">", "<=", ">="):
        return _compare(_leftvalue(left, probe), op, right)
    if op not in ("==", "!=", "in"):
        return _maybe()
    elems, is_set, dynamic = _elements(right, family, table, rs)
    positive = op != "!="
    if isinstance(left, dict) and isinstance(left.get("concat"), list):
        if dynamic:
            return _maybe()
        return _concat_member(left, elems, positive, probe)
    value = _leftvalue(left, probe)
    if dynamic and not isinstance(value, DepFail):
        tags = [("from", _render_value(right))] if isinstance(value, Saddr) and positive else []
        return _maybe(tags)
    if op == "in" and not isinstance(value, Flags) and not is_set:
        return _maybe()  # a bitwise flag test on something we do not model
    return _member(value, elems, is_set, positive, probe)


# ---------------------------------------------------------------------------------------------
# Rules

def run_rule(exprs, probe, family, table, rs):
    """Outcomes of one rule: list of (tags, action) with action "next", "accept", "drop",
    ("jump", chain), ("goto", chain) or "return"."""
    states, outcomes = [frozenset()], []
    for e in exprs:
        if not isinstance(e, dict) or len(e) != 1:
            raise NftError("rule in table %s %s: expression %r is not an object with one key" % (family, table, e))
        key, body = list(e.items())[0]
        action = _verdict(key, body)
        if action is not None:
            if action == "next":
                break
            outcomes.extend((s, action) for s in states)
            return _dedupe(outcomes)
        if key == "vmap":
            outcomes.extend(_vmap(body, states, probe, family, table, rs))
            return _dedupe(outcomes)
        if key == "match":
            alts, may_fail = evaluate_match(body, probe, family, table, rs)
        elif key == "xt" and isinstance(body, dict) and body.get("type") == "target":
            continue  # LOG, MARK...: non-terminal (treating an unknown target so only adds exposure)
        elif key in ("limit", "xt", "quota"):
            alts, may_fail = _maybe()  # limit/quota stop matching when exhausted; xt is opaque
        else:
            continue  # counter, log, meta/ct set, dynamic set updates, notrack...: non-terminal
        if may_fail:
            outcomes.append((frozenset(), "next"))
        states = _cap([s | a for s in states for a in alts])
        if not states:
            return _dedupe(outcomes)
    outcomes.append((frozenset(), "next"))
    return _dedupe(outcomes)


def _verdict(key, body):
    if key in ("accept", "queue") or key in NAT_STATEMENTS:
        return "accept"  # a queued packet may be accepted by userspace; NAT ends a nat chain
    if key in ("drop", "reject"):
        return "drop"
    if key == "return":
        return "return"
    if key == "continue":
        return "next"
    if key in ("jump", "goto"):
        return (key, body.get("target") if isinstance(body, dict) else None)
    if key == "xt" and isinstance(body, dict) and body.get("type") == "target" and body.get("name") == "REJECT":
        return "drop"  # iptables-nft's REJECT target always rejects
    return None


def _vmap(body, states, probe, family, table, rs):
    if not isinstance(body, dict) or "key" not in body or "data" not in body:
        raise NftError("rule in table %s %s: vmap without key/data" % (family, table))
    data = body["data"]
    if isinstance(data, str) and data.startswith("@"):
        pairs, dynamic = rs.set_elems(family, table, data)
    elif isinstance(data, dict) and isinstance(data.get("set"), list):
        pairs, dynamic = data["set"], False
    else:
        raise NftError("rule in table %s %s: vmap data is neither a set nor @map" % (family, table))
    out, any_sure = [], False
    if dynamic and not isinstance(_leftvalue(body["key"], probe), DepFail):
        # A verdict map the ruleset fills at run time may come to hold any verdict, accept included.
        out.extend((s, "accept") for s in states)
    for pair in pairs:
        if not (isinstance(pair, list) and len(pair) == 2 and isinstance(pair[1], dict) and len(pair[1]) == 1):
            raise NftError("rule in table %s %s: vmap element %r is not [key, verdict]" % (family, table, pair))
        verb, vbody = list(pair[1].items())[0]
        action = _verdict(verb, vbody)
        if action is None:
            raise NftError("rule in table %s %s: vmap element %r has no verdict" % (family, table, pair))
        match = {"op": "==", "left": body["key"], "right": {"set": [pair[0]]}}
        alts, may_fail = evaluate_match(match, probe, family, table, rs)
        if alts and not may_fail:
            any_sure = True
        out.extend((s | a, action) for s in states for a in alts)
    if not any_sure:
        out.append((frozenset(), "next"))
    return out


def _dedupe(outcomes):
    return list(dict.fromkeys(outcomes))


# ---------------------------------------------------------------------------------------------
# Chains

class Walker(object):
    def __init__(self, rs):
        self.rs, self.steps = rs, 0

    def walk_base(self, base, probe, tags):
        """Accepting paths of one base chain: list of (tags, description)."""
        key = (base["family"], base["table"], base["name"])
        todo, seen, accepted = [(key, 0, (), tags)], set(), []
        while todo:
            state = todo.pop()
            if state in seen:
                continue
            seen.add(state)
            self.steps += 1
            if self.steps > MAX_STEPS:
                raise NftError("ruleset too complex to evaluate (more than %d rule steps)" % MAX_STEPS)
            chain, idx, stack, t = state
            rules = self.rs.rules.get(chain, [])
            if idx >= len(rules):
                self._leave(stack, t, base, todo, accepted)
                continue
            for rtags, action in run_rule(rules[idx], probe, chain[0], chain[1], self.rs):
                nt = t | rtags
                if action == "next":
                    todo.append((chain, idx + 1, stack, nt))
                elif action == "accept":
                    accepted.append((nt, "%s %s %s: %s" % (chain + (render_rule(rules[idx]),))))
                elif action == "return":
                    self._leave(stack, nt, base, todo, accepted)
                elif isinstance(action, tuple):
                    target = (chain[0], chain[1], action[1])
                    if target not in self.rs.chains:
                        raise NftError("chain %s: jump/goto to missing chain %r" % (_chain_name(chain), action[1]))
                    new_stack = stack + ((chain, idx + 1),) if action[0] == "jump" else stack
                    todo.append((target, 0, new_stack, nt))
        return accepted

    @staticmethod
    def _leave(stack, tags, base, todo, accepted):
        if stack:
            chain, idx = stack[-1]
            todo.append((chain, idx, stack[:-1], tags))
        elif base.get("policy", "accept") == "accept":
            accepted.append((tags, "%s %s %s: policy accept" % (base["family"], base["table"], base["name"])))

    def run(self, probe, bases):
        """Accepting paths through every base chain: list of (tags, [descriptions])."""
        if not bases:
            dormant = sorted("%s %s" % t for t in self.rs.dormant if t[0] in FAMILIES[probe.nfproto])
            return [(frozenset(), ["%s: no base chain hooks input (every packet is accepted)%s" % (
                probe.nfproto, "; dormant table(s), hooked nowhere: %s" % ", ".join(dormant) if dormant else "")])]
        paths = [(frozenset(), ())]
        for base in bases:
            nxt = []
            for tags, descs in paths:
                for t, d in self.walk_base(base, probe, tags):
                    nxt.append((t, descs + (d,)))
            paths = list(dict.fromkeys(nxt))
            if not paths:
                break
        return paths


# ---------------------------------------------------------------------------------------------
# Rendering (descriptions of accepting rules)

def _render_left(left):
    if not isinstance(left, dict):
        return _render_value(left)
    if "payload" in left:
        p = left["payload"]
        if p.get("protocol"):
            return "%s %s" % (p["protocol"], p.get("field"))
        return "@%s,%s,%s" % (p.get("base"), p.get("offset"), p.get("len"))
    if "meta" in left:
        k = left["meta"].get("key")
        return k if k in UNQUALIFIED_META else "meta %s" % k
    if "ct" in left:
        c = left["ct"]
        return " ".join(x for x in ("ct", c.get("dir"), c.get("key")) if x)
    if "fib" in left:
        return "fib %s %s" % (" . ".join(left["fib"].get("flags") or []), left["fib"].get("result"))
    if "concat" in left:
        return " . ".join(_render_left(x) for x in left["concat"])
    for op in ("&", "|", "^"):
        if op in left and isinstance(left[op], list):
            return (" %s " % op).join(_render_left(x) for x in left[op])
    return json.dumps(left, sort_keys=True)


def _render_right(left, right):
    quoted = isinstance(left, dict) and (left.get("meta") or {}).get("key") in ("iifname", "oifname")
    if quoted and isinstance(right, str) and not right.startswith("@"):
        return '"%s"' % right
    if quoted and isinstance(right, dict) and isinstance(right.get("set"), list):
        return "{ %s }" % ", ".join('"%s"' % x if isinstance(x, str) else _render_value(x) for x in right["set"])
    return _render_value(right)


def _render_expr(e):
    if not isinstance(e, dict) or len(e) != 1:
        return json.dumps(e, sort_keys=True)
    key, body = list(e.items())[0]
    if key == "match":
        op = body.get("op", "==")
        sep = " " if op in ("==", "in") else " %s " % op
        return "%s%s%s" % (_render_left(body.get("left")), sep, _render_right(body.get("left"), body.get("right")))
    if key in ("jump", "goto") and isinstance(body, dict):
        return "%s %s" % (key, body.get("target"))
    if key == "reject":
        if isinstance(body, dict) and body.get("type"):
            return "reject with %s %s" % (body["type"], body.get("expr", ""))
        return "reject"
    if key == "vmap":
        data = body.get("data")
        if isinstance(data, dict) and isinstance(data.get("set"), list):
            data = "{ %s }" % ", ".join("%s : %s" % (_render_value(p[0]), _render_expr(p[1])) for p in data["set"])
        return "%s vmap %s" % (_render_left(body.get("key")), data)
    if key == "log":
        return 'log prefix "%s"' % body["prefix"] if isinstance(body, dict) and body.get("prefix") else "log"
    if key == "limit" and isinstance(body, dict):
        return "limit rate %s/%s" % (body.get("rate"), body.get("per"))
    if key == "xt" and isinstance(body, dict):
        return "xt %s %s" % (body.get("type"), body.get("name"))
    if body is None or key == "counter":
        return key
    return "%s %s" % (key, json.dumps(body, sort_keys=True))


def render_rule(exprs):
    return " ".join(_render_expr(e) for e in exprs)


# ---------------------------------------------------------------------------------------------
# Ports

def _walk_values(obj, ints, ranges):
    if isinstance(obj, bool):
        return
    if isinstance(obj, int):
        if 0 <= obj <= PORT_MAX:
            ints.add(obj)
        return
    if isinstance(obj, dict):
        if isinstance(obj.get("range"), list) and len(obj["range"]) == 2:
            lo, hi = obj["range"]
            if isinstance(lo, int) and isinstance(hi, int) and lo <= PORT_MAX:
                ranges.append((max(lo, 0), min(hi, PORT_MAX)))
        for v in obj.values():
            _walk_values(v, ints, ranges)
    elif isinstance(obj, list):
        for v in obj:
            _walk_values(v, ints, ranges)
    elif isinstance(obj, str) and obj in SERVICES:
        ints.add(SERVICES[obj])


def port_intervals(rs):
    """Elementary port intervals [(lo, hi, mentioned)]: within one, every port is treated alike.
    `mentioned` is False for a gap no literal range covers (a port "mentioned nowhere")."""
    ints, ranges = set(), []
    for rules in rs.rules.values():
        _walk_values(rules, ints, ranges)
    for s in rs.sets.values():
        _walk_values(s.get("elem") or [], ints, ranges)
    for lo, hi in ranges:
        ints.update((lo, hi))
    points = sorted(ints)
    out, prev = [], -1
    for p in points + [PORT_MAX + 1]:
        if p - prev > 1:
            lo, hi = prev + 1, p - 1
            out.append((lo, hi, any(a <= lo and hi <= b for a, b in ranges)))
        if p <= PORT_MAX:
            out.append((p, p, True))
        prev = p
    return out


# ---------------------------------------------------------------------------------------------
# Entry points

# Run-time state that changes while the ruleset stays the same: packet and byte counts of
# counters and quotas. Left in, RB-10's digest would drift with traffic and raise false alarms.
_RUNTIME_KEYS = ("handle", "packets", "bytes", "used")


def normalise(items):
    """The ruleset without handles, metainfo and counter values (what the digest covers)."""
    def strip(obj):
        if isinstance(obj, dict):
            return dict((k, strip(v)) for k, v in obj.items() if k not in _RUNTIME_KEYS)
        if isinstance(obj, list):
            return [strip(x) for x in obj]
        return obj
    return [strip(i) for i in items if not (isinstance(i, dict) and "metainfo" in i)]


def digest(doc):
    items = normalise(doc.get("nftables", []))
    return hashlib.sha256(json.dumps(items, sort_keys=True, separators=(",", ":")).encode("utf-8")).hexdigest()


def error_result(message):
    return dict(digest=None, error=message, default_deny=None, open=None, open_any=None,
                input_policy=None, input_chains=None)


def _mgmt_networks(management):
    nets = []
    for cidr in management or []:
        try:
            nets.append(ipaddress.ip_network(u"%s" % cidr, strict=False))
        except ValueError:
            raise NftError("management source %r is not an address or CIDR" % (cidr,))
    # Sources the probe never has: loopback and management, merged so adjacent CIDRs cover their union.
    known = list(LOOPBACK) + nets
    return [n for v in (4, 6) for n in ipaddress.collapse_addresses([k for k in known if k.version == v])]


def evaluate(doc, management=None):
    """The contract's `firewall` dict for a parsed `nft -j list ruleset` document."""
    try:
        rs = Ruleset(doc)
        mgmt = _mgmt_networks(management)
        walker = Walker(rs)
        intervals = port_intervals(rs)
        opened, open_any, others, default_deny = set(), set(), set(), True
        for nfproto in ("ipv4", "ipv6"):
            bases = rs.base_chains(nfproto)
            for proto in PROTOS:
                for lo, hi, mentioned in intervals:
                    paths = walker.run(Probe(nfproto, proto, lo, mgmt), bases)
                    paths += _untracked_paths(walker, Probe(nfproto, proto, lo, mgmt, "untracked"), bases)
                    paths += _translated_paths(rs, Probe(nfproto, proto, lo, mgmt), bases)
                    if paths and not mentioned:
                        default_deny = False
                    _collect(paths, proto, lo, hi, opened, open_any)
            for number in l4_probes(rs):
                name = L4_NAMES.get(number)
                probe = Probe(nfproto, name or number, None, mgmt)
                for _tags, descs in walker.run(probe, bases) + _translated_paths(rs, probe, bases):
                    if "; then ".join(descs) not in open_any:  # a path TCP and UDP take too is listed once, as is
                        others.add("%s %s: %s" % (nfproto, name or "protocol %d" % number, "; then ".join(descs)))
        open_any.update(others)
    except NftError as e:
        return error_result(str(e))
    chains = rs.input_chains()
    policy = None
    if chains:
        policy = "drop" if any(c.get("policy") == "drop" for c in chains) else "accept"
    return dict(digest=digest(doc), error=None, default_deny=default_deny,
                open=_open_list(opened),
                open_any=sorted(open_any), input_policy=policy, input_chains=len(chains))


# Hooks where a notrack statement is too late for an inbound packet (connection tracking saw it at prerouting).
AFTER_CONNTRACK = ("input", "forward", "output", "postrouting", "ingress")


def _before_input(rs, probe, entries):
    """(chain key, entry, tags of each way the probe may reach the statement) of the ``entries`` ((chain key, the
    expressions before a statement, ...)) in chains a packet may pass before input: prerouting base chains and
    regular chains (which one jumps to is not followed) of the probe's families, in tables that are not dormant."""
    for entry in entries:
        key, prefix = entry[0], entry[1]
        chain = rs.chains.get(key) or {}
        if (key[0] not in FAMILIES[probe.nfproto] or (key[0], key[1]) in rs.dormant
                or chain.get("hook") in AFTER_CONNTRACK):
            continue
        outcomes = run_rule(prefix + [{"accept": None}], probe, key[0], key[1], rs)
        hits = [t for t, action in outcomes if action == "accept"]
        if hits:
            yield key, entry, hits


def _translated_paths(rs, probe, bases):
    """Paths of ``probe`` when a dnat or redirect rule before input may translate it: its destination or port changes
    there (docker's published ports, a port redirect), and where it goes then (input under another port, forward
    to a container) is not followed; it counts as accepted, bounded by that rule's port and source matches."""
    if not bases:
        return []
    out = []
    for key, (_k, prefix, stmt), hits in _before_input(rs, probe, rs.translated):
        why = "%s %s %s: %s (translated before input; not followed further)" % (key + (render_rule(prefix + [stmt]),))
        out.extend((t, (why,)) for t in hits)
    return list(dict.fromkeys(out))


def _untracked_paths(walker, probe, bases):
    """Accepting paths of ``probe`` (ct state untracked) when a notrack rule may take it out of connection tracking
    before input: it is then never "new", and an input rule accepting `ct state untracked` (a common companion of
    notrack) accepts it. Each path carries the notrack rule's tags (its port and source bounds) and names it. The
    rules before a notrack rule in its chain are not followed (one that drops first makes this over-report)."""
    rs, out = walker.rs, []
    if not bases:
        return out  # nothing hooks input: the probe's own paths say every packet is accepted
    for key, (_k, prefix), hits in _before_input(rs, probe, rs.notrack):
        why = "%s %s %s: %s" % (key + (render_rule(prefix + [{"notrack": None}]),))
        for tags, descs in walker.run(probe, bases):
            out.extend((tags | t, [why] + list(descs)) for t in hits)
    return list(dict.fromkeys((t, tuple(d)) for t, d in out))


L4_NAMES = dict((n, name) for name, n in sorted(L4_NUMBERS.items(), reverse=True))


def _l4_selector(left):
    """Whether a match's left side is the packet's L4 protocol (meta l4proto, ip protocol, ip6 nexthdr)."""
    if not isinstance(left, dict):
        return False
    if "meta" in left:
        return (left["meta"] or {}).get("key") == "l4proto"
    p = left.get("payload") or {}
    return p.get("protocol") in L3_DEPS and p.get("field") in ("protocol", "nexthdr")


def _l4_values(value, family, table, rs, out):
    """Add the protocol numbers ``value`` (a match's right side or a vmap key) names to ``out``."""
    value = _unwrap(value)
    if isinstance(value, str) and value.startswith("@"):
        for elem in rs.set_elems(family, table, value)[0]:
            _l4_values(elem[0] if isinstance(elem, list) and len(elem) == 2 else elem, family, table, rs, out)
    elif isinstance(value, dict) and "set" in value:
        _l4_values(value["set"], family, table, rs, out)
    elif isinstance(value, dict) and isinstance(value.get("range"), list):
        for x in value["range"]:
            _l4_values(x, family, table, rs, out)
    elif isinstance(value, list):
        for x in value:
            _l4_values(x, family, table, rs, out)
    else:
        number = _norm_const(value, "l4proto")
        if isinstance(number, int) and not isinstance(number, bool) and 0 <= number <= 255:
            out.add(number)


def l4_probes(rs):
    """The protocol numbers probed besides TCP and UDP: EXTRA_L4, OTHER_L4 and each one an L4 protocol match or verdict
    map of the ruleset names (a rule accepting `ip protocol 41` is seen only by a probe of protocol 41)."""
    found = set(EXTRA_L4) | set([OTHER_L4])
    for (family, table, _chain), rules in rs.rules.items():
        for exprs in rules:
            for e in exprs:
                m = e.get("match") if isinstance(e, dict) else None
                vm = e.get("vmap") if isinstance(e, dict) else None
                if isinstance(m, dict) and _l4_selector(m.get("left")):
                    _l4_values(m.get("right"), family, table, rs, found)
                if isinstance(vm, dict) and _l4_selector(vm.get("key")):
                    data = vm.get("data")
                    pairs = data.get("set") if isinstance(data, dict) else data
                    for pair in (pairs if isinstance(pairs, list) else [pairs]):
                        _l4_values(pair[0] if isinstance(pair, list) and len(pair) == 2 else pair, family, table, rs,
                                   found)
    return sorted(found - set(NOT_PROBED_L4))


def _open_list(opened):
    """Sorted entries; a port open from any source needs no narrower entry beside it."""
    anywhere = set((p, n) for p, n, f in opened if f == "any")
    return [dict(proto=p, port=n, **{"from": f}) for p, n, f in sorted(opened) if f == "any" or (p, n) not in anywhere]


def _collect(paths, proto, lo, hi, opened, open_any):
    for tags, descs in paths:
        if ("port",) not in tags:
            open_any.add("; then ".join(descs))
            continue
        froms = sorted(t[1] for t in tags if t[0] == "from")
        source = " and ".join(froms) if froms else "any"
        if hi - lo + 1 > MAX_LISTED_RUN:
            open_any.add("%s ports %d-%d from %s" % (proto, lo, hi, source))
            continue
        for port in range(lo, hi + 1):
            opened.add((proto, port, source))


def evaluate_text(text, management=None):
    """Like evaluate() for the text printed by `nft -j list ruleset` (empty output = empty ruleset)."""
    if text is None or not text.strip():
        return evaluate({"nftables": []}, management)
    try:
        doc = json.loads(text)
    except ValueError as e:
        return error_result("nft output is not JSON: %s" % e)
    return evaluate(doc, management)
