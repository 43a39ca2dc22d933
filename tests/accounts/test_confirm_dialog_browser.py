"""Destructive actions in Settings ask in the app's own dialog, not the browser's confirm()."""

import pytest
from playwright.sync_api import Page, expect

from minicrm.accounts.models import ApiToken, User
from minicrm.accounts.services import api_token_create
from tests.web.browser import screenshot, sign_in


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_revoking_a_token_asks_in_the_shared_dialog(
    live_server: object, page: Page, admin: User
) -> None:
    token, _raw = api_token_create(user=admin, name="Shopify sync")
    base = live_server.url  # type: ignore[attr-defined]
    sign_in(page, base, admin)
    # A native confirm() would block the page: fail loudly if one appears.
    page.on("dialog", lambda dialog: pytest.fail(f"native dialog: {dialog.message}"))
    page.goto(f"{base}/settings/")
    expect(page.get_by_test_id("token-usage")).to_contain_text("Authorization: Bearer <token>")
    expect(page.get_by_role("link", name="API docs")).to_have_attribute("href", "/api/v1/docs")

    page.get_by_role("button", name="Revoke").click()
    dialog = page.get_by_role("dialog", name="Revoke the token “Shopify sync”?")
    expect(dialog).to_be_visible()
    expect(dialog).to_contain_text("Clients using it will stop working")
    screenshot(page, "settings-revoke-dialog", full_page=False)
    dialog.get_by_role("button", name="Keep it").click()
    expect(dialog).to_be_hidden()
    token.refresh_from_db()
    assert token.is_active

    page.get_by_role("button", name="Revoke").click()
    dialog.get_by_role("button", name="Revoke token").click()
    expect(page.get_by_text("Revoked", exact=True)).to_be_visible()
    assert not ApiToken.objects.get(pk=token.pk).is_active
