# -*- coding: utf-8 -*-
# Copyright: (c) 2026, vmguard.hardening developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""report.oscal.json: the audit as OSCAL assessment results (one result), for compliance
programmes that consume OSCAL.

- ``reviewed-controls``: the catalogue's rules this run evaluated (report ``rules_selected``, else
  every rule of the registry, less report ``rules_not_evaluated``: the rules the policy disables or the
  selection left out, named in the selection's remarks), each rule a control with its id in lower case
  (``div-01``).
- ``local-definitions.inventory-items``: one item per subject that has an observation (hypervisor,
  domain, guest, image, fleet), its kind and id as props.
- One observation and one finding per failing rule and subject (status fail or error; an error says
  the rule could not be evaluated): the finding targets the rule's control objective with state
  ``not-satisfied`` and points at its observation.
- A waived finding is an observation, a finding and a risk whose status is ``deviation-approved``
  (the risk is accepted), its deadline the waiver's expiry (end of that day, UTC) and its statement
  the waiver's justification; the finding's target carries the waiver's reason.
- Since the previous run (audit/delta.py): findings carry a ``since-previous`` prop, the result
  props with the counts.

UUIDs are version 5, derived from the report's time, the rule and the subject: the same report
gives the same document. ``build`` is pure (data in, dict out).
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import hashlib
import uuid

from ansible_collections.vmguard.hardening.plugins.module_utils.audit.status import ERROR, FAIL, WAIVED

OSCAL_VERSION = "1.1.3"
NS = "https://example.invalid/vmguard/hardening/ns/oscal"
_ROOT = uuid.uuid5(uuid.NAMESPACE_URL, "urn:vmguard.hardening:oscal")
_ROOT_BYTES = _ROOT.bytes
RESULT_STATUSES = (FAIL, ERROR, WAIVED)


def control_id(rule_id):
    """The OSCAL control id of a rule: its id in lower case (DIV-01 -> div-01)."""
    return rule_id.lower()


def _uuid(*parts):
    """A version 5 UUID of ``parts`` (uuid.uuid5, with guest data that may hold lone surrogates), as
    its string: the SHA-1 of the namespace and the name, version and variant bits set, the way
    uuid.UUID(bytes=..., version=5) sets them (without building the UUID object)."""
    name = "|".join(map(str, parts)).encode("utf-8", "surrogatepass")
    b = bytearray(hashlib.sha1(_ROOT_BYTES + name).digest()[:16])
    b[6] = (b[6] & 0x0F) | 0x50  # version 5
    b[8] = (b[8] & 0x3F) | 0x80  # RFC 4122 variant
    h = b.hex()
    return "%s-%s-%s-%s-%s" % (h[:8], h[8:12], h[12:16], h[16:20], h[20:])


def content_digest(findings):
    """The SHA-256 of what the findings say (rule, subject, status and message of each, in order): with the report's
    time and policy digest, what the document's UUIDs are made from. Two audits of different inventories with one
    policy in the same second (two CI jobs, two sites with a web1 each) say different things, so their documents
    share no UUID; the same report gives the same document."""
    h = hashlib.sha256()
    for f in findings:
        s = f["subject"]
        h.update("\x1f".join(map(str, (f["rule"], s["kind"], s["id"], f["status"], f["message"], "\x1e")))
                 .encode("utf-8", "surrogatepass"))
    return h.hexdigest()


def _value(value):
    return "" if value is None else str(value).strip()


def _prop(name, value):
    """An OSCAL property in the collection's namespace; None when there is no value (OSCAL allows no empty one)."""
    value = _value(value)
    if not value:
        return None
    return {"name": name, "ns": NS, "value": value}


def _props(*pairs):
    out = []
    for name, value in pairs:
        value = _value(value)
        if value:
            out.append({"name": name, "ns": NS, "value": value})
    return out or None


def _clean(d):
    """``d`` without None values (OSCAL rejects null and empty lists)."""
    return {k: v for k, v in d.items() if v is not None}


def deadline(expires):
    """A waiver's expiry date (YYYY-MM-DD, valid through that day) as an OSCAL date-time: the end of the day, UTC."""
    if not expires:
        return None
    return "%sT23:59:59Z" % str(expires)[:10]


def _subject_items(findings, stamp, text):
    items = {}
    for f in findings:
        s = f["subject"]
        k = (s["kind"], s["id"])
        if k not in items:
            items[k] = _clean({
                "uuid": _uuid(stamp, "subject", s["kind"], s["id"]),
                "description": text("%s %s" % (s["kind"], s["id"])),
                "props": _props(("subject-kind", s["kind"]), ("subject-id", text(s["id"]))),
            })
    return items


def _plain(values):
    """True when every value is None or an exact str: equal values are then the same text (True == 1)."""
    for v in values:
        if v is not None and v.__class__ is not str:
            return False
    return True


class _Context(object):
    """What the observations, risks and findings of one build share: the stamp, ``text``, the
    evidence anchors, and the parts that repeat across findings, made once per distinct value
    within this build (the corpus repeats a few hundred rules, messages and statuses thousands of
    times): message descriptions, remarks, props lists, targets. Those parts are one object in
    every place they appear: the document is data to serialize, not to modify in place."""

    def __init__(self, stamp, text, collected, sources):
        self.stamp, self.text, self.collected = stamp, text, collected
        sources = sources or {}
        self.policy_anchor = sources.get("policy")
        self.inventory_anchor = (sources.get("inventory") or [None])[0]
        self.methods, self.types = ["TEST"], ["finding"]
        self._made = {}

    def _once(self, kind, key, make):
        """make(), once per (kind, key) when the key's values are exact str or None."""
        if not _plain(key):
            return make()
        k = (kind,) + key
        out = self._made.get(k)
        if out is None:
            out = self._made[k] = make()
        return out

    def description(self, message):
        return self._once("description", (message,), lambda: self.text(message) or "(no message)")

    def remarks(self, remediation):
        return self._once("remarks", (remediation,), lambda: self.text("remediation: %s" % remediation))

    def props(self, kind, *pairs):
        """_props(*pairs) of the ``kind`` of element (always the same names for one kind)."""
        return self._once(kind, tuple(v for _n, v in pairs), lambda: _props(*pairs))

    def target(self, rule, status, reason):
        return self._once("target", (rule, status, reason), lambda: {
            "type": "objective-id", "target-id": control_id(rule),
            "status": {"state": "not-satisfied", "reason": "fail" if status == FAIL else "other", "remarks": reason}})


def _observation(f, ctx, subject_uuid, title, description, nth=()):
    s = f["subject"]
    ob = {
        "uuid": _uuid(ctx.stamp, "observation", f["rule"], s["kind"], s["id"], *nth),
        "title": title,
        "description": description,
        "props": ctx.props("observation", ("rule", f["rule"]), ("status", f["status"]), ("severity", f["severity"]),
                           ("area", f["area"]), ("since-previous", f.get("since_previous"))),
        "methods": ctx.methods,
        "types": ctx.types,
        "subjects": [{"subject-uuid": subject_uuid, "type": "inventory-item",
                      "title": ctx.text("%s %s" % (s["kind"], s["id"]))}],
        "collected": ctx.collected,
    }
    anchor = ctx.policy_anchor if s["kind"] == "fleet" else ctx.inventory_anchor
    if anchor:
        ob["relevant-evidence"] = [{"href": anchor, "description": "the file that declares the subject"}]
    if f.get("remediation"):
        ob["remarks"] = ctx.remarks(f["remediation"])
    return _clean(ob)


def _risk(f, ctx, obs_uuid, description, nth=()):
    s, text = f["subject"], ctx.text
    w = f.get("waiver") if isinstance(f.get("waiver"), dict) else {}
    reason = text(w.get("reason")) or "waived by the policy"
    return _clean({
        "uuid": _uuid(ctx.stamp, "risk", f["rule"], s["kind"], s["id"], *nth),
        "title": text("Accepted: %s on %s %s" % (f["rule"], s["kind"], s["id"])),
        "description": description,
        "statement": "Risk accepted by a waiver of the vmguard policy: %s" % reason,
        "props": _props(("waiver-subject", text(w.get("subject"))), ("waiver-expires", w.get("expires")),
                        ("waived-status", f.get("waived_status"))),
        "status": "deviation-approved",
        "deadline": deadline(w.get("expires")),
        "related-observations": [{"observation-uuid": obs_uuid}],
    })


def _finding(f, ctx, obs_uuid, risk_uuid, title, description, nth=()):
    s = f["subject"]
    reason = "not evaluated (error)" if f["status"] == ERROR else "failed"
    if f["status"] == WAIVED:
        w = f.get("waiver") if isinstance(f.get("waiver"), dict) else {}
        reason = "waived until %s: %s" % (w.get("expires") or "?", ctx.text(w.get("reason")) or "-")
    out = {
        "uuid": _uuid(ctx.stamp, "finding", f["rule"], s["kind"], s["id"], *nth),
        "title": title,
        "description": description,
        "props": ctx.props("finding", ("severity", f["severity"]), ("status", f["status"]), ("since-previous", f.get("since_previous"))),
        "target": ctx.target(f["rule"], f["status"], reason),
        "related-observations": [{"observation-uuid": obs_uuid}],
    }
    if risk_uuid:
        out["related-risks"] = [{"risk-uuid": risk_uuid}]
    return _clean(out)


def _reviewed(report, rules):
    """The controls this run reviewed: the rules it evaluated, never one the policy disabled or the selection left
    out (report.json's rules_not_evaluated), which a reader would otherwise take as reviewed and satisfied."""
    selected = report.get("rules_selected")
    skipped = dict((e["rule"], e["reason"]) for e in report.get("rules_not_evaluated") or ())
    ids = sorted(rules) if selected in (None, "all") else sorted(r for r in selected if r in rules)
    ids = [r for r in ids if r not in skipped]
    selection = {}
    if ids:
        selection["include-controls"] = [{"control-id": control_id(r)} for r in ids]
    if skipped:
        selection["remarks"] = "Not evaluated (no verdict): " + "; ".join(
            "%s %s" % (r, why) for r, why in sorted(skipped.items()))
    return {"description": "The vmguard catalogue's rules this run evaluated (docs/CATALOG.md).",
            "control-selections": [selection]}


def _since_props(delta):
    if not (delta and delta.get("previous")):
        return []
    return [p for p in (_prop("since-previous-%s" % c.replace("_", "-"), delta["counts"].get(c, 0))
                        for c in ("new", "fixed", "still_failing", "gone")) if p]


def _result_description(report, summary):
    counts = "%s findings, %s fail, %s error, %s waived." % (
        summary.get("total", len(report["findings"])), summary.get("fail"), summary.get("error"), summary.get("waived"))
    skipped = report.get("rules_not_evaluated") or []
    if not skipped:
        return "Every enabled rule of the vmguard catalogue evaluated on every subject of the inventory: " + counts
    return ("The vmguard catalogue's rules evaluated on every subject of the inventory, except %d not evaluated "
            "(disabled by the policy or not selected; see reviewed-controls): %s" % (len(skipped), counts))


def build(report, rules, sources=None, version=None, text=None):
    """The OSCAL assessment-results document (a dict) of ``report`` (report.json's dict).

    ``rules``: the registry (rule id -> Rule); ``sources`` as for sarif.build (URIs relative to the
    repository); ``version``: the collection's; ``text``: applied to guest data (report.printable)."""
    text = text or (lambda v: "" if v is None else str(v))
    when = report["generated_at"]
    stamp = "%s|%s|%s" % (when, report.get("policy_digest"), content_digest(report["findings"]))
    bad = [f for f in report["findings"] if f["status"] in RESULT_STATUSES]
    items = _subject_items(bad, stamp, text)
    ctx = _Context(stamp, text, when, sources)
    observations, findings, risks = [], [], []
    seen = {}
    for f in bad:
        s = f["subject"]
        # OSCAL requires every uuid once: a second finding of one rule and subject (which the engine does not
        # make) gets uuids of its own, "#2" in their names, instead of repeating the first one's.
        n = seen[(f["rule"], s["kind"], s["id"])] = seen.get((f["rule"], s["kind"], s["id"]), 0) + 1
        nth = ("#%d" % n,) if n > 1 else ()
        # the observation's and the finding's title and description are the same texts
        title, description = text("%s on %s %s" % (f["rule"], s["kind"], s["id"])), ctx.description(f["message"])
        ob = _observation(f, ctx, items[(s["kind"], s["id"])]["uuid"], title, description, nth)
        observations.append(ob)
        risk_uuid = None
        if f["status"] == WAIVED:
            risk = _risk(f, ctx, ob["uuid"], description, nth)
            risks.append(risk)
            risk_uuid = risk["uuid"]
        findings.append(_finding(f, ctx, ob["uuid"], risk_uuid, title, description, nth))
    summary = report.get("summary") or {}
    result = _clean({
        "uuid": _uuid(stamp, "result"),
        "title": "vmguard.hardening audit",
        "description": _result_description(report, summary),
        "start": when,
        "end": when,
        "props": _props(("policy-digest", report.get("policy_digest")), ("fail-on", report.get("fail_on"))) or None,
        "local-definitions": {"inventory-items": list(items.values())} if items else None,
        "reviewed-controls": _reviewed(report, rules),
        "observations": observations or None,
        "risks": risks or None,
        "findings": findings or None,
    })
    extra = _since_props(report.get("since_previous"))
    if extra:
        result["props"] = (result.get("props") or []) + extra
    metadata = _clean({"title": "vmguard.hardening assessment results %s" % when, "last-modified": when,
                       "version": version or "0", "oscal-version": OSCAL_VERSION})
    doc = {
        "uuid": _uuid(stamp, "assessment-results"),
        "metadata": metadata,
        "import-ap": {"href": (sources or {}).get("policy") or "#vmguard-policy",
                      "remarks": "No OSCAL assessment plan: the plan is the vmguard policy (vmguard_policy) and its catalogue."},
        "results": [result],
    }
    return {"assessment-results": doc}
