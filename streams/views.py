"""The worker's HTTP API (Faust web views). Reads go straight to Redis: they never wait on
the stream, and the stream never waits on them."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import datetime

import faust
from faust.web import Request, Response, View

from crmstream import metrics
from crmstream.settings import Settings
from handlers.customer_export import export_customer
from handlers.journeys.overview import shop_journeys
from handlers.keys import Keys
from handlers.profile.read import ProfileReader
from handlers.redis_client import connect
from handlers.segments.read import SegmentReader
from handlers.shop_configs import ShopConfigs
from handlers.tokens import Grant, Scope, TokenStore
from handlers.triggers.decisions import DecisionReader
from handlers.triggers.stats import read_rule_stats
from rules.folders import shop_configs_folder
from schemas.times import epoch_ms
from schemas.triggers import is_rule_id
from schemas.types import SHOP_ID_RULE, is_customer_id, is_shop_id
from streams.health import Readiness

_MAX_PAGE = 1000
# A refused token is answered after this long: guessing costs time (constant-time checks
# keep the guesses from learning anything along the way).
_REFUSAL_PAUSE_S = 0.25


def _bad_name(shop: str | None, customer: str | None = None) -> str | None:
    """Why a name from the request cannot be used (it never reaches a key, a file or a
    cache), or None. The name itself is not echoed back."""
    if shop is not None and not is_shop_id(shop):
        return f"shop: not a shop name ({SHOP_ID_RULE})"
    if customer is not None and not is_customer_id(customer):
        return "customer: not a customer id (letters, digits, '.', '_', '@' and '-', up to 64)"
    return None


def _route(app: faust.App, path: str, name: str) -> Callable[[type[View]], type[View]]:
    """Serve a view at ``path`` with and without its trailing slash: a newcomer's curl
    should not get a 404 for a slash."""
    bare, slashed = path.rstrip("/"), path.rstrip("/") + "/"

    def register(view: type[View]) -> type[View]:
        app.page(slashed, name=name)(view)
        return app.page(bare, name=f"{name}-bare")(view)

    return register


def register_views(app: faust.App, settings: Settings, readiness: Readiness) -> None:
    client = connect(settings.redis)
    keys = Keys(settings.redis.key_prefix)
    reader = ProfileReader(client, keys, ShopConfigs(shop_configs_folder(settings.profiles)))
    groups = SegmentReader(client, keys)
    tokens = TokenStore(client, keys, settings.privacy_hash_key())
    decisions = DecisionReader(client, keys)

    async def admitted(
        view: View,
        request: Request,
        shop: str | None,
        customer: str | None = None,
        missing: str = "not found",
        *,
        scope: Scope = "read",
    ) -> Grant | Response:
        """The grant of a request that may read ``shop`` (None: its token's own), or the
        response that refuses it: 401 without a valid bearer token (after a pause), 400 for
        a name outside the contract, 404 (``missing``) for another shop's, 403 for a token
        of the shop without the ``scope`` needed."""
        scheme, _, token = request.headers.get("Authorization", "").partition(" ")
        grant = await tokens.verify(token.strip()) if scheme.lower() == "bearer" else None
        if grant is None:
            reason = "invalid" if token else "missing"
            metrics.HTTP_AUTH_FAILURES.labels(reason).inc()
            await asyncio.sleep(_REFUSAL_PAUSE_S)
            return view.error(
                401,
                "a bearer token of the shop is needed (crmstream tokens create SHOP)",
                headers={"WWW-Authenticate": 'Bearer realm="crmstream"'},
            )
        if why := _bad_name(shop, customer):
            return view.error(400, why)
        if shop is not None and grant.shop != shop:
            return view.error(404, missing)  # as if it did not exist
        if scope == "admin" and grant.scope != "admin":
            return view.error(
                403, "this needs a token of admin scope (tokens create --scope admin)"
            )
        return grant

    @_route(app, "/profiles/{shop}/{customer}/", "profile")
    class ProfileView(View):
        """GET the live profile of one customer; ?as_of=RFC3339 for windows at another moment."""

        async def get(self, request: Request, shop: str, customer: str) -> Response:
            missing = f"no profile for customer {customer} of shop {shop}"
            grant = await admitted(self, request, shop, customer, missing)
            if not isinstance(grant, Grant):
                return grant
            as_of_text = request.query.get("as_of")
            as_of = None
            if as_of_text:
                try:
                    as_of = epoch_ms(datetime.fromisoformat(as_of_text))
                except (ValueError, TypeError):  # TypeError: a time without a zone
                    return self.error(400, f"as_of: not an RFC 3339 time: {as_of_text!r}")
            profile = await reader.read(shop, customer, as_of)
            if profile is None:
                return self.error(404, missing)
            profile["segments"] = await groups.of_customer(shop, customer)
            return self.json(profile)

    @_route(app, "/customers/{shop}/{customer}/decisions/", "customer-decisions")
    class DecisionsView(View):
        """GET the customer's last decisions, newest first: outcome, rule, reason, trigger."""

        async def get(self, request: Request, shop: str, customer: str) -> Response:
            grant = await admitted(self, request, shop, customer)
            if not isinstance(grant, Grant):
                return grant
            found = await decisions.log(shop, customer)
            return self.json({"shop": shop, "customer": customer, "decisions": found})

    @_route(app, "/customers/{shop}/{customer}/export/", "customer-export")
    class ExportView(View):
        """GET everything held about the customer (admin scope): the right to know."""

        async def get(self, request: Request, shop: str, customer: str) -> Response:
            missing = f"nothing held about customer {customer} of shop {shop}"
            grant = await admitted(self, request, shop, customer, missing, scope="admin")
            if not isinstance(grant, Grant):
                return grant
            document = await export_customer(reader, groups, decisions, shop, customer)
            if document is None:
                return self.error(404, missing)
            return self.json(document)

    @_route(app, "/healthz", "healthz")
    class AliveView(View):
        """200 while the event loop answers: this handler runs on it."""

        async def get(self, request: Request) -> Response:
            return self.json({"status": "alive"})

    @_route(app, "/readyz", "readyz")
    class ReadyView(View):
        """200 when Redis answers, partitions are held and batches go through; else 503."""

        async def get(self, request: Request) -> Response:
            problems = await readiness.problems()
            if problems:
                return self.json({"status": "not ready", "problems": problems}, status=503)
            return self.json({"status": "ready"})

    @_route(app, "/rules/stats/", "rule-stats")
    class RuleStatsView(View):
        """GET per rule: fired, sent, suppressed, held out, converted, lift; ?shop= for one."""

        async def get(self, request: Request) -> Response:
            grant = await admitted(self, request, request.query.get("shop"))
            if not isinstance(grant, Grant):
                return grant
            found = await read_rule_stats(client, keys, grant.shop)
            return self.json({"shop": grant.shop, "rules": [entry.as_dict() for entry in found]})

    @_route(app, "/journeys/{shop}/", "journeys")
    class JourneysView(View):
        """GET the shop's journeys: whether it runs each, and per version how many entered,
        are in it now, left, and were sent something."""

        async def get(self, request: Request, shop: str) -> Response:
            grant = await admitted(self, request, shop)
            if not isinstance(grant, Grant):
                return grant
            running = frozenset(reader.config_of(shop).journeys)
            found = await shop_journeys(client, keys, shop, running)
            return self.json({"shop": shop, "journeys": [view.summary() for view in found]})

    @_route(app, "/journeys/{shop}/{journey}/stats/", "journey-stats")
    class JourneyStatsView(View):
        """GET one journey, per version: entered, now at each step, exited by reason, each
        step's sends, the goal reached against the control path, and the steps as a funnel."""

        async def get(self, request: Request, shop: str, journey: str) -> Response:
            missing = f"no journey {journey} for shop {shop}"
            grant = await admitted(self, request, shop, missing=missing)
            if not isinstance(grant, Grant):
                return grant
            if not is_rule_id(journey):
                return self.error(400, "journey: not a journey id (a-z, 0-9, '_' and '-')")
            running = frozenset(reader.config_of(shop).journeys)
            found = await shop_journeys(client, keys, shop, running)
            view = next((view for view in found if view.journey == journey), None)
            if view is None:
                return self.error(404, missing)
            return self.json({"shop": shop, **view.as_dict()})

    @_route(app, "/segments/{shop}/", "segments")
    class SegmentsView(View):
        """GET every segment's live size (a counter, not a count)."""

        async def get(self, request: Request, shop: str) -> Response:
            grant = await admitted(self, request, shop)
            if not isinstance(grant, Grant):
                return grant
            return self.json({"shop": shop, "segments": await groups.sizes(shop)})

    @_route(app, "/segments/{shop}/{segment}/members/", "segment-members")
    class MembersView(View):
        """GET a page of members in customer-id order; ?cursor= continues after the last."""

        async def get(self, request: Request, shop: str, segment: str) -> Response:
            grant = await admitted(self, request, shop)
            if not isinstance(grant, Grant):
                return grant
            try:
                limit = int(request.query.get("limit", "100"))
            except ValueError:
                return self.error(400, "limit: not a whole number")
            if not 1 <= limit <= _MAX_PAGE:
                return self.error(400, f"limit: between 1 and {_MAX_PAGE}")
            page = await groups.members(shop, segment, request.query.get("cursor"), limit)
            return self.json(
                {"shop": shop, "segment": segment, "members": page.members, "cursor": page.cursor}
            )
