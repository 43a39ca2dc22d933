"""In Chromium, under our real Content-Security-Policy and cookie settings: an invited person
presses "Sign in with …" on the sign-in page, passes through the fake provider on 127.0.0.1 and
lands signed in on the dashboard. The CSP's form-action must let the form's redirect leave for
the provider, and the Lax session cookie must come back with the provider's redirect."""

import copy
from collections.abc import Iterator
from typing import Any

import pytest
from playwright.sync_api import Page, expect

from minicrm.accounts.invitations import invitation_create
from minicrm.accounts.models import AuditEvent, Role, User

from .fake_oidc import PROVIDER_NAME, FakeOidcProvider, fake_provider_start, oidc_settings_apply

LISTEN = """
window.__cspViolations = [];
document.addEventListener("securitypolicyviolation", (event) => {
  window.__cspViolations.push(`${event.violatedDirective} ${event.blockedURI}`);
});
"""


@pytest.fixture
def fake_provider(settings: Any) -> Iterator[FakeOidcProvider]:
    """The fake provider, configured as ours, with its origin allowed as a form action (what
    MINICRM_CSP_FORM_ACTION does for a real provider)."""
    provider = fake_provider_start()
    oidc_settings_apply(settings, provider.base_url)
    policy = copy.deepcopy(settings.CONTENT_SECURITY_POLICY)
    policy["DIRECTIVES"]["form-action"] = [*policy["DIRECTIVES"]["form-action"], provider.base_url]
    settings.CONTENT_SECURITY_POLICY = policy
    yield provider
    provider.stop()


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
@pytest.mark.timeout(120)
def test_invited_person_signs_in_with_the_provider_in_a_real_browser(
    live_server: Any, page: Page, admin: User, fake_provider: FakeOidcProvider
) -> None:
    invitation_create(email="ada@example.com", role=Role.MARKETER, invited_by=admin, request=None)
    page.add_init_script(LISTEN)

    page.goto(f"{live_server.url}/sign-in/")
    page.get_by_role("button", name=f"Sign in with {PROVIDER_NAME}").click()
    page.wait_for_url(f"{live_server.url}/")

    expect(page.locator(".sidebar-foot")).to_have_text("Signed in as marketer")
    assert page.evaluate("window.__cspViolations") == []
    assert fake_provider.errors == []
    user = User.objects.get(email="ada@example.com")
    assert user.role == "marketer"
    assert AuditEvent.objects.filter(
        action=AuditEvent.Action.SIGN_IN, actor=user, details={"method": "oidc"}
    ).exists()


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
@pytest.mark.timeout(120)
def test_refused_person_reads_why_on_the_sign_in_page(
    live_server: Any, page: Page, admin: User, fake_provider: FakeOidcProvider
) -> None:
    fake_provider.sign_in_as(email="mallory@elsewhere.example")

    page.goto(f"{live_server.url}/sign-in/")
    page.get_by_role("button", name=f"Sign in with {PROVIDER_NAME}").click()
    page.wait_for_url(f"{live_server.url}/sign-in/")

    expect(
        page.get_by_text("There is no account for mallory@elsewhere.example yet.")
    ).to_be_visible()
    assert not User.objects.filter(email="mallory@elsewhere.example").exists()
