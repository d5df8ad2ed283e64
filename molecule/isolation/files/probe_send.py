"""Run in a guest as root: send labelled UDP probes to an observer on the guest's service network.

  probe_send.py <own address/prefix> <observer address> <port>

genuine: from the guest's own address and MAC; spoof-ip: from another address of its subnet;
spoof-mac: from its own address but another MAC (set on the service NIC for the moment and put back).
Each probe is sent five times, after the guest's neighbour entry for the observer is flushed and
resolved anew from the address and MAC the probe uses: an entry left by an earlier run (an observer
with another MAC) would send the first seconds of probes to nobody, and a dropped probe would look
like a filtered one. Prints JSON: the interface used and what was sent.
"""

import ipaddress
import json
import socket
import subprocess
import sys
import time


def ip(*args):
    return subprocess.run(["ip"] + list(args), check=True, stdout=subprocess.PIPE, universal_newlines=True).stdout


def service_nic(own):
    for link in json.loads(ip("-j", "-4", "addr", "show")):
        if any(a.get("local") == own for a in link.get("addr_info", [])):
            return link["ifname"], json.loads(ip("-j", "link", "show", "dev", link["ifname"]))[0]["address"]
    raise SystemExit("no interface holds %s" % own)


def send(label, src, dst, port, nic):
    ip("neigh", "flush", "to", dst, "dev", nic)
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        s.bind((src, 0))
        s.sendto(b"warmup", (dst, port))  # resolves the observer's MAC (the listener ignores it)
        time.sleep(1.0)
        for _attempt in range(5):
            s.sendto(label.encode(), (dst, port))
            time.sleep(0.2)
    finally:
        s.close()


def main(argv):
    iface_addr = ipaddress.ip_interface(argv[1])
    own, dst, port = str(iface_addr.ip), argv[2], int(argv[3])
    nic, mac = service_nic(own)
    net = iface_addr.network
    spoof_ip = str(net.network_address + 99)
    spoof_mac = "52:54:00:de:ad:01"
    send("genuine", own, dst, port, nic)
    ip("addr", "add", spoof_ip + "/32", "dev", nic)
    try:
        send("spoof-ip", spoof_ip, dst, port, nic)
    finally:
        ip("addr", "del", spoof_ip + "/32", "dev", nic)
    ip("link", "set", "dev", nic, "address", spoof_mac)
    try:
        send("spoof-mac", own, dst, port, nic)
    finally:
        ip("link", "set", "dev", nic, "address", mac)
    send("end", own, dst, port, nic)
    print(json.dumps({"nic": nic, "mac": mac, "spoof_ip": spoof_ip, "spoof_mac": spoof_mac, "sent": ["genuine", "spoof-ip", "spoof-mac"]}))


if __name__ == "__main__":
    main(sys.argv)
