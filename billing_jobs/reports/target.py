"""The savings target: each member's IT cost of a baseline year, indexed to the report's year, less
the target share, against what final runs invoiced in that year and the forecast for the year.

Figures, per member (docs/finance.md, "The savings target"):

- indexed baseline = baseline × index[year] / index[baseline year], to öre half-up (the index of
  the latest year in the series on or before the report's year);
- target (the allowed cost) = indexed baseline × (1 − target share), to öre half-up;
- actual = lines of final runs of the year, corrections in the month they correct, less the new
  and extended services (catalogue ``introduced:`` after the baseline year, or listed in the
  baseline file), which are shown apart;
- forecast = actual ÷ the member's invoiced months × 12, to öre half-up;
- gap = forecast − target; gap % = gap ÷ target × 100, to 0.1 half-up.

The total row adds up the members of the baseline file; a member without a baseline is shown with
its actual and forecast and no target.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError

from billing_jobs.formats.html import page, table
from chargeback import yamlfile
from chargeback.catalogue import Catalogue, _exact
from chargeback.errors import UserError
from chargeback.money import cents, round_money

TENTH = Decimal("0.1")
_Money = Annotated[Decimal, BeforeValidator(_exact), Field(ge=0)]
_Index = Annotated[Decimal, BeforeValidator(_exact), Field(gt=0)]
_Share = Annotated[Decimal, BeforeValidator(_exact), Field(ge=0, lt=1)]


class BaselineError(UserError):
    """A baseline file that cannot be used."""

    code = "baseline.invalid"


class Baseline(BaseModel):
    """The savings target's baseline file (docs/finance.md shows one)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    baseline_year: int = Field(ge=1970, le=9999)
    target_share: _Share = Decimal("0.10")
    index: dict[int, _Index]
    members: dict[str, _Money] = Field(min_length=1)
    new_services: tuple[str, ...] = ()

    def index_for(self, year: int) -> tuple[int, Decimal]:
        """The index of the latest year of the series on or before ``year``, and that year."""
        years = [y for y in self.index if y <= year]
        if not years:
            raise BaselineError(f"the index series has no year on or before {year}")
        chosen = max(years)
        return chosen, self.index[chosen]


def load_baseline(path: Path, catalogue: Catalogue | None = None) -> Baseline:
    """Read and check a baseline file; the first mistake is named with its line."""
    try:
        doc = yamlfile.load(path)
    except yamlfile.YamlFileError as exc:
        raise BaselineError(str(exc)) from exc
    if doc.duplicates:
        line, message = doc.duplicates[0]
        raise BaselineError(f"{path}:{line}: {message}")
    if not isinstance(doc.data, dict):
        raise BaselineError(f"{path}:1: a baseline file is a mapping of baseline_year, index, members, ...")
    try:
        baseline = Baseline.model_validate(doc.data)
    except ValidationError as exc:
        # A misspelt field is also a missing one: name the misspelling.
        error = min(exc.errors(include_url=False), key=lambda e: e["type"] != "extra_forbidden")
        # The YAML keeps mapping keys as text (index years, member codes): look them up as such.
        loc = tuple(
            str(part) if i and error["loc"][0] in ("index", "members") else part
            for i, part in enumerate(error["loc"])
        )
        message = str(error["msg"]).removeprefix("Value error, ")
        if error["type"] == "missing":
            message = f"is missing; add {loc[-1]}:"
        elif error["type"] == "extra_forbidden":
            message = (
                "is not a field of a baseline file "
                "(baseline_year, target_share, index, members, new_services)"
            )
        where = yamlfile.field_path(loc) or "baseline"
        raise BaselineError(f"{path}:{doc.line_of(loc)}: {where}: {message}") from exc
    if baseline.baseline_year not in baseline.index:
        raise BaselineError(
            f"{path}:{doc.line_of(('index',))}: index: needs the baseline year {baseline.baseline_year}"
        )
    if catalogue is not None:
        for code in baseline.members:
            if code not in catalogue.municipality_codes:
                raise BaselineError(
                    f"{path}:{doc.line_of(('members', code))}: members: {code} is not a municipality of the "
                    "catalogue"
                )
        for i, service in enumerate(baseline.new_services):
            if service not in catalogue.service_ids:
                raise BaselineError(
                    f"{path}:{doc.line_of(('new_services', i))}: new_services: {service} is not a service "
                    "of the catalogue"
                )
    return baseline


def new_services(baseline: Baseline, catalogue: Catalogue) -> tuple[str, ...]:
    """The services kept apart: introduced after the baseline year, or listed in the file."""
    after = date(baseline.baseline_year, 12, 31)
    introduced = {s.id for s in catalogue.services if s.introduced is not None and s.introduced > after}
    return tuple(sorted(introduced | set(baseline.new_services)))


@dataclass(frozen=True)
class TargetRow:
    """One member's (or the total's, ``municipality`` ``"total"``) figures for the year."""

    municipality: str
    name: str
    baseline: Decimal | None
    indexed: Decimal | None
    target: Decimal | None
    actual: Decimal
    new_services: Decimal
    months: int
    forecast: Decimal
    gap: Decimal | None
    gap_pct: Decimal | None


@dataclass(frozen=True)
class TargetReport:
    """The year's report: the index used, the services kept apart, a row per member and the total."""

    year: int
    baseline_year: int
    index_year: int
    index_base: Decimal
    index: Decimal
    target_share: Decimal
    excluded: tuple[str, ...]
    rows: tuple[TargetRow, ...]
    total: TargetRow
    new_by_service: dict[str, Decimal]


def gap_percent(gap: Decimal, target: Decimal) -> Decimal | None:
    """The gap as a percentage of the target, 0.1 half-up (None for a target of 0)."""
    if not target:
        return None
    return (gap * 100 / target).quantize(TENTH, ROUND_HALF_UP)


def target_report(
    baseline: Baseline,
    catalogue: Catalogue,
    year: int,
    actual: Mapping[tuple[str, str], Mapping[str, Decimal]],
) -> TargetReport:
    """The report from the baseline, the catalogue and the final runs' amounts per (municipality,
    service) and month of ``year`` (the store's ``actual_by_month``)."""
    index_year, index = baseline.index_for(year)
    index_base = baseline.index[baseline.baseline_year]
    excluded = new_services(baseline, catalogue)
    names = {m.code: m.name for m in catalogue.municipalities}
    comparable: dict[str, Decimal] = {}
    apart: dict[str, Decimal] = {}
    months: dict[str, set[str]] = {}
    new_by_service: dict[str, Decimal] = {}
    for (municipality, service), per_month in actual.items():
        amount = sum(per_month.values(), Decimal(0))
        months.setdefault(municipality, set()).update(p for p, a in per_month.items() if a)
        if service in excluded:
            apart[municipality] = apart.get(municipality, Decimal(0)) + amount
            new_by_service[service] = new_by_service.get(service, Decimal(0)) + amount
        else:
            comparable[municipality] = comparable.get(municipality, Decimal(0)) + amount
    rows = []
    for code in sorted(set(baseline.members) | set(comparable) | set(apart)):
        done = comparable.get(code, Decimal(0))
        invoiced = len(months.get(code, ()))
        forecast = round_money(done / invoiced * 12) if invoiced else Decimal("0.00")
        base = baseline.members.get(code)
        indexed = target = gap = None
        if base is not None:
            indexed = round_money(base * index / index_base)
            target = round_money(indexed * (1 - baseline.target_share))
            gap = forecast - target
        rows.append(
            TargetRow(
                code,
                names.get(code, ""),
                base,
                indexed,
                target,
                done,
                apart.get(code, Decimal(0)),
                invoiced,
                forecast,
                gap,
                gap_percent(gap, target) if gap is not None and target is not None else None,
            )
        )
    counted = [r for r in rows if r.baseline is not None]

    def total(values: Sequence[Decimal | None]) -> Decimal:
        return sum((v for v in values if v is not None), Decimal(0))

    total_target = total([r.target for r in counted])
    total_forecast = total([r.forecast for r in counted])
    total_gap = total_forecast - total_target
    total_row = TargetRow(
        "total",
        "",
        total([r.baseline for r in counted]),
        total([r.indexed for r in counted]),
        total_target,
        total([r.actual for r in counted]),
        total([r.new_services for r in counted]),
        max((r.months for r in counted), default=0),
        total_forecast,
        total_gap,
        gap_percent(total_gap, total_target),
    )
    return TargetReport(
        year,
        baseline.baseline_year,
        index_year,
        index_base,
        index,
        baseline.target_share,
        excluded,
        tuple(rows),
        total_row,
        dict(sorted(new_by_service.items())),
    )


# Narrower type and cells than the run report: the steering reports fit the width of an A4 page
# less its 10 mm margins (190 mm = 718 CSS px), on screen and in print.
A4 = (
    "<style>@page{size:A4;margin:10mm}body{margin:0;max-width:190mm;font-size:11px}"
    "th,td{padding:.2rem .35rem}h1{font-size:1.3rem}</style>\n"
)

HEADER = (
    "municipality",
    "name",
    "baseline",
    "indexed_baseline",
    "target",
    "actual",
    "new_services",
    "months",
    "forecast",
    "gap",
    "gap_pct",
)


def _money(value: Decimal | None) -> str:
    return "" if value is None else format(cents(value), "f")


def row_values(row: TargetRow) -> list[object]:
    """A row as the table and CSV show it (money with two decimals, empty where there is none)."""
    return [
        row.municipality,
        row.name,
        _money(row.baseline),
        _money(row.indexed),
        _money(row.target),
        _money(row.actual),
        _money(row.new_services),
        row.months,
        _money(row.forecast),
        _money(row.gap),
        "" if row.gap_pct is None else str(row.gap_pct),
    ]


def document(report: TargetReport) -> dict[str, Any]:
    """The report as one JSON document."""

    def row(r: TargetRow) -> dict[str, Any]:
        return {
            key: (value if value != "" else None) for key, value in zip(HEADER, row_values(r), strict=True)
        }

    return {
        "year": report.year,
        "baseline_year": report.baseline_year,
        "index_year": report.index_year,
        "index_base": str(report.index_base),
        "index": str(report.index),
        "target_share": str(report.target_share),
        "new_services": list(report.excluded),
        "new_services_actual": {s: _money(a) for s, a in report.new_by_service.items()},
        "members": [row(r) for r in report.rows],
        "total": row(report.total),
    }


def _percent(share: Decimal) -> str:
    return f"{(share * 100).normalize():f} %"


def target_page(report: TargetReport) -> str:
    """The report as a self-contained HTML page, narrow enough for an A4 page."""
    rows = [*report.rows, report.total]
    body = table(
        ["Member", "Baseline", "Indexed", "Target", "Actual", "Forecast", "Gap", "Gap %"],
        [
            [
                f"{r.municipality} {r.name}".strip() if r.municipality != "total" else "Total",
                *(None if v is None else cents(v) for v in (r.baseline, r.indexed, r.target, r.actual)),
                cents(r.forecast),
                None if r.gap is None else cents(r.gap),
                r.gap_pct,
            ]
            for r in rows
        ],
    )
    if report.excluded:
        body += "<h2>New and extended services (not in the comparison)</h2>\n" + table(
            ["Service", "Actual"],
            [[s, cents(report.new_by_service.get(s, Decimal(0)))] for s in report.excluded],
        )
    return page(
        f"Savings target {report.year}",
        f"Baseline {report.baseline_year} indexed {report.index_base} → {report.index} "
        f"(index of {report.index_year}), target −{_percent(report.target_share)}; actual = final runs "
        f"of {report.year}; forecast = actual ÷ invoiced months × 12; gap = forecast − target; "
        "amounts excl. VAT.",
        A4 + body,
    )
