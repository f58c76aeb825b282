"""Live profiles (profile_*.lua), as calls: a batch's events applied, login merges, reads.

Every call works on customers of one slot (one call per slot on a Redis Cluster). A
customer's keys share one base ("<prefix>:{shop:customer}:", which carries the hash tag)
and continue with the suffixes of handlers/keys.py CustomerKeys, written into the Lua by
name. Times are epoch milliseconds of event time, except the worker's clock (now_ms).

Everything that can arrive out of order is kept order-free: counters add, windows add
into event-time buckets, recency is min/max, recent views and favourites are scored by
event time, and a cart line only counts the changes made after the last order or clear
that took it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import IntEnum, StrEnum
from typing import ClassVar, Final

from handlers.functions.contract import ITEMS, KEY, Call, Reply
from handlers.functions.library import Library
from handlers.functions.lua_layouts import lua_constants
from handlers.keys import CUSTOMER_KEYS


class Status(IntEnum):
    """What became of one event of a batch."""

    DUPLICATE = 0  # seen within the dedup window
    APPLIED = 1
    ERASED = 2  # its customer was forgotten on request after it happened
    REDIRECTED = 3  # an anonymous shopper's, merged into a customer: it belongs there


class Bucket(StrEnum):
    """The prefixes of a customer's window buckets: "<prefix><hour or day since epoch>"; the
    second letter says which (prune_windows reads it)."""

    VIEWS_HOUR = "vh"
    VIEWS_DAY = "vd"
    CART_ADDS_HOUR = "ch"
    ORDERS_DAY = "od"
    SPEND_DAY = "sd"  # in cents, net of refunds


# A cart line: "price|price_ts|category|removed_at|ts:delta;ts:delta…", price in cents.
CART_LINE: Final = {"FIELD": "|", "ENTRY": ";", "DELTA": ":"}
# A packed event (handlers/profile/encode.py): its 6-hex-digit length, its 8-byte digest,
# then these fields each ended by SEPARATOR, then b, which runs to the end of the event.
PACKED_FIELDS: Final = ("ts", "kind", "a", "c", "d")
SEPARATOR: Final = "\x1f"
DIGEST_BYTES: Final = 8


class Watch(StrEnum):
    """How ApplyBatch's ``watched`` names what is not a field of the profile hash."""

    ALL = "*"
    WINDOW = "w:"  # + a Bucket prefix: a window bucket of that kind
    KEY = "k:"  # + a CustomerKeys name: the cart, affinity, recent views, favourites


# The Watch names of each kind of window bucket and of the keys besides the profile hash,
# written into the Lua once: it marks what a batch touched by them, event by event.
WATCHED_WINDOWS: Final = {bucket.value: Watch.WINDOW + bucket.value for bucket in Bucket}
WATCHED_KEYS: Final = {
    name: Watch.KEY + name for name in ("cart", "affinity", "recent", "favorites")
}


@dataclass(frozen=True, slots=True)
class CustomerEvents:
    base: str = field(metadata=KEY)  # the customer's keys' base
    tombstone: str = field(metadata=KEY)  # Keys.tombstone: in the customer's slot
    # The events came through a worker's cache of aliases, which an erasure elsewhere may
    # have made stale: an anonymous shopper's, sent to the customer it was merged into.
    cached_route: bool
    # Its keys named in ApplyBatch.read_back come back in the reply even if the batch
    # changed nothing watched of theirs (a rule listens to its events).
    read_back: bool
    events: bytes  # packed, back to back


@dataclass(frozen=True, slots=True)
class Redirect(Reply):
    index: int  # of the customer in the call, from 1: an anonymous shopper merged already
    customer: str  # whom it was merged into: its events belong there
    settled: bool  # the anonymous copy is gone: send there directly from now on


@dataclass(frozen=True, slots=True)
class Unlinked(Reply):
    index: int  # of a customer erased in the batch
    anonymous_id: str  # once merged into it: its alias lives in another slot, to be cut


@dataclass(frozen=True, slots=True)
class Applied(Reply):
    statuses: list[Status]  # one per event, in the order sent
    redirects: list[Redirect]
    unlinked: list[Unlinked]
    # Customers whose cached route led to an erased customer: the cache is stale, and their
    # events go to the anonymous shopper's own keys, whose alias says where they belong now.
    bounced: list[int]
    # Customers the batch changed something ``watched`` of, or erased; or for whom it held
    # a duplicate, whose first delivery's follow-ups may not all have happened.
    changed: list[int]
    # Customers whose keys came back (``read``, indexes as above) and, in the same order,
    # those keys as ReadProfiles gives them (Stored.rows), as the batch left them: those the
    # call applied events to and flagged ``read_back``, or changed something watched of.
    read: list[int]
    rows: list[list[list[bytes]]]


@dataclass(frozen=True, slots=True)
class ApplyBatch(Call):
    FUNCTION: ClassVar[str] = "crm_apply_batch"
    LUA: ClassVar[str] = "apply_batch"
    REPLY: ClassVar[type[Reply]] = Applied

    dedup_window_ms: int
    keep_hours: int  # hourly buckets kept: the longest hourly window plus lateness
    keep_days: int  # daily buckets kept: the longest daily window plus lateness
    max_recent: int
    max_favorites: int
    max_categories: int
    view_weight: int  # the affinity each kind of event adds to its category
    favorite_weight: int
    cart_weight: int
    order_weight: int
    # The worker's clock: dedup marks are scored by when an event was seen, since a
    # redelivery comes soon after the first delivery, however old the event itself is.
    now_ms: int
    max_cart_markers: int  # lines taken by an order or a clear, kept against late adds
    # What to report changes of (handlers/profile/inputs.py): hash fields, WATCH.WINDOW plus
    # a bucket prefix, WATCH.KEY plus a key's name, comma-separated; WATCH.ALL: anything.
    watched: str
    # The keys to give back (CustomerKeys names, comma-separated, the profile hash first;
    # "": none), so that what reads the profiles next needs no round trip of its own.
    read_back: str
    customers: Sequence[CustomerEvents] = field(metadata=ITEMS)


@dataclass(frozen=True, slots=True)
class History(Reply):
    taken_by: str  # "" when detached; else the other customer the shopper belongs to
    state: bytes  # the anonymous history as JSON ("" when taken)


@dataclass(frozen=True, slots=True)
class Histories(Reply):
    histories: list[History]  # one per login, in the call's order


@dataclass(frozen=True, slots=True)
class CustomerBase:
    base: str = field(metadata=KEY)


@dataclass(frozen=True, slots=True)
class Login:
    base: str = field(metadata=KEY)  # the anonymous shopper's keys
    customer: str  # the customer who logged in


@dataclass(frozen=True, slots=True)
class Detach(Call):
    """Login, step one, on each anonymous shopper's own keys: point it at the customer
    (once; a second customer is refused) and hand back its history, frozen from now on.
    The logins of one hash slot go in one call (on one Redis, every login of a batch)."""

    FUNCTION: ClassVar[str] = "crm_detach"
    LUA: ClassVar[str] = "detach"
    REPLY: ClassVar[type[Reply]] = Histories

    logins: Sequence[Login] = field(metadata=ITEMS)


@dataclass(frozen=True, slots=True)
class Forgotten(Reply):
    forgotten: int


@dataclass(frozen=True, slots=True)
class ForgetDetached(Call):
    """Login, last step: once each customer has the history, the anonymous copies go (the
    aliases stay). Shoppers of one hash slot go in one call, as for Detach."""

    FUNCTION: ClassVar[str] = "crm_forget_detached"
    LUA: ClassVar[str] = "forget_detached"
    REPLY: ClassVar[type[Reply]] = Forgotten

    shoppers: Sequence[CustomerBase] = field(metadata=ITEMS)


@dataclass(frozen=True, slots=True)
class Stored(Reply):
    # Per customer, per key wanted: a hash as HGETALL gives it, a sorted set as its
    # members, newest first.
    rows: list[list[list[bytes]]]


@dataclass(frozen=True, slots=True)
class ReadProfiles(Call):
    """The keys named in ``wanted`` of every customer, in one call: a pipeline of reads costs
    the worker a reply to parse per key."""

    FUNCTION: ClassVar[str] = "crm_read_profiles"
    LUA: ClassVar[str] = "read_profiles"
    READ_ONLY: ClassVar[bool] = True
    REPLY: ClassVar[type[Reply]] = Stored

    wanted: str  # CustomerKeys names, comma-separated
    customers: Sequence[CustomerBase] = field(metadata=ITEMS)


LIBRARY: Final = Library.build(
    "crmstream_profile",
    ["profile_state.lua", "profile_events.lua", "profile_batch.lua", "profile_read.lua"],
    [ApplyBatch, Detach, ForgetDetached, ReadProfiles],
    "\n".join(
        [
            lua_constants("CUSTOMER_KEYS", CUSTOMER_KEYS._asdict()),
            lua_constants("STATUS", Status),
            lua_constants("BUCKET", Bucket),
            lua_constants("CART_LINE", CART_LINE),
            lua_constants("WATCH", Watch),
            lua_constants("WATCHED_WINDOWS", WATCHED_WINDOWS),
            lua_constants("WATCHED_KEYS", WATCHED_KEYS),
            "local PACKED_FIELDS = {" + ", ".join(f"'{name}'" for name in PACKED_FIELDS) + "}",
            lua_constants("NAMES", {"SEPARATOR": SEPARATOR, "DIGEST_BYTES": DIGEST_BYTES}),
        ]
    ),
)
