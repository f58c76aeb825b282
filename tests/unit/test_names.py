"""Shop and customer names from outside (HTTP paths, command-line arguments) are checked
against the contract's patterns before they touch a file, a key, a glob or a cache."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from crmstream.errors import InvalidShopError
from handlers.keys import Keys
from handlers.shop_configs import ShopConfigs
from schemas.types import is_customer_id, is_shop_id
from streams.cli import cli

HOSTILE = [
    "",
    ".",
    "..",
    "../secret",
    "../../etc/passwd",
    "a/b",
    "a\\b",
    "*",
    "tea*",
    "[ab]",
    "{t1}",
    "tea:house",
    "tea-house\n",
    "tea\x00house",
    " tea",
    "茶馆",
    "%2e%2e",
    "x" * 65,
]
FINE = ["tea-house", "a", "A.b_c-1", "x" * 64, "a..b"]


@pytest.mark.parametrize("name", HOSTILE)
def test_a_hostile_name_is_no_shop_and_no_customer(name: str) -> None:
    assert not is_shop_id(name)
    assert not is_customer_id(name)


@pytest.mark.parametrize("name", FINE)
def test_a_plain_name_is_a_shop(name: str) -> None:
    assert is_shop_id(name)


@pytest.fixture
def configs(tmp_path: Path) -> ShopConfigs:
    shops = tmp_path / "shops"
    shops.mkdir()
    (shops / "default.yaml").write_text("currency: CNY\n")
    (tmp_path / "secret.yaml").write_text("currency: XXX\n")  # one level up: never read
    return ShopConfigs(shops)


@pytest.mark.parametrize("name", HOSTILE)
def test_shop_configs_refuse_a_hostile_name_before_looking_for_a_file(
    configs: ShopConfigs, name: str
) -> None:
    with pytest.raises(InvalidShopError, match="not a shop name"):
        configs.for_shop(name)
    assert len(configs) == 0


def test_shop_configs_keep_a_bounded_number_of_shops(configs: ShopConfigs) -> None:
    for n in range(3000):
        assert configs.for_shop(f"shop-{n}") is configs.default
    assert len(configs) == 1024


def test_a_glob_is_never_a_shop_s_key_pattern() -> None:
    assert Keys("crm").customers_of("tea-house") == "crm:{tea-house:*"
    with pytest.raises(InvalidShopError):
        Keys("crm").customers_of("*")


@pytest.mark.parametrize(
    "args",
    [
        ["profile", "../secret", "c1"],
        ["profile", "tea-house", "c1}"],
        ["replay", "--shop", "*"],
        ["segments", "{t1}"],
        ["rules", "stats", "--shop", "a/b"],
    ],
)
def test_the_command_line_refuses_a_hostile_name_with_its_reason(args: list[str]) -> None:
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 2, result.output
    assert "not a shop name" in result.output or "not a customer id" in result.output
    assert "Traceback" not in result.output
