"""The committed JSON Schemas are what the models say, and the README's examples obey them."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import pytest
from jsonschema import Draft202012Validator

from schemas.decode import Decoder, Rejected
from schemas.export import export_schemas
from schemas.times import epoch_ms
from storefront.publisher import encode
from storefront.simulator import Simulator

ROOT = Path(__file__).resolve().parents[2]
COMMITTED = ROOT / "schemas" / "json"


def _readme_events() -> list[dict[str, Any]]:
    blocks = re.findall(r"```json\n(.*?)```", (ROOT / "README.md").read_text(), re.S)
    return [json.loads(block) for block in blocks]


def test_committed_schemas_match_the_models() -> None:
    exported = export_schemas()
    committed = {path.name: json.loads(path.read_text()) for path in COMMITTED.glob("*.json")}
    assert set(committed) == set(exported), "run: crmstream schemas export schemas/json"
    for name, document in exported.items():
        assert committed[name] == json.loads(json.dumps(document)), (
            f"{name} is stale; run: crmstream schemas export schemas/json"
        )


@pytest.mark.parametrize("name", sorted(export_schemas()))
def test_every_exported_document_is_a_valid_2020_12_schema(name: str) -> None:
    Draft202012Validator.check_schema(export_schemas()[name])


def test_readme_examples_validate_against_the_schema_and_the_models() -> None:
    examples = _readme_events()
    assert len(examples) >= 3
    validator = Draft202012Validator(export_schemas()["event.json"])
    decoder = Decoder()
    for example in examples:
        validator.validate(example)
        result = decoder.decode(orjson.dumps(example), None, None, epoch_ms(datetime.now(UTC)))
        assert not isinstance(result, Rejected), result


def test_simulated_events_validate_against_the_json_schema() -> None:
    validator = Draft202012Validator(export_schemas()["event.json"])
    for event in Simulator().events(2_000):
        validator.validate(json.loads(encode(event)))
