"""Run experiments: a config -> machines -> samples -> results files.

``run(config)`` is the Python API: one variant and seed in, one ``Result`` out (time
series as numpy arrays, ``.to_csv()``). ``run_experiment`` runs every variant x seed
and writes the run directory (sim/results.py) atomically. A run is a pure function of
its resolved config and seed: the same config and seed give identical results.
"""

from __future__ import annotations

import contextlib
import functools
import gc
import math
import resource
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import yaml

from sim import __version__, metrics
from sim.config import ExperimentConfig, to_yaml
from sim.experiment import load_config, resolve_variants
from sim.machine import Machine, all_workloads, buddy_report
from sim.procfs import (
    buddyinfo_of,
    format_buddyinfo,
    format_extfrag_index,
    format_pagetypeinfo,
    format_unusable_index,
    format_zoneinfo_zone,
    pagetypeinfo_of_zones,
)
from sim.results import Recorder, Result, RunDirectory, write_atomic, write_json, write_timeseries
from sim.stats import aggregate
from workloads import resolve_kind

MEMMAP_FIELDS = ("migratetype", "free_pages", "pcp_pages", "movable_pages", "pinned_pages",
                 "unmovable_pages", "slab_pages")


def build_workloads(machine: Machine) -> list:
    workloads = []
    for i, spec in enumerate(machine.config.workloads):
        cls = resolve_kind(spec.kind)
        params = cls.Params.model_validate(spec.model_extra or {})
        workloads.append(cls(machine, params, i))
    return workloads


def _memmap(stats: metrics.PageblockStats, machine: Machine, title: str) -> dict[str, np.ndarray]:
    data = {name: getattr(stats, name) for name in MEMMAP_FIELDS}
    data["pageblock_nr_pages"] = np.asarray(1 << machine.zone.pageblock_order)
    data["title"] = np.asarray(title)
    return data


def run(config: ExperimentConfig | str | Path, seed: int | None = None,
        variant: str | None = None, progress: Callable[[float], None] | None = None) -> Result:
    """Run one variant (default: the first) with one seed (default: the config's)."""
    if not isinstance(config, ExperimentConfig):
        configs = resolve_variants(config)
        name = variant or next(iter(configs))
        config, variant = configs[name], name
    return run_machine(config, config.seed if seed is None else seed, variant or "default",
                       progress)


@contextlib.contextmanager
def fewer_gc_passes():
    """Run CPython's cyclic garbage collector less often, then restore its thresholds.

    A run keeps millions of long-lived objects (slabs, files, pages' owners) and makes
    few reference cycles, so the default thresholds spend their time rescanning live
    objects: 9-12 % of configs/bench.yaml's wall time. Results cannot change: the
    collector only ever frees unreachable cycles, and nothing in a run observes when.
    """
    old = gc.get_threshold()
    gc.set_threshold(100_000, 10, 100)
    try:
        yield
    finally:
        gc.set_threshold(*old)


def reset_peak_rss() -> None:
    """Start this process's peak resident set afresh, at its current set: ``5`` written
    to /proc/self/clear_refs resets ``VmHWM`` (Linux 4.0+). A run then measures its own
    peak, not an earlier run's in the same process (a pool worker's, or ``--jobs 1``'s
    seeds and variants one after another). Without /proc, nothing."""
    try:
        with open("/proc/self/clear_refs", "w") as clear_refs:
            clear_refs.write("5")
    except OSError:
        pass


def peak_rss_bytes() -> int:
    """This process's peak resident set since ``reset_peak_rss`` or its exec
    (``VmHWM``), or ``ru_maxrss`` where /proc does not give it (which keeps the largest
    set of the process's life, and across exec its parent's at the fork too)."""
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def run_machine(config: ExperimentConfig, seed: int, variant: str,
                progress: Callable[[float], None] | None = None,
                batched: bool = True) -> Result:
    try:
        with fewer_gc_passes():
            return _run_machine(config, seed, variant, progress, batched)
    finally:
        # The machine is all reference cycles (SimPy processes and their generators,
        # callbacks back into the machine): unreachable now, but refcounting cannot free
        # it, and with few collections an unforced full one comes runs later. A pool
        # worker's resident set grew by a run's size each run until then (quickstart:
        # 127, 171, 213, ... 378 MB). Freed here, the next run starts where this began.
        gc.collect()


def _run_machine(config: ExperimentConfig, seed: int, variant: str,
                 progress: Callable[[float], None] | None, batched: bool) -> Result:
    reset_peak_rss()  # this run's peak, the machine's building included
    started = time.perf_counter()
    cpu_started = time.process_time()
    machine = Machine(config, seed, variant, batched=batched)
    workloads = build_workloads(machine)
    for workload in workloads:
        machine.add_sample_hook(workload.samples)
    machine.start(workloads)
    # The pageblock sample at t = 0 and the start memory map read the same state, as
    # do a last sample at the end and the end map: one pageblock_stats each.
    stats = machine.pageblock_stats()
    stats_t = 0.0
    memmap_start = _memmap(stats, machine, "t = 0")
    recorder = Recorder()
    until = config.duration
    every = config.sample_every
    pb_every = config.pageblock_sample_every or 10 * every
    next_pb = 0.0
    pb_values: dict = {}
    t = 0.0
    while True:
        if t >= next_pb - 1e-9:
            # The whole census only where a memory map needs it too (t = 0 and the
            # end); between, the mixed-pageblock count alone, a few times cheaper.
            if t >= until - 1e-9 and stats_t != t:
                stats, stats_t = machine.pageblock_stats(), t
            pb_values = machine.pageblock_snapshot(stats if stats_t == t else None)
            next_pb += pb_every
        values = machine.snapshot()
        values.update(pb_values)
        recorder.sample(t, values)
        if progress is not None:
            progress(t)
        if t >= until - 1e-9:
            break
        t = min(until, t + every)
        machine.env.run(until=t)
    wall = time.perf_counter() - started
    result = Result(variant, seed, np.asarray(recorder.times), recorder.series())
    result.summary = summarize(machine, workloads, result, wall,
                               time.process_time() - cpu_started)
    buddyinfo = [buddyinfo_of(zone, name=name) for name, zone in machine.zones]
    result.final = {
        "buddyinfo": format_buddyinfo(buddyinfo),
        "pagetypeinfo": format_pagetypeinfo(pagetypeinfo_of_zones(machine.zones)),
        "zoneinfo": "".join(format_zoneinfo_zone(zone, 0, name, zone.lowmem_reserve)
                            for name, zone in machine.zones),
        "unusable_index": format_unusable_index(buddyinfo),
        "extfrag_index": format_extfrag_index(buddyinfo),
        "slabinfo": machine.caches.format_slabinfo(),
    }
    if stats_t != t:
        stats = machine.pageblock_stats()
    result.memmap = {"start": memmap_start, "end": _memmap(stats, machine, f"t = {until:g} s")}
    return result


def _time_average(times: np.ndarray, values: np.ndarray, start: float = 0.0) -> float:
    """The time average of a sampled series over [start, end] (trapezoids; the value at
    ``start`` interpolated between samples)."""
    if start > 0 and len(times) and start < times[-1]:
        keep = times > start
        value = float(np.interp(start, times, values))
        times = np.concatenate(([start], times[keep]))
        values = np.concatenate(([value], values[keep]))
    elif start > 0 and len(times):
        times, values = times[-1:], values[-1:]
    if len(times) < 2:
        return float(values[-1]) if len(values) else math.nan
    return float(np.trapezoid(values, times) / (times[-1] - times[0]))


def _thp_counts(thp: list, result: Result, start: float) -> tuple[int, int]:
    """THP probe (successes, attempts) from ``start`` on: the whole run's counters less
    those sampled at ``start`` (the last sample at or before it; the thp_attempts and
    thp_success_cumulative series). The series hold one probe: with several probes the
    whole run's counts are returned."""
    successes = sum(w.successes for w in thp)
    attempts = sum(w.attempts for w in thp)
    tried = result.series.get(("thp_attempts", ""))
    share = result.series.get(("thp_success_cumulative", ""))
    if start <= 0 or len(thp) != 1 or tried is None or share is None:
        return successes, attempts
    before = np.flatnonzero(result.times <= start + 1e-9)
    if not len(before) or tried[before[-1]] != tried[before[-1]]:
        return successes, attempts  # no attempt yet at start
    i = before[-1]
    tried_then = int(tried[i])
    succeeded_then = int(round(float(share[i]) * tried_then))
    return successes - succeeded_then, attempts - tried_then


# fragsim run notes a variant whose allocation slow path takes more of its time than
# this: its demand outruns what kswapd frees, so allocations reclaim for themselves
# (issue 20's "cliff"), and the run is slow for that reason.
SLOW_PATH_NOTE_SHARE = 0.2


def slow_path_report(machine: Machine) -> dict[str, float]:
    """How much of the allocator's work took the slow path (``__alloc_pages_slowpath``):
    per buddy allocation call, the share that entered it, did direct reclaim or direct
    compaction, and the ``drain_all_pages`` calls direct reclaim made."""
    st = machine.page_alloc.stats
    allocs = sum(zone.nr_alloc_calls for _, zone in machine.zones)
    per = (lambda n: n / allocs) if allocs else (lambda n: math.nan)
    return {"alloc_calls": allocs, "entered": st.slowpath, "share": per(st.slowpath),
            "direct_reclaim_share": per(st.direct_reclaim),
            "direct_compact_share": per(st.direct_compact),
            "drain_all_pages": st.drain_all_pages}


def summarize(machine: Machine, workloads: list, result: Result, wall: float,
              cpu: float = math.nan) -> dict[str, Any]:
    zone = machine.zone
    nr_free = machine.node.nr_free
    buddy_calls = machine.buddy_calls
    slab_ops = sum(c.nr_allocs + c.nr_frees for c in machine.caches)
    avail9 = result.series.get(("avail", str(zone.pageblock_order)))
    thp = [w for w in all_workloads(workloads) if w.kind == "thp_probe"]
    # The warm-up before measure_from is left out; a run that ends before it (a
    # shortened config) is measured whole.
    start = machine.config.measure_from
    start = start if start < machine.config.duration else 0.0
    successes, attempts = _thp_counts(thp, result, start)
    summary: dict[str, Any] = {
        "variant": result.variant,
        "seed": result.seed,
        "wall_s": wall,
        "sim_time_s": machine.env.now,
        "events": machine.env.events_processed,
        "alloc_ops": buddy_calls,
        "ops_per_s": buddy_calls / wall if wall else math.nan,
        "slab_ops": slab_ops,
        "slab_ops_per_s": slab_ops / wall if wall else math.nan,
        "peak_rss_bytes": peak_rss_bytes(),
        "cpu_s": cpu,
        "slow_path_s": machine.page_alloc.slowpath_s,
        "slow_path_time_share": machine.page_alloc.slowpath_s / wall if wall else math.nan,
        "slow_path": slow_path_report(machine),
        "avail": {str(o): metrics.avail(nr_free, o) for o in range(zone.max_order + 1)},
        "measure_from_s": start,
        f"avail{zone.pageblock_order}_time_avg": (
            _time_average(result.times, avail9, start) if avail9 is not None else math.nan),
        "thp_success_rate": successes / attempts if attempts else math.nan,
        "thp_attempts": attempts,
        "thp_successes": successes,
        **machine.report(),
        "workloads": {w.name: w.summary() for w in workloads},
    }
    if machine.defrag.notes:
        summary["notes"] = list(dict.fromkeys(machine.defrag.notes))
    return summary


# ------------------------------------------------------------------ experiments


class Progress(Protocol):
    """What ``run_experiment`` reports while it runs (the CLI draws one bar from it)."""

    def begin(self, runs: list[tuple[str, int, float]]) -> None:
        """The runs to come, in order: (variant, seed, simulated duration)."""

    def update(self, index: int, t: float) -> None:
        """Run ``index`` has reached simulated time ``t``."""


def run_experiment(
    config_path: str | Path,
    overrides: list[str] | None = None,
    out: str | Path | None = None,
    seed: int | None = None,
    seeds: int | None = None,
    progress: Progress | None = None,
    plots: bool = True,
    jobs: int = 1,
) -> Path:
    """Every variant x seed of a config, ``jobs`` at a time; writes and returns the run
    directory. Results do not depend on ``jobs``: each run is a pure function of its
    config and seed."""
    overrides = list(overrides or [])
    configs = resolve_variants(config_path, overrides)
    from sim.footprint import check_footprint

    check_footprint(configs.values(), str(config_path))  # before a MemoryError or the OOM killer
    first = next(iter(configs.values()))
    out_dir = Path(out) if out is not None else Path("results") / first.name
    base_seed = first.seed if seed is None else seed
    n_seeds = seeds or first.seeds
    tasks = [(variant, config, base_seed + k)
             for variant, config in configs.items() for k in range(n_seeds)]
    # The output is checked and locked before the first run, and stays as it was
    # until the new result is complete.
    with RunDirectory(out_dir) as run_dir:
        if progress is not None:
            progress.begin([(v, s, c.duration) for v, c, s in tasks])
        results = _run_all(tasks, jobs, progress)
        path = run_dir.path
        resolved = {"fragsim_version": __version__,
                    "seeds": [base_seed + k for k in range(n_seeds)],
                    "variants": {v: _config_dict(c) for v, c in configs.items()}}
        write_atomic(path / "config.yaml", yaml.safe_dump(resolved, sort_keys=False))
        write_timeseries(path / "timeseries.csv", results)
        by_variant: dict[str, list[dict]] = {}
        for r in results:
            by_variant.setdefault(r.variant, []).append(r.summary)
        write_json(path / "summary.json", {
            "fragsim_version": __version__,
            "name": first.name,
            "complete": True,
            "variants": {v: {"runs": runs, **aggregate(runs)} for v, runs in by_variant.items()},
        })
        # final/ and the memory maps come from each variant's first seed.
        firsts: dict[str, Result] = {}
        for r in results:
            firsts.setdefault(r.variant, r)
        (path / "memmap").mkdir()
        for i, (variant, r) in enumerate(firsts.items()):
            sub = path / "final" if len(firsts) == 1 else path / "final" / variant
            for name, text in r.final.items():
                write_atomic(sub / name, text)
            if i == 0:
                np.savez_compressed(path / "memmap" / "start.npz", **r.memmap["start"])
            end = "end" if len(firsts) == 1 else f"end-{variant}"
            np.savez_compressed(path / "memmap" / f"{end}.npz", **r.memmap["end"])
        if plots:
            _plot_kept(path)
    return out_dir


def _plot_kept(path: Path) -> None:
    """The plots of a run directory; a plot that fails says so on stderr and leaves the
    results (written already) in place: ``fragsim plot DIR`` redraws them."""
    from sim.plots import plot_run

    try:
        plot_run(path)
    except Exception as err:  # a plotting bug must not cost the run's results
        print(f"fragsim: warning: {path}: drawing the plots failed ({type(err).__name__}: "
              f"{err}); the results are kept, and `fragsim plot` redraws them",
              file=sys.stderr)


def _run_all(tasks: list[tuple[str, ExperimentConfig, int]], jobs: int,
             progress: Progress | None) -> list[Result]:
    """Run the tasks in order in this process, or ``jobs`` at a time in a sweep's local
    process pool (sim/executors.py: its workers die with this process). In the pool, a
    run reports its progress when it ends."""
    if jobs <= 1 or len(tasks) <= 1:
        results = []
        for i, (variant, config, seed) in enumerate(tasks):
            update = functools.partial(progress.update, i) if progress is not None else None
            results.append(run_machine(config, seed, variant, update))
        return results
    from sim.executors import open_executor

    done: list[Result | None] = [None] * len(tasks)
    with open_executor("local", min(jobs, len(tasks))) as pool:
        for i, result, error in pool.map_unordered(_run_task, tasks):
            if error is not None:
                raise error
            done[i] = result
            if progress is not None:
                progress.update(i, math.inf)
    return [r for r in done if r is not None]


def _run_task(task: tuple[str, ExperimentConfig, int]) -> Result:
    variant, config, seed = task
    return run_machine(config, seed, variant)


def _config_dict(config: ExperimentConfig) -> dict:
    return yaml.safe_load(to_yaml(config))


def validate(config_path: str | Path, overrides: list[str] | None = None) -> str:
    """The resolved config (every variant) as YAML that ``fragsim run`` reads back: the
    config itself without variants, else ``variants:`` of full configs, as a run's
    config.yaml records them (which adds the seeds run)."""
    configs = resolve_variants(config_path, overrides or [])
    head = yaml.safe_dump({"fragsim_version": __version__}, sort_keys=False)
    if list(configs) == ["default"]:
        return head + to_yaml(configs["default"])
    return head + yaml.safe_dump({"variants": {v: _config_dict(c) for v, c in configs.items()}},
                                 sort_keys=False)


__all__ = ["run", "run_experiment", "run_machine", "validate", "load_config"]


# ------------------------------------------------------------------ trace replay


def run_replay(
    trace: str | Path,
    *,
    slabinfo: str | Path | None = None,
    buddyinfo: str | Path | None = None,
    pagetypeinfo: str | Path | None = None,
    zoneinfo: str | Path | None = None,
    overrides: list[str] | None = None,
    out: str | Path | None = None,
    speed: float = 1.0,
    samples: int = 100,
    plots: bool = True,
    max_failures: int | None = None,
) -> tuple[Path, dict[str, Any]]:
    """Replay an ftrace kmem trace from /proc snapshots and write a run directory.

    ``--set`` overrides take the experiment schema's ``defrag.*`` and
    ``caches.NAME.mobility`` keys: with ``defrag.enabled=true`` one defragmentation pass
    runs after the trace, on the state the trace left, to show what it would have done
    (free mode as the historical patches; ``move`` as the what-if); pending RCU frees
    are applied first. ``machine.memory`` sizes the zone. Any other key, a defrag key
    the single pass has no use for, a mobility without ``defrag.enabled=true`` or for a
    cache neither the slabinfo nor the trace has, is a one-line error
    (:func:`validate_config_for_replay`). A trace that ends early (truncated file) still
    writes results, with ``complete: false`` in summary.json; its bad lines are counted
    in ``trace.bad_lines`` / ``bad_lines_by_kind``, the first ten in ``first_bad_lines``.
    Allocations the simulated machine could not serve are in ``trace.alloc_failures``
    (by kind, and the first with its trace line and the zone's state); ``max_failures``,
    the CLI's threshold for its exit status, is only recorded in config.yaml.
    """
    import simpy

    from sim.defrag import Defragmenter
    from sim.ftrace import TraceReader
    from sim.metrics import SampleRow, node_sample, zone_sample
    from sim.replay import ReplayResult, build_replay

    config = validate_config_for_replay(overrides or [])
    # machine.memory sizes the zone (else buddyinfo's or zoneinfo's size, or 1 GiB).
    memory_set = any(o.partition("=")[0].strip() == "machine.memory" for o in overrides or [])
    nr_pages = config.machine.memory // config.machine.page_size if memory_set else None
    setup = build_replay(slabinfo=slabinfo, buddyinfo=buddyinfo, pagetypeinfo=pagetypeinfo,
                         zoneinfo=zoneinfo, speed=speed, nr_pages=nr_pages)
    reader = TraceReader(trace)
    replayer = setup.replayer
    recorder = Recorder()
    started = time.perf_counter()
    replayer.feed(reader)
    first = replayer.next_time()
    t = first if first is not None else 0.0
    # The span is known only at the end of a stream: sample on a grid of a millisecond
    # of trace time, and each time ``2 * samples`` are kept, drop every other one and
    # double the grid's step. A trace of any length ends with ``samples`` to
    # ``2 * samples`` evenly spaced samples, the last the first after its end, and takes
    # about ``samples`` more per doubling (a grid point with no event since the one
    # before reuses its values).
    step = 1e-3
    keep = 2 * max(samples, 1)
    zones = setup.zones

    def take() -> SampleRow:
        """The zones' (node_sample or zone_sample) and the slab caches' values."""
        row = SampleRow()
        if len(zones) > 1:
            node_sample(row, zones)
        else:
            zone_sample(row, zones[0][1])
        setup.caches.sample(row)
        return row

    values: SampleRow | None = None
    # The replay and its samples make no reference cycles, and with the collector on a
    # sample's first allocations would start a collection of every object the events
    # before it made (half the sampling time): it stays off until the trace ends.
    gc_was_enabled = gc.isenabled()
    gc.disable()
    try:
        while True:
            if values is None:
                values = take()
            if len(recorder.times) >= keep:
                recorder.decimate()
                step *= 2
            recorder.sample_row(t, values.keys, values.values)
            if replayer.next_time() is None:
                break
            t += step
            if replayer.events_until(t):
                values = None
    finally:
        if gc_was_enabled:
            gc.enable()
    replayer.advance(replayer.now)
    wall = time.perf_counter() - started
    result = ReplayResult(setup.zone, setup.caches, replayer, setup.population,
                          reader.stats, wall, setup.setup_s)
    summary = result.summary()
    summary["realtime_factor"] = result.realtime_factor
    summary["complete"] = bool(reader.stats.complete)
    if config.defrag.enabled:
        env = simpy.Environment(initial_time=replayer.now)
        defrag = Defragmenter(env, setup.caches, config=config.defrag)
        for name, spec in config.caches.items():
            if spec.mobility == "none":
                continue
            if name not in setup.caches:
                from sim.errors import FragsimError

                known = ", ".join(sorted(c.name for c in setup.caches)[:5])
                raise FragsimError(
                    f"--set caches.{name}.mobility={spec.mobility}: caches.{name}: expected a "
                    f"cache of the slabinfo or the trace ({known}, ...), got {name!r}")
            defrag.set_mobility(name, spec.mobility)
        setup.caches.rcu_advance(math.inf)  # the RCU tail the trace did not see
        env.process(defrag.run_pass("after the trace"))
        env.run()
        setup.caches.rcu_advance(math.inf)
        summary["defrag"] = defrag.report()  # the layout of a run's defrag section
        if defrag.notes:
            summary["notes"] = list(dict.fromkeys(defrag.notes))
        values = take()
        recorder.sample_row(env.now, values.keys, values.values)
    final = setup.caches.report()  # a run's keys: the state at the end
    for name, entry in summary["caches"].items():
        if name in final:
            entry["num_slabs_final"] = final[name]["num_slabs"]
            entry["active_objs_final"] = final[name]["active_objs"]
            for key in ("num_slabs", "pages", "slabs_freed"):
                entry.setdefault(key, final[name][key])
    nr_free = [sum(z.nr_free[o] for _, z in zones) for o in range(zones[0][1].max_order + 1)]
    buddy = buddy_report(zones)
    summary = {"variant": "replay", "seed": 0, **summary,
               "avail": {str(o): metrics.avail(nr_free, o) for o in range(len(nr_free))},
               "buddy": buddy}
    out_dir = Path(out) if out is not None else Path("results") / f"replay-{Path(trace).name}"
    series = Result("replay", 0, np.asarray(recorder.times), recorder.series())
    with RunDirectory(out_dir) as run_dir:
        path = run_dir.path
        write_atomic(path / "config.yaml", yaml.safe_dump({
            "fragsim_version": __version__, "trace": str(trace), "slabinfo": _s(slabinfo),
            "buddyinfo": _s(buddyinfo), "pagetypeinfo": _s(pagetypeinfo),
            "zoneinfo": _s(zoneinfo), "speed": speed, "overrides": list(overrides or []),
            "max_failures": max_failures,
            "defrag": config.defrag.model_dump(mode="json"),
            "caches": {k: v.model_dump(mode="json") for k, v in config.caches.items()},
        }, sort_keys=False))
        write_timeseries(path / "timeseries.csv", [series])
        # The layout of a run's summary.json: one variant ("replay"), one run.
        write_json(path / "summary.json", {
            "fragsim_version": __version__, "name": out_dir.name, "kind": "replay",
            "complete": summary["complete"],
            "variants": {"replay": {"runs": [summary], **aggregate([summary])}},
        })
        write_atomic(path / "final" / "buddyinfo",
                     format_buddyinfo([buddyinfo_of(z, name=n) for n, z in zones]))
        write_atomic(path / "final" / "pagetypeinfo",
                     format_pagetypeinfo(pagetypeinfo_of_zones(zones)))
        write_atomic(path / "final" / "slabinfo", setup.caches.format_slabinfo())
        if plots:
            _plot_kept(path)
    return out_dir, summary


def _s(path: str | Path | None) -> str | None:
    return None if path is None else str(path)


# The defrag keys run_replay passes to its pass after the trace (the triggers, interval,
# at, on_failure and after_shrink, have no meaning there).
REPLAY_DEFRAG_KEYS = ("enabled", "used_ratio", "max_partial", "max_slabs_per_pass",
                      "pinned_policy", "rcu_wait", "batch", "cost_get", "cost_free",
                      "cost_move")


def validate_config_for_replay(overrides: list[str]) -> ExperimentConfig:
    """The settings a replay takes, from ``--set`` overrides: ``machine.memory`` (the
    zone's size), the ``defrag.*`` keys of REPLAY_DEFRAG_KEYS and
    ``caches.NAME.mobility`` (with ``defrag.enabled=true``). Any other key is refused
    with a one-line error naming it, never ignored."""
    from sim.config import parse_override
    from sim.errors import FragsimError
    from sim.experiment import validate_for_replay

    mobility = []
    for text in overrides:
        path, _ = parse_override(text)
        key = ".".join(path)
        if (path == ["machine", "memory"]
                or (len(path) == 2 and path[0] == "defrag" and path[1] in REPLAY_DEFRAG_KEYS)):
            continue
        if len(path) == 3 and path[0] == "caches" and path[2] == "mobility":
            mobility.append((text, path[1]))
            continue
        raise FragsimError(
            f"--set {text}: {key}: expected a key fragsim replay applies (machine.memory, "
            f"defrag.{{{','.join(REPLAY_DEFRAG_KEYS)}}}, caches.NAME.mobility), got {key!r}")
    config = validate_for_replay(overrides)
    if not config.defrag.enabled:
        for text, name in mobility:
            if config.caches[name].mobility != "none":
                raise FragsimError(
                    f"--set {text}: caches.{name}.mobility: expected --set "
                    "defrag.enabled=true with it (the replay applies mobility in one "
                    "defragmentation pass after the trace), got defrag.enabled=false")
    return config
