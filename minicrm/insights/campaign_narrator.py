"""The offline narrator of a campaign's performance: headline, findings and what to try next,
written by rules from the campaign's aggregates (the shape `minicrm.campaigns.summary` sends).

Every number it writes is one of the figures, formatted for people; it knows nothing of any
customer. A lift only counts as one when the holdout is big enough to say so (MIN_HOLDOUT).
"""

from typing import Any

from minicrm.core import formatting

from .content import CampaignSummaryContent
from .narrator import number, pct

# Below this many held-out customers a difference in revenue per person is mostly chance.
MIN_HOLDOUT = 30
# A delivery failure share above this points at the addresses or the vendor, not the message.
HIGH_FAILURE_SHARE = 0.05
# Exclusions above this share of the segment are worth a sentence.
NOTABLE_EXCLUDED_SHARE = 0.2
EXCLUSION_WORDS = {
    "unsubscribed": "had unsubscribed",
    "no_consent": "had not given marketing consent",
    "no_email": "had no email address",
}


def money(value: float | None, currency: str, places: int = 0) -> str:
    # `currency` is the ISO code the figures were written in (the shop's at the time).
    return formatting.money(value, places, currency=currency)


def signed_pct(share: float) -> str:
    return f"{'+' if share >= 0 else '-'}{pct(abs(share))}"


def campaign_narrate(figures: dict[str, Any]) -> CampaignSummaryContent:
    revenue = figures["revenue"]
    return CampaignSummaryContent(
        headline=_headline(figures, revenue),
        findings=_findings(figures, revenue),
        recommendations=_recommendations(figures, revenue),
    )


def _headline(figures: dict[str, Any], revenue: dict[str, Any]) -> str:
    currency = figures["currency"]
    lift = revenue["lift"]
    if not revenue["recipients"]:
        return "No message has reached anyone yet, so there is nothing to measure."
    if lift is not None and revenue["held_out"] >= MIN_HOLDOUT:
        return (
            f"Recipients spent {money(revenue['revenue_per_recipient'], currency, 2)} each against"
            f" {money(revenue['revenue_per_held_out'], currency, 2)} for the holdout: a lift of"
            f" {signed_pct(lift)}"
        )
    return (
        f"{number(revenue['recipient_buyers'])} of {number(revenue['recipients'])} recipients"
        f" bought within {figures['window_days']} days, spending"
        f" {money(revenue['recipient_revenue'], currency)}"
    )


def _findings(figures: dict[str, Any], revenue: dict[str, Any]) -> list[str]:
    currency, counts, rates = figures["currency"], figures["deliveries"], figures["rates"]
    findings = [
        f"{number(figures['audience'])} customers were in the audience;"
        f" {number(counts['sent'] + counts['delivered'])} received the message,"
        f" {number(counts['failed'])} failed and {number(counts['skipped'])} were skipped"
        f" (unsubscribed or cancelled before their batch)."
    ]
    if counts["delivered"] or rates["failure_rate"]:
        findings.append(
            f"{pct(rates['delivery_rate'])} of the messages sent were confirmed delivered and"
            f" {pct(rates['failure_rate'])} failed."
        )
    findings.append(
        f"{pct(revenue['recipient_buyer_rate'])} of recipients bought within"
        f" {figures['window_days']} days, for {money(revenue['recipient_revenue'], currency)}"
        f" ({money(revenue['revenue_per_recipient'], currency, 2)} per recipient)."
    )
    if revenue["held_out"]:
        findings.append(
            f"The {number(revenue['held_out'])} held-out customers spent"
            f" {money(revenue['holdout_revenue'], currency)}"
            f" ({money(revenue['revenue_per_held_out'], currency, 2)} each;"
            f" {pct(revenue['holdout_buyer_rate'])} bought)."
        )
    if revenue["incremental_revenue"] is not None and revenue["held_out"] >= MIN_HOLDOUT:
        findings.append(
            f"Against the holdout, the message brought about"
            f" {money(revenue['incremental_revenue'], currency)} of extra revenue."
        )
    excluded = figures["excluded"]
    members = figures["audience"] + sum(excluded.values())
    unreachable = sum(excluded.values())
    if members and unreachable / members >= NOTABLE_EXCLUDED_SHARE:
        reasons = ", ".join(
            f"{number(n)} {EXCLUSION_WORDS.get(reason, reason)}"
            for reason, n in excluded.items()
            if n
        )
        findings.append(
            f"{pct(unreachable / members)} of the segment could not be reached: {reasons}."
        )
    if not figures["window_closed"]:
        findings.append(
            f"The {figures['window_days']}-day window is still open: revenue may still grow."
        )
    return findings[:6]


def _recommendations(figures: dict[str, Any], revenue: dict[str, Any]) -> list[str]:
    advice = []
    lift, held_out = revenue["lift"], revenue["held_out"]
    if not held_out:
        advice.append(
            "Hold out 10 % of the audience next time: without a holdout the revenue cannot be"
            " told apart from what these customers would have spent anyway."
        )
    elif held_out < MIN_HOLDOUT:
        advice.append(
            f"Hold out more customers next time (at least {MIN_HOLDOUT}): with"
            f" {number(held_out)} the lift is mostly chance."
        )
    elif lift is not None and lift > 0:
        advice.append(
            "The message works: send it to similar segments, and test a variant against it."
        )
    elif lift is not None:
        advice.append(
            "The message did not beat the holdout: try a different offer or timing before"
            " sending it again."
        )
    if figures["rates"]["failure_rate"] > HIGH_FAILURE_SHARE:
        advice.append(
            "Many messages failed: check the addresses and the vendor's reasons in the delivery"
            " log."
        )
    if figures["excluded"].get("no_consent"):
        advice.append(
            "Ask the customers without marketing consent for it at their next order or sign-in."
        )
    if not figures["window_closed"]:
        advice.append(f"Look again when the {figures['window_days']}-day window has closed.")
    if not advice:
        advice.append("Follow up with the buyers with a second message in a few weeks.")
    return advice[:4]
