"""Real captures in the shared capture tool's layout, read as a record's series.

The project's shared real-kernel captures (``configs/real/fileserver-a/``, recorded by
the shared ``capture_dynamic.py``) predate ``fragsim record``: a ``samples.csv.gz`` of
``t,source,key,value`` rows sampled once a second, a ``probe.csv`` of THP probe
attempts (``t,ok,latency_us``) and a ``params.json``. :func:`capture_series` turns one
into the series a ``fragsim record`` of the same run would hold, under the same names
(sim/record.py's helpers), so that ``fragsim compare`` lays it beside a simulation:

- ``buddyinfo`` ``ZONE.ORDER`` -> ``nr_free``, ``avail``, ``unusable_index``,
  ``fragmentation_index``, ``fragmentation_score`` per zone and for the machine (the
  node score weighted by zoneinfo's ``present``);
- ``pageblocks`` ``ZONE.TYPE`` -> ``pageblocks`` per zone and summed. The tool names
  pagetypeinfo's fifth column ``CMA``; on these kernels (no CONFIG_CMA) the fifth
  column is ``Isolate``, and it is read as such;
- ``zoneinfo`` ``ZONE.nr_free_pages`` and ``ZONE.pcp_count.cpuN`` -> ``free_pages`` and
  ``pcp_pages`` per zone and summed, and ``pcp_pages`` ``ZONE/cpuN`` per CPU;
- ``slab`` ``CACHE.active_objs|num_objs|num_slabs|pagesperslab`` -> ``slab_objects``,
  ``slab_slabs``, ``slab_pages``, ``slab_occupancy`` (the tool samples caches of 50
  slabs or more: a cache below that is absent from a sample);
- ``vmstat`` (cumulative) -> the ``vmstat`` series, each counter less its first value;
  ``nr_active_file + nr_inactive_file`` -> ``page_cache_pages``;
- ``meminfo`` ``MemAvailable`` (kB) -> ``mem_available`` (pages);
- ``probe.csv`` -> ``thp_attempts``, ``thp_success_cumulative`` and
  ``thp_success_rate`` (per sample interval): the capture's own madvised probe, as a
  simulated ``thp_probe`` counts its attempts, not the machine's every THP fault.

:func:`capture_timings` reads the workload's own timings off a capture (the balloon's
rate, how fast the paced programs caught up, the deletion's rate, the probe's period),
the values a twin (configs/real/fileserver-*.yaml) takes.
"""

from __future__ import annotations

import csv
import gzip
import json
from collections import defaultdict
from pathlib import Path

import numpy as np

from sim.errors import FragsimError
from sim.procfs import ZoneFree
from sim.record import free_area_series, vmstat_series
from sim.results import zone_key

SAMPLES = "samples.csv.gz"
PROBE = "probe.csv"
PARAMS = "params.json"
PAGE_KB = 4
PAGEBLOCK_ORDER = 9
PAGEBLOCK_NAMES = {"CMA": "Isolate"}  # the tool's label of pagetypeinfo's 5th column

Series = dict[tuple[str, str], tuple[np.ndarray, np.ndarray]]


def is_capture(path: Path) -> bool:
    """A directory in the shared capture tool's layout (and not a result directory)."""
    return (path / SAMPLES).is_file() and (path / PARAMS).is_file() \
        and not (path / "timeseries.csv").exists()


def _rows(path: Path) -> dict[float, dict[str, dict[str, float]]]:
    """{time: {source: {key: value}}} of samples.csv.gz, times rounded to 10 ms."""
    by_time: dict[float, dict[str, dict[str, float]]] = defaultdict(lambda: defaultdict(dict))
    try:
        with gzip.open(path / SAMPLES, "rt", encoding="utf-8", newline="") as f:
            reader = csv.reader(f)
            header = next(reader, None)
            if header != ["t", "source", "key", "value"]:
                raise FragsimError(f"{path / SAMPLES}: expected the header t,source,key,value, "
                                   f"got {','.join(header or [])}")
            for line, row in enumerate(reader, start=2):
                try:
                    t, source, key, value = row
                    by_time[round(float(t), 2)][source][key] = float(value)
                except ValueError:
                    raise FragsimError(f"{path / SAMPLES}:{line}: expected t,source,key,"
                                       f"value, got {','.join(row)}") from None
    except (OSError, EOFError) as e:
        raise FragsimError(f"{path / SAMPLES}: cannot read: "
                           f"{getattr(e, 'strerror', None) or e}") from None
    return by_time


def _sample_series(sample: dict[str, dict[str, float]], first_vmstat: dict[str, int]
                   ) -> dict[tuple[str, str], float]:
    values: dict[tuple[str, str], float] = {}
    buddy: dict[str, dict[int, int]] = defaultdict(dict)
    for key, value in sample.get("buddyinfo", {}).items():
        zone, _, order = key.rpartition(".")
        buddy[zone][int(order)] = int(value)
    zoneinfo = sample.get("zoneinfo", {})
    if buddy:
        zones = [ZoneFree(0, zone, [orders[o] for o in sorted(orders)])
                 for zone, orders in buddy.items()]
        present = {(0, z): int(zoneinfo[f"{z}.present"]) for z in buddy
                   if f"{z}.present" in zoneinfo}
        values.update(free_area_series(zones, PAGEBLOCK_ORDER, present or None))
    totals: dict[str, float] = defaultdict(float)
    for key, value in sample.get("pageblocks", {}).items():
        zone, _, name = key.partition(".")
        name = PAGEBLOCK_NAMES.get(name, name)
        values[("pageblocks", zone_key(zone, name))] = value
        totals[name] += value
        if name == "HighAtomic":
            values[("highatomic_pageblocks", zone)] = value
    for name, value in totals.items():
        values[("pageblocks", name)] = value
        if name == "HighAtomic":
            values[("highatomic_pageblocks", "")] = value
    free = pcp = 0.0
    for key, value in zoneinfo.items():
        zone, _, field = key.partition(".")
        if zone not in buddy:
            continue
        if field == "nr_free_pages":
            values[("free_pages", zone)] = value
            free += value
        elif field.startswith("pcp_count."):
            values[("pcp_pages", zone)] = values.get(("pcp_pages", zone), 0.0) + value
            cpu = field.partition(".")[2]
            values[("pcp_pages", f"{zone}/{cpu}")] = value
            values[("pcp_pages", cpu)] = values.get(("pcp_pages", cpu), 0.0) + value
            pcp += value
    if free:
        values[("free_pages", "")] = free
        values[("pcp_pages", "")] = pcp
    slabs: dict[str, dict[str, float]] = defaultdict(dict)
    for key, value in sample.get("slab", {}).items():
        cache, _, field = key.rpartition(".")
        slabs[cache][field] = value
    for cache, f in slabs.items():
        if {"active_objs", "num_objs", "num_slabs", "pagesperslab"} <= f.keys():
            values[("slab_objects", cache)] = f["active_objs"]
            values[("slab_slabs", cache)] = f["num_slabs"]
            values[("slab_pages", cache)] = f["num_slabs"] * f["pagesperslab"]
            values[("slab_occupancy", cache)] = (f["active_objs"] / f["num_objs"]
                                                 if f["num_objs"] else 1.0)
    vmstat = {k: int(v) for k, v in sample.get("vmstat", {}).items()}
    values.update(vmstat_series(vmstat, first_vmstat))
    if "nr_active_file" in vmstat and "nr_inactive_file" in vmstat:
        values[("page_cache_pages", "")] = vmstat["nr_active_file"] + vmstat["nr_inactive_file"]
    meminfo = sample.get("meminfo", {})
    if "MemAvailable" in meminfo:
        values[("mem_available", "")] = meminfo["MemAvailable"] // PAGE_KB
    return values


def _probe_series(path: Path, times: np.ndarray) -> Series:
    """The THP probe's attempts and successes, counted at each sample time."""
    file = path / PROBE
    if not file.is_file():
        return {}
    try:
        with file.open(encoding="utf-8", newline="") as f:
            rows = [(float(r["t"]), int(r["ok"])) for r in csv.DictReader(f)]
    except (OSError, KeyError, ValueError) as e:
        raise FragsimError(f"{file}: expected t,ok,latency_us rows, got "
                           f"{getattr(e, 'strerror', None) or e}") from None
    if not rows:
        return {}
    t_probe = np.array([t for t, _ in rows])
    ok = np.cumsum([o for _, o in rows])
    tried = np.searchsorted(t_probe, times, side="right")
    succeeded = np.where(tried > 0, ok[np.maximum(tried - 1, 0)], 0)
    out: Series = {("thp_attempts", ""): (times, tried.astype(float))}
    have = tried > 0
    out[("thp_success_cumulative", "")] = (times[have], succeeded[have] / tried[have])
    d_tried = np.diff(tried, prepend=0)
    d_ok = np.diff(succeeded, prepend=0)
    some = d_tried > 0
    out[("thp_success_rate", "")] = (times[some], d_ok[some] / d_tried[some])
    return out


def capture_series(path: str | Path) -> Series:
    """The series of a capture directory (see the module docstring), times in seconds
    from the capture's start."""
    path = Path(path)
    if not is_capture(path):
        raise FragsimError(f"{path}: expected a capture directory ({SAMPLES} and {PARAMS}), "
                           f"got none")
    rows = _rows(path)
    if not rows:
        raise FragsimError(f"{path / SAMPLES}: expected samples, got none")
    times = sorted(rows)
    first_vmstat = {k: int(v) for k, v in rows[times[0]].get("vmstat", {}).items()}
    columns: dict[tuple[str, str], tuple[list[float], list[float]]] = {}
    for t in times:
        for name, value in _sample_series(rows[t], first_vmstat).items():
            ts, vs = columns.setdefault(name, ([], []))
            ts.append(t)
            vs.append(value)
    series: Series = {name: (np.asarray(ts), np.asarray(vs, dtype=float))
                      for name, (ts, vs) in columns.items()}
    series.update(_probe_series(path, np.asarray(times)))
    return series


def capture_params(path: str | Path) -> dict:
    try:
        return json.loads((Path(path) / PARAMS).read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise FragsimError(f"{Path(path) / PARAMS}: cannot read: {e}") from None



def capture_timings(path: str | Path, on_pace: float = 0.99) -> dict[str, float]:
    """The workload timings a twin of a ``capture_dynamic.py`` capture takes from it
    (configs/real/fileserver-*.yaml), read off its files:

    - ``start_s``: when the balloon was touched (``balloon_done_s``), and
      ``balloon_mib_s`` its rate;
    - ``reader_on_pace_s``, ``reader_catch_up``: the first sample after the start at
      which the reader's page cache (``Cached`` less one page for each small file,
      counted by the dentries) reached ``on_pace`` of rate x t, and the mean speed up to
      it, t / (t - start), in units of the rate (the tool paces against t = 0);
    - ``creator_on_pace_s``, ``creator_catch_up``: the same for the file creator (the
      dentry count against create_rate x t);
    - ``delete_after_s`` (from ``created_s`` to ``delete_start_s``) and
      ``delete_per_s``;
    - ``probe_interval_s``: the mean time between THP probes in ``probe.csv``.
    """
    path = Path(path)
    params = capture_params(path)
    p = params["params"]
    start = float(params["balloon_done_s"])
    rows = _rows(path)
    times = sorted(rows)
    t0 = times[0]
    cached0 = rows[t0]["meminfo"]["Cached"]
    dentries0 = rows[t0]["slab"]["dentry.active_objs"]
    reader_t = creator_t = float("nan")
    for t in times:
        if t <= start:
            continue
        files = rows[t]["slab"].get("dentry.active_objs", dentries0) - dentries0
        stream_mib = (rows[t]["meminfo"]["Cached"] - cached0 - 4 * files) / 1024
        if reader_t != reader_t and stream_mib >= on_pace * p["stream_mib_s"] * t:
            reader_t = t
        if creator_t != creator_t and files >= on_pace * p["create_rate"] * t:
            creator_t = t
    with open(path / "probe.csv", encoding="utf-8") as f:
        probes = [float(line.split(",")[0]) for line in f.read().splitlines()[1:] if line]
    deleted = p["files"] * p["delete_pct"] / 100
    return {
        "start_s": start,
        "balloon_mib_s": p["balloon_gib"] * 1024 / start,
        "reader_on_pace_s": reader_t,
        "reader_catch_up": reader_t / (reader_t - start),
        "creator_on_pace_s": creator_t,
        "creator_catch_up": creator_t / (creator_t - start),
        "delete_after_s": params["delete_start_s"] - params["created_s"],
        "delete_per_s": deleted / (params["delete_end_s"] - params["delete_start_s"]),
        "probe_interval_s": (probes[-1] - probes[0]) / (len(probes) - 1),
    }
