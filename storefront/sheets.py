"""A customer sheet (.csv or .xlsx) read one row at a time, whatever its length.

Rows carry the number the merchant sees in a spreadsheet program (the header is row 1),
empty rows included in the count and skipped. Nothing but the row being read is held,
apart from what an .xlsx keeps whole by design (its shared strings and styles), which is
bounded before the workbook is opened.
"""

from __future__ import annotations

import csv
import zipfile
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any, Final, Self
from xml.etree.ElementTree import ParseError

from openpyxl.utils.exceptions import InvalidFileException

from crmstream.errors import EventError

SUFFIXES: Final = (".csv", ".xlsx", ".xlsm")
# An .xlsx is a zip: its worksheets are read as they stream, its other parts (shared
# strings, styles…) whole, into about three times their size in memory. 32 MB of them is
# a million distinct short texts, far more than a sheet the upload's byte cap admits.
MAX_WHOLE_PARTS_BYTES: Final = 32 * 1024 * 1024
# What a file that is no workbook, or a damaged one, raises from inside openpyxl.
_BROKEN_WORKBOOK: Final = (zipfile.BadZipFile, InvalidFileException, ParseError, KeyError,
                           ValueError, TypeError, IndexError, EOFError)  # fmt: skip


class RowError(EventError):
    """One row that cannot become an event, or a file that cannot be read as a sheet."""


@dataclass(frozen=True, slots=True)
class Row:
    number: int  # as the merchant sees it in the spreadsheet: the header is row 1
    cells: Mapping[str, Any]


class Sheet:
    """An open sheet: its headers, then its rows, one at a time and once. Close it (or
    use it as a context manager) to let go of the file."""

    def __init__(
        self, headers: list[str], lines: Iterator[Iterable[Any]], close: Callable[[], object]
    ) -> None:
        self.headers = headers
        self._lines = lines
        self._close = close

    def rows(self) -> Iterator[Row]:
        """Every row that holds something, numbered from 2."""
        for number, values in enumerate(self._lines, 2):
            cells = tuple(values)
            if all(value is None or value == "" for value in cells):
                continue
            yield Row(number, dict(zip(self.headers, cells, strict=False)))

    def close(self) -> None:
        self._close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def open_sheet(path: Path) -> Sheet:
    """A .csv (UTF-8, with or without BOM) or .xlsx file, opened for reading."""
    suffix = path.suffix.lower()
    if suffix == ".csv":
        return _csv_sheet(path)
    if suffix in SUFFIXES:
        return _xlsx_sheet(path)
    raise RowError(f"{path.name}: expected a .csv or .xlsx file")


def _csv_sheet(path: Path) -> Sheet:
    handle = path.open(newline="", encoding="utf-8-sig")
    # csv.reader, not DictReader: a blank line is a row of its own, as a spreadsheet
    # program shows it, so the numbers of the rows after it stay right.
    records = csv.reader(handle)
    try:
        first = next(records, [])
    except (csv.Error, UnicodeDecodeError) as exc:
        handle.close()
        raise RowError(f"not a UTF-8 CSV file: {exc}") from exc
    return Sheet(first, _csv_records(records), handle.close)


def _csv_records(records: Iterator[list[str]]) -> Iterator[list[str]]:
    try:
        yield from records
    except (csv.Error, UnicodeDecodeError) as exc:
        raise RowError(f"not a UTF-8 CSV file: {exc}") from exc


def _xlsx_sheet(path: Path) -> Sheet:
    from openpyxl import load_workbook  # noqa: PLC0415 -- only Excel imports pay for it

    _check_whole_parts(path)
    try:
        book = load_workbook(path, read_only=True, data_only=True)
    except _BROKEN_WORKBOOK as exc:
        raise RowError(f"not a readable .xlsx workbook ({type(exc).__name__})") from exc
    try:
        sheet = book.worksheets[0]
        # A workbook's own account of its size can be wrong (some exporters write A1:A1):
        # read every row there is, not just as many as it claims.
        sheet.reset_dimensions()
        lines = sheet.iter_rows(values_only=True)
        first = next(lines, None) or ()
    except _BROKEN_WORKBOOK as exc:
        book.close()
        raise RowError(f"not a readable .xlsx workbook ({type(exc).__name__})") from exc
    headers = [str(cell).strip() if cell is not None else "" for cell in first]
    return Sheet(headers, _xlsx_lines(lines), book.close)


def _xlsx_lines(lines: Iterator[tuple[Any, ...]]) -> Iterator[tuple[Any, ...]]:
    try:
        yield from lines
    except _BROKEN_WORKBOOK as exc:
        raise RowError(f"not a readable .xlsx workbook ({type(exc).__name__})") from exc


def _check_whole_parts(path: Path) -> None:
    """Refuse a workbook whose parts read whole would take more memory than any real
    customer sheet needs (sizes as the archive declares them, which reading enforces)."""
    try:
        with zipfile.ZipFile(path) as archive:
            whole = sum(
                entry.file_size
                for entry in archive.infolist()
                if not entry.filename.startswith("xl/worksheets/")
            )
    except (zipfile.BadZipFile, OSError, ValueError) as exc:
        raise RowError(f"not a readable .xlsx workbook ({type(exc).__name__})") from exc
    if whole > MAX_WHOLE_PARTS_BYTES:
        raise RowError(
            f"the workbook's shared strings and styles take {whole // 2**20} MB unpacked "
            f"(at most {MAX_WHOLE_PARTS_BYTES // 2**20} MB): save it as CSV, or split it"
        )
