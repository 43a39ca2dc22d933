"""People in Settings: role changes, deactivation ending tokens and sessions, the last admin,
and every one of these routes closed to marketers and viewers."""

import pytest
from django.contrib.sessions.models import Session
from django.test import Client
from django.urls import reverse

from minicrm.accounts.models import ApiToken, AuditEvent, Invitation, Role, User
from minicrm.accounts.services import api_token_create
from minicrm.accounts.users import user_deactivate, user_role_change
from minicrm.core.errors import ConflictError
from tests.factories import DEFAULT_PASSWORD, AdminFactory, UserFactory


def _signed_in(user: User) -> Client:
    """A client signed in through the form, so its session is a real stored one."""
    client = Client()
    assert client.login(username=user.email, password=DEFAULT_PASSWORD)
    return client


def test_an_admin_changes_a_role(admin_client: Client, admin: User, marketer: User) -> None:
    response = admin_client.post(
        reverse("accounts:user_role", args=[marketer.pk]), {"role": "viewer"}
    )

    assert response.status_code == 302
    marketer.refresh_from_db()
    assert marketer.role == Role.VIEWER
    event = AuditEvent.objects.get(action=AuditEvent.Action.ROLE_CHANGED)
    assert (event.actor, event.target, event.details) == (
        admin,
        marketer.email,
        {"from": "marketer", "to": "viewer"},
    )


def test_promotion_to_admin_and_back_keeps_djangos_flags_in_step(
    admin: User, marketer: User
) -> None:
    user_role_change(user_id=marketer.pk, role="admin", actor=admin)
    marketer.refresh_from_db()
    assert (marketer.is_staff, marketer.is_superuser) == (True, True)

    user_role_change(user_id=marketer.pk, role="marketer", actor=admin)
    marketer.refresh_from_db()
    assert (marketer.is_staff, marketer.is_superuser) == (False, False)


def test_an_unknown_role_is_a_400(admin_client: Client, marketer: User) -> None:
    response = admin_client.post(
        reverse("accounts:user_role", args=[marketer.pk]), {"role": "owner"}
    )

    assert response.status_code == 400
    assert "Choose a role." in response.content.decode()
    marketer.refresh_from_db()
    assert marketer.role == Role.MARKETER


def test_an_unknown_user_is_a_404(admin_client: Client) -> None:
    response = admin_client.post(reverse("accounts:user_deactivate", args=[98765]))

    assert response.status_code == 404


def test_the_last_active_admin_cannot_demote_themselves(admin_client: Client, admin: User) -> None:
    response = admin_client.post(reverse("accounts:user_role", args=[admin.pk]), {"role": "viewer"})

    assert response.status_code == 409
    assert "last active admin" in response.content.decode()
    admin.refresh_from_db()
    assert admin.role == Role.ADMIN
    assert not AuditEvent.objects.filter(action=AuditEvent.Action.ROLE_CHANGED).exists()


def test_the_last_active_admin_cannot_deactivate_themselves(
    admin_client: Client, admin: User
) -> None:
    response = admin_client.post(reverse("accounts:user_deactivate", args=[admin.pk]))

    assert response.status_code == 409
    assert "last active admin" in response.content.decode()
    admin.refresh_from_db()
    assert admin.is_active


def test_a_deactivated_admin_does_not_count_as_another_admin(admin: User) -> None:
    other = AdminFactory()
    user_deactivate(user_id=other.pk, actor=admin)

    with pytest.raises(ConflictError):
        user_role_change(user_id=admin.pk, role="marketer", actor=admin)


def test_with_a_second_admin_an_admin_may_step_down(admin_client: Client, admin: User) -> None:
    AdminFactory()

    response = admin_client.post(
        reverse("accounts:user_role", args=[admin.pk]), {"role": "marketer"}
    )

    assert response.status_code == 302
    admin.refresh_from_db()
    assert admin.role == Role.MARKETER
    # No longer an admin, the settings routes refuse them.
    again = admin_client.post(reverse("accounts:user_role", args=[admin.pk]), {"role": "admin"})
    assert again.status_code == 403


def test_deactivating_revokes_tokens_and_ends_sessions(admin_client: Client, admin: User) -> None:
    person = UserFactory()
    other = UserFactory()
    _token, raw = api_token_create(user=person, name="sync")
    api_token_create(user=other, name="unrelated")
    session = _signed_in(person)
    other_session = _signed_in(other)
    assert session.get(reverse("segments:list")).status_code == 200
    assert Session.objects.count() == 3  # the admin's, the person's and the other's

    response = admin_client.post(reverse("accounts:user_deactivate", args=[person.pk]))

    assert response.status_code == 302
    person.refresh_from_db()
    assert not person.is_active
    assert not ApiToken.objects.filter(user=person, revoked_at__isnull=True).exists()
    assert ApiToken.objects.get(user=other).revoked_at is None
    assert Session.objects.count() == 2
    # The old session is gone: the next request is sent to the sign-in page.
    answer = session.get(reverse("segments:list"))
    assert answer.status_code == 302
    assert answer["Location"].startswith(reverse("accounts:login"))
    assert Client(headers={"Authorization": f"Bearer {raw}"}).get("/api/v1/me").status_code == 401
    assert other_session.get(reverse("segments:list")).status_code == 200
    event = AuditEvent.objects.get(action=AuditEvent.Action.USER_DEACTIVATED)
    assert event.details == {"tokens_revoked": 1, "sessions_ended": 1}


def test_a_deactivated_users_session_is_refused_even_if_not_deleted(
    admin: User, marketer: User
) -> None:
    # Whatever the session backend, Django's ModelBackend refuses an inactive user.
    client = Client()
    client.force_login(marketer)
    User.objects.filter(pk=marketer.pk).update(is_active=False)

    assert client.get(reverse("segments:list")).status_code == 302


def test_a_deactivated_user_cannot_sign_in_and_reactivation_lets_them(
    admin_client: Client, marketer: User
) -> None:
    admin_client.post(reverse("accounts:user_deactivate", args=[marketer.pk]))
    assert not Client().login(username=marketer.email, password=DEFAULT_PASSWORD)

    response = admin_client.post(reverse("accounts:user_reactivate", args=[marketer.pk]))

    assert response.status_code == 302
    marketer.refresh_from_db()
    assert marketer.is_active
    assert Client().login(username=marketer.email, password=DEFAULT_PASSWORD)
    assert AuditEvent.objects.filter(action=AuditEvent.Action.USER_REACTIVATED).count() == 1


def test_inviting_a_deactivated_users_email_points_to_reactivation(
    admin_client: Client, marketer: User
) -> None:
    User.objects.filter(pk=marketer.pk).update(is_active=False)

    response = admin_client.post(
        reverse("accounts:invitation_create"),
        {"invite-email": marketer.email, "invite-role": "viewer"},
    )

    assert response.status_code == 409
    assert "reactivate" in response.content.decode()


def test_the_settings_page_shows_people_and_invitations_to_admins(
    admin_client: Client, marketer: User
) -> None:
    page = admin_client.get(reverse("accounts:settings")).content.decode()

    assert 'data-testid="people"' in page
    assert marketer.email in page
    assert reverse("accounts:user_deactivate", args=[marketer.pk]) in page


@pytest.mark.parametrize("role", [Role.MARKETER, Role.VIEWER])
def test_the_settings_page_promises_non_admins_only_what_they_get(db: None, role: Role) -> None:
    page = _signed_in(UserFactory(role=role)).get(reverse("accounts:settings")).content.decode()

    assert "Your API tokens and the AI provider." in page
    assert "people" not in page.lower().split("<main", 1)[-1]
    assert "audit log" not in page.lower().split("<main", 1)[-1]


@pytest.mark.parametrize("role", [Role.MARKETER, Role.VIEWER])
def test_people_routes_are_403_for_non_admins(role: Role, admin: User) -> None:
    person = UserFactory(role=role)
    target = UserFactory(role=Role.VIEWER)
    invitation = Invitation.objects.create(
        email="x@example.com", open_email="x@example.com", expires_at=admin.date_joined
    )
    client = Client()
    client.force_login(person)
    posts = [
        (reverse("accounts:invitation_create"), {"invite-email": "y@example.com"}),
        (reverse("accounts:invitation_revoke", args=[invitation.pk]), {}),
        (reverse("accounts:user_role", args=[target.pk]), {"role": "admin"}),
        (reverse("accounts:user_role", args=[person.pk]), {"role": "admin"}),
        (reverse("accounts:user_deactivate", args=[admin.pk]), {}),
        (reverse("accounts:user_reactivate", args=[target.pk]), {}),
    ]

    for url, data in posts:
        assert client.post(url, data).status_code == 403, url
        assert client.get(url).status_code == 403, url

    page = client.get(reverse("accounts:settings")).content.decode()
    assert 'data-testid="people"' not in page
    assert reverse("accounts:invitation_create") not in page
    person.refresh_from_db()
    target.refresh_from_db()
    admin.refresh_from_db()
    assert (person.role, target.role, admin.is_active) == (role, Role.VIEWER, True)
    assert Invitation.objects.get().revoked_at is None
    assert Invitation.objects.count() == 1


def test_people_routes_send_anonymous_visitors_to_sign_in(client: Client, marketer: User) -> None:
    response = client.post(reverse("accounts:user_deactivate", args=[marketer.pk]))

    assert response.status_code == 302
    assert response["Location"].startswith(reverse("accounts:login"))
    marketer.refresh_from_db()
    assert marketer.is_active


def test_writes_need_the_csrf_token(admin: User, marketer: User) -> None:
    client = Client(enforce_csrf_checks=True)
    client.force_login(admin)

    response = client.post(reverse("accounts:user_deactivate", args=[marketer.pk]))

    assert response.status_code == 403
    marketer.refresh_from_db()
    assert marketer.is_active


def test_an_admin_who_deactivates_themselves_is_signed_out(admin: User) -> None:
    AdminFactory()
    client = _signed_in(admin)

    response = client.post(reverse("accounts:user_deactivate", args=[admin.pk]))

    assert response.status_code == 302
    assert response["Location"] == reverse("accounts:login")
    admin.refresh_from_db()
    assert not admin.is_active
    assert client.get(reverse("accounts:settings")).status_code == 302


def test_a_revoked_invitation_leaves_the_settings_list(admin_client: Client, admin: User) -> None:
    Invitation.objects.create(
        email="gone@example.com", open_email="gone@example.com", expires_at=admin.date_joined
    )
    invitation = Invitation.objects.get()
    revoke = reverse("accounts:invitation_revoke", args=[invitation.pk])
    assert revoke in admin_client.get(reverse("accounts:settings")).content.decode()

    admin_client.post(revoke)

    # (The audit log on the page still names the email: the revocation is recorded.)
    assert revoke not in admin_client.get(reverse("accounts:settings")).content.decode()
