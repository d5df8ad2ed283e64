"""service_lockdown (ISO-01) run by ansible inside a private network namespace (vmg-h1-<pid>-<n>) against real
listening sockets: the real /proc/net -> /proc/<pid>/fd -> /proc/<pid>/cgroup mapping of this machine.

systemd is not PID 1 here, so the processes run in no unit: a listener outside the allow-list is
"not enforced" with its reason (the module fails naming it), one inside is left alone, loopback is
ignored. Stopping, disabling and masking through systemctl needs a running systemd and is exercised on
real guests by the lead's Molecule isolation scenario, not here.
"""

import os
import subprocess
import sys

import pytest

from test_guest_firewall import MISSING, Netns  # noqa: E402 (tests/integration is on sys.path)

pytestmark = pytest.mark.skipif(MISSING is not None, reason=MISSING or "")

COMM = os.path.basename(sys.executable)[:15]  # the process name the kernel shows (comm)
LISTEN = ("import socket, sys, time\n"
          "s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)\n"
          "s.bind((sys.argv[1], int(sys.argv[2]))); s.listen(1)\n"
          "print('ready', flush=True); time.sleep(120)\n")


@pytest.fixture
def ns():
    with Netns() as n:
        n.run(["ip", "link", "set", "lo", "up"])
        procs = []
        n.listen = lambda addr, port: procs.append(_listen(n, addr, port))
        try:
            yield n
        finally:
            for p in procs:
                p.kill()
                p.wait()


def _listen(ns, addr, port):
    p = subprocess.Popen(["ip", "netns", "exec", ns.name, sys.executable, "-c", LISTEN, addr, str(port)],
                         stdout=subprocess.PIPE, universal_newlines=True)
    assert p.stdout.readline().strip() == "ready"
    return p


def test_listener_outside_the_allow_list_in_no_unit_is_not_enforced(ns):
    ns.listen("0.0.0.0", 8080)
    ns.listen("127.0.0.1", 9090)
    res = ns.module("service_lockdown", {"allowed_ports": [22, 443], "client_ports": [68]})
    assert res.get("failed"), res
    assert res["msg"].startswith("not enforced (ISO-01): tcp/8080 0.0.0.0 %s" % COMM)
    (entry,) = res["unmanaged"]
    assert entry["listener"] == "tcp/8080 0.0.0.0 %s" % COMM
    assert " runs in no systemd unit (cgroup " in entry["reason"] and entry["reason"].startswith("%s (pid " % COMM)
    pid = int(entry["reason"].split("(pid ")[1].split(")")[0])
    assert open("/proc/%d/comm" % pid).read().strip() == COMM  # the real owner was found
    assert res["units"] == [] and [s["port"] for s in res["listening"]] == [8080]  # loopback 9090 not listed
    report = ns.module("service_lockdown", {"allowed_ports": [22, 443], "fail_on_unmanaged": False}, check=True)
    assert not report.get("failed") and report["changed"] is False and report["unmanaged"] == res["unmanaged"], report


def test_listeners_within_the_allow_list_change_nothing(ns):
    ns.listen("0.0.0.0", 443)
    ns.listen("127.0.0.1", 8080)
    res = ns.module("service_lockdown", {"allowed_ports": [22, 443]})
    assert not res.get("failed") and res["changed"] is False and res["unmanaged"] == [] and res["units"] == [], res
    dry = ns.module("service_lockdown", {"allowed_ports": [22, 443]}, check=True)
    assert dry["changed"] is False and dry["diff"]["before"] == ""


def test_bad_port_is_named(ns):
    res = ns.module("service_lockdown", {"allowed_ports": [22, 0]})
    assert res.get("failed") and res["msg"] == "allowed_ports[1]: 0 is not a port number (1-65535)"
