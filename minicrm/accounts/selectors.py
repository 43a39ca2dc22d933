"""Reads for accounts."""

from django.db.models import QuerySet

from .models import ApiToken, AuditEvent, Invitation, Role, User


def admin_exists() -> bool:
    return User.objects.filter(role=Role.ADMIN, is_active=True).exists()


def api_token_list(*, user: User) -> QuerySet[ApiToken]:
    tokens = ApiToken.objects.select_related("user")
    return tokens if user.has_role(Role.ADMIN) else tokens.filter(user=user)


def audit_event_list(*, action: str = "") -> QuerySet[AuditEvent]:
    events = AuditEvent.objects.select_related("actor")
    return events.filter(action=action) if action else events


def invitation_pending_list() -> QuerySet[Invitation]:
    """Invitations not yet accepted or revoked, expired ones included (they show as expired)."""
    return Invitation.objects.select_related("invited_by").filter(
        accepted_at__isnull=True, revoked_at__isnull=True
    )


def user_list() -> QuerySet[User]:
    return User.objects.order_by("-is_active", "email")
