"""On a 390 px phone no page is wider than the screen: wide tables scroll or stack inside."""

import pytest
from playwright.sync_api import Browser

from minicrm.accounts.models import User
from minicrm.imports.models import Import
from tests.web.browser import screenshot, seed_base, sign_in

PAGES = [
    "/",
    "/customers/",
    "/segments/",
    "/segments/new/",
    "/campaigns/",
    "/campaigns/new/",
    "/imports/",
    "/settings/",
    "/settings/audit/",
    "/customers/rates/",
]
OVERFLOWING = """() => [...document.querySelectorAll("body *")]
    .filter((element) => element.getBoundingClientRect().right > window.innerWidth + 1)
    .filter((element) => !element.closest(".table-wrap, .sidebar, dialog"))
    .slice(0, 5)
    .map((element) => `${element.tagName.toLowerCase()}.${element.className}`)"""


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_no_page_is_wider_than_a_phone(live_server: object, browser: Browser, admin: User) -> None:
    base = live_server.url  # type: ignore[attr-defined]
    seed_base(20)
    Import.objects.create(
        kind=Import.Kind.CUSTOMERS,
        original_filename="shopify-customers-export-with-a-long-name.csv",
        status=Import.Status.SUCCEEDED,
        total_rows=12345,
        processed_rows=12345,
        created=12000,
        updated=300,
        error_count=45,
        created_by=admin,
    )
    context = browser.new_context(viewport={"width": 390, "height": 844})
    page = context.new_page()
    sign_in(page, base, admin)
    wide = {}
    for path in PAGES:
        page.goto(f"{base}{path}")
        page.wait_for_load_state("networkidle")
        screenshot(page, "phone" + path.replace("/", "-").rstrip("-"))
        width = page.evaluate("document.documentElement.scrollWidth")
        if width > 390:
            wide[path] = (width, page.evaluate(OVERFLOWING))
    context.close()
    assert not wide, wide
