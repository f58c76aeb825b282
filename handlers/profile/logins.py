"""A login's two steps on the anonymous shopper's side (functions/profile.py Detach and
ForgetDetached): before its batch is applied, the shopper's history is frozen and handed
over, to be merged into the customer's; once the batch is in, the anonymous copy goes.
The logins of one hash slot go in one call of each (one call on one Redis)."""

from __future__ import annotations

import logging
from collections.abc import Sequence

from handlers.functions import FunctionLibrary
from handlers.functions.profile import (
    CustomerBase,
    Detach,
    ForgetDetached,
    Histories,
    Login,
)
from handlers.keys import Keys
from handlers.profile.identity import AliasCache, is_junk
from handlers.redis_client import RedisClient, slot_groups
from schemas.events import CustomerIdentified, Envelope

log = logging.getLogger("crmstream.profiles")


class Logins:
    def __init__(
        self, client: RedisClient, keys: Keys, library: FunctionLibrary, aliases: AliasCache
    ) -> None:
        self._client = client
        self._keys = keys
        self._library = library  # the profile library
        self._aliases = aliases  # the profile stage's, shared

    async def detach(self, events: Sequence[Envelope]) -> dict[str, bytes]:
        """Step one of each login in the batch: freeze the anonymous history, get it back
        (event id of the login → the history)."""
        logins: list[CustomerIdentified] = []
        first_login: set[tuple[str, str]] = set()
        for event in events:
            if isinstance(event, CustomerIdentified) and not is_junk(event.data.anonymousid):
                # Shoppers log in again and again: only the first login of an anonymous id in
                # the batch carries its history, or the batch would merge it twice; and an id
                # this stage merged and forgot before has nothing left to carry.
                key = (event.shop, event.data.anonymousid)
                if key not in first_login and self._aliases.get(*key) is None:
                    first_login.add(key)
                    logins.append(event)
        if not logins:
            return {}
        each = [
            Login(self._keys.customer_base(login.shop, login.data.anonymousid), login.who)
            for login in logins
        ]
        groups = slot_groups(self._client, [login.base for login in each])
        replies: list[Histories] = await self._library.run(
            [Detach([each[at] for at in group]) for group in groups]
        )
        merges: dict[str, bytes] = {}
        for group, reply in zip(groups, replies, strict=True):
            for at, history in zip(group, reply.histories, strict=True):
                login = logins[at]
                if not history.taken_by:
                    # Bytes as they came: the history holds binary dedup digests.
                    merges[login.id] = history.state
                else:
                    log.warning(
                        "anonymous id %s of shop %s already belongs to another customer; "
                        "event %s merges nothing",
                        login.data.anonymousid,
                        login.shop,
                        login.id,
                    )
        return merges

    def forget_calls(
        self, events: Sequence[Envelope], merges: dict[str, bytes]
    ) -> list[ForgetDetached]:
        """The last step, once the batch is in: the anonymous copies of ``merges`` go."""
        shoppers = [
            CustomerBase(self._keys.customer_base(event.shop, event.data.anonymousid))
            for event in events
            if event.id in merges and isinstance(event, CustomerIdentified)
        ]
        groups = slot_groups(self._client, [shopper.base for shopper in shoppers])
        return [ForgetDetached([shoppers[at] for at in group]) for group in groups]
