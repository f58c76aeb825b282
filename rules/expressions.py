"""Rule conditions: CEL, compiled once at load, evaluated per event.

CEL (the Common Expression Language) is not Turing-complete and cannot reach
anything but the variables it is given, which is why merchants may write it.
The binding is ``common-expression-language``, a wrapper of the Rust
interpreter: evaluation takes microseconds, against tens for the pure-Python
implementations.

The interpreter has no static type checker, so :meth:`Condition.check` runs the
expression against typed sample documents (an empty profile, an event of each
type the rule listens to): a misspelt field or an operator applied to the wrong
types fails there, before the rule is ever loaded.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any, Final

import cel

from rules.activation import AMOUNT, CENTS_SUFFIX, MONEY_NAMES
from rules.flat_paths import FLATTENED, flatten
from schemas.triggers import Scalar

Activation = Mapping[str, Any]

# profile.x.y / event.data.z: the paths a condition reads, for the trigger's reason.
_PATH: Final = re.compile(r"\b(?:profile|event)(?:\.[A-Za-z_][A-Za-z0-9_]*)+")
# Each use of a variable, the fields it goes down through, and whether a call follows.
_USE: Final = re.compile(r"\b(profile|event|now|cents)\b((?:\.[A-Za-z_][A-Za-z0-9_]*)*)\s*(\()?")
# cents() is called with an amount written out: every call, and those with a literal.
_CENTS_CALL: Final = re.compile(r"\bcents\s*\(")
_CENTS_LITERAL: Final = re.compile(r"""\bcents\s*\(\s*(['"])([^'"]*)\1\s*\)""")
ALL: Final = frozenset({"*"})
_UNDEFINED: Final = re.compile(r"Undefined variable or function: '(\w+)'")


class ConditionError(ValueError):
    """A condition that does not compile, or fails on a sample document."""


class Condition:
    __slots__ = ("_flat", "_passed", "_paths", "_program", "_shape", "always", "reads", "text")

    def __init__(self, text: str) -> None:
        self.text = text.strip()
        try:
            self._program = cel.compile(self.text)
        except ValueError as exc:
            raise ConditionError(f"CEL syntax error: {_first_line(exc)}") from exc
        _check_amounts(self.text)
        self._paths = tuple(dict.fromkeys(_PATH.findall(self.text)))
        self.always = self.text == "true"
        # What the condition reads of each variable, two levels down (profile.counters.orders):
        # handing CEL only that is what keeps an evaluation in microseconds, as it converts
        # every value it is given.
        self._shape: dict[str, Fields] = {}
        for variable, chain, call in _USE.findall(self.text):
            _read(self._shape, variable, chain.split(".")[1:], called=bool(call))
        self.reads: dict[str, frozenset[str]] = {
            variable: fields if fields == ALL else frozenset(fields)
            for variable, fields in self._shape.items()
        }
        # Faster still: the values read as flat variables (rules/flat_paths.py), the
        # others (now, cents) passed as they are.
        self._flat = flatten(self.text) if not self.always else None
        self._passed = tuple(name for name in self._shape if name not in FLATTENED)
        if self._flat is not None:
            try:
                self._program = cel.compile(self._flat.text)
            except ValueError:
                self._flat = None

    def paths(self, variable: str) -> dict[str, frozenset[str]] | None:
        """What the condition reads of ``variable``, field by field: of each field, the
        fields below it that it reads (ALL: the field whole). None: the variable whole."""
        shape = self._shape.get(variable)
        if shape is None:
            return {}
        return dict(shape) if isinstance(shape, dict) else None

    def _handed(self, activation: Activation) -> dict[str, Any]:
        """What CEL is handed: the flat variables, or each variable trimmed to what is read."""
        if self._flat is not None:
            return self._flat.values(activation, self._passed)
        return {
            variable: trim(activation.get(variable), fields)
            for variable, fields in self._shape.items()
        }

    def _explain(self, exc: Exception, activation: Activation) -> str:
        undefined = _UNDEFINED.search(str(exc)) if isinstance(exc, RuntimeError) else None
        if undefined and self._flat is not None:
            # A flat variable left out is a path the document lacks: said as a missing
            # key would be, by the first name it lacks.
            field = self._flat.missing(activation, undefined.group(1))
            if field is not None:
                return _explain(KeyError(field))
        return _explain(exc)

    def holds(self, activation: Activation) -> bool:
        """True only for a boolean true; raises ConditionError if it cannot be evaluated."""
        if self.always:
            return True
        try:
            result = self._program.execute(self._handed(activation))
        except (KeyError, TypeError, RuntimeError, ValueError) as exc:
            raise ConditionError(self._explain(exc, activation)) from exc
        if not isinstance(result, bool):
            raise ConditionError(f"must be true or false, gives {type(result).__name__}")
        return result

    def check(self, sample: Activation) -> None:
        self.holds(sample)

    def evaluate(self, activation: Activation) -> Any:  # noqa: ANN401 -- CEL gives any value
        try:
            return self._program.execute(self._handed(activation))
        except (KeyError, TypeError, RuntimeError, ValueError) as exc:
            raise ConditionError(self._explain(exc, activation)) from exc

    def values_read(self, activation: Activation) -> dict[str, Scalar]:
        """The document values the condition names, for a reason a person can read."""
        values: dict[str, Scalar] = {}
        for path in self._paths:
            head, *parts = path.split(".")
            value: Any = activation.get(head)
            for part in parts:
                value = value.get(part) if isinstance(value, Mapping) else None
            values[path] = _scalar(value)
        return values


# Of a variable: ALL, or each field read and, of that field, ALL or the fields read.
Fields = frozenset[str] | dict[str, frozenset[str]]


def trim(value: Any, fields: Fields | None) -> Any:  # noqa: ANN401 -- any document value
    """Of ``value``, what a shape of fields read keeps (None or ALL: the whole of it)."""
    if not isinstance(fields, dict) or not isinstance(value, Mapping):
        return value
    kept: dict[str, Any] = {}
    for name, inner in fields.items():
        if name not in value:
            continue
        part = value[name]
        if inner == ALL or not isinstance(part, Mapping):
            kept[name] = part
        else:
            kept[name] = {key: part[key] for key in inner if key in part}
    return kept


def read_together(conditions: Iterable[Condition], variable: str) -> Fields | None:
    """What any of ``conditions`` reads of ``variable``, as one shape: None when one of
    them reads it whole, an empty dict when none reads it."""
    together: dict[str, frozenset[str]] = {}
    for condition in conditions:
        paths = condition.paths(variable)
        if paths is None:
            return None
        for name, inner in paths.items():
            seen = together.get(name, frozenset())
            together[name] = ALL if ALL in (inner, seen) else seen | inner
    return together


def _read(shape: dict[str, Fields], variable: str, chain: list[str], *, called: bool) -> None:
    """Note one use: ``profile.counters.orders`` reads counters.orders; ``profile.counters``
    alone, or with a call after its last name (``profile.facts.size()``), reads it whole."""
    if called and chain:
        chain = chain[:-1]  # the last name is a method, not a field
    known = shape.get(variable)
    if not chain or known == ALL:
        shape[variable] = ALL
        return
    fields: dict[str, frozenset[str]] = known if isinstance(known, dict) else {}
    field, below = chain[0], chain[1:2]
    seen = fields.get(field, frozenset())
    fields[field] = ALL if not below or seen == ALL else seen | {below[0]}
    shape[variable] = fields


def _check_amounts(text: str) -> None:
    """cents() with anything but an amount written out would fail on every event, and
    only then: refuse it when the condition loads."""
    amounts = [amount for _, amount in _CENTS_LITERAL.findall(text)]
    bad = [amount for amount in amounts if not AMOUNT.match(amount)]
    if bad or len(amounts) != len(_CENTS_CALL.findall(text)):
        shown = f", not {bad[0]!r}" if bad else ""
        raise ConditionError(
            "cents() takes an amount in the major unit written out, up to 12 digits and "
            f"2 decimals, such as cents('100.00'){shown}"
        )


def _scalar(value: Any) -> Scalar:  # noqa: ANN401 -- any document value
    if value is None or isinstance(value, str | int | float | bool):
        return value
    if isinstance(value, datetime):
        return value.isoformat().replace("+00:00", "Z")
    return str(value)


def _first_line(exc: Exception) -> str:
    text = str(exc)
    if "Syntax error:" in text:
        text = text.split("Syntax error:", 1)[1]
    return text.strip().splitlines()[0]


def _explain(exc: Exception) -> str:
    if isinstance(exc, KeyError):
        name = exc.args[0]
        if name in MONEY_NAMES:
            return (
                f"unknown field {name!r}: money reads in exact cents, as "
                f"{name}{CENTS_SUFFIX} (cents('100.00') is 10000)"
            )
        return f"unknown field {name!r}"
    text = str(exc)
    undefined = _UNDEFINED.search(text)
    if undefined:
        return (
            f"unknown variable {undefined.group(1)!r} "
            "(conditions see event, profile, now and cents())"
        )
    if isinstance(exc, TypeError):
        return f"type error: {text.split('. ', 1)[0]}"
    return text.splitlines()[0] if text else type(exc).__name__
