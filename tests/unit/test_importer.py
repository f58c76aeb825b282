"""Customer lists from merchants: Chinese headers, bad rows by number, no contact in clear."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import orjson
import pytest
from openpyxl import Workbook

from crmstream.privacy import phone_hash
from storefront.importer import ColumnMapping, Importer
from storefront.sheets import RowError, open_sheet

KEY = b"k" * 32
# A Chinese merchant's export: full-width separators and all.
CSV = """会员ID,姓名,手机,生日,性别,地区,城市,会员等级,标签,接受营销
c001,王芳,+86 138-0013-8000,1990/5/17,女,华东,上海,金卡,"新客，高价值",是
c002,李雷,13900139000,19850101,男,华北,北京,普通,,否
c003,韩梅梅,,1992-13-40,女,华南,广州,普通,,是
,无名,,,,,,,,
c005,赵强,,1988-08-08,男士?,西南,成都,普通,,是
"""


def _importer(headers: list[str], key: bytes | None = KEY) -> Importer:
    mapping, _ = ColumnMapping().resolve(headers)
    return Importer("tea-house", "import/csv", mapping, key, datetime(2026, 1, 1, tzinfo=UTC))


def test_chinese_headers_map_to_profile_fields(tmp_path: Path) -> None:
    path = tmp_path / "customers.csv"
    path.write_text(CSV, encoding="utf-8-sig")
    with open_sheet(path) as sheet:
        first = _importer(sheet.headers).event(next(sheet.rows()))

    assert first["subject"] == "c001"
    assert first["source"] == "import/csv"
    assert first["data"] == {
        "phone_hash": phone_hash(KEY, "13800138000"),
        "birthday": "1990-05-17",
        "gender": "female",
        "region": "华东",
        "city": "上海",
        "member_level": "金卡",
        "tags": ["新客", "高价值"],
        "consents": {"marketing": True},
    }
    assert b"138" not in orjson.dumps(first)
    assert "王芳" not in str(first)


def test_bad_rows_are_reported_by_number(tmp_path: Path) -> None:
    path = tmp_path / "customers.csv"
    path.write_text(CSV, encoding="utf-8")
    outcomes: dict[int, str] = {}
    with open_sheet(path) as sheet:
        importer = _importer(sheet.headers)
        for row in sheet.rows():
            try:
                importer.event(row)
                outcomes[row.number] = "ok"
            except RowError as exc:
                outcomes[row.number] = str(exc)
    assert outcomes[2] == outcomes[3] == "ok"
    assert "birthday" in outcomes[4]
    assert "customer id is empty" in outcomes[5]
    assert "gender" in outcomes[6]


def test_the_same_row_gets_the_same_id(tmp_path: Path) -> None:
    path = tmp_path / "customers.csv"
    path.write_text(CSV, encoding="utf-8")
    ids = []
    for _ in range(2):
        with open_sheet(path) as sheet:
            ids.append(_importer(sheet.headers).event(next(sheet.rows()))["id"])
    assert ids[0] == ids[1]


def test_contact_details_need_a_key(tmp_path: Path) -> None:
    path = tmp_path / "customers.csv"
    path.write_text(CSV, encoding="utf-8")
    with open_sheet(path) as sheet, pytest.raises(RowError, match="CRMSTREAM_PRIVACY_HASH_KEY"):
        _importer(sheet.headers, key=None).event(next(sheet.rows()))


def test_excel_files_and_explicit_mapping(tmp_path: Path) -> None:
    book = Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.append(["买家编号", "出生日期", "Level"])
    # Excel keeps no time zone: openpyxl hands back naive datetimes.
    sheet.append(["b-9", datetime(1979, 2, 3), "vip"])  # noqa: DTZ001
    sheet.append([1234567.0, "1979.02.03", "regular"])
    path = tmp_path / "customers.xlsx"
    book.save(path)

    with open_sheet(path) as opened:
        mapping, unknown = ColumnMapping({"买家编号": "customer_id"}).resolve(opened.headers)
        assert unknown == []
        importer = Importer("tea-house", "import/xlsx", mapping, None)
        events = [importer.event(row) for row in opened.rows()]
    assert [e["subject"] for e in events] == ["b-9", "1234567"]
    assert [e["data"]["birthday"] for e in events] == ["1979-02-03", "1979-02-03"]


def test_a_file_without_customer_ids_is_refused() -> None:
    with pytest.raises(RowError, match="customer id"):
        ColumnMapping().resolve(["姓名", "手机"])


def test_cli_dry_run_reports_rows_and_exits_1(tmp_path: Path) -> None:
    path = tmp_path / "customers.csv"
    path.write_text(CSV, encoding="utf-8")
    out = tmp_path / "events.jsonl"
    env = {**os.environ, "CRMSTREAM_PRIVACY_HASH_KEY": "secret"}
    result = subprocess.run(
        [sys.executable, "-m", "streams.cli", "import", str(path), "--shop", "tea-house",
         "--out", str(out)],
        env=env, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert result.returncode == 1, result.stderr
    assert [line.split(":")[0] for line in result.stderr.splitlines()] == [
        "row 4", "row 5", "row 6",
    ]  # fmt: skip
    assert "columns not imported" not in result.stderr
    assert len(out.read_bytes().splitlines()) == 2


def test_cli_strict_writes_nothing_while_a_row_is_bad(tmp_path: Path) -> None:
    path = tmp_path / "customers.csv"
    out = tmp_path / "events.jsonl"

    def strict_import() -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "streams.cli", "import", str(path), "--shop", "tea-house",
             "--strict", "--out", str(out)],
            env={**os.environ, "CRMSTREAM_PRIVACY_HASH_KEY": "secret"},
            capture_output=True, text=True, timeout=60, check=False,
        )  # fmt: skip

    path.write_text(CSV, encoding="utf-8")
    result = strict_import()
    assert result.returncode == 1, result.stderr
    assert result.stderr.splitlines()[-1] == "3 bad row(s); --strict: nothing sent"
    assert not out.exists()
    path.write_text("\n".join(CSV.splitlines()[:3]) + "\n", encoding="utf-8")
    result = strict_import()
    assert result.returncode == 0, result.stderr
    assert len(out.read_bytes().splitlines()) == 2
