# Copyright: (c) 2026, vmguard.hardening developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Build, start, seed and stop the test vCenter (tools/vcsim/main.go) for tests and Molecule.

    python3 vcsim.py start --state-dir DIR [--vms N]   build (cached), start, wait for DIR/state.json, print it
    vcsim.py seed --state-dir DIR              seed the scenario's violations (see seed())
    vcsim.py stop --state-dir DIR              stop the simulator started there

The state directory is private (0700): state.json holds the generated credentials and ca.pem the
generated certificate clients verify against. Nothing is printed but the state file's path.
"""

import argparse
import json
import os
import signal
import ssl
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))


def build():
    """Path of the simulator binary (tools/vcsim/build.sh; cached under .cache/vcsim)."""
    out = subprocess.run([os.path.join(HERE, "build.sh")], check=True, stdout=subprocess.PIPE, universal_newlines=True)
    return out.stdout.strip().splitlines()[-1]


def state_path(state_dir):
    return os.path.join(state_dir, "state.json")


def read_state(state_dir):
    with open(state_path(state_dir)) as f:
        return json.load(f)


def start(state_dir, vms=4, timeout=30.0):
    """Start the simulator with its state in ``state_dir`` (created 0700) and return its state."""
    os.makedirs(state_dir, mode=0o700, exist_ok=True)
    os.chmod(state_dir, 0o700)
    stop(state_dir)
    binary = build()
    log = open(os.path.join(state_dir, "vcsim.log"), "ab")
    proc = subprocess.Popen([binary, "-state-dir", state_dir, "-vms", str(vms)], stdout=log, stderr=log,
                            stdin=subprocess.DEVNULL, start_new_session=True)
    with open(os.path.join(state_dir, "pid"), "w") as f:
        f.write(str(proc.pid))
    deadline = time.time() + timeout
    while time.time() < deadline:
        if proc.poll() is not None:
            raise RuntimeError("vcsim exited with %s: see %s/vcsim.log" % (proc.returncode, state_dir))
        if os.path.exists(state_path(state_dir)):
            return read_state(state_dir)
        time.sleep(0.05)
    proc.kill()
    raise RuntimeError("vcsim did not write %s within %ss" % (state_path(state_dir), timeout))


def stop(state_dir):
    """Stop the simulator whose pid file is in ``state_dir`` (only that process)."""
    pid_file = os.path.join(state_dir, "pid")
    try:
        with open(pid_file) as f:
            pid = int(f.read().strip())
    except (OSError, ValueError):
        return False
    try:
        os.kill(pid, signal.SIGTERM)
        for _unused in range(100):
            os.kill(pid, 0)
            time.sleep(0.05)
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    try:
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        pass
    for name in ("pid", "state.json"):
        try:
            os.unlink(os.path.join(state_dir, name))
        except FileNotFoundError:
            pass
    return True


def connect(st):
    from pyVim.connect import SmartConnect
    ctx = ssl.create_default_context(cafile=st["ca_file"])
    return SmartConnect(host=st["host"], port=st["port"], user=st["username"], pwd=st["password"], sslContext=ctx)


def vms_by_name(si):
    from pyVmomi import vim
    content = si.RetrieveContent()
    view = content.viewManager.CreateContainerView(content.rootFolder, [vim.VirtualMachine], True)
    try:
        return dict((vm.name, vm) for vm in view.view)
    finally:
        view.Destroy()


def _reconfigure(vm, spec):
    from pyVim.task import WaitForTask
    WaitForTask(vm.ReconfigVM_Task(spec=spec))


def seed(st):
    """The Molecule scenario's violations, made through the vSphere API as a person would:

    VM0: copy and paste enabled (LEAK-03); every VM: RemoteDisplay.maxConnections unset (LEAK-02, the
    simulator's default); VM1: a snapshot (RB-02 with the scenario's max age of 0 h); VM2: a connected
    serial port (ISO-08); VM3: VM2's MAC address (DIV-05). VM3 is left out of the scenario's inventory
    (VIS-01). Returns what was seeded, by VM name.
    """
    from pyVmomi import vim
    from pyVim.task import WaitForTask
    si = connect(st)
    vms = vms_by_name(si)
    names = sorted(vms)
    if len(names) < 4:
        raise RuntimeError("seed needs 4 VMs, the simulator has %d" % len(names))
    vm0, vm1, vm2, vm3 = (vms[n] for n in names[:4])
    _reconfigure(vm0, vim.vm.ConfigSpec(extraConfig=[
        vim.option.OptionValue(key="isolation.tools.copy.disable", value="FALSE"),
        vim.option.OptionValue(key="isolation.tools.paste.disable", value="FALSE")]))
    WaitForTask(vm1.CreateSnapshot_Task(name="before-upgrade", description="seeded", memory=False, quiesce=False))
    serial = vim.vm.device.VirtualSerialPort(
        key=-1, yieldOnPoll=True,
        backing=vim.vm.device.VirtualSerialPort.FileBackingInfo(fileName="[LocalDS_0] serial.log"),
        connectable=vim.vm.device.VirtualDevice.ConnectInfo(connected=True, startConnected=True, allowGuestControl=True))
    _reconfigure(vm2, vim.vm.ConfigSpec(deviceChange=[vim.vm.device.VirtualDeviceSpec(operation="add", device=serial)]))
    mac = [d.macAddress for d in vm2.config.hardware.device if isinstance(d, vim.vm.device.VirtualEthernetCard)][0]
    nic = [d for d in vm3.config.hardware.device if isinstance(d, vim.vm.device.VirtualEthernetCard)][0]
    nic.addressType = "manual"
    nic.macAddress = mac
    _reconfigure(vm3, vim.vm.ConfigSpec(deviceChange=[vim.vm.device.VirtualDeviceSpec(operation="edit", device=nic)]))
    return {names[0]: ["LEAK-03"], names[1]: ["RB-02"], names[2]: ["ISO-08", "DIV-05"], names[3]: ["DIV-05", "VIS-01"]}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("action", choices=("build", "start", "seed", "stop"))
    ap.add_argument("--state-dir", default=os.path.join(ROOT, ".cache", "vcsim", "run"))
    ap.add_argument("--vms", type=int, default=4)
    args = ap.parse_args(argv)
    if args.action == "build":
        print(build())
    elif args.action == "start":
        start(args.state_dir, args.vms)
        print(state_path(args.state_dir))
    elif args.action == "seed":
        print(json.dumps(seed(read_state(args.state_dir)), sort_keys=True))
    else:
        stop(args.state_dir)
    return 0


if __name__ == "__main__":
    sys.exit(main())
