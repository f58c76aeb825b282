"""Did a rule work? Conversion of the customers it reached against its holdout group.

Lift is the difference of two conversion rates, sent minus held out, with a 95%
confidence interval from the two-proportion z-test's unpooled (Wald) standard
error, and the test's two-sided p-value from the pooled one. Pure arithmetic on
counts: the counts themselves are kept in Redis (functions/emit.lua).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from math import sqrt
from statistics import NormalDist
from typing import Final

Z_95: Final = NormalDist().inv_cdf(0.975)

# Outcomes a rule's decisions are counted under (functions/emit.lua and upkeep.lua).
SENT, HELD, HOLDOUT = "sent", "held", "holdout"
SUPPRESSED: Final = ("consent", "cooldown", "capped", "expired")
CONVERTED, CONVERTED_HOLDOUT = "converted", "converted_holdout"


@dataclass(frozen=True, slots=True)
class Lift:
    rate_sent: float | None
    rate_holdout: float | None
    lift: float | None  # rate_sent - rate_holdout, in absolute terms
    relative: float | None  # lift / rate_holdout
    ci_low: float | None
    ci_high: float | None
    p_value: float | None


def two_proportions(converted: int, reached: int, converted_out: int, held_out: int) -> Lift:
    """Rates, lift and its 95% interval; None where a group is empty."""
    rate_sent = converted / reached if reached else None
    rate_out = converted_out / held_out if held_out else None
    if rate_sent is None or rate_out is None:
        return Lift(rate_sent, rate_out, None, None, None, None, None)
    diff = rate_sent - rate_out
    spread = sqrt(rate_sent * (1 - rate_sent) / reached + rate_out * (1 - rate_out) / held_out)
    pooled = (converted + converted_out) / (reached + held_out)
    pooled_spread = sqrt(pooled * (1 - pooled) * (1 / reached + 1 / held_out))
    # Both groups all converted, or none did: there is no difference to test.
    p_value = 2 * (1 - NormalDist().cdf(abs(diff) / pooled_spread)) if pooled_spread else 1.0
    return Lift(
        rate_sent=rate_sent,
        rate_holdout=rate_out,
        lift=diff,
        relative=diff / rate_out if rate_out else None,
        ci_low=diff - Z_95 * spread,
        ci_high=diff + Z_95 * spread,
        p_value=p_value,
    )


@dataclass(frozen=True, slots=True)
class RuleStats:
    """One rule's decisions and conversions (a shop's, or all shops')."""

    rule: str
    counts: Mapping[str, int]

    def __getitem__(self, outcome: str) -> int:
        return self.counts.get(outcome, 0)

    @property
    def reached(self) -> int:
        """Sent now or held for quiet hours and sent later: the treatment group."""
        return self[SENT] + self[HELD]

    @property
    def fired(self) -> int:
        """Every occurrence whose conditions held, whatever the guards did with it."""
        return self.reached + self[HOLDOUT] + sum(self[reason] for reason in SUPPRESSED)

    @property
    def lift(self) -> Lift:
        return two_proportions(
            self[CONVERTED], self.reached, self[CONVERTED_HOLDOUT], self[HOLDOUT]
        )

    def as_dict(self) -> dict[str, object]:
        lift = self.lift
        return {
            "rule": self.rule,
            "fired": self.fired,
            "sent": self.reached,
            "held_quiet_hours": self[HELD],
            "suppressed": {reason: self[reason] for reason in SUPPRESSED},
            "holdout": self[HOLDOUT],
            "converted": self[CONVERTED],
            "converted_holdout": self[CONVERTED_HOLDOUT],
            "conversion_rate": lift.rate_sent,
            "conversion_rate_holdout": lift.rate_holdout,
            "lift": lift.lift,
            "relative_lift": lift.relative,
            "lift_ci95": None if lift.ci_low is None else [lift.ci_low, lift.ci_high],
            "p_value": lift.p_value,
            "test": "two-proportion z-test (pooled p-value, unpooled 95% interval)",
        }
