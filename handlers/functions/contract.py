"""The contract between Python and the Redis Functions, written once, on this side.

A Function call is a frozen dataclass deriving from :class:`Call`. Its fields, in order,
are the call's keys (their metadata ``KEY``: a key, or a dataclass of keys, each by its
field's name), its header arguments, and at most one run of items (``ITEMS``), each item
a frozen dataclass of scalars and keys of its own. What a call returns is another frozen
dataclass, its ``Reply``, whose fields may hold lists of records (frozen dataclasses
again).

Python lays a call out by its fields and reads a reply back by its fields. Lua does not
number them either: :func:`lua_layout` writes, for a call, its fields by name and kind,
and for a reply, its fields by name; the library's source starts with them
(handlers/functions/library.py), and shared.lua's ``read_call`` refuses a call whose
keys or arguments do not fit (a missing or extra argument is an error, not a zero).
Adding, dropping or reordering a field is therefore a change on one side only; the
round-trip test (tests/integration/test_function_contracts.py) runs every call on a real
Redis to hold the hand-written Lua to the names.

Scalars are ``int`` (sent as digits, read by Lua as a number), ``bool`` ("1" or "0", a
boolean in Lua), ``str`` and ``bytes`` (sent as they are).
"""

from __future__ import annotations

import dataclasses
import types
import typing
from collections.abc import Callable, Sequence
from enum import IntEnum, StrEnum
from typing import Any, ClassVar, Final, TypeAlias, TypeVar, get_args, get_origin, get_type_hints

from handlers.redis_client import Arg

_ROLE: Final = "contract_role"
_KIND: Final = {bool: "b", int: "n", str: "s", bytes: "s"}  # bool before int: it is one
R = TypeVar("R", bound="Reply")


# A field's role, as field metadata: ``x: str = field(metadata=KEY)`` is a key of the call
# (KEYS, in field order), not an argument; ``xs: Sequence[Item] = field(metadata=ITEMS)``
# the call's run of items, laid out after the header.
KEY: Final = {_ROLE: "key"}
ITEMS: Final = {_ROLE: "items"}


@dataclasses.dataclass(frozen=True, slots=True)
class Layout:
    """A record's fields by role: keys, then scalar arguments (name, Lua kind)."""

    keys: tuple[str, ...]
    args: tuple[tuple[str, str], ...]
    items: str | None = None  # the field holding the run of items
    item: Layout | None = None


_LAYOUTS: dict[type, Layout] = {}


def layout_of(cls: type) -> Layout:
    """``cls``'s fields by role (read once per class: a call lays itself out by it)."""
    known = _LAYOUTS.get(cls)
    if known is None:
        known = _LAYOUTS[cls] = _layout(cls)
    return known


def _layout(cls: type) -> Layout:
    hints = get_type_hints(cls)
    keys: list[str] = []
    args: list[tuple[str, str]] = []
    run: str | None = None
    item: Layout | None = None
    for field in dataclasses.fields(cls):
        role = field.metadata.get(_ROLE)
        if role == "key" and dataclasses.is_dataclass(hints[field.name]):
            # A family of keys (handlers/keys.py PartitionKeys): each key by its own name.
            keys += [key.name for key in dataclasses.fields(hints[field.name])]
        elif role == "key":
            keys.append(field.name)
        elif role == "items":
            if run is not None:
                raise TypeError(f"{cls.__name__} has two runs of items")
            run, item = field.name, layout_of(_item_type(hints[field.name]))
        else:
            args.append((field.name, _kind(hints[field.name], cls, field.name)))
    names = [*keys, *(name for name, _ in args)]
    if len(set(names)) != len(names):
        raise TypeError(f"{cls.__name__}: a key and an argument share a name: {names}")
    return Layout(tuple(keys), tuple(args), run, item)


def _kind(hint: Any, cls: type, name: str) -> str:  # noqa: ANN401 -- a type hint
    for scalar, kind in _KIND.items():
        if hint is scalar or (isinstance(hint, type) and issubclass(hint, scalar)):
            return kind
    raise TypeError(f"{cls.__name__}.{name}: {hint} is not a scalar a Function takes")


def _item_type(hint: Any) -> type:  # noqa: ANN401 -- a type hint
    (item,) = get_args(hint)
    if not dataclasses.is_dataclass(item) or not isinstance(item, type):
        raise TypeError(f"items must be a sequence of dataclasses, not {hint}")
    return item


class Call:
    """One Function call. Subclasses are frozen dataclasses; class variables name the
    Function (``FUNCTION``, as registered), its Lua callback (``LUA``), whether it writes
    (``READ_ONLY``) and what it returns (``REPLY``)."""

    FUNCTION: ClassVar[str]
    LUA: ClassVar[str]
    READ_ONLY: ClassVar[bool] = False
    REPLY: ClassVar[type[Reply] | None] = None

    def encode(self) -> tuple[list[str], list[Arg]]:
        """KEYS and ARGV: the call's keys, then each item's; the header, then each item's."""
        plan = _plan(type(self))
        keys = plan.keys(self)
        args = plan.args(self)
        if plan.items is not None and plan.item is not None:
            item = plan.item
            for entry in getattr(self, plan.items):
                if item.has_keys:
                    keys += item.keys(entry)
                args += item.args(entry)
        return keys, args

    def decode(self, raw: Any) -> Any:  # noqa: ANN401 -- a Redis reply, typed by REPLY
        return raw if self.REPLY is None else self.REPLY.decode(raw)


@dataclasses.dataclass(frozen=True, slots=True)
class _Plan:
    """How a record's keys and arguments are read off it, worked out once per class: a
    batch lays out a record per customer or candidate."""

    key_fields: tuple[tuple[str, bool], ...]  # name, and whether it is a family of keys
    arg_names: tuple[str, ...]
    flags: tuple[int, ...]  # positions of the booleans among the arguments
    items: str | None
    item: _Plan | None

    @property
    def has_keys(self) -> bool:
        return bool(self.key_fields)

    def keys(self, record: object) -> list[str]:
        keys: list[str] = []
        for name, family in self.key_fields:
            value = getattr(record, name)
            if family:
                keys += dataclasses.astuple(value)
            else:
                keys.append(value)
        return keys

    def args(self, record: object) -> list[Arg]:
        args: list[Arg] = [getattr(record, name) for name in self.arg_names]
        for at in self.flags:
            args[at] = "1" if args[at] else "0"
        return args


_PLANS: dict[type, _Plan] = {}


def _plan(cls: type) -> _Plan:
    known = _PLANS.get(cls)
    if known is None:
        layout, hints = layout_of(cls), get_type_hints(cls)
        family = {
            f.name: dataclasses.is_dataclass(hints[f.name])
            for f in dataclasses.fields(cls)
            if f.metadata.get(_ROLE) == "key"
        }
        item = _plan(_item_type(hints[layout.items])) if layout.items is not None else None
        known = _PLANS[cls] = _Plan(
            key_fields=tuple(family.items()),
            arg_names=tuple(name for name, _ in layout.args),
            flags=tuple(at for at, (_, kind) in enumerate(layout.args) if kind == "b"),
            items=layout.items,
            item=item,
        )
    return known


class Reply:
    """What a Function returns: a frozen dataclass, its fields in the order Lua's
    ``reply`` lays them out (by the names lua_layout writes)."""

    @classmethod
    def decode(cls: type[R], raw: Any) -> R:  # noqa: ANN401 -- a Redis reply
        decoders = _reply_decoders(cls)
        if not isinstance(raw, list):
            raise TypeError(f"{cls.__name__}: a reply is a list, not {raw!r}")
        if len(raw) != len(decoders):
            raise ValueError(f"{cls.__name__}: {len(raw)} values for {len(decoders)} fields")
        return cls(*(decode(value) for decode, value in zip(decoders, raw, strict=True)))


Decoder: TypeAlias = Callable[[Any], Any]
# Worked out once per class: a reply is decoded on every round trip, often with a value
# per event in it.
_DECODERS: dict[type, tuple[Decoder, ...]] = {}


def _reply_decoders(cls: type) -> tuple[Decoder, ...]:
    known = _DECODERS.get(cls)
    if known is None:
        hints = get_type_hints(cls)
        fields = dataclasses.fields(cls)
        known = _DECODERS[cls] = tuple(_decoder(hints[field.name]) for field in fields)
    return known


def _same(raw: Any) -> Any:  # noqa: ANN401 -- bytes as Redis gives them
    return raw


def _decoder(hint: Any) -> Decoder:  # noqa: ANN401, PLR0911 -- a type hint; one case each
    origin = get_origin(hint)
    if origin in (list, Sequence, typing.Sequence):
        (element,) = get_args(hint)
        each = _decoder(element)
        # Lists of bytes (hashes as HGETALL gives them) stay as Redis gave them.
        return _same if each is _same else lambda raw: [each(value) for value in raw]
    if origin in (types.UnionType, typing.Union):  # X | None: what Lua's false or nil gives
        inner = _decoder(get_args(hint)[0])
        return lambda raw: None if raw is None else inner(raw)
    if isinstance(hint, type) and issubclass(hint, Reply):
        return hint.decode
    if hint is bool:
        return lambda raw: raw in (1, b"1", "1")
    if isinstance(hint, type) and issubclass(hint, IntEnum | StrEnum):
        members = {_wire(member.value): member for member in hint}
        return lambda raw: members[raw if isinstance(raw, int) else _wire(raw)]
    if hint is int:
        return int
    if hint is str:
        return lambda raw: raw.decode() if isinstance(raw, bytes) else str(raw)
    if hint is bytes:
        return _same
    raise TypeError(f"a reply field cannot be {hint}")


def _wire(value: object) -> object:
    """A value as it comes back from Redis: integers as they are, text as bytes."""
    return (
        value
        if isinstance(value, int)
        else str(value).encode()
        if isinstance(value, str)
        else value
    )
