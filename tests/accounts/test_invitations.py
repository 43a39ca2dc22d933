"""Invitations: created by admins, sent by email, accepted once through a signed, expiring link."""

import re
import time
from datetime import timedelta
from typing import Any
from unittest import mock

import pytest
from django.core import mail, signing
from django.db import IntegrityError, transaction
from django.test import Client, override_settings
from django.urls import NoReverseMatch, reverse
from django.utils import timezone

from minicrm.accounts.invitations import (
    InvitationEmailError,
    InvitationUnusableError,
    invitation_accept,
    invitation_accept_with_password,
    invitation_create,
    invitation_from_token,
    invitation_open_for,
    invitation_revoke,
    invitation_token,
)
from minicrm.accounts.models import AuditEvent, Invitation, Role, User
from minicrm.core.errors import ConflictError, NotFoundError
from tests.factories import UserFactory

PASSWORD = "a-long-unusual-passphrase"
LINK = re.compile(r"https?://\S+/invitations/\S+/")


def _invite(admin: User, email: str = "new@example.com", role: str = Role.MARKETER) -> str:
    _invitation, link = invitation_create(email=email, role=role, invited_by=admin, request=None)
    return link


def _path(link: str) -> str:
    return "/" + link.split("/", 3)[3]


@override_settings(MINICRM_PUBLIC_URL="https://crm.example.com")
def test_an_admin_invites_from_settings_and_the_email_carries_the_link(
    admin_client: Client, admin: User
) -> None:
    response = admin_client.post(
        reverse("accounts:invitation_create"),
        {"invite-email": " New.Person@Example.com ", "invite-role": "marketer"},
    )

    assert response.status_code == 302
    invitation = Invitation.objects.get()
    assert (invitation.email, invitation.role, invitation.invited_by) == (
        "new.person@example.com",
        Role.MARKETER,
        admin,
    )
    assert invitation.expires_at - invitation.created_at == timedelta(days=7)
    assert len(mail.outbox) == 1
    message = mail.outbox[0]
    assert message.to == ["new.person@example.com"]
    link = LINK.search(message.body).group(0)  # type: ignore[union-attr]
    assert link.startswith("https://crm.example.com/invitations/")
    event = AuditEvent.objects.get(action=AuditEvent.Action.INVITATION_SENT)
    assert (event.actor, event.target, event.details["role"]) == (
        admin,
        "new.person@example.com",
        "marketer",
    )
    # The settings page then lists it, with the link once for passing on by hand.
    page = admin_client.get(reverse("accounts:settings")).content.decode()
    assert "new.person@example.com" in page
    assert link in page
    assert link not in admin_client.get(reverse("accounts:settings")).content.decode()


@override_settings(MINICRM_PUBLIC_URL="")
def test_without_a_public_url_the_link_uses_the_request_host(admin_client: Client) -> None:
    admin_client.post(
        reverse("accounts:invitation_create"),
        {"invite-email": "new@example.com", "invite-role": "viewer"},
        HTTP_HOST="crm.internal:8000",
    )

    assert "http://crm.internal:8000/invitations/" in mail.outbox[0].body


def test_the_invitee_sets_a_password_and_is_signed_in(client: Client, admin: User) -> None:
    link = _invite(admin)

    page = client.get(_path(link))
    assert page.status_code == 200
    assert "new@example.com" in page.content.decode()
    assert "marketer" in page.content.decode()

    response = client.post(
        _path(link),
        {"full_name": "Nia Patel", "password": PASSWORD, "password_confirm": PASSWORD},
    )

    assert response.status_code == 302
    user = User.objects.get(email="new@example.com")
    assert (user.role, user.full_name, user.is_active) == (Role.MARKETER, "Nia Patel", True)
    assert user.check_password(PASSWORD)
    assert client.get(reverse("segments:list")).status_code == 200
    invitation = Invitation.objects.get()
    assert invitation.status == "accepted"
    assert invitation.accepted_by == user
    assert invitation_open_for("new@example.com") is None
    assert AuditEvent.objects.filter(
        action=AuditEvent.Action.INVITATION_ACCEPTED, actor=user
    ).exists()


def test_a_weak_password_is_a_form_error_and_nothing_is_created(
    client: Client, admin: User
) -> None:
    link = _invite(admin)

    response = client.post(
        _path(link), {"full_name": "", "password": "short", "password_confirm": "short"}
    )

    assert response.status_code == 400
    assert "too short" in response.content.decode()
    assert not User.objects.filter(email="new@example.com").exists()
    assert Invitation.objects.get().status == "open"


def test_a_used_link_is_refused_the_second_time(client: Client, admin: User) -> None:
    link = _invite(admin)
    form = {"full_name": "", "password": PASSWORD, "password_confirm": PASSWORD}
    client.post(_path(link), form)

    again = Client().post(_path(link), form)

    assert again.status_code == 410
    assert "already been used" in again.content.decode()
    assert User.objects.filter(email="new@example.com").count() == 1


def test_a_tampered_link_is_a_404_page(client: Client, admin: User) -> None:
    link = _invite(admin)
    path = _path(link)
    tampered = path[:-3] + ("A" if path[-3] != "A" else "B") + path[-2:]

    response = client.get(tampered)

    assert response.status_code == 404
    assert "not valid" in response.content.decode()


def test_a_token_for_another_invitation_id_is_refused(admin: User) -> None:
    # A validly signed payload that names a missing invitation (as a leaked key would allow).
    token = signing.dumps({"i": 999, "e": "x@example.com"}, salt="minicrm.accounts.invitation")

    with pytest.raises(NotFoundError):
        invitation_from_token(token)


def test_an_expired_link_is_a_410_page(client: Client, admin: User) -> None:
    link = _invite(admin)
    later = time.time() + 8 * 24 * 3600

    # The signature's own clock: the token is eight days old.
    with mock.patch("django.core.signing.time.time", return_value=later):
        response = client.get(_path(link))

    assert response.status_code == 410
    assert "expired" in response.content.decode()


def test_an_invitation_past_its_expiry_date_is_refused_even_with_a_fresh_signature(
    client: Client, admin: User
) -> None:
    link = _invite(admin)
    invitation = Invitation.objects.get()
    Invitation.objects.filter(pk=invitation.pk).update(expires_at=timezone.now())

    response = client.get(_path(link))

    assert response.status_code == 410
    assert invitation_open_for("new@example.com") is None
    with pytest.raises(InvitationUnusableError):
        invitation_from_token(invitation_token(invitation))


@override_settings(MINICRM_INVITATION_DAYS=2)
def test_the_lifetime_follows_the_setting(client: Client, admin: User) -> None:
    link = _invite(admin)
    later = time.time() + 3 * 24 * 3600

    with mock.patch("django.core.signing.time.time", return_value=later):
        response = client.get(_path(link))

    assert response.status_code == 410
    invitation = Invitation.objects.get()
    assert invitation.expires_at - invitation.created_at == timedelta(days=2)


def test_a_revoked_link_is_a_410_page(admin_client: Client, admin: User) -> None:
    link = _invite(admin)
    invitation = Invitation.objects.get()

    response = admin_client.post(reverse("accounts:invitation_revoke", args=[invitation.pk]))

    assert response.status_code == 302
    page = Client().get(_path(link))
    assert page.status_code == 410
    assert "withdrawn" in page.content.decode()
    assert AuditEvent.objects.filter(action=AuditEvent.Action.INVITATION_REVOKED).count() == 1
    # Revoked, the email may be invited again.
    assert _invite(admin)


def test_a_second_open_invitation_for_the_same_email_is_a_form_error(
    admin_client: Client, admin: User
) -> None:
    _invite(admin, email="twice@example.com")

    response = admin_client.post(
        reverse("accounts:invitation_create"),
        {"invite-email": "Twice@example.com", "invite-role": "viewer"},
    )

    assert response.status_code == 409
    assert "already has an open invitation" in response.content.decode()
    assert Invitation.objects.count() == 1
    assert len(mail.outbox) == 1


def test_the_database_allows_one_open_invitation_per_email(admin: User) -> None:
    _invite(admin, email="race@example.com")
    now = timezone.now()

    with pytest.raises(IntegrityError), transaction.atomic():
        Invitation.objects.create(
            email="race@example.com",
            open_email="race@example.com",
            role=Role.VIEWER,
            expires_at=now + timedelta(days=1),
        )


def test_an_expired_invitation_does_not_block_a_new_one(admin: User) -> None:
    _invite(admin, email="again@example.com")
    Invitation.objects.update(expires_at=timezone.now() - timedelta(seconds=1))

    _invite(admin, email="again@example.com")

    assert Invitation.objects.count() == 2
    assert invitation_open_for("AGAIN@example.com") == Invitation.objects.order_by("pk").last()


def test_inviting_an_email_with_an_active_account_is_a_form_error(
    admin_client: Client, marketer: User
) -> None:
    response = admin_client.post(
        reverse("accounts:invitation_create"),
        {"invite-email": marketer.email.upper(), "invite-role": "admin"},
    )

    assert response.status_code == 409
    assert "already has an account" in response.content.decode()
    assert not Invitation.objects.exists()
    assert mail.outbox == []


def test_a_bad_email_or_role_is_a_400_naming_the_field(admin_client: Client) -> None:
    response = admin_client.post(
        reverse("accounts:invitation_create"),
        {"invite-email": "not-an-email", "invite-role": "owner"},
    )

    assert response.status_code == 400
    body = response.content.decode()
    assert "Enter a valid email address." in body
    assert not Invitation.objects.exists()


@override_settings(EMAIL_BACKEND="django.core.mail.backends.smtp.EmailBackend")
def test_an_email_that_cannot_be_sent_leaves_the_link_for_the_admin(
    admin_client: Client,
) -> None:
    with mock.patch(
        "django.core.mail.backends.smtp.EmailBackend.open",
        side_effect=ConnectionRefusedError("connection refused"),
    ):
        response = admin_client.post(
            reverse("accounts:invitation_create"),
            {"invite-email": "new@example.com", "invite-role": "viewer"},
            follow=True,
        )

    assert response.status_code == 200
    body = response.content.decode()
    assert "could not be sent" in body
    assert "/invitations/" in body
    assert Invitation.objects.get().status == "open"


def test_the_service_raises_with_the_link_when_the_email_fails(admin: User) -> None:
    with (
        mock.patch("minicrm.accounts.invitations.send_mail", side_effect=OSError("down")),
        pytest.raises(InvitationEmailError) as caught,
    ):
        invitation_create(email="a@example.com", role="viewer", invited_by=admin, request=None)

    assert caught.value.invitation.email == "a@example.com"
    assert "/invitations/" in caught.value.link


def test_accept_gives_an_existing_user_the_invited_role(admin: User) -> None:
    # The OIDC sign-in creates the user, then accepts the invitation for them.
    _invite(admin, email="oidc@example.com", role=Role.ADMIN)
    invitation = invitation_open_for("oidc@example.com")
    assert invitation is not None
    user = UserFactory(email="oidc@example.com", role=Role.VIEWER)

    invitation_accept(invitation=invitation, user=user, request=None)

    user.refresh_from_db()
    assert (user.role, user.is_superuser) == (Role.ADMIN, True)
    assert invitation.accepted_by == user
    with pytest.raises(InvitationUnusableError):
        invitation_accept(invitation=invitation, user=user, request=None)


def test_accept_refuses_a_user_with_another_email(admin: User) -> None:
    _invite(admin, email="right@example.com")
    invitation = Invitation.objects.get()

    with pytest.raises(ConflictError):
        invitation_accept(invitation=invitation, user=UserFactory(), request=None)

    assert Invitation.objects.get().status == "open"


def test_revoking_an_accepted_invitation_is_refused(admin: User) -> None:
    _invite(admin, email="done@example.com")
    invitation = Invitation.objects.get()
    invitation_accept(
        invitation=invitation, user=UserFactory(email="done@example.com"), request=None
    )

    with pytest.raises(ConflictError):
        invitation_revoke(invitation_id=invitation.pk, actor=admin)


def test_the_database_keeps_open_email_equal_to_the_email(admin: User) -> None:
    with pytest.raises(IntegrityError), transaction.atomic():
        Invitation.objects.create(
            email="a@example.com",
            open_email="b@example.com",
            expires_at=timezone.now() + timedelta(days=1),
        )


@override_settings(
    OIDC_CLIENT_ID="client-id", OIDC_PROVIDER_ID="google", OIDC_PROVIDER_NAME="Google"
)
def test_the_accept_page_offers_the_oidc_sign_in_when_configured(
    client: Client, admin: User
) -> None:
    try:
        oidc_path = reverse("openid_connect_login", kwargs={"provider_id": "google"})
    except NoReverseMatch:
        pytest.skip("the OIDC sign-in URLs are not installed")
    link = _invite(admin)

    page = client.get(_path(link)).content.decode()

    assert f'<form method="post" action="{oidc_path}"' in page  # straight to the provider
    assert "Sign in with Google" in page


def test_the_accept_page_has_no_oidc_sign_in_without_a_client_id(
    client: Client, admin: User, settings: Any
) -> None:
    settings.OIDC_CLIENT_ID = ""
    link = _invite(admin)

    page = client.get(_path(link)).content.decode()

    assert "Sign in with" not in page


def test_an_account_created_meanwhile_makes_accepting_a_409_not_a_500(
    client: Client, admin: User
) -> None:
    link = _invite(admin)
    # The account appears after the page checked for it (a second tab, the OIDC sign-in).
    UserFactory(email="new@example.com")

    response = client.post(
        _path(link), {"full_name": "", "password": PASSWORD, "password_confirm": PASSWORD}
    )

    assert response.status_code == 409
    assert "already exists" in response.content.decode()
    assert Invitation.objects.get().status == "open"


def test_a_unique_email_race_at_accept_is_a_conflict(admin: User) -> None:
    _invite(admin)
    invitation = Invitation.objects.get()
    UserFactory(email="new@example.com")

    # As if the check ran before the other tab's commit: only the unique index is left.
    with (
        mock.patch("django.db.models.query.QuerySet.exists", return_value=False),
        pytest.raises(ConflictError),
    ):
        invitation_accept_with_password(
            invitation=invitation, full_name="", password=PASSWORD, request=None
        )

    assert User.objects.filter(email="new@example.com").count() == 1
