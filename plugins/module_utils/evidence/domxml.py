# -*- coding: utf-8 -*-
# Copyright: (c) 2026, vmguard.hardening developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Domain and snapshot XML -> evidence dicts (what the domain-layer rules read).

Standard library only (xml.etree), so it runs inside modules on any host and in unit tests.
It only reads; domain XML edits use lxml in the enforcement module. Every field is present in
the output (empty list, None or False when the XML has nothing), so rules never guess whether a
missing key means "absent" or "not collected".
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import ipaddress
import json
import re
import xml.etree.ElementTree as ET

QEMU_NS = "http://libvirt.org/schemas/domain/qemu/1.0"
VMGUARD_NS = "urn:x-vmguard:domain:1"
METADATA_KEYS = ("owner", "service", "expires", "data_class", "image")


class DomainXMLError(ValueError):
    pass


REDACTED = "<redacted>"
# Option names whose value is a literal secret: QEMU "key=value,..." options, "--opt value" / "--opt=value"
# command-line options, JSON members. A name is secret when one of its dotted components (file.password,
# passwd.hashed-password.root) is one of these words or ends with one (x-password, api_key, client-secret).
# Names of a secret *object* (password-secret, key-secret, proxy-password-secret: "<secret word>-secret";
# passwordid, keyid) are references and stay.
SECRET_KEYS = frozenset(("data", "password", "passwd", "pass", "pwd", "secret", "key", "keysecret", "apikey",
                         "passphrase", "token", "cookie", "credential", "credentials"))
# Boolean switches (e.g. -vnc ...,password=on) say that a password is required, they are not one.
_SWITCH_VALUES = frozenset(("on", "off", "yes", "no", "true", "false"))
_NAME_WORDS = re.compile(r"[-_]+")
# key=value anywhere in an argument: QEMU's comma-separated options (',,' is a literal comma inside a value),
# space-separated ones (-append, environment values) and --opt=value. The look-behind starts a name at a
# boundary (not inside another name); a value may be quoted. The value is only looked at (look-ahead): a key
# inside the value of another one is found too (value=io.systemd.credential:password=..., rbd:...:key=...).
_KEY_VALUE = re.compile(r"""(?<![\w.-])(-{0,2}\w[\w.-]*)=(?=[^,\s]|,,)""")
_VALUE = re.compile(r"""(?:"[^"]*"|'[^']*'|(?:,,|[^,\s])+)""")
# "--opt value" / "-opt value" inside one string (CEPH_ARGS="--id admin --key AQB..."): the value is only
# looked at (look-ahead), so an option that is not secret never swallows the next one.
_SPACED_OPTION = re.compile(r"""(?<![^\s"'])(-{1,2}[A-Za-z][\w.-]*)(?=\s+\S)""")
_SPACED_VALUE = re.compile(r"""\s+("[^"]*"|'[^']*'|\S+)""")
# An argument that ends with an option: its value is the next argument (<qemu:arg value='--key'/><qemu:arg .../>).
_TRAILING_OPTION = re.compile(r"""(?:^|[\s"'])(-{1,2}[A-Za-z][\w.-]*)\s*$""")
# URL userinfo (scheme://user:password@host, QEMU's iscsi://user%password@host, a token as user name): all of
# it goes, the scheme and host stay. Greedy to the last '@' before the authority ends (a raw '@' or ',' in a
# password is redacted too, at worst with more than the userinfo).
_URL_USERINFO = re.compile(r"""\b([A-Za-z][A-Za-z0-9+.-]*://)([^\s/?#"']*)@""")
SECRET_ENV = re.compile(r"PASS|SECRET|TOKEN|KEY|CRED|COOKIE|AUTH", re.I)


def _bool_attr(el, name, true="yes"):
    return el is not None and el.get(name) == true


def _disk(el):
    src = el.find("source")
    source = None
    source_kind = el.get("type")
    if src is not None:
        if source_kind == "network":
            source = "%s:%s" % (src.get("protocol", "network"), src.get("name", ""))
        elif source_kind == "volume":
            source = "%s/%s" % (src.get("pool", ""), src.get("volume", ""))
        else:
            source = src.get("file") or src.get("dev") or src.get("dir") or src.get("name")
    driver = el.find("driver")
    target = el.find("target")
    backing = []
    b = el.find("backingStore")
    while b is not None and b.find("source") is not None:
        s = b.find("source")
        backing.append(s.get("file") or s.get("dev") or s.get("name"))
        b = b.find("backingStore")
    enc = el.find("encryption")
    if enc is None and src is not None:
        enc = src.find("encryption")
    disk = dict(
        device=el.get("device", "disk"),
        type=source_kind,
        source=source,
        format=driver.get("type") if driver is not None else None,
        target=target.get("dev") if target is not None else None,
        readonly=el.find("readonly") is not None,
        shareable=el.find("shareable") is not None,
        transient=el.find("transient") is not None,
        boot=el.find("boot") is not None,  # <boot order>: a boot disk (audit/plan.boot_disk_positions)
        encryption=enc.get("format") if enc is not None else None,
        backing=backing,
    )
    # What ISO-06 compares of pooled and network disks (hypervisor_facts resolves a volume to its path).
    if source_kind == "volume":
        disk.update(pool=src.get("pool") if src is not None else None, volume=src.get("volume") if src is not None else None)
    elif source_kind == "network":
        protocol = src.get("protocol") if src is not None else None
        disk.update(protocol=protocol, name=src.get("name") if src is not None else None,
                    hosts=[_host_id(protocol, h) for h in src.findall("host")] if src is not None else [])
    return disk


# The port libvirt gives a network disk's <host> without one (or with port='0'): virStorageSourceNetworkDefaultPort.
DEFAULT_PORTS = {"nbd": 10809, "http": 80, "https": 443, "ftp": 21, "ftps": 990, "tftp": 69, "ssh": 22,
                 "iscsi": 3260, "gluster": 24007, "rbd": 6789, "sheepdog": 7000, "vxhs": 9999, "nfs": 2049}


def _host_id(protocol, h):
    """One <host> of a network disk's source: "unix:<socket>", or the server as network_host spells it."""
    if h.get("transport") == "unix":
        return "unix:%s" % (h.get("socket") or "")
    return network_host(protocol, h.get("name"), h.get("port"))


def network_host(protocol, name, port):
    """"<host>:<port>" of a network disk's server, one spelling for one server (ISO-06 compares these verbatim): the
    port libvirt uses (DEFAULT_PORTS where the XML gives none or 0, a number without leading zeros; None when the
    protocol has no default), an IP literal in its canonical form (brackets dropped, an IPv4-mapped IPv6 address as
    IPv4, IPv6 in brackets), a DNS name lower-case without its trailing dot (the same name)."""
    value = (port or "").strip()
    if value.isdigit() and int(value) > 0:
        port = int(value)
    elif not value or (value.isdigit() and int(value) == 0):
        port = DEFAULT_PORTS.get(protocol)
    # else: a port libvirt would refuse, kept as written
    return "%s:%s" % (_canonical_host(name), port)


def _canonical_host(name):
    host = (name or "").strip()
    try:
        ip = ipaddress.ip_address(u"%s" % host.strip("[]"))
    except ValueError:
        return host.lower().rstrip(".") or host
    if ip.version == 6 and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return str(ip) if ip.version == 4 else "[%s]" % ip.compressed


# Interfaces joined through a socket of QEMU's own (-netdev socket / dgram / stream): their segment is named by
# the source (and, for udp, local) address and port.
SOCKET_INTERFACES = ("mcast", "udp", "server", "client")


def _socket_source(src):
    """{source_address, source_port, local_address, local_port} of a socket interface (None where absent)."""
    local = src.find("local") if src is not None else None
    return dict(source_address=src.get("address") if src is not None else None,
                source_port=src.get("port") if src is not None else None,
                local_address=local.get("address") if local is not None else None,
                local_port=local.get("port") if local is not None else None)


def _interface(el):
    src = el.find("source")
    filt = el.find("filterref")
    link = el.find("link")
    mac = el.find("mac")
    model = el.find("model")
    iface = dict(
        type=el.get("type"),
        network=src.get("network") if src is not None else None,
        bridge=src.get("bridge") if src is not None else None,
        dev=src.get("dev") if src is not None else None,
        portgroup=src.get("portgroup") if src is not None else None,
        mac=mac.get("address").lower() if mac is not None and mac.get("address") else None,
        model=model.get("type") if model is not None else None,
        filterref=filt.get("filter") if filt is not None else None,
        link_state=link.get("state", "up") if link is not None else "up",
        hostdev_source=_hostdev_address(src) if el.get("type") == "hostdev" else None,
    )
    if iface["type"] in SOCKET_INTERFACES:  # what ISO-02 compares of a socket interface
        iface.update(_socket_source(src))
    return iface


def _hostdev_address(src):
    """'pci domain=0x0000 bus=0x03 slot=0x10 function=0x1' for <interface type='hostdev'> (SR-IOV VF)."""
    addr = src.find("address") if src is not None else None
    if addr is None:
        return None
    attrs = " ".join("%s=%s" % (k, addr.get(k)) for k in sorted(addr.keys()) if k != "type")
    return ("%s %s" % (addr.get("type") or "address", attrs)).strip()


# Character devices whose type='dev' hands a host device node (a serial line, a parallel port) to the guest.
HOST_CHARDEVS = ("serial", "parallel", "console", "channel")
TPM_DEFAULT_DEVICE = "/dev/tpm0"  # libvirt's passthrough TPM without <device path>


def host_device(el):
    """{device, type, path} of one device element that hands a host device to the guest besides <hostdev>,
    <redirdev> and SR-IOV interfaces (ISO-08; the ISO-08 fixer asks the same of lxml elements), or None:
    evdev input (<input type='passthrough'><source evdev/>, <input type='evdev'><source dev/>), a passthrough
    TPM (its <device path>, libvirt's default /dev/tpm0 without one), a serial/parallel/console/channel
    character device of type='dev' (its <source path>) and a host smartcard reader (<smartcard mode='host'>,
    path None)."""
    tag, src = el.tag, el.find("source")
    if tag == "input" and el.get("type") in ("passthrough", "evdev"):
        attr = "evdev" if el.get("type") == "passthrough" else "dev"
        return dict(device="input", type=el.get("type"), path=src.get(attr) if src is not None else None)
    if tag == "tpm":
        backend = el.find("backend")
        if backend is None or backend.get("type") != "passthrough":
            return None
        dev = backend.find("device")
        return dict(device="tpm", type="passthrough", path=(dev.get("path") if dev is not None else None) or TPM_DEFAULT_DEVICE)
    if tag in HOST_CHARDEVS and el.get("type") == "dev":
        return dict(device=tag, type="dev", path=src.get("path") if src is not None else None)
    if tag == "smartcard" and el.get("mode") == "host":
        return dict(device="smartcard", type="host", path=None)
    return None


def _host_devices(devices):
    """host_device of every device, in document order. A console of type='dev' on the path of a serial port
    of type='dev' is that port (libvirt writes the first serial port again as the console): not listed twice."""
    found = [h for h in (host_device(el) for el in devices) if h]
    ports = set(h["path"] for h in found if h["device"] == "serial")
    return [h for h in found if not (h["device"] == "console" and h["path"] in ports)]


def _graphics(el):
    listens = []
    for lst in el.findall("listen"):
        listens.append(dict(type=lst.get("type", "address"),
                            address=lst.get("address"), network=lst.get("network"),
                            socket=lst.get("socket")))
    if not listens and el.get("listen") is not None:
        listens.append(dict(type="address", address=el.get("listen"), network=None, socket=None))
    if not listens and el.get("socket") is not None:
        listens.append(dict(type="socket", address=None, network=None, socket=el.get("socket")))
    gtype = el.get("type")
    clip = el.find("clipboard")
    ftr = el.find("filetransfer")
    return dict(
        type=gtype,
        listens=listens,
        autoport=el.get("autoport") == "yes",
        port=el.get("port"),
        # What the document says. libvirt leaves passwd out of XML read without VIR_DOMAIN_XML_SECURE, so
        # hypervisor_facts replaces this with what it can know (True / False / None) from libvirt's own files.
        passwd_set=el.get("passwd") is not None,
        # SPICE: every channel served over TLS only (_spice_tls_only); tls_port, default_mode and plain_channels
        # are what it is decided from (LEAK-02 names them).
        tls=gtype == "spice" and _spice_tls_only(el),
        tls_port=el.get("tlsPort") if gtype == "spice" else None,
        default_mode=(el.get("defaultMode") or "any") if gtype == "spice" else None,
        plain_channels=sorted(c.get("name") or "?" for c in el.findall("channel") if c.get("mode") == "insecure")
        if gtype == "spice" else [],
        # SPICE defaults: clipboard sharing and file transfer are on unless disabled.
        clipboard=(clip.get("copypaste", "yes") != "no") if clip is not None else (gtype == "spice"),
        filetransfer=(ftr.get("enable", "yes") != "no") if ftr is not None else (gtype == "spice"),
    )


def _port_number(value):
    """A port attribute as a number (None when absent or not a number)."""
    value = (value or "").strip()
    return int(value) if value.lstrip("-").isdigit() else None


def _spice_tls_only(el):
    """Whether a SPICE console serves every channel over TLS only, so a client cannot reach it in plain text:
    defaultMode='secure' with no <channel mode='insecure'>, or a TLS port with no plain one. A tlsPort alone does
    not do it: with defaultMode 'any' (libvirt's default) every channel is served on ``port`` too, in plain text.
    A plain port is one above 0 (libvirt gives QEMU none at 0 or -1), any port that is not a number, or autoport
    (libvirt then allocates one unless defaultMode is secure)."""
    if el.get("defaultMode") == "secure" and not any(c.get("mode") == "insecure" for c in el.findall("channel")):
        return True
    port, tls_port = el.get("port"), _port_number(el.get("tlsPort"))
    plain = el.get("autoport") == "yes" or (port is not None and (_port_number(port) is None or _port_number(port) > 0))
    return tls_port is not None and tls_port > 0 and not plain


def _channel(el):
    """{type, target, clipboard}: clipboard is whether a qemu-vdagent channel shares the clipboard of QEMU's own
    display (VNC, GTK, D-Bus) with the guest - only with <source><clipboard copypaste='yes'/>, QEMU's default is
    off - and None for other channels (a SPICE agent's clipboard is the SPICE console's <clipboard>)."""
    target = el.find("target")
    clipboard = None
    if el.get("type") == "qemu-vdagent":
        clip = el.find("source/clipboard")
        clipboard = clip is not None and clip.get("copypaste") == "yes"
    return dict(type=el.get("type"), target=target.get("name") if target is not None else None, clipboard=clipboard)


def _text(el):
    if el is None or el.text is None:
        return None
    return el.text.strip() or None


def _secret_component(component):
    if component in SECRET_KEYS:
        return True
    words = [w for w in _NAME_WORDS.split(component) if w]
    if not words or words[-1] not in SECRET_KEYS:
        return False
    # "<secret word>-secret" names the secret object holding it (password-secret=sec0): a reference.
    return not (words[-1] == "secret" and len(words) > 1 and words[-2] in SECRET_KEYS)


def _secret_name(name):
    """True when option / member / key ``name`` (dashes, dotted prefixes allowed) carries a literal secret."""
    return any(_secret_component(c) for c in name.strip().lstrip("-").lower().split("."))


def _switch(value):
    return value.strip().strip("\"'").lower() in _SWITCH_VALUES


def _redact_json(obj):
    """Redact secret-bearing members of a JSON option (-object {...}, -blockdev {...}) and secrets inside its
    strings (URLs, key=value); returns (obj, n)."""
    n = 0
    if isinstance(obj, dict):
        out = {}
        for k, v in obj.items():
            if _secret_name(k) and not isinstance(v, (dict, bool)) and v is not None:
                out[k] = REDACTED
                n += 1
            else:
                out[k], m = _redact_json(v)
                n += m
        return out, n
    if isinstance(obj, list):
        out = []
        for v in obj:
            v, m = _redact_json(v)
            out.append(v)
            n += m
        return out, n
    if isinstance(obj, str):
        return _redact_text(obj)
    return obj, 0


def _redact_spaced(text, count):
    """The value after a secret-named "--opt value" inside ``text``."""
    out, pos = [], 0
    for m in _SPACED_OPTION.finditer(text):
        if m.start() < pos or not _secret_name(m.group(1)):
            continue
        value = _SPACED_VALUE.match(text, m.end())
        if _switch(value.group(1)):
            continue
        out.append(text[pos:value.start(1)])
        out.append(REDACTED)
        pos = value.end(1)
        count[0] += 1
    out.append(text[pos:])
    return "".join(out)


def _redact_userinfo(text, count):
    def sub(m):
        count[0] += 1
        return "%s%s@" % (m.group(1), REDACTED)
    return _URL_USERINFO.sub(sub, text)


def _redact_key_values(text, count):
    """Secret-named key=value (also --opt=value, x-password=..., file.password=...), inside the values of
    other keys too (value=io.systemd.credential:password=..., id=admin:key=... of rbd: filenames)."""
    out, pos = [], 0
    for m in _KEY_VALUE.finditer(text):
        if m.start() < pos or not _secret_name(m.group(1)):
            continue
        value = _VALUE.match(text, m.end())
        if _switch(value.group(0)):
            continue
        out.append(text[pos:m.end()])
        out.append(REDACTED)
        pos = value.end()
        count[0] += 1
    out.append(text[pos:])
    return "".join(out)


def _redact_text(text):
    """Secrets inside one string: "--opt value", URL userinfo, key=value. Returns (text, count)."""
    count = [0]
    text = _redact_spaced(text, count)
    text = _redact_userinfo(text, count)
    text = _redact_key_values(text, count)
    return text, count[0]


def redact_arg(arg):
    """One QEMU command-line argument (or environment value) with its secrets redacted: (arg, count).

    Only secret values go: option names, the scheme and host of a URL, references to secret objects stay.
    A secret-named option whose value is the NEXT argument is handled by redact_args.
    """
    if arg is None:
        return None, 0
    if arg.lstrip().startswith("{"):
        try:
            obj = json.loads(arg)
        except ValueError:
            # Not parseable: keep nothing that could be a secret.
            if any(k in arg.lower() for k in SECRET_KEYS) or _redact_text(arg)[1]:
                return REDACTED, 1
            return arg, 0
        obj, n = _redact_json(obj)
        return (json.dumps(obj, sort_keys=True, separators=(",", ":")) if n else arg), n
    return _redact_text(arg)


def redact_args(args):
    """A QEMU argv (list of strings) redacted: each argument as redact_arg, and the argument after one that
    ends with a secret-named option (<qemu:arg value='--password'/><qemu:arg value='...'/>) as a whole.
    Returns (args, count); the list keeps its length."""
    out, total, secret_next = [], 0, False
    for arg in args:
        if secret_next and arg is not None and not _switch(arg):
            value, n = REDACTED, 1
        else:
            value, n = redact_arg(arg)
        out.append(value)
        total += n
        last = _TRAILING_OPTION.search(arg or "")
        secret_next = bool(last and _secret_name(last.group(1)))
    return out, total


def qemu_passthrough(root):
    """<qemu:commandline> args and env with secret values redacted: (args, env, redactions).

    ISO-09 reads both lists: every argument and variable stays (with its option and variable names), only
    secret values are replaced by REDACTED. A variable whose name says secret loses its whole value; every
    other value is redacted as an argument (CEPH_ARGS="--id admin --key ...", http_proxy=http://u:p@host).
    """
    args, env, total = [], [], 0
    for cl in root.findall("{%s}commandline" % QEMU_NS):
        values, n = redact_args([a.get("value") for a in cl.findall("{%s}arg" % QEMU_NS)])
        args.extend(values)
        total += n
        for e in cl.findall("{%s}env" % QEMU_NS):
            name, value = e.get("name"), e.get("value")
            if value and name and SECRET_ENV.search(name):
                value, n = REDACTED, 1
            else:
                value, n = redact_arg(value)
            total += n
            env.append(dict(name=name, value=value))
    return args, env, total


def qemu_overrides(root):
    """<qemu:override> device properties and <qemu:capabilities> changes: (overrides, capabilities, redactions).

    ISO-09 reads both: an override sets properties of a device QEMU builds past libvirt's own checks, a capability
    change makes libvirt use (or avoid) QEMU features against what it probed (<qemu:del capability='seccomp-sandbox'/>
    drops the sandbox). Overrides: one {alias, property, type, value} per <qemu:property> (property None for a
    device with none), a secret-named property's value redacted, every other value as an argument; capabilities:
    one {action: add or del, capability} per element.
    """
    overrides, caps, total = [], [], 0
    for ov in root.findall("{%s}override" % QEMU_NS):
        for dev in ov.findall("{%s}device" % QEMU_NS):
            props = dev.findall("{%s}frontend/{%s}property" % (QEMU_NS, QEMU_NS))
            if not props:
                overrides.append(dict(alias=dev.get("alias"), property=None, type=None, value=None))
            for prop in props:
                name, value = prop.get("name"), prop.get("value")
                if value is not None and name and _secret_name(name):
                    value, n = REDACTED, 1
                else:
                    value, n = redact_arg(value)
                total += n
                overrides.append(dict(alias=dev.get("alias"), property=name, type=prop.get("type"), value=value))
    for cl in root.findall("{%s}capabilities" % QEMU_NS):
        for el in cl:
            if el.tag in ("{%s}add" % QEMU_NS, "{%s}del" % QEMU_NS):
                caps.append(dict(action=el.tag.rsplit("}", 1)[1], capability=el.get("capability")))
    return overrides, caps, total


def identity(xml_text):
    """(name, uuid or None) of a domain definition, nothing else (a user's session definition: VIS-01); DomainXMLError
    when it is not one."""
    root = _domain_root(xml_text)
    name = (root.findtext("name") or "").strip()
    if not name:
        raise DomainXMLError("a domain definition without a name")
    return name, (root.findtext("uuid") or "").strip() or None


def _domain_root(xml_text):
    try:
        root = ET.fromstring(xml_text)
    except ET.ParseError as e:
        raise DomainXMLError("malformed domain XML: %s" % e)
    if root.tag != "domain":
        raise DomainXMLError("not a domain XML document (root element <%s>)" % root.tag)
    return root


def graphics_passwords(xml_text):
    """[(type, passwd attribute present)] for each <graphics> of a domain or domstatus document.

    Used on libvirt's own config and status files (which carry the passwords): only the booleans are
    kept, the values never leave this function.
    """
    try:
        root = ET.fromstring(xml_text)
    except ET.ParseError as e:
        raise DomainXMLError("malformed domain XML: %s" % e)
    if root.tag == "domstatus":
        root = root.find("domain")
    if root is None or root.tag != "domain":
        raise DomainXMLError("not a domain XML document")
    return [(g.get("type"), g.get("passwd") is not None) for g in root.findall("./devices/graphics")]


# Memory devices backed by a host file (ISO-11): with shared access, every domain mapping the same file shares
# that memory with the others, as an ivshmem <shmem> device does.
FILE_MEMORY_MODELS = ("nvdimm", "virtio-pmem")


def _memory_files(root, devices):
    """[{model, path, access}] of the nvdimm and virtio-pmem devices backed by a host file; ``access`` is the
    device's, else the domain's <memoryBacking><access mode>, else libvirt's default (private)."""
    backing = root.find("memoryBacking/access")
    default = (backing.get("mode") if backing is not None else None) or "private"
    out = []
    for m in devices.findall("memory"):
        path = _text(m.find("source/path"))
        if m.get("model") in FILE_MEMORY_MODELS and path:
            out.append(dict(model=m.get("model"), path=path, access=m.get("access") or default))
    return out


def parse_domain(xml_text):
    """Parse one domain XML document into the evidence dict the domain rules read."""
    root = _domain_root(xml_text)
    devices = root.find("devices")
    if devices is None:
        devices = ET.Element("devices")
    mem = root.find("memory")
    os_el = root.find("os")
    smbios = os_el.find("smbios") if os_el is not None else None

    metadata = dict((k, None) for k in METADATA_KEYS)
    other_metadata = []
    md = root.find("metadata")
    if md is not None:
        for child in md:
            if child.tag == "{%s}domain" % VMGUARD_NS:
                for k in METADATA_KEYS:
                    v = child.find("{%s}%s" % (VMGUARD_NS, k))
                    if v is not None and (v.text or "").strip():
                        metadata[k] = v.text.strip()
            else:
                other_metadata.append(child.tag)

    cmdline, env, redacted = qemu_passthrough(root)
    overrides, capabilities, n = qemu_overrides(root)
    redacted += n
    # baselabel: a dynamic label's template - libvirt takes the QEMU process label's type (SELinux) from it.
    seclabels = [dict(type=s.get("type"), model=s.get("model"), relabel=s.get("relabel"),
                      label=_text(s.find("label")), imagelabel=_text(s.find("imagelabel")),
                      baselabel=_text(s.find("baselabel")))
                 for s in root.findall("seclabel")]

    uuid_el = root.find("uuid")
    name_el = root.find("name")
    return dict(
        name=name_el.text if name_el is not None else None,
        uuid=(uuid_el.text or "").strip().lower() if uuid_el is not None else None,
        type=root.get("type"),
        genid=root.find("genid") is not None,
        genid_value=(root.find("genid").text or None) if root.find("genid") is not None else None,
        memory_dump_core=mem.get("dumpCore") if mem is not None else None,
        smbios_mode=smbios.get("mode") if smbios is not None else None,
        disks=[_disk(d) for d in devices.findall("disk")],
        interfaces=[_interface(i) for i in devices.findall("interface")],
        graphics=[_graphics(g) for g in devices.findall("graphics")],
        rng=[r.get("model") for r in devices.findall("rng")],
        filesystems=[dict(type=f.get("type", "mount"),
                          source=(f.find("source").get("dir") or f.find("source").get("name")
                                  or f.find("source").get("file")) if f.find("source") is not None else None,
                          target=f.find("target").get("dir") if f.find("target") is not None else None,
                          readonly=f.find("readonly") is not None,
                          driver=f.find("driver").get("type") if f.find("driver") is not None else None)
                     for f in devices.findall("filesystem")],
        hostdevs=[dict(mode=h.get("mode"), type=h.get("type"),
                       source=ET.tostring(h.find("source"), encoding="unicode").strip()
                       if h.find("source") is not None else None)
                  for h in devices.findall("hostdev")],
        redirdevs=[dict(bus=r.get("bus"), type=r.get("type")) for r in devices.findall("redirdev")],
        host_devices=_host_devices(devices),
        shmem=[s.get("name") for s in devices.findall("shmem")],
        vsock=len(devices.findall("vsock")) > 0,
        memory_files=_memory_files(root, devices),
        channels=[_channel(c) for c in devices.findall("channel")],
        seclabels=seclabels,
        qemu_commandline=cmdline,
        qemu_env=env,
        qemu_override=overrides,
        qemu_capabilities=capabilities,
        redacted=redacted,
        metadata=metadata,
        other_metadata=other_metadata,
    )


def parse_snapshot(xml_text):
    """Parse a snapshot XML document: name, creation time, state and memory kind."""
    try:
        root = ET.fromstring(xml_text)
    except ET.ParseError as e:
        raise DomainXMLError("malformed snapshot XML: %s" % e)
    ct = root.find("creationTime")
    mem = root.find("memory")
    state = root.find("state")
    state = state.text if state is not None else None
    memory = mem.get("snapshot") if mem is not None else None
    if memory is None:
        # Older XML: an internal snapshot of a running or paused domain carries its memory.
        memory = "internal" if state in ("running", "paused", "blocked") else "no"
    return dict(
        name=root.findtext("name"),
        creation_time=int(ct.text) if ct is not None and (ct.text or "").strip().isdigit() else None,
        state=state,
        memory=memory,
        parent=root.findtext("parent/name"),
        current=None,  # the XML does not say; hypervisor_facts asks libvirt (snapshot.isCurrent())
    )
