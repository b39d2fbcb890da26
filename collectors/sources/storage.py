"""Storage usage: bytes per top-level folder of a file share, or per prefix of an S3 bucket.

One ``daily_max`` observation in GiB (2^30 bytes, 6 decimals half-up) per folder or prefix per
run; the stream worker keeps each day's largest reading.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from typing import Any

GIB = Decimal(2**30)


def gib(size: int) -> Decimal:
    """Bytes as GiB with 6 decimals, half-up."""
    return (Decimal(size) / GIB).quantize(Decimal("0.000001"), rounding=ROUND_HALF_UP)


@dataclass
class StorageReport:
    """What a measurement could not read."""

    unreadable: list[str] = field(default_factory=list)


def _tree_bytes(path: str, report: StorageReport) -> int:
    total = 0
    stack = [path]
    while stack:
        current = stack.pop()
        try:
            with os.scandir(current) as entries:
                for entry in entries:
                    try:
                        if entry.is_dir(follow_symlinks=False):
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
            if entry.is_dir(follow_symlinks=False):
                sizes[entry.name] = _tree_bytes(entry.path, report)
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
