"""The one root of the errors a user can act on: the CLI prints their message, not a traceback.

Every such error derives from :class:`ChargebackError` and names its kind with a stable ``code``
(``"catalogue.invalid"``, ``"clickhouse.failed"``, ...): codes are for logs, scripts and tests and
never change once released; the message is the one sentence a person reads. Classes that used to
be ``ValueError`` or ``RuntimeError`` keep that as a second base, so existing ``except`` clauses
still catch them.
"""

from __future__ import annotations


class ChargebackError(Exception):
    """A mistake in input or configuration, or a service that failed, explained in one sentence."""

    code: str = "chargeback.error"


class UserError(ChargebackError):
    """A mistake in input or configuration, explained in one sentence."""

    code = "user.invalid"
