"""Who may use each route, proven: every URL in the URL conf and every API operation, for each
method, for anonymous, viewer, marketer and admin, against ONE table (ACCESS below).

Viewer: read only. Marketer: also customers' data, segments, insights, imports, campaigns.
Admin: also users, invitations, every API token, the audit log. Every role may hold API tokens
for itself; a token acts with its owner's role.

HTML routes are called with GET and POST through the browser session; API operations with each
method the API document lists, through a bearer token of each role and through the session
(the same answer is expected from both). Allowed writes are `OK`: anything but 401/403 (a 422
or a 409 for the table's sample object is fine); forbidden answers are exact: anonymous HTML is
a 302 to the sign-in page, anonymous API a 401, a role short of the route's a 403.

A route or operation missing from the table fails with its name: a new route cannot be added
without deciding who may use it. An entry for a route that no longer exists fails too.
"""

import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver, reverse
from django.utils import timezone

from config.api import api
from minicrm.accounts.models import ApiToken, Invitation, Role, User
from minicrm.accounts.services import api_token_create
from minicrm.campaigns.models import Campaign
from minicrm.campaigns.unsubscribe import unsubscribe_token
from minicrm.customers.models import RateReconversion
from minicrm.imports.services import import_create
from minicrm.insights.models import Insight
from minicrm.segments.models import Segment
from tests.accounts.fake_oidc import oidc_settings_apply
from tests.factories import AdminFactory, CustomerFactory, OrderFactory, UserFactory

LOGIN = "302 to sign-in"  # anonymous on an HTML route
OK = "allowed"  # a write the caller may make: not 401/403, and never a 5xx
CALLERS = ("anon", "viewer", "marketer", "admin")
Expect = int | str

# (method, route): what (anonymous, viewer, marketer, admin) get. Routes are written as in the
# URL conf with each parameter as {name}; API routes as in the API document.
ACCESS: dict[tuple[str, str], tuple[Expect, Expect, Expect, Expect]] = {
    # --- Public: signing in, first-run setup, invitations, unsubscribing, health ------------------
    ("GET", "/sign-in/"): (200, 302, 302, 302),  # the signed-in go where they were going
    ("POST", "/sign-in/"): (200, 302, 302, 302),  # anonymous: the form and its errors again
    ("GET", "/sign-in/link/"): (405, 405, 405, 405),
    ("POST", "/sign-in/link/"): (400, 400, 400, 400),  # no email given
    ("GET", "/sign-in/link/{token}/"): (400, 400, 400, 400),  # not a real link
    ("POST", "/sign-in/link/{token}/"): (400, 400, 400, 400),
    # OIDC (configured here, its provider unreachable): the button page, the start, the callback.
    ("GET", "/sign-in/oidc/{provider_id}/"): (200, 200, 200, 200),
    ("POST", "/sign-in/oidc/{provider_id}/"): (302, 302, 302, 302),  # back: provider unreachable
    ("GET", "/sign-in/oidc/{provider_id}/callback/"): (302, 302, 302, 302),  # back: no state
    ("POST", "/sign-in/oidc/{provider_id}/callback/"): (405, 405, 405, 405),
    ("GET", "/setup/"): (404, 404, 404, 404),  # gone once an admin exists
    ("POST", "/setup/"): (404, 404, 404, 404),
    ("GET", "/invitations/{token}/"): (404, 404, 404, 404),  # not a real invitation
    ("POST", "/invitations/{token}/"): (404, 404, 404, 404),
    ("GET", "/u/{token}/"): (200, 200, 200, 200),  # the link in every message: the token signs it
    ("POST", "/u/{token}/"): (200, 200, 200, 200),
    ("GET", "/healthz"): (200, 200, 200, 200),
    ("POST", "/healthz"): (405, 405, 405, 405),
    ("GET", "/readyz"): (200, 200, 200, 200),  # 503 only when a service is down
    ("POST", "/readyz"): (405, 405, 405, 405),
    # --- Every signed-in role: its own session, settings and API tokens ---------------------------
    ("GET", "/sign-out/"): (LOGIN, 405, 405, 405),
    ("POST", "/sign-out/"): (LOGIN, 302, 302, 302),  # back to the sign-in page
    ("GET", "/settings/"): (LOGIN, 200, 200, 200),  # admins also see people, tokens of all, audit
    ("POST", "/settings/"): (LOGIN, 200, 200, 200),  # the same page; it changes nothing
    ("GET", "/settings/tokens/"): (LOGIN, 405, 405, 405),
    ("POST", "/settings/tokens/"): (LOGIN, OK, OK, OK),  # every role makes tokens for itself
    ("GET", "/settings/tokens/{token_id}/revoke/"): (LOGIN, 405, 405, 405),
    # The sample is the admin's token: someone else's for the others, who cannot even see it.
    ("POST", "/settings/tokens/{token_id}/revoke/"): (LOGIN, 404, 404, OK),
    # --- Admin: people and invitations ------------------------------------------------------------
    ("GET", "/settings/invitations/"): (LOGIN, 403, 403, 405),
    ("POST", "/settings/invitations/"): (LOGIN, 403, 403, OK),
    ("GET", "/settings/invitations/{invitation_id}/revoke/"): (LOGIN, 403, 403, 405),
    ("POST", "/settings/invitations/{invitation_id}/revoke/"): (LOGIN, 403, 403, OK),
    ("GET", "/settings/users/{user_id}/role/"): (LOGIN, 403, 403, 405),
    ("POST", "/settings/users/{user_id}/role/"): (LOGIN, 403, 403, OK),
    ("GET", "/settings/users/{user_id}/deactivate/"): (LOGIN, 403, 403, 405),
    ("POST", "/settings/users/{user_id}/deactivate/"): (LOGIN, 403, 403, OK),
    ("GET", "/settings/users/{user_id}/reactivate/"): (LOGIN, 403, 403, 405),
    ("POST", "/settings/users/{user_id}/reactivate/"): (LOGIN, 403, 403, OK),
    # --- Admin: the audit trail (read only, from the app and the API) -----------------------------
    ("GET", "/settings/audit/"): (LOGIN, 403, 403, 200),
    ("POST", "/settings/audit/"): (LOGIN, 403, 403, 405),
    ("GET", "/api/v1/audit-events"): (401, 403, 403, 200),
    # --- Pages every role reads -------------------------------------------------------------------
    ("GET", "/"): (LOGIN, 200, 200, 200),
    ("POST", "/"): (LOGIN, 405, 405, 405),
    ("GET", "/dashboard/figures/"): (LOGIN, 200, 200, 200),  # what the computing page polls
    ("POST", "/dashboard/figures/"): (LOGIN, 405, 405, 405),
    ("GET", "/search/customers/"): (LOGIN, 200, 200, 200),
    ("POST", "/search/customers/"): (LOGIN, 405, 405, 405),
    ("GET", "/customers/"): (LOGIN, 200, 200, 200),
    ("POST", "/customers/"): (LOGIN, 405, 405, 405),
    ("GET", "/customers/rates/"): (LOGIN, 200, 200, 200),
    ("POST", "/customers/rates/"): (LOGIN, 405, 405, 405),
    ("GET", "/customers/{pk}/"): (LOGIN, 200, 200, 200),
    ("POST", "/customers/{pk}/"): (LOGIN, 405, 405, 405),
    ("GET", "/customers/{pk}/activity/"): (LOGIN, 200, 200, 200),
    ("POST", "/customers/{pk}/activity/"): (LOGIN, 405, 405, 405),
    ("GET", "/imports/"): (LOGIN, 200, 200, 200),
    ("POST", "/imports/"): (LOGIN, 405, 405, 405),
    ("GET", "/imports/history/"): (LOGIN, 200, 200, 200),
    ("POST", "/imports/history/"): (LOGIN, 405, 405, 405),
    ("GET", "/segments/"): (LOGIN, 200, 200, 200),
    ("POST", "/segments/"): (LOGIN, 405, 405, 405),
    ("GET", "/segments/{pk}/"): (LOGIN, 200, 200, 200),
    ("POST", "/segments/{pk}/"): (LOGIN, 405, 405, 405),
    ("GET", "/segments/{pk}/size/"): (LOGIN, 200, 200, 200),
    ("POST", "/segments/{pk}/size/"): (LOGIN, 405, 405, 405),
    ("GET", "/segments/for-customer/{customer_id}/"): (LOGIN, 200, 200, 200),
    ("POST", "/segments/for-customer/{customer_id}/"): (LOGIN, 405, 405, 405),
    ("GET", "/segments/{segment_id}/insights/panel/"): (LOGIN, 200, 200, 200),
    ("POST", "/segments/{segment_id}/insights/panel/"): (LOGIN, 405, 405, 405),
    ("GET", "/campaigns/"): (LOGIN, 200, 200, 200),
    ("POST", "/campaigns/"): (LOGIN, 405, 405, 405),
    ("GET", "/campaigns/{pk}/"): (LOGIN, 200, 200, 200),
    ("POST", "/campaigns/{pk}/"): (LOGIN, 405, 405, 405),
    ("GET", "/campaigns/{pk}/progress/"): (LOGIN, 200, 200, 200),
    ("POST", "/campaigns/{pk}/progress/"): (LOGIN, 405, 405, 405),
    ("GET", "/campaigns/{pk}/deliveries/"): (LOGIN, 200, 200, 200),
    ("POST", "/campaigns/{pk}/deliveries/"): (LOGIN, 405, 405, 405),
    ("GET", "/campaigns/{pk}/summary/"): (LOGIN, 200, 200, 200),
    ("POST", "/campaigns/{pk}/summary/"): (LOGIN, 405, 405, 405),
    # --- Marketer and admin: imports, segments, insights, campaigns -------------------------------
    ("GET", "/imports/upload/"): (LOGIN, 405, 405, 405),
    ("POST", "/imports/upload/"): (LOGIN, 403, OK, OK),
    ("GET", "/imports/{pk}/mapping/"): (LOGIN, 403, OK, OK),  # this sample needs no mapping
    ("POST", "/imports/{pk}/mapping/"): (LOGIN, 403, OK, OK),
    ("GET", "/imports/{pk}/resume/"): (LOGIN, 405, 405, 405),
    ("POST", "/imports/{pk}/resume/"): (LOGIN, 403, OK, OK),
    ("GET", "/segments/new/"): (LOGIN, 403, 200, 200),
    ("POST", "/segments/new/"): (LOGIN, 403, OK, OK),
    ("GET", "/segments/new/from-customers/"): (LOGIN, 403, 302, 302),
    ("POST", "/segments/new/from-customers/"): (LOGIN, 403, 405, 405),
    # The rule builder's live previews belong to the new and edit pages.
    ("GET", "/segments/preview/"): (LOGIN, 403, 405, 405),
    ("POST", "/segments/preview/"): (LOGIN, 403, 200, 200),
    ("GET", "/segments/preview/funnel/"): (LOGIN, 403, 405, 405),
    ("POST", "/segments/preview/funnel/"): (LOGIN, 403, 200, 200),
    ("GET", "/segments/{pk}/edit/"): (LOGIN, 403, 200, 200),
    ("POST", "/segments/{pk}/edit/"): (LOGIN, 403, OK, OK),
    ("GET", "/segments/{pk}/delete/"): (LOGIN, 403, 405, 405),
    ("POST", "/segments/{pk}/delete/"): (LOGIN, 403, OK, OK),
    ("GET", "/segments/{segment_id}/insights/generate/"): (LOGIN, 405, 405, 405),
    ("POST", "/segments/{segment_id}/insights/generate/"): (LOGIN, 403, OK, OK),
    ("GET", "/segments/{segment_id}/insights/suggest-messages/"): (LOGIN, 403, 200, 200),
    ("POST", "/segments/{segment_id}/insights/suggest-messages/"): (LOGIN, 403, OK, OK),
    ("GET", "/campaigns/new/"): (LOGIN, 403, 200, 200),
    ("POST", "/campaigns/new/"): (LOGIN, 403, OK, OK),
    ("GET", "/campaigns/preview/"): (LOGIN, 403, 405, 405),
    ("POST", "/campaigns/preview/"): (LOGIN, 403, 200, 200),
    ("GET", "/campaigns/{pk}/edit/"): (LOGIN, 403, 200, 200),
    ("POST", "/campaigns/{pk}/edit/"): (LOGIN, 403, OK, OK),
    ("GET", "/campaigns/{pk}/cancel/"): (LOGIN, 403, 405, 405),
    ("POST", "/campaigns/{pk}/cancel/"): (LOGIN, 403, OK, OK),
    ("GET", "/campaigns/{pk}/summarise/"): (LOGIN, 403, 405, 405),
    ("POST", "/campaigns/{pk}/summarise/"): (LOGIN, 403, OK, OK),
    # --- The API's own pages: its document is public (it holds no data), unknown URLs JSON 404 ----
    ("GET", "/api/v1/openapi.json"): (200, 200, 200, 200),
    ("POST", "/api/v1/openapi.json"): (200, 200, 200, 200),
    ("GET", "/api/v1/docs"): (200, 200, 200, 200),
    ("POST", "/api/v1/docs"): (200, 200, 200, 200),
    ("GET", "/api/v1/"): (404, 404, 404, 404),
    ("POST", "/api/v1/"): (404, 404, 404, 404),
    ("GET", "^api/v1/"): (404, 404, 404, 404),
    ("POST", "^api/v1/"): (404, 404, 404, 404),
    # --- API reads: every role --------------------------------------------------------------------
    ("GET", "/api/v1/me"): (401, 200, 200, 200),
    ("GET", "/api/v1/customers"): (401, 200, 200, 200),
    ("GET", "/api/v1/customers/{customer_id}"): (401, 200, 200, 200),
    ("GET", "/api/v1/orders"): (401, 200, 200, 200),
    ("GET", "/api/v1/orders/export"): (401, 200, 200, 200),
    ("GET", "/api/v1/rates"): (401, 200, 200, 200),
    ("GET", "/api/v1/rates/reconversions"): (401, 200, 200, 200),
    ("GET", "/api/v1/rates/reconversions/{reconversion_id}"): (401, 200, 200, 200),
    ("GET", "/api/v1/imports"): (401, 200, 200, 200),
    ("GET", "/api/v1/imports/{import_id}"): (401, 200, 200, 200),
    ("GET", "/api/v1/imports/{import_id}/errors.csv"): (401, 200, 200, 200),
    ("GET", "/api/v1/segments"): (401, 200, 200, 200),
    ("GET", "/api/v1/segments/{segment_id}"): (401, 200, 200, 200),
    ("GET", "/api/v1/segments/{segment_id}/customers"): (401, 200, 200, 200),
    ("GET", "/api/v1/segments/{segment_id}/export"): (401, 200, 200, 200),
    ("GET", "/api/v1/segments/{segment_id}/insights"): (401, 200, 200, 200),
    ("GET", "/api/v1/insights/{insight_id}"): (401, 200, 200, 200),
    ("GET", "/api/v1/campaigns"): (401, 200, 200, 200),
    ("GET", "/api/v1/campaigns/{campaign_id}"): (401, 200, 200, 200),
    ("GET", "/api/v1/campaigns/{campaign_id}/deliveries"): (401, 200, 200, 200),
    # Previews read (a POST only to carry rules); nothing is stored.
    ("POST", "/api/v1/segments/preview"): (401, 200, 200, 200),
    ("POST", "/api/v1/campaigns/{campaign_id}/preview"): (401, 200, 200, 200),
    # --- API writes: marketer and admin -----------------------------------------------------------
    ("POST", "/api/v1/customers/bulk"): (401, 403, OK, OK),
    ("POST", "/api/v1/orders/bulk"): (401, 403, OK, OK),
    ("POST", "/api/v1/rates"): (401, 403, OK, OK),
    ("POST", "/api/v1/imports"): (401, 403, OK, OK),
    ("POST", "/api/v1/segments"): (401, 403, OK, OK),
    ("PATCH", "/api/v1/segments/{segment_id}"): (401, 403, OK, OK),
    ("DELETE", "/api/v1/segments/{segment_id}"): (401, 403, OK, OK),
    ("POST", "/api/v1/segments/{segment_id}/insights"): (401, 403, OK, OK),
    ("POST", "/api/v1/segments/parse"): (401, 403, OK, OK),
    ("POST", "/api/v1/segments/{segment_id}/suggest-messages"): (401, 403, OK, OK),
    ("POST", "/api/v1/campaigns"): (401, 403, OK, OK),
    ("PATCH", "/api/v1/campaigns/{campaign_id}"): (401, 403, OK, OK),
    ("POST", "/api/v1/campaigns/{campaign_id}/send"): (401, 403, OK, OK),
    ("POST", "/api/v1/campaigns/{campaign_id}/cancel"): (401, 403, OK, OK),
    ("POST", "/api/v1/campaigns/{campaign_id}/summary"): (401, 403, OK, OK),
    # --- The vendor's receipts: its signature alone, never a user's token or session --------------
    ("POST", "/api/v1/deliveries/receipts"): (401, 401, 401, 401),
}

API_PREFIX = "/api/v1/"
# A URL to request for each regular-expression pattern (they cannot be filled in by name).
REGEX_SAMPLES = {"^api/v1/": "/api/v1/no-such-route/at-all"}
HTML_METHODS = ("GET", "POST")

RULES = {"match": "all", "conditions": [{"field": "total_spend", "operator": "gt", "value": 10}]}


# --- The routes ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class Route:
    method: str
    route: str  # the table's key: /segments/{pk}/
    api: bool  # an operation of the API document (token and session callers)

    @property
    def key(self) -> tuple[str, str]:
        return (self.method, self.route)

    def __str__(self) -> str:
        return f"{self.method} {self.route}"


def _route_text(pattern: str) -> str:
    return re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", pattern)


def _url_patterns(resolver: URLResolver, prefix: str = "") -> Iterator[tuple[str, URLPattern]]:
    for entry in resolver.url_patterns:
        if isinstance(entry, URLResolver):
            yield from _url_patterns(entry, prefix + str(entry.pattern))
        else:
            yield prefix + str(entry.pattern), entry


def _is_api_operation(pattern: URLPattern) -> bool:
    return pattern.callback.__module__ == "ninja.operation"


def html_routes() -> list[Route]:
    """Every URL conf pattern that is not an operation of the API document, with GET and POST."""
    routes = []
    for text, pattern in _url_patterns(get_resolver()):
        if _is_api_operation(pattern):
            continue
        route = text if text.startswith("^") else "/" + _route_text(text)
        routes.extend(Route(method, route, api=False) for method in HTML_METHODS)
    return routes


def api_routes() -> list[Route]:
    """Every operation of the API document, with each method it lists."""
    paths = api.get_openapi_schema()["paths"]
    return [
        Route(method.upper(), path, api=True)
        for path, item in paths.items()
        for method in item
        if method in {"get", "post", "put", "patch", "delete"}
    ]


def api_operation_routes_in_urlconf() -> set[str]:
    return {
        "/" + _route_text(text)
        for text, pattern in _url_patterns(get_resolver())
        if _is_api_operation(pattern)
    }


ALL_ROUTES = html_routes() + api_routes()


# --- The sample objects ---------------------------------------------------------------------------
@dataclass
class World:
    users: dict[str, User]
    tokens: dict[str, str]
    sessions: dict[str, Client]
    params: dict[str, dict[str, str]]  # by the route's first part ("segments"), then by name
    bodies: dict[tuple[str, str], dict[str, Any]]


@pytest.fixture
def world(db: None, settings: Any, tmp_path: Any) -> World:
    settings.MEDIA_ROOT = tmp_path / "media"
    # Sign-in through OIDC configured, with a provider that refuses connections at once.
    oidc_settings_apply(settings, "http://127.0.0.1:9")
    users = {
        "viewer": UserFactory(role=Role.VIEWER),
        "marketer": UserFactory(role=Role.MARKETER),
        "admin": AdminFactory(),
    }
    tokens = {role: api_token_create(user=user, name="matrix")[1] for role, user in users.items()}
    sessions = {}
    for role, user in users.items():
        sessions[role] = Client(raise_request_exception=False)
        sessions[role].force_login(user)
    customer = CustomerFactory()
    OrderFactory(customer=customer)
    segment = Segment.objects.create(name="Matrix segment", rules=RULES)
    campaign = Campaign.objects.create(name="Matrix campaign", segment=segment, template="Hello")
    upload = import_create(
        file=SimpleUploadedFile("people.csv", b"external_id,email\nM-1,m1@example.com\n"),
        kind="customers",
        created_by=users["marketer"],
        enqueue=False,
    )
    insight = Insight.objects.create(segment=segment, rules=RULES)
    admin_token = ApiToken.objects.get(user=users["admin"])
    # Someone whose role, or access, the user-management routes change: not one of the callers.
    colleague = UserFactory(role=Role.MARKETER)
    invitation = Invitation.objects.create(
        email="invited@example.com",
        open_email="invited@example.com",
        role=Role.MARKETER,
        invited_by=users["admin"],
        expires_at=timezone.now() + timedelta(days=7),
    )
    reconversion = RateReconversion.objects.create(
        ranges=[{"currency": "EUR", "start": "2026-03-04", "end": "2026-03-11"}]
    )
    by_name = {
        "customer_id": str(customer.pk),
        "segment_id": str(segment.pk),
        "campaign_id": str(campaign.pk),
        "import_id": str(upload.pk),
        "insight_id": str(insight.pk),
        # Someone else's token for everyone but the admin: only an admin revokes those.
        "token_id": str(admin_token.pk),
        "user_id": str(colleague.pk),
        "invitation_id": str(invitation.pk),
        "reconversion_id": str(reconversion.pk),
    }
    params = {
        "customers": {"pk": str(customer.pk)},
        "segments": {"pk": str(segment.pk)},
        "campaigns": {"pk": str(campaign.pk)},
        "imports": {"pk": str(upload.pk)},
        "u": {"token": unsubscribe_token(customer.pk)},
        "sign-in": {"token": "not-a-real-link", "provider_id": settings.OIDC_PROVIDER_ID},
        "invitations": {"token": "not-a-real-invitation"},
        "": by_name,
    }
    bodies: dict[tuple[str, str], dict[str, Any]] = {
        ("POST", "/api/v1/customers/bulk"): {"rows": [{"external_id": "M-2", "first_name": "Ada"}]},
        ("POST", "/api/v1/orders/bulk"): {
            "rows": [
                {
                    "external_id": "MO-1",
                    "customer_external_id": customer.external_id,
                    "amount": "10.00",
                    "ordered_at": "2025-01-01",
                }
            ]
        },
        ("POST", "/api/v1/segments/preview"): {"rules": RULES},
        ("POST", "/api/v1/segments"): {"name": "Matrix new", "rules": RULES},
        ("PATCH", "/api/v1/segments/{segment_id}"): {"name": "Matrix renamed"},
        ("POST", "/api/v1/segments/parse"): {"text": "customers who spent over 5000"},
        ("POST", "/api/v1/segments/{segment_id}/suggest-messages"): {"objective": "win back"},
        ("POST", "/api/v1/campaigns"): {
            "name": "Matrix new",
            "segment_id": segment.pk,
            "template": "Hello",
        },
        ("PATCH", "/api/v1/campaigns/{campaign_id}"): {"name": "Matrix renamed"},
        ("POST", "/api/v1/deliveries/receipts"): {"receipts": []},
        ("POST", "/api/v1/rates"): {
            "rows": [{"date": "2026-03-04", "currency": "EUR", "rate": "89.12"}]
        },
    }
    return World(users, tokens, sessions, params, bodies)


def _url(world: World, route: Route) -> str:
    if route.route.startswith("^"):
        sample = REGEX_SAMPLES.get(route.route)
        assert sample, f"no sample URL for the pattern {route.route!r}: add one to REGEX_SAMPLES"
        return sample
    first = route.route.removeprefix(API_PREFIX).strip("/").split("/")[0]
    values = {**world.params[""], **world.params.get(first, {})}

    def fill(match: re.Match[str]) -> str:
        name = match.group(1)
        assert name in values, f"{route}: no sample object for {{{name}}}: add one to `world`"
        return values[name]

    return re.sub(r"\{(\w+)\}", fill, route.route)


def _send(world: World, route: Route, client: Client) -> Any:
    url = _url(world, route)
    method = route.method.lower()
    if route.key == ("POST", "/api/v1/imports"):
        upload = SimpleUploadedFile("more.csv", b"external_id,email\nM-3,m3@example.com\n")
        return client.post(url, {"file": upload, "kind": "customers"})
    if route.api and route.method != "GET":
        body = world.bodies.get(route.key, {})
        return getattr(client, method)(url, body, content_type="application/json")
    return getattr(client, method)(url)


def _check(route: Route, caller: str, expected: Expect, response: Any) -> str | None:
    """What is wrong with the answer, or None."""
    status = response.status_code
    location = response.get("Location", "")
    sign_in = reverse("accounts:login")
    if expected == LOGIN:
        if status == 302 and location.startswith(f"{sign_in}?next="):
            return None
        return f"{route} as {caller}: expected a 302 to sign-in, got {status} {location}"
    if expected == OK:
        if status in (401, 403) or status >= 500 or location.startswith(sign_in):
            return f"{route} as {caller}: expected to be allowed, got {status} {location}"
        return None
    if status != expected:
        return f"{route} as {caller}: expected {expected}, got {status} {location}"
    return None


# --- The tests ----------------------------------------------------------------------------------
@pytest.mark.parametrize("route", ALL_ROUTES, ids=str)
def test_route_answers_each_caller_as_the_table_says(world: World, route: Route) -> None:
    if route.key not in ACCESS:
        pytest.fail(
            f"{route} has no entry in ACCESS (tests/test_role_matrix.py): decide who may use it"
        )
    problems = []
    for caller, expected in zip(CALLERS, ACCESS[route.key], strict=True):
        if caller == "anon":
            clients = {"anonymous": Client(raise_request_exception=False)}
        elif route.api:
            bearer = {"Authorization": f"Bearer {world.tokens[caller]}"}
            clients = {
                f"{caller} token": Client(headers=bearer, raise_request_exception=False),
                f"{caller} session": world.sessions[caller],
            }
        else:
            clients = {f"{caller} session": world.sessions[caller]}
        for name, client in clients.items():
            problem = _check(route, name, expected, _send(world, route, client))
            if problem:
                problems.append(problem)
    assert not problems, "\n".join(problems)


def test_every_table_entry_names_a_route_that_exists() -> None:
    known = {route.key for route in ALL_ROUTES}
    stale = sorted(f"{method} {route}" for method, route in ACCESS if (method, route) not in known)
    assert not stale, f"entries for routes that no longer exist: {stale}"


def test_every_api_operation_in_the_urlconf_is_in_the_api_document() -> None:
    # The API's URL patterns are checked through the document's operations; this keeps the two
    # the same set, so no URL escapes the table.
    documented = {route.route for route in api_routes()}
    assert api_operation_routes_in_urlconf() == documented
