"""Writes for segments: create, update, delete, and recording a segment's size."""

import hashlib
import json
from datetime import date, timedelta
from typing import Any

from django.db import IntegrityError, transaction
from django.utils import timezone

from minicrm.accounts.models import AuditEvent, User
from minicrm.accounts.services import audit_record
from minicrm.core.errors import ApplicationError, ConflictError, NotFoundError
from minicrm.core.statement_timeout import (
    StatementTimeoutError,
    statement_timeout,
    worker_timeout_seconds,
)
from minicrm.core.tasks import enqueue_on_commit

from .compiler import customers_matching, today_in_zone
from .models import (
    NAME_MAX_LENGTH,
    NAME_UNIQUE_CONSTRAINT,
    Segment,
    SegmentSize,
    SegmentSizeSchedule,
)
from .rules import RuleGroup, parse_rules
from .selectors import preview_snapshot_or_start_build
from .tasks import segment_size_record_task, segment_sizes_daily_task

# A save counts the rules it stores within this budget (one statement), so the segment page
# shows their size at once: the columnar snapshot, when loaded, counts any rule at 1M customers
# in milliseconds, and SQL counts common rules in tens of milliseconds. A rule slower than this
# is counted by the background task while the page shows "counting…".
SAVE_COUNT_SECONDS = 0.5


def rules_hash(rules: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(rules, sort_keys=True).encode()).hexdigest()


def _clean_name(name: str) -> str:
    name = name.strip()
    if not name:
        raise ApplicationError("A segment needs a name.", field="name")
    if len(name) > NAME_MAX_LENGTH:
        raise ApplicationError(
            f"A segment name has at most {NAME_MAX_LENGTH} characters.", field="name"
        )
    return name


def segment_audit_target(segment: Segment) -> str:
    return f"Segment “{segment.name}” (#{segment.pk})"


def _enqueue_size(segment_id: int) -> None:
    enqueue_on_commit(segment_size_record_task, segment_id)


def _save_or_conflict(segment: Segment) -> None:
    """Save, or raise ConflictError when another segment has the name, ignoring case.

    The database decides (the unique constraint on `name_key`), not a read before the write, so
    two requests saving "VIP" and "vip" at the same moment cannot both succeed.
    """
    try:
        with transaction.atomic():
            segment.save()
    except IntegrityError as error:
        # Every database names the broken constraint (PostgreSQL, MariaDB) or its column
        # (SQLite) in the message; any other integrity error is not about the name.
        if NAME_UNIQUE_CONSTRAINT not in str(error) and "name_key" not in str(error):
            raise
        raise ConflictError(
            f'A segment named "{segment.name}" already exists.', field="name"
        ) from None


@transaction.atomic
def segment_create(
    *,
    name: str,
    rules: RuleGroup,
    created_by: User | None,
    description: str = "",
    ip_address: str | None = None,
) -> Segment:
    """Create a segment. Raises ConflictError when the name is taken (ignoring case)."""
    segment = Segment(
        name=_clean_name(name),
        description=description.strip(),
        rules=rules.to_dict(),
        created_by=created_by if created_by is not None and created_by.pk else None,
    )
    _save_or_conflict(segment)
    _count_at_save(segment, rules)
    audit_record(
        action=AuditEvent.Action.SEGMENT_CREATED,
        actor=created_by,
        target=segment_audit_target(segment),
        ip_address=ip_address,
    )
    return segment


def segment_get_for_update(*, segment_id: int) -> Segment:
    try:
        return Segment.objects.select_for_update().get(pk=segment_id)
    except Segment.DoesNotExist:
        raise NotFoundError("No such segment.") from None


@transaction.atomic
def segment_update(
    *,
    segment_id: int,
    name: str | None = None,
    description: str | None = None,
    rules: RuleGroup | None = None,
    actor: User | None = None,
    ip_address: str | None = None,
) -> Segment:
    """Change what is given; a rules change records a new size point in the background."""
    segment = segment_get_for_update(segment_id=segment_id)
    before = {"name": segment.name, "description": segment.description}
    rules_changed = False
    if rules is not None:
        canonical = rules.to_dict()
        rules_changed = canonical != segment.rules
        segment.rules = canonical
    if name is not None:
        segment.name = _clean_name(name)
    if description is not None:
        segment.description = description.strip()
    _save_or_conflict(segment)
    if rules_changed and rules is not None:
        _count_at_save(segment, rules)
    changed = [field for field, value in before.items() if getattr(segment, field) != value]
    if rules_changed:
        changed.append("rules")
    # A save that changed nothing is not an event worth a line in the trail.
    if changed:
        details: dict[str, Any] = {"changed": changed}
        if "name" in changed:
            details["old_name"] = before["name"]
        audit_record(
            action=AuditEvent.Action.SEGMENT_CHANGED,
            actor=actor,
            target=segment_audit_target(segment),
            details=details,
            ip_address=ip_address,
        )
    return segment


def _count_at_save(segment: Segment, group: RuleGroup) -> None:
    """Show the size of the rules just saved at once, if counting is quick (SAVE_COUNT_SECONDS);
    else drop the size of the old rules, so no page shows it under the new ones (the segment
    page shows "counting…" until the background count lands). The background task still keeps
    the day's point of the size history, as it did, off the request."""
    _enqueue_size(segment.pk)
    try:
        snapshot = preview_snapshot_or_start_build()  # None until ready: a save never waits
        with statement_timeout(SAVE_COUNT_SECONDS):
            if snapshot is not None:
                size: int | None = snapshot.count(group, today=today_in_zone())
            else:
                size = customers_matching(group, today=today_in_zone()).count()
    except StatementTimeoutError:
        size = None
    segment.last_count = size
    segment.last_counted_at = None if size is None else timezone.now()
    Segment.objects.filter(pk=segment.pk).update(
        last_count=segment.last_count, last_counted_at=segment.last_counted_at
    )


def _record_size(segment: Segment, *, day: date, size: int) -> SegmentSize:
    """Keep `size` as the day's point for the segment's current rules, and as its last count."""
    now = timezone.now()
    with transaction.atomic():
        point, _created = SegmentSize.objects.update_or_create(
            segment=segment,
            day=day,
            rules_hash=rules_hash(segment.rules),
            defaults={"size": size, "counted_at": now},
        )
        Segment.objects.filter(pk=segment.pk).update(last_count=size, last_counted_at=now)
    return point


@transaction.atomic
def segment_delete(
    *, segment_id: int, actor: User | None = None, ip_address: str | None = None
) -> None:
    segment = Segment.objects.filter(pk=segment_id).first()
    if segment is None:
        raise NotFoundError("No such segment.")
    target = segment_audit_target(segment)  # before delete() clears the pk
    segment.delete()
    audit_record(
        action=AuditEvent.Action.SEGMENT_DELETED,
        actor=actor,
        target=target,
        ip_address=ip_address,
    )


def segment_size_record(*, segment_id: int, today: date | None = None) -> SegmentSize | None:
    """Count a segment now and keep it as today's point for its current rules (idempotent).

    Returns None when the segment no longer exists (deleted after the task was queued).
    """
    segment = Segment.objects.filter(pk=segment_id).first()
    if segment is None:
        return None
    day = today or today_in_zone()
    group: RuleGroup = parse_rules(segment.rules)
    # Past the budget the task fails with StatementTimeoutError (in its result and the log)
    # instead of holding the worker; the previous size stays.
    with statement_timeout(worker_timeout_seconds()):
        size = customers_matching(group, today=day).count()
    return _record_size(segment, day=day, size=size)


def segment_sizes_record_all(*, today: date | None = None) -> int:
    """Record today's size of every segment; returns how many were counted."""
    day = today or today_in_zone()
    counted = 0
    for segment_id in Segment.objects.order_by("pk").values_list("pk", flat=True):
        if segment_size_record(segment_id=segment_id, today=day) is not None:
            counted += 1
    return counted


def segment_sizes_claim(*, run_on: date) -> bool:
    """Move the daily chain from `run_on` to the next day; False if another run already did."""
    with transaction.atomic():
        moved = SegmentSizeSchedule.objects.filter(pk=1, next_run_on=run_on).update(
            next_run_on=run_on + timedelta(days=1)
        )
    return moved == 1


def segment_sizes_ensure(*, today: date | None = None, force: bool = False) -> date | None:
    """Start the daily chain unless one is already scheduled; returns the day it starts on.

    A chain whose next day has passed without a run is taken as dead and restarted today.
    """
    day = today or today_in_zone()
    with transaction.atomic():
        schedule = SegmentSizeSchedule.objects.select_for_update().filter(pk=1).first()
        if schedule is not None and schedule.next_run_on >= day and not force:
            return None
        SegmentSizeSchedule.objects.update_or_create(pk=1, defaults={"next_run_on": day})
        enqueue_on_commit(segment_sizes_daily_task, day.isoformat())
    return day
