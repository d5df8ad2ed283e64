# -*- coding: utf-8 -*-
# Copyright: (c) 2026, vmguard.hardening developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

"""Controller-side helpers of the evidence modules' action plugins (hypervisor_facts, vsphere_facts).

With ``publish: NAME`` (ansible-core >= 2.21) the module's ``evidence`` becomes the host variable NAME,
set as set_fact sets one, and leaves the result, which says ``published: NAME``. ``register:`` templates
every node of what it keeps (about 2 s for 1,000 domains); a variable an action sets is stored as it is,
and never trusted as a template (guest data stays data)."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import importlib
import json

from ansible.errors import AnsibleActionFail
from ansible.plugins.action import ActionBase
from ansible.utils.display import Display

from ansible_collections.vmguard.hardening.plugins.plugin_utils import inline

display = Display()

try:
    from ansible.plugins.action import VariableLayer
except ImportError:  # ansible-core < 2.21: the evidence stays in the result
    VariableLayer = None


def publish_name(args):
    """The variable name of ``publish`` (removed from ``args``), or None."""
    name = args.pop("publish", None)
    if name is None:
        return None
    if not isinstance(name, str) or not name.isidentifier() or not name.isascii():
        raise AnsibleActionFail("publish: %r is not a valid variable name" % (name,))
    return name


def decode_evidence(result):
    """Turn the module's ``evidence_json`` (one JSON text, see hypervisor_facts.exit_evidence) into ``evidence``.

    A plain ``json.loads``: one C pass instead of Ansible's per-node decoding, and its strings are plain,
    which ansible-core never trusts as templates (a domain named ``{{ x }}`` stays that text)."""
    text = result.pop("evidence_json", None)
    if text is None:
        return
    try:
        result["evidence"] = json.loads(text)
    except ValueError as e:
        raise AnsibleActionFail("the module's evidence_json is not JSON: %s" % e)


def run_module(action, module_name, task_vars, python_module=None):
    """Run ``module_name`` with the task's arguments (less publish) and publish its evidence when asked.
    ``python_module``: the module's import path when it can be read in this process (plugin_utils/inline.py)."""
    args = dict(action._task.args)  # pylint: disable=protected-access
    name = publish_name(args)
    result = None
    if python_module:
        why = inline.why_not(action, task_vars)
        if why is None:
            result = inline.run(action, importlib.import_module(python_module), args, task_vars)
        else:
            display.vvv("%s: sent as a module: %s" % (module_name, why))
    if result is None:
        result = action._execute_module(module_name=module_name, module_args=args, task_vars=task_vars)  # pylint: disable=protected-access
        action._remove_tmp_path(action._connection._shell.tmpdir)  # pylint: disable=protected-access
        decode_evidence(result)
        result["inline"] = False
    if name and VariableLayer is not None and isinstance(result.get("evidence"), dict):
        action.register_host_variables({name: result.pop("evidence")}, VariableLayer.EPHEMERAL_FACT)
        result["published"] = name
    return result


class EvidenceAction(ActionBase):
    """The action plugin of an evidence module (MODULE): runs it, and publishes its evidence when asked.
    INLINE: the module's import path when the module can be read in this process (plugin_utils/inline.py)."""
    MODULE = None
    INLINE = None
    _supports_check_mode = True

    def run(self, tmp=None, task_vars=None):
        result = super(EvidenceAction, self).run(tmp, task_vars)
        del tmp
        result.update(run_module(self, self.MODULE, task_vars, self.INLINE))
        return result
