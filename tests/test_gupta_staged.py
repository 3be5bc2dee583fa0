"""The Gupta recipe recorded on this project's machine with nothing of fragsim running
(configs/real/gupta-staged/: staged.c filling 12 GiB, freeing 3 of every 4 pages,
``compact_memory`` from a shell, a snapshot between phases, six runs), against its twin.

The runs' logs give where each phase ran: the fill and the frees on CPU 1, the shell's
``compact_memory`` on CPU 0, in all six. The twin (``twin.yaml``) places them there and
takes the rates the runs reached. What could fail: the unusable index of Normal at every
order after the frees and after compaction, against the median of the six real runs,
and the pages the freeing CPU's pageset held before compaction, against the real range.
"""

from __future__ import annotations

import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "bench"))

from anchor_gupta import real_unusable_index, run_as_user  # noqa: E402

from sim.procfs import parse_zoneinfo  # noqa: E402

HERE = Path(__file__).resolve().parent.parent / "configs/real/gupta-staged"
RUNS = [HERE / f"run-{n}" for n in range(1, 7)]
TOLERANCE = 0.05


def median_index(phase: str) -> list[float]:
    rows = [real_unusable_index(phase, run) for run in RUNS]
    return [statistics.median(col) for col in zip(*rows, strict=True)]


def test_every_run_placed_the_phases_as_the_twin_does():
    for run in RUNS:
        log = (run / "log.txt").read_text().split("\n")
        assert log[0].startswith("fill cpu 1 -> 1"), run.name
        assert log[1].startswith("free cpu 1 -> 1"), run.name
        assert log[2].startswith("compact cpu 0"), run.name


def test_twin_within_005_of_the_real_median_at_every_order_after_frees_and_compaction():
    twin = run_as_user(1, config=HERE / "twin.yaml")
    for phase, sim in (("2-freed", twin.freed), ("3-compacted", twin.compacted)):
        real = median_index(phase)
        off = [(o, round(s, 3), r) for o, (s, r) in enumerate(zip(sim, real, strict=True))
               if abs(s - r) > TOLERANCE]
        assert off == [], phase
    # the freed pages the filling CPU's pageset held, real runs' range
    held = []
    for run in RUNS:
        zones = parse_zoneinfo((run / "2-freed.zoneinfo").read_text())
        normal = next(z for z in zones if z.zone == "Normal")
        held.append(normal.pcp[1]["count"])
    assert min(held) * 0.95 <= twin.pcp_freed[1] <= max(held) * 1.05
