"""The shared real capture read as a record (sim/capture.py), and compared."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from sim.capture import capture_series, capture_timings, is_capture
from sim.cli import main
from sim.config import load_config
from sim.errors import FragsimError
from sim.procfs import parse_buddyinfo, parse_pagetypeinfo
from sim.units import parse_duration, parse_size

REAL = Path(__file__).resolve().parent.parent / "configs/real"
CAPTURE = REAL / "fileserver-a"


@pytest.fixture(scope="module")
def series():
    return capture_series(CAPTURE)


def test_the_first_sample_is_the_start_snapshot(series):
    """The sample at t = 0.01 s was read just after the start snapshot: the same free
    lists and pageblock counts, zone by zone."""
    zones = parse_buddyinfo((CAPTURE / "start.buddyinfo").read_text())
    info = parse_pagetypeinfo((CAPTURE / "start.pagetypeinfo").read_text())
    for zone in zones:
        for order, n in enumerate(zone.nr_free):
            assert series[("nr_free", f"{zone.zone}/{order}")][1][0] == n
        for name, count in zip(info.migratetypes, info.blocks[(0, zone.zone)], strict=True):
            assert series[("pageblocks", f"{zone.zone}/{name}")][1][0] == count
    nr_free = [sum(z.nr_free[o] for z in zones) for o in range(11)]
    assert series[("avail", "9")][1][0] == nr_free[9] + 2 * nr_free[10]


def test_the_machine_series_sum_the_zones_and_counters_start_at_zero(series):
    for order in range(11):
        total = sum(series[("avail", f"{z}/{order}")][1] for z in ("DMA", "DMA32", "Normal"))
        assert np.array_equal(series[("avail", str(order))][1], total)
    for (metric, key), (_, values) in series.items():
        if metric == "vmstat":
            assert values[0] == 0, key
            if not key.startswith("nr_"):  # nr_free_pages, nr_file_pages: levels
                assert np.all(np.diff(values) >= 0), key


@pytest.mark.parametrize("name, probes", [("fileserver-a", 460), ("fileserver-b", 449)])
def test_the_thp_series_count_the_probe_file(name, probes):
    capture = REAL / name
    series = capture_series(capture)
    rows = (capture / "probe.csv").read_text().splitlines()[1:]
    ok = sum(int(r.split(",")[1]) for r in rows)
    t, tried = series[("thp_attempts", "")]
    assert tried[-1] == len(rows) == probes
    assert series[("thp_success_cumulative", "")][1][-1] == ok / len(rows)


@pytest.mark.parametrize("name", ["fileserver-a", "fileserver-b"])
def test_each_twin_takes_its_workload_timings_from_its_own_capture(name):
    """configs/real/NAME.yaml's rates, starts, catch-ups, deletion and probe period are
    the ones capture_timings reads off configs/real/NAME/ (to the configs' rounding),
    so the two twins are written by one rule."""
    timings = capture_timings(REAL / name)
    config = load_config(REAL / f"{name}.yaml")
    by_kind = {w.kind: w for w in config.workloads}
    anon, reader, churn, probe = (by_kind[k] for k in ("anon", "page_cache", "fs_churn",
                                                      "thp_probe"))

    def seconds(spec, key):
        return parse_duration(getattr(spec, key))

    assert parse_size(anon.grow_rate) / (1 << 20) == pytest.approx(timings["balloon_mib_s"],
                                                                   abs=2)
    for w in (reader, churn, probe):
        assert seconds(w, "start") == pytest.approx(timings["start_s"], abs=0.06)
    assert reader.catch_up == pytest.approx(timings["reader_catch_up"], abs=0.005)
    assert churn.catch_up == pytest.approx(timings["creator_catch_up"], abs=0.005)
    assert seconds(churn, "delete_after") == pytest.approx(timings["delete_after_s"],
                                                           abs=0.05)
    assert churn.delete_rate == pytest.approx(timings["delete_per_s"], rel=0.01)
    assert seconds(probe, "interval") == pytest.approx(timings["probe_interval_s"],
                                                       abs=0.0005)
    assert seconds(reader, "paced_from") == seconds(churn, "paced_from") == 0


def test_the_capture_compared_with_itself_has_no_error(tmp_path):
    out = tmp_path / "cmp"
    assert main(["compare", str(CAPTURE), str(CAPTURE), "--out", str(out),
                 "--no-plots", "--tolerance", "avail/Normal/9=0"]) == 0
    report = json.loads((out / "compare.json").read_text())
    assert report


def test_a_directory_that_is_no_capture_is_one_line(tmp_path):
    (tmp_path / "params.json").write_text("{}")
    assert not is_capture(tmp_path)
    with pytest.raises(FragsimError, match="expected a capture directory"):
        capture_series(tmp_path)
