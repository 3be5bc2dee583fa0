"""Compiled or pure Python: which hot modules mypyc builds, and which of the two runs.

``pip install`` compiles the modules in ``NATIVE_MODULES`` with mypyc (see setup.py):
the same source, turned into a C extension that sits beside each ``.py`` file. Python
source stays the one definition of the model; the compiled build only runs it faster,
and the test suite runs on both (``.ci/run`` runs it twice).

At ``import sim``, ``select()`` picks one of the two for all of these modules at once
(a compiled module calls the others' compiled classes directly, so they cannot mix):

- ``FRAGSIM_PURE_PYTHON=1`` in the environment: pure Python;
- no build record (``sim/_native_build.json``, written by setup.py when it compiles):
  pure Python. That is an install made with ``FRAGSIM_PURE_PYTHON=1``;
- a record that says compiling failed (mypyc or the C compiler, at install): pure
  Python, with a one-line warning, since pip hides what setup.py prints;
- a source file that differs from the one compiled (its sha256 is in the record):
  pure Python, with a one-line warning. An edited module must never be shadowed by a
  stale build; ``pip install -e .`` compiles it again.

Pure Python means a meta-path finder that loads these modules from their ``.py``
files even where a compiled file sits beside them.
"""

from __future__ import annotations

import hashlib
import importlib.abc
import importlib.util
import json
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING

# The modules on the allocator's per-operation paths (bench/ and a profile of
# configs/bench.yaml). Order does not matter.
NATIVE_MODULES = ("sim.buddy", "sim.mmzone", "sim.slab", "sim.objects", "sim.vmscan",
                  "sim.page_alloc", "sim.readahead", "sim.ftrace", "sim.replay",
                  "sim.compaction", "sim.metrics", "workloads.expiry", "workloads.objloop",
                  "workloads.pageset", "workloads.draws")
# C extensions built with them, each used only when they run compiled: module -> source.
C_EXTENSIONS = {"sim._ftrace_scan": "sim/_ftrace_scan.c"}
RECORD = "_native_build.json"
PURE_ENV = "FRAGSIM_PURE_PYTHON"
STALE = "changed since it was compiled"  # in the reason: select() warns
FAILED = "compiling failed at install"  # in the reason: select() warns

ROOT = Path(__file__).resolve().parent.parent

if TYPE_CHECKING:
    from mypy_extensions import mypyc_attr, trait
else:

    def mypyc_attr(*_args, **_kwargs):
        """mypy_extensions.mypyc_attr for mypyc, a no-op when the source runs as is."""
        return lambda cls: cls

    def trait(cls):
        """mypy_extensions.trait for mypyc, a no-op when the source runs as is."""
        return cls


def source_path(module: str) -> Path:
    return ROOT.joinpath(*module.split(".")).with_suffix(".py")


def source_digest(module: str) -> str:
    path = ROOT / C_EXTENSIONS[module] if module in C_EXTENSIONS else source_path(module)
    return hashlib.sha256(path.read_bytes()).hexdigest()


def choose(environ: os._Environ | dict = os.environ, record_path: Path | None = None
           ) -> tuple[bool, str]:
    """(compiled?, why): the rules of the module docstring."""
    if environ.get(PURE_ENV, "") not in ("", "0"):
        return False, f"{PURE_ENV} is set"
    record_path = record_path or Path(__file__).with_name(RECORD)
    try:
        record = json.loads(record_path.read_text())
        if isinstance(record, dict) and "failed" in record:
            return False, (f"{FAILED} ({record['failed']}): pure Python, slower, same "
                           "results; `pip install -v -e .` shows why")
        digests = record["modules"]
    except (OSError, ValueError, KeyError, TypeError):
        return False, "not compiled (no build record)"
    for module in (*NATIVE_MODULES, *C_EXTENSIONS):
        try:
            same = digests.get(module) == source_digest(module)
        except OSError:
            same = False
        if not same:
            path = C_EXTENSIONS.get(module) or source_path(module).relative_to(ROOT)
            return False, (f"{path} {STALE}: pure Python until `pip install -e .` compiles "
                           f"it again")
    return True, f"compiled with mypyc {record.get('mypy', '?')}"


class _SourceFinder(importlib.abc.MetaPathFinder):
    """Loads NATIVE_MODULES from their .py files, whatever sits beside them."""

    def find_spec(self, name, path=None, target=None):
        if name not in NATIVE_MODULES:
            return None
        return importlib.util.spec_from_file_location(name, source_path(name))


def warning(why: str) -> str | None:
    """The line ``select`` prints on stderr for a reason ``choose`` gave, or None: a
    stale build or a failed compile, not a pure-Python install that was asked for."""
    return f"fragsim: {why}" if STALE in why or FAILED in why else None


def select() -> tuple[bool, str]:
    """Decide once per process, before any of NATIVE_MODULES is imported."""
    compiled, why = choose()
    if not compiled:
        if not any(isinstance(f, _SourceFinder) for f in sys.meta_path):
            sys.meta_path.insert(0, _SourceFinder())
        line = warning(why)
        if line and not os.environ.get("_FRAGSIM_WARNED"):
            print(line, file=sys.stderr)
            os.environ["_FRAGSIM_WARNED"] = "1"  # once, not again in every worker
    return compiled, why


def loaded_compiled() -> dict[str, bool]:
    """For each imported NATIVE_MODULES entry: is the running module the compiled one?"""
    return {name: not str(sys.modules[name].__file__).endswith(".py")
            for name in NATIVE_MODULES if name in sys.modules}
