"""Writes for insights (ask for one, generate it, fail it) and the synchronous AI helpers:
plain-language text to validated rules, and message suggestions for a segment."""

import logging
import time
from collections.abc import Callable
from datetime import timedelta
from typing import TypeVar

from django.conf import settings
from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone

from minicrm.accounts.models import User
from minicrm.core.errors import ApplicationError
from minicrm.core.leases import lease_kept, lease_token, lease_until
from minicrm.core.tasks import enqueue_on_commit
from minicrm.segments.rules import RuleValidationError, parse_rules
from minicrm.segments.selectors import segment_get
from minicrm.segments.services import segment_get_for_update

from .facts import facts_snapshot_or_start_build, rules_facts
from .models import Insight
from .providers import (
    ParseResult,
    Provider,
    ProviderError,
    ProviderTransientError,
    get_provider,
)
from .tasks import INSIGHT_RETRY, insight_generate_task

logger = logging.getLogger(__name__)

# A request for the same rules while one is still pending returns that one (a double click, or
# "Regenerate" pressed twice), unless it has been pending so long its worker must have died.
PENDING_REUSE_WINDOW = timedelta(minutes=10)
MAX_TEXT_LENGTH = 1000
Answer = TypeVar("Answer")


class AIProviderError(ApplicationError):
    """The AI provider failed; the message says why (shown to the user)."""

    status_code = 502


class AIProviderUnavailableError(AIProviderError):
    status_code = 503


class UnreadableTextError(ApplicationError):
    """Nothing in the text could be turned into rules."""

    status_code = 422


def snapshot_wait_seconds() -> float:
    """How long the worker waits for its columnar snapshot to finish loading before it computes
    facts in SQL instead: at a million customers the load (about 23 s, once per process) is
    quicker than the first SQL facts with a cold base, and every later insight then takes
    about 0.2 s (bench/README_facts.md)."""
    return float(settings.INSIGHT_SNAPSHOT_WAIT_SECONDS)


def insights_recover() -> int:
    """Queue again (or fail) every running insight whose lease expired; return how many.

    A worker killed mid-insight (deploy, out of memory) stops renewing the lease, so the next
    recovery sweep finds it within a minute: with attempts left it is queued again with that
    reason, otherwise failed with it. The claim is a conditional UPDATE on the lease seen, so
    two sweepers never queue the same insight twice.
    """
    now = timezone.now()
    expired = Q(lease_expires_at__lt=now) | Q(lease_expires_at__isnull=True)
    # Read first: the sweep runs every few seconds, and on SQLite even an UPDATE that matches
    # nothing waits for the write lock behind a running import batch.
    seen = list(
        Insight.objects.filter(expired, status=Insight.Status.RUNNING)
        .order_by("pk")
        .values_list("pk", "lease_token", "attempts")
    )
    handled = 0
    for insight_id, token, attempts in seen:
        claim = Insight.objects.filter(
            expired, pk=insight_id, status=Insight.Status.RUNNING, lease_token=token
        )
        with transaction.atomic():
            if INSIGHT_RETRY.may_retry(attempts):
                claimed = claim.update(
                    status=Insight.Status.QUEUED,
                    lease_token="",
                    lease_expires_at=None,
                    error=(
                        f"The worker stopped during attempt {attempts}; trying again automatically."
                    ),
                )
                if claimed:
                    enqueue_on_commit(insight_generate_task, insight_id, attempts + 1)
            else:
                claimed = claim.update(
                    status=Insight.Status.FAILED,
                    lease_token="",
                    lease_expires_at=None,
                    finished_at=now,
                    error=(
                        f"The worker stopped while generating these insights ({attempts} "
                        f"attempt{'s' if attempts != 1 else ''}). Try again."
                    ),
                )
        if claimed:
            logger.warning("Insight %s lost its worker during attempt %s", insight_id, attempts)
            handled += 1
    return handled


def insight_request(*, segment_id: int, requested_by: User | None) -> Insight:
    """Queue an insight for the segment's current rules; the worker generates it.

    The segment's row is locked first, so two requests at once (a double click) queue one
    insight: the second waits for the first to commit, then finds it pending and returns it.
    """
    recent = timezone.now() - PENDING_REUSE_WINDOW
    with transaction.atomic():
        segment = segment_get_for_update(segment_id=segment_id)
        pending = (
            Insight.objects.filter(
                segment=segment,
                status__in=[Insight.Status.QUEUED, Insight.Status.RUNNING],
                created_at__gte=recent,
            )
            .order_by("-created_at")
            .first()
        )
        if pending is not None and pending.rules == segment.rules:
            return pending
        insight = Insight.objects.create(
            segment=segment,
            rules=segment.rules,
            provider=str(settings.AI_PROVIDER),
            requested_by=requested_by if requested_by is not None and requested_by.pk else None,
        )
        enqueue_on_commit(insight_generate_task, insight.pk)
    return insight


def insight_generate(*, insight_id: int, may_retry: bool) -> Insight | None:
    """Compute the facts and ask the provider; idempotent.

    Only a queued insight is claimed (so a duplicate task does nothing), with a lease that a
    thread renews while the facts and the provider take their time. A transient provider
    failure puts it back to queued when `may_retry` (the task then enqueues a later attempt),
    and fails it otherwise. Returns the insight, or None if it no longer exists.
    """
    now = timezone.now()
    token = lease_token()
    claimed = Insight.objects.filter(pk=insight_id, status=Insight.Status.QUEUED).update(
        status=Insight.Status.RUNNING,
        started_at=now,
        attempts=F("attempts") + 1,
        lease_token=token,
        lease_expires_at=lease_until(now),
    )
    insight = Insight.objects.select_related("segment").filter(pk=insight_id).first()
    if not claimed or insight is None:
        return insight
    with lease_kept(lambda: _lease_renew(insight_id, token), name=f"insight {insight_id}"):
        return _generate(insight, may_retry=may_retry)


def _lease_renew(insight_id: int, token: str) -> int:
    return Insight.objects.filter(pk=insight_id, lease_token=token).update(
        lease_expires_at=lease_until()
    )


def _generate(insight: Insight, *, may_retry: bool) -> Insight:
    started = time.monotonic()
    try:
        provider = get_provider()
        insight.provider, insight.model = provider.name, provider.model
        insight.facts = rules_facts(
            rules=parse_rules(insight.rules),
            snapshot=facts_snapshot_or_start_build(wait_seconds=snapshot_wait_seconds()),
        )
        content = provider.insight(insight.facts)
    except ProviderTransientError as error:
        if may_retry:
            insight.status = Insight.Status.QUEUED
            insight.error = f"Attempt {insight.attempts} failed, trying again: {error.message}"
            return _finish(insight, started, finished=False)
        return _fail(
            insight, started, f"{error.message} (gave up after {insight.attempts} attempts)"
        )
    except ProviderError as error:
        return _fail(insight, started, error.message)
    except RuleValidationError as error:
        return _fail(insight, started, f"The segment's rules are not valid: {error}")
    insight.content = content.model_dump()
    insight.status = Insight.Status.SUCCEEDED
    insight.error = ""
    return _finish(insight, started, finished=True)


def insight_fail(*, insight_id: int, reason: str) -> None:
    """Record a failure that happened outside the provider (the task boundary calls this)."""
    Insight.objects.filter(
        pk=insight_id, status__in=[Insight.Status.QUEUED, Insight.Status.RUNNING]
    ).update(
        status=Insight.Status.FAILED,
        error=reason[:2000],
        finished_at=timezone.now(),
        lease_token="",
        lease_expires_at=None,
    )


def _fail(insight: Insight, started: float, reason: str) -> Insight:
    logger.warning("Insight %s failed: %s", insight.pk, reason)
    insight.status = Insight.Status.FAILED
    insight.error = reason
    return _finish(insight, started, finished=True)


def _finish(insight: Insight, started: float, *, finished: bool) -> Insight:
    """Save the outcome while this run still holds the lease; otherwise the run lost it (the
    sweep took the insight as lost) and its outcome yields to the run that took over."""
    insight.duration_ms = round((time.monotonic() - started) * 1000)
    insight.finished_at = timezone.now() if finished else None
    saved = Insight.objects.filter(pk=insight.pk, lease_token=insight.lease_token).update(
        status=insight.status,
        provider=insight.provider,
        model=insight.model,
        facts=insight.facts,
        content=insight.content,
        error=insight.error,
        duration_ms=insight.duration_ms,
        finished_at=insight.finished_at,
        lease_token="",
        lease_expires_at=None,
    )
    if not saved:
        logger.info(
            "Insight %s was taken over while this run worked; its outcome is dropped", insight.pk
        )
        insight.refresh_from_db()
        return insight
    insight.lease_token, insight.lease_expires_at = "", None
    return insight


def audience_parse(*, text: str) -> ParseResult:
    """Rules for a plain-language description, validated by the same parser as saved rules."""
    text = text.strip()
    if not text:
        raise UnreadableTextError("Describe the customers you want.", field="text")
    if len(text) > MAX_TEXT_LENGTH:
        raise UnreadableTextError(
            f"Keep the description under {MAX_TEXT_LENGTH} characters.", field="text"
        )
    result = _call_provider(lambda provider: provider.parse_audience(text))
    try:
        rules = parse_rules(result.rules)
    except RuleValidationError as error:
        raise AIProviderError(f"The proposed rules are not valid: {error}") from error
    if rules.is_empty:
        raise UnreadableTextError(result.explanation, field="text")
    return ParseResult(
        rules=rules.to_dict(), explanation=result.explanation, unparsed=result.unparsed
    )


def messages_suggest(*, segment_id: int, objective: str) -> list[str]:
    """Three message variants for the objective, grounded in the segment's facts."""
    objective = objective.strip()
    if not objective:
        raise ApplicationError("Say what the message should achieve.", field="objective")
    segment = segment_get(segment_id=segment_id)
    facts = rules_facts(rules=parse_rules(segment.rules))
    return _call_provider(lambda provider: provider.suggest_messages(facts, objective))


def _call_provider(call: Callable[[Provider], Answer]) -> Answer:
    try:
        return call(get_provider())
    except ProviderTransientError as error:
        raise AIProviderUnavailableError(error.message) from error
    except ProviderError as error:
        raise AIProviderError(error.message) from error
