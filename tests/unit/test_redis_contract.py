"""The Redis key layout is written once, in handlers/keys.py, by name: the Function
libraries take each family as a Lua table of the same names (functions/*.py)."""

from __future__ import annotations

from handlers.functions.profile import LIBRARY as PROFILE
from handlers.functions.segments import LIBRARY as SEGMENTS
from handlers.functions.triggers import LIBRARY as TRIGGERS
from handlers.keys import CUSTOMER_KEYS, SEGMENT_KEYS, TRIGGER_KEYS


def test_suffixes_are_distinct() -> None:
    for family in (CUSTOMER_KEYS, TRIGGER_KEYS, SEGMENT_KEYS):
        assert len(set(family)) == len(family)


def test_each_library_takes_its_key_family_by_name() -> None:
    for library, name, family in (
        (PROFILE, "CUSTOMER_KEYS", CUSTOMER_KEYS),
        (TRIGGERS, "TRIGGER_KEYS", TRIGGER_KEYS),
        (SEGMENTS, "SEGMENT_KEYS", SEGMENT_KEYS),
    ):
        pairs = ", ".join(f"{field} = '{suffix}'" for field, suffix in family._asdict().items())
        assert f"local {name} = {{{pairs}}}" in library.source
