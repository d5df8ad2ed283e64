# -*- coding: utf-8 -*-
# Copyright: (c) 2026, vmguard.hardening developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Reports: report.json (vmguard.report/v1), junit.xml (one testcase per rule x subject), a
self-contained report.html (no external assets), report.sarif (SARIF 2.1.0, audit/sarif.py) and
report.oscal.json (OSCAL assessment results, audit/oscal.py). JSON and JUnit need only the standard
library; the HTML is rendered with Jinja2, which every Ansible controller has.

report.html embeds the findings as JSON and renders them with a small script: views by area or by
VM, filters (status, severity, text, since the previous run) that the section counts follow,
sections that say when nothing matches, and rows paged (PAGE_ROWS) so a fleet of a thousand domains
stays fast. "Since the previous run" (audit/delta.py) is in every format: report.json's
``since_previous`` and each finding's ``since_previous``, JUnit properties, SARIF baselineState and
properties, OSCAL props.

Guest data (process names, unit names, ...) reaches finding messages and evidence. Everything a
human or a CI parser reads (JUnit, HTML, the console) shows control characters, terminal escapes
and other invisible or XML-invalid code points as text (``\\x1b[31m``); report.json keeps the data
as it is (JSON escapes it).

The reports are written as a set: all rendered first, each written to a private temp file in
the report directory, then renamed; on any failure the temp files are removed and the previous set
stays as it was. (fsutil.atomic_write renames each file as soon as it is written, so it cannot
give a set; the set keeps its rules: mkstemp in the target directory, mode set before any byte,
fsync, rename that never follows a link, directory fsynced.)
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import errno
import hashlib
import json
import math
import os
import re
import stat
import tempfile
import unicodedata

from ansible_collections.vmguard.hardening.plugins.module_utils.audit.engine import SCHEMA, not_evaluated, summarize
from ansible_collections.vmguard.hardening.plugins.module_utils.common.fsutil import fsync_dir
from ansible_collections.vmguard.hardening.plugins.module_utils.audit.status import AREAS, SEVERITIES, SKIPPED, STATUSES
from ansible_collections.vmguard.hardening.plugins.module_utils.common.timeutil import iso
from ansible_collections.vmguard.hardening.plugins.module_utils.audit.rules import RULES
from ansible_collections.vmguard.hardening.plugins.module_utils.audit import oscal, sarif
from ansible_collections.vmguard.hardening.plugins.module_utils.common import forked
from ansible_collections.vmguard.hardening.plugins.module_utils.audit.delta import CHANGES

NAMES = (("json", "report.json"), ("junit", "junit.xml"), ("html", "report.html"), ("sarif", "report.sarif"),
         ("oscal", "report.oscal.json"))
DEFAULT_MODE = "0640"
_MODE = re.compile(r"^0?[0-7]{3}$")
TEMP_PREFIX = ".vmguard-report-"

# Unicode categories shown escaped: controls (C0, DEL, C1), format characters (bidi overrides,
# zero-width), surrogates, unassigned code points and noncharacters (U+FFFE), line/paragraph separators.
_ESCAPED_CATEGORIES = frozenset(("Cc", "Cf", "Cs", "Cn", "Zl", "Zp"))


def _escape_char(ch):
    n = ord(ch)
    if n < 0x100:
        return "\\x%02x" % n
    if n < 0x10000:
        return "\\u%04x" % n
    return "\\U%08x" % n


def printable(value):
    """``value`` as text safe for a terminal, an XML 1.0 document and an HTML page: every control,
    format, surrogate, unassigned or separator code point is replaced by its escape as text."""
    if value is None:
        return ""
    if not isinstance(value, str):
        value = str(value)
    if value.isprintable():  # no control, format, surrogate, unassigned or separator code point
        return value
    return "".join(_escape_char(c) if unicodedata.category(c) in _ESCAPED_CATEGORIES else c for c in value)


def parse_mode(text):
    """An octal permission string ("0640", "640") as an int; ValueError naming the value otherwise, and for a mode
    that lets every user write: anyone could then rewrite the verdict in the reports (and, in a report directory
    the audit creates with the matching bits, replace them) after the run, for CI to read."""
    text = "" if text is None else str(text).strip()
    if not _MODE.match(text):
        raise ValueError("report mode %r is not an octal permission string such as '0640'" % (text,))
    mode = int(text, 8)
    if mode & 0o002:
        raise ValueError("report mode %r lets every user rewrite the reports (the others' write bit): use e.g. '0640' "
                         "or '0644'" % (text,))
    return mode


def dir_mode(file_mode):
    """The mode for a report directory created for files of ``file_mode``: search where read is allowed."""
    mode = file_mode | 0o700
    for read, search in ((0o040, 0o010), (0o004, 0o001)):
        if mode & read:
            mode |= search
    return mode


def policy_digest(policy):
    return hashlib.sha256(json.dumps(policy, sort_keys=True, default=str).encode("utf-8")).hexdigest()


def build(policy, findings, now, extra=None):
    """report.json's dict. ``rules_not_evaluated`` lists the rules without a finding because the policy disables
    them or the selection (``extra["rules_selected"]``) left them out, each with its reason: every report says
    so, so that their absence never reads as a pass."""
    report = {
        "schema": SCHEMA,
        "generated_at": iso(now),
        "policy_digest": policy_digest(policy),
        "summary": summarize(findings),
        "rules_not_evaluated": not_evaluated(policy, (extra or {}).get("rules_selected")),
        "findings": findings,
    }
    if extra:
        report.update(extra)
    return report


def not_evaluated_groups(report):
    """[(reason, [rule id, ...]), ...] of report.json's rules_not_evaluated, reasons in first-seen order."""
    groups = {}
    for e in report.get("rules_not_evaluated") or ():
        groups.setdefault(e["reason"], []).append(e["rule"])
    return list(groups.items())


def restart_note(finding):
    """One line on which definition a finding is about, or "" when that needs no note."""
    if finding.get("pending_restart"):
        return "pending restart: takes effect at next start (the persistent definition is already fixed)"
    if finding.get("definition") == "persistent":
        return "persistent definition: takes effect at next start"
    return ""


# JUnit XML is written in one pass as text, the way xml.etree.ElementTree.tostring(encoding="unicode")
# serializes the same tree (attributes in the order given, " />" for an empty element), without
# building the tree of 100,000+ elements first: byte for byte what the tree version wrote.
def _xml_text(text):
    if "&" in text:
        text = text.replace("&", "&amp;")
    if "<" in text:
        text = text.replace("<", "&lt;")
    if ">" in text:
        text = text.replace(">", "&gt;")
    return text


def _xml_attr(text):
    text = _xml_text(text)
    if '"' in text:
        text = text.replace('"', "&quot;")
    if "\r" in text:
        text = text.replace("\r", "&#13;")
    if "\n" in text:
        text = text.replace("\n", "&#10;")
    if "\t" in text:
        text = text.replace("\t", "&#09;")
    return text


def _xml_open(tag, attrs):
    return "<%s%s" % (tag, "".join(' %s="%s"' % (k, _xml_attr(v)) for k, v in attrs))


def _xml_empty(tag, attrs):
    return _xml_open(tag, attrs) + " />"


class _Memo(dict):
    """``fn(value)`` computed once per distinct str within one render (the corpus repeats a few
    hundred rule ids, subject names and messages 25,000 times). Only exact str values are kept: for
    them equal means the same text (True == 1, and a str subclass may format differently), any
    other value goes through ``fn`` each time."""

    def __init__(self, fn):
        dict.__init__(self)
        self.fn = fn

    def __missing__(self, key):
        value = self[key] = self.fn(key)
        return value

    def __call__(self, value):
        return self[value] if value.__class__ is str else self.fn(value)


_CASE_PROPERTIES = ("definition", "pending_restart", "since_previous")
# Values a testcase's properties block is kept for, by value (see _Memo).
_PLAIN = frozenset((str, bool, type(None)))


def _case_properties(f):
    """A testcase's <properties> (definition, pending_restart, since_previous), "" when it has none."""
    props = [(k, f.get(k)) for k in _CASE_PROPERTIES if f.get(k) is not None]
    if not props:
        return ""
    return "<properties>%s</properties>" % "".join(
        _xml_empty("property", (("name", name), ("value", ("true" if value else "false") if isinstance(value, bool) else printable(value))))
        for name, value in props)


class _Cases(object):
    """Writes junit.xml's testcases. Escaping distributes over concatenation (printable and the XML
    escapes map each code point on its own), so an attribute such as "<rule> <subject id>" is built
    from its parts escaped once per distinct text (_Memo); the properties block once per distinct
    (definition, pending_restart, since_previous)."""

    def __init__(self):
        self.attr = _Memo(lambda v: _xml_attr(printable(v)))
        self.text = _Memo(lambda v: _xml_text(printable(v)))
        self._props = {}

    def properties(self, f):
        d, r, c = f.get("definition"), f.get("pending_restart"), f.get("since_previous")
        if not (d.__class__ in _PLAIN and r.__class__ in _PLAIN and c.__class__ in _PLAIN):
            return _case_properties(f)
        key = (d, r, c)
        text = self._props.get(key)
        if text is None:
            text = self._props[key] = _case_properties(f)
        return text

    def __call__(self, out, f):
        attr = self.attr
        rule, sid, status = attr(f["rule"]), attr(f["subject"]["id"]), f["status"]
        head = '<testcase classname="%s.%s" name="%s %s"' % (attr(f["area"]), rule, rule, sid)
        props = self.properties(f)
        if status not in ("fail", "error") and status not in SKIPPED and not props:
            out.append(head + " />")
            return
        out.append(head + ">")
        if props:
            out.append(props)
        if status in ("fail", "error"):
            lines = [self.text(f["message"])]
            note = restart_note(f)
            if note:
                lines.append(_xml_text(note))
            lines.append("remediation: %s" % (self.text(f.get("remediation")) or "-"))
            tag = "failure" if status == "fail" else "error"
            out.append('<%s message="%s" type="%s">%s</%s>' % (tag, attr(f["message"]), attr(f["severity"]), "\n".join(lines), tag))
        elif status in SKIPPED:
            out.append('<skipped message="%s: %s" />' % (attr(status), attr(f["message"])))
        out.append("</testcase>")


def _suite_properties(out, area, items, delta):
    """Since the previous run, for this suite's area: counts of new / fixed / still failing findings
    and of those that failed before and are gone; nothing when there is no previous report."""
    if not (delta and delta.get("previous")):
        return
    out.append("<properties>")
    out.append(_xml_empty("property", (("name", "since_previous.report"),
                                       ("value", printable(delta["previous"].get("generated_at"))))))
    counts = dict((change, 0) for change in CHANGES[:3])
    for f in items:  # one pass; most findings have no since_previous
        value = f.get("since_previous")
        if value is not None:
            for change in counts:
                if value == change:
                    counts[change] += 1
    for change, n in counts.items():
        out.append(_xml_empty("property", (("name", "since_previous.%s" % change), ("value", str(n)))))
    gone = sum(1 for e in delta.get("gone", []) if RULES.get(e["rule"]) is not None and RULES[e["rule"]].area == area)
    out.append(_xml_empty("property", (("name", "since_previous.gone"), ("value", str(gone)))))
    out.append("</properties>")


def _not_evaluated_case(out, entry):
    """A skipped testcase for a rule the run did not evaluate (CI shows it skipped, with why, not passed)."""
    rule = _xml_attr(printable(entry["rule"]))
    out.append('<testcase classname="%s.%s" name="%s (not evaluated)"><skipped message="not evaluated: %s" /></testcase>'
               % (_xml_attr(printable(entry["area"])), rule, rule, _xml_attr(printable(entry["reason"]))))


def junit(report):
    findings = report["findings"]
    by_area = dict((a, []) for a in AREAS)
    for f in findings:
        by_area.setdefault(f["area"], []).append(f)
    missing = {}
    for e in report.get("rules_not_evaluated") or ():
        missing.setdefault(e["area"], []).append(e)
        by_area.setdefault(e["area"], [])
    head = (("name", "vmguard"), ("tests", str(len(findings) + sum(len(v) for v in missing.values()))))
    if not any(by_area.values()) and not missing:
        return _xml_empty("testsuites", head)
    out = [_xml_open("testsuites", head) + ">"]
    case = _Cases()
    for area, items in by_area.items():
        absent = missing.get(area) or []
        if not items and not absent:
            continue
        failures = errors = 0
        skipped = len(absent)
        for f in items:  # one pass
            status = f["status"]
            if status == "fail":
                failures += 1
            elif status == "error":
                errors += 1
            if status in SKIPPED:
                skipped += 1
        out.append(_xml_open("testsuite", (
            ("name", "vmguard.%s" % printable(area)), ("tests", str(len(items) + len(absent))),
            ("failures", str(failures)), ("errors", str(errors)), ("skipped", str(skipped)),
            ("timestamp", report["generated_at"]))) + ">")
        _suite_properties(out, area, items, report.get("since_previous"))
        for f in items:
            case(out, f)
        for e in absent:
            _not_evaluated_case(out, e)
        out.append("</testsuite>")
    out.append("</testsuites>")
    return "".join(out)


HTML = r"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>vmguard report {{ r.generated_at }}</title>
<style>
:root { --pass:#2e7d32; --fail:#c62828; --error:#6a1b9a; --waived:#ef6c00; --not_applicable:#78909c; }
* { box-sizing: border-box; }
html, body { overflow-x: hidden; }
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; margin: 0; color: #1f2933; background: #f5f7fa; }
header { background: #102a43; color: #fff; padding: 18px 28px; }
header h1 { margin: 0 0 4px; font-size: 22px; }
header .meta { opacity: .8; font-size: 12px; overflow-wrap: anywhere; }
main { padding: 20px 28px; max-width: 1400px; margin: auto; }
.cards { display: flex; gap: 12px; flex-wrap: wrap; margin-bottom: 18px; }
.card { background: #fff; border-radius: 8px; padding: 12px 16px; min-width: 120px; box-shadow: 0 1px 3px rgba(0,0,0,.12); }
.card .n { font-size: 26px; font-weight: 600; }
.card.pass .n { color: var(--pass); } .card.fail .n { color: var(--fail); } .card.error .n { color: var(--error); }
.card.waived .n { color: var(--waived); } .card.not_applicable .n { color: var(--not_applicable); }
.verdict { font-weight: 600; padding: 10px 14px; border-radius: 8px; margin-bottom: 18px; }
.verdict.bad { background: #ffebee; color: var(--fail); } .verdict.good { background: #e8f5e9; color: var(--pass); }
.verdict.partial { background: #fff8e1; color: #8d6e00; overflow-wrap: anywhere; }
.grid { display: grid; grid-template-columns: repeat(auto-fit, minmax(300px, 1fr)); gap: 16px; margin-bottom: 18px; }
.panel { background: #fff; border-radius: 8px; padding: 14px 16px; box-shadow: 0 1px 3px rgba(0,0,0,.12); min-width: 0; }
.panel h2 { font-size: 15px; margin: 0 0 10px; }
.bar { display: flex; height: 18px; border-radius: 4px; overflow: hidden; background: #e4e7eb; }
.bar span { display: block; height: 100%; }
.row { display: grid; grid-template-columns: 110px 1fr 60px; gap: 10px; align-items: center; margin: 6px 0; font-size: 13px; }
.legend span { display: inline-block; margin-right: 12px; font-size: 12px; }
.legend i { display: inline-block; width: 10px; height: 10px; border-radius: 2px; margin-right: 4px; vertical-align: middle; }
.delta { display: flex; gap: 8px; flex-wrap: wrap; }
.delta button { font: inherit; border: 1px solid #bcccdc; background: #f0f4f8; border-radius: 6px; padding: 6px 10px; cursor: pointer; }
.delta b { font-size: 18px; margin-right: 4px; }
.gone { font-size: 12px; color: #52606d; overflow-wrap: anywhere; }
.tablebox { overflow-x: auto; max-width: 100%; }
table { width: 100%; border-collapse: collapse; background: #fff; font-size: 13px; table-layout: auto; }
th, td { text-align: left; padding: 6px 8px; border-bottom: 1px solid #e4e7eb; vertical-align: top; }
th { background: #f0f4f8; }
td.rule { white-space: nowrap; font-weight: 600; }
td.msg { overflow-wrap: anywhere; min-width: 14em; }
.st { font-weight: 600; text-transform: uppercase; font-size: 11px; padding: 2px 6px; border-radius: 4px; color: #fff; white-space: nowrap; }
.st.pass { background: var(--pass); } .st.fail { background: var(--fail); } .st.error { background: var(--error); }
.st.waived { background: var(--waived); } .st.not_applicable { background: var(--not_applicable); }
.sev { font-size: 11px; text-transform: uppercase; } .sev.critical { color: #b71c1c; font-weight: 700; } .sev.high { color: #c62828; }
.filters { display: flex; gap: 10px; flex-wrap: wrap; align-items: center; margin: 10px 0 14px; background: #fff;
  padding: 10px 12px; border-radius: 8px; box-shadow: 0 1px 3px rgba(0,0,0,.12); }
.filters label { font-size: 12px; } .filters input[type=search] { padding: 5px 8px; width: 260px; max-width: 100%; }
#shown { font-size: 12px; color: #52606d; width: 100%; }
section.group { margin-bottom: 18px; } section.group h2 { font-size: 16px; margin: 8px 0; overflow-wrap: anywhere; }
.rem { color: #52606d; font-size: 12px; } .subj { font-family: ui-monospace, monospace; font-size: 12px; overflow-wrap: anywhere; }
.count { color: #52606d; font-weight: normal; font-size: 13px; }
.empty, .more { color: #52606d; font-style: italic; margin: 4px 0 0; }
.badge { font-size: 11px; padding: 1px 6px; border-radius: 10px; white-space: nowrap; border: 1px solid; margin-right: 4px; }
.badge.restart { color: #8d6e00; background: #fff8e1; } .badge.persistent { color: #0d47a1; background: #e3f2fd; }
.badge.new { color: #b71c1c; background: #ffebee; } .badge.fixed { color: #1b5e20; background: #e8f5e9; }
.badge.still_failing { color: #5d4037; background: #efebe9; }
#moreall { font: inherit; margin: 8px 0 24px; padding: 6px 12px; }
@media (max-width: 640px) {
  header { padding: 14px 14px; } main { padding: 12px 10px; }
  .row { grid-template-columns: 80px 1fr 44px; }
  table, thead, tbody, tr, td { display: block; width: 100%; }
  thead { display: none; }
  tr { border-bottom: 2px solid #d9e2ec; padding: 4px 0; }
  td { border: 0; padding: 2px 8px; }
  td.msg { min-width: 0; }
  td[data-label]::before { content: attr(data-label) ": "; color: #7b8794; font-size: 11px; }
}
</style></head>
<body>
<header><h1>vmguard.hardening audit</h1>
<div class="meta">generated {{ r.generated_at }} &middot; schema {{ r.schema }} &middot; policy {{ r.policy_digest[:12] }}
&middot; fail on {{ fail_on }} and above</div></header>
<main>
<div class="verdict {{ 'bad' if gate else 'good' }}">
{% if gate %}FAILED: {{ gate | length }} finding(s) failed or errored at severity {{ fail_on }} or above.
{% else %}PASSED: no failing or erroring finding at severity {{ fail_on }} or above
{{- ' among the rules evaluated' if not_evaluated }}.{% endif %}</div>
{% if not_evaluated %}<div class="verdict partial" id="not-evaluated">NOT EVALUATED:
{{ r.rules_not_evaluated | length }} of {{ rule_count }} rules have no verdict in this report (no finding, no pass):
{% for reason, ids in not_evaluated %}{{ reason }}: {{ ids | join(', ') }}{{ '; ' if not loop.last }}{% endfor %}.</div>
{% endif %}<div class="cards">
{% for s in statuses %}
<div class="card {{ s }}"><div class="n">{{ r.summary[s] }}</div><div>{{ s | replace('_', ' ') }}</div></div>
{% endfor %}
<div class="card"><div class="n">{{ r.summary.total }}</div><div>findings</div></div>
</div>
<div class="grid">
<div class="panel"><h2>By area</h2>
{% for area, c in r.summary.by_area.items() %}{% set tot = c.values() | sum %}
<div class="row"><div>{{ area }}</div><div class="bar">
{% for s in statuses if c[s] %}
<span style="width:{{ 100.0 * c[s] / tot }}%;background:var(--{{ s }})" title="{{ c[s] }} {{ s }}"></span>
{% endfor %}
</div><div>{{ tot }}</div></div>
{% endfor %}
<div class="legend">
{% for s in statuses %}<span><i style="background:var(--{{ s }})"></i>{{ s | replace('_', ' ') }}</span>{% endfor %}
</div>
</div>
<div class="panel"><h2>By severity</h2>
{% for sev in severities | reverse %}{% set c = r.summary.by_severity[sev] %}{% set tot = c.values() | sum %}
<div class="row"><div><span class="sev {{ sev }}">{{ sev }}</span></div><div class="bar">
{% for s in statuses if c[s] %}
<span style="width:{{ 100.0 * c[s] / tot }}%;background:var(--{{ s }})" title="{{ c[s] }} {{ s }}"></span>
{% endfor %}
</div><div>{{ tot }}</div></div>
{% endfor %}
{% if builds %}<h2 style="margin-top:14px">Guests per image build (DIV-07)</h2>
{% for b, s in builds.items() %}
<div class="row"><div class="subj" title="{{ b | p }}">{{ (b | p)[:16] }}</div>
<div class="bar"><span style="width:{{ 100.0 * s.share }}%;background:#486581"></span></div><div>{{ s.guests }}</div></div>
{% endfor %}{% endif %}
</div>
<div class="panel" id="since"><h2>Since the previous run</h2>
{% if delta.previous %}
<div class="meta count">compared with {{ delta.previous.path | p or 'report.json' }} of {{ delta.previous.generated_at | p }}
({{ delta.previous.total }} findings)</div>
<div class="delta">
{% for c in changes %}<button type="button" data-change="{{ c }}"><b>{{ delta.counts[c] }}</b>{{ c | replace('_', ' ') }}</button>
{% endfor %}</div>
{% if delta.gone %}<p class="gone">{{ delta.counts.gone }} failing before and not judged now (subject gone, rule not selected,
waived or not applicable):
{% for g in delta.gone[:30] %}{{ g.rule | p }} {{ g.subject.kind | p }}:{{ g.subject.id | p }}
{{- ' (%s now)' % (g.now | p) if g.now }}{{ '; ' if not loop.last }}{% endfor %}
{% if delta.counts.gone > 30 %} and {{ delta.counts.gone - 30 }} more (report.json){% endif %}</p>{% endif %}
{% elif delta.error %}<p class="empty">No comparison: {{ delta.error | p }}</p>
{% else %}<p class="empty">No previous report to compare with (this is the first run into this report directory).</p>
{% endif %}
</div></div>
<div class="filters" id="filters">
<label>view <select id="view"><option value="area">by area</option><option value="vm">by VM</option></select></label>
<input type="search" id="q" placeholder="filter: rule, subject or text" aria-label="filter">
{% for s in statuses %}
<label><input type="checkbox" class="fs" value="{{ s }}" {{ '' if s in ('pass', 'not_applicable') else 'checked' }}>
{{ s | replace('_', ' ') }}</label>
{% endfor %}
<label>severity &ge; <select id="sev">{% for sev in severities %}<option value="{{ loop.index0 }}">{{ sev }}</option>{% endfor %}</select></label>
<label>since previous run <select id="change" {{ '' if delta.previous else 'disabled' }}><option value="any">any</option>
{% for c in changes %}<option value="{{ c }}">{{ c | replace('_', ' ') }}</option>{% endfor %}</select></label>
<span id="shown" aria-live="polite"></span>
</div>
<noscript><p class="empty">The findings table needs JavaScript; report.json and junit.xml beside this file hold every finding.</p></noscript>
<div id="sections"></div>
<button type="button" id="moreall" hidden>show more rows</button>
</main>
<script type="application/json" id="data">{{ data }}</script>
<script>
(function () {
  'use strict';
  var D = JSON.parse(document.getElementById('data').textContent);
  var T = D.strings, PAGE = D.page, LOW = null, RULEREM = {};
  Object.keys(D.rules).forEach(function (r) { RULEREM[r] = D.rules[r][1].toLowerCase(); });
  var F = D.findings.map(function (f) {
    return {r: T[f.r], s: f.s, v: f.v, k: T[f.k], i: T[f.i], m: T[f.m], x: f.x === undefined ? undefined : T[f.x], b: f.b, c: f.c,
            n: [f.r, f.m, f.x]};
  });
  // The text filter: in the rule, "kind: id", the message or the remediation (each text lower-cased once).
  function matchText(f, text) {
    if (!LOW) { LOW = T.map(function (s) { return s.toLowerCase(); }); }
    if (LOW[f.n[0]].indexOf(text) >= 0 || LOW[f.n[1]].indexOf(text) >= 0) { return true; }
    if ((f.n[2] === undefined ? RULEREM[f.r] || '' : LOW[f.n[2]]).indexOf(text) >= 0) { return true; }
    return (f.k + ': ' + f.i).toLowerCase().indexOf(text) >= 0;
  }
  var q = document.getElementById('q'), sev = document.getElementById('sev'), view = document.getElementById('view');
  var change = document.getElementById('change'), box = document.getElementById('sections');
  var shown = document.getElementById('shown'), moreall = document.getElementById('moreall');
  var boxes = Array.prototype.slice.call(document.querySelectorAll('.fs'));
  function remOf(f) { return f.x === undefined ? (D.rules[f.r] || ['', ''])[1] : f.x; }
  var budget = PAGE;
  function esc(s) {
    return String(s).replace(/[&<>"']/g, function (c) { return '&#' + c.charCodeAt(0) + ';'; });
  }
  function row(f) {
    var rule = D.rules[f.r] || ['', ''], rem = remOf(f), badges = '';
    if (f.b) { badges += '<span class="badge ' + f.b + '" title="' + esc(D.notes[f.b]) + '">' + esc(D.notes[f.b].split(':')[0]) + '</span>'; }
    if (f.c) { badges += '<span class="badge ' + f.c + '">' + f.c.replace('_', ' ') + '</span>'; }
    return '<tr data-status="' + f.s + '" data-sev="' + f.v + '"><td class="rule" data-label="rule" title="' + esc(rule[0]) + '">' +
      esc(f.r) + '</td><td data-label="status"><span class="st ' + f.s + '">' + f.s.replace('_', ' ') + '</span></td>' +
      '<td data-label="severity"><span class="sev ' + D.severities[f.v] + '">' + D.severities[f.v] + '</span></td>' +
      '<td class="subj" data-label="subject">' + esc(f.k + ': ' + f.i) + '</td><td class="msg">' + badges + esc(f.m) +
      (rem ? '<div class="rem">&rarr; ' + esc(rem) + '</div>' : '') + '</td></tr>';
  }
  var HEAD = '<div class="tablebox"><table><thead><tr><th>rule</th><th>status</th><th>severity</th><th>subject</th>' +
    '<th>message / remediation</th></tr></thead><tbody>';
  function render() {
    var t0 = performance.now(), text = q.value.toLowerCase(), min = parseInt(sev.value, 10), ch = change.value, st = {};
    boxes.forEach(function (b) { if (b.checked) { st[b.value] = true; } });
    var out = [], left = budget, total = 0, hidden = 0;
    D.views[view.value].forEach(function (g) {
      var hits = g[1].filter(function (i) {
        var f = F[i];
        return st[f.s] && f.v >= min && (ch === 'any' || f.c === ch) && (!text || matchText(f, text));
      });
      total += hits.length;
      var h = '<section class="group" data-shown="' + hits.length + '" data-total="' + g[1].length + '"><h2>' + esc(g[0]) +
        ' <span class="count">(' + hits.length + ' of ' + g[1].length + ' findings match the filters)</span></h2>';
      if (!hits.length) {
        h += '<p class="empty">No finding in this section matches the filters.</p>';
      } else {
        var take = hits.slice(0, Math.max(left, 0));
        left -= take.length;
        hidden += hits.length - take.length;
        if (take.length) { h += HEAD + take.map(function (i) { return row(F[i]); }).join('') + '</tbody></table></div>'; }
        if (hits.length > take.length) {
          h += '<p class="more">' + (hits.length - take.length) + ' more matching findings: use "show more rows" below or narrow the filters.</p>';
        }
      }
      out.push(h + '</section>');
    });
    box.innerHTML = out.join('');
    shown.textContent = total + ' of ' + F.length + ' findings match the filters' + (hidden ? ' (' + (total - hidden) + ' rows shown)' : '');
    moreall.hidden = !hidden;
    document.body.setAttribute('data-render-ms', (performance.now() - t0).toFixed(1));  // how long this took
  }
  function refilter() { budget = PAGE; render(); }
  q.addEventListener('input', refilter);  // every key; the others once per change
  [sev, view, change].concat(boxes).forEach(function (el) { el.addEventListener('change', refilter); });
  moreall.addEventListener('click', function () { budget += PAGE * 5; render(); });
  Array.prototype.forEach.call(document.querySelectorAll('#since button[data-change]'), function (b) {
    b.addEventListener('click', function () {
      change.value = b.dataset.change;
      boxes.forEach(function (x) { x.checked = true; });
      refilter();
      document.getElementById('filters').scrollIntoView();
    });
  });
  render();
  document.body.setAttribute('data-ready-ms', performance.now().toFixed(1));  // since the navigation started
})();
</script>
</body></html>
"""


# Rows a section shows before "show more rows" (the corpus report has ~25,000 findings).
PAGE_ROWS = 200
RESTART_NOTES = {
    "restart": "pending restart: takes effect at next start (the persistent definition is already fixed)",
    "persistent": "persistent definition: takes effect at next start",
}
# Subjects that are no VM, in the order the "by VM" view lists them after the VMs.
OTHER_KINDS = ("hypervisor", "image", "fleet")


def _badge(f):
    if f.get("pending_restart"):
        return "restart"
    if f.get("definition") == "persistent":
        return "persistent"
    return ""


def vm_of(subject, guest_domains):
    """The VM a subject belongs to ("hv/domain"), or None when it is no VM (hypervisor, image, fleet).
    A guest is the domain its inventory names (``guest_domains``: guest -> "hv/domain"), else itself."""
    if subject["kind"] == "domain":
        return subject["id"]
    if subject["kind"] == "guest":
        return (guest_domains or {}).get(subject["id"]) or subject["id"]
    return None


def views(findings, guest_domains=None):
    """{"area": [[label, [index, ...]], ...], "vm": [...]}: the findings' indexes grouped by area (in
    AREAS order) and by VM (VMs sorted, then hypervisors, images and fleet subjects)."""
    by_area = dict((a, []) for a in AREAS)
    vms, others = {}, {}
    guests_of = {}
    for i, f in enumerate(findings):
        by_area.setdefault(f["area"], []).append(i)
        vm = vm_of(f["subject"], guest_domains)
        if vm is None:
            others.setdefault((f["subject"]["kind"], f["subject"]["id"]), []).append(i)
        else:
            vms.setdefault(vm, []).append(i)
            if f["subject"]["kind"] == "guest" and f["subject"]["id"] != vm:
                guests_of.setdefault(vm, set()).add(f["subject"]["id"])
    area_view = [[a.capitalize(), idx] for a, idx in by_area.items() if idx]
    vm_view = []
    for vm in sorted(vms):
        label = "VM %s" % printable(vm)
        if vm in guests_of:
            label += " (guest %s)" % ", ".join(printable(g) for g in sorted(guests_of[vm]))
        vm_view.append([label, vms[vm]])
    rank = dict((k, n) for n, k in enumerate(OTHER_KINDS))
    for kind, sid in sorted(others, key=lambda k: (rank.get(k[0], len(rank)), k[0], k[1])):
        vm_view.append(["%s %s" % (printable(kind), printable(sid)), others[(kind, sid)]])
    return {"area": area_view, "vm": vm_view}


class _Strings(object):
    """A string table: each distinct text once in report.html (the corpus repeats a few hundred
    messages 25,000 times)."""

    def __init__(self):
        self.items, self._index = [], {}

    def __call__(self, text):
        n = self._index.get(text)
        if n is None:
            n = self._index[text] = len(self.items)
            self.items.append(text)
        return n


def html_data(report):
    """The findings table's data, embedded in report.html as JSON (the page renders and filters it):
    each finding an object of string-table indexes (r rule, k kind, i subject id, m message, x
    remediation when it differs from the rule's) and codes (s status, v severity index, b badge,
    c since_previous)."""
    sev_index = dict((s, n) for n, s in enumerate(SEVERITIES))
    rules = dict((rid, [printable(r.title), printable(r.remediation)]) for rid, r in RULES.items())
    text = _Strings()
    # A finding's text -> its string table index, once per distinct text: the table gets its
    # entries in the same order as text(printable(value)) for every value would give them.
    index = _Memo(lambda v: text(printable(v)))
    shown = _Memo(printable)
    rule_rem = dict((rid, r[1]) for rid, r in rules.items())
    rows = []
    for f in report["findings"]:
        if f["severity"] not in sev_index:
            raise ValueError("finding %s on %s has severity %r (known: %s)" % (
                printable(f["rule"]), printable(f["subject"]["id"]), f["severity"], ", ".join(SEVERITIES)))
        subject = f["subject"]
        row = {"r": index(f["rule"]), "s": f["status"], "v": sev_index[f["severity"]],
               "k": index(subject["kind"]), "i": index(subject["id"]), "m": index(f["message"])}
        rem = f.get("remediation")
        if shown(rem) != rule_rem.get(f["rule"], ""):
            row["x"] = index(rem)
        badge = _badge(f)
        if badge:
            row["b"] = badge
        change = f.get("since_previous")
        if change:
            row["c"] = change
        rows.append(row)
    return {"findings": rows, "strings": text.items, "rules": rules, "severities": list(SEVERITIES),
            "notes": RESTART_NOTES, "views": views(report["findings"], report.get("guest_domains")), "page": PAGE_ROWS}


def finding_texts(data):
    """html_data's findings with their texts looked up (what the page shows; for tests and tools)."""
    t = data["strings"]
    return [dict(f, **dict((k, t[f[k]]) for k in ("r", "k", "i", "m", "x") if k in f)) for f in data["findings"]]


def script_json(data):
    """JSON safe inside <script>: no '<', '>' or '&' (no '</script>' or '<!--' can end the element)."""
    text = json.dumps(data, ensure_ascii=True, separators=(",", ":"), default=str)
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def html(report, gate, fail_on):
    from jinja2 import Environment  # controller side only
    from markupsafe import Markup
    env = Environment(autoescape=True, trim_blocks=True, lstrip_blocks=True)
    env.filters["p"] = printable
    builds = {}
    for f in report["findings"]:
        if f["rule"] == "DIV-07" and (f.get("evidence") or {}).get("builds"):
            builds = f["evidence"]["builds"]
    delta = report.get("since_previous") or {"previous": None}
    return env.from_string(HTML).render(
        r=report, gate=gate, fail_on=printable(fail_on), statuses=STATUSES,
        severities=list(SEVERITIES), builds=builds, delta=delta, changes=CHANGES[:3],
        not_evaluated=[(printable(reason), [printable(i) for i in ids]) for reason, ids in not_evaluated_groups(report)],
        rule_count=len(RULES), data=Markup(script_json(html_data(report))))


def sarif_log(report, sources=None):
    """report.sarif's content: SARIF 2.1.0 anchored to ``sources`` (see sarif.build); guest data in
    messages and subject names escaped as in junit.xml (a CI shows them)."""
    info = sarif.collection_info()
    return sarif.build(report, RULES, sources, version=info["version"], information_uri=info["repository"],
                       text=printable)


def oscal_results(report, sources=None):
    """report.oscal.json's content: OSCAL assessment results (see oscal.build)."""
    info = sarif.collection_info()
    return oscal.build(report, RULES, sources, version=info["version"], text=printable)


def _json(data):
    """``data`` as indented JSON text (RFC 8259: a NaN or infinity, which a hostile guest's evidence may carry,
    is written as a string, never as the bare NaN strict parsers reject). No circular-reference check: the
    reports are trees of JSON data (a cycle would end in RecursionError instead of ValueError); the text is
    the same, and the check costs a dict insert and delete per list and dict (~100,000s in the corpus reports)."""
    try:
        return json.dumps(data, indent=2, default=str, check_circular=False, allow_nan=False) + "\n"
    except ValueError:  # a non-finite float somewhere: the slow path, only then
        return json.dumps(_finite(data), indent=2, default=str, check_circular=False, allow_nan=False) + "\n"


def _finite(data):
    """A copy of ``data`` with every NaN or infinity replaced by its name as a string ("nan", "inf", "-inf")."""
    if isinstance(data, float):
        return data if math.isfinite(data) else repr(data)
    if isinstance(data, dict):
        return dict((k, _finite(v)) for k, v in data.items())
    if isinstance(data, (list, tuple)):
        return [_finite(v) for v in data]
    return data


RENDERERS = {
    "json": lambda report, gate, fail_on, sources: _json(report),
    "junit": lambda report, gate, fail_on, sources: '<?xml version="1.0" encoding="UTF-8"?>\n' + junit(report) + "\n",
    "html": lambda report, gate, fail_on, sources: html(report, gate, fail_on),
    "sarif": lambda report, gate, fail_on, sources: _json(sarif_log(report, sources)),
    "oscal": lambda report, gate, fail_on, sources: _json(oscal_results(report, sources)),
}
FILL_SLICE = 1 << 20  # characters encoded and written at a time (_fill)
# write_all renders and writes these in a forked child meanwhile (forked.py): about half the text.
CHILD_REPORTS = ("sarif", "oscal")


def render_all(report, gate, fail_on, sources=None):
    """The text of every report."""
    return dict((k, RENDERERS[k](report, gate, fail_on, sources)) for k, _name in NAMES)


class ReportWriteError(Exception):
    """The report set could not be written; the previous set is unchanged."""


def _prepare_dir(report_dir, mode):
    """Create the report directory (and parents) with the directory mode for ``mode``; refuse a
    report directory that is not a directory. True when this call created it."""
    if os.path.lexists(report_dir) and not os.path.isdir(report_dir):
        raise ReportWriteError("report_dir %s exists and is not a directory" % report_dir)
    if not os.path.isdir(report_dir):
        parent = os.path.dirname(os.path.abspath(report_dir))
        if not os.path.isdir(parent):
            os.makedirs(parent)
        try:
            os.mkdir(report_dir, dir_mode(mode))
        except OSError as e:
            if e.errno != errno.EEXIST:
                raise
        else:
            os.chmod(report_dir, dir_mode(mode))  # not narrowed by the umask
            return True
    return False


def _check_targets(paths):
    """Every target is absent or a regular file (a symlink is replaced, never followed)."""
    for path in paths.values():
        try:
            st = os.lstat(path)
        except OSError as e:
            if e.errno == errno.ENOENT:
                continue
            raise
        if not (stat.S_ISREG(st.st_mode) or stat.S_ISLNK(st.st_mode)):
            raise ReportWriteError("%s exists and is not a regular file" % path)


def _new_temp(report_dir, mode):
    """(fd, path) of a new private temp file in ``report_dir`` with ``mode``."""
    fd, tmp = tempfile.mkstemp(dir=report_dir, prefix=TEMP_PREFIX)
    try:
        os.fchmod(fd, mode)
    except BaseException:
        os.close(fd)
        _remove(tmp)
        raise
    return fd, tmp


def _fill(fd, text):
    """Write ``text`` into the temp file open as ``fd``, sync it and close the fd. Encoded a slice at a
    time: one copy of a 30 MB report as bytes would be 7,000 fresh pages to fault in; the slices reuse the same few."""
    with os.fdopen(fd, "wb") as f:
        for at in range(0, len(text), FILL_SLICE):
            f.write(text[at:at + FILL_SLICE].encode("utf-8", "backslashreplace"))
        f.flush()
        os.fsync(f.fileno())


def _write_temp(report_dir, text, mode):
    fd, tmp = _new_temp(report_dir, mode)
    try:
        _fill(fd, text)
    except BaseException:
        _remove(tmp)
        raise
    return tmp


def _remove(path):
    try:
        os.unlink(path)
    except OSError:
        pass


def _backup(report_dir, path):
    """A hard link to the current report at ``path`` (None when there is none or links are not supported)."""
    if not os.path.lexists(path):
        return None
    for _attempt in range(100):
        name = os.path.join(report_dir, TEMP_PREFIX + "old-" + os.urandom(6).hex())
        try:
            os.link(path, name, follow_symlinks=False)
            return name
        except OSError as e:
            if e.errno != errno.EEXIST:
                return None
    return None


def _commit(report_dir, temps, paths):
    """Rename every temp file over its report; on a failure put the previous reports back."""
    backups = dict((k, _backup(report_dir, paths[k])) for k in temps)
    done = []
    try:
        for k, tmp in temps.items():
            os.replace(tmp, paths[k])
            done.append(k)
    except BaseException:
        for k in reversed(done):
            if backups[k]:
                os.replace(backups[k], paths[k])
                backups[k] = None
            else:
                _remove(paths[k])
        raise
    finally:
        for b in backups.values():
            if b:
                _remove(b)


def _render_into(keys, fds, report, gate, fail_on, sources):
    """Render each report of ``keys`` and write it into its open temp file (``fds``: {key: fd}, each closed
    here once written)."""
    for k in keys:
        _fill(fds.pop(k), RENDERERS[k](report, gate, fail_on, sources))
    return list(keys)


def write_all(report_dir, report, gate, fail_on, mode=None, sources=None, parallel=True):
    """Write report.json, junit.xml, report.html, report.sarif and report.oscal.json into ``report_dir``
    as one set, files of ``mode`` (an int or an octal string; default 0640). ``sources``: the files
    report.sarif and report.oscal.json anchor their results to (sarif.build). Returns {"json": path,
    "junit": path, "html": path, "sarif": path, "oscal": path}.

    Every report is rendered and written to a temp file before any is renamed over its report, so a
    rendering or write error changes nothing. ``parallel``: CHILD_REPORTS are rendered and written by a
    forked child meanwhile (where a fork is usable, forked.py), into temp files this process created.

    Raises ReportWriteError (or OSError, or the rendering's error) when the set cannot be written; no
    temp file is left, the previous reports are unchanged, and a report directory this call created is
    removed again.
    """
    if not report_dir:
        raise ReportWriteError("report_dir is empty: name the directory for the reports")
    if not isinstance(mode, int):
        mode = parse_mode(DEFAULT_MODE if mode is None else mode)
    paths = dict((k, os.path.join(report_dir, name)) for k, name in NAMES)
    created = _prepare_dir(report_dir, mode)
    temps, fds = {}, {}
    try:
        _check_targets(paths)
        for k, _name in NAMES:
            fds[k], temps[k] = _new_temp(report_dir, mode)
        _write_set(report_dir, temps, fds, (report, gate, fail_on, sources), parallel)
        _commit(report_dir, temps, paths)
    except BaseException:
        for fd in fds.values():
            os.close(fd)
        for tmp in temps.values():
            _remove(tmp)
        if created:
            _rmdir(report_dir)
        raise
    fsync_dir(report_dir)
    return paths


def _write_set(report_dir, temps, fds, work, parallel):
    """Fill every temp file: CHILD_REPORTS by a forked child meanwhile when ``parallel`` (and a fork is
    usable), the others here. ``fds`` loses each fd as it is closed."""
    child = None
    if parallel:
        child = forked.start(_render_into, CHILD_REPORTS, dict((k, fds[k]) for k in CHILD_REPORTS), *work)
    if child is not None:
        for k in CHILD_REPORTS:
            os.close(fds.pop(k))  # the child writes them through its own copies
    try:
        _render_into([k for k, _name in NAMES if k in fds], fds, *work)
    except BaseException:
        if child is not None:  # this error is the one to report; the child's work is discarded
            _discard(child)
        raise
    if child is not None:
        try:
            forked.finish(child)
        except forked.ChildFailed as e:
            raise ReportWriteError("%s and %s could not be written in %s: %s" % (
                dict(NAMES)[CHILD_REPORTS[0]], dict(NAMES)[CHILD_REPORTS[1]], report_dir, e))


def _discard(child):
    """Wait for the child of write_all, whatever it ends with (its temp files are removed by the caller)."""
    try:
        forked.finish(child)
    except BaseException:  # pylint: disable=broad-except
        pass


def _rmdir(path):
    try:
        os.rmdir(path)
    except OSError:
        pass  # not empty: something else is there
