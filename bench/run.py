"""The benchmark suite in one command: every DESIGN.md performance figure, side by side.

    python bench/run.py            # full: medians of 5 (end to end: 3), ~3 min on 2 cores
    python bench/run.py --quick    # smaller sizes, medians of 3, ~1 min
    FRAGSIM_PURE_PYTHON=1 python bench/run.py   # the same on the pure-Python source

Prints a table and writes bench/results.json (git-ignored). Ratios are measured in
this one process: the plain Python buddy reference runs on the same machine, in the
same interpreter, right before what it is compared with, so machine noise cancels.

- bare allocator: sim.buddy.Zone vs the reference buddy loop (bench_buddy.py);
- end to end: configs/bench.yaml, buddy ops per wall second as a ratio to the same
  reference rate;
- replay: events/s and real-time factor on the real trace: ../shared's gzip copy when
  it is there (the trace DESIGN.md names), else the repository's xz copy;
- memory: bytes per page of a 64 GiB zone (16 Mi pages), in a fresh interpreter;
- sweep scaling: --jobs 2 vs --jobs 1 on 8 short points (bench_sweep.py, in a fresh
  interpreter);
- file server at 16 GiB: simulated seconds per CPU second of configs/file_server.yaml
  (defrag-off) with ``machine.memory=16GiB``, one seed.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))

import bench_buddy  # noqa: E402
import bench_replay  # noqa: E402

import sim  # noqa: E402

GiB = 1 << 30
TARGETS = {"bare_ratio": 1.0, "end_to_end_ratio": 0.5, "replay_realtime": 1.0,
           "bytes_per_page": 16.0, "sweep_speedup": 1.7}


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def bare(memory_gib: int, ops: int, repeat: int) -> dict:
    nr_pages = memory_gib * GiB // 4096
    seq, prefill, slots = bench_buddy.make_ops(nr_pages, ops)
    ref, sim = [], []
    for _ in range(repeat):
        ref.append(ops / bench_buddy.run_reference(nr_pages, seq, prefill, slots))
        sim.append(ops / bench_buddy.run_fragsim(nr_pages, seq, prefill, slots)[0])
    ratios = [s / r for s, r in zip(sim, ref, strict=True)]
    return {"reference_ops_per_s": statistics.median(ref),
            "fragsim_ops_per_s": statistics.median(sim), "ratio": statistics.median(ratios)}


def end_to_end(reference_ops_per_s: float, duration: str, repeat: int) -> dict:
    from sim.experiment import load_config
    from sim.runner import run_machine

    rates, slab_rates, ops = [], [], 0
    for _ in range(repeat):
        config = load_config(REPO / "configs" / "bench.yaml", [f"duration={duration}"])
        summary = run_machine(config, config.seed, "default").summary
        rates.append(summary["ops_per_s"])
        slab_rates.append(summary["slab_ops_per_s"])
        ops = summary["alloc_ops"]
    rate = statistics.median(rates)
    return {"alloc_ops": ops, "ops_per_s": rate, "slab_ops_per_s": statistics.median(slab_rates),
            "ratio": rate / reference_ops_per_s}


def file_server(duration: str, repeat: int) -> dict:
    """configs/file_server.yaml, defrag-off, at 16 GiB: simulated seconds per second of
    this process's CPU time (CPU rather than wall time: the machines are shared)."""
    from sim.experiment import load_config
    from sim.runner import run_machine

    rates = []
    for _ in range(repeat):
        config = load_config(REPO / "configs" / "file_server.yaml",
                             [f"duration={duration}", "machine.memory=16GiB"],
                             variant="defrag-off")
        cpu = time.process_time()
        summary = run_machine(config, config.seed, "defrag-off").summary
        rates.append(summary["sim_time_s"] / (time.process_time() - cpu))
    return {"duration": duration, "sim_s_per_cpu_s": statistics.median(rates)}


def replay(repeat: int) -> dict:
    from sim.replay import replay_file

    # The shared trace (gzip) when ../shared is there, else the repository's xz copy,
    # which costs more to decompress.
    example = REPO / "configs" / "examples" / "tmpfs-churn-20k-keep10"
    trace = bench_replay.default_trace()
    walls, result = [], None
    for _ in range(repeat):
        result = replay_file(trace, slabinfo=example / "before.slabinfo",
                             buddyinfo=example / "before.buddyinfo")
        walls.append(result.wall_s)
    wall = statistics.median(walls)
    return {"trace": os.path.relpath(trace, REPO), "events": result.parse.events,
            "span_s": result.parse.span_s,
            "events_per_s": result.parse.events / wall,
            "realtime_factor": result.parse.span_s / wall}


def sweep(repeat: int, duration: str) -> dict:
    """bench_sweep.py in a fresh interpreter, as a user's ``fragsim sweep`` starts: this
    process's heap, grown by the runs above, would make every fork of the pool dearer."""
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "sweep.json"
        subprocess.run([sys.executable, str(REPO / "bench" / "bench_sweep.py"),
                        "--repeats", str(repeat), "--duration", duration, "--json", str(out)],
                       check=True, cwd=REPO, stdout=subprocess.DEVNULL)
        return json.loads(out.read_text())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="smaller sizes, medians of 3")
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "results.json")
    args = parser.parse_args(argv)
    quick = args.quick
    repeat = 3 if quick else 5
    started = time.perf_counter()
    results: dict = {
        "date": time.strftime("%Y-%m-%d"),
        "machine": {"cpus": os.cpu_count(), "cpu_model": cpu_model(),
                    "python": platform.python_version()},
        "build": sim.NATIVE_REASON,  # the mypyc build, or pure Python (sim/native.py)
        "quick": quick,
        "targets": TARGETS,
    }
    print("bare allocator ...", file=sys.stderr)
    results["bare"] = bare(1 if quick else 16, 200_000 if quick else 2_000_000, repeat)
    if not quick:
        # The same comparison on smaller zones: the ratio depends on how much of the
        # per-page arrays the CPU caches hold.
        results["bare_by_zone_gib"] = {str(g): bare(g, 1_000_000, 3)["ratio"] for g in (1, 4)}
    print("end to end ...", file=sys.stderr)
    results["end_to_end"] = end_to_end(results["bare"]["reference_ops_per_s"],
                                       "5s" if quick else "30s", 1 if quick else 3)
    print("file server at 16 GiB ...", file=sys.stderr)
    results["file_server_16g"] = file_server("5s" if quick else "20s", 1 if quick else 3)
    print("replay ...", file=sys.stderr)
    results["replay"] = replay(repeat)
    print("memory ...", file=sys.stderr)
    per_page, stored = bench_buddy.bytes_per_page(16 << 20)
    results["memory"] = {"rss_bytes_per_page": per_page, "stored_bytes_per_page": stored}
    print("sweep scaling ...", file=sys.stderr)
    results["sweep"] = sweep(1 if quick else 5, "1s" if quick else "4s")
    results["wall_s"] = time.perf_counter() - started
    args.out.write_text(json.dumps(results, indent=2) + "\n")

    b, e, r, m, s = (results[k] for k in ("bare", "end_to_end", "replay", "memory", "sweep"))
    rows = [
        ("bare allocator vs reference", f"{b['fragsim_ops_per_s'] / 1e6:.2f} M vs "
         f"{b['reference_ops_per_s'] / 1e6:.2f} M ops/s", f"{b['ratio']:.2f}x", ">= 1.0x"),
        ("end to end, configs/bench.yaml", f"{e['ops_per_s'] / 1e6:.2f} M buddy ops/s, "
         f"{e['slab_ops_per_s'] / 1e6:.2f} M slab ops/s", f"{e['ratio']:.2f}x", ">= 0.5x"),
        ("replay, shared trace", f"{r['events_per_s'] / 1e3:.0f} k events/s",
         f"{r['realtime_factor']:.2f}x real time", ">= 1x"),
        ("memory, 64 GiB zone", f"{m['rss_bytes_per_page']:.1f} B/page RSS",
         f"{m['stored_bytes_per_page']:.1f} B/page", "<= 16"),
        ("sweep --jobs 2 vs 1", f"{s['jobs2_s']:.2f} s vs {s['jobs1_s']:.2f} s",
         f"{s['speedup']:.2f}x", ">= 1.7x"),
        ("file server, 16 GiB", f"{results['file_server_16g']['duration']} simulated",
         f"{results['file_server_16g']['sim_s_per_cpu_s']:.2f} sim s/CPU s", "-"),
    ]
    mach = results["machine"]
    print(f"{results['date']}, {mach['cpus']} CPUs ({mach['cpu_model']}), Python "
          f"{mach['python']}; medians of {repeat}{' (quick)' if quick else ''}; "
          f"build: {results['build']}")
    print(f"| {'figure':<32} | {'measured':<40} | {'value':<18} | target |")
    print(f"|{'-' * 34}|{'-' * 42}|{'-' * 20}|--------|")
    for name, measured, value, target in rows:
        print(f"| {name:<32} | {measured:<40} | {value:<18} | {target} |")
    if "bare_by_zone_gib" in results:
        sizes = ", ".join(f"{g} GiB {r:.2f}x" for g, r in results["bare_by_zone_gib"].items())
        print(f"bare allocator ratio on smaller zones (1 M ops, median of 3): {sizes}")
    print(f"written to {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
