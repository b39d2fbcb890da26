"""The scenario of invoice integrity on real ClickHouse (server and chDB): seven members, one joins
in November, one leaves in December, a price fixed in January.

Catalogues, in the order finance edits them (tests/fixtures/catalogue.yaml is the first):

- C1 (October): the six Hälsingland members, 129,400 inhabitants.
- C2 (from November): Ockelbo (2101, 5,900 inhabitants) joins on 2026-11-01; Nordanstig (2132)
  leaves on 2026-12-31 (December is its last month). 135,300 inhabitants.
- C3 (from January): the 2026 computer price fixed from 310.00 to 320.00 (the 2027 list indexes
  2026 by 1.032: 330.24), and Hudiksvall's inhabitants 38,000 from 2027-01-01 (a dated key).

Prices (2026 list): base-offering flat 125,000.00; soc-shared 1,200,000.00 a year = 100,000.00 a
month split by inhabitants (largest remainder in öre); pc-standard 310.00 a computer (one computer
every day of a month is quantity 1); ticket-incident 95.00. The 2027 list = 2026 × 1.032: base
129,000.00, SOC 103,200.00 a month, ticket 98.04, computer (C3) 330.24.

SOC shares, 10,000,000 öre × inhabitants / total, floors then the öre left to the largest remainders:

- October (129,400): 2121 873,261.21 -> 8,732.61; 2132 726,429.68 -> 7,264.30 (+1 öre); 2161
  1,468,315.30 -> 14,683.15; 2182 1,962,905.72 -> 19,629.06 (+1); 2183 2,047,913.45 -> 20,479.13;
  2184 2,921,174.65 -> 29,211.75 (+1). Sum 100,000.00.
- November and December (135,300): 2101 436,067.997 -> 4,360.68 (+1); 2121 835,181.08 -> 8,351.81;
  2132 694,752.40 -> 6,947.52; 2161 1,404,286.77 -> 14,042.87 (+1); 2182 1,877,309.68 -> 18,773.10
  (+1); 2183 1,958,610.50 -> 19,586.10 (+1); 2184 2,793,791.57 -> 27,937.92 (+1). Sum 100,000.00.
- January 2027 (2132 gone, 2184 at 38,000: 126,100), 10,320,000 öre: 2101 482,854.88 -> 4,828.55
  (+1); 2121 924,789.85 -> 9,247.90 (+1); 2161 1,554,956.38 -> 15,549.56; 2182 2,078,731.17 ->
  20,787.31; 2183 2,168,754.96 -> 21,687.55 (+1); 2184 3,109,912.77 -> 31,099.13 (+1). Sum 103,200.00.
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from collections.abc import Sequence
from datetime import UTC, datetime
from decimal import Decimal

import pytest

from billing_jobs import service
from billing_jobs.model import Line
from billing_jobs.store import BillingStore
from chargeback.catalogue import Catalogue, parse_catalogue
from chargeback.clickhouse import ClickHouse
from chargeback.period import Period
from tests.integration.test_invoice_guards import TEXT, computer_days, corrections, store_events, ticket

pytestmark = pytest.mark.integration

D = Decimal
SEVEN = ("2101", "2121", "2132", "2161", "2182", "2183", "2184")
C1 = TEXT
C2 = C1.replace(
    "municipalities:\n",
    'municipalities:\n  - {code: "2101", name: Ockelbo, inhabitants: 5900, joined: 2026-11-01}\n',
).replace("inhabitants: 9400}", "inhabitants: 9400, left: 2026-12-31}")
C3 = C2.replace('unit_price: "310.00"', 'unit_price: "320.00"').replace(
    "inhabitants: 37800}", "inhabitants: [{from: null, value: 37800}, {from: 2027-01-01, value: 38000}]}"
)
OCT, NOV, DEC, JAN = Period(2026, 10), Period(2026, 11), Period(2026, 12), Period(2027, 1)


def version(text: str) -> tuple[Catalogue, str, bytes]:
    body = text.encode()
    return parse_catalogue(text, "catalogue.yaml"), hashlib.sha256(body).hexdigest(), body


def own_totals(lines: Sequence[Line]) -> dict[str, Decimal]:
    """Each member's amount excluding VAT from the month's own lines (corrections apart)."""
    out: dict[str, Decimal] = defaultdict(Decimal)
    for x in lines:
        if not x.corrects_period:
            out[x.municipality] += x.amount
    return dict(out)


def test_seven_members_one_joins_in_november_one_leaves_in_december_a_price_fixed_in_january(
    clickhouse: ClickHouse,
) -> None:
    store = BillingStore(clickhouse)
    c1, c2, c3 = version(C1), version(C2), version(C3)

    def usage(
        events: list[tuple[str, str, str, str, str, str, str, str]], stored: datetime, offset: int
    ) -> None:
        store_events(clickhouse, events, stored_at=stored, offset=offset, municipalities=SEVEN)

    def price(
        cat: tuple[Catalogue, str, bytes], period: Period, at: datetime, **kw: bool
    ) -> service.PricedRun:
        return service.create_run(store, cat[0], cat[1], period, now=at, catalogue_bytes=cat[2], **kw)

    def finalise(cat: tuple[Catalogue, str, bytes], run: service.PricedRun, at: datetime) -> None:
        assert service.finalize_run(store, run.run.run_id, cat[0], now=at, accept_gaps=True).status == "final"

    # October, six members: Bollnäs's computer, two Hudiksvall tickets, one Nordanstig ticket.
    usage(
        [
            *computer_days("2183", "BUF", "pc1", OCT),
            ticket("o1", "2026-10-06T08:00:00Z", "2184", "IT"),
            ticket("o2", "2026-10-07T08:00:00Z", "2184", "IT"),
            ticket("o3", "2026-10-08T08:00:00Z", "2132", "KS"),
        ],
        datetime(2026, 11, 1, 1, tzinfo=UTC),
        0,
    )
    october = price(c1, OCT, datetime(2026, 11, 2, tzinfo=UTC))
    assert own_totals(october.lines) == {
        "2121": D("133732.61"),  # 125,000.00 + 8,732.61
        "2132": D("132359.30"),  # 125,000.00 + 7,264.30 + 95.00
        "2161": D("139683.15"),  # 125,000.00 + 14,683.15
        "2182": D("144629.06"),  # 125,000.00 + 19,629.06
        "2183": D("145789.13"),  # 125,000.00 + 20,479.13 + 310.00
        "2184": D("154401.75"),  # 125,000.00 + 29,211.75 + 2 x 95.00
    }
    finalise(c1, october, datetime(2026, 11, 3, tzinfo=UTC))

    # November, seven members (C2): Ockelbo's first month; October is not touched (no fees or SOC
    # for Ockelbo's October, no SOC credits for the others).
    usage(
        [
            *computer_days("2183", "BUF", "pc1", NOV),
            ticket("n1", "2026-11-04T08:00:00Z", "2101", "KS"),
            ticket("n2", "2026-11-05T08:00:00Z", "2132", "KS"),
        ],
        datetime(2026, 12, 1, 1, tzinfo=UTC),
        100,
    )
    november = price(c2, NOV, datetime(2026, 12, 2, tzinfo=UTC))
    assert corrections(november.lines) == []
    assert november.repricing is None
    assert own_totals(november.lines) == {
        "2101": D("129455.68"),  # 125,000.00 + 4,360.68 + 95.00
        "2121": D("133351.81"),  # 125,000.00 + 8,351.81
        "2132": D("132042.52"),  # 125,000.00 + 6,947.52 + 95.00
        "2161": D("139042.87"),  # 125,000.00 + 14,042.87
        "2182": D("143773.10"),  # 125,000.00 + 18,773.10
        "2183": D("144896.10"),  # 125,000.00 + 19,586.10 + 310.00
        "2184": D("152937.92"),  # 125,000.00 + 27,937.92
    }
    finalise(c2, november, datetime(2026, 12, 3, tzinfo=UTC))

    # December, Nordanstig's last month: three of its tickets; a late Hudiksvall ticket of October
    # (stored in December) is corrected at October's 95.00.
    usage(
        [
            *computer_days("2183", "BUF", "pc1", DEC),
            ticket("d1", "2026-12-02T08:00:00Z", "2132", "KS"),
            ticket("d2", "2026-12-03T08:00:00Z", "2132", "KS"),
            ticket("d3", "2026-12-04T08:00:00Z", "2132", "KS"),
            ticket("d4", "2026-12-09T08:00:00Z", "2101", "KS"),
            ticket("o4", "2026-10-21T08:00:00Z", "2184", "IT"),
        ],
        datetime(2027, 1, 1, 1, tzinfo=UTC),
        200,
    )
    december = price(c2, DEC, datetime(2027, 1, 2, tzinfo=UTC))
    assert corrections(december.lines) == [
        # October as billed: 2 tickets (190.00); now 3: +1 ticket, +95.00
        ("2026-10", "2184", "IT", "ticket-incident", D(1), D("95.00"), D("95.00"), D("23.75"), "late usage"),
    ]
    assert december.repricing is None
    assert own_totals(december.lines) == {
        "2101": D("129455.68"),  # 125,000.00 + 4,360.68 + 95.00
        "2121": D("133351.81"),
        "2132": D("132232.52"),  # 125,000.00 + 6,947.52 + 3 x 95.00
        "2161": D("139042.87"),
        "2182": D("143773.10"),
        "2183": D("144896.10"),
        "2184": D("152937.92"),
    }
    finalise(c2, december, datetime(2027, 1, 3, tzinfo=UTC))

    # January (C3, the 2027 list): six members, the computer price of 2026 fixed. A late Nordanstig
    # ticket of December still corrects its December, at the 95.00 December was billed with; its
    # January ticket (after it left) is not billed, and said so.
    usage(
        [
            *computer_days("2183", "BUF", "pc1", JAN),
            ticket("j1", "2027-01-12T08:00:00Z", "2101", "KS"),
            ticket("j2", "2027-01-13T08:00:00Z", "2132", "KS"),
            ticket("d5", "2026-12-15T08:00:00Z", "2132", "KS"),
        ],
        datetime(2027, 2, 1, 1, tzinfo=UTC),
        300,
    )
    january = price(c3, JAN, datetime(2027, 2, 2, tzinfo=UTC))
    late_december = (
        "2026-12",
        "2132",
        "KS",
        "ticket-incident",
        D(1),
        D("95.00"),
        D("95.00"),
        D("23.75"),
        "late usage",
    )
    assert corrections(january.lines) == [late_december]
    # The fix would raise the computer of each finalised month by 10.00 (320.00 - 310.00): stated,
    # not billed. Hudiksvall's new inhabitants count from January only: no SOC share moves.
    assert january.repricing == (
        "the current catalogue would bill finalised months differently from the catalogue they were billed "
        "with (2026-10 1 line +10.00; 2026-11 1 line +10.00; 2026-12 1 line +10.00 SEK excl. VAT): they are "
        "not repriced; run with --reprice-invoiced to bill the differences as corrections"
    )
    assert january.unbilled == (
        "usage of ticket-incident by 2132 in 2027-01 is not billed: municipality 2132 was not a member in "
        "2027-01 (left 2026-12-31) (quantity 1.000000)",
    )
    assert own_totals(january.lines) == {
        "2101": D("133926.59"),  # 129,000.00 + 4,828.55 + 98.04
        "2121": D("138247.90"),  # 129,000.00 + 9,247.90
        "2161": D("144549.56"),  # 129,000.00 + 15,549.56
        "2182": D("149787.31"),  # 129,000.00 + 20,787.31
        "2183": D("151017.79"),  # 129,000.00 + 21,687.55 + 330.24
        "2184": D("160099.13"),  # 129,000.00 + 31,099.13
    }
    assert sum((x.amount for x in january.lines), D(0)) == D("877723.28")  # the six + 2132's 95.00

    # Only when finance asks are the finalised months repriced, each line saying so.
    repriced = price(c3, JAN, datetime(2027, 2, 2, tzinfo=UTC), reprice_invoiced=True)
    assert corrections(repriced.lines) == [  # in the one line order: by municipality first
        late_december,
        ("2026-10", "2183", "BUF", "pc-standard", D(0), None, D("10.00"), D("2.50"), "repriced"),
        ("2026-11", "2183", "BUF", "pc-standard", D(0), None, D("10.00"), D("2.50"), "repriced"),
        ("2026-12", "2183", "BUF", "pc-standard", D(0), None, D("10.00"), D("2.50"), "repriced"),
    ]
    assert repriced.repricing is None
    # Finance keeps the invoiced months: January without repricing is final, the other draft voided.
    service.void_run(store, repriced.run.run_id, now=datetime(2027, 2, 3, tzinfo=UTC))
    finalise(c3, january, datetime(2027, 2, 3, tzinfo=UTC))
    billed = {
        (m, p): a
        for m, p, a in clickhouse.execute(
            "SELECT municipality, period, sum(amount) FROM v_charges_final GROUP BY municipality, period"
        )
    }
    assert billed[("2184", "2026-10")] == D("154496.75")  # 154,401.75 + the late ticket 95.00
    assert billed[("2132", "2026-12")] == D("132327.52")  # 132,232.52 + the late ticket 95.00
    assert billed[("2183", "2026-10")] == D("145789.13")  # the fix did not reach October
    assert ("2101", "2026-10") not in billed and ("2132", "2027-01") not in billed
