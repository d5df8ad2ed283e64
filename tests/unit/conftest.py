"""Make the collection importable as ansible_collections.vmguard.hardening for unit tests."""

import os
import sys

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
_COLLECTIONS = os.path.join(ROOT, ".cache", "collections")
_LINK = os.path.join(_COLLECTIONS, "ansible_collections", "vmguard", "hardening")

if not os.path.exists(_LINK):
    os.makedirs(os.path.dirname(_LINK), exist_ok=True)
    os.symlink(ROOT, _LINK)
if _COLLECTIONS not in sys.path:
    sys.path.insert(0, _COLLECTIONS)
