"""Per-shop profile settings from YAML files: default.yaml, overridden by <shop>.yaml."""

from __future__ import annotations

from pathlib import Path

import yaml

from crmstream.errors import RuleError
from rules.shop_config import ShopConfig, parse_shop_config


class ShopConfigs:
    """Looks up the configuration of a shop, reading its file once."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        default_file = directory / "default.yaml"
        self._default_text = default_file.read_text() if default_file.exists() else ""
        self.default = parse_shop_config(self._default_text, str(default_file))
        self._by_shop: dict[str, ShopConfig] = {}

    def for_shop(self, shop: str) -> ShopConfig:
        config = self._by_shop.get(shop)
        if config is None:
            config = self._load(shop)
            self._by_shop[shop] = config
        return config

    def _load(self, shop: str) -> ShopConfig:
        path = self.directory / f"{shop}.yaml"
        if not path.exists():
            return self.default
        try:
            override = yaml.safe_load(path.read_text()) or {}
            merged = {**(yaml.safe_load(self._default_text) or {}), **override}
        except yaml.YAMLError as exc:
            raise RuleError(f"{path}: not YAML: {exc}") from exc
        return parse_shop_config(yaml.safe_dump(merged), str(path))
