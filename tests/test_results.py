"""Result files: tidy CSV round trip and atomic run directories."""

import math
import os
import shutil
import stat

import pytest

from sim.errors import FragsimError
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
