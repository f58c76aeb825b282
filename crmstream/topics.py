"""The topic names of docs/DESIGN.md, derived from one prefix (``crm`` unless configured)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from crmstream.settings import TopicSettings

# Every event type's topic is one of these streams; order follows the funnel.
EVENT_STREAMS: Final = ("browse", "cart", "order", "review", "customer")


@dataclass(frozen=True, slots=True)
class TopicNames:
    """Resolved topic names for one deployment (or one test)."""

    prefix: str

    @classmethod
    def from_settings(cls, settings: TopicSettings) -> TopicNames:
        return cls(settings.prefix)

    def event(self, stream: str) -> str:
        if stream not in EVENT_STREAMS:
            raise ValueError(f"unknown event stream {stream!r}; expected one of {EVENT_STREAMS}")
        return f"{self.prefix}.events.{stream}"

    @property
    def events(self) -> tuple[str, ...]:
        return tuple(self.event(stream) for stream in EVENT_STREAMS)

    @property
    def dlq(self) -> str:
        return f"{self.prefix}.dlq"

    @property
    def triggers(self) -> str:
        return f"{self.prefix}.triggers"

    @property
    def segments(self) -> str:
        return f"{self.prefix}.segments"

    @property
    def outputs(self) -> tuple[str, ...]:
        return (self.dlq, self.triggers, self.segments)

    @property
    def all(self) -> tuple[str, ...]:
        return self.events + self.outputs
