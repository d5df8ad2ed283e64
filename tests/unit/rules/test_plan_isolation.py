"""The planner's guest isolation steps: guest_firewall (ISO-10, RB-10) and service_lockdown (ISO-01), computed
from params.isolation and the guest's vmguard_service, on the real findings of engine.evaluate."""

from ansible_collections.vmguard.hardening.plugins.module_utils.audit import debversion
from ansible_collections.vmguard.hardening.plugins.module_utils.audit.rules import RULES
from ansible_collections.vmguard.hardening.plugins.module_utils.remediation import firewall, ledger

from . import evidence as E
from .test_plan import build, extra_listeners, not_enforced, open_firewall, open_firewall_facts, scenario

FIREWALL_WEB = {"rules": ["ISO-10", "RB-10"], "subjects": ["web1"], "service_ports": [80, 443], "management_ports": [22],
                "client_ports": [68, 546]}


def failing(findings, subject="web1"):
    return sorted(f["rule"] for f in findings if f["subject"]["id"] == subject and f["status"] == "fail")


def test_an_open_rolled_back_firewall_gets_one_guest_firewall_step_from_the_policy():
    p, findings = scenario("open-firewall")
    assert failing(findings) == ["ISO-10", "RB-10"]
    assert p["hosts"]["web1"]["guest_firewall"] == FIREWALL_WEB
    assert p["steps"] == 1 and p["not_enforced"] == []
    step = p["hosts"]["web1"]["ledger"]
    # Another step runs, so the epoch moves; the digest is the module's (ledger.yml), not the open one's.
    assert step["epoch"] is True and step["record"]["firewall_digest"] is None
    # The planned parameters render a ruleset (what the module applies; loaded by the kernel in the integration test).
    fw = p["hosts"]["web1"]["guest_firewall"]
    assert 'tcp dport { 80, 443 } accept' in firewall.render(fw["service_ports"], fw["management_ports"], fw["client_ports"])


def test_rb10_alone_reapplies_the_ruleset():
    """ISO-10 passes (a default-deny ruleset) but it is not the one vmguard applied: re-apply it."""
    facts = E.guest_facts(1)
    facts["firewall"] = dict(facts["firewall"], digest="1" * 64)
    p, findings = build({}, E.fleet([E.domain("web1", ledger=E.ledger())], {"web1": E.guest("web1", facts=facts)}))
    assert failing(findings) == ["RB-10"]
    assert p["hosts"]["web1"]["guest_firewall"] == dict(FIREWALL_WEB, rules=["RB-10"])


def test_ports_come_from_the_guests_service_and_the_policy():
    doc = {"params": {"isolation": {"services": {"web": {"ports": [8443, 443]}}, "management_ports": [2222],
                                    "client_ports": [68]}}}
    ev = open_firewall()
    ev["guests"]["web1"]["facts"]["listening"][0]["port"] = 2222
    p, _findings = build(doc, ev)
    assert p["hosts"]["web1"]["guest_firewall"] == dict(FIREWALL_WEB, service_ports=[443, 8443], management_ports=[2222],
                                                        client_ports=[68])
    mail = open_firewall()
    mail["guests"]["web1"]["vars"]["service"] = "mail"
    p, _findings = build({}, mail)
    assert p["hosts"]["web1"]["guest_firewall"]["service_ports"] == [25, 587, 993]


def test_rb10_on_a_guest_without_a_declared_service_cannot_be_reapplied():
    ev = open_firewall()
    ev["guests"]["web1"]["vars"]["service"] = None
    p, findings = build({}, ev)
    assert failing(findings) == ["RB-10"]  # ISO-01 and ISO-10 are errors without a service
    assert "guest_firewall" not in p["hosts"]["web1"]
    assert not_enforced(p, "RB-10") == [("web1", "cannot be enforced: the guest declares no vmguard_service (no ruleset to apply)")]
    assert not_enforced(p, "ISO-10") == [("web1", "error: not evaluated")]
    ev["guests"]["web1"]["vars"]["service"] = "ftp"
    p, _findings = build({}, ev)
    assert not_enforced(p, "RB-10") == [("web1", "cannot be enforced: service 'ftp' is not declared in params.isolation.services "
                                                 "(no ruleset to apply)")]


def test_extra_listeners_get_one_service_lockdown_step():
    p, findings = scenario("extra-listeners")
    assert failing(findings) == ["ISO-01"]
    assert p["hosts"]["web1"]["service_lockdown"] == {
        "rules": ["ISO-01"], "subjects": ["web1"], "allowed_ports": [22, 80, 443], "client_ports": [68, 546],
        "management_ports": [22], "extra": ["tcp/111 rpcbind", "tcp/8080 python3", "udp/111 rpcbind"]}
    assert p["steps"] == 1 and p["hosts"]["web1"]["ledger"]["epoch"] is True


def test_default_mode_is_enforce_and_audit_mode_or_a_waiver_plans_nothing():
    assert [RULES[r].default_mode for r in ("ISO-01", "ISO-10", "RB-10")] == ["enforce"] * 3
    p, _findings = build({"rules": {"ISO-01": {"mode": "audit"}}}, extra_listeners())
    assert "service_lockdown" not in p["hosts"]["web1"] and not_enforced(p, "ISO-01") == [("web1", "mode audit")]
    waivers = [{"rule": r, "subject": "web1", "reason": "migration window", "expires": "2099-01-01"} for r in ("ISO-10", "RB-10")]
    p, _findings = build({"waivers": waivers}, open_firewall())
    assert "guest_firewall" not in p["hosts"]["web1"] and not_enforced(p, "ISO-10") == []
    p, _findings = build({"mode": "audit"}, open_firewall())
    assert p["hosts"] == {} and sorted(e["rule"] for e in p["not_enforced"]) == ["ISO-10", "RB-10"]


def test_after_the_firewall_step_the_ledger_holds_the_modules_digest_and_rb10_passes():
    """harden: the guest role records the digest guest_firewall returned (ledger.yml); the next audit's evidence
    carries the same digest (the module computes it as guest_facts does), so RB-10 and ISO-10 pass and the plan is
    empty but for a ledger step that changes nothing."""
    p, _findings = scenario("open-firewall")
    applied = "a" * 64  # guest_firewall's returned digest
    record = dict(p["hosts"]["web1"]["ledger"]["record"], firewall_digest=applied)
    held = dict(E.ledger())
    held, _changed = ledger.apply(held, E.NOW, epoch="prepare", update=record, compare=debversion.compare)
    held, _changed = ledger.apply(held, E.NOW, epoch="commit", hardened=True)
    facts = open_firewall_facts()
    facts.update(epoch=held["epoch"], firewall=E.guest_facts(1)["firewall"])
    facts["firewall"]["digest"] = applied
    p2, findings = build({}, E.fleet([E.domain("web1", ledger=held)], {"web1": E.guest("web1", facts=facts)}))
    assert failing(findings) == []
    assert [f["status"] for f in findings if f["rule"] in ("ISO-10", "RB-10")] == ["pass", "pass"]
    assert p2["hosts"]["web1"] == {"ledger": dict(p2["hosts"]["web1"]["ledger"], epoch=False)}
