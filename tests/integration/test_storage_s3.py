"""S3 storage measurement against the real local S3 server, across pages of the listing."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from collectors.sources.storage import measure_s3

pytestmark = pytest.mark.integration


def test_bytes_per_prefix_across_many_pages(s3_client: Any, s3_bucket: str) -> None:
    for i in range(1050):  # more than one page of 1000
        s3_client.put_object(Bucket=s3_bucket, Key=f"2183/BUF/file-{i:04d}", Body=b"x" * 10)
    s3_client.put_object(Bucket=s3_bucket, Key="2183/SOC/one", Body=b"y" * 123)
    assert measure_s3(s3_client, s3_bucket, ["2183/BUF/", "2183/SOC/", "2183/KS/"]) == {
        "2183/BUF/": 10500,
        "2183/SOC/": 123,
        "2183/KS/": 0,
    }


def test_readings_per_prefix_and_for_a_whole_bucket(s3_client: Any, s3_bucket: str) -> None:
    from datetime import UTC, datetime
    from decimal import Decimal

    from collectors.sources.storage import observe_s3

    at = datetime(2026, 10, 5, 6, 0, tzinfo=UTC)
    s3_client.put_object(Bucket=s3_bucket, Key="BUF/a", Body=b"x" * 537)
    s3_client.put_object(Bucket=s3_bucket, Key="BUFFERT/b", Body=b"y" * 5)  # not under "BUF/"
    readings = observe_s3(s3_client, s3_bucket, ["BUF/", ""], at)
    assert [(r.observation.entity, r.observation.identifier, r.size, r.gib) for r in readings] == [
        (f"s3://{s3_bucket}/BUF/", "BUF/", 537, Decimal("0.000001")),
        (f"s3://{s3_bucket}", s3_bucket, 542, Decimal("0.000001")),
    ]
    assert readings[0].observation.seen_at == at and readings[0].observation.attributes == {"bytes": 537}


def test_a_bucket_that_cannot_be_listed_is_one_sentence_and_nothing_is_sent(
    s3_client: Any, tmp_path: Path
) -> None:
    from datetime import UTC, datetime

    from collectors.mapping import Mapping
    from collectors.run import run_collector
    from collectors.settings import CollectorSettings
    from collectors.source import SourceError
    from collectors.sources.storage import StorageSource

    source = StorageSource(
        datetime(2026, 10, 5, tzinfo=UTC), client=s3_client, bucket="no-such-bucket", prefixes=("BUF/",)
    )
    settings = CollectorSettings(kafka_bootstrap="127.0.0.1:9", collector_spool_dir=tmp_path / "spool")
    with pytest.raises(SourceError) as caught:
        run_collector(source, Mapping(municipality="2183"), settings)
    assert str(caught.value) == (
        "s3://no-such-bucket: cannot list the bucket: An error occurred (NoSuchBucket) when calling the "
        "ListObjectsV2 operation: The specified bucket does not exist"
    )
    assert not (tmp_path / "spool").exists()
