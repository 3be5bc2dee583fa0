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
