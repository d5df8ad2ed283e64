# -*- coding: utf-8 -*-
# Copyright: (c) 2026, vmguard.hardening developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

# Runs the hypervisor_facts module on the target as usual, or its gather function in this process when
# the target is the controller itself (plugins/plugin_utils/inline.py); with publish, its evidence
# becomes a host variable instead of part of the result (plugins/plugin_utils/publish.py says why).

from ansible_collections.vmguard.hardening.plugins.plugin_utils.publish import EvidenceAction


class ActionModule(EvidenceAction):
    MODULE = "vmguard.hardening.hypervisor_facts"
    INLINE = "ansible_collections.vmguard.hardening.plugins.modules.hypervisor_facts"
