"""The worker's alias cache: bounded, least recently used first out, and off at 0."""

from __future__ import annotations

from handlers.profile.identity import AliasCache


def test_the_cache_keeps_the_most_recently_used_up_to_its_capacity() -> None:
    cache = AliasCache(2)
    cache.put("s1", "a1", "c1")
    cache.put("s1", "a2", "c2")
    assert cache.get("s1", "a1") == "c1"  # now the most recently used
    cache.put("s1", "a3", "c3")
    assert cache.get("s1", "a2") is None  # the least recently used went
    assert (cache.get("s1", "a1"), cache.get("s1", "a3")) == ("c1", "c3")
    assert cache.get("s2", "a1") is None  # another shop's id of the same name


def test_a_forgotten_alias_leads_nowhere() -> None:
    cache = AliasCache(10)
    cache.put("s1", "a1", "c1")
    cache.forget("s1", "a1")
    assert cache.get("s1", "a1") is None


def test_capacity_zero_keeps_nothing() -> None:
    cache = AliasCache(0)
    cache.put("s1", "a1", "c1")
    assert cache.get("s1", "a1") is None
