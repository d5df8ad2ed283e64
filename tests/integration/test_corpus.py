"""libvirt's own test-suite domains (about a thousand real definitions) audited in one run.

1. Every XML that libvirt's test driver accepts is loaded into one node file (unique names and
   UUIDs) and audited by a real `ansible-playbook vmguard.hardening.audit` run against
   test:///node.xml: every domain gets a finding for every domain-layer rule, and none is an
   error (the parsed fields always exist, so an error would be a bug) except the documented
   "cannot tell" of CANNOT_TELL: an interface whose segment libvirt does not describe (ethernet,
   vdpa, vhostuser: ISO-02), a storage volume no pool resolves (ISO-06), a network the test node does
   not define (whether it gives a tap device, a VF or macvtap: ISO-03, ISO-08).
2. Every raw XML is parsed directly (what hypervisor_facts does with a live domain's XML): the
   test driver drops the qemu: namespace, so ISO-09 is checked here on the raw documents.

How many load, and why the rest do not, is written to tests/output/corpus-load.json.
"""

import collections
import os
import sys

import pytest

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
sys.path.insert(0, os.path.join(ROOT, ".cache", "collections"))

libvirt = pytest.importorskip("libvirt", reason="needs libvirt-python (make setup installs it)")

from ansible_collections.vmguard.hardening.plugins.module_utils.audit import engine, policy  # noqa: E402
from ansible_collections.vmguard.hardening.plugins.module_utils.evidence import domxml  # noqa: E402
from ansible_collections.vmguard.hardening.plugins.module_utils.audit.rules import RULES  # noqa: E402

DOMAIN_RULES = sorted(rid for rid, r in RULES.items() if "domain" in r.checks)
# The only errors a parsed domain may give: what libvirt's evidence cannot tell (rule -> message parts).
# A corpus domain's network the test node does not define: whether it hands out a tap device, a VF or a macvtap device
# cannot be told (ISO-03, ISO-08).
NO_NETWORK = "the hypervisor's networks were not collected or do not define it"
CANNOT_TELL = {"ISO-02": ("is set up outside libvirt's evidence",), "ISO-06": ("cannot resolve volume",),
               "ISO-03": (NO_NETWORK, "cannot tell whether anti-spoofing filter"), "ISO-08": (NO_NETWORK,)}
# Parsed without a hypervisor (test_raw_documents_parse_and_evaluate): no storage pool resolves a volume, no
# network map says which bridge a network uses.
RAW_CANNOT_TELL = dict(CANNOT_TELL, **{"ISO-02": CANNOT_TELL["ISO-02"] + ("networks were not collected",),
                                       "ISO-06": ("path of volume disk",)})


def unexplained_errors(findings, allowed=None):
    allowed = allowed or CANNOT_TELL
    return [f for f in findings if f["status"] == "error" and not any(m in f["message"] for m in allowed.get(f["rule"], ()))]


@pytest.fixture(scope="module")
def loaded(corpus_node):
    """The corpus node of conftest.py (built once per session, shared with the browser tests)."""
    return corpus_node


def test_most_of_the_corpus_loads(loaded):
    paths, node, accepted, rejected = loaded
    assert len(paths) > 1000
    assert len(accepted) > 950
    # Each reject carries libvirt's own reason.
    assert all(r for r in rejected.values())


def test_one_audit_run_over_the_whole_corpus(loaded, corpus_audit):
    paths, node, accepted, rejected = loaded
    out, rep, rc, log = corpus_audit
    assert rc == 0, log
    per_domain = collections.defaultdict(set)
    for f in rep["findings"]:
        if f["subject"]["kind"] == "domain":
            per_domain[f["subject"]["id"]].add(f["rule"])
    assert not unexplained_errors(f for f in rep["findings"] if f["subject"]["kind"] == "domain")
    told = [f for f in rep["findings"] if f["rule"] == "ISO-02" and f["status"] == "error"]
    assert told and all(t in f["message"] for f in told for t in ("interface", "outside libvirt"))
    assert len(per_domain) == len(accepted)
    for dom, rules in per_domain.items():
        assert sorted(rules) == DOMAIN_RULES, dom
    # Host rules cannot be evaluated for the test driver (it describes no real host): errors, never passes.
    host = [f for f in rep["findings"] if f["subject"]["kind"] == "hypervisor"]
    assert host and all(f["status"] == "error" and "not collected" in f["message"] for f in host)
    # The corpus is full of things the policy forbids; the audit must see them.
    fails = collections.Counter(f["rule"] for f in rep["findings"] if f["status"] == "fail")
    for rid in ("RB-01", "DIV-09", "ISO-08", "LEAK-02", "LEAK-03", "ISO-07", "ISO-11", "RB-12"):
        assert fails[rid] > 0, rid


def test_raw_documents_parse_and_evaluate(loaded):
    paths = loaded[0]
    domains, malformed = [], []
    for i, p in enumerate(paths):
        with open(p, encoding="utf-8", errors="replace") as f:
            text = f.read()
        try:
            d = domxml.parse_domain(text)
        except domxml.DomainXMLError as e:
            malformed.append((os.path.basename(p), str(e)))
            continue
        d.update(name="raw-%04d" % i, uuid="raw-%04d" % i, state="shutoff", persistent=True,
                 snapshots=[], ledger=None, error=None)
        domains.append(d)
    assert len(malformed) < 5, malformed
    # qemu.conf at its defaults (the rules reading it for a domain judge those), no networks map.
    ev = {"hypervisors": {"raw": {"error": None, "uri": "test:///raw", "host": {"qemu_conf": {}}, "domains": domains}}, "guests": {}}
    findings = [f for f in engine.evaluate(policy.load_policy({}), ev, only=set(DOMAIN_RULES))
                if f["subject"]["kind"] == "domain"]
    assert len(findings) == len(domains) * len(DOMAIN_RULES)
    assert not unexplained_errors(findings, RAW_CANNOT_TELL), unexplained_errors(findings, RAW_CANNOT_TELL)[:3]
    iso09 = [f for f in findings if f["rule"] == "ISO-09" and f["status"] == "fail"]
    with_ns = [d for d in domains if d["qemu_commandline"] or d["qemu_env"] or d["qemu_override"] or d["qemu_capabilities"]]
    assert with_ns and len(iso09) == len(with_ns)
