"""The profile library's calls make the round trip on a real Redis: a batch applied (with
a duplicate, a redirect through an alias and an erasure), read back by name, and the two
steps of a login merge."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from functools import partial

import orjson
import pytest

from crmstream.settings import Settings
from handlers.functions import FunctionLibrary
from handlers.functions.library import lua_sources
from handlers.functions.profile import (
    LIBRARY,
    Applied,
    ApplyBatch,
    CustomerBase,
    CustomerEvents,
    Detach,
    ForgetDetached,
    Forgotten,
    Histories,
    History,
    Login,
    ReadProfiles,
    Redirect,
    Status,
    Stored,
    Unlinked,
)
from handlers.keys import CUSTOMER_KEYS, Keys
from handlers.profile.encode import encode_event
from handlers.redis_client import RedisClient, connect, is_cluster, slot_groups
from rules.shop_config import ShopConfig
from schemas.decode import Decoder
from schemas.events import EVENT_TYPES, Envelope
from schemas.times import epoch_ms

BATCH = partial(
    ApplyBatch, dedup_window_ms=86_400_000, keep_hours=48, keep_days=400, max_recent=20,
    max_favorites=100, max_categories=50, view_weight=1, favorite_weight=3, cart_weight=5,
    order_weight=10, max_cart_markers=100, watched="*", read_back="",
)  # fmt: skip
_ids = iter(range(10**6))


@pytest.fixture
async def client(settings: Settings) -> AsyncIterator[RedisClient]:
    redis = connect(settings.redis)
    yield redis
    await redis.aclose()


def event(kind: str, who: str, data: dict[str, object], event_id: str = "") -> Envelope:
    raw = {
        "specversion": "1.0", "id": event_id or f"e{next(_ids)}", "source": "test",
        "type": kind, "time": "2026-03-01T04:00:00Z", "shop": "s1", "subject": who,
        "data": data,
    }  # fmt: skip
    return Decoder().require(orjson.dumps(raw), epoch_ms(datetime.now(UTC)))


def packed(*events: Envelope, merged: bytes = b"") -> bytes:
    config = ShopConfig()
    return b"".join(encode_event(e, config, None, merged) for e in events)


def test_every_event_type_has_a_handler_or_is_the_batchs_own() -> None:
    handled = set(re.findall(r"\['([a-z_.]+)'\] = function", lua_sources(LIBRARY)))
    # An erasure is the batch's own business (profile_batch.lua), not a profile change.
    assert handled | {"customer.erasure_requested"} == set(EVENT_TYPES)


async def test_a_batch_applied_and_read_back(settings: Settings, client: RedisClient) -> None:
    keys = Keys(settings.redis.key_prefix)
    library = FunctionLibrary(client, LIBRARY, "profile")
    view = viewed("c1", "tea")
    add = event("cart.item_added", "c1", {"item_id": "tea", "category": "tea", "qty": 2,
                                           "price": "9.90"})  # fmt: skip
    c1 = customer(keys, "c1", view, add, view)
    (applied,) = await library.run([BATCH(now_ms=1_000, customers=[c1])])
    # A duplicate: reported changed (its first delivery's follow-ups may not have happened).
    assert applied == Applied(
        [Status.APPLIED, Status.APPLIED, Status.DUPLICATE], [], [], [], changed=[1],
        read=[], rows=[],
    )  # fmt: skip
    read = ReadProfiles("profile,cart,recent", [CustomerBase(c1.base)])
    ((profile, cart, recent),) = (await library.run([read]))[0].rows
    fields = dict(zip(profile[::2], profile[1::2], strict=True))
    assert (fields[b"views"], fields[b"cart_adds"]) == (b"1", b"1")
    assert cart[0] == b"tea"
    assert cart[1].startswith(b"990|")
    assert recent == [b"tea"]
    assert await library.run([ReadProfiles("profile", [])]) == [Stored([])]


def customer(
    keys: Keys, who: str, *events: Envelope, merged: bytes = b"", read_back: bool = False
) -> CustomerEvents:
    return CustomerEvents(
        keys.customer_base("s1", who),
        keys.tombstone("s1", who, None),
        cached_route=False,
        read_back=read_back,
        events=packed(*events, merged=merged),
    )


def as_dict(flat: list[bytes]) -> dict[bytes, bytes]:
    """A hash's (field, value, …) reply as a dict: its order is no part of the contract."""
    return dict(zip(flat[::2], flat[1::2], strict=True))


def viewed(who: str, item: str) -> Envelope:
    return event("item.viewed", who, {"item_id": item, "category": "tea"})


async def test_a_login_merge_then_redirects_and_an_erasure(
    settings: Settings, client: RedisClient
) -> None:
    keys = Keys(settings.redis.key_prefix)
    library = FunctionLibrary(client, LIBRARY, "profile")
    anonymous = customer(keys, "a1", viewed("a1", "x"))
    await library.run([BATCH(now_ms=1_000, customers=[anonymous])])
    ((history,),) = [reply.histories for reply in await library.run([detach(anonymous, "c1")])]
    assert history.taken_by == ""
    # JSON that Lua's cjson reads back; its dedup digests are binary, so Python's would not.
    assert history.state.startswith(b"{")
    assert all(f'"{part}":'.encode() in history.state for part in "pwcarfd")
    assert await library.run([detach(anonymous, "c2")]) == [Histories([History("c1", b"")])]
    login = event("customer.identified", "c1", {"anonymousid": "a1"})
    merge = customer(keys, "c1", login, merged=history.state)
    await library.run([BATCH(now_ms=2_000, customers=[merge])])
    assert await library.run([ForgetDetached([CustomerBase(anonymous.base)])]) == [Forgotten(1)]
    late = customer(keys, "a1", viewed("a1", "y"))
    erasure = customer(keys, "c1", event("customer.erasure_requested", "c1", {}))
    # One call per customer: on a cluster, each is in a slot of its own.
    redirected, erased = await library.run(
        [BATCH(now_ms=3_000, customers=[late]), BATCH(now_ms=3_000, customers=[erasure])]
    )
    assert redirected == Applied(
        [Status.REDIRECTED], [Redirect(1, "c1", settled=True)], [], [], changed=[], read=[],
        rows=[],
    )  # fmt: skip
    assert erased == Applied(
        [Status.APPLIED], [], [Unlinked(1, "a1")], [], changed=[1], read=[], rows=[]
    )


def detach(shopper: CustomerEvents, customer: str) -> Detach:
    return Detach([Login(shopper.base, customer)])


async def test_logins_of_a_hash_slot_detach_and_forget_in_one_call(
    settings: Settings, client: RedisClient
) -> None:
    keys = Keys(settings.redis.key_prefix)
    library = FunctionLibrary(client, LIBRARY, "profile")
    shoppers = [customer(keys, f"a{n}", viewed(f"a{n}", "x")) for n in range(20, 26)]
    await library.run([BATCH(now_ms=1_000, customers=[shopper]) for shopper in shoppers])
    await library.run([detach(shoppers[0], "c-other")])  # already someone else's
    logins = [Login(shopper.base, f"c{n}") for n, shopper in enumerate(shoppers)]
    groups = slot_groups(client, [login.base for login in logins])
    assert len(groups) == (len(logins) if is_cluster(client) else 1)
    replies = await library.run([Detach([logins[at] for at in group]) for group in groups])
    histories = dict(
        pair
        for group, reply in zip(groups, replies, strict=True)
        for pair in zip(group, reply.histories, strict=True)
    )
    assert [histories[at].taken_by for at in range(len(logins))] == ["c-other", *[""] * 5]
    assert all(histories[at].state.startswith(b"{") for at in range(1, len(logins)))
    detached = [CustomerBase(login.base) for login in logins[1:]]
    forget = [
        ForgetDetached([detached[at] for at in group])
        for group in slot_groups(client, [shopper.base for shopper in detached])
    ]
    assert sum(reply.forgotten for reply in await library.run(forget)) == len(logins) - 1
    for shopper in shoppers[1:]:
        assert not await client.exists(shopper.base + CUSTOMER_KEYS.profile)


async def test_a_batch_gives_back_the_profiles_asked_for_or_changed_as_it_left_them(
    settings: Settings, client: RedisClient
) -> None:
    """Flagged customers come back changed or not, others only if changed; an alias's
    redirect never (its events are applied elsewhere); each row is what a read right after
    the call gives."""
    keys = Keys(settings.redis.key_prefix)
    library = FunctionLibrary(client, LIBRARY, "profile")
    await library.run([BATCH(now_ms=1_000, customers=[customer(keys, "a9", viewed("a9", "x"))])])
    ((history,),) = [
        reply.histories
        for reply in await library.run([Detach([Login(keys.customer_base("s1", "a9"), "c9")])])
    ]
    login = event("customer.identified", "c9", {"anonymousid": "a9"})
    merge = customer(keys, "c9", login, merged=history.state)
    await library.run([BATCH(now_ms=1_500, customers=[merge])])
    first = event("customer.registered", "c2", {})
    await library.run([BATCH(now_ms=1_000, customers=[customer(keys, "c2", first)])])
    search = event("search.performed", "c1", {"query": "tea"})
    calls = [
        customer(keys, "c1", search),  # changes nothing watched, not asked for: no row
        customer(keys, "c2", first, read_back=True),  # a duplicate, asked for: a row
        customer(keys, "c3", viewed("c3", "tea")),  # views watched: a row
        customer(keys, "a9", viewed("a9", "y"), read_back=True),  # merged: redirected
        customer(keys, "c4", event("customer.erasure_requested", "c4", {}), read_back=True),
    ]
    # One call per customer: on a cluster, each is in a slot of its own.
    replies = await library.run(
        [
            BATCH(now_ms=2_000, watched="views", read_back="profile,recent", customers=[call])
            for call in calls
        ]
    )
    assert [reply.read for reply in replies] == [[], [1], [1], [], [1]]
    given = [reply.rows[0] for reply in replies if reply.read]
    bases = [CustomerBase(call.base) for call, reply in zip(calls, replies, strict=True)
             if reply.read]  # fmt: skip
    after = await library.run([ReadProfiles("profile,recent", [base]) for base in bases])
    # The profile hash comes back from the call's memory, in an order of its own.
    assert [(as_dict(p), recent) for p, recent in given] == [
        (as_dict(p), recent) for p, recent in (reply.rows[0] for reply in after)
    ]
    c2, c3, c4 = given
    assert c3[1] == [b"tea"]
    assert as_dict(c2[0])[b"registered_at"]
    assert c4 == [[], []]  # erased: no profile


@pytest.mark.parametrize(
    ("watched", "kind", "changed"),
    [
        ("orders,first_seen,last_order", "item.viewed", False),
        ("views", "item.viewed", True),
        ("w:vh", "item.viewed", True),
        ("w:od", "item.viewed", False),
        ("k:recent", "item.viewed", True),
        ("k:affinity", "item.viewed", True),
        ("k:cart", "item.viewed", False),
        ("orders,first_seen,last_order", "order.placed", True),
        ("w:od", "order.placed", True),
        ("k:cart", "order.placed", True),
        ("", "order.placed", False),
        ("*", "search.performed", True),
    ],
)
async def test_a_batch_reports_the_customers_it_changed_something_watched_of(
    settings: Settings, client: RedisClient, watched: str, kind: str, changed: bool
) -> None:
    keys = Keys(settings.redis.key_prefix)
    library = FunctionLibrary(client, LIBRARY, "profile")
    first = event("customer.registered", "c1", {})
    await library.run([BATCH(now_ms=1_000, customers=[customer(keys, "c1", first)])])
    line = {"item_id": "tea", "category": "tea", "qty": 1, "price": "9.90"}
    data_of: dict[str, dict[str, object]] = {
        "item.viewed": {"item_id": "tea", "category": "tea"},
        "order.placed": {"order_id": "o1", "items": [line], "total": "9.90"},
        "search.performed": {"query": "tea"},
    }
    data = data_of[kind]
    # At the registration's moment: first_seen and last_seen stay as they were.
    later = event(kind, "c1", data)
    (applied,) = await library.run(
        [BATCH(now_ms=2_000, watched=watched, customers=[customer(keys, "c1", later)])]
    )
    assert applied.changed == ([1] if changed else [])
