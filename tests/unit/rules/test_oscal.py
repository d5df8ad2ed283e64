"""report.oscal.json: OSCAL assessment results from real engine findings, validated with
compliance-trestle's pydantic models (the OSCAL library make setup installs)."""

import json

import pytest
from trestle.oscal.assessment_results import AssessmentResults

from ansible_collections.vmguard.hardening.plugins.module_utils.audit import delta, oscal, report
from ansible_collections.vmguard.hardening.plugins.module_utils.audit.rules import RULES

from .test_sarif import REASON, SOURCES, findings

from . import evidence as E


def doc_of(prev_findings=None, **kw):
    pol, fs = findings(**kw)
    rep = report.build(pol, fs, E.NOW)
    if prev_findings is not None:
        rep["since_previous"] = delta.compare(rep["findings"], {"findings": prev_findings, "generated_at": "x"})
    return fs, json.loads(report.render_all(rep, [], "high", SOURCES)["oscal"])


def validated(doc):
    """The document through trestle's model (raises on anything OSCAL does not allow)."""
    return AssessmentResults.model_validate(doc["assessment-results"])


def test_oscal_from_engine_findings_validates_with_trestle():
    fs, doc = doc_of()
    ar = validated(doc)
    assert ar.metadata.oscal_version.root.root == oscal.OSCAL_VERSION
    result = ar.results[0]
    bad = [f for f in fs if f["status"] in ("fail", "error", "waived")]
    assert {"fail", "error", "waived"} <= {f["status"] for f in bad}
    assert len(result.observations) == len(bad) == len(result.findings)
    # Every finding points at its own observation, which names the subject's inventory item.
    obs = dict((o.uuid, o) for o in result.observations)
    items = dict((i.uuid, i) for i in result.local_definitions.inventory_items)
    for fd in result.findings:
        (ref,) = fd.related_observations
        ob = obs[ref.observation_uuid]
        assert ob.subjects[0].subject_uuid in items and fd.title == ob.title
        assert fd.target.status.state.value == "not-satisfied"


def test_reviewed_controls_are_the_catalogue():
    _fs, doc = doc_of()
    sel = doc["assessment-results"]["results"][0]["reviewed-controls"]["control-selections"][0]["include-controls"]
    assert sorted(c["control-id"] for c in sel) == sorted(r.lower() for r in RULES)
    rep = report.build({}, [], E.NOW, extra={"rules_selected": ["DIV-02", "RB-01"]})
    only = oscal.build(rep, RULES)["assessment-results"]["results"][0]["reviewed-controls"]
    assert only["control-selections"][0]["include-controls"] == [{"control-id": "div-02"}, {"control-id": "rb-01"}]
    validated(oscal.build(rep, RULES))  # no failing finding: a valid document without observations


def test_waiver_is_an_accepted_risk_with_its_expiry():
    fs, doc = doc_of()
    result = validated(doc).results[0]
    waived = [f for f in fs if f["status"] == "waived"]
    assert waived and len(result.risks) == len(waived)
    risk = result.risks[0]
    raw = doc["assessment-results"]["results"][0]["risks"][0]
    assert raw["status"] == "deviation-approved" and raw["uuid"] == risk.uuid
    assert risk.deadline.isoformat().startswith("2030-01-01T23:59:59")
    assert REASON in risk.statement
    linked = [fd for fd in result.findings if fd.related_risks]
    assert len(linked) == len(waived) and linked[0].related_risks[0].risk_uuid == risk.uuid
    assert "waived until 2030-01-01" in linked[0].target.status.remarks


def test_same_report_same_document_and_uuids_unique():
    _fs, a = doc_of()
    _fs, b = doc_of()
    assert a == b
    text = json.dumps(a)
    uuids = [v for k, v in _walk(a) if k == "uuid"]
    assert len(uuids) == len(set(uuids)) > 10 and "null" not in text


def _walk(obj):
    if isinstance(obj, dict):
        for k, v in obj.items():
            yield k, v
            yield from _walk(v)
    elif isinstance(obj, list):
        for v in obj:
            yield from _walk(v)


def test_since_previous_in_oscal_props():
    pol, fs = findings()
    prev = [dict(f, status="pass") if f["rule"] == "RB-01" else f for f in fs]
    _fs, doc = doc_of(prev_findings=prev)
    result = validated(doc).results[0]
    props = dict((p.name, p.value) for p in result.props)
    assert int(props["since-previous-new"]) >= 1 and props["since-previous-still-failing"] != "0"
    new = [fd for fd in result.findings if any(p.name == "since-previous" and p.value == "new" for p in fd.props or [])]
    assert new and all(fd.title.startswith("RB-01 ") for fd in new)


def test_trestle_rejects_a_broken_document():
    """The validation can fail: a risk status OSCAL does not know and a finding without a target."""
    _fs, doc = doc_of()
    bad = json.loads(json.dumps(doc))
    result = bad["assessment-results"]["results"][0]
    result["risks"][0]["deadline"] = "next tuesday"
    del result["findings"][0]["target"]
    with pytest.raises(Exception) as e:
        validated(bad)
    assert "deadline" in str(e.value) and "target" in str(e.value)


def test_guest_data_is_escaped_and_surrogates_do_not_break_uuids():
    fs = [{"rule": "ISO-01", "area": "isolation", "severity": "high", "status": "fail",
           "subject": {"kind": "guest", "id": "g\ud800\x1b[31m"}, "message": "m\x1b[31mEVIL", "remediation": "r"}]
    rep = report.build({}, fs, E.NOW)
    doc = json.loads(report.render_all(rep, [], "high")["oscal"])
    validated(doc)
    text = json.dumps(doc)
    assert "\\u001b" not in text and "\\\\x1b[31mEVIL" in text


def test_every_uuid_is_unique_even_for_a_repeated_rule_and_subject():
    """OSCAL requires each uuid once; a second finding of one rule and subject (made by hand: the engine makes
    none) gets uuids of its own, and the same report gives them again."""
    f = {"rule": "ISO-04", "area": "isolation", "severity": "high", "status": "error", "subject": {"kind": "hypervisor", "id": "hv1"},
         "message": "cannot evaluate: unreachable", "remediation": "r", "evidence": {}}
    rep = report.build({}, [f], E.NOW)
    alone = oscal.build(rep, RULES)["assessment-results"]["results"][0]
    rep = report.build({}, [f, dict(f, message="again")], E.NOW)
    doc = oscal.build(rep, RULES)
    validated(doc)
    result = doc["assessment-results"]["results"][0]
    uuids = [o["uuid"] for o in result["observations"]] + [x["uuid"] for x in result["findings"]]
    assert len(uuids) == len(set(uuids)) == 4
    assert oscal.build(rep, RULES) == doc
    # One finding less is another report: none of its UUIDs is one of these.
    assert not set(uuids) & set([o["uuid"] for o in alone["observations"]] + [x["uuid"] for x in alone["findings"]])


def test_reviewed_controls_leave_out_the_rules_not_evaluated():
    """A rule the policy disables was listed as a reviewed control with no finding: reviewed and satisfied."""
    pol, fs = findings(rules={"RB-01": {"enabled": False}, "DIV-09": {"enabled": False}})
    rep = report.build(pol, fs, E.NOW, extra={"rules_selected": "all"})
    doc = oscal.build(rep, RULES)
    validated(doc)
    result = doc["assessment-results"]["results"][0]
    (sel,) = result["reviewed-controls"]["control-selections"]
    ids = [c["control-id"] for c in sel["include-controls"]]
    assert "rb-01" not in ids and "div-09" not in ids and len(ids) == len(RULES) - 2
    assert "DIV-09 disabled by the policy" in sel["remarks"] and "RB-01 disabled by the policy" in sel["remarks"]
    assert "except 2 not evaluated" in result["description"]
    rep = report.build(pol, fs, E.NOW, extra={"rules_selected": ["DIV-09", "RB-01", "RB-02"]})
    (sel,) = oscal.build(rep, RULES)["assessment-results"]["results"][0]["reviewed-controls"]["control-selections"]
    assert sel["include-controls"] == [{"control-id": "rb-02"}]


def test_two_inventories_audited_in_the_same_second_share_no_uuid():
    """Two audits with one policy in the same second (two CI jobs; two sites, each with a web1): the time and the
    policy digest are the same, what the findings say is not, and neither are the documents' UUIDs."""
    pol, fs = findings()
    rep_a = report.build(pol, fs, E.NOW)
    other = [dict(f, message=f["message"] + " (site b)") if f["status"] in oscal.RESULT_STATUSES else f for f in fs]
    rep_b = report.build(pol, other, E.NOW)
    assert rep_a["generated_at"] == rep_b["generated_at"] and rep_a["policy_digest"] == rep_b["policy_digest"]
    docs = [json.loads(report.render_all(r, [], "high", SOURCES)["oscal"]) for r in (rep_a, rep_b)]
    uuids = [set(v for k, v in _walk(d) if k == "uuid") for d in docs]
    assert len(uuids[0]) > 10 and not uuids[0] & uuids[1]
    # The subjects' names alike, the inventory items too are the same names with other UUIDs.
    items = [[i["description"] for i in d["assessment-results"]["results"][0]["local-definitions"]["inventory-items"]] for d in docs]
    assert items[0] == items[1]
    # One more finding is another inventory as well.
    extra = dict(fs[0], subject={"kind": "guest", "id": "web9"})
    rep_c = report.build(pol, fs + [extra], E.NOW)
    doc_c = json.loads(report.render_all(rep_c, [], "high", SOURCES)["oscal"])
    assert doc_c["assessment-results"]["uuid"] != docs[0]["assessment-results"]["uuid"]
    assert oscal.content_digest(fs) == oscal.content_digest([dict(f) for f in fs]) != oscal.content_digest(other)
