"""The benchmark suite in one command: every DESIGN.md performance figure, side by side.

    python bench/run.py            # full: medians of 5 (end to end: 3), ~35 min on 2 cores
    python bench/run.py --quick    # smaller sizes, medians of 3, ~1.5 min
    python bench/run.py --max-rss 4GiB   # no child run above 4 GiB RSS (default 10 GiB)

(The full run's 256 GiB point alone takes about 70 CPU seconds and 2 GiB of RSS, as
measured on 2026-12-07; with a --max-rss below its extrapolated RSS it is extrapolated
instead of run.)
    FRAGSIM_PURE_PYTHON=1 python bench/run.py   # the same on the pure-Python source

Prints a table and writes bench/results.json (git-ignored). Ratios are measured in
this one process: the plain Python buddy reference runs on the same machine, in the
same interpreter, right before what it is compared with, so machine noise cancels.

- bare allocator: sim.buddy.Zone vs the reference buddy loop (bench_buddy.py);
- end to end: configs/bench.yaml, buddy ops per CPU second as a ratio to the same
  reference rate;
- replay: events/s and real-time factor on the real trace: ../shared's gzip copy when
  it is there (the trace DESIGN.md names), else the repository's xz copy; and the
  real-time factor of ``fragsim replay TRACE --from`` the trace's snapshot (the
  machine's three zones, samples included, in a fresh interpreter), issue 20's >= 5x;
- memory: bytes per page of a 64 GiB zone (16 Mi pages), in a fresh interpreter;
- sweep scaling: --jobs 2 vs --jobs 1 on 8 short points (bench_sweep.py, in a fresh
  interpreter);
- file server at 16 GiB: simulated seconds per CPU second of configs/file_server.yaml
  (defrag-off) with ``machine.memory=16GiB``, one seed;
- against C (issue 20): the bare allocator's sequence also runs through bench/cbuddy.c,
  a minimal C buddy loop built with the system compiler into a temporary directory
  (a one-line message instead when there is none), with a correctness check of its end
  state against the Python references (bench_buddy.c_check); fragsim's bare ``Zone``
  (driven by a compiled loop, ``sim.buddy.apply_ops``, as the C loop drives its own;
  the interpreter's loop is given beside it) and the end-to-end run
  (configs/bench.yaml's buddy operations per CPU second) as ratios to its ops/s, all on
  16 GiB zones (--quick adds a shorter 16 GiB sequence for this beside its 1 GiB one);
- the 64 GiB file server (configs/bench64.yaml, bench64.py in a fresh interpreter):
  simulated seconds per CPU second while memory fills and once it is full (steady
  state, 30 simulated seconds after 10 of settling), and from the steady rate the wall
  time of a simulated hour and week on one core; --quick runs it at 24 GiB, 10 s;
- scale (full only): the same at 128 GiB for peak RSS (``VmHWM`` of the fresh
  interpreter) and bytes per page, extrapolated linearly in pages from 64 and 128 GiB
  to 256 GiB, which runs only if the extrapolation is within --max-rss. A child
  process is stopped when its RSS passes --max-rss.

Ratios against C and the bench64 rates are in CPU time (``time.process_time``, the C
loop's CLOCK_PROCESS_CPUTIME_ID): the machines are shared. So are the bare allocator
and end to end lines; replay and the sweep stay in wall-clock time (the sweep measures
parallelism, replay a real-time factor).
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

import bench64  # noqa: E402
import bench_buddy  # noqa: E402
import bench_replay  # noqa: E402

import sim  # noqa: E402
from sim.units import parse_size  # noqa: E402

GiB = 1 << 30
TARGETS = {"bare_ratio": 1.0, "end_to_end_ratio": 0.5, "replay_realtime": 1.0,
           "bytes_per_page": 16.0, "sweep_speedup": 1.7,
           # issue 20
           "bare_vs_c": 0.5, "end_to_end_vs_c": 0.25, "bench64_hours_per_sim_week": 1.0,
           "rss_256g_bytes": 8 << 30, "bytes_per_page_256g": 16.0}


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def bare(memory_gib: int, ops: int, repeat: int, c_repeat: int = 0,
         check: bool = False) -> dict:
    """fragsim's Zone against the Python reference on one sequence (CPU time); with
    ``c_repeat``, against bench/cbuddy.c on the same sequence too, and with ``check``
    the C loop's end state against the Python references."""
    nr_pages = memory_gib * GiB // 4096
    seq, prefill, slots = bench_buddy.make_ops(nr_pages, ops)
    ref, sim, compiled = [], [], []
    for _ in range(repeat):
        ref.append(ops / bench_buddy.run_reference(nr_pages, seq, prefill, slots))
        sim.append(ops / bench_buddy.run_fragsim(nr_pages, seq, prefill, slots)[0])
        if c_repeat:
            compiled.append(ops / bench_buddy.run_fragsim_compiled(
                nr_pages, seq, prefill, slots)[0])
    ratios = [s / r for s, r in zip(sim, ref, strict=True)]
    out = {"memory_gib": memory_gib, "ops": ops,
           "reference_ops_per_s": statistics.median(ref),
           "fragsim_ops_per_s": statistics.median(sim), "ratio": statistics.median(ratios)}
    if c_repeat:
        # Against C, the zone driven by a compiled loop (sim.buddy.apply_ops), as the C
        # loop drives its allocator and a run's compiled workloads drive the zone.
        out["fragsim_compiled_loop_ops_per_s"] = statistics.median(compiled)
        c = bench_buddy.run_c(nr_pages, seq, prefill, slots, c_repeat)
        if "skipped" not in c:
            if check:
                c["check"] = bench_buddy.c_check(nr_pages, seq, prefill, c)
            out["fragsim_vs_c"] = out["fragsim_compiled_loop_ops_per_s"] / c["ops_per_s"]
            out["fragsim_interpreted_loop_vs_c"] = out["fragsim_ops_per_s"] / c["ops_per_s"]
            out["reference_vs_c"] = out["reference_ops_per_s"] / c["ops_per_s"]
        out["c"] = c
    return out


def end_to_end(reference_ops_per_s: float, duration: str, repeat: int) -> dict:
    from sim.experiment import load_config
    from sim.runner import run_machine

    rates, cpu_rates, slab_rates, ops = [], [], [], 0
    for _ in range(repeat):
        config = load_config(REPO / "configs" / "bench.yaml", [f"duration={duration}"])
        cpu = time.process_time()
        summary = run_machine(config, config.seed, "default").summary
        cpu = time.process_time() - cpu
        rates.append(summary["ops_per_s"])
        cpu_rates.append(summary["alloc_ops"] / cpu)
        slab_rates.append(summary["slab_ops"] / cpu)
        ops = summary["alloc_ops"]
    # In CPU time, as the reference's rate: the whole run_machine call, build included.
    # ops_per_s is the summary's (per wall second), as the older results have it.
    rate = statistics.median(cpu_rates)
    return {"alloc_ops": ops, "ops_per_s": statistics.median(rates), "cpu_ops_per_s": rate,
            "slab_ops_per_cpu_s": statistics.median(slab_rates),
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
    # What a user runs (issue 20's target): fragsim replay of the trace from the machine's
    # snapshot (--from: its three zones), samples included, in a fresh interpreter.
    snapshot = bench_replay.snapshot_dir(trace) / "before"
    factors = [bench_replay.fragsim_replay(trace, "--from", str(snapshot))["realtime_factor"]
               for _ in range(repeat)]
    return {"trace": os.path.relpath(trace, REPO), "events": result.parse.events,
            "span_s": result.parse.span_s,
            "events_per_s": result.parse.events / wall,
            "realtime_factor": result.parse.span_s / wall,
            "command": f"fragsim replay TRACE --from {os.path.relpath(snapshot, REPO)}",
            "command_realtime_factor": statistics.median(factors)}


def sweep(repeat: int, duration: str) -> dict:
    """bench_sweep.py in a fresh interpreter, as a user's ``fragsim sweep`` starts: this
    process's heap, grown by the runs above, would make every fork of the pool dearer."""
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "sweep.json"
        subprocess.run([sys.executable, str(REPO / "bench" / "bench_sweep.py"),
                        "--repeats", str(repeat), "--duration", duration, "--json", str(out)],
                       check=True, cwd=REPO, stdout=subprocess.DEVNULL)
        return json.loads(out.read_text())


def _gib(nbytes: float) -> str:
    return f"{nbytes / GiB:.2f} GiB"


def _rss_bytes(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError):
        pass
    return 0


def bench64_child(overrides: list[str], settle: float, steady: float,
                  max_rss: int) -> dict:
    """bench64.py in a fresh interpreter (its peak RSS is the run's alone), stopped if
    its RSS passes ``max_rss``: the analysis (bench64.analyse), or {"error": ...}."""
    with tempfile.TemporaryDirectory(prefix="fragsim-bench64-") as tmp:
        out = Path(tmp) / "bench64.json"
        argv = [sys.executable, str(REPO / "bench" / "bench64.py"), "--json", str(out),
                "--settle", str(settle), "--steady", str(steady)]
        for item in overrides:
            argv += ["--set", item]
        seen = 0
        with open(Path(tmp) / "stderr", "w+") as err:
            proc = subprocess.Popen(argv, cwd=REPO, stdout=subprocess.DEVNULL, stderr=err)
            while proc.poll() is None:
                seen = max(seen, _rss_bytes(proc.pid))
                if seen > max_rss:
                    proc.kill()
                    proc.wait()
                    return {"overrides": overrides, "error": (
                        f"stopped at {_gib(seen)} RSS (--max-rss {_gib(max_rss)})")}
                time.sleep(0.5)
            err.seek(0)
            if proc.returncode:
                tail = err.read().strip().splitlines()[-1:] or ["?"]
                return {"overrides": overrides,
                        "error": f"exit {proc.returncode}: {tail[0]}"}
        analysis = json.loads(out.read_text())["analysis"]
    analysis["overrides"] = overrides
    return analysis


def extrapolate(points: list[dict], memory_gib: float) -> dict:
    """Peak RSS and the run's CPU time at ``memory_gib``, straight through the two
    largest measured points (in pages: RSS = fixed + bytes per page x pages)."""
    a, b = sorted(points, key=lambda p: p["pages"])[-2:]
    pages = memory_gib * GiB // 4096

    def line(key: str) -> float:
        slope = (b[key] - a[key]) / (b["pages"] - a["pages"])
        return b[key] + slope * (pages - b["pages"])

    rss = line("peak_rss_bytes")
    return {"memory_gib": memory_gib, "pages": pages, "from_gib": [a["memory_gib"],
            b["memory_gib"]], "peak_rss_bytes": rss, "bytes_per_page": rss / pages,
            "marginal_bytes_per_page": (b["peak_rss_bytes"] - a["peak_rss_bytes"]) / (
                b["pages"] - a["pages"]),
            "full_s": line("full_s"), "build_cpu_s": line("build_cpu_s"),
            "run_cpu_s": line("run_cpu_s")}


def scale(first: dict, max_rss: int) -> dict:
    """(b): 128 GiB measured beside ``first`` (64 GiB), 256 GiB extrapolated, and run
    only if the extrapolation fits ``max_rss``."""
    out: dict = {"64": first}
    out["128"] = bench64_child(["machine.memory=128GiB"], 10.0, 10.0, max_rss)
    measured = [p for p in (first, out["128"]) if "steady" in p]
    if len(measured) < 2:
        out["256"] = {"error": "not run: 64 and 128 GiB are needed to extrapolate"}
        return out
    guess = out["256_extrapolated"] = extrapolate(measured, 256)
    if guess["peak_rss_bytes"] > max_rss:
        out["256"] = {"error": f"not run: extrapolated peak RSS "
                               f"{_gib(guess['peak_rss_bytes'])} > --max-rss {_gib(max_rss)}"}
    else:
        out["256"] = bench64_child(["machine.memory=256GiB"], 10.0, 10.0, max_rss)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="smaller sizes, medians of 3")
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "results.json")
    parser.add_argument("--max-rss", type=parse_size, default=10 * GiB, metavar="SIZE",
                        help="stop a child run above this RSS, and run 256 GiB only if "
                             "its extrapolation is below it (default 10GiB)")
    args = parser.parse_args(argv)
    quick = args.quick
    repeat = 3 if quick else 5
    started = time.perf_counter()
    loads: list = []  # (stage, 1-minute load average as it starts), for the docs

    def stage(name: str) -> None:
        loads.append((name, os.getloadavg()[0]))
        print(f"{name} ...", file=sys.stderr)

    results: dict = {
        "date": time.strftime("%Y-%m-%d"),
        "machine": {"cpus": os.cpu_count(), "cpu_model": cpu_model(),
                    "python": platform.python_version()},
        "build": sim.NATIVE_REASON,  # the mypyc build, or pure Python (sim/native.py)
        "quick": quick,
        "targets": TARGETS,
    }
    stage("bare allocator")
    results["bare"] = bare(1 if quick else 16, 200_000 if quick else 2_000_000, repeat,
                           c_repeat=repeat, check=True)
    # The C comparisons on a 16 GiB zone, bench.yaml's size (full: the line above).
    versus_c = results["bare_16g"] = (bare(16, 200_000, 1, c_repeat=repeat) if quick
                                      else results["bare"])
    if not quick:
        # The same comparison on smaller zones: the ratio depends on how much of the
        # per-page arrays the CPU caches hold.
        results["bare_by_zone_gib"] = {str(g): bare(g, 1_000_000, 3)["ratio"] for g in (1, 4)}
    stage("end to end")
    results["end_to_end"] = end_to_end(results["bare"]["reference_ops_per_s"],
                                       "5s" if quick else "30s", 1 if quick else 3)
    stage("file server at 16 GiB")
    results["file_server_16g"] = file_server("5s" if quick else "20s", 1 if quick else 3)
    stage("replay")
    results["replay"] = replay(repeat)
    stage("memory")
    per_page, stored = bench_buddy.bytes_per_page(16 << 20)
    results["memory"] = {"rss_bytes_per_page": per_page, "stored_bytes_per_page": stored}
    stage("sweep scaling")
    results["sweep"] = sweep(1 if quick else 5, "1s" if quick else "4s")
    stage("bench64")
    b64 = results["bench64"] = bench64_child(
        ["machine.memory=24GiB"] if quick else [], 10.0, 10.0 if quick else 30.0, args.max_rss)
    if not quick and "steady" in b64:
        stage("scale: 128 GiB, 256 GiB")
        results["scale"] = scale(b64, args.max_rss)
    results["versus_c"] = _versus_c(versus_c, results["end_to_end"])
    stage("done")
    results["wall_s"] = time.perf_counter() - started
    results["loadavg"] = loads
    args.out.write_text(json.dumps(results, indent=2) + "\n")

    b, e, r, m, s = (results[k] for k in ("bare", "end_to_end", "replay", "memory", "sweep"))
    rows = [
        ("bare allocator vs reference", f"{b['fragsim_ops_per_s'] / 1e6:.2f} M vs "
         f"{b['reference_ops_per_s'] / 1e6:.2f} M ops/CPU s", f"{b['ratio']:.2f}x", ">= 1.0x"),
        ("end to end, configs/bench.yaml", f"{e['cpu_ops_per_s'] / 1e6:.2f} M buddy, "
         f"{e['slab_ops_per_cpu_s'] / 1e6:.2f} M slab ops/CPU s", f"{e['ratio']:.2f}x",
         ">= 0.5x"),
        ("replay, shared trace", f"{r['events_per_s'] / 1e3:.0f} k events/s",
         f"{r['realtime_factor']:.2f}x real time", ">= 1x"),
        ("memory, 64 GiB zone", f"{m['rss_bytes_per_page']:.1f} B/page RSS",
         f"{m['stored_bytes_per_page']:.1f} B/page", "<= 16"),
        ("sweep --jobs 2 vs 1", f"{s['jobs2_s']:.2f} s vs {s['jobs1_s']:.2f} s",
         f"{s['speedup']:.2f}x", ">= 1.7x"),
        ("file server, 16 GiB", f"{results['file_server_16g']['duration']} simulated",
         f"{results['file_server_16g']['sim_s_per_cpu_s']:.2f} sim s/CPU s", "-"),
    ]
    rows += _issue20_rows(results)
    mach = results["machine"]
    print(f"{results['date']}, {mach['cpus']} CPUs ({mach['cpu_model']}), Python "
          f"{mach['python']}; medians of {repeat}{' (quick)' if quick else ''}; "
          f"build: {results['build']}; 1-min load average {min(v for _, v in loads):.2f}-"
          f"{max(v for _, v in loads):.2f} at the stages' starts")
    print(f"| {'figure':<32} | {'measured':<40} | {'value':<18} | target |")
    print(f"|{'-' * 34}|{'-' * 42}|{'-' * 20}|--------|")
    for name, measured, value, target in rows:
        print(f"| {name:<32} | {measured:<40} | {value:<18} | {target} |")
    if "bare_by_zone_gib" in results:
        sizes = ", ".join(f"{g} GiB {r:.2f}x" for g, r in results["bare_by_zone_gib"].items())
        print(f"bare allocator ratio on smaller zones (1 M ops, median of 3): {sizes}")
    for line in _notes(results):
        print(line)
    print(f"written to {args.out}")
    return 0


def _versus_c(bare16: dict, e2e: dict) -> dict:
    c = bare16["c"]
    if "skipped" in c:
        return {"skipped": c["skipped"]}
    return {"memory_gib": bare16["memory_gib"], "c_ops_per_s": c["ops_per_s"],
            "bare_ops_per_s": bare16["fragsim_compiled_loop_ops_per_s"],
            "bare_vs_c": bare16["fragsim_vs_c"],
            "bare_interpreted_loop_vs_c": bare16["fragsim_interpreted_loop_vs_c"],
            "end_to_end_cpu_ops_per_s": e2e["cpu_ops_per_s"],
            "end_to_end_vs_c": e2e["cpu_ops_per_s"] / c["ops_per_s"]}


def _issue20_rows(results: dict) -> list[tuple[str, str, str, str]]:
    rows = []
    vc, b = results["versus_c"], results["bare"]
    if "skipped" in vc:
        rows.append(("C buddy loop", vc["skipped"], "-", "-"))
    else:
        check = b["c"]["check"]
        rows += [
            (f"C buddy loop, {b['memory_gib']} GiB zone",
             f"{b['c']['ops_per_s'] / 1e6:.1f} M ops/CPU s, check "
             f"{'ok' if check['ok'] else 'FAILED'}", f"ref {b['reference_vs_c']:.2f}x", "-"),
            (f"bare Zone vs C, {vc['memory_gib']} GiB",
             f"{vc['bare_ops_per_s'] / 1e6:.2f} M vs {vc['c_ops_per_s'] / 1e6:.1f} M ops/CPU s "
             f"(a compiled loop; from the interpreter's {vc['bare_interpreted_loop_vs_c']:.3f}x)",
             f"{vc['bare_vs_c']:.3f}x", ">= 0.5x"),
            ("end to end vs C", f"{vc['end_to_end_cpu_ops_per_s'] / 1e6:.2f} M buddy ops/CPU s",
             f"{vc['end_to_end_vs_c']:.3f}x", ">= 0.25x"),
        ]
    r = results.get("replay", {})
    if "command_realtime_factor" in r:
        rows.append(("fragsim replay --from, samples", r["command"].split(" --from ")[-1],
                     f"{r['command_realtime_factor']:.2f}x real time", ">= 5x"))
    b64 = results["bench64"]
    name = f"bench64.yaml, {b64.get('memory_gib', '?'):g} GiB" if "memory_gib" in b64 else (
        "bench64.yaml")
    if "steady" in b64:
        rows += [
            (f"{name}, fill", f"0-{b64['full_s']:g} s simulated",
             f"{b64['fill']['sim_s_per_cpu_s']:.2f} sim s/CPU s", "-"),
            (f"{name}, steady", f"{b64['steady']['from_s']:g}-{b64['steady']['to_s']:g} s: "
             f"{b64['steady']['sim_s_per_cpu_s']:.2f} sim s/CPU s",
             f"week {b64['days_per_sim_week']:.1f} d", "week <= 1 h"),
        ]
    else:
        rows.append((name, b64.get("error", "?"), "-", "week <= 1 h"))
    for size, point in (results.get("scale") or {}).items():
        if size == "64" or size.endswith("_extrapolated"):
            continue
        label = f"bench64.yaml at {size} GiB"
        if "steady" in point:
            rows.append((label, f"{point['peak_rss_bytes'] / GiB:.2f} GiB peak, steady "
                                f"{point['steady']['sim_s_per_cpu_s']:.2f} sim s/CPU s",
                         f"{point['bytes_per_page']:.0f} B/page",
                         "<= 16 B, < 8 GiB" if size == "256" else "-"))
        else:
            rows.append((label, point.get("error", "?")[:40], "-",
                         "<= 16 B, < 8 GiB" if size == "256" else "-"))
    guess = (results.get("scale") or {}).get("256_extrapolated")
    if guess:
        rows.append(("256 GiB, extrapolated", f"peak RSS {guess['peak_rss_bytes'] / GiB:.1f} GiB",
                     f"{guess['bytes_per_page']:.0f} B/page", "<= 16 B, < 8 GiB"))
    return rows


def _notes(results: dict) -> list[str]:
    lines = []
    b64 = results["bench64"]
    if "steady" in b64:
        lines.append(bench64.describe(b64))
    check = results["bare"].get("c", {}).get("check")
    if check:
        lines.append(f"C loop check ({results['bare']['memory_gib']} GiB zone): free blocks "
                     f"per order {check['c_free_blocks']}; the same in Python (LifoBuddy): "
                     f"{'yes' if check['lifo_equal'] else 'NO'}; as many free pages as the "
                     f"set reference: {'yes' if check['total_equal'] else 'NO'}")
    elif "skipped" in results["bare"].get("c", {}):
        lines.append(results["bare"]["c"]["skipped"])
    return lines


if __name__ == "__main__":
    raise SystemExit(main())
