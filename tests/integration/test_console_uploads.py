"""Uploads to a real console process: a 400,000-row sheet and a long backtest file are read
in flat memory (the process's resident size sampled throughout); a sheet or event file
over its cap is refused naming the setting; a body over the byte cap is refused while it
is still arriving; bad input gets a message and a 4xx, never a traceback."""

from __future__ import annotations

import asyncio
import html
import re
import threading
from pathlib import Path
from types import TracebackType
from typing import Self

import aiohttp
import orjson
import pytest
from openpyxl import Workbook

from console.auth import TOKEN_COOKIE
from crmstream.settings import ConsoleSettings, Settings
from tests.integration.console_process import running_console
from tests.support import api_token

pytestmark = [pytest.mark.slow, pytest.mark.timeout(420)]

MAX_RSS_MB = 300
SHEET_ROWS = 400_000
# Customer ids the event contract refuses (a space), at the first, a middle and the last row.
BAD_AT = {0: "bad id 1", SHEET_ROWS // 2: "bad id 2", SHEET_ROWS - 1: "bad id 3"}
BACKTEST_EVENTS = 50_000
CONSENTS = {"marketing": True, "sms": True, "email": True, "push": True}


class PeakRss:
    """The resident memory of a process, read from /proc every 20 ms while in the block."""

    def __init__(self, pid: int) -> None:
        self._status = Path(f"/proc/{pid}/status")
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self.samples_kb: list[int] = []

    def _read_kb(self) -> int:
        for line in self._status.read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
        raise AssertionError(f"no VmRSS in {self._status}")

    def _sample(self) -> None:
        while not self._stop.wait(0.02):
            self.samples_kb.append(self._read_kb())

    @property
    def peak_mb(self) -> float:
        return max(self.samples_kb) / 1024

    def __enter__(self) -> Self:
        self.samples_kb.append(self._read_kb())
        self._thread.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._stop.set()
        self._thread.join()
        self.samples_kb.append(self._read_kb())


async def post_form(url: str, token: str, files: dict[str, Path], **fields: str) -> tuple[int, str]:
    form = aiohttp.FormData()
    for name, value in fields.items():
        form.add_field(name, value)
    handles = {name: path.open("rb") for name, path in files.items()}
    try:
        for name, handle in handles.items():
            form.add_field(name, handle, filename=files[name].name)
        # A cookie header of its own: aiohttp's cookie jar keeps none for an IP address.
        headers = {"Cookie": f"{TOKEN_COOKIE}={token}"}
        timeout = aiohttp.ClientTimeout(total=300)
        async with (
            aiohttp.ClientSession(headers=headers, timeout=timeout) as session,
            session.post(url, data=form) as response,
        ):
            return response.status, await response.text()
    finally:
        for handle in handles.values():
            handle.close()


def xlsx_sheet(path: Path, rows: int) -> Path:
    book = Workbook(write_only=True)
    sheet = book.create_sheet()
    sheet.append(["customer_id"])
    for n in range(rows):
        sheet.append([BAD_AT.get(n, f"cust-{n:07d}")])
    book.save(path)
    return path


def csv_sheet(path: Path, rows: int) -> Path:
    path.write_text("customer_id\n" + "".join(f"cust-{n}\n" for n in range(rows)))
    return path


def registrations(path: Path, count: int) -> Path:
    with path.open("wb") as sink:
        for n in range(count):
            event = {
                "specversion": "1.0", "id": f"past-{n}", "source": "test",
                "type": "customer.registered", "time": f"2026-03-01T12:{n % 60:02d}:00+08:00",
                "shop": "tea-house", "subject": f"p-{n}", "data": {"consents": CONSENTS},
            }  # fmt: skip
            sink.write(orjson.dumps(event) + b"\n")
    return path


def problem(page: str) -> str:
    found = re.search(r'role="alert">(.*?)<', page, re.DOTALL)
    assert found, page[-2000:]
    return html.unescape(found.group(1).strip())


async def test_a_400000_row_sheet_is_checked_in_flat_memory(
    settings: Settings, tmp_path: Path
) -> None:
    sheet = xlsx_sheet(tmp_path / "customers.xlsx", SHEET_ROWS)
    admin = api_token(settings, "tea-house", "admin")
    with running_console(settings, tmp_path / "console.log") as console:
        with PeakRss(console.pid) as rss:
            status, page = await post_form(
                console.base + "/import?lang=en", admin, {"sheet": sheet}, dry_run="on"
            )
        assert status == 200, page[-2000:]
        good = SHEET_ROWS - len(BAD_AT)
        assert f"{good} rows good, {len(BAD_AT)} bad (nothing sent)" in page
        # The header is row 1.
        assert re.findall(r"<li>Row (\d+):", page) == [str(n + 2) for n in sorted(BAD_AT)]
        assert rss.peak_mb < MAX_RSS_MB, f"peak {rss.peak_mb:.0f} MB"


async def test_a_sheet_over_the_row_cap_and_bad_sheets_are_refused(
    settings: Settings, tmp_path: Path
) -> None:
    capped = settings.model_copy(update={"console": ConsoleSettings(max_import_rows=1000)})
    admin = api_token(settings, "tea-house", "admin")
    over = csv_sheet(tmp_path / "over.csv", 1001)
    scratch = tmp_path / "console-tmp"
    scratch.mkdir()
    with running_console(capped, tmp_path / "console.log", scratch) as console:
        url = console.base + "/import"
        status, page = await post_form(url + "?lang=en", admin, {"sheet": over}, dry_run="on")
        assert status == 413
        assert problem(page) == (
            "The sheet has more than 1,000 rows (CRMSTREAM_CONSOLE_MAX_IMPORT_ROWS); split it."
        )
        # Refused before anything is sent.
        status, page = await post_form(url + "?lang=zh", admin, {"sheet": over})
        assert status == 413
        assert "超过 1,000 行（CRMSTREAM_CONSOLE_MAX_IMPORT_ROWS）" in problem(page)
        status, page = await post_form(
            url + "?lang=en", admin, {"sheet": csv_sheet(tmp_path / "full.csv", 1000)}, dry_run="on"
        )
        assert status == 200
        assert "1000 rows good, 0 bad" in page

        for name, content, said in (
            ("customers.txt", b"customer_id\nc-1\n", ".csv / .xlsx"),
            ("customers.xlsx", b"PK\x03\x04 not a workbook", "not a readable .xlsx workbook"),
            ("customers.csv", "会员ID\nc-1\n".encode("gb18030"), "not a UTF-8 CSV file"),
            ("customers.csv", b"name\nx\n", "no customer id column"),
        ):
            path = tmp_path / name
            path.write_bytes(content)
            status, page = await post_form(url + "?lang=en", admin, {"sheet": path})
            assert status == 400, name
            assert said in problem(page)
            assert "Traceback" not in page
        status, page = await post_form(url + "?lang=en", admin, {"sheet": over}, stray="x")
        assert status == 400
        assert "no field 'stray'" in problem(page)
        status, page = await post_form(url + "?lang=en", admin, {}, dry_run="on")
        assert status == 400
        assert "expected multipart/form-data" in problem(page)
    # Every upload, taken or refused, was removed once answered.
    assert list(scratch.iterdir()) == []


async def test_an_upload_over_the_byte_cap_is_refused_while_it_streams(
    settings: Settings, tmp_path: Path
) -> None:
    admin = api_token(settings, "tea-house", "admin")
    scratch = tmp_path / "console-tmp"
    scratch.mkdir()
    with running_console(settings, tmp_path / "console.log", scratch) as console:
        port = int(console.base.rsplit(":", 1)[1])
        # A body that never ends: the answer can only come from reading part of it.
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(
            b"POST /import?lang=en HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            + f"Cookie: {TOKEN_COOKIE}={admin}\r\n".encode()
            + b"Content-Type: multipart/form-data; boundary=cut\r\n"
            b"Transfer-Encoding: chunked\r\n\r\n"
        )
        chunk = b"c-0000001\n" * 104_858  # a MB
        head = b'--cut\r\nContent-Disposition: form-data; name="sheet"; filename="big.csv"\r\n\r\n'

        async def send() -> None:
            for data in (head, *[chunk] * 21):  # past the 20 MB cap, and never the end
                writer.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
                await writer.drain()

        sending = asyncio.create_task(send())
        answer = await asyncio.wait_for(reader.readuntil(b"</html>"), 60)
        sending.cancel()
        writer.close()
        assert answer.startswith(b"HTTP/1.1 413"), answer[:200]
        assert "The file is larger than 20 MB" in answer.decode()
        assert list(scratch.iterdir()) == []  # the part that came is gone

        # A body that says its length up front is refused before it is sent.
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(
            b"POST /import HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            + f"Cookie: {TOKEN_COOKIE}={admin}\r\n".encode()
            + b"Content-Type: multipart/form-data; boundary=cut\r\n"
            b"Content-Length: 100000000\r\n\r\n"
        )
        answer = await asyncio.wait_for(reader.readuntil(b"</html>"), 30)
        writer.close()
        assert answer.startswith(b"HTTP/1.1 413"), answer[:200]


async def test_a_long_backtest_file_runs_in_flat_memory(settings: Settings, tmp_path: Path) -> None:
    events = registrations(tmp_path / "past.jsonl", BACKTEST_EVENTS)
    admin = api_token(settings, "tea-house", "admin")
    with running_console(settings, tmp_path / "console.log") as console:
        with PeakRss(console.pid) as rss:
            status, page = await post_form(
                console.base + "/rules/backtest?lang=en",
                admin,
                {"events": events},
                rule="new-customer-welcome.yaml",
            )
        assert status == 200, page[-2000:]
        n = BACKTEST_EVENTS
        assert f"over {n} events, {n} triggers for {n} customers" in page
        assert rss.peak_mb < MAX_RSS_MB, f"peak {rss.peak_mb:.0f} MB"


async def test_a_backtest_file_over_the_event_cap_is_refused(
    settings: Settings, tmp_path: Path
) -> None:
    capped = settings.model_copy(update={"console": ConsoleSettings(max_backtest_events=100)})
    admin = api_token(settings, "tea-house", "admin")
    over = registrations(tmp_path / "over.jsonl", 101)
    # Blank lines are no events: 100 of them, spread out, stay within the cap.
    full = tmp_path / "full.jsonl"
    full.write_bytes(
        registrations(tmp_path / "hundred.jsonl", 100).read_bytes().replace(b"\n", b"\n\n")
    )
    big_rule = tmp_path / "rule.yaml"
    big_rule.write_bytes(b"#" * (256 * 1024 + 1))
    scratch = tmp_path / "console-tmp"
    scratch.mkdir()
    with running_console(capped, tmp_path / "console.log", scratch) as console:
        url = console.base + "/rules/backtest"
        rule = "new-customer-welcome.yaml"
        status, page = await post_form(url + "?lang=en", admin, {"events": over}, rule=rule)
        assert status == 413
        assert problem(page) == (
            "The file has more than 100 events (CRMSTREAM_CONSOLE_MAX_BACKTEST_EVENTS); split it."
        )
        status, page = await post_form(url + "?lang=zh", admin, {"events": over}, rule=rule)
        assert status == 413
        assert "超过 100 个事件（CRMSTREAM_CONSOLE_MAX_BACKTEST_EVENTS）" in problem(page)
        status, page = await post_form(url + "?lang=en", admin, {"events": full}, rule=rule)
        assert status == 200, page[-2000:]
        assert "over 100 events, 100 triggers for 100 customers" in page
        files = {"events": full, "rule_file": big_rule}
        status, page = await post_form(url + "?lang=en", admin, files)
        assert status == 413
        assert problem(page) == "The file is larger than 256 KB, the limit."
        assert "Traceback" not in page
    assert list(scratch.iterdir()) == []
