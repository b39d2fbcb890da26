"""Report pages printed to PDF by headless Chromium (``billing export --format report --pdf``):
each ``<name>.html`` also as ``<name>.pdf``, on A4 (the pages' own ``@page`` rule), without the
browser's header and footer. Chromium runs offline, in a throw-away profile, one page at a time.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from collections.abc import Sequence
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


def print_pdfs(files: Sequence[ExportFile], chromium: str = "chromium") -> list[ExportFile]:
    """A PDF of each HTML file, named like it with ``.pdf``."""
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
            out.append(ExportFile(target.name, target.read_bytes(), "application/pdf"))
    return out


__all__ = ["PdfError", "print_pdfs"]
