"""workloads/draws.py ``ScalarDraws`` against the numpy Generator it stands in for: every
value, in any interleaving of ``random()`` and ``integers(n)`` (numpy's own edge cases
included: a range of one value, of 2**32 values, and a wider one it hands back to the
Generator), and the Generator's state after ``release()``, so that what draws from it
next sees what it would have seen."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from workloads.draws import BLOCK, ScalarDraws

N = st.one_of(st.sampled_from([1, 2, 3, 7, 64, 262144, (1 << 32) - 1, 1 << 32, (1 << 32) + 5,
                               1 << 40]),
              st.integers(1, 1 << 31))
STEP = st.one_of(st.tuples(st.just("random"), st.just(0)), st.tuples(st.just("integers"), N),
                 st.tuples(st.just("release"), st.just(0)),
                 st.tuples(st.just("other"), st.integers(1, 5)))


@settings(max_examples=200, deadline=None)
@given(seed=st.integers(0, 2**32), steps=st.lists(STEP, max_size=3 * BLOCK))
def test_scalar_draws_are_the_generators_own(seed, steps):
    reference = np.random.default_rng(seed)
    generator = np.random.default_rng(seed)
    draws = ScalarDraws(generator)
    for what, n in steps:
        if what == "random":
            assert draws.random() == reference.random()
        elif what == "integers":
            assert draws.integers(n) == int(reference.integers(n))
        elif what == "release":
            draws.release()
            assert generator.bit_generator.state == reference.bit_generator.state
        else:  # something else draws from the generator, after a release
            draws.release()
            assert (generator.integers(0, 1000, n) == reference.integers(0, 1000, n)).all()
            assert int(generator.integers(97)) == int(reference.integers(97))
            assert (generator.random(n) == reference.random(n)).all()
    draws.release()
    assert generator.bit_generator.state == reference.bit_generator.state


def test_another_bit_generator_goes_to_the_generator_itself():
    reference = np.random.Generator(np.random.MT19937(5))
    draws = ScalarDraws(np.random.Generator(np.random.MT19937(5)))
    for n in (1, 2, 1000, 1 << 33):
        assert draws.integers(n) == int(reference.integers(n))
        assert draws.random() == reference.random()


def test_no_integer_below_one_value():
    with pytest.raises(ValueError, match="n > 0"):
        ScalarDraws(np.random.default_rng(1)).integers(0)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_many_blocks_of_draws_are_the_generators_own(seed):
    """Long runs that cross many blocks, with releases between them."""
    import random

    pick = random.Random(seed)
    reference = np.random.default_rng(seed)
    generator = np.random.default_rng(seed)
    draws = ScalarDraws(generator)
    for k in range(20 * BLOCK):
        if pick.random() < 0.5:
            assert draws.random() == reference.random()
        else:
            n = pick.choice([2, 3, 1000, 262144, pick.randrange(1, 1 << 31)])
            assert draws.integers(n) == int(reference.integers(n))
        if k % 1000 == 999:
            draws.release()
            assert generator.bit_generator.state == reference.bit_generator.state
