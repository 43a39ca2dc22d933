"""Campaign lifecycle: create, edit while a draft, send now or schedule, cancel, launch.

draft ──send──► sending ──(worker: every recipient done)──► sent
  │                 └──cancel──► cancelled (what was sent stays sent; waiting rows are skipped)
  └──send at T──► scheduled ──(worker at T)──► sending …      scheduled ──cancel──► cancelled
A launch that cannot complete (the segment was deleted) ends `failed` with the reason.

Sending changes the status under the campaign's row lock, so launching twice is a 409 and never
a second send. The launch itself (`campaign_launch`) runs in the worker: it freezes the audience
into Delivery rows with one INSERT ... SELECT, whatever the segment's size, and draws the holdout.
"""

import secrets
from datetime import datetime
from typing import Any

from django.db import connection, transaction
from django.db.models import F
from django.utils import timezone

from minicrm.accounts.models import AuditEvent, User
from minicrm.accounts.services import audit_record
from minicrm.core.errors import ConflictError, InvalidInputError, NotFoundError
from minicrm.core.tasks import enqueue_on_commit
from minicrm.segments.models import Segment
from minicrm.segments.rules import parse_rules

from .audience import audience_counts, audience_customers
from .channels import ChannelSetupError, channel_for
from .models import Campaign, Channel, Delivery
from .templating import MAX_SUBJECT_CHARS, template_check

MAX_HOLDOUT_PERCENT = 50
# Holdout draw: rank = (customer_id * MULTIPLIER + seed) mod PRIME is a permutation of the ids
# below PRIME (a Lehmer generator), computed by the database in every dialect; the lowest ranks
# are held out, so the draw is random per campaign, exact in size and reproducible from the seed.
HOLDOUT_PRIME = 2_147_483_647
HOLDOUT_MULTIPLIER = 48_271

EDITABLE_FIELDS = ("name", "segment_id", "channel", "subject", "template", "holdout_percent")


def _enqueue_launch(campaign_id: int, run_after: datetime | None = None) -> None:
    """Queue the launch, at `run_after` for a scheduled campaign (now where the backend cannot
    wait: the launch itself checks the time and the recovery sweep launches it when due)."""
    from .tasks import campaign_launch_task  # the task module imports these services

    enqueue_on_commit(campaign_launch_task, campaign_id, run_after=run_after)


def _enqueue_delivery(campaign_id: int) -> None:
    from .tasks import campaign_deliver_task

    enqueue_on_commit(campaign_deliver_task, campaign_id)


def _clean(values: dict[str, Any]) -> dict[str, Any]:
    """Check the editable fields given; raise InvalidInputError (422) naming the first bad one."""
    clean = dict(values)
    if "name" in clean:
        clean["name"] = (clean["name"] or "").strip()
        if not clean["name"]:
            raise InvalidInputError("Give the campaign a name.", field="name")
        if len(clean["name"]) > 120:
            raise InvalidInputError("A name has at most 120 characters.", field="name")
    if "segment_id" in clean and not Segment.objects.filter(pk=clean["segment_id"]).exists():
        raise InvalidInputError("No such segment.", field="segment_id")
    if "channel" in clean and clean["channel"] not in Channel.values:
        choices = ", ".join(Channel.values)
        raise InvalidInputError(f"The channel is one of {choices}.", field="channel")
    if "holdout_percent" in clean:
        share = clean["holdout_percent"]
        if not isinstance(share, int) or not 0 <= share <= MAX_HOLDOUT_PERCENT:
            raise InvalidInputError(
                f"The holdout is a whole percentage from 0 to {MAX_HOLDOUT_PERCENT}.",
                field="holdout_percent",
            )
    if "template" in clean:
        clean["template"] = clean["template"] or ""
        if not clean["template"].strip():
            raise InvalidInputError("Write the message.", field="template")
        template_check(field="template", text=clean["template"])
    if "subject" in clean:
        clean["subject"] = (clean["subject"] or "").strip()
        template_check(field="subject", text=clean["subject"], max_chars=MAX_SUBJECT_CHARS)
    return clean


def _segment_name(segment_id: int | None) -> str:
    if segment_id is None:
        raise InvalidInputError("segment_id is required.", field="segment_id")
    return Segment.objects.values_list("name", flat=True).get(id=segment_id)


def _require_subject(campaign: Campaign) -> None:
    if campaign.channel != Channel.LOG and not campaign.subject:
        raise InvalidInputError("An email needs a subject.", field="subject")


@transaction.atomic
def campaign_create(*, created_by: User | None, **values: Any) -> Campaign:
    """A draft. Raises InvalidInputError (422) naming the field that is wrong."""
    unknown = set(values) - set(EDITABLE_FIELDS)
    if unknown:
        raise InvalidInputError(f"Unknown field {sorted(unknown)[0]}.", field=sorted(unknown)[0])
    for required in ("name", "segment_id", "template"):
        if values.get(required) in (None, ""):
            raise InvalidInputError(f"{required} is required.", field=required)
    campaign = Campaign(created_by=created_by if created_by and created_by.pk else None)
    for name, value in _clean(values).items():
        setattr(campaign, name, value)
    _require_subject(campaign)
    campaign.segment_name = _segment_name(campaign.segment_id)
    campaign.save()
    return campaign


def campaign_get_for_update(*, campaign_id: int) -> Campaign:
    try:
        return Campaign.objects.select_for_update().get(pk=campaign_id)
    except Campaign.DoesNotExist:
        raise NotFoundError("No such campaign.") from None


@transaction.atomic
def campaign_update(*, campaign_id: int, **values: Any) -> Campaign:
    """Change a draft; a campaign that was sent or scheduled is a 409."""
    campaign = campaign_get_for_update(campaign_id=campaign_id)
    if not campaign.is_editable:
        raise ConflictError(f"Only a draft can be edited; this campaign is {campaign.status}.")
    for name, value in _clean(values).items():
        setattr(campaign, name, value)
    _require_subject(campaign)
    if "segment_id" in values:
        campaign.segment_name = _segment_name(campaign.segment_id)
    campaign.save()
    return campaign


@transaction.atomic
def campaign_send(
    *,
    campaign_id: int,
    scheduled_at: datetime | None = None,
    actor: User | None = None,
    ip_address: str | None = None,
) -> Campaign:
    """Send now, or schedule for `scheduled_at`. Only a draft can be sent: twice is a 409."""
    campaign = campaign_get_for_update(campaign_id=campaign_id)
    if campaign.status != Campaign.Status.DRAFT:
        raise ConflictError(f"This campaign is already {campaign.status}; it is sent only once.")
    if campaign.segment_id is None:
        raise ConflictError("The campaign's segment was deleted; choose another segment.")
    _require_subject(campaign)
    try:
        # Refused up front (409 naming the setting), not failed later in the worker.
        channel_for(campaign.channel).check_setup()
    except ChannelSetupError as error:
        raise ConflictError(str(error)) from None
    now = timezone.now()
    if scheduled_at is not None and scheduled_at > now:
        campaign.status = Campaign.Status.SCHEDULED
        campaign.scheduled_at = scheduled_at
        _enqueue_launch(campaign.pk, run_after=scheduled_at)
    else:
        campaign.status = Campaign.Status.SENDING
        campaign.launched_at = now
        _enqueue_launch(campaign.pk)
    campaign.save()
    _audit_send(campaign, actor=actor, ip_address=ip_address)
    return campaign


def campaign_audit_target(campaign: Campaign) -> str:
    return f"Campaign “{campaign.name}” (#{campaign.pk})"


def _audit_send(campaign: Campaign, *, actor: User | None, ip_address: str | None) -> None:
    # The exact audience is drawn at launch, later; the segment's last count says its size now.
    segment_size = (
        Segment.objects.filter(pk=campaign.segment_id).values_list("last_count", flat=True).first()
        if campaign.segment_id is not None
        else None
    )
    details: dict[str, Any] = {
        "segment": campaign.segment_name,
        "channel": campaign.channel,
        "audience_size": segment_size,
    }
    scheduled = campaign.status == Campaign.Status.SCHEDULED
    if scheduled and campaign.scheduled_at is not None:
        details["scheduled_at"] = campaign.scheduled_at.isoformat()
    audit_record(
        action=AuditEvent.Action.CAMPAIGN_SCHEDULED
        if scheduled
        else AuditEvent.Action.CAMPAIGN_SENT,
        actor=actor,
        target=campaign_audit_target(campaign),
        details=details,
        ip_address=ip_address,
    )


@transaction.atomic
def campaign_cancel(
    *, campaign_id: int, actor: User | None = None, ip_address: str | None = None
) -> Campaign:
    """Stop what is still waiting: deliveries no batch holds are skipped; sent ones stay sent."""
    campaign = campaign_get_for_update(campaign_id=campaign_id)
    if campaign.status not in {Campaign.Status.SCHEDULED, Campaign.Status.SENDING}:
        raise ConflictError(
            f"Only a scheduled or sending campaign can be cancelled, not {campaign.status}."
        )
    from .counters import counters_move

    waiting = Delivery.objects.filter(
        campaign_id=campaign.pk, status=Delivery.Status.PENDING, batch_token=""
    )
    skipped = waiting.update(status=Delivery.Status.SKIPPED, error="Campaign cancelled.")
    counters_move(campaign.pk, {(Delivery.Status.PENDING, Delivery.Status.SKIPPED): skipped})
    campaign.status = Campaign.Status.CANCELLED
    campaign.finished_at = timezone.now()
    # Not a full save: the counters just moved in the database, this copy holds the old ones.
    campaign.save(update_fields=["status", "finished_at", "updated_at"])
    campaign.refresh_from_db()
    audit_record(
        action=AuditEvent.Action.CAMPAIGN_CANCELLED,
        actor=actor,
        target=campaign_audit_target(campaign),
        details={"deliveries_skipped": skipped},
        ip_address=ip_address,
    )
    return campaign


def _insert_audience(campaign: Campaign) -> int:
    """One INSERT ... SELECT of every reachable member; returns how many rows it wrote."""
    members = audience_customers(parse_rules(campaign.rules), campaign.channel)
    select_sql, params = members.order_by().values(member_id=F("pk")).query.sql_with_params()
    table = Delivery._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {table} (campaign_id, customer_id) "  # noqa: S608 - names from models
            f"SELECT %s, audience.member_id FROM ({select_sql}) audience",
            [campaign.pk, *params],
        )
        return cursor.rowcount


def _draw_holdout(campaign: Campaign, audience: int) -> int:
    """Mark the holdout share of the audience as held out; returns how many."""
    wanted = audience * campaign.holdout_percent // 100
    if not wanted:
        return 0
    table = Delivery._meta.db_table
    rank = f"((customer_id * {HOLDOUT_MULTIPLIER} + %s) %% {HOLDOUT_PRIME})"
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT {rank} AS draw FROM {table} WHERE campaign_id = %s "  # noqa: S608
            f"ORDER BY draw LIMIT 1 OFFSET %s",
            [campaign.holdout_seed, campaign.pk, wanted - 1],
        )
        (threshold,) = cursor.fetchone()
        cursor.execute(
            f"UPDATE {table} SET status = %s WHERE campaign_id = %s AND {rank} <= %s",  # noqa: S608
            [Delivery.Status.HELD_OUT, campaign.pk, campaign.holdout_seed, threshold],
        )
        return cursor.rowcount


def campaign_launch(*, campaign_id: int) -> Campaign | None:
    """Freeze the audience into Delivery rows and queue the delivery (worker side, idempotent).

    A scheduled campaign starts sending here; one cancelled meanwhile, or launched already, is
    left alone. Returns the campaign, or None when there is nothing to launch."""
    with transaction.atomic():
        try:
            campaign = campaign_get_for_update(campaign_id=campaign_id)
        except NotFoundError:
            return None
        if campaign.status == Campaign.Status.SCHEDULED:
            # A backend that cannot wait (immediate) runs the task at once: not before its time.
            # The recovery sweep launches a scheduled campaign once it is overdue.
            if campaign.scheduled_at and campaign.scheduled_at > timezone.now():
                return None
            campaign.status = Campaign.Status.SENDING
            campaign.launched_at = timezone.now()
        if campaign.status != Campaign.Status.SENDING:
            return None
        if campaign.snapshot_at is None:
            if campaign.segment_id is None:
                campaign.status = Campaign.Status.FAILED
                campaign.error = "The segment was deleted before the campaign launched."
                campaign.finished_at = timezone.now()
                campaign.save()
                return campaign
            campaign.rules = Segment.objects.values_list("rules", flat=True).get(
                id=campaign.segment_id
            )
            campaign.holdout_seed = secrets.randbelow(HOLDOUT_PRIME - 1) + 1
            counts = audience_counts(parse_rules(campaign.rules), campaign.channel)
            audience = _insert_audience(campaign)
            held_out = _draw_holdout(campaign, audience)
            campaign.audience = audience
            campaign.excluded = counts["excluded"]
            campaign.held_out = held_out
            campaign.pending = audience - held_out
            campaign.snapshot_at = timezone.now()
        if campaign.pending == 0:
            campaign.status = Campaign.Status.SENT
            campaign.finished_at = timezone.now()
        else:
            _enqueue_delivery(campaign.pk)
        campaign.save()
        return campaign
