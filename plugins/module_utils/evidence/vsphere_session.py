# -*- coding: utf-8 -*-
# Copyright: (c) 2026, vmguard.hardening developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""One vCenter (or ESXi) session for the collection's vSphere modules: the connection options they all take
(documented once in the vmguard.hardening.vsphere doc fragment) and the login with them."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import ssl

from ansible.module_utils.basic import env_fallback

try:
    from pyVim.connect import SmartConnect, Disconnect
    HAS_PYVIM = True
except ImportError:  # reported by the modules (missing_required_lib)
    SmartConnect = Disconnect = None
    HAS_PYVIM = False

REQUIRED = ("hostname", "username", "password")


def connection_spec(**more):
    """The argument spec of the connection options (with the VMWARE_* environment fallbacks of the vmware
    collections; the password no_log), plus ``more``."""
    spec = dict(
        hostname=dict(type="str", fallback=(env_fallback, ["VMWARE_HOST"])),
        username=dict(type="str", aliases=["user"], fallback=(env_fallback, ["VMWARE_USER"])),
        password=dict(type="str", aliases=["pass", "pwd"], no_log=True, fallback=(env_fallback, ["VMWARE_PASSWORD"])),
        port=dict(type="int", default=443, fallback=(env_fallback, ["VMWARE_PORT"])),
        validate_certs=dict(type="bool", default=True, fallback=(env_fallback, ["VMWARE_VALIDATE_CERTS"])),
    )
    spec.update(more)
    return spec


def missing(p):
    """The connection options neither given nor found in the environment."""
    return [k for k in REQUIRED if not p[k]]


def connect(p):
    """A session with the connection parameters ``p``; certificates verified against the system trust store
    (SSL_CERT_FILE names a private CA) unless validate_certs is false."""
    ctx = ssl.create_default_context()
    if not p["validate_certs"]:
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    return SmartConnect(host=p["hostname"], port=p["port"], user=p["username"], pwd=p["password"], sslContext=ctx)


def connect_or_fail(module):
    """connect(module.params), or module.fail_json naming what is missing or why the login failed (its exception
    type only: a library's message may echo the password)."""
    p = module.params
    absent = missing(p)
    if absent:
        module.fail_json(msg="missing connection parameter(s): %s" % ", ".join(absent))
    try:
        return connect(p)
    except Exception as e:  # pylint: disable=broad-except
        module.fail_json(msg="cannot connect to %s:%s: %s" % (p["hostname"], p["port"], type(e).__name__))


def disconnect(si):
    """Log out; a session already gone is no error."""
    try:
        Disconnect(si)
    except Exception:  # pylint: disable=broad-except
        pass
