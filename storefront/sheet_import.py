"""A customer sheet checked, and sent, as it is read.

Each row becomes its event and is checked as the worker will check it; a bad row is noted
by number, a good event handed on at once. Nothing is gathered: what is held is the row
being read and the events the producer has not yet handed to the broker (SEND_QUEUE at
most), however long the sheet. Holding every event instead cost about 4 KB a row (each
encoded event keeps the allocation it was built in), 1.7 GB for a 400,000-row sheet.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Final

from crmstream.settings import Settings
from schemas.decode import Decoder
from schemas.errors import InvalidEventError
from schemas.events import Envelope
from storefront.importer import Importer
from storefront.publisher import Publisher, encode
from storefront.sheets import Row, RowError

# Events waiting for the broker, at most: the producer's queue is bounded to this, and a
# full queue makes the reader wait while the broker drains it.
SEND_QUEUE: Final = 5_000
# A report lists this many bad rows and counts the rest: a sheet that is wrong in every
# row gets a page that can be read, not one item per row.
LISTED_BAD_ROWS: Final = 1_000


class TooManyRowsError(RowError):
    """A sheet longer than the cap it is read under."""

    def __init__(self, limit: int) -> None:
        super().__init__(f"the sheet has more than {limit:,} rows; split it")
        self.limit = limit


@dataclass(slots=True)
class SheetReport:
    good: int = 0
    bad_rows: int = 0
    bad: list[tuple[int, str]] = field(default_factory=list)  # (row, reason), the first ones
    # Told of every bad row as it is found (the command line prints them all).
    on_bad: Callable[[int, str], object] | None = None

    def note_bad(self, number: int, reason: str) -> None:
        self.bad_rows += 1
        if len(self.bad) < LISTED_BAD_ROWS:
            self.bad.append((number, reason))
        if self.on_bad is not None:
            self.on_bad(number, reason)


@dataclass(frozen=True, slots=True)
class SheetCheck:
    """Rows to checked events, under an optional cap on how many rows a sheet may have."""

    importer: Importer
    decoder: Decoder
    max_rows: int | None = None

    @classmethod
    def of(cls, settings: Settings, importer: Importer, max_rows: int | None = None) -> SheetCheck:
        decoder = Decoder(
            max_bytes=settings.ingest.max_event_bytes,
            future_skew=timedelta(seconds=settings.ingest.future_skew_s),
        )
        return cls(importer, decoder, max_rows)

    def events(self, rows: Iterable[Row], report: SheetReport) -> Iterator[tuple[Envelope, bytes]]:
        """The good rows' events, as each is read (the event, and the bytes to send)."""
        not_after = self.decoder.not_after(datetime.now(UTC))
        for count, row in enumerate(rows, 1):
            if self.max_rows is not None and count > self.max_rows:
                raise TooManyRowsError(self.max_rows)
            try:
                value = encode(self.importer.event(row))
                valid = self.decoder.require(value, not_after)
            except (RowError, InvalidEventError) as exc:
                report.note_bad(row.number, str(exc))
                continue
            report.good += 1
            yield valid, value


def refuse_beyond(rows: Iterable[Row], limit: int) -> None:
    """Raise TooManyRowsError as soon as ``rows`` pass ``limit``: a sheet is measured before
    any of it is sent, so that a refused one sends nothing."""
    for count, _row in enumerate(rows, 1):
        if count > limit:
            raise TooManyRowsError(limit)


def sheet_publisher(settings: Settings) -> Publisher:
    """A publisher whose queue holds SEND_QUEUE events at most."""
    return Publisher(settings, producer={"queue.buffering.max.messages": SEND_QUEUE})
