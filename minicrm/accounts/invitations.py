"""Invitations: an admin invites an email with a role; a signed, expiring link lets them in.

The OIDC sign-in (minicrm.accounts.oidc) accepts an invitation through `invitation_open_for` and
`invitation_accept`, so an invited person may also arrive through their identity provider.
"""

import logging
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.core import signing
from django.core.mail import send_mail
from django.db import IntegrityError, transaction
from django.http import HttpRequest
from django.urls import reverse
from django.utils import timezone

from minicrm.core.errors import ApplicationError, ConflictError, InvalidInputError, NotFoundError

from .models import AuditEvent, Invitation, Role, User
from .services import audit_record

logger = logging.getLogger(__name__)

# A salt of its own, so no other signed value of the app (sign-in links, say) passes as one.
INVITATION_SALT = "minicrm.accounts.invitation"
INVALID_LINK = "This invitation link is not valid. Check that it is complete."


class InvitationUnusableError(ApplicationError):
    """A genuine link that no longer lets anyone in: expired, revoked or already used."""

    status_code = 410


class InvitationEmailError(ApplicationError):
    """The invitation exists but its email could not be sent; the admin can pass the link on."""

    status_code = 502

    def __init__(self, message: str, *, invitation: Invitation, link: str) -> None:
        super().__init__(message)
        self.invitation = invitation
        self.link = link


def invitation_lifetime() -> timedelta:
    return timedelta(days=settings.MINICRM_INVITATION_DAYS)


def email_normalize(email: str) -> str:
    return email.strip().lower()


def invitation_token(invitation: Invitation) -> str:
    """The signed, timestamped token of the link; it names the invitation and its email."""
    return signing.dumps({"i": invitation.pk, "e": invitation.email}, salt=INVITATION_SALT)


def invitation_link(*, invitation: Invitation, request: HttpRequest | None) -> str:
    path = reverse("accounts:invitation_accept", args=[invitation_token(invitation)])
    # The configured public address first: a link built from the request's Host header could be
    # pointed elsewhere by whoever sends that header.
    base = settings.MINICRM_PUBLIC_URL.rstrip("/")
    if base:
        return base + path
    if request is None:
        raise ConflictError("Set MINICRM_PUBLIC_URL to send invitations outside a request.")
    return request.build_absolute_uri(path)


def _unusable_reason(invitation: Invitation) -> str | None:
    status = invitation.status
    if status == "accepted":
        return "This invitation has already been used. Sign in instead."
    if status == "revoked":
        return "This invitation was withdrawn. Ask an admin for a new one."
    if status == "expired":
        return "This invitation has expired. Ask an admin for a new one."
    return None


def invitation_from_token(token: str) -> Invitation:
    """The open invitation behind a link's token, or a clear error (404 tampered, 410 unusable)."""
    try:
        payload: Any = signing.loads(token, salt=INVITATION_SALT, max_age=invitation_lifetime())
    except signing.SignatureExpired as exc:
        raise InvitationUnusableError(
            "This invitation has expired. Ask an admin for a new one."
        ) from exc
    except signing.BadSignature as exc:
        raise NotFoundError(INVALID_LINK) from exc
    if not isinstance(payload, dict) or not isinstance(payload.get("i"), int):
        raise NotFoundError(INVALID_LINK)
    invitation = Invitation.objects.filter(pk=payload["i"], email=payload.get("e")).first()
    if invitation is None:
        raise NotFoundError("This invitation no longer exists. Ask an admin for a new one.")
    if reason := _unusable_reason(invitation):
        raise InvitationUnusableError(reason)
    return invitation


def invitation_open_for(email: str) -> Invitation | None:
    """The open (not accepted, revoked or expired) invitation for `email`, if there is one."""
    return Invitation.objects.filter(
        open_email=email_normalize(email), expires_at__gt=timezone.now()
    ).first()


def invitation_create(
    *, email: str, role: str, invited_by: User, request: HttpRequest | None
) -> tuple[Invitation, str]:
    """Invite `email` with `role` and email them the link, which is returned too.

    Raises ConflictError (field "email") when the email has an account or an open invitation,
    and InvitationEmailError, carrying the invitation and link, when the email could not be sent.
    """
    email = email_normalize(email)
    try:
        role = Role(role)
    except ValueError as exc:
        raise InvalidInputError(f"Unknown role {role!r}.", field="role") from exc
    now = timezone.now()
    with transaction.atomic():
        existing = User.objects.filter(email__iexact=email).first()
        if existing is not None and existing.is_active:
            raise ConflictError(f"{email} already has an account.", field="email")
        if existing is not None:
            raise ConflictError(
                f"{email} has a deactivated account: reactivate it under People instead.",
                field="email",
            )
        # An expired invitation no longer holds the email, so it can be invited afresh.
        Invitation.objects.filter(open_email=email, expires_at__lte=now).update(open_email=None)
        try:
            # A savepoint: the unique open_email decides between two admins inviting at once.
            with transaction.atomic():
                invitation = Invitation.objects.create(
                    email=email,
                    open_email=email,
                    role=role,
                    invited_by=invited_by,
                    created_at=now,
                    expires_at=now + invitation_lifetime(),
                )
        except IntegrityError as exc:
            raise ConflictError(
                f"{email} already has an open invitation. Revoke it to send a new one.",
                field="email",
            ) from exc
        audit_record(
            action=AuditEvent.Action.INVITATION_SENT,
            actor=invited_by,
            target=email,
            details={"role": role.value, "invitation": invitation.pk},
            request=request,
        )
    link = invitation_link(invitation=invitation, request=request)
    invitation_email_send(invitation=invitation, link=link, invited_by=invited_by)
    return invitation, link


def invitation_email_send(*, invitation: Invitation, link: str, invited_by: User) -> None:
    days = settings.MINICRM_INVITATION_DAYS
    body = (
        f"{invited_by.display_name} ({invited_by.email}) invited you to Mini CRM "
        f"as {invitation.get_role_display().lower()}.\n\n"
        f"Open this link to set up your account (it works for {days} days, once):\n{link}\n\n"
        "If you did not expect this invitation, ignore this email.\n"
    )
    try:
        send_mail(
            "You are invited to Mini CRM",
            body,
            None,  # DEFAULT_FROM_EMAIL
            [invitation.email],
            fail_silently=False,
        )
    except OSError as exc:  # smtplib.SMTPException is an OSError, as are refused connections
        logger.warning("Invitation email to %s failed: %s", invitation.email, exc)
        raise InvitationEmailError(
            f"The invitation was created but the email could not be sent ({exc}). "
            "Copy the link below and send it yourself.",
            invitation=invitation,
            link=link,
        ) from exc


@transaction.atomic
def invitation_revoke(
    *, invitation_id: int, actor: User, request: HttpRequest | None = None
) -> Invitation:
    """Withdraw an invitation so its link stops working. Revoking twice changes nothing."""
    invitation = Invitation.objects.select_for_update().filter(pk=invitation_id).first()
    if invitation is None:
        raise NotFoundError("No such invitation.")
    if invitation.accepted_at is not None:
        raise ConflictError("This invitation was already accepted.")
    if invitation.revoked_at is None:
        invitation.revoked_at = timezone.now()
        invitation.open_email = None
        invitation.save(update_fields=["revoked_at", "open_email"])
        audit_record(
            action=AuditEvent.Action.INVITATION_REVOKED,
            actor=actor,
            target=invitation.email,
            details={"role": invitation.role, "invitation": invitation.pk},
            request=request,
        )
    return invitation


@transaction.atomic
def invitation_accept(
    *, invitation: Invitation, user: User, request: HttpRequest | None = None
) -> None:
    """Mark `invitation` accepted by `user` (whose email it names) and give them its role.

    Raises InvitationUnusableError when it is no longer open (accepted, revoked or expired in
    the meantime) and ConflictError when the user's email is not the invited one.
    """
    locked = Invitation.objects.select_for_update().get(pk=invitation.pk)
    if reason := _unusable_reason(locked):
        raise InvitationUnusableError(reason)
    if email_normalize(user.email) != locked.email:
        raise ConflictError("This invitation is for another email address.")
    if not user.is_active:
        raise ConflictError("This account is deactivated.")
    user.role = locked.role
    # Django's own flags follow the role, so has_perm() never outranks it.
    user.is_staff = user.is_superuser = locked.role == Role.ADMIN
    user.save(update_fields=["role", "is_staff", "is_superuser"])
    locked.accepted_at = timezone.now()
    locked.accepted_by = user
    locked.open_email = None
    locked.save(update_fields=["accepted_at", "accepted_by", "open_email"])
    invitation.accepted_at, invitation.accepted_by, invitation.open_email = (
        locked.accepted_at,
        user,
        None,
    )
    audit_record(
        action=AuditEvent.Action.INVITATION_ACCEPTED,
        actor=user,
        target=locked.email,
        details={"role": locked.role, "invitation": locked.pk},
        request=request,
    )


@transaction.atomic
def invitation_accept_with_password(
    *, invitation: Invitation, full_name: str, password: str, request: HttpRequest | None = None
) -> User:
    """Create the invited person's account with a password and accept the invitation."""
    taken = "An account with this email already exists. Sign in instead."
    if User.objects.filter(email__iexact=invitation.email).exists():
        raise ConflictError(taken)
    try:
        # A savepoint: the unique email decides between two tabs accepting at the same moment.
        with transaction.atomic():
            user = User.objects.create_user(
                email=invitation.email, password=password, full_name=full_name.strip()
            )
    except IntegrityError as exc:
        raise ConflictError(taken) from exc
    invitation_accept(invitation=invitation, user=user, request=request)
    return user
