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
    seclabels, genid, rng, filesystems, host and redirected devices - hostdev, redirdev, evdev input,
    passthrough TPM, host character devices, host smartcard -, shmem/vsock, file-backed nvdimm/virtio-pmem
    memory (path and access), QEMU command-line passthrough,
    device property overrides and capability changes, vmguard metadata), its snapshots (creation time, state, memory
    kind) and its rollback ledger record, plus host evidence - qemu.conf and libvirtd/virtqemud/virtproxyd
    settings, libvirt sockets and TCP listeners, security models and LSM state, QEMU processes
    (known to libvirt or not), the revert watcher, and the modes of image files and directories.
  - libvirt's configuration files are parsed as libvirt parses them (single, double and triple quoted
    strings, lists, C(;) between statements, comments; the first statement of a repeated key is the one
    libvirt uses). A file libvirt's parser would refuse is not read as its defaults - its error is returned
    (C(qemu_conf_error), C(daemon_conf_errors)) and the rules reading it report an error.
  - Works with any URI, including the test driver (C(test:///path/node.xml)), for which host
    evidence is not collected (it describes no real host).
  - Domain XML is never read with C(VIR_DOMAIN_XML_SECURE). A running persistent domain is read
    twice - its live definition (C(definition=live)) and its persistent one
    (C(VIR_DOMAIN_XML_INACTIVE), returned as C(inactive) with C(definition=persistent)), so that
    the audit sees both what runs and what the next start will run.
  - A host with 100 domains or more is read by two processes - a forked child reads the second half
    of the listed domains on a libvirt connection of its own - and the result is the same as one
    process reading them all (a child that cannot connect or fails leaves its half to the module).
  - Whether a VNC/SPICE console has a password (C(graphics[].passwd_set)) is learnt, on a local
    qemu driver (C(qemu:///system), C(qemu:///session)), from libvirt's own persistent config
    (C(/etc/libvirt/qemu/NAME.xml)) and status file (C(/run/libvirt/qemu/NAME.xml)) - opened
    without following symbolic links, at most 4 MiB - of which only the presence of a C(passwd)
    attribute is kept, and from qemu.conf's C(vnc_password)/C(spice_password) host default. It is
    null when it cannot be known (other drivers, unreadable files). No password value is kept or
    returned.
  - Secret values in C(<qemu:commandline>) arguments, C(<qemu:env>) values and C(<qemu:override>) property
    values are redacted before they leave the module (C(redacted) counts them) - secret-named options in both C(--opt=value) and
    C(--opt value) forms, URL user information, the whole value of a secret-named variable - and so
    are qemu.conf's C(*password)/C(*passwd)/C(*secret) values (presence is kept, as C(<redacted>)). A backing
    image an image header names by something other than a local path (C(https://user:password@host/base.img),
    C(json:{...}), C(rbd:...:key=...)) is shown, in the chains, the base images and qemu-img's errors, with its
    secrets redacted the same way.
  - On a local host, every file disk's backing chain is read with
    C(qemu-img info --backing-chain -U) and every base (backing) image is verified offline and
    read-only for the DIV-06 seal (C(qemu-img convert) to a private temporary directory under
    O(work_dir), C(debugfs) extraction of the seal-relevant paths); the revert watcher is seen
    through its lock (a non-blocking C(flock) attempt, released at once, never creating the file)
    and heartbeat files.
  - On a local qemu driver, every disk whose storage is a host path is identified by what the path is
    (C(stat), which follows symbolic links and opens nothing - the device number of a block device, the
    inode of anything else), so that ISO-06 sees one disk under two names; a path that cannot be
    stat'ed, or any path of another driver, keeps its name and the disk says why (C(source_id_error)).
  - A URI that does not answer is not a module failure; the result carries C(evidence.error)
    so the audit reports error findings for this hypervisor and goes on with the others.
  - A domain that disappears while it is read is returned with its own C(error).
author:
  - vmguard.hardening developers (@vmguard)
requirements:
  - libvirt-python
  - qemu-img (qemu-utils) and debugfs (e2fsprogs) on the hypervisor for the base image evidence
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
    description:
      - libvirt daemon configuration files to read (missing ones are skipped). The file the daemon holding a
        TCP listener reads (its C(--config)) is read too.
      - An entry with a wildcard (C(*), C(?), C([)) reads every file it matches; the default reads the monolithic
        daemon's file and every modular daemon's (virtqemud, virtproxyd, virtsecretd, virtstoraged, virtnetworkd,
        virtnodedevd, virtnwfilterd, virtinterfaced, ...), whose C(unix_sock_rw_perms) LEAK-06 judges.
    type: list
    elements: path
    default: [/etc/libvirt/libvirtd.conf, /etc/libvirt/virt*d.conf]
  image_dirs:
    description:
      - Extra directories whose files count as disk images (LEAK-01, VIS-07), on top of libvirt's
        default image, save, snapshot and dump directories and the target paths of directory storage
        pools. A sticky or world-writable one (shared, as C(/tmp)) is listed with C(shared) and its files
        are not taken for images.
      - The domains' disk images and the files of their backing chains count wherever they are, each by
        itself (the directory holding one is not an image directory).
    type: list
    elements: path
    default: []
  host:
    description:
      - Collect host evidence. Defaults to true for a local qemu driver (C(qemu:///system),
        C(qemu:///session)) and false otherwise (the test driver and remote URIs describe no local host).
    type: bool
  watcher_lock:
    description: Lock file the revert watcher holds an C(flock) on (never created by this module).
    type: path
    default: /run/vmguard/watcher.lock
  watcher_heartbeat:
    description:
      - Heartbeat file the revert watcher rewrites every few seconds (JSON object with C(pid) and C(time), and
        C(connected), C(uri) and C(mgmt_networks), what it watches, which RB-11 compares with the audit).
    type: path
    default: /run/vmguard/watcher.heartbeat
  verify_base_images:
    description:
      - Verify every base (backing) image of the domains' disks offline for the DIV-06 seal. When
        false, the base images are listed with C(error) saying they were not verified.
    type: bool
    default: true
  work_dir:
    description:
      - Directory under which each base image is converted and extracted, in a private temporary
        directory removed afterwards. Needs room for the data of the largest base image (sparse raw).
        Defaults to the system temporary directory.
    type: path
  inline:
    description:
      - When the target is the controller itself - the C(local) connection, the task neither delegated nor
        async, no become, no task C(environment), and the module's C(ansible_python_interpreter) is the
        path of the Python running ansible-playbook - the module's action plugin runs the module's own
        collection code in its worker process instead of sending the module. The evidence is the same;
        what is saved is the module's transport (about 0.7 s per call - its payload built and compiled
        twice, a second Python, the evidence encoded and decoded).
      - Anything else, or C(false), sends the module as usual. RV(inline) says which way it went.
    type: bool
    default: true
extends_documentation_fragment:
  - vmguard.hardening.attributes.read_only
  - vmguard.hardening.publish
"""

EXAMPLES = r"""
- name: Collect evidence from the local hypervisor
  vmguard.hardening.hypervisor_facts:
    uri: qemu:///system
  register: hv

- name: Collect the evidence of a thousand domains into a host variable (no copy through register)
  vmguard.hardening.hypervisor_facts:
    publish: hv_evidence

- name: Audit libvirt's test-suite domains without a daemon
  vmguard.hardening.hypervisor_facts:
    uri: test:///tmp/corpus/node.xml
"""

RETURN = r"""
inline:
  description: Whether the evidence was read in the controller's worker process (O(inline)) rather than by the module sent to the target.
  returned: always
  type: bool
  sample: true
published:
  description: The name of the host variable that holds the evidence (O(publish) given, ansible-core 2.21 or later).
  returned: when the evidence was published
  type: str
  sample: hv_evidence
evidence:
  description: Everything the vmguard rules read about this hypervisor (in the variable O(publish) names when given).
  returned: unless published
  type: dict
  contains:
    uri:
      description: The URI.
      type: str
    error:
      description: Why the hypervisor could not be read, or null.
      type: str
    host:
      description:
        - Host evidence (empty for the test driver and remote URIs) - qemu_conf (with
          qemu_user_default, the distribution's build default user; null when unreadable or unparsable),
          qemu_conf_error (why, else null), qemu_gid, daemon_confs (by file name), daemon_conf_errors
          (why, by file name), sockets (C({path, mode, rw, kind, link}) - every socket in C(/run/libvirt) and
          the libvirt-named ones in a daemon's C(unix_sock_dir); C(kind) C(rw), C(ro) or C(admin), C(rw) false
          only for C(ro); C(link) the target of a symbolic link named as a socket, never followed; null when a
          directory could not be listed), tcp_listeners (C({port, tls, what, daemon, config}) - the daemon
          holding the socket and the file it reads, null when no running daemon holds it), security_models,
          lsm, qemu_processes (C({pid, uid, user, name, uuid, exe, matched_by}) - C(matched_by) C(exe) when
          the executable (C(/proc/PID/exe), read with readlink) told it is a QEMU, C(argv0) when that was
          unreadable and argv[0] did), watcher (C({lock_path, lock_held, holder_pid,
          heartbeat_path, heartbeat_age_seconds, heartbeat_pid, connected, uri, mgmt_networks, error})), base_images
          (C({path, format, used_by, sealed, findings, error}); null when qemu-img is missing),
          images (C({path, mode, uid, gid, size, referenced}) - the files of the image directories and each
          disk image and backing file by its real path), image_dirs (C({path, mode, uid, gid, shared})) and
          session_domains (C({domains, errors, users}) - the persistent definitions in each user's own libvirt
          session, C(~/.config/libvirt/qemu), which an audit of another URI never lists - C(domains)
          C({uri, user, name, uuid, path}), C(errors) C({uri, user, path, error}); each home is read by a child
          that became its user, and only a domain's name and UUID leave it).
      type: dict
    domains:
      description:
        - One entry per domain (see plugins/module_utils/domxml.py for the XML fields), with state,
          persistent, autostart, snapshots, ledger, pid, error, C(definition) (live or persistent)
          and C(inactive) (the persistent definition of a running persistent domain, else null).
        - Interfaces of type mcast, udp, server and client also carry C(source_address), C(source_port),
          C(local_address) and C(local_port); network disks C(protocol), C(name) and C(hosts)
          (C(name:port) or C(unix:socket)); volume disks C(pool), C(volume) and, resolved through
          libvirt's storage pools, C(volume_path), C(volume_type), C(volume_pool_type) and C(volume_error)
          (why the volume could not be resolved, else null).
        - Disks whose storage is a host path (file, block, dir, a volume resolved to a local path) also carry
          C(source_id) - what the path is on a local qemu driver's host, from C(stat) (links followed, nothing
          opened) - C(block MAJOR:MINOR) for a block device, C(inode DEV:INO) otherwise, so that one file or
          device under two names is one disk for ISO-06 - and C(source_id_error), why it is null (another
          host's path, a path that cannot be stat'ed - the disk is then compared by its path).
      type: list
      elements: dict
    networks:
      description:
        - Every libvirt network by name - C(bridge) (the Linux bridge its interfaces join, null for a
          macvtap or hostdev network), C(forward) (mode, null when isolated), C(devs) (host NICs of a
          macvtap/hostdev network) and C(active). Null when the networks could not be listed
          (C(networks_error) says why).
      type: dict
    networks_error:
      description: Why the networks could not be listed, or null.
      type: str
    seconds:
      description: Time spent collecting.
      type: float
  sample:
    uri: qemu:///system
    error: null
    domains:
      - name: web1
        state: running
        definition: live
        persistent: true
        pid: 4242
        genid: true
        graphics: [{type: vnc, passwd_set: true}]
        inactive: {name: web1, definition: persistent, state: running}
        rng: [virtio]
        snapshots: []
"""

import glob
import json
import os
import stat as statmod
import time
import xml.etree.ElementTree as ET

from ansible.module_utils.basic import AnsibleModule, missing_required_lib
from ansible_collections.vmguard.hardening.plugins.module_utils.common import forked
from ansible_collections.vmguard.hardening.plugins.module_utils.evidence import domxml, hostscan, sessions
from ansible_collections.vmguard.hardening.plugins.module_utils.remediation import ledger

try:
    import libvirt
    HAS_LIBVIRT = True
    LIBVIRT_IMPORT_ERROR = None
except ImportError as e:
    HAS_LIBVIRT = False
    LIBVIRT_IMPORT_ERROR = e

# Copied from the live definition onto the persistent one (they are not part of the XML).
NON_XML_FIELDS = ("state", "persistent", "autostart", "snapshots", "ledger", "error", "pid")
STATES = {0: "nostate", 1: "running", 2: "blocked", 3: "paused", 4: "shutdown", 5: "shutoff",
          6: "crashed", 7: "pmsuspended"}


def _ledger(ledger_dir, uuid):
    """None (no record), the record, or {"error": "<path>: <why>"} for a ledger that is not a regular
    file, larger than 1 MiB, not JSON or of the wrong shape (ledger.read_record: never a hang on a
    FIFO, never followed through a symbolic link)."""
    return ledger.read_record(ledger_dir, uuid)


def _state(dom):
    state = dom.state()[0]
    return STATES.get(state, str(state))


# virStorageVolType, as virStorageVolGetInfo reports it.
VOLUME_TYPES = {0: "file", 1: "block", 2: "dir", 3: "network", 4: "netdir", 5: "ploop"}


def resolve_volumes(conn, disks):
    """Each volume disk of ``disks`` (domxml gives their pool and volume) gets ``volume_path`` (storageVolLookupByName(...).path()),
    ``volume_type`` (file, block, dir, network, netdir, ploop), ``volume_pool_type`` (the pool's type: dir,
    logical, rbd...) and ``volume_error``: why the volume could not be resolved (pool or volume not found, pool
    inactive), else None. ISO-06 compares volume disks by that path and gives error for a disk with an error."""
    for disk in disks:
        if disk.get("type") != "volume":
            continue
        disk.update(volume_path=None, volume_type=None, volume_pool_type=None, volume_error=None)
        pool_name, vol_name = disk.get("pool"), disk.get("volume")
        if not pool_name or not vol_name:
            disk["volume_error"] = "volume disk without a pool or volume name (source %s)" % disk.get("source")
            continue
        try:
            pool = conn.storagePoolLookupByName(pool_name)
            disk["volume_pool_type"] = ET.fromstring(pool.XMLDesc(0)).get("type")
            vol = pool.storageVolLookupByName(vol_name)
            disk["volume_path"] = vol.path()
            disk["volume_type"] = VOLUME_TYPES.get(vol.info()[0])
        except libvirt.libvirtError as e:
            disk["volume_path"] = None
            disk["volume_error"] = "cannot resolve volume %s of storage pool %s: %s" % (vol_name, pool_name, e.get_error_message())
    return disks


def _host_path(disk):
    """The host path of a disk's storage, or None: a file, block or dir disk's source, a volume's resolved path
    (not that of a network pool's volume: an rbd pool's path is pool/image); network disks have none."""
    if disk.get("type") in ("file", "block", "dir"):
        return disk.get("source")
    if disk.get("type") == "volume" and disk.get("volume_type") not in ("network", "netdir"):
        return disk.get("volume_path")
    return None


def identify_sources(disks, local, stat=os.stat):
    """Each disk whose storage is a host path (_host_path) gets ``source_id``, what the path is on this host, and
    ``source_id_error``, why that could not be told (None when it could). From ``stat`` of the path, which follows
    symbolic links and reads metadata only (the file or device is never opened): "block MAJOR:MINOR" for a block
    device (st_rdev: /dev/sdb, its /dev/disk/by-id names, /dev/mapper/vg-lv and /dev/vg/lv are one), "inode
    ST_DEV:ST_INO" for anything else (a file under every name and link). ISO-06 compares disks by source_id when
    there is one, by the normalised path otherwise. ``local``: the domains run on this host (a local qemu driver);
    otherwise a path names a file of another host and is not looked at."""
    for disk in disks:
        path = _host_path(disk)
        if not path:
            continue
        disk.update(source_id=None, source_id_error=None)
        if not local:
            disk["source_id_error"] = "not looked up: the hypervisor is not a local qemu driver (compared by path)"
        elif not path.startswith("/"):
            disk["source_id_error"] = "%s is not an absolute path (compared by path)" % path
        else:
            try:
                st = stat(path)
            except OSError as e:
                disk["source_id_error"] = "cannot stat %s: %s (compared by path)" % (path, e.strerror or e)
                continue
            if statmod.S_ISBLK(st.st_mode):
                disk["source_id"] = "block %d:%d" % (os.major(st.st_rdev), os.minor(st.st_rdev))
            else:
                disk["source_id"] = "inode %d:%d" % (st.st_dev, st.st_ino)
    return disks


def collect_networks(conn):
    """{name: {bridge, forward, devs, active}} of every libvirt network, defined or transient, active or not: the
    Linux bridge a network's interfaces join (from its XML: libvirt names the bridge when the network is defined,
    so an inactive network has one too; what net.bridgeName() returns for an active one), its forward mode and the
    host NICs of a macvtap/hostdev network (<forward><interface dev/> and <pf dev/>). ISO-02 keys an interface of
    type network by that bridge, so a domain on network 'default' and one on bridge 'virbr0' share a segment."""
    out = {}
    for net in conn.listAllNetworks(0):
        try:
            root = ET.fromstring(net.XMLDesc(0))
            active = bool(net.isActive())
        except libvirt.libvirtError:  # undefined meanwhile: no domain can join it now
            continue
        bridge, forward = root.find("bridge"), root.find("forward")
        devs = [el.get("dev") for el in forward.findall("interface") + forward.findall("pf")
                if el.get("dev")] if forward is not None else []
        out[root.findtext("name") or net.name()] = dict(
            bridge=bridge.get("name") if bridge is not None else None,
            forward=forward.get("mode", "nat") if forward is not None else None, devs=devs, active=active)
    return out


def _parse(dom, flags, local, kind):
    """One definition of a domain, parsed; passwd_set from libvirt's own file of that definition; volume disks
    resolved to their path (resolve_volumes); host-local disk sources identified (identify_sources)."""
    xml_text = dom.XMLDesc(flags)
    d = domxml.parse_domain(xml_text)
    resolve_volumes(dom.connect(), d["disks"])
    identify_sources(d["disks"], local is not None)
    for g in d["graphics"]:
        g["passwd_set"] = None  # XML read without VIR_DOMAIN_XML_SECURE never carries passwd
    if local is not None and d["graphics"]:  # no console: libvirt's file has no password to look for
        present = hostscan.passwd_flags(local["dirs"], dom.name(), kind)
        hostscan.resolve_passwd_set(d["graphics"], present, local["qemu_conf"])
    return d


def _flags(dom):
    """What collect_domain needs besides the XML, asked of one domain (four calls)."""
    persistent = bool(dom.isPersistent())
    return dict(active=bool(dom.isActive()), persistent=persistent, state=_state(dom),
                autostart=bool(dom.autostart()) if persistent else False, snapshots=True)


def bulk_flags(conn):
    """{uuid: flags} for every domain from five calls, whatever their number (one round trip each
    instead of four per domain: 1.2 s of 1,000 domains on a local libvirtd); None when the driver
    cannot list by flag or report every state at once (collect_domain then asks each domain)."""
    def uuids(flags):
        return set(d.UUIDString() for d in conn.listAllDomains(flags))
    try:
        active = uuids(libvirt.VIR_CONNECT_LIST_DOMAINS_ACTIVE)
        persistent = uuids(libvirt.VIR_CONNECT_LIST_DOMAINS_PERSISTENT)
        autostart = uuids(libvirt.VIR_CONNECT_LIST_DOMAINS_AUTOSTART)
        snapshots = uuids(libvirt.VIR_CONNECT_LIST_DOMAINS_HAS_SNAPSHOT)
        states = dict((dom.UUIDString(), stats.get("state.state"))
                      for dom, stats in conn.getAllDomainStats(libvirt.VIR_DOMAIN_STATS_STATE, 0))
    except libvirt.libvirtError:
        return None
    return dict((u, dict(active=u in active, persistent=u in persistent, autostart=u in autostart and u in persistent,
                         snapshots=u in snapshots, state=STATES.get(states[u], str(states[u])) if states.get(u) is not None else None))
                for u in states)


def collect_domain(dom, ledger_dir, local=None, flags=None):
    """Evidence of one domain (see the evidence contract).

    ``local``: {"dirs": hostscan.qemu_driver_dirs(uri), "qemu_conf": parsed qemu.conf or None} for a local
    qemu driver, whose own files tell the pid and whether a console password is set; None otherwise.
    ``flags``: its entry of bulk_flags (None: asked of the domain).
    Domain XML is never requested with VIR_DOMAIN_XML_SECURE.
    """
    name = dom.name()
    try:
        if flags is None or flags.get("state") is None:
            flags = _flags(dom)
        active, persistent = flags["active"], flags["persistent"]
        d = _parse(dom, 0, local, "state" if active else "config")
        d["definition"] = "live" if active else "persistent"
        d["state"] = flags["state"]
        d["persistent"] = persistent
        d["autostart"] = flags["autostart"]
        snaps = []
        for s in dom.listAllSnapshots(0) if flags["snapshots"] else ():
            snap = domxml.parse_snapshot(s.getXMLDesc(0))
            snap["current"] = bool(s.isCurrent())  # the revert target of "virsh snapshot-revert --current"
            snaps.append(snap)
        d["snapshots"] = sorted(snaps, key=lambda s: (s["creation_time"] or 0, s["name"]))
        d["ledger"] = _ledger(ledger_dir, d["uuid"]) if d.get("uuid") else None
        d["pid"] = hostscan.domain_pid(local["dirs"], name) if active and local is not None else None
        d["error"] = None
        d["inactive"] = None
        if active and persistent:
            inactive = _parse(dom, libvirt.VIR_DOMAIN_XML_INACTIVE, local, "config")
            for key in NON_XML_FIELDS:
                inactive[key] = d[key]
            inactive["definition"] = "persistent"
            inactive["inactive"] = None
            d["inactive"] = inactive
        return d
    except libvirt.libvirtError as e:
        code = e.get_error_code()
        why = "domain vanished while it was read" if code == libvirt.VIR_ERR_NO_DOMAIN else e.get_error_message()
        return dict(name=name, error=why)
    except domxml.DomainXMLError as e:
        return dict(name=name, error=str(e))


class ConnectionLost(Exception):
    def __init__(self, read, why):
        Exception.__init__(self, why)
        self.read, self.why = read, why


# With at least this many domains, a forked child reads the second half on a connection of its own while
# this process reads the first (libvirt's round trips and the XML parsing of 1,000 domains take about
# 0.6 s in one process; 0.3 s in two). Fewer: not worth a fork and a second connection.
SHARED_READ_MIN = 100


def shares_state(uri):
    """Whether a second connection to ``uri`` sees the same domains: not for libvirt's test driver, where
    every connection to test:///default starts from its own copy."""
    return bool(uri) and uri.split(":", 1)[0].split("+", 1)[0] != "test"


def _collect(conn, listed, ledger_dir, local, known):
    """(evidence of ``listed`` in order, None) or (what was read, ConnectionLost) when the connection died."""
    domains = []
    for dom in listed:
        d = collect_domain(dom, ledger_dir, local, known.get(dom.UUIDString()))
        if d.get("error") and not conn.isAlive():
            return domains, ConnectionLost(len(domains), d["error"])
        domains.append(d)
    return domains, None


def _collect_share(uri, share, ledger_dir, local, known):
    """In the forked child: the evidence of ``share`` ([(uuid, name)]) read on a connection of its own (the
    parent's socket is never used here), as (domains, lost) with lost None or (read, why); None when this
    connection cannot be opened or listed (the parent then reads the share itself)."""
    try:
        conn = libvirt.open(uri)
    except libvirt.libvirtError:
        return None
    try:
        try:
            by_uuid = dict((d.UUIDString(), d) for d in conn.listAllDomains(0))
        except libvirt.libvirtError:
            return None
        domains, lost = _collect(conn, [by_uuid[u] for u, _n in share if u in by_uuid], ledger_dir, local, known)
        gone = [dict(name=n, error="domain vanished while it was read") for u, n in share if u not in by_uuid]
        return domains + gone, (lost.read, lost.why) if lost else None
    finally:
        try:
            conn.close()
        except libvirt.libvirtError:
            pass


def collect_domains(conn, ledger_dir, local, uri=None):
    """Evidence of every domain; ConnectionLost when the connection dies meanwhile (a domain read failed and
    the connection is no longer alive): the rest of the host's domains would otherwise each be an error of
    their own, and the ones never listed would be missing without a trace.

    With the ``uri`` of ``conn`` (a driver whose connections share state) and SHARED_READ_MIN domains or
    more, a forked child reads the second half on its own connection (common/forked.py); when it cannot
    (no fork here, no second connection, the child died), this process reads that half itself."""
    listed = conn.listAllDomains(0)
    known = bulk_flags(conn) or {}
    half = len(listed) // 2
    handle = None
    if len(listed) >= SHARED_READ_MIN and shares_state(uri):
        share = [(d.UUIDString(), d.name()) for d in listed[half:]]
        handle = forked.start(_collect_share, uri, share, ledger_dir, local, known)
    if handle is None:
        half = len(listed)
    try:
        domains, lost = _collect(conn, listed[:half], ledger_dir, local, known)
    except BaseException:
        if handle is not None:
            forked.abandon(handle)
        raise
    if lost is not None:
        if handle is not None:
            forked.abandon(handle)
        raise lost
    theirs = None
    if handle is not None:
        try:
            theirs = forked.finish(handle)
        except (forked.ChildFailed, libvirt.libvirtError, domxml.DomainXMLError, OSError):
            theirs = None
    if theirs is None:  # no child, or it could not read: the rest is read here
        rest, lost = _collect(conn, listed[half:], ledger_dir, local, known)
        if lost is not None:
            raise ConnectionLost(len(domains) + lost.read, lost.why)
        return domains + rest
    rest, lost = theirs
    if lost is not None:
        raise ConnectionLost(len(domains) + lost[0], lost[1])
    return domains + rest


def image_dirs(conn, p):
    """libvirt's default image, save, snapshot and dump directories, the options' and the directory pools'
    target paths: the directories whose every file is a disk image (LEAK-01, VIS-07). A directory that merely
    holds a disk (/var/tmp, a home directory) is not one: the disk files themselves are judged
    (hostscan.disk_files)."""
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
    return dirs


def expand_paths(paths):
    """``paths`` with each one holding a wildcard replaced by the files it matches (sorted; none: dropped), each
    path once."""
    out = []
    for path in paths:
        for one in sorted(glob.glob(path)) if any(c in path for c in "*?[") else [path]:
            if one not in out:
                out.append(one)
    return out


def socket_dirs(confs):
    """The socket directories a daemon configuration names (unix_sock_dir, absolute), beyond libvirt's own."""
    dirs = set()
    for conf in confs.values():
        d = (conf or {}).get("unix_sock_dir")
        if isinstance(d, str) and d.startswith("/") and d.rstrip("/") not in hostscan.SOCKET_DIRS:
            dirs.add(d)
    return sorted(dirs)


def daemon_confs(paths, listeners):
    """({basename: parsed configuration}, {basename: why unreadable}) of the daemon configuration files ``paths``
    (a missing one is skipped: that daemon may not be installed) and of the file the daemon holding each TCP
    listener reads (its --config elsewhere: that file, under its own basename, wins over a default path of the
    same name; missing: {} - the running daemon uses its built-in defaults). A path with a wildcard stands for
    every file it matches (/etc/libvirt/virt*d.conf: every modular daemon's)."""
    confs, errors = {}, {}
    wanted = [(path, False) for path in expand_paths(paths)]
    wanted += [(x["config"], True) for x in listeners if x.get("config")]
    for path, owner in wanted:
        name = os.path.basename(path)
        conf, why = hostscan.load_conf(path)
        if why is not None:
            errors[name] = why
            confs.pop(name, None)
        elif conf is not None or owner:
            confs[name] = conf or {}
            errors.pop(name, None)
    return confs, errors


def collect_host(conn, p, domains, run, qemu_conf=None, tools=None):
    """Host evidence (see the evidence contract). ``run(argv)`` -> (rc, out, err) runs qemu-img and debugfs;
    ``tools``: {"qemu_img", "debugfs"} paths (None: not installed)."""
    tools = tools or {}
    host = {}
    qc, why = (qemu_conf, None) if qemu_conf is not None else hostscan.load_qemu_conf(p["qemu_conf"])
    host["qemu_conf_error"] = why
    if qc is not None:
        qc = dict(qc)
        qc["qemu_user_default"] = hostscan.qemu_user_default()
    host["qemu_conf"] = qc
    host["qemu_gid"] = hostscan.group_gid((qc or {}).get("group") or "libvirt-qemu") or hostscan.group_gid("kvm")
    procs = list(hostscan.processes())
    host["tcp_listeners"] = hostscan.tcp_listeners(procs)
    host["daemon_confs"], host["daemon_conf_errors"] = daemon_confs(p["daemon_confs"], host["tcp_listeners"])
    host["sockets"] = hostscan.sockets(hostscan.SOCKET_DIRS, socket_dirs(host["daemon_confs"]))
    caps = ET.fromstring(conn.getCapabilities())
    host["security_models"] = [m.text for m in caps.findall("./host/secmodel/model")]
    host["lsm"] = hostscan.lsm_state()
    host["qemu_processes"] = hostscan.qemu_processes(procs)
    host["watcher"] = hostscan.watcher(p["watcher_lock"], p["watcher_heartbeat"])
    if tools.get("qemu_img"):
        chains = hostscan.disk_chains(domains, run, tools["qemu_img"])
        hostscan.fill_backing(domains, chains)
        verify = p["verify_base_images"] and bool(tools.get("debugfs"))
        host["base_images"] = hostscan.base_images(domains, chains, run, verify=verify, work_dir=p["work_dir"],
                                                   qemu_img=tools["qemu_img"], debugfs=tools.get("debugfs"))
        if p["verify_base_images"] and not tools.get("debugfs"):
            for b in host["base_images"]:
                b["error"] = "not verified: debugfs (e2fsprogs) is not installed"
    else:
        host["base_images"] = None  # cannot be known: qemu-img (qemu-utils) is not installed
    images, host["image_dirs"] = hostscan.scan_images(image_dirs(conn, p), hostscan.disk_files(domains))
    host["images"] = hostscan.mark_referenced(images, domains)
    dirs = hostscan.qemu_driver_dirs(p["uri"])
    host["session_domains"] = sessions.scan(skip=dirs["config"] if dirs and p["uri"].endswith("/session") else None)
    return host


def exit_evidence(module, evidence):
    """Exit with the evidence as one compact JSON text (``evidence_json``), which the action plugin turns back
    into ``evidence``: AnsibleModule would otherwise copy every node of it to scrub no_log values and encode
    it node by node (0.5 s of 1,000 domains), then the controller decode it the same way. The module takes no
    secret, so nothing is there to scrub; should it ever take one, the evidence goes out as a dict again."""
    if module.no_log_values:
        module.exit_json(changed=False, evidence=evidence)
    module.exit_json(changed=False, evidence_json=json.dumps(evidence, separators=(",", ":")))


ARGUMENT_SPEC = dict(
    uri=dict(type="str", default="qemu:///system"),
    ledger_dir=dict(type="path", default="/var/lib/vmguard/ledger"),
    qemu_conf=dict(type="path", default="/etc/libvirt/qemu.conf"),
    daemon_confs=dict(type="list", elements="path", default=["/etc/libvirt/libvirtd.conf", "/etc/libvirt/virt*d.conf"]),
    image_dirs=dict(type="list", elements="path", default=[]),
    host=dict(type="bool"),
    watcher_lock=dict(type="path", default=hostscan.WATCHER_LOCK),
    watcher_heartbeat=dict(type="path", default=hostscan.WATCHER_HEARTBEAT),
    verify_base_images=dict(type="bool", default=True),
    work_dir=dict(type="path"),
    publish=dict(type="str"),  # handled by the action plugin on the controller
    inline=dict(type="bool", default=True),  # the action plugin's choice (plugin_utils/inline.py)
)
# What the action plugin needs to read the evidence in the controller's own process (plugin_utils/inline.py).
INLINE_MISSING = None if HAS_LIBVIRT else "libvirt-python"


def params_error(p):
    """Why the validated parameters ``p`` cannot be used, or None."""
    if p["work_dir"] and not os.path.isdir(p["work_dir"]):
        return "work_dir %s is not a directory" % p["work_dir"]
    return None


def gather(p, run, bin_path, warn):
    """The evidence of the validated parameters ``p`` (see the evidence contract). ``run(argv)`` returns
    (rc, stdout, stderr), ``bin_path(name)`` a path or None, ``warn(text)`` records a warning: AnsibleModule's
    here, the action plugin's own when it reads the evidence in the controller's process (plugin_utils/inline.py)."""
    start = time.time()
    evidence = dict(uri=p["uri"], error=None, host={}, domains=[], networks=None, networks_error=None)
    try:
        conn = libvirt.open(p["uri"])
    except libvirt.libvirtError as e:
        evidence["error"] = "cannot connect to %s: %s" % (p["uri"], e.get_error_message())
        evidence["seconds"] = round(time.time() - start, 3)
        warn(evidence["error"])
        return evidence
    dirs = hostscan.qemu_driver_dirs(p["uri"])
    want_host = p["host"] if p["host"] is not None else dirs is not None
    qemu_conf = hostscan.read_qemu_conf(p["qemu_conf"]) if (dirs is not None or want_host) else None
    local = dict(dirs=dirs, qemu_conf=qemu_conf) if dirs is not None else None
    try:
        evidence["domains"] = sorted(collect_domains(conn, p["ledger_dir"], local, p["uri"]), key=lambda d: d["name"])
        try:
            evidence["networks"] = collect_networks(conn)
        except libvirt.libvirtError as e:  # a driver without networks: ISO-02 then cannot tie bridges to networks
            evidence["networks_error"] = "cannot list the networks of %s: %s" % (p["uri"], e.get_error_message())
        if want_host:
            tools = dict(qemu_img=bin_path("qemu-img"), debugfs=bin_path("debugfs"))
            evidence["host"] = collect_host(conn, p, evidence["domains"], run, qemu_conf, tools)
    except libvirt.libvirtError as e:
        evidence["error"] = "libvirt error while reading %s: %s" % (p["uri"], e.get_error_message())
    except ConnectionLost as e:  # the domains not read yet are unknown: the whole hypervisor is an error
        evidence["error"] = "lost the connection to %s after reading %d domain(s) (libvirtd stopped or restarted?): %s" % (
            p["uri"], e.read, e.why)
        evidence["domains"] = []
        warn(evidence["error"])
    finally:
        try:
            conn.close()
        except libvirt.libvirtError:
            pass
    evidence["seconds"] = round(time.time() - start, 3)
    return evidence


def main():
    module = AnsibleModule(argument_spec=ARGUMENT_SPEC, supports_check_mode=True)
    if not HAS_LIBVIRT:
        module.fail_json(msg=missing_required_lib("libvirt-python"), exception=str(LIBVIRT_IMPORT_ERROR))
    why = params_error(module.params)
    if why:
        module.fail_json(msg=why)
    exit_evidence(module, gather(module.params, module.run_command, module.get_bin_path, module.warn))


if __name__ == "__main__":
    main()
