"""Observations → usage events, with deterministic ids: the same observation, the same id.

Reading the exports the observations come from is ``collectors.exports``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from decimal import Decimal

from chargeback.events import EVENT_TYPE, SPECVERSION, UsageEvent
from chargeback.kafka import Message
from collectors.ids import event_id as observation_id
from collectors.mapping import Mapper

_CONTRACT = frozenset({"municipality", "cost_centre", "service", "subject", "quantity"})


@dataclass(frozen=True)
class Observation:
    """One thing a source saw: an entity, the identifier its cost centre comes from, and when."""

    entity: str  # serial, user, ticket number, folder: the event's subject
    identifier: str | None  # department, OU, folder; None: the source has no such field
    seen_at: datetime  # aware: the run's observation time, or the ticket's closing time
    key: tuple[str, ...] = ()  # further id parts when an entity is seen more than once (a SKU)
    attributes: Mapping[str, str | int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.seen_at.utcoffset() is None:
            raise ValueError(f"observation of {self.entity!r}: seen_at needs a time zone")
        if not self.entity.strip():
            raise ValueError("an observation needs an entity")


def build_event(
    kind: str,
    mapping: Mapper,
    observation: Observation,
    service: str,
    quantity: Decimal | int,
    day: date | None = None,
    attributes: Mapping[str, str | int] | None = None,
) -> UsageEvent | None:
    """The usage event of an observation, or None when its identifier is not mapped (the mapper
    counts it). ``day`` is the run's observation day for per-day readings; it is part of the id.

    A per-day reading's id also names its cost centre: a device seen under two cost centres on
    one day (moved between two runs) is two observations and counts in both (docs/contract.md,
    "From events to billable quantities"), while a re-run that sees it where it was sends the
    same id. One-off observations (a closed ticket) keep one id whatever their cost centre, so
    they are never counted twice.
    """
    cost_centre = mapping.cost_centre(observation.identifier)
    if cost_centre is None:
        return None
    extra = {**observation.attributes, **(attributes or {})}
    if clash := sorted(_CONTRACT & extra.keys()):
        raise ValueError(f"attributes may not replace the event's own fields: {', '.join(clash)}")
    municipality = mapping.municipality
    keys: tuple[str | date, ...] = (
        (*observation.key, cost_centre, day) if day is not None else observation.key
    )
    return UsageEvent.model_validate(
        {
            "specversion": SPECVERSION,
            "id": observation_id(kind, municipality, observation.entity, *keys),
            "source": f"urn:chargeback:collector:{municipality}:{kind}",
            "type": EVENT_TYPE,
            "time": observation.seen_at.astimezone(UTC),
            "data": {
                "municipality": municipality,
                "cost_centre": cost_centre,
                "service": service,
                "subject": observation.entity,
                "quantity": Decimal(quantity),
                **extra,
            },
        }
    )


def to_message(event: UsageEvent) -> Message:
    """The event as a message for the usage topic, keyed by its municipality."""
    return Message(event.data.municipality.encode(), event.to_json())
