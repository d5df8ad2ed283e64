"""The remediation planner (audit/plan.py) on realistic evidence and the real findings of engine.evaluate.

SCENARIOS (name -> (policy document, evidence)) are also run by tests/unit/test_registry.py, which
asserts that every declared remediation is planned in at least one of them.
"""

import copy

import pytest

from ansible_collections.vmguard.hardening.plugins.module_utils.audit import debversion, engine, plan, policy
from ansible_collections.vmguard.hardening.plugins.module_utils.evidence import domxml
from ansible_collections.vmguard.hardening.plugins.module_utils.remediation import ledger

from . import evidence as E
from .test_plan_shared import SHARED_POLICY, shared_network_and_disk

NO_RNG = {"<rng model='virtio'><backend model='random'>/dev/urandom</backend></rng>": ""}
NO_GENID = {"<genid/>": ""}
MID1, SEED1 = E.guest_facts(1)["machine_id_digest"], E.guest_facts(1)["random_seed_digest"]
ED1, EC1, ED3, EC3 = E.FP % "ed1", E.FP % "ec1", E.FP % "ed3", E.FP % "ec3"
FW1 = E.guest_facts(1)["firewall"]["digest"]
# What guest_facts(n) records under the default policy: the floor packages it has, no account or unit named.
RECORD1 = {"package_floors": {"openssh-server": "1:9.2p1-2+deb12u5", "openssl": "3.0.15-1~deb12u1"},
           "disabled_accounts": [], "masked_services": [], "firewall_digest": FW1}


def build(doc, ev):
    """(plan, findings) for ``ev`` under the policy document ``doc``: the real engine, then the planner."""
    pol = policy.load_policy(doc)
    findings = engine.evaluate(pol, copy.deepcopy(ev), now=E.NOW)
    return plan.build_plan(pol, ev, findings), findings


def uuid_of(name):
    return E.domain(name)["uuid"]


# --- scenarios -----------------------------------------------------------------------------------

def clone_pair():
    """web1 and mail1 cloned from one image without reseal: machine-id, host keys, seed and the admin hash shared."""
    return E.fleet([E.domain("web1"), E.domain("mail1", "mail")], {
        "web1": E.guest("web1", facts=E.guest_facts(1)),
        "mail1": E.guest("mail1", "mail", facts=E.guest_facts(1)),
    })


def three_key_sharers():
    """app1 and app2 share one ed25519 key, app2 and app3 one ECDSA key; nothing else is shared."""
    keys = {"app1": (ED1, EC1), "app2": (ED1, EC3), "app3": (ED3, EC3)}
    guests = {}
    for n, name in enumerate(sorted(keys), 1):
        facts = E.guest_facts(n)
        facts["ssh_host_keys"] = [{"type": "ssh-ed25519", "fingerprint": keys[name][0]},
                                  {"type": "ecdsa-sha2-nistp256", "fingerprint": keys[name][1]}]
        guests[name] = E.guest(name, facts=facts)
    return E.fleet([E.domain(g) for g in sorted(keys)], guests)


def retired_key_back():
    """web1 was reverted to a snapshot taken before its host key ed1 was retired."""
    return E.fleet([E.domain("web1", ledger=E.ledger(retired_fingerprints=[E.FP % "old-ed", ED1]))],
                   {"web1": E.guest("web1", facts=E.guest_facts(1))})


def two_hypervisors():
    """hv1/web1 lacks virtio-rng and genid, hv1/db1 virtio-rng only, hv2/mail1 genid only."""
    hv1 = E.fleet([E.domain("web1", replace=dict(NO_RNG, **NO_GENID)), E.domain("db1", "db", replace=NO_RNG)])["hypervisors"]["hv1"]
    hv2 = E.fleet([E.domain("mail1", "mail", replace=NO_GENID)])["hypervisors"]["hv1"]
    return {"hypervisors": {"hv1": hv1, "hv2": hv2},
            "guests": {"web1": E.guest("web1", facts=E.guest_facts(1)),
                       "db1": E.guest("db1", "db", facts=E.guest_facts(2)),
                       "mail1": E.guest("mail1", "mail", facts=E.guest_facts(3), hv="hv2")}}


def aslr_off():
    return E.fleet([E.domain("web1"), E.domain("mail1", "mail")], {
        "web1": E.guest("web1", facts=E.guest_facts(1, sysctl={"kernel.randomize_va_space": "0"})),
        "mail1": E.guest("mail1", "mail", facts=E.guest_facts(2)),
    })


def shared_password():
    """Only the admin password hash is the same on web1 and mail1."""
    f2 = E.guest_facts(2)
    f2["accounts"][1]["hash_digest"] = E.guest_facts(1)["accounts"][1]["hash_digest"]
    return E.fleet([E.domain("web1"), E.domain("mail1", "mail")], {
        "web1": E.guest("web1", facts=E.guest_facts(1)),
        "mail1": E.guest("mail1", "mail", facts=f2),
    })


def restart_pending():
    """web1 runs without genid; its persistent definition has it (fixed, waiting for a restart)."""
    live = E.domain("web1", replace=NO_GENID)
    pers = E.domain("web1")
    pers["definition"] = "persistent"
    live.update(definition="live", inactive=pers)
    return E.fleet([live], {"web1": E.guest("web1", facts=E.guest_facts(1))})


def unknown_domain():
    """ghost is a clone of web1 whose inventory names a domain its hypervisor does not have."""
    return E.fleet([E.domain("web1")], {
        "web1": E.guest("web1", facts=E.guest_facts(1)),
        "ghost": E.guest("ghost", domain_name="ghost-vm", facts=E.guest_facts(1)),
    })


WEB1_UUID = E.domain("web1")["uuid"]


def snapshot(name, hours_ago, parent=None, memory="no", current=False):
    """A snapshot as hypervisor_facts reports it: parsed from libvirt's snapshot XML, plus libvirt's current flag."""
    state = "running" if memory == "internal" else "shutoff"
    s = domxml.parse_snapshot(
        "<domainsnapshot><name>%s</name><state>%s</state>%s<creationTime>%d</creationTime><memory snapshot='%s'/>"
        "</domainsnapshot>" % (name, state, "<parent><name>%s</name></parent>" % parent if parent else "",
                               E.NOW - hours_ago * 3600, memory))
    s["current"] = current
    return s


def snapshot_tree():
    """web1: golden-base (pinned by the policy) with three branches: an old pre-upgrade, a memory-state mem1
    and the current nightly. db1: an old base whose only child is current. mail1: an old snapshot whose
    current flag is unknown (None). Each has a ledger epoch 48h ago."""
    web1 = [snapshot("golden-base", 200), snapshot("pre-upgrade", 100, "golden-base"),
            snapshot("mem1", 10, "golden-base", memory="internal"), snapshot("nightly", 5, "golden-base", current=True)]
    db1 = [snapshot("base", 100), snapshot("daily", 1, "base", current=True)]
    mail1 = [snapshot("old", 100)]
    mail1[0]["current"] = None
    return E.fleet([E.domain("web1", snapshots=web1, ledger=E.ledger()), E.domain("db1", "db", snapshots=db1, ledger=E.ledger()),
                    E.domain("mail1", "mail", snapshots=mail1, ledger=E.ledger())],
                   {"web1": E.guest("web1", facts=E.guest_facts(1)), "db1": E.guest("db1", "db", facts=E.guest_facts(2)),
                    "mail1": E.guest("mail1", "mail", facts=E.guest_facts(3))})


SNAPSHOT_RULES = ("RB-02", "RB-03", "RB-04", "RB-13")
SNAPSHOTS_ENFORCED = {"rules": dict((r, {"mode": "enforce"}) for r in SNAPSHOT_RULES),
                      "params": {"rollback": {"prune_snapshots": True, "pinned_snapshots": ["*/golden-*"]}}}


def watcher_down():
    """hv1's revert watcher holds no lock and writes no heartbeat."""
    return E.fleet([E.domain("web1")], {"web1": E.guest("web1", facts=E.guest_facts(1))},
                   host_ev=E.host(watcher=E.watcher(lock_held=False, holder_pid=None, heartbeat_age_seconds=None,
                                                    heartbeat_pid=None)))


TRANSIENT = {"<target dev='vda' bus='virtio'/>": "<target dev='vda' bus='virtio'/><transient/>"}


def transient_disk():
    """hv1/web1's disk is transient (self-reverting); hv1/mail1's is not."""
    return E.fleet([E.domain("web1", replace=TRANSIENT), E.domain("mail1", "mail")], {
        "web1": E.guest("web1", facts=E.guest_facts(1)), "mail1": E.guest("mail1", "mail", facts=E.guest_facts(2))})


# Everything the domain_policy fixers of issue 9 remove or rewrite, on one domain (the clean template otherwise).
LEAKY = {"<vmguard:owner>team-a</vmguard:owner>": "", "<vmguard:expires>2027-06-30</vmguard:expires>": "",
         "<memory unit='MiB'>1024</memory>": "<memory unit='MiB' dumpCore='on'>1024</memory>",
         "<type arch='x86_64' machine='pc'>hvm</type>": "<type arch='x86_64' machine='pc'>hvm</type><smbios mode='host'/>",
         "<filterref filter='clean-traffic'/>": "",
         "<graphics type='vnc' autoport='yes' listen='127.0.0.1'/>":
             "<graphics type='vnc' autoport='yes' listen='0.0.0.0'/><graphics type='spice' autoport='yes'>"
             "<listen type='address' address='127.0.0.1'/></graphics>"}
LEAKY_EXTRA = ("<filesystem type='mount'><source dir='/srv/share'/><target dir='share'/></filesystem>"
               "<hostdev mode='subsystem' type='usb'><source><vendor id='0x1234'/><product id='0xbeef'/></source></hostdev>"
               "<shmem name='ivshmem0'><model type='ivshmem-plain'/></shmem><vsock model='virtio'><cid auto='yes'/></vsock>")
LEAKY_KW = dict(replace=LEAKY, extra=LEAKY_EXTRA, after="<seclabel type='none'/>")
DOMAIN_RULES_9 = ("ISO-03", "ISO-04", "ISO-07", "ISO-08", "ISO-11", "LEAK-02", "LEAK-03", "LEAK-04", "LEAK-07", "VIS-05")
OPT_IN_DEVICES = {"rules": dict((r, {"mode": "enforce"}) for r in ("ISO-07", "ISO-08", "ISO-11")),
                  "params": {"isolation": {"management_networks": ["vmguard-mgmt"], "allowed_shmem": ["ivshmem-ok"]}}}


def leaky_domains(security_models=("apparmor", "dac")):
    """hv1/web1 leaks everything issue 9 fixes; its guest declares its service address, owner and expiry. hv1/stray
    (not in the inventory) lacks its metadata and keeps <seclabel type='none'>."""
    stray = E.domain("stray", replace={"<vmguard:owner>team-a</vmguard:owner>": ""}, after="<seclabel type='none'/>")
    ev = E.fleet([E.domain("web1", **LEAKY_KW), stray], {"web1": E.guest("web1", facts=E.guest_facts(1))},
                 host_ev=E.host(security_models=list(security_models),
                                lsm={"apparmor": "apparmor" in security_models, "selinux": "selinux" in security_models}))
    ev["guests"]["web1"]["vars"].update(service_address="192.0.2.10", owner="team-web", expires="2027-06-30")
    return ev


def leaky_on_a_host_without_lsm():
    return leaky_domains(security_models=("dac",))


# A hypervisor whose qemu.conf, daemon configuration and image modes fail every host rule host_config fixes.
LEAKY_QEMU_CONF = {"user": "root", "group": "root", "seccomp_sandbox": "0", "dump_guest_core": "1", "security_driver": "none",
                   "qemu_user_default": {"user": "libvirt-qemu", "group": "libvirt-qemu", "source": "Debian's libvirt build default"}}
HOST_CONFIG_POLICY = {"rules": {"LEAK-08": {"mode": "enforce"}}}


def leaky_host(**overrides):
    host = E.host(qemu_conf=dict(LEAKY_QEMU_CONF), security_models=["none"],
                  daemon_confs={"libvirtd.conf": {"listen_tcp": "1", "unix_sock_rw_perms": "0777"}, "virtqemud.conf": {}},
                  sockets=[{"path": "/run/libvirt/libvirt-sock", "mode": 0o777, "rw": True}],
                  images=[{"path": "/srv/vm/web1.qcow2", "mode": 0o644, "uid": 0, "gid": 0, "size": 1, "referenced": True}],
                  image_dirs=[{"path": "/var/lib/libvirt/images", "mode": 0o755, "uid": 0, "gid": 0},
                              {"path": "/srv/vm", "mode": 0o711, "uid": 0, "gid": 0}])
    host.update(overrides)
    return E.fleet([E.domain("web1")], {"web1": E.guest("web1", facts=E.guest_facts(1))}, host_ev=host)


ROLLBACK_POLICY = {"params": {"rollback": {"disabled_accounts": ["games"], "masked_services": ["telnet.socket"]}}}
OPENSSL_FLOOR, OPENSSL_OLD = "3.0.15-1~deb12u1", "3.0.11-1~deb12u2"


def games(locked=True):
    return {"name": "games", "uid": 5, "shell": "/usr/sbin/nologin" if locked else "/bin/sh", "password_locked": locked,
            "expired": locked, "locked": locked, "hash_digest": None}


def rolled_back_facts(epoch=2, **overrides):
    """web1 after a revert to a snapshot older than its last harden (epoch 3): games usable again, openssl back
    to 3.0.11 (below its 3.0.15 floor), telnet.socket no longer masked."""
    facts = E.guest_facts(1, epoch=epoch, packages={"openssl": OPENSSL_OLD, "openssh-server": "1:9.2p1-2+deb12u5"},
                          services={"enabled": ["ssh.service", "nginx.service", "telnet.socket"], "masked": []})
    facts["accounts"].append(games(locked=False))
    facts.update(overrides)
    return facts


def rolled_back():
    """The ledger (E.ledger: epoch 3) records games disabled, openssl's floor 3.0.15-1~deb12u1 and telnet.socket
    masked; the guest holds epoch 2 and none of them."""
    return E.fleet([E.domain("web1", ledger=E.ledger())], {"web1": E.guest("web1", facts=rolled_back_facts())})


def open_firewall_facts():
    """What guest_facts reports for Debian's shipped ruleset (tests/fixtures/nft/debian-default): accept-all."""
    facts = E.guest_facts(1)
    facts["firewall"] = {"digest": "0" * 64, "error": None, "default_deny": False, "open": [],
                         "open_any": ["inet filter input: policy accept"], "input_policy": "accept", "input_chains": 1}
    return facts


def open_firewall():
    """web1 was reverted to before its firewall: accept-all, and not the ruleset digest its ledger recorded."""
    return E.fleet([E.domain("web1", ledger=E.ledger())], {"web1": E.guest("web1", facts=open_firewall_facts())})


def extra_listeners():
    """web1 also listens on rpcbind (tcp/udp 111) and a python3 app on 0.0.0.0:8080; its DHCP client binds udp/68."""
    facts = E.guest_facts(1)
    facts["listening"] += [{"proto": "tcp", "address": "0.0.0.0", "port": 111, "process": "rpcbind"},
                           {"proto": "udp", "address": "0.0.0.0", "port": 111, "process": "rpcbind"},
                           {"proto": "tcp", "address": "::", "port": 8080, "process": "python3"},
                           {"proto": "udp", "address": "0.0.0.0", "port": 68, "process": "dhclient"}]
    return E.fleet([E.domain("web1")], {"web1": E.guest("web1", facts=facts)})


SCENARIOS = {
    "clone-pair": ({}, clone_pair),
    "clone-pair-all-but-one": ({"params": {"diversity": {"reseal": "all_but_one"}}}, clone_pair),
    "three-key-sharers": ({"params": {"diversity": {"reseal": "all_but_one"}}}, three_key_sharers),
    "retired-key-back": ({}, retired_key_back),
    "two-hypervisors": ({}, two_hypervisors),
    "aslr-off": ({}, aslr_off),
    "shared-password-opt-in": ({"rules": {"DIV-03": {"mode": "enforce"}}}, shared_password),
    "restart-pending": ({}, restart_pending),
    "unknown-domain": ({}, unknown_domain),
    "snapshots-opt-in": (SNAPSHOTS_ENFORCED, snapshot_tree),
    "watcher-down": ({"params": {"isolation": {"management_networks": ["vmguard-mgmt"]}}}, watcher_down),
    "transient-disk": ({}, transient_disk),
    "leaky-domain-devices-opt-in": (OPT_IN_DEVICES, leaky_domains),
    "leaky-domain-no-lsm": ({}, leaky_on_a_host_without_lsm),
    "leaky-host": (HOST_CONFIG_POLICY, leaky_host),
    "rolled-back": (ROLLBACK_POLICY, rolled_back),
    "open-firewall": ({}, open_firewall),
    "extra-listeners": ({}, extra_listeners),
    "shared-network-and-disk": (SHARED_POLICY, shared_network_and_disk),
}


def scenario(name):
    doc, make = SCENARIOS[name]
    return build(doc, make())


def not_enforced(p, rule):
    return sorted((e["subject"], e["reason"]) for e in p["not_enforced"] if e["rule"] == rule)


# --- identity reseal -----------------------------------------------------------------------------

def test_clone_pair_reseal_all_plans_both_guests():
    p, _findings = scenario("clone-pair")
    for g in ("web1", "mail1"):
        assert p["hosts"][g]["identity_reseal"] == {
            "rules": ["DIV-01", "DIV-02", "DIV-04"], "subjects": [g],
            "machine_id_digest": MID1, "ssh_fingerprints": sorted([EC1, ED1]), "random_seed_digest": SEED1, "force": []}
        # web1's firewall passes ISO-10 (a default-deny ruleset worth keeping); mail1 runs web's ruleset: no digest.
        assert p["hosts"][g]["ledger"] == {"rules": [], "subjects": [g], "hypervisor": "hv1", "uuid": uuid_of(g),
                                           "retire_fingerprints": sorted([EC1, ED1]), "epoch": True, "lift_quarantine": False, "quarantine_since": None,
                                           "seen_reverts": [],
                                           "record": dict(RECORD1, firewall_digest=FW1 if g == "web1" else None)}
    # The shared admin password is an opt-in remediation: reported, not planned by default.
    assert not_enforced(p, "DIV-03") == [("mail1", "mode audit"), ("web1", "mode audit")]
    assert "expire_passwords" not in p["hosts"]["web1"]
    # mail1 runs web's image: its sockets and firewall are off its mail service: locked down to mail's ports.
    assert p["hosts"]["mail1"]["service_lockdown"]["extra"] == ["tcp/443 nginx"]
    assert p["hosts"]["mail1"]["guest_firewall"]["service_ports"] == [25, 587, 993]
    assert "guest_firewall" not in p["hosts"]["web1"] and "service_lockdown" not in p["hosts"]["web1"]
    assert p["steps"] == 4 and p["pending_restart"] == []


def test_clone_pair_all_but_one_keeps_the_first_name_and_reseals_the_other():
    """The member whose inventory name sorts first (mail1) keeps its identity; web1 (sorts last) reseals."""
    p, findings = scenario("clone-pair-all-but-one")
    assert sorted(f["subject"]["id"] for f in findings if f["rule"] == "DIV-01" and f["status"] == "fail") == ["mail1", "web1"]
    assert p["hosts"]["web1"]["identity_reseal"] == {
        "rules": ["DIV-01", "DIV-02", "DIV-04"], "subjects": ["web1"],
        "machine_id_digest": MID1, "ssh_fingerprints": sorted([EC1, ED1]), "random_seed_digest": SEED1, "force": []}
    assert "identity_reseal" not in p["hosts"]["mail1"]
    assert p["hosts"]["mail1"]["ledger"]["retire_fingerprints"] == []
    assert p["hosts"]["web1"]["ledger"]["retire_fingerprints"] == sorted([EC1, ED1])
    assert p["steps"] == 3  # + mail1's guest_firewall and service_lockdown (web's sockets and ruleset on a mail VM)


def test_all_but_one_is_per_fingerprint_for_host_keys():
    p, _findings = scenario("three-key-sharers")
    assert "identity_reseal" not in p["hosts"]["app1"]  # keeps ed1 (first of app1, app2)
    assert p["hosts"]["app2"]["identity_reseal"]["ssh_fingerprints"] == [ED1]  # keeps ec3 (first of app2, app3)
    assert p["hosts"]["app3"]["identity_reseal"]["ssh_fingerprints"] == [EC3]
    for g in ("app2", "app3"):
        r = p["hosts"][g]["identity_reseal"]
        assert r["rules"] == ["DIV-02"] and r["machine_id_digest"] is None and r["random_seed_digest"] is None
    doc, make = SCENARIOS["three-key-sharers"]
    p_all, _findings = build({}, make())
    assert [p_all["hosts"][g]["identity_reseal"]["ssh_fingerprints"] for g in ("app1", "app2", "app3")] == [
        [ED1], sorted([ED1, EC3]), [EC3]]


def test_all_but_one_with_a_waived_member_lets_the_waived_one_keep_the_value():
    """A member that is not resealed anyway (waived) already keeps the value: every planned member reseals."""
    facts = E.guest_facts(1)
    ev = E.fleet([E.domain(g) for g in ("a1", "a2", "a3")], dict((g, E.guest(g, facts=copy.deepcopy(facts))) for g in ("a1", "a2", "a3")))
    waiver = {"rule": "DIV-01", "subject": "a2", "reason": "kept on purpose", "expires": "2099-01-01"}
    p, _findings = build({"params": {"diversity": {"reseal": "all_but_one"}}, "waivers": [waiver]}, ev)
    assert [g for g in ("a1", "a2", "a3") if "DIV-01" in p["hosts"][g].get("identity_reseal", {}).get("rules", [])] == ["a1", "a3"]
    waiver["subject"] = "a1"
    p, _findings = build({"params": {"diversity": {"reseal": "all_but_one"}}, "waivers": [waiver]}, ev)
    assert [g for g in ("a1", "a2", "a3") if "DIV-01" in p["hosts"][g].get("identity_reseal", {}).get("rules", [])] == ["a2", "a3"]
    p, _findings = build({"params": {"diversity": {"reseal": "all_but_one"}}}, ev)
    assert [g for g in ("a1", "a2", "a3") if "DIV-01" in p["hosts"][g].get("identity_reseal", {}).get("rules", [])] == ["a2", "a3"]


def test_retired_key_back_is_rotated_also_under_all_but_one():
    p, _findings = scenario("retired-key-back")
    assert p["hosts"]["web1"]["identity_reseal"] == {
        "rules": ["RB-06"], "subjects": ["web1"], "machine_id_digest": None, "ssh_fingerprints": [ED1],
        "random_seed_digest": None, "force": []}
    assert p["hosts"]["web1"]["ledger"]["retire_fingerprints"] == [ED1]
    p2, _findings = build({"params": {"diversity": {"reseal": "all_but_one"}}}, retired_key_back())
    assert p2 == p


def test_empty_machine_id_is_resealed_without_a_digest():
    ev = E.fleet([E.domain("web1")], {"web1": E.guest("web1", facts=E.guest_facts(1, machine_id_state="empty", machine_id_digest=None))})
    for reseal in ("all", "all_but_one"):
        p, _findings = build({"params": {"diversity": {"reseal": reseal}}}, ev)
        assert p["hosts"]["web1"]["identity_reseal"]["rules"] == ["DIV-01"]
        assert p["hosts"]["web1"]["identity_reseal"]["machine_id_digest"] is None
        # no digest to match: without force identity_reseal would find nothing to do
        assert p["hosts"]["web1"]["identity_reseal"]["force"] == ["machine_id"]


def test_a_shared_dbus_machine_id_copy_is_resealed_by_its_digest():
    """Different /etc/machine-id, one D-Bus copy (a file of its own, read first by libdbus): DIV-01 fails on both
    and the plan hands identity_reseal the copy's digest (all), or reseals all but one holder of it."""
    dbus = "d" * 64
    guests = {}
    for n, g in enumerate(("web1", "mail1"), 1):
        guests[g] = E.guest(g, facts=E.guest_facts(n, dbus_machine_id_digest=dbus))
    ev = E.fleet([E.domain("web1"), E.domain("mail1")], guests)
    p, findings = build({}, ev)
    div01 = [f for f in findings if f["rule"] == "DIV-01"]
    assert [f["status"] for f in div01] == ["fail", "fail"]
    assert [f["evidence"]["copies"] for f in div01] == [["/var/lib/dbus/machine-id"]] * 2
    for g in ("web1", "mail1"):
        assert "DIV-01" in p["hosts"][g]["identity_reseal"]["rules"]
        assert p["hosts"][g]["identity_reseal"]["machine_id_digest"] == dbus
    p, _findings = build({"params": {"diversity": {"reseal": "all_but_one"}}}, ev)
    assert [g for g in ("mail1", "web1") if "DIV-01" in p["hosts"][g].get("identity_reseal", {}).get("rules", [])] == ["web1"]


# --- domain policy -------------------------------------------------------------------------------

def test_domain_fixes_per_hypervisor_and_domain():
    p, _findings = scenario("two-hypervisors")
    assert p["hosts"]["hv1"]["domain_policy"] == {
        "rules": ["DIV-09", "RB-01"], "subjects": ["hv1/db1", "hv1/web1"], "fixes": ["DIV-09", "RB-01"],
        "domains": {"db1": {"DIV-09": {}}, "web1": {"DIV-09": {}, "RB-01": {}}}}
    assert p["hosts"]["hv2"]["domain_policy"] == {
        "rules": ["RB-01"], "subjects": ["hv2/mail1"], "fixes": ["RB-01"], "domains": {"mail1": {"RB-01": {}}}}
    assert p["hosts"]["mail1"]["ledger"]["hypervisor"] == "hv2"
    assert p["hosts"]["mail1"]["ledger"]["uuid"] == uuid_of("mail1")
    # db1 has nothing to fix on the guest, but no ledger record yet: the state it holds is recorded with a new epoch
    # (its firewall is web's, off its db service, so failing ISO-10: no digest worth keeping).
    assert p["hosts"]["db1"]["ledger"] == {"rules": [], "subjects": ["db1"], "hypervisor": "hv1", "uuid": uuid_of("db1"),
                                           "retire_fingerprints": [], "epoch": True, "lift_quarantine": False, "quarantine_since": None, "seen_reverts": [],
                                           "record": dict(RECORD1, firewall_digest=None)}
    assert p["steps"] == 6  # + guest_firewall and service_lockdown on db1 and mail1 (web's sockets and ruleset)


def test_restart_pending_is_listed_not_planned():
    p, findings = scenario("restart-pending")
    rb01 = [f for f in findings if f["rule"] == "RB-01"][0]
    assert rb01["status"] == "fail" and rb01["pending_restart"] is True
    assert p["pending_restart"] == [{"rule": "RB-01", "subject": "hv1/web1", "message": rb01["message"]}]
    assert "hv1" not in p["hosts"] and p["steps"] == 0
    assert not_enforced(p, "RB-01") == []


def test_live_only_failure_of_a_live_fixer_is_planned_not_left_for_a_restart():
    """web1 runs without its clean-traffic filter while its persistent definition has it: libvirt can put the
    filter on the running interface (domain_policy applies ISO-03 live), so the plan carries it out now."""
    live = E.domain("web1", replace={"<filterref filter='clean-traffic'/>": ""})
    pers = E.domain("web1")
    pers["definition"] = "persistent"
    live.update(definition="live", inactive=pers)
    p, findings = build({}, E.fleet([live], {"web1": E.guest("web1", facts=E.guest_facts(1))}))
    (iso03,) = [f for f in findings if f["rule"] == "ISO-03"]
    assert iso03["status"] == "fail" and iso03["pending_restart"] is True
    assert "ISO-03" in p["hosts"]["hv1"]["domain_policy"]["domains"]["web1"]
    assert [e for e in p["pending_restart"] if e["rule"] == "ISO-03"] == []


def test_a_transient_domain_gets_only_the_live_fixes_and_the_others_are_not_enforced():
    """A transient domain has no persistent definition: LEAK-02 (a definition fix) cannot reach it and is listed
    under not_enforced with that reason; ISO-03 (libvirt applies it to the running interface) is planned."""
    d = E.domain("transient1", persistent=False, pid=4000, replace={
        "listen='127.0.0.1'": "listen='0.0.0.0'", "<filterref filter='clean-traffic'/>": ""})
    p, findings = build({}, E.fleet([d], {"transient1": E.guest("transient1", facts=E.guest_facts(1))}))
    assert {"LEAK-02", "ISO-03"} <= set(f["rule"] for f in findings if f["status"] == "fail")
    fixes = p["hosts"]["hv1"]["domain_policy"]["domains"]["transient1"]
    assert "ISO-03" in fixes and set(fixes) <= set(plan.LIVE_DOMAIN_FIXES)
    assert not_enforced(p, "LEAK-02") == [("hv1/transient1", plan.TRANSIENT_DOMAIN)]
    assert plan.TRANSIENT_DOMAIN.startswith("cannot be enforced on a transient domain: it has no persistent definition")


def test_planner_live_fixes_are_the_fixers_libvirt_applies_live():
    from ansible_collections.vmguard.hardening.plugins.module_utils.remediation import domfix
    assert set(plan.LIVE_DOMAIN_FIXES) == set(domfix.LIVE)


def test_waived_finding_is_neither_planned_nor_listed():
    waiver = {"rule": "RB-01", "subject": "hv1/web1", "reason": "legacy guest kernel", "expires": "2099-01-01"}
    p, findings = build({"waivers": [waiver]}, two_hypervisors())
    assert [f["status"] for f in findings if f["rule"] == "RB-01" and f["subject"]["id"] == "hv1/web1"] == ["waived"]
    assert p["hosts"]["hv1"]["domain_policy"]["domains"] == {"db1": {"DIV-09": {}}, "web1": {"DIV-09": {}}}
    assert not [e for e in p["not_enforced"] + p["pending_restart"] if e["subject"] == "hv1/web1" and e["rule"] == "RB-01"]


def test_expired_waiver_finding_is_not_a_domain_step():
    waiver = {"rule": "RB-01", "subject": "hv1/web1", "reason": "legacy guest kernel", "expires": "2020-01-01"}
    p, _findings = build({"waivers": [waiver]}, two_hypervisors())
    assert p["hosts"]["hv1"]["domain_policy"]["domains"]["web1"] == {"DIV-09": {}, "RB-01": {}}  # the waiver stopped waiving
    assert ("waiver/hv1/web1", "no remediation") in not_enforced(p, "RB-01")
    assert "waiver" not in p["hosts"]


def test_unreachable_hypervisor_is_not_evaluated_and_plans_nothing_there():
    ev = two_hypervisors()
    ev["hypervisors"]["hv2"] = {"error": "cannot connect to qemu+ssh://hv2/system", "uri": "qemu+ssh://hv2/system",
                                "host": None, "domains": []}
    p, _findings = build({}, ev)
    assert ("hv2", "error: not evaluated") in not_enforced(p, "DIV-09")
    assert "hv2" not in p["hosts"]
    assert "ledger" not in p["hosts"]["mail1"]  # its domain UUID is not known: no ledger entry (its guest steps stay)
    assert p["hosts"]["web1"]["ledger"]["uuid"] == uuid_of("web1")


# --- sysctl, passwords, errors, modes ------------------------------------------------------------

def test_aslr_off_plans_the_sysctl_setting():
    p, _findings = scenario("aslr-off")
    assert p["hosts"]["web1"]["sysctl"] == {"rules": ["DIV-10"], "subjects": ["web1"],
                                            "settings": {"kernel.randomize_va_space": "2"}}
    assert "sysctl" not in p["hosts"]["mail1"]
    assert p["steps"] == 3  # + mail1's guest_firewall and service_lockdown (web's sockets and ruleset on a mail VM)


def test_rule_in_audit_mode_is_not_enforced():
    p, _findings = build({"rules": {"DIV-10": {"mode": "audit"}}}, aslr_off())
    assert "sysctl" not in p["hosts"]["web1"]
    assert not_enforced(p, "DIV-10") == [("web1", "mode audit")]
    assert p["steps"] == 2  # mail1's guest_firewall and service_lockdown


def test_error_finding_is_not_enforced():
    ev = aslr_off()
    ev["guests"]["mail1"]["facts"]["sysctl"] = {}
    p, findings = build({}, ev)
    assert [f["status"] for f in findings if f["rule"] == "DIV-10" and f["subject"]["id"] == "mail1"] == ["error"]
    assert not_enforced(p, "DIV-10") == [("mail1", "error: not evaluated")]
    assert "sysctl" not in p["hosts"]["mail1"] and "sysctl" in p["hosts"]["web1"]


def test_shared_password_is_expired_only_when_opted_in():
    p, _findings = scenario("shared-password-opt-in")
    for g in ("web1", "mail1"):
        assert p["hosts"][g]["expire_passwords"] == {"rules": ["DIV-03"], "subjects": [g], "accounts": ["admin"]}
    p, _findings = build({}, shared_password())
    assert all("expire_passwords" not in h for h in p["hosts"].values())
    assert not_enforced(p, "DIV-03") == [("mail1", "mode audit"), ("web1", "mode audit")]


def test_global_mode_audit_plans_nothing():
    p, findings = build({"mode": "audit"}, clone_pair())
    assert p["hosts"] == {} and p["steps"] == 0 and p["pending_restart"] == []
    bad = sorted((f["rule"], f["subject"]["id"]) for f in findings if f["status"] in ("fail", "error"))
    assert bad and sorted((e["rule"], e["subject"]) for e in p["not_enforced"]) == bad
    assert set(e["reason"] for e in p["not_enforced"]) == {"policy mode audit"}
    assert all(e["by_choice"] for e in p["not_enforced"])


def test_disabled_rule_plans_nothing_even_from_stale_findings():
    pol = policy.load_policy({"rules": {"DIV-10": {"enabled": False}}})
    findings = engine.evaluate(policy.load_policy({}), aslr_off(), now=E.NOW)
    p = plan.build_plan(pol, aslr_off(), findings)
    assert "sysctl" not in p["hosts"]["web1"] and not not_enforced(p, "DIV-10")


# --- ledger, determinism -------------------------------------------------------------------------

def test_guest_with_unknown_domain_gets_no_ledger_but_is_resealed():
    p, findings = scenario("unknown-domain")
    assert [f["status"] for f in findings if f["rule"] == "VIS-02" and f["subject"]["id"] == "ghost"] == ["fail"]
    assert p["hosts"]["ghost"]["identity_reseal"]["rules"] == ["DIV-01", "DIV-02", "DIV-04"]
    assert "ledger" not in p["hosts"]["ghost"]
    assert p["hosts"]["web1"]["ledger"]["uuid"] == uuid_of("web1")


def test_unreachable_guest_gets_no_ledger_entry():
    ev = clone_pair()
    ev["guests"]["mail1"] = E.guest("mail1", "mail", error="unreachable: timed out")
    p, _findings = build({}, ev)
    assert "mail1" not in p["hosts"]
    assert "ledger" in p["hosts"]["web1"]


def web1_alone(facts=None, led=None):
    return E.fleet([E.domain("web1", ledger=led)], {"web1": E.guest("web1", facts=facts or E.guest_facts(1))})


RECORD_POLICY = {"params": {"rollback": {"disabled_accounts": ["games", "lp", "admin"],
                                         "masked_services": ["telnet.socket", "cups.service"]}}}


def harden_ledger(step, held=None):
    """The ledger record after the guest role carried out the plan's ledger ``step`` (the real merge, both phases)."""
    rec = ledger.empty(step["uuid"]) if held is None else held
    if step["epoch"]:
        rec, _ch = ledger.apply(rec, E.NOW, retire=step["retire_fingerprints"], epoch="prepare", update=step["record"],
                                compare=debversion.compare)
        rec, _ch = ledger.apply(rec, E.NOW, epoch="commit", hardened=True)
    else:
        rec, _ch = ledger.apply(rec, E.NOW, hardened=True)
    return rec


def test_ledger_record_is_the_state_the_guest_holds():
    """games locked, lp absent (both recorded), admin usable (not); telnet.socket masked, cups.service not;
    floors of the packages installed (sudo and the kernel are not); digest of a firewall passing ISO-10."""
    facts = E.guest_facts(1)
    facts["accounts"].append(games())
    p, findings = build(RECORD_POLICY, web1_alone(facts))
    assert [f["status"] for f in findings if f["rule"] == "ISO-10"] == ["pass"]
    step = p["hosts"]["web1"]["ledger"]
    assert step["record"] == {"package_floors": RECORD1["package_floors"], "disabled_accounts": ["games", "lp"],
                              "masked_services": ["telnet.socket"], "firewall_digest": FW1}
    assert step["epoch"] is True and p["steps"] == 0
    assert ledger.check_record(step["record"]) is None  # what the ledger module accepts
    # The floor packages come from the policy.
    p, _findings = build({"params": {"rollback": {"floor_packages": ["openssl", "sudo"]}}}, web1_alone())
    assert p["hosts"]["web1"]["ledger"]["record"]["package_floors"] == {"openssl": "3.0.15-1~deb12u1"}


def test_firewall_digest_only_from_a_passing_iso10():
    opened = E.guest_facts(1)
    opened["firewall"] = dict(opened["firewall"], default_deny=False, input_policy="accept", digest="0" * 64)
    p, findings = build({}, web1_alone(opened))
    assert [f["status"] for f in findings if f["rule"] == "ISO-10"] == ["fail"]
    assert p["hosts"]["web1"]["ledger"]["record"]["firewall_digest"] is None
    waiver = {"rule": "ISO-10", "subject": "web1", "reason": "migration window", "expires": "2099-01-01"}
    p, _findings = build({"waivers": [waiver]}, web1_alone(opened))
    assert p["hosts"]["web1"]["ledger"]["record"]["firewall_digest"] is None


def test_second_harden_with_nothing_to_do_changes_nothing():
    """Molecule's idempotence step: after a harden recorded the state, the next plan has epoch false."""
    facts = E.guest_facts(1, epoch=None)
    facts["accounts"].append(games())
    p, _findings = build(RECORD_POLICY, web1_alone(facts))
    held = harden_ledger(p["hosts"]["web1"]["ledger"])
    assert (held["epoch"], held["pending_epoch"], held["disabled_accounts"]) == (1, None, ["games", "lp"])
    facts["epoch"] = held["epoch"]  # the guest role wrote it
    p2, findings = build(RECORD_POLICY, web1_alone(facts, held))
    assert [f["status"] for f in findings if f["rule"] in ("RB-05", "RB-07", "RB-08", "RB-09", "RB-10")] == ["pass"] * 5
    assert p2["hosts"]["web1"] == {"ledger": dict(p["hosts"]["web1"]["ledger"], epoch=False)}
    assert harden_ledger(p2["hosts"]["web1"]["ledger"], held) == held


def test_epoch_moves_when_the_state_moves_up_or_another_step_runs():
    p, _findings = build({}, web1_alone())
    held = harden_ledger(p["hosts"]["web1"]["ledger"])
    upgraded = E.guest_facts(1, packages={"openssl": "3.0.16-1~deb12u1", "openssh-server": "1:9.2p1-2+deb12u5"})
    assert build({}, web1_alone(upgraded, held))[0]["hosts"]["web1"]["ledger"]["epoch"] is True
    masked = E.guest_facts(1)
    masked["services"] = dict(masked["services"], masked=["telnet.socket", "cups.service"])
    assert build({"params": {"rollback": {"masked_services": ["cups.service"]}}}, web1_alone(masked, held))[0][
        "hosts"]["web1"]["ledger"]["epoch"] is True
    aslr = E.guest_facts(1, sysctl={"kernel.randomize_va_space": "0"})
    p2, _findings = build({}, web1_alone(aslr, held))
    assert "sysctl" in p2["hosts"]["web1"] and p2["hosts"]["web1"]["ledger"]["epoch"] is True
    # An unfinished run (pending epoch) is finished; an unreadable ledger is not taken as "nothing changed".
    for bad in (dict(held, pending_epoch=2), {"error": "/var/lib/vmguard/ledger/x.json: unreadable ledger: is a FIFO"}):
        assert build({}, web1_alone(E.guest_facts(1), bad))[0]["hosts"]["web1"]["ledger"]["epoch"] is True


def test_a_rollback_is_not_erased_from_the_ledger_by_the_next_harden():
    """After a revert: openssl below its floor, games usable, telnet.socket unmasked, firewall opened. The plan
    reconverges RB-07/08/09 (re-applies the firewall: ISO-10, RB-10) and moves the epoch, but never lowers what the ledger holds."""
    facts = E.guest_facts(1)
    facts["accounts"].append(games())
    p, _findings = build(RECORD_POLICY, web1_alone(facts))
    held = harden_ledger(p["hosts"]["web1"]["ledger"])
    reverted = E.guest_facts(1, epoch=held["epoch"], packages={"openssl": "3.0.11-1~deb12u2", "openssh-server": "1:9.2p1-2+deb12u5"},
                             services={"enabled": ["ssh.service", "telnet.socket"], "masked": []})
    reverted["accounts"].append(games(locked=False))
    reverted["firewall"] = dict(reverted["firewall"], default_deny=False, input_policy="accept", digest="0" * 64)
    p2, findings = build(RECORD_POLICY, web1_alone(reverted, held))
    assert sorted(f["rule"] for f in findings if f["rule"] in ("RB-07", "RB-08", "RB-09", "RB-10") and f["status"] == "fail") == [
        "RB-07", "RB-08", "RB-09", "RB-10"]
    assert p2["hosts"]["web1"]["reconverge"]["rules"] == ["RB-07", "RB-08", "RB-09"]
    assert p2["hosts"]["web1"]["guest_firewall"]["rules"] == ["ISO-10", "RB-10"]
    step = p2["hosts"]["web1"]["ledger"]
    assert step["record"]["disabled_accounts"] == ["games", "lp"] and step["record"]["masked_services"] == ["telnet.socket"]
    assert step["epoch"] is True
    after = harden_ledger(step, held)
    assert after["epoch"] == held["epoch"] + 1
    for key in ("package_floors", "disabled_accounts", "masked_services", "firewall_digest", "retired_fingerprints"):
        assert after[key] == held[key], key


def test_missing_account_or_service_evidence_leaves_the_recorded_lists():
    p, _findings = build(RECORD_POLICY, web1_alone(E.guest_facts(1, accounts=None, services=None)))
    assert sorted(p["hosts"]["web1"]["ledger"]["record"]) == ["firewall_digest", "package_floors"]


def test_same_input_same_plan_whatever_the_order():
    for name in sorted(SCENARIOS):
        doc, make = SCENARIOS[name]
        pol = policy.load_policy(doc)
        ev = make()
        findings = engine.evaluate(pol, copy.deepcopy(ev), now=E.NOW)
        first = plan.build_plan(pol, ev, findings)
        assert plan.build_plan(pol, copy.deepcopy(ev), copy.deepcopy(findings)) == first, name
        shuffled = dict(ev, guests=dict(reversed(list(ev["guests"].items()))))
        assert plan.build_plan(pol, shuffled, list(reversed(findings))) == first, name
        assert list(first["hosts"]) == sorted(first["hosts"]), name
        assert first["steps"] == sum(1 for h in first["hosts"].values() for r in h if r != "ledger"), name


def test_plan_does_not_change_its_inputs():
    pol = policy.load_policy({"params": {"diversity": {"reseal": "all_but_one"}}})
    ev = clone_pair()
    findings = engine.evaluate(pol, copy.deepcopy(ev), now=E.NOW)
    before = copy.deepcopy((pol, ev, findings))
    plan.build_plan(pol, ev, findings)
    assert (pol, ev, findings) == before


# --- snapshots (RB-02, RB-03, RB-04, RB-13), revert watcher (RB-11), transient disks (RB-12) ---------

def test_snapshots_are_planned_per_domain_minus_pinned_and_current():
    p, findings = scenario("snapshots-opt-in")
    failing = sorted((f["rule"], f["subject"]["id"]) for f in findings if f["rule"] in SNAPSHOT_RULES and f["status"] == "fail")
    assert failing == [("RB-02", "hv1/db1"), ("RB-02", "hv1/mail1"), ("RB-02", "hv1/web1"), ("RB-03", "hv1/web1"),
                       ("RB-04", "hv1/db1"), ("RB-04", "hv1/mail1"), ("RB-04", "hv1/web1"), ("RB-13", "hv1/web1")]
    assert p["hosts"]["hv1"]["snapshot_policy"] == {
        # RB-03 (4 snapshots, limit 3) is served by the deletions the other rules plan.
        "rules": ["RB-02", "RB-03", "RB-04", "RB-13"], "subjects": ["hv1/web1"], "prune": True,
        "domains": {"web1": {"delete": ["mem1", "pre-upgrade"],
                             "why": {"mem1": "RB-13 memory-state snapshot",
                                     "pre-upgrade": "RB-02 older than 72h (100h); RB-04 older than security epoch 3"},
                             # what the module compares at run time (snapshot_policy: not_as_planned)
                             "uuid": WEB1_UUID, "created": {"mem1": E.NOW - 10 * 3600, "pre-upgrade": E.NOW - 100 * 3600}}}}
    # golden-base is pinned (*/golden-*), nightly is current: neither is planned, also not by RB-03.
    assert p["steps"] == 5  # + guest_firewall and service_lockdown on db1 and mail1 (web's sockets and ruleset)
    # db1's old base has a current child: deleting it would merge it into the child, so it stays.
    assert not_enforced(p, "RB-02") == [
        ("hv1/db1", "snapshots kept: base (has child snapshot(s) that stay: daily)"),
        ("hv1/mail1", "snapshots kept: old (current flag unknown: never deleted unless known not to be the current snapshot)")]
    assert not_enforced(p, "RB-04") == not_enforced(p, "RB-02")


def test_snapshot_rules_are_opt_in_and_prune_comes_from_the_policy():
    p, findings = build({}, snapshot_tree())
    assert "hv1" not in p["hosts"]
    assert not_enforced(p, "RB-13") == [("hv1/web1", "mode audit")]
    assert not_enforced(p, "RB-02") == [("hv1/db1", "mode audit"), ("hv1/mail1", "mode audit"), ("hv1/web1", "mode audit")]
    doc = copy.deepcopy(SNAPSHOTS_ENFORCED)
    doc["params"]["rollback"]["prune_snapshots"] = False
    p, _findings = build(doc, snapshot_tree())
    assert p["hosts"]["hv1"]["snapshot_policy"]["prune"] is False  # planned, reported by the module, deleted by none
    p, _findings = build({"mode": "audit", "rules": SNAPSHOTS_ENFORCED["rules"]}, snapshot_tree())
    assert p["hosts"] == {} and ("hv1/web1", "policy mode audit") in not_enforced(p, "RB-13")


def test_pinned_globs_match_domain_slash_snapshot():
    doc = copy.deepcopy(SNAPSHOTS_ENFORCED)
    doc["params"]["rollback"]["pinned_snapshots"] = ["*/golden-*", "web1/pre-*"]
    p, _findings = build(doc, snapshot_tree())
    assert p["hosts"]["hv1"]["snapshot_policy"]["domains"] == {
        "web1": {"delete": ["mem1"], "why": {"mem1": "RB-13 memory-state snapshot"}, "uuid": WEB1_UUID,
                 "created": {"mem1": E.NOW - 10 * 3600}}}
    assert ("hv1/web1", "snapshots kept: golden-base (pinned (*/golden-*)); pre-upgrade (pinned (web1/pre-*))") \
        in not_enforced(p, "RB-02")
    doc["params"]["rollback"]["pinned_snapshots"] = []
    p, _findings = build(doc, snapshot_tree())
    # Unpinned, golden-base is still a parent of the current nightly: it stays anyway.
    assert p["hosts"]["hv1"]["snapshot_policy"]["domains"]["web1"]["delete"] == ["mem1", "pre-upgrade"]
    with pytest.raises(policy.PolicyError, match=r"params\.rollback\.pinned_snapshots\[0\]: expected str"):
        policy.load_policy({"params": {"rollback": {"pinned_snapshots": [3]}}})
    assert policy.load_policy({})["params"]["rollback"]["pinned_snapshots"] == []


def test_rb03_deletes_the_oldest_that_can_go_until_the_limit():
    """Five independent snapshots (limit 3): the two oldest go; the current one never, whatever its age."""
    snaps = [snapshot("s%d" % i, 60 - i * 10) for i in range(1, 6)]
    snaps[0]["current"] = True  # s1, the oldest, is the current snapshot
    ev = E.fleet([E.domain("web1", snapshots=snaps)], {"web1": E.guest("web1", facts=E.guest_facts(1))})
    p, _findings = build({"rules": {"RB-03": {"mode": "enforce"}}}, ev)
    assert p["hosts"]["hv1"]["snapshot_policy"]["domains"]["web1"] == {
        "delete": ["s2", "s3"], "why": {"s2": "RB-03 beyond max_snapshots 3 (oldest first)",
                                        "s3": "RB-03 beyond max_snapshots 3 (oldest first)"},
        "uuid": WEB1_UUID, "created": {"s2": E.NOW - 40 * 3600, "s3": E.NOW - 30 * 3600}}
    assert p["hosts"]["hv1"]["snapshot_policy"]["rules"] == ["RB-03"]
    assert p["hosts"]["hv1"]["snapshot_policy"]["prune"] is False  # the shipped default


def test_rb03_counts_what_other_rules_delete():
    """A young memory-state snapshot deleted by RB-13 counts for RB-03: only one old one more goes."""
    snaps = [snapshot("a", 50), snapshot("b", 40), snapshot("c", 30), snapshot("m", 2, memory="internal"),
             snapshot("now", 1, current=True)]
    ev = E.fleet([E.domain("web1", snapshots=snaps)], {"web1": E.guest("web1", facts=E.guest_facts(1))})
    p, _findings = build({"rules": {"RB-03": {"mode": "enforce"}, "RB-13": {"mode": "enforce"}}}, ev)
    web1 = p["hosts"]["hv1"]["snapshot_policy"]["domains"]["web1"]
    assert web1["delete"] == ["a", "m"] and web1["why"]["m"] == "RB-13 memory-state snapshot"


def test_choose_snapshots_deletes_leaves_first_and_never_a_parent_that_keeps_children():
    # a -> b -> c -> d (current), a -> e; limit 3: only the leaf e can go.
    parents = {"b": "a", "c": "b", "d": "c", "e": "a"}
    chain = [dict(name=n, creation_time=t, parent=parents.get(n), current=(n == "d"))
             for n, t in (("a", 1), ("b", 2), ("c", 3), ("d", 4), ("e", 5))]
    delete, refused = plan.choose_snapshots("vm", chain, {"a": ["RB-02 old"], "b": ["RB-02 old"]}, max_count=3)
    assert delete == {"e": "RB-03 beyond max_snapshots 3 (oldest first)"}
    assert refused == {"a": "has child snapshot(s) that stay: b", "b": "has child snapshot(s) that stay: c"}
    # A parent goes when all its children go too.
    delete, refused = plan.choose_snapshots("vm", chain, {"b": ["x"], "c": ["y"]}, pinned=["vm/d"])
    assert delete == {} and refused == {"b": "has child snapshot(s) that stay: c",
                                        "c": "has child snapshot(s) that stay: d"}
    chain[3]["current"] = False
    chain[2]["current"] = True
    delete, refused = plan.choose_snapshots("vm", chain, {"d": ["x"], "e": ["y"], "zz": ["z"]})
    assert delete == {"d": "x", "e": "y"} and refused == {"zz": "no such snapshot"}
    # A run-time refusal (the module's: an external snapshot on an old libvirt) keeps the snapshot.
    delete, refused = plan.choose_snapshots("vm", chain, {"d": ["x"]}, refuse=lambda s: "external" if s["name"] == "d" else None)
    assert delete == {} and refused == {"d": "external"}


def test_failing_watcher_plans_the_revert_watcher_with_the_management_networks():
    p, _findings = scenario("watcher-down")
    assert p["hosts"]["hv1"]["revert_watcher"] == {"rules": ["RB-11"], "subjects": ["hv1"], "mgmt_networks": ["vmguard-mgmt"]}
    assert p["steps"] == 1
    p, _findings = build({"rules": {"RB-11": {"mode": "audit"}}}, watcher_down())
    assert "hv1" not in p["hosts"] and not_enforced(p, "RB-11") == [("hv1", "mode audit")]
    p, findings = build({}, E.fleet([E.domain("web1")], {"web1": E.guest("web1", facts=E.guest_facts(1))}))
    assert [f["status"] for f in findings if f["rule"] == "RB-11"] == ["pass"] and "hv1" not in p["hosts"]


def test_a_watcher_on_other_management_networks_is_installed_again_with_the_policys():
    # Installed with management_networks [mgmt]; the policy now says [oob]: the running watcher would keep the
    # wrong links up after a revert. RB-11 fails, and the existing revert_watcher step rewrites its configuration.
    ev = E.fleet([E.domain("web1")], {"web1": E.guest("web1", facts=E.guest_facts(1))},
                 host_ev=E.host(watcher=E.watcher(mgmt_networks=["mgmt"])))
    p, findings = build({"params": {"isolation": {"management_networks": ["oob"]}}}, ev)
    (f,) = [f for f in findings if f["rule"] == "RB-11"]
    assert f["status"] == "fail" and "management networks [mgmt] up, the policy's are [oob]" in f["message"]
    assert p["hosts"]["hv1"]["revert_watcher"] == {"rules": ["RB-11"], "subjects": ["hv1"], "mgmt_networks": ["oob"]}


def test_transient_disk_is_a_domain_policy_fix():
    p, findings = scenario("transient-disk")
    assert sorted((f["subject"]["id"], f["status"]) for f in findings if f["rule"] == "RB-12") == [
        ("hv1/mail1", "pass"), ("hv1/web1", "fail")]
    assert p["hosts"]["hv1"]["domain_policy"] == {"rules": ["RB-12"], "subjects": ["hv1/web1"], "fixes": ["RB-12"],
                                                  "domains": {"web1": {"RB-12": {}}}}


# --- isolation, leakage and visibility in the domain XML (issue 9) ---------------------------------

def test_leaky_domain_gets_every_domain_fix_with_its_parameters():
    p, findings = scenario("leaky-domain-devices-opt-in")
    failing = sorted(f["rule"] for f in findings if f["subject"]["id"] == "hv1/web1" and f["rule"] in DOMAIN_RULES_9
                     and f["status"] == "fail")
    assert failing == sorted(DOMAIN_RULES_9)
    entry = p["hosts"]["hv1"]["domain_policy"]
    assert entry["domains"]["web1"] == {
        "ISO-03": {"filter": "clean-traffic", "ip": "192.0.2.10", "management_networks": ["vmguard-mgmt"],
                   "nwfilters": ["clean-traffic", "clean-traffic-gateway"]},
        "ISO-04": {},
        "ISO-07": {"allowed_filesystems": []},
        "ISO-08": {"allowed_hostdevs": [], "vf_pool_networks": []},
        "ISO-11": {"allow_vsock": False, "allowed_shmem": ["ivshmem-ok"]},
        "LEAK-02": {}, "LEAK-03": {}, "LEAK-04": {}, "LEAK-07": {},
        "VIS-05": {"expires": "2027-06-30", "owner": "team-web", "service": "web"}}
    # stray (no inventory guest): its seclabel is fixed; its metadata has nothing to come from.
    assert entry["domains"]["stray"] == {"ISO-04": {}}
    assert not_enforced(p, "VIS-05") == [("hv1/stray", "no inventory data for its metadata")]
    assert entry["rules"] == sorted(DOMAIN_RULES_9) and entry["fixes"] == entry["rules"]


def test_the_planned_parameters_make_each_fixer_satisfy_its_check():
    """The plan's parameters, applied by the real fixers to the domain's XML, turn every failing rule into a pass."""
    etree = pytest.importorskip("lxml.etree")
    from ansible_collections.vmguard.hardening.plugins.module_utils.remediation import domfix
    doc, make = SCENARIOS["leaky-domain-devices-opt-in"]
    p, _findings = scenario("leaky-domain-devices-opt-in")
    fixes = p["hosts"]["hv1"]["domain_policy"]["domains"]["web1"]
    new, changes = domfix.apply(E.domain_xml("web1", **LEAKY_KW), fixes, etree)
    assert [c.split(":")[0] for c in changes] == sorted(DOMAIN_RULES_9)
    ev = make()
    d = domxml.parse_domain(new)
    d.update((k, v) for k, v in ev["hypervisors"]["hv1"]["domains"][0].items() if k not in d)
    ev["hypervisors"]["hv1"]["domains"][0] = d
    p2, findings = build(doc, ev)
    assert sorted((f["rule"], f["status"]) for f in findings if f["subject"]["id"] == "hv1/web1" and f["rule"] in DOMAIN_RULES_9) == [
        (rid, "pass") for rid in sorted(DOMAIN_RULES_9)]
    assert "web1" not in p2["hosts"]["hv1"]["domain_policy"]["domains"]


def test_device_removals_are_opt_in():
    p, _findings = build({}, leaky_domains())
    assert sorted(p["hosts"]["hv1"]["domain_policy"]["domains"]["web1"]) == [
        "ISO-03", "ISO-04", "LEAK-02", "LEAK-03", "LEAK-04", "LEAK-07", "VIS-05"]
    for rid in ("ISO-07", "ISO-08", "ISO-11"):
        assert not_enforced(p, rid) == [("hv1/web1", "mode audit")]


def test_iso04_needs_a_confining_lsm_on_the_host():
    p, findings = scenario("leaky-domain-no-lsm")
    assert [f["status"] for f in findings if f["rule"] == "ISO-04" and f["subject"]["id"] == "hv1/web1"] == ["fail"]
    assert not_enforced(p, "ISO-04") == [
        ("hv1", "cannot be enforced on this host: no AppArmor or SELinux"),  # the host finding (host_config)
        ("hv1/stray", "cannot be enforced on this host: no AppArmor or SELinux"),
        ("hv1/web1", "cannot be enforced on this host: no AppArmor or SELinux")]
    assert "ISO-04" not in p["hosts"]["hv1"]["domain_policy"]["domains"]["web1"]
    assert "stray" not in p["hosts"]["hv1"]["domain_policy"]["domains"]
    ev = leaky_domains()
    ev["hypervisors"]["hv1"]["host"]["security_models"] = None
    p, _findings = build({}, ev)
    assert ("hv1/web1", "cannot be enforced on this host: its security models were not collected") in not_enforced(p, "ISO-04")


def test_iso03_without_a_service_address_lets_clean_traffic_learn_it():
    ev = leaky_domains()
    del ev["guests"]["web1"]["vars"]["service_address"]
    p, _findings = build({}, ev)
    assert p["hosts"]["hv1"]["domain_policy"]["domains"]["web1"]["ISO-03"] == {
        "filter": "clean-traffic", "management_networks": [], "nwfilters": ["clean-traffic", "clean-traffic-gateway"]}


@pytest.mark.parametrize("address", ["192.0.2.10", "192.0.2.10/24", "192.0.2.10/32"])
def test_iso03_takes_the_service_address_with_or_without_its_prefix(address):
    # Inventories (the lab's among them) often write an interface's address as CIDR; clean-traffic's
    # IP parameter is the bare address. A refusal here left the filter off a whole domain.
    ev = leaky_domains()
    ev["guests"]["web1"]["vars"]["service_address"] = address
    p, _findings = build({}, ev)
    assert p["hosts"]["hv1"]["domain_policy"]["domains"]["web1"]["ISO-03"]["ip"] == "192.0.2.10"
    assert not not_enforced(p, "ISO-03")


@pytest.mark.parametrize("change, rule, reason", [
    (lambda ev: ev["guests"]["web1"]["vars"].update(service_address="2001:db8::10"), "ISO-03",
     "vmguard_service_address of web1 is '2001:db8::10', not an IPv4 address (clean-traffic's IP parameter)"),
    (lambda ev: ev["guests"]["web1"]["vars"].update(service_address="192.0.2.10/33"), "ISO-03",
     "vmguard_service_address of web1 is '192.0.2.10/33', not an IPv4 address (clean-traffic's IP parameter)"),
    (lambda ev: ev["guests"]["web1"]["vars"].update(expires="next year"), "VIS-05",
     "vmguard_expires of web1 is 'next year', not a date YYYY-MM-DD"),
    (lambda ev: ev["guests"]["web1"]["vars"].update(owner=None, expires=None, service=None), "VIS-05",
     "no inventory data for its metadata: web1 sets none of vmguard_owner, vmguard_service, vmguard_expires"),
])
def test_inventory_values_of_the_wrong_shape_are_not_enforced_with_the_reason(change, rule, reason):
    ev = leaky_domains()
    change(ev)
    p, _findings = build({}, ev)
    assert ("hv1/web1", reason) in not_enforced(p, rule)
    assert rule not in p["hosts"]["hv1"]["domain_policy"]["domains"]["web1"]
    # Enforceable but left: harden prints it under cannot_enforce_here, never only as a rule id.
    assert [e["by_choice"] for e in p["not_enforced"] if e["rule"] == rule and e["subject"] == "hv1/web1"] == [False]


def test_iso03_on_macvtap_only_is_not_enforced():
    xml_replace = {"<interface type='network'>\n      <source network='svc-web'/>":
                   "<interface type='direct'>\n      <source dev='eth1' mode='bridge'/>",
                   "<filterref filter='clean-traffic'/>": ""}
    ev = E.fleet([E.domain("web1", replace=xml_replace)], {"web1": E.guest("web1", facts=E.guest_facts(1))})
    p, findings = build({}, ev)
    assert [f["status"] for f in findings if f["rule"] == "ISO-03"] == ["fail"]
    why = "cannot be enforced: nwfilter does not apply to interfaces without a host tap device (type='direct')"
    assert not_enforced(p, "ISO-03") == [("hv1/web1", why)]
    assert "hv1" not in p["hosts"]


def test_iso03_filters_on_interfaces_without_a_tap_device_are_not_enforced():
    """The filter is there, on a macvtap interface and on a network that hands out SR-IOV VFs: ISO-03 fails (it filters
    nothing) and the fix, which adds clean-traffic where it is missing, would change nothing: not enforced, saying why."""
    xml_replace = {"<interface type='network'>\n      <source network='svc-web'/>":
                   "<interface type='direct'>\n      <source dev='eth1' mode='bridge'/>"}
    ev = E.fleet([E.domain("web1", replace=xml_replace)], {"web1": E.guest("web1", facts=E.guest_facts(1))})
    p, findings = build({}, ev)
    assert [f["status"] for f in findings if f["rule"] == "ISO-03"] == ["fail"]
    assert not_enforced(p, "ISO-03") == [("hv1/web1", "cannot be enforced: nwfilter does not apply to interfaces without a "
                                                      "host tap device (type='direct')")]
    ev = E.fleet([E.domain("web1")], {"web1": E.guest("web1", facts=E.guest_facts(1))})
    ev["hypervisors"]["hv1"]["networks"]["svc-web"].update(forward="hostdev", bridge=None)
    p, findings = build({}, ev)
    assert [f["status"] for f in findings if f["rule"] == "ISO-03"] == ["fail"]
    assert not_enforced(p, "ISO-03") == [("hv1/web1", "cannot be enforced: nwfilter does not apply to interfaces without a "
                                                      "host tap device (network svc-web: hostdev)")]


def test_iso08_removes_an_interface_on_an_sr_iov_vf_pool_unless_the_pool_is_allow_listed():
    from ansible_collections.vmguard.hardening.plugins.module_utils.remediation import domfix
    from lxml import etree
    ev = E.fleet([E.domain("web1")], {"web1": E.guest("web1", facts=E.guest_facts(1))})
    ev["hypervisors"]["hv1"]["networks"]["svc-web"].update(forward="hostdev", bridge=None)
    enforce = {"rules": {"ISO-08": {"mode": "enforce"}}}
    p, findings = build(enforce, ev)
    assert [f["status"] for f in findings if f["rule"] == "ISO-08"] == ["fail"]
    params = p["hosts"]["hv1"]["domain_policy"]["domains"]["web1"]["ISO-08"]
    assert params == {"allowed_hostdevs": [], "vf_pool_networks": ["svc-web"]}
    new, changes = domfix.apply(E.domain_xml("web1"), {"ISO-08": params}, etree)
    assert "SR-IOV VF pool" in " ".join(changes) and "svc-web" not in new
    p, findings = build(dict(enforce, params={"isolation": {"allowed_hostdevs": ["network:svc-web"]}}), ev)
    assert [f["status"] for f in findings if f["rule"] == "ISO-08"] == ["pass"]


def test_metadata_before_the_inventory_carries_owner_and_expiry():
    """Guest vars as the audit collects them today (service only): the service is set, the rest stays missing."""
    ev = leaky_domains()
    for key in ("owner", "expires", "service_address"):
        del ev["guests"]["web1"]["vars"][key]
    p, _findings = build({}, ev)
    assert p["hosts"]["hv1"]["domain_policy"]["domains"]["web1"]["VIS-05"] == {"service": "web"}


def test_an_expiry_given_as_a_yaml_date_is_written_as_yyyy_mm_dd():
    import datetime
    ev = leaky_domains()
    ev["guests"]["web1"]["vars"]["expires"] = datetime.date(2027, 6, 30)
    p, _findings = build({}, ev)
    assert p["hosts"]["hv1"]["domain_policy"]["domains"]["web1"]["VIS-05"]["expires"] == "2027-06-30"


# --- reconverge a rolled-back guest (RB-05, RB-07, RB-08, RB-09; the ledger step moves the epoch) -------

RECONVERGED = ("RB-07", "RB-08", "RB-09")
ROLLED_BACK = ("RB-05",) + RECONVERGED


def test_rolled_back_guest_gets_one_reconverge_step_and_a_new_epoch():
    p, findings = scenario("rolled-back")
    web1 = dict((f["rule"], f) for f in findings if f["subject"]["id"] == "web1")
    assert [web1[r]["status"] for r in ("RB-05",) + RECONVERGED] == ["fail"] * 4
    assert p["hosts"]["web1"]["reconverge"] == {
        "rules": ["RB-05", "RB-07", "RB-08", "RB-09"], "subjects": ["web1"], "lock_accounts": ["games"],
        "packages": {"openssl": OPENSSL_FLOOR}, "mask_services": ["telnet.socket"]}
    # RB-05's part of the reconverge is the epoch move, which the ledger step makes.
    assert not_enforced(p, "RB-05") == []
    led = p["hosts"]["web1"]["ledger"]
    assert led["epoch"] is True and p["steps"] == 1
    # What the guest holds now lowers nothing the ledger records (the rollback's names and floor stay).
    assert led["record"]["disabled_accounts"] == ["games"] and led["record"]["masked_services"] == ["telnet.socket"]
    assert led["record"]["package_floors"]["openssl"] == OPENSSL_OLD  # the ledger's merge keeps the higher floor


def test_reconverge_carries_only_what_fails():
    """Only openssl rolled back: the step upgrades it and locks and masks nothing."""
    facts = rolled_back_facts(epoch=3, services=E.guest_facts(1)["services"])
    facts["accounts"][-1] = games()
    p, findings = build(ROLLBACK_POLICY, E.fleet([E.domain("web1", ledger=E.ledger())], {"web1": E.guest("web1", facts=facts)}))
    assert sorted((f["rule"], f["status"]) for f in findings if f["rule"] in ("RB-05",) + RECONVERGED) == [
        ("RB-05", "pass"), ("RB-07", "pass"), ("RB-08", "fail"), ("RB-09", "pass")]
    assert p["hosts"]["web1"]["reconverge"] == {"rules": ["RB-08"], "subjects": ["web1"], "lock_accounts": [],
                                                "packages": {"openssl": OPENSSL_FLOOR}, "mask_services": []}
    assert p["hosts"]["web1"]["ledger"]["epoch"] is True


def test_reconverge_in_audit_mode_is_not_enforced():
    doc = copy.deepcopy(ROLLBACK_POLICY)
    doc["rules"] = dict((r, {"mode": "audit"}) for r in ROLLED_BACK)
    p, _findings = build(doc, rolled_back())
    assert "reconverge" not in p["hosts"]["web1"] and p["steps"] == 0
    for rid in RECONVERGED:
        assert not_enforced(p, rid) == [("web1", "mode audit")]
    # The epoch stays put: given the new epoch, the rolled-back guest would pass RB-05 with nothing reconverged.
    assert p["hosts"]["web1"]["ledger"]["epoch"] is False
    assert not_enforced(p, "RB-05") == [("web1", "epoch not moved (the guest would pass RB-05 as reconverged): RB-05 fails "
                                                 "and is not remediated in this run (mode audit)"), ("web1", "mode audit")]
    assert all(e["by_choice"] for e in p["not_enforced"] if e["rule"] == "RB-05")
    p, _findings = build(dict(ROLLBACK_POLICY, mode="audit"), rolled_back())
    assert p["hosts"] == {} and all(not_enforced(p, rid) == [("web1", "policy mode audit")] for rid in ROLLED_BACK)


def test_waived_rollback_findings_plan_nothing():
    waivers = [{"rule": rid, "subject": "web1", "reason": "rebuild scheduled", "expires": "2099-01-01"} for rid in ROLLED_BACK]
    p, findings = build(dict(ROLLBACK_POLICY, waivers=waivers), rolled_back())
    assert [f["status"] for f in findings if f["rule"] in ROLLED_BACK] == ["waived"] * 4
    assert "reconverge" not in p["hosts"]["web1"]
    # Waived is accepted as it is, not fixed: the epoch does not move over it (RB-05 would pass, the waiver moot).
    assert [(e["rule"], e["reason"], e["by_choice"]) for e in p["not_enforced"] if e["rule"] in ROLLED_BACK] == [
        ("RB-05", "epoch not moved (the guest would pass RB-05 as reconverged): RB-05 is waived", True)]
    assert p["hosts"]["web1"]["ledger"]["epoch"] is False


def test_error_or_no_ledger_plans_no_reconverge():
    ev = rolled_back()
    ev["guests"]["web1"]["facts"].update(packages=None, accounts=None, accounts_error="/etc/shadow: permission denied")
    p, findings = build(ROLLBACK_POLICY, ev)
    assert sorted((f["rule"], f["status"]) for f in findings if f["rule"] in RECONVERGED) == [
        ("RB-07", "error"), ("RB-08", "error"), ("RB-09", "fail")]
    assert p["hosts"]["web1"]["reconverge"]["rules"] == ["RB-05", "RB-09"]
    assert not_enforced(p, "RB-07") == [("web1", "error: not evaluated")]
    never = E.fleet([E.domain("web1")], {"web1": E.guest("web1", facts=rolled_back_facts())})
    p, findings = build(ROLLBACK_POLICY, never)
    assert [f["status"] for f in findings if f["rule"] in RECONVERGED] == ["not_applicable"] * 3
    assert "reconverge" not in p["hosts"]["web1"]


def test_nothing_rolled_back_plans_no_reconverge():
    facts = E.guest_facts(1)
    facts["accounts"].append(games())
    p, findings = build(ROLLBACK_POLICY, E.fleet([E.domain("web1", ledger=E.ledger())], {"web1": E.guest("web1", facts=facts)}))
    assert [f["status"] for f in findings if f["rule"] in ("RB-05",) + RECONVERGED] == ["pass"] * 4
    assert "reconverge" not in p["hosts"]["web1"] and p["steps"] == 0


def test_the_reconverged_guest_passes_and_the_next_harden_changes_nothing():
    """Harden, revert, harden: the guest role does what the reconverge step says (games locked with expiry day 1,
    openssl upgraded past its floor, telnet.socket masked) and the ledger step moves the epoch; the audit after that
    passes RB-05/07/08/09, and the harden after that plans nothing and keeps the ledger."""
    good = E.guest_facts(1, epoch=None)
    good["accounts"].append(games())
    p, _findings = build(ROLLBACK_POLICY, web1_alone(good))
    held = harden_ledger(p["hosts"]["web1"]["ledger"])
    p, _findings = build(ROLLBACK_POLICY, web1_alone(rolled_back_facts(epoch=held["epoch"] - 1), held))
    step = p["hosts"]["web1"]["reconverge"]
    assert (step["lock_accounts"], step["packages"], step["mask_services"]) == (["games"], {"openssl": OPENSSL_FLOOR},
                                                                                ["telnet.socket"])
    held2 = harden_ledger(p["hosts"]["web1"]["ledger"], held)
    assert held2["epoch"] == held["epoch"] + 1 and held2["package_floors"]["openssl"] == OPENSSL_FLOOR
    # The guest after the role: what the user, apt and systemd_service tasks leave, and the epoch file.
    after = rolled_back_facts(epoch=held2["epoch"], packages={"openssl": "3.0.16-1~deb12u1", "openssh-server": "1:9.2p1-2+deb12u5"},
                              services={"enabled": ["ssh.service", "nginx.service"], "masked": ["telnet.socket"]})
    after["accounts"][-1] = dict(games(locked=False), password_locked=True, expired=True, locked=True)  # shell kept
    p, findings = build(ROLLBACK_POLICY, web1_alone(after, held2))
    assert [f["status"] for f in findings if f["rule"] in ("RB-05",) + RECONVERGED] == ["pass"] * 4
    assert "reconverge" not in p["hosts"]["web1"] and p["steps"] == 0
    # The upgrade raised the floor (recorded with a new epoch); the run after that changes nothing.
    held3 = harden_ledger(p["hosts"]["web1"]["ledger"], held2)
    assert held3["package_floors"]["openssl"] == "3.0.16-1~deb12u1"
    after["epoch"] = held3["epoch"]
    p, _findings = build(ROLLBACK_POLICY, web1_alone(after, held3))
    assert p["hosts"]["web1"] == {"ledger": dict(p["hosts"]["web1"]["ledger"], epoch=False)}
    assert harden_ledger(p["hosts"]["web1"]["ledger"], held3) == held3


def test_iso11_a_shared_memory_backing_file_is_not_enforced_while_the_channels_go():
    """The ISO-11 fixer removes <shmem> and <vsock>; a memory backing file shared with another domain stays (removing
    guest memory is a person's choice): not enforced, named, and the channels of the same domain still go."""
    nvdimm = ("<memory model='nvdimm' access='shared'><source><path>/pmem/one.img</path></source>"
              "<target><size unit='KiB'>524288</size><node>0</node></target></memory>")
    vsock = "<vsock model='virtio'><cid auto='yes'/></vsock>"
    ev = E.fleet([E.domain("web1", extra=nvdimm + vsock), E.domain("mail1", "mail", extra=nvdimm)])
    p, findings = build({"rules": {"ISO-11": {"mode": "enforce"}}}, ev)
    assert sorted(f["subject"]["id"] for f in findings if f["rule"] == "ISO-11" and f["status"] == "fail") == [
        "hv1/mail1", "hv1/web1"]
    domains = p["hosts"]["hv1"]["domain_policy"]["domains"]
    assert domains["web1"]["ISO-11"] == {"allowed_shmem": [], "allow_vsock": False}  # the vsock goes
    assert "ISO-11" not in domains.get("mail1", {})  # nothing the fixer could remove
    reasons = dict(not_enforced(p, "ISO-11"))
    assert reasons["hv1/mail1"].startswith("cannot be enforced: a memory device backed by a file another domain maps "
                                           "(nvdimm /pmem/one.img shared with hv1/web1)")
    assert "hv1/web1" in reasons
