"""A billing period: one calendar month."""

from __future__ import annotations

import calendar
import re
from dataclasses import dataclass
from datetime import date

_PERIOD = re.compile(r"^(\d{4})-(\d{2})$")


@dataclass(frozen=True, order=True)
class Period:
    """A calendar month, written ``YYYY-MM``."""

    year: int
    month: int

    def __post_init__(self) -> None:
        if not 1 <= self.month <= 12 or not 1970 <= self.year <= 9999:
            raise ValueError(f"not a calendar month: {self.year}-{self.month:02d}")

    @classmethod
    def parse(cls, text: str) -> Period:
        """Parse ``YYYY-MM``; a clear ValueError otherwise."""
        match = _PERIOD.match(text.strip())
        if not match:
            raise ValueError(f"period must be YYYY-MM (for example 2026-10), not {text!r}")
        return cls(int(match.group(1)), int(match.group(2)))

    @classmethod
    def of(cls, day: date) -> Period:
        """The month a day belongs to."""
        return cls(day.year, day.month)

    @property
    def first_day(self) -> date:
        return date(self.year, self.month, 1)

    @property
    def days(self) -> int:
        """The number of days in the month."""
        return calendar.monthrange(self.year, self.month)[1]

    @property
    def last_day(self) -> date:
        return date(self.year, self.month, self.days)

    def next(self) -> Period:
        """The following month."""
        return Period(self.year + self.month // 12, self.month % 12 + 1)

    def previous(self) -> Period:
        """The preceding month."""
        return Period(self.year - (self.month == 1), (self.month - 2) % 12 + 1)

    def __str__(self) -> str:
        return f"{self.year:04d}-{self.month:02d}"
