"""The worker's logs: JSON lines when they go to a file or a collector, readable text on a
terminal; a customer's phone number or e-mail address never appears in either.

Processing errors carry ``topic``, ``partition``, ``offset`` and ``event_id`` as fields
(and ``topic[partition]@offset`` in the message), so a log search finds the message.
"""

from __future__ import annotations

import logging
import re
import sys
from datetime import UTC, datetime
from typing import Any, Final

import orjson

# Mainland mobile numbers (with or without +86) and e-mail addresses.
_PERSONAL: Final = re.compile(
    r"(?<!\d)(?:\+?86[- ]?)?1[3-9]\d{9}(?!\d)|[\w.+-]+@[\w-]+(?:\.[\w-]+)+"
)
_FIELDS: Final = ("topic", "partition", "offset", "event_id", "rule", "segment")
_TEXT_FORMAT: Final = "[%(asctime)s] [%(process)d] [%(levelname)s] %(name)s: %(message)s"


def redact(text: str) -> str:
    return _PERSONAL.sub("[redacted]", text)


class Redacting(logging.Filter):
    """Masks phone numbers and e-mail addresses in every record, whoever logged it."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        cleaned = redact(message)
        if cleaned != message:
            record.msg, record.args = cleaned, None
        return True


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
            "process": record.process,
        }
        for name in _FIELDS:
            value = record.__dict__.get(name)
            if value is not None:
                line[name] = value
        if record.exc_info:
            line["error"] = redact(self.formatException(record.exc_info))
        return orjson.dumps(line).decode()


def logging_config(level: str, log_format: str) -> dict[str, Any]:
    """dictConfig for the worker: ``log_format`` json, text, or auto (json unless stderr is
    a terminal)."""
    as_json = log_format == "json" or (log_format == "auto" and not sys.stderr.isatty())
    formatter: dict[str, Any] = {"()": JsonFormatter} if as_json else {"format": _TEXT_FORMAT}
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "filters": {"redacting": {"()": Redacting}},
        "formatters": {"main": formatter},
        "handlers": {
            "default": {
                "class": "logging.StreamHandler",
                "stream": "ext://sys.stderr",
                "formatter": "main",
                "filters": ["redacting"],
            }
        },
        "root": {"level": level.upper(), "handlers": ["default"]},
    }
