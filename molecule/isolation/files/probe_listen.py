"""Run in the observer's network namespace: record the labelled UDP probes that arrive.

  probe_listen.py <address> <port> <seconds> <output.json>

Writes {"received": {label: [source address, ...]}} when the probe labelled "end" arrives (the sender
sends it last, genuinely) or the time is up. "warmup" datagrams (address resolution) are not probes.
Creates <output.json>.ready once it listens (the probe waits for that before anything is sent).
"""

import json
import socket
import sys
import time


def main(argv):
    addr, port, seconds, out = argv[1], int(argv[2]), float(argv[3]), argv[4]
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind((addr, port))
    open(out + ".ready", "w").close()
    got = {}
    end = time.time() + seconds
    while time.time() < end:
        s.settimeout(max(0.05, end - time.time()))
        try:
            data, src = s.recvfrom(512)
        except socket.timeout:
            continue
        label = data.decode(errors="replace")
        if label == "end":
            break
        if label == "warmup":
            continue  # the sender resolving our MAC, not a probe
        got.setdefault(label, []).append(src[0])
    with open(out, "w") as f:
        json.dump({"received": got}, f, sort_keys=True)


if __name__ == "__main__":
    main(sys.argv)
