"""Which anonymous ids may be merged into a customer, and where merged ones now point."""

from __future__ import annotations

from collections import OrderedDict
from typing import Final

# Placeholders that buggy storefront code sends instead of a real device id. Merging on one
# of these would pour many shoppers into one customer.
JUNK_ANONYMOUS_IDS: Final = frozenset(
    {
        "", "0", "-1", "null", "nil", "none", "undefined", "nan", "anonymous", "anon",
        "guest", "unknown", "test", "[object object]", "(null)",
        "00000000-0000-0000-0000-000000000000",
    }
)  # fmt: skip


def is_junk(anonymous_id: str) -> bool:
    return anonymous_id.strip().lower() in JUNK_ANONYMOUS_IDS


class AliasCache:
    """anonymous id → customer, for ids known to be merged. An alias changes only when its
    customer is erased (the stage that ran the erasure forgets it here), so a bounded LRU is
    right; a miss costs one redirect, not a wrong profile. Capacity 0: none kept."""

    def __init__(self, capacity: int) -> None:
        self._capacity = capacity
        self._entries: OrderedDict[tuple[str, str], str] = OrderedDict()

    def get(self, shop: str, anonymous_id: str) -> str | None:
        key = (shop, anonymous_id)
        customer = self._entries.get(key)
        if customer is not None:
            self._entries.move_to_end(key)
        return customer

    def put(self, shop: str, anonymous_id: str, customer: str) -> None:
        if not self._capacity:
            return
        self._entries[(shop, anonymous_id)] = customer
        self._entries.move_to_end((shop, anonymous_id))
        if len(self._entries) > self._capacity:
            self._entries.popitem(last=False)

    def forget(self, shop: str, anonymous_id: str) -> None:
        """The customer was erased: the id must no longer lead there."""
        self._entries.pop((shop, anonymous_id), None)
