"""``fragsim compare``: runs, real or simulated, aligned on time and laid side by side,
with their errors against the first and tolerances on them (sim/compare.py)."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
from record_helpers import TINY, standin_kernel

from sim.cli import main
from sim.compare import compare, load_run, parse_tolerance
from sim.errors import FragsimError
from sim.record import record


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> dict[str, Path]:
    """Two seeds of a tiny simulated experiment, and a record of a stand-in kernel."""
    root = tmp_path_factory.mktemp("runs")
    config = root / "tiny.yaml"
    config.write_text(TINY)
    out = {}
    for seed in (1, 2):
        out[f"seed{seed}"] = root / f"seed{seed}"
        assert main(["run", str(config), "--seed", str(seed), "--out", str(out[f"seed{seed}"]),
                     "--no-plots"]) == 0
    out["real"] = root / "real"
    record(out["real"], duration=0.6, every=0.2, kernel=standin_kernel(root / "kernel"))
    return out


def errors(out: Path, name: str, label: str) -> dict:
    return json.loads((out / "compare.json").read_text())["metrics"][name]["runs"][label]


def test_a_run_compared_with_itself_has_no_error(runs, tmp_path):
    out = tmp_path / "cmp"
    assert main(["compare", str(runs["seed1"]), str(runs["seed1"]), "--out", str(out)]) == 0
    report = json.loads((out / "compare.json").read_text())
    assert report["reference"] == "seed1" and report["ok"] is True
    assert {"avail/9", "free_pages", "pageblocks/Movable", "slab_objects/dentry",
            "thp_success_rate"} <= set(report["metrics"])
    for name, metric in report["metrics"].items():
        err = metric["runs"]["seed1 #2"]
        assert err["mae"] == 0 and err["max"] == 0, name
        assert err["mean_error"] == 0 and err["end_error"] == 0, name
    assert report["time_range_s"] == [0.0, 2.0] and report["grid_step_s"] == 0.25
    assert (out / "compare.png").stat().st_size > 0


def test_a_kept_record_with_its_series_gzipped_reads_as_before(runs, tmp_path):
    """configs/real/*/real-*/ keep their timeseries.csv gzipped: compare reads either."""
    import gzip
    import shutil

    kept = tmp_path / "kept"
    shutil.copytree(runs["real"], kept)
    with open(kept / "timeseries.csv", "rb") as src, gzip.open(kept / "timeseries.csv.gz",
                                                               "wb") as dst:
        shutil.copyfileobj(src, dst)
    (kept / "timeseries.csv").unlink()
    plain, gzipped = load_run(str(runs["real"])), load_run(str(kept))
    assert plain.series.keys() == gzipped.series.keys()
    for name, (times, values) in plain.series.items():
        assert times.tolist() == gzipped.series[name][0].tolist(), name
        assert values.tolist() == gzipped.series[name][1].tolist(), name
    out = tmp_path / "cmp"
    assert main(["compare", str(runs["real"]), str(kept), "--out", str(out),
                 "--no-plots", "--tolerance", "free_pages=0"]) == 0


def test_two_seeds_of_a_run_differ(runs, tmp_path):
    out = tmp_path / "cmp"
    assert main(["compare", str(runs["seed1"]), str(runs["seed2"]), "--out", str(out)]) == 0
    assert errors(out, "slab_objects/dentry", "seed2")["mae"] > 0
    assert errors(out, "free_pages", "seed2")["mae"] > 0
    assert errors(out, "free_pages", "seed2")["mae_relative"] > 0


def test_a_tolerance_exceeded_exits_1_naming_the_series(runs, tmp_path, capsys):
    out = tmp_path / "cmp"
    args = ["compare", str(runs["seed1"]), str(runs["seed2"]), "--out", str(out)]
    assert main([*args, "--tolerance", "free_pages=0", "--tolerance", "avail/9=1000%"]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1  # one violation, one line
    assert err.startswith("fragsim: error: free_pages: seed2: mean absolute error")
    assert "exceeds the tolerance 0 (free_pages=0)" in err
    report = json.loads((out / "compare.json").read_text())
    assert report["ok"] is False
    assert [t["runs"]["seed2"]["ok"] for t in report["tolerances"]] == [False, True]
    # Generous enough, as a file: exit 0.
    limits = tmp_path / "tolerances.yaml"
    limits.write_text("free_pages: 100%\nslab_objects/dentry:end: 1000000\n")
    assert main([*args, "--tolerance-file", str(limits)]) == 0


def test_a_record_and_a_simulation_compare_on_the_series_they_share(runs, tmp_path):
    out = tmp_path / "cmp"
    assert main(["compare", str(runs["real"]), str(runs["seed1"]), "--out", str(out),
                 "--tolerance", "pageblocks/Movable:end=50%"]) == 1  # not a twin at all
    report = json.loads((out / "compare.json").read_text())
    assert [r["source"] for r in report["runs"]] == ["record", "simulation"]
    assert report["time_range_s"][0] == 0 and 0.59 < report["time_range_s"][1] < 0.7
    assert {"avail/9", "avail/DMA32/9", "free_pages/DMA", "pageblocks/DMA32/Movable"} <= set(
        report["metrics"])
    assert "avail/Normal/9" in report["only_in_some_runs"]  # the simulated machine has none
    assert errors(out, "avail/9", "seed1")["mae"] > 0
    assert (out / "compare.png").stat().st_size > 0


def test_plot_redraws_the_runs_it_compares_zones_and_all(runs, capsys):
    # Per-zone keys (nr_free "DMA32/3") beside the machine-wide ones: the heatmap is of
    # the machine's free lists.
    for name in ("seed1", "real"):
        assert main(["plot", str(runs[name])]) == 0
        assert (runs[name] / "buddyinfo_heatmap.png").stat().st_size > 0
        assert (runs[name] / "availability.png").stat().st_size > 0


def write_csv(path: Path, rows: list[tuple]) -> Path:
    path.mkdir(parents=True)
    with open(path / "timeseries.csv", "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(("time", "variant", "seed", "metric", "key", "value"))
        writer.writerows(rows)
    return path


def test_runs_are_aligned_by_interpolation_over_the_time_they_share(tmp_path):
    # A: value t at t = 0..4 (step 1); B: value t + 1 at t = 0..3 (step 0.5), and a
    # second seed of B at t + 3: B's seeds average to t + 2.
    a = write_csv(tmp_path / "a", [(t, "v", 1, "avail", "9", t) for t in range(5)])
    b = write_csv(tmp_path / "b", [(t / 2, "v", s, "avail", "9", t / 2 + 1 + 2 * (s - 1))
                                   for s in (1, 2) for t in range(7)])
    report = compare([str(a), str(b)], out=tmp_path / "cmp", plots=False)
    assert report["time_range_s"] == [0.0, 3.0] and report["grid_step_s"] == 1.0
    err = report["metrics"]["avail/9"]["runs"]["b"]
    assert err["mae"] == 2 and err["max"] == 2 and err["mean_error"] == 2
    assert err["end_error"] == 2 and err["end_relative"] == 2 / 3
    assert err["mae_relative"] == 2 / 1.5  # over the reference's time average, 1.5
    assert report["runs"][1]["seeds"] == [1, 2]


def test_from_starts_the_compared_range_later_and_a_zero_reference_is_said(tmp_path,
                                                                           capsys):
    a = write_csv(tmp_path / "a", [(t, "v", 1, "free_pages", "", 0) for t in range(5)])
    b = write_csv(tmp_path / "b", [(t, "v", 1, "free_pages", "", t) for t in range(5)])
    out = tmp_path / "cmp"
    assert main(["compare", str(a), str(b), "--from", "2s", "--out", str(out),
                 "--tolerance", "free_pages=10%", "--no-plots"]) == 1
    report = json.loads((out / "compare.json").read_text())
    assert report["time_range_s"] == [2.0, 4.0]
    assert report["metrics"]["free_pages"]["runs"]["b"]["mae"] == 3  # mean of 2..4
    assert report["metrics"]["free_pages"]["runs"]["b"]["mae_relative"] is None
    err = capsys.readouterr().err
    assert "free_pages: b: mean absolute error 3 against a, whose value is 0" in err
    assert not (out / "compare.png").exists()


def test_thp_success_is_recomputed_over_a_trailing_window(tmp_path):
    # 4 attempts a second; all succeed for 10 s, then none: the 5 s window's rate
    # falls from 1 to 0 over 5 s.
    rows = []
    for t in range(21):
        tried = 4 * t
        ok = 4 * min(t, 10)
        rows.append((t, "v", 1, "thp_attempts", "", tried))
        if tried:
            rows.append((t, "v", 1, "thp_success_cumulative", "", ok / tried))
            rows.append((t, "v", 1, "thp_success_rate", "", 0.123))  # a probe's own window
    run = load_run(str(write_csv(tmp_path / "a", rows)), thp_window=5.0)
    times, rate = run.series[("thp_success_rate", "")]
    by_time = dict(zip(times.tolist(), rate.tolist(), strict=True))
    assert by_time[5.0] == 1.0 and by_time[10.0] == 1.0
    assert by_time[12.0] == pytest.approx(3 / 5) and by_time[15.0] == 0.0
    assert 0.0 not in by_time  # no attempt yet: no rate


def test_a_tolerance_is_name_statistic_and_an_absolute_or_relative_limit():
    tol = parse_tolerance("avail/Normal/9:mean=20%")
    assert (tol.name, tol.stat, tol.limit, tol.relative) == ("avail/Normal/9", "mean", 0.2,
                                                            True)
    tol = parse_tolerance("thp_success_rate=0.1")
    assert (tol.name, tol.stat, tol.limit, tol.relative) == ("thp_success_rate", "mae", 0.1,
                                                            False)
    assert parse_tolerance("avail/Normal:node1/9:end=3").name == "avail/Normal:node1/9"
    for bad in ("avail/9", "avail/9=", "avail/9=lots", "avail/9:median=1", "avail/9=-1"):
        with pytest.raises(FragsimError):
            parse_tolerance(bad)


@pytest.mark.parametrize("make_args, expected", [
    (lambda r, t: [str(t / "nothing"), str(r["seed1"])], "no such directory"),
    (lambda r, t: [str(r["seed1"] / "config.yaml"), str(r["seed1"])], "got a file"),
    (lambda r, t: [str(t), str(r["seed1"])], "with timeseries.csv"),
    (lambda r, t: [str(r["seed1"]), str(r["seed2"]), "--tolerance", "avail/99=1"],
     "expected a series of the runs"),
    (lambda r, t: [str(r["real"]), str(r["seed1"]), "--tolerance", "avail/Normal/9=1"],
     "which seed1 lacks"),
    (lambda r, t: [str(r["seed1"]), str(r["seed2"]), "--tolerance", "avail/9"],
     "expected NAME[:STAT]=LIMIT"),
    (lambda r, t: [f"{r['seed1']}:nope", str(r["seed2"])], "expected a variant of default"),
    (lambda r, t: [str(r["seed1"])], "expected at least two runs"),
])
def test_bad_input_is_one_line_and_exit_status_2(runs, tmp_path, capsys, make_args, expected):
    out = tmp_path / "cmp"
    assert main(["compare", *make_args(runs, tmp_path), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and expected in err, err
    assert not out.exists()


def test_help_has_an_example(capsys):
    assert main(["compare", "--help"]) == 0
    out = capsys.readouterr().out
    assert "Example:" in out and "fragsim compare results/" in out and "--tolerance" in out
