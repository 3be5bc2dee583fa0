"""Result files: tidy CSV round trip and atomic run directories."""

import math
import os
import shutil
import stat

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sim.errors import FragsimError
from sim.metrics import SampleRow
from sim.results import (
    MARKER,
    Recorder,
    Result,
    RunDirectory,
    is_fragsim_result,
    read_timeseries,
    recover_leftovers,
    write_atomic,
    write_timeseries,
)


def test_recorder_pads_late_and_missing_series_with_nan():
    rec = Recorder()
    rec.sample(0.0, {("avail", "9"): 3})
    rec.sample(1.0, {("avail", "9"): 4, ("free_pages", ""): 100})
    rec.sample(2.0, {("free_pages", ""): 90})
    series = rec.series()
    assert list(series[("avail", "9")][:2]) == [3, 4] and math.isnan(series[("avail", "9")][2])
    assert math.isnan(series[("free_pages", "")][0])
    assert list(rec.times) == [0.0, 1.0, 2.0]


def test_timeseries_csv_round_trips(tmp_path):
    rec = Recorder()
    for t in range(3):
        rec.sample(t * 0.5, {("avail", "9"): 10 - t, ("thp_success_rate", ""): 0.25 * t})
    import numpy as np

    a = Result("off", 1, np.asarray(rec.times), rec.series())
    b = Result("on", 2, np.asarray(rec.times), rec.series())
    write_timeseries(tmp_path / "timeseries.csv", [a, b])
    back = read_timeseries(tmp_path / "timeseries.csv")
    times, values = back[("on", 2)][("avail", "9")]
    assert list(times) == [0.0, 0.5, 1.0] and list(values) == [10, 9, 8]
    assert set(back) == {("off", 1), ("on", 2)}


def test_run_directory_appears_only_when_complete(tmp_path):
    final = tmp_path / "results" / "quick"
    with pytest.raises(KeyboardInterrupt), RunDirectory(final) as run:
        (run.path / "summary.json").write_text("{}")
        raise KeyboardInterrupt
    assert not final.exists()
    assert list((tmp_path / "results").iterdir()) == []
    with RunDirectory(final) as run:
        (run.path / "summary.json").write_text("{}")
    assert (final / "summary.json").exists()
    with RunDirectory(final) as run:  # a rerun replaces the old directory whole
        (run.path / "other.txt").write_text("x")
    assert sorted(p.name for p in final.iterdir()) == [MARKER, "other.txt"]
    assert sorted(p.name for p in (tmp_path / "results").iterdir()) == ["quick"]  # no lock


def _result(path, text="old"):
    with RunDirectory(path) as run:
        (run.path / "summary.json").write_text(text)
    return path


def test_out_over_a_directory_fragsim_did_not_write_is_refused_and_untouched(tmp_path):
    paper = tmp_path / "paper"
    paper.mkdir()
    (paper / "draft.tex").write_text("my thesis")
    with pytest.raises(FragsimError, match="not a fragsim result"):
        RunDirectory(paper)
    assert [p.name for p in paper.iterdir()] == ["draft.tex"]
    assert (paper / "draft.tex").read_text() == "my thesis"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["paper"]  # nothing hidden beside


def test_out_over_a_file_or_a_symlink_is_refused(tmp_path):
    target = tmp_path / "notes.txt"
    target.write_text("keep me")
    with pytest.raises(FragsimError, match="is a file"):
        RunDirectory(target)
    assert target.read_text() == "keep me"
    old = _result(tmp_path / "old")
    (tmp_path / "link").symlink_to(old)
    with pytest.raises(FragsimError, match="symbolic link"):
        RunDirectory(tmp_path / "link")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["link", "notes.txt", "old"]


def test_out_over_a_result_of_the_version_before_the_marker_is_replaced(tmp_path):
    legacy = tmp_path / "quickstart"
    (legacy / "final").mkdir(parents=True)
    (legacy / "config.yaml").write_text("fragsim_version: 0.1.0\nseeds: [1]\n")
    (legacy / "summary.json").write_text("{}")
    (legacy / "thp.png").write_bytes(b"png")
    assert is_fragsim_result(legacy)
    (legacy / "mine.txt").write_text("a user's file makes it theirs")
    assert not is_fragsim_result(legacy)
    (legacy / "mine.txt").unlink()
    _result(legacy, "new")
    assert (legacy / "summary.json").read_text() == "new"
    assert not (legacy / "thp.png").exists()


def test_a_kill_between_the_two_renames_is_recovered_by_the_next_run(tmp_path):
    final = _result(tmp_path / "run", "previous")
    # The state a kill leaves after "final -> .old-PID" and before "partial -> final".
    os.replace(final, tmp_path / ".run.old-99999")
    partial = tmp_path / ".run.partial-99999"
    partial.mkdir()
    (partial / MARKER).write_text("{}")
    assert recover_leftovers(final) == [f"{final}: restored the previous result from "
                                        ".run.old-99999"]
    assert (final / "summary.json").read_text() == "previous"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run"]  # the partial is gone
    with pytest.raises(KeyboardInterrupt), RunDirectory(final):
        raise KeyboardInterrupt
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run"]
    assert (final / "summary.json").read_text() == "previous"  # failed run: old one stays


def test_a_kill_after_both_renames_leaves_the_new_result_and_the_old_is_cleaned(tmp_path):
    final = _result(tmp_path / "run", "new")
    shutil.copytree(final, tmp_path / ".run.old-99999")
    _result(final, "newer")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run"]
    assert (final / "summary.json").read_text() == "newer"


def test_a_second_writer_to_the_same_out_refuses_while_the_first_runs(tmp_path):
    final = tmp_path / "run"
    first = RunDirectory(final)
    with pytest.raises(FragsimError, match=f"pid {os.getpid()}"):
        RunDirectory(final)
    RunDirectory(tmp_path / "other").__exit__(None, None, None)  # another name is free
    first.__exit__(None, None, None)
    _result(final)  # released: the next one goes ahead
    assert (final / "summary.json").exists()


def test_result_files_are_readable_by_others(tmp_path):
    old = os.umask(0o022)
    try:
        write_atomic(tmp_path / "summary.json", "{}")
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "summary.json").stat().st_mode) == 0o644


def test_fragsim_run_refuses_an_out_it_did_not_write_and_replaces_its_own(tmp_path, capsys):
    from sim.cli import main

    mine = tmp_path / "results"
    mine.mkdir()
    (mine / "README.md").write_text("my notes")
    args = ["run", "configs/quickstart.yaml", "--set", "duration=1s", "--seeds", "1",
            "--no-plots", "--set", "machine.memory=64MiB"]
    assert main([*args, "--out", str(mine)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "not a fragsim result" in err and str(mine) in err
    assert [p.name for p in mine.iterdir()] == ["README.md"]
    out = tmp_path / "run"
    assert main([*args, "--out", str(out)]) == 0
    first = (out / "summary.json").read_text()
    assert main([*args, "--out", str(out), "--seed", "7"]) == 0
    assert (out / "summary.json").read_text() != first
    assert sorted(p.name for p in tmp_path.iterdir()) == ["results", "run"]


# ------------------------------------------------------------------ measure_from

SMALL = """
name: small
seed: 1
duration: 4s
sample_every: 500ms
machine: {memory: 64MiB, cpus: 2}
workloads:
  - {kind: thp_probe, interval: 100ms, hold: 50ms, gfp: light}
"""


def test_time_averages_count_from_measure_from():
    import numpy as np

    from sim.runner import _time_average

    times = np.arange(0.0, 11.0)
    values = np.where(times < 5, 100.0, 0.0)
    assert _time_average(times, values) > 40
    assert _time_average(times, values, 5.0) == 0.0
    # from 4.5 s: 50 (interpolated) down to 0 at 5 s, then 0 to 10 s
    assert _time_average(times, values, 4.5) == pytest.approx(0.5 * 50 * 0.5 / 5.5)


def test_a_runs_thp_success_and_averages_start_at_measure_from(tmp_path):
    from sim.experiment import load_config
    from sim.runner import run_machine

    path = tmp_path / "small.yaml"
    path.write_text(SMALL)
    whole = run_machine(load_config(path), 1, "default").summary
    late = run_machine(load_config(path, ["measure_from=2s"]), 1, "default").summary
    assert whole["measure_from_s"] == 0.0 and late["measure_from_s"] == 2.0
    assert whole["thp_attempts"] == 40 and late["thp_attempts"] == 20
    assert late["thp_successes"] <= late["thp_attempts"]
    assert late["thp_success_rate"] == late["thp_successes"] / late["thp_attempts"]
    # A shortened run of a config with a warm-up is measured whole (and says so).
    short = run_machine(load_config(path, ["measure_from=10s"]), 1, "default").summary
    assert short["measure_from_s"] == 0.0 and short["thp_attempts"] == 40


def test_pages_returned_is_one_figure_with_its_parts(tmp_path):
    from sim.experiment import load_config
    from sim.runner import run_machine

    config = load_config("configs/tmpfs_churn.yaml", ["duration=3s"], variant="defrag-move")
    defrag = run_machine(config, 1, "defrag-move").summary["defrag"]
    assert defrag["pages_returned_total"] == (defrag["pages_returned"]
                                              + defrag["pages_returned_later"]) > 0


def _headline_run(tmp_path, rates):
    import json

    import yaml

    runs = [{"seed": s, "thp_success_rate": r, "thp_attempts": 80, "thp_successes": r * 80,
             "measure_from_s": 10.0, "avail9_time_avg": 0.4 + s / 10,
             "evictions": {"slab_objects": 1000 * s, "page_cache_pages": 50},
             "defrag": {"pages_returned": 3, "pages_returned_later": 40 + s,
                        "pages_returned_total": 43 + s, "errors": []},
             "caches": {"dentry": {"num_slabs": 30 + s}}} for s, r in enumerate(rates, 1)]
    from sim.stats import aggregate

    (tmp_path / "summary.json").write_text(json.dumps(
        {"variants": {"defrag-on": {"runs": runs, **aggregate(runs)}}}))
    (tmp_path / "config.yaml").write_text(yaml.safe_dump({"seeds": [1, 2], "variants": {
        "defrag-on": {"measure_from": 10.0, "duration": 30.0, "defrag": {"enabled": True},
                      "caches": {"dentry": {"mobility": "free"}}}}}))
    return tmp_path


def test_the_headline_gives_a_rate_inside_0_1_and_the_slab_figures(tmp_path, capsys):
    import re

    from sim.cli import _print_headline

    _print_headline(_headline_run(tmp_path, [0.713, 0.163]))
    out = capsys.readouterr().out
    assert "from t = 10 s on" in out
    low, high = map(float, re.search(r"THP success 0\.44 \(95 % CI ([\d.]+)-([\d.]+)\)",
                                     out).groups())
    assert 0.0 <= low < 0.44 < high <= 1.0
    assert "+/- 1." not in out.split("time-avg")[0]
    assert "slabs at the end (median): dentry 31.5" in out
    assert "pages the defragmenter returned 44.5" in out and "3 by its passes" in out


def test_a_runs_peak_rss_is_its_own_not_the_processs_or_its_parents():
    """summary.json's peak_rss_bytes: ``VmHWM``, reset as each run starts. Not
    ``ru_maxrss``, which keeps an earlier, larger set of the same process (a pool
    worker's last point, --jobs 1's last seed) and, across exec, the parent's set at the
    fork (bench/run.py starts bench64.py so)."""
    import resource
    import subprocess
    import sys
    from pathlib import Path

    from sim.experiment import load_config
    from sim.runner import run_machine

    held = bytearray(400 << 20)
    for i in range(0, len(held), 4096):
        held[i] = 1  # resident
    child = ("import resource, sim.runner; print(sim.runner.peak_rss_bytes(), "
             "resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024)")
    out = subprocess.run([sys.executable, "-c", child], capture_output=True, text=True,
                         check=True).stdout.split()
    peak, ru_maxrss = int(out[0]), int(out[1])
    assert ru_maxrss >= len(held)  # the parent's set, kept across the exec
    assert 0 < peak < len(held)  # the child's own: an interpreter and fragsim's imports
    del held  # (a large buffer goes back to the system at once)
    process_peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    assert process_peak >= 400 << 20  # this process held the buffer before the run

    config = load_config(Path(__file__).resolve().parent.parent / "configs/quickstart.yaml",
                         ["duration=1s", "machine.memory=256MiB"])
    summary = run_machine(config, 1, "default").summary
    assert 0 < summary["peak_rss_bytes"] < process_peak - (200 << 20)


@pytest.mark.parametrize("name, settings, seed", [
    ("quickstart", ["duration=2s"], 2),
    # anon memory too (its page set shares the machine's page index); the same seed
    # again, as its file sizes are random and each new size fills a bounded memo
    ("steady_file_server", ["duration=2s", "machine.memory=512MiB"], 1)])
def test_runs_one_after_another_in_a_process_leave_nothing_behind(name, settings, seed):
    """A pool worker runs point after point: what a run allocates goes with it. Found
    compiled (mypyc 2.4.1): the es shrinker's eviction read and wrote a File's typed
    vector through an untyped name, boxing it, and leaked a buffer each time: 10 MB in
    320 k objects over three 3 s quickstart runs; and the machine's page index, made
    as a typed vector in interpreted code and handed to the compiled file system, left
    its 256 KiB behind each run."""
    import gc
    import tracemalloc
    from pathlib import Path

    from sim.experiment import load_config
    from sim.runner import run_machine

    config = load_config(Path(__file__).resolve().parent.parent / f"configs/{name}.yaml",
                         settings)
    run_machine(config, 1, "default")  # the first run fills the module-level memos
    gc.collect()
    tracemalloc.start(1)
    try:
        before = tracemalloc.take_snapshot()
        # Its reference cycles are freed as it returns, not left to a full collection
        # that may come runs later (before, 89 k objects were found here, and a pool
        # worker's resident set grew by a quickstart run's size each run). Automatic
        # collection is off meanwhile, so only the run's own can have freed them.
        gc.disable()
        try:
            run_machine(config, seed, "default")
        finally:
            gc.enable()
        unreachable = gc.collect()
        after = tracemalloc.take_snapshot()
    finally:
        tracemalloc.stop()
    assert unreachable < 100
    kept = after.compare_to(before, "filename")
    assert sum(stat.count_diff for stat in kept) < 1000
    assert sum(stat.size_diff for stat in kept) < 256 << 10


def _reference_series(samples):
    """Recorder's result by its definition: every key ever seen, NaN where a sample
    lacks it."""
    names = []
    for _, values in samples:
        names += [k for k in values if k not in names]
    return {k: [float(v.get(k, math.nan)) for _, v in samples] for k in names}


_KEYS = [("avail", "9"), ("free", ""), ("pcp", "cpu0"), ("pcp", "cpu1")]


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(st.dictionaries(st.sampled_from(_KEYS),
                                          st.integers(-10**6, 10**6) | st.floats(allow_nan=False),
                                          max_size=4),
                          st.integers(1, 6)), max_size=8),
       st.integers(0, 40), st.sampled_from([1, 2, 3, 64]), st.integers(0, 2**48 - 1))
def test_recorder_keeps_every_series_whatever_the_order_of_keys(layouts, cut, rows, ways):
    # Each layout repeats (the fast path), two samples in the keys' order given, two
    # reversed, ...; then another layout; a decimation at sample ``cut`` keeps every
    # other sample so far.
    # Sample i goes in as a dict (``sample``) or, where bit i of ``ways`` is set, as a
    # SampleRow's keys and float64 buffer (``sample_row``): rows of both kinds mix. A
    # row equal to the one before is given again as the same object, as fragsim replay
    # does at a time with no event since the sample before.
    samples: list[tuple[float, dict]] = []
    for values, times in layouts:
        for k in range(times):
            d = dict(values) if k % 4 < 2 else dict(reversed(list(values.items())))
            samples.append((float(len(samples)), d))
    rec = Recorder()
    rec._ROWS = rows  # samples kept as rows before they join their series
    kept: list[tuple[float, dict]] = []
    last: tuple[list, SampleRow] | None = None
    for i, (t, values) in enumerate(samples):
        if ways >> i & 1:
            if last is None or last[0] != list(values.items()):
                row = SampleRow()
                for key, value in values.items():
                    row.add(key, value)
                last = (list(values.items()), row)
            row = last[1]
            rec.sample_row(t, row.keys, row.values)
        else:
            rec.sample(t, values)
        kept.append((t, values))
        if i == cut:
            rec.decimate()
            kept = kept[::2]
    expect = _reference_series(kept)
    got = rec.series()
    assert list(rec.times) == [t for t, _ in kept]
    assert set(expect) <= set(got)
    for k, values in got.items():  # a key seen only in dropped samples is all NaN
        want = expect.get(k, [math.nan] * len(kept))
        assert np.array_equal(values, np.array(want, dtype=float), equal_nan=True), k
