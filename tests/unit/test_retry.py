"""The one retry policy: the exact waits it produces, its deadline and which errors it retries."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from itertools import islice
from typing import Any

import pytest

from chargeback.retry import RetryPolicy, deadline_in


class Flaky(Exception):
    pass


class Clock:
    """A clock that moves only when the policy sleeps."""

    def __init__(self) -> None:
        self.now = 100.0
        self.waits: list[float] = []

    def sleep(self, seconds: float) -> None:
        self.waits.append(seconds)
        self.now += seconds

    async def asleep(self, seconds: float) -> None:
        self.sleep(seconds)


def failing(times: int, result: str = "done") -> tuple[list[int], Callable[[], str]]:
    calls = [0]

    def step() -> str:
        calls[0] += 1
        if calls[0] <= times:
            raise Flaky(f"attempt {calls[0]}")
        return result

    return calls, step


def test_the_default_schedule_doubles_from_half_a_second_up_to_30_s() -> None:
    assert list(islice(RetryPolicy().delays(), 9)) == [0.5, 1.0, 2.0, 4.0, 8.0, 16.0, 30.0, 30.0, 30.0]


def test_a_custom_schedule() -> None:
    assert list(islice(RetryPolicy(first_s=0.25, factor=3, cap_s=2).delays(), 4)) == [0.25, 0.75, 2, 2]
    assert list(islice(RetryPolicy(first_s=0.05, cap_s=0.05).delays(), 3)) == [0.05, 0.05, 0.05]


def test_run_waits_the_schedule_between_attempts_and_returns_the_result() -> None:
    clock = Clock()
    calls, step = failing(4)
    seen: list[tuple[str, float]] = []
    result = RetryPolicy(retry_on=(Flaky,)).run(
        step,
        sleep=clock.sleep,
        clock=lambda: clock.now,
        on_retry=lambda exc, delay: seen.append((str(exc), delay)),
    )
    assert (result, calls[0], clock.waits) == ("done", 5, [0.5, 1.0, 2.0, 4.0])
    assert seen == [("attempt 1", 0.5), ("attempt 2", 1.0), ("attempt 3", 2.0), ("attempt 4", 4.0)]


def test_a_deadline_gives_up_rather_than_start_a_wait_that_ends_past_it() -> None:
    clock = Clock()
    calls, step = failing(100)
    with pytest.raises(Flaky, match="attempt 4"):
        RetryPolicy(retry_on=(Flaky,)).run(
            step,
            deadline=deadline_in(5.0, clock=lambda: clock.now),
            sleep=clock.sleep,
            clock=lambda: clock.now,
        )
    # Attempts at 0, 0.5, 1.5 and 3.5 s; the next wait (4 s) would end at 7.5 s, past 5 s.
    assert (calls[0], clock.waits, clock.now) == (4, [0.5, 1.0, 2.0], 103.5)


def test_errors_it_is_not_told_to_retry_go_through_at_once() -> None:
    clock = Clock()

    def step() -> None:
        raise KeyError("not a service outage")

    with pytest.raises(KeyError):
        RetryPolicy(retry_on=(Flaky,)).run(step, sleep=clock.sleep, clock=lambda: clock.now)
    assert clock.waits == []


def test_run_async_waits_without_blocking_and_keeps_the_same_schedule() -> None:
    clock = Clock()
    _, step = failing(3)

    async def astep() -> str:
        return step()

    result = asyncio.run(
        RetryPolicy(retry_on=(Flaky,)).run_async(astep, sleep=clock.asleep, clock=lambda: clock.now)
    )
    assert (result, clock.waits) == ("done", [0.5, 1.0, 2.0])


def test_no_deadline_means_none() -> None:
    assert deadline_in(None) is None
    assert deadline_in(2.5, clock=lambda: 10.0) == 12.5


@pytest.mark.parametrize("bad", [{"first_s": -1}, {"factor": 0.5}, {"first_s": 5, "cap_s": 1}])
def test_a_policy_that_makes_no_sense_is_refused(bad: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match="a retry policy needs"):
        RetryPolicy(**bad)
