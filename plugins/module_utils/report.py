# -*- coding: utf-8 -*-
# Copyright: (c) 2026, vmguard.hardening developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Reports: report.json (vmguard.report/v1), junit.xml (one testcase per rule x subject) and a
self-contained report.html (no external assets). JSON and JUnit need only the standard library;
the HTML is rendered with Jinja2, which every Ansible controller has."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import hashlib
import json
import os
import tempfile
import xml.etree.ElementTree as ET

from ansible_collections.vmguard.hardening.plugins.module_utils.engine import SCHEMA, summarize
from ansible_collections.vmguard.hardening.plugins.module_utils.policy import AREAS, SEVERITIES
from ansible_collections.vmguard.hardening.plugins.module_utils.timeutil import utc
from ansible_collections.vmguard.hardening.plugins.module_utils.rules import RULES


def policy_digest(policy):
    return hashlib.sha256(json.dumps(policy, sort_keys=True, default=str).encode("utf-8")).hexdigest()


def build(policy, findings, now, extra=None):
    report = {
        "schema": SCHEMA,
        "generated_at": utc(now).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "policy_digest": policy_digest(policy),
        "summary": summarize(findings),
        "findings": findings,
    }
    if extra:
        report.update(extra)
    return report


def junit(report):
    suites = ET.Element("testsuites", name="vmguard", tests=str(len(report["findings"])))
    by_area = dict((a, []) for a in AREAS)
    for f in report["findings"]:
        by_area.setdefault(f["area"], []).append(f)
    for area, items in by_area.items():
        if not items:
            continue
        suite = ET.SubElement(suites, "testsuite", name="vmguard.%s" % area, tests=str(len(items)),
                              failures=str(sum(1 for f in items if f["status"] == "fail")),
                              errors=str(sum(1 for f in items if f["status"] == "error")),
                              skipped=str(sum(1 for f in items if f["status"] in ("waived", "not_applicable"))),
                              timestamp=report["generated_at"])
        for f in items:
            case = ET.SubElement(suite, "testcase", classname="%s.%s" % (area, f["rule"]),
                                 name="%s %s" % (f["rule"], f["subject"]["id"]))
            text = "%s\nremediation: %s" % (f["message"], f.get("remediation") or "-")
            if f["status"] == "fail":
                ET.SubElement(case, "failure", message=f["message"], type=f["severity"]).text = text
            elif f["status"] == "error":
                ET.SubElement(case, "error", message=f["message"], type=f["severity"]).text = text
            elif f["status"] in ("waived", "not_applicable"):
                ET.SubElement(case, "skipped", message="%s: %s" % (f["status"], f["message"]))
    return ET.tostring(suites, encoding="unicode")


HTML = r"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>vmguard report {{ r.generated_at }}</title>
<style>
:root { --pass:#2e7d32; --fail:#c62828; --error:#6a1b9a; --waived:#ef6c00; --not_applicable:#78909c; }
* { box-sizing: border-box; }
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; margin: 0; color: #1f2933; background: #f5f7fa; }
header { background: #102a43; color: #fff; padding: 18px 28px; }
header h1 { margin: 0 0 4px; font-size: 22px; }
header .meta { opacity: .8; font-size: 12px; }
main { padding: 20px 28px; max-width: 1400px; margin: auto; }
.cards { display: flex; gap: 12px; flex-wrap: wrap; margin-bottom: 18px; }
.card { background: #fff; border-radius: 8px; padding: 12px 16px; min-width: 120px; box-shadow: 0 1px 3px rgba(0,0,0,.12); }
.card .n { font-size: 26px; font-weight: 600; }
.card.pass .n { color: var(--pass); } .card.fail .n { color: var(--fail); } .card.error .n { color: var(--error); }
.card.waived .n { color: var(--waived); } .card.not_applicable .n { color: var(--not_applicable); }
.verdict { font-weight: 600; padding: 10px 14px; border-radius: 8px; margin-bottom: 18px; }
.verdict.bad { background: #ffebee; color: var(--fail); } .verdict.good { background: #e8f5e9; color: var(--pass); }
.grid { display: grid; grid-template-columns: minmax(320px, 1fr) minmax(320px, 1fr); gap: 16px; margin-bottom: 18px; }
@media (max-width: 900px) { .grid { grid-template-columns: 1fr; } }
.panel { background: #fff; border-radius: 8px; padding: 14px 16px; box-shadow: 0 1px 3px rgba(0,0,0,.12); }
.panel h2 { font-size: 15px; margin: 0 0 10px; }
.bar { display: flex; height: 18px; border-radius: 4px; overflow: hidden; background: #e4e7eb; }
.bar span { display: block; height: 100%; }
.row { display: grid; grid-template-columns: 110px 1fr 60px; gap: 10px; align-items: center; margin: 6px 0; font-size: 13px; }
.legend span { display: inline-block; margin-right: 12px; font-size: 12px; }
.legend i { display: inline-block; width: 10px; height: 10px; border-radius: 2px; margin-right: 4px; vertical-align: middle; }
table { width: 100%; border-collapse: collapse; background: #fff; font-size: 13px; }
th, td { text-align: left; padding: 6px 8px; border-bottom: 1px solid #e4e7eb; vertical-align: top; }
th { background: #f0f4f8; position: sticky; top: 0; }
td.rule { white-space: nowrap; font-weight: 600; }
.st { font-weight: 600; text-transform: uppercase; font-size: 11px; padding: 2px 6px; border-radius: 4px; color: #fff; white-space: nowrap; }
.st.pass { background: var(--pass); } .st.fail { background: var(--fail); } .st.error { background: var(--error); }
.st.waived { background: var(--waived); } .st.not_applicable { background: var(--not_applicable); }
.sev { font-size: 11px; text-transform: uppercase; } .sev.critical { color: #b71c1c; font-weight: 700; } .sev.high { color: #c62828; }
.filters { display: flex; gap: 10px; flex-wrap: wrap; align-items: center; margin: 10px 0 14px; background: #fff;
  padding: 10px 12px; border-radius: 8px; box-shadow: 0 1px 3px rgba(0,0,0,.12); }
.filters label { font-size: 12px; } .filters input[type=search] { padding: 5px 8px; min-width: 260px; }
section.area { margin-bottom: 22px; } section.area h2 { font-size: 17px; margin: 8px 0; }
.rem { color: #52606d; font-size: 12px; } .subj { font-family: ui-monospace, monospace; font-size: 12px; }
.count { color: #52606d; font-weight: normal; font-size: 13px; }
</style></head>
<body>
<header><h1>vmguard.hardening audit</h1>
<div class="meta">generated {{ r.generated_at }} &middot; schema {{ r.schema }} &middot; policy {{ r.policy_digest[:12] }}
&middot; fail on {{ fail_on }} and above</div></header>
<main>
<div class="verdict {{ 'bad' if gate else 'good' }}">
{% if gate %}FAILED: {{ gate | length }} finding(s) failed or errored at severity {{ fail_on }} or above.
{% else %}PASSED: no failing or erroring finding at severity {{ fail_on }} or above.{% endif %}</div>
<div class="cards">
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
<div class="row"><div class="subj" title="{{ b }}">{{ b[:16] }}</div>
<div class="bar"><span style="width:{{ 100.0 * s.share }}%;background:#486581"></span></div><div>{{ s.guests }}</div></div>
{% endfor %}{% endif %}
</div></div>
<div class="filters">
<input type="search" id="q" placeholder="filter: rule, subject or text" aria-label="filter">
{% for s in statuses %}
<label><input type="checkbox" class="fs" value="{{ s }}" {{ '' if s in ('pass', 'not_applicable') else 'checked' }}>
{{ s | replace('_', ' ') }}</label>
{% endfor %}
<label>severity &ge; <select id="sev">{% for sev in severities %}<option value="{{ loop.index0 }}">{{ sev }}</option>{% endfor %}</select></label>
</div>
{% for area in areas %}{% set items = r.findings | selectattr('area', 'equalto', area) | list %}{% if items %}
<section class="area"><h2>{{ area | capitalize }} <span class="count">({{ items | length }} findings)</span></h2>
<table><thead><tr><th>rule</th><th>status</th><th>severity</th><th>subject</th><th>message / remediation</th></tr></thead><tbody>
{% for f in items %}<tr data-status="{{ f.status }}" data-sev="{{ severities.index(f.severity) }}">
<td class="rule" title="{{ titles[f.rule] }}">{{ f.rule }}</td>
<td><span class="st {{ f.status }}">{{ f.status | replace('_', ' ') }}</span></td>
<td><span class="sev {{ f.severity }}">{{ f.severity }}</span></td><td class="subj">{{ f.subject.kind }}: {{ f.subject.id }}</td>
<td>{{ f.message }}{% if f.remediation %}<div class="rem">&rarr; {{ f.remediation }}</div>{% endif %}</td></tr>
{% endfor %}</tbody></table></section>{% endif %}{% endfor %}
</main>
<script>
(function () {
  var q = document.getElementById('q'), sev = document.getElementById('sev');
  var boxes = Array.prototype.slice.call(document.querySelectorAll('.fs'));
  var rows = Array.prototype.slice.call(document.querySelectorAll('tbody tr'));
  function apply() {
    var text = q.value.toLowerCase(), min = parseInt(sev.value, 10);
    var want = boxes.filter(function (b) { return b.checked; }).map(function (b) { return b.value; });
    rows.forEach(function (r) {
      var show = want.indexOf(r.dataset.status) >= 0 && parseInt(r.dataset.sev, 10) >= min &&
                 (!text || r.textContent.toLowerCase().indexOf(text) >= 0);
      r.style.display = show ? '' : 'none';
    });
  }
  [q, sev].concat(boxes).forEach(function (el) { el.addEventListener('input', apply); el.addEventListener('change', apply); });
  apply();
})();
</script>
</body></html>
"""


def html(report, gate, fail_on):
    from jinja2 import Environment  # controller side only
    env = Environment(autoescape=True, trim_blocks=True, lstrip_blocks=True)
    builds = {}
    for f in report["findings"]:
        if f["rule"] == "DIV-07" and f["evidence"].get("builds"):
            builds = f["evidence"]["builds"]
    return env.from_string(HTML).render(
        r=report, gate=gate, fail_on=fail_on, statuses=("pass", "fail", "error", "waived", "not_applicable"),
        severities=list(SEVERITIES), areas=AREAS, builds=builds,
        titles=dict((rid, r.title) for rid, r in RULES.items()))


def _atomic_write(path, text):
    d = os.path.dirname(path) or "."
    fd, tmp = tempfile.mkstemp(dir=d, prefix=".vmguard-")
    with os.fdopen(fd, "w") as f:
        f.write(text)
    os.chmod(tmp, 0o644)
    os.rename(tmp, path)


def write_all(report_dir, report, gate, fail_on):
    if not os.path.isdir(report_dir):
        os.makedirs(report_dir)
    paths = dict(json=os.path.join(report_dir, "report.json"), junit=os.path.join(report_dir, "junit.xml"),
                 html=os.path.join(report_dir, "report.html"))
    _atomic_write(paths["json"], json.dumps(report, indent=2, default=str) + "\n")
    _atomic_write(paths["junit"], '<?xml version="1.0" encoding="UTF-8"?>\n' + junit(report) + "\n")
    _atomic_write(paths["html"], html(report, gate, fail_on))
    return paths
