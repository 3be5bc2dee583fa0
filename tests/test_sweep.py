"""Sweeps: expansion and seeds, run directories, resume, failures, executors, bad input."""

import csv
import hashlib
import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st
from matplotlib.image import imread
from proc_helpers import children, kill_survivors, survivors

import sim
import sim.runner
import sim.sweep
from sim.cli import main
from sim.errors import FragsimError
from sim.sweep import (
    TIMING_COLUMNS,
    SweepSection,
    derive_seeds,
    expand,
    parse_sweep,
    plan_sweep,
    read_sweep_csv,
    run_sweep,
    source_digest,
    source_files,
    write_sweep_csv,
)

REPO = Path(__file__).resolve().parent.parent
EXAMPLES = sorted((REPO / "configs" / "sweeps").glob("*.yaml"))

# A machine small and short enough for a run to take about 10 ms.
BASE = {
    "name": "tiny",
    "seed": 1,
    "duration": "500ms",
    "sample_every": "100ms",
    "machine": {"memory": "16MiB", "cpus": 2},
    "workloads": [
        {"kind": "kernel_alloc", "rate": 2000, "orders": {0: 0.9, 3: 0.1},
         "lifetime": {"dist": "exponential", "mean": "200ms"}},
        {"kind": "thp_probe", "interval": "50ms", "hold": "20ms"},
    ],
}


def write_config(tmp_path, sweep, **changes) -> Path:
    data = yaml.safe_load(yaml.safe_dump(BASE))
    data.update(changes)
    data["sweep"] = sweep
    path = tmp_path / "sweep.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def one_line_error(call) -> str:
    with pytest.raises(FragsimError) as info:
        call()
    message = str(info.value)
    assert "\n" not in message
    return message


# ------------------------------------------------------------------ expansion and seeds


def test_grid_is_cartesian_first_key_slowest_and_zip_rows_are_the_innermost_axis():
    spec = SweepSection(grid={"a": [1, 2], "b": ["x", "y"]}, zip={"c": [10, 20], "d": [30, 40]})
    points = expand(spec)
    assert len(points) == 2 * 2 * 2
    assert points[0] == {"a": 1, "b": "x", "c": 10, "d": 30}
    assert points[1] == {"a": 1, "b": "x", "c": 20, "d": 40}
    assert points[2] == {"a": 1, "b": "y", "c": 10, "d": 30}
    assert points[-1] == {"a": 2, "b": "y", "c": 20, "d": 40}
    assert all((p["c"], p["d"]) in {(10, 30), (20, 40)} for p in points)  # pairs stay paired


def test_zip_alone_pairs_its_lists_and_points_are_taken_as_written():
    assert expand(SweepSection(zip={"a": [1, 2, 3], "b": [4, 5, 6]})) == [
        {"a": 1, "b": 4}, {"a": 2, "b": 5}, {"a": 3, "b": 6}]
    points = [{"machine.memory": "32MiB"}, {"buddy.pcp": False, "machine.cpus": 4}]
    assert expand(SweepSection(points=points)) == points


def test_common_seeds_are_seed_plus_k_at_every_point():
    assert derive_seeds(7, 3, "common", {"a": 1}) == [7, 8, 9]
    assert derive_seeds(7, 3, "common", {"a": 2}) == [7, 8, 9]


def test_distinct_seeds_differ_between_replicates_and_points_and_are_stable():
    first = derive_seeds(7, 4, "distinct", {"a": 1})
    second = derive_seeds(7, 4, "distinct", {"a": 2})
    assert len(set(first)) == 4 and not set(first) & set(second)
    assert first == derive_seeds(7, 4, "distinct", {"a": 1})
    assert first != derive_seeds(8, 4, "distinct", {"a": 1})
    assert all(0 <= s < 2**31 for s in first + second)


def test_plan_gives_every_point_every_seed_and_resolves_units(tmp_path):
    path = write_config(tmp_path, {"grid": {"machine.memory": ["16MiB", "32MiB"]},
                                   "zip": {"buddy.pcp": [True, False]}, "seeds": 3})
    plan = plan_sweep(path)
    assert len(plan.points) == 4 and len(plan.tasks) == 12
    assert [p.resolved["machine.memory"] for p in plan.points] == [16 << 20] * 2 + [32 << 20] * 2
    assert {t.seed for t in plan.tasks} == {1, 2, 3}
    assert len({t.run_id for t in plan.tasks}) == 12
    assert plan.points[0].id.startswith("0000-") and plan.points[3].id.startswith("0003-")
    # The id is stable: the same sweep planned again gives the same directories.
    assert [t.run_id for t in plan_sweep(path).tasks] == [t.run_id for t in plan.tasks]


def _digest_the_old_way(task) -> str:
    """config_hash as planning computed it before it cached YAML by section: every
    variant validated again and dumped whole (the digest keys finished runs on disk)."""
    from sim.config import to_yaml
    from sim.experiment import validate_config

    names = task.variants or (None,)
    texts = {name or "default": to_yaml(validate_config(task.raw, task.source,
                                                        task.overrides, name))
             for name in names}
    text = json.dumps({"seed": task.seed, "variants": texts}, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def test_planning_1000_points_keeps_the_config_digests(tmp_path):
    path = write_config(tmp_path, {"grid": {"machine.memory": [f"{16 + i}MiB" for i in range(10)],
                                            "workloads.0.rate": list(range(1000, 1100))}})
    plan = plan_sweep(path)
    assert len(plan.tasks) == 1000 and len({t.config_hash for t in plan.tasks}) == 1000
    for task in plan.tasks[::97]:
        assert task.config_hash == _digest_the_old_way(task), task.run_id


def test_planning_with_variants_and_seeds_keeps_the_config_digests(tmp_path):
    workloads = [*BASE["workloads"], {"kind": "sweep_helpers:Boom", "at": "200ms"}]
    path = write_config(tmp_path, {"grid": {"machine.memory": ["16MiB", "32MiB"],
                                            "workloads.2.at": ["100ms", "300ms"]},
                                   "zip": {"caches.dentry.mobility": ["free", "move"]},
                                   "seeds": 2}, workloads=workloads,
                        variants={"pcp-on": {"buddy.pcp": True}, "pcp-off": {"buddy.pcp": False}})
    plan = plan_sweep(path, ["sample_every=50ms"])
    assert len(plan.tasks) == 2 * 2 * 2 * 2
    for task in plan.tasks:
        assert task.config_hash == _digest_the_old_way(task), task.run_id


# Every config under configs/, not the result directories kept there as real data
# (configs/real/*/real-*/, marked .fragsim-result, whose config.yaml is a run's record).
CONFIGS = sorted(p for p in (REPO / "configs").glob("**/*.yaml")
                 if not (p.parent / ".fragsim-result").exists())


@pytest.mark.parametrize("config", CONFIGS, ids=lambda p: str(p.relative_to(REPO / "configs")))
def test_yaml_by_sections_is_the_whole_dump(config):
    from sim.config import load_yaml, to_yaml
    from sim.experiment import validate_config

    raw = load_yaml(config)
    raw.pop("sweep", None)
    cache: dict[str, str] = {}
    for variant in [*(raw.get("variants") or {}), None]:
        resolved = validate_config(raw, str(config), (), variant)
        assert sim.sweep._config_yaml(resolved, cache) == to_yaml(resolved)
        assert sim.sweep._config_yaml(resolved, cache) == to_yaml(resolved)  # from the cache


_SCALARS = (st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False)
            | st.text(max_size=120))
_TREES = st.recursive(_SCALARS, lambda inner: st.lists(inner, max_size=4)
                      | st.dictionaries(st.text(max_size=20), inner, max_size=4), max_leaves=20)


@settings(max_examples=200, deadline=None)
@given(st.dictionaries(st.text(max_size=140), _TREES, min_size=1, max_size=5))
def test_a_mapping_dumped_key_by_key_is_the_whole_dump(data):
    # Any text (quoting, escapes, long keys, wrapping) and any nesting: the top-level
    # entries of a block mapping are emitted independently of each other.
    cache: dict[str, str] = {}
    assert sim.sweep._yaml_by_sections(data, cache) == yaml.safe_dump(data, sort_keys=False)
    assert sim.sweep._yaml_by_sections(data, cache) == yaml.safe_dump(data, sort_keys=False)


def test_a_container_met_twice_is_dumped_whole():
    shared = [1, 2]
    data = {"a": {"x": shared}, "b": shared}
    assert sim.sweep._has_shared_containers(data)
    assert not sim.sweep._has_shared_containers({"a": [1, 2], "b": [1, 2], "c": "s"})
    # Why: the whole dump numbers anchors across sections, a dump per section would not.
    assert "&id001" in yaml.safe_dump(data, sort_keys=False)


# ------------------------------------------------------------------ bad input


def test_unknown_key_in_the_grid_is_one_line_with_did_you_mean(tmp_path):
    path = write_config(tmp_path, {"grid": {"defrag.used_ratoi": [10, 30]}})
    assert one_line_error(lambda: plan_sweep(path)) == (
        f"{path}: sweep.grid: defrag.used_ratoi: unknown key; did you mean 'used_ratio'?")


def test_unknown_key_in_points_names_the_point(tmp_path):
    path = write_config(tmp_path, {"points": [{"buddy.pcp": True}, {"buddy.pcpp": False}]})
    assert one_line_error(lambda: plan_sweep(path)) == (
        f"{path}: sweep.points.1: buddy.pcpp: unknown key; did you mean 'pcp'?")


def test_a_bad_value_in_the_grid_is_the_house_error(tmp_path):
    path = write_config(tmp_path, {"grid": {"defrag.used_ratio": [30, 130]}})
    assert one_line_error(lambda: plan_sweep(path)) == (
        f"{path}: sweep.grid: defrag.used_ratio: expected a number from 0 to 100, got 130")


@pytest.mark.parametrize(("sweep", "expected"), [
    ({"grid": {}}, "sweep.grid: expected at least one KEY.PATH: [values], got an empty grid"),
    ({"grid": {"buddy.pcp": []}}, "sweep.grid.buddy.pcp: expected a non-empty list of values, "
                                  "got []"),
    ({"grid": {"buddy.pcp": True}}, "sweep.grid.buddy.pcp: expected a list of values, got True"),
    ({"zip": {"buddy.pcp": [True, False], "machine.cpus": [2]}},
     "sweep.zip.machine.cpus: expected 2 values, as many as buddy.pcp, got 1"),
    ({"points": [{"buddy.pcp": True}], "grid": {"machine.cpus": [2]}},
     "sweep.points: expected points: alone, or grid:/zip: without points:, got points: with "
     "grid:"),
    ({"seeds": 3}, "sweep: expected grid:, zip: or points:, got none of them"),
    ({"grid": {"buddy.pcp": [True]}, "seeds": 0},
     "sweep.seeds: expected a number from 1 to 10000, got 0"),
    ({"grdi": {"buddy.pcp": [True]}}, "sweep.grdi: unknown key; did you mean 'grid'?"),
])
def test_malformed_sweep_sections_are_one_line_errors(tmp_path, sweep, expected):
    path = write_config(tmp_path, sweep)
    assert one_line_error(lambda: plan_sweep(path)) == f"{path}: {expected}"


def test_a_config_without_a_sweep_section_says_so(tmp_path):
    path = tmp_path / "plain.yaml"
    path.write_text(yaml.safe_dump(BASE))
    assert one_line_error(lambda: plan_sweep(path)) == (
        f"{path}: sweep: expected a sweep: section with grid:, zip: or points:, got none")


def test_a_key_both_swept_and_set_by_a_variant_or_set_is_refused(tmp_path):
    path = write_config(tmp_path, {"grid": {"buddy.pcp": [True, False]}},
                        variants={"a": {"buddy.pcp": True}, "b": {}})
    assert one_line_error(lambda: plan_sweep(path)).endswith(
        "sweep.grid.buddy.pcp: expected a key that no variant or --set also sets, got it set "
        "by variants.a.buddy.pcp")
    path = write_config(tmp_path, {"grid": {"buddy.pcp": [True, False]}})
    assert "got it set by --set buddy.pcp=true" in one_line_error(
        lambda: plan_sweep(path, ["buddy.pcp=true"]))


def test_parse_sweep_refuses_a_non_mapping():
    assert one_line_error(lambda: parse_sweep([1, 2], "x.yaml")) == (
        "x.yaml: sweep: expected a mapping with grid:, zip: or points:, got [1, 2]")


def test_cli_sweep_reports_bad_input_on_one_line_with_status_2(tmp_path, capsys):
    path = write_config(tmp_path, {"grid": {"machine.memroy": ["16MiB"]}})
    assert main(["sweep", str(path), "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert err == (f"fragsim: error: {path}: sweep.grid: machine.memroy: unknown key; "
                   "did you mean 'memory'?\n")


def test_unreachable_dask_scheduler_is_a_one_line_error_within_seconds(tmp_path):
    import dask.distributed  # noqa: F401  (the test extra installs it)
    path = write_config(tmp_path, {"grid": {"buddy.pcp": [True]}})
    started = time.monotonic()
    message = one_line_error(lambda: run_sweep(
        path, out=tmp_path / "out", executor="dask", scheduler="tcp://127.0.0.1:1",
        connect_timeout=1.0, plots=False))
    assert time.monotonic() - started < 8
    assert message.startswith("--scheduler tcp://127.0.0.1:1: expected a reachable dask "
                              "scheduler, got no connection within 1 s")


def test_missing_dask_names_the_cluster_extra(tmp_path, monkeypatch):
    path = write_config(tmp_path, {"grid": {"buddy.pcp": [True]}})
    monkeypatch.setitem(sys.modules, "dask.distributed", None)  # import fails
    message = one_line_error(lambda: run_sweep(path, out=tmp_path / "out", executor="dask",
                                               plots=False))
    assert message.startswith("--executor dask: expected dask.distributed to be installed")
    assert message.endswith("install it with pip install 'fragsim[cluster]'")


# ------------------------------------------------------------------ running


@pytest.fixture
def count_runs(monkeypatch):
    """Counts run_machine calls made in this process (the sweep runs with jobs=1)."""
    calls = []
    real = sim.runner.run_machine

    def counting(config, seed, variant, progress=None):
        calls.append((config.machine.memory, seed, variant))
        return real(config, seed, variant, progress)

    monkeypatch.setattr(sim.runner, "run_machine", counting)
    return calls


def test_sweep_writes_a_run_directory_per_point_and_seed_and_one_csv_row_per_variant(
        tmp_path, count_runs):
    path = write_config(tmp_path, {"grid": {"machine.memory": ["16MiB", "32MiB"]}, "seeds": 2},
                        variants={"pcp-on": {"buddy.pcp": True},
                                  "pcp-off": {"buddy.pcp": False}})
    out = tmp_path / "out"
    report = run_sweep(path, out=out, jobs=1, plots=False)
    assert (report.total, report.ran, report.skipped, report.failures) == (4, 4, 0, [])
    assert len(count_runs) == 2 * 2 * 2  # points x seeds x variants
    runs = sorted(p.name for p in (out / "points").iterdir())
    assert len(runs) == 4 and all(r.endswith(("-s1", "-s2")) for r in runs)
    for run in runs:
        run_dir = out / "points" / run
        for name in ("config.yaml", "timeseries.csv", "summary.json",
                     "final/pcp-on/buddyinfo", "final/pcp-off/slabinfo", "memmap/start.npz"):
            assert (run_dir / name).is_file(), f"{run}/{name}"
        summary = json.loads((run_dir / "summary.json").read_text())
        assert summary["complete"] is True and set(summary["variants"]) == {"pcp-on", "pcp-off"}
    rows = read_sweep_csv(out / "sweep.csv")
    assert len(rows) == 2 * 2 * 2
    header = list(rows[0])
    assert header[:4] == ["point", "variant", "seed", "machine.memory"]
    for column in ("thp_success_rate", "avail9_time_avg", "evictions.slab_objects", "wall_s",
                   "buddy.extfrag_claim"):
        assert column in header
    assert {r["machine.memory"] for r in rows} == {str(16 << 20), str(32 << 20)}
    assert {(r["variant"], r["seed"]) for r in rows} == {
        (v, s) for v in ("pcp-on", "pcp-off") for s in ("1", "2")}
    manifest = json.loads((out / "sweep.json").read_text())
    assert manifest["complete"] is True and manifest["variants"] == ["pcp-on", "pcp-off"]
    assert not (out / "failures.json").exists()


def test_a_rerun_skips_finished_points_and_reruns_only_missing_ones(tmp_path, count_runs):
    path = write_config(tmp_path, {"grid": {"machine.memory": ["16MiB", "24MiB", "32MiB"]}})
    out = tmp_path / "out"
    run_sweep(path, out=out, jobs=1, plots=False)
    assert len(count_runs) == 3
    mtimes = {p.name: (p / "summary.json").stat().st_mtime_ns for p in (out / "points").iterdir()}
    again = run_sweep(path, out=out, jobs=1, plots=False)
    assert (again.ran, again.skipped) == (0, 3)
    assert len(count_runs) == 3  # nothing ran
    # An interrupted point (no complete summary.json) and a stale partial directory.
    victim = sorted(mtimes)[1]
    (out / "points" / victim / "summary.json").unlink()
    (out / "points" / ".0000-deadbeef-s1.partial-999999999").mkdir()
    third = run_sweep(path, out=out, jobs=1, plots=False)
    assert (third.ran, third.skipped) == (1, 2)
    assert count_runs[-1][0] == 24 << 20 and len(count_runs) == 4
    for name, mtime in mtimes.items():
        if name != victim:
            assert (out / "points" / name / "summary.json").stat().st_mtime_ns == mtime
    assert not list((out / "points").glob(".*partial*"))
    assert len(read_sweep_csv(out / "sweep.csv")) == 3


def test_a_changed_base_config_reruns_the_points_it_changes(tmp_path, count_runs):
    path = write_config(tmp_path, {"grid": {"machine.memory": ["16MiB", "32MiB"]}})
    out = tmp_path / "out"
    run_sweep(path, out=out, jobs=1, plots=False)
    rerun = run_sweep(path, ["duration=300ms"], out=out, jobs=1, plots=False)
    assert (rerun.ran, rerun.skipped) == (2, 0)
    assert len(count_runs) == 4


def test_a_crashing_point_goes_to_failures_json_and_the_others_finish(tmp_path, capsys):
    workloads = [*BASE["workloads"], {"kind": "sweep_helpers:Boom", "explode": False}]
    path = write_config(tmp_path, {"grid": {"workloads.2.explode": [False, True],
                                            "machine.memory": ["16MiB", "32MiB"]},
                                   "seeds": 2}, workloads=workloads)
    out = tmp_path / "out"
    status = main(["sweep", str(path), "--out", str(out), "--jobs", "2", "--no-plots"])
    assert status == 1
    failures = json.loads((out / "failures.json").read_text())
    assert len(failures) == 2 * 2  # two exploding points x two seeds
    for failure in failures:
        assert failure["params"]["workloads.2.explode"] is True
        assert failure["seed"] in (1, 2)
        assert failure["error"].startswith("WorkloadError: workload boom-2 (boom) failed at "
                                           "t=0.1 s: RuntimeError: boom")
        assert "\n" not in failure["error"]
        assert "Traceback" in failure["traceback"] and "RuntimeError" in failure["traceback"]
    rows = read_sweep_csv(out / "sweep.csv")
    assert len(rows) == 4 and {r["workloads.2.explode"] for r in rows} == {"false"}
    err = capsys.readouterr().err
    assert "failures.json" in err and all(line.startswith("fragsim: error: ")
                                          for line in err.splitlines())
    manifest = json.loads((out / "sweep.json").read_text())
    assert manifest["complete"] is False
    # A rerun retries only the failed runs (they fail again: the file is rewritten).
    report = run_sweep(path, out=out, jobs=1, plots=False)
    assert (report.ran, report.skipped, len(report.failures)) == (4, 4, 4)


def test_a_point_that_kills_its_worker_is_isolated_and_the_others_finish(tmp_path):
    workloads = [*BASE["workloads"], {"kind": "sweep_helpers:Boom", "die": False}]
    path = write_config(tmp_path, {"grid": {"machine.memory": ["16MiB", "24MiB", "32MiB"],
                                            "workloads.2.die": [False, True]}, "seeds": 2},
                        workloads=workloads)
    report = run_sweep(path, out=tmp_path / "out", jobs=2, plots=False)
    assert report.ran == 12
    # Only the three dying points (x 2 seeds) fail; the runs that shared the broken pool
    # with them were run again and finished.
    assert len(report.failures) == 6
    assert all(f["params"]["workloads.2.die"] is True for f in report.failures)
    assert all(f["error"].startswith("the worker running this point died: BrokenProcessPool")
               for f in report.failures)
    rows = read_sweep_csv(report.csv_path)
    assert len(rows) == 6 and {r["workloads.2.die"] for r in rows} == {"false"}


def _without_timing(path: Path) -> list[list[str]]:
    with open(path, newline="") as f:
        rows = list(csv.reader(f))
    keep = [i for i, name in enumerate(rows[0]) if name not in TIMING_COLUMNS]
    return [[row[i] for i in keep] for row in rows]


def test_dask_executor_gives_the_same_sweep_csv_as_the_local_one(tmp_path):
    import dask.distributed as distributed  # the test extra installs it
    path = write_config(tmp_path, {"grid": {"machine.memory": ["16MiB", "32MiB"]},
                                   "zip": {"buddy.pcp": [True, False]}, "seeds": 2})
    local = run_sweep(path, out=tmp_path / "local", jobs=2, plots=False)
    in_process = run_sweep(path, out=tmp_path / "dask-local", executor="dask", plots=False,
                           cluster_options={"processes": False, "n_workers": 1})
    with distributed.LocalCluster(n_workers=1, threads_per_worker=1, processes=False,
                                  dashboard_address=None) as cluster:
        remote = run_sweep(path, out=tmp_path / "dask-remote", executor="dask",
                           scheduler=cluster.scheduler_address, plots=False)
    assert local.ran == in_process.ran == remote.ran == 8
    expected = _without_timing(local.csv_path)
    assert len(expected) == 1 + 8
    assert _without_timing(in_process.csv_path) == expected
    assert _without_timing(remote.csv_path) == expected
    # The timing columns are there, and they are what differs.
    assert "wall_s" in read_sweep_csv(remote.csv_path)[0]


def test_a_point_that_kills_its_dask_worker_is_reported_and_the_others_finish(tmp_path):
    workloads = [*BASE["workloads"], {"kind": "sweep_helpers:Boom", "die": False}]
    path = write_config(tmp_path, {"grid": {"machine.memory": ["16MiB", "24MiB"],
                                            "workloads.2.die": [False, True]}},
                        workloads=workloads)
    out = tmp_path / "out"
    status = main(["sweep", str(path), "--out", str(out), "--executor", "dask", "--jobs", "2",
                   "--no-plots"])
    assert status == 1
    # The dying points fail; the ones that shared a dead worker were run again alone.
    failures = json.loads((out / "failures.json").read_text())
    assert len(failures) == 2
    assert all(f["params"]["workloads.2.die"] is True for f in failures)
    assert all(f["error"].startswith("the worker running this point died: KilledWorker: ")
               for f in failures)
    rows = read_sweep_csv(out / "sweep.csv")
    assert len(rows) == 2 and {r["workloads.2.die"] for r in rows} == {"false"}
    assert json.loads((out / "sweep.json").read_text())["complete"] is False


def test_dask_runs_the_items_that_shared_a_dead_worker_again_alone():
    from dask.distributed import KilledWorker
    from sweep_helpers import die_on

    from sim.executors import DaskExecutor

    with DaskExecutor(jobs=1) as executor:  # one worker: "ok-1" waits behind "die" on it
        submitted = []
        submit = executor.client.submit
        executor.client.submit = lambda fn, item, **kw: submitted.append(item) or submit(
            fn, item, **kw)
        got = {i: (result, error) for i, result, error in
               executor.map_unordered(die_on, ["die", "ok-1", "ok-2"])}
    assert got[1] == ("ok-1", None) and got[2] == ("ok-2", None)
    assert got[0][0] is None and isinstance(got[0][1], KilledWorker)
    # Both in flight died with the worker; alone, only "die" died again.
    assert sorted(submitted) == ["die", "die", "ok-1", "ok-1", "ok-2"]


class _SchedulerTasks:
    """A scheduler plugin: the most tasks the scheduler held at once, and the most
    results (tasks in memory on a worker)."""

    name = "fragsim-test-peaks"

    def __init__(self, scheduler):
        self.scheduler = scheduler
        self.peak_tasks = self.peak_results = self.results = 0

    def transition(self, key, start, finish, *args, **kwargs):
        self.results += (finish == "memory") - (start == "memory")
        self.peak_results = max(self.peak_results, self.results)
        self.peak_tasks = max(self.peak_tasks, len(self.scheduler.tasks))


def test_dask_releases_each_result_once_taken_and_bounds_what_is_in_flight():
    from distributed.diagnostics.plugin import SchedulerPlugin

    from sim.executors import DaskExecutor

    with DaskExecutor(jobs=2) as executor:
        plugin = type("Peaks", (_SchedulerTasks, SchedulerPlugin), {})(executor.cluster.scheduler)
        executor.cluster.scheduler.add_plugin(plugin)
        limit = executor.in_flight_limit()
        assert limit == 2 * 2  # two single-threaded workers
        got = {i: result for i, result, error in executor.map_unordered(abs, range(-40, 0))
               if error is None}
        assert got == {i: 40 - i for i in range(40)}
        deadline = time.monotonic() + 30  # the last release travels to the scheduler
        while executor.cluster.scheduler.tasks and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not executor.cluster.scheduler.tasks
    # 40 items, never more than the bound at once (all 40 before). One more: a release
    # reaches the scheduler a hop of the client's event loop after the next submission.
    assert 0 < plugin.peak_tasks <= limit + 1
    assert 0 < plugin.peak_results <= limit + 1


# ------------------------------------------------------------------ plots


def test_plot_redraws_a_sweep_directory_from_its_files(tmp_path, capsys):
    path = write_config(tmp_path, {"grid": {"machine.memory": ["16MiB", "24MiB", "32MiB"],
                                            "buddy.pcp": [True, False]}, "seeds": 2})
    out = tmp_path / "out"
    report = run_sweep(path, out=out, jobs=1)
    names = sorted(p.name for p in report.plots)
    assert names == ["heatmap_avail9_time_avg.png", "heatmap_thp_success_rate.png",
                     "sweep_avail9_time_avg.png", "sweep_thp_success_rate.png",
                     "timeseries_avail9.png", "timeseries_thp_success_rate.png"]
    for figure in report.plots:
        figure.unlink()
    assert main(["plot", str(out)]) == 0
    printed = capsys.readouterr().out.split()
    assert sorted(Path(p).name for p in printed) == names
    for name in names:
        image = imread(out / name)
        assert image.shape[0] > 250 and image.shape[1] > 450
        assert image[..., :3].std() > 0.02  # not a blank canvas
    assert not list(out.glob(".*tmp*"))


# ------------------------------------------------------------------ the examples


@pytest.mark.parametrize("example", EXAMPLES, ids=[p.stem for p in EXAMPLES])
def test_example_sweeps_are_valid(example):
    plan = plan_sweep(example)
    assert len(plan.points) >= 2 and len(plan.tasks) >= len(plan.points)
    assert plan.name.startswith("sweep-")


def test_the_four_example_sweeps_exist():
    assert {p.stem for p in EXAMPLES} >= {"used_ratio_x_mobility", "memory_x_policy",
                                          "unmovable_x_grouping", "pcp_on_off"}


def test_an_example_sweep_runs_with_tiny_durations(tmp_path):
    example = REPO / "configs" / "sweeps" / "unmovable_x_grouping.yaml"
    report = run_sweep(example, ["duration=1100ms", "machine.memory=32MiB"], seeds=1,
                       out=tmp_path / "out", jobs=2, plots=False)
    assert report.failures == [] and report.ran == 12
    rows = read_sweep_csv(report.csv_path)
    after = "workloads.compact_memory-1.runs.0.avail9_after"
    by_grouping = {}
    for row in rows:
        by_grouping.setdefault(row["buddy.grouping_by_mobility"], []).append(float(row[after]))
    # Without grouping compaction finds no MOVABLE target block: fewer free 2 MiB blocks.
    assert min(by_grouping["true"]) > max(by_grouping["false"])


# ------------------------------------------------------------------ what produced each point


def _versions(path: Path) -> set[str]:
    return {row["fragsim_version"] for row in read_sweep_csv(path)}


def test_a_resumed_sweep_after_a_version_change_does_not_mix_versions(tmp_path, monkeypatch):
    path = write_config(tmp_path, {"grid": {"machine.memory": ["16MiB", "24MiB", "32MiB"]}})
    out = tmp_path / "out"
    monkeypatch.setattr(sim.sweep, "code_version", lambda: "0.1.0+src.aaaaaaaaaaaa")
    first = run_sweep(path, out=out, jobs=1, plots=False)
    assert (first.ran, first.stale) == (3, 0)
    assert _versions(first.csv_path) == {"0.1.0+src.aaaaaaaaaaaa"}
    # The model changed; and under the new code the 24MiB point crashes.
    monkeypatch.setattr(sim.sweep, "code_version", lambda: "0.1.0+src.bbbbbbbbbbbb")
    real = sim.runner.run_machine

    def crash_at_24mib(config, seed, variant, progress=None):
        if config.machine.memory == 24 << 20:
            raise RuntimeError("the new code crashes here")
        return real(config, seed, variant, progress)

    monkeypatch.setattr(sim.runner, "run_machine", crash_at_24mib)
    notices = []
    second = run_sweep(path, out=out, jobs=1, plots=False, notify=notices.append)
    assert (second.ran, second.skipped, second.stale, len(second.failures)) == (3, 0, 3, 1)
    assert notices == [
        f"rerunning 3 stale point x seed run(s): 3 made by fragsim 0.1.0+src.aaaaaaaaaaaa "
        f"(this is 0.1.0+src.bbbbbbbbbbbb); their directories moved to "
        f"{out / 'points' / '.superseded'}/"]
    rows = read_sweep_csv(second.csv_path)
    # The 24MiB point's old result is not in sweep.csv, nor where the plots look for runs.
    assert len(rows) == 2 and _versions(second.csv_path) == {"0.1.0+src.bbbbbbbbbbbb"}
    assert str(24 << 20) not in {r["machine.memory"] for r in rows}
    victim = second.failures[0]["run"]
    assert not (out / "points" / victim).exists()
    moved = json.loads((out / "points" / ".superseded" / victim / "summary.json").read_text())
    assert moved["sweep"]["code"] == "0.1.0+src.aaaaaaaaaaaa"
    manifest = json.loads((out / "sweep.json").read_text())
    assert manifest["code_version"] == "0.1.0+src.bbbbbbbbbbbb" and not manifest["complete"]
    # Fixed: only the failed run runs; nothing is stale any more, and the sweep is whole.
    monkeypatch.setattr(sim.runner, "run_machine", real)
    notices.clear()
    third = run_sweep(path, out=out, jobs=1, plots=False, notify=notices.append)
    assert (third.ran, third.skipped, third.stale, third.failures) == (1, 2, 0, [])
    assert notices == []
    assert len(read_sweep_csv(third.csv_path)) == 3
    assert _versions(third.csv_path) == {"0.1.0+src.bbbbbbbbbbbb"}
    assert not (out / "failures.json").exists()


def test_runs_made_before_versions_were_recorded_are_stale(tmp_path):
    path = write_config(tmp_path, {"grid": {"machine.memory": ["16MiB"]}})
    out = tmp_path / "out"
    run_sweep(path, out=out, jobs=1, plots=False)
    (summary_path,) = (out / "points").glob("*/summary.json")
    summary = json.loads(summary_path.read_text())
    del summary["sweep"]["code"], summary["sweep"]["plugins"]  # as fragsim wrote it before
    summary_path.write_text(json.dumps(summary))
    assert read_sweep_csv(write_sweep_csv(plan_sweep(path, out=out), out)) == []
    again = run_sweep(path, out=out, jobs=1, plots=False)
    assert (again.ran, again.stale) == (1, 1)
    assert _versions(again.csv_path) == {sim.sweep.code_version()}


def test_the_code_version_is_the_fragsim_version_and_a_digest_of_the_model_source(tmp_path):
    assert sim.sweep.code_version().startswith(f"{sim.__version__}+src.")
    root = tmp_path / "tree"
    for name in ("sim/buddy.py", "sim/cli.py", "sim/plots.py", "workloads/synthetic.py"):
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(f"# {name}\n")
    before = source_digest(root)
    (root / "sim" / "cli.py").write_text("# the CLI changed: no point runs it\n")
    (root / "sim" / "plots.py").write_text("# so did the plots\n")
    assert source_digest(root) == before
    (root / "workloads" / "synthetic.py").write_text("# the model changed\n")
    assert source_digest(root) != before
    assert source_digest(tmp_path / "nothing") == ""
    names = {p.relative_to(REPO).as_posix() for p in source_files()}
    assert {"sim/buddy.py", "sim/sweep.py", "workloads/synthetic.py"} <= names
    assert not names & {"sim/cli.py", "sim/plots.py", "sim/capacity.py"}


def test_a_point_never_imports_the_modules_left_out_of_the_code_digest(tmp_path):
    path = write_config(tmp_path, {"grid": {"machine.memory": ["16MiB"]}})
    script = (
        "import sys\n"
        "from sim.sweep import plan_sweep, run_point\n"
        f"outcome = run_point(plan_sweep({str(path)!r}).tasks[0])\n"
        "assert outcome.ok, outcome.error\n"
        "print(' '.join(sorted(m for m in sys.modules if m.startswith(('sim', 'workloads')))))\n")
    done = subprocess.run([sys.executable, "-c", script], cwd=REPO, capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    loaded = set(done.stdout.split())
    assert {"sim.runner", "sim.machine", "workloads.synthetic"} <= loaded
    assert not loaded & {"sim.cli", "sim.plots", "sim.capacity", "sim.__main__"}


def test_changed_plug_in_code_reruns_the_points_that_load_it(tmp_path, monkeypatch):
    plugin = tmp_path / "plugin_dir" / "myplugin.py"
    plugin.parent.mkdir()
    plugin.write_text((REPO / "tests" / "sweep_helpers.py").read_text())
    monkeypatch.syspath_prepend(str(plugin.parent))
    monkeypatch.delitem(sys.modules, "myplugin", raising=False)
    workloads = [*BASE["workloads"], {"kind": "myplugin:Boom"}]
    path = write_config(tmp_path, {"grid": {"machine.memory": ["16MiB", "32MiB"]}},
                        workloads=workloads)
    out = tmp_path / "out"
    first = run_sweep(path, out=out, jobs=1, plots=False)
    assert first.ran == 2
    digest = hashlib.sha256(plugin.read_bytes()).hexdigest()[:16]
    assert {r["plugins"] for r in read_sweep_csv(first.csv_path)} == {f"myplugin@{digest}"}
    assert run_sweep(path, out=out, jobs=1, plots=False).ran == 0  # unchanged: nothing runs
    plugin.write_text(plugin.read_text() + "\n# a change to the plug-in\n")
    monkeypatch.delitem(sys.modules, "myplugin")  # a new process would load the new file
    notices = []
    second = run_sweep(path, out=out, jobs=1, plots=False, notify=notices.append)
    assert (second.ran, second.stale) == (2, 2)
    assert len(notices) == 1 and "2 made with other plug-in code (myplugin)" in notices[0]
    new = hashlib.sha256(plugin.read_bytes()).hexdigest()[:16]
    assert {r["plugins"] for r in read_sweep_csv(second.csv_path)} == {f"myplugin@{new}"}
    # Without plug-ins there is no plugins column.
    plain = write_config(tmp_path, {"grid": {"machine.memory": ["16MiB"]}})
    header = list(read_sweep_csv(run_sweep(plain, out=tmp_path / "plain", jobs=1,
                                           plots=False).csv_path)[0])
    assert "fragsim_version" in header and "plugins" not in header


def test_a_worker_running_other_code_is_a_failed_point_not_a_row(tmp_path, monkeypatch):
    path = write_config(tmp_path, {"grid": {"machine.memory": ["16MiB", "32MiB"]}})
    real = sim.sweep.run_point

    def other_install(task):  # as a dask worker with another fragsim would answer
        outcome = real(task)
        if task.index == 1:
            outcome.summary["sweep"]["code"] = "0.0.9+src.cccccccccccc"
        return outcome

    monkeypatch.setattr(sim.sweep, "run_point", other_install)
    report = run_sweep(path, out=tmp_path / "out", jobs=1, plots=False)
    assert len(report.failures) == 1
    assert report.failures[0]["error"] == (
        f"the worker runs fragsim 0.0.9+src.cccccccccccc, expected {sim.sweep.code_version()} "
        "as this sweep does: its result is not mixed in")
    rows = read_sweep_csv(report.csv_path)
    assert [r["machine.memory"] for r in rows] == [str(16 << 20)]


def test_failures_json_drops_runs_that_later_succeeded(tmp_path, monkeypatch):
    path = write_config(tmp_path, {"grid": {"machine.memory": ["16MiB", "24MiB", "32MiB"]}})
    out = tmp_path / "out"
    real = sim.runner.run_machine

    def crash_below_32mib(config, seed, variant, progress=None):
        if config.machine.memory < 32 << 20:
            raise RuntimeError("crash")
        return real(config, seed, variant, progress)

    monkeypatch.setattr(sim.runner, "run_machine", crash_below_32mib)
    first = run_sweep(path, out=out, jobs=1, plots=False)
    assert len(json.loads((out / "failures.json").read_text())) == 2
    monkeypatch.setattr(sim.runner, "run_machine", real)

    def interrupt_after_one(to_run, skipped):
        assert (to_run, skipped) == (2, 1)

        def callback(outcome):
            raise KeyboardInterrupt  # Ctrl-C after the first of the two reruns

        return callback

    with pytest.raises(KeyboardInterrupt):
        run_sweep(path, out=out, jobs=1, plots=False, progress_factory=interrupt_after_one)
    left = json.loads((out / "failures.json").read_text())
    # The run that succeeded is gone; the one not yet retried is still recorded.
    assert [f["run"] for f in left] == [first.failures[1]["run"]]
    assert len(read_sweep_csv(out / "sweep.csv")) == 2
    last = run_sweep(path, out=out, jobs=1, plots=False)
    assert (last.ran, last.failures) == (1, [])
    assert not (out / "failures.json").exists()


# ------------------------------------------------------------------ no orphaned workers


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGKILL], ids=["TERM", "KILL"])
def test_killing_a_sweep_leaves_no_worker_behind(tmp_path, signum):
    # Runs of a few seconds each: the workers are busy when the signal comes.
    path = write_config(tmp_path, {"grid": {"machine.memory": ["16MiB", "24MiB", "32MiB"]}},
                        duration="300s")
    out = tmp_path / "out"
    sweep = subprocess.Popen(
        [sys.executable, "-m", "sim", "sweep", str(path), "--jobs", "2", "--out", str(out),
         "--no-plots"], cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    workers: dict[int, str] = {}
    try:
        deadline = time.monotonic() + 60
        while len(workers) < 2 and time.monotonic() < deadline and sweep.poll() is None:
            time.sleep(0.05)
            workers = children(sweep.pid)
        assert len(workers) == 2, sweep.stderr.read() if sweep.poll() is not None else workers
        time.sleep(0.3)  # well into their first points
        sweep.send_signal(signum)
        status = sweep.wait(timeout=30)
        assert survivors(workers) == []
        stderr = sweep.stderr.read()
        if signum == signal.SIGTERM:
            assert status == 128 + signal.SIGTERM
            assert stderr.strip().splitlines()[-1] == (
                "fragsim: error: terminated by SIGTERM: its workers are stopped and finished "
                "points are kept; run the same command again to resume")
            assert json.loads((out / "sweep.json").read_text())["complete"] is False
        else:
            assert status == -signal.SIGKILL
    finally:
        if sweep.poll() is None:
            sweep.kill()
            sweep.wait()
        kill_survivors(workers)


def _cmdline(pid: int) -> bytes:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return b""


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGKILL], ids=["TERM", "KILL"])
def test_killing_a_dask_sweep_leaves_no_worker_of_its_cluster_behind(tmp_path, signum):
    path = write_config(tmp_path, {"grid": {"machine.memory": ["16MiB", "24MiB", "32MiB"]}},
                        duration="300s")
    sweep = subprocess.Popen(
        [sys.executable, "-m", "sim", "sweep", str(path), "--executor", "dask", "--jobs", "2",
         "--out", str(tmp_path / "out"), "--no-plots"], cwd=REPO, stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, text=True)
    workers: dict[int, str] = {}
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and sweep.poll() is None:
            time.sleep(0.1)
            # The LocalCluster's worker processes (and multiprocessing's resource tracker)
            workers = children(sweep.pid)
            spawned = [pid for pid in workers if b"spawn_main" in _cmdline(pid)]
            if len(spawned) == 2:
                break
        assert len(spawned) == 2, sweep.stderr.read() if sweep.poll() is not None else workers
        time.sleep(1.0)  # well into their first points
        sweep.send_signal(signum)
        status = sweep.wait(timeout=30)
        assert survivors(workers) == []
        assert status == (128 + signum if signum == signal.SIGTERM else -signum)
    finally:
        if sweep.poll() is None:
            sweep.kill()
            sweep.wait()
        kill_survivors(workers)
