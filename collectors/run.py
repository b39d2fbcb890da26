"""One collector run, whatever the source: observe, map, build events, spool, send, report.

``run_collector`` never prints and never exits: it returns a ``CollectorReport`` whose ``status``
is the run's outcome as a value (0 delivered, 75 waiting in the spool for the broker, 1 a human
must look, 3 delivered with a warning for finance: ``collectors.allocation``). The ``collect``
commands print the report and exit with its status; the demo adds reports up.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from enum import IntEnum

from chargeback.kafka import Message
from collectors.allocation import EXIT_WARNING, Allocation
from collectors.events import build_event, to_message
from collectors.mapping import Mapper, Mapping
from collectors.sending import Signer, deliver
from collectors.settings import CollectorSettings, SettingsProblem, secret_setting
from collectors.source import Observations, Skipped, Source
from collectors.sources.file import EventFile, FileReport


class Status(IntEnum):
    """A run's outcome, as the exit code a scheduler sees."""

    DELIVERED = 0  # every event the run made, and every one spooled before, is on the topic
    NEEDS_HUMAN = 1  # rejected or unmapped input, or a spool that cannot be written
    SPOOLED = 75  # events wait in the spool: the broker was away; the next run sends them first
    WARNING = EXIT_WARNING  # delivered, with a warning for finance (collectors.allocation)


@dataclass(frozen=True)
class CollectorReport:
    """What one run did."""

    read: int  # rows, items, folders or lines the source read
    written: int  # events this run put in the spool
    sent: int  # events the broker confirmed (this run's and those waiting from earlier runs)
    spooled: int  # events still waiting in the spool
    rejected: tuple[str, ...] = ()  # "file:line: reason": input a human must fix
    unmapped: dict[str, int] = field(default_factory=dict)  # identifier -> observations
    skipped: tuple[Skipped, ...] = ()  # left out on purpose (inactive, listed twice)
    unit: str = "events"  # what the unmapped counts are of
    broker_error: str | None = None
    spool_error: str | None = None
    # Warnings for finance: an export without its cost-centre column, too much to UNALLOCATED.
    finance: tuple[str, ...] = ()

    @property
    def status(self) -> Status:
        """Needs a human before waiting for the broker, which is before a warning for finance,
        which is before delivered."""
        if self.rejected or self.unmapped or self.spool_error:
            return Status.NEEDS_HUMAN
        if self.spooled:
            return Status.SPOOLED
        if self.finance:
            return Status.WARNING
        return Status.DELIVERED

    def skipped_count(self, name: str) -> int:
        """How many were skipped for one reason (``inactive``, ``listed_twice``)."""
        return sum(s.count for s in self.skipped if s.name == name)

    @property
    def summary(self) -> str:
        """The run's counts in one line."""
        return (
            f"read {self.read}, emitted {self.sent}, spooled {self.spooled}, "
            f"rejected {len(self.rejected)}, unmapped {sum(self.unmapped.values())}"
            + (f" (this run: {self.written})" if self.written != self.sent else "")
        )

    @property
    def warnings(self) -> list[str]:
        """What a human should read, one line each (skipped, rejected, unmapped, then the spool's
        and the broker's trouble)."""
        lines = [
            *(f"{s.reason}: {s.count}" for s in self.skipped if s.count),
            *(f"rejected {problem}" for problem in self.rejected),
            *(f"unmapped {k!r}: {n} {self.unit}" for k, n in sorted(self.unmapped.items())),
            *(f"warning: {text}" for text in self.finance),
        ]
        if self.spool_error:
            lines.append(self.spool_error)
        if self.broker_error:
            lines.append(f"broker not reachable, events kept in the spool: {self.broker_error}")
        return lines


def signer_from(settings: CollectorSettings) -> Signer | None:
    """The collector's signing key from its settings, if one is configured (a ``SettingsProblem``
    when the key id has neither a secret nor a secrets file)."""
    if settings.collector_key_id is None:
        return None
    secret = secret_setting(
        settings.collector_key_secret, settings.collector_key_file, "CHARGEBACK_COLLECTOR_KEY"
    )
    if secret is None:
        raise SettingsProblem(
            "CHARGEBACK_COLLECTOR_KEY_ID is set: also set CHARGEBACK_COLLECTOR_KEY_SECRET "
            "or CHARGEBACK_COLLECTOR_KEY_FILE"
        )
    return Signer(settings.collector_key_id, secret.get_secret_value().encode())


def run_collector(
    source: Source | EventFile, mapping: Mapping | None, settings: CollectorSettings
) -> CollectorReport:
    """Run a source once: its readings become events through ``mapping`` (a file of ready-made
    events needs none), which are signed, spooled and sent with what earlier runs left in the
    spool. Raises ``SourceError`` when the source cannot be read at all (nothing sent), a
    ``SettingsProblem`` for a signing key that cannot be read."""
    signer = signer_from(settings)
    if isinstance(source, EventFile):
        lines = FileReport()
        delivery = deliver(source.events(lines), settings, signer)
        return CollectorReport(
            lines.read,
            delivery.written,
            delivery.sent,
            delivery.spooled,
            rejected=tuple(lines.rejected),
            unit=source.unit,
            broker_error=delivery.broker_error,
            spool_error=delivery.spool_error,
        )
    if mapping is None:
        raise TypeError(f"a {source.kind} source needs a mapping")
    mapper = Mapper(mapping)
    observed = source.observe(mapper)
    allocation = Allocation(mapping.default_cost_centre)
    delivery = deliver(_messages(source.kind, mapper, observed, allocation), settings, signer)
    return CollectorReport(
        observed.read,
        delivery.written,
        delivery.sent,
        delivery.spooled,
        rejected=tuple(observed.rejected),
        unmapped=dict(mapper.unmapped),
        skipped=tuple(observed.skipped),
        unit=source.unit,
        broker_error=delivery.broker_error,
        spool_error=delivery.spool_error,
        finance=tuple(allocation.warnings(settings.unallocated_warning_share, source.unit)),
    )


def _messages(kind: str, mapper: Mapper, observed: Observations, allocation: Allocation) -> Iterator[Message]:
    for reading in observed.readings:
        observation, service, quantity = reading.observation, reading.service, reading.quantity
        event = build_event(kind, mapper, observation, service, quantity, observed.day)
        if event is not None:  # an unmapped identifier, counted by the mapper
            allocation.count(observation.identifier, event.data.cost_centre)
            yield to_message(event)
