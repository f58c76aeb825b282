"""The customer's timeline reads every kind of decision the log holds."""

from __future__ import annotations

from console.customers import timeline
from handlers.profile.read import iso

HELD_AT = 1_767_200_000_000
RELEASED_AT = HELD_AT + 9 * 3_600_000


def test_a_release_reads_with_its_holds_rule_at_when_it_went_out() -> None:
    held = {
        "outcome": "held", "decided_at": HELD_AT + 5, "rule": "survey", "version": 1,
        "at": HELD_AT, "trigger_id": "t-1", "channel": "sms", "caused_by": ["e1"],
        "reason": [], "release_at": RELEASED_AT,
    }  # fmt: skip
    released = {"outcome": "released", "decided_at": RELEASED_AT, "trigger_id": "t-1"}
    profile = {"recency": {"last_view": iso(HELD_AT - 1000)}}
    entries = timeline(profile, [released, held])
    assert [(e["kind"], e.get("outcome")) for e in entries] == [
        ("decision", "released"), ("decision", "held"), ("activity", None),
    ]  # fmt: skip
    assert entries[0]["rule"] == "survey"
    assert entries[0]["channel"] == "sms"
    assert entries[0]["at"] == iso(RELEASED_AT)
    assert entries[1]["at"] == iso(HELD_AT)


def test_a_release_whose_hold_has_left_the_log_still_reads() -> None:
    released = {"outcome": "released", "decided_at": RELEASED_AT, "trigger_id": "t-9"}
    (entry,) = timeline({"recency": {}}, [released])
    assert entry["at"] == iso(RELEASED_AT)
    assert entry["trigger_id"] == "t-9"


def test_a_journey_exit_reads_as_why_the_customer_left() -> None:
    left = {
        "outcome": "journey", "decided_at": HELD_AT + 5, "journey": "new-member-onboarding",
        "version": 1, "step": "ordered-early", "reason": "ordered within three days",
        "at": HELD_AT, "instance": "e1",
    }  # fmt: skip
    (entry,) = timeline({"recency": {}}, [left])
    assert entry["rule"] == "new-member-onboarding"
    assert entry["reason"] == []  # no conditions to list
    assert (entry["left_because"], entry["at_step"]) == (
        "ordered within three days",
        "ordered-early",
    )
