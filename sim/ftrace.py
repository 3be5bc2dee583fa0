"""A streaming reader of ftrace kmem events, as ``/sys/kernel/tracing/trace`` prints them.

The events and their TP_printk formats come from include/trace/events/kmem.h:

- ``kmem_cache_alloc``: ``call_site=%pS ptr=%p name=%s bytes_req=%zu bytes_alloc=%zu
  gfp_flags=%s node=%d accounted=%s`` (6.18; ``bytes_alloc`` is the cache's ``s->size``).
- ``kmalloc``: the same without ``name=``.
- ``kmem_cache_free``: ``call_site=%pS ptr=%p name=%s``; ``kfree``: ``call_site=%pS ptr=%p``.
- ``mm_page_alloc``: ``page=%p pfn=0x%lx order=%d migratetype=%d gfp_flags=%s`` (a failed
  allocation prints a NULL page and pfn 0).
- ``mm_page_free``: ``page=%p pfn=0x%lx order=%d``; ``mm_page_free_batched``:
  ``page=%p pfn=0x%lx order=0``.

Older kernels print the same events differently, and all of these are read:

- before 5.5, ``call_site=%lx`` (a bare hex address, no symbol);
- before 5.9 or so, ``pfn=%lu`` (decimal): a pfn starting ``0x`` is read as hex, any other
  as decimal;
- before 6.1, separate ``kmem_cache_alloc_node`` / ``kmalloc_node`` events with ``node=``;
  before 5.19 no ``accounted=``; before 6.18 no ``name=`` on ``kmem_cache_alloc`` (and
  before 5.12 none on ``kmem_cache_free`` either): the name is then None and the
  replay finds the cache from the object size (sim/replay.py);
- before 4.15, ``mm_page_free_batched`` carried ``cold=%d``.

A call site printed with a module (``func+0x10/0x20 [xfs]``) holds a space; fields are
found from ``ptr=`` / ``page=`` on, so it does not matter.

Records are :class:`TraceEvent` tuples. Every other line is accounted for in
:class:`ParseStats`: comments and the header (``#``), blank lines, events of other
tracepoints, and garbled lines (counted, the first ten kept with their line numbers; a
garbled line never stops the stream). A gzip file is recognised by its magic bytes, not
its name. A truncated or corrupt gzip stream ends the stream with ``stats.error`` set
(the events before it are kept). A file with no kmem event at all, or an empty one, is a
one-line :class:`~sim.errors.FragsimError`, raised when the stream ends.

Speed: one ``str.find`` pair locates the event name, ``str.split`` the fields, and the
6.18 layouts are read at fixed positions after a prefix check; any other layout goes
through a generic ``key=value`` loop. Distinct gfp strings are parsed once
(``parse_gfp``) and cached, as are cache names (interned) and CPU fields.
"""

from __future__ import annotations

import gzip
import io
import os
import sys
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import IO, NamedTuple

from sim.errors import FragsimError
from sim.gfp import __GFP_DIRECT_RECLAIM, __GFP_RETRY_MAYFAIL, COMPOSITES, FLAGS, GFP_KERNEL
from sim.gfp import __GFP_RECLAIMABLE as _GFP_RECLAIMABLE

# Event kinds (TraceEvent.kind).
EV_CACHE_ALLOC = 0
EV_CACHE_FREE = 1
EV_KMALLOC = 2
EV_KFREE = 3
EV_PAGE_ALLOC = 4
EV_PAGE_FREE = 5
EV_PAGE_FREE_BATCHED = 6
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

_NULL_PAGE = "page=0000000000000000"  # %p of NULL on 64-bit: a failed mm_page_alloc

# The same, as split() sees it in a line's head: "kmalloc:".
_HEAD_KINDS = {f"{name}:": kind for name, kind in EVENT_KINDS.items()}

MAX_BAD_LINES_KEPT = 10
_SHOWN_LINE_CHARS = 100

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
    per_kind: list[int] = field(default_factory=lambda: [0] * len(KIND_NAMES))
    unknown_gfp: set[str] = field(default_factory=set)  # flag names parse_gfp did not know
    first_ts: float | None = None
    last_ts: float | None = None
    error: str | None = None  # why the stream ended early (truncated gzip, ...)

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
        head = f"{self.source}: {self.bad_lines} garbled line(s) skipped"
        if self.bad_lines > len(self.first_bad):
            head += f" (first {len(self.first_bad)} shown)"
        return "\n".join([head, *(f"{self.source}:{b}" for b in self.first_bad)])

    def as_dict(self) -> dict[str, object]:
        return {
            "source": self.source,
            "lines": self.lines,
            "events": self.events,
            "comments": self.comments,
            "other_events": self.other_events,
            "bad_lines": self.bad_lines,
            "first_bad_lines": [
                {"line": b.lineno, "reason": b.reason, "text": b.text} for b in self.first_bad
            ],
            "per_kind": dict(zip(KIND_NAMES, self.per_kind, strict=True)),
            "unknown_gfp": sorted(self.unknown_gfp),
            "span_s": self.span_s,
            "complete": self.complete,
            "error": self.error,
        }


class _BadLine(Exception):
    """A line that cannot be read; the message is the reason."""


class TraceStream:
    """A trace file opened as text lines, gunzipped when its first two bytes are gzip's
    magic (whatever its name). ``path`` may be ``"-"`` (standard input) or a binary file
    object. Undecodable bytes become U+FFFD, so such a line is counted as garbled."""

    # TextIOWrapper reads 8 KiB at a time by default; larger reads are a third faster
    # through GzipFile.
    CHUNK = 1 << 18

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
        buffered = raw if isinstance(raw, io.BufferedReader) else io.BufferedReader(raw)  # type: ignore[arg-type]
        stream: IO[bytes] = buffered
        if buffered.peek(2)[:2] == b"\x1f\x8b":
            stream = gzip.GzipFile(fileobj=buffered)
        self.text = io.TextIOWrapper(stream, encoding="utf-8", errors="replace", newline="\n")
        self.text._CHUNK_SIZE = self.CHUNK  # type: ignore[attr-defined]

    def close(self) -> None:
        self.text.close()
        if self._raw is not None:
            self._raw.close()


class TraceReader:
    """Iterate over the kmem events of an ftrace text file, plain or gzip, streaming.

    >>> reader = TraceReader("trace.txt.gz")      # doctest: +SKIP
    >>> for ev in reader: ...                     # doctest: +SKIP
    >>> reader.stats.bad_lines, reader.stats.error  # doctest: +SKIP
    """

    def __init__(self, path: str | os.PathLike[str] | IO[bytes], source: str | None = None,
                 *, gfp_cache: dict[str, int] | None = None) -> None:
        self.path = path
        if source is None:
            source = os.fspath(path) if isinstance(path, (str, os.PathLike)) else "<trace>"
        self.stats = ParseStats(source)
        self._gfp_cache: dict[str, int] = {} if gfp_cache is None else gfp_cache
        self._names: dict[str, str] = {}
        self._cpus: dict[str, int] = {}
        self._used = False

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

    def __iter__(self) -> Iterator[TraceEvent]:
        if self._used:
            raise RuntimeError("a TraceReader streams its file once; make a new one")
        self._used = True
        stats = self.stats
        stream = TraceStream(self.path)
        kinds = _HEAD_KINDS
        per_kind = stats.per_kind
        cpus = self._cpus
        gfp_cache = self._gfp_cache
        names = self._names
        new = _new_event
        cls = TraceEvent
        lineno = 0
        first_ts = None
        ts = last_ts = 0.0
        try:
            for line in stream.text:
                lineno += 1
                try:
                    # "  comm-pid  [001] .....  4728.514174: kmalloc: call_site=... ptr=..."
                    # t[0:5] is the head: task-pid, [cpu], irq flags, "ts:", "event:".
                    t = line.split()
                    kind = kinds.get(t[4]) if len(t) > 5 else None
                    cpu = cpus.get(t[1]) if kind is not None else None
                    if cpu is None:
                        # A comment, a blank line, another event, a task name with spaces,
                        # no irq-info column, or a garbled line: the careful path.
                        head = self._head(line)
                        if head is None:
                            continue
                        cpu, ts, kind, rest = head
                        t = ["", "", "", "", "", *rest.split()]
                    else:
                        ts = float(t[3][:-1])
                    n = len(t)
                    if kind == EV_CACHE_ALLOC:
                        # 6.18: call_site ptr name bytes_req bytes_alloc gfp_flags node acc
                        ptr = t[6]
                        if n == 13 and ptr[:4] == "ptr=":
                            name = names.get(t[7])
                            if name is None:
                                name = self._name(t[7])
                            g = gfp_cache.get(t[10])
                            if g is None:
                                g = self._gfp_field(t[10])
                            ev = new(cls, (ts, cpu, 0, ptr[4:], -1, name, int(t[8][10:]),
                                           int(t[9][12:]), g, 0, 0, t[12] == "accounted=true"))
                        else:
                            ev = self._alloc_event(t[5:], kind, ts, cpu)
                    elif kind == EV_CACHE_FREE:
                        ptr = t[6]
                        if n == 8 and ptr[:4] == "ptr=":
                            name = names.get(t[7])
                            if name is None:
                                name = self._name(t[7])
                            ev = new(cls, (ts, cpu, 1, ptr[4:], -1, name, 0, 0, 0, 0, 0, False))
                        else:
                            ev = self._free_event(t[5:], kind, ts, cpu)
                    elif kind == EV_PAGE_ALLOC:
                        # 6.18: page pfn order migratetype gfp_flags
                        pfn = t[6]
                        if (n == 10 and pfn[:6] == "pfn=0x" and t[5] != _NULL_PAGE
                                and t[8][:12] == "migratetype="):
                            g = gfp_cache.get(t[9])
                            if g is None:
                                g = self._gfp_field(t[9])
                            ev = new(cls, (ts, cpu, 4, "", int(pfn[6:], 16), None, 0, 0, g,
                                           int(t[7][6:]), int(t[8][12:]), False))
                        else:
                            ev = self._page_event(t[5:], kind, ts, cpu)
                    elif kind == EV_PAGE_FREE:
                        pfn = t[6]
                        if n == 8 and pfn[:6] == "pfn=0x" and t[7][:6] == "order=":
                            ev = new(cls, (ts, cpu, 5, "", int(pfn[6:], 16), None, 0, 0, 0,
                                           int(t[7][6:]), 0, False))
                        else:
                            ev = self._page_event(t[5:], kind, ts, cpu)
                    elif kind == EV_KFREE:
                        ptr = t[6]
                        if n == 7 and ptr[:4] == "ptr=":
                            ev = new(cls, (ts, cpu, 3, ptr[4:], -1, None, 0, 0, 0, 0, 0, False))
                        else:
                            ev = self._free_event(t[5:], kind, ts, cpu)
                    elif kind == EV_KMALLOC:
                        # 6.18: call_site ptr bytes_req bytes_alloc gfp_flags node accounted
                        ptr = t[6]
                        if n == 12 and ptr[:4] == "ptr=" and t[7][:10] == "bytes_req=":
                            g = gfp_cache.get(t[9])
                            if g is None:
                                g = self._gfp_field(t[9])
                            ev = new(cls, (ts, cpu, 2, ptr[4:], -1, None, int(t[7][10:]),
                                           int(t[8][12:]), g, 0, 0, t[11] == "accounted=true"))
                        else:
                            ev = self._alloc_event(t[5:], kind, ts, cpu)
                    else:
                        ev = self._page_event(t[5:], kind, ts, cpu)
                except _BadLine as err:
                    self._bad(lineno, str(err), line)
                    continue
                except (ValueError, IndexError, KeyError) as err:
                    self._bad(lineno, f"unreadable field ({type(err).__name__}: {err})", line)
                    continue
                if first_ts is None:
                    first_ts = stats.first_ts = ts
                last_ts = ts
                per_kind[kind] += 1
                yield ev
        except (EOFError, zlib.error, OSError) as err:
            # A truncated or corrupt gzip stream: keep what was read, say why it stopped.
            stats.error = (f"{stats.source}: the trace ends early after line {lineno} "
                           f"({type(err).__name__}: {err})")
        finally:
            stream.close()
            stats.lines = lineno
            stats.events = sum(per_kind)
            if first_ts is not None:
                stats.last_ts = last_ts
        if not stats.events:
            if stats.error:
                raise FragsimError(stats.error)
            if not lineno:
                raise FragsimError(f"{stats.source}: expected an ftrace kmem trace, got an "
                                   "empty file")
            raise FragsimError(
                f"{stats.source}: expected kmem events (kmem_cache_alloc, kmem_cache_free, "
                f"kmalloc, kfree, mm_page_alloc, mm_page_free), got none in {lineno} lines"
            )

    def _bad(self, lineno: int, reason: str, line: str) -> None:
        stats = self.stats
        stats.bad_lines += 1
        if len(stats.first_bad) < MAX_BAD_LINES_KEPT:
            text = line.rstrip("\n")
            if len(text) > _SHOWN_LINE_CHARS:
                text = text[:_SHOWN_LINE_CHARS] + "..."
            stats.first_bad.append(BadLine(lineno, reason, text))

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

    def _gfp_field(self, token: str) -> int:
        """The flags of a ``gfp_flags=...`` token, cached by the whole token."""
        if token[:10] != "gfp_flags=":
            raise _BadLine(f"expected gfp_flags=, got {token!r}")
        value = self._gfp_cache[token] = self.gfp(token[10:])
        return value

    def _name(self, token: str) -> str:
        """The cache name of a ``name=...`` token, interned and cached by the token."""
        if token[:5] != "name=" or len(token) == 5:
            raise _BadLine(f"expected name=NAME, got {token!r}")
        name = self._names[token] = sys.intern(token[5:])
        return name

    @staticmethod
    def _ptr_index(t: list[str]) -> int:
        """Where ``ptr=`` is: 1, or later when the call site names a module."""
        for i, tok in enumerate(t):
            if tok[:4] == "ptr=":
                if len(tok) == 4:
                    raise _BadLine("empty ptr=")
                return i
        raise _BadLine("expected ptr=")

    def _alloc_event(self, t: list[str], kind: int, ts: float, cpu: int) -> TraceEvent:
        """kmalloc, and kmem_cache_alloc in any layout but 6.18's: key=value after ptr=."""
        i = self._ptr_index(t)
        kv = _key_values(t[i + 1:])
        name = kv.get("name")
        if kind == EV_CACHE_ALLOC and name is not None:
            name = self._names.get("name=" + name) or self._name("name=" + name)
        else:
            name = None
        gfp = self._gfp_cache.get("gfp_flags=" + kv["gfp_flags"])
        if gfp is None:
            gfp = self._gfp_field("gfp_flags=" + kv["gfp_flags"])
        accounted = kv.get("accounted", "false")
        if accounted not in ("true", "false"):
            raise _BadLine(f"expected accounted=true|false, got {accounted!r}")
        return _new_event(TraceEvent, (ts, cpu, kind, t[i][4:], -1, name, int(kv["bytes_req"]),
                                       int(kv["bytes_alloc"]), gfp, 0, 0, accounted == "true"))

    def _free_event(self, t: list[str], kind: int, ts: float, cpu: int) -> TraceEvent:
        i = self._ptr_index(t)
        name = None
        if kind == EV_CACHE_FREE:
            value = _key_values(t[i + 1:]).get("name")
            if value is not None:
                name = self._names.get("name=" + value) or self._name("name=" + value)
        return _new_event(TraceEvent, (ts, cpu, kind, t[i][4:], -1, name, 0, 0, 0, 0, 0, False))

    def _page_event(self, t: list[str], kind: int, ts: float, cpu: int) -> TraceEvent:
        """mm_page_alloc / mm_page_free / mm_page_free_batched, recent or old layout."""
        kv = _key_values(t)
        page = kv.get("page")
        pfn_text = kv.get("pfn")
        if page is None or pfn_text is None:
            raise _BadLine("expected page= pfn=")
        pfn = int(pfn_text, 16) if pfn_text[:2] == "0x" else int(pfn_text)
        order = int(kv.get("order", "0"))
        # A failed allocation prints a NULL page (and pfn 0): "null" marks it.
        ptr = "null" if page.strip("0") in ("", "(null)") else ""
        if kind != EV_PAGE_ALLOC:
            return _new_event(TraceEvent, (ts, cpu, kind, ptr, pfn, None, 0, 0, 0, order, 0,
                                           False))
        g = "gfp_flags=" + kv["gfp_flags"]
        gfp = self._gfp_cache.get(g)
        if gfp is None:
            gfp = self._gfp_field(g)
        return _new_event(TraceEvent, (ts, cpu, kind, ptr, pfn, None, 0, 0, gfp, order,
                                       int(kv["migratetype"]), False))


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
