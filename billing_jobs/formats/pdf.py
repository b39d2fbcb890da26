"""Report pages printed to PDF by headless Chromium (``billing export --format report --pdf``):
each ``<name>.html`` also as ``<name>.pdf``, on A4 (the pages' own ``@page`` rule), without the
browser's header and footer. Chromium runs offline, in a throw-away profile, one page at a time.

A PDF's creation and modification dates are the run's (``made``), written in the same number of
bytes as Chromium's own, so the cross-reference table stays right and printing a final run again
gives the same bytes (a final run's exports are never overwritten with other content). Links
between the pages and to the specification stay relative (``2026-10-abc.2183.html``): Chromium
writes them as ``file://`` URIs of its temporary folder, which are cut back to the file's name and
the cross-reference table is written again for the new offsets.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import tempfile
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

from billing_jobs.formats import ExportFile
from chargeback.errors import UserError

FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--no-first-run",
    "--disable-component-update",
    "--disable-sync",
    "--no-pdf-header-footer",
)
TIMEOUT_S = 120


class PdfError(UserError):
    """The report cannot be printed to PDF."""

    code = "export.pdf"


_DATES = re.compile(rb"/(CreationDate|ModDate) \(D:\d{14}[+-]\d\d'\d\d'\)")


def _dated(body: bytes, made: datetime) -> bytes:
    stamp = made.astimezone(UTC).strftime("D:%Y%m%d%H%M%S+00'00'").encode()
    return _DATES.sub(lambda m: b"/" + m.group(1) + b" (" + stamp + b")", body)


_OBJECT = re.compile(rb"(?<=\n)(\d+) 0 obj\n")
_XREF = re.compile(rb"\nxref\n0 (\d+)\n.*?\ntrailer\n(.*?)\nstartxref\n\d+\n%%EOF\n?$", re.DOTALL)


def _relative_links(body: bytes, folder: Path) -> bytes:
    """Links into ``folder`` as bare file names, with a cross-reference table for the new offsets
    (the bytes unchanged when the file is not laid out as Chromium writes it)."""
    prefix = b"/URI (" + folder.as_uri().encode() + b"/"
    if prefix not in body:
        return body
    relinked = body.replace(prefix, b"/URI (")
    table = _XREF.search(relinked)
    if table is None:
        return body
    count, trailer = int(table.group(1)), table.group(2)
    head = relinked[: table.start() + 1]
    offsets = {int(m.group(1)): m.start() for m in _OBJECT.finditer(head)}
    if sorted(offsets) != list(range(1, count)):
        return body
    rows = [b"0000000000 65535 f \n"] + [b"%010d 00000 n \n" % offsets[n] for n in range(1, count)]
    return (
        head
        + b"xref\n0 %d\n" % count
        + b"".join(rows)
        + b"trailer\n"
        + trailer
        + b"\nstartxref\n%d\n%%%%EOF\n" % len(head)
    )


def print_pdfs(
    files: Sequence[ExportFile], chromium: str = "chromium", made: datetime | None = None
) -> list[ExportFile]:
    """A PDF of each HTML file, named like it with ``.pdf``; dated ``made`` when given."""
    browser = shutil.which(chromium)
    if browser is None:
        raise PdfError(
            f"--pdf needs headless Chromium, and {chromium!r} is not installed or not on PATH "
            "(set CHARGEBACK_CHROMIUM to its path)"
        )
    pages = [f for f in files if f.name.endswith(".html")]
    out: list[ExportFile] = []
    with tempfile.TemporaryDirectory(prefix="chargeback-pdf-") as tmp:
        folder = Path(tmp)
        profile = folder / "profile"
        for f in pages:
            (folder / f.name).write_bytes(f.body)
        for f in pages:
            target = folder / (f.name.removesuffix(".html") + ".pdf")
            command = [
                browser,
                *FLAGS,
                f"--user-data-dir={profile}",
                f"--print-to-pdf={target}",
                (folder / f.name).as_uri(),
            ]
            try:
                done = subprocess.run(command, capture_output=True, text=True, timeout=TIMEOUT_S, check=False)
            except subprocess.TimeoutExpired:
                raise PdfError(f"Chromium did not print {f.name} to PDF within {TIMEOUT_S} s") from None
            if done.returncode != 0 or not target.exists():
                detail = (done.stderr.strip().splitlines() or ["no message"])[-1]
                raise PdfError(f"Chromium could not print {f.name} to PDF: {detail}")
            body = _relative_links(target.read_bytes(), folder)
            out.append(ExportFile(target.name, _dated(body, made) if made else body, "application/pdf"))
    return out


__all__ = ["PdfError", "print_pdfs"]
