# -*- coding: utf-8 -*-
# Copyright: (c) 2026, vmguard.hardening developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Throwaway lab support (the accelerator probe)."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type
