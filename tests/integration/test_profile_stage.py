"""The profile stage against the real Redis, event by event: erasure, identity, the cart."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import pytest

from crmstream.settings import Settings
from handlers.keys import Keys
from handlers.profile.read import SECTIONS, ProfileReader, key_kinds
from handlers.profile.send import ReadRequest
from handlers.profile.stage import ProfileStage
from handlers.shop_configs import ShopConfigs
from rules.folders import shop_configs_folder
from schemas.decode import Decoder
from schemas.events import Envelope
from schemas.times import epoch_ms
from tests.support import text

T0 = datetime(2026, 3, 1, 12, tzinfo=UTC)
DECODER = Decoder()
_counter = iter(range(1_000_000))


def event(kind: str, minutes: float, data: dict[str, Any] | None = None, **who: str) -> Envelope:
    raw = {
        "specversion": "1.0",
        "id": f"e{next(_counter)}",
        "source": "test",
        "type": kind,
        "time": (T0 + timedelta(minutes=minutes)).isoformat(),
        "shop": "s1",
        "data": data or {},
        **(who or {"subject": "c1"}),
    }
    return DECODER.require(orjson.dumps(raw), epoch_ms(datetime.now(UTC)))


def added(item: str, qty: int, minutes: float, **who: str) -> Envelope:
    data = {"item_id": item, "category": "tea", "qty": qty, "price": "10.00"}
    return event("cart.item_added", minutes, data, **who)


def placed(items: list[str], minutes: float) -> Envelope:
    lines = [{"item_id": i, "category": "tea", "qty": 1, "price": "10.00"} for i in items]
    return event(
        "order.placed", minutes, {"order_id": f"o{minutes}", "items": lines, "total": "10"}
    )


@pytest.fixture
async def stage(settings: Settings) -> AsyncIterator[ProfileStage]:
    stage = ProfileStage.from_settings(settings)
    yield stage
    await stage.close()


@pytest.fixture
def reader(stage: ProfileStage, settings: Settings) -> ProfileReader:
    return ProfileReader(
        stage._client,
        Keys(settings.redis.key_prefix),
        ShopConfigs(shop_configs_folder(settings.profiles)),
    )


async def cart_of(reader: ProfileReader, who: str = "c1") -> dict[str, int]:
    profile = await reader.read("s1", who)
    assert profile is not None
    return {line["item_id"]: line["qty"] for line in profile["cart"]["items"]}


async def test_erasure_forgets_and_a_late_event_does_not_bring_it_back(
    stage: ProfileStage, reader: ProfileReader, settings: Settings
) -> None:
    await stage.apply([event("item.viewed", 1, {"item_id": "i", "category": "tea"})])
    outcome = await stage.apply(
        [
            event("customer.erasure_requested", 5),
            event("item.viewed", 2, {"item_id": "i", "category": "tea"}),
        ]
    )
    assert (outcome.applied, outcome.erased) == (1, 1)
    assert await reader.read("s1", "c1") is None
    keys = Keys(settings.redis.key_prefix).customer("s1", "c1")
    assert await stage._client.exists(*keys[:7]) == 0

    # The tombstone is all that stays, and its name says nothing of whom it is for.
    left = [key.decode() async for key in stage._client.scan_iter(match=keys[0][:-4] + "*")]
    assert left == []
    tombstones = await stage._client.keys(Keys(settings.redis.key_prefix).tombstone_pattern())
    assert len(tombstones) == 1
    # Its parts: the prefix, a slot's hash tag, "x", a keyed hash (hex, which may hold the
    # letters "c1" by chance): none of them is the shop or the customer.
    parts = text(tombstones[0]).split(":")
    assert not {"s1", "c1", "{s1", "c1}"} & set(parts), parts

    await stage.apply([event("item.viewed", 10, {"item_id": "new", "category": "tea"})])
    fresh = await reader.read("s1", "c1")
    assert fresh is not None
    assert fresh["counters"]["views"] == 1
    assert fresh["recently_viewed"] == ["new"]


async def test_placeholder_anonymous_ids_are_never_merged(
    stage: ProfileStage, reader: ProfileReader
) -> None:
    outcome = await stage.apply(
        [
            event("item.viewed", 1, {"item_id": "i", "category": "tea"}, anonymousid="null"),
            event("customer.identified", 2, {"anonymousid": "undefined"}),
        ]
    )
    assert outcome.unattributed == 1
    profile = await reader.read("s1", "c1")
    assert profile is not None
    assert profile["counters"]["views"] == 0
    assert await reader.read("s1", "null") is None


async def test_login_merges_once_and_later_anonymous_events_follow(
    stage: ProfileStage, reader: ProfileReader
) -> None:
    view = {"item_id": "i", "category": "tea"}
    await stage.apply(
        [event("item.viewed", 1, view, anonymousid="dev-1"), added("a", 2, 2, anonymousid="dev-1")]
    )
    login = event("customer.identified", 3, {"anonymousid": "dev-1"})
    await stage.apply([login, login])  # a redelivery in the same batch
    await stage.apply([login, event("customer.identified", 4, {"anonymousid": "dev-1"})])
    await stage.apply([event("item.viewed", 5, view, anonymousid="dev-1")])

    profile = await reader.read("s1", "c1")
    assert profile is not None
    assert profile["counters"]["views"] == 2
    assert profile["cart"]["count"] == 2
    assert await reader.read("s1", "dev-1") is None


async def test_a_customer_is_given_back_as_the_batch_left_them_with_their_devices_events(
    stage: ProfileStage, reader: ProfileReader
) -> None:
    """What the segments and the rules read of a batch comes back from its own call as a
    read after it finds it, though a device's events reach the customer after the
    customer's own and change nothing watched; a device merged by the batch holds nothing."""
    view = {"item_id": "i", "category": "tea"}
    c1 = ("s1", "c1")
    asked = ReadRequest(key_kinds(SECTIONS), frozenset({c1}))
    await stage.apply([event("item.viewed", 1, view, anonymousid="dev-2")])
    login = event("customer.identified", 2, {"anonymousid": "dev-2"})
    device_later = event("item.viewed", 4, view, anonymousid="dev-2")
    # Only orders are watched: the device's views change what was read, nothing watched.
    own = event("item.viewed", 3, view)
    merged = await stage.apply([login, own, device_later], "orders", asked)
    assert merged.read_back is not None
    assert merged.read_back.stored[("s1", "dev-2")] is None
    assert merged.read_back.stored[c1] == (await reader.read_stored([c1]))[c1]
    # The device's route is known now: its events go to the customer's keys in the same call.
    device_now = event("item.viewed", 6, view, anonymousid="dev-2")
    after = await stage.apply([event("item.viewed", 5, view), device_now], "orders", asked)
    assert after.read_back is not None
    assert after.read_back.stored[c1] == (await reader.read_stored([c1]))[c1]
    profile = await reader.read("s1", "c1")
    assert profile is not None
    assert profile["counters"]["views"] == 5


async def test_an_order_takes_its_items_and_a_late_add_from_before_stays_out(
    stage: ProfileStage, reader: ProfileReader
) -> None:
    await stage.apply([added("a", 1, 1), added("b", 2, 2), placed(["a"], 10)])
    assert await cart_of(reader) == {"b": 2}
    await stage.apply([added("a", 5, 5)])  # happened before the order, arrives after it
    assert await cart_of(reader) == {"b": 2}
    await stage.apply(
        [added("a", 1, 11), event("cart.item_removed", 12, {"item_id": "b", "qty": 1})]
    )
    assert await cart_of(reader) == {"a": 1, "b": 1}
    await stage.apply([event("cart.cleared", 20), added("c", 1, 15)])
    assert await cart_of(reader) == {}


async def test_a_copy_arriving_with_the_login_that_merges_its_original_is_a_duplicate(
    stage: ProfileStage, reader: ProfileReader
) -> None:
    view = event("item.viewed", 1, {"item_id": "i", "category": "tea"}, anonymousid="dev-9")
    await stage.apply([view])
    await stage.apply([event("customer.identified", 2, {"anonymousid": "dev-9"}), view])
    profile = await reader.read("s1", "c1")
    assert profile is not None
    assert profile["counters"]["views"] == 1


async def test_a_copy_ahead_of_the_login_in_its_batch_is_a_duplicate_too(
    stage: ProfileStage, reader: ProfileReader
) -> None:
    view = event("item.viewed", 1, {"item_id": "i", "category": "tea"}, anonymousid="dev-8")
    await stage.apply([view])
    await stage.apply([view, event("customer.identified", 2, {"anonymousid": "dev-8"})])
    profile = await reader.read("s1", "c1")
    assert profile is not None
    assert profile["counters"]["views"] == 1


async def test_erasure_cuts_the_aliases_of_merged_devices(
    stage: ProfileStage, reader: ProfileReader, settings: Settings
) -> None:
    view = {"item_id": "i", "category": "tea"}
    await stage.apply([event("item.viewed", 1, view, anonymousid="dev-1")])
    await stage.apply([event("customer.identified", 2, {"anonymousid": "dev-1"})])
    erasure = event("customer.erasure_requested", 3)
    await stage.apply([erasure])
    keys = Keys(settings.redis.key_prefix)
    assert await stage._client.exists(keys.alias("s1", "dev-1")) == 0
    assert await stage._client.exists(keys.erased_aliases("s1", "c1")) == 0

    # The device browses on: an anonymous shopper again, never the erased customer.
    await stage.apply([event("item.viewed", 4, view, anonymousid="dev-1")])
    assert await reader.read("s1", "c1") is None
    device = await reader.read("s1", "dev-1")
    assert device is not None
    assert device["counters"]["views"] == 1


async def test_a_redelivered_erasure_finishes_cutting_the_aliases(
    stage: ProfileStage, settings: Settings
) -> None:
    keys = Keys(settings.redis.key_prefix)
    await stage.apply(
        [event("item.viewed", 1, {"item_id": "i", "category": "tea"}, anonymousid="dev-2")]
    )
    await stage.apply([event("customer.identified", 2, {"anonymousid": "dev-2"})])
    erasure = event("customer.erasure_requested", 3)
    await stage.apply([erasure])
    # As if the worker died between the erasure and the removal of the alias.
    await stage._client.set(keys.alias("s1", "dev-2"), "c1")
    await stage._client.sadd(keys.erased_aliases("s1", "c1"), "dev-2")

    outcome = await stage.apply([erasure])
    assert outcome.erased == 1
    assert await stage._client.exists(keys.alias("s1", "dev-2")) == 0
    assert await stage._client.exists(keys.erased_aliases("s1", "c1")) == 0


async def test_a_tombstone_an_earlier_version_named_is_moved_under_the_hash(
    stage: ProfileStage, reader: ProfileReader, settings: Settings
) -> None:
    keys = Keys(settings.redis.key_prefix)
    old_tombstone = keys.customer("s1", "c1")[7]
    await stage._client.set(old_tombstone, int((T0 + timedelta(minutes=5)).timestamp() * 1000))

    outcome = await stage.apply([event("item.viewed", 2, {"item_id": "i", "category": "tea"})])
    assert outcome.erased == 1
    assert await reader.read("s1", "c1") is None
    assert await stage._client.exists(old_tombstone) == 0
    assert await stage._client.exists(keys.tombstone("s1", "c1", stage._hash_key)) == 1


async def test_another_workers_cached_alias_does_not_bring_an_erased_customer_back(
    stage: ProfileStage, reader: ProfileReader, settings: Settings
) -> None:
    view = {"item_id": "i", "category": "tea"}
    await stage.apply([event("item.viewed", 1, view, anonymousid="dev-3")])
    await stage.apply([event("customer.identified", 2, {"anonymousid": "dev-3"})])
    other = ProfileStage.from_settings(settings)
    try:
        # The other worker learns the settled alias, and then routes the device straight on.
        await other.apply([event("item.viewed", 3, view, anonymousid="dev-3")])
        assert other._aliases.get("s1", "dev-3") == "c1"
        await stage.apply([event("customer.erasure_requested", 4)])

        outcome = await other.apply([event("item.viewed", 5, view, anonymousid="dev-3")])
        assert outcome.applied == 1
        # Touched on the way to the device, the erased customer must count as changed: the
        # segments mark seen only what did not change, and a seen mark would name them.
        assert ("s1", "c1") in outcome.changed
        assert await reader.read("s1", "c1") is None
        device = await reader.read("s1", "dev-3")
        assert device is not None
        assert device["counters"]["views"] == 1
        assert other._aliases.get("s1", "dev-3") is None
    finally:
        await other.close()
