#!/usr/bin/env python
"""vSphere evidence (issue 10): the VMs of one simulated vCenter (tools/vcsim, 1,000 VMs by default), read

  ours       vmguard.hardening.vsphere_facts: one PropertyCollector retrieval for every VM, run as a user
             runs it (`ansible localhost -m vmguard.hardening.vsphere_facts`: wall time including Ansible's
             start-up and the module's login)
  baseline   what a user writes today: community.vmware.vmware_guest_info once per VM. Measured two ways:
             python loop   the module's own code (PyVmomi.get_vm by uuid + PyVmomi.gather_facts, exactly what
                           vmware_guest_info's main() runs) over EVERY VM, in one process with one login: the
                           per-VM work without Ansible's per-task and per-process cost, a LOWER bound of the
                           playbook loop (so the ratio is conservative)
             playbook loop community.vmware.vmware_vm_info, then vmware_guest_info in a `loop:` over the first
                           --playbook-vms VMs (default 20; --playbook-vms 0 skips it, --playbook-vms 1000 runs
                           all, about half an hour); the per-VM cost is measured, the 1,000-VM figure is that
                           cost extrapolated and printed as such unless every VM was looped

all in the same run against the same simulator, and prints the ratios. The simulator is started in a private
temporary state directory and stopped (and the directory removed) on every exit path.
Run: .venv/bin/python bench/bench_vsphere.py [--vms 1000] [--playbook-vms 20]
"""

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
sys.path.insert(0, os.path.join(ROOT, "tools", "vcsim"))
import vcsim  # noqa: E402 pylint: disable=wrong-import-position

BASELINE_PLAYBOOK = """- hosts: localhost
  gather_facts: false
  vars:
    st: "{{ lookup('file', state_file) | from_json }}"
  module_defaults:
    group/community.vmware.vmware:
      hostname: "{{ st.host }}"
      port: "{{ st.port }}"
      username: "{{ st.username }}"
      password: "{{ st.password }}"
  tasks:
    - name: List the VMs
      community.vmware.vmware_vm_info:
      register: vm_list
    - name: Mark the loop start
      ansible.builtin.set_fact:
        loop_started: "{{ now(utc=true).timestamp() }}"
    - name: One vmware_guest_info per VM
      community.vmware.vmware_guest_info:
        datacenter: "{{ item.datacenter }}"
        uuid: "{{ item.uuid }}"
      loop: "{{ vm_list.virtual_machines[:(limit | int)] }}"
      loop_control:
        label: "{{ item.guest_name }}"
      register: per_vm
      no_log: true
    - name: Counts
      ansible.builtin.debug:
        msg: "BENCH {{ {'listed': vm_list.virtual_machines | length, 'gathered': per_vm.results | length,
                       'loop_seconds': now(utc=true).timestamp() - (loop_started | float)} | to_json }}"
"""


def tool(name):
    """An Ansible program next to this interpreter (the venv's), else from PATH."""
    here = os.path.join(os.path.dirname(sys.executable), name)
    return here if os.path.exists(here) else name


def env_for(st):
    return dict(os.environ, SSL_CERT_FILE=st["ca_file"], ANSIBLE_STDOUT_CALLBACK="ansible.builtin.default",
                ANSIBLE_LOAD_CALLBACK_PLUGINS="1")


def ours(st):
    """Wall time of one vsphere_facts run through Ansible, and its evidence summary."""
    args = {"hostname": st["host"], "port": st["port"], "username": st["username"], "password": st["password"]}
    env = dict(env_for(st), ANSIBLE_STDOUT_CALLBACK="ansible.posix.json")
    t = time.time()
    p = subprocess.run([tool("ansible"), "localhost", "-m", "vmguard.hardening.vsphere_facts", "-a", json.dumps(args)],
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, universal_newlines=True, env=env, cwd=ROOT, check=False)
    seconds = time.time() - t
    out = p.stdout
    if "{" not in out:
        raise RuntimeError("vsphere_facts printed no JSON (rc %s): %s" % (p.returncode, (out + p.stderr)[-2000:]))
    body = out if out.startswith("{") else out[out.index("\n{") + 1:]
    res = json.JSONDecoder().raw_decode(body)[0]["plays"][0]["tasks"][0]["hosts"]["localhost"]
    ev = res.get("evidence") or {}
    if p.returncode or ev.get("error") or st["password"] in out + p.stderr:
        raise RuntimeError("vsphere_facts failed (rc %s): %s %s" % (p.returncode, ev.get("error") or res.get("msg"), p.stderr[-2000:]))
    return {"seconds": seconds, "vms": len(ev["vms"]), "retrievals": ev["retrievals"]}


class _Module(object):
    """What community.vmware's PyVmomi helper reads from its AnsibleModule: params, fail_json, warn."""
    check_mode = False

    def __init__(self, params):
        self.params = params

    def fail_json(self, **kw):
        raise RuntimeError(kw.get("msg"))

    def warn(self, msg):
        pass


def python_loop(st):
    """vmware_guest_info's main() body (get_vm by uuid, gather_facts) for every VM, one login, in process."""
    os.environ["SSL_CERT_FILE"] = st["ca_file"]
    from ansible_collections.community.vmware.plugins.module_utils.vmware import PyVmomi
    from pyVmomi import vim
    params = {"hostname": st["host"], "port": st["port"], "username": st["username"], "password": st["password"],
              "validate_certs": True, "proxy_host": None, "proxy_port": None, "datacenter": None, "folder": None,
              "uuid": None, "name": None, "moid": None, "use_instance_uuid": False, "name_match": "first"}
    t = time.time()
    pyv = PyVmomi(_Module(params))
    view = pyv.content.viewManager.CreateContainerView(pyv.content.rootFolder, [vim.VirtualMachine], True)
    try:
        uuids = [vm.config.uuid for vm in view.view]
    finally:
        view.Destroy()
    gathered = 0
    for uuid in uuids:
        pyv.params["uuid"] = uuid
        vm = pyv.get_vm()
        if vm is None:
            raise RuntimeError("baseline: no VM with uuid %s" % uuid)
        facts = pyv.gather_facts(vm)
        gathered += 1 if facts.get("hw_name") else 0
    return {"seconds": time.time() - t, "vms": gathered}


def playbook_loop(st, state_dir, limit):
    """vmware_vm_info then vmware_guest_info in a loop over the first ``limit`` VMs (one ansible-playbook run)."""
    path = os.path.join(state_dir, "baseline.yml")
    with open(path, "w") as f:
        f.write(BASELINE_PLAYBOOK)
    t = time.time()
    p = subprocess.run([tool("ansible-playbook"), path, "-e", json.dumps({"state_file": vcsim.state_path(state_dir), "limit": limit})],
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, universal_newlines=True, env=env_for(st), cwd=ROOT, check=False)
    seconds = time.time() - t
    line = [ln for ln in p.stdout.splitlines() if "BENCH " in ln]
    if p.returncode or not line:
        raise RuntimeError("baseline playbook failed (rc %s): %s" % (p.returncode, (p.stdout + p.stderr)[-2000:]))
    counts = json.loads(line[-1].split("BENCH ", 1)[1].rstrip('"').replace('\\"', '"'))
    return dict(counts, seconds=seconds)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--vms", type=int, default=1000)
    ap.add_argument("--playbook-vms", type=int, default=20, help="VMs the playbook-loop baseline loops over (0: skip)")
    args = ap.parse_args(argv)
    state_dir = tempfile.mkdtemp(prefix="vmguard-bench-vcsim-")
    try:
        t = time.time()
        st = vcsim.start(state_dir, vms=args.vms, timeout=120.0)
        print("simulator: %d VMs, started in %.1fs" % (args.vms, time.time() - t))
        mine = ours(st)
        assert mine["vms"] == args.vms and mine["retrievals"] == 1, mine
        print("ours      vsphere_facts (ansible -m, one retrieval): %d VMs in %.2fs" % (mine["vms"], mine["seconds"]))
        base = python_loop(st)
        assert base["vms"] == args.vms, base
        print("baseline  python loop of vmware_guest_info's get_vm+gather_facts, one login: %d VMs in %.2fs (%.3fs/VM)"
              % (base["vms"], base["seconds"], base["seconds"] / base["vms"]))
        print("RATIO     python-loop baseline / ours = %.1fx (measured, %d VMs each)" % (base["seconds"] / mine["seconds"], args.vms))
        if args.playbook_vms:
            pb = playbook_loop(st, state_dir, min(args.playbook_vms, args.vms))
            assert pb["listed"] == args.vms and pb["gathered"] == min(args.playbook_vms, args.vms), pb
            per_vm = pb["loop_seconds"] / pb["gathered"]
            listing = pb["seconds"] - pb["loop_seconds"]
            full = listing + per_vm * args.vms
            print("baseline  playbook: vmware_vm_info + loop of vmware_guest_info over %d VMs: %.2fs (listing and start-up "
                  "%.2fs, %.3fs per VM)" % (pb["gathered"], pb["seconds"], listing, per_vm))
            kind = "measured" if pb["gathered"] == args.vms else "extrapolated from %d looped VMs" % pb["gathered"]
            print("RATIO     playbook-loop baseline / ours = %.1fx (%s: %.0fs for %d VMs)" % (full / mine["seconds"], kind, full, args.vms))
    finally:
        vcsim.stop(state_dir)
        shutil.rmtree(state_dir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
