"""Erasure through two real workers: a customer with contact details, a birthday, a merged
device, held triggers, an armed timer and segment memberships is forgotten, and then
nothing in Redis, key or value, names them, their phone or their e-mail."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
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
from tests.support import free_port, redis_holding, running_worker

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


async def planted(settings: Settings, needle: bytes, deadline: float) -> list[str]:
    """Wait until the customer is in every place an erasure must reach."""
    wanted = (":sg:", ":bday:", ":members", ":timers", ":heldp", ":al", ":phones", ":log:")
    while True:
        keys = redis_holding(settings, [needle]).get(needle.decode(), [])
        missing = [place for place in wanted if not any(place in key for key in keys)]
        if not missing or time.monotonic() > deadline:
            assert not missing, f"never planted in {missing}; found in {keys}"
            return keys
        await asyncio.sleep(1)


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
        await planted(settings, customer.encode(), time.monotonic() + 120)
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

        needles = [customer.encode(), PHONE_DIGITS, PHONE.encode(), EMAIL.encode()]
        deadline = time.monotonic() + 90
        left = redis_holding(settings, needles)
        while left and time.monotonic() < deadline:
            await asyncio.sleep(1)
            left = redis_holding(settings, needles)
        assert left == {}, f"still named after the erasure: {left}"
        assert await reader.read(shop, customer) is None
        assert await reader.read(shop, bystander) is not None
        deadline = time.monotonic() + 60
        while (device_profile := await reader.read(shop, device)) is None:
            assert time.monotonic() < deadline, "the device's view after the erasure was lost"
            await asyncio.sleep(1)
        assert device_profile["counters"]["views"] == 1
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
