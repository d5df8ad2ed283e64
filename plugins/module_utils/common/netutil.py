# -*- coding: utf-8 -*-
# Copyright: (c) 2026, vmguard.hardening developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Address helpers shared by the LEAK-02 check and its fixer (standard library only)."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import ipaddress


def is_loopback(address):
    """True for a loopback address in any notation (127.0.0.0/8, ::1, ::ffff:127.x.y.z, [::1]) or
    exactly "localhost"; False for any other address; None for any other host name: it cannot be
    proven local ("127.evil.example" or "localhost.evil.example" resolve wherever their owner wants)."""
    a = (address or "").strip()
    if a.startswith("[") and a.endswith("]"):
        a = a[1:-1]
    if a == "localhost":
        return True
    try:
        ip = ipaddress.ip_address(u"%s" % a)
    except ValueError:
        return None
    if ip.version == 6 and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_loopback
