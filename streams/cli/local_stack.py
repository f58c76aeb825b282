"""The local stack's part in the command line: its settings, read beside the engine's, and
the privacy hash key it made for itself, used when none is configured.

This is the one place the two meet. The engine's settings never read the stack's files,
so a worker deployed without CRMSTREAM_PRIVACY_HASH_KEY has no key, whatever lies on its
disk; on a developer's machine every command (and each worker it starts, which runs the
command line again) hashes with the stack's key, as `crmstream import` and the console
did before one was configured.
"""

from __future__ import annotations

from typing import Final

import click

from crmstream.settings import Settings
from devstack.settings import StackSettings, read_local_hash_key

_STACK: Final = "crmstream.stack"


def with_local_hash_key(settings: Settings, stack: StackSettings | None = None) -> Settings:
    """``settings``, their privacy hash key filled from the local stack's key file when no
    key is configured and `crmstream stack up` made one. ``stack``: from the environment
    unless given."""
    if settings.privacy.hash_key is not None:
        return settings
    key = read_local_hash_key(stack if stack is not None else StackSettings())
    if key is None:
        return settings
    privacy = settings.privacy.model_copy(update={"hash_key": key})
    return settings.model_copy(update={"privacy": privacy})


def keep_stack_settings(ctx: click.Context, stack: StackSettings) -> None:
    """Kept for the commands of this invocation (meta is shared by every sub-context)."""
    ctx.meta[_STACK] = stack


def stack_settings() -> StackSettings:
    """The local stack's settings, as the ``crmstream`` group read them."""
    stack = click.get_current_context().meta[_STACK]
    assert isinstance(stack, StackSettings)  # noqa: S101 -- put there by keep_stack_settings
    return stack
