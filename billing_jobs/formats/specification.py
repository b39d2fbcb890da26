"""The specification of a run (docs/contract.md, "Explaining a charge"): per member, every subject
behind each of its lines, as CSV and as an XLSX workbook with a sheet per service.

A subject row says who or what was counted (device serial, name and primary user; licensed user;
share path; ticket number with channel and closing time), under which cost centre, and how much it
counted: days (``daily_distinct``), unit-days such as GiB-days (``daily_max``) or quantity
(``count``). Each line ends with a ``line`` row: the subjects' sum, the days of the month, and the
billed quantity, which is the sum ÷ days rounded as the line (6 decimals, half-up), or the sum for
``count``. When the usage stored now no longer adds up to a line (usage arrived after the run was
priced) the line row says so in ``note``; it is never hidden.

A draft run's specification is a preview (finance reads it before finalising): its files are named
``<run>.<municipality>.draft.specification.csv`` / ``.xlsx`` and each sheet of the workbook starts with
the line "UTKAST – körningen är inte slutlig" (in bokmål for a NOK catalogue); the CSV itself stays
as it is, for programs that read it. ``specification_names`` is the one place the files are named:
the export and the member report's links use it.
"""

from __future__ import annotations

import csv
import io
import re
import zipfile
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal

from billing_jobs.formats.local import WORDS
from billing_jobs.model import DRAFT, Line, Run, SubjectUsage
from chargeback.catalogue import Catalogue, Distributed, Flat
from chargeback.money import quantity, round_quantity
from chargeback.period import Period

COLUMNS = (
    "municipality",
    "service",
    "service_name",
    "cost_centre",
    "row",
    "subject",
    "name",
    "user",
    "channel",
    "closed",
    "counted",
    "counted_unit",
    "days_in_month",
    "quantity",
    "unit",
    "amount",
    "note",
)
# The workbook's column titles for people reading Norwegian bokmål (a NOK catalogue's report
# locale); the CSV keeps COLUMNS, the same for every deployment, for programs that read it.
COLUMNS_NB = (
    "Kommune",
    "Tjeneste",
    "Tjenestenavn",
    "Ansvar",
    "Rad",
    "Objekt",
    "Navn",
    "Bruker",
    "Kanal",
    "Avsluttet",
    "Telt",
    "Telt i",
    "Dager i måneden",
    "Mengde",
    "Enhet",
    "Beløp",
    "Merknad",
)
# ZIP entries get this fixed time, so the same run gives the same bytes.
_ZIP_TIME = (1980, 1, 1, 0, 0, 0)


def specification_names(run: Run, municipality: str) -> tuple[str, str]:
    """The member's specification files (XLSX, CSV): ``<run>.<municipality>.specification.xlsx`` and
    ``.csv``, a draft run's ``<run>.<municipality>.draft.specification.xlsx`` and ``.csv``."""
    stem = f"{run.run_id}.{municipality}.{'draft.' if run.status == DRAFT else ''}specification"
    return f"{stem}.xlsx", f"{stem}.csv"


@dataclass(frozen=True)
class Row:
    """One row of the specification: a subject, or a line's sum (``row`` = ``line``)."""

    municipality: str
    service: str
    service_name: str
    cost_centre: str
    row: str
    subject: str = ""
    name: str = ""
    user: str = ""
    channel: str = ""
    closed: str = ""
    counted: Decimal | None = None
    counted_unit: str = ""
    days_in_month: int | None = None
    quantity: Decimal | None = None
    unit: str = ""
    amount: Decimal | None = None
    note: str = ""

    def values(self) -> tuple[object, ...]:
        return tuple(getattr(self, c) for c in COLUMNS)


def counted(meter: str, subject: SubjectUsage) -> Decimal:
    """What a subject adds to its line before the division by days: days, unit-days or quantity."""
    if meter == "daily_distinct":
        return Decimal(subject.days)
    if meter == "daily_max":
        return subject.max_sum
    return subject.quantity_sum


def line_quantity(meter: str, total: Decimal, days: int) -> Decimal:
    """A line's billable quantity from its subjects' sum: ÷ days for the daily meters, 6 decimals."""
    return round_quantity(total if meter == "count" else total / Decimal(days))


def specification_rows(
    run: Run,
    lines: Sequence[Line],
    subjects: Sequence[SubjectUsage],
    catalogue: Catalogue,
    municipality: str,
) -> list[Row]:
    """A member's rows: per line (in line order) its subjects, largest first, then its sum."""
    period = Period.parse(run.period)
    days = period.days
    by_line: dict[tuple[str, str], list[SubjectUsage]] = defaultdict(list)
    for s in subjects:
        if s.municipality == municipality:
            by_line[(s.cost_centre, s.service)].append(s)
    price_list = catalogue.price_list_for(period.first_day)
    rows: list[Row] = []
    for line in lines:
        if line.municipality != municipality:
            continue
        known = line.service in catalogue.service_ids
        name = catalogue.service(line.service).name if known else ""
        meter = catalogue.service(line.service).meter if known else "count"
        base = Row(municipality, line.service, name, line.cost_centre, "line")
        unit_word = {"daily_distinct": "days", "daily_max": f"{line.unit}-days"}.get(meter, line.unit)
        total_row = dict(unit=line.unit, quantity=line.quantity, amount=line.amount, days_in_month=days)
        if line.corrects_period is not None:
            note = f"correction of {line.corrects_period}: see that month's specification"
            rows.append(_with(base, note=note, **total_row))
            continue
        price = price_list.prices.get(line.service)
        if isinstance(price, Flat | Distributed):
            note = "flat fee per month" if isinstance(price, Flat) else f"share by key {price.key}"
            rows.append(_with(base, note=note, **total_row))
            continue
        own = sorted(
            by_line.get((line.cost_centre, line.service), []), key=lambda s: (-counted(meter, s), s.subject)
        )
        for s in own:
            rows.append(
                _with(
                    base,
                    row="subject",
                    subject=s.subject,
                    name=s.detail("subject_name") or s.detail("device_name"),
                    user=s.detail("subject_user"),
                    channel=s.detail("channel"),
                    closed=s.detail("closed"),
                    counted=counted(meter, s),
                    counted_unit=unit_word,
                    unit=line.unit,
                )
            )
        total = sum((counted(meter, s) for s in own), Decimal(0))
        note = ""
        if line_quantity(meter, total, days) != line.quantity:
            note = (
                f"the subjects stored now add up to {quantity(line_quantity(meter, total, days))}, not the "
                f"billed {quantity(line.quantity)}: usage arrived after the run was priced"
            )
        elif line.quantity == 0:
            note = "minimum charge without usage"
        rows.append(_with(base, counted=total, counted_unit=unit_word, note=note, **total_row))
    return rows


def _with(base: Row, **changes: object) -> Row:
    return Row(**{**base.__dict__, **changes})


def render_specification_csv(rows: Sequence[Row]) -> bytes:
    """The rows as CSV (comma, dot decimals, UTF-8), a section per service in line order."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(COLUMNS)
    for r in rows:
        writer.writerow(
            ["" if v is None else quantity(v) if isinstance(v, Decimal) else v for v in r.values()]
        )
    return out.getvalue().encode()


def render_specification_xlsx(
    run: Run, rows: Sequence[Row], titles: Sequence[str] = COLUMNS, *, language: str = "sv"
) -> bytes:
    """The rows as an XLSX workbook, a sheet per service (numbers as numbers), same bytes each time;
    ``titles`` head the columns (``COLUMNS_NB`` in bokmål). A draft run's sheets start with a line
    that says so, in ``language`` (``sv``, ``nb``), above the titles."""
    from openpyxl import Workbook
    from openpyxl.styles import Font

    draft_title = WORDS[language]["draft_title"] if run.status == DRAFT else None

    workbook = Workbook()
    workbook.remove(workbook.worksheets[0])
    by_service: dict[str, list[Row]] = defaultdict(list)
    for r in rows:
        by_service[r.service].append(r)
    for service_id in sorted(by_service) or ["-"]:
        sheet = workbook.create_sheet(service_id[:31])
        if draft_title is not None:
            sheet.append([draft_title])
            sheet["A1"].font = Font(bold=True)
        sheet.append(list(titles))
        for r in by_service.get(service_id, []):
            sheet.append([_cell(v) for v in r.values()])
        top = 2 if draft_title is not None else 1  # the row of the column titles
        sheet.freeze_panes = f"A{top + 1}"
        for cells in sheet.iter_cols(min_row=top):
            # Wide enough for the longest value (at most 60 characters), so the sheet reads as is.
            longest = max(len(str(c.value)) for c in cells if c.value is not None)
            sheet.column_dimensions[cells[0].column_letter].width = min(60, longest + 2)
    moment = run.created_at.replace(tzinfo=None)
    workbook.properties.created = moment
    workbook.properties.creator = "chargeback"
    raw = io.BytesIO()
    workbook.save(raw)
    return _fixed(raw.getvalue(), moment.strftime("%Y-%m-%dT%H:%M:%SZ"))


def _cell(value: object) -> object:
    # openpyxl writes a Decimal as its exact digits in a number cell.
    return value.normalize() if isinstance(value, Decimal) else value


def _fixed(body: bytes, stamp: str) -> bytes:
    # openpyxl stamps the save time into docProps/core.xml and zip entries carry the clock: both are
    # set to the run's time, so exporting the same run again gives the same bytes.
    out = io.BytesIO()
    with (
        zipfile.ZipFile(io.BytesIO(body)) as source,
        zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as target,
    ):
        for info in source.infolist():
            data = source.read(info.filename)
            if info.filename == "docProps/core.xml":
                data = re.sub(
                    rb"(<dcterms:modified[^>]*>)[^<]*(</dcterms:modified>)",
                    rb"\g<1>" + stamp.encode() + rb"\g<2>",
                    data,
                )
            entry = zipfile.ZipInfo(info.filename, _ZIP_TIME)
            entry.compress_type = zipfile.ZIP_DEFLATED
            target.writestr(entry, data)
    return out.getvalue()
