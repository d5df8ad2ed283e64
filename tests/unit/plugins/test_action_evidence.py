"""The audit action reads each hypervisor's evidence where the audit role registered it (the
hypervisor_facts result, no set_fact copy): every shape that result can take gives evidence or an
error naming the hypervisor, never a silent empty inventory."""

from ansible_collections.vmguard.hardening.plugins.action import audit_evaluate as action

EVIDENCE = {"uri": "qemu:///system", "domains": [{"name": "web1"}], "host": {}}


def test_registered_result_with_evidence_is_read_in_place():
    assert action._registered_evidence("hv1", {"changed": False, "evidence": EVIDENCE}) == EVIDENCE


def test_plain_evidence_dict_is_accepted():
    assert action._registered_evidence("hv1", EVIDENCE) == EVIDENCE


def test_unreachable_host_is_an_error():
    ev = action._registered_evidence("hv1", {"unreachable": True, "msg": "Failed to connect to the host via ssh"})
    assert ev["domains"] == [] and "unreachable" in ev["error"] and "Failed to connect" in ev["error"]


def test_failed_module_keeps_its_message():
    ev = action._registered_evidence("hv1", {"failed": True, "msg": "libvirt: cannot connect"})
    assert ev["domains"] == [] and "libvirt: cannot connect" in ev["error"]


def test_skipped_task_is_an_error_naming_the_hypervisor():
    ev = action._registered_evidence("hv1", {"skipped": True, "changed": False})
    assert ev["domains"] == [] and "hv1" in ev["error"] and "skipped" in ev["error"]


def test_missing_value_is_an_error_naming_the_hypervisor():
    for value in (None, {}):
        ev = action._registered_evidence("hv1", value)
        assert ev["domains"] == [] and "no hypervisor evidence collected from hv1" in ev["error"]


def test_hypervisor_evidence_reads_each_host_var():
    hostvars = {"hv1": {"reg": {"evidence": EVIDENCE}}, "hv2": {}}
    out = action.hypervisor_evidence(hostvars, ["hv1", "hv2"], "reg")
    assert out["hv1"] == EVIDENCE and "hv2" in out["hv2"]["error"]
