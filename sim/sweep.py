"""Parameter sweeps: one experiment YAML with a ``sweep:`` section, many run directories.

A sweep, as desmod's factors do it, is a set of *points* (each a few ``key.path: value``
changes to the experiment) times ``seeds`` replicates:

```yaml
sweep:
  grid:                 # cartesian product
    defrag.used_ratio: [10, 30, 50]
  zip:                  # paired lists of equal length, one more axis of the product
    caches.dentry.mobility: [free, move]
    caches.shmem_inode_cache.mobility: [free, move]
  # points: [{machine.memory: 256MiB}, {machine.memory: 1GiB, buddy.pcp: false}]
  seeds: 3              # replicates per point (default: the experiment's seeds:)
  seed_mode: common     # common: replicate k runs seed+k at every point (paired)
  metrics: [thp_success_rate, avail9_time_avg]   # what the plots show
```

``grid`` and ``zip`` combine (grid x zip rows); ``points`` stands alone. Every key path
is checked against the experiment schema through ``validate_config``, so an unknown key
is the house one-line error with a did-you-mean. The experiment's own ``variants:``
multiply with the points: every point runs every variant, and a key may not be both
swept and set by a variant (the sweep would silently override the variant).

Seeds. With ``seed_mode: common`` (the default) replicate k of every point runs with
``seed + k``, as ``fragsim run`` does: points are compared on common random numbers,
which removes the workload's noise from differences between points, and any point can
be reproduced with ``fragsim run --set ... --seed``. ``seed_mode: distinct`` derives a
different seed for every point x replicate from a hash of the point's parameters.

Each point x seed is one unit of work: it runs every variant and writes
``points/<index>-<hash>-s<seed>/`` in the ``fragsim run`` layout (config.yaml,
timeseries.csv, summary.json, final/, memmap/), assembled under a partial name and
renamed into place. A point that raises is recorded in ``failures.json`` (its
parameters, seed, the error on one line and the traceback); the others finish, and a
later run that succeeds takes the point out of failures.json again. ``sweep.csv`` has
one row per point x seed x variant: the swept parameters (resolved: sizes in bytes,
durations in seconds), ``fragsim_version`` (and ``plugins`` when a point loads user
code), then every numeric summary field flattened as sim.runner does
(``thp_success_rate``, ``avail9_time_avg``, ``evictions.slab_objects``, ``wall_s``...).

What produced a point. A run's identity is its resolved config and seed, the code
that ran it and the plug-in code it loaded:

- ``code_version()``: ``sim.__version__`` plus a digest of the model's source files
  (``sim/*.py`` and ``workloads/*.py``, less the modules that never run inside a point:
  the CLI, plots, the capacity search and the executors), e.g. ``0.1.0+src.1a2b3c4d5e6f``.
  The version alone does not change while the model is edited in a development tree;
  the digest does. It is of the source, not of the compiled build, because sim.native
  runs a compiled module only when its source is the one compiled.
- the sha256 of each plug-in module's source file: a workload ``kind:
  mypkg.mymodule:MyWorkload`` or a cache ``mobility: mypkg.mymodule:MyMobility``
  (only the module named; a helper module it imports is not followed).

A rerun (resume) skips a run whose summary.json is complete and whose identity is the
current one. A run made by another version, other plug-in code or another config is
*stale*: its directory is moved to ``points/.superseded/`` (replacing what an earlier
resume put there) and the run is done again, with a line saying how many and why.
sweep.csv and the plots only ever hold runs of the current identity, so a sweep never
mixes versions; a worker that reports other code than this process (a dask worker
with another install) is a failed point, not a row.

Executors (sim.executors): ``local`` is a ``ProcessPoolExecutor`` (``jobs == 1`` runs
in this process); ``dask`` sends the same work to ``dask.distributed.Client(ADDR)`` or
to a LocalCluster. Workers return the files' contents and this process writes them, so
dask workers need fragsim installed but not a shared file system. SIGTERM, SIGHUP and
Ctrl-C end a sweep with its workers (see sim.executors), and a kill -9 of the sweep
takes its local workers with it.
"""

from __future__ import annotations

import copy
import csv
import functools
import hashlib
import importlib.util
import io
import itertools
import json
import math
import os
import re
import shutil
import sys
import time
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from sim import __version__
from sim.config import (
    ExperimentConfig,
    _one_line,
    apply_override,
    load_yaml,
    parse_override,
    to_yaml,
)
from sim.errors import FragsimError
from sim.executors import (  # noqa: F401  (re-exported: sim.sweep named them first)
    CONNECT_TIMEOUT_S,
    DaskExecutor,
    Executor,
    Interrupted,
    LocalExecutor,
    default_jobs,
    open_executor,
)
from sim.experiment import validate_config
from sim.results import (
    TIMESERIES_COLUMNS,
    TIMING_KEYS,
    RunDirectory,
    json_text,
    output_directory,
    write_atomic,
    write_json,
)

SWEEP_KEY = "sweep"
DEFAULT_METRICS = ("thp_success_rate", "avail9_time_avg")
# Columns whose values depend on the machine the run happened on, not on the model.
TIMING_COLUMNS = TIMING_KEYS


# ------------------------------------------------------------------ the sweep: section


class SweepSection(BaseModel):
    """The ``sweep:`` section of an experiment YAML."""

    model_config = ConfigDict(extra="forbid")
    grid: dict[str, list[Any]] | None = Field(None, description="KEY.PATH: [values], cartesian")
    zip: dict[str, list[Any]] | None = Field(None, description="KEY.PATH: [values], paired")
    points: list[dict[str, Any]] | None = Field(None, description="[{KEY.PATH: value}, ...]")
    seeds: int | None = Field(None, ge=1, le=10000, description="replicates per point")
    seed_mode: Literal["common", "distinct"] = "common"
    metrics: list[str] = Field(default_factory=lambda: list(DEFAULT_METRICS))


@dataclass(frozen=True)
class Factor:
    """One axis of a sweep: a grid key, the whole zip (keys varied together) or a points key."""

    name: str
    keys: tuple[str, ...]
    section: str


@dataclass
class Point:
    """One combination of swept values (given as in the YAML, and resolved)."""

    index: int
    id: str
    params: dict[str, Any]
    resolved: dict[str, Any] = field(default_factory=dict)
    config_hash: str = ""


@dataclass(frozen=True)
class RunTask:
    """One point x seed: everything a worker needs, picklable (no open files, no models)."""

    run_id: str
    point_id: str
    index: int
    params: dict[str, Any]
    seed: int
    replicate: int
    raw: dict[str, Any]  # the experiment with the point applied, without sweep:
    overrides: tuple[str, ...]  # --set, applied after the point and the variant
    source: str
    variants: tuple[str, ...]  # () when the experiment has no variants:
    config_hash: str
    code: str = ""  # code_version() of the planning process
    plugins: dict[str, str] = field(default_factory=dict)  # plug-in module: source digest


@dataclass
class RunOutcome:
    """What a worker sends back: the files of the run directory, or the error."""

    task: RunTask
    files: dict[str, str | bytes] | None = None
    summary: dict[str, Any] | None = None
    error: str | None = None
    traceback: str | None = None
    wall_s: float = 0.0

    @property
    def ok(self) -> bool:
        return self.error is None


@dataclass
class SweepPlan:
    """A validated sweep: its points, the runs they need, and where they go."""

    name: str
    source: str
    out: Path
    overrides: list[str]
    spec: SweepSection
    factors: list[Factor]
    points: list[Point]
    variants: tuple[str, ...]
    replicates: int
    tasks: list[RunTask]


@dataclass
class SweepReport:
    """What a sweep did: counts, failures and the files it wrote."""

    out: Path
    total: int
    skipped: int
    ran: int
    failures: list[dict[str, Any]]
    csv_path: Path
    plots: list[Path] = field(default_factory=list)
    wall_s: float = 0.0
    stale: int = 0  # finished runs of another identity, run again


def _error(source: str, key: str, expected: str, got: str) -> FragsimError:
    """The house one-liner; ``got`` is already worded (use ``repr`` for a value)."""
    return FragsimError(f"{source}: {key}: expected {expected}, got {got}")


def parse_sweep(raw: Any, source: str) -> SweepSection:
    """Validate a ``sweep:`` mapping: its types with pydantic, then its shape."""
    if not isinstance(raw, dict):
        raise _error(source, SWEEP_KEY, "a mapping with grid:, zip: or points:", repr(raw))
    try:
        spec = SweepSection.model_validate(raw)
    except ValidationError as e:
        first = e.errors(include_url=False)[0]
        loc = ".".join(str(p) for p in first["loc"])
        if first["type"] == "list_type":
            raise _error(source, f"{SWEEP_KEY}.{loc}", "a list of values",
                         repr(first["input"])) from None
        if first["type"] == "dict_type":
            raise _error(source, f"{SWEEP_KEY}.{loc}", "a mapping of KEY.PATH: value",
                         repr(first["input"])) from None
        raise FragsimError(_one_line(e, source, {}, (SWEEP_KEY,), SweepSection)) from None
    for section in ("grid", "zip"):
        mapping = getattr(spec, section)
        if mapping is None:
            continue
        if not mapping:
            raise _error(source, f"{SWEEP_KEY}.{section}",
                         "at least one KEY.PATH: [values]", f"an empty {section}")
        for key, values in mapping.items():
            _check_key_syntax(key, source, f"{SWEEP_KEY}.{section}")
            if not values:
                raise _error(source, f"{SWEEP_KEY}.{section}.{key}",
                             "a non-empty list of values", repr(values))
    if spec.zip:
        lengths = {key: len(values) for key, values in spec.zip.items()}
        first_key, n = next(iter(lengths.items()))
        for key, length in lengths.items():
            if length != n:
                raise _error(source, f"{SWEEP_KEY}.zip.{key}",
                             f"{n} values, as many as {first_key}", f"{length}")
    if spec.grid and spec.zip:
        both = sorted(set(spec.grid) & set(spec.zip))
        if both:
            raise _error(source, f"{SWEEP_KEY}.zip.{both[0]}",
                         "each key in grid: or zip:, not both", "it in both")
    if spec.points is not None:
        if spec.grid is not None or spec.zip is not None:
            other = "grid" if spec.grid is not None else "zip"
            raise _error(source, f"{SWEEP_KEY}.points",
                         "points: alone, or grid:/zip: without points:", f"points: with {other}:")
        if not spec.points:
            raise _error(source, f"{SWEEP_KEY}.points", "a non-empty list of points",
                         repr(spec.points))
        for i, point in enumerate(spec.points):
            for key in point:
                _check_key_syntax(key, source, f"{SWEEP_KEY}.points.{i}")
    if spec.grid is None and spec.zip is None and spec.points is None:
        raise _error(source, SWEEP_KEY, "grid:, zip: or points:", "none of them")
    return spec


def _check_key_syntax(key: str, source: str, where: str) -> None:
    if not key or any(not part for part in str(key).split(".")):
        raise _error(source, f"{where}.{key}", "a KEY.PATH such as defrag.used_ratio",
                     repr(key))


def factors_of(spec: SweepSection) -> list[Factor]:
    """The sweep's axes, in the order points vary (first slowest)."""
    if spec.points is not None:
        keys = list(dict.fromkeys(k for point in spec.points for k in point))
        return [Factor(key, (key,), "points") for key in keys]
    factors = [Factor(key, (key,), "grid") for key in spec.grid or {}]
    if spec.zip:
        keys = tuple(spec.zip)
        factors.append(Factor(" / ".join(keys), keys, "zip"))
    return factors


def expand(spec: SweepSection) -> list[dict[str, Any]]:
    """The points of a sweep, each a {key.path: value} mapping, in a stable order.

    ``grid`` keys vary as ``itertools.product`` does (the first slowest); the ``zip``
    rows are the innermost axis. ``points`` are taken as written.
    """
    if spec.points is not None:
        return [dict(point) for point in spec.points]
    grid = spec.grid or {}
    zip_rows: list[tuple] = list(zip(*(spec.zip or {}).values(), strict=True)) or [()]
    zip_keys = list(spec.zip or {})
    points = []
    for values in itertools.product(*grid.values()):
        for row in zip_rows:
            point = dict(zip(grid, values, strict=True))
            point.update(zip(zip_keys, row, strict=True))
            points.append(point)
    return points


def params_hash(params: dict[str, Any]) -> str:
    """A short, stable hash of a point's parameters (as given), for its directory name."""
    text = json.dumps(params, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:8]


def point_id(index: int, params: dict[str, Any], width: int = 4) -> str:
    return f"{index:0{width}d}-{params_hash(params)}"


def derive_seeds(base_seed: int, replicates: int, mode: str, params: dict[str, Any]) -> list[int]:
    """The seeds of one point's replicates.

    ``common``: ``base_seed + k``, the same at every point. ``distinct``: 31-bit seeds
    from a hash of (base seed, the point's parameters, k); distinct between replicates
    and, but for a hash collision, between points.
    """
    if mode == "common":
        return [base_seed + k for k in range(replicates)]
    seeds: list[int] = []
    key = json.dumps(params, sort_keys=True, default=str)
    for k in range(replicates):
        salt = 0
        while True:
            digest = hashlib.sha256(f"{base_seed}|{key}|{k}|{salt}".encode()).digest()
            seed = int.from_bytes(digest[:4], "little") & 0x7FFFFFFF
            if seed not in seeds:
                break
            salt += 1
        seeds.append(seed)
    return seeds


# ------------------------------------------------------------------ planning


def _lookup(data: Any, path: Sequence[str]) -> Any:
    node = data
    for part in path:
        if isinstance(node, list):
            node = node[int(part)]
        elif isinstance(node, dict):
            node = node[part]
        else:
            raise KeyError(part)
    return node


def _apply_params(raw: dict[str, Any], params: dict[str, Any], source: str) -> dict[str, Any]:
    data = copy.deepcopy(raw)
    for key, value in params.items():
        apply_override(data, str(key).split("."), copy.deepcopy(value), source)
    return data


def _overlaps(a: str, b: str) -> bool:
    pa, pb = a.split("."), b.split(".")
    n = min(len(pa), len(pb))
    return pa[:n] == pb[:n]


def _config_hash(texts: dict[str, str], seed: int) -> str:
    """The digest that keys a finished run: its seed and each variant's ``to_yaml`` text
    (``_config_yaml``); it names results on disk, so it never changes."""
    text = json.dumps({"seed": seed, "variants": texts}, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _config_yaml(config: ExperimentConfig, cache: dict[str, str]) -> str:
    """``to_yaml(config)``, built from one YAML text per top-level key kept in ``cache``.

    Emitting YAML is most of the cost of planning a sweep (5 ms a config in pure-Python
    PyYAML), and the points of a sweep differ in a few sections: ``machine:`` changes
    with ``machine.memory``, ``workloads:`` and the rest do not. A block mapping's
    entries at the top level are emitted independently of each other (column 0, no
    flow context), so the document is the concatenation of its one-key documents; the
    exception is an object that appears twice (PyYAML writes an anchor and an alias,
    numbered across the document), and such a config is dumped whole.
    """
    text = _yaml_by_sections(
        config.model_dump(mode="json", exclude={"variants"}, by_alias=True), cache)
    return to_yaml(config) if text is None else text


def _yaml_by_sections(data: dict[str, Any], cache: dict[str, str]) -> str | None:
    """``yaml.safe_dump(data, sort_keys=False)`` from cached one-key documents; None
    when it cannot be (an empty mapping, or a container met twice)."""
    if not data or _has_shared_containers(data):
        return None
    parts = []
    for key, value in data.items():
        marker = repr((key, value))  # keeps 1, 1.0, True and "1" apart, keys as values
        text = cache.get(marker)
        if text is None:
            text = cache[marker] = yaml.safe_dump({key: value}, sort_keys=False)
        parts.append(text)
    return "".join(parts)


def _has_shared_containers(data: Any) -> bool:
    """Whether a dict or list occurs twice in ``data`` (by identity): YAML would alias it."""
    seen: set[int] = set()
    stack = [data]
    while stack:
        node = stack.pop()
        if isinstance(node, dict | list):
            if id(node) in seen:
                return True
            seen.add(id(node))
            stack.extend(node.values() if isinstance(node, dict) else node)
    return False


# ------------------------------------------------------------------ what produced a run

# The packages whose source is the model, and the modules of them that never run inside
# a point (they present, search or dispatch): editing those reruns nothing.
SOURCE_PACKAGES = ("sim", "workloads")
NOT_IN_A_POINT = frozenset({"sim/__main__.py", "sim/cli.py", "sim/plots.py",
                            "sim/capacity.py", "sim/executors.py", "sim/configdoc.py"})
SOURCE_ROOT = Path(__file__).resolve().parent.parent
# Config keys whose ``module:Class`` value loads user code.
PLUGIN_KEYS = ("kind", "mobility")


def source_files(root: Path = SOURCE_ROOT) -> list[Path]:
    """The source files whose digest enters ``code_version()``, in a stable order."""
    files = []
    for package in SOURCE_PACKAGES:
        for path in sorted((root / package).glob("*.py")):
            if path.relative_to(root).as_posix() not in NOT_IN_A_POINT:
                files.append(path)
    return files


def source_digest(root: Path = SOURCE_ROOT) -> str:
    """sha256 over the model's source files (names and contents); "" when none is found."""
    digest = hashlib.sha256()
    files = source_files(root)
    for path in files:
        digest.update(path.relative_to(root).as_posix().encode() + b"\0")
        digest.update(path.read_bytes() + b"\0")
    return digest.hexdigest() if files else ""


@functools.cache
def code_version() -> str:
    """``sim.__version__`` plus 12 hex digits of ``source_digest()``: ``0.1.0+src.1a2b...``.

    Computed once a process, at its first sweep: the code it has loaded by then is what
    its runs use (a forked worker inherits the value with the code).
    """
    digest = source_digest()
    return f"{__version__}+src.{digest[:12]}" if digest else __version__


def plugin_modules(configs: dict[str, ExperimentConfig]) -> list[str]:
    """The user modules a point loads: ``module`` of every ``kind:``/``mobility:``
    ``module:Class`` value, in any variant, nested workloads (phases) included."""
    found: dict[str, None] = {}

    def walk(node: Any, key: str | None) -> None:
        if isinstance(node, dict):
            for k, value in node.items():
                walk(value, str(k))
        elif isinstance(node, list):
            for value in node:
                walk(value, None)
        elif isinstance(node, str) and key in PLUGIN_KEYS and ":" in node:
            found.setdefault(node.partition(":")[0])

    for config in configs.values():
        walk(config.model_dump(mode="json"), None)
    return sorted(found)


def plugin_digests(modules: Sequence[str]) -> dict[str, str]:
    """{module: 16 hex digits of the sha256 of its source file} (the file it was loaded
    from when it is loaded; "unreadable" when there is no file to read)."""
    out = {}
    for name in modules:
        module = sys.modules.get(name)
        path = getattr(module, "__file__", None)
        if path is None:
            try:
                spec = importlib.util.find_spec(name)
            except (ImportError, ValueError):
                spec = None
            path = spec.origin if spec is not None else None
        try:
            out[name] = hashlib.sha256(Path(path).read_bytes()).hexdigest()[:16]
        except (TypeError, OSError):
            out[name] = "unreadable"
    return out


def plugins_text(plugins: dict[str, str]) -> str:
    """``mod@digest`` joined by spaces: the ``plugins`` column of sweep.csv."""
    return " ".join(f"{name}@{digest}" for name, digest in sorted(plugins.items()))


def plan_sweep(config_path: str | Path, overrides: Sequence[str] = (),
               out: str | Path | None = None, seeds: int | None = None) -> SweepPlan:
    """Read and validate a sweep: every point x variant through ``validate_config``.

    A point's values are applied to the YAML first, then a variant's changes, then
    ``--set`` (as ``fragsim run`` orders them); a key both swept and set by a variant or
    by ``--set`` is an error, since one would silently undo the other.
    """
    source = str(config_path)
    raw = load_yaml(config_path)
    if SWEEP_KEY not in raw:
        raise _error(source, SWEEP_KEY, "a sweep: section with grid:, zip: or points:",
                     "none")
    spec = parse_sweep(raw.pop(SWEEP_KEY), source)
    if seeds is not None:
        if seeds < 1:
            raise FragsimError(f"--seeds: expected a number of at least 1, got {seeds}")
        spec.seeds = seeds
    overrides = tuple(overrides)
    raw_variants = raw.get("variants") or {}
    variants = tuple(raw_variants) if isinstance(raw_variants, dict) else ()
    # The base experiment first, with the house messages for --set and variants.
    base = {v: validate_config(raw, source, overrides, v) for v in variants} if variants \
        else {"default": validate_config(raw, source, overrides)}
    first = next(iter(base.values()))
    setters = [(f"variants.{name}.{changed}", str(changed))
               for name, changes in raw_variants.items() for changed in (changes or {})]
    setters += [(f"--set {text}", ".".join(parse_override(text)[0])) for text in overrides]
    # Each swept key, with each of its values, on its own: the error names the section.
    if spec.points is not None:
        singles = [(f"{SWEEP_KEY}.points.{i}", k, v)
                   for i, point in enumerate(spec.points) for k, v in point.items()]
    else:
        singles = [(f"{SWEEP_KEY}.{section}", k, v)
                   for section in ("grid", "zip")
                   for k, values in (getattr(spec, section) or {}).items() for v in values]
    checked: set[tuple[str, str]] = set()
    for where, key, value in singles:
        for setter, changed in setters:
            if _overlaps(str(key), changed):
                raise _error(source, f"{where}.{key}",
                             "a key that no variant or --set also sets", f"it set by {setter}")
        marker = (key, json.dumps(value, sort_keys=True, default=str))
        if marker in checked:
            continue
        checked.add(marker)
        data = _apply_params(raw, {key: value}, f"{source}: {where}")
        validate_config(data, f"{source}: {where}", overrides)
    # Every point x variant, whole.
    code = code_version()
    params_list = expand(spec)
    width = max(4, len(str(len(params_list) - 1)))
    replicates = spec.seeds or first.seeds
    points: list[Point] = []
    tasks: list[RunTask] = []
    sections: dict[str, str] = {}  # _config_yaml's cache, shared by the points
    for index, params in enumerate(params_list):
        pid = point_id(index, params, width)
        where = f"{source}: sweep point {pid} ({_params_text(params)})"
        data = _apply_params(raw, params, where)
        configs = {v: validate_config(data, where, overrides, v) for v in variants} \
            if variants else {"default": validate_config(data, where, overrides)}
        config = next(iter(configs.values()))
        dumped = config.model_dump(mode="json", by_alias=True)
        resolved = {}
        for key in params:
            try:
                resolved[key] = _lookup(dumped, str(key).split("."))
            except (KeyError, IndexError, ValueError):
                resolved[key] = params[key]
        points.append(Point(index, pid, params, resolved))
        plugins = plugin_digests(plugin_modules(configs))
        texts = {v: _config_yaml(c, sections) for v, c in configs.items()}
        for k, seed in enumerate(derive_seeds(config.seed, replicates, spec.seed_mode, params)):
            tasks.append(RunTask(
                run_id=f"{pid}-s{seed}", point_id=pid, index=index, params=params, seed=seed,
                replicate=k, raw=data, overrides=overrides, source=where, variants=variants,
                config_hash=_config_hash(texts, seed), code=code,
                plugins=plugins))
    out_dir = Path(out) if out is not None else Path("results") / first.name
    return SweepPlan(first.name, source, out_dir, list(overrides), spec, factors_of(spec),
                     points, variants, replicates, tasks)


def _params_text(params: dict[str, Any]) -> str:
    return ", ".join(f"{k}={v}" for k, v in params.items()) or "the base experiment"


# ------------------------------------------------------------------ one point x seed (worker)


def run_point(task: RunTask) -> RunOutcome:
    """Run every variant of one point with one seed; return the run directory's files.

    Runs in a worker process (or a dask worker): it writes nothing itself. Any exception
    becomes a failed outcome with the error on one line and the traceback. The summary
    records what produced the run *here*: this process's ``code_version()`` and the
    digests of the plug-in modules it loaded.
    """
    from sim.runner import run_machine

    started = time.perf_counter()
    try:
        names = task.variants or ("default",)
        configs = {v: validate_config(task.raw, task.source, task.overrides,
                                      v if task.variants else None) for v in names}
        identity = {"code": code_version(), "plugins": plugin_digests(plugin_modules(configs))}
        results = [run_machine(config, task.seed, variant) for variant, config in configs.items()]
        files = _run_files(task, configs, results, identity)
        summary = _run_summary(task, configs, results, identity)
        files["summary.json"] = json_text(summary)  # rendered here, in parallel
        return RunOutcome(task, files, summary, wall_s=time.perf_counter() - started)
    except Exception as err:  # a crashing point must not stop the sweep
        message = " ".join(f"{type(err).__name__}: {err}".split())
        return RunOutcome(task, error=message, traceback=traceback.format_exc(),
                          wall_s=time.perf_counter() - started)


def _run_files(task: RunTask, configs: dict[str, ExperimentConfig], results: list,
               identity: dict[str, Any]) -> dict[str, str | bytes]:
    """The fragsim run layout, as {relative path: content} (summary.json apart)."""
    resolved = {"fragsim_version": __version__, "code_version": identity["code"],
                "plugins": identity["plugins"], "seeds": [task.seed],
                "sweep_point": {"id": task.point_id, "params": task.params},
                "variants": {v: c.model_dump(mode="json", by_alias=True)
                             for v, c in configs.items()}}
    files: dict[str, str | bytes] = {
        "config.yaml": yaml.safe_dump(resolved, sort_keys=False, default_flow_style=False)}
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(TIMESERIES_COLUMNS)
    for result in results:
        writer.writerows(result.rows())
    files["timeseries.csv"] = buffer.getvalue()
    single = len(results) == 1
    for i, result in enumerate(results):
        sub = "final" if single else f"final/{result.variant}"
        for name, text in result.final.items():
            files[f"{sub}/{name}"] = text
        if i == 0:
            files["memmap/start.npz"] = _npz(result.memmap["start"])
        files["memmap/end.npz" if single else f"memmap/end-{result.variant}.npz"] = \
            _npz(result.memmap["end"])
    return files


def _npz(arrays: dict[str, np.ndarray]) -> bytes:
    buffer = io.BytesIO()
    np.savez_compressed(buffer, **arrays)
    return buffer.getvalue()


def _run_summary(task: RunTask, configs: dict[str, ExperimentConfig], results: list,
                 identity: dict[str, Any]) -> dict[str, Any]:
    from sim.stats import aggregate

    first = next(iter(configs.values()))
    return {
        "fragsim_version": __version__,
        "name": first.name,
        "complete": True,
        "sweep": {"point": task.point_id, "index": task.index, "params": task.params,
                  "seed": task.seed, "replicate": task.replicate,
                  "config_hash": task.config_hash, "code": identity["code"],
                  "plugins": identity["plugins"]},
        "variants": {r.variant: {"runs": [r.summary], **aggregate([r.summary])}
                     for r in results},
    }


# ------------------------------------------------------------------ the sweep


SUPERSEDED = ".superseded"  # under points/: the directories of stale runs


def _read_summary(run_dir: Path) -> dict[str, Any] | None:
    """A run's summary.json when it is complete, else None."""
    try:
        summary = json.loads((run_dir / "summary.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return summary if isinstance(summary, dict) and summary.get("complete") else None


def _staleness(summary: dict[str, Any] | None, task: RunTask) -> str | None:
    """Why a finished run is not the one ``task`` asks for: "missing", "config",
    "version" or "plugin"; None when it is (same config and seed, code and plug-ins)."""
    if summary is None:
        return "missing"
    made = summary.get("sweep")
    if not isinstance(made, dict) or made.get("config_hash") != task.config_hash:
        return "config"
    if made.get("code") != task.code:  # absent: made before fragsim recorded it
        return "version"
    if (made.get("plugins") or {}) != task.plugins:
        return "plugin"
    return None


def _finished(run_dir: Path, task: RunTask) -> bool:
    return _staleness(_read_summary(run_dir), task) is None


def _supersede(points_dir: Path, run_id: str) -> None:
    """Move a stale run directory out of the sweep, to points/.superseded/<run>."""
    target = points_dir / SUPERSEDED / run_id
    target.parent.mkdir(exist_ok=True)
    if target.exists():
        shutil.rmtree(target)
    os.replace(points_dir / run_id, target)


def _stale_notice(stale: dict[str, list[tuple[RunTask, dict[str, Any]]]], code: str,
                  points_dir: Path) -> str:
    """One line: how many finished runs are run again, and why."""
    parts = []
    if stale.get("version"):
        made = sorted({str(s.get("sweep", {}).get("code") or s.get("fragsim_version") or "?")
                       for _t, s in stale["version"]})
        parts.append(f"{len(stale['version'])} made by fragsim {', '.join(made)} "
                     f"(this is {code})")
    if stale.get("plugin"):
        changed = sorted({name for task, s in stale["plugin"]
                          for name in set(task.plugins) | set(s["sweep"].get("plugins") or {})
                          if task.plugins.get(name) != (s["sweep"].get("plugins") or {})
                          .get(name)})
        parts.append(f"{len(stale['plugin'])} made with other plug-in code "
                     f"({', '.join(changed)})")
    if stale.get("config"):
        parts.append(f"{len(stale['config'])} made with another config")
    total = sum(len(v) for v in stale.values())
    return (f"rerunning {total} stale point x seed run(s): {'; '.join(parts)}; their "
            f"directories moved to {points_dir / SUPERSEDED}/")


def _identity_mismatch(outcome: RunOutcome) -> str | None:
    """A worker that ran other code than this sweep's: why its result is refused."""
    task, made = outcome.task, (outcome.summary or {}).get("sweep", {})
    if made.get("code") != task.code:
        return (f"the worker runs fragsim {made.get('code')}, expected {task.code} as this "
                "sweep does: its result is not mixed in")
    if (made.get("plugins") or {}) != task.plugins:
        return (f"the worker loaded plug-in code {plugins_text(made.get('plugins') or {})}, "
                f"expected {plugins_text(task.plugins)}: its result is not mixed in")
    return None


def _remove_stale_partials(points_dir: Path) -> None:
    """Partial run directories of a sweep that was killed (its pid is gone)."""
    if not points_dir.is_dir():
        return
    for path in points_dir.glob(".*.partial-*"):
        match = re.search(r"\.partial-(\d+)$", path.name)
        if not match:
            continue
        try:
            os.kill(int(match.group(1)), 0)
        except ProcessLookupError:
            shutil.rmtree(path, ignore_errors=True)
        except PermissionError:
            pass


def _commit(points_dir: Path, outcome: RunOutcome) -> None:
    with RunDirectory(points_dir / outcome.task.run_id) as run_dir:
        for relative, content in (outcome.files or {}).items():
            target = run_dir.path / relative
            if isinstance(content, bytes):
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_bytes(content)
            else:
                write_atomic(target, content)


def _failure_record(outcome: RunOutcome) -> dict[str, Any]:
    task = outcome.task
    return {"point": task.point_id, "run": task.run_id, "params": task.params,
            "seed": task.seed, "replicate": task.replicate, "error": outcome.error,
            "traceback": outcome.traceback}


def run_sweep(
    config_path: str | Path,
    overrides: Sequence[str] = (),
    out: str | Path | None = None,
    jobs: int | None = None,
    executor: str = "local",
    scheduler: str | None = None,
    seeds: int | None = None,
    progress_factory: Callable[[int, int], Callable[[RunOutcome], None]] | None = None,
    plots: bool = True,
    connect_timeout: float = CONNECT_TIMEOUT_S,
    cluster_options: dict[str, Any] | None = None,
    notify: Callable[[str], None] | None = None,
) -> SweepReport:
    """Run (or resume) a sweep and write its directory; returns what it did.

    ``progress_factory(to_run, skipped)`` returns a callback called after each point x
    seed. Failures do not raise: they are in ``report.failures`` and failures.json.
    ``notify`` is given one line when finished runs are stale and run again.
    A stop signal (SIGTERM, Ctrl-C) raises ``sim.executors.Interrupted`` once the
    workers are gone and sweep.csv, sweep.json and failures.json are written.
    """
    started = time.perf_counter()
    plan = plan_sweep(config_path, overrides, out, seeds)
    with output_directory(plan.out, "sweep"):
        return _run_sweep(plan, started, jobs, executor, scheduler, progress_factory, plots,
                          connect_timeout, cluster_options, notify)


def _run_sweep(plan: SweepPlan, started: float, jobs: int | None, executor: str,
               scheduler: str | None,
               progress_factory: Callable[[int, int], Callable[[RunOutcome], None]] | None,
               plots: bool, connect_timeout: float, cluster_options: dict[str, Any] | None,
               notify: Callable[[str], None] | None) -> SweepReport:
    out_dir = plan.out
    points_dir = out_dir / "points"
    points_dir.mkdir(parents=True, exist_ok=True)
    _remove_stale_partials(points_dir)
    todo: list[RunTask] = []
    stale: dict[str, list[tuple[RunTask, dict[str, Any]]]] = {}
    for task in plan.tasks:
        summary = _read_summary(points_dir / task.run_id)
        why = _staleness(summary, task)
        if why is None:
            continue
        todo.append(task)
        if summary is not None:  # finished, by other code or for another config
            stale.setdefault(why, []).append((task, summary))
            _supersede(points_dir, task.run_id)
    skipped = len(plan.tasks) - len(todo)
    n_stale = sum(len(v) for v in stale.values())
    if stale and notify is not None:
        notify(_stale_notice(stale, code_version(), points_dir))
    write_manifest(plan, out_dir, complete=False)
    failures: list[dict[str, Any]] = []
    returned: set[str] = set()  # runs that came back from a worker, this time
    callback = progress_factory(len(todo), skipped) if progress_factory else None
    ran = 0
    try:
        if todo:
            with open_executor(executor, jobs, scheduler, connect_timeout,
                               cluster_options) as pool:
                for i, outcome, error in pool.map_unordered(run_point, todo):
                    if error is not None:  # the worker itself died (not the model)
                        outcome = RunOutcome(todo[i], error=" ".join(
                            f"the worker running this point died: {type(error).__name__}: "
                            f"{error}".split()), traceback="".join(
                            traceback.format_exception(error)))
                    mismatch = _identity_mismatch(outcome) if outcome.ok else None
                    if mismatch is not None:
                        outcome = RunOutcome(outcome.task, error=mismatch,
                                             wall_s=outcome.wall_s)
                    if outcome.ok:
                        _commit(points_dir, outcome)
                    else:
                        failures.append(_failure_record(outcome))
                    returned.add(outcome.task.run_id)
                    ran += 1
                    if callback is not None:
                        callback(outcome)
    finally:
        failures.sort(key=lambda f: (f["point"], f["replicate"]))
        failures_path = out_dir / "failures.json"
        recorded = _earlier_failures(failures_path, plan, points_dir, returned) + failures
        if recorded:
            recorded.sort(key=lambda f: (str(f.get("point")), f.get("replicate") or 0))
            write_json(failures_path, recorded)
        else:
            failures_path.unlink(missing_ok=True)
        csv_path = write_sweep_csv(plan, out_dir)
        write_manifest(plan, out_dir, complete=not recorded and ran == len(todo))
    report = SweepReport(out_dir, len(plan.tasks), skipped, ran, failures, csv_path,
                         stale=n_stale)
    if plots:
        from sim.plots import plot_sweep

        report.plots = plot_sweep(out_dir)
    report.wall_s = time.perf_counter() - started
    return report


def _earlier_failures(path: Path, plan: SweepPlan, points_dir: Path,
                      returned: set[str]) -> list[dict[str, Any]]:
    """The records of failures.json still true: runs of this plan that did not come back
    this time (an interrupted sweep) and are not finished. A run that has since
    succeeded, failed again (its new record replaces it) or left the sweep is dropped."""
    try:
        earlier = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return []
    tasks = {t.run_id: t for t in plan.tasks}
    return [record for record in earlier if isinstance(earlier, list)
            and isinstance(record, dict) and record.get("run") in tasks
            and record["run"] not in returned
            and not _finished(points_dir / record["run"], tasks[record["run"]])]


def write_manifest(plan: SweepPlan, out_dir: Path, complete: bool) -> None:
    """sweep.json: what the sweep is (factors, points, runs), for the plots and for people."""
    plugins: dict[str, str] = {}
    runs: dict[str, list[dict[str, Any]]] = {}
    for task in plan.tasks:
        plugins.update(task.plugins)
        runs.setdefault(task.point_id, []).append(
            {"id": task.run_id, "seed": task.seed, "replicate": task.replicate})
    write_json(out_dir / "sweep.json", {
        "fragsim_version": __version__,
        "code_version": code_version(),
        "plugins": plugins,
        "name": plan.name,
        "config": plan.source,
        "overrides": plan.overrides,
        "complete": complete,
        "seeds": plan.replicates,
        "seed_mode": plan.spec.seed_mode,
        "variants": list(plan.variants) or ["default"],
        "factors": [{"name": f.name, "keys": list(f.keys), "section": f.section}
                    for f in plan.factors],
        "parameters": parameter_keys(plan),
        "metrics": plan.spec.metrics,
        "points": [{"id": p.id, "index": p.index, "params": p.params, "resolved": p.resolved,
                    "runs": runs.get(p.id, [])} for p in plan.points],
    })


def parameter_keys(plan: SweepPlan) -> list[str]:
    return list(dict.fromkeys(k for f in plan.factors for k in f.keys))


def _csv_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return f"{value:.10g}"
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    return json.dumps(value, sort_keys=True, default=str)


def flatten_summary(summary: dict[str, Any]) -> dict[str, float]:
    """Every numeric field of a run's summary, as dotted names.

    First the fields sim.runner aggregates (same names: ``thp_success_rate``,
    ``evictions.slab_objects``), then what it leaves out: per-cache figures
    (``caches.dentry.num_slabs``) and per-workload ones, list items by index
    (``workloads.compact_memory-1.runs.0.avail9_after``).
    """
    from sim.stats import numeric_leaves as _numeric_leaves  # as summary.json's means

    out = _numeric_leaves(summary)
    out.pop("seed", None)

    def walk(value: Any, name: str) -> None:
        if isinstance(value, bool):
            return
        if isinstance(value, int | float):
            out[name] = float(value)
        elif isinstance(value, dict):
            for key, item in value.items():
                walk(item, f"{name}.{key}")
        elif isinstance(value, list):
            for i, item in enumerate(value):
                walk(item, f"{name}.{i}")

    for section in ("caches", "workloads"):
        walk(summary.get(section, {}), section)
    return out


def write_sweep_csv(plan: SweepPlan, out_dir: Path) -> Path:
    """sweep.csv from the finished run directories: point x seed x variant rows.

    Only runs of the plan's identity (config, seed, code version, plug-in code) are
    rows; ``fragsim_version`` is the code version that made each, ``plugins`` (only when
    a point loads user code) its plug-in modules' digests.
    """
    params = parameter_keys(plan)
    identity = ["fragsim_version"] + (["plugins"] if any(t.plugins for t in plan.tasks)
                                      else [])
    by_point = {p.id: p for p in plan.points}
    rows: list[dict[str, str]] = []
    metrics: dict[str, None] = {}
    for task in plan.tasks:
        summary = _read_summary(out_dir / "points" / task.run_id)
        if summary is None or _staleness(summary, task) is not None:
            continue
        point = by_point[task.point_id]
        made = summary["sweep"]
        for variant, data in summary.get("variants", {}).items():
            for run in data.get("runs", []):
                row = {"point": task.point_id, "variant": variant, "seed": str(task.seed)}
                for key in params:
                    row[key] = _csv_value(point.resolved.get(key, point.params.get(key)))
                row["fragsim_version"] = str(made["code"])
                if "plugins" in identity:
                    row["plugins"] = plugins_text(made.get("plugins") or {})
                for name, value in flatten_summary(run).items():
                    metrics.setdefault(name)
                    row[name] = _csv_value(value)
                rows.append(row)
    header = ["point", "variant", "seed", *params, *identity,
              *(m for m in metrics if m not in identity)]
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=header, lineterminator="\n", restval="")
    writer.writeheader()
    writer.writerows(rows)
    path = out_dir / "sweep.csv"
    write_atomic(path, buffer.getvalue())
    return path


def read_sweep_csv(path: str | Path) -> list[dict[str, str]]:
    with open(path, newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def as_number(text: str) -> float:
    """A sweep.csv cell as a float (NaN when empty or not a number)."""
    try:
        return float(text)
    except (TypeError, ValueError):
        return math.nan


__all__ = ["SweepSection", "plan_sweep", "run_sweep", "run_point", "expand", "derive_seeds",
           "open_executor", "LocalExecutor", "DaskExecutor", "read_sweep_csv", "code_version"]
