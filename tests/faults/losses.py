"""What a run lost, counted: the profiles that differ from the plain reference, and the
events the reference's counters hold that the engine's do not."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final

from crmstream.settings import Settings
from handlers.keys import Keys
from handlers.profile.read import ProfileReader
from handlers.redis_client import connect
from handlers.shop_configs import ShopConfigs
from rules.folders import shop_configs_folder
from tests.oracle.history import ms, owners
from tests.oracle.profiles import reference_profile

# The lifetime counters that count events one by one: each event short is an update lost.
EVENT_COUNTERS: Final = (
    "views", "favorites", "cart_adds", "searches", "orders", "paid_orders", "refunds",
    "cancels", "reviews", "surveys",
)  # fmt: skip


@dataclass(frozen=True)
class Losses:
    profiles: int
    differing: int
    updates_lost: int

    def __str__(self) -> str:
        return (
            f"{self.updates_lost} counted updates lost, {self.differing} of {self.profiles} "
            "profiles differing from the reference"
        )


async def profile_losses(settings: Settings, events: list[dict[str, Any]]) -> Losses:
    client = connect(settings.redis)
    shops = ShopConfigs(shop_configs_folder(settings.profiles))
    reader = ProfileReader(client, Keys(settings.redis.key_prefix), shops)
    as_of = max(ms(event["time"]) for event in events)
    owned = owners(events)
    differing = lost = 0
    try:
        for (shop, who), history in owned.items():
            expected = reference_profile(shop, who, history, as_of)
            actual = await reader.read(shop, who, as_of)
            if actual == expected:
                continue
            differing += 1
            found = actual["counters"] if actual is not None else {}
            lost += sum(
                max(0, expected["counters"][name] - found.get(name, 0)) for name in EVENT_COUNTERS
            )
    finally:
        await client.aclose()
    return Losses(len(owned), differing, lost)
