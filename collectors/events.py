"""Observations → usage events, with deterministic ids: the same observation, the same id."""

from __future__ import annotations

import hashlib
import json
import re
from datetime import datetime
from decimal import Decimal
from typing import Any

from chargeback.events import format_quantity
from chargeback.kafka import Message

_UNSAFE = re.compile(r"[^0-9A-Za-z_.:-]+")
MAX_ID = 200


def event_id(*parts: str) -> str:
    """A readable id from its parts (kind, municipality, entity, day or key); long ids keep a
    readable prefix and a hash of the whole."""
    text = "-".join(_UNSAFE.sub("_", p.strip()) for p in parts)
    if len(text) <= MAX_ID:
        return text
    digest = hashlib.sha256(text.encode()).hexdigest()[:16]
    return f"{text[: MAX_ID - 17]}-{digest}"


def usage_message(
    *,
    eid: str,
    municipality: str,
    kind: str,
    when: datetime,
    cost_centre: str,
    service: str,
    subject: str,
    quantity: Decimal,
    attributes: dict[str, Any] | None = None,
) -> Message:
    """A CloudEvent for the usage topic, keyed by the municipality."""
    body = {
        "specversion": "1.0",
        "id": eid,
        "source": f"urn:chargeback:collector:{municipality}:{kind}",
        "type": "chargeback.usage.v1",
        "time": when.isoformat().replace("+00:00", "Z"),
        "data": {
            "municipality": municipality,
            "cost_centre": cost_centre,
            "service": service,
            "subject": subject,
            "quantity": format_quantity(quantity),
            **(attributes or {}),
        },
    }
    return Message(
        municipality.encode(), json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode()
    )
