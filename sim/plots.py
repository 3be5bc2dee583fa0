"""Plots of a run directory, drawn from its files only (so old runs can be redrawn).

One house style: white background, light grid, the same colour per variant in every
figure, titles that say what is shown (the window, what a line and a band are), axes
with units. A line drawn over another gets dashes and markers, so that equal lines
stay visible. Each function takes the run directory and writes one PNG into it,
returning its path (or None when the run has no data for that figure).

The measured window: a run's ``measure_from`` (config.yaml) is where its summary's time
averages and THP success start; the availability plot starts there (before it memory is
still filling up), and the THP plot shades the warm-up. Without a warm-up, an
availability curve whose first samples dwarf the rest gets a symlog axis, and says so.

- ``availability.png``: order-N availability over time per variant, mean and a band
  (min..max) across seeds. The headline picture.
- ``buddyinfo_heatmap.png``: free blocks per order over time (log colour, one scale for
  every panel), per variant, its first seed.
- ``memmap.png``: the physical memory map at the start and the end: one cell per
  pageblock, coloured by migratetype, pale when free and deep when allocated; a black
  dot marks a pageblock holding slab pages.
- ``slab_occupancy.png``: occupancy of the slab caches with the most slab pages.
- ``thp_success.png``: the THP probe's success rate over its trailing window.
- ``compare.png`` (``fragsim compare``, sim/compare.py): runs side by side, one panel
  per quantity, one colour per run in every panel, on a shared time axis.
"""

from __future__ import annotations

import copy
import functools
import json
import math
import textwrap
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import yaml  # noqa: E402
from matplotlib.colors import LogNorm  # noqa: E402
from matplotlib.lines import Line2D  # noqa: E402

from sim.results import read_timeseries  # noqa: E402
from sim.stats import RATE_TRIALS, ci_band, mean_ci, minmax_band, rate_interval  # noqa: E402
from sim.units import format_quantity  # noqa: E402

PALETTE = ("#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2",
           "#7f7f7f")
MIGRATETYPE_COLOURS = {0: "#d62728", 1: "#2ca02c", 2: "#ff7f0e", 3: "#9467bd", 4: "#7f7f7f"}
MIGRATETYPE_LABELS = {0: "Unmovable", 1: "Movable", 2: "Reclaimable", 3: "HighAtomic",
                      4: "Isolate"}
DPI = 110
LINESTYLES = ("-", "--", "-.", ":")
MARKERS = ("o", "s", "^", "D", "v", "P", "X", "*")
TOP_CACHES = 6  # slab_occupancy.png shows the caches with the most slab pages


def _new_figure(width: float = 7.5, height: float = 4.2):
    fig, ax = plt.subplots(figsize=(width, height), dpi=DPI)
    _style(ax)
    return fig, ax


def _style(ax) -> None:
    ax.grid(True, color="#e6e6e6", linewidth=0.8)
    ax.set_axisbelow(True)
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)


def _line_style(i: int, n_points: int, n_lines: int = 2) -> dict:
    """Line i of ``n_lines`` that may coincide: the first solid; later ones, drawn on
    top, dashed and thinner with markers, staggered so that no two lines put a marker
    on the same sample."""
    if i == 0:
        return {"linestyle": "-", "linewidth": 2.0}
    step = max(n_lines, n_points // 8, 1)
    return {"linestyle": LINESTYLES[i % len(LINESTYLES)] if i % len(LINESTYLES) else "--",
            "linewidth": 1.4, "marker": MARKERS[(i - 1) % len(MARKERS)], "markersize": 4,
            "markevery": ((i * step // max(1, n_lines)) % step, step)}


def _time_axis(times: np.ndarray, clock: str = "simulated time") -> tuple[np.ndarray, str]:
    """Times in the unit that reads best: s, min or h."""
    span = float(times.max()) if len(times) else 0.0
    if span >= 3 * 3600:
        return times / 3600, f"{clock} (h)"
    if span >= 3 * 60:
        return times / 60, f"{clock} (min)"
    return times, f"{clock} (s)"


def _clock(run_dir: Path) -> str:
    """What a run's times are: simulated, or a record's wall time from its first sample."""
    return "time since the start" if _is_record(run_dir) else "simulated time"


def _is_record(run_dir: Path) -> bool:
    return _run_config(run_dir).get("kind") == "record"


def _time_scale(times: np.ndarray) -> float:
    """The divisor ``_time_axis`` uses for these times."""
    span = float(times.max()) if len(times) else 0.0
    return 3600.0 if span >= 3 * 3600 else 60.0 if span >= 3 * 60 else 1.0


def _save(fig, path: Path, tight: bool = True) -> Path:
    if tight:
        fig.tight_layout()
    tmp = path.with_name(f".{path.name}.tmp.png")
    fig.savefig(tmp, dpi=DPI)
    plt.close(fig)
    tmp.replace(path)
    return path


def _by_variant(runs: dict) -> dict[str, list[dict]]:
    variants: dict[str, list[dict]] = {}
    for (variant, _seed), series in sorted(runs.items()):
        variants.setdefault(variant, []).append(series)
    return variants


def _seeds_of(runs: dict) -> dict[str, list[int]]:
    seeds: dict[str, list[int]] = {}
    for variant, seed in sorted(runs):
        seeds.setdefault(variant, []).append(seed)
    return seeds


def _band(per_seed: list[tuple[np.ndarray, np.ndarray]]):
    """Mean, min and max across seeds on the first seed's time axis."""
    return minmax_band(per_seed)


def _runs(run_dir: Path, runs: dict | None) -> dict:
    return read_timeseries(run_dir / "timeseries.csv") if runs is None else runs


def _run_config(run_dir: Path) -> dict:
    """config.yaml of a run ({} when absent or unreadable: plots still draw), a copy of
    its one parse: the plots of a run read it about 25 times, and the pure-Python YAML
    parser took 50 ms each for a sweep's config."""
    path = run_dir / "config.yaml"
    try:
        st = path.stat()
    except OSError:
        return {}
    return copy.deepcopy(_parse_run_config(str(path), st.st_mtime_ns, st.st_size))


@functools.lru_cache(maxsize=8)
def _parse_run_config(path: str, _mtime_ns: int, _size: int) -> dict:
    """The parse of a config.yaml, by its path and its file's time and size (so that a
    run written again is read again), with libyaml's parser when PyYAML has it."""
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    try:
        with open(path, encoding="utf-8") as f:
            data = yaml.load(f.read(), Loader=loader)  # noqa: S506 - a safe loader
    except (OSError, UnicodeDecodeError, yaml.YAMLError):
        return {}
    return data if isinstance(data, dict) else {}


def _variant_configs(config: dict) -> dict[str, dict]:
    variants = config.get("variants")
    if isinstance(variants, dict):
        return {str(k): v for k, v in variants.items() if isinstance(v, dict)}
    return {}


def _measure_from(run_dir: Path) -> float:
    """The run's warm-up (the largest of its variants' ``measure_from``), 0 if none."""
    starts = []
    for config in _variant_configs(_run_config(run_dir)).values():
        start = float(config.get("measure_from") or 0.0)
        duration = float(config.get("duration") or math.inf)
        starts.append(start if start < duration else 0.0)  # as summarize measures
    return max(starts, default=0.0)


def _seed_text(seeds: list[int]) -> str:
    n = len(seeds)
    return f"seed {seeds[0]}" if n == 1 else f"{n} seeds"


def _variant_label(variant: str, seeds: list[int]) -> str:
    if variant == "real" and seeds == [0]:  # a record's (sim/record.py)
        return "the real kernel"
    return variant if variant == "replay" else f"{variant} ({_seed_text(seeds)})"


def _spread_text(seeds: dict[str, list[int]]) -> str:
    """What a figure's line and band are."""
    if all(len(s) == 1 for s in seeds.values()):
        return "one run per variant" if len(seeds) > 1 else "one run"
    return "line: mean across seeds, band: min..max across seeds"


def _spike_dominates(times: np.ndarray, values: np.ndarray) -> bool:
    """The run's peak is over 4x anything in its second half: the start (memory still
    empty) would flatten the rest on a linear axis."""
    finite = np.isfinite(values)
    times, values = times[finite], values[finite]
    if len(times) < 10:
        return False
    late = values[times >= times[0] + 0.5 * (times[-1] - times[0])]
    return bool(len(late)) and float(values.max()) > 4 * max(1.0, float(late.max()))


def _symlog(ax) -> None:
    """A symlog y axis (linear below 1) ticked at 0, 1, 2, 5, 10, 20, 50... in plain
    numbers."""
    from matplotlib.ticker import FuncFormatter, SymmetricalLogLocator

    ax.set_yscale("symlog", linthresh=1.0)
    ax.yaxis.set_major_locator(SymmetricalLogLocator(base=10, linthresh=1.0,
                                                     subs=(1.0, 2.0, 5.0)))
    ax.yaxis.set_major_formatter(FuncFormatter(lambda value, _pos: f"{value:g}"))
    ax.yaxis.set_minor_locator(matplotlib.ticker.NullLocator())
    ax.set_ylim(bottom=0)


def plot_availability(run_dir: Path, runs: dict | None = None, order: int = 9) -> Path | None:
    runs = _runs(run_dir, runs)
    variants = _by_variant(runs)
    seeds = _seeds_of(runs)
    key = ("avail", str(order))
    if not any(key in s for v in variants.values() for s in v):
        return None
    start = _measure_from(run_dir)
    fig, ax = _new_figure()
    spike = False
    xlabel = f"{_clock(run_dir)} (s)"
    for i, (variant, per_variant) in enumerate(variants.items()):
        per_seed = [s[key] for s in per_variant if key in s]
        if not per_seed:
            continue
        times, mean, low, high = _band(per_seed)
        if start > 0:  # the measured window only
            keep = times >= start - 1e-9
            times, mean, low, high = times[keep], mean[keep], low[keep], high[keep]
        else:
            spike |= _spike_dominates(times, mean)
        x, xlabel = _time_axis(times, _clock(run_dir))
        colour = PALETTE[i % len(PALETTE)]
        ax.plot(x, mean, color=colour, label=_variant_label(variant, seeds[variant]),
                **_line_style(i, len(x), len(variants)))
        if len(per_seed) > 1:
            ax.fill_between(x, low, high, color=colour, alpha=0.15, linewidth=0)
    ax.set_xlabel(xlabel)
    size = (4 << order) // 1024
    unit = f"{size} MiB" if size >= 1 else f"{4 << order} KiB"
    ylabel = f"free order-{order} blocks, avail[{order}]"
    if spike:
        _symlog(ax)
        ylabel += "\n(symlog scale: linear below 1)"
    else:
        ax.set_ylim(bottom=0)
    ax.set_ylabel(ylabel)
    window = (f"from t = {start:g} s (measure_from; the warm-up is not shown)" if start > 0
              else "the whole run")
    ax.set_title(f"Order-{order} ({unit}) availability avail[{order}], {window}\n"
                 f"{_spread_text(seeds)}", fontsize="medium")
    ax.legend(frameon=False)
    return _save(fig, run_dir / "availability.png")


def plot_buddyinfo_heatmap(run_dir: Path, runs: dict | None = None) -> Path | None:
    runs = _runs(run_dir, runs)
    variants = _by_variant(runs)
    seeds = _seeds_of(runs)
    # The machine-wide free counts (key: the order; a zone's are "<Zone>/<order>").
    firsts = {v: per[0] for v, per in variants.items()
              if any(m == "nr_free" and k.isdigit() for m, k in per[0])}
    if not firsts:
        return None
    grids = {}
    for variant, series in firsts.items():
        orders = sorted(int(k) for m, k in series if m == "nr_free" and k.isdigit())
        times = series[("nr_free", str(orders[0]))][0]
        grids[variant] = (orders, times,
                          np.vstack([series[("nr_free", str(o))][1] for o in orders]))
    # One colour scale for every panel, so that the same colour is the same count.
    top = max(1.0, max(float(np.nanmax(g)) for _, _, g in grids.values()))
    norm = LogNorm(vmin=0.5, vmax=top)
    start = _measure_from(run_dir)
    fig, axes = plt.subplots(len(firsts), 1, figsize=(7.8, 2.3 * len(firsts) + 0.9), dpi=DPI,
                             squeeze=False, sharex=True, layout="constrained")
    mesh = None
    for ax, (variant, (orders, times, grid)) in zip(axes[:, 0], grids.items(), strict=True):
        x, xlabel = _time_axis(times, _clock(run_dir))
        mesh = ax.pcolormesh(x, orders, np.maximum(grid, 0.5), shading="nearest", norm=norm,
                             cmap="viridis")
        if start > 0:
            ax.axvline(start / _time_scale(times), color="white", linestyle="--",
                       linewidth=1.2)
        ax.set_ylabel("order")
        ax.set_yticks(orders)
        ax.set_title(variant if variant == "replay" else f"{variant}, seed {seeds[variant][0]}",
                     fontsize="medium")
    axes[-1, 0].set_xlabel(xlabel)
    fig.colorbar(mesh, ax=list(axes[:, 0]), label="free blocks (log scale; 0 drawn as 0.5)")
    mark = f"; dashed: measure_from = {start:g} s" if start > 0 else ""
    fig.suptitle(f"Free blocks per order over time (buddyinfo){mark}", fontsize="medium")
    return _save(fig, run_dir / "buddyinfo_heatmap.png", tight=False)


def _memmap_grid(n: int) -> tuple[int, int]:
    """(rows, columns) of n pageblocks, twice as wide as high."""
    width = max(1, int(math.ceil(math.sqrt(n * 2))))
    return int(math.ceil(n / width)), width


def _memmap_image(data: dict) -> np.ndarray:
    """RGB per pageblock: the migratetype's hue, pale when free, deep when allocated."""
    mt = data["migratetype"]
    per_block = float(data["pageblock_nr_pages"])
    used = 1.0 - (data["free_pages"] + data["pcp_pages"]) / per_block
    rows, width = _memmap_grid(len(mt))
    image = np.ones((rows * width, 3))
    for value, colour in MIGRATETYPE_COLOURS.items():
        rgb = np.array(matplotlib.colors.to_rgb(colour))
        sel = np.flatnonzero(mt == value)
        strength = 0.15 + 0.85 * used[sel, None]  # empty blocks pale, full blocks deep
        image[sel] = 1.0 - (1.0 - rgb) * strength
    image = np.clip(image, 0, 1)
    return image.reshape(rows, width, 3)


def plot_memmap(run_dir: Path, runs: dict | None = None) -> Path | None:
    folder = run_dir / "memmap"
    ends = sorted(folder.glob("end*.npz")) if folder.is_dir() else []
    start = folder / "start.npz"
    config = _run_config(run_dir)
    seed_list = config.get("seeds")
    seed = f"seed {seed_list[0]}" if isinstance(seed_list, list) and seed_list else None
    variant_names = list(_variant_configs(config))
    files = ([("start", start)] if start.exists() else []) + [
        ("end" if p.stem == "end" else f"end, {p.stem[4:]}", p) for p in ends]
    if not files:
        return None
    maps = []
    for label, path in files:
        with np.load(path) as npz:
            maps.append((label, {k: npz[k] for k in npz.files}))
    rows, width = _memmap_grid(len(maps[0][1]["migratetype"]))
    panel_w = 4.4 if len(maps) > 1 else 6.0
    panel_h = panel_w * rows / width
    fig, axes = plt.subplots(1, len(maps), figsize=(panel_w * len(maps) + 0.4, panel_h + 1.2),
                             dpi=DPI, squeeze=False, layout="constrained")
    present = set()
    for ax, (label, data) in zip(axes[0], maps, strict=True):
        present |= {int(v) for v in np.unique(data["migratetype"])}
        ax.imshow(_memmap_image(data), interpolation="nearest", aspect="equal")
        slab = np.flatnonzero(data["slab_pages"] > 0)
        cell = panel_w * 72 / width  # points per pageblock
        if len(slab):
            ax.scatter(slab % width, slab // width, s=max(1.5, 0.3 * cell) ** 2, c="black",
                       marker="o", linewidths=0)
        ax.set_xticks([])
        ax.set_yticks([])
        when = f": {data['title']}" if "title" in data else ""
        if label == "start" and variant_names and len(ends) > 1:
            label = f"start, {variant_names[0]}"
        title = f"{label}{when}" + (f" ({seed})" if seed else "")
        ax.set_title(title, fontsize="medium")
    handles = [plt.Rectangle((0, 0), 1, 1, color=MIGRATETYPE_COLOURS[m])
               for m in sorted(present) if m in MIGRATETYPE_COLOURS]
    labels = [MIGRATETYPE_LABELS[m] for m in sorted(present) if m in MIGRATETYPE_COLOURS]
    handles.append(Line2D([], [], marker="o", color="black", linestyle="", markersize=5))
    labels.append("holds slab pages")
    fig.legend(handles, labels, loc="outside lower center", ncol=len(labels), frameon=False,
               fontsize="small")
    nr_pages = int(maps[0][1]["pageblock_nr_pages"])
    fig.suptitle(f"Physical memory map: one cell per pageblock ({nr_pages * 4 // 1024} MiB), "
                 "row by row from pfn 0; pale = free, deep = allocated", fontsize="medium")
    return _save(fig, run_dir / "memmap.png", tight=False)


def _top_keys(variants: dict[str, list[dict]], metric: str, rank_metric: str,
              top: int) -> tuple[list[str], int]:
    """The keys of ``metric`` with the largest peak of ``rank_metric`` (slab pages), at
    most ``top`` of them, and how many there are in all."""
    keys = sorted({k for per in variants.values() for s in per for m, k in s if m == metric})
    if len(keys) <= top:
        return keys, len(keys)
    peak = {}
    for key in keys:
        values = [float(np.nanmax(s[(rank_metric, key)][1])) for per in variants.values()
                  for s in per if (rank_metric, key) in s and np.isfinite(
                      s[(rank_metric, key)][1]).any()]
        peak[key] = max(values, default=0.0)
    return sorted(keys, key=lambda k: -peak[k])[:top], len(keys)


def plot_slab_occupancy(run_dir: Path, runs: dict | None = None) -> Path | None:
    """Occupancy of the caches with the most slab pages: one panel per cache when
    variants compare, else one line per cache."""
    runs = _runs(run_dir, runs)
    variants = _by_variant(runs)
    seeds = _seeds_of(runs)
    keys, total = _top_keys(variants, "slab_occupancy", "slab_pages", TOP_CACHES)
    if not keys:
        return None
    panels = len(keys) if len(variants) > 1 else 1
    cols = min(3, panels)
    rows = int(math.ceil(panels / cols))
    fig, axes = plt.subplots(rows, cols, figsize=(4.0 * cols + 1.2 if cols > 1 else 7.5,
                                                 3.0 * rows + 1.0), dpi=DPI, squeeze=False,
                             sharex=True, sharey=True, layout="constrained")
    xlabel = f"{_clock(run_dir)} (s)"
    for j, key in enumerate(keys):
        ax = axes.flat[j if panels > 1 else 0]
        _style(ax)
        for i, (variant, per_variant) in enumerate(variants.items()):
            per_seed = [s[("slab_occupancy", key)] for s in per_variant
                        if ("slab_occupancy", key) in s]
            if not per_seed:
                continue
            times, mean, low, high = _band(per_seed)
            x, xlabel = _time_axis(times, _clock(run_dir))
            line = i if panels > 1 else j
            colour = PALETTE[line % len(PALETTE)]
            label = _variant_label(variant, seeds[variant]) if panels > 1 else key
            ax.plot(x, mean, color=colour, label=label,
                    **_line_style(line, len(x), len(variants) if panels > 1 else len(keys)))
            if len(per_seed) > 1:
                ax.fill_between(x, low, high, color=colour, alpha=0.15, linewidth=0)
        if panels > 1:
            ax.set_title(key, fontsize="medium")
        ax.set_ylim(0, 1.05)
    for ax in axes.flat[panels:]:
        ax.set_visible(False)
    for ax in axes[-1]:
        ax.set_xlabel(xlabel)
    for ax in axes[:, 0]:
        ax.set_ylabel("active / total objects")
    which = (f"the {len(keys)} caches with the most slab pages, of {total}" if total > len(keys)
             else f"{total} cache{'s' * (total > 1)}")
    handles, labels = axes.flat[0].get_legend_handles_labels()
    if panels > 1:
        fig.legend(handles, labels, loc="outside lower center", ncol=len(labels),
                   frameon=False, fontsize="small")
    else:
        axes[0, 0].legend(frameon=False, fontsize="small", ncol=2 if len(keys) > 3 else 1)
    fig.suptitle(f"Slab occupancy ({which})\n{_spread_text(seeds)}", fontsize="medium")
    return _save(fig, run_dir / "slab_occupancy.png", tight=False)


def _thp_window(run_dir: Path) -> str:
    """The THP probe's trailing window in words: "the last 30 attempts (7.5 s)"; a
    record's rate is of every THP fault between two samples."""
    config = _run_config(run_dir)
    if config.get("kind") == "record":
        every = config.get("every")
        return "each sample interval" + (f" ({float(every):g} s)" if every else "")
    for config in _variant_configs(_run_config(run_dir)).values():
        for spec in config.get("workloads") or []:
            if isinstance(spec, dict) and spec.get("kind") == "thp_probe":
                window, interval = spec.get("window", 30), spec.get("interval")
                span = f" ({window * float(interval):g} s)" if interval else ""
                return f"the last {window} attempts{span}"
    return "a trailing window of attempts"


def _summary_rates(run_dir: Path, key: str) -> dict[str, tuple[float, float, float]]:
    """{variant: (mean, low, high)} of a rate from summary.json (NaN bounds when absent)."""
    try:
        summary = json.loads((run_dir / "summary.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    out = {}
    for variant, data in (summary.get("variants") or {}).items():
        mean = (data.get("mean") or {}).get(key)
        if mean is None:
            continue
        low, high = (data.get("interval95") or {}).get(key, (math.nan, math.nan))
        if low is None or high is None:
            low = high = math.nan
        out[variant] = (mean, low, high)
    return out


def plot_thp_success(run_dir: Path, runs: dict | None = None) -> Path | None:
    runs = _runs(run_dir, runs)
    variants = _by_variant(runs)
    seeds = _seeds_of(runs)
    key = ("thp_success_rate", "")
    if not any(key in s for per in variants.values() for s in per):
        return None
    start = _measure_from(run_dir)
    measured = _summary_rates(run_dir, "thp_success_rate")
    fig, ax = _new_figure(7.8, 4.6)
    end = 0.0
    scale = 1.0
    for i, (variant, per_variant) in enumerate(variants.items()):
        per_seed = [s[key] for s in per_variant if key in s]
        if not per_seed:
            continue
        times, mean, low, high = _band(per_seed)
        x, xlabel = _time_axis(times, _clock(run_dir))
        scale = _time_scale(times)
        end = max(end, float(x[-1]))
        colour = PALETTE[i % len(PALETTE)]
        ax.plot(x, mean, color=colour, label=_variant_label(variant, seeds[variant]),
                **_line_style(i, len(x), len(variants)))
        if len(per_seed) > 1:
            ax.fill_between(x, low, high, color=colour, alpha=0.13, linewidth=0)
        ax.set_xlabel(xlabel)
        if variant in measured:  # the summary's figure: every attempt from measure_from on
            rate, lo, hi = measured[variant]
            ci = f" (95 % CI {lo:.2f}-{hi:.2f})" if lo == lo else ""
            ax.hlines(rate, start / scale, end, color=colour, linestyle=":", linewidth=1.6,
                      label=f"{variant}: all attempts from t = {start:g} s: {rate:.2f}{ci}")
    if start > 0:
        ax.axvspan(0, start / scale, color="#eeeeee", zorder=0, linewidth=0)
        ax.text(start / scale / 2, 1.0, "warm-up (not in the summary)", ha="center",
                va="bottom", fontsize="small", color="#666666",
                transform=ax.get_xaxis_transform())
    ax.set_ylim(0, 1.05)
    ax.set_ylabel("success rate")
    what = ("THP faults of every process: the share that succeeded" if _is_record(run_dir)
            else "THP probe: share of huge-page attempts that succeeded")
    ax.set_title(f"{what}, over {_thp_window(run_dir)}\n{_spread_text(seeds)}; dotted: the "
                 "summary's rate",
                 fontsize="medium", pad=16 if start > 0 else 6)
    ax.legend(frameon=True, framealpha=0.85, edgecolor="none", fontsize="small", loc="best")
    return _save(fig, run_dir / "thp_success.png")


def plot_run(run_dir: str | Path) -> list[Path]:
    """Every figure a run directory has data for."""
    run_dir = Path(run_dir)
    runs = read_timeseries(run_dir / "timeseries.csv")
    drawn = []
    for plot in (plot_availability, plot_buddyinfo_heatmap, plot_memmap, plot_slab_occupancy,
                 plot_thp_success):
        path = plot(run_dir, runs)
        if path is not None:
            drawn.append(path)
    return drawn


# ------------------------------------------------------------------ sweeps
#
# A sweep directory (sim/sweep.py) holds sweep.json (factors, points, runs), sweep.csv
# (one row per point x seed x variant) and points/<run>/timeseries.csv. The figures:
#
# - ``sweep_<metric>.png``: a summary metric vs the first numeric swept parameter, one
#   line per policy (the other factors and the variants), mean and 95 % CI over seeds;
# - ``heatmap_<metric>.png``: the mean over a two-parameter grid, one panel per variant;
# - ``timeseries_<metric>.png``: a metric over time, one panel per policy, one line per
#   value of the swept parameter, mean and a 95 % confidence band across seeds.

SWEEP_METRIC_LABELS = {
    "thp_success_rate": "THP probe success rate",
    "avail9_time_avg": "time-averaged avail[9] (free 2 MiB blocks)",
    "avail.9": "avail[9] at the end (free 2 MiB blocks)",
    "evictions.slab_objects": "slab objects evicted",
    "evictions.page_cache_pages": "page-cache pages evicted",
    "defrag.pages_returned": "pages the defragmenter's passes returned",
    "defrag.pages_returned_total": "pages the defragmenter returned (passes + later)",
    "defrag.objects_moved": "objects the defragmenter moved",
    "defrag.objects_evicted": "objects the defragmenter evicted",
    "defrag.slabs_freed": "slabs the defragmenter freed",
    "defrag.cpu_time": "defragmenter CPU time, simulated (s)",
    "compaction.migrated": "pages migrated by compaction",
    "thp_attempts": "THP probe attempts",
    "buddy.extfrag_claim": "fallback claims of foreign pageblocks",
    "buddy.extfrag_steal": "fallback steals from foreign pageblocks",
    "engine.alloc_failures": "allocation failures",
    "wall_s": "wall time per run (s)",
}
RATE_METRICS = ("thp_success_rate",)
# (metric, key) in timeseries.csv, file name, title, axis label
SWEEP_TIMESERIES = ((("avail", "9"), "avail9",
                     "order-9 (2 MiB) availability avail[9]", "avail[9] (free 2 MiB blocks)"),
                    (("thp_success_rate", ""), "thp_success_rate",
                     "THP probe success rate (trailing window)", "THP success rate"))
MAX_PANELS = 12
# Swept keys in words, with their units (a factor's name in sweep.json is its key).
SWEEP_KEY_LABELS = {
    "defrag.used_ratio": "defrag candidate threshold used_ratio (% of a slab in use)",
    "defrag.enabled": "slab defragmentation",
    "defrag.max_partial": "defrag max_partial (slabs)",
    "machine.memory": "memory",
    "machine.cpus": "CPUs",
    "buddy.pcp": "per-CPU page lists",
    "buddy.grouping_by_mobility": "grouping by mobility",
    "buddy.watermark_scale_factor": "watermark_scale_factor (1/10000 of memory)",
    "buddy.watermark_boost_factor": "watermark_boost_factor (1/10000 of the high mark)",
    "compaction.enabled": "compaction",
    "compaction.proactiveness": "compaction proactiveness (%)",
    "compaction.extfrag_threshold": "extfrag_threshold (of 1000)",
    "slab.vfs_cache_pressure": "vfs_cache_pressure (%)",
}
# Keys whose values are percentages (0..100): never on a log axis.
PERCENT_KEYS = ("defrag.used_ratio", "compaction.proactiveness", "slab.vfs_cache_pressure")


CACHE_FIELD_LABELS = {"num_slabs": "slabs", "active_objs": "active objects",
                      "pages": "slab pages", "slabs_allocated": "slabs allocated",
                      "slabs_freed": "slabs freed"}


def _key_label(key: str) -> str:
    """A swept key in words: ``defrag.used_ratio`` -> "defrag candidate threshold
    used_ratio (% of a slab in use)"; ``caches.dentry.mobility`` -> "dentry mobility";
    ``workloads.0.unmovable_share`` -> "workload 0 unmovable share"."""
    if key in SWEEP_KEY_LABELS:
        return SWEEP_KEY_LABELS[key]
    parts = key.split(".")
    if len(parts) == 3 and parts[0] == "caches":
        return f"{parts[1]} {parts[2].replace('_', ' ')}"
    if len(parts) == 3 and parts[0] == "workloads" and parts[1].isdigit():
        return f"workload {parts[1]} {parts[2].replace('_', ' ')}"
    if len(parts) == 2:
        return f"{parts[0]} {parts[1].replace('_', ' ')}"
    return key


def _metric_label(metric: str) -> str:
    """A summary field as a person would name it: ``caches.dentry.num_slabs`` -> "dentry
    slabs at the end"; other dotted names in words ("defrag: slabs considered")."""
    if metric in SWEEP_METRIC_LABELS:
        return SWEEP_METRIC_LABELS[metric]
    parts = metric.split(".")
    if len(parts) == 3 and parts[0] == "caches" and parts[2] in CACHE_FIELD_LABELS:
        return f"{parts[1]} {CACHE_FIELD_LABELS[parts[2]]} at the end"
    if len(parts) == 5 and parts[0] == "workloads" and parts[2] == "runs":
        field = parts[4]
        for when in ("after", "before"):
            if field.endswith(f"_{when}"):
                what = field[: -len(when) - 1].replace("avail", "avail[", 1) + "]" \
                    if field.startswith("avail") else field[: -len(when) - 1]
                run = f" (run {int(parts[3]) + 1})" if parts[3] != "0" else ""
                return f"{what} {when} {parts[1].rsplit('-', 1)[0]}{run}"
    if len(parts) == 2 and parts[0] in ("defrag", "compaction", "buddy", "engine", "shrinker",
                                        "evictions"):
        return f"{parts[0]}: {parts[1].replace('_', ' ')}"
    return metric


def _sentence(label: str) -> str:
    """Capitalised for a title, unless it starts with a key or metric name."""
    first = label.split(" ", 1)[0]
    return label if any(c in first for c in "._[") else label[:1].upper() + label[1:]


def _slug(text: str) -> str:
    return "".join(c if c.isalnum() else "_" for c in text).strip("_")


def _value_label(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def _is_number(value) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


class _SweepLayout:
    """Which swept factor goes on the x axis and which make the lines (the "policies").

    x is the first factor that varies and has numeric values (a single key); every other
    varying factor and the variants (when there are several) make one line or panel each.
    """

    def __init__(self, manifest: dict) -> None:
        self.points = manifest["points"]
        self.variants = list(manifest.get("variants") or ["default"])
        self.factors = []
        for factor in manifest.get("factors", []):
            keys = factor["keys"]
            values, labels = {}, {}
            for point in self.points:
                resolved = tuple(point["resolved"].get(k, point["params"].get(k)) for k in keys)
                given = [point["params"].get(k) for k in keys]
                texts = list(dict.fromkeys(_value_label(g) for g in given))
                values[point["id"]] = resolved
                labels[resolved] = " / ".join(texts)
            lasts = {k.split(".")[-1] for k in keys}
            short = (f"cache {lasts.pop()}" if len(lasts) == 1 and len(keys) > 1
                     else _key_label(keys[0]) if len(keys) == 1 else factor["name"])
            self.factors.append({"name": short, "keys": keys, "values": values,
                                 "percent": len(keys) == 1 and keys[0] in PERCENT_KEYS,
                                 "labels": labels,
                                 "distinct": list(dict.fromkeys(values.values()))})
        varying = [f for f in self.factors if len(f["distinct"]) > 1]
        numeric = [f for f in varying if len(f["keys"]) == 1
                   and all(_is_number(v[0]) for v in f["distinct"])]
        self.x = numeric[0] if numeric else (varying[0] if varying else None)
        self.others = [f for f in varying if f is not self.x]
        self.numeric_x = bool(numeric) and self.x is numeric[0]
        if self.x is not None and self.numeric_x:
            self.x["distinct"].sort(key=lambda v: v[0])

    def series_of(self, point_id: str, variant: str) -> tuple:
        key = tuple(f["values"][point_id] for f in self.others)
        return key + ((variant,) if len(self.variants) > 1 else ())

    def series_label(self, key: tuple, names: bool = True) -> str:
        """``mobility=move, defrag-on``; without the names when a legend title gives them."""
        parts = [f"{f['name']}={f['labels'][v]}" if names else f["labels"][v]
                 for f, v in zip(self.others, key, strict=False)]
        if len(self.variants) > 1:
            parts.append(str(key[-1]))
        return ", ".join(parts) or "all points"

    def x_of(self, point_id: str):
        return self.x["values"][point_id] if self.x is not None else None


def _mean_ci(values: list[float]) -> tuple[float, float]:
    return mean_ci(values)


def _metric_interval(metric: str, values: list[float],
                     trials: list[float] | None = None) -> tuple[float, float, float]:
    """(mean, below, above): the mean and the distances to its 95 % interval's ends
    (0 without an interval); a rate's interval is Wilson's, inside [0, 1]."""
    if metric in RATE_METRICS:
        mean, low, high = rate_interval(values, trials)
        if low != low:
            return mean, 0.0, 0.0
        return mean, max(0.0, mean - low), max(0.0, high - mean)
    mean, ci = mean_ci(values)
    ci = 0.0 if ci != ci else ci
    return mean, ci, ci


def _sweep_inputs(sweep_dir: Path) -> tuple[dict, list[dict]]:
    import csv
    import json

    manifest = json.loads((sweep_dir / "sweep.json").read_text(encoding="utf-8"))
    with open(sweep_dir / "sweep.csv", newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    return manifest, rows


def _cells(rows: list[dict], metric: str) -> dict[tuple[str, str], list[float]]:
    """{(point, variant): the metric's values over seeds}."""
    cells: dict[tuple[str, str], list[float]] = {}
    for row in rows:
        text = row.get(metric, "")
        try:
            value = float(text)
        except ValueError:
            continue
        cells.setdefault((row["point"], row["variant"]), []).append(value)
    return cells


def _trials(rows: list[dict], metric: str) -> dict[tuple[str, str], list[float]]:
    """{(point, variant): a rate's trials per seed} (``thp_attempts`` for THP success),
    where every row of the cell has both; {} for other metrics."""
    trial_key = RATE_TRIALS.get(metric)
    if metric not in RATE_METRICS or trial_key is None:
        return {}
    out: dict[tuple[str, str], list[float]] = {}
    broken = set()
    for row in rows:
        cell = (row["point"], row["variant"])
        try:
            value, n = float(row.get(metric, "")), float(row.get(trial_key, ""))
        except ValueError:
            broken.add(cell)
            continue
        if value == value:
            out.setdefault(cell, []).append(n)
    return {cell: n for cell, n in out.items() if cell not in broken}


def _x_axis(ax, layout: _SweepLayout, positions: dict) -> None:
    """Ticks at the swept values, labelled as the YAML wrote them (256MiB, not bytes)."""
    x = layout.x
    ticks = [positions[v] for v in x["distinct"]]
    labels = [x["labels"][v] for v in x["distinct"]]
    log = _log_x(layout, ticks)
    if log:
        ax.set_xscale("log", base=2)
    if layout.numeric_x:
        ax.minorticks_off()
    if len(ticks) <= 14:
        ax.set_xticks(ticks)
        ax.set_xticklabels(labels, rotation=30 if max(len(t) for t in labels) > 6 else 0)
    ax.set_xlabel(x["name"] + ("" if layout.numeric_x else " (swept)")
                  + (" (log scale)" if log else ""))


def _log_x(layout: _SweepLayout, ticks: list[float]) -> bool:
    """A numeric x spanning 8x or more goes on a log axis, unless it is a percentage."""
    if not layout.numeric_x or layout.x is None or layout.x.get("percent"):
        return False
    low, high = min(ticks), max(ticks)
    return low > 0 and high / low >= 8


def plot_sweep_metric(sweep_dir: Path, manifest: dict, rows: list[dict],
                      metric: str) -> Path | None:
    """A summary metric vs the swept parameter, one line per policy, 95 % CI bars."""
    layout = _SweepLayout(manifest)
    cells = _cells(rows, metric)
    if not any(v == v for values in cells.values() for v in values):
        return None
    trials = _trials(rows, metric)
    fig, ax = _new_figure(8.2, 4.6)
    if layout.x is None:  # one point: the variants side by side
        xs = list(range(len(layout.variants)))
        for i, variant in enumerate(layout.variants):
            cell = next(((p, var) for (p, var) in cells if var == variant), None)
            values = cells.get(cell, []) if cell else []
            mean, below, above = _metric_interval(metric, values, trials.get(cell))
            ax.errorbar([xs[i]], [mean], yerr=[[below], [above]], fmt="o", ms=8,
                        capsize=5, color=PALETTE[i % len(PALETTE)])
        ax.set_xticks(xs)
        ax.set_xticklabels(layout.variants)
        ax.set_xlabel("variant")
    else:
        positions = ({v: v[0] for v in layout.x["distinct"]} if layout.numeric_x
                     else {v: float(i) for i, v in enumerate(layout.x["distinct"])})
        series: dict[tuple, list[tuple]] = {}
        for (point, variant), values in cells.items():
            key = layout.series_of(point, variant)
            series.setdefault(key, []).append((positions[layout.x_of(point)], values,
                                               trials.get((point, variant))))
        n_series = len(series)
        # Spread the lines a little so that equal means do not hide each other's bars:
        # a share of the smallest gap between swept values (a factor on a log axis).
        ticks = sorted(positions.values())
        log_x = _log_x(layout, ticks)
        scaled = [math.log2(t) for t in ticks] if log_x else ticks
        gaps = [b - a for a, b in zip(scaled, scaled[1:], strict=False) if b > a]
        dodge = min(gaps or [1.0]) * min(0.06, 0.3 / max(1, n_series))
        for i, (key, entries) in enumerate(sorted(series.items(), key=lambda kv: str(kv[0]))):
            entries.sort(key=lambda e: e[0])
            offset = (i - (n_series - 1) / 2) * dodge
            xs = [x * 2 ** offset if log_x else x + offset for x, _, _ in entries]
            stats = [_metric_interval(metric, values, n) for _, values, n in entries]
            means = [m for m, _, _ in stats]
            errors = [[b for _, b, _ in stats], [a for _, _, a in stats]]
            colour = PALETTE[i % len(PALETTE)]
            ax.errorbar(xs, means, yerr=errors, color=colour, marker=MARKERS[i % len(MARKERS)],
                        ms=5, linewidth=1.8, linestyle=LINESTYLES[i % len(LINESTYLES)],
                        capsize=4, elinewidth=1.1, label=layout.series_label(key, names=False))
        _x_axis(ax, layout, positions)
        if n_series > 1:
            names = [f["name"] for f in layout.others] + (
                ["variant"] if len(layout.variants) > 1 else [])
            ax.legend(frameon=False, fontsize="small", title=", ".join(names),
                      title_fontsize="small")
    seeds = manifest.get("seeds", 1)
    label = _metric_label(metric)
    ax.set_ylabel(label)
    what = f"vs {layout.x['name']}" if layout.x is not None else "per variant"
    band = f"mean and 95 % CI over {seeds} seeds" if seeds > 1 else "one seed"
    if metric in RATE_METRICS and seeds > 1:
        band = f"mean and 95 % Wilson interval over {seeds} seeds"
    ax.set_title(f"{_sentence(label)} {what}\n({band})", fontsize="medium")
    if metric in RATE_METRICS:
        ax.set_ylim(-0.03, 1.05)
    elif all(v >= 0 for values in cells.values() for v in values if v == v):
        ax.set_ylim(bottom=0)  # a count: a t interval reaching below 0 is cut at 0
    return _save(fig, sweep_dir / f"sweep_{_slug(metric)}.png")


def plot_sweep_heatmap(sweep_dir: Path, manifest: dict, rows: list[dict],
                       metric: str) -> Path | None:
    """The metric's mean over a two-parameter grid, one panel per variant."""
    layout = _SweepLayout(manifest)
    if layout.x is None or len(layout.others) != 1:
        return None
    cells = _cells(rows, metric)
    if not any(v == v for values in cells.values() for v in values):
        return None
    xf, yf = layout.x, layout.others[0]
    xs, ys = xf["distinct"], yf["distinct"]
    grids = {}
    for variant in layout.variants:
        grid = np.full((len(ys), len(xs)), np.nan)
        for point in layout.points:
            values = cells.get((point["id"], variant))
            if values:
                grid[ys.index(yf["values"][point["id"]]),
                     xs.index(xf["values"][point["id"]])] = _mean_ci(values)[0]
        grids[variant] = grid
    finite = np.concatenate([g[np.isfinite(g)] for g in grids.values()])
    if not len(finite):
        return None
    vmin, vmax = float(finite.min()), float(finite.max())
    note = ""
    if metric in RATE_METRICS:
        vmin, vmax = 0.0, 1.0
    elif vmax - vmin <= 0.01 * max(abs(vmin), abs(vmax)):
        # Differences under 1 % would fill the whole colour scale: widen it (from 0 for
        # a count) and say so, rather than paint noise as contrast.
        spread = 100 * (vmax - vmin) / max(abs(vmin), abs(vmax)) if vmax != vmin else 0.0
        note = (f"\n(every cell within {spread:.2g} % of the others: the colour scale is not "
                "stretched over that range)")
        if vmin >= 0:
            vmin, vmax = 0.0, max(vmax, 1e-9) * 1.05
        else:
            pad = max(abs(vmin), abs(vmax)) * 0.05 or 0.5
            vmin, vmax = vmin - pad, vmax + pad
    n = len(grids)
    width = min(5.5, 1.0 + 0.75 * len(xs))
    fig, axes = plt.subplots(1, n, figsize=(width * n + 1.6, 0.55 * len(ys) + 2.4), dpi=DPI,
                             squeeze=False, layout="constrained")
    cmap = plt.get_cmap("viridis")
    for j, (ax, (variant, grid)) in enumerate(zip(axes[0], grids.items(), strict=True)):
        image = ax.imshow(grid, cmap=cmap, vmin=vmin, vmax=vmax, aspect="auto",
                          origin="lower", interpolation="nearest")
        for (r, c), value in np.ndenumerate(grid):
            if value != value:
                continue
            shade = (value - vmin) / (vmax - vmin)
            ax.text(c, r, _cell_text(value), ha="center", va="center", fontsize="small",
                    color="white" if shade < 0.6 else "#222222")
        ax.set_xticks(range(len(xs)))
        ax.set_xticklabels([xf["labels"][v] for v in xs],
                           rotation=30 if max(len(xf["labels"][v]) for v in xs) > 6 else 0)
        ax.set_yticks(range(len(ys)))
        ax.set_yticklabels([yf["labels"][v] for v in ys] if j == 0 else [])
        ax.set_xlabel(xf["name"])
        if j == 0:
            ax.set_ylabel(yf["name"])
        if n > 1:
            ax.set_title(variant, fontsize="medium")
        for side in ("top", "right"):
            ax.spines[side].set_visible(False)
    fig.colorbar(image, ax=list(axes[0]), shrink=0.9, pad=0.02)
    seeds = manifest.get("seeds", 1)
    label = _metric_label(metric)
    fig.suptitle(f"{_sentence(label)}: mean of {seeds} "
                 f"seed{'s' if seeds > 1 else ''}{note}", fontsize="medium")
    path = sweep_dir / f"heatmap_{_slug(metric)}.png"
    tmp = path.with_name(f".{path.name}.tmp.png")
    fig.savefig(tmp, dpi=DPI)
    plt.close(fig)
    tmp.replace(path)
    return path


def _cell_text(value: float) -> str:
    """A heatmap cell's number: 4 930, 13.2, 0.42."""
    if abs(value) >= 1000:
        return f"{value:,.0f}".replace(",", "\u2009")
    return f"{value:.3g}"


def _ci_band(per_seed: list[tuple[np.ndarray, np.ndarray]], rate: bool = False):
    """Mean and a 95 % confidence band (Student t) across seeds, on the first seed's
    times; clipped to [0, 1] for a rate."""
    return ci_band(per_seed, rate=rate)


def plot_sweep_timeseries(sweep_dir: Path, manifest: dict, series_key: tuple[str, str],
                          name: str, title: str, ylabel: str,
                          runs: dict | None = None) -> Path | None:
    """A metric over time: a panel per policy, a line per swept value, 95 % CI bands."""
    layout = _SweepLayout(manifest)
    if runs is None:
        runs = _sweep_runs(sweep_dir, manifest)
    # {(policy, x value): [(times, values) per seed]}
    curves: dict[tuple, dict] = {}
    for point in layout.points:
        for run in point["runs"]:
            for (variant, _seed), series in runs.get(run["id"], {}).items():
                if series_key not in series:
                    continue
                policy = layout.series_of(point["id"], variant)
                panel = curves.setdefault(policy, {})
                panel.setdefault(layout.x_of(point["id"]), []).append(series[series_key])
    if not curves:
        return None
    policies = sorted(curves, key=str)[:MAX_PANELS]
    n = len(policies)
    cols = min(3, int(math.ceil(math.sqrt(n))))
    rows = int(math.ceil(n / cols))
    width = 4.6 * cols + 1.6 if cols > 1 else 8.0
    fig, axes = plt.subplots(rows, cols, figsize=(width, 3.3 * rows + 0.9), dpi=DPI,
                             squeeze=False, sharex=True, sharey=True)
    x_values = layout.x["distinct"] if layout.x is not None else [None]
    if layout.numeric_x and len(x_values) > 1:
        colours = [plt.get_cmap("viridis")(0.05 + 0.8 * i / (len(x_values) - 1))
                   for i in range(len(x_values))]
    else:
        colours = [PALETTE[i % len(PALETTE)] for i in range(len(x_values))]
    handles = {}
    spike = False
    xlabel = "simulated time (s)"
    for ax, policy in zip(axes.flat, policies, strict=False):
        _style(ax)
        for k, (colour, x) in enumerate(zip(colours, x_values, strict=True)):
            per_seed = curves[policy].get(x)
            if not per_seed:
                continue
            times, mean, low, high = _ci_band(per_seed,
                                              rate=series_key[0] == "thp_success_rate")
            t, xlabel = _time_axis(times)
            (line,) = ax.plot(t, mean, color=colour, **_line_style(k, len(t), len(x_values)))
            spike |= series_key[0] == "avail" and _spike_dominates(times, mean)
            if len(per_seed) > 1:
                ax.fill_between(t, low, high, color=colour, alpha=0.15, linewidth=0)
            label = layout.x["labels"][x] if layout.x is not None else "mean"
            handles.setdefault(label, line)
        if n > 1 or layout.others or len(layout.variants) > 1:
            ax.set_title(layout.series_label(policy), fontsize="medium")
    for ax in axes.flat[n:]:
        ax.set_visible(False)
    for ax in axes[-1]:
        ax.set_xlabel(xlabel)
    if spike:  # memory still empty at the start: a linear axis would flatten the rest
        _symlog(axes[0, 0])
        ylabel += "\n(symlog scale: linear below 1)"
    for ax in axes[:, 0]:
        ax.set_ylabel(ylabel)
    if series_key[0] == "thp_success_rate":
        axes[0, 0].set_ylim(-0.03, 1.05)
    elif not spike:
        axes[0, 0].set_ylim(bottom=0)
    seeds = manifest.get("seeds", 1)
    band = f"mean and 95 % band over {seeds} seeds" if seeds > 1 else "one seed"
    fig.suptitle(f"{_sentence(title)} over time ({band})", fontsize="medium")
    if layout.x is not None:
        fig.legend(list(handles.values()), list(handles), loc="center right", frameon=False,
                   title=textwrap.fill(layout.x["name"], 22), fontsize="small",
                   title_fontsize="small")
        fig.tight_layout(rect=(0, 0, 1 - 1.4 / width, 0.96))
    else:
        fig.tight_layout(rect=(0, 0, 1, 0.96))
    path = sweep_dir / f"timeseries_{name}.png"
    tmp = path.with_name(f".{path.name}.tmp.png")
    fig.savefig(tmp, dpi=DPI)
    plt.close(fig)
    tmp.replace(path)
    return path


def _sweep_runs(sweep_dir: Path, manifest: dict) -> dict[str, dict]:
    """{run id: read_timeseries(...)} for every finished run of a sweep."""
    runs = {}
    for point in manifest["points"]:
        for run in point["runs"]:
            path = sweep_dir / "points" / run["id"] / "timeseries.csv"
            if path.is_file():
                runs[run["id"]] = read_timeseries(path)
    return runs


def plot_sweep(sweep_dir: str | Path) -> list[Path]:
    """Every comparative figure a sweep directory has data for."""
    sweep_dir = Path(sweep_dir)
    manifest, rows = _sweep_inputs(sweep_dir)
    drawn: list[Path | None] = []
    for metric in manifest.get("metrics", []):
        drawn.append(plot_sweep_metric(sweep_dir, manifest, rows, metric))
        drawn.append(plot_sweep_heatmap(sweep_dir, manifest, rows, metric))
    runs = _sweep_runs(sweep_dir, manifest)
    for key, name, title, ylabel in SWEEP_TIMESERIES:
        drawn.append(plot_sweep_timeseries(sweep_dir, manifest, key, name, title, ylabel, runs))
    return [p for p in drawn if p is not None]


# ------------------------------------------------------------------ capacity


def _quantity_axis(axis, kind: str, low: float, high: float) -> None:
    """Ticks in the key's own units; sizes at power-of-two steps (32MiB, 64MiB...)."""
    from matplotlib.ticker import FuncFormatter, MultipleLocator


    if kind == "size" and high > low:
        axis.set_major_locator(MultipleLocator(2 ** math.floor(math.log2((high - low) / 5))))
    axis.set_major_formatter(FuncFormatter(lambda value, _pos: format_quantity(value, kind)))


def plot_capacity(out_dir: str | Path) -> Path | None:
    """``capacity.png``: the probes of ``fragsim capacity``, metric vs the varied key per
    setting (mean and 95 % CI over seeds; filled = meets the target), the target line and
    the answers (dotted). When the answers sit in a small part of the range, a second
    panel zooms in on them."""
    import json


    out_dir = Path(out_dir)
    data = json.loads((out_dir / "capacity.json").read_text(encoding="utf-8"))
    settings = data["settings"]
    if not any(s["probes"] for s in settings):
        return None
    kind, target, step = data["kind"], data["target"], data["step"]
    lo, hi = data["range"]
    found = [s for s in settings if s["status"] == "found"]
    zoom = None
    if found:
        left = min(s["interval"][0] for s in found) - 3 * step
        right = max(s["answer"] for s in found) + 3 * step
        # Every probe where seeds disagree belongs in the zoom too.
        for setting in found:
            for probe in setting["probes"]:
                if 0 < probe["seeds_passing"] < len(probe["per_seed"]):
                    left, right = min(left, probe["value"] - step), max(right, probe["value"] +
                                                                       step)
        if right - left < 0.4 * (hi - lo):
            zoom = (max(lo - step, left), min(hi + step, right))
    panels = 2 if zoom else 1
    fig, axes = plt.subplots(1, panels, figsize=(8.4 if panels == 1 else 13.0, 4.8), dpi=DPI,
                             squeeze=False)
    for p, ax in enumerate(axes[0]):
        _style(ax)
        span = (hi - lo) if p == 0 else (zoom[1] - zoom[0])
        n = len(settings)
        for i, setting in enumerate(settings):
            colour = PALETTE[i % len(PALETTE)]
            probes = sorted(setting["probes"], key=lambda q: q["value"])
            # A nudge keeps equal probes of two settings apart.
            offset = (i - (n - 1) / 2) * 0.006 * span
            xs = [q["value"] + offset for q in probes]
            means = [q["mean"] for q in probes]
            errors = [0.0 if q["ci95"] != q["ci95"] else q["ci95"] for q in probes]
            passed = [q["passed"] for q in probes]
            ax.plot(xs, means, color=colour, linewidth=1.2, alpha=0.6, zorder=2)
            ax.errorbar(xs, means, yerr=errors, fmt="none", ecolor=colour, elinewidth=1.1,
                        capsize=3, zorder=3)
            ax.scatter([x for x, ok in zip(xs, passed, strict=True) if ok],
                       [m for m, ok in zip(means, passed, strict=True) if ok], color=colour,
                       s=36, zorder=4, label=f"{setting['label']}: {setting['answer_text']}")
            ax.scatter([x for x, ok in zip(xs, passed, strict=True) if not ok],
                       [m for m, ok in zip(means, passed, strict=True) if not ok],
                       facecolor="white", edgecolor=colour, s=36, linewidth=1.4, zorder=4)
            if setting["status"] == "found":
                ax.axvline(setting["answer"], color=colour, linestyle=":", linewidth=1.4,
                           zorder=1)
        ax.axhline(target["value"], color="#555555", linestyle="--", linewidth=1.1, zorder=1,
                   label=f"target {target['text']}")
        if p == 0:
            _quantity_axis(ax.xaxis, kind, lo, hi)
            ax.set_ylabel(_metric_label(target["metric"]))
            ax.set_xlabel(data["vary"])
        else:
            ax.set_xlim(*zoom)
            _quantity_axis(ax.xaxis, kind, *zoom)
            ax.set_xlabel(f"{data['vary']}, near the answers (shaded on the left)")
            axes[0][0].axvspan(*zoom, color="#eeeeee", zorder=0)
            inside = [(q["mean"], 0.0 if q["ci95"] != q["ci95"] else q["ci95"])
                      for st in settings for q in st["probes"]
                      if zoom[0] <= q["value"] <= zoom[1] and q["mean"] == q["mean"]]
            if inside:
                low = min([m - c for m, c in inside] + [target["value"]])
                high = max([m + c for m, c in inside] + [target["value"]])
                pad = 0.08 * (high - low or 1.0)
                low, high = low - pad, high + pad
                if target["metric"] in RATE_METRICS:
                    low, high = max(low, -0.03), min(high, 1.05)
                ax.set_ylim(low, high)
    if target["metric"] in RATE_METRICS:
        axes[0][0].set_ylim(-0.03, 1.05)
    axes[0][-1].legend(frameon=True, framealpha=0.9, edgecolor="none", fontsize="small",
                       loc="lower right")
    seeds = len(data["seeds"])
    fig.suptitle(f"Smallest {data['vary']} with {target['text']}: the probes run (mean and "
                 f"95 % CI over {seeds} seed{'s' * (seeds > 1)}; filled = meets the target, "
                 f"dotted = answer; step {format_quantity(step, kind)})", fontsize="medium")
    return _save(fig, out_dir / "capacity.png")


# ------------------------------------------------------------------ compare


def plot_compare(path: Path, panels: list, legends: list[str],
                 compared: tuple[float, float]) -> Path | None:
    """compare.png: one panel per quantity (sim/compare.py ``figure_panels``), one
    colour per run, the reference solid and first; the time they all cover, which the
    errors are computed over, unshaded."""
    if not panels:
        return None
    cols = min(3, len(panels))
    rows = int(math.ceil(len(panels) / cols))
    fig, axes = plt.subplots(rows, cols, figsize=(4.6 * cols + 0.4, 2.9 * rows + 1.3), dpi=DPI,
                             squeeze=False, sharex=True, layout="constrained")
    ends = [float(line[0][-1]) for panel in panels for line in panel.lines
            if line is not None and len(line[0])]
    scale = _time_scale(np.asarray(ends or [0.0]))
    unit = {1.0: "s", 60.0: "min", 3600.0: "h"}[scale]
    span = max(ends, default=compared[1])
    for ax, panel in zip(axes.flat, panels, strict=False):
        _style(ax)
        missing = []
        for i, (line, legend) in enumerate(zip(panel.lines, legends, strict=True)):
            if line is None:
                missing.append(legend.split(" (")[0])
                continue
            times, values = line
            ax.plot(times / scale, values, color=PALETTE[i % len(PALETTE)],
                    **_line_style(i, len(times), len(legends)))
        for low, high in ((0.0, compared[0]), (compared[1], span)):
            if high > low + 1e-9:
                ax.axvspan(low / scale, high / scale, color="#f0f0f0", zorder=0, linewidth=0)
        title = panel.title + (f"\n(not in {', '.join(missing)})" if missing else "")
        ax.set_title(title, fontsize="medium")
        ax.set_ylabel(panel.ylabel)
        if panel.ylim is not None:
            ax.set_ylim(*panel.ylim)
        else:
            ax.set_ylim(bottom=min(0.0, ax.get_ylim()[0]))
    for ax in axes.flat[len(panels):]:
        ax.set_visible(False)
    for ax in axes[-1]:
        ax.set_xlabel(f"time since the start ({unit})")
    for j in range(cols):  # the last visible panel of a column carries its time axis
        column = [axes[r, j] for r in range(rows) if r * cols + j < len(panels)]
        if column:
            column[-1].xaxis.set_tick_params(labelbottom=True)
            column[-1].set_xlabel(f"time since the start ({unit})")
    handles = [Line2D([], [], color=PALETTE[i % len(PALETTE)],
                      **{k: v for k, v in _line_style(i, 10, len(legends)).items()
                         if k != "markevery"})
               for i in range(len(legends))]
    labels = [f"{legend}{' - the reference' if i == 0 else ''}"
              for i, legend in enumerate(legends)]
    fig.legend(handles, labels, loc="outside lower center", ncol=min(len(labels), 3),
               frameon=False)
    fig.suptitle(f"Side by side over time; the errors in compare.json are over the time "
                 f"every run covers (unshaded), t = {compared[0]:.4g}-{compared[1]:.4g} s",
                 fontsize="medium")
    return _save(fig, path, tight=False)
