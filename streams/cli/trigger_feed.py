"""The demo's view of ``crm.triggers`` (the newest triggers and a count per rule) and of
``crm.dlq`` (dead letters per event stream)."""

from __future__ import annotations

import threading
import uuid
from collections import Counter, deque
from typing import Any

import orjson
from confluent_kafka import Consumer
from rich.table import Table

from crmstream.settings import Settings
from crmstream.topics import EVENT_STREAMS, TopicNames
from streams.dead_letters import SOURCE_TOPIC

_SHOWN = 8


def explain(trigger: dict[str, Any]) -> str:
    """A trigger's reason in one line: each condition, with the values it read."""
    parts = []
    for matched in trigger["data"].get("reason", []):
        values = ", ".join(f"{k.split('.')[-1]}={v}" for k, v in matched.get("values", {}).items())
        parts.append(f"{matched['condition']}" + (f" ({values})" if values else ""))
    return "; ".join(parts)


class TriggerFeed(threading.Thread):
    """Reads triggers and dead letters as they come (a fresh group, from the end of both)."""

    def __init__(self, settings: Settings) -> None:
        super().__init__(name="demo-triggers", daemon=True)
        self._consumer = Consumer(
            {
                **settings.kafka.librdkafka(),
                "group.id": f"demo-feed-{uuid.uuid4().hex[:8]}",
                "auto.offset.reset": "latest",
                "enable.auto.commit": False,
            }
        )
        names = TopicNames.from_settings(settings.topics)
        self._dlq = names.dlq
        self._stream_of_topic = {names.event(stream): stream for stream in EVENT_STREAMS}
        self._consumer.subscribe([names.triggers, names.dlq])
        self.latest: deque[dict[str, Any]] = deque(maxlen=_SHOWN)
        self.per_rule: Counter[str] = Counter()
        self.dead_letters: Counter[str] = Counter()  # event stream → dead letters
        self.stopping = threading.Event()

    def run(self) -> None:
        try:
            while not self.stopping.is_set():
                for message in self._consumer.consume(num_messages=100, timeout=0.25):
                    value = message.value()
                    if message.error() is None and message.topic() == self._dlq:
                        headers = dict(message.headers() or [])
                        raw = headers.get(SOURCE_TOPIC) or b""
                        source = raw.decode(errors="replace") if isinstance(raw, bytes) else raw
                        self.dead_letters[self._stream_of_topic.get(source, "?")] += 1
                    elif message.error() is None and value:
                        trigger = orjson.loads(value)
                        self.latest.appendleft(trigger)
                        self.per_rule[trigger["data"]["rule"]] += 1
        finally:
            self._consumer.close()

    def table(self, held: int) -> Table:
        counts = ", ".join(f"{rule} {n}" for rule, n in self.per_rule.most_common())
        title = f"triggers on crm.triggers — {counts or 'none yet'}"
        if held:
            title += f"; held for the customers' quiet hours: {held}"
        table = Table(title=title, expand=True)
        table.add_column("time (UTC)", no_wrap=True)
        table.add_column("customer", no_wrap=True)
        table.add_column("rule → channel", no_wrap=True)
        table.add_column("why")
        for trigger in list(self.latest):
            data = trigger["data"]
            holdout = " [dim](holdout)[/dim]" if data.get("holdout") else ""
            table.add_row(
                trigger["time"][11:19],
                f"{trigger['shop']}:{trigger['subject']}",
                f"{data['rule']} → {data['channel']}{holdout}",
                explain(trigger),
            )
        return table
