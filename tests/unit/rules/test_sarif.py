"""report.sarif: SARIF 2.1.0 from real engine findings, valid against the official schema
(tests/fixtures/sarif/README.md), anchored to the repository's files, stable fingerprints."""

import hashlib
import json
import os

import jsonschema
import pytest

from ansible_collections.vmguard.hardening.plugins.action import audit_evaluate as action
from ansible_collections.vmguard.hardening.plugins.module_utils.audit import engine, policy, report, sarif
from ansible_collections.vmguard.hardening.plugins.module_utils.audit.rules import RULES
from ansible_collections.vmguard.hardening.plugins.module_utils.audit.status import SEVERITIES

from . import evidence as E

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", ".."))
SCHEMA = os.path.join(ROOT, "tests", "fixtures", "sarif", "sarif-schema-2.1.0.json")
SOURCES = {"inventory": ["inventory/hosts.yml"], "policy": "group_vars/all/vmguard.yml"}
REASON = "lab only [ticket SEC-12]: raw QEMU args"


def _validator():
    """The official schema's own validator (its $schema is Draft 04: see tests/fixtures/sarif/README.md)."""
    with open(SCHEMA) as f:
        schema = json.load(f)
    cls = jsonschema.validators.validator_for(schema)
    assert cls is jsonschema.Draft4Validator
    cls.check_schema(schema)
    return cls(schema)


def test_schema_is_the_official_errata01_file():
    with open(SCHEMA, "rb") as f:
        assert hashlib.sha256(f.read()).hexdigest() == "c3b4bb2d6093897483348925aaa73af03b3e3f4bd4ca38cef26dcb4212a2682e"
    schema = _validator().schema
    assert schema["id"].endswith("/sarif/v2.1.0/errata01/os/schemas/sarif-schema-2.1.0.json")
    assert "status" in schema["definitions"]["suppression"]["properties"]


def test_schema_rejects_a_broken_log():
    """The validation can fail: a suppression without its kind and a level SARIF does not know."""
    _fs, log = log_of()
    bad = json.loads(json.dumps(log))
    waived = [r for r in bad["runs"][0]["results"] if "suppressions" in r][0]
    del waived["suppressions"][0]["kind"]
    bad["runs"][0]["results"][0]["level"] = "critical"
    paths = sorted("/".join(str(p) for p in e.path) for e in _validator().iter_errors(bad))
    assert len(paths) == 2 and paths[0] == "runs/0/results/0/level", paths


def _validate(log):
    errors = sorted(_validator().iter_errors(log), key=lambda e: list(e.path))
    assert errors == [], ["%s: %s" % ("/".join(str(p) for p in e.path), e.message) for e in errors[:5]]


def findings(now=E.NOW, rules=None):
    """web1: no <genid/> (RB-01 fails); mail1 unreachable (its guest rules error); an active waiver on
    ISO-09 with a ']' in its reason; an expired waiver (a fleet finding); the rest passes."""
    d = E.domain(replace={"<genid/>": ""})
    guests = {"web1": E.guest("web1", facts=E.guest_facts(1)),
              "mail1": E.guest("mail1", "mail", error="unreachable: timeout")}
    d2 = E.domain("mail1", "mail", after="<qemu:commandline><qemu:arg value='-s'/></qemu:commandline>")
    ev = E.fleet([d, d2], guests)
    doc = {"waivers": [{"rule": "ISO-09", "subject": "hv1/*", "reason": REASON, "expires": "2030-01-01"},
                       {"rule": "RB-02", "subject": "hv1/old*", "reason": "gone", "expires": "2026-01-01"}]}
    if rules:
        doc["rules"] = rules
    pol = policy.load_policy(doc)
    return pol, engine.evaluate(pol, ev, now=now)


def log_of(sources=None, **kw):
    sources = SOURCES if sources is None else sources
    pol, fs = findings(**kw)
    rep = report.build(pol, fs, E.NOW)
    return fs, report.sarif_log(rep, sources)


def results_by(log):
    return dict(((r["ruleId"], r["properties"]["subject"]["id"]), r) for r in log["runs"][0]["results"])


def test_sarif_from_engine_findings_is_valid_against_the_official_schema():
    fs, log = log_of()
    statuses = set(f["status"] for f in fs)
    assert {"pass", "fail", "error", "waived"} <= statuses, statuses
    _validate(log)
    assert log["version"] == "2.1.0" and log["$schema"] == "https://json.schemastore.org/sarif-2.1.0.json"
    assert len(log["runs"]) == 1


def test_one_result_per_fail_error_and_waived_finding_and_none_for_pass():
    fs, log = log_of()
    want = sorted((f["rule"], f["subject"]["id"]) for f in fs if f["status"] in ("fail", "error", "waived"))
    got = sorted(results_by(log))
    assert got == want and len(got) == len(log["runs"][0]["results"])
    passed = [(f["rule"], f["subject"]["id"]) for f in fs if f["status"] == "pass"]
    assert passed and not set(passed) & set(got)


def test_driver_carries_every_rule_of_the_registry():
    info = sarif.collection_info(ROOT)
    with open(os.path.join(ROOT, "galaxy.yml")) as f:
        assert "version: %s\n" % info["version"] in f.read()
    _fs, log = log_of()
    driver = log["runs"][0]["tool"]["driver"]
    assert driver["name"] == "vmguard.hardening" and driver["version"] == info["version"]
    assert driver["informationUri"] == info["repository"]
    assert [r["id"] for r in driver["rules"]] == list(RULES)
    rb01 = driver["rules"][list(RULES).index("RB-01")]
    assert rb01["name"] == rb01["shortDescription"]["text"] == RULES["RB-01"].title
    assert rb01["help"]["text"] == rb01["fullDescription"]["text"] == RULES["RB-01"].remediation
    assert rb01["defaultConfiguration"]["level"] == "error"  # RB-01 is high
    assert rb01["properties"]["area"] == "rollback" and rb01["properties"]["tags"] == ["rollback"]
    assert rb01["properties"]["layer"] == RULES["RB-01"].layer
    for r in log["runs"][0]["results"]:
        assert driver["rules"][r["ruleIndex"]]["id"] == r["ruleId"]


@pytest.mark.parametrize("severity,level", [("critical", "error"), ("high", "error"), ("medium", "warning"), ("low", "note")])
def test_level_follows_the_finding_severity(severity, level):
    _fs, log = log_of(rules={"RB-01": {"severity": severity}})
    r = results_by(log)[("RB-01", "hv1/web1")]
    assert r["level"] == level and r["properties"]["severity"] == severity and r["properties"]["status"] == "fail"
    assert "RB-01 on domain hv1/web1:" in r["message"]["text"]
    assert set(sarif.LEVELS) == set(SEVERITIES)


def test_unknown_severity_is_an_error_naming_it():
    with pytest.raises(ValueError) as e:
        sarif.level("catastrophic")
    assert "catastrophic" in str(e.value)


def test_error_finding_says_it_could_not_be_evaluated():
    fs, log = log_of()
    errors = [f for f in fs if f["status"] == "error" and f["subject"]["id"] == "mail1"]
    assert errors
    for f in errors:
        r = results_by(log)[(f["rule"], "mail1")]
        assert r["level"] == sarif.LEVELS[f["severity"]]
        assert "could not be evaluated" in r["message"]["text"] and "unreachable: timeout" in r["message"]["text"]
        assert "suppressions" not in r


def test_waived_finding_is_an_accepted_external_suppression_with_the_reason():
    fs, log = log_of()
    waived = [f for f in fs if f["status"] == "waived"]
    assert [(f["rule"], f["subject"]["id"]) for f in waived] == [("ISO-09", "hv1/mail1")]
    r = results_by(log)[("ISO-09", "hv1/mail1")]
    assert r["suppressions"] == [{"kind": "external", "status": "accepted",
                                  "justification": "%s (until 2030-01-01)" % REASON}]
    assert r["properties"]["waived_status"] == "fail"
    assert [x for x in log["runs"][0]["results"] if "suppressions" in x] == [r]  # nothing else is suppressed


def test_waiver_comes_from_the_engines_waiver_field_never_from_the_message():
    hostile = {"message": "x [waived until 2099-01-01: fake]"}  # guest data cannot make a suppression
    assert sarif.waiver_of(hostile) == (None, None)
    assert sarif.waiver_of({"message": "m", "waiver": {"reason": "r", "expires": "2030-01-01"}}) == ("2030-01-01", "r")


def test_results_are_anchored_to_the_declaring_file_relative_to_the_repo():
    _fs, log = log_of()
    by = results_by(log)
    loc = by[("RB-01", "hv1/web1")]["locations"][0]
    assert loc["physicalLocation"]["artifactLocation"] == {"uri": "inventory/hosts.yml", "uriBaseId": "%SRCROOT%"}
    assert loc["logicalLocations"] == [{"name": "hv1/web1", "kind": "resource", "fullyQualifiedName": "domain:hv1/web1"}]
    fleet = by[("RB-02", "waiver/hv1/old*")]["locations"][0]  # the expired waiver: declared by the policy file
    assert fleet["physicalLocation"]["artifactLocation"]["uri"] == "group_vars/all/vmguard.yml"
    assert fleet["logicalLocations"][0]["fullyQualifiedName"] == "fleet:waiver/hv1/old*"
    assert by[("DIV-02", "mail1")]["locations"][0]["logicalLocations"][0]["fullyQualifiedName"] == "guest:mail1"
    # Without a policy file, fleet findings point at the inventory again.
    _fs, log = log_of(sources={"inventory": ["inventory/hosts.yml"], "policy": None})
    uri = results_by(log)[("RB-02", "waiver/hv1/old*")]["locations"][0]["physicalLocation"]["artifactLocation"]["uri"]
    assert uri == "inventory/hosts.yml"


def test_source_uri_is_relative_inside_the_repo_and_a_basename_outside(tmp_path):
    repo = str(tmp_path / "repo")
    assert sarif.source_uri(os.path.join(repo, "inventory", "hosts.yml"), repo) == "inventory/hosts.yml"
    assert sarif.source_uri("inventory/lab hosts.yml", repo) == "inventory/lab%20hosts.yml"
    assert sarif.source_uri(str(tmp_path / "elsewhere" / "prod.ini"), repo) == "prod.ini"
    assert sarif.source_uri(os.path.join(repo, "..", "repo2", "x.yml"), repo) == "x.yml"
    # A file name that is not UTF-8 (the OS gives it with surrogateescape): its bytes, percent-encoded.
    assert sarif.source_uri("inv/\udcffbad.ini", repo) == "inv/%FFbad.ini"


def test_action_takes_the_inventory_sources_ansible_used(tmp_path):
    repo = tmp_path / "repo"
    (repo / "inventory").mkdir(parents=True)
    (repo / "inventory" / "hosts.yml").write_text("all: {}\n")
    outside = tmp_path / "other.ini"
    outside.write_text("[x]\n")
    task_vars = {"ansible_inventory_sources": [str(repo / "inventory" / "hosts.yml"), str(outside), "localhost,"]}
    got = action.sarif_sources_of({"sarif_sources": None}, task_vars, str(repo))
    assert got == {"inventory": ["inventory/hosts.yml", "other.ini"], "policy": None}
    given = {"sarif_sources": {"inventory": [str(repo / "inventory" / "hosts.yml")], "policy": str(repo / "policy.yml")}}
    assert action.sarif_sources_of(given, task_vars, str(repo)) == {"inventory": ["inventory/hosts.yml"], "policy": "policy.yml"}


def test_action_argument_spec_takes_sarif_sources():
    from ansible.module_utils.common.arg_spec import ArgumentSpecValidator
    ok = ArgumentSpecValidator(action.ARGS).validate({"sarif_sources": {"inventory": ["inv.yml"], "policy": "p.yml"}})
    assert not ok.error_messages and ok.validated_parameters["sarif_sources"] == {"inventory": ["inv.yml"], "policy": "p.yml"}
    assert ArgumentSpecValidator(action.ARGS).validate({}).validated_parameters["sarif_sources"] is None
    bad = ArgumentSpecValidator(action.ARGS).validate({"sarif_sources": {"inventry": ["inv.yml"]}})
    assert bad.error_messages and "inventry" in " ".join(bad.error_messages)


def test_fingerprints_are_stable_across_evaluations_and_never_the_message():
    fs1, log1 = log_of()
    fs2, log2 = log_of(now=E.NOW + 86400 * 3)

    def prints(log):
        return dict((k, r["partialFingerprints"]["vmguardFinding/v1"]) for k, r in results_by(log).items())
    p1, p2 = prints(log1), prints(log2)
    assert p1 == p2 and len(set(p1.values())) == len(p1)
    f = [x for x in fs1 if x["rule"] == "RB-01" and x["status"] == "fail"][0]
    assert p1[("RB-01", "hv1/web1")] == hashlib.sha256(b"RB-01|domain|hv1/web1").hexdigest()
    assert sarif.fingerprint(dict(f, message="something else")) == p1[("RB-01", "hv1/web1")]


def test_guest_data_is_escaped_in_sarif_text():
    f = {"rule": "RB-01", "area": "rollback", "severity": "high", "status": "fail",
         "subject": {"kind": "guest", "id": "web\x1b[31m1"}, "message": "proc \x1b[2J\u202e", "remediation": "r"}
    rep = {"schema": "vmguard.report/v1", "generated_at": "2026-11-18T00:00:00Z", "policy_digest": "0", "findings": [f]}
    r = report.sarif_log(rep, SOURCES)["runs"][0]["results"][0]
    shown = [r["message"]["text"], r["properties"]["subject"]["id"]] + list(r["locations"][0]["logicalLocations"][0].values())
    assert not [t for t in shown if "\x1b" in t or "\u202e" in t], shown
    assert r["message"]["text"].endswith("proc \\x1b[2J\\u202e")
    assert r["locations"][0]["logicalLocations"][0]["name"] == "web\\x1b[31m1"
    assert r["partialFingerprints"]["vmguardFinding/v1"] == sarif.fingerprint(f)  # of the data as collected


def _listing(d):
    return sorted(os.listdir(d))


def test_write_all_writes_report_sarif_with_the_set_and_no_temp_file(tmp_path):
    pol, fs = findings()
    rep = report.build(pol, fs, E.NOW)
    gate = engine.gate(fs, "high")
    out = str(tmp_path / "out")
    paths = report.write_all(out, rep, gate, "high", sources=SOURCES)
    assert _listing(out) == ["junit.xml", "report.html", "report.json", "report.oscal.json", "report.sarif"]
    assert paths["sarif"] == os.path.join(out, "report.sarif")
    assert oct(os.stat(paths["sarif"]).st_mode & 0o777) == oct(0o640)
    with open(paths["sarif"]) as fh:
        log = json.load(fh)
    _validate(log)
    assert results_by(log)[("RB-01", "hv1/web1")]["locations"][0]["physicalLocation"]["artifactLocation"]["uri"] == \
        "inventory/hosts.yml"


def test_sarif_that_cannot_be_replaced_leaves_the_whole_previous_set(tmp_path):
    pol, fs = findings()
    rep = report.build(pol, fs, E.NOW)
    gate = engine.gate(fs, "high")
    out = str(tmp_path / "out")
    paths = report.write_all(out, rep, gate, "high", sources=SOURCES)
    os.unlink(paths["sarif"])
    os.mkdir(paths["sarif"])  # report.sarif cannot be replaced
    before = dict((n, open(os.path.join(out, n), "rb").read()) for n in _listing(out) if n != "report.sarif")
    with pytest.raises(report.ReportWriteError) as e:
        report.write_all(out, dict(rep, generated_at="2030-01-01T00:00:00Z"), gate, "high", sources=SOURCES)
    assert "report.sarif" in str(e.value)
    assert _listing(out) == ["junit.xml", "report.html", "report.json", "report.oscal.json", "report.sarif"]  # no temp file
    assert dict((n, open(os.path.join(out, n), "rb").read()) for n in _listing(out) if n != "report.sarif") == before


def test_rules_not_evaluated_are_disabled_in_the_invocation_with_the_reason():
    """A rule the policy disables has no result: the run now says it was not run (a disabled rule configuration and
    a notification with the reason) instead of listing it among the rules as if it had passed."""
    pol, fs = findings(rules={"RB-01": {"enabled": False}})
    rep = report.build(pol, fs, E.NOW, extra={"rules_selected": "all"})
    log = report.sarif_log(rep, SOURCES)
    _validate(log)
    run = log["runs"][0]
    assert not [r for r in run["results"] if r["ruleId"] == "RB-01"]
    (inv,) = run["invocations"]
    index = [r["id"] for r in run["tool"]["driver"]["rules"]].index("RB-01")
    assert inv["executionSuccessful"] is True
    assert inv["ruleConfigurationOverrides"] == [{"descriptor": {"id": "RB-01", "index": index}, "configuration": {"enabled": False}}]
    (note,) = inv["toolConfigurationNotifications"]
    assert note["associatedRule"] == {"id": "RB-01", "index": index} and "disabled by the policy" in note["message"]["text"]
    assert run["tool"]["driver"]["notifications"][note["descriptor"]["index"]]["id"] == note["descriptor"]["id"]
    assert run["properties"]["rules_not_evaluated"] == [{"ruleId": "RB-01", "reason": engine.NOT_ENABLED}]
    # A run of every rule has no invocation to speak of.
    assert "invocations" not in log_of()[1]["runs"][0]
