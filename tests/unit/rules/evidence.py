"""Evidence builders for rule tests: realistic defaults (a clean, compliant subject) that each
test overrides with the one thing it is about. Domains are built from real libvirt XML through
the same parser the hypervisor_facts module uses."""

import copy
import time

from ansible_collections.vmguard.hardening.plugins.module_utils.audit import engine, policy
from ansible_collections.vmguard.hardening.plugins.module_utils.evidence import domxml

NOW = 1795000000.0  # 2026-11-18T...Z, fixed so ages are exact
HV = "hv1"

CLEAN_DOMAIN = """<domain type='kvm' xmlns:qemu='http://libvirt.org/schemas/domain/qemu/1.0'>
  <name>{name}</name>
  <uuid>{uuid}</uuid>
  <metadata>
    <vmguard:domain xmlns:vmguard="urn:x-vmguard:domain:1">
      <vmguard:owner>team-a</vmguard:owner>
      <vmguard:service>{service}</vmguard:service>
      <vmguard:expires>2027-06-30</vmguard:expires>
    </vmguard:domain>
  </metadata>
  <memory unit='MiB'>1024</memory>
  <genid/>
  <os><type arch='x86_64' machine='pc'>hvm</type></os>
  <devices>
    <disk type='file' device='disk'>
      <driver name='qemu' type='qcow2'/>
      <source file='/var/lib/libvirt/images/{name}.qcow2'/>
      <target dev='vda' bus='virtio'/>
    </disk>
    <interface type='network'>
      <source network='svc-{service}'/>
      <mac address='{mac}'/>
      <filterref filter='clean-traffic'/>
      <model type='virtio'/>
    </interface>
    <graphics type='vnc' autoport='yes' listen='127.0.0.1'/>
    <rng model='virtio'><backend model='random'>/dev/urandom</backend></rng>
    {extra}
  </devices>
  {after}
</domain>"""


def domain_xml(name="web1", service="web", uuid=None, mac=None, extra="", after="", replace=None):
    n = sum(ord(c) for c in name)
    xml = CLEAN_DOMAIN.format(name=name, service=service, uuid=uuid or "00000000-0000-4000-8000-%012d" % n,
                              mac=mac or "52:54:00:00:%02x:%02x" % (n // 256 % 256, n % 256), extra=extra, after=after)
    for old, new in (replace or {}).items():
        assert old in xml, old
        xml = xml.replace(old, new)
    return xml


def domain(name="web1", service="web", snapshots=None, ledger=None, state="running", persistent=True, pid=None, **kw):
    """A domain as hypervisor_facts reports it. ``pid`` is the pid libvirt recorded for a running domain
    (None: not known, e.g. a remote or test driver)."""
    d = domxml.parse_domain(domain_xml(name, service, **kw))
    d.update(state=state, persistent=persistent, autostart=False, snapshots=snapshots or [], ledger=ledger, error=None,
             pid=pid if state == "running" else None)
    d.setdefault("definition", "live" if state == "running" else "persistent")
    d.setdefault("inactive", None)
    return d


def qemu_process(pid, name, uuid=None, uid=64055, user="libvirt-qemu"):
    """A QEMU process as hostscan reports it: the name/uuid are what its argv claims."""
    return {"pid": pid, "uid": uid, "user": user, "name": name, "uuid": uuid}


WATCHER = {"lock_path": "/run/vmguard/watcher.lock", "lock_held": True, "holder_pid": 4242,
           "heartbeat_path": "/run/vmguard/watcher.heartbeat", "heartbeat_age_seconds": 3.0, "heartbeat_pid": 4242,
           "connected": True, "uri": "qemu:///system", "mgmt_networks": []}


def watcher(**overrides):
    w = dict(WATCHER)
    w.update(overrides)
    return w


def host(**overrides):
    h = {
        "qemu_conf": {"security_driver": "apparmor", "user": "libvirt-qemu", "group": "libvirt-qemu",
                      "migrate_tls_force": "1",
                      "qemu_user_default": {"user": "libvirt-qemu", "group": "libvirt-qemu",
                                            "source": "Debian's libvirt build default"}},
        "qemu_gid": 64055,
        "daemon_confs": {"libvirtd.conf": {"unix_sock_rw_perms": "0770"}},
        "sockets": [{"path": "/run/libvirt/libvirt-sock", "mode": 0o770, "rw": True}],
        "tcp_listeners": [],
        "security_models": ["apparmor", "dac"],
        "lsm": {"apparmor": True, "selinux": False},
        "qemu_processes": [],
        "watcher": watcher(),
        "images": [],
        "base_images": [],
        "image_dirs": [{"path": "/var/lib/libvirt/images", "mode": 0o711, "uid": 0, "gid": 0}],
        "session_domains": {"domains": [], "errors": [], "users": 2},
    }
    h.update(overrides)
    return h


FP = "SHA256:%s"


def guest_facts(n=1, **overrides):
    f = {
        "machine_id_state": "set",
        "machine_id_digest": "%064x" % (1000 + n),
        "random_seed_digest": "%064x" % (2000 + n),
        "ssh_host_keys": [{"type": "ssh-ed25519", "fingerprint": FP % ("ed%d" % n)},
                          {"type": "ecdsa-sha2-nistp256", "fingerprint": FP % ("ec%d" % n)}],
        "accounts": [{"name": "root", "uid": 0, "shell": "/bin/bash", "password_locked": True, "expired": False,
                      "locked": False, "hash_digest": None},
                     {"name": "admin", "uid": 1000, "shell": "/bin/bash", "password_locked": False, "expired": False,
                      "locked": False, "hash_digest": "%064x" % (3000 + n)}],
        "accounts_error": None,
        "listening": [{"proto": "tcp", "address": "0.0.0.0", "port": 22, "process": "sshd"},
                      {"proto": "tcp", "address": "0.0.0.0", "port": 443, "process": "nginx"},
                      {"proto": "tcp", "address": "127.0.0.1", "port": 8080, "process": "app"}],
        "services": {"enabled": ["ssh.service", "nginx.service"], "masked": ["telnet.socket"]},
        "packages": {"openssl": "3.0.15-1~deb12u1", "openssh-server": "1:9.2p1-2+deb12u5"},
        # What module_utils/nftables.py reports for tests/fixtures/nft/vmguard-web.json (SSH from a management CIDR).
        "firewall": {"digest": "f" * 64, "error": None, "default_deny": True,
                     "open": [{"proto": "tcp", "port": 22, "from": "192.0.2.0/24"},
                              {"proto": "tcp", "port": 80, "from": "any"},
                              {"proto": "tcp", "port": 443, "from": "any"}],
                     "open_any": [], "input_policy": "drop", "input_chains": 1},
        # The same ruleset at the next boot: loaded by the unit guest_firewall installs (module_utils/bootfirewall.py).
        "firewall_boot": {"digest": "f" * 64, "error": None, "default_deny": True,
                          "open": [{"proto": "tcp", "port": 22, "from": "192.0.2.0/24"},
                                   {"proto": "tcp", "port": 80, "from": "any"},
                                   {"proto": "tcp", "port": 443, "from": "any"}],
                          "open_any": [], "input_policy": "drop", "input_chains": 1,
                          "loaders": [{"unit": "vmguard-firewall.service", "files": ["/etc/nftables.d/vmguard.nft"]}],
                          "others": []},
        "sysctl": {"kernel.randomize_va_space": "2"},
        "epoch": 3,
        "lineage": {"build_id": "b1", "build_time": "2026-11-01T00:00:00Z", "seal": "verified"},
    }
    f.update(overrides)
    return f


def guest(name="web1", service="web", domain_name=None, facts=None, error=None, data_class=None, hv=HV):
    return {"vars": {"service": service, "hypervisor": hv, "domain": domain_name or name, "data_class": data_class},
            "error": error, "facts": facts}


def fleet(domains=(), guests=None, host_ev=None, hv_error=None):
    """Evidence for one hypervisor with ``domains`` and the given guests (name -> guest()), with the libvirt networks
    hypervisor_facts always sends: each network an interface of a domain names (live or persistent definition), an
    isolated one on a bridge of its own."""
    hv = {"error": hv_error, "uri": "qemu:///system", "host": host_ev if host_ev is not None else host_for(domains),
          "domains": list(domains), "networks": networks_of(domains)}
    return {"hypervisors": {HV: hv}, "guests": guests or {}}


def networks_of(domains):
    """{network: {"bridge", "forward", "devs", "active"}} of the networks the interfaces of ``domains`` name."""
    names = set()
    for d in domains:
        for defn in (d, d.get("inactive")):
            for i in (defn or {}).get("interfaces") or ():
                if i.get("type") == "network" and i.get("network"):
                    names.add(i["network"])
    return dict((n, {"bridge": "virbr-%s" % n, "forward": None, "devs": [], "active": True}) for n in sorted(names))


def run(rule_id, evidence, params=None, now=NOW, **policy_kw):
    doc = {"params": params or {}}
    doc.update(policy_kw)
    pol = policy.load_policy(doc)
    return list(engine.evaluate(pol, copy.deepcopy(evidence), now=now, only={rule_id}))


def by_subject(findings):
    return dict((f["subject"]["id"], f) for f in findings)


def status_of(findings, subject):
    return by_subject(findings)[subject]["status"]


LEDGER = {"epoch": 3, "epoch_time": NOW - 86400 * 2, "last_hardened": "2026-11-17T00:00:00Z",
          "retired_fingerprints": [FP % "old-ed"], "disabled_accounts": ["games"],
          "package_floors": {"openssl": "3.0.15-1~deb12u1"}, "masked_services": ["telnet.socket"],
          "firewall_digest": "f" * 64}


def ledger(**overrides):
    led = copy.deepcopy(LEDGER)
    led.update(overrides)
    return led


assert time.gmtime(NOW).tm_year == 2026


def without(evidence, *keys):
    """A copy of ``evidence`` (a domain, a VM, a host dict) without ``keys``: what a producer that did not
    send those fields would give. The rules must call that an error, never "none there"."""
    out = copy.deepcopy(evidence)
    for key in keys:
        del out[key]
    return out


# The clean domain's only disk (domain_xml), to replace with other drives.
CLEAN_DISK = ("<disk type='file' device='disk'>\n      <driver name='qemu' type='qcow2'/>\n"
              "      <source file='/var/lib/libvirt/images/{name}.qcow2'/>\n      <target dev='vda' bus='virtio'/>\n    </disk>")
CDROM = ("<disk type='file' device='cdrom'><driver name='qemu' type='raw'/>"
         "<source file='/var/lib/libvirt/images/debian-12.iso'/><target dev='sda' bus='sata'/><readonly/></disk>")


def host_for(domains, **overrides):
    """host() whose qemu_processes hold the QEMU process of every running domain of ``domains``, as hostscan sees
    it on a local qemu driver: the pid libvirt recorded (else 4000 + its position) with the domain's -name/-uuid.
    A running domain always has a QEMU process; VIS-03 calls a process list that does not show one incomplete."""
    procs = [qemu_process(d.get("pid") or 4000 + i, d["name"], d.get("uuid"))
             for i, d in enumerate(domains) if d.get("state") == "running"]
    return host(**dict({"qemu_processes": procs}, **overrides))
