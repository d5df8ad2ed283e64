"""The domain XML fixers (remediation/domfix.py) on libvirt's own test-suite domains, checked by the local QEMU driver.

For every corpus domain that `qemu:///system` accepts (defined under a unique name vmg-cx-NNNN with a fresh UUID,
undefined right after), every fixer is applied with parameters that let it act (no management network, empty
allow-lists, a service address and metadata values):

- the remediated XML is accepted by defineXML too, and what libvirt keeps passes the rules the fixers fix
  (the real checks, on the evidence hypervisor_facts would read);
- a second remediation changes nothing (no change lines);
- everything the policy does not own is preserved: the canonical XML (lxml C14N) of the document with the
  owned elements and attributes removed is the same before and after.

Counts are printed (run with -s). Needs a running libvirtd: skipped otherwise. vmg-cx-* domains never stay
behind (each is undefined at once, and the fixture sweeps the prefix before and after).
"""

import collections
import os
import re
import sys
import uuid as uuidlib

import pytest

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
sys.path.insert(0, os.path.join(ROOT, "tests", "corpus"))
sys.path.insert(0, os.path.join(ROOT, ".cache", "collections"))

libvirt = pytest.importorskip("libvirt", reason="needs libvirt-python (make setup installs it)")
etree = pytest.importorskip("lxml.etree", reason="needs lxml (make setup installs it)")
import corpus  # noqa: E402

from ansible_collections.vmguard.hardening.plugins.module_utils.audit import engine, policy  # noqa: E402
from ansible_collections.vmguard.hardening.plugins.module_utils.evidence import domxml  # noqa: E402
from ansible_collections.vmguard.hardening.plugins.module_utils.remediation import domfix  # noqa: E402
from ansible_collections.vmguard.hardening.plugins.module_utils.remediation.domfix import NO_TAP  # noqa: E402

URI = "qemu:///system"
PREFIX = "vmg-cx-"
# Parameters under which every fixer acts on whatever the corpus has.
PERMISSIVE = {
    "DIV-09": {}, "RB-01": {}, "RB-12": {},
    "ISO-03": {"ip": "192.0.2.10"}, "ISO-04": {}, "ISO-07": {}, "ISO-08": {}, "ISO-11": {},
    "LEAK-02": {}, "LEAK-03": {}, "LEAK-04": {}, "LEAK-07": {},
    "VIS-05": {"owner": "corpus", "service": "web", "expires": "2099-12-31"},
    # Filled in per document (permissive()): every network/bridge segment and every non-boot disk it has.
    "ISO-02": {"network": "vmg-cx-svc"}, "ISO-06": {},
}


def permissive(xml):
    """PERMISSIVE with ISO-02 moving every network/bridge interface of ``xml`` and ISO-06 detaching every disk
    but its boot disks (what the planner asks when everything is shared with another service)."""
    root = etree.fromstring(xml.encode("utf-8"))
    move = sorted(set("%s:%s" % (i.get("type"), i.find("source").get(i.get("type"))) for i in root.findall("devices/interface")
                      if i.get("type") in ("network", "bridge") and i.find("source") is not None
                      and i.find("source").get(i.get("type"))))
    boot = domfix.boot_disks(root)
    detach = sorted(set(domfix.disk_source(d) for d in root.findall("devices/disk")
                        if (d.get("device") or "disk") in ("disk", "lun") and domfix.disk_source(d))
                    - set(domfix.disk_source(d) for d in boot))
    out = dict(PERMISSIVE)
    out["ISO-02"] = {"network": "vmg-cx-svc", "move": move}
    out["ISO-06"] = {"detach": detach}
    return out


NS = domxml.VMGUARD_NS
CONSOLES = ("vnc", "spice", "rdp")


def sweep(conn):
    """Undefine every vmg-cx-* domain (never started, but stopped first should one run)."""
    for dom in conn.listAllDomains():
        if dom.name().startswith(PREFIX):
            if dom.isActive():
                dom.destroy()
            if dom.isPersistent():
                dom.undefineFlags(libvirt.VIR_DOMAIN_UNDEFINE_SNAPSHOTS_METADATA | libvirt.VIR_DOMAIN_UNDEFINE_NVRAM
                                  | libvirt.VIR_DOMAIN_UNDEFINE_CHECKPOINTS_METADATA)


@pytest.fixture(scope="module")
def conn():
    libvirt.registerErrorHandler(lambda ctx, err: None, None)
    try:
        c = libvirt.open(URI)
        c.getLibVersion()
    except libvirt.libvirtError:
        pytest.skip("needs a running libvirtd (qemu:///system)")
    sweep(c)
    try:
        yield c
    finally:
        sweep(c)
        c.close()


def define_once(conn, xml):
    """(libvirt's inactive XML of ``xml`` once defined, None) or (None, libvirt's reason). Undefined at once."""
    try:
        dom = conn.defineXML(xml)
    except libvirt.libvirtError as e:
        return None, e.get_error_message()
    try:
        return dom.XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE), None
    finally:
        dom.undefineFlags(libvirt.VIR_DOMAIN_UNDEFINE_NVRAM)


# --- what the fixers own -----------------------------------------------------------------------------

def _drop(el):
    el.getparent().remove(el)


def strip_owned(xml):
    """The document without what PERMISSIVE's fixers own; whitespace-only text dropped. Returns C14N bytes."""
    root = etree.fromstring(xml.encode("utf-8"))
    owned = [g for g in root.findall("genid") if not (g.text or "").strip()]
    owned += [s for s in root.findall("seclabel") if s.get("type") == "none" or s.get("model") == "none"]
    owned += [s for s in root.findall("os/smbios") if s.get("mode") == "host"]
    owned += root.findall("metadata/{%s}domain" % NS)
    dev = "devices/"
    owned += [r for r in root.findall(dev + "rng") if r.get("model") == "virtio"]
    owned += root.findall(dev + "disk/transient")
    for tag in ("filesystem", "hostdev", "redirdev", "shmem", "vsock"):
        owned += root.findall(dev + tag)
    devices = root.find("devices")
    # ISO-08: evdev input, passthrough TPM, type='dev' character devices, host smartcard.
    owned += [el for el in (devices if devices is not None else []) if domxml.host_device(el)]
    for i in root.findall(dev + "interface"):
        if i.get("type") == "hostdev":
            owned.append(i)
        elif i.get("type") in ("network", "bridge"):
            owned += i.findall("filterref")
            # ISO-02: the interface's type, source and old switch port settings.
            i.attrib.pop("type", None)
            owned += i.findall("source") + i.findall("virtualport") + i.findall("vlan")
        elif i.get("type") == "ethernet":  # ISO-03 filters its tap too
            owned += i.findall("filterref")
    # ISO-06: the disks it may detach (all but the boot disks; the cdroms and floppies stay).
    boot = domfix.boot_disks(root)
    owned += [d for d in root.findall(dev + "disk") if (d.get("device") or "disk") in ("disk", "lun") and d not in boot
              and domfix.disk_source(d)]
    for g in root.findall(dev + "graphics"):
        if g.get("type") in CONSOLES:
            g.attrib.pop("listen", None)
            owned += [lst for lst in g.findall("listen") if (lst.get("type") or "address") in ("address", "network")]
        if g.get("type") == "spice":
            owned += g.findall("clipboard") + g.findall("filetransfer")
    for c in root.findall(dev + "channel"):  # LEAK-03: a qemu-vdagent channel's clipboard switch
        if c.get("type") == "qemu-vdagent":
            for clip in c.findall("source/clipboard"):
                clip.attrib.pop("copypaste", None)
    for m in root.findall("memory"):
        m.attrib.pop("dumpCore", None)
        if m.get("unit") == "KiB" and m.text == str(domfix._numa_total_kib(root)):  # pylint: disable=protected-access
            owned.append(m)  # what LEAK-04 writes where the domain had no <memory>: its NUMA cells' total
    for el in owned:
        _drop(el)
    for container in ("metadata", "devices"):  # created by VIS-05 / DIV-09 where the domain had none
        el = root.find(container)
        if el is not None and len(el) == 0 and not (el.text or "").strip():
            _drop(el)
    for el in root.iter():
        if el.text is not None and not el.text.strip():
            el.text = None
        if el.tail is not None and not el.tail.strip():
            el.tail = None
    return etree.tostring(root, method="c14n")


# --- what libvirt keeps must pass the rules ----------------------------------------------------------

FIXED_RULES = sorted(r for r in PERMISSIVE if r not in ("VIS-05",)) + ["VIS-05"]


def evaluate(defined, params=None):
    """{name: {rule: (status, message)}} of the fixed rules on libvirt's definitions ({name: XML})."""
    domains = []
    for name, xml in sorted(defined.items()):
        d = domxml.parse_domain(xml)
        d.update(state="shutoff", persistent=True, autostart=False, snapshots=[], ledger=None, error=None, pid=None,
                 definition="persistent", inactive=None)
        domains.append(d)
    # The networks the domains name, as hypervisor_facts would report them had they been defined: each isolated, on a
    # bridge of its own (ISO-03 then judges a tap device; the corpus names networks this host does not define).
    networks = dict((i["network"], {"bridge": "virbr-%s" % i["network"], "forward": None, "devs": [], "active": True})
                    for d in domains for i in d["interfaces"] if i.get("type") == "network" and i.get("network"))
    ev = {"hypervisors": {"local": {"error": None, "uri": URI, "host": {"qemu_conf": {}, "security_models": ["apparmor"]},
                                    "domains": domains, "networks": networks}}, "guests": {}}
    pol = policy.load_policy({"params": params or {}})
    out = collections.defaultdict(dict)
    for f in engine.evaluate(pol, ev, only=set(FIXED_RULES)):
        if f["subject"]["kind"] == "domain":
            out[f["subject"]["id"].split("/", 1)[1]][f["rule"]] = (f["status"], f["message"])
    return out


def per_change(changes):
    return [c.split(":", 1)[0] for c in changes]


def confining(conn):
    """Whether the host's libvirt confines guests with AppArmor or SELinux (its capabilities' secmodels)."""
    caps = etree.fromstring(conn.getCapabilities().encode("utf-8"))
    return any(m.text in ("apparmor", "selinux") for m in caps.findall("host/secmodel/model"))


def limitation(rid, message, ours, lsm, pci_full):
    """Why a fixed rule may still fail on libvirt's definition, or None: what the fixers leave on purpose
    (``ours``: the remediated XML as the fixers wrote it)."""
    xml = ours.replace('"', "'")
    if rid == "ISO-03" and any("<interface type='%s'" % t in xml for t in NO_TAP):
        return "interface without a host tap device: macvtap, socket, vhost-user, vDPA (nwfilter does not apply)"
    if rid == "ISO-02" and "set up outside libvirt's evidence" in message:
        return "an ethernet, vhost-user or vDPA interface's segment is set up outside libvirt (left to a person)"
    if rid == "ISO-04" and "type='none'" not in message and ("unconfined" in message or "root" in message):
        return "an unconfined or root label (left to a person)"
    if rid == "ISO-04" and not lsm and not [s for s in etree.fromstring(ours.encode("utf-8")).findall("seclabel")
                                            if s.get("type") == "none" or s.get("model") == "none"]:
        # What the planner knows: without AppArmor or SELinux, libvirt writes <seclabel type='none' model='none'/>
        # itself (for a dynamic label, say), so ISO-04 is not enforced on such a host.
        return "no AppArmor or SELinux on this host: libvirt labels the domain type='none' itself"
    if rid == "ISO-06" and "shared within service" in message and "other services" not in message:
        # The corpus domains are one fleet of service web here: their boot disks (/dev/HostVG/QEMUGuest1...) are
        # shared within that service, which ISO-06's fixer leaves to a person (and never detaches a boot disk).
        return "boot disk shared within one service (left to a person)"
    if rid == "DIV-09" and pci_full:
        return "no free PCI slot for the virtio-rng"
    if rid == "ISO-11" and message.startswith("inter-VM channel(s): ") and all(
            part.startswith(("nvdimm ", "virtio-pmem ")) and " shared with " in part
            for part in message[len("inter-VM channel(s): "):].split(", ")):
        # Corpus domains map one nvdimm file (/tmp/nvdimm) with shared access: removing guest memory is a person's
        # choice (the planner says not enforced); the fixer's own channels (shmem, vsock) are gone.
        return "memory backing file shared with another domain (left to a person)"
    return None


def documents(paths):
    """(domain name, path, XML) for every corpus domain; and, since libvirt's corpus has no <smbios mode='host'/>
    (LEAK-07), a variant of each domain with <smbios mode='sysinfo'/> that asks for the host's instead."""
    for i, path in enumerate(paths):
        with open(path, encoding="utf-8", errors="replace") as f:
            raw = f.read()
        if "<domain" not in raw:
            continue
        yield "%s%04d" % (PREFIX, i), path, raw
        variant = re.sub(r"<smbios mode=(['\"])sysinfo\1", "<smbios mode='host'", raw)
        if variant != raw:
            yield "%s%04d-host-smbios" % (PREFIX, i), path, variant


def test_every_fixer_on_the_corpus_is_accepted_idempotent_and_preserving(conn):
    assert sorted(PERMISSIVE) == sorted(domfix.FIXERS), "every fixer is exercised on the corpus"
    paths = corpus.find_domains()
    tried, accepted, remediated, ours, lsm = 0, {}, {}, {}, confining(conn)
    per_fixer, refused, not_idempotent, changed_other, errors, pci_full = collections.Counter(), {}, {}, {}, {}, {}
    for name, path, raw in documents(paths):
        tried += 1
        original = corpus.with_identity(raw, name, str(uuidlib.uuid4()))
        kept, _why = define_once(conn, original)
        if kept is None:
            continue  # the local QEMU driver does not take it (another architecture, a missing binary...)
        accepted[name] = original
        fixes = permissive(original)
        try:
            new, changes = domfix.apply(original, fixes, etree)
        except (ValueError, etree.LxmlError) as e:
            errors[name] = "%s: %s" % (os.path.basename(path), e)
            continue
        if new is None:
            continue
        per_fixer.update(c.split(":", 1)[0] for c in changes)
        defined, why = define_once(conn, new)
        if defined is None and "DIV-09" in per_change(changes) and "PCI" in why:
            # Adding the virtio-rng needs a PCI slot; libvirt refuses where the domain's buses are full (the
            # module then reports the domain as failed, nothing lost). Every other fix must still be accepted.
            pci_full[name] = "%s: %s" % (os.path.basename(path), why)
            new, changes = domfix.apply(original, dict((r, p) for r, p in fixes.items() if r != "DIV-09"), etree)
            defined, why = define_once(conn, new)
        if defined is None:
            refused[name] = "%s: %s (after %s)" % (os.path.basename(path), why, "; ".join(changes))
            continue
        remediated[name], ours[name] = defined, new
        used = fixes if name not in pci_full else dict((r, p) for r, p in fixes.items() if r != "DIV-09")
        again = domfix.apply(new, used, etree)
        if again != (None, []):
            not_idempotent[name] = "%s: %s" % (os.path.basename(path), again[1])
        # What libvirt stored (reformatted, defaults filled in) needs nothing more either: the next run changes nothing.
        relapse = [c for c in domfix.apply(defined, used, etree)[1] if not (c.startswith("ISO-04: ") and not lsm)]
        if relapse:
            not_idempotent[name + " (libvirt's definition)"] = "%s: %s" % (os.path.basename(path), relapse)
        if strip_owned(original) != strip_owned(new):
            changed_other[name] = os.path.basename(path)
    verdicts = evaluate(remediated)
    still, limited = {}, collections.Counter()
    for name, rules in verdicts.items():
        for rid, (status, message) in rules.items():
            if status in ("pass", "not_applicable"):
                continue
            why = limitation(rid, message, ours[name], lsm, name in pci_full)
            if why:
                limited["%s: %s" % (rid, why)] += 1
            else:
                still["%s %s" % (name, rid)] = "%s: %s" % (status, message)
    print("\ncorpus fixers: %d domain XMLs tried, %d accepted by %s, %d remediated (all accepted again: %s), "
          "%d preserved everything else, %d idempotent" % (
              tried, len(accepted), URI, len(remediated) + len(refused), not refused, len(remediated) - len(changed_other),
              len(remediated) - len(not_idempotent)))
    print("changed per fixer: %s" % ", ".join("%s %d" % (r, per_fixer[r]) for r in sorted(per_fixer)))
    print("DIV-09 refused by libvirt (no free PCI slot): %s" % (", ".join(sorted(pci_full.values())) or "none"))
    print("left on purpose: %s" % (", ".join("%s (%d)" % kv for kv in sorted(limited.items())) or "nothing"))
    assert len(accepted) > 500, "the local QEMU driver took only %d corpus domains" % len(accepted)
    assert not errors, errors
    assert not refused, refused
    assert len(pci_full) <= 2, pci_full
    assert not not_idempotent, not_idempotent
    assert not changed_other, changed_other
    assert not still, still
    assert len(verdicts) == len(remediated)
    # Every fixer found something to fix in libvirt's own corpus (otherwise this proves nothing about it).
    assert sorted(per_fixer) == sorted(PERMISSIVE), sorted(set(PERMISSIVE) - set(per_fixer))
    assert not [d.name() for d in conn.listAllDomains() if d.name().startswith(PREFIX)]


def test_preservation_check_sees_a_change_outside_what_the_fixers_own():
    """strip_owned removes what the fixers own and nothing else: a foreign change still shows."""
    xml = ("<domain type='kvm'><name>x</name><metadata><a:x xmlns:a='urn:a'>1</a:x></metadata>"
           "<memory dumpCore='on'>1</memory><devices><graphics type='vnc' listen='0.0.0.0' keymap='de'/>"
           "<interface type='direct'><source dev='eth0'/><filterref filter='x'/></interface></devices></domain>")
    new, _changes = domfix.apply(xml, permissive(xml), etree)
    assert strip_owned(new) == strip_owned(xml)
    for other in (xml.replace("keymap='de'", "keymap='fr'"), xml.replace("<a:x xmlns:a='urn:a'>1", "<a:x xmlns:a='urn:a'>2"),
                  xml.replace("<filterref filter='x'/>", ""), xml.replace("<source dev='eth0'/>", "<source dev='eth1'/>")):
        assert strip_owned(other) != strip_owned(xml)


# --- the module itself on qemu:///system, twice ------------------------------------------------------

LEAKY = """<domain type='qemu'>
  <name>vmg-cx-module</name>
  <metadata><x:keep xmlns:x="urn:example:keep">yes</x:keep></metadata>
  <memory unit='MiB' dumpCore='on'>64</memory>
  <os><type arch='x86_64'>hvm</type><smbios mode='host'/></os>
  <seclabel type='none'/>
  <devices>
    <interface type='network'><mac address='52:54:00:00:cc:01'/><source network='vmg-cx-svc'/><model type='virtio'/></interface>
    <interface type='network'><mac address='52:54:00:00:cc:02'/><source network='vmg-cx-mgmt'/><model type='virtio'/></interface>
    <filesystem type='mount' accessmode='mapped'><source dir='/srv'/><target dir='srv'/></filesystem>
    <graphics type='vnc' port='-1' autoport='yes' listen='0.0.0.0'><listen type='address' address='0.0.0.0'/></graphics>
    <graphics type='spice' autoport='yes'><listen type='network' network='vmg-cx-svc'/></graphics>
  </devices>
</domain>"""
MODULE_FIXES = {"ISO-03": {"management_networks": ["vmg-cx-mgmt"], "ip": "192.0.2.10"}, "ISO-07": {"allowed_filesystems": []},
                "LEAK-02": {}, "LEAK-03": {}, "LEAK-04": {}, "LEAK-07": {},
                "VIS-05": {"owner": "team-web", "service": "web", "expires": "2099-12-31"}}


def run_module(args):
    import json
    import subprocess
    env = dict(os.environ, ANSIBLE_LOAD_CALLBACK_PLUGINS="1", ANSIBLE_STDOUT_CALLBACK="ansible.posix.json",
               PATH=os.path.dirname(sys.executable) + os.pathsep + os.environ.get("PATH", ""))
    p = subprocess.run(["ansible", "localhost", "-m", "vmguard.hardening.domain_policy", "-a", json.dumps(args)],
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, universal_newlines=True, env=env, check=False, cwd=ROOT)
    body = p.stdout[p.stdout.index("\n{") + 1:] if not p.stdout.startswith("{") else p.stdout
    return json.JSONDecoder().raw_decode(body)[0]["plays"][0]["tasks"][0]["hosts"]["localhost"]


def test_domain_policy_module_on_qemu_system_fixes_once_and_then_changes_nothing(conn, tmp_path):
    dom = conn.defineXML(LEAKY)
    try:
        args = {"uri": URI, "backup_dir": str(tmp_path / "backup"), "domain_fixes": {"vmg-cx-module": MODULE_FIXES}}
        first = run_module(args)
        assert not first.get("failed") and first["changed"] is True, first
        entry = first["domains"]["vmg-cx-module"]
        assert sorted(c.split(":")[0] for c in entry["changes"]) == sorted(MODULE_FIXES)
        assert entry["restart_pending"] is False and os.stat(entry["backup"]).st_mode & 0o777 == 0o600
        stored = conn.lookupByName("vmg-cx-module").XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE)
        verdicts = evaluate({"vmg-cx-module": stored}, {"isolation": {"management_networks": ["vmg-cx-mgmt"]}})["vmg-cx-module"]
        assert all(verdicts[r][0] in ("pass", "not_applicable") for r in MODULE_FIXES), verdicts
        assert "urn:example:keep" in stored and "vmg-cx-mgmt" in stored
        second = run_module(args)
        assert not second.get("failed") and second["changed"] is False and second["domains"] == {}, second
    finally:
        dom = conn.lookupByName("vmg-cx-module")
        dom.undefineFlags(libvirt.VIR_DOMAIN_UNDEFINE_NVRAM)
