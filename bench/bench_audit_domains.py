#!/usr/bin/env python
"""Audit of about 1,000 libvirt domains as whole ansible-playbook runs, against the baseline a
user would write today, both measured in this run on the same real libvirtd.

  ours:      ansible-playbook vmguard.hardening.audit (one hypervisor_facts call - read inline, the
             hypervisor being the controller itself - then the engine evaluates all 25 domain rules
             and 9 host rules, and writes JSON/JUnit/HTML/SARIF/OSCAL); also once more with the
             module sent (vmguard_audit_inline_evidence=false), as for a hypervisor reached over SSH
  baseline:  community.libvirt.virt list_vms, then a `virt: command=get_xml` loop over every
             domain and the same kind of checks in Jinja (genid, virtio-rng, console listen,
             seclabel none, QEMU command line, transient disks, hostdev) - per domain tasks

The domains: libvirt's own test-suite XMLs that the local QEMU driver accepts (defined, not
started), topped up with generated domains to --domains. The test driver (test:///node.xml)
re-reads its whole file on every connection, which would flatter a per-domain baseline, so it is
reported separately (ours only).

Prints, in one run: the whole-playbook time of ours (best of --repeat) and where it goes (profile_tasks:
evidence, evaluation and reports, preflight; and the start-up of an empty play), the same with the
module sent, the baseline,
the ratio against the targets (<= 3 s, >= 150x), the test driver run, and the fleet figures of
bench_fleet_eval.py. --verbose adds the cProfile of the evaluation action.

Needs root and a running libvirtd (make services). Leaves nothing defined behind.
Run: .venv/bin/python bench/bench_audit_domains.py [--domains 1000] [--baseline-domains N] [--verbose]
"""

import argparse
import io
import os
import pstats
import re
import shutil
import subprocess
import sys
import tempfile
import time
import uuid as uuidlib

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
sys.path.insert(0, os.path.join(ROOT, "tests", "corpus"))
import corpus  # noqa: E402

import libvirt  # noqa: E402

PREFIX = "vmguard-bench-"
GENERATED = """<domain type='qemu'>
  <name>{name}</name><uuid>{uuid}</uuid>
  <memory unit='MiB'>256</memory>
  {genid}
  <os><type arch='x86_64' machine='pc'>hvm</type></os>
  <devices>
    <disk type='file' device='disk'><driver name='qemu' type='qcow2'/>
      <source file='/var/lib/vmguard/bench/{name}.qcow2'/><target dev='vda' bus='virtio'/></disk>
    <interface type='network'><source network='default'/><mac address='{mac}'/><model type='virtio'/></interface>
    <graphics type='vnc' autoport='yes' listen='{listen}'/>
    {rng}
  </devices>
</domain>"""

BASELINE_PLAY = """---
- name: Baseline | per-domain XML checks with community.libvirt and Jinja
  hosts: localhost
  connection: local
  gather_facts: false
  vars:
    ansible_python_interpreter: "{{ ansible_playbook_python }}"
  tasks:
    - name: List domains
      community.libvirt.virt:
        command: list_vms
      register: vms

    - name: Fetch every domain's XML
      community.libvirt.virt:
        command: get_xml
        name: "{{ item }}"
      loop: "{{ vms.list_vms | select('match', '%(prefix)s') | list }}"
      register: xmls

    - name: Evaluate the checks per domain
      ansible.builtin.set_fact:
        findings: "{{ findings | default([]) + [{
          'domain': item.item,
          'genid': '<genid' in item.get_xml,
          'rng': \\"<rng model='virtio'\\" in item.get_xml,
          'console_exposed': (item.get_xml | regex_search(\\"listen='0\\\\.0\\\\.0\\\\.0'\\")) is not none,
          'seclabel_none': \\"<seclabel type='none'\\" in item.get_xml,
          'qemu_cmdline': 'qemu:commandline' in item.get_xml,
          'transient_disk': '<transient' in item.get_xml,
          'hostdev': '<hostdev' in item.get_xml }] }}"
      loop: "{{ xmls.results }}"
      loop_control:
        label: "{{ item.item }}"

    - name: Report
      ansible.builtin.debug:
        msg: "{{ findings | length }} domains checked, {{ findings | selectattr('genid', 'equalto', false) | list | length }} without genid"
"""


def define_all(conn, target):
    paths = corpus.find_domains()
    defined, rejected = [], 0
    for i, path in enumerate(paths):
        if len(defined) >= target:
            break
        with open(path, encoding="utf-8", errors="replace") as f:
            raw = f.read()
        name, text = corpus._normalize(raw, i)  # pylint: disable=protected-access
        text = text.replace("<name>%s</name>" % name, "<name>%s%s</name>" % (PREFIX, name), 1)
        try:
            conn.defineXML(text)
            defined.append(PREFIX + name)
        except libvirt.libvirtError:
            rejected += 1
    from_corpus = len(defined)
    n = 0
    while len(defined) < target:
        name = "%sgen-%04d" % (PREFIX, n)
        h = uuidlib.uuid5(uuidlib.NAMESPACE_DNS, name)
        conn.defineXML(GENERATED.format(
            name=name, uuid=str(h), mac="52:54:01:%02x:%02x:%02x" % (h.bytes[0], h.bytes[1], h.bytes[2]),
            genid="<genid/>" if n % 3 else "", listen="0.0.0.0" if n % 7 == 0 else "127.0.0.1",
            rng="<rng model='virtio'><backend model='random'>/dev/urandom</backend></rng>" if n % 2 else ""))
        defined.append(name)
        n += 1
    return defined, from_corpus, rejected, len(paths)


def undefine_all(conn):
    for dom in conn.listAllDomains(0):
        if dom.name().startswith(PREFIX):
            flags = libvirt.VIR_DOMAIN_UNDEFINE_NVRAM | libvirt.VIR_DOMAIN_UNDEFINE_SNAPSHOTS_METADATA
            try:
                dom.undefineFlags(flags)
            except libvirt.libvirtError:
                dom.undefine()


def run(cmd, env):
    t = time.perf_counter()
    p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env, check=False,
                       universal_newlines=True)
    return time.perf_counter() - t, p


# profile_tasks' recap: "<role> : <task name> --- 1.23s"
RECAP = re.compile(r"^(?:[\w.]+ : )?(.+?) -+ (\d+\.\d+)s$", re.M)
STEPS = (("evidence (hypervisor_facts, one call, read inline: no module sent, published)", "Read every domain"),
         ("evaluate every rule, publish vmguard_audit, write the five reports", "Evaluate every rule"),
         ("preflight (policy, hosts, tags, report settings) and argument specs", "Validat"))


def breakdown(log):
    """{step: seconds} from profile_tasks' recap of one run."""
    tasks = [(name, float(secs)) for name, secs in RECAP.findall(log.split("TASKS RECAP", 1)[-1])]
    out = {}
    for label, key in STEPS:
        out[label] = sum(secs for name, secs in tasks if key in name)
    out["every other task"] = sum(secs for name, secs in tasks) - sum(out.values())
    return out


def write_inventory(path, host, uri):
    with open(path, "w") as f:
        f.write("all:\n  children:\n    vmguard_hypervisors:\n      hosts:\n        %s:\n"
                "          ansible_connection: local\n"
                "          ansible_python_interpreter: %s\n"
                "          vmguard_libvirt_uri: %s\n    vmguard_guests:\n      hosts: {}\n" % (host, sys.executable, uri))


def audit_cmd(inv, out, *extra):
    return ["ansible-playbook", "vmguard.hardening.audit", "-i", inv, "-e", "vmguard_audit_fail=false",
            "-e", "vmguard_report_dir=%s" % out] + list(extra)


def measure_ours(inv, work, env, repeat, *extra):
    """(best wall seconds, its log, every wall time) of `repeat` whole-playbook runs (``extra``: more arguments)."""
    runs = []
    for i in range(repeat):
        secs, p = run(audit_cmd(inv, "%s/ours" % work, *extra), env)
        if p.returncode != 0:
            print(p.stdout[-3000:])
            raise SystemExit("our audit failed")
        runs.append((secs, p.stdout))
    best = min(runs, key=lambda r: r[0])
    return best[0], best[1], [r[0] for r in runs]


def startup(work, env):
    """An empty play on localhost: what any ansible-playbook run costs before its first task."""
    play = os.path.join(work, "empty.yml")
    with open(play, "w") as f:
        f.write("- hosts: localhost\n  gather_facts: false\n  tasks: []\n")
    return min(run(["ansible-playbook", "-i", "localhost,", play], env)[0] for dummy in range(3))


def print_profile(work, env, inv):
    """cProfile of the evaluation (audit_evaluate's VMGUARD_PROFILE hook): the top functions."""
    pdir = os.path.join(work, "profile")
    os.mkdir(pdir)
    run(audit_cmd(inv, "%s/profiled" % work), dict(env, VMGUARD_PROFILE=pdir))
    out = io.StringIO()
    pstats.Stats(os.path.join(pdir, "audit_evaluate.prof"), stream=out).sort_stats("cumulative").print_stats(25)
    print("cProfile of the evaluation action (cumulative; the profiler inflates every call):")
    print("\n".join(line for line in out.getvalue().splitlines() if line.strip())[:6000])


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--domains", type=int, default=1000)
    ap.add_argument("--baseline-domains", type=int, default=200,
                    help="limit the baseline to the first N domains (0: all) and scale linearly")
    ap.add_argument("--repeat", type=int, default=5, help="whole-playbook runs of ours (the best is reported)")
    ap.add_argument("--verbose", action="store_true", help="cProfile of the evaluation")
    ap.add_argument("--no-fleet", action="store_true", help="skip the fleet figures (bench_fleet_eval.py)")
    args = ap.parse_args()
    work = tempfile.mkdtemp(prefix="vmguard-bench-")
    # Both runs use the same Ansible configuration (the project's ansible.cfg via `make`'s environment),
    # with profile_tasks for the breakdown.
    # The Ansible of this interpreter (.venv/bin/python bench/...: its ansible-playbook, activated or not).
    env = dict(os.environ, ANSIBLE_STDOUT_CALLBACK="ansible.builtin.default",
               ANSIBLE_CALLBACKS_ENABLED="ansible.posix.profile_tasks",
               PATH=os.path.dirname(sys.executable) + os.pathsep + os.environ.get("PATH", ""))
    libvirt.registerErrorHandler(lambda ctx, err: None, None)  # rejected corpus XMLs are expected
    conn = libvirt.open("qemu:///system")
    undefine_all(conn)
    try:
        t = time.perf_counter()
        names, from_corpus, rejected, total = define_all(conn, args.domains)
        print("defined %d domains in %.1f s: %d corpus XMLs accepted by the local QEMU driver "
              "(%d of %d tried were rejected), %d generated" % (
                  len(names), time.perf_counter() - t, from_corpus, rejected, from_corpus + rejected,
                  len(names) - from_corpus))
        inv = os.path.join(work, "inventory.yml")
        write_inventory(inv, "benchhv", "qemu:///system")
        ours, log, walls = measure_ours(inv, work, env, args.repeat)
        m = re.search(r"(\d+) findings: .*?; report", log)
        print("ours:      %6.2f s  ansible-playbook vmguard.hardening.audit, best of %d (%s) (%s)" % (
            ours, len(walls), ", ".join("%.2f" % w for w in walls), m.group(0) if m else "?"))
        empty = startup(work, env)
        print("  breakdown of that run (profile_tasks), seconds:")
        print("    %-75s %6.2f" % ("ansible-playbook start-up (an empty play on localhost, best of 3)", empty))
        for label, secs in breakdown(log).items():
            print("    %-75s %6.2f" % (label, secs))
        sent, sent_log, sent_walls = measure_ours(inv, work, env, args.repeat, "-e", "vmguard_audit_inline_evidence=false")
        print("  the same with the module sent (vmguard_audit_inline_evidence=false): %.2f s, best of %d (%s); its evidence step %.2f s" % (
            sent, len(sent_walls), ", ".join("%.2f" % w for w in sent_walls), list(breakdown(sent_log).values())[0]))
        if args.verbose:
            print_profile(work, env, inv)

        play = os.path.join(work, "baseline.yml")
        with open(play, "w") as f:
            f.write(BASELINE_PLAY % {"prefix": PREFIX})
        if args.baseline_domains and args.baseline_domains < len(names):
            keep = set(names[:args.baseline_domains])
            for dom in conn.listAllDomains(0):
                if dom.name().startswith(PREFIX) and dom.name() not in keep:
                    dom.undefine()
            scale = float(len(names)) / args.baseline_domains
        else:
            scale = 1.0
        base, p = run(["ansible-playbook", "-i", "localhost,", play], env)
        if p.returncode != 0:
            print(p.stdout[-3000:])
            raise SystemExit("baseline failed")
        base_total = base * scale
        note = "" if scale == 1.0 else " (measured on %d domains: %.1f s, scaled x%.1f)" % (args.baseline_domains, base, scale)
        print("baseline:  %6.1f s  community.libvirt get_xml loop + Jinja checks%s" % (base_total, note))
        ratio = base_total / ours
        print("ratio:     %6.1fx faster; targets: >= 150x %s, whole playbook <= 3 s %s" % (
            ratio, "MET" if ratio >= 150 else "NOT MET", "MET" if ours <= 3 else "NOT MET"))
    finally:
        undefine_all(conn)

    # The test driver, reported separately: the same corpus, no daemon.
    node, accepted, rej = corpus.build_node(corpus.find_domains(), os.path.join(work, "testdriver"))
    inv = os.path.join(work, "inventory-test.yml")
    write_inventory(inv, "corpus", "test://%s" % node)
    secs, p = run(audit_cmd(inv, "%s/test" % work), env)
    print("test driver (separate): %.2f s for %d corpus domains (test:///node.xml, no daemon)" % (secs, len(accepted)))
    shutil.rmtree(work, ignore_errors=True)
    if not args.no_fleet:
        print()
        print("fleet evaluation (bench/bench_fleet_eval.py, same run):")
        sys.stdout.flush()
        subprocess.run([sys.executable, os.path.join(ROOT, "bench", "bench_fleet_eval.py")], check=True)


if __name__ == "__main__":
    main()
