"""A streaming reader of ftrace kmem events, as ``/sys/kernel/tracing/trace`` prints them.

The events and their TP_printk formats come from include/trace/events/kmem.h (6.18):

- ``kmem_cache_alloc``: ``call_site=%pS ptr=%p name=%s bytes_req=%zu bytes_alloc=%zu
  gfp_flags=%s node=%d accounted=%s`` (``bytes_alloc`` is the cache's ``s->size``);
- ``kmalloc``: the same without ``name=``;
- ``kmem_cache_free``: ``call_site=%pS ptr=%p name=%s``; ``kfree``: ``call_site=%pS ptr=%p``;
- ``mm_page_alloc``: ``page=%p pfn=0x%lx order=%d migratetype=%d gfp_flags=%s`` (a failed
  allocation prints a NULL page and pfn 0);
- ``mm_page_free``: ``page=%p pfn=0x%lx order=%d``; ``mm_page_free_batched``:
  ``page=%p pfn=0x%lx order=0``.

Older kernels printed the same events differently; all of these are read:

- before 5.5, ``call_site=%lx`` (a bare hex address, no symbol);
- older ``pfn=%lu`` (decimal): a pfn starting ``0x`` is read as hex, any other as decimal;
- before 6.1, separate ``kmem_cache_alloc_node`` / ``kmalloc_node`` events with ``node=``;
  before 5.19 no ``accounted=``; before 6.18 no ``name=`` on ``kmem_cache_alloc`` (and
  before 5.12 none on ``kmem_cache_free``): the name is then None, and sim/replay.py
  finds the cache from the object size;
- before 4.15, ``mm_page_free_batched`` carried ``cold=%d``;
- gfp flag names that 6.18 dropped (``__GFP_WAIT``, ``GFP_TEMPORARY``, ...) are mapped to
  their 6.18 meaning (OLD_GFP_NAMES); names unknown to both are recorded in
  ``stats.unknown_gfp`` and ignored.

A call site printed with a module (``func+0x10/0x20 [xfs]``) holds a space, and a task
name may hold spaces: such lines take the careful path, which finds the fields by name.

Records are :class:`TraceEvent` tuples. Every other line is accounted for in
:class:`ParseStats`: comments and the header (``#``), blank lines, events of other
tracepoints, and bad lines, which are counted by kind (the first ten kept with their line
numbers) and never stop the stream.

Bad lines: a kmem event is replayed only if nothing in it contradicts the kernel, so that
a damaged trace gives a count of bad lines rather than silently wrong numbers:

- ``garbled``: a line that cannot be read;
- ``timestamp``: not finite, negative, or more than TS_BACKWARDS_TOLERANCE (1 ms) before
  the latest timestamp so far. The ``trace`` file merges the per-CPU buffers in
  timestamp order, so a real trace never goes back; the tolerance admits the small
  disorder of a trace read from ``trace_pipe`` while CPUs' clocks drift, and such an
  event is replayed in file order (at the time already reached). A bigger jump back (per
  CPU files concatenated, a corrupt timestamp) is no trace order: those lines are bad
  (after a corrupt timestamp far ahead, every line until the trace catches up is);
- ``size``: ``bytes_alloc`` outside 1 .. 2^22 (the largest kmalloc, MAX_PAGE_ORDER 10),
  ``bytes_req`` negative or above ``bytes_alloc``, or a ``kmem_cache_alloc`` whose
  ``bytes_alloc`` is not its cache's ``s->size`` (from slabinfo when the replay gives
  them, :meth:`TraceReader.expect_cache_sizes`, else from the cache's first allocation);
- ``order``: an order outside 0 .. MAX_PAGE_ORDER, a negative pfn, or a migratetype
  outside 0 .. 5;
- ``duplicate_free``: a ``kmem_cache_free`` / ``kfree`` of a pointer already freed and not
  allocated since (freed by the trace, or freed once as an object from before the
  trace); ``kfree(NULL)`` is never one;
- ``free_of_bad_alloc``: a free of the pointer a bad allocation line returned.

A free of a pointer the trace never saw is not a bad line: it is an object allocated
before the trace began (sim/replay.py's unknown free).

A gzip, xz or bzip2 file is recognised by its magic bytes, not its name. A truncated or
corrupt compressed stream ends the stream with ``stats.error`` set; the events before it
are kept, down to the last complete line that could be decompressed (gzip is read with
zlib directly for that; concatenated members are one stream). A file with no kmem event
at all, or an empty one, is a one-line :class:`~sim.errors.FragsimError`, raised when the
stream ends.

Speed (the replay must outrun the kernel that recorded the trace): the file is read a
quarter MiB at a time (gzip 4 KiB of the file at a time, through zlib-ng's inflate where
it imports) and split into lines in one call. A line is split once, into its head, call
site, ``ptr=``/``pfn=`` and the rest (its tail), and the tails, which repeat (54
distinct ones for the real trace's 308 000 cache events), are parsed once by field name
and cached; so are cache names (interned) and CPU fields. In the compiled build that
fast path is C (sim/_ftrace_scan.c): it reads the chunks' bytes, takes every line of
the common shape whole (the timestamp's checks and the pairing of pointers included)
and writes a 32-byte record for it; it stops at any other line, which this module's
code reads and hands back to be checked, so the two builds read every trace alike (a
test holds them to it on mutated real lines); it reads the blocks as the decompressor
gives them (:meth:`TraceStream.byte_spans`, a line across two joined alone), and its
records go out about every half MiB of text. :meth:`TraceReader.batches` yields lists of plain
tuples, and on Linux with two CPUs or more it parses in a forked child process that
sends its batches through a pipe (widened to 1 MiB, so that the parser runs ahead; the
C scanner's records, which a Decoder turns into the tuples in the parent; marshalled
tuples in pure Python), so that parsing and replaying run side by side.
:meth:`TraceReader.record_batches` is the same without the Decoder: sim/replay.py reads
the records themselves (``RECORD_*``).
"""

from __future__ import annotations

import bz2
import codecs
import contextlib
import functools
import gc
import io
import lzma
import marshal
import multiprocessing
import os
import pickle
import sys
import zlib
from collections.abc import Generator, Iterator
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from types import ModuleType
from typing import IO, Any, ClassVar, Final, NamedTuple

from sim.errors import FragsimError
from sim.gfp import __GFP_DIRECT_RECLAIM, __GFP_RETRY_MAYFAIL, COMPOSITES, FLAGS, GFP_KERNEL
from sim.gfp import __GFP_RECLAIMABLE as _GFP_RECLAIMABLE

# Event kinds (TraceEvent.kind).
EV_CACHE_ALLOC: Final = 0
EV_CACHE_FREE: Final = 1
EV_KMALLOC: Final = 2
EV_KFREE: Final = 3
EV_PAGE_ALLOC: Final = 4
EV_PAGE_FREE: Final = 5
EV_PAGE_FREE_BATCHED: Final = 6
KIND_NAMES = ("kmem_cache_alloc", "kmem_cache_free", "kmalloc", "kfree", "mm_page_alloc",
              "mm_page_free", "mm_page_free_batched")

# Tracepoint name -> kind; the *_node events are the pre-6.1 NUMA variants.
EVENT_KINDS: dict[str, int] = {
    "kmem_cache_alloc": EV_CACHE_ALLOC,
    "kmem_cache_alloc_node": EV_CACHE_ALLOC,
    "kmem_cache_free": EV_CACHE_FREE,
    "kmalloc": EV_KMALLOC,
    "kmalloc_node": EV_KMALLOC,
    "kfree": EV_KFREE,
    "mm_page_alloc": EV_PAGE_ALLOC,
    "mm_page_free": EV_PAGE_FREE,
    "mm_page_free_batched": EV_PAGE_FREE_BATCHED,
}

try:  # zlib-ng's inflate, 2.3x faster than zlib's (_GzipReader)
    from zlib_ng import zlib_ng as _zlib_ng

    _ZLIB: ModuleType = _zlib_ng
except ImportError:  # pragma: no cover - a platform without its wheel
    _ZLIB = zlib
# What ends a stream early: truncated or corrupt (zlib's errors or zlib-ng's), or unreadable.
_BROKEN_STREAM: tuple[type[Exception], ...] = (EOFError, zlib.error, _ZLIB.error,
                                               lzma.LZMAError, OSError)

_MAX_TAILS = 100_000  # distinct tails cached per event kind
_NULL_PAGE = "page=0000000000000000"  # %p of NULL on 64-bit: a failed mm_page_alloc

# The same, as split() sees it in a line's head: "kmalloc:".
_HEAD_KINDS = {f"{name}:": kind for name, kind in EVENT_KINDS.items()}

MAX_BAD_LINES_KEPT = 10
_SHOWN_LINE_CHARS = 100

# What a kmem event may hold (see "Bad lines" in the module docstring).
MAX_PAGE_ORDER: Final = 10
MAX_ALLOC_BYTES = 1 << (MAX_PAGE_ORDER + 12)  # the largest kmalloc: an order-10 block
MAX_MIGRATETYPE = 5  # 6.18 MIGRATE_TYPES with CMA and memory isolation, minus one
TS_BACKWARDS_TOLERANCE: Final = 0.001  # seconds an event may be printed before the latest one
NULL_PTR: Final = "0000000000000000"

# The C scanner's record of one event (sim/_ftrace_scan.c ``struct Record``, little-endian
# on the machines it builds for): the byte offsets of its fields.
RECORD_SIZE: Final = 32
RECORD_TS: Final = 0  # f64, the timestamp
RECORD_LINENO: Final = 8  # i64, the line number
RECORD_KEY: Final = 16  # u64: the ptr's value (kinds 0-3), the pfn (4-6), or for an
#                         object record the index of its event tuple in the objects list
RECORD_TAIL: Final = 24  # i32, the tail's number (the tails come with the batches)
RECORD_CPU: Final = 28  # i16
RECORD_KIND: Final = 30  # u8 kind, then u8 type: 0 an event, 1 an object record
_INF: Final = float("inf")

# gfp names that older kernels printed and 6.18 no longer has (include/linux/gfp_types.h
# history): their nearest 6.18 meaning, or 0 where the bit has no effect on placement.
OLD_GFP_NAMES: dict[str, int] = {
    "__GFP_WAIT": __GFP_DIRECT_RECLAIM,  # before 4.4: may sleep and reclaim
    "__GFP_REPEAT": __GFP_RETRY_MAYFAIL,  # renamed in 4.13
    "GFP_TEMPORARY": GFP_KERNEL | _GFP_RECLAIMABLE,  # removed in 4.15
    "__GFP_COLD": 0,
    "__GFP_NOTRACK": 0,
    "__GFP_OTHER_NODE": 0,
    "__GFP_ATOMIC": 0,  # removed in 6.3
    "__GFP_NOACCOUNT": 0,
    "__GFP_RECLAIMABLE_FILL": 0,
    "__GFP_NO_KSWAPD": 0,
    "GFP_IOFS": 0,
}


class TraceEvent(NamedTuple):
    """One kmem event.

    ``ptr`` is the object's hashed pointer as printed (an opaque pairing key; "" for page
    events); ``pfn`` the page frame number of page events (-1 for object events, 0 with
    ``ptr == "null"`` for a failed ``mm_page_alloc``). ``name`` is the cache of
    ``kmem_cache_alloc/free`` when the kernel printed it. ``gfp`` is sim.gfp's bits.
    ``lineno`` is the event's 1-based line in the trace file (0 for an event made by
    hand), so that what the replay finds at an event can name its line.
    Fields an event does not carry are 0 / -1 / False.
    """

    ts: float  # seconds, trace clock
    cpu: int
    kind: int  # EV_*
    ptr: str
    pfn: int
    name: str | None
    bytes_req: int
    bytes_alloc: int
    gfp: int
    order: int
    migratetype: int
    accounted: bool
    lineno: int = 0


_new_event = tuple.__new__  # TraceEvent without the NamedTuple __new__ wrapper


@dataclass
class BadLine:
    """A garbled line: its 1-based number, the reason and the start of its text."""

    lineno: int
    reason: str
    text: str

    def __str__(self) -> str:
        return f"line {self.lineno}: {self.reason}: {self.text!r}"


@dataclass
class ParseStats:
    """What the reader saw, line by line."""

    source: str
    lines: int = 0
    events: int = 0  # kmem events yielded
    comments: int = 0  # '#' header/comment lines and blank lines
    other_events: int = 0  # well-formed lines of other tracepoints
    bad_lines: int = 0
    first_bad: list[BadLine] = field(default_factory=list)
    # garbled, timestamp, size, order, duplicate_free, free_of_bad_alloc -> count
    bad_by_kind: dict[str, int] = field(default_factory=dict)
    per_kind: list[int] = field(default_factory=lambda: [0] * len(KIND_NAMES))
    unknown_gfp: set[str] = field(default_factory=set)  # flag names parse_gfp did not know
    first_ts: float | None = None  # the earliest and latest event timestamps
    last_ts: float | None = None
    error: str | None = None  # why the stream ended early (truncated gzip, ...)
    parallel: bool = False  # parsed in a child process

    @property
    def span_s(self) -> float:
        """Trace time from the first event to the last."""
        if self.first_ts is None or self.last_ts is None:
            return 0.0
        return self.last_ts - self.first_ts

    @property
    def complete(self) -> bool:
        return self.error is None

    def bad_line_report(self) -> str:
        """The garbled lines, one per line: the count, then the first ten."""
        if not self.bad_lines:
            return ""
        head = f"{self.source}: {self.bad_lines} bad line(s) skipped"
        if self.bad_lines > len(self.first_bad):
            head += f" (first {len(self.first_bad)} shown)"
        return "\n".join([head, *(f"{self.source}:{b.lineno}: {b.reason}: {b.text!r}"
                                 for b in self.first_bad)])

    def as_dict(self) -> dict[str, object]:
        return {
            "source": self.source,
            "lines": self.lines,
            "events": self.events,
            "comments": self.comments,
            "other_events": self.other_events,
            "bad_lines": self.bad_lines,
            "bad_lines_by_kind": dict(sorted(self.bad_by_kind.items())),
            "first_bad_lines": [
                {"line": b.lineno, "reason": b.reason, "text": b.text} for b in self.first_bad
            ],
            "per_kind": dict(zip(KIND_NAMES, self.per_kind, strict=True)),
            "unknown_gfp": sorted(self.unknown_gfp),
            "span_s": self.span_s,
            "complete": self.complete,
            "error": self.error,
            "parallel": self.parallel,
        }


class _BadLine(Exception):
    """A line that cannot be read or replayed; the message is the reason, ``kind`` what
    ParseStats.bad_by_kind counts it as."""

    def __init__(self, reason: str, kind: str = "garbled") -> None:
        super().__init__(reason)
        self.kind = kind


class TraceStream:
    """A trace file read as lists of text lines, decompressed when its first bytes are
    the magic of gzip, xz or bzip2 (whatever its name). ``path`` may be ``"-"``
    (standard input) or a binary file object. Undecodable bytes become U+FFFD, so such a
    line is counted as garbled; a line ending in ``\\r\\n`` is read like one ending in ``\\n``.

    Reading a quarter MiB at a time, then decoding and splitting it in one call each, is
    about twice as fast as iterating over a TextIOWrapper line by line.
    """

    CHUNK: ClassVar[int] = 1 << 18  # read at run time (tests read by small chunks)

    def __init__(self, path: str | os.PathLike[str] | IO[bytes]) -> None:
        self._raw: IO[bytes] | None = None
        if isinstance(path, (str, os.PathLike)):
            name = os.fspath(path)
            if name == "-":
                raw: IO[bytes] = sys.stdin.buffer
            else:
                try:
                    raw = self._raw = open(name, "rb")  # noqa: SIM115 - closed in close()
                except OSError as err:
                    raise FragsimError(f"{name}: cannot open: {err.strerror}") from None
        else:
            raw = path
        buffered = raw if isinstance(raw, io.BufferedReader) else io.BufferedReader(raw)  # type: ignore[arg-type,type-var]
        self._stream: IO[bytes] = buffered
        magic = buffered.peek(6)[:6]
        self.compression = None
        if magic[:2] == b"\x1f\x8b":
            self.compression = "gzip"
            self._stream = _GzipReader(buffered)  # type: ignore[assignment]
        elif magic == b"\xfd7zXZ\x00":
            self.compression = "xz"
            self._stream = lzma.LZMAFile(buffered)  # noqa: SIM115 - closed in close()
        elif magic[:3] == b"BZh":
            self.compression = "bzip2"
            self._stream = bz2.BZ2File(buffered)  # noqa: SIM115 - closed in close()

    def chunks(self) -> Iterator[list[str]]:
        """Lists of lines (without their newline), in file order."""
        read = self._stream.read
        decode = codecs.getincrementaldecoder("utf-8")(errors="replace").decode
        rest = ""
        while True:
            data = read(self.CHUNK)
            if not data:
                break
            lines = (rest + decode(data)).split("\n")
            rest = lines.pop()
            if lines:
                yield lines
        rest += decode(b"", final=True)
        if rest:
            yield [rest]

    def byte_spans(self) -> Iterator[tuple[bytes, int, int]]:
        """The file's bytes as ``(buf, start, end)``: ``buf[start:end]`` is whole lines
        (the file's last one maybe not), in file order; what the C scanner reads. The
        blocks are read as the decompressor gives them and not copied: a line that
        straddles two is joined alone. Split at b"\\n" alone, a line decodes as it does
        within the whole text (no UTF-8 sequence holds that byte), so ``chunks`` and
        these give the same lines."""
        stream = self._stream
        blocks = (stream.blocks() if isinstance(stream, _GzipReader)
                  else iter(functools.partial(stream.read, self.CHUNK), b""))
        rest = b""
        for data in blocks:
            start = 0
            if rest:
                first = data.find(b"\n") + 1
                if not first:
                    rest += data
                    continue
                line = rest + data[:first]
                yield line, 0, len(line)
                start = first
            cut = data.rfind(b"\n") + 1
            if cut > start:
                yield data, start, cut
            else:
                cut = start
            rest = data[cut:] if cut < len(data) else b""
        if rest:
            yield rest, 0, len(rest)

    def close(self) -> None:
        self._stream.close()
        if self._raw is not None:
            self._raw.close()


class _GzipReader:
    """gzip members read with zlib, so that a truncated or corrupt file gives every
    byte that could be decompressed before it raises (``gzip.GzipFile.read`` drops
    the data of the call that meets the end).

    zlib-ng's inflate (``zlib_ng``, a dependency) when it imports, else the standard
    library's zlib: the same interface, the same bytes out of a good, truncated or
    corrupt stream (a test compares them), and 2.3x faster on the shared trace (0.048
    s against 0.110 s for its 66 MB): the replay's parser child spent a quarter of its
    time in zlib."""

    def __init__(self, raw: IO[bytes], zlib_module: ModuleType | None = None) -> None:
        self._zlib = zlib_module or _ZLIB
        self._errors: tuple[type[Exception], ...] = (zlib.error, self._zlib.error)
        self._raw = raw
        self._inflate = self._zlib.decompressobj(wbits=31)
        self._buf = b""
        self._pos = 0  # _buf[_pos:] is what is not read yet (no copy of it at each read)
        self._error: Exception | None = None
        self._done = False

    def _inflate_next(self, pieces: list[bytes]) -> int:
        """Decompress the next 4 KiB of the file into ``pieces``, and say how many bytes
        that gave; at its end, or at an error, set ``_done`` (and ``_error``). ``read``
        and ``blocks`` both step so, so that they give the same bytes out of a corrupt
        stream: what a step that fails would have given is lost."""
        data = self._raw.read(1 << 12)
        if not data:
            self._done = True
            if not self._inflate.eof:
                self._error = EOFError(
                    "Compressed file ended before the end-of-stream marker was reached")
            return 0
        got = 0
        try:
            pieces.append(self._inflate.decompress(data))
            got += len(pieces[-1])
            while self._inflate.eof and self._inflate.unused_data:
                # Another gzip member follows (concatenated .gz files).
                rest = self._inflate.unused_data
                self._inflate = self._zlib.decompressobj(wbits=31)
                pieces.append(self._inflate.decompress(rest))
                got += len(pieces[-1])
        except self._errors as err:
            self._done = True
            self._error = err
        return got

    def _fill(self, size: int) -> None:
        if len(self._buf) - self._pos >= size or self._done:
            return
        pieces = [self._buf[self._pos:]]
        have = len(pieces[0])
        while have < size and not self._done:
            have += self._inflate_next(pieces)
        self._buf = b"".join(pieces)
        self._pos = 0

    def blocks(self) -> Iterator[bytes]:
        """The rest of the decompressed bytes, in the blocks zlib gives them (``read``
        without its copies), then the error that ended the stream early, if one did.

        The blocks are of 4 KiB of the file (``_inflate_next``), about 80 KiB of a
        trace's text: below glibc's mmap threshold (128 KiB), so the allocator reuses
        their memory, where blocks of 1 MiB and more are each a fresh mapping to fault
        in (20 000 page faults, a third of the parser process's time on the shared
        trace)."""
        pieces = [self._buf[self._pos:]] if self._pos < len(self._buf) else []
        self._buf = b""
        self._pos = 0
        while True:
            for piece in pieces:
                if piece:
                    yield piece
            if self._done:
                break
            pieces = []
            self._inflate_next(pieces)
        if self._error is not None:
            raise self._error

    def read(self, size: int) -> bytes:
        self._fill(size)
        pos = self._pos
        if pos >= len(self._buf) and self._error is not None:
            raise self._error
        if pos == 0 and size >= len(self._buf):
            out = self._buf
        else:
            out = self._buf[pos:pos + size]
        self._pos = pos + len(out)
        return out

    def close(self) -> None:
        self._buf = b""
        self._pos = 0


class TraceReader:
    """Iterate over the kmem events of an ftrace text file, plain or compressed, streaming.

    >>> reader = TraceReader("trace.txt.gz")      # doctest: +SKIP
    >>> for ev in reader: ...                     # doctest: +SKIP
    >>> reader.stats.bad_lines, reader.stats.error  # doctest: +SKIP
    """

    BATCH_BYTES = 1 << 19  # the C scanner's batches: the events of about this much text

    def __init__(self, path: str | os.PathLike[str] | IO[bytes], source: str | None = None,
                 *, gfp_cache: dict[str, int] | None = None,
                 parallel: bool | None = None) -> None:
        self.path = path
        self.parallel = parallel
        if source is None:
            source = os.fspath(path) if isinstance(path, (str, os.PathLike)) else "<trace>"
        self.stats = ParseStats(source)
        self._gfp_cache: dict[str, int] = {} if gfp_cache is None else gfp_cache
        self._names: dict[str, str] = {}
        self._tails: list[dict[str, tuple | None]] = [{} for _ in KIND_NAMES]
        self._cpus: dict[str, int] = {}
        self._sizes: dict[str, int] = {}  # cache name -> bytes_alloc (s->size)
        self._ptrs: dict[str, int] = {}
        self._bad_allocs: dict[str, int] = {}  # ptr -> line of its bad allocation
        self._scanner: Any = None  # the C scanner of the compiled build, while it parses
        self._kind: int | None = None  # the kind of the line _event reads, as far as read
        self._used = False

    def expect_cache_sizes(self, sizes: dict[str, int]) -> None:
        """The object size (``s->size``, slabinfo's objsize) of caches the replay
        knows: a ``kmem_cache_alloc`` of one with another ``bytes_alloc`` is a bad line.
        A cache not given takes the size of its first allocation. Call before
        iterating."""
        if self._used:
            raise RuntimeError("expect_cache_sizes: the trace is already being read")
        self._sizes.update(sizes)

    # ------------------------------------------------------------------ fields

    def gfp(self, text: str) -> int:
        """``parse_gfp``, cached per distinct string; unknown names are recorded, not fatal
        (old kernels print flags 6.18 removed; a hex remainder is kept as is)."""
        value = self._gfp_cache.get(text)
        if value is None:
            value = 0
            for name in text.split("|"):
                bits = COMPOSITES.get(name, FLAGS.get(name))
                if bits is None:
                    bits = OLD_GFP_NAMES.get(name)
                if bits is None:
                    if name in ("", "0", "0x0", "none"):
                        bits = 0
                    else:
                        # A flag of another kernel, or bits show_gfp_flags printed in hex:
                        # none that placement depends on. Recorded, not fatal.
                        bits = 0
                        self.stats.unknown_gfp.add(name)
                value |= bits
            self._gfp_cache[text] = value
        return value

    # ------------------------------------------------------------------ iteration

    def _parse_batches(self, records: bool = False) -> Iterator[Any]:
        """The parser: lists of plain tuples laid out as TraceEvent, one list per chunk
        of the file read.

        A line is split into its head (task-pid, [cpu], irq flags, "ts:", "event:"), the
        call site (or page=), ``ptr=`` (or ``pfn=``) and the rest, its **tail**. Tails
        repeat (the real trace has 54 distinct ones for its 308 000 cache events: one
        per cache, gfp string and size), so each distinct tail is parsed once, by name
        (``_tail``), and cached. Any other shape of line goes through the careful
        helpers.

        In the compiled build the C scanner (sim/_ftrace_scan.c) reads the chunks'
        bytes and takes every line of the common shape whole, and this code reads the
        others (``_event``); with ``records`` the batches are the scanner's records
        (``Scanner.take``: what the parser process sends), else their event tuples."""
        scanner = self._scanner = _c_scanner(_HEAD_KINDS, self._cpus, self._tails,
                                             self._bad_allocs)
        if scanner is None:
            return self._parse_lines()
        return self._parse_records(scanner, records)

    def _parse_lines(self) -> Iterator[list[tuple]]:
        """``_parse_batches`` in pure Python: lists of lines, each read by ``_event``,
        then checked here (see "Bad lines" in the module docstring)."""
        stats = self.stats
        stream = TraceStream(self.path)
        per_kind = stats.per_kind
        event = self._event
        lineno = 0
        # Timestamps: the latest so far, and how far back the next one may be.
        top = -_INF
        floor = 0.0
        inf = _INF
        # ptr -> line of its allocation (> 0) or of its free (< 0).
        ptrs = self._ptrs
        bad_allocs = self._bad_allocs
        ts: float
        ev: tuple | None
        try:
            for chunk in stream.chunks():
                out: list[tuple] = []
                add = out.append
                low = inf  # the earliest and latest times of the chunk's events
                high = -inf
                for line in chunk:
                    lineno += 1
                    try:
                        ev = event(line, lineno)
                        if ev is None:
                            continue
                        ts = ev[0]
                        kind = ev[2]
                        # Time: finite, not negative, and never more than the tolerance
                        # before the latest event (NaN fails every comparison).
                        if ts >= floor:
                            if ts > top:
                                if ts == inf:
                                    raise _BadLine(_ts_reason(ts, top), "timestamp")
                                top = ts
                                floor = ts - TS_BACKWARDS_TOLERANCE
                        else:
                            raise _BadLine(_ts_reason(ts, top), "timestamp")
                        if kind < 4:
                            # Pairing by ptr: +line of the allocation, -line of the free.
                            ptr = ev[3]
                            if kind == 0 or kind == 2:
                                if ptr != NULL_PTR:
                                    ptrs[ptr] = lineno
                            else:
                                seen = ptrs.get(ptr)
                                if seen is not None:
                                    if seen < 0:
                                        raise _BadLine(_duplicate_free(ptr, seen),
                                                       "duplicate_free")
                                    ptrs[ptr] = -lineno
                                elif ptr != NULL_PTR:
                                    if bad_allocs and ptr in bad_allocs:
                                        raise _BadLine(_free_of_bad_alloc(ptr, bad_allocs),
                                                       "free_of_bad_alloc")
                                    # An object from before the trace: a second free of
                                    # it is a duplicate too.
                                    ptrs[ptr] = -lineno
                        add(ev)
                        per_kind[kind] += 1
                        if ts < low:
                            low = ts
                        if ts > high:
                            high = ts
                    except _BadLine as err:
                        self._bad_line(lineno, str(err), line, err.kind)
                    except (ValueError, IndexError, KeyError) as unreadable:
                        self._unreadable(lineno, unreadable, line)
                if out:
                    self._seen_times(low, high)
                    yield out
        except _BROKEN_STREAM as broken:
            self._broken(lineno, broken)
        finally:
            stream.close()
            stats.lines = lineno
            stats.events = sum(per_kind)

    def _parse_records(self, scanner: Any, records: bool) -> Iterator[Any]:
        """``_parse_batches`` with the C scanner: chunks of bytes, whose lines the
        scanner takes whole where it can; each other line is read by ``_event`` and
        checked by ``Scanner.accept``, as ``_parse_lines`` checks it."""
        stats = self.stats
        stream = TraceStream(self.path)
        decode = _c_decoder().decode if not records else None
        lineno = 0
        # Text read since the last take(); the first batch goes after the first span,
        # so that the replay starts at once.
        unsent = self.BATCH_BYTES
        try:
            try:
                for chunk, pos, size in stream.byte_spans():
                    unsent += size - pos
                    lineno = self._scan_span(scanner, chunk, pos, size, lineno)
                    if unsent >= self.BATCH_BYTES:
                        unsent = 0
                        batch = self._take(scanner, decode)
                        if batch is not None:
                            yield batch
            except _BROKEN_STREAM as broken:
                self._broken(lineno, broken)
            batch = self._take(scanner, decode)
            if batch is not None:
                yield batch
        finally:
            stream.close()
            stats.lines = lineno
            stats.per_kind[:] = scanner.counts()
            stats.events = sum(stats.per_kind)

    def _scan_span(self, scanner: Any, chunk: bytes, pos: int, size: int, lineno: int) -> int:
        """The lines of chunk[pos:size]: the C scanner's where it takes them, each other
        one read by ``_event`` and checked by ``Scanner.accept``; the last line's
        number."""
        run = scanner.chunk
        accept = scanner.accept
        event = self._event
        while pos < size:
            pos, lineno = run(chunk, pos, lineno, size)
            if pos >= size:
                break
            end = chunk.find(b"\n", pos, size)
            if end < 0:
                end = size
            line = chunk[pos:end].decode("utf-8", "replace")
            pos = end + 1
            lineno += 1
            try:
                ev = event(line, lineno)
                if ev is None:
                    continue
                why = accept(ev)
                if why:
                    raise self._rejected(why, ev, scanner)
            except _BadLine as err:
                self._bad_line(lineno, str(err), line, err.kind)
            except (ValueError, IndexError, KeyError) as unreadable:
                self._unreadable(lineno, unreadable, line)
        return lineno

    def _take(self, scanner: Any, decode: Any) -> Any:
        """The scanner's events since the last take: records, or their tuples through
        ``decode``; None when there are none."""
        batch, objects, new_tails, events, low, high = scanner.take()
        if not events:
            return None
        self._seen_times(low, high)
        if decode is not None:
            return decode(batch, objects, new_tails)
        return (batch, objects, new_tails)

    def _event(self, line: str, lineno: int) -> tuple | None:
        """One line's event tuple (laid out as TraceEvent), or None for a line of no kmem
        event; raises for a bad one. ``self._kind`` is its kind as far as read (for a
        bad allocation's pointer, ``_bad_line``)."""
        self._kind = None
        # "  comm-pid  [001] .....  4728.514174: kmalloc: call_site=...  ptr=..."
        t = line.split(None, 7)
        kind: int | None = None
        cpu: int | None = None
        try:
            kind = _HEAD_KINDS.get(t[4])
            cpu = self._cpus.get(t[1])
            key = t[6]
        except IndexError:
            kind = None
        self._kind = kind
        if kind is None or cpu is None:
            # A comment, a blank line, another event, a task name with spaces, no
            # irq-info column, or a garbled line.
            head = self._head(line)
            if head is None:
                return None
            cpu, ts, kind, rest = head
            self._kind = kind
            return self._careful(rest.split(), kind, ts, cpu) + (lineno,)
        tails = self._tails
        if kind < 4:
            ts = float(t[3][:-1])
            ptr = key[4:]
            v: tuple | None
            if key[:4] != "ptr=" or not ptr:
                v = None  # a module in the call site, or garbled
            elif len(t) == 8:
                v = tails[kind].get(t[7])
                if v is None:
                    v = self._tail(kind, t[7])
            elif kind == 3:  # kfree: ptr is the last field
                v = _KFREE_TAIL
            else:
                v = None
            if v is None:
                return self._careful(line.split()[5:], kind, ts, cpu) + (lineno,)
            # (name, bytes_req, bytes_alloc, gfp, accounted)
            return (ts, cpu, kind, ptr, -1, v[0], v[1], v[2], v[3], 0, 0, v[4], lineno)
        ts = float(t[3][:-1])
        v = None
        if key[:6] == "pfn=0x" and len(t) == 8 and t[5] != _NULL_PAGE:
            v = tails[kind].get(t[7])
            if v is None:
                v = self._tail(kind, t[7])
        if v is None:
            return self._careful(line.split()[5:], kind, ts, cpu) + (lineno,)
        # (order, migratetype, gfp)
        return (ts, cpu, kind, "", int(key[6:], 16), None, 0, 0, v[2], v[0], v[1], False,
                lineno)

    def _rejected(self, why: int, ev: tuple, scanner: Any) -> _BadLine:
        """The bad line ``Scanner.accept`` found (1, 2, 3), worded as _parse_lines words
        it."""
        if why == 1:
            return _BadLine(_ts_reason(ev[0], scanner.top), "timestamp")
        ptr = ev[3]
        if why == 2:
            seen = scanner.ptr_get(ptr)
            return _BadLine(_duplicate_free(ptr, seen if seen is not None else 0),
                            "duplicate_free")
        return _BadLine(_free_of_bad_alloc(ptr, self._bad_allocs), "free_of_bad_alloc")

    def _bad_line(self, lineno: int, reason: str, line: str, kind: str) -> None:
        self._bad(lineno, reason, line, kind)
        if self._kind == 0 or self._kind == 2:
            self._bad_alloc(line, lineno)

    def _unreadable(self, lineno: int, unreadable: Exception, line: str) -> None:
        self._bad_line(lineno, f"unreadable field ({type(unreadable).__name__}: "
                       f"{unreadable})", line, "garbled")

    def _seen_times(self, low: float, high: float) -> None:
        """A batch's earliest and latest times: ftrace's merged output is in time order,
        within the tolerance."""
        stats = self.stats
        if stats.first_ts is None or low < stats.first_ts:
            stats.first_ts = low
        if stats.last_ts is None or high > stats.last_ts:
            stats.last_ts = high

    def _broken(self, lineno: int, broken: Exception) -> None:
        """A truncated or corrupt compressed stream: keep what was read, say why."""
        self.stats.error = (f"{self.stats.source}: the trace ends early after line {lineno} "
                            f"({type(broken).__name__}: {broken})")

    def _tail(self, kind: int, tail: str) -> tuple | None:
        """The fields after ``ptr=`` (object events) or ``pfn=`` (page events), parsed by
        name and cached; None when the tail is not one of the expected shapes (the line
        then takes the careful path)."""
        kv = _key_values(tail.split())
        if "ptr" in kv or "pfn" in kv:
            return None  # the fields did not start where expected
        try:
            if kind < 4:
                if kind in (EV_CACHE_FREE, EV_KFREE):
                    if set(kv) - {"name"}:
                        return None
                    value: tuple = (self._cache_name(kv["name"]) if "name" in kv else None,
                                    0, 0, 0, False)
                else:
                    name = kv.get("name")
                    accounted = kv.get("accounted", "false")
                    if accounted not in ("true", "false"):
                        raise _BadLine(f"expected accounted=true|false, got {accounted!r}")
                    value = (self._cache_name(name) if name and kind == EV_CACHE_ALLOC else None,
                             int(kv["bytes_req"]), int(kv["bytes_alloc"]),
                             self.gfp(kv["gfp_flags"]), accounted == "true")
                    self._check_alloc(value[0], value[1], value[2])
            elif kind == EV_PAGE_ALLOC:
                value = (int(kv["order"]), int(kv["migratetype"]), self.gfp(kv["gfp_flags"]))
                self._check_page(0, value[0], value[1])
            else:
                value = (int(kv.get("order", "0")), 0, 0)
                self._check_page(0, value[0], 0)
        except KeyError:
            return None
        cache = self._tails[kind]
        if len(cache) < _MAX_TAILS:
            cache[tail] = value
        return value

    def _cache_name(self, text: str) -> str:
        name = self._names.get(text)
        if name is None:
            if not text:
                raise _BadLine("empty name=")
            name = self._names[text] = sys.intern(text)
        return name

    def _careful(self, t: list[str], kind: int, ts: float, cpu: int) -> tuple:
        """Any layout: the fields found by name (t: the fields after the event name)."""
        if kind in (EV_CACHE_ALLOC, EV_KMALLOC):
            return self._alloc_event(t, kind, ts, cpu)
        if kind in (EV_CACHE_FREE, EV_KFREE):
            return self._free_event(t, kind, ts, cpu)
        return self._page_event(t, kind, ts, cpu)

    def _check_events(self) -> None:
        stats = self.stats
        if stats.events:
            return
        if stats.error:
            raise FragsimError(stats.error)
        if not stats.lines:
            raise FragsimError(f"{stats.source}: expected an ftrace kmem trace, got an empty "
                               "file")
        raise FragsimError(
            f"{stats.source}: expected kmem events (kmem_cache_alloc, kmem_cache_free, "
            f"kmalloc, kfree, mm_page_alloc, mm_page_free), got none in {stats.lines} lines"
        )

    def batches(self) -> Generator[list[tuple], None, None]:
        """The events as lists of plain tuples laid out as TraceEvent (the fast way to
        consume a trace). Parsed in a child process when ``parallel`` is True, or when it
        is None (the default), the path is a file and this process may use two CPUs on
        Linux: the parent then only unpacks them. The events are the same either way."""
        yield from self._batches(True)

    def record_batches(self) -> Generator[Any, None, None]:
        """``batches``, but where the compiled build's C scanner parsed, its records as
        they are (``Scanner.take``'s ``(records, objects, new_tails)``: 32 bytes an event,
        ``RECORD_*`` below) instead of event tuples; lists of tuples where it did not (the
        pure-Python parser). sim/replay.py reads the records without making an object an
        event."""
        yield from self._batches(False)

    def _batches(self, decode: bool) -> Generator[Any, None, None]:
        if self._used:
            raise RuntimeError("a TraceReader streams its file once; make a new one")
        self._used = True
        if self._parallel():
            yield from self._child_batches(decode)
            self.stats.parallel = True
        else:
            yield from self._parse_batches(records=not decode)
        self._check_events()

    def __iter__(self) -> Iterator[TraceEvent]:
        new = _new_event
        cls = TraceEvent
        for batch in self.batches():
            for ev in batch:
                yield new(cls, ev)

    def _parallel(self) -> bool:
        """Parse in a child process? By default when the trace is a file and this process
        may run on two CPUs or more. (On a machine whose CPUs are all busy, the two
        processes share one and the pipe only adds work: pass ``parallel=False``.)"""
        if self.parallel is not None:
            return self.parallel and _can_fork()
        if not isinstance(self.path, (str, os.PathLike)) or os.fspath(self.path) == "-":
            return False
        return len(os.sched_getaffinity(0)) > 1 and _can_fork()

    def _child_batches(self, decode: bool) -> Iterator[Any]:
        ctx = multiprocessing.get_context("fork")
        receiver, sender = ctx.Pipe(duplex=False)
        _widen_pipe(sender)
        proc = ctx.Process(target=_parse_in_child, args=(self, sender, receiver),
                           daemon=True, name="fragsim-trace-parser")
        proc.start()
        sender.close()
        loads = marshal.loads
        decoder: Any = None
        try:
            while True:
                try:
                    msg = receiver.recv_bytes()
                except EOFError:
                    raise RuntimeError(f"{self.stats.source}: the trace parser process died "
                                       f"(exit status {proc.exitcode})") from None
                if msg[0] != 0x80:
                    batch = loads(msg)
                    if type(batch) is tuple:  # the C scanner's records (Scanner.take)
                        if not decode:
                            yield batch
                            continue
                        if decoder is None:
                            decoder = _c_decoder()
                        yield decoder.decode(batch[0], batch[1], batch[2])
                    else:
                        yield batch
                    continue
                what, value = pickle.loads(msg)
                if what == "stats":
                    self.stats = value
                    return
                if what == "error":
                    raise FragsimError(value)
                raise RuntimeError(f"{self.stats.source}: the trace parser failed: {value}")
        finally:
            receiver.close()
            proc.join(timeout=5)
            if proc.is_alive():
                proc.terminate()
                proc.join()

    def _bad(self, lineno: int, reason: str, line: str, kind: str = "garbled") -> None:
        stats = self.stats
        stats.bad_lines += 1
        stats.bad_by_kind[kind] = stats.bad_by_kind.get(kind, 0) + 1
        if len(stats.first_bad) < MAX_BAD_LINES_KEPT:
            text = line.rstrip("\n")
            if len(text) > _SHOWN_LINE_CHARS:
                text = text[:_SHOWN_LINE_CHARS] + "..."
            stats.first_bad.append(BadLine(lineno, reason, text))

    def _bad_alloc(self, line: str, lineno: int) -> None:
        """An allocation line was bad: remember its ptr, so that its free is one too
        (rather than an unknown free that takes an object from the initial population)."""
        i = line.find(" ptr=")
        if i < 0:
            return
        j = line.find(" ", i + 5)
        ptr = line[i + 5:j] if j >= 0 else line[i + 5:]
        if ptr and ptr != NULL_PTR:
            self._bad_allocs[ptr] = lineno
            if self._scanner is not None:  # the C scanner pairs the pointers
                self._scanner.ptr_pop(ptr)
            else:
                self._ptrs.pop(ptr, None)

    def _check_alloc(self, name: str | None, req: int, size: int) -> None:
        """bytes_req and bytes_alloc of an allocation; the cache's size for a named one."""
        if not 1 <= size <= MAX_ALLOC_BYTES:
            raise _BadLine(f"bytes_alloc={size}: expected 1 to {MAX_ALLOC_BYTES}", "size")
        if not 0 <= req <= size:
            raise _BadLine(f"bytes_req={req}: expected 0 to bytes_alloc ({size})", "size")
        if name is not None:
            want = self._sizes.setdefault(name, size)
            if want != size:
                raise _BadLine(f"name={name} bytes_alloc={size}: expected the cache's object "
                               f"size, {want}", "size")

    @staticmethod
    def _check_page(pfn: int, order: int, migratetype: int) -> None:
        if not 0 <= order <= MAX_PAGE_ORDER:
            raise _BadLine(f"order={order}: expected 0 to {MAX_PAGE_ORDER} (MAX_PAGE_ORDER)",
                           "order")
        if pfn < 0:
            raise _BadLine(f"pfn={pfn}: expected a page frame number >= 0", "order")
        if not 0 <= migratetype <= MAX_MIGRATETYPE:
            raise _BadLine(f"migratetype={migratetype}: expected 0 to {MAX_MIGRATETYPE}",
                           "order")

    def _head(self, line: str) -> tuple[int, float, int, str] | None:
        """The careful reading of a line's head: (cpu, ts, kind, fields) of a kmem event,
        or None for a comment, a blank line or another tracepoint's event. Raises
        _BadLine for a line that is none of these."""
        stats = self.stats
        if line[:1] == "#" or not line.strip():
            stats.comments += 1
            return None
        # The task name may hold spaces and colons; "[CPU]" is the last bracketed field
        # before the timestamp, which is the last word before the first ": " after it.
        close = line.find("] ")
        while close >= 0:
            nxt = line.find("] ", close + 2)
            p1 = line.find(": ", close)
            if nxt < 0 or p1 < nxt:
                break
            close = nxt
        if close < 0:
            raise _BadLine("expected 'TASK-PID [CPU] TIMESTAMP: EVENT: FIELDS'")
        p1 = line.find(": ", close)
        p2 = line.find(": ", p1 + 2)
        if p1 < 0:
            raise _BadLine("expected 'TIMESTAMP: EVENT:' after the CPU field")
        cpu_text = line[line.rfind("[", 0, close) + 1:close]
        if not (cpu_text.isascii() and cpu_text.isdigit()):
            raise _BadLine(f"expected a CPU number in '[...]', got {cpu_text!r}")
        ts = float(line[line.rfind(" ", close, p1) + 1:p1])
        event = line[p1 + 2:p2] if p2 >= 0 else line[p1 + 2:].strip().rstrip(":")
        kind = EVENT_KINDS.get(event)
        if kind is None:
            if not event or not event.replace("_", "").isalnum():
                raise _BadLine(f"expected an event name, got {event!r}")
            stats.other_events += 1
            return None
        if p2 < 0:
            raise _BadLine(f"{event}: no fields")
        cpu = int(cpu_text)
        if len(self._cpus) < 4096:
            self._cpus[f"[{cpu_text}]"] = cpu
        return cpu, ts, kind, line[p2 + 2:]

    @staticmethod
    def _ptr_index(t: list[str]) -> int:
        """Where ``ptr=`` is: 1, or later when the call site names a module."""
        for i, tok in enumerate(t):
            if tok[:4] == "ptr=":
                if len(tok) == 4:
                    raise _BadLine("empty ptr=")
                return i
        raise _BadLine("expected ptr=")

    def _alloc_event(self, t: list[str], kind: int, ts: float, cpu: int) -> tuple:
        """kmalloc, and kmem_cache_alloc in any layout but 6.18's: key=value after ptr=."""
        i = self._ptr_index(t)
        kv = _key_values(t[i + 1:])
        name = kv.get("name")
        name = self._cache_name(name) if kind == EV_CACHE_ALLOC and name is not None else None
        gfp = self.gfp(kv["gfp_flags"])
        accounted = kv.get("accounted", "false")
        if accounted not in ("true", "false"):
            raise _BadLine(f"expected accounted=true|false, got {accounted!r}")
        req = int(kv["bytes_req"])
        size = int(kv["bytes_alloc"])
        self._check_alloc(name, req, size)
        return (ts, cpu, kind, t[i][4:], -1, name, req, size, gfp, 0, 0, accounted == "true")

    def _free_event(self, t: list[str], kind: int, ts: float, cpu: int) -> tuple:
        i = self._ptr_index(t)
        name = None
        if kind == EV_CACHE_FREE:
            value = _key_values(t[i + 1:]).get("name")
            if value is not None:
                name = self._cache_name(value)
        return (ts, cpu, kind, t[i][4:], -1, name, 0, 0, 0, 0, 0, False)

    def _page_event(self, t: list[str], kind: int, ts: float, cpu: int) -> tuple:
        """mm_page_alloc / mm_page_free / mm_page_free_batched, recent or old layout."""
        kv = _key_values(t)
        page = kv.get("page")
        pfn_text = kv.get("pfn")
        if page is None or pfn_text is None:
            raise _BadLine("expected page= pfn=")
        pfn = int(pfn_text, 16) if pfn_text[:2] == "0x" else int(pfn_text)
        order = int(kv.get("order", "0"))
        mt = int(kv["migratetype"]) if kind == EV_PAGE_ALLOC and "migratetype" in kv else 0
        self._check_page(pfn, order, mt)
        # A failed allocation prints a NULL page (and pfn 0): "null" marks it.
        ptr = "null" if page.strip("0") in ("", "(null)") else ""
        if kind != EV_PAGE_ALLOC:
            return (ts, cpu, kind, ptr, pfn, None, 0, 0, 0, order, 0, False)
        gfp = self.gfp(kv["gfp_flags"])
        return (ts, cpu, kind, ptr, pfn, None, 0, 0, gfp, order, int(kv["migratetype"]),
                False)


_KFREE_TAIL = (None, 0, 0, 0, False)


def _c_scanner(kinds: dict[str, int], cpus: dict[str, int],
               tails: list[dict[str, tuple | None]], bad_allocs: dict[str, int]) -> Any:
    """The C fast path of ``_parse_batches`` (sim/_ftrace_scan.c's Scanner) over the
    parser's own tables, when the compiled build runs; None in pure Python, whose
    parser is this module's alone (the test suite runs both)."""
    import sim

    if not sim.NATIVE:
        return None
    from sim._ftrace_scan import Scanner  # built with them (setup.py)

    return Scanner(kinds, cpus, tails, _KFREE_TAIL, _NULL_PAGE, bad_allocs,
                   TS_BACKWARDS_TOLERANCE)


def _widen_pipe(conn: Connection) -> None:
    """Let the pipe hold 1 MiB (Linux ``F_SETPIPE_SZ``; the default is 64 KiB, about one
    batch of records), so that the parser runs ahead of the replay by several batches
    instead of waiting on every one it sends. Where that cannot be set, as it is."""
    try:
        import fcntl

        fcntl.fcntl(conn.fileno(), getattr(fcntl, "F_SETPIPE_SZ", 1031), 1 << 20)
    except (ImportError, OSError):
        pass


def _c_decoder() -> Any:
    """sim/_ftrace_scan.c's Decoder: the event tuples of a Scanner's records."""
    from sim._ftrace_scan import Decoder

    return Decoder()


def _duplicate_free(ptr: str, seen: int) -> str:
    return f"duplicated free of ptr={ptr}: freed at line {-seen} and not allocated since"


def _free_of_bad_alloc(ptr: str, bad_allocs: dict[str, int]) -> str:
    return f"free of ptr={ptr}, whose allocation was the bad line {bad_allocs[ptr]}"


def _ts_reason(ts: float, top: float) -> str:
    """Why a timestamp is bad (see "Bad lines" in the module docstring)."""
    if ts != ts:
        return "timestamp nan: expected a finite time"
    if ts == _INF:
        return "timestamp inf: expected a finite time"
    if ts < 0:
        return f"timestamp {ts}: expected a time >= 0"
    return (f"timestamp {ts:.6f}: goes back {top - ts:.6f} s after {top:.6f}; expected at "
            f"most {TS_BACKWARDS_TOLERANCE} s back")


def _can_fork() -> bool:
    return sys.platform == "linux" and "fork" in multiprocessing.get_all_start_methods()


def _parse_in_child(reader: TraceReader, conn: Connection, parent_end: Connection) -> None:
    """The child's side of ``TraceReader.batches``: parse and send marshalled batches,
    then a pickled ("stats", ParseStats) or ("error"/"crash", message). A pickle starts
    with byte 0x80, a marshalled list never does."""
    # The fork copied the parent's reading end: close it, or a parent that stops reading
    # would leave this process blocked on a pipe that still has a reader.
    parent_end.close()
    # Parsing makes no reference cycles; a collection would walk (and copy-on-write
    # fault in) the whole inherited heap of the parent.
    gc.freeze()
    gc.disable()
    try:
        dumps = marshal.dumps
        send = conn.send_bytes
        for batch in reader._parse_batches(records=True):
            send(dumps(batch))
        send(pickle.dumps(("stats", reader.stats)))
    except FragsimError as err:
        with contextlib.suppress(OSError):
            conn.send_bytes(pickle.dumps(("error", str(err))))
    except (BrokenPipeError, KeyboardInterrupt):
        pass  # the parent stopped reading
    except BaseException as crash:  # noqa: BLE001 - reported to the parent, which raises
        with contextlib.suppress(OSError):
            conn.send_bytes(pickle.dumps(("crash", f"{type(crash).__name__}: {crash}")))
    finally:
        conn.close()


def _key_values(toks: list[str]) -> dict[str, str]:
    kv = {}
    for tok in toks:
        key, eq, value = tok.partition("=")
        if eq:
            kv[key] = value
    return kv


def read_trace(path: str | os.PathLike[str] | IO[bytes]) -> tuple[list[TraceEvent], ParseStats]:
    """Every event of a (small) trace in a list, with the stats: for tests and notebooks."""
    reader = TraceReader(path)
    events = list(reader)
    return events, reader.stats
