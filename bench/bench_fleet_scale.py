#!/usr/bin/env python
"""Fleet scale (issue 11): one ansible-playbook vmguard.hardening.audit run over five hypervisors holding
1,000 and then 5,000 domains in all (libvirt's test driver: one generated node file per hypervisor, half
libvirt's own test-suite domains from the corpus, half generated), measured in this run:

  time        wall time of the whole playbook run
  controller  peak RSS (VmHWM) of the ansible-playbook process, sampled from /proc while it runs
  modules     peak RSS and wall time of every module process (hypervisor_facts per hypervisor, ...), through
              an interpreter wrapper that runs the real Python as its child and records its rusage

and the growth from 1,000 to 5,000 (x5 domains: linear is x5 time, below is better). Needs no daemon.
Run: .venv/bin/python bench/bench_fleet_scale.py [--sizes 1000,5000] [--hypervisors 5]
"""

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import uuid as uuidlib

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
sys.path.insert(0, os.path.join(ROOT, "tests", "corpus"))
import corpus  # noqa: E402

GENERATED = """<domain type='qemu'><name>{name}</name><uuid>{uuid}</uuid><memory unit='MiB'>256</memory>{genid}
<os><type arch='x86_64' machine='pc'>hvm</type></os><devices>
<disk type='file' device='disk'><driver name='qemu' type='qcow2'/><source file='/var/lib/vmguard/bench/{name}.qcow2'/>
<target dev='vda' bus='virtio'/></disk>
<interface type='network'><source network='default'/><mac address='{mac}'/><model type='virtio'/></interface>
<graphics type='vnc' autoport='yes' listen='{listen}'/>{rng}</devices></domain>"""

WRAPPER = """#!{python}
import json, os, resource, subprocess, sys, time
t = time.time()
rc = subprocess.call([{python!r}] + sys.argv[1:])
ru = resource.getrusage(resource.RUSAGE_CHILDREN)
m = [a for a in sys.argv[1:] if "AnsiballZ_" in a]
with open({log!r}, "a") as f:
    f.write(json.dumps({{"module": os.path.basename(m[0]).replace("AnsiballZ_", "")[:-3] if m else " ".join(sys.argv[1:])[:60],
                        "seconds": round(time.time() - t, 2), "max_rss_kib": ru.ru_maxrss}}) + "\\n")
sys.exit(rc)
"""


def corpus_texts():
    paths = corpus.find_domains()
    work = tempfile.mkdtemp(prefix="vmguard-bench-probe-")
    try:
        unused, accepted, unused_rejected = corpus.build_node(paths, work)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    texts = []
    for path in sorted(accepted.values()):
        with open(path, encoding="utf-8", errors="replace") as f:
            texts.append(f.read())
    return texts


def node_file(path, hv, count, texts):
    parts = []
    for i in range(count):
        name = "%s-d%05d" % (hv, i)
        uid = str(uuidlib.uuid5(uuidlib.NAMESPACE_DNS, name))
        if i % 2 and texts:
            parts.append(corpus.with_identity(texts[i // 2 % len(texts)], name, uid))
        else:
            h = uuidlib.UUID(uid).bytes
            parts.append(GENERATED.format(name=name, uuid=uid, mac="52:54:01:%02x:%02x:%02x" % (h[0], h[1], h[2]),
                                          genid="<genid/>" if i % 3 else "", listen="0.0.0.0" if i % 7 == 0 else "127.0.0.1",
                                          rng="<rng model='virtio'><backend model='random'>/dev/urandom</backend></rng>" if i % 4 else ""))
    with open(path, "w") as f:
        f.write("<node>\n%s\n</node>\n" % "\n".join(parts))


def peak_rss(pid, out, stop):
    while not stop.is_set():
        try:
            with open("/proc/%d/status" % pid) as f:
                m = re.search(r"VmHWM:\s+(\d+) kB", f.read())
            if m:
                out[0] = max(out[0], int(m.group(1)))
        except (IOError, OSError):
            break
        stop.wait(0.1)


def run(work, total, hvs, texts):
    d = os.path.join(work, str(total))
    os.makedirs(d)
    log = os.path.join(d, "modules.jsonl")
    wrapper = os.path.join(d, "python")
    with open(wrapper, "w") as f:
        f.write(WRAPPER.format(python=sys.executable, log=log))
    os.chmod(wrapper, 0o755)
    lines = ["all:", "  children:", "    vmguard_hypervisors:", "      hosts:"]
    for h in range(hvs):
        hv = "hv%d" % h
        node = os.path.join(d, hv + ".xml")
        node_file(node, hv, total // hvs, texts)
        lines += ["        %s:" % hv, "          ansible_connection: local", "          ansible_python_interpreter: %s" % wrapper,
                  "          vmguard_libvirt_uri: test://%s" % node]
    lines += ["    vmguard_guests:", "      hosts: {}"]
    inv = os.path.join(d, "inventory.yml")
    with open(inv, "w") as f:
        f.write("\n".join(lines) + "\n")
    env = dict(os.environ, ANSIBLE_STDOUT_CALLBACK="ansible.builtin.default",  # this interpreter's Ansible
               PATH=os.path.dirname(sys.executable) + os.pathsep + os.environ.get("PATH", ""))
    t = time.perf_counter()
    p = subprocess.Popen(["ansible-playbook", "vmguard.hardening.audit", "-i", inv, "-e", "vmguard_audit_fail=false",
                          "-e", "vmguard_report_dir=%s/report" % d], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                         universal_newlines=True, env=env, cwd=ROOT)
    rss, stop = [0], threading.Event()
    sampler = threading.Thread(target=peak_rss, args=(p.pid, rss, stop), daemon=True)
    sampler.start()
    out = p.communicate()[0]
    secs = time.perf_counter() - t
    stop.set()
    if p.returncode != 0:
        print(out[-3000:])
        raise SystemExit("the audit of %d domains failed" % total)
    m = re.search(r"(\d+) findings: .*?; report", out)
    with open(log) as f:
        modules = [json.loads(line) for line in f]
    return {"seconds": secs, "controller_kib": rss[0], "modules": modules, "summary": m.group(0) if m else "?"}


def _facts_peak(result):
    """The largest peak RSS (KiB) of a hypervisor_facts process in one run's result."""
    return max(x["max_rss_kib"] for x in result["modules"] if x["module"] == "hypervisor_facts")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", default="1000,5000")
    ap.add_argument("--hypervisors", type=int, default=5)
    args = ap.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    texts = corpus_texts()
    print("corpus: %d domain XMLs the test driver accepts (half of every hypervisor's domains, the rest generated)" % len(texts))
    work = tempfile.mkdtemp(prefix="vmguard-bench-scale-")
    results = {}
    try:
        for total in sizes:
            r = results[total] = run(work, total, args.hypervisors, texts)
            facts = [x for x in r["modules"] if x["module"] == "hypervisor_facts"]
            print("%5d domains on %d hypervisors: %6.1f s, controller peak %6.1f MiB (%s)" % (
                total, args.hypervisors, r["seconds"], r["controller_kib"] / 1024.0, r["summary"]))
            print("       hypervisor_facts per hypervisor: peak %s MiB, %s s" % (
                ", ".join("%.1f" % (x["max_rss_kib"] / 1024.0) for x in facts), ", ".join("%.1f" % x["seconds"] for x in facts)))
            others = sorted(set(x["module"] for x in r["modules"]) - {"hypervisor_facts"})
            for name in others:
                xs = [x for x in r["modules"] if x["module"] == name]
                print("       %s: %d process(es), peak %.1f MiB, longest %.1f s" % (
                    name, len(xs), max(x["max_rss_kib"] for x in xs) / 1024.0, max(x["seconds"] for x in xs)))
        if len(sizes) >= 2:
            a, b = results[sizes[0]], results[sizes[-1]]
            k = float(sizes[-1]) / sizes[0]
            growth = b["seconds"] / a["seconds"]
            print("growth %d -> %d domains (x%.0f): time x%.2f (%s), controller memory x%.2f, module memory x%.2f" % (
                sizes[0], sizes[-1], k, growth, "linear or better" if growth <= k * 1.1 else "SUPERLINEAR",
                float(b["controller_kib"]) / a["controller_kib"], float(_facts_peak(b)) / _facts_peak(a)))
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
