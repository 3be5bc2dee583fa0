"""Workloads: SimPy client processes of the allocators.

``resolve_kind`` maps a config's ``kind:`` to a class: a built-in name, or
``package.module:Class`` for a user's own workload (a subclass of
``workloads.base.Workload`` with a ``Params`` pydantic model and a ``run()`` generator).
``check_workloads`` checks a config's workloads against their classes' schemas and
against the machine (sim/experiment.py calls it when a config is loaded).
"""

from __future__ import annotations

import difflib
import importlib
from typing import Any

from pydantic import ValidationError

import sim  # noqa: F401  (chooses the compiled or pure build before a module below loads)
from sim.config import ExperimentConfig, _one_line
from sim.errors import FragsimError

BUILTIN = {
    "slab_churn": "workloads.synthetic:SlabChurn",
    "kernel_alloc": "workloads.synthetic:KernelAlloc",
    "anon": "workloads.synthetic:Anon",
    "page_cache": "workloads.page_cache:PageCache",
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


def check_workloads(
    config: ExperimentConfig, source: str, origins: dict[tuple[str, ...], str]
) -> None:
    """Validate each workload's parameters against its class's schema, in place, and
    what the schema cannot see: a CPU or a block order the machine does not have."""
    for i, spec in enumerate(config.workloads):
        try:
            cls = resolve_kind(spec.kind)
        except ValueError as e:
            where = origins.get(("workloads", str(i), "kind"), source)
            raise FragsimError(f"{where}: workloads.{i}.kind: {e}") from None
        params = spec.model_dump(exclude={"kind"})
        try:
            validated = cls.Params.model_validate(params)
        except ValidationError as e:
            prefix = ("workloads", str(i))
            raise FragsimError(_one_line(e, source, origins, prefix, cls.Params)) from None
        dumped = validated.model_dump(mode="json")
        for path, values in workload_tree(("workloads", str(i)), dumped):
            _check_machine_fits(config, path, values, origins, source)
        object.__setattr__(spec, "__pydantic_extra__", dumped)


def workload_tree(path: tuple[str, ...], params: dict[str, Any]):
    """(key path, parameters) of a workload and of every workload nested in its
    ``steps`` (the phases workload), as validated and dumped."""
    yield path, params
    for k, step in enumerate(params.get("steps") or ()):
        for j, child in enumerate(step.get("workloads") or ()):
            yield from workload_tree(path + ("steps", str(k), "workloads", str(j)), child)


def _check_machine_fits(config: ExperimentConfig, path: tuple[str, ...],
                        params: dict[str, Any], origins: dict[tuple[str, ...], str],
                        source: str) -> None:
    name = ".".join(path)

    def where(key: str) -> str:
        return origins.get(path + (key,), origins.get(path[:2], source))

    cpu = params.get("cpu")
    cpus = config.machine.cpus
    if isinstance(cpu, int) and not 0 <= cpu < cpus:
        raise FragsimError(f"{where('cpu')}: {name}.cpu: expected a CPU from 0 to {cpus - 1} "
                           f"(machine.cpus is {cpus}), got {cpu}")
    # A block order the zone cannot hold would fail at its first allocation.
    max_order = config.machine.max_order
    for key in ("order", "orders"):
        value = params.get(key)
        top = max((int(o) for o in value), default=None) if isinstance(value, dict) else value
        if isinstance(top, int) and not isinstance(top, bool) and top > max_order:
            raise FragsimError(f"{where(key)}: {name}.{key}: expected orders up to "
                               f"machine.max_order ({max_order}), got {top}")
