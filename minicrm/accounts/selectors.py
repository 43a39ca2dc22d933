"""Reads for accounts."""

from django.db.models import QuerySet

from .models import ApiToken, AuditEvent, Role, User


def admin_exists() -> bool:
    return User.objects.filter(role=Role.ADMIN, is_active=True).exists()


def api_token_list(*, user: User) -> QuerySet[ApiToken]:
    tokens = ApiToken.objects.select_related("user")
    return tokens if user.has_role(Role.ADMIN) else tokens.filter(user=user)


def audit_event_list(*, action: str = "") -> QuerySet[AuditEvent]:
    events = AuditEvent.objects.select_related("actor")
    return events.filter(action=action) if action else events
