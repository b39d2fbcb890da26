"""Destinations write the bytes a format made: a local folder here (S3: tests/integration)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from billing_jobs.destinations import (
    ExportError,
    FolderDestination,
    S3Destination,
    destination_for,
    write_files,
)
from billing_jobs.formats import ExportFile

FILES = [
    ExportFile("r.csv", b"a,b\n", "text/csv"),
    ExportFile("r.csv.manifest.json", b"{}\n", "application/json"),
]


def no_client() -> Any:
    raise AssertionError("a folder destination never makes an S3 client")


def test_folder_is_created_and_each_file_written(tmp_path: Path) -> None:
    target = tmp_path / "out" / "2026-10"
    assert write_files(FILES, str(target), s3_client=no_client) == [
        str(target / "r.csv"),
        str(target / "r.csv.manifest.json"),
    ]
    assert (target / "r.csv").read_bytes() == b"a,b\n"
    assert sorted(p.name for p in target.iterdir()) == ["r.csv", "r.csv.manifest.json"]  # no .tmp left


def test_a_final_runs_file_is_kept_when_equal_and_never_overwritten(tmp_path: Path) -> None:
    folder = FolderDestination(tmp_path)
    folder.write(FILES, immutable=True)
    assert folder.write(FILES, immutable=True) == [
        f"{tmp_path / 'r.csv'} (unchanged)",
        f"{tmp_path / 'r.csv.manifest.json'} (unchanged)",
    ]
    with pytest.raises(
        ExportError,
        match=r"r\.csv exists with other content; exports of a final run are never overwritten: "
        r"export to another folder$",
    ):
        folder.write([ExportFile("r.csv", b"x\n", "text/csv")], immutable=True)
    assert (tmp_path / "r.csv").read_bytes() == b"a,b\n"
    # A draft's exports may be replaced.
    assert folder.write([ExportFile("r.csv", b"x\n", "text/csv")]) == [str(tmp_path / "r.csv")]
    assert (tmp_path / "r.csv").read_bytes() == b"x\n"


def test_an_s3_url_is_an_s3_destination_with_its_bucket_and_prefix() -> None:
    destination = destination_for("s3://exports/billing/2026", s3_client=no_client)
    assert isinstance(destination, S3Destination)
    assert (destination.location.bucket, destination.location.key("r.csv")) == (
        "exports",
        "billing/2026/r.csv",
    )


def test_a_file_where_the_folder_should_be_is_one_sentence(tmp_path: Path) -> None:
    (tmp_path / "out.csv").write_text("x")
    with pytest.raises(ExportError) as caught:
        write_files(FILES, str(tmp_path / "out.csv"), s3_client=no_client)
    assert str(caught.value) == (
        f"{tmp_path / 'out.csv'} is a file, not a folder; give --to a folder (it is made when missing)"
    )


def test_a_folder_below_a_file_is_one_sentence(tmp_path: Path) -> None:
    (tmp_path / "out.csv").write_text("x")
    with pytest.raises(ExportError) as caught:
        write_files(FILES, str(tmp_path / "out.csv" / "sub"), s3_client=no_client)
    assert str(caught.value) == (
        f"cannot write {tmp_path / 'out.csv' / 'sub'}: Not a directory; "
        "give --to a folder this user can write to"
    )


def test_an_unreachable_s3_endpoint_is_one_sentence() -> None:
    from chargeback import s3

    def client() -> Any:
        return s3.make_client(
            endpoint_url="http://127.0.0.1:9", region="us-east-1", access_key_id="a", secret_access_key="b"
        )

    for immutable, verb in ((True, "read"), (False, "write")):
        with pytest.raises(ExportError) as caught:
            write_files(FILES, "s3://exports/billing", s3_client=client, immutable=immutable)
        assert str(caught.value) == (
            f"cannot {verb} s3://exports/billing/r.csv: the S3 endpoint http://127.0.0.1:9 cannot be "
            "reached; check the S3 endpoint, bucket and credentials settings and export again"
        )
