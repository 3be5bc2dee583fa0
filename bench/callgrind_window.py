"""Instructions a window of simulated time costs, counted by valgrind's callgrind: no
noise from a shared machine, so two builds compare to a fraction of a per cent.

Run under callgrind with instrumentation off; the run turns it on at the first sample at
or after ``start`` and off at the first at or after ``end`` (``callgrind_control``), then
stops. The window's bounds move by a sample's worth of work with the control's latency,
about 1 % of a 10 s window; a window inside one regime (the fill, the steady state) keeps
that small.

    valgrind --tool=callgrind --instr-atstart=no --callgrind-out-file=cg.out \\
        python bench/callgrind_window.py 30 40 --set machine.memory=24GiB
    callgrind_annotate cg.out | head -40

The config is configs/bench64.yaml unless ``--config`` names another; ``--set`` overrides
its keys as ``fragsim run --set`` does. Not under valgrind (or without
``callgrind_control``), it says so and exits with 2.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

import sim.runner  # noqa: E402
from sim.experiment import load_config  # noqa: E402


class _Done(Exception):
    """Raised by the progress callback once the window is counted."""


def _control(flag: str) -> bool:
    """``callgrind_control -i flag`` for this process; False if that did not work."""
    done = subprocess.run(["callgrind_control", "-i", flag, str(os.getpid())],
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    return done.returncode == 0 and "Error" not in done.stdout


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter,
                                 epilog="example: valgrind --tool=callgrind "
                                 "--instr-atstart=no python bench/callgrind_window.py "
                                 "30 40 --set machine.memory=24GiB")
    ap.add_argument("start", type=float, help="simulated second the count starts at")
    ap.add_argument("end", type=float, help="simulated second it stops at")
    ap.add_argument("--config", type=Path, default=REPO / "configs" / "bench64.yaml")
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    args = ap.parse_args(argv)
    if not 0 <= args.start < args.end:
        print(f"window: expected 0 <= start < end, got {args.start:g} {args.end:g}",
              file=sys.stderr)
        return 2
    if shutil.which("callgrind_control") is None or "vgpreload" not in os.environ.get(
            "LD_PRELOAD", ""):  # valgrind preloads its vgpreload_*.so into the program
        print("not under valgrind: run this under valgrind --tool=callgrind "
              "--instr-atstart=no (see --help)", file=sys.stderr)
        return 2
    config = load_config(args.config, [*args.set, f"duration={args.end + 1:g}s"])
    state = {"on": False}

    def progress(t: float) -> None:
        if not state["on"] and t >= args.start:
            if not _control("on"):
                raise SystemExit("callgrind_control could not reach this process: run it "
                                 "under valgrind --tool=callgrind --instr-atstart=no")
            state["on"] = True
        elif state["on"] and t >= args.end:
            _control("off")
            raise _Done

    with contextlib.suppress(_Done):
        sim.runner.run_machine(config, config.seed, "default", progress)
    return 0


if __name__ == "__main__":
    sys.exit(main())
