"""What Python writes into a library's Lua source (handlers/functions/library.py puts it
first): each call's layout and its reply's, by name, and the constants both sides use.
All of it is written out literally: a library's code runs without the standard functions
when Redis loads it."""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping, Sequence
from enum import Enum
from typing import get_args, get_origin, get_type_hints

from handlers.functions.contract import Call, Layout, Reply, layout_of


def lua_name(name: str) -> str:
    """A Python class or constant name as a Lua table name: EmitReply → EMIT_REPLY."""
    return re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", name).upper()


def _lua_string(value: str | bytes) -> str:
    data = value.encode() if isinstance(value, str) else value
    plain = "".join(chr(b) if 32 <= b < 127 and b not in b"'\\" else f"\\{b:03d}" for b in data)
    return f"'{plain}'"


def _lua_fields(layout: Layout) -> str:
    return f"key_count = {len(layout.keys)}, arg_count = {len(layout.args)}, {_lua_reader(layout)}"


def _lua_reader(layout: Layout) -> str:
    """shared.lua's ``read``: the table of one call or item, from its keys (``K``, after
    ``kb`` of them) and arguments (``A``, after ``ab``), in one constructor."""
    fields = ["count = count"]
    fields += [f"['{name}'] = K[kb + {i}]" for i, name in enumerate(layout.keys, 1)]
    for i, (name, kind) in enumerate(layout.args, 1):
        value = f"A[ab + {i}]"
        if kind == "n":
            read = f"tonumber({value}) or not_a_number(S, '{name}', {value})"
        elif kind == "b":
            read = f"{value} == '1' or ({value} ~= '0' and not_a_flag(S, '{name}', {value}))"
        else:
            read = f"{value} or missing(S, '{name}')"
        fields.append(f"['{name}'] = {read}")
    return f"read = function(K, A, kb, ab, S, count) return {{{', '.join(fields)}}} end"


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
