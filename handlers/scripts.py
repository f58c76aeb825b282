"""Redis Function libraries and their function names, in one place.

Each library and each of its functions is named with a digest of its source
(``crm_emit_3f9a…``), so that workers of two versions can share one Redis during a
rolling deploy: each calls the code it was built with, and loading one version never
replaces the other's. ``rules backtest`` loads the same names as the workers of its
own version, with the same code.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from importlib.resources import files
from typing import Final

_LUA = files("handlers") / "lua"
_HEADER = re.compile(r"^#!lua name=(\w+)")
# Both forms: register_function('name', f) and register_function{function_name = 'name', …}.
_REGISTERED = re.compile(r"(register_function\(|function_name = )'(\w+)'")


@dataclass(frozen=True, slots=True)
class Library:
    name: str  # as loaded, with its version
    source: str  # as loaded: the file with the versioned names
    version: str

    @classmethod
    def of(cls, file_name: str) -> Library:
        return cls.from_text((_LUA / file_name).read_text(encoding="utf-8"), file_name)

    @classmethod
    def from_text(cls, text: str, file_name: str = "a library") -> Library:
        version = hashlib.sha256(text.encode()).hexdigest()[:10]
        header = _HEADER.match(text)
        if header is None:
            raise ValueError(f"{file_name} does not start with a library header")
        versioned = _HEADER.sub(f"#!lua name={header.group(1)}_{version}", text, count=1)
        versioned = _REGISTERED.sub(
            lambda match: f"{match.group(1)}'{match.group(2)}_{version}'", versioned
        )
        return cls(f"{header.group(1)}_{version}", versioned, version)

    def function(self, name: str) -> str:
        """The name a function of this library is called by (raises if it has none such)."""
        versioned = f"{name}_{self.version}"
        if f"'{versioned}'" not in self.source:
            raise ValueError(f"{self.name} has no function {name}")
        return versioned


PROFILE_LIBRARY: Final = Library.of("profile.lua")
APPLY_BATCH: Final = PROFILE_LIBRARY.function("crm_apply_batch")
DETACH: Final = PROFILE_LIBRARY.function("crm_detach")
FORGET_DETACHED: Final = PROFILE_LIBRARY.function("crm_forget_detached")
READ_PROFILES: Final = PROFILE_LIBRARY.function("crm_read_profiles")

TRIGGER_LIBRARY: Final = Library.of("triggers.lua")
EMIT: Final = TRIGGER_LIBRARY.function("crm_emit")
RELEASE: Final = TRIGGER_LIBRARY.function("crm_release")
GOALS: Final = TRIGGER_LIBRARY.function("crm_goals")
ERASE: Final = TRIGGER_LIBRARY.function("crm_erase")
INDEX_PHONES: Final = TRIGGER_LIBRARY.function("crm_phones")

TIMER_LIBRARY: Final = Library.of("timers.lua")
ARM: Final = TIMER_LIBRARY.function("crm_arm")
DUE: Final = TIMER_LIBRARY.function("crm_due")
DONE: Final = TIMER_LIBRARY.function("crm_done")
LET_GO: Final = TIMER_LIBRARY.function("crm_let_go")

SEGMENT_LIBRARY: Final = Library.of("segments.lua")
SEGMENTS: Final = SEGMENT_LIBRARY.function("crm_segments")
