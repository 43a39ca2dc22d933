import hashlib
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.test import Client
from django.urls import reverse

from minicrm.accounts.models import ApiToken, User
from minicrm.accounts.services import api_token_create, api_token_revoke
from minicrm.campaigns.models import Campaign


def test_api_without_a_token_is_401(client: Client, marketer: User) -> None:
    response = client.get("/api/v1/me")

    assert response.status_code == 401
    assert "detail" in response.json()


def test_api_with_a_valid_token_is_200(api_client: Client, marketer: User) -> None:
    response = api_client.get("/api/v1/me")

    assert response.status_code == 200
    assert response.json() == {
        "id": marketer.id,
        "email": marketer.email,
        "full_name": marketer.full_name,
        "role": "marketer",
    }
    assert ApiToken.objects.get().last_used_at is not None


def test_api_with_a_revoked_token_is_401(marketer: User) -> None:
    token, raw = api_token_create(user=marketer, name="soon revoked")
    api_token_revoke(token_id=token.id, actor=marketer)

    response = Client(headers={"Authorization": f"Bearer {raw}"}).get("/api/v1/me")

    assert response.status_code == 401


def test_api_with_an_unknown_token_is_401(marketer: User) -> None:
    response = Client(headers={"Authorization": "Bearer mcrm_not-a-real-token"}).get("/api/v1/me")

    assert response.status_code == 401


def test_token_of_an_inactive_user_is_401(marketer: User, api_token: str) -> None:
    marketer.is_active = False
    marketer.save()

    response = Client(headers={"Authorization": f"Bearer {api_token}"}).get("/api/v1/me")

    assert response.status_code == 401


def test_tokens_are_stored_hashed_never_in_plain_text(marketer: User) -> None:
    token, raw = api_token_create(user=marketer, name="ingest")

    stored = ApiToken.objects.filter(pk=token.pk).values().get()
    assert raw not in [str(value) for value in stored.values()]
    assert stored["digest"] == hashlib.sha256(raw.encode()).hexdigest()
    assert raw.startswith(stored["prefix"])
    assert len(stored["prefix"]) < len(raw) // 3


def test_session_api_call_needs_csrf_for_unsafe_methods(marketer: User) -> None:
    client = Client(enforce_csrf_checks=True)
    client.force_login(marketer)

    assert client.get("/api/v1/me").status_code == 200
    # An unsafe call with the session but without the CSRF token is refused, and creates nothing.
    refused = client.post("/api/v1/campaigns", data={"name": "x"}, content_type="application/json")
    assert refused.status_code == 403, refused.content
    assert not Campaign.objects.exists()
    # Users sign API calls with a token or the session; vendors sign receipts with the secret.
    schema = client.get("/api/v1/openapi.json").json()
    assert set(schema["components"]["securitySchemes"]) == {
        "BearerTokenAuth",
        "ActiveSessionAuth",
        "VendorSignatureAuth",
    }


def test_token_is_shown_once_in_the_settings_page(client: Client, marketer: User) -> None:
    client.force_login(marketer)

    client.post(reverse("accounts:token_create"), {"name": "Shopify"})
    first = client.get(reverse("accounts:settings")).content.decode()
    second = client.get(reverse("accounts:settings")).content.decode()

    token = ApiToken.objects.get()
    assert token.name == "Shopify"
    assert first.count("mcrm_") >= 1
    assert 'data-testid="new-token"' in first
    assert 'data-testid="new-token"' not in second


def test_a_user_cannot_revoke_someone_elses_token(
    client: Client, marketer: User, admin: User
) -> None:
    token, _raw = api_token_create(user=admin, name="admin's")
    client.force_login(marketer)

    response = client.post(reverse("accounts:token_revoke", args=[token.id]))

    assert response.status_code == 404
    token.refresh_from_db()
    assert token.revoked_at is None


def test_create_api_token_command_prints_only_the_token(marketer: User) -> None:
    out = StringIO()

    call_command("create_api_token", marketer.email.upper(), stdout=out)

    raw = out.getvalue().strip()
    assert raw.startswith("mcrm_")
    assert "\n" not in raw
    response = Client(headers={"Authorization": f"Bearer {raw}"}).get("/api/v1/me")
    assert response.json()["email"] == marketer.email


@pytest.mark.django_db
def test_create_api_token_command_rejects_an_unknown_email() -> None:
    with pytest.raises(CommandError, match="No active user"):
        call_command("create_api_token", "ghost@example.com")
