"""The parties file: identifiers accepted as finance writes them and kept as the Peppol rules
require, check digits verified when loaded, every mistake one line naming file, line and party."""

from __future__ import annotations

from pathlib import Path

import pytest

from billing_jobs.parties import (
    PartiesError,
    Seller,
    account_number,
    gln_valid,
    iban_valid,
    load_parties,
    luhn_digit,
    luhn_valid,
    norwegian_valid,
    payment_reference,
    seller_of,
    swedish_org_number,
)

DEMO = Path(__file__).resolve().parents[2] / "demo" / "data" / "parties.yaml"

SELLER = """\
seller:
  name: Hälsinglands IT-förbund
  org_number: "{org}"
  vat_number: {vat}
  endpoint: {{scheme: "0007", id: "{endpoint}"}}
  address: {{city: Bollnäs, country: SE}}
payment: {{account: "{account}", kind: {kind}}}
buyers:
"""
BOLLNAS = (
    '  "2183": {name: Bollnäs kommun, org_number: "212000-2254", endpoint: {scheme: "0007", id: '
    '"2120002254"}, address: {city: Bollnäs, country: SE}, reference: Ekonomi}\n'
)


def write(
    tmp_path: Path,
    buyers: str = BOLLNAS,
    org: str = "222000-1230",
    vat: str = "SE222000123001",
    endpoint: str = "222000-1230",
    account: str = "123-4566",
    kind: str = "bankgiro",
) -> Path:
    path = tmp_path / "parties.yaml"
    text = SELLER.format(org=org, vat=vat, endpoint=endpoint, account=account, kind=kind) + buyers
    path.write_text(text, encoding="utf-8")
    return path


def test_check_digit_algorithms() -> None:
    assert [luhn_valid(x) for x in ("2220001230", "2220001234", "1234566", "1234567")] == [
        True,
        False,
        True,
        False,
    ]
    assert (luhn_digit("222000123"), luhn_digit("123456")) == ("0", "6")
    # Norwegian mod 11 (weights 3 2 7 6 5 4 3 2): 9*3+2*2+3*7+4*6+5*5+6*4+7*3+8*2 = 162, 11 - 162 % 11 = 3
    assert [norwegian_valid(x) for x in ("923456783", "923456784", "92345678")] == [True, False, False]
    assert [gln_valid(x) for x in ("7350000000016", "7350000000017")] == [True, False]
    assert [iban_valid(x) for x in ("SE4550000000058398257466", "SE4550000000058398257467")] == [True, False]


def test_identifiers_are_accepted_as_written_and_kept_as_digits() -> None:
    assert swedish_org_number("556036-0793") == "5560360793"
    assert swedish_org_number("556036 0793") == "5560360793"
    assert account_number("bankgiro", "123-4566") == "1234566"
    assert account_number("bankgiro", "123-4567") == "1234567"  # the form is checked, not the digit
    assert account_number("plusgiro", "4 12 34-6") == "412346"
    assert account_number("iban", "se45 5000 0000 0583 9825 7466") == "SE4550000000058398257466"


def test_the_demo_parties_load_with_clean_identifiers() -> None:
    parties = load_parties(DEMO)
    seller = parties.seller
    assert (seller.org_number, seller.endpoint.id, seller.vat_number) == (
        "2220001230",
        "2220001230",
        "SE222000123001",
    )
    assert parties.payment.account == "1234566"
    assert seller_of(parties) == Seller("Hälsinglands IT-förbund", "2220001230")
    assert {code: b.reference for code, b in parties.buyers.items()} == {
        "2121": "IT-2121",
        "2132": "IT-2132",
        "2161": "IT-2161",
        "2182": "IT-2182",
        "2183": "Ekonomiavdelningen",
        "2184": "IT-2184",
    }


def test_a_norwegian_buyer_with_a_gln_endpoint(tmp_path: Path) -> None:
    buyer = (
        '  "0301": {name: Oslo IKT, org_number: "923 456 783", vat_number: NO923456783MVA, '
        'endpoint: {scheme: "0088", id: "7350000000016"}, address: {city: Oslo, country: NO}, '
        "reference: IKT-1}\n"
    )
    oslo = load_parties(write(tmp_path, buyers=buyer)).buyers["0301"]
    assert (oslo.org_number, oslo.vat_number, oslo.endpoint.scheme, oslo.endpoint.id) == (
        "923456783",
        "NO923456783MVA",
        "0088",
        "7350000000016",
    )


def test_wrong_check_digits_are_named_with_file_line_and_party(tmp_path: Path) -> None:
    buyer = (
        '  "0301": {name: Oslo IKT, org_number: "923456784", endpoint: {scheme: "0192", id: "923456784"}, '
        "address: {city: Oslo, country: NO}, reference: IKT-1}\n"
    )
    path = write(
        tmp_path, buyers=BOLLNAS + buyer, org="222000-1234", endpoint="2220001234", account="1234567"
    )
    with pytest.raises(PartiesError) as raised:
        load_parties(path)
    assert str(raised.value).splitlines() == [
        f"{path}:3: seller (Hälsinglands IT-förbund): org_number: '222000-1234' fails its check digit "
        "(Luhn): the last digit should be 0",
        f"{path}:5: seller (Hälsinglands IT-förbund): endpoint.id: '2220001234' fails its check digit "
        "(Luhn): the last digit should be 0 (scheme 0007)",
        f"{path}:10: buyer 0301 (Oslo IKT): org_number: '923456784' fails its check digit (mod 11)",
        f"{path}:10: buyer 0301 (Oslo IKT): endpoint.id: '923456784' fails its check digit (mod 11) "
        "(scheme 0192)",
    ]


def test_a_vat_number_of_another_organisation_is_refused(tmp_path: Path) -> None:
    path = write(tmp_path, vat="SE556036079301")
    with pytest.raises(PartiesError) as raised:
        load_parties(path)
    assert str(raised.value) == (
        f"{path}:4: seller (Hälsinglands IT-förbund): vat_number: 'SE556036079301' does not belong to "
        "organisation number 2220001230: it should be SE222000123001"
    )


def test_a_buyer_without_a_reference_is_named(tmp_path: Path) -> None:
    path = write(tmp_path, buyers=BOLLNAS.replace(", reference: Ekonomi", ""))
    with pytest.raises(PartiesError) as raised:
        load_parties(path)
    assert str(raised.value) == (
        f"{path}:9: buyer 2183 (Bollnäs kommun): reference: missing: every buyer needs a reference "
        "(BuyerReference), on which public buyers route invoices; add reference: with the buyer's "
        "reference code or contact"
    )


def test_a_bankgiro_of_the_wrong_length_and_a_missing_field(tmp_path: Path) -> None:
    path = write(tmp_path, account="12345")
    with pytest.raises(PartiesError, match=r"parties.yaml:7: payment \(bankgiro\): account: '12345' is not a "
                       r"bankgiro number \(7 or 8 digits\)$"):  # fmt: skip
        load_parties(path)
    path.write_text("seller: {name: X}\n", encoding="utf-8")
    with pytest.raises(PartiesError) as raised:
        load_parties(path)
    assert str(raised.value).splitlines()[0] == f"{path}:1: seller.org_number: Field required"


def test_the_payment_reference_is_an_ocr_number_of_the_invoice() -> None:
    first = payment_reference("2026-10-abc-2183", "2026-10")
    assert first == "202610672738913"
    assert luhn_valid(first) and first.startswith("202610")
    assert payment_reference("2026-10-abc-2183", "2026-10") == first
    assert payment_reference("2026-10-abc-2184", "2026-10") == "202610908326988"
