# -*- coding: utf-8 -*-
# Copyright: (c) 2026, vmguard.hardening developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

"""A standard-library collector run on the target by one Python process fed on its standard input.

An Ansible module travels as an AnsiballZ payload whose loader imports ``ansible.module_utils.basic`` (and
the data-tagging and JSON machinery behind it) from a zip, compiled from source on every run: 4-6 s of CPU in
a guest emulated by TCG, where the evidence itself takes about 1 s. A collector that needs none of it (the
guest evidence: plugins/module_utils/evidence/guestcollect.py) is sent instead as its source and the sources
of the collection files it imports (found by reading their imports: nothing else travels), with its
validated parameters, as one JSON document on the standard input of ``<interpreter> -c BOOT``. BOOT is a
fixed text: no parameter is ever part of the command line. It imports the sources from memory (nothing is
written on the target) and calls the collector's ``piped_main(params)``, which prints the module's result.

Used only where a module would be piped too (``pipelining`` on, a become method that needs no terminal, no
async), with the interpreter the module would get (the task's ``ansible_python_interpreter`` or the one
discovered, as Ansible discovers it). Anything else sends the module as usual.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import ast
import importlib.util
import json
import shlex

from ansible.module_utils.common.arg_spec import ArgumentSpecValidator

COLLECTION = "ansible_collections.vmguard.hardening."

# Run as ``<interpreter> -c BOOT`` with {"sources": {module name: source}, "entry": name, "params": {...}} on
# standard input. A meta path finder serves the sources (and their parent packages) from memory, first.
BOOT = r"""
import json, sys
from importlib.machinery import ModuleSpec
D = json.loads(sys.stdin.buffer.read().decode("utf-8"))
S = D["sources"]
P = set(".".join(n.split(".")[:i]) for n in S for i in range(1, n.count(".") + 1))
class F(object):
    @classmethod
    def find_spec(cls, name, path=None, target=None):
        if name in S or name in P:
            return ModuleSpec(name, cls, is_package=name in P)
        return None
    @staticmethod
    def create_module(spec):
        return None
    @staticmethod
    def exec_module(module):
        name = module.__name__
        if name in S:
            exec(compile(S[name], "<vmguard piped %s>" % name, "exec"), module.__dict__)
sys.meta_path.insert(0, F)
__import__(D["entry"], fromlist=["piped_main"]).piped_main(D["params"])
"""


def _collection_imports(source, name):
    """The collection modules ``source`` (the module ``name``) imports, anywhere in it (a function's own
    import too), and the collection modules named by ``from package import module``."""
    found = set()
    for node in ast.walk(ast.parse(source, name)):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            found.add(node.module)
            found.update("%s.%s" % (node.module, a.name) for a in node.names)
    return set(m for m in found if m.startswith(COLLECTION))


def _source(name):
    """(source text, is a module) of the collection module or package ``name``, read where it is installed
    on the controller; (None, False) for a name that is no module (an attribute imported with from)."""
    try:
        spec = importlib.util.find_spec(name)
    except (ImportError, AttributeError, ValueError):
        return None, False
    if spec is None or not spec.origin or not spec.origin.endswith(".py"):
        return None, spec is not None
    with open(spec.origin, "rb") as f:
        return f.read().decode("utf-8"), True


def sources(entry):
    """{module name: source} of ``entry`` and every collection module it imports, directly or not, with the
    ``__init__`` of each collection package on the way (a package without one is empty on the target)."""
    out, todo = {}, [entry]
    while todo:
        name = todo.pop()
        if name in out:
            continue
        text, is_module = _source(name)
        if text is None:
            if is_module:
                continue  # a package without an __init__.py
            if name == entry:
                raise ImportError("the collector %s is not installed on the controller" % entry)
            continue  # ``from package import attribute``: not a module
        out[name] = text
        todo.extend(_collection_imports(text, name))
        parts = name.split(".")
        todo.extend(".".join(parts[:i]) for i in range(len(COLLECTION.split(".")), len(parts)))
    return out


def payload(entry, params):
    """The bytes BOOT reads on its standard input."""
    return json.dumps(dict(sources=sources(entry), entry=entry, params=params)).encode("utf-8")


def controller_spec(spec):
    """``spec`` with its path options as strings: a path is expanded where the collector runs (the target's
    home and variables), not on the controller."""
    return dict((k, dict(v, type="str") if v.get("type") == "path" else dict(v)) for k, v in spec.items())


def why_not(action, params):
    """None when the collector may run piped, else why the module is sent instead."""
    # pylint: disable=protected-access
    if params.get("piped") is False:
        return "piped is false"
    if action._task.async_val:
        return "the task is async"
    if getattr(action._connection._shell, "SHELL_FAMILY", "sh") == "powershell":
        return "the target runs PowerShell"
    if not action._is_pipelining_enabled("new"):
        return "the connection does not pipeline (pipelining off, remote files kept, or a become method needing a terminal)"
    return None


def command(action, module_name, args, task_vars):
    """The shell command that runs BOOT with the interpreter the module would get (discovered as Ansible
    discovers it, if the task names none)."""
    # pylint: disable=protected-access
    module_bits = action._configure_module(module_name=module_name, module_args=args, task_vars=task_vars)[0]
    interpreter = shlex.split((module_bits.shebang or "").replace("#!", "", 1).strip())
    if not interpreter:
        raise ValueError("no Python interpreter for %s" % module_name)
    env = action._compute_environment_string()
    return "%s%s -c %s" % (env, " ".join(shlex.quote(a) for a in interpreter), shlex.quote(BOOT))


def _parse(res):
    """The collector's result from the low-level command's result, or a failure that shows its output."""
    try:
        result = json.loads(res.get("stdout") or "")
        if isinstance(result, dict):
            return result
    except ValueError:
        pass
    return dict(failed=True, rc=res.get("rc"), module_stdout=res.get("stdout"), module_stderr=res.get("stderr"),
                msg="the piped collector did not print a result (rc %s): %s" % (
                    res.get("rc"), (res.get("stderr") or res.get("stdout") or "no output").strip()[-2000:]))


def run(action, module_name, entry, spec, args, task_vars, display=None):
    """The module's result, read piped: ``entry`` (a collection module with ``piped_main``) run on the target
    with ``args`` validated by ``spec`` (the module's argument spec); None when the module must be sent
    instead (why_not; ``display.vvv`` says why)."""
    validated = ArgumentSpecValidator(controller_spec(spec)).validate(args)
    params = validated.validated_parameters
    why = why_not(action, params)
    if why is not None:
        if display is not None:
            display.vvv("%s: sent as a module: %s" % (module_name, why))
        return None
    if validated.error_messages:
        return dict(failed=True, msg="; ".join(validated.error_messages), piped=True)
    cmd = command(action, module_name, args, task_vars)
    res = action._low_level_execute_command(cmd, sudoable=True, in_data=payload(entry, params))  # pylint: disable=protected-access
    result = _parse(res)
    result["piped"] = True
    key = getattr(action, "_discovered_interpreter_key", None)
    if key:  # what _execute_module hands back: later tasks of the host skip the discovery
        result.setdefault("ansible_facts", {})[key] = action._discovered_interpreter  # pylint: disable=protected-access
    return result
