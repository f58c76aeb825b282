"""Sheets read a row at a time: row numbers as a spreadsheet program shows them, empty
rows skipped but counted, headers alone, a BOM, broken files refused with a reason."""

from __future__ import annotations

import zipfile
from pathlib import Path

import pytest
from openpyxl import Workbook

from storefront.sheets import MAX_WHOLE_PARTS_BYTES, RowError, open_sheet


def rows_of(path: Path) -> tuple[list[str], list[tuple[int, dict[str, object]]]]:
    with open_sheet(path) as sheet:
        return sheet.headers, [(row.number, dict(row.cells)) for row in sheet.rows()]


def xlsx(path: Path, *lines: list[object]) -> Path:
    book = Workbook(write_only=True)
    sheet = book.create_sheet()
    for line in lines:
        sheet.append(line)
    book.save(path)
    return path


def test_a_csv_with_a_bom_and_empty_rows_keeps_the_rows_numbers(tmp_path: Path) -> None:
    path = tmp_path / "customers.csv"
    # Row 3 is blank, row 5 all empty cells, row 6 spans two lines within quotes.
    path.write_bytes(
        '\ufeff会员ID,城市\nc-1,上海\n\nc-2,北京\n,\n"c-3","杭州\n西湖"\nc-4,成都\n'.encode()
    )
    headers, rows = rows_of(path)
    assert headers == ["会员ID", "城市"]  # the BOM is not part of the first header
    assert rows == [
        (2, {"会员ID": "c-1", "城市": "上海"}),
        (4, {"会员ID": "c-2", "城市": "北京"}),
        (6, {"会员ID": "c-3", "城市": "杭州\n西湖"}),
        (7, {"会员ID": "c-4", "城市": "成都"}),
    ]


def test_an_xlsx_with_empty_rows_keeps_the_rows_numbers(tmp_path: Path) -> None:
    path = xlsx(
        tmp_path / "customers.xlsx",
        ["customer_id", "city"], ["c-1", "上海"], [], [None, None], ["c-2", None], [], [7.0],
    )  # fmt: skip
    headers, rows = rows_of(path)
    assert headers == ["customer_id", "city"]
    # A row ends at its last cell with a value: the columns after it are absent.
    assert rows == [(2, {"customer_id": "c-1", "city": "上海"}),
                    (5, {"customer_id": "c-2"}),
                    (7, {"customer_id": 7})]  # fmt: skip


@pytest.mark.parametrize("suffix", [".csv", ".xlsx"])
def test_a_sheet_of_headers_alone_has_no_rows(tmp_path: Path, suffix: str) -> None:
    path = tmp_path / f"customers{suffix}"
    if suffix == ".csv":
        path.write_text("customer_id,city\n")
    else:
        xlsx(path, ["customer_id", "city"])
    assert rows_of(path) == (["customer_id", "city"], [])


def test_an_empty_csv_has_no_headers(tmp_path: Path) -> None:
    path = tmp_path / "customers.csv"
    path.write_bytes(b"")
    assert rows_of(path) == ([], [])


def test_a_workbook_that_understates_its_size_is_read_whole(tmp_path: Path) -> None:
    """Some exporters write a dimension of A1:A1 whatever the sheet holds."""
    book = Workbook()
    for line in (["customer_id"], ["c-1"], ["c-2"], ["c-3"]):
        book.worksheets[0].append(line)
    made = tmp_path / "made.xlsx"
    book.save(made)
    path = tmp_path / "customers.xlsx"
    with zipfile.ZipFile(made) as source, zipfile.ZipFile(path, "w") as target:
        for entry in source.infolist():
            data = source.read(entry)
            if entry.filename.startswith("xl/worksheets/"):
                assert b'<dimension ref="A1:A4"' in data
                data = data.replace(b'<dimension ref="A1:A4"', b'<dimension ref="A1:A1"')
            target.writestr(entry, data)
    assert [number for number, _cells in rows_of(path)[1]] == [2, 3, 4]


def test_a_csv_that_is_not_utf8_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "customers.csv"
    path.write_bytes("customer_id\n张三\n".encode("gb18030"))
    with pytest.raises(RowError, match="not a UTF-8 CSV file"):
        rows_of(path)


@pytest.mark.parametrize("content", [b"", b"not a zip", b"PK\x03\x04broken"])
def test_an_xlsx_that_is_no_workbook_is_refused(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "customers.xlsx"
    path.write_bytes(content)
    with pytest.raises(RowError, match=r"not a readable \.xlsx workbook"):
        rows_of(path)


def test_a_zip_without_a_workbook_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "customers.xlsx"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("hello.txt", "hello")
    with pytest.raises(RowError, match=r"not a readable \.xlsx workbook"):
        rows_of(path)


def test_a_workbook_whose_shared_strings_unpack_too_large_is_refused(tmp_path: Path) -> None:
    """A few KB that unpack to more than the cap are refused before openpyxl reads them."""
    made = xlsx(tmp_path / "made.xlsx", ["customer_id"], ["c-1"])
    path = tmp_path / "customers.xlsx"
    with (
        zipfile.ZipFile(made) as source,
        zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as target,
    ):
        for entry in source.infolist():
            target.writestr(entry, source.read(entry))
        target.writestr("xl/sharedStrings.xml", b" " * (MAX_WHOLE_PARTS_BYTES + 1))
    assert path.stat().st_size < 100_000
    with pytest.raises(RowError, match="shared strings and styles take 32 MB unpacked"):
        rows_of(path)


def test_another_kind_of_file_is_refused(tmp_path: Path) -> None:
    with pytest.raises(RowError, match=r"expected a \.csv or \.xlsx file"):
        open_sheet(tmp_path / "customers.numbers")
