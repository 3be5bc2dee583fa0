"""An experiment's config checked against the model, not only against the schema.

sim/config.py checks a file against the schema (types, units, ranges, unknown keys, the
machine's own consistency) and imports nothing of the model. This module adds what only
the model knows, and is what the commands load configs through:

- every workload's parameters against its class's ``Params`` and against the machine
  (``workloads.check_workloads``: a CPU or a block order the machine does not have);
- every ``caches:`` name is a cache that will exist (known to fragsim, a kmalloc name,
  one a workload names, or declared with a size), and its ``mobility`` is ``none``,
  ``free``, ``move`` or an importable ``module:Class``.

``load_config``, ``validate_config`` and ``resolve_variants`` take the same arguments
as sim/config.py's, plus ``check_names=False`` (fragsim replay: its caches come from a
slabinfo read later).
"""

from __future__ import annotations

import difflib
import importlib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from sim import config as schema
from sim.config import ExperimentConfig, MachineConfig
from sim.defrag import MOBILITY_NAMES
from sim.errors import FragsimError
from sim.slab import CACHE_FLAGS, KNOWN_CACHE_SIZES, RCU_FREED_CACHES, kmalloc_size
from workloads import check_workloads, workload_tree


def validate_config(
    raw: dict[str, Any], source: str, overrides: Sequence[str] = (), variant: str | None = None,
    *, check_names: bool = True, check_length: bool = False,
) -> ExperimentConfig:
    """One config: the schema (sim/config.py ``parse_config``), then the model."""
    config, origins = schema.parse_config(raw, source, overrides, variant,
                                          check_length=check_length)
    if config.machine.from_ is not None:
        _check_from(config.machine, origins.get(("machine", "from"), source), source)
    check_workloads(config, source, origins)
    _check_caches(config, source, origins, check_names)
    return config


def _snapshot_exists(path: Path) -> bool:
    return path.is_dir() or Path(f"{path}.buddyinfo").exists()


def _check_from(machine: MachineConfig, where: str, source: str) -> None:
    """``machine.from``: a readable, consistent snapshot (sim/snapshot.py
    ``read_machine_snapshot``), whose sizes replace ``memory``, ``zones`` and ``cpus``
    (which may not be given beside it)."""
    from sim.snapshot import read_machine_snapshot

    # A relative path is taken from the config file's directory, then from the
    # working directory; the path kept is absolute (a sweep's workers may run elsewhere).
    path = Path(machine.from_ or "")
    if not path.is_absolute():
        beside = Path(source).parent / path if Path(source).is_file() else None
        path = beside if beside is not None and _snapshot_exists(beside) else Path.cwd() / path
    path = path.resolve()
    machine.from_ = str(path)
    snap = read_machine_snapshot(path, machine.online)
    zones = [{name: pages * machine.page_size} for name, pages in snap.zone_pages]
    real = {"memory": snap.nr_pages * machine.page_size, "cpus": snap.cpus, "zones": zones}
    given = [key for key in ("memory", "zones", "cpus")
             if key in machine.model_fields_set and getattr(machine, key) != real[key]]
    if given:
        raise FragsimError(f"{where}: machine.from: expected no {', '.join(given)} beside "
                           f"it (the snapshot gives them), got {', '.join(given)}")
    machine.memory, machine.cpus, machine.zones = real["memory"], snap.cpus, zones


def load_config(path: str | Path, overrides: Sequence[str] = (),
                variant: str | None = None) -> ExperimentConfig:
    """Read, override and validate one config (or one of its variants)."""
    return schema.load_config(path, overrides, variant, validate=validate_config)


def resolve_variants(path: str | Path, overrides: Sequence[str] = ()
                     ) -> dict[str, ExperimentConfig]:
    """One validated config per variant (see sim/config.py ``resolve_variants``)."""
    return schema.resolve_variants(path, overrides, validate=validate_config)


def validate_for_replay(overrides: Sequence[str]) -> ExperimentConfig:
    """The settings ``fragsim replay`` takes from ``--set``: any cache name passes."""
    return validate_config({}, "fragsim replay", overrides, check_names=False)


def known_cache_names() -> set[str]:
    """Caches fragsim knows by name: their sizes or kmem_cache_create flags."""
    return set(KNOWN_CACHE_SIZES) | set(CACHE_FLAGS) | set(RCU_FREED_CACHES)


def _is_kmalloc_name(name: str) -> bool:
    return kmalloc_size(name.removeprefix("dma-")) is not None


def _check_caches(config: ExperimentConfig, source: str,
                  origins: dict[tuple[str, ...], str], check_names: bool) -> None:
    """Each ``caches:`` entry names a cache that will exist, and has a mobility that
    does: ``none``, ``free``, ``move``, or an importable ``module:Class``."""
    known = known_cache_names()
    sized = {name for name, spec in config.caches.items() if spec.size}
    named_by_workloads: set[str] = set()
    any_name = not check_names
    for i, spec in enumerate(config.workloads):
        for path, params in workload_tree(("workloads", str(i)), spec.model_extra or {}):
            kind = params.get("kind", spec.kind if len(path) == 2 else None)
            if kind == "trace":
                names = _slabinfo_names(params.get("slabinfo"))
                any_name = any_name or names is None
                named_by_workloads |= names or set()
            for key in ("cache", "inode_cache"):
                name = params.get(key)
                if not isinstance(name, str):
                    continue
                named_by_workloads.add(name)
                if (key == "cache" and not params.get("size") and name not in known
                        and name not in sized and not _is_kmalloc_name(name)):
                    where = origins.get(path[:2] + (key,), origins.get(path[:2], source))
                    raise FragsimError(
                        f"{where}: {'.'.join(path)}.{key}: expected a cache fragsim knows "
                        f"or a size (here or under caches.{name}), got {name!r}"
                        f"{_suggest(name, known)}")
    for name, spec in config.caches.items():
        where = origins.get(("caches", name), source)
        if not (any_name or name in known or name in sized or name in named_by_workloads
                or _is_kmalloc_name(name)):
            raise FragsimError(
                f"{where}: caches.{name}: expected a cache fragsim knows, one a workload "
                f"names, or a size to declare it, got {name!r}"
                f"{_suggest(name, known | named_by_workloads)}")
        mobility = spec.mobility
        where = origins.get(("caches", name, "mobility"), where)
        if mobility in MOBILITY_NAMES:
            continue
        if ":" not in mobility:
            raise FragsimError(
                f"{where}: caches.{name}.mobility: expected one of "
                f"{', '.join(MOBILITY_NAMES)} or module:Class, got {mobility!r}"
                f"{_suggest(mobility, set(MOBILITY_NAMES))}")
        module_name, _, attr = mobility.partition(":")
        try:
            target = getattr(importlib.import_module(module_name), attr)
        except Exception as e:  # noqa: BLE001 (a user's module may raise anything)
            raise FragsimError(
                f"{where}: caches.{name}.mobility: expected an importable module:Class, "
                f"got {mobility!r} ({type(e).__name__}: {e})") from None
        if not callable(target):
            raise FragsimError(
                f"{where}: caches.{name}.mobility: expected a class or factory for "
                f"module:Class, got {mobility!r} (a {type(target).__name__})")


def _suggest(name: str, choices: set[str]) -> str:
    close = difflib.get_close_matches(name, sorted(choices), n=1)
    return f"; did you mean {close[0]!r}?" if close else ""


def _slabinfo_names(path: Any) -> set[str] | None:
    """The cache names of a slabinfo file; None without one or when it cannot be read
    (the trace workload says so when it runs)."""
    if not isinstance(path, str):
        return None
    try:
        with open(path, encoding="utf-8") as f:
            lines = f.read().splitlines()
    except (OSError, UnicodeDecodeError):
        return None
    return {line.split()[0] for line in lines
            if line.strip() and not line.startswith(("#", "slabinfo"))}


