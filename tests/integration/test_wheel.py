"""The built wheel is complete: installed into a fresh virtual environment, it migrates an empty database.

An editable install reads ``sql/`` from the checkout and would hide a wheel without it; here the
wheel is built from a copy of the sources, installed without the checkout on ``sys.path``, and its
own ``chargeback db migrate`` must apply every numbered file of ``sql/``. The dependencies are not
downloaded again: a ``.pth`` file points the fresh environment at this environment's site-packages
(whose own ``.pth`` files, such as an editable install's, are not read from there).
"""

from __future__ import annotations

import os
import shutil
import site
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

pytestmark = [pytest.mark.integration, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = (
    "chargeback",
    "chargeback_cli",
    "collectors",
    "streams",
    "billing_jobs",
    "warehouse",
    "demo",
    "devstack",
)
MIGRATIONS = sorted(path.name for path in (ROOT / "sql").glob("*.sql"))


def _run(args: list[str], *, env: dict[str, str] | None = None, cwd: Path | None = None) -> str:
    done = subprocess.run(args, env=env, cwd=cwd, capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, f"{' '.join(args)} failed:\n{done.stdout}\n{done.stderr}"
    return done.stdout


def _build_wheel(tmp_path: Path) -> Path:
    source = tmp_path / "source"
    source.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(ROOT / name, source / name)
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    for name in (*PACKAGES, "sql"):
        shutil.copytree(ROOT / name, source / name, symlinks=True, ignore=ignore)
    dist = tmp_path / "dist"
    _run([sys.executable, "-m", "pip", "wheel", str(source), "--no-deps", "--quiet", "-w", str(dist)])
    (wheel,) = dist.glob("chargeback-*.whl")
    return wheel


def _fresh_venv(tmp_path: Path, wheel: Path) -> tuple[Path, Path]:
    venv = tmp_path / "venv"
    _run([sys.executable, "-m", "venv", "--without-pip", str(venv)])
    python = venv / "bin" / "python"
    _run(
        [
            sys.executable,
            "-m",
            "pip",
            "--python",
            str(python),
            "install",
            "--no-deps",
            "--no-index",
            "--quiet",
            str(wheel),
        ]
    )
    purelib = Path(
        _run([str(python), "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"]).strip()
    )
    ours = {sysconfig.get_path("purelib"), sysconfig.get_path("platlib"), *site.getsitepackages()}
    (purelib / "project-dependencies.pth").write_text("".join(f"{path}\n" for path in sorted(ours)))
    return venv, purelib


def test_the_wheel_migrates_an_empty_embedded_database_with_every_migration(tmp_path: Path) -> None:
    assert MIGRATIONS[0] == "001_usage_events.sql"
    assert len(MIGRATIONS) >= 5

    venv, purelib = _fresh_venv(tmp_path, _build_wheel(tmp_path))

    shipped = sorted(path.name for path in (purelib / "warehouse" / "sql").glob("*.sql"))
    assert shipped == MIGRATIONS
    for name in MIGRATIONS:
        assert (purelib / "warehouse" / "sql" / name).read_bytes() == (ROOT / "sql" / name).read_bytes()
    # The member reports' templates are package data too.
    templates = sorted(path.name for path in (ROOT / "billing_jobs" / "templates").glob("*.html.j2"))
    assert "member.html.j2" in templates
    shipped_templates = (purelib / "billing_jobs" / "templates").glob("*.html.j2")
    assert sorted(path.name for path in shipped_templates) == templates

    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "CHARGEBACK_"))}
    env |= {
        "CHARGEBACK_CLICKHOUSE_URL": f"chdb:{tmp_path / 'chdb'}",
        "CHARGEBACK_CLICKHOUSE_DATABASE": "wheel_check",
    }
    work = tmp_path / "work"
    work.mkdir()
    where = _run(
        [
            str(venv / "bin" / "python"),
            "-c",
            "import warehouse.migrations as m; print(m.__file__); print(m.SQL_DIR)",
        ],
        env=env,
        cwd=work,
    ).split()
    assert where == [str(purelib / "warehouse" / "migrations.py"), str(purelib / "warehouse" / "sql")]

    chargeback = str(venv / "bin" / "chargeback")
    assert _run([chargeback, "db", "migrate"], env=env, cwd=work) == f"applied: {', '.join(MIGRATIONS)}\n"
    assert _run([chargeback, "db", "migrate"], env=env, cwd=work) == "schema is up to date\n"
