"""The shell in a real browser: sign in, see the dashboard, keep a screenshot."""

from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from minicrm.accounts.models import User
from tests.factories import DEFAULT_PASSWORD

SCREENSHOTS = Path(__file__).resolve().parents[2] / "artifacts" / "screenshots"


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_sign_in_and_see_the_dashboard_shell(live_server: object, page: Page, admin: User) -> None:
    page.goto(f"{live_server.url}/")  # type: ignore[attr-defined]

    expect(page.get_by_role("heading", name="Sign in to Mini CRM")).to_be_visible()
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=SCREENSHOTS / "sign-in.png")
    page.get_by_label("Email").fill(admin.email)
    page.get_by_label("Password").fill(DEFAULT_PASSWORD)
    page.get_by_role("button", name="Sign in").click()

    expect(page.get_by_role("heading", name="Dashboard")).to_be_visible()
    navigation = page.get_by_role("complementary", name="Main navigation")
    for section in ["Dashboard", "Customers", "Segments", "Campaigns", "Imports", "Settings"]:
        expect(navigation.get_by_role("link", name=section)).to_be_visible()
    expect(navigation.get_by_role("link", name="Dashboard")).to_have_attribute(
        "aria-current", "page"
    )
    # The stylesheet and htmx came from our own static files, not a CDN.
    assert page.evaluate("typeof window.htmx") == "object"
    assert page.evaluate("getComputedStyle(document.body).fontFamily").startswith(
        '"Inter Variable"'
    )
    page.screenshot(path=SCREENSHOTS / "dashboard.png", full_page=True)
