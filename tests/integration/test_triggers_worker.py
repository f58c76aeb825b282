"""A real worker with the shipped rule pack: events in, triggers out on crm.triggers."""

from __future__ import annotations

import shutil
import signal
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson

from crmstream.admin import create_topics
from crmstream.settings import Settings
from crmstream.topics import TopicNames
from rules import PACKAGED_RULES
from storefront.publisher import Publisher
from tests.support import consume, running_worker, value_bytes


def midday_zone(now: datetime) -> str:
    """A timezone where it is about noon now, far from any quiet hours."""
    offset = 12 - now.hour  # -11 … +12 hours, all of which Etc/GMT zones cover
    return f"Etc/GMT{-offset:+d}"


def shopper_events(now: datetime) -> list[dict[str, Any]]:
    def event(kind: str, minutes_ago: float, data: dict[str, Any], n: int) -> dict[str, Any]:
        return {
            "specversion": "1.0",
            "id": f"w-{n}",
            "source": "test",
            "type": kind,
            "time": (now - timedelta(minutes=minutes_ago)).isoformat(),
            "shop": "tea-house",
            "subject": "c-42",
            "data": data,
        }

    consents = {"marketing": True, "sms": True, "push": True, "email": True}
    line = {"item_id": "oolong", "category": "tea", "qty": 1, "price": "88.00"}
    return [
        event("customer.registered", 60, {"consents": consents, "timezone": midday_zone(now)}, 1),
        event("cart.item_added", 45, line, 2),  # no order after it: a coupon is due
        event("review.posted", 5, {"item_id": "oolong", "rating": 1, "text": "stale"}, 3),
    ]


def test_the_rule_pack_fires_through_a_real_worker(settings: Settings, tmp_path: Path) -> None:
    now = datetime.now(UTC)
    create_topics(settings)
    with Publisher(settings) as publisher:
        for event in shopper_events(now):
            publisher.publish(event)
    topic = TopicNames.from_settings(settings.topics).triggers
    with running_worker(settings, tmp_path / "worker.log"):
        messages = consume(settings, [topic], count=3, timeout_s=60)
    decoded = [orjson.loads(value_bytes(m)) for m in messages]
    triggers = {trigger["data"]["rule"]: trigger for trigger in decoded}
    assert set(triggers) == {
        "new-customer-welcome",
        "abandoned-cart-coupon",
        "negative-review-followup",
    }, (tmp_path / "worker.log").read_text()[-3000:]
    assert len(messages) == 3  # nothing twice
    coupon = triggers["abandoned-cart-coupon"]
    assert coupon["subject"] == "c-42"
    assert coupon["data"]["items"] == ["oolong"]
    assert coupon["data"]["caused_by"] == ["w-2"]
    assert {m.key() for m in messages} == {b"tea-house:c-42"}


def _wait_for(log: Path, text: str, timeout_s: float = 30) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if text in log.read_text(errors="replace"):
            return
        time.sleep(0.2)
    raise AssertionError(f"{text!r} not in {log}:\n{log.read_text()[-3000:]}")


def test_rules_reload_on_change_and_sighup_and_a_bad_set_is_refused(
    settings: Settings, tmp_path: Path
) -> None:
    rules = tmp_path / "rules"
    shutil.copytree(PACKAGED_RULES, rules)
    reloading = settings.model_copy(
        update={"triggers": settings.triggers.model_copy(update={"rules_dir": rules})}
    )
    create_topics(reloading)
    log = tmp_path / "worker.log"
    with running_worker(reloading, log, loglevel="info") as worker:
        _wait_for(log, "assigned")
        (rules / "vip-upgrade.yaml").unlink()  # a change in the folder: picked up by itself
        _wait_for(log, "rules reloaded: 9 enabled")
        (rules / "broken.yaml").write_text("id: broken\nversion: 1\n")
        worker.send_signal(signal.SIGHUP)
        _wait_for(log, "rules and segments not reloaded; the 9 rules and 7 segments loaded stay")
        assert "broken.yaml:1:" in log.read_text()
        assert worker.poll() is None
