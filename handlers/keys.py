"""Every Redis key the engine writes, built in one place.

All keys start with the configured prefix, so that several deployments (or
tests) can share one Redis. Keys of one customer will share one hash tag
``{shop:customer}`` so that a Redis Cluster keeps them in one slot.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Keys:
    prefix: str

    @property
    def flow(self) -> str:
        """Hash: event stream → events the workers have taken in (a demo and smoke signal)."""
        return f"{self.prefix}:flow"

    def pattern(self) -> str:
        """Matches every key of this prefix (tests and `replay` wipe with it, never the worker)."""
        return f"{self.prefix}:*"
