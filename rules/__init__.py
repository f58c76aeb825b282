"""The rule and segment engine; pure computation, no I/O."""

from rules.folders import (
    PACKAGED_JOURNEYS,
    PACKAGED_RULES,
    PACKAGED_SEGMENTS,
    PACKAGED_SHOP_CONFIGS,
)

__all__ = ["PACKAGED_JOURNEYS", "PACKAGED_RULES", "PACKAGED_SEGMENTS", "PACKAGED_SHOP_CONFIGS"]
