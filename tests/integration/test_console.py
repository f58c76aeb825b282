"""The merchant console in a real headless Chromium (Debian's), against the real stack and
a worker: sign in, look a customer up, read a suppressed trigger in the timeline, page
through a segment, import a sheet with a bad row; a shop's token never shows another
shop. Each step leaves a screenshot in a temporary folder, to look at when one fails (the
README's are `make screenshots`'s, from the demo's traffic)."""

from __future__ import annotations

import re
import shutil
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest
from playwright.sync_api import Page, expect, sync_playwright

from crmstream.admin import create_topics
from crmstream.settings import Settings
from crmstream.topics import TopicNames
from handlers.keys import Keys
from handlers.redis_client import connect_sync
from rules.folders import shop_configs_folder
from tests.integration.console_process import running_console, wait_until
from tests.integration.test_profiles import publish
from tests.support import api_token, produce, require_tool, running_worker, text

pytestmark = [pytest.mark.single_redis, pytest.mark.slow, pytest.mark.timeout(300)]

SCREENSHOTS = Path(tempfile.gettempdir()) / "crmstream-console-test"
MEMBERS = [f"c-{n:02d}" for n in range(60)]
JOINED = ("c-07", "c-08", "c-09")  # registered: in the onboarding journey
PHONE = "+86 139-0000-1234"
# A tick reads a local time, or the date where a day begins: 14:30, 3月5日, 5 Mar.
TICK = re.compile(r"^(\d{2}:\d{2}|\d{1,2}月\d{1,2}日|\d{1,2} [A-Z][a-z]{2})$")
# Chromium as root in a sandbox of its own, kept off a network it cannot reach.
CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]  # fmt: skip


def shop_events(now: datetime) -> list[dict[str, Any]]:
    def ev(shop: str, who: str, kind: str, data: dict[str, Any], n: int) -> dict[str, Any]:
        return {
            "specversion": "1.0", "id": f"con-{shop}-{who}-{n}", "source": "test",
            "type": kind, "time": (now - timedelta(minutes=30 - n)).isoformat(),
            "shop": shop, "subject": who, "data": data,
        }  # fmt: skip

    events = [
        ev("tea-house", who, "customer.updated", {"tags": ["vip-list"], "region": "华北"}, 1)
        for who in MEMBERS
    ]
    # Registered without marketing consent: the welcome is decided, and suppressed.
    refused = {"consents": {"marketing": False}, "gender": "female", "city": "北京"}
    events.append(ev("tea-house", "c-07", "customer.registered", refused, 2))
    events.append(ev("tea-house", "c-08", "customer.registered", {"phone": PHONE}, 3))
    # Two welcomes for one SMS a day (the shop's send gate): the rule's and the onboarding's.
    joined = {"consents": {"marketing": True, "sms": True, "email": True}}
    events.append(ev("tea-house", "c-09", "customer.registered", joined, 4))
    # c-08 orders within the onboarding's three days: out of it at once, saying why.
    line = {"item_id": "tea-1", "category": "tea", "qty": 1, "price": "9.90"}
    order = {"order_id": "o-08", "items": [line], "total": "9.90"}
    events.append(ev("tea-house", "c-08", "order.placed", order, 5))
    events.append(ev("wine-cellar", "w-01", "customer.updated", {"tags": ["vip-list"]}, 1))
    return events


def sign_in(page: Page, base: str, token: str) -> None:
    page.goto(base + "/")
    expect(page).to_have_url(base + "/signin")
    page.get_by_label("店铺 API 令牌").fill(token)
    page.get_by_role("button", name="登录").click()


def tea_house_runs_the_onboarding(settings: Settings, folder: Path) -> Settings:
    """tea-house runs the onboarding journey, and sends at most one marketing SMS a day."""
    shutil.copytree(shop_configs_folder(settings.profiles), folder)
    (folder / "tea-house.yaml").write_text(
        "journeys: [new-member-onboarding]\nsend_gate: {caps: {sms: {day: 1}}}\n",
        encoding="utf-8",
    )
    profiles = settings.profiles.model_copy(update={"shop_config_dir": folder})
    return settings.model_copy(update={"profiles": profiles})


def test_the_console_in_a_real_browser(settings: Settings, tmp_path: Path) -> None:
    settings = tea_house_runs_the_onboarding(settings, tmp_path / "shops")
    chromium = require_tool("chromium", "chromium")
    create_topics(settings)
    publish(settings, shop_events(datetime.now(UTC)))
    # One view without its item: refused, to the dead-letter topic, counted for its shop.
    refused = {
        "specversion": "1.0", "id": "con-bad-1", "source": "test", "type": "item.viewed",
        "time": datetime.now(UTC).isoformat(), "shop": "tea-house", "subject": "c-01",
        "data": {},
    }  # fmt: skip
    browse = TopicNames.from_settings(settings.topics).event("browse")
    produce(settings, browse, [(b"tea-house:c-01", orjson.dumps(refused))])
    admin = api_token(settings, "tea-house", "admin")
    other = api_token(settings, "wine-cellar", "read")
    keys = Keys(settings.redis.key_prefix)
    redis = connect_sync(settings.redis)
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    with (
        running_worker(settings, tmp_path / "worker.log"),
        running_console(settings, tmp_path / "console.log") as console,
        sync_playwright() as playwright,
    ):
        wait_until(
            "the segment, the decision and the dead letter are in Redis",
            lambda: (
                redis.llen(keys.decision_log("tea-house", "c-07")) > 0
                and all(redis.hlen(keys.journeys("tea-house", who)) for who in JOINED)
                and any(
                    text(entry).startswith("capped")
                    for entry in redis.lrange(keys.decision_log("tea-house", "c-09"), 0, -1)
                )
                and any(
                    text(entry).startswith("journey")
                    for entry in redis.lrange(keys.decision_log("tea-house", "c-08"), 0, -1)
                )
                and redis.exists(keys.segment_memberships("tea-house", MEMBERS[-1]))
                and redis.exists(keys.dead_letter_minutes("tea-house", int(time.time()) // 3600))
            ),
        )
        base = console.base
        browser = playwright.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1200, "height": 900})
        signing_in(page, base, admin)
        looking_a_customer_up(page, base)
        paging_through_a_segment(page, base)
        reading_the_rules(page, base)
        reading_a_journey(page, base)
        backtesting(page, base, tmp_path)
        importing_a_sheet(page, base, tmp_path)
        wait_until("the imported customers are in", lambda: redis.exists(
            keys.customer_base("tea-house", "imp-3") + "p"))  # fmt: skip
        labels_titles_and_keyboard(page, base)
        another_shop(page, base, other, tmp_path)
        hostile_addresses(page, base)
        browser.close()
    redis.close()


def signing_in(page: Page, base: str, token: str) -> None:
    """A wrong token is refused on the page, saying why; the right one signs in."""
    sign_in(page, base, "crm_000000000000_not-a-token")
    expect(page.get_by_role("alert")).to_contain_text("令牌无效")
    sign_in(page, base, token)
    expect(page.locator("#shop-name")).to_have_text("tea-house")
    expect(page).to_have_title("概览 · 客户运营控制台")
    # The shop's own events of the last day, its decisions and dead letters, per minute.
    assert int(page.locator("#events-total").inner_text()) >= 62
    assert int(page.locator("#decisions-total").inner_text()) >= 2
    assert int(page.locator("#dead_letters-total").inner_text()) == 1
    reading_the_charts(page)
    page.screenshot(path=str(SCREENSHOTS / "overview.png"), full_page=True)
    page.goto(base + "/?lang=en")
    reading_the_charts(page)
    expect(page.locator("#events-last-hour text.now")).to_contain_text("now")
    page.goto(base + "/?lang=zh")
    expect(page.locator("#events-last-hour text.now")).to_contain_text("现在")


def reading_the_charts(page: Page) -> None:
    """A bucket for every minute of the last hour and every hour of the last day, ticks
    every 10 minutes and every 3 hours, and each card's bars adding up to its title."""
    for card in ("events", "decisions", "dead_letters"):
        for window, buckets, ticks in (("hour", 60, 6), ("day", 24, 8)):
            chart = page.locator(f"#{card}-last-{window}")
            expect(chart.locator("rect.bucket")).to_have_count(buckets)
            labels = chart.locator("g.tick text").all_text_contents()
            assert len(labels) == ticks, (card, window, labels)
            assert all(TICK.match(label) for label in labels), (card, window, labels)
        bars = page.locator(f"#{card}-last-day rect.bucket").evaluate_all(
            "rects => rects.map(rect => Number(rect.getAttribute('data-count')))"
        )
        assert sum(bars) == int(page.locator(f"#{card}-total").inner_text()), card


def looking_a_customer_up(page: Page, base: str) -> None:
    """The suppressed welcome reads in the timeline, with its reason, in either language."""
    page.get_by_role("link", name="客户").click()
    page.get_by_label("客户 ID 或手机号").fill("c-07")
    page.keyboard.press("Enter")
    expect(page.locator("#customer-id")).to_have_text("c-07")
    suppressed = page.locator("#timeline li.outcome-consent", has_text="new-customer-welcome")
    expect(suppressed).to_contain_text("未获授权，未发送")
    expect(page.locator("#customer-segments")).to_contain_text("vip-list")
    page.screenshot(path=str(SCREENSHOTS / "customer.png"), full_page=True)
    page.goto(base + "/customers/c-07?lang=en")
    suppressed = page.locator("#timeline li.outcome-consent", has_text="new-customer-welcome")
    expect(suppressed).to_contain_text("suppressed: no consent")
    page.goto(base + "/customers/nobody")
    expect(page.get_by_role("alert")).to_contain_text("No customer nobody here")
    page.goto(base + "/?lang=zh")
    # By phone, however it is spelled: through its keyed hash.
    page.goto(base + "/customers")
    page.get_by_label("客户 ID 或手机号").fill("13900001234")
    page.keyboard.press("Enter")
    expect(page.locator("#customer-id")).to_have_text("c-08")
    page.goto(base + "/customers?q=13900009999")
    expect(page.get_by_role("alert")).to_contain_text("没有客户使用这个手机号")


def paging_through_a_segment(page: Page, base: str) -> None:
    """50, then the last 10; the CSV holds all 60."""
    page.goto(base + "/segments/vip-list")
    expect(page.locator("#members li")).to_have_count(50)
    page.screenshot(path=str(SCREENSHOTS / "segment.png"), full_page=True)
    page.locator("#next-page").click()
    expect(page.locator("#members li")).to_have_count(10)
    expect(page.locator("#members")).to_contain_text("c-59")
    with page.expect_download() as download:
        page.get_by_role("link", name="导出 CSV").click()
    lines = Path(download.value.path()).read_text().splitlines()
    assert lines[0] == "shop,segment,customer"
    assert [line.rsplit(",", 1)[1] for line in lines[1:]] == MEMBERS
    page.goto(base + "/rules")
    expect(page.locator("#rule-new-customer-welcome")).to_be_visible()
    page.screenshot(path=str(SCREENSHOTS / "rules.png"), full_page=True)


def reading_the_rules(page: Page, base: str) -> None:
    """Triggers and limits in the merchant's words, in either language; nothing on the page
    as Python would print it."""
    for lang, cart, limits, birthday in (
        ("zh", "加购后 30 分钟内未下单", "冷却 1 天，免打扰 22:00–08:00",
         "每天 09:00（客户当地时间），生日当天"),
        ("en", "cart item added, no order within 30 minutes",
         "cooldown 1 day, quiet hours 22:00–08:00",
         "at 09:00 (customer’s local time), on their birthday"),
    ):  # fmt: skip
        page.goto(base + f"/rules?lang={lang}")
        expect(page.locator("#when-abandoned-cart-coupon")).to_have_text(cart)
        expect(page.locator("#limits-abandoned-cart-coupon")).to_contain_text(limits)
        expect(page.locator("#when-birthday-greeting")).to_have_text(birthday)
        text = page.locator("body").inner_text()
        for python in ("{'", "True", "False", "None"):
            assert python not in text, (lang, python)
    page.goto(base + "/rules?lang=zh")


def reading_a_journey(page: Page, base: str) -> None:
    """The shop's journeys, the onboarding's steps as a funnel with the count of each, a
    customer's journey on their page, and a capped welcome saying who took the SMS."""
    page.get_by_role("link", name="旅程").click()
    onboarding = page.locator('#journeys tr[data-journey="new-member-onboarding"]')
    expect(onboarding).to_contain_text("已开启")
    expect(onboarding.locator(".entered")).to_have_text(str(len(JOINED)))
    expect(page.locator('#journeys tr[data-journey="post-purchase-care"]')).to_contain_text(
        "本店未开启"
    )
    onboarding.get_by_role("link", name="new-member-onboarding").click()
    version = page.locator("#version-1")
    expect(version.locator(".entered")).to_have_text(str(len(JOINED)))
    expect(version.locator('g.step[data-step="settle-in"]')).to_have_attribute(
        "data-count", str(len(JOINED))
    )
    expect(version.locator('tr[data-step="settle-in"] .now-at')).to_have_text(str(len(JOINED) - 1))
    expect(version.locator('tr[data-step="ordered-early"] .count')).to_have_text("1")
    expect(version.locator('tr[data-step="welcome"] .count')).to_have_text(str(len(JOINED)))
    expect(version.locator('tr[data-step="coupon"] .count')).to_have_text("0")
    expect(version.locator('tr[data-step="bought"] .count')).to_have_count(0)
    page.screenshot(path=str(SCREENSHOTS / "journey.png"), full_page=True)
    page.goto(base + "/journeys/new-member-onboarding?lang=en")
    expect(page.locator("#version-1 h2")).to_have_text("version 1")
    page.goto(base + "/customers/c-09?lang=en")
    inside = page.locator('#customer-journeys li[data-journey="new-member-onboarding"]')
    expect(inside).to_contain_text("version 1, at settle-in since")
    # c-08 ordered: out of the journey, and the timeline says why.
    page.goto(base + "/customers/c-08?lang=en")
    expect(page.locator("#customer-journeys")).to_have_count(0)
    left = page.locator("#timeline li.outcome-journey")
    expect(left).to_contain_text("new-member-onboarding")
    expect(left).to_contain_text("ordered within three days, no coupon needed (ordered-early)")
    page.goto(base + "/customers/c-09?lang=en")
    expect(page.locator("#timeline li.outcome-capped .capped-by")).to_contain_text(
        "took today's SMS"
    )
    page.goto(base + "/customers/c-09?lang=zh")
    expect(page.locator("#timeline li.outcome-capped .capped-by")).to_contain_text(
        "已占用今天的 SMS 名额"
    )
    for path, said in (
        ("/journeys/no-such-journey", "这里没有旅程 no-such-journey"),
        ("/journeys/..%2F..%2Fjver", "这里没有旅程"),
    ):
        page.goto(base + path)
        expect(page.get_by_role("alert")).to_contain_text(said)


def backtesting(page: Page, base: str, tmp_path: Path) -> None:
    """A rule file that does not check is refused with its line; a shipped rule runs over
    an uploaded file of past events."""
    past = tmp_path / "past.jsonl"
    consents = {"marketing": True, "sms": True, "email": True, "push": True}
    past.write_text(
        "".join(
            orjson.dumps(
                {
                    "specversion": "1.0", "id": f"past-{n}", "source": "test",
                    "type": "customer.registered", "time": f"2026-03-01T12:0{n}:00+08:00",
                    "shop": "tea-house", "subject": f"p-{n}", "data": {"consents": consents},
                }
            ).decode() + "\n"
            for n in range(3)
        )
        + "not json\n"
    )  # fmt: skip
    broken = tmp_path / "broken-rule.yaml"
    broken.write_text(
        "id: broken\nversion: 1\ndescription: d\nwhen: {event: order.placed}\n"
        "if: event.data.total >\nthen: {channels: [sms], template: t}\n"
    )
    page.goto(base + "/rules")
    page.locator("#backtest-link").click()
    page.get_by_label("或上传规则或旅程文件 (YAML)").set_input_files(str(broken))
    page.get_by_label("过去的事件 (JSON Lines)").set_input_files(str(past))
    page.get_by_role("button", name="开始回测").click()
    expect(page.locator("#rule-problems")).to_contain_text("broken-rule.yaml:5")
    page.get_by_label("现有规则").select_option("new-customer-welcome.yaml")
    page.get_by_label("过去的事件 (JSON Lines)").set_input_files(str(past))
    page.get_by_role("button", name="开始回测").click()
    expect(page.locator("#backtest-report")).to_contain_text("将触发 3 次，涉及 3 位客户")
    expect(page.locator("#backtest-report")).to_contain_text("第 4 行")
    # A journey, over the same file: the three joiners enter and are welcomed.
    page.get_by_label("现有规则").select_option("journey:new-member-onboarding.yaml")
    page.get_by_label("过去的事件 (JSON Lines)").set_input_files(str(past))
    page.get_by_role("button", name="开始回测").click()
    report = page.locator("#journey-backtest-report")
    expect(report).to_contain_text("new-member-onboarding 第 1 版：3 个事件，3 人进入")
    expect(report.locator('g.step[data-step="welcome"]')).to_have_attribute("data-count", "3")
    expect(report.locator('tr[data-step="settle-in"] .count')).to_have_text("3")


def customer_sheet(tmp_path: Path) -> Path:
    """Three customers; the second's birthday is no date."""
    sheet = tmp_path / "customers.csv"
    sheet.write_text(
        "会员ID,姓名,生日,城市\nimp-1,张三,1990-05-01,上海\nimp-2,李四,1990-13-45,北京\n"
        "imp-3,王五,1985-11-30,杭州\n",
        encoding="utf-8",
    )
    return sheet


def importing_a_sheet(page: Page, base: str, tmp_path: Path) -> None:
    """The bad row is reported by its number (the header is row 1); the others go in."""
    page.goto(base + "/import")
    page.get_by_label("上传客户表 (CSV 或 Excel)").set_input_files(str(customer_sheet(tmp_path)))
    page.get_by_role("button", name="检查并导入").click()
    expect(page.locator("#report")).to_contain_text("已导入 2 行，1 行有误")
    expect(page.locator("#row-errors")).to_contain_text("第 3 行")
    page.screenshot(path=str(SCREENSHOTS / "import.png"), full_page=True)


def labels_titles_and_keyboard(page: Page, base: str) -> None:
    """Every form control has a label, every page a title; the keyboard alone signs out."""
    pages = ("/", "/customers", "/customers/c-07", "/segments", "/journeys",
             "/journeys/new-member-onboarding", "/rules", "/rules/backtest")  # fmt: skip
    for path in (*pages, "/import"):
        page.goto(base + path)
        unlabelled = page.evaluate(
            """() => [...document.querySelectorAll('input, select, textarea')]
                 .filter(el => el.type !== 'hidden' && el.labels.length === 0)
                 .map(el => el.name)"""
        )
        assert unlabelled == [], (path, unlabelled)
        assert page.title().strip(), path
    page.goto(base + "/")
    for _ in range(15):
        page.keyboard.press("Tab")
        if page.evaluate("document.activeElement.textContent") == "退出":
            break
    page.keyboard.press("Enter")
    expect(page).to_have_url(base + "/signin")


def another_shop(page: Page, base: str, token: str, tmp_path: Path) -> None:
    """tea-house is nowhere; its customers are not found; a read token cannot import."""
    sign_in(page, base, token)
    expect(page.locator("#shop-name")).to_have_text("wine-cellar")
    page.goto(base + "/customers/c-07")
    expect(page.get_by_role("alert")).to_contain_text("没有找到客户 c-07")
    page.goto(base + "/segments/vip-list")
    expect(page.locator("#members li")).to_have_count(1)
    expect(page.locator("#members")).to_have_text("w-01")
    for path in ("/", "/segments", "/rules", "/segments/vip-list", "/journeys",
                 "/journeys/new-member-onboarding"):  # fmt: skip
        page.goto(base + path)
        assert "tea-house" not in page.content(), path
        assert "c-0" not in page.locator("main").inner_text(), path
    page.goto(base + "/import")
    page.get_by_label("上传客户表 (CSV 或 Excel)").set_input_files(str(customer_sheet(tmp_path)))
    page.get_by_role("button", name="检查并导入").click()
    expect(page.get_by_role("alert")).to_contain_text("导入需要管理员令牌")


def hostile_addresses(page: Page, base: str) -> None:
    """A page that says what is wrong, never a traceback."""
    for path, said in (
        ("/customers/..%2F..%2Fetc", "这不是有效的客户 ID"),
        ("/nowhere", "页面不存在"),
    ):
        page.goto(base + path)
        expect(page.get_by_role("alert")).to_contain_text(said)
        assert "Traceback" not in page.content()
