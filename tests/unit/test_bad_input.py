"""Bad input is refused before anything runs, with messages that name the key path or argument.

Three layers, table-driven:
- POLICY_CASES: invalid vmguard_policy documents through load_policy (pure, every case);
- AUDIT_CASES: a few of them through a real `ansible-playbook` run of the audit playbook against
  libvirt's test driver (test:///default): non-zero exit, every path in the output, no evidence
  module ran, no report directory (a valid control run proves the report directory would appear);
- MODULE_CASES: bad arguments of the collection's modules through their real entry point (one
  playbook, one task per case) with a snapshot of the target files before/after.
The Ansible runs start together in a module-scoped fixture, so the whole file stays fast.
"""

import copy
import hashlib
import json
import os
import subprocess
import sys
import textwrap
from concurrent.futures import ThreadPoolExecutor

import pytest

from ansible_collections.vmguard.hardening.plugins.module_utils.remediation import ledger as ledger_mod
from ansible_collections.vmguard.hardening.plugins.module_utils.audit.policy import PolicyError, load_policy

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
BIN = os.path.dirname(sys.executable)
INF, NAN = float("inf"), float("nan")
WAIVER = {"rule": "ISO-09", "subject": "hv1/*", "reason": "vendor appliance", "expires": "2099-01-01"}


def waiver(**changes):
    w = dict(WAIVER, **changes)
    return dict((k, v) for k, v in w.items() if v is not _DROP)


_DROP = object()


def iso(**kw):
    return {"params": {"isolation": kw}}


# (id, policy document, exact key path the error starts with, fragment of that error)
POLICY_CASES = [
    # non-finite and out-of-range numbers
    ("share-inf", {"params": {"diversity": {"max_fleet_share": INF}}}, "params.diversity.max_fleet_share",
     "expected a finite number, got .inf"),
    ("share-neg-inf", {"params": {"diversity": {"max_fleet_share": -INF}}}, "params.diversity.max_fleet_share",
     "got -.inf"),
    ("share-nan", {"params": {"diversity": {"max_fleet_share": NAN}}}, "params.diversity.max_fleet_share", "got .nan"),
    ("share-inf-string", {"params": {"diversity": {"max_fleet_share": "inf"}}}, "params.diversity.max_fleet_share",
     "expected a finite number, got 'inf'"),
    ("share-zero", {"params": {"diversity": {"max_fleet_share": 0}}}, "params.diversity.max_fleet_share",
     "expected a fraction in (0, 1], got 0"),
    ("share-bool", {"params": {"diversity": {"max_fleet_share": True}}}, "params.diversity.max_fleet_share",
     "expected float, got bool true"),
    ("age-inf", {"params": {"rollback": {"max_snapshot_age_hours": INF}}}, "params.rollback.max_snapshot_age_hours",
     "expected a finite int, got .inf"),
    ("age-nan", {"params": {"rollback": {"max_snapshot_age_hours": NAN}}}, "params.rollback.max_snapshot_age_hours",
     "expected a finite int, got .nan"),
    ("image-age-neg-inf", {"params": {"diversity": {"max_image_age_days": -INF}}}, "params.diversity.max_image_age_days",
     "got -.inf"),
    ("clones-float", {"params": {"diversity": {"max_clones_per_build": 2.5}}}, "params.diversity.max_clones_per_build",
     "expected int, got float 2.5"),
    ("dormant-negative", {"params": {"visibility": {"max_dormant_days": -3}}}, "params.visibility.max_dormant_days",
     "must not be negative, got -3"),
    ("heartbeat-zero", {"params": {"rollback": {"watcher_heartbeat_seconds": 0}}},
     "params.rollback.watcher_heartbeat_seconds", "must be at least 1, got 0"),
    ("heartbeat-word", {"params": {"rollback": {"watcher_heartbeat_seconds": "fast"}}},
     "params.rollback.watcher_heartbeat_seconds", "expected int, got str 'fast'"),
    # ports and services
    ("mgmt-port-bool", iso(management_ports=[True]), "params.isolation.management_ports[0]",
     "expected a port 1-65535, got bool true"),
    ("mgmt-port-zero", iso(management_ports=[22, 0]), "params.isolation.management_ports[1]",
     "expected a port 1-65535, got 0"),
    ("client-port-high", iso(client_ports=[65536]), "params.isolation.client_ports[0]", "got 65536"),
    ("client-port-word", iso(client_ports=["dhcp"]), "params.isolation.client_ports[0]", "got str 'dhcp'"),
    ("mgmt-ports-scalar", iso(management_ports=22), "params.isolation.management_ports",
     "expected a list of ports 1-65535, got int 22"),
    ("svc-port-bool", iso(services={"web": {"ports": [443, False]}}), "params.isolation.services.web.ports[1]",
     "got bool false"),
    ("svc-port-negative", iso(services={"web": {"ports": [-1]}}), "params.isolation.services.web.ports[0]", "got -1"),
    ("svc-port-float", iso(services={"dns": {"ports": [53.5]}}), "params.isolation.services.dns.ports[0]",
     "got float 53.5"),
    ("svc-ports-scalar", iso(services={"web": {"ports": 80}}), "params.isolation.services.web.ports",
     "expected a list of ports"),
    ("services-list", iso(services=["web", "mail"]), "params.isolation.services",
     "expected a mapping of service name -> {ports: [...]}, got list"),
    ("service-list", iso(services={"web": [80, 443]}), "params.isolation.services.web",
     "expected a mapping {ports: [...]}, got list"),
    ("service-str", iso(services={"web": "80,443"}), "params.isolation.services.web",
     "expected a mapping {ports: [...]}, got str"),
    ("service-no-ports", iso(services={"ldap": {}}), "params.isolation.services.ldap.ports", "missing"),
    ("service-unknown-key", iso(services={"web": {"ports": [80], "proto": "tcp"}}), "params.isolation.services.web.proto",
     "unknown key (expected one of: ports)"),
    ("nwfilter-int", iso(nwfilters=[1]), "params.isolation.nwfilters[0]", "expected str, got int 1"),
    ("metadata-scalar", {"params": {"visibility": {"required_metadata": "owner"}}},
     "params.visibility.required_metadata", "expected a list of non-empty strings, got str 'owner'"),
    ("metadata-empty", {"params": {"visibility": {"required_metadata": ["owner", " "]}}},
     "params.visibility.required_metadata[1]", "expected a non-empty string, got ' '"),
    ("nwfilter-empty", {"params": {"isolation": {"nwfilters": [""]}}},
     "params.isolation.nwfilters[0]", "expected a name without whitespace, got ''"),
    ("service-name-space", {"params": {"isolation": {"services": {"we b": {"ports": [80]}}}}},
     "params.isolation.services.we b", "expected a service name (a non-empty string without whitespace"),
    ("service-name-slash", {"params": {"isolation": {"services": {"web/1": {"ports": [80]}}}}},
     "params.isolation.services.web/1", "without whitespace, '/' or braces"),
    ("waiver-statuses-pass", {"waivers": [{"rule": "RB-01", "subject": "*", "reason": "r", "expires": "2030-01-01", "statuses": ["pass"]}]},
     "waivers[0].statuses[0]", "expected one of fail, error, got 'pass'"),
    ("waiver-statuses-empty", {"waivers": [{"rule": "RB-01", "subject": "*", "reason": "r", "expires": "2030-01-01", "statuses": []}]},
     "waivers[0].statuses", "must name at least one status"),
    ("dormant-zero", {"params": {"visibility": {"max_dormant_days": 0}}},
     "params.visibility.max_dormant_days", "must be at least 1, got 0"),
    ("clones-zero", {"params": {"diversity": {"max_clones_per_build": 0}}},
     "params.diversity.max_clones_per_build", "must be at least 1, got 0"),
    ("bool-int-two", {"params": {"rollback": {"allow_memory_snapshots": 2}}},
     "params.rollback.allow_memory_snapshots", "expected a boolean"),
    ("vsock-word", iso(allow_vsock="sometimes"), "params.isolation.allow_vsock",
     "expected a boolean (true/false, yes/no, on/off, 1/0), got str 'sometimes'"),
    ("reseal-choice", {"params": {"diversity": {"reseal": "some"}}}, "params.diversity.reseal",
     "expected one of all, all_but_one, got 'some'"),
    # waivers
    ("waiver-no-reason", {"waivers": [WAIVER, WAIVER, waiver(reason=_DROP)]}, "waivers[2].reason", "missing"),
    ("waiver-subject-null", {"waivers": [waiver(subject=None)]}, "waivers[0].subject",
     "expected a non-empty string, got null"),
    ("waiver-subject-empty", {"waivers": [waiver(subject="")]}, "waivers[0].subject", "must not be empty"),
    ("waiver-rule-empty", {"waivers": [waiver(rule="")]}, "waivers[0].rule", "must not be empty"),
    ("waiver-reason-blank", {"waivers": [waiver(reason="   ")]}, "waivers[0].reason", "must explain why the rule is waived"),
    ("waiver-rule-unknown", {"waivers": [waiver(rule="ISO-99")]}, "waivers[0].rule", "unknown rule id 'ISO-99'"),
    ("waiver-expiry-garbage", {"waivers": [waiver(expires="2099-01-01garbage")]}, "waivers[0].expires",
     "expected a date YYYY-MM-DD, got '2099-01-01garbage'"),
    ("waiver-expiry-short", {"waivers": [waiver(expires="2099-1-1")]}, "waivers[0].expires", "got '2099-1-1'"),
    ("waiver-expiry-no-such-day", {"waivers": [waiver(expires="2099-02-30")]}, "waivers[0].expires",
     "day is out of range for month"),
    ("waiver-expiry-newline", {"waivers": [waiver(expires="2099-01-01\n")]}, "waivers[0].expires",
     "expected a date YYYY-MM-DD"),
    ("waiver-expiry-int", {"waivers": [waiver(expires=20990101)]}, "waivers[0].expires", "got int 20990101"),
    ("waiver-unknown-key", {"waivers": [waiver(until="2099-01-01")]}, "waivers[0].until",
     "unknown key (expected one of: expires, reason, rule, statuses, subject)"),
    ("waiver-not-mapping", {"waivers": [WAIVER, "ISO-09"]}, "waivers[1]",
     "expected a mapping {rule, subject, reason, expires}, got str 'ISO-09'"),
    ("waivers-mapping", {"waivers": WAIVER}, "waivers", "expected a list of {rule, subject, reason, expires}, got mapping"),
    ("waivers-null", {"waivers": None}, "waivers", "got null"),
    # rules, areas, keys, modes
    ("rule-unknown", {"rules": {"DIV-99": {}}}, "rules.DIV-99", "unknown rule id 'DIV-99'"),
    ("rule-misspelt", {"rules": {"div-1": {"enabled": False}}}, "rules.div-1", "did you mean DIV-01?"),
    ("rules-list", {"rules": ["DIV-01"]}, "rules", "expected a mapping of rule id -> {enabled, severity, mode}, got list"),
    ("rule-null", {"rules": {"DIV-01": None}}, "rules.DIV-01", "expected a mapping of enabled, severity, mode, got null"),
    ("rule-enabled-word", {"rules": {"DIV-01": {"enabled": "maybe"}}}, "rules.DIV-01.enabled", "got str 'maybe'"),
    ("rule-enabled-int", {"rules": {"DIV-01": {"enabled": 2}}}, "rules.DIV-01.enabled", "got int 2"),
    ("rule-severity", {"rules": {"DIV-01": {"severity": "urgent"}}}, "rules.DIV-01.severity",
     "expected one of low, medium, high, critical, got 'urgent'"),
    ("rule-mode", {"rules": {"DIV-01": {"mode": "fix"}}}, "rules.DIV-01.mode", "expected one of audit, enforce, got 'fix'"),
    ("rule-enforce-audit-only", {"rules": {"VIS-03": {"mode": "enforce"}}}, "rules.VIS-03.mode",
     "enforce is not possible: VIS-03 has no remediation (audit only)"),
    ("rule-enforce-audit-only-opt-out-too", {"rules": {"ISO-09": {"enabled": False, "mode": "enforce"}}}, "rules.ISO-09.mode",
     "enforce is not possible: ISO-09 has no remediation (audit only)"),
    ("rule-unknown-key", {"rules": {"DIV-01": {"action": "enforce"}}}, "rules.DIV-01.action",
     "unknown key (expected one of: enabled, mode, severity)"),
    ("area-unknown", {"params": {"planets": {}}}, "params.planets", "unknown area"),
    ("param-unknown", {"params": {"rollback": {"bogus": 1}}}, "params.rollback.bogus", "unknown key"),
    ("area-list", {"params": {"rollback": [1]}}, "params.rollback", "expected a mapping of rollback parameters, got list"),
    ("params-null", {"params": None}, "params", "got null"),
    ("mode-word", {"mode": "yolo"}, "mode", "expected one of audit, enforce, got 'yolo'"),
    ("mode-bool", {"mode": True}, "mode", "got true"),
    ("top-level-typo", {"wavers": []}, "wavers", "unknown key (expected one of: mode, params, rules, waivers)"),
    ("policy-list", ["DIV-01"], "vmguard_policy", "expected a dict"),
]


def snapshot(top):
    """Names, sizes, mtimes (ns), modes and content digests of everything under top."""
    out = {}
    for base, dirs, files in os.walk(top):
        for name in dirs + files:
            p = os.path.join(base, name)
            st = os.lstat(p)
            digest = None
            if os.path.isfile(p) and not os.path.islink(p):
                with open(p, "rb") as f:
                    digest = hashlib.sha256(f.read()).hexdigest()
            out[os.path.relpath(p, top)] = (st.st_size, st.st_mtime_ns, st.st_mode, digest)
    return out


@pytest.mark.parametrize("doc,path,fragment", [c[1:] for c in POLICY_CASES], ids=[c[0] for c in POLICY_CASES])
def test_policy_rejected_naming_the_path(doc, path, fragment):
    before = repr(copy.deepcopy(doc))
    with pytest.raises(PolicyError) as e:
        load_policy(doc)
    mine = [m for m in e.value.errors if m.startswith(path + ": ")]
    assert any(fragment in m for m in mine), e.value.errors
    assert repr(doc) == before  # the caller's document is not changed


def test_enough_cases_and_distinct_ids():
    ids = [c[0] for c in POLICY_CASES]
    assert len(ids) >= 40 and len(set(ids)) == len(ids)


def test_every_error_of_a_document_reported_together_in_order():
    """Unknown ids, areas and keys do not hide the other errors: one PolicyError, document order."""
    doc = {
        "mode": "yolo",
        "rules": {"DIV-99": {}, "DIV-01": {"enabled": "maybe", "severity": "urgent"}},
        "params": {"planets": {}, "diversity": {"max_fleet_share": INF},
                   "rollback": {"max_snapshot_age_hours": NAN, "bogus": 1},
                   "isolation": {"management_ports": [True], "services": ["web"]}},
        "waivers": [WAIVER, waiver(rule="NOPE-1", reason=_DROP, expires="2099-02-30")],
        "wavers": [],
    }
    with pytest.raises(PolicyError) as e:
        load_policy(doc)
    assert [m.split(": ", 1)[0] for m in e.value.errors] == [
        "mode", "rules.DIV-99", "rules.DIV-01.enabled", "rules.DIV-01.severity", "params.planets",
        "params.diversity.max_fleet_share", "params.rollback.max_snapshot_age_hours", "params.rollback.bogus",
        "params.isolation.management_ports[0]", "params.isolation.services", "waivers[1].rule", "waivers[1].reason",
        "waivers[1].expires", "wavers"], e.value.errors


# ---------------------------------------------------------------------------------------------
# Real Ansible runs (started together, once for the module)

AUDIT_CASES = {
    "numbers": ("""\
        vmguard_policy:
          params:
            diversity: {max_fleet_share: .inf}
            rollback: {max_snapshot_age_hours: .nan, watcher_heartbeat_seconds: 0}
        """, ["params.diversity.max_fleet_share", "params.rollback.max_snapshot_age_hours",
              "params.rollback.watcher_heartbeat_seconds"]),
    "ports": ("""\
        vmguard_policy:
          params:
            isolation:
              management_ports: [true, 70000]
              client_ports: [dhcp]
              services: [web, mail]
        """, ["params.isolation.management_ports[0]", "params.isolation.management_ports[1]",
              "params.isolation.client_ports[0]", "params.isolation.services"]),
    "waivers": ("""\
        vmguard_policy:
          waivers:
            - {rule: ISO-09, subject: "hv1/*", reason: legacy, expires: 2099-01-01garbage}
            - {rule: ISO-09, subject: null, reason: legacy, expires: "2099-02-30"}
            - {rule: ISO-99, subject: "hv1/*", expires: "2099-1-1"}
        """, ["waivers[0].expires", "waivers[1].subject", "waivers[1].expires", "waivers[2].rule",
              "waivers[2].reason", "waivers[2].expires"]),
    "unknown": ("""\
        vmguard_policy:
          wavers: []
          rules:
            DIV-99: {enabled: false}
            DIV-01: {enabled: maybe, severity: urgent}
          params:
            planets: {}
            rollback: {bogus: 1}
        """, ["wavers", "rules.DIV-99", "rules.DIV-01.enabled", "rules.DIV-01.severity", "params.planets",
              "params.rollback.bogus"]),
    "modes": ("""\
        vmguard_policy:
          mode: fix
          rules:
            ISO-09: {mode: enforce}
            DIV-03: {mode: enforce}
        """, ["mode", "rules.ISO-09.mode"]),
    "control": ("""\
        vmguard_policy:
          params:
            rollback: {max_snapshots: 2, watcher_heartbeat_seconds: 10}
          waivers:
            - {rule: ISO-09, subject: "hv1/*", reason: legacy, expires: 2099-01-01}
        """, []),
}

NODE = """<node>
<domain type='test'><name>vmgbad-a</name><uuid>11111111-2222-4333-8444-777777777777</uuid>
  <memory>65536</memory><os><type>hvm</type></os><devices/></domain>
</node>"""
GOOD_UUID = "11111111-2222-4333-8444-777777777777"

# (id, module, args (templated with {t} = the targets directory), fragment naming the bad argument or value)
MODULE_CASES = [
    ("ledger-bad-uuid", "ledger", {"uuid": "not-a-uuid", "dir": "{t}/ledger", "hardened": True},
     "uuid: not a domain UUID: 'not-a-uuid'"),
    ("ledger-uuid-traversal", "ledger", {"uuid": "../" + GOOD_UUID, "dir": "{t}/ledger", "hardened": True},
     "uuid: not a domain UUID: '../%s'" % GOOD_UUID),
    ("ledger-bad-epoch", "ledger", {"uuid": GOOD_UUID, "dir": "{t}/ledger", "epoch": "rollback"},
     "value of epoch must be one of: prepare, commit, got: rollback"),
    ("ledger-bad-bool", "ledger", {"uuid": GOOD_UUID, "dir": "{t}/ledger", "hardened": "maybe"}, "'hardened'"),
    ("ledger-no-uuid", "ledger", {"dir": "{t}/ledger", "hardened": True}, "missing required arguments: uuid"),
    ("ledger-unknown-arg", "ledger", {"uuid": GOOD_UUID, "dir": "{t}/ledger", "colour": "red"}, "colour"),
    ("domain-policy-unknown-fix", "domain_policy",
     {"uri": "test://{t}/node.xml", "fixes": ["ISO-99"], "backup_dir": "{t}/backup"}, "fixes: no domain remediation for ISO-99"),
    ("domain-policy-no-fixes", "domain_policy", {"uri": "test://{t}/node.xml", "backup_dir": "{t}/backup"},
     "one of the following is required: fixes, domain_fixes"),
    ("image-seal-missing-path", "image_seal", {"path": "{t}/nope/tree", "state": "sealed"},
     "path: {t}/nope/tree does not exist"),
    ("image-seal-bad-state", "image_seal", {"path": "{t}/tree", "state": "destroyed"},
     "value of state must be one of: sealed, verified, got: destroyed"),
    ("image-seal-file-sealed", "image_seal", {"path": "{t}/disk.img", "state": "sealed"},
     "an image file can only be verified offline"),
]


def _env():
    return dict(os.environ, ANSIBLE_COLLECTIONS_PATH=os.path.join(ROOT, ".cache", "collections"),
                ANSIBLE_CONFIG=os.path.join(ROOT, "ansible.cfg"), ANSIBLE_LOAD_CALLBACK_PLUGINS="1",
                ANSIBLE_STDOUT_CALLBACK="ansible.posix.json", ANSIBLE_NOCOLOR="1",
                PATH=BIN + os.pathsep + os.environ.get("PATH", ""))


def _run(cmd, cwd):
    p = subprocess.run(cmd, cwd=cwd, env=_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       universal_newlines=True, timeout=120, check=False)
    body = p.stdout[p.stdout.index("{"):] if "{" in p.stdout else ""
    try:
        parsed = json.JSONDecoder().raw_decode(body)[0] if body else None
    except ValueError:
        parsed = None
    return {"rc": p.returncode, "out": p.stdout + p.stderr, "json": parsed}


def _targets(top):
    t = os.path.join(top, "targets")
    os.makedirs(os.path.join(t, "tree", "etc"))
    with open(os.path.join(t, "tree", "etc", "machine-id"), "w") as f:
        f.write("0123456789abcdef0123456789abcdef\n")
    with open(os.path.join(t, "disk.img"), "wb") as f:
        f.write(b"\0" * 4096)
    with open(os.path.join(t, "node.xml"), "w") as f:
        f.write(NODE)
    os.makedirs(os.path.join(t, "ledger"), 0o700)
    with open(ledger_mod.path_for(os.path.join(t, "ledger"), GOOD_UUID), "w") as f:
        json.dump(ledger_mod.empty(GOOD_UUID), f)
    return t


def _module_playbook(top, t):
    tasks = []
    for cid, name, args, _fragment in MODULE_CASES:
        args = json.loads(json.dumps(args).replace("{t}", t))
        tasks.append({"name": cid, "vmguard.hardening." + name: args, "ignore_errors": True})
    play = [{"hosts": "localhost", "gather_facts": False, "tasks": tasks}]
    path = os.path.join(top, "modules.yml")
    with open(path, "w") as f:
        json.dump(play, f)  # JSON is YAML
    return path


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    if not os.path.exists(os.path.join(BIN, "ansible-playbook")):
        pytest.skip("needs the venv's ansible-playbook (make setup)")
    top = str(tmp_path_factory.mktemp("bad_input"))
    inventory = os.path.join(top, "hosts.ini")
    with open(inventory, "w") as f:
        f.write("[vmguard_hypervisors]\nhv1 ansible_connection=local vmguard_libvirt_uri=test:///default\n")
    jobs = {}
    for cid, (policy, _paths) in AUDIT_CASES.items():
        case = os.path.join(top, "audit-" + cid)
        os.makedirs(case)
        with open(os.path.join(case, "policy.yml"), "w") as f:
            f.write(textwrap.dedent(policy))
        jobs[cid] = ([os.path.join(BIN, "ansible-playbook"), "-i", inventory, os.path.join(ROOT, "playbooks", "audit.yml"),
                      "-e", "@policy.yml"], case)
    t = _targets(top)
    jobs["modules"] = ([os.path.join(BIN, "ansible-playbook"), _module_playbook(top, t)], top)
    before = snapshot(t)
    with ThreadPoolExecutor(max_workers=min(len(jobs), (os.cpu_count() or 1) + 2)) as pool:
        futures = dict((cid, pool.submit(_run, cmd, cwd)) for cid, (cmd, cwd) in jobs.items())
        results = dict((cid, f.result()) for cid, f in futures.items())
    return {"top": top, "targets": t, "before": before, "after": snapshot(t), "results": results}


def _host_results(parsed):
    return [(task["task"]["name"], res) for play in (parsed or {}).get("plays", [])
            for task in play.get("tasks", []) for res in task.get("hosts", {}).values()]


def _collected(result):
    """An evidence module's result: its evidence, or the variable it published the evidence to."""
    return "evidence" in result or "published" in result


@pytest.mark.parametrize("cid", [c for c in AUDIT_CASES if c != "control"])
def test_audit_playbook_refuses_bad_policy_before_anything_runs(runs, cid):
    res = runs["results"][cid]
    paths = AUDIT_CASES[cid][1]
    assert res["rc"] != 0, res["out"][-3000:]
    host_results = _host_results(res["json"])
    failed = [r for _host, r in host_results if r.get("failed")]
    assert failed and failed[-1].get("errors"), res["out"][-3000:]
    named = set(e.split(": ", 1)[0] for e in failed[-1]["errors"])
    assert set(paths) <= named, failed[-1]["errors"]
    for path in paths:
        assert path + ":" in res["out"]
    assert not any(_collected(r) for _host, r in host_results), "an evidence module ran on an invalid policy"
    assert not os.path.exists(os.path.join(runs["top"], "audit-" + cid, "vmguard-report"))


def test_audit_control_with_valid_policy_writes_the_report(runs):
    """Proves the 'no report directory' assertions above are not vacuous."""
    res = runs["results"]["control"]
    assert os.path.isfile(os.path.join(runs["top"], "audit-control", "vmguard-report", "report.json")), res["out"][-3000:]
    assert any(_collected(r) for _host, r in _host_results(res["json"]))  # the evidence module did run here


@pytest.mark.parametrize("cid,fragment", [(c[0], c[3]) for c in MODULE_CASES], ids=[c[0] for c in MODULE_CASES])
def test_module_refuses_bad_argument(runs, cid, fragment):
    results = dict(_host_results(runs["results"]["modules"]["json"]))
    assert cid in results, runs["results"]["modules"]["out"][-3000:]
    res = results[cid]
    assert res.get("failed") is True and not res.get("changed"), res
    assert fragment.replace("{t}", runs["targets"]) in res["msg"], res["msg"]


def test_modules_changed_no_target_file(runs):
    assert runs["before"] == runs["after"]
    assert sorted(runs["before"]) == ["disk.img", "ledger", "ledger/%s.json" % GOOD_UUID, "node.xml", "tree",
                                      "tree/etc", "tree/etc/machine-id"]


def test_policy_takes_integer_booleans_as_ansible_does():
    """1 and 0 are booleans to Ansible (and to the error message that lists 1/0); 2 is not (above)."""
    pol = load_policy({"params": {"rollback": {"allow_memory_snapshots": 1, "prune_snapshots": 0}},
                       "rules": {"RB-01": {"enabled": 0}}})
    assert pol["params"]["rollback"]["allow_memory_snapshots"] is True
    assert pol["params"]["rollback"]["prune_snapshots"] is False and pol["rules"]["RB-01"]["enabled"] is False
