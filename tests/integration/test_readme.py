"""The README's examples work as written: every command in a code block marked
``<!-- run by tests/integration/test_readme.py -->`` runs here and succeeds.

The commands run in a folder of their own, holding the files they name (events.jsonl,
customers.xlsx, past.jsonl) and the checkout's rules/ and deploy/, against this test's
own topics and Redis keys, with a worker running. One thing is changed as they run:
the worker's address (the README says localhost:6066; the test's worker has a port of
its own).
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
import time
from pathlib import Path

import pytest
from openpyxl import Workbook

from crmstream.admin import create_topics
from crmstream.settings import Settings
from streams.cli.child_worker import settings_env
from tests.integration.test_profiles import simulated
from tests.support import require_tool, running_worker

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]

ROOT = Path(__file__).resolve().parents[2]
MARK = "<!-- run by tests/integration/test_readme.py -->"
_BLOCK = re.compile(re.escape(MARK) + r"\n```sh\n(.*?)```", re.DOTALL)


def marked_commands() -> list[str]:
    """Each command line of the marked blocks, without its trailing comment."""
    commands = []
    for block in _BLOCK.findall((ROOT / "README.md").read_text(encoding="utf-8")):
        for line in block.splitlines():
            command = line.split("  #", 1)[0].strip()
            if command:
                commands.append(command)
    return commands


def test_the_readme_marks_its_runnable_examples() -> None:
    commands = marked_commands()
    assert len(commands) >= 15
    # Placeholders would not run: every marked command is meant as written.
    assert not [c for c in commands if re.search(r"\[|\bSHOP\b|\bDIR\b|FILE", c)]
    assert any(c.startswith("curl ") for c in commands)


def customers_sheet(path: Path) -> None:
    book = Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.append(["会员ID", "姓名", "手机", "生日", "性别", "地区", "城市", "会员等级"])
    sheet.append(
        ["c900001", "王芳", "+86 138-0013-8000", "1990-05-17", "女", "华东", "上海", "金卡"]
    )
    sheet.append(["c900002", "李雷", "", "1988-11-02", "M", "华北", "北京", "普通"])
    book.save(path)


def test_every_marked_example_runs(settings: Settings, tmp_path: Path) -> None:
    require_tool("promtool", "prometheus")
    curl = require_tool("curl", "curl")
    work = tmp_path / "work"
    work.mkdir()
    for folder in ("rules", "deploy"):
        (work / folder).symlink_to(ROOT / folder)
    events = simulated(work / "events.jsonl", 6_000, seed=42)
    assert any(e.get("subject") == "c000042" and e["shop"] == "tea-house" for e in events)
    simulated(work / "past.jsonl", 2_000, seed=5)
    customers_sheet(work / "customers.xlsx")
    create_topics(settings)
    worker_at = f"{settings.worker.web_host}:{settings.worker.web_port}"
    env = {
        **os.environ,
        **settings_env(settings),
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
        "COLUMNS": "200",
    }
    with running_worker(settings, tmp_path / "worker.log"):
        for command in marked_commands():
            line = command.replace("localhost:6066", worker_at)
            if line.startswith(("crmstream profile", "curl ")):
                _until_found(line, env, work)
            if line.startswith("curl "):
                line = line.replace("curl ", f"{shlex.quote(curl)} --fail --silent ", 1)
            result = subprocess.run(
                ["bash", "-c", line], cwd=work, env=env, capture_output=True, text=True,
                timeout=300, check=False,
            )  # fmt: skip
            assert result.returncode == 0, (command, result.stdout[-2000:], result.stderr[-2000:])


def _until_found(line: str, env: dict[str, str], cwd: Path) -> None:
    """A profile shows once the worker has read its events: wait for that, not a fixed time."""
    probe = line.replace("curl ", "curl --fail --silent --output /dev/null ", 1)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if subprocess.run(["bash", "-c", probe], cwd=cwd, env=env, check=False,
                          capture_output=True).returncode == 0:  # fmt: skip
            return
        time.sleep(1)
    raise AssertionError(f"{line}: never answered")
