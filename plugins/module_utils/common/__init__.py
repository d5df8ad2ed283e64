# -*- coding: utf-8 -*-
# Copyright: (c) 2026, vmguard.hardening developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Low-level helpers every layer may use: atomic root-safe file writes, time, the status vocabulary."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type
