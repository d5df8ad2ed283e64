# -*- coding: utf-8 -*-
# Copyright: (c) 2026, vmguard.hardening developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

"""An evidence module read in the controller's own worker process, when its target is the controller itself.

Sending a module costs, before it reads anything, an AnsiballZ payload built on the controller (its
module_utils found and compiled: about 0.3 s), a second Python that compiles them again from the zip
(about 0.35 s), the shell commands around it, and the evidence encoded to JSON and decoded back. When the
task would run the module on this very machine - the ``local`` connection, not delegated, no become, no
task environment, no async, and the module's interpreter is the Python running this controller - the
same ``gather`` function of the module runs here instead, with the same argument spec, and returns the
same evidence. Anything else, or the module's option ``inline: false``, sends the module as usual.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os
import subprocess
import sys

from ansible.module_utils.common.arg_spec import ArgumentSpecValidator
from ansible.module_utils.common.process import get_bin_path

LOCAL = ("ansible.builtin.local", "local")


def _interpreter(action, task_vars):
    """The module's Python interpreter as the task would run it (ansible_python_interpreter, templated), or None."""
    value = task_vars.get("ansible_python_interpreter")
    if value is None:
        return None
    try:
        value = action._templar.template(value)  # pylint: disable=protected-access
    except Exception:  # pylint: disable=broad-except  # an interpreter we cannot resolve here: send the module
        return None
    return value if isinstance(value, str) else None


def why_not(action, task_vars):
    """None when the task's module may run in this process, else why it may not."""
    # pylint: disable=protected-access
    if getattr(action._connection, "_load_name", None) not in LOCAL:
        return "the connection is not local"
    if action._task.delegate_to:
        return "the task is delegated"
    if action._play_context.become:
        return "the task uses become"
    if action._task.async_val:
        return "the task is async"
    environment = {}
    action._compute_environment_string(environment)
    if environment:
        return "the task sets an environment"
    interpreter = _interpreter(action, task_vars)
    if interpreter is None or os.path.normpath(interpreter) != os.path.normpath(sys.executable):
        return "the module's interpreter (%s) is not the controller's (%s)" % (interpreter or "discovered", sys.executable)
    return None


def run_argv(argv):
    """(rc, stdout, stderr) of ``argv`` (a list; no shell), as AnsibleModule.run_command returns them."""
    proc = subprocess.run(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,  # pylint: disable=subprocess-run-check
                          close_fds=True)
    return proc.returncode, proc.stdout.decode("utf-8", "surrogateescape"), proc.stderr.decode("utf-8", "surrogateescape")


def bin_path(name):
    """The path of the command ``name`` (PATH and the sbin directories, as AnsibleModule.get_bin_path), or None."""
    try:
        return get_bin_path(name)
    except ValueError:
        return None


def run(action, module, args, task_vars):
    """The result of the evidence module ``module`` (its Python module: ARGUMENT_SPEC, INLINE_MISSING,
    params_error, gather) for ``args``, read in this process (why_not said it may); None when the module
    must be sent instead (``inline`` false in any spelling the module accepts - no, "false", 0 - or a
    dependency missing in this Python)."""
    if module.INLINE_MISSING:
        return None
    validated = ArgumentSpecValidator(module.ARGUMENT_SPEC).validate(args)
    params = validated.validated_parameters
    if params.get("inline") is False:
        return None
    if validated.error_messages:
        return dict(failed=True, msg="; ".join(validated.error_messages), inline=True)
    error = module.params_error(params)
    if error:
        return dict(failed=True, msg=error, inline=True)
    warnings = []
    evidence = module.gather(params, run_argv, bin_path, warnings.append)
    result = dict(changed=False, evidence=evidence, inline=True)
    if warnings:
        result["warnings"] = warnings
    return result
