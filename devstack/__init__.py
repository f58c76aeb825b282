"""The local development stack: one Kafka broker (KRaft) and one Redis, no Docker.

``crmstream stack up`` starts what is missing, ``down`` stops what ``up``
started (and nothing else), ``status`` says what answers where. A service that
already answers at the configured address is used as it is.
"""

from devstack.manager import ServiceState, ServiceStatus, Stack
from devstack.settings import StackSettings

__all__ = ["ServiceState", "ServiceStatus", "Stack", "StackSettings"]
