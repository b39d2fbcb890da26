"""The metering rules of the spec: from a period's usage in ClickHouse to billable quantities.

ClickHouse sums per municipality, cost centre and service over the period's days:
``event_sum`` (sum of quantities: the ``count`` meter), ``subject_days`` (distinct subjects per day,
summed: ``daily_distinct``) and ``daily_max_sum`` (largest quantity per subject and day, summed:
``daily_max``). The division by the number of days and the rounding happen here, in Decimal.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal

from billing_jobs.pricing import Usage
from chargeback.catalogue import Catalogue
from chargeback.clickhouse import ClickHouse
from chargeback.period import Period

QUANTITY_PLACES = Decimal("0.000001")


@dataclass(frozen=True)
class PeriodTotals:
    """One municipality × cost centre × service's sums over a period."""

    municipality: str
    cost_centre: str
    service: str
    event_sum: Decimal
    subject_days: int
    daily_max_sum: Decimal


def billable_quantity(meter: str, totals: PeriodTotals, days: int) -> Decimal:
    """The billable quantity of a period by the service's meter, 6 decimals half-up."""
    if meter == "count":
        value = totals.event_sum
    elif meter == "daily_distinct":
        value = Decimal(totals.subject_days) / Decimal(days)
    elif meter == "daily_max":
        value = totals.daily_max_sum / Decimal(days)
    else:
        raise ValueError(f"unknown meter: {meter}")
    return value.quantize(QUANTITY_PLACES, rounding=ROUND_HALF_UP)


PERIOD_TOTALS_SQL = """
SELECT municipality, cost_centre, service,
       sum(q_sum) AS event_sum, count() AS subject_days, sum(q_max) AS daily_max_sum
FROM
(
    SELECT municipality, cost_centre, service, day, subject,
           sum(quantity) AS q_sum, max(quantity) AS q_max
    FROM usage_events
    WHERE day >= %(first)s AND day <= %(last)s
    GROUP BY municipality, cost_centre, service, day, subject
) AS per_subject_day
GROUP BY municipality, cost_centre, service
ORDER BY municipality, cost_centre, service
"""


def read_period_totals(ch: ClickHouse, period: Period) -> list[PeriodTotals]:
    """The period's sums per municipality, cost centre and service, from ``usage_events``."""
    rows = ch.execute(PERIOD_TOTALS_SQL, {"first": period.first_day, "last": period.last_day})
    return [PeriodTotals(m, cc, s, Decimal(es), int(sd), Decimal(dm)) for m, cc, s, es, sd, dm in rows]


def period_usage(catalogue: Catalogue, totals: Collection[PeriodTotals], period: Period) -> list[Usage]:
    """Billable usage per municipality, cost centre and service; services unknown to the catalogue
    are kept so that pricing can name them."""
    usage = []
    for t in totals:
        meter = catalogue.service(t.service).meter if t.service in catalogue.service_ids else "count"
        usage.append(
            Usage(t.municipality, t.cost_centre, t.service, billable_quantity(meter, t, period.days))
        )
    return usage
