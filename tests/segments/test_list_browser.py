"""The segments list in Chromium: it fits a 390 px phone and passes axe-core, light and dark."""

import pytest
from playwright.sync_api import Browser

from minicrm.accounts.models import User
from tests.segments.size_history import history
from tests.web.axe import axe_violations
from tests.web.browser import screenshot, seed_base, sign_in

# Five segments with 30 days of sizes: growing, shrinking, flat, one day old, never counted.
SEGMENTS = [
    ("Big spenders", "Spent over ₹5,000 in the last year", [8 + day // 3 for day in range(30)]),
    ("Lapsed customers", "No order in 90 days", [30 - day // 2 for day in range(30)]),
    ("Pune regulars", "", [6] * 30),
    (
        "VIP newsletter readers with a long descriptive name for wrapping",
        "Tagged vip and newsletter, consenting to marketing, with a description long enough to "
        "be cut short on a wide screen",
        [12],
    ),
    ("Wholesale", "Tagged wholesale", []),
]


def seed_segments() -> None:
    for name, description, sizes in SEGMENTS:
        history(name, sizes, description=description, counted_ago=2)


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("theme", ["light", "dark"])
def test_the_list_fits_a_phone_and_passes_axe(
    live_server: object, browser: Browser, admin: User, theme: str
) -> None:
    base = live_server.url  # type: ignore[attr-defined]
    seed_base(40)
    seed_segments()
    found: dict[str, object] = {}
    for width, height in [(1280, 800), (390, 844)]:
        context = browser.new_context(
            viewport={"width": width, "height": height},
            color_scheme=theme,  # type: ignore[arg-type]
        )
        page = context.new_page()
        sign_in(page, base, admin)
        page.goto(f"{base}/segments/")
        page.evaluate(f"localStorage.setItem('minicrm-theme', '{theme}')")
        page.goto(f"{base}/segments/?sort=-change")
        page.wait_for_load_state("networkidle")
        screenshot(page, f"segments-list-{width}-{theme}")
        assert page.locator("svg.sparkline").count() == 3
        assert page.locator("th[aria-sort='descending']").text_content().strip() == "30-day trend"
        sizes = page.locator("[data-testid=change]").all_inner_texts()
        assert [text.split()[0] for text in sizes] == ["+9", "0", "\u221214"]
        page_width = page.evaluate("document.documentElement.scrollWidth")
        table = page.evaluate(
            "(() => { const w = document.querySelector('.seg-list-wrap');"
            " return [w.scrollWidth, w.clientWidth]; })()"
        )
        # No horizontal scroll, of the page or inside the table, on a desktop or a phone.
        assert page_width <= width, page_width
        assert table[0] <= table[1], table
        violations = axe_violations(page)
        if violations:
            found[f"{width}"] = violations
        page.goto(f"{base}/segments/?q=zebra")
        assert page.get_by_text("No segment matches “zebra”").is_visible()
        screenshot(page, f"segments-list-empty-search-{width}-{theme}")
        violations = axe_violations(page)
        if violations:
            found[f"{width}-empty"] = violations
        context.close()
    assert not found, found
