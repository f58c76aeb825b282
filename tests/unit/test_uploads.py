"""Upload forms read as they stream: files saved under their caps, small fields under
theirs, anything the form does not have refused."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from console.uploads import FileRule, UploadRefused, receive_form

FILES = {"sheet": FileRule(1000, (".csv", ".xlsx")), "notes": FileRule(100)}


@pytest.fixture
async def client(tmp_path: Path) -> AsyncIterator[TestClient[web.Request, web.Application]]:
    async def take(request: web.Request) -> web.StreamResponse:
        folder = tmp_path / "scratch"
        folder.mkdir(exist_ok=True)
        try:
            form = await receive_form(request, folder, FILES, ("dry_run",))
            form.file("sheet")
        except UploadRefused as exc:
            return web.json_response({"refused": type(exc).__name__, "why": str(exc)}, status=400)
        files = {
            name: [upload.filename, upload.path.name, upload.size, upload.path.read_text()]
            for name, upload in form.files.items()
        }
        return web.json_response({"fields": form.fields, "files": files})

    app = web.Application()
    app.router.add_post("/", take)
    async with TestClient(TestServer(app)) as test_client:
        yield test_client


def form(**parts: str | tuple[str, bytes]) -> aiohttp.FormData:
    data = aiohttp.FormData(default_to_multipart=True)
    for name, value in parts.items():
        if isinstance(value, tuple):
            data.add_field(name, value[1], filename=value[0])
        else:
            data.add_field(name, value)
    return data


async def answer(response: aiohttp.ClientResponse) -> dict[str, object]:
    body: dict[str, object] = await response.json()
    return body


async def test_fields_and_files_are_taken(client: TestClient[web.Request, web.Application]) -> None:
    sent = form(dry_run="on", sheet=("Customers.CSV", b"customer_id\nc-1\n"), notes=("n", b"x"))
    response = await client.post("/", data=sent)
    assert await answer(response) == {
        "fields": {"dry_run": "on"},
        "files": {
            "sheet": ["Customers.CSV", "sheet.csv", 16, "customer_id\nc-1\n"],
            "notes": ["n", "notes", 1, "x"],
        },
    }


@pytest.mark.parametrize(
    ("parts", "refused", "why"),
    [
        ({"sheet": ("c.csv", b"x" * 1001)}, "TooLarge", "more than 1000 bytes"),
        ({"sheet": ("c.csv", b"x" * 100_000)}, "TooLarge", "more than 1000 bytes"),
        ({"sheet": ("c.txt", b"x")}, "WrongKind", ".csv / .xlsx"),
        ({"sheet": ("", b"")}, "MissingFile", "sheet"),
        ({"dry_run": "on"}, "MissingFile", "sheet"),
        ({"stray": "x", "sheet": ("c.csv", b"x")}, "BadForm", "no field 'stray' on this form"),
        ({"dry_run": "x" * 1025}, "BadForm", "field 'dry_run' is longer than 1024 bytes"),
    ],
)
async def test_what_the_form_does_not_take_is_refused(
    client: TestClient[web.Request, web.Application],
    parts: dict[str, str | tuple[str, bytes]],
    refused: str,
    why: str,
) -> None:
    response = await client.post("/", data=form(**parts))
    assert response.status == 400
    assert await answer(response) == {"refused": refused, "why": why}


async def test_a_file_over_its_cap_is_refused_while_it_streams(
    client: TestClient[web.Request, web.Application],
) -> None:
    """No length said up front: the body arrives in chunks, well past the cap."""

    async def body() -> AsyncIterator[bytes]:
        yield b'--cut\r\nContent-Disposition: form-data; name="sheet"; filename="c.csv"\r\n\r\n'
        for _ in range(200):
            yield b"x" * 512

    headers = {"Content-Type": "multipart/form-data; boundary=cut"}
    response = await client.post("/", data=body(), headers=headers)
    assert await answer(response) == {"refused": "TooLarge", "why": "more than 1000 bytes"}


@pytest.mark.parametrize(
    ("body", "content_type", "why"),
    [
        (b"dry_run=on", "application/x-www-form-urlencoded",
         "expected multipart/form-data, not application/x-www-form-urlencoded"),
        (b"--other\r\n\r\n", "multipart/form-data; boundary=cut",
         "the form's body is malformed (ValueError)"),
        (b"", "multipart/form-data", "the form's body is malformed (ValueError)"),
    ],
)  # fmt: skip
async def test_a_body_that_is_no_form_is_refused(
    client: TestClient[web.Request, web.Application], body: bytes, content_type: str, why: str
) -> None:
    response = await client.post("/", data=body, headers={"Content-Type": content_type})
    assert await answer(response) == {"refused": "BadForm", "why": why}
