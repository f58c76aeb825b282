"""The rules, segments and journeys a worker runs: loaded from their folders, checked,
and loaded again on a reload (SIGHUP, or a change in a folder), where a set with a
problem is refused and the one running stays."""

from __future__ import annotations

import logging

from crmstream import metrics
from crmstream.settings import Settings
from handlers.journeys.runner import JourneyRunner
from handlers.segments.stage import SegmentStage
from handlers.triggers.samples import rule_samples
from handlers.triggers.stage import TriggerStage
from rules.folders import journeys_folder, rules_folder, segments_folder
from rules.journey_loader import JourneySet, load_journeys
from rules.loader import RuleSet, RuleSetError, load_rules
from rules.segment_set import SegmentSet, load_segments

log = logging.getLogger("crmstream.pipeline")


def load_rule_set(settings: Settings) -> RuleSet:
    """The configured rules, checked; raises RuleSetError naming every problem."""
    return load_rules(rules_folder(settings.triggers), rule_samples)


def load_journey_set(settings: Settings) -> JourneySet:
    """The configured journeys, checked; raises RuleSetError naming every problem."""
    return load_journeys(journeys_folder(settings.triggers), rule_samples)


def load_segment_set(settings: Settings) -> SegmentSet:
    """The configured segments, checked; raises RuleSetError naming every problem."""
    return load_segments(segments_folder(settings.segments), rule_samples(None))


def reload_sets(
    settings: Settings, stage: TriggerStage, segments: SegmentStage, journeys: JourneyRunner
) -> RuleSet | None:
    """Load the rules and segments again, and the journeys apart; on a problem keep the
    running ones and say why. Returns the rules now running, if they were reloaded."""
    _reload_journeys(settings, stage, journeys)
    try:
        rules = load_rule_set(settings)
        segment_set = load_segment_set(settings)
    except RuleSetError as exc:
        # The problems are the message: a traceback would bury them.
        log.error(  # noqa: TRY400
            "rules and segments not reloaded; the %d rules and %d segments loaded stay:\n%s",
            len(stage.rules.rules), len(segments.segments.segments), exc,
        )  # fmt: skip
        metrics.RULE_RELOADS.labels("failed").inc()
        return None
    stage.rules = rules
    segments.segments = segment_set
    enabled = sum(1 for r in rules.rules if r.rule.enabled)
    metrics.RULE_RELOADS.labels("ok").inc()
    metrics.RULES_LOADED.set(enabled)
    log.info("rules reloaded: %d enabled; %d segments", enabled, len(segment_set.segments))
    return rules


def _reload_journeys(settings: Settings, stage: TriggerStage, journeys: JourneyRunner) -> None:
    try:
        journey_set = load_journey_set(settings)
    except RuleSetError as exc:
        log.error(  # noqa: TRY400 -- the problems are the message
            "journeys not reloaded; the %d loaded stay:\n%s",
            len(journeys.journeys.journeys), exc,
        )  # fmt: skip
        return
    journeys.use(journey_set)
    stage.use_journey_goals(journey_set.goals)
    log.info("journeys reloaded: %d", len(journey_set.journeys))
