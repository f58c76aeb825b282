"""Conditions read as flat variables give what the nested documents give, errors included."""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import cel
import pytest
import yaml

from rules.expressions import Condition, ConditionError
from rules.flat_paths import flatten
from tests.support import chosen_seed

ROOT = Path(__file__).resolve().parents[2]
COUNTED = ("orders", "favorites", "complaints")

WRITTEN = [
    'profile.derived.lifecycle == "dormant" && profile.counters.orders > 0',
    "profile.counters.favorites > 0 || profile.windows.orders_30d >= 2",
    "profile.facts.consents.sms && size(profile.facts.tags) > 1",
    'event.data.items.exists(i, i == "oolong") && event.type == "order.paid"',
    "event.data.rating <= 2 && profile.counters.complaints == 0",
    "profile.recently_viewed.size() > 2 || profile.cart.count > 0",
    "profile.cart.items.all(line, line.qty > 1)",
    '"profile.counters.orders" == event.type',  # a path in a string is text
    "[profile.counters.orders > 1, profile.counters.orders > 2, event.data.rating == 5]",
]


def _conditions() -> list[str]:
    texts = list(WRITTEN)
    for folder in ("rules/pack", "rules/segments"):
        for path in sorted((ROOT / folder).glob("*.yaml")):
            text = yaml.safe_load(path.read_text()).get("if")
            if isinstance(text, str):
                texts.append(text)
    return texts


def _maybe(rng: random.Random, value: Any) -> Any:
    """The value, or now and then None; a caller drops the key now and then too."""
    return None if rng.random() < 0.1 else value


def _document(rng: random.Random) -> dict[str, Any]:
    def section(fields: dict[str, Any]) -> dict[str, Any]:
        return {name: _maybe(rng, value) for name, value in fields.items() if rng.random() > 0.1}

    profile = {
        "counters": section(
            {name: rng.randrange(4) for name in ("orders", "favorites", "complaints")}
        ),
        "windows": section({"orders_30d": rng.randrange(4), "views_24h": rng.randrange(6)}),
        "derived": section(
            {
                "lifecycle": rng.choice(["new", "active", "dormant"]),
                "value_tier": rng.choice(["high", "low"]),
                "vip_level": rng.choice(["regular", "gold"]),
            }
        ),
        "facts": section(
            {"consents": {"sms": rng.random() < 0.5}, "tags": ["a", "b"][: rng.randrange(3)]}
        ),
        "cart": section({"count": rng.randrange(3), "items": [{"qty": rng.randrange(1, 3)}]}),
        "recently_viewed": ["x"] * rng.randrange(4),
    }
    event = {
        "type": rng.choice(["order.paid", "review.posted"]),
        "data": section(
            {"rating": rng.randrange(1, 6), "items": ["oolong", "puer"][: rng.randrange(3)]}
        ),
    }
    return {
        "profile": {k: v for k, v in profile.items() if rng.random() > 0.05},
        "event": event if rng.random() > 0.05 else {},
        "now": None,
    }


def _nested(text: str, activation: dict[str, Any]) -> tuple[str, Any]:
    """The reference: the text as written, on the documents whole."""
    try:
        return "value", cel.compile(text).execute(activation)
    except (KeyError, TypeError, RuntimeError, ValueError):
        return "error", None


def test_flat_and_nested_evaluation_agree_on_random_documents() -> None:
    rng = random.Random(chosen_seed("FLAT_SEED"))
    conditions = [Condition(text) for text in _conditions()]
    assert sum(condition._flat is not None for condition in conditions) >= len(conditions) - 1
    for _ in range(300):
        activation = _document(rng)
        for condition in conditions:
            try:
                got: tuple[str, Any] = ("value", condition.evaluate(activation))
            except ConditionError:
                got = ("error", None)
            assert got == _nested(condition.text, activation), (condition.text, activation)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("profile.counters.ordrs > 0", "unknown field 'ordrs'"),
        ("profile.countrs.orders > 0", "unknown field 'countrs'"),
        ("profile.counters.spend > 0", "money reads in exact cents"),
    ],
)
def test_a_missing_path_is_named_as_a_missing_key_would_be(text: str, message: str) -> None:
    condition = Condition(text)
    assert condition._flat is not None
    with pytest.raises(ConditionError, match=message):
        condition.holds({"profile": {"counters": {"orders": 1}}, "event": {}})


@pytest.mark.parametrize(
    "text",
    [
        "has(profile.facts.birthday)",  # has() selects a field of a map
        "size(profile) > 2",  # the profile whole
        'profile.counters.orders > 0 && r"profile.x" != ""',  # a raw string
        "profile.size() > 0",
    ],
)
def test_what_the_rewrite_cannot_be_sure_of_stays_nested(text: str) -> None:
    assert flatten(text) is None


def test_names_in_strings_stay_text() -> None:
    flat = flatten("event.type == 'profile.counters.orders' && profile.counters.orders > 0")
    assert flat is not None
    assert flat.text == (
        "event__type == 'profile.counters.orders' && profile__counters__orders > 0"
    )
