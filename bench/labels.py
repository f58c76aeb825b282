"""The suite's names, where every part of it (and the command line) can read them without
loading Kafka clients: the scenarios, in the order they run, and the contenders."""

from __future__ import annotations

from typing import Final

SCENARIOS: Final = ("ingest", "profiles", "full", "latency", "scaling", "memory")

CRMSTREAM: Final = "crmstream"
# The same workers with every pack journey on (crmstream bench … --journeys).
JOURNEYS_ON: Final = "crmstream, pack journeys on"
CEILING_CONFLUENT: Final = "ceiling: confluent-kafka read + parse"
CEILING_AIOKAFKA: Final = "ceiling: aiokafka read + parse"
NAIVE: Final = "naive Faust agent (a round trip per event)"
QUIXSTREAMS: Final = "quixstreams (a pipeline per batch)"
BYTEWAX: Final = "bytewax (a pipeline per batch)"
