#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, vmguard.hardening developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: host_config
short_description: Set the libvirt host configuration the vmguard host rules require
version_added: "0.1.0"
description:
  - Carries out the C(host_config) step of the vmguard remediation plan on a libvirt hypervisor (rules
    C(ISO-04) host part, C(ISO-05), C(LEAK-01), C(LEAK-04) host part, C(LEAK-06), C(LEAK-08)).
  - Sets O(qemu_conf) keys in C(qemu.conf) and O(daemon_conf) keys in each of C(libvirtd.conf) and the modular
    daemons' files (C(virtqemud.conf), C(virtproxyd.conf), C(virtsecretd.conf), C(virtstoraged.conf) and the
    others with unix sockets of their own) that exists. A file is read as libvirt reads it (single, double
    and triple quoted strings, lists, statements separated by C(;), comments; the first statement of a
    repeated key is the one libvirt uses); a file libvirt cannot parse is not edited and the module fails
    naming the line. A key whose value libvirt reads already as wanted is no change (a comment after it
    stays); otherwise its first statement is rewritten in place and its later statements are removed, or
    the key is appended at the end under a comment. Every comment and every other statement stays.
    C(unix_sock_rw_perms) that is not world-accessible and an existing C(unix_sock_group) are kept
    (never loosened); C(unix_sock_group) is set only when that group exists on the host.
  - Every new file is parsed with the augeas lens libvirt ships for it (C(augtool), package
    augeas-tools) before it lands; a file the lens rejects is not written and the module fails naming
    it. The old file is copied to O(backup_dir) first; the new one replaces it atomically with the same
    mode and owner. A configuration file that is a symbolic link or not a regular file is refused.
  - Chmods what rule C(LEAK-01) flags (re-derived at run time) in O(image_dirs) and O(image_files) - each
    directory of O(image_dirs) loses read and write for others (search stays), and each regular file
    directly in it and each file of O(image_files) loses access for others, and group access unless its
    group is the QEMU group (O(qemu_gid)) or root. A directory of O(image_dirs) that is sticky or
    world-writable (shared, as C(/var/tmp)) is never chmodded, nor are its files, and is returned in
    RV(not_enforced). No symbolic link is followed (every path component is opened with O_NOFOLLOW; modes
    change through descriptors).
  - Makes sure the nwfilters O(nwfilters) exist in libvirt, defining a missing one (and the filters it
    references) from the XML libvirt ships in O(nwfilter_dir).
  - libvirt reads its configuration only when a daemon starts. Where systemd runs and O(restart=true),
    each daemon running since before a file it reads changed is restarted with C(systemctl try-restart)
    (running guests keep running). Elsewhere those daemons are returned in RV(restart_pending).
author:
  - vmguard.hardening developers (@vmguard)
requirements:
  - augtool (augeas-tools) and libvirt's augeas lenses (libvirt-daemon-system)
  - libvirt-python when O(nwfilters) is not empty
options:
  root:
    description: Directory the host's files are under (tests use a copy of C(/etc/libvirt)). Daemons are
      considered for a restart only when it is C(/).
    type: path
    default: /
  conf_dir:
    description: libvirt's configuration directory, under O(root).
    type: path
    default: /etc/libvirt
  qemu_conf:
    description: Keys to set in C(qemu.conf) (integers are written bare, strings quoted); a null value removes
      every statement of the key (libvirt's built-in default applies, e.g. C(security_driver) picks the active
      LSM, C(security_default_confined) is 1).
    type: dict
    default: {}
  daemon_conf:
    description: Keys to set in every existing daemon configuration file of O(daemon_confs) (network keys such as
      C(listen_tcp) only in C(libvirtd.conf) and C(virtproxyd.conf)).
    type: dict
    default: {}
  daemon_confs:
    description: Daemon configuration files (names in O(conf_dir)) to edit; missing ones are skipped.
    type: list
    elements: str
    default: [libvirtd.conf, virtqemud.conf, virtproxyd.conf, virtnetworkd.conf, virtnodedevd.conf, virtnwfilterd.conf,
      virtsecretd.conf, virtstoraged.conf, virtinterfaced.conf, virtlxcd.conf, virtchd.conf, virtxend.conf, virtvboxd.conf,
      virtvzd.conf, virtbhyved.conf]
  image_dirs:
    description: libvirt's image directories (as the host sees them, under O(root)) whose modes and files' modes
      C(LEAK-01) judges (its image, save, snapshot and dump directories and directory storage pools).
    type: list
    elements: path
    default: []
  image_files:
    description: Disk images and backing files outside O(image_dirs) (as the host sees them, under O(root)) whose
      modes C(LEAK-01) judges one by one; the directories holding them are left alone.
    type: list
    elements: path
    default: []
  qemu_gid:
    description: Group id of the QEMU user's group (its images may stay group-readable). Defaults to
      the group C(libvirt-qemu), else C(kvm), of this host.
    type: int
  nwfilters:
    description: nwfilter names that must exist in libvirt at O(uri).
    type: list
    elements: str
    default: []
  nwfilter_dir:
    description: Directory of the nwfilter XML libvirt ships (C(<name>.xml)), used to define a missing one.
    type: path
    default: /usr/share/libvirt/nwfilter
  uri:
    description: libvirt connection URI (for O(nwfilters)).
    type: str
    default: qemu:///system
  backup_dir:
    description: Where the previous content of a changed configuration file is kept (C(<name>-<UTC stamp>), mode 0600).
    type: path
    default: /var/lib/vmguard/backup/host
  lens_dir:
    description: Directory of libvirt's augeas lenses.
    type: path
    default: /usr/share/augeas/lenses
  restart:
    description: Restart (C(systemctl try-restart)) the daemons that must read a changed file, where systemd runs.
    type: bool
    default: true
extends_documentation_fragment:
  - vmguard.hardening.attributes.changes
notes:
  - On a host with socket activation (systemd C(libvirtd.socket), C(virtqemud.socket)) the socket units,
    not C(unix_sock_rw_perms) or C(listen_tcp), decide the sockets' modes and listeners.
"""

EXAMPLES = r"""
- name: ISO-05, LEAK-04, LEAK-06, LEAK-08 | ENFORCE | libvirt host configuration
  vmguard.hardening.host_config:
    qemu_conf: {user: libvirt-qemu, group: libvirt-qemu, seccomp_sandbox: 1, dump_guest_core: 0, migrate_tls_force: 1}
    daemon_conf: {listen_tcp: 0, unix_sock_rw_perms: "0770", unix_sock_group: libvirt}

- name: LEAK-01 | ENFORCE | Image directory permissions
  vmguard.hardening.host_config:
    image_dirs: [/var/lib/libvirt/images, /var/lib/libvirt/qemu/save]
    image_files: [/srv/scratch/lab1.qcow2]
"""

RETURN = r"""
files:
  description: Per configuration file changed (or, in check mode, to change), its C(changes) (C({key, old, new})) and C(backup).
    The old and new values of a secret key (C(vnc_password), C(spice_password), any key ending in C(password), C(passwd)
    or C(secret)) are C(<redacted>).
  returned: always
  type: dict
permissions:
  description: Modes changed (or to change) for C(LEAK-01) - C({path, old, new}) with octal text.
  returned: always
  type: list
not_enforced:
  description: Directories of O(image_dirs) left alone because they are shared (sticky or world-writable) -
    C({path, mode, reason}).
  returned: always
  type: list
nwfilters_defined:
  description: nwfilters defined (or to define) because they were missing.
  returned: always
  type: list
restarted:
  description: Daemons restarted with systemctl try-restart.
  returned: always
  type: list
restart_pending:
  description: Daemons that still run with the old configuration (no systemd, O(restart=false), or check mode).
  returned: always
  type: list
service_manager:
  description: C(systemd) when systemd runs on the host, else null.
  returned: always
  type: str
"""

import grp
import os
import traceback

from ansible.module_utils.basic import AnsibleModule, missing_required_lib

from ansible_collections.vmguard.hardening.plugins.module_utils.remediation import hostconf

try:
    import libvirt
    HAS_LIBVIRT = True
    LIBVIRT_IMPORT_ERROR = None
except ImportError:
    HAS_LIBVIRT = False
    LIBVIRT_IMPORT_ERROR = traceback.format_exc()


def under(root, path):
    return os.path.join(root, path.lstrip("/")) if root not in ("", "/") else path


def _validator(module, lens_dir, augtool):
    def validate(directory, base, lens):
        rc, out, err = module.run_command(hostconf.augtool_argv(augtool, directory, base, lens),
                                          data=hostconf.augtool_script(), binary_data=True)
        if rc != 0:
            raise hostconf.HostConfError("augtool failed (exit %d): %s" % (rc, (err or out).strip()))
        hostconf.check_augtool_output(out, base, os.path.join(directory, base))
    return validate


def _group_ok(module, settings):
    group = settings.get("unix_sock_group")
    if group is None:
        return settings
    try:
        grp.getgrnam(str(group))
        return settings
    except KeyError:
        module.warn("unix_sock_group %s does not exist on this host: left unset" % group)
        return dict((k, v) for k, v in settings.items() if k != "unix_sock_group")


def hide_secrets(module):
    """Register the secret values O(qemu_conf) and O(daemon_conf) set (vnc_password...) as no_log values, so
    Ansible scrubs them from everything the module returns, the echoed module arguments included (the options
    are dicts of many keys and cannot be no_log as a whole)."""
    for conf in (module.params["qemu_conf"], module.params["daemon_conf"]):
        for key, value in (conf or {}).items():
            if hostconf.secret_key(str(key)) and value not in (None, ""):
                module.no_log_values.update(str(v) for v in (value if isinstance(value, (list, tuple)) else [value]))


def edit_files(module, p, result):
    conf_dir = under(p["root"], p["conf_dir"])
    targets = [(hostconf.QEMU_CONF, p["qemu_conf"])] if p["qemu_conf"] else []
    if p["daemon_conf"]:
        targets += [(name, hostconf.daemon_settings(name, _group_ok(module, p["daemon_conf"]))) for name in p["daemon_confs"]]
    if not targets:
        return
    augtool = module.get_bin_path("augtool", required=True)
    validate = _validator(module, p["lens_dir"], augtool)
    for name, settings in targets:
        path = os.path.join(conf_dir, name)
        text, st = hostconf.read_conf(path)
        if text is None:
            if name == hostconf.QEMU_CONF:
                raise hostconf.HostConfError("%s does not exist: is libvirt's QEMU driver installed?" % path)
            continue
        try:
            new, changes = hostconf.edit(text, settings)
        except hostconf.HostConfError as e:
            raise hostconf.HostConfError("%s: %s" % (path, e))
        if not changes:
            continue
        lens = hostconf.lens_for(name, p["lens_dir"])
        entry = {"changes": changes, "backup": None}
        if module.check_mode:
            hostconf.validate_copy(new, name, lambda d, b: validate(d, b, lens))
        else:
            entry["backup"] = hostconf.write_validated(path, new, st, lambda d, b: validate(d, b, lens), p["backup_dir"])
        result["files"][path] = entry
        # The files' secrets (qemu.conf's vnc_password) never leave the module, not even in the diff.
        result["diff"].append({"before_header": path, "after_header": path, "before": hostconf.hostscan.redact_conf_text(text),
                               "after": hostconf.hostscan.redact_conf_text(new)})


def _qemu_gid(p):
    if p["qemu_gid"] is not None:
        return p["qemu_gid"]
    for name in ("libvirt-qemu", "kvm"):
        try:
            return grp.getgrnam(name).gr_gid
        except KeyError:
            continue
    return None


def fix_images(module, p, result):
    if not p["image_dirs"] and not p["image_files"]:
        return
    changes, errors = hostconf.fix_permissions(p["root"], p["image_dirs"], _qemu_gid(p), module.check_mode,
                                               files=p["image_files"], skipped=result["not_enforced"])
    result["permissions"] = changes
    for s in result["not_enforced"]:
        module.warn("LEAK-01: %s (mode %s) left alone: %s" % (s["path"], s["mode"], s["reason"]))
    if changes:
        result["diff"].append({"before_header": "LEAK-01 modes", "after_header": "LEAK-01 modes",
                               "before": "".join("%s %s\n" % (c["path"], c["old"]) for c in changes),
                               "after": "".join("%s %s\n" % (c["path"], c["new"]) for c in changes)})
    if errors:
        raise hostconf.HostConfError("; ".join(errors))


def ensure_nwfilters(module, p, result):
    if not p["nwfilters"]:
        return
    if not HAS_LIBVIRT:
        module.fail_json(msg=missing_required_lib("libvirt-python"), exception=LIBVIRT_IMPORT_ERROR)
    try:
        conn = libvirt.open(p["uri"])
    except libvirt.libvirtError as e:
        raise hostconf.HostConfError("cannot connect to %s: %s" % (p["uri"], e.get_error_message()))
    try:
        existing = set(conn.listNWFilters())
        order = hostconf.nwfilters_to_define(p["nwfilters"], existing, p["nwfilter_dir"])
        for name, xml in order:
            if not module.check_mode:
                try:
                    conn.nwfilterDefineXML(xml)
                except libvirt.libvirtError as e:
                    raise hostconf.HostConfError("nwfilter %s: libvirt refused its definition: %s" % (name, e.get_error_message()))
            result["nwfilters_defined"].append(name)
    finally:
        conn.close()


def restart_daemons(module, p, result):
    """Restart (try-restart) the daemons running with an older configuration than their files; returns whether a
    daemon was restarted - in check mode, whether one would be (a restart is a change: check mode predicts it)."""
    result["service_manager"] = "systemd" if os.path.isdir("/run/systemd/system") else None
    if p["root"] not in ("", "/"):
        return False  # a copy of the configuration: no daemon reads it
    conf_dir = p["conf_dir"]
    mtimes = {}
    for name in [hostconf.QEMU_CONF] + list(p["daemon_confs"]):
        try:
            mtimes[name] = os.lstat(os.path.join(conf_dir, name)).st_mtime
        except OSError:
            continue
    stale = hostconf.stale_daemons(hostconf.running_daemons(), mtimes)
    if module.check_mode:
        changed = set(os.path.basename(f) for f in result["files"])
        running = hostconf.running_daemons()
        stale += [(d, None) for d in hostconf.daemons_to_restart(changed) if d in running]
    daemons = sorted(set(d for d, _f in stale))
    would = False
    for d in daemons:
        if result["service_manager"] == "systemd" and p["restart"] and not module.check_mode:
            rc, out, err = module.run_command(["systemctl", "try-restart", "%s.service" % d])
            if rc != 0:
                raise hostconf.HostConfError("systemctl try-restart %s.service failed: %s" % (d, (err or out).strip()))
            result["restarted"].append(d)
        else:
            result["restart_pending"].append(d)
            would = would or (result["service_manager"] == "systemd" and p["restart"] and module.check_mode)
    if result["restart_pending"] and not module.check_mode:
        module.warn("%s still run(s) with the old configuration: %s" % (", ".join(result["restart_pending"]), (
            "restart them (restart=false)" if result["service_manager"] else
            "no service manager (systemd) runs here, restart them yourself; running guests keep running")))
    return bool(result["restarted"]) or would


def main():
    module = AnsibleModule(
        argument_spec=dict(
            root=dict(type="path", default="/"),
            conf_dir=dict(type="path", default="/etc/libvirt"),
            qemu_conf=dict(type="dict", default={}),
            daemon_conf=dict(type="dict", default={}),
            daemon_confs=dict(type="list", elements="str", default=list(hostconf.DAEMON_CONFS)),
            image_dirs=dict(type="list", elements="path", default=[]),
            image_files=dict(type="list", elements="path", default=[]),
            qemu_gid=dict(type="int"),
            nwfilters=dict(type="list", elements="str", default=[]),
            nwfilter_dir=dict(type="path", default="/usr/share/libvirt/nwfilter"),
            uri=dict(type="str", default="qemu:///system"),
            backup_dir=dict(type="path", default="/var/lib/vmguard/backup/host"),
            lens_dir=dict(type="path", default="/usr/share/augeas/lenses"),
            restart=dict(type="bool", default=True),
        ),
        supports_check_mode=True,
    )
    hide_secrets(module)
    p = module.params
    bad = [n for n in p["daemon_confs"] if n not in hostconf.DAEMON_CONFS]
    if bad:
        module.fail_json(msg="daemon_confs: unknown file(s) %s (known: %s)" % (", ".join(bad), ", ".join(hostconf.DAEMON_CONFS)))
    result = dict(changed=False, files={}, permissions=[], not_enforced=[], nwfilters_defined=[], restarted=[],
                  restart_pending=[], service_manager=None, diff=[])
    try:
        edit_files(module, p, result)
        fix_images(module, p, result)
        ensure_nwfilters(module, p, result)
        restarts = restart_daemons(module, p, result)
    except (hostconf.HostConfError, OSError) as e:
        result["changed"] = bool(result["files"] or result["permissions"] or result["nwfilters_defined"]
                                 or result["restarted"])
        module.fail_json(msg=str(e), **result)
    result["changed"] = bool(result["files"] or result["permissions"] or result["nwfilters_defined"] or restarts)
    if not module._diff:
        result.pop("diff")
    module.exit_json(**result)


if __name__ == "__main__":
    main()
