"""GFP flags, named and composed as include/linux/gfp_types.h of Linux 6.18 does.

The bit values are this module's own (the kernel's depend on its config); the names,
the composite masks and ``gfp_migratetype`` follow the kernel. ``parse_gfp`` reads
the ``gfp_flags=`` field of a kmem trace event, e.g.
``GFP_KERNEL|__GFP_RECLAIMABLE|__GFP_NOWARN|__GFP_NORETRY|__GFP_COMP``.
"""

from __future__ import annotations

from sim.migratetype import MIGRATE_MOVABLE, MIGRATE_RECLAIMABLE, MIGRATE_UNMOVABLE

_BITS = (
    "DMA", "HIGHMEM", "DMA32", "MOVABLE", "RECLAIMABLE", "HIGH", "IO", "FS", "ZERO",
    "DIRECT_RECLAIM", "KSWAPD_RECLAIM", "WRITE", "NOWARN", "RETRY_MAYFAIL", "NOFAIL",
    "NORETRY", "MEMALLOC", "COMP", "NOMEMALLOC", "HARDWALL", "THISNODE", "ACCOUNT",
    "ZEROTAGS", "SKIP_ZERO", "SKIP_KASAN", "NOLOCKDEP", "NO_OBJ_EXT",
)
FLAGS: dict[str, int] = {f"__GFP_{name}": 1 << bit for bit, name in enumerate(_BITS)}

__GFP_DMA = FLAGS["__GFP_DMA"]
__GFP_HIGHMEM = FLAGS["__GFP_HIGHMEM"]
__GFP_DMA32 = FLAGS["__GFP_DMA32"]
__GFP_MOVABLE = FLAGS["__GFP_MOVABLE"]
__GFP_RECLAIMABLE = FLAGS["__GFP_RECLAIMABLE"]
__GFP_HIGH = FLAGS["__GFP_HIGH"]
__GFP_IO = FLAGS["__GFP_IO"]
__GFP_FS = FLAGS["__GFP_FS"]
__GFP_ZERO = FLAGS["__GFP_ZERO"]
__GFP_DIRECT_RECLAIM = FLAGS["__GFP_DIRECT_RECLAIM"]
__GFP_KSWAPD_RECLAIM = FLAGS["__GFP_KSWAPD_RECLAIM"]
__GFP_NOWARN = FLAGS["__GFP_NOWARN"]
__GFP_RETRY_MAYFAIL = FLAGS["__GFP_RETRY_MAYFAIL"]
__GFP_NOFAIL = FLAGS["__GFP_NOFAIL"]
__GFP_NORETRY = FLAGS["__GFP_NORETRY"]
__GFP_MEMALLOC = FLAGS["__GFP_MEMALLOC"]
__GFP_COMP = FLAGS["__GFP_COMP"]
__GFP_NOMEMALLOC = FLAGS["__GFP_NOMEMALLOC"]
__GFP_HARDWALL = FLAGS["__GFP_HARDWALL"]
__GFP_THISNODE = FLAGS["__GFP_THISNODE"]
__GFP_ACCOUNT = FLAGS["__GFP_ACCOUNT"]
__GFP_SKIP_KASAN = FLAGS["__GFP_SKIP_KASAN"]
__GFP_RECLAIM = __GFP_DIRECT_RECLAIM | __GFP_KSWAPD_RECLAIM

GFP_ATOMIC = __GFP_HIGH | __GFP_KSWAPD_RECLAIM
GFP_KERNEL = __GFP_RECLAIM | __GFP_IO | __GFP_FS
GFP_KERNEL_ACCOUNT = GFP_KERNEL | __GFP_ACCOUNT
GFP_NOWAIT = __GFP_KSWAPD_RECLAIM | __GFP_NOWARN
GFP_NOIO = __GFP_RECLAIM
GFP_NOFS = __GFP_RECLAIM | __GFP_IO
GFP_USER = __GFP_RECLAIM | __GFP_IO | __GFP_FS | __GFP_HARDWALL
GFP_DMA = __GFP_DMA
GFP_DMA32 = __GFP_DMA32
GFP_HIGHUSER = GFP_USER | __GFP_HIGHMEM
GFP_HIGHUSER_MOVABLE = GFP_HIGHUSER | __GFP_MOVABLE | __GFP_SKIP_KASAN
GFP_TRANSHUGE_LIGHT = (
    GFP_HIGHUSER_MOVABLE | __GFP_COMP | __GFP_NOMEMALLOC | __GFP_NOWARN
) & ~__GFP_RECLAIM
GFP_TRANSHUGE = GFP_TRANSHUGE_LIGHT | __GFP_DIRECT_RECLAIM
# include/asm-generic/pgalloc.h: a user page table's page (pte_alloc_one), Unmovable.
GFP_PGTABLE_KERNEL = GFP_KERNEL | __GFP_ZERO
GFP_PGTABLE_USER = GFP_PGTABLE_KERNEL | __GFP_ACCOUNT

COMPOSITES = {
    "GFP_ATOMIC": GFP_ATOMIC,
    "GFP_KERNEL": GFP_KERNEL,
    "GFP_KERNEL_ACCOUNT": GFP_KERNEL_ACCOUNT,
    "GFP_NOWAIT": GFP_NOWAIT,
    "GFP_NOIO": GFP_NOIO,
    "GFP_NOFS": GFP_NOFS,
    "GFP_USER": GFP_USER,
    "GFP_DMA": GFP_DMA,
    "GFP_DMA32": GFP_DMA32,
    "GFP_HIGHUSER": GFP_HIGHUSER,
    "GFP_HIGHUSER_MOVABLE": GFP_HIGHUSER_MOVABLE,
    "GFP_TRANSHUGE_LIGHT": GFP_TRANSHUGE_LIGHT,
    "GFP_TRANSHUGE": GFP_TRANSHUGE,
    "__GFP_RECLAIM": __GFP_RECLAIM,
}


def parse_gfp(text: str) -> int:
    """``GFP_KERNEL|__GFP_ZERO`` -> flags. Unknown names raise ValueError; ``0x0`` is 0."""
    flags = 0
    for name in text.split("|"):
        name = name.strip()
        if not name or name in ("0", "0x0", "none"):
            continue
        value = COMPOSITES.get(name, FLAGS.get(name))
        if value is None:
            raise ValueError(f"expected GFP flag names, got {name!r}")
        flags |= value
    return flags


def gfp_migratetype(gfp: int) -> int:
    """``gfp_migratetype``: MOVABLE, RECLAIMABLE or UNMOVABLE from the mobility bits."""
    if gfp & __GFP_MOVABLE:
        return MIGRATE_MOVABLE
    if gfp & __GFP_RECLAIMABLE:
        return MIGRATE_RECLAIMABLE
    return MIGRATE_UNMOVABLE


def gfpflags_allow_blocking(gfp: int) -> bool:
    return bool(gfp & __GFP_DIRECT_RECLAIM)


# Python mangles ``__NAME`` inside class bodies, so code in classes uses these aliases:
# GFPF_IO is __GFP_IO, GFPF_KSWAPD_RECLAIM is __GFP_KSWAPD_RECLAIM, and so on.
GFPF_MOVABLE = __GFP_MOVABLE
GFPF_RECLAIMABLE = __GFP_RECLAIMABLE
GFPF_FS = __GFP_FS
GFPF_HIGH = __GFP_HIGH
GFPF_DIRECT_RECLAIM = __GFP_DIRECT_RECLAIM
GFPF_KSWAPD_RECLAIM = __GFP_KSWAPD_RECLAIM
GFPF_RECLAIM = __GFP_RECLAIM
GFPF_NOWARN = __GFP_NOWARN
GFPF_NORETRY = __GFP_NORETRY
GFPF_RETRY_MAYFAIL = __GFP_RETRY_MAYFAIL
GFPF_NOMEMALLOC = __GFP_NOMEMALLOC
GFPF_COMP = __GFP_COMP
