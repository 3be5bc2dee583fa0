"""The config reference (docs/config.md), generated from the pydantic schema.

``config_reference()`` walks ``ExperimentConfig`` and its sections (sim/config.py),
the ``sweep:`` and ``capacity:`` sections (sim/sweep.py, sim/capacity.py) and the
``Params`` of every built-in workload kind (workloads/__init__.py ``BUILTIN``), and
writes one Markdown table per section: each key's path, type and unit, default,
allowed values or range, and meaning. The meaning is the field's ``description`` in
the schema; a field without one takes it from ``MEANINGS`` below, keyed by the path
shown in the reference. The output depends on the schema alone (declaration order,
no timestamps), so ``fragsim config-reference --check`` can tell whether the checked-in
docs/config.md is current; tests/test_docs.py runs that check.
"""

from __future__ import annotations

import inspect
import types
import typing
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Literal

from annotated_types import Ge, Gt, Le, Lt
from pydantic import BaseModel
from pydantic.fields import FieldInfo
from pydantic_core import PydanticUndefined

from sim.units import TIME_UNITS, format_duration, format_size, parse_duration, parse_size

DEFAULT_PATH = Path("docs") / "config.md"
COMMAND = "fragsim config-reference > docs/config.md"

# Meanings of the fields whose schema has no description, by the path the reference
# shows. A description added to the schema takes precedence over an entry here.
MEANINGS: dict[str, str] = {
    "name": "the experiment's name: results go to results/NAME/",
    "seed": "the first seed; replicate k runs with seed + k",
    "sample_every": "the period of the time series (timeseries.csv)",
    "machine": "the simulated machine",
    "buddy": "the page allocator",
    "slab": "settings of every slab cache",
    "caches": "per-cache settings, by cache name (caches.NAME below)",
    "defrag": "the slab defragmenter",
    "compaction": "compaction",
    "reclaim": "reclaim",
    "workloads": "what runs on the machine: a list of workloads, each with a kind",
    "variants": "NAME: {KEY.PATH: value, ...}: the experiment once per variant, with "
                "these keys changed (a variant's keys win over the rest of the file, "
                "--set wins over both)",
    "machine.pageblock_order": "pageblock_order: the unit of mobility grouping and "
                               "the THP order",
    "buddy.pcp": "per-CPU page lists (false: every page straight through the buddy "
                 "lists, as the boot pageset)",
    "buddy.grouping_by_mobility": "group pages by mobility (false: "
                                  "page_group_by_mobility_disabled, one list per order)",
    "buddy.free_list_order": "where a freed block goes: lifo is the kernel; fifo (always "
                             "the tail) and address (lowest pfn first) are what-ifs",
    "buddy.thp": "THP enabled: raises min_free_kbytes (set_recommended_min_free_kbytes) "
                 "and gives pageblock order a per-CPU list",
    "buddy.min_free_kbytes": "vm.min_free_kbytes (null: as the kernel computes it)",
    "buddy.watermark_scale_factor": "vm.watermark_scale_factor, in 1/10000 of memory",
    "buddy.watermark_boost_factor": "vm.watermark_boost_factor, in 1/10000 of the high "
                                    "watermark (0: no boost)",
    "buddy.percpu_pagelist_high_fraction": "vm.percpu_pagelist_high_fraction (0: high "
                                           "auto-tuned)",
    "slab.vfs_cache_pressure": "vm.vfs_cache_pressure: how hard the shrinkers scan "
                               "dentries and inodes, in % of the default",
    "caches.NAME.objects_per_slab": "objects per slab (null: from calculate_order)",
    "caches.NAME.order": "pages per slab as an order (null: from calculate_order)",
    "caches.NAME.rcu_free": "objects are freed through call_rcu, after a grace period "
                            "(null: as the kernel does for this cache)",
    "caches.NAME.min_partial": "min_partial: empty slabs kept on the node partial list "
                               "(null: from the object size)",
    "caches.NAME.cpu_partial_slabs": "slabs on each per-CPU partial list (null: from "
                                     "the geometry)",
    "defrag.enabled": "run the slab defragmenter on caches with a mobility",
    "defrag.used_ratio": "candidate slabs have at most this % of their objects in use",
    "defrag.max_partial": "only caches with more node-partial slabs than this",
    "defrag.max_slabs_per_pass": "slabs processed per pass over all caches (0: every "
                                 "candidate)",
    "defrag.pinned_policy": "free mode: skip pinned objects, or refuse a slab that "
                            "holds one",
    "defrag.rcu_wait": "wait for an RCU grace period after each batch",
    "defrag.batch": "objects per reclaim step (one wait, one RCU wait)",
    "defrag.cost_get": "simulated CPU time per object examined by get()",
    "defrag.cost_free": "simulated CPU time per object evicted",
    "defrag.cost_move": "simulated CPU time per object moved",
    "defrag.failure_min_order": "with on_failure: failures of this order or more "
                                "trigger a pass",
    "compaction.proactiveness": "vm.compaction_proactiveness (0: no proactive "
                                "compaction)",
    "compaction.extfrag_threshold": "vm.extfrag_threshold: compaction_suitable's "
                                    "fragmentation-index gate, in 1/1000",
    "compaction.migrate_scan_cost": "simulated time per page the migrate scanner looks at",
    "compaction.free_scan_cost": "simulated time per page the free scanner looks at",
    "compaction.isolate_cost": "simulated time per page isolated",
    "compaction.migrate_cost": "simulated time per page migrated (calibrated on the real "
                               "compaction run in tests/data/compaction)",
    "reclaim.kswapd": "run kswapd (false: only direct reclaim)",
    "workloads[].kind": "which workload; the other keys are its parameters, below",
    "workloads[].name": "the workload's name in results and its random stream "
                        "(default KIND-INDEX)",
    "workloads[].start": "start at this time",
    "workloads[].cpu": "where the workload runs: any (one process, placed and moved by "
                       "a simple scheduler model, see migrate_every), one CPU (0 to "
                       "machine.cpus - 1, pinned), or per operation: round_robin (the "
                       "next CPU each time) or random",
    "workloads[].lifetime": "how long each object or page lives",
    "workloads[].lifetime.dist": "the distribution of lifetimes (forever: never freed)",
    "workloads[].lifetime.mean": "the mean lifetime (lognormal: the median is "
                                 "mean / exp(sigma^2 / 2))",
    "workloads[].lifetime.sigma": "lognormal only: the shape",
    "workloads[].cache": "the slab cache, by name (a known cache, a kmalloc-N, or one "
                         "given a size)",
    "workloads[].arrival": "Poisson arrivals at rate, or bursts of burst_size every "
                           "burst_every",
    "workloads[].burst_size": "objects per burst",
    "workloads[].burst_every": "the time between bursts",
    "workloads[].max_objects": "live objects at most (null: no limit)",
    "workloads[].unused_share": "share of objects left unused on the cache's LRU, "
                                "reclaimable by the shrinker and free-mode defrag",
    "workloads[].orders": "ORDER: weight: the orders allocated, with their weights",
    "workloads[].gfp": "the GFP flags",
    "workloads[].pinned_share": "share of pages with a long-term GUP pin (never "
                                "migrated)",
    "workloads[].shrink_at": "at this time, free down to shrink_to",
    "workloads[].shrink_to": "the resident size after shrink_at",
    "workloads[].free_at_stop": "free every page at stop",
    "workloads[].reread": "share of reads that hit a cached page",
    "workloads[].interval": "the time between attempts",
    "workloads[].order": "the order of each attempt (9: a 2 MiB THP)",
    "workloads[].hold": "how long a successful allocation is held",
    "workloads[].keep_one_in": "K: one page of every K stays allocated",
    "workloads[].unmovable_share": "share of the fill allocated as unmovable kernel pages",
    "workloads[].slab_share": "share of the fill allocated as slab objects of slab_cache",
    "workloads[].slab_cache": "the cache of slab_share's objects",
    "workloads[].slab_size": "slab_cache's object size, if the cache is new",
    "workloads[].at": "the times of each run",
    "workloads[].fs": "tmpfs pins every live file; disk leaves closed files unused on "
                      "the LRUs",
    "workloads[].files": "files created",
    "workloads[].inode_cache": "the inode cache (null: shmem_inode_cache on tmpfs, "
                               "ext4_inode_cache on disk)",
    "workloads[].steps": "the phases, run back to back",
    "workloads[].steps[].duration": "how long the step lasts",
    "workloads[].steps[].workloads": "workloads of the step, each as under workloads[]: "
                                     "they start with the step and stop at its end",
    "workloads[].occupancy": "how a slabinfo's objects spread over its slabs: even, "
                             "or packed into the fewest",
    "workloads[].speed": "replay speed: simulated time = trace time / speed",
    "sweep.seed_mode": "common: replicate k runs seed + k at every point (paired); "
                       "distinct: a seed per point and replicate",
    "sweep.metrics": "the summary metrics the sweep's plots show",
    "capacity.seeds": "replicates per probe",
}

# What a built-in kind is, where its class has no docstring of its own.
KIND_SUMMARIES: dict[str, str] = {
    "fs_churn": "Create files (a dentry, an inode with its LSM blob, page-cache pages, "
                "XArray nodes and, on ext4, extent_status entries each), then delete a "
                "random share of them, on tmpfs or a disk file system.",
    "phases": "Workloads in sequence: each step lasts ``duration``; its workloads "
              "start with it and stop at its end.",
    "trace": "Replay an ftrace kmem trace inside a running machine; timestamps drive "
             "simulated time, scaled by ``speed``.",
}


# ------------------------------------------------------------------ types and values


def _unwrap(annotation: Any) -> tuple[Any, list[Any]]:
    """(bare type, metadata) of ``Annotated[T, ...]``; others as they are."""
    if typing.get_origin(annotation) is typing.Annotated:
        return annotation.__origin__, list(annotation.__metadata__)
    return annotation, []


def _unit(metadata: list[Any]) -> str | None:
    """'size' or 'duration' when a BeforeValidator parses units."""
    for meta in metadata:
        func = getattr(meta, "func", None)
        if func is parse_size:
            return "size"
        if func is parse_duration:
            return "duration"
    return None


def _is_union(annotation: Any) -> bool:
    return typing.get_origin(annotation) in (typing.Union, types.UnionType)


def _is_model(annotation: Any) -> bool:
    return isinstance(annotation, type) and issubclass(annotation, BaseModel)


def type_name(annotation: Any, metadata: list[Any] = ()) -> str:
    """A reader's name for a field's type, with its unit: ``size (bytes)``."""
    annotation, inner = _unwrap(annotation)
    unit = _unit(list(metadata) + inner)
    if unit == "size":
        return "size (bytes)"
    if unit == "duration":
        return "duration (s)"
    origin = typing.get_origin(annotation)
    if _is_union(annotation):
        parts = [a for a in typing.get_args(annotation) if a is not type(None)]
        names = [type_name(a) for a in parts]
        text = " or ".join(dict.fromkeys(names))
        return text + (" or null" if len(parts) < len(typing.get_args(annotation)) else "")
    if origin is Literal:
        return "string" if all(isinstance(a, str) for a in typing.get_args(annotation)) \
            else "value"
    if origin is list:
        (item,) = typing.get_args(annotation) or (Any,)
        return f"list of {_plural(type_name(item))}"
    if origin is dict:
        key, value = typing.get_args(annotation) or (Any, Any)
        if _is_model(value):
            return "mapping of sections"
        if value is Any or typing.get_origin(value) is dict:
            return "mapping"
        return f"mapping: {type_name(key)} to {type_name(value)}"
    if annotation is bool:
        return "boolean"
    if annotation is int:
        return "integer"
    if annotation is float:
        return "number"
    if annotation is str:
        return "string"
    if _is_model(annotation):
        return "section"
    return "any"


def _plural(name: str) -> str:
    head, sep, tail = name.partition(" (")
    if head == "any" or head.startswith(("mapping ", "mapping:", "list")):
        return name
    return f"{head}s{sep}{tail}" if not head.endswith("s") else name


def format_value(value: Any, annotation: Any = Any, metadata: list[Any] = ()) -> str:
    """A default as a config would write it: sizes and durations with units."""
    annotation, inner = _unwrap(annotation)
    unit = _unit(list(metadata) + inner)
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if unit == "size" and isinstance(value, int):
        return format_size(value)
    if unit == "duration" and isinstance(value, int | float):
        return _duration(float(value))
    if _is_union(annotation):
        for arg in typing.get_args(annotation):
            bare, meta = _unwrap(arg)
            if _unit(meta) and isinstance(value, bare):
                return format_value(value, arg)
        return format_value(value)
    if isinstance(value, list):
        args = typing.get_args(annotation) if typing.get_origin(annotation) is list else ()
        item = args[0] if args else Any
        return "[" + ", ".join(format_value(v, item) for v in value) + "]"
    if isinstance(value, dict):
        args = typing.get_args(annotation) if typing.get_origin(annotation) is dict else ()
        item = args[1] if args else Any
        return "{" + ", ".join(f"{k}: {format_value(v, item)}" for k, v in value.items()) + "}"
    if isinstance(value, BaseModel):
        return "see below"
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def _duration(seconds: float) -> str:
    """``format_duration``, but in the largest unit that keeps three decimals:
    2.3e-6 -> '2.3us' rather than '2300ns'."""
    for unit in ("w", "d", "h", "min", "s", "ms", "us", "ns"):
        scaled = seconds / TIME_UNITS[unit]
        if scaled >= 1 and abs(scaled - round(scaled, 3)) < 1e-9:
            return f"{round(scaled, 3):g}{unit}"
    return format_duration(seconds)


def allowed(annotation: Any, metadata: list[Any] = ()) -> str:
    """The values a field takes: a Literal's choices, a range from ge/gt/le/lt."""
    annotation, inner = _unwrap(annotation)
    metadata = list(metadata) + inner
    if _is_union(annotation):
        parts = [allowed(a) for a in typing.get_args(annotation) if a is not type(None)]
        own = _range(metadata, _unit(metadata))
        texts = [p for p in parts if p] + ([own] if own else [])
        return "; ".join(dict.fromkeys(texts))
    if typing.get_origin(annotation) is Literal:
        return ", ".join(str(a) for a in typing.get_args(annotation))
    if typing.get_origin(annotation) is list:
        (item,) = typing.get_args(annotation) or (Any,)
        inner_allowed = allowed(item)
        return f"each {inner_allowed}" if inner_allowed else ""
    return _range(metadata, _unit(metadata))


def _range(metadata: list[Any], unit: str | None) -> str:
    low = high = None
    for meta in metadata:
        if isinstance(meta, Ge):
            low = (">=", meta.ge)
        elif isinstance(meta, Gt):
            low = (">", meta.gt)
        elif isinstance(meta, Le):
            high = ("<=", meta.le)
        elif isinstance(meta, Lt):
            high = ("<", meta.lt)

    def show(bound: Any) -> str:
        if unit == "size":
            return format_size(int(bound))
        if unit == "duration":
            return "0" if bound == 0 else _duration(float(bound))
        return f"{bound:g}" if isinstance(bound, float) else str(bound)

    if low and high and low[0] == ">=" and high[0] == "<=":
        return f"{show(low[1])} to {show(high[1])}"
    return " and ".join(f"{bound[0]} {show(bound[1])}" for bound in (low, high) if bound)


# ------------------------------------------------------------------ rows


class Row(typing.NamedTuple):
    path: str
    type: str
    default: str
    allowed: str
    meaning: str


def _default(info: FieldInfo) -> str:
    if info.default_factory is not None:
        value = info.default_factory()
    elif info.default is PydanticUndefined:
        return "required"
    else:
        value = info.default
    return format_value(value, info.annotation, info.metadata)


def _meaning(path: str, info: FieldInfo) -> str:
    text = info.description or MEANINGS.get(path, "")
    return " ".join(text.split()).replace("``", "`")


def _nested_model(annotation: Any) -> tuple[type[BaseModel] | None, str]:
    """A model a field holds (itself, or as list items: suffix '[]')."""
    annotation, _ = _unwrap(annotation)
    if _is_model(annotation):
        return annotation, ""
    if typing.get_origin(annotation) is list:
        (item,) = typing.get_args(annotation) or (Any,)
        if _is_model(item):
            return item, "[]"
    return None, ""


def rows(model: type[BaseModel], prefix: str = "",
         skip: frozenset[str] = frozenset()) -> Iterator[Row]:
    """A row per field of ``model`` and of the models nested in it, paths under
    ``prefix``, less the fields named in ``skip``."""
    for name, info in model.model_fields.items():
        if name in skip:
            continue
        path = f"{prefix}{info.alias or name}"
        nested, suffix = _nested_model(info.annotation)
        yield Row(path, type_name(info.annotation, info.metadata),
                  "see below" if nested is not None and not suffix else _default(info),
                  allowed(info.annotation, info.metadata), _meaning(path, info))
        if nested is not None:
            yield from rows(nested, f"{path}{suffix}.")


def _table(table_rows: list[Row]) -> list[str]:
    lines = ["| key | type | default | allowed | meaning |", "| --- | --- | --- | --- | --- |"]
    for row in table_rows:
        cells = [f"`{row.path}`", row.type, f"`{row.default}`" if row.default not in
                 ("required", "see below") else row.default, row.allowed, row.meaning]
        lines.append("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
    return lines


def _doc(obj: Any) -> str:
    """The first paragraph of an object's own docstring, on one line."""
    doc = obj.__dict__.get("__doc__") if isinstance(obj, type) else obj.__doc__
    if not doc:
        return ""
    first = inspect.cleandoc(doc).split("\n\n")[0]
    return " ".join(first.split()).replace("``", "`")


# ------------------------------------------------------------------ the document


def config_reference() -> str:
    """docs/config.md: every config key, its type and unit, default, range and meaning."""
    from sim.capacity import CapacitySection
    from sim.config import ExperimentConfig, WorkloadSpec
    from sim.sweep import SweepSection
    from workloads import BUILTIN, resolve_kind
    from workloads.base import WorkloadParams

    out = [
        "# Config reference",
        "",
        f"<!-- Generated from the schema by `{COMMAND}`; do not edit. CI checks that",
        "it is current (`fragsim config-reference --check`). -->",
        "",
        "An experiment is a YAML file of the keys below. Sizes are in bytes and take IEC "
        "units: `4096`, `4KiB`, `16GiB` (`B`, `KiB`, `MiB`, `GiB`, `TiB`; `KB`, `MB` and "
        "`GB` are refused as ambiguous). Durations are in seconds and take units: `0.5`, "
        "`500ms`, `1h` (`ns`, `us`, `ms`, `s`, `min`, `h`, `d`, `w`). An unknown key is "
        "an error, with a suggestion.",
        "",
        "`--set KEY.PATH=VALUE` overrides any key, the value read as YAML "
        "(`--set machine.memory=2GiB`, `--set caches.dentry.mobility=move`); a list item "
        "is named by its index (`--set workloads.0.rate=5000`). `variants:` names sets "
        "of such keys. `fragsim validate CONFIG` prints a config with every default "
        "filled in.",
        "",
        "Paths: `caches.NAME.size` is a key of the entry for one cache under `caches:`; "
        "`workloads[].rate` is a key of an item of the `workloads:` list.",
        "",
        "Contents: [top level](#top-level)",
    ]
    sections = [(name, info) for name, info in ExperimentConfig.model_fields.items()
                if _nested_model(info.annotation)[0] is not None
                or typing.get_origin(_unwrap(info.annotation)[0]) is dict
                and _is_model(typing.get_args(info.annotation)[1])]
    contents = [f"[`{name}`](#{name})" for name, _ in sections if name != "workloads"]
    contents += ["[`workloads`](#workloads)", "[`sweep`](#sweep)", "[`capacity`](#capacity)"]
    out[-1] += ", " + ", ".join(contents) + "."
    out += ["", "## top level", ""]
    out.append(_doc(ExperimentConfig))
    out.append("")
    out += _table(list(rows(ExperimentConfig, skip=frozenset(name for name, _ in sections))))

    for name, info in sections:
        if name == "workloads":
            continue
        annotation = _unwrap(info.annotation)[0]
        if typing.get_origin(annotation) is dict:
            model = typing.get_args(annotation)[1]
            prefix = f"{name}.NAME."
        else:
            model = annotation
            prefix = f"{name}."
        out += ["", f"## {name}", "", _doc(model), ""]
        out += _table(list(rows(model, prefix)))

    out += ["", "## workloads", "",
            "Each item of `workloads:` has a `kind` and the keys of that kind; the keys "
            "every kind takes come first. `kind: package.module:Class` runs a workload "
            "class of your own (a subclass of `workloads.base.Workload` with a `Params` "
            "model), with the keys its `Params` declares.", ""]
    kind_info = WorkloadSpec.model_fields["kind"]
    kind_row = Row("workloads[].kind", "string", "required",
                   ", ".join(BUILTIN) + ", or module:Class",
                   _meaning("workloads[].kind", kind_info))
    out += _table([kind_row] + list(rows(WorkloadParams, "workloads[].")))
    common = frozenset(WorkloadParams.model_fields)
    for kind in BUILTIN:
        cls = resolve_kind(kind)
        summary = _doc(cls) or KIND_SUMMARIES.get(kind, "") or _doc(inspect.getmodule(cls))
        out += ["", f"### kind: {kind}", "", summary, ""]
        own = list(rows(cls.Params, "workloads[].", skip=common))
        out += _table(own) if own else ["No keys besides those every kind takes."]

    for name, model in (("sweep", SweepSection), ("capacity", CapacitySection)):
        out += ["", f"## {name}", "", _doc(model), ""]
        out += _table(list(rows(model, f"{name}.")))
    return "\n".join(out) + "\n"


def missing_meanings() -> list[str]:
    """Paths in the reference without a meaning (tests/test_docs.py lists them)."""
    text = config_reference()
    return [line.split("`")[1] for line in text.splitlines()
            if line.startswith("| `") and line.rstrip().endswith("|  |")]
