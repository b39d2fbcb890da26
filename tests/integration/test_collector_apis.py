"""The Graph and TOPdesk API sources against a real HTTP server on loopback that answers with the
documented shapes: the same observations and events as the export files of the same data, the
credentials each request carried, and one sentence for what a run cannot go on with."""

from __future__ import annotations

import base64
import json
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from click.testing import CliRunner
from pydantic import SecretStr

from collectors.cli import collect
from collectors.events import build_event
from collectors.mapping import Mapper, load_mapping
from collectors.sources.devices import DeviceReport, observe_devices
from collectors.sources.graph_api import Graph
from collectors.sources.licences import LicenceReport, observe_licences
from collectors.sources.rest import ApiError, Http
from collectors.sources.tickets import TicketReport, observe_tickets
from collectors.sources.topdesk_api import LAYOUT, TopDesk
from collectors.spool import Spool

pytestmark = pytest.mark.integration

SOURCES = Path(__file__).resolve().parents[1] / "fixtures" / "sources"
AT = datetime(2026, 10, 5, 6, 0, tzinfo=UTC)  # 08:00 in Stockholm
DAY = date(2026, 10, 5)
SECRET = "s3cr3t~value"
TOKEN = "eyJ0eXAi.token-1"
E3, E5, UNKNOWN = (
    "05e9a617-0261-4cee-bb44-138d3ef5d965",
    "06ebc4ee-1bb5-47dd-8120-11324bc54e06",
    "6fd2c87f-b296-42f0-b197-1e91e994b900",
)
DEVICE_SELECT = (
    "id,deviceName,serialNumber,model,operatingSystem,osVersion,lastSyncDateTime,"
    "userPrincipalName,deviceCategoryDisplayName"
)

Reply = tuple[int, dict[str, str], bytes]


@dataclass(frozen=True)
class Received:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: bytes


@dataclass
class Api:
    """A loopback HTTP server: routes by method and path, each a queue of answers (the last one
    repeats), and every request it received."""

    url: str = ""
    routes: dict[tuple[str, str], list[Callable[[Received], Reply]]] = field(default_factory=dict)
    received: list[Received] = field(default_factory=list)

    def route(self, method: str, path: str, *answers: Callable[[Received], Reply]) -> None:
        self.routes[method, path] = list(answers)

    def answer(self, request: Received) -> Reply:
        self.received.append(request)
        queue = self.routes.get((request.method, request.path))
        if not queue:
            return 404, {}, b""
        return (queue.pop(0) if len(queue) > 1 else queue[0])(request)


def as_json(
    doc: Any, status: int = 200, headers: dict[str, str] | None = None
) -> Callable[[Received], Reply]:
    body = json.dumps(doc).encode()
    return lambda _: (status, {"Content-Type": "application/json", **(headers or {})}, body)


@pytest.fixture
def api(monkeypatch: pytest.MonkeyPatch) -> Iterator[Api]:
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")  # a proxy of the test machine must not see loopback
    state = Api()

    class Handler(BaseHTTPRequestHandler):
        def handle_one(self) -> None:
            parts = urlsplit(self.path)
            length = int(self.headers.get("Content-Length") or 0)
            request = Received(
                self.command,
                parts.path,
                parse_qs(parts.query),
                {k.casefold(): v for k, v in self.headers.items()},
                self.rfile.read(length),
            )
            status, headers, body = state.answer(request)
            self.send_response(status)
            for name, value in headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        do_GET = do_POST = handle_one

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    state.url = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def mapper() -> Mapper:
    return Mapper(load_mapping(SOURCES / "mapping_2183.yaml"))


def graph(api: Api, retries: int = 2) -> Graph:
    return Graph(
        "bollnas.onmicrosoft.com",
        "app-1",
        SecretStr(SECRET),
        graph_url=api.url,
        authority_url=f"{api.url}/authority",
        http=Http(timeout_s=5, retries=retries),
    )


def serve_token(api: Api) -> None:
    api.route(
        "POST",
        "/authority/bollnas.onmicrosoft.com/oauth2/v2.0/token",
        as_json({"token_type": "Bearer", "expires_in": 3599, "ext_expires_in": 3599, "access_token": TOKEN}),
    )


def device(serial: str, name: str, category: str | None, last_sync: str) -> dict[str, Any]:
    # A managedDevice as Graph v1.0 documents it (the properties this collector selects).
    return {
        "id": f"id-{serial}",
        "deviceName": name,
        "serialNumber": serial,
        "model": "ThinkPad T14",
        "operatingSystem": "Windows",
        "osVersion": "10.0.22631.4317",
        "lastSyncDateTime": last_sync,
        "userPrincipalName": f"{name.lower()}@bollnas.se",
        "deviceCategoryDisplayName": category,
    }


DEVICES = [
    device("PF3ABC50", "BOL-PC0050", "Socialförvaltningen", "2026-10-05T04:00:00Z"),
    device("PF3ABC51", "BOL-PC0051", "Barn- och utbildningsförvaltningen", "2026-09-05T00:00:00Z"),
    device("PF3ABC52", "BOL-PC0052", "Socialförvaltningen", "2026-08-01T09:00:00Z"),  # stale
    device("PF3ABC53", "BOL-PC0053", "Kultur och fritid", "2026-10-04T16:40:00Z"),  # unmapped
    device("PF3ABC50", "BOL-PC0050", "Socialförvaltningen", "2026-10-01T08:00:00Z"),  # listed twice
]


def serve_devices(api: Api, second_page: Callable[[Received], Reply] | None = None) -> None:
    path = "/v1.0/deviceManagement/managedDevices"
    api.route(
        "GET",
        path,
        as_json({"error": {"code": "TooManyRequests", "message": "throttled"}}, 429, {"Retry-After": "0"}),
        lambda request: (
            second_page or as_json({"value": DEVICES[2:]})
            if request.query.get("$skiptoken") == ["page-2"]
            else as_json(
                {
                    "@odata.context": f"{api.url}/v1.0/$metadata#deviceManagement/managedDevices",
                    "@odata.nextLink": f"{api.url}{path}?$select={DEVICE_SELECT}&$skiptoken=page-2",
                    "value": DEVICES[:2],
                }
            )
        )(request),
    )


# --- Microsoft Graph -----------------------------------------------------------------------------


def test_graph_devices_over_two_pages_after_a_429_are_what_the_export_gives(api: Api, tmp_path: Path) -> None:
    serve_token(api)
    serve_devices(api)
    report = DeviceReport()
    observations = observe_devices(graph(api).devices(), AT, report)

    m = mapper()
    events = [build_event("devices", m, o, "pc-standard", 1, DAY) for o in observations]
    assert [(e.id, e.data.cost_centre, e.data.attributes) for e in events if e] == [
        (
            "2183-devices-PF3ABC50-SOC-2026-10-05",
            "SOC",
            {
                "device_name": "BOL-PC0050",
                "last_check_in": "2026-10-05T04:00:00Z",
                "subject_user": "bol-pc0050@bollnas.se",
            },
        ),
        # 00:00 UTC on 5 September is 02:00 in Stockholm: exactly 30 days before, still active.
        (
            "2183-devices-PF3ABC51-BUF-2026-10-05",
            "BUF",
            {
                "device_name": "BOL-PC0051",
                "last_check_in": "2026-09-05T00:00:00Z",
                "subject_user": "bol-pc0051@bollnas.se",
            },
        ),
    ]
    assert dict(m.unmapped) == {"Kultur och fritid": 1}
    assert (report.read, report.stale, report.duplicates, report.rejected) == (5, 1, 1, [])

    export = tmp_path / "managedDevices.json"
    export.write_text(json.dumps({"value": DEVICES}), encoding="utf-8")
    from_file = DeviceReport()
    assert observe_devices(export, AT, from_file) == observations
    assert (from_file.read, from_file.stale, from_file.duplicates) == (5, 1, 1)

    # One token for the run; the 429, both pages, each with it; the secret only in the token form.
    token, *pages = api.received
    assert token.method == "POST" and "authorization" not in token.headers
    assert parse_qs(token.body.decode()) == {
        "client_id": ["app-1"],
        "client_secret": [SECRET],
        "scope": ["https://graph.microsoft.com/.default"],
        "grant_type": ["client_credentials"],
    }
    assert [(r.path, r.query, r.headers["authorization"]) for r in pages] == [
        ("/v1.0/deviceManagement/managedDevices", {"$select": [DEVICE_SELECT]}, f"Bearer {TOKEN}"),
        ("/v1.0/deviceManagement/managedDevices", {"$select": [DEVICE_SELECT]}, f"Bearer {TOKEN}"),
        (
            "/v1.0/deviceManagement/managedDevices",
            {"$select": [DEVICE_SELECT], "$skiptoken": ["page-2"]},
            f"Bearer {TOKEN}",
        ),
    ]


def serve_licences(api: Api) -> None:
    api.route(
        "GET",
        "/v1.0/subscribedSkus",
        as_json(
            {
                "value": [
                    {"skuId": E3, "skuPartNumber": "SPE_E3", "capabilityStatus": "Enabled"},
                    {"skuId": E5, "skuPartNumber": "SPE_E5", "capabilityStatus": "Enabled"},
                ]
            }
        ),
    )
    users = [  # graph_licences.json's users as the users endpoint gives them: skuId only
        {
            "userPrincipalName": "Anna.Berg@bollnas.se",
            "department": "Barn- och utbildningsförvaltningen",
            "assignedLicenses": [{"disabledPlans": [], "skuId": E3}],
        },
        {
            "userPrincipalName": "dan.ek@bollnas.se",
            "department": None,
            "assignedLicenses": [{"disabledPlans": [], "skuId": E5}],
        },
        {
            "userPrincipalName": "eva.ny@bollnas.se",
            "department": "Socialförvaltningen",
            "assignedLicenses": [{"disabledPlans": [], "skuId": UNKNOWN}],
        },
        {"userPrincipalName": None, "department": "Socialförvaltningen", "assignedLicenses": []},
    ]
    api.route(
        "GET",
        "/v1.0/users",
        lambda request: as_json(
            {"value": users[2:]}
            if request.query.get("$skiptoken") == ["u2"]
            else {"value": users[:2], "@odata.nextLink": f"{api.url}/v1.0/users?$top=999&$skiptoken=u2"}
        )(request),
    )


def test_graph_licences_name_skus_by_subscribed_skus_as_the_joined_export_does(api: Api) -> None:
    serve_token(api)
    serve_licences(api)
    m, report = mapper(), LicenceReport()
    seats = observe_licences(graph(api).licences(), m, AT, report)
    events = [build_event("m365", m, s.observation, s.service, 1, DAY) for s in seats]
    assert [(e.id, e.data.service, e.data.cost_centre, e.data.attributes) for e in events if e] == [
        ("2183-m365-anna.berg_bollnas.se-SPE_E3-BUF-2026-10-05", "m365-e3", "BUF", {"sku": "SPE_E3"})
    ]
    assert dict(m.unmapped) == {"(empty)": 1, f"SKU {UNKNOWN}": 1}
    assert report.rejected == [f"{api.url}/v1.0/users: item 4: no userPrincipalName"]

    from_file, file_report = mapper(), LicenceReport()
    file_seats = observe_licences(SOURCES / "graph_licences.json", from_file, AT, file_report)
    assert file_seats == seats
    assert [build_event("m365", from_file, s.observation, s.service, 1, DAY) for s in file_seats] == events
    assert from_file.unmapped == m.unmapped and file_report.read == report.read == 4

    assert [(r.method, r.path, r.query, r.headers.get("authorization")) for r in api.received] == [
        ("POST", "/authority/bollnas.onmicrosoft.com/oauth2/v2.0/token", {}, None),
        ("GET", "/v1.0/subscribedSkus", {"$select": ["skuId,skuPartNumber"]}, f"Bearer {TOKEN}"),
        (
            "GET",
            "/v1.0/users",
            {"$select": ["userPrincipalName,department,assignedLicenses"], "$top": ["999"]},
            f"Bearer {TOKEN}",
        ),
        ("GET", "/v1.0/users", {"$top": ["999"], "$skiptoken": ["u2"]}, f"Bearer {TOKEN}"),
    ]


def collector_env(api: Api, tmp_path: Path, **more: str) -> dict[str, str]:
    return {
        "CHARGEBACK_KAFKA_BOOTSTRAP": "127.0.0.1:9",
        "CHARGEBACK_COLLECTOR_SPOOL_DIR": str(tmp_path / "spool"),
        "CHARGEBACK_COLLECTOR_CONNECT_TIMEOUT_S": "0.5",
        "CHARGEBACK_GRAPH_URL": api.url,
        "CHARGEBACK_GRAPH_AUTHORITY_URL": f"{api.url}/authority",
        "CHARGEBACK_API_RETRIES": "2",
        **more,
    }


def spooled(tmp_path: Path) -> list[dict[str, Any]]:
    spool = Spool(tmp_path / "spool")
    return [json.loads(m.value) for segment in spool.segments() for m in spool.read(segment)]


def test_collect_devices_from_graph_with_the_secret_in_a_file(api: Api, tmp_path: Path) -> None:
    serve_token(api)
    serve_devices(api)
    secret_file = tmp_path / "graph-secret"
    secret_file.write_text(SECRET + "\n", encoding="utf-8")
    env = collector_env(api, tmp_path, CHARGEBACK_GRAPH_CLIENT_SECRET_FILE=str(secret_file))
    args = ["devices", "--graph", "--graph-tenant", "bollnas.onmicrosoft.com", "--graph-client-id", "app-1"]
    result = CliRunner().invoke(
        collect, [*args, "--mapping", str(SOURCES / "mapping_2183.yaml"), "--at", AT.isoformat()], env=env
    )
    assert result.exit_code == 1, result.output  # the unmapped category needs a human
    assert "read 5, emitted 0, spooled 2, rejected 0, unmapped 1 (this run: 2)" in result.output
    assert "unmapped 'Kultur och fritid': 1 devices" in result.output
    assert SECRET not in result.output
    assert [(e["id"], e["data"]["cost_centre"], e["time"]) for e in spooled(tmp_path)] == [
        ("2183-devices-PF3ABC50-SOC-2026-10-05", "SOC", "2026-10-05T06:00:00Z"),
        ("2183-devices-PF3ABC51-BUF-2026-10-05", "BUF", "2026-10-05T06:00:00Z"),
    ]


def test_a_refused_token_is_one_sentence_naming_the_url(api: Api, tmp_path: Path) -> None:
    api.route(
        "POST",
        "/authority/bollnas.onmicrosoft.com/oauth2/v2.0/token",
        as_json(
            {
                "error": "invalid_client",
                "error_description": f"AADSTS7000215: Invalid client secret {SECRET}",
            },
            401,
        ),
    )
    env = collector_env(
        api,
        tmp_path,
        CHARGEBACK_GRAPH_TENANT="bollnas.onmicrosoft.com",
        CHARGEBACK_GRAPH_CLIENT_ID="app-1",
        CHARGEBACK_GRAPH_CLIENT_SECRET=SECRET,
    )
    result = CliRunner().invoke(
        collect, ["licences", "--graph", "--mapping", str(SOURCES / "mapping_2183.yaml")], env=env
    )
    assert result.exit_code == 1
    assert result.output == (
        f"Error: POST {api.url}/authority/bollnas.onmicrosoft.com/oauth2/v2.0/token answered "
        "HTTP 401 Unauthorized (invalid_client): check the client id and secret "
        "(CHARGEBACK_GRAPH_CLIENT_SECRET or _FILE)\n"
    )
    assert len(api.received) == 1 and spooled(tmp_path) == []


def test_a_page_that_is_not_json_a_403_and_endless_throttling_are_named(api: Api) -> None:
    serve_token(api)
    serve_devices(api, second_page=lambda _: (200, {"Content-Type": "text/html"}, b"<html>sign in</html>"))
    with pytest.raises(ApiError) as caught:
        graph(api).devices()
    assert str(caught.value) == (
        f"GET {api.url}/v1.0/deviceManagement/managedDevices?$select={DEVICE_SELECT}&$skiptoken=page-2 "
        "answered HTTP 200 with a body that is not JSON (Expecting value: line 1 column 1 (char 0))"
    )

    api.route(
        "GET",
        "/v1.0/subscribedSkus",
        as_json(
            {"error": {"code": "Authorization_RequestDenied", "message": "Insufficient privileges"}}, 403
        ),
    )
    with pytest.raises(ApiError) as caught:
        graph(api).licences()
    assert str(caught.value) == (
        f"GET {api.url}/v1.0/subscribedSkus?$select=skuId,skuPartNumber answered HTTP 403 Forbidden "
        "(Authorization_RequestDenied): the app registration needs the application permission "
        "Organization.Read.All, with admin consent"
    )

    api.route("GET", "/v1.0/users", as_json({}, 429, {"Retry-After": "0"}))
    api.route("GET", "/v1.0/subscribedSkus", as_json({"value": []}))
    before = len(api.received)
    with pytest.raises(ApiError, match=r"/v1\.0/users\?\S+ answered HTTP 429 Too Many Requests 3 times$"):
        graph(api, retries=2).licences()
    assert [r.path for r in api.received[before:]] == [
        "/authority/bollnas.onmicrosoft.com/oauth2/v2.0/token"
    ] + ["/v1.0/subscribedSkus"] + ["/v1.0/users"] * 3

    # The bearer token goes to Graph only: a next page elsewhere is not followed.
    elsewhere = "https://login.example.net/v1.0/users?$skiptoken=u2"
    api.route("GET", "/v1.0/users", as_json({"value": [], "@odata.nextLink": elsewhere}))
    with pytest.raises(ApiError) as caught:
        graph(api).licences()
    assert str(caught.value) == (
        f"GET {api.url}/v1.0/users: a next page outside {api.url} ({elsewhere!r}) is not followed"
    )


def test_graph_needs_its_settings_and_exactly_one_source(tmp_path: Path) -> None:
    mapping = ["--mapping", str(SOURCES / "mapping_2183.yaml")]
    env = {"CHARGEBACK_COLLECTOR_SPOOL_DIR": str(tmp_path / "spool")}
    runner = CliRunner()
    result = runner.invoke(collect, ["devices", "--graph", *mapping], env=env)
    assert (result.exit_code, result.output) == (
        1,
        "Error: --graph needs a tenant (--graph-tenant or CHARGEBACK_GRAPH_TENANT), a client id "
        "(--graph-client-id or CHARGEBACK_GRAPH_CLIENT_ID) and a client secret "
        "(CHARGEBACK_GRAPH_CLIENT_SECRET or its _FILE)\n",
    )
    export = str(SOURCES / "graph_devices.json")
    result = runner.invoke(collect, ["devices", export, "--graph", *mapping], env=env)
    assert result.output == "Error: give either an export file or --graph, not both\n"
    result = runner.invoke(collect, ["licences", *mapping], env=env)
    assert result.output == "Error: give an export file or --graph\n"
    result = runner.invoke(collect, ["tickets", *mapping], env=env)
    assert (result.exit_code, result.output) == (1, "Error: give an export file or --topdesk-url\n")


# --- TOPdesk -------------------------------------------------------------------------------------


def incident(
    number: str,
    category: str,
    priority: str,
    entry_type: str,
    department: str,
    call_date: str,
    closed_date: str | None,
    response_date: str | None = None,
) -> dict[str, Any]:
    # An incident as GET /tde/api/incidents documents it (the fields this collector reads, and some).
    return {
        "id": f"uuid-{number[-3:]}",
        "status": "secondLine",
        "number": number,
        "caller": {
            "id": "uuid-caller",
            "dynamicName": "Åsa Ek",
            "branch": {"id": "uuid-branch", "name": "Bollnäs kommun"},
            "department": {"id": "uuid-dep", "name": department},
        },
        "callerBranch": {"id": "uuid-branch", "name": "Bollnäs kommun"},
        "briefDescription": "Datorn startar inte",
        "entryType": {"id": "uuid-entry", "name": entry_type},
        "category": {"id": "uuid-cat", "name": category},
        "subcategory": None,
        "priority": {"id": "uuid-prio", "name": priority},
        "processingStatus": {"id": "uuid-status", "name": "Avslutad" if closed_date else "Pågående"},
        "callDate": call_date,
        "targetDate": None,
        "responseDate": response_date,
        "completed": closed_date is not None,
        "completedDate": closed_date,
        "closed": closed_date is not None,
        "closedDate": closed_date,
    }


# topdesk_tickets.csv's tickets as the API gives them (Stockholm offsets; CET after 25 October).
INCIDENTS = [
    incident(
        "I 2610 001",
        "Hårdvara",
        "P3",
        "Telefon",
        "Barn- och utbildningsförvaltningen",
        "2026-10-05T08:12:00.000+0200",
        "2026-10-05T09:40:00.000+0200",
        response_date="2026-10-05T08:13:00.000+0200",
    ),
    incident(
        "I 2610 002",
        "Programvara",
        "P2",
        "E-post",
        "Socialförvaltningen",
        "2026-10-06T10:00:00.000+0200",
        "2026-10-07T15:30:00.000+0200",
    ),
    # Open (reopened since the query): counted as open, as the export's open row is.
    incident(
        "I 2610 003",
        "Konto",
        "P4",
        "Självservice",
        "Socialförvaltningen",
        "2026-10-07T11:00:00.000+0200",
        None,
    ),
    incident(
        "I 2610 004",
        "Konto",
        "P4",
        "Telefon",
        "Socialförvaltningen",
        "2026-10-31T23:10:00.000+0100",
        "2026-10-31T23:40:00.000+0100",
    ),
]
OPERATOR = "Basic " + base64.b64encode(b"chargeback:app-pass-1").decode()


def serve_incidents(api: Api) -> None:
    def page(request: Received) -> Reply:
        start = int(request.query["pageStart"][0])
        size = int(request.query["pageSize"][0])
        items = INCIDENTS[start : start + size]
        status = 206 if start + size < len(INCIDENTS) else 200
        return as_json(items, status)(request)

    api.route("GET", "/tde/api/incidents", page)


def test_topdesk_closed_incidents_over_206_then_200_are_what_the_csv_gives(api: Api) -> None:
    serve_incidents(api)
    topdesk = TopDesk(api.url, "chargeback", SecretStr("app-pass-1"), page_size=2, http=Http(timeout_s=5))
    since = datetime(2026, 10, 1, tzinfo=UTC)
    report = TicketReport()
    observations = observe_tickets(topdesk.closed_incidents(since), report, layout=LAYOUT)
    file_report = TicketReport()
    assert observations == observe_tickets(SOURCES / "topdesk_tickets.csv", file_report)
    assert (
        (report.read, report.open, report.rejected) == (file_report.read, file_report.open, []) == (4, 1, [])
    )
    events = [build_event("tickets", mapper(), o, "ticket-incident", 1) for o in observations]
    assert [(e.id, e.data.cost_centre, e.to_wire()["time"], e.data.attributes) for e in events if e] == [
        (
            "2183-tickets-I_2610_001",
            "BUF",
            "2026-10-05T07:40:00Z",
            {
                "category": "Hårdvara",
                "priority": "P3",
                "channel": "phone",
                "opened": "2026-10-05T06:12:00Z",
                "first_response": "2026-10-05T06:13:00Z",
                "closed": "2026-10-05T07:40:00Z",
            },
        ),
        (
            "2183-tickets-I_2610_002",
            "SOC",
            "2026-10-07T13:30:00Z",
            {
                "category": "Programvara",
                "priority": "P2",
                "channel": "e-mail",
                "opened": "2026-10-06T08:00:00Z",
                "closed": "2026-10-07T13:30:00Z",
            },
        ),
        (
            "2183-tickets-I_2610_004",
            "SOC",
            "2026-10-31T22:40:00Z",
            {
                "category": "Konto",
                "priority": "P4",
                "channel": "phone",
                "opened": "2026-10-31T22:10:00Z",
                "closed": "2026-10-31T22:40:00Z",
            },
        ),
    ]
    query = {
        "query": ["closed==true;closedDate=ge=2026-10-01T00:00:00Z"],
        "sort": ["closedDate:asc"],
        "pageSize": ["2"],
    }
    assert [(r.path, r.query, r.headers["authorization"]) for r in api.received] == [
        ("/tde/api/incidents", {"pageStart": ["0"], **query}, OPERATOR),
        ("/tde/api/incidents", {"pageStart": ["2"], **query}, OPERATOR),
    ]


def test_collect_tickets_from_topdesk_and_nothing_to_read(api: Api, tmp_path: Path) -> None:
    serve_incidents(api)
    env = collector_env(
        api,
        tmp_path,
        CHARGEBACK_TOPDESK_PASSWORD="app-pass-1",
        CHARGEBACK_TOPDESK_PAGE_SIZE="3",
    )
    args = ["tickets", "--topdesk-url", f"{api.url}/", "--topdesk-user", "chargeback", "--closed-days", "2"]
    result = CliRunner().invoke(collect, [*args, "--mapping", str(SOURCES / "mapping_2183.yaml")], env=env)
    assert result.exit_code == 75, result.output  # all mapped; the broker is away, so they wait
    assert "read 4, emitted 0, spooled 3, rejected 0, unmapped 0 (this run: 3)" in result.output
    assert [(e["id"], e["data"]["cost_centre"]) for e in spooled(tmp_path)] == [
        ("2183-tickets-I_2610_001", "BUF"),
        ("2183-tickets-I_2610_002", "SOC"),
        ("2183-tickets-I_2610_004", "SOC"),
    ]
    assert [
        (r.query["pageStart"], r.query["pageSize"], r.headers["authorization"]) for r in api.received
    ] == [
        (["0"], ["3"], OPERATOR),
        (["3"], ["3"], OPERATOR),
    ]
    since = datetime.fromisoformat(
        api.received[0].query["query"][0].removeprefix("closed==true;closedDate=ge=")
    )
    assert 2 * 86400 - 60 < (datetime.now(UTC) - since).total_seconds() < 2 * 86400 + 60

    api.route("GET", "/tde/api/incidents", lambda _: (204, {}, b""))
    topdesk = TopDesk(api.url, "chargeback", SecretStr("app-pass-1"), http=Http(timeout_s=5))
    assert topdesk.closed_incidents().rows == []


def test_a_refused_operator_is_one_sentence_naming_the_url(api: Api, tmp_path: Path) -> None:
    api.route(
        "GET", "/tde/api/incidents", lambda _: (401, {"WWW-Authenticate": 'Basic realm="TOPdesk"'}, b"")
    )
    env = collector_env(
        api, tmp_path, CHARGEBACK_TOPDESK_USER="chargeback", CHARGEBACK_TOPDESK_PASSWORD="wrong"
    )
    result = CliRunner().invoke(
        collect,
        ["tickets", "--topdesk-url", api.url, "--mapping", str(SOURCES / "mapping_2183.yaml")],
        env=env,
    )
    assert result.exit_code == 1
    (line,) = result.output.splitlines()
    assert line.startswith(
        f"Error: GET {api.url}/tde/api/incidents?pageStart=0&pageSize=1000&query=closed==true;"
    )
    assert line.endswith(
        "&sort=closedDate:asc answered HTTP 401 Unauthorized: check the operator's login name and "
        "application password (CHARGEBACK_TOPDESK_PASSWORD or _FILE)"
    )
    assert "wrong" not in result.output
    assert (
        api.received[0].headers["authorization"] == "Basic " + base64.b64encode(b"chargeback:wrong").decode()
    )
