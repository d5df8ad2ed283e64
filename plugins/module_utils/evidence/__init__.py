# -*- coding: utf-8 -*-
# Copyright: (c) 2026, vmguard.hardening developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Evidence collection and parsing: domain XML, host files and processes, guest files, nftables
rulesets, offline image checks. Runs inside the evidence modules; only reads."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type
