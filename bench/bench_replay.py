"""Trace replay speed (DESIGN.md "Performance targets": replay faster than real time).

On the real 6.18 trace (tmpfs-churn-20k-keep10: 372 008 events over 0.770 s), built from
its before.slabinfo / buddyinfo / pagetypeinfo, it measures:

- parsing alone (sim/ftrace.py) in this process, in events per second, into the batches
  the replay reads (``TraceReader.record_batches``: the C scanner's records in the
  compiled build, event tuples in pure Python);
- replaying alone (sim/replay.py) from those batches, parsed beforehand;
- the whole thing, parse + replay, in one process and with the parser in a child process
  (what ``replay_file`` does on two CPUs or more), with the real-time factor: trace span
  / wall time. Set-up (zone synthesis, slabinfo population) is reported apart;
- ``fragsim replay`` itself, in a fresh interpreter: the same, plus the time series it
  samples as it goes (its own real-time factor, from its summary.json; writing the files
  after the replay is not in it); and ``fragsim replay --from`` the snapshot, when it
  has a zoneinfo: the machine's zones (three on the shared trace's), each sampled.

Each figure is the median of ``--repeat`` runs (default 3). The trace defaults to
../shared/data/kmem-traces/tmpfs-churn-20k-keep10/trace.txt.gz when that exists, else
the copy shipped in configs/examples (xz).

    python bench/bench_replay.py
    python bench/bench_replay.py path/to/trace.txt.gz --slabinfo before.slabinfo ...
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from sim.ftrace import TraceReader  # noqa: E402
from sim.replay import Replayer, build_replay  # noqa: E402

SHARED = ROOT.parent / "shared" / "data" / "kmem-traces" / "tmpfs-churn-20k-keep10"
EXAMPLE = ROOT / "configs" / "examples" / "tmpfs-churn-20k-keep10"


def default_trace() -> Path:
    shared = SHARED / "trace.txt.gz"
    return shared if shared.exists() else EXAMPLE / "trace.txt.xz"


def snapshot_dir(trace: Path) -> Path:
    return trace.parent if (trace.parent / "before.slabinfo").exists() else EXAMPLE


def fragsim_replay(trace: Path, *args: str) -> dict:
    """``fragsim replay TRACE ARGS --no-plots`` in a fresh interpreter: its summary's
    mean (``wall_s``, ``realtime_factor``, ...)."""
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run([sys.executable, "-m", "sim", "replay", str(trace), *args,
                        "--no-plots", "--out", f"{tmp}/out"],
                       cwd=ROOT, check=True, capture_output=True)
        summary = json.loads(Path(f"{tmp}/out/summary.json").read_text())
    return summary["variants"]["replay"]["mean"]


def median_of(repeat: int, fn) -> tuple[float, object]:
    times, last = [], None
    for _ in range(repeat):
        t, last = fn()
        times.append(t)
    return statistics.median(times), last


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("trace", nargs="?", type=Path, default=None)
    ap.add_argument("--slabinfo", type=Path)
    ap.add_argument("--buddyinfo", type=Path)
    ap.add_argument("--pagetypeinfo", type=Path)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args(argv)
    trace = args.trace or default_trace()
    snaps = snapshot_dir(trace)
    slabinfo = args.slabinfo or snaps / "before.slabinfo"
    buddyinfo = args.buddyinfo or snaps / "before.buddyinfo"
    pagetypeinfo = args.pagetypeinfo or snaps / "before.pagetypeinfo"

    def whole(parallel: bool) -> tuple[float, object]:
        setup = build_replay(slabinfo=slabinfo, buddyinfo=buddyinfo, pagetypeinfo=pagetypeinfo)
        reader = TraceReader(trace, parallel=parallel)
        t = time.perf_counter()
        setup.replayer.feed(reader)
        setup.replayer.run()
        return time.perf_counter() - t, setup.setup_s

    # End to end first: a forked parser shares the parent's pages copy-on-write, and a
    # parent that holds a big list of parsed events would pay for that in page faults.
    two_s, _ = median_of(args.repeat, lambda: whole(True))
    one_s, setup_s = median_of(args.repeat, lambda: whole(False))
    auto = TraceReader(trace)._parallel()

    def parse() -> tuple[float, object]:
        reader = TraceReader(trace, parallel=False)
        t = time.perf_counter()
        batches = list(reader.record_batches())  # what the replay reads
        return time.perf_counter() - t, (batches, reader.stats)

    parse_s, (batches, stats) = median_of(args.repeat, parse)
    events, span = stats.events, stats.span_s

    def replay_only() -> tuple[float, object]:
        rep: Replayer = build_replay(slabinfo=slabinfo, buddyinfo=buddyinfo,
                                     pagetypeinfo=pagetypeinfo).replayer
        rep.feed_batches(batches)
        t = time.perf_counter()
        rep.run()
        return time.perf_counter() - t, None

    replay_s, _ = median_of(args.repeat, replay_only)

    def command(*snapshot: str) -> tuple[float, object]:
        return fragsim_replay(trace, *snapshot)["wall_s"], None

    command_s, _ = median_of(args.repeat, lambda: command(
        "--slabinfo", str(slabinfo), "--buddyinfo", str(buddyinfo), "--pagetypeinfo",
        str(pagetypeinfo)))
    # With the snapshot's zoneinfo (--from): the machine's zones, each sampled.
    zoned = snaps / "before.zoneinfo"
    from_s = (median_of(args.repeat, lambda: command("--from", str(snaps / "before")))[0]
              if zoned.exists() and not (args.slabinfo or args.buddyinfo) else None)

    print(f"trace: {trace} ({events} events over {span:.3f} s)")
    print(f"machine: {os.cpu_count()} CPUs, Python {sys.version.split()[0]}; "
          f"median of {args.repeat}")
    print(f"parse only (one process):   {events / parse_s / 1e3:7.0f} k events/s  "
          f"({parse_s:.3f} s)")
    print(f"replay only (parsed events): {events / replay_s / 1e3:7.0f} k events/s  "
          f"({replay_s:.3f} s)")
    print(f"parse + replay, one process:     {events / one_s / 1e3:5.0f} k events/s  "
          f"({one_s:.3f} s), real-time factor {span / one_s:.2f}")
    print(f"parse + replay, parser in child: {events / two_s / 1e3:5.0f} k events/s  "
          f"({two_s:.3f} s), real-time factor {span / two_s:.2f}")
    print(f"fragsim replay (samples too):    {events / command_s / 1e3:5.0f} k events/s  "
          f"({command_s:.3f} s), real-time factor {span / command_s:.2f}")
    if from_s is not None:
        print(f"fragsim replay --from (zones):   {events / from_s / 1e3:5.0f} k events/s  "
              f"({from_s:.3f} s), real-time factor {span / from_s:.2f}")
    print(f"set-up (zone synthesis, slabinfo population): {setup_s:.3f} s")
    print(f"replay_file uses: {'the child' if auto else 'one process'}; load average now "
          f"{os.getloadavg()[0]:.2f}; real-time factor = trace span / wall time, >= 1 is the "
          "target")
    return 0


if __name__ == "__main__":
    sys.exit(main())
