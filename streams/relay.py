"""The outbox relays: triggers from Redis to ``crm.triggers`` and segment changes to
``crm.segments``, removed only once acknowledged.

An outbox is one Redis stream per trigger shard, read through a consumer group,
so that several workers share it and each entry goes to one of them. An entry is
acknowledged and deleted only after the broker confirmed the message (acks=all,
idempotent producer); a relay that dies holding entries leaves them pending, and
another claims them once they have been idle long enough. The worst case is a
message sent twice under the same id, which consumers deduplicate on.

The broker's word on a message may come after the round that sent it: a flush that
runs out of time (the broker away) leaves messages in the producer, whose reports come
in a later round. Each report is kept by the relay, not by its round, so that an entry
is acknowledged whenever the broker confirms it; one refused is sent again next round,
not left pending until a claim.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
from collections import defaultdict
from collections.abc import Callable
from typing import Any, Literal

from confluent_kafka import KafkaError as RdKafkaError
from confluent_kafka import Message, Producer
from mode import Service
from prometheus_client.metrics import Counter as CounterChild
from redis.exceptions import RedisError, ResponseError

from crmstream import metrics
from crmstream.settings import Settings
from crmstream.topics import TopicNames
from handlers.keys import RELAY_GROUP, Keys
from handlers.redis_client import RedisClient, slot_groups
from handlers.segments.outbox import Fields, render_change, render_trigger
from streams.wakeups import nudged_or_after

log = logging.getLogger("crmstream.relay")

GROUP = RELAY_GROUP
_IDLE_SLEEP_S = 0.05
_ERROR_SLEEP_S = 1.0
_FLUSH_TIMEOUT_S = 30.0


Render = Callable[[Fields], tuple[bytes, bytes, bytes]]  # entry → (key, value, id)


class OutboxRelay(Service):
    def __init__(
        self,
        settings: Settings,
        client: RedisClient,
        *,
        outbox: Callable[[str], str],
        topic: str,
        render: Render,
        written: asyncio.Event | None = None,
        flush_timeout_s: float = _FLUSH_TIMEOUT_S,
        **kwargs: Any,  # noqa: ANN401 -- mode's Service options
    ) -> None:
        """``written``: set by this worker's stages when they add to the outbox, so that an
        idle relay sends at once what they wrote; another worker's entries wait for a poll.
        ``flush_timeout_s``: how long a round waits for the broker's word on what it sent."""
        super().__init__(**kwargs)
        self._client = client
        self._keys = Keys(settings.redis.key_prefix)
        self._topic = topic
        self._render = render
        self._written = written or asyncio.Event()
        self._outboxes = [outbox(base) for base in self._keys.trigger_shards()]
        # The outboxes as each round reads them: one XREADGROUP per hash slot.
        self._slots = [
            [self._outboxes[position] for position in group]
            for group in slot_groups(client, self._outboxes)
        ]
        self._batch = settings.triggers.relay_batch
        self._claim_idle_ms = int(settings.triggers.relay_claim_idle_s * 1000)
        self._consumer = f"{settings.worker.app_id}-{socket.gethostname()}-{os.getpid()}"
        self._producer = Producer(
            {
                **settings.kafka.librdkafka(),
                "enable.idempotence": True,
                "acks": "all",
                "linger.ms": 2,
                "compression.type": "lz4",
            }
        )
        self._flush_timeout_s = flush_timeout_s
        # The broker's reports, whichever round sent the message: entries confirmed, to
        # acknowledge; entries refused, to send again.
        self._confirmed: list[tuple[str, bytes]] = []
        self._refused: list[tuple[str, bytes, dict[bytes, bytes]]] = []
        self._refusal = ""  # the last reason the broker gave
        self.relayed = 0
        self.refused = 0  # messages the broker refused (each sent again)
        self.rounds = 0  # reads of the outbox done
        self._more = False  # the last read took as much as it may: more may be waiting
        self.relayed_metric: CounterChild | None = None
        self.refused_metric: CounterChild | None = None

    @classmethod
    def of(
        cls,
        outbox: Literal["triggers", "segments"],
        settings: Settings,
        client: RedisClient,
        written: asyncio.Event | None = None,
        **kwargs: Any,  # noqa: ANN401 -- mode's Service options
    ) -> OutboxRelay:
        """The relay of the trigger outboxes, or of the segment change outboxes."""
        keys, topics = Keys(settings.redis.key_prefix), TopicNames.from_settings(settings.topics)
        if outbox == "triggers":
            stream, topic, render = keys.outbox, topics.triggers, render_trigger
        else:
            stream, topic, render = keys.segment_outbox, topics.segments, render_change
        relay = cls(
            settings, client, outbox=stream, topic=topic, render=render, written=written, **kwargs
        )
        relay.relayed_metric = metrics.RELAYED.labels(outbox)
        relay.refused_metric = metrics.RELAY_REFUSED.labels(outbox)
        return relay

    async def on_start(self) -> None:
        # Not awaited here: a worker starting while Redis is away must not fail to start.
        self.add_future(self._run())

    async def _create_groups(self) -> None:
        for outbox in self._outboxes:
            try:
                await self._client.xgroup_create(outbox, GROUP, id="0", mkstream=True)
            except ResponseError as exc:
                if "BUSYGROUP" not in str(exc):
                    raise

    async def on_stop(self) -> None:
        await asyncio.to_thread(self._producer.flush, _FLUSH_TIMEOUT_S)

    async def _run(self) -> None:
        grouped = False
        while not self.should_stop:
            try:
                if not grouped:
                    await self._create_groups()
                    grouped = True
                claim = self.rounds % 100 == 0  # now and then, take over a dead relay's entries
                moved = await self.relay_once(claim=claim)
            except (RedisError, OSError) as exc:
                log.warning("outbox relay: Redis failed (%s); retrying", exc)
                await asyncio.sleep(_ERROR_SLEEP_S)
                continue
            except Exception:  # the outbox keeps what was not sent: said, and tried again
                log.exception("outbox relay: a round failed; its entries stay in the outbox")
                await asyncio.sleep(_ERROR_SLEEP_S)
                continue
            self.rounds += 1
            if self._refused:
                await asyncio.sleep(_ERROR_SLEEP_S)  # the broker refused: not at once again
            elif not moved or not self._more:
                # A read that took less than it could took all there was: another at once
                # would find nothing (a round trip a batch), and what is written meanwhile
                # nudges the wait.
                await self._idle()

    async def _idle(self) -> None:
        """Until this worker writes to the outbox, or the next poll (for other workers'
        entries, and a dead relay's)."""
        await nudged_or_after(self._written, _IDLE_SLEEP_S)

    async def relay_once(self, *, claim: bool = False) -> int:
        """Send what the outbox holds for this relay, and what the broker refused last
        round; returns how many entries were acknowledged."""
        entries = await self._read(claim=claim)
        self._producer.poll(0)  # the word on messages an earlier round left in flight
        entries, self._refused = self._refused + entries, []
        if entries:
            await self._send(entries)
        return await self._acknowledge()

    async def _read(self, *, claim: bool) -> list[tuple[str, bytes, dict[bytes, bytes]]]:
        """One XREADGROUP per hash slot of the outboxes (all sixteen at once on one Redis),
        not one per outbox: a busy worker's relay runs a round after every batch."""
        pipe = self._client.pipeline(transaction=False)
        asked: list[str | None] = []  # the outbox of an XAUTOCLAIM; None for an XREADGROUP
        if claim:
            for outbox in self._outboxes:
                pipe.xautoclaim(
                    outbox, GROUP, self._consumer, self._claim_idle_ms, count=self._batch
                )
                asked.append(outbox)
        for slot in self._slots:
            streams = dict.fromkeys(slot, ">")
            pipe.xreadgroup(GROUP, self._consumer, streams, count=self._batch)  # type: ignore[arg-type]  # redis-py's StreamIdT is narrower than str
            asked.append(None)
        read: list[tuple[str, bytes, dict[bytes, bytes]]] = []
        self._more = False
        for claimed_from, reply in zip(asked, await pipe.execute(), strict=True):
            if claimed_from is not None:
                claimed = _claimed(reply)
                self._more |= len(claimed) >= self._batch
                read += [(claimed_from, entry_id, fields) for entry_id, fields in claimed]
                continue
            for stream, entries in reply or ():
                name = stream.decode() if isinstance(stream, bytes) else stream
                self._more |= len(entries) >= self._batch
                read += [(name, entry_id, fields) for entry_id, fields in entries if fields]
        return read

    async def _send(self, entries: list[tuple[str, bytes, dict[bytes, bytes]]]) -> None:
        for outbox, entry_id, fields in entries:
            self._produce(fields, self._report(outbox, entry_id, fields))
        unsent = await asyncio.to_thread(self._producer.flush, self._flush_timeout_s)
        if unsent:
            log.warning(
                "%d messages for %s not yet confirmed after %.0fs (the broker away?); "
                "acknowledged once it confirms them", unsent, self._topic, self._flush_timeout_s,
            )  # fmt: skip
        if self._refused:
            log.warning(
                "%d messages for %s refused by the broker (%s); sent again next round",
                len(self._refused), self._topic, self._refusal,
            )  # fmt: skip

    async def _acknowledge(self) -> int:
        """Every entry the broker confirmed since the last round, acknowledged and deleted:
        one XACK and one XDEL per outbox, not two commands per message."""
        confirmed, self._confirmed = self._confirmed, []
        if not confirmed:
            return 0
        acknowledged: defaultdict[str, list[bytes]] = defaultdict(list)
        for outbox, entry_id in confirmed:
            acknowledged[outbox].append(entry_id)
        pipe = self._client.pipeline(transaction=False)
        for outbox, entry_ids in acknowledged.items():
            pipe.xack(outbox, GROUP, *entry_ids)
            pipe.xdel(outbox, *entry_ids)
        try:
            await pipe.execute()
        except (RedisError, OSError):
            self._confirmed = confirmed + self._confirmed  # acknowledged next round
            raise
        self.relayed += len(confirmed)
        if self.relayed_metric is not None:
            self.relayed_metric.inc(len(confirmed))
        return len(confirmed)

    def _report(self, outbox: str, entry_id: bytes, fields: dict[bytes, bytes]) -> Any:  # noqa: ANN401 -- librdkafka callback
        """The broker's word on one entry, whenever it comes (librdkafka calls it from
        whichever poll or flush receives it)."""

        def on_delivery(error: RdKafkaError | None, _message: Message) -> None:
            if error is None:
                self._confirmed.append((outbox, entry_id))
                return
            # Counted here, not after the flush: a refusal may come in a later round's poll.
            self._refusal = error.str()
            self._refused.append((outbox, entry_id, fields))
            self.refused += 1
            if self.refused_metric is not None:
                self.refused_metric.inc()

        return on_delivery

    def _produce(self, fields: Fields, on_delivery: Any) -> None:  # noqa: ANN401 -- librdkafka callback
        key, value, message_id = self._render(fields)
        while True:
            try:
                self._producer.produce(
                    self._topic,
                    value,
                    key,
                    headers={"crm.id": message_id},
                    on_delivery=on_delivery,
                )
                break
            except BufferError:
                self._producer.poll(0.1)
        self._producer.poll(0)


def _claimed(reply: Any) -> list[tuple[bytes, dict[bytes, bytes]]]:  # noqa: ANN401 -- redis-py reply shapes
    """(id, fields) from an XAUTOCLAIM reply, [next, entries, deleted]; entries deleted
    meanwhile come back without fields."""
    if not reply:
        return []
    return [(entry_id, fields) for entry_id, fields in reply[1] if fields]
