"""Reports: schema of report.json, JUnit structure, self-contained HTML."""

import json
import re
import xml.etree.ElementTree as ET

from ansible_collections.vmguard.hardening.plugins.module_utils import engine, policy, report

from . import evidence as E


def make(tmp_path):
    d = E.domain(replace={"<genid/>": ""})
    guests = {"web1": E.guest("web1", facts=E.guest_facts(1)),
              "mail1": E.guest("mail1", "mail", error="unreachable: timeout")}
    ev = E.fleet([d, E.domain("mail1", "mail")], guests)
    pol = policy.load_policy({"waivers": [{"rule": "ISO-09", "subject": "*", "reason": "lab", "expires": "2030-01-01"}]})
    findings = engine.evaluate(pol, ev, now=E.NOW)
    rep = report.build(pol, findings, E.NOW)
    gate = engine.gate(findings, "high")
    return rep, gate, report.write_all(str(tmp_path / "out"), rep, gate, "high")


def test_json_schema(tmp_path):
    rep, gate, paths = make(tmp_path)
    with open(paths["json"]) as f:
        data = json.load(f)
    assert data["schema"] == "vmguard.report/v1"
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", data["generated_at"])
    assert re.fullmatch(r"[0-9a-f]{64}", data["policy_digest"])
    s = data["summary"]
    assert set(s) >= {"total", "pass", "fail", "error", "waived", "not_applicable", "by_area"}
    assert s["total"] == len(data["findings"])
    f = data["findings"][0]
    assert set(f) >= {"rule", "area", "severity", "status", "subject", "message", "remediation", "evidence"}
    assert {x["subject"]["kind"] for x in data["findings"]} >= {"domain", "guest", "hypervisor", "fleet"}
    assert any(x["status"] == "error" and x["subject"]["id"] == "mail1" for x in data["findings"])


def test_junit_one_testcase_per_finding(tmp_path):
    rep, gate, paths = make(tmp_path)
    root = ET.parse(paths["junit"]).getroot()
    cases = root.findall(".//testcase")
    assert len(cases) == rep["summary"]["total"]
    assert len(root.findall(".//failure")) == rep["summary"]["fail"]
    assert len(root.findall(".//error")) == rep["summary"]["error"]
    assert len(root.findall(".//skipped")) == rep["summary"]["waived"] + rep["summary"]["not_applicable"]
    names = [c.get("name") for c in cases]
    assert "RB-01 hv1/web1" in names


def test_html_is_self_contained(tmp_path):
    rep, gate, paths = make(tmp_path)
    with open(paths["html"]) as f:
        html = f.read()
    assert "FAILED:" in html
    assert not re.search(r"""(src|href)=["']?(https?:)?//""", html)
    assert "<script src" not in html and "<link" not in html
    for area in ("diversity", "rollback", "isolation", "leakage", "visibility"):
        assert area.capitalize() in html
    assert html.count("<tr data-status=") == rep["summary"]["total"]
