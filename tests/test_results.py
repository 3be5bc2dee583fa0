"""Result files: tidy CSV round trip and atomic run directories."""

import math

import pytest

from sim.results import Recorder, Result, RunDirectory, read_timeseries, write_timeseries


def test_recorder_pads_late_and_missing_series_with_nan():
    rec = Recorder()
    rec.sample(0.0, {("avail", "9"): 3})
    rec.sample(1.0, {("avail", "9"): 4, ("free_pages", ""): 100})
    rec.sample(2.0, {("free_pages", ""): 90})
    series = rec.series()
    assert list(series[("avail", "9")][:2]) == [3, 4] and math.isnan(series[("avail", "9")][2])
    assert math.isnan(series[("free_pages", "")][0])
    assert rec.times == [0.0, 1.0, 2.0]


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
    assert sorted(p.name for p in final.iterdir()) == ["other.txt"]
