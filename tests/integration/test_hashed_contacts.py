"""Contact details sent in clear or as keyed hashes, through the real broker and a real
worker: the event topic keeps the clear ones (for its retention) and never sees the
hashed ones, and the engine treats both alike: each profile holds the same hash, and the
phone index finds each customer, by the number however it is spelled."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import orjson
import pytest

from crmstream.admin import create_topics
from crmstream.errors import ConfigError
from crmstream.privacy import email_hash, phone_hash
from crmstream.settings import PrivacySettings, Settings
from crmstream.topics import TopicNames
from handlers.customer_lookup import customer_by_phone
from handlers.keys import Keys
from handlers.profile.read import ProfileReader
from handlers.redis_client import connect
from handlers.shop_configs import ShopConfigs
from rules.folders import shop_configs_folder
from storefront.publisher import Publisher
from streams.cli.child_worker import settings_env
from tests.support import consume, running_worker, value_bytes

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]

# One person, three ways in: the same number and address, spelled differently, reach
# three shops in clear, hashed by the publisher, and hashed by `crmstream publish`.
DIGITS = "13911110042"
EMAIL = "Wang.Fang@Example.com"
SENT = {
    ("tea-house", "c-clear"): ("+86 139-1111-0042", EMAIL, "clear"),
    ("wine-cellar", "c-hashed"): (DIGITS, EMAIL.lower(), "publisher"),
    ("snack-bar", "c-cli"): ("139 1111 0042", f"  {EMAIL.upper()}", "cli"),
}


def registered(shop: str, customer: str, phone: str, email: str) -> dict[str, Any]:
    return {
        "specversion": "1.0", "id": f"reg-{uuid.uuid4().hex}", "source": "test",
        "type": "customer.registered", "time": "2026-03-01T09:00:00Z", "shop": shop,
        "subject": customer, "data": {"phone": phone, "email": email.strip(), "region": "华东"},
    }  # fmt: skip


def publish_with_the_command(settings: Settings, events: list[dict[str, Any]], path: Path) -> None:
    path.write_bytes(b"".join(orjson.dumps(event) + b"\n" for event in events))
    subprocess.run(
        [sys.executable, "-m", "streams.cli", "publish", "--hash-contacts", str(path)],
        env={**os.environ, **settings_env(settings)}, check=True, capture_output=True,
    )  # fmt: skip


async def test_clear_and_hashed_contacts_make_the_same_profile_and_index(
    settings: Settings, tmp_path: Path
) -> None:
    key = settings.privacy_hash_key()
    assert key is not None, "the local stack makes a privacy hash key on `stack up`"
    create_topics(settings)
    events = {way: registered(*who, phone, email) for who, (phone, email, way) in SENT.items()}
    with Publisher(settings) as plain:
        plain.publish(events["clear"])
    with Publisher(settings, hash_contacts=True) as hashing:
        hashing.publish(events["publisher"])
    publish_with_the_command(settings, [events["cli"]], tmp_path / "events.jsonl")

    # On the event topic: the clear one as sent; the hashed ones with nothing to read.
    topic = TopicNames.from_settings(settings.topics).event("customer")
    on_kafka = {
        (doc["shop"], doc["subject"]): doc
        for doc in (orjson.loads(value_bytes(m)) for m in consume(settings, [topic], len(SENT)))
    }
    assert on_kafka.keys() == SENT.keys()
    assert on_kafka[("tea-house", "c-clear")]["data"]["email"] == EMAIL
    for who in (("wine-cellar", "c-hashed"), ("snack-bar", "c-cli")):
        raw = orjson.dumps(on_kafka[who]).lower()
        assert DIGITS.encode() not in raw.replace(b" ", b"")
        assert b"wang.fang" not in raw
        assert on_kafka[who]["data"]["phone_hash"] == phone_hash(key, DIGITS)
        assert on_kafka[who]["data"]["email_hash"] == email_hash(key, EMAIL)

    client = connect(settings.redis)
    keys = Keys(settings.redis.key_prefix)
    reader = ProfileReader(client, keys, ShopConfigs(shop_configs_folder(settings.profiles)))
    try:
        with running_worker(settings, tmp_path / "worker.log"):
            facts = await _facts_once_applied(reader, list(SENT))
            found = {
                shop: await customer_by_phone(client, keys, key, shop, "+86 13911110042")
                for shop, _ in SENT
            }
    finally:
        await client.aclose()
    hashes = {(f["phone_hash"], f["email_hash"]) for f in facts.values()}
    assert hashes == {(phone_hash(key, DIGITS), email_hash(key, EMAIL))}, facts
    assert found == dict(SENT.keys())  # each shop finds its own customer


def test_hashing_without_the_key_is_refused_before_anything_is_sent(settings: Settings) -> None:
    keyless = settings.model_copy(update={"privacy": PrivacySettings(hash_key=None)})
    with pytest.raises(ConfigError, match="CRMSTREAM_PRIVACY_HASH_KEY"):
        Publisher(keyless, hash_contacts=True)


async def _facts_once_applied(
    reader: ProfileReader, customers: list[tuple[str, str]]
) -> dict[tuple[str, str], dict[str, Any]]:
    deadline = time.monotonic() + 60
    while True:
        profiles = {who: await reader.read(*who) for who in customers}
        if all(p is not None and p["facts"]["phone_hash"] for p in profiles.values()):
            return {who: p["facts"] for who, p in profiles.items() if p is not None}
        assert time.monotonic() < deadline, f"not applied within 60 s: {profiles}"
        await asyncio.sleep(0.2)
