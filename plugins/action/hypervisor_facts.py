# -*- coding: utf-8 -*-
# Copyright: (c) 2026, vmguard.hardening developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

# Runs the hypervisor_facts module on the target as usual. With publish (ansible-core >= 2.21), the
# evidence becomes a host variable of that name, set as set_fact sets one, and leaves the result:
# `register:` templates every node of what it keeps (about 2 s for 1,000 domains), a host variable
# set by the action is stored as it is. The audit role reads it in place.

from ansible.errors import AnsibleActionFail
from ansible.plugins.action import ActionBase

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


class ActionModule(ActionBase):
    _supports_check_mode = True

    def run(self, tmp=None, task_vars=None):
        result = super(ActionModule, self).run(tmp, task_vars)
        del tmp
        args = dict(self._task.args)
        name = publish_name(args)
        result.update(self._execute_module(module_name="vmguard.hardening.hypervisor_facts", module_args=args,
                                           task_vars=task_vars))
        self._remove_tmp_path(self._connection._shell.tmpdir)
        if name and VariableLayer is not None and isinstance(result.get("evidence"), dict):
            self.register_host_variables({name: result.pop("evidence")}, VariableLayer.EPHEMERAL_FACT)
            result["published"] = name
        return result
