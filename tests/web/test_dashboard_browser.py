"""The dashboard in a real browser: the range picker moves every figure, the RFM grid opens the
builder, both themes at 1280 and 390 px wide, and the empty state."""

import re
from datetime import timedelta

import pytest
from django.core.cache import cache
from django.utils import timezone
from playwright.sync_api import Page, expect

from minicrm.accounts.models import User
from minicrm.segments.models import Segment, SegmentSize

from .browser import screenshot, seed_base, sign_in

THEME_TOGGLE = "Switch between light and dark"
# Elements that stick out of a 390 px screen, apart from what scrolls inside its own box.
OVERFLOWING = """() => [...document.querySelectorAll("body *")]
    .filter((element) => element.getBoundingClientRect().right > window.innerWidth + 1)
    .filter((element) => !element.closest(".table-wrap, .rfm-wrap, .sidebar, dialog"))
    .slice(0, 5)
    .map((element) => `${element.tagName.toLowerCase()}.${element.className}`)"""


def _seed_segments() -> None:
    today = timezone.localdate()
    for name, size in [("Loyal buyers", 24), ("Lapsed in Pune", 9)]:
        segment = Segment.objects.create(name=name, last_count=size)
        for days_ago in range(0, 60, 6):
            SegmentSize.objects.create(
                segment=segment,
                day=today - timedelta(days=days_ago),
                rules_hash="h",
                counted_at=timezone.now(),
                size=max(1, size - days_ago // 6),
            )


def _bars(page: Page) -> int:
    return int(page.evaluate("Chart.getChart('revenue-chart').data.labels.length"))


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_the_range_picker_moves_the_figures_and_a_cell_opens_the_builder(
    live_server: object, page: Page, admin: User
) -> None:
    cache.clear()
    seed_base()
    _seed_segments()
    url = live_server.url  # type: ignore[attr-defined]
    page.set_viewport_size({"width": 1280, "height": 800})
    sign_in(page, url, admin)

    page.goto(f"{url}/")
    page.wait_for_function(
        "Chart.getChart('revenue-chart') && Chart.getChart('new-customers-chart')"
    )
    orders_30 = page.locator("[data-stat=orders] .stat-value").inner_text()
    assert _bars(page) == 30  # a bar a day
    expect(page.get_by_role("link", name="Last 30 days")).to_have_attribute("aria-current", "page")
    expect(page.get_by_test_id("computed-at")).to_contain_text("Computed at")
    expect(page.get_by_test_id("largest-segments")).to_contain_text("Loyal buyers")
    screenshot(page, "dashboard-1280-light")
    page.get_by_role("button", name=THEME_TOGGLE).click()
    assert page.evaluate(
        "Chart.getChart('revenue-chart').data.datasets[0].backgroundColor"
    ) == page.evaluate(
        "getComputedStyle(document.documentElement).getPropertyValue('--accent').trim()"
    )
    screenshot(page, "dashboard-1280-dark")
    page.get_by_role("button", name=THEME_TOGGLE).click()

    page.get_by_role("link", name="Last 365 days").click()
    page.wait_for_function("Chart.getChart('revenue-chart')")

    expect(page).to_have_url(re.compile(r"range=365"))
    assert 12 <= _bars(page) <= 13  # a bar a month
    orders_365 = page.locator("[data-stat=orders] .stat-value").inner_text()
    assert int(orders_365.replace(",", "")) > int(orders_30.replace(",", ""))

    page.get_by_label("From", exact=True).fill("2020-01-01")
    page.get_by_label("To", exact=True).fill("2020-01-31")
    page.get_by_role("button", name="Apply").click()
    page.wait_for_function("Chart.getChart('revenue-chart')")
    expect(page.get_by_test_id("range-summary")).to_contain_text("1 Jan 2020")
    expect(page.locator("[data-stat=orders] .stat-value")).to_have_text("0")
    expect(page.get_by_test_id("rfm")).to_contain_text("No orders in this range")

    page.get_by_role("link", name="Last 365 days").click()
    cell = page.locator("[data-rfm-cell]").first
    customers = cell.locator(".rfm-count").inner_text()
    cell.click()

    expect(page).to_have_url(re.compile(r"/segments/new/\?rules="))
    expect(page.get_by_text("could not be used")).to_have_count(0)
    # The builder's live count of the cell's rules is the cell's count.
    expect(page.get_by_text(re.compile(rf"^{customers}$")).first).to_be_visible()
    # The builder's live previews must not still be running when the test database is emptied
    # (SQLite: "database table is locked" on the sessions table, then the next test's rows).
    page.wait_for_load_state("networkidle")
    page.goto("about:blank")


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_the_dashboard_fits_a_phone_in_both_themes(
    live_server: object, page: Page, admin: User
) -> None:
    cache.clear()
    seed_base()
    _seed_segments()
    url = live_server.url  # type: ignore[attr-defined]
    page.set_viewport_size({"width": 390, "height": 844})
    sign_in(page, url, admin)

    page.goto(f"{url}/?range=365")
    page.wait_for_function("Chart.getChart('revenue-chart')")
    screenshot(page, "dashboard-390-light")
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    assert page.evaluate(OVERFLOWING) == []
    page.get_by_role("button", name=THEME_TOGGLE).click()
    screenshot(page, "dashboard-390-dark")
    assert page.evaluate("document.documentElement.scrollWidth") <= 390


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_the_dashboard_without_data_shows_how_to_start(
    live_server: object, page: Page, admin: User
) -> None:
    cache.clear()
    url = live_server.url  # type: ignore[attr-defined]
    sign_in(page, url, admin)

    page.goto(f"{url}/")

    expect(page.get_by_role("heading", name="No customers yet")).to_be_visible()
    expect(page.get_by_role("link", name="Import a CSV")).to_be_visible()
    screenshot(page, "dashboard-empty")
