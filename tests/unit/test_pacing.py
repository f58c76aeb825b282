"""The pacer keeps a sender's rate while sleeping once per slice of it, not once per event."""

from __future__ import annotations

import pytest

from streams.cli.pacing import SLICE_S, Pacer


class _Clock:
    """A monotonic clock that moves only when slept on, or by ``spend``."""

    def __init__(self) -> None:
        self.now = 100.0
        self.sleeps: list[float] = []

    def monotonic(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds

    def spend(self, seconds: float) -> None:
        self.now += seconds

    def pacer(self, rate: float | None) -> Pacer:
        return Pacer(rate, clock=self.monotonic, sleep=self.sleep)


def test_it_sleeps_once_a_slice_and_keeps_the_rate() -> None:
    clock = _Clock()
    rate, sent = 4_000.0, 8_000
    pacer = clock.pacer(rate)
    for done in range(1, sent + 1):
        clock.spend(10e-6)  # sending an event takes a little time
        pacer.wait(done)
    elapsed = clock.now - 100.0
    assert elapsed == pytest.approx(sent / rate, abs=SLICE_S)
    # Two seconds of sending in 2 ms slices: about a thousand sleeps, not eight thousand.
    assert len(clock.sleeps) <= sent / rate / SLICE_S + 1
    assert all(seconds > SLICE_S for seconds in clock.sleeps)


def test_a_sender_behind_its_rate_never_sleeps() -> None:
    clock = _Clock()
    pacer = clock.pacer(100.0)
    for done in range(1, 50):
        clock.spend(0.02)  # twice as slow as the rate
        pacer.wait(done)
    assert clock.sleeps == []


def test_without_a_rate_it_does_nothing() -> None:
    clock = _Clock()
    pacer = clock.pacer(None)
    for done in range(1, 1_000):
        pacer.wait(done)
    assert clock.sleeps == []
    assert clock.now == 100.0
