"""The rule pack, journeys, segments and shop configurations shipped in this package, and the folder
a deployment's settings choose instead.

The settings leave a folder unset to mean the shipped one: where that lies is this
package's business (it is installed with it), not the settings'.
"""

from __future__ import annotations

from pathlib import Path
from typing import Final

from crmstream.settings import ProfileSettings, SegmentSettings, TriggerSettings

_HERE: Final = Path(__file__).resolve().parent
PACKAGED_RULES: Final = _HERE / "pack"
PACKAGED_JOURNEYS: Final = _HERE / "journeys"
PACKAGED_SEGMENTS: Final = _HERE / "segments"
PACKAGED_SHOP_CONFIGS: Final = _HERE / "shops"


def rules_folder(triggers: TriggerSettings) -> Path:
    """CRMSTREAM_TRIGGERS_RULES_DIR, else the shipped rule pack."""
    return PACKAGED_RULES if triggers.rules_dir is None else triggers.rules_dir


def journeys_folder(triggers: TriggerSettings) -> Path:
    """CRMSTREAM_TRIGGERS_JOURNEYS_DIR, else the shipped journeys."""
    return PACKAGED_JOURNEYS if triggers.journeys_dir is None else triggers.journeys_dir


def segments_folder(segments: SegmentSettings) -> Path:
    """CRMSTREAM_SEGMENTS_SEGMENTS_DIR, else the shipped segments."""
    return PACKAGED_SEGMENTS if segments.segments_dir is None else segments.segments_dir


def shop_configs_folder(profiles: ProfileSettings) -> Path:
    """CRMSTREAM_PROFILES_SHOP_CONFIG_DIR, else the shipped default.yaml alone."""
    return PACKAGED_SHOP_CONFIGS if profiles.shop_config_dir is None else profiles.shop_config_dir
