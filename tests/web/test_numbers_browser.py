"""Numbers that fit, in a real browser: on a 390 px phone no stat value runs out of its card or
onto a second line and no campaign table scrolls sideways; a segment's size chart writes its axis
in the shop locale's short form (35L, 3.5M) with date labels that never overlap."""

import itertools
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from django.test import override_settings
from django.utils import timezone
from playwright.sync_api import Page

from minicrm.accounts.models import User
from minicrm.campaigns.models import Delivery
from minicrm.campaigns.services import campaign_send
from minicrm.segments.models import Segment, SegmentSize
from minicrm.segments.rules import parse_rules
from minicrm.segments.services import segment_create
from tests.campaigns.conftest import campaign_draft
from tests.factories import CustomerFactory, OrderFactory, orders_on_recent_days

from .browser import screenshot, sign_in

# Stat values wider than their box, or wrapped onto more than one line.
STAT_VALUES_NOT_FITTING = """() => [...document.querySelectorAll('.stat-value')].filter((el) => {
    const range = document.createRange();
    range.selectNodeContents(el);
    const lines = new Set([...range.getClientRects()].map((rect) => Math.round(rect.top)));
    return el.scrollWidth > el.clientWidth + 1 || lines.size > 1;
  }).map((el) => el.textContent.trim())"""
STAT_VALUE_COUNT = "document.querySelectorAll('.stat-value').length"
# Tables that scroll sideways inside their card.
SCROLLING_TABLES = """(selector) => [...document.querySelectorAll(selector)]
    .filter((el) => el.scrollWidth > el.clientWidth + 1).map((el) => el.className)"""
# The x axis's drawn labels as [left, right] pixel spans, and its rotation.
X_LABELS = """(id) => {
  const chart = Chart.getChart(id);
  const scale = chart.scales.x;
  const ctx = chart.ctx;
  const spans = scale.getLabelItems().map((item) => {
    ctx.save();
    ctx.font = item.font.string;
    const width = ctx.measureText(String(item.label)).width;
    ctx.restore();
    const x = item.options.translation[0];
    const align = item.options.textAlign;
    if (align === "left") return [x, x + width];
    if (align === "right") return [x - width, x];
    return [x - width / 2, x + width / 2];
  });
  const labels = scale.getLabelItems().map((item) => String(item.label));
  return { rotation: scale.labelRotation, spans, labels };
}"""
Y_LABELS = "(id) => Chart.getChart(id).scales.y.ticks.map((tick) => tick.label)"


def _huge_customer() -> Any:
    customer = CustomerFactory(
        external_id="BIG",
        first_name="Venkataramanan Subrahmanyam",
        last_name="Chandrasekharan-Iyengar",
        email="venkataramanan.subrahmanyam.chandrasekharan@very-long-company-domain.example.com",
        # "Customer since May 2026": the widest month's letters, not a random month's.
        signed_up_at=datetime(2026, 5, 12, tzinfo=UTC),
    )
    orders_on_recent_days("BIG", ["1234567890.90", "987654321.25"])
    return customer


def _campaign_with_results() -> Any:
    everyone = segment_create(
        name="Everyone", rules=parse_rules({"match": "all", "conditions": []}), created_by=None
    )
    CustomerFactory.create_batch(6)
    campaign = campaign_draft(
        everyone, name="Diwali mega sale for everyone in every city", holdout_percent=50
    )
    campaign_send(campaign_id=campaign.pk)
    later = timezone.now() + timedelta(hours=1)
    for delivery in Delivery.objects.filter(campaign=campaign):
        amount = "98765432.10" if delivery.status == "sent" else "1234567.89"
        OrderFactory(customer=delivery.customer, amount=Decimal(amount), ordered_at=later)
    return campaign


def _growing_segment() -> Segment:
    segment = Segment.objects.create(
        name="Everyone, counted daily", last_count=3_400_000, last_counted_at=timezone.now()
    )
    today = timezone.localdate()
    for day in range(60):
        SegmentSize.objects.create(
            segment=segment,
            day=today - timedelta(days=59 - day),
            rules_hash="h",
            counted_at=timezone.now(),
            size=1_200_000 + day * 37_000,
        )
    return segment


def _x_labels_apart(page: Page) -> dict[str, Any]:
    axis = page.evaluate(X_LABELS, "size-chart")
    spans = axis["spans"]
    assert len(spans) >= 2, axis
    assert axis["rotation"] == 0, axis
    overlaps = [(a, b) for a, b in itertools.pairwise(spans) if a[1] > b[0]]
    assert overlaps == [], axis
    return axis


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_on_a_phone_every_number_fits_its_card(
    live_server: Any, page: Page, admin: User, immediate_tasks: None
) -> None:
    customer = _huge_customer()
    campaign = _campaign_with_results()
    url = live_server.url
    sign_in(page, url, admin)
    page.set_viewport_size({"width": 390, "height": 844})

    page.goto(f"{url}/customers/{customer.pk}/")
    # ₹2,22,22,22,212 in 390 px: the whole-rupee total sized to fit, the orders to the paisa.
    total = page.locator(".stat-value").first
    assert total.inner_text() == "₹2,22,22,22,212"
    assert page.get_by_role("cell", name="₹1,23,45,67,890.90").count() == 1
    assert page.evaluate(STAT_VALUE_COUNT) == 5
    assert page.evaluate(STAT_VALUES_NOT_FITTING) == []
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    screenshot(page, "numbers-customer-390")

    page.goto(f"{url}/campaigns/{campaign.pk}/")
    page.get_by_test_id("campaign-results").wait_for()
    # Four counters and three results (revenue, per recipient, lift).
    assert page.evaluate(STAT_VALUE_COUNT) == 7
    assert page.evaluate(STAT_VALUES_NOT_FITTING) == []
    assert page.evaluate(SCROLLING_TABLES, ".cmp-results-table, #campaign-table .table-wrap") == []
    results = page.get_by_test_id("campaign-results")
    assert results.get_by_text("₹9,87,65,432.10 each").is_visible()
    screenshot(page, "numbers-campaign-390")

    page.goto(f"{url}/campaigns/")
    assert page.evaluate(SCROLLING_TABLES, "#campaign-table .table-wrap") == []
    folded = page.locator(".cmp-folded .tabular")
    assert folded.is_visible()
    assert folded.inner_text() == "4 sent · 0 delivered · 0 failed"
    screenshot(page, "numbers-campaigns-390")

    page.goto(f"{url}/customers/?q=venkat")
    # The list keeps the spend as a column (city, orders and last order fold under the name).
    assert page.evaluate(SCROLLING_TABLES, "#customer-results .table-wrap") == []
    assert page.get_by_role("cell", name="₹2,22,22,22,212").is_visible()
    screenshot(page, "numbers-customers-390")

    page.goto(f"{url}/segments/{campaign.segment_id}/?tab=members")
    assert page.evaluate(SCROLLING_TABLES, "[data-testid=members-table]") == []
    assert page.get_by_role("cell", name="₹2,22,22,22,212").is_visible()
    screenshot(page, "numbers-members-390")

    page.set_viewport_size({"width": 1280, "height": 800})
    page.goto(f"{url}/customers/{customer.pk}/")
    assert page.evaluate(STAT_VALUES_NOT_FITTING) == []


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("width", [390, 1280])
def test_the_size_chart_axes_are_compact_and_apart(
    live_server: Any, page: Page, admin: User, width: int
) -> None:
    segment = _growing_segment()
    url = live_server.url
    sign_in(page, url, admin)
    page.set_viewport_size({"width": width, "height": 844})
    page.goto(f"{url}/segments/{segment.pk}/")
    page.wait_for_function("Chart.getChart('size-chart')")
    ticks = page.evaluate(Y_LABELS, "size-chart")
    # Indian short form in en-IN: 0, 5L, 10L, ... 35L; never 3,500,000.
    assert ticks[0] == "0", ticks
    assert all(label.endswith("L") for label in ticks[1:]), ticks
    assert not any("," in label for label in ticks), ticks
    _x_labels_apart(page)
    screenshot(page, f"numbers-segment-chart-{width}")


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_the_size_chart_axis_follows_the_shop_locale(
    live_server: Any, page: Page, admin: User
) -> None:
    segment = _growing_segment()
    url = live_server.url
    sign_in(page, url, admin)
    page.set_viewport_size({"width": 390, "height": 844})
    with override_settings(MINICRM_CURRENCY="USD", MINICRM_LOCALE="en"):
        page.goto(f"{url}/segments/{segment.pk}/")
        page.wait_for_function("Chart.getChart('size-chart')")
    ticks = page.evaluate(Y_LABELS, "size-chart")
    assert ticks[0] == "0", ticks
    assert all(label.endswith("M") for label in ticks[1:]), ticks
    assert "3.5M" in ticks or "3M" in ticks, ticks
