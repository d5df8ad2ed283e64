# -*- coding: utf-8 -*-
# Copyright: (c) 2026, vmguard.hardening developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The enabled and masked systemd units of a guest, read from the unit directories (standard library
only; runs under the guest's Python, 3.6 and later).

The states are those ``systemctl list-unit-files`` reports (systemd's install logic), for the unit
types the guest rules read (service, socket, timer):

- masked: the unit's file, the first one found along the unit search path, is /dev/null (a symlink
  to it) or empty; in /run it is masked-runtime, counted as masked too;
- enabled: the unit (for an instance such as getty@tty1.service, its template getty@.service when
  tty1 is the template's DefaultInstance) has a symlink in a .wants, .requires or .upholds directory of a non-vendor directory of the search path
  (/etc; /run, the generators' included, for enabled-runtime), its file is found along the search
  path, is not masked and is not generated or transient.

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
# Where the enablement symlinks count: every directory of the search path but the vendor ones (whose
# .wants symlinks make a unit static, not enabled). systemctl enable writes /etc; --runtime and the
# generators (systemd-fstab-generator: systemd-remount-fs.service) write /run, which is enabled-runtime.
VENDOR_DIRS = ("/usr/local/lib/systemd/system", "/lib/systemd/system", "/usr/lib/systemd/system")
CONFIG_DIRS = tuple(d for d in SEARCH_PATH if d not in VENDOR_DIRS)
# A unit found first in these is generated or transient, never enabled.
NOT_ENABLEABLE = ("/run/systemd/transient", "/run/systemd/generator.early", "/run/systemd/generator",
                  "/run/systemd/generator.late")
TYPES = (".service", ".socket", ".timer")
DEPENDENCY_DIRS = (".wants", ".requires", ".upholds")
NULL_DEVICE = os.makedev(1, 3)


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
    """Whether the unit file at ``path`` masks its unit: /dev/null (through symlinks) or empty."""
    try:
        st = os.stat(path)
    except OSError:
        return False  # a dangling symlink: not a mask (systemd reports it as bad, not masked)
    if stat.S_ISCHR(st.st_mode):
        return st.st_rdev == NULL_DEVICE
    return stat.S_ISREG(st.st_mode) and st.st_size == 0


def template_of(name):
    """getty@tty1.service -> getty@.service (the unit file an instance is made from); others unchanged."""
    at = name.find("@")
    if at < 0:
        return name
    dot = name.rfind(".")
    return name[:at + 1] + name[dot:] if dot > at else name


def _first_files(root):
    """{unit name: (directory, path)} of the first file of each unit along the search path."""
    first = {}
    for d in SEARCH_PATH:
        where = os.path.join(root, d.lstrip("/"))
        for name in _listdir(where):
            if name.endswith(TYPES) and name not in first:
                first[name] = (d, os.path.join(where, name))
    return first


def _wanted(root):
    """The names of the symlinks in the dependency directories of the configuration directories."""
    wanted = set()
    for d in CONFIG_DIRS:
        where = os.path.join(root, d.lstrip("/"))
        for sub in _listdir(where):
            if not sub.endswith(DEPENDENCY_DIRS):
                continue
            for name in _listdir(os.path.join(where, sub)):
                if name.endswith(TYPES) and os.path.islink(os.path.join(where, sub, name)):
                    wanted.add(name)
    return wanted


def default_instance(path):
    """The DefaultInstance= of a template's [Install] section (the last one set), or None."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)  # a FIFO planted as a unit file never hangs the read
    except OSError:
        return None
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return None
        text = os.read(fd, 1 << 20).decode("utf-8", "replace")
    except OSError:
        return None
    finally:
        os.close(fd)
    section, value = None, None
    for line in text.splitlines():
        line = line.strip()
        if line.startswith("[") and line.endswith("]"):
            section = line[1:-1]
        elif section == "Install" and "=" in line and not line.startswith(("#", ";")):
            key, val = line.split("=", 1)
            if key.strip() == "DefaultInstance":
                value = val.strip() or None
    return value


def _enabled_name(name, first):
    """The unit an enablement symlink named ``name`` makes enabled, or None: an instance of a template
    enables the template only when it is the template's DefaultInstance (other instances make it
    "indirect" in systemctl's words, not enabled)."""
    template = template_of(name)
    if template == name:
        return name
    found = first.get(template)
    if found is None:
        return None
    instance = name[name.index("@") + 1:name.rindex(".")]
    return template if instance and instance == default_instance(found[1]) else None


def unit_states(root="/"):
    """{"enabled": [unit], "masked": [unit]}, sorted; UnitScanError when a unit directory cannot be read."""
    first = _first_files(root)
    masked = set(name for name, (d, path) in first.items() if _is_mask(path))
    enabled = set()
    for link in _wanted(root):
        name = _enabled_name(link, first)
        found = first.get(name) if name else None
        if found is not None and name not in masked and found[0] not in NOT_ENABLEABLE:
            enabled.add(name)
    return {"enabled": sorted(enabled), "masked": sorted(masked)}
