"""Writes for accounts: first admin, API tokens, audit events."""

import hashlib
import secrets
from typing import Any

from django.db import transaction
from django.http import HttpRequest
from django.utils import timezone

from minicrm.core.errors import ConflictError, NotFoundError

from .client_address import client_ip as client_ip  # re-exported: views and forms use it
from .models import ApiToken, AuditEvent, Role, User

TOKEN_PREFIX = "mcrm_"  # noqa: S105 (a public marker, not a secret)


def token_digest(raw_token: str) -> str:
    # Tokens carry 256 bits of randomness, so a fast hash is enough (unlike passwords) and keeps
    # every API call from paying for a slow key-derivation function.
    return hashlib.sha256(raw_token.encode()).hexdigest()


def audit_record(
    *,
    action: str,
    actor: User | None = None,
    target: str = "",
    details: dict[str, Any] | None = None,
    request: HttpRequest | None = None,
    ip_address: str | None = None,
) -> AuditEvent:
    """Append one event. `ip_address` is for services that get the address, not the request."""
    return AuditEvent.objects.create(
        actor=actor if actor is not None and actor.pk else None,
        action=action,
        target=target[:200],
        details=details or {},
        ip_address=client_ip(request) if request is not None else ip_address,
    )


@transaction.atomic
def first_admin_create(
    *, email: str, password: str, full_name: str = "", request: HttpRequest | None = None
) -> User:
    """Create the first admin. Refused once any admin exists, so the form cannot be reused."""
    if User.objects.select_for_update().filter(role=Role.ADMIN).exists():
        raise ConflictError("An admin account already exists. Sign in instead.")
    user = User.objects.create_superuser(email=email, password=password, full_name=full_name)
    audit_record(
        action=AuditEvent.Action.FIRST_ADMIN_CREATED, actor=user, target=user.email, request=request
    )
    return user


def api_token_create(
    *, user: User, name: str, request: HttpRequest | None = None
) -> tuple[ApiToken, str]:
    """Create a token and return it with its secret, which is never retrievable again."""
    raw = TOKEN_PREFIX + secrets.token_urlsafe(32)
    token = ApiToken.objects.create(
        user=user, name=name.strip() or "API token", prefix=raw[:12], digest=token_digest(raw)
    )
    audit_record(
        action=AuditEvent.Action.TOKEN_CREATED,
        actor=user,
        target=f"{token.name} ({token.prefix}…)",
        request=request,
    )
    return token, raw


def api_token_revoke(*, token_id: int, actor: User, request: HttpRequest | None = None) -> ApiToken:
    tokens = ApiToken.objects.all() if actor.has_role(Role.ADMIN) else actor.api_tokens.all()
    try:
        token = tokens.get(pk=token_id)
    except ApiToken.DoesNotExist as exc:
        raise NotFoundError("No such API token.") from exc
    if token.revoked_at is None:
        token.revoked_at = timezone.now()
        token.save(update_fields=["revoked_at"])
        audit_record(
            action=AuditEvent.Action.TOKEN_REVOKED,
            actor=actor,
            target=f"{token.name} ({token.prefix}…)",
            request=request,
        )
    return token


def api_token_authenticate(*, raw_token: str) -> ApiToken | None:
    """The live token (of an active user) a raw bearer token names, or None. Records its use.

    The token, not just its user: the API's rate limit counts per token."""
    if not raw_token.startswith(TOKEN_PREFIX):
        return None
    token = (
        ApiToken.objects.select_related("user")
        .filter(digest=token_digest(raw_token), revoked_at__isnull=True, user__is_active=True)
        .first()
    )
    if token is None:
        return None
    now = timezone.now()
    # Write at most once a minute per token so busy ingestion clients do not hammer the row.
    if token.last_used_at is None or (now - token.last_used_at).total_seconds() > 60:
        ApiToken.objects.filter(pk=token.pk).update(last_used_at=now)
    return token
