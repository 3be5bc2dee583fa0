"""``fragsim record``: the live kernel sampled over time into a run's result layout, with
a run's series names (sim/record.py, docs/results.md)."""

from __future__ import annotations

import json
import os
import platform
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from proc_helpers import interruptible
from record_helpers import DATA, TINY, VMSTAT, standin_kernel, write_vmstat

from sim import metrics
from sim.cli import main
from sim.livekernel import LiveKernel
from sim.procfs import parse_buddyinfo, parse_pagetypeinfo
from sim.record import (
    NOT_RECORDED,
    block_devices,
    free_area_series,
    pageblock_series,
    record,
    thp_series,
    vmstat_series,
)
from sim.results import read_timeseries

CORE = {"avail", "nr_free", "pageblocks", "free_pages", "slab_objects"}


def series_of(out: Path) -> dict:
    runs = read_timeseries(out / "timeseries.csv")
    assert list(runs) == [("real", 0)]
    return runs[("real", 0)]


def summary_of(out: Path) -> dict:
    summary = json.loads((out / "summary.json").read_text())
    assert summary["source"] == "record" and list(summary["variants"]) == ["real"]
    return summary


# ------------------------------------------------------------------ the live kernel


def test_recording_a_short_command_writes_a_run_layout_that_plot_and_compare_read(
        tmp_path, capsys):
    out = tmp_path / "rec"
    assert main(["record", str(out), "--every", "0.25", "--", "sleep", "1"]) == 0
    printed = capsys.readouterr().out
    assert "`sleep 1` exited with status 0" in printed and "ms on average" in printed
    for name in ("timeseries.csv", "summary.json", "config.yaml", "start/buddyinfo",
                 "final/buddyinfo", "final/snapshot.json", ".fragsim-result"):
        assert (out / name).is_file(), name
    series = series_of(out)
    times, avail9 = series[("avail", "9")]
    assert 5 <= len(times) <= 7 and times[0] == 0.0 and 0.95 <= times[-1] < 2.0
    zones = [z.zone for z in parse_buddyinfo((out / "start" / "buddyinfo").read_text())]
    # Machine-wide avail[9] is the zones' sum, sample by sample.
    assert (sum(series[("avail", f"{z}/9")][1] for z in zones) == avail9).all()
    assert series[("vmstat", "pgsteal_kswapd")][1][0] == 0  # a change since the first sample
    if os.geteuid() == 0:  # the root-only files too
        assert ("pageblocks", "Movable") in series and ("slab_objects", "dentry") in series
    run = summary_of(out)["variants"]["real"]["runs"][0]
    assert run["complete"] and run["command"] == ["sleep", "1"] and run["command_status"] == 0
    assert run["samples"] == len(times) and run["sample_cost_s"]["max"] > 0
    config = yaml.safe_load((out / "config.yaml").read_text())
    assert config["kind"] == "record" and config["every"] == 0.25
    assert config["kernel"]["release"] == platform.release()
    assert "vm.min_free_kbytes" in config["kernel"]["sysctls"]
    assert config["kernel"]["thp"]["enabled"] in ("always", "madvise", "never")
    for dev, queue in config["kernel"]["block_devices"].items():  # as /sys/block says
        for name, value in queue.items():
            assert int(Path(f"/sys/block/{dev}/queue/{name}").read_text()) == value

    assert main(["plot", str(out)]) == 0
    assert (out / "availability.png").stat().st_size > 0
    assert (out / "buddyinfo_heatmap.png").stat().st_size > 0
    assert main(["compare", str(out), str(out), "--out", str(tmp_path / "cmp")]) == 0
    report = json.loads((tmp_path / "cmp" / "compare.json").read_text())
    assert report["metrics"][f"avail/{zones[-1]}/9"]["runs"]["rec #2"]["mae"] == 0


def test_the_commands_exit_status_becomes_records(tmp_path, capsys):
    assert main(["record", str(tmp_path / "rec"), "--every", "0.5", "--",
                 "sh", "-c", "exit 3"]) == 3
    assert "exited with status 3" in capsys.readouterr().out
    assert summary_of(tmp_path / "rec")["complete"] is True


def test_a_command_still_running_at_the_duration_is_stopped(tmp_path, capsys):
    started = time.monotonic()
    assert main(["record", str(tmp_path / "rec"), "--every", "0.1", "--duration", "0.5",
                 "--", "sleep", "30"]) == 0
    assert time.monotonic() - started < 10  # not the 30 s of the sleep
    assert "still ran at --duration 0.5: stopped it" in capsys.readouterr().out
    run = summary_of(tmp_path / "rec")["variants"]["real"]["runs"][0]
    assert run["stopped_by"] == "duration" and run["command_status"] == 128 + signal.SIGTERM
    assert 0.499 <= run["duration_s"] < 0.8


def without_damon_notes(err: str) -> str:
    """stderr less the lines a DAMON pageout scheme of the host adds when it paged
    anything out during the recording (a machine like this project's runs one from
    boot, and what it pages out depends on the host's page cache, not on the test)."""
    return "".join(line for line in err.splitlines(keepends=True)
                   if not line.startswith("fragsim: DAMON scheme "))


def test_a_command_past_the_default_limit_is_stopped_and_the_record_marked_incomplete(
        tmp_path, capsys, monkeypatch):
    import sim.record

    monkeypatch.setattr(sim.record, "DEFAULT_LIMIT_S", 0.3)  # 1 h without --duration
    assert main(["record", str(tmp_path / "rec"), "--every", "0.1", "--", "sleep", "30"]) == 1
    err = without_damon_notes(capsys.readouterr().err)
    assert err.count("\n") == 1 and "`sleep 30` still ran after 300ms" in err
    summary = summary_of(tmp_path / "rec")
    assert summary["complete"] is False
    assert summary["variants"]["real"]["runs"][0]["stopped_by"] == "limit"


def test_ctrl_c_stops_the_command_and_keeps_what_was_recorded_marked_incomplete(tmp_path):
    out, pid_file = tmp_path / "rec", tmp_path / "pid"
    proc = subprocess.Popen(
        [sys.executable, "-m", "sim", "record", str(out), "--every", "0.1", "--",
         "sh", "-c", f"echo $$ > {pid_file}; exec sleep 30"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, preexec_fn=interruptible)
    deadline = time.monotonic() + 10
    while not (pid_file.is_file() and pid_file.read_text().strip()):
        assert time.monotonic() < deadline and proc.poll() is None
        time.sleep(0.05)
    time.sleep(0.4)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=20)
    err = without_damon_notes(err)
    assert proc.returncode == 130
    assert err.count("\n") == 1 and "interrupted" in err and "marked incomplete" in err
    assert not Path(f"/proc/{pid_file.read_text().strip()}").exists()  # the command is gone
    summary = summary_of(out)
    run = summary["variants"]["real"]["runs"][0]
    assert summary["complete"] is False and run["stopped_by"] == "signal"
    assert run["samples"] >= 3 and (out / "final" / "buddyinfo").is_file()


# ------------------------------------------------------------------ stand-in kernels


def test_a_record_names_its_series_as_a_simulated_run_does(tmp_path):
    from sim.experiment import load_config
    from sim.runner import run_machine

    config = tmp_path / "tiny.yaml"
    config.write_text(TINY)
    simulated = run_machine(load_config(config), 1, "default").series
    kernel = standin_kernel(tmp_path / "kernel")
    counters = dict(VMSTAT)

    def thp_faults(t, samples, values, cost):  # one more THP fault of two each sample
        counters["thp_fault_alloc"] += 1
        counters["thp_fault_fallback"] += 1
        write_vmstat(kernel.proc, counters)

    out = tmp_path / "rec"
    record(out, duration=0.3, every=0.1, kernel=kernel, slab_min_pages=0, progress=thp_faults)
    recorded = series_of(out)
    sim_metrics = {m for m, _ in simulated}
    rec_metrics = {m for m, _ in recorded}
    assert sim_metrics >= CORE and rec_metrics >= CORE
    assert {"thp_success_rate", "thp_attempts", "thp_success_cumulative",
            "mem_available", "page_cache_pages", "unusable_index",
            "fragmentation_index", "fragmentation_score", "vmstat"} <= sim_metrics & rec_metrics
    assert sim_metrics - rec_metrics <= set(NOT_RECORDED)  # anything else is recorded
    zones = {z.zone for z in parse_buddyinfo((DATA / "before.buddyinfo").read_text())}

    def zone_of(key: str) -> str | None:
        zone = key.partition("/")[0]
        return zone if zone in zones else None

    for metric in sim_metrics & rec_metrics:
        sim_keys = {k for m, k in simulated if m == metric}
        rec_keys = {k for m, k in recorded if m == metric}
        node_keys = {k for k in rec_keys if zone_of(k) is None}
        assert sim_keys <= rec_keys, metric  # a run's keys (its zones DMA, DMA32) recorded
        for key in rec_keys - node_keys:  # every zone's: <Zone>/<key>, or <Zone> for ""
            rest = key.partition("/")[2]
            assert rest in node_keys and (rest or "/" not in key), (metric, key)
    for metric in ("avail", "free_pages", "pageblocks"):  # every zone's, and the machine's
        assert {zone_of(k) for m, k in recorded if m == metric} == zones | {None}
    assert ("free_pages", "Normal") in recorded and ("avail", "Normal/9") in recorded
    # Each CPU's pageset, per zone and summed, in a record and in a run alike.
    for series in (recorded, simulated):
        cpus = sorted(k for m, k in series if m == "pcp_pages" and k.startswith("cpu"))
        assert cpus and sum(series[("pcp_pages", k)][1] for k in cpus).tolist() == \
            series[("pcp_pages", "")][1].tolist()
    assert ("free_pages", "DMA32") in simulated and ("avail", "DMA32/9") in simulated
    assert recorded[("thp_success_rate", "")][1].tolist() == [0.5, 0.5, 0.5]
    assert recorded[("vmstat", "thp_fault_alloc")][1].tolist() == [0, 1, 2, 3]


def test_machine_wide_series_sum_the_zones_and_their_indices_use_the_summed_counts():
    zones = parse_buddyinfo((DATA / "before.buddyinfo").read_text())
    values = free_area_series(zones, 9)
    summed = [sum(col) for col in zip(*(z.nr_free for z in zones), strict=True)]
    for order in range(11):
        assert values[("nr_free", str(order))] == summed[order]
        assert values[("avail", str(order))] == sum(values[("avail", f"{z.zone}/{order}")]
                                                   for z in zones)
        assert values[("unusable_index", str(order))] == metrics.unusable_index(summed, order)
    assert values[("fragmentation_index", "9")] == metrics.fragmentation_index(summed, 9)
    normal = zones[-1].nr_free
    assert values[("unusable_index", "Normal/9")] == metrics.unusable_index(normal, 9)
    assert values[("avail", "Normal/9")] == 13 * 1 + 14 * 2  # nr_free[9] + 2 x nr_free[10]
    # The node's fragmentation score weighs each zone by its present pages, as kcompactd.
    present = {(0, "DMA"): 4000, (0, "DMA32"): 782000, (0, "Normal"): 5505000}
    weighted = free_area_series(zones, 9, present)[("fragmentation_score", "")]
    assert weighted == metrics.fragmentation_score_node(
        [(present[(0, z.zone)], z.nr_free) for z in zones])


def test_pageblocks_by_type_per_zone_and_summed_and_mixed_blocks_where_the_kernel_has_them():
    text = (DATA / "before.pagetypeinfo").read_text()
    info = parse_pagetypeinfo(text)
    values = pageblock_series(info)
    for name in info.migratetypes:
        assert values[("pageblocks", name)] == sum(values[("pageblocks", f"{z}/{name}")]
                                                   for _, z in info.blocks)
    assert values[("pageblocks", "Normal/Movable")] == info.blocks[(0, "Normal")][1]
    assert values[("highatomic_pageblocks", "")] == values[("pageblocks", "HighAtomic")]
    assert not any(m == "mixed_pageblocks" for m, _ in values)  # no page_owner: none
    mixed = ("\nNumber of mixed blocks "
             "   Unmovable      Movable  Reclaimable   HighAtomic      Isolate \n"
             "Node 0, zone    DMA32            0            4            0            0"
             "            0 \n"
             "Node 0, zone   Normal            3           17            2            0"
             "            0 \n")
    values = pageblock_series(parse_pagetypeinfo(text + mixed))
    assert values[("mixed_pageblocks", "Normal")] == 17  # Movable blocks, as a run's
    assert values[("mixed_pageblocks", "")] == 21


def test_vmstat_series_are_changes_since_the_first_sample_and_thp_rates_come_from_them():
    first = {"pgsteal_kswapd": 100, "allocstall_normal": 2, "allocstall_dma32": 1,
             "thp_fault_alloc": 10, "thp_fault_fallback": 5, "not_a_counter_we_keep": 7}
    before = dict(first, thp_fault_alloc=12, thp_fault_fallback=6)
    now = dict(first, pgsteal_kswapd=160, allocstall_normal=5, thp_fault_alloc=15,
               thp_fault_fallback=7, not_a_counter_we_keep=9)
    values = vmstat_series(now, first)
    assert values[("vmstat", "pgsteal_kswapd")] == 60
    assert values[("vmstat", "allocstall")] == 3  # the sum of allocstall_*
    assert ("vmstat", "not_a_counter_we_keep") not in values
    thp = thp_series(now, before, first)
    assert thp[("thp_attempts", "")] == 7  # 5 allocations + 2 fallbacks since the start
    assert thp[("thp_success_cumulative", "")] == 5 / 7
    assert thp[("thp_success_rate", "")] == 3 / 4  # since the previous sample
    assert thp_series(first, first, first) == {("thp_attempts", ""): 0}  # no attempt: no rate


def test_without_root_it_records_what_it_can_read_and_says_once_what_it_skipped(
        tmp_path, monkeypatch):
    kernel = standin_kernel(tmp_path / "kernel")
    real_read = Path.read_text

    def root_only(path, *args, **kwargs):  # mode 0400, as /proc has them
        if path.parent == kernel.proc and path.name in ("pagetypeinfo", "slabinfo"):
            raise PermissionError(13, "Permission denied", str(path))
        return real_read(path, *args, **kwargs)

    monkeypatch.setattr(Path, "read_text", root_only)
    said = []
    out = tmp_path / "rec"
    result = record(out, duration=0.2, every=0.1, kernel=kernel, notify=said.append)
    assert said == ["skipped pagetypeinfo (permission denied: root only), slabinfo "
                    "(permission denied: root only): no pageblocks, highatomic_pageblocks, "
                    "slab_* series"]
    metrics_written = {m for m, _ in series_of(out)}
    assert {"avail", "nr_free", "free_pages", "vmstat", "mem_available"} <= metrics_written
    assert not metrics_written & {"pageblocks", "highatomic_pageblocks", "slab_objects"}
    assert result.complete and summary_of(out)["variants"]["real"]["runs"][0]["skipped"] == {
        "pagetypeinfo": "permission denied: root only", "slabinfo": "permission denied: root only"}


def test_a_duration_alone_samples_every_period_and_once_at_the_end(tmp_path):
    out = tmp_path / "rec"
    result = record(out, duration=0.35, every=0.1, kernel=standin_kernel(tmp_path / "k"))
    times = series_of(out)[("avail", "9")][0]
    assert result.complete and result.stopped_by == "duration"
    assert result.samples == len(times) and times[-1] >= 0.349  # the last: at the end
    # The others each in a slot of its own, in order, from 0. A sample that overran its
    # slot skips the slots it missed (record's rule), so a loaded machine may take one
    # fewer: the wall clock decides how many, the rule where each falls.
    slots = [int((t + 1e-3) / 0.1) for t in times[:-1]]
    assert slots[0] == 0 and slots == sorted(set(slots)) and 3 <= len(slots) <= 4
    assert all(0.1 * k - 1e-3 <= t < 0.1 * k + 0.08 for k, t in zip(slots, times[:-1], strict=True))
    assert times[-1] < 0.45
    run = summary_of(out)["variants"]["real"]["runs"][0]
    assert run["avail"]["9"] == 2 + 2 * 752 + 13 + 1 + 2 * (3 + 14)  # the stand-in's, all zones
    assert run["compaction"]["stalls"] == 0 and run["engine"]["kswapd_reclaimed"] == 0


@pytest.mark.parametrize("args, expected", [
    ([], "expected --duration T or a command after --"),
    (["--duration", "0s"], "--duration: expected a positive duration"),
    (["--every", "soon", "--duration", "1s"], "--every: expected a duration"),
    (["--", "no-such-command-fragsim"], "no-such-command-fragsim: expected a command on PATH"),
    (["--", "./no/such/file"], "./no/such/file: expected an executable command"),
])
def test_bad_input_is_one_line_and_exit_status_2(tmp_path, capsys, args, expected):
    out = tmp_path / "rec"
    assert main(["record", str(out), *args]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and expected in err, err
    assert not out.exists()


def test_a_record_never_writes_over_a_users_directory(tmp_path, capsys):
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "notes.txt").write_text("keep me")
    assert main(["record", str(mine), "--duration", "0.1s"]) == 2
    assert "not a fragsim result" in capsys.readouterr().err
    assert [p.name for p in mine.iterdir()] == ["notes.txt"]


def test_help_has_an_example(capsys):
    assert main(["record", "--help"]) == 0
    out = capsys.readouterr().out
    assert "Example:" in out and "fragsim record results/" in out and "-- COMMAND" in out


def test_the_block_devices_readahead_limits_are_recorded(tmp_path):
    """A twin's page_cache.read_ahead_kb must be its disk's (it sets the folio sizes):
    config.yaml keeps every block device's read_ahead_kb and max_sectors_kb."""
    for dev, ra, sectors in (("vda", "8192", "4096"), ("loop0", "128", "1280")):
        (tmp_path / "block" / dev / "queue").mkdir(parents=True)
        (tmp_path / "block" / dev / "queue" / "read_ahead_kb").write_text(ra + "\n")
        (tmp_path / "block" / dev / "queue" / "max_sectors_kb").write_text(sectors + "\n")
    (tmp_path / "block" / "odd").mkdir()  # no queue: left out
    kernel = LiveKernel(proc=tmp_path / "proc", sys_mm=tmp_path / "mm",
                        sys_block=tmp_path / "block")
    assert block_devices(kernel) == {"loop0": {"read_ahead_kb": 128, "max_sectors_kb": 1280},
                                     "vda": {"read_ahead_kb": 8192, "max_sectors_kb": 4096}}
    assert block_devices(LiveKernel(sys_block=tmp_path / "none")) == {}
