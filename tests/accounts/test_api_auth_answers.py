"""What the API answers a caller whose credentials are wrong: it names what is wrong.

A bearer token that is revoked, unknown or malformed is a 401 "Invalid token." on every method:
the session is not tried after it (a bad token on a POST used to fall through to the session's
CSRF check and answer 403 "CSRF check Failed"). No credentials stay a 401; a session write
without its CSRF token stays a 403.
"""

from typing import Any

import pytest
from django.test import Client

from minicrm.accounts.models import Role, User
from minicrm.accounts.services import api_token_create, api_token_revoke
from minicrm.segments.models import Segment
from tests.factories import UserFactory

INVALID = {"detail": "Invalid token."}
RULES = {"match": "all", "conditions": [{"field": "total_spend", "operator": "gt", "value": 10}]}


@pytest.fixture
def segment(db: None) -> Segment:
    return Segment.objects.create(name="Big spenders", rules=RULES)


def _requests(segment: Segment) -> list[tuple[str, str, dict[str, object] | None]]:
    return [
        ("get", "/api/v1/me", None),
        ("get", f"/api/v1/segments/{segment.pk}", None),
        ("post", "/api/v1/segments", {"name": "New", "rules": RULES}),
        ("patch", f"/api/v1/segments/{segment.pk}", {"name": "Renamed"}),
        ("delete", f"/api/v1/segments/{segment.pk}", None),
    ]


def _send(client: Client, method: str, url: str, body: dict[str, object] | None) -> Any:
    if body is None:
        return getattr(client, method)(url)
    return getattr(client, method)(url, body, content_type="application/json")


def _revoked_token(db: None) -> str:
    owner = UserFactory(role=Role.ADMIN)
    token, raw = api_token_create(user=owner, name="old")
    api_token_revoke(token_id=token.pk, actor=owner)
    return raw


@pytest.mark.parametrize(
    "header",
    [
        "revoked",
        "Bearer mcrm_unknownunknownunknownunknownunknownunknown0",
        "Bearer not-even-our-prefix",
        "Bearer ",
        "bearer mcrm_x with spaces",
    ],
)
def test_a_bad_bearer_token_is_401_invalid_token_on_every_method(
    db: None, segment: Segment, header: str
) -> None:
    value = f"Bearer {_revoked_token(db)}" if header == "revoked" else header
    # The session would pass (a signed-in admin); a bad token is judged alone all the same.
    client = Client(enforce_csrf_checks=True, headers={"Authorization": value})
    client.force_login(UserFactory(role=Role.ADMIN))

    for method, url, body in _requests(segment):
        response = _send(client, method, url, body)
        assert response.status_code == 401, (method, url, response.content)
        assert response.json() == INVALID, (method, url)
        assert response["WWW-Authenticate"] == 'Bearer error="invalid_token"'

    segment.refresh_from_db()
    assert segment.name == "Big spenders"
    assert list(Segment.objects.values_list("name", flat=True)) == ["Big spenders"]


def test_a_token_of_a_deactivated_user_is_invalid(db: None) -> None:
    user = UserFactory(role=Role.MARKETER)
    _token, raw = api_token_create(user=user, name="ingest")
    User.objects.filter(pk=user.pk).update(is_active=False)

    response = Client(headers={"Authorization": f"Bearer {raw}"}).post(
        "/api/v1/segments", {"name": "x", "rules": RULES}, content_type="application/json"
    )

    assert (response.status_code, response.json()) == (401, INVALID)


def test_no_credentials_stay_401_authentication_required(db: None, segment: Segment) -> None:
    client = Client(enforce_csrf_checks=True)

    for method, url, body in _requests(segment):
        response = _send(client, method, url, body)
        assert response.status_code == 401, (method, url)
        assert response.json() == {"detail": "Authentication required: send a valid API token."}


def test_a_session_write_without_csrf_stays_403(db: None, segment: Segment) -> None:
    client = Client(enforce_csrf_checks=True)
    client.force_login(UserFactory(role=Role.ADMIN))

    response = client.post(
        "/api/v1/segments", {"name": "x", "rules": RULES}, content_type="application/json"
    )

    assert response.status_code == 403
    assert response.json() == {"detail": "CSRF check Failed"}
    assert Segment.objects.count() == 1


def test_another_authorization_scheme_falls_back_to_the_session(db: None) -> None:
    # A proxy's Basic credentials are not ours to judge: the session still signs the call.
    client = Client(headers={"Authorization": "Basic dXNlcjpwYXNz"})
    user = UserFactory(role=Role.VIEWER)
    client.force_login(user)

    assert client.get("/api/v1/me").json()["email"] == user.email
    assert (
        Client(headers={"Authorization": "Basic dXNlcjpwYXNz"}).get("/api/v1/me").status_code == 401
    )


def test_a_valid_token_wins_over_the_session(db: None) -> None:
    owner = UserFactory(role=Role.VIEWER)
    _token, raw = api_token_create(user=owner, name="read")
    client = Client(headers={"Authorization": f"Bearer {raw}"})
    client.force_login(UserFactory(role=Role.ADMIN))

    assert client.get("/api/v1/me").json()["email"] == owner.email
    # The viewer's token acts as a viewer, whatever session rides along.
    refused = client.post(
        "/api/v1/segments", {"name": "x", "rules": RULES}, content_type="application/json"
    )
    assert refused.status_code == 403
