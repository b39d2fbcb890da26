"""TOPdesk's REST API as a ticket source: closed incidents from ``/tde/api/incidents``, fetched
as an operator (login name and application password, HTTP basic auth) instead of read from an export.

The adapter only fetches and flattens: ``tickets.py`` turns the incidents into observations with
the same rules and attributes as a TOPdesk CSV (number, category, priority, channel from the entry
type, the caller's department, opened / first response / closed times). TOPdesk pages by
``pageStart`` and ``pageSize`` and answers 206 while more pages follow, 200 on the last and 204
when there is nothing. ``closed`` decides: an incident that is not closed is counted as open.
"""

from __future__ import annotations

import base64
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode

from pydantic import SecretStr

from collectors.exports import Row, Table
from collectors.sources.rest import ApiError, Http
from collectors.sources.tickets import Layout

PAGE_SIZE = 1000  # TOPdesk allows up to 10,000; smaller pages keep each answer quick
# Each field of an incident, flattened to ``object.field``, as the ticket reader looks it up.
LAYOUT = Layout(
    "topdesk-api",
    number=("number",),
    category=("category.name",),
    priority=("priority.name",),
    channel=("entryType.name",),
    department=("caller.department.name",),
    opened=("callDate",),
    first_response=("responseDate",),
    closed=("closedDate", "closed"),  # closed without a closedDate is rejected, as in the CSV
)
_FIELDS = (
    *LAYOUT.number,
    *LAYOUT.category,
    *LAYOUT.priority,
    *LAYOUT.channel,
    *LAYOUT.department,
    *LAYOUT.opened,
    *LAYOUT.first_response,
    *LAYOUT.closed,
    "processingStatus.name",
)
_HINTS = {
    401: "check the operator's login name and application password (CHARGEBACK_TOPDESK_PASSWORD or _FILE)",
    403: "the operator needs read rights on incidents",
    404: "check the TOPdesk address (the part before /tde)",
}


class TopDesk:
    """One TOPdesk environment, read as an operator with an application password."""

    def __init__(
        self,
        url: str,
        user: str,
        password: SecretStr,
        *,
        page_size: int = PAGE_SIZE,
        http: Http | None = None,
    ) -> None:
        if page_size < 1:
            raise ValueError("the page size must be at least 1")
        self.url, self.page_size, self.http = url.rstrip("/"), page_size, http or Http()
        credentials = f"{user}:{password.get_secret_value()}".encode()
        self._authorization = "Basic " + base64.b64encode(credentials).decode("ascii")

    def incidents(self, closed_since: datetime | None = None) -> Iterator[tuple[str, Any]]:
        """Closed incidents (closed on or after ``closed_since``, if given), oldest closing first,
        each with where it came from (``URL: item N``, counted over all pages)."""
        endpoint = f"{self.url}/tde/api/incidents"
        query = "closed==true"
        if closed_since is not None:
            if closed_since.utcoffset() is None:
                raise ValueError("closed_since needs a time zone")
            query += f";closedDate=ge={closed_since.astimezone(UTC):%Y-%m-%dT%H:%M:%SZ}"
        start, count = 0, 0
        while True:
            parameters = {"pageStart": start, "pageSize": self.page_size, "query": query}
            # Oldest closing first: tickets closed while the run pages come last, none is skipped.
            url = f"{endpoint}?{urlencode({**parameters, 'sort': 'closedDate:asc'}, safe='=;:,')}"
            answer = self.http.request(
                "GET", url, headers={"Authorization": self._authorization}, hints=_HINTS
            )
            if answer.status == 204:
                return
            page = answer.body
            if not isinstance(page, list):
                raise ApiError(f"GET {url} answered HTTP {answer.status} without a list of incidents")
            for incident in page:
                count += 1
                yield f"{endpoint}: item {count}", incident
            if answer.status != 206:
                return
            if not page:
                raise ApiError(f"GET {url} answered HTTP 206 (more to come) with no incidents")
            start += len(page)

    def closed_incidents(self, closed_since: datetime | None = None) -> Table:
        """The closed incidents as a table of ``LAYOUT``'s fields, for ``observe_tickets``."""
        rows = [
            Row(where, flatten(incident))
            if isinstance(incident, dict)
            else Row(where, {}, "not a JSON object")
            for where, incident in self.incidents(closed_since)
        ]
        return Table(tuple(f.casefold() for f in _FIELDS), rows, is_json=True)


def flatten(incident: dict[str, Any]) -> dict[str, Any]:
    """An incident's fields as ``object.field`` columns (case-folded); the closing time of an
    incident whose ``closed`` is false (reopened) is left out, so it counts as open."""
    row: dict[str, Any] = {}
    for name in _FIELDS:
        value: Any = incident
        for part in name.split("."):
            value = value.get(part) if isinstance(value, dict) else None
        row[name.casefold()] = value
    if row["closed"] is False:
        row["closeddate"] = None
    return row
