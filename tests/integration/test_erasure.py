"""Erasure through two real workers: a customer with contact details, a birthday, a merged
device, held triggers, an armed timer and segment memberships is forgotten, and then
nothing in Redis, key or value, names them, their phone or their e-mail."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import uuid
from contextlib import ExitStack
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest

from crmstream.admin import create_topics
from crmstream.settings import Settings
from handlers.profile.read import ProfileReader
from streams.cli.child_worker import settings_env
from tests.integration.test_profiles import publish
from tests.redis_contents import redis_holding
from tests.support import eventually, eventually_async, free_port, running_worker

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]

PHONE = "+86 138-0013-8000"
PHONE_DIGITS = b"13800138000"
EMAIL = "li.victim@example.com"


def night_zone(now: datetime) -> str:
    """An IANA zone where it is about 2 a.m. now: quiet hours hold the welcome trigger."""
    offset = (2 - now.hour) % 24
    offset = offset - 24 if offset > 14 else offset
    return f"Etc/GMT{-offset:+d}" if offset else "Etc/GMT"


def customer_events(shop: str, customer: str, device: str, now: datetime) -> list[dict[str, Any]]:
    def at(seconds: float) -> str:
        return (now + timedelta(seconds=seconds)).isoformat()

    def ev(kind: str, seconds: float, data: dict[str, Any], **who: str) -> dict[str, Any]:
        return {
            "specversion": "1.0", "id": f"ev-{uuid.uuid4().hex}", "source": "test",
            "type": kind, "time": at(seconds), "shop": shop, "data": data,
            **(who or {"subject": customer}),
        }  # fmt: skip

    view = {"item_id": "tea-1", "category": "tea"}
    facts = {
        "phone": PHONE, "email": EMAIL, "birthday": f"1990-{now:%m-%d}",
        "region": "华北", "tags": ["vip-list"], "timezone": night_zone(now),
        "consents": {"marketing": True, "sms": True, "email": True, "push": True},
    }  # fmt: skip
    line = {"item_id": "tea-1", "category": "tea", "qty": 1, "price": "30.00"}
    order = {"order_id": f"o-{uuid.uuid4().hex[:8]}", "total": "30.00", "items": [line]}
    return [
        ev("item.viewed", -60, view, anonymousid=device),
        ev("item.favorited", -59, view, anonymousid=device),
        ev("customer.registered", -50, facts),
        ev("customer.identified", -40, {"anonymousid": device}),
        ev("order.placed", -30, order),
        ev(
            "cart.item_added",
            -20,
            {"item_id": "cup-2", "category": "cups", "qty": 1, "price": "12.00"},
        ),
    ]


def planted(settings: Settings, needle: bytes) -> None:
    """Wait until the customer is in every place an erasure must reach."""
    wanted = (":sg:", ":bday:", ":members", ":timers", ":heldp", ":al", ":phones", ":log:")

    def missing() -> tuple[list[str], list[str]]:
        keys = redis_holding(settings, [needle]).get(needle.decode(), [])
        return [place for place in wanted if not any(place in key for key in keys)], keys

    eventually(
        missing, 120, "the customer planted everywhere (places missing, keys found)",
        until=lambda seen: not seen[0], every_s=1,
    )  # fmt: skip


async def test_forget_leaves_no_trace_of_the_customer(
    settings: Settings, reader: ProfileReader, tmp_path: Path
) -> None:
    create_topics(settings)
    shop, customer, device = "s1", f"vic{uuid.uuid4().hex[:8]}", f"dev-{uuid.uuid4().hex[:8]}"
    bystander = f"by{uuid.uuid4().hex[:8]}"
    now = datetime.now(UTC)
    second = settings.model_copy(
        update={"worker": settings.worker.model_copy(update={"web_port": free_port()})}
    )
    with ExitStack() as workers:
        workers.enter_context(running_worker(settings, tmp_path / "worker-1.log"))
        workers.enter_context(running_worker(second, tmp_path / "worker-2.log"))
        publish(
            settings,
            customer_events(shop, customer, device, now)
            + customer_events(shop, bystander, f"dev-{uuid.uuid4().hex[:8]}", now),
        )
        await asyncio.to_thread(planted, settings, customer.encode())
        # What is held, as the customer may ask to see it: contact details only hashed.
        exported = await cli(settings, "export", shop, customer)
        assert exported.returncode == 0, exported.stderr
        document = orjson.loads(exported.stdout)
        assert document["facts"]["phone_hash"]
        assert document["facts"]["email_hash"]
        assert document["segments"] == ["north-region", "vip-list"]
        assert document["decisions"]
        assert {entry["outcome"] for entry in document["triggers"]} == {"decided"}
        assert PHONE_DIGITS.decode() not in exported.stdout
        assert EMAIL not in exported.stdout

        forget = await cli(settings, "forget", shop, customer)
        assert forget.returncode == 0, forget.stderr
        # The device browses on; whichever worker cached its alias must not route it back.
        after = now + timedelta(seconds=30)
        publish(
            settings,
            [
                {
                    "specversion": "1.0", "id": f"ev-{uuid.uuid4().hex}", "source": "test",
                    "type": "item.viewed", "time": after.isoformat(), "shop": shop,
                    "anonymousid": device, "data": {"item_id": "tea-9", "category": "tea"},
                }
            ],
        )  # fmt: skip

        # The device's view first: until it is in, a check that nothing names the customer
        # could pass before that view had its chance to be routed back to them.
        device_profile = await eventually_async(
            lambda: reader.read(shop, device), 60, "the device's view after the erasure",
            every_s=1,
        )  # fmt: skip
        assert device_profile is not None
        assert device_profile["counters"]["views"] == 1
        needles = [customer.encode(), PHONE_DIGITS, PHONE.encode(), EMAIL.encode()]
        await asyncio.to_thread(
            eventually, lambda: redis_holding(settings, needles), 90,
            "nothing named after the erased customer", until=lambda left: left == {}, every_s=1,
        )  # fmt: skip
        assert await reader.read(shop, customer) is None
        assert await reader.read(shop, bystander) is not None
        assert (await cli(settings, "export", shop, customer)).returncode == 1


async def cli(settings: Settings, *args: str) -> subprocess.CompletedProcess[str]:
    return await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "streams.cli", *args],
        env={**os.environ, **settings_env(settings)},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
