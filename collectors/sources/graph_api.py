"""Microsoft Graph as a source: Intune's managed devices and users' licence assignments, fetched
with an app registration's client credentials instead of read from an export.

The adapter only fetches: it returns the same table a Graph JSON export gives (``devices.py`` and
``licences.py`` read both), so ids, mapping, the stale-device rule and SKU names cannot differ
between the file and the API. Licences come with ``skuId`` only; ``subscribedSkus`` adds the
``skuPartNumber`` the mapping names, as the export joined with it does.

Application permissions: DeviceManagementManagedDevices.Read.All (devices), User.Read.All and
Organization.Read.All (licences).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import quote, urlencode

from pydantic import SecretStr

from collectors.exports import Row, Table
from collectors.sources.rest import ApiError, Http

GRAPH_URL = "https://graph.microsoft.com"
AUTHORITY_URL = "https://login.microsoftonline.com"
SCOPE = "https://graph.microsoft.com/.default"
DEVICE_FIELDS = (
    "id",
    "deviceName",
    "serialNumber",
    "model",
    "operatingSystem",
    "osVersion",
    "lastSyncDateTime",
    "userPrincipalName",
    "deviceCategoryDisplayName",
)
USER_FIELDS = ("userPrincipalName", "department", "assignedLicenses")
_TOKEN_MARGIN_S = 300  # fetch a new token this long before the old one expires
_TOKEN_HINTS = {
    400: "check the tenant and the client id",
    401: "check the client id and secret (CHARGEBACK_GRAPH_CLIENT_SECRET or _FILE)",
    404: "check the tenant and CHARGEBACK_GRAPH_AUTHORITY_URL",
}


def _hints(permission: str) -> dict[int, str]:
    return {
        401: "the access token was refused; check the tenant and the app registration",
        403: f"the app registration needs the application permission {permission}, with admin consent",
        404: "check CHARGEBACK_GRAPH_URL",
    }


class Graph:
    """Microsoft Graph v1.0 for one tenant, as an app (OAuth 2.0 client credentials)."""

    def __init__(
        self,
        tenant: str,
        client_id: str,
        client_secret: SecretStr,
        *,
        graph_url: str = GRAPH_URL,
        authority_url: str = AUTHORITY_URL,
        http: Http | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.tenant, self.client_id, self._secret = tenant, client_id, client_secret
        self.graph_url, self.authority_url = graph_url.rstrip("/"), authority_url.rstrip("/")
        self.http = http or Http()
        self._clock = clock
        self._token: tuple[str, float] | None = None  # (token, clock time it expires)

    def token(self) -> str:
        """An access token for Graph, fetched again shortly before it expires."""
        if self._token is not None and self._clock() < self._token[1] - _TOKEN_MARGIN_S:
            return self._token[0]
        url = f"{self.authority_url}/{quote(self.tenant, safe='')}/oauth2/v2.0/token"
        started = self._clock()
        answer = self.http.request(
            "POST",
            url,
            form={
                "client_id": self.client_id,
                "client_secret": self._secret.get_secret_value(),
                "scope": SCOPE,
                "grant_type": "client_credentials",
            },
            hints=_TOKEN_HINTS,
        )
        body = answer.body if isinstance(answer.body, dict) else {}
        token, expires_in = body.get("access_token"), body.get("expires_in", 0)
        if not isinstance(token, str) or not token or str(body.get("token_type", "")).casefold() != "bearer":
            raise ApiError(f"POST {url} answered HTTP {answer.status} without a bearer access_token")
        try:
            lifetime = float(expires_in)  # a number, or a string in older versions of the platform
        except (TypeError, ValueError):
            lifetime = 0.0
        self._token = (token, started + lifetime)
        return token

    def items(self, path: str, query: dict[str, str], permission: str) -> Iterator[tuple[str, Any]]:
        """Every item of a Graph collection, following ``@odata.nextLink`` page by page, each
        with where it came from (``URL: item N``, counted over all pages)."""
        first = f"{self.graph_url}/v1.0/{path}"
        url: str | None = f"{first}?{urlencode(query, safe='$,')}" if query else first
        count, seen = 0, set()
        while url is not None:
            seen.add(url)
            answer = self.http.request(
                "GET", url, headers={"Authorization": f"Bearer {self.token()}"}, hints=_hints(permission)
            )
            doc = answer.body
            if not isinstance(doc, dict) or not isinstance(doc.get("value"), list):
                raise ApiError(f"GET {url} answered HTTP {answer.status} without a list of items (value)")
            for item in doc["value"]:
                count += 1
                yield f"{first}: item {count}", item
            url = doc.get("@odata.nextLink")
            if url is not None and (not isinstance(url, str) or not url.startswith(f"{self.graph_url}/")):
                # The token goes along with every request: only ever to Graph itself.
                raise ApiError(f"GET {first}: a next page outside {self.graph_url} ({url!r}) is not followed")
            if url in seen:
                raise ApiError(f"GET {first}: the next page {url} was already read")

    def devices(self, extra_fields: tuple[str, ...] = ()) -> Table:
        """Intune's managed devices, as a Graph ``managedDevices`` export reads."""
        fields = DEVICE_FIELDS + tuple(f for f in extra_fields if f not in DEVICE_FIELDS)
        query = {"$select": ",".join(fields)}
        items = self.items(
            "deviceManagement/managedDevices", query, "DeviceManagementManagedDevices.Read.All"
        )
        return _table(fields, items)

    def sku_part_numbers(self) -> dict[str, str]:
        """The tenant's subscriptions: skuId -> skuPartNumber (``SPE_E3``)."""
        names = {}
        for _, sku in self.items(
            "subscribedSkus", {"$select": "skuId,skuPartNumber"}, "Organization.Read.All"
        ):
            if isinstance(sku, dict) and sku.get("skuId") and sku.get("skuPartNumber"):
                names[str(sku["skuId"]).casefold()] = str(sku["skuPartNumber"])
        return names

    def licences(self) -> Table:
        """Users and their licences, each licence with its ``skuPartNumber`` where the tenant's
        subscriptions name it (else only its ``skuId``, which the mapping then reports)."""
        names = self.sku_part_numbers()
        query = {"$select": ",".join(USER_FIELDS), "$top": "999"}
        users = self.items("users", query, "User.Read.All")
        return _table(USER_FIELDS, ((where, _with_sku_names(user, names)) for where, user in users))


def _with_sku_names(user: Any, names: dict[str, str]) -> Any:
    if not isinstance(user, dict) or not isinstance(user.get("assignedLicenses"), list):
        return user
    licences = [
        {**licence, "skuPartNumber": names[str(licence.get("skuId")).casefold()]}
        if isinstance(licence, dict) and str(licence.get("skuId")).casefold() in names
        else licence
        for licence in user["assignedLicenses"]
    ]
    return {**user, "assignedLicenses": licences}


def _table(fields: tuple[str, ...], items: Iterator[tuple[str, Any]]) -> Table:
    # The documented fields are the columns even when a page leaves one out or there are no items,
    # so the readers recognise the layout exactly as they do a Graph export's.
    rows = [
        Row(where, {str(k).casefold(): v for k, v in item.items()})
        if isinstance(item, dict)
        else Row(where, {}, "not a JSON object")
        for where, item in items
    ]
    return Table(tuple(f.casefold() for f in fields), rows, is_json=True)
