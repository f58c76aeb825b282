"""A partition's time, owned in one place (partition_timing.py): its clock (clock.py), the
names and values of its timing entries in Redis (members.py), and every call that moves
them (functions/timers.py)."""

from handlers.timing.allowance import Allowances
from handlers.timing.members import DueEntry
from handlers.timing.partition_timing import (
    PartitionTiming,
    Runner,
    Walked,
    timers_library,
)

__all__ = ["Allowances", "DueEntry", "PartitionTiming", "Runner", "Walked", "timers_library"]
