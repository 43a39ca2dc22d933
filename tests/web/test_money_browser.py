"""Money in a real browser at 1280 wide: the dashboard's cards and revenue axis in the shop
currency and locale, and a customer's EUR order with its original amount beside it."""

from datetime import timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from django.core.cache import cache
from django.utils import timezone
from playwright.sync_api import Page, expect

from minicrm.accounts.models import User
from minicrm.customers.models import Customer, ExchangeRate
from minicrm.customers.services import orders_bulk_upsert

from .browser import seed_base, sign_in

SCREENSHOTS = Path(__file__).resolve().parents[2] / "var" / "screenshots"
# Any element of these whose content is wider than its box has run out of it.
OVERFLOWING = """(selector) => [...document.querySelectorAll(selector)]
    .filter((el) => el.scrollWidth > el.clientWidth + 1)
    .map((el) => el.textContent.trim().slice(0, 60))"""


def _shot(page: Page, name: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=SCREENSHOTS / f"{name}.png", full_page=True)


def _big_and_foreign_orders(customer: Customer) -> None:
    now = timezone.now()
    ExchangeRate.objects.create(
        currency="EUR", day=timezone.localdate() - timedelta(days=2), rate=Decimal("90.3522")
    )
    result = orders_bulk_upsert(
        rows=[
            {
                "external_id": "BIG-1",
                "customer_external_id": customer.external_id,
                "amount": "6904874.40",
                "ordered_at": (now - timedelta(days=3)).isoformat(),
            },
            {
                "external_id": "EUR-1",
                "customer_external_id": customer.external_id,
                "amount": "92.00",
                "currency": "EUR",
                "ordered_at": (now - timedelta(days=2)).isoformat(),
            },
        ]
    )
    assert result.errors == []


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_money_on_the_dashboard_and_a_customer_page(
    live_server: object, page: Page, admin: User
) -> None:
    cache.clear()
    people = seed_base()
    _big_and_foreign_orders(people[0])
    url = live_server.url  # type: ignore[attr-defined]
    page.set_viewport_size({"width": 1280, "height": 900})
    sign_in(page, url, admin)

    page.goto(f"{url}/")
    page.wait_for_function("Chart.getChart('revenue-chart')")
    aov = page.locator("[data-stat=aov] .stat-value")
    # Whole units on the card, to the paisa on hover, in Indian grouping.
    assert aov.inner_text().startswith("₹")
    assert (aov.get_attribute("title") or "").startswith("₹")
    assert (aov.get_attribute("title") or "").endswith(tuple(f".{n:02d}" for n in range(100)))
    ticks = page.evaluate(
        "Chart.getChart('revenue-chart').scales.y.ticks.map((tick) => tick.label)"
    )
    assert ticks
    assert all(label.startswith("₹") for label in ticks), ticks
    assert any(label.endswith("L") for label in ticks), ticks
    _shot(page, "money-dashboard")
    assert page.evaluate(OVERFLOWING, ".stat, .stat-value, .card") == []

    page.goto(f"{url}/customers/{people[0].pk}/")
    original = page.get_by_test_id("order-original")
    expect(original).to_have_text("(€92.00)")
    expect(page.get_by_role("cell", name="₹8,312.40 (€92.00)")).to_be_visible()
    expect(page.get_by_role("cell", name="₹69,04,874.40")).to_be_visible()
    _shot(page, "money-customer")
    assert page.evaluate(OVERFLOWING, ".card, .stat-value") == []
