# -*- coding: utf-8 -*-
# Copyright: (c) 2026, vmguard.hardening developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

# Reads the guest evidence piped (plugins/plugin_utils/piped.py: the collector's sources on the standard input of
# one Python process, no AnsiballZ payload) where the connection pipelines, else sends the guest_facts module.

from ansible.plugins.action import ActionBase
from ansible.utils.display import Display

from ansible_collections.vmguard.hardening.plugins.module_utils.evidence import guestcollect
from ansible_collections.vmguard.hardening.plugins.plugin_utils import piped

display = Display()


class ActionModule(ActionBase):
    MODULE = "vmguard.hardening.guest_facts"
    ENTRY = "ansible_collections.vmguard.hardening.plugins.module_utils.evidence.guestcollect"
    _supports_check_mode = True

    def run(self, tmp=None, task_vars=None):
        result = super(ActionModule, self).run(tmp, task_vars)
        del tmp
        args = dict(self._task.args)
        out = piped.run(self, self.MODULE, self.ENTRY, guestcollect.ARGUMENT_SPEC, args, task_vars, display)
        if out is None:
            out = self._execute_module(module_name=self.MODULE, module_args=args, task_vars=task_vars)
            self._remove_tmp_path(self._connection._shell.tmpdir)
        result.update(out)
        return result
