"""Log lines: JSON with the message's position, readable text, and no personal data."""

from __future__ import annotations

import contextvars
import logging

import orjson

from crmstream import logcontext
from streams.logs import JsonFormatter, Redacting, logging_config, redact


def record(message: str, *args: object, **extra: object) -> logging.LogRecord:
    made = logging.LogRecord("crmstream.test", logging.WARNING, __file__, 1, message, args, None)
    made.__dict__.update(extra)
    return made


def test_phone_numbers_and_emails_never_reach_a_log_line() -> None:
    line = record("customer %s at %s wrote", "13812345678", "li.wei@example.com")
    assert Redacting().filter(line)
    assert line.getMessage() == "customer [redacted] at [redacted] wrote"
    assert redact("call +86 13912345678 now") == "call [redacted] now"
    assert redact("order 20261123000123456 of c-13812") == "order 20261123000123456 of c-13812"


def test_json_lines_carry_the_position_and_the_event() -> None:
    line = record("rule %s failed", "vip", topic="crm.events.order", partition=3, offset=42,
                  event_id="e-1")  # fmt: skip
    parsed = orjson.loads(JsonFormatter().format(line))
    assert parsed["message"] == "rule vip failed"
    assert parsed["level"] == "warning"
    assert (parsed["topic"], parsed["partition"], parsed["offset"]) == ("crm.events.order", 3, 42)
    assert parsed["event_id"] == "e-1"


def test_json_unless_on_a_terminal() -> None:
    assert logging_config("info", "json")["formatters"]["main"]["()"] is JsonFormatter
    assert "format" in logging_config("info", "text")["formatters"]["main"]


def test_an_event_s_position_is_found_only_when_asked() -> None:
    def in_a_batch() -> None:
        assert logcontext.where("e-2") == "-"
        logcontext.handling(["e-1", "e-2"], lambda n: f"crm.events.cart[0]@{10 + n}")
        assert logcontext.where("e-2") == "crm.events.cart[0]@11"
        assert logcontext.where("e-9") == "-"

    contextvars.copy_context().run(in_a_batch)  # as the worker's task would: kept to itself
