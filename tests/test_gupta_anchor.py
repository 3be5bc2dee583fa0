"""The shared compaction anchor run as a user writes it (issue 18's test).

``configs/real/gupta-12g.yaml``: the real machine's 0-idle snapshot (tests/data's
gupta-12g-keep1of4, copied to configs/real/gupta-12g/ with the only zoneinfo there is),
12 GiB filled by one process the scheduler model places (``cpu: any``), 3 of every 4
pages freed at the measured rate of a madvise loop, then compact_memory from another
process; no CPU placed by hand. Full size: a scaled machine would not be the snapshot's.

What holds, and what does not (docs/model.md, "The Gupta anchor as a user writes it"):
before compaction every order is within 0.05 of the real index, whatever the seed. After
it the model lands in one of two places, decided by where compact_memory runs: on the
CPU that did not fill, every order is within 0.05 of the real index; on the CPU that
filled, whose per-CPU list ``high`` the fill raised (``nr_pcp_alloc``) and nothing lowered
while it slept, the list keeps over 100 000 of compaction's freed source pages unmerged
(6.18's compact_memory drains no per-CPU list) and the order-9 index stays near 0.23.
Which CPU compaction gets is a coin toss per seed, so the issue's target (the mean of 5
seeds within 0.05 of 0.019) is not met: seeds 1-5 give 0.19 (docs/model.md). The first
test checks both sides on the config's first seed (fill and compaction on one CPU);
the second runs the same recipe with the madvise loop 16x slower, which lets
``decay_pcp_high`` lower the filling CPU's ``high`` while it frees: then every order is
within 0.05 after compaction on either CPU.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "bench"))

from anchor_gupta import real_unusable_index, run_as_user  # noqa: E402

REAL_FREED = real_unusable_index("2-freed")
REAL_COMPACTED = real_unusable_index("3-compacted")
TOLERANCE = 0.05


def off_by(sim: list[float], real: list[float]) -> list[tuple[int, float, float]]:
    """The orders where the simulated index is more than TOLERANCE from the real one."""
    return [(order, s, r) for order, (s, r) in enumerate(zip(sim, real, strict=True))
            if abs(s - r) > TOLERANCE]


@pytest.fixture(scope="module")
def as_written():
    return run_as_user(1)


def test_before_compaction_every_order_is_within_005_of_the_real_index(as_written):
    assert off_by(as_written.freed, REAL_FREED) == []


def test_after_compaction_the_compacting_cpus_list_decides(as_written):
    """On the CPU that did not fill: within 0.05 at every order. On the CPU that filled:
    its list holds the freed sources, and order 9 stays far from the real 0.019."""
    run = as_written
    assert run.fill_cpu is not None and run.compact_cpu is not None
    assert run.folios_split > 0  # the snapshot's large movable blocks: split, not stuck
    if run.compact_cpu != run.fill_cpu:
        assert off_by(run.compacted, REAL_COMPACTED) == []
        assert run.pcp_compacted[run.compact_cpu] < 10_000
    else:
        assert run.pcp_freed[run.fill_cpu] > 100_000
        assert run.pcp_compacted[run.compact_cpu] > 100_000
        assert run.compacted[9] > REAL_COMPACTED[9] + 0.15


def test_a_slower_madvise_loop_lets_decay_empty_the_filling_cpus_list():
    run = run_as_user(1, ["workloads.0.free_rate=100MiB", "workloads.1.at=[110s]",
                          "duration=115s"])
    assert max(run.pcp_freed) < 10_000
    assert off_by(run.freed, REAL_FREED) == []
    assert off_by(run.compacted, REAL_COMPACTED) == []
