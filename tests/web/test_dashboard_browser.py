"""The dashboard in a real browser: cards and charts with data, the empty state, dark mode."""

import pytest
from django.core.cache import cache
from playwright.sync_api import Page, expect

from minicrm.accounts.models import User

from .browser import screenshot, seed_base, sign_in


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_the_dashboard_draws_its_charts_in_both_themes(
    live_server: object, page: Page, admin: User
) -> None:
    cache.clear()
    seed_base()
    url = live_server.url  # type: ignore[attr-defined]
    sign_in(page, url, admin)

    page.goto(f"{url}/")

    expect(page.get_by_role("heading", name="Dashboard")).to_be_visible()
    expect(page.locator("[data-stat=customers] .stat-value")).to_have_text("40")
    # Chart.js drew both canvases (a drawn canvas has a non-zero size and a chart instance).
    page.wait_for_function("Chart.getChart('revenue-chart') && Chart.getChart('recency-chart')")
    light_bar = page.evaluate("Chart.getChart('revenue-chart').data.datasets[0].backgroundColor")
    screenshot(page, "dashboard-data")

    page.get_by_role("button", name="Switch between light and dark").click()
    dark_bar = page.evaluate("Chart.getChart('revenue-chart').data.datasets[0].backgroundColor")
    grid = page.evaluate("Chart.getChart('revenue-chart').options.scales.y.grid.color")
    assert grid == page.evaluate(
        "getComputedStyle(document.documentElement).getPropertyValue('--border').trim()"
    )
    # The bars follow the accent of each theme.
    assert light_bar != dark_bar
    assert dark_bar == page.evaluate(
        "getComputedStyle(document.documentElement).getPropertyValue('--accent').trim()"
    )
    screenshot(page, "dashboard-data-dark")

    page.get_by_text("Show as a table").first.click()
    expect(page.get_by_role("columnheader", name="Week of")).to_be_visible()


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
