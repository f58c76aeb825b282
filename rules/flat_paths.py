"""Conditions rewritten to read flat variables: ``profile.counters.orders`` becomes
``profile__counters__orders``.

The CEL binding converts every value it is handed into its own, and a map costs
microseconds a level: a condition that reads three fields of a nested profile spends
three times as long converting it as evaluating. Handed the few values it reads as
variables of their own, the same condition runs several times faster.

A path is flattened two names deep, or less where it is shorter: what follows stays as
written (``profile__facts__consents.sms``, ``profile__cart__items.exists(i, …)``).
Conditions the rewrite cannot be sure of keep the nested form: those that name
``profile`` or ``event`` whole, use ``has()`` (it selects a field of a map), or hold raw
or triple-quoted strings (left unparsed here).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

FLATTENED: Final = ("profile", "event")
_DEPTH: Final = 2
# Quoted strings, with their escapes: names inside them are text, not paths.
_STRING: Final = re.compile(r""""(?:\\.|[^"\\\n])*"|'(?:\\.|[^'\\\n])*'""")
_UNSURE: Final = re.compile(r"""\bhas\s*\(|\b[rRbB]{1,2}["']|\"\"\"|'''""")
# A path down from one of FLATTENED, not itself a field of something else, and whether a
# call follows its last name (a method, not a field).
_PATH: Final = re.compile(r"(?<![.\w])(profile|event)((?:\.[A-Za-z_][A-Za-z0-9_]*)+)(\s*\()?")
_WHOLE: Final = re.compile(r"(?<![.\w])(?:profile|event)\b")


@dataclass(frozen=True, slots=True)
class FlatPath:
    name: str  # the variable the condition reads it as
    variable: str  # profile or event
    fields: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Flat:
    """A condition's text with flat variables, and where each comes from."""

    text: str
    paths: tuple[FlatPath, ...]

    def values(self, activation: Mapping[str, Any], passed: tuple[str, ...]) -> dict[str, Any]:
        """The flat variables from a nested activation, and the ``passed`` ones as they
        are. A path missing from it is left out: CEL then says the variable is undefined,
        as it would say a key is missing."""
        values = {name: activation[name] for name in passed if name in activation}
        for path in self.paths:
            value = activation.get(path.variable)
            try:
                for field in path.fields:
                    value = value[field]  # type: ignore[index]  # any document value
            except (KeyError, TypeError, IndexError):
                continue
            values[path.name] = value
        return values

    def missing(self, activation: Mapping[str, Any], name: str) -> str | None:
        """The first name of flat variable ``name``'s path that ``activation`` lacks."""
        for path in self.paths:
            if path.name != name:
                continue
            value: Any = activation.get(path.variable)
            for field in path.fields:
                if not isinstance(value, Mapping) or field not in value:
                    return field
                value = value[field]
        return None


def flatten(text: str) -> Flat | None:
    """``text`` with its paths as flat variables; None where it is safer left nested."""
    if _UNSURE.search(text):
        return None
    pieces: list[str] = []
    paths: dict[str, FlatPath] = {}
    at = 0
    for string in _STRING.finditer(text):
        code = _rewrite(text[at : string.start()], paths)
        if code is None:
            return None
        pieces += [code, string.group()]
        at = string.end()
    code = _rewrite(text[at:], paths)
    if code is None or not paths:
        return None
    pieces.append(code)
    return Flat("".join(pieces), tuple(paths.values()))


def _rewrite(code: str, paths: dict[str, FlatPath]) -> str | None:
    def flat(match: re.Match[str]) -> str:
        variable, chain, call = match.group(1), match.group(2), match.group(3) or ""
        names = chain.split(".")[1:]
        fields = names[:-1] if call else names
        depth = min(_DEPTH, len(fields))
        if depth == 0:
            return match.group()  # the variable whole, with a method: left, and refused below
        name = "__".join([variable, *fields[:depth]])
        paths.setdefault(name, FlatPath(name, variable, tuple(fields[:depth])))
        return name + "".join("." + rest for rest in names[depth:]) + call

    rewritten = _PATH.sub(flat, code)
    return None if _WHOLE.search(rewritten) else rewritten
