# -*- coding: utf-8 -*-
# Copyright: (c) 2026, vmguard.hardening developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The guest evidence of guest_facts, gathered in one place for its two ways of running (standard library only).

- As an Ansible module (plugins/modules/guest_facts.py): AnsibleModule's run_command, get_bin_path and warn.
- Piped (plugins/plugin_utils/piped.py, the module's action plugin): the guest's Python reads this file and the
  files it imports from its standard input, and ``piped_main`` prints the module's result. An AnsiballZ payload
  imports ansible.module_utils.basic, compiled from its zip on every run: 4-6 s of CPU in a guest emulated by
  TCG, more than the evidence itself costs. So this file imports the standard library and the collection's
  evidence/common files only (tests/unit/plugins/test_piped.py checks that closure).
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json
import os
import socket
import subprocess
import sys
import time

from ansible_collections.vmguard.hardening.plugins.module_utils.evidence import bootfirewall, guestscan, nftables, unitfiles

ARGUMENT_SPEC = dict(
    epoch_file=dict(type="path", default="/var/lib/vmguard/epoch.json"),
    lineage_file=dict(type="path", default="/etc/vmguard/lineage.json"),
    piped=dict(type="bool", default=True),
)
NOT_ROOT = "guest_facts runs without root: shadow, random seed and socket owners are incomplete"
# Where AnsibleModule.get_bin_path looks besides PATH (nft lives in /usr/sbin, outside a user's PATH).
SBIN = ("/sbin", "/usr/sbin", "/usr/local/sbin")


def systemd_units():
    """(the enabled and masked units, None) or (None, why): read from the unit directories with systemd's
    rules (unitfiles.py), not asked of the manager (6-9 s under TCG)."""
    try:
        return unitfiles.unit_states(), None
    except unitfiles.UnitScanError as e:
        return None, str(e)


def nft_ruleset(run, bin_path):
    """The `firewall` evidence: the live ruleset evaluated by nftables.py (errors keep its shape)."""
    nft = bin_path("nft")
    if not nft:
        return nftables.error_result("nft is not installed")
    rc, out, err = run([nft, "-j", "list", "ruleset"])
    if rc != 0:
        return nftables.error_result("nft -j list ruleset failed (rc %d): %s" % (rc, err.strip()))
    return guestscan.firewall(out)


def gather(p, run, bin_path, warn):
    """The evidence of the validated parameters ``p``. ``run(argv)`` returns (rc, stdout, stderr),
    ``bin_path(name)`` a path or None, ``warn(text)`` records a warning."""
    start = time.time()
    ev = dict(hostname=socket.gethostname(), root=(os.geteuid() == 0))
    if not ev["root"]:
        warn(NOT_ROOT)
    ev.update(guestscan.machine_id())
    ev.update(guestscan.random_seed())
    ev["ssh_host_keys"], ev["ssh_host_keys_error"] = guestscan.read_ssh_host_keys()
    ev["accounts"], ev["accounts_error"] = guestscan.read_accounts()
    ev["listening"] = guestscan.listening()
    ev["services"], ev["services_error"] = systemd_units()
    ev["packages"] = guestscan.packages()
    ev["firewall"] = nft_ruleset(run, bin_path)
    ev["firewall_boot"] = bootfirewall.collect((ev["services"] or {}).get("enabled"), run, bin_path)
    ev["sysctl"] = guestscan.sysctls()
    ev["epoch"], ev["epoch_error"] = guestscan.epoch(p["epoch_file"])
    ev["lineage"] = guestscan.json_file("/", p["lineage_file"])
    ev["vmgenid"] = guestscan.vmgenid()
    ev["seconds"] = round(time.time() - start, 3)
    return ev


def run_argv(argv):
    """(rc, stdout, stderr) of ``argv`` (a list; no shell, no standard input), in the C locale."""
    env = dict(os.environ, LC_ALL="C", LANG="C", LC_MESSAGES="C")
    try:
        # Piped, there is no AnsibleModule and so no run_command: what it does for a list argv is this.
        proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,  # pylint: disable=ansible-bad-function
                                stderr=subprocess.PIPE, close_fds=True, env=env)
    except OSError as e:
        return 127, "", "%s: %s" % (argv[0], e)
    out, err = proc.communicate()
    return proc.returncode, out.decode("utf-8", "surrogateescape"), err.decode("utf-8", "surrogateescape")


def bin_path(name):
    """The path of the executable ``name`` in PATH or the sbin directories, or None."""
    dirs = [d for d in os.environ.get("PATH", "").split(os.pathsep) if d] + list(SBIN)
    for d in dirs:
        path = os.path.join(d, name)
        if os.path.isfile(path) and os.access(path, os.X_OK):
            return path
    return None


def piped_main(params, out=None):
    """The module's result for ``params`` (validated by the action plugin, paths not expanded yet), written as
    one JSON document to ``out`` (standard output): what ``exit_json``/``fail_json`` would print."""
    out = out or sys.stdout
    warnings = []
    try:
        p = dict(params)
        for key in ("epoch_file", "lineage_file"):  # type: path, expanded where the module runs
            p[key] = os.path.expanduser(os.path.expandvars(p[key]))
        result = dict(changed=False, evidence=gather(p, run_argv, bin_path, warnings.append))
    except Exception as e:  # pylint: disable=broad-except  # the controller gets a failure, never a traceback alone
        result = dict(failed=True, msg="guest_facts failed: %s: %s" % (type(e).__name__, e))
    if warnings:
        result["warnings"] = warnings
    out.write(json.dumps(result))
    out.flush()
