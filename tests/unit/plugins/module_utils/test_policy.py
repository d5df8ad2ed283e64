"""Policy document: defaults, deep merge, and validation messages that name the key path."""

import pytest

from ansible_collections.vmguard.hardening.plugins.module_utils.policy import PolicyError, deep_merge, load_policy
from ansible_collections.vmguard.hardening.plugins.module_utils.rules import RULES


def errors(doc):
    with pytest.raises(PolicyError) as e:
        load_policy(doc)
    return e.value.errors


def test_defaults_cover_every_rule():
    p = load_policy({})
    assert set(p["rules"]) == set(RULES)
    assert p["rules"]["DIV-02"] == {"enabled": True, "severity": "critical", "mode": "enforce"}
    assert p["params"]["rollback"]["max_snapshot_age_hours"] == 72


def test_deep_merge_keeps_siblings_and_replaces_lists():
    p = load_policy({"params": {"rollback": {"max_snapshots": 5}, "isolation": {"management_ports": [2222]}}})
    assert p["params"]["rollback"]["max_snapshots"] == 5
    assert p["params"]["rollback"]["max_snapshot_age_hours"] == 72
    assert p["params"]["isolation"]["management_ports"] == [2222]
    assert deep_merge({"a": {"b": 1, "c": 2}}, {"a": {"c": 3}}) == {"a": {"b": 1, "c": 3}}


@pytest.mark.parametrize("doc,expected", [
    ({"rules": {"DIV-99": {}}}, "rules.DIV-99: unknown rule id"),
    ({"params": {"rollback": {"max_snapshots": "many"}}}, "params.rollback.max_snapshots: expected int, got str"),
    ({"params": {"rollback": {"max_snapshot_age_hours": -1}}}, "params.rollback.max_snapshot_age_hours: must not be negative, got -1"),
    ({"params": {"rollback": {"bogus": 1}}}, "params.rollback.bogus: unknown key"),
    ({"params": {"planets": {}}}, "params.planets: unknown area"),
    ({"rules": {"DIV-01": {"severity": "extreme"}}}, "rules.DIV-01.severity: expected one of low, medium, high, critical, got extreme"),
    ({"mode": "yolo"}, "mode must be one of: audit, enforce"),
    ({"waivers": [{"rule": "ISO-09"}]}, "waivers: missing required key(s): expires, reason, subject"),
    ({"waivers": [{"rule": "XYZ-01", "subject": "*", "reason": "r", "expires": "2030-01-01"}]}, "waivers[0].rule: unknown rule id 'XYZ-01'"),
    ({"waivers": [{"rule": "ISO-09", "subject": "*", "reason": "r", "expires": "soon"}]}, "waivers[0].expires: expected a date YYYY-MM-DD, got 'soon'"),
    ({"waivers": [{"rule": "ISO-09", "subject": "*", "reason": " ", "expires": "2030-01-01"}]}, "waivers[0].reason: must explain"),
    ({"params": {"diversity": {"max_fleet_share": 2.0}}}, "params.diversity.max_fleet_share: expected a fraction"),
    ({"params": {"isolation": {"services": {"web": {"ports": ["http"]}}}}}, "params.isolation.services.web.ports"),
])
def test_errors_name_the_key_path(doc, expected):
    errs = errors(doc)
    assert any(expected in e for e in errs), errs


def test_all_errors_reported_at_once():
    errs = errors({"params": {"rollback": {"max_snapshots": "x", "max_snapshot_age_hours": -2}},
                   "waivers": [{"rule": "ISO-09", "subject": "x", "reason": "r", "expires": "never"}]})
    assert len(errs) == 3, errs


def test_not_a_dict():
    assert "expected a dict" in errors(["DIV-01"])[0]
