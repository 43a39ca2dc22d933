"""Sign in with an OIDC provider, end to end against a fake provider on 127.0.0.1 (fake_oidc):
the sign-in page's button, allauth's authorization code flow with PKCE, our ID token checks and
the gate for first sign-ins (an open invitation or an allowed domain)."""

from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import jwt
import pytest
import requests
from cryptography.hazmat.primitives import serialization
from django.contrib.messages import get_messages
from django.http import HttpResponse
from django.test import Client
from django.urls import NoReverseMatch, reverse

from minicrm.accounts.invitations import invitation_create
from minicrm.accounts.models import AuditEvent, Role, User
from minicrm.accounts.oidc import IdTokenInvalid, id_token_claims
from tests.factories import UserFactory

from .fake_oidc import (
    CLIENT_ID,
    KEY_ID,
    PROVIDER_ID,
    PROVIDER_NAME,
    FakeOidcProvider,
    fake_provider_start,
    oidc_settings_apply,
)


@pytest.fixture(scope="module")
def fake_provider() -> Iterator[FakeOidcProvider]:
    provider = fake_provider_start()
    yield provider
    provider.stop()


@pytest.fixture
def oidc(settings: Any, fake_provider: FakeOidcProvider, db: None) -> FakeOidcProvider:
    fake_provider.reset()
    oidc_settings_apply(settings, fake_provider.base_url)
    return fake_provider


def _login_url() -> str:
    return reverse("openid_connect_login", kwargs={"provider_id": PROVIDER_ID})


def _callback_path() -> str:
    return reverse("openid_connect_callback", kwargs={"provider_id": PROVIDER_ID})


def _to_provider(client: Client, fake: FakeOidcProvider, next_url: str = "") -> str:
    """Press the button; return where the fake's /authorize sends the browser back to."""
    start = client.post(_login_url(), {"next": next_url} if next_url else {})
    assert start.status_code == 302
    assert start["Location"].startswith(f"{fake.base_url}/authorize?")
    authorize = requests.get(start["Location"], allow_redirects=False, timeout=10)
    assert authorize.status_code == 302, fake.errors
    return str(authorize.headers["Location"])


def _back_from_provider(client: Client, location: str) -> HttpResponse:
    callback = urlsplit(location)
    assert callback.path == _callback_path()
    response: HttpResponse = client.get(callback.path, dict(parse_qsl(callback.query)))
    return response


def _sign_in(client: Client, fake: FakeOidcProvider, next_url: str = "") -> HttpResponse:
    return _back_from_provider(client, _to_provider(client, fake, next_url))


def _signed_in_as(client: Client) -> User | None:
    user_id = client.session.get("_auth_user_id")
    return User.objects.get(pk=user_id) if user_id else None


def _messages(response: HttpResponse) -> list[str]:
    return [str(message) for message in get_messages(response.wsgi_request)]


def _assert_refused(
    response: HttpResponse, client: Client, *, reason: str, email: str, since: int = 0
) -> None:
    """Refused: back on the sign-in page, signed out, one audited failure (after event `since`)."""
    assert response.status_code == 302
    assert response["Location"] == reverse("accounts:login")
    assert _signed_in_as(client) is None
    events = AuditEvent.objects.filter(pk__gt=since)
    failure = events.get(action=AuditEvent.Action.SIGN_IN_FAILED)
    assert failure.details == {"method": "oidc", "reason": reason}
    assert failure.target == email
    assert failure.ip_address == "127.0.0.1"
    assert not events.filter(action=AuditEvent.Action.SIGN_IN).exists()


# --- Who gets in --------------------------------------------------------------------------------
def test_invited_email_signs_in_with_the_invitations_role(
    client: Client, oidc: FakeOidcProvider, admin: User
) -> None:
    invitation, _link = invitation_create(
        email="ada@example.com", role=Role.MARKETER, invited_by=admin, request=None
    )
    oidc.sign_in_as(email="Ada@Example.com", name="Ada Lovelace")

    response = _sign_in(client, oidc)

    assert response.status_code == 302
    assert response["Location"] == reverse("web:dashboard")
    user = _signed_in_as(client)
    assert user is not None
    assert (user.email, user.role, user.full_name) == (
        "ada@example.com",
        "marketer",
        "Ada Lovelace",
    )
    assert not user.has_usable_password()
    invitation.refresh_from_db()
    assert invitation.status == "accepted"
    assert invitation.accepted_by == user
    sign_in = AuditEvent.objects.get(action=AuditEvent.Action.SIGN_IN)
    assert (sign_in.actor, sign_in.target, sign_in.details) == (
        user,
        user.email,
        {"method": "oidc"},
    )
    assert AuditEvent.objects.filter(action=AuditEvent.Action.INVITATION_ACCEPTED).count() == 1
    # The whole flow went through the fake's checks: S256 challenge, matching verifier, secret.
    assert oidc.errors == []
    assert oidc.authorize_params[0]["code_challenge_method"] == "S256"
    assert oidc.token_params[0]["code_verifier"]
    assert client.get(reverse("web:dashboard")).status_code == 200


def test_invited_admin_gets_django_staff_flags_too(
    client: Client, oidc: FakeOidcProvider, admin: User
) -> None:
    invitation_create(email="ada@example.com", role=Role.ADMIN, invited_by=admin, request=None)

    _sign_in(client, oidc)

    user = User.objects.get(email="ada@example.com")
    assert (user.role, user.is_staff, user.is_superuser) == ("admin", True, True)


def test_allowed_domain_signs_in_with_the_default_role(
    client: Client, oidc: FakeOidcProvider, settings: Any
) -> None:
    oidc.sign_in_as(email="grace@allowed.example")

    response = _sign_in(client, oidc)

    assert response.status_code == 302
    user = _signed_in_as(client)
    assert user is not None
    assert (user.email, user.role) == ("grace@allowed.example", "viewer")

    settings.MINICRM_DEFAULT_SIGNUP_ROLE = "marketer"
    oidc.sign_in_as(email="linus@ALLOWED.example", sub="fake-subject-2")
    _sign_in(Client(), oidc)
    assert User.objects.get(email="linus@allowed.example").role == "marketer"


def test_unknown_email_is_refused_and_no_user_is_created(
    client: Client, oidc: FakeOidcProvider
) -> None:
    oidc.sign_in_as(email="mallory@elsewhere.example")

    response = _sign_in(client, oidc)

    _assert_refused(response, client, reason="not_invited", email="mallory@elsewhere.example")
    assert not User.objects.exists()
    assert _messages(response) == [
        "There is no account for mallory@elsewhere.example yet. Ask an admin to invite you."
    ]


def test_a_subdomain_of_an_allowed_domain_is_not_allowed(
    client: Client, oidc: FakeOidcProvider
) -> None:
    oidc.sign_in_as(email="eve@evil.allowed.example")

    response = _sign_in(client, oidc)

    _assert_refused(response, client, reason="not_invited", email="eve@evil.allowed.example")
    assert not User.objects.exists()


def test_unverified_email_is_refused_even_when_invited(
    client: Client, oidc: FakeOidcProvider, admin: User
) -> None:
    invitation, _link = invitation_create(
        email="ada@example.com", role=Role.MARKETER, invited_by=admin, request=None
    )
    oidc.sign_in_as(email_verified=False)

    response = _sign_in(client, oidc)

    _assert_refused(response, client, reason="email_unverified", email="ada@example.com")
    assert not User.objects.filter(email="ada@example.com").exists()
    invitation.refresh_from_db()
    assert invitation.status == "open"


def test_existing_user_is_matched_by_email_whatever_its_case(
    client: Client, oidc: FakeOidcProvider
) -> None:
    existing = UserFactory(email="ada@example.com", role=Role.VIEWER)
    oidc.sign_in_as(email="ADA@example.COM")

    response = _sign_in(client, oidc, next_url="/segments/")

    assert response.status_code == 302
    assert response["Location"] == "/segments/"
    assert _signed_in_as(client) == existing
    existing.refresh_from_db()
    assert existing.role == "viewer"  # the provider changes nothing about the account
    assert User.objects.count() == 1


def test_deactivated_user_is_refused(client: Client, oidc: FakeOidcProvider) -> None:
    UserFactory(email="ada@example.com", is_active=False)

    response = _sign_in(client, oidc)

    _assert_refused(response, client, reason="deactivated", email="ada@example.com")
    assert _messages(response) == ["This account is deactivated. Ask an admin."]


def test_next_pointing_to_another_site_is_dropped(client: Client, oidc: FakeOidcProvider) -> None:
    UserFactory(email="ada@example.com")

    response = _sign_in(client, oidc, next_url="https://evil.example/phish")

    assert response.status_code == 302
    assert response["Location"] == reverse("web:dashboard")


# --- ID tokens that must not be believed --------------------------------------------------------
@pytest.mark.parametrize(
    "mode", ["bad_signature", "wrong_audience", "expired", "wrong_issuer"], ids=str
)
def test_an_untrustworthy_id_token_is_refused(
    client: Client, oidc: FakeOidcProvider, mode: str
) -> None:
    UserFactory(email="ada@example.com")  # even an existing account: the token proves nothing
    oidc.token_mode = mode

    response = _sign_in(client, oidc)

    _assert_refused(response, client, reason=mode, email="")
    assert oidc.errors == []  # the fake was satisfied; our side refused
    assert _messages(response) == [
        f"Sign-in with {PROVIDER_NAME} did not succeed. Please try again."
    ]


def test_userinfo_about_another_subject_is_refused(client: Client, oidc: FakeOidcProvider) -> None:
    UserFactory(email="ada@example.com")
    oidc.userinfo_sub = "someone-else"

    response = _sign_in(client, oidc)

    _assert_refused(response, client, reason="userinfo_subject", email="")


def test_a_callback_cannot_be_replayed(client: Client, oidc: FakeOidcProvider) -> None:
    UserFactory(email="ada@example.com")
    location = _to_provider(client, oidc)
    assert _back_from_provider(client, location).status_code == 302
    client.post(reverse("accounts:logout"))
    last_event = AuditEvent.objects.order_by("pk").last()
    assert last_event is not None  # audit events are never deleted: count from here

    replay = _back_from_provider(client, location)

    _assert_refused(replay, client, reason="bad_state", email="", since=last_event.pk)


def test_a_callback_from_another_browser_is_refused(client: Client, oidc: FakeOidcProvider) -> None:
    """Login CSRF: a code obtained in the attacker's browser, sent to the victim's, does not sign
    the victim in: the state is bound to the session that started the flow."""
    UserFactory(email="ada@example.com")
    location = _to_provider(Client(), oidc)

    response = _back_from_provider(client, location)

    _assert_refused(response, client, reason="bad_state", email="")


def test_cancelled_at_the_provider(client: Client, oidc: FakeOidcProvider) -> None:
    location = _to_provider(client, oidc)
    state = dict(parse_qsl(urlsplit(location).query))["state"]

    response = client.get(_callback_path(), {"error": "access_denied", "state": state})

    _assert_refused(response, client, reason="cancelled", email="")
    assert _messages(response) == [f"Sign-in with {PROVIDER_NAME} was cancelled."]


def test_unreachable_provider_is_a_message_not_an_error_page(
    client: Client, oidc: FakeOidcProvider, settings: Any
) -> None:
    oidc_settings_apply(settings, "http://127.0.0.1:9")  # the discard port: nothing listens

    response = client.post(_login_url())

    _assert_refused(response, client, reason="provider_unreachable", email="")
    assert _messages(response) == [
        f"{PROVIDER_NAME} cannot be reached right now. Please try again."
    ]


def _rs256(claims: dict[str, Any], oidc: FakeOidcProvider) -> str:
    return jwt.encode(claims, oidc.key, algorithm="RS256", headers={"kid": KEY_ID})


def _jwks(oidc: FakeOidcProvider) -> dict[str, Any]:
    return requests.get(f"{oidc.base_url}/jwks", timeout=10).json()  # type: ignore[no-any-return]


def test_id_token_with_a_symmetric_or_no_algorithm_is_refused(oidc: FakeOidcProvider) -> None:
    """The public key must not double as an HMAC secret, and "none" is no signature."""
    claims = {"iss": oidc.base_url, "aud": CLIENT_ID, "sub": "s", "iat": 1, "exp": 2**31}
    public_pem = oidc.key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    forged = [
        jwt.encode(claims, public_pem[:32], algorithm="HS256", headers={"kid": KEY_ID}),
        jwt.encode(claims, None, algorithm="none", headers={"kid": KEY_ID}),
    ]
    for token in forged:
        with pytest.raises(IdTokenInvalid) as refused:
            id_token_claims(
                id_token=token, jwks=_jwks(oidc), issuer=oidc.base_url, client_id=CLIENT_ID
            )
        assert refused.value.reason == "algorithm"


def test_id_token_for_several_audiences_must_name_us_as_its_party(oidc: FakeOidcProvider) -> None:
    claims = {
        "iss": oidc.base_url,
        "aud": [CLIENT_ID, "another-client"],
        "sub": "s",
        "iat": 1,
        "exp": 2**31,
    }
    keys = _jwks(oidc)

    with pytest.raises(IdTokenInvalid) as refused:
        id_token_claims(
            id_token=_rs256(claims, oidc), jwks=keys, issuer=oidc.base_url, client_id=CLIENT_ID
        )
    assert refused.value.reason == "wrong_audience"

    ours = _rs256({**claims, "azp": CLIENT_ID}, oidc)
    assert (
        id_token_claims(id_token=ours, jwks=keys, issuer=oidc.base_url, client_id=CLIENT_ID)["sub"]
        == "s"
    )


def test_id_token_without_expiry_is_refused(oidc: FakeOidcProvider) -> None:
    claims = {"iss": oidc.base_url, "aud": CLIENT_ID, "sub": "s", "iat": 1}

    with pytest.raises(IdTokenInvalid) as refused:
        id_token_claims(
            id_token=_rs256(claims, oidc),
            jwks=_jwks(oidc),
            issuer=oidc.base_url,
            client_id=CLIENT_ID,
        )
    assert refused.value.reason == "invalid"


# --- The sign-in page and the URLs --------------------------------------------------------------
def test_sign_in_page_has_the_provider_button_when_configured(
    client: Client, oidc: FakeOidcProvider, admin: User
) -> None:
    page = client.get(reverse("accounts:login"), {"next": "/segments/"}).content.decode()

    assert f'action="{_login_url()}"' in page
    assert f"Sign in with {PROVIDER_NAME}" in page
    assert 'name="next" value="/segments/"' in page
    assert 'name="password"' in page  # the password form stays the main one


def test_without_client_id_no_button_and_the_urls_refuse(
    client: Client, settings: Any, admin: User
) -> None:
    settings.OIDC_CLIENT_ID = ""
    settings.SOCIALACCOUNT_PROVIDERS = {}

    page = client.get(reverse("accounts:login")).content.decode()
    start_get = client.get(_login_url())
    start_post = client.post(_login_url())
    callback = client.get(_callback_path(), {"code": "x", "state": "y"})

    assert "Sign in with" not in page
    for response in (start_get, start_post, callback):
        assert response.status_code == 404
        assert "not set up on this server" in response.content.decode()


def test_another_provider_id_is_not_found(client: Client, oidc: FakeOidcProvider) -> None:
    url = reverse("openid_connect_login", kwargs={"provider_id": "google-but-not-configured"})

    assert client.post(url).status_code == 404


def test_a_link_to_the_start_shows_a_button_instead_of_leaving(
    client: Client, oidc: FakeOidcProvider
) -> None:
    response = client.get(_login_url(), {"next": "/campaigns/"})

    assert response.status_code == 200
    page = response.content.decode()
    assert f'<form method="post" action="{_login_url()}"' in page
    assert 'name="next" value="/campaigns/"' in page
    assert oidc.authorize_params == []


def test_allauths_own_account_pages_are_not_mounted() -> None:
    for name in (
        "account_login",
        "account_signup",
        "account_reset_password",
        "socialaccount_signup",
    ):
        with pytest.raises(NoReverseMatch):
            reverse(name)
