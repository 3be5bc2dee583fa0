"""Plots of a run directory, drawn from its files only (so old runs can be redrawn).

One house style: white background, light grid, the same colour per variant in every
figure, titles that say what is shown, axes with units. Each function takes the run
directory and writes one PNG into it, returning its path (or None when the run has no
data for that figure).

- ``availability.png``: order-N availability over time per variant, mean and a band
  (min..max) across seeds. The headline picture.
- ``buddyinfo_heatmap.png``: free blocks per order over time (log colour), per variant.
- ``memmap.png``: the physical memory map at the start and the end: one pixel per
  pageblock, coloured by migratetype, dark where allocated, with slab pages marked.
- ``slab_occupancy.png``: occupancy of each slab cache over time.
- ``thp_success.png``: the THP probe's success rate over time.
"""

from __future__ import annotations

import math
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.colors import LogNorm  # noqa: E402

from sim.results import read_timeseries  # noqa: E402

PALETTE = ("#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2",
           "#7f7f7f")
MIGRATETYPE_COLOURS = {0: "#d62728", 1: "#2ca02c", 2: "#ff7f0e", 3: "#9467bd", 4: "#7f7f7f"}
MIGRATETYPE_LABELS = {0: "Unmovable", 1: "Movable", 2: "Reclaimable", 3: "HighAtomic",
                      4: "Isolate"}
DPI = 110


def _new_figure(width: float = 7.5, height: float = 4.2):
    fig, ax = plt.subplots(figsize=(width, height), dpi=DPI)
    _style(ax)
    return fig, ax


def _style(ax) -> None:
    ax.grid(True, color="#e6e6e6", linewidth=0.8)
    ax.set_axisbelow(True)
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)


def _time_axis(times: np.ndarray) -> tuple[np.ndarray, str]:
    """Times in the unit that reads best: s, min or h."""
    span = float(times.max()) if len(times) else 0.0
    if span >= 3 * 3600:
        return times / 3600, "simulated time (h)"
    if span >= 3 * 60:
        return times / 60, "simulated time (min)"
    return times, "simulated time (s)"


def _save(fig, path: Path) -> Path:
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


def _band(per_seed: list[tuple[np.ndarray, np.ndarray]]):
    """Mean, min and max across seeds on the first seed's time axis."""
    times = per_seed[0][0]
    stacked = np.vstack([np.interp(times, t, v) for t, v in per_seed])
    return times, stacked.mean(axis=0), stacked.min(axis=0), stacked.max(axis=0)


def _runs(run_dir: Path, runs: dict | None) -> dict:
    return read_timeseries(run_dir / "timeseries.csv") if runs is None else runs


def plot_availability(run_dir: Path, runs: dict | None = None, order: int = 9) -> Path | None:
    runs = _runs(run_dir, runs)
    variants = _by_variant(runs)
    key = ("avail", str(order))
    if not any(key in s for seeds in variants.values() for s in seeds):
        return None
    fig, ax = _new_figure()
    for i, (variant, seeds) in enumerate(variants.items()):
        per_seed = [s[key] for s in seeds if key in s]
        if not per_seed:
            continue
        times, mean, low, high = _band(per_seed)
        x, xlabel = _time_axis(times)
        colour = PALETTE[i % len(PALETTE)]
        label = f"{variant} ({len(per_seed)} seed{'s' if len(per_seed) > 1 else ''})"
        ax.plot(x, mean, color=colour, linewidth=1.8, label=label)
        if len(per_seed) > 1:
            ax.fill_between(x, low, high, color=colour, alpha=0.18, linewidth=0)
        ax.set_xlabel(xlabel)
    size = (4 << order) // 1024
    unit = f"{size} MiB" if size >= 1 else f"{4 << order} KiB"
    ax.set_ylabel(f"order-{order} blocks that would succeed now")
    ax.set_title(f"Order-{order} ({unit}) availability avail[{order}]: mean, range across seeds")
    ax.set_ylim(bottom=0)
    ax.legend(frameon=False)
    return _save(fig, run_dir / "availability.png")


def plot_buddyinfo_heatmap(run_dir: Path, runs: dict | None = None) -> Path | None:
    runs = _runs(run_dir, runs)
    variants = _by_variant(runs)
    firsts = {v: seeds[0] for v, seeds in variants.items()
              if any(m == "nr_free" for m, _ in seeds[0])}
    if not firsts:
        return None
    fig, axes = plt.subplots(len(firsts), 1, figsize=(7.5, 2.4 * len(firsts) + 0.8), dpi=DPI,
                             squeeze=False)
    for ax, (variant, series) in zip(axes[:, 0], firsts.items(), strict=True):
        orders = sorted(int(k) for m, k in series if m == "nr_free")
        times = series[("nr_free", str(orders[0]))][0]
        grid = np.vstack([series[("nr_free", str(o))][1] for o in orders])
        x, xlabel = _time_axis(times)
        mesh = ax.pcolormesh(x, orders, np.maximum(grid, 0.5), shading="nearest",
                             norm=LogNorm(vmin=0.5, vmax=max(1.0, float(grid.max()))),
                             cmap="viridis")
        ax.set_ylabel("order")
        ax.set_yticks(orders)
        ax.set_title(f"Free blocks per order (buddyinfo) over time: {variant}")
        ax.set_xlabel(xlabel)
        fig.colorbar(mesh, ax=ax, label="free blocks")
    return _save(fig, run_dir / "buddyinfo_heatmap.png")


def _memmap_image(data: dict) -> np.ndarray:
    """RGB per pageblock: migratetype hue, darker the fuller, slab pages marked black."""
    mt = data["migratetype"]
    per_block = float(data["pageblock_nr_pages"])
    used = 1.0 - (data["free_pages"] + data["pcp_pages"]) / per_block
    n = len(mt)
    width = max(1, int(math.ceil(math.sqrt(n * 2))))
    rows = int(math.ceil(n / width))
    image = np.ones((rows * width, 3))
    for value, colour in MIGRATETYPE_COLOURS.items():
        rgb = np.array(matplotlib.colors.to_rgb(colour))
        sel = np.flatnonzero(mt == value)
        strength = 0.2 + 0.8 * used[sel, None]  # empty blocks pale, full blocks deep
        image[sel] = 1.0 - (1.0 - rgb) * strength
    slab = np.flatnonzero(data["slab_pages"] > 0)
    image[slab] = image[slab] * 0.35
    image = np.clip(image, 0, 1)
    return image.reshape(rows, width, 3)


def plot_memmap(run_dir: Path, runs: dict | None = None) -> Path | None:
    folder = run_dir / "memmap"
    ends = sorted(folder.glob("end*.npz")) if folder.is_dir() else []
    start = folder / "start.npz"
    files = ([("start", start)] if start.exists() else []) + [
        ("end" if p.stem == "end" else f"end, {p.stem[4:]}", p) for p in ends]
    if not files:
        return None
    fig, axes = plt.subplots(1, len(files), figsize=(4.2 * len(files) + 1.5, 4.4), dpi=DPI,
                             squeeze=False)
    for ax, (label, path) in zip(axes[0], files, strict=True):
        with np.load(path) as npz:
            data = {k: npz[k] for k in npz.files}
        ax.imshow(_memmap_image(data), interpolation="nearest", aspect="equal")
        ax.set_xticks([])
        ax.set_yticks([])
        ax.set_title(f"{label}: {data['title']}" if "title" in data else label, fontsize="medium")
    handles = [plt.Rectangle((0, 0), 1, 1, color=MIGRATETYPE_COLOURS[m])
               for m in (0, 1, 2)]
    handles.append(plt.Rectangle((0, 0), 1, 1, color="#333333"))
    fig.legend(handles, ["Unmovable", "Movable", "Reclaimable", "holds slab pages"],
               loc="lower center", ncol=4, frameon=False)
    fig.suptitle("Physical memory map: one pixel per pageblock, darker = fuller "
                 "(row by row from pfn 0)")
    fig.tight_layout(rect=(0, 0.07, 1, 0.95))
    tmp = run_dir / ".memmap.tmp.png"
    fig.savefig(tmp, dpi=DPI)
    plt.close(fig)
    tmp.replace(run_dir / "memmap.png")
    return run_dir / "memmap.png"


def _plot_keyed(run_dir: Path, runs: dict | None, metric: str, filename: str, title: str,
                ylabel: str, ylim: tuple[float, float] | None = None) -> Path | None:
    runs = _runs(run_dir, runs)
    variants = _by_variant(runs)
    keys = sorted({k for seeds in variants.values() for s in seeds for m, k in s
                   if m == metric})
    if not keys:
        return None
    fig, ax = _new_figure()
    styles = ("-", "--", ":", "-.")
    for i, (variant, seeds) in enumerate(variants.items()):
        for j, key in enumerate(keys):
            per_seed = [s[(metric, key)] for s in seeds if (metric, key) in s]
            if not per_seed:
                continue
            times, mean, low, high = _band(per_seed)
            x, xlabel = _time_axis(times)
            colour = PALETTE[(i if len(variants) > 1 else j) % len(PALETTE)]
            label = variant if not key else f"{variant}: {key}" if len(variants) > 1 else key
            ax.plot(x, mean, color=colour, linestyle=styles[j % len(styles)]
                    if len(variants) > 1 else "-", linewidth=1.6, label=label)
            if len(per_seed) > 1:
                ax.fill_between(x, low, high, color=colour, alpha=0.15, linewidth=0)
            ax.set_xlabel(xlabel)
    ax.set_title(title)
    ax.set_ylabel(ylabel)
    if ylim:
        ax.set_ylim(*ylim)
    ax.legend(frameon=False, fontsize="small")
    return _save(fig, run_dir / filename)


def plot_slab_occupancy(run_dir: Path, runs: dict | None = None) -> Path | None:
    return _plot_keyed(run_dir, runs, "slab_occupancy", "slab_occupancy.png",
                       "Slab occupancy per cache (active objects / total objects)",
                       "occupancy", (0, 1.05))


def plot_thp_success(run_dir: Path, runs: dict | None = None) -> Path | None:
    return _plot_keyed(run_dir, runs, "thp_success_rate", "thp_success.png",
                       "THP probe: share of huge-page attempts that succeeded (trailing window)",
                       "success rate", (0, 1.05))


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
    "defrag.pages_returned": "pages the defragmenter returned",
    "compaction.migrated": "pages migrated by compaction",
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


CACHE_FIELD_LABELS = {"num_slabs": "slabs", "active_objs": "active objects",
                      "pages": "slab pages", "slabs_allocated": "slabs allocated",
                      "slabs_freed": "slabs freed"}


def _metric_label(metric: str) -> str:
    """A summary field as a person would name it: ``caches.dentry.num_slabs`` -> "dentry
    slabs at the end"; unknown names are shown as they are."""
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
            short = lasts.pop() if len(lasts) == 1 and len(keys) > 1 else factor["name"]
            self.factors.append({"name": short, "keys": keys, "values": values,
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
    from sim.runner import t_975

    values = [v for v in values if v == v]
    if not values:
        return math.nan, math.nan
    mean = float(np.mean(values))
    if len(values) < 2:
        return mean, math.nan
    return mean, t_975(len(values) - 1) * float(np.std(values, ddof=1)) / math.sqrt(len(values))


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


def _x_axis(ax, layout: _SweepLayout, positions: dict) -> None:
    """Ticks at the swept values, labelled as the YAML wrote them (256MiB, not bytes)."""
    x = layout.x
    ticks = [positions[v] for v in x["distinct"]]
    labels = [x["labels"][v] for v in x["distinct"]]
    if layout.numeric_x:
        low, high = min(ticks), max(ticks)
        if low > 0 and high / low >= 8:
            ax.set_xscale("log", base=2)
        ax.minorticks_off()
    if len(ticks) <= 14:
        ax.set_xticks(ticks)
        ax.set_xticklabels(labels, rotation=30 if max(len(t) for t in labels) > 6 else 0)
    ax.set_xlabel(x["name"] + ("" if layout.numeric_x else " (swept)"))


def plot_sweep_metric(sweep_dir: Path, manifest: dict, rows: list[dict],
                      metric: str) -> Path | None:
    """A summary metric vs the swept parameter, one line per policy, 95 % CI bars."""
    layout = _SweepLayout(manifest)
    cells = _cells(rows, metric)
    if not any(v == v for values in cells.values() for v in values):
        return None
    fig, ax = _new_figure(8.2, 4.6)
    if layout.x is None:  # one point: the variants side by side
        xs = list(range(len(layout.variants)))
        for i, variant in enumerate(layout.variants):
            values = next((v for (p, var), v in cells.items() if var == variant), [])
            mean, ci = _mean_ci(values)
            ax.errorbar([xs[i]], [mean], yerr=[0 if ci != ci else ci], fmt="o", ms=8,
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
            series.setdefault(key, []).append((positions[layout.x_of(point)], values))
        n_series = len(series)
        # Spread the lines a little so that equal means do not hide each other's bars:
        # a share of the smallest gap between swept values (a factor on a log axis).
        ticks = sorted(positions.values())
        log_x = layout.numeric_x and ticks[0] > 0 and ticks[-1] / ticks[0] >= 8
        scaled = [math.log2(t) for t in ticks] if log_x else ticks
        gaps = [b - a for a, b in zip(scaled, scaled[1:], strict=False) if b > a]
        dodge = min(gaps or [1.0]) * min(0.06, 0.3 / max(1, n_series))
        for i, (key, entries) in enumerate(sorted(series.items(), key=lambda kv: str(kv[0]))):
            entries.sort(key=lambda e: e[0])
            offset = (i - (n_series - 1) / 2) * dodge
            xs = [x * 2 ** offset if log_x else x + offset for x, _ in entries]
            stats = [_mean_ci(values) for _, values in entries]
            means = [m for m, _ in stats]
            errors = [0.0 if c != c else c for _, c in stats]
            colour = PALETTE[i % len(PALETTE)]
            ax.errorbar(xs, means, yerr=errors, color=colour, marker="o", ms=5, linewidth=1.8,
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
    if metric in RATE_METRICS:
        vmin, vmax = 0.0, 1.0
    if vmin == vmax:
        vmin, vmax = vmin - 0.5, vmax + 0.5
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
            ax.text(c, r, f"{value:.3g}", ha="center", va="center", fontsize="small",
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
                 f"seed{'s' if seeds > 1 else ''}", fontsize="medium")
    path = sweep_dir / f"heatmap_{_slug(metric)}.png"
    tmp = path.with_name(f".{path.name}.tmp.png")
    fig.savefig(tmp, dpi=DPI)
    plt.close(fig)
    tmp.replace(path)
    return path


def _ci_band(per_seed: list[tuple[np.ndarray, np.ndarray]]):
    """Mean and a 95 % confidence band (Student t) across seeds, on the first seed's times."""
    from sim.runner import t_975

    times = per_seed[0][0]
    stacked = np.vstack([np.interp(times, t, v) for t, v in per_seed])
    mean = stacked.mean(axis=0)
    if len(per_seed) < 2:
        return times, mean, mean, mean
    half = t_975(len(per_seed) - 1) * stacked.std(axis=0, ddof=1) / math.sqrt(len(per_seed))
    return times, mean, mean - half, mean + half


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
    xlabel = "simulated time (s)"
    for ax, policy in zip(axes.flat, policies, strict=False):
        _style(ax)
        for colour, x in zip(colours, x_values, strict=True):
            per_seed = curves[policy].get(x)
            if not per_seed:
                continue
            times, mean, low, high = _ci_band(per_seed)
            t, xlabel = _time_axis(times)
            (line,) = ax.plot(t, mean, color=colour, linewidth=1.6)
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
    for ax in axes[:, 0]:
        ax.set_ylabel(ylabel)
    if series_key[0] == "thp_success_rate":
        axes[0, 0].set_ylim(-0.03, 1.05)
    else:
        axes[0, 0].set_ylim(bottom=0)
    seeds = manifest.get("seeds", 1)
    band = f"mean and 95 % band over {seeds} seeds" if seeds > 1 else "one seed"
    fig.suptitle(f"{_sentence(title)} over time ({band})", fontsize="medium")
    if layout.x is not None:
        fig.legend(list(handles.values()), list(handles), loc="center right", frameon=False,
                   title=layout.x["name"], fontsize="small", title_fontsize="small")
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

    from sim.capacity import format_quantity

    if kind == "size" and high > low:
        axis.set_major_locator(MultipleLocator(2 ** math.floor(math.log2((high - low) / 5))))
    axis.set_major_formatter(FuncFormatter(lambda value, _pos: format_quantity(value, kind)))


def plot_capacity(out_dir: str | Path) -> Path | None:
    """``capacity.png``: the probes of ``fragsim capacity``, metric vs the varied key per
    setting (mean and 95 % CI over seeds; filled = meets the target), the target line and
    the answers (dotted). When the answers sit in a small part of the range, a second
    panel zooms in on them."""
    import json

    from sim.capacity import format_quantity

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
