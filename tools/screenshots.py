"""The README's console screenshots, from the demo's data (`make screenshots`).

A worker takes two minutes of the demo's live traffic (a cross-border shop's customers,
days of shopping played out in minutes, in a key space and topics of their own); the
console then shows tea-house as its staff would see it, in Debian's headless Chromium,
and each page is saved under docs/console/. Nothing else writes there.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Final

from playwright.sync_api import Page, expect, sync_playwright

from crmstream.admin import create_topics
from crmstream.settings import Settings
from handlers.flow import events_taken, flow_counts
from handlers.keys import Keys
from handlers.redis_client import SyncRedisClient, connect_sync
from handlers.triggers.decisions import parse_decision
from storefront.publisher import Publisher
from streams.cli.child_worker import settings_env, start_worker, stop_worker
from streams.cli.demo import demo_shops, demo_traffic
from streams.cli.local_stack import with_local_hash_key
from streams.cli.pacing import Pacer

OUT: Final = Path(__file__).parents[1] / "docs" / "console"
SHOP: Final = "tea-house"
NAMESPACE: Final = "screens"
# Chromium as root in a sandbox of its own, kept off a network it cannot reach.
CHROMIUM_ARGS: Final = [
    "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]  # fmt: skip


def own_settings(base: Settings) -> Settings:
    return base.model_copy(
        update={
            "topics": base.topics.model_copy(update={"prefix": NAMESPACE}),
            "redis": base.redis.model_copy(update={"key_prefix": NAMESPACE}),
            "worker": base.worker.model_copy(update={"app_id": f"crmstream-{NAMESPACE}"}),
        }
    )


def wait_until(what: str, check: Callable[[], bool], timeout_s: float = 180) -> None:
    deadline = time.monotonic() + timeout_s
    while not check():
        if time.monotonic() > deadline:
            raise SystemExit(f"screenshots: gave up waiting for {what}")
        time.sleep(0.5)


def forget_earlier_runs(settings: Settings, redis: SyncRedisClient) -> None:
    pattern = Keys(settings.redis.key_prefix).pattern()
    doomed = list(redis.scan_iter(match=pattern, count=1000))
    for start in range(0, len(doomed), 1000):
        redis.unlink(*doomed[start : start + 1000])


def publish_demo_traffic(settings: Settings, seconds: float, rate: float) -> int:
    """The demo's storefronts for ``seconds`` at ``rate``; returns how many events went out."""
    sent = 0
    pacer = Pacer(rate)
    began = time.monotonic()
    with Publisher(settings) as publisher:
        for sent, event in enumerate(demo_traffic(seed=7, id_salt=1).events(), 1):
            publisher.publish(event)
            pacer.wait(sent)
            if time.monotonic() - began > seconds:
                break
    return sent


@contextmanager
def running_console(settings: Settings, port: int, log: Path) -> Iterator[str]:
    with log.open("ab") as sink:
        process = subprocess.Popen(
            [sys.executable, "-m", "streams.cli", "console", "--port", str(port)],
            env={**os.environ, **settings_env(settings)},
            stdout=sink,
            stderr=subprocess.STDOUT,
        )
    base = f"http://127.0.0.1:{port}"

    def answers() -> bool:
        try:
            with urllib.request.urlopen(base + "/healthz", timeout=2):  # noqa: S310 -- loopback
                return True
        except OSError:
            if process.poll() is not None:
                raise SystemExit(f"screenshots: the console exited; see {log}") from None
            return False

    try:
        wait_until("the console", answers, 60)
        yield base
    finally:
        process.terminate()
        process.wait(timeout=20)


def admin_token(settings: Settings) -> str:
    made = subprocess.run(
        [sys.executable, "-m", "streams.cli", "tokens", "create", SHOP, "--scope", "admin"],
        env={**os.environ, **settings_env(settings)}, capture_output=True, text=True, check=True,
    )  # fmt: skip
    return made.stdout.strip()


def most_decided(settings: Settings, redis: SyncRedisClient) -> str:
    """The tea-house customer whose decision log tells the most: the most kinds of outcome,
    then the most entries."""
    pattern = Keys(settings.redis.key_prefix).pattern()
    logs: list[str] = [
        key.decode()
        for key in redis.scan_iter(match=pattern, count=1000)
        if f":log:{SHOP}:".encode() in key
    ]
    if not logs:
        raise SystemExit("screenshots: no decision was logged for tea-house")

    def telling(key: str) -> tuple[int, int, str]:
        entries = [parse_decision(entry) for entry in redis.lrange(key, 0, -1)]
        return len({entry["outcome"] for entry in entries}), len(entries), key

    return max(logs, key=telling).rsplit(":", 1)[1]


def largest_segment(page: Page, base: str) -> str:
    page.goto(base + "/segments")
    links = page.locator("main a[href^='/segments/']").evaluate_all(
        "links => links.map(link => link.getAttribute('href'))"
    )
    if not links:
        raise SystemExit("screenshots: tea-house has no segment members yet")
    return str(links[0])


def take(page: Page, base: str, customer: str, sheet: Path) -> None:
    page.goto(base + "/")
    expect(page.locator("#shop-name")).to_have_text(SHOP)
    page.screenshot(path=str(OUT / "overview.png"), full_page=True)
    page.goto(base + f"/customers/{customer}")
    expect(page.locator("#customer-id")).to_have_text(customer)
    page.screenshot(path=str(OUT / "customer.png"), full_page=True)
    page.goto(base + largest_segment(page, base))
    page.screenshot(path=str(OUT / "segment.png"), full_page=True)
    page.goto(base + "/journeys/new-member-onboarding")
    page.screenshot(path=str(OUT / "journey.png"), full_page=True)
    page.goto(base + "/rules")
    page.screenshot(path=str(OUT / "rules.png"), full_page=True)
    page.goto(base + "/import")
    page.get_by_label("上传客户表 (CSV 或 Excel)").set_input_files(str(sheet))
    page.get_by_label("只检查").check()
    page.get_by_role("button", name="检查并导入").click()
    expect(page.locator("#row-errors")).to_be_visible()
    page.screenshot(path=str(OUT / "import.png"), full_page=True)


def customer_sheet(folder: Path) -> Path:
    """A merchant's sheet with Chinese headers; row 3's birthday is no date."""
    sheet = folder / "会员.csv"
    sheet.write_text(
        "会员ID,姓名,生日,城市\nvip-001,张三,1990-05-01,上海\nvip-002,李四,1990-13-45,北京\n"
        "vip-003,王五,1985-11-30,杭州\n",
        encoding="utf-8",
    )
    return sheet


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=120.0, help="of demo traffic")
    parser.add_argument("--rate", type=float, default=250.0, help="events per second")
    parser.add_argument("--port", type=int, default=6071, help="the console's port")
    args = parser.parse_args()
    chromium = shutil.which("chromium")
    if chromium is None:
        raise SystemExit("screenshots: Debian's chromium is needed (make system-deps)")
    # The key `crmstream` commands use on this machine: the worker and the console started
    # here, and the token made here, must hash alike.
    work = Path(tempfile.mkdtemp(prefix="crmstream-screenshots-"))
    # The demo's shops, which run the pack journeys.
    settings = demo_shops(own_settings(with_local_hash_key(Settings())), work / "shops")
    redis = connect_sync(settings.redis)
    forget_earlier_runs(settings, redis)
    create_topics(settings)
    worker = start_worker(work / "worker.log", env=settings_env(settings))
    try:
        sent = publish_demo_traffic(settings, args.seconds, args.rate)
        flow = Keys(settings.redis.key_prefix).flow
        wait_until(
            f"the worker to take in {sent} events",
            lambda: events_taken(flow_counts(redis.hgetall(flow))) >= sent,
        )
        customer = most_decided(settings, redis)
        OUT.mkdir(parents=True, exist_ok=True)
        with (
            running_console(settings, args.port, work / "console.log") as base,
            sync_playwright() as playwright,
        ):
            browser = playwright.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
            page = browser.new_page(viewport={"width": 1200, "height": 900})
            page.goto(base + "/signin")
            page.get_by_label("店铺 API 令牌").fill(admin_token(settings))
            page.get_by_role("button", name="登录").click()
            take(page, base, customer, customer_sheet(work))
            browser.close()
    finally:
        stop_worker(worker)
        redis.close()
    print(f"wrote {', '.join(sorted(p.name for p in OUT.glob('*.png')))} to {OUT}")  # noqa: T201 -- a command's report


if __name__ == "__main__":
    main()
