"""The planner's host_config step (ISO-04 and LEAK-04 host parts, ISO-05, LEAK-01, LEAK-06, LEAK-08, and the
nwfilters ISO-03's domain fixes reference), on the real findings of engine.evaluate."""

from ansible_collections.vmguard.hardening.plugins.module_utils.audit.rules import RULES, remediation_for

from . import evidence as E
from .test_plan import HOST_CONFIG_POLICY, LEAKY_QEMU_CONF, build, leaky_host, not_enforced, scenario


def test_a_leaky_host_gets_one_host_config_step_with_every_setting():
    p, findings = scenario("leaky-host")
    assert sorted(f["rule"] for f in findings if f["subject"]["id"] == "hv1" and f["status"] == "fail") == [
        "ISO-04", "ISO-05", "LEAK-01", "LEAK-04", "LEAK-06", "LEAK-08"]
    assert p["hosts"]["hv1"]["host_config"] == {
        "rules": ["ISO-04", "ISO-05", "LEAK-01", "LEAK-04", "LEAK-06", "LEAK-08"], "subjects": ["hv1"],
        "qemu_conf": {"user": "libvirt-qemu", "group": "libvirt-qemu", "seccomp_sandbox": 1, "dump_guest_core": 0,
                      "migrate_tls_force": 1, "security_driver": None},
        "daemon_conf": {"listen_tcp": 0, "unix_sock_rw_perms": "0770", "unix_sock_group": "libvirt", "unix_sock_admin_perms": "0700"},
        "image_dirs": ["/srv/vm", "/var/lib/libvirt/images"], "image_files": [], "qemu_gid": 64055, "nwfilters": []}
    assert p["steps"] == 1


def test_host_parts_of_host_dom_rules_go_to_host_config_and_domains_to_domain_policy():
    assert remediation_for("LEAK-04", "hypervisor")["remediation"] == "host_config"
    assert remediation_for("LEAK-04", "domain")["remediation"] == "domain_policy"
    assert remediation_for("ISO-05", "hypervisor") is RULES["ISO-05"].remediated_by
    assert remediation_for("VIS-01", "fleet") is None


def test_migrate_tls_force_is_opt_in():
    p, _findings = build({}, leaky_host())
    assert "migrate_tls_force" not in p["hosts"]["hv1"]["host_config"]["qemu_conf"]
    assert not_enforced(p, "LEAK-08") == [("hv1", "mode audit")]


def test_iso04_host_part_is_not_enforceable_without_an_lsm():
    p, _findings = build(HOST_CONFIG_POLICY, leaky_host(lsm={"apparmor": False, "selinux": False}))
    assert not_enforced(p, "ISO-04") == [("hv1", "cannot be enforced on this host: no AppArmor or SELinux")]
    assert "security_driver" not in p["hosts"]["hv1"]["host_config"]["qemu_conf"]


def test_iso05_nothing_to_write_when_only_old_processes_run_as_root():
    qc = dict(E.host()["qemu_conf"])
    procs = [{"pid": 7, "uid": 0, "user": "root", "name": "web1", "uuid": None}]
    p, findings = build({}, leaky_host(qemu_conf=qc, qemu_processes=procs))
    assert [f["status"] for f in findings if f["rule"] == "ISO-05"] == ["fail"]
    why = ("qemu.conf already sets an unprivileged user and the seccomp sandbox: "
           "QEMU processes started before that still run as root until their domains restart")
    assert not_enforced(p, "ISO-05") == [("hv1", why)]


def test_iso05_unknown_default_account_is_not_guessed():
    qc = dict(LEAKY_QEMU_CONF, qemu_user_default=None)
    p, _findings = build({}, leaky_host(qemu_conf=qc))
    assert not_enforced(p, "ISO-05") == [("hv1", "cannot be enforced: the distribution's unprivileged QEMU account is unknown")]


def test_a_passing_host_plans_no_host_config_and_audit_mode_plans_nothing():
    p, _findings = build({}, E.fleet([E.domain("web1")], {"web1": E.guest("web1", facts=E.guest_facts(1))}))
    assert "host_config" not in p["hosts"].get("hv1", {})
    p, _findings = build({"mode": "audit"}, leaky_host())
    assert "host_config" not in p["hosts"].get("hv1", {})
    assert ("hv1", "policy mode audit") in not_enforced(p, "LEAK-06")


def test_tls_without_verification_is_turned_off():
    p, _findings = build({}, leaky_host(daemon_confs={"libvirtd.conf": {"tls_no_verify_certificate": "1"}},
                                        tcp_listeners=[{"port": 16514, "tls": True, "what": "tcp 0.0.0.0:16514"}]))
    assert p["hosts"]["hv1"]["host_config"]["daemon_conf"]["tls_no_verify_certificate"] == 0


def test_domains_getting_clean_traffic_get_the_filter_ensured_on_their_host():
    p, _findings = scenario("leaky-domain-devices-opt-in")
    assert p["hosts"]["hv1"]["host_config"] == {
        "rules": ["ISO-03"], "subjects": ["hv1"], "qemu_conf": {}, "daemon_conf": {}, "image_dirs": [],
        "image_files": [], "qemu_gid": None, "nwfilters": ["clean-traffic"]}


def test_iso04_host_security_default_confined_0_is_removed_where_an_lsm_is_active():
    qc = dict(E.host()["qemu_conf"], security_default_confined="0")
    p, findings = build({}, leaky_host(qemu_conf=qc, security_models=["apparmor", "dac"]))
    assert [f["status"] for f in findings if f["rule"] == "ISO-04" and f["subject"]["kind"] == "hypervisor"] == ["fail"]
    assert p["hosts"]["hv1"]["host_config"]["qemu_conf"] == {"security_default_confined": None}
    p, _findings = build({}, leaky_host(qemu_conf=qc, lsm={"apparmor": False, "selinux": False}))
    assert not_enforced(p, "ISO-04") == [("hv1", "cannot be enforced on this host: no AppArmor or SELinux")]


def test_leak01_plans_libvirts_directories_and_disk_files_elsewhere_one_by_one():
    """A disk in /var/tmp: the file is planned, never its directory; a shared directory the rule flags is not
    enforced (chmodding /var/tmp would break its other users)."""
    images = [{"path": "/var/tmp/lab1.qcow2", "mode": 0o644, "uid": 0, "gid": 0, "size": 1, "referenced": True},
              {"path": "/var/lib/libvirt/images/web1.qcow2", "mode": 0o600, "uid": 0, "gid": 0, "size": 1,
               "referenced": True}]
    dirs = [{"path": "/var/lib/libvirt/images", "mode": 0o755, "uid": 0, "gid": 0, "shared": False},
            {"path": "/srv/scratch-pool", "mode": 0o1777, "uid": 0, "gid": 0, "shared": True}]
    p, _findings = build({}, leaky_host(images=images, image_dirs=dirs))
    step = p["hosts"]["hv1"]["host_config"]
    assert (step["image_dirs"], step["image_files"]) == (["/var/lib/libvirt/images"], ["/var/tmp/lab1.qcow2"])
    why = ("shared directory /srv/scratch-pool (sticky or world-writable, mode 1777): never chmodded, "
           "its other users would break")
    assert not_enforced(p, "LEAK-01") == [("hv1", why)]
