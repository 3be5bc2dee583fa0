"""Experiment configs: YAML files validated by a pydantic schema.

Every error is one line naming the file, the key path, what was expected and what was
found, e.g. ``configs/x.yaml: buddy.watermark_scale_factor: expected a number from 1
to 3000, got 0``. Unknown keys are errors with a "did you mean" suggestion.

``--set key.path=value`` overrides are applied to the raw YAML before validation; the
value is read as YAML (``true``, ``130``, ``16GiB``). ``variants:`` maps a variant
name to overrides of the same dotted form, and ``resolve_variants`` gives one
validated config per variant.

Precedence: a variant's own keys win over the rest of the file, and ``--set`` wins over
both (the user typed it last). When a ``--set`` changes a key that a variant sets, the
variant no longer is what its name says: ``resolve_variants`` prints one warning line
and renames it ``NAME[KEY=VALUE]`` (``defrag-free[caches.dentry.mobility=move]``), so
that results never carry the old name for a different experiment.

A resolved config reads back: ``fragsim validate`` prints, and a run records in
``results/X/config.yaml``, a file of the form ``fragsim_version: V``, ``seeds: [S, ...]``
(runs only), ``variants: {NAME: full config}``, which ``fragsim run`` accepts as it is.
``fragsim_version`` is a record (another version: a one-line warning); a list of seeds
fixes ``seed`` and ``seeds`` for every variant.
"""

from __future__ import annotations

import copy
import difflib
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Literal

import yaml
from annotated_types import Ge, Gt, Le, Lt
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from sim import __version__
from sim.errors import FragsimError
from sim.units import Duration, Size, format_duration

__all__ = ["Duration", "Size"]  # re-exported: the units of every section


class Section(BaseModel):
    """A config section: unknown keys are errors."""

    model_config = ConfigDict(extra="forbid")


ZONE_NAMES = ("DMA", "DMA32", "Normal", "Movable")  # sim/mmzone.py's, in zone order


class MachineConfig(Section):
    """The simulated machine: one node of ``memory / page_size`` pages in ``zones``."""

    from_: str | None = Field(
        None, alias="from", description="start from a real machine: a snapshot directory "
        "(`fragsim snapshot DIR`) or file prefix (PREFIX.buddyinfo, PREFIX.zoneinfo, ...); "
        "memory, zones and cpus then come from it (see docs/snapshots.md)")
    online: Literal["pagetypeinfo", "managed"] = Field(
        "pagetypeinfo", description="with from: which pages are online. pagetypeinfo: the "
        "pageblocks its pagetypeinfo counts (a zoneinfo managing more is an error: it was "
        "read at another time); managed: zoneinfo's managed pages, those pagetypeinfo lacks "
        "onlined after it was read, free in MOVABLE pageblocks above the rest, as memory "
        "hotplug's online_pages frees them (docs/snapshots.md)")
    pagesets: Literal["snapshot", "empty"] = Field(
        "snapshot", description="with from: each CPU's per-CPU lists as zoneinfo prints "
        "them (count pages on the list, high), or empty at high = high_min (zoneinfo's "
        "batch, high_min and high_max kept): for a zoneinfo read at another time")
    memory: Size = Field(1 << 30, description="installed memory, e.g. 16GiB")
    boot: str = Field(
        "idle-6.18", description="the kernel's own memory at t = 0: idle-6.18 (an idle "
        "6.18 machine's footprint, from a real snapshot, scaled to this machine: "
        "sim/data/idle-6.18), none (every page free), or a snapshot directory or prefix "
        "whose footprint to scale; ignored with from (the snapshot is the machine)")
    zones: list[str | dict[str, Size]] = Field(
        ["DMA", "DMA32", "Normal"], description="the node's zones (sim/mmzone.py): names "
        "cut memory at x86-64's boundaries (DMA below 16MiB, DMA32 below 4GiB, Normal "
        "above; a zone left out goes to the next one listed, one with no pages is "
        "dropped: a 256MiB machine is DMA + DMA32), e.g. [DMA, DMA32, Normal]; or "
        "{name: size} each, adding up to memory. [Normal] is one zone of all memory, the "
        "machine the anchors and what-ifs were measured on")
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
    lsm_inode_blob: bool | None = Field(
        None, description="every inode gets an LSM blob from lsm_inode_cache "
        "(security_inode_alloc), as on the 6.18 kernel of the project's data, whose LSMs "
        "ask for 32 bytes an inode; false: a kernel whose LSMs keep none. null: with "
        "machine.from, as the snapshot says (its slabinfo lists lsm_inode_cache or not), "
        "else true")


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
    used_ratio: int = Field(30, ge=0, le=100, description="a candidate slab has at most "
                            "this % of its objects in use (defrag_used_ratio)")
    max_partial: int = Field(20, ge=0, le=100000, description="only caches with more "
                             "node-partial slabs are defragmented (MAX_PARTIAL)")
    max_slabs_per_pass: int = Field(0, ge=0, description="0: every candidate")
    pinned_policy: Literal["skip", "refuse"] = Field(
        "skip", description="free mode: skip pinned objects, or refuse the slab")
    rcu_wait: bool = Field(False, description="an RCU grace period after each batch")
    rcu_grace: Duration | None = Field(
        None, ge=0, description="the grace period rcu_wait waits (default: each cache's)")
    batch: int = Field(16, ge=1, le=100000, description="objects per reclaim step")
    cost_get: Duration = Field(50e-9, ge=0, description="per object examined by get()")
    cost_free: Duration = Field(2e-6, ge=0, description="per object evicted")
    cost_move: Duration = Field(1e-6, ge=0, description="per object moved")
    cpu: int = Field(0, ge=0, le=1023, description="the CPU the defragmenter runs on: "
                     "replacement objects come from its slabs")
    after_shrink: bool = Field(True, description="a pass at the end of each shrinker run")
    interval: Duration | None = Field(None, description="a periodic pass")
    on_failure: bool = Field(False, description="a pass on a high-order allocation failure")
    failure_min_order: int = Field(1, ge=1, le=20, description="the lowest order whose "
                                   "allocation failure triggers a pass (with on_failure)")
    at: list[Duration] = Field(default_factory=list, description="passes at given times")


class CompactionSection(Section):
    """Compaction (sim/compaction.py): kcompactd, direct compaction and their costs.

    The costs reproduce the real anchor (tests/data/compaction/gupta-12g-keep1of4): its
    ``compact_memory`` took 1.51 s wall, and the model of that run scans about 2.4 M
    pfns with the migrate scanner and 0.8 M with the free scanner, isolates 0.59 M free
    and 0.59 M movable pages and migrates 0.59 M pages (bench/anchor_gupta.py prints
    the counts). A scanner step reads a struct page or two (~10 ns); isolating a page
    takes a lock and list operations (~100 ns); migrating a 4 KiB anonymous page unmaps
    it, copies it and remaps it with a TLB flush, which is what the remaining ~2.3 us
    per page pays for.
    """

    enabled: bool = Field(True, description="kcompactd and direct compaction")
    proactiveness: int = Field(20, ge=0, le=100, description="vm.compaction_proactiveness")
    extfrag_threshold: int = Field(500, ge=0, le=1000, description="vm.extfrag_threshold")
    slab_movable: bool = Field(False, description="compaction vacates slab pages of "
                               "caches with a mobility, through the defragmenter")
    migrate_scan_cost: Duration = Field(10e-9, ge=0, description="per pfn the migrate "
                                        "scanner looks at")
    free_scan_cost: Duration = Field(10e-9, ge=0, description="per pfn the free scanner "
                                     "looks at")
    isolate_cost: Duration = Field(100e-9, ge=0, description="per page isolated")
    migrate_cost: Duration = Field(2.3e-6, ge=0, description="per page migrated")


class ReclaimSection(Section):
    """kswapd and direct reclaim (sim/vmscan.py).

    The eviction costs are kswapd's own, measured on this project's machine (Linux
    6.18.44, AMD EPYC) by configs/real/reclaim-cost: kswapd0's CPU time while it
    evicted clean page cache of order-0, 1 MiB and 2 MiB folios fits a line of 650 ns
    a folio plus 29 ns a page, within 5 % for every folio size (the medians of three
    runs, whose folio terms were 630-800 ns and page terms 27-31 ns). The work is
    mostly per folio (isolating it, checking its references, taking it out of the page
    cache); the per-page term is freeing its pages. The split of the folio term
    between scanning (``scan_cost``, which a folio given a second chance or passed
    over also pays) and evicting is not measured.
    """

    kswapd: bool = True
    scan_cost: Duration = Field(200e-9, description="per LRU folio scanned")
    evict_cost: Duration = Field(450e-9, description="per page-cache folio evicted, "
                                 "besides its scan")
    evict_page_cost: Duration = Field(29e-9, description="per page of an evicted folio")
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
    duration: Duration = Field(60.0, description="above 0 (a zero-length run is internal)")
    measure_from: Duration = Field(
        0.0, ge=0, description="warm-up: time averages and THP success count from here "
        "(a run that ends before it is measured whole)")
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


def warn(message: str) -> None:
    """One warning line on stderr, in the CLI's form."""
    print(f"fragsim: warning: {' '.join(message.splitlines())}", file=sys.stderr)


class _UniqueKeyLoader(yaml.SafeLoader):
    """yaml.SafeLoader that refuses a key given twice in one mapping (PyYAML keeps the
    last one silently, so ``memory: 1GiB`` then ``memory: 4GiB`` would run 4 GiB)."""

    def construct_mapping(self, node, deep=False):
        if isinstance(node, yaml.MappingNode):
            seen: dict[Any, int] = {}
            for key_node, _ in node.value:
                if key_node.tag == "tag:yaml.org,2002:merge":
                    continue
                key = self.construct_object(key_node, deep=True)
                line = key_node.start_mark.line + 1
                try:
                    if key in seen:
                        raise _DuplicateKey(key, seen[key], line)
                    seen[key] = line
                except TypeError:  # an unhashable key: construct_mapping says so
                    continue
        return super().construct_mapping(node, deep)


class _DuplicateKey(Exception):
    def __init__(self, key: Any, first: int, line: int) -> None:
        super().__init__(key, first, line)
        self.key, self.first, self.line = key, first, line


def load_yaml(path: str | Path) -> dict[str, Any]:
    """The YAML mapping in a file, or a one-line FragsimError.

    Refused: an unreadable, binary or empty file, invalid YAML, a key given twice in a
    mapping, and anything but a mapping at the top. ``fragsim_version`` (as a run's
    ``config.yaml`` records it) of another version gives a one-line warning."""
    path = Path(path)
    try:
        data_bytes = path.read_bytes()
    except OSError as e:
        raise FragsimError(f"{path}: cannot read: {e.strerror or e}") from e
    try:
        text = data_bytes.decode("utf-8")
    except UnicodeDecodeError:
        text = None
    if text is None or "\x00" in text:
        raise FragsimError(f"{path}: expected a YAML text file, got binary data")
    try:
        data = yaml.load(text, Loader=_UniqueKeyLoader)  # noqa: S506 (a SafeLoader)
    except _DuplicateKey as e:
        raise FragsimError(f"{path}:{e.line}: {e.key}: expected each key once in a mapping, "
                           f"got it again (first on line {e.first})") from None
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f":{mark.line + 1}" if mark is not None else ""
        problem = getattr(e, "problem", None) or str(e).splitlines()[0]
        raise FragsimError(f"{path}{where}: expected valid YAML, got {problem}") from e
    if data is None:
        raise FragsimError(f"{path}: expected a mapping of keys, got an empty file")
    if not isinstance(data, dict):
        raise FragsimError(f"{path}: expected a mapping of keys, got {type(data).__name__}")
    data = _unaliased(data, path)
    version = data.get("fragsim_version")
    if version is not None and str(version) != __version__:
        warn(f"{path}: fragsim_version: written by fragsim {version}, read by "
             f"{__version__}: results may differ")
    return data


def _unaliased(node: Any, path: Path, parents: frozenset[int] = frozenset()) -> Any:
    """``node`` with a copy of a YAML alias's (``*name``) sections at each use: PyYAML
    gives every use the anchor's one object, so a ``--set`` or variant key on one
    use (``workloads.2.steps.3.duration``) would change them all. A section that
    contains itself is refused."""
    if not isinstance(node, (dict, list)):
        return node
    if id(node) in parents:
        raise FragsimError(f"{path}: expected no YAML alias inside its own anchor, got one")
    inner = parents | {id(node)}
    if isinstance(node, dict):
        return {key: _unaliased(value, path, inner) for key, value in node.items()}
    return [_unaliased(value, path, inner) for value in node]


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


Validate = Callable[..., ExperimentConfig]  # validate_config's signature


def load_config(
    path: str | Path, overrides: Sequence[str] = (), variant: str | None = None,
    validate: Validate | None = None,
) -> ExperimentConfig:
    """Read, override and validate one config (or one of its variants) against the
    schema, or with ``validate`` (sim/experiment.py's, which checks the model too)."""
    raw = load_yaml(path)
    return (validate or validate_config)(raw, str(path), overrides, variant,
                                         check_length=True)


def validate_config(
    raw: dict[str, Any], source: str, overrides: Sequence[str] = (), variant: str | None = None,
    *, check_length: bool = False,
) -> ExperimentConfig:
    """One config checked against the schema: ``raw`` with a variant's keys, then
    ``overrides``, applied (sim/experiment.py checks it against the model too)."""
    return parse_config(raw, source, overrides, variant, check_length=check_length)[0]


def parse_config(
    raw: dict[str, Any], source: str, overrides: Sequence[str] = (), variant: str | None = None,
    *, check_length: bool = False,
) -> tuple[ExperimentConfig, dict[tuple[str, ...], str]]:
    """``validate_config``, and where each key came from (a variant, a ``--set``), for
    the messages of later checks.

    ``check_length=True`` (a file to run) refuses ``duration: 0`` and a
    ``sample_every`` longer than the run; fragsim capacity makes zero-length runs of
    its own to list the summary's metrics."""
    data = copy.deepcopy(raw)
    # A sweep or capacity file is also a plain experiment: fragsim sweep / capacity read
    # those sections; run and validate use the rest.
    data.pop("sweep", None)
    data.pop("capacity", None)
    data.pop("fragsim_version", None)  # a record of who wrote the file (load_yaml warns)
    seed_list = _seed_list(data.get("seeds"), source)
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
    if seed_list is not None:  # the seeds a run recorded, whatever its variants say
        data["seed"], data["seeds"] = seed_list[0], len(seed_list)
    for text in overrides:
        key_path, value = parse_override(text)
        apply_override(data, key_path, value, f"--set {text}")
        origins[tuple(key_path)] = f"--set {text}"
    try:
        config = ExperimentConfig.model_validate(data)
    except ValidationError as e:
        raise FragsimError(_one_line(e, source, origins)) from None
    _check_consistency(config, source, origins)
    if check_length:
        _check_length(config, source, origins)
    return config, origins


def _check_length(config: ExperimentConfig, source: str,
                  origins: dict[tuple[str, ...], str]) -> None:
    if config.duration <= 0:
        raise FragsimError(f"{origins.get(('duration',), source)}: duration: expected a "
                           f"duration above 0, got {format_duration(config.duration)}")
    if config.sample_every > config.duration:
        raise FragsimError(
            f"{origins.get(('sample_every',), source)}: sample_every: expected at most the "
            f"duration ({format_duration(config.duration)}), got "
            f"{format_duration(config.sample_every)}")


def _seed_list(value: Any, source: str) -> list[int] | None:
    """``seeds: [1, 2, 3]`` (as a run records them) -> the list; None for a count."""
    if not isinstance(value, list):
        return None
    if not value or not all(isinstance(v, int) and not isinstance(v, bool) and v >= 0
                            for v in value) or value != list(range(value[0],
                                                                   value[0] + len(value))):
        raise FragsimError(f"{source}: seeds: expected a number of replicates or a list of "
                           f"consecutive seeds, got {_short(value)}")
    return value


def _check_consistency(config: ExperimentConfig, source: str,
                       origins: dict[tuple[str, ...], str] | None = None) -> None:
    origins = origins or {}

    def where(*key: str) -> str:
        return origins.get(key, source)

    machine = config.machine
    if machine.page_size != 4096:
        raise FragsimError(
            f"{where('machine', 'page_size')}: machine.page_size: expected 4KiB (the only "
            f"size modelled), got {machine.page_size}"
        )
    if machine.pageblock_order > machine.max_order:
        raise FragsimError(
            f"{where('machine', 'pageblock_order')}: machine.pageblock_order: expected at "
            f"most max_order ({machine.max_order}), got {machine.pageblock_order}"
        )
    if machine.memory % machine.page_size:
        raise FragsimError(
            f"{where('machine', 'memory')}: machine.memory: expected a multiple of the page "
            f"size ({machine.page_size} bytes), got {machine.memory} bytes"
        )
    if config.defrag.cpu >= machine.cpus:
        raise FragsimError(
            f"{where('defrag', 'cpu')}: defrag.cpu: expected a CPU from 0 to "
            f"{machine.cpus - 1} (machine.cpus is {machine.cpus}), got {config.defrag.cpu}")
    _check_zones(machine, where('machine', 'zones'))
    pages = machine.memory // machine.page_size
    if pages < 4 << machine.pageblock_order:
        raise FragsimError(
            f"{where('machine', 'memory')}: machine.memory: expected at least 4 pageblocks "
            f"({4 << machine.pageblock_order} pages), got {machine.memory} bytes"
        )


def resolve_variants(
    path: str | Path, overrides: Sequence[str] = (), validate: Validate | None = None,
) -> dict[str, ExperimentConfig]:
    """One validated config per variant, or {"default": config} without variants.

    A variant's keys win over the rest of the file; ``--set`` wins over both. A
    ``--set`` on a key the variants vary (one that some variant sets, to a value that
    differs between variants) renames each variant whose value it changes
    ``NAME[KEY=VALUE,...]``, with one warning line on stderr: that variant is no longer
    what its name says. ``--set duration=10s`` on variants that all share the duration
    renames nothing."""
    validate = validate or validate_config
    raw = load_yaml(path)
    variants = raw.get("variants") or {}
    if not isinstance(variants, dict) or not variants:
        return {"default": validate(raw, str(path), overrides, check_length=True)}
    configs = {name: validate(raw, str(path), overrides, name, check_length=True)
               for name in variants}
    renamed = _renamed_variants(raw, variants, overrides, str(path))
    return {renamed.get(name, str(name)): config for name, config in configs.items()}


def _renamed_variants(raw: dict[str, Any], variants: dict[str, Any],
                      overrides: Sequence[str], source: str) -> dict[str, str]:
    """New names of the variants whose varied keys ``overrides`` change (with a warning
    line each), as ``resolve_variants`` describes."""
    if not overrides:
        return {}
    resolved = {}  # each variant's raw data, its keys applied
    for name, changes in variants.items():
        data = copy.deepcopy(raw)
        for key, value in changes.items():
            apply_override(data, str(key).split("."), copy.deepcopy(value), source)
        resolved[name] = data
    varied = []
    for key in dict.fromkeys(str(k) for changes in variants.values() for k in changes):
        seen = [_lookup(data, key.split(".")) for data in resolved.values()]
        if any(item != seen[0] for item in seen):
            varied.append(key.split("."))
    renamed: dict[str, str] = {}
    for name, data in resolved.items():
        changed = []
        for text in overrides:
            path, value = parse_override(text)
            overlaps = any(k[:len(path)] == path[:len(k)] for k in varied)
            if overlaps and _lookup(data, path) != (True, value):
                changed.append(text)
        if changed:
            renamed[name] = f"{name}[{','.join(changed)}]"
            warn(f"{source}: variants.{name}: --set {', --set '.join(changed)} changes a "
                 f"key the variants vary, and --set wins; the variant runs as "
                 f"{renamed[name]}")
    return renamed


def _lookup(node: Any, path: Sequence[str]) -> tuple[bool, Any]:
    for part in path:
        if isinstance(node, dict) and part in node:
            node = node[part]
        elif isinstance(node, list) and part.isdigit() and int(part) < len(node):
            node = node[int(part)]
        else:
            return False, None
    return True, node


def to_yaml(config: ExperimentConfig) -> str:
    """The fully resolved config, as YAML a later run can read back (without
    ``variants:``: a resolved config is one variant, already applied)."""
    return yaml.safe_dump(config.model_dump(mode="json", exclude={"variants"}, by_alias=True),
                          sort_keys=False)


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


def _check_zones(machine: MachineConfig, where: str) -> None:
    """``machine.zones``: known names in zone order, each once; sizes for all or none,
    adding up to ``memory``; ZONE_MOVABLE only with a size (x86-64 gives it no range)."""
    names = [entry if isinstance(entry, str) else next(iter(entry), "")
             for entry in machine.zones]
    sized = [isinstance(entry, dict) for entry in machine.zones]

    def bad(expected: str) -> FragsimError:
        return FragsimError(f"{where}: machine.zones: expected {expected}, got "
                            f"{_short(machine.zones)}")

    if not names:
        raise bad("at least one zone")
    for entry, name in zip(machine.zones, names, strict=True):
        if name not in ZONE_NAMES or (isinstance(entry, dict) and len(entry) != 1):
            raise bad(f"zone names ({', '.join(ZONE_NAMES)}) or {{name: size}} each")
    if [ZONE_NAMES.index(n) for n in names] != sorted({ZONE_NAMES.index(n) for n in names}):
        raise bad(f"each zone once, in the order {', '.join(ZONE_NAMES)}")
    if any(sized) and not all(sized):
        raise bad("sizes for every zone or for none")
    if all(sized):
        total = sum(next(iter(entry.values())) for entry in machine.zones)  # type: ignore[union-attr]
        if total != machine.memory:
            raise bad(f"sizes adding up to machine.memory ({machine.memory} bytes), "
                      f"not {total} bytes")
    elif "Movable" in names:
        raise bad("a size for Movable (x86-64 gives it no range of its own)")

