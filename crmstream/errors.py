"""The one exception tree of crmstream.

Every error the engine raises on purpose derives from :class:`CrmStreamError`,
so a caller can catch the whole family, or one branch of it::

    CrmStreamError
    ├── ConfigError                  settings that cannot work
    ├── StackError                   the local Kafka/Redis stack
    │   ├── MissingToolError         java, mvn or redis-server is not installed
    │   └── StackStartError          a service did not come up in time
    ├── KafkaError                   the broker refused or did not answer
    │   └── TopicError               topics could not be created or described
    ├── RedisUnavailableError        Redis did not answer
    ├── EventError                   an event that breaks the contract (schemas/)
    ├── RuleError                    a rule or segment file that cannot be used (rules/)
    ├── HandlerError                 applying an event or trigger failed (handlers/)
    │   ├── StateBehindError         Redis holds older offsets than it was given: read again
    │   ├── ReplicasBehindError      replicas did not acknowledge a batch's writes in time
    │   └── InvalidShopError         a shop name outside the contract's pattern
    └── BenchError                   a benchmark could not give a figure (bench/)

Subpackages add small subclasses under their own branch rather than new roots.
"""

from __future__ import annotations


class CrmStreamError(Exception):
    """Root of every error crmstream raises on purpose."""


class ConfigError(CrmStreamError):
    """Settings that cannot work together or cannot be parsed."""


class StackError(CrmStreamError):
    """The local development stack (``crmstream stack``) failed."""


class MissingToolError(StackError):
    """A program the local stack needs is not installed."""

    def __init__(self, tool: str, hint: str) -> None:
        super().__init__(f"{tool} not found on PATH: {hint}")
        self.tool = tool
        self.hint = hint


class StackStartError(StackError):
    """A local service was started but never became ready."""


class KafkaError(CrmStreamError):
    """The Kafka broker refused a request or did not answer in time."""


class TopicError(KafkaError):
    """Topics could not be created or described."""


class RedisUnavailableError(CrmStreamError):
    """Redis did not answer."""


class EventError(CrmStreamError):
    """An event breaks the contract (docs/DESIGN.md §1, "The event contract")."""


class RuleError(CrmStreamError):
    """A rule or segment file cannot be used."""


class HandlerError(CrmStreamError):
    """Applying an event or a trigger to the stores failed."""


class ReplicasBehindError(HandlerError):
    """A primary's replicas did not acknowledge a batch's writes within the timeout, so its
    offsets are not recorded: the batch is handed over again (it changes nothing twice)
    until they do, rather than risk a failover that keeps the offsets but not the state."""


class StateBehindError(HandlerError):
    """Redis holds older offsets than the worker recorded there: it lost recent writes (a
    crash under appendfsync everysec, a failover to a lagging replica, a restore). The
    partitions are to be read again from ``positions`` (topic, partition → offset)."""

    def __init__(self, positions: dict[tuple[str, int], int]) -> None:
        named = ", ".join(
            f"{topic}[{partition}]@{at}" for (topic, partition), at in positions.items()
        )
        super().__init__(f"Redis lost recent writes; reading again from {named}")
        self.positions = positions


class InvalidShopError(HandlerError):
    """A shop name that does not match the contract's pattern: it never reaches a file, a
    key or a cache."""


class BenchError(CrmStreamError):
    """A benchmark scenario could not give a figure: a contender died, or the stack is down."""
