"""The whole path on real services: collect → broker → Faust worker → ClickHouse → billing → CSV.

Runs once against the ClickHouse server and once against embedded chDB. Every expected figure is
worked out by hand from docs/contract.md in the comments; the CSV is compared line by line.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import UTC, date, datetime, time
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from kafka import KafkaConsumer, TopicPartition

pytestmark = [pytest.mark.integration, pytest.mark.slow]

CATALOGUE = Path(__file__).resolve().parents[1] / "fixtures" / "catalogue.yaml"
STOCKHOLM = ZoneInfo("Europe/Stockholm")


def cloud_event(eid: str, municipality: str, when: datetime, **data: str) -> str:
    return json.dumps(
        {
            "specversion": "1.0",
            "id": eid,
            "source": f"urn:chargeback:collector:{municipality}:test",
            "type": "chargeback.usage.v1",
            "time": when.astimezone(UTC).isoformat().replace("+00:00", "Z"),
            "data": {"municipality": municipality, **data},
        }
    )


def october_events() -> list[str]:
    """The scenario; see the expected CSV below for what each part must bill."""
    events = []

    def local(day: int, hour: int = 6) -> datetime:
        return datetime.combine(date(2026, 10, day), time(hour), STOCKHOLM)

    # Bollnäs 2183, pc-standard (daily_distinct): PC1 in BUF all 31 days, PC2 in BUF from the 16th
    # (16 days), PC3 in SOC all 31 days.
    for day in range(1, 32):
        events.append(
            cloud_event(
                f"pc1-{day}",
                "2183",
                local(day),
                cost_centre="BUF",
                service="pc-standard",
                subject="PC1",
                quantity="1",
            )
        )
        events.append(
            cloud_event(
                f"pc3-{day}",
                "2183",
                local(day),
                cost_centre="SOC",
                service="pc-standard",
                subject="PC3",
                quantity="1",
            )
        )
        if day >= 16:
            events.append(
                cloud_event(
                    f"pc2-{day}",
                    "2183",
                    local(day),
                    cost_centre="BUF",
                    service="pc-standard",
                    subject="PC2",
                    quantity="1",
                )
            )
    # Duplicates: pc1-5 again unchanged, and once more with other fields: both must be dropped.
    events.append(
        cloud_event(
            "pc1-5", "2183", local(5), cost_centre="BUF", service="pc-standard", subject="PC1", quantity="1"
        )
    )
    events.append(
        cloud_event(
            "pc1-5", "2183", local(5), cost_centre="KS", service="pc-standard", subject="PC9", quantity="1"
        )
    )
    # Tickets (count). T1 at 22:30 UTC on 30 September is 00:30 on 1 October in Stockholm (CEST):
    # October. T3 at 23:30 UTC on 31 October is 00:30 on 1 November (CET): not October. T2 is sent
    # twice.
    events.append(
        cloud_event(
            "t1",
            "2183",
            datetime(2026, 9, 30, 22, 30, tzinfo=UTC),
            cost_centre="BUF",
            service="ticket-incident",
            subject="T1",
            quantity="1",
            channel="phone",
        )
    )
    for _ in range(2):
        events.append(
            cloud_event(
                "t2",
                "2183",
                datetime(2026, 10, 15, 10, 0, tzinfo=UTC),
                cost_centre="SOC",
                service="ticket-incident",
                subject="T2",
                quantity="1",
                channel="portal",
            )
        )
    events.append(
        cloud_event(
            "t3",
            "2183",
            datetime(2026, 10, 31, 23, 30, tzinfo=UTC),
            cost_centre="SOC",
            service="ticket-incident",
            subject="T3",
            quantity="1",
        )
    )
    # Invalid: a negative quantity goes to the dead-letter topic.
    events.append(
        cloud_event(
            "bad-1", "2183", local(3), cost_centre="BUF", service="pc-standard", subject="PC1", quantity="-1"
        )
    )
    # Hudiksvall 2184, storage-file (daily_max): share S1 in KS holds 150 GiB on days 1-15 (day 1 has
    # two readings, 100 and 150: the larger counts), then is gone.
    events.append(
        cloud_event(
            "s1-1a",
            "2184",
            local(1, 1),
            cost_centre="KS",
            service="storage-file",
            subject="S1",
            quantity="100",
        )
    )
    for day in range(1, 16):
        events.append(
            cloud_event(
                f"s1-{day}",
                "2184",
                local(day, 2),
                cost_centre="KS",
                service="storage-file",
                subject="S1",
                quantity="150",
            )
        )
    # m365-e3 (daily_distinct, tiered_volume): one seat all month, no cost centre -> UNALLOCATED.
    for day in range(1, 32):
        events.append(
            cloud_event(f"u1-{day}", "2184", local(day, 5), service="m365-e3", subject="u1", quantity="1")
        )
    return events


# Hand computation (docs/contract.md, "From events to billable quantities" and "From quantities
# to money"), period 2026-10, 31 days:
#  2183 pc-standard: BUF (31 + 16) / 31 = 1.516129 (6 decimals half-up); SOC 31/31 = 1.
#    Municipality total 2.516129 x 310.00 = 779.99999 -> 780.00, split by quantity in öre:
#    BUF 78000 x 1.516129/2.516129 = 46999.9996, SOC 31000.0004 -> floors 46999 + 31000, the one
#    remaining öre to the largest remainder (BUF): BUF 470.00, SOC 310.00.
#    unit_price BUF 470.00/1.516129 = 310.00; VAT 117.50 and 77.50.
#  2183 ticket-incident: T1 (BUF) and T2 (SOC, once) in October, T3 in November: total 2, graduated
#    2 x 95.00 = 190.00, split 95.00 / 95.00; VAT 23.75 each.
#  2184 storage-file: 150 x 15 / 31 = 72.580645 GiB-months; package ceil(72.580645/100) = 1 x 450.00;
#    unit_price 450.00/72.580645 = 6.20; VAT 112.50.
#  2184 m365-e3: 31/31 = 1 seat, volume tier <= 1000: 260.00; VAT 65.00.
#  base-offering (flat): 125000.00 per municipality, quantity 1, UNALLOCATED; VAT 31250.00.
#  soc-shared (distributed): 1200000.00 / 12 = 100000.00 split by inhabitants (total 129400):
#    2121 11300 -> 8732.6120 .. 2132 9400 -> 7264.2967 .. 2161 19000 -> 14683.1530 ..
#    2182 25400 -> 19629.0571 .. 2183 26500 -> 20479.1344 .. 2184 37800 -> 29211.7465 (in SEK);
#    floors leave 3 öre for the largest remainders in öre (2182 .72, 2132 .68, 2184 .65):
#    8732.61, 7264.30, 14683.15, 19629.06, 20479.13, 29211.75 (sum 100000.00).
#    VAT: 2183.15, 1816.08 (1816.075 half-up), 3670.79, 4907.27, 5119.78, 7302.94.
EXPECTED_CSV = """\
run_id,period,municipality,cost_centre,service,quantity,unit,unit_price,amount,vat_rate,vat_amount,currency,price_list
RUN,2026-10,2121,UNALLOCATED,base-offering,1,mån,125000.00,125000.00,0.25,31250.00,SEK,2026
RUN,2026-10,2121,UNALLOCATED,soc-shared,1,mån,8732.61,8732.61,0.25,2183.15,SEK,2026
RUN,2026-10,2132,UNALLOCATED,base-offering,1,mån,125000.00,125000.00,0.25,31250.00,SEK,2026
RUN,2026-10,2132,UNALLOCATED,soc-shared,1,mån,7264.30,7264.30,0.25,1816.08,SEK,2026
RUN,2026-10,2161,UNALLOCATED,base-offering,1,mån,125000.00,125000.00,0.25,31250.00,SEK,2026
RUN,2026-10,2161,UNALLOCATED,soc-shared,1,mån,14683.15,14683.15,0.25,3670.79,SEK,2026
RUN,2026-10,2182,UNALLOCATED,base-offering,1,mån,125000.00,125000.00,0.25,31250.00,SEK,2026
RUN,2026-10,2182,UNALLOCATED,soc-shared,1,mån,19629.06,19629.06,0.25,4907.27,SEK,2026
RUN,2026-10,2183,BUF,pc-standard,1.516129,st,310.00,470.00,0.25,117.50,SEK,2026
RUN,2026-10,2183,BUF,ticket-incident,1,st,95.00,95.00,0.25,23.75,SEK,2026
RUN,2026-10,2183,SOC,pc-standard,1,st,310.00,310.00,0.25,77.50,SEK,2026
RUN,2026-10,2183,SOC,ticket-incident,1,st,95.00,95.00,0.25,23.75,SEK,2026
RUN,2026-10,2183,UNALLOCATED,base-offering,1,mån,125000.00,125000.00,0.25,31250.00,SEK,2026
RUN,2026-10,2183,UNALLOCATED,soc-shared,1,mån,20479.13,20479.13,0.25,5119.78,SEK,2026
RUN,2026-10,2184,KS,storage-file,72.580645,GiB,6.20,450.00,0.25,112.50,SEK,2026
RUN,2026-10,2184,UNALLOCATED,base-offering,1,mån,125000.00,125000.00,0.25,31250.00,SEK,2026
RUN,2026-10,2184,UNALLOCATED,m365-e3,1,st,260.00,260.00,0.25,65.00,SEK,2026
RUN,2026-10,2184,UNALLOCATED,soc-shared,1,mån,29211.75,29211.75,0.25,7302.94,SEK,2026
"""


def chargeback(env: dict[str, str], *args: str) -> str:
    proc = subprocess.run(
        [sys.executable, "-m", "chargeback_cli", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    assert proc.returncode == 0, f"chargeback {' '.join(args)} failed:\n{proc.stdout}\n{proc.stderr}"
    return proc.stdout


def run_pipeline(tmp_path: Path, env: dict[str, str], s3_url: str) -> tuple[str, bytes]:
    events_file = tmp_path / "events.jsonl"
    events_file.write_text("\n".join(october_events()) + "\n")
    chargeback(env, "db", "migrate")
    out = chargeback(env, "collect", "file", str(events_file))
    assert out.strip() == "read 132, emitted 132, spooled 0, rejected 0, unmapped 0"
    out = chargeback(env, "stream", "worker", "--exit-when-idle", "3")
    # 132 read: 128 stored, 3 duplicates (pc1-5 twice, t2 once), 1 dead letter.
    assert "received 132, stored 128, duplicates 3, dead letters 1" in out
    run = json.loads(chargeback(env, "billing", "run", "--period", "2026-10", "--json"))
    assert run["status"] == "draft"
    assert run["total_amount"] == "851680.00"
    export_dir = tmp_path / "out"
    chargeback(env, "billing", "export", run["run_id"], "--format", "csv", "--to", str(export_dir))
    chargeback(env, "billing", "export", run["run_id"], "--format", "csv", "--to", s3_url)
    return run["run_id"], (export_dir / f"{run['run_id']}.csv").read_bytes()


def dead_letters(bootstrap: str, topic: str) -> list[dict[str, object]]:
    # Read every partition from the start without a consumer group (no group join to wait for).
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, consumer_timeout_ms=3000, enable_auto_commit=False)
    try:
        partitions = [TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic) or ())]
        consumer.assign(partitions)
        consumer.seek_to_beginning(*partitions)
        return [json.loads(m.value) for m in consumer]
    finally:
        consumer.close()


@pytest.fixture
def pipeline_env(
    kafka_bootstrap: str, topic_name: str, s3_endpoint_url: str, tmp_path: Path
) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CHARGEBACK_")}
    env.update(
        CHARGEBACK_KAFKA_BOOTSTRAP=kafka_bootstrap,
        CHARGEBACK_USAGE_TOPIC=topic_name,
        CHARGEBACK_DEAD_TOPIC=f"{topic_name}.dead",
        CHARGEBACK_WORKER_APP_ID=f"worker-{topic_name}",
        CHARGEBACK_CATALOGUE=str(CATALOGUE),
        CHARGEBACK_COLLECTOR_SPOOL_DIR=str(tmp_path / "spool"),
        CHARGEBACK_S3_ENDPOINT_URL=s3_endpoint_url,
        CHARGEBACK_S3_ACCESS_KEY_ID="test",
        CHARGEBACK_S3_SECRET_ACCESS_KEY="test-secret",
    )
    return env


def check_outputs(
    run_id: str, csv_bytes: bytes, env: dict[str, str], s3_bucket: str, s3_client: object
) -> None:
    assert csv_bytes.decode().splitlines() == EXPECTED_CSV.replace("RUN,", f"{run_id},").splitlines()
    stored = s3_client.get_object(Bucket=s3_bucket, Key=f"exports/{run_id}.csv")["Body"].read()  # type: ignore[attr-defined]
    assert stored == csv_bytes
    letters = dead_letters(env["CHARGEBACK_KAFKA_BOOTSTRAP"], env["CHARGEBACK_DEAD_TOPIC"])
    assert [(d["reason"], d["key"], d["topic"]) for d in letters] == [
        ("data.quantity: Value error, quantity must be >= 0", "2183", env["CHARGEBACK_USAGE_TOPIC"])
    ]
    assert json.loads(str(letters[0]["value"]))["id"] == "bad-1"


def test_month_on_clickhouse_server(
    tmp_path: Path,
    pipeline_env: dict[str, str],
    clickhouse_server_url: str,
    clickhouse_server_database: str,
    s3_bucket: str,
    s3_client: object,
) -> None:
    env = dict(
        pipeline_env,
        CHARGEBACK_CLICKHOUSE_URL=clickhouse_server_url,
        CHARGEBACK_CLICKHOUSE_DATABASE=clickhouse_server_database,
    )
    run_id, csv_bytes = run_pipeline(tmp_path, env, f"s3://{s3_bucket}/exports")
    check_outputs(run_id, csv_bytes, env, s3_bucket, s3_client)
    # Pricing the same month again finds the same run and exports the same bytes.
    again = json.loads(chargeback(env, "billing", "run", "--period", "2026-10", "--json"))
    assert (again["run_id"], again["created"]) == (run_id, False)
    chargeback(env, "billing", "export", run_id, "--format", "csv", "--to", str(tmp_path / "again"))
    assert (tmp_path / "again" / f"{run_id}.csv").read_bytes() == csv_bytes


def test_month_on_embedded_chdb(
    tmp_path: Path, pipeline_env: dict[str, str], s3_bucket: str, s3_client: object
) -> None:
    # The worker and billing run as separate processes on one chDB folder, one after the other:
    # chDB lets one process at a time open a folder (this test process never opens it).
    env = dict(
        pipeline_env,
        CHARGEBACK_CLICKHOUSE_URL=f"chdb:{tmp_path / 'chdb'}",
        CHARGEBACK_CLICKHOUSE_DATABASE="e2e",
    )
    run_id, csv_bytes = run_pipeline(tmp_path, env, f"s3://{s3_bucket}/exports")
    check_outputs(run_id, csv_bytes, env, s3_bucket, s3_client)
