"""``fragsim run CONFIG --real --workdir DIR``: a config's workloads on the live kernel,
recorded (sim/real.py, sim/realrun.py). The runs here are small (a 256 MiB anon fill, a
few hundred files, 12 s): they are real runs on the machine the tests run on, and what
they check is what they made and that nothing of it is left."""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import yaml
from proc_helpers import interruptible

from sim import realrun
from sim.cli import main
from sim.gfp import GFP_TRANSHUGE, GFP_TRANSHUGE_LIGHT
from sim.huge_memory import vma_thp_gfp_mask
from sim.results import read_timeseries

REPO = Path(__file__).resolve().parent.parent
THP = Path("/sys/kernel/mm/transparent_hugepage")
MiB = 1 << 20


def machine_thp() -> tuple[str, str]:
    def chosen(name: str) -> str:
        text = (THP / name).read_text()
        return text[text.index("[") + 1:text.index("]")]

    return chosen("enabled"), chosen("defrag")


def probe_gfp() -> str | None:
    """A THP probe mode this machine can run (None: none, THP is off)."""
    enabled, defrag = machine_thp()
    for gfp, mask in (("direct", GFP_TRANSHUGE), ("light", GFP_TRANSHUGE_LIGHT)):
        if realrun.thp_advice(mask, gfp == "direct", enabled, defrag) is not None:
            return gfp
    return None


def write_config(path: Path, workloads: list[dict], **top) -> Path:
    config = {"name": "real-test", "duration": "12s", "sample_every": "1s", **top,
              "workloads": workloads}
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


SMALL = REPO / "configs" / "real" / "small.yaml"


def small_config(path: Path) -> tuple[Path, list[str]]:
    """configs/real/small.yaml, with the THP probe in a mode this machine can run (none
    when THP is off) and the compaction only as root; the kinds it runs."""
    config = yaml.safe_load(SMALL.read_text())
    kept = []
    for workload in config["workloads"]:
        if workload["kind"] == "thp_probe":
            workload["gfp"] = probe_gfp()
            if workload["gfp"] is None:
                continue
        if workload["kind"] == "compact_memory" and os.geteuid() != 0:
            continue
        kept.append(workload)
    config["workloads"] = kept
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path, [w["kind"] for w in kept]


def child_pids(parent: int | None = None) -> set[int]:
    """The processes whose parent is ``parent`` (this one), from /proc."""
    me, found = parent or os.getpid(), set()
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == me:
                found.add(int(entry))
    return found


def big_mappings(limit: int = 256 * MiB) -> set[str]:
    """This process's mappings of at least ``limit`` bytes (/proc/self/smaps)."""
    out = set()
    for line in Path("/proc/self/smaps").read_text().splitlines():
        head = line.split(None, 1)[0]
        if "-" in head and not head.endswith(":"):
            lo, hi = (int(x, 16) for x in head.split("-"))
            if hi - lo >= limit:
                out.add(head)
    return out


class Watcher(threading.Thread):
    """Polls, while a run goes on, the files in DIR and this process's children, and
    each child's resident memory (/proc/PID/smaps_rollup)."""

    def __init__(self, workdir: Path) -> None:
        super().__init__(daemon=True)
        self.workdir, self.done = workdir, threading.Event()
        self.most_files, self.children, self.rss_kib = 0, set(), {}

    def run(self) -> None:
        while not self.done.wait(0.2):
            self.most_files = max(self.most_files,
                                  sum(len(d) + len(f) for _, d, f in os.walk(self.workdir)))
            for pid in child_pids():
                self.children.add(pid)
                try:
                    for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
                        if line.startswith("Rss:"):
                            self.rss_kib[pid] = max(self.rss_kib.get(pid, 0),
                                                    int(line.split()[1]))
                except OSError:
                    pass


def test_a_small_real_run_creates_reads_deletes_and_releases_everything(tmp_path, capsys):
    workdir, out = tmp_path / "work", tmp_path / "out"
    workdir.mkdir()
    config, kinds = small_config(tmp_path / "small.yaml")
    mappings_before = big_mappings()
    watcher = Watcher(workdir)
    watcher.start()
    try:
        status = main(["run", str(config), "--real", "--workdir", str(workdir),
                       "--out", str(out)])
    finally:
        watcher.done.set()
        watcher.join()
    printed = capsys.readouterr()
    assert status == 0, printed.err
    assert "real run of" in printed.out and "300 files created" in printed.out

    # Everything it made existed, and nothing of it is left.
    assert watcher.most_files >= 300 + 9  # the churned files and page_cache's pool
    assert list(workdir.iterdir()) == []
    summary = json.loads((out / "summary.json").read_text())
    assert summary["source"] == "real" and summary["complete"] is True
    run = summary["variants"]["real"]["runs"][0]
    reports = {r["kind"]: r for r in run["workloads"].values()}
    assert sorted(reports) == sorted(kinds)
    pids = {r["pid"] for r in reports.values()}
    assert pids <= watcher.children and len(pids) == len(kinds)
    assert not [pid for pid in pids if Path(f"/proc/{pid}").exists()]  # each one exited
    anon = reports["anon"]
    assert watcher.rss_kib[anon["pid"]] >= 256 * 1024  # seen from outside, at its peak
    assert anon["peak_rss_kib"] >= 256 * 1024 and anon["mappings_left"] == []
    assert anon["resident_pages"] == 128 * MiB // 4096  # shrunk to shrink_to
    assert big_mappings() <= mappings_before  # nothing of it in this process either
    for kind, report in reports.items():
        assert report.get("mappings_left", []) == [], kind
    assert run["files_left"] == [] and "killed" not in run
    churn = reports["fs_churn"]
    assert (churn["created"], churn["deleted"], churn["dirs"]) == (300, 270, 3)
    cache = reports["page_cache"]
    assert cache["pool_files"] == 9 and cache["setup"]["pool_cached_pages_at_start"] < 64
    assert cache["hits"] > 0 and cache["read_bytes"] >= 0.8 * 4 * MiB * 0.8 * 11
    fragment = reports["fragment"]
    assert (fragment["allocated"], fragment["freed"]) == (16384, 12288)
    if "thp_probe" in kinds:
        assert reports["thp_probe"]["attempts"] >= 18 and run["thp_attempts"] >= 18
    if "compact_memory" in kinds:  # as root: the config asks for one compaction
        runs = reports["compact_memory"]["runs"]
        assert len(runs) == 1 and runs[0]["time_s"] > 0

    # The result reads as a real run: series, plots, comparison; config.yaml reruns it.
    series = read_timeseries(out / "timeseries.csv")[("real", 0)]
    assert max(series[("anon_pages_order0", "anon-0")][1]) >= 0.95 * 256 * MiB // 4096
    assert ("mem_available", "") in series and ("avail", "9") in series
    # Where the scheduler put each counterpart, and each CPU's pageset.
    cpus = set(os.sched_getaffinity(0))
    for name in run["workloads"]:
        assert set(series[("workload_cpu", name)][1]) <= cpus, name
    per_cpu = [series[("pcp_pages", f"cpu{c}")][1] for c in range(os.cpu_count())]
    assert np.array_equal(sum(per_cpu), series[("pcp_pages", "")][1])
    assert (out / "availability.png").is_file()
    real = yaml.safe_load((out / "real.yaml").read_text())
    assert real["kind"] == "real" and real["kernel"]["release"] == os.uname().release
    assert main(["compare", str(out), str(out), "--out", str(tmp_path / "cmp"),
                 "--no-plots"]) == 0
    compared = json.loads((tmp_path / "cmp" / "compare.json").read_text())
    assert [r["source"] for r in compared["runs"]] == ["record", "record"]
    assert main(["plot", str(out)]) == 0
    assert main(["validate", str(out / "config.yaml")]) == 0


def test_an_oversized_config_is_refused_before_anything_starts(tmp_path, capsys):
    workdir, out = tmp_path / "work", tmp_path / "out"
    workdir.mkdir()
    available = realrun.read_live_machine().mem_available
    config = write_config(tmp_path / "big.yaml", [
        {"kind": "fs_churn", "fs": "disk", "files": 10},
        {"kind": "anon", "size": 10 * available // 4096 * 4096}])
    assert main(["run", str(config), "--real", "--workdir", str(workdir),
                 "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "workloads.1" in err and "MemAvailable" in err
    assert list(workdir.iterdir()) == [] and sorted(p.name for p in tmp_path.iterdir()) == [
        "big.yaml", "work"]


@pytest.mark.parametrize("workload, named", [
    ({"kind": "slab_churn", "cache": "dentry"}, "workloads.1.kind: expected a kind with a "
     "real counterpart"),
    ({"kind": "kernel_alloc"}, "got kernel_alloc"),
    ({"kind": "phases", "steps": [{"duration": "1s", "workloads": [
        {"kind": "anon", "size": "4MiB"}, {"kind": "slab_churn", "cache": "dentry"}]}]},
     "workloads.1.steps.0.workloads.1.kind"),
    ({"kind": "anon", "pinned_share": 0.1}, "workloads.1.pinned_share"),
    ({"kind": "fragment", "fill": "4MiB", "unmovable_share": 0.5},
     "workloads.1.unmovable_share"),
    ({"kind": "page_cache", "fs": "tmpfs"}, "workloads.1.fs: expected a disk file system"),
    ({"kind": "page_cache", "large_folios": False}, "workloads.1.large_folios"),
    ({"kind": "thp_probe", "order": 4}, "workloads.1.order: expected 9"),
    ({"kind": "anon", "size": "4MiB", "cpu": "random"}, "workloads.1.cpu"),
    ({"kind": "fs_churn", "fs": "disk", "lifetime": {"mean": "1s"}}, "workloads.1.lifetime"),
    ({"kind": "fs_churn", "fs": "disk", "files": 1_000_000, "max_bytes": "4MiB"},
     "workloads.1: expected files that fit --workdir's file system"),
])
def test_what_has_no_real_counterpart_is_refused_by_name(tmp_path, capsys, workload, named):
    workdir = tmp_path / "work"
    workdir.mkdir()
    config = write_config(tmp_path / "c.yaml", [{"kind": "anon", "size": "4MiB"}, workload])
    assert main(["run", str(config), "--real", "--workdir", str(workdir),
                 "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and named in err, err
    assert list(workdir.iterdir()) == [] and not (tmp_path / "out").exists()


@pytest.mark.parametrize("args, top, named", [
    (["--real"], {}, "--real: expected --workdir DIR"),
    (["--workdir", "WORK"], {}, "--workdir: expected only with --real"),
    (["--real", "--workdir", "WORK/none"], {}, "expected a directory, got no such directory"),
    (["--real", "--workdir", "WORK", "--seeds", "3"], {}, "--seeds: expected 1 with --real"),
    (["--real", "--workdir", "WORK"], {"defrag": {"enabled": True}}, "defrag.enabled: expected "
     "false for --real"),
    (["--real", "--workdir", "WORK"], {"variants": {"a": {"seed": 1}, "b": {"seed": 2}}},
     "choose one with --variant NAME"),
])
def test_bad_real_run_options_are_refused_in_one_line(tmp_path, capsys, args, top, named):
    workdir = tmp_path / "work"
    workdir.mkdir()
    config = write_config(tmp_path / "c.yaml", [{"kind": "anon", "size": "4MiB"}], **top)
    argv = ["run", str(config), "--out", str(tmp_path / "out")]
    assert main(argv + [a.replace("WORK", str(workdir)) for a in args]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and named in err, err
    assert list(workdir.iterdir()) == [] and not (tmp_path / "out").exists()


def test_compact_memory_without_root_is_refused_naming_the_step(tmp_path, capsys, monkeypatch):
    live = realrun.read_live_machine()
    monkeypatch.setattr(realrun, "read_live_machine",
                        lambda kernel=None: dataclasses.replace(live, root=False))
    workdir = tmp_path / "work"
    workdir.mkdir()
    config = write_config(tmp_path / "c.yaml", [{"kind": "compact_memory", "at": ["1s"]}])
    assert main(["run", str(config), "--real", "--workdir", str(workdir)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert "workloads.0.kind: expected root for compact_memory" in err
    assert list(workdir.iterdir()) == []


def test_compact_memory_without_root_is_skipped_with_a_note_when_the_config_asks(
        tmp_path, capsys, monkeypatch):
    """without_root: skip leaves the step out, says which and why, and runs the rest:
    the record's summary has the other workload's report and none of the step's."""
    live = realrun.read_live_machine()
    monkeypatch.setattr(realrun, "read_live_machine",
                        lambda kernel=None: dataclasses.replace(live, root=False))
    workdir, out = tmp_path / "work", tmp_path / "out"
    workdir.mkdir()
    config = write_config(tmp_path / "c.yaml", [
        {"kind": "compact_memory", "at": ["1s"], "without_root": "skip"},
        {"kind": "anon", "size": "4MiB"}], duration="2s")
    assert main(["run", str(config), "--real", "--workdir", str(workdir), "--out", str(out),
                 "--no-plots"]) == 0
    err = capsys.readouterr().err
    assert "workloads.0 (compact_memory): skipped, as without_root: skip asks" in err
    run = json.loads((out / "summary.json").read_text())["variants"]["real"]["runs"][0]
    assert list(run["workloads"]) == ["anon-1"]  # only the anon ran
    assert list(workdir.iterdir()) == []


@pytest.mark.parametrize("enabled, defrag, gfp, madvised, advice", [
    # THP's defaults (enabled and defrag madvise): a madvised VMA compacts directly.
    ("madvise", "madvise", vma_thp_gfp_mask("madvise", True), True, "hugepage"),
    ("madvise", "madvise", GFP_TRANSHUGE_LIGHT, False, None),  # no light faults here
    ("always", "madvise", GFP_TRANSHUGE_LIGHT, False, "none"),
    ("always", "madvise", GFP_TRANSHUGE, True, "hugepage"),
    ("always", "never", GFP_TRANSHUGE, True, None),
    ("never", "madvise", GFP_TRANSHUGE, True, None),
    ("never", "madvise", None, False, "nohugepage"),  # no THP wanted: always possible
    ("always", "always", vma_thp_gfp_mask("always", False), False, "none"),
])
def test_thp_advice_gives_the_simulated_vmas_huge_page_faults_or_none(enabled, defrag, gfp,
                                                                      madvised, advice):
    assert realrun.thp_advice(gfp, madvised, enabled, defrag) == advice


def test_a_thp_mode_this_machine_cannot_give_is_refused_with_its_settings(tmp_path, capsys,
                                                                         monkeypatch):
    live = realrun.read_live_machine()
    monkeypatch.setattr(realrun, "read_live_machine", lambda kernel=None: dataclasses.replace(
        live, thp_enabled="madvise", thp_defrag="madvise"))
    config = write_config(tmp_path / "c.yaml", [{"kind": "thp_probe", "gfp": "light"}])
    assert main(["run", str(config), "--real", "--workdir", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "workloads.0.gfp: expected a THP mode this machine can run, got light" in err
    assert "enabled madvise, defrag madvise" in err and err.count("\n") == 1


def churn_setup(tmp_path: Path, files: int, create_rate: int, duration: str
                ) -> tuple[Path, Path, Path]:
    """DIR, the result directory and a config of 64 MiB of anon beside ``files`` files
    created at ``create_rate`` for ``duration``."""
    workdir, out = tmp_path / "work", tmp_path / "out"
    workdir.mkdir()
    config = write_config(tmp_path / "c.yaml", [
        {"kind": "anon", "size": "64MiB"},
        {"kind": "fs_churn", "fs": "disk", "files": files, "create_rate": create_rate}],
        duration=duration)
    return workdir, out, config


def test_memory_falling_below_the_margin_stops_the_run_and_cleans_up(tmp_path, capsys,
                                                                     monkeypatch):
    workdir, out, config = churn_setup(tmp_path, 20000, 500, "30s")
    real_available = realrun._mem_available
    started = time.monotonic()
    monkeypatch.setattr(realrun, "_mem_available", lambda: 0 if time.monotonic() - started
                        > 4 else real_available())
    assert main(["run", str(config), "--real", "--workdir", str(workdir),
                 "--out", str(out), "--no-plots"]) == 1
    err = capsys.readouterr().err
    assert "MemAvailable fell to 0 B" in err and "marked incomplete" in err
    assert list(workdir.iterdir()) == []
    summary = json.loads((out / "summary.json").read_text())
    run = summary["variants"]["real"]["runs"][0]
    assert summary["complete"] is False and run["stopped_by"] == "memory"
    assert 0 < run["workloads"]["fs_churn-1"]["created"] < 20000
    assert run["duration_s"] < 15


def churning_run(tmp_path: Path) -> tuple[subprocess.Popen, Path, Path]:
    """``python -m sim run --real`` of a minute of anon and file churn, in a session of
    its own, once it has made 500 files: the process, DIR and the result directory."""
    workdir, out, config = churn_setup(tmp_path, 100000, 1000, "60s")
    proc = subprocess.Popen(
        [sys.executable, "-m", "sim", "run", str(config), "--real", "--workdir", str(workdir),
         "--out", str(out), "--no-plots"], cwd=REPO, start_new_session=True,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, preexec_fn=interruptible)
    deadline = time.monotonic() + 30
    while sum(len(f) for _, _, f in os.walk(workdir)) < 500:
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            raise AssertionError(f"no 500 files in 30 s: {proc.communicate()[1]}")
        time.sleep(0.1)
    return proc, workdir, out


def test_ctrl_c_stops_the_workloads_deletes_their_files_and_keeps_an_incomplete_record(
        tmp_path):
    proc, workdir, out = churning_run(tmp_path)
    try:
        os.killpg(proc.pid, signal.SIGINT)  # the terminal's Ctrl-C: the whole group
        _, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, err
    assert "interrupted: stopped the workloads" in err and "marked incomplete" in err
    assert list(workdir.iterdir()) == []
    summary = json.loads((out / "summary.json").read_text())
    run = summary["variants"]["real"]["runs"][0]
    assert summary["complete"] is False and run["stopped_by"] == "signal"
    assert run["workloads"]["fs_churn-1"]["created"] >= 500
    for report in run["workloads"].values():
        assert not Path(f"/proc/{report['pid']}").exists()


def test_killing_fragsim_outright_still_stops_the_workloads_and_deletes_their_files(tmp_path):
    proc, workdir, _ = churning_run(tmp_path)
    try:
        workers = child_pids(proc.pid)
        proc.kill()  # SIGKILL: no clean-up of its own
        # wait() and not communicate(): the workers still hold its pipes until they go
        proc.wait(timeout=10)
        deadline = time.monotonic() + 30
        while list(workdir.iterdir()) or any(Path(f"/proc/{p}").exists() for p in workers):
            assert time.monotonic() < deadline, list(workdir.rglob("*"))[:5]
            time.sleep(0.1)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert len(workers) >= 2  # the counterparts (and multiprocessing's resource tracker)


def test_run_help_says_what_real_does_with_an_example(capsys):
    assert main(["run", "--help"]) == 0
    out = capsys.readouterr().out
    assert "--real runs the same workloads on this machine's kernel" in out
    assert "fragsim run configs/real/small.yaml --real --workdir /var/tmp" in out
    assert (REPO / "configs" / "real" / "small.yaml").is_file()


def test_a_workload_that_fails_stops_the_run_and_cleans_up(tmp_path, capsys):
    """A file system that fails under fs_churn (its directory taken away, as a full or
    broken disk would fail it): the run stops, the rest is deleted, exit status 1."""
    workdir, out, config = churn_setup(tmp_path, 20000, 500, "30s")
    removed = threading.Event()

    def take_the_directory_away() -> None:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and not removed.is_set():
            for churn in workdir.glob("*/01-fs_churn-1"):
                if sum(len(f) for _, _, f in os.walk(churn)) >= 200:
                    while churn.exists():
                        shutil.rmtree(churn, ignore_errors=True)
                    removed.set()
            time.sleep(0.05)

    thief = threading.Thread(target=take_the_directory_away, daemon=True)
    thief.start()
    status = main(["run", str(config), "--real", "--workdir", str(workdir), "--out", str(out),
                   "--no-plots"])
    thief.join()
    err = capsys.readouterr().err
    assert removed.is_set() and status == 1, err
    assert "workloads.1 (fs_churn fs_churn-1) failed: FileNotFoundError" in err
    assert list(workdir.iterdir()) == []
    summary = json.loads((out / "summary.json").read_text())
    run = summary["variants"]["real"]["runs"][0]
    assert summary["complete"] is False and run["stopped_by"] == "workload"
    assert "fs_churn-1" in run["failure"] and run["duration_s"] < 15
    assert run["workloads"]["anon-0"]["mappings_left"] == []


def test_a_page_cache_data_set_is_the_real_readers_pool(tmp_path):
    """``page_cache.files``: the real reader's pool is the data set, read round and
    round as in the model; without it, a file per pass of the model's stream."""
    from sim.experiment import load_config

    workdir = tmp_path / "work"
    workdir.mkdir()
    machine = realrun.read_live_machine()
    pools = []
    for extra in ({"files": 3}, {}):
        path = write_config(tmp_path / "c.yaml", [
            {"kind": "page_cache", "file_size": "1MiB", "rate": "8MiB", "reread": 0,
             **extra}])
        plan = realrun.plan_run(load_config(path), str(path), workdir, machine)
        (planned,) = plan.workloads
        pools.append((planned.spec.pool_files, planned.disk))
    assert pools[0] == (3, 3 << 20)
    assert pools[1][0] == 12 * 8 and pools[1][1] == (12 * 8) << 20  # 12 s at 8 MiB/s
    assert list(workdir.iterdir()) == []
