# -*- coding: utf-8 -*-
# Copyright: (c) 2026, vmguard.hardening developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

# Runs the hypervisor_facts module on the target as usual; with publish, its evidence becomes a host
# variable instead of part of the result (plugins/plugin_utils/publish.py says why).

from ansible.plugins.action import ActionBase
from ansible_collections.vmguard.hardening.plugins.plugin_utils import publish


class ActionModule(ActionBase):
    _supports_check_mode = True

    def run(self, tmp=None, task_vars=None):
        result = super(ActionModule, self).run(tmp, task_vars)
        del tmp
        result.update(publish.run_module(self, "vmguard.hardening.hypervisor_facts", task_vars))
        return result
