"""Storage usage: bytes per top-level folder of a file share, or per prefix of an S3 bucket.

One ``daily_max`` observation in GiB (2^30 bytes, 6 decimals half-up) per folder or prefix per
run; the stream worker keeps each day's largest reading.
"""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass, field
from datetime import datetime
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from typing import Any, NamedTuple
from zoneinfo import ZoneInfo

from collectors.events import Observation
from collectors.mapping import Mapper
from collectors.source import Observations, SourceError
from collectors.source import Reading as SourceReading

GIB = Decimal(2**30)
STOCKHOLM = ZoneInfo("Europe/Stockholm")


def gib(size: int) -> Decimal:
    """Bytes as GiB with 6 decimals, half-up."""
    return (Decimal(size) / GIB).quantize(Decimal("0.000001"), rounding=ROUND_HALF_UP)


@dataclass
class StorageReport:
    """What a measurement could not read, and bytes outside any top-level folder (billed to none)."""

    unreadable: list[str] = field(default_factory=list)
    loose_bytes: int = 0


class Reading(NamedTuple):
    """A folder's or prefix's size at the run's time; the identifier is the folder or prefix."""

    observation: Observation
    size: int  # bytes

    @property
    def gib(self) -> Decimal:
        """The size in GiB, 6 decimals, half-up: the event's quantity."""
        return gib(self.size)


def _real_dir(entry: os.DirEntry[str]) -> bool:
    # A folder, not a link to one: Windows junctions are no symlinks to Python 3.11, but are links.
    if not entry.is_dir(follow_symlinks=False):
        return False
    if os.name != "nt":
        return True
    attributes = getattr(entry.stat(follow_symlinks=False), "st_file_attributes", 0)
    return not attributes & stat.FILE_ATTRIBUTE_REPARSE_POINT


def _tree_bytes(path: str, report: StorageReport) -> int:
    total = 0
    stack = [path]
    while stack:
        current = stack.pop()
        try:
            with os.scandir(current) as entries:
                for entry in entries:
                    try:
                        if _real_dir(entry):
                            stack.append(entry.path)
                        elif entry.is_file(follow_symlinks=False):
                            total += entry.stat(follow_symlinks=False).st_size
                    except OSError as exc:
                        report.unreadable.append(f"{entry.path}: {exc.strerror}")
        except OSError as exc:
            report.unreadable.append(f"{current}: {exc.strerror}")
    return total


def measure_share(root: Path, report: StorageReport) -> dict[str, int]:
    """Bytes per top-level folder of a share (links are not followed)."""
    sizes = {}
    with os.scandir(root) as entries:
        for entry in sorted(entries, key=lambda e: e.name):
            try:
                if _real_dir(entry):
                    sizes[entry.name] = _tree_bytes(entry.path, report)
                elif entry.is_file(follow_symlinks=False):
                    report.loose_bytes += entry.stat(follow_symlinks=False).st_size
            except OSError as exc:
                report.unreadable.append(f"{entry.path}: {exc.strerror}")
    return sizes


def measure_s3(client: Any, bucket: str, prefixes: list[str]) -> dict[str, int]:
    """Bytes under each prefix of a bucket (every page of the listing)."""
    sizes = {}
    paginator = client.get_paginator("list_objects_v2")
    for prefix in prefixes:
        total = 0
        for page in paginator.paginate(Bucket=bucket, Prefix=prefix):
            total += sum(int(obj["Size"]) for obj in page.get("Contents", []))
        sizes[prefix] = total
    return sizes


def observe_share(
    root: Path, at: datetime, report: StorageReport, *, label: str | None = None
) -> list[Reading]:
    """One reading at ``at`` per top-level folder of a share; the subject is ``<label>/<folder>``
    (``label`` defaults to the share's path), the mapping identifier the folder's name."""
    where = label if label is not None else str(root)
    return [
        Reading(Observation(f"{where}/{name}", name, at, attributes={"bytes": size}), size)
        for name, size in measure_share(root, report).items()
    ]


def observe_s3(client: Any, bucket: str, prefixes: list[str], at: datetime) -> list[Reading]:
    """One reading at ``at`` per prefix of a bucket (``""``: the whole bucket, identified by its
    name); the subject is ``s3://<bucket>/<prefix>``, the mapping identifier the prefix."""
    return [
        Reading(
            Observation(
                f"s3://{bucket}/{prefix}" if prefix else f"s3://{bucket}",
                prefix or bucket,
                at,
                attributes={"bytes": size},
            ),
            size,
        )
        for prefix, size in measure_s3(client, bucket, prefixes).items()
    ]


@dataclass(frozen=True)
class StorageSource:
    """A file share's top-level folders (``share``), or prefixes of an S3 bucket (``bucket`` with
    ``client`` and ``prefixes``): one reading in GiB per folder or prefix at the run's time ``at``,
    billed as the mapping's ``storage`` service (else ``storage-file``)."""

    at: datetime
    tz: ZoneInfo = STOCKHOLM
    share: Path | None = None
    client: Any = None
    bucket: str = ""
    prefixes: tuple[str, ...] = ()
    unit: str = "folders"

    @property
    def kind(self) -> str:
        return "fileshare" if self.share is not None else "s3"

    def default_service(self, mapper: Mapper) -> str:
        return mapper.mapping.services.get("storage", "storage-file")

    def observe(self, mapper: Mapper) -> Observations:
        from botocore.exceptions import BotoCoreError, ClientError

        report = StorageReport()
        try:
            found = (
                observe_share(self.share, self.at, report)
                if self.share is not None
                else observe_s3(self.client, self.bucket, list(self.prefixes), self.at)
            )
        except OSError as exc:
            raise SourceError(f"{self.share}: cannot read the share: {exc.strerror}") from exc
        except (BotoCoreError, ClientError) as exc:
            raise SourceError(f"s3://{self.bucket}: cannot list the bucket: {exc}") from exc
        service = self.default_service(mapper)
        return Observations(
            [SourceReading(r.observation, service, r.gib) for r in found],
            read=len(found),
            day=self.at.astimezone(self.tz).date(),
            rejected=report.unreadable,
        )
