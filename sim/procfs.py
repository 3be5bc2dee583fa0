"""The kernel's /proc and debugfs text formats, read and written byte for byte.

Formats follow Linux 6.18:
- /proc/buddyinfo: mm/vmstat.c frag_show_print.
- /proc/pagetypeinfo: mm/vmstat.c pagetypeinfo_show, pagetypeinfo_showfree_print,
  pagetypeinfo_showblockcount_print, and mm/page_owner.c
  pagetypeinfo_showmixedcount_print (only with page_owner enabled).
- debugfs extfrag/unusable_index and extfrag/extfrag_index: mm/vmstat.c
  unusable_show_print and extfrag_show_print (numbers from sim.metrics).
- /proc/slabinfo 2.1: mm/slab_common.c print_slabinfo_header and cache_show, with the
  numbers of mm/slub.c get_slabinfo; SLUB has no tunables, so they print as 0.
- /proc/zoneinfo: mm/vmstat.c zoneinfo_show_print (read only).

Every file may hold several nodes and zones; a zone's line does not depend on the others.
pagetypeinfo is printed once per node with memory, so its header repeats per node.

Parsers accept any amount of whitespace between fields and skip blank lines where the
kernel prints none; writers produce the kernel's exact spacing. Bad input raises
FragsimError "{source}:{lineno}: expected <what>, got <line>" on one line.
"""

import re
from collections.abc import Sequence
from dataclasses import dataclass, field

from sim.errors import FragsimError
from sim.metrics import fragmentation_index, unusable_index
from sim.migratetype import MIGRATETYPE_NAMES

ZoneKey = tuple[int, str]  # (node id, zone name)

# pagetypeinfo_showfree_print stops counting a free list at this many blocks (it walks the
# list under zone->lock) and prints ">100000".
PAGETYPEINFO_CAP = 100000

_SHOWN_LINE_CHARS = 80


def _bad_line(source: str, lineno: int, what: str, line: str) -> FragsimError:
    if len(line) > _SHOWN_LINE_CHARS:
        line = line[:_SHOWN_LINE_CHARS] + "..."
    return FragsimError(f"{source}:{lineno}: expected {what}, got {line!r}")


def _empty(source: str, what: str) -> FragsimError:
    return FragsimError(f"{source}: expected {what}, got an empty file")


def _numbered_lines(text: str) -> list[tuple[int, str]]:
    """Non-blank lines with their 1-based line numbers."""
    return [(n, line) for n, line in enumerate(text.splitlines(), 1) if line.strip()]


def _parse_counts(tokens: list[str]) -> list[int] | None:
    """Unsigned decimal integers, or None if any token is not one."""
    if not all(tok.isascii() and tok.isdigit() for tok in tokens):
        return None
    return [int(tok) for tok in tokens]


# "Node 0, zone   Normal" followed by the rest of the line.
_ZONE_PREFIX = re.compile(r"Node\s+(\d+), zone\s+(\S+)(.*)")


# --- /proc/buddyinfo ------------------------------------------------------------------


@dataclass
class ZoneFree:
    """One /proc/buddyinfo line: zone->free_area[order].nr_free for every order."""

    node: int
    zone: str
    nr_free: list[int]


_BUDDYINFO_LINE = "a buddyinfo line 'Node N, zone NAME COUNT...'"


def parse_buddyinfo(text: str, source: str = "<buddyinfo>") -> list[ZoneFree]:
    """Parse /proc/buddyinfo; every zone must list the same number of orders."""
    zones: list[ZoneFree] = []
    for lineno, line in _numbered_lines(text):
        match = _ZONE_PREFIX.fullmatch(line.strip())
        counts = _parse_counts(match.group(3).split()) if match else None
        if not counts:
            raise _bad_line(source, lineno, _BUDDYINFO_LINE, line)
        if zones and len(counts) != len(zones[0].nr_free):
            what = f"{len(zones[0].nr_free)} free counts (orders 0..{len(zones[0].nr_free) - 1})"
            raise _bad_line(source, lineno, what, line)
        zones.append(ZoneFree(int(match.group(1)), match.group(2), counts))
    if not zones:
        raise _empty(source, _BUDDYINFO_LINE)
    return zones


def _zone_prefix(node: int, zone: str) -> str:
    return f"Node {node}, zone {zone:>8} "


def format_buddyinfo(zones: Sequence[ZoneFree]) -> str:
    """frag_show_print: "Node %d, zone %8s " then "%6lu " per order."""
    return "".join(
        _zone_prefix(z.node, z.zone) + "".join(f"{n:6d} " for n in z.nr_free) + "\n" for z in zones
    )


# --- debugfs extfrag/unusable_index and extfrag/extfrag_index -------------------------


def _c_div_mod(value: int, divisor: int) -> tuple[int, int]:
    """C's truncating / and %, which the kernel's "%d.%03d" printing relies on."""
    quotient = abs(value) // divisor * (1 if value >= 0 else -1)
    return quotient, value - quotient * divisor


def format_unusable_index(zones: Sequence[ZoneFree]) -> str:
    """unusable_show_print: "Node %d, zone %8s " then "%d.%03d " per order."""
    lines = []
    for z in zones:
        cells = []
        for order in range(len(z.nr_free)):
            whole, frac = _c_div_mod(unusable_index(z.nr_free, order), 1000)
            cells.append(f"{whole:d}.{frac:03d} ")
        lines.append(_zone_prefix(z.node, z.zone) + "".join(cells) + "\n")
    return "".join(lines)


def format_extfrag_index(zones: Sequence[ZoneFree]) -> str:
    """extfrag_show_print: "Node %d, zone %8s " then "%2d.%03d " per order.

    -1000 prints as "-1.000". A negative index above -1000 (possible with very few free
    blocks) prints as the kernel prints it, e.g. -500 as " 0.-500".
    """
    lines = []
    for z in zones:
        cells = []
        for order in range(len(z.nr_free)):
            whole, frac = _c_div_mod(fragmentation_index(z.nr_free, order), 1000)
            cells.append(f"{whole:2d}.{frac:03d} ")
        lines.append(_zone_prefix(z.node, z.zone) + "".join(cells) + "\n")
    return "".join(lines)


# --- /proc/pagetypeinfo ---------------------------------------------------------------


@dataclass
class Pagetypeinfo:
    """/proc/pagetypeinfo of all nodes.

    ``free[(node, zone)][migratetype][order]`` is the free block count of that list, or
    None where the kernel stopped counting and printed ">100000" (the true count is at
    least PAGETYPEINFO_CAP; see derive_capped_counts). ``blocks[(node, zone)]`` is the
    number of pageblocks of each migratetype. ``mixed`` holds the "Number of mixed
    blocks" section, printed only by kernels with page_owner enabled. Migratetypes are
    indexed as in ``migratetypes``, the names the file lists.
    """

    pageblock_order: int
    pages_per_block: int
    free: dict[ZoneKey, list[list[int | None]]]
    blocks: dict[ZoneKey, list[int]]
    migratetypes: tuple[str, ...] = MIGRATETYPE_NAMES
    mixed: dict[ZoneKey, list[int]] | None = None


_FREE_HEADER = "Free pages count per migrate type at order"
_BLOCKS_HEADER = "Number of blocks type "
_MIXED_HEADER = "Number of mixed blocks "
_PAGEBLOCK_ORDER = re.compile(r"Page block order:\s*(\d+)")
_PAGES_PER_BLOCK = re.compile(r"Pages per block:\s*(\d+)")
_FREE_ROW = re.compile(r"Node\s+(\d+), zone\s+(\S+), type\s+(\S+)(.*)")

_EXPECTED = {
    "start": "'Page block order: N'",
    "pages_per_block": "'Pages per block: N'",
    "free_header": f"the header '{_FREE_HEADER} 0 1 ...'",
    "free_rows": "a row 'Node N, zone NAME, type TYPE COUNT...' or the blocks header",
    "block_rows": "a row 'Node N, zone NAME COUNT...' or 'Page block order: N'",
    "mixed_rows": "a row 'Node N, zone NAME COUNT...' or 'Page block order: N'",
}


def parse_pagetypeinfo(text: str, source: str = "<pagetypeinfo>") -> Pagetypeinfo:
    """Parse /proc/pagetypeinfo, one section group per node."""
    state = "start"
    pageblock_order = pages_per_block = nr_orders = None
    migratetypes: tuple[str, ...] | None = None
    free: dict[ZoneKey, list[list[int | None]]] = {}
    free_types: dict[ZoneKey, list[str]] = {}
    first_free_line: dict[ZoneKey, int] = {}
    blocks: dict[ZoneKey, list[int]] = {}
    mixed: dict[ZoneKey, list[int]] | None = None
    rows = blocks
    lineno = 0

    for lineno, raw in _numbered_lines(text):
        line = raw.strip()
        bad = _bad_line(source, lineno, _EXPECTED[state], raw)
        if state in ("start", "block_rows", "mixed_rows") and (
            match := _PAGEBLOCK_ORDER.fullmatch(line)
        ):
            value = int(match.group(1))
            if pageblock_order not in (None, value):
                raise _bad_line(source, lineno, f"'Page block order: {pageblock_order}'", raw)
            pageblock_order, state = value, "pages_per_block"
        elif state == "pages_per_block" and (match := _PAGES_PER_BLOCK.fullmatch(line)):
            value = int(match.group(1))
            if pages_per_block not in (None, value):
                raise _bad_line(source, lineno, f"'Pages per block: {pages_per_block}'", raw)
            pages_per_block, state = value, "free_header"
        elif state == "free_header" and line.startswith(_FREE_HEADER):
            orders = _parse_counts(line[len(_FREE_HEADER) :].split())
            if not orders or orders != list(range(len(orders))):
                raise bad
            if nr_orders not in (None, len(orders)):
                raise _bad_line(source, lineno, f"orders 0..{nr_orders - 1}", raw)
            nr_orders, state = len(orders), "free_rows"
        elif state == "free_rows" and (match := _FREE_ROW.fullmatch(line)):
            counts = _parse_free_counts(match.group(4).split())
            if counts is None or len(counts) != nr_orders:
                raise _bad_line(source, lineno, f"{nr_orders} free counts", raw)
            key = (int(match.group(1)), match.group(2))
            first_free_line.setdefault(key, lineno)
            free.setdefault(key, []).append(counts)
            free_types.setdefault(key, []).append(match.group(3))
        elif state in ("free_rows", "block_rows") and (
            line.startswith(_BLOCKS_HEADER.rstrip()) or line.startswith(_MIXED_HEADER.rstrip())
        ):
            is_mixed = line.startswith(_MIXED_HEADER.rstrip())
            if is_mixed != (state == "block_rows"):
                raise bad
            header = _MIXED_HEADER if is_mixed else _BLOCKS_HEADER
            names = tuple(line[len(header.rstrip()) :].split())
            if not names or migratetypes not in (None, names):
                raise bad
            migratetypes = names
            if is_mixed:
                mixed = {} if mixed is None else mixed
                rows, state = mixed, "mixed_rows"
            else:
                rows, state = blocks, "block_rows"
        elif state in ("block_rows", "mixed_rows") and (match := _ZONE_PREFIX.fullmatch(line)):
            counts = _parse_counts(match.group(3).split())
            key = (int(match.group(1)), match.group(2))
            if counts is None or len(counts) != len(migratetypes) or key in rows:
                raise _bad_line(source, lineno, f"{len(migratetypes)} block counts", raw)
            rows[key] = counts
        else:
            raise bad

    if lineno == 0:
        raise _empty(source, "pagetypeinfo text")
    if state not in ("block_rows", "mixed_rows"):
        raise FragsimError(
            f"{source}:{lineno + 1}: expected {_EXPECTED[state]}, got the end of the file"
        )
    for key, names in free_types.items():
        if tuple(names) != migratetypes:
            raise FragsimError(
                f"{source}:{first_free_line[key]}: expected free rows of types "
                f"{', '.join(migratetypes)} for node {key[0]} zone {key[1]}, "
                f"got {', '.join(names)}"
            )
        if key not in blocks:
            raise FragsimError(
                f"{source}: expected a block count row for node {key[0]} zone {key[1]}, got none"
            )
    return Pagetypeinfo(pageblock_order, pages_per_block, free, blocks, migratetypes, mixed)


def _parse_free_counts(tokens: list[str]) -> list[int | None] | None:
    """Free counts of one pagetypeinfo row, None for a capped ">100000"."""
    counts: list[int | None] = []
    for tok in tokens:
        if tok == f">{PAGETYPEINFO_CAP}":
            counts.append(None)
        elif tok.isascii() and tok.isdigit():
            counts.append(int(tok))
        else:
            return None
    return counts


def _format_free_count(count: int | None) -> str:
    return f">{PAGETYPEINFO_CAP:6d} " if count is None else f"{count:6d} "


def _format_block_counts(
    header: str, rows: dict[ZoneKey, list[int]], node: int, migratetypes: Sequence[str]
) -> str:
    out = ["\n", f"{header:<23}", *(f"{name:>12} " for name in migratetypes), "\n"]
    for (row_node, zone), counts in rows.items():
        if row_node == node:
            out += [_zone_prefix(row_node, zone), *(f"{c:12d} " for c in counts), "\n"]
    return "".join(out)


def format_pagetypeinfo(info: Pagetypeinfo) -> str:
    """pagetypeinfo_show for every node that has zones in ``info.free``."""
    nr_orders = len(next(iter(info.free.values()))[0]) if info.free else 0
    nodes = list(dict.fromkeys(node for node, _ in info.free))
    out = []
    for node in nodes:
        out.append(f"Page block order: {info.pageblock_order}\n")
        out.append(f"Pages per block:  {info.pages_per_block}\n\n")
        out.append(f"{_FREE_HEADER:<43} " + "".join(f"{o:6d} " for o in range(nr_orders)) + "\n")
        for (zone_node, zone), per_type in info.free.items():
            if zone_node != node:
                continue
            for name, counts in zip(info.migratetypes, per_type, strict=True):
                out.append(
                    f"Node {node:4d}, zone {zone:>8}, type {name:>12} "
                    + "".join(_format_free_count(c) for c in counts)
                    + "\n"
                )
        out.append(_format_block_counts(_BLOCKS_HEADER, info.blocks, node, info.migratetypes))
        if info.mixed is not None:
            out.append(_format_block_counts(_MIXED_HEADER, info.mixed, node, info.migratetypes))
    return "".join(out)


def derive_capped_counts(
    pagetypeinfo_zone_free: Sequence[Sequence[int | None]], buddyinfo_nr_free: Sequence[int]
) -> list[list[int]]:
    """Fill in the ">100000" (None) counts of one zone from buddyinfo's per-order totals.

    buddyinfo's nr_free[order] is the sum over migratetypes. With one migratetype capped
    at an order, its count is that total minus the others. With several capped at the
    same order nothing tells them apart, so the remainder is split evenly, the first
    capped types getting the odd blocks. The two files must have been read together:
    a remainder below PAGETYPEINFO_CAP per capped list is reported as an error.
    """
    nr_orders = len(buddyinfo_nr_free)
    if any(len(counts) != nr_orders for counts in pagetypeinfo_zone_free):
        raise FragsimError(
            f"pagetypeinfo and buddyinfo disagree: expected {nr_orders} orders in every "
            f"migratetype, got {[len(counts) for counts in pagetypeinfo_zone_free]}"
        )
    derived = [list(counts) for counts in pagetypeinfo_zone_free]
    for order in range(nr_orders):
        capped = [mt for mt, counts in enumerate(derived) if counts[order] is None]
        if not capped:
            continue
        known = sum(counts[order] for counts in derived if counts[order] is not None)
        remainder = buddyinfo_nr_free[order] - known
        if remainder < PAGETYPEINFO_CAP * len(capped):
            raise FragsimError(
                f"pagetypeinfo and buddyinfo disagree at order {order}: expected at least "
                f"{PAGETYPEINFO_CAP} free blocks in each of {len(capped)} capped lists, "
                f"got {remainder} left by buddyinfo's {buddyinfo_nr_free[order]}"
            )
        share, odd = divmod(remainder, len(capped))
        for i, mt in enumerate(capped):
            derived[mt][order] = share + (1 if i < odd else 0)
    return derived


# --- /proc/slabinfo -------------------------------------------------------------------


@dataclass
class SlabinfoEntry:
    """One /proc/slabinfo 2.1 row (cache_show)."""

    name: str
    active_objs: int
    num_objs: int
    objsize: int
    objperslab: int
    pagesperslab: int
    limit: int = 0
    batchcount: int = 0
    sharedfactor: int = 0
    active_slabs: int = 0
    num_slabs: int = 0
    sharedavail: int = 0


SLABINFO_HEADER = (
    "slabinfo - version: 2.1\n"
    "# name            <active_objs> <num_objs> <objsize> <objperslab> <pagesperslab>"
    " : tunables <limit> <batchcount> <sharedfactor>"
    " : slabdata <active_slabs> <num_slabs> <sharedavail>\n"
)
_SLABINFO_VERSION = re.compile(r"slabinfo - version:\s*(\S+)")
_SLABINFO_ROW = (
    "a slabinfo row 'NAME ACTIVE NUM OBJSIZE PER_SLAB PAGES : tunables L B S"
    " : slabdata ACTIVE NUM SHARED'"
)


def parse_slabinfo(text: str, source: str = "<slabinfo>") -> list[SlabinfoEntry]:
    """Parse /proc/slabinfo version 2.1; another version is an error, and so is a row
    that contradicts itself (more objects than its slabs hold)."""
    lines = _numbered_lines(text)
    if not lines:
        raise _empty(source, "'slabinfo - version: 2.1'")
    lineno, first = lines[0]
    match = _SLABINFO_VERSION.fullmatch(first.strip())
    if not match:
        raise _bad_line(source, lineno, "'slabinfo - version: 2.1'", first)
    if match.group(1) != "2.1":
        raise FragsimError(
            f"{source}:{lineno}: expected slabinfo version 2.1, got version {match.group(1)}"
        )
    entries = []
    for lineno, line in lines[1:]:
        if line.startswith("#"):  # the column header
            continue
        entry = _parse_slabinfo_row(line)
        if entry is None:
            raise _bad_line(source, lineno, _SLABINFO_ROW, line)
        # SLUB's get_slabinfo: num_objs sums the slabs' objects (objperslab at most each,
        # fewer in a fallback-order slab), and active_objs is num_objs less the free ones.
        capacity = entry.num_slabs * entry.objperslab
        if entry.active_objs > capacity or entry.num_objs > capacity:
            what = "active_objs" if entry.active_objs > capacity else "num_objs"
            raise FragsimError(
                f"{source}:{lineno}: {entry.name}: expected {what} <= num_slabs x objperslab "
                f"({entry.num_slabs} x {entry.objperslab} = {capacity}), got "
                f"{getattr(entry, what)}")
        entries.append(entry)
    return entries


def _parse_slabinfo_row(line: str) -> SlabinfoEntry | None:
    # Split from the right: the 15 fields after the name have fixed positions.
    parts = line.strip().rsplit(None, 15)
    if len(parts) != 16 or parts[6:8] != [":", "tunables"] or parts[11:13] != [":", "slabdata"]:
        return None
    numbers = _parse_counts(parts[1:6] + parts[8:11] + parts[13:16])
    return None if numbers is None else SlabinfoEntry(parts[0], *numbers)


def format_slabinfo(entries: Sequence[SlabinfoEntry]) -> str:
    """print_slabinfo_header, then cache_show for every cache."""
    rows = [
        f"{e.name:<17} {e.active_objs:6d} {e.num_objs:6d} {e.objsize:6d} {e.objperslab:4d}"
        f" {e.pagesperslab:4d}"
        f" : tunables {e.limit:4d} {e.batchcount:4d} {e.sharedfactor:4d}"
        f" : slabdata {e.active_slabs:6d} {e.num_slabs:6d} {e.sharedavail:6d}\n"
        for e in entries
    ]
    return SLABINFO_HEADER + "".join(rows)


# --- /proc/zoneinfo -------------------------------------------------------------------


@dataclass
class ZoneinfoZone:
    """The parts of one /proc/zoneinfo zone the simulator uses.

    Watermarks and sizes are in pages. ``pcp`` has one dict per online CPU with keys
    cpu, count, high, batch, high_min, high_max and stat_threshold (the per-CPU vmstat
    threshold printed after each). An unpopulated zone has no pagesets and no start_pfn.
    ``stats`` are the zone's vmstat counters (nr_free_pages, ...); ``node_stats`` the
    node's, printed once under the node's first populated zone.
    """

    node: int
    zone: str
    pages_free: int
    boost: int
    min: int
    low: int
    high: int
    promo: int
    spanned: int
    present: int
    managed: int
    pcp: list[dict[str, int]] = field(default_factory=list)
    start_pfn: int | None = None
    cma: int = 0
    protection: list[int] = field(default_factory=list)
    stats: dict[str, int] = field(default_factory=dict)
    node_stats: dict[str, int] = field(default_factory=dict)


_ZONEINFO_SIZES = ("boost", "min", "low", "high", "promo", "spanned", "present", "managed")
_PCP_KEYS = ("count", "high", "batch", "high_min", "high_max")
_ZONEINFO_ZONE = re.compile(r"Node\s+(\d+), zone\s+(\S+)")
_PAGES_FREE = re.compile(r"pages free\s+(\d+)")
_PROTECTION = re.compile(r"protection: \((-?\d+(?:, -?\d+)*)\)")
_CPU = re.compile(r"cpu: (\d+)")
_COLON_VALUE = re.compile(r"([a-z_][a-z_ ]*):\s+(-?\d+)")
_NAME_VALUE = re.compile(r"([a-z_]\w*)\s+(-?\d+)")


def parse_zoneinfo(text: str, source: str = "<zoneinfo>") -> list[ZoneinfoZone]:
    """Parse /proc/zoneinfo: watermarks, sizes, per-CPU page lists and counters."""
    zones: list[ZoneinfoZone] = []
    current: dict | None = None  # fields of the zone being read
    section = "zone"  # "node_stats", "zone" or "pagesets"

    def finish(zone: dict) -> None:
        missing = [key for key in ("pages_free", *_ZONEINFO_SIZES) if key not in zone]
        missing += [
            f"cpu {pcp['cpu']} {key}" for pcp in zone["pcp"] for key in _PCP_KEYS if key not in pcp
        ]
        if missing:
            raise FragsimError(
                f"{source}:{zone['lineno']}: expected {', '.join(missing)} in node "
                f"{zone['node']} zone {zone['zone']}, got none"
            )
        del zone["lineno"]
        zones.append(ZoneinfoZone(**zone))

    for lineno, raw in _numbered_lines(text):
        line = raw.strip()
        if match := _ZONEINFO_ZONE.fullmatch(line):
            if current is not None:
                finish(current)
            current = dict(
                node=int(match.group(1)),
                zone=match.group(2),
                lineno=lineno,
                pcp=[],
                stats={},
                node_stats={},
            )
            section = "zone"
            continue
        if current is None:
            raise _bad_line(source, lineno, "a zone header 'Node N, zone NAME'", raw)
        if line == "per-node stats":
            section = "node_stats"
        elif line == "pagesets":
            section = "pagesets"
        elif match := _PAGES_FREE.fullmatch(line):
            current["pages_free"] = int(match.group(1))
            section = "zone"
        elif match := _PROTECTION.fullmatch(line):
            current["protection"] = [int(v) for v in match.group(1).split(",")]
        elif section == "pagesets" and (match := _CPU.fullmatch(line)):
            current["pcp"].append({"cpu": int(match.group(1))})
        elif match := _COLON_VALUE.fullmatch(line):
            key, value = match.group(1), int(match.group(2))
            if section == "pagesets" and current["pcp"] and key in _PCP_KEYS:
                current["pcp"][-1][key] = value
            elif section == "pagesets" and current["pcp"] and key == "vm stats threshold":
                current["pcp"][-1]["stat_threshold"] = value
            elif key == "start_pfn":
                current["start_pfn"] = value
            else:  # node_unreclaimable
                current["stats"][key] = value
        elif match := _NAME_VALUE.fullmatch(line):
            key, value = match.group(1), int(match.group(2))
            if section == "node_stats":
                current["node_stats"][key] = value
            elif (
                key in (*_ZONEINFO_SIZES, "cma")
                and "pages_free" in current
                and (section == "zone" and key not in current)
            ):
                current[key] = value
            else:
                current["stats"][key] = value
        else:
            raise _bad_line(source, lineno, "a zoneinfo line 'NAME VALUE'", raw)
    if current is None:
        raise _empty(source, "a zone header 'Node N, zone NAME'")
    finish(current)
    return zones


def format_zoneinfo_zone(zone, node: int, name: str, lowmem_reserve: Sequence[int]) -> str:
    """The head of one zone's /proc/zoneinfo entry (mm/vmstat.c ``zoneinfo_show_print``,
    without the per-node and vmstat counters): its header, ``pages free`` (NR_FREE_PAGES),
    the watermarks, sizes and ``protection`` (``lowmem_reserve``), byte for byte. The
    model has no holes and no reserved pages: spanned = present = managed."""
    pages = zone.nr_pages
    lines = [f"Node {node}, zone {name:>8}", f"  pages free     {zone.nr_free_pages}"]
    for key, value in (("boost", zone.watermark_boost), ("min", zone.min_wmark),
                       ("low", zone.low_wmark), ("high", zone.high_wmark),
                       ("promo", zone.promo_wmark), ("spanned", pages), ("present", pages),
                       ("managed", zone.managed_pages), ("cma", 0)):
        lines.append(f"        {key:<8} {value}")
    lines.append(f"        protection: ({', '.join(str(v) for v in lowmem_reserve)})")
    return "\n".join(lines) + "\n"


# --- snapshots of a simulated zone --------------------------------------------------


def buddyinfo_of(zone, node: int = 0, name: str = "Normal") -> ZoneFree:
    """The /proc/buddyinfo row of a simulated ``sim.buddy.Zone``."""
    return ZoneFree(node=node, zone=name, nr_free=list(zone.nr_free))


def pagetypeinfo_of_zones(zones: list, node: int = 0) -> Pagetypeinfo:
    """/proc/pagetypeinfo of a node's simulated zones, ``(name, zone)`` in pfn order."""
    parts = [pagetypeinfo_of(zone, node, name) for name, zone in zones]
    info = parts[0]
    for part in parts[1:]:
        info.free.update(part.free)
        info.blocks.update(part.blocks)
    return info


def pagetypeinfo_of(zone, node: int = 0, name: str = "Normal") -> Pagetypeinfo:
    """/proc/pagetypeinfo of a simulated zone, counts capped as the kernel caps them.

    pagetypeinfo_showfree_print stops walking a free list at PAGETYPEINFO_CAP entries
    and prints ">100000"; buddyinfo keeps the true total.
    """
    free = [
        [None if count >= PAGETYPEINFO_CAP else count for count in per_order]
        for per_order in zone.nr_free_by_type()
    ]
    return Pagetypeinfo(
        pageblock_order=zone.pageblock_order,
        pages_per_block=zone.pageblock_nr_pages,
        free={(node, name): free},
        blocks={(node, name): zone.pageblock_counts()},
    )
