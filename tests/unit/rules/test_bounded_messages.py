# -*- coding: utf-8 -*-
"""Convention: a finding's message stays readable however large the fleet. A list of other VMs, guests, processes or
images that grows with the fleet is named up to rules.NAMED_LIMIT in the message ("... and N more"); the evidence
carries every one of them (what a report's reader, the plan and a CI gate read)."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible_collections.vmguard.hardening.plugins.module_utils.audit import engine, policy
from ansible_collections.vmguard.hardening.plugins.module_utils.audit.rules import NAMED_LIMIT, named

from . import evidence as E

N = 3 * NAMED_LIMIT  # every list below is three times what a message names
LONGEST = 1200  # characters: a message naming ten subjects of this fleet, and the words around them


def _crowd():
    """N domains, each of its own service, on one network with one disk, one UUID, one MAC and one shared memory backing
    file; N guests (one per domain) cloned from one image; N QEMU processes libvirt does not know, N images no
    domain references and N domains in a user's session."""
    domains = []
    for i in range(N):
        d = E.domain("d%02d" % i, "svc%02d" % i, uuid="00000000-0000-4000-8000-000000000001", mac="52:54:00:00:00:01",
                     replace={"/var/lib/libvirt/images/d%02d.qcow2" % i: "/srv/shared.img",
                              "<source network='svc-svc%02d'/>" % i: "<source network='lan'/>"},
                     extra="<memory model='nvdimm' access='shared'><source><path>/srv/pmem.img</path></source>"
                           "<target><size unit='MiB'>16</size></target></memory>")
        domains.append(d)
    host = E.host_for(domains,
                      qemu_processes=[E.qemu_process(5000 + i, "ghost%02d" % i) for i in range(N)],
                      images=[{"path": "/var/lib/libvirt/images/orphan%02d.qcow2" % i, "mode": 0o600, "uid": 64055,
                               "gid": 64055, "referenced": False} for i in range(N)],
                      session_domains={"domains": [{"uri": "qemu:///session", "user": "u%02d" % i, "name": "s%02d" % i,
                                                    "uuid": None, "path": "/home/u%02d/.config/libvirt/qemu/s.xml" % i}
                                                   for i in range(N)], "errors": [], "users": N})
    guests = dict(("g%02d" % i, E.guest("g%02d" % i, "svc%02d" % i, domain_name="d%02d" % i, facts=E.guest_facts(1)))
                  for i in range(N))
    return E.fleet(domains, guests=guests, host_ev=host)


def test_named_lists_ten_then_how_many_more():
    assert named(["a", "b"]) == "a, b"
    items = ["x%02d" % i for i in range(N)]
    assert named(items) == ", ".join(items[:NAMED_LIMIT]) + " and %d more" % (N - NAMED_LIMIT)
    assert named(items[:NAMED_LIMIT]) == ", ".join(items[:NAMED_LIMIT])


def test_no_message_grows_with_the_fleet_and_the_evidence_keeps_every_name():
    findings = engine.evaluate(policy.load_policy({}), _crowd(), now=E.NOW)
    longest = max(findings, key=lambda f: len(f["message"]))
    assert len(longest["message"]) <= LONGEST, (longest["rule"], longest["subject"], longest["message"][:300])
    cut = dict(((f["rule"], f["subject"]["id"]), f) for f in findings if " more" in f["message"])
    # The lists that grow with the fleet, each cut in its message: the other guests and domains of the duplicate
    # identities, the domains of other services on the network, the disk and the memory file, the unknown processes,
    # the unreferenced images and the session domains.
    rules = set(r for r, s in cut)
    assert {"DIV-01", "DIV-02", "DIV-03", "DIV-04", "DIV-05", "ISO-02", "ISO-06", "ISO-11", "VIS-01", "VIS-03"} <= rules, rules
    full = N - 1  # every other one
    assert len(cut[("DIV-01", "g00")]["evidence"]["shared_with"]) == full
    assert len(cut[("DIV-03", "g00")]["evidence"]["shared_with"]) == full
    assert len(cut[("DIV-04", "g00")]["evidence"]["shared_with"]) == full
    assert all(len(v) == full for v in cut[("DIV-02", "g00")]["evidence"]["shared"].values())
    assert len(cut[("DIV-05", "hv1/d00")]["evidence"]["uuid"]) == full
    assert [len(v) for v in cut[("ISO-02", "hv1/d00")]["evidence"]["shared"].values()] == [full]
    assert [len(v) for v in cut[("ISO-06", "hv1/d00")]["evidence"]["shared"].values()] == [full]
    assert [len(v) for v in cut[("ISO-11", "hv1/d00")]["evidence"]["shared_memory_with"].values()] == [full]
