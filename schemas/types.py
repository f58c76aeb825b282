"""Constrained field types shared by the event and trigger models.

Identifiers are bounded in length and character set: they end up in Kafka keys
(``shop:customer``, so no colon) and in Redis Cluster hash tags (so no braces).
"""

from __future__ import annotations

import re
from decimal import Decimal
from typing import Annotated, Final, Literal

from pydantic import AwareDatetime, BeforeValidator, Field, StringConstraints, WithJsonSchema

# Limits a storefront must respect; generous for real use, tight enough to stop abuse.
MAX_ID_LENGTH: Final = 128
MAX_TEXT_LENGTH: Final = 2000

# A shop or customer name becomes part of file names (rules/shops/<shop>.yaml), Redis keys
# and glob patterns: whatever carries one in from outside (an HTTP path, a command-line
# argument) checks it against these first (is_shop_id, is_customer_id).
SHOP_ID_PATTERN: Final = r"^[A-Za-z0-9][A-Za-z0-9._\-]{0,63}$"
CUSTOMER_ID_PATTERN: Final = r"^[A-Za-z0-9][A-Za-z0-9._@\-]{0,63}$"
SHOP_ID_RULE: Final = "letters, digits, '.', '_' and '-', up to 64, starting with a letter or digit"

EventId = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9._:\-]{0,127}$")]
ShopId = Annotated[str, StringConstraints(pattern=SHOP_ID_PATTERN)]
CustomerId = Annotated[str, StringConstraints(pattern=CUSTOMER_ID_PATTERN)]
# Anonymous ids come from cookies and device ids: a little more freedom, still no colon.
AnonymousId = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9._=+/\-]{0,127}$")]
ItemId = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9._:/\-]{0,127}$")]
OrderId = ItemId
Source = Annotated[str, StringConstraints(min_length=1, max_length=256)]
Label = Annotated[str, StringConstraints(min_length=1, max_length=64, strip_whitespace=True)]
Text = Annotated[str, StringConstraints(max_length=MAX_TEXT_LENGTH)]
EventTime = AwareDatetime

# Money in the currency's major unit: "199.00" or 199.0, exact, never negative.
Money = Annotated[
    Decimal,
    Field(ge=0, max_digits=14, decimal_places=2, allow_inf_nan=False),
    WithJsonSchema(
        {
            "anyOf": [
                {"type": "string", "pattern": r"^[0-9]{1,12}(\.[0-9]{1,2})?$"},
                {"type": "number", "minimum": 0},
            ],
            "description": "amount in the currency's major unit; a decimal string is preferred",
        }
    ),
]
Quantity = Annotated[int, Field(ge=1, le=9999)]
Rating = Annotated[int, Field(ge=1, le=5)]
Currency = Annotated[str, StringConstraints(pattern=r"^[A-Z]{3}$")]


# The spellings of a gender that storefronts and customer sheets use, and the canonical
# value each means. Events and the importer read them alike; anything else is refused.
GENDER_SPELLINGS: Final = {
    "female": "female", "f": "female", "woman": "female", "女": "female", "女士": "female",
    "male": "male", "m": "male", "man": "male", "男": "male", "先生": "male",
    "unknown": "unknown", "u": "unknown", "未知": "unknown", "保密": "unknown",
}  # fmt: skip


def canonical_gender(value: object) -> object:
    """A known spelling (any case, spaces around) as its canonical value; anything else
    is left for the Literal to refuse, with the values it takes."""
    if isinstance(value, str):
        return GENDER_SPELLINGS.get(value.strip().lower(), value)
    return value


Gender = Annotated[
    Literal["female", "male", "unknown"],
    BeforeValidator(canonical_gender),
    Field(
        description="female, male or unknown; also accepted, in any case: "
        + ", ".join(sorted(k for k, v in GENDER_SPELLINGS.items() if k != v))
    ),
]


_SHOP_ID: Final = re.compile(SHOP_ID_PATTERN)
_CUSTOMER_ID: Final = re.compile(CUSTOMER_ID_PATTERN)


def is_shop_id(text: str) -> bool:
    """The contract's shop pattern, whole (a trailing newline does not pass)."""
    return _SHOP_ID.fullmatch(text) is not None


def is_customer_id(text: str) -> bool:
    return _CUSTOMER_ID.fullmatch(text) is not None
