"""Reads for accounts."""

from datetime import date, datetime, time, timedelta

from django.db.models import QuerySet
from django.utils import timezone

from .models import ApiToken, AuditEvent, Invitation, Role, User


def admin_exists() -> bool:
    return User.objects.filter(role=Role.ADMIN, is_active=True).exists()


def api_token_list(*, user: User) -> QuerySet[ApiToken]:
    tokens = ApiToken.objects.select_related("user")
    return tokens if user.has_role(Role.ADMIN) else tokens.filter(user=user)


def audit_event_list(
    *,
    action: str = "",
    actor_id: int | None = None,
    target: str = "",
    date_from: date | None = None,
    date_to: date | None = None,
) -> QuerySet[AuditEvent]:
    """Events newest first; dates are whole days in the configured time zone, both included."""
    events = AuditEvent.objects.select_related("actor").order_by("-created_at", "-pk")
    if action:
        events = events.filter(action=action)
    if actor_id is not None:
        events = events.filter(actor_id=actor_id)
    if target.strip():
        events = events.filter(target__icontains=target.strip())
    if date_from is not None:
        events = events.filter(created_at__gte=_day_start(date_from))
    if date_to is not None:
        events = events.filter(created_at__lt=_day_start(date_to + timedelta(days=1)))
    return events


def _day_start(day: date) -> datetime:
    return datetime.combine(day, time.min, tzinfo=timezone.get_default_timezone())


def audit_actor_list() -> QuerySet[User]:
    """Everyone who can appear as an actor, for the audit filter's select."""
    return User.objects.order_by("email").only("pk", "email", "full_name")


def invitation_pending_list() -> QuerySet[Invitation]:
    """Invitations not yet accepted or revoked, expired ones included (they show as expired)."""
    return Invitation.objects.select_related("invited_by").filter(
        accepted_at__isnull=True, revoked_at__isnull=True
    )


def user_list() -> QuerySet[User]:
    return User.objects.order_by("-is_active", "email")
