"""Member reports (``billing export --format report``): one Swedish page per member, each line
explained with its own numbers, corrections with their month and reason, and the data-quality box.

The month is October 2026 (31 days) of the demo catalogue (tests/fixtures/catalogue.yaml), priced
by the real pricing code from usage written out here; every expected text is worked out by hand.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path

from billing_jobs.formats import FORMATS, ExportContext, Seller
from billing_jobs.formats.local import Local
from billing_jobs.formats.report import member_page
from billing_jobs.formats.summary import line_summary
from billing_jobs.model import DataQuality, DeadLetters, LateUsage, Line, Run, SourceDays, Usage
from billing_jobs.pricing import price_period
from billing_jobs.reports.alerts import Thresholds, alert_notes, change_alerts, silent_alerts
from chargeback.catalogue import parse_catalogue
from chargeback.money import round_quantity
from chargeback.period import Period

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "catalogue.yaml"
CATALOGUE = parse_catalogue(FIXTURE.read_text(encoding="utf-8"), str(FIXTURE))
OCTOBER = Period(2026, 10)
NB = "\u00a0"
D = Decimal
SV = Local("sv_SE", "SEK")


def nb(text: str) -> str:
    """Text as Babel writes Swedish numbers: no-break spaces between digits and before kr and %."""
    return re.sub(r"(?<=\d) (?=\d|kr|%)", NB, text)


def days(quantity_days: int) -> Decimal:
    """A daily meter's quantity: subject-days ÷ 31, six decimals half-up."""
    return round_quantity(D(quantity_days) / 31)


USAGE = [
    # Standarddator (per_unit 310,00): BUF 13 898 device-days, SOC 3 100.
    Usage("2183", "BUF", "pc-standard", days(13898)),
    Usage("2183", "SOC", "pc-standard", days(3100)),
    # Ärende incident (graduated: 200 × 95,00, then 80,00): 150 + 60 = 210 tickets.
    Usage("2183", "BUF", "ticket-incident", D(150)),
    Usage("2183", "SOC", "ticket-incident", D(60)),
    # Fillagring (package of 100 GiB at 450,00): 3 100,50 GiB-days = 100,016129 GiB: 2 packages.
    Usage("2183", "BUF", "storage-file", round_quantity(D("3100.5") / 31)),
    # Microsoft 365 E3 (volume: up to 1 000 at 260,00, above at 240,00): 1 200 users every day.
    Usage("2183", "SOC", "m365-e3", days(37200)),
]


def run(status: str = "final") -> Run:
    when = datetime(2026, 11, 3, 7, 0, tzinfo=UTC)
    return Run("2026-10-abc", "2026-10", (), status, "2026", "SEK", "c" * 64, "u" * 64, when, when, 1)


def correction(cc: str, service: str, quantity: str, amount: str) -> Line:
    a = D(amount)
    return Line(
        "2183", cc, service, D(quantity), "st", D("310.00"), a, D("0.25"), a / 4, "SEK", "2026", "2026-09"
    )


LINES = [
    *price_period(CATALOGUE, OCTOBER, USAGE, {"2183"}),
    correction("BUF", "pc-standard", "0.1", "31.00"),
    correction("SOC", "pc-standard", "-0.1", "-31.00"),
]
QUALITY = DataQuality(
    sources=(
        SourceDays(
            "2183",
            "intune",
            tuple(
                date(2026, 10, 1) + timedelta(days=i)
                for i in range(31)
                if date(2026, 10, 1) + timedelta(days=i) not in (date(2026, 10, 14), date(2026, 10, 15))
            ),
            12,
        ),
        SourceDays("2183", "topdesk", tuple(date(2026, 10, d) for d in range(1, 32)), 0),
        SourceDays("2184", "intune", (date(2026, 10, 1),), 99),
    ),
    dead_letters=(
        DeadLetters("2183", "unknown service", 3),
        DeadLetters("2183", "signature does not verify", 1),
        DeadLetters("2184", "unknown service", 7),
    ),
    late_usage=(
        LateUsage("2183", "BUF", "pc-standard", "2026-09", date(2026, 9, 28), date(2026, 9, 30), 12),
    ),
)


def the(service: str, cc: str) -> Line:
    return next(x for x in LINES if (x.service, x.cost_centre, x.corrects_period) == (service, cc, None))


def explain(service: str, cc: str) -> str:
    own = [x for x in LINES if x.service == service and x.corrects_period is None]
    return line_summary(the(service, cc), own, CATALOGUE, OCTOBER, SV)


def test_each_price_model_explained_with_its_own_numbers() -> None:
    # 13 898 ÷ 31 = 448,322581; BUF and SOC share 169 980,00 kr by quantity.
    assert explain("pc-standard", "BUF") == nb(
        "448,32 st = 13 898 enhetsdagar ÷ 31 dagar × 310,00 kr; "
        "fördelat på kostnadsställen efter antal: 448,32 av 548,32"
    )
    # Graduated: 200 × 95,00 + 10 × 80,00 = 19 800,00 kr on the municipality's 210 tickets.
    assert explain("ticket-incident", "SOC") == nb(
        "60 st (antal under månaden); trappa på 210 st: 200 × 95,00 kr + 10 × 80,00 kr; "
        "fördelat på kostnadsställen efter antal: 60,00 av 210,00"
    )
    # Package: ⌈100,016129 ÷ 100⌉ = 2 packages of 450,00.
    assert explain("storage-file", "BUF") == nb(
        "100,02 GiB = 3 100,50 GiB-dagar ÷ 31 dagar; ⌈100,016129 ÷ 100⌉ = 2 paket × 450,00 kr"
    )
    # Volume: 1 200 users reach the tier above 1 000: every user at 240,00.
    assert explain("m365-e3", "SOC") == nb(
        "1 200,00 st = 37 200 enhetsdagar ÷ 31 dagar; volymnivå över 1 000 st (1 200 st) × 240,00 kr"
    )
    # A daily meter's total reached is shown to two decimals: 37 201 ÷ 31 = 1 200,032258.
    (m365,) = price_period(CATALOGUE, OCTOBER, [Usage("2183", "SOC", "m365-e3", days(37201))], {"2183"})[:1]
    assert line_summary(m365, [m365], CATALOGUE, OCTOBER, SV) == nb(
        "1 200,03 st = 37 201 enhetsdagar ÷ 31 dagar; volymnivå över 1 000 st (1 200,03 st) × 240,00 kr"
    )
    # Distributed by inhabitants: 26 500 of the six members' 129 400, of 1 200 000,00 ÷ 12.
    assert explain("soc-shared", "UNALLOCATED") == nb("26 500 / 129 400 invånare × 100 000,00 kr per månad")
    assert explain("base-offering", "UNALLOCATED") == nb("fast avgift 125 000,00 kr per månad")
    # The lines the sentences explain: 169 980,00 split 138 980,00 / 31 000,00; 19 800,00 split
    # 150:60 = 14 142,86 / 5 657,14; 2 × 450,00; 1 200 × 240,00; 100 000 × 26 500 / 129 400.
    assert [(x.service, x.cost_centre, x.amount) for x in LINES if x.corrects_period is None] == [
        ("pc-standard", "BUF", D("138980.00")),
        ("storage-file", "BUF", D("900.00")),
        ("ticket-incident", "BUF", D("14142.86")),
        ("m365-e3", "SOC", D("288000.00")),
        ("pc-standard", "SOC", D("31000.00")),
        ("ticket-incident", "SOC", D("5657.14")),
        ("base-offering", "UNALLOCATED", D("125000.00")),
        ("soc-shared", "UNALLOCATED", D("20479.13")),
    ]


def test_a_minimum_and_an_index_are_named() -> None:
    text = FIXTURE.read_text(encoding="utf-8").replace(
        'storage-file: {model: package, package_size: "100", package_price: "450.00"}',
        'storage-file: {model: package, package_size: "100", package_price: "450.00", minimum: "1500.00"}',
    )
    catalogue = parse_catalogue(text, "minimum.yaml")
    lines = price_period(catalogue, OCTOBER, USAGE, {"2183"})
    storage = [x for x in lines if x.service == "storage-file"]
    assert [x.amount for x in storage] == [D("1500.00")]
    assert line_summary(storage[0], storage, catalogue, OCTOBER, SV) == nb(
        "100,02 GiB = 3 100,50 GiB-dagar ÷ 31 dagar; ⌈100,016129 ÷ 100⌉ = 2 paket × 450,00 kr; "
        "minimiavgift 1 500,00 kr tillämpad"
    )
    # January 2027's list is 2026 × 1,032: 310,00 × 1,032 = 319,92.
    january = Period(2027, 1)
    (pc,) = price_period(catalogue, january, [Usage("2183", "BUF", "pc-standard", D(10))], {"2183"})[:1]
    assert line_summary(pc, [pc], catalogue, january, SV) == nb(
        "10,00 st = 310 enhetsdagar ÷ 31 dagar × 319,92 kr; indexerat pris: prislista 2026 × 1,032"
    )


def test_member_page_in_swedish_with_subtotals_corrections_and_quality() -> None:
    page = member_page(run(), "2183", LINES, CATALOGUE, "Hälsinglands IT", QUALITY)
    assert '<html lang="sv">' in page and "<title>Faktureringsunderlag oktober 2026 – Bollnäs</title>" in page
    assert "UTKAST" not in page and "<script" not in page
    # 138 980,00 + 900,00 + 14 142,86 + 288 000,00 + 31 000,00 + 5 657,14 + 125 000,00 + 20 479,13
    # + 31,00 - 31,00 = 624 159,13 kr; VAT a quarter per line, öre half-up: 34 745,00 + 225,00
    # + 3 535,72 + 72 000,00 + 7 750,00 + 1 414,29 + 31 250,00 + 5 119,78 + 7,75 - 7,75 = 156 039,79.
    assert nb('<span class="value" id="excl">624 159,13 kr</span>') in page
    assert nb('<span class="value" id="vat">156 039,79 kr</span>') in page
    assert nb('<span class="value" id="total">780 198,92 kr</span>') in page
    # Subtotals per cost centre: BUF 138 980,00 + 900,00 + 14 142,86 + 31,00 (correction).
    assert nb('<td colspan="3">Summa BUF</td><td class="n">154 053,86 kr</td>') in page
    assert nb('<td colspan="3">Summa SOC</td><td class="n">324 626,14 kr</td>') in page
    assert nb('<td colspan="3">Summa UNALLOCATED</td><td class="n">145 479,13 kr</td>') in page
    # Service names, never ids, in the lines; each links to the member's specification.
    assert "<td>Microsoft 365 E3</td>" in page and "<td>m365-e3</td>" not in page
    assert '<a href="2026-10-abc.2183.specification.xlsx" title="m365-e3">rader</a>' in page
    assert '<a href="2026-10-abc.2183.specification.csv">2026-10-abc.2183.specification.csv</a>' in page
    # Corrections: the month and why (late usage of which days, or a repricing).
    assert (
        '<tr class="correction"><td>Standarddator</td>'
        + nb('<td class="n">0,10 st</td><td class="n">310,00 kr</td><td class="n">31,00 kr</td>')
        + '<td class="why">Rättelse av september 2026: sen användning 28–30 september 2026 '
        "(12 händelser)</td>" in page
    )
    assert '<td class="why">Rättelse av september 2026: omprissättning av en fakturerad månad</td>' in page
    # Data quality: flat and distributed prices are UNALLOCATED by design and not counted; every
    # usage line has its cost centre: 0,0 %, no warning. Then the subjects without cost centre per
    # source, dead letters, days without events.
    assert nb("UNALLOCATED (utan kostnadsställe): <b>0,0 %</b> (0,00 kr)</li>") in page
    assert "per källa: intune 12 st</li>" in page
    assert "under månaden: <b>4</b> (signature does not verify: 1; unknown service: 3)</li>" in page
    assert "per källa: intune 2 av 31 dagar (14–15 oktober 2026); topdesk 0 av 31 dagar</li>" in page


def test_export_names_every_page_and_the_overview_links_them() -> None:
    context = ExportContext(CATALOGUE, Seller("Hälsinglands IT"), quality=QUALITY)
    files = FORMATS["report"](run("draft"), LINES, context)
    assert [f.name for f in files] == ["2026-10-abc.html", "2026-10-abc.2183.html"]
    overview = files[0].body.decode()
    assert '<a href="2026-10-abc.2183.html">2183 Bollnäs</a>' in overview
    # The overview's box counts every municipality's dead letters, the member page only its own.
    assert "under månaden: <b>11</b>" in overview
    assert "UTKAST: körningen är inte slutlig och kan ändras." in files[1].body.decode()


def test_a_preview_counts_days_up_to_the_day_it_was_made() -> None:
    early = Run(
        "2026-10-x",
        "2026-10",
        (),
        "draft",
        "2026",
        "SEK",
        "c" * 64,
        "u" * 64,
        datetime(2026, 10, 5, 9, tzinfo=UTC),
        datetime(2026, 10, 5, 9, tzinfo=UTC),
        1,
    )
    quality = DataQuality(sources=(SourceDays("2183", "intune", (date(2026, 10, 1), date(2026, 10, 3)), 0),))
    page = member_page(early, "2183", LINES, CATALOGUE, "IT", quality)
    assert "per källa: intune 3 av 5 dagar (2 oktober 2026, 4–5 oktober 2026)</li>" in page


def test_a_share_of_usage_in_unallocated_over_the_limit_is_flagged() -> None:
    unallocated = Line(
        "2183", "UNALLOCATED", "pc-standard", D("100"), "st", D("310.00"), D("100000.00"), D("0.25"),
        D("25000.00"), "SEK", "2026",
    )  # fmt: skip
    lines = [*LINES, unallocated]
    # Usage lines: 478 680,00 kr with cost centres + 100 000,00 kr without: 100 000 ÷ 578 680 = 17,3 %.
    page = member_page(run(), "2183", lines, CATALOGUE, "IT", QUALITY)
    assert (
        nb(
            '<b>17,3 %</b> (100 000,00 kr) <span class="warn">över gränsen 10,0 %: kontrollera '
            "kostnadsställena i källorna</span></li>"
        )
        in page
    )
    calm = member_page(run(), "2183", lines, CATALOGUE, "IT", QUALITY, limit=D("0.20"))
    assert 'class="warn"' not in calm


def test_a_source_silent_all_month_is_named() -> None:
    quality = DataQuality(sources=(SourceDays("2183", "urn:chargeback:collector:2183:tickets", (), 0),))
    page = member_page(run(), "2183", LINES, CATALOGUE, "IT", quality)
    assert "per källa: tickets 31 av 31 dagar (1–31 oktober 2026)</li>" in page


def test_the_usage_alerts_of_the_member_on_its_page_and_of_every_member_on_the_overview() -> None:
    before = [Usage("2183", "BUF", "ticket-incident", D(5)), Usage("2184", "BUF", "pc-standard", D(80))]
    now = [Usage("2183", "BUF", "ticket-incident", D(2)), Usage("2184", "BUF", "pc-standard", D(120))]
    # 2183: 5 -> 2 = -60,0 %; 2184: 80 -> 120 = +50,0 %; 2183's tickets silent since Monday 26
    # October: 27-30 October, 4 working days, more than 3.
    alerts = [
        *change_alerts(before, now, Thresholds()),
        *silent_alerts(
            [("urn:chargeback:collector:2183:tickets", "2183", date(2026, 10, 26))],
            date(2026, 10, 31),
            Thresholds(),
        ),
    ]
    quality = DataQuality(alerts=alert_notes(alerts))
    # The page says them in its own language, with service names and the locale's numbers and
    # dates; the English sentences are the command line's (alert.message).
    ours = "Ärende incident: 5 → 2 (−60,0\u00a0%, mer än ±25\u00a0% mot föregående månad)"
    silent = "tickets har inte skickat några händelser på 4 arbetsdagar sedan 26 oktober 2026 (gränsen är 3)"
    theirs = "2184 Standarddator: 80 → 120 (+50,0\u00a0%, mer än ±25\u00a0% mot föregående månad)"
    page = member_page(run(), "2183", LINES, CATALOGUE, "IT", quality)
    assert (
        "<li>Användningsvarningar (förändring mot föregående månad över tröskeln, tysta källor): "
        f'<ul class="alerts"><li>{ours}</li><li>{silent}</li></ul></li>'
    ) in page
    assert "Standarddator: 80" not in page
    context = ExportContext(CATALOGUE, Seller("IT"), quality=quality)
    overview = FORMATS["report"](run(), LINES, context)[0].body.decode()
    assert f'<ul class="alerts"><li>2183 {ours}</li><li>{theirs}</li><li>2183 {silent}</li></ul>' in overview
    # Only the given municipalities' alerts (a run of some municipalities).
    assert [a.message for a in alert_notes(alerts, ["2184"])] == [
        "2184 pc-standard: 80 → 120 (+50.0 %, beyond ±25 %)"
    ]
    # Without alerts the box says there are none, in the page's language.
    calm = member_page(run(), "2183", LINES, CATALOGUE, "IT", QUALITY)
    assert "tysta källor): inga</li>" in calm
    norwegian = CATALOGUE.model_copy(update={"currency": "NOK"})
    in_nok = Run("2026-10-abc", "2026-10", (), "final", "2026", "NOK", "c" * 64, "u" * 64,
                 run().created_at, run().created_at, 1)  # fmt: skip
    assert (
        "<li>Bruksvarsler (endring mot forrige måned over terskelen, tause kilder): "
        '<ul class="alerts"><li>Ärende incident: 5 → 2 (−60,0\u00a0%, mer enn ±25\u00a0% mot forrige måned)'
        "</li><li>tickets har ikke sendt hendelser på 4 arbeidsdager siden 26. oktober 2026 "
        "(grensen er 3)</li>"
    ) in member_page(in_nok, "2183", LINES, norwegian, "IT", quality)


def test_a_nok_catalogue_member_page_is_norwegian_bokmal() -> None:
    norwegian = CATALOGUE.model_copy(update={"currency": "NOK"})
    in_nok = Run("2026-10-abc", "2026-10", (), "final", "2026", "NOK", "c" * 64, "u" * 64,
                 run().created_at, run().created_at, 1)  # fmt: skip
    page = member_page(in_nok, "2183", LINES, norwegian, "Felles IT", QUALITY)
    assert '<html lang="nb">' in page and "<h2>Koststed BUF</h2>" in page
    assert "<title>Faktureringsgrunnlag oktober 2026 – Bollnäs</title>" in page
    assert (
        nb('<td class="why">448,32 st = 13 898 enhetsdager ÷ 31 dager × 310,00 kr; fordelt på koststeder')
        in page
    )
    assert "Korrigering av september 2026: sen bruk 28.–30. september 2026 (12 hendelser)" in page
    assert "per kilde: intune 2 av 31 dager (14.–15. oktober 2026); topdesk 0 av 31 dager</li>" in page


def test_days_and_ranges_as_each_language_writes_them() -> None:
    nb_no = Local("nb_NO", "NOK")
    assert SV.days(date(2026, 9, 30), date(2026, 10, 2)) == "30 september – 2 oktober 2026"
    assert nb_no.days(date(2026, 9, 30), date(2026, 10, 2)) == "30. september – 2. oktober 2026"
    assert nb_no.days(date(2026, 10, 2), date(2026, 10, 2)) == "2. oktober 2026"
    assert nb_no.money(D("1911785.62")) == nb("1 911 785,62 kr")
