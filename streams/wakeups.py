"""Waiting for a nudge from this worker, or for the next poll, whichever comes first."""

from __future__ import annotations

import asyncio
import contextlib


async def nudged_or_after(nudge: asyncio.Event, seconds: float) -> None:
    """Until ``nudge`` is set or ``seconds`` have passed; then ``nudge`` is taken, so that
    the next wait waits for the next nudge. A nudge set meanwhile is not lost: it ends the
    next wait at once."""
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(nudge.wait(), max(0.0, seconds))
    nudge.clear()
