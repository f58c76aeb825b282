"""A batch's events, sent to the profile Function: one call on one Redis, one per slot on
a cluster (functions/profile.py ApplyBatch), and what it answered, by group."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from functools import partial
from typing import Final

from crmstream.settings import ProfileSettings
from handlers.functions import FunctionLibrary
from handlers.functions.profile import LIBRARY, Applied, ApplyBatch, CustomerEvents
from handlers.keys import Keys
from handlers.profile.encode import EncodedEvent
from handlers.redis_client import RedisClient, slot_groups

_HOUR_S: Final = 3600
_DAY_S: Final = 86_400


@dataclass(frozen=True, slots=True)
class Route:
    """Where an anonymous shopper's events go: the customer it was merged into."""

    customer: str
    # Known from this worker's cache (which another worker's erasure may have made stale),
    # not from Redis within this batch.
    cached: bool


@dataclass(frozen=True, slots=True)
class ReadRequest:
    """What to read back in the same call (ApplyBatch.read_back): these keys of every
    customer the call changed something watched of, and of ``customers`` in any case."""

    kinds: tuple[str, ...] = ()  # CustomerKeys names, the profile hash first
    customers: frozenset[tuple[str, str]] = frozenset()

    @property
    def kinds_text(self) -> str:
        return ",".join(self.kinds)


@dataclass(slots=True)
class Replies:
    """What the profile Function answered for a batch, by group (functions/profile.py Applied)."""

    statuses: dict[tuple[str, str], list[int]] = field(default_factory=dict)
    # (group, the customer it was merged into, whether the merge is settled)
    redirects: list[tuple[tuple[str, str], str, bool]] = field(default_factory=list)
    bounced: list[tuple[str, str]] = field(default_factory=list)  # a stale cached route
    unlinked: list[tuple[tuple[str, str], str]] = field(default_factory=list)  # erased alias
    # Groups whose batch changed something watched (functions/profile.py Applied.changed).
    changed: list[tuple[str, str]] = field(default_factory=list)
    # Each customer whose keys a call took, call by call, with its keys as the call left
    # them if they came back (Applied.rows), or None: what was read back of it before is
    # stale now, or may be.
    rows: list[tuple[tuple[str, str], list[list[bytes]] | None]] = field(default_factory=list)


def _apply_batch(settings: ProfileSettings) -> partial[ApplyBatch]:
    """The batch call with its settings filled in: what is left is now and the customers."""
    lateness = settings.lateness_s
    return partial(
        ApplyBatch,
        dedup_window_ms=settings.dedup_window_s * 1000,
        keep_hours=24 + -(-lateness // _HOUR_S),  # the 24h window plus lateness
        keep_days=365 + -(-lateness // _DAY_S),  # the 365d window plus lateness
        max_recent=settings.recent_views,
        max_favorites=settings.favorites,
        max_categories=settings.categories,
        view_weight=settings.weight_view,
        favorite_weight=settings.weight_favorite,
        cart_weight=settings.weight_cart,
        order_weight=settings.weight_order,
        max_cart_markers=settings.cart_markers,
    )


class BatchSender:
    def __init__(
        self, client: RedisClient, keys: Keys, settings: ProfileSettings, hash_key: bytes | None
    ) -> None:
        self._client = client
        self._keys = keys
        self._hash_key = hash_key
        self._apply_batch = _apply_batch(settings)
        self._library = FunctionLibrary(client, LIBRARY, "profile")

    async def send(
        self,
        order: list[tuple[str, str]],
        groups_of: dict[tuple[str, str], list[EncodedEvent]],
        routes: dict[tuple[str, str], Route],
        watched: str,
        read_back: ReadRequest,
    ) -> Replies:
        owners = [
            (shop, routes[(shop, who)].customer if (shop, who) in routes else who)
            for shop, who in order
        ]
        bases = [self._keys.customer_base(*owner) for owner in owners]
        groups = slot_groups(self._client, bases)
        now_ms = int(time.time() * 1000)
        calls = [
            self._apply_batch(
                now_ms=now_ms,
                watched=watched,
                read_back=read_back.kinds_text,
                customers=[
                    CustomerEvents(
                        bases[index],
                        self._keys.tombstone(*owners[index], self._hash_key),
                        order[index] in routes and routes[order[index]].cached,
                        order[index] in read_back.customers and order[index] not in routes,
                        b"".join(groups_of[order[index]]),
                    )
                    for index in members
                ],
            )
            for members in groups
        ]
        replies = Replies()
        applied: list[Applied] = await self._library.run(calls)
        for members, reply in zip(groups, applied, strict=True):
            # Indexes in a reply count from 1 among the customers of that call.
            group_at = [order[index] for index in members]
            position = 0
            for group in group_at:
                count = len(groups_of[group])
                replies.statuses[group] = [
                    int(s) for s in reply.statuses[position : position + count]
                ]
                position += count
            replies.redirects += [
                (group_at[r.index - 1], r.customer, r.settled) for r in reply.redirects
            ]
            replies.bounced += [group_at[index - 1] for index in reply.bounced]
            replies.unlinked += [(group_at[u.index - 1], u.anonymous_id) for u in reply.unlinked]
            replies.changed += [group_at[index - 1] for index in reply.changed]
            came_back = dict(zip(reply.read, reply.rows, strict=True))
            # Within a call, a customer's last row read is as the call left them: the
            # Function reads a customer again wherever it applies more of their events.
            last_read: dict[tuple[str, str], list[list[bytes]] | None] = {}
            for position, index in enumerate(members, 1):
                row = came_back.get(position)
                if row is not None or owners[index] not in last_read:
                    last_read[owners[index]] = row
            replies.rows += last_read.items()
        return replies
