"""Usage alerts of a month: what finance should look at before finalising it.

- **change**: a member's billable quantity of a service (by the metering rules, all cost centres)
  changed from the previous month by more than the threshold: |now − before| > threshold × before.
  Usage where the previous month had none is an alert too (``change_pct`` None: new usage).
- **silent**: a source (the collector named in the events' ``source``) that sent events in the
  month or the one before has sent none for more than N working days up to the end of the month
  (or up to today, in the month itself). Working days are Monday to Friday; with ``holidays: SE``
  Swedish public holidays and the eves that are days off (Midsummer, Christmas and New Year's
  Eve) are not working days.

Thresholds come from the catalogue's ``alerts:`` section, else from the settings, else the
defaults (±25 %, 3 working days). ``month_alerts`` is the one function every caller uses: the
``report alerts`` command, the Prometheus textfile, the ``billing run`` summary and the member
reports' data-quality box (as ``alert_notes``).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from billing_jobs.metering import period_usage
from billing_jobs.model import CHANGE, SILENT, Alert, Usage
from billing_jobs.store import BillingStore
from chargeback.catalogue import Catalogue
from chargeback.money import quantity
from chargeback.period import Period

DEFAULT_CHANGE = Decimal("0.25")
DEFAULT_SILENT_WORKING_DAYS = 3
TENTH = Decimal("0.1")


@dataclass(frozen=True)
class Thresholds:
    """When a change or a silence is an alert."""

    change: Decimal = DEFAULT_CHANGE
    per_service: Mapping[str, Decimal] | None = None
    silent_working_days: int = DEFAULT_SILENT_WORKING_DAYS
    holidays: str = "SE"

    def change_for(self, service: str) -> Decimal:
        """The change threshold of a service (its own, else the general one)."""
        return (self.per_service or {}).get(service, self.change)


def thresholds_for(
    catalogue: Catalogue, change: Decimal | None = None, silent_working_days: int | None = None
) -> Thresholds:
    """The catalogue's ``alerts:`` section, else ``change``/``silent_working_days`` (the
    settings), else the defaults."""
    section = catalogue.alerts
    return Thresholds(
        change=(section.change if section and section.change is not None else None)
        or change
        or DEFAULT_CHANGE,
        per_service=dict(section.services) if section else {},
        silent_working_days=next(
            v
            for v in (
                section.silent_working_days if section else None,
                silent_working_days,
                DEFAULT_SILENT_WORKING_DAYS,
            )
            if v is not None
        ),
        holidays=section.holidays if section else "SE",
    )


# --- working days ---------------------------------------------------------------------------------


def easter_sunday(year: int) -> date:
    """Easter Sunday of the Gregorian calendar (the anonymous Gregorian algorithm)."""
    a, b, c = year % 19, year // 100, year % 100
    d, e = b // 4, b % 4
    g = (8 * b + 13) // 25
    h = (19 * a + b - d - g + 15) % 30
    i, k = c // 4, c % 4
    l_ = (32 + 2 * e + 2 * i - h - k) % 7
    m = (a + 11 * h + 19 * l_) // 433
    month = (h + l_ - 7 * m + 90) // 25
    day = (h + l_ - 7 * m + 33 * month + 19) % 32
    return date(year, month, day)


def swedish_holidays(year: int) -> frozenset[date]:
    """Sweden's public holidays of a year (lag 1989:253) and the eves that are days off
    (Midsummer, Christmas and New Year's Eve)."""
    easter = easter_sunday(year)
    midsummer_eve = next(date(year, 6, d) for d in range(19, 26) if date(year, 6, d).weekday() == 4)
    all_saints = next(
        day for day in (date(year, 10, 31) + timedelta(days=n) for n in range(7)) if day.weekday() == 5
    )
    return frozenset(
        {
            date(year, 1, 1),  # New Year's Day
            date(year, 1, 6),  # Epiphany
            easter - timedelta(days=2),  # Good Friday
            easter,
            easter + timedelta(days=1),  # Easter Monday
            date(year, 5, 1),
            easter + timedelta(days=39),  # Ascension Day
            easter + timedelta(days=49),  # Whit Sunday
            date(year, 6, 6),  # National Day
            midsummer_eve,
            midsummer_eve + timedelta(days=1),  # Midsummer Day
            all_saints,
            date(year, 12, 24),
            date(year, 12, 25),
            date(year, 12, 26),
            date(year, 12, 31),
        }
    )


def is_working_day(day: date, holidays: str = "SE") -> bool:
    """Monday to Friday, and (``holidays`` ``SE``) not a Swedish holiday or day-off eve."""
    if day.weekday() >= 5:
        return False
    return not (holidays == "SE" and day in swedish_holidays(day.year))


def working_days_after(last: date, until: date, holidays: str = "SE") -> int:
    """The working days after ``last`` up to and including ``until``."""
    count, day = 0, last + timedelta(days=1)
    while day <= until:
        count += is_working_day(day, holidays)
        day += timedelta(days=1)
    return count


# --- the alerts -----------------------------------------------------------------------------------


def _per_member(usage: Iterable[Usage]) -> dict[tuple[str, str], Decimal]:
    totals: dict[tuple[str, str], Decimal] = {}
    for u in usage:
        key = (u.municipality, u.service)
        totals[key] = totals.get(key, Decimal(0)) + u.quantity
    return totals


def change_alerts(before: Sequence[Usage], now: Sequence[Usage], thresholds: Thresholds) -> list[Alert]:
    """Month-over-month changes beyond the threshold, per municipality and service, sorted."""
    old, new = _per_member(before), _per_member(now)
    alerts = []
    for municipality, service in sorted(set(old) | set(new)):
        a, b = old.get((municipality, service), Decimal(0)), new.get((municipality, service), Decimal(0))
        limit = thresholds.change_for(service)
        if a == 0 and b == 0:
            continue
        if a == 0 or abs(b - a) > limit * a:
            pct = None if a == 0 else ((b - a) * 100 / a).quantize(TENTH, ROUND_HALF_UP)
            alerts.append(
                Alert(
                    CHANGE,
                    municipality,
                    service,
                    before=a,
                    now=b,
                    change_pct=pct,
                    threshold_pct=(limit * 100).normalize(),
                )
            )
    return alerts


def silent_alerts(
    last_days: Iterable[tuple[str, str, date]], until: date, thresholds: Thresholds
) -> list[Alert]:
    """Sources silent for more than the allowed working days up to ``until``, by municipality and
    source. ``last_days``: (source, municipality, last day with events)."""
    alerts = []
    for source, municipality, last in sorted(last_days, key=lambda x: (x[1], x[0])):
        silent = working_days_after(last, until, thresholds.holidays)
        if silent > thresholds.silent_working_days:
            alerts.append(
                Alert(
                    SILENT,
                    municipality,
                    source=source,
                    last_day=last,
                    silent_working_days=silent,
                    allowed_working_days=thresholds.silent_working_days,
                )
            )
    return alerts


def month_alerts(
    store: BillingStore, catalogue: Catalogue, period: Period, today: date, thresholds: Thresholds
) -> list[Alert]:
    """The month's alerts: changes against the previous month, then silent sources (up to the end
    of the month, or ``today`` while the month lasts)."""
    previous = period.previous()
    before = period_usage(catalogue, store.period_totals(previous), previous)
    now = period_usage(catalogue, store.period_totals(period), period)
    until = min(period.last_day, today)
    last_days = store.source_last_days(previous.first_day, until)
    return [*change_alerts(before, now, thresholds), *silent_alerts(last_days, until, thresholds)]


def alert_notes(alerts: Iterable[Alert], municipalities: Iterable[str] = ()) -> tuple[Alert, ...]:
    """The alerts as the reports show them (``DataQuality.alerts``), in the order given; with
    ``municipalities`` only theirs."""
    only = set(municipalities)
    return tuple(a for a in alerts if not only or a.municipality in only)


def alert_document(period: Period, alert: Alert) -> dict[str, Any]:
    """An alert as JSON."""
    if alert.kind == SILENT:
        return {
            "period": str(period),
            "kind": SILENT,
            "municipality": alert.municipality,
            "source": alert.source,
            "last_day": str(alert.last_day),
            "silent_working_days": alert.silent_working_days,
            "allowed_working_days": alert.allowed_working_days,
            "message": alert.message,
        }
    return {
        "period": str(period),
        "kind": CHANGE,
        "municipality": alert.municipality,
        "service": alert.service,
        "before": quantity(alert.before or Decimal(0)),
        "now": quantity(alert.now or Decimal(0)),
        "change_pct": None if alert.change_pct is None else str(alert.change_pct),
        "threshold_pct": str(alert.threshold_pct),
        "message": alert.message,
    }


def prometheus_text(period: Period, alerts: Sequence[Alert]) -> str:
    """The alerts in the Prometheus text format, for node_exporter's textfile collector:
    ``chargeback_usage_alerts`` (count per kind), ``chargeback_usage_change_ratio`` per member and
    service beyond its threshold (``NaN``-free: new usage is +Inf) and
    ``chargeback_source_silent_workdays`` per silent source."""

    def label(value: str) -> str:
        return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")

    p = label(str(period))
    lines = [
        "# HELP chargeback_usage_alerts Usage alerts of the month, by kind",
        "# TYPE chargeback_usage_alerts gauge",
    ]
    for kind in (CHANGE, SILENT):
        count = sum(a.kind == kind for a in alerts)
        lines.append(f'chargeback_usage_alerts{{period="{p}",kind="{kind}"}} {count}')
    lines += [
        "# HELP chargeback_usage_change_ratio Month-over-month change of a member's usage of a service "
        "beyond its threshold (0.6 = +60 %)",
        "# TYPE chargeback_usage_change_ratio gauge",
    ]
    for a in alerts:
        if a.kind == CHANGE:
            value = "+Inf" if a.change_pct is None else f"{(a.change_pct / 100).normalize():f}"
            lines.append(
                f'chargeback_usage_change_ratio{{period="{p}",municipality="{label(a.municipality)}",'
                f'service="{label(a.service)}"}} {value}'
            )
    lines += [
        "# HELP chargeback_source_silent_workdays Working days a source has sent no events, "
        "beyond the allowed",
        "# TYPE chargeback_source_silent_workdays gauge",
    ]
    for a in alerts:
        if a.kind == SILENT:
            lines.append(
                f'chargeback_source_silent_workdays{{period="{p}",municipality="{label(a.municipality)}",'
                f'source="{label(a.source)}"}} {a.silent_working_days}'
            )
    return "\n".join(lines) + "\n"
