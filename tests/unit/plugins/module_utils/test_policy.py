"""Policy document: defaults, deep merge, and validation messages that name the key path."""

import pytest

from ansible_collections.vmguard.hardening.plugins.module_utils.audit.policy import PolicyError, deep_merge, load_policy
from ansible_collections.vmguard.hardening.plugins.module_utils.audit.rules import RULES


def errors(doc):
    with pytest.raises(PolicyError) as e:
        load_policy(doc)
    return e.value.errors


def test_defaults_cover_every_rule():
    p = load_policy({})
    assert set(p["rules"]) == set(RULES)
    assert p["rules"]["DIV-02"] == {"enabled": True, "severity": "critical", "mode": "enforce"}
    assert p["params"]["rollback"]["max_snapshot_age_hours"] == 72


REMEDIATED = ("DIV-01", "DIV-02", "DIV-04", "DIV-09", "DIV-10", "RB-01", "RB-05", "RB-06", "RB-07", "RB-08", "RB-09", "RB-10", "RB-11", "RB-12",
              "ISO-01", "ISO-02", "ISO-03", "ISO-04", "ISO-05", "ISO-10", "LEAK-01", "LEAK-02", "LEAK-03", "LEAK-04", "LEAK-06", "LEAK-07", "VIS-05")


def test_default_modes_come_from_the_registry():
    """enforce exactly where a remediation exists and is not opt-in; the global mode is enforce."""
    p = load_policy({})
    assert p["mode"] == "enforce"
    assert sorted(r for r, cfg in p["rules"].items() if cfg["mode"] == "enforce") == sorted(REMEDIATED)
    assert p["rules"]["DIV-03"]["mode"] == "audit"  # opt-in remediation (expire the duplicated password)
    assert RULES["DIV-03"].remediated_by["opt_in"] is True
    assert p["rules"]["VIS-01"] == {"enabled": True, "severity": "high", "mode": "audit"}
    for rid, r in RULES.items():
        assert p["rules"][rid]["mode"] == r.default_mode, rid


def test_global_mode_audit_is_kept_and_rule_modes_unchanged():
    p = load_policy({"mode": "audit"})
    assert p["mode"] == "audit"
    assert p["rules"] == load_policy({})["rules"]


def test_opt_in_and_remediated_rules_may_be_set_either_way():
    p = load_policy({"rules": {"DIV-03": {"mode": "enforce"}, "DIV-02": {"mode": "audit"}, "VIS-01": {"mode": "audit"}}})
    assert p["rules"]["DIV-03"]["mode"] == "enforce"
    assert p["rules"]["DIV-02"]["mode"] == "audit"
    assert p["rules"]["VIS-01"]["mode"] == "audit"


@pytest.mark.parametrize("rid", [r for r in RULES if RULES[r].remediated_by is None])
def test_enforce_without_remediation_is_rejected(rid):
    assert errors({"rules": {rid: {"mode": "enforce"}}}) == [
        "rules.%s.mode: enforce is not possible: %s has no remediation (audit only)" % (rid, rid)]


def test_enforce_without_remediation_is_reported_with_every_other_error():
    errs = errors({"mode": "fix", "rules": {"ISO-09": {"mode": "enforce", "severity": "urgent"}, "DIV-01": {"mode": "enforce"},
                                            "LEAK-05": {"enabled": False, "mode": "enforce"}},
                   "params": {"rollback": {"max_snapshots": "x"}}})
    assert [e.split(": ", 1)[0] for e in errs] == [
        "mode", "rules.ISO-09.severity", "rules.ISO-09.mode", "rules.LEAK-05.mode", "params.rollback.max_snapshots"], errs
    assert errs[2] == "rules.ISO-09.mode: enforce is not possible: ISO-09 has no remediation (audit only)"


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
    ({"rules": {"DIV-01": {"severity": "extreme"}}}, "rules.DIV-01.severity: expected one of low, medium, high, critical, got 'extreme'"),
    ({"mode": "yolo"}, "mode: expected one of audit, enforce, got 'yolo'"),
    ({"waivers": [{"rule": "ISO-09"}]}, "waivers[0].reason: missing"),
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


def test_watcher_heartbeat_param():
    assert load_policy({})["params"]["rollback"]["watcher_heartbeat_seconds"] == 30
    assert load_policy({"params": {"rollback": {"watcher_heartbeat_seconds": 5}}})["params"]["rollback"][
        "watcher_heartbeat_seconds"] == 5
    assert errors({"params": {"rollback": {"watcher_heartbeat_seconds": 0}}}) == [
        "params.rollback.watcher_heartbeat_seconds: must be at least 1, got 0"]


def test_standard_boolean_strings_and_numeric_strings_are_converted():
    p = load_policy({"rules": {"LEAK-08": {"enabled": "no"}, "DIV-01": {"enabled": "Yes"}},
                     "params": {"isolation": {"allow_vsock": "on", "management_ports": ["2222"]},
                                "rollback": {"max_snapshots": "4"}, "diversity": {"max_fleet_share": 1}}})
    assert p["rules"]["LEAK-08"]["enabled"] is False and p["rules"]["DIV-01"]["enabled"] is True
    assert p["params"]["isolation"]["allow_vsock"] is True
    assert p["params"]["isolation"]["management_ports"] == [2222]
    assert p["params"]["rollback"]["max_snapshots"] == 4
    assert p["params"]["diversity"]["max_fleet_share"] == 1.0


def test_yaml_dates_and_services_merge():
    import datetime
    p = load_policy({"waivers": [{"rule": "RB-01", "subject": "hv1/*", "reason": "r", "expires": datetime.date(2030, 1, 2)}],
                     "params": {"isolation": {"services": {"web": {}, "ldap": {"ports": [389]}}}}})
    assert p["waivers"][0]["expires"] == "2030-01-02"
    assert p["params"]["isolation"]["services"]["web"] == {"ports": [80, 443]}
    assert p["params"]["isolation"]["services"]["ldap"] == {"ports": [389]}
    assert p["params"]["isolation"]["services"]["mail"] == {"ports": [25, 587, 993]}


def test_unknown_ids_are_reported_with_every_other_error():
    errs = errors({"rules": {"DIV-1": {}, "ISO-01": {"enabled": "maybe"}}, "params": {"planets": {}, "rollback": {"max_snapshots": float("inf")}},
                   "waivers": [{"rule": "NOPE-1", "subject": None, "expires": "2099-02-30"}], "colour": "red"})
    prefixes = [e.split(":")[0] for e in errs]
    assert prefixes == ["rules.DIV-1", "rules.ISO-01.enabled", "params.planets", "params.rollback.max_snapshots",
                        "waivers[0].rule", "waivers[0].subject", "waivers[0].reason", "waivers[0].expires", "colour"], errs
    assert "did you mean DIV-01?" in errs[0]
    assert errs[3] == "params.rollback.max_snapshots: expected a finite int, got .inf"


def test_ledger_record_params_defaults_and_overrides():
    rb = load_policy({})["params"]["rollback"]
    assert rb["floor_packages"] == ["openssh-server", "openssl", "sudo", "linux-image-amd64"]
    assert rb["disabled_accounts"] == [] and rb["masked_services"] == []
    rb = load_policy({"params": {"rollback": {"floor_packages": ["openssl"], "disabled_accounts": ["games", "lp"],
                                              "masked_services": ["telnet.socket"]}}})["params"]["rollback"]
    assert rb["floor_packages"] == ["openssl"] and rb["disabled_accounts"] == ["games", "lp"]
    assert rb["masked_services"] == ["telnet.socket"] and rb["max_snapshots"] == 3


@pytest.mark.parametrize("key, value, expected", [
    ("floor_packages", "openssl", "params.rollback.floor_packages: expected a list of package names, got str 'openssl'"),
    ("disabled_accounts", ["games", 5], "params.rollback.disabled_accounts[1]: expected str, got int 5"),
    ("masked_services", ["telnet.socket", " cups.service"],
     "params.rollback.masked_services[1]: expected a name without whitespace, got ' cups.service'"),
    ("floor_packages", [""], "params.rollback.floor_packages[0]: expected a name without whitespace, got ''"),
])
def test_ledger_record_params_are_validated(key, value, expected):
    with pytest.raises(PolicyError) as e:
        load_policy({"params": {"rollback": {key: value}}})
    assert e.value.errors == [expected]


@pytest.mark.parametrize("text", ["2026-11-18T23:30:00+14:00", "2026-11-18T09:30:00Z", "2026-11-18 23:30:00"])
def test_a_waiver_expiry_with_a_time_is_rejected_not_cut_to_its_local_date(text):
    """YAML reads an unquoted timestamp as a datetime; its own date was kept, so a waiver written to end at
    2026-11-18T23:30+14:00 (09:30 UTC) was honoured until the end of the 18th, UTC."""
    import yaml
    doc = yaml.safe_load("waivers: [{rule: RB-01, subject: 'hv1/*', reason: legacy, expires: %s}]" % text)
    with pytest.raises(PolicyError) as e:
        load_policy(doc)
    (err,) = e.value.errors
    assert err.startswith("waivers[0].expires: expected a date YYYY-MM-DD, got the date and time 2026-11-18")
