#!/usr/bin/env python
"""Audit of about 1,000 libvirt domains as whole ansible-playbook runs, against the baseline a
user would write today, both measured in this run on the same real libvirtd.

  ours:      ansible-playbook vmguard.hardening.audit (one hypervisor_facts call, then the engine
             evaluates all 25 domain rules and 9 host rules, and writes JSON/JUnit/HTML)
  baseline:  community.libvirt.virt list_vms, then a `virt: command=get_xml` loop over every
             domain and the same kind of checks in Jinja (genid, virtio-rng, console listen,
             seclabel none, QEMU command line, transient disks, hostdev) - per domain tasks

The domains: libvirt's own test-suite XMLs that the local QEMU driver accepts (defined, not
started), topped up with generated domains to --domains. The test driver (test:///node.xml)
re-reads its whole file on every connection, which would flatter a per-domain baseline, so it is
reported separately (ours only).

Needs root and a running libvirtd (make services). Leaves nothing defined behind.
Run: .venv/bin/python bench/bench_audit_domains.py [--domains 1000] [--baseline-domains N]
"""

import argparse
import os
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


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--domains", type=int, default=1000)
    ap.add_argument("--baseline-domains", type=int, default=0,
                    help="limit the baseline to the first N domains (0: all) and scale linearly")
    args = ap.parse_args()
    work = tempfile.mkdtemp(prefix="vmguard-bench-")
    # Both runs use the same Ansible configuration (the project's ansible.cfg via `make`'s environment).
    env = dict(os.environ, ANSIBLE_STDOUT_CALLBACK="ansible.builtin.default")
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
        with open(inv, "w") as f:
            f.write("all:\n  children:\n    vmguard_hypervisors:\n      hosts:\n        benchhv:\n"
                    "          ansible_connection: local\n"
                    "          ansible_python_interpreter: %s\n"
                    "          vmguard_libvirt_uri: qemu:///system\n    vmguard_guests:\n      hosts: {}\n" % sys.executable)
        ours, p = run(["ansible-playbook", "vmguard.hardening.audit", "-i", inv, "-e", "vmguard_audit_fail=false",
                       "-e", "vmguard_report_dir=%s/ours" % work], env)
        if p.returncode != 0:
            print(p.stdout[-3000:])
            raise SystemExit("our audit failed")
        m = re.search(r"(\d+) findings: .*?; report", p.stdout)
        print("ours:      %6.1f s  ansible-playbook vmguard.hardening.audit (%s)" % (ours, m.group(0) if m else "?"))

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
        note = "" if scale == 1.0 else " (measured on %d domains, scaled x%.1f)" % (args.baseline_domains, scale)
        print("baseline:  %6.1f s  community.libvirt get_xml loop + Jinja checks%s" % (base_total, note))
        print("ratio:     %6.1fx faster (target >= 50x); ours under 10 s: %s" % (
            base_total / ours, "MET" if ours < 10 else "NOT MET"))
    finally:
        undefine_all(conn)

    # The test driver, reported separately: the same corpus, no daemon.
    node, accepted, rej = corpus.build_node(corpus.find_domains(), os.path.join(work, "testdriver"))
    inv = os.path.join(work, "inventory-test.yml")
    with open(inv, "w") as f:
        f.write("all:\n  children:\n    vmguard_hypervisors:\n      hosts:\n        corpus:\n"
                "          ansible_connection: local\n          ansible_python_interpreter: %s\n"
                "          vmguard_libvirt_uri: test://%s\n" % (sys.executable, node))
    secs, p = run(["ansible-playbook", "vmguard.hardening.audit", "-i", inv, "-e", "vmguard_audit_fail=false",
                   "-e", "vmguard_report_dir=%s/test" % work], env)
    print("test driver (separate): %.1f s for %d corpus domains (test:///node.xml, no daemon)" % (secs, len(accepted)))
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
