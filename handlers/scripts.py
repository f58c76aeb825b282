"""Redis Function libraries and their function names, in one place."""

from __future__ import annotations

from importlib.resources import files
from typing import Final

_LUA = files("handlers") / "lua"

PROFILE_LIBRARY: Final = (_LUA / "profile.lua").read_text(encoding="utf-8")
APPLY_BATCH: Final = "crm_apply_batch"
DETACH: Final = "crm_detach"
FORGET_DETACHED: Final = "crm_forget_detached"
READ_PROFILES: Final = "crm_read_profiles"

TRIGGER_LIBRARY: Final = (_LUA / "triggers.lua").read_text(encoding="utf-8")
EMIT: Final = "crm_emit"
ARM: Final = "crm_arm"
DUE: Final = "crm_due"
RELEASE: Final = "crm_release"
GOALS: Final = "crm_goals"

SEGMENT_LIBRARY: Final = (_LUA / "segments.lua").read_text(encoding="utf-8")
SEGMENTS: Final = "crm_segments"
