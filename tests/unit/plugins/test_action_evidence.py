"""The audit action reads each hypervisor's evidence where the audit role registered it (the
hypervisor_facts result, no set_fact copy): every shape that result can take gives evidence or an
error naming the hypervisor, never a silent empty inventory."""

import pytest

from ansible_collections.vmguard.hardening.plugins.action import audit_evaluate as action

EVIDENCE = {"uri": "qemu:///system", "domains": [{"name": "web1"}], "host": {}}


def test_registered_result_with_evidence_is_read_in_place():
    assert action._registered_evidence({}, "hv1", {"changed": False, "evidence": EVIDENCE}) == EVIDENCE


def test_plain_evidence_dict_is_accepted():
    assert action._registered_evidence({}, "hv1", EVIDENCE) == EVIDENCE


def test_unreachable_host_is_an_error():
    ev = action._registered_evidence({}, "hv1", {"unreachable": True, "msg": "Failed to connect to the host via ssh"})
    assert ev["domains"] == [] and "unreachable" in ev["error"] and "Failed to connect" in ev["error"]


def test_failed_module_keeps_its_message():
    ev = action._registered_evidence({}, "hv1", {"failed": True, "msg": "libvirt: cannot connect"})
    assert ev["domains"] == [] and "libvirt: cannot connect" in ev["error"]


def test_skipped_task_is_an_error_naming_the_hypervisor():
    ev = action._registered_evidence({}, "hv1", {"skipped": True, "changed": False})
    assert ev["domains"] == [] and "hv1" in ev["error"] and "skipped" in ev["error"]


def test_missing_value_is_an_error_naming_the_hypervisor():
    for value in (None, {}):
        ev = action._registered_evidence({}, "hv1", value)
        assert ev["domains"] == [] and "no hypervisor evidence collected from hv1" in ev["error"]


def test_hypervisor_evidence_reads_each_host_var():
    hostvars = {"hv1": {"reg": {"evidence": EVIDENCE}}, "hv2": {}}
    out = action.hypervisor_evidence(hostvars, ["hv1", "hv2"], "reg")
    assert out["hv1"] == EVIDENCE and "hv2" in out["hv2"]["error"]


class HostVars(dict):
    """The two reads the action makes of Ansible's hostvars: raw_get (the host's variables as stored)
    and item access (templated; here the template marks the value so the test sees which was used)."""

    def raw_get(self, host):
        return dict.__getitem__(self, host)

    def get(self, host, default=None):
        if host not in self:
            return default
        return dict((k, ("templated", v) if isinstance(v, str) else v) for k, v in dict.__getitem__(self, host).items())


def test_published_evidence_is_read_from_the_variable_the_result_names():
    hostvars = HostVars(hv1={"reg": {"changed": False, "published": "hv_ev"}, "hv_ev": EVIDENCE})
    assert action.hypervisor_evidence(hostvars, ["hv1"], "reg")["hv1"] == EVIDENCE


def test_published_but_missing_variable_is_an_error():
    hostvars = HostVars(hv1={"reg": {"changed": False, "published": "hv_ev"}})
    ev = action.hypervisor_evidence(hostvars, ["hv1"], "reg")["hv1"]
    assert ev["domains"] == [] and "hv1" in ev["error"]


def test_unreachable_result_is_an_error_even_if_published():
    hostvars = HostVars(hv1={"reg": {"unreachable": True, "published": "hv_ev", "msg": "ssh: timeout"}, "hv_ev": EVIDENCE})
    ev = action.hypervisor_evidence(hostvars, ["hv1"], "reg")["hv1"]
    assert ev["domains"] == [] and "ssh: timeout" in ev["error"]


def test_host_value_reads_collections_as_stored_and_templates_strings():
    hostvars = HostVars(h={"ev": {"a": 1}, "tpl": "{{ x }}"})
    assert action.host_value(hostvars, "h", "ev") == {"a": 1}
    assert action.host_value(hostvars, "h", "tpl") == ("templated", "{{ x }}")
    assert action.host_value(hostvars, "h", "missing") is None
    assert action.host_value({"h": {"ev": [1]}}, "h", "ev") == [1]  # no raw_get: plain mapping


def test_published_vcenter_evidence_keeps_the_declared_vms():
    vms = {"error": None, "vms": [{"name": "web1"}], "retrievals": 1}
    hostvars = HostVars(vc1={"kept": {"published": "vc_vms", "inventory": {"web1": {"service": "web"}}}, "vc_vms": vms})
    out = action.vcenter_evidence(hostvars, ["vc1"], "kept")["vc1"]
    assert out == dict(vms, inventory={"web1": {"service": "web"}})
    hostvars = HostVars(vc1={"kept": {"published": "vc_vms", "inventory": {}}})
    out = action.vcenter_evidence(hostvars, ["vc1"], "kept")["vc1"]
    assert out["vms"] == [] and "vc1" in out["error"] and "vc_vms" in out["error"]


# --- guests and vCenters: the registered result is read as it is (no set_fact shaping it in Jinja) ---------

FACTS = {"machine_id_digest": "ab" * 16, "accounts": []}


@pytest.mark.parametrize("value, error, facts", [
    ({"changed": False, "evidence": FACTS}, None, FACTS),
    ({"unreachable": True, "msg": "Failed to connect to the host via ssh: timeout"}, "unreachable: Failed to connect to the host via ssh: timeout", None),
    ({"unreachable": True, "evidence": FACTS, "msg": "lost"}, "unreachable: lost", None),
    ({"failed": False, "msg": "guest_facts: /etc/shadow: permission denied"}, "evidence module failed: guest_facts: /etc/shadow: permission denied", None),
    ({"failed": False}, "evidence module failed: unknown error", None),
    ({"skipped": True, "changed": False}, "no guest evidence collected from web1 (evidence task skipped)", None),
    (None, "no guest evidence collected from web1", None),
    ({}, "no guest evidence collected from web1", None),
    ({"error": None, "facts": FACTS}, None, FACTS),  # the {error, facts} shape of a play of one's own
    ({"error": "collected elsewhere: timeout", "facts": None}, "collected elsewhere: timeout", None),
])
def test_guest_evidence_from_every_shape_of_the_registered_result(value, error, facts):
    hostvars = HostVars(web1={"reg": value, "vmguard_service": "web"})
    out = action.guest_evidence(hostvars, ["web1"], "reg")["web1"]
    assert (out["error"], out["facts"]) == (error, facts)
    assert out["vars"]["service"] == ["templated", "web"]  # inventory variables are templated as Ansible would


def test_vcenter_registered_result_is_read_with_the_vms_it_declares():
    vms = {"error": None, "vms": [{"name": "web1"}], "retrievals": 1}
    declared = {"web1": {"service": "web"}}
    hostvars = HostVars(vc1={"reg": {"changed": False, "published": "vc_vms"}, "vc_vms": vms, "vmguard_vcenter_vms": declared})
    assert action.vcenter_evidence(hostvars, ["vc1"], "reg")["vc1"] == dict(vms, inventory=declared)
    hostvars = HostVars(vc1={"reg": {"changed": False, "evidence": vms}})  # not published (older core): no VMs declared
    assert action.vcenter_evidence(hostvars, ["vc1"], "reg")["vc1"] == dict(vms, inventory={})


@pytest.mark.parametrize("value, error", [
    ({"failed": False, "msg": "cannot connect to vc1:443: refused"}, "vsphere_facts failed: cannot connect to vc1:443: refused"),
    ({"skipped": True}, "no vCenter evidence collected from vc1 (evidence task skipped)"),
    ({"unreachable": True, "msg": "x"}, "vsphere_facts failed: x"),
    (None, "no vCenter evidence collected from vc1"),
])
def test_vcenter_without_evidence_is_an_error_naming_it(value, error):
    hostvars = HostVars(vc1={"reg": value, "vmguard_vcenter_vms": {"web1": {}}})
    out = action.vcenter_evidence(hostvars, ["vc1"], "reg")["vc1"]
    assert out["error"] == error and out["vms"] == [] and out["inventory"] == {"web1": {}}


def test_console_line_counts_the_rules_not_evaluated():
    """The one line the play prints: a run with rules disabled or left out said only "N findings ... pass"."""
    summary = {"total": 3, "pass": 3, "fail": 0, "error": 0, "waived": 0, "not_applicable": 0}
    skipped = [{"rule": "RB-01", "area": "rollback", "severity": "high", "reason": "disabled by the policy (enabled: false)"},
               {"rule": "DIV-09", "area": "diversity", "severity": "low", "reason": "disabled by the policy (enabled: false)"},
               {"rule": "ISO-01", "area": "isolation", "severity": "high", "reason": "not selected by --tags / --skip-tags"}]
    msg = action.summary_msg(summary, "out/report.html", skipped)
    assert msg == ("3 findings: 3 pass, 0 fail, 0 error, 0 waived, 0 not applicable; 3 rule(s) not evaluated "
                   "(disabled by the policy (enabled: false): RB-01, DIV-09; not selected by --tags / --skip-tags: ISO-01); "
                   "report: out/report.html")
    assert action.summary_msg(summary, "out/report.html") == (
        "3 findings: 3 pass, 0 fail, 0 error, 0 waived, 0 not applicable; report: out/report.html")


def test_hosts_that_left_the_play_have_no_evidence_from_an_earlier_audit():
    """harden.yml audits, enforces, audits again: a guest that failed in between is removed from the later plays,
    runs no evidence task there, and its host variables still held the first audit's result, which the second
    evaluation judged as current (a pass on the state before the run)."""
    hostvars = {"hv1": {"__hv": {"changed": False, "evidence": EVIDENCE}},
                "web1": {"__g": {"changed": False, "evidence": {"epoch": 3}}, "vmguard_service": "web"},
                "web2": {"__g": {"changed": False, "evidence": {"epoch": 4}}},
                "vc1": {"__vc": {"changed": False, "evidence": {"error": None, "vms": []}}}}
    task_vars = {"ansible_play_hosts_all": ["hv1", "web1", "web2", "vc1"], "ansible_play_hosts": ["web2"]}
    removed = action.left_the_play(task_vars)
    assert removed == {"hv1", "web1", "vc1"}
    ev = action.drop_stale({"hypervisors": action.hypervisor_evidence(hostvars, ["hv1"], "__hv"),
                            "guests": action.guest_evidence(hostvars, ["web1", "web2"], "__g"),
                            "vcenters": action.vcenter_evidence(hostvars, ["vc1"], "__vc")}, removed)
    assert ev["hypervisors"]["hv1"] == {"error": action.LEFT_THE_PLAY % "hv1", "domains": []}
    assert ev["guests"]["web1"]["facts"] is None and "left this play" in ev["guests"]["web1"]["error"]
    assert ev["guests"]["web1"]["vars"]["service"] == "web"
    assert ev["guests"]["web2"]["facts"] == {"epoch": 4} and ev["guests"]["web2"]["error"] is None
    assert ev["vcenters"]["vc1"]["error"] == action.LEFT_THE_PLAY % "vc1"
    # Without Ansible's play variables (a direct call), nothing is dropped.
    assert action.left_the_play({}) == frozenset()


def _run_action(args, task_vars):
    """The audit_evaluate action run as Ansible runs it on the controller (no connection is used)."""
    from unittest import mock
    task = mock.MagicMock(args=args, async_val=0, check_mode=False)
    conn = mock.MagicMock()
    conn._shell.tmpdir = None
    return action.ActionModule(task, conn, mock.MagicMock(), mock.MagicMock(), mock.MagicMock(), mock.MagicMock()).run(
        task_vars=task_vars)


def test_the_evaluation_never_judges_an_earlier_audits_evidence_of_a_host_that_left_the_play(tmp_path):
    from tests.unit.rules import evidence as E
    hv = {"changed": False, "evidence": E.fleet([E.domain("web1", ledger=E.ledger())])["hypervisors"]["hv1"]}
    web1 = {"__g": {"changed": False, "evidence": E.guest_facts(1)},
            "vmguard_hypervisor": "hv1", "vmguard_domain": "web1", "vmguard_service": "web"}
    hostvars = {"hv1": {"__hv": hv}, "web1": web1}
    args = {"hypervisors": ["hv1"], "guests": ["web1"], "hypervisor_evidence_var": "__hv", "guest_evidence_var": "__g",
            "report_dir": str(tmp_path / "out"), "now": E.NOW, "fail_on": "critical"}
    both = {"hostvars": hostvars, "ansible_play_hosts_all": ["hv1", "web1"], "ansible_play_hosts": ["hv1", "web1"]}
    fresh = _run_action(args, both)
    assert not fresh.get("failed") and not fresh["gate_failed"]
    assert set(f["status"] for f in fresh["findings"] if f["subject"]["id"] == "web1") <= {"pass", "not_applicable"}
    stale = _run_action(args, dict(both, ansible_play_hosts=["hv1"]))
    # VIS-02 judges the inventory's vars against the hypervisor's evidence (read in this play), not the guest's.
    web1 = [f for f in stale["findings"] if f["subject"]["id"] == "web1" and f["rule"] != "VIS-02"]
    assert web1 and set(f["status"] for f in web1) == {"error"}
    assert all("web1 left this play" in f["message"] for f in web1)
    assert stale["gate_failed"]
