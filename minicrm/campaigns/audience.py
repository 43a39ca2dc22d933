"""Who a campaign reaches: the segment's members who can be reached on its channel.

A member is excluded for the first reason that applies, in this order: unsubscribed, no
marketing consent, no contact address for the channel. Every channel needs consent and a
customer who has not unsubscribed; the email and webhook channels (the vendor is an email
service) need an email address as well.
"""

from typing import Any

from django.db.models import Count, Q, QuerySet

from minicrm.customers.models import Customer
from minicrm.segments.compiler import customers_matching
from minicrm.segments.rules import RuleGroup

from .models import Channel

NEEDS_EMAIL = frozenset({Channel.EMAIL, Channel.WEBHOOK})


def exclusion_reasons(channel: str) -> dict[str, Q]:
    """Each reason with the customers it excludes, disjoint, in the order they are tried."""
    reasons = {
        "unsubscribed": Q(unsubscribed_at__isnull=False),
        "no_consent": Q(unsubscribed_at__isnull=True, marketing_consent=False),
    }
    if channel in NEEDS_EMAIL:
        reasons["no_email"] = Q(unsubscribed_at__isnull=True, marketing_consent=True, email="")
    return reasons


def reachable(channel: str) -> Q:
    reach = Q(unsubscribed_at__isnull=True, marketing_consent=True)
    if channel in NEEDS_EMAIL:
        reach &= ~Q(email="")
    return reach


def audience_customers(rules: RuleGroup, channel: str) -> QuerySet[Customer]:
    """The members the campaign would send to now (before any holdout)."""
    return customers_matching(rules).filter(reachable(channel))


def audience_counts(rules: RuleGroup, channel: str) -> dict[str, Any]:
    """`{"members", "audience", "excluded": {reason: n}}` from one conditional-aggregate scan."""
    reasons = exclusion_reasons(channel)
    aggregates: dict[str, Any] = {"members": Count("pk")}
    aggregates |= {reason: Count("pk", filter=q) for reason, q in reasons.items()}
    counts = customers_matching(rules).aggregate(**aggregates)
    excluded = {reason: counts[reason] for reason in reasons}
    members = counts["members"]
    return {"members": members, "audience": members - sum(excluded.values()), "excluded": excluded}
