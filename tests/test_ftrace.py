"""sim.ftrace reads the kmem events of include/trace/events/kmem.h as ftrace prints them,
in 6.18's format and in the older ones, streaming, and survives bad input."""

import gzip
import io
import lzma
import re
import zlib
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sim import ftrace
from sim.errors import FragsimError
from sim.ftrace import (
    EV_CACHE_ALLOC,
    EV_CACHE_FREE,
    EV_KFREE,
    EV_KMALLOC,
    EV_PAGE_ALLOC,
    EV_PAGE_FREE,
    EV_PAGE_FREE_BATCHED,
    KIND_NAMES,
    MAX_BAD_LINES_KEPT,
    TraceEvent,
    TraceReader,
    read_trace,
)
from sim.gfp import (
    __GFP_COMP,
    __GFP_DIRECT_RECLAIM,
    __GFP_NOWARN,
    __GFP_ZERO,
    GFP_HIGHUSER_MOVABLE,
    GFP_KERNEL,
    GFP_NOWAIT,
    parse_gfp,
)

DATA = Path(__file__).parent / "data" / "kmem-traces"
SLICE = DATA / "slice.txt.gz"
FULL = (Path(__file__).parent.parent / "configs" / "examples" / "tmpfs-churn-20k-keep10"
        / "trace.txt.xz")

HEADER = """# tracer: nop
#
# entries-in-buffer/entries-written: 6/6   #P:2
#
#           TASK-PID     CPU#  |||||  TIMESTAMP  FUNCTION
#              | |         |   |||||     |         |
"""

# One line of each event, exactly as the 6.18 kernel of the shared trace printed them.
LINES_618 = {
    EV_CACHE_ALLOC: " python3-2864    [001] .....  4728.651575: kmem_cache_alloc: "
    "call_site=shmem_alloc_inode+0x1d/0x40 ptr=00000000a947897d name=shmem_inode_cache "
    "bytes_req=744 bytes_alloc=752 gfp_flags=GFP_KERNEL node=-1 accounted=true",
    EV_CACHE_FREE: " python3-2864    [001] ..s.1  4729.171517: kmem_cache_free: "
    "call_site=rcu_do_batch+0x1b7/0x530 ptr=000000003ed4c6e9 name=dentry",
    EV_KMALLOC: " python3-2864    [001] .....  4728.651569: kmalloc: "
    "call_site=alloc_slab_obj_exts+0x58/0x110 ptr=000000000ade4787 bytes_req=168 "
    "bytes_alloc=192 gfp_flags=GFP_KERNEL|__GFP_ZERO|__GFP_COMP node=0 accounted=false",
    EV_KFREE: " python3-2864    [001] .....  4728.516526: kfree: "
    "call_site=load_elf_binary+0x1bc/0x18a0 ptr=0000000011ecd33d",
    EV_PAGE_ALLOC: " python3-2864    [001] .....  4728.651568: mm_page_alloc: "
    "page=000000005bb9316b pfn=0x118538 order=2 migratetype=0 "
    "gfp_flags=__GFP_IO|__GFP_FS|__GFP_NOWARN|__GFP_NORETRY|__GFP_COMP|__GFP_NOMEMALLOC",
    EV_PAGE_FREE: " python3-2864    [001] ...1.  4728.516140: mm_page_free: "
    "page=00000000d5b86ab7 pfn=0x109e97 order=0",
}
# The same in time order, as a trace prints them (a line is bad if its time goes back).
ORDERED_618 = sorted(LINES_618.values(), key=lambda line: float(line.split(":")[0].split()[-1]))


def write(tmp_path: Path, text: str, name: str = "trace.txt", compress=None) -> Path:
    path = tmp_path / name
    data = text.encode()
    path.write_bytes(compress(data) if compress else data)
    return path


def naive_counts(lines: list[str]) -> list[int]:
    """Per kind, the lines whose event field names it (a grep, not the parser)."""
    counts = [0] * len(KIND_NAMES)
    for line in lines:
        for kind, name in enumerate(KIND_NAMES):
            if f" {name}: " in line:
                counts[kind] += 1
    return counts


# ------------------------------------------------------------------ the 6.18 format


def test_every_618_event_is_read_field_by_field(tmp_path):
    path = write(tmp_path, HEADER + "\n".join(ORDERED_618) + "\n")
    events, stats = read_trace(path)
    assert stats.bad_lines == 0 and stats.comments == 6 and stats.events == 6
    by_kind = {ev.kind: ev for ev in events}

    def line_of(kind):  # the 1-based line of the file: after the six header lines
        return 6 + ORDERED_618.index(LINES_618[kind]) + 1

    assert by_kind[EV_CACHE_ALLOC] == TraceEvent(
        4728.651575, 1, EV_CACHE_ALLOC, "00000000a947897d", -1, "shmem_inode_cache", 744, 752,
        GFP_KERNEL, 0, 0, True, line_of(EV_CACHE_ALLOC))
    assert by_kind[EV_CACHE_FREE] == TraceEvent(
        4729.171517, 1, EV_CACHE_FREE, "000000003ed4c6e9", -1, "dentry", 0, 0, 0, 0, 0, False,
        line_of(EV_CACHE_FREE))
    assert by_kind[EV_KMALLOC] == TraceEvent(
        4728.651569, 1, EV_KMALLOC, "000000000ade4787", -1, None, 168, 192,
        GFP_KERNEL | __GFP_ZERO | __GFP_COMP, 0, 0, False, line_of(EV_KMALLOC))
    assert [ev.lineno for ev in events] == list(range(7, 13))  # file order
    assert by_kind[EV_KFREE].ptr == "0000000011ecd33d"
    page = by_kind[EV_PAGE_ALLOC]
    assert (page.pfn, page.order, page.migratetype, page.ptr) == (0x118538, 2, 0, "")
    assert page.gfp == parse_gfp(
        "__GFP_IO|__GFP_FS|__GFP_NOWARN|__GFP_NORETRY|__GFP_COMP|__GFP_NOMEMALLOC")
    free = by_kind[EV_PAGE_FREE]
    assert (free.pfn, free.order, free.cpu, free.ts) == (0x109e97, 0, 1, 4728.516140)
    assert stats.span_s == pytest.approx(4729.171517 - 4728.516140)  # latest - earliest


def test_the_real_slice_parses_completely_and_matches_a_grep():
    raw = gzip.decompress(SLICE.read_bytes()).decode()
    lines = raw.splitlines()
    events, stats = read_trace(SLICE)
    assert stats.bad_lines == 0
    assert stats.comments == sum(1 for line in lines if line.startswith("#"))
    assert stats.per_kind == naive_counts(lines)
    assert len(events) == stats.events == sum(stats.per_kind)
    assert all(stats.per_kind[k] for k in range(EV_PAGE_FREE + 1))
    first = events[0]
    assert (first.ts, first.cpu, first.kind, first.ptr, first.name) == (
        4728.514174, 0, EV_CACHE_FREE, "00000000ce724b47", "lsm_file_cache")
    # Timestamps never go back in ftrace's merged output.
    assert all(a.ts <= b.ts for a, b in zip(events, events[1:], strict=False))


def test_gfp_strings_are_parsed_once_and_agree_with_parse_gfp():
    gfp_cache: dict[str, int] = {}
    reader = TraceReader(SLICE, gfp_cache=gfp_cache, parallel=False)
    events = list(reader)
    assert 1 <= len(gfp_cache) < 40  # distinct strings, not one per event
    for token, value in gfp_cache.items():
        assert value == parse_gfp(token.removeprefix("gfp_flags="))
    assert any(ev.gfp == GFP_HIGHUSER_MOVABLE | __GFP_COMP for ev in events)
    # 6.18's GFP_NOWAIT includes __GFP_NOWARN: the maple_node slab pages' signature.
    assert GFP_NOWAIT & __GFP_NOWARN


def test_names_are_interned_so_equal_names_are_one_object():
    events, _ = read_trace(SLICE)
    dentries = [ev.name for ev in events if ev.name == "dentry"]
    assert len(dentries) > 2 and all(n is dentries[0] for n in dentries)


# ------------------------------------------------------------------ older formats


OLD_LINES = [
    # 4.x: hex call_site, no name=, no accounted=, decimal pfn, *_node events, cold=.
    "          bash-1234  [002] ....  512.000001: kmem_cache_alloc: call_site=ffffffff811c9d3e "
    "ptr=ffff88003ab2c000 bytes_req=192 bytes_alloc=192 gfp_flags=GFP_KERNEL",
    "          bash-1234  [002] ....  512.000002: kmem_cache_alloc_node: "
    "call_site=ffffffff811c9d3e ptr=ffff88003ab2c0c0 bytes_req=192 bytes_alloc=192 "
    "gfp_flags=GFP_KERNEL|__GFP_ZERO node=0",
    "          bash-1234  [002] ....  512.000003: kmalloc_node: call_site=ffffffff81234567 "
    "ptr=ffff88003ab2d000 bytes_req=100 bytes_alloc=128 gfp_flags=GFP_KERNEL node=-1",
    "          bash-1234  [002] ....  512.000004: kmem_cache_free: call_site=ffffffff811c9e00 "
    "ptr=ffff88003ab2c000",
    "          bash-1234  [002] ....  512.000005: mm_page_alloc: page=ffffea0000d8f000 "
    "pfn=3554240 order=0 migratetype=1 gfp_flags=GFP_HIGHUSER_MOVABLE|__GFP_COLD",
    "          bash-1234  [002] ....  512.000006: mm_page_free: page=ffffea0000d8f000 "
    "pfn=3554240 order=0",
    "          bash-1234  [002] ....  512.000007: mm_page_free_batched: page=ffffea0000d8f040 "
    "pfn=3554241 order=0 cold=1",
    # 5.x-6.17: kmem_cache_alloc without name=, with accounted=.
    "       python3-99    [000] .....  600.000001: kmem_cache_alloc: "
    "call_site=__d_alloc+0x2d/0x230 ptr=00000000e79d1f8a bytes_req=192 bytes_alloc=192 "
    "gfp_flags=GFP_KERNEL node=-1 accounted=true",
    # A module call site, a task name with spaces, no irq-info column, __GFP_WAIT.
    "   kworker/u8:1-77   [001] .....  600.000002: kmem_cache_alloc: "
    "call_site=xfs_inode_alloc+0x1d/0x90 [xfs] ptr=00000000aaaa0001 name=xfs_inode "
    "bytes_req=960 bytes_alloc=1024 gfp_flags=GFP_KERNEL node=-1 accounted=true",
    "   Web Content-4242  [001] .....  600.000003: kfree: call_site=kvfree+0x2b/0x40 "
    "ptr=00000000bbbb0002",
    "          bash-1234  [003]  600.000004: kmalloc: call_site=ffffffff81234567 "
    "ptr=ffff88003ab2e000 bytes_req=64 bytes_alloc=64 gfp_flags=__GFP_WAIT|__GFP_IO|__GFP_FS",
    # 6.18 failed allocation: NULL page.
    "       python3-99    [000] .....  600.000005: mm_page_alloc: page=0000000000000000 "
    "pfn=0x0 order=9 migratetype=1 gfp_flags=GFP_TRANSHUGE_LIGHT",
]


def test_old_tp_printk_formats_are_read(tmp_path):
    path = write(tmp_path, "\n".join(OLD_LINES) + "\n")
    events, stats = read_trace(path)
    assert stats.bad_lines == 0, stats.bad_line_report()
    assert [ev.kind for ev in events] == [
        EV_CACHE_ALLOC, EV_CACHE_ALLOC, EV_KMALLOC, EV_CACHE_FREE, EV_PAGE_ALLOC, EV_PAGE_FREE,
        EV_PAGE_FREE_BATCHED, EV_CACHE_ALLOC, EV_CACHE_ALLOC, EV_KFREE, EV_KMALLOC,
        EV_PAGE_ALLOC]
    e = events
    assert (e[0].ptr, e[0].name, e[0].bytes_alloc, e[0].accounted) == (
        "ffff88003ab2c000", None, 192, False)
    assert e[1].gfp == GFP_KERNEL | __GFP_ZERO and e[1].cpu == 2
    assert (e[2].bytes_req, e[2].bytes_alloc) == (100, 128)
    assert e[3].name is None
    assert (e[4].pfn, e[4].migratetype) == (3554240, 1)  # decimal pfn
    assert e[4].gfp == GFP_HIGHUSER_MOVABLE  # __GFP_COLD has no 6.18 meaning
    assert (e[5].pfn, e[6].pfn, e[6].order) == (3554240, 3554241, 0)
    assert (e[7].name, e[7].accounted) == (None, True)
    assert (e[8].name, e[8].ptr, e[8].bytes_alloc) == ("xfs_inode", "00000000aaaa0001", 1024)
    assert (e[9].ptr, e[9].cpu) == ("00000000bbbb0002", 1)
    assert e[10].gfp == __GFP_DIRECT_RECLAIM | parse_gfp("__GFP_IO|__GFP_FS")
    assert e[10].cpu == 3 and e[10].ts == 600.000004
    assert e[11].ptr == "null"  # a failed allocation
    # The careful path (old layouts, a module in the call site) keeps line numbers too.
    assert [ev.lineno for ev in events] == list(range(1, len(OLD_LINES) + 1))


def test_unknown_gfp_flag_names_are_recorded_not_fatal(tmp_path):
    line = LINES_618[EV_KMALLOC].replace("GFP_KERNEL|", "GFP_KERNEL|__GFP_FUTURE|0x8000000|")
    events, stats = read_trace(write(tmp_path, line + "\n"))
    assert stats.bad_lines == 0 and stats.unknown_gfp == {"__GFP_FUTURE", "0x8000000"}
    assert events[0].gfp == GFP_KERNEL | __GFP_ZERO | __GFP_COMP


def test_other_tracepoints_are_counted_not_garbled(tmp_path):
    text = (HEADER + "  <idle>-0  [000] d.h1.  10.000001: sched_switch: prev_comm=swapper\n"
            + LINES_618[EV_KFREE] + "\n")
    _, stats = read_trace(write(tmp_path, text))
    assert (stats.other_events, stats.bad_lines, stats.events) == (1, 0, 1)


def test_crlf_line_endings(tmp_path):
    path = write(tmp_path, "\r\n".join(ORDERED_618) + "\r\n")
    events, stats = read_trace(path)
    assert stats.bad_lines == 0 and len(events) == 6
    assert {ev.name for ev in events} >= {"dentry", "shmem_inode_cache"}


# ------------------------------------------------------------------ files and streams


@pytest.mark.parametrize("name", ["trace.txt", "trace.gz", "trace.dat"])
def test_gzip_is_recognised_by_its_magic_bytes_not_its_name(tmp_path, name):
    text = HEADER + "\n".join(ORDERED_618) + "\n"
    gz = write(tmp_path, text, name, gzip.compress)
    assert read_trace(gz)[1].events == 6
    plain = write(tmp_path, text, "plain-" + name + ".gz")
    assert read_trace(plain)[1].events == 6


def test_xz_and_file_objects_are_read(tmp_path):
    text = "\n".join(ORDERED_618) + "\n"
    assert read_trace(write(tmp_path, text, "t.xz", lzma.compress))[1].events == 6
    events, stats = read_trace(io.BytesIO(gzip.compress(text.encode())))
    assert stats.events == 6 and stats.source == "<trace>"


def test_the_parallel_parser_gives_the_same_events_and_stats():
    serial = TraceReader(SLICE, parallel=False)
    events = list(serial)
    parallel = TraceReader(SLICE, parallel=True)
    assert list(parallel) == events
    assert parallel.stats.parallel and not serial.stats.parallel
    parallel.stats.parallel = False
    assert parallel.stats.as_dict() == serial.stats.as_dict()


def test_stopping_early_ends_the_parser_process():
    reader = TraceReader(SLICE, parallel=True)
    it = iter(reader)
    first = [next(it) for _ in range(10)]
    it.close()  # a consumer that stops: the child must not hang
    assert len(first) == 10


def test_a_reader_streams_once():
    reader = TraceReader(SLICE, parallel=False)
    list(reader)
    with pytest.raises(RuntimeError):
        list(reader)


# ------------------------------------------------------------------ bad input


def test_garbled_lines_are_counted_with_line_numbers_and_never_stop_parsing(tmp_path):
    good = list(ORDERED_618)
    garbage = [
        "this is not ftrace output",
        " python3-2864    [001] .....  4728.5: kmem_cache_alloc: call_site=x ptr=1 name=dentry "
        "bytes_req=abc bytes_alloc=192 gfp_flags=GFP_KERNEL node=-1 accounted=true",
        " python3-2864    [0x1] .....  4728.6: kfree: call_site=x ptr=00000000bbbb0002",
        " python3-2864    [001] .....  4728.7: mm_page_free: page=1 pfn=zz order=0",
        " python3-2864    [001] .....  4728.8: kmem_cache_free: call_site=x name=dentry",
    ] * 3  # 15 garbled lines: the first 10 are kept
    lines = [good[0], *garbage[:7], *good[1:4], *garbage[7:], *good[4:]]
    events, stats = read_trace(write(tmp_path, "\n".join(lines) + "\n"))
    assert stats.events == 6 and len(events) == 6
    assert stats.bad_lines == 15
    assert len(stats.first_bad) == MAX_BAD_LINES_KEPT
    expected = [n for n, line in enumerate(lines, 1) if line in garbage][:MAX_BAD_LINES_KEPT]
    assert [b.lineno for b in stats.first_bad] == expected
    report = stats.bad_line_report()
    assert "15 bad line(s)" in report and f"trace.txt:{expected[0]}: " in report


def test_a_truncated_gzip_ends_the_stream_with_an_error_not_a_crash(tmp_path):
    data = SLICE.read_bytes()
    path = tmp_path / "cut.txt.gz"
    path.write_bytes(data[: len(data) * 2 // 3])
    events, stats = read_trace(path)
    full, _ = read_trace(SLICE)
    assert 0 < len(events) < len(full)
    assert events == full[: len(events)]
    assert not stats.complete and "ends early" in stats.error
    assert "\n" not in stats.error


@pytest.mark.parametrize("keep", [0.2, 0.5, 0.9, 0.999])
def test_a_truncated_gzip_keeps_every_line_that_could_be_decompressed(tmp_path, keep):
    """All complete lines zlib can get out of the truncated bytes are read, up to the
    cut: none of the last decompression block is lost."""
    text = gzip.decompress(SLICE.read_bytes())
    packed = gzip.compress(text, compresslevel=6)
    cut = packed[: int(len(packed) * keep)]
    readable = zlib.decompressobj(wbits=31).decompress(cut)
    prefix = readable[: readable.rindex(b"\n") + 1]
    path = tmp_path / "cut.gz"
    path.write_bytes(cut)
    events, stats = read_trace(path)
    expected, _ = read_trace(write(tmp_path, prefix.decode(), "prefix.txt"))
    assert events == expected
    assert len(events) > 0 and stats.error and "ends early" in stats.error


@settings(max_examples=40, deadline=None)
@given(st.lists(st.tuples(st.floats(0, 1), st.integers(1, 255)), max_size=3),
       st.floats(0.05, 1.0))
def test_zlib_ng_inflates_every_stream_as_zlib_does(flips, keep):
    """The reader's inflate is zlib-ng's where it imports: out of a good, corrupt or cut
    stream it must give the very bytes zlib gives, and fail where zlib fails."""
    from zlib_ng import zlib_ng

    data = bytearray(SLICE.read_bytes())
    for where, mask in flips:
        data[min(int(where * len(data)), len(data) - 1)] ^= mask
    data = bytes(data[: max(1, int(len(data) * keep))])

    def inflate(module):
        reader = ftrace._GzipReader(io.BufferedReader(io.BytesIO(data)), module)
        out = []
        try:
            while chunk := reader.read(1 << 14):
                out.append(chunk)
        except (zlib.error, zlib_ng.error) as err:
            return b"".join(out), str(err)
        except EOFError as err:
            return b"".join(out), f"EOF {err}"
        return b"".join(out), None

    assert inflate(zlib_ng) == inflate(zlib)

    def blocks(module):
        """The same through ``blocks()``, the parser's way: the blocks as they come."""
        reader = ftrace._GzipReader(io.BufferedReader(io.BytesIO(data)), module)
        out = []
        try:
            out.extend(reader.blocks())
        except (zlib.error, zlib_ng.error) as err:
            return b"".join(out), str(err)
        except EOFError as err:
            return b"".join(out), f"EOF {err}"
        return b"".join(out), None

    assert blocks(zlib_ng) == blocks(zlib) == inflate(zlib)


@settings(max_examples=40, deadline=None)
@given(st.integers(64, 5000), st.sampled_from(["gzip", "plain"]), st.integers(0, 3))
def test_byte_spans_are_the_lines_of_chunks(chunk, packing, cut_end):
    """``TraceStream.byte_spans`` (the C scanner's input: blocks as they were read, a
    line across two joined alone) gives, span by span, exactly the lines ``chunks``
    gives, for gzip (zlib's blocks) and plain files read ``chunk`` bytes at a time, with
    the file's last line ending in a newline or not, and lines of every length."""
    from sim.ftrace import TraceStream

    text = gzip.decompress(SLICE.read_bytes())[: 60_000 + cut_end * 37]
    text += b"x" * 90_000 + b"\n\n" + b"tail without newline" * cut_end
    # gzip stored, not compressed: its 4 KiB reads are 4 KiB blocks that cut lines
    data = gzip.compress(text, compresslevel=0) if packing == "gzip" else text
    saved = TraceStream.CHUNK
    TraceStream.CHUNK = chunk
    try:
        stream = TraceStream(io.BytesIO(data))
        spans = list(stream.byte_spans())
        stream = TraceStream(io.BytesIO(data))
        lines = [line for lines in stream.chunks() for line in lines]
    finally:
        TraceStream.CHUNK = saved
    joined = b"".join(buf[start:end] for buf, start, end in spans)
    assert joined == text and len(spans) > 5
    for buf, start, end in spans[:-1]:
        assert 0 <= start < end <= len(buf) and buf[end - 1:end] == b"\n"
    assert joined.decode().split("\n") == lines + ([""] if text.endswith(b"\n") else [])


def test_the_scanner_refuses_an_end_outside_its_buffer():
    """``Scanner.chunk(buf, pos, lineno, end)`` reads buf[pos:end] (that it stops there
    is what the scanner test above checks: its 1009-byte reads end in cut lines) and
    refuses an end or a pos outside the buffer."""
    import sim
    from sim import ftrace

    scanner = ftrace._c_scanner(ftrace._HEAD_KINDS, {}, [{} for _ in ftrace.KIND_NAMES], {})
    if not sim.NATIVE:
        assert scanner is None
        return
    text = gzip.decompress(SLICE.read_bytes())
    end = text.index(b"\n", 100_000) + 1
    assert scanner.chunk(text, end, 7, end) == (end, 7)  # nothing to read
    with pytest.raises(ValueError, match="end outside"):
        scanner.chunk(text, 0, 0, len(text) + 1)
    with pytest.raises(ValueError, match="pos outside"):
        scanner.chunk(text, end + 1, 0, end)


def test_concatenated_gzip_members_read_as_one_trace(tmp_path):
    text = gzip.decompress(SLICE.read_bytes())
    half = text.index(b"\n", len(text) // 2) + 1
    path = tmp_path / "two.gz"
    path.write_bytes(gzip.compress(text[:half]) + gzip.compress(text[half:]))
    events, stats = read_trace(path)
    assert events == read_trace(SLICE)[0]
    assert stats.complete and stats.error is None


def test_a_truncated_gzip_before_any_event_is_a_one_line_error(tmp_path):
    path = tmp_path / "cut.gz"
    path.write_bytes(SLICE.read_bytes()[:40])
    with pytest.raises(FragsimError) as err:
        read_trace(path)
    assert "ends early" in str(err.value) and "\n" not in str(err.value)


def test_an_empty_file_is_a_one_line_error(tmp_path):
    for path in (write(tmp_path, ""), write(tmp_path, "", "e.gz", gzip.compress)):
        with pytest.raises(FragsimError, match="got an empty file") as err:
            read_trace(path)
        assert "\n" not in str(err.value)


def test_a_file_without_kmem_events_is_a_one_line_error(tmp_path):
    text = HEADER + "  <idle>-0  [000] d.h1.  10.000001: sched_switch: prev_comm=swapper\n"
    with pytest.raises(FragsimError, match=r"got none in 7 lines") as err:
        read_trace(write(tmp_path, text))
    assert "\n" not in str(err.value)


def test_a_missing_file_is_a_one_line_error(tmp_path):
    with pytest.raises(FragsimError, match="cannot open"):
        read_trace(tmp_path / "nope.gz")


def test_the_full_shipped_trace_reads_without_a_bad_line():
    assert FULL.exists(), "the shipped full trace is missing"
    reader = TraceReader(FULL)
    n = sum(len(batch) for batch in reader.batches())
    stats = reader.stats
    assert n == stats.events == 372008  # the trace header: entries-written 372008
    assert stats.bad_lines == 0 and stats.complete
    assert stats.per_kind == [170396, 137544, 3652, 5781, 29786, 24849, 0]
    assert stats.span_s == pytest.approx(0.770218)


# ------------------------------------------------------------------ lines that cannot be replayed


def cache_alloc(ts, ptr, name="dentry", req=192, size=192, site="d_alloc+0x1/0x2"):
    return (f" python3-2864    [001] .....  {ts}: kmem_cache_alloc: call_site={site} "
            f"ptr={ptr} name={name} bytes_req={req} bytes_alloc={size} gfp_flags=GFP_KERNEL "
            "node=-1 accounted=false")


def cache_free(ts, ptr, name="dentry"):
    return (f" python3-2864    [001] ..s.1  {ts}: kmem_cache_free: call_site=rcu_do_batch+0x1/0x2"
            f" ptr={ptr} name={name}")


def kmalloc(ts, ptr, req=100, size=128):
    return (f" python3-2864    [000] .....  {ts}: kmalloc: call_site=f+0x1/0x2 ptr={ptr} "
            f"bytes_req={req} bytes_alloc={size} gfp_flags=GFP_KERNEL node=0 accounted=false")


def kfree(ts, ptr):
    return f" python3-2864    [000] .....  {ts}: kfree: call_site=f+0x1/0x2 ptr={ptr}"


def page_alloc(ts, pfn=0x1000, order=0, mt=1):
    return (f" python3-2864    [000] .....  {ts}: mm_page_alloc: page=00000000aa pfn={pfn:#x} "
            f"order={order} migratetype={mt} gfp_flags=GFP_HIGHUSER_MOVABLE")


def page_free(ts, pfn=0x1000, order=0):
    return (f" python3-2864    [000] .....  {ts}: mm_page_free: page=00000000aa pfn={pfn:#x} "
            f"order={order}")


def parse_lines(tmp_path, lines, parallel=False, sizes=None):
    reader = TraceReader(write(tmp_path, "\n".join(lines) + "\n"), parallel=parallel)
    if sizes:
        reader.expect_cache_sizes(sizes)
    events = list(reader)
    return events, reader.stats


def bad_lines(stats):
    return [(b.lineno, b.reason.split(":")[0].split()[0]) for b in stats.first_bad]


def test_timestamps_must_be_finite_not_negative_and_not_go_back(tmp_path):
    lines = [
        cache_alloc("10.000000", "p1"),
        cache_alloc("nan", "p2"),  # 2
        cache_alloc("inf", "p3"),  # 3
        cache_alloc("-1.000000", "p4"),  # 4
        cache_alloc("10.000500", "p5"),
        cache_alloc("10.000100", "p6"),  # 0.4 ms back: within the tolerance, kept
        cache_alloc("9.900000", "p7"),  # 7: 100 ms back
        cache_alloc("10.000600", "p8"),
    ]
    events, stats = parse_lines(tmp_path, lines)
    assert [ev.ptr for ev in events] == ["p1", "p5", "p6", "p8"]
    assert stats.bad_lines == 4 and stats.bad_by_kind == {"timestamp": 4}
    assert [b.lineno for b in stats.first_bad] == [2, 3, 4, 7]
    assert "nan" in stats.first_bad[0].reason and "inf" in stats.first_bad[1].reason
    assert "goes back 0.100500 s" in stats.first_bad[3].reason
    assert (stats.first_ts, stats.last_ts) == (10.0, 10.0006)  # never inf
    # The frees of the rejected allocations are rejected too, not unknown frees.
    _, stats = parse_lines(tmp_path, [*lines, cache_free("10.1", "p2"), cache_free("10.2", "p9")])
    assert stats.bad_by_kind == {"timestamp": 4, "free_of_bad_alloc": 1}
    assert stats.first_bad[-1].lineno == 9 and "bad line 2" in stats.first_bad[-1].reason


@pytest.mark.parametrize("line, kind, reason", [
    (cache_alloc("1.0", "p", size=0), "size", "bytes_alloc=0"),
    (cache_alloc("1.0", "p", size=(4 << 20) + 1), "size", "bytes_alloc=4194305"),
    (cache_alloc("1.0", "p", req=-8), "size", "bytes_req=-8"),
    (cache_alloc("1.0", "p", req=200, size=192), "size", "bytes_req=200"),
    (kmalloc("1.0", "p", req=-1, size=-64), "size", "bytes_alloc=-64"),
    (kmalloc("1.0", "p", req=5 << 20, size=8 << 20), "size", "bytes_alloc=8388608"),
    # A module in the call site: the careful path checks the same.
    (cache_alloc("1.0", "p", size=0, site="f+0x1/0x2 [xfs]"), "size", "bytes_alloc=0"),
    (page_alloc("1.0", order=11), "order", "order=11"),
    (page_alloc("1.0", order=-1), "order", "order=-1"),
    (page_alloc("1.0", mt=9), "order", "migratetype=9"),
    (page_free("1.0", order=12), "order", "order=12"),
    (page_free("1.0", order=11).replace("pfn=0x1000", "pfn=-5"), "order", "order=11"),
    (page_free("1.0").replace("pfn=0x1000", "pfn=-5"), "order", "pfn=-5"),
])
def test_impossible_sizes_and_orders_are_bad_lines(tmp_path, line, kind, reason):
    good = kfree("0.5", "0000000000000000")
    events, stats = parse_lines(tmp_path, [good, line, good])
    assert len(events) == 2 and stats.bad_lines == 1 and stats.bad_by_kind == {kind: 1}
    assert stats.first_bad[0].lineno == 2 and reason in stats.first_bad[0].reason


def test_a_cache_keeps_one_object_size(tmp_path):
    lines = [cache_alloc("1.0", "p1"), cache_alloc("1.1", "p2", req=256, size=256),
             cache_alloc("1.2", "p3", name="foo", req=40, size=48),
             cache_alloc("1.3", "p4", name="foo", req=40, size=64)]
    events, stats = parse_lines(tmp_path, lines)
    assert [ev.ptr for ev in events] == ["p1", "p3"]  # the size of its first allocation
    assert [b.lineno for b in stats.first_bad] == [2, 4]
    assert "expected the cache's object size, 192" in stats.first_bad[0].reason
    # The slabinfo's size wins over the first allocation's.
    events, stats = parse_lines(tmp_path, lines, parallel=True, sizes={"dentry": 256})
    assert [ev.ptr for ev in events] == ["p2", "p3"]
    assert [b.lineno for b in stats.first_bad] == [1, 4]


def test_a_duplicated_free_is_a_bad_line_with_its_number(tmp_path):
    lines = [
        cache_alloc("1.0", "p1"),
        cache_free("1.1", "p1"),
        cache_free("1.2", "p1"),  # 3: freed at line 2
        kmalloc("1.3", "k1"),
        kfree("1.4", "k1"),
        kfree("1.5", "k1"),  # 6: freed at line 5
        cache_free("1.6", "k1"),  # 7: another kind of free of the same pointer
        cache_alloc("1.7", "p1"),  # allocated again: its next free is good
        cache_free("1.8", "p1"),
        kfree("1.9", "0000000000000000"),  # kfree(NULL), twice: fine
        kfree("2.0", "0000000000000000"),
        cache_free("2.1", "old"),  # an object from before the trace: an unknown free
        cache_free("2.2", "old"),  # 13: and then a duplicate
    ]
    for parallel in (False, True):
        events, stats = parse_lines(tmp_path, lines, parallel=parallel)
        assert stats.bad_lines == 4 and stats.bad_by_kind == {"duplicate_free": 4}
        assert [b.lineno for b in stats.first_bad] == [3, 6, 7, 13]
        assert "duplicated free of ptr=p1: freed at line 2" in stats.first_bad[0].reason
        assert len(events) == len(lines) - 4


def test_only_the_first_ten_bad_lines_are_kept_but_all_are_counted(tmp_path):
    lines = [cache_alloc("1.0", "p"), cache_free("1.0", "p")]
    lines += [cache_free(f"{1 + i / 100:.2f}", "p") for i in range(25)]
    _, stats = parse_lines(tmp_path, lines, parallel=True)
    assert stats.bad_lines == 25 and len(stats.first_bad) == MAX_BAD_LINES_KEPT
    assert [b.lineno for b in stats.first_bad] == list(range(3, 13))
    assert stats.as_dict()["bad_lines_by_kind"] == {"duplicate_free": 25}
    report = stats.bad_line_report().splitlines()
    assert "25 bad line(s) skipped (first 10 shown)" in report[0]
    assert report[1].startswith(f"{stats.source}:3: duplicated free of ptr=p: freed at line 2 "
                                "and not allocated since: ' python3-2864")
    assert len(report) == 11


_MUTATIONS = [
    # timestamps: more digits than the exact path takes, none after the point, the
    # forms float() reads that the C scanner leaves to it, a wrong last character
    lambda ln, r: ln.replace(": ", f"{r.randrange(10**9):09d}: ", 1),
    lambda ln, r: ln.replace(": ", "".join(r.choices("0123456789", k=r.randrange(1, 9)))
                             + ": ", 1),
    lambda ln, r: ln.replace(".", "", 1), lambda ln, r: ln.replace(".", "_", 1),
    lambda ln, r: ln.replace(": ", ".: ", 1),
    lambda ln, r: _stamp(ln, r.choice(["inf", "nan", "-1.0", ".5", "1_0.5", "0x10", ""])),
    lambda ln, r: ln.replace(": ", "x ", 1),
    # pfns: upper case, a second 0x, too many digits, none, decimal
    lambda ln, r: ln.replace("pfn=0x", "pfn=0xABC"),
    lambda ln, r: ln.replace("pfn=0x", "pfn=0x0x"),
    lambda ln, r: ln.replace("pfn=0x", "pfn=0x" + "f" * 16),
    lambda ln, r: ln.replace("pfn=0x", "pfn=0x "),
    lambda ln, r: ln.replace("pfn=0x", "pfn="),
    # what str.split() splits at, and where
    lambda ln, r: _respace(ln, r), lambda ln, r: _respace(ln, r), lambda ln, r: _respace(ln, r),
    lambda ln, r: ln + r.choice(["\t", "\x1c", "\x1f", " \x0b", "\r", "\x0c "]),
    lambda ln, r: ln.replace(" ", "\x85", 1),  # NEL: whitespace, not ASCII
    lambda ln, r: ln + " " * r.randrange(1, 3), lambda ln, r: "  " + ln,
    lambda ln, r: ln.replace("python3", "pythön"), lambda ln, r: ln.replace("[0", "[x", 1),
    lambda ln, r: ln.replace("[0", "[", 1), lambda ln, r: ln[:r.randrange(len(ln))],
    lambda ln, r: ln.replace("ptr=", "ptr= "), lambda ln, r: ln.replace("ptr=", "ptr"),
    lambda ln, r: ln.replace("gfp_flags=", "gfp_flags=__GFP_UNKNOWN|"),
    lambda ln, r: ln.replace("accounted=false", "accounted=maybe"),
    lambda ln, r: ln.replace("bytes_req=", "bytes_req=9"),
    lambda ln, r: ln.replace("page=", "page=0000000000000000 x=", 1),
    lambda ln, r: ln.replace("kmem_cache_alloc:", "kmem_cache_alloc_node:"),
    lambda ln, r: ln.replace("call_site=", "call_site=f+0x1/0x2 [xfs] "),
    # pointers: upper case, short, long, NULL (each its own key to pair frees by)
    lambda ln, r: re.sub(r"ptr=([0-9a-f]{16})", lambda m: "ptr=" + m.group(1).upper(), ln),
    lambda ln, r: re.sub(r"ptr=([0-9a-f]{8})", "ptr=", ln),
    lambda ln, r: ln.replace("ptr=", "ptr=0"), lambda ln, r: re.sub(
        r"ptr=[0-9a-f]{16}", "ptr=0000000000000000", ln),
    # time: a little ahead (within the tolerance for the next line) or back too far
    lambda ln, r: re.sub(r"(\d+\.\d+): ",
                         lambda m: f"{float(m.group(1)) + r.choice([4e-4, -2e-3, -0.5]):.6f}: ",
                         ln, count=1),
]


def _respace(line, rng):
    """One space of the line, anywhere, as another character str.split() splits at."""
    spaces = [i for i, c in enumerate(line) if c == " "]
    if not spaces:
        return line
    i = rng.choice(spaces)
    return line[:i] + rng.choice("\t\x0b\x0c\r\x1c\x1d\x1e\x1f") + line[i + 1:]


def _stamp(line, stamp):
    head, colon, rest = line.partition(": ")
    return head.rsplit(" ", 1)[0] + " " + stamp + colon + rest


def _read_as_pure_python_does(path, chunk):
    """Read ``path`` by chunks of ``chunk`` bytes in this build, in one process and
    with the parser in a child, and assert that each gives the events and stats the
    pure-Python build gives in a process of its own; the events and the last reader."""
    import os
    import pickle
    import subprocess
    import sys

    from sim.ftrace import TraceReader, TraceStream

    read = ("import pickle, sys\nfrom sim.ftrace import TraceReader, TraceStream\n"
            f"TraceStream.CHUNK = {chunk}\n"
            "r = TraceReader(sys.argv[1], parallel=False)\n"
            "ev = [tuple(e) for b in r.batches() for e in b]\n"
            "sys.stdout.buffer.write(pickle.dumps((ev, r.stats.as_dict())))\n")
    env = {**os.environ, "FRAGSIM_PURE_PYTHON": "1"}
    pure = pickle.loads(subprocess.run([sys.executable, "-c", read, str(path)], env=env,
                                       capture_output=True, check=True).stdout)
    pure[1].pop("parallel", None)
    saved = TraceStream.CHUNK
    TraceStream.CHUNK = chunk
    try:
        for parallel in (False, True):
            reader = TraceReader(path, parallel=parallel)
            events = [tuple(e) for b in reader.batches() for e in b]
            stats = reader.stats.as_dict()
            stats.pop("parallel", None)
            assert (events, stats) == pure
    finally:
        TraceStream.CHUNK = saved
    return events, reader


@pytest.mark.parametrize("chunk", [1 << 18, 1009])
def test_the_c_scanner_reads_every_line_as_the_python_parser_does(tmp_path, chunk):
    """The compiled build reads plain lines with sim/_ftrace_scan.c and leaves every
    other line to the Python parser: a trace of real lines, each mutated or not in
    ways at the edge of what the scanner takes (timestamps float() reads that it
    leaves alone or that go back, pfns, pointers of other spellings, whitespace of every
    kind, bytes that are not UTF-8, cut lines, lines repeated: duplicated frees), gives
    the same events, bad lines and counts as the pure-Python build does in a process of
    its own, read by chunks of the file's size or of 1009 bytes (lines cut by chunks),
    in one process and with the parser in a child."""
    import random
    import sys

    import sim

    rng = random.Random(20261206)
    with gzip.open(DATA / "slice.txt.gz", "rt") as f:
        lines = f.read().split("\n")
    out = []
    for line in lines:
        out.append(line)
        if " kfree: " in line:
            # ptr= last: whitespace after it is where a character the scanner did not
            # split at would change the event it returns rather than send the line on
            out += [line + ws for ws in "\t\x0b\x0c\r\x1c\x1d\x1e\x1f "]
        for _ in range(3 if line and not line.startswith("#") else 0):
            out.append(rng.choice(_MUTATIONS)(line, rng))
            if rng.random() < 0.2:  # the same again: a tail the scanner has memoised
                out.append(out[-1])
    data = [line.encode() for line in out]
    for i in rng.sample(range(len(data)), 60):  # bytes that are not UTF-8
        cut = rng.randrange(len(data[i]) + 1)
        data[i] = data[i][:cut] + rng.choice([b"\xff", b"\xe2\x82", b"\xc3"]) + data[i][cut:]
    path = tmp_path / "mutated.txt"
    path.write_bytes(b"\n".join(data))
    events, reader = _read_as_pure_python_does(path, chunk)
    kinds = reader.stats.bad_by_kind
    assert len(events) > 3000 and reader.stats.bad_lines > 100  # both kinds of line
    assert kinds.get("timestamp", 0) > 10 and kinds.get("duplicate_free", 0) > 10
    assert kinds.get("free_of_bad_alloc", 0) > 0
    assert ("sim._ftrace_scan" in sys.modules) == sim.NATIVE


def test_more_tails_than_the_scanners_memo_holds_read_as_the_python_parser_does(tmp_path):
    """The C scanner remembers at most 2 048 texts of each field (its memo, half of
    MEMO_SLOTS), each from its second sighting on (the first is read by Python, which
    parses the tail); past that, a known tail's line goes to the Python parser. Three
    rounds of 2 500 kmallocs of distinct sizes and 2 500 allocations from distinct
    caches, on five CPUs, freed in another order (CPU fields of 3 to 5 bytes and event
    names of 6 to 21, which the memo compares by words), give the pure-Python build's
    events."""
    import random

    rng = random.Random(5)
    lines = []
    cpus = ["[0]", "[1]", "[4]", "[01]", "[002]", "[003]"]
    for _round in range(3):
        live = []
        for j in range(2500):
            for cache in ("", f"c{j}"):
                ptr = f"{0xffff888000000000 + 64 * len(lines):016x}"
                event, size = ("kmem_cache_alloc:", 64) if cache else ("kmalloc:", j)
                name = f"name={cache} " if cache else ""
                lines.append(f" python3-2864    {rng.choice(cpus)} .....  "
                             f"{10 + len(lines) / 10000:.6f}: {event} call_site=f+0x1/0x2 "
                             f"ptr={ptr} {name}bytes_req={size} bytes_alloc={size + 8} "
                             "gfp_flags=GFP_KERNEL node=-1 accounted=false")
                live.append((ptr, cache))
        rng.shuffle(live)
        for ptr, cache in live:
            event = (f"kmem_cache_free: call_site=f+0x1/0x2 ptr={ptr} name={cache}" if cache
                     else f"kfree: call_site=f+0x1/0x2 ptr={ptr}")
            lines.append(f" python3-2864    {rng.choice(cpus)} .....  "
                         f"{10 + len(lines) / 10000:.6f}: {event}")
    path = tmp_path / "tails.txt"
    path.write_text("\n".join(lines) + "\n")
    events, reader = _read_as_pure_python_does(path, 1 << 18)
    assert len(events) == len(lines) == 30000 and reader.stats.bad_lines == 0
    assert {e[1] for e in events} == {0, 1, 2, 3, 4}
    import sys

    import sim

    assert ("sim._ftrace_scan" in sys.modules) == sim.NATIVE  # the C scanner read it


@settings(max_examples=400, deadline=None)
@given(st.binary(max_size=40), st.data())
def test_the_scanners_memo_tells_apart_texts_that_differ_in_any_byte(text, data):
    """The C scanner's memo compares a text shorter than 17 bytes by words that may
    overlap (under 8 bytes: two loads of 4, or the first, middle and last byte), a
    longer one by memcmp. In the memo that comparison decides only when two texts'
    hashes collide, which no trace shows, so it is asked here directly: texts of one
    length are the same exactly when every byte is. Pure Python has no C scanner."""
    import sim

    if not sim.NATIVE:
        assert ftrace._c_scanner({}, {}, [{} for _ in ftrace.KIND_NAMES], {}) is None
        return
    from sim._ftrace_scan import same_text

    other = bytearray(text)
    if text and data.draw(st.booleans()):
        i = data.draw(st.integers(0, len(text) - 1))
        other[i] = data.draw(st.integers(0, 255))
    assert same_text(text, bytes(other)) == (text == bytes(other))
    assert same_text(text, text)


def test_the_parsers_records_decode_to_its_events_and_nothing_else():
    """The compiled build's parser sends records (sim/_ftrace_scan.c) that a Decoder
    turns into the events; a record it cannot read (a partial one, a tail or an object
    it was never given) is an error, never a crash or a made-up event. Pure Python has
    no records: its parser child sends the event tuples themselves."""
    import struct

    import sim
    from sim import ftrace

    scanner = ftrace._c_scanner(ftrace._HEAD_KINDS, {}, [{} for _ in ftrace.KIND_NAMES], {})
    if not sim.NATIVE:
        assert scanner is None
        reader = TraceReader(SLICE, parallel=False)
        assert all(type(batch) is list for batch in reader._parse_batches(records=True))
        return
    reader = TraceReader(SLICE, parallel=False)
    batches = list(reader._parse_batches(records=True))
    decoder = ftrace._c_decoder()
    events = [ev for batch in batches for ev in decoder.decode(*batch)]
    assert events == [tuple(e) for e in read_trace(SLICE)[0]]
    records, objects, new_tails = batches[0]
    assert len(records) % 32 == 0 and len(records) // 32 >= 100 and new_tails
    fresh = ftrace._c_decoder()
    with pytest.raises(ValueError, match="partial record"):
        fresh.decode(records[:-1], objects, new_tails)
    with pytest.raises(ValueError, match="no tail"):
        fresh.decode(records, objects, [])  # the tails were never given
    # An object record (type 1) whose index is past the objects given.
    ts, lineno, key, tail, cpu, kind, kind_of_record = 1.0, 1, 5, -1, 0, 0, 1
    bad = struct.pack("=dqQihBB", ts, lineno, key, tail, cpu, kind, kind_of_record)
    with pytest.raises(ValueError, match="no object"):
        fresh.decode(bad, [], [])
    assert fresh.decode(bad, [("ev",)] * 6, []) == [("ev",)]
