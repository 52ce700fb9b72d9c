"""pets.runtime.backoff: doubling delays, a cap, a deadline, on an injected clock."""

from __future__ import annotations

import asyncio

import pytest

from pets.errors import InvalidInputError
from pets.runtime.backoff import Backoff


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.now += seconds


def test_delays_double_up_to_the_cap_and_reset() -> None:
    b = Backoff(0.2, 1.0)
    assert [b.advance() for _ in range(5)] == [0.2, 0.4, 0.8, 1.0, 1.0]
    b.reset()
    assert b.delay == 0.2


def test_deadline_stops_the_wait_that_would_pass_it() -> None:
    clock = FakeClock()
    b = Backoff(1.0, 8.0, deadline=clock() + 4.0, clock=clock)

    async def run() -> list[float]:
        waited = []
        while not b.exhausted():
            waited.append(b.delay)
            await b.sleep(clock.sleep)
        return waited

    assert asyncio.run(run()) == [1.0, 2.0]  # a third wait (4 s) would end at +7 s
    assert clock.now == 103.0


def test_no_deadline_is_never_exhausted() -> None:
    assert not Backoff(0.1, 0.1).exhausted()


@pytest.mark.parametrize(("initial", "maximum", "factor"), [(0, 1, 2), (2, 1, 2), (1, 2, 0.5)])
def test_bad_parameters_are_refused(initial: float, maximum: float, factor: float) -> None:
    with pytest.raises(InvalidInputError):
        Backoff(initial, maximum, factor=factor)
