"""The profile built straight for conditions equals the document made into their view."""

from __future__ import annotations

import itertools
import random
from dataclasses import replace

from handlers.profile.read import SECTIONS, WINDOWS, build_profile, window_totals
from rules.activation import profile_view
from rules.shop_config import ShopConfig
from tests.support import chosen_seed
from tests.unit.test_profile_inputs import NOW_MS, random_stored


def test_the_view_built_straight_is_the_documents_view() -> None:
    rng = random.Random(chosen_seed("PROFILE_VIEW_SEED"))
    config = ShopConfig()
    subsets = [frozenset(SECTIONS)] + [
        frozenset(pair) for pair in itertools.combinations(SECTIONS, 2)
    ]
    for _ in range(300):
        stored = random_stored(rng)
        if rng.random() < 0.3:  # refunds beyond spend: money below zero
            fields = {**stored.fields, "spend": str(-rng.randrange(1, 99_999))}
            buckets = {**stored.buckets, f"sd{NOW_MS // 86_400_000}": str(-rng.randrange(1, 999))}
            stored = replace(stored, fields=fields, buckets=buckets)
        as_of = NOW_MS - rng.randrange(0, 10**9)
        sections = rng.choice(subsets)
        document = build_profile("shop", "who", as_of, stored, config, sections=sections)
        for_conditions = build_profile(
            "shop", "who", as_of, stored, config, sections=sections, for_conditions=True
        )
        assert for_conditions == profile_view(document)


def _window_by_scanning(
    buckets: dict[str, str], prefix: str, size: int, count: int, as_of: int
) -> int:
    newest = as_of // size
    return sum(
        int(value)
        for field, value in buckets.items()
        if field.startswith(prefix) and newest - count < int(field[len(prefix) :]) <= newest
    )


def test_each_window_sums_its_own_buckets_in_one_pass() -> None:
    rng = random.Random(chosen_seed("PROFILE_WINDOWS_SEED"))
    for _ in range(300):
        stored = random_stored(rng)
        as_of = NOW_MS - rng.randrange(0, 400 * 86_400_000)
        totals = window_totals(stored.buckets, as_of)
        assert totals == {
            name: _window_by_scanning(stored.buckets, prefix, size, count, as_of)
            for name, prefix, size, count in WINDOWS
        }


def test_built_field_by_field_it_holds_exactly_the_fields_named() -> None:
    rng = random.Random(chosen_seed("PROFILE_FIELDS_SEED"))
    config = ShopConfig()
    for _ in range(300):
        stored = random_stored(rng)
        full = build_profile("shop", "who", NOW_MS, stored, config, for_conditions=True)
        named = {
            section: frozenset(rng.sample(sorted(full[section]), rng.randrange(3)))
            for section in ("counters", "facts", "windows")
            if rng.random() < 0.8
        }
        some = build_profile(
            "shop", "who", NOW_MS, stored, config, for_conditions=True, fields=named
        )
        for section in SECTIONS:
            if section in ("counters", "facts"):
                wanted = named.get(section, frozenset())
                assert some[section] == {k: v for k, v in full[section].items() if k in wanted}
            else:
                assert some[section] == full[section], section
