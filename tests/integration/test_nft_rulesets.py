"""The nft fixtures against the real kernel and the real guest path.

1. Every committed tests/fixtures/nft/<name>.json is what `nft -j list ruleset` prints after loading the
   fixture's text (<name>.nft with nft -f, or <name>.rules.v4/.v6 with iptables-nft-restore) into a fresh
   private network namespace (compared without handles/metainfo, rules in order per chain).
2. The guest path: the live `nft -j list ruleset` output of that namespace through guestscan.firewall, and
   the guest_facts module itself run inside the namespace, give the same evidence as the committed JSON.
"""

import importlib.util
import json
import os
import shutil
import subprocess
import sys

import pytest

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
FIXTURES = os.path.join(ROOT, "tests", "fixtures", "nft")
COLLECTIONS = os.path.join(ROOT, ".cache", "collections")

_spec = importlib.util.spec_from_file_location("nft_fixture_derive", os.path.join(FIXTURES, "derive.py"))
derive = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(derive)

sys.path.insert(0, COLLECTIONS)
from ansible_collections.vmguard.hardening.plugins.module_utils.evidence import guestscan, nftables  # noqa: E402


def _missing_capability():
    if os.geteuid() != 0:
        return "needs root (CAP_SYS_ADMIN + CAP_NET_ADMIN) to create network namespaces and load rulesets"
    for tool in ("ip", "nft"):
        if not shutil.which(tool):
            return "needs the '%s' command (iproute2 / nftables)" % tool
    try:
        with derive.Netns() as ns:
            ns.run(["nft", "list", "ruleset"])
    except RuntimeError as e:
        return "cannot use a private network namespace with nft here: %s" % e
    return None


MISSING = _missing_capability()
pytestmark = pytest.mark.skipif(MISSING is not None, reason=MISSING or "")
SOURCES = derive.sources()


def canonical(doc):
    """Objects without handles/metainfo; non-rule objects as a sorted list; rules in order per chain."""
    items = nftables.normalise(doc["nftables"])
    objects, rules = [], {}
    for item in items:
        if "rule" in item:
            r = item["rule"]
            rules.setdefault("%s %s %s" % (r["family"], r["table"], r["chain"]), []).append(r["expr"])
        else:
            objects.append(json.dumps(item, sort_keys=True))
    return sorted(objects), rules


def committed(name):
    with open(os.path.join(FIXTURES, name + ".json")) as f:
        return f.read()


def _needs(name):
    tools = ["iptables-nft-restore", "ip6tables-nft-restore"] if any(
        s.endswith((".v4", ".v6")) for s in SOURCES[name]) else []
    for tool in tools:
        if not shutil.which(tool):
            pytest.skip("fixture %s needs %s (package iptables)" % (name, tool))


@pytest.mark.parametrize("name", sorted(SOURCES))
def test_committed_json_is_what_the_kernel_reports(name):
    _needs(name)
    live = json.loads(derive.derive(name))
    assert canonical(live) == canonical(json.loads(committed(name)))


def _without_digest(fw):
    return dict((k, v) for k, v in fw.items() if k != "digest")


@pytest.mark.parametrize("name", sorted(SOURCES))
def test_live_output_through_guestscan(name):
    _needs(name)
    live = derive.derive(name)
    got, want = guestscan.firewall(live), guestscan.firewall(committed(name))
    assert got["error"] is None
    assert _without_digest(got) == _without_digest(want)
    # The digest covers document order: equal whenever the kernel lists objects as the committed file does.
    if [json.dumps(i, sort_keys=True) for i in nftables.normalise(json.loads(live)["nftables"])] == \
            [json.dumps(i, sort_keys=True) for i in nftables.normalise(json.loads(committed(name))["nftables"])]:
        assert got["digest"] == want["digest"]


def _ansible():
    exe = os.path.join(os.path.dirname(sys.executable), "ansible")
    return exe if os.path.exists(exe) else shutil.which("ansible")


@pytest.mark.skipif(not _ansible(), reason="needs ansible (make setup installs it into .venv)")
@pytest.mark.parametrize("name", ["vmguard-web", "ufw-web", "empty"])
def test_guest_facts_module_inside_the_namespace(name):
    """The real module: guest_facts runs `nft -j list ruleset` in the namespace it runs in."""
    _needs(name)
    env = dict(os.environ, ANSIBLE_LOAD_CALLBACK_PLUGINS="1", ANSIBLE_STDOUT_CALLBACK="ansible.posix.json",
               ANSIBLE_CONFIG=os.path.join(ROOT, "ansible.cfg"))
    env.setdefault("ANSIBLE_COLLECTIONS_PATH", COLLECTIONS)
    env["PATH"] = os.path.dirname(sys.executable) + os.pathsep + env.get("PATH", "")
    with derive.Netns() as ns:
        derive.load(ns, name)
        p = subprocess.run(["ip", "netns", "exec", ns.name, _ansible(), "localhost", "-m",
                            "vmguard.hardening.guest_facts"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           universal_newlines=True, env=env, cwd=ROOT, check=False)
    body = p.stdout[p.stdout.index("{"):] if "{" in p.stdout else p.stdout
    result = json.JSONDecoder().raw_decode(body)[0]["plays"][0]["tasks"][0]["hosts"]["localhost"]
    assert not result.get("failed"), result.get("msg")
    fw = result["evidence"]["firewall"]
    assert _without_digest(fw) == _without_digest(guestscan.firewall(committed(name)))
    assert len(fw["digest"]) == 64
