"""The one retry policy: exponential backoff with a cap, an optional deadline, named exceptions.

Every component that waits for a service to come back (the stream worker's sink and its batch
loop) uses this, so the schedule lives in one place: 0.5 s, 1 s, 2 s, 4 s, … up to 30 s between
attempts. A deadline (a ``clock`` reading) bounds the whole: the policy gives up, re-raising the last
error, rather than begin a wait that would end past it — how a worker's store stays within a
rebalance timeout instead of holding its partitions forever.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from typing import TypeVar

T = TypeVar("T")

OnRetry = Callable[[BaseException, float], None]


@dataclass(frozen=True)
class RetryPolicy:
    """When to try again: after ``first_s``, then ``factor`` times longer each time, at most ``cap_s``.

    Only exceptions of the ``retry_on`` types are retried; any other goes through at once.
    """

    first_s: float = 0.5
    factor: float = 2.0
    cap_s: float = 30.0
    retry_on: tuple[type[BaseException], ...] = (Exception,)

    def __post_init__(self) -> None:
        if self.first_s < 0 or self.factor < 1 or self.cap_s < self.first_s:
            raise ValueError("a retry policy needs 0 <= first_s <= cap_s and factor >= 1")

    def delays(self) -> Iterator[float]:
        """The waits between attempts, without end: first, first × factor, … capped."""
        delay = self.first_s
        while True:
            yield min(delay, self.cap_s)
            delay = min(delay * self.factor, self.cap_s)

    def next_wait(self, delays: Iterator[float], *, deadline: float | None, now: float) -> float | None:
        """The next wait from ``delays``, or None when it would end past ``deadline`` (give up)."""
        delay = next(delays)
        if deadline is not None and now + delay > deadline:
            return None
        return delay

    def run(
        self,
        step: Callable[[], T],
        *,
        deadline: float | None = None,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
        on_retry: OnRetry | None = None,
    ) -> T:
        """``step()``, tried again after each retryable error until it returns or the deadline."""
        delays = self.delays()
        while True:
            try:
                return step()
            except self.retry_on as exc:
                delay = self.next_wait(delays, deadline=deadline, now=clock())
                if delay is None:
                    raise
                if on_retry is not None:
                    on_retry(exc, delay)
                sleep(delay)

    async def run_async(
        self,
        step: Callable[[], Awaitable[T]],
        *,
        deadline: float | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        clock: Callable[[], float] = time.monotonic,
        on_retry: OnRetry | None = None,
    ) -> T:
        """``run`` for a coroutine step; the waits do not block the event loop."""
        delays = self.delays()
        while True:
            try:
                return await step()
            except self.retry_on as exc:
                delay = self.next_wait(delays, deadline=deadline, now=clock())
                if delay is None:
                    raise
                if on_retry is not None:
                    on_retry(exc, delay)
                await sleep(delay)


def deadline_in(seconds: float | None, clock: Callable[[], float] = time.monotonic) -> float | None:
    """The ``clock`` reading ``seconds`` from now (None: no deadline)."""
    return None if seconds is None else clock() + seconds
