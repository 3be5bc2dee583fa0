"""``fragsim compare``: result directories (real or simulated) side by side.

Each RUN is a result directory (``fragsim record``, ``fragsim run``, ``fragsim
replay``) or a capture in the shared capture tool's layout (sim/capture.py:
``configs/real/fileserver-a/``) and, optionally, one of its variants: ``DIR:VARIANT``
(default ``--variant``, else the directory's first). A variant's seeds are averaged,
sample by sample (on the first seed's times), into one series per metric and key: the
model's prediction is the mean over seeds, and one real recording is laid beside it.

Alignment: the runs are compared over the time they all cover, from the latest start to
the earliest end, on a common grid whose step is the coarsest run's sampling interval
(its median), each series interpolated linearly onto it. A series missing at a grid
point (a slab cache that appears late) leaves that point out of its errors.

Errors, of every series all the runs have (``metric/key``, or ``metric`` when the key is
empty), of each run against the first (the reference): ``mae``, the time average of
the absolute difference; ``max``, the largest absolute difference; ``mean``, the
difference of the time averages; ``end``, the difference at the end of the common
range. Each also relative: ``mae`` and ``max`` over the time average of the
reference's absolute value, ``mean`` over the reference's time average, ``end`` over
its value at the end (null where that is 0 and the error is not).

THP success: ``thp_success_rate`` is recomputed for every run from its cumulative
``thp_attempts`` and ``thp_success_cumulative`` as the share of the attempts of the
last ``thp_window`` seconds that succeeded (a run samples it over its probe's last
attempts, a record over each sample interval, so the raw series do not compare); a run
without them keeps its own.

Tolerances: ``NAME[:STAT]=LIMIT``; NAME a series as above (``avail/Normal/9``), STAT one
of STATS (default ``mae``), LIMIT a number in the metric's unit (absolute) or ``N%`` of
the reference (relative). A run whose error exceeds it, or has no data to check it, is
a violation.
"""

from __future__ import annotations

import json
import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from sim import __version__
from sim.capture import capture_series, is_capture
from sim.errors import FragsimError
from sim.results import output_directory, read_timeseries, write_json

STATS = ("mae", "max", "mean", "end")
THP_WINDOW_S = 30.0
TOP_CACHES = 4  # slab caches drawn: the largest (objects) that every run has
COUNTERS = (  # the cumulative vmstat counters drawn, those that moved in some run
    ("pgsteal_kswapd", "pages"), ("pgsteal_direct", "pages"), ("pgscan_kswapd", "pages"),
    ("allocstall", "direct reclaim stalls"), ("compact_stall", "direct compactions"),
    ("compact_success", "direct compactions"), ("compact_fail", "direct compactions"),
    ("compact_daemon_wake", "kcompactd wakes"), ("pageoutrun", "kswapd runs"),
    ("pgmigrate_success", "pages"), ("slabs_scanned", "objects"),
)
MAX_COUNTERS = 6
Series = dict[tuple[str, str], tuple[np.ndarray, np.ndarray]]


def series_name(metric: str, key: str) -> str:
    """``metric/key``, or ``metric`` for an empty key."""
    return f"{metric}/{key}" if key else metric


def parse_series_name(name: str) -> tuple[str, str]:
    metric, _, key = name.partition("/")
    return metric, key


# ------------------------------------------------------------------ reading runs


@dataclass
class Run:
    """One run (a variant of a result directory, its seeds averaged)."""

    path: Path
    variant: str
    seeds: list[int]
    source: str  # "record", "simulation" or "replay"
    series: Series
    label: str = ""
    start: float = 0.0
    end: float = 0.0
    step: float = 0.0

    @property
    def legend(self) -> str:
        if self.source == "record":
            return f"{self.label} (real kernel)"
        seeds = f"{len(self.seeds)} seeds" if len(self.seeds) > 1 else f"seed {self.seeds[0]}"
        return f"{self.label} (simulated, {seeds})"


def _split_spec(spec: str) -> tuple[Path, str | None]:
    """DIR or DIR:VARIANT."""
    path = Path(spec)
    if path.is_dir() or ":" not in spec:
        return path, None
    head, _, variant = spec.rpartition(":")
    if Path(head).is_dir() and variant:
        return Path(head), variant
    return path, None


def _source(path: Path) -> str:
    try:
        summary = json.loads((path / "summary.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return "simulation"
    # A record of the live kernel: fragsim record's, or fragsim run --real's.
    if summary.get("source") in ("record", "real") or summary.get("kind") in ("record", "real"):
        return "record"
    return "replay" if summary.get("kind") == "replay" else "simulation"


def load_run(spec: str, variant: str | None = None,
             thp_window: float = THP_WINDOW_S) -> Run:
    """A run from ``DIR`` or ``DIR:VARIANT``: its variant's series, seeds averaged."""
    path, chosen = _split_spec(spec)
    csv_path = path / "timeseries.csv"
    if not csv_path.is_file() and (path / "timeseries.csv.gz").is_file():
        csv_path = path / "timeseries.csv.gz"  # a kept capture, stored gzipped
    if path.is_dir() and is_capture(path):
        # A capture of the shared tool's layout (sim/capture.py): one real run.
        series = _with_thp_window(capture_series(path), thp_window)
        axis = np.unique(np.concatenate([t for t, _ in series.values()]))
        step = float(np.median(np.diff(axis))) if len(axis) > 1 else 0.0
        return Run(path, "real", [0], "record", series, start=float(axis[0]),
                   end=float(axis[-1]), step=step)
    if not path.is_dir():
        raise FragsimError(f"{spec}: expected a result directory (fragsim run or record), "
                           "got " + ("a file" if path.exists() else "no such directory"))
    if not csv_path.is_file():
        raise FragsimError(f"{spec}: expected a result directory with timeseries.csv "
                           "(fragsim run or record), got none")
    try:
        runs = read_timeseries(csv_path)
    except (ValueError, UnicodeDecodeError) as e:
        raise FragsimError(f"{csv_path}: expected fragsim's timeseries.csv (time,variant,"
                           f"seed,metric,key,value), got {' '.join(str(e).split())}") from None
    if not runs:
        raise FragsimError(f"{csv_path}: expected samples, got none")
    variants = list(dict.fromkeys(v for v, _ in runs))
    # --variant applies to a run that has it or must choose; a run of one variant
    # (a record's "real") keeps its own.
    if chosen is not None:
        want = chosen
    elif variant is not None and (variant in variants or len(variants) > 1):
        want = variant
    else:
        want = variants[0]
    if want not in variants:
        raise FragsimError(f"{spec}: expected a variant of {', '.join(variants)}, got {want!r}")
    seeds = sorted(s for v, s in runs if v == want)
    per_seed = [_with_thp_window(runs[(want, s)], thp_window) for s in seeds]
    series = _average_seeds(per_seed)
    times = np.concatenate([t for t, _ in series.values()]) if series else np.zeros(1)
    axis = np.unique(times)
    step = float(np.median(np.diff(axis))) if len(axis) > 1 else 0.0
    return Run(path, want, seeds, _source(path), series, start=float(axis[0]),
               end=float(axis[-1]), step=step)


def _with_thp_window(series: Series, window: float) -> Series:
    """The seed's series with ``thp_success_rate`` over the attempts of the last
    ``window`` seconds, from the cumulative attempts and success share (0 before the
    first attempt); unchanged without them."""
    attempts = series.get(("thp_attempts", ""))
    share = series.get(("thp_success_cumulative", ""))
    if attempts is None or share is None:
        return series
    t, tried = attempts
    ok = np.interp(t, share[0], share[1], left=0.0) * tried
    before = t - window
    tried_then = np.interp(before, t, tried, left=0.0)
    ok_then = np.interp(before, t, ok, left=0.0)
    attempts_in = tried - tried_then
    with np.errstate(invalid="ignore", divide="ignore"):
        rate = np.where(attempts_in > 0, (ok - ok_then) / attempts_in, np.nan)
    keep = np.isfinite(rate)
    out = dict(series)
    out[("thp_success_rate", "")] = (t[keep], rate[keep])
    return out


def _average_seeds(per_seed: list[Series]) -> Series:
    """Each series' mean over the seeds that have it, on the first one's times."""
    out: Series = {}
    names = list(dict.fromkeys(name for s in per_seed for name in s))
    for name in names:
        have = [s[name] for s in per_seed if name in s]
        times = have[0][0]
        stacked = np.vstack([np.interp(times, t, v, left=np.nan, right=np.nan)
                             for t, v in have])
        with warnings.catch_warnings():  # a time no seed covers: NaN, said once here
            warnings.simplefilter("ignore", RuntimeWarning)
            out[name] = (times, np.nanmean(stacked, axis=0) if len(have) > 1 else stacked[0])
    return out


def _labels(runs: list[Run]) -> None:
    """Short distinct labels: the directory's name, with the variant when needed."""
    names = [r.path.resolve().name or str(r.path) for r in runs]
    for run, name in zip(runs, names, strict=True):
        variants = {r.variant for r, n in zip(runs, names, strict=True) if n == name}
        run.label = name if len(variants) == 1 else f"{name}:{run.variant}"
    seen: dict[str, int] = {}
    for run in runs:
        seen[run.label] = seen.get(run.label, 0) + 1
        if seen[run.label] > 1:
            run.label = f"{run.label} #{seen[run.label]}"


# ------------------------------------------------------------------ tolerances


@dataclass
class Tolerance:
    text: str  # as given
    name: str  # metric or metric/key
    stat: str  # one of STATS
    limit: float
    relative: bool
    source: str = "--tolerance"


def parse_tolerance(text: str, source: str = "--tolerance") -> Tolerance:
    """``NAME[:STAT]=LIMIT`` (LIMIT a number, or N% for relative)."""
    name, eq, limit_text = text.partition("=")
    name, limit_text = name.strip(), limit_text.strip()
    where = f"{source} {text}"
    if not eq or not name or not limit_text:
        raise FragsimError(f"{where}: expected NAME[:STAT]=LIMIT, e.g. avail/Normal/9=20% or "
                           "thp_success_rate:end=0.1, got no '=' and limit" if not eq else
                           f"{where}: expected NAME[:STAT]=LIMIT, got an empty name or limit")
    stat = "mae"
    head, colon, tail = name.rpartition(":")
    if colon and tail in STATS:
        name, stat = head, tail
    elif colon and "/" not in tail:
        raise FragsimError(f"{where}: expected a statistic of {', '.join(STATS)} after ':', "
                           f"got {tail!r}")
    relative = limit_text.endswith("%")
    number = limit_text[:-1].strip() if relative else limit_text
    try:
        limit = float(number)
    except ValueError:
        raise FragsimError(f"{where}: expected a limit such as 0.1 or 20%, got "
                           f"{limit_text!r}") from None
    if not (limit >= 0 and math.isfinite(limit)):
        raise FragsimError(f"{where}: expected a limit of at least 0, got {limit_text!r}")
    return Tolerance(text, name, stat, limit / 100 if relative else limit, relative, source)


def load_tolerances(texts: Sequence[str], path: str | None = None) -> list[Tolerance]:
    """The ``--tolerance`` options, then the entries of a YAML file: a mapping of
    ``NAME[:STAT]`` to LIMIT, or a list of ``NAME[:STAT]=LIMIT``."""
    tolerances = [parse_tolerance(t) for t in texts]
    if path is None:
        return tolerances
    try:
        data = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except OSError as e:
        raise FragsimError(f"{path}: cannot read: {e.strerror or e}") from None
    except (yaml.YAMLError, UnicodeDecodeError) as e:
        raise FragsimError(f"{path}: expected YAML, got {' '.join(str(e).split())}") from None
    if isinstance(data, dict):
        entries = [f"{k}={v}" for k, v in data.items()]
    elif isinstance(data, list) and all(isinstance(e, str) for e in data):
        entries = data
    else:
        raise FragsimError(f"{path}: expected a mapping of NAME[:STAT] to LIMIT (e.g. "
                           f"'avail/Normal/9: 20%'), got {type(data).__name__}")
    return tolerances + [parse_tolerance(str(e), path) for e in entries]


# ------------------------------------------------------------------ errors


def _time_average(grid: np.ndarray, values: np.ndarray) -> float | None:
    keep = np.isfinite(values)
    if not keep.any():
        return None
    t, v = grid[keep], values[keep]
    if len(t) < 2 or t[-1] <= t[0]:
        return float(v.mean())
    return float(np.trapezoid(v, t) / (t[-1] - t[0]))


def _relative(error: float | None, scale: float | None) -> float | None:
    if error is None or scale is None:
        return None
    if scale == 0:
        return 0.0 if error == 0 else None
    return abs(error) / abs(scale)


def _end(values: np.ndarray) -> float | None:
    finite = values[np.isfinite(values)]
    return float(finite[-1]) if len(finite) else None


def series_errors(grid: np.ndarray, ref: np.ndarray, other: np.ndarray) -> dict[str, Any]:
    """One run's errors against the reference on the grid (see the module docstring)."""
    both = np.isfinite(ref) & np.isfinite(other)
    diff = np.where(both, np.abs(other - ref), np.nan)
    mae = _time_average(grid, diff)
    largest = float(np.nanmax(diff)) if both.any() else None
    scale = _time_average(grid, np.where(both, np.abs(ref), np.nan))
    ref_mean = _time_average(grid, np.where(both, ref, np.nan))
    own_mean = _time_average(grid, np.where(both, other, np.nan))
    ref_end, own_end = _end(np.where(both, ref, np.nan)), _end(np.where(both, other, np.nan))
    mean_error = None if ref_mean is None else own_mean - ref_mean
    end_error = None if ref_end is None else own_end - ref_end
    return {
        "mean": own_mean, "end": own_end,
        "mae": mae, "mae_relative": _relative(mae, scale),
        "max": largest, "max_relative": _relative(largest, scale),
        "mean_error": mean_error, "mean_relative": _relative(mean_error, ref_mean),
        "end_error": end_error, "end_relative": _relative(end_error, ref_end),
    }


def _stat_value(errors: dict[str, Any], stat: str, relative: bool) -> float | None:
    if relative:
        return errors[f"{stat}_relative"]
    value = errors[{"mae": "mae", "max": "max", "mean": "mean_error",
                    "end": "end_error"}[stat]]
    return None if value is None else abs(value)


@dataclass
class Comparison:
    runs: list[Run]
    grid: np.ndarray
    common: list[tuple[str, str]]
    on_grid: dict[tuple[str, str], list[np.ndarray]] = field(default_factory=dict)


def align(runs: list[Run], start: float = 0.0) -> Comparison:
    """The common grid (from ``start`` on, if later than every run's start) and every
    shared series on it."""
    low = max([r.start for r in runs] + [start])
    high = min(r.end for r in runs)
    if not high > low:
        spans = ", ".join(f"{r.label} {r.start:g}-{r.end:g} s" for r in runs)
        after = f" after --from {start:g} s" if start else ""
        raise FragsimError(f"expected runs that share some time{after}, got none in common "
                           f"({spans})")
    step = max((r.step for r in runs), default=0.0) or (high - low)
    grid = np.arange(low, high + step * 1e-6, step)
    if grid[-1] < high - step * 1e-6:
        grid = np.append(grid, high)
    common = [name for name in runs[0].series if all(name in r.series for r in runs[1:])]
    comparison = Comparison(runs, grid, common)
    for name in common:
        comparison.on_grid[name] = [
            np.interp(grid, *r.series[name], left=np.nan, right=np.nan) for r in runs]
    return comparison


def compare(specs: Sequence[str], out: str | Path | None = None, variant: str | None = None,
            tolerances: Sequence[Tolerance] = (), thp_window: float | None = None,
            plots: bool = True, start: float = 0.0) -> dict[str, Any]:
    """Compare the runs from ``start`` on (e.g. after a simulation's warm-up); write
    compare.json (and compare.png) into ``out``; the report, with ``violations`` (one
    line each) of the tolerances."""
    if len(specs) < 2:
        raise FragsimError(f"expected at least two runs to compare, got {len(specs)}")
    window = THP_WINDOW_S if thp_window is None else thp_window
    runs = [load_run(spec, variant, window) for spec in specs]
    _labels(runs)
    comparison = align(runs, start)
    names = {series_name(*n): n for n in comparison.common}
    _check_tolerance_names(tolerances, names, runs)
    ref = runs[0]
    metrics: dict[str, Any] = {}
    for name, values in comparison.on_grid.items():
        ref_values = values[0]
        metrics[series_name(*name)] = {
            "metric": name[0], "key": name[1],
            "reference": {"mean": _time_average(comparison.grid, ref_values),
                          "end": _end(ref_values)},
            "runs": {run.label: series_errors(comparison.grid, ref_values, v)
                     for run, v in zip(runs[1:], values[1:], strict=True)},
        }
    checked, violations = [], []
    for tol in tolerances:
        errors = metrics[tol.name]["runs"]
        results = {}
        for label, err in errors.items():
            value = _stat_value(err, tol.stat, tol.relative)
            ok = value is not None and value <= tol.limit + 1e-12
            results[label] = {"value": value, "ok": ok}
            if not ok:
                violations.append(_violation(tol, label, value, ref.label, err))
        checked.append({"tolerance": tol.text, "source": tol.source, "name": tol.name,
                        "stat": tol.stat, "limit": tol.limit, "relative": tol.relative,
                        "runs": results})
    out_dir = Path(out) if out is not None else _default_out(runs)
    report = {
        "fragsim_version": __version__,
        "kind": "compare",
        "reference": ref.label,
        "runs": [{"label": r.label, "path": str(r.path), "variant": r.variant,
                  "seeds": r.seeds, "source": r.source, "start_s": r.start, "end_s": r.end,
                  "sample_step_s": r.step} for r in runs],
        "time_range_s": [float(comparison.grid[0]), float(comparison.grid[-1])],
        "grid_step_s": float(comparison.grid[1] - comparison.grid[0])
        if len(comparison.grid) > 1 else 0.0,
        "thp_window_s": window,
        "only_in_some_runs": sorted({series_name(*n) for r in runs for n in r.series}
                                    - set(metrics)),
        "tolerances": checked,
        "ok": not violations,
        "metrics": metrics,
    }
    with output_directory(out_dir, "compare") as path:
        write_json(path / "compare.json", _strict(report))
        report["plot"] = None
        (path / "compare.png").unlink(missing_ok=True)  # an earlier compare's, in its place
        if plots:
            from sim.plots import plot_compare

            report["plot"] = plot_compare(path / "compare.png", figure_panels(comparison, window),
                                          [r.legend for r in runs],
                                          (float(comparison.grid[0]), float(comparison.grid[-1])))
    report["out"] = str(out_dir)
    report["violations"] = violations
    return report


def _default_out(runs: list[Run]) -> Path:
    name = f"compare-{runs[0].label}-vs-{runs[1].label}"
    if len(runs) > 2:
        name += f"-and-{len(runs) - 2}-more"
    return Path("results") / name.replace("/", "_").replace(" ", "_").replace(":", "_")


def _check_tolerance_names(tolerances: Sequence[Tolerance], names: dict, runs: list[Run]
                           ) -> None:
    for tol in tolerances:
        if tol.name in names:
            continue
        metric, key = parse_series_name(tol.name)
        lacking = [r.label for r in runs if (metric, key) not in r.series]
        where = f"{tol.source} {tol.text}"
        if len(lacking) < len(runs):
            raise FragsimError(f"{where}: expected a series every run has, got {tol.name!r}, "
                               f"which {', '.join(lacking)} lack{'s' * (len(lacking) == 1)}")
        examples = [n for n in ("avail/9", "thp_success_rate", "pageblocks/Movable")
                    if n in names] or sorted(names)[:3]
        raise FragsimError(f"{where}: expected a series of the runs (metric or metric/key, "
                           f"e.g. {', '.join(examples)}), got {tol.name!r}")


def _number(value: float) -> str:
    return f"{value:,.0f}" if abs(value) >= 1000 else f"{value:.3g}"


def _violation(tol: Tolerance, label: str, value: float | None, ref: str,
               errors: dict[str, Any]) -> str:
    limit = f"{tol.limit * 100:g}%" if tol.relative else _number(tol.limit)
    what = {"mae": "mean absolute error", "max": "largest error",
            "mean": "error of the time average", "end": "error at the end"}[tol.stat]
    absolute = _stat_value(errors, tol.stat, False)
    if value is None and absolute is not None:
        return (f"{tol.name}: {label}: {what} {_number(absolute)} against {ref}, whose "
                f"value is 0: a relative tolerance cannot hold ({tol.text}); give an "
                "absolute limit")
    if value is None:
        return (f"{tol.name}: {label}: no data to check its {what} against {ref} "
                f"(tolerance {tol.text})")
    shown = f"{value * 100:.3g}%" if tol.relative else _number(value)
    return (f"{tol.name}: {label}: {what} {shown} against {ref} exceeds the tolerance "
            f"{limit} ({tol.text})")


def _strict(data: Any) -> Any:
    """JSON without NaN: null instead."""
    if isinstance(data, dict):
        return {k: _strict(v) for k, v in data.items()}
    if isinstance(data, list | tuple):
        return [_strict(v) for v in data]
    if isinstance(data, float | np.floating) and not math.isfinite(float(data)):
        return None
    return data


# ------------------------------------------------------------------ the figure's panels


@dataclass
class Panel:
    """One panel of compare.png: a title, a y label, one line per run (None: the run
    has no such series)."""

    title: str
    ylabel: str
    lines: list[tuple[np.ndarray, np.ndarray] | None]
    ylim: tuple[float, float] | None = None


def _zones(runs: list[Run], metric: str, key: str) -> list[str]:
    zones: list[str] = []
    for run in runs:
        for m, k in run.series:
            zone, slash, rest = k.partition("/")
            if m == metric and slash and rest == key and zone not in zones:
                zones.append(zone)
    order = {"DMA": 0, "DMA32": 1, "Normal": 2, "Movable": 3}
    return sorted(zones, key=lambda z: (order.get(z.split(":")[0], 9), z))


def _lines(runs: list[Run], metric: str, key: str) -> list:
    return [r.series.get((metric, key)) for r in runs]


def _moved(lines: list) -> bool:
    return any(line is not None and len(line[1]) and np.nanmax(np.abs(line[1])) > 0
               for line in lines)


def figure_panels(comparison: Comparison, thp_window: float = THP_WINDOW_S) -> list[Panel]:
    """avail[9] machine-wide and per zone, THP success, pageblocks by type, the largest
    slab caches and the cumulative reclaim and compaction counters that moved."""
    runs = comparison.runs
    panels = [Panel("avail[9], all zones", "free 2 MiB blocks", _lines(runs, "avail", "9"))]
    for zone in _zones(runs, "avail", "9"):
        panels.append(Panel(f"avail[9], zone {zone}", "free 2 MiB blocks",
                            _lines(runs, "avail", f"{zone}/9")))
    thp = _lines(runs, "thp_success_rate", "")
    if any(line is not None for line in thp):
        panels.append(Panel(f"THP success, attempts of the last {thp_window:g} s",
                            "share that succeeded", thp, (0.0, 1.05)))
    for kind in ("Unmovable", "Movable", "Reclaimable", "HighAtomic"):
        lines = _lines(runs, "pageblocks", kind)
        if any(line is not None for line in lines) and (kind != "HighAtomic" or _moved(lines)):
            panels.append(Panel(f"{kind} pageblocks, all zones", "pageblocks", lines))
    caches = [k for m, k in comparison.common if m == "slab_objects"]
    peak = {k: max(float(np.nanmax(r.series[("slab_objects", k)][1])) for r in runs)
            for k in caches}
    for cache in sorted(caches, key=lambda k: -peak[k])[:TOP_CACHES]:
        panels.append(Panel(f"slab cache {cache}", "objects in use",
                            _lines(runs, "slab_objects", cache)))
    counters = 0
    for name, unit in COUNTERS:
        lines = _lines(runs, "vmstat", name)
        if counters < MAX_COUNTERS and _moved(lines):
            panels.append(Panel(f"{name} (cumulative)", unit, lines))
            counters += 1
    return panels


def format_table(report: dict[str, Any]) -> str:
    """The headline series' errors, one line each, for the terminal."""
    ref = report["reference"]
    others = [r["label"] for r in report["runs"][1:]]
    low, high = report["time_range_s"]
    lines = [f"compared over t = {low:.4g}-{high:.4g} s (step {report['grid_step_s']:.3g} s), "
             f"against {ref}; {len(report['metrics'])} series in compare.json"]
    headline = [n for n in report["metrics"]
                if n in ("avail/9", "thp_success_rate", "pageblocks/Movable",
                         "pageblocks/Unmovable", "pageblocks/Reclaimable", "free_pages")
                or (n.startswith("avail/") and n.endswith("/9"))
                or n in ("vmstat/pgsteal_kswapd", "vmstat/compact_stall")]
    width = max([len(n) for n in headline] + [10])
    for label in others:
        lines.append(f"  {label} against {ref}:")
        lines.append(f"    {'series':<{width}}  {'ref mean':>10}  {'mae':>18}  "
                     f"{'mean error':>18}  {'end error':>18}")
        for name in headline:
            m = report["metrics"][name]
            err = m["runs"][label]

            def cell(value, relative) -> str:
                if value is None:
                    return f"{'-':>18}"
                text = _number(value)
                if relative is not None:  # a share, or a multiple of the reference
                    text += (f" ({relative * 100:.3g}%)" if relative < 10
                             else f" ({relative:.3g}x)")
                return f"{text:>18}"

            ref_mean = m["reference"]["mean"]
            lines.append(f"    {name:<{width}}  "
                         f"{_number(ref_mean) if ref_mean is not None else '-':>10}  "
                         f"{cell(err['mae'], err['mae_relative'])}  "
                         f"{cell(err['mean_error'], err['mean_relative'])}  "
                         f"{cell(err['end_error'], err['end_relative'])}")
    return "\n".join(lines) + "\n"


__all__ = ["compare", "load_run", "load_tolerances", "parse_tolerance", "format_table"]
