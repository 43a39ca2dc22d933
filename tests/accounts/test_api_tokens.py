import hashlib
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.test import Client
from django.urls import reverse

from minicrm.accounts.models import ApiToken, Role, User
from minicrm.accounts.services import api_token_create, api_token_revoke
from minicrm.campaigns.models import Campaign
from minicrm.segments.models import Segment
from tests.factories import AdminFactory, UserFactory


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


# --- Every role may hold tokens for itself; a token acts with its owner's role ------------------
RULES = {"match": "all", "conditions": [{"field": "total_spend", "operator": "gt", "value": 10}]}


@pytest.mark.django_db
def test_a_viewer_creates_a_token_that_can_only_read(client: Client) -> None:
    viewer = UserFactory(role=Role.VIEWER)
    client.force_login(viewer)

    client.post(reverse("accounts:token_create"), {"name": "reports"})
    raw = client.get(reverse("accounts:settings")).context["new_token"]
    token_client = Client(headers={"Authorization": f"Bearer {raw}"})

    assert ApiToken.objects.get().user == viewer
    assert token_client.get("/api/v1/customers").status_code == 200
    refused = token_client.post(
        "/api/v1/segments", {"name": "x", "rules": RULES}, content_type="application/json"
    )
    assert refused.status_code == 403
    assert refused.json() == {"detail": "This needs the marketer role."}
    assert not Segment.objects.exists()


@pytest.mark.django_db
def test_a_token_follows_its_owners_role_when_it_changes() -> None:
    marketer = UserFactory(role=Role.MARKETER)
    _token, raw = api_token_create(user=marketer, name="ingest")
    token_client = Client(headers={"Authorization": f"Bearer {raw}"})
    body = {"rows": [{"external_id": "C-1"}]}

    assert token_client.post("/api/v1/customers/bulk", body, "application/json").status_code == 200
    User.objects.filter(pk=marketer.pk).update(role=Role.VIEWER)
    assert token_client.post("/api/v1/customers/bulk", body, "application/json").status_code == 403


@pytest.mark.django_db
def test_the_settings_page_lists_every_token_for_an_admin_and_own_tokens_for_others(
    client: Client,
) -> None:
    admin, marketer, viewer = AdminFactory(), UserFactory(), UserFactory(role=Role.VIEWER)
    for user in (admin, marketer, viewer):
        api_token_create(user=user, name=f"{user.role} token")

    listed = {}
    for user in (admin, marketer, viewer):
        client.force_login(user)
        page = client.get(reverse("accounts:settings"))
        listed[user.role] = sorted(token.name for token in page.context["tokens"])

    assert listed == {
        "admin": ["admin token", "marketer token", "viewer token"],
        "marketer": ["marketer token"],
        "viewer": ["viewer token"],
    }


@pytest.mark.django_db
def test_an_admin_revokes_anyones_token(client: Client) -> None:
    viewer = UserFactory(role=Role.VIEWER)
    token, raw = api_token_create(user=viewer, name="viewer's")
    client.force_login(AdminFactory())

    response = client.post(reverse("accounts:token_revoke", args=[token.id]))

    assert response.status_code == 302
    token.refresh_from_db()
    assert token.revoked_at is not None
    answer = Client(headers={"Authorization": f"Bearer {raw}"}).get("/api/v1/me")
    assert (answer.status_code, answer.json()) == (401, {"detail": "Invalid token."})


@pytest.mark.django_db
def test_a_viewer_revokes_its_own_token(client: Client) -> None:
    viewer = UserFactory(role=Role.VIEWER)
    token, _raw = api_token_create(user=viewer, name="mine")
    client.force_login(viewer)

    assert client.post(reverse("accounts:token_revoke", args=[token.id])).status_code == 302
    token.refresh_from_db()
    assert token.revoked_at is not None


@pytest.mark.django_db
def test_a_token_opens_no_html_page_not_even_an_admins() -> None:
    # Tokens are for the API: user management and every page need the browser session.
    admin = AdminFactory()
    colleague = UserFactory(role=Role.MARKETER)
    _token, raw = api_token_create(user=admin, name="scripts")
    token_client = Client(headers={"Authorization": f"Bearer {raw}"})

    pages = [
        ("get", reverse("accounts:settings")),
        ("post", reverse("accounts:user_role", args=[colleague.pk])),
        ("post", reverse("accounts:user_deactivate", args=[colleague.pk])),
    ]
    for method, url in pages:
        response = getattr(token_client, method)(url, {"role": "admin"})
        assert response.status_code == 302, url
        assert response["Location"].startswith(reverse("accounts:login"))
    colleague.refresh_from_db()
    assert (colleague.role, colleague.is_active) == (Role.MARKETER, True)
