"""A sheet checked as it is read: bad rows by their spreadsheet numbers, a cap on rows,
and a report that lists a bounded number of bad rows while counting them all."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from crmstream.settings import Settings
from storefront.importer import ColumnMapping, Importer
from storefront.sheet_import import (
    LISTED_BAD_ROWS,
    SheetCheck,
    SheetReport,
    TooManyRowsError,
    refuse_beyond,
)
from storefront.sheets import open_sheet


def check(path: Path, max_rows: int | None = None) -> tuple[SheetReport, list[str]]:
    report = SheetReport()
    with open_sheet(path) as sheet:
        mapping, _ = ColumnMapping().resolve(sheet.headers)
        now = datetime(2026, 1, 1, tzinfo=UTC)
        importer = Importer("tea-house", "import/csv", mapping, None, now)
        events = SheetCheck.of(Settings(), importer, max_rows).events(sheet.rows(), report)
        subjects = [valid.who for valid, _value in events]
    return report, subjects


def test_bad_rows_keep_their_numbers_across_empty_rows(tmp_path: Path) -> None:
    path = tmp_path / "customers.csv"
    path.write_text("会员ID,生日\nc-1,1990-01-01\n\nbad id,\n,\nc-3,1990-13-45\nc-4,\n")
    report, subjects = check(path)
    assert subjects == ["c-1", "c-4"]
    assert report.good == 2
    assert [number for number, _why in report.bad] == [4, 6]
    assert "subject" in report.bad[0][1]
    assert "birthday" in report.bad[1][1]


def test_a_sheet_over_the_cap_is_refused_as_the_row_past_it_is_read(tmp_path: Path) -> None:
    path = tmp_path / "customers.csv"
    path.write_text("customer_id\n" + "".join(f"c-{n}\n" for n in range(11)) + "\n\n")
    with pytest.raises(TooManyRowsError, match="more than 10 rows") as refused:
        check(path, max_rows=10)
    assert refused.value.limit == 10
    # Empty rows are no rows: eleven customers fit a cap of eleven.
    assert check(path, max_rows=11)[0].good == 11
    with open_sheet(path) as sheet:
        refuse_beyond(sheet.rows(), 11)
    with open_sheet(path) as sheet, pytest.raises(TooManyRowsError):
        refuse_beyond(sheet.rows(), 10)


def test_a_sheet_bad_in_every_row_lists_some_and_counts_all(tmp_path: Path) -> None:
    path = tmp_path / "customers.csv"
    rows = LISTED_BAD_ROWS + 500
    path.write_text("customer_id\n" + "bad id\n" * rows)
    report, subjects = check(path)
    assert subjects == []
    assert report.bad_rows == rows
    assert len(report.bad) == LISTED_BAD_ROWS
    assert report.bad[-1][0] == LISTED_BAD_ROWS + 1


def test_every_bad_row_is_told_as_it_is_found(tmp_path: Path) -> None:
    path = tmp_path / "customers.csv"
    path.write_text("customer_id\n" + "bad id\n" * (LISTED_BAD_ROWS + 1))
    told: list[int] = []
    report = SheetReport(on_bad=lambda number, _why: told.append(number))
    with open_sheet(path) as sheet:
        mapping, _ = ColumnMapping().resolve(sheet.headers)
        importer = Importer("tea-house", "import/csv", mapping, None)
        list(SheetCheck.of(Settings(), importer).events(sheet.rows(), report))
    assert told == list(range(2, LISTED_BAD_ROWS + 3))
