# -*- coding: utf-8 -*-
# Copyright: (c) 2026, vmguard.hardening developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Reports: report.json (vmguard.report/v1), junit.xml (one testcase per rule x subject), a
self-contained report.html (no external assets) and report.sarif (SARIF 2.1.0, audit/sarif.py). JSON and JUnit need only the standard library;
the HTML is rendered with Jinja2, which every Ansible controller has.

Guest data (process names, unit names, ...) reaches finding messages and evidence. Everything a
human or a CI parser reads (JUnit, HTML, the console) shows control characters, terminal escapes
and other invisible or XML-invalid code points as text (``\\x1b[31m``); report.json keeps the data
as it is (JSON escapes it).

The four reports are written as a set: all rendered first, each written to a private temp file in
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
import os
import re
import stat
import tempfile
import unicodedata
import xml.etree.ElementTree as ET

from ansible_collections.vmguard.hardening.plugins.module_utils.audit.engine import SCHEMA, summarize
from ansible_collections.vmguard.hardening.plugins.module_utils.common.fsutil import fsync_dir
from ansible_collections.vmguard.hardening.plugins.module_utils.audit.status import AREAS, SEVERITIES, SKIPPED, STATUSES
from ansible_collections.vmguard.hardening.plugins.module_utils.common.timeutil import iso
from ansible_collections.vmguard.hardening.plugins.module_utils.audit.rules import RULES
from ansible_collections.vmguard.hardening.plugins.module_utils.audit import sarif

NAMES = (("json", "report.json"), ("junit", "junit.xml"), ("html", "report.html"), ("sarif", "report.sarif"))
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
    """An octal permission string ("0640", "640") as an int; ValueError naming the value otherwise."""
    text = "" if text is None else str(text).strip()
    if not _MODE.match(text):
        raise ValueError("report mode %r is not an octal permission string such as '0640'" % (text,))
    return int(text, 8)


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
    report = {
        "schema": SCHEMA,
        "generated_at": iso(now),
        "policy_digest": policy_digest(policy),
        "summary": summarize(findings),
        "findings": findings,
    }
    if extra:
        report.update(extra)
    return report


def restart_note(finding):
    """One line on which definition a finding is about, or "" when that needs no note."""
    if finding.get("pending_restart"):
        return "pending restart: takes effect at next start (the persistent definition is already fixed)"
    if finding.get("definition") == "persistent":
        return "persistent definition: takes effect at next start"
    return ""


def _case_properties(case, f):
    props = [(k, f.get(k)) for k in ("definition", "pending_restart") if f.get(k) is not None]
    if not props:
        return
    el = ET.SubElement(case, "properties")
    for name, value in props:
        value = ("true" if value else "false") if isinstance(value, bool) else printable(value)
        ET.SubElement(el, "property", name=name, value=value)


def _case(suite, f):
    rule, sid, message = printable(f["rule"]), printable(f["subject"]["id"]), printable(f["message"])
    case = ET.SubElement(suite, "testcase", classname="%s.%s" % (printable(f["area"]), rule),
                         name="%s %s" % (rule, sid))
    _case_properties(case, f)
    lines = [message]
    note = restart_note(f)
    if note:
        lines.append(note)
    lines.append("remediation: %s" % (printable(f.get("remediation")) or "-"))
    text = "\n".join(lines)
    severity = printable(f["severity"])
    if f["status"] == "fail":
        ET.SubElement(case, "failure", message=message, type=severity).text = text
    elif f["status"] == "error":
        ET.SubElement(case, "error", message=message, type=severity).text = text
    elif f["status"] in SKIPPED:
        ET.SubElement(case, "skipped", message="%s: %s" % (f["status"], message))


def junit(report):
    suites = ET.Element("testsuites", name="vmguard", tests=str(len(report["findings"])))
    by_area = dict((a, []) for a in AREAS)
    for f in report["findings"]:
        by_area.setdefault(f["area"], []).append(f)
    for area, items in by_area.items():
        if not items:
            continue
        suite = ET.SubElement(suites, "testsuite", name="vmguard.%s" % printable(area), tests=str(len(items)),
                              failures=str(sum(1 for f in items if f["status"] == "fail")),
                              errors=str(sum(1 for f in items if f["status"] == "error")),
                              skipped=str(sum(1 for f in items if f["status"] in SKIPPED)),
                              timestamp=report["generated_at"])
        for f in items:
            _case(suite, f)
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
.badge { font-size: 11px; padding: 1px 6px; border-radius: 10px; white-space: nowrap; border: 1px solid; }
.badge.restart { color: #8d6e00; background: #fff8e1; } .badge.persistent { color: #0d47a1; background: #e3f2fd; }
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
<div class="row"><div class="subj" title="{{ b | p }}">{{ (b | p)[:16] }}</div>
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
<td><span class="sev {{ f.severity }}">{{ f.severity }}</span></td><td class="subj">{{ f.subject.kind | p }}: {{ f.subject.id | p }}</td>
<td>
{% if f.pending_restart %}<span class="badge restart" title="{{ restart_note(f) }}">pending restart</span>
{% elif f.definition == 'persistent' %}<span class="badge persistent" title="{{ restart_note(f) }}">persistent definition</span>
{% endif %}
{{ f.message | p }}{% if f.remediation %}<div class="rem">&rarr; {{ f.remediation | p }}</div>{% endif %}</td></tr>
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
    env.filters["p"] = printable
    builds = {}
    for f in report["findings"]:
        if f["rule"] == "DIV-07" and (f.get("evidence") or {}).get("builds"):
            builds = f["evidence"]["builds"]
    return env.from_string(HTML).render(
        r=report, gate=gate, fail_on=printable(fail_on), statuses=STATUSES,
        severities=list(SEVERITIES), areas=AREAS, builds=builds, restart_note=restart_note,
        titles=dict((rid, r.title) for rid, r in RULES.items()))


def sarif_log(report, sources=None):
    """report.sarif's content: SARIF 2.1.0 anchored to ``sources`` (see sarif.build); guest data in
    messages and subject names escaped as in junit.xml (a CI shows them)."""
    info = sarif.collection_info()
    return sarif.build(report, RULES, sources, version=info["version"], information_uri=info["repository"],
                       text=printable)


def render_all(report, gate, fail_on, sources=None):
    """The text of every report, rendered before any is written (a rendering error writes nothing)."""
    return {
        "json": json.dumps(report, indent=2, default=str) + "\n",
        "junit": '<?xml version="1.0" encoding="UTF-8"?>\n' + junit(report) + "\n",
        "html": html(report, gate, fail_on),
        "sarif": json.dumps(sarif_log(report, sources), indent=2, default=str) + "\n",
    }


class ReportWriteError(Exception):
    """The report set could not be written; the previous set is unchanged."""


def _prepare_dir(report_dir, mode):
    """Create the report directory (and parents) with the directory mode for ``mode``; refuse a
    report directory that is not a directory."""
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


def _write_temp(report_dir, text, mode):
    fd, tmp = tempfile.mkstemp(dir=report_dir, prefix=TEMP_PREFIX)
    try:
        with os.fdopen(fd, "wb") as f:
            os.fchmod(f.fileno(), mode)
            f.write(text.encode("utf-8", "backslashreplace"))
            f.flush()
            os.fsync(f.fileno())
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


def write_all(report_dir, report, gate, fail_on, mode=None, sources=None):
    """Write report.json, junit.xml, report.html and report.sarif into ``report_dir`` as one set, files
    of ``mode`` (an int or an octal string; default 0640). ``sources``: the files report.sarif anchors
    its results to (sarif.build). Returns {"json": path, "junit": path, "html": path, "sarif": path}.

    Raises ReportWriteError (or OSError) when the set cannot be written; no temp file is left and
    the previous reports are unchanged.
    """
    if not report_dir:
        raise ReportWriteError("report_dir is empty: name the directory for the reports")
    if not isinstance(mode, int):
        mode = parse_mode(DEFAULT_MODE if mode is None else mode)
    texts = render_all(report, gate, fail_on, sources)
    paths = dict((k, os.path.join(report_dir, name)) for k, name in NAMES)
    _prepare_dir(report_dir, mode)
    _check_targets(paths)
    temps = {}
    try:
        for k, _name in NAMES:
            temps[k] = _write_temp(report_dir, texts[k], mode)
        _commit(report_dir, temps, paths)
    except BaseException:
        for tmp in temps.values():
            _remove(tmp)
        raise
    fsync_dir(report_dir)
    return paths
