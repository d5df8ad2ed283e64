"""ISO-02 (shared networks) and ISO-06 (shared disks) planned for domain_policy, on realistic evidence and the
real findings; the planned fixes are then applied to the domains' XML (remediation/domfix.py) and the fleet
evaluated again: what was planned makes the rules pass."""

import copy

from lxml import etree

from ansible_collections.vmguard.hardening.plugins.module_utils.audit import engine, plan, policy
from ansible_collections.vmguard.hardening.plugins.module_utils.evidence import domxml
from ansible_collections.vmguard.hardening.plugins.module_utils.remediation import domfix

from . import evidence as E

EXTRA_DISK = ("<disk type='file' device='disk'><driver name='qemu' type='raw'/><source file='/srv//shared.img'/>"
              "<target dev='vdb' bus='virtio'/></disk>")
ON_WEB_NET = {"<source network='svc-mail'/>": "<source network='svc-web'/>"}
# The lab's naming: each service's own network is svc-<service> (evidence.CLEAN_DOMAIN).
SHARED_POLICY = {"params": {"isolation": {"service_network": "svc-{service}"}}, "rules": {"ISO-06": {"mode": "enforce"}}}


def _xmls(**kw):
    """{name: (service, domain XML)}: web1 on its own svc-web; mail1's service interface on web1's network; one
    extra disk image attached to both (the Molecule 'isolation' scenario)."""
    out = {"web1": ("web", E.domain_xml("web1", "web", extra=EXTRA_DISK)),
           "mail1": ("mail", E.domain_xml("mail1", "mail", extra=EXTRA_DISK, replace=ON_WEB_NET))}
    out.update(kw)
    return out


def _evidence(xmls, guests=True):
    domains = []
    for name, (_svc, xml) in sorted(xmls.items()):
        d = domxml.parse_domain(xml)
        d.update(state="running", persistent=True, autostart=False, snapshots=[], ledger=None, error=None, pid=None,
                 definition="both", inactive=None)
        domains.append(d)
    return E.fleet(domains, dict((n, E.guest(n, svc, facts=E.guest_facts(i)))
                                 for i, (n, (svc, _x)) in enumerate(sorted(xmls.items()), 1)) if guests else {})


def shared_network_and_disk():
    return _evidence(_xmls())


def _build(doc, ev):
    pol = policy.load_policy(doc)
    findings = engine.evaluate(pol, copy.deepcopy(ev), now=E.NOW, only={"ISO-02", "ISO-06"})
    # As audit_evaluate does for a --tags run: the rollback guards left out are evaluated for the planner alone.
    guards = engine.evaluate(pol, copy.deepcopy(ev), now=E.NOW, only=set(plan.ROLLBACK_GUARDS))
    return plan.build_plan(pol, ev, findings, guards=guards), findings


def _status(findings):
    return dict(((f["rule"], f["subject"]["id"]), f["status"]) for f in findings)


def _fixes(p):
    return (p["hosts"].get("hv1", {}).get("domain_policy") or {}).get("domains") or {}


def _not_enforced(p, rule):
    return sorted((e["subject"], e["reason"]) for e in p["not_enforced"] if e["rule"] == rule)


def test_shared_network_and_disk_plan_moves_mail_and_detaches_the_disk_from_both():
    p, findings = _build(SHARED_POLICY, shared_network_and_disk())
    assert _status(findings) == {("ISO-02", "hv1/web1"): "fail", ("ISO-02", "hv1/mail1"): "fail",
                                 ("ISO-06", "hv1/web1"): "fail", ("ISO-06", "hv1/mail1"): "fail"}
    assert _fixes(p) == {"mail1": {"ISO-02": {"management_networks": [], "network": "svc-mail", "move": ["network:svc-web"]},
                                   "ISO-06": {"detach": ["/srv/shared.img"]}},
                         "web1": {"ISO-06": {"detach": ["/srv/shared.img"]}}}
    # web1 is on its own service's network: it stays, mail1 leaves it.
    assert _not_enforced(p, "ISO-02") == [("hv1/web1", "on its own service's network svc-web: the domains of the other "
                                                       "services move off it")]


def test_a_disk_another_domain_attaches_from_its_next_start_is_detached_now():
    """web1 runs without the disk; its persistent definition (virsh attach-disk --config) attaches the one mail1
    runs on: ISO-06 fails for mail1 (live) and the plan detaches it from mail1."""
    ev = _evidence(_xmls(web1=("web", E.domain_xml("web1", "web"))))
    web1 = [d for d in ev["hypervisors"]["hv1"]["domains"] if d["name"] == "web1"][0]
    web1.update(definition="live", inactive=dict(domxml.parse_domain(E.domain_xml("web1", "web", extra=EXTRA_DISK)),
                                                 state="running", persistent=True, definition="persistent", inactive=None))
    p, findings = _build(SHARED_POLICY, ev)
    assert _status(findings)[("ISO-06", "hv1/mail1")] == "fail"
    assert _fixes(p)["mail1"]["ISO-06"] == {"detach": ["/srv/shared.img"]}


def test_the_domain_whose_next_start_attaches_the_disk_is_planned_to_let_go_of_it_too():
    """The same sharing seen from web1: only its persistent definition attaches mail1's disk. ISO-06 fails for web1
    (in the persistent definition) and the plan detaches it from web1 as well (the fixer edits that definition),
    instead of 'nothing shared found'; applied to web1's persistent XML, the disk is gone from it."""
    ev = _evidence(_xmls(web1=("web", E.domain_xml("web1", "web"))))
    web1 = [d for d in ev["hypervisors"]["hv1"]["domains"] if d["name"] == "web1"][0]
    persistent = E.domain_xml("web1", "web", extra=EXTRA_DISK)
    web1.update(definition="live", inactive=dict(domxml.parse_domain(persistent),
                                                 state="running", persistent=True, definition="persistent", inactive=None))
    p, findings = _build(SHARED_POLICY, ev)
    assert _status(findings)[("ISO-06", "hv1/web1")] == "fail"
    assert _fixes(p)["web1"]["ISO-06"] == {"detach": ["/srv/shared.img"]}
    assert not [s for s in p["not_enforced"] if s["subject"] == "hv1/web1" and s["rule"] == "ISO-06"]
    new, changes = domfix.apply(persistent, {"ISO-06": _fixes(p)["web1"]["ISO-06"]}, etree)
    assert changes and "/srv/shared.img" not in new


def test_planned_fixes_make_iso02_and_iso06_pass():
    xmls = _xmls()
    p, _findings = _build(SHARED_POLICY, _evidence(xmls))
    fixed = {}
    for name, (svc, xml) in xmls.items():
        new, changes = domfix.apply(xml, _fixes(p).get(name) or {}, etree)
        fixed[name] = (svc, new or xml)
        assert bool(changes) == (name in _fixes(p))
    again, findings = _build(SHARED_POLICY, _evidence(fixed))
    assert set(_status(findings).values()) == {"pass"}, [(f["subject"]["id"], f["rule"], f["message"]) for f in findings]
    assert _fixes(again) == {} and again["not_enforced"] == []
    assert "52:54:00" in fixed["mail1"][1] and "<source network=\"svc-mail\"/>" in fixed["mail1"][1]


def test_both_on_a_third_network_both_move_to_their_own():
    lan = {"<source network='svc-web'/>": "<source network='lan'/>"}
    xmls = {"web1": ("web", E.domain_xml("web1", "web", replace=lan)),
            "mail1": ("mail", E.domain_xml("mail1", "mail", replace={"<source network='svc-mail'/>": "<source network='lan'/>"}))}
    p, _findings = _build(SHARED_POLICY, _evidence(xmls))
    assert dict((n, f["ISO-02"]["network"]) for n, f in _fixes(p).items()) == {"web1": "svc-web", "mail1": "svc-mail"}
    assert all(f["ISO-02"]["move"] == ["network:lan"] for f in _fixes(p).values())


def test_bridge_segment_moves_and_the_default_template_names_the_network():
    br = {"<interface type='network'>": "<interface type='bridge'>", "<source network='svc-mail'/>": "<source bridge='br0'/>"}
    brw = {"<interface type='network'>": "<interface type='bridge'>", "<source network='svc-web'/>": "<source bridge='br0'/>"}
    xmls = {"web1": ("web", E.domain_xml("web1", "web", replace=brw)), "mail1": ("mail", E.domain_xml("mail1", "mail", replace=br))}
    p, _findings = _build({}, _evidence(xmls))
    assert _fixes(p)["mail1"]["ISO-02"] == {"management_networks": [], "network": "vmguard-svc-mail", "move": ["bridge:br0"]}


def test_unknown_service_and_macvtap_are_not_enforced():
    stray = E.domain_xml("stray", "web", replace={"<vmguard:service>web</vmguard:service>": "",
                                                  "<source network='svc-web'/>": "<source network='svc-mail'/>"})
    xmls = {"mail1": ("mail", E.domain_xml("mail1", "mail")), "stray": (None, stray)}
    ev = _evidence(xmls)
    ev["guests"] = {"mail1": E.guest("mail1", "mail", facts=E.guest_facts(1))}
    p, findings = _build(SHARED_POLICY, ev)
    assert _status(findings)[("ISO-02", "hv1/stray")] == "fail"
    assert "stray" not in _fixes(p)
    assert [r for s, r in _not_enforced(p, "ISO-02") if s == "hv1/stray"] == [
        "cannot be enforced: the domain's service is unknown (no vmguard_service in the inventory, no vmguard metadata "
        "service): no network to move it to"]
    direct = {"<interface type='network'>": "<interface type='direct'>", "<source network='svc-%s'/>": "<source dev='eth0' mode='bridge'/>"}
    xmls = dict((n, (s, E.domain_xml(n, s, replace=dict((k.replace("%s", s), v) for k, v in direct.items()))))
                for n, s in (("web1", "web"), ("mail1", "mail")))
    p, findings = _build(SHARED_POLICY, _evidence(xmls))
    assert _status(findings)[("ISO-02", "hv1/web1")] == "fail" and _fixes(p) == {}
    assert all("macvtap" in r for _s, r in _not_enforced(p, "ISO-02"))


def test_iso06_is_opt_in_and_never_detaches_a_boot_disk():
    p, _findings = _build({"params": SHARED_POLICY["params"]}, shared_network_and_disk())
    assert all("ISO-06" not in f for f in _fixes(p).values())
    assert [r for _s, r in _not_enforced(p, "ISO-06")] == ["mode audit", "mode audit"]
    boot = {"/var/lib/libvirt/images/%s.qcow2": "/srv/one-image.qcow2"}
    xmls = dict((n, (s, E.domain_xml(n, s, replace=dict((k % n, v) for k, v in boot.items())))) for n, s in (("web1", "web"), ("mail1", "mail")))
    p, findings = _build(SHARED_POLICY, _evidence(xmls))
    assert _status(findings)[("ISO-06", "hv1/web1")] == "fail" and _fixes(p) == {}
    assert [r for _s, r in _not_enforced(p, "ISO-06")] == [
        "cannot be enforced: boot disk shared: give the domain its own image (/srv/one-image.qcow2)"] * 2


def test_iso06_a_boot_order_disk_is_not_planned_and_the_other_fixes_of_the_domain_are():
    # web1 boots from its second disk (<boot order='1'/>), the image mail1 also attaches (as a data disk); web1's
    # console is open too. The planner uses the fixer's definition of a boot disk: web1 keeps the disk (not_enforced),
    # gets its LEAK-02 fix and the other shared disk detached; mail1 lets go of the image. The plan applies cleanly.
    shared = ("<disk type='file' device='disk'><source file='/srv/shared/boot.img'/><target dev='vdb' bus='virtio'/>"
              "%s</disk>")
    other = EXTRA_DISK.replace("vdb", "vdc")
    open_console = {"listen='127.0.0.1'": "listen='0.0.0.0'"}
    xmls = {"web1": ("web", E.domain_xml("web1", "web", extra=shared % "<boot order='1'/>" + other,
                                         replace=open_console)),
            "mail1": ("mail", E.domain_xml("mail1", "mail", extra=shared % "" + other))}
    ev = _evidence(xmls)
    pol = policy.load_policy(SHARED_POLICY)
    p = plan.build_plan(pol, ev, engine.evaluate(pol, copy.deepcopy(ev), now=E.NOW, only={"ISO-06", "LEAK-02"}))
    assert _fixes(p) == {"web1": {"ISO-06": {"detach": ["/srv/shared.img"]}, "LEAK-02": {}},
                         "mail1": {"ISO-06": {"detach": ["/srv/shared.img", "/srv/shared/boot.img"]}}}
    assert _not_enforced(p, "ISO-06") == [
        ("hv1/web1", "cannot be enforced: boot disk shared: give the domain its own image (/srv/shared/boot.img)")]
    for name, (_svc, xml) in xmls.items():
        refused = []
        _new, changes = domfix.apply(xml, _fixes(p)[name], etree, refused)
        assert refused == [] and len(changes) == len(_fixes(p)[name])


def test_iso06_within_one_service_is_left_to_a_person():
    xmls = {"web1": ("web", E.domain_xml("web1", "web", extra=EXTRA_DISK)),
            "web2": ("web", E.domain_xml("web2", "web", extra=EXTRA_DISK))}
    p, findings = _build(SHARED_POLICY, _evidence(xmls))
    assert _status(findings)[("ISO-06", "hv1/web1")] == "fail" and _fixes(p) == {}
    assert all("shared within service web" in r and "a person's choice" in r for _s, r in _not_enforced(p, "ISO-06"))
    ro = EXTRA_DISK.replace("</disk>", "<readonly/></disk>")
    xmls = {"web1": ("web", E.domain_xml("web1", "web", extra=ro)), "web2": ("web", E.domain_xml("web2", "web", extra=ro))}
    p, findings = _build(SHARED_POLICY, _evidence(xmls))
    assert _status(findings)[("ISO-06", "hv1/web1")] == "pass" and p["not_enforced"] == []
