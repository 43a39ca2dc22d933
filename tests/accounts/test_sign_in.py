from django.test import Client
from django.urls import reverse

from minicrm.accounts.models import AuditEvent, User
from tests.factories import DEFAULT_PASSWORD


def test_page_without_session_redirects_to_sign_in(client: Client, admin: User) -> None:
    response = client.get(reverse("web:dashboard"))

    assert response.status_code == 302
    assert response["Location"] == f"{reverse('accounts:login')}?next=/"


def test_sign_in_then_dashboard_then_sign_out(client: Client, admin: User) -> None:
    response = client.post(
        reverse("accounts:login"), {"email": admin.email.upper(), "password": DEFAULT_PASSWORD}
    )
    assert response.status_code == 302
    assert response["Location"] == reverse("web:dashboard")
    assert client.get(reverse("web:dashboard")).status_code == 200

    response = client.post(reverse("accounts:logout"))

    assert response.status_code == 302
    assert client.get(reverse("web:dashboard")).status_code == 302
    actions = list(AuditEvent.objects.order_by("created_at", "id").values_list("action", flat=True))
    assert actions == ["sign_in", "sign_out"]


def test_bad_password_is_rejected_without_saying_whether_the_email_exists(
    client: Client, admin: User
) -> None:
    wrong_password = client.post(
        reverse("accounts:login"), {"email": admin.email, "password": "not-the-password"}
    )
    unknown_email = client.post(
        reverse("accounts:login"), {"email": "nobody@example.com", "password": "whatever-123"}
    )

    assert wrong_password.status_code == 200
    assert "_auth_user_id" not in client.session
    message = "That email and password do not match an account."
    assert message in wrong_password.content.decode()
    assert message in unknown_email.content.decode()
    assert AuditEvent.objects.filter(action="sign_in_failed").count() == 2


def test_repeated_failures_throttle_even_the_right_password(
    client: Client, admin: User, settings: object
) -> None:
    for _ in range(5):
        client.post(reverse("accounts:login"), {"email": admin.email, "password": "wrong-guess-1"})

    response = client.post(
        reverse("accounts:login"), {"email": admin.email, "password": DEFAULT_PASSWORD}
    )

    assert response.status_code == 429
    assert response["Retry-After"] == "900"
    assert "Too many failed attempts" in response.content.decode()
    assert "_auth_user_id" not in client.session


def test_sign_in_ignores_an_offsite_next_url(client: Client, admin: User) -> None:
    response = client.post(
        reverse("accounts:login") + "?next=https://evil.example/",
        {"email": admin.email, "password": DEFAULT_PASSWORD, "next": "https://evil.example/"},
    )

    assert response["Location"] == reverse("web:dashboard")


def test_inactive_user_cannot_sign_in(client: Client, admin: User, marketer: User) -> None:
    marketer.is_active = False
    marketer.save()

    client.post(reverse("accounts:login"), {"email": marketer.email, "password": DEFAULT_PASSWORD})

    assert "_auth_user_id" not in client.session


def test_sign_out_needs_post(admin_client: Client) -> None:
    assert admin_client.get(reverse("accounts:logout")).status_code == 405
