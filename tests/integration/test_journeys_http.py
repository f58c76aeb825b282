"""Where the shop's customers are in its journeys, over HTTP from a real worker: the list
of journeys and, per journey and version, the entered, the now-at, the exits, each
step's count as a funnel and the goal; behind the shop's token, and hostile names
refused. Also the customer's export, which names the journeys they are in."""

from __future__ import annotations

import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from crmstream.admin import create_topics
from crmstream.settings import Settings
from rules.folders import shop_configs_folder
from tests.integration.test_profiles import publish
from tests.support import api_token, eventually, http_get, running_worker

pytestmark = [pytest.mark.timeout(180)]

SHOP = "tea-house"
ONBOARDING = "new-member-onboarding"
CONSENTS = {"marketing": True, "sms": True, "email": True}
JOINED = 12
ORDERED = 4  # of them, an hour after joining: out of the onboarding, its goal reached


def events(now: datetime) -> list[dict[str, Any]]:
    def event(who: str, kind: str, minutes: float, data: dict[str, Any]) -> dict[str, Any]:
        return {
            "specversion": "1.0", "id": f"jh-{who}-{kind}", "source": "test", "type": kind,
            "time": (now - timedelta(minutes=minutes)).isoformat(), "shop": SHOP,
            "subject": who, "data": data,
        }  # fmt: skip

    line = {"item_id": "tea-1", "category": "tea", "qty": 1, "price": "59.00"}
    joined = [event(f"j-{n:02d}", "customer.registered", 90, {"consents": CONSENTS})
              for n in range(JOINED)]  # fmt: skip
    orders = [
        event(f"j-{n:02d}", "order.placed", 30, {"order_id": f"o{n}", "items": [line],
                                                  "total": "59.00"})
        for n in range(ORDERED)
    ]  # fmt: skip
    return joined + orders


@pytest.fixture
def journey_settings(settings: Settings, tmp_path: Path) -> Settings:
    shops = tmp_path / "shops"
    shutil.copytree(shop_configs_folder(settings.profiles), shops)
    (shops / f"{SHOP}.yaml").write_text(f"journeys: [{ONBOARDING}]\n", encoding="utf-8")
    profiles = settings.profiles.model_copy(update={"shop_config_dir": shops})
    return settings.model_copy(update={"profiles": profiles})


def test_journeys_over_http(journey_settings: Settings, tmp_path: Path) -> None:
    settings = journey_settings
    create_topics(settings)
    publish(settings, events(datetime.now(UTC)))
    base = f"http://{settings.worker.web_host}:{settings.worker.web_port}"
    token = api_token(settings, SHOP)
    with running_worker(settings, tmp_path / "worker.log"):

        def onboarding() -> dict[str, Any]:
            status, body = http_get(f"{base}/journeys/{SHOP}/{ONBOARDING}/stats/", token)
            return body if status == 200 else {}

        def settled(body: dict[str, Any]) -> bool:
            versions = body.get("versions") or [{}]
            held: object = versions[0].get("now_at", {}).get("settle-in")
            return held == JOINED - ORDERED

        stats = eventually(onboarding, 90, "the joiners held at settle-in", until=settled)
        (version,) = stats["versions"]
        assert version["version"] == 1
        assert version["entered"] == JOINED
        assert version["exited"] == {"ordered within three days, no coupon needed": ORDERED}
        assert version["goal"]["treated"] == JOINED
        assert version["goal"]["reached"] == ORDERED
        assert version["goal"]["control"] == 0
        funnel = {step["id"]: step for step in version["steps"]}
        assert [step["id"] for step in version["steps"]][:2] == ["welcome", "settle-in"]
        assert funnel["welcome"]["count"] == JOINED
        welcomed = funnel["welcome"]["sends"]
        assert welcomed.get("sent", 0) + welcomed.get("held", 0) == JOINED  # quiet hours: held
        assert funnel["settle-in"]["count"] == JOINED
        assert funnel["settle-in"]["now_at"] == JOINED - ORDERED
        assert funnel["ordered-early"]["count"] == ORDERED
        assert funnel["coupon"]["count"] == 0

        status, listed = http_get(f"{base}/journeys/{SHOP}/", token)
        assert status == 200
        shown = {entry["journey"]: entry for entry in listed["journeys"]}
        assert shown[ONBOARDING]["running"] is True
        assert shown[ONBOARDING]["versions"][0]["now_in"] == JOINED - ORDERED
        # Shipped and loaded, but this shop has not turned it on.
        assert shown["post-purchase-care"]["running"] is False
        assert http_get(f"{base}/journeys/{SHOP}", token)[0] == 200  # no trailing slash

        # The customer's export names the journey they are in, the step and since when.
        admin = api_token(settings, SHOP, "admin")
        _, exported = http_get(f"{base}/customers/{SHOP}/j-10/export", admin)
        (inside,) = exported["journeys"]
        where = (inside["journey"], inside["version"], inside["step"])
        assert where == (ONBOARDING, 1, "settle-in")
        assert inside["since"] < inside["until"]

        # Behind the shop's token; a name outside the contract never reaches a key.
        other = api_token(settings, "wine-cellar")
        assert http_get(f"{base}/journeys/{SHOP}/", other)[0] == 404
        assert http_get(f"{base}/journeys/{SHOP}/", None)[0] == 401
        assert http_get(f"{base}/journeys/{SHOP}/no-such-journey/stats/", token)[0] == 404
        assert http_get(f"{base}/journeys/{SHOP}/..%2F..%2Fjver/stats/", token)[0] == 400
        assert http_get(f"{base}/journeys/{SHOP}/Onboarding/stats/", token)[0] == 400
