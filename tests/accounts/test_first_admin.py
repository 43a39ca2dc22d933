import pytest
from django.core.management import call_command
from django.test import Client
from django.urls import reverse

from minicrm.accounts.models import Role, User


@pytest.mark.django_db
def test_sign_in_becomes_first_admin_setup_when_no_admin_exists(client: Client) -> None:
    response = client.get(reverse("accounts:login"))

    assert response.status_code == 302
    assert response["Location"] == reverse("accounts:first_admin")


@pytest.mark.django_db
def test_first_admin_is_created_and_signed_in(client: Client) -> None:
    response = client.post(
        reverse("accounts:first_admin"),
        {
            "full_name": "Asha Rao",
            "email": "Asha@Example.com",
            "password": "a-long-unusual-passphrase",
            "password_confirm": "a-long-unusual-passphrase",
        },
    )

    assert response.status_code == 302
    user = User.objects.get()
    assert (user.email, user.role, user.is_superuser) == ("asha@example.com", Role.ADMIN, True)
    assert client.get(reverse("web:dashboard")).status_code == 200


@pytest.mark.django_db
def test_first_admin_form_reports_a_weak_password(client: Client) -> None:
    response = client.post(
        reverse("accounts:first_admin"),
        {"email": "a@example.com", "password": "short", "password_confirm": "short"},
    )

    assert response.status_code == 200
    assert "too short" in response.content.decode()
    assert not User.objects.exists()


def test_first_admin_flow_is_closed_once_an_admin_exists(client: Client, admin: User) -> None:
    get = client.get(reverse("accounts:first_admin"))
    post = client.post(
        reverse("accounts:first_admin"),
        {
            "email": "intruder@example.com",
            "password": "a-long-unusual-passphrase",
            "password_confirm": "a-long-unusual-passphrase",
        },
    )

    assert get.status_code == 404
    assert post.status_code == 404
    assert list(User.objects.values_list("email", flat=True)) == [admin.email]


@pytest.mark.django_db
def test_createsuperuser_noinput_reads_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DJANGO_SUPERUSER_EMAIL", "ops@example.com")
    monkeypatch.setenv("DJANGO_SUPERUSER_PASSWORD", "a-long-unusual-passphrase")

    call_command("createsuperuser", "--noinput")

    user = User.objects.get()
    assert user.email == "ops@example.com"
    assert user.role == Role.ADMIN
    assert user.check_password("a-long-unusual-passphrase")
