"""Where an event came from, for the log lines of the stages that handle it.

The ingest step says which batch is being handled; a stage that logs a problem with
an event asks :func:`where` for its ``topic[partition]@offset``. The lookup table
is built only when a problem is logged, never per event.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from contextvars import ContextVar
from typing import Final

# The batch being handled: its events' ids and their positions, aligned, lazily.
_BATCH: Final[ContextVar[tuple[Sequence[str], Callable[[int], str]] | None]] = ContextVar(
    "crmstream_batch", default=None
)


def handling(ids: Sequence[str], position_of: Callable[[int], str]) -> None:
    """From here on (in this task), ``ids[n]`` came from ``position_of(n)``."""
    _BATCH.set((ids, position_of))


def where(event_id: str) -> str:
    """``topic[partition]@offset`` of an event of the batch being handled, or "-"."""
    batch = _BATCH.get()
    if batch is None:
        return "-"
    ids, position_of = batch
    for n, candidate in enumerate(ids):
        if candidate == event_id:
            return position_of(n)
    return "-"
