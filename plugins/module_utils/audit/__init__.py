# -*- coding: utf-8 -*-
# Copyright: (c) 2026, vmguard.hardening developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The pure part: policy, rule registry and checks, engine, planning, reports.

No Ansible runtime imports and no imports of the evidence or remediation packages
(tests/unit/test_layers.py keeps it so): evidence in, findings and plans out."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type
