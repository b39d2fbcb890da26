"""The worker's log output: plain lines or JSON Lines on stderr, never terminal control codes.

``CHARGEBACK_WORKER_LOG_FORMAT=json`` writes one JSON object per record (``time`` in UTC ISO 8601,
``level``, ``logger``, ``message``, and ``exception`` when there is one), for log shippers; ``text``
(the default) writes ``time level logger: message`` lines. Both replace Faust's coloured console
logging and progress spinner, which wrote terminal escape sequences even into files and pipes.
"""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime
from typing import Any

TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


class JsonFormatter(logging.Formatter):
    """One JSON object per log record."""

    def format(self, record: logging.LogRecord) -> str:
        doc: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "process": record.process,
        }
        if record.exc_info:
            doc["exception"] = self.formatException(record.exc_info)
        return json.dumps(doc, ensure_ascii=False, default=str)


def logging_config(level: str, log_format: str) -> dict[str, Any]:
    """A ``logging.config.dictConfig`` for the worker: one handler on stderr in ``log_format``."""
    formatter: dict[str, Any] = (
        {"()": "streams.logs.JsonFormatter"} if log_format == "json" else {"format": TEXT_FORMAT}
    )
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"main": formatter},
        "handlers": {
            "main": {"class": "logging.StreamHandler", "stream": "ext://sys.stderr", "formatter": "main"}
        },
        "root": {"level": level, "handlers": ["main"]},
    }
