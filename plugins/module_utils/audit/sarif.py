# -*- coding: utf-8 -*-
# Copyright: (c) 2026, vmguard.hardening developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""report.sarif: the audit's findings as SARIF 2.1.0 (one run), for GitHub code scanning and
other SARIF consumers.

- ``tool.driver.rules``: every rule of the registry (id, title, remediation text as help, area,
  layer, the default severity as ``defaultConfiguration.level``).
- One result per finding with status fail or error (an error says the rule could not be evaluated),
  and one per waived finding, carrying an accepted external suppression whose justification is the
  waiver's reason. Pass and not_applicable findings are no results.
- Levels: critical/high -> error, medium -> warning, low -> note (the finding's severity, i.e. the
  policy's, not only the rule's default).
- Each result is anchored to the file that declares its subject, relative to the repository
  (``uriBaseId`` %SRCROOT%): the inventory for hypervisors, domains, guests and images, the policy
  file (else the inventory) for fleet and waiver findings. A finding has no line of its own, so the
  region is the file's first line. The subject is the logical location (``<kind>:<id>``).
- ``partialFingerprints["vmguardFinding/v1"]`` = sha256(rule|kind|id): stable across runs (never
  the message), so code scanning tracks one alert per rule and subject.
- Rules the run did not evaluate (report.json ``rules_not_evaluated``: disabled by the policy, or left out by
  --tags/--skip-tags) have no result: the run's invocation disables each with a rule configuration override
  and a warning notification giving the reason, so that no result is not read as a pass.
- Since the previous run (audit/delta.py): a result failing before and now has ``baselineState``
  "unchanged", one failing only now "new", both with ``properties.since_previous``; the run's
  ``properties.since_previous`` holds the counts and the fixed and gone findings (which are no results).

``build`` is pure (data in, dict out); ``collection_version`` reads the collection's own metadata.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import hashlib
import json
import os
import re

try:
    from urllib.parse import quote
except ImportError:  # Python 2 (never used on the controller, kept importable)
    from urllib import quote

from ansible_collections.vmguard.hardening.plugins.module_utils.audit.status import ERROR, FAIL, WAIVED

SCHEMA_URI = "https://json.schemastore.org/sarif-2.1.0.json"
VERSION = "2.1.0"
TOOL_NAME = "vmguard.hardening"
DEFAULT_INFORMATION_URI = "https://example.invalid/vmguard/hardening"
SRCROOT = "%SRCROOT%"
FINGERPRINT = "vmguardFinding/v1"
LEVELS = {"critical": "error", "high": "error", "medium": "warning", "low": "note"}
# GitHub code scanning ranks security alerts by properties["security-severity"] (0.0-10.0).
SECURITY_SEVERITY = {"critical": "9.5", "high": "8.0", "medium": "5.5", "low": "3.0"}
# Subjects declared by the policy (fleet-wide findings, expired waivers) rather than the inventory.
POLICY_KINDS = ("fleet",)
RESULT_STATUSES = (FAIL, ERROR, WAIVED)
# since_previous (audit/delta.py) -> SARIF baselineState of a result that is there now.
BASELINE = {"new": "new", "still_failing": "unchanged"}


def level(severity):
    """The SARIF level of a severity; ValueError naming an unknown one."""
    try:
        return LEVELS[severity]
    except KeyError:
        raise ValueError("severity %r has no SARIF level (known: %s)" % (severity, ", ".join(sorted(LEVELS))))


def fingerprint(finding):
    """sha256 of rule|subject kind|subject id: the same alert on every run, whatever the message says."""
    s = finding["subject"]
    return hashlib.sha256(("%s|%s|%s" % (finding["rule"], s["kind"], s["id"])).encode("utf-8", "surrogatepass")).hexdigest()


def waiver_of(finding):
    """(expires, reason) of a waived finding from the ``waiver`` the engine attaches (never parsed out of
    the message, which may hold guest data); (None, None) when there is none."""
    w = finding.get("waiver")
    if isinstance(w, dict) and w.get("reason"):
        return w.get("expires"), w["reason"]
    return None, None


def source_uri(path, cwd):
    """A source file as a URI relative to the repository: relative to ``cwd`` when inside it, else its
    base name (an absolute path of the controller means nothing in the repository)."""
    path = os.path.normpath(os.path.join(cwd, path))
    rel = os.path.relpath(path, cwd)
    if rel == os.curdir or rel == os.pardir or rel.startswith(os.pardir + os.sep):
        rel = os.path.basename(path)
    # A name that is not UTF-8 (read with surrogateescape) keeps its original bytes, percent-encoded.
    return quote(rel.replace(os.sep, "/").encode("utf-8", "surrogateescape"), safe="/-._~")


def _rule(r):
    return {
        "id": r.id,
        "name": r.title,
        "shortDescription": {"text": r.title},
        "fullDescription": {"text": r.remediation},
        "help": {"text": r.remediation},
        "defaultConfiguration": {"level": level(r.severity)},
        "properties": {"area": r.area, "layer": r.layer, "tags": [r.area], "severity": r.severity,
                       "security-severity": SECURITY_SEVERITY[r.severity]},
    }


def anchor(subject, sources):
    """The source URI declaring ``subject``, or None when ``sources`` names no file for it."""
    policy = sources.get("policy")
    if subject["kind"] in POLICY_KINDS and policy:
        return policy
    for uri in sources.get("inventory") or ():  # the first inventory file named
        if uri:
            return uri
    return policy or None


def _location(subject, sources, text):
    loc = {"logicalLocations": [{"name": text(subject["id"]), "kind": "resource",
                                 "fullyQualifiedName": text("%s:%s" % (subject["kind"], subject["id"]))}]}
    uri = anchor(subject, sources)
    if uri:
        loc["physicalLocation"] = {"artifactLocation": {"uri": uri, "uriBaseId": SRCROOT},
                                   "region": {"startLine": 1}}
    return loc


def _message(f):
    if f["status"] == ERROR:
        return "%s could not be evaluated on %s %s: %s" % (f["rule"], f["subject"]["kind"], f["subject"]["id"], f["message"])
    return "%s on %s %s: %s" % (f["rule"], f["subject"]["kind"], f["subject"]["id"], f["message"])


def _suppression(f, text):
    expires, reason = waiver_of(f)
    if reason is None:
        justification = "waived by the policy (no waiver reason found in the finding)"
    else:
        justification = "%s (until %s)" % (reason, expires) if expires else reason
    return {"kind": "external", "status": "accepted", "justification": text(justification)}


def _same(value):
    return value


def result(f, rule_index, sources, text=_same):
    """The SARIF result of finding ``f``; ``text`` makes guest data safe to show (report.printable)."""
    props = {"status": f["status"], "severity": f["severity"], "area": f["area"],
             "subject": {"kind": f["subject"]["kind"], "id": text(f["subject"]["id"])}}
    for key in ("waived_status", "definition", "pending_restart", "since_previous"):
        value = f.get(key)
        if value is not None:
            props[key] = value
    if f.get("remediation"):
        props["remediation"] = f["remediation"]
    out = {
        "ruleId": f["rule"],
        "level": level(f["severity"]),
        "kind": "fail",
        "message": {"text": text(_message(f))},
        "locations": [_location(f["subject"], sources, text)],
        "partialFingerprints": {FINGERPRINT: fingerprint(f)},
        "properties": props,
    }
    if f.get("since_previous") in BASELINE:
        out["baselineState"] = BASELINE[f["since_previous"]]
    if f["rule"] in rule_index:
        out["ruleIndex"] = rule_index[f["rule"]]
    if f["status"] == WAIVED:
        out["suppressions"] = [_suppression(f, text)]
    return out


def _since_previous(delta, text):
    def entry(e):
        return {"ruleId": e["rule"], "subject": "%s:%s" % (e["subject"]["kind"], text(e["subject"]["id"])),
                "before": e["before"], "now": e["now"]}
    prev = delta["previous"]
    return {"previous": {"generated_at": prev.get("generated_at"), "policy_digest": prev.get("policy_digest")},
            "counts": delta["counts"], "fixed": [entry(e) for e in delta.get("fixed", [])],
            "gone": [entry(e) for e in delta.get("gone", [])]}


def build(report, rules, sources=None, version=None, information_uri=None, text=_same):
    """The SARIF 2.1.0 log (a dict) of ``report`` (report.json's dict).

    ``rules``: the registry (rule id -> Rule). ``sources``: {"inventory": [URI, ...], "policy": URI or
    None}, URIs relative to the repository (see source_uri); without any, results carry only their
    logical location. ``version``: the collection's version (collection_info()). ``text``: applied to
    every string made from guest data (messages, subject ids), e.g. report.printable."""
    sources = sources or {}
    rule_list = [_rule(r) for r in rules.values()]
    rule_index = dict((r["id"], i) for i, r in enumerate(rule_list))
    driver = {"name": TOOL_NAME, "informationUri": information_uri or DEFAULT_INFORMATION_URI, "rules": rule_list}
    if version:
        driver["version"] = version
        driver["semanticVersion"] = version
    run = {
        "tool": {"driver": driver},
        "originalUriBaseIds": {SRCROOT: {"description": {"text": "the repository (the directory the audit ran in)"}}},
        "results": [result(f, rule_index, sources, text) for f in report["findings"] if f["status"] in RESULT_STATUSES],
        "columnKind": "unicodeCodePoints",
        "properties": {"schema": report.get("schema"), "generated_at": report.get("generated_at"),
                       "policy_digest": report.get("policy_digest")},
    }
    delta = report.get("since_previous")
    if delta and delta.get("previous"):
        run["properties"]["since_previous"] = _since_previous(delta, text)
    skipped = report.get("rules_not_evaluated") or []
    if skipped:
        driver["notifications"] = [NOT_EVALUATED_NOTE]
        run["invocations"] = [_invocation(skipped, rule_index)]
        run["properties"]["rules_not_evaluated"] = [{"ruleId": e["rule"], "reason": e["reason"]} for e in skipped]
    return {"$schema": SCHEMA_URI, "version": VERSION, "runs": [run]}


# The tool's one notification descriptor (driver.notifications[0]): what each not-evaluated rule's notification is.
NOT_EVALUATED_NOTE = {"id": "vmguard/rule-not-evaluated", "name": "RuleNotEvaluated",
                      "shortDescription": {"text": "A rule of the catalogue was not evaluated in this run (no result is no pass)."}}


def _invocation(skipped, rule_index):
    """The run's invocation when rules were not evaluated (report.json's rules_not_evaluated): each is a rule
    configuration override disabling it plus a notification saying why, so that a rule with no result reads as
    not run, not as passed."""
    overrides, notes = [], []
    for e in skipped:
        descriptor = {"id": e["rule"]}
        if e["rule"] in rule_index:
            descriptor["index"] = rule_index[e["rule"]]
        overrides.append({"descriptor": descriptor, "configuration": {"enabled": False}})
        notes.append({"descriptor": {"id": NOT_EVALUATED_NOTE["id"], "index": 0}, "associatedRule": dict(descriptor),
                      "level": "warning", "message": {"text": "%s was not evaluated: %s" % (e["rule"], e["reason"])}})
    return {"executionSuccessful": True, "ruleConfigurationOverrides": overrides, "toolConfigurationNotifications": notes}


def _collection_root():
    # plugins/module_utils/audit/sarif.py -> the collection's root
    return os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", ".."))


def collection_info(root=None):
    """{"version", "repository"} of the collection, from MANIFEST.json (an installed collection) or
    galaxy.yml (a source tree); missing keys are None."""
    root = root or _collection_root()
    manifest = os.path.join(root, "MANIFEST.json")
    if os.path.isfile(manifest):
        with open(manifest) as fh:
            info = json.load(fh).get("collection_info") or {}
        return {"version": info.get("version"), "repository": info.get("repository")}
    out = {"version": None, "repository": None}
    galaxy = os.path.join(root, "galaxy.yml")
    if os.path.isfile(galaxy):
        with open(galaxy) as fh:
            for line in fh:
                m = re.match(r"^(version|repository):\s*['\"]?([^'\"#\s]+)", line)
                if m:
                    out[m.group(1)] = m.group(2)
    return out
