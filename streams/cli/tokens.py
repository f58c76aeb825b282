"""`crmstream tokens create|list|revoke`: per-shop API tokens (handlers/tokens.py)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, TypeVar

import click

from crmstream.settings import Settings
from streams.cli.names import shop_name

if TYPE_CHECKING:
    from handlers.tokens import Scope, TokenStore

pass_settings = click.make_pass_decorator(Settings)
T = TypeVar("T")


def _with_store(settings: Settings, step: Callable[[TokenStore], Awaitable[T]]) -> T:
    from handlers.keys import Keys  # noqa: PLC0415 -- keeps --help fast
    from handlers.redis_client import connect  # noqa: PLC0415
    from handlers.tokens import TokenStore  # noqa: PLC0415

    async def run() -> T:
        client = connect(settings.redis)
        try:
            keys = Keys(settings.redis.key_prefix)
            return await step(TokenStore(client, keys, settings.privacy_hash_key()))
        finally:
            await client.aclose()

    return asyncio.run(run())


@click.group()
def tokens() -> None:
    """API tokens: every HTTP route but /healthz, /readyz and /metrics needs one of its
    shop."""


@tokens.command()
@click.argument("shop", callback=shop_name)
@click.option("--scope", type=click.Choice(["read", "admin"]), default="read", show_default=True)
@click.option("--name", default="", help="What the token is for (shown by `tokens list`).")
@pass_settings
def create(settings: Settings, shop: str, scope: str, name: str) -> None:
    """Make a token for SHOP and print it: it is shown this once, and only a keyed hash of
    it is kept."""
    level: Scope = "admin" if scope == "admin" else "read"
    grant, token = _with_store(settings, lambda store: store.create(shop, level, name))
    click.echo(token)
    click.echo(f"token {grant.token_id} for shop {grant.shop} ({grant.scope})", err=True)


@tokens.command("list")
@click.option("--shop", callback=shop_name, help="Only this shop's tokens.")
@pass_settings
def list_tokens(settings: Settings, shop: str | None) -> None:
    """The tokens there are: id, shop, scope, when made, name (never the token itself)."""
    for grant in _with_store(settings, lambda store: store.list(shop)):
        made = datetime.fromtimestamp(grant.created_at, UTC).isoformat(timespec="seconds")
        click.echo(f"{grant.token_id}  {grant.shop}  {grant.scope:<5}  {made}  {grant.name}")


@tokens.command()
@click.argument("token_id")
@pass_settings
def revoke(settings: Settings, token_id: str) -> None:
    """Revoke the token TOKEN_ID (as `tokens list` shows it): it stops answering at once."""
    if not _with_store(settings, lambda store: store.revoke(token_id)):
        raise click.ClickException(f"no token {token_id}")
    click.echo(f"revoked {token_id}")
