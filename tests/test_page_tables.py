"""Page-table pages of anonymous memory, as mm/memory.c ``__pte_alloc`` and
mm/huge_memory.c ``__do_huge_pmd_anonymous_page`` take them: one Unmovable order-0 page
per 2 MiB range mapped, whether by 4 KiB pages or by a THP (its deposited table), kept
while the range has a table and freed at the exit; against the recorded file server's
``nr_page_table_pages``."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from sim.buddy import OWNER_UNMOVABLE
from sim.experiment import validate_config
from sim.machine import Machine
from sim.runner import build_workloads

REAL = Path(__file__).resolve().parent.parent / "configs" / "real" / "fileserver-b"
HPAGE = 512


def anon_machine(**anon) -> tuple[Machine, object]:
    config = validate_config({
        "machine": {"memory": "128MiB", "cpus": 2, "zones": ["Normal"], "boot": "none"},
        "workloads": [{"kind": "anon", "size": "64MiB", **anon}]}, "test")
    machine = Machine(config, 1)
    (workload,) = build_workloads(machine)
    return machine, workload


def table_pfns(workload) -> list[int]:
    return [pfn for pfn in workload._pgtable if pfn >= 0] + list(workload._pgtables)


@pytest.mark.parametrize("anon", [{}, {"thp": "always"}, {"release": "address"}],
                         ids=["no-tables-kept", "thp", "tables-kept"])
def test_every_2_mib_range_written_holds_one_unmovable_page_table_until_the_exit(anon):
    machine, workload = anon_machine(**anon)
    zone = machine.zone
    before = zone.nr_allocated_pages
    workload._grow(16384)  # the whole 64 MiB VMA
    assert workload.resident == 16384
    assert workload.page_tables == 32 == len(table_pfns(workload))
    for pfn in table_pfns(workload):
        assert zone.is_allocated(pfn) and zone.order_of(pfn) == 0
        assert zone.owner_of(pfn) == OWNER_UNMOVABLE
    assert zone.nr_allocated_pages - before == workload.resident + 32
    # 4 KiB pages zapped at random leave their tables; a zapped THP's range goes
    # pmd_none with its deposited table. Written again, the ranges hold 32 again.
    workload._free(5000)
    assert workload.page_tables == (len(workload.thps) if workload.thp else 32)
    workload._grow(16384 - workload.resident)
    assert workload.page_tables == 32 and workload.resident == 16384
    workload._free_all()
    assert workload.resident == 0 and workload.page_tables == 0
    assert zone.nr_allocated_pages == before
    zone.check()


def test_a_range_takes_its_table_before_its_first_page():
    """``handle_pte_fault`` allocates the PTE page (``__pte_alloc``) before
    ``do_anonymous_page`` allocates the data page: the batch of a range's pages comes
    after its table."""
    machine, workload = anon_machine()
    calls = []
    alloc_pages, alloc_batch = machine.alloc_pages, machine.alloc_pages_batch

    def traced_alloc(order, gfp, cpu, owner=None):
        calls.append(("table", 1))
        return alloc_pages(order, gfp, cpu, owner)

    def traced_batch(n, *args):
        got = args[3]
        before = len(got)
        refused = alloc_batch(n, *args)
        calls.append(("pages", len(got) - before))
        return refused

    machine.alloc_pages, machine.alloc_pages_batch = traced_alloc, traced_batch
    workload._grow(HPAGE + 1)
    assert calls == [("table", 1), ("pages", HPAGE), ("table", 1), ("pages", 1)]
    assert workload.page_tables == 2


def test_a_thp_zap_frees_its_deposited_table_and_a_refault_takes_a_new_one():
    machine, workload = anon_machine(thp="always")
    before = machine.zone.nr_allocated_pages
    workload._grow(HPAGE)
    assert len(workload.thps) == 1 and workload.page_tables == 1
    table = workload._pgtable[0]
    assert table >= 0 and machine.zone.owner_of(table) == OWNER_UNMOVABLE
    assert machine.zone.nr_allocated_pages - before == HPAGE + 1
    workload._free(1)  # a page of the THP zaps the whole range, and its deposit
    assert len(workload.thps) == 0 and workload.page_tables == 0
    assert workload._pgtable[0] == -1 and machine.zone.nr_allocated_pages == before
    workload._grow(HPAGE)
    assert len(workload.thps) == 1 and workload.page_tables == 1
    machine.zone.check()


def test_the_recorded_balloon_took_as_many_page_tables_as_its_2_mib_ranges():
    """The quiet file server's 12 GiB balloon: ``nr_page_table_pages`` rose by 6 176
    from the start to the deletion, where 12 GiB is 6 144 PTE pages; the rest is its
    PMD pages (one per GiB) and the tool's own mappings, which fragsim does not take."""
    params = json.loads((REAL / "params.json").read_text())["params"]

    def vmstat(name: str) -> int:
        for line in (REAL / f"{name}.vmstat").read_text().splitlines():
            key, value = line.split()
            if key == "nr_page_table_pages":
                return int(value)
        raise AssertionError("no nr_page_table_pages")

    rose = vmstat("deleted") - vmstat("start")
    ranges = int(params["balloon_gib"] * (1 << 30)) >> 21
    assert ranges <= rose <= ranges * 1.01
