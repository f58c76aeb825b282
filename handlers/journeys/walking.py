"""What every customer's share of a journey walk (handlers/journeys/walk.py) reads alike:
the journeys, where instances are kept, and which version of a journey an instance is in."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

from handlers.journeys.store import JourneyStore
from rules.journey_loader import CompiledJourney, JourneySet
from rules.journey_machine import Position
from rules.shop_config import ShopConfig


@dataclass(frozen=True)
class Walking:
    """What every customer's walk shares: the journeys, where they are kept, the clock."""

    journeys: JourneySet
    store: JourneyStore
    config_of: Callable[[str], ShopConfig]
    running: Callable[[str], frozenset[str]]  # the journeys a shop has on and this worker has
    daily_cap: int
    sections: frozenset[str]  # what of the profile the journeys read
    # Versions no longer loaded that instances are still in, as kept (JourneyStore.archive).
    versions: Mapping[tuple[str, int], CompiledJourney]

    def version_of(self, name: str, position: Position | None) -> CompiledJourney | None:
        """The version of the journey an instance entered (the loaded one, or one kept),
        or None if it is known nowhere."""
        if position is None:
            return None
        journey = self.journeys.by_id.get(name)
        if journey is not None and journey.journey.version == position.version:
            return journey
        return self.versions.get((name, position.version))

    def replaced(self, name: str, position: Position) -> bool:
        """A newer version says those still in older ones leave (``on_new_version: exit``)."""
        journey = self.journeys.by_id.get(name)
        return (
            journey is not None
            and journey.journey.version > position.version
            and journey.journey.on_new_version == "exit"
        )
