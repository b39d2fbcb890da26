"""The metering rules of the spec: from a period's usage totals to billable quantities.

ClickHouse sums per municipality, cost centre and service over the period's days (the store's
``period_totals``): ``event_sum`` (sum of quantities: the ``count`` meter), ``subject_days``
(distinct subjects per day, summed: ``daily_distinct``) and ``daily_max_sum`` (largest quantity per
subject and day, summed: ``daily_max``). The division by the number of days and the rounding happen
here, in Decimal.
"""

from __future__ import annotations

from collections.abc import Collection
from decimal import Decimal

from billing_jobs.model import PeriodTotals, Usage
from chargeback.catalogue import Catalogue
from chargeback.money import round_quantity
from chargeback.period import Period


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
    return round_quantity(value)


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
