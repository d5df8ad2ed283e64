"""remediation/firewall.py (module guest_firewall): the rendered policy, its parameter errors, the revert text
and the "nothing to do" decision. The rendering is loaded by the real kernel in
tests/integration/test_guest_firewall.py; here: what it says."""

import json
import os

import pytest

from ansible_collections.vmguard.hardening.plugins.module_utils.evidence import nftables
from ansible_collections.vmguard.hardening.plugins.module_utils.remediation import firewall

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", "..", ".."))


def rules(text):
    return [line.strip() for line in text.splitlines() if line.startswith("\t\t")]


def test_render_web_guest():
    text = firewall.render([443, 80, 443], [22], [68, 546])
    assert "table inet vmguard\ndelete table inet vmguard\ntable inet vmguard {\n" in text  # one transaction replaces it
    assert rules(text) == [
        "type filter hook input priority filter; policy drop;",
        'iif "lo" accept',
        "ct state established,related accept",
        "ct state invalid drop",
        "icmp type { destination-unreachable, time-exceeded, parameter-problem, echo-request } accept",
        "icmpv6 type { destination-unreachable, packet-too-big, time-exceeded, parameter-problem, echo-request, "
        "mld-listener-query, nd-router-solicit, nd-router-advert, nd-neighbor-solicit, nd-neighbor-advert } accept",
        'tcp dport { 22 } accept comment "management"',
        'tcp dport { 80, 443 } accept comment "service"',
        'udp dport { 80, 443 } accept comment "service"',
        'udp dport { 68, 546 } accept comment "client replies"']
    assert "table ip " not in text and "flush ruleset" not in text  # no other table is touched


def test_render_without_service_or_clients_keeps_management_only():
    assert [r for r in rules(firewall.render([], [22, 2222], [])) if "dport" in r] == ['tcp dport { 22, 2222 } accept comment "management"']


@pytest.mark.parametrize("args, message", [
    (([80, 70000], [22], []), "service_ports[1]: 70000 is not a port number (1-65535)"),
    (([80], [0], []), "management_ports[0]: 0 is not a port number (1-65535)"),
    (([80], [22], ["dhcp"]), "client_ports[0]: expected a port number 1-65535, got str 'dhcp'"),
    (([True], [22], []), "service_ports[0]: expected a port number 1-65535, got bool True"),
    (([80], [], []), "management_ports: empty; the ruleset would cut off every management connection"),
    (("80", [22], []), "service_ports: expected a list of ports, got str"),
])
def test_bad_parameters_name_the_option_and_element(args, message):
    with pytest.raises(firewall.FirewallError) as e:
        firewall.render(*args)
    assert str(e.value).startswith(message)


def test_revert_text_restores_or_removes_the_table():
    listing = "table inet vmguard {\n\tchain input {\n\t}\n}\n"
    assert firewall.revert_text(listing).endswith("table inet vmguard\ndelete table inet vmguard\n" + listing)
    assert firewall.revert_text(None).endswith("table inet vmguard\ndelete table inet vmguard\n")
    assert firewall.revert_text("  \n").endswith("delete table inet vmguard\n")


def fixture(name):
    with open(os.path.join(ROOT, "tests", "fixtures", "nft", name + ".json")) as f:
        return json.load(f)


def test_table_digest_covers_only_table_inet_vmguard():
    web = fixture("vmguard-web")  # table inet vmguard
    d = firewall.table_digest(web, nftables.normalise)
    assert d and len(d) == 64
    # Another table beside it does not change the table's digest; handles and counters do not either.
    other = fixture("debian-default")["nftables"]
    both = {"nftables": web["nftables"] + [i for i in other if "metainfo" not in i]}
    assert firewall.table_digest(both, nftables.normalise) == d
    assert firewall.table_digest(fixture("debian-default"), nftables.normalise) is None
    changed = json.loads(json.dumps(web).replace('"policy": "drop"', '"policy": "accept"'))
    assert firewall.table_digest(changed, nftables.normalise) != d


def test_in_place_needs_the_record_the_live_table_and_the_file():
    text = firewall.render([443], [22], [])
    sha = firewall.sha256_text(text)
    rec = {"source_sha256": sha, "table_digest": "t1"}
    assert firewall.in_place(rec, sha, "t1", text, text) == (True, None)
    assert firewall.in_place(None, sha, "t1", text, text) == (False, "never applied by vmguard on this guest")
    assert firewall.in_place(dict(rec, source_sha256="x"), sha, "t1", text, text)[1] == "the policy's ruleset changed since the last apply"
    assert firewall.in_place(rec, sha, None, text, text)[1] == "table inet vmguard is not loaded"
    assert firewall.in_place(rec, sha, "t2", text, text)[1] == "the live table inet vmguard differs from the one applied"
    assert firewall.in_place(rec, sha, "t1", None, text)[1] == "the ruleset is not persisted"
    assert firewall.in_place(rec, sha, "t1", text + "#", text)[1] == "the persisted ruleset file differs from the policy's"
