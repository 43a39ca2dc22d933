"""In a real browser: an admin invites a marketer, who accepts from the email, signs in, can
build segments and meets no admin page."""

import re
from pathlib import Path
from typing import Any

import pytest
from django.core import mail
from django.urls import Resolver404, resolve
from playwright.sync_api import Browser, Page, expect

from minicrm.accounts.models import Invitation, Role, User
from tests.web.browser import sign_in

SCREENSHOTS = Path(__file__).resolve().parents[2] / "var" / "screenshots"
PASSWORD = "a-long-unusual-passphrase"
AUDIT_PAGE = "/settings/audit/"


def _screenshot(page: Page, name: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=SCREENSHOTS / f"{name}.png", full_page=True)


def _audit_page_exists() -> bool:
    try:
        resolve(AUDIT_PAGE)
    except Resolver404:
        return False
    return True


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_an_invited_marketer_accepts_signs_in_and_sees_no_admin_page(
    live_server: object, page: Page, browser: Browser, admin: User, settings: Any
) -> None:
    url = live_server.url  # type: ignore[attr-defined]
    settings.MINICRM_PUBLIC_URL = url
    sign_in(page, url, admin)

    page.goto(f"{url}/settings/")
    people = page.get_by_test_id("people")
    people.get_by_label("Invite by email").fill("nia@example.com")
    people.get_by_label("Role", exact=True).select_option("marketer")
    people.get_by_role("button", name="Send invitation").click()

    expect(page.get_by_text("Invitation sent to nia@example.com.")).to_be_visible()
    expect(people.get_by_role("cell", name="nia@example.com")).to_be_visible()
    _screenshot(page, "settings-people")
    assert len(mail.outbox) == 1
    link = re.search(r"https?://\S+/invitations/\S+/", mail.outbox[0].body).group(0)  # type: ignore[union-attr]

    # The invitee opens the link in their own browser, without the admin's cookies.
    context = browser.new_context(viewport={"width": 1280, "height": 860})
    invitee = context.new_page()
    try:
        invitee.goto(link)
        expect(invitee.get_by_role("heading", name="Join Mini CRM")).to_be_visible()
        expect(invitee.get_by_test_id("invited-email")).to_have_text("nia@example.com")
        _screenshot(invitee, "invitation-accept")
        invitee.get_by_label("Your name").fill("Nia Patel")
        invitee.get_by_label("Password", exact=True).fill(PASSWORD)
        invitee.get_by_label("Repeat the password").fill(PASSWORD)
        invitee.get_by_role("button", name="Create account and sign in").click()

        expect(invitee.get_by_role("heading", name="Dashboard")).to_be_visible()
        user = User.objects.get(email="nia@example.com")
        assert (user.role, user.full_name) == (Role.MARKETER, "Nia Patel")
        assert Invitation.objects.get().status == "accepted"

        navigation = invitee.get_by_role("complementary", name="Main navigation")
        navigation.get_by_role("link", name="Segments").click()
        expect(invitee.get_by_role("heading", name="Segments", exact=True)).to_be_visible()
        invitee.goto(f"{url}/segments/new/")
        expect(invitee.get_by_role("heading", name="New segment")).to_be_visible()

        # Settings shows their own tokens, not the people or an audit link.
        invitee.goto(f"{url}/settings/")
        expect(invitee.get_by_role("heading", name="API tokens")).to_be_visible()
        expect(invitee.get_by_test_id("people")).to_have_count(0)
        expect(invitee.locator(f'a[href="{AUDIT_PAGE}"]')).to_have_count(0)
        response = invitee.goto(f"{url}/settings/invitations/")
        assert response is not None
        assert response.status == 403
        if _audit_page_exists():
            response = invitee.goto(f"{url}{AUDIT_PAGE}")
            assert response is not None
            assert response.status == 403

        # The link is spent.
        response = invitee.goto(link)
        assert response is not None
        assert response.status == 410
        expect(invitee.get_by_text("already been used")).to_be_visible()
        _screenshot(invitee, "invitation-used")
    finally:
        context.close()
