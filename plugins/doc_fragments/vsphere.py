# -*- coding: utf-8 -*-
# Copyright: (c) 2026, vmguard.hardening developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type


class ModuleDocFragment(object):
    """The connection options of the vSphere modules (module_utils/evidence/vsphere_session.py)."""

    DOCUMENTATION = r"""
options:
  hostname:
    description: vCenter or ESXi address. Falls back to the C(VMWARE_HOST) environment variable.
    type: str
  username:
    description: User name. Falls back to the C(VMWARE_USER) environment variable.
    type: str
    aliases: [user]
  password:
    description: Password (never logged). Falls back to the C(VMWARE_PASSWORD) environment variable.
    type: str
    aliases: [pass, pwd]
  port:
    description: HTTPS port. Falls back to the C(VMWARE_PORT) environment variable.
    type: int
    default: 443
  validate_certs:
    description:
      - Verify the server's certificate against the system trust store (the C(SSL_CERT_FILE) environment
        variable names a private CA). Falls back to C(VMWARE_VALIDATE_CERTS).
    type: bool
    default: true
requirements:
  - pyVmomi
"""
