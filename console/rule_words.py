"""A rule in the merchant's words, Chinese or English: when it fires, what limits it, what
counts as converted. Pure functions over the rule model; the words are in console/i18n.py."""

from __future__ import annotations

from datetime import date

from console.i18n import UNITS, channel_label, event_label, language_of, month_day_label, translator
from rules.model import Limits, Rule, Schedule
from rules.ordering import Ordering

# Largest first: a duration is said in the largest unit that divides it (90m stays 90 minutes).
_UNIT_S = (("d", 86_400), ("h", 3600), ("m", 60), ("s", 1))
# A leap year, so that 29 February reads as a date.
_ANY_LEAP_YEAR = 2024


def duration_words(seconds: int, language: str) -> str:
    """5400 → '90 分钟' / '90 minutes'; 129600 → '36 小时' / '36 hours'; 86400 → '1 day'."""
    unit, size = next((u, s) for u, s in _UNIT_S if seconds % s == 0)
    count = seconds // size
    chinese, one, more = UNITS[unit]
    if language_of(language) == "zh":
        return f"{count} {chinese}"
    return f"{count} {one if count == 1 else more}"


def channels_words(rule: Rule, language: str) -> str:
    """The channels in the order they are tried."""
    separator = translator(language)("list_separator")
    return separator.join(channel_label(language, channel) for channel in rule.then.channels)


def when_words(rule: Rule, language: str) -> str:
    t = translator(language)
    when = rule.when
    if when.event is not None:
        return t("rule_on_event", event=event_label(language, when.event))
    if when.absence is not None:
        absence = when.absence
        return t(
            "rule_absence",
            after=event_label(language, absence.after),
            missing=event_label(language, absence.missing, happened=False),
            within=duration_words(absence.within_s, language),
        )
    if when.schedule is None:  # the model refuses such a rule; this says so if one is built
        raise ValueError(f"rule {rule.id} has no event, absence or schedule")
    return _schedule_words(when.schedule, language)


def _schedule_words(schedule: Schedule, language: str) -> str:
    t = translator(language)
    days = duration_words((schedule.days or 0) * 86_400, language)
    if schedule.occasion == "birthday":
        occasion = t("rule_birthday")
    elif schedule.occasion == "holiday":
        occasion = t("rule_holiday", dates=_dates_words(schedule.dates, language))
    elif schedule.occasion == "dormant":
        occasion = t("rule_dormant", span=days)
    else:
        occasion = t("rule_after_delivery", span=days)
    return t("clause_separator").join((t("rule_at_clock", clock=schedule.daily), occasion))


def _dates_words(dates: list[str], language: str) -> str:
    """'01-01' → '1月1日' / '1 Jan'; one that is no day of the calendar stays as written."""
    said = []
    for text in dates:
        month, day = (int(part) for part in text.split("-"))
        try:
            date(_ANY_LEAP_YEAR, month, day)
        except ValueError:
            said.append(text)
            continue
        said.append(month_day_label(language, month, day))
    return translator(language)("list_separator").join(said)


def limits_words(rule: Rule, language: str, daily_cap: int) -> list[str]:
    """Each limit the rule sets as a clause (cooldown, quiet hours, holdout, lateness), then
    consent and the daily cap, which every rule has: the cap is the worker's setting."""
    t = translator(language)
    limits = rule.limits
    said = []
    if limits.cooldown_s:
        said.append(t("rule_cooldown", span=duration_words(limits.cooldown_s, language)))
    quiet = _quiet_hours_words(limits, language)
    if quiet:
        said.append(quiet)
    if limits.holdout:
        said.append(t("rule_holdout", share=f"{round(limits.holdout * 100, 2):g}%"))
    if rule.max_age_s:
        said.append(t("rule_max_age", span=duration_words(rule.max_age_s, language)))
    if rule.service:
        said.append(t("rule_transactional"))
    else:
        said.append(t("rule_marketing", cap=daily_cap))
    return said


def _quiet_hours_words(limits: Limits, language: str) -> str | None:
    quiet = limits.quiet_hours
    if quiet is None:
        return None
    t = translator(language)
    if quiet.start == quiet.end:
        return t("rule_quiet_hours_void", start=quiet.start)
    return t("rule_quiet_hours", start=quiet.start, end=quiet.end)


def goal_words(rule: Rule, language: str) -> str:
    """What counts as a conversion; its condition, if any, is shown beside as code."""
    goal = rule.goal
    return translator(language)(
        "rule_goal",
        event=event_label(language, goal.event),
        span=duration_words(goal.within_s, language),
    )


def limits_sentence(rule: Rule, language: str, daily_cap: int) -> str:
    """The limits as one sentence: 'cooldown 1 day, quiet hours 22:00 to 08:00, ...'."""
    separator = translator(language)("clause_separator")
    return separator.join(limits_words(rule, language, daily_cap))


def ordering_words(ordering: Ordering, language: str) -> str:
    """'decided on arrival: a service send on its own event alone', or in event-time
    order and why (rules/ordering.py)."""
    t = translator(language)
    reasons = []
    for code, detail in ordering.reasons:
        said = event_label(language, detail) if code == "absence" else detail
        reasons.append(t(f"ordering_{code}", detail=said))
    name = t("ordering_" + ordering.name.replace(" ", "_").replace("-", "_"))
    return f"{name}{t('colon')}{t('clause_separator').join(reasons)}"
