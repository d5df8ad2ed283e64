"""Since the previous run: new failures, fixed, still failing and gone, computed from a previous
report.json and carried by every report format."""

import json
import os
import xml.etree.ElementTree as ET

import pytest

from ansible_collections.vmguard.hardening.plugins.action import audit_evaluate as action
from ansible_collections.vmguard.hardening.plugins.module_utils.audit import delta, engine, report
from ansible_collections.vmguard.hardening.plugins.module_utils.common import forked

from .test_report import embedded
from .test_sarif import _validate, findings

from . import evidence as E


def two_runs():
    """Run 1: RB-01 passes on hv1/web1 (it has a genid), ISO-09 fails on hv1/mail1 (not waived), the first
    finding that passes now failed, a hypervisor finding that will be gone. Run 2: the real engine findings
    of test_sarif.findings()."""
    pol, now = findings()
    fixed = [(f["rule"], f["subject"]["id"]) for f in now if f["status"] == "pass"][0]
    prev = []
    for f in now:
        f = json.loads(json.dumps(f))
        if f["rule"] == "RB-01" and f["subject"]["id"] == "hv1/web1":
            f["status"] = "pass"
        if f["rule"] == "ISO-09" and f["subject"]["id"] == "hv1/mail1":
            f["status"] = "fail"
        if (f["rule"], f["subject"]["id"]) == fixed:
            f["status"] = "fail"
        prev.append(f)
    prev.append({"rule": "LEAK-01", "area": "leakage", "severity": "high", "status": "fail",
                 "subject": {"kind": "hypervisor", "id": "retired-hv"}, "message": "old"})
    return pol, now, {"schema": "vmguard.report/v1", "generated_at": "2026-01-01T00:00:00Z", "findings": prev}


def test_compare_new_fixed_still_and_gone():
    _pol, now, prev = two_runs()
    d = delta.compare(now, prev, source="vmguard-report/report.json")
    by = dict(((f["rule"], f["subject"]["id"]), f.get("since_previous")) for f in now)
    assert by[("RB-01", "hv1/web1")] == "new"
    # Waived now: the failure is accepted, not fixed; it is listed with what it is now.
    assert by[("ISO-09", "hv1/mail1")] is None
    fixed = [k for k, v in by.items() if v == "fixed"]
    assert len(fixed) == 1 and [f["status"] for f in now if (f["rule"], f["subject"]["id"]) == fixed[0]] == ["pass"]
    still = [k for k, v in by.items() if v == "still_failing"]
    assert still and all(k[0] != "RB-01" for k in still)
    assert [(e["rule"], e["subject"]["id"], e["before"], e["now"]) for e in d["gone"]] == [
        ("ISO-09", "hv1/mail1", "fail", "waived"), ("LEAK-01", "retired-hv", "fail", None)]
    assert d["counts"] == {"new": 1, "fixed": 1, "still_failing": len(still), "gone": 2}
    assert d["previous"]["path"] == "vmguard-report/report.json" and d["previous"]["total"] == len(prev["findings"])
    # passing before and now: no tag
    assert not [f for f in now if f["status"] == "pass" and f.get("since_previous") and (f["rule"], f["subject"]["id"]) not in fixed]


def test_no_previous_report_tags_nothing():
    _pol, now, _prev = two_runs()
    d = delta.compare(now, None)
    assert d["previous"] is None and d["counts"] == {"new": 0, "fixed": 0, "still_failing": 0, "gone": 0}
    assert not [f for f in now if "since_previous" in f]


def test_since_previous_in_every_format():
    pol, now, prev = two_runs()
    rep = report.build(pol, now, E.NOW, extra={"since_previous": delta.compare(now, prev, source="r/report.json")})
    texts = report.render_all(rep, engine.gate(now, "high"), "high", {"inventory": ["hosts.yml"]})
    data = json.loads(texts["json"])
    assert data["since_previous"]["counts"]["new"] == 1
    # JUnit: the testcase's property and the suite's counts
    root = ET.fromstring(texts["junit"])
    case = [c for c in root.iter("testcase") if c.get("name") == "RB-01 hv1/web1"][0]
    assert dict((p.get("name"), p.get("value")) for p in case.iter("property"))["since_previous"] == "new"
    suite = [s for s in root.iter("testsuite") if s.get("name") == "vmguard.leakage"][0]
    props = dict((p.get("name"), p.get("value")) for p in suite.find("properties"))
    assert props["since_previous.gone"] == "1" and props["since_previous.report"] == "2026-01-01T00:00:00Z"  # the leakage suite
    # SARIF: baselineState on results, the fixed and gone ones in the run's properties; still valid
    log = json.loads(texts["sarif"])
    _validate(log)
    res = dict(((r["ruleId"], r["properties"]["subject"]["id"]), r) for r in log["runs"][0]["results"])
    assert res[("RB-01", "hv1/web1")]["baselineState"] == "new"
    assert {r.get("baselineState") for k, r in res.items() if r["properties"].get("since_previous") == "still_failing"} == {"unchanged"}
    sp = log["runs"][0]["properties"]["since_previous"]
    assert [e["ruleId"] for e in sp["gone"]] == ["ISO-09", "LEAK-01"] and len(sp["fixed"]) == 1
    # OSCAL: result props
    oscal_props = dict((p["name"], p["value"]) for p in json.loads(texts["oscal"])["assessment-results"]["results"][0]["props"])
    assert oscal_props["since-previous-new"] == "1" and oscal_props["since-previous-gone"] == "2"
    # HTML: the panel's counts, the change filter and each row's change
    html = texts["html"]
    assert 'data-change="new"><b>1</b>new' in html and "retired-hv" in html and "hv1/mail1 (waived now)" in html
    assert [f.get("c") for f in embedded(html)["findings"]].count("new") == 1


def test_html_says_when_there_is_nothing_to_compare():
    pol, now, _prev = two_runs()
    html = report.html(report.build(pol, now, E.NOW), [], "high")
    assert "No previous report to compare with" in html and '<select id="change" disabled>' in html


@pytest.mark.parametrize("content, problem", [
    ("{not json", "is not JSON"),
    ('{"schema": "something/else", "findings": []}', "is not a vmguard report.json"),
    ('{"schema": "vmguard.report/v1", "findings": [{"rule": "RB-01"}]}', "findings[0] has no rule"),
    # Keys that are no strings (unhashable, they broke the comparison with a TypeError), NaN, nesting.
    ('{"schema": "vmguard.report/v1", "findings": [{"rule": "RB-01", "status": "fail", "subject": {"kind": "domain", "id": ["a"]}}]}',
     "findings[0] has no rule"),
    ('{"schema": "vmguard.report/v1", "findings": [{"rule": {"a": 1}, "status": "fail", "subject": {"kind": "domain", "id": "a"}}]}',
     "findings[0] has no rule"),
    ('{"schema": "vmguard.report/v1", "generated_at": NaN, "findings": []}', "NaN is not JSON"),
    ('{"schema": "vmguard.report/v1", "findings": ' + "[" * 200000 + "]" * 200000 + "}", "is not a report this audit can read"),
])
def test_previous_report_problems_are_named(tmp_path, content, problem):
    p = tmp_path / "report.json"
    p.write_text(content)
    with pytest.raises(delta.PreviousReportError) as e:
        delta.load_previous(str(p))
    assert problem in str(e.value) and str(p) in str(e.value)


def test_action_previous_report_given_must_be_readable_default_may_not(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "report.json").write_text("{broken")
    args = {"previous_report": None}
    prev, path, problem = action.previous_of(args, str(out), str(tmp_path))
    assert prev is None and "is not JSON" in problem  # the default one: named in the reports, no failure
    with pytest.raises(action.RunError) as e:
        action.previous_of({"previous_report": "missing.json"}, str(out), str(tmp_path))
    assert "vmguard_audit_previous_report" in str(e.value) and "missing.json" in str(e.value)
    good = tmp_path / "old.json"
    good.write_text(json.dumps({"schema": "vmguard.report/v1", "generated_at": "t", "findings": []}))
    prev, path, problem = action.previous_of({"previous_report": "old.json"}, str(out), str(tmp_path))
    assert prev["generated_at"] == "t" and path == str(good) and problem is None


def test_action_reads_the_previous_report_in_a_child_with_the_same_result(tmp_path):
    """The audit action parses the previous report.json in a forked child while the rules run: the same
    since_previous as comparing with the report read here, and the findings tagged the same way."""
    _pol, now, prev = two_runs()
    out = tmp_path / "out"
    out.mkdir()
    (out / "report.json").write_text(json.dumps(prev))
    here = json.loads(json.dumps(now))
    expected = delta.compare(here, json.loads(json.dumps(prev)), source="out/report.json")
    pending = action.start_previous({"previous_report": None}, str(out), str(tmp_path))
    assert pending[2] not in (None, "here")  # a child is reading it
    got = action.since_previous(now, pending, str(tmp_path))
    assert got == expected and now == here and got["counts"]["new"] == 1


def test_action_previous_report_problems_come_back_from_the_child(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "report.json").write_text('{"schema": "vmguard.report/v1", "findings": [{"rule": "RB-01"}]}')
    got = action.since_previous([], action.start_previous({}, str(out), str(tmp_path)), str(tmp_path))
    assert got["previous"] is None and "findings[0] has no rule" in got["error"]  # the default one: shown, no failure
    pending = action.start_previous({"previous_report": "out/report.json"}, str(out), str(tmp_path))
    with pytest.raises(action.RunError) as e:
        action.since_previous([], pending, str(tmp_path))
    assert "vmguard_audit_previous_report" in str(e.value) and "findings[0] has no rule" in str(e.value)


def test_action_stops_the_previous_report_child_when_the_evaluation_fails(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "report.json").write_text(json.dumps({"schema": "vmguard.report/v1", "findings": []}))
    pending = action.start_previous({}, str(out), str(tmp_path))
    action.abandon_previous(pending)
    with pytest.raises(ChildProcessError):  # killed and reaped
        os.waitpid(pending[2][0], os.WNOHANG)


def test_action_reads_the_previous_report_itself_when_the_child_dies(tmp_path):
    """A child that ends without an answer (killed) is no reason to drop since_previous: it is read here."""
    _pol, now, prev = two_runs()
    out = tmp_path / "out"
    out.mkdir()
    (out / "report.json").write_text(json.dumps(prev))
    expected = delta.compare(json.loads(json.dumps(now)), json.loads(json.dumps(prev)), source="out/report.json")
    dead = (str(out / "report.json"), False, forked.start(os._exit, 3))  # what start_previous returns, its child dying
    assert action.since_previous(now, dead, str(tmp_path)) == expected


def test_previous_report_that_is_no_regular_file_or_too_large_is_named(tmp_path, monkeypatch):
    """Read without following a link or blocking on a FIFO, and no larger than delta.MAX_PREVIOUS."""
    real = tmp_path / "real.json"
    real.write_text(json.dumps({"schema": "vmguard.report/v1", "findings": []}))
    link = tmp_path / "link.json"
    link.symlink_to(real)
    fifo = tmp_path / "fifo.json"
    os.mkfifo(str(fifo))
    for path, problem in ((link, "symbolic link"), (fifo, "not a regular file")):
        with pytest.raises(delta.PreviousReportError) as e:
            delta.load_previous(str(path))
        assert problem in str(e.value) and str(path) in str(e.value)
    monkeypatch.setattr(delta, "MAX_PREVIOUS", 10)
    with pytest.raises(delta.PreviousReportError) as e:
        delta.load_previous(str(real))
    assert "larger than the 10 allowed" in str(e.value)


def test_not_applicable_after_a_failure_is_no_fix():
    """A finding that failed and now has nothing to judge (its evidence vanished: a ledger record deleted) is
    listed as gone with what it is now, never counted as fixed."""
    _pol, now, prev = two_runs()
    na = [f for f in now if f["status"] == "not_applicable"][0]
    for f in prev["findings"]:
        if (f["rule"], f["subject"]["id"]) == (na["rule"], na["subject"]["id"]):
            f["status"] = "fail"
    d = delta.compare(now, prev)
    assert (na["rule"], na["subject"]["id"], "fail", "not_applicable") in [
        (e["rule"], e["subject"]["id"], e["before"], e["now"]) for e in d["gone"]]
    assert "since_previous" not in na and d["counts"]["fixed"] == 1
