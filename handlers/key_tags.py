"""Hash tags a key is given to land where it must: in a chosen Redis Cluster slot, or
beside a customer without naming them (handlers/keys.py builds the keys)."""

from __future__ import annotations

import hashlib
import hmac
from functools import cache

from redis.crc import REDIS_CLUSTER_HASH_SLOTS, key_slot


@cache
def _slot_tags() -> tuple[str, ...]:
    """For each Redis Cluster slot, a short hash tag that falls in it (about 0.2 s, once)."""
    tags: dict[int, str] = {}
    candidate = 0
    while len(tags) < REDIS_CLUSTER_HASH_SLOTS:
        tag = format(candidate, "x")
        tags.setdefault(key_slot(tag.encode()), tag)
        candidate += 1
    return tuple(tags[slot] for slot in range(REDIS_CLUSTER_HASH_SLOTS))


def slot_tag(slot: int) -> str:
    """A hash tag whose keys fall in Redis Cluster slot ``slot``."""
    return _slot_tags()[slot]


def tombstone_digest(hash_key: bytes | None, shop: str, customer: str) -> str:
    """Who was erased, as a keyed hash: the tombstone must not name them. Without a key
    (a development setup) the hash is plain SHA-256, which a guess of the id can match."""
    subject = f"tombstone\x1f{shop}\x1f{customer}".encode()
    if hash_key:
        return hmac.digest(hash_key, subject, "sha256").hex()[:32]
    return hashlib.sha256(subject).hexdigest()[:32]
