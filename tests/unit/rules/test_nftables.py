"""module_utils/nftables.py: the semantic ISO-10 evidence, on real rulesets (tests/fixtures/nft) and on
small synthetic documents for each construct the evaluator follows."""

import json
import os

import pytest

from ansible_collections.vmguard.hardening.plugins.module_utils.evidence import guestscan, nftables as N

from . import evidence as E

FIXTURES = os.path.join(os.path.dirname(__file__), "..", "..", "fixtures", "nft")
NO_V4 = "ipv4: no base chain hooks input (every packet is accepted)"
NO_V6 = "ipv6: no base chain hooks input (every packet is accepted)"


def tcp(*ports, **kw):
    return [{"proto": "tcp", "port": p, "from": kw.get("src", "any")} for p in ports]


def udp(*ports, **kw):
    return [{"proto": "udp", "port": p, "from": kw.get("src", "any")} for p in ports]


def fixture(name):
    with open(os.path.join(FIXTURES, name + ".json")) as f:
        return f.read()


# name: (default_deny, open, open_any, input_policy, ISO-10 status for a web guest: 80/443 + management 22)
CASES = {
    "debian-default": (False, [], ["inet filter input: policy accept"], "accept", "fail"),
    # firewalld's public zone: ssh, http, https and dhcpv6-client (a DHCP client's replies, allowed as client_ports).
    "firewalld-public-web": (True, tcp(22, 80, 443) + udp(546), [], "accept", "pass"),
    "ufw-web": (False, tcp(22, 80, 443) + udp(68) + udp(546, src="fe80::/10") + udp(1900, 5353),
                ["ip filter ufw-before-input: xt match conntrack counter accept",
                 "ip6 filter ufw6-before-input: xt match conntrack counter accept"], "drop", "fail"),
    "vmguard-web": (True, tcp(22, src="192.0.2.0/24") + tcp(22, src="2001:db8:100::/64") + tcp(80, 443), [],
                    "drop", "pass"),
    "reject-final-default-deny": (True, tcp(22, 80, 443), [], "accept", "pass"),
    "ct-state-new-accept": (False, [], ["inet filter input: ct state new accept"], "drop", "fail"),
    "iifname-eth0-accept": (False, tcp(22, 80, 443), ['inet filter input: iifname "eth0" accept'], "drop", "fail"),
    "l4proto-tcp-accept": (False, [], ["inet filter input: meta l4proto tcp accept"], "drop", "fail"),
    "jump-chain-ports": (True, tcp(22, 80, 443, 3306), [], "drop", "fail"),
    "named-set-ports": (True, tcp(22, 80, 443, 9100, 9101, 9102, 9103, 9104), [], "drop", "fail"),
    "prerouting-only": (False, [], [NO_V4, NO_V6], None, "fail"),
    "empty": (False, [], [NO_V4, NO_V6], None, "fail"),
    "ip-only": (False, tcp(22, 80, 443), [NO_V6], "drop", "fail"),
}

BROKEN = {
    "broken-not-json": "nft output is not JSON",
    "broken-shape": "expected an object with an 'nftables' list",
    "broken-rule-shape": "nftables[3].rule.expr: expected a list",
    "broken-loop": "jump loop: inet filter a -> inet filter b -> inet filter a",
    "broken-missing-set": "reference to missing set @allowed_tcp",
}


def iso10_status(fw):
    """ISO-10 on ``fw`` as the live ruleset and as the one the boot loads (persisted by nftables.service)."""
    boot = dict(fw, loaders=[{"unit": "nftables.service", "files": ["/etc/nftables.conf"]}], others=[])
    facts = E.guest_facts(1, firewall=fw, firewall_boot=boot)
    fleet = E.fleet([E.domain("web1", "web")], {"web1": E.guest("web1", "web", facts=facts)})
    return E.by_subject(E.run("ISO-10", fleet))["web1"]


def test_every_fixture_has_a_case():
    names = set(f[:-5] for f in os.listdir(FIXTURES) if f.endswith(".json"))
    assert names == set(CASES) | set(BROKEN)
    assert len(CASES) >= 10


@pytest.mark.parametrize("name", sorted(CASES))
def test_real_ruleset(name):
    default_deny, opened, open_any, policy, verdict = CASES[name]
    fw = guestscan.firewall(fixture(name))
    assert fw["error"] is None
    assert fw["default_deny"] is default_deny
    assert fw["open"] == sorted(opened, key=lambda o: (o["proto"], o["port"], o["from"]))
    assert fw["open_any"] == open_any
    assert fw["input_policy"] == policy
    assert len(fw["digest"]) == 64
    got = iso10_status(fw)
    assert got["status"] == verdict, got["message"]


@pytest.mark.parametrize("name", sorted(BROKEN))
def test_broken_document_is_an_error(name):
    fw = guestscan.firewall(fixture(name))
    assert fw["digest"] is None and BROKEN[name] in fw["error"]
    assert fw["open"] is None and fw["default_deny"] is None
    assert iso10_status(fw)["status"] == "error"


def test_iso10_messages_on_real_rulesets():
    msg = iso10_status(guestscan.firewall(fixture("jump-chain-ports")))["message"]
    assert msg.startswith("inbound firewall opens ports outside TCP [22, 80, 443], UDP [68, 80, 443, 546]: tcp/3306 from "
                          "any; the ruleset loaded at boot by nftables.service (/etc/nftables.conf) opens ports outside")
    msg = iso10_status(guestscan.firewall(fixture("firewalld-public-web")))["message"]
    assert msg == ("inbound default-deny, live and at boot (loaded by nftables.service); "
                   "open: tcp/22 from any, tcp/80 from any, tcp/443 from any, udp/546 from any")
    msg = iso10_status(guestscan.firewall(fixture("ip-only")))["message"]
    assert msg.startswith("inbound firewall accepts inbound traffic not bounded to a port: ipv6: no base chain")


def test_management_sources_are_not_exposure():
    fw = guestscan.firewall(fixture("vmguard-web"), management=["192.0.2.0/24", "2001:db8:100::/64"])
    assert fw["open"] == tcp(80, 443) and fw["default_deny"] is True
    # Only the v4 management network known: SSH stays open to the v6 one.
    fw = guestscan.firewall(fixture("vmguard-web"), management=["192.0.2.0/25", "192.0.2.128/25"])
    assert fw["open"] == tcp(22, src="2001:db8:100::/64") + tcp(80, 443)
    assert "not an address" in guestscan.firewall(fixture("vmguard-web"), management=["mgmt-net"])["error"]


def test_digest_ignores_handles_and_metainfo_only():
    doc = json.loads(fixture("vmguard-web"))
    base = N.evaluate(doc)["digest"]
    for item in doc["nftables"]:
        for body in item.values():
            if isinstance(body, dict) and "handle" in body:
                body["handle"] += 100
    doc["nftables"][0]["metainfo"]["version"] = "9.9"
    assert N.evaluate(doc)["digest"] == base
    doc["nftables"][-1]["rule"]["expr"][-1] = {"accept": None}
    assert N.evaluate(doc)["digest"] != base
    assert guestscan.firewall("")["digest"] == guestscan.firewall('{"nftables": []}')["digest"]


# ---------------------------------------------------------------------------------------------------------
# Synthetic documents: one construct at a time.

def doc(*chains, **kw):
    """chains: (family, table, name, hook|None, prio, policy, [rule exprs...]); kw sets=[(family, table, body)]."""
    items, tables = [], []
    for fam, table, name, hook, prio, policy, rules in chains:
        if (fam, table) not in tables:
            tables.append((fam, table))
        c = {"family": fam, "table": table, "name": name}
        if hook:
            c.update(type="filter", hook=hook, prio=prio, policy=policy)
        items.append({"chain": c})
        items.extend({"rule": {"family": fam, "table": table, "chain": name, "expr": r}} for r in rules)
    for fam, table, body in kw.get("sets", []):
        items.append({("map" if "map" in body else "set"): dict(body, family=fam, table=table)})
    return {"nftables": [{"table": {"family": f, "name": t}} for f, t in tables] + items}


def m(left, right, op="=="):
    return {"match": {"op": op, "left": left, "right": right}}


def dport(proto="tcp"):
    return {"payload": {"protocol": proto, "field": "dport"}}


def meta(key):
    return {"meta": {"key": key}}


def saddr(fam="ip"):
    return {"payload": {"protocol": fam, "field": "saddr"}}


ACCEPT, DROP = {"accept": None}, {"drop": None}
CT_NEW = {"ct": {"key": "state"}}


def ev(*chains, **kw):
    fw = N.evaluate(doc(*chains, **kw), kw.get("management"))
    assert fw["error"] is None, fw["error"]
    return fw


def inet_input(rules, policy="drop", name="input", prio=0, family="inet"):
    return (family, "filter", name, "input", prio, policy, rules)


def test_accept_ends_only_its_base_chain_and_drop_anywhere_is_final():
    first = inet_input([[m(dport(), 22), ACCEPT], [m(dport(), 80), ACCEPT]], name="a", prio=-10)
    second = ("inet", "other", "b", "input", 10, "drop", [[m(dport(), 80), ACCEPT]])
    fw = ev(first, second)
    assert fw["open"] == tcp(80) and fw["default_deny"] is True and fw["input_chains"] == 2
    # Priority order, not document order:    # the IPv4-only chain that drops everything runs first whatever its position; IPv6 passes.
    dropper = ("ip", "raw", "c", "input", -300, "accept", [[DROP]])
    fw = ev(inet_input([[ACCEPT]]), dropper)
    assert fw["open_any"] == ["inet filter input: accept"] and fw["default_deny"] is False


def test_v4_and_v6_are_evaluated_separately():
    fw = ev(("ip6", "f", "in6", "input", 0, "drop", [[m(dport(), 443), ACCEPT]]),
            ("ip", "f", "in4", "input", 0, "drop", [[m(dport(), 80), ACCEPT]]))
    assert fw["open"] == tcp(80, 443) and fw["default_deny"] is True
    fw = ev(inet_input([[m(meta("nfproto"), "ipv4"), m(dport(), 80), ACCEPT],
                        [m({"payload": {"protocol": "ip6", "field": "nexthdr"}}, "tcp"), m(dport(), 443), ACCEPT],
                        [m(saddr("ip"), "10.0.0.0", op="!="), m(dport("udp"), 53), ACCEPT]]))
    assert fw["open"] == tcp(80, 443) + udp(53, src="not 10.0.0.0")


def test_jump_goto_return_and_policy():
    rules = [[m(dport(), 22), {"jump": {"target": "ssh"}}], [m(dport(), 25), {"goto": {"target": "mail"}}],
             [m(dport(), 26), {"jump": {"target": "mail"}}], [m(dport(), 26), DROP]]
    ssh = ("inet", "filter", "ssh", None, 0, None, [[{"return": None}], [ACCEPT]])
    mail = ("inet", "filter", "mail", None, 0, None, [[m(dport(), 26), {"return": None}], [{"counter": None}]])
    # 22 returns to input and hits the policy; 25 falls off "mail" reached by goto -> base policy (accept here);
    # 26 returns from the jump and is dropped.
    fw = ev(inet_input(rules, policy="accept"), ssh, mail)
    assert fw["default_deny"] is False and 26 not in [o["port"] for o in fw["open"]]
    # With policy drop: 22 comes back and is accepted below; 25 went by goto, so falling off "mail" ends the
    # base chain (policy drop) and the accept below never sees it.
    fw = ev(inet_input(rules + [[m(dport(), {"set": [22, 25]}), ACCEPT]]), ssh, mail)
    assert fw["open"] == tcp(22) and fw["default_deny"] is True


def test_verdict_maps_anonymous_and_named():
    vmap = {"vmap": {"key": dport(), "data": {"set": [[80, ACCEPT], [{"range": [8000, 8002]}, ACCEPT],
                                                      [443, {"jump": {"target": "tls"}}]]}}}
    tls = ("inet", "filter", "tls", None, 0, None, [[m(saddr(), {"prefix": {"addr": "10.0.0.0", "len": 8}}), ACCEPT]])
    fw = ev(inet_input([[vmap]]), tls)
    assert fw["open"] == tcp(80) + tcp(443, src="10.0.0.0/8") + tcp(8000, 8001, 8002)
    named = {"name": "svc", "type": "inet_service", "map": "verdict", "elem": [[53, ACCEPT], [54, DROP]]}
    fw = ev(inet_input([[{"vmap": {"key": {"payload": {"protocol": "th", "field": "dport"}}, "data": "@svc"}}]]),
            sets=[("inet", "filter", named)])
    assert fw["open"] == tcp(53) + udp(53)


def test_ct_state_interface_and_protocol_matches():
    fw = ev(inet_input([[m(CT_NEW, ["established", "related"], op="in"), ACCEPT],
                        [m(meta("iifname"), "lo"), ACCEPT], [m(meta("iif"), {"set": ["lo"]}), ACCEPT],
                        [m(meta("l4proto"), {"set": ["icmp", "ipv6-icmp"]}), ACCEPT],
                        [m({"ct": {"key": "status"}}, "dnat", op="in"), ACCEPT],
                        [m({"fib": {"result": "type", "flags": ["daddr"]}}, "broadcast"), ACCEPT],
                        [m(CT_NEW, {"set": ["new", "untracked"]}), m(dport(), 22), ACCEPT]]))
    assert fw["open"] == tcp(22) and fw["open_any"] == [] and fw["default_deny"] is True
    fw = ev(inet_input([[m(meta("iifname"), "lo", op="!="), m(dport("udp"), 123), ACCEPT],
                        [m({"payload": {"protocol": "ip", "field": "protocol"}}, 17), ACCEPT]]))
    assert fw["open"] == udp(123) and fw["open_any"] == ["inet filter input: ip protocol 17 accept"]


def test_unknown_matches_are_conservative():
    unknown = m({"meta": {"key": "mark"}}, 7)
    # Before an accept an unknown match may match: exposure.
    fw = ev(inet_input([[unknown, ACCEPT]]))
    assert fw["open_any"] == ["inet filter input: meta mark 7 accept"] and fw["default_deny"] is False
    # Before a drop it may not match: the later accept still counts.
    fw = ev(inet_input([[unknown, DROP], [{"xt": {"type": "match", "name": "recent"}}, DROP],
                        [{"limit": {"rate": 1, "per": "second"}}, DROP], [m(dport(), 8080), ACCEPT]]))
    assert fw["open"] == tcp(8080)
    # A limited accept may accept; a rate limit is no filter.
    fw = ev(inet_input([[m(dport(), 22), {"limit": {"rate": 3, "per": "minute"}}, {"counter": None}, ACCEPT]]))
    assert fw["open"] == tcp(22)
    # iptables-nft's REJECT target is final; its LOG target is not.
    fw = ev(inet_input([[{"xt": {"type": "target", "name": "LOG"}}], [m(dport(), 23), {"xt": {"type": "target", "name": "REJECT"}}],
                        [m(dport(), {"set": [22, 23]}), ACCEPT]]))
    assert fw["open"] == tcp(22)


def test_port_ranges_comparisons_and_other_ports():
    fw = ev(inet_input([[m(dport(), {"range": [1000, 1002]}), ACCEPT]]))
    assert fw["open"] == tcp(1000, 1001, 1002) and fw["default_deny"] is True
    fw = ev(inet_input([[m(dport(), 1024, op=">="), ACCEPT]]))
    assert fw["default_deny"] is False and fw["open_any"] == ["inet filter input: tcp dport >= 1024 accept"]
    fw = ev(inet_input([[m(dport(), 22, op="!="), ACCEPT]]))
    assert fw["default_deny"] is False and fw["open"] == []
    fw = ev(inet_input([[m(dport("udp"), {"range": [1024, 65535]}), ACCEPT]]))
    assert fw["default_deny"] is True and fw["open"] == udp(1024, 65535)
    assert fw["open_any"] == ["udp ports 1025-65534 from any"]


def test_sets_named_concatenated_and_dynamic():
    ports = {"name": "p", "type": "inet_service", "flags": ["interval"], "elem": [22, {"range": [5000, 5001]}]}
    fw = ev(inet_input([[m(dport(), "@p"), ACCEPT]]), sets=[("inet", "filter", ports)])
    assert fw["open"] == tcp(22, 5000, 5001)
    cat = m({"concat": [saddr(), dport()]},
            {"set": [{"concat": ["192.0.2.7", 22]}, {"concat": [{"prefix": {"addr": "10.1.0.0", "len": 16}}, 3306]}]})
    fw = ev(inet_input([[cat, ACCEPT]]), management=["192.0.2.0/24"])
    assert fw["open"] == tcp(3306, src="10.1.0.0/16")
    # A set the ruleset fills at run time (port knocking) may hold any source.
    knock = {"name": "knocked", "type": "ipv4_addr", "flags": ["dynamic", "timeout"]}
    fw = ev(inet_input([[m(saddr(), "@knocked"), m(dport(), 22), ACCEPT]]), sets=[("inet", "filter", knock)])
    assert fw["open"] == tcp(22, src="@knocked")


def test_loopback_and_management_sources_never_reach_the_probe():
    fw = ev(inet_input([[m(saddr(), {"prefix": {"addr": "127.0.0.0", "len": 8}}), ACCEPT],
                        [m(saddr("ip6"), "::1"), ACCEPT],
                        [m(saddr(), {"set": [{"prefix": {"addr": "192.0.2.0", "len": 24}}]}), m(dport(), 22), ACCEPT]]),
            management=["192.0.2.0/24"])
    assert fw["open"] == [] and fw["open_any"] == [] and fw["default_deny"] is True


def test_no_input_chain_for_a_family_is_open():
    fw = ev(("ip", "filter", "input", "input", 0, "drop", []),
            ("inet", "filter", "fwd", "forward", 0, "drop", []))
    assert fw["open_any"] == [NO_V6] and fw["input_chains"] == 1 and fw["input_policy"] == "drop"


def test_missing_jump_target_is_an_error():
    fw = N.evaluate(doc(inet_input([[{"jump": {"target": "nowhere"}}]])))
    assert fw["error"] == "chain inet filter input: jump/goto to missing chain 'nowhere'"


def test_interface_type_and_run_time_filled_verdict_maps():
    fw = ev(inet_input([[m(meta("iiftype"), "loopback"), ACCEPT], [m(meta("iif"), 1), ACCEPT],
                        [m(meta("iiftype"), "ether"), m(dport(), 80), ACCEPT]]))
    assert fw["open"] == tcp(80) and fw["open_any"] == []
    dyn = {"name": "dyn", "type": "ipv4_addr", "map": "verdict", "flags": ["dynamic"], "elem": []}
    fw = ev(inet_input([[{"vmap": {"key": saddr(), "data": "@dyn"}}]]), sets=[("inet", "filter", dyn)])
    assert fw["open_any"] == ["inet filter input: ip saddr vmap @dyn"] and fw["default_deny"] is False


def test_evaluation_is_bounded(monkeypatch):
    monkeypatch.setattr(N, "MAX_STEPS", 5)
    fw = N.evaluate(json.loads(fixture("firewalld-public-web")))
    assert fw["error"] == "ruleset too complex to evaluate (more than 5 rule steps)" and fw["digest"] is None


def test_digest_ignores_counter_values_but_not_rules():
    def doc(packets, port):
        return {"nftables": [
            {"metainfo": {"version": "1.0.6", "json_schema_version": 1}},
            {"table": {"family": "inet", "name": "f", "handle": 1}},
            {"chain": {"family": "inet", "table": "f", "name": "input", "handle": 1, "type": "filter",
                       "hook": "input", "prio": 0, "policy": "drop"}},
            {"rule": {"family": "inet", "table": "f", "chain": "input", "handle": 7 + packets, "expr": [
                {"match": {"op": "==", "left": {"payload": {"protocol": "tcp", "field": "dport"}}, "right": port}},
                {"counter": {"packets": packets, "bytes": packets * 60}}, {"accept": None}]}},
            {"counter": {"family": "inet", "name": "c", "table": "f", "handle": 9, "packets": packets, "bytes": 3}},
        ]}
    assert N.digest(doc(0, 22)) == N.digest(doc(12345, 22))  # traffic flowed, nothing changed
    assert N.digest(doc(0, 22)) != N.digest(doc(0, 23))      # a rule changed


def test_a_dormant_tables_chains_filter_nothing():
    """`nft add table inet vmguard { flags dormant; }` unhooks every chain of the table while `nft list ruleset`
    still shows them, policy drop included: the table protects nothing (it was judged default-deny)."""
    items = doc(inet_input([[m(dport(), 22), ACCEPT]]))
    for flags in ("dormant", ["dormant", "owner"]):
        items["nftables"][0]["table"]["flags"] = flags
        fw = N.evaluate(items)
        assert fw["default_deny"] is False and fw["open"] == [] and fw["input_chains"] == 0
        assert fw["input_policy"] is None
        assert fw["open_any"] == ["%s: no base chain hooks input (every packet is accepted); dormant table(s), hooked "
                                  "nowhere: inet filter" % fam for fam in ("ipv4", "ipv6")]
        assert iso10_status(fw)["status"] == "fail"
    # Another flag keeps the table's chains hooked; a dormant table beside an active one leaves that one judged.
    items["nftables"][0]["table"]["flags"] = "owner"
    assert N.evaluate(items)["default_deny"] is True
    both = doc(inet_input([[m(dport(), 22), ACCEPT]]), ("inet", "off", "input", "input", -10, "drop", []))
    both["nftables"][1]["table"]["flags"] = ["dormant"]
    fw = N.evaluate(both)
    assert fw["default_deny"] is True and fw["open"] == tcp(22) and fw["input_chains"] == 1


def test_notracked_packets_are_not_new():
    """A notrack statement before connection tracking (a raw prerouting chain) makes the packet `ct state untracked`,
    never new: an input rule accepting untracked traffic accepts it, on the notracked port only."""
    raw = ("inet", "filter", "raw", "prerouting", -300, "accept", [[m(dport(), 5555), {"notrack": None}]])
    untracked = [m(CT_NEW, ["established", "related", "untracked"], op="in"), ACCEPT]
    fw = ev(raw, inet_input([untracked, [m(dport(), 22), ACCEPT]]))
    assert fw["open"] == tcp(22, 5555) and fw["default_deny"] is True
    assert iso10_status(fw)["status"] == "fail"
    # Unbounded notrack: every port may arrive untracked.
    raw_all = ("inet", "filter", "raw", "prerouting", -300, "accept", [[{"notrack": None}]])
    fw = ev(raw_all, inet_input([untracked, [m(dport(), 22), ACCEPT]]))
    assert fw["default_deny"] is False
    assert any(a.startswith("inet filter raw: notrack; then inet filter input: ct state") for a in fw["open_any"])
    # Untracked packets no input rule accepts, a notrack at output (too late for inbound) or of the other family:
    # nothing more is open.
    assert ev(raw_all, inet_input([[m(dport(), 22), ACCEPT]]))["open"] == tcp(22)
    out = ("inet", "filter", "out", "output", -300, "accept", [[{"notrack": None}]])
    v6 = ("ip6", "raw6", "raw", "prerouting", -300, "accept", [[{"notrack": None}]])
    fw = ev(out, ("ip", "filter", "input", "input", 0, "drop", [untracked, [m(dport(), 22), ACCEPT]]), v6)
    assert fw["open"] == tcp(22) and fw["open_any"] == [NO_V6]


def test_translated_packets_are_not_judged_by_input_alone():
    """A dnat or redirect before input (docker's published ports, a port redirect) changes where the packet goes:
    input sees another port (or forward a container's address), so `ct status dnat accept` or the forward chain let
    it in. The external port the rule matches counts as accepted (was: only input was judged, nothing open)."""
    dnat = ("ip", "nat", "pre", "prerouting", -100, "accept",
            [[m(dport(), 2222), {"dnat": {"addr": "172.17.0.2", "port": 22}}],
             [m(saddr(), {"prefix": {"addr": "198.51.100.0", "len": 24}}), m(dport("udp"), 53),
              {"redirect": {"port": 5353}}]])
    fw = ev(dnat, inet_input([[m({"ct": {"key": "status"}}, "dnat", op="in"), ACCEPT], [m(dport(), 22), ACCEPT]]))
    assert fw["open"] == tcp(22, 2222) + udp(53, src="198.51.100.0/24") and fw["default_deny"] is True
    assert iso10_status(fw)["status"] == "fail"
    # A translation after input (output) translates nothing inbound.
    out = ("ip", "nat", "out", "output", -100, "accept", [[m(dport(), 2222), {"dnat": {"addr": "172.17.0.2"}}]])
    fw = ev(out, inet_input([[m(dport(), 22), ACCEPT]]))
    assert fw["open"] == tcp(22) and fw["default_deny"] is True


def test_protocols_other_than_tcp_and_udp_are_probed():
    """Only TCP and UDP were probed: a ruleset with policy drop accepting every SCTP association (or IPv6-in-IPv4,
    GRE, ESP...) was default-deny with nothing open. SCTP, DCCP, UDP-Lite, every protocol an L4 protocol match names
    and one no rule names are probed once each (ports unknown); ICMP is not (every policy answers it)."""
    rules = [[m(meta("l4proto"), "sctp"), ACCEPT],
             [m({"payload": {"protocol": "ip", "field": "protocol"}}, 41), ACCEPT],
             [m(meta("l4proto"), {"set": ["icmp", "ipv6-icmp"]}), ACCEPT], [m(dport(), 22), ACCEPT]]
    fw = ev(inet_input(rules))
    assert fw["open"] == tcp(22) and fw["default_deny"] is True
    assert fw["open_any"] == ["ipv4 protocol 41: inet filter input: ip protocol 41 accept",
                              "ipv4 sctp: inet filter input: meta l4proto sctp accept",
                              "ipv6 sctp: inet filter input: meta l4proto sctp accept"]
    assert iso10_status(fw)["status"] == "fail"
    # `th dport` reads the ports of any transport protocol; `meta l4proto != tcp` accepts every other one.
    fw = ev(inet_input([[m({"payload": {"protocol": "th", "field": "dport"}}, 5000), ACCEPT],
                        [m(meta("l4proto"), "tcp", op="!="), m(meta("l4proto"), "udp", op="!="), ACCEPT]]))
    assert "ipv4 sctp: inet filter input: th dport 5000 accept" in fw["open_any"]
    assert "ipv6 protocol 253: inet filter input: meta l4proto != tcp meta l4proto != udp accept" in fw["open_any"]
    # A protocol named only in a named set or a verdict map keyed by protocol is probed too.
    fw = ev(inet_input([[{"vmap": {"key": meta("l4proto"), "data": {"set": [["gre", ACCEPT], ["tcp", DROP]]}}}],
                        [m(meta("l4proto"), "@tunnels"), ACCEPT]]),
            sets=[("inet", "filter", {"name": "tunnels", "type": "inet_proto", "elem": [47, 50]})])
    assert [a.split(":")[0] for a in fw["open_any"]] == ["ipv4 esp", "ipv4 gre", "ipv6 esp", "ipv6 gre"]
    # The guest's own policy: ICMP only besides its TCP and UDP ports.
    assert guestscan.firewall(fixture("vmguard-web"))["open_any"] == []


def test_iptables_nft_targets_that_untrack_or_translate_count_too():
    """iptables-nft writes its DNAT, REDIRECT and NOTRACK targets as xt expressions: docker's published port
    (-j DNAT in the nat table's PREROUTING) was as invisible as before native dnat was followed."""
    pre = ("ip", "nat", "PREROUTING", "prerouting", -100, "accept",
           [[m(dport(), 8080), {"counter": None}, {"xt": {"type": "target", "name": "DNAT"}}]])
    raw = ("ip", "raw", "PREROUTING", "prerouting", -300, "accept",
           [[m(dport("udp"), 5353), {"xt": {"type": "target", "name": "CT"}}]])
    untracked = [m(CT_NEW, ["established", "related", "untracked"], op="in"), ACCEPT]
    fw = ev(pre, raw, ("ip", "filter", "INPUT", "input", 0, "drop", [untracked, [m(dport(), 22), ACCEPT]]))
    assert fw["open"] == tcp(22, 8080) + udp(5353)
