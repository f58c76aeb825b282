"""The worker keeps the garbage collector off the heap it starts with."""

from __future__ import annotations

import gc

from handlers.key_tags import _slot_tags
from streams.worker import settle_heap


def test_the_worker_heap_is_frozen_and_young_objects_wait_for_many_allocations() -> None:
    before = gc.get_threshold()
    try:
        settle_heap()
        assert gc.get_freeze_count() > 0
        assert gc.get_threshold()[0] == 50_000
        assert gc.get_threshold()[1:] == before[1:]
    finally:
        gc.unfreeze()
        gc.set_threshold(*before)


def test_the_slot_tags_are_built_before_the_heap_is_frozen() -> None:
    before = gc.get_threshold()
    _slot_tags.cache_clear()
    try:
        settle_heap()
        assert _slot_tags.cache_info().currsize == 1
    finally:
        gc.unfreeze()
        gc.set_threshold(*before)
