"""Shop and customer names on the command line, checked against the contract's patterns
before they reach a file, a key or a glob (``replay --shop '*'`` would match every shop);
and the backtests' end of time."""

from __future__ import annotations

from datetime import UTC, datetime

import click

from schemas.types import SHOP_ID_RULE, is_customer_id, is_shop_id


def shop_name(_ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    """A click callback: ``value`` unchanged when it is a shop name (or not given)."""
    if value is not None and not is_shop_id(value):
        raise click.BadParameter(f"not a shop name: {value!r} ({SHOP_ID_RULE})", param=param)
    return value


def customer_name(_ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    if value is not None and not is_customer_id(value):
        raise click.BadParameter(f"not a customer id: {value!r}", param=param)
    return value


def until_time(_ctx: click.Context, param: click.Parameter, value: str | None) -> datetime | None:
    """A click callback: ``--until`` as a time, "now", or None (the last event's)."""
    if value is None:
        return None
    if value == "now":
        return datetime.now(UTC)
    try:
        return datetime.fromisoformat(value)
    except ValueError as exc:
        raise click.BadParameter(f"not an RFC 3339 time: {value}", param=param) from exc
