"""libvirtd killed (SIGKILL) during the audit's evidence collection and during domain_policy's
redefinitions, and domain_policy with its backup directory on a full file system - all against a
private libvirtd (conftest.PrivateLibvirtd), never the system one."""

import glob
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time

from conftest import (PREFIX, ROOT, ansible_playbook, domain_xml, libvirt, pid_alive, playbook_env, run_module, start_module,
                      wait_for)

XML_FLAGS = libvirt.VIR_DOMAIN_XML_INACTIVE | libvirt.VIR_DOMAIN_XML_SECURE


def names(n, tag):
    return ["%s%s-%03d" % (PREFIX, tag, i) for i in range(n)]


def kill_when_busy(daemon, settle, seconds=300):
    """Freeze the daemon (SIGSTOP) as soon as a client is connected, so a fast reader cannot finish meanwhile,
    and kill it ``settle`` seconds later (the module is then waiting on a call that never returns)."""
    def run():
        if wait_for(lambda: daemon.clients() > 0, seconds, 0.05):
            daemon.kill(signal.SIGSTOP)
            time.sleep(settle)
            daemon.kill()
    t = threading.Thread(target=run, daemon=True)
    t.start()
    return t


def test_libvirtd_killed_during_evidence_collection_errors_that_hypervisor_only(private_libvirtd, tmp_path):
    """One audit run of two hypervisors: the private libvirtd (1,500 domains) is killed while hypervisor_facts
    reads it; the test driver hypervisor is audited in full; the play finishes, reports, and prints no traceback."""
    d = private_libvirtd
    # Enough domains that the module is still reading when the kill lands (300 were read before a poll of the
    # daemon's clients saw the module on an idle machine).
    d.preload([(n, domain_xml(n)) for n in names(1500, "ev")])
    d.restart()
    conn = d.connect()
    assert len(conn.listAllDomains(0)) == 1500
    conn.close()  # not a client any more when the killer looks for the module's
    inv = tmp_path / "inventory.yml"
    host = "          ansible_connection: local\n          ansible_python_interpreter: %s\n" % sys.executable
    inv.write_text("all:\n  children:\n    vmguard_hypervisors:\n      hosts:\n"
                   "        hv-private:\n%s          vmguard_libvirt_uri: '%s'\n"
                   "        hv-test:\n%s          vmguard_libvirt_uri: 'test:///default'\n"
                   "    vmguard_guests:\n      hosts: {}\n" % (host, d.uri, host))
    killer = kill_when_busy(d, 0.05)
    p = subprocess.run([ansible_playbook(), "vmguard.hardening.audit", "-i", str(inv), "-e", "vmguard_audit_fail=false",
                        "-e", "vmguard_report_dir=%s" % (tmp_path / "report")], stdout=subprocess.PIPE,
                       stderr=subprocess.STDOUT, universal_newlines=True, env=playbook_env(), cwd=ROOT, check=False)
    killer.join(5)
    assert p.returncode == 0, p.stdout[-4000:]
    assert "Traceback" not in p.stdout, p.stdout[-4000:]
    # Killed: gone, or a zombie nobody reaped (libvirtd daemonizes; PID 1 here may not reap).
    assert not d.pid or not pid_alive(d.pid), "the daemon was not killed during the run"
    report = json.loads((tmp_path / "report" / "report.json").read_text())
    private = [f for f in report["findings"] if f["subject"]["id"] == "hv-private" or f["subject"]["id"].startswith("hv-private/")]
    test = [f for f in report["findings"] if f["subject"]["id"] == "hv-test" or f["subject"]["id"].startswith("hv-test/")]
    errors = [f for f in private if f["status"] == "error"]
    assert errors, "no error finding for the hypervisor whose libvirtd died"
    # The hypervisor as a whole is an error (its domains are unknown now), never a pass or a partial inventory.
    assert all(f["subject"] == {"kind": "hypervisor", "id": "hv-private"} for f in private), [
        f["subject"] for f in private if f["subject"]["kind"] != "hypervisor"][:3]
    lost = [f for f in errors if "cannot evaluate: " in f["message"] and d.uri in f["message"]]
    assert lost and len(lost) >= 25, [f["message"] for f in errors][:3]  # every domain rule, once for the host
    why = lost[0]["message"]
    assert ("lost the connection to %s after reading" % d.uri in why or "libvirt error while reading" in why
            or "cannot connect to" in why), why
    # The other hypervisor's domain is audited as usual, but for what it is compared with across hypervisors: the
    # dead one's domains are unknown, so its UUID and MACs are not proven unique (DIV-05), naming hv-private.
    dom = [f for f in test if f["subject"]["id"] == "hv-test/test"]
    unproven = [f for f in dom if f["status"] == "error" and "(hv-private/*): not proven" in f["message"]]
    assert [f["rule"] for f in unproven] == ["DIV-05"], [(f["rule"], f["message"]) for f in unproven]
    assert dom and all(f["status"] in ("pass", "fail", "not_applicable") for f in dom if f not in unproven), [
        (f["rule"], f["status"], f["message"]) for f in dom if f["status"] == "error"]
    print("evidence fault: %d error findings on hv-private (%s), %d findings on hv-test" % (len(errors), why, len(dom)))


def _without_genid(xml):
    return re.sub(r"\s*<genid>[^<]*</genid>", "", xml)


def test_libvirtd_killed_while_domain_policy_redefines_loses_no_definition(private_libvirtd, tmp_path):
    """domain_policy adds <genid/> (RB-01) to 300 domains; libvirtd is killed after some redefinitions. After a
    restart every domain exists with its old or its new definition, and each redefined one has its old
    definition backed up on disk, byte for byte."""
    d = private_libvirtd
    doms = names(300, "rd")
    d.preload([(n, domain_xml(n)) for n in doms])
    d.restart()
    conn = d.connect()
    old = dict((n, conn.lookupByName(n).XMLDesc(XML_FLAGS)) for n in doms)
    uuids = dict((n, conn.lookupByName(n).UUIDString()) for n in doms)
    conn.close()
    backup = str(tmp_path / "backup")
    proc = start_module("domain_policy", {"uri": d.uri, "fixes": ["RB-01"], "backup_dir": backup})
    assert wait_for(lambda: len(glob.glob(os.path.join(backup, "*.xml"))) >= 20, 60, 0.005), proc.communicate()
    d.kill()
    out, err = proc.communicate(timeout=120)
    assert "Traceback" not in err, err
    result = json.loads(out[out.index("{"):])
    assert result["failed"] is True and "domain_policy failed for" in result["msg"], result.get("msg")
    d.start()
    conn = d.connect()
    now = dict((dom.name(), dom.XMLDesc(XML_FLAGS)) for dom in conn.listAllDomains(0))
    assert sorted(now) == sorted(doms), "domains lost: %s" % sorted(set(doms) - set(now))
    new = [n for n in doms if now[n] != old[n]]
    for n in new:
        assert "<genid>" in now[n] and _without_genid(now[n]) == old[n], "%s: neither its old nor its new definition" % n
        backups = glob.glob(os.path.join(backup, uuids[n] + "-*.xml"))
        assert len(backups) == 1, n
        with open(backups[0]) as f:
            assert f.read() == old[n], "%s: the backup is not its old definition" % n
    assert new, "no domain was redefined before the kill"
    assert set(result["domains"]) <= set(new)  # reported redefined -> really redefined
    for n, failure in result["failed_domains"].items():
        assert failure["error"].startswith(("cannot read its definition", "backed up but not redefined")), failure
    assert len(result["domains"]) + len(result["failed_domains"]) <= len(doms)
    assert not glob.glob(os.path.join(backup, ".*")), "temporary files left in the backup directory"
    # The next run finishes the job.
    again, p = run_module("domain_policy", {"uri": d.uri, "fixes": ["RB-01"], "backup_dir": backup})
    assert again and not again.get("failed"), p.stderr or again
    assert all("<genid>" in dom.XMLDesc(XML_FLAGS) for dom in conn.listAllDomains(0))
    assert sorted(set(new) | set(again["domains"])) == sorted(doms)
    print("redefine fault: %d of %d redefined before the kill, %d reported failed, all finished by the next run" % (
        len(new), len(doms), len(result["failed_domains"])))


def test_backup_directory_full_refuses_to_redefine(private_libvirtd, tmp_path):
    """The backup directory is a 8 KiB tmpfs (in a mount namespace of the module's own) that is already full:
    domain_policy redefines nothing, says why for each domain, and leaves no temporary file."""
    d = private_libvirtd
    doms = names(3, "full")
    conn = d.connect()
    for n in doms:
        conn.defineXML(domain_xml(n))
    before = dict((n, conn.lookupByName(n).XMLDesc(XML_FLAGS)) for n in doms)
    backup = tempfile.mkdtemp(prefix=PREFIX + "backup-", dir=str(tmp_path))
    wrap = ["unshare", "--mount", "--propagation", "private", "sh", "-c",
            'mount -t tmpfs -o size=8k,mode=0700 %s "$0" && (head -c 1048576 /dev/zero > "$0/fill" 2>/dev/null; true) '
            '&& "$@"; rc=$?; ls -A "$0" >&2; exit $rc' % (PREFIX + "full"), backup]
    result, p = run_module("domain_policy", {"uri": d.uri, "fixes": ["RB-01"], "backup_dir": backup}, wrap=wrap)
    assert result is not None, p.stderr
    assert "Traceback" not in p.stderr, p.stderr
    assert result["failed"] is True and result["changed"] is False and result["domains"] == {}, result
    assert sorted(result["failed_domains"]) == sorted(doms)
    for n in doms:
        err = result["failed_domains"][n]["error"]
        assert err.startswith("not redefined: its backup cannot be written:") and "No space left on device" in err, err
        assert conn.lookupByName(n).XMLDesc(XML_FLAGS) == before[n]
    assert "not redefined: its backup cannot be written" in result["msg"]
    assert p.stderr.split() == ["fill"], "left in the full backup directory: %r" % p.stderr
