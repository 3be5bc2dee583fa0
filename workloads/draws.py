"""A numpy Generator's scalar ``random()`` and ``integers(n)``, the same values, cheaper (a
simulator tool, not a kernel structure).

A workload that draws once per operation (the page-cache reader: whether a read is a
reread, which file and page) pays about a microsecond a call of the Generator, mostly
the call. ``ScalarDraws`` gives exactly the values those calls give, in the same
order, from the bit generator's raw 64-bit words taken a block at a time: numpy 2's
``Generator.random()`` is ``next_double`` (the top 53 bits of one word), and
``Generator.integers(n)`` for ``n - 1 < 2**32 - 1`` is Lemire's bounded draw over the
bit generator's ``next_uint32`` (the low half of a word, its high half kept for the
next call: PCG64's ``has_uint32`` and ``uinteger``). A larger ``n``, or a bit generator
other than PCG64, goes to the Generator itself.

The block is drawn ahead, so the bit generator is ahead of the draws taken from it:
``release()`` puts it where the Generator's own calls would have left it (its state
before the block, ``advance``d by the words used, and the 32-bit buffer), and must be
called before anything else draws from it. The next draw after a release takes a new
block. tests/test_draws.py holds every value and the state after a release to the
Generator's.

Compiled by mypyc with the allocator's hot modules (sim/native.py).
"""

from __future__ import annotations

from typing import Any, Final

import numpy as np
from librt.vecs import vec
from mypy_extensions import i64

BLOCK: Final = 256  # words drawn at a time
_U32: Final = 0xFFFFFFFF
_MASK53: Final = (1 << 53) - 1
_TWO_TO_MINUS_53: Final = 1.0 / 9007199254740992.0


class ScalarDraws:
    """``random()`` and ``integers(n)`` of ``generator`` (see the module docstring)."""

    def __init__(self, generator: np.random.Generator) -> None:
        self.generator = generator
        self._bg: Any = generator.bit_generator
        self._pcg64 = type(self._bg).__name__ == "PCG64"
        self._words: vec[i64] = vec[i64]()
        self._pos = 0
        self._state0: Any = None  # the bit generator's state before the block
        self._active = False  # a block (or the 32-bit buffer) is taken from it
        self._has_uint32 = False
        self._uinteger = 0

    def _word(self) -> i64:
        """The next raw 64-bit word, its bits in a signed 64-bit int (the callers mask
        what they take, so no unsigned int wider than 63 bits is made)."""
        if self._pos >= len(self._words):
            if not self._active:
                self._take()
            bg = self._bg
            self._state0 = bg.state
            self._words = vec[i64](bg.random_raw(BLOCK).view(np.int64).tolist())
            self._pos = 0
        w: i64 = self._words[self._pos]
        self._pos += 1
        return w

    def _take(self) -> None:
        state = self._bg.state
        self._has_uint32 = bool(state["has_uint32"])
        self._uinteger = int(state["uinteger"])
        self._active = True

    def _next_uint32(self) -> int:
        if not self._active:
            self._take()
        if self._has_uint32:
            self._has_uint32 = False
            return self._uinteger
        w = self._word()
        self._has_uint32 = True
        self._uinteger = int((w >> 32) & _U32)
        return int(w & _U32)

    def random(self) -> float:
        """``generator.random()``"""
        if not self._pcg64:
            return float(self.generator.random())
        return float((self._word() >> 11) & _MASK53) * _TWO_TO_MINUS_53

    def integers(self, n: int) -> int:
        """``int(generator.integers(n))``: uniform in 0..n-1."""
        if n <= 0:
            raise ValueError(f"integers: expected n > 0, got {n}")
        rng = n - 1
        if rng == 0:
            return 0  # numpy draws nothing for a range of one value
        if not self._pcg64 or rng > _U32:
            self.release()
            return int(self.generator.integers(n))
        if rng == _U32:
            return self._next_uint32()
        # buffered_bounded_lemire_uint32
        rng_excl = rng + 1
        m = self._next_uint32() * rng_excl
        leftover = m & _U32
        if leftover < rng_excl:
            threshold = (_U32 - rng) % rng_excl
            while leftover < threshold:
                m = self._next_uint32() * rng_excl
                leftover = m & _U32
        return m >> 32

    def release(self) -> None:
        """Put the bit generator where the Generator's own calls would have left it."""
        if not self._active:
            return
        bg = self._bg
        if len(self._words):
            bg.state = self._state0
            bg.advance(self._pos)
        state = bg.state
        state["has_uint32"] = 1 if self._has_uint32 else 0
        state["uinteger"] = self._uinteger
        bg.state = state
        self._words = vec[i64]()
        self._pos = 0
        self._state0 = None
        self._active = False
