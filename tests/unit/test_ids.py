"""Stable ids are the standard library's UUIDv5, character for character."""

from __future__ import annotations

import random
import uuid

from schemas.ids import uuid5_text
from tests.support import chosen_seed


def test_uuid5_text_is_the_standard_librarys_uuid5() -> None:
    rng = random.Random(chosen_seed("IDS_SEED"))
    alphabet = "abcxyz019:-_\x1f 顾客é\U0001f600"
    for _ in range(2000):
        namespace = uuid.UUID(int=rng.getrandbits(128))
        name = "".join(rng.choice(alphabet) for _ in range(rng.randrange(0, 80)))
        assert uuid5_text(namespace, name) == str(uuid.uuid5(namespace, name))
