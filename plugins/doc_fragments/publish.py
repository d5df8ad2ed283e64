# -*- coding: utf-8 -*-
# Copyright: (c) 2026, vmguard.hardening developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type


class ModuleDocFragment(object):
    """The publish option of the evidence modules (their action plugins handle it on the controller)."""

    DOCUMENTATION = r"""
options:
  publish:
    description:
      - Name of a host variable to receive RV(evidence) instead of the result (ansible-core 2.21 or
        later; earlier cores ignore it and the result keeps the evidence). It is set as
        M(ansible.builtin.set_fact) sets one, by the module's action plugin on the controller, and the
        result then carries RV(published) with that name.
      - C(register) templates every value it keeps (seconds for a thousand domains or VMs); a variable
        set this way is stored as it is, and never trusted as a template.
    type: str
"""
