"""Keyed hashes for contact details: the same phone always hashes the same, and cannot be read."""

from __future__ import annotations

import hashlib
import hmac
import re
from typing import Final

_NOT_DIGITS: Final = re.compile(r"\D")


def normalize_phone(phone: str) -> str:
    """Digits only; a mainland China number loses its +86 so both spellings match."""
    digits = _NOT_DIGITS.sub("", phone)
    if len(digits) == 13 and digits.startswith("86"):
        digits = digits[2:]
    return digits


def normalize_email(email: str) -> str:
    return email.strip().lower()


def keyed_hash(key: bytes, value: str) -> str:
    """HMAC-SHA256 as 64 hex digits."""
    return hmac.new(key, value.encode(), hashlib.sha256).hexdigest()


def phone_hash(key: bytes, phone: str) -> str:
    return keyed_hash(key, "phone:" + normalize_phone(phone))


def email_hash(key: bytes, email: str) -> str:
    return keyed_hash(key, "email:" + normalize_email(email))
