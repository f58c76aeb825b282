"""A merchant's existing customers, from CSV or Excel, as ``customer.registered`` events.

Headers are matched to profile fields by common names, Chinese ones included
(姓名, 手机, 生日, 性别, 地区, 会员等级 …); ``--map HEADER=FIELD`` adds or overrides.
Every row becomes one event or one reported error with its row number: nothing
is dropped silently. Phone numbers and e-mail addresses leave the importer only
as keyed hashes.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any, Final
from zoneinfo import ZoneInfo

from crmstream.privacy import email_hash, phone_hash
from schemas.types import GENDER_SPELLINGS
from storefront.sheets import Row, RowError

# Header (lower-cased, spaces removed) → field. Unknown headers are reported, not guessed.
DEFAULT_HEADERS: Final = {
    **dict.fromkeys(
        ["customer_id", "customerid", "customer", "id", "客户id", "客户编号", "会员id",
         "会员编号", "会员号", "用户id"], "customer_id"),
    **dict.fromkeys(["name", "姓名", "客户姓名", "会员姓名", "昵称"], "name"),
    **dict.fromkeys(["phone", "mobile", "手机", "手机号", "手机号码", "电话"], "phone"),
    **dict.fromkeys(["email", "e-mail", "邮箱", "电子邮箱"], "email"),
    **dict.fromkeys(["birthday", "birthdate", "生日", "出生日期"], "birthday"),
    **dict.fromkeys(["gender", "sex", "性别"], "gender"),
    **dict.fromkeys(["region", "province", "地区", "省份", "区域"], "region"),
    **dict.fromkeys(["city", "城市"], "city"),
    **dict.fromkeys(["timezone", "时区"], "timezone"),
    **dict.fromkeys(["member_level", "level", "会员等级", "等级"], "member_level"),
    **dict.fromkeys(["tags", "标签"], "tags"),
    **dict.fromkeys(["marketing_consent", "营销同意", "接受营销"], "consent_marketing"),
    **dict.fromkeys(["sms_consent", "短信同意", "接受短信"], "consent_sms"),
    **dict.fromkeys(["email_consent", "邮件同意"], "consent_email"),
    **dict.fromkeys(["push_consent", "推送同意"], "consent_push"),
    **dict.fromkeys(["registered_at", "注册时间", "入会时间"], "registered_at"),
}  # fmt: skip
FIELDS: Final = frozenset(DEFAULT_HEADERS.values())
# Read but never sent: a name is not part of the profile.
IGNORED: Final = frozenset({"name"})

_YES: Final = frozenset({"是", "y", "yes", "true", "1", "同意"})
_NO: Final = frozenset({"否", "n", "no", "false", "0", "不同意"})
_TAG_SPLIT: Final = re.compile(r"[,，;；|、]")  # noqa: RUF001 -- Chinese separators on purpose
_DATE_FORMATS: Final = ("%Y-%m-%d", "%Y/%m/%d", "%Y.%m.%d", "%Y%m%d", "%Y年%m月%d日")
_NAMESPACE: Final = uuid.UUID("6f1c3a52-3a0e-4d6b-9a34-1b0d5c7e9f21")
SHOP_ZONE: Final = ZoneInfo("Asia/Shanghai")


@dataclass(slots=True)
class ColumnMapping:
    """Which header feeds which field."""

    overrides: dict[str, str] = field(default_factory=dict)

    def resolve(self, headers: list[str]) -> tuple[dict[str, str], list[str]]:
        """(header → field, headers that feed nothing)."""
        mapped: dict[str, str] = {}
        unknown: list[str] = []
        for header in headers:
            target = self.overrides.get(header) or DEFAULT_HEADERS.get(_norm(header))
            if target is None:
                unknown.append(header)
            elif target not in FIELDS:
                raise RowError(f"--map {header}={target}: unknown field (one of {sorted(FIELDS)})")
            else:
                mapped[header] = target
        if "customer_id" not in mapped.values():
            raise RowError(
                f"no customer id column among {headers}; name it customer_id or 会员ID, "
                "or say which with --map HEADER=customer_id"
            )
        return mapped, unknown


def _norm(header: str) -> str:
    return header.strip().lower().replace(" ", "")


@dataclass(frozen=True, slots=True)
class Importer:
    """Turns rows into customer.registered events for one shop."""

    shop: str
    source: str
    mapping: dict[str, str]
    hash_key: bytes | None
    now: datetime = field(default_factory=lambda: datetime.now(UTC))

    def event(self, row: Row) -> dict[str, Any]:
        values = {
            target: row.cells.get(header)
            for header, target in self.mapping.items()
            if target not in IGNORED
        }
        customer = _text(values.pop("customer_id", None))
        if not customer:
            raise RowError("customer id is empty")
        data: dict[str, Any] = {}
        consents: dict[str, bool] = {}
        registered_at = self.now
        for name, raw in values.items():
            if raw is None or _text(raw) == "":
                continue
            if name == "registered_at":
                registered_at = _timestamp(raw)
            elif name.startswith("consent_"):
                consents[name.removeprefix("consent_")] = _yes_no(name, raw)
            else:
                data.update(self._fact(name, raw))
        if consents:
            data["consents"] = consents
        fingerprint = "|".join(f"{k}={data[k]}" for k in sorted(data))
        return {
            "specversion": "1.0",
            # Same row, same id: importing a file twice changes nothing downstream.
            "id": str(uuid.uuid5(_NAMESPACE, f"{self.shop}:{customer}:{fingerprint}")),
            "source": self.source,
            "type": "customer.registered",
            "time": registered_at.isoformat(),
            "shop": self.shop,
            "subject": customer,
            "data": data,
        }

    def _fact(self, name: str, raw: Any) -> dict[str, Any]:  # noqa: ANN401 -- cell values
        text = _text(raw)
        match name:
            case "phone" | "email":
                if self.hash_key is None:
                    raise RowError(
                        f"{name} present but no hash key: set CRMSTREAM_PRIVACY_HASH_KEY "
                        "(contact details are never sent in clear)"
                    )
                hashed = (phone_hash if name == "phone" else email_hash)(self.hash_key, text)
                return {f"{name}_hash": hashed}
            case "birthday":
                return {"birthday": _date(raw).isoformat()}
            case "gender":
                if not text.strip():
                    return {}
                gender = GENDER_SPELLINGS.get(text.strip().lower())
                if gender is None:
                    raise RowError(f"gender {text!r}: expected 男/女/未知 or male/female/unknown")
                return {"gender": gender}
            case "tags":
                return {"tags": [t.strip() for t in _TAG_SPLIT.split(text) if t.strip()]}
            case _:
                return {name: text}


def _text(value: Any) -> str:  # noqa: ANN401 -- cell values
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))  # Excel stores ids and phones as numbers
    return str(value).strip()


def _date(value: Any) -> date:  # noqa: ANN401 -- cell values
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    text = _text(value)
    for form in _DATE_FORMATS:
        try:
            return datetime.strptime(text, form).replace(tzinfo=UTC).date()
        except ValueError:
            continue
    raise RowError(f"birthday {text!r}: expected a date such as 1990-05-17 or 1990/5/17")


def _timestamp(value: Any) -> datetime:  # noqa: ANN401 -- cell values
    # A spreadsheet's times carry no zone; they are the shop's (docs/DESIGN.md §2).
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=SHOP_ZONE)
    try:
        parsed = datetime.fromisoformat(_text(value))
    except ValueError:
        return datetime.combine(_date(value), datetime.min.time(), SHOP_ZONE)
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=SHOP_ZONE)


def _yes_no(name: str, value: Any) -> bool:  # noqa: ANN401 -- cell values
    if isinstance(value, bool):
        return value
    text = _text(value).lower()
    if text in _YES:
        return True
    if text in _NO:
        return False
    raise RowError(f"{name} {text!r}: expected 是/否 or yes/no")
