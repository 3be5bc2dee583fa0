"""The 64 GiB file server (configs/bench64.yaml): what a simulated second costs once
memory is full, and so a simulated hour and week; the fill separately; peak RSS.

One run in this process, through ``sim.runner.run_machine`` as ``fragsim run`` does it
(sampling included), timed in CPU time (``time.process_time``: the machines are
shared) at every sample (the ``progress`` callback). The run is cut where the figures
are taken rather than at the config's duration:

- **fill**: from t = 0 to the first sample at which reclaim has taken a page
  (``pgsteal_kswapd + pgsteal_direct > 0``: memory is full);
- **settle**: the next ``--settle`` simulated seconds (the first waves of reclaim,
  compaction and unlinks on a full machine cost more than the ones after);
- **steady**: the next ``--steady`` simulated seconds, the figure a long run costs per
  simulated second. The config's file churn comes in 10 s waves (creates, then
  unlinks), so ``--steady`` is a multiple of 10 s: whole waves.

A machine that is not full after ``--max-fill`` simulated seconds is reported as such.
Peak RSS is the run's at the end, the machine's building included (``sim.runner``
``peak_rss_bytes``: ``VmHWM`` of /proc/self/status, reset as the run starts); bytes per
page divide it by the simulated pages. Not ``ru_maxrss``: started by fork and exec, as
bench/run.py starts it, that counts the parent's resident set at the fork too (Linux
keeps the larger of the two across exec), which read 84 B a page for the 24 GiB run
that measures 74 alone.

    python bench/bench64.py                                  # 64 GiB, settle 10 s, steady 30 s
    python bench/bench64.py --set machine.memory=128GiB --steady 10 --json out.json
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

import sim.runner  # noqa: E402
from sim.experiment import load_config  # noqa: E402

CONFIG = REPO / "configs" / "bench64.yaml"
WAVE_S = 10.0  # configs/bench64.yaml's phases step
WEEK_S = 7 * 24 * 3600.0
# The vmstat counters kept at each sample, to show the slow-path work per window.
COUNTERS = ("pgsteal_kswapd", "pgsteal_direct", "allocstall", "compact_stall",
            "compact_migrate_scanned", "compact_free_scanned")


class _Done(Exception):
    """Raised by the progress callback to end the run once the windows are measured."""


def measure(overrides: list[str], settle: float, steady: float, max_fill: float) -> dict:
    """One run of configs/bench64.yaml with ``overrides``; the raw marks and the cuts."""
    if steady <= 0 or steady % WAVE_S:
        raise SystemExit(f"--steady: expected a multiple of {WAVE_S:g} s, got {steady:g}")
    cpu0 = time.process_time()
    # duration: a cap; the run is cut by the progress callback. Overrides after it win.
    config = load_config(CONFIG, [f"duration={max_fill + settle + steady}s", *overrides])
    machines: list = []

    class SeenMachine(sim.runner.Machine):
        # The runner builds the Machine; the callback reads its counters to see when
        # memory is full (sim/runner.py is interpreted: its global is looked up).
        def __init__(self, *args, **kwargs) -> None:
            super().__init__(*args, **kwargs)
            machines.append(self)

    marks: list[dict] = []
    cut = {"full_s": None}

    def progress(t: float) -> None:
        machine = machines[-1]
        vmstat = machine.vmstat()
        marks.append({"t": t, "cpu_s": time.process_time() - cpu0,
                      "maxrss_kib": sim.runner.peak_rss_bytes() // 1024,
                      "alloc_ops": machine.buddy_calls,
                      **{k: vmstat[k] for k in COUNTERS}})
        if cut["full_s"] is None and vmstat["pgsteal_kswapd"] + vmstat["pgsteal_direct"] > 0:
            cut["full_s"] = t
        if cut["full_s"] is not None and t >= cut["full_s"] + settle + steady - 1e-9:
            raise _Done

    original = sim.runner.Machine
    sim.runner.Machine = SeenMachine
    try:
        sim.runner.run_machine(config, config.seed, "default", progress)
    except _Done:
        pass
    finally:
        sim.runner.Machine = original
    pages = config.machine.memory // config.machine.page_size
    return {"overrides": overrides, "memory_bytes": config.machine.memory, "pages": pages,
            "cpus": config.machine.cpus, "zones": [name for name, _ in machines[-1].zones],
            "settle_s": settle, "steady_s": steady, "full_s": cut["full_s"],
            "peak_rss_bytes": sim.runner.peak_rss_bytes(),
            "marks": marks}


def _at(marks: list[dict], t: float) -> dict:
    for mark in marks:
        if mark["t"] >= t - 1e-9:
            return mark
    return marks[-1]


def _window(marks: list[dict], start: float, end: float) -> dict:
    a, b = _at(marks, start), _at(marks, end)
    sim_s, cpu_s = b["t"] - a["t"], b["cpu_s"] - a["cpu_s"]
    out = {"from_s": a["t"], "to_s": b["t"], "cpu_s": cpu_s,
           "sim_s_per_cpu_s": sim_s / cpu_s if cpu_s > 0 else float("nan"),
           "alloc_ops_per_sim_s": (b["alloc_ops"] - a["alloc_ops"]) / sim_s if sim_s else 0.0}
    for key in COUNTERS:
        out[f"{key}_per_sim_s"] = (b[key] - a[key]) / sim_s if sim_s else 0.0
    return out


def analyse(record: dict) -> dict:
    """The fill, settle and steady windows of ``measure``'s record, and what the
    steady rate makes of a simulated hour and week on one core."""
    marks, full = record["marks"], record["full_s"]
    pages = record["pages"]
    out = {"memory_gib": record["memory_bytes"] / (1 << 30), "pages": pages,
           "build_cpu_s": marks[0]["cpu_s"], "run_cpu_s": marks[-1]["cpu_s"], "full_s": full,
           "peak_rss_bytes": record["peak_rss_bytes"],
           "bytes_per_page": record["peak_rss_bytes"] / pages,
           "rss_at_full_bytes": None if full is None else _at(marks, full)["maxrss_kib"] * 1024}
    if full is None:
        out["error"] = f"memory not full after {marks[-1]['t']:g} simulated seconds"
        return out
    settle_end = full + record["settle_s"]
    out["fill"] = _window(marks, 0.0, full)
    out["settle"] = _window(marks, full, settle_end)
    out["steady"] = steady = _window(marks, settle_end, settle_end + record["steady_s"])
    # Wave by wave: how much one 10 s wave's cost varies within the window.
    steady["wave_sim_s_per_cpu_s"] = [
        _window(marks, start, start + WAVE_S)["sim_s_per_cpu_s"]
        for start in [settle_end + k * WAVE_S for k in range(int(record["steady_s"] // WAVE_S))]]
    per_sim_s = 1.0 / steady["sim_s_per_cpu_s"]
    out["cpu_s_per_sim_s"] = per_sim_s
    out["hours_per_sim_hour"] = per_sim_s
    out["days_per_sim_week"] = per_sim_s * WEEK_S / 86400
    out["week_speedup_needed"] = per_sim_s * WEEK_S / 3600  # target: a week in an hour
    return out


def describe(a: dict) -> str:
    """A few lines for a person."""
    head = (f"bench64 at {a['memory_gib']:g} GiB ({a['pages']} pages): build "
            f"{a['build_cpu_s']:.1f} CPU s, peak RSS {a['peak_rss_bytes'] / 2**30:.2f} GiB "
            f"({a['bytes_per_page']:.1f} B/page)")
    if "error" in a:
        return head + f"\n  {a['error']}"
    f, s, st = a["fill"], a["settle"], a["steady"]
    return "\n".join([
        head,
        f"  fill   0-{f['to_s']:g} s: {f['sim_s_per_cpu_s']:.2f} sim s/CPU s "
        f"({f['cpu_s']:.1f} CPU s)",
        f"  settle {s['from_s']:g}-{s['to_s']:g} s: {s['sim_s_per_cpu_s']:.2f} sim s/CPU s "
        f"({s['cpu_s']:.1f} CPU s)",
        f"  steady {st['from_s']:g}-{st['to_s']:g} s: {st['sim_s_per_cpu_s']:.2f} sim s/CPU s"
        f" (waves: {', '.join(f'{w:.2f}' for w in st['wave_sim_s_per_cpu_s'])})",
        f"    {st['cpu_s']:.1f} CPU s; {st['alloc_ops_per_sim_s'] / 1e3:.0f} k buddy ops, "
        f"{st['compact_stall_per_sim_s']:.0f} direct compactions, "
        f"{st['allocstall_per_sim_s']:.0f} direct reclaims per sim s",
        f"  one core: a simulated hour {a['hours_per_sim_hour'] * 60:.0f} min, a week "
        f"{a['days_per_sim_week']:.1f} days ({a['week_speedup_needed']:.0f}x from a week "
        f"in an hour)",
    ])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--set", dest="overrides", action="append", default=[],
                        metavar="KEY=VALUE", help="a config override (repeatable)")
    parser.add_argument("--settle", type=float, default=10.0)
    parser.add_argument("--steady", type=float, default=30.0,
                        help="simulated seconds measured (a multiple of 10)")
    parser.add_argument("--max-fill", type=float, default=600.0,
                        help="give up if memory is not full by then (simulated seconds)")
    parser.add_argument("--json", type=Path, help="write the record and analysis here")
    args = parser.parse_args(argv)
    record = measure(args.overrides, args.settle, args.steady, args.max_fill)
    analysis = analyse(record)
    print(describe(analysis))
    if args.json:
        args.json.write_text(json.dumps({"record": record, "analysis": analysis}) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
