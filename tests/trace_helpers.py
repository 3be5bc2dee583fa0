"""Hand-written kmem trace lines for the replay tests (the format of trace.txt)."""


def trace_line(ts, event, fields):
    """One ftrace line; ``ts`` a number, or a string written as it is ("nan", "-1.0")."""
    stamp = ts if isinstance(ts, str) else f"{ts:.6f}"
    return f" python3-2864    [001] .....  {stamp}: {event}: call_site=f+0x1/0x2 {fields}"


def dentry_alloc(ts, ptr, size=192):
    return trace_line(ts, "kmem_cache_alloc", f"ptr={ptr} name=dentry bytes_req={size} "
                      f"bytes_alloc={size} gfp_flags=GFP_KERNEL node=-1 accounted=false")


def dentry_free(ts, ptr):
    return trace_line(ts, "kmem_cache_free", f"ptr={ptr} name=dentry")


def page_alloc(ts, pfn, order, migratetype=0, gfp="GFP_KERNEL"):
    """A replayed mm_page_alloc (no slab page: GFP_KERNEL lacks SLUB's signature)."""
    return trace_line(ts, "mm_page_alloc", f"page=00000000aa pfn={pfn:#x} order={order} "
                      f"migratetype={migratetype} gfp_flags={gfp}")
