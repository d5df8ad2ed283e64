"""The evidence modules' transport: hypervisor_facts sends its evidence as one JSON text, which the action
plugin turns back into the evidence (plain data: never a template); a module with a secret parameter
keeps the dict, so AnsibleModule's no_log scrub still covers it."""

import json

import pytest
from ansible.errors import AnsibleActionFail

from ansible_collections.vmguard.hardening.plugins.modules import hypervisor_facts
from ansible_collections.vmguard.hardening.plugins.plugin_utils import publish

EVIDENCE = {"uri": "qemu:///system", "error": None, "host": {},
            "domains": [{"name": "inj{{ 7 * 7 }}", "graphics": [{"type": "vnc", "passwd_set": None}], "seconds": 0.5}]}


class Exited(Exception):
    pass


class Module:
    """The two things exit_evidence uses of AnsibleModule: no_log_values and exit_json."""

    def __init__(self, no_log_values=()):
        self.no_log_values = set(no_log_values)
        self.result = None

    def exit_json(self, **result):
        self.result = result
        raise Exited()


def _exit(module):
    with pytest.raises(Exited):
        hypervisor_facts.exit_evidence(module, EVIDENCE)
    return module.result


def test_evidence_travels_as_one_json_text_and_comes_back_whole():
    result = _exit(Module())
    assert set(result) == {"changed", "evidence_json"} and isinstance(result["evidence_json"], str)
    publish.decode_evidence(result)
    assert result == {"changed": False, "evidence": EVIDENCE}
    name = result["evidence"]["domains"][0]["name"]
    assert name == "inj{{ 7 * 7 }}" and name.__class__ is str  # plain text, as the module read it


def test_module_with_no_log_values_keeps_the_dict_for_the_scrub():
    result = _exit(Module(no_log_values=["hunter2"]))
    assert result == {"changed": False, "evidence": EVIDENCE}
    publish.decode_evidence(result)  # nothing to decode
    assert result["evidence"] == EVIDENCE


def test_result_without_evidence_json_is_left_as_it_is():
    failed = {"failed": True, "msg": "libvirt-python is missing"}
    publish.decode_evidence(failed)
    assert failed == {"failed": True, "msg": "libvirt-python is missing"}


def test_evidence_json_that_is_not_json_fails_the_task():
    with pytest.raises(AnsibleActionFail) as e:
        publish.decode_evidence({"evidence_json": json.dumps(EVIDENCE)[:-5]})
    assert "evidence_json is not JSON" in str(e.value)
