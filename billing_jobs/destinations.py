"""Where exports go: a local folder or S3 (through ``chargeback.s3``). A destination writes the
bytes a format made; it knows nothing of runs or formats.

With ``immutable`` (the exports of a final run) an existing file is never overwritten: the same
content is left as it is, different content is an error.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Protocol

from billing_jobs.formats import ExportFile
from chargeback import s3
from chargeback.errors import UserError


class ExportError(UserError):
    """An export would overwrite what must not change."""

    code = "export.failed"


class Destination(Protocol):
    """Writes files; returns where each went (``(unchanged)`` where an identical file was kept)."""

    def write(self, files: Sequence[ExportFile], *, immutable: bool = False) -> list[str]: ...


class FolderDestination:
    """A local folder, created when missing; each file is written whole or not at all."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def write(self, files: Sequence[ExportFile], *, immutable: bool = False) -> list[str]:
        if self.folder.exists() and not self.folder.is_dir():
            raise ExportError(
                f"{self.folder} is a file, not a folder; give --to a folder (it is made when missing)"
            )
        try:
            return self._write(files, immutable=immutable)
        except OSError as exc:
            where = exc.filename or self.folder
            raise ExportError(
                f"cannot write {where}: {exc.strerror or exc}; give --to a folder this user can write to"
            ) from exc

    def _write(self, files: Sequence[ExportFile], *, immutable: bool) -> list[str]:
        self.folder.mkdir(parents=True, exist_ok=True)
        written = []
        for f in files:
            path = self.folder / f.name
            if immutable and path.exists():
                if path.read_bytes() == f.body:
                    written.append(f"{path} (unchanged)")
                    continue
                raise ExportError(
                    f"{path} exists with other content; exports of a final run are never overwritten: "
                    "export to another folder"
                )
            tmp = path.with_name(path.name + ".tmp")
            tmp.write_bytes(f.body)
            tmp.replace(path)  # readers never see a half-written export
            written.append(str(path))
        return written


class S3Destination:
    """``s3://bucket/prefix``; each object carries its SHA-256 as metadata."""

    def __init__(self, location: s3.S3Location, client: Callable[[], Any]) -> None:
        self.location = location
        self.client = client

    def write(self, files: Sequence[ExportFile], *, immutable: bool = False) -> list[str]:
        try:
            return self._write(files, immutable=immutable)
        except s3.S3Error as exc:
            raise ExportError(
                f"{exc}; check the S3 endpoint, bucket and credentials settings and export again"
            ) from exc

    def _write(self, files: Sequence[ExportFile], *, immutable: bool) -> list[str]:
        location, client = self.location, self.client()
        written = []
        for f in files:
            digest = hashlib.sha256(f.body).hexdigest()
            if immutable:
                found = s3.existing_sha256(client, location, f.name)
                if found == digest:
                    written.append(f"s3://{location.bucket}/{location.key(f.name)} (unchanged)")
                    continue
                if found is not None:
                    raise ExportError(
                        f"s3://{location.bucket}/{location.key(f.name)} exists with other content; "
                        "exports of a final run are never overwritten: export to another prefix"
                    )
            written.append(
                s3.put_bytes(client, location, f.name, f.body, content_type=f.content_type, sha256=digest)
            )
        return written


def destination_for(destination: str, *, s3_client: Callable[[], Any]) -> Destination:
    """``s3://bucket/prefix`` (the client is made only then) or a local folder."""
    if destination.startswith("s3://"):
        return S3Destination(s3.parse_s3_url(destination), s3_client)
    return FolderDestination(Path(destination))


def write_files(
    files: Sequence[ExportFile], destination: str, *, s3_client: Callable[[], Any], immutable: bool = False
) -> list[str]:
    """Write the files to a local folder or ``s3://bucket/prefix``; return where each went."""
    return destination_for(destination, s3_client=s3_client).write(files, immutable=immutable)
