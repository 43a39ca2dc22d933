"""The delivery worker: a launched campaign's pending deliveries go out in batches.

One worker delivers a campaign at a time: it holds the campaign's lease (renewed from a thread)
and writes only while its token is on the campaign row, which it locks for each write. A batch
is claimed by stamping its rows with a batch token in one UPDATE; if the worker dies, the next
holder claims that batch again with the same delivery ids (the vendor's idempotency key), before
any fresh one. Each customer's reachability is checked again at batch time, so one who
unsubscribed since the launch is skipped, never sent. Outcomes and counters are written in one
transaction per batch; a transient channel failure leaves the batch pending and the task comes
back later (exponential backoff), until the attempts run out and the batch fails with the reason.
"""

import logging
import secrets
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from minicrm.core.db_retry import atomic_with_retry
from minicrm.core.leases import lease_kept, lease_seconds, lease_token, lease_until
from minicrm.core.tasks import RetryPolicy, enqueue_on_commit

from .audience import NEEDS_EMAIL
from .channels import Channel, ChannelSetupError, Message, Outcome, channel_for
from .counters import counters_move
from .delivery_outcomes import Written, deliveries_write
from .models import Campaign, Delivery
from .ratelimit import piece_size, rate_wait
from .summary import summary_after_send
from .templating import CUSTOMER_FIELDS, message_context, render
from .unsubscribe import unsubscribe_token, unsubscribe_url

logger = logging.getLogger(__name__)

PENDING = Delivery.Status.PENDING
SENT = Delivery.Status.SENT
FAILED = Delivery.Status.FAILED
SKIPPED = Delivery.Status.SKIPPED
MAX_ERROR_CHARS = 500
# What the batch read takes from each delivery's customer: the message's fields, and what
# decides whether they can still be reached.
_CUSTOMER_NAMES = [(name, f"customer__{name}") for name in CUSTOMER_FIELDS if name != "id"]
_CUSTOMER_COLUMNS = [column for _name, column in _CUSTOMER_NAMES]
_REACH_COLUMNS = ["customer__unsubscribed_at", "customer__marketing_consent"]


def batch_size() -> int:
    return max(1, int(settings.MINICRM_DELIVERY_BATCH_SIZE))


# A batch's attempts (counted on its deliveries) and the wait between them.
DELIVERY_RETRY = RetryPolicy(
    max_attempts_setting="MINICRM_DELIVERY_MAX_ATTEMPTS",
    base_seconds_setting="MINICRM_DELIVERY_RETRY_BASE_SECONDS",
)


class LeaseLostError(Exception):
    """Another worker took the campaign over (this one stalled past its lease): stop quietly."""


@dataclass
class _Batch:
    token: str
    ids: list[int]


@dataclass
class _Outcomes:
    """A batch's results, by delivery id, before they are written."""

    sent: list[tuple[Message, Outcome]] = field(default_factory=list)
    failed: dict[int, tuple[Message | None, str]] = field(default_factory=dict)
    skipped: dict[int, str] = field(default_factory=dict)
    retry: dict[int, str] = field(default_factory=dict)


def campaign_deliver(*, campaign_id: int, attempt: int = 1) -> str | None:
    """Deliver the campaign's pending messages; returns what became of it (for the task log).

    Idempotent: a duplicate task finds the lease held (or nothing pending) and stops."""
    token = lease_token()
    refused = _lease_take(campaign_id, token)
    if refused is not None:
        return refused
    retry_at: datetime | None = None
    try:
        with lease_kept(lambda: _lease_renew(campaign_id, token), name=f"campaign {campaign_id}"):
            result, retry_at = _deliver_batches(campaign_id, token)
    except LeaseLostError:
        logger.warning("Campaign %s was taken over by another worker; this one stops", campaign_id)
        return "taken over"
    except Exception:
        # Let the sweep queue it again after the lease (the batch is claimed again, same ids).
        _lease_release(campaign_id, token, until=timezone.now())
        raise
    _lease_release(campaign_id, token, until=retry_at)
    if retry_at is not None:
        _enqueue_retry(campaign_id, attempt + 1, retry_at)
    return result


# --- The lease ------------------------------------------------------------------------------


def _lease_take(campaign_id: int, token: str) -> str | None:
    """Take the campaign for this run; returns why not, or None when taken."""
    now = timezone.now()
    with transaction.atomic():
        campaign = (
            Campaign.objects.select_for_update()
            .filter(pk=campaign_id)
            .only("status", "snapshot_at", "pending", "lease_token", "lease_expires_at")
            .first()
        )
        if campaign is None:
            return "missing"
        if campaign.status not in {Campaign.Status.SENDING, Campaign.Status.CANCELLED}:
            return str(campaign.status)
        if campaign.snapshot_at is None:
            return "not launched"
        if campaign.status == Campaign.Status.CANCELLED and not campaign.pending:
            return str(campaign.status)
        expires = campaign.lease_expires_at
        if campaign.lease_token and expires is not None and expires >= now:
            return "busy"
        Campaign.objects.filter(pk=campaign_id).update(
            lease_token=token, lease_expires_at=lease_until(now)
        )
    return None


_current_batch: dict[str, list[int]] = {}


def _lease_renew(campaign_id: int, token: str) -> None:
    """Renew the campaign's lease and, with it, the batch in flight (they expire together)."""
    until = lease_until()
    with transaction.atomic():
        kept = Campaign.objects.filter(pk=campaign_id, lease_token=token).update(
            lease_expires_at=until
        )
        in_flight = _current_batch.get(token)
        if kept and in_flight:
            Delivery.objects.filter(pk__in=in_flight, status=PENDING).update(batch_expires_at=until)


def _lease_release(campaign_id: int, token: str, *, until: datetime | None) -> None:
    """Give the lease up. `until` keeps the sweep off a campaign whose retry is queued for then
    (a retry that never comes is recovered a lease after it)."""
    _current_batch.pop(token, None)
    expires = until + timedelta(seconds=lease_seconds()) if until is not None else None
    Campaign.objects.filter(pk=campaign_id, lease_token=token).update(
        lease_token="", lease_expires_at=expires
    )


def _campaign_locked(campaign_id: int, token: str) -> Campaign:
    """The campaign under its row lock, while this run still holds its lease."""
    campaign = Campaign.objects.select_for_update().get(pk=campaign_id)
    if campaign.lease_token != token:
        raise LeaseLostError
    return campaign


def _enqueue_retry(campaign_id: int, attempt: int, run_at: datetime) -> None:
    """Queue the next task at `run_at`, the time the lease was released for (so the retry is
    not a fixed delay after the commit, as `retry_later` would make it)."""
    from .tasks import campaign_deliver_task  # the task module imports this one

    logger.info("Campaign %s: delivery attempt %s at %s", campaign_id, attempt, run_at)
    enqueue_on_commit(campaign_deliver_task, campaign_id, attempt, run_after=run_at)


# --- The batches ----------------------------------------------------------------------------


def _deliver_batches(campaign_id: int, token: str) -> tuple[str, datetime | None]:
    """Claim and send batch after batch; returns (result, when to try again or None)."""
    campaign = Campaign.objects.only("channel", "subject", "template").get(pk=campaign_id)
    channel = channel_for(campaign.channel)
    try:
        channel.check_setup()
    except ChannelSetupError as error:
        _campaign_fail(campaign_id, token, str(error))
        return "failed", None
    # Batches left by a worker that died (or waiting for a retry) go first, with the same ids;
    # only they can be stale while this run holds the lease, so they are looked for once.
    while (batch := _claim_stale(campaign_id)) is not None:
        retry_at = _deliver_batch(campaign, channel, token, batch)
        if retry_at is not None:
            return "retrying", retry_at
    while True:
        status = Campaign.objects.filter(pk=campaign_id).values_list("status", flat=True).get()
        if status != Campaign.Status.SENDING:
            return str(status), None
        batch = _claim_fresh(campaign_id)
        if batch is None:
            return _campaign_finish(campaign_id, token), None
        retry_at = _deliver_batch(campaign, channel, token, batch)
        if retry_at is not None:
            return "retrying", retry_at


def _claim(rows: Any, ids: list[int]) -> tuple[_Batch, int]:
    """Stamp `rows` with a new batch token (one UPDATE); returns the batch and how many."""
    batch = _Batch(token=secrets.token_hex(16), ids=ids)
    claimed = rows.update(
        batch_token=batch.token, batch_expires_at=lease_until(), attempts=F("attempts") + 1
    )
    return batch, claimed


def _claim_stale(campaign_id: int) -> _Batch | None:
    """The first batch whose worker is gone (its expiry passed), claimed again whole."""

    def claim() -> _Batch | None:
        stale = (
            Delivery.objects.filter(campaign_id=campaign_id, status=PENDING)
            .exclude(batch_token="")
            .filter(batch_expires_at__lt=timezone.now())
            .order_by("pk")
            .values_list("batch_token", flat=True)
            .first()
        )
        if stale is None:
            return None
        rows = Delivery.objects.filter(campaign_id=campaign_id, status=PENDING, batch_token=stale)
        ids = sorted(rows.values_list("pk", flat=True))
        batch, _claimed = _claim(Delivery.objects.filter(pk__in=ids, batch_token=stale), ids)
        return batch

    return atomic_with_retry(claim)


def _claim_fresh(campaign_id: int) -> _Batch | None:
    """The next `batch_size()` waiting deliveries, in id order."""

    def claim() -> _Batch | None:
        waiting = Delivery.objects.filter(campaign_id=campaign_id, status=PENDING, batch_token="")
        ids = list(waiting.order_by("pk").values_list("pk", flat=True)[: batch_size()])
        if not ids:
            return None
        # Conditional on still waiting: a cancel in between skips some, the claim leaves them.
        batch, claimed = _claim(waiting.filter(pk__in=ids), ids)
        if claimed != len(ids):
            mine = Delivery.objects.filter(pk__in=ids, batch_token=batch.token)
            batch.ids = sorted(mine.values_list("pk", flat=True))
        return batch

    return atomic_with_retry(claim)


def _unreachable_reason(row: dict[str, Any], channel: str) -> str:
    """Why a customer can no longer be sent to ("" if they can): checked at batch time."""
    if row["customer__unsubscribed_at"] is not None:
        return "Unsubscribed after the launch."
    if not row["customer__marketing_consent"]:
        return "Withdrew marketing consent after the launch."
    if channel in NEEDS_EMAIL and not row["customer__email"]:
        return "No email address any more."
    return ""


def _link_maker() -> Callable[[int], str]:
    """unsubscribe.unsubscribe_url, with the URL resolved once per batch instead of per customer
    (reverse() was a third of the worker's time per message); the same links, byte for byte."""
    marker = "0-MARKER-0"
    prefix, suffix = unsubscribe_url(0).replace(unsubscribe_token(0), marker).split(marker)
    return lambda customer_id: prefix + unsubscribe_token(customer_id) + suffix


def _renderer(text: str) -> Callable[[dict[str, Any]], str]:
    """Render `text` for a context; text without any template syntax is itself."""
    if "{" not in text:
        return lambda _context: text
    return lambda context: render(text, context)


def _messages(
    campaign: Campaign, rows: Sequence[dict[str, Any]], outcomes: _Outcomes
) -> list[Message]:
    """Render each reachable customer's message; the unreachable are skipped with the reason."""
    messages = []
    link_of = _link_maker()
    subject_for, body_for = _renderer(campaign.subject), _renderer(campaign.template)
    for row in rows:
        reason = _unreachable_reason(row, campaign.channel)
        if reason:
            outcomes.skipped[row["pk"]] = reason
            continue
        customer = {name: row[column] for name, column in _CUSTOMER_NAMES}
        link = link_of(row["customer_id"])
        context = message_context(customer, unsubscribe_url=link)
        messages.append(
            Message(
                delivery_id=row["pk"],
                channel=campaign.channel,
                to=customer["email"] or "",
                subject=subject_for(context),
                body=body_for(context),
                unsubscribe_url=link,
            )
        )
    return messages


def _send(channel: Channel, messages: list[Message]) -> list[Outcome]:
    """Through the channel's rate limit, a piece at a time, on one connection per batch."""
    outcomes: list[Outcome] = []
    if not messages:
        return outcomes
    size = piece_size(channel.name, len(messages))
    with channel.opened() as sender:
        for start in range(0, len(messages), size):
            piece = messages[start : start + size]
            rate_wait(channel.name, len(piece))
            outcomes.extend(sender.send(piece))
    return outcomes


def _deliver_batch(
    campaign: Campaign, channel: Channel, token: str, batch: _Batch
) -> datetime | None:
    """Send one claimed batch and record it; returns when to retry what is left, or None."""
    _current_batch[token] = batch.ids
    rows = list(
        Delivery.objects.filter(pk__in=batch.ids, batch_token=batch.token)
        .order_by("pk")
        .values("pk", "attempts", "customer_id", *_CUSTOMER_COLUMNS, *_REACH_COLUMNS)
    )
    outcomes = _Outcomes()
    messages = _messages(campaign, rows, outcomes)
    by_id = {message.delivery_id: message for message in messages}
    attempts = max((row["attempts"] for row in rows), default=1)
    for outcome in _send(channel, messages):
        message = by_id[outcome.delivery_id]
        if outcome.status == "sent":
            outcomes.sent.append((message, outcome))
        elif outcome.status == "failed":
            outcomes.failed[outcome.delivery_id] = (message, outcome.reason)
        elif not DELIVERY_RETRY.may_retry(attempts):
            reason = f"{outcome.reason} (gave up after {attempts} attempts)"
            outcomes.failed[outcome.delivery_id] = (message, reason)
        else:
            outcomes.retry[outcome.delivery_id] = outcome.reason
    atomic_with_retry(lambda: _record(campaign.pk, token, outcomes))
    _current_batch.pop(token, None)
    if not outcomes.retry:
        return None
    reason = next(iter(outcomes.retry.values()))
    logger.warning(
        "Campaign %s: %s deliveries to try again (attempt %s): %s",
        campaign.pk,
        len(outcomes.retry),
        attempts,
        reason,
    )
    return timezone.now() + DELIVERY_RETRY.delay(attempts)


def _record(campaign_id: int, token: str, outcomes: _Outcomes) -> None:
    """Write a batch's outcomes and move the counters with them, in one transaction."""
    _campaign_locked(campaign_id, token)
    now = timezone.now()
    written = [
        Written(
            message.delivery_id,
            SENT,
            message.to,
            message.subject,
            message.body,
            outcome.vendor_id,
            now,
            "",
        )
        for message, outcome in outcomes.sent
    ]
    for delivery_id, (failed, reason) in outcomes.failed.items():
        to, subject, body = (failed.to, failed.subject, failed.body) if failed else ("", "", "")
        written.append(
            Written(delivery_id, FAILED, to, subject, body, None, None, reason[:MAX_ERROR_CHARS])
        )
    for delivery_id, reason in outcomes.skipped.items():
        written.append(
            Written(delivery_id, SKIPPED, "", "", "", None, None, reason[:MAX_ERROR_CHARS])
        )
    deliveries_write(written)
    if outcomes.retry:
        # Still pending in the same batch, stale at once: the retry claims exactly these ids.
        Delivery.objects.filter(pk__in=list(outcomes.retry)).update(
            batch_expires_at=now, error=next(iter(outcomes.retry.values()))[:MAX_ERROR_CHARS]
        )
    counters_move(
        campaign_id,
        {
            (PENDING, Delivery.Status.SENT): len(outcomes.sent),
            (PENDING, Delivery.Status.FAILED): len(outcomes.failed),
            (PENDING, Delivery.Status.SKIPPED): len(outcomes.skipped),
        },
    )


def _campaign_finish(campaign_id: int, token: str) -> str:
    """Nothing left to claim: a sending campaign with no pending delivery is sent."""

    def finish() -> str:
        campaign = _campaign_locked(campaign_id, token)
        if campaign.status == Campaign.Status.SENDING and campaign.pending == 0:
            Campaign.objects.filter(pk=campaign_id).update(
                status=Campaign.Status.SENT, finished_at=timezone.now()
            )
            # The marketer finds a first summary on the page, and a final one once the
            # attribution window has closed (queued after this commit).
            summary_after_send(campaign_id=campaign_id)
            return str(Campaign.Status.SENT)
        return str(campaign.status)

    return atomic_with_retry(finish)


def _campaign_fail(campaign_id: int, token: str, reason: str) -> None:
    """The channel cannot send at all: every pending delivery fails with the reason, and so does
    the campaign."""

    def fail() -> None:
        campaign = _campaign_locked(campaign_id, token)
        failed = Delivery.objects.filter(campaign_id=campaign_id, status=PENDING).update(
            status=Delivery.Status.FAILED, error=reason[:MAX_ERROR_CHARS], batch_token=""
        )
        counters_move(campaign_id, {(PENDING, Delivery.Status.FAILED): failed})
        if campaign.status == Campaign.Status.SENDING:
            Campaign.objects.filter(pk=campaign_id).update(
                status=Campaign.Status.FAILED, error=reason, finished_at=timezone.now()
            )

    atomic_with_retry(fail)
