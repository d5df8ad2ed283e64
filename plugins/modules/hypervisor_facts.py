#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, vmguard.hardening developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: hypervisor_facts
short_description: Collect vmguard evidence from a libvirt hypervisor in one call
version_added: "0.1.0"
description:
  - Connects once to a libvirt URI and returns every domain (running, paused, shut off and
    transient) parsed into the fields the vmguard rules read (disks, interfaces, graphics,
    seclabels, genid, rng, filesystems, host and redirected devices, shmem/vsock, QEMU
    command-line passthrough, vmguard metadata), its snapshots (creation time, state, memory
    kind) and its rollback ledger record, plus host evidence - qemu.conf and libvirtd/virtqemud
    settings, libvirt sockets and TCP listeners, security models and LSM state, QEMU processes
    (known to libvirt or not), the revert watcher, and the modes of image files and directories.
  - Works with any URI, including the test driver (C(test:///path/node.xml)), for which host
    evidence is not collected (it describes no real host).
  - Domain XML is read with secure information so that the presence of a console password can
    be checked; the XML and the passwords are never returned, only the parsed fields.
  - A URI that does not answer is not a module failure; the result carries C(evidence.error)
    so the audit reports error findings for this hypervisor and goes on with the others.
  - A domain that disappears while it is read is returned with its own C(error).
author:
  - vmguard.hardening developers (@vmguard)
requirements:
  - libvirt-python
options:
  uri:
    description: libvirt connection URI.
    type: str
    default: qemu:///system
  ledger_dir:
    description: Directory of the rollback ledger (one JSON file per domain UUID).
    type: path
    default: /var/lib/vmguard/ledger
  qemu_conf:
    description: Path of qemu.conf.
    type: path
    default: /etc/libvirt/qemu.conf
  daemon_confs:
    description: libvirt daemon configuration files to read (missing ones are skipped).
    type: list
    elements: path
    default: [/etc/libvirt/libvirtd.conf, /etc/libvirt/virtqemud.conf]
  image_dirs:
    description:
      - Extra directories whose files count as disk images (LEAK-01, VIS-07), on top of libvirt's
        default directories, the target paths of directory storage pools and the directories
        of the domains' disks.
    type: list
    elements: path
    default: []
  host:
    description: Collect host evidence. Defaults to true for local drivers and false for test:/// URIs.
    type: bool
extends_documentation_fragment:
  - vmguard.hardening.attributes.read_only
"""

EXAMPLES = r"""
- name: Collect evidence from the local hypervisor
  vmguard.hardening.hypervisor_facts:
    uri: qemu:///system
  register: hv

- name: Audit libvirt's test-suite domains without a daemon
  vmguard.hardening.hypervisor_facts:
    uri: test:///tmp/corpus/node.xml
"""

RETURN = r"""
evidence:
  description: Everything the vmguard rules read about this hypervisor.
  returned: always
  type: dict
  contains:
    uri:
      description: The URI.
      type: str
    error:
      description: Why the hypervisor could not be read, or null.
      type: str
    host:
      description: Host evidence (empty for the test driver).
      type: dict
    domains:
      description: One entry per domain (see plugins/module_utils/domxml.py for the fields).
      type: list
      elements: dict
    seconds:
      description: Time spent collecting.
      type: float
  sample:
    uri: qemu:///system
    error: null
    domains:
      - name: web1
        state: running
        persistent: true
        genid: true
        rng: [virtio]
        snapshots: []
"""

import json
import os
import time
import xml.etree.ElementTree as ET

from ansible.module_utils.basic import AnsibleModule, missing_required_lib
from ansible_collections.vmguard.hardening.plugins.module_utils import domxml, hostscan

try:
    import libvirt
    HAS_LIBVIRT = True
    LIBVIRT_IMPORT_ERROR = None
except ImportError as e:
    HAS_LIBVIRT = False
    LIBVIRT_IMPORT_ERROR = e

STATES = {0: "nostate", 1: "running", 2: "blocked", 3: "paused", 4: "shutdown", 5: "shutoff",
          6: "crashed", 7: "pmsuspended"}


def _ledger(ledger_dir, uuid):
    """None (no record), the record, or {"error": "<path>: <why>"} for a ledger that is not a regular
    file, larger than 1 MiB, not JSON or of the wrong shape (ledger.read_record: never a hang on a
    FIFO, never followed through a symbolic link)."""
    from ansible_collections.vmguard.hardening.plugins.module_utils import ledger
    return ledger.read_record(ledger_dir, uuid)


def collect_domain(dom, ledger_dir):
    name = dom.name()
    try:
        xml = dom.XMLDesc(libvirt.VIR_DOMAIN_XML_SECURE)
        d = domxml.parse_domain(xml)
        state = dom.state()[0]
        d["state"] = STATES.get(state, str(state))
        d["persistent"] = bool(dom.isPersistent())
        d["autostart"] = bool(dom.autostart()) if d["persistent"] else False
        snaps = []
        for s in dom.listAllSnapshots(0):
            snaps.append(domxml.parse_snapshot(s.getXMLDesc(0)))
        d["snapshots"] = sorted(snaps, key=lambda s: (s["creation_time"] or 0, s["name"]))
        d["ledger"] = _ledger(ledger_dir, d["uuid"]) if d.get("uuid") else None
        d["error"] = None
        return d
    except libvirt.libvirtError as e:
        code = e.get_error_code()
        why = "domain vanished while it was read" if code == libvirt.VIR_ERR_NO_DOMAIN else e.get_error_message()
        return dict(name=name, error=why)
    except domxml.DomainXMLError as e:
        return dict(name=name, error=str(e))


def collect_host(conn, p, domains):
    host = {}
    qc = hostscan.read_conf(p["qemu_conf"])
    procs = list(hostscan.processes())
    qprocs = hostscan.qemu_processes(procs)
    if qc is not None:
        users = sorted(set(q["user"] for q in qprocs))
        qc["effective_user"] = qc.get("user") or (users[0] if len(users) == 1 else None)
        if qc["effective_user"] is None and not users:
            qc["effective_user"] = "distribution default (no QEMU running)"
    host["qemu_conf"] = qc
    host["qemu_gid"] = hostscan.group_gid((qc or {}).get("group") or "libvirt-qemu") or hostscan.group_gid("kvm")
    daemons = {}
    for path in p["daemon_confs"]:
        c = hostscan.read_conf(path)
        if c is not None:
            daemons[os.path.basename(path)] = c
    host["daemon_confs"] = daemons
    host["sockets"] = hostscan.sockets()
    host["tcp_listeners"] = hostscan.libvirt_tcp_listeners()
    for pid, uid, argv in procs:
        if os.path.basename(argv[0]) in ("libvirtd", "virtproxyd") and any(a in ("-l", "--listen") for a in argv):
            host["tcp_listeners"].append("%s --listen (pid %d)" % (os.path.basename(argv[0]), pid))
    caps = ET.fromstring(conn.getCapabilities())
    host["security_models"] = [m.text for m in caps.findall("./host/secmodel/model")]
    host["lsm"] = hostscan.lsm_state()
    host["qemu_processes"] = qprocs
    host["watcher"] = hostscan.watcher(procs)
    dirs = set(hostscan.DEFAULT_IMAGE_DIRS) | set(p["image_dirs"])
    for pool in conn.listAllStoragePools(0):
        try:
            px = ET.fromstring(pool.XMLDesc(0))
        except libvirt.libvirtError:
            continue
        if px.get("type") in ("dir", "fs", "netfs"):
            path = px.findtext("./target/path")
            if path:
                dirs.add(path)
    for d in domains:
        for disk in d.get("disks") or []:
            if disk.get("type") == "file" and disk.get("source") and disk["device"] == "disk":
                dirs.add(os.path.dirname(disk["source"]))
    host["images"], host["image_dirs"] = hostscan.scan_images(dirs)
    return host


def main():
    module = AnsibleModule(
        argument_spec=dict(
            uri=dict(type="str", default="qemu:///system"),
            ledger_dir=dict(type="path", default="/var/lib/vmguard/ledger"),
            qemu_conf=dict(type="path", default="/etc/libvirt/qemu.conf"),
            daemon_confs=dict(type="list", elements="path",
                              default=["/etc/libvirt/libvirtd.conf", "/etc/libvirt/virtqemud.conf"]),
            image_dirs=dict(type="list", elements="path", default=[]),
            host=dict(type="bool"),
        ),
        supports_check_mode=True,
    )
    if not HAS_LIBVIRT:
        module.fail_json(msg=missing_required_lib("libvirt-python"), exception=str(LIBVIRT_IMPORT_ERROR))
    p = module.params
    start = time.time()
    evidence = dict(uri=p["uri"], error=None, host={}, domains=[])
    try:
        conn = libvirt.open(p["uri"])
    except libvirt.libvirtError as e:
        evidence["error"] = "cannot connect to %s: %s" % (p["uri"], e.get_error_message())
        evidence["seconds"] = round(time.time() - start, 3)
        module.warn(evidence["error"])
        module.exit_json(changed=False, evidence=evidence)
    try:
        domains = [collect_domain(dom, p["ledger_dir"]) for dom in conn.listAllDomains(0)]
        evidence["domains"] = sorted(domains, key=lambda d: d["name"])
        want_host = p["host"] if p["host"] is not None else not p["uri"].startswith("test:")
        if want_host:
            evidence["host"] = collect_host(conn, p, evidence["domains"])
    except libvirt.libvirtError as e:
        evidence["error"] = "libvirt error while reading %s: %s" % (p["uri"], e.get_error_message())
    finally:
        try:
            conn.close()
        except libvirt.libvirtError:
            pass
    evidence["seconds"] = round(time.time() - start, 3)
    module.exit_json(changed=False, evidence=evidence)


if __name__ == "__main__":
    main()
