"""The dashboard's charts and cards on a phone: axis labels never touch, money axes are short,
no stat value runs out of its card, and figures computed by a task swap into a waiting page."""

import itertools
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from django.core.cache import cache
from django.test import override_settings
from django.utils import timezone
from playwright.sync_api import Page, expect

from minicrm.accounts.models import User
from minicrm.customers.services import orders_bulk_upsert
from minicrm.web.tasks import dashboard_refresh_task

from .axe import axe_violations
from .browser import screenshot, seed_base, sign_in

DUMMY = {"default": {"BACKEND": "django_tasks.backends.dummy.DummyBackend"}}
# Each x label of a chart: its centre and its drawn width (Chart.js's own measure of the text).
X_LABELS = """(id) => {
    const chart = Chart.getChart(id);
    const scale = chart.scales.x;
    return scale.getLabelItems().map((item) => {
        chart.ctx.save();
        chart.ctx.font = item.font.string;
        const width = chart.ctx.measureText(item.label).width;
        chart.ctx.restore();
        const { translation, rotation } = item.options;
        return { label: item.label, x: translation[0], width, rotation };
    });
}"""
STAT_OVERFLOW = """() => [...document.querySelectorAll(".stat .stat-value, .stat .stat-label")]
    .filter((element) => element.scrollWidth > element.clientWidth)
    .map((element) => element.textContent.trim())"""


def _big_spender() -> None:
    """One customer whose orders make the revenue a nine-digit amount (₹12,34,56,789)."""
    seed_base()
    now = timezone.now()
    rows = [
        {
            "external_id": f"BIG-{index}",
            "customer_external_id": "C-0000",
            "amount": "41152263.27",
            "ordered_at": (now - timedelta(days=index * 9 + 1)).isoformat(),
            "status": "completed",
        }
        for index in range(3)
    ]
    assert orders_bulk_upsert(rows=rows).errors == []


def _labels_apart(labels: list[dict[str, Any]]) -> None:
    assert len(labels) >= 2
    assert all(label["rotation"] == 0 for label in labels)
    for left, right in itertools.pairwise(labels):
        gap = right["x"] - left["x"] - (left["width"] + right["width"]) / 2
        assert gap > 0, (left, right)


@pytest.fixture
def queued() -> Iterator[None]:
    """Tasks are kept, not run (the dummy backend; its list is the server thread's own)."""
    with override_settings(TASKS=DUMMY):
        yield


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_at_390_px_axis_labels_keep_apart_and_values_keep_to_their_cards(
    live_server: object, browser: Any, admin: User, scheme: str
) -> None:
    cache.clear()
    _big_spender()
    url = live_server.url  # type: ignore[attr-defined]
    context = browser.new_context(viewport={"width": 390, "height": 844}, color_scheme=scheme)
    page: Page = context.new_page()
    try:
        sign_in(page, url, admin)
        for preset in (30, 90, 365):
            page.goto(f"{url}/?range={preset}")
            page.wait_for_function("Chart.getChart('revenue-chart')")
            for chart in ("revenue-chart", "new-customers-chart"):
                _labels_apart(page.evaluate(X_LABELS, chart))
            # A money axis in the short form: ₹4.1Cr, not ₹4,11,52,263.
            ticks = page.evaluate(
                "Chart.getChart('revenue-chart').scales.y.ticks"
                ".map((tick, index, all) => Chart.getChart('revenue-chart').scales.y"
                ".options.ticks.callback(tick.value, index, all))"
            )
            assert any(tick.endswith("Cr") for tick in ticks), ticks
            assert all(len(tick) <= 8 for tick in ticks), ticks
            assert page.evaluate(STAT_OVERFLOW) == []
            revenue = page.locator("[data-stat=revenue] .stat-value").inner_text()
            assert len(revenue.replace(",", "")) >= 10, revenue  # the long value was tested
            screenshot(page, f"dashboard-charts-390-{scheme}-{preset}")
    finally:
        context.close()


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_at_1280_px_daily_labels_keep_apart(live_server: object, page: Page, admin: User) -> None:
    cache.clear()
    seed_base()
    url = live_server.url  # type: ignore[attr-defined]
    sign_in(page, url, admin)
    page.set_viewport_size({"width": 1280, "height": 800})
    page.goto(f"{url}/?range=30")
    page.wait_for_function("Chart.getChart('revenue-chart')")
    labels = page.evaluate(X_LABELS, "revenue-chart")
    _labels_apart(labels)
    assert len(labels) >= 5  # wide enough for more than a handful
    # Narrowing the window takes labels away instead of letting them touch.
    page.set_viewport_size({"width": 390, "height": 844})
    page.wait_for_function(
        f"() => Chart.getChart('revenue-chart').scales.x.getLabelItems().length < {len(labels)}"
    )
    _labels_apart(page.evaluate(X_LABELS, "revenue-chart"))


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_a_range_computed_by_a_task_swaps_into_the_waiting_page(
    live_server: object, page: Page, admin: User, settings: Any, queued: None
) -> None:
    cache.clear()
    seed_base()
    settings.MINICRM_DASHBOARD_INLINE_MAX_CUSTOMERS = 10  # this base counts as large
    url = live_server.url  # type: ignore[attr-defined]
    sign_in(page, url, admin)

    page.goto(f"{url}/?range=custom&from=2025-01-01&to=2025-03-31")
    expect(page.get_by_test_id("dashboard-computing")).to_contain_text(
        "Computing the figures for this range…"
    )
    expect(page.get_by_test_id("computed-at")).to_have_text("Computing…")
    screenshot(page, "dashboard-computing-1280-light")
    assert axe_violations(page) == []
    # The queued task (the dummy backend keeps it) has not run: a poll finds nothing yet.
    with page.expect_response(lambda response: "/dashboard/figures/" in response.url) as poll:
        pass
    assert poll.value.status == 204
    expect(page.get_by_test_id("dashboard-computing")).to_be_visible()
    dashboard_refresh_task.call("2025-01-01", "2025-03-31", None)

    # The next poll (every 2 s) brings the figures and the charts are drawn.
    expect(page.get_by_test_id("dashboard-stats")).to_be_visible()
    page.wait_for_function(
        "() => Chart.getChart('revenue-chart') && Chart.getChart('new-customers-chart')"
    )
    expect(page.get_by_test_id("dashboard-computing")).to_have_count(0)
    expect(page.get_by_test_id("computed-at")).to_contain_text("Computed at")
    expect(page.get_by_test_id("dashboard-stats")).to_be_visible()
