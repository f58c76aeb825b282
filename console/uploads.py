"""Upload forms read as they stream in.

Each file goes straight to a scratch folder, and is refused the moment it passes its
byte cap; the few small fields are read under a cap of their own; a part the form does
not have is refused. request.post() would take the whole body before a handler could
look at it, so the pages that take files read them here instead.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

from aiohttp import BodyPartReader, web
from aiohttp.http_exceptions import HttpProcessingError

# Files are written as they arrive, a chunk at a time: a local write of this size takes
# the page cache's time, short enough to do on the event loop.
_CHUNK: Final = 64 * 1024
_FIELD_BYTES: Final = 1024
# Room for the part headers and boundaries around the files themselves.
_FORM_OVERHEAD: Final = 64 * 1024


@dataclass(frozen=True, slots=True)
class FileRule:
    """What one file field takes: how many bytes, and which endings (None: any)."""

    max_bytes: int
    suffixes: tuple[str, ...] | None = None


@dataclass(frozen=True, slots=True)
class Upload:
    filename: str  # as the browser named it
    path: Path  # in the scratch folder: named after the field, with the file's ending
    size: int


@dataclass(slots=True)
class Form:
    fields: dict[str, str] = field(default_factory=dict)
    files: dict[str, Upload] = field(default_factory=dict)

    def file(self, name: str) -> Upload:
        """The file the form must have; MissingFile when its input was left empty."""
        upload = self.files.get(name)
        if upload is None:
            raise MissingFile(name)
        return upload


class UploadRefused(Exception):  # noqa: N818 -- a refusal, said to the merchant, not a fault
    """An upload the page will not take."""


class TooLarge(UploadRefused):
    def __init__(self, max_bytes: int) -> None:
        super().__init__(f"more than {max_bytes} bytes")
        self.max_bytes = max_bytes

    @property
    def shown_size(self) -> str:
        if self.max_bytes >= 2**20:
            return f"{self.max_bytes / 2**20:g} MB"
        return f"{self.max_bytes / 2**10:g} KB"


class WrongKind(UploadRefused):
    def __init__(self, suffixes: tuple[str, ...]) -> None:
        super().__init__(" / ".join(suffixes))
        self.suffixes = suffixes


class MissingFile(UploadRefused):
    """A file input the form needs, left empty."""


class BadForm(UploadRefused):
    """Not a form this page sent: no multipart body, a part it has no field for, a
    broken encoding."""


async def receive_form(
    request: web.Request, folder: Path, files: Mapping[str, FileRule], fields: Collection[str]
) -> Form:
    """The form's fields, and its files saved in ``folder``; a file input left empty is
    absent. Raises TooLarge, WrongKind or BadForm."""
    largest = sum(rule.max_bytes for rule in files.values()) + _FORM_OVERHEAD
    if request.content_length is not None and request.content_length > largest:
        # Said before a byte of the body is read.
        raise TooLarge(max(rule.max_bytes for rule in files.values()))
    if request.content_type != "multipart/form-data":
        raise BadForm(f"expected multipart/form-data, not {request.content_type}")
    form = Form()
    try:
        reader = await request.multipart()
        while (part := await reader.next()) is not None:
            if not isinstance(part, BodyPartReader):
                raise BadForm("a form within a form")
            name = part.name or ""
            if name in files and name not in form.files:
                upload = await _save(part, folder, name, files[name])
                if upload is not None:
                    form.files[name] = upload
            elif name in fields and name not in form.fields:
                form.fields[name] = await _field(part)
            else:
                raise BadForm(f"no field {name!r} on this form")
    except (ValueError, HttpProcessingError, LookupError, RuntimeError) as exc:
        raise BadForm(f"the form's body is malformed ({type(exc).__name__})") from exc
    return form


async def _save(part: BodyPartReader, folder: Path, name: str, rule: FileRule) -> Upload | None:
    filename = part.filename or ""
    if not filename:
        await _drain(part, rule.max_bytes)
        return None
    suffix = Path(filename).suffix.lower()
    if rule.suffixes is not None and suffix not in rule.suffixes:
        raise WrongKind(rule.suffixes)
    path = folder / (name + suffix if rule.suffixes is not None else name)
    size = 0
    with path.open("wb") as sink:
        while chunk := await part.read_chunk(_CHUNK):
            size += len(chunk)
            if size > rule.max_bytes:
                raise TooLarge(rule.max_bytes)
            sink.write(chunk)
    return Upload(filename, path, size)


async def _drain(part: BodyPartReader, max_bytes: int) -> None:
    """An empty file input sends no bytes; one that sends some anyway is held to the cap."""
    size = 0
    while chunk := await part.read_chunk(_CHUNK):
        size += len(chunk)
        if size > max_bytes:
            raise TooLarge(max_bytes)


async def _field(part: BodyPartReader) -> str:
    value = bytearray()
    while chunk := await part.read_chunk(_CHUNK):
        value += chunk
        if len(value) > _FIELD_BYTES:
            raise BadForm(f"field {part.name!r} is longer than {_FIELD_BYTES} bytes")
    return value.decode()  # a UnicodeDecodeError is a ValueError: a malformed body
