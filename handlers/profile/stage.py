"""The profile stage: a batch of valid events applied to Redis in one Function call.

Events are grouped by customer (keeping each customer's order); the call takes
the keys of every customer in the batch and applies them atomically, so a crash
never leaves half an event applied. Duplicates (by id, within the dedup window)
change nothing and are counted.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from crmstream.settings import ProfileSettings, Settings
from handlers.flow import count_flow, count_shop_minutes
from handlers.functions import FunctionLibrary
from handlers.functions.profile import LIBRARY, Status, Watch
from handlers.keys import Keys
from handlers.profile.encode import EncodedEvent, encode_event
from handlers.profile.identity import AliasCache, is_junk
from handlers.profile.logins import Logins
from handlers.profile.read import ReadBack, Stored, stored_of
from handlers.profile.send import BatchSender, ReadRequest, Route
from handlers.redis_client import RedisClient, connect
from handlers.shop_configs import ShopConfigs
from rules.folders import shop_configs_folder
from schemas.events import CustomerIdentified, Envelope


@dataclass(frozen=True, slots=True)
class BatchOutcome:
    applied: int
    duplicates: int
    erased: int
    unattributed: int = 0  # anonymous events under a placeholder id, kept out of profiles
    # Every profile the batch may have changed (a merged anonymous shopper's too), with its
    # newest event there: (event time, event id). Segments are evaluated again for these.
    touched: dict[tuple[str, str], tuple[int, str]] = field(default_factory=dict)
    # Event type → how many of the batch's events of that type were duplicates (metrics).
    duplicates_by_type: Counter[str] = field(default_factory=Counter)
    # Of ``touched``, the profiles the batch changed something watched of (``apply``), or
    # erased, forgot, or met a duplicate for (functions/profile.py Applied.changed).
    changed: set[tuple[str, str]] = field(default_factory=set)
    # Profiles as the batch left them, given back by its own calls (``apply``'s read_back).
    read_back: ReadBack | None = None


def _touch(
    touched: dict[tuple[str, str], tuple[int, str]],
    key: tuple[str, str],
    at_ms: int,
    event_id: str,
) -> None:
    newest = touched.get(key)
    if newest is None or at_ms >= newest[0]:
        touched[key] = (at_ms, event_id)


class ProfileStage:
    """An EventSink that keeps the live profiles."""

    def __init__(
        self,
        client: RedisClient,
        keys: Keys,
        settings: ProfileSettings,
        shops: ShopConfigs,
        hash_key: bytes | None,
    ) -> None:
        self._client = client
        self._keys = keys
        self._sender = BatchSender(client, keys, settings, hash_key)
        self._shops = shops
        self._hash_key = hash_key
        self._aliases = AliasCache(settings.alias_cache)
        self._library = FunctionLibrary(client, LIBRARY, "profile")
        self._logins = Logins(client, keys, self._library, self._aliases)

    @classmethod
    def from_settings(cls, settings: Settings) -> ProfileStage:
        return cls(
            connect(settings.redis),
            Keys(settings.redis.key_prefix),
            settings.profiles,
            ShopConfigs(shop_configs_folder(settings.profiles)),
            settings.privacy_hash_key(),
        )

    @property
    def client(self) -> RedisClient:
        return self._client

    @property
    def shops(self) -> ShopConfigs:
        return self._shops

    async def handle(self, events: Sequence[Envelope]) -> BatchOutcome:
        return await self.apply(events)

    async def apply(
        self,
        events: Sequence[Envelope],
        watched: str = Watch.ALL,
        read_back: ReadRequest = ReadRequest(),  # noqa: B008 -- frozen, shared safely
    ) -> BatchOutcome:
        """Apply a batch; raises (and applies nothing more) if Redis fails. ``watched``:
        what of the profiles the outcome's ``changed`` is about (handlers/profile/inputs.py),
        by default anything; ``read_back``: the profiles to give back as the batch leaves
        them, in the outcome's ``read_back``."""
        merges = await self._logins.detach(events)
        # Logins of this batch route their anonymous events straight to the customer; the
        # lasting cache learns them only once the batch is in (a retried batch detaches again).
        merged_now = {
            (event.shop, event.data.anonymousid): event.who
            for event in events
            if isinstance(event, CustomerIdentified) and event.id in merges
        }
        # A group is one customer's events, or one anonymous shopper's. ``routes`` sends an
        # anonymous shopper's to the customer it was merged into, with how that is known:
        # a login in this batch (after the customer's own events, so after the merge: a copy
        # of one the merge brings is then known as a duplicate), or this worker's cache.
        groups: dict[tuple[str, str], list[EncodedEvent]] = {}
        routed: dict[tuple[str, str], list[EncodedEvent]] = {}
        routes: dict[tuple[str, str], Route] = {}
        # Each group's event types, beside its encoded events (for the duplicate counts).
        kinds: dict[tuple[str, str], list[str]] = {}
        unattributed = 0
        touched: dict[tuple[str, str], tuple[int, str]] = {}
        for event in events:
            shop, who = event.shop, event.who
            target, owner = groups, who
            if event.subject is None:
                if is_junk(who):
                    unattributed += 1
                    continue
                route = routes.get((shop, who))
                if route is None:
                    if (shop, who) in merged_now:
                        route = Route(merged_now[(shop, who)], cached=False)
                    elif (cached := self._aliases.get(shop, who)) is not None:
                        route = Route(cached, cached=True)
                    if route is not None:
                        routes[(shop, who)] = route
                if route is not None:
                    target, owner = routed, route.customer
            _touch(touched, (shop, owner), event.time_ms, event.id)
            merged = merges.get(event.id, b"")
            encoded = encode_event(event, self._shops.for_shop(shop), self._hash_key, merged)
            target.setdefault((shop, who), []).append(encoded)
            kinds.setdefault((shop, who), []).append(
                event.type  # type: ignore[attr-defined]  # every concrete event has one
            )
        groups.update(routed)
        statuses: list[int] = []
        duplicates: Counter[str] = Counter()
        unlinked: list[tuple[str, str, str]] = []
        changed: set[tuple[str, str]] = set()
        # Rows given back, by customer; a later call that took the same keys replaces them.
        rows: dict[tuple[str, str], list[list[bytes]] | None] = {}
        while groups:
            done, groups, kinds, routes = await self._apply_groups(
                groups, kinds, routes, unlinked=unlinked, changed=changed, watched=watched,
                read_back=read_back, rows=rows,
            )  # fmt: skip
            statuses.extend(status for status, _kind in done)
            duplicates.update(kind for status, kind in done if status == Status.DUPLICATE)
            for shop, who in groups:  # an alias this worker did not know of yet, or a stale one
                owner = routes[(shop, who)].customer if (shop, who) in routes else who
                _touch(touched, (shop, owner), *max(touched.values()))
        await self._after_apply(events, merges, unlinked, duplicates)
        for (shop, anonymous_id), customer in merged_now.items():
            self._aliases.put(shop, anonymous_id, customer)
            touched.setdefault((shop, anonymous_id), touched[(shop, customer)])
            changed.add((shop, anonymous_id))  # its copy is forgotten
        return BatchOutcome(
            applied=statuses.count(Status.APPLIED),
            duplicates=statuses.count(Status.DUPLICATE),
            erased=statuses.count(Status.ERASED),
            unattributed=unattributed,
            touched=touched,
            duplicates_by_type=duplicates,
            changed=changed,
            # The copies forgotten are known to hold nothing now: nobody reads them again.
            read_back=_read_back(read_back.kinds, rows, forgotten=merged_now.keys()),
        )

    async def _apply_groups(
        self,
        groups: dict[tuple[str, str], list[EncodedEvent]],
        kinds: dict[tuple[str, str], list[str]],
        routes: dict[tuple[str, str], Route],
        *,
        unlinked: list[tuple[str, str, str]],
        changed: set[tuple[str, str]],
        watched: str,
        read_back: ReadRequest,
        rows: dict[tuple[str, str], list[list[bytes]] | None],
    ) -> tuple[
        list[tuple[int, str]],
        dict[tuple[str, str], list[EncodedEvent]],
        dict[tuple[str, str], list[str]],
        dict[tuple[str, str], Route],
    ]:
        """The groups applied (one call on one Redis, one per slot on a cluster); anonymous
        shoppers' groups may come back to go elsewhere.

        Returns (status, event type) of each event applied, then the groups to send again,
        their event types and their routes. ``unlinked`` gains (shop, customer, anonymous
        id) for each alias an erasure cut; ``changed``, the profiles (shop, customer) the
        calls changed something ``watched`` of; ``rows``, what they gave back.
        """
        order = list(groups)
        replies = await self._sender.send(order, groups, routes, watched, read_back)
        rows.update(replies.rows)
        for shop, who in replies.changed:
            route = routes.get((shop, who))
            changed.add((shop, who if route is None else route.customer))
        again: dict[tuple[str, str], list[EncodedEvent]] = {}
        again_routes: dict[tuple[str, str], Route] = {}
        for group, customer, settled in replies.redirects:
            if settled:
                # Only a settled merge may be bypassed: until then, the anonymous copy's
                # dedup marks are what tells a late copy of its events from a new one.
                self._aliases.put(*group, customer)
            again_routes[group] = Route(customer, cached=False)
        for group in replies.bounced:
            # The cached alias led to an erased customer: the anonymous shopper's own keys
            # say where its events go now. The erased customer was touched on the way, so
            # they count as changed: the segments then drop them (never mark them seen).
            self._aliases.forget(*group)
            changed.add((group[0], routes[group].customer))
        unlinked += [(*group, anonymous_id) for group, anonymous_id in replies.unlinked]
        done: list[tuple[int, str]] = []
        again_kinds: dict[tuple[str, str], list[str]] = {}
        for group in order:
            for encoded, kind, status in zip(
                groups[group], kinds[group], replies.statuses[group], strict=True
            ):
                if status == Status.REDIRECTED:
                    again.setdefault(group, []).append(encoded)
                    again_kinds.setdefault(group, []).append(kind)
                else:
                    done.append((status, kind))
        return done, again, again_kinds, again_routes

    async def _after_apply(
        self,
        events: Sequence[Envelope],
        merges: dict[str, bytes],
        unlinked: list[tuple[str, str, str]],
        duplicates: Counter[str],
    ) -> None:
        """Once the batch is in: drop the merged anonymous copies, cut the aliases of erased
        customers (so an old device id no longer leads to them), count the flow per stream."""
        forget = self._logins.forget_calls(events, merges)

        def upkeep(pipe: Any) -> None:  # noqa: ANN401 -- a redis-py pipeline
            for shop, _customer, anonymous_id in unlinked:
                self._aliases.forget(shop, anonymous_id)
                pipe.delete(self._keys.alias(shop, anonymous_id))
            # The list goes last: until every alias is gone, a retried batch finds it again.
            for shop, customer in dict.fromkeys((s, c) for s, c, _ in unlinked):
                pipe.delete(self._keys.erased_aliases(shop, customer))
            count_flow(pipe, self._keys.flow, (event.stream for event in events), duplicates)
            count_shop_minutes(pipe, self._keys, (event.shop for event in events), time.time())

        await self._library.run(forget, after=upkeep)

    async def close(self) -> None:
        await self._client.aclose()


def _read_back(
    kinds: Sequence[str],
    rows: dict[tuple[str, str], list[list[bytes]] | None],
    forgotten: Iterable[tuple[str, str]],
) -> ReadBack | None:
    if not kinds:
        return None
    stored: dict[tuple[str, str], Stored | None] = {
        customer: stored_of(kinds, row) for customer, row in rows.items() if row is not None
    }
    stored.update(dict.fromkeys(forgotten))
    return ReadBack(frozenset(kinds), stored)
