"""Reports (issue 12, "reports written at the floor"): the faster report code writes the same bytes.

The texts of a synthetic report rich in what guest data brings (controls, escapes, bidi overrides,
lone surrogates, markup, quotes, non-ASCII, line separators), every status, waivers, definitions,
since_previous values and non-str values are compared with:

- straightforward references kept here: json.dumps(x, indent=2, default=str) for the JSON reports,
  an ElementTree of the JUnit document serialized by ElementTree, uuid.UUID for OSCAL's uuids;
- digests of the texts the code wrote before the speed work (commit 1fe0c21): junit.xml, the HTML
  data and the SARIF and OSCAL documents built with a small fixed rule registry, the findings carrying the
  remediation texts of that time (tests/fixtures/report/rule-remediations.json), so that a change of the
  catalogue's titles or texts does not move them. A deliberate change of a report's format changes
  a digest: print the new ones with ``python tests/unit/test_report_speed.py`` and say why in the
  commit.
"""

import contextlib
import datetime
import hashlib
import json
import os
import random
import re
import uuid
import xml.etree.ElementTree as ET

from ansible_collections.vmguard.hardening.plugins.module_utils.audit import oscal, report, sarif
from ansible_collections.vmguard.hardening.plugins.module_utils.audit.rules import RULES
from ansible_collections.vmguard.hardening.plugins.module_utils.audit.status import SKIPPED

# Texts as guest data brings them: every one is used as subject id, message, remediation, waiver reason.
NASTY = [
    "plain", "", " padded ", "a&b<c>d\"e'f", "line1\nline2\r\n\tend", "esc\x1b[31mred\x1b[0m", "nul\x00bel\x07del\x7f",
    "c1\x85\x9b", "bidi\u202egnp.exe", "zero\u200bwidth", "sep\u2028para\u2029", "lone\ud800surrogate", "nonchar\ufffe",
    "unassigned\U000e0080", "caf\u00e9 \u65e5\u672c \U0001f600", "<![CDATA[x]]>", "&amp; already", "back\\slash",
]
KINDS = ["domain", "guest", "hypervisor", "image", "fleet"]
STATUSES = ["pass", "fail", "error", "waived", "not_applicable"]
SEVERITIES = ["low", "medium", "high", "critical"]


def _finding(n, rng):
    rule = sorted(RULES)[n % len(RULES)]
    text = NASTY[n % len(NASTY)]
    status = STATUSES[n % len(STATUSES)]
    kind = KINDS[(n // 3) % len(KINDS)]
    f = {"rule": rule, "area": RULES[rule].area, "severity": SEVERITIES[(n // 5) % 4], "status": status,
         "subject": {"kind": kind, "id": "%s/%s-%d" % (kind, text, n % 7)},
         "message": rng.choice(NASTY) + " message %d" % (n % 11),
         "remediation": [RULES[rule].remediation, "", "fix: " + text, None][n % 4],
         "evidence": {"n": n, "float": n / 7.0, "none": None, "flag": n % 2 == 0, "list": [], "map": {},
                      "nested": {"texts": [text, {"k": [1.5, -0.0, 1e300]}]}, "when": datetime.date(2026, 1, 1 + n % 28)}}
    definition = [None, "both", "persistent", "live", 1, True][n % 6]
    if definition is not None:
        f["definition"] = definition
    if n % 4 != 3:
        f["pending_restart"] = [False, True, None][n % 3]
    if n % 3:
        f["since_previous"] = ["new", "still_failing", "fixed", ""][n % 4]
    if status == "waived":
        f["waiver"] = {"rule": rule, "subject": text or "*", "reason": rng.choice(NASTY), "expires": "2030-01-%02d" % (1 + n % 28)}
        f["waived_status"] = "fail"
    return f


def synthetic(count=400, seed=12):
    rng = random.Random(seed)
    findings = [_finding(n, rng) for n in range(count)]
    findings.append({"rule": "DIV-07", "area": "diversity", "severity": "medium", "status": "pass",
                     "subject": {"kind": "fleet", "id": "fleet"}, "message": "builds", "remediation": "",
                     "evidence": {"builds": {"b\x1b1": {"guests": 3, "share": 0.75}, "b2": {"guests": 1, "share": 0.25}}}})
    gone = [{"rule": f["rule"], "subject": f["subject"], "before": "fail", "now": None} for f in findings[:40:3]]
    rep = report.build({"name": "synthetic"}, findings, 1767225600, extra={
        "fail_on": "high", "rules_selected": "all", "guest_domains": {"guest/plain-0": "domain/plain-0"},
        "since_previous": {"previous": {"generated_at": "2025-12-31T00:00:00Z", "policy_digest": "0" * 64, "path": "r\x1b.json",
                                        "total": 9},
                           "counts": {"new": 3, "fixed": 2, "still_failing": 4, "gone": len(gone)},
                           "fixed": gone[:2], "gone": gone}})
    return rep


class _Rule(object):
    def __init__(self, rid, area, severity, title, remediation, layer="host"):
        self.id, self.area, self.severity, self.title, self.remediation, self.layer = rid, area, severity, title, remediation, layer


# A fixed registry for the SARIF and OSCAL digests (the real one's texts change with the catalogue).
FIXED_RULES = dict((r.id, r) for r in (_Rule("DIV-01", "diversity", "high", "One \u00e9", "do <this> & that"),
                                       _Rule("ISO-02", "isolation", "critical", "Two", "fix\nit"),
                                       _Rule("VIS-03", "visibility", "low", "Three \x1b", "")))


def _fixed(rep):
    """``rep`` with its rules in FIXED_RULES (and one unknown to it)."""
    ids = sorted(FIXED_RULES) + ["XXX-99"]
    out = dict(rep, findings=[dict(f, rule=ids[n % len(ids)]) for n, f in enumerate(rep["findings"])])
    return out


SOURCES = {"inventory": ["inventory/lab.yml", ""], "policy": "policy/vmguard.yml"}


def digest(text):
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()


def texts(rep):
    """The texts under test: junit.xml, the HTML data (its catalogue part left out), SARIF and OSCAL with FIXED_RULES."""
    data = report.html_data(rep)
    data.pop("rules")
    fixed = _fixed(rep)
    return {
        "junit": report.render_all(rep, [], "high", sources=SOURCES)["junit"],
        "html_data": report.script_json(data),
        "sarif": json.dumps(sarif.build(fixed, FIXED_RULES, SOURCES, version="1.2.3", information_uri="https://x.invalid",
                                        text=report.printable), indent=2, default=str),
        "oscal": json.dumps(oscal.build(fixed, FIXED_RULES, SOURCES, version="1.2.3", text=report.printable), indent=2, default=str),
        "oscal_no_sources": json.dumps(oscal.build(fixed, FIXED_RULES), indent=2, default=str),
    }


# The registry's remediation texts when FROZEN was taken (findings carry them; html_data leaves out those equal to
# the registry's), so that the digests stay those of the report code whatever the catalogue says now.
with open(os.path.join(os.path.dirname(__file__), "..", "fixtures", "report", "rule-remediations.json"), encoding="utf-8") as _f:
    REMEDIATIONS = json.load(_f)


@contextlib.contextmanager
def frozen_remediations():
    """The registry with REMEDIATIONS' texts while the block runs (restored afterwards)."""
    was = dict((rid, r.remediation) for rid, r in RULES.items())
    try:
        for rid, text in REMEDIATIONS.items():
            RULES[rid].remediation = text
        yield
    finally:
        for rid, text in was.items():
            RULES[rid].remediation = text


def frozen_texts():
    """texts(synthetic()) with the remediation texts of REMEDIATIONS."""
    with frozen_remediations():
        return texts(synthetic())


# sha256 of frozen_texts() as written by the code before the speed work (commit 1fe0c21).
FROZEN = {
    "junit": "b11667869ab300913a1f0dedb91e8df3b5733bffb60c0a63e6fcad998721a414",
    "html_data": "6c5829633b144ef66ac2cecd7ee71f4bc1f6c7e849ad8fcbf015d2aa83378e84",
    "sarif": "d260ec94f1c83b43200d1649ba6ff38943ca0b2c9f4a811ab7fb6a3e1e25c977",
    # The OSCAL UUIDs are made from what the findings say too since 0.2.7 (two inventories audited in one second
    # had the same ones): new digests; with every UUID replaced by U, the texts are still those of 1fe0c21.
    "oscal": "99e2937ac859398bb985f5abc613b6501a34367c600d9b64885614e5b18704a2",
    "oscal_no_sources": "2a2d4f01ccae29a27cbf914676288c436c1d3f1ded5ebd395948073367e1e15b",
}
FROZEN_OSCAL_WITHOUT_UUIDS = {
    "oscal": "211b6bc005a26993c6c5506af7f40828b0e3d9d0c182a6467a9d00df85fd3d95",
    "oscal_no_sources": "adec54fe057d6996ee80283dde0c5f5c82956445eb3820f6e663e69575286907",
}
UUID5 = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-5[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}")


def test_texts_are_those_written_before_the_speed_work():
    texts = frozen_texts()
    got = dict((k, digest(v)) for k, v in texts.items())
    assert got == FROZEN
    assert dict((k, digest(UUID5.sub("U", texts[k]))) for k in FROZEN_OSCAL_WITHOUT_UUIDS) == FROZEN_OSCAL_WITHOUT_UUIDS


def test_json_reports_are_json_dumps_indented():
    rep = synthetic()
    out = report.render_all(rep, [], "high", sources=SOURCES)
    assert out["json"] == json.dumps(rep, indent=2, default=str) + "\n"
    assert out["sarif"] == json.dumps(report.sarif_log(rep, SOURCES), indent=2, default=str) + "\n"
    assert out["oscal"] == json.dumps(report.oscal_results(rep, SOURCES), indent=2, default=str) + "\n"
    assert "\\ud800" in out["json"] and "\\u001b" in out["json"]  # the data as it is, JSON-escaped


def _printable_ref(value):
    """report.printable, written out per code point (the reference for the escapes)."""
    import unicodedata
    if value is None:
        return ""
    value = str(value)
    out = []
    for ch in value:
        if unicodedata.category(ch) in ("Cc", "Cf", "Cs", "Cn", "Zl", "Zp"):
            n = ord(ch)
            out.append("\\x%02x" % n if n < 0x100 else "\\u%04x" % n if n < 0x10000 else "\\U%08x" % n)
        else:
            out.append(ch)
    return "".join(out)


def _junit_ref(rep):
    """junit.xml the straightforward way: an ElementTree serialized by ElementTree (what the
    one-pass writer promises to equal), from the findings as report.py documents them."""
    p = _printable_ref
    root = ET.Element("testsuites", {"name": "vmguard", "tests": str(len(rep["findings"]))})
    by_area = {}
    for a in ("diversity", "rollback", "isolation", "leakage", "visibility"):
        by_area[a] = []
    for f in rep["findings"]:
        by_area.setdefault(f["area"], []).append(f)
    delta = rep.get("since_previous")
    for area, items in by_area.items():
        if not items:
            continue
        suite = ET.SubElement(root, "testsuite", {
            "name": "vmguard.%s" % p(area), "tests": str(len(items)),
            "failures": str(sum(f["status"] == "fail" for f in items)), "errors": str(sum(f["status"] == "error" for f in items)),
            "skipped": str(sum(f["status"] in SKIPPED for f in items)), "timestamp": rep["generated_at"]})
        if delta and delta.get("previous"):
            props = ET.SubElement(suite, "properties")
            ET.SubElement(props, "property", {"name": "since_previous.report", "value": p(delta["previous"]["generated_at"])})
            for change in ("new", "fixed", "still_failing"):
                ET.SubElement(props, "property", {"name": "since_previous." + change,
                                                  "value": str(sum(f.get("since_previous") == change for f in items))})
            gone = sum(1 for e in delta["gone"] if e["rule"] in RULES and RULES[e["rule"]].area == area)
            ET.SubElement(props, "property", {"name": "since_previous.gone", "value": str(gone)})
        for f in items:
            rule, message = p(f["rule"]), p(f["message"])
            case = ET.SubElement(suite, "testcase", {"classname": "%s.%s" % (p(f["area"]), rule),
                                                     "name": "%s %s" % (rule, p(f["subject"]["id"]))})
            values = [(k, f.get(k)) for k in ("definition", "pending_restart", "since_previous") if f.get(k) is not None]
            if values:
                props = ET.SubElement(case, "properties")
                for name, value in values:
                    value = ("true" if value else "false") if isinstance(value, bool) else p(value)
                    ET.SubElement(props, "property", {"name": name, "value": value})
            if f["status"] in ("fail", "error"):
                lines = [message, report.restart_note(f), "remediation: %s" % (p(f.get("remediation")) or "-")]
                el = ET.SubElement(case, "failure" if f["status"] == "fail" else "error", {"message": message, "type": p(f["severity"])})
                el.text = "\n".join(line for line in lines if line)
            elif f["status"] in SKIPPED:
                ET.SubElement(case, "skipped", {"message": "%s: %s" % (f["status"], message)})
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"


def test_junit_is_what_elementtree_writes():
    for seed, count in ((12, 400), (1, 37), (2, 5)):
        rep = synthetic(count, seed)
        assert report.render_all(rep, [], "high")["junit"] == _junit_ref(rep)


def test_junit_without_previous_report_and_empty():
    rep = synthetic(60, 3)
    rep["since_previous"] = {"previous": None}
    assert report.render_all(rep, [], "high")["junit"] == _junit_ref(rep)
    empty = report.build({}, [], 1767225600)
    assert report.render_all(empty, [], "high")["junit"] == _junit_ref(empty)


def test_printable_reference_agrees():
    for text in NASTY:
        assert report.printable(text) == _printable_ref(text)


def test_oscal_uuid_is_uuid5():
    rng = random.Random(5)
    for n in range(500):
        parts = ("stamp|%d" % n, rng.choice(["observation", "finding", "risk"]), rng.choice(NASTY), n)
        name = "|".join(str(x) for x in parts).encode("utf-8", "surrogatepass")
        want = str(uuid.UUID(bytes=hashlib.sha1(oscal._ROOT.bytes + name).digest()[:16], version=5))
        assert oscal._uuid(*parts) == want
    assert oscal._uuid("a", "b") == str(uuid.uuid5(oscal._ROOT, "a|b"))


def test_memo_keeps_only_exact_str():
    """True == 1 == 1.0 and hash alike: a memo by value would give one the other's text."""
    memo = report._Memo(report.printable)
    assert [memo(v) for v in (1, True, 1.0, "1", None, "x\x1b")] == ["1", "True", "1.0", "1", "", "x\\x1b"]
    assert list(memo) == ["1", "x\x1b"]


def test_junit_properties_of_values_equal_across_types():
    base = {"rule": "DIV-01", "area": "diversity", "severity": "high", "status": "pass", "subject": {"kind": "domain", "id": "d"},
            "message": "m", "remediation": ""}
    fs = [dict(base, definition=v, pending_restart=w) for v, w in ((1, True), (True, 1), (1.0, False), ("1", 0), (-0.0, 0.0))]
    rep = report.build({}, fs, 1767225600)
    out = report.render_all(rep, [], "high")["junit"]
    assert out == _junit_ref(rep)
    values = out.split('value="')[1:]
    assert [v.split('"')[0] for v in values] == ["1", "true", "true", "1", "1.0", "false", "1", "0", "-0.0", "0.0"]


if __name__ == "__main__":  # print the digests of the current code (to refresh FROZEN after a deliberate change)
    for key, value in frozen_texts().items():
        print('    "%s": "%s",' % (key, digest(value)))
