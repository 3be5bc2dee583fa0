"""Workloads: SimPy client processes of the allocators.

``resolve_kind`` maps a config's ``kind:`` to a class: a built-in name, or
``package.module:Class`` for a user's own workload (a subclass of
``workloads.base.Workload`` with a ``Params`` pydantic model and a ``run()`` generator).
"""

from __future__ import annotations

import difflib
import importlib

import sim  # noqa: F401  (chooses the compiled or pure build before a module below loads)

BUILTIN = {
    "slab_churn": "workloads.synthetic:SlabChurn",
    "kernel_alloc": "workloads.synthetic:KernelAlloc",
    "anon": "workloads.synthetic:Anon",
    "page_cache": "workloads.synthetic:PageCache",
    "thp_probe": "workloads.synthetic:ThpProbe",
    "fragment": "workloads.synthetic:Fragment",
    "compact_memory": "workloads.synthetic:CompactMemory",
    "fs_churn": "workloads.fs_churn:FsChurn",
    "phases": "workloads.phases:Phases",
    "trace": "workloads.trace:TraceReplay",
}


def resolve_kind(kind: str):
    """The workload class for ``kind``; ValueError with a suggestion otherwise."""
    target = BUILTIN.get(kind)
    if target is None and ":" not in kind:
        close = difflib.get_close_matches(kind, list(BUILTIN), n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise ValueError(
            f"expected one of {', '.join(BUILTIN)} or module:Class, got {kind!r}{hint}")
    module_name, _, class_name = (target or kind).partition(":")
    try:
        module = importlib.import_module(module_name)
        cls = getattr(module, class_name)
    except (ImportError, AttributeError) as err:
        raise ValueError(f"expected an importable module:Class, got {kind!r} ({err})") from None
    from workloads.base import Workload

    if not (isinstance(cls, type) and issubclass(cls, Workload)):
        raise ValueError(f"expected a subclass of workloads.base.Workload, got {kind!r}")
    return cls
