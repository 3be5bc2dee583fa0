"""Experiment configs: YAML files validated by a pydantic schema.

Every error is one line naming the file, the key path, what was expected and what was
found, e.g. ``configs/x.yaml: buddy.watermark_scale_factor: expected a number from 1
to 3000, got 0``. Unknown keys are errors with a "did you mean" suggestion.

``--set key.path=value`` overrides are applied to the raw YAML before validation; the
value is read as YAML (``true``, ``130``, ``16GiB``). ``variants:`` maps a variant
name to overrides of the same dotted form, and ``resolve_variants`` gives one
validated config per variant.
"""

from __future__ import annotations

import copy
import difflib
from collections.abc import Sequence
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from annotated_types import Ge, Gt, Le, Lt
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError

from sim.errors import FragsimError
from sim.units import parse_duration, parse_size

Size = Annotated[int, BeforeValidator(parse_size)]
Duration = Annotated[float, BeforeValidator(parse_duration)]


class Section(BaseModel):
    """A config section: unknown keys are errors."""

    model_config = ConfigDict(extra="forbid")


class MachineConfig(Section):
    """The simulated machine: one zone of ``memory / page_size`` pages."""

    memory: Size = Field(1 << 30, description="installed memory, e.g. 16GiB")
    page_size: Size = Field(4096, description="only 4KiB is modelled")
    cpus: int = Field(2, ge=1, le=1024, description="sizes the per-CPU lists")
    max_order: int = Field(10, ge=4, le=20, description="MAX_PAGE_ORDER")
    pageblock_order: int = Field(9, ge=4, le=20)
    nr_populated_zones: int = Field(
        3, ge=1, le=5, description="zones the THP min_free_kbytes formula counts"
    )


class BuddyConfig(Section):
    """Page allocator switches and sysctls (mm/page_alloc.c)."""

    pcp: bool = True
    grouping_by_mobility: bool = True
    free_list_order: Literal["lifo", "fifo", "address"] = "lifo"
    thp: bool = True
    min_free_kbytes: int | None = Field(None, ge=128, le=4 << 20)
    watermark_scale_factor: int = Field(10, ge=1, le=3000)
    watermark_boost_factor: int = Field(15000, ge=0)
    percpu_pagelist_high_fraction: int = Field(0, ge=0)


class SlabConfig(Section):
    """Settings shared by every slab cache (mm/slub.c, fs/dcache.c)."""

    rcu_grace: Duration = Field(0.1, description="call_rcu grace period; the real trace shows "
                                "45-150 ms between an unlink and its rcu_do_batch frees")
    vfs_cache_pressure: int = Field(100, ge=0, le=10000)


class CacheConfig(Section):
    """One slab cache, keyed by its name under ``caches:``. Unset fields are derived
    (calculate_order from ``size``; flags from the well-known-caches table)."""

    size: Size | None = Field(None, description="slot size in bytes, as slabinfo's objsize")
    objects_per_slab: int | None = Field(None, ge=1, le=32767)
    order: int | None = Field(None, ge=0, le=10)
    mobility: str = Field("none", description="none, free, move, or module:Class")
    rcu_free: bool | None = None
    min_partial: int | None = Field(None, ge=0, le=1000)
    cpu_partial_slabs: int | None = Field(None, ge=0, le=10000)


class DefragSection(Section):
    """The slab defragmenter (sim/defrag.py) and what triggers it."""

    enabled: bool = False
    used_ratio: int = Field(30, ge=0, le=100)
    max_partial: int = Field(20, ge=0, le=100000)
    max_slabs_per_pass: int = Field(0, ge=0)
    pinned_policy: Literal["skip", "refuse"] = "skip"
    rcu_wait: bool = False
    batch: int = Field(16, ge=1, le=100000)
    cost_get: Duration = 50e-9
    cost_free: Duration = 2e-6
    cost_move: Duration = 1e-6
    after_shrink: bool = Field(True, description="a pass at the end of each shrinker run")
    interval: Duration | None = Field(None, description="a periodic pass")
    on_failure: bool = Field(False, description="a pass on a high-order allocation failure")
    failure_min_order: int = Field(1, ge=1, le=20)
    at: list[Duration] = Field(default_factory=list, description="passes at given times")


class CompactionSection(Section):
    """Compaction (sim/compaction.py): kcompactd, direct compaction and their costs."""

    enabled: bool = Field(True, description="kcompactd and direct compaction")
    proactiveness: int = Field(20, ge=0, le=100)
    extfrag_threshold: int = Field(500, ge=0, le=1000)
    slab_movable: bool = Field(False, description="compaction vacates slab pages of "
                               "caches with a mobility, through the defragmenter")
    migrate_scan_cost: Duration = 10e-9
    free_scan_cost: Duration = 10e-9
    isolate_cost: Duration = 100e-9
    migrate_cost: Duration = 2.3e-6


class ReclaimSection(Section):
    """kswapd and direct reclaim (sim/vmscan.py)."""

    kswapd: bool = True
    scan_cost: Duration = Field(200e-9, description="per LRU page scanned")
    evict_cost: Duration = Field(1e-6, description="per page-cache page evicted")
    slab_scan_cost: Duration = Field(100e-9, description="per slab object scanned")


class WorkloadSpec(Section):
    """One workload: ``kind`` picks the class; the other keys are its parameters,
    checked against that class's schema after this first pass."""

    model_config = ConfigDict(extra="allow")
    kind: str


class ExperimentConfig(Section):
    """One experiment: the machine, its allocator, what runs on it, for how long."""

    name: str = "experiment"
    seed: int = Field(1, ge=0)
    seeds: int = Field(1, ge=1, le=10000, description="replicates: seed, seed+1, ...")
    duration: Duration = 60.0
    sample_every: Duration = Field(1.0, gt=0)
    pageblock_sample_every: Duration | None = Field(
        None, description="mixed-pageblock sampling period (default 10 x sample_every)")
    machine: MachineConfig = Field(default_factory=MachineConfig)
    buddy: BuddyConfig = Field(default_factory=BuddyConfig)
    slab: SlabConfig = Field(default_factory=SlabConfig)
    caches: dict[str, CacheConfig] = Field(default_factory=dict)
    defrag: DefragSection = Field(default_factory=DefragSection)
    compaction: CompactionSection = Field(default_factory=CompactionSection)
    reclaim: ReclaimSection = Field(default_factory=ReclaimSection)
    workloads: list[WorkloadSpec] = Field(default_factory=list)
    variants: dict[str, dict[str, Any]] = Field(default_factory=dict)


# ------------------------------------------------------------------ loading


def load_yaml(path: str | Path) -> dict[str, Any]:
    """The YAML mapping in a file, or a one-line FragsimError."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as e:
        raise FragsimError(f"{path}: cannot read: {e.strerror or e}") from e
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f":{mark.line + 1}" if mark is not None else ""
        problem = getattr(e, "problem", None) or str(e).splitlines()[0]
        raise FragsimError(f"{path}{where}: expected valid YAML, got {problem}") from e
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise FragsimError(f"{path}: expected a mapping of keys, got {type(data).__name__}")
    return data


def parse_override(text: str) -> tuple[list[str], Any]:
    """``a.b.c=value`` -> (['a', 'b', 'c'], value read as YAML)."""
    key, sep, raw = text.partition("=")
    if not sep or not key.strip() or any(not part for part in key.strip().split(".")):
        raise FragsimError(f"--set {text}: expected KEY.PATH=VALUE, got {text!r}")
    try:
        value = yaml.safe_load(raw) if raw.strip() else ""
    except yaml.YAMLError:
        value = raw
    return key.strip().split("."), value


def apply_override(data: dict[str, Any], path: list[str], value: Any, source: str) -> None:
    """Set ``a.b.c`` (a list item by index: ``workloads.0.rate``), creating sections."""
    node: Any = data
    for i, part in enumerate(path):
        where = ".".join(path[: i + 1])
        last = i == len(path) - 1
        if isinstance(node, list):
            if not part.isdigit() or int(part) >= len(node):
                raise FragsimError(
                    f"{source}: {where}: expected an index from 0 to {len(node) - 1}, "
                    f"got {part!r}")
            key: Any = int(part)
        elif isinstance(node, dict):
            key = part
            if not last and node.get(part) is None:
                node[part] = {}
        else:
            raise FragsimError(f"{source}: {'.'.join(path[:i])}: expected a section, "
                               f"got {_short(node)}")
        if last:
            node[key] = value
        else:
            node = node[key]


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def load_config(
    path: str | Path, overrides: Sequence[str] = (), variant: str | None = None
) -> ExperimentConfig:
    """Read, override and validate one config (or one of its variants)."""
    raw = load_yaml(path)
    return validate_config(raw, str(path), overrides, variant)


def validate_config(
    raw: dict[str, Any], source: str, overrides: Sequence[str] = (), variant: str | None = None
) -> ExperimentConfig:
    data = copy.deepcopy(raw)
    # A sweep or capacity file is also a plain experiment: fragsim sweep / capacity read
    # those sections; run and validate use the rest.
    data.pop("sweep", None)
    data.pop("capacity", None)
    origins: dict[tuple[str, ...], str] = {}
    if variant is not None:
        variants = data.get("variants") or {}
        if variant not in variants:
            raise FragsimError(
                f"{source}: variants: expected one of {', '.join(variants) or '(none)'}, "
                f"got {variant!r}"
            )
        changes = variants[variant]
        if not isinstance(changes, dict):
            raise FragsimError(
                f"{source}: variants.{variant}: expected a mapping of KEY.PATH: VALUE, "
                f"got {changes!r}"
            )
        for key, value in changes.items():
            key_path = str(key).split(".")
            apply_override(data, key_path, value, f"{source}: variants.{variant}")
            origins[tuple(key_path)] = f"{source}: variants.{variant}"
    for text in overrides:
        key_path, value = parse_override(text)
        apply_override(data, key_path, value, f"--set {text}")
        origins[tuple(key_path)] = f"--set {text}"
    try:
        config = ExperimentConfig.model_validate(data)
    except ValidationError as e:
        raise FragsimError(_one_line(e, source, origins)) from None
    _check_consistency(config, source)
    _check_workloads(config, source, origins)
    return config


def _check_workloads(
    config: ExperimentConfig, source: str, origins: dict[tuple[str, ...], str]
) -> None:
    """Validate each workload's parameters against its class's schema, in place."""
    from workloads import resolve_kind  # workloads import the engine; import late

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
        # A block order the zone cannot hold would fail at its first allocation.
        max_order = config.machine.max_order
        for key in ("order", "orders"):
            value = getattr(validated, key, None)
            top = max(value, default=None) if isinstance(value, dict) else value
            if isinstance(top, int) and top > max_order:
                where = origins.get(("workloads", str(i), key), source)
                raise FragsimError(f"{where}: workloads.{i}.{key}: expected orders up to "
                                   f"machine.max_order ({max_order}), got {top}")
        object.__setattr__(spec, "__pydantic_extra__", validated.model_dump(mode="json"))


def _check_consistency(config: ExperimentConfig, source: str) -> None:
    machine = config.machine
    if machine.page_size != 4096:
        raise FragsimError(
            f"{source}: machine.page_size: expected 4KiB (the only size modelled), "
            f"got {machine.page_size}"
        )
    if machine.pageblock_order > machine.max_order:
        raise FragsimError(
            f"{source}: machine.pageblock_order: expected at most max_order "
            f"({machine.max_order}), got {machine.pageblock_order}"
        )
    pages = machine.memory // machine.page_size
    if pages < 4 << machine.pageblock_order:
        raise FragsimError(
            f"{source}: machine.memory: expected at least 4 pageblocks "
            f"({4 << machine.pageblock_order} pages), got {machine.memory} bytes"
        )


def resolve_variants(
    path: str | Path, overrides: Sequence[str] = ()
) -> dict[str, ExperimentConfig]:
    """One validated config per variant, or {"default": config} without variants."""
    raw = load_yaml(path)
    names = list((raw.get("variants") or {}).keys())
    if not names:
        return {"default": validate_config(raw, str(path), overrides)}
    return {name: validate_config(raw, str(path), overrides, name) for name in names}


def to_yaml(config: ExperimentConfig) -> str:
    """The fully resolved config, as YAML a later run can read back."""
    return yaml.safe_dump(config.model_dump(mode="json"), sort_keys=False)


# ------------------------------------------------------------------ error messages


def _one_line(
    error: ValidationError,
    source: str,
    origins: dict[tuple[str, ...], str],
    prefix: tuple[str, ...] = (),
    root: type[BaseModel] | None = None,
) -> str:
    root = root or ExperimentConfig
    first = error.errors(include_url=False)[0]
    loc = tuple(str(part) for part in first["loc"])
    key = ".".join(prefix + loc)
    where = origins.get(prefix + loc, source)
    kind = first["type"]
    got = first.get("input")
    if kind == "extra_forbidden":
        hint = _did_you_mean(root, loc)
        return f"{where}: {key}: unknown key{hint}"
    if kind == "missing":
        return f"{where}: {key}: expected a value, got nothing"
    return f"{where}: {key}: {_expected(root, first, loc)}, got {got!r}"


def _model_of(annotation: Any) -> type[BaseModel] | None:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in getattr(annotation, "__args__", ()):  # dict[str, Model], list[Model], X | None
        if isinstance(arg, type) and issubclass(arg, BaseModel):
            return arg
    return None


def _field_info(root: type[BaseModel], loc: tuple[str, ...]):
    model: type[BaseModel] | None = root
    info = None
    skip_key = False
    for part in loc:
        if skip_key:  # the key of a dict or the index of a list
            skip_key = False
            continue
        if model is None or part not in model.model_fields:
            return None
        info = model.model_fields[part]
        origin = getattr(info.annotation, "__origin__", None)
        skip_key = origin in (dict, list)
        model = _model_of(info.annotation)
    return info


def _did_you_mean(root: type[BaseModel], loc: tuple[str, ...]) -> str:
    if len(loc) == 1:
        model: type[BaseModel] | None = root
    else:
        parent = _field_info(root, loc[:-1])
        model = _model_of(parent.annotation) if parent else None
        if model is None and len(loc) > 2:  # inside a dict entry or a list item
            parent = _field_info(root, loc[:-2])
            model = _model_of(parent.annotation) if parent else None
    if model is None:
        return ""
    close = difflib.get_close_matches(loc[-1], list(model.model_fields), n=1)
    return f"; did you mean {close[0]!r}?" if close else ""


def _expected(root: type[BaseModel], error: dict, loc: tuple[str, ...]) -> str:
    kind = error["type"]
    ctx = error.get("ctx") or {}
    if kind in ("greater_than_equal", "less_than_equal", "greater_than", "less_than"):
        info = _field_info(root, loc)
        low = high = None  # (bound, inclusive)
        for meta in info.metadata if info else ():
            if isinstance(meta, Ge | Gt):
                low = (meta.ge, True) if isinstance(meta, Ge) else (meta.gt, False)
            if isinstance(meta, Le | Lt):
                high = (meta.le, True) if isinstance(meta, Le) else (meta.lt, False)
        lows = None if low is None else ("of at least " if low[1] else "above ") + str(low[0])
        highs = None if high is None else ("of at most " if high[1] else "below ") + str(high[0])
        if low is not None and high is not None:
            if low[1] and high[1]:
                return f"expected a number from {low[0]} to {high[0]}"
            return f"expected a number {lows.removeprefix('of ')} and {highs.removeprefix('of ')}"
        return f"expected a number {lows or highs}"
    if kind == "literal_error":
        return f"expected one of {ctx.get('expected', '')}".replace("'", "")
    if kind in ("int_parsing", "int_type", "int_from_float"):
        return "expected a whole number"
    if kind in ("float_parsing", "float_type"):
        return "expected a number"
    if kind in ("bool_parsing", "bool_type"):
        return "expected true or false"
    if kind in ("dict_type", "model_type", "model_attributes_type"):
        return "expected a mapping of keys"
    if kind in ("string_type",):
        return "expected a string"
    if kind == "value_error" and "error" in ctx:
        message = str(ctx["error"])
        return message.split(", got ")[0]
    return f"expected {error['msg'][0].lower()}{error['msg'][1:]}"



