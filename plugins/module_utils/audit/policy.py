# -*- coding: utf-8 -*-
# Copyright: (c) 2026, vmguard.hardening developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The policy document: shipped defaults, deep merge of the user's vmguard_policy, validation.

Validation walks the user's document before anything is merged and reports every problem at once
(unknown keys, rule ids and areas at any level, wrong types, non-finite numbers, ports outside
1-65535 or given as booleans, incomplete waivers, impossible dates, mode enforce on a rule that has
no remediation). Every error names the key
path, what is expected and the bad value. Pure: no Ansible imports.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import copy
import datetime
import difflib
import math
import re

from ansible_collections.vmguard.hardening.plugins.module_utils.audit.rules import RULES
from ansible_collections.vmguard.hardening.plugins.module_utils.common.timeutil import parse_date

from ansible_collections.vmguard.hardening.plugins.module_utils.audit.status import AREAS, SEVERITIES

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
        # Glob patterns over "<domain>/<snapshot>": snapshots vmguard never deletes (RB-02/03/04/13 still report them).
        "pinned_snapshots": [],
        # The rollback watcher rewrites its heartbeat file at least this often (RB-11 reads it).
        "watcher_heartbeat_seconds": 30,
        # What each harden records in the ledger (RB-07/08/09 compare the guest with it): the installed
        # version of these packages as their security floor, these accounts while locked or absent, these
        # systemd units while masked.
        "floor_packages": ["openssh-server", "openssl", "sudo", "linux-image-amd64"],
        "disabled_accounts": [],
        "masked_services": [],
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
        # ISO-02: the libvirt network each service's interfaces move to ({service} = the domain's service).
        "service_network": "vmguard-svc-{service}",
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
    """The shipped defaults. Global mode enforce: every rule whose mode is enforce gets remediated;
    ``mode: audit`` is the policy-wide switch that plans no remediation at all. A rule's own default
    mode comes from the registry: enforce where a remediation exists and is not opt-in, else audit."""
    return {
        "mode": "enforce",
        "rules": dict((r.id, {"enabled": True, "severity": r.severity, "mode": r.default_mode})
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
    """Invalid policy: ``errors`` lists one message per problem, each starting with its key path."""

    def __init__(self, errors):
        self.errors = errors
        ValueError.__init__(self, "invalid vmguard_policy: " + "; ".join(errors))


# The boolean strings Ansible's own conversion accepts (ansible.module_utils.parsing.convert_bool).
_TRUE_STRINGS = ("y", "yes", "on", "1", "true", "t")
_FALSE_STRINGS = ("n", "no", "off", "0", "false", "f")
_BOOL_EXPECTED = "a boolean (true/false, yes/no, on/off, 1/0)"
_PORT_EXPECTED = "a port 1-65535"
_WAIVER_KEYS = ("rule", "subject", "reason", "expires")
# Optional: the statuses a waiver accepts. A failure by default; an error (the rule could not judge: an
# interface type whose segment libvirt cannot tell) only when the waiver names it, never by accident.
WAIVER_STATUSES = ("fail", "error")
_WAIVER_DEFAULT_STATUSES = ["fail"]
_WAIVER_EXPECTED = {"rule": "a rule id", "subject": "a glob over subject ids",
                    "reason": "a text saying why the rule is waived", "expires": "a date YYYY-MM-DD"}
_RULE_KEYS = ("enabled", "severity", "mode")
_MODES = ("audit", "enforce")


class _Bad(Exception):
    """One invalid value; the message says what is expected and shows the value."""


def _kind(value):
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, dict):
        return "mapping"
    if isinstance(value, (list, tuple)):
        return "list"
    return type(value).__name__


def _show(value):
    """The value as the user wrote it (YAML spelling for null, booleans and non-finite numbers), bounded."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and not math.isfinite(value):
        return ".nan" if math.isnan(value) else (".inf" if value > 0 else "-.inf")
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def _got(value):
    return "got %s %s" % (_kind(value), _show(value)) if value is not None else "got null"


def _join(path, key):
    return "%s.%s" % (path, key) if path else str(key)


def _unknown_key(path, key, known):
    return "%s: unknown key (expected one of: %s)" % (_join(path, key), ", ".join(sorted(known)))


def _as_int(value, minimum=0):
    if isinstance(value, bool):
        raise _Bad("expected int, %s" % _got(value))
    if isinstance(value, float):
        if not math.isfinite(value):
            raise _Bad("expected a finite int, got %s" % _show(value))
        if not value.is_integer():
            raise _Bad("expected int, %s" % _got(value))
        value = int(value)
    elif isinstance(value, str) and re.match(r"\A\s*[-+]?[0-9]+\s*\Z", value):
        value = int(value)
    elif not isinstance(value, int):
        raise _Bad("expected int, %s" % _got(value))
    if value < 0:
        raise _Bad("must not be negative, got %s" % value)
    if value < minimum:
        raise _Bad("must be at least %d, got %s" % (minimum, value))
    return value


def _as_fraction(value):
    """A share of the fleet: a finite number in (0, 1]."""
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise _Bad("expected float, %s" % _got(value))
    try:
        number = float(value)
    except ValueError:
        raise _Bad("expected float, %s" % _got(value))
    if not math.isfinite(number):
        raise _Bad("expected a finite number, got %s" % _show(value))
    if number < 0:
        raise _Bad("must not be negative, got %s" % _show(value))
    if not 0 < number <= 1:
        raise _Bad("expected a fraction in (0, 1], got %s" % _show(value))
    return number


def _as_bool(value):
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):  # as Ansible's own boolean conversion (and the message) take it
        return value == 1
    if isinstance(value, str) and value.strip().lower() in _TRUE_STRINGS + _FALSE_STRINGS:
        return value.strip().lower() in _TRUE_STRINGS
    raise _Bad("expected %s, %s" % (_BOOL_EXPECTED, _got(value)))


def _as_network_template(value):
    """ISO-02's service network: a libvirt network name with one {service} placeholder (no other braces,
    no '/' or whitespace, which libvirt network names cannot hold)."""
    if not isinstance(value, str):
        raise _Bad("expected a network name template with {service}, %s" % _got(value))
    rest = value.replace("{service}", "")
    if value.count("{service}") != 1 or "{" in rest or "}" in rest:
        raise _Bad("expected a network name with exactly one {service} placeholder and no other braces, got %s" % _show(value))
    if "/" in rest or len(value.split()) != 1 or value != value.strip():
        raise _Bad("expected a libvirt network name (no '/' or whitespace) with {service}, got %s" % _show(value))
    return value


def _choice(choices):
    def convert(value):
        if not isinstance(value, str) or value not in choices:
            raise _Bad("expected one of %s, got %s" % (", ".join(choices), _show(value)))
        return value
    return convert


def _as_port(value):
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        raise _Bad("expected %s, %s" % (_PORT_EXPECTED, _got(value)))
    if isinstance(value, str) and not re.match(r"\A\s*[0-9]+\s*\Z", value):
        raise _Bad("expected %s, %s" % (_PORT_EXPECTED, _got(value)))
    port = int(value)
    if not 0 < port < 65536:
        raise _Bad("expected %s, got %s" % (_PORT_EXPECTED, _show(value)))
    return port


def _as_str(value):
    """A list item: a string with something in it (an empty pattern, class or key allows or requires nothing)."""
    if not isinstance(value, str):
        raise _Bad("expected str, %s" % _got(value))
    if not value.strip():
        raise _Bad("expected a non-empty string, got %s" % _show(value))
    return value


def _as_name(value):
    """A package, account or unit name: a non-empty string without whitespace."""
    if not isinstance(value, str):
        raise _Bad("expected str, %s" % _got(value))
    if not value or value != value.strip() or len(value.split()) != 1:
        raise _Bad("expected a name without whitespace, got %s" % _show(value))
    return value


def _check_value(errors, path, value, convert):
    """convert(value), or None after recording '<path>: <why>'."""
    try:
        return convert(value)
    except _Bad as e:
        errors.append("%s: %s" % (path, e))
        return None


def _check_list(errors, path, value, convert, expected):
    if not isinstance(value, (list, tuple)):
        errors.append("%s: expected a list of %s, %s" % (path, expected, _got(value)))
        return None
    out = [_check_value(errors, "%s[%d]" % (path, i), v, convert) for i, v in enumerate(value)]
    return out if None not in out else None


def _check_mapping(errors, path, value, expected):
    if isinstance(value, dict):
        return True
    errors.append("%s: expected %s, %s" % (path, expected, _got(value)))
    return False


def _suggest(rid):
    m = re.match(r"\A\s*([A-Za-z]+)[-_ ]?0*([0-9]+)\s*\Z", str(rid))  # div-1, DIV_01, DIV1 -> DIV-01
    normal = "%s-%02d" % (m.group(1).upper(), int(m.group(2))) if m else None
    close = [normal] if normal in RULES else difflib.get_close_matches(str(rid), list(RULES), n=1)
    return "did you mean %s? " % close[0] if close else ""


def _unknown_rule(rid):
    return "unknown rule id %r (%sknown: %s)" % (rid, _suggest(rid), ", ".join(sorted(RULES)))


def _check_rules(errors, rules):
    if not _check_mapping(errors, "rules", rules, "a mapping of rule id -> {enabled, severity, mode}"):
        return {}
    out = {}
    for rid, cfg in rules.items():
        path = _join("rules", rid)
        if rid not in RULES:
            errors.append("%s: %s" % (path, _unknown_rule(rid)))
            continue
        if not _check_mapping(errors, path, cfg, "a mapping of enabled, severity, mode"):
            continue
        out[rid] = {}
        for key, value in cfg.items():
            convert = {"enabled": _as_bool, "severity": _choice(SEVERITIES), "mode": _choice(_MODES)}.get(key)
            if convert is None:
                errors.append(_unknown_key(path, key, _RULE_KEYS))
            else:
                out[rid][key] = _check_value(errors, _join(path, key), value, convert)
        if out[rid].get("mode") == "enforce" and RULES[rid].remediated_by is None:
            errors.append("%s: enforce is not possible: %s has no remediation (audit only)" % (_join(path, "mode"), rid))
    return out


def _check_services(errors, path, services):
    if not _check_mapping(errors, path, services, "a mapping of service name -> {ports: [...]}"):
        return None
    out = {}
    for name, cfg in services.items():
        spath = _join(path, name)
        if not isinstance(name, str) or not name.strip() or len(name.split()) != 1 or name != name.strip() or "/" in name \
                or "{" in name or "}" in name:
            errors.append("%s: expected a service name (a non-empty string without whitespace, '/' or braces: it names "
                          "the service's libvirt network), got %s" % (spath, _show(name)))
            continue
        if not _check_mapping(errors, spath, cfg, "a mapping {ports: [...]}"):
            continue
        for key in cfg:
            if key != "ports":
                errors.append(_unknown_key(spath, key, ("ports",)))
        if "ports" in cfg:
            out[name] = {"ports": _check_list(errors, _join(spath, "ports"), cfg["ports"], _as_port, "ports 1-65535")}
        elif name in DEFAULT_PARAMS["isolation"]["services"]:
            out[name] = {}
        else:
            errors.append("%s: missing (expected a list of ports 1-65535)" % _join(spath, "ports"))
    return out


# Lists of names (what the ledger records), and what their items are.
_NAME_LISTS = {("rollback", "floor_packages"): "package names", ("rollback", "disabled_accounts"): "account names",
               ("rollback", "masked_services"): "systemd unit names", ("isolation", "nwfilters"): "nwfilter names"}


def _param_checker(area, key):
    """(errors, path, value) -> converted value, for one key of params.<area>."""
    special = {
        ("diversity", "reseal"): _choice(("all", "all_but_one")),
        ("diversity", "max_fleet_share"): _as_fraction,
        ("rollback", "watcher_heartbeat_seconds"): lambda v: _as_int(v, minimum=1),
        # 0 would refuse every domain start (the start gate itself requires >= 1) / allow no guest on any build.
        ("visibility", "max_dormant_days"): lambda v: _as_int(v, minimum=1),
        ("diversity", "max_clones_per_build"): lambda v: _as_int(v, minimum=1),
        ("isolation", "service_network"): _as_network_template,
    }
    if (area, key) in special:
        convert = special[(area, key)]
        return lambda errors, path, value: _check_value(errors, path, value, convert)
    if (area, key) == ("isolation", "services"):
        return _check_services
    if (area, key) in _NAME_LISTS:
        return lambda errors, path, value: _check_list(errors, path, value, _as_name, _NAME_LISTS[(area, key)])
    default = DEFAULT_PARAMS[area][key]
    if key.endswith("_ports"):
        return lambda errors, path, value: _check_list(errors, path, value, _as_port, "ports 1-65535")
    if isinstance(default, list):
        return lambda errors, path, value: _check_list(errors, path, value, _as_str, "non-empty strings")
    convert = _as_bool if isinstance(default, bool) else _as_int
    return lambda errors, path, value: _check_value(errors, path, value, convert)


def _check_params(errors, params):
    if not _check_mapping(errors, "params", params, "a mapping of area -> parameters (%s)" % ", ".join(AREAS)):
        return {}
    out = {}
    for area, values in params.items():
        path = _join("params", area)
        if area not in DEFAULT_PARAMS:
            errors.append("%s: unknown area (expected one of %s)" % (path, ", ".join(AREAS)))
            continue
        if not _check_mapping(errors, path, values, "a mapping of %s parameters" % area):
            continue
        out[area] = {}
        for key, value in values.items():
            if key not in DEFAULT_PARAMS[area]:
                errors.append(_unknown_key(path, key, DEFAULT_PARAMS[area]))
            else:
                out[area][key] = _param_checker(area, key)(errors, _join(path, key), value)
    return out


def _check_expires(value):
    if isinstance(value, datetime.datetime):
        # YAML reads an unquoted 2026-11-18T23:30:00+14:00 as a timestamp: its own date is not the UTC day the
        # engine compares with (that waiver, over at 09:30 UTC, was honoured to the end of the 18th UTC).
        raise _Bad("expected a date YYYY-MM-DD, got the date and time %s: a waiver is valid through the day it "
                   "names (UTC); write that date" % value.isoformat())
    if isinstance(value, datetime.date):  # YAML hands over unquoted dates as date objects
        return parse_date(value).isoformat()
    if not isinstance(value, str):
        raise _Bad("expected a date YYYY-MM-DD, %s" % _got(value))
    try:
        return parse_date(value).isoformat()
    except ValueError as e:
        raise _Bad(str(e))


def _check_waiver_field(key, value):
    if key == "expires":
        return _check_expires(value)
    if not isinstance(value, str):
        raise _Bad("expected a non-empty string, %s" % _got(value))
    if not value.strip():
        raise _Bad("must explain why the rule is waived" if key == "reason" else "must not be empty")
    if key == "rule" and value not in RULES:
        raise _Bad(_unknown_rule(value))
    return value


def _check_waiver_statuses(errors, path, value):
    statuses = _check_list(errors, path, value, _choice(WAIVER_STATUSES), "statuses (%s)" % ", ".join(WAIVER_STATUSES))
    if statuses is not None and not statuses:
        errors.append("%s: must name at least one status (%s)" % (path, ", ".join(WAIVER_STATUSES)))
    return sorted(set(statuses or _WAIVER_DEFAULT_STATUSES))


def _check_waivers(errors, waivers):
    if not isinstance(waivers, (list, tuple)):
        errors.append("waivers: expected a list of {rule, subject, reason, expires}, %s" % _got(waivers))
        return []
    out = []
    for i, waiver in enumerate(waivers):
        path = "waivers[%d]" % i
        if not _check_mapping(errors, path, waiver, "a mapping {rule, subject, reason, expires}"):
            continue
        for key in waiver:
            if key not in _WAIVER_KEYS + ("statuses",):
                errors.append(_unknown_key(path, key, _WAIVER_KEYS + ("statuses",)))
        checked = {}
        for key in _WAIVER_KEYS:
            if key not in waiver:
                errors.append("%s.%s: missing (expected %s)" % (path, key, _WAIVER_EXPECTED[key]))
            else:
                checked[key] = _check_value(errors, "%s.%s" % (path, key), waiver[key],
                                            lambda v, k=key: _check_waiver_field(k, v))
        checked["statuses"] = _check_waiver_statuses(errors, path + ".statuses", waiver.get("statuses", _WAIVER_DEFAULT_STATUSES))
        out.append(checked)
    return out


def check_policy(doc):
    """(errors, normalized copy of the user's document): every problem of the whole document at once."""
    errors = []
    if not isinstance(doc, dict):
        return ["vmguard_policy: expected a dict (mapping of mode, rules, params, waivers), %s" % _got(doc)], None
    out = {}
    for key, value in doc.items():
        if key == "mode":
            out["mode"] = _check_value(errors, "mode", value, _choice(_MODES))
        elif key == "rules":
            out["rules"] = _check_rules(errors, value)
        elif key == "params":
            out["params"] = _check_params(errors, value)
        elif key == "waivers":
            out["waivers"] = _check_waivers(errors, value)
        else:
            errors.append(_unknown_key("", key, ("mode", "rules", "params", "waivers")))
    return errors, out


def load_policy(user_policy=None):
    """Return the effective policy (defaults deep-merged with the user's), or raise PolicyError.

    Nothing is merged until the whole document is valid; PolicyError lists every problem, each as
    '<key path>: <what is expected>, got <the bad value>'.
    """
    errors, checked = check_policy({} if user_policy is None else user_policy)
    if errors:
        raise PolicyError(errors)
    return deep_merge(default_policy(), checked)
