# vmguard start gate (VIS-04): a libvirt qemu hook, installed by the vmguard.hardening.hypervisor role as
# /usr/local/lib/vmguard-start-gate/vmguard_start_gate.py, run by /etc/libvirt/hooks/qemu.d/vmguard-start-gate
# ("exec /usr/bin/python3 -I <this file> "$@"") when vmguard_hypervisor_start_gate is true.
# libvirt runs it as "<domain> <operation> <sub-operation> <extra>" with the domain XML on stdin; at
# "prepare begin" a non-zero exit refuses the start and stderr becomes libvirt's error. It never calls
# libvirt. The decision is remediation/startgate.py of the collection, copied (package path kept) to
# /usr/local/lib/vmguard-start-gate; configuration /etc/vmguard/start-gate.json.
import os
import sys

# The tests point it at a checkout (libvirt gives hooks a clean environment, without this variable).
ROOT = os.environ.get("VMGUARD_START_GATE_ROOT") or "/usr/local/lib/vmguard-start-gate"
sys.dont_write_bytecode = True
if os.path.isdir(ROOT):
    sys.path.insert(0, ROOT)
try:
    from ansible_collections.vmguard.hardening.plugins.module_utils.remediation import startgate
except Exception as e:  # a broken install: refuse starts (fail closed), let every other operation through
    sys.stdin.read()  # drained: libvirt writes the domain XML whatever the operation
    if sys.argv[2:4] == ["prepare", "begin"]:
        sys.stderr.write("vmguard start gate: domain %s not started: the gate cannot load its code from %s (%s: %s); "
                         "reinstall it (hypervisor role, vmguard_hypervisor_start_gate) or remove %s\n"
                         % (sys.argv[1], ROOT, type(e).__name__, e, os.path.abspath(__file__)))
        sys.exit(1)
    sys.exit(0)
sys.exit(startgate.main(sys.argv[1:], config_path=os.environ.get("VMGUARD_START_GATE_CONFIG") or startgate.CONFIG_PATH))
