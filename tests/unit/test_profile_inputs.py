"""The table of what each profile path is built from (handlers/profile/inputs.py), held to
the builder itself: on random stored profiles, changing one stored input changes no path
the table does not say is built from it, and every path the builder makes is in the table.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import replace
from typing import Any

import orjson
import pytest

from handlers.functions.profile import Bucket, Watch
from handlers.profile.inputs import BUILT_FROM, built_from, watched_text
from handlers.profile.read import COUNTERS, FACTS, RECENCY, SECTIONS, Stored, build_profile
from rules.expressions import Condition
from rules.shop_config import ShopConfig
from tests.support import chosen_seed

NOW_MS = 1_796_000_000_000
DAY_MS = 86_400_000
MOMENTS = (*RECENCY,)
NUMBERS = (*COUNTERS, "spend", "rating_sum", "satisfied")
CONSENTS = tuple(f"consent_{c}" for c in ("marketing", "sms", "email", "push"))
TEXTS = (*FACTS, "phone_hash", "email_hash")


def _field_value(rng: random.Random, name: str) -> str:
    if name in MOMENTS:
        return str(NOW_MS - rng.randrange(0, 800) * DAY_MS - rng.randrange(DAY_MS))
    if name in NUMBERS:
        return str(rng.choice((0, 1, 2, 3, 5, 8, 40, 150_000, 2_000_000)))
    if name in CONSENTS:
        return rng.choice(("0", "1"))
    if name == "tags":
        return orjson.dumps(
            rng.sample(["vip-list", "wholesale", "gift"], rng.randrange(3))
        ).decode()
    if name == "timezone":
        return rng.choice(("Asia/Shanghai", "Europe/Paris", "UTC"))
    return rng.choice(("华北", "华东", "female", "gold", f"t{rng.randrange(100)}"))


def _buckets(rng: random.Random, prefix: Bucket) -> dict[str, str]:
    hourly = prefix.value[1] == "h"
    size = 3_600_000 if hourly else DAY_MS
    newest = NOW_MS // size
    return {
        f"{prefix.value}{newest - rng.randrange(0, 30 if hourly else 400)}": str(
            rng.randrange(1, 9)
        )
        for _ in range(rng.randrange(0, 6))
    }


def _cart(rng: random.Random) -> dict[str, str]:
    return {
        f"sku-{n}": f"{rng.choice((990, 4900))}|{NOW_MS}|tea|0|{NOW_MS - n}:{rng.randrange(1, 3)}"
        for n in range(rng.randrange(0, 3))
    }


HASH_FIELDS = (*MOMENTS, *NUMBERS, *CONSENTS, *TEXTS, "tags", "timezone")


def random_stored(rng: random.Random) -> Stored:
    fields = {name: _field_value(rng, name) for name in HASH_FIELDS if rng.random() < 0.8}
    buckets: dict[str, str] = {}
    for prefix in Bucket:
        buckets.update(_buckets(rng, prefix))
    return Stored(
        fields=fields,
        buckets=buckets,
        cart=_cart(rng),
        affinity={c: str(rng.randrange(1, 30)) for c in rng.sample(["tea", "cups", "pots"], 2)},
        recent=[f"sku-{rng.randrange(50)}" for _ in range(rng.randrange(0, 4))],
        favorites=[f"sku-{rng.randrange(50)}" for _ in range(rng.randrange(0, 3))],
    )


def perturbations(rng: random.Random) -> dict[str, Callable[[Stored], Stored]]:
    """Each stored input, by its name in the table, and a change of it alone."""

    def field(name: str) -> Callable[[Stored], Stored]:
        def change(stored: Stored) -> Stored:
            fields = dict(stored.fields)
            if name in fields and rng.random() < 0.3:
                del fields[name]
            else:
                fields[name] = _field_value(rng, name)
            return replace(stored, fields=fields)

        return change

    def window(prefix: Bucket) -> Callable[[Stored], Stored]:
        def change(stored: Stored) -> Stored:
            kept = {k: v for k, v in stored.buckets.items() if not k.startswith(prefix.value)}
            return replace(stored, buckets={**kept, **_buckets(rng, prefix)})

        return change

    changes: dict[str, Callable[[Stored], Stored]] = {name: field(name) for name in HASH_FIELDS}
    changes.update({Watch.WINDOW + prefix: window(prefix) for prefix in Bucket})
    changes[Watch.KEY + "cart"] = lambda s: replace(s, cart=_cart(rng))
    changes[Watch.KEY + "affinity"] = lambda s: replace(
        s, affinity={"pots": str(rng.randrange(99))}
    )
    changes[Watch.KEY + "recent"] = lambda s: replace(s, recent=[f"sku-{rng.randrange(99)}"])
    changes[Watch.KEY + "favorites"] = lambda s: replace(s, favorites=[f"sku-{rng.randrange(99)}"])
    return changes


def _inputs(section: str, name: str) -> frozenset[str]:
    table = BUILT_FROM[section]
    return table["*"] if "*" in table else table[name]


def _fields(document: dict[str, Any], section: str) -> dict[str, Any]:
    value = document[section]
    return value if isinstance(value, dict) and "*" not in BUILT_FROM[section] else {"*": value}


def test_every_path_changes_only_with_what_it_is_said_to_be_built_from() -> None:
    seed = chosen_seed("CRMSTREAM_INPUTS_SEED")
    rng = random.Random(seed)
    config = ShopConfig()
    for _ in range(300):
        stored = random_stored(rng)
        as_of = NOW_MS + rng.randrange(0, 90) * DAY_MS
        before = build_profile("s", "c", as_of, stored, config)
        for section in SECTIONS:
            for name in _fields(before, section):
                assert section in BUILT_FROM, f"{section} is not in the table"
                table = BUILT_FROM[section]
                assert "*" in table or name in table, f"{section}.{name} is not in the table"
        for changed_input, change in perturbations(rng).items():
            after = build_profile("s", "c", as_of, change(stored), config)
            for section in SECTIONS:
                old, new = _fields(before, section), _fields(after, section)
                for name in old:
                    if old[name] != new[name]:
                        assert changed_input in _inputs(section, name), (
                            f"seed {seed}: {section}.{name} changed with {changed_input}"
                        )


@pytest.mark.parametrize(
    ("condition", "inputs"),
    [
        ("profile.counters.orders > 0", {"orders"}),
        ('profile.derived.lifecycle == "dormant"', {"first_seen", "last_order"}),
        ("profile.windows.orders_30d >= 2", {"w:od"}),
        ("profile.cart.count > 0", {"k:cart"}),
        ("profile.facts.consents.sms", set(CONSENTS)),
        ("size(profile.facts.tags) > 0", {"tags"}),
    ],
)
def test_a_condition_watches_what_its_paths_are_built_from(
    condition: str, inputs: set[str]
) -> None:
    assert built_from(Condition(condition).paths("profile")) == frozenset(inputs)


@pytest.mark.parametrize(
    "condition",
    ["profile.size() > 0", "profile.counters.no_such_counter > 0", "profile.nowhere.x == 1"],
)
def test_what_the_table_does_not_know_watches_everything(condition: str) -> None:
    inputs = built_from(Condition(condition).paths("profile"))
    assert inputs is None
    assert watched_text(inputs) == Watch.ALL
