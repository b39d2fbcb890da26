"""The contract (docs/contract.md), checked from the outside: raw Kafka messages in, the
``chargeback`` command, the analysts' views on the ClickHouse server and the export files out.

One scenario for the whole module, built once: every event below is produced to the real broker,
one stream worker stores them, and ``billing run`` prices October 2026, November 2026 and January
2027. The commands run on a clock set to 2027-02-10 12:00 UTC (``faketime``), so that January 2027
has ended and its events are not in the future. Each test then checks one rule of the contract
against the result; every expected figure is worked out by hand in the comments.
"""

from __future__ import annotations

import base64
import contextlib
import csv
import io
import json
import os
import re
import shutil
import subprocess
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

import devstack

pytestmark = [pytest.mark.integration, pytest.mark.slow]

STOCKHOLM = ZoneInfo("Europe/Stockholm")
NOW = "2027-02-10 12:00:00"  # the clock of every command (UTC)
COLUMNS = (
    "run_id,period,municipality,cost_centre,service,quantity,unit,unit_price,amount,vat_rate,"
    "vat_amount,currency,price_list"
)

# The contract's example catalogue, plus what the rules need to show themselves: a service with a
# minimum, one distributed by an equal key, and a list valid from 2 October 2026 (so it applies to
# November, not to October) that indexes 2026 by 1 and overrides one price.
CATALOGUE = """\
currency: SEK
timezone: Europe/Stockholm
municipalities:
  - {code: "2121", name: Ovanåker, inhabitants: 11300}
  - {code: "2132", name: Nordanstig, inhabitants: 9400}
  - {code: "2161", name: Ljusdal, inhabitants: 19000}
  - {code: "2182", name: Söderhamn, inhabitants: 25400}
  - {code: "2183", name: Bollnäs, inhabitants: 26500}
  - {code: "2184", name: Hudiksvall, inhabitants: 37800}
services:
  - {id: base-offering, name: Basutbud, meter: count, unit: mån, vat_rate: "0.25", account: "3040"}
  - {id: pc-standard, name: Standarddator, meter: daily_distinct, unit: st, vat_rate: "0.25", account: "3041"}
  - {id: storage-file, name: Fillagring, meter: daily_max, unit: GiB, vat_rate: "0.25", account: "3042"}
  - {id: ticket-incident, name: Ärende incident, meter: count, unit: st, vat_rate: "0.25", account: "3043"}
  - {id: m365-e3, name: Microsoft 365 E3, meter: daily_distinct, unit: st, vat_rate: "0.25", account: "3044"}
  - {id: soc-shared, name: Gemensam SOC, meter: count, unit: mån, vat_rate: "0.25", account: "3045"}
  - {id: dpo-shared, name: Dataskyddsombud, meter: count, unit: mån, vat_rate: "0.25", account: "3046"}
  - {id: backup, name: Säkerhetskopiering, meter: daily_max, unit: GiB, vat_rate: "0.25", account: "3047"}
  - {id: print-page, name: Utskrift, meter: count, unit: sida, vat_rate: "0.25", account: "3048"}
price_lists:
  - version: "2026"
    valid_from: 2026-01-01
    prices:
      pc-standard: {model: per_unit, unit_price: "310.00"}
      storage-file: {model: package, package_size: "100", package_price: "450.00"}
      ticket-incident:
        model: tiered_graduated
        tiers: [{up_to: "200", unit_price: "95.00"}, {up_to: null, unit_price: "80.00"}]
      m365-e3:
        model: tiered_volume
        tiers: [{up_to: "1000", unit_price: "260.00"}, {up_to: null, unit_price: "240.00"}]
      base-offering: {model: flat, amount: "125000.00"}
      soc-shared: {model: distributed, annual_amount: "1200000.00", key: inhabitants}
      dpo-shared: {model: distributed, annual_amount: "100000.00", key: equal}
      backup: {model: per_unit, unit_price: "2.00", minimum: "500.00"}
      print-page: {model: per_unit, unit_price: "12.34"}
  - version: "2026.2"
    valid_from: 2026-10-02
    index_from: "2026"
    index: "1"
    prices:
      print-page: {model: per_unit, unit_price: "20.00"}
  - version: "2027"
    valid_from: 2027-01-01
    index_from: "2026"
    index: "1.032"
"""


def utc_text(when: datetime) -> str:
    return when.astimezone(UTC).isoformat().replace("+00:00", "Z")


def local(day: date, hour: int = 6) -> datetime:
    return datetime.combine(day, time(hour), STOCKHOLM)


def days(start: date, end: date) -> list[date]:
    return [start + timedelta(days=n) for n in range((end - start).days + 1)]


def event(
    eid: str,
    municipality: str,
    when: datetime | str,
    service: str,
    subject: str,
    quantity: Any = "1",
    **extra: Any,
) -> dict[str, Any]:
    data: dict[str, Any] = {"municipality": municipality, "service": service, "subject": subject}
    data["quantity"] = quantity
    data.update(extra)
    return {
        "specversion": "1.0",
        "id": eid,
        "source": f"urn:chargeback:collector:{municipality}:contract",
        "type": "chargeback.usage.v1",
        "time": when if isinstance(when, str) else utc_text(when),
        "data": data,
    }


@dataclass
class Message:
    key: bytes | None
    value: bytes


def keyed(doc: dict[str, Any]) -> Message:
    return Message(doc["data"]["municipality"].encode(), json.dumps(doc).encode())


def without(eid: str, field: str) -> Message:
    """A 2183 event of 5 December 2026 with ``field`` (``data.x`` for a data field) left out."""
    doc = event(eid, "2183", DEC, "pc-standard", "PC-BAD")
    if field.startswith("data."):
        del doc["data"][field.removeprefix("data.")]
    else:
        del doc[field]
    return Message(b"2183", json.dumps(doc).encode())


NOVEMBER = days(date(2026, 11, 1), date(2026, 11, 30))
OCTOBER = days(date(2026, 10, 1), date(2026, 10, 31))

# Messages the worker must refuse, each with the words its reason must contain. They would bill
# 2183 pc-standard in December 2026 if they were taken; no run covers December.
DEC = local(date(2026, 12, 5))
DEAD: dict[str, tuple[Message, str]] = {
    "bad-json": (Message(b"2183", b'{"specversion": "1.0", "id": "bad-json", "data": {'), "JSON"),
    "bad-missing": (
        Message(
            b"2183",
            json.dumps(
                {
                    k: v
                    for k, v in event("bad-missing", "2183", DEC, "pc-standard", "PC-BAD").items()
                    if k != "data"
                }
                | {"data": {"municipality": "2183", "service": "pc-standard", "quantity": "1"}}
            ).encode(),
        ),
        "data.subject",
    ),
    "bad-service": (keyed(event("bad-service", "2183", DEC, "no-such-service", "PC-BAD")), "unknown service"),
    "bad-negative": (keyed(event("bad-negative", "2183", DEC, "pc-standard", "PC-BAD", "-1")), "quantity"),
    # Two days after the commands' clock (2027-02-10 12:00 UTC): more than 1 day in the future.
    "bad-future": (
        keyed(event("bad-future", "2183", "2027-02-12T12:00:00Z", "pc-standard", "PC-BAD")),
        "future",
    ),
    "bad-municipality": (
        keyed(event("bad-municipality", "9999", DEC, "pc-standard", "PC-BAD")),
        "municipality",
    ),
    "bad-nozone": (
        keyed(event("bad-nozone", "2183", "2026-12-05T06:00:00", "pc-standard", "PC-BAD")),
        "time",
    ),
    "bad-nokey": (
        Message(None, json.dumps(event("bad-nokey", "2183", DEC, "pc-standard", "PC-BAD")).encode()),
        "key",
    ),
    "bad-wrongkey": (
        Message(b"2184", json.dumps(event("bad-wrongkey", "2183", DEC, "pc-standard", "PC-BAD")).encode()),
        "key",
    ),
    "bad-no-time": (without("bad-no-time", "time"), "time"),
    "bad-no-source": (without("bad-no-source", "source"), "source"),
    "bad-no-quantity": (without("bad-no-quantity", "data.quantity"), "data.quantity"),
    "bad-no-municipality": (without("bad-no-municipality", "data.municipality"), "data.municipality"),
    "bad-type": (
        keyed(event("bad-type", "2183", DEC, "pc-standard", "PC-BAD") | {"type": "other.v1"}),
        "type",
    ),
    "bad-quantity-text": (
        keyed(event("bad-quantity-text", "2183", DEC, "pc-standard", "PC-BAD", "ten")),
        "quantity",
    ),
    "bad-utf8": (Message(b"2183", b'{"id": "bad-utf8", "x": "\xff\xfe"}'), "JSON"),
}


def scenario() -> tuple[list[Message], int]:
    """Every message of the scenario, and how many of the valid ones are duplicates."""
    msgs: list[Message] = [m for m, _ in DEAD.values()]
    valid: list[dict[str, Any]] = []
    # 2121 Ovanåker. pc-standard: 10 PCs in BUF every day of November; one PC in KS from the
    # 16th. storage-file: a 100 GiB share in BUF on 1-15 November, nothing after. print-page: one
    # event without a cost centre; in October one page in KS; in January 2027 100 pages in BUF.
    for day in NOVEMBER:
        for n in range(10):
            valid.append(
                event(f"pc{n}-{day}", "2121", local(day), "pc-standard", f"PC{n:02}", cost_centre="BUF")
            )
        if day.day >= 16:
            valid.append(event(f"pcx-{day}", "2121", local(day), "pc-standard", "PCX", cost_centre="KS"))
        if day.day <= 15:
            valid.append(
                event(f"s1-{day}", "2121", local(day), "storage-file", "S1", "100", cost_centre="BUF")
            )
    valid.append(event("print-1", "2121", local(date(2026, 11, 9)), "print-page", "Q1", "3"))
    valid.append(event("print-oct", "2121", local(date(2026, 10, 20)), "print-page", "Q1", cost_centre="KS"))
    valid.append(
        event("print-jan", "2121", local(date(2027, 1, 15)), "print-page", "Q1", "100", cost_centre="BUF")
    )
    # DST in the analysts' day: 28 March 23:30 UTC is 00:30 on the 29th (CET, UTC+1); 31 March
    # 22:30 UTC is 00:30 on 1 April (CEST, UTC+2).
    valid.append(
        event("dst-spring-1", "2121", datetime(2026, 3, 28, 23, 30, tzinfo=UTC), "ticket-incident", "TS1")
    )
    valid.append(
        event("dst-spring-2", "2121", datetime(2026, 3, 31, 22, 30, tzinfo=UTC), "ticket-incident", "TS2")
    )
    # 2132 Nordanstig. storage-file in KS on 1 November only: share S2 read twice (120 then 180
    # GiB: the larger counts), share S3 60 GiB. backup: 1 GiB in each of BUF, KS, SOC all month.
    # print-page: the same id as 2121's event, which is another municipality's: not a duplicate.
    nov1 = date(2026, 11, 1)
    valid.append(event("s2-a", "2132", local(nov1, 1), "storage-file", "S2", "120", cost_centre="KS"))
    valid.append(event("s2-b", "2132", local(nov1, 9), "storage-file", "S2", "180", cost_centre="KS"))
    valid.append(event("s3", "2132", local(nov1, 9), "storage-file", "S3", "60", cost_centre="KS"))
    for day in NOVEMBER:
        for cc in ("BUF", "KS", "SOC"):
            valid.append(event(f"b-{cc}-{day}", "2132", local(day), "backup", f"B-{cc}", "1", cost_centre=cc))
    valid.append(event("print-1", "2132", local(date(2026, 11, 9)), "print-page", "Q1", cost_centre="BUF"))
    # 2161 Ljusdal. 250 tickets in November: BUF 149 of quantity "1" and one of JSON number 1
    # (150); SOC 98 of "1" and one of "2" (100). backup: 300 GiB in BUF all month.
    for n in range(149):
        valid.append(
            event(
                f"t-buf-{n}",
                "2161",
                local(date(2026, 11, 1 + n % 30), 10),
                "ticket-incident",
                f"T{n}",
                cost_centre="BUF",
            )
        )
    valid.append(
        event("t-buf-number", "2161", local(date(2026, 11, 2)), "ticket-incident", "TN", 1, cost_centre="BUF")
    )
    for n in range(98):
        valid.append(
            event(
                f"t-soc-{n}",
                "2161",
                local(date(2026, 11, 1 + n % 30), 11),
                "ticket-incident",
                f"TS{n}",
                cost_centre="SOC",
            )
        )
    valid.append(
        event("t-soc-two", "2161", local(date(2026, 11, 3)), "ticket-incident", "TT", "2", cost_centre="SOC")
    )
    for day in NOVEMBER:
        valid.append(event(f"b-{day}", "2161", local(day), "backup", "B1", "300", cost_centre="BUF"))
    # 2182 Söderhamn. m365-e3: 1001 seats in BUF every day of November.
    for day in NOVEMBER:
        for n in range(1001):
            valid.append(event(f"u{n}-{day}", "2182", local(day), "m365-e3", f"user{n}", cost_centre="BUF"))
    # 2183 Bollnäs. pc-standard: PC7 on 10 November in BUF and in SOC (one subject, two cost
    # centres, one day); PC8 in KS on 3 and 4 November. m365-e3: two seats in KS all month. A
    # ticket 18 hours after the commands' clock: less than a day ahead, so taken.
    valid.append(event("pc7-buf", "2183", local(date(2026, 11, 10)), "pc-standard", "PC7", cost_centre="BUF"))
    valid.append(
        event("pc7-soc", "2183", local(date(2026, 11, 10), 7), "pc-standard", "PC7", cost_centre="SOC")
    )
    valid.append(event("pc8-3", "2183", local(date(2026, 11, 3)), "pc-standard", "PC8", cost_centre="KS"))
    valid.append(event("pc8-4", "2183", local(date(2026, 11, 4)), "pc-standard", "PC8", cost_centre="KS"))
    for day in NOVEMBER:
        for n in range(2):
            valid.append(event(f"m-{n}-{day}", "2183", local(day), "m365-e3", f"seat{n}", cost_centre="KS"))
    valid.append(
        event("near-future", "2183", "2027-02-11T06:00:00Z", "ticket-incident", "TF", cost_centre="BUF")
    )
    # 2184 Hudiksvall. October pc-standard in BUF: PCD at 24 October 22:30 UTC (00:30 on the 25th,
    # CEST) and at 25 October 22:30 UTC (23:30 on the 25th, CET, after the clocks went back): one
    # day. Tickets in SOC: 30 September 22:30 UTC is 1 October 00:30 (CEST), 31 October 22:59:59
    # UTC is 23:59:59 on the 31st (CET): both October; 31 October 23:30 UTC is 1 November (BUF).
    valid.append(
        event(
            "pcd-1",
            "2184",
            datetime(2026, 10, 24, 22, 30, tzinfo=UTC),
            "pc-standard",
            "PCD",
            cost_centre="BUF",
        )
    )
    valid.append(
        event(
            "pcd-2",
            "2184",
            datetime(2026, 10, 25, 22, 30, tzinfo=UTC),
            "pc-standard",
            "PCD",
            cost_centre="BUF",
        )
    )
    valid.append(
        event(
            "t-oct-first",
            "2184",
            datetime(2026, 9, 30, 22, 30, tzinfo=UTC),
            "ticket-incident",
            "TO1",
            cost_centre="SOC",
        )
    )
    valid.append(
        event(
            "t-oct-last",
            "2184",
            datetime(2026, 10, 31, 22, 59, 59, tzinfo=UTC),
            "ticket-incident",
            "TO2",
            cost_centre="SOC",
        )
    )
    valid.append(
        event(
            "t-nov-first",
            "2184",
            datetime(2026, 10, 31, 23, 30, tzinfo=UTC),
            "ticket-incident",
            "TN1",
            cost_centre="BUF",
        )
    )
    # Packages count on the municipality's total: 30 GiB in KS and 30 GiB in SOC all November are
    # 60 GiB, one package, shared 30 : 30.
    for day in NOVEMBER:
        for cc in ("KS", "SOC"):
            valid.append(
                event(f"s30-{cc}-{day}", "2184", local(day), "storage-file", f"S-{cc}", "30", cost_centre=cc)
            )
    # A quantity as a JSON number with decimals, and a time with an offset instead of Z (December,
    # which no run bills).
    valid.append(
        event("num-dec", "2183", local(date(2026, 12, 5)), "storage-file", "SN", 2.5, cost_centre="KS")
    )
    valid.append(
        event("offset", "2183", "2026-12-05T07:00:00+01:00", "storage-file", "SO", "4", cost_centre="KS")
    )
    # The refused "bad-negative" sent again, fixed: a refused message was never seen as an event.
    valid.append(event("bad-negative", "2183", DEC, "pc-standard", "PC-FIXED", cost_centre="KS"))
    # Zero usage makes no line: a share reading 0 GiB, a ticket of quantity 0 in KS.
    valid.append(event("s0", "2184", local(date(2026, 11, 5)), "storage-file", "S0", "0", cost_centre="BUF"))
    valid.append(
        event("t-zero", "2184", local(date(2026, 11, 5)), "ticket-incident", "TZ", "0", cost_centre="KS")
    )
    assert len({(e["data"]["municipality"], e["id"]) for e in valid}) == len(valid)
    # Duplicates, all dropped: a collector run again (2121's BUF PCs of 1 November resent as they
    # were), and one ticket id of 2161 again with another quantity and cost centre.
    duplicates = [e for e in valid if e["data"]["municipality"] == "2121" and e["id"].endswith("-2026-11-01")]
    duplicates = [
        e
        for e in duplicates
        if e["data"].get("cost_centre") == "BUF" and e["data"]["service"] == "pc-standard"
    ]
    assert len(duplicates) == 10
    duplicates.append(
        event("t-buf-0", "2161", local(date(2026, 11, 20)), "ticket-incident", "TX", "5", cost_centre="SOC")
    )
    msgs += [keyed(e) for e in valid + duplicates]
    return msgs, len(duplicates)


@dataclass
class World:
    env: dict[str, str]
    database: str
    topic: str
    dead_topic: str
    worker_out: str
    runs: dict[str, dict[str, Any]]
    out: Path
    s3_bucket: str
    s3_client: Any
    valid: int
    duplicates: int
    letters: list[dict[str, Any]]

    def csv(self, period: str, folder: str = "csv") -> str:
        return (self.out / folder / f"{self.runs[period]['run_id']}.csv").read_text(encoding="utf-8")

    def query(self, sql: str, params: dict[str, Any] | None = None) -> list[tuple[Any, ...]]:
        from chargeback.clickhouse import connect

        ch = connect(self.env["CHARGEBACK_CLICKHOUSE_URL"], self.database)
        try:
            rows: list[tuple[Any, ...]] = ch.execute(sql, params or {})
            return rows
        finally:
            ch.close()


def chargeback(env: dict[str, str], *args: str) -> str:
    """The ``chargeback`` command on the scenario's clock."""
    faketime = shutil.which("faketime")
    assert faketime, "faketime is needed (scripts/bootstrap installs it)"
    proc = subprocess.run(
        [faketime, "-f", f"@{NOW}", sys.executable, "-m", "chargeback_cli", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    assert proc.returncode == 0, f"chargeback {' '.join(args)} failed:\n{proc.stdout}\n{proc.stderr}"
    return proc.stdout


@pytest.fixture(scope="module")
def world(
    tmp_path_factory: pytest.TempPathFactory,
    kafka_service: devstack.Endpoints,
    clickhouse_service: devstack.Endpoints,
    s3_service: devstack.Endpoints,
) -> Iterator[World]:
    from kafka import KafkaAdminClient, KafkaProducer
    from kafka.admin import NewTopic

    from chargeback import s3
    from chargeback.clickhouse import connect

    assert kafka_service.kafka_bootstrap and clickhouse_service.clickhouse_url and s3_service.s3_endpoint_url
    tmp = tmp_path_factory.mktemp("contract")
    (tmp / "catalogue.yaml").write_text(CATALOGUE, encoding="utf-8")
    topic = f"c-{uuid.uuid4().hex[:8]}"
    database = f"c_{uuid.uuid4().hex[:8]}"
    bucket = f"c-{uuid.uuid4().hex[:8]}"
    admin = KafkaAdminClient(bootstrap_servers=kafka_service.kafka_bootstrap)
    admin.create_topics(
        [NewTopic(name, num_partitions=4, replication_factor=1) for name in (topic, f"{topic}.dead")]
    )
    server = connect(clickhouse_service.clickhouse_url, "default")
    server.execute(f"CREATE DATABASE {database}")
    s3_client = s3.make_client(
        endpoint_url=s3_service.s3_endpoint_url,
        region="us-east-1",
        access_key_id="test",
        secret_access_key="test-secret",
    )
    s3_client.create_bucket(Bucket=bucket)
    env = {k: v for k, v in os.environ.items() if not k.startswith("CHARGEBACK_")}
    env.update(
        TZ="UTC",
        FAKETIME_DONT_FAKE_MONOTONIC="1",
        CHARGEBACK_KAFKA_BOOTSTRAP=kafka_service.kafka_bootstrap,
        CHARGEBACK_USAGE_TOPIC=topic,
        CHARGEBACK_DEAD_TOPIC=f"{topic}.dead",
        CHARGEBACK_WORKER_APP_ID=f"worker-{topic}",
        CHARGEBACK_CATALOGUE=str(tmp / "catalogue.yaml"),
        CHARGEBACK_CLICKHOUSE_URL=clickhouse_service.clickhouse_url,
        CHARGEBACK_CLICKHOUSE_DATABASE=database,
        CHARGEBACK_S3_ENDPOINT_URL=s3_service.s3_endpoint_url,
        CHARGEBACK_S3_ACCESS_KEY_ID="test",
        CHARGEBACK_S3_SECRET_ACCESS_KEY="test-secret",
    )
    try:
        messages, duplicates = scenario()
        producer = KafkaProducer(bootstrap_servers=kafka_service.kafka_bootstrap, acks="all", linger_ms=20)
        for m in messages:
            producer.send(topic, key=m.key, value=m.value)
        producer.flush()
        producer.close()
        chargeback(env, "db", "migrate")
        chargeback(env, "db", "sync-catalogue")
        worker_out = chargeback(env, "stream", "worker", "--exit-when-idle", "3")
        runs = {}
        out = tmp / "out"
        for period in ("2026-10", "2026-11", "2027-01"):
            runs[period] = json.loads(chargeback(env, "billing", "run", "--period", period, "--json"))
            chargeback(
                env, "billing", "export", runs[period]["run_id"], "--format", "csv", "--to", str(out / "csv")
            )
        nov = runs["2026-11"]["run_id"]
        chargeback(env, "billing", "export", nov, "--format", "json", "--to", str(out / "json"))
        for fmt in ("csv", "json"):
            chargeback(
                env, "billing", "export", nov, "--format", fmt, "--to", f"s3://{bucket}/exports/2026-11"
            )
        yield World(
            env=env,
            database=database,
            topic=topic,
            dead_topic=f"{topic}.dead",
            worker_out=worker_out,
            runs=runs,
            out=out,
            s3_bucket=bucket,
            s3_client=s3_client,
            valid=len(messages) - len(DEAD),
            duplicates=duplicates,
            letters=dead_letters(kafka_service.kafka_bootstrap, f"{topic}.dead"),
        )
    finally:
        server.execute(f"DROP DATABASE IF EXISTS {database}")
        server.close()
        with contextlib.suppress(Exception):  # a memory-only broker; cleanup must not hide a result
            admin.delete_topics([topic, f"{topic}.dead"])
        admin.close()
        for page in s3_client.get_paginator("list_objects_v2").paginate(Bucket=bucket):
            keys = [{"Key": obj["Key"]} for obj in page.get("Contents", [])]
            if keys:
                s3_client.delete_objects(Bucket=bucket, Delete={"Objects": keys})
        s3_client.delete_bucket(Bucket=bucket)


def rows(text: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(text)))


def line(world: World, period: str, municipality: str, cost_centre: str, service: str) -> dict[str, str]:
    found = [
        r
        for r in rows(world.csv(period))
        if (r["municipality"], r["cost_centre"], r["service"]) == (municipality, cost_centre, service)
    ]
    assert len(found) == 1, f"{period} {municipality} {cost_centre} {service}: {found}"
    return found[0]


# October 2026, 31 days, price list "2026" (valid from 1 January; "2026.2" starts on 2 October,
# after the month's first day). Lines sorted by municipality, cost centre, service.
#  Every member: base-offering flat 125000.00 (VAT 31250.00); backup has no usage in October, so
#    its minimum 500.00 is charged with quantity 0 to UNALLOCATED and unit_price is empty (VAT
#    125.00); dpo-shared: 100000.00 / 12 = 8333.333 -> 8333.33 first, then 833333 öre / 6 =
#    138888.83: each gets 138888, the 5 öre left go to the equal remainders' lower codes: 1388.89
#    for 2121, 2132, 2161, 2182, 2183 and 1388.88 for 2184 (VAT 347.2225 and 347.22 -> 347.22);
#    soc-shared: 1200000.00 / 12 = 100000.00 by inhabitants (of 129400): 2121 11300 -> 8732.6120,
#    2132 9400 -> 7264.2967, 2161 19000 -> 14683.1530, 2182 25400 -> 19629.0572, 2183 26500 ->
#    20479.1345, 2184 37800 -> 29211.7465; floors leave 3 öre for the largest remainders (2182
#    .72, 2132 .67, 2184 .65): 8732.61, 7264.30, 14683.15, 19629.06, 20479.13, 29211.75; VAT
#    2183.1525 -> 2183.15, 1816.075 -> 1816.08 (half-up), 3670.79, 4907.265 -> 4907.27, 5119.78,
#    7302.94.
#  2121 KS print-page: 1 page x 12.34 = 12.34; VAT 3.085 -> 3.09 (half-up; half-even gives 3.08).
#  2184 BUF pc-standard: PCD on one day (25 October) / 31 = 0.0322580 -> 0.032258;
#    0.032258 x 310.00 = 9.99998 -> 10.00; unit_price 10.00 / 0.032258 = 310.0006 -> 310.00.
#  2184 SOC ticket-incident: 2 tickets (1 and 31 October local), graduated 2 x 95.00 = 190.00.
OCTOBER_CSV = """\
RUN,2026-10,2121,KS,print-page,1,sida,12.34,12.34,0.25,3.09,SEK,2026
RUN,2026-10,2121,UNALLOCATED,backup,0,GiB,,500.00,0.25,125.00,SEK,2026
RUN,2026-10,2121,UNALLOCATED,base-offering,1,mån,125000.00,125000.00,0.25,31250.00,SEK,2026
RUN,2026-10,2121,UNALLOCATED,dpo-shared,1,mån,1388.89,1388.89,0.25,347.22,SEK,2026
RUN,2026-10,2121,UNALLOCATED,soc-shared,1,mån,8732.61,8732.61,0.25,2183.15,SEK,2026
RUN,2026-10,2132,UNALLOCATED,backup,0,GiB,,500.00,0.25,125.00,SEK,2026
RUN,2026-10,2132,UNALLOCATED,base-offering,1,mån,125000.00,125000.00,0.25,31250.00,SEK,2026
RUN,2026-10,2132,UNALLOCATED,dpo-shared,1,mån,1388.89,1388.89,0.25,347.22,SEK,2026
RUN,2026-10,2132,UNALLOCATED,soc-shared,1,mån,7264.30,7264.30,0.25,1816.08,SEK,2026
RUN,2026-10,2161,UNALLOCATED,backup,0,GiB,,500.00,0.25,125.00,SEK,2026
RUN,2026-10,2161,UNALLOCATED,base-offering,1,mån,125000.00,125000.00,0.25,31250.00,SEK,2026
RUN,2026-10,2161,UNALLOCATED,dpo-shared,1,mån,1388.89,1388.89,0.25,347.22,SEK,2026
RUN,2026-10,2161,UNALLOCATED,soc-shared,1,mån,14683.15,14683.15,0.25,3670.79,SEK,2026
RUN,2026-10,2182,UNALLOCATED,backup,0,GiB,,500.00,0.25,125.00,SEK,2026
RUN,2026-10,2182,UNALLOCATED,base-offering,1,mån,125000.00,125000.00,0.25,31250.00,SEK,2026
RUN,2026-10,2182,UNALLOCATED,dpo-shared,1,mån,1388.89,1388.89,0.25,347.22,SEK,2026
RUN,2026-10,2182,UNALLOCATED,soc-shared,1,mån,19629.06,19629.06,0.25,4907.27,SEK,2026
RUN,2026-10,2183,UNALLOCATED,backup,0,GiB,,500.00,0.25,125.00,SEK,2026
RUN,2026-10,2183,UNALLOCATED,base-offering,1,mån,125000.00,125000.00,0.25,31250.00,SEK,2026
RUN,2026-10,2183,UNALLOCATED,dpo-shared,1,mån,1388.89,1388.89,0.25,347.22,SEK,2026
RUN,2026-10,2183,UNALLOCATED,soc-shared,1,mån,20479.13,20479.13,0.25,5119.78,SEK,2026
RUN,2026-10,2184,BUF,pc-standard,0.032258,st,310.00,10.00,0.25,2.50,SEK,2026
RUN,2026-10,2184,SOC,ticket-incident,2,st,95.00,190.00,0.25,47.50,SEK,2026
RUN,2026-10,2184,UNALLOCATED,backup,0,GiB,,500.00,0.25,125.00,SEK,2026
RUN,2026-10,2184,UNALLOCATED,base-offering,1,mån,125000.00,125000.00,0.25,31250.00,SEK,2026
RUN,2026-10,2184,UNALLOCATED,dpo-shared,1,mån,1388.88,1388.88,0.25,347.22,SEK,2026
RUN,2026-10,2184,UNALLOCATED,soc-shared,1,mån,29211.75,29211.75,0.25,7302.94,SEK,2026
"""

# November 2026, 30 days, price list "2026.2" (valid from 2 October: the latest on or before
# 1 November): the 2026 prices times 1, print-page overridden to 20.00. Flat, dpo-shared and
# soc-shared as in October.
#  2121 pc-standard: BUF 10 PCs x 30 days / 30 = 10; KS a PC from the 16th: 15 / 30 = 0.5. Total
#    10.5 x 310.00 = 3255.00, split 10 : 0.5 = 3100.00 and 155.00 (VAT 775.00, 38.75).
#  2121 BUF storage-file: 100 GiB x 15 days / 30 = 50 GiB-months; package ceil(50/100) = 1 x
#    450.00; unit_price 450.00 / 50 = 9.00.
#  2121 print-page: no cost centre -> UNALLOCATED; quantity 3 x 20.00 = 60.00.
#  2132 KS storage-file: 1 November, S2 max(120, 180) = 180, S3 60: 240 / 30 = 8; 1 package
#    450.00; unit_price 56.25.
#  2132 backup: 1 GiB all month in each of BUF, KS, SOC: 3 x 2.00 = 6.00 < minimum 500.00, so
#    500.00 split 1 : 1 : 1 in öre: 16666 each, 2 öre left to the tied remainders' lower codes:
#    BUF 166.67, KS 166.67, SOC 166.66; VAT 41.6675 -> 41.67, 41.665 -> 41.67 (half-up).
#  2132 BUF print-page: id "print-1" as 2121's, another municipality: 1 x 20.00.
#  2161 ticket-incident: BUF 149 + 1 (a JSON number) = 150, SOC 98 + 2 = 100; the resent t-buf-0
#    is dropped. Graduated on the total 250: 200 x 95.00 + 50 x 80.00 = 23000.00 (volume would be
#    20000.00), split 150 : 100 = 13800.00 and 9200.00; unit_price 92.00.
#  2161 BUF backup: 300 GiB all month = 300 x 2.00 = 600.00 > minimum.
#  2182 BUF m365-e3: 1001 seats all month = 1001; volume: all at the second tier's 240.00 =
#    240240.00 (graduated would be 260240.00).
#  2183 pc-standard: PC7 in BUF and in SOC on 10 November: counts in both, 1 / 30 = 0.033333
#    each; PC8 in KS 2 days: 2 / 30 = 0.0666667 -> 0.066667 (half-up). Total 0.133333 x 310.00 =
#    41.33323 -> 41.33 = 4133 öre, split 0.033333 : 0.033333 : 0.066667 = 1033.25, 1033.25,
#    2066.51: floors 1033 + 1033 + 2066, the öre left to KS: 10.33, 10.33, 20.67. unit_price
#    10.33 / 0.033333 = 309.903 -> 309.90, 20.67 / 0.066667 = 310.048 -> 310.05. VAT 2.5825 ->
#    2.58, 5.1675 -> 5.17.
#  2183 KS m365-e3: 2 seats, first tier: 520.00.
#  2184 BUF ticket-incident: 31 October 23:30 UTC is 1 November 00:30 local: 95.00. Its KS
#    ticket of quantity 0 and its BUF share of 0 GiB make no line (quantity and amount 0).
#  2184 storage-file: KS 30 and SOC 30 GiB all month; the package counts on the total 60: ceil(0.6)
#    = 1 x 450.00 shared 225.00 / 225.00 (a package per cost centre would be 900.00); unit_price
#    225.00 / 30 = 7.50; VAT 56.25.
NOVEMBER_CSV = """\
RUN,2026-11,2121,BUF,pc-standard,10,st,310.00,3100.00,0.25,775.00,SEK,2026.2
RUN,2026-11,2121,BUF,storage-file,50,GiB,9.00,450.00,0.25,112.50,SEK,2026.2
RUN,2026-11,2121,KS,pc-standard,0.5,st,310.00,155.00,0.25,38.75,SEK,2026.2
RUN,2026-11,2121,UNALLOCATED,backup,0,GiB,,500.00,0.25,125.00,SEK,2026.2
RUN,2026-11,2121,UNALLOCATED,base-offering,1,mån,125000.00,125000.00,0.25,31250.00,SEK,2026.2
RUN,2026-11,2121,UNALLOCATED,dpo-shared,1,mån,1388.89,1388.89,0.25,347.22,SEK,2026.2
RUN,2026-11,2121,UNALLOCATED,print-page,3,sida,20.00,60.00,0.25,15.00,SEK,2026.2
RUN,2026-11,2121,UNALLOCATED,soc-shared,1,mån,8732.61,8732.61,0.25,2183.15,SEK,2026.2
RUN,2026-11,2132,BUF,backup,1,GiB,166.67,166.67,0.25,41.67,SEK,2026.2
RUN,2026-11,2132,BUF,print-page,1,sida,20.00,20.00,0.25,5.00,SEK,2026.2
RUN,2026-11,2132,KS,backup,1,GiB,166.67,166.67,0.25,41.67,SEK,2026.2
RUN,2026-11,2132,KS,storage-file,8,GiB,56.25,450.00,0.25,112.50,SEK,2026.2
RUN,2026-11,2132,SOC,backup,1,GiB,166.66,166.66,0.25,41.67,SEK,2026.2
RUN,2026-11,2132,UNALLOCATED,base-offering,1,mån,125000.00,125000.00,0.25,31250.00,SEK,2026.2
RUN,2026-11,2132,UNALLOCATED,dpo-shared,1,mån,1388.89,1388.89,0.25,347.22,SEK,2026.2
RUN,2026-11,2132,UNALLOCATED,soc-shared,1,mån,7264.30,7264.30,0.25,1816.08,SEK,2026.2
RUN,2026-11,2161,BUF,backup,300,GiB,2.00,600.00,0.25,150.00,SEK,2026.2
RUN,2026-11,2161,BUF,ticket-incident,150,st,92.00,13800.00,0.25,3450.00,SEK,2026.2
RUN,2026-11,2161,SOC,ticket-incident,100,st,92.00,9200.00,0.25,2300.00,SEK,2026.2
RUN,2026-11,2161,UNALLOCATED,base-offering,1,mån,125000.00,125000.00,0.25,31250.00,SEK,2026.2
RUN,2026-11,2161,UNALLOCATED,dpo-shared,1,mån,1388.89,1388.89,0.25,347.22,SEK,2026.2
RUN,2026-11,2161,UNALLOCATED,soc-shared,1,mån,14683.15,14683.15,0.25,3670.79,SEK,2026.2
RUN,2026-11,2182,BUF,m365-e3,1001,st,240.00,240240.00,0.25,60060.00,SEK,2026.2
RUN,2026-11,2182,UNALLOCATED,backup,0,GiB,,500.00,0.25,125.00,SEK,2026.2
RUN,2026-11,2182,UNALLOCATED,base-offering,1,mån,125000.00,125000.00,0.25,31250.00,SEK,2026.2
RUN,2026-11,2182,UNALLOCATED,dpo-shared,1,mån,1388.89,1388.89,0.25,347.22,SEK,2026.2
RUN,2026-11,2182,UNALLOCATED,soc-shared,1,mån,19629.06,19629.06,0.25,4907.27,SEK,2026.2
RUN,2026-11,2183,BUF,pc-standard,0.033333,st,309.90,10.33,0.25,2.58,SEK,2026.2
RUN,2026-11,2183,KS,m365-e3,2,st,260.00,520.00,0.25,130.00,SEK,2026.2
RUN,2026-11,2183,KS,pc-standard,0.066667,st,310.05,20.67,0.25,5.17,SEK,2026.2
RUN,2026-11,2183,SOC,pc-standard,0.033333,st,309.90,10.33,0.25,2.58,SEK,2026.2
RUN,2026-11,2183,UNALLOCATED,backup,0,GiB,,500.00,0.25,125.00,SEK,2026.2
RUN,2026-11,2183,UNALLOCATED,base-offering,1,mån,125000.00,125000.00,0.25,31250.00,SEK,2026.2
RUN,2026-11,2183,UNALLOCATED,dpo-shared,1,mån,1388.89,1388.89,0.25,347.22,SEK,2026.2
RUN,2026-11,2183,UNALLOCATED,soc-shared,1,mån,20479.13,20479.13,0.25,5119.78,SEK,2026.2
RUN,2026-11,2184,BUF,ticket-incident,1,st,95.00,95.00,0.25,23.75,SEK,2026.2
RUN,2026-11,2184,KS,storage-file,30,GiB,7.50,225.00,0.25,56.25,SEK,2026.2
RUN,2026-11,2184,SOC,storage-file,30,GiB,7.50,225.00,0.25,56.25,SEK,2026.2
RUN,2026-11,2184,UNALLOCATED,backup,0,GiB,,500.00,0.25,125.00,SEK,2026.2
RUN,2026-11,2184,UNALLOCATED,base-offering,1,mån,125000.00,125000.00,0.25,31250.00,SEK,2026.2
RUN,2026-11,2184,UNALLOCATED,dpo-shared,1,mån,1388.88,1388.88,0.25,347.22,SEK,2026.2
RUN,2026-11,2184,UNALLOCATED,soc-shared,1,mån,29211.75,29211.75,0.25,7302.94,SEK,2026.2
"""

# January 2027, 31 days, price list "2027": every 2026 price times 1.032, each rounded to öre.
#  print-page 12.34 x 1.032 = 12.73488 -> 12.73; 2121 BUF 100 pages x 12.73 = 1273.00 (indexing
#    the amount instead would give 1273.49); VAT 318.25.
#  base-offering 125000.00 x 1.032 = 129000.00 (VAT 32250.00); backup minimum 500.00 x 1.032 =
#    516.00 (VAT 129.00).
#  dpo-shared 100000.00 x 1.032 = 103200.00 / 12 = 8600.00 / 6 = 1433.333: 143333 öre each, 2 öre
#    left to the lower codes 2121 and 2132: 1433.34 (VAT 358.335 -> 358.34), others 1433.33
#    (358.3325 -> 358.33).
#  soc-shared 1200000.00 x 1.032 = 1238400.00 / 12 = 103200.00 by inhabitants: 2121 9012.0556,
#    2132 7496.7543, 2161 15153.0139, 2182 20257.1870, 2183 21134.4668, 2184 30146.5224; the öre
#    floors 901205, 749675, 1515301, 2025718, 2113446, 3014652 (sum 10319997) leave 3 öre for the
#    largest remainders .70 (2182), .68 (2183), .56 (2121): 9012.06, 7496.75, 15153.01, 20257.19,
#    21134.47, 30146.52. VAT 2253.015 -> 2253.02,
#    1874.1875 -> 1874.19, 3788.2525 -> 3788.25, 5064.2975 -> 5064.30, 5283.6175 -> 5283.62,
#    7536.63.
JANUARY_CSV = """\
RUN,2027-01,2121,BUF,print-page,100,sida,12.73,1273.00,0.25,318.25,SEK,2027
RUN,2027-01,2121,UNALLOCATED,backup,0,GiB,,516.00,0.25,129.00,SEK,2027
RUN,2027-01,2121,UNALLOCATED,base-offering,1,mån,129000.00,129000.00,0.25,32250.00,SEK,2027
RUN,2027-01,2121,UNALLOCATED,dpo-shared,1,mån,1433.34,1433.34,0.25,358.34,SEK,2027
RUN,2027-01,2121,UNALLOCATED,soc-shared,1,mån,9012.06,9012.06,0.25,2253.02,SEK,2027
RUN,2027-01,2132,UNALLOCATED,backup,0,GiB,,516.00,0.25,129.00,SEK,2027
RUN,2027-01,2132,UNALLOCATED,base-offering,1,mån,129000.00,129000.00,0.25,32250.00,SEK,2027
RUN,2027-01,2132,UNALLOCATED,dpo-shared,1,mån,1433.34,1433.34,0.25,358.34,SEK,2027
RUN,2027-01,2132,UNALLOCATED,soc-shared,1,mån,7496.75,7496.75,0.25,1874.19,SEK,2027
RUN,2027-01,2161,UNALLOCATED,backup,0,GiB,,516.00,0.25,129.00,SEK,2027
RUN,2027-01,2161,UNALLOCATED,base-offering,1,mån,129000.00,129000.00,0.25,32250.00,SEK,2027
RUN,2027-01,2161,UNALLOCATED,dpo-shared,1,mån,1433.33,1433.33,0.25,358.33,SEK,2027
RUN,2027-01,2161,UNALLOCATED,soc-shared,1,mån,15153.01,15153.01,0.25,3788.25,SEK,2027
RUN,2027-01,2182,UNALLOCATED,backup,0,GiB,,516.00,0.25,129.00,SEK,2027
RUN,2027-01,2182,UNALLOCATED,base-offering,1,mån,129000.00,129000.00,0.25,32250.00,SEK,2027
RUN,2027-01,2182,UNALLOCATED,dpo-shared,1,mån,1433.33,1433.33,0.25,358.33,SEK,2027
RUN,2027-01,2182,UNALLOCATED,soc-shared,1,mån,20257.19,20257.19,0.25,5064.30,SEK,2027
RUN,2027-01,2183,UNALLOCATED,backup,0,GiB,,516.00,0.25,129.00,SEK,2027
RUN,2027-01,2183,UNALLOCATED,base-offering,1,mån,129000.00,129000.00,0.25,32250.00,SEK,2027
RUN,2027-01,2183,UNALLOCATED,dpo-shared,1,mån,1433.33,1433.33,0.25,358.33,SEK,2027
RUN,2027-01,2183,UNALLOCATED,soc-shared,1,mån,21134.47,21134.47,0.25,5283.62,SEK,2027
RUN,2027-01,2184,UNALLOCATED,backup,0,GiB,,516.00,0.25,129.00,SEK,2027
RUN,2027-01,2184,UNALLOCATED,base-offering,1,mån,129000.00,129000.00,0.25,32250.00,SEK,2027
RUN,2027-01,2184,UNALLOCATED,dpo-shared,1,mån,1433.33,1433.33,0.25,358.33,SEK,2027
RUN,2027-01,2184,UNALLOCATED,soc-shared,1,mån,30146.52,30146.52,0.25,7536.63,SEK,2027
"""


def expected(world: World, period: str, text: str) -> list[str]:
    return [COLUMNS, *text.replace("RUN,", f"{world.runs[period]['run_id']},").splitlines()]


@pytest.mark.parametrize(
    ("period", "text"), [("2026-10", OCTOBER_CSV), ("2026-11", NOVEMBER_CSV), ("2027-01", JANUARY_CSV)]
)
def test_csv_export_of_each_month_line_by_line(world: World, period: str, text: str) -> None:
    assert world.csv(period).splitlines() == expected(world, period, text)


def test_the_worker_stores_each_valid_event_once_and_refuses_the_rest(world: World) -> None:
    # 30900 messages: 16 refused, 11 duplicates (10 resent PCs, 1 resent ticket id), 30873 stored.
    assert (world.valid, world.duplicates) == (30884, 11)
    assert "received 30900, stored 30873, duplicates 11, dead letters 16" in world.worker_out
    assert world.query("SELECT count() FROM v_usage_events") == [(30873,)]
    # The fixed copy of a refused message is stored.
    assert world.query("SELECT subject FROM v_usage_events WHERE event_id = 'bad-negative'") == [
        ("PC-FIXED",)
    ]
    # The refused messages came first on their partitions: the pipeline went on after each.
    assert world.query("SELECT count() FROM v_usage_events WHERE subject = 'PC-BAD'") == [(0,)]


def dead_letters(bootstrap: str, topic: str) -> list[dict[str, Any]]:
    """Every message of the dead-letter topic, read from the start without a consumer group."""
    from kafka import KafkaConsumer, TopicPartition

    consumer = KafkaConsumer(bootstrap_servers=bootstrap, consumer_timeout_ms=2000, enable_auto_commit=False)
    try:
        partitions = [TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic) or ())]
        consumer.assign(partitions)
        consumer.seek_to_beginning(*partitions)
        return [json.loads(m.value) for m in consumer]
    finally:
        consumer.close()


def received(letter: dict[str, Any]) -> bytes:
    """The message a dead letter holds, as it was sent (``value_base64`` when it is not UTF-8)."""
    if letter["value"] is not None:
        return str(letter["value"]).encode()
    return base64.b64decode(str(letter["value_base64"]))


def test_every_invalid_message_is_a_dead_letter_with_its_reason(world: World) -> None:
    letters = world.letters
    assert len(letters) == len(DEAD)
    for eid, (message, words) in DEAD.items():
        found = [x for x in letters if f'"id": "{eid}"'.encode() in received(x)]
        assert len(found) == 1, eid
        letter = found[0]
        assert words.lower() in str(letter["reason"]).lower(), (eid, letter["reason"])
        assert received(letter) == message.value
        assert letter["key"] == (message.key.decode() if message.key else None), eid
        assert letter["topic"] == world.topic
    # The analysts' view holds the same letters with the same reasons.
    stored = world.query("SELECT reason, value FROM v_dead_letters")
    expected = [(str(x["reason"]), received(x).decode("utf-8", "replace")) for x in letters]
    assert sorted(stored) == sorted(expected)


def test_a_message_without_a_key_or_with_another_key_is_refused(world: World) -> None:
    reasons = {
        eid: str(x["reason"])
        for x in world.letters
        for eid in ("bad-nokey", "bad-wrongkey")
        if f'"id": "{eid}"' in str(x["value"])
    }
    assert reasons == {
        "bad-nokey": "message has no key: it must be the event's municipality 2183",
        "bad-wrongkey": "message key '2184' is not the event's municipality 2183",
    }


def test_an_id_seen_before_in_its_municipality_is_dropped_whatever_its_fields(world: World) -> None:
    # t-buf-0 came again as 5 tickets in SOC: the first one stays, alone.
    assert world.query(
        "SELECT cost_centre, subject, quantity FROM v_usage_events "
        "WHERE municipality = '2161' AND event_id = 't-buf-0'"
    ) == [("BUF", "T0", 1)]
    # The same id in another municipality is another event.
    assert world.query(
        "SELECT municipality, cost_centre, quantity FROM v_usage_events "
        "WHERE event_id = 'print-1' ORDER BY municipality"
    ) == [("2121", "UNALLOCATED", 3), ("2132", "BUF", 1)]
    # The 2121 PCs of 1 November sent twice are stored once: 10 in BUF that day.
    assert world.query(
        "SELECT count() FROM v_usage_events WHERE municipality = '2121' AND service = 'pc-standard' "
        "AND cost_centre = 'BUF' AND day = toDate('2026-11-01')"
    ) == [(10,)]


def test_a_quantity_may_be_a_json_number_and_a_time_any_offset(world: World) -> None:
    assert world.query(
        "SELECT event_id, quantity, event_time, day FROM v_usage_events "
        "WHERE event_id IN ('num-dec', 'offset') ORDER BY event_id"
    ) == [
        ("num-dec", Decimal("2.5"), datetime(2026, 12, 5, 5, 0, tzinfo=UTC), date(2026, 12, 5)),
        # 07:00+01:00 is 06:00 UTC.
        ("offset", Decimal(4), datetime(2026, 12, 5, 6, 0, tzinfo=UTC), date(2026, 12, 5)),
    ]


def test_a_time_less_than_a_day_ahead_is_taken(world: World) -> None:
    # 2027-02-11T06:00Z is 18 hours after the worker's clock (2027-02-10 12:00 UTC).
    assert world.query("SELECT day FROM v_usage_events WHERE event_id = 'near-future'") == [
        (date(2027, 2, 11),)
    ]


def test_days_are_calendar_days_in_stockholm_across_dst(world: World) -> None:
    daily = world.query(
        "SELECT municipality, cost_centre, service, day, quantity FROM v_usage_daily "
        "WHERE (municipality = '2121' AND service = 'ticket-incident') "
        "OR (municipality = '2184' AND service IN ('pc-standard', 'ticket-incident')) "
        "ORDER BY municipality, day, service, cost_centre"
    )
    assert daily == [
        # 28 March 23:30 UTC = 29 March 00:30 CET; 31 March 22:30 UTC = 1 April 00:30 CEST.
        ("2121", "UNALLOCATED", "ticket-incident", date(2026, 3, 29), 1),
        ("2121", "UNALLOCATED", "ticket-incident", date(2026, 4, 1), 1),
        # 30 September 22:30 UTC = 1 October 00:30 CEST.
        ("2184", "SOC", "ticket-incident", date(2026, 10, 1), 1),
        # 24 October 22:30 UTC (CEST) and 25 October 22:30 UTC (CET) are both the 25th: 1 subject.
        ("2184", "BUF", "pc-standard", date(2026, 10, 25), 1),
        ("2184", "SOC", "ticket-incident", date(2026, 10, 31), 1),
        # 31 October 23:30 UTC = 1 November 00:30 CET.
        ("2184", "BUF", "ticket-incident", date(2026, 11, 1), 1),
        ("2184", "KS", "ticket-incident", date(2026, 11, 5), 0),
    ]


def test_billable_quantities_of_the_contract_examples_in_the_analysts_view(world: World) -> None:
    monthly = world.query(
        "SELECT municipality, cost_centre, service, days, billable_quantity FROM v_usage_monthly "
        "WHERE month = toDate('2026-11-01') AND municipality IN ('2121', '2132') "
        "AND service IN ('pc-standard', 'storage-file') ORDER BY municipality, cost_centre, service"
    )
    # 10 PCs all month = 10; a PC from the 16th of a 30-day month = 0.5; 100 GiB for half the
    # month = 50; max(120, 180) + 60 on one day / 30 = 8.
    assert [(m, c, s, d, round(q, 6)) for m, c, s, d, q in monthly] == [
        ("2121", "BUF", "pc-standard", 30, 10),
        ("2121", "BUF", "storage-file", 30, 50),
        ("2121", "KS", "pc-standard", 30, Decimal("0.5")),
        ("2132", "KS", "storage-file", 30, 8),
    ]


QUANTITY_TEXT = re.compile(r"^(0|[1-9][0-9]*)(\.[0-9]{0,5}[1-9])?$")


@pytest.mark.parametrize("period", ["2026-10", "2026-11", "2027-01"])
def test_csv_rules_hold_on_every_line(world: World, period: str) -> None:
    text = world.csv(period)
    assert text.splitlines()[0] == COLUMNS
    lines = rows(text)
    keys = [(r["municipality"], r["cost_centre"], r["service"]) for r in lines]
    assert keys == sorted(keys) and len(set(keys)) == len(keys)
    for r in lines:
        assert (r["run_id"], r["period"]) == (world.runs[period]["run_id"], period)
        assert QUANTITY_TEXT.match(r["quantity"]), r
        qty, amount = Decimal(r["quantity"]), Decimal(r["amount"])
        assert qty > 0 or amount > 0, r  # a line exists where its quantity or amount is above zero
        if qty == 0:
            assert r["unit_price"] == "", r
        else:
            assert r["unit_price"] == str((amount / qty).quantize(Decimal("0.01"), ROUND_HALF_UP)), r
        assert r["vat_amount"] == str(
            (amount * Decimal(r["vat_rate"])).quantize(Decimal("0.01"), ROUND_HALF_UP)
        )
        assert r["amount"] == str(amount.quantize(Decimal("0.01")))
        assert (r["currency"], r["price_list"]) == ("SEK", world.runs[period]["price_list"])
    # The run's totals are the lines' sums.
    assert world.runs[period]["total_amount"] == str(sum(Decimal(r["amount"]) for r in lines))


def test_the_price_list_is_the_latest_valid_on_the_first_day(world: World) -> None:
    assert {p: r["price_list"] for p, r in world.runs.items()} == {
        "2026-10": "2026",  # "2026.2" is valid from 2 October
        "2026-11": "2026.2",
        "2027-01": "2027",
    }


def test_json_export_carries_the_csv_lines(world: World) -> None:
    run_id = world.runs["2026-11"]["run_id"]
    doc = json.loads((world.out / "json" / f"{run_id}.json").read_text(encoding="utf-8"))
    assert (doc["run_id"], doc["period"], doc["currency"], doc["price_list"], doc["status"]) == (
        run_id,
        "2026-11",
        "SEK",
        "2026.2",
        "draft",
    )
    fields = (
        "period",
        "municipality",
        "cost_centre",
        "service",
        "quantity",
        "unit",
        "unit_price",
        "amount",
        "vat_rate",
        "vat_amount",
    )
    from_csv = [{f: (r[f] if r[f] != "" else None) for f in fields} for r in rows(world.csv("2026-11"))]
    assert [{f: x[f] for f in fields} for x in doc["lines"]] == from_csv
    assert doc["total_amount"] == "1130014.66"
    assert doc["total_vat"] == "282503.67"


def test_exports_on_s3_are_the_local_files(world: World) -> None:
    run_id = world.runs["2026-11"]["run_id"]
    for name, folder in ((f"{run_id}.csv", "csv"), (f"{run_id}.json", "json")):
        body = world.s3_client.get_object(Bucket=world.s3_bucket, Key=f"exports/2026-11/{name}")[
            "Body"
        ].read()
        assert body == (world.out / folder / name).read_bytes()


def test_running_a_month_again_gives_byte_identical_exports(world: World, tmp_path: Path) -> None:
    again = json.loads(chargeback(world.env, "billing", "run", "--period", "2026-11", "--json"))
    run_id = world.runs["2026-11"]["run_id"]
    assert (again["run_id"], again["created"], again["total_amount"]) == (run_id, False, "1130014.66")
    for fmt, folder in (("csv", "csv"), ("json", "json")):
        chargeback(world.env, "billing", "export", run_id, "--format", fmt, "--to", str(tmp_path))
        assert (tmp_path / f"{run_id}.{fmt}").read_bytes() == (
            world.out / folder / f"{run_id}.{fmt}"
        ).read_bytes()


def test_the_analysts_charges_are_the_exported_lines(world: World) -> None:
    run_id = world.runs["2026-11"]["run_id"]
    charges = world.query(
        "SELECT municipality, cost_centre, service, quantity, unit_price, amount, vat_amount FROM v_charges "
        "WHERE run_id = %(run)s ORDER BY municipality, cost_centre, service",
        {"run": run_id},
    )
    assert [
        (
            m,
            c,
            s,
            format_decimal(q),
            "" if p is None else format_decimal(p, 2),
            format_decimal(a, 2),
            format_decimal(v, 2),
        )
        for m, c, s, q, p, a, v in charges
    ] == [
        (
            r["municipality"],
            r["cost_centre"],
            r["service"],
            r["quantity"],
            r["unit_price"],
            r["amount"],
            r["vat_amount"],
        )
        for r in rows(world.csv("2026-11"))
    ]


def format_decimal(value: Decimal, places: int | None = None) -> str:
    if places is not None:
        return str(Decimal(value).quantize(Decimal(1).scaleb(-places)))
    text = format(Decimal(value), "f")
    return text.rstrip("0").rstrip(".") if "." in text else text


def test_a_run_for_one_municipality_prices_it_as_the_run_for_all(world: World) -> None:
    # Distributed amounts are split between all the catalogue's municipalities, whoever is billed:
    # 2183 alone still gets 20479.13 of soc-shared and 1388.89 of dpo-shared.
    one = json.loads(
        chargeback(world.env, "billing", "run", "--period", "2026-11", "--municipality", "2183", "--json")
    )
    assert one["run_id"] != world.runs["2026-11"]["run_id"]
    fields = ("municipality", "cost_centre", "service", "quantity", "unit_price", "amount", "vat_amount")
    assert [tuple(x[f] or "" for f in fields) for x in one["lines"]] == [
        tuple(r[f] for f in fields) for r in rows(world.csv("2026-11")) if r["municipality"] == "2183"
    ]
    # 10.33 + 520.00 + 20.67 + 10.33 + 500.00 + 125000.00 + 1388.89 + 20479.13
    assert one["total_amount"] == "147929.35"


def test_an_id_already_stored_is_dropped_by_a_later_worker_too(world: World) -> None:
    # Last in this module: it sends more. 2121's "print-1" again, as 50 pages, and one new event
    # of December; a new worker process stores the new one only, and November is unchanged.
    from kafka import KafkaProducer

    producer = KafkaProducer(bootstrap_servers=world.env["CHARGEBACK_KAFKA_BOOTSTRAP"], acks="all")
    for doc in (
        event("print-1", "2121", local(date(2026, 11, 9)), "print-page", "Q1", "50"),
        event("print-dec", "2121", local(date(2026, 12, 1)), "print-page", "Q1", "2"),
    ):
        producer.send(world.topic, key=b"2121", value=json.dumps(doc).encode())
    producer.flush()
    producer.close()
    out = chargeback(world.env, "stream", "worker", "--exit-when-idle", "3")
    assert "received 2, stored 1, duplicates 1, dead letters 0" in out
    assert world.query(
        "SELECT event_id, quantity FROM v_usage_events "
        "WHERE municipality = '2121' AND service = 'print-page' ORDER BY event_id"
    ) == [("print-1", 3), ("print-dec", 2), ("print-jan", 100), ("print-oct", 1)]
    again = json.loads(chargeback(world.env, "billing", "run", "--period", "2026-11", "--json"))
    assert (again["run_id"], again["created"]) == (world.runs["2026-11"]["run_id"], False)
