"""What a campaign would send: its audience, who is excluded and why, and messages for samples."""

from typing import Any

from minicrm.core.errors import ConflictError
from minicrm.segments.models import Segment
from minicrm.segments.rules import parse_rules

from .audience import audience_counts, audience_customers
from .models import Campaign, Channel
from .templating import CUSTOMER_FIELDS, message_context, render, template_check
from .unsubscribe import unsubscribe_url

SAMPLE_SIZE = 3


def message_for(customer: dict[str, Any], *, subject: str, template: str) -> dict[str, Any]:
    """One customer's message, as the delivery worker renders it."""
    context = message_context(customer, unsubscribe_url=unsubscribe_url(customer["id"]))
    return {
        "customer_id": customer["id"],
        "to": customer["email"],
        "subject": render(subject, context) if subject else "",
        "body": render(template, context),
    }


def message_preview(
    *, rules: dict[str, Any], channel: str, subject: str, template: str, samples: int = SAMPLE_SIZE
) -> dict[str, Any]:
    """`{"audience", "excluded", "samples": [{"customer_id", "to", "subject", "body"}]}`.

    Raises TemplateProblemError (422) for a template that would not render. The samples are the
    audience's biggest spenders: real customers, so the marketer sees real values."""
    template_check(field="template", text=template)
    template_check(field="subject", text=subject)
    group = parse_rules(rules)
    counts = audience_counts(group, channel)
    customers = audience_customers(group, channel).order_by("-total_spend", "-id")
    rows = list(customers.values(*CUSTOMER_FIELDS)[:samples])
    return {
        "audience": counts["audience"],
        "excluded": counts["excluded"],
        "samples": [message_for(row, subject=subject, template=template) for row in rows],
    }


def campaign_preview(campaign: Campaign, *, samples: int = SAMPLE_SIZE) -> dict[str, Any]:
    """The preview of a saved campaign (its segment's rules as they are now, before launch)."""
    rules = campaign.rules if campaign.snapshot_at else None
    if rules is None:
        segment = None
        if campaign.segment_id is not None:
            segment = Segment.objects.filter(id=campaign.segment_id).only("rules").first()
        if segment is None:
            raise ConflictError("The campaign's segment was deleted; choose another segment.")
        rules = segment.rules
    return message_preview(
        rules=rules,
        channel=campaign.channel or Channel.LOG,
        subject=campaign.subject,
        template=campaign.template,
        samples=samples,
    )
