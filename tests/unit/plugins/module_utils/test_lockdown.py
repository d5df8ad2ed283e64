"""remediation/lockdown.py (ISO-01, module service_lockdown) on /proc trees built from real formats: the
listener -> process -> unit mapping and the decision of what to stop, disable and mask.

The tree is a Debian 12 guest with systemd 252 on cgroup v2 (`0::/system.slice/<unit>`), written the way
the kernel shows it: /proc/net/tcp{,6} and udp{,6} lines in the kernel's column layout (little-endian hex
addresses, state 0A = LISTEN, 07 = bound UDP), /proc/<pid>/fd/<n> symbolic links to socket:[inode],
/proc/<pid>/cgroup and comm. PID 1 holds rpcbind.socket's sockets (socket activation), as on a stock guest.
"""

import os

from ansible_collections.vmguard.hardening.plugins.module_utils.remediation import lockdown

TCP_HEAD = ("  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n")
TCP6_HEAD = ("  sl  local_address                         remote_address                        st tx_queue rx_queue tr "
             "tm->when retrnsmt   uid  timeout inode\n")
ANY6 = "00000000000000000000000000000000"
LO6 = "00000000000000000000000001000000"


def line4(n, addr_port, state, inode, uid=0):
    return ("%4d: %s 00000000:0000 %s 00000000:00000000 00:00000000 00000000 %5d        0 %s 1 0000000028d23127 100 0 0 10 0\n"
            % (n, addr_port, state, uid, inode))


def line6(n, addr_port, state, inode, uid=0):
    return ("%4d: %s %s:0000 %s 00000000:00000000 00:00000000 00000000 %5d        0 %s 1 0000000000000000 100 0 0 10 0\n"
            % (n, addr_port, ANY6, state, uid, inode))


# (pid, comm, cgroup text, [socket inodes])
PROCS = [
    (1, "systemd", "0::/init.scope\n", ["9001", "9002", "9003"]),
    (512, "sshd", "0::/system.slice/ssh.service\n", ["1001", "1002", "1003"]),
    (620, "nginx", "0::/system.slice/nginx.service\n", ["2001"]),
    (621, "nginx", "0::/system.slice/nginx.service\n", ["2001"]),
    (700, "python3", "0::/system.slice/app.service\n", ["3001"]),
    (733, "rpcbind", "0::/system.slice/rpcbind.service\n", ["9001", "9002", "9003"]),
    (801, "dhclient", "0::/system.slice/ifup@enp1s0.service\n", ["4001"]),
    (900, "postgres", "0::/system.slice/system-postgresql.slice/postgresql@15-main.service\n", ["5001"]),
    (1400, "nc", "0::/user.slice/user-1000.slice/session-3.scope\n", ["6001"]),
    (1500, "memcached", "0::/system.slice/memcached.service\n", ["7001"]),
    (1501, "memcached-tool", "0::/user.slice/user-1000.slice/session-3.scope\n", ["7001"]),
]
TCP = [("00000000:0016", "1001"),   # 0.0.0.0:22 sshd
       ("00000000:08AE", "1003"),   # 0.0.0.0:2222 sshd (a second port)
       ("00000000:01BB", "2001"),   # 0.0.0.0:443 nginx
       ("00000000:1F90", "3001"),   # 0.0.0.0:8080 python3 (app.service)
       ("00000000:006F", "9001"),   # 0.0.0.0:111 rpcbind.socket (PID 1 + rpcbind)
       ("0100007F:1538", "5001"),   # 127.0.0.1:5432 postgres (loopback: allowed)
       ("00000000:2328", "6001"),   # 0.0.0.0:9000 nc in a login session
       ("00000000:2CCB", "7001"),   # 0.0.0.0:11467 memcached, also held by a session process
       ("00000000:0019", "8001")]   # 0.0.0.0:25 held by no process
TCP6 = [(ANY6 + ":0016", "1002"), (LO6 + ":1F91", "3002")]
UDP = [("00000000:0044", "4001"), ("00000000:006F", "9002")]  # 68 dhclient, 111 rpcbind
LIST_SOCKETS = """/run/dbus/system_bus_socket     Stream   dbus.socket      dbus.service
0.0.0.0:111                     Stream   rpcbind.socket   rpcbind.service
0.0.0.0:111                     Datagram rpcbind.socket   rpcbind.service
[::]:111                        Stream   rpcbind.socket   rpcbind.service
/run/systemd/journal/stdout     Stream   systemd-journald.socket systemd-journald.service
kobject-uevent 1                Netlink  systemd-udevd-kernel.socket systemd-udevd.service
"""


def proc_tree(tmp_path):
    proc = tmp_path / "proc"
    (proc / "net").mkdir(parents=True)
    (proc / "net" / "tcp").write_text(TCP_HEAD + "".join(line4(i, a, "0A", n) for i, (a, n) in enumerate(TCP))
                                      + line4(99, "0A01000A:0016", "01", "1999"))  # an established connection
    (proc / "net" / "tcp6").write_text(TCP6_HEAD + "".join(line6(i, a, "0A", n) for i, (a, n) in enumerate(TCP6)))
    (proc / "net" / "udp").write_text(TCP_HEAD + "".join(line4(i, a, "07", n) for i, (a, n) in enumerate(UDP)))
    (proc / "net" / "udp6").write_text(TCP6_HEAD)
    for pid, comm, cgroup, inodes in PROCS:
        d = proc / str(pid)
        (d / "fd").mkdir(parents=True)
        (d / "comm").write_text(comm + "\n")
        (d / "cgroup").write_text(cgroup)
        os.symlink("/dev/null", str(d / "fd" / "0"))
        for i, inode in enumerate(inodes, 3):
            os.symlink("socket:[%s]" % inode, str(d / "fd" / str(i)))
    return str(tmp_path)


def scan(tmp_path):
    return lockdown.scan(proc_tree(tmp_path), lockdown.parse_list_sockets(LIST_SOCKETS))


def by_port(found):
    return dict(("%s/%d" % (s["proto"], s["port"]), s) for s in found)


def test_listeners_are_read_as_guestscan_reads_them(tmp_path):
    root = proc_tree(tmp_path)
    from ansible_collections.vmguard.hardening.plugins.module_utils.evidence import guestscan
    mine = [(s["proto"], s["address"], s["port"]) for s in lockdown.listeners(root)]
    theirs = [(s["proto"], s["address"], s["port"]) for s in guestscan.listening(root)]
    assert mine == theirs and len(mine) == len(TCP) + len(TCP6) + len(UDP)
    assert ("tcp", "::1", 8081) in mine and ("tcp", "127.0.0.1", 5432) in mine


def test_each_listener_is_tied_to_the_units_of_its_processes(tmp_path):
    found = by_port(scan(tmp_path))
    assert found["tcp/443"]["units"] == ["nginx.service"] and found["tcp/443"]["pids"] == [620, 621]
    assert found["tcp/8080"]["units"] == ["app.service"] and found["tcp/8080"]["process"] == "python3"
    assert found["tcp/111"]["units"] == ["rpcbind.service", "rpcbind.socket"] and found["tcp/111"]["reasons"] == []
    assert found["udp/111"]["units"] == ["rpcbind.service", "rpcbind.socket"]
    assert found["udp/68"]["units"] == ["ifup@enp1s0.service"]
    assert found["tcp/5432"]["units"] == ["postgresql@15-main.service"]
    assert found["tcp/9000"]["units"] == [] and found["tcp/9000"]["reasons"] == [
        "nc (pid 1400) runs in session-3.scope, not in a service unit"]
    assert found["tcp/11467"]["units"] == ["memcached.service"] and found["tcp/11467"]["reasons"] == [
        "memcached-tool (pid 1501) runs in session-3.scope, not in a service unit"]
    assert found["tcp/25"]["reasons"] == ["no process holds the socket (a kernel socket, or one of another PID namespace)"]


def test_decision_stops_what_listens_outside_and_never_the_ssh_server(tmp_path):
    d = lockdown.decide(scan(tmp_path), allowed_ports=[80, 443, 22], client_ports=[68, 546], management_ports=[22])
    assert d["stop"] == {"app.service": ["tcp/8080 0.0.0.0 python3"],
                         "rpcbind.service": ["tcp/111 0.0.0.0 rpcbind", "udp/111 0.0.0.0 rpcbind"],
                         "rpcbind.socket": ["tcp/111 0.0.0.0 rpcbind", "udp/111 0.0.0.0 rpcbind"]}
    assert [(e["listener"], e["reason"]) for e in d["unmanaged"]] == [
        ("tcp/11467 0.0.0.0 memcached", "memcached-tool (pid 1501) runs in session-3.scope, not in a service unit"),
        ("tcp/2222 0.0.0.0 sshd", "belongs to the management SSH server (ssh.service), never stopped"),
        ("tcp/25 0.0.0.0", "no process holds the socket (a kernel socket, or one of another PID namespace)"),
        ("tcp/9000 0.0.0.0 nc", "nc (pid 1400) runs in session-3.scope, not in a service unit")]
    assert "ssh.service" in d["protected"]


def test_the_unit_on_a_management_port_is_protected_whatever_its_name(tmp_path):
    """A management server named otherwise (dropbear.service on 22) is never stopped, also for its other ports."""
    found = scan(tmp_path)
    for s in found:
        if "ssh.service" in s["units"]:
            s["units"] = ["dropbear.service"]
    d = lockdown.decide(found, [80, 443, 22], [68], [22])
    assert "dropbear.service" not in d["stop"] and "dropbear.service" in d["protected"]
    assert ("tcp/2222 0.0.0.0 sshd", "belongs to the management SSH server (dropbear.service), never stopped") in [
        (e["listener"], e["reason"]) for e in d["unmanaged"]]


def test_a_guest_within_its_allow_list_needs_nothing(tmp_path):
    found = [s for s in scan(tmp_path) if s["port"] in (22, 443, 68, 5432)]
    assert lockdown.decide(found, [80, 443, 22], [68, 546], [22]) == {"stop": {}, "unmanaged": [], "protected": [
        "ssh.service", "ssh.socket", "sshd.service", "sshd.socket"]}
    # DHCP client ports are UDP only: a TCP listener on 68 is a service.
    tcp68 = dict(found[0], proto="tcp", port=68, address="0.0.0.0", units=["evil.service"], reasons=[])
    assert lockdown.decide([tcp68], [22], [68], [22])["stop"] == {"evil.service": ["tcp/68 0.0.0.0 sshd"]}


def test_cgroup_unit_reads_v2_v1_and_no_systemd():
    assert lockdown.cgroup_unit("0::/system.slice/nginx.service\n") == ("nginx.service", "/system.slice/nginx.service")
    # Delegated sub-cgroups below the unit (e.g. a container runtime's) still name the unit.
    assert lockdown.cgroup_unit("0::/system.slice/docker.service/payload\n")[0] == "docker.service"
    hybrid = "12:pids:/system.slice/app.service\n1:name=systemd:/system.slice/app.service\n0::/system.slice/app.service\n"
    assert lockdown.cgroup_unit(hybrid)[0] == "app.service"
    v1 = "11:memory:/system.slice/cron.service\n1:name=systemd:/system.slice/cron.service\n"
    assert lockdown.cgroup_unit(v1)[0] == "cron.service"
    assert lockdown.cgroup_unit("0::/init.scope\n")[0] == "init.scope"
    assert lockdown.cgroup_unit("9:name=systemd:/\n0::/\n") == (None, "/")
    assert lockdown.cgroup_unit("4:memory:/x\n") == (None, None)
    assert lockdown.cgroup_unit(None) == (None, None)


def test_list_sockets_output_is_parsed_by_type_and_port():
    got = lockdown.parse_list_sockets(LIST_SOCKETS)
    assert got == {("tcp", 111): {"rpcbind.socket", "rpcbind.service"}, ("udp", 111): {"rpcbind.socket", "rpcbind.service"}}
    assert lockdown.parse_list_sockets("[::]:22 Stream ssh.socket -\n") == {("tcp", 22): {"ssh.socket"}}


def test_pid1_socket_without_a_listed_unit_is_unmanaged():
    s = {"proto": "tcp", "address": "0.0.0.0", "port": 7777}
    units, reasons = lockdown.owners_of(s, [1], lambda pid: "", lambda pid: "systemd", {})
    assert units == set() and reasons == ["held by PID 1, but no socket unit lists tcp/7777"]


def test_loopback_in_every_notation():
    assert lockdown.loopback("127.0.0.1") and lockdown.loopback("::1") and lockdown.loopback("::ffff:127.0.0.5")
    assert not lockdown.loopback("::1a2b") and not lockdown.loopback("0.0.0.0") and not lockdown.loopback("garbage")
