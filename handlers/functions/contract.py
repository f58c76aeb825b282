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
import re
import types
import typing
from collections.abc import Mapping, Sequence
from enum import Enum, IntEnum, StrEnum
from typing import Any, ClassVar, Final, TypeVar, get_args, get_origin, get_type_hints

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


def _arg(value: object) -> Arg:
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, int | str | bytes):
        return value
    raise TypeError(f"{value!r} is not a scalar a Function takes")


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
        layout = layout_of(type(self))
        keys = _keys_of(self)
        args = [_arg(getattr(self, name)) for name, _ in layout.args]
        if layout.items is not None and layout.item is not None:
            for entry in getattr(self, layout.items):
                keys += _keys_of(entry)
                args += [_arg(getattr(entry, name)) for name, _ in layout.item.args]
        return keys, args

    def decode(self, raw: Any) -> Any:  # noqa: ANN401 -- a Redis reply, typed by REPLY
        return raw if self.REPLY is None else self.REPLY.decode(raw)


def _keys_of(record: object) -> list[str]:
    keys: list[str] = []
    for field in dataclasses.fields(record):  # type: ignore[arg-type]  # calls are dataclasses
        if field.metadata.get(_ROLE) == "key":
            value = getattr(record, field.name)
            if dataclasses.is_dataclass(value) and not isinstance(value, type):
                keys += dataclasses.astuple(value)
            else:
                keys.append(value)
    return keys


class Reply:
    """What a Function returns: a frozen dataclass, its fields in the order Lua's
    ``reply`` lays them out (by the names lua_layout writes)."""

    @classmethod
    def decode(cls: type[R], raw: Any) -> R:  # noqa: ANN401 -- a Redis reply
        if not isinstance(raw, list):
            raise TypeError(f"{cls.__name__}: a reply is a list, not {raw!r}")
        hints = get_type_hints(cls)
        fields = dataclasses.fields(cls)  # type: ignore[arg-type]  # Reply subclasses are dataclasses
        if len(raw) != len(fields):
            raise ValueError(f"{cls.__name__}: {len(raw)} values for {len(fields)} fields")
        values = {f.name: _value(hints[f.name], v) for f, v in zip(fields, raw, strict=True)}
        return cls(**values)


def _value(hint: Any, raw: Any) -> Any:  # noqa: ANN401 -- a type hint and a Redis reply
    origin = get_origin(hint)
    if origin in (list, Sequence, typing.Sequence):
        (element,) = get_args(hint)
        return [_value(element, each) for each in raw]
    if origin in (types.UnionType, typing.Union):  # X | None: what Lua's false or nil gives
        return None if raw is None else _value(get_args(hint)[0], raw)
    if isinstance(hint, type) and issubclass(hint, Reply):
        return hint.decode(raw)
    return _scalar(hint, raw)


def _scalar(hint: Any, raw: Any) -> Any:  # noqa: ANN401 -- a type hint and a Redis reply
    if hint is bool:
        return raw in (1, b"1", "1")
    if hint is int or (isinstance(hint, type) and issubclass(hint, IntEnum)):
        return hint(int(raw))
    if isinstance(hint, type) and issubclass(hint, StrEnum):
        return hint(raw.decode() if isinstance(raw, bytes) else raw)
    if hint is str:
        return raw.decode() if isinstance(raw, bytes) else str(raw)
    if hint is bytes:
        return raw if isinstance(raw, bytes) else str(raw).encode()
    raise TypeError(f"a reply field cannot be {hint}")


def lua_name(name: str) -> str:
    """A Python class or constant name as a Lua table name: EmitReply → EMIT_REPLY."""
    return re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", name).upper()


def _lua_string(value: str | bytes) -> str:
    data = value.encode() if isinstance(value, str) else value
    plain = "".join(chr(b) if 32 <= b < 127 and b not in b"'\\" else f"\\{b:03d}" for b in data)
    return f"'{plain}'"


def _lua_fields(layout: Layout) -> str:
    keys = ", ".join(f"'{name}'" for name in layout.keys)
    args = ", ".join(f"{{'{name}', '{kind}'}}" for name, kind in layout.args)
    return (
        f"keys = {{{keys}}}, args = {{{args}}}, "
        f"key_count = {len(layout.keys)}, arg_count = {len(layout.args)}"
    )


def lua_layout(call: type[Call]) -> str:
    """The Lua table shared.lua's ``read_call`` reads ``call`` by, and its reply's. All of
    it is written out here: a library's code runs without the standard functions when
    Redis loads it."""
    layout = layout_of(call)
    item = f", item = {{{_lua_fields(layout.item)}}}" if layout.item is not None else ""
    lines = [f"local {lua_name(call.__name__)} = {{name = '{call.FUNCTION}', "
             f"{_lua_fields(layout)}{item}}}"]  # fmt: skip
    if call.REPLY is not None:
        lines += lua_reply_layout(call.REPLY)
    return "\n".join(lines)


def lua_reply_layout(reply: type[Reply]) -> list[str]:
    """The reply's fields by name, and those of the records it holds, for ``reply``."""
    hints = get_type_hints(reply)
    fields = dataclasses.fields(reply)  # type: ignore[arg-type]  # Reply subclasses are dataclasses
    names = ", ".join(f"'{field.name}'" for field in fields)
    known = ", ".join(f"{field.name} = true" for field in fields)
    lines = [f"local {lua_name(reply.__name__)} = {{names = {{{names}}}, known = {{{known}}}}}"]
    for field in fields:
        hint = hints[field.name]
        element = get_args(hint)[0] if get_origin(hint) in (list, Sequence) else hint
        if isinstance(element, type) and issubclass(element, Reply):
            lines += lua_reply_layout(element)
    return lines


def lua_constants(name: str, values: type[Enum] | Mapping[str, str | int]) -> str:
    """An enum or a table of constants as a Lua table of the same names."""
    pairs = (
        [(member.name, member.value) for member in values]
        if isinstance(values, type)
        else list(values.items())
    )
    body = ", ".join(
        f"{k} = {_lua_string(v) if isinstance(v, str | bytes) else int(v)}" for k, v in pairs
    )
    return f"local {name} = {{{body}}}"
