"""Per-shop profile settings from YAML files: default.yaml, overridden by <shop>.yaml."""

from __future__ import annotations

from pathlib import Path
from typing import Final

import yaml

from crmstream.errors import InvalidShopError, RuleError
from rules.shop_config import ShopConfig, parse_shop_config
from schemas.types import SHOP_ID_RULE, is_shop_id

# Shops whose configuration is kept read: a name from outside cannot grow it for ever.
_CACHED: Final = 1024


class ShopConfigs:
    """Looks up the configuration of a shop, reading its file once."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        default_file = directory / "default.yaml"
        self._default_text = default_file.read_text() if default_file.exists() else ""
        self.default = parse_shop_config(self._default_text, str(default_file))
        self._by_shop: dict[str, ShopConfig] = {}  # oldest first: the first to go

    def for_shop(self, shop: str) -> ShopConfig:
        """Raises InvalidShopError for a name outside the contract's pattern, before any
        file is looked for."""
        config = self._by_shop.get(shop)
        if config is None:
            if not is_shop_id(shop):
                raise InvalidShopError(f"not a shop name: {shop[:80]!r} ({SHOP_ID_RULE})")
            config = self._load(shop)
            if len(self._by_shop) >= _CACHED:
                del self._by_shop[next(iter(self._by_shop))]
            self._by_shop[shop] = config
        return config

    def __len__(self) -> int:
        """How many shops' configurations are kept read."""
        return len(self._by_shop)

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
