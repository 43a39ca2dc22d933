"""The offline narrator: insight content and message ideas written from the facts by rules.

It reads like a careful analyst: what stands out against the whole base, what is at risk, what
to do next. Every number it writes is a figure from the facts (formatted for people); the
messages it suggests contain no number at all unless the objective itself names an offer.
"""

import re
from dataclasses import dataclass
from typing import Any

from minicrm.core import formatting

from .content import MESSAGE_MAX_LENGTH, InsightContent

MAX_FINDINGS = 6
MAX_RECOMMENDATIONS = 4
TIMES_SIGN = "\u00d7"
# A figure this far from the base (either way) is worth a sentence.
NOTABLE_INDEX = 1.3


@dataclass(frozen=True)
class Signals:
    """The few figures the narrative turns on, read once from the facts."""

    size: int
    base_size: int
    share_of_customers: float
    share_of_revenue: float
    lapsed_share: float
    lapsed: int
    never_share: float
    never: int
    one_order_share: float
    one_order: int
    orders_change: float | None
    base_orders_change: float | None
    spend_index: float | None
    active_share: float
    new_share: float
    new: int
    repeat_rate: float
    top_city: dict[str, Any] | None

    @property
    def revenue_concentration(self) -> float:
        if not self.share_of_customers:
            return 0.0
        return self.share_of_revenue / self.share_of_customers

    @property
    def trend_gap(self) -> float | None:
        """How much faster (or slower) orders moved than for all customers: a trend the whole
        base shares (a season, a sale) says little about this segment."""
        if self.orders_change is None:
            return None
        return self.orders_change - (self.base_orders_change or 0.0)

    @property
    def theme(self) -> str:
        """The one thing this segment is mostly about, in order of urgency."""
        if self.lapsed_share >= 0.5:
            return "lapsed"
        if self.never_share >= 0.5:
            return "never"
        if self.new_share >= 0.5:
            return "new"
        if self.share_of_customers < 1 and self.revenue_concentration >= 1.5:
            return "valuable"
        if self.one_order_share >= 0.5:
            return "one_order"
        if self.trend_gap is not None and self.trend_gap <= -0.2:
            return "falling"
        if self.trend_gap is not None and self.trend_gap >= 0.2:
            return "rising"
        return "general"


def narrate(facts: dict[str, Any]) -> InsightContent:
    """Headline, findings, recommendations and a suggested message for one segment."""
    segment, base = facts["segment"], facts["base"]
    if not base["customers"]:
        return _empty_base(facts)
    if not segment["customers"]:
        return _empty_segment(facts)
    signals = read_signals(facts)
    return InsightContent(
        headline=_headline(signals, facts),
        findings=_findings(signals, facts)[:MAX_FINDINGS],
        recommendations=_recommendations(signals, facts)[:MAX_RECOMMENDATIONS],
        suggested_message=_messages_for(signals.theme)[0],
    )


def suggest(facts: dict[str, Any], objective: str) -> list[str]:
    """Three message variants for the objective (or, when it names no theme, for the facts)."""
    theme = objective_theme(objective)
    if theme is None:
        theme = read_signals(facts).theme if facts["segment"]["customers"] else "general"
    return _messages_for(theme, offer=_offer(objective))


def read_signals(facts: dict[str, Any]) -> Signals:
    segment = facts["segment"]
    recency = {bucket["bucket"]: bucket for bucket in segment["recency"]}
    orders = {bucket["bucket"]: bucket for bucket in segment["order_count_distribution"]}
    return Signals(
        size=segment["customers"],
        base_size=facts["base"]["customers"],
        share_of_customers=segment["share_of_customers"],
        share_of_revenue=segment["share_of_revenue"],
        lapsed_share=segment["lapsed_share"],
        lapsed=segment["lapsed_customers"],
        never_share=_never_share(segment),
        never=recency["never"]["customers"],
        one_order_share=orders["1"]["share"],
        one_order=orders["1"]["customers"],
        orders_change=segment["trend"]["orders_change"],
        base_orders_change=facts["base"]["trend"]["orders_change"],
        spend_index=facts["index"]["avg_spend"],
        active_share=segment["active_share"],
        new_share=segment["new_share"],
        new=segment["new_customers"],
        repeat_rate=segment["repeat_rate"],
        top_city=segment["top_cities"][0] if segment["top_cities"] else None,
    )


# ---- Formatting: every figure goes through one of these, so tests can trace it to the facts.


def pct(share: float) -> str:
    text = f"{share * 100:.1f}".removesuffix(".0")
    return f"{text}%"


def money(value: float | None, currency: str) -> str:
    # `currency` is the ISO code the facts were written in (the shop's at the time).
    return formatting.money(value, currency=currency)


def times(index: float | None) -> str:
    if index is None:
        return "—"
    # Below 1 a second decimal matters: 0.18x and 0.24x read differently, 0.2x hides it.
    return f"{index:.2f}{TIMES_SIGN}" if index < 1 else f"{index:.1f}{TIMES_SIGN}"


def number(value: int) -> str:
    return f"{value:,}"


def change(value: float) -> str:
    return f"{'up' if value >= 0 else 'down'} {pct(abs(value))}"


# ---- Headline, findings, recommendations.


def _headline(signals: Signals, facts: dict[str, Any]) -> str:
    segment = facts["segment"]
    theme = signals.theme
    windows = facts["windows"]
    if theme == "lapsed" and signals.lapsed == signals.size:
        # The rules chose lapsed customers; what matters is what they were worth.
        return (
            f"{number(signals.size)} customers who brought {pct(signals.share_of_revenue)} of"
            f" revenue have not ordered in over {windows['lapsed_days']} days"
        )
    if theme == "lapsed":
        return (
            f"{pct(signals.lapsed_share)} of this segment has not ordered in over"
            f" {windows['lapsed_days']} days — {number(signals.lapsed)} customers to win back"
        )
    if theme == "new":
        if signals.never:
            rest = f"{pct(signals.never_share)} have not ordered yet"
        elif signals.one_order_share >= 0.5:
            rest = f"{pct(signals.one_order_share)} have ordered only once so far"
        else:
            rest = f"{pct(signals.repeat_rate)} have already ordered more than once"
        return f"{pct(signals.new_share)} joined in the last {windows['new_days']} days; {rest}"
    if theme == "never":
        return (
            f"{pct(signals.never_share)} of this segment has never ordered"
            f" — {number(signals.never)} customers still to convert"
        )
    if theme == "valuable":
        return (
            f"{pct(signals.share_of_customers)} of customers bring"
            f" {pct(signals.share_of_revenue)} of revenue — average spend"
            f" {times(signals.spend_index)} the base"
        )
    if theme == "one_order":
        return (
            f"{pct(signals.one_order_share)} of this segment has ordered only once"
            " — the second order is the opportunity"
        )
    if theme in {"falling", "rising"}:
        direction = "fell" if theme == "falling" else "rose"
        assert signals.orders_change is not None
        return (
            f"Orders from this segment {direction} {pct(abs(signals.orders_change))}"
            f" in the last {segment['trend']['window_days']} days"
        )
    average = money(segment["avg_spend"], facts["currency"])
    return (
        f"{number(signals.size)} customers spending {average} on average"
        f" ({times(signals.spend_index)} the base)"
    )


def _findings(signals: Signals, facts: dict[str, Any]) -> list[str]:
    segment, base, index = facts["segment"], facts["base"], facts["index"]
    currency = facts["currency"]
    findings = [
        f"{number(signals.size)} customers ({pct(signals.share_of_customers)} of all customers)"
        f" account for {money(segment['revenue'], currency)}"
        f" ({pct(signals.share_of_revenue)} of revenue)."
    ]
    findings.append(
        f"Average spend is {money(segment['avg_spend'], currency)} against"
        f" {money(base['avg_spend'], currency)} for all customers ({times(index['avg_spend'])});"
        f" the median is {money(segment['median_spend'], currency)}"
        f" ({money(base['median_spend'], currency)} overall)."
    )
    new_index = index["new_share"]
    if signals.theme == "new" or (new_index is not None and new_index >= NOTABLE_INDEX):
        findings.append(
            f"{pct(signals.new_share)} joined in the last {facts['windows']['new_days']} days"
            f" ({pct(base['new_share'])} of all customers)."
        )
    if segment["avg_order_value"] is not None:
        findings.append(
            f"Average order value is {money(segment['avg_order_value'], currency)}"
            f" ({times(index['avg_order_value'])} the base), with"
            f" {segment['orders_per_customer']} orders per customer against"
            f" {base['orders_per_customer']}."
        )
    # Risk and engagement: the lapsed and never-ordered shares, against the base.
    windows = facts["windows"]
    if signals.lapsed or signals.never:
        findings.append(
            f"{pct(signals.lapsed_share)} have not ordered in over {windows['lapsed_days']} days"
            f" ({pct(base['lapsed_share'])} of all customers) and"
            f" {pct(signals.never_share)} have never ordered ({pct(_never_share(base))})."
        )
    findings.append(
        f"{pct(signals.active_share)} ordered in the last {windows['active_days']} days, against"
        f" {pct(base['active_share'])} of all customers;"
        f" {pct(segment['repeat_rate'])} have ordered more than once"
        f" ({pct(base['repeat_rate'])} overall)."
    )
    trend = segment["trend"]
    if trend["current"]["orders"] or trend["previous"]["orders"]:
        findings.append(_trend_sentence(trend, base["trend"], currency))
    city = signals.top_city
    if city and city.get("index") and (city["index"] >= NOTABLE_INDEX or city["share"] >= 0.3):
        findings.append(
            f"{city['name']} is the largest city with {pct(city['share'])} of the segment,"
            f" {times(city['index'])} its share of the whole base ({pct(city['base_share'])})."
        )
    return findings


def _trend_sentence(trend: dict[str, Any], base_trend: dict[str, Any], currency: str) -> str:
    days = trend["window_days"]
    current, previous = trend["current"], trend["previous"]
    sentence = (
        f"In the last {days} days members placed {number(current['orders'])} orders worth"
        f" {money(current['revenue'], currency)}"
    )
    if trend["orders_change"] is None:
        sentence += f", against none in the {days} days before"
    else:
        sentence += (
            f", {change(trend['orders_change'])} on the {days} days before"
            f" ({number(previous['orders'])} orders)"
        )
    if base_trend["orders_change"] is not None:
        sentence += f"; all customers: {change(base_trend['orders_change'])}"
    return sentence + "."


def _recommendations(signals: Signals, facts: dict[str, Any]) -> list[str]:
    segment = facts["segment"]
    recommendations: list[str] = []
    if signals.lapsed_share >= 0.3:
        recommendations.append(
            f"Send a win-back message to the {number(signals.lapsed)} members with no order in"
            f" over {facts['windows']['lapsed_days']} days, and test a time-limited offer"
            " against a plain reminder."
        )
    if signals.theme == "lapsed" and signals.repeat_rate >= 0.5:
        recommendations.append(
            f"Start with the {pct(signals.repeat_rate)} who ordered more than once: they know"
            " the products already, so a reminder may work before any discount."
        )
    if signals.theme == "new":
        recommendations.append(
            f"Welcome the {number(signals.new)} recent sign-ups with a short series (best-sellers,"
            " how to choose) while they are still paying attention."
        )
    if signals.never_share >= 0.3 or (signals.theme == "new" and signals.never):
        recommendations.append(
            f"Give the {number(signals.never)} members who never ordered a reason for a first"
            " order: a welcome offer or a best-sellers guide."
        )
    if signals.theme == "valuable" or (signals.spend_index or 0) >= 1.5:
        recommendations.append(
            "Treat this group as VIPs: early access, free delivery or a personal thank-you"
            " rather than discounts, which would give margin away to people already buying."
        )
    if signals.one_order_share >= 0.4:
        recommendations.append(
            f"Nudge the {number(signals.one_order)} one-time buyers towards a second order soon"
            " after the first, with a cross-sell or a replenishment reminder."
        )
    gap = signals.trend_gap
    if gap is not None and signals.orders_change is not None and abs(gap) >= 0.2:
        against = (
            ""
            if signals.base_orders_change is None
            else f" (all customers: {change(signals.base_orders_change)})"
        )
        if gap < 0:
            recommendations.append(
                f"Orders are {change(signals.orders_change)}{against}: reach the members whose"
                " last order was 91-180 days ago before they lapse, and check whether prices or"
                " stock changed."
            )
        else:
            recommendations.append(
                f"Orders are {change(signals.orders_change)}{against}: follow up while members"
                " are engaged, with a cross-sell of what they bought most recently."
            )
    city = signals.top_city
    if city and city.get("index") and city["index"] >= 1.5:
        recommendations.append(
            f"{city['name']} is over-represented ({times(city['index'])} the base): a"
            " city-specific message or event could land better than a generic one."
        )
    if segment["active_share"] >= 0.6:
        recommendations.append(
            "Most members are active: a good audience for a new launch or a referral ask."
        )
    fallbacks = [
        "Keep a small random holdout out of the next campaign to this segment, so its real"
        " effect on orders can be measured.",
        "Watch this segment's size over time: a shrinking count is the earliest warning.",
    ]
    for fallback in fallbacks:
        if len(recommendations) >= 2:
            break
        recommendations.append(fallback)
    return recommendations


def _never_share(figures: dict[str, Any]) -> float:
    return next(b["share"] for b in figures["recency"] if b["bucket"] == "never")


def _empty_base(facts: dict[str, Any]) -> InsightContent:
    return InsightContent(
        headline="No customers yet",
        findings=[
            "The CRM holds no customers, so there is nothing to compare.",
            f"No orders in the last {facts['base']['trend']['window_days']} days either.",
            "Every figure will fill in as soon as customers and orders are imported.",
        ],
        recommendations=[
            "Import customers and orders (CSV or the REST API), or load the demo data.",
            "Generate insights again once data is in.",
        ],
        suggested_message=_messages_for("general")[0],
    )


def _empty_segment(facts: dict[str, Any]) -> InsightContent:
    base = facts["base"]
    currency = facts["currency"]
    return InsightContent(
        headline="No customers match this segment yet",
        findings=[
            f"The rules match none of the {number(base['customers'])} customers.",
            "So there is no revenue, order or recency figure to compare with the base.",
            f"For reference, all customers average {money(base['avg_spend'], currency)} spent"
            f" and {pct(base['active_share'])} ordered in the last"
            f" {facts['windows']['active_days']} days.",
        ],
        recommendations=[
            "Loosen the rules (a lower threshold or a longer time window) and watch the live"
            " count before saving.",
            "Generate insights again once customers match.",
        ],
        suggested_message=_messages_for("general")[0],
    )


# ---- Messages.

THEME_KEYWORDS: list[tuple[str, tuple[str, ...]]] = [
    ("lapsed", ("win back", "winback", "lapsed", "come back", "reactivat", "re-engag", "inactive")),
    ("new", ("welcome", "onboard", "new customer", "new sign", "sign-up", "signup", "joined")),
    ("never", ("first order", "first purchase", "convert")),
    ("valuable", ("vip", "loyal", "thank", "reward", "best customers", "appreciat")),
    ("one_order", ("second order", "repeat", "cross-sell", "cross sell", "upsell", "replenish")),
    ("launch", ("launch", "new collection", "new product", "new arrival", "announce")),
    ("sale", ("sale", "discount", "festive", "diwali", "offer", "deal", "black friday")),
]

MESSAGES: dict[str, list[str]] = {
    "lapsed": [
        "Hi {{ first_name }}, it's been a while! A lot has changed since your last order —"
        " come and see what's new{offer}.",
        "{{ first_name }}, we miss you. Your favourites are still here{offer}. Pop back in"
        " this week?",
        "Hey {{ first_name }}, ready for a fresh start? Here's a little welcome back{offer}.",
    ],
    "never": [
        "Hi {{ first_name }}, your first order is waiting — pick a favourite and enjoy a"
        " welcome treat{offer}.",
        "{{ first_name }}, not sure where to start? Our best-sellers are a safe bet{offer}.",
        "Welcome, {{ first_name }}! Here's a reason to try us today{offer}.",
    ],
    "new": [
        "Welcome aboard, {{ first_name }}! Here's a quick guide to our best-sellers{offer}.",
        "Hi {{ first_name }}, glad you're here. Your next favourite may be in our new"
        " arrivals{offer}.",
        "{{ first_name }}, thanks for joining us! A few picks to get you started{offer}.",
    ],
    "valuable": [
        "Hi {{ first_name }}, thank you for being one of our best customers. You get early"
        " access to what's new{offer}.",
        "{{ first_name }}, you're on our VIP list: first look at the new range, before"
        " anyone else{offer}.",
        "A personal thank-you, {{ first_name }}. We saved something special for you{offer}.",
    ],
    "one_order": [
        "Hi {{ first_name }}, loved your first order? Here are picks that go well with it{offer}.",
        "{{ first_name }}, time for a top-up? Reorder in a tap{offer}.",
        "Hey {{ first_name }}, customers who bought what you did also love these{offer}.",
    ],
    "launch": [
        "Hi {{ first_name }}, something new just landed and we think you'll love it{offer}.",
        "{{ first_name }}, be among the first to see our latest collection{offer}.",
        "New in, {{ first_name }}: fresh picks chosen with you in mind{offer}.",
    ],
    "sale": [
        "Hi {{ first_name }}, our sale is on{offer}. Your favourites won't last long!",
        "{{ first_name }}, treat yourself: prices are down for a short time{offer}.",
        "Psst, {{ first_name }}: the best deals of the season are live now{offer}.",
    ],
    "falling": [
        "Hi {{ first_name }}, we've missed you lately. Here's what's new since your last"
        " visit{offer}.",
        "{{ first_name }}, your favourites are back in stock{offer}. Take a look?",
        "Hey {{ first_name }}, a quick hello and a few picks we think you'll like{offer}.",
    ],
    "rising": [
        "Hi {{ first_name }}, thanks for shopping with us lately! Here's what goes well with"
        " your last order{offer}.",
        "{{ first_name }}, you've got great taste. More picks like your recent ones{offer}.",
        "Hey {{ first_name }}, keep the streak going: new arrivals picked for you{offer}.",
    ],
    "general": [
        "Hi {{ first_name }}, we have something new we think you'll like{offer}. Take a look!",
        "{{ first_name }}, a few picks chosen just for you{offer}.",
        "Hey {{ first_name }}, don't miss what's new this week{offer}.",
    ],
}

OFFER_PATTERN = re.compile(
    r"(?P<offer>\d{1,2}\s?%\s?off|(?:₹|rs\.?\s?|inr\s?)\d[\d,]*\s?off"
    r"|free (?:shipping|delivery)|buy one,? get one(?: free)?|bogo)",
    re.IGNORECASE,
)


def objective_theme(objective: str) -> str | None:
    text = objective.lower()
    for theme, keywords in THEME_KEYWORDS:
        if any(keyword in text for keyword in keywords):
            return theme
    return None


def _offer(objective: str) -> str:
    match = OFFER_PATTERN.search(objective)
    return match.group("offer").strip() if match else ""


def _messages_for(theme: str, *, offer: str = "") -> list[str]:
    suffix = f", with {offer}" if offer else ""
    messages = [template.replace("{offer}", suffix) for template in MESSAGES[theme]]
    return [_fit(message) for message in messages]


def _fit(message: str) -> str:
    if len(message) <= MESSAGE_MAX_LENGTH:
        return message
    return message[: MESSAGE_MAX_LENGTH - 1].rstrip() + "…"
