"""The engine end to end: example configs, determinism, the sampler, kswapd and
kcompactd thresholds, the tmpfs capture, bad input and the Python API.

Runs use small memories and short durations (``--set``) so the file stays fast.
"""

from __future__ import annotations

import csv
import errno
import json
import math
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest
import yaml
from proc_helpers import children, kill_survivors, survivors

import sim
import sim.runner
from sim import metrics
from sim.buddy import WMARK_HIGH, WMARK_LOW
from sim.cli import main
from sim.experiment import load_config
from sim.machine import Machine
from sim.procfs import parse_buddyinfo, parse_pagetypeinfo, parse_slabinfo
from sim.results import TIMESERIES_COLUMNS, TIMING_KEYS, Result
from sim.runner import build_workloads, run_experiment, run_machine

ROOT = Path(__file__).resolve().parent.parent
CONFIGS = sorted((ROOT / "configs").glob("*.yaml"))
TMPFS_CAPTURE = ROOT / "tests/data/kmem-traces/tmpfs-churn-20k-keep10"

# Per config: overrides that keep its end-to-end run to a second or two. A config not
# listed here runs with DEFAULT_SHORT.
DEFAULT_SHORT = ["duration=1s"]
SHORT = {
    "quickstart": ["duration=2s", "machine.memory=128MiB"],
    "tmpfs_churn": ["duration=1s"],
    "file_server": ["duration=2s", "machine.memory=256MiB"],
    "mixed_pollution": ["duration=2s", "machine.memory=256MiB"],
    "gupta": ["duration=5s", "machine.memory=256MiB"],
    "slab_pollution": ["duration=2500ms", "machine.memory=64MiB"],
    "bench": ["duration=1s", "machine.memory=1GiB"],
    "bench64": ["duration=1s", "machine.memory=1GiB"],
}
# Summary fields that measure the host, not the simulation.
HOST_FIELDS = set(TIMING_KEYS)


def _cli_run(config: Path | str, out: Path, overrides: list[str], *extra: str) -> int:
    argv = ["run", str(config), "--out", str(out), "--seeds", "1"]
    for item in overrides:
        argv += ["--set", item]
    return main(argv + list(extra))


def _write(path: Path, text: str) -> Path:
    path.write_text(textwrap.dedent(text))
    return path


def _without_host_fields(value):
    if isinstance(value, dict):
        return {k: _without_host_fields(v) for k, v in value.items() if k not in HOST_FIELDS}
    if isinstance(value, list):
        return [_without_host_fields(v) for v in value]
    return value


@pytest.fixture
def machines(monkeypatch):
    """Every Machine the runner builds, for a look at its final state."""
    made: list[Machine] = []

    class Recorded(Machine):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            made.append(self)

    monkeypatch.setattr(sim.runner, "Machine", Recorded)
    return made


def _machine(config_text: str, tmp_path: Path, overrides=(), variant=None) -> Machine:
    """A started Machine (not yet run) for a config."""
    config = load_config(_write(tmp_path / "m.yaml", config_text), list(overrides), variant)
    machine = Machine(config, config.seed)
    machine.start(build_workloads(machine))
    return machine


# ------------------------------------------------------------------ example configs


def test_there_are_example_configs_for_every_documented_scenario():
    names = {path.stem for path in CONFIGS}
    assert {"quickstart", "tmpfs_churn", "file_server", "mixed_pollution", "gupta",
            "bench"} <= names


@pytest.mark.parametrize("config", CONFIGS, ids=lambda path: path.stem)
def test_every_example_config_runs_end_to_end_and_writes_a_complete_run_directory(
        config, tmp_path, capsys):
    out = tmp_path / "run"
    overrides = SHORT.get(config.stem, DEFAULT_SHORT)
    plots = config.stem == "quickstart"
    status = _cli_run(config, out, overrides, *([] if plots else ["--no-plots"]))
    captured = capsys.readouterr()
    assert status == 0, captured.err
    assert f"results in {out}/" in captured.out

    resolved = yaml.safe_load((out / "config.yaml").read_text())
    assert resolved["fragsim_version"] == sim.__version__
    assert resolved["seeds"] == [yaml.safe_load(config.read_text()).get("seed", 1)]
    variants = list(resolved["variants"])
    duration = resolved["variants"][variants[0]]["duration"]

    summary = json.loads((out / "summary.json").read_text())
    assert summary["complete"] is True
    assert list(summary["variants"]) == variants
    for data in summary["variants"].values():
        (run,) = data["runs"]
        assert run["sim_time_s"] == pytest.approx(duration)
        assert run["events"] > 0
        assert run["alloc_ops"] > 0
        assert len(run["avail"]) == 11
        for key in ("wall_s", "ops_per_s", "slab_ops", "peak_rss_bytes", "avail9_time_avg",
                    "thp_success_rate", "compaction", "defrag", "shrinker", "evictions"):
            assert key in run

    with open(out / "timeseries.csv", newline="") as f:
        rows = list(csv.reader(f))
    assert tuple(rows[0]) == TIMESERIES_COLUMNS
    assert {row[1] for row in rows[1:]} == set(variants)
    assert max(float(row[0]) for row in rows[1:]) == pytest.approx(duration)

    for variant in variants:
        final = out / "final" if len(variants) == 1 else out / "final" / variant
        zones = parse_buddyinfo((final / "buddyinfo").read_text(), "buddyinfo")
        run = summary["variants"][variant]["runs"][0]
        # summary.json's avail is the node's: every zone's free blocks summed
        nr_free = [sum(z.nr_free[o] for z in zones) for o in range(11)]
        assert [metrics.avail(nr_free, o) for o in range(11)] == \
            [run["avail"][str(o)] for o in range(11)]
        info = parse_pagetypeinfo((final / "pagetypeinfo").read_text(), "pagetypeinfo")
        assert info.pageblock_order == 9
        caches = {e.name: e for e in parse_slabinfo((final / "slabinfo").read_text())}
        for name, cache in run["caches"].items():
            assert caches[name].num_slabs == cache["num_slabs"]
    if plots:
        assert sorted(out.glob("*.png"))
    assert not list(tmp_path.glob(".run.*"))


def test_bench_config_does_at_least_5m_buddy_operations_at_full_length():
    # Too slow to run here (about 20 s); its header records a measured run. What is
    # checked is that nobody shortened it below the benchmark's definition.
    config = load_config(ROOT / "configs/bench.yaml")
    assert config.machine.memory == 16 << 30
    assert config.duration >= 30


# ------------------------------------------------------------------ determinism


def test_same_config_and_seed_give_identical_results_and_another_seed_does_not(tmp_path):
    quickstart = ROOT / "configs/quickstart.yaml"
    short = ["duration=1s", "machine.memory=128MiB"]
    outs = []
    for name, seed in (("a", "1"), ("b", "1"), ("c", "2")):
        out = tmp_path / name
        assert _cli_run(quickstart, out, short, "--seed", seed, "--no-plots") == 0
        outs.append(out)
    a, b, c = outs
    assert (a / "timeseries.csv").read_bytes() == (b / "timeseries.csv").read_bytes()
    summary_a = json.loads((a / "summary.json").read_text())
    summary_b = json.loads((b / "summary.json").read_text())
    assert _without_host_fields(summary_a) == _without_host_fields(summary_b)
    for path in sorted((a / "final").rglob("*")):
        if path.is_file():
            assert path.read_text() == (b / "final" / path.relative_to(a / "final")).read_text()

    def values(out):  # the seed column differs by construction; compare the rest
        with open(out / "timeseries.csv", newline="") as f:
            return [(r[0], r[1], r[3], r[4], r[5]) for r in csv.reader(f)][1:]

    assert values(a) != values(c)
    summary_c = json.loads((c / "summary.json").read_text())
    runs_a = summary_a["variants"]["defrag-on"]["runs"][0]
    runs_c = summary_c["variants"]["defrag-on"]["runs"][0]
    assert runs_a["alloc_ops"] != runs_c["alloc_ops"]


# ------------------------------------------------------------------ the sampler


def test_sampler_final_row_agrees_with_metrics_on_the_final_zone(tmp_path, machines):
    config = load_config(ROOT / "configs/gupta.yaml",
                         ["duration=5s", "machine.memory=128MiB"], "kernel-run")
    result = run_machine(config, 1, "kernel-run")
    (machine,) = machines
    zone = machine.zone
    nr_free = list(zone.nr_free)
    assert result.times[-1] == pytest.approx(5.0)
    assert sum(nr_free) > 0 and metrics.unusable_index(nr_free, 9) > 0  # not a trivial zone
    for order in range(zone.max_order + 1):
        key = str(order)
        assert result.get("nr_free", key)[-1] == nr_free[order]
        assert result.get("avail", key)[-1] == metrics.avail(nr_free, order)
        assert result.get("unusable_index", key)[-1] == metrics.unusable_index(nr_free, order)
        assert result.summary["avail"][key] == metrics.avail(nr_free, order)
    assert result.get("fragmentation_index", "9")[-1] == metrics.fragmentation_index(nr_free, 9)
    assert result.get("fragmentation_score")[-1] == metrics.extfrag_for_order(nr_free, 9)
    assert result.get("free_pages")[-1] == zone.nr_free_pages == metrics.free_pages(nr_free)
    (parsed,) = parse_buddyinfo(result.final["buddyinfo"])
    assert list(parsed.nr_free) == nr_free
    stats = metrics.pageblock_stats(zone)
    assert result.get("mixed_pageblocks")[-1] == metrics.mixed_pageblocks(
        stats.migratetype, stats.nonmovable_pages)


def test_time_averaged_avail9_is_the_trapezoid_mean_of_the_sampled_series(tmp_path):
    config = load_config(ROOT / "configs/gupta.yaml",
                         ["duration=5s", "machine.memory=128MiB"], "kernel-run")
    result = run_machine(config, 1, "kernel-run")
    series = result.get("avail", "9")
    expected = np.trapezoid(series, result.times) / (result.times[-1] - result.times[0])
    assert result.summary["avail9_time_avg"] == pytest.approx(expected)
    assert series.min() < result.summary["avail9_time_avg"] < series.max()


def test_mixed_pageblocks_counts_polluted_blocks_when_grouping_is_off(tmp_path):
    machine = _machine("""
        machine: {memory: 64MiB, zones: [Normal]}
        buddy: {grouping_by_mobility: false}
        workloads:
          - {kind: anon, size: 32MiB, churn_rate: 4MiB}
          - {kind: kernel_alloc, rate: 500, lifetime: {dist: forever}}
        """, tmp_path)
    machine.env.run(until=2.0)
    stats = metrics.pageblock_stats(machine.zone)
    polluted = int(np.count_nonzero((stats.nonmovable_pages > 0) & (stats.movable_pages > 0)))
    assert polluted > 0
    assert set(stats.migratetype.tolist()) == {0}  # all UNMOVABLE-typed: one list per order
    mixed = machine.pageblock_snapshot()[("mixed_pageblocks", "")]
    assert mixed == int(np.count_nonzero(stats.nonmovable_pages > 0)) >= polluted


# ------------------------------------------------------------------ kswapd


# A full, fragmented zone: half of each pair of movable pages freed, the holes then
# filled by page cache, and unmovable kernel pages that must fall back into movable
# pageblocks (boosting the watermarks) once the few free pageblocks are claimed.
KSWAPD_CONFIG = """
    seed: 3
    machine: {memory: 128MiB, cpus: 2, zones: [Normal]}
    workloads:
      - {kind: fragment, fill: 0.95, keep_one_in: 2, free_at: 500ms}
      - {kind: page_cache, start: 1s, rate: 64MiB, reread: 0.2, large_folios: false}
      - {kind: kernel_alloc, start: 1500ms, rate: 1000, orders: {0: 1},
         lifetime: {dist: forever}}
    """
# (large_folios: false keeps every allocation at order 0, which the test below assumes:
# a high-order request also wakes kswapd above the low watermark when no block of its
# order is free.)


def test_kswapd_wakes_below_low_reclaims_below_high_plus_boost_and_stops_there(tmp_path):
    machine = _machine(KSWAPD_CONFIG, tmp_path)
    zone = machine.zone
    kswapd = machine.kswapd
    reclaim = machine.reclaim
    wakes, rounds, ends, compactd_wakes = [], [], [], []
    wakeup, wakeup_kcompactd = kswapd.wakeup, machine.kcompactd.wakeup

    def recording_wakeup(order=0, direct_reclaim=False):
        wakes.append((zone.nr_free_pages, zone.wmark_pages(WMARK_LOW), zone.watermark_boost))
        wakeup(order, direct_reclaim)

    begin, step = kswapd._begin_balance, kswapd._step
    run = {"boost": 0, "rounds": 0}

    def recording_begin(now):
        """kswapd starts balance_pgdat: the boost it starts with."""
        run["boost"], run["rounds"] = zone.watermark_boost, 0
        begin(now)

    def recording_step():
        """One step of balance_pgdat (by kswapd's process, or beside a direct
        compaction), recording the zone before each kswapd_shrink_node round, and at
        the end of the run."""
        boost = run["boost"]
        state = (zone.nr_free_pages, zone.wmark_pages(WMARK_HIGH), boost)
        began = reclaim.stats.kswapd_rounds
        cost = step()
        if kswapd._done is not None:
            ends.append((reclaim.pgdat_balanced(), run["rounds"], zone.nr_free_pages,
                         zone.wmark_pages(WMARK_HIGH), boost))
        elif reclaim.stats.kswapd_rounds != began:
            rounds.append(state)
            run["rounds"] += 1
        return cost

    def recording_wakeup_kcompactd(order):
        compactd_wakes.append((order, zone.watermark_boost, machine.kswapd.running))
        wakeup_kcompactd(order)

    kswapd.wakeup = zone.on_wakeup_kswapd = recording_wakeup
    machine.page_alloc.wakeup_kswapd = recording_wakeup
    kswapd._begin_balance = recording_begin
    kswapd._step = recording_step
    kswapd.wakeup_kcompactd = reclaim.on_wakeup_kcompactd = recording_wakeup_kcompactd
    machine.env.run(until=5.0)

    stats = machine.reclaim.stats
    assert kswapd.stats.runs >= 10 and len(ends) >= kswapd.stats.runs - 1
    assert stats.kswapd_reclaimed > 0
    assert zone.stats.watermark_boosts > 0
    # Woken only by an allocation that found the zone below its low watermark (which
    # includes the boost), or by a fallback that boosted the watermarks.
    assert wakes
    assert all(free <= low or boost for free, low, boost in wakes)
    # Reclaims only while not above high + boost (__zone_watermark_ok wants free > mark),
    # unless the run started boosted: boosted reclaim goes on above it.
    assert rounds and all(free <= high or boost for free, high, boost in rounds)
    # An unboosted run that ends balanced stopped at the first check that found the
    # zone above high (all these allocations are order 0).
    balanced_ends = [e for e in ends if e[0]]
    assert balanced_ends
    assert all(free > high for _, _, free, high, _ in balanced_ends)
    assert any(boost > 0 and n for _, n, _, _, boost in balanced_ends), \
        "no run reclaimed a boost"
    # After a boosted run balance_pgdat takes off the boost it started with and wakes
    # kcompactd at pageblock order, while kswapd still runs.
    boosted_ends = [w for w in compactd_wakes if w[0] == zone.pageblock_order]
    assert boosted_ends and all(running for _, _, running in boosted_ends)


# ------------------------------------------------------------------ kcompactd


def test_proactive_compaction_starts_above_wmark_high_and_stops_at_wmark_low(tmp_path):
    machine = _machine("""
        machine: {memory: 256MiB, cpus: 2, zones: [Normal]}
        workloads:
          - {kind: fragment, cpu: 1, fill: 0.95, keep_one_in: 4, free_at: 1s}
        """, tmp_path)
    compactor = machine.compactor
    wmark_low = compactor.fragmentation_score_wmark(True)
    wmark_high = compactor.fragmentation_score_wmark(False)
    assert (wmark_low, wmark_high) == (80, 90)  # proactiveness 20 in 6.18
    steps = []

    class Recording:
        """kcompactd's compactor, recording each proactive step (the compiled Compactor
        cannot be patched: kcompactd is handed this instead, before it first runs)."""

        def __getattr__(self, name):
            return getattr(compactor, name)

        def proactive_compact(self, cpu=0):
            before = compactor.fragmentation_score_node()
            step = compactor.proactive_compact(cpu)
            steps.append((before, step))
            return step

    machine.kcompactd.compactor = Recording()
    machine.env.run(until=0.9)
    assert steps and not any(step.ran for _, step in steps)  # filled, not yet fragmented
    assert compactor.stats.proactive_runs == 0
    machine.env.run(until=4.0)
    ran = [(before, step) for before, step in steps if step.ran]
    assert ran, "the freed zone should have been compacted proactively"
    for before, step in steps:
        assert step.ran == (before > wmark_high)
    for before, step in ran:
        assert step.score_before == before > wmark_high
        assert wmark_low - 5 <= step.score_after <= wmark_low
    assert compactor.stats.migrated > 0


# ------------------------------------------------------------------ fs_churn vs the capture


def _slabs(path: Path) -> dict[str, int]:
    return {e.name: e.num_slabs for e in parse_slabinfo(path.read_text(), str(path))}


def test_fs_churn_with_the_captures_parameters_grows_the_slabs_as_the_real_kernel_did(
        machines):
    before = _slabs(TMPFS_CAPTURE / "before.slabinfo")
    after = _slabs(TMPFS_CAPTURE / "after.slabinfo")
    real = {name: after[name] - before[name] for name in ("shmem_inode_cache", "dentry")}
    assert real == {"shmem_inode_cache": 922, "dentry": 921}
    result = sim.runner.run(ROOT / "configs/tmpfs_churn.yaml", variant="baseline")
    (machine,) = machines
    for name, growth in real.items():
        simulated = result.summary["caches"][name]["num_slabs"]  # the model starts empty
        assert abs(simulated - growth) <= 0.2 * growth, (name, simulated, growth)
    (churn,) = result.summary["workloads"].values()
    assert churn["live_files"] == 2000 and churn["live_dirs"] == 200  # keep 10 %, 100-file dirs
    live = churn["live_files"] + churn["live_dirs"]
    assert machine.caches["dentry"].nr_live == live
    assert machine.caches["shmem_inode_cache"].nr_live == live
    assert all(cache.nr_rcu_pending == 0 for cache in machine.caches)


def test_fs_churn_waves_on_one_file_system_type_share_its_super_block(tmp_path):
    machine = _machine("""
        machine: {memory: 128MiB}
        workloads:
          - {kind: fs_churn, fs: disk, files: 2000, keep: 0.5}
          - {kind: fs_churn, fs: disk, files: 1000, keep: 0.2, start: 500ms}
          - {kind: fs_churn, fs: tmpfs, files: 500, keep: 1.0}
        """, tmp_path)
    machine.env.run(until=2.0)
    assert sorted(fs.fs for fs in machine.filesystems) == ["disk", "tmpfs"]
    first, second, tmpfs = machine.workloads
    assert first.fsys is second.fsys
    assert (first.summary()["live_files"], second.summary()["live_files"]) == (1000, 200)
    assert tmpfs.summary()["live_files"] == 500
    # Once a wave has unlinked its share it holds only the files it kept (a week of
    # waves would otherwise hold every file it ever made), and they are the live ones.
    for wave, kept in ((first, 1000), (second, 200), (tmpfs, 500)):
        assert len(wave.files) == kept
        assert all(wave.fsys.files[fid].linked for fid in wave.files)


# ------------------------------------------------------------------ the fragmenter


@pytest.mark.parametrize("keep, slot", [("first", 0), ("last", 3)])
def test_fragment_keeps_the_chosen_page_of_each_k(tmp_path, keep, slot):
    machine = _machine(f"""
        machine: {{memory: 32MiB}}
        workloads:
          - {{kind: fragment, fill: 0.5, keep_one_in: 4, keep: {keep}, free_at: 500ms}}
        """, tmp_path)
    machine.env.run(until=1.0)
    (fragment,) = machine.workloads
    allocated = len(fragment.handles)
    assert fragment.freed == allocated - len(range(slot, allocated, 4))
    kept = [machine.zone.is_allocated(pfn) for pfn in fragment.handles]
    assert kept == [i % 4 == slot for i in range(allocated)]


def test_keeping_the_first_page_of_each_4_starves_manual_compaction_and_the_last_does_not(
        tmp_path):
    after = {}
    for keep in ("first", "last"):
        result = run_machine(load_config(ROOT / "configs/gupta.yaml", [
            "duration=5s", "machine.memory=256MiB", f"workloads.0.keep={keep}"],
            "kernel-run"), 1, keep)
        (run,) = result.summary["workloads"]["compact_memory-1"]["runs"]
        assert run["unusable_index9_before"] > 800
        after[keep] = (run["avail9_after"] - run["avail9_before"],
                       result.summary["compaction"]["migrated"])
    assert after["first"][1] < after["last"][1] / 10
    assert after["last"][0] > 5 * max(after["first"][0], 1)


# ------------------------------------------------------------------ bad input


BAD_CONFIGS = {
    "bad key": ("machine: {memroy: 1GiB}",
                "machine.memroy: unknown key; did you mean 'memory'?"),
    "out of range": ("defrag: {used_ratio: 130}",
                     "defrag.used_ratio: expected a number from 0 to 100, got 130"),
    "bad workload kind": ("workloads: [{kind: slab_chrun, cache: dentry}]",
                          "workloads.0.kind: expected one of slab_churn"),
    "bad unit": ("duration: 10 parsecs",
                 "duration: expected a time unit of ns, us"),
    "bad size unit": ("workloads: [{kind: anon, size: 12 bananas}]",
                      "workloads.0.size: expected a size unit of B, KiB"),
}


@pytest.mark.parametrize("case", BAD_CONFIGS)
def test_a_bad_config_gives_one_line_on_stderr_exit_2_and_no_results(case, tmp_path, capsys):
    body, message = BAD_CONFIGS[case]
    config = _write(tmp_path / "bad.yaml", f"name: bad\n{body}\n")
    out = tmp_path / "out"
    assert main(["run", str(config), "--out", str(out), "--no-plots"]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.count("\n") == 1
    assert captured.err.startswith(f"fragsim: error: {config}: {message}")
    assert "Traceback" not in captured.err
    assert not out.exists()


def test_a_bad_override_names_the_set_option(tmp_path, capsys):
    out = tmp_path / "out"
    status = main(["run", str(ROOT / "configs/quickstart.yaml"), "--out", str(out),
                   "--set", "defrag.used_ratio=130"])
    err = capsys.readouterr().err
    assert status == 2
    assert err == ("fragsim: error: --set defrag.used_ratio=130: defrag.used_ratio: "
                   "expected a number from 0 to 100, got 130\n")
    assert not out.exists()


PLUGIN = '''
from workloads.base import Workload, WorkloadParams
from sim.units import Duration


class Boom(Workload):
    kind = "boom"

    class Params(WorkloadParams):
        at: Duration = 0.25

    def run(self):
        yield self.env.timeout(self.params.at)
        raise RuntimeError("disk on fire")


class CtrlC(Workload):
    kind = "ctrl_c"

    def run(self):
        yield self.env.timeout(0.25)
        raise KeyboardInterrupt
'''


@pytest.fixture
def plugin(tmp_path, monkeypatch):
    """A user's workload module, importable as ``engine_plugin``."""
    directory = tmp_path / "plugin"
    directory.mkdir()
    (directory / "engine_plugin.py").write_text(PLUGIN)
    monkeypatch.syspath_prepend(str(directory))
    monkeypatch.delitem(sys.modules, "engine_plugin", raising=False)
    return "engine_plugin"


SMALL = """
    name: small
    duration: 1s
    sample_every: 100ms
    machine: {memory: 32MiB}
    workloads:
      - {kind: anon, size: 8MiB}
    """


def test_a_workload_that_raises_is_reported_with_its_name_and_simulated_time(
        tmp_path, plugin, capsys):
    config = _write(tmp_path / "boom.yaml", SMALL + f"  - {{kind: '{plugin}:Boom', "
                    "name: flaky-disk, at: 300ms}\n")
    out = tmp_path / "out"
    assert main(["run", str(config), "--out", str(out), "--no-plots"]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert err.startswith("fragsim: error: workload flaky-disk (boom) failed at t=0.3 s: "
                          "RuntimeError: disk on fire")
    assert "Traceback" not in err
    assert not out.exists()


def _leftovers(out: Path) -> list[Path]:
    return [p for p in out.parent.iterdir() if p.name.startswith(f".{out.name}.")]


class _InterruptAt:
    """A progress listener that presses Ctrl-C at simulated time 0.5 s."""

    def begin(self, runs):
        self.runs = runs

    def update(self, index, t):
        if t >= 0.5:
            raise KeyboardInterrupt


def test_ctrl_c_from_the_progress_callback_leaves_no_results_directory(tmp_path):
    config = _write(tmp_path / "small.yaml", SMALL)
    out = tmp_path / "out"
    with pytest.raises(KeyboardInterrupt):
        run_experiment(config, out=out, progress=_InterruptAt(), plots=False)
    assert not out.exists()
    assert not _leftovers(out)


def _previous_run(tmp_path: Path) -> tuple[Path, Path, str]:
    """A complete small run: its config, its directory and its summary.json text."""
    config = _write(tmp_path / "small.yaml", SMALL)
    out = tmp_path / "out"
    run_experiment(config, out=out, plots=False)
    return config, out, (out / "summary.json").read_text()


def test_ctrl_c_in_a_workload_keeps_the_previous_complete_run_untouched(
        tmp_path, plugin, capsys):
    config, out, previous = _previous_run(tmp_path)
    interrupted = _write(tmp_path / "ctrl_c.yaml", SMALL + f"  - {{kind: '{plugin}:CtrlC'}}\n")
    assert main(["run", str(interrupted), "--out", str(out), "--no-plots"]) == 130
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("fragsim: error: interrupted:")
    assert (out / "summary.json").read_text() == previous
    assert not _leftovers(out)


def test_a_full_disk_names_the_path_exits_3_and_keeps_the_previous_run(
        tmp_path, monkeypatch, capsys):
    config, out, previous = _previous_run(tmp_path)

    def full(path, results):
        raise OSError(errno.ENOSPC, "No space left on device", str(path))

    monkeypatch.setattr(sim.runner, "write_timeseries", full)
    assert main(["run", str(config), "--out", str(out), "--no-plots"]) == 3
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "timeseries.csv: No space left on device" in err
    assert (out / "summary.json").read_text() == previous
    assert not _leftovers(out)


def test_jobs_2_gives_the_files_jobs_1_gives(tmp_path):
    config = _write(tmp_path / "two.yaml", SMALL + "seeds: 3\n    variants:\n"
                    "      a: {}\n      b: {machine: {memory: 48MiB}}\n")
    one, two = tmp_path / "one", tmp_path / "two"
    seen = []

    class Listener:
        def begin(self, runs):
            seen.append(runs)

        def update(self, index, t):
            seen.append((index, t))

    run_experiment(config, out=one, plots=False)
    run_experiment(config, out=two, plots=False, jobs=2, progress=Listener())
    assert (one / "timeseries.csv").read_bytes() == (two / "timeseries.csv").read_bytes()
    for name in ("buddyinfo", "slabinfo"):
        assert (one / "final/a" / name).read_text() == (two / "final/a" / name).read_text()
    summaries = [json.loads((d / "summary.json").read_text()) for d in (one, two)]
    for a, b in zip(*(s["variants"]["b"]["runs"] for s in summaries), strict=True):
        assert {k: v for k, v in a.items() if k not in HOST_FIELDS} == \
            {k: v for k, v in b.items() if k not in HOST_FIELDS}
    assert seen[0] == [("a", 1, 1.0), ("a", 2, 1.0), ("a", 3, 1.0),
                       ("b", 1, 1.0), ("b", 2, 1.0), ("b", 3, 1.0)]
    assert {index for index, t in seen[1:] if t == math.inf} == set(range(6))


def _parallel_run(tmp_path: Path) -> tuple[subprocess.Popen, dict[int, str]]:
    """``fragsim run --jobs 2`` of a long config in a child process, once its two
    workers have started: the process and the workers ({pid: start time})."""
    config = _write(tmp_path / "long.yaml", SMALL.replace("1s", "600s") + "seeds: 2\n")
    proc = subprocess.Popen([sys.executable, "-m", "sim", "run", str(config), "--out",
                             str(tmp_path / "out"), "--jobs", "2", "--no-plots"],
                            stderr=subprocess.PIPE, text=True)
    workers: dict[int, str] = {}
    deadline = time.monotonic() + 60
    while len(workers) < 2 and time.monotonic() < deadline:
        time.sleep(0.2)
        workers = children(proc.pid)
    assert len(workers) >= 2, "the pool did not start"
    return proc, workers


def test_sigterm_during_a_parallel_run_leaves_no_worker_and_no_partial_directory(tmp_path):
    out = tmp_path / "out"
    proc, workers = _parallel_run(tmp_path)
    try:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 143
        assert "fragsim: error: terminated" in proc.stderr.read()
        assert survivors(workers) == []
        assert not out.exists() and not _leftovers(out)
    finally:
        proc.kill()
        kill_survivors(workers)


def test_a_parallel_runs_workers_die_with_a_killed_parent(tmp_path):
    proc, workers = _parallel_run(tmp_path)
    try:
        proc.kill()
        proc.wait(timeout=30)
        assert survivors(workers, wait_s=10) == []
    finally:
        kill_survivors(workers)


def test_ctrl_c_while_writing_removes_the_partial_directory(tmp_path, monkeypatch):
    config = _write(tmp_path / "small.yaml", SMALL)
    out = tmp_path / "out"

    def interrupted(path, results):
        Path(path).write_text("time,variant\n0,")
        raise KeyboardInterrupt

    monkeypatch.setattr(sim.runner, "write_timeseries", interrupted)
    with pytest.raises(KeyboardInterrupt):
        run_experiment(config, out=out, plots=False)
    assert not out.exists()
    assert not _leftovers(out)


# ------------------------------------------------------------------ the Python API


def test_runner_run_returns_a_result_whose_csv_is_the_tidy_table(tmp_path):
    config = _write(tmp_path / "small.yaml", SMALL)
    result = sim.runner.run(config)
    assert isinstance(result, Result)
    assert (result.variant, result.seed) == ("default", 1)
    assert isinstance(result.times, np.ndarray) and result.times[-1] == pytest.approx(1.0)
    assert isinstance(result.get("avail", "9"), np.ndarray)
    text = result.to_csv()
    rows = list(csv.reader(text.splitlines()))
    assert tuple(rows[0]) == TIMESERIES_COLUMNS == (
        "time", "variant", "seed", "metric", "key", "value")
    assert len(rows) > 100
    assert {row[1] for row in rows[1:]} == {"default"}
    assert {row[3] for row in rows[1:]} >= {"avail", "nr_free", "unusable_index", "free_pages"}
    assert all(math.isfinite(float(row[5])) for row in rows[1:])
    written = tmp_path / "series.csv"
    assert result.to_csv(written) == written.read_text()


def test_sim_run_is_the_runner_without_importing_the_engine_up_front(tmp_path):
    code = ("import sys, sim; "
            "assert 'sim.runner' not in sys.modules and 'simpy' not in sys.modules; "
            "print(sim.run.__name__)")
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True,
                          text=True, check=False)
    assert done.returncode == 0, done.stderr
    config = _write(tmp_path / "small.yaml", SMALL)
    via_sim = sim.run(str(config), seed=4)
    via_runner = sim.runner.run(config, seed=4)
    assert via_sim.seed == 4
    assert via_sim.to_csv() == via_runner.to_csv()
    assert via_sim.summary["avail"] == via_runner.summary["avail"]


def test_sim_run_picks_a_variant_by_name():
    result = sim.run(ROOT / "configs/tmpfs_churn.yaml", variant="defrag-move",
                     seed=1)
    assert result.variant == "defrag-move"
    baseline = sim.run(ROOT / "configs/tmpfs_churn.yaml", seed=1)
    assert baseline.variant == "baseline"
    moved = result.summary["caches"]["dentry"]["num_slabs"]
    assert moved < baseline.summary["caches"]["dentry"]["num_slabs"] / 2


def test_slabs_a_move_pass_empties_after_the_rcu_grace_period_are_counted():
    # tmpfs churn, move what-if: the pass moves live objects out of sparse slabs; the
    # slabs empty only when RCU frees the old copies, after the pass has ended.
    from sim.experiment import load_config
    from sim.runner import run_machine

    config = load_config("configs/tmpfs_churn.yaml", ["duration=3s"], variant="defrag-move")
    summary = run_machine(config, 1, "defrag-move").summary
    later = summary["defrag"]["pages_returned_later"]
    freed = summary["caches"]["dentry"]["slabs_freed"]
    assert summary["defrag"]["objects_moved"] > 0
    assert later > 10 * max(1, summary["defrag"]["pages_returned"])
    assert later <= freed + 4 * summary["caches"]["shmem_inode_cache"]["slabs_freed"]


MOBILITY_PLUGIN = '''
class Broken:
    """A user's get/reclaim pair whose get() raises."""

    def get(self, cache, objects):
        raise RuntimeError("plugin broke")

    def reclaim(self, cache, objects, private):
        return None
'''


def test_errors_of_a_users_mobility_callbacks_are_summarised_and_warned_about(
        tmp_path, monkeypatch, capsys):
    (tmp_path / "mobility_plugin.py").write_text(MOBILITY_PLUGIN)
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, "mobility_plugin", raising=False)
    out = tmp_path / "out"
    assert main(["run", "configs/quickstart.yaml", "--out", str(out), "--no-plots",
                 "--seeds", "1", "--set", "duration=3s", "--set", "machine.memory=96MiB",
                 "--set", "workloads.0.files=20000",
                 "--set", "caches.ext4_inode_cache.mobility=mobility_plugin:Broken"]) == 0
    summary = json.loads((out / "summary.json").read_text())
    run = summary["variants"]["defrag-on"]["runs"][0]["defrag"]
    assert run["callback_errors"] > 0
    assert run["errors"][0].endswith("RuntimeError: plugin broke")
    assert len(run["errors"]) <= 10
    err = capsys.readouterr().err
    assert "defrag-on: warning:" in err and "plugin broke" in err
    assert "defrag-off: warning" not in err


def test_kswapd_runs_beside_direct_compaction_only_with_a_cpu_to_run_on(tmp_path):
    """With two CPUs or more every zone's direct compaction lets an awake kswapd
    reclaim while it takes its time (sim/daemons.py ``Kswapd.run_concurrently``);
    with one, or without kswapd, nothing runs beside it."""
    text = (ROOT / "configs/quickstart.yaml").read_text()
    two = Machine(load_config(_write(tmp_path / "a.yaml", text), ["machine.cpus=2"]), 1)
    assert all(c.concurrent is not None for c in two.compactors.values())
    for overrides in (["machine.cpus=1"], ["machine.cpus=2", "reclaim.kswapd=false"]):
        one = Machine(load_config(_write(tmp_path / "b.yaml", text), overrides), 1)
        assert all(c.concurrent is None for c in one.compactors.values())


def test_a_call_the_kswapd_gate_skips_would_have_found_nothing_to_do(tmp_path):
    """The direct compactions' hook (sim/page_alloc.py ``OtherCpus``) does not call
    ``Kswapd.run_concurrently`` while the time reached is at most the ``not_before``
    kswapd publishes. Here every call is made, and each one the gate would have
    skipped is checked to change nothing of kswapd's; some calls that are made do
    work, so the bound is not trivially low either."""
    machine = _machine("""
        duration: 10s
        machine: {memory: 128MiB, cpus: 2}
        workloads:
          - {kind: page_cache, rate: 256MiB, reread: 0.3}
          - {kind: kernel_alloc, rate: 2000, orders: {0: 0.85, 1: 0.05, 2: 0.05, 3: 0.05},
             lifetime: {dist: exponential, mean: 5s}}
          - {kind: thp_probe, interval: 50ms, hold: 20ms}
        """, tmp_path)
    kswapd, pa, env = machine.kswapd, machine.page_alloc, machine.env
    gate = kswapd.gate
    assert gate is not None
    counts = {"skipped": 0, "made": 0, "worked": 0}

    def kswapd_state():
        return (kswapd._steps, kswapd._busy_until, kswapd._done, kswapd.concurrent_steps,
                kswapd.stats.runs, kswapd.sleeping, kswapd.running)

    def every_call(elapsed: float) -> None:
        until = env.now + pa.slowpath_elapsed() + elapsed
        skipped = until <= gate.not_before
        before = kswapd_state()
        kswapd.run_concurrently(until)
        if skipped:
            assert kswapd_state() == before
            counts["skipped"] += 1
        else:
            counts["made"] += 1
            counts["worked"] += kswapd_state() != before

    for compactor in machine.compactors.values():
        compactor.concurrent = every_call
    env.run(until=10.0)
    assert counts["skipped"] > 0 and counts["worked"] > 0


def test_env_clock_reads_the_simulated_time_as_env_now_does():
    """The slab caches' clock (sim/machine.py ``env_clock``) reads SimPy's internal
    ``_now``: it must stay what ``env.now`` gives, before and after events run."""
    from sim.machine import CountingEnvironment, env_clock

    env = CountingEnvironment()
    clock = env_clock(env)
    seen = []

    def proc():
        for delay in (0.25, 1.5, 3.0):
            yield env.timeout(delay)
            seen.append((clock(), env.now))

    assert clock() == env.now == 0
    env.process(proc())
    env.run()
    assert seen == [(0.25, 0.25), (1.75, 1.75), (4.75, 4.75)]
    assert clock() == env.now == 4.75


# ------------------------------------------------------------------ kswapd's steps


ADVANCE_CONFIG = """
    seed: 5
    duration: 4s
    sample_every: 250ms
    machine: {memory: 256MiB, cpus: 2}
    workloads:
      - {kind: page_cache, rate: 256MiB, reread: 0.2}
      - {kind: fs_churn, fs: disk, files: 4000, max_bytes: 16KiB, keep: 0.2,
         create_rate: 4000, delete_rate: 4000}
      - {kind: thp_probe, interval: 100ms, hold: 50ms}
    """


def test_kswapd_steps_that_end_before_any_other_event_skip_the_queue_and_change_nothing(
        tmp_path, monkeypatch):
    """kswapd's balance_pgdat steps whose sleep ends before any other event is due do
    not go through SimPy's queue (``CountingEnvironment.advance_to``). The run is the
    one the queue gives, event for event: the same samples, final files and summary
    (its event count included), with kswapd reclaiming and direct compactions running
    it beside them (``run_concurrently``); and most of its steps did skip the queue."""
    from sim.machine import CountingEnvironment

    config = _write(tmp_path / "advance.yaml", ADVANCE_CONFIG)
    advance_to = CountingEnvironment.advance_to
    taken = []

    def counted(self, when):
        done = advance_to(self, when)
        taken.append(done)
        return done

    monkeypatch.setattr(CountingEnvironment, "advance_to", counted)
    assert _cli_run(config, tmp_path / "skip", [], "--no-plots") == 0
    monkeypatch.setattr(CountingEnvironment, "advance_to", lambda self, when: False)
    assert _cli_run(config, tmp_path / "queue", [], "--no-plots") == 0
    skip, queue = tmp_path / "skip", tmp_path / "queue"
    assert (skip / "timeseries.csv").read_bytes() == (queue / "timeseries.csv").read_bytes()
    for path in sorted((queue / "final").rglob("*")):
        if path.is_file():
            assert path.read_bytes() == (skip / "final" / path.relative_to(queue / "final")
                                         ).read_bytes()
    summaries = [json.loads((out / "summary.json").read_text()) for out in (skip, queue)]
    assert _without_host_fields(summaries[0]) == _without_host_fields(summaries[1])
    run = summaries[0]["variants"]["default"]["runs"][0]
    engine = run["engine"]
    assert engine["pgsteal_kswapd"] > 0 and engine["kswapd_concurrent_steps"] > 0
    assert run["compaction"]["stalls"] > 0
    assert sum(taken) > len(taken) // 2 > 100


def test_advance_to_moves_the_clock_only_before_every_queued_event():
    """``advance_to(t)`` is a timeout that ends at ``t`` processed at once: only when
    every queued event is due after ``t`` (at ``t`` itself SimPy would order the two by
    priority and id); it counts the event and takes the id the timeout would have."""
    from sim.machine import CountingEnvironment

    env = CountingEnvironment()
    env.timeout(1.0)
    assert not env.advance_to(1.0) and not env.advance_to(2.0)
    assert env.now == 0.0 and env.events_processed == 0
    assert env.advance_to(0.5) and env.now == 0.5 and env.events_processed == 1
    ids = next(env._eid)
    plain = CountingEnvironment()
    plain.timeout(1.0)
    plain.timeout(0.5)
    plain.step()
    assert (plain.now, plain.events_processed, next(plain._eid)) == (0.5, 1, ids)


@pytest.mark.parametrize("seed", [1, 3])
def test_large_files_under_pressure_keep_the_page_cache_and_the_zone_in_step(seed):
    """A 48 MiB machine creating files of up to 3 MiB: their writes' allocations run
    direct reclaim and direct compaction while earlier folios of the same write are in
    no file yet, and kswapd reclaims beside each direct compaction (two CPUs). Two
    crashes of session 17's review, both older than it: compaction moved or split an
    in-flight folio that no owner followed, so the file kept a stale pfn (seed 3: a
    BadFree when reclaim freed it), and kswapd reclaimed a source compaction had
    isolated, which it then found free (seed 1: "migration source ... is not
    allocated"). Page-cache folios are now held until they are in their file
    (sim/page_alloc.py FolioAlloc), and a source freed from under compaction is
    skipped (sim/compaction.py _migrate_pages)."""
    from sim.experiment import validate_config

    config = validate_config({
        "name": "pressure", "duration": "0.4s", "sample_every": "0.2s",
        "machine": {"memory": "48MiB", "cpus": 2},
        "workloads": [{"kind": "fs_churn", "fs": "disk", "files": 20000,
                       "create_rate": 8000, "delete_rate": 4000, "max_bytes": "3MiB",
                       "keep": 0.5}]}, "test")
    summary = sim.runner.run_machine(config, seed, "default").summary
    # the paths at stake ran: direct compaction migrated pages, and split a folio
    assert summary["compaction"]["migrated"] > 1000
    assert summary["compaction"]["folios_split"] >= 1
