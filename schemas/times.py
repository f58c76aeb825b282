"""Times as the engine counts them: integer milliseconds since the epoch."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Final

EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)
_MS: Final = timedelta(milliseconds=1)


def epoch_ms(moment: datetime) -> int:
    """``moment`` (aware) in milliseconds since the epoch, rounded down."""
    return (moment - EPOCH) // _MS
