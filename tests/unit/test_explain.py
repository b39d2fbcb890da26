"""``billing explain``: each price model's explanation written out by hand, with its own numbers."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest

from billing_jobs.explain import (
    PHRASES,
    ExplanationMismatch,
    _correction,
    explain_run,
    render_text,
    to_json,
    totals_of,
)
from billing_jobs.metering import period_usage
from billing_jobs.model import DRAFT, Line, Run, SubjectUsage
from billing_jobs.pricing import price_period
from chargeback.catalogue import parse_catalogue
from chargeback.period import Period

CATALOGUE = parse_catalogue(
    """
currency: SEK
timezone: Europe/Stockholm
municipalities:
  - {code: "2121", name: Ovanåker, inhabitants: 11300}
  - {code: "2132", name: Nordanstig, inhabitants: 12000}
  - {code: "2161", name: Ljusdal, inhabitants: 19000}
  - {code: "2182", name: Söderhamn, inhabitants: 25400}
  - {code: "2183", name: Bollnäs, inhabitants: 26500}
  - {code: "2184", name: Hudiksvall, inhabitants: 37800}
services:
  - {id: pc-standard, name: Standarddator, meter: daily_distinct, unit: st, vat_rate: "0.25", account: "3041"}
  - {id: storage-file, name: Fillagring, meter: daily_max, unit: GiB, vat_rate: "0.25", account: "3042"}
  - {id: ticket-incident, name: Ärende incident, meter: count, unit: st, vat_rate: "0.25", account: "3043"}
  - {id: m365-e3, name: Microsoft 365 E3, meter: daily_distinct, unit: st, vat_rate: "0.25", account: "3044"}
  - {id: soc-shared, name: Gemensam SOC, meter: count, unit: mån, vat_rate: "0.25", account: "3045"}
price_lists:
  - version: "2026"
    valid_from: 2026-01-01
    prices:
      pc-standard: {model: per_unit, unit_price: "310.00", minimum: "1000.00"}
      storage-file: {model: package, package_size: "100", package_price: "450.00"}
      ticket-incident:
        model: tiered_graduated
        tiers: [{up_to: "2", unit_price: "95.00"}, {up_to: null, unit_price: "80.00"}]
      m365-e3:
        model: tiered_volume
        tiers: [{up_to: "3", unit_price: "260.00"}, {up_to: null, unit_price: "240.00"}]
      soc-shared: {model: distributed, annual_amount: "1200000.00", key: inhabitants}
  - version: "2027"
    valid_from: 2027-01-01
    index_from: "2026"
    index: "1.032"
""",
    "catalogue.yaml",
)
OCT, JAN = Period(2026, 10), Period(2027, 1)
AT = datetime(2026, 11, 2, tzinfo=UTC)


def subject(
    cc: str, service: str, name: str, days: int, quantity: str = "0", max_sum: str = "0", **details: str
) -> SubjectUsage:
    return SubjectUsage(
        "2183", cc, service, name, days, Decimal(quantity), Decimal(max_sum), tuple(sorted(details.items()))
    )


SUBJECTS = [
    subject("BUF", "ticket-incident", "I-1001", 1, "1", "1", channel="phone", closed="2026-10-05T08:00:00Z"),
    subject("BUF", "ticket-incident", "I-1002", 1, "1", "1", channel="e-mail", closed="2026-10-06T09:00:00Z"),
    subject("SOC", "ticket-incident", "I-1003", 1, "1", "1", channel="portal", closed="2026-10-07T10:00:00Z"),
    subject("SOC", "ticket-incident", "I-1004", 1, "1", "1", channel="phone", closed="2026-10-08T11:00:00Z"),
    *(
        subject("BUF", "m365-e3", f"user{i}@bollnas.se", 31, "31", "31", subject_name=f"User {i}")
        for i in range(1, 5)
    ),
    subject("BUF", "storage-file", "\\\\fs01\\buf", 31, "4650", "4650"),
    subject("BUF", "storage-file", "\\\\fs01\\buf-arkiv", 16, "1600", "1600"),
    subject(
        "BUF", "pc-standard", "PC0042", 31, "31", "31", device_name="BUF-PC42", subject_user="anna@bollnas.se"
    ),
]


def run_of(period: Period, subjects: list[SubjectUsage]) -> tuple[Run, list[Line]]:
    lines = price_period(CATALOGUE, period, period_usage(CATALOGUE, totals_of(subjects), period))
    run = Run(f"{period}-abc", str(period), (), DRAFT, "x", "SEK", "c" * 64, "u" * 64, AT, AT, 1)
    return run, lines


def explained(
    period: Period, subjects: list[SubjectUsage], service: str, cost_centre: str | None = None
) -> str:
    run, lines = run_of(period, subjects)
    found = explain_run(
        run, lines, CATALOGUE, subjects, municipality="2183", service=service, cost_centre=cost_centre
    )
    return render_text(found, CATALOGUE, top=3)


def test_graduated_line_with_its_tier_slices_split_between_cost_centres() -> None:
    assert explained(OCT, SUBJECTS, "ticket-incident", "BUF") == (
        "2183 Bollnäs · BUF · ticket-incident (Ärende incident) · prislista 2026\n"
        "  antal: Σ antal för 2 objekt = 2 st\n"
        "  kommunens summa: BUF 2 + SOC 2 = 4 st\n"
        "  trappa: 2 × 95,00 + 2 × 80,00 = 350,00\n"
        "  fördelat på kostnadsställen efter antal (största rest i öre): "
        "BUF 2 av 4 → 175,00; SOC 2 av 4 → 175,00\n"
        "  moms 25 %: 175,00 × 0,25 = 43,75\n"
        "  rad: 2 st, 175,00 SEK exkl. moms, à-pris 87,50\n"
        "  objekt (2 av 2):\n"
        "    I-1001  1 st  kanal phone, stängt 2026-10-05T08:00:00Z\n"
        "    I-1002  1 st  kanal e-mail, stängt 2026-10-06T09:00:00Z\n"
    )


def test_volume_line_names_the_tier_reached() -> None:
    assert explained(OCT, SUBJECTS, "m365-e3") == (
        "2183 Bollnäs · BUF · m365-e3 (Microsoft 365 E3) · prislista 2026\n"
        "  antal: Σ enhetsdagar ÷ dagar = 124 ÷ 31 = 4 st\n"
        "  volym: 4 ligger i nivån över 3: 4 × 240,00 = 960,00\n"
        "  moms 25 %: 960,00 × 0,25 = 240,00\n"
        "  rad: 4 st, 960,00 SEK exkl. moms, à-pris 240,00\n"
        "  objekt (3 av 4):\n"
        "    user1@bollnas.se  31 dagar  User 1\n"
        "    user2@bollnas.se  31 dagar  User 2\n"
        "    user3@bollnas.se  31 dagar  User 3\n"
    )


def test_package_line_from_gib_days() -> None:
    assert explained(OCT, SUBJECTS, "storage-file") == (
        "2183 Bollnäs · BUF · storage-file (Fillagring) · prislista 2026\n"
        "  antal: Σ GiB-dagar ÷ dagar = 6 250 ÷ 31 = 201,612903 (avrundat till 6 decimaler) GiB\n"
        "  paket: ceil(201,612903 ÷ 100) = 3; 3 × 450,00 = 1 350,00\n"
        "  moms 25 %: 1 350,00 × 0,25 = 337,50\n"
        "  rad: 201,612903 GiB, 1 350,00 SEK exkl. moms, à-pris 6,70\n"
        "  objekt (2 av 2):\n"
        "    \\\\fs01\\buf  4 650 GiB-dagar\n"
        "    \\\\fs01\\buf-arkiv  1 600 GiB-dagar\n"
    )


def test_distributed_line_shows_the_key_share() -> None:
    # 10 000 000 öre × 26 500 / 132 000 = 2 007 575,76 öre; the 4 öre left over after the floors go
    # to the largest remainders: Ljusdal ,94, Nordanstig ,91, Bollnäs ,76 and Ovanåker ,61.
    assert explained(OCT, SUBJECTS, "soc-shared") == (
        "2183 Bollnäs · UNALLOCATED · soc-shared (Gemensam SOC) · prislista 2026\n"
        "  antal: 1 mån (en andel av en fördelad kostnad per kommun och månad)\n"
        "  fördelad kostnad: 1 200 000,00 per år ÷ 12 = 100 000,00 per månad\n"
        "  nyckel inhabitants: 26 500 av 132 000 invånare → 100 000,00 × 26 500 ÷ 132 000 = 20 075,76 "
        "(största rest i öre)\n"
        "  moms 25 %: 20 075,76 × 0,25 = 5 018,94\n"
        "  rad: 1 mån, 20 075,76 SEK exkl. moms, à-pris 20 075,76\n"
    )


def test_minimum_line_and_the_index_of_the_next_year() -> None:
    assert explained(OCT, SUBJECTS, "pc-standard") == (
        "2183 Bollnäs · BUF · pc-standard (Standarddator) · prislista 2026\n"
        "  antal: Σ enhetsdagar ÷ dagar = 31 ÷ 31 = 1 st\n"
        "  per enhet: 1 × 310,00 = 310,00\n"
        "  minimiavgift tillämpad: 310,00 är under minimiavgiften 1 000,00 → 1 000,00\n"
        "  moms 25 %: 1 000,00 × 0,25 = 250,00\n"
        "  rad: 1 st, 1 000,00 SEK exkl. moms, à-pris 1 000,00\n"
        "  objekt (1 av 1):\n"
        "    PC0042  31 dagar  BUF-PC42, anna@bollnas.se\n"
    )
    january = [subject("BUF", "pc-standard", "PC0042", 31, "31", "31")]
    assert explained(JAN, january, "pc-standard") == (
        "2183 Bollnäs · BUF · pc-standard (Standarddator) · prislista 2027\n"
        "  antal: Σ enhetsdagar ÷ dagar = 31 ÷ 31 = 1 st\n"
        "  per enhet: 1 × 319,92 = 319,92\n"
        "  minimiavgift tillämpad: 319,92 är under minimiavgiften 1 032,00 → 1 032,00\n"
        "  index: prislista 2027 är prislista 2026 × 1,032, varje pris avrundat till öre: "
        "à-pris 310,00 × 1,032 = 319,92; minimiavgift 1 000,00 × 1,032 = 1 032,00\n"
        "  moms 25 %: 1 032,00 × 0,25 = 258,00\n"
        "  rad: 1 st, 1 032,00 SEK exkl. moms, à-pris 1 032,00\n"
        "  objekt (1 av 1):\n"
        "    PC0042  31 dagar\n"
    )


def test_json_lists_every_subject_and_the_facts() -> None:
    run, lines = run_of(OCT, SUBJECTS)
    doc = to_json(explain_run(run, lines, CATALOGUE, SUBJECTS, municipality="2183", service="m365-e3"))
    (line,) = doc["lines"]
    assert [s["subject"] for s in line["subjects"]] == [f"user{i}@bollnas.se" for i in range(1, 5)]
    assert (line["subject_days"], line["days"], line["quantity"], line["amount"]) == (124, 31, "4", "960.00")
    assert line["volume_tier"] == {"tier": 2, "up_to": None, "unit_price": "240.00"}
    assert line["agrees"] is True
    storage = to_json(
        explain_run(run, lines, CATALOGUE, SUBJECTS, municipality="2183", service="storage-file")
    )
    (line,) = storage["lines"]
    assert (line["unit_days"], line["quantity"], line["packages"], line["package_price"]) == (
        "6250",
        "201.612903",
        3,
        "450.00",
    )
    soc = to_json(explain_run(run, lines, CATALOGUE, SUBJECTS, municipality="2183", service="soc-shared"))
    assert soc["lines"][0]["key"] == {
        "name": "inhabitants",
        "weight": "26500",
        "total": "132000",
        "members": 6,
        "monthly_amount": "100000.00",
        "share": "20075.76",
    }


def test_a_stored_line_that_does_not_agree_is_an_error_unless_the_inputs_changed() -> None:
    run, lines = run_of(OCT, SUBJECTS)
    tampered = [
        Line(**{**x.__dict__, "amount": x.amount + 1}) if x.service == "m365-e3" else x for x in lines
    ]
    with pytest.raises(ExplanationMismatch, match="m365-e3 of run 2026-10-abc does not agree"):
        explain_run(run, tampered, CATALOGUE, SUBJECTS, municipality="2183")
    found = explain_run(run, tampered, CATALOGUE, SUBJECTS, municipality="2183", catalogue_changed=True)
    assert found.notes[0].startswith("katalogen har ändrats sedan körning 2026-10-abc prissattes")
    (m365,) = [e for e in found.lines if e.line.service == "m365-e3"]
    assert m365.steps[-1] == "omräknad nu: 4 st, 960,00 SEK (skiljer sig från den lagrade raden)"


def test_a_stored_line_nothing_recomputes_is_an_error_and_a_removed_price_is_named() -> None:
    run, lines = run_of(OCT, SUBJECTS)
    # A line the recomputation does not give at all: a storage line of a cost centre without usage.
    extra = Line(
        "2183",
        "HR",
        "storage-file",
        Decimal("1"),
        "GiB",
        Decimal("10.00"),
        Decimal("10.00"),
        Decimal("0.25"),
        Decimal("2.50"),
        "SEK",
        "2026",
    )
    with pytest.raises(ExplanationMismatch, match=r"line 2183 HR storage-file .* recomputed no line"):
        explain_run(run, [*lines, extra], CATALOGUE, SUBJECTS, municipality="2183", cost_centre="HR")
    retired = CATALOGUE.model_copy(
        update={"price_lists": (CATALOGUE.price_lists[0].model_copy(update={"retired": ("m365-e3",)}),)}
    )
    found = explain_run(
        run, lines, retired, SUBJECTS, municipality="2183", service="m365-e3", catalogue_changed=True
    )
    assert [e.steps for e in found.lines] == [
        ("katalogen har inget pris för m365-e3 för 2026-10 nu: inget att räkna om",)
    ]


def test_a_correction_says_why_it_exists() -> None:
    def corr(reason: str, qty: str, amount: str) -> Line:
        return Line(
            "2183", "BUF", "pc-standard", Decimal(qty), "st", None, Decimal(amount), Decimal("0.25"),
            Decimal(amount) / 4, "SEK", "2026", corrects_period="2026-10", reason=reason,
        )  # fmt: skip

    sv = PHRASES["sv"]
    assert [(_correction(x, sv).steps, _correction(x, sv).facts["reason"]) for x in [
        corr("late usage", "1", "310.00"),
        corr("repriced", "0", "10.00"),
        corr("late usage, repriced", "1", "320.00"),
    ]] == [
        (("rättelse av 2026-10: månaden prissatt på nytt med användningen som lagrats efter att den "
          "slutfördes, minus det som dess slutliga körning fakturerade: 1 st, 310,00 SEK",), "late usage"),
        (("rättelse av 2026-10: (repriced, begärt med --reprice-invoiced) månaden prissatt på nytt med den "
          "nuvarande katalogen, minus det som dess slutliga körning fakturerade: 0 st, 10,00 SEK",),
         "repriced"),
        (("rättelse av 2026-10: (late usage, repriced, begärt med --reprice-invoiced) månaden prissatt på "
          "nytt med användningen som lagrats efter att den slutfördes och den nuvarande katalogen, minus "
          "det som dess slutliga körning fakturerade: 1 st, 320,00 SEK",), "late usage, repriced"),
    ]  # fmt: skip


def test_a_nok_catalogue_is_explained_in_bokmaal() -> None:
    nok = CATALOGUE.model_copy(update={"currency": "NOK"})
    assert nok.report_locale == "nb_NO"
    lines = price_period(nok, OCT, period_usage(nok, totals_of(SUBJECTS), OCT))
    run = Run("2026-10-abc", "2026-10", (), DRAFT, "x", "NOK", "c" * 64, "u" * 64, AT, AT, 1)

    def text(service: str) -> str:
        found = explain_run(run, lines, nok, SUBJECTS, municipality="2183", service=service)
        return render_text(found, nok, top=3)

    assert text("pc-standard") == (
        "2183 Bollnäs · BUF · pc-standard (Standarddator) · prisliste 2026\n"
        "  antall: Σ enhetsdager ÷ dager = 31 ÷ 31 = 1 st\n"
        "  per enhet: 1 × 310,00 = 310,00\n"
        "  minimumsavgift brukt: 310,00 er under minimumsavgiften 1 000,00 → 1 000,00\n"
        "  mva. 25 %: 1 000,00 × 0,25 = 250,00\n"
        "  linje: 1 st, 1 000,00 NOK ekskl. mva., enhetspris 1 000,00\n"
        "  objekter (1 av 1):\n"
        "    PC0042  31 dager  BUF-PC42, anna@bollnas.se\n"
    )
    assert text("soc-shared") == (
        "2183 Bollnäs · UNALLOCATED · soc-shared (Gemensam SOC) · prisliste 2026\n"
        "  antall: 1 mån (en andel av en fordelt kostnad per kommune og måned)\n"
        "  fordelt kostnad: 1 200 000,00 per år ÷ 12 = 100 000,00 per måned\n"
        "  nøkkel inhabitants: 26 500 av 132 000 innbyggere → 100 000,00 × 26 500 ÷ 132 000 = 20 075,76 "
        "(største rest i øre)\n"
        "  mva. 25 %: 20 075,76 × 0,25 = 5 018,94\n"
        "  linje: 1 mån, 20 075,76 NOK ekskl. mva., enhetspris 20 075,76\n"
    )
    # --json keeps its keys and facts; its steps are the same bokmål text.
    doc = to_json(explain_run(run, lines, nok, SUBJECTS, municipality="2183", service="pc-standard"))
    (line,) = doc["lines"]
    assert (line["subject_days"], line["days"], line["amount"], line["minimum_applied"]) == (
        31,
        31,
        "1000.00",
        True,
    )
    assert line["steps"][0] == "antall: Σ enhetsdager ÷ dager = 31 ÷ 31 = 1 st"
