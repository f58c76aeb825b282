"""Backtesting a rule: what it would have fired over past events, sending nothing.

The live engine runs the rule: the same profile stage, rule stage, guards, timers
and trigger functions, on the same Redis, under a key prefix of its own that is
removed afterwards. Nothing reaches Kafka: the triggers stay in that scratch
outbox and are read from there. Events are taken as a worker reading a backlog
takes them: every decision put off and then made in event-time order, so the
trigger ids are the ones the live engine gives for the same events.
"""

from __future__ import annotations

import shutil
import tempfile
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Final, TypeAlias, cast

import orjson

from crmstream.settings import Settings
from handlers.backtest_report import BacktestReport
from handlers.keys import Keys
from handlers.pipeline import ProfilesAndTriggers
from handlers.redis_client import RedisClient
from handlers.triggers.samples import rule_samples
from handlers.triggers.stats import read_rule_stats
from rules.lift import SUPPRESSED
from rules.loader import RuleSetError, compile_rule_file
from schemas.decode import Decoder, Rejected
from schemas.events import Envelope
from schemas.times import epoch_ms

_BATCH: Final = 1000
_Entries: TypeAlias = list[tuple[bytes, dict[bytes, bytes]]]
# One partition holds every event: the file is taken in its own order, as one stream.
_PARTITION: Final = ("backtest", 0)


def event_lines(path: Path) -> Iterator[tuple[int, bytes]]:
    """The lines of a JSON-lines file that hold something, read one at a time, with
    their numbers."""
    with path.open("rb") as lines:
        for number, line in enumerate(lines, start=1):
            if stripped := line.strip():
                yield number, stripped


def more_events_than(path: Path, limit: int) -> bool:
    """Whether the file holds more than ``limit`` events (valid or not); reads no further."""
    return any(count > limit for count, _line in enumerate(event_lines(path), 1))


def read_events(path: Path, report: BacktestReport) -> Iterator[Envelope]:
    """The valid events of a JSON-lines file; the others are noted by line number."""
    decoder = Decoder()
    not_after = decoder.not_after(datetime.now(UTC))
    for number, line in event_lines(path):
        decoded = decoder.decode(line, None, None, not_after)
        if isinstance(decoded, Rejected):
            report.note_invalid(number, f"{decoded.reason.value}: {decoded.message}")
        else:
            report.events += 1
            yield decoded


async def backtest(
    settings: Settings,
    rule_file: Path,
    events: Path,
    until: datetime | None = None,
    sample: int = 5,
) -> BacktestReport:
    """Run the rule of ``rule_file`` over ``events`` (JSON lines); timers run to the last
    event's time, or to ``until``; the earliest ``sample`` triggers are kept whole.
    Raises RuleSetError for a bad rule file."""
    entry, problems = compile_rule_file(rule_file, rule_samples)
    if problems or entry is None:  # said of the file as given, not of the scratch copy
        raise RuleSetError(problems)
    folder = Path(tempfile.mkdtemp(prefix="crmstream-backtest-"))
    try:
        shutil.copy(rule_file, folder / rule_file.name)
        report = BacktestReport(entry.rule.id, sample_size=sample)
        await run_rules(settings, folder, read_events(events, report), report, until)
        return report
    finally:
        shutil.rmtree(folder, ignore_errors=True)


async def run_rules(
    settings: Settings,
    rules_dir: Path,
    events: Iterable[Envelope],
    report: BacktestReport,
    until: datetime | None = None,
) -> None:
    """Every rule of ``rules_dir`` over ``events``, with no segments, under a scratch key
    prefix that is removed afterwards; what they decided goes into ``report``."""

    async def collect(sink: ProfilesAndTriggers) -> None:
        await _collect(sink, report)

    await replay(settings, {"rules_dir": rules_dir}, events, collect, until=until)


async def replay(
    settings: Settings,
    triggers: dict[str, object],
    events: Iterable[Envelope],
    collect: Callable[[ProfilesAndTriggers], Awaitable[None]],
    *,
    until: datetime | None = None,
    profiles: dict[str, object] | None = None,
) -> None:
    """``events`` through the engine under a scratch key prefix, with no segments and the
    trigger (and profile) settings changed as given; ``collect`` reads what it left
    before the prefix is removed."""
    with tempfile.TemporaryDirectory(prefix="crmstream-backtest-") as no_segments:
        scratch = _scratch_settings(settings, triggers, Path(no_segments), profiles or {})
        sink = ProfilesAndTriggers.from_settings(scratch)
    # A decision's moment is the events' own time, as for a worker that was running
    # live when they happened: max_age expires what a live run would have expired.
    sink.writer.wall_ms = lambda: sink.time.read_up_to_ms(_PARTITION[1])
    try:
        await _run(sink, iter(events), until)
        await collect(sink)
    finally:
        await _wipe(sink, Keys(scratch.redis.key_prefix))
        await sink.close()


def _scratch_settings(
    settings: Settings,
    triggers: dict[str, object],
    segments_dir: Path,
    profiles: dict[str, object],
) -> Settings:
    prefix = f"{settings.redis.key_prefix}:backtest-{uuid.uuid4().hex[:12]}"
    # The clock is the events' own: it never moves on by itself while they are read, and
    # no write is still on its way, so it reaches the last event's time with no allowance.
    changed = {
        **triggers, "timer_idle_s": 10**9, "timer_disorder_s": 0.0,
        "timer_allowance_floor_s": 0.0,
    }  # fmt: skip
    return settings.model_copy(
        update={
            "redis": settings.redis.model_copy(update={"key_prefix": prefix}),
            "triggers": settings.triggers.model_copy(update=changed),
            "profiles": settings.profiles.model_copy(update=profiles),
            "segments": settings.segments.model_copy(update={"segments_dir": segments_dir}),
        }
    )


async def _run(
    sink: ProfilesAndTriggers, events: Iterator[Envelope], until: datetime | None
) -> None:
    newest = 0
    batch: list[Envelope] = []
    for event in events:
        batch.append(event)
        if len(batch) == _BATCH:
            newest = await _take(sink, batch, newest)
            batch = []
    if batch:
        newest = await _take(sink, batch, newest)
    # The end: caught up, at the last event's time (or later, when asked).
    end = max(newest, epoch_ms(until)) if until is not None else newest
    sink.time.observe({_PARTITION: end}, behind={})
    # Everything put off, and every timer due by the end: a call takes a bounded share.
    while await sink.fire_due():
        pass


async def _take(sink: ProfilesAndTriggers, batch: list[Envelope], newest: int) -> int:
    newest = max(newest, *(event.time_ms for event in batch))
    # Still reading a backlog: decisions are put off and made in event-time order.
    sink.time.observe({_PARTITION: newest}, behind={_PARTITION: None})
    await sink.handle(batch, [_PARTITION[1]] * len(batch))
    await sink.fire_due()
    return newest


async def _collect(sink: ProfilesAndTriggers, report: BacktestReport) -> None:
    """The triggers the rule left in the scratch outbox and among the held ones, read a
    page at a time into the report's tallies."""
    client, keys = sink.client, sink.keys
    for base in keys.trigger_shards():
        async for entry in _pages(client, keys.outbox(base)):
            report.note_trigger(orjson.loads(entry), held=False)
        async for _field, value in client.hscan_iter(keys.held_payloads(base), count=_BATCH):
            report.note_trigger(orjson.loads(value.split(b"\n", 1)[1]), held=True)
    report.waiting = int(await client.zcard(keys.partition(_PARTITION[1]).timers))
    counts: Counter[str] = Counter()
    for stats in await read_rule_stats(client, keys):
        counts.update(stats.counts)
    report.suppressed = {reason: counts[reason] for reason in SUPPRESSED}


async def _pages(client: RedisClient, stream: str) -> AsyncIterator[bytes]:
    """The events of an outbox stream, _BATCH entries a round trip."""
    start = "-"
    while True:
        # The client decodes nothing: ids and fields come back as bytes.
        page = cast(_Entries, await client.xrange(stream, min=start, count=_BATCH))
        for _id, fields in page:
            yield fields[b"event"]
        if len(page) < _BATCH:
            return
        start = "(" + page[-1][0].decode()


async def _wipe(sink: ProfilesAndTriggers, keys: Keys) -> None:
    client = sink.client
    doomed = [key async for key in client.scan_iter(match=keys.pattern(), count=1000)]
    for start in range(0, len(doomed), 1000):
        await client.unlink(*doomed[start : start + 1000])
