"""The Redis key layout is written once, in handlers/keys.py, by name: the Lua side numbers
the same keys, and these tests hold the two to the same names in the same order."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from handlers.keys import CUSTOMER_KEYS, SEGMENT_KEYS, TRIGGER_KEYS

LUA = Path(__file__).parents[2] / "handlers" / "lua"
_CONSTANTS = re.compile(r"^local ([A-Z_, ]+) = ([0-9, ]+)$", re.MULTILINE)


def lua_constants(file: str, prefix: str) -> dict[str, int]:
    """Every ``local A, B = 1, 2`` of ``file`` whose names start with ``prefix``."""
    found: dict[str, int] = {}
    for names, values in _CONSTANTS.findall((LUA / file).read_text()):
        for name, value in zip(names.split(", "), values.split(", "), strict=True):
            if name.startswith(prefix):
                found[name.removeprefix(prefix).lower()] = int(value)
    return found


@pytest.mark.parametrize(
    ("file", "prefix", "names"),
    [
        ("profile.lua", "K_", CUSTOMER_KEYS._fields),
    ],
)
def test_lua_numbers_each_key_as_python_names_it(
    file: str, prefix: str, names: tuple[str, ...]
) -> None:
    numbered = lua_constants(file, prefix)
    # Every key the Lua side numbers is one Python names, at the same place.
    assert numbered, f"no {prefix}* key numbers in {file}"
    assert {name: names.index(name) + 1 for name in numbered if name in names} == numbered


def test_the_profile_functions_know_how_many_keys_a_customer_has() -> None:
    (count,) = re.findall(r"^local NK = (\d+)$", (LUA / "profile.lua").read_text(), re.M)
    assert int(count) == len(CUSTOMER_KEYS)


def test_suffixes_are_distinct_and_positions_count_from_one() -> None:
    for family in (CUSTOMER_KEYS, TRIGGER_KEYS, SEGMENT_KEYS):
        assert len(set(family)) == len(family)
    assert CUSTOMER_KEYS.lua_position("profile") == 1
    assert CUSTOMER_KEYS.lua_position("erased_aliases") == len(CUSTOMER_KEYS)
