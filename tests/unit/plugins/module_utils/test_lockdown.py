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


def proc_tree(tmp_path, procs=None, tcp=None, tcp6=None, udp=None):
    procs, tcp, tcp6, udp = (PROCS if procs is None else procs, TCP if tcp is None else tcp,
                             TCP6 if tcp6 is None else tcp6, UDP if udp is None else udp)
    proc = tmp_path / "proc"
    (proc / "net").mkdir(parents=True)
    (proc / "net" / "tcp").write_text(TCP_HEAD + "".join(line4(i, a, "0A", n) for i, (a, n) in enumerate(tcp))
                                      + line4(99, "0A01000A:0016", "01", "1999"))  # an established connection
    (proc / "net" / "tcp6").write_text(TCP6_HEAD + "".join(line6(i, a, "0A", n) for i, (a, n) in enumerate(tcp6)))
    (proc / "net" / "udp").write_text(TCP_HEAD + "".join(line4(i, a, "07", n) for i, (a, n) in enumerate(udp)))
    (proc / "net" / "udp6").write_text(TCP6_HEAD)
    for pid, comm, cgroup, inodes in procs:
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


def test_the_units_that_bring_up_the_network_are_never_stopped(tmp_path):
    """ISC dhclient, run by ifupdown in ifup@<if>.service, binds a random UDP port besides 68: stopping, disabling and
    masking that unit (as the lockdown did) runs ifdown, releases the lease and keeps the interface down after a
    reboot - the management connection with it. Such a listener is unmanaged (not enforced), its unit untouched."""
    procs = [p if p[0] != 801 else (801, "dhclient", "0::/system.slice/ifup@enp1s0.service\n", ["4001", "4002"])
             for p in PROCS]
    found = lockdown.scan(proc_tree(tmp_path, procs=procs, udp=UDP + [("00000000:A0F2", "4002")]),
                          lockdown.parse_list_sockets(LIST_SOCKETS))
    d = lockdown.decide(found, [80, 443, 22], [68, 546], [22])
    assert sorted(d["stop"]) == ["app.service", "rpcbind.service", "rpcbind.socket"]  # not ifup@enp1s0.service
    assert ("udp/41202 0.0.0.0 dhclient", "belongs to the guest's network configuration (ifup@enp1s0.service): "
            "stopping it takes the guest and its management connection off the network, never stopped") in [
        (e["listener"], e["reason"]) for e in d["unmanaged"]]
    for unit in ("networking.service", "systemd-networkd.service", "NetworkManager.service", "dhcpcd@eth0.service"):
        assert lockdown.network_unit(unit)
    assert not lockdown.network_unit("nginx.service") and not lockdown.network_unit("ifupdown-hook.timer")


SCTP_EPS = (" ENDPT     SOCK   STY SST HBKT LPORT   UID INODE LADDRS\n"
            "       0        0 5   10  28   3868      0 8801 0.0.0.0 \n"            # diameter on every address
            "       0        0 1   10  30   2905      0 8802 127.0.0.1 10.0.0.5 \n"  # multi-homed: 10.0.0.5 counts
            "       0        0 5   10  31   9899      0 8803 127.0.0.1 \n")          # loopback only


def test_sctp_endpoints_are_listeners_too(tmp_path):
    """Only /proc/net/{tcp,udp}{,6} were read: an SCTP server (a Diameter peer on 3868) listened on every address
    and ISO-01 passed, the lockdown never saw it. /proc/net/sctp/eps (present once the sctp module is loaded) is read
    by both, the process tied by its socket inode as for TCP and UDP."""
    procs = PROCS + [(1600, "freeDiameterd", "0::/system.slice/freediameter.service\n", ["8801", "8802", "8803"])]
    root = proc_tree(tmp_path, procs=procs)
    os.makedirs(os.path.join(root, "proc", "net", "sctp"))
    with open(os.path.join(root, "proc", "net", "sctp", "eps"), "w") as f:
        f.write(SCTP_EPS)
    from ansible_collections.vmguard.hardening.plugins.module_utils.evidence import guestscan
    sctp = [(s["proto"], s["address"], s["port"], s["process"])
            for s in guestscan.listening(root) if s["proto"] == "sctp"]
    assert sctp == [("sctp", "10.0.0.5", 2905, "freeDiameterd"), ("sctp", "0.0.0.0", 3868, "freeDiameterd"),
                    ("sctp", "127.0.0.1", 9899, "freeDiameterd")]
    assert [(s["proto"], s["port"]) for s in lockdown.listeners(root)] == [
        (s["proto"], s["port"]) for s in guestscan.listening(root)]
    d = lockdown.decide(lockdown.scan(root, lockdown.parse_list_sockets(LIST_SOCKETS)), [80, 443, 22], [68, 546], [22])
    assert d["stop"]["freediameter.service"] == ["sctp/2905 10.0.0.5 freeDiameterd", "sctp/3868 0.0.0.0 freeDiameterd"]


def test_a_guest_within_its_allow_list_needs_nothing(tmp_path):
    found = [s for s in scan(tmp_path) if s["port"] in (22, 443, 68, 5432)]
    assert lockdown.decide(found, [80, 443, 22], [68, 546], [22]) == {"stop": {}, "unmanaged": [], "protected": [
        "ssh.service", "ssh.socket", "sshd.service", "sshd.socket"]}
    # DHCP client ports are UDP only: a TCP listener on 68 is a service.
    tcp68 = dict(found[0], proto="tcp", port=68, address="0.0.0.0", units=["evil.service"], reasons=[])
    assert lockdown.decide([tcp68], [22], [68], [22])["stop"] == {"evil.service": ["tcp/68 0.0.0.0 sshd"]}


def test_cgroup_unit_reads_v2_v1_and_no_systemd():
    assert lockdown.cgroup_unit("0::/system.slice/nginx.service\n") == ("nginx.service", "/system.slice/nginx.service", None)
    # Delegated sub-cgroups below the unit that name no unit (e.g. a container runtime's) still name the unit.
    assert lockdown.cgroup_unit("0::/system.slice/docker.service/payload\n")[0] == "docker.service"
    assert lockdown.cgroup_unit("0::/system.slice/foo.service/.control\n")[0] == "foo.service"
    hybrid = "12:pids:/system.slice/app.service\n1:name=systemd:/system.slice/app.service\n0::/system.slice/app.service\n"
    assert lockdown.cgroup_unit(hybrid)[0] == "app.service"
    v1 = "11:memory:/system.slice/cron.service\n1:name=systemd:/system.slice/cron.service\n"
    assert lockdown.cgroup_unit(v1)[0] == "cron.service"
    assert lockdown.cgroup_unit("0::/system.slice/system-postgresql.slice/postgresql@15-main.service\n")[0] == "postgresql@15-main.service"
    assert lockdown.cgroup_unit("0::/init.scope\n") == (None, "/init.scope", "runs in init.scope, not in a service unit")
    assert lockdown.cgroup_unit("9:name=systemd:/\n0::/\n") == (None, "/", "runs in no systemd unit (cgroup /)")
    assert lockdown.cgroup_unit("0::/system.slice\n") == (None, "/system.slice", "runs in no systemd unit (cgroup /system.slice)")
    assert lockdown.cgroup_unit("4:memory:/x\n") == (None, None, "runs in no systemd unit (cgroup unknown)")
    assert lockdown.cgroup_unit(None) == (None, None, "runs in no systemd unit (cgroup unknown)")


USER_NFT = "/user.slice/user-1000.slice/user@1000.service/app.slice/nftables.service"


def test_cgroup_unit_acts_only_on_the_system_managers_own_units():
    """Only the first unit below the root's slices is the system manager's; under user.slice, below another
    unit (delegated) or a scope, the name is not a system service and is never returned as one."""
    cases = [
        ("0::" + USER_NFT, "runs in user@1000.service's user manager (as its nftables.service): not a system unit, not stopped"),
        ("0::/user.slice/user-1000.slice/user@1000.service/init.scope",
         "runs in user@1000.service's user manager (as its init.scope): not a system unit, not stopped"),
        ("0::/user.slice/user-1000.slice/user@1000.service/app.slice",
         "runs in user@1000.service's user manager: not a system unit, not stopped"),
        ("0::/user.slice/user-1000.slice/session-3.scope", "runs in session-3.scope, not in a service unit"),
        ("0::/user.slice/auditd.service",
         "runs in auditd.service under user.slice (a user's slice, cgroup /user.slice/auditd.service): not stopped"),
        ("0::/system.slice/docker-abc.scope", "runs in docker-abc.scope, not in a service unit"),
        ("0::/machine.slice/machine-qemu\\x2d1\\x2dweb.scope", "runs in machine-qemu\\x2d1\\x2dweb.scope, not in a service unit"),
        ("0::/system.slice/foo.service/sub.service",
         "runs in sub.service, nested in foo.service's delegated cgroup (/system.slice/foo.service/sub.service): not a system unit, "
         "not stopped"),
        ("0::/system.slice/foo.service/payload/evil.slice/auditd.service",
         "runs in auditd.service, nested in foo.service's delegated cgroup (/system.slice/foo.service/payload/evil.slice/auditd.service): "
         "not a system unit, not stopped"),
        ("0::/lxc.payload.c1/system.slice/nginx.service", "runs in no systemd unit (cgroup /lxc.payload.c1/system.slice/nginx.service)"),
        # cgroup v1 (legacy): the name=systemd line, with controllers that say otherwise.
        ("12:pids:/user.slice/user-1000.slice/user@1000.service\n3:cpu,cpuacct:/user.slice\n1:name=systemd:" + USER_NFT,
         "runs in user@1000.service's user manager (as its nftables.service): not a system unit, not stopped"),
    ]
    for text, reason in cases:
        unit, path, why = lockdown.cgroup_unit(text + "\n")
        assert (unit, why) == (None, reason), text
        assert path == text.rsplit(":", 1)[-1]


# A guest where user 1000 ran `systemd-run --user --unit=nftables nc -l 4444` (and other look-alikes) next to a
# real system nginx: only nginx.service may be stopped; the others are reported with their reasons.
SPOOF_PROCS = [
    (512, "sshd", "0::/system.slice/ssh.service\n", ["1001"]),
    (620, "nginx", "0::/system.slice/nginx.service\n", ["2001"]),
    (2100, "nc", "0::" + USER_NFT + "\n", ["6101"]),
    (2101, "nc", "0::/user.slice/user-1000.slice/session-3.scope\n", ["6102"]),
    (2102, "python3", "0::/system.slice/docker-abc.scope\n", ["6103"]),
    (2103, "socat", "0::/system.slice/foo.service/sub.service\n", ["6104"]),
    (2104, "nc", "10:memory:/user.slice/user-1000.slice\n1:name=systemd:/user.slice/user-1000.slice/user@1000.service/"
                 "app.slice/auditd.service\n", ["6105"]),
]
SPOOF_TCP = [("00000000:0016", "1001"),   # 0.0.0.0:22 sshd
             ("00000000:20FB", "2001"),   # 0.0.0.0:8443 nginx
             ("00000000:115C", "6101"),   # 0.0.0.0:4444 nc as the user's "nftables.service"
             ("00000000:115D", "6102"),   # 0.0.0.0:4445 nc in a login session
             ("00000000:115E", "6103"),   # 0.0.0.0:4446 a container's scope
             ("00000000:115F", "6104"),   # 0.0.0.0:4447 sub.service delegated below foo.service
             ("00000000:1160", "6105")]   # 0.0.0.0:4448 nc as the user's "auditd.service" (cgroup v1)


def test_a_user_managers_unit_named_like_a_system_unit_is_never_stopped(tmp_path):
    found = by_port(lockdown.scan(proc_tree(tmp_path, SPOOF_PROCS, SPOOF_TCP, [], []), {}))
    assert found["tcp/8443"]["units"] == ["nginx.service"]
    assert found["tcp/4444"]["units"] == [] and found["tcp/4444"]["reasons"] == [
        "nc (pid 2100) runs in user@1000.service's user manager (as its nftables.service): not a system unit, not stopped"]
    d = lockdown.decide(list(found.values()), allowed_ports=[22, 443], client_ports=[68], management_ports=[22])
    assert d["stop"] == {"nginx.service": ["tcp/8443 0.0.0.0 nginx"]}
    assert "nftables.service" not in d["stop"] and "auditd.service" not in d["stop"]
    assert [(e["listener"], e["reason"]) for e in d["unmanaged"]] == [
        ("tcp/4444 0.0.0.0 nc",
         "nc (pid 2100) runs in user@1000.service's user manager (as its nftables.service): not a system unit, not stopped"),
        ("tcp/4445 0.0.0.0 nc", "nc (pid 2101) runs in session-3.scope, not in a service unit"),
        ("tcp/4446 0.0.0.0 python3", "python3 (pid 2102) runs in docker-abc.scope, not in a service unit"),
        ("tcp/4447 0.0.0.0 socat", "socat (pid 2103) runs in sub.service, nested in foo.service's delegated cgroup "
                                   "(/system.slice/foo.service/sub.service): not a system unit, not stopped"),
        ("tcp/4448 0.0.0.0 nc",
         "nc (pid 2104) runs in user@1000.service's user manager (as its auditd.service): not a system unit, not stopped")]


def test_a_system_service_sharing_its_socket_with_a_user_manager_process_is_not_stopped():
    """A socket also held by a process of a user's manager is unmanaged as a whole (as one held by a session)."""
    s = {"proto": "tcp", "address": "0.0.0.0", "port": 4444}
    cgroups = {700: "0::/system.slice/nftables.service\n", 2100: "0::" + USER_NFT + "\n"}
    units, reasons = lockdown.owners_of(s, [700, 2100], cgroups.get, lambda pid: "nc", {})
    assert units == {"nftables.service"} and len(reasons) == 1
    d = lockdown.decide([dict(s, process="nc", units=sorted(units), reasons=reasons)], [22], [], [22])
    assert d["stop"] == {} and d["unmanaged"] == [dict(listener="tcp/4444 0.0.0.0 nc", reason=reasons[0])]


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
