"""JSON over HTTP(S) for the API sources, with the standard library only (``urllib.request``).

What every API adapter needs and nothing more: a JSON answer or one sentence that names the
request and the status; 429 and 503 retried after ``Retry-After`` a bounded number of times;
redirects not followed (credentials would travel to wherever they point). Request bodies, which
may hold a client secret, never appear in an error.
"""

from __future__ import annotations

import contextlib
import json
import re
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.message import Message
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import urlencode

from chargeback.errors import UserError

RETRIED = frozenset({429, 503})  # throttled or briefly unavailable: Graph and TOPdesk say when to retry
_CODE = re.compile(r"^[\w.-]{1,64}$")


class ApiError(UserError):
    """An API answer the run cannot go on with, in one sentence naming the request."""

    code = "api.failed"


@dataclass(frozen=True)
class Answer:
    """A successful answer: its status, its JSON (None when it has no body) and its headers."""

    status: int
    body: Any
    headers: Message


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None  # urllib then raises the 3xx as an HTTPError, reported with its URL


@dataclass
class Http:
    """A small JSON client: ``timeout_s`` per request, up to ``retries`` retries after 429/503,
    waiting what ``Retry-After`` says (at most ``max_wait_s``; without it 1, 2, 4 ... seconds)."""

    timeout_s: float = 30.0
    retries: int = 5
    max_wait_s: float = 120.0
    sleep: Callable[[float], None] = time.sleep
    now: Callable[[], datetime] = field(default=lambda: datetime.now(UTC))

    def __post_init__(self) -> None:
        # Proxies from the environment (HTTPS_PROXY, NO_PROXY) are honoured, as on members' networks.
        self._opener = urllib.request.build_opener(_NoRedirects())

    def request(
        self,
        method: str,
        url: str,
        *,
        headers: Mapping[str, str] | None = None,
        form: Mapping[str, str] | None = None,
        hints: Mapping[int, str] | None = None,
    ) -> Answer:
        """``method url`` (with ``form`` as an URL-encoded body) and its JSON answer; any status
        outside 2xx, after the retries, is an ``ApiError`` with the hint for that status."""
        data = urlencode(form).encode() if form is not None else None
        sent = {"Accept": "application/json", **(headers or {})}
        for attempt in range(self.retries + 1):
            request = urllib.request.Request(url, data=data, method=method, headers=sent)
            try:
                with self._opener.open(request, timeout=self.timeout_s) as response:
                    status, raw, received = response.status, response.read(), response.headers
            except urllib.error.HTTPError as exc:
                try:
                    body = exc.read()
                except OSError:
                    body = b""
                finally:
                    exc.close()
                if exc.code in RETRIED and attempt < self.retries:
                    self.sleep(self._wait(exc.headers.get("Retry-After"), attempt))
                    continue
                times = f" {attempt + 1} times" if exc.code in RETRIED else ""
                hint = (hints or {}).get(exc.code)
                raise ApiError(
                    f"{method} {url} answered HTTP {exc.code} {exc.reason}{_code_in(body)}{times}"
                    + (f": {hint}" if hint else "")
                ) from None
            except (urllib.error.URLError, OSError) as exc:
                reason = exc.reason if isinstance(exc, urllib.error.URLError) else exc
                raise ApiError(f"{method} {url}: cannot reach the server: {reason}") from None
            return Answer(status, _json(method, url, status, raw), received)
        raise AssertionError("unreachable: the last attempt returns or raises")

    def _wait(self, retry_after: str | None, attempt: int) -> float:
        """Seconds to wait before the next attempt: ``Retry-After`` (seconds or an HTTP date)."""
        wait = float(2**attempt)
        if retry_after:
            text = retry_after.strip()
            if text.isdigit():
                wait = float(text)
            else:
                with contextlib.suppress(TypeError, ValueError):  # unreadable: the backoff above
                    wait = (parsedate_to_datetime(text) - self.now()).total_seconds()
        return max(0.0, min(wait, self.max_wait_s))


def _json(method: str, url: str, status: int, raw: bytes) -> Any:
    if not raw.strip():
        return None
    try:
        return json.loads(raw)
    except ValueError as exc:
        raise ApiError(
            f"{method} {url} answered HTTP {status} with a body that is not JSON ({exc})"
        ) from None


def _code_in(body: bytes) -> str:
    # The error code of a JSON error answer (Graph: {"error": {"code": ...}}, the identity
    # platform: {"error": "invalid_client"}), never its free text, which may echo the request.
    try:
        doc = json.loads(body)
    except ValueError:
        return ""
    error = doc.get("error") if isinstance(doc, dict) else None
    code = error.get("code") if isinstance(error, dict) else error
    return f" ({code})" if isinstance(code, str) and _CODE.match(code) else ""
