"""`crmstream console`: the merchant console, a web application of its own."""

from __future__ import annotations

import click

from crmstream.settings import Settings

pass_settings = click.make_pass_decorator(Settings)


@click.command("console")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", default=6070, show_default=True, type=click.IntRange(1, 65535))
@pass_settings
def console(settings: Settings, host: str, port: int) -> None:
    """Serve the merchant console: sign in with a shop's API token (crmstream tokens
    create SHOP) to look customers up, read every decision about them, and run the
    shop's segments, rules and imports. In Chinese by default, English on request."""
    from console.app import run_console  # noqa: PLC0415 -- the web stack loads only here

    click.echo(f"console on http://{host}:{port}/")
    run_console(settings, host, port)
