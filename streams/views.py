"""The worker's HTTP API (Faust web views). Reads go straight to Redis: they never wait on
the stream, and the stream never waits on them."""

from __future__ import annotations

from datetime import datetime

import faust
from faust.web import Request, Response, View

from crmstream.settings import Settings
from handlers.keys import Keys
from handlers.profile.encode import epoch_ms
from handlers.profile.read import ProfileReader
from handlers.redis_client import connect
from handlers.shop_configs import ShopConfigs


def register_views(app: faust.App, settings: Settings) -> None:
    reader = ProfileReader(
        connect(settings.redis),
        Keys(settings.redis.key_prefix),
        ShopConfigs(settings.profiles.shop_config_dir),
    )

    @app.page("/profiles/{shop}/{customer}/", name="profile")
    class ProfileView(View):
        """GET the live profile of one customer; ?as_of=RFC3339 for windows at another moment."""

        async def get(self, request: Request, shop: str, customer: str) -> Response:
            as_of_text = request.query.get("as_of")
            as_of = None
            if as_of_text:
                try:
                    as_of = epoch_ms(datetime.fromisoformat(as_of_text))
                except (ValueError, TypeError):  # TypeError: a time without a zone
                    return self.error(400, f"as_of: not an RFC 3339 time: {as_of_text!r}")
            profile = await reader.read(shop, customer, as_of)
            if profile is None:
                return self.error(404, f"no profile for customer {customer} of shop {shop}")
            return self.json(profile)
