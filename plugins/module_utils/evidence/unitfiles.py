# -*- coding: utf-8 -*-
# Copyright: (c) 2026, vmguard.hardening developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The enabled and masked systemd units of a guest, read from the unit directories (standard library
only; runs under the guest's Python, 3.6 and later).

The states are those ``systemctl list-unit-files`` of systemd 252 (the guests' Debian 12) reports, for
the unit types the guest rules read (service, socket, timer); the unit tests check each case below
against ``systemctl --root`` on real trees:

- masked: the unit's file, the first one found along the unit search path, is /dev/null (a symlink
  to it; any character device) or empty; in /run it is masked-runtime (`systemctl mask --runtime`), listed
  apart (masked_runtime): /run is gone at the next boot, and the unit with it is no longer masked;
- enabled: the unit (for an instance such as getty@tty1.service without a file of its own, its template
  getty@.service when tty1 is the template's DefaultInstance) has a symlink in a .wants, .requires or
  .upholds directory of /etc/systemd/system or of a generator directory under /run (the generators run
  again at every boot and make the same links), or an alias symlink there that its [Install] Alias= declares;
  its file is found along the search path, is not masked and is not generated or transient;
- enabled_runtime: enabled as above only by symlinks in the other directories under /run (`systemctl enable
  --runtime`), listed apart: /run is empty at the next boot, and the unit with it is no longer enabled.
  systemctl says enabled-runtime for both the generators' links and these; only these are gone at the next boot.

The next boot (boot_wants) sees the tree without the /run directories that do not survive a reboot (VOLATILE_DIRS):
their unit files, drop-ins, masks and links are gone; the generators' directories stay (made again at each boot).

systemctl asks the manager (or, with --root, computes it itself), which looks for every unit's
symlinks in every configuration directory: 6-9 s in a guest under TCG for about 250 units. One walk
of the directories gives the same states in a fraction of a second. The unit tests compare both with
``systemctl --root`` on real trees.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import errno
import os
import stat

# The system unit search path, first match wins (systemd 252's lookup paths, split /usr included).
SEARCH_PATH = ("/etc/systemd/system.control", "/run/systemd/system.control", "/run/systemd/transient",
               "/run/systemd/generator.early", "/etc/systemd/system", "/etc/systemd/system.attached",
               "/run/systemd/system", "/run/systemd/system.attached", "/run/systemd/generator",
               "/usr/local/lib/systemd/system", "/lib/systemd/system", "/usr/lib/systemd/system",
               "/run/systemd/generator.late")
# Where enablement symlinks count (systemd 252, checked with systemctl --root): the persistent configuration
# /etc/systemd/system (enabled) and every directory under /run (enabled-runtime; systemctl enable --runtime,
# and the generators: systemd-fstab-generator wants systemd-remount-fs.service). Not the vendor directories
# (a vendor .wants symlink makes a unit static), nor /etc/systemd/system.control or .attached.
VENDOR_DIRS = ("/usr/local/lib/systemd/system", "/lib/systemd/system", "/usr/lib/systemd/system")
CONFIG_DIRS = ("/etc/systemd/system",) + tuple(d for d in SEARCH_PATH if d.startswith("/run/"))
# The directories under /run that the next boot does not have: /run is a tmpfs, emptied at every boot; what
# `systemctl enable --runtime`, `mask --runtime`, `set-property --runtime` and transient units put there is
# gone. The generators' directories are not: the generators run again at every boot and make them again.
VOLATILE_DIRS = ("/run/systemd/system.control", "/run/systemd/transient", "/run/systemd/system",
                 "/run/systemd/system.attached")
# The search path and the enabling directories of the next boot.
BOOT_SEARCH_PATH = tuple(d for d in SEARCH_PATH if d not in VOLATILE_DIRS)
PERSISTENT_CONFIG_DIRS = tuple(d for d in CONFIG_DIRS if d not in VOLATILE_DIRS)
# A unit found first in these is generated or transient, never enabled.
NOT_ENABLEABLE = ("/run/systemd/transient", "/run/systemd/generator.early", "/run/systemd/generator",
                  "/run/systemd/generator.late")
TYPES = (".service", ".socket", ".timer")
DEPENDENCY_DIRS = (".wants", ".requires", ".upholds")


class UnitScanError(Exception):
    """A unit directory could not be read (the message names it): the states would be incomplete."""


def _listdir(path):
    """The names in ``path``; [] when it does not exist or is not a directory."""
    try:
        return os.listdir(path)
    except OSError as e:
        if e.errno in (errno.ENOENT, errno.ENOTDIR):
            return []
        raise UnitScanError("%s cannot be read: %s" % (path, e.strerror))


def _is_mask(path):
    """Whether the unit file at ``path`` masks its unit: a character device such as /dev/null (through
    symlinks) or an empty file, as systemd's null_or_empty() decides."""
    try:
        st = os.stat(path)
    except OSError:
        return False  # a dangling symlink: not a mask (systemd reports it as bad, not masked)
    return stat.S_ISCHR(st.st_mode) or (stat.S_ISREG(st.st_mode) and st.st_size == 0)


def template_of(name):
    """getty@tty1.service -> getty@.service (the unit file an instance is made from); others unchanged."""
    at = name.find("@")
    if at < 0:
        return name
    dot = name.rfind(".")
    return name[:at + 1] + name[dot:] if dot > at else name


def first_files(root="/", search_path=SEARCH_PATH):
    """{unit name: (directory, path)} of the first file of each unit along the search path (BOOT_SEARCH_PATH: the
    files the next boot finds)."""
    first = {}
    for d in search_path:
        where = os.path.join(root, d.lstrip("/"))
        for name in _listdir(where):
            if name.endswith(TYPES) and name not in first:
                first[name] = (d, os.path.join(where, name))
    return first


def _wanted(root, config_dirs=CONFIG_DIRS):
    """(dependency, aliases): the names of the symlinks in the dependency directories of the configuration
    directories, and {alias name: target unit} of their top-level symlinks that name another unit."""
    wanted, aliases = set(), {}
    for d in config_dirs:
        where = os.path.join(root, d.lstrip("/"))
        for sub in _listdir(where):
            path = os.path.join(where, sub)
            if sub.endswith(TYPES) and os.path.islink(path):
                try:
                    target = os.path.basename(os.readlink(path))
                except OSError:
                    continue  # removed meanwhile
                if target != sub and target.endswith(TYPES):
                    aliases.setdefault(sub, target)
            elif sub.endswith(DEPENDENCY_DIRS):
                for name in _listdir(path):
                    if name.endswith(TYPES) and os.path.islink(os.path.join(path, name)):
                        wanted.add(name)
    return wanted, aliases


def install_values(path, key):
    """The values of ``key`` in the [Install] section of the unit file at ``path`` (a regular file only:
    a device or a FIFO planted as a unit file is never opened), each assignment split on spaces."""
    values = []
    for val in section_values(path, "Install", key):
        values = values + val.split() if val.strip() else []  # an empty assignment resets the list
    return values


def section_values(path, section, key):
    """The assignments of ``key`` in ``section`` of the unit file at ``path``, in order, as written (an empty one
    included: it resets a list); [] for anything but a readable regular file (a device or a FIFO planted as a unit
    file is never opened)."""
    try:
        if not stat.S_ISREG(os.stat(path).st_mode):
            return []
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    except OSError:
        return []
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return []
        text = os.read(fd, 1 << 20).decode("utf-8", "replace")
    except OSError:
        return []
    finally:
        os.close(fd)
    current, values = None, []
    for line in text.splitlines():
        line = line.strip()
        if line.startswith("[") and line.endswith("]"):
            current = line[1:-1]
        elif current == section and "=" in line and not line.startswith(("#", ";")):
            k, val = line.split("=", 1)
            if k.strip() == key:
                values.append(val.strip())
    return values


def dropins(unit, root="/", search_path=SEARCH_PATH):
    """The drop-in files of ``unit`` (``<dir>/<unit>.d/*.conf`` along the search path; a file name met in an earlier
    directory hides the same name in a later one, as /etc hides /lib), in the order systemd applies them: by file
    name, after the unit file. Type-wide (``service.d``) and prefix (``foo-.service.d``) drop-ins are not read."""
    found = {}
    for d in search_path:
        where = os.path.join(root, d.lstrip("/"), unit + ".d")
        for name in _listdir(where):
            if name.endswith(".conf") and name not in found:
                found[name] = os.path.join(where, name)
    return [found[n] for n in sorted(found)]


def unit_values(path, unit, section, key, root="/", search_path=SEARCH_PATH):
    """The effective values of the list setting ``key`` in ``section`` of the unit file at ``path`` and of the unit's
    drop-ins (dropins along ``search_path``), in the order systemd reads them; an empty assignment resets the list (a
    drop-in's ``ExecStart=`` followed by its own replaces the unit file's)."""
    values = []
    for p in [path] + dropins(unit, root, search_path):
        for value in section_values(p, section, key):
            values = values + [value] if value.strip() else []
    return values


def default_instance(path):
    """The DefaultInstance= of a template's [Install] section (the last one set), or None."""
    values = install_values(path, "DefaultInstance")
    return values[-1] if values else None


def _enabled_name(name, first, masked):
    """The unit an enablement symlink named ``name`` makes enabled, or None: a unit with a file of its own
    (an instance too, unless that file masks it); an instance of a template enables the template only when
    it is the template's DefaultInstance (other instances make it "indirect" in systemctl's words)."""
    if name in first and name not in masked:
        return name
    template = template_of(name)
    found = first.get(template)
    if template == name or found is None:
        return None
    instance = name[name.index("@") + 1:name.rindex(".")]
    return template if instance and instance == default_instance(found[1]) else None


def _enabled(root, config_dirs, first, masked):
    """The units the enablement symlinks of ``config_dirs`` enable (dependency links and declared aliases), their
    files ``first`` found, not ``masked``, not generated or transient."""
    wanted, aliases = _wanted(root, config_dirs)
    candidates = set(_enabled_name(link, first, masked) for link in wanted)
    for alias, target in aliases.items():  # enabled through an alias its [Install] Alias= declares
        if target in first and alias in install_values(first[target][1], "Alias"):
            candidates.add(target)
    enabled = set()
    for name in candidates:
        found = first.get(name) if name else None
        if found is not None and name not in masked and found[0] not in NOT_ENABLEABLE:
            enabled.add(name)
    return enabled


def unit_states(root="/"):
    """{"enabled": [unit], "enabled_runtime": [unit], "masked": [unit], "masked_runtime": [unit]}, sorted: "enabled"
    and "masked" hold what survives a reboot, "enabled_runtime" and "masked_runtime" what lives in /run only (gone at
    the next boot; the generators' links count as surviving: they are made again). UnitScanError when a unit
    directory cannot be read or the tree has no systemd unit directory at all (not a systemd system: nothing
    can be known)."""
    _require_systemd(root)
    first = first_files(root)
    masks = dict((name, d) for name, (d, path) in first.items() if _is_mask(path))
    masked = set(masks)
    enabled = _enabled(root, PERSISTENT_CONFIG_DIRS, first, masked)
    runtime_enabled = _enabled(root, CONFIG_DIRS, first, masked) - enabled
    runtime = set(name for name, d in masks.items() if d.startswith("/run/"))
    return {"enabled": sorted(enabled), "enabled_runtime": sorted(runtime_enabled),
            "masked": sorted(masked - runtime), "masked_runtime": sorted(runtime)}


def _require_systemd(root):
    """UnitScanError when ``root`` has no vendor unit directory: not a systemd system, nothing can be known."""
    if not any(os.path.isdir(os.path.join(root, d.lstrip("/"))) for d in VENDOR_DIRS):
        raise UnitScanError("no systemd unit directory (%s) under %s: not a systemd system" % (", ".join(VENDOR_DIRS), root))


def boot_wants(root="/"):
    """{unit: set of the units that pull it in}: the units a symlink in a .wants, .requires or .upholds directory
    along BOOT_SEARCH_PATH pulls in at the next boot (persistent configuration, generators and vendor directories
    alike: a vendor's link starts a static unit too; the volatile /run directories are gone). An instance such as
    getty@tty1.service is its own entry (its file is its template's). Only links: Wants= in unit files is not read."""
    wants = {}
    for d in BOOT_SEARCH_PATH:
        where = os.path.join(root, d.lstrip("/"))
        for sub in _listdir(where):
            if not sub.endswith(DEPENDENCY_DIRS):
                continue
            path = os.path.join(where, sub)
            for name in _listdir(path):
                if name.endswith(TYPES) and os.path.islink(os.path.join(path, name)):
                    wants.setdefault(name, set()).add(sub.rsplit(".", 1)[0])
    return wants


def linked_units(root="/"):
    """The units any enablement symlink of the tree names (dependency links and aliases' targets, /run included,
    instances with their template): those the tree can tell the enablement of."""
    wanted, aliases = _wanted(root, CONFIG_DIRS + VENDOR_DIRS)
    names = wanted | set(aliases.values())
    return names | set(template_of(n) for n in names)


def boot_file(unit, first):
    """The path of the file ``unit`` is loaded from (``first``: first_files; an instance's template), or None when
    it has none or that file masks it."""
    found = first.get(unit) or first.get(template_of(unit))
    if found is None or _is_mask(found[1]):
        return None
    return found[1]
