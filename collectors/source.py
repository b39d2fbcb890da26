"""What every collector source is: what it reads, the service it bills by default, and its
observations in one shape (``Reading``), so that one loop (``collectors.run``) runs them all.

A source only observes: it never maps, spools or sends. Rows it cannot read are ``rejected``
with their ``file:line``; things it saw and deliberately left out (an inactive device, a device
listed twice) are ``skipped`` with their count. A source that cannot be read at all (not an
export it knows, an API that refused) raises ``SourceError``: one sentence, nothing sent.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Protocol

from chargeback.errors import UserError
from collectors.events import Observation
from collectors.exports import Table
from collectors.mapping import Mapper


class SourceError(UserError):
    """A source that cannot be read at all: the run sends nothing and a human must look."""

    code = "collector.source"


@dataclass(frozen=True)
class Reading:
    """One observation and what it bills: the shape every source returns."""

    observation: Observation
    service: str
    quantity: Decimal = Decimal(1)


@dataclass(frozen=True)
class Skipped:
    """Observations a source left out on purpose, with the sentence that says why."""

    name: str  # stable: "inactive", "listed_twice"
    count: int
    reason: str  # "inactive (no check-in for 30 days)"


@dataclass
class Observations:
    """What a source observed in one run."""

    readings: list[Reading]
    read: int  # rows, items or folders read
    day: date | None  # the run's observation day (part of per-day ids); None: one-off observations
    rejected: list[str] = field(default_factory=list)  # "file:line: reason"
    skipped: list[Skipped] = field(default_factory=list)


@dataclass(frozen=True)
class Fetch:
    """An API a source reads instead of an export: the call that fetches what the export would
    hold, as its table (made when the source observes, inside the run)."""

    call: Callable[[], Table]


Input = Path | Fetch  # what a source reads: an export file, or an API


class Source(Protocol):
    """A collector source."""

    @property
    def kind(self) -> str:
        """The source in event ids and ``source`` urns: devices, m365, tickets, fileshare, s3."""
        ...

    @property
    def unit(self) -> str:
        """What it counts, in the run's report: devices, assignments, tickets, folders."""
        ...

    def default_service(self, mapper: Mapper) -> str | None:
        """The service its observations bill when nothing more specific says (the mapping's
        ``services`` entry, else the source's own default); None when each reading names one."""
        ...

    def observe(self, mapper: Mapper) -> Observations:
        """Read the input once; raise ``SourceError`` when it cannot be read at all."""
        ...


def fetched(source: Input) -> Path | Table:
    """An export's path as it is, or the table an API returns (an API's refusal as ``SourceError``)."""
    if isinstance(source, Path):
        return source
    try:
        return source.call()
    except UserError as exc:  # ApiError: the request and its answer, one sentence
        raise SourceError(str(exc)) from exc


def readings(
    observations: Iterable[Observation], service: str, quantity: Decimal = Decimal(1)
) -> list[Reading]:
    """Observations that all bill one service, as readings."""
    return [Reading(o, service, quantity) for o in observations]
