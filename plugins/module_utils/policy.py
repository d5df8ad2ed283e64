# -*- coding: utf-8 -*-
# Copyright: (c) 2026, vmguard.hardening developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The policy document: shipped defaults, deep merge of the user's vmguard_policy, validation.

Validation uses Ansible's own argument-spec validator (ansible.module_utils.common.arg_spec) for
types and their error messages, plus the checks it cannot express (unknown rule ids, negative
thresholds, waiver dates). Every error names the key path, the bad value and what is expected.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import copy
import datetime
import re

from ansible_collections.vmguard.hardening.plugins.module_utils.rules import RULES
from ansible_collections.vmguard.hardening.plugins.module_utils.timeutil import parse_date

SEVERITIES = ("low", "medium", "high", "critical")
STATUSES = ("pass", "fail", "error", "waived", "not_applicable")
AREAS = ("diversity", "rollback", "isolation", "leakage", "visibility")

DEFAULT_PARAMS = {
    "diversity": {
        "reseal": "all",
        "max_clones_per_build": 25,
        "max_fleet_share": 0.5,
        "max_image_age_days": 90,
    },
    "rollback": {
        "max_snapshot_age_hours": 72,
        "max_snapshots": 3,
        "allow_memory_snapshots": False,
        "prune_snapshots": False,
    },
    "isolation": {
        "services": {
            "web": {"ports": [80, 443]},
            "mail": {"ports": [25, 587, 993]},
            "dns": {"ports": [53]},
            "db": {"ports": [5432]},
        },
        "management_ports": [22],
        # UDP ports DHCP clients bind (v4, v6): sockets of a client, not services (ISO-01).
        "client_ports": [68, 546],
        "management_networks": [],
        "nwfilters": ["clean-traffic", "clean-traffic-gateway"],
        "allowed_hostdevs": [],
        "allowed_filesystems": [],
        "allowed_shmem": [],
        "allow_vsock": False,
    },
    "leakage": {
        "require_console_password": False,
        "confidential_classes": ["confidential", "secret"],
    },
    "visibility": {
        "max_dormant_days": 30,
        "required_metadata": ["owner", "service", "expires"],
    },
}


def default_policy():
    return {
        "mode": "audit",
        "rules": dict((r.id, {"enabled": True, "severity": r.severity, "mode": r.action})
                      for r in RULES.values()),
        "params": copy.deepcopy(DEFAULT_PARAMS),
        "waivers": [],
    }


def deep_merge(base, override):
    """Dicts merge recursively; anything else (lists included) in override replaces base."""
    if not isinstance(base, dict) or not isinstance(override, dict):
        return copy.deepcopy(override)
    out = copy.deepcopy(base)
    for k, v in override.items():
        out[k] = deep_merge(out[k], v) if k in out and isinstance(out[k], dict) and isinstance(v, dict) else copy.deepcopy(v)
    return out


class PolicyError(ValueError):
    """Invalid policy: ``errors`` lists one message per problem."""

    def __init__(self, errors):
        self.errors = errors
        ValueError.__init__(self, "invalid vmguard_policy: " + "; ".join(errors))


def _spec_for(value):
    """Argument spec that mirrors the type of a default value."""
    if isinstance(value, bool):
        return {"type": "bool"}
    if isinstance(value, int):
        return {"type": "int"}
    if isinstance(value, float):
        return {"type": "float"}
    if isinstance(value, list):
        elements = "int" if value and isinstance(value[0], int) else "str"
        return {"type": "list", "elements": elements}
    if isinstance(value, dict):
        return {"type": "dict"}
    return {"type": "str"}


def _policy_spec():
    rule_spec = {"type": "dict", "options": {
        "enabled": {"type": "bool"},
        "severity": {"type": "str", "choices": list(SEVERITIES)},
        "mode": {"type": "str", "choices": ["audit", "enforce"]},
    }}
    params = {}
    for area, values in DEFAULT_PARAMS.items():
        opts = dict((k, _spec_for(v)) for k, v in values.items())
        params[area] = {"type": "dict", "options": opts}
    params["diversity"]["options"]["reseal"]["choices"] = ["all", "all_but_one"]
    return {
        "mode": {"type": "str", "choices": ["audit", "enforce"]},
        "rules": {"type": "dict", "options": dict((rid, copy.deepcopy(rule_spec)) for rid in RULES)},
        "params": {"type": "dict", "options": params},
        "waivers": {"type": "list", "elements": "dict", "options": {
            "rule": {"type": "str", "required": True},
            "subject": {"type": "str", "required": True},
            "reason": {"type": "str", "required": True},
            "expires": {"type": "str", "required": True},
        }},
    }


def _validate_types(doc):
    from ansible.module_utils.common.arg_spec import ArgumentSpecValidator  # Ansible's own validator
    result = ArgumentSpecValidator(_policy_spec()).validate(doc)
    errors = []
    for err in result.errors:
        msg = str(getattr(err, "message", err))
        m = re.match(r"argument '([^']+)' is of type (\S+)(?: found in '([^']+)')?\.? and we were unable to "
                     r"convert to (\w+): (.*)", msg)
        if m:
            name, found, where, want, detail = m.groups()
            path = ".".join([p.strip() for p in where.split("->")] + [name]) if where else name
            msg = "%s: expected %s, got %s (%s)" % (path, want, found, detail)
        m = re.match(r"Unsupported parameters for \(.*?\) module: (.+?)(?: found in (.+?))?\. "
                     r"Supported parameters include: (.*)", msg)
        if m:
            names, where, known = m.groups()
            prefix = ".".join(p.strip() for p in where.split("->")) + "." if where else ""
            msg = "; ".join("%s%s: unknown key (expected one of: %s)" % (prefix, n.strip(), known.rstrip("."))
                            for n in names.split(","))
        m = re.match(r"^([\w.-]+)\. Supported parameters include: (.*)$", msg)
        if m:
            msg = "%s: unknown key (expected one of: %s)" % (m.group(1), m.group(2).rstrip("."))
        m = re.match(r"^value of (\S+) must be one of: (.*), got: (.*?) found in (.+)$", msg)
        if m:
            where = ".".join(p.strip() for p in m.group(4).split("->"))
            msg = "%s.%s: expected one of %s, got %s" % (where, m.group(1), m.group(2), m.group(3))
        m = re.match(r"missing required arguments: (.+?) found in (.+)$", msg)
        if m:
            msg = "%s: missing required key(s): %s" % (".".join(p.strip() for p in m.group(2).split("->")), m.group(1))
        errors.append(msg)
    return errors, result.validated_parameters


def load_policy(user_policy=None):
    """Return the effective policy (defaults deep-merged with the user's), or raise PolicyError."""
    user_policy = user_policy or {}
    errors = []
    if not isinstance(user_policy, dict):
        raise PolicyError(["vmguard_policy: expected a dict, got %s" % type(user_policy).__name__])
    for rid in (user_policy.get("rules") or {}):
        if rid not in RULES:
            errors.append("rules.%s: unknown rule id (known: %s)" % (rid, ", ".join(sorted(RULES))))
    for area in (user_policy.get("params") or {}):
        if area not in DEFAULT_PARAMS:
            errors.append("params.%s: unknown area (expected one of %s)" % (area, ", ".join(AREAS)))
    if errors:
        raise PolicyError(errors)
    # Waivers are stored with their dates as strings; YAML may hand over date objects.
    merged = deep_merge(default_policy(), user_policy)
    for w in merged.get("waivers") or []:
        if isinstance(w, dict) and isinstance(w.get("expires"), datetime.date):
            w["expires"] = w["expires"].isoformat()
    type_errors, validated = _validate_types(merged)
    errors.extend(type_errors)
    merged = validated
    for area, values in merged["params"].items():
        for k, v in values.items():
            if isinstance(v, (int, float)) and not isinstance(v, bool) and v < 0:
                errors.append("params.%s.%s: must not be negative, got %s" % (area, k, v))
    share = merged["params"]["diversity"]["max_fleet_share"]
    if isinstance(share, (int, float)) and not 0 < share <= 1:
        errors.append("params.diversity.max_fleet_share: expected a fraction in (0, 1], got %s" % share)
    for svc, cfg in merged["params"]["isolation"]["services"].items():
        ports = (cfg or {}).get("ports") if isinstance(cfg, dict) else None
        if not isinstance(ports, list) or not all(isinstance(p, int) and 0 < p < 65536 for p in ports):
            errors.append("params.isolation.services.%s.ports: expected a list of ports 1-65535, got %r"
                          % (svc, ports))
    for i, w in enumerate(merged["waivers"] or []):
        if not isinstance(w, dict) or not all(isinstance(w.get(k), str) for k in ("rule", "subject", "reason", "expires")):
            continue  # already reported by the type validation
        if w["rule"] not in RULES:
            errors.append("waivers[%d].rule: unknown rule id %r" % (i, w["rule"]))
        try:
            parse_date(w["expires"])
        except ValueError as e:
            errors.append("waivers[%d].expires: %s" % (i, e))
        if not w["reason"].strip():
            errors.append("waivers[%d].reason: must explain why the rule is waived" % i)
    if errors:
        raise PolicyError(errors)
    return merged
