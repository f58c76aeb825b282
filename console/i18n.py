"""The console's words in Chinese (the default) and English."""

from __future__ import annotations

from collections.abc import Callable
from typing import Final

LANGUAGES: Final = ("zh", "en")
DEFAULT: Final = "zh"

# key → (Chinese, English)
TEXT: Final[dict[str, tuple[str, str]]] = {
    "console": ("客户运营控制台", "Customer operations console"),
    "skip": ("跳到正文", "Skip to content"),
    "overview": ("概览", "Overview"),
    "customers": ("客户", "Customers"),
    "segments": ("人群", "Segments"),
    "rules": ("规则", "Rules"),
    "import": ("导入", "Import"),
    "sign_in": ("登录", "Sign in"),
    "sign_out": ("退出", "Sign out"),
    "token": ("店铺 API 令牌", "Shop API token"),
    "token_help": (
        "由管理员用 crmstream tokens create 店铺 生成。",
        "Made by an administrator with crmstream tokens create SHOP.",
    ),
    "bad_token": ("令牌无效或已撤销。", "That token is not valid, or was revoked."),
    "shop": ("店铺", "Shop"),
    "language": ("语言", "Language"),
    "search": ("查找客户", "Find a customer"),
    "search_label": ("客户 ID 或手机号", "Customer id or phone number"),
    "search_button": ("查找", "Find"),
    "no_customer": ("没有找到客户 {who}。", "No customer {who} here."),
    "no_phone": ("没有客户使用这个手机号。", "No customer has this phone number."),
    "bad_customer": ("这不是有效的客户 ID。", "That is not a customer id."),
    "profile": ("客户档案", "Profile"),
    "facts": ("资料", "Facts"),
    "consents": ("授权", "Consents"),
    "scores": ("分层与评分", "Tiers and scores"),
    "timeline": ("时间线", "Timeline"),
    "decisions_note": (
        "最近的触达决策，以及客户行为的最近时间。",
        "The latest trigger decisions, and when the customer last did what.",
    ),
    "nothing_yet": ("暂无记录。", "Nothing yet."),
    "member_of": ("所属人群", "Segments"),
    "none": ("无", "none"),
    "yes": ("是", "yes"),
    "no": ("否", "no"),
    "size": ("人数", "Members"),
    "members": ("成员", "Members"),
    "next_page": ("下一页", "Next page"),
    "first_page": ("第一页", "First page"),
    "csv": ("导出 CSV", "Export CSV"),
    "no_segment": ("没有这个人群。", "There is no such segment."),
    "rule": ("规则", "Rule"),
    "description": ("说明", "Description"),
    "trigger": ("触发", "Trigger"),
    "goal": ("转化目标", "Counts as converted"),
    "always": ("无（总是满足）", "none (always met)"),
    "condition": ("条件", "Condition"),
    "channels": ("渠道", "Channels"),
    "limits": ("限制", "Limits"),
    "fired": ("触发", "Fired"),
    "sent": ("发送", "Sent"),
    "held_out": ("对照组", "Held out"),
    "converted": ("转化", "Converted"),
    "lift": ("转化率提升 (95% 置信区间)", "Conversion lift (95% interval)"),
    # Lift is a difference of two conversion rates: percentage points, not percent.
    "points": ("个百分点", "pts"),
    "suppressed": ("被拦截", "Suppressed"),
    "upload": ("上传客户表 (CSV 或 Excel)", "Upload a customer sheet (CSV or Excel)"),
    "upload_button": ("检查并导入", "Check and import"),
    "dry_run": ("只检查，不导入", "Check only, import nothing"),
    "imported": ("已导入 {good} 行，{bad} 行有误。", "{good} rows imported, {bad} rows bad."),
    "checked": (
        "{good} 行无误，{bad} 行有误（未导入）。",
        "{good} rows good, {bad} bad (nothing sent).",
    ),
    "row": ("第 {n} 行", "Row {n}"),
    "line": ("第 {n} 行", "Line {n}"),
    "backtest": ("规则回测", "Backtest a rule"),
    "backtest_help": (
        "用过去的事件（JSON Lines）试运行一条规则或一个旅程：只计算，不发送。",
        "Run a rule or a journey over past events (JSON Lines): decided, never sent.",
    ),
    "shipped_rule": ("现有规则或旅程", "A rule or journey of the pack"),
    "or_rule_file": ("或上传规则或旅程文件 (YAML)", "or upload a rule or journey file (YAML)"),
    "past_events": ("过去的事件 (JSON Lines)", "Past events (JSON Lines)"),
    "run_backtest": ("开始回测", "Run the backtest"),
    "backtest_needs": ("请选择规则并上传事件文件。", "Choose a rule and upload events."),
    "bad_rule": ("规则文件有误：", "The rule file has problems:"),
    "journey_backtest_result": (
        "{journey} 第 {version} 版：{events} 个事件，{entered} 人进入，{reached} 人达成目标。",
        "{journey} version {version}: over {events} events, {entered} entered, "
        "{reached} reached the goal.",
    ),
    "backtest_result": (
        "{rule}：{events} 个事件，将触发 {triggers} 次，涉及 {customers} 位客户。",
        "{rule}: over {events} events, {triggers} triggers for {customers} customers.",
    ),
    "invalid_lines": ("无效的行", "Invalid lines"),
    "needs_admin": ("导入需要管理员令牌。", "Importing needs an admin token."),
    "no_file": ("没有选择文件", "no file chosen"),
    "unknown_columns": ("未导入的列", "Columns not imported"),
    "sheet": ("客户表文件", "Sheet file"),
    "bad_upload": ("无法读取这个文件：{why}", "This file cannot be read: {why}"),
    "too_large": (
        "文件超过 {size}，超出了上传的上限。",
        "The file is larger than {size}, the limit.",
    ),
    "too_many_rows": (
        "客户表超过 {limit} 行（{setting}），请拆分后分批导入。",
        "The sheet has more than {limit} rows ({setting}); split it.",
    ),
    "more_bad_rows": ("另有 {more} 行有误，未列出。", "{more} more bad rows are not listed."),
    "too_many_events": (
        "事件文件超过 {limit} 个事件（{setting}），请拆分后分别回测。",
        "The file has more than {limit} events ({setting}); split it.",
    ),
    "triggers_by_rule": ("各规则触达结果", "Triggers by rule and outcome"),
    "segment_sizes": ("人群规模", "Segment sizes"),
    "events_title": ("近 24 小时处理的事件", "Events taken in, last 24 hours"),
    "events_per_minute": ("近一小时每分钟事件数", "Events per minute, last hour"),
    "events_per_hour": ("近一天每小时事件数", "Events per hour, last day"),
    "decisions_title": ("近 24 小时的触达决策", "Trigger decisions, last 24 hours"),
    "decisions_per_minute": ("近一小时每分钟决策数", "Decisions per minute, last hour"),
    "decisions_per_hour": ("近一天每小时决策数", "Decisions per hour, last day"),
    "dead_letters_title": ("近 24 小时的无效事件 (死信)", "Dead letters, last 24 hours"),
    "dead_letters_per_minute": ("近一小时每分钟死信数", "Dead letters per minute, last hour"),
    "dead_letters_per_hour": ("近一天每小时死信数", "Dead letters per hour, last day"),
    "now": ("现在", "now"),
    "now_at": ("现在 {clock}", "now {clock}"),
    "time_zone": ("时区 {zone}", "time zone {zone}"),
    "chart_total": ("{title}（共 {total}）", "{title} ({total} in all)"),
    "month_day": ("{month}月{day}日", "{day} {month_name}"),
    "until": ("直到", "until"),
    "journeys": ("旅程", "Journeys"),
    "no_journeys": ("还没有旅程。", "No journeys yet."),
    "no_journey": ("这里没有旅程 {journey}", "No journey {journey} here"),
    "journey_running": ("已开启", "running"),
    "journey_off": ("本店未开启", "not turned on for this shop"),
    "version_n": ("第 {version} 版", "version {version}"),
    "entered": ("进入", "entered"),
    "now_in": ("当前在旅程中", "in it now"),
    "left": ("已离开", "left"),
    "step": ("步骤", "Step"),
    "step_kind": ("类型", "Type"),
    "came_this_far": ("到达", "Came this far"),
    "here_now": ("当前停留", "Here now"),
    "why_left": ("离开原因", "Why they left"),
    "funnel": ("{journey} 第 {version} 版：各步骤人数", "{journey} version {version}: the steps"),
    "goal_reached": (
        "达成目标：{reached} / {treated}（{rate}）",
        "goal reached: {reached} of {treated} ({rate})",
    ),
    "goal_control": (
        "对照组：{reached} / {control}（{rate}）",
        "control group: {reached} of {control} ({rate})",
    ),
    "in_journeys": ("所在旅程", "In journeys"),
    "journey_at": (
        "第 {version} 版，在 {step}，自 {since}",
        "version {version}, at {step} since {since}",
    ),
    "kind_send": ("发送", "send"),
    "kind_wait": ("等待", "wait"),
    "kind_wait_for": ("等待事件", "wait for"),
    "kind_branch": ("分支", "branch"),
    "kind_split": ("分流", "split"),
    "kind_exit": ("离开", "exit"),
    "capped_by_day": (
        "{rule}（优先级 {priority}）已占用今天的 {channel} 名额",
        "{rule} (priority {priority}) took today's {channel}",
    ),
    "capped_by_week": (
        "{rule}（优先级 {priority}）已占用本周的 {channel} 名额",
        "{rule} (priority {priority}) took this week's {channel}",
    ),
    "gate_held": (
        "占用了最后一个名额：在店铺的收集窗口内等待更高优先级的发送",
        "took the last slot: waits out the shop's window for a higher priority",
    ),
    "error": ("出错了", "Something went wrong"),
    "error_text": (
        "请求没有完成，已记录到日志。请稍后再试。",
        "The request did not complete; it was logged. Please try again.",
    ),
    "not_found": ("页面不存在。", "There is no such page."),
    "at": ("时间", "When"),
    # A rule in the merchant's words (console/rule_words.py puts these together).
    "rule_on_event": ("{event}时", "{event}"),
    "rule_absence": ("{after}后 {within}内未{missing}", "{after}, {missing} within {within}"),
    "rule_at_clock": ("每天 {clock}（客户当地时间）", "at {clock} (customer’s local time)"),
    "rule_birthday": ("生日当天", "on their birthday"),
    "rule_holiday": ("节日当天：{dates}", "on the holidays {dates}"),
    "rule_dormant": ("连续 {span}未下单", "after {span} without an order"),
    "rule_after_delivery": ("签收 {span}后", "{span} after a delivery"),
    "rule_cooldown": ("冷却 {span}", "cooldown {span}"),
    "rule_quiet_hours": ("免打扰 {start}–{end}", "quiet hours {start}–{end}"),
    "rule_quiet_hours_void": (
        "免打扰起止都是 {start}，不生效",
        "quiet hours start and end at {start}: none in effect",
    ),
    "rule_holdout": (
        "{share} 对照组（不发送，用于衡量效果）",
        "{share} held out as a control group",
    ),
    "rule_max_age": ("延迟超过 {span}则不再发送", "not sent if more than {span} late"),
    "rule_marketing": (
        "营销消息：需客户同意营销及该渠道，每个渠道每天最多 {cap} 条",
        "marketing: needs consent to marketing and to the channel; at most {cap} a day per channel",
    ),
    "rule_transactional": (
        "服务消息：无需营销授权，不计入每日上限",
        "service message: needs no marketing consent, outside the daily cap",
    ),
    "rule_goal": ("{span}内{event}", "{event} within {span}"),
    # When a rule decides (rules/ordering.py): at once, or once earlier events are read.
    "ordering_on_arrival": ("收到事件即决策", "decided on arrival"),
    "ordering_in_event_time_order": ("按事件时间顺序决策", "decided in event-time order"),
    "ordering_absence": ("等待{detail}是否发生", "waits to see whether “{detail}” happens"),
    "ordering_by_the_clock": ("按时钟决策", "decided by the clock"),
    "ordering_schedule": ("每日定时", "a daily schedule"),
    "ordering_marketing": (
        "营销消息：授权与每日上限随其他事件变化",
        "a marketing send: consent and the daily cap change with other events",
    ),
    "ordering_quiet_hours": (
        "免打扰按客户时区，时区随客户事件变化",
        "quiet hours follow the customer's time zone, which customer events set",
    ),
    "ordering_profile": (
        "读取客户档案（{detail}），其他事件会改变它",
        "reads the profile ({detail}), which other events change",
    ),
    "ordering_own_event": ("服务消息，只看本事件", "a service send on its own event alone"),
    "decided": ("决策时机", "Decided"),
    "colon": ("：", ": "),
    "list_separator": ("、", ", "),
    "clause_separator": ("，", ", "),
    "outcome": ("结果", "Outcome"),
    "reason": ("原因", "Reason"),
}

OUTCOMES: Final[dict[str, tuple[str, str]]] = {
    "sent": ("已发送", "sent"),
    "held": ("暂缓发送", "held"),
    "released": ("勿扰时段结束后发送", "released after quiet hours"),
    "holdout": ("对照组，不发送", "held out (control group)"),
    "cooldown": ("冷却期内，未发送", "suppressed by cooldown"),
    "capped": ("超过发送上限，未发送", "suppressed by the send caps"),
    "consent": ("未获授权，未发送", "suppressed: no consent"),
    "expired": ("决策过晚，已过期", "expired: decided too late"),
    "duplicate": ("重复，已忽略", "duplicate, ignored"),
    "decided": ("已决策", "decided"),
    "journey": ("离开旅程", "left a journey"),
    "converted": ("已转化", "converted"),
    "converted_holdout": ("对照组已转化", "converted (control)"),
}

RECENCY: Final[dict[str, tuple[str, str]]] = {
    "registered_at": ("注册", "registered"),
    "last_view": ("最近浏览", "last viewed an item"),
    "last_cart": ("最近加购", "last added to the cart"),
    "last_order": ("最近下单", "last ordered"),
    "last_paid": ("最近付款", "last paid"),
    "last_shipped": ("最近发货", "last shipped to"),
    "last_delivered": ("最近签收", "last delivery"),
    "last_review": ("最近评价", "last review"),
}

# Event types as a merchant says them: (Chinese, English, English for "it did not happen";
# Chinese says that with 未 before the same words).
EVENTS: Final[dict[str, tuple[str, str, str]]] = {
    "item.viewed": ("浏览商品", "item viewed", "no item viewed"),
    "item.favorited": ("收藏商品", "item favourited", "no item favourited"),
    "search.performed": ("搜索", "search made", "no search"),
    "cart.item_added": ("加购", "cart item added", "nothing added to the cart"),
    "cart.item_removed": ("移出购物车", "cart item removed", "nothing removed from the cart"),
    "cart.cleared": ("清空购物车", "cart cleared", "cart not cleared"),
    "order.placed": ("下单", "order placed", "no order"),
    "order.paid": ("付款", "order paid", "no payment"),
    "order.shipped": ("发货", "order shipped", "nothing shipped"),
    "order.delivered": ("签收", "order delivered", "no delivery"),
    "order.cancelled": ("取消订单", "order cancelled", "no cancellation"),
    "order.refunded": ("退款", "order refunded", "no refund"),
    "review.posted": ("发表评价", "review posted", "no review"),
    "customer.registered": ("注册", "customer registered", "no registration"),
    "customer.updated": ("更新资料", "customer details updated", "no update of details"),
    "customer.identified": ("识别身份", "customer identified", "not identified"),
    "survey.answered": ("回答问卷", "survey answered", "no survey answer"),
    "customer.erasure_requested": ("申请删除数据", "erasure requested", "no erasure request"),
}

CHANNELS: Final[dict[str, tuple[str, str]]] = {
    "sms": ("短信", "SMS"),
    "email": ("邮件", "e-mail"),
    "push": ("推送", "push"),
    "coupon": ("优惠券", "coupon"),
    "in_app": ("站内信", "in-app message"),
    "service_desk": ("客服工单", "service desk"),
}

# Units of a duration: (Chinese, English for one, English for more).
UNITS: Final[dict[str, tuple[str, str, str]]] = {
    "d": ("天", "day", "days"),
    "h": ("小时", "hour", "hours"),
    "m": ("分钟", "minute", "minutes"),
    "s": ("秒", "second", "seconds"),
}

# Months in English dates ("5 Mar"); Chinese writes the number (3月5日).
MONTHS: Final = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


def language_of(asked: str | None) -> str:
    return asked if asked in LANGUAGES else DEFAULT


def translator(language: str) -> Callable[..., str]:
    index = LANGUAGES.index(language_of(language))

    def t(key: str, **values: object) -> str:
        text = TEXT[key][index]
        return text.format(**values) if values else text

    return t


def outcome_label(language: str, outcome: str) -> str:
    labels = OUTCOMES.get(outcome)
    return outcome if labels is None else labels[LANGUAGES.index(language_of(language))]


def recency_label(language: str, name: str) -> str:
    return RECENCY[name][LANGUAGES.index(language_of(language))]


def event_label(language: str, event_type: str, *, happened: bool = True) -> str:
    """An event type in words; one the table does not know keeps its own name."""
    words = EVENTS.get(event_type)
    if words is None:
        return event_type
    if language_of(language) == "zh":
        return words[0]
    return words[1] if happened else words[2]


def channel_label(language: str, channel: str) -> str:
    labels = CHANNELS.get(channel)
    return channel if labels is None else labels[LANGUAGES.index(language_of(language))]


def month_day_label(language: str, month: int, day: int) -> str:
    """1 Jan / 1月1日; a month out of the calendar is the caller's to refuse."""
    return translator(language)("month_day", month=month, day=day, month_name=MONTHS[month - 1])
