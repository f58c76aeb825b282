"""Every Redis key the engine writes, built in one place.

All keys start with the configured prefix, so that several deployments (or
tests) can share one Redis. Every key of one customer carries the hash tag
``{shop:customer}``: a Redis Cluster keeps them in one slot, so one script can
change them together.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass
from typing import Final, NamedTuple

from redis.crc import key_slot

from crmstream.errors import InvalidShopError
from handlers.key_tags import slot_tag, tombstone_digest
from schemas.types import SHOP_ID_RULE, is_shop_id


class CustomerKeys(NamedTuple):
    """The suffixes of one customer's keys, by name (functions/profile.py writes them into
    the Lua)."""

    profile: str = "p"  # hash: facts, counters, recency
    windows: str = "w"  # hash: event-time buckets of the sliding windows
    cart: str = "c"  # hash: the open cart, item → line
    affinity: str = "a"  # hash: category affinity
    recent: str = "r"  # sorted set: recently viewed items by event time
    favorites: str = "f"  # sorted set: favourites by event time
    dedup: str = "d"  # sorted set: ids (digests) of events seen within the dedup window
    # string: erased at, as an earlier version kept it (named the customer; moved to
    # Keys.tombstone when next seen)
    old_tombstone: str = "x"
    alias: str = "al"  # string: for an anonymous shopper, the customer it was merged into
    erased_aliases: str = "xa"  # set: after an erasure, merged ids whose aliases are to go


class TriggerKeys(NamedTuple):
    """The suffixes of one trigger shard's keys, by name (functions/triggers.py writes them
    into the Lua); the per-customer ones (ending in ":") continue with "<shop>:<customer>"."""

    outbox: str = "outbox"  # stream: triggers waiting for the relay
    held: str = "held"  # sorted set: trigger held by quiet hours → release (ms)
    held_payloads: str = "heldp"  # hash: held trigger → its message
    fired: str = "fired:"  # sorted set per customer: trigger ids fired, by occurrence time
    cooldowns: str = "cd:"  # hash per customer: rule → when it last fired
    caps: str = "cap:"  # hash per customer: the send gate's counts per channel and day (gate.lua)
    stats: str = "stats"  # hash: "<shop> US <rule> US <outcome>" → how many (rules stats, lift)
    open_goals: str = "open:"  # sorted set per customer: triggers awaiting their goal, by time
    goals: str = "goals:"  # sorted set per customer: goal events (an order…) by time
    decision_log: str = "log:"  # list per customer: their last decisions, newest first
    phones: str = "phones"  # hash: "<shop> US <phone hash>" → customer, and back
    minutes: str = "tpm:"  # hash per shop and hour: "<rule> US <outcome> US <minute>" → count
    journeys: str = "jn:"  # hash per customer: journey instance → its position; entries
    journey_stats: str = "jstats"  # hash: "<shop> US <journey> US <version> US <what>" → count


class SegmentKeys(NamedTuple):
    """Per trigger shard, the keys of live segments, by name (functions/segments.py writes
    them into the Lua)."""

    memberships: str = "sg:"  # hash per customer: segment → transitions (odd: a member)
    members: str = "sgm:"  # sorted set per shop and segment: its members, all scored 0
    sizes: str = "sgn:"  # hash per shop: segment → members (the size, kept as a counter)
    outbox: str = "sgout"  # stream: entered/exited changes waiting for the relay
    seen: str = "seen"  # sorted set: customer → last event time, for passes time alone needs
    versions: str = "sgver"  # hash: segment → the version the last recheck evaluated for all


CUSTOMER_KEYS: Final = CustomerKeys()
TRIGGER_KEYS: Final = TriggerKeys()
SEGMENT_KEYS: Final = SegmentKeys()
# The consumer group the relays read the outboxes with (an erasure withdraws only what
# it has not read yet).
RELAY_GROUP: Final = "relay"
# Per trigger shard, the indexes schedules find their customers through (never a key scan).
SCHEDULE_INDEX_SUFFIXES: Final = {
    "birthday": "bday:",  # set per MMDD: "<shop>:<customer>" born that day
    "holiday": "members",  # set: every registered customer
    "dormant": "orders",  # sorted set: customer → last order (ms)
    "after_delivery": "delivered",  # sorted set: customer → last delivery (ms)
}
# Customers are spread over this many shards, each one Redis Cluster slot. Changing it
# moves customers between shards, so it is fixed.
TRIGGER_SHARDS: Final = 16


@dataclass(frozen=True, slots=True)
class PartitionKeys:
    """The keys of one partition's timing, all under the hash tag ``{p<n>}``.

    A customer's events travel in partition *n* of every event topic, so what is
    due for them (absence timers, decisions put off while the worker was behind)
    depends on how far partition *n* has been read, and moves with it from worker
    to worker; the offsets applied live beside it (handlers/offsets.py).
    """

    timers: str  # sorted set: absence timer → deadline (ms)
    payloads: str  # hash: timer, or entry put off → what armed it (members.timer_value)
    later: str  # sorted set: on-event decisions put off while behind → event time
    taken: str  # sorted set: due entries handed to the walker, until it is done with them
    walker: str  # string: the worker that owns this partition's walks for now
    offsets: str  # hash: topic → the next offset to read, recorded after a batch is applied
    ops: str  # sorted set: arms and cancels waiting for event time to pass them → event time


@dataclass(frozen=True, slots=True)
class Keys:
    prefix: str

    @property
    def tokens(self) -> str:
        """Hash: API token id → its shop, scope, name and keyed digest (handlers/tokens.py)."""
        return f"{self.prefix}:tokens"

    @property
    def flow(self) -> str:
        """Hash: event stream → events the workers have taken in (a demo and smoke signal)."""
        return f"{self.prefix}:flow"

    def replication_mark(self, tag: str) -> str:
        """String: written before a WAIT on the primary that serves ``tag``'s slot
        (handlers/replication.py), so that the WAIT covers every write before it."""
        return f"{self.prefix}:{{{tag}}}:ack"

    def shop_minutes(self, shop: str, hour: int) -> str:
        """Hash: minute of the hour → events of ``shop`` taken in then (epoch ``hour``)."""
        return f"{self.prefix}:epm:{shop}:{hour}"

    def customer_base(self, shop: str, who: str) -> str:
        """What every key of one customer starts with; a suffix completes each.

        The profile functions take this one string per customer and add the suffixes
        (passed along, from CUSTOMER_KEYS) themselves: it carries the hash tag,
        so a Redis Cluster routes the call to the customer's slot, and a batch pays for
        one argument per customer instead of nine.
        """
        return f"{self.prefix}:{{{shop}:{who}}}:"

    def customer(self, shop: str, who: str) -> tuple[str, ...]:
        """The keys of one customer (or anonymous shopper), in CUSTOMER_KEYS order."""
        base = self.customer_base(shop, who)
        return tuple(base + suffix for suffix in CUSTOMER_KEYS)

    def tombstone(self, shop: str, customer: str, hash_key: bytes | None) -> str:
        """String: when the customer was erased (event time, ms), under a keyed hash of shop
        and customer, in the customer's own Redis Cluster slot (a hash tag chosen to fall
        there), so the profile function reads it with the customer's other keys."""
        slot = key_slot(f"{shop}:{customer}".encode())
        digest = tombstone_digest(hash_key, shop, customer)
        return f"{self.prefix}:{{{slot_tag(slot)}}}:x:{digest}"

    def tombstone_pattern(self) -> str:
        """Matches every tombstone (replay keeps them, tests find them)."""
        return f"{self.prefix}:{{*}}:x:*"

    def alias(self, shop: str, anonymous_id: str) -> str:
        """String: the customer an anonymous shopper was merged into."""
        return self.customer_base(shop, anonymous_id) + CUSTOMER_KEYS.alias

    def erased_aliases(self, shop: str, customer: str) -> str:
        """Set: anonymous ids of an erased customer whose alias keys are still to be removed."""
        return self.customer_base(shop, customer) + CUSTOMER_KEYS.erased_aliases

    def trigger_shard(self, shop: str, customer: str) -> str:
        """The base key of the trigger shard a customer belongs to (stable across processes)."""
        return self.trigger_shard_base(zlib.crc32(f"{shop}:{customer}".encode()) % TRIGGER_SHARDS)

    def trigger_shard_base(self, shard: int) -> str:
        return f"{self.prefix}:{{t{shard}}}:"

    def trigger_shards(self) -> list[str]:
        return [self.trigger_shard_base(shard) for shard in range(TRIGGER_SHARDS)]

    def outbox(self, shard_base: str) -> str:
        return shard_base + TRIGGER_KEYS.outbox

    def held(self, shard_base: str) -> str:
        return shard_base + TRIGGER_KEYS.held

    def held_payloads(self, shard_base: str) -> str:
        return shard_base + TRIGGER_KEYS.held_payloads

    def partition(self, index: int) -> PartitionKeys:
        """The keys of partition ``index``'s timing: its timers, what was put off, its offsets."""
        base = f"{self.prefix}:{{p{index}}}:"
        return PartitionKeys(
            timers=base + "timers",
            payloads=base + "timer",
            later=base + "later",
            taken=base + "taken",
            walker=base + "walker",
            offsets=base + "offsets",
            ops=base + "ops",
        )

    def partition_pattern(self) -> str:
        """Matches every partition's timing keys (the gauges and tests find them by it)."""
        return f"{self.prefix}:{{p*}}:*"

    def schedule_index(self, shard_base: str, kind: str, mmdd: str = "") -> str:
        """The index of a schedule kind in a shard; birthdays take the month and day."""
        return shard_base + SCHEDULE_INDEX_SUFFIXES[kind] + mmdd

    def schedule_pass(self, shard_base: str, rule_id: str, slot: int) -> str:
        """String: one worker took this shard's pass of a schedule rule in this time slot."""
        return f"{shard_base}sched:{rule_id}:{slot}"

    def erasure_indexes(self, shard_base: str) -> tuple[list[str], list[str]]:
        """The indexes of a shard an erased customer may be in: (sets, sorted sets)."""
        birthdays = [
            self.schedule_index(shard_base, "birthday", f"{month:02d}{day:02d}")
            for month in range(1, 13)
            for day in range(1, 32)
        ]
        sets = [*birthdays, self.schedule_index(shard_base, "holiday")]
        sorted_sets = [
            self.schedule_index(shard_base, "dormant"),
            self.schedule_index(shard_base, "after_delivery"),
        ]
        return sets, sorted_sets

    def segment_outbox(self, shard_base: str) -> str:
        return shard_base + SEGMENT_KEYS.outbox

    def segment_memberships(self, shop: str, customer: str) -> str:
        return self.trigger_shard(shop, customer) + SEGMENT_KEYS.memberships + f"{shop}:{customer}"

    def segment_members(self, shard_base: str, shop: str, segment: str) -> str:
        return shard_base + SEGMENT_KEYS.members + f"{shop}:{segment}"

    def segment_sizes(self, shard_base: str, shop: str) -> str:
        return shard_base + SEGMENT_KEYS.sizes + shop

    def segment_seen(self, shard_base: str) -> str:
        return shard_base + SEGMENT_KEYS.seen

    def segment_versions(self, shard_base: str) -> str:
        return shard_base + SEGMENT_KEYS.versions

    def segment_pass(self, shard_base: str, slot: int) -> str:
        """String: one worker took this shard's recheck of timed segments in this time slot."""
        return f"{shard_base}sgpass:{slot}"

    def fired(self, shop: str, customer: str) -> str:
        """Sorted set: the customer's trigger ids decided within the fired window, by time."""
        return self.trigger_shard(shop, customer) + TRIGGER_KEYS.fired + f"{shop}:{customer}"

    def decision_log(self, shop: str, customer: str) -> str:
        """List: the customer's last decisions, newest first (triggers.lua log_decision)."""
        return self.trigger_shard(shop, customer) + TRIGGER_KEYS.decision_log + f"{shop}:{customer}"

    def journeys(self, shop: str, customer: str) -> str:
        """Hash: the customer's journey instances and entries (journeys.lua)."""
        return self.trigger_shard(shop, customer) + TRIGGER_KEYS.journeys + f"{shop}:{customer}"

    @property
    def journey_versions(self) -> str:
        """Hash: "<journey> US <version>" → the file as that version was first loaded."""
        return f"{self.prefix}:jver"

    def journey_wakes(self, partition: int) -> str:
        """Hash: "<journey> US <version>" → 1 once a partition's waits of that journey were
        woken for the version's ``on_new_version: exit`` (handlers/journeys/runner.py)."""
        return f"{self.prefix}:{{p{partition}}}:jwoke"

    def journey_stats(self, shard_base: str) -> str:
        return shard_base + TRIGGER_KEYS.journey_stats

    def phones(self, shard_base: str) -> str:
        """Hash: customers by the keyed hash of their phone number, per shard (the console
        finds a customer by phone through it; an erasure removes the entry)."""
        return shard_base + TRIGGER_KEYS.phones

    def trigger_minutes(self, shard_base: str, shop: str, hour: int) -> str:
        """Hash: a shop's decisions in this shard in an hour (epoch hours), by rule, outcome
        and minute (the console's charts over the last hour and day)."""
        return f"{shard_base}{TRIGGER_KEYS.minutes}{shop}:{hour}"

    def dead_letter_minutes(self, shop: str, hour: int) -> str:
        """Hash: minute of the hour → messages naming ``shop`` sent to the dead-letter topic."""
        return f"{self.prefix}:dpm:{shop}:{hour}"

    def rule_stats(self, shard_base: str) -> str:
        return shard_base + TRIGGER_KEYS.stats

    def customers_of(self, shop: str) -> str:
        """Pattern of every customer key of a shop (replay and tests only, never a hot path).
        A name outside the contract's pattern could be a glob (``*``) and is refused."""
        if not is_shop_id(shop):
            raise InvalidShopError(f"not a shop name: {shop[:80]!r} ({SHOP_ID_RULE})")
        return f"{self.prefix}:{{{shop}:*"

    def pattern(self) -> str:
        """Matches every key of this prefix (tests and `replay` wipe with it, never the worker)."""
        return f"{self.prefix}:*"
