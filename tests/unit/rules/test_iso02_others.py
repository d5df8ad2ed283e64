# -*- coding: utf-8 -*-
"""ISO-02's other-service labels of a segment, gathered once per (segment, service) and kept: each domain takes only
its own labels out, never another domain's that reads the same."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible_collections.vmguard.hardening.plugins.module_utils.audit import engine, policy
from ansible_collections.vmguard.hardening.plugins.module_utils.audit.rules import iso

from . import evidence as E


def _ctx():
    return engine.Context(policy.load_policy({}), E.fleet([]), E.NOW)


def test_each_domain_leaves_out_only_itself_and_its_own_service():
    entry = {"web": {"hv1/web1": "hv1/web1", "hv1/web2": "hv1/web2"}, "mail": {"hv1/mail1": "hv1/mail1"},
             "db": {"hv1/db1": "hv1/db1 (persistent definition)"}}
    ctx = _ctx()
    assert iso._others(ctx, "k", entry, "web", "hv1/web1") == {"hv1/mail1", "hv1/db1 (persistent definition)"}
    assert iso._others(ctx, "k", entry, "mail", "hv1/mail1") == {"hv1/web1", "hv1/web2", "hv1/db1 (persistent definition)"}
    # A domain whose persistent definition declares another service is not its own neighbour.
    entry["mail"]["hv1/web2"] = "hv1/web2 (persistent definition)"
    ctx = _ctx()
    assert iso._others(ctx, "k", entry, "web", "hv1/web2") == {"hv1/mail1", "hv1/db1 (persistent definition)"}
    assert iso._others(ctx, "k", entry, "web", "hv1/web1") == {"hv1/mail1", "hv1/web2 (persistent definition)",
                                                               "hv1/db1 (persistent definition)"}
    assert iso._others(ctx, "k", None, "web", "hv1/web1") == set()


def test_a_domain_named_like_another_ones_persistent_label_does_not_hide_it():
    """Domain "a (persistent definition)" joins the segment live; domain a joins it by its persistent definition only:
    both label "hv1/a (persistent definition)". Each still sees the other."""
    entry = {"web": {"hv1/a": "hv1/a (persistent definition)"},
             "mail": {"hv1/a (persistent definition)": "hv1/a (persistent definition)"}}
    ctx = _ctx()
    assert iso._others(ctx, "k", entry, "db", "hv1/a (persistent definition)") == {"hv1/a (persistent definition)"}
    assert iso._others(ctx, "k", entry, "db", "hv1/a") == {"hv1/a (persistent definition)"}
    assert iso._others(ctx, "k", entry, "web", "hv1/a") == {"hv1/a (persistent definition)"}
    assert iso._others(ctx, "k2", {"web": {"hv1/a": "hv1/a"}}, "db", "hv1/a") == set()
