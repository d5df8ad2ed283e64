"""Reports: schema of report.json, JUnit structure, self-contained HTML."""

import json
import re
import signal
import xml.etree.ElementTree as ET

from ansible_collections.vmguard.hardening.plugins.module_utils.audit import engine, policy, report
from ansible_collections.vmguard.hardening.plugins.module_utils.common import forked

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
    data = embedded(html)
    assert len(data["findings"]) == rep["summary"]["total"]
    areas = [label for label, _idx in data["views"]["area"]]
    assert areas == ["Diversity", "Rollback", "Isolation", "Leakage", "Visibility"]
    for view in ("area", "vm"):  # every finding in exactly one section of each view
        assert sorted(i for _label, idx in data["views"][view] for i in idx) == list(range(rep["summary"]["total"]))


def embedded(html):
    """The findings data report.html renders (the JSON in <script id="data">)."""
    m = re.search(r'<script type="application/json" id="data">(.*?)</script>', html, re.S)
    assert m, "no embedded data"
    data = json.loads(m.group(1))
    data["findings"] = report.finding_texts(data)  # texts looked up in the string table, as the page does
    return data


def test_vm_view_puts_a_guest_with_its_domain(tmp_path):
    rep, gate, paths = make(tmp_path)
    rep["guest_domains"] = {"web1": "hv1/web1"}
    data = report.html_data(rep)
    labels = [label for label, _idx in data["views"]["vm"]]
    # mail1's inventory names no domain: its guest findings are a VM of their own.
    assert labels[:3] == ["VM hv1/mail1", "VM hv1/web1 (guest web1)", "VM mail1"], labels
    web1 = dict(data["views"]["vm"])["VM hv1/web1 (guest web1)"]
    kinds = {rep["findings"][i]["subject"]["kind"] for i in web1}
    assert kinds == {"domain", "guest"}
    # Subjects that are no VM come after the VMs: hypervisors, then the fleet.
    others = labels[3:]
    assert others and others[0].startswith("hypervisor ") and others[-1].startswith("fleet "), others


def test_embedded_data_cannot_close_the_script_element():
    findings = [{"rule": "ISO-01", "area": "isolation", "severity": "high", "status": "fail",
                 "subject": {"kind": "guest", "id": "g</script><script>alert(1)</script>"},
                 "message": "<!-- & </SCRIPT >", "remediation": "r"}]
    rep = report.build(policy.load_policy({}), findings, E.NOW)
    html = report.html(rep, [], "high")
    assert html.lower().count("</script") == 2  # the data element's and the page script's own
    assert embedded(html)["findings"][0]["i"] == "g</script><script>alert(1)</script>"


# --- hostile text: control characters and terminal escapes from guest data ---------------------

import os  # noqa: E402
import stat  # noqa: E402

import lxml.etree  # noqa: E402
import pytest  # noqa: E402

from ansible_collections.vmguard.hardening.plugins.module_utils.audit.rules import RULES  # noqa: E402

# Every code point XML 1.0 forbids or a terminal acts on: C0, DEL, C1 (0x9b is a one-byte CSI),
# lone surrogates, noncharacters, bidi overrides, line/paragraph separators.
HOSTILE = ([chr(c) for c in range(32)] + [chr(127)] + [chr(c) for c in range(0x80, 0xA0)]
           + ["\ud800", "\udfff", "\ufffe", "\uffff", "\u202e", "\u2066", "\u2028", "\u2029", "\u200b"])
ESC_RED = "\x1b[31mEVIL\x1b[0m"


def test_printable_escapes_every_hostile_code_point():
    for ch in HOSTILE:
        out = report.printable("a" + ch + "b")
        assert ch not in out, repr(ch)
        assert out.startswith("a\\") and out.endswith("b"), (repr(ch), out)
        assert out.isprintable() and out.isascii()
    assert report.printable(ESC_RED) == "\\x1b[31mEVIL\\x1b[0m"
    assert report.printable("\ud800") == "\\ud800"
    assert report.printable("\U000e0001") == "\\U000e0001"  # a language tag (format character)


def test_printable_keeps_ordinary_text():
    for text in ("sshd", "tcp/8081 python3", "Müller–Lüdenscheidt", "日本語", "a b\u00a0c", ""):
        assert report.printable(text) == text
    assert report.printable(None) == "" and report.printable(42) == "42"


def hostile_report(tmp_path):
    """ISO-01 on a guest whose listening process is named with a terminal escape (the real path
    of guest data into a message), plus a finding carrying every hostile code point."""
    facts = E.guest_facts(1, listening=[{"proto": "tcp", "address": "0.0.0.0", "port": 22, "process": "sshd"},
                                        {"proto": "tcp", "address": "0.0.0.0", "port": 4444, "process": ESC_RED}])
    ev = E.fleet([E.domain("web1")], {"web1": E.guest("web1", facts=facts)})
    pol = policy.load_policy({})
    findings = engine.evaluate(pol, ev, now=E.NOW, only={"ISO-01"})
    iso = [f for f in findings if f["subject"]["id"] == "web1"]
    assert iso and iso[0]["status"] == "fail" and ESC_RED in iso[0]["message"]
    everything = "|".join(HOSTILE)  # "|" keeps the lone surrogates apart (no accidental pair)
    for status in ("fail", "error", "waived"):
        findings.append({"rule": "ISO-01", "area": "isolation", "severity": "high", "status": status,
                         "subject": {"kind": "guest", "id": "g" + everything},
                         "message": "m" + everything, "remediation": "r" + everything,
                         "evidence": {"process": everything}})
    rep = report.build(pol, findings, E.NOW)
    gate = engine.gate(findings, "high")
    return rep, report.write_all(str(tmp_path / "out"), rep, gate, "high")


def test_junit_is_valid_xml_whatever_the_input(tmp_path):
    rep, paths = hostile_report(tmp_path)
    with open(paths["junit"], "rb") as f:
        raw = f.read()
    root = ET.fromstring(raw)
    lxml.etree.fromstring(raw)  # the stricter parser too
    assert b"\x1b" not in raw and b"\xc2\x9b" not in raw
    texts = [e.text or "" for e in root.iter()] + [v for e in root.iter() for v in e.attrib.values()]
    joined = "\n".join(texts)
    assert "\\x1b[31mEVIL\\x1b[0m" in joined
    for esc in ("\\x00", "\\x07", "\\x0a", "\\x7f", "\\x9b", "\\ud800", "\\udfff", "\\ufffe", "\\u202e"):
        assert esc in joined, esc
    assert len(root.findall(".//testcase")) == rep["summary"]["total"]


def test_html_shows_escapes_as_text(tmp_path):
    _rep, paths = hostile_report(tmp_path)
    with open(paths["html"], "rb") as f:
        raw = f.read()
    text = raw.decode("utf-8")  # valid UTF-8: no lone surrogate got through
    assert "\x1b" not in text and "\u202e" not in text and "\x9b" not in text
    messages = [f["m"] for f in embedded(text)["findings"]]
    assert any("\\x1b[31mEVIL\\x1b[0m" in m for m in messages)
    assert all(m.isprintable() for m in messages)
    lxml.etree.fromstring(raw, lxml.etree.HTMLParser(recover=False))


def test_json_keeps_guest_data_as_collected(tmp_path):
    rep, paths = hostile_report(tmp_path)
    with open(paths["json"], "rb") as f:
        raw = f.read()
    assert raw.isascii()  # JSON escapes it; the terminal never sees a raw escape from `cat`
    data = json.loads(raw)
    assert any(ESC_RED in f["message"] for f in data["findings"])
    assert data["findings"][-1]["evidence"]["process"] == "|".join(HOSTILE)


# --- definition / pending_restart ---------------------------------------------------------------

VNC_LOCAL = "<graphics type='vnc' autoport='yes' listen='127.0.0.1'/>"
VNC_ANY = "<graphics type='vnc' autoport='yes' listen='0.0.0.0'/>"


def _running(name, live_kw, persistent_kw):
    live = E.domain(name, **live_kw)
    pers = E.domain(name, **persistent_kw)
    pers["definition"] = "persistent"
    live.update(definition="live", inactive=pers)
    return live


def restart_report(tmp_path):
    pending = _running("web1", {"replace": {VNC_LOCAL: VNC_ANY}}, {})
    weakened = _running("mail1", {}, {"replace": {VNC_LOCAL: VNC_ANY}})
    pol = policy.load_policy({})
    findings = engine.evaluate(pol, E.fleet([pending, weakened]), now=E.NOW, only={"LEAK-02"})
    rep = report.build(pol, findings, E.NOW)
    return rep, report.write_all(str(tmp_path / "out"), rep, engine.gate(findings, "high"), "high")


def test_pending_restart_in_junit(tmp_path):
    _rep, paths = restart_report(tmp_path)
    root = ET.parse(paths["junit"]).getroot()
    cases = dict((c.get("name"), c) for c in root.iter("testcase"))
    web = cases["LEAK-02 hv1/web1"]
    props = dict((p.get("name"), p.get("value")) for p in web.iter("property"))
    assert props == {"definition": "live", "pending_restart": "true"}
    assert "pending restart: takes effect at next start" in web.find("failure").text
    mail = cases["LEAK-02 hv1/mail1"]
    props = dict((p.get("name"), p.get("value")) for p in mail.iter("property"))
    assert props == {"definition": "persistent", "pending_restart": "false"}
    assert "persistent definition: takes effect at next start" in mail.find("failure").text


def test_pending_restart_in_html_and_json(tmp_path):
    rep, paths = restart_report(tmp_path)
    with open(paths["html"]) as f:
        html = f.read()
    badges = [f.get("b") for f in embedded(html)["findings"]]
    assert badges.count("restart") == 1 and badges.count("persistent") == 1
    with open(paths["json"]) as f:
        data = json.load(f)
    by = dict((f["subject"]["id"], f) for f in data["findings"])
    assert by["hv1/web1"]["pending_restart"] is True and by["hv1/web1"]["definition"] == "live"
    assert by["hv1/mail1"]["pending_restart"] is False and by["hv1/mail1"]["definition"] == "persistent"


def test_findings_without_definition_fields_render(tmp_path):
    rep, gate, paths = make(tmp_path)  # guests, fleet: no definition fields
    root = ET.parse(paths["junit"]).getroot()
    guest_cases = [c for c in root.iter("testcase") if c.get("name").endswith(" web1")]
    assert guest_cases and all(c.find("properties") is None for c in guest_cases)


# --- writing the set: modes, atomicity, failures ------------------------------------------------

def _mode(path):
    return stat.S_IMODE(os.stat(path).st_mode)


def _snapshot(d):
    out = {}
    for name in sorted(os.listdir(d)):
        p = os.path.join(d, name)
        out[name] = open(p, "rb").read() if os.path.isfile(p) else "dir"
    return out


def test_default_modes_are_not_world_readable(tmp_path):
    _rep, _gate, paths = make(tmp_path)
    assert _mode(str(tmp_path / "out")) == 0o750
    assert set(_mode(p) for p in paths.values()) == {0o640}
    assert sorted(os.listdir(str(tmp_path / "out"))) == ["junit.xml", "report.html", "report.json", "report.oscal.json",
                                                         "report.sarif"]


def test_mode_is_settable_and_replaces_the_old_files_mode(tmp_path):
    rep, gate, paths = make(tmp_path)
    report.write_all(str(tmp_path / "out"), rep, gate, "high", mode="0600")
    assert set(_mode(p) for p in paths.values()) == {0o600}
    report.write_all(str(tmp_path / "private"), rep, gate, "high", mode="600")
    assert _mode(str(tmp_path / "private")) == 0o700
    report.write_all(str(tmp_path / "public"), rep, gate, "high", mode="0644")
    assert _mode(str(tmp_path / "public")) == 0o755


@pytest.mark.parametrize("bad", ["", "0o640", "rw-r-----", "0999", "12", "06400", "-640", None])
def test_mode_must_be_an_octal_string(bad):
    with pytest.raises(ValueError) as e:
        report.parse_mode(bad)
    assert "octal" in str(e.value)


def test_parse_mode_accepts_three_or_four_digits():
    assert report.parse_mode("0640") == 0o640 and report.parse_mode("750") == 0o750


def test_empty_report_dir_is_an_error(tmp_path):
    rep, gate, _paths = make(tmp_path)
    with pytest.raises(report.ReportWriteError) as e:
        report.write_all("", rep, gate, "high")
    assert "report_dir is empty" in str(e.value)


def test_failed_write_leaves_previous_set_and_no_temp_file(tmp_path):
    rep, gate, paths = make(tmp_path)
    out = str(tmp_path / "out")
    os.unlink(paths["html"])
    os.mkdir(paths["html"])  # report.html cannot be replaced
    before = _snapshot(out)
    rep2 = dict(rep, generated_at="2030-01-01T00:00:00Z")
    with pytest.raises(report.ReportWriteError) as e:
        report.write_all(out, rep2, gate, "high")
    assert "report.html" in str(e.value) and "not a regular file" in str(e.value)
    assert _snapshot(out) == before


def test_failed_rename_midway_rolls_back_the_set(tmp_path):
    """A rename that fails after others succeeded (report.html turned into a directory after the
    check): the reports already replaced are put back, the temp files and backups are gone."""
    rep, gate, paths = make(tmp_path)
    out = str(tmp_path / "out")
    os.unlink(paths["html"])
    os.mkdir(paths["html"])
    os.mkdir(os.path.join(paths["html"], "x"))  # a non-empty directory: no rename replaces it
    before = _snapshot(out)
    texts = report.render_all(dict(rep, generated_at="2030-01-01T00:00:00Z"), gate, "high")
    temps = dict((k, report._write_temp(out, texts[k], 0o640)) for k in ("json", "junit", "html"))
    with pytest.raises(OSError):
        report._commit(out, temps, paths)
    for t in temps.values():
        if os.path.exists(t):
            os.unlink(t)  # what write_all does with the temp files
    assert _snapshot(out) == before


def test_render_error_writes_nothing(tmp_path):
    rep, gate, paths = make(tmp_path)
    out = str(tmp_path / "out")
    before = _snapshot(out)
    broken = dict(rep, findings=rep["findings"] + [dict(rep["findings"][0], severity="catastrophic")])
    with pytest.raises(ValueError):
        report.write_all(out, broken, gate, "high")
    assert _snapshot(out) == before


def test_report_that_is_a_symlink_is_replaced_not_followed(tmp_path):
    rep, gate, paths = make(tmp_path)
    outside = tmp_path / "outside.html"
    outside.write_text("keep me")
    os.unlink(paths["html"])
    os.symlink(str(outside), paths["html"])
    report.write_all(str(tmp_path / "out"), rep, gate, "high")
    assert outside.read_text() == "keep me"
    assert not os.path.islink(paths["html"]) and _mode(paths["html"]) == 0o640


def test_report_dir_that_is_a_file_is_an_error(tmp_path):
    rep, gate, _paths = make(tmp_path)
    f = tmp_path / "afile"
    f.write_text("x")
    with pytest.raises(report.ReportWriteError) as e:
        report.write_all(str(f), rep, gate, "high")
    assert "not a directory" in str(e.value)


def test_every_rule_title_is_printable():
    assert all(report.printable(r.title) == r.title for r in RULES.values())


def test_forked_and_sequential_writing_give_the_same_set(tmp_path):
    """write_all renders report.sarif and report.oscal.json in a forked child: the same bytes as one process."""
    assert forked.usable()  # else both sets below would come from one process
    rep, gate, paths = make(tmp_path)
    forked_set = _snapshot(os.path.dirname(paths["json"]))
    report.write_all(str(tmp_path / "seq"), rep, gate, "high", parallel=False)
    assert _snapshot(str(tmp_path / "seq")) == forked_set
    assert sorted(forked_set) == sorted(name for _k, name in report.NAMES)  # no temp file left either way


def _fail_in_child(report_, gate, fail_on, sources):
    if os.getpid() == PARENT[0]:
        raise AssertionError("CHILD_REPORTS must be rendered in the forked child")
    raise OSError(28, "No space left on device")


PARENT = [os.getpid()]


def _with_child_renderer(tmp_path, monkeypatch, renderer):
    """A written set, its snapshot, and ``renderer`` in place of report.oscal.json's (a forked child renders it)."""
    assert forked.usable()
    rep, gate, paths = make(tmp_path)
    out = os.path.dirname(paths["json"])
    PARENT[0] = os.getpid()
    monkeypatch.setitem(report.RENDERERS, "oscal", renderer)
    return rep, gate, out, _snapshot(out)


def test_error_in_the_forked_child_writes_nothing(tmp_path, monkeypatch):
    """A report the child renders fails (as a full disk would): its error reaches the caller, the
    parent's temp files and the child's are removed, the previous set is unchanged."""
    rep, gate, out, before = _with_child_renderer(tmp_path, monkeypatch, _fail_in_child)
    with pytest.raises(OSError) as e:
        report.write_all(out, dict(rep, generated_at="2030-01-01T00:00:00Z"), gate, "high")
    assert e.value.errno == 28 and _snapshot(out) == before


def test_error_in_the_parent_removes_the_childs_temp_files(tmp_path):
    rep, gate, paths = make(tmp_path)
    out = os.path.dirname(paths["json"])
    before = _snapshot(out)
    broken = dict(rep, findings=rep["findings"] + [dict(rep["findings"][0], severity="catastrophic")])
    with pytest.raises(ValueError):  # report.html (the parent's) refuses the severity; the child finished its two
        report.write_all(out, broken, gate, "high")
    assert _snapshot(out) == before


def _die_in_child(report_, gate, fail_on, sources):
    if os.getpid() != PARENT[0]:
        os.kill(os.getpid(), signal.SIGKILL)  # as the OOM killer would, after the first temp file was written
    raise AssertionError("CHILD_REPORTS must be rendered in the forked child")


def test_killed_child_is_a_write_error_and_leaves_no_temp_file(tmp_path, monkeypatch):
    rep, gate, out, before = _with_child_renderer(tmp_path, monkeypatch, _die_in_child)
    with pytest.raises(report.ReportWriteError) as e:
        report.write_all(out, dict(rep, generated_at="2030-01-01T00:00:00Z"), gate, "high")
    assert "report.sarif and report.oscal.json could not be written" in str(e.value) and "without an answer" in str(e.value)
    assert _snapshot(out) == before  # the child's temp files were the parent's to remove


def test_failed_set_in_a_new_directory_removes_the_directory(tmp_path):
    rep, gate, _paths = make(tmp_path)
    broken = dict(rep, findings=rep["findings"] + [dict(rep["findings"][0], severity="catastrophic")])
    new = tmp_path / "new" / "reports"
    with pytest.raises(ValueError):
        report.write_all(str(new), broken, gate, "high")
    assert not new.exists()


def test_non_finite_numbers_are_written_as_strings_never_bare_nan(tmp_path):
    """A hostile guest's evidence may carry NaN or infinity (Ansible's JSON decoder takes them): report.json,
    report.sarif and report.oscal.json stay RFC 8259 JSON that strict parsers (SARIF uploads) accept."""
    rep, gate, _paths = make(tmp_path)
    rep["findings"][0]["evidence"] = {"age_days": float("nan"), "limits": [float("inf"), -float("inf"), 1.5]}
    paths = report.write_all(str(tmp_path / "nan"), rep, gate, "high")

    def strict(name):
        raise ValueError("bare %s" % name)
    for k in ("json", "sarif", "oscal"):
        with open(paths[k]) as f:
            json.loads(f.read(), parse_constant=strict)
    with open(paths["json"]) as f:
        assert json.load(f)["findings"][0]["evidence"] == {"age_days": "nan", "limits": ["inf", "-inf", 1.5]}


def test_gone_findings_from_the_previous_report_are_shown_escaped(tmp_path):
    rep, gate, _paths = make(tmp_path)
    hostile = "RB-01\x1b[31m\u202e"
    rep["since_previous"] = {"previous": {"generated_at": "t", "policy_digest": "d", "path": "r.json", "total": 1},
                             "counts": {"new": 0, "fixed": 0, "still_failing": 0, "gone": 1}, "new": [], "fixed": [],
                             "still_failing": [], "gone": [{"rule": hostile, "subject": {"kind": "domain\x00", "id": "x"},
                                                            "severity": "high", "before": "fail", "now": "waived\x1b"}]}
    html = report.html(rep, gate, "high")
    assert "\x1b" not in html and "\u202e" not in html and "\x00" not in html
    assert "RB-01\\x1b[31m\\u202e domain\\x00:x (waived\\x1b now)" in html


def _partial(tmp_path):
    """A run whose policy disables RB-01 (a failing rule here: web1 has no <genid/>) and DIV-09, and whose --tags
    picked the rollback area and DIV-09 only: RB-01 and DIV-09 have no finding, nor has any other area's rule."""
    d = E.domain(replace={"<genid/>": ""})
    pol = policy.load_policy({"rules": {"RB-01": {"enabled": False}, "DIV-09": {"enabled": "no"}}})
    only = engine.select(["rollback", "DIV-09"], [])
    findings = engine.evaluate(pol, E.fleet([d], {"web1": E.guest("web1", facts=E.guest_facts(1))}), now=E.NOW, only=only)
    rep = report.build(pol, findings, E.NOW, extra={"fail_on": "high", "rules_selected": sorted(only)})
    gate = engine.gate(findings, "high")
    return rep, gate, report.write_all(str(tmp_path / "out"), rep, gate, "high")


def test_rules_not_evaluated_are_reported_with_their_reason_never_as_a_pass(tmp_path):
    """A disabled rule, and one --tags left out, had no finding at all: report.json, junit.xml and report.html
    were silent about them, and the HTML said PASSED as for a full audit."""
    rep, gate, paths = _partial(tmp_path)
    assert gate == [] and "RB-01" not in set(f["rule"] for f in rep["findings"])
    with open(paths["json"]) as f:
        skipped = dict((e["rule"], e) for e in json.load(f)["rules_not_evaluated"])
    assert skipped["RB-01"] == {"rule": "RB-01", "area": "rollback", "severity": "high", "reason": engine.NOT_ENABLED}
    assert skipped["DIV-09"]["reason"] == engine.NOT_ENABLED
    assert skipped["ISO-01"]["reason"] == skipped["DIV-01"]["reason"] == engine.NOT_SELECTED
    assert not any(r.startswith("RB-") and r != "RB-01" for r in skipped)
    assert set(skipped) | set(f["rule"] for f in rep["findings"]) == set(engine.RULES)
    root = ET.parse(paths["junit"]).getroot()
    (case,) = [c for c in root.iter("testcase") if c.get("name") == "RB-01 (not evaluated)"]
    assert case.find("skipped").get("message") == "not evaluated: " + engine.NOT_ENABLED
    assert int(root.get("tests")) == len(root.findall(".//testcase")) == len(rep["findings"]) + len(skipped)
    for suite in root.iter("testsuite"):
        assert int(suite.get("tests")) == len(suite.findall("testcase"))
        assert int(suite.get("skipped")) == len(suite.findall("testcase/skipped"))
    with open(paths["html"]) as f:
        html = f.read()
    assert "PASSED: no failing or erroring finding at severity high or above among the rules evaluated." in html
    line = re.search(r'<div class="verdict partial" id="not-evaluated">(.*?)</div>', html, re.S).group(1)
    assert "%d of %d rules" % (len(skipped), len(engine.RULES)) in line
    assert re.search(r"disabled by the policy \(enabled: false\): DIV-09, RB-01", line)


def test_a_full_run_says_nothing_is_left_out(tmp_path):
    rep, gate, paths = make(tmp_path)
    assert rep["rules_not_evaluated"] == []
    with open(paths["html"]) as f:
        assert 'id="not-evaluated"' not in f.read()
    assert "(not evaluated)" not in open(paths["junit"]).read()


@pytest.mark.parametrize("mode", ["0666", "0662", "777", "0646"])
def test_a_mode_that_lets_every_user_write_is_refused(tmp_path, mode):
    """0666 made every report world-writable and the directory the audit created 0777: any local user could rewrite
    the verdict (or swap the files) after the run, before CI read them."""
    with pytest.raises(ValueError) as e:
        report.parse_mode(mode)
    assert "lets every user rewrite the reports" in str(e.value)
    rep, gate, _paths = make(tmp_path)
    with pytest.raises(ValueError):
        report.write_all(str(tmp_path / "shared"), rep, gate, "high", mode=mode)
    assert not os.path.exists(str(tmp_path / "shared"))
    assert report.parse_mode("0664") == 0o664  # a group the operator chose may write
