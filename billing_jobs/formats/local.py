"""Numbers, amounts, dates and the words of member reports in the catalogue's locale (Babel/CLDR):
``1 911 785,62 kr`` in Swedish, Norwegian bokmål for a NOK catalogue (``Catalogue.report_locale``).

Separators are the locale's own (a no-break space between thousands and before ``kr``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from decimal import Decimal

from babel import Locale
from babel.dates import format_date
from babel.numbers import format_currency, format_decimal

from chargeback.period import Period

NBSP = "\u00a0"

# Every word a member report uses, per language of the locale (sv, nb).
WORDS: Mapping[str, Mapping[str, str]] = {
    "sv": {
        "title": "Faktureringsunderlag",
        "overview": "Översikt",
        "run": "körning",
        "status_draft": "utkast",
        "status_final": "slutlig",
        "status_void": "makulerad",
        "price_list": "prislista",
        "draft_banner": "UTKAST: körningen är inte slutlig och kan ändras.",
        "draft_title": "UTKAST – körningen är inte slutlig",
        "excl_vat": "Belopp exkl. moms",
        "vat": "Moms",
        "total": "Att betala",
        "cost_centre": "Kostnadsställe",
        "subtotal": "Summa",
        "service": "Tjänst",
        "quantity": "Antal",
        "unit": "Enhet",
        "unit_price": "À-pris",
        "amount": "Belopp",
        "explanation": "Så räknades raden",
        "specification": "Specifikation",
        "specification_rows": "rader",
        "specification_intro": "Vad som ligger bakom varje rad (enheter, användare, ärenden, lagring):",
        "correction": "Rättelse av",
        "late_usage": "sen användning",
        "event": "händelse",
        "events": "händelser",
        "repricing": "omprissättning av en fakturerad månad",
        "data_quality": "Datakvalitet",
        "unallocated_share": "Andel av användningen fakturerad som UNALLOCATED (utan kostnadsställe)",
        "unallocated_warning": "över gränsen {limit}: kontrollera kostnadsställena i källorna",
        "unmapped": "Identifierare utan kostnadsställe (UNALLOCATED), per källa",
        "subjects": "st",
        "dead_letters": "Avvisade meddelanden (dead letters) under månaden",
        "days_without": "Dagar utan händelser, per källa",
        "alerts": "Användningsvarningar (förändring mot föregående månad över tröskeln, tysta källor)",
        "none": "inga",
        "alert_change": "{service}: {before} → {now} ({change}, mer än ±{threshold} mot föregående månad)",
        "alert_new": "ny användning",
        "alert_silent": "{source} har inte skickat några händelser på {days} arbetsdagar sedan {last_day} "
        "(gränsen är {allowed})",
        "of_days": "av {days} dagar",
        "municipality": "Kommun",
        "members": "Medlemmar",
        "per_service": "Kostnad per tjänst",
        "change": "Förändring mot föregående månad",
        "no_previous": "Ingen tidigare körning att jämföra med.",
        "new": "ny",
        "against_run": "Jämfört med körning {run} ({status}) för {period}.",
        "member_page": "Kommunens sida",
        "subject_days": "enhetsdagar",
        "days": "dagar",
        "unit_days": "{unit}-dagar",
        "counted": "antal under månaden",
        "packages": "paket",
        "tiers": "trappa på",
        "volume_tier": "volymnivå",
        "up_to": "upp till",
        "above": "över",
        "flat": "fast avgift",
        "per_month": "per månad",
        "inhabitants": "invånare",
        "users": "användare",
        "members_equal": "medlemmar, lika delar",
        "minimum": "minimiavgift {amount} tillämpad",
        "index": "indexerat pris: prislista {base} × {index}",
        "split": "fördelat på kostnadsställen efter antal: {part} av {whole}",
        "generated_for": "Underlag från {seller}",
    },
    "nb": {
        "title": "Faktureringsgrunnlag",
        "overview": "Oversikt",
        "run": "kjøring",
        "status_draft": "utkast",
        "status_final": "endelig",
        "status_void": "annullert",
        "price_list": "prisliste",
        "draft_banner": "UTKAST: kjøringen er ikke endelig og kan endres.",
        "draft_title": "UTKAST – kjøringen er ikke endelig",
        "excl_vat": "Beløp ekskl. mva.",
        "vat": "Mva.",
        "total": "Å betale",
        "cost_centre": "Koststed",
        "subtotal": "Sum",
        "service": "Tjeneste",
        "quantity": "Antall",
        "unit": "Enhet",
        "unit_price": "Enhetspris",
        "amount": "Beløp",
        "explanation": "Slik ble linjen beregnet",
        "specification": "Spesifikasjon",
        "specification_rows": "linjer",
        "specification_intro": "Hva som ligger bak hver linje (enheter, brukere, saker, lagring):",
        "correction": "Korrigering av",
        "late_usage": "sen bruk",
        "event": "hendelse",
        "events": "hendelser",
        "repricing": "ny prising av en fakturert måned",
        "data_quality": "Datakvalitet",
        "unallocated_share": "Andel av bruken fakturert som UNALLOCATED (uten koststed)",
        "unallocated_warning": "over grensen {limit}: kontroller koststedene i kildene",
        "unmapped": "Identifikatorer uten koststed (UNALLOCATED), per kilde",
        "subjects": "stk.",
        "dead_letters": "Avviste meldinger (dead letters) i måneden",
        "days_without": "Dager uten hendelser, per kilde",
        "alerts": "Bruksvarsler (endring mot forrige måned over terskelen, tause kilder)",
        "none": "ingen",
        "alert_change": "{service}: {before} → {now} ({change}, mer enn ±{threshold} mot forrige måned)",
        "alert_new": "ny bruk",
        "alert_silent": "{source} har ikke sendt hendelser på {days} arbeidsdager siden {last_day} "
        "(grensen er {allowed})",
        "of_days": "av {days} dager",
        "municipality": "Kommune",
        "members": "Medlemmer",
        "per_service": "Kostnad per tjeneste",
        "change": "Endring mot forrige måned",
        "no_previous": "Ingen tidligere kjøring å sammenligne med.",
        "new": "ny",
        "against_run": "Sammenlignet med kjøring {run} ({status}) for {period}.",
        "member_page": "Kommunens side",
        "subject_days": "enhetsdager",
        "days": "dager",
        "unit_days": "{unit}-dager",
        "counted": "antall i måneden",
        "packages": "pakker",
        "tiers": "trapp på",
        "volume_tier": "volumnivå",
        "up_to": "opptil",
        "above": "over",
        "flat": "fast avgift",
        "per_month": "per måned",
        "inhabitants": "innbyggere",
        "users": "brukere",
        "members_equal": "medlemmer, like deler",
        "minimum": "minimumsavgift {amount} brukt",
        "index": "indeksert pris: prisliste {base} × {index}",
        "split": "fordelt på koststeder etter antall: {part} av {whole}",
        "generated_for": "Grunnlag fra {seller}",
    },
}


@dataclass(frozen=True)
class Local:
    """Formats for one locale and currency."""

    locale: str
    currency: str

    @property
    def language(self) -> str:
        """The page's ``lang``: ``sv``, ``nb``."""
        return str(Locale.parse(self.locale).language)

    @property
    def words(self) -> Mapping[str, str]:
        """The report's words in this locale's language (Swedish for a language without its own)."""
        return WORDS.get(self.language, WORDS["sv"])

    def money(self, amount: Decimal) -> str:
        """``1 911 785,62 kr``."""
        return str(format_currency(amount, self.currency, locale=self.locale))

    def price(self, amount: Decimal) -> str:
        """A unit price: two decimals, more when the price has them (``0,125 kr``)."""
        exponent = amount.normalize().as_tuple().exponent
        decimals = max(2, -exponent) if isinstance(exponent, int) else 2
        pattern = "#,##0." + "0" * decimals + "\u00a0¤"
        return str(
            format_currency(amount, self.currency, format=pattern, locale=self.locale, currency_digits=False)
        )

    def number(self, value: Decimal, decimals: int = 2) -> str:
        """A quantity with ``decimals`` decimals: ``448,32``."""
        pattern = "#,##0" + ("." + "0" * decimals if decimals else "")
        return str(format_decimal(value, format=pattern, locale=self.locale))

    def whole(self, value: Decimal | int) -> str:
        """A whole number, or a decimal with only the decimals it has: ``13 898``, ``2,5``."""
        return str(format_decimal(value, format="#,##0.######", locale=self.locale))

    def percent(self, share: Decimal) -> str:
        """A share as a percentage with one decimal: ``4,2 %``."""
        return self.number(share * 100, 1) + NBSP + "%"

    def signed_percent(self, percent: Decimal) -> str:
        """A change in percent with its sign: ``−60,0 %``, ``+25,5 %`` (the minus sign U+2212)."""
        sign = "+" if percent > 0 else "\u2212" if percent < 0 else ""
        return sign + self.number(abs(percent), 1) + NBSP + "%"

    def month(self, period: Period | str) -> str:
        """``november 2026``."""
        first = period.first_day if isinstance(period, Period) else Period.parse(period).first_day
        return str(format_date(first, "LLLL yyyy", locale=self.locale))

    def day(self, value: date) -> str:
        """The locale's long date: ``29 oktober 2026``, in bokmål ``29. oktober 2026``."""
        return str(format_date(value, "long", locale=self.locale))

    def days(self, first: date, last: date) -> str:
        """A range of days: ``29 oktober 2026``, ``29–31 oktober 2026``, ``30 september – 2 oktober
        2026`` (bokmål ``29.–31. oktober 2026``): the long date's day, or day and month, first."""
        if first == last:
            return self.day(first)
        if (first.year, first.month) == (last.year, last.month):
            return f"{self.day(first).split(' ')[0]}–{self.day(last)}"
        return f"{self.day(first).rsplit(' ', 1)[0]} – {self.day(last)}"

    def status(self, status: str) -> str:
        """A run's status in words."""
        return self.words.get(f"status_{status}", status)


__all__ = ["NBSP", "WORDS", "Local"]
