"""The local broker's cluster id: the form KRaft's storage tool takes."""

from __future__ import annotations

import base64
import uuid

import pytest

from devstack.kafka import new_cluster_id


def test_an_id_is_22_characters_of_url_safe_base64() -> None:
    cid = new_cluster_id()
    assert len(cid) == 22
    assert uuid.UUID(bytes=base64.urlsafe_b64decode(cid + "==")).version == 4


def test_an_id_never_starts_with_a_dash(monkeypatch: pytest.MonkeyPatch) -> None:
    # 0xf8 in the first byte encodes as "-": the draw that must be thrown back.
    draws = iter([uuid.UUID(bytes=b"\xf8" + bytes(15)), uuid.UUID(bytes=b"\x10" + bytes(15))])
    monkeypatch.setattr(uuid, "uuid4", lambda: next(draws))
    assert base64.urlsafe_b64encode(b"\xf8").startswith(b"-")
    assert new_cluster_id() == base64.urlsafe_b64encode(b"\x10" + bytes(15)).decode()[:22]
